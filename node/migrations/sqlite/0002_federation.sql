-- Federation (SQLite). Keep in step with ../postgres/0002_federation.sql.
-- Partnerships, the block list and circles; the cache of remote actors; the inbox of
-- received activities (stored before 202, projected afterwards); the audience of each
-- outbox activity (for signed pulls); delivery jobs per recipient inbox and the state of
-- each inbox; the pull cursor per partner; the cache of remote postings; tombstones of
-- deleted local objects; node settings.

-- A remote node we know, and the partnership in each direction:
-- `outgoing` is our Follow of it (it sends us what it addresses to its partners),
-- `incoming` is its Follow of us (it is in our followers collection).
ALTER TABLE partners ADD COLUMN inbox TEXT NOT NULL DEFAULT '';
ALTER TABLE partners ADD COLUMN shared_inbox TEXT;
ALTER TABLE partners ADD COLUMN outbox TEXT;
ALTER TABLE partners ADD COLUMN siren TEXT;
ALTER TABLE partners ADD COLUMN outgoing TEXT NOT NULL DEFAULT 'none'
    CHECK (outgoing IN ('none', 'pending', 'accepted', 'rejected'));
ALTER TABLE partners ADD COLUMN outgoing_follow_id TEXT;
ALTER TABLE partners ADD COLUMN incoming TEXT NOT NULL DEFAULT 'none'
    CHECK (incoming IN ('none', 'pending', 'accepted', 'rejected'));
ALTER TABLE partners ADD COLUMN incoming_follow TEXT;
ALTER TABLE partners ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
UPDATE partners SET outgoing = 'accepted', incoming = 'accepted', updated_at = created_at WHERE status = 'accepted';
UPDATE partners SET outgoing = 'pending', updated_at = created_at WHERE status = 'pending';
ALTER TABLE partners DROP COLUMN status;
CREATE INDEX partners_inbox ON partners (inbox);
CREATE INDEX partners_shared_inbox ON partners (shared_inbox);

-- A key declared compromised (protocol §3.3): listed with `revoked` for 400 days, so that
-- partners refuse whatever it signs, whatever the `created` a thief writes.
ALTER TABLE node_keys ADD COLUMN revoked_at INTEGER;

-- Blocked nodes, by actor id or by origin (scheme://host[:port]).
CREATE TABLE blocks (
    target TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('actor', 'origin')),
    reason TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

-- Named groups of partners used for addressing; `url` is the circle's id.
CREATE TABLE circles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE circle_members (
    circle_id TEXT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    actor_id TEXT NOT NULL,
    PRIMARY KEY (circle_id, actor_id)
);
CREATE INDEX circle_members_actor ON circle_members (actor_id);

-- Actor documents fetched from their origin (cache of at most 24 hours).
CREATE TABLE remote_actors (
    actor_id TEXT PRIMARY KEY,
    document TEXT NOT NULL,
    fetched_at INTEGER NOT NULL
);

-- Activities received (pushed to the inbox or pulled from an outbox), as received.
CREATE TABLE inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    activity_id TEXT NOT NULL UNIQUE,
    actor_id TEXT NOT NULL,
    activity_type TEXT NOT NULL,
    object_id TEXT,
    document TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ('push', 'pull')),
    received_at INTEGER NOT NULL,
    -- Verification methods whose proofs were verified on receipt (JSON array): the
    -- activity's, then those of an embedded object signed by another actor (relay).
    signers TEXT NOT NULL DEFAULT '[]',
    processed_at INTEGER,
    outcome TEXT,
    -- Projection attempts, and the lease of the process projecting it (several processes
    -- may share one PostgreSQL database).
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    lease_owner TEXT
);
CREATE INDEX inbox_unprocessed ON inbox (seq) WHERE processed_at IS NULL;
CREATE INDEX inbox_object ON inbox (object_id);
CREATE INDEX inbox_actor ON inbox (actor_id, seq);

-- Who may see each outbox activity: one row per `to`/`cc` entry.
CREATE TABLE outbox_audience (
    audience TEXT NOT NULL,
    seq INTEGER NOT NULL REFERENCES outbox (seq),
    PRIMARY KEY (audience, seq)
);
INSERT INTO outbox_audience (audience, seq)
    SELECT DISTINCT j.value, o.seq FROM outbox o, json_each(o.document, '$.to') j
    WHERE json_type(o.document, '$.to') = 'array';
INSERT OR IGNORE INTO outbox_audience (audience, seq)
    SELECT DISTINCT j.value, o.seq FROM outbox o, json_each(o.document, '$.cc') j
    WHERE json_type(o.document, '$.cc') = 'array';

-- One delivery job per (activity, recipient inbox).
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_seq INTEGER NOT NULL REFERENCES outbox (seq),
    inbox_url TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    first_attempt_at INTEGER,
    last_attempt_at INTEGER,
    last_status INTEGER,
    last_code TEXT,
    last_error TEXT,
    auth_retried INTEGER NOT NULL DEFAULT 0 CHECK (auth_retried IN (0, 1)),
    lease_until INTEGER,
    lease_owner TEXT,
    finished_at INTEGER,
    UNIQUE (outbox_seq, inbox_url)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_inbox ON deliveries (inbox_url, state);

-- Health of each recipient inbox, and its circuit breaker.
CREATE TABLE delivery_targets (
    inbox_url TEXT PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    circuit_open_until INTEGER,
    last_success_at INTEGER,
    last_failure_at INTEGER,
    last_error TEXT
);

-- Pull cursor per followed partner (the last `next` URL processed).
CREATE TABLE sync_state (
    actor_id TEXT PRIMARY KEY,
    next_url TEXT,
    last_pull_at INTEGER,
    last_success_at INTEGER,
    last_error TEXT,
    items_pulled INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER,
    lease_owner TEXT,
    -- When the next periodic pull is due (interval with jitter); a request (operator,
    -- partner back after failures) sets requested_at and makes it due at once.
    next_pull_at INTEGER,
    requested_at INTEGER
);

-- Postings of other nodes, as received (pushed, pulled or relayed) and verified.
-- A deleted posting keeps its row as a tombstone (`deleted_at` set, `document` NULL)
-- that no later Create or Update revives.
CREATE TABLE remote_postings (
    object_id TEXT PRIMARY KEY,
    author TEXT NOT NULL,
    relayed_by TEXT,
    kind TEXT,
    version INTEGER NOT NULL,
    document TEXT,
    verified_key TEXT,
    verified_at INTEGER NOT NULL,
    first_seen_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX remote_postings_author ON remote_postings (author);
CREATE INDEX remote_postings_updated ON remote_postings (updated_at);

-- Local objects that were deleted: their ids answer 410 with a Tombstone.
CREATE TABLE tombstones (
    object_id TEXT PRIMARY KEY,
    former_type TEXT NOT NULL,
    deleted_at INTEGER NOT NULL
);

-- Node-wide settings changed at run time (partnership policy).
CREATE TABLE node_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
