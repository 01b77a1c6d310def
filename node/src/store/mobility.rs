//! Mobility storage: MAD requests and their conventions, agents' profiles (ours and
//! partners'), immersion swaps and training registrations.
//!
//! A MAD request row holds the latest version of the request's document (the protocol's
//! `MadRequest`, history included) and what this node alone knows: its side, the local
//! agent, a transition it sent and that is not yet recorded, the last refusal. Every
//! change is guarded by the stored version (optimistic concurrency): two processes on one
//! PostgreSQL database, or a timer and an HR user, cannot both apply a transition to the
//! same version.

use serde_json::Value;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AuditRecord, BeginWrite as _, Inner, NewActivity, Result, Store, StoreError, from_ms,
    json_text, map_err, now, parse_json, parse_uuid, postgres, sqlite, to_ms,
};

/// A MAD request known to this node.
#[derive(Debug, Clone, PartialEq)]
pub struct MadRow {
    /// Local id (API paths).
    pub id: Uuid,
    /// The request's id (URL).
    pub object_id: String,
    /// The node that created it (its single writer).
    pub creator: String,
    /// This node's employer role: `origin` or `host`.
    pub our_side: String,
    /// The other employer's actor id.
    pub partner: String,
    /// The local agent (at the origin).
    pub agent_id: Option<Uuid>,
    /// Current state (wire value).
    pub state: String,
    /// Version of the stored document.
    pub version: i64,
    /// The latest `MadRequest` document.
    pub document: Value,
    /// Number of the convention in progress or in force (0, then one per avenant).
    pub amendment: i64,
    /// A transition this node sent to the creator, not yet recorded.
    pub pending: Option<Value>,
    /// The last refusal (by this node or by the partner).
    pub refusal: Option<Value>,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// When its personal data was erased (retention).
    pub erased_at: Option<OffsetDateTime>,
}

/// A MAD request to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMad {
    /// Local id.
    pub id: Uuid,
    /// The request's id.
    pub object_id: String,
    /// Its creator.
    pub creator: String,
    /// `origin` or `host`.
    pub our_side: String,
    /// The other employer.
    pub partner: String,
    /// The local agent.
    pub agent_id: Option<Uuid>,
    /// State.
    pub state: String,
    /// Version.
    pub version: i64,
    /// The document.
    pub document: Value,
}

/// A change of a MAD request, applied with [`Store::update_mad_request`]. `None` leaves a
/// column as it is; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MadChange {
    /// New state.
    pub state: Option<String>,
    /// New version and document.
    pub document: Option<(i64, Value)>,
    /// New convention number.
    pub amendment: Option<i64>,
    /// Pending transition.
    pub pending: Option<Option<Value>>,
    /// Last refusal.
    pub refusal: Option<Option<Value>>,
    /// Local agent.
    pub agent_id: Option<Option<Uuid>>,
    /// A convention to insert or replace (by request and amendment number).
    pub convention: Option<ConventionRow>,
    /// Marks the personal data erased.
    pub erased: bool,
}

/// A convention (or avenant) of a MAD request.
#[derive(Debug, Clone, PartialEq)]
pub struct ConventionRow {
    /// The convention's id (URL).
    pub convention_id: String,
    /// 0 for the convention, n for the n-th avenant.
    pub amendment: i64,
    /// The document, as drafted or signed.
    pub document: Value,
    /// SHA-256 (hex) of the draft sent to the agent.
    pub draft_sha256: Option<String>,
    /// Carries a proof of the origin.
    pub signed_by_origin: bool,
    /// Carries a proof of the host.
    pub signed_by_host: bool,
}

const MAD_COLUMNS: &str = "id, object_id, creator, our_side, partner, agent_id, state, version, \
     document, amendment, pending, refusal, created_at, updated_at, erased_at";

macro_rules! mad_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let agent: Option<String> = col!(r, "agent_id");
        let document: String = col!(r, "document");
        let pending: Option<String> = col!(r, "pending");
        let refusal: Option<String> = col!(r, "refusal");
        let erased: Option<i64> = col!(r, "erased_at");
        MadRow {
            id: parse_uuid(&id)?,
            object_id: col!(r, "object_id"),
            creator: col!(r, "creator"),
            our_side: col!(r, "our_side"),
            partner: col!(r, "partner"),
            agent_id: agent.as_deref().map(parse_uuid).transpose()?,
            state: col!(r, "state"),
            version: col!(r, "version"),
            document: parse_json(&document)?,
            amendment: col!(r, "amendment"),
            pending: pending.as_deref().map(parse_json).transpose()?,
            refusal: refusal.as_deref().map(parse_json).transpose()?,
            created_at: from_ms(col!(r, "created_at")),
            updated_at: from_ms(col!(r, "updated_at")),
            erased_at: erased.map(from_ms),
        }
    }};
}

macro_rules! convention_from_row {
    ($r:expr) => {{
        let r = &$r;
        let document: String = col!(r, "document");
        ConventionRow {
            convention_id: col!(r, "convention_id"),
            amendment: col!(r, "amendment"),
            document: parse_json(&document)?,
            draft_sha256: col!(r, "draft_sha256"),
            signed_by_origin: col!(r, "signed_by_origin"),
            signed_by_host: col!(r, "signed_by_host"),
        }
    }};
}

/// Filter of [`Store::mad_requests`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MadFilter {
    /// Only requests in one of these states (all when empty).
    pub states: Vec<String>,
    /// Only requests created by this node (`Some(actor)`).
    pub creator: Option<String>,
    /// Only requests of this local agent.
    pub agent_id: Option<Uuid>,
}

impl Store {
    /// Inserts a MAD request, with the activity that sends it (if any) and its audit
    /// record, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the request id is already known.
    pub async fn insert_mad_request(
        &self,
        new: &NewMad,
        activity: Option<&NewActivity>,
        audit: Option<&AuditRecord>,
    ) -> Result<MadRow> {
        let t = to_ms(now());
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO mad_requests (id, object_id, creator, our_side, partner, agent_id, state, version, \
                 document, amendment, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $10)",
            )
            .bind(new.id.to_string())
            .bind(&new.object_id)
            .bind(&new.creator)
            .bind(&new.our_side)
            .bind(&new.partner)
            .bind(new.agent_id.map(|a| a.to_string()))
            .bind(&new.state)
            .bind(new.version)
            .bind(json_text(&new.document))
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("record a MAD request"))?;
            if let Some(act) = activity {
                let _seq = outbox_append!(tx, lock, act);
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if activity.is_some() {
            self.notify_outbox();
        }
        self.mad_request(new.id).await
    }

    /// One MAD request.
    pub async fn mad_request(&self, id: Uuid) -> Result<MadRow> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {MAD_COLUMNS} FROM mad_requests WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a MAD request"))?
                .ok_or_else(|| StoreError::not_found(format!("demande de mise à disposition {id}")))?;
            Ok(mad_from_row!(row))
        })
    }

    /// The MAD request whose id (URL) is `object_id`, if known.
    pub async fn mad_request_by_object(&self, object_id: &str) -> Result<Option<MadRow>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {MAD_COLUMNS} FROM mad_requests WHERE object_id = $1"));
            let row = sqlx::query(sql)
                .bind(object_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a MAD request"))?;
            Ok(match row {
                Some(r) => Some(mad_from_row!(r)),
                None => None,
            })
        })
    }

    /// MAD requests, most recently changed first.
    pub async fn mad_requests(&self, filter: &MadFilter) -> Result<Vec<MadRow>> {
        let rows: Vec<MadRow> = both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {MAD_COLUMNS} FROM mad_requests WHERE ($1 IS NULL OR creator = $1) \
                 AND ($2 IS NULL OR agent_id = $2) ORDER BY updated_at DESC, id DESC"
            ));
            let rows = sqlx::query(sql)
                .bind(&filter.creator)
                .bind(filter.agent_id.map(|a| a.to_string()))
                .fetch_all(pool)
                .await
                .map_err(map_err("list MAD requests"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(mad_from_row!(r));
            }
            out
        });
        Ok(rows
            .into_iter()
            .filter(|r| filter.states.is_empty() || filter.states.contains(&r.state))
            .collect())
    }

    /// Applies `change` to a MAD request if its stored version is still
    /// `expected_version`, with the activities it sends and its audit record, in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`] when the
    /// request changed since `expected_version` was read.
    pub async fn update_mad_request(
        &self,
        id: Uuid,
        expected_version: i64,
        change: &MadChange,
        activities: &[NewActivity],
        audit: Option<&AuditRecord>,
    ) -> Result<MadRow> {
        let t = to_ms(now());
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let (version, document) = match &change.document {
                Some((v, d)) => (Some(*v), Some(json_text(d))),
                None => (None, None),
            };
            let n = sqlx::query(
                "UPDATE mad_requests SET state = COALESCE($1, state), version = COALESCE($2, version), \
                 document = COALESCE($3, document), amendment = COALESCE($4, amendment), \
                 pending = CASE WHEN $5 THEN $6 ELSE pending END, \
                 refusal = CASE WHEN $7 THEN $8 ELSE refusal END, \
                 agent_id = CASE WHEN $9 THEN $10 ELSE agent_id END, \
                 erased_at = CASE WHEN $11 THEN $12 ELSE erased_at END, \
                 updated_at = $12 WHERE id = $13 AND version = $14",
            )
            .bind(&change.state)
            .bind(version)
            .bind(document)
            .bind(change.amendment)
            .bind(change.pending.is_some())
            .bind(change.pending.clone().flatten().map(|v| json_text(&v)))
            .bind(change.refusal.is_some())
            .bind(change.refusal.clone().flatten().map(|v| json_text(&v)))
            .bind(change.agent_id.is_some())
            .bind(change.agent_id.flatten().map(|a| a.to_string()))
            .bind(change.erased)
            .bind(t)
            .bind(id.to_string())
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(map_err("update a MAD request"))?
            .rows_affected();
            if n == 0 {
                let exists = sqlx::query("SELECT 1 AS x FROM mad_requests WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err("read a MAD request"))?
                    .is_some();
                return Err(if exists {
                    StoreError::conflict(format!(
                        "la demande {id} a changé depuis la version {expected_version} ; rechargez-la et recommencez"
                    ))
                } else {
                    StoreError::not_found(format!("demande de mise à disposition {id}"))
                });
            }
            if let Some(c) = &change.convention {
                sqlx::query(
                    "INSERT INTO mad_conventions (convention_id, mad_id, amendment, document, draft_sha256, \
                     signed_by_origin, signed_by_host, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                     ON CONFLICT (mad_id, amendment) DO UPDATE SET convention_id = excluded.convention_id, \
                     document = excluded.document, draft_sha256 = COALESCE(excluded.draft_sha256, mad_conventions.draft_sha256), \
                     signed_by_origin = excluded.signed_by_origin, signed_by_host = excluded.signed_by_host, \
                     updated_at = excluded.updated_at",
                )
                .bind(&c.convention_id)
                .bind(id.to_string())
                .bind(c.amendment)
                .bind(json_text(&c.document))
                .bind(&c.draft_sha256)
                .bind(c.signed_by_origin)
                .bind(c.signed_by_host)
                .bind(t)
                .execute(&mut *tx)
                .await
                .map_err(map_err("record a convention"))?;
            }
            for act in activities {
                let _seq = outbox_append!(tx, lock, act);
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if !activities.is_empty() {
            self.notify_outbox();
        }
        self.mad_request(id).await
    }

    /// The conventions of a MAD request, by amendment number.
    pub async fn mad_conventions(&self, mad_id: Uuid) -> Result<Vec<ConventionRow>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT convention_id, amendment, document, draft_sha256, signed_by_origin, signed_by_host \
                 FROM mad_conventions WHERE mad_id = $1 ORDER BY amendment",
            )
            .bind(mad_id.to_string())
            .fetch_all(pool)
            .await
            .map_err(map_err("list conventions"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(convention_from_row!(r));
            }
            Ok(out)
        })
    }
}

impl Store {
    /// The local agent of our profile `object_id`, if it is one of ours.
    pub async fn profile_agent(&self, object_id: &str) -> Result<Option<Uuid>> {
        both!(self, pool => {
            let row = sqlx::query("SELECT agent_id FROM profiles WHERE object_id = $1")
                .bind(object_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a profile"))?;
            let agent: Option<String> = match row {
                Some(r) => col!(r, "agent_id"),
                None => None,
            };
            agent.as_deref().map(parse_uuid).transpose()
        })
    }
}

impl Store {
    /// Erases the agent's identity from the MAD requests where this node is the host and
    /// which reached one of `final_states` before `before` (retention, spec/protocol.md
    /// §15): the stored document loses `agent.disclosed` and its proof (it no longer
    /// verifies, and is no longer served); terms and history stay. Returns how many
    /// requests were erased. The signed conventions, administrative acts of both
    /// employers, follow the archiving rules of such acts and are kept.
    pub async fn erase_host_identities(
        &self,
        before: OffsetDateTime,
        final_states: &[&str],
    ) -> Result<u64> {
        let t = to_ms(now());
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let rows = sqlx::query(
                "SELECT id, state, document FROM mad_requests WHERE our_side = 'host' \
                 AND erased_at IS NULL AND updated_at < $1",
            )
            .bind(to_ms(before))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err("list MAD requests to erase"))?;
            let mut n = 0;
            for r in rows {
                let state: String = col!(r, "state");
                if !final_states.contains(&state.as_str()) {
                    continue;
                }
                let id: String = col!(r, "id");
                let text: String = col!(r, "document");
                let mut doc = parse_json(&text)?;
                if let Some(m) = doc.as_object_mut() {
                    m.remove("proof");
                    if let Some(agent) = m.get_mut("agent").and_then(Value::as_object_mut) {
                        agent.remove("disclosed");
                    }
                }
                sqlx::query("UPDATE mad_requests SET document = $1, erased_at = $2 WHERE id = $3")
                    .bind(json_text(&doc))
                    .bind(t)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("erase a MAD request's personal data"))?;
                n += 1;
            }
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(n)
        })
    }
}

/// One of our agents' profiles (a tombstone once withdrawn: `document` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRow {
    /// Local id.
    pub id: Uuid,
    /// The profile's id (URL).
    pub object_id: String,
    /// The agent.
    pub agent_id: Option<Uuid>,
    /// Pseudonymous handle.
    pub handle: String,
    /// Visibility chosen by the agent.
    pub visibility: String,
    /// Version.
    pub version: i64,
    /// The signed `AgentProfile`; `None` once withdrawn.
    pub document: Option<Value>,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Withdrawal.
    pub withdrawn_at: Option<OffsetDateTime>,
}

/// A consent given for a profile's scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    /// The scope (visibility) consented to.
    pub scope: String,
    /// Version of the consent text the agent read.
    pub text_version: String,
    /// When given.
    pub granted_at: OffsetDateTime,
    /// When withdrawn or replaced.
    pub withdrawn_at: Option<OffsetDateTime>,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A node a profile was sent to.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileRecipient {
    /// The node's actor id.
    pub actor_id: String,
    /// First sent.
    pub sent_at: OffsetDateTime,
    /// The `Delete` that withdrew it from that node.
    pub delete_activity: Option<String>,
    /// When the `Delete` was sent.
    pub delete_sent_at: Option<OffsetDateTime>,
    /// When the node acknowledged the erasure.
    pub acknowledged_at: Option<OffsetDateTime>,
}

/// A partner's profile as received (a tombstone once withdrawn).
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteProfile {
    /// Its id.
    pub object_id: String,
    /// Its node.
    pub author: String,
    /// Version.
    pub version: i64,
    /// The signed profile; `None` once withdrawn.
    pub document: Option<Value>,
    /// First received.
    pub first_seen_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Withdrawal.
    pub deleted_at: Option<OffsetDateTime>,
}

/// A write of one of our profiles, with [`Store::write_profile`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileWrite {
    /// Local id.
    pub id: Uuid,
    /// The profile's id (URL).
    pub object_id: String,
    /// The agent (creation).
    pub agent_id: Option<Uuid>,
    /// Pseudonymous handle (creation).
    pub handle: String,
    /// The version it replaces (`None` to create).
    pub expected_version: Option<i64>,
    /// The new version (its document is `None` for a withdrawal).
    pub version: i64,
    /// The document.
    pub document: Option<Value>,
    /// Visibility.
    pub visibility: String,
    /// A consent to open (its scope is `visibility`), closing the open ones.
    pub consent: Option<(String, String)>,
    /// Close every open consent (withdrawal).
    pub close_consents: bool,
    /// Nodes the profile is sent to now (recorded once).
    pub recipients: Vec<String>,
    /// A `Delete` sent to some recipients: its id and the nodes.
    pub deleted_for: Option<(String, Vec<String>)>,
    /// Marks the profile withdrawn.
    pub withdrawn: bool,
}

macro_rules! profile_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let agent: Option<String> = col!(r, "agent_id");
        let document: Option<String> = col!(r, "document");
        let withdrawn: Option<i64> = col!(r, "withdrawn_at");
        ProfileRow {
            id: parse_uuid(&id)?,
            object_id: col!(r, "object_id"),
            agent_id: agent.as_deref().map(parse_uuid).transpose()?,
            handle: col!(r, "handle"),
            visibility: col!(r, "visibility"),
            version: col!(r, "version"),
            document: document.as_deref().map(parse_json).transpose()?,
            created_at: from_ms(col!(r, "created_at")),
            updated_at: from_ms(col!(r, "updated_at")),
            withdrawn_at: withdrawn.map(from_ms),
        }
    }};
}

const PROFILE_COLUMNS: &str = "id, object_id, agent_id, handle, visibility, version, document, created_at, updated_at, withdrawn_at";

impl Store {
    /// Creates or changes one of our profiles with the activities it sends, its consent
    /// log and its recipients, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the handle is taken or the profile changed since
    /// `expected_version`; [`StoreError::NotFound`] for an unknown id.
    pub async fn write_profile(
        &self,
        w: &ProfileWrite,
        activities: &[NewActivity],
        audit: Option<&AuditRecord>,
    ) -> Result<ProfileRow> {
        let t = to_ms(now());
        let (id, object_id, agent_id, handle) =
            (w.id, w.object_id.as_str(), w.agent_id, w.handle.as_str());
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let doc = w.document.as_ref().map(json_text);
            match w.expected_version {
                None => {
                    sqlx::query(
                        "INSERT INTO profiles (id, object_id, agent_id, handle, visibility, version, document, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                    )
                    .bind(id.to_string())
                    .bind(object_id)
                    .bind(agent_id.map(|a| a.to_string()))
                    .bind(handle)
                    .bind(&w.visibility)
                    .bind(w.version)
                    .bind(&doc)
                    .bind(t)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("create the profile"))?;
                }
                Some(expected) => {
                    let n = sqlx::query(
                        "UPDATE profiles SET visibility = $1, version = $2, document = $3, updated_at = $4, \
                         withdrawn_at = CASE WHEN $5 THEN $4 ELSE withdrawn_at END \
                         WHERE id = $6 AND version = $7 AND withdrawn_at IS NULL",
                    )
                    .bind(&w.visibility)
                    .bind(w.version)
                    .bind(&doc)
                    .bind(t)
                    .bind(w.withdrawn)
                    .bind(id.to_string())
                    .bind(expected)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("update the profile"))?
                    .rows_affected();
                    if n == 0 {
                        return Err(StoreError::conflict(format!(
                            "le profil {id} a changé ou a été retiré ; rechargez-le"
                        )));
                    }
                }
            }
            if w.close_consents || w.consent.is_some() {
                sqlx::query("UPDATE profile_consents SET withdrawn_at = $1 WHERE profile_id = $2 AND withdrawn_at IS NULL")
                    .bind(t)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("close consents"))?;
            }
            if let Some((text_version, recorded_by)) = &w.consent {
                sqlx::query(
                    "INSERT INTO profile_consents (profile_id, scope, text_version, granted_at, recorded_by) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id.to_string())
                .bind(&w.visibility)
                .bind(text_version)
                .bind(t)
                .bind(recorded_by)
                .execute(&mut *tx)
                .await
                .map_err(map_err("record a consent"))?;
            }
            for actor in &w.recipients {
                sqlx::query(
                    "INSERT INTO profile_recipients (profile_id, actor_id, sent_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (profile_id, actor_id) DO UPDATE SET delete_activity = NULL, delete_sent_at = NULL, \
                     acknowledged_at = NULL, sent_at = CASE WHEN profile_recipients.delete_activity IS NULL \
                     THEN profile_recipients.sent_at ELSE excluded.sent_at END",
                )
                .bind(id.to_string())
                .bind(actor)
                .bind(t)
                .execute(&mut *tx)
                .await
                .map_err(map_err("record a recipient"))?;
            }
            if let Some((activity, actors)) = &w.deleted_for {
                for actor in actors {
                    sqlx::query(
                        "UPDATE profile_recipients SET delete_activity = $1, delete_sent_at = $2 WHERE profile_id = $3 AND actor_id = $4",
                    )
                    .bind(activity)
                    .bind(t)
                    .bind(id.to_string())
                    .bind(actor)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("record a withdrawal"))?;
                }
            }
            for act in activities {
                let _seq = outbox_append!(tx, lock, act);
            }
            if w.withdrawn {
                sqlx::query(
                    "INSERT INTO tombstones (object_id, former_type, deleted_at) VALUES ($1, 'AgentProfile', $2) ON CONFLICT DO NOTHING",
                )
                .bind(object_id)
                .bind(t)
                .execute(&mut *tx)
                .await
                .map_err(map_err("record a tombstone"))?;
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if !activities.is_empty() {
            self.notify_outbox();
        }
        self.profile(id).await
    }

    /// One of our profiles.
    pub async fn profile(&self, id: Uuid) -> Result<ProfileRow> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a profile"))?
                .ok_or_else(|| StoreError::not_found(format!("profil {id}")))?;
            Ok(profile_from_row!(row))
        })
    }

    /// Our profiles, most recently changed first (withdrawn ones too).
    pub async fn profiles(&self) -> Result<Vec<ProfileRow>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PROFILE_COLUMNS} FROM profiles ORDER BY updated_at DESC, id DESC"));
            let rows = sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map_err(map_err("list profiles"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(profile_from_row!(r));
            }
            Ok(out)
        })
    }

    /// The consent log of a profile, oldest first.
    pub async fn profile_consents(&self, id: Uuid) -> Result<Vec<Consent>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT scope, text_version, granted_at, withdrawn_at, recorded_by FROM profile_consents \
                 WHERE profile_id = $1 ORDER BY seq",
            )
            .bind(id.to_string())
            .fetch_all(pool)
            .await
            .map_err(map_err("read a consent log"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let withdrawn: Option<i64> = col!(r, "withdrawn_at");
                out.push(Consent {
                    scope: col!(r, "scope"),
                    text_version: col!(r, "text_version"),
                    granted_at: from_ms(col!(r, "granted_at")),
                    withdrawn_at: withdrawn.map(from_ms),
                    recorded_by: col!(r, "recorded_by"),
                });
            }
            Ok(out)
        })
    }

    /// The nodes a profile was sent to.
    pub async fn profile_recipients(&self, id: Uuid) -> Result<Vec<ProfileRecipient>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT actor_id, sent_at, delete_activity, delete_sent_at, acknowledged_at FROM profile_recipients \
                 WHERE profile_id = $1 ORDER BY actor_id",
            )
            .bind(id.to_string())
            .fetch_all(pool)
            .await
            .map_err(map_err("read a profile's recipients"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let del: Option<i64> = col!(r, "delete_sent_at");
                let ack: Option<i64> = col!(r, "acknowledged_at");
                out.push(ProfileRecipient {
                    actor_id: col!(r, "actor_id"),
                    sent_at: from_ms(col!(r, "sent_at")),
                    delete_activity: col!(r, "delete_activity"),
                    delete_sent_at: del.map(from_ms),
                    acknowledged_at: ack.map(from_ms),
                });
            }
            Ok(out)
        })
    }

    /// Records `actor`'s acknowledgement of our `Delete` `activity_id`; returns whether it
    /// was one of ours to that node.
    pub async fn ack_profile_delete(&self, activity_id: &str, actor: &str) -> Result<bool> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            let n = sqlx::query(
                "UPDATE profile_recipients SET acknowledged_at = COALESCE(acknowledged_at, $1) \
                 WHERE delete_activity = $2 AND actor_id = $3",
            )
            .bind(to_ms(now()))
            .bind(activity_id)
            .bind(actor)
            .execute(&*writer)
            .await
            .map_err(map_err("record an acknowledgement"))?
            .rows_affected();
            Ok(n > 0)
        })
    }

    /// Stores a verified version of a partner's profile: a higher version replaces the
    /// stored one; a withdrawn profile stays withdrawn (§8.5).
    pub async fn apply_profile_version(
        &self,
        object_id: &str,
        author: &str,
        version: i64,
        document: &Value,
    ) -> Result<super::PostingApply> {
        let t = to_ms(now());
        let text = json_text(document);
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let current = sqlx::query("SELECT version, document, deleted_at FROM remote_profiles WHERE object_id = $1")
                .bind(object_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err("read a remote profile"))?;
            let outcome = match current {
                Some(r) => {
                    let v: i64 = col!(r, "version");
                    let deleted: Option<i64> = col!(r, "deleted_at");
                    let stored: Option<String> = col!(r, "document");
                    if deleted.is_some() {
                        super::PostingApply::Tombstoned
                    } else if version < v {
                        super::PostingApply::Stale
                    } else if version == v {
                        let same = stored
                            .as_deref()
                            .map(parse_json)
                            .transpose()?
                            .is_some_and(|s| super::same_content(&s, document));
                        if same { super::PostingApply::Stale } else { super::PostingApply::VersionConflict }
                    } else {
                        sqlx::query("UPDATE remote_profiles SET version = $1, document = $2, updated_at = $3 WHERE object_id = $4")
                            .bind(version)
                            .bind(&text)
                            .bind(t)
                            .bind(object_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(map_err("store a remote profile"))?;
                        super::PostingApply::Stored
                    }
                }
                None => {
                    sqlx::query(
                        "INSERT INTO remote_profiles (object_id, author, version, document, first_seen_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $5)",
                    )
                    .bind(object_id)
                    .bind(author)
                    .bind(version)
                    .bind(&text)
                    .bind(t)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("store a remote profile"))?;
                    super::PostingApply::Stored
                }
            };
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(outcome)
        })
    }

    /// Erases a partner's profile (withdrawal): its content goes, a tombstone stays, and
    /// `ack` (our acknowledgement to its node) is appended in the same transaction. A
    /// second delivery changes nothing and sends nothing. Returns whether it changed.
    pub async fn apply_profile_delete(
        &self,
        object_id: &str,
        author: &str,
        ack: Option<&NewActivity>,
    ) -> Result<bool> {
        let t = to_ms(now());
        let changed = both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query(
                "INSERT INTO remote_profiles (object_id, author, version, document, first_seen_at, updated_at, deleted_at) \
                 VALUES ($1, $2, 0, NULL, $3, $3, $3) \
                 ON CONFLICT (object_id) DO UPDATE SET document = NULL, deleted_at = excluded.deleted_at, \
                 updated_at = excluded.updated_at WHERE remote_profiles.deleted_at IS NULL",
            )
            .bind(object_id)
            .bind(author)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("erase a remote profile"))?
            .rows_affected();
            if n > 0 && let Some(act) = ack {
                let _seq = outbox_append!(tx, lock, act);
            }
            tx.commit().await.map_err(map_err("commit"))?;
            n > 0
        });
        if changed && ack.is_some() {
            self.notify_outbox();
        }
        Ok(changed)
    }

    /// Partners' profiles (with the withdrawn ones when `with_deleted`), newest first.
    pub async fn remote_profiles(&self, with_deleted: bool) -> Result<Vec<RemoteProfile>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT object_id, author, version, document, first_seen_at, updated_at, deleted_at FROM remote_profiles \
                 WHERE ($1 OR deleted_at IS NULL) ORDER BY updated_at DESC, object_id",
            )
            .bind(with_deleted)
            .fetch_all(pool)
            .await
            .map_err(map_err("list remote profiles"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let document: Option<String> = col!(r, "document");
                let deleted: Option<i64> = col!(r, "deleted_at");
                out.push(RemoteProfile {
                    object_id: col!(r, "object_id"),
                    author: col!(r, "author"),
                    version: col!(r, "version"),
                    document: document.as_deref().map(parse_json).transpose()?,
                    first_seen_at: from_ms(col!(r, "first_seen_at")),
                    updated_at: from_ms(col!(r, "updated_at")),
                    deleted_at: deleted.map(from_ms),
                });
            }
            Ok(out)
        })
    }

    /// Whether `object_id` is a partner's profile we received (withdrawn or not).
    pub async fn is_remote_profile(&self, object_id: &str) -> Result<bool> {
        both!(self, pool => {
            let row = sqlx::query("SELECT 1 AS x FROM remote_profiles WHERE object_id = $1")
                .bind(object_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a remote profile"))?;
            Ok(row.is_some())
        })
    }
}

/// An immersion swap between one of our agents and a partner's.
#[derive(Debug, Clone, PartialEq)]
pub struct SwapRow {
    /// Local id.
    pub id: Uuid,
    /// The swap's id: the proposer's `immersion_swap` posting.
    pub object_id: String,
    /// The proposing node.
    pub proposer: String,
    /// The other node.
    pub partner: String,
    /// Our agent's profile.
    pub our_profile: String,
    /// Their agent's profile.
    pub their_profile: String,
    /// `proposed`, `agreed`, `declined`, `cancelled`, `done`.
    pub state: String,
    /// The day our agent spends at the partner.
    pub our_visit_on: Option<String>,
    /// The day their agent spends here.
    pub their_visit_on: Option<String>,
    /// Our agent's immersion: `planned`, `done`, `missed`.
    pub our_visit: String,
    /// Their agent's immersion.
    pub their_visit: String,
    /// The swap posting, as signed by the proposer.
    pub document: Value,
    /// Creation.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// A change of a swap, with [`Store::update_swap`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SwapChange {
    /// New state.
    pub state: Option<String>,
    /// Our agent's immersion.
    pub our_visit: Option<String>,
    /// Their agent's immersion.
    pub their_visit: Option<String>,
}

const SWAP_COLUMNS: &str = "id, object_id, proposer, partner, our_profile, their_profile, state, \
     our_visit_on, their_visit_on, our_visit, their_visit, document, created_at, updated_at";

macro_rules! swap_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let document: String = col!(r, "document");
        SwapRow {
            id: parse_uuid(&id)?,
            object_id: col!(r, "object_id"),
            proposer: col!(r, "proposer"),
            partner: col!(r, "partner"),
            our_profile: col!(r, "our_profile"),
            their_profile: col!(r, "their_profile"),
            state: col!(r, "state"),
            our_visit_on: col!(r, "our_visit_on"),
            their_visit_on: col!(r, "their_visit_on"),
            our_visit: col!(r, "our_visit"),
            their_visit: col!(r, "their_visit"),
            document: parse_json(&document)?,
            created_at: from_ms(col!(r, "created_at")),
            updated_at: from_ms(col!(r, "updated_at")),
        }
    }};
}

/// A registration to a training session.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationRow {
    /// Local id.
    pub id: Uuid,
    /// The registration's id (minted by the registering node).
    pub object_id: String,
    /// The session (a `training_session` posting's id).
    pub session: String,
    /// The registering node.
    pub node: String,
    /// The session's node.
    pub host: String,
    /// The agent (known at the registering node only).
    pub agent_id: Option<Uuid>,
    /// `requested`, `confirmed`, `waitlisted`, `refused`, `cancelled`.
    pub status: String,
    /// Why it waits or was refused (French).
    pub reason: Option<String>,
    /// The `Add` that registered it.
    pub activity_id: Option<String>,
    /// When it was registered (first come, first served).
    pub registered_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

const REGISTRATION_COLUMNS: &str = "id, object_id, session, node, host, agent_id, status, reason, \
     activity_id, registered_at, updated_at";

macro_rules! registration_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let agent: Option<String> = col!(r, "agent_id");
        RegistrationRow {
            id: parse_uuid(&id)?,
            object_id: col!(r, "object_id"),
            session: col!(r, "session"),
            node: col!(r, "node"),
            host: col!(r, "host"),
            agent_id: agent.as_deref().map(parse_uuid).transpose()?,
            status: col!(r, "status"),
            reason: col!(r, "reason"),
            activity_id: col!(r, "activity_id"),
            registered_at: from_ms(col!(r, "registered_at")),
            updated_at: from_ms(col!(r, "updated_at")),
        }
    }};
}

impl Store {
    /// Records a swap with the activities it sends.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the swap is already known.
    pub async fn insert_swap(
        &self,
        s: &SwapRow,
        activities: &[NewActivity],
        audit: Option<&AuditRecord>,
    ) -> Result<SwapRow> {
        let t = to_ms(now());
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO immersion_swaps (id, object_id, proposer, partner, our_profile, their_profile, state, \
                 our_visit_on, their_visit_on, our_visit, their_visit, document, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
            )
            .bind(s.id.to_string())
            .bind(&s.object_id)
            .bind(&s.proposer)
            .bind(&s.partner)
            .bind(&s.our_profile)
            .bind(&s.their_profile)
            .bind(&s.state)
            .bind(&s.our_visit_on)
            .bind(&s.their_visit_on)
            .bind(&s.our_visit)
            .bind(&s.their_visit)
            .bind(json_text(&s.document))
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("record a swap"))?;
            for act in activities {
                let _seq = outbox_append!(tx, lock, act);
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if !activities.is_empty() {
            self.notify_outbox();
        }
        self.swap(s.id).await
    }

    /// One swap.
    pub async fn swap(&self, id: Uuid) -> Result<SwapRow> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {SWAP_COLUMNS} FROM immersion_swaps WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a swap"))?
                .ok_or_else(|| StoreError::not_found(format!("échange d'immersion {id}")))?;
            Ok(swap_from_row!(row))
        })
    }

    /// The swap whose id is `object_id`, if known.
    pub async fn swap_by_object(&self, object_id: &str) -> Result<Option<SwapRow>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {SWAP_COLUMNS} FROM immersion_swaps WHERE object_id = $1"));
            let row = sqlx::query(sql)
                .bind(object_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a swap"))?;
            Ok(match row {
                Some(r) => Some(swap_from_row!(r)),
                None => None,
            })
        })
    }

    /// Every swap, most recently changed first.
    pub async fn swaps(&self) -> Result<Vec<SwapRow>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {SWAP_COLUMNS} FROM immersion_swaps ORDER BY updated_at DESC, id DESC"));
            let rows = sqlx::query(sql).fetch_all(pool).await.map_err(map_err("list swaps"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(swap_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Changes a swap if it is still in state `expected_state`, with the activities it
    /// sends.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when its state changed meanwhile.
    pub async fn update_swap(
        &self,
        id: Uuid,
        expected_state: &str,
        change: &SwapChange,
        activities: &[NewActivity],
        audit: Option<&AuditRecord>,
    ) -> Result<SwapRow> {
        let t = to_ms(now());
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query(
                "UPDATE immersion_swaps SET state = COALESCE($1, state), our_visit = COALESCE($2, our_visit), \
                 their_visit = COALESCE($3, their_visit), updated_at = $4 WHERE id = $5 AND state = $6",
            )
            .bind(&change.state)
            .bind(&change.our_visit)
            .bind(&change.their_visit)
            .bind(t)
            .bind(id.to_string())
            .bind(expected_state)
            .execute(&mut *tx)
            .await
            .map_err(map_err("update a swap"))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::conflict(format!(
                    "l'échange {id} n'est plus à l'état « {expected_state} » ; rechargez-le"
                )));
            }
            for act in activities {
                let _seq = outbox_append!(tx, lock, act);
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if !activities.is_empty() {
            self.notify_outbox();
        }
        self.swap(id).await
    }

    /// Records a registration with the activities it sends.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the registration is already known.
    pub async fn insert_registration(
        &self,
        r: &RegistrationRow,
        activities: &[NewActivity],
        audit: Option<&AuditRecord>,
    ) -> Result<RegistrationRow> {
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO training_registrations (id, object_id, session, node, host, agent_id, status, reason, \
                 activity_id, registered_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(r.id.to_string())
            .bind(&r.object_id)
            .bind(&r.session)
            .bind(&r.node)
            .bind(&r.host)
            .bind(r.agent_id.map(|a| a.to_string()))
            .bind(&r.status)
            .bind(&r.reason)
            .bind(&r.activity_id)
            .bind(to_ms(r.registered_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err("record a registration"))?;
            for act in activities {
                let _seq = outbox_append!(tx, lock, act);
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if !activities.is_empty() {
            self.notify_outbox();
        }
        self.registration(r.id).await
    }

    /// One registration.
    pub async fn registration(&self, id: Uuid) -> Result<RegistrationRow> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {REGISTRATION_COLUMNS} FROM training_registrations WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a registration"))?
                .ok_or_else(|| StoreError::not_found(format!("inscription {id}")))?;
            Ok(registration_from_row!(row))
        })
    }

    /// The registration whose id is `object_id` (or whose `Add` is `object_id`), if known.
    pub async fn registration_by_object(&self, object_id: &str) -> Result<Option<RegistrationRow>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {REGISTRATION_COLUMNS} FROM training_registrations WHERE object_id = $1 OR activity_id = $1"
            ));
            let row = sqlx::query(sql)
                .bind(object_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a registration"))?;
            Ok(match row {
                Some(r) => Some(registration_from_row!(r)),
                None => None,
            })
        })
    }

    /// Registrations, of one session when given, in order of registration.
    pub async fn registrations(&self, session: Option<&str>) -> Result<Vec<RegistrationRow>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {REGISTRATION_COLUMNS} FROM training_registrations WHERE ($1 IS NULL OR session = $1) \
                 ORDER BY registered_at, id"
            ));
            let rows = sqlx::query(sql)
                .bind(session)
                .fetch_all(pool)
                .await
                .map_err(map_err("list registrations"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(registration_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Sets the status of registrations (id, status, reason), with the activities that
    /// tell their nodes, in one transaction.
    pub async fn set_registrations(
        &self,
        changes: &[(Uuid, String, Option<String>)],
        activities: &[NewActivity],
        audit: Option<&AuditRecord>,
    ) -> Result<()> {
        let t = to_ms(now());
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            for (id, status, reason) in changes {
                sqlx::query("UPDATE training_registrations SET status = $1, reason = $2, updated_at = $3 WHERE id = $4")
                    .bind(status)
                    .bind(reason)
                    .bind(t)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("update a registration"))?;
            }
            for act in activities {
                let _seq = outbox_append!(tx, lock, act);
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if !activities.is_empty() {
            self.notify_outbox();
        }
        Ok(())
    }

    /// The per-partner quotas of a session.
    pub async fn training_quotas(&self, session: &str) -> Result<Vec<(String, i64)>> {
        both!(self, pool => {
            let rows = sqlx::query("SELECT actor_id, quota FROM training_quotas WHERE session = $1 ORDER BY actor_id")
                .bind(session)
                .fetch_all(pool)
                .await
                .map_err(map_err("read quotas"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((col!(r, "actor_id"), col!(r, "quota")));
            }
            Ok(out)
        })
    }

    /// Replaces the per-partner quotas of a session.
    pub async fn set_training_quotas(
        &self,
        session: &str,
        quotas: &[(String, i64)],
        audit: &AuditRecord,
    ) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query("DELETE FROM training_quotas WHERE session = $1")
                .bind(session)
                .execute(&mut *tx)
                .await
                .map_err(map_err("replace quotas"))?;
            for (actor, quota) in quotas {
                sqlx::query("INSERT INTO training_quotas (session, actor_id, quota) VALUES ($1, $2, $3)")
                    .bind(session)
                    .bind(actor)
                    .bind(quota)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("record a quota"))?;
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }
}
