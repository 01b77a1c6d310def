//! `passerelle demo`: three federated collectivités on this machine — the Département de
//! l'Isère, Grenoble-Alpes Métropole and the Ville de Grenoble — each a real node with its
//! own SQLite database and key under `./passerelle-demo/`, on loopback ports in
//! development mode. At first start it sets each node up (identity, an admin account),
//! makes them partners of each other through their HR API, and publishes the postings of
//! the specification's examples (every kind); later starts reuse what is there. It prints
//! each node's console URL and credentials, and runs until Ctrl-C.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde_json::{Value, json};

use super::{CliResult, Failure, exit, open_store, shutdown_signal};
use crate::auth;
use crate::config::Config;
use crate::store::{AuditRecord, NodeIdentity, Role};

/// `passerelle demo` options.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Where the three nodes keep their databases and keys.
    #[arg(long, default_value = "passerelle-demo", value_name = "DIR")]
    pub dir: PathBuf,
    /// Port of the first node; the others use the next two.
    #[arg(long, default_value_t = 8081)]
    pub base_port: u16,
}

struct DemoNode {
    slug: &'static str,
    name: &'static str,
    siren: &'static str,
    kind: &'static str,
    /// Examples of `spec/examples/posting-*.json` this node publishes.
    postings: &'static [&'static str],
}

const NODES: [DemoNode; 3] = [
    DemoNode {
        slug: "isere",
        name: "Département de l'Isère",
        siren: "223800012",
        kind: "departement",
        postings: &[
            "mad-offer",
            "immersion-swap",
            "project-mission",
            "career-offer",
        ],
    },
    DemoNode {
        slug: "metropole",
        name: "Grenoble-Alpes Métropole",
        siren: "200040715",
        kind: "metropole",
        postings: &["facilitation-request", "training-session"],
    },
    DemoNode {
        slug: "grenoble",
        name: "Ville de Grenoble",
        siren: "213801855",
        kind: "commune",
        postings: &["vacancy", "immersion-offer"],
    },
];

/// The postings of the specification's examples (the same documents the spec's tests
/// check), embedded in the binary.
fn example(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "vacancy" => include_str!("../../../spec/examples/posting-vacancy.json"),
        "mad-offer" => include_str!("../../../spec/examples/posting-mad-offer.json"),
        "project-mission" => include_str!("../../../spec/examples/posting-project-mission.json"),
        "facilitation-request" => {
            include_str!("../../../spec/examples/posting-facilitation-request.json")
        }
        "immersion-offer" => include_str!("../../../spec/examples/posting-immersion-offer.json"),
        "immersion-swap" => include_str!("../../../spec/examples/posting-immersion-swap.json"),
        "training-session" => {
            include_str!("../../../spec/examples/posting-training-session.json")
        }
        "career-offer" => include_str!("../../../spec/examples/posting-career-offer.json"),
        _ => return None,
    })
}

/// An example as content for the HR API: the members the node sets itself removed.
fn content(kind: &str) -> anyhow::Result<Value> {
    let text = example(kind).with_context(|| format!("no example posting {kind}"))?;
    let mut doc: Value = serde_json::from_str(text)?;
    if let Value::Object(map) = &mut doc {
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
    }
    let today = time::OffsetDateTime::now_utc().date();
    crate::domain::examples::dates_from(&mut doc, today, 30);
    Ok(doc)
}

fn demo_config(dir: &Path, listen: SocketAddr) -> Config {
    let mut config = Config::default();
    config.server.listen = listen;
    config.data.dir = dir.to_path_buf();
    config.federation.allow_http_loopback_peers = true;
    config.federation.poll_interval_ms = 250;
    config.federation.pull_interval_secs = 60;
    config.log.filter =
        std::env::var("PASSERELLE_LOG_FILTER").unwrap_or_else(|_| "warn".to_owned());
    config
}

/// A random password for a demo account (letters and digits, 16 characters).
fn password() -> String {
    use rand::Rng as _;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

/// Sets up one node's database (identity, admin account) on first start and returns the
/// admin password and a short-lived API token for the set-up calls.
async fn prepare(node: &DemoNode, config: &Config) -> Result<(String, String), Failure> {
    let store = open_store(config, true).await?;
    let identity = NodeIdentity {
        name: node.name.to_owned(),
        siren: node.siren.to_owned(),
        kind: node.kind.to_owned(),
        username: node.slug.to_owned(),
    };
    let audit = AuditRecord::new("demo", "node.init", "node");
    store
        .init_identity(&identity, &audit)
        .await
        .map_err(anyhow::Error::new)?;
    let secret_file = config.data.dir.join("admin-password.txt");
    let password = match std::fs::read_to_string(&secret_file) {
        Ok(p) => p.trim().to_owned(),
        Err(_) => {
            let p = password();
            auth::create_account(&store, "admin", &p, Role::Admin, "demo")
                .await
                .map_err(anyhow::Error::new)?;
            write_private(&secret_file, &p)?;
            p
        }
    };
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let (_, token) = auth::create_token(&store, "demo-setup", Role::Admin, Some(expires), "demo")
        .await
        .map_err(anyhow::Error::new)?;
    store.close().await;
    Ok((password, token))
}

fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    use std::io::Write as _;
    let mut f = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{text}").with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A tiny HR API client for the set-up.
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("{method} {}{path} answered {status}: {text}", self.base);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Runs `passerelle demo`.
///
/// # Errors
/// A [`Failure`] with its exit code (ports taken, unwritable directory…).
pub async fn run(args: DemoArgs) -> CliResult {
    // Ctrl-C handlers first: a signal during the set-up must stop the demo cleanly too.
    let shutdown = shutdown_signal();
    let mut configs = Vec::new();
    for (i, node) in NODES.iter().enumerate() {
        let port = args
            .base_port
            .checked_add(u16::try_from(i).unwrap_or(0))
            .ok_or_else(|| Failure::new(exit::USAGE, anyhow::anyhow!("--base-port is too high")))?;
        let listen = SocketAddr::from(([127, 0, 0, 1], port));
        configs.push(demo_config(&args.dir.join(node.slug), listen));
    }
    crate::telemetry::init(&configs[0].log);
    let mut listeners = Vec::new();
    for c in &configs {
        let l = tokio::net::TcpListener::bind(c.server.listen).await.with_context(|| {
            format!(
                "cannot listen on {}; another program uses it: choose other ports with --base-port",
                c.server.listen
            )
        })?;
        listeners.push(l);
    }
    let mut credentials = Vec::new();
    for (node, config) in NODES.iter().zip(&configs) {
        credentials.push(prepare(node, config).await?);
    }
    // Start the three nodes in this process; Ctrl-C stops them all.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for (config, listener) in configs.iter().cloned().zip(listeners) {
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            crate::run(config, listener, async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
        }));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build an HTTP client")?;
    let apis: Vec<Api> = configs
        .iter()
        .zip(&credentials)
        .map(|(c, (_, token))| Api {
            client: client.clone(),
            base: c.base_url(),
            token: token.clone(),
        })
        .collect();
    if let Err(e) = set_up(&apis).await {
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        return Err(Failure::from(
            e.context("the demo could not set the nodes up"),
        ));
    }
    println!();
    println!("Passerelle demo: three federated collectivités on this machine (development mode).");
    for ((node, config), (password, _)) in NODES.iter().zip(&configs).zip(&credentials) {
        println!();
        println!("  {}", node.name);
        println!("    console     {}/", config.base_url());
        println!(
            "    HR API      {}/api/v1  (OpenAPI: {}/api/v1/openapi.json)",
            config.base_url(),
            config.base_url()
        );
        println!("    sign in     admin / {password}");
        println!("    data        {}", config.data.dir.display());
    }
    println!();
    println!("They are partners of each other and have published one posting of every kind.");
    println!(
        "Stop with Ctrl-C; start again with the same command (data is kept in {}).",
        args.dir.display()
    );
    shutdown.await;
    let _ = stop_tx.send(true);
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "a demo node stopped with an error"),
            Err(e) => tracing::warn!(error = %e, "a demo node panicked"),
        }
    }
    Ok(())
}

async fn wait_up(api: &Api) -> anyhow::Result<()> {
    for _ in 0..200 {
        if let Ok(r) = api.client.get(format!("{}/readyz", api.base)).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{} did not become ready", api.base)
}

/// Partnerships both ways between every pair, then the postings (first start only).
async fn set_up(apis: &[Api]) -> anyhow::Result<()> {
    use reqwest::Method;
    for api in apis {
        wait_up(api).await?;
        api.call(
            Method::PUT,
            "/api/v1/federation/policy",
            Some(&json!({ "policy": "open" })),
        )
        .await?;
    }
    for (i, a) in apis.iter().enumerate() {
        for (j, b) in apis.iter().enumerate() {
            if i == j {
                continue;
            }
            let known = a.call(Method::GET, "/api/v1/partners", None).await?;
            let actor = format!("{}/actor", b.base);
            let accepted = known.as_array().is_some_and(|list| {
                list.iter()
                    .any(|p| p["actor"] == actor.as_str() && p["outgoing"] == "accepted")
            });
            if !accepted {
                a.call(
                    Method::POST,
                    "/api/v1/partners",
                    Some(&json!({ "address": actor })),
                )
                .await?;
            }
        }
    }
    // Wait for the answers (a few hundred milliseconds on loopback).
    for _ in 0..100 {
        let mut all = true;
        for a in apis {
            let list = a.call(Method::GET, "/api/v1/partners", None).await?;
            let n = list.as_array().map_or(0, |l| {
                l.iter()
                    .filter(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
                    .count()
            });
            all &= n == apis.len() - 1;
        }
        if all {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (api, node) in apis.iter().zip(NODES.iter()) {
        let existing = api.call(Method::GET, "/api/v1/postings", None).await?;
        if existing.as_array().is_some_and(|l| !l.is_empty()) {
            continue;
        }
        for kind in node.postings {
            let mut body = content(kind)?;
            if *kind == "career-offer" {
                // A career offer is addressed to one node: the Ville de Grenoble.
                body["to"] = json!([format!("{}/actor", apis[2].base)]);
            }
            if *kind == "project-mission" {
                let circle = api
                    .call(
                        Method::POST,
                        "/api/v1/circles",
                        Some(&json!({
                            "name": "Métropole et Ville de Grenoble",
                            "members": [format!("{}/actor", apis[1].base), format!("{}/actor", apis[2].base)],
                        })),
                    )
                    .await?;
                body["circles"] = json!([circle["url"]]);
            }
            let created = api
                .call(Method::POST, "/api/v1/postings", Some(&body))
                .await?;
            let id = created["id"].as_str().unwrap_or_default();
            api.call(
                Method::POST,
                &format!("/api/v1/postings/{id}/publish"),
                Some(&json!({})),
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_published_by_one_node_and_its_example_is_embedded() {
        let mut kinds: Vec<&str> = NODES
            .iter()
            .flat_map(|n| n.postings.iter().copied())
            .collect();
        kinds.sort_unstable();
        assert_eq!(
            kinds,
            [
                "career-offer",
                "facilitation-request",
                "immersion-offer",
                "immersion-swap",
                "mad-offer",
                "project-mission",
                "training-session",
                "vacancy"
            ]
        );
        for k in kinds {
            let c = content(k).unwrap();
            assert!(
                c.get("id").is_none() && c.get("postingKind").is_some(),
                "{k}"
            );
        }
    }
}
