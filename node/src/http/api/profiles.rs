//! Agents' opt-in profiles (publication to the scope the agent chose, consent log,
//! withdrawal with acknowledgements), partners' profiles, and matching both ways.
//!
//! Reading is open to every role; publishing and withdrawing profiles is for `rh` (who
//! records the agent's choice and consent).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::domain::matching::Criterion;
use crate::http::error::{AppError, AppPath, AppQuery, Problem};
use crate::mobility::profiles::{self as service, Match};
use crate::state::AppState;
use crate::store::{ProfileRow, Role};

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A consent in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    /// The scope consented to (visibility).
    pub scope: String,
    /// Version of the information text the agent read.
    pub text_version: String,
    /// Given at.
    pub granted_at: String,
    /// Withdrawn (or replaced) at.
    pub withdrawn_at: Option<String>,
    /// Who recorded it.
    pub recorded_by: String,
}

/// A node the profile was sent to.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecipientView {
    /// The node's actor id.
    pub actor: String,
    /// First sent at.
    pub sent_at: String,
    /// When the withdrawal (`Delete`) was sent to it.
    pub deleted_at: Option<String>,
    /// When it acknowledged the erasure.
    pub acknowledged_at: Option<String>,
}

/// One of our agents' profiles.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    /// Local id.
    pub id: Uuid,
    /// The profile's id (URL).
    pub object_id: String,
    /// The agent.
    pub agent_id: Option<Uuid>,
    /// Pseudonymous handle.
    pub handle: String,
    /// Visibility chosen by the agent.
    pub visibility: String,
    /// Version.
    pub version: i64,
    /// Withdrawn by the agent.
    pub withdrawn: bool,
    /// Withdrawal time.
    pub withdrawn_at: Option<String>,
    /// The signed profile (absent once withdrawn).
    #[schema(value_type = Option<Object>)]
    pub document: Option<Value>,
    /// Consent log, oldest first.
    pub consents: Vec<ConsentView>,
    /// Nodes it reached, and their acknowledgement of a withdrawal.
    pub recipients: Vec<RecipientView>,
    /// Creation.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

async fn view(state: &AppState, row: ProfileRow) -> Result<ProfileView, AppError> {
    let store = state.store();
    let consents = store
        .profile_consents(row.id)
        .await?
        .into_iter()
        .map(|c| ConsentView {
            scope: c.scope,
            text_version: c.text_version,
            granted_at: rfc3339(c.granted_at),
            withdrawn_at: c.withdrawn_at.map(rfc3339),
            recorded_by: c.recorded_by,
        })
        .collect();
    let recipients = store
        .profile_recipients(row.id)
        .await?
        .into_iter()
        .map(|r| RecipientView {
            actor: r.actor_id,
            sent_at: rfc3339(r.sent_at),
            deleted_at: r.delete_sent_at.map(rfc3339),
            acknowledged_at: r.acknowledged_at.map(rfc3339),
        })
        .collect();
    Ok(ProfileView {
        id: row.id,
        object_id: row.object_id,
        agent_id: row.agent_id,
        handle: row.handle,
        visibility: row.visibility,
        version: row.version,
        withdrawn: row.withdrawn_at.is_some(),
        withdrawn_at: row.withdrawn_at.map(rfc3339),
        document: row.document,
        consents,
        recipients,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

/// # `GET /api/v1/profiles`
/// Our agents' profiles (withdrawn ones too), most recently changed first.
#[utoipa::path(get, path = "/api/v1/profiles", tag = "profiles",
    responses((status = 200, body = Vec<ProfileView>), (status = 401, body = Problem)))]
pub async fn list_profiles(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<ProfileView>>, AppError> {
    p.require(Role::Lecteur)?;
    let mut out = Vec::new();
    for row in state.store().profiles().await? {
        out.push(view(&state, row).await?);
    }
    Ok(Json(out))
}

/// A profile to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// The agent (creation only).
    #[serde(default)]
    pub agent_id: Option<Uuid>,
    /// The version of the information text the agent read and accepted, required when
    /// the profile reaches other employers (`partner_circle`, `federation`).
    #[serde(default)]
    pub consent_text_version: Option<String>,
    /// The profile in the protocol's wire format (`visibility`, `circles`, `categorie`,
    /// `filiere`, `metiersCurrent`, `skills`, `appetites`, `volunteering`,
    /// `availability`, `area`…; `handle` optional). No name, photo, age, salary or
    /// evaluation: they are refused.
    #[schema(value_type = Object)]
    pub profile: Value,
}

/// # `POST /api/v1/profiles`
/// Publishes an agent's profile to the scope it chose (rh), recording its consent.
#[utoipa::path(post, path = "/api/v1/profiles", tag = "profiles", request_body = ProfileBody,
    responses((status = 201, body = ProfileView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_profile(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<ProfileBody>,
) -> Result<(StatusCode, Json<ProfileView>), AppError> {
    p.require(Role::Rh)?;
    let agent_id = body.agent_id.ok_or_else(|| AppError::Validation {
        detail: "l'agent est obligatoire".into(),
        errors: vec![crate::http::error::FieldError {
            field: "agent_id".into(),
            message: "l'agent dont c'est le profil est obligatoire".into(),
        }],
    })?;
    let row = service::create(
        state.federation(),
        &p,
        agent_id,
        body.profile,
        body.consent_text_version,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state, row).await?)))
}

/// # `GET /api/v1/profiles/{id}`
/// One profile with its consent log and the nodes it reached.
#[utoipa::path(get, path = "/api/v1/profiles/{id}", tag = "profiles", params(("id" = Uuid, Path, description = "Profile id")),
    responses((status = 200, body = ProfileView), (status = 404, body = Problem)))]
pub async fn get_profile(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<ProfileView>, AppError> {
    p.require(Role::Lecteur)?;
    let row = state.store().profile(id).await?;
    Ok(Json(view(&state, row).await?))
}

/// # `PUT /api/v1/profiles/{id}`
/// Replaces a profile's content (rh): a new version to its scope. A new scope needs the
/// agent's consent to it; the nodes it leaves out receive a withdrawal.
#[utoipa::path(put, path = "/api/v1/profiles/{id}", tag = "profiles", params(("id" = Uuid, Path, description = "Profile id")),
    request_body = ProfileBody,
    responses((status = 200, body = ProfileView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_profile(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(body): AppJson<ProfileBody>,
) -> Result<Json<ProfileView>, AppError> {
    p.require(Role::Rh)?;
    let row = service::update(
        state.federation(),
        &p,
        id,
        body.profile,
        body.consent_text_version,
    )
    .await?;
    Ok(Json(view(&state, row).await?))
}

/// # `DELETE /api/v1/profiles/{id}`
/// The agent withdraws its profile (rh records it): every node that received it erases
/// it and acknowledges (see `recipients`); the content is erased here, the consent
/// closed.
#[utoipa::path(delete, path = "/api/v1/profiles/{id}", tag = "profiles", params(("id" = Uuid, Path, description = "Profile id")),
    responses((status = 200, body = ProfileView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_profile(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<ProfileView>, AppError> {
    p.require(Role::Rh)?;
    let row = service::withdraw(state.federation(), &p, id).await?;
    Ok(Json(view(&state, row).await?))
}

/// A partner's profile, as received.
#[derive(Debug, Serialize, ToSchema)]
pub struct RemoteProfileView {
    /// Its id.
    pub object_id: String,
    /// Its node.
    pub node: String,
    /// Version.
    pub version: i64,
    /// The signed profile.
    #[schema(value_type = Object)]
    pub document: Value,
    /// Last change.
    pub updated_at: String,
}

/// # `GET /api/v1/remote-profiles`
/// Partners' agents' profiles addressed to this node (withdrawn ones are erased).
#[utoipa::path(get, path = "/api/v1/remote-profiles", tag = "profiles",
    responses((status = 200, body = Vec<RemoteProfileView>), (status = 401, body = Problem)))]
pub async fn list_remote_profiles(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<RemoteProfileView>>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(
        state
            .store()
            .remote_profiles(false)
            .await?
            .into_iter()
            .filter_map(|r| {
                Some(RemoteProfileView {
                    object_id: r.object_id,
                    node: r.author,
                    version: r.version,
                    document: r.document?,
                    updated_at: rfc3339(r.updated_at),
                })
            })
            .collect(),
    ))
}

/// A reason of a suggestion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonView {
    /// `kind`, `metier`, `theme`, `categorie`, `filiere`, `area`, `quotite`, `dates`,
    /// `volunteering`.
    pub criterion: String,
    /// Points it adds.
    pub points: u32,
    /// In French.
    pub text: String,
}

/// A suggestion, for a person to decide.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatchView {
    /// The posting's or profile's id.
    pub id: String,
    /// Its node.
    pub node: String,
    /// The posting's title, or the profile's handle.
    pub label: String,
    /// The posting's kind.
    pub kind: Option<String>,
    /// Score (higher is better).
    pub score: u32,
    /// Why, strongest first.
    pub reasons: Vec<ReasonView>,
}

fn criterion(c: Criterion) -> &'static str {
    match c {
        Criterion::Kind => "kind",
        Criterion::Metier => "metier",
        Criterion::Theme => "theme",
        Criterion::Categorie => "categorie",
        Criterion::Filiere => "filiere",
        Criterion::Area => "area",
        Criterion::Quotite => "quotite",
        Criterion::Dates => "dates",
        Criterion::Volunteering => "volunteering",
    }
}

fn match_view(m: Match) -> MatchView {
    MatchView {
        id: m.id,
        node: m.node,
        label: m.label,
        kind: m.kind,
        score: m.score,
        reasons: m
            .reasons
            .into_iter()
            .map(|r| ReasonView {
                criterion: criterion(r.criterion).to_owned(),
                points: r.points,
                text: r.text_fr,
            })
            .collect(),
    }
}

/// What to match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostingMatchQuery {
    /// The profile's id (URL): one of our agents' or a partner's.
    pub profile: String,
}

/// # `GET /api/v1/matches/postings?profile=URL`
/// The postings (ours and our partners') that fit a profile, best first, with the
/// reasons in French. Suggestions for a person to review, never a decision.
#[utoipa::path(get, path = "/api/v1/matches/postings", tag = "profiles", params(PostingMatchQuery),
    responses((status = 200, body = Vec<MatchView>), (status = 404, body = Problem)))]
pub async fn match_postings(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<PostingMatchQuery>,
) -> Result<Json<Vec<MatchView>>, AppError> {
    p.require(Role::Lecteur)?;
    let found = service::postings_for(state.federation(), &q.profile).await?;
    Ok(Json(found.into_iter().map(match_view).collect()))
}

/// What to match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProfileMatchQuery {
    /// The posting's id (URL): ours or a partner's.
    pub posting: String,
}

/// # `GET /api/v1/matches/profiles?posting=URL`
/// The opt-in profiles (our agents' and our partners') that fit a posting, best first,
/// with the reasons in French. Suggestions for a person to review, never a decision.
#[utoipa::path(get, path = "/api/v1/matches/profiles", tag = "profiles", params(ProfileMatchQuery),
    responses((status = 200, body = Vec<MatchView>), (status = 404, body = Problem)))]
pub async fn match_profiles(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<ProfileMatchQuery>,
) -> Result<Json<Vec<MatchView>>, AppError> {
    p.require(Role::Lecteur)?;
    let found = service::profiles_for(state.federation(), &q.posting).await?;
    Ok(Json(found.into_iter().map(match_view).collect()))
}
