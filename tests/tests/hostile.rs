//! Hostile partners and clients: actor documents pointing to private or link-local
//! addresses (SSRF), redirect loops, slow senders, and HR API calls with a wrong role or
//! another node's token. Each is refused with a clear error and changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use passerelle_tests::{Backend, GRENOBLE, ISERE, Node};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A hostile "partner": serves crafted actor documents and redirects on loopback.
async fn evil_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(
            passerelle_tests::workspace_root().join("spec/examples/organization.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let actor = move |path: &str, inbox: &str| {
        let mut doc = template.clone();
        let id = format!("{base}{path}");
        doc["id"] = json!(id);
        doc["inbox"] = json!(inbox);
        doc["outbox"] = json!(format!("{base}/outbox"));
        doc["followers"] = json!(format!("{base}/followers"));
        doc["following"] = json!(format!("{base}/following"));
        doc["endpoints"] = json!({ "sharedInbox": inbox });
        for k in doc["assertionMethod"].as_array_mut().unwrap() {
            let frag = k["id"]
                .as_str()
                .unwrap()
                .split('#')
                .nth(1)
                .unwrap()
                .to_owned();
            k["id"] = json!(format!("{id}#{frag}"));
            k["controller"] = json!(id);
        }
        (
            [(header::CONTENT_TYPE, "application/activity+json")],
            doc.to_string(),
        )
            .into_response()
    };
    let a1 = actor.clone();
    let a2 = actor.clone();
    let app = Router::new()
        // A valid actor whose inbox is a cloud metadata address.
        .route(
            "/metadata/actor",
            get(move || async move { a1("/metadata/actor", "https://169.254.169.254/inbox") }),
        )
        // A valid actor whose inbox is on a private network.
        .route(
            "/private/actor",
            get(move || async move { a2("/private/actor", "https://10.1.2.3/inbox") }),
        )
        // An actor URL that redirects to the metadata service.
        .route(
            "/redirect/actor",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://169.254.169.254/latest/meta-data")],
                )
            }),
        )
        // A redirect loop.
        .route(
            "/loop/actor",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop/actor")]) }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrf_and_redirects_are_refused() {
    let evil = evil_server().await;
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let partners_before = isere.store.partners().await.unwrap().len();
    // Addresses that must never be fetched, even in development mode.
    for address in [
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.1/actor".to_owned(),
        "http://[fe80::1]/actor".to_owned(),
        format!("http://{evil}/redirect/actor"),
        format!("http://{evil}/loop/actor"),
        "file:///etc/passwd".to_owned(),
    ] {
        let (s, b) = isere
            .post("/api/v1/partners", &json!({ "address": address }))
            .await;
        assert_eq!(s, 400, "{address}: {b}");
        assert!(
            [
                "partner_address_refused",
                "partner_unreachable",
                "partner_invalid"
            ]
            .contains(&b["code"].as_str().unwrap()),
            "{address}: {b}"
        );
    }
    // An actor whose inbox points to the metadata service or a private network is not a
    // valid actor: endpoints must be on the actor's own origin.
    for path in ["/metadata/actor", "/private/actor"] {
        let (s, b) = isere
            .post(
                "/api/v1/partners",
                &json!({ "address": format!("http://{evil}{path}") }),
            )
            .await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(b["code"], "partner_invalid", "{b}");
        assert!(b["detail"].as_str().unwrap().contains("origin"), "{b}");
    }
    assert_eq!(isere.store.partners().await.unwrap().len(), partners_before);
    isere.shutdown().await;

    // Outside development mode a host name that resolves to a loopback (or private,
    // link-local) address is refused at connection time, whatever the URL says (DNS
    // rebinding): the check is on every resolved address.
    let prod = Node::start_with(&GRENOBLE, Backend::Sqlite, false, |c| {
        c.federation.allow_http_loopback_peers = false;
    })
    .await;
    let (s, b) = prod
        .post(
            "/api/v1/partners",
            &json!({ "address": format!("https://localhost:{}/actor", evil.port()) }),
        )
        .await;
    assert_eq!(s, 400, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("refused addresses"),
        "{b}"
    );
    let (s, b) = prod
        .post(
            "/api/v1/partners",
            &json!({ "address": format!("http://{evil}/metadata/actor") }),
        )
        .await;
    assert_eq!(s, 400, "plain http outside development mode: {b}");
    assert!(prod.store.partners().await.unwrap().is_empty());
    prod.shutdown().await;
}

/// A client that sends its request slowly is cut off at `server.request_timeout_secs`
/// with a problem document; the node keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_time_out() {
    let isere = Node::start_with(&ISERE, Backend::Sqlite, false, |c| {
        c.server.request_timeout_secs = 2;
    })
    .await;
    let addr = isere.config.server.listen;
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"POST /inbox HTTP/1.1\r\nHost: x\r\nContent-Type: application/activity+json\r\nContent-Length: 1000\r\n\r\n{\"type\":",
    )
    .await
    .unwrap();
    // The rest never comes; meanwhile the node answers others.
    let r = reqwest::get(format!("{}/healthz", isere.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the slow request was not cut off");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    isere.shutdown().await;
}

/// HR API calls with a role too low, or with a token of another node, are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_role_and_foreign_token_are_refused() {
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    let (_, reader) = passerelle_node::auth::create_token(
        &isere.store,
        "lecteur",
        passerelle_node::store::Role::Lecteur,
        None,
        "test",
    )
    .await
    .unwrap();
    let (_, rh) = passerelle_node::auth::create_token(
        &isere.store,
        "rh",
        passerelle_node::store::Role::Rh,
        None,
        "test",
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Value| {
        client
            .request(method, format!("{}{path}", isere.base))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    // A reader cannot publish, a HR officer cannot manage partnerships or tokens.
    for (token, method, path, body) in [
        (
            &reader,
            reqwest::Method::POST,
            "/api/v1/postings",
            passerelle_tests::example_posting("vacancy"),
        ),
        (
            &rh,
            reqwest::Method::POST,
            "/api/v1/partners",
            json!({ "address": grenoble.actor() }),
        ),
        (
            &rh,
            reqwest::Method::PUT,
            "/api/v1/federation/policy",
            json!({ "policy": "open" }),
        ),
        (
            &rh,
            reqwest::Method::POST,
            "/api/v1/blocks",
            json!({ "target": grenoble.actor(), "kind": "actor" }),
        ),
        (&rh, reqwest::Method::GET, "/api/v1/audit", json!(null)),
        (
            &reader,
            reqwest::Method::POST,
            "/api/v1/relays",
            json!({ "object": "https://x.example/postings/1" }),
        ),
    ] {
        let r = call(method.clone(), path, token, body).await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "forbidden");
    }
    // Grenoble's admin token means nothing to Isère.
    let r = call(
        reqwest::Method::GET,
        "/api/v1/partners",
        &grenoble.token,
        json!(null),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    assert!(isere.store.partners().await.unwrap().is_empty());
    assert!(isere.store.postings(None).await.unwrap().is_empty());
    isere.shutdown().await;
    grenoble.shutdown().await;
}

/// SQL and full-text metacharacters in feed queries are data, never syntax: the feed
/// answers (or refuses an unknown filter value with 400), never fails, and nothing changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_and_fts_metacharacters_in_feed_queries() {
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let published = isere
        .publish(&passerelle_tests::example_posting("vacancy"))
        .await;
    let name = published["document"]["name"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let feed = |query: &str| {
        client
            .get(
                reqwest::Url::parse_with_params(
                    &format!("{}/api/v1/feed", isere.base),
                    &[("q", query)],
                )
                .unwrap(),
            )
            .bearer_auth(&isere.token)
            .send()
    };
    for q in [
        "' OR 1=1 --",
        "\"; DROP TABLE postings; --",
        "médiathèque\" OR \"1\"=\"1",
        "NEAR(a b) * ^ : - + ( ) { } [ ] \"",
        "\\'%_",
        "AND OR NOT",
        "\u{0}",
        &"x".repeat(5000),
    ] {
        let r = feed(q).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status == 200 || status == 400, "{q:?}: {status} {body}");
        if q.contains('\0') {
            // Refused in the address, before the query is read (spec §12).
            assert_eq!(
                (status, &body["code"]),
                (400, &json!("uri_invalid")),
                "{q:?}: {body}"
            );
        } else if status == 400 {
            assert_eq!(body["code"], "invalid_query", "{q:?}: {body}");
        }
    }
    // Filters take known values only.
    for (k, v) in [
        ("kind", "vacancy' OR '1'='1"),
        ("status", "published; DELETE FROM postings"),
        ("departement", "38' --"),
    ] {
        let r = client
            .get(
                reqwest::Url::parse_with_params(&format!("{}/api/v1/feed", isere.base), &[(k, v)])
                    .unwrap(),
            )
            .bearer_auth(&isere.token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert!(status == 200 || status == 400, "{k}={v:?}: {status} {body}");
        if status == 200 {
            assert_eq!(
                body["items"].as_array().map_or(0, Vec::len),
                0,
                "{k}={v:?} matched: {body}"
            );
        }
    }
    // Nothing changed, and the posting is still found by its words.
    assert_eq!(isere.store.postings(None).await.unwrap().len(), 1);
    let word = name.split_whitespace().next().unwrap().to_owned();
    let r: Value = feed(&word).await.unwrap().json().await.unwrap();
    assert!(
        r["items"].as_array().is_some_and(|a| !a.is_empty()),
        "{word}: {r}"
    );
    isere.shutdown().await;
}
