//! Public pages: the node's home page, the outbox (`OrderedCollection` paged by an opaque
//! cursor), one HTML page per public posting with schema.org `JobPosting` JSON-LD, and an
//! Atom feed of public postings. Only public objects are served here; what is addressed
//! to partners is served to signed requests (next issue).

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use passerelle_protocol::ids::ObjectId;
use passerelle_protocol::vocab::{
    self, Extra, ObjectRef, OrderedCollection, OrderedCollectionPage,
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::discovery::ACTIVITY_JSON;
use super::error::{AppError, AppPath, AppQuery};
use crate::state::AppState;
use crate::store::{Posting, PostingStatus, StoreError};

/// Largest outbox page (protocol §11).
pub const OUTBOX_PAGE_SIZE: u32 = 100;

/// Public routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(get_home))
        .route("/outbox", get(get_outbox))
        .route("/postings/{id}", get(get_public_posting))
        .route("/feed.atom", get(get_feed))
}

/// Encodes an outbox sequence number as an opaque cursor (11 base64url characters).
pub fn encode_cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(seq.to_be_bytes())
}

/// Decodes a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Option<i64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let arr: [u8; 8] = bytes.try_into().ok()?;
    let seq = i64::from_be_bytes(arr);
    (seq >= 0).then_some(seq)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
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

/// # `GET /`
/// Home page of the node: who it is and where its API and documents are.
pub async fn get_home(State(state): State<AppState>) -> Result<Response, AppError> {
    let base = escape(state.base_url());
    let who = match state.store().identity().await {
        Ok(i) => format!("{} (SIREN {})", escape(&i.name), escape(&i.siren)),
        Err(StoreError::NotFound { .. }) => {
            "nœud non initialisé — lancez <code>passerelle init</code>".to_owned()
        }
        Err(e) => return Err(e.into()),
    };
    Ok(html(format!(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Passerelle</title></head><body>\n\
         <h1>Passerelle</h1>\n<p>{who}</p>\n<ul>\n\
         <li><a href=\"{base}/api/v1/openapi.json\">API RH (OpenAPI)</a></li>\n\
         <li><a href=\"{base}/feed.atom\">Offres publiques (Atom)</a></li>\n\
         <li><a href=\"{base}/actor\">Acteur du nœud</a></li>\n</ul>\n</body></html>\n"
    )))
}

/// Query of an outbox request.
#[derive(Debug, Deserialize)]
pub struct OutboxQuery {
    after: Option<String>,
}

/// # `GET /outbox`, `GET /outbox?after=CURSOR`
/// The collection (with `first`) or one page of public activities, oldest first; every
/// page carries `next`, an empty page meaning "caught up". Bad cursor: 400
/// `cursor_invalid`.
pub async fn get_outbox(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<OutboxQuery>,
) -> Result<Response, AppError> {
    let base = format!("{}/outbox", state.base_url());
    let outbox_id: ObjectId = base.parse().map_err(|e| internal("outbox id", e))?;
    let page_id = |seq: i64| -> Result<ObjectId, AppError> {
        format!("{base}?after={}", encode_cursor(seq))
            .parse()
            .map_err(|e| internal("page id", e))
    };
    let Some(cursor) = q.after else {
        let total = state.store().outbox_len(true).await?;
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
        return Err(AppError::bad_request(
            "cursor_invalid",
            format!("curseur {cursor:?} invalide : reprenez depuis {base} (lien « first »)"),
        ));
    };
    let items = state
        .store()
        .outbox(Some(after), None, OUTBOX_PAGE_SIZE, true)
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

/// A posting is shown publicly once published (or closed) with `visibility: public`.
fn is_public(p: &Posting) -> bool {
    p.status != PostingStatus::Draft
        && p.document.get("visibility").and_then(Value::as_str) == Some("public")
}

fn text(doc: &Value, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// schema.org `JobPosting` of a posting (for search engines and job boards).
pub fn job_posting_ld(doc: &Value, employer: &str, siren: &str) -> Value {
    let description = [
        text(doc, "summary"),
        text(doc, "missions"),
        text(doc, "profile"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("\n\n");
    let mut ld = json!({
        "@context": "https://schema.org",
        "@type": "JobPosting",
        "identifier": { "@type": "PropertyValue", "name": "Passerelle", "value": doc.get("id") },
        "url": doc.get("id"),
        "title": doc.get("name"),
        "description": description,
        "datePosted": doc.get("published").and_then(Value::as_str).map(|s| s.get(..10).unwrap_or(s)),
        "hiringOrganization": {
            "@type": "Organization",
            "name": employer,
            "identifier": siren,
        },
    });
    if let Some(until) = doc.pointer("/dates/applyUntil") {
        ld["validThrough"] = until.clone();
    }
    if let Some(start) = doc.pointer("/dates/start") {
        ld["jobStartDate"] = start.clone();
    }
    if let Some(locations) = doc.get("locations").and_then(Value::as_array) {
        ld["jobLocation"] = Value::Array(
            locations
                .iter()
                .map(|l| {
                    json!({
                        "@type": "Place",
                        "address": {
                            "@type": "PostalAddress",
                            "streetAddress": l.get("address"),
                            "addressCountry": "FR",
                        }
                    })
                })
                .collect(),
        );
    }
    if doc.pointer("/workingTime/kind").and_then(Value::as_str) == Some("complet") {
        ld["employmentType"] = json!("FULL_TIME");
    }
    ld
}

/// # `GET /postings/{id}`
/// A public posting: its HTML page (with `JobPosting` JSON-LD), or its signed document
/// when `application/activity+json` is asked for. Non-public postings are not found here.
pub async fn get_public_posting(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let not_found = || AppError::NotFound("aucune offre publique à cette adresse".to_owned());
    let posting = match state.store().posting(id).await {
        Ok(p) if is_public(&p) => p,
        Ok(_) | Err(StoreError::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("application/activity+json") || accept.contains("application/ld+json") {
        return Ok(json_with_type(&posting.document, ACTIVITY_JSON));
    }
    let identity = state.store().identity().await?;
    let doc = &posting.document;
    let ld = job_posting_ld(doc, &identity.name, &identity.siren);
    // `</` cannot end the script element from inside a JSON string.
    let ld_text = serde_json::to_string_pretty(&ld)
        .unwrap_or_default()
        .replace("</", "<\\/");
    let title = escape(&text(doc, "name").unwrap_or_default());
    let mut body = String::new();
    for (label, key) in [
        ("Résumé", "summary"),
        ("Missions", "missions"),
        ("Profil", "profile"),
    ] {
        if let Some(t) = text(doc, key) {
            body.push_str(&format!(
                "<h2>{label}</h2>\n<p>{}</p>\n",
                escape(&t).replace('\n', "<br>")
            ));
        }
    }
    let status = if posting.status == PostingStatus::Closed {
        "<p><strong>Offre clôturée.</strong></p>\n"
    } else {
        ""
    };
    Ok(html(format!(
        "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{title}</title>\n\
         <link rel=\"alternate\" type=\"application/activity+json\" href=\"{href}\">\n\
         <script type=\"application/ld+json\">\n{ld_text}\n</script>\n</head><body>\n\
         <h1>{title}</h1>\n<p>{employer}</p>\n{status}{body}</body></html>\n",
        href = escape(&super::super::postings::posting_url(&state, id)),
        employer = escape(&identity.name),
    )))
}

/// # `GET /feed.atom`
/// Atom feed (RFC 4287) of the public postings, most recently changed first.
pub async fn get_feed(State(state): State<AppState>) -> Result<Response, AppError> {
    let base = state.base_url().to_owned();
    let name = match state.store().identity().await {
        Ok(i) => i.name,
        Err(StoreError::NotFound { .. }) => "Passerelle".to_owned(),
        Err(e) => return Err(e.into()),
    };
    let postings: Vec<Posting> = state
        .store()
        .postings(None)
        .await?
        .into_iter()
        .filter(is_public)
        .collect();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    let updated = postings.first().map_or_else(
        || fmt(time::OffsetDateTime::UNIX_EPOCH),
        |p| fmt(p.updated_at),
    );
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <id>{b}/feed.atom</id>\n<title>Offres de {n}</title>\n<updated>{updated}</updated>\n\
         <link rel=\"self\" href=\"{b}/feed.atom\"/>\n<author><name>{n}</name></author>\n",
        b = escape(&base),
        n = escape(&name),
    );
    for p in &postings {
        let url = escape(&format!("{base}/postings/{}", p.id));
        out.push_str(&format!(
            "<entry>\n<id>{url}</id>\n<title>{}</title>\n<updated>{}</updated>\n<link rel=\"alternate\" type=\"text/html\" href=\"{url}\"/>\n<summary>{}</summary>\n</entry>\n",
            escape(&text(&p.document, "name").unwrap_or_default()),
            fmt(p.updated_at),
            escape(&text(&p.document, "summary").unwrap_or_default()),
        ));
    }
    out.push_str("</feed>\n");
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert_eq!(encode_cursor(0), "AAAAAAAAAAA");
        for seq in [0, 1, 5, 1 << 40, i64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(seq)), Some(seq));
        }
        for bad in ["", "AAAA", "!!!!!!!!!!!", "AAAAAAAAAAAAAAA", "gAAAAAAAAAA"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
