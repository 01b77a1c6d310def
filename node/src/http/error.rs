//! [`AppError`]: every error a handler returns, mapped in one place to an RFC 9457
//! `application/problem+json` response with a stable snake_case `code`.
//!
//! Internal failures are logged with their cause and sent as a generic 500: nothing about
//! the database or the code reaches a client. Client errors (4xx) are final for partners'
//! delivery workers; only 5xx and 503 invite a retry.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::store::StoreError;

/// Media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Errors of the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The request is malformed; `code` names the rule, `detail` the field and the fix.
    #[error("{detail}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Explanation (French when shown to HR users).
        detail: String,
    },
    /// The request body failed validation.
    #[error("{detail}")]
    Validation {
        /// Summary.
        detail: String,
        /// One message per problem, naming the field.
        errors: Vec<FieldError>,
    },
    /// No or bad credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials are valid but the role is too low.
    #[error("{0}")]
    Forbidden(String),
    /// The resource does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The request body exceeds `server.body_limit_bytes`.
    #[error("{0}")]
    TooLarge(String),
    /// Handling took longer than `server.request_timeout_secs`.
    #[error("{0}")]
    Timeout(String),
    /// The node is not ready (database down, migrations pending).
    #[error("{0}")]
    Unavailable(String),
    /// A refusal of the federation protocol (spec/protocol.md §12), with its own status
    /// and code.
    #[error("{}", .0.detail)]
    Protocol(crate::federation::error::ProtocolError),
    /// A bug or an infrastructure failure; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One validation problem.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// JSON pointer or field name.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Problem type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation of this occurrence.
    pub detail: String,
    /// Stable, snake_case machine code.
    pub code: String,
    /// Validation problems, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl AppError {
    /// HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Protocol(p) => {
                StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest { code, .. } => code,
            AppError::Validation { .. } => "validation_failed",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::TooLarge(_) => "payload_too_large",
            AppError::Timeout(_) => "request_timeout",
            AppError::Unavailable(_) => "unavailable",
            AppError::Protocol(p) => p.code,
            AppError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            AppError::BadRequest { .. } => "Requête invalide",
            AppError::Validation { .. } => "Données invalides",
            AppError::Unauthorized(_) => "Authentification requise",
            AppError::Forbidden(_) => "Accès refusé",
            AppError::NotFound(_) => "Introuvable",
            AppError::Conflict(_) => "Conflit",
            AppError::TooLarge(_) => "Requête trop volumineuse",
            AppError::Timeout(_) => "Délai dépassé",
            AppError::Unavailable(_) => "Service indisponible",
            AppError::Protocol(p) => protocol_title(p.code),
            AppError::Internal(_) => "Erreur interne",
        }
    }

    /// Shorthand for [`AppError::BadRequest`].
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        AppError::BadRequest {
            code,
            detail: detail.into(),
        }
    }

    /// The problem document sent to the client.
    pub fn problem(&self) -> Problem {
        let (detail, errors) = match self {
            AppError::Internal(_) => (
                "Une erreur interne est survenue ; elle a été journalisée. Réessayez plus tard ou contactez l'administrateur du nœud.".to_owned(),
                Vec::new(),
            ),
            AppError::Validation { detail, errors } => (detail.clone(), errors.clone()),
            AppError::Protocol(p) => (
                p.detail.clone(),
                p.errors
                    .iter()
                    .map(|(field, message)| FieldError {
                        field: field.clone(),
                        message: message.clone(),
                    })
                    .collect(),
            ),
            other => (other.to_string(), Vec::new()),
        };
        Problem {
            kind: format!("https://w3id.org/passerelle/problems#{}", self.code()),
            title: self.title().to_owned(),
            status: self.status().as_u16(),
            detail,
            code: self.code().to_owned(),
            errors,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(cause) = &self {
            tracing::error!(error = %cause, "internal error");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let AppError::Protocol(p) = &self {
            if status == StatusCode::UNAUTHORIZED {
                // A sender whose clock is off can see it (protocol §5.1).
                if let Ok(date) = HeaderValue::from_str(&http_date(time::OffsetDateTime::now_utc()))
                {
                    response.headers_mut().insert(header::DATE, date);
                }
            }
            let retry_after = p.retry_after.or((p.status == 503).then_some(60));
            if let Some(secs) = retry_after
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        } else if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"passerelle\""),
            );
        }
        response
    }
}

/// An IMF-fixdate (RFC 9110 §5.6.7), e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// French titles of the protocol's problem codes (§12), for HR consoles.
fn protocol_title(code: &str) -> &'static str {
    match code {
        "json_invalid" | "json_too_deep" => "Document JSON invalide",
        "body_too_large" => "Requête trop volumineuse",
        "unsupported_media_type" => "Type de contenu non pris en charge",
        "digest_missing" | "digest_invalid" | "digest_mismatch" => {
            "Empreinte du contenu incorrecte"
        }
        "signature_missing"
        | "signature_invalid"
        | "signature_expired"
        | "signature_component_missing"
        | "signature_algorithm_unsupported" => "Signature HTTP refusée",
        "key_unknown" | "key_expired" | "key_revoked" | "key_actor_mismatch" => {
            "Clé de signature refusée"
        }
        "key_fetch_failed" => "Acteur de l'émetteur injoignable",
        "proof_missing" | "proof_invalid" | "proof_unsupported" | "proof_signer_mismatch" => {
            "Preuve d'intégrité refusée"
        }
        "unknown_type" => "Type inconnu",
        "validation_failed" => "Message invalide",
        "id_invalid" => "Identifiant invalide",
        "origin_mismatch" => "Origine incohérente",
        "addressing_forbidden" => "Adressage interdit",
        "actor_blocked" => "Nœud bloqué",
        "not_a_partner" => "Nœud non partenaire",
        "activity_id_reused" => "Identifiant d'activité réutilisé",
        "version_conflict" => "Conflit de version",
        "mad_transition_refused" => "Transition de mise à disposition refusée",
        "cursor_invalid" => "Curseur invalide",
        "rate_limited" => "Trop de requêtes",
        "internal_error" => "Erreur interne",
        _ => "Requête refusée",
    }
}

impl From<crate::federation::error::ProtocolError> for AppError {
    fn from(e: crate::federation::error::ProtocolError) -> Self {
        AppError::Protocol(e)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what } => AppError::NotFound(format!("introuvable : {what}")),
            StoreError::Conflict { what } => AppError::Conflict(format!("conflit : {what}")),
            other => AppError::Internal(format!("{other:#}")),
        }
    }
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadCredentials | AuthError::BadToken => {
                AppError::Unauthorized(e.to_string())
            }
            AuthError::Forbidden { .. } => AppError::Forbidden(e.to_string()),
            AuthError::WeakPassword => AppError::bad_request("weak_password", e.to_string()),
            AuthError::Store(s) => s.into(),
            AuthError::Hash(h) => AppError::Internal(h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak() {
        let e = AppError::Internal("password authentication failed for user postgres".into());
        let p = e.problem();
        assert_eq!(p.status, 500);
        assert_eq!(p.code, "internal_error");
        assert!(!p.detail.contains("postgres"));
    }

    #[test]
    fn store_errors_map_to_statuses() {
        let nf: AppError = StoreError::NotFound {
            what: "agent x".into(),
        }
        .into();
        assert_eq!(nf.status(), StatusCode::NOT_FOUND);
        let c: AppError = StoreError::Conflict { what: "dup".into() }.into();
        assert_eq!((c.status(), c.code()), (StatusCode::CONFLICT, "conflict"));
    }
}

/// `Path` extractor whose rejections use the problem format.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct AppPath<T>(pub T);

/// `Query` extractor whose rejections use the problem format.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct AppQuery<T>(pub T);

impl From<axum::extract::rejection::PathRejection> for AppError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        AppError::bad_request(
            "invalid_path",
            format!("adresse invalide : {}", rejection.body_text()),
        )
    }
}

impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        AppError::bad_request(
            "invalid_query",
            format!(
                "paramètres de requête invalides : {}",
                rejection.body_text()
            ),
        )
    }
}
