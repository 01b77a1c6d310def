//! Catch-up (spec/protocol.md §9): each process claims the pulls that are due — at start,
//! periodically with jitter, when a partner comes back, when the operator asks — and
//! follows the partner's outbox from the stored cursor with signed `GET`s until an empty
//! page. Every pulled activity goes through the checks of the inbox (but the transport
//! signature: it comes from the partner's own outbox) and is stored with the page's
//! activities in one transaction, which also moves the cursor past the page; a crash
//! re-reads at most the pages in flight, and de-duplication makes that harmless. The
//! posting versions of the page's new activities (the bulk of a catch-up) are stored in
//! that transaction too, already projected; a page whose versions cannot be stored is
//! stored without them and left to the projection, so one posting never holds a pull.

use std::sync::Arc;
use std::time::Duration;

use passerelle_protocol::canonical::{ParseLimits, parse_strict};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::actors::check_media_type;
use super::error::ProtocolError;
use super::inbox::verify_activity;
use super::net::ACTIVITY_JSON;
use super::process::{note_applied, posting_version_of};
use super::{Federation, jitter, sleep_or_stop};
use crate::store::{InboxAccept, PageCursor, PulledActivity, SyncTarget, Via, origin_of};

/// Pulls claimed at once by a process.
const BATCH: u32 = 4;
/// Lease of a pull, extended after every page: a few request timeouts.
fn lease(fed: &Federation) -> Duration {
    Duration::from_secs(fed.config().request_timeout_secs.saturating_mul(4).max(30))
}
/// Pages read in one pull at most (100 items each), so one pull cannot run forever; the
/// next pull goes on from the cursor.
const MAX_PAGES: usize = 5_000;

/// What a pull did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullReport {
    /// Pages read.
    pub pages: usize,
    /// Activities stored (new).
    pub stored: usize,
    /// Activities already known.
    pub duplicates: usize,
    /// Activities refused (kept out; logged).
    pub refused: usize,
}

/// The pull loop of one process.
pub async fn run(fed: Arc<Federation>, mut shutdown: watch::Receiver<bool>) {
    // Catch up at start (§9.3).
    if let Err(e) = fed.store().request_pull(None).await {
        tracing::warn!(error = %e, "cannot request the start-up pulls");
    }
    let poll = Duration::from_millis(fed.config().poll_interval_ms);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let due = match fed
            .store()
            .claim_pulls(fed.owner(), BATCH, lease(&fed))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim pulls");
                Vec::new()
            }
        };
        if due.is_empty() {
            if sleep_or_stop(poll, &mut shutdown).await {
                return;
            }
            continue;
        }
        for target in due {
            let started = OffsetDateTime::now_utc();
            let result = pull(&fed, &target, &shutdown).await;
            let error = match &result {
                Ok(report) => {
                    if report.stored > 0 || report.refused > 0 {
                        tracing::info!(partner = %target.actor_id, pages = report.pages, stored = report.stored, duplicates = report.duplicates, refused = report.refused, "pulled");
                    }
                    None
                }
                Err(e) => {
                    fed.metrics()
                        .pull_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(partner = %target.actor_id, error = %e, "pull failed; will retry at the next interval");
                    Some(e.clone())
                }
            };
            let interval = Duration::from_secs(fed.config().pull_interval_secs);
            let next = OffsetDateTime::now_utc() + interval.mul_f64(0.75 + 0.5 * jitter());
            if let Err(e) = fed
                .store()
                .finish_pull(&target.actor_id, started, error.as_deref(), next)
                .await
            {
                tracing::warn!(error = %e, "cannot record a pull");
            }
        }
    }
}

/// Fetches an ActivityStreams document with a signed `GET`.
async fn fetch(fed: &Federation, url: &str) -> Result<(u16, Value), String> {
    let signer = fed.signer();
    let fetched = fed
        .net()
        .get(url, ACTIVITY_JSON, Some(&signer))
        .await
        .map_err(|e| e.to_string())?;
    if fetched.status != 200 {
        let code = serde_json::from_slice::<Value>(&fetched.body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned));
        return Ok((
            fetched.status,
            serde_json::json!({ "code": code.unwrap_or_default() }),
        ));
    }
    check_media_type(fetched.content_type.as_deref())?;
    let value = parse_strict(&fetched.body, &ParseLimits::default()).map_err(|e| e.to_string())?;
    if value.get("id").and_then(Value::as_str) != Some(fetched.url.as_str()) {
        return Err(format!(
            "the document served at {} has id {:?}; a fetched document's id must be its URL (protocol §11)",
            fetched.url,
            value.get("id").and_then(Value::as_str).unwrap_or("")
        ));
    }
    Ok((200, value))
}

/// The URL of the first page of an outbox.
async fn first_page(fed: &Federation, outbox: &str) -> Result<String, String> {
    let (status, doc) = fetch(fed, outbox).await?;
    if status != 200 {
        return Err(format!("{outbox} answered {status}"));
    }
    let first = match doc.get("first") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    };
    // A cursor is stored: a URL holding U+0000 could not be (§4.2).
    if first.is_empty() || first.contains('\0') || origin_of(&first) != origin_of(outbox) {
        return Err(format!("{outbox} has no usable `first` page"));
    }
    Ok(first)
}

/// A fetched outbox page: its status and document, or why it could not be fetched.
type Page = Result<(u16, Value), String>;

/// A verified page waiting to be stored: its accepted activities (with the posting
/// version each only stores, stored with the page) and the cursor to save with them.
struct Verified {
    items: Vec<PulledActivity>,
    cursor: String,
}

/// What the reading side of a pull hands to its storing side, in order.
enum ToStore {
    /// A verified page, to store with its cursor.
    Page(Verified),
    /// The partner refused our cursor: forget it (after the pages handed before).
    ResetCursor,
}

/// Verified pages that may wait for the storing side of a pull, beside the one it stores.
const STORE_QUEUE: usize = 1;

/// Pulls one partner's outbox from its cursor until an empty page.
///
/// Pages go through a three-stage pipeline. The reading side fetches page *n + 1* while
/// it verifies the activities of page *n* (on every core, see [`verify_page`]), then
/// hands page *n* to the storing side, which stores each page, with the cursor past it, in
/// one transaction ([`crate::store::Store::accept_page`]), in order. The two sides run
/// side by side, joined by a queue of [`STORE_QUEUE`] pages, so that neither waits for the
/// other's slower pages; a full queue holds the reading side back. The cursor therefore
/// never passes a page that is not stored; when the reading stops (an error, the end of
/// the outbox, shutdown), the pages it verified are stored first, so the cursor stays
/// after the last page that was fully checked. When storing fails, the reading stops.
///
/// # Errors
/// What failed, for the operator (the cursor stays at the last stored page).
pub async fn pull(
    fed: &Arc<Federation>,
    target: &SyncTarget,
    shutdown: &watch::Receiver<bool>,
) -> Result<PullReport, String> {
    let (to_store, queue) = tokio::sync::mpsc::channel(STORE_QUEUE);
    let mut read = PullReport::default();
    let mut stored = PullReport::default();
    let (outcome, flushed) = tokio::join!(
        read_pages(fed, target, shutdown, &mut read, to_store),
        store_pages(fed, target, queue, &mut stored),
    );
    let report = PullReport {
        pages: read.pages,
        stored: stored.stored,
        duplicates: stored.duplicates,
        refused: read.refused + stored.refused,
    };
    match (outcome, flushed) {
        (Ok(()), flushed) => flushed.map(|()| report),
        (Err(e), Ok(())) => Err(e),
        // Verified pages were not stored: that is the failure to report (the reading
        // side may have failed because of it, or after it).
        (Err(e), Err(f)) => {
            tracing::warn!(partner = %target.actor_id, error = %e, "the reading side of the pull failed too");
            Err(f)
        }
    }
}

/// The storing side of [`pull`]: stores what `queue` hands, in order, until the reading
/// side is done or a page cannot be stored (then the queue is dropped, which stops the
/// reading side).
async fn store_pages(
    fed: &Federation,
    target: &SyncTarget,
    mut queue: tokio::sync::mpsc::Receiver<ToStore>,
    report: &mut PullReport,
) -> Result<(), String> {
    while let Some(next) = queue.recv().await {
        match next {
            ToStore::Page(page) => {
                let n_items = page.items.len();
                let (stored, store_time) = timed(store_page(fed, target, page, report)).await;
                tracing::debug!(
                    partner = %target.actor_id,
                    items = n_items,
                    store_ms = store_time.as_secs_f64() * 1e3,
                    "page pipeline store"
                );
                stored?;
            }
            ToStore::ResetCursor => fed
                .store()
                .reset_cursor(&target.actor_id)
                .await
                .map_err(|e| e.to_string())?,
        }
    }
    Ok(())
}

/// The reading side of [`pull`]: fetches and verifies the pages and hands them to
/// `to_store`; stops early, without an error, when the storing side has stopped (it
/// reports why), before the next page or when handing one over.
async fn read_pages(
    fed: &Arc<Federation>,
    target: &SyncTarget,
    shutdown: &watch::Receiver<bool>,
    report: &mut PullReport,
    to_store: tokio::sync::mpsc::Sender<ToStore>,
) -> Result<(), String> {
    let mut url = match &target.next_url {
        Some(u) => u.clone(),
        None => first_page(fed, &target.outbox).await?,
    };
    let mut restarted = false;
    let mut prefetched: Option<Page> = None;
    while report.pages < MAX_PAGES {
        if *shutdown.borrow() {
            break;
        }
        if to_store.is_closed() {
            // The storing side failed: no page read from now on could be stored.
            return Ok(());
        }
        let (status, page) = match prefetched.take() {
            Some(p) => p?,
            None => fetch(fed, &url).await?,
        };
        if status == 400
            && page.get("code").and_then(Value::as_str) == Some("cursor_invalid")
            && !restarted
        {
            // The partner does not know our cursor any more: restart from the beginning
            // (de-duplication and versions make re-reading harmless, §9.3). The storing
            // side forgets the cursor after the pages verified before, so that their
            // cursor cannot land after the reset.
            restarted = true;
            tracing::warn!(partner = %target.actor_id, "cursor refused; restarting from the first page");
            if to_store.send(ToStore::ResetCursor).await.is_err() {
                return Ok(());
            }
            url = first_page(fed, &target.outbox).await?;
            continue;
        }
        if status != 200 {
            return Err(format!("{url} answered {status}"));
        }
        report.pages += 1;
        let (items, next) = match page {
            Value::Object(mut page) => {
                let next = page.get("next").and_then(Value::as_str).map(str::to_owned);
                match page.remove("orderedItems") {
                    Some(Value::Array(items)) => (items, next),
                    None => (Vec::new(), next),
                    Some(_) => return Err(format!("{url}: orderedItems is not an array")),
                }
            }
            _ => return Err(format!("{url}: a page must be a JSON object")),
        };
        if next.as_deref().is_some_and(|n| n.contains('\0')) {
            // It would be stored as the cursor, and this error as the pull's last error,
            // which a database cannot hold (§4.2): checked first, the URL not quoted.
            return Err(format!("{url}: its next page's URL holds U+0000"));
        }
        if let Some(n) = &next
            && origin_of(n) != origin_of(&target.outbox)
        {
            return Err(format!("{url}: its next page {n} is on another origin"));
        }
        // The page after this one, if there is one to follow, is fetched while this one
        // is verified.
        let follow = match &next {
            Some(n) if !items.is_empty() && *n != url && report.pages < MAX_PAGES => {
                Some(n.clone())
            }
            _ => None,
        };
        let n_items = items.len();
        let ((checked, verify_time), ahead) =
            tokio::join!(timed(verify_page(fed, items, &target.actor_id)), async {
                match &follow {
                    Some(n) => Some(timed(fetch(fed, n)).await),
                    None => None,
                }
            },);
        let checked = checked?;
        let mut verified = Vec::with_capacity(checked.len());
        for (id, result) in checked {
            match result {
                Ok(pulled) => verified.push(pulled),
                Err(e) if is_temporary(&e) => return Err(format!("{url}: {e}")),
                Err(e) => {
                    report.refused += 1;
                    fed.metrics().inbox("pull", e.code);
                    tracing::warn!(partner = %target.actor_id, item = id, code = e.code, detail = %e.detail, "pulled activity refused");
                }
            }
        }
        let page = Verified {
            items: verified,
            cursor: next.clone().unwrap_or_else(|| url.clone()),
        };
        let (sent, queue_time) = timed(to_store.send(ToStore::Page(page))).await;
        // What bounds a pull, for a diagnosis (`[log] filter`,
        // `passerelle_node::federation::sync=debug`): the reading side's times for this
        // page (`queue_ms`: waiting for the storing side), and its storing time (`page
        // pipeline store`).
        tracing::debug!(
            partner = %target.actor_id,
            items = n_items,
            verify_ms = verify_time.as_secs_f64() * 1e3,
            fetch_ms = ahead.as_ref().map_or(0.0, |a| a.1.as_secs_f64() * 1e3),
            queue_ms = queue_time.as_secs_f64() * 1e3,
            "page pipeline read"
        );
        if sent.is_err() {
            return Ok(());
        }
        match follow {
            Some(n) => {
                url = n;
                prefetched = ahead.map(|a| a.0);
            }
            None => break,
        }
    }
    Ok(())
}

/// `fut`'s output and how long it took.
async fn timed<T>(fut: impl std::future::Future<Output = T>) -> (T, std::time::Duration) {
    let started = std::time::Instant::now();
    let out = fut.await;
    (out, started.elapsed())
}

/// Stores a verified page and moves the cursor past it, in one transaction; counts what
/// was stored in `report`.
async fn store_page(
    fed: &Federation,
    target: &SyncTarget,
    mut page: Verified,
    report: &mut PullReport,
) -> Result<(), String> {
    let cursor = PageCursor {
        actor_id: &target.actor_id,
        next_url: Some(&page.cursor),
        lease: lease(fed),
    };
    let outcomes = match fed.store().accept_page(&page.items, &cursor, fed).await {
        Ok(outcomes) => outcomes,
        Err(e) if page.items.iter().any(|i| i.version().is_some()) => {
            // The page could not be stored with its versions (nothing of it was written;
            // most likely one version could not be stored): it is stored without them,
            // and the projection stores them one by one, each with its own retries, so
            // that one posting cannot hold the pull back.
            tracing::warn!(partner = %target.actor_id, error = %e, "cannot store a pulled page with its postings; storing it for the projection");
            page.items = page
                .items
                .into_iter()
                .map(PulledActivity::without_version)
                .collect();
            fed.store()
                .accept_page(&page.items, &cursor, fed)
                .await
                .map_err(|e| e.to_string())?
        }
        Err(e) => return Err(e.to_string()),
    };
    let mut stored_now = 0u64;
    for (item, o) in page.items.iter().zip(&outcomes) {
        match o.accept {
            InboxAccept::Stored { .. } => {
                report.stored += 1;
                stored_now += 1;
                fed.metrics().inbox("pull", "accepted");
                if let (Some(version), Some(applied)) = (item.version(), o.applied) {
                    note_applied(fed, &item.activity().activity_id, version, applied);
                }
            }
            InboxAccept::Duplicate => {
                report.duplicates += 1;
                fed.metrics().inbox("pull", "duplicate");
            }
            InboxAccept::IdReused => {
                report.refused += 1;
                fed.metrics().inbox("pull", "activity_id_reused");
            }
        }
    }
    fed.metrics()
        .pulled
        .fetch_add(stored_now, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Verifies the activities of one page as the inbox does ([`verify_activity`]), spread
/// over the cores: the page is cut into one chunk per core, each checked in order on a
/// blocking thread (the checks are CPU-bound: two JCS forms and two Ed25519 verifications
/// per activity; their key lookups are answered by the in-memory actor cache), and the
/// same threads prepare what storing it costs in CPU ([`PulledActivity::new`]). Returns,
/// in page order, each item's id (for the log) and its outcome; a non-object item is
/// refused as `validation_failed`.
///
/// # Errors
/// A verification thread that panicked.
async fn verify_page(
    fed: &Arc<Federation>,
    items: Vec<Value>,
    partner: &str,
) -> Result<Vec<(String, Result<PulledActivity, ProtocolError>)>, String> {
    let n = items.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, MAX_VERIFY_THREADS);
    let per_chunk = n.div_ceil(workers).max(MIN_CHUNK);
    let mut items = items.into_iter();
    let mut chunks = Vec::new();
    loop {
        let chunk: Vec<Value> = items.by_ref().take(per_chunk).collect();
        if chunk.is_empty() {
            break;
        }
        let fed = fed.clone();
        let partner = partner.to_owned();
        let runtime = tokio::runtime::Handle::current();
        chunks.push(tokio::task::spawn_blocking(move || {
            runtime.block_on(async {
                let mut out = Vec::with_capacity(chunk.len());
                for item in chunk {
                    let id = item
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    let result = if item.is_object() {
                        verify_activity(&fed, item, Via::Pull, Some(&partner))
                            .await
                            .map(|activity| {
                                let version = posting_version_of(&fed, (&activity).into());
                                PulledActivity::new(activity, version, fed.store().kind())
                            })
                    } else {
                        Err(ProtocolError::new(
                            422,
                            "validation_failed",
                            "an outbox page item must be an activity (a JSON object)",
                        ))
                    };
                    out.push((id, result));
                }
                out
            })
        }));
    }
    let mut out = Vec::with_capacity(n);
    for chunk in chunks {
        out.extend(
            chunk
                .await
                .map_err(|e| format!("a verification thread failed: {e}"))?,
        );
    }
    Ok(out)
}

/// Most blocking threads verifying one page at once.
const MAX_VERIFY_THREADS: usize = 8;
/// Fewest items handed to one thread (below that, a thread costs more than it saves).
const MIN_CHUNK: usize = 8;

fn is_temporary(e: &ProtocolError) -> bool {
    e.is_retryable()
}
