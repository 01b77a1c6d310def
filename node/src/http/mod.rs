//! HTTP: the router and its layers. Only this module knows axum.
//!
//! Three audiences, three groups of routes: discovery and federation documents
//! (`discovery.rs`, public, machine-readable; `federation.rs`: inbox, outbox, activities),
//! the HR API (`api/`, JSON under `/api/v1`, bearer tokens) and the HR web console
//! (`console/`, HTML under `/console`, session cookie), and operations (`ops.rs`: health,
//! readiness, metrics). Handlers are thin:
//! they extract, call the store or a domain function, and map the typed result.

pub mod api;
pub mod console;
pub mod discovery;
pub mod error;
pub mod federation;
pub mod limits;
pub mod metrics;
pub mod ops;
pub mod pages;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::state::AppState;

/// Header carrying the request id (generated when the client sends none).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Builds the node's router.
pub fn router(state: AppState) -> Router {
    let (api_router, openapi) = api::routes().split_for_parts();
    let openapi = std::sync::Arc::new(openapi);
    Router::new()
        .route("/healthz", get(ops::get_healthz))
        .route("/readyz", get(ops::get_readyz))
        .route("/metrics", get(ops::get_metrics))
        .merge(discovery::routes())
        .merge(pages::routes())
        .merge(federation::routes(&state))
        .merge(console::routes(state.clone()))
        .merge(api_router)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(refuse_nul_in_uri))
        .layer(DefaultBodyLimit::max(state.body_limit()))
        .layer(middleware::from_fn_with_state(state.clone(), limits::rate_limit))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.request_timeout()))
        .layer(CatchPanicLayer::new())
        .layer(middleware::map_response(problem_for_bare_errors))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("", MatchedPath::as_str)
                    .to_owned();
                let id = req
                    .headers()
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), route, request_id = id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
        .with_state(state)
}

/// The OpenAPI document of the HR API, as served at `/api/v1/openapi.json`.
pub fn openapi_json() -> String {
    let doc = api::routes().into_openapi();
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// Mints request ids (UUIDv7).
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        axum::http::HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state
        .metrics()
        .observe(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// Gives a problem document to the bare error responses made by layers (request timeout,
/// caught panic), so every error a client sees has the same shape.
pub async fn problem_for_bare_errors(response: Response) -> Response {
    let is_problem = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(error::PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    match response.status() {
        StatusCode::REQUEST_TIMEOUT => {
            axum::response::IntoResponse::into_response(error::AppError::Timeout(
                "la requête a dépassé le délai autorisé (server.request_timeout_secs) ; réessayez"
                    .to_owned(),
            ))
        }
        StatusCode::INTERNAL_SERVER_ERROR => axum::response::IntoResponse::into_response(
            error::AppError::Internal("a layer answered 500 (caught panic)".to_owned()),
        ),
        _ => response,
    }
}

/// Refuses a request whose path or query string holds U+0000 (`%00`, the only way a URI
/// carries it) with `400 uri_invalid` (spec §12), before any handler: nothing read from an address
/// may reach the database with it (PostgreSQL text cannot hold it, and a query string
/// bound as a search term answered 500). Messages, API bodies and console forms are
/// refused at their own edges (`protocol::vocab::check_no_nul`, `AppJson`,
/// `console::Form::has_nul`).
async fn refuse_nul_in_uri(req: Request, next: Next) -> Response {
    let nul = req
        .uri()
        .path_and_query()
        .is_some_and(|pq| pq.as_str().contains("%00"));
    if nul {
        return axum::response::IntoResponse::into_response(error::AppError::bad_request(
            "uri_invalid",
            "adresse refusée : le caractère nul (U+0000, %00) n'est admis ni dans le chemin ni dans les paramètres",
        ));
    }
    next.run(req).await
}

async fn not_found() -> error::AppError {
    error::AppError::NotFound("aucune ressource à cette adresse".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;

    #[tokio::test]
    async fn bare_layer_errors_become_problems() {
        for (status, code) in [
            (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        ] {
            let r = problem_for_bare_errors(status.into_response()).await;
            assert_eq!(r.status(), status);
            assert_eq!(r.headers()["content-type"], error::PROBLEM_JSON);
            let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            let p: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(p["code"], code);
        }
        // Other responses pass through untouched.
        let r = problem_for_bare_errors(StatusCode::NO_CONTENT.into_response()).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
}
