//! Partnerships (spec/protocol.md §7): the service behind the HR API and the CLI, and
//! the answers the projection gives to partners' `Follow`, `Accept`, `Reject` and `Undo`.
//! Every change is written with the activity that tells the other node (outbox) and,
//! when a person made it, its audit record, in one transaction.

use passerelle_protocol::ids::ObjectId;
use passerelle_protocol::vocab::{ActivityType, Message, ObjectRef, Organization};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Federation, FederationError};
use crate::store::{
    AuditRecord, BlockKind, Circle, NewActivity, POLICY_SETTING, Partner, PartnerInfo,
    PartnershipChange, PartnershipState, PostingVersion, Relayer, StoreError,
};

/// A node's partnership policy (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Accept every `Follow` (unless blocked).
    Open,
    /// Keep `Follow`s pending until an HR administrator decides.
    Approval,
    /// Refuse every `Follow`.
    Closed,
}

impl Policy {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Open => "open",
            Policy::Approval => "approval",
            Policy::Closed => "closed",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Policy::Open),
            "approval" => Some(Policy::Approval),
            "closed" => Some(Policy::Closed),
            _ => None,
        }
    }
}

/// What we keep of a remote node's actor document.
pub fn partner_info(doc: &Organization) -> PartnerInfo {
    PartnerInfo {
        actor_id: doc.id.to_string(),
        name: doc.name.clone(),
        inbox: doc.inbox.to_string(),
        shared_inbox: Some(doc.endpoints.shared_inbox.to_string()),
        outbox: Some(doc.outbox.to_string()),
        siren: Some(doc.collectivite.siren.to_string()),
    }
}

/// The node's policy (default: `approval`).
///
/// # Errors
/// A store error.
pub async fn policy(fed: &Federation) -> Result<Policy, FederationError> {
    Ok(fed
        .store()
        .setting(POLICY_SETTING)
        .await?
        .as_deref()
        .and_then(Policy::parse)
        .unwrap_or(Policy::Approval))
}

/// Changes the policy.
///
/// # Errors
/// A store error.
pub async fn set_policy(
    fed: &Federation,
    policy: Policy,
    who: &str,
) -> Result<(), FederationError> {
    let mut audit = AuditRecord::new(who, "federation.policy", "node");
    audit.details = json!({ "policy": policy.as_str() });
    fed.store()
        .set_setting(POLICY_SETTING, policy.as_str(), &audit)
        .await?;
    Ok(())
}

fn embedded(doc: &Value) -> Result<ObjectRef, FederationError> {
    Message::from_value(doc.clone())
        .map(|m| ObjectRef::Embedded(Box::new(m)))
        .map_err(|e| FederationError::Build(e.to_string()))
}

fn object_id(id: &str) -> Result<ObjectRef, FederationError> {
    id.parse::<ObjectId>()
        .map(ObjectRef::Id)
        .map_err(|e| FederationError::Build(e.to_string()))
}

fn not_found(actor: &str) -> FederationError {
    FederationError::Store(StoreError::NotFound {
        what: format!("partenaire {actor}"),
    })
}

/// Asks `address` (an actor URL, an origin, or `NAME@DOMAIN`) to become our partner:
/// resolves it, records it and sends a `Follow`. Asking again resends the `Follow` (a
/// lost `Accept` heals: the other node answers a duplicate `Follow` again).
///
/// # Errors
/// [`FederationError::Actor`] when the address does not resolve to a Passerelle node,
/// [`FederationError::Invalid`] for our own address or a blocked node.
pub async fn follow(
    fed: &Federation,
    address: &str,
    who: &str,
) -> Result<Partner, FederationError> {
    let actor = fed.actors().resolve_address(address).await?;
    let actor_id = actor.doc.id.to_string();
    if actor_id == fed.actor_id() {
        return Err(FederationError::Invalid(
            "c'est l'adresse de ce nœud : on ne peut pas être son propre partenaire".to_owned(),
        ));
    }
    if fed.store().is_blocked(&actor_id).await? {
        return Err(FederationError::Invalid(format!(
            "{actor_id} est bloqué : levez le blocage avant de demander un partenariat"
        )));
    }
    fed.store()
        .upsert_partner(&partner_info(&actor.doc))
        .await?;
    let act = fed.activity(
        ActivityType::Follow,
        object_id(&actor_id)?,
        vec![actor_id.clone()],
        Vec::new(),
    )?;
    let mut audit = AuditRecord::new(who, "partner.follow", format!("partner:{actor_id}"));
    audit.details = json!({ "activity": act.activity_id });
    let change = PartnershipChange {
        outgoing: Some((PartnershipState::Pending, Some(act.activity_id.clone()))),
        incoming: None,
    };
    Ok(fed
        .store()
        .update_partnership(&actor_id, &change, Some(&act), Some(&audit))
        .await?)
}

/// Ends our side (`Undo` of our `Follow`): we stop receiving what it addresses to its
/// partners. What was received stays.
///
/// # Errors
/// Not found, or nothing to end.
pub async fn unfollow(
    fed: &Federation,
    actor_id: &str,
    who: &str,
) -> Result<Partner, FederationError> {
    let partner = fed
        .store()
        .partner_by_actor(actor_id)
        .await?
        .ok_or_else(|| not_found(actor_id))?;
    let Some(follow_id) = partner.outgoing_follow_id.clone().filter(|_| {
        matches!(
            partner.outgoing,
            PartnershipState::Pending | PartnershipState::Accepted
        )
    }) else {
        return Err(FederationError::Invalid(format!(
            "aucune demande de partenariat en cours vers {actor_id}"
        )));
    };
    let act = fed.activity(
        ActivityType::Undo,
        object_id(&follow_id)?,
        vec![actor_id.to_owned()],
        Vec::new(),
    )?;
    let audit = AuditRecord::new(who, "partner.unfollow", format!("partner:{actor_id}"));
    let change = PartnershipChange {
        outgoing: Some((PartnershipState::None, None)),
        incoming: None,
    };
    Ok(fed
        .store()
        .update_partnership(actor_id, &change, Some(&act), Some(&audit))
        .await?)
}

/// Accepts a pending partnership request (policy `approval`), or confirms an accepted one
/// again.
///
/// # Errors
/// Not found, or no request from that node.
pub async fn accept(
    fed: &Federation,
    actor_id: &str,
    who: Option<&str>,
) -> Result<Partner, FederationError> {
    let partner = fed
        .store()
        .partner_by_actor(actor_id)
        .await?
        .ok_or_else(|| not_found(actor_id))?;
    let Some(follow) = partner.incoming_follow.clone() else {
        return Err(FederationError::Invalid(format!(
            "{actor_id} n'a pas demandé de partenariat"
        )));
    };
    if fed.store().is_blocked(actor_id).await? {
        return Err(FederationError::Invalid(format!(
            "{actor_id} est bloqué : levez le blocage avant d'accepter"
        )));
    }
    let act = fed.activity(
        ActivityType::Accept,
        embedded(&follow)?,
        vec![actor_id.to_owned()],
        Vec::new(),
    )?;
    let audit = who.map(|w| AuditRecord::new(w, "partner.accept", format!("partner:{actor_id}")));
    let change = PartnershipChange {
        outgoing: None,
        incoming: Some((PartnershipState::Accepted, None)),
    };
    Ok(fed
        .store()
        .update_partnership(actor_id, &change, Some(&act), audit.as_ref())
        .await?)
}

/// Refuses a pending request, or ends the partnership in which that node follows us
/// (`Reject` of its `Follow`).
///
/// # Errors
/// Not found, or no request from that node.
pub async fn reject(
    fed: &Federation,
    actor_id: &str,
    who: Option<&str>,
) -> Result<Partner, FederationError> {
    let partner = fed
        .store()
        .partner_by_actor(actor_id)
        .await?
        .ok_or_else(|| not_found(actor_id))?;
    let Some(follow) = partner.incoming_follow.clone() else {
        return Err(FederationError::Invalid(format!(
            "{actor_id} n'a pas demandé de partenariat"
        )));
    };
    let act = reject_activity(fed, actor_id, &follow)?;
    let audit = who.map(|w| AuditRecord::new(w, "partner.reject", format!("partner:{actor_id}")));
    let change = PartnershipChange {
        outgoing: None,
        incoming: Some((PartnershipState::Rejected, None)),
    };
    Ok(fed
        .store()
        .update_partnership(actor_id, &change, Some(&act), audit.as_ref())
        .await?)
}

fn reject_activity(
    fed: &Federation,
    actor_id: &str,
    follow: &Value,
) -> Result<NewActivity, FederationError> {
    fed.activity(
        ActivityType::Reject,
        embedded(follow)?,
        vec![actor_id.to_owned()],
        Vec::new(),
    )
}

/// Blocks a node (by actor id) or a whole origin (§7.3): its requests are refused, and a
/// partnership in which it follows us ends with a `Reject`. Received content stays.
///
/// # Errors
/// Conflict when already blocked.
pub async fn block(
    fed: &Federation,
    target: &str,
    kind: BlockKind,
    reason: &str,
    who: &str,
) -> Result<(), FederationError> {
    let target = target.trim().trim_end_matches('/');
    if url::Url::parse(target).is_err() {
        return Err(FederationError::Invalid(format!(
            "« {target} » n'est ni l'adresse d'un nœud (https://…/actor) ni une origine (https://hôte)"
        )));
    }
    let audit = AuditRecord::new(who, "partner.block", format!("block:{target}"));
    fed.store().add_block(target, kind, reason, &audit).await?;
    for p in fed.store().partners().await? {
        let hit = match kind {
            BlockKind::Actor => p.actor_id == target,
            BlockKind::Origin => crate::store::origin_of(&p.actor_id) == target,
        };
        if hit
            && matches!(
                p.incoming,
                PartnershipState::Accepted | PartnershipState::Pending
            )
            && let Some(follow) = &p.incoming_follow
        {
            let act = reject_activity(fed, &p.actor_id, follow)?;
            let change = PartnershipChange {
                outgoing: None,
                incoming: Some((PartnershipState::Rejected, None)),
            };
            fed.store()
                .update_partnership(&p.actor_id, &change, Some(&act), None)
                .await?;
        }
    }
    Ok(())
}

/// Lifts a block.
///
/// # Errors
/// Not found.
pub async fn unblock(fed: &Federation, target: &str, who: &str) -> Result<(), FederationError> {
    let target = target.trim().trim_end_matches('/');
    let audit = AuditRecord::new(who, "partner.unblock", format!("block:{target}"));
    fed.store().remove_block(target, &audit).await?;
    Ok(())
}

/// Creates a circle (`id` `None`) or replaces a circle's name and members. Members must
/// be known nodes.
///
/// # Errors
/// [`FederationError::Invalid`] for an unknown member or an empty name.
pub async fn put_circle(
    fed: &Federation,
    id: Option<Uuid>,
    name: &str,
    members: &[String],
    who: &str,
) -> Result<Circle, FederationError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FederationError::Invalid(
            "un cercle doit avoir un nom".to_owned(),
        ));
    }
    let known = fed.store().partners().await?;
    for m in members {
        if !known.iter().any(|p| &p.actor_id == m) {
            return Err(FederationError::Invalid(format!(
                "{m} n'est pas un nœud connu : ajoutez-le comme partenaire d'abord"
            )));
        }
    }
    let (id, url) = match id {
        Some(id) => {
            let existing = fed
                .store()
                .circles()
                .await?
                .into_iter()
                .find(|c| c.id == id)
                .ok_or_else(|| {
                    FederationError::Store(StoreError::NotFound {
                        what: format!("cercle {id}"),
                    })
                })?;
            (id, existing.url)
        }
        None => {
            let id = Uuid::now_v7();
            (id, format!("{}/circles/{id}", fed.base_url()))
        }
    };
    let mut members: Vec<String> = members.to_vec();
    members.sort();
    members.dedup();
    let audit = AuditRecord::new(who, "circle.put", format!("circle:{id}"));
    Ok(fed
        .store()
        .put_circle(id, name, &url, &members, &audit)
        .await?)
}

/// Answers a partner's `Follow` under our policy (projection of a received `Follow`).
/// Returns the outcome recorded for the inbox item.
///
/// # Errors
/// A store or actor error (temporary: the projection is retried).
pub async fn on_follow(
    fed: &Federation,
    actor_id: &str,
    follow: &Value,
) -> Result<&'static str, FederationError> {
    let actor = fed.actors().get(actor_id).await?;
    let partner = fed
        .store()
        .upsert_partner(&partner_info(&actor.doc))
        .await?;
    let store = fed.store();
    if store.is_blocked(actor_id).await? {
        let act = reject_activity(fed, actor_id, follow)?;
        let change = PartnershipChange {
            outgoing: None,
            incoming: Some((PartnershipState::Rejected, Some(follow.clone()))),
        };
        store
            .update_partnership(actor_id, &change, Some(&act), None)
            .await?;
        return Ok("follow rejected (blocked)");
    }
    let decision = if partner.incoming == PartnershipState::Accepted {
        // A duplicate Follow: answer Accept again (§7.1).
        Policy::Open
    } else {
        policy(fed).await?
    };
    let (state, act, outcome) = match decision {
        Policy::Open => (
            PartnershipState::Accepted,
            Some(fed.activity(
                ActivityType::Accept,
                embedded(follow)?,
                vec![actor_id.to_owned()],
                Vec::new(),
            )?),
            "follow accepted",
        ),
        Policy::Closed => (
            PartnershipState::Rejected,
            Some(reject_activity(fed, actor_id, follow)?),
            "follow rejected (policy closed)",
        ),
        Policy::Approval => (PartnershipState::Pending, None, "follow pending approval"),
    };
    let change = PartnershipChange {
        outgoing: None,
        incoming: Some((state, Some(follow.clone()))),
    };
    store
        .update_partnership(actor_id, &change, act.as_ref(), None)
        .await?;
    Ok(outcome)
}

/// Relays a cached partner's posting to our partners (`Announce`, §10): the posting is
/// embedded as received, with its author's proof. A posting that came to us by relay, or
/// that is not `federation` or `public`, is not relayed.
///
/// # Errors
/// [`FederationError::Invalid`] when the posting may not be relayed; a store error
/// (`NotFound` for an unknown posting; `Conflict` when new versions kept arriving while
/// the relay was built, three times).
pub async fn relay(
    fed: &Federation,
    object_id: &str,
    who: &str,
) -> Result<NewActivity, FederationError> {
    // A new version stored while the relay is built makes the append refuse it: the
    // relay is built again from that version (a few times at most).
    let mut attempts = 0;
    loop {
        attempts += 1;
        match relay_once(fed, object_id, who).await {
            Err(FederationError::Store(StoreError::Conflict { .. })) if attempts < 3 => {}
            other => return other,
        }
    }
}

async fn relay_once(
    fed: &Federation,
    object_id: &str,
    who: &str,
) -> Result<NewActivity, FederationError> {
    let posting = fed
        .store()
        .remote_posting(object_id)
        .await?
        .ok_or_else(|| {
            FederationError::Store(StoreError::NotFound {
                what: format!("offre {object_id}"),
            })
        })?;
    let Some(doc) = posting.document.filter(|_| posting.deleted_at.is_none()) else {
        return Err(FederationError::Invalid(
            "cette offre a été supprimée par son auteur".to_owned(),
        ));
    };
    if posting.relayed_by.is_some() {
        return Err(FederationError::Invalid(
            "cette offre nous est parvenue par relais : elle ne peut pas être relayée à nouveau (un seul saut)".to_owned(),
        ));
    }
    let visibility = doc.get("visibility").and_then(Value::as_str).unwrap_or("");
    if visibility != "federation" && visibility != "public" {
        return Err(FederationError::Invalid(format!(
            "seules les offres de visibilité « federation » ou « public » peuvent être relayées (ici « {visibility} »)"
        )));
    }
    let mut act = announce(fed, &doc, visibility == "public")?;
    // The cache's key, as received (the activity's is the id parsed as a URL).
    act.object_id.clone_from(&posting.object_id);
    let mut audit = AuditRecord::new(who, "posting.relay", format!("remote_posting:{object_id}"));
    audit.details = json!({ "activity": act.activity_id, "author": posting.author });
    fed.store()
        .append_relay(&act, posting.version, &audit)
        .await?;
    Ok(act)
}

fn announce(
    fed: &Federation,
    object: &Value,
    public: bool,
) -> Result<NewActivity, FederationError> {
    let mut to = vec![fed.followers_url()];
    if public {
        to.push(passerelle_protocol::vocab::PUBLIC.to_owned());
    }
    fed.activity(ActivityType::Announce, embedded(object)?, to, Vec::new())
}

/// The relays of the new versions of postings we relayed (§10), built and signed inside
/// the transaction that stores them ([`crate::store::Store::apply_posting_versions`]): the
/// posting as received, announced to our followers (and to the public when it is public).
impl Relayer for Federation {
    fn relay(
        &self,
        version: &PostingVersion,
    ) -> Result<NewActivity, Box<dyn std::error::Error + Send + Sync>> {
        let public = version.document.get("visibility").and_then(Value::as_str) == Some("public");
        let mut act = announce(self, &version.document, public)?;
        act.object_id.clone_from(&version.object_id);
        Ok(act)
    }
}

/// Relays again, without a person asking, what changed a posting we relayed earlier:
/// its author's `Delete` (§10). (A new version is relayed as it is stored: [`Relayer`].)
///
/// # Errors
/// A store or build error.
pub async fn relay_activity(
    fed: &Federation,
    object: &Value,
    object_id: &str,
) -> Result<(), FederationError> {
    let public = fed
        .store()
        .remote_posting(object_id)
        .await?
        .and_then(|p| p.document)
        .or_else(|| Some(object.clone()))
        .and_then(|d| {
            d.get("visibility")
                .and_then(Value::as_str)
                .map(|v| v == "public")
        })
        .unwrap_or(false);
    let act = announce(fed, object, public)?;
    let mut act = act;
    act.object_id = object_id.to_owned();
    fed.store().append_activity(&act, None).await?;
    Ok(())
}
