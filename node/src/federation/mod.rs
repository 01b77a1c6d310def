//! Federation: what a node does with its partners (spec/protocol.md §5–§10).
//!
//! - `inbox` verifies what arrives (pushed to the inbox or pulled from an outbox) and
//!   stores it durably before the `202`;
//! - `process` projects stored activities (partnerships, the remote postings cache,
//!   relays) from the stored copy, and hands mobility activities (MAD requests,
//!   conventions, profiles) to `mobility`;
//! - `delivery` sends what the outbox holds: signed `POST`s with retries, backoff and
//!   dead letters, per recipient inbox;
//! - `sync` pulls partners' outboxes from a durable cursor (catch-up);
//! - `partners` is the service behind the HR API and the CLI (follow, accept, refuse,
//!   end, block, circles, policy);
//! - `actors` resolves and caches remote actors and their keys; `net` is the one outgoing
//!   HTTP client with the SSRF rules; `backoff` holds the pure retry rules.
//!
//! Every piece of work lives in the database (inbox rows, delivery jobs, pull cursors)
//! and is claimed with a lease, so several processes can share one PostgreSQL database
//! and a process that dies leaves nothing stuck. The workers started by [`spawn`] stop
//! when the shutdown signal fires.

pub mod actors;
pub mod backoff;
pub mod delivery;
pub mod error;
pub mod group_commit;
pub mod inbox;
pub mod mobility;
pub mod net;
pub mod partners;
pub mod process;
pub mod sync;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use passerelle_protocol::ids::{self, ActorId, ObjectId};
use passerelle_protocol::proof::{self, ProofOptions};
use passerelle_protocol::vocab::{self, Activity, ActivityType, ObjectRef, ValidationContext};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::{Config, FederationConfig};
use crate::keys::KeyRing;
pub use crate::keys::Signer;
use crate::store::{NewActivity, Store};

use self::actors::ActorDirectory;
use self::backoff::Schedule;
use self::net::{Net, NetPolicy};

/// Counters of this process, rendered at `/metrics`.
#[derive(Debug, Default)]
pub struct FederationMetrics {
    inbox: std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>,
    /// Delivery attempts that succeeded.
    pub deliveries_ok: AtomicU64,
    /// Delivery attempts that failed and will be retried.
    pub deliveries_retry: AtomicU64,
    /// Deliveries dead-lettered.
    pub deliveries_dead: AtomicU64,
    /// Activities pulled and stored.
    pub pulled: AtomicU64,
    /// Pulls that failed.
    pub pull_errors: AtomicU64,
    /// Activities projected.
    pub projected: AtomicU64,
}

impl FederationMetrics {
    /// Counts one activity received (`via`: `push` or `pull`) with its outcome: `accepted`,
    /// `duplicate`, or the refusal code.
    pub fn inbox(&self, via: &'static str, outcome: &'static str) {
        let mut map = self
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((via, outcome)).or_default() += 1;
    }

    /// Renders the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP passerelle_inbox_activities_total Activities received, by way (push, pull) and outcome (accepted, duplicate, or the refusal code).\n");
        out.push_str("# TYPE passerelle_inbox_activities_total counter\n");
        let map = self
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(&("push", "accepted")) {
            // Present from the start, so that alert expressions find the series.
            out.push_str(
                "passerelle_inbox_activities_total{via=\"push\",outcome=\"accepted\"} 0\n",
            );
        }
        for ((via, outcome), n) in map.iter() {
            let _ = writeln!(
                out,
                "passerelle_inbox_activities_total{{via=\"{via}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        drop(map);
        out.push_str("# HELP passerelle_delivery_attempts_total Delivery attempts of this process, by result.\n");
        out.push_str("# TYPE passerelle_delivery_attempts_total counter\n");
        for (result, v) in [
            ("delivered", &self.deliveries_ok),
            ("retry", &self.deliveries_retry),
            ("dead", &self.deliveries_dead),
        ] {
            let _ = writeln!(
                out,
                "passerelle_delivery_attempts_total{{result=\"{result}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        for (name, help, v) in [
            (
                "passerelle_pulled_activities_total",
                "Activities stored by pulls of partners' outboxes.",
                &self.pulled,
            ),
            (
                "passerelle_pull_errors_total",
                "Pulls of a partner's outbox that failed.",
                &self.pull_errors,
            ),
            (
                "passerelle_projected_activities_total",
                "Received activities projected (partnerships, postings cache…).",
                &self.projected,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
    }
}

/// Errors of federation services that are not protocol refusals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FederationError {
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A remote actor could not be resolved.
    #[error(transparent)]
    Actor(#[from] actors::ActorError),
    /// The request is not possible in the current state (French, for HR users).
    #[error("{0}")]
    Invalid(String),
    /// Building or signing a message failed (a bug).
    #[error("cannot build a message: {0}")]
    Build(String),
}

/// The federation side of a node: its keys, its outgoing client, its actor directory and
/// its settings. One per process; cheap to share (`Arc`).
pub struct Federation {
    store: Store,
    net: Net,
    actors: ActorDirectory,
    keyring: Arc<KeyRing>,
    base_url: String,
    actor_id: String,
    validation: ValidationContext,
    config: FederationConfig,
    body_limit: usize,
    owner: String,
    metrics: FederationMetrics,
    last_seen: inbox::LastSeen,
    pushes: process::Pressure,
    batcher: std::sync::OnceLock<inbox::Batcher>,
    policy: std::sync::Mutex<Option<(std::time::Instant, u64, Arc<PolicySnapshot>)>>,
}

/// How long a process trusts its copy of the block list and partnership states. Changes
/// made by this process take effect at once (the store bumps a generation); those of
/// another process sharing the database within this delay.
const POLICY_TTL: Duration = Duration::from_secs(2);

/// The block list and the partnership states, as the inbox checks them for every
/// activity (kept in memory for [`POLICY_TTL`]).
#[derive(Debug, Default)]
pub struct PolicySnapshot {
    blocks: Vec<crate::store::Block>,
    partners: std::collections::BTreeMap<String, crate::store::Partner>,
}

impl PolicySnapshot {
    /// Whether the actor, or its origin, is blocked.
    pub fn is_blocked(&self, actor_id: &str) -> bool {
        let origin = crate::store::origin_of(actor_id);
        self.blocks.iter().any(|b| {
            b.target == actor_id
                || (b.kind == crate::store::BlockKind::Origin && b.target == origin)
        })
    }

    /// What we know of a node.
    pub fn partner(&self, actor_id: &str) -> Option<&crate::store::Partner> {
        self.partners.get(actor_id)
    }
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("actor_id", &self.actor_id)
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// Builds the federation side from the configuration.
    ///
    /// # Errors
    /// When the configuration is invalid (address ranges) or the HTTP client cannot be
    /// built.
    pub fn new(config: &Config, store: Store, keyring: Arc<KeyRing>) -> anyhow::Result<Self> {
        let fed = &config.federation;
        let policy = NetPolicy {
            allow_loopback: fed.allow_http_loopback_peers,
            private_hosts: fed.private_network_hosts.clone(),
            private_ranges: fed.private_ranges()?,
        };
        let net = Net::new(
            policy,
            Duration::from_secs(fed.connect_timeout_secs),
            Duration::from_secs(fed.request_timeout_secs),
            format!(
                "Passerelle/{} (+{})",
                env!("CARGO_PKG_VERSION"),
                config.base_url()
            ),
        )?;
        let validation = if fed.allow_http_loopback_peers {
            ValidationContext::development()
        } else {
            ValidationContext::production()
        };
        let signer_ring = keyring.clone();
        let actors = ActorDirectory::new(
            store.clone(),
            net.clone(),
            Arc::new(move || signer_ring.current()),
            validation,
        );
        let base_url = config.base_url();
        Ok(Self {
            store,
            net,
            actors,
            keyring,
            actor_id: format!("{base_url}/actor"),
            base_url,
            validation,
            config: fed.clone(),
            body_limit: config.server.body_limit_bytes.max(inbox::MAX_INBOX_BODY),
            owner: format!(
                "{}-{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "node".to_owned()),
                std::process::id(),
                Uuid::now_v7().simple()
            ),
            metrics: FederationMetrics::default(),
            last_seen: inbox::LastSeen::default(),
            pushes: process::Pressure::default(),
            batcher: std::sync::OnceLock::new(),
            policy: std::sync::Mutex::new(None),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The outgoing HTTP client.
    pub fn net(&self) -> &Net {
        &self.net
    }

    /// The directory of remote actors.
    pub fn actors(&self) -> &ActorDirectory {
        &self.actors
    }

    /// The current signer.
    pub fn signer(&self) -> Arc<Signer> {
        self.keyring.current()
    }

    /// The key ring.
    pub fn keyring(&self) -> &Arc<KeyRing> {
        &self.keyring
    }

    /// Our actor id.
    pub fn actor_id(&self) -> &str {
        &self.actor_id
    }

    /// Our public base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Our `followers` collection (our partners).
    pub fn followers_url(&self) -> String {
        format!("{}/followers", self.base_url)
    }

    /// Validation rules (development mode accepts loopback http ids).
    pub fn validation(&self) -> &ValidationContext {
        &self.validation
    }

    /// The `[federation]` settings.
    pub fn config(&self) -> &FederationConfig {
        &self.config
    }

    /// Largest inbox body accepted.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// This process's lease owner name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// This process's counters.
    pub fn metrics(&self) -> &FederationMetrics {
        &self.metrics
    }

    /// The inbox's group commit, once the workers run.
    pub fn batcher(&self) -> Option<&inbox::Batcher> {
        self.batcher.get()
    }

    /// The block list and partnership states (a copy at most [`POLICY_TTL`] old).
    ///
    /// # Errors
    /// A store error.
    pub async fn policy(&self) -> Result<Arc<PolicySnapshot>, crate::store::StoreError> {
        {
            let cached = self
                .policy
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, generation, snap)) = cached.as_ref()
                && at.elapsed() < POLICY_TTL
                && *generation == self.store.events().policy_generation()
            {
                return Ok(snap.clone());
            }
        }
        let generation = self.store.events().policy_generation();
        let snap = Arc::new(PolicySnapshot {
            blocks: self.store.blocks().await?,
            partners: self
                .store
                .partners()
                .await?
                .into_iter()
                .map(|p| (p.actor_id.clone(), p))
                .collect(),
        });
        *self
            .policy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), generation, snap.clone()));
        Ok(snap)
    }

    /// When each partner was last heard from by this process.
    pub fn last_seen(&self) -> &inbox::LastSeen {
        &self.last_seen
    }

    /// When this process's inbox last stored a pushed activity: the projection yields to
    /// it, within a bound ([`process::run`]).
    pub fn pushes(&self) -> &process::Pressure {
        &self.pushes
    }

    /// The retry schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            base: Duration::from_millis(self.config.retry_base_ms),
            cap: Duration::from_millis(self.config.retry_cap_ms),
            dead_letter_after: Duration::from_secs(self.config.dead_letter_after_secs),
            auth_retry: Duration::from_millis(self.config.auth_retry_delay_ms),
        }
    }

    /// Signs `doc` with the current key (`eddsa-jcs-2022`).
    ///
    /// # Errors
    /// [`FederationError::Build`] if signing fails.
    pub fn sign(&self, doc: Value) -> Result<Value, FederationError> {
        let signer = self.signer();
        let options = ProofOptions::new(signer.key_id(), OffsetDateTime::now_utc());
        proof::sign(doc, signer.key(), &options).map_err(|e| FederationError::Build(e.to_string()))
    }

    /// Builds and signs an activity of ours, ready for the outbox.
    ///
    /// # Errors
    /// [`FederationError::Build`] if the activity cannot be built or signed.
    pub fn activity(
        &self,
        kind: ActivityType,
        object: ObjectRef,
        to: Vec<String>,
        cc: Vec<String>,
    ) -> Result<NewActivity, FederationError> {
        let build = |e: String| FederationError::Build(e);
        let actor: ActorId = self.actor_id.parse().map_err(|e| build(format!("{e}")))?;
        let id: ObjectId = ids::mint(&self.base_url, "activities", Uuid::now_v7())
            .map_err(|e| build(format!("activity id: {e}")))?;
        let object_id = object.id().unwrap_or_default().to_owned();
        let mut act = Activity::new(kind, id.clone(), actor, object, to);
        act.cc = cc;
        act.published = Some(now_seconds());
        let public = act.is_public();
        let value = serde_json::to_value(&act).map_err(|e| build(e.to_string()))?;
        let document = self.sign(value)?;
        Ok(NewActivity {
            activity_id: id.to_string(),
            activity_type: kind.name().to_owned(),
            object_id,
            public,
            document,
        })
    }
}

/// Now, to the second (documents carry times to the second).
pub fn now_seconds() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// A random draw in [0, 1) for jitter.
pub(crate) fn jitter() -> f64 {
    rand::random::<f64>()
}

/// Starts this process's federation workers: projection of received activities, delivery
/// of the outbox, pulls of partners' outboxes, the key watcher, and the inbox's group
/// commit. They stop when
/// `shutdown` turns `true`; in-flight work either finishes or is left to its lease.
pub fn spawn(
    fed: &Arc<Federation>,
    shutdown: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    if fed.batcher.get().is_none() {
        let (batcher, task) = inbox::Batcher::spawn(fed.store.clone(), shutdown.clone());
        if fed.batcher.set(batcher).is_ok() {
            handles.push(task);
        } else {
            task.abort();
        }
    }
    handles.extend([
        tokio::spawn(process::run(fed.clone(), shutdown.clone())),
        tokio::spawn(delivery::run(fed.clone(), shutdown.clone())),
        tokio::spawn(sync::run(fed.clone(), shutdown.clone())),
        tokio::spawn(crate::mobility::timers::run(fed.clone(), shutdown.clone())),
        tokio::spawn(watch_keys(fed.clone(), shutdown)),
    ]);
    handles
}

/// Waits for `d`, or until shutdown; returns `true` when shutting down.
pub(crate) async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

async fn watch_keys(fed: Arc<Federation>, mut shutdown: watch::Receiver<bool>) {
    let interval = Duration::from_millis(fed.config.poll_interval_ms.max(1000) * 5);
    loop {
        if sleep_or_stop(interval, &mut shutdown).await {
            return;
        }
        match fed.keyring.refresh(&fed.store).await {
            Ok(true) => tracing::info!(
                key = fed.signer().key_id(),
                "signing key changed (rotation); now signing with the new key"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot reload the signing key"),
        }
    }
}

/// The audience of a document (`to` then `cc`).
pub fn audience(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["to", "cc"] {
        match doc.get(key) {
            Some(Value::Array(a)) => {
                out.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            Some(Value::String(s)) => out.push(s.clone()),
            _ => {}
        }
    }
    out
}

/// Whether an address is the public collection (in any of its spellings).
pub fn is_public(address: &str) -> bool {
    vocab::is_public(address)
}
