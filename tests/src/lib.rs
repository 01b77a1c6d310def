//! Harness for multi-node integration tests: nodes on loopback ports with their own
//! databases (a SQLite file, or a fresh schema on the test PostgreSQL server), started
//! in-process with [`passerelle_node::run`] on a port-0 listener, or as real `passerelle`
//! processes where a crash is what is tested. Timings are shortened (polls of 100 ms,
//! retries from 200 ms) so that federation happens within a test's patience; nothing is
//! mocked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use passerelle_node::config::Config;
use passerelle_node::store::{AuditRecord, NodeIdentity, Role, Store};
use serde_json::{Value, json};

/// Default PostgreSQL server of the project machines and CI.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How long a node may take to stop after its shutdown signal: three times its grace
/// period (`server.shutdown_grace_secs`, 5 s here: for the requests, the workers, then the
/// database connections) and a wide margin. A node still running after it fails the test
/// instead of hanging it.
pub const STOP_LIMIT: Duration = Duration::from_secs(60);

/// How long a test's HTTP request may take, answer included: over the node's own request
/// timeout (`server.request_timeout_secs`), so a node's answer always comes first, and a
/// request that no answer ends fails the test instead of hanging it.
pub const HTTP_LIMIT: Duration = Duration::from_secs(120);

/// An HTTP client for tests, whose requests give up after [`HTTP_LIMIT`].
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_LIMIT)
        .build()
        .unwrap()
}

/// The database backend of a test node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the node's data directory.
    Sqlite,
    /// A fresh schema on the test PostgreSQL server.
    Postgres,
}

/// The admin URL of the test PostgreSQL server.
pub fn postgres_admin_url() -> String {
    std::env::var("PASSERELLE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// Whether PostgreSQL tests can run: `false` (after one SKIPPED line) outside CI when the
/// server is unreachable; a panic under `CI`.
pub async fn postgres_available() -> bool {
    let url = postgres_admin_url();
    match Store::connect(&url, 1).await {
        Ok(s) => {
            s.close().await;
            true
        }
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL is required under CI at {url}: {e}");
            }
            eprintln!(
                "SKIPPED: PostgreSQL scenario (no server at {url}: {e}); set PASSERELLE_TEST_POSTGRES_URL"
            );
            false
        }
    }
}

async fn pg_exec(sql: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// A fresh PostgreSQL schema and the URL that works in it.
pub async fn postgres_schema() -> (String, String) {
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    pg_exec(&format!("CREATE SCHEMA {schema}")).await;
    let admin = postgres_admin_url();
    let sep = if admin.contains('?') { '&' } else { '?' };
    (
        schema.clone(),
        format!("{admin}{sep}options=-c%20search_path%3D{schema}"),
    )
}

/// Drops a schema made by [`postgres_schema`].
pub async fn drop_schema(schema: &str) {
    pg_exec(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
}

/// Who a test node is.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Name of the collectivité.
    pub name: &'static str,
    /// SIREN.
    pub siren: &'static str,
    /// Kind (`departement`, `metropole`, `commune`…).
    pub kind: &'static str,
    /// WebFinger account.
    pub username: &'static str,
}

/// The three collectivités of the scenarios.
pub const ISERE: Identity = Identity {
    name: "Département de l'Isère",
    siren: "223800012",
    kind: "departement",
    username: "isere",
};
/// Grenoble-Alpes Métropole.
pub const METROPOLE: Identity = Identity {
    name: "Grenoble-Alpes Métropole",
    siren: "200040715",
    kind: "metropole",
    username: "metropole",
};
/// Ville de Grenoble.
pub const GRENOBLE: Identity = Identity {
    name: "Ville de Grenoble",
    siren: "213801855",
    kind: "commune",
    username: "grenoble",
};

/// The configuration of a test node: development mode (loopback peers), short timings.
pub fn test_config(dir: &Path, listen: SocketAddr, database_url: &str) -> Config {
    let mut config = Config::default();
    config.server.listen = listen;
    config.server.shutdown_grace_secs = 5;
    config.data.dir = dir.to_path_buf();
    config.database.url = Some(database_url.to_owned());
    config.database.max_connections = Some(8);
    let f = &mut config.federation;
    f.allow_http_loopback_peers = true;
    f.poll_interval_ms = 100;
    f.retry_base_ms = 200;
    f.retry_cap_ms = 2_000;
    f.auth_retry_delay_ms = 300;
    f.pull_interval_secs = 3_600;
    f.connect_timeout_secs = 2;
    f.request_timeout_secs = 5;
    config
}

/// How a test node runs.
enum Runner {
    /// Not running.
    Stopped,
    /// `passerelle_node::run` in this process.
    InProcess {
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    },
    /// A real `passerelle serve` process.
    Child(std::process::Child),
}

/// A node: in this process, or a real `passerelle` process.
pub struct Node {
    /// Its name (for messages).
    pub name: &'static str,
    /// Public base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    /// Admin bearer token.
    pub token: String,
    /// Its configuration (kept for restarts).
    pub config: Config,
    /// A store on its database (for assertions).
    pub store: Store,
    client: reqwest::Client,
    runner: Runner,
    as_process: bool,
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts a new node with `identity` on `backend`, in this process, initialised, with
    /// an admin token.
    pub async fn start(identity: &Identity, backend: Backend) -> Node {
        Self::create(identity, backend, false, |_| {}).await
    }

    /// As [`Node::start`], as a real `passerelle serve` process (for crash tests).
    pub async fn start_process(identity: &Identity, backend: Backend) -> Node {
        Self::create(identity, backend, true, |_| {}).await
    }

    /// As [`Node::start`] with a configuration adjusted by `tune` (before the first start).
    pub async fn start_with(
        identity: &Identity,
        backend: Backend,
        as_process: bool,
        tune: impl FnOnce(&mut Config),
    ) -> Node {
        Self::create(identity, backend, as_process, tune).await
    }

    async fn create(
        identity: &Identity,
        backend: Backend,
        as_process: bool,
        tune: impl FnOnce(&mut Config),
    ) -> Node {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        // The data directory is a subdirectory, so that the CLI's configuration file
        // (written beside it) is not part of it.
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let (schema, url) = match backend {
            Backend::Sqlite => (
                None,
                format!("sqlite://{}", data.join("passerelle.db").display()),
            ),
            Backend::Postgres => {
                let (schema, url) = postgres_schema().await;
                (Some(schema), url)
            }
        };
        let addr = free_port();
        let mut config = test_config(&data, addr, &url);
        tune(&mut config);
        // The tuning may move the data directory or the database.
        std::fs::create_dir_all(&config.data.dir).unwrap();
        let url = config.database.url.clone().unwrap_or(url);
        let store = Store::connect(&url, 4).await.unwrap();
        store.migrate().await.unwrap();
        let audit = AuditRecord::new("test", "node.init", "node");
        store
            .init_identity(
                &NodeIdentity {
                    name: identity.name.to_owned(),
                    siren: identity.siren.to_owned(),
                    kind: identity.kind.to_owned(),
                    username: identity.username.to_owned(),
                },
                &audit,
            )
            .await
            .unwrap();
        let (_, token) =
            passerelle_node::auth::create_token(&store, "test-admin", Role::Admin, None, "test")
                .await
                .unwrap();
        let mut node = Node {
            name: identity.username,
            base: config.base_url(),
            token,
            config,
            store,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            runner: Runner::Stopped,
            as_process,
            schema,
            _dir: Some(dir),
        };
        node.run().await;
        node
    }

    async fn run(&mut self) {
        if self.as_process {
            let config = self.write_config();
            let child = std::process::Command::new(passerelle_bin())
                .arg("--config")
                .arg(&config)
                .arg("serve")
                .env_remove("PASSERELLE_CONFIG")
                // `PASSERELLE_TEST_CHILD_LOG=<filter>` lets a diagnosis read more of a
                // node process's log (stderr), e.g. `warn,passerelle_node::federation::sync=debug`.
                .env(
                    "PASSERELLE_LOG_FILTER",
                    std::env::var("PASSERELLE_TEST_CHILD_LOG")
                        .unwrap_or_else(|_| "warn".to_owned()),
                )
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            self.runner = Runner::Child(child);
        } else {
            let listener = bind_retrying(self.config.server.listen).await;
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let config = self.config.clone();
            let task = tokio::spawn(async move {
                passerelle_node::run(config, listener, async {
                    let _ = rx.await;
                })
                .await
            });
            self.runner = Runner::InProcess { stop: tx, task };
        }
        let health = format!("{}/healthz", self.base);
        wait_until(
            &format!("{} is up", self.name),
            Duration::from_secs(30),
            || async {
                self.client
                    .get(&health)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            },
        )
        .await;
    }

    /// Runs `sql` on the node's own database (SQLite file or PostgreSQL schema), as an
    /// operator with `sqlite3` or `psql` would: for tests that must change what the node's
    /// API does not (drop delivery jobs so that a partner can only pull, say).
    pub async fn execute_sql(&self, sql: &str) {
        use sqlx::Connection as _;
        let url = self.config.database.url.clone().unwrap();
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        if url.starts_with("postgres") {
            let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut db).await.unwrap();
            db.close().await.unwrap();
        } else {
            let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut db).await.unwrap();
            db.close().await.unwrap();
        }
    }

    /// Stops the node gracefully (SIGTERM for a process); its database and key stay.
    pub async fn stop(&mut self) {
        match std::mem::replace(&mut self.runner, Runner::Stopped) {
            Runner::Stopped => {}
            Runner::InProcess { stop, task } => {
                let _ = stop.send(());
                match tokio::time::timeout(STOP_LIMIT, task).await {
                    Ok(done) => done.unwrap().unwrap(),
                    Err(_) => panic!(
                        "{} did not stop within {STOP_LIMIT:?} of its shutdown signal",
                        self.name
                    ),
                }
            }
            Runner::Child(mut child) => {
                let status = std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .unwrap();
                assert!(status.success());
                let started = std::time::Instant::now();
                let exit = loop {
                    if let Some(exit) = child.try_wait().unwrap() {
                        break exit;
                    }
                    if started.elapsed() > STOP_LIMIT {
                        let _ = child.kill();
                        let _ = child.wait();
                        panic!(
                            "{} (process {}) did not exit within {STOP_LIMIT:?} of SIGTERM; killed",
                            self.name,
                            child.id()
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                };
                assert!(exit.success(), "{} did not stop cleanly: {exit}", self.name);
            }
        }
    }

    /// Kills the process with SIGKILL (no shutdown at all). Only for process nodes.
    pub async fn kill(&mut self) {
        match std::mem::replace(&mut self.runner, Runner::Stopped) {
            Runner::Child(mut child) => {
                child.kill().unwrap();
                let _ = tokio::task::spawn_blocking(move || child.wait())
                    .await
                    .unwrap();
            }
            other => {
                self.runner = other;
                panic!("kill() is for nodes started with start_process");
            }
        }
    }

    /// Starts it again on the same port, database and key.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    /// Starts it after a [`Node::kill`] (or a stop).
    pub async fn start_again(&mut self) {
        assert!(
            matches!(self.runner, Runner::Stopped),
            "{} is running",
            self.name
        );
        self.run().await;
    }

    /// Stops it and drops its PostgreSQL schema.
    pub async fn shutdown(mut self) {
        self.stop().await;
        self.store.close().await;
        if let Some(schema) = self.schema.take() {
            drop_schema(&schema).await;
        }
    }

    /// Starts a second process on the same database and key file (horizontal scaling):
    /// it listens on another port but has the same public identity.
    pub async fn second_process(&self) -> Node {
        let addr = free_port();
        let mut config = self.config.clone();
        config.server.listen = addr;
        config.server.base_url = Some(self.base.parse().unwrap());
        let mut second = Node {
            name: self.name,
            base: format!("http://{addr}"),
            token: self.token.clone(),
            config,
            store: self.store.clone(),
            client: self.client.clone(),
            runner: Runner::Stopped,
            as_process: false,
            schema: None,
            _dir: None,
        };
        second.run().await;
        second
    }

    /// The process id of a node started as a process ([`Node::start_process`]), while it
    /// runs (for the benchmarks' RSS readings).
    pub fn pid(&self) -> Option<u32> {
        match &self.runner {
            Runner::Child(child) => Some(child.id()),
            _ => None,
        }
    }

    /// Its actor id.
    pub fn actor(&self) -> String {
        format!("{}/actor", self.base)
    }

    /// `GET` on the HR API (or any path) with the admin token; returns status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A request with a JSON body and the admin token; returns status and JSON.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// Sets the partnership policy.
    pub async fn set_policy(&self, policy: &str) {
        let (s, b) = self
            .send(
                reqwest::Method::PUT,
                "/api/v1/federation/policy",
                &json!({ "policy": policy }),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }

    /// Sends a partnership request to `other`.
    pub async fn follow(&self, other: &Node) -> Value {
        let (s, b) = self
            .post("/api/v1/partners", &json!({ "address": other.actor() }))
            .await;
        assert_eq!(s, 201, "{} follows {}: {b}", self.name, other.name);
        b
    }

    /// The partner view of `other`, if known.
    pub async fn partner(&self, other: &Node) -> Option<Value> {
        let (s, list) = self.get("/api/v1/partners").await;
        assert_eq!(s, 200, "{list}");
        list.as_array()?
            .iter()
            .find(|p| p["actor"] == other.actor())
            .cloned()
    }

    /// Publishes a posting (create + publish) and returns its document.
    pub async fn publish(&self, content: &Value) -> Value {
        let (s, created) = self.post("/api/v1/postings", content).await;
        assert_eq!(s, 201, "{}: create posting: {created}", self.name);
        let id = created["id"].as_str().unwrap().to_owned();
        let (s, published) = self
            .post(&format!("/api/v1/postings/{id}/publish"), &json!({}))
            .await;
        assert_eq!(s, 200, "{}: publish: {published}", self.name);
        published
    }

    /// The remote postings cached by this node: `(id, version, deleted)`, sorted.
    pub async fn cached_postings(&self) -> Vec<(String, i64, bool)> {
        let mut out: Vec<(String, i64, bool)> = self
            .store
            .remote_postings(None, true)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.object_id, p.version, p.deleted_at.is_some()))
            .collect();
        out.sort();
        out
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.runner, Runner::Stopped) {
            Runner::InProcess { stop, .. } => {
                let _ = stop.send(());
            }
            Runner::Child(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Runner::Stopped => {}
        }
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

async fn bind_retrying(addr: SocketAddr) -> tokio::net::TcpListener {
    for _ in 0..50 {
        if let Ok(l) = tokio::net::TcpListener::bind(addr).await {
            return l;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr} again");
}

/// Waits until `cond` holds, polling every 50 ms; panics with `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A posting example of the specification (`spec/examples/posting-KIND.json`) as content
/// for the HR API: the server-owned members removed.
pub fn example_posting(kind: &str) -> Value {
    let path = workspace_root().join(format!("spec/examples/posting-{kind}.json"));
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let map = doc.as_object_mut().unwrap();
    for key in [
        "@context",
        "id",
        "type",
        "attributedTo",
        "version",
        "published",
        "updated",
        "status",
        "proof",
        "to",
        "cc",
    ] {
        map.remove(key);
    }
    passerelle_node::domain::examples::dates_from(
        &mut doc,
        time::OffsetDateTime::now_utc().date(),
        30,
    );
    doc
}

/// The current signing key of a node (read from its key file) and its full key id.
pub async fn node_key(node: &Node) -> (passerelle_protocol::keys::SigningKey, String) {
    let text = std::fs::read_to_string(node.config.key_file()).unwrap();
    let key = passerelle_protocol::keys::SigningKey::from_multikey_secret(text.trim()).unwrap();
    let current = node
        .store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.current)
        .unwrap();
    (key, format!("{}#{}", node.actor(), current.key_id))
}

/// An activity by `actor` (a node's actor id), signed (object proof) with `key`.
pub fn signed_activity(
    actor: &str,
    key: &passerelle_protocol::keys::SigningKey,
    key_id: &str,
    mut activity: Value,
) -> Value {
    let base = actor.trim_end_matches("/actor");
    let map = activity.as_object_mut().unwrap();
    map.entry("@context")
        .or_insert_with(passerelle_protocol::vocab::context);
    map.entry("id")
        .or_insert_with(|| json!(format!("{base}/activities/{}", uuid::Uuid::now_v7())));
    map.entry("actor").or_insert_with(|| json!(actor));
    let options =
        passerelle_protocol::proof::ProofOptions::new(key_id, time::OffsetDateTime::now_utc());
    passerelle_protocol::proof::sign(activity, key, &options).unwrap()
}

/// A signed `POST` of `body` to `inbox`, as a partner's delivery worker sends it, with a
/// chosen `created` (Unix seconds). Returns the response.
pub async fn post_signed_raw(
    inbox: &str,
    body: &[u8],
    key: &passerelle_protocol::keys::SigningKey,
    key_id: &str,
    created: i64,
) -> reqwest::Response {
    let ct = "application/activity+json";
    let signed = passerelle_protocol::httpsig::sign_passerelle_request(
        "POST",
        inbox,
        &[("content-type", ct)],
        body,
        key,
        key_id,
        created,
    )
    .unwrap();
    let mut req = http_client()
        .post(inbox)
        .header("content-type", ct)
        .header("signature-input", &signed.signature.signature_input)
        .header("signature", &signed.signature.signature)
        .body(body.to_vec());
    if let Some(d) = &signed.content_digest {
        req = req.header("content-digest", d);
    }
    req.send().await.unwrap()
}

/// As [`post_signed_raw`]; returns the status and the problem `code`, if any.
pub async fn post_signed(
    inbox: &str,
    body: &[u8],
    key: &passerelle_protocol::keys::SigningKey,
    key_id: &str,
    created: i64,
) -> (u16, String) {
    let r = post_signed_raw(inbox, body, key, key_id, created).await;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v["code"].as_str().unwrap_or("").to_owned())
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The `passerelle` binary built with these tests (`target/debug/passerelle`).
pub fn passerelle_bin() -> PathBuf {
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("passerelle");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p passerelle-node` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

impl Node {
    /// Writes the node's configuration to a TOML file, for the `passerelle` CLI.
    pub fn write_config(&self) -> PathBuf {
        let path = self
            .config
            .data
            .dir
            .parent()
            .unwrap_or(&self.config.data.dir)
            .join("passerelle.toml");
        std::fs::write(&path, toml::to_string(&self.config).unwrap()).unwrap();
        path
    }

    /// Runs `passerelle ARGS` against this node's configuration; returns the exit code,
    /// stdout and stderr.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let config = self.write_config();
        let out = std::process::Command::new(passerelle_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("PASSERELLE_CONFIG")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// What a [`Proxy`] does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProxyMode {
    /// Forward to the target.
    Pass = 0,
    /// Accept and hold the connection (read nothing) until the mode changes, then act on
    /// the new mode: the peer is left waiting, as with a slow or stuck partner.
    Hold = 1,
    /// Close at once (connection reset).
    Refuse = 2,
    /// Answer `500 Internal Server Error` to every request.
    Error500 = 3,
}

/// A TCP proxy in front of a node that a test controls: forward, hold, refuse, or answer
/// 500 — a partner that breaks and comes back, or a network partition.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    held_posts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

type Counter = std::sync::Arc<std::sync::atomic::AtomicUsize>;

async fn proxy_connection(
    mut inbound: tokio::net::TcpStream,
    target: SocketAddr,
    mode: std::sync::Arc<std::sync::atomic::AtomicU8>,
    held: Counter,
    held_posts: Counter,
) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut current = mode.load(Ordering::SeqCst);
    // Bytes read before forwarding: the start of a held request, so that a test knows
    // whether a delivery (`POST`) is what is held.
    let mut head = Vec::new();
    if current == ProxyMode::Hold as u8 {
        let mut buf = [0u8; 8];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(5), inbound.read(&mut buf)).await
        {
            head.extend_from_slice(&buf[..n]);
        }
        let is_post = head.starts_with(b"POST ");
        held.fetch_add(1, Ordering::SeqCst);
        if is_post {
            held_posts.fetch_add(1, Ordering::SeqCst);
        }
        while mode.load(Ordering::SeqCst) == ProxyMode::Hold as u8 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        held.fetch_sub(1, Ordering::SeqCst);
        if is_post {
            held_posts.fetch_sub(1, Ordering::SeqCst);
        }
        current = mode.load(Ordering::SeqCst);
    }
    if current == ProxyMode::Refuse as u8 {
        return;
    }
    if current == ProxyMode::Error500 as u8 {
        let mut buf = vec![0u8; 64 * 1024];
        let _ = tokio::time::timeout(Duration::from_millis(500), inbound.read(&mut buf)).await;
        let _ = inbound
            .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom")
            .await;
        let _ = inbound.shutdown().await;
        return;
    }
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    if !head.is_empty() && outbound.write_all(&head).await.is_err() {
        return;
    }
    // Kept-alive connections are cut when the mode changes, so that the new mode applies
    // to the next request too.
    let cut = async {
        while mode.load(Ordering::SeqCst) == ProxyMode::Pass as u8 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        () = cut => {}
    }
}

impl Proxy {
    /// Starts a proxy to `target`, forwarding.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(ProxyMode::Pass as u8));
        let held: Counter = Counter::default();
        let held_posts: Counter = Counter::default();
        let (m, h, p) = (mode.clone(), held.clone(), held_posts.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(proxy_connection(
                    inbound,
                    target,
                    m.clone(),
                    h.clone(),
                    p.clone(),
                ));
            }
        });
        Proxy {
            addr,
            mode,
            held,
            held_posts,
            task,
        }
    }

    /// Changes what it does with new (and held) connections.
    pub fn set(&self, mode: ProxyMode) {
        self.mode
            .store(mode as u8, std::sync::atomic::Ordering::SeqCst);
    }

    /// Connections held right now.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// `POST` requests held right now (deliveries in flight to the node behind).
    pub fn held_posts(&self) -> usize {
        self.held_posts.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Its URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a node behind a [`Proxy`]: the node's public URL is the proxy's, so partners
/// reach it only through the proxy.
pub async fn node_behind_proxy(identity: &Identity, backend: Backend) -> (Node, Proxy) {
    let listen = free_port();
    let proxy = Proxy::start(listen).await;
    let base = proxy.url();
    let node = Node::start_with(identity, backend, false, |c| {
        c.server.listen = listen;
        c.server.base_url = Some(base.parse().unwrap());
    })
    .await;
    (node, proxy)
}

impl Node {
    /// A counter of this node's `/metrics` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .map_or(0.0, |v| v.parse().unwrap())
    }
}

impl Node {
    /// The partner view of the node with actor id `actor`, if known.
    pub async fn partner_by_actor(&self, actor: &str) -> Option<Value> {
        let (s, list) = self.get("/api/v1/partners").await;
        assert_eq!(s, 200, "{list}");
        list.as_array()?
            .iter()
            .find(|p| p["actor"] == actor)
            .cloned()
    }
}

impl Node {
    /// A handle on the same node that talks to its listening address directly (not
    /// through the proxy its public URL goes to): its own HR API during a partition.
    pub fn direct(&self) -> Node {
        Node {
            name: self.name,
            base: format!("http://{}", self.config.server.listen),
            token: self.token.clone(),
            config: self.config.clone(),
            store: self.store.clone(),
            client: self.client.clone(),
            runner: Runner::Stopped,
            as_process: false,
            schema: None,
            _dir: None,
        }
    }
}

/// With `PASSERELLE_TEST_LOG=<filter>` (e.g. `warn`), the in-process nodes log to stderr.
fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("PASSERELLE_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}
