//! The mobility workflows across nodes, with their I/O: MAD requests up to a convention
//! signed by both employers ([`mad`]), agents' opt-in profiles and matching
//! ([`profiles`]), immersion swaps and training seats ([`exchanges`]), and the timers
//! that dates drive ([`timers`]).
//!
//! These services sit between the pure rules (`protocol::mad`, `crate::domain`) and the
//! outside: the HR API calls them for what people do, `federation::mobility` for what
//! partners send, the timers for what dates bring. Each change is written with the
//! signed activities it sends in one transaction (store), and each projection of a
//! received activity is idempotent.

pub mod exchanges;
pub mod mad;
pub mod profiles;
pub mod timers;

use passerelle_protocol::ids::{self, ActorId, ObjectId, Siren};
use passerelle_protocol::mad::MadError;
use passerelle_protocol::vocab::{
    self, Activity, ActivityType, Collectivite, Extra, ObjectRef, OrganisationKind, Problems,
    Versant,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::federation::{Federation, FederationError, now_seconds};
use crate::store::{NewActivity, StoreError};

/// Setting holding the SIREN of the EPCI this collectivité is a member of.
pub const EPCI_SETTING: &str = "collectivite_epci_siren";
/// Setting holding the SIREN of the collectivité this body is attached to.
pub const ATTACHED_SETTING: &str = "collectivite_attached_to_siren";

/// Errors of the mobility services, typed for the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MobilityError {
    /// The MAD state machine refuses the transition (`mad_transition_refused`).
    #[error("{}", .0.detail_fr())]
    Refused(MadError),
    /// The input is invalid; every problem listed (field, French message).
    #[error("{detail}")]
    Invalid {
        /// Summary, in French.
        detail: String,
        /// One (field, message) per problem.
        errors: Vec<(String, String)>,
    },
    /// The request conflicts with the current state (French).
    #[error("{0}")]
    Conflict(String),
    /// Something named does not exist (French).
    #[error("{0}")]
    NotFound(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A federation service failed.
    #[error(transparent)]
    Federation(#[from] FederationError),
    /// Building or signing a document failed (a bug).
    #[error("cannot build a document: {0}")]
    Build(String),
}

impl MobilityError {
    /// An [`MobilityError::Invalid`] with one problem.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Invalid {
            detail: message.clone(),
            errors: vec![(field.to_owned(), message)],
        }
    }

    /// An [`MobilityError::Invalid`] from protocol problems (French messages).
    pub fn from_problems(what: &str, problems: &Problems) -> Self {
        Self::Invalid {
            detail: format!("{what} : {} règle(s) non respectée(s)", problems.0.len()),
            errors: problems
                .iter()
                .map(|p| (p.path.clone(), p.message_fr()))
                .collect(),
        }
    }
}

/// Result of the mobility services.
pub type Result<T, E = MobilityError> = std::result::Result<T, E>;

fn build_err(e: impl std::fmt::Display) -> MobilityError {
    MobilityError::Build(e.to_string())
}

/// Mints an id of ours under `{base}/{path}/`.
pub(crate) fn mint(fed: &Federation, path: &str) -> Result<ObjectId> {
    ids::mint(fed.base_url(), path, Uuid::now_v7()).map_err(build_err)
}

/// Our actor id, typed.
pub(crate) fn our_actor(fed: &Federation) -> Result<ActorId> {
    fed.actor_id().parse().map_err(build_err)
}

/// Builds and signs an activity of ours with extension members (`extra`) and an optional
/// `target`, ready for the outbox.
pub(crate) fn activity(
    fed: &Federation,
    kind: ActivityType,
    object: ObjectRef,
    target: Option<ObjectRef>,
    to: Vec<String>,
    extra: Extra,
) -> Result<NewActivity> {
    let id = mint(fed, "activities")?;
    let object_id = object.id().unwrap_or_default().to_owned();
    let mut act = Activity::new(kind, id.clone(), our_actor(fed)?, object, to);
    act.target = target;
    act.published = Some(now_seconds());
    act.extra = extra;
    let public = act.is_public();
    let value = serde_json::to_value(&act).map_err(build_err)?;
    let document = fed.sign(value)?;
    Ok(NewActivity {
        activity_id: id.to_string(),
        activity_type: kind.name().to_owned(),
        object_id,
        public,
        document,
    })
}

/// An embedded object for an activity, from its (signed) JSON.
pub(crate) fn embedded(doc: &Value) -> Result<ObjectRef> {
    let message = vocab::Message::from_value(doc.clone()).map_err(build_err)?;
    Ok(ObjectRef::Embedded(Box::new(message)))
}

/// A bare-id object or target.
pub(crate) fn by_id(id: &str) -> Result<ObjectRef> {
    Ok(ObjectRef::Id(id.parse().map_err(build_err)?))
}

/// Removes the proof of a document (to compare or re-sign content).
pub(crate) fn without_proof(doc: &Value) -> Value {
    let mut d = doc.clone();
    if let Value::Object(m) = &mut d {
        m.remove("proof");
    }
    d
}

/// This node's collectivité as the MAD rules see it: its identity, and the membership it
/// declares (`PUT /api/v1/node/membership`).
///
/// # Errors
/// A store error, or [`MobilityError::Build`] for a stored identity that does not parse.
pub async fn our_collectivite(fed: &Federation) -> Result<Collectivite> {
    let store = fed.store();
    let identity = store.identity().await?;
    let siren: Siren = identity.siren.parse().map_err(build_err)?;
    let kind: OrganisationKind =
        serde_json::from_value(json!(identity.kind)).unwrap_or(OrganisationKind::Autre);
    let setting = |v: Option<String>| v.and_then(|s| s.parse::<Siren>().ok());
    let epci = setting(store.setting(EPCI_SETTING).await?);
    let attached = setting(store.setting(ATTACHED_SETTING).await?);
    let mut c: Collectivite = serde_json::from_value(json!({
        "siren": siren,
        "kind": kind,
        "versant": Versant::Fpt,
    }))
    .map_err(build_err)?;
    c.epci_siren = epci;
    c.attached_to_siren = attached;
    Ok(c)
}

/// A partner's collectivité, from its actor document (cache, then fetch).
///
/// # Errors
/// [`MobilityError::Federation`] when the actor cannot be resolved.
pub async fn partner_collectivite(fed: &Federation, actor: &str) -> Result<Collectivite> {
    let resolved = fed
        .actors()
        .get(actor)
        .await
        .map_err(FederationError::from)?;
    Ok(resolved.doc.collectivite.clone())
}

/// A partner's name and SIREN, from its actor document.
///
/// # Errors
/// As [`partner_collectivite`].
pub async fn partner_name(fed: &Federation, actor: &str) -> Result<(String, Siren)> {
    let resolved = fed
        .actors()
        .get(actor)
        .await
        .map_err(FederationError::from)?;
    Ok((
        resolved.doc.name.clone(),
        resolved.doc.collectivite.siren.clone(),
    ))
}

/// A string member of a JSON object.
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The id of an activity's `object` (embedded or by reference).
pub(crate) fn object_id(v: &Value) -> Option<&str> {
    match v.get("object") {
        Some(Value::String(s)) => Some(s),
        Some(o) => str_of(o, "id"),
        None => None,
    }
}

/// Today, in UTC.
pub(crate) fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}
