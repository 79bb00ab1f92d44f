-- The transaction one reservation runs (bookings.services.booking_reserve, one ticket, an event
-- without a venue cap), in the server's two round trips: `\;` joins statements into one compound
-- command, sent as one simple query as psycopg sends the server's. First BEGIN, the lock timeout,
-- the ticket type locked and the event read again after the lock; then the counter UPDATE and
-- both INSERTs as data-modifying CTEs, and COMMIT. bench/run.py runs it with
-- pgbench -f reserve.sql -D event='<uuid>' -D tt='<uuid>' (quotes included: -M simple pastes
-- values as they are). Holds last a day, like the server's BOOKING_HOLD_MINUTES during the bench,
-- so they never lapse into a later phase; the counter moves with the rows, so check_inventory
-- stays clean. What a POST does around this transaction (the health check, the token from
-- Redis, the event from the process's copy, JSON in and out) is not included: this is the
-- database's ceiling for the reservation's own SQL.
BEGIN \;
SET LOCAL lock_timeout = 3000 \;
SELECT id, event_id, name, price, capacity, sold, held, max_per_booking, sales_start, sales_end
  FROM events_tickettype WHERE event_id = :event AND id IN (:tt) ORDER BY id FOR NO KEY UPDATE \;
SELECT status, starts_at, capacity, currency FROM events_event WHERE id = :event;
WITH b AS (SELECT gen_random_uuid() AS id),
     w0 AS (UPDATE events_tickettype SET held = held + 1 WHERE id IN (:tt)),
     w1 AS (INSERT INTO bookings_booking (id, event_id, buyer_id, email, status, expires_at, total, currency,
                                          access_token, created_at, updated_at)
            SELECT b.id, :event, NULL, 'pgbench@example.com', 'reserved', now() + interval '1 day', 49.00, 'EUR',
                   md5(random()::text) || md5(random()::text), now(), now() FROM b)
INSERT INTO bookings_ticket (id, booking_id, ticket_type_id, status, price, attendee_name, code)
  SELECT gen_random_uuid(), b.id, :tt, 'held', 49.00, '', gen_random_uuid()::text FROM b \;
COMMIT;
