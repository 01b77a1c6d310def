//! Fake partner nodes served by the benchmark process: each on its own loopback port (its
//! own origin, so that the node sees distinct partners with distinct inboxes), with an
//! Ed25519 key, a valid `Organization` actor, an empty outbox, and an inbox that answers
//! `202` — and, for the fan-out, really verifies the node's deliveries (the RFC 9421
//! signature with its `Content-Digest`, and the object proofs of the activity and of the
//! embedded posting) before recording the posting as received.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use passerelle_protocol::httpsig::{self, RequestParts, VerifyPolicy};
use passerelle_protocol::keys::{PublicKey, SigningKey};
use passerelle_protocol::proof;
use passerelle_tests::Node;
use serde_json::{Value, json};

use crate::load::Req;

/// One fake partner.
#[derive(Debug)]
pub struct Fake {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `{base}/actor`.
    pub actor: String,
    /// `{actor}#key-1`.
    pub key_id: String,
    /// Its key.
    pub key: SigningKey,
    doc: Value,
}

/// What the fakes received (shared by all of them).
#[derive(Debug, Default)]
pub struct Received {
    /// Verify deliveries (fan-out receivers) or only count them.
    pub verify: bool,
    /// The node's actor, whose keys verify deliveries.
    pub node_actor: String,
    node_keys: tokio::sync::OnceCell<Vec<(String, PublicKey)>>,
    /// Posting id → receivers that have it.
    pub postings: Mutex<HashMap<String, usize>>,
    /// Every `POST` to an inbox.
    pub posts: AtomicUsize,
    /// Deliveries whose verification failed.
    pub failed: AtomicUsize,
    /// When the last posting arrived.
    pub last: Mutex<Option<Instant>>,
}

impl Received {
    async fn keys(&self) -> Vec<(String, PublicKey)> {
        self.node_keys
            .get_or_init(|| async {
                let doc: Value = reqwest::Client::new()
                    .get(&self.node_actor)
                    .header("accept", "application/activity+json")
                    .send()
                    .await
                    .expect("node actor")
                    .json()
                    .await
                    .expect("node actor JSON");
                doc["assertionMethod"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| {
                        Some((
                            k["id"].as_str()?.to_owned(),
                            PublicKey::from_multikey(k["publicKeyMultibase"].as_str()?).ok()?,
                        ))
                    })
                    .collect()
            })
            .await
            .clone()
    }
}

/// A set of fake partners with their listeners.
pub struct Fleet {
    /// The partners.
    pub fakes: Vec<Arc<Fake>>,
    /// What they received.
    pub received: Arc<Received>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

type St = (Arc<Fake>, Arc<Received>);

fn activity_json(v: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/activity+json")],
        v.to_string(),
    )
        .into_response()
}

async fn get_actor(State((fake, _)): State<St>) -> Response {
    activity_json(&fake.doc)
}

async fn get_collection(
    State((fake, _)): State<St>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let id = format!("{}/outbox", fake.base);
    if q.contains_key("page") {
        activity_json(&json!({
            "@context": passerelle_protocol::vocab::context(),
            "id": format!("{id}?page=1"), "type": "OrderedCollectionPage",
            "partOf": id, "orderedItems": []
        }))
    } else {
        activity_json(&json!({
            "@context": passerelle_protocol::vocab::context(),
            "id": id, "type": "OrderedCollection", "totalItems": 0,
            "first": format!("{id}?page=1")
        }))
    }
}

async fn post_inbox(State((fake, got)): State<St>, headers: HeaderMap, body: Bytes) -> StatusCode {
    got.posts.fetch_add(1, Ordering::Relaxed);
    let Ok(doc) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let posting = (doc["type"] == "Create" && doc["object"]["type"] == "Posting")
        .then(|| doc["object"]["id"].as_str().map(str::to_owned))
        .flatten();
    let Some(posting) = posting else {
        return StatusCode::ACCEPTED;
    };
    if got.verify && !verify_delivery(&fake, &got, &headers, &body, doc).await {
        got.failed.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    *got.postings
        .lock()
        .expect("lock")
        .entry(posting)
        .or_default() += 1;
    *got.last.lock().expect("lock") = Some(Instant::now());
    StatusCode::ACCEPTED
}

/// The checks a receiving node makes, without its database: `Content-Digest`, the RFC 9421
/// signature by the node's key, the proof of the activity and of the embedded posting.
async fn verify_delivery(
    fake: &Fake,
    got: &Received,
    headers: &HeaderMap,
    body: &[u8],
    doc: Value,
) -> bool {
    let keys = got.keys().await;
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let Some(digest) = refs.iter().find(|(n, _)| *n == "content-digest") else {
        return false;
    };
    if passerelle_protocol::digest::verify_content_digest(digest.1, body).is_err() {
        return false;
    }
    let target = format!("{}/inbox", fake.base);
    let parts = RequestParts {
        method: "POST",
        target_uri: &target,
        headers: &refs,
        body,
    };
    let Ok(candidate) = httpsig::parse_signature(&parts, Some(httpsig::PASSERELLE_LABEL)) else {
        return false;
    };
    let Some((_, key)) = keys.iter().find(|(id, _)| id == candidate.key_id()) else {
        return false;
    };
    let policy = VerifyPolicy::passerelle(time::OffsetDateTime::now_utc().unix_timestamp());
    if candidate.verify(key, &policy).is_err() {
        return false;
    }
    let object = doc["object"].clone();
    proof::verify(doc, &keys).is_ok() && proof::verify(object, &keys).is_ok()
}

impl Fleet {
    /// Starts `n` fake partners, each on its own port; `verify`: check deliveries.
    pub async fn start(n: usize, node_actor: &str, verify: bool) -> Fleet {
        let template: Value = serde_json::from_str(
            &std::fs::read_to_string(
                passerelle_tests::workspace_root().join("spec/examples/organization.json"),
            )
            .expect("organization.json"),
        )
        .expect("organization.json");
        let received = Arc::new(Received {
            verify,
            node_actor: node_actor.to_owned(),
            ..Received::default()
        });
        let mut fakes = Vec::with_capacity(n);
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            let actor = format!("{base}/actor");
            let key_id = format!("{actor}#key-1");
            let key = SigningKey::generate().expect("key");
            let mut doc = template.clone();
            let m = doc.as_object_mut().expect("object");
            for k in ["published", "updated", "summary", "proof"] {
                m.remove(k);
            }
            m.insert("id".into(), json!(actor));
            m.insert("preferredUsername".into(), json!(format!("partner{i}")));
            m.insert("name".into(), json!(format!("Partenaire de test {i}")));
            m.insert("inbox".into(), json!(format!("{base}/inbox")));
            m.insert("outbox".into(), json!(format!("{base}/outbox")));
            m.insert("followers".into(), json!(format!("{base}/followers")));
            m.insert("following".into(), json!(format!("{base}/following")));
            m.insert(
                "endpoints".into(),
                json!({"sharedInbox": format!("{base}/inbox")}),
            );
            m.insert(
                "assertionMethod".into(),
                json!([{
                    "id": key_id, "type": "Multikey", "controller": actor,
                    "publicKeyMultibase": key.public_key().to_multikey()
                }]),
            );
            let fake = Arc::new(Fake {
                base,
                actor,
                key_id,
                key,
                doc,
            });
            let app = Router::new()
                .route("/actor", get(get_actor))
                .route("/outbox", get(get_collection))
                .route("/followers", get(get_collection))
                .route("/following", get(get_collection))
                .route("/inbox", post(post_inbox))
                .with_state((fake.clone(), received.clone()));
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
            fakes.push(fake);
        }
        Fleet {
            fakes,
            received,
            tasks,
        }
    }

    /// Each fake asks `node` (policy `open`) to become its partner; waits until the node
    /// lists every one as accepted.
    pub async fn follow(&self, node: &Node) -> anyhow::Result<()> {
        let inbox = format!("{}/inbox", node.base);
        let target = node.actor();
        let sem = Arc::new(tokio::sync::Semaphore::new(16));
        let mut joins = Vec::new();
        for f in &self.fakes {
            let (f, inbox, target, sem) = (f.clone(), inbox.clone(), target.clone(), sem.clone());
            joins.push(tokio::spawn(async move {
                let _permit = sem.acquire().await;
                let follow = passerelle_tests::signed_activity(
                    &f.actor,
                    &f.key,
                    &f.key_id,
                    json!({"type": "Follow", "object": target, "to": [target]}),
                );
                let body = serde_json::to_vec(&follow).expect("json");
                passerelle_tests::post_signed(
                    &inbox,
                    &body,
                    &f.key,
                    &f.key_id,
                    passerelle_tests::unix_now(),
                )
                .await
            }));
        }
        for j in joins {
            let (status, code) = j.await?;
            anyhow::ensure!(status == 202, "Follow refused: {status} {code}");
        }
        let deadline = Instant::now() + Duration::from_secs(120 + self.fakes.len() as u64 / 5);
        loop {
            let (s, list) = node.get("/api/v1/partners").await;
            anyhow::ensure!(s == 200, "partners: {s} {list}");
            let accepted = list
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["incoming"] == "accepted")
                .count();
            if accepted >= self.fakes.len() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {accepted} of {} partnerships accepted",
                self.fakes.len()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A posting of `actor`, signed with `key` (content: the specification's vacancy example,
/// about 2 KB compact).
pub fn posting(actor: &str, key: &SigningKey, key_id: &str, n: usize) -> Value {
    let base = actor.trim_end_matches("/actor");
    let mut p = passerelle_tests::example_posting("vacancy");
    let map = p.as_object_mut().expect("object");
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
    if let Some(t) = map.get("title").and_then(Value::as_str) {
        let t = format!("{t} (n° {n})");
        map.insert("title".into(), json!(t));
    }
    let options =
        passerelle_protocol::proof::ProofOptions::new(key_id, time::OffsetDateTime::now_utc());
    proof::sign(p, key, &options).expect("sign posting")
}

/// A `Create` of a fresh posting by `actor`, both signed (two object proofs).
pub fn create_posting(actor: &str, key: &SigningKey, key_id: &str, n: usize) -> Value {
    let base = actor.trim_end_matches("/actor");
    passerelle_tests::signed_activity(
        actor,
        key,
        key_id,
        json!({
            "type": "Create",
            "object": posting(actor, key, key_id, n),
            "to": [format!("{base}/followers")],
        }),
    )
}

/// The signed `POST` of `body` to `inbox` by key `key_id` (transport signature and
/// `Content-Digest`, as a node's delivery worker sends it).
pub fn signed_post(
    inbox: &str,
    body: Vec<u8>,
    key: &SigningKey,
    key_id: &str,
    created: i64,
) -> Req {
    let ct = "application/activity+json";
    let signed = httpsig::sign_passerelle_request(
        "POST",
        inbox,
        &[("content-type", ct)],
        &body,
        key,
        key_id,
        created,
    )
    .expect("sign request");
    let mut headers = vec![
        ("content-type".to_owned(), ct.to_owned()),
        (
            "signature-input".to_owned(),
            signed.signature.signature_input,
        ),
        ("signature".to_owned(), signed.signature.signature),
    ];
    if let Some(d) = signed.content_digest {
        headers.push(("content-digest".to_owned(), d));
    }
    Req {
        url: inbox.to_owned(),
        headers,
        body: Bytes::from(body),
    }
}

/// `n` signed `Create`s of postings, spread over `fakes` (round robin), each as a signed
/// `POST` to `inbox`; built on every core.
pub async fn inbox_requests(fakes: &[Arc<Fake>], inbox: &str, n: usize) -> Vec<Req> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let created = passerelle_tests::unix_now();
    let mut joins = Vec::new();
    for t in 0..threads {
        let fakes = fakes.to_vec();
        let inbox = inbox.to_owned();
        joins.push(tokio::task::spawn_blocking(move || {
            (0..n)
                .filter(|i| i % threads == t)
                .map(|i| {
                    let f = &fakes[i % fakes.len()];
                    let act = create_posting(&f.actor, &f.key, &f.key_id, i);
                    let body = serde_json::to_vec(&act).expect("json");
                    signed_post(&inbox, body, &f.key, &f.key_id, created)
                })
                .collect::<Vec<_>>()
        }));
    }
    let mut out = Vec::with_capacity(n);
    for j in joins {
        out.extend(j.await.expect("build requests"));
    }
    out
}
