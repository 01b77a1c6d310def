//! Postings through the HR API: every spec example is accepted, validated by
//! `protocol`, signed, and its life cycle writes signed activities to the outbox.

use axum::http::StatusCode;
use passerelle_node::store::Role;
use passerelle_protocol::proof;
use passerelle_protocol::vocab::{Message, Posting, Validate as _, ValidationContext};
use serde_json::{Value, json};

use crate::http::{TestNode, node};
use crate::support::workspace_root;

const BASE: &str = "https://rh.grenoble.example";

/// The spec example, moved to the test node's origin, without server-owned properties.
fn example(name: &str) -> Value {
    let path = workspace_root().join("spec/examples").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).unwrap();
    let origin = {
        let url = url::Url::parse(doc["attributedTo"].as_str().unwrap()).unwrap();
        url.origin().ascii_serialization()
    };
    let mut doc: Value = serde_json::from_str(&text.replace(&origin, BASE)).unwrap();
    for key in [
        "@context",
        "id",
        "type",
        "attributedTo",
        "version",
        "published",
        "updated",
        "status",
        "proof",
    ] {
        doc.as_object_mut().unwrap().remove(key);
    }
    doc
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("spec/examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("posting-") && n.ends_with(".json"))
        .collect();
    names.sort();
    names
}

async fn node_key(n: &TestNode) -> Vec<(String, passerelle_protocol::keys::PublicKey)> {
    let (_, node) = n.call("GET", "/api/v1/node", Some(&n.admin), None).await;
    node["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                passerelle_protocol::keys::PublicKey::from_multikey(
                    k["public_key_multibase"].as_str().unwrap(),
                )
                .unwrap(),
            )
        })
        .collect()
}

fn check_signed_posting(
    doc: &Value,
    keys: &[(String, passerelle_protocol::keys::PublicKey)],
) -> Posting {
    let verified = proof::verify(doc.clone(), keys)
        .unwrap_or_else(|e| panic!("proof does not verify: {e}\n{doc}"));
    assert_eq!(verified.signers().len(), 1);
    let posting: Posting = serde_json::from_value(doc.clone()).unwrap();
    posting.validate(&ValidationContext::production()).unwrap();
    posting
}

#[tokio::test]
async fn every_spec_posting_example_is_accepted_signed_and_published() {
    let examples = examples();
    assert!(examples.len() >= 8, "{examples:?}");
    let n = node().await;
    let rh = n.token(Role::Rh).await;
    let keys = node_key(&n).await;
    for name in &examples {
        let content = example(name);
        let (s, created) = n
            .call("POST", "/api/v1/postings", Some(&rh), Some(content.clone()))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{name}: {created}");
        assert_eq!(created["status"], "draft");
        assert_eq!(created["kind"], content["postingKind"]);
        let posting = check_signed_posting(&created["document"], &keys);
        assert!(
            posting
                .id
                .as_str()
                .starts_with(&format!("{BASE}/postings/"))
        );
        assert_eq!(posting.version, 1);
        let id = created["id"].as_str().unwrap();
        let (s, published) = n
            .call(
                "POST",
                &format!("/api/v1/postings/{id}/publish"),
                Some(&rh),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{name}: {published}");
        assert_eq!(published["status"], "published");
        assert_eq!(published["version"], 2);
        let posting = check_signed_posting(&published["document"], &keys);
        assert_eq!(posting.version, 2);
    }
    // One signed Create per published posting, in the outbox.
    let outbox = n.store.outbox(Some(0), None, 100, false).await.unwrap();
    assert_eq!(outbox.len(), examples.len());
    for item in &outbox {
        assert_eq!(item.activity.activity_type, "Create");
        proof::verify(item.activity.document.clone(), &keys).unwrap();
        let msg = Message::from_value(item.activity.document.clone()).unwrap();
        msg.validate(&ValidationContext::production())
            .unwrap_or_else(|p| panic!("{p}\n{}", item.activity.document));
    }
}

#[tokio::test]
async fn posting_life_cycle_update_close_delete() {
    let n = node().await;
    let rh = n.token(Role::Rh).await;
    let keys = node_key(&n).await;
    let mut content = example("posting-vacancy.json");
    content["visibility"] = json!("public");
    let (_, created) = n
        .call("POST", "/api/v1/postings", Some(&rh), Some(content.clone()))
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let uri = format!("/api/v1/postings/{id}");
    // A draft can be edited without any activity.
    content["name"] = json!("Conseiller mobilité (H/F)");
    let (s, edited) = n.call("PUT", &uri, Some(&rh), Some(content.clone())).await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["document"]["name"], "Conseiller mobilité (H/F)");
    assert_eq!(n.store.outbox_len(false).await.unwrap(), 0);
    assert_eq!(
        n.call("POST", &format!("{uri}/close"), Some(&rh), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        n.call("POST", &format!("{uri}/publish"), Some(&rh), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        n.call("POST", &format!("{uri}/publish"), Some(&rh), None)
            .await
            .0,
        StatusCode::CONFLICT
    );
    content["name"] = json!("Conseiller ou conseillère mobilité (H/F)");
    let (s, updated) = n.call("PUT", &uri, Some(&rh), Some(content.clone())).await;
    assert_eq!(s, StatusCode::OK);
    let posting = check_signed_posting(&updated["document"], &keys);
    assert_eq!(posting.version, 4);
    assert!(posting.updated.is_some());
    let (s, closed) = n
        .call("POST", &format!("{uri}/close"), Some(&rh), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(closed["document"]["status"], "closed");
    assert_eq!(
        n.call("PUT", &uri, Some(&rh), Some(content)).await.0,
        StatusCode::CONFLICT
    );
    assert_eq!(
        n.call("DELETE", &uri, Some(&rh), None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        n.call("GET", &uri, Some(&rh), None).await.0,
        StatusCode::NOT_FOUND
    );
    let outbox = n.store.outbox(Some(0), None, 10, false).await.unwrap();
    let kinds: Vec<_> = outbox
        .iter()
        .map(|i| i.activity.activity_type.as_str())
        .collect();
    assert_eq!(kinds, ["Create", "Update", "Update", "Delete"]);
    assert!(
        outbox.iter().all(|i| i.activity.public),
        "a public posting's activities are public"
    );
    let delete = &outbox[3].activity.document;
    assert_eq!(delete["object"]["type"], "Tombstone");
    assert_eq!(delete["object"]["id"], format!("{BASE}/postings/{id}"));
    proof::verify(delete.clone(), &keys).unwrap();
    // The audit log has every step, by the same token.
    let (_, log) = n
        .call("GET", "/api/v1/audit?limit=7", Some(&n.admin), None)
        .await;
    let actions: Vec<_> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "posting.delete",
            "posting.close",
            "posting.update",
            "posting.publish",
            "posting.update",
            "posting.create",
            "token.create"
        ]
    );
}

#[tokio::test]
async fn invalid_postings_are_refused_with_french_messages_and_nothing_is_stored() {
    let n = node().await;
    let rh = n.token(Role::Rh).await;
    let mut content = example("posting-mad-offer.json");
    // A MAD is capped at 36 months.
    content["body"]["durationMonths"] = json!(48);
    let r = n
        .request("POST", "/api/v1/postings", Some(&rh), Some(content))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let p = r.json();
    assert_eq!(p["code"], "validation_failed");
    let errors = p["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["field"].as_str().unwrap().contains("durationMonths")),
        "{p}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().unwrap().contains("champ")),
        "{p}"
    );
    let r = n
        .request(
            "POST",
            "/api/v1/postings",
            Some(&rh),
            Some(json!({"postingKind": "space_station"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = n
        .request("POST", "/api/v1/postings", Some(&rh), Some(json!([1, 2])))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(n.store.postings(None).await.unwrap().is_empty());
    let lecteur = n.token(Role::Lecteur).await;
    let r = n
        .request(
            "POST",
            "/api/v1/postings",
            Some(&lecteur),
            Some(example("posting-vacancy.json")),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn public_outbox_pages_html_page_and_atom_feed() {
    let n = node().await;
    let rh = n.token(Role::Rh).await;
    let keys = node_key(&n).await;
    let mut public = example("posting-vacancy.json");
    public["visibility"] = json!("public");
    public["name"] = json!("Chargé(e) <de> mission & \"RH\"");
    let (_, p1) = n
        .call("POST", "/api/v1/postings", Some(&rh), Some(public))
        .await;
    let id1 = p1["id"].as_str().unwrap().to_owned();
    n.call(
        "POST",
        &format!("/api/v1/postings/{id1}/publish"),
        Some(&rh),
        None,
    )
    .await;
    let (_, p2) = n
        .call(
            "POST",
            "/api/v1/postings",
            Some(&rh),
            Some(example("posting-vacancy.json")),
        )
        .await;
    let id2 = p2["id"].as_str().unwrap().to_owned();
    n.call(
        "POST",
        &format!("/api/v1/postings/{id2}/publish"),
        Some(&rh),
        None,
    )
    .await;

    // The collection counts only public activities and points at its first page.
    let r = n.request("GET", "/outbox", None, None).await;
    assert_eq!(r.content_type, "application/activity+json");
    let outbox = r.json();
    let collection: passerelle_protocol::vocab::OrderedCollection =
        serde_json::from_value(outbox.clone()).unwrap();
    collection
        .validate(&ValidationContext::production())
        .unwrap();
    assert_eq!(
        outbox["totalItems"], 1,
        "the federation-only posting is not public"
    );
    let first = outbox["first"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_owned();
    let page = n.request("GET", &first, None, None).await.json();
    let typed: passerelle_protocol::vocab::OrderedCollectionPage =
        serde_json::from_value(page.clone()).unwrap();
    typed.validate(&ValidationContext::production()).unwrap();
    let items = page["orderedItems"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["object"]["id"], format!("{BASE}/postings/{id1}"));
    proof::verify(items[0].clone(), &keys).unwrap();
    // The next page is empty ("caught up") and still has a next link.
    let next = page["next"]
        .as_str()
        .unwrap()
        .strip_prefix(BASE)
        .unwrap()
        .to_owned();
    let page2 = n.request("GET", &next, None, None).await.json();
    assert_eq!(page2["orderedItems"].as_array().unwrap().len(), 0);
    assert_eq!(page2["next"], page["next"]);
    let r = n
        .request("GET", "/outbox?after=not-a-cursor", None, None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["code"], "cursor_invalid");

    // HTML page with JobPosting JSON-LD, escaped.
    let r = n
        .request("GET", &format!("/postings/{id1}"), None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/html"));
    let page = String::from_utf8(r.body).unwrap();
    assert!(
        page.contains("<h1>Chargé(e) &lt;de&gt; mission &amp; &quot;RH&quot;</h1>"),
        "{page}"
    );
    let start = page.find("<script type=\"application/ld+json\">").unwrap() + 35;
    let end = page[start..].find("</script>").unwrap() + start;
    let ld: Value = serde_json::from_str(&page[start..end].replace("<\\/", "</")).unwrap();
    assert_eq!(ld["@type"], "JobPosting");
    assert_eq!(ld["title"], "Chargé(e) <de> mission & \"RH\"");
    assert_eq!(ld["hiringOrganization"]["name"], "Ville de Grenoble");
    assert_eq!(ld["validThrough"], "2026-12-20");
    // The document itself by content negotiation; the non-public posting is not served.
    let req = axum::http::Request::builder()
        .uri(format!("/postings/{id1}"))
        .header("accept", "application/activity+json")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = tower::ServiceExt::oneshot(n.router.clone(), req)
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/activity+json");
    assert_eq!(
        n.request("GET", &format!("/postings/{id2}"), None, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    // Atom feed: the public posting only.
    let r = n.request("GET", "/feed.atom", None, None).await;
    assert!(r.content_type.starts_with("application/atom+xml"));
    let feed = String::from_utf8(r.body).unwrap();
    assert_eq!(feed.matches("<entry>").count(), 1, "{feed}");
    assert!(feed.contains(&format!("<id>{BASE}/postings/{id1}</id>")));
    assert!(!feed.contains(&id2));
    // Home page.
    let home = String::from_utf8(n.request("GET", "/", None, None).await.body).unwrap();
    assert!(home.contains("Ville de Grenoble"));
}

/// An address whose path or query holds U+0000 (`%00`) is refused with `400
/// uri_invalid` before any handler, on both backends. Regression: a feed search for it
/// answered 500 on PostgreSQL, whose text cannot hold the character.
#[tokio::test]
async fn a_nul_character_in_an_address_is_refused_on_both_backends() {
    for db in crate::support::TestDb::all().await {
        let n = crate::http::node_on(db, true).await;
        let rh = n.token(Role::Rh).await;
        for uri in [
            "/api/v1/feed?q=ing%C3%A9nieur%00",
            "/api/v1/feed?q=technicien&commune=Grenoble%00",
            "/api/v1/postings/%00",
            "/console/offres?q=a%00b",
            "/.well-known/webfinger?resource=acct:a%00@grenoble.example",
        ] {
            let r = n.request("GET", uri, Some(&rh), None).await;
            crate::http::assert_problem(&r, StatusCode::BAD_REQUEST, "uri_invalid");
            assert!(
                r.json()["detail"].as_str().unwrap().contains("U+0000"),
                "{uri}: {}",
                r.json()
            );
        }
        // The same search without it is answered; "%" itself (`%25`) is not refused.
        let (s, page) = n
            .call("GET", "/api/v1/feed?q=ing%C3%A9nieur", Some(&rh), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let (s, page) = n
            .call("GET", "/api/v1/feed?q=100%2500", Some(&rh), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        n.store.close().await;
        n.db.cleanup().await;
    }
}

/// A body whose strings hold U+0000 (`\u0000`, valid JSON) is refused with a problem on
/// both backends and changes nothing. Regression: it was accepted on SQLite, and on
/// PostgreSQL, whose text cannot hold the character, the change failed with a 500.
#[tokio::test]
async fn a_nul_character_in_a_body_is_refused_on_both_backends() {
    for db in crate::support::TestDb::all().await {
        let n = crate::http::node_on(db, true).await;
        let rh = n.token(Role::Rh).await;
        let mut content = example("posting-vacancy.json");
        content["name"] = json!("Technicien\u{0} des espaces verts");
        let r = n
            .request("POST", "/api/v1/postings", Some(&rh), Some(content))
            .await;
        crate::http::assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_body");
        assert!(
            r.json()["detail"].as_str().unwrap().contains("U+0000"),
            "{}",
            r.json()
        );
        let r = n
            .request(
                "POST",
                "/api/v1/agents",
                Some(&rh),
                Some(json!({"display_name": "Camille\u{0}", "email": "c@grenoble.example"})),
            )
            .await;
        crate::http::assert_problem(&r, StatusCode::BAD_REQUEST, "invalid_body");
        let (_, postings) = n.call("GET", "/api/v1/postings", Some(&rh), None).await;
        assert_eq!(postings, json!([]));
        let (_, agents) = n.call("GET", "/api/v1/agents", Some(&rh), None).await;
        assert_eq!(agents, json!([]));
        // The same posting without the character is created (on PostgreSQL too).
        let (s, created) = n
            .call(
                "POST",
                "/api/v1/postings",
                Some(&rh),
                Some(example("posting-vacancy.json")),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{created}");
        n.store.close().await;
        n.db.cleanup().await;
    }
}
