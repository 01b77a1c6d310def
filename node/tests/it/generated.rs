//! Files generated from the code stay equal to what is committed:
//! `deploy/passerelle.example.toml` and `spec/openapi.json`.
//! Run with `PASSERELLE_BLESS=1` to rewrite them after a change.

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::workspace_root;

fn check_file(relative: &str, generated: &str) {
    let path = workspace_root().join(relative);
    if std::env::var_os("PASSERELLE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} differs from the file generated from the code; run `PASSERELLE_BLESS=1 cargo test -p passerelle-node --test it generated` and commit the result"
    );
}

#[test]
fn example_config_is_generated_from_the_code() {
    let text = passerelle_node::config::example_toml();
    check_file("deploy/passerelle.example.toml", &text);
    // It is a valid configuration that means the defaults.
    let parsed: passerelle_node::config::Config = toml::from_str(&text).unwrap();
    assert_eq!(parsed, passerelle_node::config::Config::default());
}

#[test]
fn openapi_document_is_generated_from_the_code() {
    let text = passerelle_node::http::openapi_json();
    check_file("spec/openapi.json", &text);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

/// Every operation of the document is served by the router (neither the 404 fallback nor
/// 405), and the served document is the committed one.
#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let n = crate::http::node().await;
    let r = n.request("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let served: Value = r.json();
    let doc: Value = serde_json::from_str(&passerelle_node::http::openapi_json()).unwrap();
    assert_eq!(served, doc);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 8, "{:?}", paths.keys());
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
        for method in item.as_object().unwrap().keys() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let r = n
                .request(&method.to_uppercase(), &concrete, None, None)
                .await;
            let fallback = r.status == StatusCode::NOT_FOUND
                && String::from_utf8_lossy(&r.body).contains("aucune ressource à cette adresse");
            assert!(
                !fallback && r.status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but not routed ({})",
                r.status
            );
        }
    }
    assert!(operations >= 12, "{operations}");
    // And an undocumented path is not served.
    let r = n.request("GET", "/api/v1/not-documented", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
