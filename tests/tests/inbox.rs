//! The inbox of a running node against duplicated, replayed, expired, tampered and
//! wrongly-signed activities: each is refused with the status and code of the protocol
//! (spec/protocol.md §12), and none changes anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use passerelle_tests::{
    Backend, GRENOBLE, ISERE, METROPOLE, Node, example_posting, node_key, post_signed,
    signed_activity, unix_now, wait_until,
};
use serde_json::{Value, json};

/// A posting of the Métropole, signed by it (content from the spec's examples).
fn posting_of(node: &Node, key: &passerelle_protocol::keys::SigningKey, key_id: &str) -> Value {
    let mut p = example_posting("vacancy");
    let map = p.as_object_mut().unwrap();
    map.insert("@context".into(), passerelle_protocol::vocab::context());
    map.insert(
        "id".into(),
        json!(format!("{}/postings/{}", node.base, uuid::Uuid::now_v7())),
    );
    map.insert("type".into(), json!("Posting"));
    map.insert("attributedTo".into(), json!(node.actor()));
    map.insert("version".into(), json!(1));
    map.insert("published".into(), json!("2026-11-23T08:00:00Z"));
    map.insert("status".into(), json!("published"));
    map.insert("to".into(), json!([format!("{}/followers", node.base)]));
    let options =
        passerelle_protocol::proof::ProofOptions::new(key_id, time::OffsetDateTime::now_utc());
    passerelle_protocol::proof::sign(p, key, &options).unwrap()
}

fn create(
    node: &Node,
    key: &passerelle_protocol::keys::SigningKey,
    key_id: &str,
    posting: Value,
) -> Value {
    signed_activity(
        &node.actor(),
        key,
        key_id,
        json!({
            "type": "Create",
            "object": posting,
            "to": [format!("{}/followers", node.base)],
        }),
    )
}

async fn snapshot(node: &Node) -> (i64, Vec<(String, i64, bool)>) {
    (
        node.store.inbox_stats().await.unwrap().total,
        node.cached_postings().await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_activities_are_refused_and_change_nothing() {
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    let stranger = Node::start(&GRENOBLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    metropole.set_policy("open").await;
    isere.follow(&metropole).await;
    metropole.follow(&isere).await;
    wait_until("partners", Duration::from_secs(30), || async {
        isere
            .partner(&metropole)
            .await
            .is_some_and(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
    })
    .await;
    // Let the handshake's own activities be stored and projected.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let inbox = format!("{}/inbox", isere.base);
    let (mkey, mkid) = node_key(&metropole).await;
    let (ikey, ikid) = node_key(&isere).await;
    let now = unix_now();

    // A valid Create: accepted.
    let good = create(
        &metropole,
        &mkey,
        &mkid,
        posting_of(&metropole, &mkey, &mkid),
    );
    let body = serde_json::to_vec(&good).unwrap();
    assert_eq!(
        post_signed(&inbox, &body, &mkey, &mkid, now).await,
        (202, String::new())
    );
    let good_id = good["object"]["id"].as_str().unwrap().to_owned();
    wait_until("the posting is cached", Duration::from_secs(20), || async {
        isere
            .cached_postings()
            .await
            .iter()
            .any(|(id, _, _)| id == &good_id)
    })
    .await;
    let before = snapshot(&isere).await;

    // Replay of the same activity (same bytes, fresh signature): 202, nothing new.
    assert_eq!(
        post_signed(&inbox, &body, &mkey, &mkid, now).await,
        (202, String::new())
    );
    // Same id, other content: refused.
    let mut reused = good.clone();
    reused.as_object_mut().unwrap().remove("proof");
    reused["published"] = json!("2026-11-24T08:00:00Z");
    let reused = passerelle_protocol::proof::sign(
        reused,
        &mkey,
        &passerelle_protocol::proof::ProofOptions::new(&mkid, time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    let reused_body = serde_json::to_vec(&reused).unwrap();
    assert_eq!(
        post_signed(&inbox, &reused_body, &mkey, &mkid, now).await,
        (409, "activity_id_reused".into())
    );

    let fresh = || {
        create(
            &metropole,
            &mkey,
            &mkid,
            posting_of(&metropole, &mkey, &mkid),
        )
    };
    let fresh_body = || serde_json::to_vec(&fresh()).unwrap();
    // Expired and future `created`.
    assert_eq!(
        post_signed(&inbox, &fresh_body(), &mkey, &mkid, now - 600).await,
        (401, "signature_expired".into())
    );
    assert_eq!(
        post_signed(&inbox, &fresh_body(), &mkey, &mkid, now + 600).await,
        (401, "signature_expired".into())
    );
    // A key of node A (Isère) signing an activity of node B (Métropole).
    assert_eq!(
        post_signed(&inbox, &fresh_body(), &ikey, &ikid, now).await,
        (401, "key_actor_mismatch".into())
    );
    // A key id the actor does not list.
    let bogus_kid = format!("{}#key-does-not-exist", metropole.actor());
    assert_eq!(
        post_signed(&inbox, &fresh_body(), &mkey, &bogus_kid, now).await,
        (401, "key_unknown".into())
    );
    // The object's proof altered after signing: the activity proof no longer verifies.
    let mut tampered = fresh();
    tampered["object"]["name"] = json!("Offre falsifiée");
    assert_eq!(
        post_signed(
            &inbox,
            &serde_json::to_vec(&tampered).unwrap(),
            &mkey,
            &mkid,
            now
        )
        .await,
        (400, "proof_invalid".into())
    );
    // No proof at all.
    let mut unproved = fresh();
    unproved.as_object_mut().unwrap().remove("proof");
    assert_eq!(
        post_signed(
            &inbox,
            &serde_json::to_vec(&unproved).unwrap(),
            &mkey,
            &mkid,
            now
        )
        .await,
        (400, "proof_missing".into())
    );
    // A posting whose id is on another origin than its author.
    let mut foreign = posting_of(&metropole, &mkey, &mkid);
    foreign.as_object_mut().unwrap().remove("proof");
    foreign["id"] = json!(format!(
        "{}/postings/{}",
        stranger.base,
        uuid::Uuid::now_v7()
    ));
    let foreign = passerelle_protocol::proof::sign(
        foreign,
        &mkey,
        &passerelle_protocol::proof::ProofOptions::new(&mkid, time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    let act = create(&metropole, &mkey, &mkid, foreign);
    assert_eq!(
        post_signed(
            &inbox,
            &serde_json::to_vec(&act).unwrap(),
            &mkey,
            &mkid,
            now
        )
        .await,
        (403, "origin_mismatch".into())
    );
    // An Announce embedding a forged posting: attributed to Grenoble, proved by the
    // Métropole's key.
    let mut forged = posting_of(&metropole, &mkey, &mkid);
    forged.as_object_mut().unwrap().remove("proof");
    forged["id"] = json!(format!(
        "{}/postings/{}",
        stranger.base,
        uuid::Uuid::now_v7()
    ));
    forged["attributedTo"] = json!(stranger.actor());
    forged["to"] = json!([format!("{}/followers", stranger.base)]);
    let forged = passerelle_protocol::proof::sign(
        forged,
        &mkey,
        &passerelle_protocol::proof::ProofOptions::new(&mkid, time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    let announce = signed_activity(
        &metropole.actor(),
        &mkey,
        &mkid,
        json!({ "type": "Announce", "object": forged, "to": [format!("{}/followers", metropole.base)] }),
    );
    assert_eq!(
        post_signed(
            &inbox,
            &serde_json::to_vec(&announce).unwrap(),
            &mkey,
            &mkid,
            now
        )
        .await,
        (400, "proof_signer_mismatch".into())
    );
    // A node that is no partner may only ask to become one.
    let (skey, skid) = node_key(&stranger).await;
    let from_stranger = create(&stranger, &skey, &skid, posting_of(&stranger, &skey, &skid));
    assert_eq!(
        post_signed(
            &inbox,
            &serde_json::to_vec(&from_stranger).unwrap(),
            &skey,
            &skid,
            now
        )
        .await,
        (403, "not_a_partner".into())
    );
    // A posting whose name holds U+0000 (valid JSON, which no message may carry: a
    // database cannot store it), properly signed. Regression: it was accepted (202).
    let mut nul = posting_of(&metropole, &mkey, &mkid);
    nul["name"] = json!("Poste\u{0} piégé");
    nul.as_object_mut().unwrap().remove("proof");
    let nul = passerelle_protocol::proof::sign(
        nul,
        &mkey,
        &passerelle_protocol::proof::ProofOptions::new(&mkid, time::OffsetDateTime::now_utc()),
    )
    .unwrap();
    let nul = create(&metropole, &mkey, &mkid, nul);
    assert_eq!(
        post_signed(
            &inbox,
            &serde_json::to_vec(&nul).unwrap(),
            &mkey,
            &mkid,
            now
        )
        .await,
        (422, "validation_failed".into())
    );
    // Unknown activity type.
    let note = signed_activity(
        &metropole.actor(),
        &mkey,
        &mkid,
        json!({ "type": "Like", "object": good_id, "to": [isere.actor()] }),
    );
    assert_eq!(
        post_signed(
            &inbox,
            &serde_json::to_vec(&note).unwrap(),
            &mkey,
            &mkid,
            now
        )
        .await,
        (400, "unknown_type".into())
    );

    // Transport-level refusals, without a valid signature.
    let client = reqwest::Client::new();
    let raw = |ct: &'static str, body: Vec<u8>| {
        let client = client.clone();
        let inbox = inbox.clone();
        async move {
            // `Connection: close`: the node closes a connection whose body it refused
            // unread (413), and a pooled client may otherwise send the next request on it
            // before it sees the close (an `IncompleteMessage` error, seen under load).
            let r = client
                .post(&inbox)
                .header("content-type", ct)
                .header("connection", "close")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v["code"].as_str().unwrap_or("").to_owned())
        }
    };
    assert_eq!(
        raw("application/activity+json", fresh_body()).await,
        (400, "digest_missing".into())
    );
    assert_eq!(
        raw("text/plain", fresh_body()).await,
        (415, "unsupported_media_type".into())
    );
    assert_eq!(
        raw("application/activity+json", vec![b' '; 2 * 1024 * 1024]).await,
        (413, "body_too_large".into())
    );
    // With a correct digest but no signature.
    let b = fresh_body();
    let r = client
        .post(&inbox)
        .header("content-type", "application/activity+json")
        .header(
            "content-digest",
            passerelle_protocol::digest::content_digest(&b),
        )
        .body(b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "signature_missing"
    );
    // Signed, but the body sent is not the body signed.
    let signed_for = fresh_body();
    let sent = fresh_body();
    let sig = passerelle_protocol::httpsig::sign_passerelle_request(
        "POST",
        &inbox,
        &[("content-type", "application/activity+json")],
        &signed_for,
        &mkey,
        &mkid,
        now,
    )
    .unwrap();
    let r = client
        .post(&inbox)
        .header("content-type", "application/activity+json")
        .header("content-digest", sig.content_digest.clone().unwrap())
        .header("signature-input", &sig.signature.signature_input)
        .header("signature", &sig.signature.signature)
        .body(sent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "digest_mismatch");
    // Deep nesting and invalid UTF-8 (signed, so they reach the parser).
    let mut deep = String::new();
    for _ in 0..40 {
        deep.push_str("{\"a\":");
    }
    deep.push('1');
    for _ in 0..40 {
        deep.push('}');
    }
    assert_eq!(
        post_signed(&inbox, deep.as_bytes(), &mkey, &mkid, now).await,
        (400, "json_too_deep".into())
    );
    assert_eq!(
        post_signed(
            &inbox,
            b"{\"type\":\"Create\",\"x\":\"\xff\xfe\"}",
            &mkey,
            &mkid,
            now
        )
        .await,
        (400, "json_invalid".into())
    );
    // A duplicate member name, a classic smuggling trick.
    assert_eq!(
        post_signed(
            &inbox,
            br#"{"type":"Follow","actor":"a","actor":"b"}"#,
            &mkey,
            &mkid,
            now
        )
        .await,
        (400, "json_invalid".into())
    );

    // Nothing changed: the inbox holds what it held, the cache too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(snapshot(&isere).await, before);

    // A blocked node is refused before anything else.
    let (s, b) = isere
        .post(
            "/api/v1/blocks",
            &json!({ "target": metropole.actor(), "kind": "actor", "reason": "test" }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        post_signed(&inbox, &fresh_body(), &mkey, &mkid, now).await,
        (403, "actor_blocked".into())
    );
    assert_eq!(snapshot(&isere).await, before);
    // And the refusals are counted by code.
    let metrics = reqwest::get(format!("{}/metrics", isere.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for code in [
        "signature_expired",
        "key_actor_mismatch",
        "proof_invalid",
        "actor_blocked",
        "duplicate",
    ] {
        assert!(
            metrics.contains(&format!(
                "passerelle_inbox_activities_total{{via=\"push\",outcome=\"{code}\"}}"
            )),
            "{code} not counted:\n{metrics}"
        );
    }
    for n in [isere, metropole, stranger] {
        n.shutdown().await;
    }
}

/// A partner that sends too fast gets `429 rate_limited` with `Retry-After`, which the
/// delivery workers honour: everything arrives, later. An HR API client likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limits_answer_429_and_senders_wait() {
    let isere = Node::start_with(&ISERE, Backend::Sqlite, false, |c| {
        c.federation.inbox_rate_per_second = 2;
        c.federation.inbox_rate_burst = 3;
        c.server.rate_limit_per_second = 5;
        c.server.rate_limit_burst = 10;
    })
    .await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    metropole.set_policy("open").await;
    metropole.follow(&isere).await;
    isere.follow(&metropole).await;
    wait_until("partners", Duration::from_secs(30), || async {
        metropole
            .partner(&isere)
            .await
            .is_some_and(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
    })
    .await;
    // A burst of ten postings from the Métropole: Isère takes 3 at once, then 2 per second.
    let mut ids = Vec::new();
    for _ in 0..10 {
        let p = metropole
            .publish(&example_posting("training-session"))
            .await;
        ids.push(p["document"]["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        wait_until(
            "every posting arrives despite the limit",
            Duration::from_secs(60),
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
    assert!(
        isere
            .metric("passerelle_inbox_activities_total{via=\"push\",outcome=\"rate_limited\"}")
            .await
            > 0.0,
        "the limit was hit"
    );
    let (_, health) = metropole.get("/api/v1/deliveries").await;
    assert!(
        health.as_array().unwrap().iter().all(|h| h["dead"] == 0),
        "nothing dead-lettered: {health}"
    );
    // A direct look at the answer: code, status and Retry-After.
    let (mkey, mkid) = node_key(&metropole).await;
    let inbox = format!("{}/inbox", isere.base);
    let mut limited = None;
    for _ in 0..10 {
        let body = serde_json::to_vec(&create(
            &metropole,
            &mkey,
            &mkid,
            posting_of(&metropole, &mkey, &mkid),
        ))
        .unwrap();
        let r = passerelle_tests::post_signed_raw(&inbox, &body, &mkey, &mkid, unix_now()).await;
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("a burst beyond the limit is refused");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "rate_limited");
    // The HR API: one client beyond its burst is limited; health checks never are.
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(isere.get("/api/v1/partners").await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    for _ in 0..30 {
        let r = reqwest::get(format!("{}/healthz", isere.base))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    isere.shutdown().await;
    metropole.shutdown().await;
}
