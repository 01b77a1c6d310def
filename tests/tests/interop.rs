//! Interoperability of `passerelle_protocol::httpsig` with an independent implementation:
//! PyPI `http-message-signatures` (RFC 9421) and its `ContentDigest` (RFC 9530), driven
//! through `interop/httpsig.py`.
//!
//! Setup (once):
//! ```text
//! interop/setup.sh /tmp/passerelle-interop
//! export PASSERELLE_INTEROP_PYTHON=/tmp/passerelle-interop/bin/python
//! cargo test -p passerelle-tests --test interop
//! ```
//! Without `PASSERELLE_INTEROP_PYTHON` the tests create that venv themselves under
//! `target/interop-venv`; if that fails they print one SKIPPED line, except under `CI` where
//! they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use passerelle_protocol::httpsig::{
    HttpSigError, RequestParts, VerifyPolicy, parse_signature, sign_passerelle_request,
};
use passerelle_protocol::keys::SigningKey;
use serde_json::{Value, json};

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The interpreter of the interop virtualenv, or `None` (after one SKIPPED line) outside CI.
///
/// `PASSERELLE_INTEROP_PYTHON` wins; otherwise the venv is created once under
/// `target/interop-venv` by `interop/setup.sh` (it needs `python3` and PyPI), so that the
/// README's plain `cargo test --workspace` runs these tests too.
fn python(what: &str) -> Option<PathBuf> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(p) = std::env::var_os("PASSERELLE_INTEROP_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let found = VENV.get_or_init(|| {
        let venv = workspace_root().join("target").join("interop-venv");
        let python = venv.join("bin").join("python");
        let ready = venv.join(".passerelle-ready");
        if ready.is_file() && python.is_file() {
            return Ok(python);
        }
        let out = Command::new("sh")
            .arg(workspace_root().join("interop").join("setup.sh"))
            .arg(&venv)
            .output()
            .map_err(|e| format!("cannot run interop/setup.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "interop/setup.sh failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::fs::write(&ready, b"ok").map_err(|e| e.to_string())?;
        Ok(python)
    });
    match found {
        Ok(p) => Some(p.clone()),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!(
                "{what}: no interop virtualenv ({e}), and CI must not skip the interoperability tests"
            )
        }
        Err(e) => {
            eprintln!("SKIPPED {what}: no interop virtualenv ({e}); set PASSERELLE_INTEROP_PYTHON");
            None
        }
    }
}

/// Runs `interop/<script>` with `{"requests": requests}` on stdin; returns its results.
fn run(python: &PathBuf, script: &str, requests: Vec<Value>) -> Vec<Value> {
    let mut child = Command::new(python)
        .arg(workspace_root().join("interop").join(script))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let input = serde_json::to_vec(&json!({ "requests": requests })).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["results"].as_array().unwrap().clone()
}

fn now() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_secs()).unwrap()
}

const KEY_ID: &str = "https://mairie-a.example/actor#key-1";
const INBOX: &str = "https://cdg-b.example/inbox";

fn key() -> SigningKey {
    SigningKey::from_seed(&[0x42; 32])
}

fn body() -> String {
    // About 2 KB with non-ASCII text, like a real posting.
    let mut description = String::new();
    while description.len() < 1800 {
        description.push_str("Poste d'agent d'état civil à temps complet – « accueil », €. ");
    }
    serde_json::to_string(&json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/passerelle/v1"],
        "type": "Create",
        "actor": "https://mairie-a.example/actor",
        "object": {"type": "Posting", "name": "Officier d'état civil", "content": description},
    }))
    .unwrap()
}

/// An owned request as exchanged with the Python side.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    target_uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Req {
    fn to_json(&self) -> Value {
        json!({
            "method": self.method,
            "targetUri": self.target_uri,
            "headers": self.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "body": self.body,
        })
    }

    fn rust_verify(&self, at: i64) -> Result<(), HttpSigError> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            target_uri: &self.target_uri,
            headers: &headers,
            body: self.body.as_bytes(),
        };
        parse_signature(&parts, None)?
            .verify(&key().public_key(), &VerifyPolicy::passerelle(at))
            .map(|_| ())
    }
}

fn rust_signed(method: &str, uri: &str, body: &str, created: i64) -> Req {
    let content_type = [("Content-Type", "application/activity+json")];
    let headers: &[(&str, &str)] = if body.is_empty() { &[] } else { &content_type };
    let signed = sign_passerelle_request(
        method,
        uri,
        headers,
        body.as_bytes(),
        &key(),
        KEY_ID,
        created,
    )
    .unwrap();
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    if let Some(d) = signed.content_digest {
        all.push(("Content-Digest".into(), d));
    }
    all.push(("Signature-Input".into(), signed.signature.signature_input));
    all.push(("Signature".into(), signed.signature.signature));
    Req {
        method: method.into(),
        target_uri: uri.into(),
        headers: all,
        body: body.into(),
    }
}

fn verify_request(req: &Req, public_multikey: &str, at: i64) -> Value {
    let mut v = req.to_json();
    let o = v.as_object_mut().unwrap();
    o.insert("op".into(), json!("verify"));
    o.insert("publicKeyMultibase".into(), json!(public_multikey));
    o.insert("keyId".into(), json!(KEY_ID));
    o.insert("now".into(), json!(at));
    o.insert("maxAge".into(), json!(300));
    o.insert(
        "requireComponents".into(),
        json!(["@method", "@target-uri"]),
    );
    v
}

fn tampered(req: &Req) -> Req {
    let mut t = req.clone();
    t.body = t.body.replacen("Officier", "Officiel", 1);
    assert_ne!(t.body, req.body);
    t
}

#[test]
fn rust_signs_python_verifies() {
    let Some(py) = python("interop: Rust signs, Python verifies") else {
        return;
    };
    let t = now();
    let public = key().public_key().to_multikey();
    let post = rust_signed("POST", INBOX, &body(), t);
    let get = rust_signed("GET", "https://cdg-b.example/outbox?page=2&x=%C3%A9", "", t);
    let other = SigningKey::from_seed(&[0x43; 32])
        .public_key()
        .to_multikey();
    let results = run(
        &py,
        "httpsig.py",
        vec![
            verify_request(&post, &public, t),
            verify_request(&get, &public, t),
            verify_request(&tampered(&post), &public, t),
            verify_request(&post, &other, t),
        ],
    );
    assert_eq!(results[0]["ok"], true, "{}", results[0]);
    assert_eq!(results[0]["digestChecked"], true);
    assert_eq!(
        results[0]["coveredComponents"],
        json!([
            "\"@method\"",
            "\"@target-uri\"",
            "\"content-digest\"",
            "\"content-type\"",
            "\"@signature-params\""
        ])
    );
    assert_eq!(results[0]["parameters"]["alg"], "ed25519");
    assert_eq!(results[0]["parameters"]["keyid"], KEY_ID);
    assert_eq!(results[1]["ok"], true, "{}", results[1]);
    // Tampered body: both refuse.
    assert_eq!(results[2]["ok"], false, "{}", results[2]);
    assert!(
        results[2]["error"]
            .as_str()
            .unwrap()
            .contains("Content-Digest"),
        "{}",
        results[2]
    );
    assert!(matches!(
        tampered(&post).rust_verify(t),
        Err(HttpSigError::ContentDigest(_))
    ));
    // Another key: both refuse.
    assert_eq!(results[3]["ok"], false, "{}", results[3]);
    assert_eq!(post.rust_verify(t), Ok(()));
}

#[test]
fn python_signs_rust_verifies() {
    let Some(py) = python("interop: Python signs, Rust verifies") else {
        return;
    };
    let t = now();
    let secret = key().to_multikey_secret();
    let sign = |method: &str, uri: &str, body: &str| {
        let headers = if body.is_empty() {
            json!([["Accept", "application/activity+json"]])
        } else {
            json!([["Content-Type", "application/activity+json"]])
        };
        json!({
            "op": "sign", "method": method, "targetUri": uri, "headers": headers, "body": body,
            "secretKeyMultibase": secret.as_str(), "keyId": KEY_ID, "created": t,
            "expires": t + 300, "label": "sig1",
        })
    };
    let results = run(
        &py,
        "httpsig.py",
        vec![
            sign("POST", INBOX, &body()),
            sign("GET", "https://cdg-b.example/actor", ""),
        ],
    );
    let reqs: Vec<Req> = results
        .iter()
        .zip([
            ("POST", INBOX, body()),
            ("GET", "https://cdg-b.example/actor", String::new()),
        ])
        .map(|(r, (method, uri, body))| {
            assert_eq!(r["ok"], true, "{r}");
            Req {
                method: method.into(),
                target_uri: uri.into(),
                headers: r["headers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
                    .collect(),
                body,
            }
        })
        .collect();
    // The Python side chose its own parameter order and computed Content-Digest itself.
    let input = &reqs[0]
        .headers
        .iter()
        .find(|(n, _)| n == "Signature-Input")
        .unwrap()
        .1;
    assert!(input.contains("content-digest"), "{input}");
    for r in &reqs {
        assert_eq!(r.rust_verify(t), Ok(()), "{r:?}");
        assert_eq!(r.rust_verify(t + 10), Ok(()), "{r:?}");
    }
    // Tampered body: both refuse.
    let bad = tampered(&reqs[0]);
    assert!(matches!(
        bad.rust_verify(t),
        Err(HttpSigError::ContentDigest(_))
    ));
    let public = key().public_key().to_multikey();
    let py_verdict = run(&py, "httpsig.py", vec![verify_request(&bad, &public, t)]);
    assert_eq!(py_verdict[0]["ok"], false, "{}", py_verdict[0]);
    // Outside the window: both refuse.
    assert!(matches!(
        reqs[0].rust_verify(t + 301),
        Err(HttpSigError::CreatedTooOld { .. } | HttpSigError::Expired { .. })
    ));
}

/// Every case of our committed vector file gets the same verdict from the independent
/// implementation.
#[test]
fn python_agrees_with_our_vectors() {
    let Some(py) = python("interop: spec/vectors/httpsig") else {
        return;
    };
    let path = workspace_root().join("spec/vectors/httpsig/passerelle-profile.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut requests = Vec::new();
    let mut verdicts = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        let public = group["key"]["publicKeyMultibase"].as_str().unwrap();
        let key_id = group["key"]["verificationMethod"].as_str().unwrap();
        for t in group["tests"].as_array().unwrap() {
            let mut r = t["input"].clone();
            let o = r.as_object_mut().unwrap();
            o.insert("op".into(), json!("verify"));
            o.insert("publicKeyMultibase".into(), json!(public));
            o.insert("keyId".into(), json!(key_id));
            o.insert("maxAge".into(), json!(300));
            o.insert(
                "requireComponents".into(),
                json!(["@method", "@target-uri"]),
            );
            requests.push(r);
            verdicts.push((t["tcId"].clone(), t["result"] == "valid"));
        }
    }
    assert!(verdicts.len() >= 14);
    let results = run(&py, "httpsig.py", requests);
    for ((tc, valid), r) in verdicts.iter().zip(&results) {
        assert_eq!(r["ok"] == true, *valid, "tcId {tc}: {r}");
    }
}

// ---------------------------------------------------------------------------------------
// eddsa-jcs-2022: `passerelle_protocol::proof` against interop/proof.py (PyNaCl + rfc8785
// written from the specification, and apsig). The Python side is itself checked against the
// W3C and FEP-8b32 vectors below.

fn shared_vectors(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("PASSERELLE_SHARED_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/vectors"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what}: {} is missing and CI must not skip", dir.display());
    }
    eprintln!("SKIPPED {what}: {} not found", dir.display());
    None
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn python_proof_helper_matches_published_vectors() {
    let Some(py) = python("interop: eddsa-jcs-2022 Python helper") else {
        return;
    };
    let Some(dir) = shared_vectors("interop: eddsa-jcs-2022 vectors") else {
        return;
    };
    let w3c = dir.join("vc-di-eddsa");
    let pair = read_json(&w3c.join("keyPair.json"));
    let public = pair["publicKeyMultibase"].as_str().unwrap();
    let secret = pair["privateKeyMultibase"].as_str().unwrap();
    let signed = read_json(&w3c.join("eddsa-jcs-2022/signedJCS.json"));
    let unsigned = read_json(&w3c.join("unsigned.json"));
    let mut options = signed["proof"].clone();
    let o = options.as_object_mut().unwrap();
    o.remove("proofValue");
    o.remove("@context");

    let fep = dir.join("fep-8b32/current-2025-10");
    let fep_params = read_json(&fep.join("params-and-intermediates.json"));
    let fep_secret = fep_params["ed25519_secret_key_multibase"].as_str().unwrap();
    let fep_public = SigningKey::from_multikey_secret(fep_secret)
        .unwrap()
        .public_key()
        .to_multikey();
    let fep_signed = read_json(&fep.join("signed.json"));

    let mut requests = vec![
        json!({"op": "verify", "document": signed, "publicKeyMultibase": public}),
        json!({"op": "sign", "document": unsigned, "options": options, "secretKeyMultibase": secret}),
        json!({"op": "verify", "document": fep_signed, "publicKeyMultibase": fep_public}),
        // Right document, wrong key.
        json!({"op": "verify", "document": signed, "publicKeyMultibase": SigningKey::from_seed(&[0x43; 32]).public_key().to_multikey()}),
    ];
    let negatives = read_json(&w3c.join("negative-cases-derived.json"));
    let negatives = negatives["cases"].as_array().unwrap();
    for case in negatives {
        let key = if case["derived_from"].as_str().unwrap().starts_with("fep") {
            fep_public.as_str()
        } else {
            public
        };
        requests
            .push(json!({"op": "verify", "document": case["document"], "publicKeyMultibase": key}));
    }
    let r = run(&py, "proof.py", requests);
    assert_eq!(r[0]["nacl"], true, "{}", r[0]);
    assert_eq!(r[0]["apsig"], true, "{}", r[0]);
    assert_eq!(r[1]["signed"], signed, "PyNaCl + rfc8785 re-signing");
    assert_eq!(r[1]["apsigSigned"], signed, "apsig re-signing");
    assert_eq!(r[2]["nacl"], true, "{}", r[2]);
    assert_eq!(r[2]["apsig"], true, "{}", r[2]);
    assert_eq!(r[3]["nacl"], false, "{}", r[3]);
    for (case, result) in negatives.iter().zip(&r[4..]) {
        assert_eq!(result["nacl"], false, "{}: {result}", case["mutation"]);
    }
}

fn posting() -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/passerelle/v1"],
        "id": "https://mairie-a.example/postings/0192f5a0-7c1e-7d3a-9d2b-4a4c5e6f7a8b",
        "type": "Posting",
        "attributedTo": "https://mairie-a.example/actor",
        "name": "Rédacteur territorial — état civil (h/f)",
        "content": "Poste à temps complet, « accueil » et actes ; rémunération 2 100 € brut.",
        "location": {"type": "Place", "name": "Saint-Étienne", "latitude": 45.4397, "longitude": 4.3872},
        "workingTimePercent": 100,
        "published": "2026-11-23T10:00:00Z",
    })
}

#[test]
fn proofs_rust_and_python_agree() {
    use passerelle_protocol::proof::{self, ProofOptions};
    let Some(py) = python("interop: eddsa-jcs-2022 Rust ⇄ Python") else {
        return;
    };
    let vm = "https://mairie-a.example/actor#key-1";
    let key = key();
    let keys = [(vm.to_owned(), key.public_key())];
    let public = key.public_key().to_multikey();
    let secret = key.to_multikey_secret();
    let created = time::macros::datetime!(2026-11-23 10:00:00 UTC);
    let rust_signed = proof::sign(posting(), &key, &ProofOptions::new(vm, created)).unwrap();
    let mut rust_tampered = rust_signed.clone();
    rust_tampered["location"]["latitude"] = json!(45.4398);
    let options = json!({
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "created": "2026-11-23T10:00:00Z",
        "verificationMethod": vm,
        "proofPurpose": "assertionMethod",
    });
    let r = run(
        &py,
        "proof.py",
        vec![
            json!({"op": "verify", "document": rust_signed, "publicKeyMultibase": public}),
            json!({"op": "verify", "document": rust_tampered, "publicKeyMultibase": public}),
            json!({"op": "sign", "document": posting(), "options": options, "secretKeyMultibase": secret.as_str()}),
        ],
    );
    // Rust signs, Python verifies (both implementations).
    assert_eq!(r[0]["nacl"], true, "{}", r[0]);
    assert_eq!(r[0]["apsig"], true, "{}", r[0]);
    // Tampered: both refuse.
    assert_eq!(r[1]["nacl"], false, "{}", r[1]);
    assert_eq!(r[1]["apsig"], false, "{}", r[1]);
    assert!(proof::verify(rust_tampered, &keys).is_err());
    // Python signs, Rust verifies; Ed25519 is deterministic, so the proofs are identical.
    let py_signed = r[2]["signed"].clone();
    let ap_signed = r[2]["apsigSigned"].clone();
    assert_eq!(
        py_signed["proof"]["proofValue"], rust_signed["proof"]["proofValue"],
        "PyNaCl + rfc8785 and passerelle_protocol::proof sign differently"
    );
    assert_eq!(py_signed, rust_signed);
    assert_eq!(
        ap_signed["proof"]["proofValue"],
        rust_signed["proof"]["proofValue"]
    );
    let verified = proof::verify(py_signed.clone(), &keys).unwrap();
    assert_eq!(verified.signers(), [vm]);
    proof::verify(ap_signed, &keys).unwrap();
    let mut py_tampered = py_signed;
    py_tampered["name"] = json!("Rédacteur principal");
    assert!(proof::verify(py_tampered.clone(), &keys).is_err());
    let again = run(
        &py,
        "proof.py",
        vec![json!({"op": "verify", "document": py_tampered, "publicKeyMultibase": public})],
    );
    assert_eq!(again[0]["nacl"], false, "{}", again[0]);
}

// ---------------------------------------------------------------------------------------
// A peer built with independent libraries (interop/peer.py) federating with a real node.

/// The Python peer follows a node and is accepted; the node follows it back; the node's
/// deliveries (Accept, Create) verify with the independent RFC 9421 and eddsa-jcs-2022
/// implementations; the peer's own signed posting is accepted and cached by the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_peer_federates_with_a_node() {
    use passerelle_tests::{Backend, ISERE, Node, example_posting, free_port, wait_until};
    use std::time::Duration;
    let Some(py) = python("interop: independent peer") else {
        return;
    };
    let node = Node::start(&ISERE, Backend::Sqlite).await;
    node.set_policy("open").await;
    let port = free_port().port();
    let secret = SigningKey::generate().unwrap().to_multikey_secret();
    let mut child = Command::new(&py)
        .arg(workspace_root().join("interop/peer.py"))
        .args(["--port", &port.to_string(), "--secret", &secret])
        .arg("--template")
        .arg(workspace_root().join("spec/examples/organization.json"))
        .arg("--posting")
        .arg(workspace_root().join("spec/examples/posting-vacancy.json"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert!(ready.starts_with("ready"), "{ready}");
    let _peer = Kill(child);
    let peer = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let control = |path: &'static str| {
        let http = http.clone();
        let url = format!("{peer}{path}");
        let body = json!({ "node": node.actor() });
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let status = || {
        let http = http.clone();
        let url = format!("{peer}/control/status");
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()["received"]
                .as_array()
                .unwrap()
                .clone()
        }
    };

    // The peer asks; the node (policy open) accepts with a signed Accept the peer verifies.
    let r = control("/control/follow").await;
    assert_eq!(r["status"], 202, "{r}");
    wait_until(
        "the peer receives the Accept",
        Duration::from_secs(30),
        || async { status().await.iter().any(|e| e["type"] == "Accept") },
    )
    .await;
    // The node follows the peer back; the peer answers with its own signed Accept.
    let (s, b) = node
        .post(
            "/api/v1/partners",
            &json!({ "address": format!("{peer}/actor") }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    wait_until(
        "the node's Follow is accepted by the peer",
        Duration::from_secs(30),
        || async {
            node.partner_by_actor(&format!("{peer}/actor"))
                .await
                .is_some_and(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
        },
    )
    .await;
    // The node publishes: the peer receives the Create and verifies everything.
    let published = node.publish(&example_posting("immersion-offer")).await;
    let id = published["document"]["id"].as_str().unwrap().to_owned();
    wait_until(
        "the peer receives the posting",
        Duration::from_secs(30),
        || async {
            status()
                .await
                .iter()
                .any(|e| e["type"] == "Create" && e["objectProof"].is_object())
        },
    )
    .await;
    for e in status().await.iter().filter(|e| e.get("type").is_some()) {
        assert_eq!(
            e["transport"], true,
            "RFC 9421 (http-message-signatures): {e}"
        );
        assert_eq!(
            e["proof"]["nacl"], true,
            "eddsa-jcs-2022 (PyNaCl + rfc8785): {e}"
        );
        assert_eq!(e["proof"]["apsig"], true, "eddsa-jcs-2022 (apsig): {e}");
        if e["type"] == "Create" {
            assert_eq!(e["objectProof"]["nacl"], true, "{e}");
            assert_eq!(e["objectProof"]["apsig"], true, "{e}");
        }
    }
    assert!(
        status().await.iter().any(|e| e["sentAccept"] == 202),
        "the node accepted the peer's Accept"
    );
    let _ = id;
    // The peer publishes: the node accepts its signed Create and caches the posting.
    let r = control("/control/create").await;
    assert_eq!(r["status"], 202, "{r}");
    let posting = r["posting"].as_str().unwrap().to_owned();
    wait_until(
        "the node caches the peer's posting",
        Duration::from_secs(30),
        || async {
            node.cached_postings()
                .await
                .iter()
                .any(|(p, _, _)| p == &posting)
        },
    )
    .await;
    node.shutdown().await;
}
