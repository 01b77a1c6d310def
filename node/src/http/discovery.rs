//! Discovery documents: the node actor, WebFinger (RFC 7033), NodeInfo 2.1, host-meta.
//! Every document is built from `passerelle_protocol::vocab` types.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use passerelle_protocol::ids::{ActorId, KeyId, ObjectId, Siren};
use passerelle_protocol::keys::PublicKey;
use passerelle_protocol::vocab::{
    self, Collectivite, Endpoints, Extra, Jrd, Multikey, NodeInfo, NodeInfoLinks, NodeInfoUsage,
    NodeInfoUsers, OrganisationKind, Organization, Versant,
};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_http::cors::CorsLayer;

use super::error::{AppError, AppQuery};
use crate::state::AppState;
use crate::store::{NodeIdentity, StoreError};

/// Days an expired key stays listed in the actor document (protocol §3.2: at least 400).
pub const KEY_LISTING_DAYS: i64 = 400;

/// Media type of the actor document.
pub const ACTIVITY_JSON: &str = "application/activity+json";
/// Media type of WebFinger responses.
pub const JRD_JSON: &str = "application/jrd+json";
/// Media type of the NodeInfo 2.1 document.
pub const NODEINFO_JSON: &str =
    "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.1#\"";

/// Discovery routes; all are public and allow cross-origin reads.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/actor", get(get_actor))
        .route("/.well-known/webfinger", get(get_webfinger))
        .route("/.well-known/nodeinfo", get(get_nodeinfo_links))
        .route("/nodeinfo/2.1", get(get_nodeinfo))
        .route("/.well-known/host-meta", get(get_host_meta))
        .layer(CorsLayer::permissive())
}

fn with_type(value: &impl serde::Serialize, content_type: &'static str) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// The node's identity, or 503 with the fix while the node is not initialised.
async fn identity(state: &AppState) -> Result<NodeIdentity, AppError> {
    match state.store().identity().await {
        Ok(id) => Ok(id),
        Err(StoreError::NotFound { .. }) => Err(AppError::Unavailable(
            "le nœud n'est pas encore initialisé : lancez `passerelle init` ou renseignez l'identité via PUT /api/v1/node"
                .to_owned(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Parses the stored organisation kind (snake_case wire value).
pub fn parse_kind(kind: &str) -> Option<OrganisationKind> {
    serde_json::from_value(serde_json::Value::String(kind.to_owned())).ok()
}

fn versant_of(kind: OrganisationKind) -> Versant {
    match kind {
        OrganisationKind::EtatAdministration | OrganisationKind::EtatEtablissement => Versant::Fpe,
        OrganisationKind::FphEtablissement => Versant::Fph,
        _ => Versant::Fpt,
    }
}

fn internal(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("{what}: {e}"))
}

/// Builds the node's actor document from its identity and published keys.
pub async fn actor_document(state: &AppState) -> Result<Organization, AppError> {
    let identity = identity(state).await?;
    let base = state.base_url();
    let actor_id: ActorId = state
        .actor_id()
        .parse()
        .map_err(|e| internal("actor id", e))?;
    let object = |path: &str| -> Result<ObjectId, AppError> {
        format!("{base}/{path}")
            .parse()
            .map_err(|e| internal("endpoint id", e))
    };
    let now = OffsetDateTime::now_utc();
    let mut assertion_method = Vec::new();
    for key in state.store().keys().await? {
        // An expired key stays listed (with its expiry) for 400 days, so that proofs made
        // before the rotation still verify when relayed, refetched or audited (§3.2).
        if key
            .expires_at
            .is_some_and(|e| e + time::Duration::days(KEY_LISTING_DAYS) <= now)
        {
            continue;
        }
        let id: KeyId = format!("{actor_id}#{}", key.key_id)
            .parse()
            .map_err(|e| internal("key id", e))?;
        let public = PublicKey::from_multikey(&key.public_key_multibase)
            .map_err(|e| internal("stored key", e))?;
        let mut multikey = Multikey::new(id, &public);
        multikey.expires = key.expires_at;
        if let Some(revoked) = key.revoked_at {
            multikey.extra.insert(
                "revoked".to_owned(),
                serde_json::Value::String(
                    revoked
                        .replace_nanosecond(0)
                        .unwrap_or(revoked)
                        .format(&time::format_description::well_known::Rfc3339)
                        .map_err(|e| internal("revocation date", e))?,
                ),
            );
        }
        assertion_method.push(multikey);
    }
    let kind = parse_kind(&identity.kind).ok_or_else(|| internal("stored kind", &identity.kind))?;
    let siren: Siren = identity
        .siren
        .parse()
        .map_err(|e| internal("stored SIREN", e))?;
    // Membership declared for the MAD rules (PUT /api/v1/node/membership).
    let declared = |v: Option<String>| v.and_then(|s| s.parse::<Siren>().ok());
    let epci_siren = declared(state.store().setting(crate::mobility::EPCI_SETTING).await?);
    let attached_to_siren = declared(
        state
            .store()
            .setting(crate::mobility::ATTACHED_SETTING)
            .await?,
    );
    Ok(Organization {
        context: Some(vocab::context()),
        id: actor_id,
        kind: Default::default(),
        preferred_username: identity.username.clone(),
        name: identity.name.clone(),
        summary: None,
        inbox: object("inbox")?,
        outbox: object("outbox")?,
        followers: object("followers")?,
        following: object("following")?,
        endpoints: Endpoints {
            shared_inbox: object("inbox")?,
            extra: Extra::new(),
        },
        assertion_method,
        collectivite: Collectivite {
            siren,
            kind,
            versant: versant_of(kind),
            sirets: Vec::new(),
            categorie_juridique: None,
            commune: None,
            departement: None,
            region: None,
            epci_siren,
            attached_to_siren,
            extra: Extra::new(),
        },
        protocol_version: passerelle_protocol::PROTOCOL_VERSION.to_owned(),
        published: None,
        updated: None,
        proof: None,
        extra: Extra::new(),
    })
}

/// # `GET /actor`
/// The node's `Organization` actor (`application/activity+json`).
pub async fn get_actor(State(state): State<AppState>) -> Result<Response, AppError> {
    let actor = actor_document(&state).await?;
    Ok(with_type(&actor, ACTIVITY_JSON))
}

/// The WebFinger domain: host and, when not the default, port of the base URL.
fn acct_domain(base_url: &str) -> String {
    match url::Url::parse(base_url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => String::new(),
        },
        Err(_) => String::new(),
    }
}

/// Query of a WebFinger request.
#[derive(Debug, Deserialize)]
pub struct WebfingerQuery {
    resource: Option<String>,
}

/// # `GET /.well-known/webfinger?resource=acct:NAME@DOMAIN`
/// RFC 7033: 400 for a missing or malformed `resource`, 404 for an unknown account,
/// `application/jrd+json` otherwise. The actor URL is accepted as `resource` too.
pub async fn get_webfinger(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<WebfingerQuery>,
) -> Result<Response, AppError> {
    let Some(resource) = q.resource.filter(|r| !r.is_empty()) else {
        return Err(AppError::bad_request(
            "webfinger_resource_missing",
            "paramètre `resource` manquant : utilisez ?resource=acct:NOM@DOMAINE",
        ));
    };
    let identity = identity(&state).await?;
    let domain = acct_domain(state.base_url());
    let actor_id: ActorId = state
        .actor_id()
        .parse()
        .map_err(|e| internal("actor id", e))?;
    let known = if resource.starts_with("acct:") {
        let Some((user, host)) = vocab::parse_acct(&resource) else {
            return Err(AppError::bad_request(
                "webfinger_resource_malformed",
                format!(
                    "`resource` {resource:?} n'est pas une URI acct: valide (acct:NOM@DOMAINE)"
                ),
            ));
        };
        user.eq_ignore_ascii_case(&identity.username) && host.eq_ignore_ascii_case(&domain)
    } else if resource.starts_with("https://") || resource.starts_with("http://") {
        resource == actor_id.as_str()
    } else {
        return Err(AppError::bad_request(
            "webfinger_resource_malformed",
            format!("`resource` {resource:?} doit être une URI acct: ou l'URL de l'acteur"),
        ));
    };
    if !known {
        return Err(AppError::NotFound(format!(
            "aucun compte {resource:?} sur ce nœud"
        )));
    }
    let jrd = Jrd::for_actor(&identity.username, &domain, &actor_id);
    Ok(with_type(&jrd, JRD_JSON))
}

/// # `GET /.well-known/nodeinfo`
/// Links to the NodeInfo 2.1 document.
pub async fn get_nodeinfo_links(State(state): State<AppState>) -> Response {
    let links = NodeInfoLinks::v21(&format!("{}/nodeinfo/2.1", state.base_url()));
    with_type(&links, "application/json")
}

/// # `GET /nodeinfo/2.1`
/// The NodeInfo 2.1 document (software, protocol version, usage).
pub async fn get_nodeinfo(State(state): State<AppState>) -> Result<Response, AppError> {
    let identity = identity(&state).await?;
    let actor_id: ActorId = state
        .actor_id()
        .parse()
        .map_err(|e| internal("actor id", e))?;
    let siren: Siren = identity
        .siren
        .parse()
        .map_err(|e| internal("stored SIREN", e))?;
    let (postings, accounts) = state.store().usage().await?;
    let usage = NodeInfoUsage {
        users: NodeInfoUsers {
            total: u64::try_from(accounts).ok(),
            active_halfyear: None,
            active_month: None,
        },
        local_posts: u64::try_from(postings).ok(),
        local_comments: None,
    };
    let info = NodeInfo::passerelle(env!("CARGO_PKG_VERSION"), &actor_id, &siren, usage);
    Ok(with_type(&info, NODEINFO_JSON))
}

/// # `GET /.well-known/host-meta`
/// XRD document pointing at the WebFinger endpoint (RFC 6415).
pub async fn get_host_meta(State(state): State<AppState>) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<XRD xmlns=\"http://docs.oasis-open.org/ns/xri/xrd-1.0\">\n  <Link rel=\"lrdd\" template=\"{}/.well-known/webfinger?resource={{uri}}\"/>\n</XRD>\n",
        xml_escape(state.base_url())
    );
    (
        [(header::CONTENT_TYPE, "application/xrd+xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
