//! Immersion swaps and training seats across nodes (spec/protocol.md §4.3).
//!
//! **Immersion swaps** ("Vis mon job" with reciprocity): two agents of two nodes who want
//! each other's métier for a day. Candidates are paired from the opt-in profiles
//! (`domain::matching::pair_immersion_swaps`); HR of one node proposes the swap as a
//! `direct` `immersion_swap` posting to the other node, naming both profiles
//! (`swapProfiles`) and both days (`proposedDates`: the proposer's agent's day, then the
//! other agent's). The other node accepts (`Accept` of the posting) or declines
//! (`Reject`); either may cancel (`Reject`). Each node then reports the immersion it
//! hosted (`Accept` with `visit`), so each side's immersion is tracked at both.
//!
//! **Training seats**: a node's `training_session` posting offers `seatsForPartners` of
//! its `seatsTotal`; the session's node may give each partner a quota. A partner
//! registers one of its agents with an `Add` (a registration id of its own, `target` the
//! session), cancels with an `Undo` of that `Add`. The session's node allocates seats
//! first come, first served within the quotas (`domain::matching::allocate_seats`) and
//! answers each registration with `Accept` (confirmed) or `Reject` (waiting list or
//! refused, with the reason), again whenever a cancellation frees a seat. No personal data
//! travels: a registration names a node, not an agent.

use std::collections::BTreeMap;

use passerelle_protocol::ids::ActorId;
use passerelle_protocol::vocab::{
    self, ActivityType, AgentProfile, Extra, Posting, PostingBody, PostingKind, Validate as _,
};
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{
    MobilityError, Result, activity, build_err, by_id, embedded, mint, object_id, str_of, today,
};
use crate::auth::Principal;
use crate::domain::matching::{self, Registration, SeatPolicy, WaitReason};
use crate::federation::{Federation, FederationError, now_seconds};
use crate::store::{
    AuditRecord, InboxEntry, PostingStatus, RegistrationRow, SwapChange, SwapRow, origin_of,
};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn fed_err(e: MobilityError) -> FederationError {
    match e {
        MobilityError::Store(s) => FederationError::Store(s),
        MobilityError::Federation(f) => f,
        other => FederationError::Invalid(other.to_string()),
    }
}

// ---- immersion swaps ----

/// A pair of agents who want each other's métier, one of them ours.
#[derive(Debug, Clone)]
pub struct SwapCandidate {
    /// Our agent's profile.
    pub our_profile: String,
    /// The other agent's profile.
    pub their_profile: String,
    /// The other node.
    pub partner: String,
    /// The métier our agent discovers.
    pub our_agent_discovers: String,
    /// The métier their agent discovers.
    pub their_agent_discovers: String,
    /// Why, in French.
    pub reason: String,
}

async fn our_profiles(fed: &Federation) -> Result<Vec<AgentProfile>> {
    let mut out = Vec::new();
    for row in fed.store().profiles().await? {
        if let Some(d) = row.document
            && let Ok(p) = serde_json::from_value::<AgentProfile>(d)
        {
            out.push(p);
        }
    }
    Ok(out)
}

async fn their_profiles(fed: &Federation) -> Result<Vec<AgentProfile>> {
    let mut out = Vec::new();
    for r in fed.store().remote_profiles(false).await? {
        if let Some(d) = r.document
            && let Ok(p) = serde_json::from_value::<AgentProfile>(d)
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// The swaps the profiles allow, one of our agents in each, not already proposed.
///
/// # Errors
/// A store failure.
pub async fn candidates(fed: &Federation) -> Result<Vec<SwapCandidate>> {
    let mut profiles = our_profiles(fed).await?;
    profiles.extend(their_profiles(fed).await?);
    let busy: Vec<(String, String)> = fed
        .store()
        .swaps()
        .await?
        .into_iter()
        .filter(|s| matches!(s.state.as_str(), "proposed" | "agreed" | "done"))
        .map(|s| (s.our_profile, s.their_profile))
        .collect();
    let us = fed.actor_id();
    let mut out = Vec::new();
    for m in matching::pair_immersion_swaps(&profiles) {
        let (ours, theirs, ours_discovers, theirs_discovers) = if m.a.attributed_to.as_str() == us {
            (m.a, m.b, &m.a_discovers, &m.b_discovers)
        } else if m.b.attributed_to.as_str() == us {
            (m.b, m.a, &m.b_discovers, &m.a_discovers)
        } else {
            continue;
        };
        let key = (ours.id.to_string(), theirs.id.to_string());
        if busy.contains(&key) {
            continue;
        }
        out.push(SwapCandidate {
            our_profile: key.0,
            their_profile: key.1,
            partner: theirs.attributed_to.to_string(),
            our_agent_discovers: ours_discovers.clone(),
            their_agent_discovers: theirs_discovers.clone(),
            reason: m.reason_fr.clone(),
        });
    }
    Ok(out)
}

/// A swap to propose.
#[derive(Debug, Clone)]
pub struct ProposeSwap {
    /// Our agent's profile (id).
    pub our_profile: String,
    /// The other agent's profile (id).
    pub their_profile: String,
    /// The day our agent spends at the other node.
    pub our_visit_on: Date,
    /// The day their agent spends here.
    pub their_visit_on: Date,
    /// The functional mailbox of the HR service organising it.
    pub contact_mailbox: String,
    /// The service hosting their agent.
    pub service: Option<String>,
    /// The commune (COG) where their agent is hosted (default: our agent's first
    /// commune).
    pub commune: Option<String>,
}

/// Proposes a swap to the other agent's node: a `direct` `immersion_swap` posting naming
/// both profiles and both days.
///
/// # Errors
/// [`MobilityError::Invalid`] without reciprocity or for a bad posting,
/// [`MobilityError::NotFound`] for unknown profiles.
pub async fn propose(fed: &Federation, who: &Principal, input: ProposeSwap) -> Result<SwapRow> {
    let ours = our_profiles(fed)
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == input.our_profile)
        .ok_or_else(|| {
            MobilityError::NotFound(format!(
                "introuvable : profil publié de notre agent {}",
                input.our_profile
            ))
        })?;
    let theirs = their_profiles(fed)
        .await?
        .into_iter()
        .find(|p| p.id.as_str() == input.their_profile)
        .ok_or_else(|| {
            MobilityError::NotFound(format!(
                "introuvable : profil d'un agent partenaire {}",
                input.their_profile
            ))
        })?;
    let pair = [ours.clone(), theirs.clone()];
    if matching::pair_immersion_swaps(&pair).is_empty() {
        return Err(MobilityError::invalid(
            "their_profile",
            "pas de réciprocité : chaque agent doit demander un échange d'immersion et exercer un métier que l'autre souhaite découvrir",
        ));
    }
    let partner = theirs.attributed_to.to_string();
    let label = |p: &AgentProfile| {
        p.metiers_current
            .first()
            .and_then(|m| {
                m.local
                    .as_ref()
                    .map(|l| l.label.clone())
                    .or_else(|| m.cnfpt.as_ref().map(|c| c.label.clone()))
                    .or_else(|| m.rome.as_ref().and_then(|r| r.label.clone()))
                    .or_else(|| m.rome.as_ref().map(|r| format!("ROME {}", r.code)))
            })
            .unwrap_or_else(|| "métier".to_owned())
    };
    let commune = input
        .commune
        .clone()
        .or_else(|| {
            ours.area
                .as_ref()
                .and_then(|a| a.communes.first())
                .map(|c| c.to_string())
        })
        .ok_or_else(|| {
            MobilityError::invalid(
                "commune",
                "la commune où l'agent partenaire est accueilli est obligatoire (code officiel géographique)",
            )
        })?;
    let id = mint(fed, "swaps")?;
    let last = input.our_visit_on.max(input.their_visit_on);
    let mut body = json!({
        "wantedMetiers": theirs.metiers_current,
        "reciprocity": "required",
        "proposedDates": [input.our_visit_on.to_string(), input.their_visit_on.to_string()],
    });
    if let Some(service) = &input.service {
        body["initiatorService"] = json!(service);
    }
    let mut statutory = json!({"versant": "fpt"});
    if let Some(c) = ours.categorie {
        statutory["categories"] = json!([c]);
    }
    if let Some(f) = ours.filiere {
        statutory["filieres"] = json!([f]);
    }
    let doc = json!({
        "@context": vocab::context(),
        "id": id,
        "type": "Posting",
        "postingKind": "immersion_swap",
        "attributedTo": fed.actor_id(),
        "version": 1,
        "published": rfc3339(now_seconds()),
        "status": "published",
        "visibility": "direct",
        "to": [partner],
        "name": format!("Vis mon job : {} ↔ {}", label(&ours), label(&theirs)),
        "metiers": ours.metiers_current,
        "statutory": statutory,
        "locations": [{"commune": commune}],
        "dates": {"publishFrom": today().to_string(), "applyUntil": last.to_string()},
        "contact": {"mailbox": input.contact_mailbox},
        "body": body,
        "swapProfiles": {"proposer": ours.id, "partner": theirs.id},
    });
    let posting: Posting = serde_json::from_value(doc.clone())
        .map_err(|e| MobilityError::invalid("posting", format!("échange illisible : {e}")))?;
    posting
        .validate(fed.validation())
        .map_err(|p| MobilityError::from_problems("échange invalide", &p))?;
    let signed = fed.sign(doc)?;
    let create = activity(
        fed,
        ActivityType::Create,
        embedded(&signed)?,
        None,
        vec![partner.clone()],
        Extra::new(),
    )?;
    let row = SwapRow {
        id: Uuid::now_v7(),
        object_id: id.to_string(),
        proposer: fed.actor_id().to_owned(),
        partner,
        our_profile: input.our_profile,
        their_profile: input.their_profile,
        state: "proposed".into(),
        our_visit_on: Some(input.our_visit_on.to_string()),
        their_visit_on: Some(input.their_visit_on.to_string()),
        our_visit: "planned".into(),
        their_visit: "planned".into(),
        document: signed,
        created_at: OffsetDateTime::now_utc(),
        updated_at: OffsetDateTime::now_utc(),
    };
    let audit = who.audit("swap.propose", format!("swap:{}", row.id));
    Ok(fed
        .store()
        .insert_swap(&row, &[create], Some(&audit))
        .await?)
}

/// What HR does with a swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapAction {
    /// The other node accepts the proposal.
    Accept,
    /// The other node declines it.
    Decline,
    /// Either node cancels it.
    Cancel,
}

/// Accepts, declines or cancels a swap, telling the other node.
///
/// # Errors
/// [`MobilityError::Conflict`] when the state does not allow it.
pub async fn act(
    fed: &Federation,
    who: &Principal,
    id: Uuid,
    action: SwapAction,
) -> Result<SwapRow> {
    let s = fed.store().swap(id).await?;
    let we_proposed = s.proposer == fed.actor_id();
    let (to_state, kind, allowed) = match action {
        SwapAction::Accept => (
            "agreed",
            ActivityType::Accept,
            s.state == "proposed" && !we_proposed,
        ),
        SwapAction::Decline => (
            "declined",
            ActivityType::Reject,
            s.state == "proposed" && !we_proposed,
        ),
        SwapAction::Cancel => (
            "cancelled",
            ActivityType::Reject,
            s.state == "agreed" || (s.state == "proposed" && we_proposed),
        ),
    };
    if !allowed {
        return Err(MobilityError::Conflict(format!(
            "impossible : l'échange est à l'état « {} »{}",
            s.state,
            if we_proposed && action != SwapAction::Cancel {
                " et c'est l'autre collectivité qui répond à la proposition"
            } else {
                ""
            }
        )));
    }
    let mut extra = Extra::new();
    if action == SwapAction::Cancel {
        extra.insert("swap".into(), json!("cancelled"));
    }
    let act = activity(
        fed,
        kind,
        by_id(&s.object_id)?,
        None,
        vec![s.partner.clone()],
        extra,
    )?;
    let change = SwapChange {
        state: Some(to_state.into()),
        ..Default::default()
    };
    let audit = who.audit(&format!("swap.{to_state}"), format!("swap:{id}"));
    Ok(fed
        .store()
        .update_swap(id, &s.state, &change, &[act], Some(&audit))
        .await?)
}

/// Reports the immersion this node hosted (the other agent's day here): `done` or
/// `missed`; the other node records it too.
///
/// # Errors
/// [`MobilityError::Conflict`] unless the swap is agreed.
pub async fn report_visit(
    fed: &Federation,
    who: &Principal,
    id: Uuid,
    status: &str,
) -> Result<SwapRow> {
    if !matches!(status, "done" | "missed") {
        return Err(MobilityError::invalid(
            "status",
            "l'immersion accueillie est « done » (effectuée) ou « missed » (non effectuée)",
        ));
    }
    let s = fed.store().swap(id).await?;
    if s.state != "agreed" {
        return Err(MobilityError::Conflict(format!(
            "seule une immersion d'un échange accepté se déclare ; l'échange est à l'état « {} »",
            s.state
        )));
    }
    let mut extra = Extra::new();
    extra.insert(
        "visit".into(),
        json!({"agent": s.their_profile, "status": status}),
    );
    let act = activity(
        fed,
        ActivityType::Accept,
        by_id(&s.object_id)?,
        None,
        vec![s.partner.clone()],
        extra,
    )?;
    let both_done = s.our_visit != "planned";
    let change = SwapChange {
        their_visit: Some(status.into()),
        state: both_done.then(|| "done".into()),
        ..Default::default()
    };
    let audit = who.audit("swap.visit", format!("swap:{id}"));
    Ok(fed
        .store()
        .update_swap(id, &s.state, &change, &[act], Some(&audit))
        .await?)
}

/// A swap proposed by a partner to one of our agents (its `immersion_swap` posting
/// naming our agent's profile). `None` when the posting is not such a proposal.
///
/// # Errors
/// A store failure (retried).
pub async fn on_swap_posting(
    fed: &Federation,
    entry: &InboxEntry,
    object: &Value,
) -> std::result::Result<Option<&'static str>, FederationError> {
    let Some(profiles) = object.get("swapProfiles") else {
        return Ok(None);
    };
    if str_of(object, "postingKind") != Some("immersion_swap") {
        return Ok(None);
    }
    let (Some(id), Some(proposer_profile), Some(our_profile)) = (
        str_of(object, "id"),
        str_of(profiles, "proposer"),
        str_of(profiles, "partner"),
    ) else {
        return Ok(Some("ignored: swap without its two profiles"));
    };
    if str_of(object, "attributedTo") != Some(entry.actor_id.as_str()) {
        return Ok(Some("ignored: a swap is proposed by its node"));
    }
    if fed.store().profile_agent(our_profile).await?.is_none()
        && origin_of(our_profile) != origin_of(fed.actor_id())
    {
        return Ok(Some("ignored: the swap names none of our agents"));
    }
    if fed.store().swap_by_object(id).await?.is_some() {
        return Ok(Some("swap already known"));
    }
    let dates: Vec<String> = object
        .get("body")
        .and_then(|b| b.get("proposedDates"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let row = SwapRow {
        id: Uuid::now_v7(),
        object_id: id.to_owned(),
        proposer: entry.actor_id.clone(),
        partner: entry.actor_id.clone(),
        our_profile: our_profile.to_owned(),
        their_profile: proposer_profile.to_owned(),
        state: "proposed".into(),
        // The proposer's agent comes first: its day is our "their visit".
        our_visit_on: dates.get(1).cloned(),
        their_visit_on: dates.first().cloned(),
        our_visit: "planned".into(),
        their_visit: "planned".into(),
        document: object.clone(),
        created_at: OffsetDateTime::now_utc(),
        updated_at: OffsetDateTime::now_utc(),
    };
    match fed.store().insert_swap(&row, &[], None).await {
        Ok(_) => Ok(Some("swap proposed by a partner")),
        Err(crate::store::StoreError::Conflict { .. }) => Ok(Some("swap already known")),
        Err(e) => Err(e.into()),
    }
}

/// `Accept` or `Reject` of a swap: accepted, declined, cancelled, or a reported
/// immersion. `None` when the object is not a swap.
///
/// # Errors
/// A store failure (retried).
pub async fn on_swap_answer(
    fed: &Federation,
    entry: &InboxEntry,
) -> std::result::Result<Option<&'static str>, FederationError> {
    let doc = &entry.document;
    let Some(object) = object_id(doc) else {
        return Ok(None);
    };
    let Some(s) = fed.store().swap_by_object(object).await? else {
        return Ok(None);
    };
    if s.partner != entry.actor_id {
        return Ok(Some("ignored: not the other node of this swap"));
    }
    let accept = entry.activity_type == "Accept";
    let change = if let Some(visit) = doc.get("visit") {
        let status = str_of(visit, "status").unwrap_or("");
        if !matches!(status, "done" | "missed") || str_of(visit, "agent") != Some(&s.our_profile) {
            return Ok(Some("ignored: unreadable immersion report"));
        }
        if s.state != "agreed" {
            return Ok(Some("ignored: immersion report on a swap not agreed"));
        }
        SwapChange {
            our_visit: Some(status.into()),
            state: (s.their_visit != "planned").then(|| "done".into()),
            ..Default::default()
        }
    } else if accept {
        if s.state != "proposed" || s.proposer != fed.actor_id() {
            return Ok(Some("ignored: nothing to accept"));
        }
        SwapChange {
            state: Some("agreed".into()),
            ..Default::default()
        }
    } else {
        if !matches!(s.state.as_str(), "proposed" | "agreed") {
            return Ok(Some("ignored: swap already ended"));
        }
        let state = if s.state == "proposed" && str_of(doc, "swap") != Some("cancelled") {
            "declined"
        } else {
            "cancelled"
        };
        SwapChange {
            state: Some(state.into()),
            ..Default::default()
        }
    };
    match fed
        .store()
        .update_swap(s.id, &s.state, &change, &[], None)
        .await
    {
        Ok(_) => Ok(Some("swap updated")),
        Err(crate::store::StoreError::Conflict { .. }) => Err(FederationError::Invalid(
            "the swap changed while projecting; retry".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

// ---- training seats ----

/// A training session this node can register to: ours (published) or a partner's.
async fn session(fed: &Federation, id: &str) -> Result<Posting> {
    let mut found = None;
    for p in fed.store().postings(Some(PostingStatus::Published)).await? {
        if p.document.get("id").and_then(Value::as_str) == Some(id) {
            found = Some(p.document);
        }
    }
    if found.is_none()
        && let Some(r) = fed.store().remote_posting(id).await?
    {
        found = r.document;
    }
    let doc = found.ok_or_else(|| {
        MobilityError::NotFound(format!("introuvable : session de formation publiée {id}"))
    })?;
    let posting: Posting = serde_json::from_value(doc).map_err(build_err)?;
    if posting.posting_kind() != PostingKind::TrainingSession {
        return Err(MobilityError::invalid(
            "session",
            "cette offre n'est pas une session de formation (training_session)",
        ));
    }
    Ok(posting)
}

/// Registers a local agent to a session (ours, or a partner's: an `Add` to its node).
///
/// # Errors
/// [`MobilityError::NotFound`] for an unknown session or agent.
pub async fn register(
    fed: &Federation,
    who: &Principal,
    session_id: &str,
    agent_id: Uuid,
) -> Result<RegistrationRow> {
    fed.store().agent(agent_id).await?;
    let posting = session(fed, session_id).await?;
    let host = posting.attributed_to.to_string();
    let us = fed.actor_id().to_owned();
    let object_id = mint(fed, "registrations")?;
    let audit = who.audit("training.register", format!("session:{session_id}"));
    let mut row = RegistrationRow {
        id: Uuid::now_v7(),
        object_id: object_id.to_string(),
        session: session_id.to_owned(),
        node: us.clone(),
        host: host.clone(),
        agent_id: Some(agent_id),
        status: "requested".into(),
        reason: None,
        activity_id: None,
        registered_at: OffsetDateTime::now_utc(),
        updated_at: OffsetDateTime::now_utc(),
    };
    if host == us {
        let id = row.id;
        fed.store()
            .insert_registration(&row, &[], Some(&audit))
            .await?;
        allocate(fed, session_id).await?;
        return Ok(fed.store().registration(id).await?);
    }
    let add = activity(
        fed,
        ActivityType::Add,
        by_id(object_id.as_str())?,
        Some(by_id(session_id)?),
        vec![host],
        Extra::new(),
    )?;
    row.activity_id = Some(add.activity_id.clone());
    Ok(fed
        .store()
        .insert_registration(&row, &[add], Some(&audit))
        .await?)
}

/// Cancels a registration of ours (an `Undo` of its `Add` to the session's node).
///
/// # Errors
/// [`MobilityError::Conflict`] when already cancelled or not ours.
pub async fn cancel(fed: &Federation, who: &Principal, id: Uuid) -> Result<RegistrationRow> {
    let r = fed.store().registration(id).await?;
    if r.node != fed.actor_id() || r.status == "cancelled" {
        return Err(MobilityError::Conflict(
            "seule une inscription active d'un agent de ce nœud s'annule ici".to_owned(),
        ));
    }
    let audit = who.audit("training.cancel", format!("registration:{id}"));
    let mut acts = Vec::new();
    if r.host != fed.actor_id()
        && let Some(add) = &r.activity_id
    {
        acts.push(activity(
            fed,
            ActivityType::Undo,
            by_id(add)?,
            None,
            vec![r.host.clone()],
            Extra::new(),
        )?);
    }
    fed.store()
        .set_registrations(&[(id, "cancelled".into(), None)], &acts, Some(&audit))
        .await?;
    if r.host == fed.actor_id() {
        allocate(fed, &r.session).await?;
    }
    Ok(fed.store().registration(id).await?)
}

fn wait_status(reason: &WaitReason) -> &'static str {
    match reason {
        WaitReason::NotInvited => "refused",
        _ => "waitlisted",
    }
}

/// Allocates the seats of one of our sessions among its registrations (first come,
/// first served, within quotas) and tells each registering node what changed.
///
/// # Errors
/// A store failure.
pub async fn allocate(fed: &Federation, session_id: &str) -> Result<()> {
    let posting = session(fed, session_id).await?;
    let (total, partners) = match &posting.body {
        PostingBody::TrainingSession(b) => (
            b.seats_total.unwrap_or(0),
            b.seats_for_partners.unwrap_or(0),
        ),
        _ => (0, 0),
    };
    let quotas = fed.store().training_quotas(session_id).await?;
    let host: ActorId = fed.actor_id().parse().map_err(build_err)?;
    let mut quota_map = BTreeMap::new();
    for (actor, q) in &quotas {
        if let Ok(a) = actor.parse::<ActorId>() {
            quota_map.insert(a, u32::try_from(*q).unwrap_or(0));
        }
    }
    let policy = SeatPolicy {
        host,
        seats_total: total,
        seats_for_partners: partners,
        default_quota: quotas.is_empty().then_some(partners),
        quotas: quota_map,
    };
    let regs: Vec<RegistrationRow> = fed
        .store()
        .registrations(Some(session_id))
        .await?
        .into_iter()
        .filter(|r| r.status != "cancelled")
        .collect();
    let input: Vec<Registration> = regs
        .iter()
        .filter_map(|r| {
            Some(Registration {
                id: r.object_id.clone(),
                node: r.node.parse().ok()?,
                registered_at: r.registered_at,
            })
        })
        .collect();
    let allocation = matching::allocate_seats(&policy, &input);
    let mut changes = Vec::new();
    let mut acts = Vec::new();
    for r in &regs {
        let (status, reason) = if allocation.confirmed.contains(&r.object_id) {
            ("confirmed", None)
        } else if let Some((_, why)) = allocation
            .waitlisted
            .iter()
            .find(|(id, _)| *id == r.object_id)
        {
            (wait_status(why), Some(why.message_fr()))
        } else {
            continue;
        };
        if r.status == status && r.reason == reason {
            continue;
        }
        changes.push((r.id, status.to_owned(), reason.clone()));
        if r.node != fed.actor_id() {
            let mut extra = Extra::new();
            extra.insert("status".into(), json!(status));
            if let Some(why) = &reason {
                extra.insert("reason".into(), json!(why));
            }
            let kind = if status == "confirmed" {
                ActivityType::Accept
            } else {
                ActivityType::Reject
            };
            acts.push(activity(
                fed,
                kind,
                by_id(&r.object_id)?,
                None,
                vec![r.node.clone()],
                extra,
            )?);
        }
    }
    if !changes.is_empty() {
        fed.store().set_registrations(&changes, &acts, None).await?;
    }
    Ok(())
}

/// Sets the per-partner quotas of one of our sessions, then re-allocates.
///
/// # Errors
/// [`MobilityError::NotFound`] for a session that is not ours.
pub async fn set_quotas(
    fed: &Federation,
    who: &Principal,
    session_id: &str,
    quotas: &[(String, i64)],
) -> Result<()> {
    let posting = session(fed, session_id).await?;
    if posting.attributed_to.as_str() != fed.actor_id() {
        return Err(MobilityError::Conflict(
            "seule la collectivité qui organise la session fixe les quotas".to_owned(),
        ));
    }
    let audit: AuditRecord = who.audit("training.quotas", format!("session:{session_id}"));
    fed.store()
        .set_training_quotas(session_id, quotas, &audit)
        .await?;
    allocate(fed, session_id).await
}

/// `Add` of a registration to one of our sessions. `None` when the target is not one of
/// our training sessions.
///
/// # Errors
/// A store failure (retried).
pub async fn on_register(
    fed: &Federation,
    entry: &InboxEntry,
) -> std::result::Result<Option<&'static str>, FederationError> {
    let doc = &entry.document;
    let (Some(reg), Some(target)) = (
        doc.get("object").and_then(Value::as_str),
        doc.get("target").and_then(Value::as_str),
    ) else {
        return Ok(None);
    };
    let Ok(posting) = session(fed, target).await else {
        return Ok(None);
    };
    if posting.attributed_to.as_str() != fed.actor_id() {
        return Ok(None);
    }
    if origin_of(reg) != origin_of(&entry.actor_id) {
        return Ok(Some("ignored: registration of another origin"));
    }
    if fed.store().registration_by_object(reg).await?.is_some() {
        return Ok(Some("registration already known"));
    }
    let row = RegistrationRow {
        id: Uuid::now_v7(),
        object_id: reg.to_owned(),
        session: target.to_owned(),
        node: entry.actor_id.clone(),
        host: fed.actor_id().to_owned(),
        agent_id: None,
        status: "requested".into(),
        reason: None,
        activity_id: Some(entry.activity_id.clone()),
        registered_at: entry.received_at,
        updated_at: OffsetDateTime::now_utc(),
    };
    match fed.store().insert_registration(&row, &[], None).await {
        Ok(_) | Err(crate::store::StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    allocate(fed, target).await.map_err(fed_err)?;
    Ok(Some("registration to a session received and allocated"))
}

/// `Undo` of a registration's `Add`: cancelled, seats re-allocated. `None` when it is
/// not about a registration.
///
/// # Errors
/// A store failure (retried).
pub async fn on_undo(
    fed: &Federation,
    entry: &InboxEntry,
) -> std::result::Result<Option<&'static str>, FederationError> {
    let Some(object) = object_id(&entry.document) else {
        return Ok(None);
    };
    let Some(r) = fed.store().registration_by_object(object).await? else {
        return Ok(None);
    };
    if r.node != entry.actor_id || r.host != fed.actor_id() {
        return Ok(Some("ignored: not the registering node"));
    }
    if r.status == "cancelled" {
        return Ok(Some("registration already cancelled"));
    }
    fed.store()
        .set_registrations(&[(r.id, "cancelled".into(), None)], &[], None)
        .await?;
    allocate(fed, &r.session).await.map_err(fed_err)?;
    Ok(Some("registration cancelled; seats re-allocated"))
}

/// `Accept` or `Reject` of one of our registrations by the session's node. `None` when
/// the object is not one of our registrations.
///
/// # Errors
/// A store failure (retried).
pub async fn on_registration_answer(
    fed: &Federation,
    entry: &InboxEntry,
) -> std::result::Result<Option<&'static str>, FederationError> {
    let doc = &entry.document;
    let Some(object) = object_id(doc) else {
        return Ok(None);
    };
    let Some(r) = fed.store().registration_by_object(object).await? else {
        return Ok(None);
    };
    if r.node != fed.actor_id() || r.host != entry.actor_id {
        return Ok(Some("ignored: not the session's node"));
    }
    if r.status == "cancelled" {
        return Ok(Some("ignored: registration cancelled"));
    }
    let status = if entry.activity_type == "Accept" {
        "confirmed"
    } else if str_of(doc, "status") == Some("refused") {
        "refused"
    } else {
        "waitlisted"
    };
    let reason = str_of(doc, "reason").map(str::to_owned);
    fed.store()
        .set_registrations(&[(r.id, status.into(), reason)], &[], None)
        .await?;
    Ok(Some("registration answered by the session's node"))
}
