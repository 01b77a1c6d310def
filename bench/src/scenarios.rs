//! The scenarios: inbox, fan-out, catch-up (with start-up on a large database), feed; the
//! memory figures are taken within them.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use passerelle_node::store::NewActivity;
use passerelle_protocol::keys::PublicKey;
use passerelle_tests::{Backend, ISERE, METROPOLE, Node};
use sqlx::Connection as _;

use crate::fakes::{self, Fleet};
use crate::limits::{self, Cpu, Sink};
use crate::load::{self, rss_mb};
use crate::{Args, Report};

fn name(b: Backend) -> &'static str {
    match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Runs what `args` asks for.
///
/// # Errors
/// A scenario that could not run.
pub async fn run_all(args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let want = |s: &str| args.only.iter().any(|o| o == s);
    let mut backends = Vec::new();
    for b in &args.backends {
        match b.as_str() {
            "sqlite" => backends.push(Backend::Sqlite),
            "postgres" => {
                if passerelle_tests::postgres_available().await {
                    backends.push(Backend::Postgres);
                } else {
                    eprintln!("PostgreSQL unavailable: its scenarios are skipped");
                }
            }
            other => anyhow::bail!("unknown backend {other}"),
        }
    }
    // Keys and payloads for the CPU limits: the same signed activities as the inbox load.
    let keyset = Fleet::start(8, "http://127.0.0.1:9/actor", false).await;
    let keys: HashMap<String, PublicKey> = keyset
        .fakes
        .iter()
        .map(|f| (f.key_id.clone(), f.key.public_key()))
        .collect();
    let sample = fakes::inbox_requests(&keyset.fakes, "http://127.0.0.1:9/inbox", 256).await;
    let body_len = sample.iter().map(|r| r.body.len()).sum::<usize>() / sample.len();
    let secs = limits::cpu_secs(args.quick);
    let cpu = tokio::task::spawn_blocking({
        let keys = keys.clone();
        move || limits::cpu(&sample, &keys, secs)
    })
    .await?;
    let r = report;
    r.add(
        "limits",
        "-",
        "inbox body size (compact JSON)",
        body_len as f64,
        "B",
        None,
        None,
    );
    r.add(
        "limits",
        "-",
        "ed25519 sign, 1 core",
        cpu.sign,
        "/s",
        None,
        None,
    );
    r.add(
        "limits",
        "-",
        "ed25519 verify (strict), 1 core",
        cpu.verify,
        "/s",
        None,
        None,
    );
    r.add(
        "limits",
        "-",
        "serde_json parse of the bodies, 1 core",
        cpu.parse,
        "/s",
        None,
        None,
    );
    r.add(
        "limits",
        "-",
        "2 object proofs (activity + posting), 1 core",
        cpu.proofs,
        "/s",
        None,
        None,
    );
    r.add(
        "limits",
        "-",
        "inbox CPU path (digest, transport sig, parse, 2 proofs), 1 core",
        cpu.inbox_cpu,
        "/s",
        None,
        None,
    );
    let n_req = args
        .inbox_requests
        .unwrap_or(if args.quick { 300 } else { 30_000 });
    let verify_only = if want("limits") || want("inbox") {
        let v = limits::server_run(Sink::None, keys.clone(), args.concurrency, |url| {
            let fakes = keyset.fakes.clone();
            async move { fakes::inbox_requests(&fakes, &url, n_req).await }
        })
        .await?;
        r.add(
            "limits",
            "-",
            "axum handler verifying one signature, 2 workers, load generator in process",
            v.rate(),
            "req/s",
            None,
            None,
        );
        r.add(
            "limits",
            "-",
            "  … p50 latency",
            v.pct_ms(0.5),
            "ms",
            None,
            None,
        );
        r.add(
            "limits",
            "-",
            "  … p99 latency",
            v.pct_ms(0.99),
            "ms",
            None,
            None,
        );
        v.rate()
    } else {
        0.0
    };
    drop(keyset);
    for &b in &backends {
        if want("inbox") {
            inbox(args, b, &cpu, verify_only, r).await?;
        }
        if want("fanout") {
            fanout(args, b, &cpu, r).await?;
        }
        if want("catchup") {
            catchup(args, b, &cpu, r).await?;
        }
        if want("feed") {
            feed(args, b, r).await?;
        }
    }
    if args.peer {
        crate::scenarios::peer(args, r).await?;
    }
    Ok(())
}

/// A node process for the benchmarks: development mode (loopback partners), short
/// timings, the per-partner inbox rate limit raised (it caps one partner at 500/s, which
/// is policy, not capacity).
async fn node(identity: &passerelle_tests::Identity, backend: Backend) -> Node {
    let node = Node::start_with(identity, backend, true, |c| {
        c.federation.inbox_rate_per_second = 1_000_000;
        c.federation.inbox_rate_burst = 1_000_000;
    })
    .await;
    node.set_policy("open").await;
    node
}

async fn bare_pipeline(
    backend: Backend,
    fleet: &Fleet,
    keys: HashMap<String, PublicKey>,
    args: &Args,
    n: usize,
) -> anyhow::Result<load::LoadResult> {
    let dir = tempfile_dir()?;
    let (sink, schema) = match backend {
        Backend::Sqlite => (Sink::Sqlite(dir.join("bare.db")), None),
        Backend::Postgres => {
            let (schema, url) = passerelle_tests::postgres_schema().await;
            (Sink::Postgres(url), Some(schema))
        }
    };
    let fakes = fleet.fakes.clone();
    let res = limits::server_run(sink, keys, args.concurrency, |url| async move {
        fakes::inbox_requests(&fakes, &url, n).await
    })
    .await;
    if let Some(s) = schema {
        passerelle_tests::drop_schema(&s).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("passerelle-bench-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn inbox(
    args: &Args,
    backend: Backend,
    cpu: &Cpu,
    verify_only: f64,
    r: &mut Report,
) -> anyhow::Result<()> {
    let be = name(backend);
    let n_req = args
        .inbox_requests
        .unwrap_or(if args.quick { 300 } else { 30_000 });
    let counts =
        args.inbox_partners
            .clone()
            .unwrap_or(if args.quick { vec![4] } else { vec![10, 100] });
    for p in counts {
        let node = node(&ISERE, backend).await;
        let pid = node.pid().unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = rss_mb(pid).0;
        let fleet = Fleet::start(p, &node.actor(), false).await;
        fleet.follow(&node).await?;
        let keys: HashMap<String, PublicKey> = fleet
            .fakes
            .iter()
            .map(|f| (f.key_id.clone(), f.key.public_key()))
            .collect();
        let bare = bare_pipeline(backend, &fleet, keys, args, n_req).await?;
        let inbox_url = format!("{}/inbox", node.base);
        let mut reqs = fakes::inbox_requests(&fleet.fakes, &inbox_url, n_req + p).await;
        let rest = reqs.split_off(p);
        // Warm-up: one activity per partner (the node fetches and caches each actor).
        let warm = load::run(reqs, p.min(args.concurrency)).await;
        anyhow::ensure!(warm.ok == p, "warm-up refused: {:?}", warm.statuses);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = node.store.inbox_stats().await?.total;
        let ready = rss_mb(pid).0;
        let (stop, sampler) = load::sample_rss(pid);
        let res = load::run(rest, args.concurrency).await;
        let _ = stop.send(());
        let loaded = sampler.await.unwrap_or(0.0);
        let stored = node.store.inbox_stats().await?.total - before;
        let t = Instant::now();
        let mut drained = None;
        while t.elapsed() < Duration::from_secs(if args.quick { 5 } else { 180 }) {
            if node.store.inbox_stats().await?.unprocessed == 0 {
                drained = Some(t.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let hwm = rss_mb(pid).1;
        let what = format!("{p} partners, c={}", args.concurrency);
        let sc = "inbox";
        r.add(
            sc,
            be,
            &format!("{what}: accepted+stored activities/s"),
            res.rate(),
            "/s",
            Some((bare.rate(), "bare pipeline")),
            Some(">= 4000/s (SQLite), >= 80 % of bare"),
        );
        r.add(
            sc,
            be,
            &format!("{what}: same, vs the inbox CPU path on 2 cores"),
            res.rate(),
            "/s",
            Some((2.0 * cpu.inbox_cpu, "2 × CPU path")),
            None,
        );
        r.add(
            sc,
            be,
            &format!("{what}: same, vs verify-only handler"),
            res.rate(),
            "/s",
            Some((verify_only, "verify-only")),
            None,
        );
        r.add(
            sc,
            be,
            &format!("{what}: p50 latency"),
            res.pct_ms(0.5),
            "ms",
            Some((bare.pct_ms(0.5), "bare p50")),
            None,
        );
        r.add(
            sc,
            be,
            &format!("{what}: p99 latency"),
            res.pct_ms(0.99),
            "ms",
            Some((bare.pct_ms(0.99), "bare p99")),
            None,
        );
        r.add(
            sc,
            be,
            &format!("{what}: answers 202 / sent"),
            res.ok as f64,
            "",
            Some((res.sent as f64, "sent")),
            None,
        );
        r.add(
            sc,
            be,
            &format!("{what}: rows stored during the run (inbox table)"),
            stored as f64,
            "",
            Some((res.ok as f64, "202 answers")),
            None,
        );
        r.add(
            sc,
            be,
            &format!("{what}: bare pipeline (HTTP + digest + 3 ed25519 + insert)"),
            bare.rate(),
            "/s",
            None,
            None,
        );
        if let Some(d) = drained {
            r.add(
                sc,
                be,
                &format!("{what}: projection backlog drained after the load"),
                d,
                "s",
                None,
                None,
            );
        }
        r.add(
            "memory",
            be,
            "idle RSS, fresh node",
            idle,
            "MB",
            None,
            Some("< 30 MB"),
        );
        r.add(
            "memory",
            be,
            &format!("idle RSS with {p} partners, before the load"),
            ready,
            "MB",
            None,
            Some("< 30 MB"),
        );
        r.add(
            "memory",
            be,
            &format!("max RSS under inbox load ({what})"),
            loaded,
            "MB",
            None,
            Some("< 100 MB"),
        );
        r.add(
            "memory",
            be,
            "VmHWM after the inbox load",
            hwm,
            "MB",
            None,
            Some("< 100 MB"),
        );
        if res.statuses.keys().any(|s| !(200..300).contains(s)) {
            eprintln!("inbox {be} {what}: non-2xx answers {:?}", res.statuses);
        }
        drop(fleet);
        node.shutdown().await;
    }
    Ok(())
}

async fn fanout(args: &Args, backend: Backend, cpu: &Cpu, r: &mut Report) -> anyhow::Result<()> {
    let be = name(backend);
    let counts = args.fanout.clone().unwrap_or(if args.quick {
        vec![3, 10]
    } else {
        vec![10, 100, 1000]
    });
    let rounds = if args.quick { 1 } else { 3 };
    for k in counts {
        let node = node(&ISERE, backend).await;
        let pid = node.pid().unwrap_or(0);
        let fleet = Fleet::start(k, &node.actor(), true).await;
        let t = Instant::now();
        fleet.follow(&node).await?;
        let got = fleet.received.clone();
        // The node answers each Follow with an Accept: wait for them all.
        let deadline = Instant::now() + Duration::from_secs(120);
        while got.posts.load(std::sync::atomic::Ordering::Relaxed) < k && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let setup = t.elapsed().as_secs_f64();
        let after_setup = rss_mb(pid).0;
        let settle = if args.quick { 0 } else { args.idle_settle };
        tokio::time::sleep(Duration::from_secs(settle)).await;
        let idle = rss_mb(pid).0;
        let idle_fds = load::open_fds(pid);
        let (stop, sampler) = load::sample_rss(pid);
        let mut times = Vec::new();
        for _ in 0..rounds {
            let known: HashSet<String> =
                got.postings.lock().expect("lock").keys().cloned().collect();
            let content = passerelle_tests::example_posting("vacancy");
            let t0 = Instant::now();
            node.publish(&content).await;
            let deadline = t0 + Duration::from_secs(300);
            loop {
                let done = got
                    .postings
                    .lock()
                    .expect("lock")
                    .iter()
                    .any(|(id, n)| !known.contains(id) && *n >= k);
                if done {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "fan-out to {k} did not complete");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            times.push(t0.elapsed().as_secs_f64());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let _ = stop.send(());
        let peak = sampler.await.unwrap_or(0.0);
        let fds = load::open_fds(pid);
        let idle_after = rss_mb(pid).0;
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        // CPU floor on 2 cores: per delivery, one transport signature by the node and the
        // receiver's checks (digest, signature, parse, two proofs).
        let floor = k as f64 * (1.0 / cpu.sign + 1.0 / cpu.inbox_cpu) / 2.0;
        let sc = "fan-out";
        r.add(
            sc,
            be,
            &format!("{k} partners: publish → every partner verified it (median of {rounds})"),
            median,
            "s",
            Some((floor, "CPU floor")),
            Some(if k >= 1000 { "< 2 s" } else { "" }),
        );
        r.add(
            sc,
            be,
            &format!("{k} partners: slowest round"),
            times[times.len() - 1],
            "s",
            None,
            None,
        );
        r.add(
            sc,
            be,
            &format!("{k} partners: deliveries/s (median round)"),
            k as f64 / median,
            "/s",
            None,
            None,
        );
        r.add(
            sc,
            be,
            &format!("{k} partners: refused deliveries (verification failed)"),
            got.failed.load(std::sync::atomic::Ordering::Relaxed) as f64,
            "",
            None,
            Some("0"),
        );
        r.add(
            sc,
            be,
            &format!("{k} partners: set-up (Follow + Accept of each)"),
            setup,
            "s",
            None,
            None,
        );
        r.add(
            "memory",
            be,
            &format!("RSS right after the set-up of {k} partners"),
            after_setup,
            "MB",
            None,
            None,
        );
        r.add(
            "memory",
            be,
            &format!("idle RSS with {k} partners ({settle} s after the set-up)"),
            idle,
            "MB",
            None,
            Some("< 30 MB"),
        );
        r.add(
            "memory",
            be,
            &format!("open file descriptors of the node, idle with {k} partners"),
            idle_fds as f64,
            "",
            None,
            None,
        );
        r.add(
            "memory",
            be,
            &format!("max RSS during fan-out to {k}"),
            peak,
            "MB",
            None,
            Some("< 100 MB"),
        );
        r.add(
            "memory",
            be,
            &format!("RSS after the fan-out to {k}"),
            idle_after,
            "MB",
            None,
            None,
        );
        r.add(
            "memory",
            be,
            &format!("open file descriptors of the node after the fan-out to {k}"),
            fds as f64,
            "",
            None,
            None,
        );
        if args.fanout_linger > 0 {
            tokio::time::sleep(Duration::from_secs(args.fanout_linger)).await;
            let l = args.fanout_linger;
            r.add(
                "memory",
                be,
                &format!("RSS {l} s after the fan-out to {k}"),
                rss_mb(pid).0,
                "MB",
                None,
                None,
            );
            r.add(
                "memory",
                be,
                &format!("open file descriptors {l} s after the fan-out to {k}"),
                load::open_fds(pid) as f64,
                "",
                None,
                None,
            );
        }
        drop(fleet);
        node.shutdown().await;
    }
    Ok(())
}

async fn exec(url: &str, sql: &'static str) -> anyhow::Result<()> {
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut c).await?;
        c.close().await?;
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        sqlx::raw_sql(sql).execute(&mut c).await?;
        c.close().await?;
    }
    Ok(())
}

/// How far a node's catch-up has come, read from its database by the benchmark.
///
/// Counting the whole inbox at each poll (`SELECT COUNT(*)`) is a sequential scan on
/// PostgreSQL: four a second over 100,000 growing rows of 3.6 KB documents read 300,000
/// rows a second and took a large share of the server's CPU from the node under test.
/// Each poll here counts only the rows after the highest `seq` seen so far (a range of
/// the primary key). That is exact for a catch-up from one partner: its pages are stored
/// one transaction after the other, so no row commits behind a higher `seq` already seen;
/// were one ever missed, the run would stop at its time limit, not report a wrong time.
struct InboxProgress {
    conn: Conn,
    /// Highest `seq` seen so far.
    last_seq: i64,
    /// Rows counted after the one that was last when [`InboxProgress::open`] ran.
    total: i64,
}

/// A connection to the node's own database.
enum Conn {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl InboxProgress {
    /// Opens a connection and notes the inbox's highest `seq` now (the rows before the
    /// catch-up do not count).
    async fn open(url: &str) -> anyhow::Result<Self> {
        const MAX: &str = "SELECT COALESCE(MAX(seq), 0) FROM inbox";
        let (conn, last_seq) = if url.starts_with("postgres") {
            let mut c = sqlx::PgConnection::connect(url).await?;
            let last: i64 = sqlx::query_scalar(MAX).fetch_one(&mut c).await?;
            (Conn::Postgres(c), last)
        } else {
            let mut c = sqlx::SqliteConnection::connect(url).await?;
            let last: i64 = sqlx::query_scalar(MAX).fetch_one(&mut c).await?;
            (Conn::Sqlite(c), last)
        };
        Ok(Self {
            conn,
            last_seq,
            total: 0,
        })
    }

    /// Activities stored since [`InboxProgress::open`].
    async fn stored(&mut self) -> anyhow::Result<i64> {
        const AFTER: &str = "SELECT COUNT(*), COALESCE(MAX(seq), $1) FROM inbox WHERE seq > $1";
        let last = self.last_seq;
        let (n, max): (i64, i64) = match &mut self.conn {
            Conn::Postgres(c) => sqlx::query_as(AFTER).bind(last).fetch_one(c).await?,
            Conn::Sqlite(c) => sqlx::query_as(AFTER).bind(last).fetch_one(c).await?,
        };
        self.last_seq = max;
        self.total += n;
        Ok(self.total)
    }

    /// Received activities not projected yet (from the partial index of the unprocessed).
    async fn unprocessed(&mut self) -> anyhow::Result<i64> {
        const LEFT: &str = "SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL";
        Ok(match &mut self.conn {
            Conn::Postgres(c) => sqlx::query_scalar(LEFT).fetch_one(c).await?,
            Conn::Sqlite(c) => sqlx::query_scalar(LEFT).fetch_one(c).await?,
        })
    }

    async fn close(self) {
        let _ = match self.conn {
            Conn::Postgres(c) => c.close().await,
            Conn::Sqlite(c) => c.close().await,
        };
    }
}

async fn catchup(args: &Args, backend: Backend, cpu: &Cpu, r: &mut Report) -> anyhow::Result<()> {
    let be = name(backend);
    let counts = args.catchup.clone().unwrap_or(if args.quick {
        vec![300]
    } else {
        vec![10_000, 100_000]
    });
    for n in counts {
        let mut a = node(&ISERE, backend).await;
        let mut b = node(&METROPOLE, backend).await;
        b.follow(&a).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = b
                .partner(&a)
                .await
                .is_some_and(|p| p["outgoing"] == "accepted");
            if ok {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "B's partnership with A not accepted"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.stop().await;
        a.stop().await;
        // A publishes n postings while B is away; the pushes are lost (the deliveries are
        // dropped, as after dead-lettering): B must pull them all.
        let (key, key_id) = passerelle_tests::node_key(&a).await;
        let actor = a.actor();
        let t = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<NewActivity>(4096);
        let producer = tokio::task::spawn_blocking(move || {
            for i in 0..n {
                let doc = fakes::create_posting(&actor, &key, &key_id, i);
                let act = NewActivity {
                    activity_id: doc["id"].as_str().unwrap_or_default().to_owned(),
                    activity_type: "Create".to_owned(),
                    object_id: doc["object"]["id"].as_str().unwrap_or_default().to_owned(),
                    public: false,
                    document: doc,
                };
                if tx.blocking_send(act).is_err() {
                    break;
                }
            }
        });
        // Several appends in flight: on PostgreSQL each waits for its commit's fsync,
        // which one at a time made seeding, not the catch-up, most of a run.
        let mut appends = tokio::task::JoinSet::new();
        while let Some(act) = rx.recv().await {
            if appends.len() >= 8
                && let Some(done) = appends.join_next().await
            {
                done??;
            }
            let store = a.store.clone();
            appends.spawn(async move { store.append_activity(&act, None).await });
        }
        while let Some(done) = appends.join_next().await {
            done??;
        }
        producer.await?;
        let seeded = t.elapsed().as_secs_f64();
        let url = a.config.database.url.clone().unwrap_or_default();
        exec(&url, "DELETE FROM deliveries").await?;
        r.add(
            "catch-up",
            be,
            &format!("{n}: seeding A's outbox (sign 2 proofs + append), activities/s"),
            n as f64 / seeded,
            "/s",
            None,
            None,
        );
        let t = Instant::now();
        a.start_again().await;
        r.add(
            "start-up",
            be,
            &format!("node with {n} outbox activities: start → /healthz ok"),
            t.elapsed().as_secs_f64(),
            "s",
            None,
            None,
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.add(
            "memory",
            be,
            &format!("idle RSS, node with {n} outbox activities"),
            rss_mb(a.pid().unwrap_or(0)).0,
            "MB",
            None,
            Some("< 30 MB"),
        );
        let b_url = b.config.database.url.clone().unwrap_or_default();
        let mut progress = InboxProgress::open(&b_url).await?;
        let t0 = Instant::now();
        b.start_again().await;
        let pid = b.pid().unwrap_or(0);
        let (stop, sampler) = load::sample_rss(pid);
        let mut stored_at = None;
        let limit = Duration::from_secs(if args.quick { 60 } else { 900 });
        // Projection (the remote postings cache and the feed index) runs behind; it is
        // waited for at most `patience` after everything is stored.
        let patience = Duration::from_secs(if args.quick { 3 } else { 60 });
        let (processed_at, unprocessed) = loop {
            if stored_at.is_none() {
                let stored = progress.stored().await?;
                if stored >= n as i64 {
                    stored_at = Some(t0.elapsed().as_secs_f64());
                }
                anyhow::ensure!(
                    t0.elapsed() < limit,
                    "catch-up of {n} not done after {limit:?}: {stored} stored"
                );
            }
            if let Some(st) = stored_at {
                let unprocessed = progress.unprocessed().await?;
                if unprocessed == 0 {
                    break (Some(t0.elapsed().as_secs_f64()), 0);
                }
                if t0.elapsed().as_secs_f64() > st + patience.as_secs_f64() {
                    break (None, unprocessed);
                }
            }
            // Not too often: the observer shares the two vCPUs and the database server.
            tokio::time::sleep(Duration::from_millis(if stored_at.is_some() {
                1000
            } else {
                250
            }))
            .await;
        };
        progress.close().await;
        let _ = stop.send(());
        let peak = sampler.await.unwrap_or(0.0);
        let stored_at = stored_at.unwrap_or(0.0);
        let sc = "catch-up";
        r.add(
            sc,
            be,
            &format!("{n} missed: B start → all stored"),
            stored_at,
            "s",
            Some((n as f64 / (2.0 * cpu.proofs), "2 cores × proof checks")),
            Some(if n >= 100_000 { "< 30 s" } else { "" }),
        );
        match processed_at {
            Some(p) => r.add(
                sc,
                be,
                &format!("{n} missed: B start → all processed (projected)"),
                p,
                "s",
                None,
                None,
            ),
            None => r.add(
                sc,
                be,
                &format!(
                    "{n} missed: still to project {} s after all were stored",
                    patience.as_secs()
                ),
                unprocessed as f64,
                "activities",
                None,
                None,
            ),
        }
        r.add(
            sc,
            be,
            &format!("{n} missed: pulled activities/s"),
            n as f64 / stored_at,
            "/s",
            Some((cpu.proofs, "proof checks, 1 core")),
            None,
        );
        r.add(
            "memory",
            be,
            &format!("max RSS of B during the catch-up of {n}"),
            peak,
            "MB",
            None,
            Some("< 100 MB"),
        );
        b.stop().await;
        let t = Instant::now();
        b.start_again().await;
        r.add(
            "start-up",
            be,
            &format!("node with {n} received activities: start → /healthz ok"),
            t.elapsed().as_secs_f64(),
            "s",
            None,
            None,
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.add(
            "memory",
            be,
            &format!("idle RSS, node with {n} received postings"),
            rss_mb(b.pid().unwrap_or(0)).0,
            "MB",
            None,
            Some("< 30 MB"),
        );
        b.shutdown().await;
        a.shutdown().await;
    }
    Ok(())
}

async fn feed(args: &Args, backend: Backend, r: &mut Report) -> anyhow::Result<()> {
    let be = name(backend);
    let mut exe = std::env::current_exe()?;
    exe.pop();
    let exe = exe.join("examples").join("feed_bench");
    anyhow::ensure!(
        exe.is_file(),
        "{} is missing: cargo build --release -p passerelle-node --example feed_bench",
        exe.display()
    );
    let scales = args.scale.clone().unwrap_or(if args.quick {
        vec![2_000]
    } else {
        vec![10_000, 100_000]
    });
    for n in scales {
        let runs = if args.quick { "5" } else { "30" };
        let t = Instant::now();
        let out = tokio::process::Command::new(&exe)
            .args([be, &n.to_string(), runs])
            .output()
            .await?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        anyhow::ensure!(
            out.status.success(),
            "feed_bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let total = t.elapsed().as_secs_f64();
        let mut query = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("seeded remote_postings in ") {
                let s: f64 = rest.trim_end_matches(" s").parse().unwrap_or(0.0);
                r.add(
                    "feed",
                    be,
                    &format!("{n} postings: seed"),
                    s,
                    "s",
                    None,
                    None,
                );
            }
            if let Some(rest) = line.strip_prefix("indexed ") {
                let s: f64 = rest
                    .split(" in ")
                    .nth(1)
                    .and_then(|x| x.split(' ').next())
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0.0);
                r.add(
                    "feed",
                    be,
                    &format!("{n} postings: index (reindex_feed)"),
                    s,
                    "s",
                    None,
                    None,
                );
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() == 6 && cells[1] != "query" && !cells[1].starts_with("---") {
                let (p50, p99) = (
                    cells[3].parse().unwrap_or(-1.0),
                    cells[4].parse().unwrap_or(-1.0),
                );
                let label = if cells[1].starts_with('…') {
                    format!("{query} {}", cells[1])
                } else {
                    query = cells[1].to_owned();
                    query.clone()
                };
                if p50 >= 0.0 {
                    r.add(
                        "feed",
                        be,
                        &format!("{n} postings: {label} — p50"),
                        p50,
                        "ms",
                        None,
                        None,
                    );
                    r.add(
                        "feed",
                        be,
                        &format!("{n} postings: {label} — p99"),
                        p99,
                        "ms",
                        None,
                        None,
                    );
                }
            }
        }
        r.add(
            "feed",
            be,
            &format!("{n} postings: whole feed_bench run"),
            total,
            "s",
            None,
            None,
        );
    }
    Ok(())
}

/// The same inbox load against the peer built on `activitypub_federation`
/// (`bench/lemmy-peer`, built here on demand): the peer signs the same `Create` payloads
/// with its own scheme (draft-cavage, RSA-2048), and the load generator replays them.
///
/// # Errors
/// When the peer cannot be built or started.
pub async fn peer(args: &Args, r: &mut Report) -> anyhow::Result<()> {
    let dir = passerelle_tests::workspace_root().join("bench/lemmy-peer");
    let status = tokio::process::Command::new("cargo")
        .args(["build", "--release", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .status()
        .await?;
    anyhow::ensure!(
        status.success(),
        "cannot build bench/lemmy-peer (see cargo's output above)"
    );
    let exe = dir.join("target/release/lemmy-peer");
    let tmp = tempfile_dir()?;
    let keyset = Fleet::start(1, "http://127.0.0.1:9/actor", false).await;
    let f = &keyset.fakes[0];
    let template = fakes::create_posting(&f.actor, &f.key, &f.key_id, 0);
    std::fs::write(tmp.join("template.json"), serde_json::to_vec(&template)?)?;
    let n = args
        .inbox_requests
        .unwrap_or(if args.quick { 300 } else { 10_000 });
    let port = passerelle_tests::free_port().port();
    let mut child = tokio::process::Command::new(&exe)
        .arg(port.to_string())
        .arg(n.to_string())
        .arg(tmp.join("template.json"))
        .arg(tmp.join("requests.jsonl"))
        .arg(tmp.join("peer.db"))
        .arg("8")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let t = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(600), lines.next_line()).await {
            Ok(Ok(Some(l))) if l.starts_with("READY") => break,
            Ok(Ok(Some(_))) => {}
            other => anyhow::bail!("the peer did not get ready: {other:?}"),
        }
    }
    let signing = t.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(tmp.join("requests.jsonl"))?;
    let mut reqs = Vec::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let headers = v["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|h| Some((h[0].as_str()?.to_owned(), h[1].as_str()?.to_owned())))
            .filter(|(n, _)| n != "content-length")
            .collect();
        reqs.push(load::Req {
            url: format!("http://127.0.0.1:{port}/inbox"),
            headers,
            body: axum::body::Bytes::from(v["body"].as_str().unwrap_or_default().to_owned()),
        });
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_mb(pid).0;
    let (stop, sampler) = load::sample_rss(pid);
    let res = load::run(reqs, args.concurrency).await;
    let _ = stop.send(());
    let peak = sampler.await.unwrap_or(0.0);
    let _ = child.kill().await;
    let sc = "peer";
    let be = "sqlite";
    let what = format!(
        "activitypub_federation 0.7.0-beta.14, 8 senders, c={}",
        args.concurrency
    );
    r.add(
        sc,
        be,
        &format!("{what}: accepted+stored/s"),
        res.rate(),
        "/s",
        None,
        None,
    );
    r.add(
        sc,
        be,
        &format!("{what}: p50 latency"),
        res.pct_ms(0.5),
        "ms",
        None,
        None,
    );
    r.add(
        sc,
        be,
        &format!("{what}: p99 latency"),
        res.pct_ms(0.99),
        "ms",
        None,
        None,
    );
    r.add(
        sc,
        be,
        &format!("{what}: answers 2xx / sent"),
        res.ok as f64,
        "",
        Some((res.sent as f64, "sent")),
        None,
    );
    r.add(
        sc,
        be,
        &format!("{what}: RSA signing of {n} requests by the crate"),
        signing,
        "s",
        None,
        None,
    );
    r.add(sc, be, &format!("{what}: idle RSS"), idle, "MB", None, None);
    r.add(
        sc,
        be,
        &format!("{what}: max RSS under load"),
        peak,
        "MB",
        None,
        None,
    );
    if res.statuses.keys().any(|s| !(200..300).contains(s)) {
        eprintln!("peer: non-2xx answers {:?}", res.statuses);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
