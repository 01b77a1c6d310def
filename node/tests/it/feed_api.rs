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
    // Below the bounds (1,000 counted, facets over 1,000), counts are exact.
    assert_eq!(page["total_exact"], true);
    assert_eq!(page["facets_exact"], true);
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

#[tokio::test]
async fn feed_exports_csv_atom_and_calendar() {
    let n = node_on(TestDb::sqlite(), true).await;
    let reader = n.token(Role::Lecteur).await;
    let lyon = Partner::new("https://rh.lyon.example");
    // A hostile title: a spreadsheet formula and markup.
    receive(&n, &lyon, "=HYPERLINK(\"http://x\") <b>Ingénieur</b>", None).await;
    let immersion = lyon.posting(
        "immersion_offer",
        1,
        json!({"name": "Vis mon job : jardinier, parcs; serres",
               "locations": [{"commune": "69123", "address": "Parc de la Tête d'Or, Lyon"}],
               "body": {"slots": [{"date": "2027-03-04", "duration": "half_day"},
                                  {"date": "2027-03-05", "duration": "day"}]}}),
    );
    n.store
        .apply_posting_version(&lyon.version(&immersion))
        .await
        .unwrap();
    let training = lyon.posting(
        "training_session",
        1,
        json!({"name": "Formation accueil", "body": {"sessionDates": ["2027-01-12"]}}),
    );
    n.store
        .apply_posting_version(&lyon.version(&training))
        .await
        .unwrap();

    let r = n
        .request("GET", "/api/v1/feed/export.csv", Some(&reader), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
    let text = String::from_utf8(r.body.clone()).unwrap();
    assert!(text.starts_with("\u{feff}\"Intitulé\";\"Type d'offre\""));
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        text.contains("\"'=HYPERLINK(\"\"http://x\"\") <b>Ingénieur</b>\""),
        "{text}"
    );
    assert!(text.contains(&lyon.key_id()));
    // The same query language as the feed.
    let r = n
        .request(
            "GET",
            "/api/v1/feed/export.csv?q=ingenieur",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(
        String::from_utf8(r.body)
            .unwrap()
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .count(),
        2
    );

    let r = n
        .request(
            "GET",
            "/api/v1/feed/export.atom?kind=vacancy",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("application/atom+xml"));
    let atom = String::from_utf8(r.body).unwrap();
    assert_eq!(atom.matches("<entry>").count(), 1, "{atom}");
    assert!(atom.contains("&lt;b&gt;Ingénieur&lt;/b&gt;"), "{atom}");
    assert!(!atom.contains("<b>"));
    assert!(atom.contains("/console/offre?id=https%3A%2F%2Frh.lyon.example%2Fpostings%2F"));

    let r = n
        .request("GET", "/api/v1/feed/export.ics", Some(&reader), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.content_type.starts_with("text/calendar"));
    let ics = String::from_utf8(r.body).unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 3, "{ics}");
    assert!(ics.contains("DTSTART;VALUE=DATE:20270304\r\nDTEND;VALUE=DATE:20270305"));
    assert!(ics.contains("DTSTART;VALUE=DATE:20270112"));
    let unfolded = ics.replace("\r\n ", "");
    assert!(
        unfolded.contains("jardinier\\, parcs\\; serres"),
        "{unfolded}"
    );
    assert!(unfolded.contains("(demi-journée)"));
    for line in ics.split("\r\n") {
        assert!(line.len() <= 75, "{line}");
    }
    // A calendar of vacancies only makes no sense: 400.
    let r = n
        .request(
            "GET",
            "/api/v1/feed/export.ics?kind=vacancy",
            Some(&reader),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = n
        .request("GET", "/api/v1/feed/export.csv", None, None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
