-- Initial schema (SQLite). Keep in step with ../postgres/0001_initial.sql.
-- Times are Unix milliseconds (INTEGER); ids minted by the node are UUIDv7 text;
-- JSON documents are stored as text, exactly as built or received.

CREATE TABLE node_identity (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    name TEXT NOT NULL,
    siren TEXT NOT NULL,
    kind TEXT NOT NULL,
    username TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE node_keys (
    key_id TEXT PRIMARY KEY,
    public_key_multibase TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    is_current INTEGER NOT NULL DEFAULT 0 CHECK (is_current IN (0, 1))
);
CREATE UNIQUE INDEX node_keys_one_current ON node_keys (is_current) WHERE is_current = 1;

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'rh', 'lecteur')),
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'rh', 'lecteur')),
    account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    last_used_at INTEGER,
    revoked_at INTEGER
);
-- At most one first-start (bootstrap) token, even when several processes start at once.
CREATE UNIQUE INDEX api_tokens_one_bootstrap ON api_tokens (name) WHERE name = 'bootstrap' AND account_id IS NULL;

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);

CREATE TABLE postings (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'closed')),
    document TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    published_at INTEGER
);
CREATE INDEX postings_status ON postings (status, updated_at);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    email TEXT,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    actor_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    activity_id TEXT NOT NULL UNIQUE,
    activity_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    public INTEGER NOT NULL CHECK (public IN (0, 1)),
    document TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
