//! [`AppState`]: everything a request handler needs, built once at start and passed to the
//! router. No globals: two nodes can run in one process (the multi-node tests do).

use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::federation::{Federation, Signer};
use crate::http::metrics::Metrics;
use crate::keys::{KeyRing, NodeSigningKey};
use crate::store::Store;

/// Shared state of a running node. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    base_url: String,
    federation: Arc<Federation>,
    limits: crate::http::limits::Limits,
    allow_http_loopback_peers: bool,
    metrics: Metrics,
    started: Instant,
    body_limit: usize,
    request_timeout: std::time::Duration,
}

impl AppState {
    /// Builds the state from the configuration, an open store and the signing key.
    ///
    /// # Errors
    /// When the federation settings are invalid or the HTTP client cannot be built.
    pub fn new(config: &Config, store: Store, key: NodeSigningKey) -> anyhow::Result<Self> {
        let base_url = config.base_url();
        let keyring = Arc::new(KeyRing::new(
            &format!("{base_url}/actor"),
            key,
            &config.key_file(),
        ));
        let federation = Arc::new(Federation::new(config, store.clone(), keyring)?);
        Ok(Self(Arc::new(Inner {
            store,
            base_url,
            federation,
            limits: crate::http::limits::Limits::new(config),
            allow_http_loopback_peers: config.federation.allow_http_loopback_peers,
            metrics: Metrics::default(),
            started: Instant::now(),
            body_limit: config.server.body_limit_bytes,
            request_timeout: std::time::Duration::from_secs(config.server.request_timeout_secs),
        })))
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

    /// The current signer (key and key id); it changes after a key rotation.
    pub fn signer(&self) -> Arc<Signer> {
        self.0.federation.signer()
    }

    /// The federation side (inbox checks, delivery, partners).
    pub fn federation(&self) -> &Arc<Federation> {
        &self.0.federation
    }

    /// The rate limiters of this process.
    pub fn limits(&self) -> &crate::http::limits::Limits {
        &self.0.limits
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
