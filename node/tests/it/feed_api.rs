//! The feed through the HR API: search over local and received postings, facets, paging,
//! errors, saved searches and their new matches.

use axum::http::StatusCode;
use passerelle_node::store::{PartnerInfo, Role};
use serde_json::{Value, json};

use crate::feed_store::Partner;
use crate::http::{TestNode, node_on};
use crate::support::TestDb;

/// A local vacancy published through the API; returns its id (URL).
pub async fn publish_local(n: &TestNode, token: &str, name: &str, commune: &str) -> Value {
    let content = json!({
        "postingKind": "vacancy", "visibility": "federation", "name": name,
        "summary": "Offre publiée par le test.",
        "missions": "Piloter les projets RH.", "profile": "Expérience confirmée.",
        "statutory": {"versant": "fpt", "categories": ["A"], "filieres": ["administrative"],
                      "cadresEmplois": ["Attachés territoriaux"], "openToContractuels": "none"},
        "metiers": [{"rome": {"code": "M1503"}}],
        "employer": {"name": "Ville de Grenoble", "recruitingAuthority": "Le Maire"},
        "locations": [{"commune": commune}],
        "workingTime": {"kind": "complet"},
        "dates": {"applyUntil": "2027-02-01"},
        "contact": {"mailbox": "rh@grenoble.example"},
        "body": {"vacancyKind": "creation", "vacancyDate": "2027-03-01", "routes": ["mutation"]}
    });
    let (s, created) = n
        .call("POST", "/api/v1/postings", Some(token), Some(content))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (s, published) = n
        .call(
            "POST",
            &format!("/api/v1/postings/{id}/publish"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{published}");
    published
}

pub async fn receive(n: &TestNode, partner: &Partner, name: &str, relayed_by: Option<&str>) {
    let doc = partner.posting(
        "vacancy",
        1,
        json!({"name": name, "locations": [{"commune": "69123"}],
               "statutory": {"categories": ["B"]}, "published": "2026-11-02T09:00:00Z"}),
    );
    let mut v = partner.version(&doc);
    v.relayed_by = relayed_by.map(str::to_owned);
    n.store.apply_posting_version(&v).await.unwrap();
}

async fn feed_api(db: TestDb) {
    let n = node_on(db, true).await;
    let rh = n.token(Role::Rh).await;
    let reader = n.token(Role::Lecteur).await;
    let lyon = Partner::new("https://rh.lyon.example");
    n.store
        .upsert_partner(&PartnerInfo {
            actor_id: lyon.actor(),
            name: "Ville de Lyon".into(),
            inbox: format!("{}/inbox", lyon.origin),
            shared_inbox: None,
            outbox: None,
            siren: None,
        })
        .await
        .unwrap();
    publish_local(&n, &rh, "Chargée de mission RH", "38185").await;
    receive(&n, &lyon, "Ingénieure bâtiments", None).await;
    receive(
        &n,
        &lyon,
        "Ingénieur réseaux",
        Some("https://rh.rhone.example/actor"),
    )
    .await;

    // No credentials: 401.
    let r = n.request("GET", "/api/v1/feed", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let (s, page) = n
        .call("GET", "/api/v1/feed?q=ingenieurs", Some(&reader), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total"], 2);
    assert_eq!(page["sort"], "relevance");
    for item in page["items"].as_array().unwrap() {
        assert_eq!(item["published_by"]["name"], "Ville de Lyon");
        assert_eq!(item["published_by"]["actor"], lyon.actor());
        assert_eq!(item["proof"]["verified"], true);
        assert_eq!(item["proof"]["key"], lyon.key_id());
        assert_eq!(item["local"], false);
    }
    let relayed: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !i["relayed_by"].is_null())
        .collect();
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0]["relayed_by"]["name"], "rh.rhone.example");

    // Local postings are in the same feed, with this node's name.
    let (_, page) = n
        .call("GET", "/api/v1/feed?origin=local", Some(&reader), None)
        .await;
    assert_eq!(page["total"], 1, "{page}");
    let item = &page["items"][0];
    assert_eq!(item["local"], true);
    assert_eq!(item["published_by"]["name"], "Ville de Grenoble");
    assert_eq!(item["proof"]["verified"], true);
    assert!(item["local_id"].is_string());
    assert_eq!(item["kind_label"], "Poste vacant");

    // Facets with French labels; a restricted facet keeps its other values.
    let (_, page) = n
        .call("GET", "/api/v1/feed?categorie=A", Some(&reader), None)
        .await;
    assert_eq!(page["total"], 1);
    let facet = |name: &str| -> Value {
        page["facets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let cats = facet("categorie");
    assert_eq!(cats["label"], "Catégorie");
    let b = cats["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["value"] == "B")
        .unwrap();
    assert_eq!(
        (b["count"].as_i64(), b["selected"].as_bool()),
        (Some(2), Some(false))
    );
    let dep = facet("departement");
    assert_eq!(dep["values"][0]["label"], "Isère (38)");
    assert_eq!(
        facet("region")["values"][0]["label"],
        "Auvergne-Rhône-Alpes"
    );

    // Cursor paging walks every result once.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/feed?limit=1&facets=false".to_owned();
    loop {
        let (s, page) = n.call("GET", &uri, Some(&reader), None).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for i in page["items"].as_array().unwrap() {
            seen.push(i["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/feed?limit=1&facets=false&cursor={c}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3);

    // Bad parameters: one 400 problem naming each, in French.
    let r = n
        .request(
            "GET",
            "/api/v1/feed?kind=job&deadline_to=demain&couleur=bleu",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let p = r.json();
    assert_eq!(p["code"], "invalid_query");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("kind") && detail.contains("deadline_to") && detail.contains("couleur"),
        "{detail}"
    );
    let r = n
        .request("GET", "/api/v1/feed?cursor=AAAA", Some(&reader), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Saved searches: per user, new matches since last seen.
    let (s, saved) = n
        .call(
            "POST",
            "/api/v1/saved-searches",
            Some(&reader),
            Some(json!({"name": "Ingénieurs à Lyon", "query": "q=ingénieur&departement=69&cursor=x"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["new_count"], 0);
    assert_eq!(saved["query"], "q=ing%C3%A9nieur&departement=69");
    let id = saved["id"].as_str().unwrap().to_owned();
    let (s, dup) = n
        .call(
            "POST",
            "/api/v1/saved-searches",
            Some(&reader),
            Some(json!({"name": "Ingénieurs à Lyon", "query": ""})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{dup}");
    let (s, bad) = n
        .call(
            "POST",
            "/api/v1/saved-searches",
            Some(&reader),
            Some(json!({"name": " ", "query": "kind=job"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2, "{bad}");

    receive(&n, &lyon, "Ingénieur eau potable", None).await;
    receive(&n, &lyon, "Jardinier", None).await;
    let (_, list) = n
        .call("GET", "/api/v1/saved-searches", Some(&reader), None)
        .await;
    assert_eq!(list[0]["new_count"], 1, "{list}");
    let (_, new) = n
        .call(
            "GET",
            &format!("/api/v1/saved-searches/{id}/new"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(new["items"].as_array().unwrap().len(), 1);
    assert_eq!(new["items"][0]["name"], "Ingénieur eau potable");
    // Another user does not see it.
    let (s, _) = n
        .call(
            "GET",
            &format!("/api/v1/saved-searches/{id}/new"),
            Some(&rh),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, others) = n
        .call("GET", "/api/v1/saved-searches", Some(&rh), None)
        .await;
    assert_eq!(others.as_array().unwrap().len(), 0);
    let (s, after) = n
        .call(
            "POST",
            &format!("/api/v1/saved-searches/{id}/seen"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(after["new_count"], 0);
    let (s, _) = n
        .call(
            "DELETE",
            &format!("/api/v1/saved-searches/{id}"),
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    n.db.cleanup().await;
}

#[tokio::test]
async fn feed_api_on_sqlite() {
    feed_api(TestDb::sqlite()).await;
}

#[tokio::test]
async fn feed_api_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        feed_api(db).await;
    }
}
