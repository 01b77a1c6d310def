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
