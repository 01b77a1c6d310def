//! Cost of Passerelle's transport signature on a ~2 KB POST, next to its parts.
//!
//! `cargo bench -p passerelle-protocol --bench httpsig`
//!
//! After criterion's own report, a plain timing loop (about 1 s per operation, one core)
//! prints operations per second and ratios, comparable with `perf-limits.md` §1–§3.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use passerelle_protocol::digest::{content_digest, verify_content_digest};
use passerelle_protocol::httpsig::{
    RequestParts, VerifyPolicy, parse_signature, sign_passerelle_request,
};
use passerelle_protocol::keys::SigningKey;

const INBOX: &str = "https://cdg-b.example/inbox";
const KEY_ID: &str = "https://mairie-a.example/actor#key-1";
const CREATED: i64 = 1_790_000_000;

fn body() -> Vec<u8> {
    let mut text = String::new();
    while text.len() < 1850 {
        text.push_str("Poste d'agent d'état civil à temps complet – « accueil », 2 000 €. ");
    }
    format!(
        r#"{{"@context":["https://www.w3.org/ns/activitystreams","https://w3id.org/passerelle/v1"],"type":"Create","actor":"https://mairie-a.example/actor","object":{{"type":"Posting","content":"{text}"}}}}"#
    )
    .into_bytes()
}

struct Fixture {
    key: SigningKey,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

impl Fixture {
    fn new() -> Self {
        let key = SigningKey::from_seed(&[7; 32]);
        let body = body();
        let signed = sign_passerelle_request(
            "POST",
            INBOX,
            &[("Content-Type", "application/activity+json")],
            &body,
            &key,
            KEY_ID,
            CREATED,
        )
        .unwrap();
        let headers = vec![
            ("Host", "cdg-b.example".to_owned()),
            ("Content-Type", "application/activity+json".to_owned()),
            ("Content-Length", body.len().to_string()),
            ("Content-Digest", signed.content_digest.unwrap()),
            ("Signature-Input", signed.signature.signature_input),
            ("Signature", signed.signature.signature),
        ];
        Self { key, body, headers }
    }

    fn sign(&self) {
        black_box(
            sign_passerelle_request(
                "POST",
                INBOX,
                &[("Content-Type", "application/activity+json")],
                black_box(&self.body),
                &self.key,
                KEY_ID,
                CREATED,
            )
            .unwrap(),
        );
    }

    fn verify(&self, public: &passerelle_protocol::keys::PublicKey, policy: &VerifyPolicy) {
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let parts = RequestParts {
            method: "POST",
            target_uri: INBOX,
            headers: &headers,
            body: black_box(&self.body),
        };
        black_box(
            parse_signature(&parts, None)
                .unwrap()
                .verify(public, policy)
                .unwrap(),
        );
    }
}

fn ops_per_sec(mut f: impl FnMut()) -> f64 {
    for _ in 0..200 {
        f();
    }
    let budget = Duration::from_millis(1000);
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < budget {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let fx = Fixture::new();
    let public = fx.key.public_key();
    let policy = VerifyPolicy::passerelle(CREATED + 1);
    let headers: Vec<(&str, &str)> = fx.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let candidate = parse_signature(
        &RequestParts {
            method: "POST",
            target_uri: INBOX,
            headers: &headers,
            body: &fx.body,
        },
        None,
    )
    .unwrap();
    let base = candidate.base().as_bytes().to_vec();
    let signature =
        passerelle_protocol::keys::Signature::from_slice(candidate.signature_bytes()).unwrap();
    let digest_field = content_digest(&fx.body);
    fx.verify(&public, &policy);

    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group(format!("httpsig_post_{}B", fx.body.len()));
    g.bench_function("sign_passerelle_request (digest + sign)", |b| {
        b.iter(|| fx.sign())
    });
    g.bench_function("parse_signature + verify (digest + verify_strict)", |b| {
        b.iter(|| fx.verify(&public, &policy))
    });
    g.bench_function("bare verify_strict over the base", |b| {
        b.iter(|| public.verify(black_box(&base), &signature).unwrap())
    });
    g.bench_function("bare ed25519 sign over the base", |b| {
        b.iter(|| black_box(fx.key.sign(black_box(&base))))
    });
    g.bench_function("content_digest (SHA-256 of the body)", |b| {
        b.iter(|| black_box(content_digest(black_box(&fx.body))))
    });
    g.bench_function("verify_content_digest", |b| {
        b.iter(|| verify_content_digest(black_box(&digest_field), black_box(&fx.body)).unwrap())
    });
    g.finish();
    c.final_summary();

    // Plain summary with ratios (criterion's list mode or filters skip it).
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    println!(
        "\nSummary, one core, body {} bytes, signature base {} bytes:",
        fx.body.len(),
        base.len()
    );
    let strict = ops_per_sec(|| public.verify(black_box(&base), &signature).unwrap());
    let rows = [
        ("sign_passerelle_request", ops_per_sec(|| fx.sign())),
        (
            "parse_signature + verify",
            ops_per_sec(|| fx.verify(&public, &policy)),
        ),
        ("bare verify_strict", strict),
        (
            "bare ed25519 sign",
            ops_per_sec(|| {
                black_box(fx.key.sign(black_box(&base)));
            }),
        ),
        (
            "content_digest",
            ops_per_sec(|| {
                black_box(content_digest(black_box(&fx.body)));
            }),
        ),
        (
            "verify_content_digest",
            ops_per_sec(|| {
                verify_content_digest(black_box(&digest_field), black_box(&fx.body)).unwrap();
            }),
        ),
    ];
    println!(
        "{:<28} {:>12} {:>10} {:>22}",
        "operation", "ops/s", "µs/op", "time vs verify_strict"
    );
    for (name, ops) in rows {
        println!(
            "{name:<28} {ops:>12.0} {:>10.2} {:>21.2}×",
            1e6 / ops,
            strict / ops
        );
    }
}
