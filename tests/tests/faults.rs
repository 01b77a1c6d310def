//! Faults: a partition healed after both sides published, a receiver killed with SIGKILL
//! while it projects what it received, the PostgreSQL connection lost under load, and the
//! disk of a SQLite database full. After recovery nothing accepted is lost, nothing is
//! applied twice, and the node's metrics say what happened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use passerelle_tests::{
    Backend, GRENOBLE, ISERE, Node, Proxy, ProxyMode, drop_schema, example_posting,
    node_behind_proxy, postgres_available, postgres_schema, wait_until,
};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(90);

async fn partners_both_ways(a: &Node, b: &Node) {
    a.follow(b).await;
    b.follow(a).await;
    for (x, y) in [(a, b), (b, a)] {
        wait_until(
            &format!("{} and {} partners", x.name, y.name),
            PATIENCE,
            || async {
                x.partner(y)
                    .await
                    .is_some_and(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
            },
        )
        .await;
    }
}

/// What `author` has published, as `(id, version, deleted)`: the set a partner must hold.
async fn expected_at_partner(author: &Node, deleted: &[String]) -> Vec<(String, i64, bool)> {
    let mut out: Vec<(String, i64, bool)> = author
        .store
        .postings(None)
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.published_at.is_some())
        .map(|p| {
            (
                p.document["id"].as_str().unwrap().to_owned(),
                p.version,
                false,
            )
        })
        .collect();
    out.extend(deleted.iter().map(|d| (d.clone(), 0, true)));
    out.sort();
    out
}

async fn held_from(node: &Node, author: &Node) -> Vec<(String, i64, bool)> {
    let prefix = format!("{}/", author.base);
    node.cached_postings()
        .await
        .into_iter()
        .filter(|(id, _, _)| id.starts_with(&prefix))
        .map(|(id, v, d)| (id, if d { 0 } else { v }, d))
        .collect()
}

/// Publish, update and delete on `node` (while cut off); returns the deleted ids.
async fn churn(node: &Node, kinds: &[&str]) -> Vec<String> {
    let mut created = Vec::new();
    for kind in kinds {
        created.push(node.publish(&example_posting(kind)).await);
    }
    let first = &created[0];
    let mut content = example_posting(&first["kind"].as_str().unwrap().replace('_', "-"));
    content["name"] = json!("Offre mise à jour pendant la coupure");
    let (s, b) = node
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/postings/{}", first["id"].as_str().unwrap()),
            &content,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let last = created.last().unwrap();
    let (s, _) = node
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/postings/{}", last["id"].as_str().unwrap()),
            &json!(null),
        )
        .await;
    assert_eq!(s, 204);
    vec![last["document"]["id"].as_str().unwrap().to_owned()]
}

/// A network partition between two nodes, healed after both published, updated and
/// deleted: each ends with exactly the other's postings and versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partition_healed_converges_exactly() {
    let (isere, isere_proxy) = node_behind_proxy(&ISERE, Backend::Sqlite).await;
    let (grenoble, grenoble_proxy) = node_behind_proxy(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;
    isere.publish(&example_posting("vacancy")).await;

    // The partition: neither reaches the other (their own HR API still answers directly).
    isere_proxy.set(ProxyMode::Refuse);
    grenoble_proxy.set(ProxyMode::Refuse);
    let isere_direct = isere.direct();
    let grenoble_direct = grenoble.direct();
    let deleted_i = churn(
        &isere_direct,
        &["mad-offer", "immersion-offer", "training-session"],
    )
    .await;
    let deleted_g = churn(
        &grenoble_direct,
        &["immersion-swap", "facilitation-request", "vacancy"],
    )
    .await;
    wait_until("deliveries fail during the partition", PATIENCE, || async {
        isere_direct
            .metric("passerelle_delivery_attempts_total{result=\"retry\"}")
            .await
            > 0.0
    })
    .await;

    isere_proxy.set(ProxyMode::Pass);
    grenoble_proxy.set(ProxyMode::Pass);
    let want_at_g = expected_at_partner(&isere, &deleted_i).await;
    let want_at_i = expected_at_partner(&grenoble, &deleted_g).await;
    wait_until("both sides converge exactly", PATIENCE, || async {
        held_from(&grenoble, &isere).await == want_at_g
            && held_from(&isere, &grenoble).await == want_at_i
    })
    .await;
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// A receiver killed with SIGKILL while it projects a burst of received activities:
/// after a restart every one is projected, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receiver_killed_during_projection_loses_nothing() {
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let mut grenoble = Node::start_process(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;
    let kinds = [
        "vacancy",
        "mad-offer",
        "immersion-offer",
        "training-session",
        "facilitation-request",
    ];
    let mut published = 0;
    for round in 0..8 {
        for kind in kinds {
            isere.publish(&example_posting(kind)).await;
            published += 1;
        }
        if round == 3 {
            // Mid-stream: some are stored, some projected, some in flight.
            wait_until("projection has started", PATIENCE, || async {
                !grenoble.cached_postings().await.is_empty()
            })
            .await;
            grenoble.kill().await;
            grenoble.start_again().await;
        }
    }
    let want = expected_at_partner(&isere, &[]).await;
    assert_eq!(want.len(), published);
    let done = tokio::time::timeout(PATIENCE, async {
        loop {
            if held_from(&grenoble, &isere).await == want
                && grenoble.store.inbox_stats().await.unwrap().unprocessed == 0
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    if done.is_err() {
        let held = held_from(&grenoble, &isere).await;
        let (_, health) = isere.get("/api/v1/deliveries").await;
        panic!(
            "not converged: {} of {} held, inbox {:?}, deliveries {health}",
            held.len(),
            want.len(),
            grenoble.store.inbox_stats().await.unwrap()
        );
    }
    // Each activity was stored once, whatever the retries.
    let entries = grenoble
        .store
        .inbox_entries(Some(&isere.actor()), 1000)
        .await
        .unwrap();
    let mut ids: Vec<&str> = entries
        .iter()
        .map(|(e, _)| e.activity_id.as_str())
        .collect();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n);
    assert!(
        entries
            .iter()
            .all(|(_, outcome)| outcome.as_deref().is_some_and(|o| !o.starts_with("failed")))
    );
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// A node on PostgreSQL loses its database connection under load (what a restart of the
/// server looks like from the node): requests fail with 5xx meanwhile (nothing half-done),
/// and once the database is back everything published and received is there, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_connection_lost_under_load() {
    if !postgres_available().await {
        return;
    }
    let (schema, url) = postgres_schema().await;
    let pg: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let pg_proxy = Proxy::start(pg).await;
    let via_proxy = url.replace("127.0.0.1:5432", &pg_proxy.addr.to_string());
    let isere = Node::start_with(&ISERE, Backend::Sqlite, false, |c| {
        c.database.url = Some(via_proxy.clone());
    })
    .await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;

    // Load: Grenoble publishes continuously while Isère's database goes away and back.
    let load = {
        let kinds = [
            "vacancy",
            "mad-offer",
            "immersion-offer",
            "training-session",
        ];
        let mut ids = Vec::new();
        for (i, kind) in kinds.iter().cycle().take(24).enumerate() {
            if i == 6 {
                pg_proxy.set(ProxyMode::Refuse);
            }
            if i == 16 {
                pg_proxy.set(ProxyMode::Pass);
            }
            let p = grenoble.publish(&example_posting(kind)).await;
            ids.push(p["document"]["id"].as_str().unwrap().to_owned());
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        ids
    };
    let want = expected_at_partner(&grenoble, &[]).await;
    assert_eq!(want.len(), load.len());
    wait_until(
        "Isère holds every posting once the database is back",
        PATIENCE,
        || async { held_from(&isere, &grenoble).await == want },
    )
    .await;
    // While it was away, the inbox answered 5xx (Grenoble retried), never 202.
    assert!(
        grenoble
            .metric("passerelle_delivery_attempts_total{result=\"retry\"}")
            .await
            > 0.0,
        "deliveries were refused while the database was away"
    );
    // Isère still publishes, and Grenoble receives it.
    let p = isere.publish(&example_posting("immersion-swap")).await;
    let id = p["document"]["id"].as_str().unwrap().to_owned();
    wait_until("Isère publishes again", PATIENCE, || async {
        grenoble
            .cached_postings()
            .await
            .iter()
            .any(|(p, _, _)| p == &id)
    })
    .await;
    isere.shutdown().await;
    grenoble.shutdown().await;
    drop_schema(&schema).await;
}

/// The disk holding a node's SQLite database fills up: publishing fails with a clear
/// error and changes nothing, deliveries to it are refused with 5xx and retried by the
/// sender; once space is freed, everything arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_disk_full_then_freed() {
    let mount = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(mount.path())
        .status();
    if !status.is_ok_and(|s| s.success()) {
        if std::env::var_os("CI").is_some() {
            panic!("cannot mount a small tmpfs for the disk-full test (root is needed)");
        }
        eprintln!("SKIPPED: disk-full test (cannot mount a tmpfs; run as root)");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mount.path().to_path_buf());
    let data = mount.path().join("data");
    let db = format!("sqlite://{}", data.join("passerelle.db").display());
    let isere = Node::start_with(&ISERE, Backend::Sqlite, false, |c| {
        c.data.dir = data.clone();
        c.database.url = Some(db.clone());
    })
    .await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;

    // Fill the disk.
    let filler = mount.path().join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Local publishing fails clearly and leaves nothing half-written.
    let before = isere
        .store
        .postings(None)
        .await
        .map(|p| p.len())
        .unwrap_or(0);
    let (s, body) = isere
        .post("/api/v1/postings", &example_posting("vacancy"))
        .await;
    assert!(s >= 500, "{s} {body}");
    assert_eq!(body["code"], "internal_error", "{body}");
    // What Grenoble sends meanwhile is refused with 5xx and retried.
    let mut sent = Vec::new();
    for kind in ["mad-offer", "immersion-offer", "training-session"] {
        let p = grenoble.publish(&example_posting(kind)).await;
        sent.push(p["document"]["id"].as_str().unwrap().to_owned());
    }
    wait_until(
        "deliveries to the full node fail and are retried",
        PATIENCE,
        || async {
            grenoble
                .metric("passerelle_delivery_attempts_total{result=\"retry\"}")
                .await
                > 0.0
        },
    )
    .await;
    // Space comes back.
    std::fs::remove_file(&filler).unwrap();
    for id in &sent {
        wait_until(
            "everything arrives once space is back",
            PATIENCE,
            || async {
                isere
                    .cached_postings()
                    .await
                    .iter()
                    .any(|(p, _, _)| p == id)
            },
        )
        .await;
    }
    assert_eq!(
        isere.store.postings(None).await.unwrap().len(),
        before,
        "the failed publication left nothing"
    );
    let (s, b) = isere
        .post("/api/v1/postings", &example_posting("vacancy"))
        .await;
    if s != 201 {
        let probe = isere
            .store
            .create_agent(
                &passerelle_node::store::AgentFields {
                    display_name: "x".into(),
                    email: None,
                    data: json!({}),
                },
                &passerelle_node::store::AuditRecord::new("t", "t", "t"),
            )
            .await;
        let df = std::process::Command::new("df")
            .arg(mount.path())
            .output()
            .unwrap();
        panic!(
            "publish after recovery: {s} {b}; direct write: {probe:?}; {}",
            String::from_utf8_lossy(&df.stdout)
        );
    }
    let id = b["id"].as_str().unwrap();
    let (s, p) = isere
        .post(&format!("/api/v1/postings/{id}/publish"), &json!({}))
        .await;
    assert_eq!((s, p["status"].clone()), (200, json!("published")), "{p}");
    // The node counted the failures it answered.
    let metrics = reqwest::get(format!("{}/metrics", isere.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("passerelle_http_requests_total") && l.contains("status=\"500\"")
        ),
        "5xx answers are counted"
    );
    isere.shutdown().await;
    grenoble.shutdown().await;
}
