-- Feed (SQLite). Keep in step with ../postgres/0003_feed.sql.
-- One row per posting in the HR feed, local (published or closed) or received from a
-- partner (not deleted), kept in the same transaction as the posting itself. `doc_id`
-- increases with each posting's first indexing: saved searches use it to tell what is new.
-- Absent dates are stored as '9999-12-31' so that they sort last.
CREATE TABLE feed_postings (
    doc_id INTEGER PRIMARY KEY AUTOINCREMENT,
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
    quotite_pct INTEGER,
    working_time TEXT,
    telework INTEGER CHECK (telework IN (0, 1)),
    published_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    verified_key TEXT,
    verified_at INTEGER,
    indexed_at INTEGER NOT NULL
);
CREATE INDEX feed_postings_updated ON feed_postings (updated_at, doc_id);
CREATE INDEX feed_postings_apply_until ON feed_postings (apply_until, doc_id);
CREATE INDEX feed_postings_start ON feed_postings (start_date, doc_id);
CREATE INDEX feed_postings_author ON feed_postings (author);
CREATE INDEX feed_postings_kind ON feed_postings (kind);

-- Multi-valued facets (catégorie, filière, cadre d'emplois, ROME code, métier label,
-- commune, département, région): one row per value.
CREATE TABLE feed_terms (
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    doc_id INTEGER NOT NULL REFERENCES feed_postings (doc_id) ON DELETE CASCADE,
    PRIMARY KEY (field, value, doc_id)
) WITHOUT ROWID;
CREATE INDEX feed_terms_doc ON feed_terms (doc_id);

-- Full text: French stems computed by the node (FTS5 has no French stemmer), rowid = doc_id.
CREATE VIRTUAL TABLE feed_fts USING fts5 (
    name, body, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Saved searches of HR users; `seen_doc_id` is the newest result the owner has seen.
CREATE TABLE saved_searches (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    alert INTEGER NOT NULL DEFAULT 1 CHECK (alert IN (0, 1)),
    seen_doc_id INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (owner, name)
);
CREATE INDEX saved_searches_owner ON saved_searches (owner, created_at);
