//! [`AppState`]: everything a request handler needs, built once at start and passed to the
//! router. No globals: two nodes can run in one process (the multi-node tests do).

use std::sync::Arc;
use std::time::Instant;

use passerelle_protocol::keys::SigningKey;

use crate::config::Config;
use crate::http::metrics::Metrics;
use crate::keys::NodeSigningKey;
use crate::store::Store;

/// Shared state of a running node. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    base_url: String,
    signing_key: SigningKey,
    key_id: String,
    allow_http_loopback_peers: bool,
    metrics: Metrics,
    started: Instant,
    body_limit: usize,
    request_timeout: std::time::Duration,
}

impl AppState {
    /// Builds the state from the configuration, an open store and the signing key.
    pub fn new(config: &Config, store: Store, key: NodeSigningKey) -> Self {
        Self(Arc::new(Inner {
            store,
            base_url: config.base_url(),
            signing_key: key.key,
            key_id: key.key_id,
            allow_http_loopback_peers: config.federation.allow_http_loopback_peers,
            metrics: Metrics::default(),
            started: Instant::now(),
            body_limit: config.server.body_limit_bytes,
            request_timeout: std::time::Duration::from_secs(config.server.request_timeout_secs),
        }))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// Public base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    /// The node actor's id.
    pub fn actor_id(&self) -> String {
        format!("{}/actor", self.0.base_url)
    }

    /// The current signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.0.signing_key
    }

    /// The current key's fragment id.
    pub fn key_id(&self) -> &str {
        &self.0.key_id
    }

    /// Development mode: plain-http loopback peers accepted.
    pub fn allow_http_loopback_peers(&self) -> bool {
        self.0.allow_http_loopback_peers
    }

    /// Request metrics of this process.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// Time since start.
    pub fn uptime(&self) -> std::time::Duration {
        self.0.started.elapsed()
    }

    /// Largest accepted request body.
    pub fn body_limit(&self) -> usize {
        self.0.body_limit
    }

    /// Time limit per request.
    pub fn request_timeout(&self) -> std::time::Duration {
        self.0.request_timeout
    }
}
