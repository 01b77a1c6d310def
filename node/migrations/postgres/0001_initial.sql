-- Initial schema (PostgreSQL). Keep in step with ../sqlite/0001_initial.sql.
-- Times are Unix milliseconds (BIGINT); ids minted by the node are UUIDv7 text;
-- JSON documents are stored as text, exactly as built or received.

CREATE TABLE node_identity (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    name TEXT NOT NULL,
    siren TEXT NOT NULL,
    kind TEXT NOT NULL,
    username TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE node_keys (
    key_id TEXT PRIMARY KEY,
    public_key_multibase TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    is_current BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE UNIQUE INDEX node_keys_one_current ON node_keys (is_current) WHERE is_current;

CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'rh', 'lecteur')),
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'rh', 'lecteur')),
    account_id TEXT REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
-- At most one first-start (bootstrap) token, even when several processes start at once.
CREATE UNIQUE INDEX api_tokens_one_bootstrap ON api_tokens (name) WHERE name = 'bootstrap' AND account_id IS NULL;

CREATE TABLE audit_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
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
    version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX postings_status ON postings (status, updated_at);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    email TEXT,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE partners (
    id TEXT PRIMARY KEY,
    actor_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_id TEXT NOT NULL UNIQUE,
    activity_type TEXT NOT NULL,
    object_id TEXT NOT NULL,
    public BOOLEAN NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
