//! *Mises à disposition* between two nodes: requests, their transitions (with the legal
//! checks of `protocol::mad`), the convention and its two signatures, deadlines, and the
//! membership facts the reimbursement waiver depends on. Every response carries what a
//! page needs: French labels, the actions open now, the history, the deadlines.
//!
//! Reading is open to every role; creating and firing transitions is for `rh`; the
//! node's membership (EPCI, attachment) is for `admin`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use passerelle_protocol::mad::{MadState, Party, Side, Transition};
use passerelle_protocol::vocab::{AgentStatut, Convention, MadRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::domain::convention as conv;
use crate::federation::error::ProtocolError;
use crate::http::error::{AppError, AppPath, AppQuery, FieldError, Problem};
use crate::mobility::mad::{self as service, Fire, Fired, NewRequest, Parsed};
use crate::mobility::{ATTACHED_SETTING, EPCI_SETTING, MobilityError};
use crate::state::AppState;
use crate::store::{ConventionRow, MadFilter, Role};

impl From<MobilityError> for AppError {
    fn from(e: MobilityError) -> Self {
        match e {
            MobilityError::Refused(err) => AppError::Protocol(ProtocolError::new(
                409,
                "mad_transition_refused",
                err.detail_fr(),
            )),
            MobilityError::Invalid { detail, errors } => AppError::Validation {
                detail,
                errors: errors
                    .into_iter()
                    .map(|(field, message)| FieldError { field, message })
                    .collect(),
            },
            MobilityError::Conflict(m) => AppError::Conflict(m),
            MobilityError::NotFound(m) => AppError::NotFound(m),
            MobilityError::Store(s) => s.into(),
            MobilityError::Federation(f) => f.into(),
            MobilityError::Build(m) => AppError::Internal(m),
        }
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One step of a request's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// Version it produced.
    pub version: u64,
    /// Transition (wire value).
    pub transition: String,
    /// Transition, in French.
    pub transition_label: String,
    /// Who fired it (wire value).
    pub party: String,
    /// Who fired it, in French.
    pub party_label: String,
    /// State left.
    pub from: String,
    /// State reached.
    pub to: String,
    /// State reached, in French.
    pub to_label: String,
    /// When it was recorded (RFC 3339).
    pub at: String,
    /// Date of the act.
    #[schema(value_type = Option<String>, format = Date)]
    pub date: Option<String>,
    /// Reference of the act.
    pub reference: Option<String>,
}

/// An action open to this node now.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionView {
    /// Transition to fire (wire value, for `POST …/transitions`).
    pub transition: String,
    /// The action, in French.
    pub label: String,
    /// The party this node fires it as.
    pub party: String,
    /// The party, in French.
    pub party_label: String,
    /// State it reaches.
    pub to: String,
    /// State it reaches, in French.
    pub to_label: String,
    /// Whether it carries new terms (`terms` required).
    pub needs_terms: bool,
}

/// A deadline of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadlineView {
    /// `renewal_reminder`, `term`, `end_of_notice`, `mutation_prompt_reminder`,
    /// `mutation_prompt_due`.
    pub kind: String,
    /// The day it falls due.
    #[schema(value_type = String, format = Date)]
    pub date: String,
    /// Days left (negative once passed).
    pub days_left: i64,
    /// Whether it is due today.
    pub due: bool,
    /// In French.
    pub label: String,
}

/// A convention (or avenant) of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConventionView {
    /// 0 for the convention, n for the n-th avenant.
    pub amendment: i64,
    /// Its id.
    pub convention_id: String,
    /// Carries the origin's proof.
    pub signed_by_origin: bool,
    /// Carries the host's proof.
    pub signed_by_host: bool,
    /// The agent agreed in writing (date, RFC 3339).
    pub agent_agreed_at: Option<String>,
    /// The proofs present, for display.
    pub signatures: Vec<SignatureView>,
    /// The document (signed `Convention`).
    #[schema(value_type = Object)]
    pub document: Value,
}

/// A proof on a convention.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignatureView {
    /// Who signed.
    pub signer: String,
    /// Role of the signer.
    pub role: String,
    /// When, in French.
    pub when: String,
    /// Key id.
    pub key_id: String,
}

/// The agent concerned.
#[derive(Debug, Serialize, ToSchema)]
pub struct MadAgentView {
    /// The local agent (origin only).
    pub local_id: Option<Uuid>,
    /// The local agent's name (origin only).
    pub local_name: Option<String>,
    /// The reference exchanged with the other employer.
    pub reference: String,
    /// Statut (wire value).
    pub statut: String,
    /// Identity disclosed to the host once the agent agreed.
    #[schema(value_type = Option<Object>)]
    pub disclosed: Option<Value>,
}

/// A MAD request, with everything a page shows.
#[derive(Debug, Serialize, ToSchema)]
pub struct MadView {
    /// Local id.
    pub id: Uuid,
    /// The request's id (URL).
    pub object_id: String,
    /// This node's role: `origin` or `host`.
    pub our_side: String,
    /// The other employer's actor id.
    pub partner: String,
    /// The other employer's name.
    pub partner_name: String,
    /// Whether this node created it (and records its versions).
    pub we_created: bool,
    /// State (wire value).
    pub state: String,
    /// State, in French.
    pub state_label: String,
    /// Whether no transition leaves the state.
    pub is_final: bool,
    /// Version.
    pub version: i64,
    /// Agent.
    pub agent: MadAgentView,
    /// The posting answered.
    pub posting: Option<String>,
    /// The terms on the table (protocol wire format).
    #[schema(value_type = Object)]
    pub terms: Value,
    /// Terms of an avenant being agreed.
    #[schema(value_type = Option<Object>)]
    pub amendment_terms: Option<Value>,
    /// Steps, oldest first.
    pub history: Vec<HistoryView>,
    /// Actions open to this node now (legal checks run when fired).
    pub actions: Vec<ActionView>,
    /// A transition sent to the other employer, waiting to be recorded.
    #[schema(value_type = Option<Object>)]
    pub pending: Option<Value>,
    /// The last refusal, by this node (`by: us`) or by the other employer (`by: partner`).
    #[schema(value_type = Option<Object>)]
    pub refusal: Option<Value>,
    /// Deadlines, soonest first.
    pub deadlines: Vec<DeadlineView>,
    /// The convention and its avenants.
    pub conventions: Vec<ConventionView>,
    /// The signed `MadRequest` document.
    #[schema(value_type = Object)]
    pub document: Value,
    /// Creation.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

fn convention_view(c: ConventionRow) -> ConventionView {
    let parsed: Option<Convention> = serde_json::from_value(c.document.clone()).ok();
    ConventionView {
        amendment: c.amendment,
        convention_id: c.convention_id,
        signed_by_origin: c.signed_by_origin,
        signed_by_host: c.signed_by_host,
        agent_agreed_at: parsed
            .as_ref()
            .and_then(|p| p.agent_agreement.as_ref())
            .map(|a| rfc3339(a.agreed_at)),
        signatures: parsed
            .as_ref()
            .map(conv::signature_lines)
            .unwrap_or_default()
            .into_iter()
            .map(|s| SignatureView {
                signer: s.signer,
                role: s.role,
                when: s.when,
                key_id: s.key_id,
            })
            .collect(),
        document: c.document,
    }
}

fn history_view(doc: &MadRequest) -> Vec<HistoryView> {
    doc.history
        .iter()
        .map(|e| HistoryView {
            version: e.version,
            transition: e.transition.as_str().to_owned(),
            transition_label: e.transition.label_fr().to_owned(),
            party: e.party.as_str().to_owned(),
            party_label: e.party.label_fr().to_owned(),
            from: e.from.as_str().to_owned(),
            to: e.to.as_str().to_owned(),
            to_label: e.to.label_fr().to_owned(),
            at: rfc3339(e.at),
            date: e.date.map(|d| d.to_string()),
            reference: e.reference.clone(),
        })
        .collect()
}

pub(crate) async fn view(state: &AppState, p: Parsed) -> Result<MadView, AppError> {
    let store = state.store();
    let today = OffsetDateTime::now_utc().date();
    let partner_name = store
        .partner_by_actor(&p.row.partner)
        .await?
        .map_or_else(|| p.row.partner.clone(), |x| x.name);
    let local_name = match p.row.agent_id {
        Some(id) => store.agent(id).await.ok().map(|a| a.display_name),
        None => None,
    };
    let conventions = store
        .mad_conventions(p.row.id)
        .await?
        .into_iter()
        .map(convention_view)
        .collect();
    let actions = service::open_actions(&p)
        .into_iter()
        .map(|a| ActionView {
            transition: a.transition.as_str().to_owned(),
            label: a.transition.label_fr().to_owned(),
            party: a.party.as_str().to_owned(),
            party_label: a.party.label_fr().to_owned(),
            to: a.to.as_str().to_owned(),
            to_label: a.to.label_fr().to_owned(),
            needs_terms: crate::domain::mad::carries_terms(a.transition),
        })
        .collect();
    let host_is_collectivite = service::host_is_collectivite(state.federation(), &p).await;
    let deadlines = service::deadlines_of(&p.doc, host_is_collectivite)
        .into_iter()
        .map(|d| DeadlineView {
            kind: deadline_kind(d.kind).to_owned(),
            date: d.date.to_string(),
            days_left: d.days_left(today),
            due: d.is_due(today),
            label: d.label_fr,
        })
        .collect();
    Ok(MadView {
        id: p.row.id,
        object_id: p.row.object_id.clone(),
        our_side: p.row.our_side.clone(),
        partner: p.row.partner.clone(),
        partner_name,
        we_created: p.row.creator == state.actor_id(),
        state: p.doc.state.as_str().to_owned(),
        state_label: p.doc.state.label_fr().to_owned(),
        is_final: p.doc.state.is_final(),
        version: p.row.version,
        agent: MadAgentView {
            local_id: p.row.agent_id,
            local_name,
            reference: p.doc.agent.reference.clone(),
            statut: serde_json::to_value(p.doc.agent.statut)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            disclosed: p
                .doc
                .agent
                .disclosed
                .as_ref()
                .and_then(|d| serde_json::to_value(d).ok()),
        },
        posting: p.doc.posting.as_ref().map(|x| x.to_string()),
        terms: serde_json::to_value(&p.doc.terms).unwrap_or_default(),
        amendment_terms: p
            .doc
            .amendment_terms
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok()),
        history: history_view(&p.doc),
        actions,
        pending: p.row.pending.clone(),
        refusal: p.row.refusal.clone(),
        deadlines,
        conventions,
        document: p.row.document.clone(),
        created_at: rfc3339(p.row.created_at),
        updated_at: rfc3339(p.row.updated_at),
    })
}

fn deadline_kind(k: crate::domain::deadlines::DeadlineKind) -> &'static str {
    use crate::domain::deadlines::DeadlineKind as K;
    match k {
        K::RenewalReminder => "renewal_reminder",
        K::Term => "term",
        K::EndOfNotice => "end_of_notice",
        K::MutationPromptReminder => "mutation_prompt_reminder",
        K::MutationPromptDue => "mutation_prompt_due",
        K::PostingExpiry => "posting_expiry",
    }
}

/// A request in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct MadSummary {
    /// Local id.
    pub id: Uuid,
    /// The request's id (URL), the same at both employers.
    pub object_id: String,
    /// This node's role.
    pub our_side: String,
    /// The other employer.
    pub partner: String,
    /// State (wire value).
    pub state: String,
    /// State, in French.
    pub state_label: String,
    /// Version.
    pub version: i64,
    /// Whether this node created it.
    pub we_created: bool,
    /// The agent's reference.
    pub agent_reference: String,
    /// First day of the period.
    #[schema(value_type = String, format = Date)]
    pub start_date: String,
    /// Last day of the period.
    #[schema(value_type = String, format = Date)]
    pub end_date: String,
    /// Quotité, percent.
    pub quotite_pct: u32,
    /// A transition of ours waits for the other employer.
    pub pending: bool,
    /// Last change.
    pub updated_at: String,
}

/// Filter of the request list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MadQuery {
    /// Only requests in this state (wire value).
    pub state: Option<String>,
    /// Only requests of this local agent.
    pub agent_id: Option<Uuid>,
}

/// # `GET /api/v1/mad-requests`
/// MAD requests this node is a party to, most recently changed first.
#[utoipa::path(get, path = "/api/v1/mad-requests", tag = "mad", params(MadQuery),
    responses((status = 200, body = Vec<MadSummary>), (status = 401, body = Problem)))]
pub async fn list_mad_requests(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<MadQuery>,
) -> Result<Json<Vec<MadSummary>>, AppError> {
    p.require(Role::Lecteur)?;
    let filter = MadFilter {
        states: q.state.into_iter().collect(),
        creator: None,
        agent_id: q.agent_id,
    };
    let me = state.actor_id();
    let mut out = Vec::new();
    for row in state.store().mad_requests(&filter).await? {
        let Ok(parsed) = Parsed::new(row) else {
            continue;
        };
        out.push(MadSummary {
            id: parsed.row.id,
            object_id: parsed.row.object_id.clone(),
            our_side: parsed.row.our_side.clone(),
            partner: parsed.row.partner.clone(),
            state: parsed.doc.state.as_str().to_owned(),
            state_label: parsed.doc.state.label_fr().to_owned(),
            version: parsed.row.version,
            we_created: parsed.row.creator == me,
            agent_reference: parsed.doc.agent.reference.clone(),
            start_date: parsed.doc.terms.start_date.to_string(),
            end_date: parsed.doc.terms.end_date.to_string(),
            quotite_pct: parsed.doc.terms.quotite_pct,
            pending: parsed.row.pending.is_some(),
            updated_at: rfc3339(parsed.row.updated_at),
        });
    }
    Ok(Json(out))
}

/// A request to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MadCreateBody {
    /// The other employer: a partner's actor id.
    pub partner: String,
    /// This node's role: `origin` (it employs the agent) or `host`.
    pub our_side: String,
    /// The local agent (origin): its fiche must give `data.statut`.
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// The agent's reference (host): the agent's profile id or the reference its
    /// employer gave.
    #[serde(default)]
    pub agent_ref: Option<String>,
    /// The agent's statut (host), e.g. `fonctionnaire_titulaire`.
    #[serde(default)]
    pub agent_statut: Option<String>,
    /// The posting answered (e.g. a `mad_offer`).
    #[serde(default)]
    pub posting: Option<String>,
    /// The proposed terms, in the protocol's wire format (`activities`, `quotitePct`,
    /// `startDate`, `endDate`, `reimbursement`…).
    #[schema(value_type = Object)]
    pub terms: Value,
    /// Send it at once (`send`), instead of keeping a draft.
    #[serde(default)]
    pub send: bool,
}

fn parse_side(s: &str) -> Result<Side, AppError> {
    match s {
        "origin" => Ok(Side::Origin),
        "host" => Ok(Side::Host),
        other => Err(AppError::Validation {
            detail: "rôle invalide".into(),
            errors: vec![FieldError {
                field: "our_side".into(),
                message: format!(
                    "{other:?} n'est pas un rôle : « origin » (employeur de l'agent) ou « host » (organisme d'accueil)"
                ),
            }],
        }),
    }
}

fn parse_statut(s: &str) -> Result<AgentStatut, AppError> {
    serde_json::from_value(Value::String(s.to_owned())).map_err(|_| AppError::Validation {
        detail: "situation statutaire invalide".into(),
        errors: vec![FieldError {
            field: "agent_statut".into(),
            message: format!(
                "{s:?} n'est pas une situation statutaire : fonctionnaire_titulaire, fonctionnaire_stagiaire, contractuel_cdi, contractuel_cdd, contractuel_projet, apprenti, autre"
            ),
        }],
    })
}

async fn respond(state: &AppState, fired: Fired) -> Result<(StatusCode, Json<MadView>), AppError> {
    let status = match fired {
        Fired::Recorded(_) => StatusCode::OK,
        Fired::Sent(_) => StatusCode::ACCEPTED,
    };
    let row = match fired {
        Fired::Recorded(r) | Fired::Sent(r) => r,
    };
    Ok((status, Json(view(state, Parsed::new(row)?).await?)))
}

/// # `POST /api/v1/mad-requests`
/// Creates a MAD request as a draft (rh), or sends it at once with `send: true`: the
/// other employer receives an `Offer` (state `proposed`). Eligibility (statut) and the
/// 36-month cap are checked when it is sent.
#[utoipa::path(post, path = "/api/v1/mad-requests", tag = "mad", request_body = MadCreateBody,
    responses((status = 201, body = MadView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_mad_request(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<MadCreateBody>,
) -> Result<(StatusCode, Json<MadView>), AppError> {
    p.require(Role::Rh)?;
    let side = parse_side(&body.our_side)?;
    let statut = body.agent_statut.as_deref().map(parse_statut).transpose()?;
    let fed = state.federation();
    let row = service::create(
        fed,
        &p,
        NewRequest {
            partner: body.partner,
            side,
            agent_id: body.agent_id,
            agent_ref: body.agent_ref,
            agent_statut: statut,
            posting: body.posting,
            terms: body.terms,
        },
    )
    .await?;
    let row = if body.send {
        let fire = Fire {
            transition: Some(Transition::Send),
            ..Default::default()
        };
        service::fire(fed, &p, row.id, fire).await?.row().clone()
    } else {
        row
    };
    Ok((
        StatusCode::CREATED,
        Json(view(&state, Parsed::new(row)?).await?),
    ))
}

/// # `GET /api/v1/mad-requests/{id}`
/// One request: state, terms, history, open actions, pending transition, last refusal,
/// deadlines and conventions.
#[utoipa::path(get, path = "/api/v1/mad-requests/{id}", tag = "mad", params(("id" = Uuid, Path, description = "Request id")),
    responses((status = 200, body = MadView), (status = 404, body = Problem)))]
pub async fn get_mad_request(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<MadView>, AppError> {
    p.require(Role::Lecteur)?;
    let parsed = service::load(state.federation(), id).await?;
    Ok(Json(view(&state, parsed).await?))
}

/// New terms of a draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MadDraftBody {
    /// The terms (protocol wire format).
    #[schema(value_type = Object)]
    pub terms: Value,
    /// The posting answered.
    #[serde(default)]
    pub posting: Option<String>,
}

/// # `PUT /api/v1/mad-requests/{id}`
/// Replaces the terms of a draft (rh). Once sent, terms change only by a transition
/// (counter-proposal, revision, renewal, avenant).
#[utoipa::path(put, path = "/api/v1/mad-requests/{id}", tag = "mad", params(("id" = Uuid, Path, description = "Request id")),
    request_body = MadDraftBody,
    responses((status = 200, body = MadView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_mad_request(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<MadDraftBody>,
) -> Result<Json<MadView>, AppError> {
    p.require(Role::Rh)?;
    let row = service::update_draft(state.federation(), &p, id, body.terms, body.posting).await?;
    Ok(Json(view(&state, Parsed::new(row)?).await?))
}

/// A transition to fire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The transition (wire value: `agree_terms`, `send_to_agent`, `agent_agrees`,
    /// `inform_assembly`, `issue_arrete`, `request_early_end`, `renew`, `reintegrate`,
    /// `close`, `withdraw`…; see `actions` of the request).
    pub transition: String,
    /// The party this node fires it as, when several are possible (e.g. `agent` for an
    /// early end the agent asked for).
    #[serde(default)]
    pub party: Option<String>,
    /// New terms (counter-proposal, revision, renewal, avenant), protocol wire format.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub terms: Option<Value>,
    /// Date of the act (séance of the assembly, arrêté, request of an early end).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub date: Option<String>,
    /// Reference of the act (délibération, arrêté number, letter).
    #[serde(default)]
    pub reference: Option<String>,
    /// For `end_for_fault`: origin and host agree that a disciplinary fault ends the MAD
    /// without notice.
    #[serde(default)]
    pub fault_agreed: bool,
}

fn invalid(field: &str, message: String) -> AppError {
    AppError::Validation {
        detail: message.clone(),
        errors: vec![FieldError {
            field: field.into(),
            message,
        }],
    }
}

/// # `POST /api/v1/mad-requests/{id}/transitions`
/// Fires a transition (rh). The state machine runs first: a transition the state, the
/// party or the law does not allow is refused with 409 `mad_transition_refused`, whose
/// detail names the state, the action, who may fire it and the legal rule. On a request
/// this node created, the transition is recorded and sent (200); on the other
/// employer's, it is sent to it and pending until its new version comes back (202).
#[utoipa::path(post, path = "/api/v1/mad-requests/{id}/transitions", tag = "mad", params(("id" = Uuid, Path, description = "Request id")),
    request_body = TransitionBody,
    responses((status = 200, body = MadView), (status = 202, body = MadView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn fire_transition(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<TransitionBody>,
) -> Result<(StatusCode, Json<MadView>), AppError> {
    p.require(Role::Rh)?;
    let transition = Transition::from_wire(&body.transition).ok_or_else(|| {
        invalid(
            "transition",
            format!(
                "{:?} n'est pas une action de mise à disposition ; actions : {}",
                body.transition,
                Transition::ALL
                    .iter()
                    .map(|t| t.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let party = match body.party.as_deref() {
        None => None,
        Some(s) => Some(Party::from_wire(s).ok_or_else(|| {
            invalid(
                "party",
                format!("{s:?} n'est pas une partie : origin_hr, host_hr, agent, origin_authority"),
            )
        })?),
    };
    let date = match body.date.as_deref() {
        None => None,
        Some(s) => Some(
            Date::parse(s, &time::format_description::well_known::Iso8601::DATE)
                .map_err(|_| invalid("date", format!("{s:?} n'est pas une date AAAA-MM-JJ")))?,
        ),
    };
    let fire = Fire {
        transition: Some(transition),
        party,
        terms: body.terms,
        date,
        reference: body.reference,
        fault_agreed: body.fault_agreed,
    };
    let fired = service::fire(state.federation(), &p, id, fire).await?;
    respond(&state, fired).await
}

/// The local agent of a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MadAgentBody {
    /// The local agent's id.
    pub agent_id: Uuid,
}

/// # `PUT /api/v1/mad-requests/{id}/agent`
/// Links the local agent to a request the host created (rh, at the origin).
#[utoipa::path(put, path = "/api/v1/mad-requests/{id}/agent", tag = "mad", params(("id" = Uuid, Path, description = "Request id")),
    request_body = MadAgentBody,
    responses((status = 200, body = MadView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_mad_agent(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<MadAgentBody>,
) -> Result<Json<MadView>, AppError> {
    p.require(Role::Rh)?;
    let row = service::link_agent(state.federation(), &p, id, body.agent_id).await?;
    Ok(Json(view(&state, Parsed::new(row)?).await?))
}

/// # `POST /api/v1/mad-requests/{id}/signature`
/// Signs the current convention (or avenant) for this employer (rh): the origin first —
/// it is sent to the host — then the host, whose signature completes the proof set
/// (`sign_convention` when the assembly was informed).
#[utoipa::path(post, path = "/api/v1/mad-requests/{id}/signature", tag = "mad", params(("id" = Uuid, Path, description = "Request id")),
    responses((status = 200, body = MadView), (status = 202, body = MadView), (status = 409, body = Problem)))]
pub async fn sign_convention(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<(StatusCode, Json<MadView>), AppError> {
    p.require(Role::Rh)?;
    let fired = service::sign(state.federation(), &p, id).await?;
    respond(&state, fired).await
}

/// # `POST /api/v1/mad-requests/{id}/amendment-agreement`
/// Records the agent's written agreement on the avenant being agreed (rh, at the
/// origin): the avenant is drafted with it, ready to sign.
#[utoipa::path(post, path = "/api/v1/mad-requests/{id}/amendment-agreement", tag = "mad", params(("id" = Uuid, Path, description = "Request id")),
    responses((status = 200, body = MadView), (status = 409, body = Problem)))]
pub async fn record_amendment_agreement(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<MadView>, AppError> {
    p.require(Role::Rh)?;
    let row = service::record_amendment_agreement(state.federation(), &p, id).await?;
    Ok(Json(view(&state, Parsed::new(row)?).await?))
}

async fn convention_of(
    state: &AppState,
    id: Uuid,
    amendment: i64,
) -> Result<ConventionRow, AppError> {
    state
        .store()
        .mad_conventions(id)
        .await?
        .into_iter()
        .find(|c| c.amendment == amendment)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "introuvable : convention n° {amendment} de la demande {id}"
            ))
        })
}

/// # `GET /api/v1/mad-requests/{id}/conventions/{amendment}`
/// A convention (0) or avenant (n) as a JSON document, with its proof set: the file
/// `passerelle verify` checks offline.
#[utoipa::path(get, path = "/api/v1/mad-requests/{id}/conventions/{amendment}", tag = "mad",
    params(("id" = Uuid, Path, description = "Request id"), ("amendment" = i64, Path, description = "0 for the convention, n for the n-th avenant")),
    responses((status = 200, description = "The signed Convention", content_type = "application/json", body = Object), (status = 404, body = Problem)))]
pub async fn get_convention(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath((id, amendment)): AppPath<(Uuid, i64)>,
) -> Result<Json<Value>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(convention_of(&state, id, amendment).await?.document))
}

/// # `GET /api/v1/mad-requests/{id}/conventions/{amendment}/html`
/// The printable page of a convention or avenant (French): parties, agent once agreed,
/// every clause, the agent's agreement and the signatures present.
#[utoipa::path(get, path = "/api/v1/mad-requests/{id}/conventions/{amendment}/html", tag = "mad",
    params(("id" = Uuid, Path, description = "Request id"), ("amendment" = i64, Path, description = "0 for the convention, n for the n-th avenant")),
    responses((status = 200, description = "Printable page", content_type = "text/html", body = String), (status = 404, body = Problem)))]
pub async fn get_convention_html(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath((id, amendment)): AppPath<(Uuid, i64)>,
) -> Result<Response, AppError> {
    p.require(Role::Lecteur)?;
    let row = convention_of(&state, id, amendment).await?;
    let convention =
        conv::from_json(row.document).map_err(|e| AppError::Internal(e.to_string()))?;
    let html = conv::render_html(&convention).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

/// A deadline of a request, in the list of all deadlines.
#[derive(Debug, Serialize, ToSchema)]
pub struct MadDeadlineView {
    /// The request.
    pub request: Uuid,
    /// Its state.
    pub state: String,
    /// The other employer.
    pub partner: String,
    /// The deadline.
    #[serde(flatten)]
    pub deadline: DeadlineView,
}

/// # `GET /api/v1/mad-deadlines`
/// Every running deadline of every request (renewal reminders, terms, ends of notice),
/// soonest first.
#[utoipa::path(get, path = "/api/v1/mad-deadlines", tag = "mad",
    responses((status = 200, body = Vec<MadDeadlineView>), (status = 401, body = Problem)))]
pub async fn list_deadlines(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<MadDeadlineView>>, AppError> {
    p.require(Role::Lecteur)?;
    let today = OffsetDateTime::now_utc().date();
    let mut out = Vec::new();
    for row in state.store().mad_requests(&MadFilter::default()).await? {
        let Ok(parsed) = Parsed::new(row) else {
            continue;
        };
        if parsed.doc.state.is_final() || parsed.doc.state == MadState::Draft {
            continue;
        }
        let host_is_collectivite = service::host_is_collectivite(state.federation(), &parsed).await;
        for d in service::deadlines_of(&parsed.doc, host_is_collectivite) {
            out.push((
                d.date,
                MadDeadlineView {
                    request: parsed.row.id,
                    state: parsed.doc.state.as_str().to_owned(),
                    partner: parsed.row.partner.clone(),
                    deadline: DeadlineView {
                        kind: deadline_kind(d.kind).to_owned(),
                        date: d.date.to_string(),
                        days_left: d.days_left(today),
                        due: d.is_due(today),
                        label: d.label_fr,
                    },
                },
            ));
        }
    }
    out.sort_by_key(|(d, v)| (*d, v.request));
    Ok(Json(out.into_iter().map(|(_, v)| v).collect()))
}

/// What the collectivité declares of its membership (it decides whether a reimbursement
/// waiver or the MAD of a CDI contractuel is lawful, CGFP L512-15; décret 88-145).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipBody {
    /// SIREN of the EPCI the collectivité is a member of.
    #[serde(default)]
    pub epci_siren: Option<String>,
    /// SIREN of the collectivité this body is attached to (e.g. a CCAS to its commune).
    #[serde(default)]
    pub attached_to_siren: Option<String>,
}

/// The membership this node declares (absent or empty settings are `None`).
///
/// # Errors
/// A store failure.
pub async fn read_membership(store: &crate::store::Store) -> Result<MembershipBody, AppError> {
    Ok(MembershipBody {
        epci_siren: store.setting(EPCI_SETTING).await?.filter(|s| !s.is_empty()),
        attached_to_siren: store
            .setting(ATTACHED_SETTING)
            .await?
            .filter(|s| !s.is_empty()),
    })
}

/// Checks a declared membership: every SIREN given must be valid (9 digits, Luhn key).
/// The API and the console's node page share it.
///
/// # Errors
/// [`AppError::Validation`] with one French message per invalid field.
pub fn check_membership(body: &MembershipBody) -> Result<(), AppError> {
    let mut errors = Vec::new();
    for (field, value) in [
        ("epci_siren", &body.epci_siren),
        ("attached_to_siren", &body.attached_to_siren),
    ] {
        if let Some(v) = value
            && v.parse::<passerelle_protocol::ids::Siren>().is_err()
        {
            errors.push(FieldError {
                field: field.into(),
                message: format!(
                    "« {v} » n'est pas un SIREN valide : 9 chiffres, dont le dernier est la clé de contrôle (formule de Luhn)"
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation {
            detail: "appartenance invalide".into(),
            errors,
        })
    }
}

/// Checks and records the membership (admin): each setting written with its audit
/// record `node.membership`. The API and the console's node page share it.
///
/// # Errors
/// As [`check_membership`]; a store failure.
pub async fn save_membership(
    store: &crate::store::Store,
    who: &crate::auth::Principal,
    body: &MembershipBody,
) -> Result<MembershipBody, AppError> {
    check_membership(body)?;
    for (name, value) in [
        (EPCI_SETTING, &body.epci_siren),
        (ATTACHED_SETTING, &body.attached_to_siren),
    ] {
        store
            .set_setting(
                name,
                value.as_deref().unwrap_or(""),
                &who.audit("node.membership", "node"),
            )
            .await?;
    }
    read_membership(store).await
}

/// # `GET /api/v1/node/membership`
/// The EPCI membership and attachment this node declares in its actor document.
#[utoipa::path(get, path = "/api/v1/node/membership", tag = "node",
    responses((status = 200, body = MembershipBody), (status = 401, body = Problem)))]
pub async fn get_membership(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<MembershipBody>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(read_membership(state.store()).await?))
}

/// # `PUT /api/v1/node/membership`
/// Declares the EPCI membership and attachment (admin); published in the actor's
/// `collectivite` block (`epciSiren`, `attachedToSiren`).
#[utoipa::path(put, path = "/api/v1/node/membership", tag = "node", request_body = MembershipBody,
    responses((status = 200, body = MembershipBody), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_membership(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<MembershipBody>,
) -> Result<Json<MembershipBody>, AppError> {
    p.require(Role::Admin)?;
    Ok(Json(save_membership(state.store(), &p, &body).await?))
}
