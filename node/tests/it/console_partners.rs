//! The console's partner actions and agents' profiles through the router, on both
//! backends: what each role sees and may do, CSRF refusals that change nothing, and
//! escaping of what partners and forms carry.

use axum::http::StatusCode;
use passerelle_node::store::{
    AgentFields, AuditRecord, PartnerInfo, PartnershipChange, PartnershipState, Role,
};
use serde_json::json;

use crate::console::{send, sign_in};
use crate::feed_store::Partner;
use crate::http::node_on;
use crate::support::TestDb;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn console_partner_actions(db: TestDb) {
    let n = node_on(db, true).await;
    let (reader, _) = sign_in(&n, "lea", Role::Lecteur).await;
    let (rh, rh_csrf) = sign_in(&n, "remi", Role::Rh).await;
    let (admin, csrf) = sign_in(&n, "ada", Role::Admin).await;
    let lyon = Partner::new("https://rh.lyon.example");
    let p = n
        .store
        .upsert_partner(&PartnerInfo {
            actor_id: lyon.actor(),
            name: "<script>alert(1)</script> Ville de Lyon".into(),
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
                outgoing: None,
                incoming: Some((
                    PartnershipState::Pending,
                    Some(json!({
                        "id": format!("{}/activities/follow-1", lyon.origin),
                        "type": "Follow",
                        "actor": lyon.actor(),
                        "object": "https://rh.grenoble.example/actor"
                    })),
                )),
            },
            None,
            None,
        )
        .await
        .unwrap();

    // Every role reads the page; the forms, dead letters and blocks are for admins.
    let page = send(&n, "GET", "/console/partenaires", &reader, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(!page.body.contains("<script>alert(1)"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)"));
    assert!(page.body.contains("À décider par un administrateur"));
    assert!(!page.body.contains("/accepter"));
    assert!(!page.body.contains("Nœuds bloqués"));
    assert!(!page.body.contains("Envois abandonnés"));
    let page = send(&n, "GET", "/console/partenaires", &admin, None).await;
    assert!(
        page.body
            .contains(&format!("/console/partenaires/{}/accepter", p.id))
    );
    assert!(page.body.contains("Nœuds bloqués"));
    assert!(page.body.contains("Aucun envoi abandonné"));

    // Roles and CSRF: nothing changes.
    let refuse = format!("/console/partenaires/{}/refuser", p.id);
    let r = send(&n, "POST", &refuse, &rh, Some(&format!("_csrf={rh_csrf}"))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("rôle « administrateur »"), "{}", r.body);
    for body in ["", "_csrf=0000"] {
        let r = send(&n, "POST", &refuse, &admin, Some(body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert!(r.body.contains("Formulaire expiré"));
    }
    for path in [
        "/console/partenaires/demande",
        "/console/partenaires/rejouer",
        "/console/partenaires/blocages",
        "/console/partenaires/cercles",
    ] {
        assert_eq!(
            send(&n, "POST", path, &admin, Some("x=1")).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let still = n.store.partner(p.id).await.unwrap();
    assert_eq!(still.incoming, PartnershipState::Pending);

    // The admin refuses the request, through the federation service.
    let r = send(&n, "POST", &refuse, &admin, Some(&format!("_csrf={csrf}"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.headers["location"], "/console/partenaires?ok=refusee");
    assert_eq!(
        n.store.partner(p.id).await.unwrap().incoming,
        PartnershipState::Rejected
    );
    let page = send(&n, "GET", "/console/partenaires?ok=refusee", &admin, None).await;
    assert!(
        page.body
            .contains("La demande de partenariat a été refusée.")
    );
    assert!(page.body.contains("Aucune demande en attente."));

    // Sync now, retry now, replay.
    for action in ["synchroniser", "relancer"] {
        let r = send(
            &n,
            "POST",
            &format!("/console/partenaires/{}/{action}", p.id),
            &admin,
            Some(&format!("_csrf={csrf}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}: {}", r.body);
    }
    let r = send(
        &n,
        "POST",
        "/console/partenaires/rejouer",
        &admin,
        Some(&format!("_csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);

    // A circle, then deleted.
    let r = send(
        &n,
        "POST",
        "/console/partenaires/cercles",
        &admin,
        Some(&format!(
            "_csrf={csrf}&name={}&members={}",
            enc("Sud <Isère>"),
            enc(&lyon.actor())
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let circles = n.store.circles().await.unwrap();
    assert_eq!(circles.len(), 1);
    assert_eq!(circles[0].members, vec![lyon.actor()]);
    let page = send(&n, "GET", "/console/partenaires", &reader, None).await;
    assert!(page.body.contains("Sud &lt;Isère&gt;"), "{}", page.body);
    let r = send(
        &n,
        "POST",
        &format!("/console/partenaires/cercles/{}/supprimer", circles[0].id),
        &admin,
        Some(&format!("_csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(n.store.circles().await.unwrap().is_empty());

    // A block with a hostile reason, shown escaped, then lifted.
    let r = send(
        &n,
        "POST",
        "/console/partenaires/blocages",
        &admin,
        Some(&format!(
            "_csrf={csrf}&target={}&kind=domaine&reason={}",
            enc("https://spam.example"),
            enc("<b>spam</b>")
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = send(&n, "GET", "/console/partenaires", &admin, None).await;
    assert!(
        page.body.contains("&lt;b&gt;spam&lt;&#x2f;b&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>spam</b>"));
    let r = send(
        &n,
        "POST",
        "/console/partenaires/blocages/lever",
        &admin,
        Some(&format!(
            "_csrf={csrf}&target={}",
            enc("https://spam.example")
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(n.store.blocks().await.unwrap().is_empty());
    n.db.cleanup().await;
}

#[tokio::test]
async fn console_partner_actions_on_sqlite() {
    console_partner_actions(TestDb::sqlite()).await;
}

#[tokio::test]
async fn console_partner_actions_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        console_partner_actions(db).await;
    }
}

async fn console_agent_profiles(db: TestDb) {
    let n = node_on(db, true).await;
    let (reader, _) = sign_in(&n, "lea", Role::Lecteur).await;
    let (rh, csrf) = sign_in(&n, "remi", Role::Rh).await;
    let agent = n
        .store
        .create_agent(
            &AgentFields {
                display_name: "Camille Martin".into(),
                email: None,
                data: json!({"statut": "fonctionnaire_titulaire", "grade": "Technicien"}),
            },
            &AuditRecord::new("test", "agent.create", "agent"),
        )
        .await
        .unwrap();
    let path = format!("/console/agents/{}", agent.id);
    let page = send(&n, "GET", &path, &reader, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Aucun profil publié"));
    assert!(!page.body.contains("/profil\""));
    let page = send(&n, "GET", &path, &rh, None).await;
    assert!(page.body.contains(&format!("action=\"{path}/profil\"")));
    assert!(page.body.contains("Proposer une mise à disposition"));

    let publish = format!("{path}/profil");
    let fields = format!(
        "visibility=federation&kinds=immersion_offer&themes={}&available_from=2027-01-01&quotite_max=30&communes=38185&volunteer_role=tuteur_immersion&volunteer_days=4",
        enc("biodiversité, <script>x</script>")
    );
    // CSRF and role.
    let r = send(&n, "POST", &publish, &rh, Some(&fields)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&n, "POST", &publish, &reader, Some(&fields)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Without the agent's consent: refused in French.
    let r = send(
        &n,
        "POST",
        &publish,
        &rh,
        Some(&format!("_csrf={csrf}&{fields}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("consentement"), "{}", r.body);
    assert!(n.store.profiles().await.unwrap().is_empty());
    // With it.
    let r = send(
        &n,
        "POST",
        &publish,
        &rh,
        Some(&format!(
            "_csrf={csrf}&consent_text_version=v2026-1&{fields}"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = send(&n, "GET", &path, &reader, None).await;
    for expected in [
        "Toutes les collectivités partenaires",
        "v2026-1",
        "Tuteur d&#x27;immersion",
        "à partir du 1er janvier 2027",
        "30 % au plus",
        "38185",
        "Offres qui correspondent",
    ] {
        assert!(page.body.contains(expected), "{expected}: {}", page.body);
    }
    assert!(!page.body.contains("<script>x"));
    assert!(page.body.contains("&lt;script&gt;x"));
    // Withdrawn.
    let profile = n.store.profiles().await.unwrap().remove(0);
    let r = send(
        &n,
        "POST",
        &format!("{path}/profil/{}/retirer", profile.id),
        &rh,
        Some(&format!("_csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = send(&n, "GET", &format!("{path}?ok=profil_retire"), &rh, None).await;
    assert!(page.body.contains("retiré le"), "{}", page.body);
    assert!(page.body.contains("Le profil a été retiré"));
    n.db.cleanup().await;
}

#[tokio::test]
async fn console_agent_profiles_on_sqlite() {
    console_agent_profiles(TestDb::sqlite()).await;
}

#[tokio::test]
async fn console_agent_profiles_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        console_agent_profiles(db).await;
    }
}
