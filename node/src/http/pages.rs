//! Public pages: the node's home page, one page per posting (HTML with schema.org
//! `JobPosting` JSON-LD for public postings; the signed document for `activity+json`
//! requests, to whoever may see it, §6.4), and an Atom feed of public postings. The
//! outbox cursor encoding lives here too; the outbox itself is in `federation.rs`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde_json::{Value, json};
use uuid::Uuid;

use super::discovery::ACTIVITY_JSON;
use super::error::{AppError, AppPath};
use crate::state::AppState;
use crate::store::{Posting, PostingStatus, StoreError};

/// Public routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(get_home))
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
/// A posting: its HTML page with `JobPosting` JSON-LD when it is public, or its signed
/// document when `application/activity+json` is asked for — to anyone when it is public,
/// to a signed requester the posting is addressed to otherwise (§6.4). A deleted posting
/// answers `410` with its `Tombstone`; anything else `404`.
pub async fn get_public_posting(
    State(state): State<AppState>,
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    AppPath(id): AppPath<Uuid>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let not_found = || AppError::NotFound("aucune offre publique à cette adresse".to_owned());
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let wants_json =
        accept.contains("application/activity+json") || accept.contains("application/ld+json");
    let posting = match state.store().posting(id).await {
        Ok(p) => p,
        Err(StoreError::NotFound { .. }) => {
            let object_id = crate::postings::posting_url(&state, id);
            if let Some((former, deleted)) = state.store().tombstone(&object_id).await? {
                let tombstone = json!({
                    "@context": passerelle_protocol::vocab::context(),
                    "id": object_id,
                    "type": "Tombstone",
                    "formerType": former,
                    "deleted": deleted.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                });
                let mut r = json_with_type(&tombstone, ACTIVITY_JSON);
                *r.status_mut() = axum::http::StatusCode::GONE;
                return Ok(r);
            }
            return Err(not_found());
        }
        Err(e) => return Err(e.into()),
    };
    if wants_json && posting.status != PostingStatus::Draft {
        if is_public(&posting) {
            return Ok(json_with_type(&posting.document, ACTIVITY_JSON));
        }
        let viewer = super::federation::viewer(&state, &method, &uri, &headers).await?;
        let audience = crate::federation::audience(&posting.document);
        if viewer.is_some()
            && state
                .store()
                .audience_allows(&audience, viewer.as_ref())
                .await?
        {
            return Ok(json_with_type(&posting.document, ACTIVITY_JSON));
        }
        return Err(not_found());
    }
    if !is_public(&posting) {
        return Err(not_found());
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
    let status = match posting.status {
        PostingStatus::Closed => "<p><strong>Offre clôturée.</strong></p>\n",
        PostingStatus::Filled => "<p><strong>Offre pourvue.</strong></p>\n",
        PostingStatus::Expired => {
            "<p><strong>Offre expirée : la date limite de candidature est passée.</strong></p>\n"
        }
        _ => "",
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
