-- Facet tokens in the full-text index (PostgreSQL). Keep in step with
-- ../sqlite/0007_feed_facet_tokens.sql.
-- `tsv` also holds one lexeme per multi-valued facet value of the posting (métier labels
-- excepted), e.g. `departementz3338` for département 38 (`domain::search::facet_token`:
-- field, `z`, the value's UTF-8 bytes in hexadecimal), without positions, so that a search
-- for words with such a filter is one GIN index scan and `ts_rank_cd` ignores them. Here
-- they are added to the rows already indexed; the node writes them with each new row.
UPDATE feed_postings f SET tsv = f.tsv || array_to_tsvector(ARRAY(
    SELECT DISTINCT t.field || 'z' || encode(convert_to(t.value, 'UTF8'), 'hex')
    FROM feed_terms t WHERE t.doc_id = f.doc_id AND t.field <> 'metier'
));
