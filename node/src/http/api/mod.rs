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

/// JSON body extractor whose rejections use our problem format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct AppJson<T>(pub T);

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
