//! The store's federation queues on SQLite and PostgreSQL: the inbox (de-duplication,
//! claims with leases), delivery jobs (fan-out, per-inbox limits, probes and the circuit,
//! dead letters and replay), pull cursors, and what a signed requester may see of the
//! outbox.

use std::time::Duration;

use passerelle_node::store::{
    AppliedVersion, AuditRecord, BatchedVersion, BlockKind, DeliveryOutcome, InboxAccept,
    IncomingActivity, NewActivity, NoRelays, PageCursor, PartnerInfo, PartnershipChange,
    PartnershipState, PostingApply, PostingStatus, PostingVersion, PulledAccept, PulledActivity,
    Relayer, Store, StoreError, Via, Viewer,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::TestDb;

macro_rules! on_each_backend {
    ($f:ident) => {{
        for db in TestDb::all().await {
            let store = db.store().await;
            eprintln!("queue suite: {} on {}", stringify!($f), db.name);
            $f(&store).await;
            store.close().await;
            db.cleanup().await;
        }
    }};
}

const ME: &str = "https://rh.isere.example/actor";
const FOLLOWERS: &str = "https://rh.isere.example/followers";

/// Our relays of postings, built as the federation builds them (unsigned here); or none,
/// as when signing fails.
#[derive(Default)]
struct TestRelays {
    fail: bool,
}

impl TestRelays {
    /// The id of our relay of `v`.
    fn id_of(v: &PostingVersion) -> String {
        format!(
            "https://rh.isere.example/activities/relay-{}-v{}",
            v.object_id.rsplit('/').next().unwrap_or_default(),
            v.version
        )
    }
}

impl Relayer for TestRelays {
    fn relay(
        &self,
        v: &PostingVersion,
    ) -> Result<NewActivity, Box<dyn std::error::Error + Send + Sync>> {
        if self.fail {
            return Err("the node's key is unreadable".into());
        }
        let id = Self::id_of(v);
        Ok(NewActivity {
            activity_id: id.clone(),
            activity_type: "Announce".into(),
            object_id: v.object_id.clone(),
            public: false,
            document: json!({"id": id, "type": "Announce", "actor": ME, "to": [FOLLOWERS],
                "object": v.document}),
        })
    }
}

fn audit() -> AuditRecord {
    AuditRecord::new("test", "t", "x")
}

fn incoming(id: &str, doc: Value) -> IncomingActivity {
    IncomingActivity {
        activity_id: id.to_owned(),
        actor_id: "https://a.example/actor".to_owned(),
        activity_type: "Create".to_owned(),
        object_id: Some(format!("{id}/object")),
        document: doc,
        via: Via::Push,
        signers: vec!["https://a.example/actor#k1".to_owned()],
    }
}

async fn partner(store: &Store, host: &str, incoming: PartnershipState) -> String {
    let actor = format!("https://{host}/actor");
    store
        .upsert_partner(&PartnerInfo {
            actor_id: actor.clone(),
            name: host.to_owned(),
            inbox: format!("https://{host}/inbox"),
            shared_inbox: Some(format!("https://{host}/inbox")),
            outbox: Some(format!("https://{host}/outbox")),
            siren: None,
        })
        .await
        .unwrap();
    store
        .update_partnership(
            &actor,
            &PartnershipChange {
                outgoing: Some((
                    PartnershipState::Accepted,
                    Some(format!(
                        "https://rh.isere.example/activities/{}",
                        Uuid::now_v7()
                    )),
                )),
                incoming: Some((incoming, None)),
            },
            None,
            None,
        )
        .await
        .unwrap();
    actor
}

fn activity(to: &[&str], public: bool) -> NewActivity {
    let id = format!("https://rh.isere.example/activities/{}", Uuid::now_v7());
    NewActivity {
        activity_id: id.clone(),
        activity_type: "Create".into(),
        object_id: format!("https://rh.isere.example/postings/{}", Uuid::now_v7()),
        public,
        document: json!({ "id": id, "type": "Create", "actor": ME, "to": to }),
    }
}

async fn inbox_dedup_and_leases(store: &Store) {
    let a = incoming(
        "https://a.example/activities/1",
        json!({"b": 1, "a": [1, 2]}),
    );
    let b = incoming("https://a.example/activities/2", json!({"x": 1}));
    let out = store
        .accept_activities(&[a.clone(), b.clone()])
        .await
        .unwrap();
    assert!(matches!(out[0], InboxAccept::Stored { .. }));
    assert!(matches!(out[1], InboxAccept::Stored { .. }));
    // The same content in another member order is the same activity (RFC 8785 form).
    let mut same = a.clone();
    same.document = json!({"a": [1, 2], "b": 1});
    let mut reused = a.clone();
    reused.document = json!({"a": [2, 1], "b": 1});
    let out = store.accept_activities(&[same, reused]).await.unwrap();
    assert_eq!(out, [InboxAccept::Duplicate, InboxAccept::IdReused]);
    assert_eq!(store.inbox_stats().await.unwrap().total, 2);

    // Two processes claim: each item goes to one of them.
    let lease = Duration::from_secs(60);
    let first = store.claim_inbox("p1", 1, lease).await.unwrap();
    let second = store.claim_inbox("p2", 10, lease).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].seq, second[0].seq);
    assert!(first[0].seq < second[0].seq, "oldest first");
    assert_eq!(first[0].signers, a.signers);
    assert!(
        store.claim_inbox("p3", 10, lease).await.unwrap().is_empty(),
        "leased"
    );
    store
        .finish_inbox(first[0].seq, "posting stored")
        .await
        .unwrap();
    // A failed projection is retried later, not at once.
    store
        .retry_inbox(
            second[0].seq,
            "actor unreachable",
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    assert!(store.claim_inbox("p3", 10, lease).await.unwrap().is_empty());
    // A lease that expired (a dead process) lets another process take the item.
    store
        .retry_inbox(second[0].seq, "x", Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = store
        .claim_inbox("p4", 10, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2, "each claim counts as an attempt");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let taken_over = store.claim_inbox("p5", 10, lease).await.unwrap();
    assert_eq!(taken_over.len(), 1, "the expired lease was taken over");
    store.finish_inbox(taken_over[0].seq, "done").await.unwrap();
    let stats = store.inbox_stats().await.unwrap();
    assert_eq!((stats.total, stats.unprocessed), (2, 0));
    let (entry, outcome) = store.inbox_entry(&a.activity_id).await.unwrap().unwrap();
    assert_eq!(entry.via, Via::Push);
    assert_eq!(outcome.as_deref(), Some("posting stored"));
}

/// A batch of received posting versions is stored and its inbox items recorded in one
/// transaction, in order; a new version of a posting we relayed is relayed again in that
/// transaction, or nothing of the batch is stored.
async fn inbox_posting_batch(store: &Store) {
    let posting = |n: u32| format!("https://a.example/postings/{n}");
    let version = |n: u32, v: i64, name: &str| PostingVersion {
        object_id: posting(n),
        author: "https://a.example/actor".into(),
        relayed_by: None,
        kind: "vacancy".into(),
        version: v,
        document: json!({"id": posting(n), "type": "Posting", "version": v, "name": name,
            "attributedTo": "https://a.example/actor", "postingKind": "vacancy",
            "visibility": "federation"}),
        verified_key: "https://a.example/actor#k1".into(),
    };
    // Our relay (`Announce`) of posting `n`.
    let relay = |n: u32| {
        let id = format!("https://rh.isere.example/activities/relay-{n}");
        NewActivity {
            activity_id: id.clone(),
            activity_type: "Announce".into(),
            object_id: posting(n),
            public: false,
            document: json!({"id": id, "type": "Announce", "actor": ME, "to": [FOLLOWERS]}),
        }
    };
    // We relayed posting 3 earlier.
    store
        .append_activity(&relay(3), Some(&audit()))
        .await
        .unwrap();
    // Posting 4 was deleted before any version reached us: its tombstone wins.
    assert!(
        store
            .apply_posting_delete(&posting(4), "https://a.example/actor", None)
            .await
            .unwrap()
    );
    // We relayed posting 5 too, but what comes now is another relay's copy of it.
    store
        .append_activity(&relay(5), Some(&audit()))
        .await
        .unwrap();
    let mut relayed_five = version(5, 1, "five, relayed");
    relayed_five.relayed_by = Some("https://c.example/actor".into());
    let received: Vec<IncomingActivity> = (1..=8)
        .map(|i| {
            incoming(
                &format!("https://a.example/activities/b{i}"),
                json!({"n": i}),
            )
        })
        .collect();
    store.accept_activities(&received).await.unwrap();
    let claimed = store
        .claim_inbox("p1", 10, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 8);
    let mut relayed_copy = version(3, 1, "relayed");
    relayed_copy.relayed_by = Some("https://c.example/actor".into());
    let versions = [
        version(1, 1, "first"),
        version(1, 2, "second"), // a later version in the same batch replaces it
        version(1, 2, "other"),  // same version, other content: conflict
        version(2, 1, "two"),
        version(1, 1, "first"), // an older version after a newer one is stale
        version(3, 1, "three"), // stored, and we relayed posting 3: to relay again
        version(4, 1, "four"),  // deleted before: the tombstone wins
        relayed_five,           // new to us, a relay's copy: not relayed again (one hop)
    ];
    let items: Vec<BatchedVersion<'_>> = claimed
        .iter()
        .zip(&versions)
        .map(|(e, v)| BatchedVersion {
            inbox_seq: Some(e.seq),
            version: v,
        })
        .collect();
    // The relay cannot be built (its signature fails): nothing is stored, and the items
    // wait for a retry, which relays the version as it stores it. (Storing the version
    // first and relaying it after the commit lost the relay: the retry found the version
    // stored.)
    let err = store
        .apply_posting_versions(&items, &TestRelays { fail: true })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unreadable"), "{err}");
    assert!(store.remote_posting(&posting(1)).await.unwrap().is_none());
    assert!(store.remote_posting(&posting(3)).await.unwrap().is_none());
    assert_eq!(store.inbox_stats().await.unwrap().unprocessed, 8);
    let applied = store
        .apply_posting_versions(&items, &TestRelays::default())
        .await
        .unwrap();
    let stored = |relayed| AppliedVersion {
        apply: PostingApply::Stored,
        relayed,
    };
    let other = |apply| AppliedVersion {
        apply,
        relayed: false,
    };
    assert_eq!(
        applied,
        [
            stored(false),
            stored(false),
            other(PostingApply::VersionConflict),
            stored(false),
            other(PostingApply::Stale),
            stored(true),
            other(PostingApply::Tombstoned),
            stored(false),
        ]
    );
    let outcomes = [
        Some("posting stored"),
        Some("posting stored"),
        Some("version conflict: stored version kept"),
        Some("posting stored"),
        Some("posting already known (same or newer version)"),
        Some("posting stored and relayed again"),
        Some("posting deleted earlier (tombstone wins)"),
        Some("posting stored"),
    ];
    for (a, want) in received.iter().zip(outcomes) {
        let (_, outcome) = store.inbox_entry(&a.activity_id).await.unwrap().unwrap();
        assert_eq!(outcome.as_deref(), want, "{}", a.activity_id);
    }
    assert_eq!(store.inbox_stats().await.unwrap().unprocessed, 0);
    // The relay of posting 3's new version is in the outbox, and only that one.
    let relay3 = store
        .outbox_item(&TestRelays::id_of(&versions[5]))
        .await
        .unwrap()
        .expect("posting 3's new version relayed");
    assert_eq!(
        (
            relay3.activity.activity_type.as_str(),
            relay3.activity.object_id.as_str()
        ),
        ("Announce", posting(3).as_str())
    );
    assert_eq!(relay3.activity.document["object"]["name"], json!("three"));
    for v in [&versions[0], &versions[1], &versions[3], &versions[7]] {
        assert!(
            store
                .outbox_item(&TestRelays::id_of(v))
                .await
                .unwrap()
                .is_none()
        );
    }
    let one = store.remote_posting(&posting(1)).await.unwrap().unwrap();
    assert_eq!(
        (one.version, one.document.unwrap()["name"].clone()),
        (2, json!("second"))
    );
    for n in [1, 2, 3, 5] {
        let item = store.feed_item(&posting(n)).await.unwrap();
        assert!(item.is_some(), "posting {n} is in the feed");
    }
    assert!(store.feed_item(&posting(4)).await.unwrap().is_none());
    let five = store.remote_posting(&posting(5)).await.unwrap().unwrap();
    assert_eq!(five.relayed_by.as_deref(), Some("https://c.example/actor"));
    assert_eq!(five.document.unwrap()["name"], json!("five, relayed"));
    assert_eq!(
        store.feed_item(&posting(1)).await.unwrap().unwrap().name,
        "second"
    );
    // A relay's copy of a posting we relayed is not relayed again (one hop): nothing
    // asks for a relay (which `NoRelays` would refuse).
    let again = store
        .apply_posting_versions(
            &[BatchedVersion {
                inbox_seq: None,
                version: &PostingVersion {
                    version: 2,
                    ..relayed_copy
                },
            }],
            &NoRelays,
        )
        .await
        .unwrap();
    assert_eq!(again, [stored(false)]);
    // Posting 3's author narrows it to a circle: the new version is stored and not
    // relayed (§6.2: only `federation` and `public` postings are relayed).
    let mut narrowed = version(3, 3, "three, for a circle");
    narrowed.document["visibility"] = json!("partner_circle");
    let applied = store
        .apply_posting_versions(
            &[BatchedVersion {
                inbox_seq: None,
                version: &narrowed,
            }],
            &NoRelays,
        )
        .await
        .unwrap();
    assert_eq!(applied, [stored(false)]);
    assert_eq!(
        store
            .remote_posting(&posting(3))
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    // An HR officer's relay built from version 2, appended after version 3 was stored:
    // refused, nothing written (the federation reads the posting again: here version 3,
    // for a circle, which it would not relay; the store does not judge that).
    let hr_relay = |v: i64| NewActivity {
        activity_id: format!("https://rh.isere.example/activities/hr-relay-3-v{v}"),
        activity_type: "Announce".into(),
        object_id: posting(3),
        public: false,
        document: json!({"id": format!("https://rh.isere.example/activities/hr-relay-3-v{v}"),
            "type": "Announce", "actor": ME, "to": [FOLLOWERS]}),
    };
    let err = store
        .append_relay(&hr_relay(2), 2, &audit())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(
        store
            .outbox_item(&hr_relay(2).activity_id)
            .await
            .unwrap()
            .is_none()
    );
    store.append_relay(&hr_relay(3), 3, &audit()).await.unwrap();
    assert!(
        store
            .outbox_item(&hr_relay(3).activity_id)
            .await
            .unwrap()
            .is_some()
    );
    // A deleted posting is not relayed either.
    assert!(
        store
            .apply_posting_delete(&posting(2), "https://a.example/actor", None)
            .await
            .unwrap()
    );
    let mut gone = hr_relay(1);
    gone.object_id = posting(2);
    assert!(store.append_relay(&gone, 1, &audit()).await.is_err());
}

async fn deliveries_fan_out_limits_and_dead_letters(store: &Store) {
    let _b = partner(store, "b.example", PartnershipState::Accepted).await;
    let _c = partner(store, "c.example", PartnershipState::Accepted).await;
    let _d = partner(store, "d.example", PartnershipState::None).await;
    // To our partners: one job per accepted follower (d does not follow us).
    let mut ids = Vec::new();
    for _ in 0..6 {
        let act = activity(&[FOLLOWERS], false);
        ids.push(act.activity_id.clone());
        store.append_activity(&act, Some(&audit())).await.unwrap();
    }
    let jobs = store.deliveries_of(&ids[0]).await.unwrap();
    assert_eq!(
        jobs.iter()
            .map(|(i, s, _)| (i.as_str(), s.as_str()))
            .collect::<Vec<_>>(),
        [
            ("https://b.example/inbox", "pending"),
            ("https://c.example/inbox", "pending")
        ]
    );
    // To one node by name, even one that does not follow us.
    let named = activity(&["https://d.example/actor"], false);
    store.append_activity(&named, None).await.unwrap();
    assert_eq!(
        store.deliveries_of(&named.activity_id).await.unwrap().len(),
        1
    );

    // At most 2 in flight per inbox.
    let lease = Duration::from_secs(60);
    let claimed = store.claim_deliveries("p1", 100, 2, lease).await.unwrap();
    let per_inbox = |inbox: &str| claimed.iter().filter(|j| j.inbox_url == inbox).count();
    assert_eq!(per_inbox("https://b.example/inbox"), 2);
    assert_eq!(per_inbox("https://c.example/inbox"), 2);
    assert_eq!(per_inbox("https://d.example/inbox"), 1);
    // Counting those already in flight: nothing more for b and c now.
    let more = store.claim_deliveries("p2", 100, 2, lease).await.unwrap();
    assert!(more.is_empty(), "{more:?}");
    let job_b = claimed
        .iter()
        .find(|j| j.inbox_url == "https://b.example/inbox")
        .unwrap()
        .clone();
    assert!(job_b.body.contains("\"Create\""));

    // b fails three times in a row: afterwards one probe at a time, and the circuit opens.
    // Recorded together (the workers' group commit), in order: each sees the failures
    // recorded before it in the same transaction.
    let now = OffsetDateTime::now_utc();
    let failure = DeliveryOutcome::Retry {
        status: Some(503),
        code: None,
        error: "503".into(),
        next_attempt_at: now - time::Duration::seconds(1),
        auth_retry: false,
    };
    let b_jobs: Vec<_> = claimed
        .iter()
        .filter(|j| j.inbox_url.contains("b.example"))
        .collect();
    let items: Vec<_> = b_jobs.iter().map(|j| (*j, &failure)).collect();
    let previous = store.record_deliveries(&items).await.unwrap();
    assert_eq!(previous, (0..b_jobs.len() as i64).collect::<Vec<_>>());
    assert_eq!(previous.len(), 2);
    let probe = store.claim_deliveries("p1", 100, 2, lease).await.unwrap();
    assert_eq!(
        probe
            .iter()
            .filter(|j| j.inbox_url.contains("b.example"))
            .count(),
        1,
        "a failing inbox gets one probe"
    );
    let third = probe
        .iter()
        .find(|j| j.inbox_url.contains("b.example"))
        .unwrap()
        .clone();
    store
        .record_delivery(
            &third,
            &DeliveryOutcome::Retry {
                status: None,
                code: None,
                error: "connection refused".into(),
                next_attempt_at: now + time::Duration::hours(1),
                auth_retry: false,
            },
        )
        .await
        .unwrap();
    let health = store.delivery_health().await.unwrap();
    let hb = health
        .iter()
        .find(|h| h.inbox_url.contains("b.example"))
        .unwrap();
    assert_eq!(hb.consecutive_failures, 3);
    assert!(
        hb.circuit_open_until_ms.is_some(),
        "circuit open after 3 failures"
    );
    assert!(
        store
            .claim_deliveries("p1", 100, 2, lease)
            .await
            .unwrap()
            .iter()
            .all(|j| !j.inbox_url.contains("b.example")),
        "no job for an inbox whose circuit is open"
    );
    // The partner is back (the operator says so): everything due now, circuit closed.
    store
        .retry_inbox_now("https://b.example/inbox")
        .await
        .unwrap();
    let back = store.claim_deliveries("p1", 100, 2, lease).await.unwrap();
    assert_eq!(
        back.iter()
            .filter(|j| j.inbox_url.contains("b.example"))
            .count(),
        1,
        "still probing"
    );
    let ok = back
        .iter()
        .find(|j| j.inbox_url.contains("b.example"))
        .unwrap()
        .clone();
    let previous = store
        .record_delivery(&ok, &DeliveryOutcome::Delivered { status: 202 })
        .await
        .unwrap();
    assert_eq!(previous, 3, "the caller learns the partner came back");
    let hb = store
        .delivery_health()
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.inbox_url.contains("b.example"))
        .unwrap();
    assert_eq!(
        (hb.consecutive_failures, hb.circuit_open_until_ms),
        (0, None)
    );
    assert_eq!(hb.delivered, 1);

    // A final refusal is dead-lettered; replay puts it back.
    let c_job = claimed
        .iter()
        .find(|j| j.inbox_url.contains("c.example"))
        .unwrap()
        .clone();
    store
        .record_delivery(
            &c_job,
            &DeliveryOutcome::Dead {
                status: Some(403),
                code: Some("not_a_partner".into()),
                error: "403".into(),
            },
        )
        .await
        .unwrap();
    let dead = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_code.as_deref(), Some("not_a_partner"));
    assert_eq!(dead[0].activity_type, "Create");
    assert_eq!(
        store
            .replay_dead_letters(Some("https://c.example/inbox"))
            .await
            .unwrap(),
        1
    );
    assert!(store.dead_letters(None, 10).await.unwrap().is_empty());
    // A gone recipient: every waiting job of its inbox is dead-lettered.
    let n = store
        .dead_letter_inbox("https://d.example/inbox", "410")
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (jobs, attempts) = store.delivery_attempts().await.unwrap();
    assert_eq!(jobs, 13);
    // b: two failures, the probe's failure, the success; c's dead letter was replayed
    // (its count starts again).
    assert_eq!(attempts, 4);
}

/// Stores a pulled page of `actor`'s outbox with the cursor `next` (a one-minute lease).
async fn accept_pulled(
    store: &Store,
    actor: &str,
    items: &[PulledActivity],
    next: &str,
) -> Vec<PulledAccept> {
    try_accept_pulled(store, actor, items, next, &TestRelays::default())
        .await
        .unwrap()
}

/// [`accept_pulled`] with `relay`, which may fail.
async fn try_accept_pulled(
    store: &Store,
    actor: &str,
    items: &[PulledActivity],
    next: &str,
    relay: &dyn Relayer,
) -> passerelle_node::store::Result<Vec<PulledAccept>> {
    store
        .accept_page(
            items,
            &PageCursor {
                actor_id: actor,
                next_url: Some(next),
                lease: Duration::from_secs(60),
            },
            relay,
        )
        .await
}

/// [`accept_pulled`] for activities that carry no posting version.
async fn accept_page(
    store: &Store,
    actor: &str,
    items: &[IncomingActivity],
    next: &str,
) -> Vec<InboxAccept> {
    let items: Vec<PulledActivity> = items
        .iter()
        .map(|a| PulledActivity::new(a.clone(), None, store.kind()))
        .collect();
    let out = accept_pulled(store, actor, &items, next).await;
    assert!(out.iter().all(|o| o.applied.is_none()), "{out:?}");
    out.into_iter().map(|o| o.accept).collect()
}

/// A pulled page stores the posting versions of its new items in its own transaction: each
/// such item is recorded as projected as it is stored (never claimed), by the rules of
/// §8.5; a new version of a posting we relayed is relayed again in that transaction.
async fn pulled_page_stores_its_versions(store: &Store) {
    let b = partner(store, "b.example", PartnershipState::None).await;
    let lease = Duration::from_secs(60);
    assert_eq!(store.claim_pulls("p1", 10, lease).await.unwrap().len(), 1);
    let posting = |n: u32| format!("https://b.example/postings/{n}");
    let version = |n: u32, v: i64, name: &str| PostingVersion {
        object_id: posting(n),
        author: b.clone(),
        relayed_by: None,
        kind: "vacancy".into(),
        version: v,
        document: json!({"id": posting(n), "type": "Posting", "version": v, "name": name,
            "attributedTo": b, "postingKind": "vacancy", "visibility": "federation"}),
        verified_key: format!("{b}#k1"),
    };
    let pulled_activity = |id: &str, v: Option<&PostingVersion>| {
        let mut a = incoming(
            &format!("https://b.example/activities/{id}"),
            json!({"id": id}),
        );
        a.actor_id = b.clone();
        a.via = Via::Pull;
        if let Some(v) = v {
            a.document = json!({"id": id, "type": "Create", "object": v.document});
        }
        a
    };
    let pulled = |id: &str, v: Option<PostingVersion>| {
        PulledActivity::new(pulled_activity(id, v.as_ref()), v, store.kind())
    };
    // We relayed posting 3 earlier; posting 4 was deleted; posting 2 is known at version 2.
    store
        .append_activity(
            &NewActivity {
                activity_id: "https://rh.isere.example/activities/relay-3".into(),
                activity_type: "Announce".into(),
                object_id: posting(3),
                public: false,
                document: json!({"id": "https://rh.isere.example/activities/relay-3",
                    "type": "Announce", "actor": ME, "to": [FOLLOWERS]}),
            },
            Some(&audit()),
        )
        .await
        .unwrap();
    assert!(
        store
            .apply_posting_delete(&posting(4), &b, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .apply_posting_version(&version(2, 2, "two"))
            .await
            .unwrap(),
        PostingApply::Stored
    );
    let page = vec![
        pulled("1", Some(version(1, 1, "one"))),
        pulled("2", Some(version(2, 1, "two, older"))),
        pulled("3", Some(version(3, 1, "three"))),
        pulled("4", Some(version(4, 1, "four"))),
        pulled("follow", None),
        pulled("5a", Some(version(5, 1, "five"))),
        pulled("5b", Some(version(5, 2, "five, second"))),
    ];
    // The relay of posting 3 cannot be built: nothing of the page is stored, the cursor
    // stays (the puller stores the page without its versions: `federation::sync`).
    let before = store.inbox_stats().await.unwrap().total;
    let err = try_accept_pulled(
        store,
        &b,
        &page,
        "https://b.example/outbox?after=A",
        &TestRelays { fail: true },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unreadable"), "{err}");
    assert_eq!(store.inbox_stats().await.unwrap().total, before);
    assert!(store.remote_posting(&posting(1)).await.unwrap().is_none());
    assert_eq!(store.sync_targets().await.unwrap()[0].items_pulled, 0);
    let out = accept_pulled(store, &b, &page, "https://b.example/outbox?after=A").await;
    let applied: Vec<Option<(PostingApply, &str)>> = out
        .iter()
        .map(|o| {
            assert!(matches!(o.accept, InboxAccept::Stored { .. }), "{o:?}");
            o.applied.map(|a| (a.apply, a.outcome()))
        })
        .collect();
    let stored = Some((PostingApply::Stored, "posting stored"));
    assert_eq!(
        applied,
        [
            stored,
            Some((
                PostingApply::Stale,
                "posting already known (same or newer version)"
            )),
            Some((PostingApply::Stored, "posting stored and relayed again")),
            Some((
                PostingApply::Tombstoned,
                "posting deleted earlier (tombstone wins)"
            )),
            None,
            stored,
            stored,
        ]
    );
    // Recorded as the projection would have recorded them.
    let recorded = [
        Some("posting stored"),
        Some("posting already known (same or newer version)"),
        Some("posting stored and relayed again"),
        Some("posting deleted earlier (tombstone wins)"),
        None,
        Some("posting stored"),
        Some("posting stored"),
    ];
    for (item, want) in page.iter().zip(recorded) {
        let (_, outcome) = store
            .inbox_entry(&item.activity().activity_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome.as_deref(), want, "{}", item.activity().activity_id);
    }
    // Only what has no version is left to the projection.
    assert_eq!(store.inbox_stats().await.unwrap().unprocessed, 1);
    let relay3 = store
        .outbox_item(&TestRelays::id_of(&version(3, 1, "three")))
        .await
        .unwrap()
        .expect("posting 3's new version relayed with the page");
    assert_eq!(relay3.activity.document["object"]["name"], json!("three"));
    let claimed = store.claim_inbox("p1", 10, lease).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|e| e.activity_id.as_str())
            .collect::<Vec<_>>(),
        ["https://b.example/activities/follow"]
    );
    // The versions are in the cache and the feed.
    for (n, v, name) in [
        (1, 1, "one"),
        (2, 2, "two"),
        (3, 1, "three"),
        (5, 2, "five, second"),
    ] {
        let p = store.remote_posting(&posting(n)).await.unwrap().unwrap();
        assert_eq!(
            (p.version, p.document.unwrap()["name"].clone()),
            (v, json!(name))
        );
        assert_eq!(
            store.feed_item(&posting(n)).await.unwrap().unwrap().name,
            name
        );
    }
    assert!(store.feed_item(&posting(4)).await.unwrap().is_none());
    // The same page again: duplicates, nothing stored twice; an id reused with other
    // content stores nothing of its version.
    let forged = version(1, 7, "one, forged");
    let mut reused = pulled_activity("forged", Some(&forged));
    reused.activity_id = page[0].activity().activity_id.clone();
    let mut again = page.clone();
    again.push(PulledActivity::new(reused, Some(forged), store.kind()));
    let out = accept_pulled(store, &b, &again, "https://b.example/outbox?after=B").await;
    let accepts: Vec<InboxAccept> = out.iter().map(|o| o.accept).collect();
    assert_eq!(accepts[..7], [InboxAccept::Duplicate; 7]);
    assert_eq!(accepts[7], InboxAccept::IdReused);
    assert!(out.iter().all(|o| o.applied.is_none()));
    let one = store.remote_posting(&posting(1)).await.unwrap().unwrap();
    assert_eq!(one.version, 1);
    assert_eq!(store.sync_targets().await.unwrap()[0].items_pulled, 15);
}

async fn pulls_due_claimed_and_cursors(store: &Store) {
    let b = partner(store, "b.example", PartnershipState::None).await;
    // Never pulled: due.
    let lease = Duration::from_secs(60);
    let due = store.claim_pulls("p1", 10, lease).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].actor_id, b);
    assert_eq!(due[0].outbox, "https://b.example/outbox");
    assert!(due[0].next_url.is_none());
    assert!(
        store.claim_pulls("p2", 10, lease).await.unwrap().is_empty(),
        "leased"
    );
    // A page and its cursor are saved together: its activities are stored, the cursor
    // moves past it, and its items count (a duplicate too).
    let page = [
        incoming("https://b.example/activities/1", json!({"n": 1})),
        incoming("https://b.example/activities/2", json!({"n": 2})),
    ];
    let before = store.inbox_stats().await.unwrap().total;
    let out = accept_page(
        store,
        &b,
        &page,
        "https://b.example/outbox?after=AAAAAAAAAAA",
    )
    .await;
    assert!(matches!(
        out[..],
        [InboxAccept::Stored { .. }, InboxAccept::Stored { .. }]
    ));
    assert_eq!(store.inbox_stats().await.unwrap().total, before + 2);
    let t = store.sync_targets().await.unwrap();
    assert_eq!(
        t[0].next_url.as_deref(),
        Some("https://b.example/outbox?after=AAAAAAAAAAA")
    );
    assert_eq!(t[0].items_pulled, 2);
    // A page whose items were all refused still moves the cursor.
    let out = accept_page(store, &b, &[], "https://b.example/outbox?after=AAAAAAAAAAE").await;
    assert!(out.is_empty());
    // The same page again: duplicates, counted as pulled items.
    let out = accept_page(
        store,
        &b,
        &page,
        "https://b.example/outbox?after=AAAAAAAAAAE",
    )
    .await;
    assert_eq!(out, [InboxAccept::Duplicate, InboxAccept::Duplicate]);
    assert_eq!(store.inbox_stats().await.unwrap().total, before + 2);
    let started = OffsetDateTime::now_utc();
    store
        .finish_pull(&b, started, None, started + time::Duration::hours(1))
        .await
        .unwrap();
    // Not due before its next time…
    assert!(store.claim_pulls("p2", 10, lease).await.unwrap().is_empty());
    // …unless requested.
    store.request_pull(Some(&b)).await.unwrap();
    let due = store.claim_pulls("p2", 10, lease).await.unwrap();
    assert_eq!(
        due[0].next_url.as_deref(),
        Some("https://b.example/outbox?after=AAAAAAAAAAE")
    );
    assert_eq!(due[0].items_pulled, 4);
    assert!(due[0].last_success_ms.is_some());
    store
        .finish_pull(
            &b,
            OffsetDateTime::now_utc(),
            Some("503"),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        )
        .await
        .unwrap();
    let t = store.sync_targets().await.unwrap();
    assert_eq!(t[0].last_error.as_deref(), Some("503"));
    assert!(t[0].requested_ms.is_none(), "the request was served");
    store.reset_cursor(&b).await.unwrap();
    assert!(store.sync_targets().await.unwrap()[0].next_url.is_none());
    // A partner we stop following is no longer pulled.
    store
        .update_partnership(
            &b,
            &PartnershipChange {
                outgoing: Some((PartnershipState::None, None)),
                incoming: None,
            },
            None,
            None,
        )
        .await
        .unwrap();
    store.request_pull(None).await.unwrap();
    assert!(store.claim_pulls("p3", 10, lease).await.unwrap().is_empty());
}

async fn outbox_visibility_for_signed_requesters(store: &Store) {
    let partner_b = partner(store, "b.example", PartnershipState::Accepted).await;
    let member_c = partner(store, "c.example", PartnershipState::Accepted).await;
    let stranger = "https://z.example/actor".to_owned();
    let circle = store
        .put_circle(
            Uuid::now_v7(),
            "Cercle",
            "https://rh.isere.example/circles/1",
            std::slice::from_ref(&member_c),
            &audit(),
        )
        .await
        .unwrap();
    let public = activity(&[passerelle_protocol::vocab::PUBLIC, FOLLOWERS], true);
    let partners = activity(&[FOLLOWERS], false);
    let to_circle = activity(&[circle.url.as_str()], false);
    let named_z = activity(&[stranger.as_str()], false);
    for a in [&public, &partners, &to_circle, &named_z] {
        store.append_activity(a, None).await.unwrap();
    }
    let viewer = |actor: &str| Viewer {
        actor_id: actor.to_owned(),
        followers_url: FOLLOWERS.to_owned(),
    };
    let seen = |items: Vec<passerelle_node::store::OutboxItem>| -> Vec<String> {
        items.into_iter().map(|i| i.activity.activity_id).collect()
    };
    let anon = seen(store.outbox_visible(0, 100, None).await.unwrap());
    assert_eq!(anon, std::slice::from_ref(&public.activity_id));
    let b = seen(
        store
            .outbox_visible(0, 100, Some(&viewer(&partner_b)))
            .await
            .unwrap(),
    );
    assert_eq!(
        b,
        [public.activity_id.clone(), partners.activity_id.clone()]
    );
    let c = seen(
        store
            .outbox_visible(0, 100, Some(&viewer(&member_c)))
            .await
            .unwrap(),
    );
    assert_eq!(
        c,
        [
            public.activity_id.clone(),
            partners.activity_id.clone(),
            to_circle.activity_id.clone()
        ]
    );
    let z = seen(
        store
            .outbox_visible(0, 100, Some(&viewer(&stranger)))
            .await
            .unwrap(),
    );
    assert_eq!(z, [public.activity_id.clone(), named_z.activity_id.clone()]);
    assert_eq!(
        store
            .outbox_visible_len(Some(&viewer(&member_c)))
            .await
            .unwrap(),
        3
    );
    // Paging with the filter applied first: after the first visible item of c.
    let first = store
        .outbox_visible(0, 1, Some(&viewer(&member_c)))
        .await
        .unwrap();
    let rest = seen(
        store
            .outbox_visible(first[0].seq, 100, Some(&viewer(&member_c)))
            .await
            .unwrap(),
    );
    assert_eq!(
        rest,
        [partners.activity_id.clone(), to_circle.activity_id.clone()]
    );
    // Pages are cut from the union of the public and of each visible audience, each read
    // after the cursor: any page size walks the same activities, in order, each once.
    let mut all_public = vec![public.activity_id.clone()];
    for extra in [
        &public, &to_circle, &partners, &named_z, &to_circle, &public,
    ] {
        let mut again = extra.clone();
        again.activity_id = format!("{}/again-{}", again.activity_id, Uuid::now_v7());
        store.append_activity(&again, None).await.unwrap();
        if again.public {
            all_public.push(again.activity_id);
        }
    }
    let whole = store
        .outbox_visible(0, 100, Some(&viewer(&member_c)))
        .await
        .unwrap();
    assert_eq!(whole.len(), 3 + 5);
    assert!(whole.windows(2).all(|w| w[0].seq < w[1].seq));
    for size in [1, 2, 3] {
        let (mut after, mut walked) = (0, Vec::new());
        loop {
            let page = store
                .outbox_visible(after, size, Some(&viewer(&member_c)))
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            assert!(page.len() <= size as usize);
            after = last.seq;
            walked.extend(page.into_iter().map(|i| i.seq));
        }
        assert_eq!(
            walked,
            whole.iter().map(|i| i.seq).collect::<Vec<_>>(),
            "pages of {size}"
        );
    }
    assert_eq!(
        store
            .outbox_visible_len(Some(&viewer(&member_c)))
            .await
            .unwrap(),
        8
    );
    // The same rule for one document.
    let audience = vec![circle.url.clone()];
    assert!(
        store
            .audience_allows(&audience, Some(&viewer(&member_c)))
            .await
            .unwrap()
    );
    assert!(
        !store
            .audience_allows(&audience, Some(&viewer(&partner_b)))
            .await
            .unwrap()
    );
    assert!(!store.audience_allows(&audience, None).await.unwrap());
    // A blocked partner sees public content only.
    store
        .add_block(&partner_b, BlockKind::Actor, "test", &audit())
        .await
        .unwrap();
    let b = seen(
        store
            .outbox_visible(0, 100, Some(&viewer(&partner_b)))
            .await
            .unwrap(),
    );
    assert_eq!(b, all_public);
    assert!(
        !store
            .audience_allows(&[FOLLOWERS.to_owned()], Some(&viewer(&partner_b)))
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn queue_inbox() {
    on_each_backend!(inbox_dedup_and_leases);
}

#[tokio::test]
async fn queue_inbox_posting_batch() {
    on_each_backend!(inbox_posting_batch);
}

#[tokio::test]
async fn queue_deliveries() {
    on_each_backend!(deliveries_fan_out_limits_and_dead_letters);
}

#[tokio::test]
async fn queue_pulls() {
    on_each_backend!(pulls_due_claimed_and_cursors);
}

#[tokio::test]
async fn queue_pulled_page_versions() {
    on_each_backend!(pulled_page_stores_its_versions);
}

#[tokio::test]
async fn queue_outbox_visibility() {
    on_each_backend!(outbox_visibility_for_signed_requesters);
}

/// PostgreSQL, where writers run side by side: a posting version stored while another
/// transaction is storing a newer version of the same posting (a pulled page beside the
/// projection, or another process) waits for it and finds itself stale. Regression: both
/// read the old row, and the later commit wrote the older version over the newer one.
#[tokio::test]
async fn queue_concurrent_versions_of_one_posting_postgres() {
    use sqlx::Connection as _;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.store().await;
    let b = partner(&store, "b.example", PartnershipState::None).await;
    let lease = Duration::from_secs(60);
    assert_eq!(store.claim_pulls("p1", 10, lease).await.unwrap().len(), 1);
    let id = "https://b.example/postings/1";
    let version = |v: i64| PostingVersion {
        object_id: id.into(),
        author: b.clone(),
        relayed_by: None,
        kind: "vacancy".into(),
        version: v,
        document: json!({"id": id, "type": "Posting", "version": v, "name": format!("v{v}"),
            "attributedTo": b, "postingKind": "vacancy", "visibility": "federation"}),
        verified_key: format!("{b}#k1"),
    };
    assert_eq!(
        store.apply_posting_version(&version(1)).await.unwrap(),
        PostingApply::Stored
    );
    // The page stores version 3 and then waits, uncommitted, at its cursor update.
    let (mut holder, page, page_pid) = stalled_page(
        &db.url,
        &store,
        &b,
        "https://b.example/activities/v3",
        version(3),
    )
    .await;
    // Meanwhile the projection stores version 2 of the same posting.
    let projection_store = store.clone();
    let v2 = version(2);
    let projection = tokio::spawn(async move { projection_store.apply_posting_version(&v2).await });
    blocked_by(&mut holder, page_pid).await;
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    let pulled = page.await.unwrap();
    assert_eq!(
        pulled[0].applied.map(|a| a.apply),
        Some(PostingApply::Stored)
    );
    assert_eq!(projection.await.unwrap().unwrap(), PostingApply::Stale);
    let stored = store.remote_posting(id).await.unwrap().unwrap();
    assert_eq!(stored.version, 3);
    assert_eq!(store.feed_item(id).await.unwrap().unwrap().name, "v3");
    holder.close().await.unwrap();
    store.close().await;
    db.cleanup().await;
}

/// PostgreSQL: the feed's lock is the node's schema's. While a pulled page of a node holds
/// it (its transaction waits, uncommitted, at its cursor update), another node in another
/// schema of the same database stores a posting version: it does not wait for the first
/// node's transaction. Regression: the lock's key was the database's, so every node of a
/// shared database (the tests, a hosting centre de gestion) waited for every other's feed
/// writes, and one stuck transaction stalled them all.
#[tokio::test]
async fn feed_lock_is_per_schema_postgres() {
    use sqlx::Connection as _;
    let (Some(db), Some(other_db)) = (TestDb::postgres().await, TestDb::postgres().await) else {
        return;
    };
    let store = db.store().await;
    let other = other_db.store().await;
    let b = partner(&store, "b.example", PartnershipState::None).await;
    let c = partner(&other, "c.example", PartnershipState::None).await;
    assert_eq!(
        store
            .claim_pulls("p1", 10, Duration::from_secs(60))
            .await
            .unwrap()
            .len(),
        1
    );
    let version = |author: &str, id: &str| PostingVersion {
        object_id: id.into(),
        author: author.into(),
        relayed_by: None,
        kind: "vacancy".into(),
        version: 1,
        document: json!({"id": id, "type": "Posting", "version": 1, "name": "v1",
            "attributedTo": author, "postingKind": "vacancy", "visibility": "federation"}),
        verified_key: format!("{author}#k1"),
    };
    // The page holds its schema's feed lock and waits, uncommitted, at its cursor update.
    let (mut holder, page, _) = stalled_page(
        &db.url,
        &store,
        &b,
        "https://b.example/activities/1",
        version(&b, "https://b.example/postings/1"),
    )
    .await;
    let stored = tokio::time::timeout(
        Duration::from_secs(60),
        other.apply_posting_version(&version(&c, "https://c.example/postings/1")),
    )
    .await
    .expect("a node in another schema waited for this one's feed lock");
    assert_eq!(stored.unwrap(), PostingApply::Stored);
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    assert_eq!(
        page.await.unwrap()[0].applied.map(|a| a.apply),
        Some(PostingApply::Stored)
    );
    holder.close().await.unwrap();
    store.close().await;
    other.close().await;
    db.cleanup().await;
    other_db.cleanup().await;
}

/// PostgreSQL: one officer's update and another's deletion of the same published posting,
/// at once, both end without a deadlock: the deletion takes the feed's lock first, as the
/// update does, and the update then finds the posting gone. Regression: the deletion
/// locked the posting's row first, then waited for the outbox's lock, which the update
/// held while it waited for that row; PostgreSQL broke the cycle by failing one of them.
#[tokio::test]
async fn update_and_delete_of_one_posting_at_once_postgres() {
    use sqlx::Connection as _;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.store().await;
    let id = Uuid::now_v7();
    let url = format!("https://rh.isere.example/postings/{id}");
    let doc = json!({
        "id": url, "type": "Posting", "postingKind": "vacancy", "status": "published",
        "attributedTo": ME, "version": 1, "published": "2026-11-10T10:00:00Z",
        "visibility": "federation", "name": "Juriste marchés publics",
    });
    store
        .create_posting(id, "vacancy", &doc, &audit())
        .await
        .unwrap();
    store
        .update_posting(id, 1, &doc, PostingStatus::Published, None, &audit())
        .await
        .unwrap();
    let change = |kind: &str| NewActivity {
        activity_id: format!("https://rh.isere.example/activities/{}", Uuid::now_v7()),
        activity_type: kind.into(),
        object_id: url.clone(),
        public: true,
        document: json!({"type": kind, "actor": ME, "object": url}),
    };
    // A session holds the posting's row, so that both writers queue behind it.
    let (mut holder, me) = hold_row(&db.url, "postings", "id", &id.to_string()).await;
    let (deleting_store, delete) = (store.clone(), change("Delete"));
    let deletion = tokio::spawn(async move {
        deleting_store
            .delete_posting(id, Some(&delete), &audit())
            .await
    });
    let deleter = blocked_by(&mut holder, me).await;
    let (updating_store, update, updated_doc) = (store.clone(), change("Update"), doc.clone());
    let update = tokio::spawn(async move {
        updating_store
            .update_posting(
                id,
                2,
                &updated_doc,
                PostingStatus::Published,
                Some(&update),
                &audit(),
            )
            .await
    });
    // The update waits too: behind the deletion (the feed's lock) or the holder (the row).
    blocked_by_either(&mut holder, [me, deleter], deleter).await;
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    deletion.await.unwrap().unwrap();
    match update.await.unwrap() {
        Err(StoreError::NotFound { .. }) => {}
        other => panic!("the update should find the posting deleted: {other:?}"),
    }
    assert!(store.posting(id).await.is_err());
    holder.close().await.unwrap();
    store.close().await;
    db.cleanup().await;
}

/// Waits for a session other than `except` that one of `pids` blocks (polled; a guard
/// against a hang, not a timing).
async fn blocked_by_either(conn: &mut sqlx::PgConnection, pids: [i32; 2], except: i32) {
    for _ in 0..400 {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE pid <> $3 \
             AND ($1 = ANY(pg_blocking_pids(pid)) OR $2 = ANY(pg_blocking_pids(pid))) LIMIT 1",
        )
        .bind(pids[0])
        .bind(pids[1])
        .bind(except)
        .fetch_optional(&mut *conn)
        .await
        .unwrap();
        if found.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no session blocked by {pids:?}");
}

/// A pulled page of `actor`'s holding `version`, stored on `store` in a task that waits,
/// uncommitted, at its cursor update: the cursor row is held by the returned connection
/// (on `url`, in a transaction; `COMMIT` on it lets the page end). Returns that
/// connection, the page's task and the page's session.
async fn stalled_page(
    url: &str,
    store: &Store,
    actor: &str,
    activity_id: &str,
    version: PostingVersion,
) -> (
    sqlx::PgConnection,
    tokio::task::JoinHandle<Vec<PulledAccept>>,
    i32,
) {
    let (mut holder, me) = hold_row(url, "sync_state", "actor_id", actor).await;
    let mut activity = incoming(activity_id, json!({"v": version.version}));
    activity.actor_id = actor.to_owned();
    let (page_store, cursor_actor) = (store.clone(), actor.to_owned());
    let page = tokio::spawn(async move {
        page_store
            .accept_page(
                &[PulledActivity::new(
                    activity,
                    Some(version),
                    page_store.kind(),
                )],
                &PageCursor {
                    actor_id: &cursor_actor,
                    next_url: Some("https://b.example/outbox?after=A"),
                    lease: Duration::from_secs(60),
                },
                &NoRelays,
            )
            .await
            .unwrap()
    });
    let page_pid = blocked_by(&mut holder, me).await;
    (holder, page, page_pid)
}

/// A session on `url` holding, in an open transaction, the row of `table` whose `column`
/// is `value` (`FOR UPDATE`); and its process id.
async fn hold_row(url: &str, table: &str, column: &str, value: &str) -> (sqlx::PgConnection, i32) {
    use sqlx::Connection as _;
    let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 AS x FROM {table} WHERE {column} = $1 FOR UPDATE"
    )))
    .bind(value)
    .fetch_one(&mut holder)
    .await
    .unwrap();
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await
        .unwrap();
    (holder, pid)
}

/// The session that `pid` blocks (polled; a guard against a hang, not a timing).
async fn blocked_by(conn: &mut sqlx::PgConnection, pid: i32) -> i32 {
    for _ in 0..400 {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1",
        )
        .bind(pid)
        .fetch_optional(&mut *conn)
        .await
        .unwrap();
        if let Some(p) = found {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no session blocked by {pid}");
}
