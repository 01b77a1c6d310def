//! MAD requests between two nodes (spec/protocol.md §4.3): creation, transitions fired by
//! HR, by the other employer or by dates, the convention and its two signatures, and the
//! projection of what the other employer sends.
//!
//! **Single writer.** The node that created a request (its `attributedTo`) is the only
//! one that issues versions: it applies every transition, its own and the other
//! employer's, and sends the new version as `Update{MadRequest}` with the transition in
//! `history`. The other employer fires its transitions with an activity addressed to the
//! creator (`Accept`/`Reject` of the request naming the transition, `Offer` of revised
//! terms, `Add` of the convention with its signature) and records them when the
//! creator's version comes back.
//!
//! **Refused at both ends.** The sender runs the state machine before sending and refuses
//! what it does not allow (409 `mad_transition_refused`, in French). A receiver that gets
//! a transition its own state does not allow keeps its state, records the refusal and
//! answers with `Reject` of the refused activity carrying a `problem`; the sender records
//! it in turn. Neither side changed state, so both still agree.

use std::collections::BTreeSet;

use passerelle_protocol::mad::{
    self, ConventionClause, MANDATORY_CLAUSES, MadContext, MadError, MadState, Party, Relation,
    Side, Transition,
};
use passerelle_protocol::vocab::{
    self, ActivityType, AgentAgreement, AgentRef, AgentStatut, Convention, DisclosedIdentity,
    Extra, MadHistoryEntry, MadRequest, MadTerms, Validate as _,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::{
    MobilityError, Result, activity, build_err, by_id, embedded, mint, object_id, our_actor,
    our_collectivite, partner_collectivite, partner_name, str_of, today, without_proof,
};
use crate::auth::Principal;
use crate::domain::convention::{self as conv, ConventionInput, Drafter, Parties};
use crate::domain::deadlines::{self, Deadline, DeadlineConfig, MadFacts, MutationFacts};
use crate::domain::mad as rules;
use crate::federation::{Federation, FederationError, now_seconds};
use crate::store::{
    AuditRecord, ConventionRow, InboxEntry, MadChange, MadFilter, MadRow, NewActivity, NewMad,
};

/// Legal references carried by every request.
pub const LEGAL_BASIS: [&str; 5] = [
    "CGFP L512-6",
    "CGFP L512-7",
    "CGFP L512-12",
    "CGFP L512-15",
    "Décret n° 2008-580",
];

/// How long the host keeps the agent's identity after a request reached a final state
/// (spec/protocol.md §15).
pub const HOST_RETENTION_DAYS: i64 = 365;

/// What HR asks to create.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The other employer (a partner's actor id).
    pub partner: String,
    /// This node's role.
    pub side: Side,
    /// The local agent (origin).
    pub agent_id: Option<Uuid>,
    /// The agent's reference given by the origin, or its profile id (host).
    pub agent_ref: Option<String>,
    /// The agent's statut as the origin stated it (host).
    pub agent_statut: Option<AgentStatut>,
    /// The posting answered.
    pub posting: Option<String>,
    /// The proposed terms (protocol wire format).
    pub terms: Value,
}

/// A transition HR fires.
#[derive(Debug, Clone, Default)]
pub struct Fire {
    /// Which (wire value).
    pub transition: Option<Transition>,
    /// As which party (default: the first of this node's side).
    pub party: Option<Party>,
    /// New terms (counter-proposal, revision, renewal, amendment).
    pub terms: Option<Value>,
    /// Date of the act (séance, arrêté, request).
    pub date: Option<Date>,
    /// Reference of the act.
    pub reference: Option<String>,
    /// Origin and host agree that a disciplinary fault ends the MAD (`end_for_fault`).
    pub fault_agreed: bool,
}

/// What firing a transition did.
#[derive(Debug, Clone)]
pub enum Fired {
    /// This node created the request: the transition is recorded in a new version, sent
    /// to the other employer.
    Recorded(MadRow),
    /// The other employer created it: the transition is sent to it and pending until its
    /// new version comes back.
    Sent(MadRow),
}

impl Fired {
    /// The request as it is now.
    pub fn row(&self) -> &MadRow {
        match self {
            Fired::Recorded(r) | Fired::Sent(r) => r,
        }
    }
}

/// What a step records besides its transition.
#[derive(Debug, Clone, Default)]
struct Step {
    terms: Option<MadTerms>,
    date: Option<Date>,
    reference: Option<String>,
    fault_agreed: bool,
    identity: Option<DisclosedIdentity>,
}

/// A request with its parsed document.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The stored row.
    pub row: MadRow,
    /// Its document.
    pub doc: MadRequest,
    /// This node's side.
    pub side: Side,
}

impl Parsed {
    /// Parses a stored row.
    ///
    /// # Errors
    /// [`MobilityError::Build`] when the stored document does not parse.
    pub fn new(row: MadRow) -> Result<Self> {
        let doc: MadRequest = serde_json::from_value(row.document.clone()).map_err(build_err)?;
        let side = if row.our_side == "origin" {
            Side::Origin
        } else {
            Side::Host
        };
        Ok(Self { row, doc, side })
    }

    /// Whether this node created the request.
    pub fn we_create(&self, fed: &Federation) -> bool {
        self.row.creator == fed.actor_id()
    }

    /// The current convention number.
    pub fn amendment(&self) -> u32 {
        rules::amendment_number(&self.doc.history)
    }
}

/// Loads a request.
///
/// # Errors
/// Not found, or a stored document that does not parse.
pub async fn load(fed: &Federation, id: Uuid) -> Result<Parsed> {
    Parsed::new(fed.store().mad_request(id).await?)
}

fn parse_terms(v: Value, field: &str) -> Result<MadTerms> {
    let terms: MadTerms = serde_json::from_value(v).map_err(|e| {
        MobilityError::invalid(
            field,
            format!("conditions de mise à disposition illisibles : {e}"),
        )
    })?;
    terms
        .validate(&vocab::ValidationContext::development())
        .map_err(|p| MobilityError::from_problems("conditions invalides", &p))?;
    Ok(terms)
}

fn agent_statut(data: &Value) -> Option<AgentStatut> {
    data.get("statut")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// What the host learns of the agent once the agent agreed: name, grade, échelon.
fn identity_of(agent: &crate::store::Agent) -> DisclosedIdentity {
    DisclosedIdentity {
        name: agent.display_name.clone(),
        grade: agent
            .data
            .get("grade")
            .and_then(Value::as_str)
            .map(str::to_owned),
        echelon: agent
            .data
            .get("echelon")
            .and_then(Value::as_u64)
            .and_then(|e| u8::try_from(e).ok()),
    }
}

fn side_str(side: Side) -> &'static str {
    side.as_str()
}

/// Creates a draft request (nothing is sent until `send`).
///
/// # Errors
/// [`MobilityError::Invalid`] for a bad input, [`MobilityError::NotFound`] for an unknown
/// agent or partner.
pub async fn create(fed: &Federation, who: &Principal, input: NewRequest) -> Result<MadRow> {
    let store = fed.store();
    let partner = store
        .partner_by_actor(&input.partner)
        .await?
        .filter(|p| p.is_partner_either_way())
        .ok_or_else(|| {
            MobilityError::invalid(
                "partner",
                format!(
                    "{} n'est pas un partenaire de ce nœud : une mise à disposition se négocie entre partenaires",
                    input.partner
                ),
            )
        })?;
    let terms = parse_terms(input.terms, "terms")?;
    let us = our_actor(fed)?;
    let them: passerelle_protocol::ids::ActorId = partner.actor_id.parse().map_err(build_err)?;
    let (agent_id, agent) = match input.side {
        Side::Origin => {
            let id = input.agent_id.ok_or_else(|| {
                MobilityError::invalid(
                    "agent_id",
                    "l'agent mis à disposition est obligatoire pour l'employeur d'origine",
                )
            })?;
            let agent = store.agent(id).await?;
            let statut = agent_statut(&agent.data).ok_or_else(|| {
                MobilityError::invalid(
                    "agent_id",
                    "la fiche de l'agent n'indique pas sa situation statutaire (data.statut : fonctionnaire_titulaire, contractuel_cdi…)",
                )
            })?;
            let reference = format!("agent-{}", &Uuid::now_v7().simple().to_string()[20..]);
            (
                Some(id),
                AgentRef {
                    reference,
                    statut,
                    disclosed: None,
                },
            )
        }
        Side::Host => {
            let reference = input.agent_ref.filter(|r| !r.trim().is_empty()).ok_or_else(|| {
                MobilityError::invalid(
                    "agent_ref",
                    "la référence de l'agent (son profil ou la référence donnée par son employeur) est obligatoire",
                )
            })?;
            let statut = input.agent_statut.ok_or_else(|| {
                MobilityError::invalid(
                    "agent_statut",
                    "la situation statutaire de l'agent est obligatoire",
                )
            })?;
            (
                None,
                AgentRef {
                    reference,
                    statut,
                    disclosed: None,
                },
            )
        }
    };
    let (origin, host) = match input.side {
        Side::Origin => (us.clone(), them.clone()),
        Side::Host => (them.clone(), us.clone()),
    };
    let object_id = mint(fed, "mad/requests")?;
    let posting = match input.posting {
        Some(p) => Some(p.parse().map_err(|e| {
            MobilityError::invalid("posting", format!("adresse d'offre invalide : {e}"))
        })?),
        None => None,
    };
    let doc = MadRequest {
        context: Some(vocab::context()),
        id: object_id.clone(),
        kind: Default::default(),
        attributed_to: us,
        origin,
        host,
        agent,
        posting,
        terms,
        state: MadState::Draft,
        version: 1,
        published: now_seconds(),
        updated: None,
        legal_basis: LEGAL_BASIS.iter().map(|s| (*s).to_owned()).collect(),
        history: Vec::new(),
        amendment_terms: None,
        to: vec![them.to_string()],
        cc: Vec::new(),
        proof: None,
        extra: Extra::new(),
    };
    doc.validate(fed.validation())
        .map_err(|p| MobilityError::from_problems("demande invalide", &p))?;
    let new = NewMad {
        id: Uuid::now_v7(),
        object_id: object_id.to_string(),
        creator: fed.actor_id().to_owned(),
        our_side: side_str(input.side).to_owned(),
        partner: partner.actor_id,
        agent_id,
        state: MadState::Draft.as_str().to_owned(),
        version: 0,
        document: serde_json::to_value(&doc).map_err(build_err)?,
    };
    let audit = who.audit("mad.create", format!("mad:{}", new.id));
    Ok(store.insert_mad_request(&new, None, Some(&audit)).await?)
}

/// Replaces the terms of a draft.
///
/// # Errors
/// [`MobilityError::Conflict`] once the request was sent.
pub async fn update_draft(
    fed: &Federation,
    who: &Principal,
    id: Uuid,
    terms: Value,
    posting: Option<String>,
) -> Result<MadRow> {
    let mut p = load(fed, id).await?;
    if p.doc.state != MadState::Draft {
        return Err(MobilityError::Conflict(format!(
            "seul un brouillon se modifie ainsi ; la demande est à l'état « {} » : proposez une révision des conditions (révision, contre-proposition ou avenant)",
            p.doc.state.label_fr()
        )));
    }
    p.doc.terms = parse_terms(terms, "terms")?;
    if let Some(posting) = posting {
        p.doc.posting = Some(posting.parse().map_err(|e| {
            MobilityError::invalid("posting", format!("adresse d'offre invalide : {e}"))
        })?);
    }
    let change = MadChange {
        document: Some((0, serde_json::to_value(&p.doc).map_err(build_err)?)),
        ..Default::default()
    };
    let audit = who.audit("mad.update", format!("mad:{id}"));
    Ok(fed
        .store()
        .update_mad_request(id, p.row.version, &change, &[], Some(&audit))
        .await?)
}

/// The parties of a convention: this node's identity and the partner's actor document.
async fn parties(fed: &Federation, p: &Parsed) -> Result<Parties> {
    let identity = fed.store().identity().await?;
    let us = conv::Party {
        id: our_actor(fed)?,
        name: identity.name,
        siren: identity.siren.parse().map_err(build_err)?,
    };
    let (name, siren) = partner_name(fed, &p.row.partner).await?;
    let them = conv::Party {
        id: p.row.partner.parse().map_err(build_err)?,
        name,
        siren,
    };
    Ok(match p.side {
        Side::Origin => Parties {
            origin: us,
            host: them,
        },
        Side::Host => Parties {
            origin: them,
            host: us,
        },
    })
}

/// The relations between the two employers.
async fn relations(fed: &Federation, p: &Parsed) -> Result<BTreeSet<Relation>> {
    let ours = our_collectivite(fed).await?;
    let theirs = partner_collectivite(fed, &p.row.partner).await?;
    Ok(match p.side {
        Side::Origin => rules::relations(&ours, &theirs),
        Side::Host => rules::relations(&theirs, &ours),
    })
}

/// Hex SHA-256 of a document's RFC 8785 form.
fn digest(doc: &Value) -> Result<String> {
    let bytes = passerelle_protocol::canonical::canonicalize(doc).map_err(build_err)?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// Drafts (or re-drafts) convention number `k` at the origin: the agreed `terms`, every
/// mandatory clause, the agent's identity and agreement when given.
async fn draft_convention(
    fed: &Federation,
    p: &Parsed,
    k: u32,
    terms: &MadTerms,
    state: MadState,
    identity: Option<&DisclosedIdentity>,
    agreement: Option<AgentAgreement>,
) -> Result<ConventionRow> {
    let held = held_convention(fed, p, k).await?;
    let id = match &held {
        Some(c) => c.convention_id.parse().map_err(build_err)?,
        None => mint(fed, "mad/conventions")?,
    };
    let parties = parties(fed, p).await?;
    let relations = relations(fed, p).await?;
    let convention = conv::build(&ConventionInput {
        id,
        mad_request: p.doc.id.clone(),
        drafter: Drafter::Origin,
        parties: &parties,
        terms,
        relations: &relations,
        state,
        agent: identity,
        agent_agreement: agreement,
        amendment: Some(k),
        published: now_seconds(),
    })
    .map_err(|e| MobilityError::Conflict(e.message_fr()))?;
    let document = conv::to_json(&convention).map_err(build_err)?;
    let sha = digest(&document)?;
    Ok(ConventionRow {
        convention_id: convention.id.to_string(),
        amendment: i64::from(k),
        document,
        draft_sha256: Some(sha),
        signed_by_origin: false,
        signed_by_host: false,
    })
}

/// Convention number `k` as held by this node.
async fn held_convention(fed: &Federation, p: &Parsed, k: u32) -> Result<Option<ConventionRow>> {
    Ok(fed
        .store()
        .mad_conventions(p.row.id)
        .await?
        .into_iter()
        .find(|c| c.amendment == i64::from(k)))
}

/// What the checks know of convention number `k`.
#[derive(Debug, Clone, Default)]
struct ConventionFacts {
    clauses: BTreeSet<ConventionClause>,
    signed_by_origin: bool,
    signed_by_host: bool,
    agreed: bool,
}

/// The facts of the convention `held` (or, when none is held, of the convention the
/// generator writes for `terms`: every mandatory clause, or all but reimbursement when
/// the waiver is not lawful).
async fn convention_facts(
    fed: &Federation,
    p: &Parsed,
    held: Option<&ConventionRow>,
    terms: &MadTerms,
) -> Result<ConventionFacts> {
    if let Some(c) = held
        && let Ok(convention) = serde_json::from_value::<Convention>(c.document.clone())
        && convention.terms == *terms
    {
        return Ok(ConventionFacts {
            clauses: convention.clause_kinds(),
            signed_by_origin: c.signed_by_origin,
            signed_by_host: c.signed_by_host,
            agreed: convention.agent_agreement.is_some(),
        });
    }
    let parties = parties(fed, p).await?;
    let relations = relations(fed, p).await?;
    let clauses = match conv::build(&ConventionInput {
        // The id is minted here: this node is the drafter of this check-only draft.
        id: mint(fed, "mad/conventions")?,
        mad_request: p.doc.id.clone(),
        drafter: match p.side {
            Side::Origin => Drafter::Origin,
            Side::Host => Drafter::Host,
        },
        parties: &parties,
        terms,
        relations: &relations,
        state: MadState::TermsAgreed,
        agent: None,
        agent_agreement: None,
        amendment: None,
        published: now_seconds(),
    }) {
        Ok(c) => c.clause_kinds(),
        Err(_) => MANDATORY_CLAUSES
            .iter()
            .map(|(c, _, _)| *c)
            .filter(|c| *c != ConventionClause::Remboursement)
            .collect(),
    };
    Ok(ConventionFacts {
        clauses,
        ..Default::default()
    })
}

/// The terms a transition is checked against: the new ones it carries, the avenant's for
/// `conclude_amendment`, else those on the table.
fn checked_terms(doc: &MadRequest, transition: Transition, step: &Step) -> MadTerms {
    if let Some(t) = &step.terms {
        return t.clone();
    }
    if transition == Transition::ConcludeAmendment
        && let Some(t) = &doc.amendment_terms
    {
        return t.clone();
    }
    if doc.state == MadState::AmendmentPending
        && let Some(t) = &doc.amendment_terms
    {
        return t.clone();
    }
    doc.terms.clone()
}

/// The convention number a transition is checked against.
fn checked_amendment(p: &Parsed, transition: Transition) -> u32 {
    let k = p.amendment();
    if rules::opens_avenant(transition) {
        k + 1
    } else {
        k
    }
}

/// Runs the state machine: `transition` by `party` on the request as it is.
#[allow(clippy::too_many_arguments)]
async fn check(
    fed: &Federation,
    p: &Parsed,
    transition: Transition,
    party: Party,
    step: &Step,
    convention: Option<&ConventionRow>,
    today: Date,
) -> Result<()> {
    let terms = checked_terms(&p.doc, transition, step);
    let k = checked_amendment(p, transition);
    let held = match convention {
        Some(c) => Some(c.clone()),
        None => held_convention(fed, p, k).await?,
    };
    let facts = convention_facts(fed, p, held.as_ref(), &terms).await?;
    let relations = relations(fed, p).await?;
    let mut ctx = MadContext::new(&terms, p.doc.agent.statut, today);
    ctx.relations = relations;
    ctx.convention_clauses = facts.clauses;
    ctx.signed_by_origin = facts.signed_by_origin;
    ctx.signed_by_host = facts.signed_by_host;
    ctx.amendment_agreed = facts.agreed && facts.signed_by_origin && facts.signed_by_host;
    ctx.fault_agreed_by_both = step.fault_agreed;
    ctx.early_end_requested_on = rules::early_end_requested_on(&p.doc.history);
    let current = rules::machine_state(&p.doc.history, p.doc.state);
    mad::apply(&current, transition, party, &ctx).map_err(MobilityError::Refused)?;
    Ok(())
}

/// The next version of the request after `transition` (not yet signed).
fn next_version(
    doc: &MadRequest,
    transition: Transition,
    party: Party,
    step: &Step,
    activity: Option<&str>,
) -> Result<MadRequest> {
    let row = mad::rule(transition).ok_or_else(|| build_err("unknown transition"))?;
    let mut next = doc.clone();
    next.proof = None;
    let now = now_seconds();
    if transition == Transition::Send {
        next.version = 1;
        next.published = now;
        next.updated = None;
        next.history.clear();
    } else {
        next.version = doc.version + 1;
        next.updated = Some(now);
    }
    next.state = row.to;
    match transition {
        Transition::CounterPropose | Transition::ReviseTerms | Transition::Renew => {
            if let Some(t) = &step.terms {
                next.terms = t.clone();
            }
        }
        Transition::ProposeAmendment => next.amendment_terms = step.terms.clone(),
        Transition::ConcludeAmendment => {
            if let Some(t) = next.amendment_terms.take() {
                next.terms = t;
            }
        }
        Transition::AbandonAmendment => next.amendment_terms = None,
        _ => {}
    }
    if let Some(identity) = &step.identity {
        next.agent.disclosed = Some(identity.clone());
    }
    next.history.push(MadHistoryEntry {
        version: next.version,
        transition,
        party,
        from: doc.state,
        to: row.to,
        at: now,
        activity: activity.map(str::parse).transpose().map_err(build_err)?,
        date: step.date,
        reference: step.reference.clone(),
        extra: if step.fault_agreed {
            let mut e = Extra::new();
            e.insert("faultAgreed".into(), json!(true));
            e
        } else {
            Extra::new()
        },
    });
    Ok(next)
}

/// Records `transition` as the creator: checks it, writes the next version (signed) with
/// its `Update` (or the `Offer` of `send`) and `extra` activities, in one transaction.
#[allow(clippy::too_many_arguments)]
async fn record(
    fed: &Federation,
    p: &Parsed,
    transition: Transition,
    party: Party,
    step: &Step,
    activity_id: Option<&str>,
    extra: Vec<NewActivity>,
    convention: Option<ConventionRow>,
    audit: Option<&AuditRecord>,
    today: Date,
) -> Result<MadRow> {
    check(fed, p, transition, party, step, convention.as_ref(), today).await?;
    let next = next_version(&p.doc, transition, party, step, activity_id)?;
    next.validate(fed.validation())
        .map_err(|e| MobilityError::from_problems("version invalide", &e))?;
    let signed = fed.sign(serde_json::to_value(&next).map_err(build_err)?)?;
    let kind = if transition == Transition::Send {
        ActivityType::Offer
    } else {
        ActivityType::Update
    };
    let act = activity(
        fed,
        kind,
        embedded(&signed)?,
        None,
        vec![p.row.partner.clone()],
        Extra::new(),
    )?;
    let mut activities = extra;
    activities.push(act);
    let pending_done = p
        .row
        .pending
        .as_ref()
        .and_then(|v| str_of(v, "activity"))
        .is_some_and(|a| Some(a) == activity_id);
    let change = MadChange {
        state: Some(next.state.as_str().to_owned()),
        document: Some((i64::try_from(next.version).unwrap_or(i64::MAX), signed)),
        amendment: Some(i64::from(rules::amendment_number(&next.history))),
        pending: pending_done.then_some(None),
        convention,
        ..Default::default()
    };
    Ok(fed
        .store()
        .update_mad_request(p.row.id, p.row.version, &change, &activities, audit)
        .await?)
}

/// The activity with which the other employer fires `transition` on `p` (addressed to
/// the creator).
fn transition_activity(
    fed: &Federation,
    p: &Parsed,
    transition: Transition,
    party: Party,
    step: &Step,
) -> Result<NewActivity> {
    let to = vec![p.row.creator.clone()];
    let mut extra = Extra::new();
    if matches!(
        transition,
        Transition::CounterPropose | Transition::ReviseTerms
    ) {
        // A counter-proposal or revision: an Offer of our own proposal object.
        let terms = step.terms.clone().ok_or_else(|| {
            MobilityError::invalid("terms", "les nouvelles conditions sont obligatoires")
        })?;
        let mut proposal = p.doc.clone();
        proposal.id = mint(fed, "mad/proposals")?;
        proposal.attributed_to = our_actor(fed)?;
        proposal.terms = terms;
        proposal.version = 1;
        proposal.published = now_seconds();
        proposal.updated = None;
        proposal.history.clear();
        proposal.amendment_terms = None;
        proposal.agent.disclosed = None;
        proposal.state = mad::rule(transition).map_or(p.doc.state, |r| r.to);
        proposal.to = to.clone();
        proposal.proof = None;
        proposal
            .extra
            .insert("inReplyTo".into(), json!(p.doc.id.as_str()));
        proposal.context = None;
        let mut doc = serde_json::to_value(&proposal).map_err(build_err)?;
        if let Value::Object(m) = &mut doc {
            m.insert("@context".into(), vocab::context());
        }
        let signed = fed.sign(doc)?;
        extra.insert("party".into(), json!(party.as_str()));
        return activity(
            fed,
            ActivityType::Offer,
            embedded(&signed)?,
            None,
            to,
            extra,
        );
    }
    extra.insert("transition".into(), json!(transition.as_str()));
    extra.insert("party".into(), json!(party.as_str()));
    if let Some(d) = step.date {
        extra.insert("date".into(), json!(d.to_string()));
    }
    if let Some(r) = &step.reference {
        extra.insert("reference".into(), json!(r));
    }
    if let Some(t) = &step.terms {
        extra.insert("terms".into(), serde_json::to_value(t).map_err(build_err)?);
    }
    if let Some(i) = &step.identity {
        extra.insert(
            "agentIdentity".into(),
            serde_json::to_value(i).map_err(build_err)?,
        );
    }
    if step.fault_agreed {
        extra.insert("faultAgreed".into(), json!(true));
    }
    let kind = if matches!(
        transition,
        Transition::Reject
            | Transition::AgentDeclines
            | Transition::Withdraw
            | Transition::DeclineRenewal
    ) {
        ActivityType::Reject
    } else {
        ActivityType::Accept
    };
    activity(fed, kind, by_id(p.doc.id.as_str())?, None, to, extra)
}

/// Fires `input.transition` on request `id` for an HR user.
///
/// # Errors
/// [`MobilityError::Refused`] (409 `mad_transition_refused`) when the state machine
/// refuses it; [`MobilityError::Invalid`] for bad terms; [`MobilityError::Conflict`] while
/// another transition of ours is pending.
pub async fn fire(fed: &Federation, who: &Principal, id: Uuid, input: Fire) -> Result<Fired> {
    let p = load(fed, id).await?;
    let transition = input.transition.ok_or_else(|| {
        MobilityError::invalid("transition", "l'action à effectuer est obligatoire")
    })?;
    if let Some(pending) = &p.row.pending {
        return Err(MobilityError::Conflict(format!(
            "l'action « {} » a été envoyée à l'autre employeur et attend son enregistrement ; réessayez quand elle est enregistrée ou refusée",
            str_of(pending, "transition")
                .and_then(Transition::from_wire)
                .map_or("?", Transition::label_fr)
        )));
    }
    let party = rules::party_for(transition, p.side, input.party).map_err(|_| {
        let allowed = mad::rule(transition)
            .map(|r| {
                r.parties
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        MobilityError::Refused(MadError::WrongParty {
            state: p.doc.state,
            transition,
            party: input.party.unwrap_or(match p.side {
                Side::Origin => Party::OriginHr,
                Side::Host => Party::HostHr,
            }),
            allowed,
        })
    })?;
    if transition == Transition::Send && !p.we_create(fed) {
        return Err(MobilityError::Conflict(
            "seul l'employeur qui a créé la demande l'envoie".to_owned(),
        ));
    }
    let mut step = Step {
        terms: input.terms.map(|t| parse_terms(t, "terms")).transpose()?,
        date: input.date,
        reference: input.reference,
        fault_agreed: input.fault_agreed,
        identity: None,
    };
    if rules::carries_terms(transition) && step.terms.is_none() {
        return Err(MobilityError::invalid(
            "terms",
            format!(
                "l'action « {} » porte de nouvelles conditions : « terms » est obligatoire",
                transition.label_fr()
            ),
        ));
    }
    // What the origin drafts or records for this step.
    let mut convention = None;
    if p.side == Side::Origin {
        match transition {
            Transition::SendToAgent => {
                let terms = p.doc.terms.clone();
                convention = Some(
                    draft_convention(
                        fed,
                        &p,
                        p.amendment(),
                        &terms,
                        MadState::TermsAgreed,
                        None,
                        None,
                    )
                    .await?,
                );
            }
            Transition::Renew | Transition::ProposeAmendment => {
                if let Some(terms) = &step.terms {
                    convention = Some(
                        draft_convention(
                            fed,
                            &p,
                            p.amendment() + 1,
                            terms,
                            MadState::TermsAgreed,
                            None,
                            None,
                        )
                        .await?,
                    );
                }
            }
            Transition::AgentAgrees => {
                let agent_id = p.row.agent_id.ok_or_else(|| {
                    MobilityError::Conflict(
                        "aucun agent de ce nœud n'est rattaché à la demande : rattachez-le (PUT /api/v1/mad-requests/{id}/agent)".to_owned(),
                    )
                })?;
                let agent = fed.store().agent(agent_id).await?;
                let identity = identity_of(&agent);
                let k = p.amendment();
                let terms = p.doc.terms.clone();
                let draft = match held_convention(fed, &p, k).await? {
                    Some(c) if c.draft_sha256.is_some() => c,
                    _ => {
                        draft_convention(fed, &p, k, &terms, MadState::TermsAgreed, None, None)
                            .await?
                    }
                };
                let agreement = AgentAgreement {
                    agreed_at: now_seconds(),
                    document_sha256: draft.draft_sha256.clone().unwrap_or_default(),
                };
                let mut final_ = draft_convention(
                    fed,
                    &p,
                    k,
                    &terms,
                    MadState::AgentAgreed,
                    Some(&identity),
                    Some(agreement),
                )
                .await?;
                final_.draft_sha256 = None;
                convention = Some(final_);
                step.identity = Some(identity);
            }
            _ => {}
        }
    }
    let audit = who.audit(&format!("mad.{}", transition.as_str()), format!("mad:{id}"));
    let today = today();
    if p.we_create(fed) {
        let row = record(
            fed,
            &p,
            transition,
            party,
            &step,
            None,
            Vec::new(),
            convention,
            Some(&audit),
            today,
        )
        .await?;
        return Ok(Fired::Recorded(row));
    }
    check(fed, &p, transition, party, &step, None, today).await?;
    let act = transition_activity(fed, &p, transition, party, &step)?;
    let change = MadChange {
        pending: Some(Some(json!({
            "activity": act.activity_id,
            "transition": transition.as_str(),
            "party": party.as_str(),
            "at": crate::domain::convention::datetime_fr(OffsetDateTime::now_utc()),
        }))),
        convention,
        ..Default::default()
    };
    let row = fed
        .store()
        .update_mad_request(id, p.row.version, &change, &[act], Some(&audit))
        .await?;
    Ok(Fired::Sent(row))
}

/// Links the local agent to a request the host created (at the origin).
///
/// # Errors
/// [`MobilityError::Conflict`] at the host.
pub async fn link_agent(
    fed: &Federation,
    who: &Principal,
    id: Uuid,
    agent_id: Uuid,
) -> Result<MadRow> {
    let p = load(fed, id).await?;
    if p.side != Side::Origin {
        return Err(MobilityError::Conflict(
            "seul l'employeur d'origine rattache un agent à la demande".to_owned(),
        ));
    }
    let agent = fed.store().agent(agent_id).await?;
    if agent_statut(&agent.data) != Some(p.doc.agent.statut) {
        return Err(MobilityError::invalid(
            "agent_id",
            "la situation statutaire de cet agent ne correspond pas à celle de la demande",
        ));
    }
    let change = MadChange {
        agent_id: Some(Some(agent_id)),
        ..Default::default()
    };
    let audit = who.audit("mad.link_agent", format!("mad:{id}"));
    Ok(fed
        .store()
        .update_mad_request(id, p.row.version, &change, &[], Some(&audit))
        .await?)
}

/// Records the agent's written agreement on the avenant being agreed (at the origin,
/// state `amendment_pending`): the avenant is drafted with the agreement, ready to sign.
///
/// # Errors
/// [`MobilityError::Conflict`] elsewhere.
pub async fn record_amendment_agreement(
    fed: &Federation,
    who: &Principal,
    id: Uuid,
) -> Result<MadRow> {
    let p = load(fed, id).await?;
    if p.side != Side::Origin || p.doc.state != MadState::AmendmentPending {
        return Err(MobilityError::Conflict(
            "l'accord de l'agent sur un avenant se recueille à l'employeur d'origine, quand un avenant est en préparation".to_owned(),
        ));
    }
    let terms = p
        .doc
        .amendment_terms
        .clone()
        .ok_or_else(|| MobilityError::Conflict("l'avenant n'a pas de conditions".to_owned()))?;
    let k = p.amendment();
    let agent_id = p.row.agent_id.ok_or_else(|| {
        MobilityError::Conflict("aucun agent de ce nœud n'est rattaché à la demande".to_owned())
    })?;
    let identity = identity_of(&fed.store().agent(agent_id).await?);
    let draft = match held_convention(fed, &p, k).await? {
        Some(c) if c.draft_sha256.is_some() => c,
        _ => draft_convention(fed, &p, k, &terms, MadState::TermsAgreed, None, None).await?,
    };
    let agreement = AgentAgreement {
        agreed_at: now_seconds(),
        document_sha256: draft.draft_sha256.clone().unwrap_or_default(),
    };
    let mut final_ = draft_convention(
        fed,
        &p,
        k,
        &terms,
        p.doc.state,
        Some(&identity),
        Some(agreement),
    )
    .await?;
    final_.draft_sha256 = draft.draft_sha256;
    let change = MadChange {
        convention: Some(final_),
        ..Default::default()
    };
    let audit = who.audit("mad.amendment_agreement", format!("mad:{id}"));
    Ok(fed
        .store()
        .update_mad_request(id, p.row.version, &change, &[], Some(&audit))
        .await?)
}

/// Signs the current convention (or avenant) for this employer: the origin first, with a
/// `Create{Convention}` to the host; then the host adds its proof and sends the
/// convention with both proofs in an `Add` to the origin. When the second signature
/// completes the set in state `assembly_informed`, the creator records `sign_convention`.
///
/// # Errors
/// [`MobilityError::Conflict`] when there is nothing to sign or it is not this
/// employer's turn.
pub async fn sign(fed: &Federation, who: &Principal, id: Uuid) -> Result<Fired> {
    let p = load(fed, id).await?;
    if !matches!(
        p.doc.state,
        MadState::AssemblyInformed | MadState::AmendmentPending
    ) {
        return Err(MobilityError::Refused(MadError::WrongState {
            state: p.doc.state,
            transition: Transition::SignConvention,
            allowed: "assembly_informed, amendment_pending".to_owned(),
        }));
    }
    let k = p.amendment();
    let held = held_convention(fed, &p, k).await?;
    let audit = who.audit("mad.sign", format!("mad:{id}"));
    match p.side {
        Side::Origin => {
            let held = held
                .filter(|c| {
                    c.document
                        .get("agentAgreement")
                        .is_some()
                })
                .ok_or_else(|| {
                    MobilityError::Conflict(
                        "la convention ne peut être signée qu'après l'accord écrit de l'agent sur le projet".to_owned(),
                    )
                })?;
            if held.signed_by_origin {
                return Err(MobilityError::Conflict(
                    "la convention porte déjà la signature de l'employeur d'origine".to_owned(),
                ));
            }
            let signed = fed.sign(without_proof(&held.document))?;
            let act = activity(
                fed,
                ActivityType::Create,
                embedded(&signed)?,
                None,
                vec![p.row.partner.clone()],
                Extra::new(),
            )?;
            let change = MadChange {
                convention: Some(ConventionRow {
                    document: signed,
                    signed_by_origin: true,
                    signed_by_host: false,
                    draft_sha256: None,
                    ..held
                }),
                ..Default::default()
            };
            let row = fed
                .store()
                .update_mad_request(id, p.row.version, &change, &[act], Some(&audit))
                .await?;
            Ok(Fired::Sent(row))
        }
        Side::Host => {
            let held = held.filter(|c| c.signed_by_origin).ok_or_else(|| {
                MobilityError::Conflict(
                    "l'employeur d'origine n'a pas encore signé la convention : elle est signée d'abord par l'origine, puis par l'organisme d'accueil".to_owned(),
                )
            })?;
            if held.signed_by_host {
                return Err(MobilityError::Conflict(
                    "la convention porte déjà la signature de l'organisme d'accueil".to_owned(),
                ));
            }
            let signed = fed.sign(held.document.clone())?;
            let add = activity(
                fed,
                ActivityType::Add,
                embedded(&signed)?,
                Some(by_id(p.doc.id.as_str())?),
                vec![p.row.partner.clone()],
                Extra::new(),
            )?;
            let both = ConventionRow {
                document: signed,
                signed_by_host: true,
                draft_sha256: None,
                ..held
            };
            let completes = p.doc.state == MadState::AssemblyInformed;
            if completes && p.we_create(fed) {
                let row = record(
                    fed,
                    &p,
                    Transition::SignConvention,
                    Party::HostHr,
                    &Step::default(),
                    None,
                    vec![add],
                    Some(both),
                    Some(&audit),
                    today(),
                )
                .await?;
                return Ok(Fired::Recorded(row));
            }
            let change = MadChange {
                pending: completes.then(|| {
                    Some(json!({
                        "activity": add.activity_id,
                        "transition": Transition::SignConvention.as_str(),
                        "party": Party::HostHr.as_str(),
                    }))
                }),
                convention: Some(both),
                ..Default::default()
            };
            let row = fed
                .store()
                .update_mad_request(id, p.row.version, &change, &[add], Some(&audit))
                .await?;
            Ok(Fired::Sent(row))
        }
    }
}

/// The deadlines of a request, soonest first. `host_is_collectivite` says whether the
/// host is a collectivité territoriale ([`host_is_collectivite`]): with the terms'
/// `functionsOfGrade` and `hostVacantPost`, it decides whether the host must be prompted
/// to propose a mutation or a détachement (décret 2008-580).
pub fn deadlines_of(doc: &MadRequest, host_is_collectivite: bool) -> Vec<Deadline> {
    let mutation = match (doc.terms.functions_of_grade, doc.terms.host_vacant_post) {
        (Some(functions_of_grade), Some(host_has_vacant_post)) => Some(MutationFacts {
            first_start: first_start(doc),
            quotite_pct: doc.terms.quotite_pct,
            host_is_collectivite,
            functions_of_grade,
            host_has_vacant_post,
        }),
        _ => None,
    };
    deadlines::mad_deadlines(
        &MadFacts {
            terms: &doc.terms,
            state: doc.state,
            early_end_requested_on: rules::early_end_requested_on(&doc.history),
            mutation,
        },
        &DeadlineConfig::default(),
    )
}

/// The first day of the first period: the earliest `start` of the history (renewals
/// keep it) or, before any, the start date of the terms.
pub fn first_start(doc: &MadRequest) -> Date {
    doc.history
        .iter()
        .filter(|e| e.transition == Transition::Start)
        .map(|e| e.date.unwrap_or_else(|| e.at.date()))
        .fold(doc.terms.start_date, Date::min)
}

/// Whether the host of a request is a collectivité territoriale (commune, département,
/// région, collectivité à statut particulier), from this node's identity or the
/// partner's actor document; `false` when the partner's actor cannot be resolved.
pub async fn host_is_collectivite(fed: &Federation, p: &Parsed) -> bool {
    let host = match p.side {
        Side::Host => our_collectivite(fed).await,
        Side::Origin => partner_collectivite(fed, &p.row.partner).await,
    };
    host.is_ok_and(|c| c.kind.is_collectivite_territoriale())
}

/// Fires the transitions dates bring (start, term, renewal reminder, end of notice) on
/// the requests this node created. Safe with several processes: each transition is
/// written only on the version it was computed from.
///
/// # Errors
/// A store error listing the requests.
pub async fn tick(fed: &Federation, today: Date) -> Result<usize> {
    let filter = MadFilter {
        states: [
            MadState::ArreteIssued,
            MadState::Active,
            MadState::EarlyEndRequested,
        ]
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect(),
        creator: Some(fed.actor_id().to_owned()),
        agent_id: None,
    };
    // Retention at the host: the agent's identity goes one year after a final state.
    let finals: Vec<&str> = MadState::ALL
        .iter()
        .filter(|s| s.is_final())
        .map(|s| s.as_str())
        .collect();
    let cutoff = OffsetDateTime::now_utc() - time::Duration::days(HOST_RETENTION_DAYS);
    let erased = fed.store().erase_host_identities(cutoff, &finals).await?;
    if erased > 0 {
        tracing::info!(
            requests = erased,
            "agents' identities erased at the host after the retention period"
        );
    }
    let mut fired = 0;
    for row in fed.store().mad_requests(&filter).await? {
        let id = row.id;
        let Ok(p) = Parsed::new(row) else { continue };
        let due = rules::due_system_transition(
            p.doc.state,
            &p.doc.terms,
            rules::early_end_requested_on(&p.doc.history),
            today,
            &DeadlineConfig::default(),
        );
        let Some(transition) = due else { continue };
        let audit = AuditRecord::new(
            "system",
            format!("mad.{}", transition.as_str()),
            format!("mad:{id}"),
        );
        match record(
            fed,
            &p,
            transition,
            Party::System,
            &Step::default(),
            None,
            Vec::new(),
            None,
            Some(&audit),
            today,
        )
        .await
        {
            Ok(_) => fired += 1,
            Err(MobilityError::Store(crate::store::StoreError::Conflict { .. })) => {}
            Err(e) => {
                tracing::warn!(mad = %id, transition = %transition, error = %e, "a dated MAD transition could not be recorded")
            }
        }
    }
    Ok(fired)
}

// ---- projection of what the other employer sends ----

/// Outcome of a projection (or the failure to retry).
pub type Projected = std::result::Result<&'static str, FederationError>;

fn retry(e: MobilityError) -> FederationError {
    match e {
        MobilityError::Store(s) => FederationError::Store(s),
        MobilityError::Federation(f) => f,
        other => FederationError::Invalid(other.to_string()),
    }
}

/// The problem member of a refusal (`Reject` of the refused activity, §4.3).
fn problem(err: &MadError) -> Value {
    json!({
        "code": "mad_transition_refused",
        "state": err.state().as_str(),
        "transition": err.transition().as_str(),
        "detail": err.to_string(),
        "detailFr": err.detail_fr(),
    })
}

/// Refuses the other employer's activity `activity_id` about request `row`: records the
/// refusal and answers with `Reject` carrying the problem.
async fn refuse(
    fed: &Federation,
    row: Option<&MadRow>,
    partner: &str,
    activity_id: &str,
    err: &MadError,
) -> std::result::Result<(), MobilityError> {
    let mut extra = Extra::new();
    extra.insert("problem".into(), problem(err));
    let reject = activity(
        fed,
        ActivityType::Reject,
        by_id(activity_id)?,
        None,
        vec![partner.to_owned()],
        extra,
    )?;
    tracing::info!(activity = activity_id, refusal = %err, "a MAD transition of the other employer was refused");
    match row {
        Some(row) => {
            let change = MadChange {
                refusal: Some(Some(json!({
                    "by": "us",
                    "activity": activity_id,
                    "transition": err.transition().as_str(),
                    "state": err.state().as_str(),
                    "detail": err.detail_fr(),
                    "at": now_seconds().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                }))),
                ..Default::default()
            };
            fed.store()
                .update_mad_request(row.id, row.version, &change, &[reject], None)
                .await?;
        }
        None => {
            fed.store().append_activity(&reject, None).await?;
        }
    }
    Ok(())
}

/// A version of a request created by the other employer (`Offer` of version 1, then
/// `Update`s): every transition it records since the version held is checked, then the
/// version is stored — or refused.
pub async fn on_version(fed: &Federation, entry: &InboxEntry, object: &Value) -> Projected {
    let doc: MadRequest = match serde_json::from_value(object.clone()) {
        Ok(d) => d,
        Err(_) => return Ok("ignored: unreadable MAD request"),
    };
    let us = fed.actor_id();
    if doc.attributed_to.as_str() == us {
        return Ok("ignored: our own request");
    }
    if entry.actor_id != doc.attributed_to.as_str() {
        return Ok("ignored: a request is sent by its creator");
    }
    let side = if doc.origin.as_str() == us {
        Side::Origin
    } else if doc.host.as_str() == us {
        Side::Host
    } else {
        return Ok("ignored: this node is not a party");
    };
    let partner = match side {
        Side::Origin => doc.host.to_string(),
        Side::Host => doc.origin.to_string(),
    };
    if partner != entry.actor_id {
        return Ok("ignored: the creator must be the other employer");
    }
    let existing = fed
        .store()
        .mad_request_by_object(doc.id.as_str())
        .await
        .map_err(FederationError::from)?;
    let held = match &existing {
        Some(row) if row.creator != entry.actor_id => {
            return Ok("ignored: another node's request");
        }
        Some(row) if i64::try_from(doc.version).unwrap_or(i64::MAX) <= row.version => {
            return Ok("MAD request already known (same or newer version)");
        }
        Some(row) => Some(Parsed::new(row.clone()).map_err(retry)?),
        None => None,
    };
    // The state held before this version, as a parsed request for the checks.
    let mut base = match held {
        Some(h) => h,
        None => {
            let mut start = doc.clone();
            start.state = MadState::Draft;
            start.history.clear();
            start.version = 0;
            Parsed {
                row: MadRow {
                    id: Uuid::now_v7(),
                    object_id: doc.id.to_string(),
                    creator: entry.actor_id.clone(),
                    our_side: side_str(side).to_owned(),
                    partner: partner.clone(),
                    agent_id: None,
                    state: MadState::Draft.as_str().to_owned(),
                    version: 0,
                    document: Value::Null,
                    amendment: 0,
                    pending: None,
                    refusal: None,
                    created_at: OffsetDateTime::now_utc(),
                    updated_at: OffsetDateTime::now_utc(),
                    erased_at: None,
                },
                doc: start,
                side,
            }
        }
    };
    let held_version = u64::try_from(base.row.version).unwrap_or(0);
    let mut entries: Vec<MadHistoryEntry> = doc
        .history
        .iter()
        .filter(|e| e.version > held_version)
        .cloned()
        .collect();
    if entries.is_empty() {
        // A peer without history: one transition of the creator's side must lead there.
        let creator_side = side.other();
        let step = mad::transitions_from(base.doc.state).find(|r| {
            r.to == doc.state
                && r.parties
                    .iter()
                    .any(|p| p.side() == Some(creator_side) || *p == Party::System)
        });
        let Some(row) = step else {
            let err = MadError::WrongState {
                state: base.doc.state,
                transition: Transition::Send,
                allowed: format!(
                    "no single transition leads from {} to {}",
                    base.doc.state, doc.state
                ),
            };
            refuse(fed, existing.as_ref(), &partner, &entry.activity_id, &err)
                .await
                .map_err(retry)?;
            return Ok("refused: no transition leads to this state");
        };
        let party = row
            .parties
            .iter()
            .copied()
            .find(|p| p.side() == Some(creator_side) || *p == Party::System)
            .unwrap_or(Party::System);
        entries.push(MadHistoryEntry {
            version: doc.version,
            transition: row.transition,
            party,
            from: base.doc.state,
            to: row.to,
            at: doc.updated.unwrap_or(doc.published),
            activity: None,
            date: None,
            reference: None,
            extra: Extra::new(),
        });
    }
    let tomorrow = today().next_day().unwrap_or_else(today);
    for e in &entries {
        // The state the entry leaves must be the one held.
        if e.from != base.doc.state {
            let err = MadError::WrongState {
                state: base.doc.state,
                transition: e.transition,
                allowed: mad::rule(e.transition)
                    .map(|r| {
                        r.from
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            };
            refuse(fed, existing.as_ref(), &partner, &entry.activity_id, &err)
                .await
                .map_err(retry)?;
            return Ok("refused: the version does not follow the state held");
        }
        // A transition of one of our parties must be one we fired.
        if e.party.side() == Some(side) && !fired_by_us(fed, &base, e).await.map_err(retry)? {
            let err = MadError::WrongParty {
                state: base.doc.state,
                transition: e.transition,
                party: e.party,
                allowed: format!("{} (through its own activity)", fed.actor_id()),
            };
            refuse(fed, existing.as_ref(), &partner, &entry.activity_id, &err)
                .await
                .map_err(retry)?;
            return Ok("refused: a transition of ours that we did not fire");
        }
        let step = Step {
            terms: if rules::carries_terms(e.transition) {
                Some(if e.transition == Transition::ProposeAmendment {
                    doc.amendment_terms
                        .clone()
                        .unwrap_or_else(|| doc.terms.clone())
                } else {
                    doc.terms.clone()
                })
            } else {
                None
            },
            date: e.date,
            reference: e.reference.clone(),
            fault_agreed: e.extra.get("faultAgreed").and_then(Value::as_bool) == Some(true),
            identity: None,
        };
        if matches!(
            e.transition,
            Transition::SignConvention | Transition::ConcludeAmendment
        ) {
            // The signed convention travels in its own activity: wait for it.
            let k = base.amendment();
            let held = held_convention(fed, &base, k).await.map_err(retry)?;
            if !held.is_some_and(|c| c.signed_by_origin && c.signed_by_host) {
                return Err(FederationError::Invalid(
                    "the convention signed by both employers has not arrived yet".to_owned(),
                ));
            }
        }
        if let Err(err) = check(fed, &base, e.transition, e.party, &step, None, tomorrow).await {
            let MobilityError::Refused(err) = err else {
                return Err(retry(err));
            };
            refuse(fed, existing.as_ref(), &partner, &entry.activity_id, &err)
                .await
                .map_err(retry)?;
            return Ok("refused: the state machine does not allow it");
        }
        // Advance the base to the entry's version.
        base.doc.history.push(e.clone());
        base.doc.state = e.to;
        base.doc.version = e.version;
        base.doc.terms = doc.terms.clone();
        base.doc.amendment_terms = doc.amendment_terms.clone();
    }
    let document = object.clone();
    let version = i64::try_from(doc.version).unwrap_or(i64::MAX);
    match existing {
        Some(row) => {
            let pending_done = row
                .pending
                .as_ref()
                .and_then(|v| str_of(v, "activity"))
                .is_some_and(|a| {
                    entries
                        .iter()
                        .any(|e| e.activity.as_ref().map(|x| x.as_str()) == Some(a))
                });
            let change = MadChange {
                state: Some(doc.state.as_str().to_owned()),
                document: Some((version, document)),
                amendment: Some(i64::from(rules::amendment_number(&doc.history))),
                pending: pending_done.then_some(None),
                ..Default::default()
            };
            match fed
                .store()
                .update_mad_request(row.id, row.version, &change, &[], None)
                .await
            {
                Ok(_) => Ok("MAD request version stored"),
                Err(crate::store::StoreError::Conflict { .. }) => Err(FederationError::Invalid(
                    "the request changed while projecting; retry".to_owned(),
                )),
                Err(e) => Err(e.into()),
            }
        }
        None => {
            let agent_id = if side == Side::Origin {
                fed.store()
                    .profile_agent(&doc.agent.reference)
                    .await
                    .map_err(FederationError::from)?
            } else {
                None
            };
            let new = NewMad {
                id: base.row.id,
                object_id: doc.id.to_string(),
                creator: entry.actor_id.clone(),
                our_side: side_str(side).to_owned(),
                partner,
                agent_id,
                state: doc.state.as_str().to_owned(),
                version,
                document,
            };
            match fed.store().insert_mad_request(&new, None, None).await {
                Ok(_) => Ok("MAD request received"),
                Err(crate::store::StoreError::Conflict { .. }) => Err(FederationError::Invalid(
                    "the request was stored concurrently; retry".to_owned(),
                )),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Whether history entry `e` (a transition of one of our parties) was fired by one of our
/// activities: `e.activity` is in our outbox, about this request, naming the transition.
async fn fired_by_us(fed: &Federation, p: &Parsed, e: &MadHistoryEntry) -> Result<bool> {
    let Some(id) = &e.activity else {
        return Ok(false);
    };
    let Some(item) = fed.store().outbox_item(id.as_str()).await? else {
        return Ok(false);
    };
    let doc = &item.activity.document;
    let request = p.doc.id.as_str();
    let (transition, about) = match item.activity.activity_type.as_str() {
        "Accept" | "Reject" => (
            answer_transition(doc, &item.activity.activity_type),
            object_id(doc) == Some(request),
        ),
        "Offer" => (
            None,
            doc.get("object").and_then(|o| str_of(o, "inReplyTo")) == Some(request),
        ),
        "Add" => (
            Some(Transition::SignConvention),
            doc.get("target").and_then(Value::as_str) == Some(request),
        ),
        _ => (None, false),
    };
    let transition_ok = match item.activity.activity_type.as_str() {
        "Offer" => matches!(
            e.transition,
            Transition::CounterPropose | Transition::ReviseTerms
        ),
        _ => transition == Some(e.transition),
    };
    Ok(about && transition_ok)
}

/// The transition an `Accept` or `Reject` of a request names (`agree_terms` and `reject`
/// by default).
fn answer_transition(doc: &Value, kind: &str) -> Option<Transition> {
    match str_of(doc, "transition") {
        Some(t) => Transition::from_wire(t),
        None if kind == "Accept" => Some(Transition::AgreeTerms),
        None => Some(Transition::Reject),
    }
}

/// A transition fired by the other employer on a request we created.
async fn on_partner_transition(
    fed: &Federation,
    entry: &InboxEntry,
    row: MadRow,
    transition: Transition,
    requested: Option<Party>,
    step: Step,
    convention: Option<ConventionRow>,
) -> Projected {
    if entry.actor_id != row.partner {
        return Ok("ignored: not the other employer of this request");
    }
    if row.creator != fed.actor_id() {
        return Ok("ignored: transitions go to the request's creator");
    }
    let p = Parsed::new(row).map_err(retry)?;
    let already = p.doc.history.iter().any(|e| {
        e.activity
            .as_ref()
            .is_some_and(|a| a.as_str() == entry.activity_id)
    });
    if already {
        return Ok("transition already recorded");
    }
    if p.row.refusal.as_ref().and_then(|r| str_of(r, "activity"))
        == Some(entry.activity_id.as_str())
    {
        return Ok("transition already refused");
    }
    let partner = p.row.partner.clone();
    let party = match rules::party_for(transition, p.side.other(), requested) {
        Ok(party) => party,
        Err(_) => {
            let err = MadError::WrongParty {
                state: p.doc.state,
                transition,
                party: requested.unwrap_or(match p.side.other() {
                    Side::Origin => Party::OriginHr,
                    Side::Host => Party::HostHr,
                }),
                allowed: mad::rule(transition)
                    .map(|r| {
                        r.parties
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
            };
            refuse(fed, Some(&p.row), &partner, &entry.activity_id, &err)
                .await
                .map_err(retry)?;
            return Ok("refused: the other employer may not fire it");
        }
    };
    match record(
        fed,
        &p,
        transition,
        party,
        &step,
        Some(&entry.activity_id),
        Vec::new(),
        convention,
        None,
        today().next_day().unwrap_or_else(today),
    )
    .await
    {
        Ok(_) => Ok("transition of the other employer recorded"),
        Err(MobilityError::Refused(err)) => {
            refuse(fed, Some(&p.row), &partner, &entry.activity_id, &err)
                .await
                .map_err(retry)?;
            Ok("refused: the state machine does not allow it")
        }
        Err(e) => Err(retry(e)),
    }
}

fn step_from(doc: &Value) -> Step {
    Step {
        terms: doc
            .get("terms")
            .and_then(|t| serde_json::from_value(t.clone()).ok()),
        date: str_of(doc, "date").and_then(|d| {
            Date::parse(d, &time::format_description::well_known::Iso8601::DATE).ok()
        }),
        reference: str_of(doc, "reference").map(str::to_owned),
        fault_agreed: doc.get("faultAgreed").and_then(Value::as_bool) == Some(true),
        identity: doc
            .get("agentIdentity")
            .and_then(|i| serde_json::from_value(i.clone()).ok()),
    }
}

/// `Accept` or `Reject` about MAD: a transition of the other employer on a request we
/// created, or the refusal of one of our activities. `None` when it is about something
/// else (a partnership).
pub async fn on_answer(
    fed: &Federation,
    entry: &InboxEntry,
) -> std::result::Result<Option<&'static str>, FederationError> {
    let doc = &entry.document;
    let Some(object) = object_id(doc) else {
        return Ok(None);
    };
    if let Some(row) = fed.store().mad_request_by_object(object).await? {
        let Some(transition) = answer_transition(doc, &entry.activity_type) else {
            let p = Parsed::new(row.clone()).map_err(retry)?;
            let err = MadError::WrongState {
                state: p.doc.state,
                transition: Transition::AgreeTerms,
                allowed: format!("unknown transition {:?}", str_of(doc, "transition")),
            };
            refuse(fed, Some(&row), &row.partner, &entry.activity_id, &err)
                .await
                .map_err(retry)?;
            return Ok(Some("refused: unknown transition"));
        };
        let requested = str_of(doc, "party").and_then(Party::from_wire);
        let step = step_from(doc);
        return on_partner_transition(fed, entry, row, transition, requested, step, None)
            .await
            .map(Some);
    }
    // A refusal of one of our activities.
    let is_refusal = entry.activity_type == "Reject"
        && doc.get("problem").and_then(|p| str_of(p, "code")) == Some("mad_transition_refused");
    if !is_refusal {
        return Ok(None);
    }
    let Some(item) = fed.store().outbox_item(object).await? else {
        return Ok(Some("ignored: refusal of an unknown activity"));
    };
    let ours = &item.activity.document;
    let request = match item.activity.activity_type.as_str() {
        "Accept" | "Reject" => object_id(ours).map(str::to_owned),
        "Offer" | "Update" | "Create" => ours.get("object").and_then(|o| {
            str_of(o, "inReplyTo")
                .or_else(|| str_of(o, "madRequest"))
                .or_else(|| str_of(o, "id"))
                .map(str::to_owned)
        }),
        "Add" => ours
            .get("target")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    let Some(request) = request else {
        return Ok(Some("ignored: refusal of an activity not about MAD"));
    };
    let Some(row) = fed.store().mad_request_by_object(&request).await? else {
        return Ok(Some("ignored: refusal about an unknown request"));
    };
    if row.partner != entry.actor_id {
        return Ok(Some(
            "ignored: refusal by a node that is not the other employer",
        ));
    }
    let problem = doc.get("problem").cloned().unwrap_or(Value::Null);
    let pending_refused = row.pending.as_ref().and_then(|v| str_of(v, "activity")) == Some(object);
    let change = MadChange {
        refusal: Some(Some(json!({
            "by": "partner",
            "activity": object,
            "transition": problem.get("transition"),
            "state": problem.get("state"),
            "detail": problem.get("detailFr").or_else(|| problem.get("detail")),
            "at": now_seconds().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        }))),
        pending: pending_refused.then_some(None),
        ..Default::default()
    };
    fed.store()
        .update_mad_request(row.id, row.version, &change, &[], None)
        .await
        .map_err(FederationError::from)?;
    Ok(Some("refusal by the other employer recorded"))
}

/// `Offer` of a request: version 1 of a new request, or a counter-proposal (revision) of
/// the other employer on a request we created (`inReplyTo`).
pub async fn on_offer(fed: &Federation, entry: &InboxEntry, object: &Value) -> Projected {
    let Some(reply_to) = str_of(object, "inReplyTo") else {
        return on_version(fed, entry, object).await;
    };
    let Some(row) = fed.store().mad_request_by_object(reply_to).await? else {
        return Ok("ignored: counter-proposal on an unknown request");
    };
    let Ok(proposal) = serde_json::from_value::<MadRequest>(object.clone()) else {
        return Ok("ignored: unreadable counter-proposal");
    };
    let transition = match row.state.as_str() {
        "negotiating" => Transition::ReviseTerms,
        _ => Transition::CounterPropose,
    };
    let requested = str_of(&entry.document, "party").and_then(Party::from_wire);
    let step = Step {
        terms: Some(proposal.terms),
        ..Default::default()
    };
    on_partner_transition(fed, entry, row, transition, requested, step, None).await
}

/// `Create{Convention}`: the origin's signed convention (or avenant), at the host.
pub async fn on_convention(fed: &Federation, entry: &InboxEntry, object: &Value) -> Projected {
    let Ok(convention) = serde_json::from_value::<Convention>(object.clone()) else {
        return Ok("ignored: unreadable convention");
    };
    let Some(row) = fed
        .store()
        .mad_request_by_object(convention.mad_request.as_str())
        .await?
    else {
        return Ok("ignored: convention of an unknown request");
    };
    if entry.actor_id != row.partner || convention.origin.as_str() != row.partner {
        return Ok("ignored: a convention is sent by the origin");
    }
    let signed_by_origin = signed_by(entry, convention.origin.as_str());
    if !signed_by_origin {
        return Ok("ignored: the convention does not carry the origin's proof");
    }
    let change = MadChange {
        convention: Some(ConventionRow {
            convention_id: convention.id.to_string(),
            amendment: i64::from(convention.amendment.unwrap_or(0)),
            document: object.clone(),
            draft_sha256: None,
            signed_by_origin: true,
            signed_by_host: false,
        }),
        ..Default::default()
    };
    fed.store()
        .update_mad_request(row.id, row.version, &change, &[], None)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict { .. } => {
                FederationError::Invalid("the request changed; retry".to_owned())
            }
            e => e.into(),
        })?;
    Ok("convention signed by the origin received")
}

/// Whether a verified proof of `actor` is among the signers of the stored activity.
fn signed_by(entry: &InboxEntry, actor: &str) -> bool {
    entry
        .signers
        .iter()
        .any(|s| s.split('#').next() == Some(actor))
}

/// `Add{Convention}` with the host's signature: the convention signed by both employers,
/// at the origin; when it completes the set in state `assembly_informed` on a request we
/// created, `sign_convention` is recorded.
pub async fn on_add(fed: &Federation, entry: &InboxEntry, object: &Value) -> Projected {
    let Ok(convention) = serde_json::from_value::<Convention>(object.clone()) else {
        return Ok("ignored: unreadable convention");
    };
    let Some(row) = fed
        .store()
        .mad_request_by_object(convention.mad_request.as_str())
        .await?
    else {
        return Ok("ignored: signature of an unknown request");
    };
    if entry.actor_id != row.partner {
        return Ok("ignored: not the other employer");
    }
    if !(signed_by(entry, convention.origin.as_str()) && signed_by(entry, convention.host.as_str()))
    {
        return Ok("ignored: the convention does not carry both employers' proofs");
    }
    let p = Parsed::new(row.clone()).map_err(retry)?;
    let k = convention.amendment.unwrap_or(0);
    // The content must be the one we hold (we signed it, or we received it signed).
    if let Some(held) = held_convention(fed, &p, k).await.map_err(retry)?
        && without_proof(&held.document) != without_proof(object)
    {
        let err = MadError::Precondition {
            state: p.doc.state,
            transition: Transition::SignConvention,
            what: "the convention needs the signatures of both employers",
        };
        refuse(fed, Some(&row), &row.partner, &entry.activity_id, &err)
            .await
            .map_err(retry)?;
        return Ok("refused: the signed convention differs from ours");
    }
    let both = ConventionRow {
        convention_id: convention.id.to_string(),
        amendment: i64::from(k),
        document: object.clone(),
        draft_sha256: None,
        signed_by_origin: true,
        signed_by_host: true,
    };
    if p.doc.state == MadState::AssemblyInformed && row.creator == fed.actor_id() {
        let requested = Some(if p.side == Side::Origin {
            Party::HostHr
        } else {
            Party::OriginAuthority
        });
        return on_partner_transition(
            fed,
            entry,
            row,
            Transition::SignConvention,
            requested,
            Step::default(),
            Some(both),
        )
        .await;
    }
    let change = MadChange {
        convention: Some(both),
        ..Default::default()
    };
    fed.store()
        .update_mad_request(row.id, row.version, &change, &[], None)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict { .. } => {
                FederationError::Invalid("the request changed; retry".to_owned())
            }
            e => e.into(),
        })?;
    Ok("convention signed by both employers received")
}

/// Transitions a node on `side` may fire now (for the HR view).
pub fn open_actions(p: &Parsed) -> Vec<rules::Action> {
    if p.row.pending.is_some() {
        return Vec::new();
    }
    rules::actions(p.doc.state, p.side)
        .into_iter()
        .filter(|a| a.transition != Transition::Send || p.doc.state == MadState::Draft)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::domain::deadlines::DeadlineKind;
    use time::macros::date;

    /// The specification's MAD request, in `state`, full time, with the mutation facts.
    fn request(state: &str, functions: Option<bool>, vacant: Option<bool>) -> MadRequest {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../spec/examples/mad-request.json"
        );
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["state"] = json!(state);
        v["terms"]["quotitePct"] = json!(100);
        v["terms"]["functionsOfGrade"] = json!(functions);
        v["terms"]["hostVacantPost"] = json!(vacant);
        let map = v["terms"].as_object_mut().unwrap();
        map.retain(|_, x| !x.is_null());
        serde_json::from_value(v).unwrap()
    }

    fn kinds(d: &[Deadline]) -> Vec<DeadlineKind> {
        d.iter().map(|d| d.kind).collect()
    }

    #[test]
    fn mutation_prompt_only_when_every_condition_holds() {
        let doc = request("active", Some(true), Some(true));
        let d = deadlines_of(&doc, true);
        let due = d
            .iter()
            .find(|d| d.kind == DeadlineKind::MutationPromptDue)
            .expect("the prompt is due");
        // Three years after the first start (2027-03-01).
        assert_eq!(due.date, date!(2030 - 03 - 01));
        assert!(kinds(&d).contains(&DeadlineKind::MutationPromptReminder));
        // A host that is not a collectivité territoriale, no vacant post, functions not of
        // the grade, the facts not declared, or part time: no prompt.
        for (doc, host) in [
            (request("active", Some(true), Some(true)), false),
            (request("active", Some(true), Some(false)), true),
            (request("active", Some(false), Some(true)), true),
            (request("active", None, None), true),
        ] {
            assert!(!kinds(&deadlines_of(&doc, host)).contains(&DeadlineKind::MutationPromptDue));
        }
        let mut part_time = request("active", Some(true), Some(true));
        part_time.terms.quotite_pct = 80;
        assert!(!kinds(&deadlines_of(&part_time, true)).contains(&DeadlineKind::MutationPromptDue));
        // Not running yet: nothing to prompt.
        let proposed = request("proposed", Some(true), Some(true));
        assert!(!kinds(&deadlines_of(&proposed, true)).contains(&DeadlineKind::MutationPromptDue));
    }

    #[test]
    fn renewals_keep_the_first_start() {
        let mut doc = request("active", Some(true), Some(true));
        let entry: MadHistoryEntry = serde_json::from_value(json!({
            "version": 9,
            "transition": "start",
            "party": "system",
            "from": "arrete_issued",
            "to": "active",
            "at": "2027-03-01T06:00:00Z",
        }))
        .unwrap();
        doc.history.push(entry);
        // Renewed: the terms now start a year later.
        doc.terms.start_date = date!(2028 - 03 - 01);
        doc.terms.end_date = date!(2029 - 02 - 28);
        assert_eq!(first_start(&doc), date!(2027 - 03 - 01));
        let due = deadlines_of(&doc, true)
            .into_iter()
            .find(|d| d.kind == DeadlineKind::MutationPromptDue)
            .unwrap();
        assert_eq!(due.date, date!(2030 - 03 - 01));
    }
}
