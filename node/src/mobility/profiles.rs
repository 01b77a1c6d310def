//! Agents' opt-in profiles (spec/protocol.md §6.3, §15) and matching.
//!
//! A profile is published pseudonymously to the scope the agent chose — nobody outside
//! its HR (`private`, `origin_hr`), the partner circles it names (`partner_circle`), or
//! every partner (`federation`) — with a consent log: each scope consented to, with the
//! version of the text the agent read, closed when replaced or withdrawn. The nodes a
//! profile reached are recorded; narrowing the scope or withdrawing sends them a `Delete`,
//! and each acknowledges the erasure with an `Accept` of that `Delete`.
//!
//! Matching proposes, for a profile, the postings (ours and our partners') that fit, and
//! for a posting, the profiles that fit — each with its reasons in French. Suggestions
//! only: a person decides (GDPR art. 22).

use std::collections::BTreeSet;

use passerelle_protocol::vocab::{
    self, ActivityType, AgentProfile, Extra, Posting, ProfileVisibility, Validate as _,
};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    MobilityError, Result, activity, build_err, by_id, embedded, mint, object_id, str_of, today,
};
use crate::auth::Principal;
use crate::domain::matching::{self, Reason};
use crate::federation::{Federation, FederationError, now_seconds};
use crate::store::{
    PartnershipState, PostingApply, PostingStatus, ProfileRow, ProfileWrite, origin_of,
};

/// Members the node sets on a profile; values sent by clients are replaced.
const SERVER_OWNED: [&str; 10] = [
    "@context",
    "id",
    "type",
    "attributedTo",
    "version",
    "published",
    "updated",
    "proof",
    "to",
    "cc",
];

/// Whether a visibility reaches other nodes.
fn federates(v: ProfileVisibility) -> bool {
    matches!(
        v,
        ProfileVisibility::PartnerCircle | ProfileVisibility::Federation
    )
}

fn visibility_str(v: ProfileVisibility) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|x| x.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Fills the server-owned members, validates (no personal data, addressing per
/// visibility) and signs a profile.
fn build(
    fed: &Federation,
    object_id: &str,
    handle: &str,
    content: Value,
    version: i64,
    published: OffsetDateTime,
) -> Result<(AgentProfile, Value)> {
    let Value::Object(mut doc) = content else {
        return Err(MobilityError::invalid(
            "content",
            "le contenu d'un profil doit être un objet JSON",
        ));
    };
    for key in SERVER_OWNED {
        doc.remove(key);
    }
    doc.insert("@context".into(), vocab::context());
    doc.insert("id".into(), json!(object_id));
    doc.insert("type".into(), json!("AgentProfile"));
    doc.insert("attributedTo".into(), json!(fed.actor_id()));
    doc.insert("handle".into(), json!(handle));
    doc.insert("version".into(), json!(version));
    doc.insert("published".into(), json!(rfc3339(published)));
    if version > 1 {
        doc.insert("updated".into(), json!(rfc3339(now_seconds())));
    }
    match doc.get("visibility").and_then(Value::as_str) {
        Some("federation") => {
            doc.insert("to".into(), json!([fed.followers_url()]));
        }
        Some("partner_circle") => {
            let circles = doc.get("circles").cloned().unwrap_or(json!([]));
            doc.insert("to".into(), circles);
        }
        Some(_) => {}
        None => {
            return Err(MobilityError::invalid(
                "visibility",
                "la visibilité choisie par l'agent est obligatoire : private, origin_hr, partner_circle ou federation",
            ));
        }
    }
    let value = Value::Object(doc);
    let profile: AgentProfile = serde_json::from_value(value.clone())
        .map_err(|e| MobilityError::invalid("content", format!("profil illisible : {e}")))?;
    profile
        .validate(fed.validation())
        .map_err(|p| MobilityError::from_problems("profil invalide", &p))?;
    let signed = fed.sign(value)?;
    Ok((profile, signed))
}

/// The nodes a profile of this visibility reaches: our partners (`federation`), or the
/// partners that are members of its circles (`partner_circle`).
async fn audience_nodes(fed: &Federation, profile: &AgentProfile) -> Result<Vec<String>> {
    let partners: BTreeSet<String> = fed
        .store()
        .partners()
        .await?
        .into_iter()
        .filter(|p| p.incoming == PartnershipState::Accepted)
        .map(|p| p.actor_id)
        .collect();
    Ok(match profile.visibility {
        ProfileVisibility::Federation => partners.into_iter().collect(),
        ProfileVisibility::PartnerCircle => {
            let wanted: BTreeSet<&str> = profile.circles.iter().map(|c| c.as_str()).collect();
            let mut out = BTreeSet::new();
            for c in fed.store().circles().await? {
                if wanted.contains(c.url.as_str()) {
                    out.extend(c.members.into_iter().filter(|m| partners.contains(m)));
                }
            }
            out.into_iter().collect()
        }
        _ => Vec::new(),
    })
}

/// A pseudonymous handle: `agent-` and six random hex digits.
fn new_handle() -> String {
    format!("agent-{}", &Uuid::now_v7().simple().to_string()[26..])
}

fn require_consent(
    visibility: ProfileVisibility,
    consent: Option<&String>,
) -> Result<Option<String>> {
    match consent.filter(|c| !c.trim().is_empty()) {
        Some(c) => Ok(Some(c.trim().to_owned())),
        None if federates(visibility) => Err(MobilityError::invalid(
            "consent_text_version",
            "le consentement de l'agent est obligatoire pour que son profil soit vu par d'autres employeurs : indiquez la version du texte d'information qu'il a lu et accepté",
        )),
        None => Ok(None),
    }
}

/// Publishes an agent's profile to the scope it chose, with its consent.
///
/// # Errors
/// [`MobilityError::Invalid`] (personal data, missing consent…), not found.
pub async fn create(
    fed: &Federation,
    who: &Principal,
    agent_id: Uuid,
    content: Value,
    consent: Option<String>,
) -> Result<ProfileRow> {
    fed.store().agent(agent_id).await?;
    let id = Uuid::now_v7();
    let object_id = mint(fed, "profiles")?;
    let handle = content
        .get("handle")
        .and_then(Value::as_str)
        .map_or_else(new_handle, str::to_owned);
    let (profile, signed) = build(fed, object_id.as_str(), &handle, content, 1, now_seconds())?;
    let consent = require_consent(profile.visibility, consent.as_ref())?;
    let recipients = audience_nodes(fed, &profile).await?;
    let mut activities = Vec::new();
    if federates(profile.visibility) {
        activities.push(activity(
            fed,
            ActivityType::Create,
            embedded(&signed)?,
            None,
            profile.to.clone(),
            Extra::new(),
        )?);
    }
    let write = ProfileWrite {
        id,
        object_id: object_id.to_string(),
        agent_id: Some(agent_id),
        handle: handle.clone(),
        expected_version: None,
        version: 1,
        document: Some(signed),
        visibility: visibility_str(profile.visibility),
        consent: consent.map(|c| (c, who.actor.clone())),
        recipients,
        ..Default::default()
    };
    let audit = who.audit("profile.create", format!("profile:{id}"));
    Ok(fed
        .store()
        .write_profile(&write, &activities, Some(&audit))
        .await?)
}

fn live(row: &ProfileRow) -> Result<&Value> {
    row.document.as_ref().ok_or_else(|| {
        MobilityError::Conflict(
            "ce profil a été retiré par l'agent : il ne peut plus être modifié".to_owned(),
        )
    })
}

/// A `Delete` of profile `object_id` addressed to `nodes`.
fn delete_activity(
    fed: &Federation,
    object_id: &str,
    nodes: Vec<String>,
) -> Result<crate::store::NewActivity> {
    let tombstone = json!({
        "id": object_id,
        "type": "Tombstone",
        "formerType": "AgentProfile",
        "deleted": rfc3339(now_seconds()),
    });
    activity(
        fed,
        ActivityType::Delete,
        embedded(&tombstone)?,
        None,
        nodes,
        Extra::new(),
    )
}

/// Replaces a profile's content (a new version). A new scope needs the agent's consent
/// to it; the nodes the new scope leaves out receive a `Delete`.
///
/// # Errors
/// As [`create`]; [`MobilityError::Conflict`] for a withdrawn profile.
pub async fn update(
    fed: &Federation,
    who: &Principal,
    id: Uuid,
    content: Value,
    consent: Option<String>,
) -> Result<ProfileRow> {
    let row = fed.store().profile(id).await?;
    let old: AgentProfile = serde_json::from_value(live(&row)?.clone()).map_err(build_err)?;
    let (profile, signed) = build(
        fed,
        &row.object_id,
        &row.handle,
        content,
        row.version + 1,
        old.published,
    )?;
    let scope_changed = profile.visibility != old.visibility || profile.circles != old.circles;
    let consent = if scope_changed {
        require_consent(profile.visibility, consent.as_ref())?
    } else {
        None
    };
    let now_nodes = audience_nodes(fed, &profile).await?;
    let before: Vec<String> = fed
        .store()
        .profile_recipients(id)
        .await?
        .into_iter()
        .filter(|r| r.delete_activity.is_none())
        .map(|r| r.actor_id)
        .collect();
    let left_out: Vec<String> = before
        .into_iter()
        .filter(|a| !now_nodes.contains(a))
        .collect();
    let mut activities = Vec::new();
    if federates(profile.visibility) && !now_nodes.is_empty() {
        activities.push(activity(
            fed,
            ActivityType::Update,
            embedded(&signed)?,
            None,
            profile.to.clone(),
            Extra::new(),
        )?);
    }
    let mut deleted_for = None;
    if !left_out.is_empty() {
        let del = delete_activity(fed, &row.object_id, left_out.clone())?;
        deleted_for = Some((del.activity_id.clone(), left_out));
        activities.push(del);
    }
    let write = ProfileWrite {
        id,
        object_id: row.object_id.clone(),
        agent_id: row.agent_id,
        handle: row.handle.clone(),
        expected_version: Some(row.version),
        version: row.version + 1,
        document: Some(signed),
        visibility: visibility_str(profile.visibility),
        consent: consent.map(|c| (c, who.actor.clone())),
        recipients: now_nodes,
        deleted_for,
        ..Default::default()
    };
    let audit = who.audit("profile.update", format!("profile:{id}"));
    Ok(fed
        .store()
        .write_profile(&write, &activities, Some(&audit))
        .await?)
}

/// Withdraws a profile (the agent withdraws consent): every node that received it gets a
/// `Delete` and acknowledges the erasure; the local content is erased, the consents
/// closed.
///
/// # Errors
/// [`MobilityError::Conflict`] when already withdrawn.
pub async fn withdraw(fed: &Federation, who: &Principal, id: Uuid) -> Result<ProfileRow> {
    let row = fed.store().profile(id).await?;
    live(&row)?;
    let nodes: Vec<String> = fed
        .store()
        .profile_recipients(id)
        .await?
        .into_iter()
        .filter(|r| r.delete_activity.is_none())
        .map(|r| r.actor_id)
        .collect();
    let mut activities = Vec::new();
    let mut deleted_for = None;
    if !nodes.is_empty() {
        let del = delete_activity(fed, &row.object_id, nodes.clone())?;
        deleted_for = Some((del.activity_id.clone(), nodes));
        activities.push(del);
    }
    let write = ProfileWrite {
        id,
        object_id: row.object_id.clone(),
        agent_id: row.agent_id,
        handle: row.handle.clone(),
        expected_version: Some(row.version),
        version: row.version + 1,
        document: None,
        visibility: row.visibility.clone(),
        close_consents: true,
        deleted_for,
        withdrawn: true,
        ..Default::default()
    };
    let audit = who.audit("profile.withdraw", format!("profile:{id}"));
    Ok(fed
        .store()
        .write_profile(&write, &activities, Some(&audit))
        .await?)
}

/// Withdraws every live profile of an agent (before the agent's fiche is deleted).
///
/// # Errors
/// As [`withdraw`].
pub async fn withdraw_for_agent(fed: &Federation, who: &Principal, agent_id: Uuid) -> Result<()> {
    for row in fed.store().profiles().await? {
        if row.agent_id == Some(agent_id) && row.document.is_some() {
            withdraw(fed, who, row.id).await?;
        }
    }
    Ok(())
}

// ---- projection ----

/// `Create` or `Update` of a partner's profile: stored by version; a withdrawn profile
/// stays withdrawn.
///
/// # Errors
/// A store failure (retried).
pub async fn on_version(
    fed: &Federation,
    entry: &crate::store::InboxEntry,
    object: &Value,
) -> std::result::Result<&'static str, FederationError> {
    let (Some(id), Some(author)) = (str_of(object, "id"), str_of(object, "attributedTo")) else {
        return Ok("ignored: profile without id or author");
    };
    if author == fed.actor_id() {
        return Ok("ignored: our own profile");
    }
    if author != entry.actor_id {
        return Ok("ignored: a profile is sent by its node");
    }
    let version = object.get("version").and_then(Value::as_i64).unwrap_or(1);
    Ok(
        match fed
            .store()
            .apply_profile_version(id, author, version, object)
            .await?
        {
            PostingApply::Stored => "profile stored",
            PostingApply::Stale => "profile already known (same or newer version)",
            PostingApply::Tombstoned => "profile withdrawn earlier (tombstone wins)",
            PostingApply::VersionConflict => "version conflict: stored profile kept",
        },
    )
}

/// `Delete` of a partner's profile: its content is erased and the erasure acknowledged
/// to its node (`Accept` of the `Delete`). `None` when the `Delete` is not about a
/// profile.
///
/// # Errors
/// A store failure (retried).
pub async fn on_delete(
    fed: &Federation,
    entry: &crate::store::InboxEntry,
) -> std::result::Result<Option<&'static str>, FederationError> {
    let doc = &entry.document;
    let Some(id) = object_id(doc) else {
        return Ok(None);
    };
    let former = doc.get("object").and_then(|o| str_of(o, "formerType"));
    let is_profile = former == Some("AgentProfile")
        || (former.is_none() && fed.store().is_remote_profile(id).await?);
    if !is_profile {
        return Ok(None);
    }
    if origin_of(id) != origin_of(&entry.actor_id) {
        return Ok(Some("ignored: profile of another origin"));
    }
    let ack = activity(
        fed,
        ActivityType::Accept,
        by_id(&entry.activity_id).map_err(|e| FederationError::Build(e.to_string()))?,
        None,
        vec![entry.actor_id.clone()],
        Extra::new(),
    )
    .map_err(|e| FederationError::Build(e.to_string()))?;
    let changed = fed
        .store()
        .apply_profile_delete(id, &entry.actor_id, Some(&ack))
        .await?;
    Ok(Some(if changed {
        "profile erased; erasure acknowledged"
    } else {
        "profile already erased"
    }))
}

/// `Accept` of one of our profile `Delete`s: the node acknowledges the erasure. `None`
/// when it is not one.
///
/// # Errors
/// A store failure (retried).
pub async fn on_ack(
    fed: &Federation,
    entry: &crate::store::InboxEntry,
) -> std::result::Result<Option<&'static str>, FederationError> {
    if entry.activity_type != "Accept" {
        return Ok(None);
    }
    let Some(object) = object_id(&entry.document) else {
        return Ok(None);
    };
    if origin_of(object) != origin_of(fed.actor_id()) {
        return Ok(None);
    }
    Ok(fed
        .store()
        .ack_profile_delete(object, &entry.actor_id)
        .await?
        .then_some("erasure of a profile acknowledged"))
}

// ---- matching ----

/// A suggestion with its reasons, for the API.
#[derive(Debug, Clone)]
pub struct Match {
    /// The posting's or profile's id.
    pub id: String,
    /// Its node.
    pub node: String,
    /// The posting's title, or the profile's handle.
    pub label: String,
    /// Kind of posting (for a posting).
    pub kind: Option<String>,
    /// Score.
    pub score: u32,
    /// Reasons, strongest first.
    pub reasons: Vec<Reason>,
}

/// Every profile this node may match: its agents' live profiles and its partners'.
async fn all_profiles(fed: &Federation) -> Result<Vec<AgentProfile>> {
    let mut out = Vec::new();
    for row in fed.store().profiles().await? {
        if let Some(d) = row.document
            && let Ok(p) = serde_json::from_value::<AgentProfile>(d)
        {
            out.push(p);
        }
    }
    for r in fed.store().remote_profiles(false).await? {
        if let Some(d) = r.document
            && let Ok(p) = serde_json::from_value::<AgentProfile>(d)
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// Every posting this node may match: its published postings and its partners'.
async fn all_postings(fed: &Federation) -> Result<Vec<Posting>> {
    let mut out = Vec::new();
    for p in fed.store().postings(Some(PostingStatus::Published)).await? {
        if let Ok(x) = serde_json::from_value::<Posting>(p.document) {
            out.push(x);
        }
    }
    for r in fed.store().remote_postings(None, false).await? {
        if let Some(d) = r.document
            && let Ok(x) = serde_json::from_value::<Posting>(d)
        {
            out.push(x);
        }
    }
    Ok(out)
}

/// The postings (ours and our partners') that fit the profile `profile_id` (ours or a
/// partner's), best first.
///
/// # Errors
/// [`MobilityError::NotFound`] for an unknown profile.
pub async fn postings_for(fed: &Federation, profile_id: &str) -> Result<Vec<Match>> {
    let profiles = all_profiles(fed).await?;
    let profile = profiles
        .iter()
        .find(|p| p.id.as_str() == profile_id)
        .ok_or_else(|| MobilityError::NotFound(format!("introuvable : profil {profile_id}")))?;
    let postings = all_postings(fed).await?;
    Ok(matching::postings_for_profile(profile, &postings, today())
        .into_iter()
        .map(|s| Match {
            id: s.item.id.to_string(),
            node: s.item.attributed_to.to_string(),
            label: s.item.name.clone(),
            kind: Some(s.item.posting_kind().as_str().to_owned()),
            score: s.score,
            reasons: s.reasons,
        })
        .collect())
}

/// The opt-in profiles (our agents' and our partners') that fit the posting `posting_id`
/// (ours or a partner's), best first.
///
/// # Errors
/// [`MobilityError::NotFound`] for an unknown posting.
pub async fn profiles_for(fed: &Federation, posting_id: &str) -> Result<Vec<Match>> {
    let postings = all_postings(fed).await?;
    let posting = postings
        .iter()
        .find(|p| p.id.as_str() == posting_id)
        .ok_or_else(|| {
            MobilityError::NotFound(format!("introuvable : offre publiée {posting_id}"))
        })?;
    let profiles = all_profiles(fed).await?;
    Ok(matching::profiles_for_posting(posting, &profiles, today())
        .into_iter()
        .map(|s| Match {
            id: s.item.id.to_string(),
            node: s.item.attributed_to.to_string(),
            label: s.item.handle.clone(),
            kind: None,
            score: s.score,
            reasons: s.reasons,
        })
        .collect())
}
