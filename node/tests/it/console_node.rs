//! The console's node settings page through the router, on both backends: the EPCI
//! membership and attachment of the collectivité, shown to every role and changed by
//! administrators through the same check and writes as `PUT /api/v1/node/membership`
//! (French messages, audit records, CSRF, roles, escaping).

use axum::http::StatusCode;
use passerelle_node::store::Role;
use serde_json::{Value, json};

use crate::console::{send, sign_in};
use crate::http::{TestNode, node_on};
use crate::support::TestDb;

const HOSTILE: &str = "<script>alert(1)</script>\"x\" onmouseover='y'";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn membership(n: &TestNode) -> Value {
    let (s, body) = n
        .call("GET", "/api/v1/node/membership", Some(&n.admin), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body
}

async fn membership_audits(n: &TestNode) -> usize {
    n.store
        .audit_log(None, 500)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.record.action == "node.membership")
        .count()
}

async fn console_node_membership(db: TestDb) {
    let n = node_on(db, true).await;
    let (reader, reader_csrf) = sign_in(&n, "lea", Role::Lecteur).await;
    let (rh, rh_csrf) = sign_in(&n, "remi", Role::Rh).await;
    let (admin, csrf) = sign_in(&n, "ada", Role::Admin).await;
    let none = json!({"epci_siren": null, "attached_to_siren": null});

    // Every role sees the declaration; only administrators get the form.
    for who in [&reader, &rh] {
        let page = send(&n, "GET", "/console/noeud", who, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains("Appartenance de la collectivité"),
            "{}",
            page.body
        );
        assert!(page.body.contains("aucun déclaré"), "{}", page.body);
        assert!(!page.body.contains("/console/noeud/appartenance"));
    }
    let page = send(&n, "GET", "/console/noeud", &admin, None).await;
    assert!(
        page.body
            .contains(r#"action="/console/noeud/appartenance""#),
        "{}",
        page.body
    );
    for (id, label) in [
        (
            "epci_siren",
            "SIREN de l'EPCI dont la collectivité est membre",
        ),
        (
            "attached_to_siren",
            "SIREN de la collectivité de rattachement",
        ),
    ] {
        assert!(
            page.body
                .contains(&format!(r#"<label for="{id}">{label}</label>"#)),
            "{id}: {}",
            page.body
        );
        assert!(
            page.body.contains(&format!(
                r#"<input id="{id}" name="{id}" type="text" inputmode="numeric" autocomplete="off" value="" aria-describedby="{id}-aide">"#
            )),
            "{id}: {}",
            page.body
        );
    }

    let action = "/console/noeud/appartenance";
    let valid = "epci_siren=200+040+715&attached_to_siren=";
    // Refused without the CSRF token, with another session's, and below admin.
    for (who, body) in [
        (&admin, valid.to_owned()),
        (&admin, format!("_csrf={reader_csrf}&{valid}")),
        (&admin, format!("_csrf={}&{valid}", "0".repeat(32))),
    ] {
        let r = send(&n, "POST", action, who, Some(&body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.body.contains("Formulaire expiré"), "{}", r.body);
    }
    for (who, token) in [(&reader, &reader_csrf), (&rh, &rh_csrf)] {
        let r = send(
            &n,
            "POST",
            action,
            who,
            Some(&format!("_csrf={token}&{valid}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.body.contains("rôle « administrateur »"), "{}", r.body);
    }
    assert_eq!(membership(&n).await, none);
    assert_eq!(membership_audits(&n).await, 0);

    // An invalid SIREN (wrong Luhn key) and a hostile one: French messages tied to their
    // fields, escaped, the values kept in the form, nothing written.
    let r = send(
        &n,
        "POST",
        action,
        &admin,
        Some(&format!(
            "_csrf={csrf}&epci_siren=123456789&attached_to_siren={}",
            enc(HOSTILE)
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for expected in [
        "L&#x27;appartenance n&#x27;a pas été enregistrée",
        r#"role="alert""#,
        "« 123456789 » n&#x27;est pas un SIREN valide : 9 chiffres, dont le dernier est la clé de contrôle (formule de Luhn)",
        r##"<a href="#epci_siren">"##,
        r##"<a href="#attached_to_siren">"##,
        r#"<p class="field-error" id="erreur-epci_siren">"#,
        r#"value="123456789" aria-invalid="true" aria-describedby="epci_siren-aide erreur-epci_siren""#,
        r#"aria-invalid="true" aria-describedby="attached_to_siren-aide erreur-attached_to_siren""#,
        "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;",
    ] {
        assert!(r.body.contains(expected), "{expected}: {}", r.body);
    }
    assert!(!r.body.contains("<script>alert(1)"), "{}", r.body);
    assert!(!r.body.contains("onmouseover='y'"), "{}", r.body);
    assert!(!r.body.contains("\"x\" onmouseover"), "{}", r.body);
    // The identity form's summary is not shown for this form.
    assert!(
        !r.body
            .contains("L&#x27;identité n&#x27;a pas été enregistrée")
    );
    assert_eq!(membership(&n).await, none);
    assert_eq!(membership_audits(&n).await, 0);

    // The API refuses it with the same message (one check for both).
    let (s, body) = n
        .call(
            "PUT",
            "/api/v1/node/membership",
            Some(&n.admin),
            Some(json!({"epci_siren": "123456789"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["field"], "epci_siren", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with("« 123456789 » n'est pas un SIREN valide : 9 chiffres"),
        "{body}"
    );
    assert_eq!(membership(&n).await, none);
    assert_eq!(membership_audits(&n).await, 0);

    // Declared (spaces typed in the SIREN are ignored): the API and the actor document
    // carry it, and the audit log says who did it.
    let r = send(
        &n,
        "POST",
        action,
        &admin,
        Some(&format!("_csrf={csrf}&{valid}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.headers["location"],
        "/console/noeud?ok=appartenance#appartenance"
    );
    assert_eq!(
        membership(&n).await,
        json!({"epci_siren": "200040715", "attached_to_siren": null})
    );
    let audits = n.store.audit_log(None, 500).await.unwrap();
    let recorded: Vec<_> = audits
        .iter()
        .filter(|e| e.record.action == "node.membership")
        .collect();
    assert!(!recorded.is_empty());
    assert!(
        recorded
            .iter()
            .all(|e| e.record.actor.starts_with("session:") && e.record.target == "node"),
        "{recorded:?}"
    );
    let actor = n.request("GET", "/actor", None, None).await.json();
    assert_eq!(actor["collectivite"]["epciSiren"], "200040715", "{actor}");
    let page = send(&n, "GET", "/console/noeud?ok=appartenance", &reader, None).await;
    assert!(page.body.contains("SIREN 200040715"), "{}", page.body);
    assert!(page.body.contains("aucune déclarée"), "{}", page.body);
    assert!(
        page.body.contains(
            "L&#x27;appartenance de la collectivité (EPCI, rattachement) a été enregistrée."
        ),
        "{}",
        page.body
    );
    let page = send(&n, "GET", "/console/noeud", &admin, None).await;
    assert!(page.body.contains(r#"value="200040715""#), "{}", page.body);

    // A set attachment, then both cleared.
    let r = send(
        &n,
        "POST",
        action,
        &admin,
        Some(&format!(
            "_csrf={csrf}&epci_siren=200040715&attached_to_siren=213801855"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        membership(&n).await,
        json!({"epci_siren": "200040715", "attached_to_siren": "213801855"})
    );
    let r = send(
        &n,
        "POST",
        action,
        &admin,
        Some(&format!("_csrf={csrf}&epci_siren=&attached_to_siren=")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(membership(&n).await, none);
    n.db.cleanup().await;
}

#[tokio::test]
async fn console_node_membership_on_sqlite() {
    console_node_membership(TestDb::sqlite()).await;
}

#[tokio::test]
async fn console_node_membership_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        console_node_membership(db).await;
    }
}
