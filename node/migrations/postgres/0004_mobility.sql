-- Mobility (PostgreSQL). Keep in step with ../sqlite/0004_mobility.sql.
-- The posting lifecycle gains `filled` and `expired`; MAD requests between two nodes and
-- their conventions; agents' opt-in profiles (ours, with their consent log and the nodes
-- that received them; partners', as received); immersion swaps; training registrations
-- and per-partner seat quotas.

-- Posting lifecycle: draft, published, filled, closed, expired.
ALTER TABLE postings DROP CONSTRAINT postings_status_check;
ALTER TABLE postings ADD CONSTRAINT postings_status_check
    CHECK (status IN ('draft', 'published', 'filled', 'closed', 'expired'));

-- A MAD request this node is a party to (it created it, or the other employer did), with
-- the latest version of its document (`MadRequest` of the protocol, history included).
-- `our_side` is this node's employer role; `agent_id` links the local agent at the origin.
-- `pending` is a transition this node fired and sent to the creator, not yet recorded in
-- a version; `refusal` the last refused transition (by us or by the partner), JSON.
CREATE TABLE mad_requests (
    id TEXT PRIMARY KEY,
    object_id TEXT NOT NULL UNIQUE,
    creator TEXT NOT NULL,
    our_side TEXT NOT NULL CHECK (our_side IN ('origin', 'host')),
    partner TEXT NOT NULL,
    agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    amendment BIGINT NOT NULL DEFAULT 0,
    pending TEXT,
    refusal TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    erased_at BIGINT
);
CREATE INDEX mad_requests_state ON mad_requests (state, updated_at);
CREATE INDEX mad_requests_agent ON mad_requests (agent_id);

-- The convention of a MAD request (amendment 0) and its avenants (1, 2…): the document
-- as drafted or signed, and which employer's proof it carries.
CREATE TABLE mad_conventions (
    convention_id TEXT PRIMARY KEY,
    mad_id TEXT NOT NULL REFERENCES mad_requests (id) ON DELETE CASCADE,
    amendment BIGINT NOT NULL,
    document TEXT NOT NULL,
    draft_sha256 TEXT,
    signed_by_origin BOOLEAN NOT NULL DEFAULT FALSE,
    signed_by_host BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (mad_id, amendment)
);

-- Our agents' opt-in profiles. `document` (the signed `AgentProfile`) is erased when the
-- agent withdraws; the row stays as a tombstone (its id is never reused).
CREATE TABLE profiles (
    id TEXT PRIMARY KEY,
    object_id TEXT NOT NULL UNIQUE,
    agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    handle TEXT NOT NULL UNIQUE,
    visibility TEXT NOT NULL,
    version BIGINT NOT NULL,
    document TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    withdrawn_at BIGINT
);
CREATE INDEX profiles_agent ON profiles (agent_id);

-- The consent log of each profile: one row per scope granted, closed when withdrawn or
-- replaced.
CREATE TABLE profile_consents (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    profile_id TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    text_version TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    withdrawn_at BIGINT,
    recorded_by TEXT NOT NULL
);
CREATE INDEX profile_consents_profile ON profile_consents (profile_id, seq);

-- The nodes a profile was sent to, the Delete that withdrew it from each, and each
-- node's acknowledgement of the erasure.
CREATE TABLE profile_recipients (
    profile_id TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    actor_id TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    delete_activity TEXT,
    delete_sent_at BIGINT,
    acknowledged_at BIGINT,
    PRIMARY KEY (profile_id, actor_id)
);
CREATE INDEX profile_recipients_delete ON profile_recipients (delete_activity);

-- Partners' agents' profiles, as received and verified. A withdrawn profile keeps its row
-- as a tombstone (`document` NULL, `deleted_at` set) that no later version revives.
CREATE TABLE remote_profiles (
    object_id TEXT PRIMARY KEY,
    author TEXT NOT NULL,
    version BIGINT NOT NULL,
    document TEXT,
    first_seen_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE INDEX remote_profiles_author ON remote_profiles (author);

-- Immersion swaps ("Vis mon job" with reciprocity): two agents of two nodes, each hosted
-- for a day by the other's employer. `object_id` is the swap's id (minted by the
-- proposer); each side's immersion is tracked.
CREATE TABLE immersion_swaps (
    id TEXT PRIMARY KEY,
    object_id TEXT NOT NULL UNIQUE,
    proposer TEXT NOT NULL,
    partner TEXT NOT NULL,
    our_profile TEXT NOT NULL,
    their_profile TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('proposed', 'agreed', 'declined', 'cancelled', 'done')),
    our_visit_on TEXT,
    their_visit_on TEXT,
    our_visit TEXT NOT NULL DEFAULT 'planned' CHECK (our_visit IN ('planned', 'done', 'missed')),
    their_visit TEXT NOT NULL DEFAULT 'planned' CHECK (their_visit IN ('planned', 'done', 'missed')),
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Registrations to training sessions: at the session's node (from every node) and at a
-- registering node (its own). `agent_id` is only known at the registering node.
CREATE TABLE training_registrations (
    id TEXT PRIMARY KEY,
    object_id TEXT NOT NULL UNIQUE,
    session TEXT NOT NULL,
    node TEXT NOT NULL,
    host TEXT NOT NULL,
    agent_id TEXT REFERENCES agents (id) ON DELETE SET NULL,
    status TEXT NOT NULL CHECK (status IN ('requested', 'confirmed', 'waitlisted', 'refused', 'cancelled')),
    reason TEXT,
    activity_id TEXT,
    registered_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX training_registrations_session ON training_registrations (session, registered_at);

-- Seats a session's node grants each partner on a session (per-partner quota).
CREATE TABLE training_quotas (
    session TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    quota BIGINT NOT NULL CHECK (quota >= 0),
    PRIMARY KEY (session, actor_id)
);
