-- The transaction one reservation runs, as the server sends it (bookings.services.booking_reserve,
-- one ticket, an event without a venue cap, the ticket type reserved in this process in the last
-- second: `_GuardedHold`). Its statements are prepared once per connection (core.db.prepared;
-- pgbench keeps a client's variables from one transaction to the next, so the \if block runs
-- once per connection), then each reservation is one simple query (`\;` joins statements into one
-- compound command): BEGIN, the lock timeout, the ticket type locked, the event read again, the
-- guard (the columns the rules read still equal the copy's, and there is room) with the counter
-- UPDATE and both INSERTs conditional on it as CTEs, and COMMIT. The "copy" is read once, at the
-- start. bench/run.py runs it with pgbench -f reserve.sql -D event='<uuid>' -D tt='<uuid>' (quotes
-- included: -M simple pastes values as they are) and -D prepared=0. Holds last a day, like the server's
-- BOOKING_HOLD_MINUTES during the bench, so they never lapse into a later phase; the counter moves
-- with the rows, so check_inventory stays clean. What a POST does around this transaction (the
-- token from Redis, JSON in and out) is not included: this is the database's ceiling for the
-- reservation's own SQL. The bench turns the hoarding limits off (bench/infra.py), so, as here, no
-- advisory lock and no count of the buyer's holds and tickets is sent (bookings/limits.py).
\if :prepared = 0
SELECT quote_literal(price) AS price, max_per_booking, quote_nullable(sales_start) AS sales_start,
       quote_nullable(sales_end) AS sales_end
  FROM events_tickettype WHERE id = :tt \gset
SELECT quote_literal(status) AS status, quote_literal(starts_at) AS starts_at, quote_literal(currency) AS currency
  FROM events_event WHERE id = :event \gset
PREPARE lock_types (uuid, uuid) AS
  SELECT id, event_id, name, description, price, capacity, sold, held, max_per_booking, sales_start, sales_end,
         position, created_at
    FROM events_tickettype WHERE event_id = $1 AND id IN ($2) ORDER BY id FOR NO KEY UPDATE \;
PREPARE event_state (uuid) AS SELECT status, starts_at, capacity, currency, max_holds_per_buyer, max_holds_per_ip,
                                      max_tickets_per_buyer FROM events_event WHERE id = $1 \;
PREPARE hold (uuid, uuid, numeric, bigint, timestamptz, timestamptz, text, timestamptz, text) AS
  WITH w0 AS (SELECT count(*) = 1 AS ok
                FROM events_tickettype JOIN (VALUES ($2, 1, $3, $4, $5, $6))
                  AS v (id, n, price, max_per_booking, sales_start, sales_end) ON events_tickettype.id = v.id
               WHERE events_tickettype.event_id = $1 AND capacity - sold - held >= v.n
                 AND (events_tickettype.price, events_tickettype.max_per_booking, events_tickettype.sales_start,
                      events_tickettype.sales_end)
                     IS NOT DISTINCT FROM (v.price, v.max_per_booking, v.sales_start, v.sales_end)
                 AND EXISTS (SELECT 1 FROM events_event WHERE id = $1
                               AND (status, starts_at, capacity, currency, max_holds_per_buyer, max_holds_per_ip,
                                    max_tickets_per_buyer) IS NOT DISTINCT FROM ($7, $8, NULL, $9, NULL, NULL, NULL))),
       b AS (SELECT gen_random_uuid() AS id),
       w1 AS (UPDATE events_tickettype SET held = held + 1 WHERE id IN ($2) AND (SELECT ok FROM w0)),
       w2 AS (INSERT INTO bookings_booking (id, event_id, buyer_id, email, status, expires_at, total, currency,
                                            access_token, created_at, updated_at, client_ip)
              SELECT b.id, $1, NULL, 'pgbench@example.com', 'reserved', now() + interval '1 day', $3, $9,
                     md5(random()::text) || md5(random()::text), now(), now(), '127.0.0.1' FROM b
               WHERE (SELECT ok FROM w0)),
       w3 AS (INSERT INTO bookings_ticket (id, booking_id, ticket_type_id, status, price, attendee_name, code)
              SELECT gen_random_uuid(), b.id, $2, 'held', $3, '', gen_random_uuid()::text FROM b
               WHERE (SELECT ok FROM w0))
  SELECT ok, CASE WHEN NOT ok THEN EXISTS (SELECT 1 FROM bookings_booking WHERE event_id = $1
                                             AND status = 'reserved' AND expires_at <= now()) END FROM w0;
\set prepared 1
\endif
BEGIN \;
SET LOCAL lock_timeout = 3000 \;
EXECUTE lock_types(:event, :tt) \;
EXECUTE event_state(:event) \;
EXECUTE hold(:event, :tt, :price, :max_per_booking, :sales_start, :sales_end, :status, :starts_at, :currency) \;
COMMIT;
