//! Federation between real nodes on loopback ports, each with its own database: the
//! partnership handshake under each policy, publication of every kind of posting to
//! partners (and only to them), updates and deletions by version, relay, signed pulls of
//! the outbox, and catch-up of a node that was stopped while its partner published.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use passerelle_node::store::Via;
use passerelle_tests::{
    Backend, GRENOBLE, ISERE, METROPOLE, Node, example_posting, postgres_available, wait_until,
};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(40);

async fn wait_partners(x: &Node, y: &Node, outgoing: &str, incoming: &str) {
    wait_until(
        &format!(
            "{} sees {}: outgoing {outgoing}, incoming {incoming}",
            x.name, y.name
        ),
        PATIENCE,
        || async {
            x.partner(y)
                .await
                .is_some_and(|p| p["outgoing"] == outgoing && p["incoming"] == incoming)
        },
    )
    .await;
}

async fn partners_both_ways(a: &Node, b: &Node) {
    a.follow(b).await;
    b.follow(a).await;
    wait_partners(a, b, "accepted", "accepted").await;
    wait_partners(b, a, "accepted", "accepted").await;
}

async fn wait_cached(node: &Node, id: &str, version: i64, deleted: bool) {
    wait_until(
        &format!("{} caches {id} v{version} (deleted: {deleted})", node.name),
        PATIENCE,
        || async {
            node.cached_postings()
                .await
                .iter()
                .any(|(pid, v, d)| pid == id && *v == version && *d == deleted)
        },
    )
    .await;
}

fn doc_id(posting: &Value) -> String {
    posting["document"]["id"].as_str().unwrap().to_owned()
}

fn local_id(posting: &Value) -> String {
    posting["id"].as_str().unwrap().to_owned()
}

/// The handshake under `open` and `approval`, every kind of posting published to partners
/// only, update and delete by version, and relay by a third node (including the relay of
/// later versions and of the deletion).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_collectivites_federate_every_kind_of_posting() {
    let backend = if postgres_available().await {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let mut isere = Node::start(&ISERE, Backend::Sqlite).await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    let grenoble = Node::start(&GRENOBLE, backend).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    metropole.set_policy("approval").await;

    // Open policy: accepted at once, both ways.
    partners_both_ways(&isere, &grenoble).await;

    // Approval: the request stays pending until the Métropole's admin accepts it.
    isere.follow(&metropole).await;
    wait_partners(&metropole, &isere, "none", "pending").await;
    wait_partners(&isere, &metropole, "pending", "none").await;
    let pending = metropole.partner(&isere).await.unwrap();
    let (s, b) = metropole
        .post(
            &format!(
                "/api/v1/partners/{}/accept",
                pending["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    wait_partners(&isere, &metropole, "accepted", "none").await;
    // And the Métropole follows the Département back (open: accepted).
    metropole.follow(&isere).await;
    wait_partners(&metropole, &isere, "accepted", "accepted").await;

    // Grenoble publishes one posting of every kind. The project mission goes to a circle
    // holding the Département only; the career offer to the Département by name.
    let (s, circle) = grenoble
        .post(
            "/api/v1/circles",
            &json!({ "name": "Département", "members": [isere.actor()] }),
        )
        .await;
    assert_eq!(s, 201, "{circle}");
    let mut ids = Vec::new();
    for kind in [
        "vacancy",
        "mad-offer",
        "project-mission",
        "facilitation-request",
        "immersion-offer",
        "immersion-swap",
        "training-session",
        "career-offer",
    ] {
        let mut content = example_posting(kind);
        if kind == "project-mission" {
            content["circles"] = json!([circle["url"]]);
        }
        if kind == "career-offer" {
            content["to"] = json!([isere.actor()]);
        }
        let p = grenoble.publish(&content).await;
        ids.push((kind, doc_id(&p), local_id(&p)));
    }
    for (_, id, _) in &ids {
        wait_cached(&isere, id, 2, false).await;
    }
    // The Métropole is no partner of Grenoble: it received none of them.
    assert!(metropole.cached_postings().await.is_empty());

    // The career offer is private: not in Grenoble's public outbox, but in the pages of a
    // signed pull by the Département (checked through what the Département pulled: its
    // inbox holds it both ways). The public outbox holds no career offer.
    let public_outbox = reqwest::get(format!("{}/outbox?after=AAAAAAAAAAA", grenoble.base))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let career = &ids.iter().find(|(k, _, _)| *k == "career-offer").unwrap().1;
    assert!(
        !public_outbox.to_string().contains(career.as_str()),
        "a career offer leaked into the public outbox"
    );

    // The Département relays Grenoble's vacancy to its own partners.
    let (_, vacancy, vacancy_local) = ids
        .iter()
        .find(|(k, _, _)| *k == "vacancy")
        .unwrap()
        .clone();
    let (s, b) = isere
        .post("/api/v1/relays", &json!({ "object": vacancy }))
        .await;
    assert_eq!(s, 201, "{b}");
    wait_cached(&metropole, &vacancy, 2, false).await;
    let relayed = metropole
        .store
        .remote_posting(&vacancy)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(relayed.author, grenoble.actor());
    assert_eq!(relayed.relayed_by.as_deref(), Some(isere.actor().as_str()));
    assert!(relayed.verified_key.unwrap().starts_with(&grenoble.actor()));
    // A relayed posting is not relayed again (one hop).
    let (s, b) = metropole
        .post("/api/v1/relays", &json!({ "object": vacancy }))
        .await;
    assert_eq!(s, 409, "{b}");
    // A private posting is not relayed.
    let (s, _) = isere
        .post("/api/v1/relays", &json!({ "object": career }))
        .await;
    assert_eq!(s, 409);

    // Grenoble updates the vacancy: version 3 reaches its partner, and the relayer relays
    // it again.
    let mut content = example_posting("vacancy");
    let update = |content: &Value| {
        let (grenoble, path) = (&grenoble, format!("/api/v1/postings/{vacancy_local}"));
        let content = content.clone();
        async move {
            let (s, b) = grenoble.send(reqwest::Method::PUT, &path, &content).await;
            assert_eq!(s, 200, "{b}");
        }
    };
    content["name"] = json!("Responsable de médiathèque (H/F) — poste modifié");
    update(&content).await;
    wait_cached(&isere, &vacancy, 3, false).await;
    wait_cached(&metropole, &vacancy, 3, false).await;

    // The Département is away when Grenoble updates the vacancy again, and Grenoble's
    // push to it is dropped: it pulls version 4 when it comes back, stores it with the
    // pulled page, and still relays it to the Métropole (§10).
    isere.stop().await;
    content["name"] = json!("Responsable de médiathèque (H/F) — modifié en son absence");
    update(&content).await;
    grenoble
        .execute_sql(&format!(
            "DELETE FROM deliveries WHERE inbox_url LIKE '{}/%'",
            isere.base
        ))
        .await;
    isere.start_again().await;
    wait_cached(&isere, &vacancy, 4, false).await;
    wait_cached(&metropole, &vacancy, 4, false).await;
    let (pulled, outcome) = isere
        .store
        .inbox_entries(Some(&grenoble.actor()), 1)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            pulled.activity_type.as_str(),
            pulled.via,
            outcome.as_deref()
        ),
        (
            "Update",
            Via::Pull,
            Some("posting stored and relayed again")
        )
    );

    // Grenoble deletes it: a tombstone at both, by push and by relay.
    let (s, _) = grenoble
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/postings/{vacancy_local}"),
            &json!(null),
        )
        .await;
    assert_eq!(s, 204);
    wait_until(
        "the tombstone reaches the Département",
        PATIENCE,
        || async {
            isere
                .store
                .remote_posting(&vacancy)
                .await
                .unwrap()
                .is_some_and(|p| p.deleted_at.is_some())
        },
    )
    .await;
    wait_until(
        "the relayed tombstone reaches the Métropole",
        PATIENCE,
        || async {
            metropole
                .store
                .remote_posting(&vacancy)
                .await
                .unwrap()
                .is_some_and(|p| p.deleted_at.is_some())
        },
    )
    .await;
    // The deleted posting's id answers 410 with a Tombstone.
    let r = reqwest::Client::new()
        .get(&vacancy)
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 410);

    // Every delivery of Grenoble reached its inbox exactly once.
    let (s, health) = grenoble.get("/api/v1/deliveries").await;
    assert_eq!(s, 200);
    for h in health.as_array().unwrap() {
        assert_eq!(h["pending"], 0, "{h}");
        assert_eq!(h["dead"], 0, "{h}");
    }
    for n in [isere, metropole, grenoble] {
        n.shutdown().await;
    }
}

/// A node stopped while its partner publishes, updates and deletes — long enough for the
/// partner to dead-letter the deliveries — catches up by pulling the outbox when it
/// starts again, and ends with exactly the partner's postings and versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopped_node_converges_exactly_after_restart() {
    let mut isere = Node::start(&ISERE, Backend::Sqlite).await;
    let mut grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;
    let before = isere.publish(&example_posting("immersion-offer")).await;
    wait_cached(&grenoble, &doc_id(&before), 2, false).await;

    // Isère gives up quickly on a partner that does not answer (development mode allows
    // a dead-letter delay below the 72 hours required in production).
    isere.stop().await;
    isere.config.federation.dead_letter_after_secs = 1;
    isere.restart().await;
    grenoble.stop().await;

    let mut published = Vec::new();
    for kind in [
        "vacancy",
        "mad-offer",
        "training-session",
        "immersion-swap",
        "facilitation-request",
    ] {
        published.push(isere.publish(&example_posting(kind)).await);
    }
    // Two updates and one deletion while Grenoble is away.
    for p in &published[..2] {
        let mut content = example_posting(p["kind"].as_str().unwrap().replace('_', "-").as_str());
        content["name"] = json!(format!(
            "{} (mis à jour)",
            p["document"]["name"].as_str().unwrap()
        ));
        let (s, b) = isere
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/postings/{}", local_id(p)),
                &content,
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let (s, _) = isere
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/postings/{}", local_id(&published[2])),
            &json!(null),
        )
        .await;
    assert_eq!(s, 204);
    // Deliveries to Grenoble fail, then are dead-lettered.
    wait_until(
        "deliveries to Grenoble are dead-lettered",
        PATIENCE,
        || async {
            let (_, health) = isere.get("/api/v1/deliveries").await;
            health
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["dead"].as_i64().unwrap_or(0) >= 5 && h["pending"] == 0)
        },
    )
    .await;

    grenoble.restart().await;
    // Expected: what Isère has now (postings and versions), and the deleted one as a
    // tombstone.
    let mut expected: Vec<(String, i64, bool)> = isere
        .store
        .postings(None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            (
                p.document["id"].as_str().unwrap().to_owned(),
                p.version,
                false,
            )
        })
        .collect();
    expected.push((doc_id(&published[2]), 0, true));
    expected.sort();
    wait_until("Grenoble converges with Isère", PATIENCE, || async {
        let got: Vec<(String, i64, bool)> = grenoble
            .cached_postings()
            .await
            .into_iter()
            .map(|(id, v, d)| (id, if d { 0 } else { v }, d))
            .collect();
        got == expected
    })
    .await;
    let pulled = grenoble
        .store
        .inbox_entries(Some(&isere.actor()), 500)
        .await
        .unwrap();
    assert!(
        pulled
            .iter()
            .any(|(e, _)| e.via == passerelle_node::store::Via::Pull),
        "the catch-up came by pull"
    );
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// A posting of `actor` numbered `n`, signed with `key` (the specification's vacancy
/// example), as a node stores it in its outbox.
fn signed_posting(
    actor: &str,
    key: &passerelle_protocol::keys::SigningKey,
    key_id: &str,
    n: usize,
) -> Value {
    let base = actor.trim_end_matches("/actor");
    let mut p = example_posting("vacancy");
    let map = p.as_object_mut().unwrap();
    map.insert("@context".into(), passerelle_protocol::vocab::context());
    map.insert(
        "id".into(),
        json!(format!("{base}/postings/{}", uuid::Uuid::now_v7())),
    );
    map.insert("type".into(), json!("Posting"));
    map.insert("attributedTo".into(), json!(actor));
    map.insert("version".into(), json!(1));
    map.insert("published".into(), json!("2026-11-23T08:00:00Z"));
    map.insert("status".into(), json!("published"));
    map.insert("visibility".into(), json!("federation"));
    map.insert("to".into(), json!([format!("{base}/followers")]));
    map.insert("title".into(), json!(format!("Poste n° {n}")));
    let options =
        passerelle_protocol::proof::ProofOptions::new(key_id, time::OffsetDateTime::now_utc());
    passerelle_protocol::proof::sign(p, key, &options).unwrap()
}

/// A catch-up over several outbox pages (pages are fetched ahead and their activities
/// verified on several threads): every valid activity is stored once, by pull, in the
/// order of the partner's outbox; an activity with a broken proof and one by another
/// actor are refused and counted once each; the pulled-activities counter counts each
/// stored activity once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_over_several_pages_keeps_order_and_refusals() {
    catch_up_over_several_pages(Backend::Sqlite).await;
}

/// The same on PostgreSQL (its own paging query and transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn catch_up_over_several_pages_keeps_order_and_refusals_postgres() {
    if !postgres_available().await {
        eprintln!("PostgreSQL not available: skipped");
        return;
    }
    catch_up_over_several_pages(Backend::Postgres).await;
}

async fn catch_up_over_several_pages(backend: Backend) {
    let mut isere = Node::start(&ISERE, backend).await;
    let mut grenoble = Node::start(&GRENOBLE, backend).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;
    let known: std::collections::BTreeSet<String> = grenoble
        .store
        .inbox_entries(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.activity_id)
        .collect();
    grenoble.stop().await;
    isere.stop().await;

    // 229 valid activities (three pages of at most 100 with the three refused ones) while
    // Grenoble is away; the pushes are dropped so that it can only pull.
    let (key, key_id) = passerelle_tests::node_key(&isere).await;
    let actor = isere.actor();
    let stranger_key = passerelle_protocol::keys::SigningKey::generate().unwrap();
    let mut valid = Vec::new();
    // The postings of activities 149 to 151.
    let mut around_150 = Vec::new();
    for i in 0..232 {
        let mut doc = passerelle_tests::signed_activity(
            &actor,
            &key,
            &key_id,
            json!({"type": "Create", "object": signed_posting(&actor, &key, &key_id, i),
                   "to": [format!("{}/followers", actor.trim_end_matches("/actor"))]}),
        );
        match i {
            // Changed after signing: its proof does not verify.
            60 => doc["object"]["title"] = json!("Poste modifié après signature"),
            // A posting whose name holds a NUL character, which no message may carry
            // (a database cannot store it): refused as `validation_failed`, the pull goes
            // on. Regression: it was accepted, and on PostgreSQL its page could not be
            // stored with its postings.
            100 => {
                let mut posting = signed_posting(&actor, &key, &key_id, i);
                posting["name"] = json!("Poste\u{0} n° 100");
                posting.as_object_mut().unwrap().remove("proof");
                let options = passerelle_protocol::proof::ProofOptions::new(
                    &key_id,
                    time::OffsetDateTime::now_utc(),
                );
                let posting = passerelle_protocol::proof::sign(posting, &key, &options).unwrap();
                doc = passerelle_tests::signed_activity(
                    &actor,
                    &key,
                    &key_id,
                    json!({"type": "Create", "object": posting,
                           "to": [format!("{}/followers", actor.trim_end_matches("/actor"))]}),
                );
            }
            // Another node's activity in Isère's outbox: not Isère's to serve.
            170 => {
                doc = passerelle_tests::signed_activity(
                    "http://127.0.0.1:9/actor",
                    &stranger_key,
                    "http://127.0.0.1:9/actor#k",
                    json!({"type": "Create",
                           "object": signed_posting("http://127.0.0.1:9/actor", &stranger_key, "http://127.0.0.1:9/actor#k", i),
                           "to": [format!("{}/followers", actor.trim_end_matches("/actor"))]}),
                );
            }
            _ => valid.push(doc["id"].as_str().unwrap().to_owned()),
        }
        if (149..=151).contains(&i) {
            around_150.push(doc["object"]["id"].as_str().unwrap().to_owned());
        }
        isere
            .store
            .append_activity(
                &passerelle_node::store::NewActivity {
                    activity_id: doc["id"].as_str().unwrap().to_owned(),
                    activity_type: "Create".into(),
                    object_id: doc["object"]["id"].as_str().unwrap().to_owned(),
                    public: false,
                    document: doc,
                },
                None,
            )
            .await
            .unwrap();
    }
    isere.execute_sql("DELETE FROM deliveries").await;
    // Grenoble's database refuses to store posting 150 (as it would a value beyond one of
    // its limits): its page cannot be stored with its postings, and is stored for the
    // projection instead, which stores the others (the pull goes on).
    grenoble
        .execute_sql(match backend {
            Backend::Sqlite => {
                r#"CREATE TRIGGER refuse_150 BEFORE INSERT ON remote_postings
                   WHEN NEW.document LIKE '%"Poste n° 150"%'
                   BEGIN SELECT RAISE(ABORT, 'posting 150 refused by the test'); END;"#
            }
            Backend::Postgres => {
                r#"CREATE FUNCTION refuse_150() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN
                     IF NEW.document LIKE '%"Poste n° 150"%' THEN
                       RAISE EXCEPTION 'posting 150 refused by the test';
                     END IF;
                     RETURN NEW;
                   END $$;
                   CREATE TRIGGER refuse_150 BEFORE INSERT ON remote_postings
                   FOR EACH ROW EXECUTE FUNCTION refuse_150();"#
            }
        })
        .await;
    // Grenoble's cursor is one Isère does not know (as after Isère restored an older
    // backup): Isère answers `cursor_invalid`, and Grenoble forgets the cursor and reads
    // Isère's outbox again from its first page (what it has already is a duplicate).
    // Without that restart nothing below would be pulled.
    let stale = format!(
        "{}/outbox?after=pas-un-curseur",
        actor.trim_end_matches("/actor")
    );
    grenoble
        .execute_sql(&format!(
            "UPDATE sync_state SET next_url = '{stale}' WHERE actor_id = '{actor}'"
        ))
        .await;
    assert!(
        grenoble
            .store
            .sync_targets()
            .await
            .unwrap()
            .iter()
            .any(|t| t.actor_id == actor && t.next_url.as_deref() == Some(stale.as_str())),
        "the stale cursor is in place"
    );
    isere.start_again().await;
    grenoble.start_again().await;

    let new_from_isere = || async {
        let mut got: Vec<_> = grenoble
            .store
            .inbox_entries(Some(&isere.actor()), 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|(e, _)| e)
            .filter(|e| !known.contains(&e.activity_id))
            .collect();
        got.reverse();
        got
    };
    wait_until("Grenoble pulls the 229 activities", PATIENCE, || async {
        new_from_isere().await.len() >= valid.len()
    })
    .await;
    let got = new_from_isere().await;
    let seeded: Vec<&String> = got
        .iter()
        .map(|e| &e.activity_id)
        .filter(|id| valid.contains(id))
        .collect();
    assert_eq!(
        seeded,
        valid.iter().collect::<Vec<_>>(),
        "stored once each, in the order of the outbox"
    );
    assert!(
        got.iter()
            .all(|e| e.via == passerelle_node::store::Via::Pull),
        "by pull only"
    );
    let refused = |code: &'static str| {
        let grenoble = &grenoble;
        async move {
            grenoble
                .metric(&format!(
                    "passerelle_inbox_activities_total{{via=\"pull\",outcome=\"{code}\"}}"
                ))
                .await
        }
    };
    assert_eq!(refused("proof_invalid").await, 1.0);
    assert_eq!(refused("key_actor_mismatch").await, 1.0);
    assert_eq!(refused("validation_failed").await, 1.0);
    // Posting 150's page was stored without its postings; the projection stored its
    // neighbours, and keeps retrying 150.
    wait_until(
        "the projection stores posting 150's neighbours",
        PATIENCE,
        || async {
            grenoble
                .store
                .remote_posting(&around_150[0])
                .await
                .unwrap()
                .is_some()
                && grenoble
                    .store
                    .remote_posting(&around_150[2])
                    .await
                    .unwrap()
                    .is_some()
        },
    )
    .await;
    assert!(
        grenoble
            .store
            .remote_posting(&around_150[1])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        grenoble.metric("passerelle_pulled_activities_total").await,
        got.len() as f64,
        "each stored activity counted once"
    );
    // The cursor was saved with the pages: it points into Isère's outbox, past the
    // pulled items, which it counts (the refused ones are not).
    wait_until("Grenoble's pull ends", PATIENCE, || async {
        let targets = grenoble.store.sync_targets().await.unwrap();
        targets
            .iter()
            .any(|t| t.actor_id == isere.actor() && t.items_pulled >= valid.len() as i64)
    })
    .await;
    let target = grenoble
        .store
        .sync_targets()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.actor_id == isere.actor())
        .unwrap();
    let origin = isere.actor().trim_end_matches("/actor").to_owned();
    assert!(
        target
            .next_url
            .as_deref()
            .is_some_and(|u| u.starts_with(&format!("{origin}/outbox"))),
        "cursor {:?}",
        target.next_url
    );
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// `passerelle keys rotate` while the node runs: the node signs with the new key within
/// seconds, its partner learns it (from the `Update` of the actor, or by refetching on
/// the unknown key id) and accepts what follows, and the posting proved with the old
/// key still verifies against the actor document.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn key_rotation_mid_stream() {
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;
    let old = isere.publish(&example_posting("training-session")).await;
    wait_cached(&grenoble, &doc_id(&old), 2, false).await;
    let (_, old_kid) = passerelle_tests::node_key(&isere).await;

    let (code, out, err) = isere.cli(&["keys", "rotate"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Update of the actor"), "{out}");
    let (_, new_kid) = passerelle_tests::node_key(&isere).await;
    assert_ne!(old_kid, new_kid);
    // The running node moves to the new key (it watches the database).
    wait_until("the node signs with the new key", PATIENCE, || async {
        let p = isere
            .publish(&example_posting("facilitation-request"))
            .await;
        p["document"]["proof"]["verificationMethod"] == new_kid.as_str()
    })
    .await;
    // What it publishes now reaches Grenoble, signed with the new key.
    let fresh = isere.publish(&example_posting("immersion-offer")).await;
    wait_cached(&grenoble, &doc_id(&fresh), 2, false).await;
    let cached = grenoble
        .store
        .remote_posting(&doc_id(&fresh))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cached.verified_key.as_deref(), Some(new_kid.as_str()));
    // The actor lists both keys; the old one with its expiry.
    let actor: Value = reqwest::Client::new()
        .get(isere.actor())
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = actor["assertionMethod"].as_array().unwrap();
    let old_key = keys
        .iter()
        .find(|k| k["id"] == old_kid.as_str())
        .expect("old key listed");
    assert!(old_key["expires"].is_string(), "{old_key}");
    assert!(keys.iter().any(|k| k["id"] == new_kid.as_str()));
    // The posting proved with the old key still verifies with the published old key.
    let public = passerelle_protocol::keys::PublicKey::from_multikey(
        old_key["publicKeyMultibase"].as_str().unwrap(),
    )
    .unwrap();
    let doc = old["document"].clone();
    passerelle_protocol::proof::verify(doc, &[(old_kid.clone(), public)]).unwrap();
    // Grenoble refreshed its copy of Isère's actor (the Update was projected).
    wait_until("Grenoble projected the actor Update", PATIENCE, || async {
        grenoble
            .store
            .inbox_entries(Some(&isere.actor()), 100)
            .await
            .unwrap()
            .iter()
            .any(|(e, outcome)| {
                e.activity_type == "Update" && outcome.as_deref() == Some("actor refreshed")
            })
    })
    .await;
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// A node backed up while it runs (`passerelle backup`), wiped, restored
/// (`passerelle restore`) and started again still federates: its partner accepts its
/// signatures, and what it publishes next arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restored_node_still_federates() {
    let mut isere = Node::start(&ISERE, Backend::Sqlite).await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    grenoble.set_policy("open").await;
    partners_both_ways(&isere, &grenoble).await;
    let before = isere.publish(&example_posting("vacancy")).await;
    wait_cached(&grenoble, &doc_id(&before), 2, false).await;

    let backup = tempfile::tempdir().unwrap();
    let archive = backup.path().join("isere.tar");
    let (code, out, err) = isere.cli(&["backup", "--out", archive.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    isere.stop().await;
    // The disk is lost: database and key file gone.
    let data = isere.config.data.dir.clone();
    std::fs::remove_dir_all(&data).unwrap();
    isere.store.close().await;
    let (code, out, err) = isere.cli(&["restore", archive.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    isere.store =
        passerelle_node::store::Store::connect(isere.config.database.url.as_deref().unwrap(), 2)
            .await
            .unwrap();
    isere.start_again().await;

    // Same partners, same key: what it publishes now is accepted by Grenoble.
    assert!(
        isere
            .partner(&grenoble)
            .await
            .is_some_and(|p| p["incoming"] == "accepted")
    );
    let after = isere.publish(&example_posting("mad-offer")).await;
    wait_cached(&grenoble, &doc_id(&after), 2, false).await;
    let cached = grenoble
        .store
        .remote_posting(&doc_id(&after))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        cached.verified_key,
        grenoble
            .store
            .remote_posting(&doc_id(&before))
            .await
            .unwrap()
            .unwrap()
            .verified_key,
        "signed with the restored key"
    );
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// The partnership's other paths: a `closed` policy refuses, an `Undo` ends our side, a
/// `Reject` of an accepted `Follow` ends theirs, and a block ends a partnership and stops
/// what the blocked node sends — each seen by both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partnership_refused_undone_rejected_and_blocked() {
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    isere.set_policy("closed").await;
    grenoble.set_policy("open").await;
    metropole.set_policy("open").await;

    // Closed: refused at once.
    grenoble.follow(&isere).await;
    wait_partners(&grenoble, &isere, "rejected", "none").await;
    wait_partners(&isere, &grenoble, "none", "rejected").await;

    // Open both ways, then Grenoble stops following the Métropole (Undo).
    partners_both_ways(&grenoble, &metropole).await;
    let m = grenoble.partner(&metropole).await.unwrap();
    let (s, b) = grenoble
        .post(
            &format!("/api/v1/partners/{}/unfollow", m["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    wait_partners(&metropole, &grenoble, "accepted", "none").await;
    // What the Métropole addresses to its partners no longer reaches Grenoble.
    let p = metropole
        .publish(&example_posting("training-session"))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !grenoble
            .cached_postings()
            .await
            .iter()
            .any(|(id, _, _)| id == &doc_id(&p))
    );

    // The Métropole ends Grenoble's following of it the other way: Reject of the accepted
    // Follow (Grenoble follows the Métropole again first).
    grenoble.follow(&metropole).await;
    wait_partners(&metropole, &grenoble, "accepted", "accepted").await;
    let g = metropole.partner(&grenoble).await.unwrap();
    let (s, b) = metropole
        .post(
            &format!("/api/v1/partners/{}/reject", g["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    wait_partners(&grenoble, &metropole, "rejected", "accepted").await;

    // A block: Grenoble blocks the Métropole; the partnership ends and the Métropole's
    // deliveries are refused (403 actor_blocked, dead-lettered at the sender).
    let (s, b) = grenoble
        .post(
            "/api/v1/blocks",
            &json!({ "target": metropole.actor(), "kind": "actor", "reason": "test" }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    wait_partners(&metropole, &grenoble, "rejected", "rejected").await;
    // The Métropole no longer counts Grenoble among its partners: nothing is sent to it
    // (what a blocked node sends anyway is refused with 403 actor_blocked, see
    // tests/tests/inbox.rs).
    let p = metropole.publish(&example_posting("vacancy")).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let create = metropole
        .store
        .outbox(None, None, 100, false)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.activity.object_id == doc_id(&p) && i.activity.activity_type == "Create")
        .unwrap();
    let jobs = metropole
        .store
        .deliveries_of(&create.activity.activity_id)
        .await
        .unwrap();
    assert!(
        jobs.iter()
            .all(|(inbox, _, _)| !inbox.starts_with(&grenoble.base)),
        "{jobs:?}"
    );
    assert!(
        !grenoble
            .cached_postings()
            .await
            .iter()
            .any(|(id, _, _)| id == &doc_id(&p))
    );
    for n in [isere, grenoble, metropole] {
        n.shutdown().await;
    }
}
