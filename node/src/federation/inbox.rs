//! Receiving: the checks an activity goes through before it is stored (spec/protocol.md
//! §5, §7.5, §8.4, §10), in order — media type and size, `Content-Digest`, the RFC 9421
//! signature (window, key resolution with a refetch after a rotation), that the signer is
//! the activity's actor, the activity's validity, the block list and the partnership
//! policy, every object proof (the activity's by its actor, an embedded object's by its
//! author), then de-duplication by activity id and the durable write. Pulled activities
//! go through the same checks but the transport signature (they come from the outbox of
//! the partner we asked).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use passerelle_protocol::canonical::{ParseLimits, parse_strict};
use passerelle_protocol::digest::verify_content_digest;
use passerelle_protocol::httpsig::{self, HttpSigError, RequestParts, VerifyPolicy};
use passerelle_protocol::ids::KeyId;
use passerelle_protocol::keys::PublicKey;
use passerelle_protocol::proof;
use passerelle_protocol::vocab::{ActivityType, Message, ObjectRef};
use serde_json::Value;
use time::OffsetDateTime;

use super::Federation;
use super::actors::{KeyUse, ResolvedKey};
use super::error::ProtocolError;
use super::group_commit::{GroupCommit, Refused};
use crate::store::{InboxAccept, IncomingActivity, PartnershipState, Via};

/// Largest inbox body (protocol §11); an operator may raise it, never lower it.
pub const MAX_INBOX_BODY: usize = 1024 * 1024;

/// Most proofs accepted on one document (protocol §11).
pub const MAX_PROOFS: usize = 8;

/// Most addresses in `to` + `cc` (protocol §11).
pub const MAX_RECIPIENTS: usize = 100;

/// An HTTP request to the inbox, as received.
#[derive(Debug, Clone, Copy)]
pub struct InboxRequest<'a> {
    /// Method (`POST`).
    pub method: &'a str,
    /// The target URI rebuilt from our public base URL and the request's path and query.
    pub target_uri: &'a str,
    /// Header fields, in order.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body as received.
    pub body: &'a [u8],
}

impl InboxRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// What the inbox did with an accepted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The activity id.
    pub activity_id: String,
    /// Its actor.
    pub actor_id: String,
    /// Stored now, or already known.
    pub duplicate: bool,
}

/// Whether `content_type` is an ActivityStreams media type (§4.1).
pub fn is_activity_media_type(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence == "application/activity+json"
        || (essence == "application/ld+json"
            && ct.contains("https://www.w3.org/ns/activitystreams"))
}

/// Activity of a partner seen recently by this process (to notice a partner coming back
/// after a silence, protocol §9.3).
#[derive(Debug, Default)]
pub struct LastSeen(Mutex<BTreeMap<String, Instant>>);

impl LastSeen {
    /// Records `actor`, returning whether it had been silent for longer than `period`.
    pub fn touch(&self, actor: &str, period: Duration) -> bool {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let silent = map.get(actor).is_none_or(|at| at.elapsed() > period);
        map.insert(actor.to_owned(), Instant::now());
        silent
    }
}

/// Checks a pushed activity and stores it. `Ok` means: answer `202`.
///
/// # Errors
/// The [`ProtocolError`] to answer with.
pub async fn receive(fed: &Federation, req: &InboxRequest<'_>) -> Result<Receipt, ProtocolError> {
    let result = receive_inner(fed, req).await;
    match &result {
        Ok(r) => fed
            .metrics()
            .inbox("push", if r.duplicate { "duplicate" } else { "accepted" }),
        Err(e) => {
            fed.metrics().inbox("push", e.code);
            tracing::info!(code = e.code, status = e.status, detail = %e.detail, "inbox refused an activity");
        }
    }
    result
}

async fn receive_inner(fed: &Federation, req: &InboxRequest<'_>) -> Result<Receipt, ProtocolError> {
    let ct = req.header("content-type").unwrap_or("");
    if !is_activity_media_type(ct) {
        return Err(ProtocolError::media_type(ct));
    }
    if req.body.len() > fed.body_limit() {
        return Err(ProtocolError::too_large(fed.body_limit()));
    }
    let signer = verify_transport(fed, req).await?;
    let value = parse_strict(req.body, &ParseLimits::new(32, fed.body_limit()))?;
    let incoming = verify_activity(
        fed,
        value,
        Via::Push,
        Some(&signer.actor.doc.id.to_string()),
    )
    .await?;
    let activity_id = incoming.activity_id.clone();
    let actor_id = incoming.actor_id.clone();
    let accepted = store(fed, incoming).await?;
    if accepted == InboxAccept::IdReused {
        return Err(ProtocolError::new(
            409,
            "activity_id_reused",
            format!(
                "activity {activity_id} was already accepted with other content; ids must never be reused"
            ),
        ));
    }
    if accepted != InboxAccept::Duplicate
        && fed.last_seen().touch(
            &actor_id,
            Duration::from_secs(fed.config().pull_interval_secs),
        )
    {
        // A partner heard from after a silence: catch up with its outbox (§9.3).
        if let Err(e) = fed.store().request_pull(Some(&actor_id)).await {
            tracing::warn!(error = %e, "cannot request a pull");
        }
    }
    Ok(Receipt {
        activity_id,
        actor_id,
        duplicate: accepted == InboxAccept::Duplicate,
    })
}

/// Group commit of the inbox ([`GroupCommit`]): requests hand their verified activity to
/// one writer task, which stores whatever has accumulated in one transaction (one
/// multi-row statement) and answers each. A request still answers `202` only once its
/// activity is committed.
#[derive(Debug)]
pub struct Batcher {
    commit: GroupCommit<IncomingActivity, InboxAccept>,
}

/// Most activities committed together.
const BATCH_MAX: usize = 256;

impl Batcher {
    /// Starts the writer task; it stops once `shutdown` fires and the queue is empty.
    pub fn spawn(
        store: crate::store::Store,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (commit, task) = GroupCommit::spawn(
            BATCH_MAX,
            Some(shutdown),
            Box::new(move |items: Vec<IncomingActivity>| {
                let store = store.clone();
                Box::pin(async move {
                    store.accept_activities(&items).await.map_err(|e| {
                        tracing::error!(error = %e, n = items.len(), "cannot store received activities");
                        e.to_string()
                    })
                })
            }),
        );
        (Self { commit }, task)
    }
}

/// Stores a verified activity (de-duplicated by id): through the group commit when it
/// runs, else directly.
///
/// # Errors
/// `500 internal_error` when the database fails (the sender retries).
pub async fn store(
    fed: &Federation,
    incoming: IncomingActivity,
) -> Result<InboxAccept, ProtocolError> {
    let unavailable = || {
        ProtocolError::new(
            500,
            "internal_error",
            "the activity could not be stored; retry later",
        )
    };
    // The projection yields to a busy inbox (bounded: `process::run`).
    fed.pushes().mark();
    let incoming = match fed.batcher() {
        Some(batcher) => match batcher.commit.submit(incoming).await {
            Ok(accepted) => return Ok(accepted),
            // Logged once, by the writer.
            Err(Refused::Failed(_)) => return Err(unavailable()),
            Err(Refused::Stopped(incoming)) => incoming,
        },
        None => incoming,
    };
    let accepted = fed
        .store()
        .accept_activities(std::slice::from_ref(&incoming))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store a received activity");
            unavailable()
        })?;
    Ok(accepted.first().copied().unwrap_or(InboxAccept::Duplicate))
}

/// Verifies the RFC 9421 signature of a request (with its `Content-Digest` when it has a
/// body) and returns the signing key with its actor. A signature that fails with a cached
/// key is checked again after one refetch of the actor (rotation, protocol §3.2).
///
/// # Errors
/// The refusal: `digest_*`, `signature_*`, `key_*`.
pub async fn verify_transport(
    fed: &Federation,
    req: &InboxRequest<'_>,
) -> Result<ResolvedKey, ProtocolError> {
    if !req.body.is_empty() {
        let digest = req
            .header("content-digest")
            .ok_or_else(ProtocolError::digest_missing)?;
        verify_content_digest(digest, req.body)?;
    }
    let parts = RequestParts {
        method: req.method,
        target_uri: req.target_uri,
        headers: req.headers,
        body: req.body,
    };
    let candidate = httpsig::parse_signature(&parts, Some(httpsig::PASSERELLE_LABEL))?;
    if let Some(alg) = candidate.alg()
        && alg != httpsig::ALG_ED25519
    {
        return Err(HttpSigError::UnsupportedAlgorithm {
            alg: alg.to_owned(),
        }
        .into());
    }
    let now = OffsetDateTime::now_utc();
    let policy = VerifyPolicy::passerelle(now.unix_timestamp());
    let key = fed
        .actors()
        .key(candidate.key_id(), KeyUse::Transport { now })
        .await?;
    match candidate.verify(&key.key, &policy) {
        Ok(_) => Ok(key),
        Err(HttpSigError::BadSignature { .. }) => {
            // The cached actor may be stale: refetch once (at most every five minutes).
            let actor = key.actor.doc.id.to_string();
            let fresh = fed
                .actors()
                .refetch(&actor)
                .await
                .map_err(|e| ProtocolError::new(503, "key_fetch_failed", e.to_string()))?;
            let id: KeyId = candidate
                .key_id()
                .parse()
                .map_err(|e| ProtocolError::new(401, "key_unknown", format!("{e}")))?;
            let listed = fresh
                .doc
                .assertion_method
                .iter()
                .find(|k| k.id == id)
                .and_then(|k| k.public_key().ok());
            match listed {
                Some(public) if public != key.key => {
                    candidate.verify(&public, &policy)?;
                    fed.actors()
                        .key(candidate.key_id(), KeyUse::Transport { now })
                        .await
                        .map_err(Into::into)
                }
                _ => Err(ProtocolError::new(
                    401,
                    "signature_invalid",
                    format!(
                        "the signature by {} does not verify over the request received",
                        candidate.key_id()
                    ),
                )),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks a received activity (already parsed strictly from the bytes received): its
/// type and validity, that `transport_actor` (the signer of the request, or the partner
/// whose outbox we pulled) is its actor, the block list and the partnership policy, and
/// every proof. Returns what to store.
///
/// # Errors
/// The refusal.
pub async fn verify_activity(
    fed: &Federation,
    value: Value,
    via: Via,
    transport_actor: Option<&str>,
) -> Result<IncomingActivity, ProtocolError> {
    // Before anything reads it: a string that cannot be stored (§4.2).
    passerelle_protocol::vocab::check_no_nul(&value)?;
    let message = Message::from_value_ref(&value)?;
    let Message::Activity(activity) = &message else {
        return Err(ProtocolError::new(
            400,
            "unknown_type",
            format!(
                "the inbox takes activities (Create, Update, Delete, Follow, Accept, Reject, Undo, Offer, Announce, Add), not a {}",
                message.type_name()
            ),
        ));
    };
    let recipients = activity.to.len() + activity.cc.len();
    if recipients > MAX_RECIPIENTS {
        return Err(ProtocolError::new(
            422,
            "validation_failed",
            format!("{recipients} addresses in to and cc; at most {MAX_RECIPIENTS} (protocol §11)"),
        ));
    }
    message.validate(fed.validation())?;
    let actor = activity.actor.to_string();
    if let Some(signer) = transport_actor
        && signer != actor
    {
        return Err(ProtocolError::new(
            401,
            "key_actor_mismatch",
            format!(
                "the request was signed by a key of {signer}, but the activity's actor is {actor}; a node may only deliver its own activities (relay with Announce)"
            ),
        ));
    }
    let policy = fed.policy().await.map_err(|e| {
        tracing::error!(error = %e, "store failure while checking an activity");
        ProtocolError::new(500, "internal_error", "temporary failure; retry later")
    })?;
    if policy.is_blocked(&actor) {
        return Err(ProtocolError::blocked(&actor));
    }
    check_policy(fed, &policy, &activity.kind, &actor, &activity.object)?;
    let mut signers = verify_proofs(fed, &value, std::slice::from_ref(&actor)).await?;
    if let Some(object) = value.get("object").filter(|o| o.is_object()) {
        if activity.kind == ActivityType::Announce {
            check_relay(object)?;
        }
        signers.extend(verify_embedded(fed, object, 0).await?);
    }
    Ok(IncomingActivity {
        activity_id: activity.id.to_string(),
        actor_id: actor,
        activity_type: activity.kind.name().to_owned(),
        object_id: activity.object.id().map(str::to_owned),
        document: value,
        via,
        signers,
    })
}

/// §7.5: `Follow` from anyone not blocked; `Accept`/`Reject` from a node we asked; the
/// rest from partners (either direction).
fn check_policy(
    fed: &Federation,
    policy: &super::PolicySnapshot,
    kind: &ActivityType,
    actor: &str,
    object: &ObjectRef,
) -> Result<(), ProtocolError> {
    let partner = policy.partner(actor);
    let ok = match kind {
        ActivityType::Follow => {
            if object.id() != Some(fed.actor_id()) {
                return Err(ProtocolError::new(
                    422,
                    "validation_failed",
                    format!(
                        "a Follow sent here must name this node ({}) as its object",
                        fed.actor_id()
                    ),
                ));
            }
            true
        }
        ActivityType::Accept | ActivityType::Reject => partner
            .is_some_and(|p| p.outgoing != PartnershipState::None || p.is_partner_either_way()),
        ActivityType::Undo => partner.is_some(),
        _ => partner.is_some_and(|p| p.is_partner_either_way()),
    };
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::not_a_partner(actor, kind.name()))
    }
}

/// Relay rules (§10): only a `federation` or `public` posting, or the author's own
/// `Create`/`Update`/`Delete` of such a posting, is relayed; never a relay of a relay, a
/// MAD message or a profile.
fn check_relay(object: &Value) -> Result<(), ProtocolError> {
    let forbid = |what: String| ProtocolError::new(403, "addressing_forbidden", what);
    match object.get("type").and_then(Value::as_str) {
        Some("Posting") => {
            let visibility = object
                .get("visibility")
                .and_then(Value::as_str)
                .unwrap_or("");
            if visibility == "federation" || visibility == "public" {
                Ok(())
            } else {
                Err(forbid(format!(
                    "a posting of visibility {visibility:?} may not be relayed; only federation and public postings are (protocol §10)"
                )))
            }
        }
        Some("Create" | "Update" | "Delete") => {
            let inner = object.get("object");
            match inner.and_then(|o| o.get("type")).and_then(Value::as_str) {
                Some("Posting") => check_relay(inner.unwrap_or(&Value::Null)),
                Some("Tombstone") | None => Ok(()),
                Some(other) => Err(forbid(format!(
                    "a {other} may not be relayed (protocol §10)"
                ))),
            }
        }
        Some(other) => Err(forbid(format!(
            "an Announce may carry a posting or its author's Create, Update or Delete, not a {other} (protocol §10: one hop, no MAD message or profile)"
        ))),
        None => Err(forbid(
            "an Announce must embed the relayed object".to_owned(),
        )),
    }
}

/// Who may sign an embedded object: its `attributedTo`, and for a convention each
/// employer (`origin`, `host`); an embedded activity, its `actor`.
fn allowed_signers(object: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["attributedTo", "actor", "origin", "host"] {
        if let Some(s) = object.get(key).and_then(Value::as_str) {
            if (key == "origin" || key == "host")
                && object.get("type").and_then(Value::as_str) != Some("Convention")
            {
                continue;
            }
            out.push(s.to_owned());
        }
    }
    out
}

/// Types that must carry their own proof when embedded.
fn must_be_signed(object: &Value) -> bool {
    matches!(
        object.get("type").and_then(Value::as_str),
        Some(
            "Posting"
                | "AgentProfile"
                | "MadRequest"
                | "Convention"
                | "Create"
                | "Update"
                | "Delete"
                | "Offer"
                | "Accept"
                | "Reject"
                | "Add"
        )
    )
}

/// Verifies the proofs of an embedded object (and, one level down, of its own embedded
/// object): each by a key of one of its allowed signers.
async fn verify_embedded(
    fed: &Federation,
    object: &Value,
    depth: usize,
) -> Result<Vec<String>, ProtocolError> {
    let mut signers = Vec::new();
    let has_proof = object.get("proof").is_some();
    if has_proof || must_be_signed(object) {
        let allowed = allowed_signers(object);
        if allowed.is_empty() {
            return Err(ProtocolError::new(
                422,
                "validation_failed",
                "an embedded signed object must name its author (attributedTo or actor)",
            ));
        }
        signers.extend(verify_proofs(fed, object, &allowed).await?);
    }
    if depth == 0
        && let Some(inner) = object.get("object").filter(|o| o.is_object())
    {
        signers.extend(Box::pin(verify_embedded(fed, inner, depth + 1)).await?);
    }
    Ok(signers)
}

/// Verifies every proof of `doc`, each by a key of one of `allowed` actors (resolved with
/// [`KeyUse::Proof`]: an expired key still verifies what it signed before its expiry).
async fn verify_proofs(
    fed: &Federation,
    doc: &Value,
    allowed: &[String],
) -> Result<Vec<String>, ProtocolError> {
    let infos = proof::proofs(doc)?;
    if infos.len() > MAX_PROOFS {
        return Err(ProtocolError::new(
            400,
            "proof_invalid",
            format!(
                "{} proofs; at most {MAX_PROOFS} (protocol §11)",
                infos.len()
            ),
        ));
    }
    let mut keys: Vec<(String, PublicKey)> = Vec::with_capacity(infos.len());
    for info in &infos {
        let vm = &info.verification_method;
        let controller = vm.split('#').next().unwrap_or("");
        if !allowed.iter().any(|a| a == controller) {
            return Err(ProtocolError::new(
                400,
                "proof_signer_mismatch",
                format!(
                    "proof #{} is made with {vm}, a key of {controller}; it must be made with a key of {}",
                    info.index,
                    allowed.join(" or ")
                ),
            ));
        }
        if keys.iter().any(|(k, _)| k == vm) {
            continue;
        }
        let created = info.created.unwrap_or_else(OffsetDateTime::now_utc);
        let resolved = fed.actors().key(vm, KeyUse::Proof { created }).await?;
        keys.push((vm.clone(), resolved.key));
    }
    Ok(proof::verify_ref(
        doc,
        &keys,
        &proof::VerifyOptions::default(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn media_types() {
        assert!(is_activity_media_type("application/activity+json"));
        assert!(is_activity_media_type(
            "Application/Activity+JSON; charset=utf-8"
        ));
        assert!(is_activity_media_type(
            "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""
        ));
        assert!(!is_activity_media_type("application/ld+json"));
        assert!(!is_activity_media_type("application/json"));
        assert!(!is_activity_media_type("text/html"));
    }

    #[test]
    fn relay_rules() {
        let posting = |v: &str| json!({"type": "Posting", "visibility": v});
        assert!(check_relay(&posting("public")).is_ok());
        assert!(check_relay(&posting("federation")).is_ok());
        for v in ["partner_circle", "direct", "internal"] {
            assert_eq!(
                check_relay(&posting(v)).unwrap_err().code,
                "addressing_forbidden"
            );
        }
        assert!(check_relay(&json!({"type": "Delete", "object": {"type": "Tombstone"}})).is_ok());
        assert!(check_relay(&json!({"type": "Update", "object": posting("public")})).is_ok());
        for t in ["Announce", "MadRequest", "AgentProfile", "Convention"] {
            assert_eq!(
                check_relay(&json!({"type": t})).unwrap_err().code,
                "addressing_forbidden",
                "{t}"
            );
        }
        assert_eq!(
            check_relay(&json!({"type": "Create", "object": {"type": "AgentProfile"}}))
                .unwrap_err()
                .code,
            "addressing_forbidden"
        );
    }

    #[test]
    fn convention_signers_are_both_employers() {
        let c = json!({"type": "Convention", "attributedTo": "https://a.fr/actor", "origin": "https://a.fr/actor", "host": "https://b.fr/actor"});
        assert_eq!(
            allowed_signers(&c),
            [
                "https://a.fr/actor",
                "https://a.fr/actor",
                "https://b.fr/actor"
            ]
        );
        let p = json!({"type": "Posting", "attributedTo": "https://a.fr/actor", "host": "https://b.fr/actor"});
        assert_eq!(allowed_signers(&p), ["https://a.fr/actor"]);
    }

    #[test]
    fn silence_is_noticed() {
        let seen = LastSeen::default();
        assert!(seen.touch("a", Duration::from_secs(60)));
        assert!(!seen.touch("a", Duration::from_secs(60)));
        assert!(seen.touch("a", Duration::ZERO));
    }
}
