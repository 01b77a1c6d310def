//! A minimal inbox on Lemmy's `activitypub_federation` crate (its own draft-cavage HTTP
//! signatures, RSA-2048), for `passerelle-bench --peer`: the same ~2 KB `Create` payloads as
//! the Passerelle inbox load, verified by the crate (`Digest`, signature by the actor's key,
//! URL and domain checks) and stored in SQLite (WAL, synchronous=NORMAL), one row each.
//!
//! `lemmy-peer PORT N TEMPLATE.json REQUESTS.jsonl DB [SENDERS]`: binds 127.0.0.1:PORT,
//! makes SENDERS local actors with RSA keys, has the crate sign and send N `Create`s built
//! from TEMPLATE (id and actor replaced) to its own inbox, where they are captured to
//! REQUESTS.jsonl (headers and body, one JSON object a line) instead of being received;
//! then switches the inbox to receiving, prints `READY`, and serves until killed. The
//! bench replays REQUESTS.jsonl with its load generator.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use activitypub_federation::activity_sending::SendActivityTask;
use activitypub_federation::axum::inbox::{ActivityData, receive_activity};
use activitypub_federation::config::{Data, FederationConfig, FederationMiddleware};
use activitypub_federation::fetch::object_id::ObjectId;
use activitypub_federation::http_signatures::generate_actor_keypair;
use activitypub_federation::kinds::activity::CreateType;
use activitypub_federation::kinds::actor::PersonType;
use activitypub_federation::protocol::public_key::PublicKey;
use activitypub_federation::traits::{Activity, Actor, Object};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug)]
pub struct Error(anyhow::Error);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl<T: Into<anyhow::Error>> From<T> for Error {
    fn from(t: T) -> Self {
        Error(t.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        (StatusCode::BAD_REQUEST, self.0.to_string()).into_response()
    }
}

pub struct Db {
    users: Vec<DbUser>,
    sqlite: Mutex<rusqlite::Connection>,
    stored: AtomicUsize,
}

pub type Handle = Arc<Db>;

#[derive(Debug, Clone)]
pub struct DbUser {
    ap_id: Url,
    inbox: Url,
    public_key: String,
    private_key: Option<String>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    #[serde(rename = "type")]
    kind: PersonType,
    id: ObjectId<DbUser>,
    inbox: Url,
    public_key: PublicKey,
}

#[async_trait::async_trait]
impl Object for DbUser {
    type DataType = Handle;
    type Kind = Person;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.ap_id
    }

    async fn read_from_id(id: Url, data: &Data<Handle>) -> Result<Option<Self>, Error> {
        Ok(data.users.iter().find(|u| u.ap_id == id).cloned())
    }

    async fn into_json(self, _data: &Data<Handle>) -> Result<Person, Error> {
        Ok(Person {
            kind: Default::default(),
            id: self.ap_id.clone().into(),
            inbox: self.inbox.clone(),
            public_key: self.public_key(),
        })
    }

    async fn verify(_json: &Person, _expected: &Url, _data: &Data<Handle>) -> Result<(), Error> {
        Ok(())
    }

    async fn from_json(json: Person, _data: &Data<Handle>) -> Result<Self, Error> {
        Ok(DbUser {
            ap_id: json.id.into_inner(),
            inbox: json.inbox,
            public_key: json.public_key.public_key_pem,
            private_key: None,
        })
    }
}

impl Actor for DbUser {
    fn public_key_pem(&self) -> &str {
        &self.public_key
    }

    fn private_key_pem(&self) -> Option<String> {
        self.private_key.clone()
    }

    fn inbox(&self) -> Url {
        self.inbox.clone()
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    actor: ObjectId<DbUser>,
    #[serde(rename = "type")]
    kind: CreateType,
    id: Url,
    object: serde_json::Value,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

#[async_trait::async_trait]
impl Activity for Create {
    type DataType = Handle;
    type Error = Error;

    fn id(&self) -> &Url {
        &self.id
    }

    fn actor(&self) -> &Url {
        self.actor.inner()
    }

    async fn verify(&self, _data: &Data<Handle>) -> Result<(), Error> {
        Ok(())
    }

    async fn receive(self, data: &Data<Handle>) -> Result<(), Error> {
        let doc = serde_json::to_string(&self)?;
        let conn = data
            .sqlite
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        conn.execute(
            "INSERT INTO inbox (activity_id, actor, document) VALUES (?1, ?2, ?3)",
            (self.id.as_str(), self.actor.inner().as_str(), doc),
        )?;
        data.stored.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[derive(Clone)]
struct App {
    capturing: Arc<AtomicBool>,
    captured: Arc<Mutex<Vec<String>>>,
    config: FederationConfig<Handle>,
}

async fn inbox(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if app.capturing.load(Ordering::SeqCst) {
        let h: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let line = serde_json::json!({"headers": h, "body": String::from_utf8_lossy(&body)});
        if let Ok(mut c) = app.captured.lock() {
            c.push(line.to_string());
        }
        return StatusCode::ACCEPTED.into_response();
    }
    let mut req = axum::http::Request::builder().method("POST").uri("/inbox");
    for (n, v) in &headers {
        req = req.header(n, v);
    }
    let Ok(req) = req.body(axum::body::Body::from(body)) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    use axum::extract::FromRequest as _;
    let data = match ActivityData::from_request(req, &()).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let ctx = app.config.to_request_data();
    match receive_activity::<Create, DbUser, Handle>(data, &ctx).await {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => e.into_response(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() >= 6,
        "usage: lemmy-peer PORT N TEMPLATE.json REQUESTS.jsonl DB [SENDERS]"
    );
    let port: u16 = a[1].parse()?;
    let n: usize = a[2].parse()?;
    let template: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&a[3])?)?;
    let out = a[4].clone();
    let senders: usize = a.get(6).and_then(|s| s.parse().ok()).unwrap_or(8);
    let domain = format!("127.0.0.1:{port}");
    let mut users = Vec::new();
    for i in 0..senders {
        let kp = generate_actor_keypair()?;
        users.push(DbUser {
            ap_id: Url::parse(&format!("http://localhost:{port}/u{i}"))?,
            inbox: Url::parse(&format!("http://{domain}/inbox"))?,
            public_key: kp.public_key,
            private_key: Some(kp.private_key),
        });
    }
    let conn = rusqlite::Connection::open(&a[5])?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
         CREATE TABLE IF NOT EXISTS inbox (activity_id TEXT PRIMARY KEY, actor TEXT NOT NULL, document TEXT NOT NULL);",
    )?;
    let db = Arc::new(Db {
        users: users.clone(),
        sqlite: Mutex::new(conn),
        stored: AtomicUsize::new(0),
    });
    let config = FederationConfig::builder()
        .domain(domain.clone())
        .app_data(db.clone())
        .debug(true)
        .build()
        .await?;
    let app = App {
        capturing: Arc::new(AtomicBool::new(true)),
        captured: Arc::new(Mutex::new(Vec::new())),
        config: config.clone(),
    };
    let router = Router::new()
        .route("/inbox", post(inbox))
        .with_state(app.clone())
        .layer(FederationMiddleware::new(config.clone()));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    // Sign with the crate and send to ourselves: captured, not received.
    let data = config.to_request_data();
    // The crate neither sends to nor accepts from its own domain (127.0.0.1:PORT): the
    // senders live at `localhost:PORT`, another domain for the crate but the same socket;
    // the replay keeps the signed `Host`.
    let inbox_url = Url::parse(&format!("http://localhost:{port}/inbox"))?;
    for i in 0..n {
        let user = &users[i % users.len()];
        let mut doc = template.clone();
        if let Some(m) = doc.as_object_mut() {
            m.insert(
                "id".into(),
                serde_json::json!(format!("http://localhost:{port}/activities/{i}")),
            );
            m.insert("actor".into(), serde_json::json!(user.ap_id.as_str()));
        }
        let act: Create = serde_json::from_value(doc)?;
        let tasks = SendActivityTask::prepare(&act, user, vec![inbox_url.clone()], &data).await?;
        for t in tasks {
            t.sign_and_send(&data).await?;
        }
    }
    let lines = std::mem::take(
        &mut *app
            .captured
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?,
    );
    std::fs::write(&out, lines.join("\n"))?;
    app.capturing.store(false, Ordering::SeqCst);
    println!("READY {}", lines.len());
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        eprintln!("stored {}", db.stored.load(Ordering::Relaxed));
    }
}
