//! Router tests: requests through `tower::ServiceExt::oneshot`, no sockets.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use passerelle_node::config::Config;
use passerelle_node::state::AppState;
use passerelle_node::store::{Role, Store};
use passerelle_node::{auth, http, keys};
use passerelle_protocol::vocab::{Organization, Validate as _, ValidationContext};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::support::TestDb;

const BASE: &str = "https://rh.grenoble.example";

/// A node in memory: router, store, admin token, key file directory.
pub struct TestNode {
    pub router: Router,
    pub store: Store,
    pub admin: String,
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

pub async fn node_on(db: TestDb, with_identity: bool) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.data.dir = dir.path().to_path_buf();
    config.database.url = Some(db.url.clone());
    config.server.base_url = Some(BASE.parse().unwrap());
    let store = db.store().await;
    let key = keys::load_and_register(&store, &config.key_file())
        .await
        .unwrap();
    let admin = auth::bootstrap_token(&store).await.unwrap().unwrap();
    let router = http::router(AppState::new(&config, store.clone(), key).unwrap());
    let node = TestNode {
        router,
        store,
        admin,
        dir,
        db,
    };
    if with_identity {
        let (status, body) = node
            .call("PUT", "/api/v1/node", Some(&node.admin.clone()), Some(json!({
                "name": "Ville de Grenoble", "siren": "213801855", "kind": "commune", "username": "grenoble"
            })))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    node
}

pub async fn node() -> TestNode {
    node_on(TestDb::sqlite(), true).await
}

pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl TestNode {
    pub async fn request(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(resp.into_body(), 10 << 20)
            .await
            .unwrap()
            .to_vec();
        Reply {
            status,
            content_type,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let r = self.request(method, uri, token, body).await;
        let v = if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        };
        (r.status, v)
    }

    pub async fn token(&self, role: Role) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/tokens",
                Some(&self.admin),
                Some(json!({"name": format!("{role} test"), "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["secret"].as_str().unwrap().to_owned()
    }
}

pub fn assert_problem(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.content_type, "application/problem+json");
    let p = r.json();
    assert_eq!(p["code"], code, "{p}");
    assert_eq!(p["status"], status.as_u16());
    assert!(
        p["title"].is_string() && p["detail"].is_string() && p["type"].is_string(),
        "{p}"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let n = node().await;
    assert_eq!(
        n.request("GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
    let r = n.request("GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers.contains_key("x-request-id"));
    // With the database closed, the node is not ready and says so without details.
    n.store.close().await;
    let r = n.request("GET", "/readyz", None, None).await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert_eq!(
        n.request("GET", "/healthz", None, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn internal_errors_are_generic_500() {
    let n = node().await;
    let t = n.token(Role::Rh).await;
    n.store.close().await;
    let r = n.request("GET", "/api/v1/me", Some(&t), None).await;
    assert_problem(&r, StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
    let body = String::from_utf8_lossy(&r.body).to_lowercase();
    assert!(
        !body.contains("pool") && !body.contains("sqlite") && !body.contains("sqlx"),
        "{body}"
    );
}

#[tokio::test]
async fn webfinger_rfc7033() {
    let n = node().await;
    let r = n.request("GET", "/.well-known/webfinger", None, None).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "webfinger_resource_missing");
    for bad in [
        "grenoble",
        "acct:grenoble",
        "acct:@rh.grenoble.example",
        "mailto:x@y",
    ] {
        let r = n
            .request(
                "GET",
                &format!("/.well-known/webfinger?resource={bad}"),
                None,
                None,
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "webfinger_resource_malformed");
    }
    for unknown in [
        "acct:lyon@rh.grenoble.example",
        "acct:grenoble@other.example",
        "https://rh.grenoble.example/other",
    ] {
        let r = n
            .request(
                "GET",
                &format!("/.well-known/webfinger?resource={unknown}"),
                None,
                None,
            )
            .await;
        assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    }
    for good in [
        "acct:grenoble@rh.grenoble.example",
        "https://rh.grenoble.example/actor",
    ] {
        let r = n
            .request(
                "GET",
                &format!("/.well-known/webfinger?resource={good}"),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.content_type, "application/jrd+json");
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        let jrd = r.json();
        assert_eq!(jrd["subject"], "acct:grenoble@rh.grenoble.example");
        let jrd: passerelle_protocol::vocab::Jrd = serde_json::from_value(jrd).unwrap();
        assert_eq!(
            jrd.actor_id().unwrap().as_str(),
            "https://rh.grenoble.example/actor"
        );
    }
}

#[tokio::test]
async fn discovery_before_identity_says_how_to_fix() {
    let n = node_on(TestDb::sqlite(), false).await;
    let r = n.request("GET", "/actor", None, None).await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("passerelle init")
    );
}

#[tokio::test]
async fn actor_document_is_valid_and_lists_rotated_keys() {
    let n = node().await;
    let r = n.request("GET", "/actor", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/activity+json");
    let actor: Organization = serde_json::from_slice(&r.body).unwrap();
    actor.validate(&ValidationContext::production()).unwrap();
    assert_eq!(actor.id.as_str(), "https://rh.grenoble.example/actor");
    assert_eq!(actor.collectivite.siren.to_string(), "213801855");
    assert_eq!(actor.assertion_method.len(), 1);
    let key_file = n.dir.path().join("node-key.secret");
    let (key, _) = keys::load_or_create(&key_file).unwrap();
    assert_eq!(
        actor.assertion_method[0].public_key().unwrap(),
        key.public_key()
    );

    let rotated = keys::rotate(&n.store, &key_file, time::Duration::days(30), "test")
        .await
        .unwrap();
    let actor: Organization =
        serde_json::from_slice(&n.request("GET", "/actor", None, None).await.body).unwrap();
    actor.validate(&ValidationContext::production()).unwrap();
    assert_eq!(actor.assertion_method.len(), 2);
    let new = actor
        .assertion_method
        .iter()
        .find(|k| k.id.as_str().ends_with(&rotated.key_id))
        .unwrap();
    assert!(new.expires.is_none());
    let old = actor
        .assertion_method
        .iter()
        .find(|k| k.public_key().unwrap() == key.public_key())
        .unwrap();
    let expires = old.expires.expect("the old key is listed with an expiry");
    assert!(expires > time::OffsetDateTime::now_utc() + time::Duration::days(29));
    // The key file now holds the new key.
    let (reloaded, _) = keys::load_or_create(&key_file).unwrap();
    assert_eq!(new.public_key().unwrap(), reloaded.public_key());
}

#[tokio::test]
async fn nodeinfo_matches_the_published_schema() {
    let n = node().await;
    let r = n.request("GET", "/.well-known/nodeinfo", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let links: passerelle_protocol::vocab::NodeInfoLinks = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        links.href_21(),
        Some("https://rh.grenoble.example/nodeinfo/2.1")
    );
    let r = n.request("GET", "/nodeinfo/2.1", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type.starts_with("application/json; profile="),
        "{}",
        r.content_type
    );
    let doc = r.json();
    assert_eq!(
        doc["metadata"]["passerelle"]["protocolVersion"],
        passerelle_protocol::PROTOCOL_VERSION
    );
    let Some(dir) = crate::support::shared_vectors("NodeInfo 2.1 schema") else {
        return;
    };
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("nodeinfo/nodeinfo-2.1-schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc}");
    // The schema is strict enough to catch a broken document.
    let mut broken = doc.clone();
    broken["software"]["name"] = json!("Passerelle With Spaces");
    assert!(!validator.is_valid(&broken));
}

#[tokio::test]
async fn host_meta_points_at_webfinger() {
    let n = node().await;
    let r = n.request("GET", "/.well-known/host-meta", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("application/xrd+xml"));
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains(
            "template=\"https://rh.grenoble.example/.well-known/webfinger?resource={uri}\""
        ),
        "{text}"
    );
}

#[tokio::test]
async fn api_authentication_and_roles() {
    let n = node().await;
    let r = n.request("GET", "/api/v1/agents", None, None).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        r.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let r = n
        .request("GET", "/api/v1/agents", Some("psl_notatoken"), None)
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthorized");

    let lecteur = n.token(Role::Lecteur).await;
    let rh = n.token(Role::Rh).await;
    let agent = json!({"display_name": "Camille Martin", "email": "camille.martin@grenoble.fr"});
    let r = n
        .request(
            "POST",
            "/api/v1/agents",
            Some(&lecteur),
            Some(agent.clone()),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(r.json()["detail"].as_str().unwrap().contains("rh"));
    let (status, created) = n
        .call("POST", "/api/v1/agents", Some(&rh), Some(agent))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, list) = n.call("GET", "/api/v1/agents", Some(&lecteur), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Only admins read the audit log and manage tokens.
    let r = n.request("GET", "/api/v1/audit", Some(&rh), None).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = n
        .request(
            "POST",
            "/api/v1/tokens",
            Some(&rh),
            Some(json!({"name": "x", "role": "admin"})),
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn every_write_is_audited_with_its_author() {
    let n = node().await;
    let rh = n.token(Role::Rh).await;
    let (me_status, me) = n.call("GET", "/api/v1/me", Some(&rh), None).await;
    assert_eq!(me_status, StatusCode::OK);
    let (_, created) = n
        .call(
            "POST",
            "/api/v1/agents",
            Some(&rh),
            Some(json!({"display_name": "A"})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let (s, _) = n
        .call(
            "PUT",
            &format!("/api/v1/agents/{id}"),
            Some(&rh),
            Some(json!({"display_name": "B"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = n
        .call("DELETE", &format!("/api/v1/agents/{id}"), Some(&rh), None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = n
        .call("GET", &format!("/api/v1/agents/{id}"), Some(&rh), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, log) = n
        .call("GET", "/api/v1/audit?limit=3", Some(&n.admin), None)
        .await;
    let entries = log.as_array().unwrap();
    let actions: Vec<_> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["agent.delete", "agent.update", "agent.create"]);
    assert!(entries.iter().all(|e| e["actor"] == me["actor"]), "{log}");
    assert_eq!(entries[0]["target"], format!("agent:{id}"));
}

#[tokio::test]
async fn validation_and_body_errors_are_problems() {
    let n = node().await;
    let rh = n.token(Role::Rh).await;
    let r = n
        .request(
            "POST",
            "/api/v1/agents",
            Some(&rh),
            Some(json!({"display_name": " ", "email": "nope"})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let p = r.json();
    let fields: Vec<_> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["display_name", "email"]);
    let r = n
        .request(
            "POST",
            "/api/v1/agents",
            Some(&rh),
            Some(json!({"display_name": "A", "grade": "x"})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_body");
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/agents")
        .header(header::AUTHORIZATION, format!("Bearer {rh}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let resp = n.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let r = n
        .request("GET", "/api/v1/agents/not-a-uuid", Some(&rh), None)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_path");
    let r = n
        .request("GET", "/api/v1/postings?status=bogus", Some(&rh), None)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let r = n
        .request("GET", "/api/v1/audit?limit=lots", Some(&n.admin), None)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_query");
    let huge = json!({"display_name": "x".repeat(2 * 1024 * 1024)});
    let r = n
        .request("POST", "/api/v1/agents", Some(&rh), Some(huge))
        .await;
    assert_problem(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let r = n.request("GET", "/no/such/page", None, None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let r = n
        .request(
            "PUT",
            "/api/v1/node",
            Some(&n.admin),
            Some(json!({"name": "X", "siren": "123456789", "kind": "planet", "username": "A B"})),
        )
        .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.json()["errors"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn tokens_are_shown_once_and_revocable() {
    let n = node().await;
    let (s, created) = n
        .call(
            "POST",
            "/api/v1/tokens",
            Some(&n.admin),
            Some(json!({"name": "sirh", "role": "lecteur"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let secret = created["secret"].as_str().unwrap().to_owned();
    let (_, list) = n.call("GET", "/api/v1/tokens", Some(&n.admin), None).await;
    assert!(
        !list.to_string().contains(&secret),
        "secrets are never listed"
    );
    assert_eq!(
        n.call("GET", "/api/v1/me", Some(&secret), None).await.0,
        StatusCode::OK
    );
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        n.call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&n.admin),
            None
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        n.call("GET", "/api/v1/me", Some(&secret), None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        n.call(
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&n.admin),
            None
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn login_with_argon2id_account() {
    let n = node().await;
    auth::create_account(
        &n.store,
        "alice",
        "un mot de passe solide",
        Role::Rh,
        "test",
    )
    .await
    .unwrap();
    let (s, _) = n
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "alice", "password": "mauvais mot de passe"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = n
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "bob", "password": "un mot de passe solide"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, session) = n
        .call(
            "POST",
            "/api/v1/session",
            None,
            Some(json!({"username": "alice", "password": "un mot de passe solide"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{session}");
    assert_eq!(session["role"], "rh");
    let (s, me) = n
        .call(
            "GET",
            "/api/v1/me",
            Some(session["token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["role"], "rh");
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let n = node().await;
    n.request("GET", "/healthz", None, None).await;
    n.request("GET", "/.well-known/webfinger", None, None).await;
    let r = n.request("GET", "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.body).unwrap();
    assert!(
        text.contains(
            "passerelle_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"/.well-known/webfinger\",status=\"400\""),
        "{text}"
    );
    assert!(text.contains("passerelle_database_up 1"));
}

#[tokio::test]
async fn router_works_on_postgres_too() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let n = node_on(db, true).await;
    let r = n.request("GET", "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = n.request("GET", "/actor", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    n.store.close().await;
    n.db.cleanup().await;
}
