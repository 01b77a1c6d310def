//! Federation storage: partnerships, the block list, circles, the cache of remote actors,
//! node settings and the cache of remote postings (kept in the feed index, `feed.rs`, in
//! the same transaction). The inbox, delivery jobs and pull
//! cursors are in `queue.rs`.
//!
//! Partnerships are directional (protocol §7.1): `outgoing` is our `Follow` of the remote
//! node (it then sends us what it addresses to its partners), `incoming` is its `Follow`
//! of us (it is then one of our partners: a member of our `followers` collection and a
//! recipient of what we address to it).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AuditRecord, BeginWrite as _, Inner, NewActivity, OutboxItem, Result, Store, StoreError,
    from_ms, json_text, map_err, now, parse_json, parse_uuid, postgres, push_values, sqlite, to_ms,
};

/// Every `to` and `cc` entry of an activity, once each, in order.
pub(super) fn audience_of(doc: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in ["to", "cc"] {
        let entries: Vec<&str> = match doc.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => vec![s.as_str()],
            _ => Vec::new(),
        };
        for e in entries {
            if !out.iter().any(|x| x == e) {
                out.push(e.to_owned());
            }
        }
    }
    out
}

/// The `followers` collection of the node whose actor id is `actor_id`: the reference
/// node serves its actor at `{base}/actor` and its followers at `{base}/followers`.
pub fn followers_url(actor_id: &str) -> Option<String> {
    actor_id
        .strip_suffix("/actor")
        .map(|base| format!("{base}/followers"))
}

/// The local followers collection of a local activity (from its `actor`).
pub(super) fn followers_of_activity(doc: &Value) -> Option<String> {
    doc.get("actor")
        .and_then(Value::as_str)
        .and_then(followers_url)
}

/// Creates the delivery jobs of outbox activity `$1` (`$2`: the local followers URL,
/// `$3`: now). See `outbox_append!`.
pub(super) const FAN_OUT_SQL: &str = "\
INSERT INTO deliveries (outbox_seq, inbox_url, state, attempts, created_at, next_attempt_at) \
SELECT $1, r.inbox_url, 'pending', 0, $3, $3 FROM ( \
  SELECT DISTINCT CASE WHEN p.shared_inbox IS NOT NULL AND p.shared_inbox <> '' \
                       THEN p.shared_inbox ELSE p.inbox END AS inbox_url \
  FROM partners p \
  WHERE p.inbox <> '' AND ( \
    EXISTS (SELECT 1 FROM outbox_audience a WHERE a.seq = $1 AND a.audience = p.actor_id) \
    OR (p.incoming = 'accepted' AND EXISTS ( \
          SELECT 1 FROM outbox_audience a WHERE a.seq = $1 AND a.audience = $2)) \
    OR (p.incoming = 'accepted' AND EXISTS ( \
          SELECT 1 FROM outbox_audience a \
          JOIN circles c ON c.url = a.audience \
          JOIN circle_members m ON m.circle_id = c.id \
          WHERE a.seq = $1 AND m.actor_id = p.actor_id)) \
  ) \
) r WHERE 1 = 1 \
ON CONFLICT DO NOTHING";

/// State of one direction of a partnership.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PartnershipState {
    /// No `Follow` in this direction.
    None,
    /// A `Follow` was sent and is waiting for an answer.
    Pending,
    /// The `Follow` was accepted: content flows in this direction.
    Accepted,
    /// The `Follow` was refused, or the partnership ended by a `Reject`.
    Rejected,
}

impl PartnershipState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Self::None),
            "pending" => Ok(Self::Pending),
            "accepted" => Ok(Self::Accepted),
            "rejected" => Ok(Self::Rejected),
            other => Err(StoreError::conflict(format!(
                "unknown partnership state {other:?} in the database"
            ))),
        }
    }
}

/// A remote node we know, with the partnership in both directions.
#[derive(Debug, Clone, PartialEq)]
pub struct Partner {
    /// Id.
    pub id: Uuid,
    /// The node's actor URL.
    pub actor_id: String,
    /// Display name (from its actor document).
    pub name: String,
    /// Its inbox (empty until its actor document was fetched).
    pub inbox: String,
    /// Its shared inbox, if it has one.
    pub shared_inbox: Option<String>,
    /// Its outbox (pulled for catch-up).
    pub outbox: Option<String>,
    /// Its SIREN.
    pub siren: Option<String>,
    /// Our `Follow` of it.
    pub outgoing: PartnershipState,
    /// Id of our latest `Follow` of it.
    pub outgoing_follow_id: Option<String>,
    /// Its `Follow` of us.
    pub incoming: PartnershipState,
    /// Its latest `Follow` of us, as received (embedded in our `Accept` or `Reject`).
    pub incoming_follow: Option<Value>,
    /// First seen.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

impl Partner {
    /// The inbox deliveries go to: the shared inbox when there is one.
    pub fn delivery_inbox(&self) -> &str {
        self.shared_inbox
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.inbox)
    }

    /// Whether it is our partner (its `Follow` of us was accepted) or we are its partner.
    pub fn is_partner_either_way(&self) -> bool {
        self.incoming == PartnershipState::Accepted || self.outgoing == PartnershipState::Accepted
    }
}

/// What we learnt of a remote node from its actor document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerInfo {
    /// Actor URL.
    pub actor_id: String,
    /// Name.
    pub name: String,
    /// Inbox.
    pub inbox: String,
    /// Shared inbox.
    pub shared_inbox: Option<String>,
    /// Outbox.
    pub outbox: Option<String>,
    /// SIREN.
    pub siren: Option<String>,
}

/// A change of one partnership, applied with [`Store::update_partnership`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartnershipChange {
    /// New state of our `Follow`, with the id of that `Follow` when we send one.
    pub outgoing: Option<(PartnershipState, Option<String>)>,
    /// New state of its `Follow`, with the `Follow` document when one was received.
    pub incoming: Option<(PartnershipState, Option<Value>)>,
}

/// A blocked node (protocol §7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// An actor id, or an origin (`https://host[:port]`).
    pub target: String,
    /// `actor` or `origin`.
    pub kind: BlockKind,
    /// Why (for operators).
    pub reason: String,
    /// Since.
    pub created_at: OffsetDateTime,
}

/// What a block names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// One actor id.
    Actor,
    /// Every actor of an origin.
    Origin,
}

impl BlockKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Actor => "actor",
            Self::Origin => "origin",
        }
    }
}

/// A circle: a named group of partners used for addressing (protocol §7.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Circle {
    /// Id.
    pub id: Uuid,
    /// Name shown to HR users.
    pub name: String,
    /// Its URL (the audience value).
    pub url: String,
    /// Member actor ids, sorted.
    pub members: Vec<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A remote posting as cached (a tombstone when `document` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct RemotePosting {
    /// The posting's id.
    pub object_id: String,
    /// Its author (`attributedTo`).
    pub author: String,
    /// The node that relayed the stored version, when it came by `Announce`.
    pub relayed_by: Option<String>,
    /// `postingKind`.
    pub kind: Option<String>,
    /// Stored version.
    pub version: i64,
    /// The signed posting, as received; `None` once deleted.
    pub document: Option<Value>,
    /// Key that made the verified author proof.
    pub verified_key: Option<String>,
    /// When its proof was verified.
    pub verified_at: OffsetDateTime,
    /// First received.
    pub first_seen_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Deletion time: the posting is a tombstone.
    pub deleted_at: Option<OffsetDateTime>,
}

/// A verified posting version to store (`Create`, `Update`, or their relay).
#[derive(Debug, Clone, PartialEq)]
pub struct PostingVersion {
    /// The posting's id.
    pub object_id: String,
    /// Its author.
    pub author: String,
    /// The relayer, when it came by `Announce`.
    pub relayed_by: Option<String>,
    /// `postingKind`.
    pub kind: String,
    /// Its `version`.
    pub version: i64,
    /// The posting as received (with its proof).
    pub document: Value,
    /// The key of its verified proof.
    pub verified_key: String,
}

/// What storing a posting version did (protocol §8.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostingApply {
    /// New posting, or a higher version replaced the stored one.
    Stored,
    /// The stored version is the same or newer (same content): nothing to do.
    Stale,
    /// The posting was deleted: the tombstone wins.
    Tombstoned,
    /// The same version with other content: the stored one is kept.
    VersionConflict,
}

/// One posting version of a batch ([`Store::apply_posting_versions`]).
#[derive(Debug, Clone, Copy)]
pub struct BatchedVersion<'a> {
    /// The inbox item it was received in, recorded as projected in the same transaction;
    /// `None` for a version that does not come from the inbox.
    pub inbox_seq: Option<i64>,
    /// The verified version.
    pub version: &'a PostingVersion,
}

/// What storing one version of a batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedVersion {
    /// The §8.5 outcome.
    pub apply: PostingApply,
    /// Stored, from its author, and we relayed the posting earlier: the new version was
    /// relayed too (§10), by an `Announce` appended to the outbox in the same transaction
    /// ([`Relayer`]).
    pub relayed: bool,
}

impl AppliedVersion {
    /// The projection outcome recorded for the inbox item.
    pub fn outcome(self) -> &'static str {
        match self.apply {
            PostingApply::Stored if self.relayed => RELAYED_OUTCOME,
            PostingApply::Stored => STORED_OUTCOME,
            PostingApply::Stale => "posting already known (same or newer version)",
            PostingApply::Tombstoned => "posting deleted earlier (tombstone wins)",
            PostingApply::VersionConflict => "version conflict: stored version kept",
        }
    }
}

/// Builds the `Announce` that relays again a new version of a posting we relayed earlier
/// (§10). The federation implements it (it signs with the node's key); the store calls it
/// inside the transaction that stores the version and appends its result to the outbox
/// there, so that a stored version is never left unrelayed by a failure or a crash
/// between the two.
pub trait Relayer: Sync {
    /// The activity relaying `version`: stored, its author's own, of a posting whose
    /// earlier version we relayed. Its `object_id` is the posting's.
    ///
    /// # Errors
    /// The activity cannot be built or signed: the whole transaction is given up.
    fn relay(
        &self,
        version: &PostingVersion,
    ) -> std::result::Result<NewActivity, Box<dyn std::error::Error + Send + Sync>>;
}

/// A [`Relayer`] for stores used without a federation (tools, tests): a version that
/// would have to be relayed is refused, and nothing of its batch is stored.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRelays;

impl Relayer for NoRelays {
    fn relay(
        &self,
        version: &PostingVersion,
    ) -> std::result::Result<NewActivity, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "posting {} was relayed by this node: its new version must be relayed, and nothing here can sign",
            version.object_id
        )
        .into())
    }
}

const PARTNER_COLUMNS: &str = "id, actor_id, name, inbox, shared_inbox, outbox, siren, outgoing, \
     outgoing_follow_id, incoming, incoming_follow, created_at, updated_at";

macro_rules! partner_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let outgoing: String = col!(r, "outgoing");
        let incoming: String = col!(r, "incoming");
        let follow: Option<String> = col!(r, "incoming_follow");
        Partner {
            id: parse_uuid(&id)?,
            actor_id: col!(r, "actor_id"),
            name: col!(r, "name"),
            inbox: col!(r, "inbox"),
            shared_inbox: col!(r, "shared_inbox"),
            outbox: col!(r, "outbox"),
            siren: col!(r, "siren"),
            outgoing: PartnershipState::parse(&outgoing)?,
            outgoing_follow_id: col!(r, "outgoing_follow_id"),
            incoming: PartnershipState::parse(&incoming)?,
            incoming_follow: follow.as_deref().map(parse_json).transpose()?,
            created_at: from_ms(col!(r, "created_at")),
            updated_at: from_ms(col!(r, "updated_at")),
        }
    }};
}

const REMOTE_POSTING_COLUMNS: &str = "object_id, author, relayed_by, kind, version, document, \
     verified_key, verified_at, first_seen_at, updated_at, deleted_at";

macro_rules! remote_posting_from_row {
    ($r:expr) => {{
        let r = &$r;
        let document: Option<String> = col!(r, "document");
        let deleted: Option<i64> = col!(r, "deleted_at");
        RemotePosting {
            object_id: col!(r, "object_id"),
            author: col!(r, "author"),
            relayed_by: col!(r, "relayed_by"),
            kind: col!(r, "kind"),
            version: col!(r, "version"),
            document: document.as_deref().map(parse_json).transpose()?,
            verified_key: col!(r, "verified_key"),
            verified_at: from_ms(col!(r, "verified_at")),
            first_seen_at: from_ms(col!(r, "first_seen_at")),
            updated_at: from_ms(col!(r, "updated_at")),
            deleted_at: deleted.map(from_ms),
        }
    }};
}

/// Name of the partnership policy setting.
pub const POLICY_SETTING: &str = "partnership_policy";

impl Store {
    // ---- settings ----

    /// A node setting, if set.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        both!(self, pool => {
            let row = sqlx::query("SELECT value FROM node_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a setting"))?;
            Ok(match row {
                Some(r) => Some(col!(r, "value")),
                None => None,
            })
        })
    }

    /// Sets a node setting.
    pub async fn set_setting(&self, name: &str, value: &str, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO node_settings (name, value) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(map_err("write a setting"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }

    // ---- partners ----

    /// Records a remote node from its actor document (or refreshes what we know of it);
    /// partnership states are left as they are.
    pub async fn upsert_partner(&self, info: &PartnerInfo) -> Result<Partner> {
        let t = to_ms(now());
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO partners (id, actor_id, name, inbox, shared_inbox, outbox, siren, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (actor_id) DO UPDATE SET name = excluded.name, inbox = excluded.inbox, \
                 shared_inbox = excluded.shared_inbox, outbox = excluded.outbox, siren = excluded.siren, \
                 updated_at = excluded.updated_at",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(&info.actor_id)
            .bind(&info.name)
            .bind(&info.inbox)
            .bind(&info.shared_inbox)
            .bind(&info.outbox)
            .bind(&info.siren)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("record a partner"))?;
            tx.commit().await.map_err(map_err("commit"))?;
        });
        self.events.policy_changed();
        self.partner_by_actor(&info.actor_id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("partner {}", info.actor_id)))
    }

    /// The remote node with this actor id, if known.
    pub async fn partner_by_actor(&self, actor_id: &str) -> Result<Option<Partner>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE actor_id = $1"));
            let row = sqlx::query(sql)
                .bind(actor_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a partner"))?;
            Ok(match row {
                Some(r) => Some(partner_from_row!(r)),
                None => None,
            })
        })
    }

    /// The remote node with this id.
    pub async fn partner(&self, id: Uuid) -> Result<Partner> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a partner"))?
                .ok_or_else(|| StoreError::not_found(format!("partner {id}")))?;
            Ok(partner_from_row!(row))
        })
    }

    /// Every remote node we know, by name.
    pub async fn partners(&self) -> Result<Vec<Partner>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {PARTNER_COLUMNS} FROM partners ORDER BY name, id"));
            let rows = sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map_err(map_err("list partners"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(partner_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Changes a partnership and, in the same transaction, appends `activity` (the
    /// `Follow`, `Accept`, `Reject` or `Undo` that tells the other node) to the outbox and
    /// writes `audit` when an HR user or an operator made the change.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the node is unknown.
    pub async fn update_partnership(
        &self,
        actor_id: &str,
        change: &PartnershipChange,
        activity: Option<&NewActivity>,
        audit: Option<&AuditRecord>,
    ) -> Result<Partner> {
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let t = to_ms(now());
            if let Some((state, follow_id)) = &change.outgoing {
                let n = sqlx::query(
                    "UPDATE partners SET outgoing = $1, \
                     outgoing_follow_id = CASE WHEN $2 IS NULL THEN outgoing_follow_id ELSE $2 END, \
                     updated_at = $3 WHERE actor_id = $4",
                )
                .bind(state.as_str())
                .bind(follow_id)
                .bind(t)
                .bind(actor_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err("update a partnership"))?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::not_found(format!("partner {actor_id}")));
                }
            }
            if let Some((state, follow)) = &change.incoming {
                let follow = follow.as_ref().map(json_text);
                let n = sqlx::query(
                    "UPDATE partners SET incoming = $1, \
                     incoming_follow = CASE WHEN $2 IS NULL THEN incoming_follow ELSE $2 END, \
                     updated_at = $3 WHERE actor_id = $4",
                )
                .bind(state.as_str())
                .bind(follow)
                .bind(t)
                .bind(actor_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err("update a partnership"))?
                .rows_affected();
                if n == 0 {
                    return Err(StoreError::not_found(format!("partner {actor_id}")));
                }
            }
            if let Some(act) = activity {
                let _seq = outbox_append!(tx, lock, act);
            }
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        self.events.policy_changed();
        if activity.is_some() {
            self.notify_outbox();
        }
        self.partner_by_actor(actor_id)
            .await?
            .ok_or_else(|| StoreError::not_found(format!("partner {actor_id}")))
    }

    /// Forgets a remote node (its partnership must be over). Received content stays.
    pub async fn delete_partner(&self, actor_id: &str, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query("DELETE FROM circle_members WHERE actor_id = $1")
                .bind(actor_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err("remove a partner from its circles"))?;
            let n = sqlx::query("DELETE FROM partners WHERE actor_id = $1")
                .bind(actor_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err("delete a partner"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("partner {actor_id}")));
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            self.events.policy_changed();
            Ok(())
        })
    }

    // ---- block list ----

    /// Blocked nodes, newest first.
    pub async fn blocks(&self) -> Result<Vec<Block>> {
        both!(self, pool => {
            let rows = sqlx::query("SELECT target, kind, reason, created_at FROM blocks ORDER BY created_at DESC, target")
                .fetch_all(pool)
                .await
                .map_err(map_err("list blocks"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let kind: String = col!(r, "kind");
                out.push(Block {
                    target: col!(r, "target"),
                    kind: if kind == "origin" { BlockKind::Origin } else { BlockKind::Actor },
                    reason: col!(r, "reason"),
                    created_at: from_ms(col!(r, "created_at")),
                });
            }
            Ok(out)
        })
    }

    /// Blocks a node (by actor id) or an origin.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when it is already blocked.
    pub async fn add_block(
        &self,
        target: &str,
        kind: BlockKind,
        reason: &str,
        audit: &AuditRecord,
    ) -> Result<Block> {
        let block = Block {
            target: target.to_owned(),
            kind,
            reason: reason.to_owned(),
            created_at: from_ms(to_ms(now())),
        };
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query("INSERT INTO blocks (target, kind, reason, created_at) VALUES ($1, $2, $3, $4)")
                .bind(target)
                .bind(kind.as_str())
                .bind(reason)
                .bind(to_ms(block.created_at))
                .execute(&mut *tx)
                .await
                .map_err(map_err("block a node"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            self.events.policy_changed();
        });
        Ok(block)
    }

    /// Lifts a block.
    pub async fn remove_block(&self, target: &str, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query("DELETE FROM blocks WHERE target = $1")
                .bind(target)
                .execute(&mut *tx)
                .await
                .map_err(map_err("lift a block"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("block {target}")));
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            self.events.policy_changed();
            Ok(())
        })
    }

    /// Whether the actor, or its origin, is blocked.
    pub async fn is_blocked(&self, actor_id: &str) -> Result<bool> {
        let origin = origin_of(actor_id);
        both!(self, pool => {
            let row = sqlx::query("SELECT 1 AS x FROM blocks WHERE target = $1 OR (kind = 'origin' AND target = $2)")
                .bind(actor_id)
                .bind(origin)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read the block list"))?;
            Ok(row.is_some())
        })
    }

    // ---- circles ----

    /// Every circle with its members, by name.
    pub async fn circles(&self) -> Result<Vec<Circle>> {
        both!(self, pool => {
            let rows = sqlx::query("SELECT id, name, url, created_at FROM circles ORDER BY name, id")
                .fetch_all(pool)
                .await
                .map_err(map_err("list circles"))?;
            let members = sqlx::query("SELECT circle_id, actor_id FROM circle_members ORDER BY actor_id")
                .fetch_all(pool)
                .await
                .map_err(map_err("list circle members"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let id: String = col!(r, "id");
                let mut list = Vec::new();
                for m in &members {
                    let cid: String = col!(m, "circle_id");
                    if cid == id {
                        list.push(col!(m, "actor_id"));
                    }
                }
                out.push(Circle {
                    id: parse_uuid(&id)?,
                    name: col!(r, "name"),
                    url: col!(r, "url"),
                    members: list,
                    created_at: from_ms(col!(r, "created_at")),
                });
            }
            Ok(out)
        })
    }

    /// Creates a circle (or replaces the members of the circle with this id).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when another circle has the name.
    pub async fn put_circle(
        &self,
        id: Uuid,
        name: &str,
        url: &str,
        members: &[String],
        audit: &AuditRecord,
    ) -> Result<Circle> {
        let t = to_ms(now());
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO circles (id, name, url, created_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            )
            .bind(id.to_string())
            .bind(name)
            .bind(url)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("save a circle"))?;
            sqlx::query("DELETE FROM circle_members WHERE circle_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("save a circle"))?;
            for m in members {
                sqlx::query("INSERT INTO circle_members (circle_id, actor_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id.to_string())
                    .bind(m)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err("save a circle"))?;
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        self.circles()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| StoreError::not_found(format!("circle {id}")))
    }

    /// Deletes a circle.
    pub async fn delete_circle(&self, id: Uuid, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query("DELETE FROM circle_members WHERE circle_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("delete a circle"))?;
            let n = sqlx::query("DELETE FROM circles WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("delete a circle"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("circle {id}")));
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }

    /// URLs of the circles `actor_id` is a member of.
    pub async fn circles_of(&self, actor_id: &str) -> Result<Vec<String>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT c.url FROM circles c JOIN circle_members m ON m.circle_id = c.id WHERE m.actor_id = $1 ORDER BY c.url",
            )
            .bind(actor_id)
            .fetch_all(pool)
            .await
            .map_err(map_err("read circle membership"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(col!(r, "url"));
            }
            Ok(out)
        })
    }

    // ---- remote actors ----

    /// The cached actor document of `actor_id` and when it was fetched.
    pub async fn remote_actor(&self, actor_id: &str) -> Result<Option<(Value, OffsetDateTime)>> {
        both!(self, pool => {
            let row = sqlx::query("SELECT document, fetched_at FROM remote_actors WHERE actor_id = $1")
                .bind(actor_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a cached actor"))?;
            Ok(match row {
                Some(r) => {
                    let doc: String = col!(r, "document");
                    Some((parse_json(&doc)?, from_ms(col!(r, "fetched_at"))))
                }
                None => None,
            })
        })
    }

    /// Caches an actor document just fetched from its origin.
    pub async fn put_remote_actor(&self, actor_id: &str, document: &Value) -> Result<()> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query(
                "INSERT INTO remote_actors (actor_id, document, fetched_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (actor_id) DO UPDATE SET document = excluded.document, fetched_at = excluded.fetched_at",
            )
            .bind(actor_id)
            .bind(json_text(document))
            .bind(to_ms(now()))
            .execute(&*writer)
            .await
            .map_err(map_err("cache an actor"))?;
            Ok(())
        })
    }

    // ---- remote postings ----

    /// One cached remote posting (or its tombstone).
    pub async fn remote_posting(&self, object_id: &str) -> Result<Option<RemotePosting>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {REMOTE_POSTING_COLUMNS} FROM remote_postings WHERE object_id = $1"
            ));
            let row = sqlx::query(sql)
                .bind(object_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a remote posting"))?;
            Ok(match row {
                Some(r) => Some(remote_posting_from_row!(r)),
                None => None,
            })
        })
    }

    /// Cached remote postings (tombstones included when `with_tombstones`), by id;
    /// optionally those of one author.
    pub async fn remote_postings(
        &self,
        author: Option<&str>,
        with_tombstones: bool,
    ) -> Result<Vec<RemotePosting>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {REMOTE_POSTING_COLUMNS} FROM remote_postings \
                 WHERE ($1 IS NULL OR author = $1) AND ($2 = TRUE OR deleted_at IS NULL) ORDER BY object_id"
            ));
            let rows = sqlx::query(sql)
                .bind(author)
                .bind(with_tombstones)
                .fetch_all(pool)
                .await
                .map_err(map_err("list remote postings"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(remote_posting_from_row!(r));
            }
            Ok(out)
        })
    }
}

/// The name of the outcome recorded for an inbox item whose posting version was stored.
pub(super) const STORED_OUTCOME: &str = "posting stored";

/// The outcome recorded for an inbox item whose posting version was stored and relayed
/// again (§10).
pub(super) const RELAYED_OUTCOME: &str = "posting stored and relayed again";

/// What is computed from a posting version alone (its text, its feed index entry with the
/// French stemming): done before the write transaction, not while holding the database's
/// writer — for a pulled page, on the threads that verified it.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedVersion {
    text: String,
    entry: crate::domain::search::IndexEntry,
}

impl PreparedVersion {
    /// Prepares `v` for [`Store::apply_posting_versions`] or a pulled page, for a store
    /// of `kind` (a PostgreSQL one gets its `tsvector` text now).
    pub fn new(v: &PostingVersion, kind: super::DatabaseKind) -> Self {
        let entry = crate::domain::search::IndexEntry::from_document(&v.document);
        Self {
            text: json_text(&v.document),
            entry: match kind {
                super::DatabaseKind::Postgres => entry.with_pg_tsvector(),
                super::DatabaseKind::Sqlite => entry,
            },
        }
    }
}

/// How [`VersionWrites::apply_versions`] records the inbox items of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InboxRecording {
    /// The items' rows are waiting for their projection: each is updated with its outcome.
    Update,
    /// The items' rows were inserted in this transaction already recorded as projected,
    /// with [`STORED_OUTCOME`] (a pulled page, [`Store::accept_page`]): only another
    /// outcome is written.
    Premarked,
}

/// Writes of posting versions inside a transaction (one implementation per backend).
pub(super) trait VersionWrites: Send {
    /// Stores `items` by the rules of [`Store::apply_posting_version`], in order, relays
    /// again with `relay` those stored that we relayed earlier (§10), and records their
    /// inbox items as `recording` says. `prepared` holds one entry per item.
    fn apply_versions<'a>(
        &mut self,
        items: &[BatchedVersion<'a>],
        prepared: &[&'a PreparedVersion],
        t: i64,
        recording: InboxRecording,
        relay: &dyn Relayer,
    ) -> impl std::future::Future<Output = Result<Vec<AppliedVersion>>> + Send;
}

/// The `object_id`s that `select` (ending in `IN `) returns for `ids`, read on `conn`
/// (a connection in a transaction, of SQLite when `$sqlite`) in lists of [`BULK_SEQS`].
macro_rules! object_ids_in {
    ($conn:expr, $sqlite:expr, $select:expr, $ids:expr, $what:expr) => {{
        let mut found: HashSet<String> = HashSet::new();
        for chunk in $ids.chunks(BULK_SEQS) {
            let mut sql = String::from($select);
            push_values(&mut sql, 1, chunk.len(), $sqlite);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&mut *$conn).await.map_err(map_err($what))? {
                found.insert(col!(r, "object_id"));
            }
        }
        found
    }};
}

/// Whether a version of a posting may be relayed (§6.2, §10): `federation` or `public`.
/// A posting we relayed whose author narrowed it (to a circle, to one node) is stored, and
/// its new version is not relayed.
fn relayable(v: &PostingVersion) -> bool {
    matches!(
        v.document.get("visibility").and_then(Value::as_str),
        Some("federation" | "public")
    )
}

/// Records inbox item `seq` as projected at `t` with `outcome`, on `conn`.
macro_rules! record_projection {
    ($conn:expr, $seq:expr, $t:expr, $outcome:expr) => {
        sqlx::query(
            "UPDATE inbox SET processed_at = $1, outcome = $2, lease_until = NULL, lease_owner = NULL WHERE seq = $3",
        )
        .bind($t)
        .bind($outcome)
        .bind($seq)
        .execute(&mut *$conn)
        .await
        .map_err(map_err("record a projection"))?
    };
}

macro_rules! version_writes_impl {
    ($conn:ty, $pg:expr) => {
        impl VersionWrites for $conn {
            async fn apply_versions<'a>(
                &mut self,
                items: &[BatchedVersion<'a>],
                prepared: &[&'a PreparedVersion],
                t: i64,
                recording: InboxRecording,
                relay: &dyn Relayer,
            ) -> Result<Vec<AppliedVersion>> {
                // Before any row is read: see `feed::FEED_LOCK_CLASS`.
                super::feed::FeedIndex::lock_feed(&mut *self).await?;
                let mut out: Vec<Option<AppliedVersion>> = vec![None; items.len()];
                let texts: Vec<&str> = prepared.iter().map(|p| p.text.as_str()).collect();
                let mut records: Vec<Option<super::feed::FeedRecord<'a>>> = items
                    .iter()
                    .zip(prepared)
                    .map(|(i, p)| {
                        Some(super::feed::FeedRecord::remote_indexed(
                            i.version,
                            std::borrow::Cow::Borrowed(&p.entry),
                            t,
                        ))
                    })
                    .collect();
                // How often each posting occurs in the batch: one that occurs once and is
                // not stored yet takes the bulk path.
                let mut occurrences: HashMap<&str, usize> = HashMap::new();
                for i in items {
                    *occurrences.entry(i.version.object_id.as_str()).or_default() += 1;
                }
                // Items stored that we relayed earlier: relayed again below (§10).
                let mut to_relay: Vec<usize> = Vec::new();
                // Postings seen for the first time, each once in the batch (the bulk of a
                // catch-up or of a partner's publication burst), are stored with a few
                // multi-row statements: each statement is a hand-off to the database, which
                // costs more than the row itself (perf-limits.md §4).
                let ids: Vec<&str> = occurrences.keys().copied().collect();
                let known = object_ids_in!(
                    self,
                    !$pg,
                    "SELECT object_id FROM remote_postings WHERE object_id IN ",
                    ids,
                    "read remote postings"
                );
                let fresh: Vec<usize> = items
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| {
                        let id = i.version.object_id.as_str();
                        occurrences.get(id) == Some(&1) && !known.contains(id)
                    })
                    .map(|(k, _)| k)
                    .collect();
                if !fresh.is_empty() {
                    // As many rows per statement as the feed's bulk inserts, for the same reasons.
                    let rows = if $pg { super::feed::BULK_ROWS.0 } else { super::feed::BULK_ROWS.1 };
                    for chunk in fresh.chunks(rows) {
                        let mut sql = String::from(
                            "INSERT INTO remote_postings (object_id, author, relayed_by, kind, version, document, \
                             verified_key, verified_at, first_seen_at, updated_at) VALUES ",
                        );
                        push_values(&mut sql, chunk.len(), 10, !$pg);
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for &k in chunk {
                            let v = items[k].version;
                            q = q
                                .bind(&v.object_id)
                                .bind(&v.author)
                                .bind(&v.relayed_by)
                                .bind(&v.kind)
                                .bind(v.version)
                                .bind(texts[k])
                                .bind(&v.verified_key)
                                .bind(t)
                                .bind(t)
                                .bind(t);
                        }
                        q.execute(&mut *self)
                            .await
                            .map_err(map_err("store remote postings"))?;
                    }
                    let recs: Vec<super::feed::FeedRecord<'_>> =
                        fresh.iter().filter_map(|&k| records[k].take()).collect();
                    super::feed::FeedIndex::feed_insert_new(&mut *self, &recs).await?;
                    // A posting new to us may still have been relayed by us (its row purged
                    // since): its new version is relayed again, as below.
                    let authored: Vec<&str> = fresh
                        .iter()
                        .map(|&k| items[k].version)
                        .filter(|v| v.relayed_by.is_none())
                        .map(|v| v.object_id.as_str())
                        .collect();
                    let relayed = object_ids_in!(
                        self,
                        !$pg,
                        "SELECT DISTINCT object_id FROM outbox WHERE activity_type = 'Announce' AND object_id IN ",
                        authored,
                        "read the outbox"
                    );
                    let mut done: Vec<i64> = Vec::with_capacity(fresh.len());
                    for &k in &fresh {
                        let v = items[k].version;
                        let applied = AppliedVersion {
                            apply: PostingApply::Stored,
                            relayed: v.relayed_by.is_none()
                                && relayable(v)
                                && relayed.contains(v.object_id.as_str()),
                        };
                        if applied.relayed {
                            to_relay.push(k);
                        } else if let (InboxRecording::Update, Some(seq)) = (recording, items[k].inbox_seq) {
                            done.push(seq);
                        }
                        out[k] = Some(applied);
                    }
                    for chunk in done.chunks(BULK_SEQS) {
                        let mut sql = format!(
                            "UPDATE inbox SET processed_at = ${}, outcome = ${}, lease_until = NULL, lease_owner = NULL \
                             WHERE seq IN ",
                            chunk.len() + 1,
                            chunk.len() + 2
                        );
                        push_values(&mut sql, 1, chunk.len(), !$pg);
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for seq in chunk {
                            q = q.bind(*seq);
                        }
                        q.bind(t)
                            .bind(STORED_OUTCOME)
                            .execute(&mut *self)
                            .await
                            .map_err(map_err("record projections"))?;
                    }
                }
                for (k, item) in items.iter().enumerate() {
                    if out[k].is_some() {
                        continue;
                    }
                    let text = texts[k];
                    let Some(record) = records[k].as_ref() else { continue };
                    let v = item.version;
                    let current = sqlx::query(
                        "SELECT version, document, deleted_at FROM remote_postings WHERE object_id = $1",
                    )
                    .bind(&v.object_id)
                    .fetch_optional(&mut *self)
                    .await
                    .map_err(map_err("read a remote posting"))?;
                    let apply = match current {
                        Some(r) => {
                            let version: i64 = col!(r, "version");
                            let deleted: Option<i64> = col!(r, "deleted_at");
                            let stored: Option<String> = col!(r, "document");
                            if deleted.is_some() {
                                PostingApply::Tombstoned
                            } else if v.version < version {
                                PostingApply::Stale
                            } else if v.version == version {
                                let same = stored
                                    .as_deref()
                                    .map(parse_json)
                                    .transpose()?
                                    .is_some_and(|s| same_content(&s, &v.document));
                                if same { PostingApply::Stale } else { PostingApply::VersionConflict }
                            } else {
                                sqlx::query(
                                    "UPDATE remote_postings SET author = $1, relayed_by = $2, kind = $3, version = $4, \
                                     document = $5, verified_key = $6, verified_at = $7, updated_at = $7 WHERE object_id = $8",
                                )
                                .bind(&v.author)
                                .bind(&v.relayed_by)
                                .bind(&v.kind)
                                .bind(v.version)
                                .bind(text)
                                .bind(&v.verified_key)
                                .bind(t)
                                .bind(&v.object_id)
                                .execute(&mut *self)
                                .await
                                .map_err(map_err("store a remote posting"))?;
                                super::feed::FeedIndex::feed_upsert(&mut *self, record).await?;
                                PostingApply::Stored
                            }
                        }
                        None => {
                            sqlx::query(
                                "INSERT INTO remote_postings (object_id, author, relayed_by, kind, version, document, \
                                 verified_key, verified_at, first_seen_at, updated_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $8)",
                            )
                            .bind(&v.object_id)
                            .bind(&v.author)
                            .bind(&v.relayed_by)
                            .bind(&v.kind)
                            .bind(v.version)
                            .bind(text)
                            .bind(&v.verified_key)
                            .bind(t)
                            .execute(&mut *self)
                            .await
                            .map_err(map_err("store a remote posting"))?;
                            super::feed::FeedIndex::feed_upsert(&mut *self, record).await?;
                            PostingApply::Stored
                        }
                    };
                    // A new version of a posting we relayed is relayed again (§10): only its
                    // author's own versions, not another relay's.
                    let relayed = apply == PostingApply::Stored
                        && v.relayed_by.is_none()
                        && relayable(v)
                        && sqlx::query(
                            "SELECT 1 AS x FROM outbox WHERE activity_type = 'Announce' AND object_id = $1 LIMIT 1",
                        )
                        .bind(&v.object_id)
                        .fetch_optional(&mut *self)
                        .await
                        .map_err(map_err("read the outbox"))?
                        .is_some();
                    let applied = AppliedVersion { apply, relayed };
                    out[k] = Some(applied);
                    if relayed {
                        to_relay.push(k);
                        continue;
                    }
                    let outcome = applied.outcome();
                    if let Some(seq) = item.inbox_seq
                        && !(recording == InboxRecording::Premarked && outcome == STORED_OUTCOME)
                    {
                        record_projection!(self, seq, t, outcome);
                    }
                }
                // The relays, appended to the outbox in this transaction: the version and
                // its relay are committed together or not at all.
                let lock = if $pg { postgres::LOCK_OUTBOX_SQL } else { sqlite::LOCK_OUTBOX_SQL };
                for k in to_relay {
                    let act = relay.relay(items[k].version).map_err(|cause| StoreError::Other {
                        action: "build the relay of a posting",
                        cause,
                    })?;
                    let _seq = outbox_append!(self, lock, &act);
                    if let Some(seq) = items[k].inbox_seq {
                        record_projection!(self, seq, t, RELAYED_OUTCOME);
                    }
                }
                Ok(out
                    .into_iter()
                    .map(|a| {
                        a.unwrap_or(AppliedVersion {
                            apply: PostingApply::Stale,
                            relayed: false,
                        })
                    })
                    .collect())
            }
        }
    };
}

version_writes_impl!(sqlx::SqliteConnection, false);
version_writes_impl!(sqlx::PgConnection, true);

/// Values per `IN (…)` list of the batched projection.
const BULK_SEQS: usize = 500;

/// The origin (`scheme://host[:port]`) of a URL, or the input when it is not one.
pub fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_owned(),
    }
}

impl Store {
    /// Stores a verified version of a remote posting by the rules of protocol §8.5: a
    /// higher version replaces the stored one, a lower or equal one with the same content
    /// is stale, an equal one with other content is a conflict (the stored one is kept),
    /// and a tombstone wins over everything.
    ///
    /// Without a federation to sign relays ([`NoRelays`]): a new version of a posting we
    /// relayed is refused with an error (nothing stored). The projection uses
    /// [`Store::apply_posting_versions`].
    pub async fn apply_posting_version(&self, v: &PostingVersion) -> Result<PostingApply> {
        let applied = self
            .apply_posting_versions(
                &[BatchedVersion {
                    inbox_seq: None,
                    version: v,
                }],
                &NoRelays,
            )
            .await?;
        Ok(applied.first().map_or(PostingApply::Stale, |a| a.apply))
    }

    /// Stores several verified posting versions in **one** write transaction, in order, by
    /// the rules of [`Store::apply_posting_version`]. A new version of a posting we
    /// relayed earlier is relayed again (§10): `relay` builds its `Announce`, appended to
    /// the outbox in the same transaction ([`AppliedVersion::relayed`]). An item that
    /// comes from the inbox (`inbox_seq`) is recorded as projected in the same transaction,
    /// with the outcome text of [`AppliedVersion::outcome`]. Nothing is written when an
    /// error is returned.
    pub async fn apply_posting_versions(
        &self,
        items: &[BatchedVersion<'_>],
        relay: &dyn Relayer,
    ) -> Result<Vec<AppliedVersion>> {
        let t = to_ms(now());
        let prepared: Vec<PreparedVersion> = items
            .iter()
            .map(|i| PreparedVersion::new(i.version, self.kind()))
            .collect();
        let prepared: Vec<&PreparedVersion> = prepared.iter().collect();
        let out = both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let out = VersionWrites::apply_versions(&mut *tx, items, &prepared, t, InboxRecording::Update, relay).await?;
            tx.commit().await.map_err(map_err("commit"))?;
            out
        });
        if out.iter().any(|a| a.relayed) {
            self.notify_outbox();
        }
        Ok(out)
    }

    /// Deletes a remote posting, leaving a tombstone that no later version revives.
    /// `author` is the deleting actor (checked by the caller); a delete of a posting never
    /// seen still records the tombstone, so a late `Create` cannot bring it back.
    /// Returns whether anything changed.
    pub async fn apply_posting_delete(
        &self,
        object_id: &str,
        author: &str,
        relayed_by: Option<&str>,
    ) -> Result<bool> {
        let t = to_ms(now());
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            // As every writer of the remote postings: see `feed::FEED_LOCK_CLASS`.
            super::feed::FeedIndex::lock_feed(&mut *tx).await?;
            let n = sqlx::query(
                "INSERT INTO remote_postings (object_id, author, relayed_by, kind, version, document, \
                 verified_key, verified_at, first_seen_at, updated_at, deleted_at) \
                 VALUES ($1, $2, $3, NULL, 0, NULL, NULL, $4, $4, $4, $4) \
                 ON CONFLICT (object_id) DO UPDATE SET document = NULL, deleted_at = excluded.deleted_at, \
                 relayed_by = excluded.relayed_by, updated_at = excluded.updated_at \
                 WHERE remote_postings.deleted_at IS NULL",
            )
            .bind(object_id)
            .bind(author)
            .bind(relayed_by)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("delete a remote posting"))?
            .rows_affected();
            if n > 0 {
                super::feed::unindex_remote(&mut *tx, object_id).await?;
            }
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(n > 0)
        })
    }
}

/// Whether two documents have the same content (the same RFC 8785 form).
pub fn same_content(a: &Value, b: &Value) -> bool {
    match (
        passerelle_protocol::canonical::canonicalize(a),
        passerelle_protocol::canonical::canonicalize(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Who is asking for a non-public document: a signed requester (protocol §6.4, §9.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The requester's actor id (from its verified signature).
    pub actor_id: String,
    /// Our own `followers` collection URL.
    pub followers_url: String,
}

impl Store {
    /// The audiences (`to`/`cc` entries) other than the public whose activities `viewer`
    /// may see (protocol §9.2, §6.4): its own actor id; our followers collection and the
    /// circles it belongs to while it is an accepted partner. None for an anonymous
    /// request or a blocked node, which see public content only.
    async fn visible_audiences(&self, viewer: Option<&Viewer>) -> Result<Vec<String>> {
        let Some(viewer) = viewer else {
            return Ok(Vec::new());
        };
        if self.is_blocked(&viewer.actor_id).await? {
            return Ok(Vec::new());
        }
        let mut out = vec![viewer.actor_id.clone()];
        let partner = self
            .partner_by_actor(&viewer.actor_id)
            .await?
            .is_some_and(|p| p.incoming == PartnershipState::Accepted);
        if partner {
            out.push(viewer.followers_url.clone());
            out.extend(self.circles_of(&viewer.actor_id).await?);
        }
        Ok(out)
    }

    /// Outbox activities after `after` (oldest first) that `viewer` may see: the public
    /// ones for an anonymous request, plus those addressed to it (protocol §9.2). The
    /// filter applies before paging.
    ///
    /// Each visible audience (and the public) is read as its own index range after
    /// `after`, `limit` rows at most, and the page is the first `limit` of their union:
    /// a page costs the same whatever the outbox's size and the cursor's place in it.
    /// (A single `EXISTS` over the audiences let PostgreSQL hash every audience row of the
    /// outbox for each page, so that a partner's catch-up cost grew with the square of
    /// the activities it had missed.)
    pub async fn outbox_visible(
        &self,
        after: i64,
        limit: u32,
        viewer: Option<&Viewer>,
    ) -> Result<Vec<OutboxItem>> {
        let audiences = self.visible_audiences(viewer).await?;
        let mut streams = String::from(
            "SELECT seq FROM (SELECT p.seq FROM outbox p WHERE p.public = TRUE AND p.seq > $1 \
             ORDER BY p.seq LIMIT $2) s0",
        );
        for k in 1..=audiences.len() {
            let _ = write!(
                streams,
                " UNION SELECT seq FROM (SELECT a.seq FROM outbox_audience a WHERE a.audience = ${} \
                 AND a.seq > $1 ORDER BY a.seq LIMIT $2) s{k}",
                k + 2
            );
        }
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT o.seq, o.activity_id, o.activity_type, o.object_id, o.public, o.document, o.created_at \
                 FROM outbox o WHERE o.seq IN ({streams}) ORDER BY o.seq ASC LIMIT $2"
            ));
            let mut q = sqlx::query(sql).bind(after).bind(i64::from(limit));
            for a in &audiences {
                q = q.bind(a);
            }
            let rows = q
                .fetch_all(pool)
                .await
                .map_err(map_err("read the outbox"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(outbox_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Number of outbox activities `viewer` may see.
    pub async fn outbox_visible_len(&self, viewer: Option<&Viewer>) -> Result<i64> {
        let audiences = self.visible_audiences(viewer).await?;
        let list = (1..=audiences.len())
            .map(|k| format!("${k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let addressed = if audiences.is_empty() {
            String::new()
        } else {
            format!(
                " OR o.seq IN (SELECT a.seq FROM outbox_audience a WHERE a.audience IN ({list}))"
            )
        };
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) AS n FROM outbox o WHERE o.public = TRUE{addressed}"
            ));
            let mut q = sqlx::query(sql);
            for a in &audiences {
                q = q.bind(a);
            }
            let row = q
                .fetch_one(pool)
                .await
                .map_err(map_err("count the outbox"))?;
            Ok(col!(row, "n"))
        })
    }

    /// Whether `viewer` may see a document addressed to `audience` (its `to` and `cc`):
    /// the same rule as the outbox (protocol §6.4).
    pub async fn audience_allows(
        &self,
        audience: &[String],
        viewer: Option<&Viewer>,
    ) -> Result<bool> {
        if audience
            .iter()
            .any(|a| passerelle_protocol::vocab::is_public(a))
        {
            return Ok(true);
        }
        let visible = self.visible_audiences(viewer).await?;
        Ok(audience.iter().any(|a| visible.contains(a)))
    }
}

impl Store {
    /// Appends an HR officer's first relay (`Announce`, §10) of the received posting
    /// `object_id`, built from its stored `version`, with its audit record: under the
    /// feed's lock, which every writer of the remote postings takes, so that no version
    /// is stored between the check and the append. A later version then finds the relay
    /// and is relayed in turn ([`Relayer`]).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the posting is no longer at `version` (a newer one
    /// was stored, or it was deleted, since it was read): nothing is written, build the
    /// relay again from the stored posting.
    pub async fn append_relay(
        &self,
        activity: &NewActivity,
        version: i64,
        audit: &AuditRecord,
    ) -> Result<i64> {
        let seq = both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            super::feed::FeedIndex::lock_feed(&mut *tx).await?;
            let current = sqlx::query("SELECT version, deleted_at FROM remote_postings WHERE object_id = $1")
                .bind(&activity.object_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err("read a remote posting"))?;
            let unchanged = match current {
                Some(r) => {
                    let v: i64 = col!(r, "version");
                    let deleted: Option<i64> = col!(r, "deleted_at");
                    v == version && deleted.is_none()
                }
                None => false,
            };
            if !unchanged {
                return Err(StoreError::conflict(format!(
                    "posting {} changed while it was being relayed",
                    activity.object_id
                )));
            }
            let seq = outbox_append!(tx, lock, activity);
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            seq
        });
        self.notify_outbox();
        Ok(seq)
    }

    /// Appends an activity that changes nothing else (a relay, a re-sent message) to the
    /// outbox, with its delivery jobs and, when a person asked, its audit record.
    pub async fn append_activity(
        &self,
        activity: &NewActivity,
        audit: Option<&AuditRecord>,
    ) -> Result<i64> {
        let seq = both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let seq = outbox_append!(tx, lock, activity);
            if let Some(audit) = audit {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
            seq
        });
        self.notify_outbox();
        Ok(seq)
    }
}

impl Store {
    /// One of our outbox activities by id.
    pub async fn outbox_item(&self, activity_id: &str) -> Result<Option<OutboxItem>> {
        both!(self, pool => {
            let row = sqlx::query(
                "SELECT seq, activity_id, activity_type, object_id, public, document, created_at FROM outbox WHERE activity_id = $1",
            )
            .bind(activity_id)
            .fetch_optional(pool)
            .await
            .map_err(map_err("read an outbox activity"))?;
            Ok(match row {
                Some(r) => Some(outbox_from_row!(r)),
                None => None,
            })
        })
    }
}

impl Store {
    /// Writes an audit record alone (for an action whose change is made elsewhere, such
    /// as a replay of dead letters).
    pub async fn record_audit(&self, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }
}

impl Store {
    /// Whether we relayed (`Announce`d) the object `object_id` to our partners.
    pub async fn has_relayed(&self, object_id: &str) -> Result<bool> {
        both!(self, pool => {
            let row = sqlx::query(
                "SELECT 1 AS x FROM outbox WHERE activity_type = 'Announce' AND object_id = $1 LIMIT 1",
            )
            .bind(object_id)
            .fetch_optional(pool)
            .await
            .map_err(map_err("read the outbox"))?;
            Ok(row.is_some())
        })
    }
}
