-- Facet tokens in the full-text index (SQLite). Keep in step with
-- ../postgres/0007_feed_facet_tokens.sql.
-- A search for words with a frequent filter (« médiathèques » in département 38: 62,500
-- text matches, 150,000 postings of the département at 1,000,000) read the text matches
-- one by one to check the filter. `feed_fts` gains a column of facet tokens (one word per
-- multi-valued facet value, e.g. `departementz3338`; `domain::search::facet_token`), so
-- that FTS5 intersects the words with the filters itself.
-- FTS5 cannot add a column to a table, and the text it indexes (French stems) is computed
-- by the node: the table is made again empty, and the node fills it again at start
-- (`Store::reindex_feed`) for the feed rows listed in `feed_fts_pending`, keeping their
-- `doc_id` (saved searches compare it to tell what is new).
DROP TABLE feed_fts;
CREATE VIRTUAL TABLE feed_fts USING fts5 (
    name, body, facets, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE feed_fts_pending (doc_id INTEGER PRIMARY KEY);
INSERT INTO feed_fts_pending (doc_id) SELECT doc_id FROM feed_postings;
