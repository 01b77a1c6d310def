//! Local postings: the domain service behind the HR API (no HTTP here).
//!
//! HR users write the posting content in the wire format of `protocol::vocab::Posting`;
//! the node sets what it owns (`@context`, `id`, `attributedTo`, `version`, `published`,
//! `updated`, `status`, and the addressing implied by `visibility`), then `protocol`
//! parses and validates the result, and the node signs it (`eddsa-jcs-2022`). Publishing,
//! updating a published posting, closing and deleting write the matching signed
//! activity (`Create`, `Update`, `Delete` with a `Tombstone`) to the outbox in the same
//! transaction as the change.

use passerelle_protocol::ids::{self, ActorId, ObjectId};
use passerelle_protocol::proof::{self, ProofOptions};
use passerelle_protocol::vocab::{
    self, Activity, ActivityType, Message, ObjectRef, Posting as WirePosting, Problems,
    Validate as _, ValidationContext,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::Principal;
use crate::state::AppState;
use crate::store::{NewActivity, Posting, PostingStatus, StoreError};

/// Properties the node sets itself; values sent by clients are replaced.
const SERVER_OWNED: [&str; 9] = [
    "@context",
    "id",
    "type",
    "attributedTo",
    "version",
    "published",
    "updated",
    "status",
    "proof",
];

/// Errors of the posting service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostingError {
    /// The content is not a JSON object.
    #[error("le contenu d'une offre doit être un objet JSON")]
    NotAnObject,
    /// The content does not parse as a posting (wrong type, unknown kind, bad id…).
    #[error("offre illisible : {0}")]
    Unreadable(String),
    /// The posting breaks protocol rules; every problem is listed.
    #[error("offre invalide : {0}")]
    Invalid(Problems),
    /// The transition is not allowed from the current status.
    #[error("impossible de {action} une offre au statut « {status} »")]
    Transition {
        /// What was attempted (French verb).
        action: &'static str,
        /// Current status.
        status: &'static str,
    },
    /// Signing failed (a bug).
    #[error("signing failed: {0}")]
    Sign(String),
    /// The store failed or refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn validation_context(state: &AppState) -> ValidationContext {
    if state.allow_http_loopback_peers() {
        ValidationContext::development()
    } else {
        ValidationContext::production()
    }
}

fn actor(state: &AppState) -> Result<ActorId, PostingError> {
    state
        .actor_id()
        .parse()
        .map_err(|e| PostingError::Sign(format!("actor id: {e}")))
}

/// The id of a local posting.
pub fn posting_url(state: &AppState, id: Uuid) -> String {
    format!("{}/postings/{id}", state.base_url())
}

fn rfc3339(t: OffsetDateTime) -> String {
    // Proofs and documents carry times to the second.
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn wire_status(status: PostingStatus) -> &'static str {
    status.as_str()
}

/// Fills the server-owned properties, parses, validates and signs a posting document.
fn build(
    state: &AppState,
    id: Uuid,
    input: Value,
    version: i64,
    published: OffsetDateTime,
    status: PostingStatus,
) -> Result<(String, Value), PostingError> {
    let Value::Object(mut doc) = input else {
        return Err(PostingError::NotAnObject);
    };
    for key in SERVER_OWNED {
        doc.remove(key);
    }
    let actor = actor(state)?;
    let now = OffsetDateTime::now_utc();
    doc.insert("@context".into(), vocab::context());
    doc.insert("id".into(), json!(posting_url(state, id)));
    doc.insert("type".into(), json!("Posting"));
    doc.insert("attributedTo".into(), json!(actor.as_str()));
    doc.insert("version".into(), json!(version));
    doc.insert("published".into(), json!(rfc3339(published)));
    if version > 1 {
        doc.insert("updated".into(), json!(rfc3339(now)));
    }
    doc.insert("status".into(), json!(wire_status(status)));
    // Addressing follows the visibility, except for direct postings (named nodes).
    let followers = format!("{}/followers", state.base_url());
    match doc.get("visibility").and_then(Value::as_str) {
        Some("public") => {
            doc.insert("to".into(), json!([vocab::PUBLIC]));
            doc.insert("cc".into(), json!([followers]));
        }
        Some("federation") => {
            doc.insert("to".into(), json!([followers]));
            doc.remove("cc");
        }
        Some("partner_circle") => {
            let circles = doc.get("circles").cloned().unwrap_or(json!([]));
            doc.insert("to".into(), circles);
            doc.remove("cc");
        }
        Some("internal") => {
            doc.remove("to");
            doc.remove("cc");
        }
        _ => {}
    }
    let value = Value::Object(doc);
    let posting: WirePosting = serde_json::from_value(value.clone())
        .map_err(|e| PostingError::Unreadable(e.to_string()))?;
    posting
        .validate(&validation_context(state))
        .map_err(PostingError::Invalid)?;
    let kind = posting.posting_kind().as_str().to_owned();
    let signed = sign(state, value)?;
    Ok((kind, signed))
}

fn sign(state: &AppState, doc: Value) -> Result<Value, PostingError> {
    let signer = state.signer();
    let options = ProofOptions::new(signer.key_id(), OffsetDateTime::now_utc());
    proof::sign(doc, signer.key(), &options).map_err(|e| PostingError::Sign(e.to_string()))
}

/// Builds and signs an activity about a posting, addressed like the posting.
fn activity(
    state: &AppState,
    kind: ActivityType,
    object: Value,
    to: Vec<String>,
    cc: Vec<String>,
) -> Result<NewActivity, PostingError> {
    let actor = actor(state)?;
    let id: ObjectId = ids::mint(state.base_url(), "activities", Uuid::now_v7())
        .map_err(|e| PostingError::Sign(format!("activity id: {e}")))?;
    let object_id = object
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let message =
        Message::from_value(object).map_err(|e| PostingError::Unreadable(e.to_string()))?;
    let mut act = Activity::new(
        kind,
        id.clone(),
        actor,
        ObjectRef::Embedded(Box::new(message)),
        to,
    );
    act.cc = cc;
    act.published = Some(
        OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or_else(|_| OffsetDateTime::now_utc()),
    );
    let public = act.to.iter().chain(&act.cc).any(|a| vocab::is_public(a));
    let value = serde_json::to_value(&act).map_err(|e| PostingError::Sign(e.to_string()))?;
    let document = sign(state, value)?;
    Ok(NewActivity {
        activity_id: id.to_string(),
        activity_type: serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        object_id,
        public,
        document,
    })
}

fn addressing(doc: &Value) -> (Vec<String>, Vec<String>) {
    let list = |k: &str| -> Vec<String> {
        match doc.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    (list("to"), list("cc"))
}

fn is_internal(doc: &Value) -> bool {
    doc.get("visibility").and_then(Value::as_str) == Some("internal")
}

/// Content sent by a client: the stored document without the server-owned properties.
pub fn editable_content(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Value::Object(map) = &mut doc {
        for key in SERVER_OWNED {
            map.remove(key);
        }
    }
    doc
}

/// Creates a draft posting.
///
/// # Errors
/// [`PostingError::Invalid`] with every problem, or a store error.
pub async fn create(
    state: &AppState,
    who: &Principal,
    content: Value,
) -> Result<Posting, PostingError> {
    let id = Uuid::now_v7();
    let (kind, doc) = build(
        state,
        id,
        content,
        1,
        OffsetDateTime::now_utc(),
        PostingStatus::Draft,
    )?;
    let audit = who.audit("posting.create", format!("posting:{id}"));
    Ok(state
        .store()
        .create_posting(id, &kind, &doc, &audit)
        .await?)
}

/// Replaces a posting's content; a published posting sends an `Update`.
///
/// # Errors
/// As [`create`]; [`PostingError::Transition`] for a closed posting.
pub async fn update(
    state: &AppState,
    who: &Principal,
    id: Uuid,
    content: Value,
) -> Result<Posting, PostingError> {
    let current = state.store().posting(id).await?;
    if matches!(
        current.status,
        PostingStatus::Closed | PostingStatus::Filled | PostingStatus::Expired
    ) {
        return Err(PostingError::Transition {
            action: "modifier",
            status: current.status.as_str(),
        });
    }
    let (_, doc) = build(
        state,
        id,
        content,
        current.version + 1,
        current.created_at,
        current.status,
    )?;
    let act = if current.status == PostingStatus::Published && !is_internal(&doc) {
        let (to, cc) = addressing(&doc);
        Some(activity(state, ActivityType::Update, doc.clone(), to, cc)?)
    } else {
        None
    };
    let audit = who.audit("posting.update", format!("posting:{id}"));
    Ok(state
        .store()
        .update_posting(
            id,
            current.version,
            &doc,
            current.status,
            act.as_ref(),
            &audit,
        )
        .await?)
}

/// Changes the status: `Published` (from draft, sends `Create`), `Filled` or `Closed`
/// (from published, sends `Update`). `Expired` is set by the timers
/// (`mobility::timers`), the day after `applyUntil`.
///
/// # Errors
/// [`PostingError::Transition`] when the status does not allow it.
pub async fn set_status(
    state: &AppState,
    who: &Principal,
    id: Uuid,
    target: PostingStatus,
) -> Result<Posting, PostingError> {
    let current = state.store().posting(id).await?;
    let (kind, audit_action) = match (current.status, target) {
        (PostingStatus::Draft, PostingStatus::Published) => {
            (ActivityType::Create, "posting.publish")
        }
        (PostingStatus::Published, PostingStatus::Closed) => {
            (ActivityType::Update, "posting.close")
        }
        (PostingStatus::Published, PostingStatus::Filled) => (ActivityType::Update, "posting.fill"),
        (status, PostingStatus::Published) => {
            return Err(PostingError::Transition {
                action: "publier",
                status: status.as_str(),
            });
        }
        (status, PostingStatus::Filled) => {
            return Err(PostingError::Transition {
                action: "déclarer pourvue",
                status: status.as_str(),
            });
        }
        (status, _) => {
            return Err(PostingError::Transition {
                action: "clôturer",
                status: status.as_str(),
            });
        }
    };
    let content = editable_content(&current.document);
    let (_, doc) = build(
        state,
        id,
        content,
        current.version + 1,
        current.created_at,
        target,
    )?;
    let act = if is_internal(&doc) {
        None
    } else {
        let (to, cc) = addressing(&doc);
        Some(activity(state, kind, doc.clone(), to, cc)?)
    };
    let audit = who.audit(audit_action, format!("posting:{id}"));
    Ok(state
        .store()
        .update_posting(id, current.version, &doc, target, act.as_ref(), &audit)
        .await?)
}

/// Deletes a posting; one that was published sends a `Delete` with a `Tombstone`.
///
/// # Errors
/// A store error (not found).
pub async fn delete(state: &AppState, who: &Principal, id: Uuid) -> Result<(), PostingError> {
    let current = state.store().posting(id).await?;
    let act = if current.published_at.is_some() && !is_internal(&current.document) {
        let tombstone = json!({
            "id": posting_url(state, id),
            "type": "Tombstone",
            "formerType": "Posting",
            "deleted": rfc3339(OffsetDateTime::now_utc()),
        });
        let (to, cc) = addressing(&current.document);
        Some(activity(state, ActivityType::Delete, tombstone, to, cc)?)
    } else {
        None
    };
    let audit = who.audit("posting.delete", format!("posting:{id}"));
    state
        .store()
        .delete_posting(id, act.as_ref(), &audit)
        .await?;
    Ok(())
}
