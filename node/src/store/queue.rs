//! Federation queues: the inbox of received activities (stored before the `202`, projected
//! afterwards), delivery jobs per recipient inbox with the health of each inbox, and the
//! pull cursor per followed partner. Work is claimed with a lease (and, on PostgreSQL,
//! `FOR UPDATE SKIP LOCKED`), so several processes sharing one database each take
//! different work, and work held by a process that died is taken again once its lease
//! expires: nothing is stuck and nothing lives only in memory.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use sqlx::Row as _;
use time::OffsetDateTime;

use super::{
    BeginWrite as _, Inner, Result, Store, from_ms, json_text, map_err, now, parse_json, postgres,
    push_values, sqlite, to_ms,
};
use crate::store::federation::{
    AppliedVersion, BatchedVersion, InboxRecording, NoRelays, PostingVersion, PreparedVersion,
    Relayer, STORED_OUTCOME, VersionWrites as _, same_content,
};

/// How an activity reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// Pushed to our inbox.
    Push,
    /// Pulled from the sender's outbox (catch-up).
    Pull,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Push => "push",
            Via::Pull => "pull",
        }
    }

    fn parse(s: &str) -> Self {
        if s == "pull" { Via::Pull } else { Via::Push }
    }
}

/// A verified activity to store in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingActivity {
    /// Activity id.
    pub activity_id: String,
    /// Its actor.
    pub actor_id: String,
    /// `Create`, `Follow`…
    pub activity_type: String,
    /// Id of the object it is about, when it has one.
    pub object_id: Option<String>,
    /// The activity as received (with its proofs).
    pub document: Value,
    /// Push or pull.
    pub via: Via,
    /// Verification methods whose proofs verified.
    pub signers: Vec<String>,
}

/// A verified activity pulled from a partner's outbox ([`Store::accept_page`]), with the
/// posting version it only stores, if it is one (the caller's projection rules decide:
/// `federation::process`). Such a version is stored in the page's own transaction.
/// [`PulledActivity::new`] does the CPU work of storing it (the JSON texts, the feed's
/// index entry with its French stemming), so that the puller does it on the threads that
/// verify the page, not while the page before holds the database's writer.
#[derive(Debug, Clone, PartialEq)]
pub struct PulledActivity {
    activity: IncomingActivity,
    text: String,
    version: Option<(PostingVersion, PreparedVersion)>,
}

impl PulledActivity {
    /// `activity`, verified, with the posting version to store with it in a store of
    /// `kind`.
    pub fn new(
        activity: IncomingActivity,
        version: Option<PostingVersion>,
        kind: super::DatabaseKind,
    ) -> Self {
        Self {
            text: json_text(&activity.document),
            version: version.map(|v| {
                let prepared = PreparedVersion::new(&v, kind);
                (v, prepared)
            }),
            activity,
        }
    }

    /// The verified activity.
    pub fn activity(&self) -> &IncomingActivity {
        &self.activity
    }

    /// The posting version stored with it, if any.
    pub fn version(&self) -> Option<&PostingVersion> {
        self.version.as_ref().map(|(v, _)| v)
    }

    /// Leaves its posting version to the projection (stored without it).
    pub fn without_version(self) -> Self {
        Self {
            version: None,
            ..self
        }
    }
}

/// What storing one item of a pulled page did ([`Store::accept_page`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PulledAccept {
    /// Stored, duplicate or reused id.
    pub accept: InboxAccept,
    /// What storing its posting version did, when it was stored with the page (a new item
    /// with a version); its relay (§10), if any, was appended to the outbox with it.
    pub applied: Option<AppliedVersion>,
}

/// An item to store in the inbox: what [`Store::accept_activities`] and
/// [`Store::accept_page`] share.
trait Incoming: Sync {
    fn activity(&self) -> &IncomingActivity;
    /// The activity's JSON text, as stored.
    fn text(&self) -> std::borrow::Cow<'_, str>;
    /// The posting version to store with it, prepared.
    fn prepared(&self) -> Option<(&PostingVersion, &PreparedVersion)>;
}

impl Incoming for IncomingActivity {
    fn activity(&self) -> &IncomingActivity {
        self
    }
    fn text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Owned(json_text(&self.document))
    }
    fn prepared(&self) -> Option<(&PostingVersion, &PreparedVersion)> {
        None
    }
}

impl Incoming for PulledActivity {
    fn activity(&self) -> &IncomingActivity {
        &self.activity
    }
    fn text(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(&self.text)
    }
    fn prepared(&self) -> Option<(&PostingVersion, &PreparedVersion)> {
        self.version.as_ref().map(|(v, p)| (v, p))
    }
}

/// What storing a received activity did (protocol §8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxAccept {
    /// Stored for projection, at this sequence number.
    Stored {
        /// Inbox sequence number.
        seq: i64,
    },
    /// Already accepted with the same content: nothing to do (answer `202`).
    Duplicate,
    /// Already accepted with other content (answer `409 activity_id_reused`).
    IdReused,
}

/// A stored inbox item, claimed for projection.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxEntry {
    /// Sequence number.
    pub seq: i64,
    /// Activity id.
    pub activity_id: String,
    /// Its actor.
    pub actor_id: String,
    /// Activity type.
    pub activity_type: String,
    /// Object id, if any.
    pub object_id: Option<String>,
    /// The activity as received.
    pub document: Value,
    /// Push or pull.
    pub via: Via,
    /// Verified signers.
    pub signers: Vec<String>,
    /// Received at.
    pub received_at: OffsetDateTime,
    /// Projection attempts so far (this one included).
    pub attempts: i64,
}

/// Counts of the inbox, for operators and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct InboxStats {
    /// Activities stored.
    pub total: i64,
    /// Not projected yet.
    pub unprocessed: i64,
    /// Projection failed for good (kept for the operator).
    pub failed: i64,
}

/// A delivery job claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryJob {
    /// Job id.
    pub id: i64,
    /// The outbox activity.
    pub outbox_seq: i64,
    /// Recipient inbox.
    pub inbox_url: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// First attempt, if any was made.
    pub first_attempt_at: Option<OffsetDateTime>,
    /// Whether the single retry after a 401 was used.
    pub auth_retried: bool,
    /// Id of the activity.
    pub activity_id: String,
    /// The activity, as stored in the outbox (the bytes to send).
    pub body: String,
}

/// The result of one delivery attempt, to record.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    /// 2xx.
    Delivered {
        /// Status received.
        status: u16,
    },
    /// Failed; retry at `next_attempt_at`.
    Retry {
        /// Status received, if any.
        status: Option<u16>,
        /// Problem code, if the partner sent one.
        code: Option<String>,
        /// What failed.
        error: String,
        /// When to retry.
        next_attempt_at: OffsetDateTime,
        /// This retry is the single one after a 401.
        auth_retry: bool,
    },
    /// Failed for good: dead-lettered (kept, visible, replayable).
    Dead {
        /// Status received, if any.
        status: Option<u16>,
        /// Problem code, if any.
        code: Option<String>,
        /// What failed.
        error: String,
    },
}

/// Delivery state of one recipient inbox (protocol §8.3: visible to the operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InboxHealth {
    /// The inbox URL.
    pub inbox_url: String,
    /// Jobs waiting.
    pub pending: i64,
    /// Jobs delivered.
    pub delivered: i64,
    /// Jobs dead-lettered.
    pub dead: i64,
    /// Oldest waiting job's creation (Unix ms).
    pub oldest_pending_ms: Option<i64>,
    /// Next retry (Unix ms).
    pub next_attempt_ms: Option<i64>,
    /// Failures in a row.
    pub consecutive_failures: i64,
    /// Circuit open (jobs paused) until (Unix ms).
    pub circuit_open_until_ms: Option<i64>,
    /// Last success (Unix ms).
    pub last_success_ms: Option<i64>,
    /// Last failure (Unix ms).
    pub last_failure_ms: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
}

/// A dead-lettered delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// Job id.
    pub id: i64,
    /// Recipient inbox.
    pub inbox_url: String,
    /// The activity.
    pub activity_id: String,
    /// Its type.
    pub activity_type: String,
    /// Attempts made.
    pub attempts: i64,
    /// Last status.
    pub last_status: Option<i64>,
    /// Last problem code.
    pub last_code: Option<String>,
    /// Last error.
    pub last_error: Option<String>,
    /// When it was dead-lettered (Unix ms).
    pub finished_ms: Option<i64>,
}

/// Where a pull stands after a page: saved with the page's activities
/// ([`Store::accept_page`]).
#[derive(Debug, Clone, Copy)]
pub struct PageCursor<'a> {
    /// The partner pulled.
    pub actor_id: &'a str,
    /// The page to read next (the page's `next`, or the page itself at the end of the
    /// outbox, so the next pull re-reads it for anything added since).
    pub next_url: Option<&'a str>,
    /// The pull's lease, extended from now.
    pub lease: Duration,
}

/// Pull state of one followed partner (protocol §9.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SyncTarget {
    /// The partner's actor id.
    pub actor_id: String,
    /// Its outbox.
    pub outbox: String,
    /// The last `next` URL processed (the cursor); `None` to start from the beginning.
    pub next_url: Option<String>,
    /// Last pull attempt (Unix ms).
    pub last_pull_ms: Option<i64>,
    /// Last pull that reached the end (Unix ms).
    pub last_success_ms: Option<i64>,
    /// Last error.
    pub last_error: Option<String>,
    /// Activities pulled so far.
    pub items_pulled: i64,
    /// Next periodic pull (Unix ms).
    pub next_pull_ms: Option<i64>,
    /// A pull was requested (Unix ms).
    pub requested_ms: Option<i64>,
}

/// Failures in a row after which an inbox's circuit opens: its other jobs wait until
/// the failing job's next retry (one probe per interval, protocol §8.3).
pub const CIRCUIT_THRESHOLD: i64 = 3;

/// How many times a received activity is projected before it is set aside as failed.
pub const MAX_PROJECTION_ATTEMPTS: i64 = 8;

fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn skip_locked(inner: &Inner) -> &'static str {
    match inner {
        Inner::Sqlite(_) => sqlite::SKIP_LOCKED,
        Inner::Postgres(_) => postgres::SKIP_LOCKED,
    }
}

fn parse_signers(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

macro_rules! inbox_from_row {
    ($r:expr) => {{
        let r = &$r;
        let doc: String = col!(r, "document");
        let via: String = col!(r, "via");
        let signers: String = col!(r, "signers");
        InboxEntry {
            seq: col!(r, "seq"),
            activity_id: col!(r, "activity_id"),
            actor_id: col!(r, "actor_id"),
            activity_type: col!(r, "activity_type"),
            object_id: col!(r, "object_id"),
            document: parse_json(&doc)?,
            via: Via::parse(&via),
            signers: parse_signers(&signers),
            received_at: from_ms(col!(r, "received_at")),
            attempts: col!(r, "attempts"),
        }
    }};
}

macro_rules! sync_from_row {
    ($r:expr) => {{
        let r = &$r;
        SyncTarget {
            actor_id: col!(r, "actor_id"),
            outbox: col!(r, "outbox"),
            next_url: col!(r, "next_url"),
            last_pull_ms: col!(r, "last_pull_at"),
            last_success_ms: col!(r, "last_success_at"),
            last_error: col!(r, "last_error"),
            items_pulled: col!(r, "items_pulled"),
            next_pull_ms: col!(r, "next_pull_at"),
            requested_ms: col!(r, "requested_at"),
        }
    }};
}

const INBOX_COLUMNS: &str = "seq, activity_id, actor_id, activity_type, object_id, document, via, \
     signers, received_at, attempts";

const SYNC_COLUMNS: &str = "s.actor_id, p.outbox, s.next_url, s.last_pull_at, s.last_success_at, \
     s.last_error, s.items_pulled, s.next_pull_at, s.requested_at";

impl Store {
    // ---- inbox ----

    /// Stores verified activities in one transaction (group commit): one multi-row
    /// `INSERT … ON CONFLICT DO NOTHING RETURNING` per chunk, so a batch costs a few round
    /// trips whatever its size. De-duplicates by activity id: an id already accepted with
    /// the same content (RFC 8785 form) is a duplicate, with other content a reuse (also
    /// within one batch). Wakes this process's projection worker.
    pub async fn accept_activities(&self, items: &[IncomingActivity]) -> Result<Vec<InboxAccept>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.accept_with_cursor(items, None, &NoRelays).await?;
        Ok(out.into_iter().map(|a| a.accept).collect())
    }

    /// Stores the verified activities of one pulled outbox page as
    /// [`Store::accept_activities`] does and, in the same transaction, moves the partner's
    /// pull cursor past the page (counting the page's items) and extends the pull's lease.
    /// The cursor thus never passes a page that is not stored, and a page costs one write
    /// transaction. `items` may be empty (a page whose items were all refused).
    ///
    /// The posting version of a new item that carries one ([`PulledActivity::version`],
    /// the bulk of a catch-up) is stored in that transaction too, by the rules of
    /// [`Store::apply_posting_versions`], and its inbox row is inserted already recorded
    /// as stored: no claim and no later write of the row, which a catch-up of 100,000
    /// postings would otherwise pay twice per row. A version found stale, tombstoned or
    /// in conflict has its outcome written over that; a new version of a posting we
    /// relayed is relayed again (§10) with `relay`, in the same transaction.
    pub async fn accept_page(
        &self,
        items: &[PulledActivity],
        cursor: &PageCursor<'_>,
        relay: &dyn Relayer,
    ) -> Result<Vec<PulledAccept>> {
        self.accept_with_cursor(items, Some(cursor), relay).await
    }

    async fn accept_with_cursor<T: Incoming>(
        &self,
        items: &[T],
        cursor: Option<&PageCursor<'_>>,
        relay: &dyn Relayer,
    ) -> Result<Vec<PulledAccept>> {
        /// Rows per statement (11 parameters each; well under both engines' limits).
        const CHUNK: usize = 200;
        let t = to_ms(now());
        let mut out: Vec<Option<InboxAccept>> = vec![None; items.len()];
        let lease_until = t.saturating_add(cursor.map_or(0, |c| dur_ms(c.lease)));
        let mut applied: Vec<Option<AppliedVersion>> = vec![None; items.len()];
        let is_sqlite = matches!(self.inner, Inner::Sqlite(_));
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            for (c, chunk) in items.chunks(CHUNK).enumerate() {
                let mut sql = String::from(
                    "INSERT INTO inbox (activity_id, actor_id, activity_type, object_id, document, via, \
                     received_at, signers, processed_at, outcome, attempts) VALUES ",
                );
                push_values(&mut sql, chunk.len(), 11, is_sqlite);
                sql.push_str(" ON CONFLICT (activity_id) DO NOTHING RETURNING seq, activity_id");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for item in chunk {
                    let a = item.activity();
                    let signers = serde_json::to_string(&a.signers).unwrap_or_else(|_| "[]".to_owned());
                    // A version stored below is recorded as projected by this insert.
                    let projected = item.prepared().is_some();
                    q = q
                        .bind(&a.activity_id)
                        .bind(&a.actor_id)
                        .bind(&a.activity_type)
                        .bind(&a.object_id)
                        .bind(item.text())
                        .bind(a.via.as_str())
                        .bind(t)
                        .bind(signers)
                        .bind(projected.then_some(t))
                        .bind(projected.then_some(STORED_OUTCOME))
                        .bind(i64::from(projected));
                }
                let rows = q
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err("store received activities"))?;
                for r in rows {
                    let id: String = col!(r, "activity_id");
                    let seq: i64 = col!(r, "seq");
                    // The first item of the chunk with that id was the one inserted.
                    if let Some(k) = chunk.iter().position(|i| i.activity().activity_id == id) {
                        out[c * CHUNK + k] = Some(InboxAccept::Stored { seq });
                    }
                }
            }
            // The versions of the items inserted, stored in this transaction.
            let mut batch: Vec<BatchedVersion<'_>> = Vec::new();
            let mut preps: Vec<&PreparedVersion> = Vec::new();
            let mut at: Vec<usize> = Vec::new();
            for (k, item) in items.iter().enumerate() {
                if let (Some(InboxAccept::Stored { seq }), Some((version, prep))) = (out[k], item.prepared()) {
                    batch.push(BatchedVersion { inbox_seq: Some(seq), version });
                    preps.push(prep);
                    at.push(k);
                }
            }
            if !batch.is_empty() {
                let done = (*tx)
                    .apply_versions(&batch, &preps, t, InboxRecording::Premarked, relay)
                    .await?;
                for (k, a) in at.into_iter().zip(done) {
                    applied[k] = Some(a);
                }
            }
            // Those not inserted: already there (before, or earlier in this batch).
            for (k, item) in items.iter().enumerate() {
                if out[k].is_some() {
                    continue;
                }
                let a = item.activity();
                let stored = sqlx::query("SELECT document FROM inbox WHERE activity_id = $1")
                    .bind(&a.activity_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err("read a received activity"))?;
                let doc: String = col!(stored, "document");
                out[k] = Some(if same_content(&parse_json(&doc)?, &a.document) {
                    InboxAccept::Duplicate
                } else {
                    InboxAccept::IdReused
                });
            }
            if let Some(c) = cursor {
                sqlx::query(
                    "UPDATE sync_state SET next_url = $1, items_pulled = items_pulled + $2, last_pull_at = $3, \
                     lease_until = $4 WHERE actor_id = $5",
                )
                .bind(c.next_url)
                .bind(i64::try_from(items.len()).unwrap_or(i64::MAX))
                .bind(t)
                .bind(lease_until)
                .bind(c.actor_id)
                .execute(&mut *tx)
                .await
                .map_err(map_err("save a pull cursor"))?;
            }
            tx.commit().await.map_err(map_err("commit"))?;
        });
        let out: Vec<PulledAccept> = out
            .into_iter()
            .zip(applied)
            .map(|(o, applied)| PulledAccept {
                accept: o.unwrap_or(InboxAccept::Duplicate),
                applied,
            })
            .collect();
        if out.iter().any(|a| a.applied.is_some_and(|a| a.relayed)) {
            self.notify_outbox();
        }
        // The projection has work when an item was stored without its version.
        if out
            .iter()
            .any(|a| matches!(a.accept, InboxAccept::Stored { .. }) && a.applied.is_none())
        {
            self.events.inbox.notify_waiters();
            self.events.inbox.notify_one();
        }
        Ok(out)
    }

    /// Claims up to `limit` received activities to project, oldest first, leasing them to
    /// `owner` for `lease`. Each claim counts as an attempt.
    pub async fn claim_inbox(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<InboxEntry>> {
        let t = to_ms(now());
        let lock = skip_locked(&self.inner);
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE inbox SET lease_until = $1, lease_owner = $2, attempts = attempts + 1 \
                 WHERE seq IN (SELECT seq FROM inbox WHERE processed_at IS NULL \
                   AND (lease_until IS NULL OR lease_until < $3) ORDER BY seq LIMIT $4{lock}) \
                 RETURNING {INBOX_COLUMNS}"
            ));
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let rows = sqlx::query(sql)
                .bind(t.saturating_add(dur_ms(lease)))
                .bind(owner)
                .bind(t)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err("claim received activities"))?;
            tx.commit().await.map_err(map_err("commit"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(inbox_from_row!(r));
            }
            out.sort_by_key(|e| e.seq);
            Ok(out)
        })
    }

    /// Records that a received activity was projected, with what outcome.
    pub async fn finish_inbox(&self, seq: i64, outcome: &str) -> Result<()> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query(
                "UPDATE inbox SET processed_at = $1, outcome = $2, lease_until = NULL, lease_owner = NULL WHERE seq = $3",
            )
            .bind(to_ms(now()))
            .bind(outcome)
            .bind(seq)
            .execute(&*writer)
            .await
            .map_err(map_err("record a projection"))?;
            Ok(())
        })
    }

    /// Leaves a received activity for a later attempt (a temporary failure), not before
    /// `retry_in`.
    pub async fn retry_inbox(&self, seq: i64, error: &str, retry_in: Duration) -> Result<()> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query("UPDATE inbox SET lease_until = $1, lease_owner = NULL, outcome = $2 WHERE seq = $3")
                .bind(to_ms(now()).saturating_add(dur_ms(retry_in)))
                .bind(format!("retrying: {error}"))
                .bind(seq)
                .execute(&*writer)
                .await
                .map_err(map_err("postpone a projection"))?;
            Ok(())
        })
    }

    /// One received activity by id.
    pub async fn inbox_entry(
        &self,
        activity_id: &str,
    ) -> Result<Option<(InboxEntry, Option<String>)>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {INBOX_COLUMNS}, outcome FROM inbox WHERE activity_id = $1"
            ));
            let row = sqlx::query(sql)
                .bind(activity_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a received activity"))?;
            Ok(match row {
                Some(r) => {
                    let outcome: Option<String> = col!(r, "outcome");
                    Some((inbox_from_row!(r), outcome))
                }
                None => None,
            })
        })
    }

    /// Received activities, newest first, optionally of one actor.
    pub async fn inbox_entries(
        &self,
        actor_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(InboxEntry, Option<String>)>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {INBOX_COLUMNS}, outcome FROM inbox WHERE ($1 IS NULL OR actor_id = $1) \
                 ORDER BY seq DESC LIMIT $2"
            ));
            let rows = sqlx::query(sql)
                .bind(actor_id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(map_err("list received activities"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let outcome: Option<String> = col!(r, "outcome");
                out.push((inbox_from_row!(r), outcome));
            }
            Ok(out)
        })
    }

    /// Counts of the inbox.
    pub async fn inbox_stats(&self) -> Result<InboxStats> {
        both!(self, pool => {
            let row = sqlx::query(
                // Each count from an index (`inbox_unprocessed`, `inbox_failed`), never
                // the documents.
                "SELECT (SELECT COUNT(*) FROM inbox) AS total, \
                 (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL) AS unprocessed, \
                 (SELECT COUNT(*) FROM inbox WHERE outcome LIKE 'failed%') AS failed",
            )
            .fetch_one(pool)
            .await
            .map_err(map_err("count the inbox"))?;
            Ok(InboxStats {
                total: col!(row, "total"),
                unprocessed: col!(row, "unprocessed"),
                failed: col!(row, "failed"),
            })
        })
    }

    // ---- deliveries ----

    /// Claims due delivery jobs, oldest due first, leasing them to `owner` for `lease`: at
    /// most `per_inbox` in flight per recipient inbox (counting jobs already leased), and
    /// one only for an inbox that is failing (a probe), none while its circuit is open.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        limit: u32,
        per_inbox: u32,
        lease: Duration,
    ) -> Result<Vec<DeliveryJob>> {
        let t = to_ms(now());
        let lock = skip_locked(&self.inner);
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "WITH cand AS ( \
                   SELECT d.id, d.inbox_url, d.next_attempt_at FROM deliveries d \
                   WHERE d.state = 'pending' AND d.next_attempt_at <= $1 \
                     AND (d.lease_until IS NULL OR d.lease_until < $1) \
                     AND NOT EXISTS (SELECT 1 FROM delivery_targets t WHERE t.inbox_url = d.inbox_url \
                                     AND t.circuit_open_until IS NOT NULL AND t.circuit_open_until > $1) \
                   ORDER BY d.next_attempt_at, d.id LIMIT 512{lock}), \
                 ranked AS ( \
                   SELECT c.id, c.next_attempt_at, \
                     ROW_NUMBER() OVER (PARTITION BY c.inbox_url ORDER BY c.next_attempt_at, c.id) AS rn, \
                     (SELECT COUNT(*) FROM deliveries x WHERE x.inbox_url = c.inbox_url \
                        AND x.state = 'pending' AND x.lease_until IS NOT NULL AND x.lease_until >= $1) AS inflight, \
                     COALESCE((SELECT t.consecutive_failures FROM delivery_targets t WHERE t.inbox_url = c.inbox_url), 0) AS failures \
                   FROM cand c) \
                 UPDATE deliveries SET lease_until = $2, lease_owner = $3 \
                 WHERE id IN (SELECT id FROM ranked \
                   WHERE rn + inflight <= CASE WHEN failures > 0 THEN 1 ELSE $4 END \
                   ORDER BY next_attempt_at, id LIMIT $5) \
                 RETURNING id, outbox_seq, inbox_url, attempts, first_attempt_at, auth_retried"
            ));
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let rows = sqlx::query(sql)
                .bind(t)
                .bind(t.saturating_add(dur_ms(lease)))
                .bind(owner)
                .bind(i64::from(per_inbox.max(1)))
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err("claim delivery jobs"))?;
            tx.commit().await.map_err(map_err("commit"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let seq: i64 = col!(r, "outbox_seq");
                let first: Option<i64> = col!(r, "first_attempt_at");
                let doc = sqlx::query("SELECT activity_id, document FROM outbox WHERE seq = $1")
                    .bind(seq)
                    .fetch_one(pool)
                    .await
                    .map_err(map_err("read an outbox activity"))?;
                out.push(DeliveryJob {
                    id: col!(r, "id"),
                    outbox_seq: seq,
                    inbox_url: col!(r, "inbox_url"),
                    attempts: col!(r, "attempts"),
                    first_attempt_at: first.map(from_ms),
                    auth_retried: col!(r, "auth_retried"),
                    activity_id: col!(doc, "activity_id"),
                    body: col!(doc, "document"),
                });
            }
            out.sort_by_key(|j| (j.outbox_seq, j.id));
            Ok(out)
        })
    }

    /// Records the outcome of an attempt of job `job.id` and the health of its inbox.
    /// Returns the failures in a row the inbox had before this attempt.
    pub async fn record_delivery(
        &self,
        job: &DeliveryJob,
        outcome: &DeliveryOutcome,
    ) -> Result<i64> {
        let previous = self.record_deliveries(&[(job, outcome)]).await?;
        Ok(previous.first().copied().unwrap_or(0))
    }

    /// Records the outcomes of several attempts in **one** transaction (the delivery
    /// workers' group commit), in order, as [`Store::record_delivery`] would one by one.
    /// Returns, for each, the failures in a row its inbox had before that attempt.
    pub async fn record_deliveries(
        &self,
        items: &[(&DeliveryJob, &DeliveryOutcome)],
    ) -> Result<Vec<i64>> {
        let t = to_ms(now());
        let mut out = vec![0; items.len()];
        // Rows are locked in one order (by inbox, then as given) in every process, so two
        // processes recording batches at once cannot deadlock on PostgreSQL.
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by(|&a, &b| items[a].0.inbox_url.cmp(&items[b].0.inbox_url));
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            for &k in &order {
                let (job, outcome) = items[k];
                let first = job.first_attempt_at.map_or(t, to_ms);
                sqlx::query(
                    "INSERT INTO delivery_targets (inbox_url, consecutive_failures) VALUES ($1, 0) \
                     ON CONFLICT (inbox_url) DO NOTHING",
                )
                .bind(&job.inbox_url)
                .execute(&mut *tx)
                .await
                .map_err(map_err("record an inbox"))?;
                let row = sqlx::query("SELECT consecutive_failures FROM delivery_targets WHERE inbox_url = $1")
                    .bind(&job.inbox_url)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err("read an inbox's health"))?;
                let previous: i64 = col!(row, "consecutive_failures");
                match outcome {
                    DeliveryOutcome::Delivered { status } => {
                        sqlx::query(
                            "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, \
                             first_attempt_at = $1, last_attempt_at = $2, last_status = $3, last_code = NULL, \
                             last_error = NULL, lease_until = NULL, lease_owner = NULL, finished_at = $2 WHERE id = $4",
                        )
                        .bind(first)
                        .bind(t)
                        .bind(i64::from(*status))
                        .bind(job.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err("record a delivery"))?;
                        sqlx::query(
                            "UPDATE delivery_targets SET consecutive_failures = 0, circuit_open_until = NULL, \
                             last_success_at = $1 WHERE inbox_url = $2",
                        )
                        .bind(t)
                        .bind(&job.inbox_url)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err("record an inbox's health"))?;
                    }
                    DeliveryOutcome::Retry { status, code, error, next_attempt_at, auth_retry } => {
                        sqlx::query(
                            "UPDATE deliveries SET attempts = attempts + 1, first_attempt_at = $1, last_attempt_at = $2, \
                             last_status = $3, last_code = $4, last_error = $5, next_attempt_at = $6, \
                             auth_retried = (auth_retried OR $7), lease_until = NULL, lease_owner = NULL WHERE id = $8",
                        )
                        .bind(first)
                        .bind(t)
                        .bind(status.map(i64::from))
                        .bind(code)
                        .bind(error)
                        .bind(to_ms(*next_attempt_at))
                        .bind(*auth_retry)
                        .bind(job.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err("record a failed delivery"))?;
                        sqlx::query(
                            "UPDATE delivery_targets SET consecutive_failures = consecutive_failures + 1, \
                             circuit_open_until = CASE WHEN consecutive_failures + 1 >= $5 THEN $1 ELSE NULL END, \
                             last_failure_at = $2, last_error = $3 WHERE inbox_url = $4",
                        )
                        .bind(to_ms(*next_attempt_at))
                        .bind(t)
                        .bind(error)
                        .bind(&job.inbox_url)
                        .bind(CIRCUIT_THRESHOLD)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err("record an inbox's health"))?;
                    }
                    DeliveryOutcome::Dead { status, code, error } => {
                        sqlx::query(
                            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, first_attempt_at = $1, \
                             last_attempt_at = $2, last_status = $3, last_code = $4, last_error = $5, \
                             lease_until = NULL, lease_owner = NULL, finished_at = $2 WHERE id = $6",
                        )
                        .bind(first)
                        .bind(t)
                        .bind(status.map(i64::from))
                        .bind(code)
                        .bind(error)
                        .bind(job.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err("dead-letter a delivery"))?;
                        sqlx::query(
                            "UPDATE delivery_targets SET last_failure_at = $1, last_error = $2 WHERE inbox_url = $3",
                        )
                        .bind(t)
                        .bind(error)
                        .bind(&job.inbox_url)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err("record an inbox's health"))?;
                    }
                }
                out[k] = previous;
            }
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(out)
        })
    }

    /// Dead-letters every waiting job of an inbox whose actor is gone (`410`).
    pub async fn dead_letter_inbox(&self, inbox_url: &str, error: &str) -> Result<u64> {
        let t = to_ms(now());
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            let n = sqlx::query(
                "UPDATE deliveries SET state = 'dead', last_code = 'gone', last_error = $1, finished_at = $2, \
                 lease_until = NULL, lease_owner = NULL WHERE inbox_url = $3 AND state = 'pending'",
            )
            .bind(error)
            .bind(t)
            .bind(inbox_url)
            .execute(&*writer)
            .await
            .map_err(map_err("dead-letter an inbox's jobs"))?
            .rows_affected();
            Ok(n)
        })
    }

    /// Delivery state of every recipient inbox that has jobs.
    pub async fn delivery_health(&self) -> Result<Vec<InboxHealth>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT d.inbox_url, \
                   SUM(CASE WHEN d.state = 'pending' THEN 1 ELSE 0 END) AS pending, \
                   SUM(CASE WHEN d.state = 'delivered' THEN 1 ELSE 0 END) AS delivered, \
                   SUM(CASE WHEN d.state = 'dead' THEN 1 ELSE 0 END) AS dead, \
                   MIN(CASE WHEN d.state = 'pending' THEN d.created_at END) AS oldest, \
                   MIN(CASE WHEN d.state = 'pending' THEN d.next_attempt_at END) AS next_attempt, \
                   MAX(t.consecutive_failures) AS failures, MAX(t.circuit_open_until) AS circuit, \
                   MAX(t.last_success_at) AS last_success, MAX(t.last_failure_at) AS last_failure, \
                   MAX(t.last_error) AS last_error \
                 FROM deliveries d LEFT JOIN delivery_targets t ON t.inbox_url = d.inbox_url \
                 GROUP BY d.inbox_url ORDER BY d.inbox_url",
            )
            .fetch_all(pool)
            .await
            .map_err(map_err("read delivery health"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let failures: Option<i64> = col!(r, "failures");
                out.push(InboxHealth {
                    inbox_url: col!(r, "inbox_url"),
                    pending: col!(r, "pending"),
                    delivered: col!(r, "delivered"),
                    dead: col!(r, "dead"),
                    oldest_pending_ms: col!(r, "oldest"),
                    next_attempt_ms: col!(r, "next_attempt"),
                    consecutive_failures: failures.unwrap_or(0),
                    circuit_open_until_ms: col!(r, "circuit"),
                    last_success_ms: col!(r, "last_success"),
                    last_failure_ms: col!(r, "last_failure"),
                    last_error: col!(r, "last_error"),
                });
            }
            Ok(out)
        })
    }

    /// Dead-lettered deliveries, newest first, optionally to one inbox.
    pub async fn dead_letters(
        &self,
        inbox_url: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeadLetter>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT d.id, d.inbox_url, o.activity_id, o.activity_type, d.attempts, d.last_status, \
                 d.last_code, d.last_error, d.finished_at FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq \
                 WHERE d.state = 'dead' AND ($1 IS NULL OR d.inbox_url = $1) ORDER BY d.finished_at DESC, d.id DESC LIMIT $2",
            )
            .bind(inbox_url)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(map_err("list dead letters"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(DeadLetter {
                    id: col!(r, "id"),
                    inbox_url: col!(r, "inbox_url"),
                    activity_id: col!(r, "activity_id"),
                    activity_type: col!(r, "activity_type"),
                    attempts: col!(r, "attempts"),
                    last_status: col!(r, "last_status"),
                    last_code: col!(r, "last_code"),
                    last_error: col!(r, "last_error"),
                    finished_ms: col!(r, "finished_at"),
                });
            }
            Ok(out)
        })
    }

    /// Puts dead-lettered jobs back in the queue (all of them, or those to one inbox), to
    /// be tried at once with a fresh schedule; closes that inbox's circuit. Returns how
    /// many were requeued.
    pub async fn replay_dead_letters(&self, inbox_url: Option<&str>) -> Result<u64> {
        let t = to_ms(now());
        let n = both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query(
                "UPDATE deliveries SET state = 'pending', attempts = 0, first_attempt_at = NULL, \
                 next_attempt_at = $1, auth_retried = FALSE, finished_at = NULL \
                 WHERE state = 'dead' AND ($2 IS NULL OR inbox_url = $2)",
            )
            .bind(t)
            .bind(inbox_url)
            .execute(&mut *tx)
            .await
            .map_err(map_err("replay dead letters"))?
            .rows_affected();
            sqlx::query(
                "UPDATE delivery_targets SET circuit_open_until = NULL, consecutive_failures = 0 \
                 WHERE $1 IS NULL OR inbox_url = $1",
            )
            .bind(inbox_url)
            .execute(&mut *tx)
            .await
            .map_err(map_err("close a circuit"))?;
            tx.commit().await.map_err(map_err("commit"))?;
            n
        });
        if n > 0 {
            self.notify_outbox();
        }
        Ok(n)
    }

    /// Makes every waiting job of an inbox due now and closes its circuit (the partner
    /// came back: it sent us something, or the operator asked).
    pub async fn retry_inbox_now(&self, inbox_url: &str) -> Result<u64> {
        let t = to_ms(now());
        let n = both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $1 WHERE inbox_url = $2 AND state = 'pending' AND next_attempt_at > $1",
            )
            .bind(t)
            .bind(inbox_url)
            .execute(&mut *tx)
            .await
            .map_err(map_err("reschedule deliveries"))?
            .rows_affected();
            sqlx::query("UPDATE delivery_targets SET circuit_open_until = NULL WHERE inbox_url = $1")
                .bind(inbox_url)
                .execute(&mut *tx)
                .await
                .map_err(map_err("close a circuit"))?;
            tx.commit().await.map_err(map_err("commit"))?;
            n
        });
        if n > 0 {
            self.notify_outbox();
        }
        Ok(n)
    }

    /// Jobs of one outbox activity: `(inbox, state)`, for tests and diagnostics.
    pub async fn deliveries_of(&self, activity_id: &str) -> Result<Vec<(String, String, i64)>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT d.inbox_url, d.state, d.attempts FROM deliveries d JOIN outbox o ON o.seq = d.outbox_seq \
                 WHERE o.activity_id = $1 ORDER BY d.inbox_url",
            )
            .bind(activity_id)
            .fetch_all(pool)
            .await
            .map_err(map_err("list deliveries"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((col!(r, "inbox_url"), col!(r, "state"), col!(r, "attempts")));
            }
            Ok(out)
        })
    }

    // ---- pull sync ----

    /// Pull state of every partner we follow.
    pub async fn sync_targets(&self) -> Result<Vec<SyncTarget>> {
        self.ensure_sync_rows().await?;
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {SYNC_COLUMNS} FROM sync_state s JOIN partners p ON p.actor_id = s.actor_id \
                 WHERE p.outgoing = 'accepted' AND p.outbox IS NOT NULL AND p.outbox <> '' ORDER BY s.actor_id"
            ));
            let rows = sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map_err(map_err("read pull state"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(sync_from_row!(r));
            }
            Ok(out)
        })
    }

    async fn ensure_sync_rows(&self) -> Result<()> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query(
                "INSERT INTO sync_state (actor_id) SELECT actor_id FROM partners \
                 WHERE outgoing = 'accepted' AND outbox IS NOT NULL AND outbox <> '' ON CONFLICT (actor_id) DO NOTHING",
            )
            .execute(&*writer)
            .await
            .map_err(map_err("create pull state"))?;
            Ok(())
        })
    }

    /// Claims the pulls that are due (requested, never done, or past their periodic time),
    /// leasing them to `owner` for `lease`.
    pub async fn claim_pulls(
        &self,
        owner: &str,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<SyncTarget>> {
        self.ensure_sync_rows().await?;
        let t = to_ms(now());
        let lock = skip_locked(&self.inner);
        let claimed: Vec<String> = both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE sync_state SET lease_until = $1, lease_owner = $2 WHERE actor_id IN ( \
                   SELECT s.actor_id FROM sync_state s JOIN partners p ON p.actor_id = s.actor_id \
                   WHERE p.outgoing = 'accepted' AND p.outbox IS NOT NULL AND p.outbox <> '' \
                     AND (s.lease_until IS NULL OR s.lease_until < $3) \
                     AND (s.requested_at IS NOT NULL OR s.next_pull_at IS NULL OR s.next_pull_at <= $3) \
                   ORDER BY s.actor_id LIMIT $4{lock}) RETURNING actor_id"
            ));
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let rows = sqlx::query(sql)
                .bind(t.saturating_add(dur_ms(lease)))
                .bind(owner)
                .bind(t)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err("claim pulls"))?;
            tx.commit().await.map_err(map_err("commit"))?;
            let mut ids = Vec::with_capacity(rows.len());
            for r in rows {
                ids.push(col!(r, "actor_id"));
            }
            ids
        });
        let all = self.sync_targets().await?;
        Ok(all
            .into_iter()
            .filter(|s| claimed.contains(&s.actor_id))
            .collect())
    }

    /// Ends a pull: releases the lease, records success or the error, and schedules the
    /// next periodic pull. A request made since `started` stays pending.
    pub async fn finish_pull(
        &self,
        actor_id: &str,
        started: OffsetDateTime,
        error: Option<&str>,
        next_pull_at: OffsetDateTime,
    ) -> Result<()> {
        let t = to_ms(now());
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query(
                "UPDATE sync_state SET lease_until = NULL, lease_owner = NULL, last_pull_at = $1, \
                 last_success_at = CASE WHEN $2 IS NULL THEN $1 ELSE last_success_at END, last_error = $2, \
                 next_pull_at = $3, requested_at = CASE WHEN requested_at IS NOT NULL AND requested_at > $4 \
                 THEN requested_at ELSE NULL END WHERE actor_id = $5",
            )
            .bind(t)
            .bind(error)
            .bind(to_ms(next_pull_at))
            .bind(to_ms(started))
            .bind(actor_id)
            .execute(&*writer)
            .await
            .map_err(map_err("end a pull"))?;
            Ok(())
        })
    }

    /// Asks for a pull of `actor_id` (or of every followed partner) as soon as possible.
    pub async fn request_pull(&self, actor_id: Option<&str>) -> Result<()> {
        self.ensure_sync_rows().await?;
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query("UPDATE sync_state SET requested_at = $1 WHERE $2 IS NULL OR actor_id = $2")
                .bind(to_ms(now()))
                .bind(actor_id)
                .execute(&*writer)
                .await
                .map_err(map_err("request a pull"))?;
            Ok(())
        })
    }

    /// Forgets the cursor of a partner (it answered `cursor_invalid`, or the partnership
    /// restarts): the next pull starts from its outbox's first page.
    pub async fn reset_cursor(&self, actor_id: &str) -> Result<()> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query("UPDATE sync_state SET next_url = NULL WHERE actor_id = $1")
                .bind(actor_id)
                .execute(&*writer)
                .await
                .map_err(map_err("reset a pull cursor"))?;
            Ok(())
        })
    }
}

impl Store {
    /// Delivery jobs and the attempts made for them, in total (diagnostics and tests).
    pub async fn delivery_attempts(&self) -> Result<(i64, i64)> {
        both!(self, pool => {
            let row = sqlx::query("SELECT COUNT(*) AS jobs, CAST(COALESCE(SUM(attempts), 0) AS BIGINT) AS attempts FROM deliveries")
                .fetch_one(pool)
                .await
                .map_err(map_err("count deliveries"))?;
            Ok((col!(row, "jobs"), col!(row, "attempts")))
        })
    }
}
