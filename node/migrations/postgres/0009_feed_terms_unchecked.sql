-- Facet rows without a foreign key (PostgreSQL). Keep in step with
-- ../sqlite/0009_feed_terms_unchecked.sql.
-- `feed_terms` is an index of `feed_postings`, written and removed only by
-- `store/feed.rs` in the transaction that writes or removes the posting's row (a
-- posting's rows are deleted before it, and written for a new `doc_id` or after that
-- deletion). The foreign key checked every row written against `feed_postings` (a
-- row lock on the posting for each facet value): with `ON CONFLICT`, which the node no
-- longer needs, it was 40 % of the cost of the facet rows, themselves the dearest part
-- of storing a pulled page (20 of 49 ms a page of 100 postings).
ALTER TABLE feed_terms DROP CONSTRAINT IF EXISTS feed_terms_doc_id_fkey;
