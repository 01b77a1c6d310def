-- Facet rows without a foreign key (SQLite). Keep in step with
-- ../postgres/0009_feed_terms_unchecked.sql.
-- `feed_terms` is an index of `feed_postings`, written and removed only by
-- `store/feed.rs` in the transaction that writes or removes the posting's row (a
-- posting's rows are deleted before it, and written for a new `doc_id` or after that
-- deletion): the foreign key looked up the posting for every row written. SQLite cannot
-- drop a constraint, so the table is copied.
CREATE TABLE feed_terms_unchecked (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    doc_id INTEGER NOT NULL,
    PRIMARY KEY (field, value, doc_id)
) WITHOUT ROWID;
INSERT INTO feed_terms_unchecked (field, value, doc_id) SELECT field, value, doc_id FROM feed_terms;
DROP TABLE feed_terms;
ALTER TABLE feed_terms_unchecked RENAME TO feed_terms;
CREATE INDEX feed_terms_doc ON feed_terms (doc_id);
