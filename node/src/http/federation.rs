//! Federation endpoints (spec/protocol.md §2.6): the inbox (`POST /inbox`, also the shared
//! inbox), the outbox paged by an opaque cursor (a signed `GET` also sees what is addressed
//! to the requester, §9.2), activity ids, and the `followers`/`following` collections
//! (counts only). Checks live in `federation::inbox`; this module only adapts HTTP.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use passerelle_protocol::ids::ObjectId;
use passerelle_protocol::vocab::{
    self, Extra, ObjectRef, OrderedCollection, OrderedCollectionPage,
};
use serde::Deserialize;
use uuid::Uuid;

use super::discovery::ACTIVITY_JSON;
use super::error::{AppError, AppPath, AppQuery};
use super::pages::{decode_cursor, encode_cursor};
use crate::federation::error::ProtocolError;
use crate::federation::inbox::{self, InboxRequest};
use crate::state::AppState;
use crate::store::Viewer;

/// Largest outbox page (protocol §11: at most 100).
pub const OUTBOX_PAGE_SIZE: u32 = 100;

/// Federation routes.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/inbox",
            post(post_inbox).layer(DefaultBodyLimit::max(state.federation().body_limit())),
        )
        .route("/outbox", get(get_outbox))
        .route("/followers", get(get_followers))
        .route("/following", get(get_following))
        .route("/activities/{id}", get(get_activity))
}

fn json_with_type(value: &impl serde::Serialize, content_type: &'static str) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

fn internal(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("{what}: {e}"))
}

/// The absolute target URI of a request, rebuilt from the configured public base URL
/// (protocol §5.1), never from `Host` or forwarding headers.
pub fn target_uri(state: &AppState, uri: &axum::http::Uri) -> String {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{}{pq}", state.base_url())
}

fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(n, v)| {
            v.to_str()
                .ok()
                .map(|v| (n.as_str().to_owned(), v.to_owned()))
        })
        .collect()
}

/// The signed requester of a `GET`, if the request is signed (protocol §6.4): `None` for
/// an unsigned request; a refusal when the signature is present but does not verify.
///
/// # Errors
/// The protocol refusal of a bad signature.
pub async fn viewer(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<Option<Viewer>, AppError> {
    if !headers.contains_key("signature-input") && !headers.contains_key("signature") {
        return Ok(None);
    }
    let target = target_uri(state, uri);
    let pairs = header_pairs(headers);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let req = InboxRequest {
        method: method.as_str(),
        target_uri: &target,
        headers: &refs,
        body: &[],
    };
    let key = inbox::verify_transport(state.federation(), &req).await?;
    Ok(Some(Viewer {
        actor_id: key.actor.doc.id.to_string(),
        followers_url: state.federation().followers_url(),
    }))
}

/// # `POST /inbox`
/// Receives a signed activity: `202 Accepted` once it is verified and durably stored,
/// else a problem document with the protocol's code (§12).
pub async fn post_inbox(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let fed = state.federation();
    let body = match body {
        Ok(b) => b,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            fed.metrics().inbox("push", "body_too_large");
            return Err(ProtocolError::too_large(fed.body_limit()).into());
        }
        Err(rejection) => {
            return Err(ProtocolError::new(400, "json_invalid", rejection.body_text()).into());
        }
    };
    let target = target_uri(&state, &uri);
    let pairs = header_pairs(&headers);
    let refs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let req = InboxRequest {
        method: "POST",
        target_uri: &target,
        headers: &refs,
        body: &body,
    };
    inbox::receive(fed, &req).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Query of an outbox request.
#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    after: Option<String>,
}

/// # `GET /outbox`, `GET /outbox?after=CURSOR`
/// The collection (with `first`) or one page, oldest first: the public activities, and
/// for a signed request also those addressed to the requester (§9.2). Every page carries
/// `next`; an empty page means "caught up". Bad cursor: 400 `cursor_invalid`.
pub async fn get_outbox(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    AppQuery(q): AppQuery<OutboxQuery>,
) -> Result<Response, AppError> {
    let viewer = viewer(&state, &method, &uri, &headers).await?;
    let base = format!("{}/outbox", state.base_url());
    let outbox_id: ObjectId = base.parse().map_err(|e| internal("outbox id", e))?;
    let page_id = |seq: i64| -> Result<ObjectId, AppError> {
        format!("{base}?after={}", encode_cursor(seq))
            .parse()
            .map_err(|e| internal("page id", e))
    };
    let Some(cursor) = q.after else {
        let total = state.store().outbox_visible_len(viewer.as_ref()).await?;
        let collection = OrderedCollection {
            context: Some(vocab::context()),
            id: outbox_id,
            kind: Default::default(),
            total_items: u64::try_from(total).ok(),
            first: Some(ObjectRef::Id(page_id(0)?)),
            last: None,
            ordered_items: None,
            extra: Extra::new(),
        };
        return Ok(json_with_type(&collection, ACTIVITY_JSON));
    };
    let Some(after) = decode_cursor(&cursor) else {
        return Err(ProtocolError::new(
            400,
            "cursor_invalid",
            format!("cursor {cursor:?} is not one of ours; restart from {base} (its `first` page)"),
        )
        .into());
    };
    let items = state
        .store()
        .outbox_visible(after, OUTBOX_PAGE_SIZE, viewer.as_ref())
        .await?;
    let last = items.last().map_or(after, |i| i.seq);
    let page = OrderedCollectionPage {
        context: Some(vocab::context()),
        id: page_id(after)?,
        kind: Default::default(),
        part_of: Some(outbox_id),
        next: Some(page_id(last)?),
        prev: None,
        ordered_items: items.into_iter().map(|i| i.activity.document).collect(),
        extra: Extra::new(),
    };
    Ok(json_with_type(&page, ACTIVITY_JSON))
}

async fn count_collection(state: &AppState, path: &str, n: usize) -> Result<Response, AppError> {
    let id: ObjectId = format!("{}/{path}", state.base_url())
        .parse()
        .map_err(|e| internal("collection id", e))?;
    let collection = OrderedCollection {
        context: Some(vocab::context()),
        id,
        kind: Default::default(),
        total_items: u64::try_from(n).ok(),
        first: None,
        last: None,
        ordered_items: None,
        extra: Extra::new(),
    };
    Ok(json_with_type(&collection, ACTIVITY_JSON))
}

/// # `GET /followers`
/// Our partners (nodes whose `Follow` we accepted): the count only (§2.6).
pub async fn get_followers(State(state): State<AppState>) -> Result<Response, AppError> {
    let n = state
        .store()
        .partners()
        .await?
        .iter()
        .filter(|p| p.incoming == crate::store::PartnershipState::Accepted)
        .count();
    count_collection(&state, "followers", n).await
}

/// # `GET /following`
/// The nodes we follow: the count only.
pub async fn get_following(State(state): State<AppState>) -> Result<Response, AppError> {
    let n = state
        .store()
        .partners()
        .await?
        .iter()
        .filter(|p| p.outgoing == crate::store::PartnershipState::Accepted)
        .count();
    count_collection(&state, "following", n).await
}

/// # `GET /activities/{id}`
/// One of our activities, to whoever may see it (§6.4); `404` otherwise, so the existence
/// of non-public activities does not leak.
pub async fn get_activity(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    AppPath(id): AppPath<Uuid>,
) -> Result<Response, AppError> {
    let viewer = viewer(&state, &method, &uri, &headers).await?;
    let activity_id = format!("{}/activities/{id}", state.base_url());
    let not_found = || AppError::NotFound("aucune activité visible à cette adresse".to_owned());
    let Some(item) = state.store().outbox_item(&activity_id).await? else {
        return Err(not_found());
    };
    let audience = crate::federation::audience(&item.activity.document);
    if !state
        .store()
        .audience_allows(&audience, viewer.as_ref())
        .await?
    {
        return Err(not_found());
    }
    Ok(json_with_type(&item.activity.document, ACTIVITY_JSON))
}
