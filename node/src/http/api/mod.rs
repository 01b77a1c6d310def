//! The HR API under `/api/v1` (JSON). Routes are registered through `utoipa_axum`, so a
//! route cannot exist without its OpenAPI description (`/api/v1/openapi.json`, committed
//! as `spec/openapi.json`).
//!
//! Authentication: `Authorization: Bearer <token>` with an API token or a session token
//! from `POST /api/v1/session`. Roles: `lecteur` reads, `rh` also writes postings and
//! agents, relays partners' postings and conducts *mises à disposition*, `admin` also
//! manages tokens, the node identity and membership, partnerships, blocks and circles,
//! and reads the audit log.

mod admin;
pub use admin::{NodeIdentityBody, check_identity};
mod agents;
mod exchanges;
pub(crate) mod federation;
pub mod feed;
pub(crate) mod mad;
mod metiers;
mod postings;
pub(crate) mod profiles;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppError;
use crate::auth::{self, Principal};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Passerelle HR API",
        description = "API JSON d'un nœud Passerelle pour les services RH : offres, fil des offres locales et partenaires (recherche, facettes, recherches enregistrées, exports), agents, partenaires, journal d'audit. Erreurs au format RFC 9457 (application/problem+json) avec un `code` stable.",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2")
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(super::error::Problem, super::error::FieldError))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The HR API routes with their OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(admin::post_session))
        .routes(routes!(admin::get_me))
        .routes(routes!(admin::get_node, admin::put_node))
        .routes(routes!(admin::list_tokens, admin::create_token))
        .routes(routes!(admin::revoke_token))
        .routes(routes!(
            federation::list_partners,
            federation::create_partner
        ))
        .routes(routes!(federation::get_partner))
        .routes(routes!(federation::accept_partner))
        .routes(routes!(federation::reject_partner))
        .routes(routes!(federation::follow_partner))
        .routes(routes!(federation::unfollow_partner))
        .routes(routes!(federation::sync_partner))
        .routes(routes!(federation::retry_partner))
        .routes(routes!(federation::get_policy, federation::put_policy))
        .routes(routes!(
            federation::list_blocks,
            federation::create_block,
            federation::delete_block
        ))
        .routes(routes!(federation::list_circles, federation::create_circle))
        .routes(routes!(federation::put_circle, federation::delete_circle))
        .routes(routes!(federation::list_deliveries))
        .routes(routes!(federation::list_dead))
        .routes(routes!(federation::replay_dead))
        .routes(routes!(federation::create_relay))
        .routes(routes!(federation::list_inbox))
        .routes(routes!(admin::list_audit))
        .routes(routes!(agents::list_agents, agents::create_agent))
        .routes(routes!(
            agents::get_agent,
            agents::put_agent,
            agents::delete_agent
        ))
        .routes(routes!(postings::list_postings, postings::create_posting))
        .routes(routes!(
            postings::get_posting,
            postings::put_posting,
            postings::delete_posting
        ))
        .routes(routes!(postings::publish_posting))
        .routes(routes!(postings::close_posting))
        .routes(routes!(feed::get_feed))
        .routes(routes!(feed::get_feed_csv))
        .routes(routes!(feed::get_feed_atom))
        .routes(routes!(feed::get_feed_ics))
        .routes(routes!(
            feed::list_saved_searches,
            feed::create_saved_search
        ))
        .routes(routes!(feed::delete_saved_search))
        .routes(routes!(feed::get_new_matches))
        .routes(routes!(feed::post_seen))
        .routes(routes!(postings::fill_posting))
        .routes(routes!(metiers::list_metiers))
        .routes(routes!(mad::list_mad_requests, mad::create_mad_request))
        .routes(routes!(mad::get_mad_request, mad::put_mad_request))
        .routes(routes!(mad::fire_transition))
        .routes(routes!(mad::put_mad_agent))
        .routes(routes!(mad::sign_convention))
        .routes(routes!(mad::record_amendment_agreement))
        .routes(routes!(mad::get_convention))
        .routes(routes!(mad::get_convention_html))
        .routes(routes!(mad::list_deadlines))
        .routes(routes!(mad::get_membership, mad::put_membership))
        .routes(routes!(profiles::list_profiles, profiles::create_profile))
        .routes(routes!(
            profiles::get_profile,
            profiles::put_profile,
            profiles::delete_profile
        ))
        .routes(routes!(profiles::list_remote_profiles))
        .routes(routes!(profiles::match_postings))
        .routes(routes!(profiles::match_profiles))
        .routes(routes!(exchanges::list_swaps, exchanges::propose_swap))
        .routes(routes!(exchanges::swap_candidates))
        .routes(routes!(exchanges::get_swap))
        .routes(routes!(exchanges::answer_swap))
        .routes(routes!(exchanges::report_visit))
        .routes(routes!(
            exchanges::list_registrations,
            exchanges::create_registration
        ))
        .routes(routes!(exchanges::cancel_registration))
        .routes(routes!(exchanges::get_quotas, exchanges::put_quotas))
}

/// The authenticated caller of an API request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "authentification requise : envoyez l'en-tête « Authorization: Bearer <jeton> »".to_owned(),
                )
            })?;
        let Some(secret) = value.strip_prefix("Bearer ").map(str::trim) else {
            return Err(AppError::Unauthorized(
                "schéma d'authentification non pris en charge : utilisez « Bearer <jeton> »"
                    .to_owned(),
            ));
        };
        Ok(Caller(
            auth::authenticate_token(state.store(), secret).await?,
        ))
    }
}

/// JSON body extractor whose rejections use our problem format. Like `axum::Json` (same
/// content types, body limit and errors), and it refuses the character U+0000 in any
/// string of the body: PostgreSQL's text cannot hold it, so such a body would otherwise
/// be accepted on SQLite and fail with a 500 on PostgreSQL.
pub struct AppJson<T>(pub T);

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, AppError> {
        if !json_content_type(req.headers()) {
            return Err(AppError::bad_request(
                "unsupported_media_type",
                "corps de requête refusé : Expected request with `Content-Type: application/json`",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::TooLarge(
                        "corps de requête trop volumineux (limite server.body_limit_bytes)"
                            .to_owned(),
                    )
                } else {
                    AppError::bad_request(
                        "invalid_body",
                        format!("corps de requête refusé : {}", rejection.body_text()),
                    )
                }
            })?;
        if let Some(offset) = escaped_nul_at(&bytes) {
            return Err(AppError::bad_request(
                "invalid_body",
                format!(
                    "corps de requête refusé : le caractère U+0000 (\\u0000, octet {offset}) n'est accepté dans aucun champ"
                ),
            ));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        Ok(AppJson(value))
    }
}

/// Whether `Content-Type` is JSON (`application/json` or `application/*+json`), as
/// `axum::Json` requires.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|sub| sub == "json" || sub.ends_with("+json"))
}

/// The byte offset of the first `\u0000` escape in a JSON text (the only way JSON carries
/// U+0000). Exact for valid JSON, where every backslash starts an escape inside a string:
/// each escape is skipped whole, so `\\u0000` (a backslash, then `u0000`) is not one.
fn escaped_nul_at(json: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000".as_slice())
            {
                return Some(i);
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    None
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::TooLarge(
                "corps de requête trop volumineux (limite server.body_limit_bytes)".to_owned(),
            );
        }
        let code = match rejection {
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            JsonRejection::JsonSyntaxError(_) => "invalid_json",
            JsonRejection::JsonDataError(_) => "invalid_body",
            _ => "invalid_body",
        };
        AppError::bad_request(
            code,
            format!("corps de requête refusé : {}", rejection.body_text()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_nul_is_found_only_where_json_carries_u0000() {
        assert_eq!(escaped_nul_at(br#"{"name":"a\u0000b"}"#), Some(10));
        assert_eq!(escaped_nul_at(br#"{"a\u0000":1}"#), Some(3));
        // An escaped backslash followed by `u0000` is text, not the character.
        assert_eq!(escaped_nul_at(br#"{"name":"a\\u0000b"}"#), None);
        assert_eq!(escaped_nul_at(br#"{"name":"a\\\u0000"}"#), Some(12));
        assert_eq!(escaped_nul_at(br#"{"name":"\u0001 \u00000"}"#), Some(16));
        assert_eq!(escaped_nul_at(br#"{"name":"\"u0000"}"#), None);
        assert_eq!(escaped_nul_at(b"\\"), None);
    }

    #[test]
    fn json_content_types_are_those_of_axum_json() {
        let with = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            json_content_type(&h)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/problem+json"));
        assert!(!with("text/json"));
        assert!(!with("application/jsonx"));
        assert!(!json_content_type(&axum::http::HeaderMap::new()));
    }
}
