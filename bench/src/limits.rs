//! The limits that bound the scenarios, measured in the same run on the same payloads:
//! bare Ed25519 sign and verify, serde_json parse, the object-proof check, and two
//! in-process axum servers on loopback driven by the same load generator as the node —
//! one that only verifies the transport signature, and the bare pipeline (HTTP, digest,
//! transport signature, the two object proofs, one `INSERT`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use passerelle_protocol::httpsig::{self, RequestParts, VerifyPolicy};
use passerelle_protocol::keys::{PublicKey, SigningKey};
use passerelle_protocol::proof;
use serde_json::Value;

use crate::load::{self, LoadResult, Req};

/// Operations per second of `f`, over about `secs` seconds on one core (after a warm-up).
pub fn per_second(secs: f64, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..64 {
        f(i);
    }
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed().as_secs_f64() < secs {
        for _ in 0..64 {
            f(n);
            n += 1;
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// CPU limits (one core each).
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// Ed25519 sign of a 256-byte message.
    pub sign: f64,
    /// Ed25519 verify (the protocol crate's, strict).
    pub verify: f64,
    /// serde_json parse of the inbox bodies.
    pub parse: f64,
    /// eddsa-jcs-2022 check of one activity with its embedded posting (two proofs).
    pub proofs: f64,
    /// The inbox CPU path: digest, transport signature, parse, two proofs.
    pub inbox_cpu: f64,
}

/// Measures the CPU limits on `reqs` (signed inbox requests) by keys `keys`.
pub fn cpu(reqs: &[Req], keys: &HashMap<String, PublicKey>, secs: f64) -> Cpu {
    let key = SigningKey::generate().expect("key");
    let msg = [7u8; 256];
    let sig = key.sign(&msg);
    let public = key.public_key();
    let docs: Vec<Value> = reqs
        .iter()
        .take(256)
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    let key_list: Vec<(String, PublicKey)> = keys.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let m = reqs.len().min(256);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Cpu {
        sign: per_second(secs, |_| {
            std::hint::black_box(key.sign(std::hint::black_box(&msg)));
        }),
        verify: per_second(secs, |_| {
            std::hint::black_box(public.verify(&msg, &sig)).expect("verify");
        }),
        parse: per_second(secs, |i| {
            std::hint::black_box(
                serde_json::from_slice::<Value>(&reqs[i % m].body).expect("parse"),
            );
        }),
        proofs: per_second(secs, |i| {
            let d = &docs[i % docs.len()];
            proof::verify(d.clone(), &key_list).expect("proof");
            proof::verify(d["object"].clone(), &key_list).expect("proof");
        }),
        inbox_cpu: per_second(secs, |i| {
            assert_eq!(check(&reqs[i % m], keys, now, true), StatusCode::ACCEPTED);
        }),
    }
}

/// What the servers check: `Content-Digest`, the transport signature by a known key and,
/// with `proofs`, the parse and both object proofs.
fn check(r: &Req, keys: &HashMap<String, PublicKey>, now: i64, proofs: bool) -> StatusCode {
    let refs: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    verify_parts(&r.url, &refs, &r.body, keys, now, proofs)
}

fn verify_parts(
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keys: &HashMap<String, PublicKey>,
    now: i64,
    proofs: bool,
) -> StatusCode {
    let Some((_, digest)) = headers.iter().find(|(n, _)| *n == "content-digest") else {
        return StatusCode::BAD_REQUEST;
    };
    if passerelle_protocol::digest::verify_content_digest(digest, body).is_err() {
        return StatusCode::BAD_REQUEST;
    }
    let parts = RequestParts {
        method: "POST",
        target_uri: target,
        headers,
        body,
    };
    let Ok(c) = httpsig::parse_signature(&parts, Some(httpsig::PASSERELLE_LABEL)) else {
        return StatusCode::UNAUTHORIZED;
    };
    let Some(key) = keys.get(c.key_id()) else {
        return StatusCode::UNAUTHORIZED;
    };
    if c.verify(key, &VerifyPolicy::passerelle(now)).is_err() {
        return StatusCode::UNAUTHORIZED;
    }
    if proofs {
        let Ok(doc) = serde_json::from_slice::<Value>(body) else {
            return StatusCode::BAD_REQUEST;
        };
        let list: Vec<(String, PublicKey)> = doc["proof"]["verificationMethod"]
            .as_str()
            .and_then(|k| Some((k.to_owned(), *keys.get(k)?)))
            .into_iter()
            .collect();
        let object = doc["object"].clone();
        if proof::verify(doc, &list).is_err() || proof::verify(object, &list).is_err() {
            return StatusCode::UNAUTHORIZED;
        }
    }
    StatusCode::ACCEPTED
}

/// Where the bare pipeline stores.
#[derive(Debug, Clone)]
pub enum Sink {
    /// No storage: transport signature only.
    None,
    /// SQLite file (WAL, synchronous=NORMAL), one writer connection.
    Sqlite(std::path::PathBuf),
    /// PostgreSQL URL (a fresh schema), pool of 8.
    Postgres(String),
}

#[derive(Clone)]
struct Srv {
    keys: Arc<HashMap<String, PublicKey>>,
    base: String,
    sqlite: Option<sqlx::SqlitePool>,
    pg: Option<sqlx::PgPool>,
}

async fn handle(State(s): State<Srv>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let target = format!("{}/inbox", s.base);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let store = s.sqlite.is_some() || s.pg.is_some();
    let status = verify_parts(&target, &pairs, &body, &s.keys, now, store);
    if status != StatusCode::ACCEPTED || !store {
        return status;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let id = uuid::Uuid::now_v7().to_string();
    let ok = if let Some(pool) = &s.sqlite {
        sqlx::query("INSERT INTO inbox (activity_id, received_at, document) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(now)
            .bind(&text)
            .execute(pool)
            .await
            .is_ok()
    } else if let Some(pool) = &s.pg {
        sqlx::query("INSERT INTO inbox (activity_id, received_at, document) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(now)
            .bind(&text)
            .execute(pool)
            .await
            .is_ok()
    } else {
        true
    };
    if ok {
        StatusCode::ACCEPTED
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Runs a limit server (a runtime of 2 worker threads of its own, like the node) on a
/// loopback port, builds the signed requests for its inbox URL with `make`, and drives it
/// with the load generator.
pub async fn server_run<F, Fut>(
    sink: Sink,
    keys: HashMap<String, PublicKey>,
    concurrency: usize,
    make: F,
) -> anyhow::Result<LoadResult>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Vec<Req>>,
{
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let base = format!("http://{}", std_listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<()>>();
    let keys = Arc::new(keys);
    let srv_base = base.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let setup = async {
                let mut srv = Srv {
                    keys,
                    base: srv_base,
                    sqlite: None,
                    pg: None,
                };
                let ddl = "CREATE TABLE inbox (activity_id TEXT PRIMARY KEY, received_at BIGINT NOT NULL, document TEXT NOT NULL)";
                match &sink {
                    Sink::None => {}
                    Sink::Sqlite(path) => {
                        let opts = sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(path)
                            .create_if_missing(true)
                            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
                        let pool = sqlx::sqlite::SqlitePoolOptions::new()
                            .max_connections(1)
                            .connect_with(opts)
                            .await?;
                        sqlx::query(ddl).execute(&pool).await?;
                        srv.sqlite = Some(pool);
                    }
                    Sink::Postgres(url) => {
                        let pool = sqlx::postgres::PgPoolOptions::new()
                            .max_connections(8)
                            .connect(url)
                            .await?;
                        sqlx::query(ddl).execute(&pool).await?;
                        srv.pg = Some(pool);
                    }
                }
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                anyhow::Ok((srv, listener))
            };
            match setup.await {
                Ok((srv, listener)) => {
                    let _ = ready_tx.send(Ok(()));
                    let app = Router::new()
                        .route("/inbox", post(handle))
                        .with_state(srv.clone());
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stop_rx.await;
                        })
                        .await;
                    if let Some(p) = srv.sqlite {
                        p.close().await;
                    }
                    if let Some(p) = srv.pg {
                        p.close().await;
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        });
    });
    let ready = tokio::task::spawn_blocking(move || ready_rx.recv()).await??;
    ready?;
    let reqs = make(format!("{base}/inbox")).await;
    let result = load::run(reqs, concurrency).await;
    let _ = stop_tx.send(());
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    Ok(result)
}

/// Seconds for one timed CPU loop.
pub fn cpu_secs(quick: bool) -> f64 {
    if quick { 0.2 } else { 1.0 }
}
