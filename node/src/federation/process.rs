//! Projection: what a stored (verified) activity changes, applied from the stored copy
//! after the `202` (spec/protocol.md §7, §8.5, §10). Partnerships follow `Follow`,
//! `Accept`, `Reject` and `Undo`; the remote postings cache follows `Create`, `Update`,
//! `Delete` and their relays (`Announce`) by version, tombstones winning; an actor's
//! `Update` refreshes its cached document. Every effect is idempotent, so an item
//! projected twice (a process killed between the effect and the record) changes nothing
//! more.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::partners;
use super::{Federation, FederationError, sleep_or_stop};
use crate::store::{
    AppliedVersion, BatchedVersion, InboxEntry, IncomingActivity, MAX_PROJECTION_ATTEMPTS,
    PartnershipChange, PartnershipState, PostingApply, PostingVersion, StoreError, origin_of,
};

/// Items claimed per batch.
const BATCH: u32 = 32;

/// Lease of a claimed batch: long enough for its projections (which may fetch an actor),
/// short enough that a batch held by a process that died is taken again soon.
fn lease(fed: &Federation) -> Duration {
    Duration::from_secs(fed.config().request_timeout_secs.saturating_mul(2).max(10))
}

/// How recent a pushed activity makes the inbox busy.
const BUSY_WINDOW: Duration = Duration::from_millis(50);
/// Longest the projection waits for a busy inbox before it projects one batch anyway.
const MAX_DEFER: Duration = Duration::from_secs(2);
/// Lag behind the inbox beyond which the projection stops yielding: while the oldest item
/// it claims was received longer ago than this, it projects batch after batch.
const MAX_LAG: Duration = Duration::from_secs(5);

/// When this process's inbox last stored a pushed activity (a monotonic clock reading).
#[derive(Debug)]
pub struct Pressure {
    origin: std::time::Instant,
    /// Milliseconds from `origin` to the last push, plus one (0: never).
    last_ms: std::sync::atomic::AtomicU64,
}

impl Default for Pressure {
    fn default() -> Self {
        Self {
            origin: std::time::Instant::now(),
            last_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Pressure {
    /// Records a push now.
    pub fn mark(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms
            .store(ms.saturating_add(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a push was recorded within `window`.
    pub fn busy(&self, window: Duration) -> bool {
        match self.last_ms.load(std::sync::atomic::Ordering::Relaxed) {
            0 => false,
            last => {
                let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
                now.saturating_add(1).saturating_sub(last)
                    <= u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
            }
        }
    }
}

/// The projection loop of one process.
///
/// It yields to a busy inbox: a partner waits for the `202` of its push, which shares the
/// database writer (and, on SQLite, the vCPUs) with the projection, while nobody waits
/// for a projection a few seconds late. While this process's inbox stored a push within
/// [`BUSY_WINDOW`], the loop waits, at most [`MAX_DEFER`] before it projects a batch
/// anyway; once the oldest item of a claimed batch is more than [`MAX_LAG`] old, it stops
/// yielding until it has caught up. A burst is thus accepted at the inbox's own pace and
/// projected right after it; under sustained load the projection lags the inbox by at
/// most about `MAX_LAG + MAX_DEFER` and then keeps pace as it would without yielding.
pub async fn run(fed: Arc<Federation>, mut shutdown: watch::Receiver<bool>) {
    let poll = Duration::from_millis(fed.config().poll_interval_ms);
    let mut deferred_since: Option<std::time::Instant> = None;
    let mut behind = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if !behind && fed.pushes().busy(BUSY_WINDOW) {
            let since = *deferred_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() < MAX_DEFER {
                if sleep_or_stop(BUSY_WINDOW, &mut shutdown).await {
                    return;
                }
                continue;
            }
        }
        deferred_since = None;
        let batch = match fed
            .store()
            .claim_inbox(fed.owner(), BATCH, lease(&fed))
            .await
        {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim received activities");
                if sleep_or_stop(poll, &mut shutdown).await {
                    return;
                }
                continue;
            }
        };
        if batch.is_empty() {
            behind = false;
            let notified = fed.store().events().inbox.notified();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(poll) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        behind = batch
            .iter()
            .map(|e| e.received_at)
            .min()
            .is_some_and(|oldest| time::OffsetDateTime::now_utc() - oldest > MAX_LAG);
        project_batch(&fed, &batch).await;
    }
}

/// Projects a claimed batch in order. Runs of consecutive items that only store a posting
/// version (the bulk of federation traffic: `Create`/`Update` of a posting and their
/// relays) are stored and recorded in one write transaction
/// ([`crate::store::Store::apply_posting_versions`]); every other item, and every item of a
/// run whose transaction failed, is projected on its own by [`project_one`].
pub async fn project_batch(fed: &Federation, batch: &[InboxEntry]) {
    let mut run: Vec<(&InboxEntry, PostingVersion)> = Vec::new();
    for entry in batch {
        match posting_version_of(fed, entry.into()) {
            Some(version) => run.push((entry, version)),
            None => {
                project_run(fed, std::mem::take(&mut run)).await;
                project_one(fed, entry).await;
            }
        }
    }
    project_run(fed, run).await;
}

/// Stores a run of posting versions in one transaction, with the relays of the new
/// versions of postings we relayed (§10), and records them.
async fn project_run(fed: &Federation, run: Vec<(&InboxEntry, PostingVersion)>) {
    if run.is_empty() {
        return;
    }
    let items: Vec<BatchedVersion<'_>> = run
        .iter()
        .map(|(entry, version)| BatchedVersion {
            inbox_seq: Some(entry.seq),
            version,
        })
        .collect();
    let applied = match fed.store().apply_posting_versions(&items, fed).await {
        Ok(applied) => applied,
        Err(e) => {
            tracing::warn!(error = %e, items = run.len(), "cannot store a batch of postings; projecting them one by one");
            for (entry, _) in &run {
                project_one(fed, entry).await;
            }
            return;
        }
    };
    for ((entry, version), applied) in run.iter().zip(applied) {
        note_applied(fed, &entry.activity_id, version, applied);
    }
}

/// Accounts for a posting version stored (and recorded) from the inbox, by
/// [`project_run`] or with its pulled page: the metric and the log of a projected item,
/// the warning of a version conflict.
pub(super) fn note_applied(
    fed: &Federation,
    activity_id: &str,
    version: &PostingVersion,
    applied: AppliedVersion,
) {
    warn_conflict(version, applied);
    fed.metrics()
        .projected
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(activity = %activity_id, outcome = applied.outcome(), "projected");
}

/// Logs a version conflict (the stored version is kept).
fn warn_conflict(version: &PostingVersion, applied: AppliedVersion) {
    if applied.apply == PostingApply::VersionConflict {
        tracing::warn!(
            posting = %version.object_id,
            "same version with other content; the stored one is kept"
        );
    }
}

/// Projects one item and records the outcome (or schedules a retry).
pub async fn project_one(fed: &Federation, entry: &InboxEntry) {
    let result = project(fed, entry).await;
    record(fed, entry, result).await;
}

/// Records the outcome of projecting `entry`, or schedules a retry.
async fn record(
    fed: &Federation,
    entry: &InboxEntry,
    result: Result<&'static str, FederationError>,
) {
    let store = fed.store();
    let record = match result {
        Ok(outcome) => {
            fed.metrics()
                .projected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(activity = %entry.activity_id, outcome, "projected");
            store.finish_inbox(entry.seq, outcome).await
        }
        Err(e) if entry.attempts >= MAX_PROJECTION_ATTEMPTS => {
            tracing::error!(activity = %entry.activity_id, error = %e, "projection failed for good; the activity is kept for the operator");
            store.finish_inbox(entry.seq, &format!("failed: {e}")).await
        }
        Err(e) => {
            let delay = Duration::from_secs(5u64.saturating_mul(1 << entry.attempts.clamp(0, 10)));
            tracing::warn!(activity = %entry.activity_id, error = %e, retry_in_secs = delay.as_secs(), "projection failed; will retry");
            store.retry_inbox(entry.seq, &e.to_string(), delay).await
        }
    };
    if let Err(e) = record {
        tracing::warn!(error = %e, "cannot record a projection");
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The id of an activity's `object` (embedded or by reference).
fn object_id(v: &Value) -> Option<&str> {
    match v.get("object") {
        Some(Value::String(s)) => Some(s),
        Some(o) => str_of(o, "id"),
        None => None,
    }
}

async fn project(fed: &Federation, entry: &InboxEntry) -> Result<&'static str, FederationError> {
    let doc = &entry.document;
    let actor = entry.actor_id.as_str();
    let object = doc.get("object").filter(|o| o.is_object());
    // Mobility (MAD requests, conventions, profiles): see `federation::mobility`.
    if let Some(outcome) = super::mobility::project(fed, entry).await? {
        return Ok(outcome);
    }
    if let Some((posting, relayed_by)) = posting_of(entry.into()) {
        return apply_posting(fed, posting, relayed_by, &entry.signers).await;
    }
    match entry.activity_type.as_str() {
        "Follow" => partners::on_follow(fed, actor, doc).await,
        "Accept" | "Reject" => on_answer(fed, entry).await,
        "Undo" => on_undo(fed, entry).await,
        "Create" | "Update" => match object.and_then(|o| str_of(o, "type")) {
            Some("Organization") => {
                fed.actors().forget(actor);
                let fresh = fed.actors().refetch(actor).await?;
                fed.store()
                    .upsert_partner(&partners::partner_info(&fresh.doc))
                    .await?;
                Ok("actor refreshed")
            }
            Some(_) => Ok("kept: no projection for this object type on this node"),
            None => Ok("ignored: no embedded object"),
        },
        "Delete" => {
            let Some(id) = object_id(doc) else {
                return Ok("ignored: no object");
            };
            if id == actor {
                fed.actors().forget(actor);
                tracing::warn!(actor, "a partner node announced its deletion");
                return Ok("actor deleted");
            }
            if origin_of(id) != origin_of(actor) {
                return Ok("ignored: object of another origin");
            }
            fed.store().apply_posting_delete(id, actor, None).await?;
            if fed.store().has_relayed(id).await? {
                // We relayed it: relay its deletion the same way (§10).
                partners::relay_activity(fed, doc, id).await?;
            }
            Ok("posting deleted")
        }
        "Announce" => {
            let Some(inner) = object else {
                return Ok("ignored: relay without an embedded object");
            };
            match str_of(inner, "type") {
                // A relayed posting, or its Create/Update, was applied above.
                Some("Create" | "Update") => Ok("ignored: relayed activity without a posting"),
                Some("Delete") => {
                    let (Some(id), Some(author)) = (object_id(inner), str_of(inner, "actor"))
                    else {
                        return Ok("ignored: relayed delete without object");
                    };
                    if origin_of(id) != origin_of(author) {
                        return Ok("ignored: object of another origin");
                    }
                    fed.store()
                        .apply_posting_delete(id, author, Some(actor))
                        .await?;
                    Ok("relayed posting deleted")
                }
                _ => Ok("ignored: nothing to relay"),
            }
        }
        _ => Ok("kept: no projection for this activity on this node"),
    }
}

/// What the projection reads of a received activity, whether it waits in the inbox
/// ([`InboxEntry`]) or is being stored from a pulled page ([`IncomingActivity`]).
#[derive(Clone, Copy)]
pub(super) struct Received<'a> {
    activity_type: &'a str,
    actor_id: &'a str,
    document: &'a Value,
    signers: &'a [String],
}

impl<'a> From<&'a InboxEntry> for Received<'a> {
    fn from(e: &'a InboxEntry) -> Self {
        Self {
            activity_type: &e.activity_type,
            actor_id: &e.actor_id,
            document: &e.document,
            signers: &e.signers,
        }
    }
}

impl<'a> From<&'a IncomingActivity> for Received<'a> {
    fn from(a: &'a IncomingActivity) -> Self {
        Self {
            activity_type: &a.activity_type,
            actor_id: &a.actor_id,
            document: &a.document,
            signers: &a.signers,
        }
    }
}

/// The posting an item carries, and the relaying node: a `Create`/`Update` of a posting
/// (`None`), or an `Announce` of a posting or of its `Create`/`Update` (the announcer).
/// Both [`project`] and the batched paths ([`posting_version_of`]) dispatch on it.
fn posting_of(r: Received<'_>) -> Option<(&Value, Option<&str>)> {
    let object = r.document.get("object").filter(|o| o.is_object())?;
    let is_posting = |o: &Value| str_of(o, "type") == Some("Posting");
    match r.activity_type {
        "Create" | "Update" if is_posting(object) => Some((object, None)),
        "Announce" => match str_of(object, "type") {
            Some("Posting") => Some((object, Some(r.actor_id))),
            Some("Create" | "Update") => Some((
                object.get("object").filter(|o| is_posting(o))?,
                Some(r.actor_id),
            )),
            _ => None,
        },
        _ => None,
    }
}

/// The posting version an item only has to store, for the batched paths ([`project_batch`],
/// and a pulled page stored with its versions, `sync`): [`posting_of`] an item, unless it
/// is an immersion swap of the author (the mobility projection takes it), with an id and
/// an author other than us. `None` sends the item through [`project`].
pub(super) fn posting_version_of(fed: &Federation, r: Received<'_>) -> Option<PostingVersion> {
    let (posting, relayed_by) = posting_of(r)?;
    let swap = posting.get("swapProfiles").is_some()
        && str_of(posting, "postingKind") == Some("immersion_swap");
    if relayed_by.is_none() && swap {
        return None;
    }
    version_of(fed, posting, relayed_by, r.signers).ok()
}

/// The version to store of a verified posting, its author proof's key recorded; `Err`
/// is the outcome of a posting not to store.
fn version_of(
    fed: &Federation,
    posting: &Value,
    relayed_by: Option<&str>,
    signers: &[String],
) -> Result<PostingVersion, &'static str> {
    let (Some(id), Some(author)) = (str_of(posting, "id"), str_of(posting, "attributedTo")) else {
        return Err("ignored: posting without id or author");
    };
    if author == fed.actor_id() {
        return Err("ignored: our own posting");
    }
    let verified_key = signers
        .iter()
        .find(|s| s.split('#').next() == Some(author))
        .cloned()
        .unwrap_or_default();
    Ok(PostingVersion {
        object_id: id.to_owned(),
        author: author.to_owned(),
        relayed_by: relayed_by.map(str::to_owned),
        kind: str_of(posting, "postingKind").unwrap_or("").to_owned(),
        version: posting.get("version").and_then(Value::as_i64).unwrap_or(1),
        document: posting.clone(),
        verified_key,
    })
}

/// Stores a verified posting version (§8.5), its author proof's key recorded.
async fn apply_posting(
    fed: &Federation,
    posting: &Value,
    relayed_by: Option<&str>,
    signers: &[String],
) -> Result<&'static str, FederationError> {
    let version = match version_of(fed, posting, relayed_by, signers) {
        Ok(v) => v,
        Err(outcome) => return Ok(outcome),
    };
    let applied = fed
        .store()
        .apply_posting_versions(
            &[BatchedVersion {
                inbox_seq: None,
                version: &version,
            }],
            fed,
        )
        .await?;
    let Some(applied) = applied.first().copied() else {
        return Ok("posting already known (same or newer version)");
    };
    warn_conflict(&version, applied);
    Ok(applied.outcome())
}

/// `Accept` or `Reject` of our `Follow`: the partnership in our direction starts (and we
/// catch up with its outbox) or ends.
async fn on_answer(fed: &Federation, entry: &InboxEntry) -> Result<&'static str, FederationError> {
    let actor = entry.actor_id.as_str();
    let Some(follow_id) = object_id(&entry.document) else {
        return Ok("ignored: answer without object");
    };
    if origin_of(follow_id) != origin_of(fed.actor_id()) {
        return Ok("ignored: not an answer to one of our Follows");
    }
    let Some(partner) = fed.store().partner_by_actor(actor).await? else {
        return Ok("ignored: unknown node");
    };
    let current = partner.outgoing_follow_id.as_deref() == Some(follow_id);
    if !current {
        return Ok("ignored: answer to an older Follow");
    }
    let accepted = entry.activity_type == "Accept";
    let state = if accepted {
        PartnershipState::Accepted
    } else {
        PartnershipState::Rejected
    };
    let change = PartnershipChange {
        outgoing: Some((state, None)),
        incoming: None,
    };
    fed.store()
        .update_partnership(actor, &change, None, None)
        .await?;
    if accepted {
        if let Ok(fresh) = fed.actors().get(actor).await {
            fed.store()
                .upsert_partner(&partners::partner_info(&fresh.doc))
                .await?;
        }
        fed.store().request_pull(Some(actor)).await?;
        Ok("partnership accepted")
    } else {
        Ok("partnership refused or ended")
    }
}

/// `Undo` of its `Follow`: the node stops being our partner.
async fn on_undo(fed: &Federation, entry: &InboxEntry) -> Result<&'static str, FederationError> {
    let actor = entry.actor_id.as_str();
    let Some(partner) = fed.store().partner_by_actor(actor).await? else {
        return Ok("ignored: unknown node");
    };
    let undone = object_id(&entry.document);
    let follow = partner
        .incoming_follow
        .as_ref()
        .and_then(|f| str_of(f, "id"));
    if undone.is_none() || undone != follow {
        return Ok("ignored: not its current Follow");
    }
    let change = PartnershipChange {
        outgoing: None,
        incoming: Some((PartnershipState::None, None)),
    };
    match fed
        .store()
        .update_partnership(actor, &change, None, None)
        .await
    {
        Ok(_) => Ok("partnership ended by the partner"),
        Err(StoreError::NotFound { .. }) => Ok("ignored: unknown node"),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_is_busy_only_within_its_window_after_a_push() {
        // Windows of a second or more, so that a preempted test thread cannot make a
        // positive check fail; the negative ones follow a sleep longer than the window.
        let second = Duration::from_secs(1);
        let p = Pressure::default();
        assert!(!p.busy(second), "no push yet");
        p.mark();
        assert!(p.busy(second));
        std::thread::sleep(Duration::from_millis(1_100));
        assert!(!p.busy(second), "1.1 s ago is not within 1 s");
        assert!(p.busy(Duration::from_secs(60)));
        p.mark();
        assert!(p.busy(second), "a new push renews it");
    }
}
