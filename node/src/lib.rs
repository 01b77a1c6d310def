//! # Passerelle node
//!
//! The `passerelle` binary's library: configuration ([`config`]), storage on SQLite or
//! PostgreSQL ([`store`]), the node's signing key ([`keys`]), HR authentication
//! ([`auth`]), the HTTP server ([`http`]: discovery documents, HR API, operations) and
//! the command line ([`cli`]). [`run`] is the entry point the binary and the tests use.

pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod exports;
pub mod federation;
pub mod feed;
pub mod http;
pub mod keys;
pub mod mobility;
pub mod ops;
pub mod postings;
pub mod state;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

/// Runs a node on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (up to `server.shutdown_grace_secs`) and closes the database.
///
/// At start it opens the database (applying migrations unless
/// `database.migrate_on_start` is off; then an older schema is an error), loads or creates the key file,
/// creates a one-time admin token when the node has no credential yet, and prints where
/// it listens.
///
/// # Errors
/// When the database cannot be opened or migrated, the key file is unusable, or the
/// server fails.
pub async fn run(
    mut config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    if config.server.base_url.is_none() {
        // The default base URL follows the real port (port 0 picks one).
        config.server.listen = local;
    }
    let store = cli::open_store(&config, config.database.migrate_on_start)
        .await
        .map_err(|f| f.error)?;
    let key = keys::load_and_register(&store, &config.key_file()).await?;
    let bootstrap = auth::bootstrap_token(&store).await?;
    let indexed = store.reindex_feed().await?;
    if indexed > 0 {
        tracing::info!(indexed, "postings added to the feed index");
    }
    // Planner statistics (the feed's plans depend on them); then once an hour.
    if let Err(e) = store.optimize(indexed > 0).await {
        tracing::warn!(error = %e, "could not refresh the planner statistics");
    }
    let state = AppState::new(&config, store.clone(), key)?;
    let base = config.base_url();

    println!(
        "Passerelle {} listening on http://{local}",
        env!("CARGO_PKG_VERSION")
    );
    println!("public URL: {base} (actor {base}/actor)");
    println!("console and HR API: {base}/ and {base}/api/v1 (OpenAPI: {base}/api/v1/openapi.json)");
    println!("database: {}", config::redact_url(&config.database_url()));
    if config.federation.allow_http_loopback_peers {
        println!(
            "WARNING: DEVELOPMENT MODE: plain-http partner nodes on loopback addresses are accepted (federation.allow_http_loopback_peers). Never use this in production."
        );
        tracing::warn!(
            "DEVELOPMENT MODE: federation.allow_http_loopback_peers is on; never use this in production"
        );
    }
    match &bootstrap {
        Some(secret) => cli::print_bootstrap(secret),
        None => println!(
            "admin credential: use your account (POST /api/v1/session) or create a token with `passerelle token create --name NAME`"
        ),
    }
    if store.identity().await.is_err() {
        println!(
            "identity not set yet: run `passerelle init --name … --siren …` or PUT /api/v1/node with the admin token"
        );
    }

    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (workers_tx, workers_rx) = tokio::sync::watch::channel(false);
    let mut workers = federation::spawn(state.federation(), workers_rx.clone());
    workers.push(tokio::spawn(optimize_periodically(
        store.clone(),
        workers_rx,
    )));
    let signal = async move {
        shutdown.await;
        let _ = workers_tx.send(true);
        let _ = stop_tx.send(());
    };
    let app = http::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(signal);
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        res = &mut server => res.context("the HTTP server failed")?,
        _ = async {
            let _ = stop_rx.await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time; stopping");
        }
    }
    // The workers saw the signal with the server; give them the grace period to finish
    // what they hold (anything left is taken again through its lease).
    let _ = tokio::time::timeout(grace, async {
        for w in workers {
            let _ = w.await;
        }
    })
    .await;
    // Closing waits for the connections still in use: a worker left past its grace period
    // may hold one. It is given the grace period too, so that a stop always ends (what it
    // held is taken again through its lease, or rolled back by the database).
    if tokio::time::timeout(grace, store.close()).await.is_err() {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "database connections still in use after the grace period; stopping without them"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// Refreshes the planner statistics every hour ([`store::Store::optimize`]).
async fn optimize_periodically(
    store: store::Store,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        if federation::sleep_or_stop(Duration::from_secs(3600), &mut shutdown).await {
            return;
        }
        if let Err(e) = store.optimize(false).await {
            tracing::warn!(error = %e, "could not refresh the planner statistics");
        }
    }
}
