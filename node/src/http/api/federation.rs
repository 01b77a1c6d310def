//! Partners, partnership policy, block list, circles, delivery health, dead letters,
//! relays and received activities: the HR API side of federation. Reading is open to
//! every role; changing partnerships, blocks, circles and the policy is for `admin`;
//! relaying a partner's posting is for `rh`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::federation::FederationError;
use crate::federation::actors::ActorError;
use crate::federation::partners::{self, Policy};
use crate::http::error::{AppError, AppPath, AppQuery, Problem};
use crate::state::AppState;
use crate::store::{
    BlockKind, Circle, DeadLetter, InboxHealth, InboxStats, Partner, PartnershipState, Role,
    SyncTarget, Via,
};

impl From<FederationError> for AppError {
    fn from(e: FederationError) -> Self {
        match e {
            FederationError::Store(s) => s.into(),
            FederationError::Invalid(m) => AppError::Conflict(m),
            FederationError::Actor(a) => match a {
                ActorError::Unreachable { actor, reason } => AppError::bad_request(
                    "partner_unreachable",
                    format!(
                        "le nœud {actor} ne répond pas : {reason}. Vérifiez l'adresse et réessayez plus tard."
                    ),
                ),
                ActorError::Refused { actor, reason } => AppError::bad_request(
                    "partner_address_refused",
                    format!("l'adresse {actor} est refusée : {reason}"),
                ),
                ActorError::Invalid { actor, reason } => AppError::bad_request(
                    "partner_invalid",
                    format!("{actor} n'est pas un nœud Passerelle valide : {reason}"),
                ),
                ActorError::Gone { actor } => AppError::bad_request(
                    "partner_gone",
                    format!("le nœud {actor} a été supprimé (410)"),
                ),
            },
            FederationError::Build(m) => AppError::Internal(m),
        }
    }
}

/// A remote node with the partnership in each direction, its delivery health and its
/// pull state.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerView {
    /// Id.
    pub id: Uuid,
    /// Actor URL.
    pub actor: String,
    /// Name.
    pub name: String,
    /// SIREN.
    pub siren: Option<String>,
    /// Our `Follow` of it (`accepted`: we receive what it addresses to its partners).
    pub outgoing: PartnershipState,
    /// Its `Follow` of us (`pending`: waiting for an admin's decision; `accepted`: it is
    /// one of our partners and receives what we address to them).
    pub incoming: PartnershipState,
    /// Where our deliveries go.
    pub inbox: String,
    /// Delivery state of that inbox, if anything was sent.
    pub delivery: Option<InboxHealth>,
    /// Pull state, when we follow it.
    pub sync: Option<SyncTarget>,
    /// Circles it belongs to (URLs).
    pub circles: Vec<String>,
    /// Since.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

async fn partner_views(state: &AppState, only: Option<Uuid>) -> Result<Vec<PartnerView>, AppError> {
    let store = state.store();
    let health = store.delivery_health().await?;
    let sync = store.sync_targets().await?;
    let circles = store.circles().await?;
    let partners: Vec<Partner> = match only {
        Some(id) => vec![store.partner(id).await?],
        None => store.partners().await?,
    };
    Ok(partners
        .into_iter()
        .map(|p| PartnerView {
            delivery: health
                .iter()
                .find(|h| h.inbox_url == p.delivery_inbox())
                .cloned(),
            sync: sync.iter().find(|s| s.actor_id == p.actor_id).cloned(),
            circles: circles
                .iter()
                .filter(|c| c.members.contains(&p.actor_id))
                .map(|c| c.url.clone())
                .collect(),
            inbox: p.delivery_inbox().to_owned(),
            id: p.id,
            actor: p.actor_id,
            name: p.name,
            siren: p.siren,
            outgoing: p.outgoing,
            incoming: p.incoming,
            created_at: p.created_at,
            updated_at: p.updated_at,
        })
        .collect())
}

/// # `GET /api/v1/partners`
/// Known nodes, with the partnership in each direction, delivery health and pull state.
#[utoipa::path(get, path = "/api/v1/partners", tag = "partners",
    responses((status = 200, body = Vec<PartnerView>), (status = 401, body = Problem)))]
pub async fn list_partners(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<PartnerView>>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(partner_views(&state, None).await?))
}

/// A partnership request to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowRequest {
    /// The other node: its actor URL (`https://rh.ville.fr/actor`), its address
    /// (`https://rh.ville.fr`) or its account (`drh@rh.ville.fr`).
    pub address: String,
}

/// # `POST /api/v1/partners`
/// Asks a node to become our partner (admin): resolves its address (WebFinger or actor
/// URL) and sends a `Follow`. Its answer arrives later (`outgoing` becomes `accepted` or
/// `rejected`). Sending it again re-sends the request.
#[utoipa::path(post, path = "/api/v1/partners", tag = "partners", request_body = FollowRequest,
    responses((status = 201, body = PartnerView), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn create_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(req): AppJson<FollowRequest>,
) -> Result<(StatusCode, Json<PartnerView>), AppError> {
    p.require(Role::Admin)?;
    let partner = partners::follow(state.federation(), &req.address, &p.actor).await?;
    let mut views = partner_views(&state, Some(partner.id)).await?;
    let view = views
        .pop()
        .ok_or_else(|| AppError::Internal("partner vanished".to_owned()))?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// # `GET /api/v1/partners/{id}`
/// One known node.
#[utoipa::path(get, path = "/api/v1/partners/{id}", tag = "partners", params(("id" = Uuid, Path, description = "Partner id")),
    responses((status = 200, body = PartnerView), (status = 404, body = Problem)))]
pub async fn get_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PartnerView>, AppError> {
    p.require(Role::Lecteur)?;
    let mut views = partner_views(&state, Some(id)).await?;
    views
        .pop()
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("partenaire {id}")))
}

async fn actor_of(state: &AppState, id: Uuid) -> Result<String, AppError> {
    Ok(state.store().partner(id).await?.actor_id)
}

async fn one(state: &AppState, id: Uuid) -> Result<Json<PartnerView>, AppError> {
    let mut views = partner_views(state, Some(id)).await?;
    views
        .pop()
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("partenaire {id}")))
}

/// # `POST /api/v1/partners/{id}/accept`
/// Accepts the node's pending partnership request (admin; policy `approval`).
#[utoipa::path(post, path = "/api/v1/partners/{id}/accept", tag = "partners", params(("id" = Uuid, Path, description = "Partner id")),
    responses((status = 200, body = PartnerView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn accept_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PartnerView>, AppError> {
    p.require(Role::Admin)?;
    let actor = actor_of(&state, id).await?;
    partners::accept(state.federation(), &actor, Some(&p.actor)).await?;
    one(&state, id).await
}

/// # `POST /api/v1/partners/{id}/reject`
/// Refuses the node's pending request, or ends the partnership in which it follows us
/// (admin).
#[utoipa::path(post, path = "/api/v1/partners/{id}/reject", tag = "partners", params(("id" = Uuid, Path, description = "Partner id")),
    responses((status = 200, body = PartnerView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn reject_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PartnerView>, AppError> {
    p.require(Role::Admin)?;
    let actor = actor_of(&state, id).await?;
    partners::reject(state.federation(), &actor, Some(&p.actor)).await?;
    one(&state, id).await
}

/// # `POST /api/v1/partners/{id}/follow`
/// Follows the node back (admin): most collectivités want both directions (§7.1).
#[utoipa::path(post, path = "/api/v1/partners/{id}/follow", tag = "partners", params(("id" = Uuid, Path, description = "Partner id")),
    responses((status = 200, body = PartnerView), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn follow_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PartnerView>, AppError> {
    p.require(Role::Admin)?;
    let actor = actor_of(&state, id).await?;
    partners::follow(state.federation(), &actor, &p.actor).await?;
    one(&state, id).await
}

/// # `POST /api/v1/partners/{id}/unfollow`
/// Stops following the node (`Undo` of our `Follow`, admin).
#[utoipa::path(post, path = "/api/v1/partners/{id}/unfollow", tag = "partners", params(("id" = Uuid, Path, description = "Partner id")),
    responses((status = 200, body = PartnerView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn unfollow_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PartnerView>, AppError> {
    p.require(Role::Admin)?;
    let actor = actor_of(&state, id).await?;
    partners::unfollow(state.federation(), &actor, &p.actor).await?;
    one(&state, id).await
}

/// # `POST /api/v1/partners/{id}/sync`
/// Pulls the node's outbox now (catch-up; admin).
#[utoipa::path(post, path = "/api/v1/partners/{id}/sync", tag = "partners", params(("id" = Uuid, Path, description = "Partner id")),
    responses((status = 202), (status = 404, body = Problem)))]
pub async fn sync_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Admin)?;
    let actor = actor_of(&state, id).await?;
    state.store().request_pull(Some(&actor)).await?;
    Ok(StatusCode::ACCEPTED)
}

/// # `POST /api/v1/partners/{id}/retry`
/// Retries now every waiting delivery to the node and closes its circuit (admin).
#[utoipa::path(post, path = "/api/v1/partners/{id}/retry", tag = "partners", params(("id" = Uuid, Path, description = "Partner id")),
    responses((status = 202), (status = 404, body = Problem)))]
pub async fn retry_partner(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Admin)?;
    let partner = state.store().partner(id).await?;
    state
        .store()
        .retry_inbox_now(partner.delivery_inbox())
        .await?;
    Ok(StatusCode::ACCEPTED)
}

/// The partnership policy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// `open` (accept every request), `approval` (an admin decides) or `closed`.
    pub policy: Policy,
}

/// # `GET /api/v1/federation/policy`
/// How partnership requests are answered.
#[utoipa::path(get, path = "/api/v1/federation/policy", tag = "partners",
    responses((status = 200, body = PolicyBody)))]
pub async fn get_policy(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<PolicyBody>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(PolicyBody {
        policy: partners::policy(state.federation()).await?,
    }))
}

/// # `PUT /api/v1/federation/policy`
/// Changes the partnership policy (admin).
#[utoipa::path(put, path = "/api/v1/federation/policy", tag = "partners", request_body = PolicyBody,
    responses((status = 200, body = PolicyBody), (status = 403, body = Problem)))]
pub async fn put_policy(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<PolicyBody>,
) -> Result<Json<PolicyBody>, AppError> {
    p.require(Role::Admin)?;
    partners::set_policy(state.federation(), body.policy, &p.actor).await?;
    Ok(Json(body))
}

/// A block.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BlockBody {
    /// An actor URL, or an origin (`https://host[:port]`) for `kind: origin`.
    pub target: String,
    /// `actor` (one node) or `origin` (every node of a host).
    pub kind: BlockKind,
    /// Why (for the operators).
    #[serde(default)]
    pub reason: String,
}

/// # `GET /api/v1/blocks`
/// Blocked nodes (admin).
#[utoipa::path(get, path = "/api/v1/blocks", tag = "partners",
    responses((status = 200, body = Vec<BlockBody>), (status = 403, body = Problem)))]
pub async fn list_blocks(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<BlockBody>>, AppError> {
    p.require(Role::Admin)?;
    Ok(Json(
        state
            .store()
            .blocks()
            .await?
            .into_iter()
            .map(|b| BlockBody {
                target: b.target,
                kind: b.kind,
                reason: b.reason,
            })
            .collect(),
    ))
}

/// # `POST /api/v1/blocks`
/// Blocks a node or an origin (admin): its requests are refused and a partnership in
/// which it follows us ends.
#[utoipa::path(post, path = "/api/v1/blocks", tag = "partners", request_body = BlockBody,
    responses((status = 201, body = BlockBody), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn create_block(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<BlockBody>,
) -> Result<(StatusCode, Json<BlockBody>), AppError> {
    p.require(Role::Admin)?;
    partners::block(
        state.federation(),
        &body.target,
        body.kind,
        &body.reason,
        &p.actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(body)))
}

/// Which block to lift.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BlockQuery {
    /// The blocked actor URL or origin.
    pub target: String,
}

/// # `DELETE /api/v1/blocks?target=…`
/// Lifts a block (admin).
#[utoipa::path(delete, path = "/api/v1/blocks", tag = "partners", params(BlockQuery),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_block(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<BlockQuery>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Admin)?;
    partners::unblock(state.federation(), &q.target, &p.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A circle of partners.
#[derive(Debug, Serialize, ToSchema)]
pub struct CircleView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Its URL: the audience value used in `to` to address the circle.
    pub url: String,
    /// Member actor URLs.
    pub members: Vec<String>,
}

impl From<Circle> for CircleView {
    fn from(c: Circle) -> Self {
        Self {
            id: c.id,
            name: c.name,
            url: c.url,
            members: c.members,
        }
    }
}

/// A circle to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CircleBody {
    /// Name shown to HR users (« les trois départements »).
    pub name: String,
    /// Member actor URLs (known nodes).
    #[serde(default)]
    pub members: Vec<String>,
}

/// # `GET /api/v1/circles`
/// Circles of partners.
#[utoipa::path(get, path = "/api/v1/circles", tag = "partners",
    responses((status = 200, body = Vec<CircleView>)))]
pub async fn list_circles(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<CircleView>>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(
        state
            .store()
            .circles()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// # `POST /api/v1/circles`
/// Creates a circle (admin).
#[utoipa::path(post, path = "/api/v1/circles", tag = "partners", request_body = CircleBody,
    responses((status = 201, body = CircleView), (status = 409, body = Problem)))]
pub async fn create_circle(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<CircleBody>,
) -> Result<(StatusCode, Json<CircleView>), AppError> {
    p.require(Role::Admin)?;
    let c = partners::put_circle(
        state.federation(),
        None,
        &body.name,
        &body.members,
        &p.actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// # `PUT /api/v1/circles/{id}`
/// Renames a circle or replaces its members (admin).
#[utoipa::path(put, path = "/api/v1/circles/{id}", tag = "partners", params(("id" = Uuid, Path, description = "Circle id")),
    request_body = CircleBody, responses((status = 200, body = CircleView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn put_circle(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<CircleBody>,
) -> Result<Json<CircleView>, AppError> {
    p.require(Role::Admin)?;
    let c = partners::put_circle(
        state.federation(),
        Some(id),
        &body.name,
        &body.members,
        &p.actor,
    )
    .await?;
    Ok(Json(c.into()))
}

/// # `DELETE /api/v1/circles/{id}`
/// Deletes a circle (admin).
#[utoipa::path(delete, path = "/api/v1/circles/{id}", tag = "partners", params(("id" = Uuid, Path, description = "Circle id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_circle(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Admin)?;
    let audit = p.audit("circle.delete", format!("circle:{id}"));
    state.store().delete_circle(id, &audit).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `GET /api/v1/deliveries`
/// Delivery health of every recipient inbox.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "deliveries",
    responses((status = 200, body = Vec<InboxHealth>)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<InboxHealth>>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(state.store().delivery_health().await?))
}

/// Filter of dead letters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// Only those to this inbox.
    pub inbox: Option<String>,
    /// Page size (1–500, default 100).
    pub limit: Option<u32>,
}

/// # `GET /api/v1/deliveries/dead`
/// Dead-lettered deliveries, newest first (admin).
#[utoipa::path(get, path = "/api/v1/deliveries/dead", tag = "deliveries", params(DeadQuery),
    responses((status = 200, body = Vec<DeadLetter>)))]
pub async fn list_dead(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<DeadQuery>,
) -> Result<Json<Vec<DeadLetter>>, AppError> {
    p.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    Ok(Json(
        state
            .store()
            .dead_letters(q.inbox.as_deref(), limit)
            .await?,
    ))
}

/// What was replayed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResult {
    /// Jobs put back in the queue.
    pub requeued: u64,
}

/// Which dead letters to replay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayBody {
    /// Only those to this inbox (all when absent).
    #[serde(default)]
    pub inbox: Option<String>,
}

/// # `POST /api/v1/deliveries/dead/replay`
/// Puts dead-lettered deliveries back in the queue (admin).
#[utoipa::path(post, path = "/api/v1/deliveries/dead/replay", tag = "deliveries", request_body = ReplayBody,
    responses((status = 200, body = ReplayResult)))]
pub async fn replay_dead(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<ReplayBody>,
) -> Result<Json<ReplayResult>, AppError> {
    p.require(Role::Admin)?;
    let requeued = state
        .store()
        .replay_dead_letters(body.inbox.as_deref())
        .await?;
    let mut audit = p.audit(
        "delivery.replay",
        body.inbox.clone().unwrap_or_else(|| "all".to_owned()),
    );
    audit.details = serde_json::json!({ "requeued": requeued });
    state.store().record_audit(&audit).await?;
    Ok(Json(ReplayResult { requeued }))
}

/// A posting of a partner to relay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelayBody {
    /// The posting's id (its URL at its author's node).
    pub object: String,
}

/// What was relayed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelayResult {
    /// The `Announce` sent to our partners.
    pub activity: String,
}

/// # `POST /api/v1/relays`
/// Relays a partner's posting to our own partners (rh): an `Announce` carrying the
/// posting as received, with its author's proof (§10).
#[utoipa::path(post, path = "/api/v1/relays", tag = "partners", request_body = RelayBody,
    responses((status = 201, body = RelayResult), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create_relay(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<RelayBody>,
) -> Result<(StatusCode, Json<RelayResult>), AppError> {
    p.require(Role::Rh)?;
    let act = partners::relay(state.federation(), &body.object, &p.actor).await?;
    Ok((
        StatusCode::CREATED,
        Json(RelayResult {
            activity: act.activity_id,
        }),
    ))
}

/// A received activity.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxItemView {
    /// Sequence number.
    pub seq: i64,
    /// Activity id.
    pub activity: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its actor.
    pub actor: String,
    /// Its object's id.
    pub object: Option<String>,
    /// Pushed or pulled.
    pub via: Via,
    /// When it arrived.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: OffsetDateTime,
    /// What its projection did (`None` while waiting).
    pub outcome: Option<String>,
}

/// Filter of received activities.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only those of this actor.
    pub actor: Option<String>,
    /// Page size (1–500, default 100).
    pub limit: Option<u32>,
}

/// Received activities and the inbox's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboxView {
    /// Counts.
    pub stats: InboxStats,
    /// Newest first.
    pub items: Vec<InboxItemView>,
}

/// # `GET /api/v1/inbox`
/// Activities received from partners, newest first, with what was done with each
/// (admin; for diagnostics).
#[utoipa::path(get, path = "/api/v1/inbox", tag = "deliveries", params(InboxQuery),
    responses((status = 200, body = InboxView)))]
pub async fn list_inbox(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<InboxQuery>,
) -> Result<Json<InboxView>, AppError> {
    p.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let items = state
        .store()
        .inbox_entries(q.actor.as_deref(), limit)
        .await?
        .into_iter()
        .map(|(e, outcome)| InboxItemView {
            seq: e.seq,
            activity: e.activity_id,
            kind: e.activity_type,
            actor: e.actor_id,
            object: e.object_id,
            via: e.via,
            received_at: e.received_at,
            outcome,
        })
        .collect();
    Ok(Json(InboxView {
        stats: state.store().inbox_stats().await?,
        items,
    }))
}
