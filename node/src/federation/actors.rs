//! Remote actors and their keys (protocol §3.2, §5.1): resolution from a cache (this
//! process's memory for a few minutes, then the database for at most 24 hours), else a
//! signed fetch from the actor's origin; a refetch, at most once per actor every five
//! minutes, when a key id is unknown or a signature fails with the cached key, so that a
//! partner's rotation heals without an operator. Also WebFinger resolution of addresses
//! typed by operators (`acct:drh@rh.grenoble.fr`, `drh@rh.grenoble.fr`, or a URL).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use passerelle_protocol::canonical::{ParseLimits, parse_strict};
use passerelle_protocol::ids::{ActorId, KeyId};
use passerelle_protocol::keys::PublicKey;
use passerelle_protocol::vocab::{Jrd, Organization, Validate as _, ValidationContext};
use serde_json::Value;
use time::OffsetDateTime;

use super::Signer;
use super::net::{ACTIVITY_JSON, Net, NetError};
use crate::store::{Store, StoreError};

/// How long an actor stays in a process's memory before the database is read again.
const MEMORY_TTL: Duration = Duration::from_secs(300);
/// Longest age of a cached actor document (protocol §3.2).
pub const CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Shortest interval between two refetches of one actor (protocol §3.2).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(300);

/// An actor document fetched from its origin and validated.
#[derive(Debug, Clone)]
pub struct ResolvedActor {
    /// The parsed document.
    pub doc: Organization,
    /// When it was fetched.
    pub fetched_at: OffsetDateTime,
    /// `doc.assertion_method`'s keys, decoded once (a multibase decoding and a point
    /// decompression per key, not per verified signature); `Err` for a key that is not
    /// an Ed25519 Multikey.
    keys: Vec<Result<PublicKey, String>>,
}

impl ResolvedActor {
    /// The actor `doc`, fetched at `fetched_at`, with its keys decoded.
    pub fn new(doc: Organization, fetched_at: OffsetDateTime) -> Self {
        let keys = doc
            .assertion_method
            .iter()
            .map(|k| k.public_key().map_err(|e| e.to_string()))
            .collect();
        Self {
            doc,
            fetched_at,
            keys,
        }
    }
}

/// Why an actor could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// Its origin could not be reached or answered an error: retry later.
    #[error("cannot fetch actor {actor}: {reason}")]
    Unreachable {
        /// The actor id.
        actor: String,
        /// What failed.
        reason: String,
    },
    /// The URL may not be fetched (SSRF rule, scheme).
    #[error("actor {actor} may not be fetched: {reason}")]
    Refused {
        /// The actor id.
        actor: String,
        /// Why.
        reason: String,
    },
    /// The document is not a valid Passerelle actor.
    #[error("actor {actor} is not a valid Passerelle actor: {reason}")]
    Invalid {
        /// The actor id.
        actor: String,
        /// What is wrong.
        reason: String,
    },
    /// The actor is gone (410).
    #[error("actor {actor} is gone (410)")]
    Gone {
        /// The actor id.
        actor: String,
    },
}

/// Why a key could not be used.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLookupError {
    /// The key id is not the id of a key listed by its actor (after a refetch).
    #[error("key {key_id} is unknown: {reason}")]
    Unknown {
        /// The key id.
        key_id: String,
        /// Why.
        reason: String,
    },
    /// The key expired before the signature was made.
    #[error("key {key_id} expired at {expires}")]
    Expired {
        /// The key id.
        key_id: String,
        /// Its expiry.
        expires: String,
    },
    /// The key was declared compromised.
    #[error("key {key_id} was revoked at {revoked}")]
    Revoked {
        /// The key id.
        key_id: String,
        /// The declaration.
        revoked: String,
    },
    /// The key's actor could not be fetched (temporary).
    #[error("the actor of key {key_id} could not be fetched: {reason}")]
    FetchFailed {
        /// The key id.
        key_id: String,
        /// What failed.
        reason: String,
    },
}

/// What the key is used for: a transport signature made now, or an object proof made at
/// `created` (an expired key still verifies proofs made before its expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// An HTTP signature, checked at `now`.
    Transport {
        /// The verifier's clock.
        now: OffsetDateTime,
    },
    /// An object proof made at `created` (the verifier's clock when absent).
    Proof {
        /// The proof's `created`.
        created: OffsetDateTime,
    },
}

/// A usable key with its actor.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    /// The actor that owns the key.
    pub actor: Arc<ResolvedActor>,
    /// The key.
    pub key: PublicKey,
    /// Its id.
    pub key_id: String,
}

/// The directory of remote actors.
pub struct ActorDirectory {
    store: Store,
    net: Net,
    signer: Arc<dyn Fn() -> Arc<Signer> + Send + Sync>,
    validation: ValidationContext,
    memory: Mutex<BTreeMap<String, (Arc<ResolvedActor>, Instant)>>,
    refetched: Mutex<BTreeMap<String, Instant>>,
}

impl std::fmt::Debug for ActorDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorDirectory").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ActorDirectory {
    /// A directory over `store` and `net`; `signer` gives the current signing key (fetches
    /// are signed).
    pub fn new(
        store: Store,
        net: Net,
        signer: Arc<dyn Fn() -> Arc<Signer> + Send + Sync>,
        validation: ValidationContext,
    ) -> Self {
        Self {
            store,
            net,
            signer,
            validation,
            memory: Mutex::new(BTreeMap::new()),
            refetched: Mutex::new(BTreeMap::new()),
        }
    }

    /// The actor, from the caches when fresh, else fetched.
    ///
    /// # Errors
    /// Any [`ActorError`].
    pub async fn get(&self, actor_id: &str) -> Result<Arc<ResolvedActor>, ActorError> {
        if let Some((actor, at)) = lock(&self.memory).get(actor_id)
            && at.elapsed() < MEMORY_TTL
        {
            return Ok(actor.clone());
        }
        match self.store.remote_actor(actor_id).await {
            Ok(Some((raw, fetched_at)))
                if OffsetDateTime::now_utc() - fetched_at
                    < time::Duration::try_from(CACHE_TTL).unwrap_or(time::Duration::DAY) =>
            {
                if let Ok(doc) = self.parse(actor_id, &raw) {
                    let actor = Arc::new(ResolvedActor::new(doc, fetched_at));
                    lock(&self.memory).insert(actor_id.to_owned(), (actor.clone(), Instant::now()));
                    return Ok(actor);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the actor cache; fetching");
            }
        }
        self.fetch(actor_id).await
    }

    /// Refetches the actor unless it was refetched less than five minutes ago (then the
    /// cached copy is returned).
    ///
    /// # Errors
    /// Any [`ActorError`].
    pub async fn refetch(&self, actor_id: &str) -> Result<Arc<ResolvedActor>, ActorError> {
        let recent = lock(&self.refetched)
            .get(actor_id)
            .is_some_and(|at| at.elapsed() < REFETCH_INTERVAL);
        if recent {
            return self.get(actor_id).await;
        }
        lock(&self.refetched).insert(actor_id.to_owned(), Instant::now());
        self.fetch(actor_id).await
    }

    /// Forgets the cached copy in this process (after an `Update` of the actor).
    pub fn forget(&self, actor_id: &str) {
        lock(&self.memory).remove(actor_id);
    }

    fn parse(&self, actor_id: &str, raw: &Value) -> Result<Organization, ActorError> {
        let invalid = |reason: String| ActorError::Invalid {
            actor: actor_id.to_owned(),
            reason,
        };
        passerelle_protocol::vocab::check_no_nul(raw).map_err(|p| invalid(p.to_string()))?;
        let doc: Organization =
            serde_json::from_value(raw.clone()).map_err(|e| invalid(e.to_string()))?;
        doc.validate(&self.validation)
            .map_err(|p| invalid(p.to_string()))?;
        if doc.id.as_str() != actor_id {
            return Err(invalid(format!(
                "its id is {}, not the URL it was fetched from",
                doc.id
            )));
        }
        Ok(doc)
    }

    /// Fetches and caches the actor.
    ///
    /// # Errors
    /// Any [`ActorError`].
    pub async fn fetch(&self, actor_id: &str) -> Result<Arc<ResolvedActor>, ActorError> {
        let signer = (self.signer)();
        let fetched = self
            .net
            .get(actor_id, ACTIVITY_JSON, Some(&signer))
            .await
            .map_err(|e| match e {
                NetError::Refused { reason, .. } => ActorError::Refused {
                    actor: actor_id.to_owned(),
                    reason,
                },
                other => ActorError::Unreachable {
                    actor: actor_id.to_owned(),
                    reason: other.to_string(),
                },
            })?;
        match fetched.status {
            200 => {}
            410 => {
                return Err(ActorError::Gone {
                    actor: actor_id.to_owned(),
                });
            }
            404 => {
                return Err(ActorError::Invalid {
                    actor: actor_id.to_owned(),
                    reason: "its origin answered 404".to_owned(),
                });
            }
            s => {
                return Err(ActorError::Unreachable {
                    actor: actor_id.to_owned(),
                    reason: format!("its origin answered {s}"),
                });
            }
        }
        if fetched.url.as_str() != actor_id {
            return Err(ActorError::Invalid {
                actor: actor_id.to_owned(),
                reason: format!("it was served from {} after redirects", fetched.url),
            });
        }
        check_media_type(fetched.content_type.as_deref()).map_err(|reason| {
            ActorError::Invalid {
                actor: actor_id.to_owned(),
                reason,
            }
        })?;
        let raw = parse_strict(&fetched.body, &ParseLimits::default()).map_err(|e| {
            ActorError::Invalid {
                actor: actor_id.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let doc = self.parse(actor_id, &raw)?;
        if let Err(e) = self.store.put_remote_actor(actor_id, &raw).await {
            tracing::warn!(error = %e, actor = actor_id, "cannot cache an actor");
        }
        let actor = Arc::new(ResolvedActor::new(doc, OffsetDateTime::now_utc()));
        lock(&self.memory).insert(actor_id.to_owned(), (actor.clone(), Instant::now()));
        Ok(actor)
    }

    /// Resolves `key_id` for `usage`: the key must be listed in its actor's
    /// `assertionMethod` with that actor as controller (refetching the actor once when it
    /// is not), not revoked, and not expired for that use.
    ///
    /// # Errors
    /// Any [`KeyLookupError`].
    pub async fn key(&self, key_id: &str, usage: KeyUse) -> Result<ResolvedKey, KeyLookupError> {
        let unknown = |reason: String| KeyLookupError::Unknown {
            key_id: key_id.to_owned(),
            reason,
        };
        let id: KeyId = key_id
            .parse()
            .map_err(|e| unknown(format!("not a key id: {e}")))?;
        let actor_id = id.controller();
        let fetch_failed = |e: ActorError| match e {
            ActorError::Unreachable { reason, .. } => KeyLookupError::FetchFailed {
                key_id: key_id.to_owned(),
                reason,
            },
            other => unknown(other.to_string()),
        };
        let mut actor = self.get(actor_id.as_str()).await.map_err(fetch_failed)?;
        let mut refetched = false;
        loop {
            match find_key(&actor, &id, &actor_id) {
                Some(k) => return check_key(key_id, &actor, k, usage),
                None if !refetched => {
                    refetched = true;
                    actor = self
                        .refetch(actor_id.as_str())
                        .await
                        .map_err(fetch_failed)?;
                }
                None => {
                    return Err(unknown(format!(
                        "{} does not list it in assertionMethod",
                        actor_id
                    )));
                }
            }
        }
    }

    /// Resolves an address typed by an operator to an actor id: an actor URL, an origin
    /// (`https://rh.grenoble.fr`, resolved by WebFinger), `acct:NAME@DOMAIN` or
    /// `NAME@DOMAIN` (WebFinger).
    ///
    /// # Errors
    /// [`ActorError`] when nothing answers or the answer is not a Passerelle actor.
    pub async fn resolve_address(&self, address: &str) -> Result<Arc<ResolvedActor>, ActorError> {
        let address = address.trim();
        let acct = address.strip_prefix("acct:").unwrap_or(address);
        if !acct.contains("://") && acct.contains('@') {
            let Some((_, domain)) = acct.rsplit_once('@') else {
                return Err(ActorError::Invalid {
                    actor: address.to_owned(),
                    reason: "expected NAME@DOMAIN".to_owned(),
                });
            };
            let scheme = if self.net.policy().allow_loopback && is_loopback_domain(domain) {
                "http"
            } else {
                "https"
            };
            let origin = format!("{scheme}://{domain}");
            return self.webfinger(&origin, &format!("acct:{acct}")).await;
        }
        let url = url::Url::parse(address).map_err(|e| ActorError::Invalid {
            actor: address.to_owned(),
            reason: format!("neither NAME@DOMAIN nor a URL: {e}"),
        })?;
        if url.path() != "/" && !url.path().is_empty() {
            // A URL with a path names the actor itself: its own error is the useful one.
            return self.fetch(url.as_str()).await;
        }
        let origin = url.origin().ascii_serialization();
        self.webfinger(&origin, url.as_str()).await
    }

    async fn webfinger(
        &self,
        origin: &str,
        resource: &str,
    ) -> Result<Arc<ResolvedActor>, ActorError> {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("resource", resource)
            .finish();
        let wf = format!("{origin}/.well-known/webfinger?{query}");
        let fetched = self
            .net
            .get(&wf, "application/jrd+json", None)
            .await
            .map_err(|e| ActorError::Unreachable {
                actor: resource.to_owned(),
                reason: e.to_string(),
            })?;
        if fetched.status != 200 {
            return Err(ActorError::Invalid {
                actor: resource.to_owned(),
                reason: format!("WebFinger at {origin} answered {}", fetched.status),
            });
        }
        let jrd: Jrd = serde_json::from_slice(&fetched.body).map_err(|e| ActorError::Invalid {
            actor: resource.to_owned(),
            reason: format!("WebFinger answer: {e}"),
        })?;
        let actor_id: ActorId = jrd.actor_id().ok_or_else(|| ActorError::Invalid {
            actor: resource.to_owned(),
            reason: "the WebFinger answer has no self link to an actor".to_owned(),
        })?;
        if actor_id.origin().ascii_serialization() != origin {
            return Err(ActorError::Invalid {
                actor: resource.to_owned(),
                reason: format!("WebFinger at {origin} points to another origin ({actor_id})"),
            });
        }
        self.fetch(actor_id.as_str()).await
    }
}

fn is_loopback_domain(domain: &str) -> bool {
    let host = domain.rsplit_once(':').map_or(domain, |(h, _)| h);
    host == "localhost"
        || host.ends_with(".localhost")
        || host.starts_with("127.")
        || host == "[::1]"
}

/// Checks that a fetched document is JSON of an ActivityStreams media type (§4.1).
///
/// # Errors
/// Why not, in words.
pub fn check_media_type(content_type: Option<&str>) -> Result<(), String> {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence == ACTIVITY_JSON
        || (essence == "application/ld+json"
            && ct.contains("https://www.w3.org/ns/activitystreams"))
    {
        Ok(())
    } else {
        Err(format!(
            "media type {:?} is not application/activity+json",
            content_type.unwrap_or("")
        ))
    }
}

/// The position of key `id` in the actor's `assertionMethod`, with the actor as its
/// controller.
fn find_key(actor: &ResolvedActor, id: &KeyId, actor_id: &ActorId) -> Option<usize> {
    actor
        .doc
        .assertion_method
        .iter()
        .position(|k| &k.id == id && &k.controller == actor_id && k.id.controller() == *actor_id)
}

fn check_key(
    key_id: &str,
    actor: &Arc<ResolvedActor>,
    index: usize,
    usage: KeyUse,
) -> Result<ResolvedKey, KeyLookupError> {
    let unknown = |reason: String| KeyLookupError::Unknown {
        key_id: key_id.to_owned(),
        reason,
    };
    let (Some(k), Some(decoded)) = (actor.doc.assertion_method.get(index), actor.keys.get(index))
    else {
        return Err(unknown("not listed in assertionMethod".to_owned()));
    };
    if let Some(revoked) = k.extra.get("revoked").and_then(Value::as_str) {
        return Err(KeyLookupError::Revoked {
            key_id: key_id.to_owned(),
            revoked: revoked.to_owned(),
        });
    }
    if let Some(expires) = k.expires {
        let at = match usage {
            KeyUse::Transport { now } => now,
            KeyUse::Proof { created } => created,
        };
        if at >= expires {
            return Err(KeyLookupError::Expired {
                key_id: key_id.to_owned(),
                expires: expires
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            });
        }
    }
    let key = decoded.clone().map_err(unknown)?;
    Ok(ResolvedKey {
        actor: actor.clone(),
        key,
        key_id: key_id.to_owned(),
    })
}

impl From<StoreError> for ActorError {
    fn from(e: StoreError) -> Self {
        ActorError::Unreachable {
            actor: String::new(),
            reason: e.to_string(),
        }
    }
}
