-- Feed query plans (PostgreSQL). Keep in step with ../sqlite/0005_feed_plans.sql.
-- A filter on a multi-valued facet is checked posting by posting (`doc_id`, `field`,
-- `value`): an index on all three answers from the index alone, where `feed_terms_doc`
-- (`doc_id` only) read every term row of the posting.
CREATE INDEX feed_terms_doc_field ON feed_terms (doc_id, field, value);
DROP INDEX feed_terms_doc;
-- `field` and `value` are correlated (`A` is only ever a catégorie): without these
-- statistics the planner multiplies their frequencies and underestimates a frequent
-- value eight times or more, then lists all its postings first.
CREATE STATISTICS feed_terms_field_value (mcv) ON field, value FROM feed_terms;
