//! HTTP: the router and its layers. Only this module knows axum.
//!
//! Three audiences, three groups of routes: discovery and federation documents
//! (`discovery.rs`, public, machine-readable), the HR API (`api/`, JSON under `/api/v1`,
//! bearer tokens) and operations (`ops.rs`: health, readiness, metrics). Handlers are thin:
//! they extract, call the store or a domain function, and map the typed result.

pub mod api;
pub mod discovery;
pub mod error;
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
        .merge(api_router)
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.body_limit()))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.request_timeout()))
        .layer(CatchPanicLayer::new())
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

async fn not_found() -> error::AppError {
    error::AppError::NotFound("aucune ressource à cette adresse".to_owned())
}
