-- The transaction one reservation runs (bookings.services.booking_reserve, one ticket, an event
-- without a venue cap), statement for statement as Django sent it before the hot-path work (the
-- server now sends the event read, the UPDATE and both INSERTs as one statement of data-modifying
-- CTEs, so this is the database's cost of the same rows with more round trips); bench/run.py runs it with
-- pgbench -f reserve.sql -D event='<uuid>' -D tt='<uuid>' (quotes included: -M simple pastes
-- values as they are). Holds last a day, like the server's BOOKING_HOLD_MINUTES during the bench,
-- so they never lapse into a later phase; the counter moves with the rows, so check_inventory
-- stays clean. The reads a POST makes before and after this transaction (organizer
-- membership, event, the booking's output) are not included: this is the database's ceiling
-- for the locked section alone.
BEGIN;
SET LOCAL lock_timeout = 3000;
SELECT id, event_id, name, price, capacity, sold, held, max_per_booking, sales_start, sales_end
  FROM events_tickettype WHERE event_id = :event AND id IN (:tt) ORDER BY id FOR NO KEY UPDATE;
SELECT id, status, capacity, sold, held, starts_at, currency FROM events_event WHERE id = :event LIMIT 21;
UPDATE events_tickettype SET held = held + 1 WHERE id IN (:tt);
INSERT INTO bookings_booking (id, event_id, buyer_id, email, status, expires_at, total, currency, access_token,
                              created_at, updated_at)
  VALUES (gen_random_uuid(), :event, NULL, 'pgbench@example.com', 'reserved', now() + interval '1 day',
          49.00, 'EUR', md5(random()::text) || md5(random()::text), now(), now())
  RETURNING quote_literal(id) AS booking_id \gset
INSERT INTO bookings_ticket (id, booking_id, ticket_type_id, status, price, attendee_name, code)
  VALUES (gen_random_uuid(), :booking_id, :tt, 'held', 49.00, '', gen_random_uuid()::text);
COMMIT;
