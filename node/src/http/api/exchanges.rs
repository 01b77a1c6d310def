//! Immersion swaps ("Vis mon job" with reciprocity) and training seats across nodes.
//!
//! Reading is open to every role; proposing, answering, reporting, registering and
//! setting quotas is for `rh`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::http::error::{AppError, AppPath, AppQuery, FieldError, Problem};
use crate::mobility::exchanges::{self as service, ProposeSwap, SwapAction};
use crate::state::AppState;
use crate::store::{RegistrationRow, Role, SwapRow};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
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

fn parse_date(field: &str, s: &str) -> Result<Date, AppError> {
    Date::parse(s, &time::format_description::well_known::Iso8601::DATE)
        .map_err(|_| invalid(field, format!("{s:?} n'est pas une date AAAA-MM-JJ")))
}

/// An immersion swap.
#[derive(Debug, Serialize, ToSchema)]
pub struct SwapView {
    /// Local id.
    pub id: Uuid,
    /// The swap's id (the proposer's `immersion_swap` posting).
    pub object_id: String,
    /// Whether this node proposed it.
    pub we_proposed: bool,
    /// The other node.
    pub partner: String,
    /// Our agent's profile.
    pub our_profile: String,
    /// Their agent's profile.
    pub their_profile: String,
    /// `proposed`, `agreed`, `declined`, `cancelled`, `done`.
    pub state: String,
    /// The day our agent spends at the other node.
    #[schema(value_type = Option<String>, format = Date)]
    pub our_visit_on: Option<String>,
    /// The day their agent spends here.
    #[schema(value_type = Option<String>, format = Date)]
    pub their_visit_on: Option<String>,
    /// Our agent's immersion: `planned`, `done`, `missed`.
    pub our_visit: String,
    /// Their agent's immersion (hosted here).
    pub their_visit: String,
    /// The signed swap posting.
    #[schema(value_type = Object)]
    pub document: Value,
    /// Last change.
    pub updated_at: String,
}

fn swap_view(state: &AppState, s: SwapRow) -> SwapView {
    SwapView {
        id: s.id,
        object_id: s.object_id,
        we_proposed: s.proposer == state.actor_id(),
        partner: s.partner,
        our_profile: s.our_profile,
        their_profile: s.their_profile,
        state: s.state,
        our_visit_on: s.our_visit_on,
        their_visit_on: s.their_visit_on,
        our_visit: s.our_visit,
        their_visit: s.their_visit,
        document: s.document,
        updated_at: rfc3339(s.updated_at),
    }
}

/// # `GET /api/v1/immersion-swaps`
/// Immersion swaps of our agents, most recently changed first.
#[utoipa::path(get, path = "/api/v1/immersion-swaps", tag = "exchanges",
    responses((status = 200, body = Vec<SwapView>), (status = 401, body = Problem)))]
pub async fn list_swaps(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<SwapView>>, AppError> {
    p.require(Role::Lecteur)?;
    let rows = state.store().swaps().await?;
    Ok(Json(
        rows.into_iter().map(|s| swap_view(&state, s)).collect(),
    ))
}

/// A possible swap.
#[derive(Debug, Serialize, ToSchema)]
pub struct SwapCandidateView {
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
    /// Why (reciprocity), in French.
    pub reason: String,
}

/// # `GET /api/v1/immersion-swaps/candidates`
/// Pairs of agents (one of ours, one of a partner's) who each want the other's métier for
/// an immersion day, from the opt-in profiles; not yet proposed.
#[utoipa::path(get, path = "/api/v1/immersion-swaps/candidates", tag = "exchanges",
    responses((status = 200, body = Vec<SwapCandidateView>), (status = 401, body = Problem)))]
pub async fn swap_candidates(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<SwapCandidateView>>, AppError> {
    p.require(Role::Lecteur)?;
    let found = service::candidates(state.federation()).await?;
    Ok(Json(
        found
            .into_iter()
            .map(|c| SwapCandidateView {
                our_profile: c.our_profile,
                their_profile: c.their_profile,
                partner: c.partner,
                our_agent_discovers: c.our_agent_discovers,
                their_agent_discovers: c.their_agent_discovers,
                reason: c.reason,
            })
            .collect(),
    ))
}

/// A swap to propose.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwapBody {
    /// Our agent's profile (id).
    pub our_profile: String,
    /// The other agent's profile (id).
    pub their_profile: String,
    /// The day our agent spends at the other node (AAAA-MM-JJ).
    #[schema(format = Date)]
    pub our_visit_on: String,
    /// The day their agent spends here.
    #[schema(format = Date)]
    pub their_visit_on: String,
    /// The functional mailbox of the HR service organising it.
    pub contact_mailbox: String,
    /// The service hosting their agent.
    #[serde(default)]
    pub service: Option<String>,
    /// The commune (code officiel géographique) where their agent is hosted.
    #[serde(default)]
    pub commune: Option<String>,
}

/// # `POST /api/v1/immersion-swaps`
/// Proposes a swap to the other agent's node (rh): both agents must want each other's
/// métier (reciprocity).
#[utoipa::path(post, path = "/api/v1/immersion-swaps", tag = "exchanges", request_body = SwapBody,
    responses((status = 201, body = SwapView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn propose_swap(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<SwapBody>,
) -> Result<(StatusCode, Json<SwapView>), AppError> {
    p.require(Role::Rh)?;
    let input = ProposeSwap {
        our_profile: body.our_profile,
        their_profile: body.their_profile,
        our_visit_on: parse_date("our_visit_on", &body.our_visit_on)?,
        their_visit_on: parse_date("their_visit_on", &body.their_visit_on)?,
        contact_mailbox: body.contact_mailbox,
        service: body.service,
        commune: body.commune,
    };
    let row = service::propose(state.federation(), &p, input).await?;
    Ok((StatusCode::CREATED, Json(swap_view(&state, row))))
}

/// # `GET /api/v1/immersion-swaps/{id}`
/// One swap.
#[utoipa::path(get, path = "/api/v1/immersion-swaps/{id}", tag = "exchanges", params(("id" = Uuid, Path, description = "Swap id")),
    responses((status = 200, body = SwapView), (status = 404, body = Problem)))]
pub async fn get_swap(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<SwapView>, AppError> {
    p.require(Role::Lecteur)?;
    let row = state.store().swap(id).await?;
    Ok(Json(swap_view(&state, row)))
}

/// What to do with a swap.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SwapActionBody {
    /// `accept` or `decline` (the node the swap was proposed to), `cancel` (either).
    pub action: String,
}

/// # `POST /api/v1/immersion-swaps/{id}/answer`
/// Accepts, declines or cancels a swap (rh); the other node is told.
#[utoipa::path(post, path = "/api/v1/immersion-swaps/{id}/answer", tag = "exchanges", params(("id" = Uuid, Path, description = "Swap id")),
    request_body = SwapActionBody,
    responses((status = 200, body = SwapView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn answer_swap(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<SwapActionBody>,
) -> Result<Json<SwapView>, AppError> {
    p.require(Role::Rh)?;
    let action = match body.action.as_str() {
        "accept" => SwapAction::Accept,
        "decline" => SwapAction::Decline,
        "cancel" => SwapAction::Cancel,
        other => {
            return Err(invalid(
                "action",
                format!("{other:?} : action attendue « accept », « decline » ou « cancel »"),
            ));
        }
    };
    let row = service::act(state.federation(), &p, id, action).await?;
    Ok(Json(swap_view(&state, row)))
}

/// The immersion hosted here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitBody {
    /// `done` (the other agent spent the day here) or `missed`.
    pub status: String,
}

/// # `POST /api/v1/immersion-swaps/{id}/visit`
/// Reports the immersion this node hosted (rh); both nodes record it. The swap is done
/// when both immersions are reported.
#[utoipa::path(post, path = "/api/v1/immersion-swaps/{id}/visit", tag = "exchanges", params(("id" = Uuid, Path, description = "Swap id")),
    request_body = VisitBody,
    responses((status = 200, body = SwapView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn report_visit(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<VisitBody>,
) -> Result<Json<SwapView>, AppError> {
    p.require(Role::Rh)?;
    let row = service::report_visit(state.federation(), &p, id, &body.status).await?;
    Ok(Json(swap_view(&state, row)))
}

/// A registration to a training session.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationView {
    /// Local id.
    pub id: Uuid,
    /// The registration's id.
    pub object_id: String,
    /// The session (a `training_session` posting's id).
    pub session: String,
    /// The registering node.
    pub node: String,
    /// The session's node.
    pub host: String,
    /// The agent (at the registering node only).
    pub agent_id: Option<Uuid>,
    /// `requested`, `confirmed`, `waitlisted`, `refused`, `cancelled`.
    pub status: String,
    /// Why it waits or was refused, in French.
    pub reason: Option<String>,
    /// Registered at.
    pub registered_at: String,
}

fn registration_view(r: RegistrationRow) -> RegistrationView {
    RegistrationView {
        id: r.id,
        object_id: r.object_id,
        session: r.session,
        node: r.node,
        host: r.host,
        agent_id: r.agent_id,
        status: r.status,
        reason: r.reason,
        registered_at: rfc3339(r.registered_at),
    }
}

/// Filter of registrations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistrationQuery {
    /// Only those of this session (posting id).
    pub session: Option<String>,
}

/// # `GET /api/v1/training-registrations`
/// Registrations: of our agents to any session, and of every node to our sessions.
#[utoipa::path(get, path = "/api/v1/training-registrations", tag = "exchanges", params(RegistrationQuery),
    responses((status = 200, body = Vec<RegistrationView>), (status = 401, body = Problem)))]
pub async fn list_registrations(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<RegistrationQuery>,
) -> Result<Json<Vec<RegistrationView>>, AppError> {
    p.require(Role::Lecteur)?;
    let rows = state.store().registrations(q.session.as_deref()).await?;
    Ok(Json(rows.into_iter().map(registration_view).collect()))
}

/// A registration to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationBody {
    /// The session (a published `training_session` posting's id, ours or a partner's).
    pub session: String,
    /// The local agent.
    pub agent_id: Uuid,
}

/// # `POST /api/v1/training-registrations`
/// Registers a local agent to a session (rh): at once for our sessions, by an `Add` to
/// the session's node otherwise, which confirms or puts it on the waiting list.
#[utoipa::path(post, path = "/api/v1/training-registrations", tag = "exchanges", request_body = RegistrationBody,
    responses((status = 201, body = RegistrationView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_registration(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<RegistrationBody>,
) -> Result<(StatusCode, Json<RegistrationView>), AppError> {
    p.require(Role::Rh)?;
    let row = service::register(state.federation(), &p, &body.session, body.agent_id).await?;
    Ok((StatusCode::CREATED, Json(registration_view(row))))
}

/// # `DELETE /api/v1/training-registrations/{id}`
/// Cancels a registration of one of our agents (rh); a seat it held goes to the next on
/// the waiting list.
#[utoipa::path(delete, path = "/api/v1/training-registrations/{id}", tag = "exchanges", params(("id" = Uuid, Path, description = "Registration id")),
    responses((status = 200, body = RegistrationView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_registration(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<RegistrationView>, AppError> {
    p.require(Role::Rh)?;
    let row = service::cancel(state.federation(), &p, id).await?;
    Ok(Json(registration_view(row)))
}

/// Per-partner seat quotas of one of our sessions.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotasBody {
    /// The session (our `training_session` posting's id).
    pub session: String,
    /// Seats per partner (actor id → seats). Empty: every partner may take any of the
    /// seats offered to partners.
    pub quotas: std::collections::BTreeMap<String, i64>,
}

/// Which session.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuotaQuery {
    /// The session (posting id).
    pub session: String,
}

/// # `GET /api/v1/training-quotas?session=URL`
/// The per-partner quotas of one of our sessions.
#[utoipa::path(get, path = "/api/v1/training-quotas", tag = "exchanges", params(QuotaQuery),
    responses((status = 200, body = QuotasBody), (status = 401, body = Problem)))]
pub async fn get_quotas(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<QuotaQuery>,
) -> Result<Json<QuotasBody>, AppError> {
    p.require(Role::Lecteur)?;
    let quotas = state.store().training_quotas(&q.session).await?;
    Ok(Json(QuotasBody {
        session: q.session,
        quotas: quotas.into_iter().collect(),
    }))
}

/// # `PUT /api/v1/training-quotas`
/// Sets the per-partner quotas of one of our sessions (rh); seats are re-allocated and
/// the nodes told of any change.
#[utoipa::path(put, path = "/api/v1/training-quotas", tag = "exchanges", request_body = QuotasBody,
    responses((status = 200, body = QuotasBody), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_quotas(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<QuotasBody>,
) -> Result<Json<QuotasBody>, AppError> {
    p.require(Role::Rh)?;
    if let Some((actor, q)) = body.quotas.iter().find(|(_, q)| **q < 0) {
        return Err(invalid(
            "quotas",
            format!("quota {q} pour {actor} : un nombre de places ne peut être négatif"),
        ));
    }
    let quotas: Vec<(String, i64)> = body.quotas.clone().into_iter().collect();
    service::set_quotas(state.federation(), &p, &body.session, &quotas).await?;
    Ok(Json(body))
}
