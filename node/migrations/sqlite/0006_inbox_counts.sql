-- Counting the inbox without reading it (SQLite). Keep in step with
-- ../postgres/0006_inbox_counts.sql.
-- `/metrics` (received activities per channel, unprocessed, oldest unprocessed) and the
-- inbox summary of the API used to read every row of `inbox`, documents included: at
-- 100,000 received activities, 400 MB per scrape. Both are now answered from indexes.
CREATE INDEX inbox_via ON inbox (via, processed_at, received_at);
CREATE INDEX inbox_failed ON inbox (seq) WHERE outcome LIKE 'failed%';
