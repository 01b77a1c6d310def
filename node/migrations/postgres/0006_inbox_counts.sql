-- Counting the inbox without reading it (PostgreSQL). Keep in step with
-- ../sqlite/0006_inbox_counts.sql.
-- `/metrics` (received activities per channel, unprocessed, oldest unprocessed) and the
-- inbox summary of the API used to read every row of `inbox`, documents included. Both
-- are now answered from indexes (index-only scans once autovacuum has marked the pages).
CREATE INDEX inbox_via ON inbox (via, processed_at, received_at);
CREATE INDEX inbox_failed ON inbox (seq) WHERE outcome LIKE 'failed%';
