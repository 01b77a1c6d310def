//! Session, caller, node identity, tokens and audit log.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::auth;
use crate::http::discovery::parse_kind;
use crate::http::error::{AppError, AppPath, AppQuery, FieldError, Problem};
use crate::state::AppState;
use crate::store::{ApiToken, AuditEntry, NodeIdentity, Role, StoreError};

/// Login request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    /// Bearer token for later requests (shown once).
    pub token: String,
    /// Role of the account.
    pub role: Role,
    /// Expiry (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// # `POST /api/v1/session`
/// Logs in with a username and password; returns a session token valid 12 hours.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", security(()),
    request_body = LoginRequest,
    responses((status = 201, body = SessionResponse), (status = 401, body = Problem)))]
pub async fn post_session(
    State(state): State<AppState>,
    AppJson(req): AppJson<LoginRequest>,
) -> Result<(StatusCode, Json<SessionResponse>), AppError> {
    let (principal, token, expires_at) =
        auth::login(state.store(), &req.username, &req.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionResponse {
            token,
            role: principal.role,
            expires_at,
        }),
    ))
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// Audit name (`account:NAME`, `token:ID`, `session:ID`).
    pub actor: String,
    /// Role.
    pub role: Role,
}

/// # `GET /api/v1/me`
/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/me", tag = "session",
    responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn get_me(Caller(p): Caller) -> Json<Me> {
    Json(Me {
        actor: p.actor,
        role: p.role,
    })
}

/// A public key of the node.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Key id (URL with fragment).
    pub id: String,
    /// Multikey.
    pub public_key_multibase: String,
    /// Whether the node signs with it now.
    pub current: bool,
    /// Expiry, for rotated keys.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<OffsetDateTime>,
}

/// The node's identity.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeIdentityBody {
    /// Name of the collectivité.
    pub name: String,
    /// SIREN (9 digits, Luhn).
    pub siren: String,
    /// Kind (`commune`, `departement`, `region`, `cdg`…).
    pub kind: String,
    /// WebFinger account name (lowercase letters, digits, `-`, `_`, `.`).
    pub username: String,
}

/// The node as seen by its admins.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    /// Actor id.
    pub actor: String,
    /// Identity, if initialised.
    pub identity: Option<NodeIdentityBody>,
    /// Published keys.
    pub keys: Vec<KeyView>,
    /// Development mode (plain-http loopback peers accepted).
    pub allow_http_loopback_peers: bool,
}

/// # `GET /api/v1/node`
/// The node's identity and keys.
#[utoipa::path(get, path = "/api/v1/node", tag = "node",
    responses((status = 200, body = NodeView), (status = 401, body = Problem)))]
pub async fn get_node(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<NodeView>, AppError> {
    p.require(Role::Lecteur)?;
    node_view(&state).await.map(Json)
}

async fn node_view(state: &AppState) -> Result<NodeView, AppError> {
    let identity = match state.store().identity().await {
        Ok(i) => Some(NodeIdentityBody {
            name: i.name,
            siren: i.siren,
            kind: i.kind,
            username: i.username,
        }),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let actor = state.actor_id();
    let keys = state
        .store()
        .keys()
        .await?
        .into_iter()
        .map(|k| KeyView {
            id: format!("{actor}#{}", k.key_id),
            public_key_multibase: k.public_key_multibase,
            current: k.current,
            expires_at: k.expires_at,
        })
        .collect();
    Ok(NodeView {
        actor,
        identity,
        keys,
        allow_http_loopback_peers: state.allow_http_loopback_peers(),
    })
}

/// Validates an identity; French messages naming the field.
pub fn check_identity(body: &NodeIdentityBody) -> Result<NodeIdentity, AppError> {
    let mut errors = Vec::new();
    if body.name.trim().is_empty() {
        errors.push(FieldError {
            field: "name".into(),
            message: "le nom de la collectivité est obligatoire".into(),
        });
    }
    if let Err(e) = body.siren.parse::<passerelle_protocol::ids::Siren>() {
        errors.push(FieldError {
            field: "siren".into(),
            message: format!("SIREN invalide ({e}) : 9 chiffres, clé de Luhn valide"),
        });
    }
    if parse_kind(&body.kind).is_none() {
        errors.push(FieldError {
            field: "kind".into(),
            message: format!(
                "nature {:?} inconnue : par exemple commune, departement, region, cdg",
                body.kind
            ),
        });
    }
    let username_ok = !body.username.is_empty()
        && body.username.len() <= 64
        && body
            .username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !username_ok {
        errors.push(FieldError {
            field: "username".into(),
            message: "identifiant WebFinger invalide : lettres minuscules, chiffres, « - », « _ » ou « . » (64 au plus)".into(),
        });
    }
    if !errors.is_empty() {
        return Err(AppError::Validation {
            detail: "identité du nœud invalide".into(),
            errors,
        });
    }
    Ok(NodeIdentity {
        name: body.name.trim().to_owned(),
        siren: body.siren.clone(),
        kind: body.kind.clone(),
        username: body.username.clone(),
    })
}

/// # `PUT /api/v1/node`
/// Sets the node's identity (admin).
#[utoipa::path(put, path = "/api/v1/node", tag = "node", request_body = NodeIdentityBody,
    responses((status = 200, body = NodeView), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_node(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<NodeIdentityBody>,
) -> Result<Json<NodeView>, AppError> {
    p.require(Role::Admin)?;
    let identity = check_identity(&body)?;
    let mut audit = p.audit("node.identity", "node");
    audit.details = serde_json::json!({ "name": identity.name, "siren": identity.siren, "kind": identity.kind });
    state.store().set_identity(&identity, &audit).await?;
    node_view(&state).await.map(Json)
}

/// An API token (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Id.
    pub id: Uuid,
    /// Label.
    pub name: String,
    /// Role granted.
    pub role: Role,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// Last use.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<OffsetDateTime>,
    /// Revocation.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id,
            name: t.name,
            role: t.role,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// # `GET /api/v1/tokens`
/// API tokens (admin).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 403, body = Problem)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<TokenView>>, AppError> {
    p.require(Role::Admin)?;
    Ok(Json(
        state
            .store()
            .tokens()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Token creation request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Label (who or what uses it).
    pub name: String,
    /// Role granted.
    pub role: Role,
}

/// A new token, with its secret (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// The token.
    #[serde(flatten)]
    pub token: TokenView,
    /// The secret; store it now, it cannot be shown again.
    pub secret: String,
}

/// # `POST /api/v1/tokens`
/// Creates an API token (admin); the secret is in the response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 403, body = Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(req): AppJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    p.require(Role::Admin)?;
    let name = req.name.trim();
    if name.is_empty() || name == crate::store::BOOTSTRAP_TOKEN_NAME {
        return Err(AppError::Validation {
            detail: "jeton invalide".into(),
            errors: vec![FieldError {
                field: "name".into(),
                message: "le libellé du jeton est obligatoire et ne peut pas être « bootstrap » (réservé au premier démarrage)".into(),
            }],
        });
    }
    let (token, secret) =
        auth::create_token(state.store(), req.name.trim(), req.role, None, &p.actor).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token.into(),
            secret,
        }),
    ))
}

/// # `DELETE /api/v1/tokens/{id}`
/// Revokes an API token (admin).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Admin)?;
    state
        .store()
        .revoke_token(id, &p.audit("token.revoke", format!("token:{id}")))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging of the audit log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Return entries with a sequence number below this one.
    pub before: Option<i64>,
    /// Page size (1–500, default 100).
    pub limit: Option<u32>,
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Sequence number.
    pub seq: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// Details.
    pub details: serde_json::Value,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        Self {
            seq: e.seq,
            at: e.at,
            actor: e.record.actor,
            action: e.record.action,
            target: e.record.target,
            details: e.record.details,
        }
    }
}

/// # `GET /api/v1/audit`
/// The audit log, newest first (admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditView>), (status = 403, body = Problem)))]
pub async fn list_audit(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppQuery(q): AppQuery<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, AppError> {
    p.require(Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    Ok(Json(
        state
            .store()
            .audit_log(q.before, limit)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}
