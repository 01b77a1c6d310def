//! The console's *mises à disposition* pages through the router, on both backends: the
//! list and a request's page (state, next legal steps, deadlines, terms, timeline),
//! roles, CSRF refusals that change nothing, the forms firing the transitions through the
//! same service as the API, and the escaping of what the other employer wrote.

use axum::http::StatusCode;
use passerelle_node::store::{NewMad, PartnerInfo, PartnershipChange, PartnershipState, Role};
use serde_json::json;
use uuid::Uuid;

use crate::console::{send, sign_in};
use crate::feed_store::Partner;
use crate::http::{TestNode, node_on};
use crate::support::{TestDb, workspace_root};

const BASE: &str = "https://rh.grenoble.example";
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// A partner (both ways) with a hostile name, and a MAD request it created and sent us
/// (we are the host), whose free texts are hostile.
pub async fn received_request(n: &TestNode) -> (Partner, Uuid) {
    let lyon = Partner::new("https://rh.lyon.example");
    n.store
        .upsert_partner(&PartnerInfo {
            actor_id: lyon.actor(),
            name: format!("{HOSTILE} Ville de Lyon"),
            inbox: format!("{}/inbox", lyon.origin),
            shared_inbox: None,
            outbox: None,
            siren: Some("216901231".into()),
        })
        .await
        .unwrap();
    n.store
        .update_partnership(
            &lyon.actor(),
            &PartnershipChange {
                outgoing: Some((PartnershipState::Accepted, None)),
                incoming: Some((PartnershipState::Accepted, None)),
            },
            None,
            None,
        )
        .await
        .unwrap();
    // Its actor document, cached (the legal checks read both employers' `collectivite`).
    let raw = std::fs::read_to_string(workspace_root().join("spec/examples/organization.json"))
        .unwrap()
        .replace("https://emploi.grenoble.fr", &lyon.origin);
    let mut actor: serde_json::Value = serde_json::from_str(&raw).unwrap();
    actor["name"] = json!("Ville de Lyon");
    actor["collectivite"] = json!({"siren": "216901231", "kind": "commune", "versant": "fpt",
        "commune": "69123", "departement": "69", "region": "84"});
    n.store
        .put_remote_actor(&lyon.actor(), &actor)
        .await
        .unwrap();
    let object_id = format!("{}/mad/requests/{}", lyon.origin, Uuid::now_v7());
    let doc = json!({
        "id": object_id,
        "type": "MadRequest",
        "attributedTo": lyon.actor(),
        "origin": lyon.actor(),
        "host": format!("{BASE}/actor"),
        "agent": {"ref": "agent-<b>42</b>", "statut": "fonctionnaire_titulaire"},
        "terms": {
            "activities": "<script>alert(2)</script> Appui au service des espaces verts",
            "place": "Lyon \"x\" onmouseover='y'",
            "quotitePct": 40,
            "startDate": "2027-03-01",
            "endDate": "2028-02-29",
            "evaluation": "host_report_to_origin",
            "leaveAuthority": "origin",
            "reimbursement": {"mode": "full", "monthlyCostEstimate": 1180, "invoicingPeriod": "quarterly"},
            "noticeDays": 30
        },
        "state": "proposed",
        "version": 1,
        "published": "2026-11-22T10:15:00Z",
        "history": [{"version": 1, "transition": "send", "party": "origin_hr", "from": "draft",
                     "to": "proposed", "at": "2026-11-22T10:15:00Z"}],
        "to": [format!("{BASE}/actor")]
    });
    let id = Uuid::now_v7();
    n.store
        .insert_mad_request(
            &NewMad {
                id,
                object_id,
                creator: lyon.actor(),
                our_side: "host".into(),
                partner: lyon.actor(),
                agent_id: None,
                state: "proposed".into(),
                version: 1,
                document: doc,
            },
            None,
            None,
        )
        .await
        .unwrap();
    (lyon, id)
}

async fn console_mad_pages(db: TestDb) {
    let n = node_on(db, true).await;
    let (reader, reader_csrf) = sign_in(&n, "lea", Role::Lecteur).await;
    let (rh, rh_csrf) = sign_in(&n, "remi", Role::Rh).await;
    let (_, id) = received_request(&n).await;

    // The list: received requests, escaped.
    let list = send(&n, "GET", "/console/mad", &reader, None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(list.body.contains("Demandes reçues"), "{}", list.body);
    assert!(list.body.contains(&format!("/console/mad/{id}")));
    assert!(list.body.contains("Proposée") || list.body.contains("proposée"));
    assert!(!list.body.contains("<img src=x"), "{}", list.body);
    assert!(list.body.contains("&lt;img src=x"));
    assert!(!list.body.contains("<b>42</b>"));
    assert!(
        list.body
            .contains(r#"aria-current="page">Mises à disposition"#)
    );

    // The request's page: state, next steps with who fires them, deadlines, terms.
    let page = send(&n, "GET", &format!("/console/mad/{id}"), &reader, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for expected in [
        "Prochaines étapes",
        "Accepter les conditions",
        "Refuser la proposition",
        "organisme d&#x27;accueil",
        "Échéances",
        "Durée maximale de la période",
        "Terme prévu de la période : <strong>29 février 2028</strong>",
        "1er mars 2027",
        "Historique",
        "Envoyer la proposition",
    ] {
        assert!(page.body.contains(expected), "{expected}: {}", page.body);
    }
    assert!(!page.body.contains("<script>alert(2)"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(2)"));
    assert!(!page.body.contains("onmouseover='y'"));
    assert!(!page.body.contains("<img src=x"));
    // A reader sees no form; RH does.
    assert!(!page.body.contains("/etape"));
    assert!(page.body.contains("Les actions demandent le rôle RH"));
    let page = send(&n, "GET", &format!("/console/mad/{id}"), &rh, None).await;
    assert!(
        page.body
            .contains(&format!(r#"action="/console/mad/{id}/etape""#)),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"value="agree_terms""#));

    // Roles: the forms and the new-request page are for RH.
    for path in ["/console/mad/nouvelle"] {
        assert_eq!(
            send(&n, "GET", path, &reader, None).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            send(&n, "GET", path, &rh, None).await.status,
            StatusCode::OK
        );
    }
    let step = format!("/console/mad/{id}/etape");
    let r = send(
        &n,
        "POST",
        &step,
        &reader,
        Some(&format!("_csrf={reader_csrf}&transition=agree_terms")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("rôle « RH »"));
    // CSRF: without the token, or with another session's, nothing changes.
    for body in [
        "transition=agree_terms".to_owned(),
        format!("_csrf={reader_csrf}&transition=agree_terms"),
    ] {
        let r = send(&n, "POST", &step, &rh, Some(&body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.body.contains("Formulaire expiré"));
    }
    for path in [
        format!("/console/mad/{id}/signer"),
        format!("/console/mad/{id}/accord-avenant"),
        "/console/mad/nouvelle".to_owned(),
    ] {
        let r = send(&n, "POST", &path, &rh, Some("x=1")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    let row = n.store.mad_request(id).await.unwrap();
    assert_eq!((row.version, row.pending.is_none()), (1, true));

    // A transition the state does not allow is refused in French on the page.
    let r = send(
        &n,
        "POST",
        &step,
        &rh,
        Some(&format!("_csrf={rh_csrf}&transition=issue_arrete")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("Action refusée"), "{}", r.body);
    assert!(n.store.mad_request(id).await.unwrap().pending.is_none());

    // Accepting the terms: sent to the creator, pending until its version comes back.
    let r = send(
        &n,
        "POST",
        &step,
        &rh,
        Some(&format!(
            "_csrf={rh_csrf}&transition=agree_terms&party=host_hr"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.headers["location"],
        format!("/console/mad/{id}?ok=transmise").as_str()
    );
    assert!(n.store.mad_request(id).await.unwrap().pending.is_some());
    let page = send(
        &n,
        "GET",
        &format!("/console/mad/{id}?ok=transmise"),
        &rh,
        None,
    )
    .await;
    assert!(
        page.body
            .contains("sera enregistrée quand cet employeur la confirmera")
    );
    assert!(!page.body.contains(r#"value="agree_terms""#));

    // No convention yet.
    assert_eq!(
        send(
            &n,
            "GET",
            &format!("/console/mad/{id}/convention/0"),
            &reader,
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    // An unknown request.
    assert_eq!(
        send(
            &n,
            "GET",
            &format!("/console/mad/{}", Uuid::now_v7()),
            &reader,
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    // A new request with missing terms: French messages, nothing created.
    let r = send(
        &n,
        "POST",
        "/console/mad/nouvelle",
        &rh,
        Some(&format!(
            "_csrf={rh_csrf}&partner={}&our_side=host&agent_ref=x&agent_statut=fonctionnaire_titulaire&quotite_pct=40&start_date=2027-03-01&end_date=2027-01-01&envoyer=1",
            url::form_urlencoded::byte_serialize("https://rh.lyon.example/actor".as_bytes()).collect::<String>()
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("error-summary"), "{}", r.body);
    assert_eq!(
        n.store
            .mad_requests(&Default::default())
            .await
            .unwrap()
            .len(),
        1
    );
    n.db.cleanup().await;
}

#[tokio::test]
async fn console_mad_pages_on_sqlite() {
    console_mad_pages(TestDb::sqlite()).await;
}

#[tokio::test]
async fn console_mad_pages_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        console_mad_pages(db).await;
    }
}

/// A request the host created names our agent by a reference only: at the origin, HR
/// links it to the local agent record from the request's page (CSRF and role enforced,
/// the agent's statut checked), and the page then links to the agent.
async fn console_mad_link_agent(db: TestDb) {
    use passerelle_node::store::{AgentFields, AuditRecord};
    let n = node_on(db, true).await;
    let (reader, reader_csrf) = sign_in(&n, "lea", Role::Lecteur).await;
    let (rh, csrf) = sign_in(&n, "remi", Role::Rh).await;
    let (lyon, _) = received_request(&n).await;
    let mut agents = Vec::new();
    for (name, statut) in [
        ("Camille Martin", "fonctionnaire_titulaire"),
        ("Noé Petit", "contractuel_cdd"),
    ] {
        let a = n
            .store
            .create_agent(
                &AgentFields {
                    display_name: name.into(),
                    email: None,
                    data: json!({"statut": statut, "grade": "Technicien"}),
                },
                &AuditRecord::new("test", "agent.create", "agent"),
            )
            .await
            .unwrap();
        agents.push(a.id);
    }
    // The host (Lyon) asked for our agent `agent-77`.
    let object_id = format!("{}/mad/requests/{}", lyon.origin, Uuid::now_v7());
    let doc = json!({
        "id": object_id,
        "type": "MadRequest",
        "attributedTo": lyon.actor(),
        "origin": format!("{BASE}/actor"),
        "host": lyon.actor(),
        "agent": {"ref": "agent-77", "statut": "fonctionnaire_titulaire"},
        "terms": {
            "activities": "Appui au service des espaces verts",
            "quotitePct": 40,
            "startDate": "2027-03-01",
            "endDate": "2028-02-29",
            "reimbursement": {"mode": "full", "monthlyCostEstimate": 1180, "invoicingPeriod": "quarterly"},
            "noticeDays": 30
        },
        "state": "proposed",
        "version": 1,
        "published": "2026-11-22T10:15:00Z",
        "history": [{"version": 1, "transition": "send", "party": "host_hr", "from": "draft",
                     "to": "proposed", "at": "2026-11-22T10:15:00Z"}],
        "to": [format!("{BASE}/actor")]
    });
    let id = Uuid::now_v7();
    n.store
        .insert_mad_request(
            &NewMad {
                id,
                object_id,
                creator: lyon.actor(),
                our_side: "origin".into(),
                partner: lyon.actor(),
                agent_id: None,
                state: "proposed".into(),
                version: 1,
                document: doc,
            },
            None,
            None,
        )
        .await
        .unwrap();
    let path = format!("/console/mad/{id}");
    let linked = |n: &TestNode| {
        let store = n.store.clone();
        async move {
            store
                .mad_requests(&Default::default())
                .await
                .unwrap()
                .into_iter()
                .find(|r| r.id == id)
                .unwrap()
                .agent_id
        }
    };

    // The reader sees no form; the officer sees the local agents to choose from.
    let page = send(&n, "GET", &path, &reader, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("Rattacher l'agent"), "{}", page.body);
    let page = send(&n, "GET", &path, &rh, None).await;
    assert!(page.body.contains("Rattacher l'agent"), "{}", page.body);
    assert!(page.body.contains("Camille Martin"), "{}", page.body);
    let action = format!("{path}/agent");
    // Refused without the CSRF token, for a reader, and for an agent of another statut.
    let r = send(
        &n,
        "POST",
        &action,
        &rh,
        Some(&format!("agent_id={}", agents[0])),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = send(
        &n,
        "POST",
        &action,
        &reader,
        Some(&format!("_csrf={reader_csrf}&agent_id={}", agents[0])),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = send(
        &n,
        "POST",
        &action,
        &rh,
        Some(&format!("_csrf={csrf}&agent_id={}", agents[1])),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("situation statutaire"), "{}", r.body);
    let r = send(
        &n,
        "POST",
        &action,
        &rh,
        Some(&format!("_csrf={csrf}&agent_id=x")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(linked(&n).await, None, "nothing changed");
    // Linked.
    let r = send(
        &n,
        "POST",
        &action,
        &rh,
        Some(&format!("_csrf={csrf}&agent_id={}", agents[0])),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(linked(&n).await, Some(agents[0]));
    let page = send(&n, "GET", &format!("{path}?ok=agent_lie"), &rh, None).await;
    assert!(
        page.body.contains("est rattaché à la demande"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("href=\"/console/agents/{}\"", agents[0])),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Rattacher l'agent"), "{}", page.body);
    n.db.cleanup().await;
}

#[tokio::test]
async fn console_mad_link_agent_on_sqlite() {
    console_mad_link_agent(TestDb::sqlite()).await;
}

#[tokio::test]
async fn console_mad_link_agent_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        console_mad_link_agent(db).await;
    }
}
