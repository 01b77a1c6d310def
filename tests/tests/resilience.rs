//! Delivery that loses nothing and duplicates nothing: a sender killed with SIGKILL in
//! the middle of a delivery, a partner that answers 500, then hangs, then comes back,
//! and two processes sharing one PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use passerelle_tests::{
    Backend, GRENOBLE, ISERE, METROPOLE, Node, ProxyMode, example_posting, node_behind_proxy,
    postgres_available, wait_until,
};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);

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

async fn cached(node: &Node, id: &str) -> bool {
    node.cached_postings()
        .await
        .iter()
        .any(|(p, _, d)| p == id && !d)
}

/// How many times `node` stored an activity about `object` (pushed or pulled).
async fn received(node: &Node, from: &Node, object: &str) -> usize {
    node.store
        .inbox_entries(Some(&from.actor()), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|(e, _)| e.object_id.as_deref() == Some(object))
        .count()
}

/// A real `passerelle` process killed with SIGKILL while one of its deliveries is in
/// flight: after a restart the delivery completes; the partner stores the activity once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sender_killed_mid_delivery_loses_and_duplicates_nothing() {
    let (grenoble, proxy) = node_behind_proxy(&GRENOBLE, Backend::Sqlite).await;
    let mut isere = Node::start_with(&ISERE, Backend::Sqlite, true, |c| {
        c.federation.request_timeout_secs = 3;
    })
    .await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;

    // The partner stops answering: the delivery of the next posting hangs in flight.
    proxy.set(ProxyMode::Hold);
    let posting = isere.publish(&example_posting("vacancy")).await;
    let id = posting["document"]["id"].as_str().unwrap().to_owned();
    wait_until("a delivery is in flight", PATIENCE, || async {
        proxy.held_posts() > 0
    })
    .await;
    isere.kill().await;

    // The partner is reachable again; the killed attempt's bytes may still reach it.
    proxy.set(ProxyMode::Pass);
    isere.start_again().await;
    wait_until("the posting reaches Grenoble", PATIENCE, || async {
        cached(&grenoble, &id).await
    })
    .await;
    assert_eq!(received(&grenoble, &isere, &id).await, 1, "stored once");
    // The sender's job ends delivered, and nothing is left pending.
    let create = isere.store.outbox(None, None, 1000, false).await.unwrap();
    let create = create
        .iter()
        .find(|i| i.activity.object_id == id && i.activity.activity_type == "Create")
        .unwrap();
    wait_until("the job is recorded delivered", PATIENCE, || async {
        isere
            .store
            .deliveries_of(&create.activity.activity_id)
            .await
            .unwrap()
            .iter()
            .all(|(_, state, _)| state == "delivered")
    })
    .await;
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// A partner that answers 500, then hangs (timeouts), then comes back: the deliveries
/// wait (with backoff, then the circuit), then all arrive, in full, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partner_failing_then_hanging_then_back_receives_everything_once() {
    let (grenoble, proxy) = node_behind_proxy(&GRENOBLE, Backend::Sqlite).await;
    let isere = Node::start_with(&ISERE, Backend::Sqlite, false, |c| {
        c.federation.request_timeout_secs = 1;
        c.federation.connect_timeout_secs = 1;
    })
    .await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;

    proxy.set(ProxyMode::Error500);
    let mut ids = Vec::new();
    for kind in ["vacancy", "mad-offer", "immersion-offer"] {
        let p = isere.publish(&example_posting(kind)).await;
        ids.push(p["document"]["id"].as_str().unwrap().to_owned());
    }
    wait_until(
        "deliveries fail with 500 and are retried",
        PATIENCE,
        || async {
            let (_, h) = isere.get("/api/v1/deliveries").await;
            h.as_array()
                .unwrap()
                .iter()
                .any(|t| t["consecutive_failures"].as_i64().unwrap_or(0) >= 3)
        },
    )
    .await;
    let (_, h) = isere.get("/api/v1/deliveries").await;
    let target = h
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["consecutive_failures"].as_i64().unwrap_or(0) >= 3)
        .unwrap()
        .clone();
    assert!(
        target["last_error"].as_str().unwrap().contains("500"),
        "{target}"
    );
    assert!(
        target["circuit_open_until_ms"].is_number(),
        "the circuit opened: {target}"
    );
    assert!(
        isere
            .metric("passerelle_delivery_attempts_total{result=\"retry\"}")
            .await
            >= 3.0
    );

    proxy.set(ProxyMode::Hold);
    wait_until("a delivery times out", PATIENCE, || async {
        let (_, h) = isere.get("/api/v1/deliveries").await;
        h.as_array().unwrap().iter().any(|t| {
            t["last_error"].as_str().is_some_and(|e| {
                e.contains("timed out")
                    || e.contains("operation timed out")
                    || e.contains("timeout")
            })
        })
    })
    .await;
    proxy.set(ProxyMode::Pass);
    for id in &ids {
        wait_until("everything arrives", PATIENCE, || async {
            cached(&grenoble, id).await
        })
        .await;
        assert_eq!(received(&grenoble, &isere, id).await, 1);
    }
    wait_until(
        "the queue drains and the circuit closes",
        PATIENCE,
        || async {
            let (_, h) = isere.get("/api/v1/deliveries").await;
            h.as_array().unwrap().iter().all(|t| {
                t["pending"] == 0
                    && t["dead"] == 0
                    && t["consecutive_failures"] == 0
                    && t["circuit_open_until_ms"].is_null()
            })
        },
    )
    .await;
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// Two processes serve one node on one PostgreSQL database (behind a load balancer):
/// every delivery job is sent by one of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgres_deliver_each_job_once() {
    if !postgres_available().await {
        return;
    }
    let isere = Node::start(&ISERE, Backend::Postgres).await;
    let second = isere.second_process().await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    for n in [&isere, &grenoble, &metropole] {
        n.set_policy("open").await;
    }
    partners_both_ways(&isere, &grenoble).await;
    partners_both_ways(&isere, &metropole).await;

    // Postings published through both processes, interleaved.
    let kinds = [
        "vacancy",
        "mad-offer",
        "immersion-offer",
        "training-session",
        "facilitation-request",
    ];
    let mut ids = Vec::new();
    for round in 0..4 {
        for (i, kind) in kinds.iter().enumerate() {
            let via = if (round + i) % 2 == 0 {
                &isere
            } else {
                &second
            };
            let p = via.publish(&example_posting(kind)).await;
            ids.push(p["document"]["id"].as_str().unwrap().to_owned());
        }
    }
    for node in [&grenoble, &metropole] {
        wait_until(
            &format!("{} has all {} postings", node.name, ids.len()),
            PATIENCE,
            || async {
                let got = node.cached_postings().await;
                ids.iter().all(|id| got.iter().any(|(p, _, _)| p == id))
            },
        )
        .await;
    }
    // Each job delivered (its record may follow the receiver's copy by a moment), and no
    // receiver got a delivery twice.
    wait_until("every job recorded", PATIENCE, || async {
        let (_, h) = isere.get("/api/v1/deliveries").await;
        h.as_array()
            .unwrap()
            .iter()
            .all(|t| t["pending"] == 0 && t["dead"] == 0)
    })
    .await;
    let (_, health) = isere.get("/api/v1/deliveries").await;
    let delivered: i64 = health
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["delivered"].as_i64().unwrap())
        .sum();
    for h in health.as_array().unwrap() {
        assert_eq!(
            (h["pending"].clone(), h["dead"].clone()),
            (Value::from(0), Value::from(0)),
            "{h}"
        );
    }
    assert!(
        delivered >= 2 * ids.len() as i64,
        "{delivered} deliveries for {} postings",
        ids.len()
    );
    // Each job was sent by one process: the attempts the two processes made add up to
    // the jobs' recorded attempts, and the successes to the delivered jobs. (Receivers may
    // still see an activity twice, legitimately: once pulled, once pushed.)
    let a = isere
        .metric("passerelle_delivery_attempts_total{result=\"delivered\"}")
        .await;
    let b = second
        .metric("passerelle_delivery_attempts_total{result=\"delivered\"}")
        .await;
    assert_eq!(
        a + b,
        delivered as f64,
        "a job was delivered by both processes"
    );
    let retries = isere
        .metric("passerelle_delivery_attempts_total{result=\"retry\"}")
        .await
        + second
            .metric("passerelle_delivery_attempts_total{result=\"retry\"}")
            .await;
    let (jobs, attempts) = isere.store.delivery_attempts().await.unwrap();
    assert_eq!(
        (attempts - jobs) as f64,
        retries,
        "every extra attempt is a recorded retry"
    );
    second.shutdown().await;
    for n in [isere, grenoble, metropole] {
        n.shutdown().await;
    }
}
