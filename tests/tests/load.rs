//! A sustained mixed load against a real `passerelle serve` process, on SQLite and on
//! PostgreSQL: two partners push signed `Create`/`Update`/`Delete` of postings into its
//! inbox without pause, HR clients query the feed API, a signed-in officer browses the
//! console, for `PASSERELLE_LOAD_SECONDS` (default 150) seconds. Before it, a burst of
//! pushes and one of feed queries, each over its limit's burst, must meet the rate limits
//! (`429` with `Retry-After`) whatever the machine's speed.
//!
//! Checked afterwards, exactly: no answer other than success or `429` with a
//! `Retry-After` the clients then honour (no 5xx in the node's own metrics either); every
//! accepted activity is projected, so each posting a partner was told was accepted is
//! cached at its last accepted version (or deleted); the process's resident memory stays
//! under a fixed ceiling and does not keep growing (the last third of the run stays within
//! the first two thirds' peak plus a margin). The memory curve is printed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use passerelle_protocol::keys::SigningKey;
use passerelle_tests::{
    Backend, GRENOBLE, HTTP_LIMIT, ISERE, METROPOLE, Node, example_posting, http_client, node_key,
    post_signed_raw, postgres_admin_url, postgres_available, signed_activity, unix_now, wait_until,
};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// Resident memory ceiling of the loaded node (debug build), in KiB.
const RSS_CEILING_KIB: u64 = 256 * 1024;
/// How much the last third of the run may exceed the peak of the first two thirds, in
/// KiB (allocator noise, SQLite page cache filling up).
const RSS_GROWTH_MARGIN_KIB: u64 = 48 * 1024;

fn duration() -> Duration {
    Duration::from_secs(
        std::env::var("PASSERELLE_LOAD_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(150),
    )
}

/// What went wrong during the run (every entry fails the test).
#[derive(Default)]
struct Failures(Mutex<Vec<String>>);

impl Failures {
    async fn push(&self, what: String) {
        let mut f = self.0.lock().await;
        if f.len() < 50 {
            f.push(what);
        }
    }
}

/// Counters of the run.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    limited: AtomicU64,
    feed: AtomicU64,
    pages: AtomicU64,
}

/// The `Retry-After` of a 429, or a failure when it is missing or absurd.
async fn retry_after(r: &reqwest::Response, failures: &Failures, what: &str) -> Duration {
    match r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(s) if (1..=60).contains(&s) => Duration::from_secs(s),
        other => {
            failures
                .push(format!(
                    "{what}: 429 without a usable Retry-After ({other:?})"
                ))
                .await;
            Duration::from_secs(1)
        }
    }
}

/// A posting document of `sender` with the given id and version, signed (object proof).
fn posting(sender: &Node, key: &SigningKey, key_id: &str, id: &str, version: i64) -> Value {
    let kinds = [
        "vacancy",
        "project-mission",
        "training-session",
        "immersion-offer",
    ];
    let mut p = example_posting(kinds[(version as usize + id.len()) % kinds.len()]);
    let map = p.as_object_mut().unwrap();
    map.insert("@context".into(), passerelle_protocol::vocab::context());
    map.insert("id".into(), json!(id));
    map.insert("type".into(), json!("Posting"));
    map.insert("attributedTo".into(), json!(sender.actor()));
    map.insert("version".into(), json!(version));
    map.insert("published".into(), json!("2026-11-23T08:00:00Z"));
    if version > 1 {
        map.insert("updated".into(), json!("2026-11-24T08:00:00Z"));
    }
    map.insert("status".into(), json!("published"));
    map.insert("to".into(), json!([format!("{}/followers", sender.base)]));
    let options =
        passerelle_protocol::proof::ProofOptions::new(key_id, time::OffsetDateTime::now_utc());
    passerelle_protocol::proof::sign(p, key, &options).unwrap()
}

/// What the sender believes about one of its postings after the run: last accepted
/// version, and whether its deletion was accepted.
type Expected = BTreeMap<String, (i64, bool)>;

/// One partner's delivery loop: new postings, updates and deletions of its own postings,
/// honouring 429s. Returns what was accepted.
async fn sender_loop(
    sender: Arc<Node>,
    inbox: String,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    failures: Arc<Failures>,
) -> Expected {
    let (key, key_id) = node_key(&sender).await;
    let mut expected = Expected::new();
    let mut live: Vec<String> = Vec::new();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // Mostly creations; every 4th an update, every 10th a deletion.
        let (activity, id, version, deleting) = if n.is_multiple_of(10) && !live.is_empty() {
            let id = live.swap_remove((n as usize / 10) % live.len());
            let (version, _) = expected[&id];
            let a = json!({
                "type": "Delete",
                "object": id,
                "to": [format!("{}/followers", sender.base)],
            });
            (a, id, version, true)
        } else if n.is_multiple_of(4) && !live.is_empty() {
            let id = live[(n as usize / 4) % live.len()].clone();
            let version = expected[&id].0 + 1;
            let a = json!({
                "type": "Update",
                "object": posting(&sender, &key, &key_id, &id, version),
                "to": [format!("{}/followers", sender.base)],
            });
            (a, id, version, false)
        } else {
            let id = format!("{}/postings/{}", sender.base, uuid::Uuid::now_v7());
            let a = json!({
                "type": "Create",
                "object": posting(&sender, &key, &key_id, &id, 1),
                "to": [format!("{}/followers", sender.base)],
            });
            (a, id, 1, false)
        };
        let body =
            serde_json::to_vec(&signed_activity(&sender.actor(), &key, &key_id, activity)).unwrap();
        loop {
            let r = post_signed_raw(&inbox, &body, &key, &key_id, unix_now()).await;
            let status = r.status().as_u16();
            if status == 429 {
                counts.limited.fetch_add(1, Ordering::Relaxed);
                let wait = retry_after(&r, &failures, "inbox").await;
                tokio::time::sleep(wait).await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                continue;
            }
            if (200..300).contains(&status) {
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                if deleting {
                    expected.insert(id.clone(), (version, true));
                } else {
                    if version == 1 {
                        live.push(id.clone());
                    }
                    expected.insert(id.clone(), (version, false));
                }
            } else {
                let text = r.text().await.unwrap_or_default();
                failures
                    .push(format!("inbox answered {status}: {text}"))
                    .await;
            }
            break;
        }
    }
    expected
}

/// Pages an HR client follows past the first, every third query.
const FOLLOWED_PAGES: u32 = 3;

/// An HR client of the feed API: full text, filters, facets, paging (each cursor with the
/// query that gave it).
async fn feed_loop(
    node: Arc<Node>,
    token: String,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    failures: Arc<Failures>,
) {
    let queries = [
        "/api/v1/feed?q=ing%C3%A9nieur&facets=true",
        "/api/v1/feed?categorie=A&kind=vacancy&limit=50",
        "/api/v1/feed?q=formation%20management&sort=recent",
        "/api/v1/feed?filiere=technique&facets=true&limit=10",
        "/api/v1/feed?q=%22espaces%20verts%22%20OR%20m%C3%A9diath%C3%A8que",
    ];
    let client = http_client();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let query = queries[i % queries.len()];
        let mut url = format!("{}{query}", node.base);
        // Every third query, follow its cursor for a few pages.
        let mut pages_left = if i % 3 == 0 { FOLLOWED_PAGES } else { 0 };
        loop {
            let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
            let status = r.status().as_u16();
            if status == 429 {
                counts.limited.fetch_add(1, Ordering::Relaxed);
                let wait = retry_after(&r, &failures, "feed").await;
                tokio::time::sleep(wait).await;
                break;
            }
            if status != 200 {
                let text = r.text().await.unwrap_or_default();
                failures
                    .push(format!("feed {url} answered {status}: {text}"))
                    .await;
                break;
            }
            counts.feed.fetch_add(1, Ordering::Relaxed);
            let page: Value = r.json().await.unwrap();
            match page["next_cursor"].as_str() {
                Some(next) if pages_left > 0 && !next.is_empty() => {
                    url = format!("{}{query}&cursor={next}", node.base);
                    pages_left -= 1;
                }
                _ => break,
            }
        }
    }
}

fn hidden(body: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body.find(&marker)? + marker.len();
    Some(body[start..start + body[start..].find('"')?].to_owned())
}

/// A signed-in HR officer browsing the console (the session cookie is kept by hand: it is
/// `Secure`, and the test speaks plain HTTP on loopback).
async fn console_loop(
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    failures: Arc<Failures>,
) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_LIMIT)
        .build()
        .unwrap();
    let login = client
        .get(format!("{}/console/connexion", node.base))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = hidden(&login.text().await.unwrap(), "_csrf").unwrap();
    let password = "mot+de+passe+tr%C3%A8s+long";
    let r = client
        .post(format!("{}/console/connexion", node.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "_csrf={csrf}&suite=%2Fconsole%2Foffres&username=rh&password={password}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "sign-in");
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("passerelle_session="))
        .unwrap();
    let session = session.split(';').next().unwrap().to_owned();
    let pages = [
        "/console/offres",
        "/console/offres?q=ing%C3%A9nieur&categorie=A",
        "/console/offres?kind=training-session",
        "/console/partenaires",
        "/console/mes-offres",
        "/console/offres/export.csv?q=technicien",
    ];
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let url = format!("{}{}", node.base, pages[i % pages.len()]);
        let r = client
            .get(&url)
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status == 429 {
            counts.limited.fetch_add(1, Ordering::Relaxed);
            let wait = retry_after(&r, &failures, "console").await;
            tokio::time::sleep(wait).await;
            continue;
        }
        if status != 200 {
            failures
                .push(format!("console {url} answered {status}"))
                .await;
            continue;
        }
        let body = r.text().await.unwrap();
        // Postings from the partners are on the feed pages once the first ones arrived.
        if i > 50
            && pages[i % pages.len()] == "/console/offres"
            && body.contains("Aucune offre ne correspond")
        {
            failures
                .push("the console feed shows no posting under load".to_owned())
                .await;
        }
        counts.pages.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests sent at once, over the burst of the limit they meet.
const OVER_BURST: usize = 20;

/// A burst over each limit, sent at once before the sustained load: `OVER_BURST` more
/// signed pushes from `partner` than its inbox burst, and as many more feed queries than
/// an HR client's burst. A token bucket can refill only a few tokens while they arrive, so
/// some must be answered `429` with a usable `Retry-After`, on a machine of any speed
/// (the sustained load alone meets the limits only where the senders outpace them).
/// Returns the `429`s counted and the postings whose push was accepted.
async fn burst_over_the_limits(
    node: &Node,
    partner: &Node,
    inbox_burst: usize,
    client_burst: usize,
    failures: &Failures,
) -> (u64, u64, Expected) {
    let (key, key_id) = node_key(partner).await;
    let inbox = format!("{}/inbox", node.base);
    let mut pushes = tokio::task::JoinSet::new();
    for _ in 0..inbox_burst + OVER_BURST {
        let id = format!("{}/postings/{}", partner.base, uuid::Uuid::now_v7());
        let activity = json!({
            "type": "Create",
            "object": posting(partner, &key, &key_id, &id, 1),
            "to": [format!("{}/followers", partner.base)],
        });
        let body = serde_json::to_vec(&signed_activity(&partner.actor(), &key, &key_id, activity))
            .unwrap();
        let (inbox, key, key_id) = (inbox.clone(), key.clone(), key_id.clone());
        pushes.spawn(async move {
            let r = post_signed_raw(&inbox, &body, &key, &key_id, unix_now()).await;
            (id, r)
        });
    }
    let client = http_client();
    let mut queries = tokio::task::JoinSet::new();
    for _ in 0..client_burst + OVER_BURST {
        let request = client
            .get(format!("{}/api/v1/feed?limit=1", node.base))
            .bearer_auth(&node.token);
        queries.spawn(async move { request.send().await.unwrap() });
    }
    let (mut inbox_limited, mut feed_limited) = (0, 0);
    let mut accepted = Expected::new();
    while let Some(joined) = pushes.join_next().await {
        let (id, r) = joined.unwrap();
        match r.status().as_u16() {
            429 => {
                retry_after(&r, failures, "inbox burst").await;
                inbox_limited += 1;
            }
            200..300 => {
                accepted.insert(id, (1, false));
            }
            status => {
                let text = r.text().await.unwrap_or_default();
                failures
                    .push(format!("inbox burst answered {status}: {text}"))
                    .await;
            }
        }
    }
    while let Some(joined) = queries.join_next().await {
        let r = joined.unwrap();
        match r.status().as_u16() {
            429 => {
                retry_after(&r, failures, "feed burst").await;
                feed_limited += 1;
            }
            200 => {}
            status => failures.push(format!("feed burst answered {status}")).await,
        }
    }
    (inbox_limited, feed_limited, accepted)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The sum of the node's `passerelle_http_requests_total` series answered with a 5xx.
async fn server_errors(node: &Node) -> f64 {
    let text = reqwest::get(format!("{}/metrics", node.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("passerelle_http_requests_total{") && l.contains("status=\"5"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What a scenario is doing, for the message of [`within_limit`].
type Phase = Arc<std::sync::Mutex<&'static str>>;

fn enter(phase: &Phase, what: &'static str) {
    *phase.lock().unwrap() = what;
}

/// How long a scenario may run beyond its load: starting three nodes, the bursts, the
/// wait for the projection (at most 120 s), the checks and the stop, with a wide margin.
const SCENARIO_MARGIN: Duration = Duration::from_secs(420);

/// Runs the scenario on `backend`; one that does not end within its load's duration and
/// [`SCENARIO_MARGIN`] fails with the phase it was in and, on PostgreSQL, the database's
/// sessions and the locks they wait for (a hang would otherwise last until CI's own limit,
/// with nothing to tell why).
async fn within_limit(backend: Backend) {
    let phase: Phase = Arc::new(std::sync::Mutex::new("starting"));
    let limit = duration() + SCENARIO_MARGIN;
    let run = tokio::spawn(sustained_mixed_load(backend, phase.clone()));
    let abort = run.abort_handle();
    match tokio::time::timeout(limit, run).await {
        Ok(done) => {
            if let Err(e) = done
                && e.is_panic()
            {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Err(_) => {
            abort.abort();
            let sessions = match backend {
                Backend::Postgres => postgres_sessions().await,
                Backend::Sqlite => String::new(),
            };
            let phase = *phase.lock().unwrap();
            panic!(
                "the {backend:?} scenario did not end within {limit:?}; it was {phase}{sessions}"
            );
        }
    }
}

/// The server's client sessions, what they wait for and the sessions blocking them.
async fn postgres_sessions() -> String {
    use sqlx::Connection as _;
    let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await else {
        return "; PostgreSQL unreachable".to_owned();
    };
    let rows: Vec<(i32, String, String, String, Vec<i32>)> = sqlx::query_as(
        "SELECT pid, coalesce(state, ''), coalesce(wait_event_type || ':' || wait_event, ''),          left(query, 160), pg_blocking_pids(pid) FROM pg_stat_activity          WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    let _ = conn.close().await;
    let mut out = String::from("; PostgreSQL sessions (pid, state, wait, query, blocked by):");
    for (pid, state, wait, query, blockers) in rows {
        out.push_str(&format!("\n  {pid} {state} {wait} {query:?} {blockers:?}"));
    }
    out
}

async fn sustained_mixed_load(backend: Backend, phase: Phase) {
    const INBOX_BURST: u32 = 10;
    const CLIENT_BURST: u32 = 20;
    let isere = Node::start_with(&ISERE, backend, true, |c| {
        // Limits that a fast machine's sustained load meets on every side; the bursts
        // below meet them on any machine.
        c.federation.inbox_rate_per_second = 5;
        c.federation.inbox_rate_burst = INBOX_BURST;
        c.server.rate_limit_per_second = 10;
        c.server.rate_limit_burst = CLIENT_BURST;
    })
    .await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    for partner in [&metropole, &grenoble] {
        partner.set_policy("open").await;
        partner.follow(&isere).await;
        isere.follow(partner).await;
    }
    enter(&phase, "waiting for the partnerships");
    for partner in [&metropole, &grenoble] {
        wait_until("partners", Duration::from_secs(30), || async {
            isere
                .partner(partner)
                .await
                .is_some_and(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
        })
        .await;
    }
    passerelle_node::auth::create_account(
        &isere.store,
        "rh",
        "mot de passe très long",
        passerelle_node::store::Role::Rh,
        "test",
    )
    .await
    .unwrap();
    let pid = isere.pid().unwrap();
    let inbox = format!("{}/inbox", isere.base);
    let isere = Arc::new(isere);
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let failures = Arc::new(Failures::default());

    enter(&phase, "sending the bursts over the limits");
    let (inbox_limited, feed_limited, burst_accepted) = burst_over_the_limits(
        &isere,
        &metropole,
        INBOX_BURST as usize,
        CLIENT_BURST as usize,
        &failures,
    )
    .await;
    println!(
        "bursts over the limits: {inbox_limited} pushes and {feed_limited} feed queries answered 429, {} pushes accepted",
        burst_accepted.len()
    );
    assert!(
        inbox_limited > 0 && feed_limited > 0,
        "a burst over a limit is answered 429 (inbox {inbox_limited}, feed {feed_limited})"
    );
    // Let both buckets fill again before the sustained load.
    tokio::time::sleep(Duration::from_secs(3)).await;

    enter(&phase, "under the sustained load");
    let mut senders = Vec::new();
    for partner in [metropole, grenoble] {
        let partner = Arc::new(partner);
        for _ in 0..2 {
            senders.push(tokio::spawn(sender_loop(
                partner.clone(),
                inbox.clone(),
                stop.clone(),
                counts.clone(),
                failures.clone(),
            )));
        }
    }
    let mut others = Vec::new();
    for _ in 0..2 {
        others.push(tokio::spawn(feed_loop(
            isere.clone(),
            isere.token.clone(),
            stop.clone(),
            counts.clone(),
            failures.clone(),
        )));
    }
    others.push(tokio::spawn(console_loop(
        isere.clone(),
        stop.clone(),
        counts.clone(),
        failures.clone(),
    )));

    let run = duration();
    let started = Instant::now();
    let mut samples: Vec<(f64, u64)> = Vec::new();
    // (received, still to project) each second: the projection yields to the busy inbox
    // but must keep pace (federation/process.rs).
    let mut backlog: Vec<(i64, i64)> = Vec::new();
    while started.elapsed() < run {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(rss) = rss_kib(pid) else {
            panic!("the node process {pid} is gone under load");
        };
        samples.push((started.elapsed().as_secs_f64(), rss));
        let s = isere.store.inbox_stats().await.unwrap();
        backlog.push((s.total, s.unprocessed));
    }
    stop.store(true, Ordering::Relaxed);
    enter(&phase, "waiting for the senders and clients to end");
    println!("inbox (received, still to project) each second: {backlog:?}");
    // Under sustained pushes the projection lags by seconds, not more: what is left to
    // project when the senders stop was received within the last 30 s.
    if let (Some(&(total, unprocessed)), Some(&(earlier, _))) = (
        backlog.last(),
        backlog.len().checked_sub(31).and_then(|k| backlog.get(k)),
    ) {
        assert!(
            unprocessed <= total - earlier,
            "the projection fell behind under load: {unprocessed} still to project, {} received in the last 30 s",
            total - earlier
        );
    }
    let mut expected = burst_accepted;
    for s in senders {
        expected.extend(s.await.unwrap());
    }
    for o in others {
        o.await.unwrap();
    }

    // Everything accepted is projected, exactly as the senders were told.
    enter(&phase, "waiting for the projection");
    wait_until(
        "every accepted activity is projected",
        Duration::from_secs(120),
        || async { isere.store.inbox_stats().await.unwrap().unprocessed == 0 },
    )
    .await;
    enter(&phase, "reading what was stored");
    let stats = isere.store.inbox_stats().await.unwrap();
    let cached: BTreeMap<String, (i64, bool)> = isere
        .cached_postings()
        .await
        .into_iter()
        .map(|(id, v, d)| (id, (v, d)))
        .collect();
    let mut lost = Vec::new();
    for (id, want) in &expected {
        match cached.get(id) {
            Some(got) if got == want => {}
            other => lost.push(format!("{id}: want {want:?}, cached {other:?}")),
        }
    }
    let errors = server_errors(&isere).await;

    // The memory curve, in thirds.
    let third = samples.len() / 3;
    let peak = |s: &[(f64, u64)]| s.iter().map(|(_, r)| *r).max().unwrap_or(0);
    let early = peak(&samples[..2 * third]);
    let late = peak(&samples[2 * third..]);
    let curve: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 10).max(1))
        .map(|(t, r)| format!("{t:.0}s:{}MiB", r / 1024))
        .collect();
    println!(
        "load ({backend:?}, {}s): {} activities accepted ({} postings), {} feed pages, {} console pages, {} answers 429 (each honoured); RSS {}",
        run.as_secs(),
        counts.accepted.load(Ordering::Relaxed),
        expected.len(),
        counts.feed.load(Ordering::Relaxed),
        counts.pages.load(Ordering::Relaxed),
        counts.limited.load(Ordering::Relaxed),
        curve.join(" "),
    );

    let failures = failures.0.lock().await.clone();
    assert!(failures.is_empty(), "failures under load: {failures:#?}");
    assert!(
        lost.is_empty(),
        "{} postings not as accepted: {lost:#?}",
        lost.len()
    );
    assert_eq!(stats.failed, 0, "no projection failed");
    assert_eq!(errors, 0.0, "the node answered 5xx");
    assert!(
        counts.accepted.load(Ordering::Relaxed) > 0
            && counts.feed.load(Ordering::Relaxed) > 0
            && counts.pages.load(Ordering::Relaxed) > 0,
        "every kind of load ran"
    );
    assert!(
        peak(&samples) < RSS_CEILING_KIB,
        "resident memory {} KiB over the ceiling",
        peak(&samples)
    );
    assert!(
        late <= early + RSS_GROWTH_MARGIN_KIB,
        "resident memory keeps growing: {early} KiB in the first two thirds, {late} KiB after"
    );
    enter(&phase, "stopping the node");
    Arc::try_unwrap(isere).ok().unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sustained_mixed_load_on_sqlite() {
    within_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sustained_mixed_load_on_postgres() {
    if !postgres_available().await {
        return;
    }
    within_limit(Backend::Postgres).await;
}
