//! Local postings: create, update, publish, close, delete. Content is validated by
//! `protocol` (see `crate::postings`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::http::error::{AppError, AppPath, AppQuery, FieldError, Problem};
use crate::postings::{self, PostingError};
use crate::state::AppState;
use crate::store::{Posting, PostingStatus, Role};

impl From<PostingError> for AppError {
    fn from(e: PostingError) -> Self {
        match e {
            PostingError::Invalid(problems) => AppError::Validation {
                detail: format!(
                    "l'offre ne respecte pas {} règle(s) du protocole",
                    problems.0.len()
                ),
                errors: problems
                    .iter()
                    .map(|p| FieldError {
                        field: p.path.clone(),
                        message: p.message_fr(),
                    })
                    .collect(),
            },
            PostingError::NotAnObject | PostingError::Unreadable(_) => AppError::Validation {
                detail: e.to_string(),
                errors: Vec::new(),
            },
            PostingError::Transition { .. } => AppError::Conflict(e.to_string()),
            PostingError::Store(s) => s.into(),
            PostingError::Sign(m) => AppError::Internal(m),
        }
    }
}

/// A local posting.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostingView {
    /// Id (the last segment of the posting's URL).
    pub id: Uuid,
    /// Kind (`vacancy`, `mad_offer`, `project_mission`…).
    pub kind: String,
    /// Local status.
    pub status: PostingStatus,
    /// Version, incremented by every change.
    pub version: i64,
    /// The signed posting document (`Posting` of the protocol).
    #[schema(value_type = Object)]
    pub document: serde_json::Value,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// First publication.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub published_at: Option<OffsetDateTime>,
}

impl From<Posting> for PostingView {
    fn from(p: Posting) -> Self {
        Self {
            id: p.id,
            kind: p.kind,
            status: p.status,
            version: p.version,
            document: p.document,
            created_at: p.created_at,
            updated_at: p.updated_at,
            published_at: p.published_at,
        }
    }
}

/// Filter of the posting list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostingQuery {
    /// Only postings with this status.
    pub status: Option<PostingStatus>,
}

/// # `GET /api/v1/postings`
/// Local postings, most recently changed first.
#[utoipa::path(get, path = "/api/v1/postings", tag = "postings", params(PostingQuery),
    responses((status = 200, body = Vec<PostingView>), (status = 401, body = Problem)))]
pub async fn list_postings(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<PostingQuery>,
) -> Result<Json<Vec<PostingView>>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(
        state
            .store()
            .postings(q.status)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// # `POST /api/v1/postings`
/// Creates a draft posting (rh). The body is the posting content in the protocol's wire
/// format (`postingKind`, `visibility`, `name`, `statutory`, `body`…); the node sets `id`,
/// `attributedTo`, `version`, `published`, `status` and the addressing, then validates.
#[utoipa::path(post, path = "/api/v1/postings", tag = "postings", request_body(content = Object, description = "Posting content (protocol wire format)"),
    responses((status = 201, body = PostingView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_posting(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(content): AppJson<serde_json::Value>,
) -> Result<(StatusCode, Json<PostingView>), AppError> {
    p.require(Role::Rh)?;
    let posting = postings::create(&state, &p, content).await?;
    Ok((StatusCode::CREATED, Json(posting.into())))
}

/// # `GET /api/v1/postings/{id}`
/// One posting.
#[utoipa::path(get, path = "/api/v1/postings/{id}", tag = "postings", params(("id" = Uuid, Path, description = "Posting id")),
    responses((status = 200, body = PostingView), (status = 404, body = Problem)))]
pub async fn get_posting(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PostingView>, AppError> {
    p.require(Role::Lecteur)?;
    Ok(Json(state.store().posting(id).await?.into()))
}

/// # `PUT /api/v1/postings/{id}`
/// Replaces a posting's content (rh); a published posting is re-sent as an `Update`.
#[utoipa::path(put, path = "/api/v1/postings/{id}", tag = "postings", params(("id" = Uuid, Path, description = "Posting id")),
    request_body(content = Object, description = "Posting content (protocol wire format)"),
    responses((status = 200, body = PostingView), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_posting(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
    AppJson(content): AppJson<serde_json::Value>,
) -> Result<Json<PostingView>, AppError> {
    p.require(Role::Rh)?;
    Ok(Json(
        postings::update(&state, &p, id, content).await?.into(),
    ))
}

/// # `DELETE /api/v1/postings/{id}`
/// Deletes a posting (rh); a published one is withdrawn with a `Delete`.
#[utoipa::path(delete, path = "/api/v1/postings/{id}", tag = "postings", params(("id" = Uuid, Path, description = "Posting id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_posting(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Rh)?;
    postings::delete(&state, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// # `POST /api/v1/postings/{id}/publish`
/// Publishes a draft (rh): it is sent to its audience as a `Create`.
#[utoipa::path(post, path = "/api/v1/postings/{id}/publish", tag = "postings", params(("id" = Uuid, Path, description = "Posting id")),
    responses((status = 200, body = PostingView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn publish_posting(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PostingView>, AppError> {
    p.require(Role::Rh)?;
    Ok(Json(
        postings::set_status(&state, &p, id, PostingStatus::Published)
            .await?
            .into(),
    ))
}

/// # `POST /api/v1/postings/{id}/fill`
/// Declares a published posting filled (rh): an `Update` tells its audience.
#[utoipa::path(post, path = "/api/v1/postings/{id}/fill", tag = "postings", params(("id" = Uuid, Path, description = "Posting id")),
    responses((status = 200, body = PostingView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn fill_posting(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PostingView>, AppError> {
    p.require(Role::Rh)?;
    Ok(Json(
        postings::set_status(&state, &p, id, PostingStatus::Filled)
            .await?
            .into(),
    ))
}

/// # `POST /api/v1/postings/{id}/close`
/// Closes a published posting (rh): an `Update` tells its audience.
#[utoipa::path(post, path = "/api/v1/postings/{id}/close", tag = "postings", params(("id" = Uuid, Path, description = "Posting id")),
    responses((status = 200, body = PostingView), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn close_posting(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<PostingView>, AppError> {
    p.require(Role::Rh)?;
    Ok(Json(
        postings::set_status(&state, &p, id, PostingStatus::Closed)
            .await?
            .into(),
    ))
}
