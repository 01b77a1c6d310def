-- Federation (PostgreSQL). Keep in step with ../sqlite/0002_federation.sql.
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
ALTER TABLE partners ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE partners SET outgoing = 'accepted', incoming = 'accepted', updated_at = created_at WHERE status = 'accepted';
UPDATE partners SET outgoing = 'pending', updated_at = created_at WHERE status = 'pending';
ALTER TABLE partners DROP COLUMN status;
CREATE INDEX partners_inbox ON partners (inbox);
CREATE INDEX partners_shared_inbox ON partners (shared_inbox);

-- A key declared compromised (protocol §3.3): listed with `revoked` for 400 days, so that
-- partners refuse whatever it signs, whatever the `created` a thief writes.
ALTER TABLE node_keys ADD COLUMN revoked_at BIGINT;

-- Blocked nodes, by actor id or by origin (scheme://host[:port]).
CREATE TABLE blocks (
    target TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('actor', 'origin')),
    reason TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

-- Named groups of partners used for addressing; `url` is the circle's id.
CREATE TABLE circles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
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
    fetched_at BIGINT NOT NULL
);

-- Activities received (pushed to the inbox or pulled from an outbox), as received.
CREATE TABLE inbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    activity_id TEXT NOT NULL UNIQUE,
    actor_id TEXT NOT NULL,
    activity_type TEXT NOT NULL,
    object_id TEXT,
    document TEXT NOT NULL,
    via TEXT NOT NULL CHECK (via IN ('push', 'pull')),
    received_at BIGINT NOT NULL,
    -- Verification methods whose proofs were verified on receipt (JSON array): the
    -- activity's, then those of an embedded object signed by another actor (relay).
    signers TEXT NOT NULL DEFAULT '[]',
    processed_at BIGINT,
    outcome TEXT,
    -- Projection attempts, and the lease of the process projecting it (several processes
    -- may share one PostgreSQL database).
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    lease_owner TEXT
);
CREATE INDEX inbox_unprocessed ON inbox (seq) WHERE processed_at IS NULL;
CREATE INDEX inbox_object ON inbox (object_id);
CREATE INDEX inbox_actor ON inbox (actor_id, seq);

-- Who may see each outbox activity: one row per `to`/`cc` entry.
CREATE TABLE outbox_audience (
    audience TEXT NOT NULL,
    seq BIGINT NOT NULL REFERENCES outbox (seq),
    PRIMARY KEY (audience, seq)
);
INSERT INTO outbox_audience (audience, seq)
    SELECT DISTINCT a.value, o.seq FROM outbox o,
        jsonb_array_elements_text(CASE WHEN jsonb_typeof(o.document::jsonb -> 'to') = 'array' THEN o.document::jsonb -> 'to' ELSE '[]'::jsonb END) AS a(value)
    ON CONFLICT DO NOTHING;
INSERT INTO outbox_audience (audience, seq)
    SELECT DISTINCT a.value, o.seq FROM outbox o,
        jsonb_array_elements_text(CASE WHEN jsonb_typeof(o.document::jsonb -> 'cc') = 'array' THEN o.document::jsonb -> 'cc' ELSE '[]'::jsonb END) AS a(value)
    ON CONFLICT DO NOTHING;

-- One delivery job per (activity, recipient inbox).
CREATE TABLE deliveries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_seq BIGINT NOT NULL REFERENCES outbox (seq),
    inbox_url TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    first_attempt_at BIGINT,
    last_attempt_at BIGINT,
    last_status BIGINT,
    last_code TEXT,
    last_error TEXT,
    auth_retried BOOLEAN NOT NULL DEFAULT FALSE,
    lease_until BIGINT,
    lease_owner TEXT,
    finished_at BIGINT,
    UNIQUE (outbox_seq, inbox_url)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_inbox ON deliveries (inbox_url, state);

-- Health of each recipient inbox, and its circuit breaker.
CREATE TABLE delivery_targets (
    inbox_url TEXT PRIMARY KEY,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    circuit_open_until BIGINT,
    last_success_at BIGINT,
    last_failure_at BIGINT,
    last_error TEXT
);

-- Pull cursor per followed partner (the last `next` URL processed).
CREATE TABLE sync_state (
    actor_id TEXT PRIMARY KEY,
    next_url TEXT,
    last_pull_at BIGINT,
    last_success_at BIGINT,
    last_error TEXT,
    items_pulled BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    lease_owner TEXT,
    -- When the next periodic pull is due (interval with jitter); a request (operator,
    -- partner back after failures) sets requested_at and makes it due at once.
    next_pull_at BIGINT,
    requested_at BIGINT
);

-- Postings of other nodes, as received (pushed, pulled or relayed) and verified.
-- A deleted posting keeps its row as a tombstone (`deleted_at` set, `document` NULL)
-- that no later Create or Update revives.
CREATE TABLE remote_postings (
    object_id TEXT PRIMARY KEY,
    author TEXT NOT NULL,
    relayed_by TEXT,
    kind TEXT,
    version BIGINT NOT NULL,
    document TEXT,
    verified_key TEXT,
    verified_at BIGINT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX remote_postings_author ON remote_postings (author);
CREATE INDEX remote_postings_updated ON remote_postings (updated_at);

-- Local objects that were deleted: their ids answer 410 with a Tombstone.
CREATE TABLE tombstones (
    object_id TEXT PRIMARY KEY,
    former_type TEXT NOT NULL,
    deleted_at BIGINT NOT NULL
);

-- Node-wide settings changed at run time (partnership policy).
CREATE TABLE node_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
