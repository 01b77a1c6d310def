//! The real `passerelle` binary on a real port, against each backend.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_passerelle");

/// A running `passerelle serve` process.
struct Server {
    child: Child,
    base: String,
    bootstrap: Option<String>,
}

impl Server {
    /// Starts `passerelle serve` on port 0 in `dir` (with the default database when
    /// `db_url` is empty) and waits for its banner.
    fn start(dir: &Path, db_url: &str) -> Self {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        if !db_url.is_empty() {
            args.extend(["--database-url", db_url]);
        }
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(args)
            .env_remove("PASSERELLE_CONFIG")
            .env("PASSERELLE_LOG_FILTER", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut base = None;
        let mut bootstrap = None;
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("passerelle serve printed its banner in time");
            if let Some(rest) = line.strip_prefix("Passerelle ") {
                base = rest.split(" listening on ").nth(1).map(str::to_owned);
            }
            if line.trim_start().starts_with("psl_") {
                bootstrap = Some(line.trim().to_owned());
            }
            if line.starts_with("identity not set") || line.starts_with("admin credential") {
                break;
            }
        }
        // Drain the rest of stdout in the background.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Self {
            child,
            base: base.expect("the banner says where it listens"),
            bootstrap,
        }
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("passerelle did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave a server running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn exercise(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &db.url);
    let token = server
        .bootstrap
        .clone()
        .expect("first start prints a bootstrap token");
    let http = reqwest::Client::new();
    let base = &server.base;
    assert_eq!(
        http.get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = http
        .put(format!("{base}/api/v1/node"))
        .bearer_auth(&token)
        .json(&json!({"name": "Ville de Grenoble", "siren": "213801855", "kind": "commune", "username": "grenoble"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let host = base.trim_start_matches("http://");
    let r = http
        .get(format!(
            "{base}/.well-known/webfinger?resource=acct:grenoble@{host}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jrd+json");
    let r = http.get(format!("{base}/actor")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/activity+json");
    let actor: serde_json::Value = r.json().await.unwrap();
    assert_eq!(actor["id"], format!("{base}/actor"));
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    // A restart keeps the data and the key, and prints no new bootstrap token.
    let mut server = Server::start(dir.path(), &db.url);
    assert!(server.bootstrap.is_none());
    let again: serde_json::Value = http
        .get(format!("{}/actor", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["assertionMethod"][0]["publicKeyMultibase"],
        actor["assertionMethod"][0]["publicKeyMultibase"]
    );
    assert!(server.terminate().success());
}

#[tokio::test]
async fn binary_serves_on_sqlite() {
    let db = TestDb::sqlite();
    exercise(&db).await;
}

#[tokio::test]
async fn binary_serves_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    exercise(&db).await;
    db.cleanup().await;
}

#[test]
fn serve_with_no_arguments_creates_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    // Port 8080 may be taken on a shared machine: only the listen address is overridden.
    let mut server = Server::start(dir.path(), "");
    let data = dir.path().join("passerelle-data");
    assert!(data.join("passerelle.db").exists());
    let key = data.join("node-key.secret");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(server.bootstrap.is_some());
    assert!(server.terminate().success());
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .env_remove("PASSERELLE_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_errors_are_one_line_with_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(
        dir.path(),
        &["check-config"],
        &[("PASSERELLE_SERVER_LISEN", "x")],
    );
    assert_eq!(code, 3, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "error: invalid configuration: unknown environment variable PASSERELLE_SERVER_LISEN"
        ),
        "{err}"
    );
    let (code, _, err) = run(
        dir.path(),
        &["check-config"],
        &[("PASSERELLE_DATABASE_URL", "mysql://x")],
    );
    assert_eq!(code, 3);
    assert!(
        err.contains("database.url") && err.contains("fix:"),
        "{err}"
    );
    let (code, out, _) = run(
        dir.path(),
        &["check-config"],
        &[("PASSERELLE_SERVER_LISTEN", "127.0.0.1:9999")],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("listen = \"127.0.0.1:9999\"  # environment"),
        "{out}"
    );
    let (code, _, _) = run(dir.path(), &["no-such-command"], &[]);
    assert_eq!(code, 2);
    let (code, _, err) = run(
        dir.path(),
        &[
            "serve",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        &[("PASSERELLE_SERVER_LISTEN", "127.0.0.1:0")],
    );
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{err}"
    );
}

#[test]
fn init_keys_tokens_users_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (code, out, err) = run(
        d,
        &[
            "init",
            "--name",
            "Ville de Grenoble",
            "--siren",
            "213801855",
            "--base-url",
            "https://rh.grenoble.example",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("acct:ville-de-grenoble") && out.contains("psl_"),
        "{out}"
    );
    assert!(
        std::fs::read_to_string(d.join("passerelle.toml"))
            .unwrap()
            .contains("https://rh.grenoble.example")
    );
    let (code, _, err) = run(d, &["init", "--name", "X", "--siren", "213801855"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("--force"), "{err}");
    let (code, _, err) = run(
        d,
        &["init", "--name", "X", "--siren", "123", "--force"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--siren"), "{err}");

    let (code, out, _) = run(d, &["keys", "show"], &[]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("current"));
    let (code, _, err) = run(d, &["keys", "rotate", "--grace-days", "10"], &[]);
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(d, &["keys", "show"], &[]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().any(|l| l.contains("expires")), "{out}");

    let (code, out, _) = run(
        d,
        &["token", "create", "--name", "sirh", "--role", "lecteur"],
        &[],
    );
    assert_eq!(code, 0);
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    let (_, list, _) = run(d, &["token", "list"], &[]);
    assert!(list.contains("sirh") && list.contains("active"), "{list}");
    assert_eq!(run(d, &["token", "revoke", &id], &[]).0, 0);
    let (_, list, _) = run(d, &["token", "list"], &[]);
    assert!(
        list.lines()
            .any(|l| l.contains("sirh") && l.contains("revoked")),
        "{list}"
    );
    assert_eq!(run(d, &["token", "revoke", &id], &[]).0, 1);

    let pw = d.join("pw");
    std::fs::write(&pw, "un mot de passe solide\n").unwrap();
    let (code, _, err) = run(
        d,
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--role",
            "admin",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run(
        d,
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 1);

    let (code, out, _) = run(d, &["diagnostics"], &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("database server: SQLite 3.")
            && out.contains(&format!(
                "migrations: {n}/{n}",
                n = passerelle_node::store::MIGRATION_FILES.len()
            ))
            && out.contains("clock (UTC)")
            && out.contains("database clock (UTC)"),
        "{out}"
    );
    let (code, out, _) = run(d, &["migrate"], &[]);
    assert_eq!(code, 0);
    let n = passerelle_node::store::MIGRATION_FILES.len();
    assert!(out.contains(&format!("{n}/{n}")), "{out}");
}

/// `passerelle_node::run` in-process: serves on port 0, stops when `shutdown` resolves,
/// and a restart on the same database finds what was written before.
#[tokio::test]
async fn run_in_process_stops_gracefully_and_keeps_data() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let mut config = passerelle_node::config::Config::default();
    config.data.dir = dir.path().to_path_buf();
    config.database.url = Some(db.url.clone());
    config.server.shutdown_grace_secs = 5;
    let store = db.store().await;
    let token = passerelle_node::auth::create_token(
        &store,
        "t",
        passerelle_node::store::Role::Rh,
        None,
        "test",
    )
    .await
    .unwrap()
    .1;
    store.close().await;

    let start = |config: passerelle_node::config::Config| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(passerelle_node::run(config, listener, async move {
            let _ = rx.await;
        }));
        (format!("http://{addr}"), tx, handle)
    };
    let http = reqwest::Client::new();
    let (base, stop, handle) = start(config.clone()).await;
    // Many writes in flight when the shutdown is requested: every accepted one is stored.
    let mut writes = Vec::new();
    for i in 0..20 {
        let req = http
            .post(format!("{base}/api/v1/agents"))
            .bearer_auth(&token)
            .json(&json!({ "display_name": format!("Agent {i}") }))
            .send();
        writes.push(tokio::spawn(req));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop.send(()).unwrap();
    let mut accepted = 0;
    for w in writes {
        if let Ok(Ok(r)) = w.await
            && r.status() == 201
        {
            accepted += 1;
        }
    }
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let (base, stop, handle) = start(config).await;
    let agents: serde_json::Value = http
        .get(format!("{base}/api/v1/agents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        agents.as_array().unwrap().len(),
        accepted,
        "every accepted write is stored"
    );
    stop.send(()).unwrap();
    handle.await.unwrap().unwrap();
}

/// Three consecutive free loopback ports, for `passerelle demo --base-port`.
fn three_free_ports() -> u16 {
    for _ in 0..50 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port > 65_000 {
            continue;
        }
        let others: Vec<_> = (1..3)
            .map(|i| std::net::TcpListener::bind(("127.0.0.1", port + i)))
            .collect();
        if others.iter().all(Result::is_ok) {
            return port;
        }
    }
    panic!("no three consecutive free ports");
}

/// `passerelle demo` (the README's first command): three nodes, partners of each other,
/// every kind of posting published and received where addressed; credentials printed;
/// Ctrl-C stops it cleanly, and a second start reuses the data.
#[tokio::test]
async fn demo_starts_three_federated_collectivites() {
    let dir = tempfile::tempdir().unwrap();
    let port = three_free_ports();
    let start = |dir: &Path| {
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(["demo", "--base-port", &port.to_string()])
            .env_remove("PASSERELLE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(90))
                .expect("the demo is ready in time");
            let done = line.starts_with("They are partners");
            lines.push(line);
            if done {
                break;
            }
        }
        std::thread::spawn(move || while rx.recv().is_ok() {});
        (child, lines)
    };
    let (mut child, lines) = start(dir.path());
    let passwords: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("sign in     admin / ")
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(passwords.len(), 3, "{lines:#?}");
    let http = reqwest::Client::new();
    let bases: Vec<String> = (0..3)
        .map(|i| format!("http://127.0.0.1:{}", port + i))
        .collect();
    // Each node: two partners both ways; the postings of the others arrive.
    let mut session = Vec::new();
    for (base, password) in bases.iter().zip(&passwords) {
        let r: serde_json::Value = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"username": "admin", "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        session.push(r["token"].as_str().unwrap().to_owned());
    }
    for (base, token) in bases.iter().zip(&session) {
        let partners: serde_json::Value = http
            .get(format!("{base}/api/v1/partners"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let both = partners
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
            .count();
        assert_eq!(both, 2, "{base}: {partners}");
    }
    // Grenoble receives the Département's career offer (addressed to it); the Métropole
    // does not. Received postings are visible in the inbox API.
    let received = |i: usize| {
        let http = http.clone();
        let base = bases[i].clone();
        let token = session[i].clone();
        async move {
            let v: serde_json::Value = http
                .get(format!("{base}/api/v1/inbox?limit=500"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "Create" && e["outcome"] == "posting stored")
                .count()
        }
    };
    let mut counts = [0; 3];
    for _ in 0..100 {
        counts = [received(0).await, received(1).await, received(2).await];
        if counts == [4, 5, 6] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        counts,
        [4, 5, 6],
        "postings received by Isère, Métropole, Grenoble"
    );
    // Ctrl-C stops the three nodes cleanly.
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    // A second start reuses the nodes: same passwords, nothing published twice.
    let (mut child, lines) = start(dir.path());
    assert!(lines.iter().any(|l| l.contains(&passwords[0])));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let db = dir.path().join("passerelle-demo/isere/passerelle.db");
    let store = passerelle_node::store::Store::connect(&format!("sqlite://{}", db.display()), 1)
        .await
        .unwrap();
    assert_eq!(store.postings(None).await.unwrap().len(), 4);
    store.close().await;
}
