-- Feed query plans (SQLite). Keep in step with ../postgres/0005_feed_plans.sql.
-- Nothing to change here: `feed_terms` is a WITHOUT ROWID table, so its index
-- `feed_terms_doc` (`doc_id`) already holds (`doc_id`, `field`, `value`), which the
-- PostgreSQL migration adds; and SQLite's statistics (`sqlite_stat1`) are kept by
-- `PRAGMA optimize`, run by the node at start and every hour (`Store::optimize`).
SELECT 1;
