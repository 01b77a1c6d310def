-- Feed (PostgreSQL). Keep in step with ../sqlite/0003_feed.sql.
-- One row per posting in the HR feed, local (published or closed) or received from a
-- partner (not deleted), kept in the same transaction as the posting itself. `doc_id`
-- increases with each posting's first indexing (writers take a transaction-level advisory
-- lock, so ids commit in order): saved searches use it to tell what is new.
-- Absent dates are stored as '9999-12-31' so that they sort last.
-- Full text: `tsv` is built from text the node has already folded (lower case, accents
-- removed) with the built-in `french` configuration: no `unaccent` extension is needed.
CREATE TABLE feed_postings (
    doc_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    posting_id TEXT NOT NULL UNIQUE,
    local_id TEXT UNIQUE,
    author TEXT NOT NULL,
    relayed_by TEXT,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL,
    name TEXT NOT NULL,
    summary TEXT,
    employer TEXT,
    apply_until TEXT NOT NULL,
    start_date TEXT NOT NULL,
    quotite_pct BIGINT,
    working_time TEXT,
    telework BOOLEAN,
    published_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    verified_key TEXT,
    verified_at BIGINT,
    indexed_at BIGINT NOT NULL,
    tsv TSVECTOR NOT NULL
);
CREATE INDEX feed_postings_updated ON feed_postings (updated_at, doc_id);
CREATE INDEX feed_postings_apply_until ON feed_postings (apply_until, doc_id);
CREATE INDEX feed_postings_start ON feed_postings (start_date, doc_id);
CREATE INDEX feed_postings_author ON feed_postings (author);
CREATE INDEX feed_postings_kind ON feed_postings (kind);
CREATE INDEX feed_postings_tsv ON feed_postings USING GIN (tsv);

-- Multi-valued facets (catégorie, filière, cadre d'emplois, ROME code, métier label,
-- commune, département, région): one row per value.
CREATE TABLE feed_terms (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    doc_id BIGINT NOT NULL REFERENCES feed_postings (doc_id) ON DELETE CASCADE,
    PRIMARY KEY (field, value, doc_id)
);
CREATE INDEX feed_terms_doc ON feed_terms (doc_id);

-- Saved searches of HR users; `seen_doc_id` is the newest result the owner has seen.
CREATE TABLE saved_searches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    alert BOOLEAN NOT NULL DEFAULT TRUE,
    seen_doc_id BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (owner, name)
);
CREATE INDEX saved_searches_owner ON saved_searches (owner, created_at);
