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
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("consentement"), "{}", r.body);
    assert!(r.body.contains(r#"role="alert""#), "{}", r.body);
    assert!(
        r.body.contains(r#"aria-invalid="true" aria-describedby="consent_text_version-aide erreur-consent_text_version""#),
        "{}",
        r.body
    );
    // The form is shown again with what was typed, escaped.
    assert!(r.body.contains("&lt;script&gt;x"), "{}", r.body);
    assert!(!r.body.contains("<script>x"), "{}", r.body);
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

/// What the outbox holds for an object: its activity types, oldest first.
async fn activities_for(n: &crate::http::TestNode, object_id: &str) -> Vec<String> {
    let mut items = n.store.outbox(None, None, 500, false).await.unwrap();
    items.reverse();
    items
        .into_iter()
        .filter(|i| i.activity.object_id == object_id)
        .map(|i| i.activity.activity_type)
        .collect()
}

async fn profile_of(n: &crate::http::TestNode, token: &str, id: &str) -> serde_json::Value {
    let (s, v) = n
        .call("GET", &format!("/api/v1/profiles/{id}"), Some(token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

async fn unchanged(n: &crate::http::TestNode, token: &str, id: &str, object_id: &str) {
    let v = profile_of(n, token, id).await;
    assert_eq!(v["version"], 1, "{v}");
    assert_eq!(v["document"]["availability"]["quotitePctMax"], 30, "{v}");
    assert_eq!(activities_for(n, object_id).await, ["Create"]);
}

/// Editing an agent's profile from the console: the form filled with the profile,
/// escaped; CSRF, role and stale-form refusals; French messages for what cannot be
/// converted and for the domain's rules, nothing changed; a successful edit is a new
/// version seen by the API, sent as an `Update` to the partner that received it, and keeps
/// what the form does not show; narrowing the scope sends the partner a `Delete`.
async fn console_agent_profile_edit(db: TestDb) {
    let n = node_on(db, true).await;
    let (reader, reader_csrf) = sign_in(&n, "lea", Role::Lecteur).await;
    let (rh, csrf) = sign_in(&n, "remi", Role::Rh).await;
    let token = n.token(Role::Rh).await;
    // A partner both ways, which receives federation-wide profiles.
    let lyon = Partner::new("https://rh.lyon.example");
    n.store
        .upsert_partner(&PartnerInfo {
            actor_id: lyon.actor(),
            name: "Ville de Lyon".into(),
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
    let agent = n
        .store
        .create_agent(
            &AgentFields {
                display_name: "Camille Martin".into(),
                email: None,
                data: json!({"statut": "fonctionnaire_titulaire"}),
            },
            &AuditRecord::new("test", "agent.create", "agent"),
        )
        .await
        .unwrap();
    // Published through the API, with members the form does not show.
    let (s, created) = n
        .call(
            "POST",
            "/api/v1/profiles",
            Some(&token),
            Some(json!({
                "agent_id": agent.id,
                "consent_text_version": "v2026-1",
                "profile": {
                    "visibility": "federation",
                    "categorie": "B",
                    "filiere": "technique",
                    "metiersCurrent": [{"rome": {"code": "A1203", "label": "Entretien des espaces verts"}}],
                    "skills": ["taille", "\"x\" onmouseover='y'"],
                    "appetites": [
                        {"kinds": ["immersion_offer"], "themes": ["biodiversité", "<script>x</script>"],
                         "metiersWanted": [{"cnfpt": {"label": "Jardinier"}}, {"rome": {"code": "A1203", "label": "Espaces verts"}}],
                         "horizon": "6_months"},
                        {"kinds": ["training_session"], "themes": ["compostage"]}
                    ],
                    "volunteering": [{"role": "tuteur_immersion", "skills": ["taille douce"], "daysPerYear": 4}],
                    "availability": {"from": "2027-01-01", "quotitePctMax": 30},
                    "area": {"communes": ["38185"], "maxTravelMinutes": 40}
                }
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let object_id = created["object_id"].as_str().unwrap().to_owned();
    assert_eq!(created["recipients"][0]["actor"], lyon.actor().as_str());
    assert_eq!(activities_for(&n, &object_id).await, ["Create"]);
    let page_path = format!("/console/agents/{}", agent.id);
    let edit = format!("{page_path}/profil/{id}/modifier");

    // The agent's page links to the form for RH only.
    let page = send(&n, "GET", &page_path, &rh, None).await;
    assert!(
        page.body.contains(&format!(r#"href="{edit}""#)),
        "{}",
        page.body
    );
    let page = send(&n, "GET", &page_path, &reader, None).await;
    assert!(!page.body.contains("/modifier\">Modifier ce profil"));
    assert_eq!(
        send(&n, "GET", &edit, &reader, None).await.status,
        StatusCode::FORBIDDEN
    );

    // The form, filled and escaped, every input labelled.
    let form = send(&n, "GET", &edit, &rh, None).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    for expected in [
        "Modifier le profil",
        r#"<option value="federation" selected>"#,
        r#"<option value="B" selected>"#,
        r#"<option value="technique" selected>"#,
        r#"name="kinds" value="immersion_offer" checked"#,
        r#"value="biodiversité, &lt;script&gt;x&lt;&#x2f;script&gt;""#,
        r#"value="taille, &quot;x&quot; onmouseover=&#x27;y&#x27;""#,
        r#"id="metiers" name="metiers" type="text" value="A1203""#,
        r#"<option value="6_months" selected>"#,
        r#"<option value="tuteur_immersion" selected>"#,
        r#"id="available_from" name="available_from" type="date" value="2027-01-01""#,
        r#"id="quotite_max" name="quotite_max" type="text" inputmode="numeric" class="short" value="30""#,
        r#"value="38185""#,
        r#"name="version" value="1""#,
        // Attribute values are escaped (`/` too); browsers read them unescaped.
        &format!(r#"action="{}""#, edit.replace('/', "&#x2f;")),
    ] {
        assert!(form.body.contains(expected), "{expected}: {}", form.body);
    }
    assert!(!form.body.contains("<script>x"), "{}", form.body);
    assert!(!form.body.contains("\"x\" onmouseover"), "{}", form.body);
    let inputs = form.body.matches("<input id=\"").count()
        + form.body.matches("<select id=\"").count()
        + form.body.matches("<textarea id=\"").count();
    let labels = form.body.matches("<label for=\"").count();
    assert!(labels >= inputs, "{labels} labels for {inputs} inputs");

    let fields = |changes: &[(&str, &str)]| {
        let mut f: Vec<(&str, String)> = [
            ("visibility", "federation"),
            ("categorie", "B"),
            ("filiere", "technique"),
            ("skills", "taille, \"x\" onmouseover='y'"),
            ("kinds", "immersion_offer"),
            ("metiers", "A1203"),
            ("themes", "biodiversité, <script>x</script>"),
            ("horizon", "6_months"),
            ("volunteer_role", "tuteur_immersion"),
            ("volunteer_days", "4"),
            ("available_from", "2027-01-01"),
            ("quotite_max", "30"),
            ("communes", "38185"),
            ("travel", "40"),
            ("version", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        for (k, v) in changes {
            f.retain(|(x, _)| x != k);
            f.push((k, (*v).to_owned()));
        }
        f.iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    // CSRF: without the token, or with another session's; a reader is refused.
    let changed = fields(&[("quotite_max", "50")]);
    for body in [changed.clone(), format!("_csrf={reader_csrf}&{changed}")] {
        let r = send(&n, "POST", &edit, &rh, Some(&body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.body.contains("Formulaire expiré"), "{}", r.body);
    }
    let r = send(
        &n,
        "POST",
        &edit,
        &reader,
        Some(&format!("_csrf={reader_csrf}&{changed}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(r.body.contains("rôle « RH »"), "{}", r.body);
    unchanged(&n, &token, &id, &object_id).await;

    // The domain's rules, in French, tied to their fields: dates in order, quotité.
    let r = send(
        &n,
        "POST",
        &edit,
        &rh,
        Some(&format!(
            "_csrf={csrf}&{}",
            fields(&[
                ("available_from", "2027-06-01"),
                ("available_until", "2027-01-01"),
                ("quotite_max", "150"),
            ])
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for expected in [
        r#"role="alert""#,
        "Le profil n&#x27;a pas été modifié",
        "Les dates sont dans le mauvais ordre",
        "Le pourcentage doit être compris entre 1 et 100 ; valeur indiquée : 150.",
        r##"<a href="#available_until">"##,
        r#"value="2027-01-01" aria-invalid="true" aria-describedby="erreur-available_until""#,
        r#"value="150" aria-invalid="true" aria-describedby="erreur-quotite_max""#,
    ] {
        assert!(r.body.contains(expected), "{expected}: {}", r.body);
    }
    assert!(!r.body.contains("<script>x"), "{}", r.body);
    unchanged(&n, &token, &id, &object_id).await;

    // What cannot be converted is refused in French before the service.
    let r = send(
        &n,
        "POST",
        &edit,
        &rh,
        Some(&format!(
            "_csrf={csrf}&{}",
            fields(&[
                ("quotite_max", "la moitié"),
                ("communes", "38185, 99999"),
                ("metiers", "Z9999"),
                ("available_until", "31/12/2027"),
            ])
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    for expected in [
        "« la moitié » n&#x27;est pas un nombre entier positif.",
        "« 99999 » n&#x27;est pas un code commune de l&#x27;INSEE",
        "« Z9999 » n&#x27;est pas un code ROME",
        "« 31&#x2f;12&#x2f;2027 » n&#x27;est pas une date (AAAA-MM-JJ).",
        r#"aria-invalid="true" aria-describedby="metiers-aide erreur-metiers""#,
    ] {
        assert!(r.body.contains(expected), "{expected}: {}", r.body);
    }
    unchanged(&n, &token, &id, &object_id).await;

    // A new scope needs the agent's consent; circles need at least one circle.
    let r = send(
        &n,
        "POST",
        &edit,
        &rh,
        Some(&format!(
            "_csrf={csrf}&{}",
            fields(&[("visibility", "partner_circle")])
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .contains("Choisissez au moins un cercle de partenaires"),
        "{}",
        r.body
    );
    assert!(r.body.contains(r##"<a href="#circles">"##), "{}", r.body);
    unchanged(&n, &token, &id, &object_id).await;

    // A form opened on an older version is refused, nothing changed.
    let r = send(
        &n,
        "POST",
        &edit,
        &rh,
        Some(&format!(
            "_csrf={csrf}&{}",
            fields(&[("quotite_max", "50"), ("version", "0")])
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body
            .contains("il a changé depuis l&#x27;ouverture du formulaire"),
        "{}",
        r.body
    );
    unchanged(&n, &token, &id, &object_id).await;

    // Saved: a new version, seen by the API, sent to Lyon as an Update; what the form
    // does not show is kept.
    let r = send(
        &n,
        "POST",
        &edit,
        &rh,
        Some(&format!(
            "_csrf={csrf}&{}",
            fields(&[
                ("quotite_max", "50"),
                ("themes", "jardins partagés"),
                ("metiers", "a1203, k1404"),
                ("remote_ok", "1"),
            ])
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(
        r.headers["location"],
        format!("{page_path}?ok=profil_modifie#profils").as_str()
    );
    let v = profile_of(&n, &token, &id).await;
    assert_eq!(v["version"], 2, "{v}");
    let doc = &v["document"];
    assert_eq!(doc["availability"]["quotitePctMax"], 50, "{doc}");
    assert_eq!(doc["availability"]["from"], "2027-01-01", "{doc}");
    assert_eq!(doc["area"]["remoteOk"], true, "{doc}");
    assert_eq!(doc["appetites"][0]["themes"], json!(["jardins partagés"]));
    let wanted = &doc["appetites"][0]["metiersWanted"];
    assert_eq!(wanted[0]["cnfpt"]["label"], "Jardinier", "{wanted}");
    assert_eq!(wanted[1]["rome"]["label"], "Espaces verts", "{wanted}");
    assert_eq!(wanted[2]["rome"]["code"], "K1404", "{wanted}");
    assert!(wanted[2]["rome"]["label"].is_string(), "{wanted}");
    assert_eq!(doc["appetites"][1]["themes"], json!(["compostage"]));
    assert_eq!(doc["metiersCurrent"][0]["rome"]["code"], "A1203");
    assert_eq!(doc["volunteering"][0]["skills"], json!(["taille douce"]));
    assert_eq!(doc["skills"][1], "\"x\" onmouseover='y'");
    assert_eq!(activities_for(&n, &object_id).await, ["Create", "Update"]);
    let page = send(
        &n,
        "GET",
        &format!("{page_path}?ok=profil_modifie"),
        &reader,
        None,
    )
    .await;
    assert!(
        page.body.contains("Le profil a été modifié"),
        "{}",
        page.body
    );
    for expected in [
        "à partir du 1er janvier 2027 ; 50 % au plus",
        "communes 38185 ; 40 min de trajet au plus ; travail à distance possible",
        "Immersion (Vis mon job) ; métiers : Jardinier, Espaces verts, ",
        "thèmes : jardins partagés ; dans les 6 mois",
    ] {
        assert!(page.body.contains(expected), "{expected}: {}", page.body);
    }
    assert!(!page.body.contains("\"x\" onmouseover"), "{}", page.body);

    // Narrowed to our HR only: Lyon receives the profile's deletion.
    let r = send(
        &n,
        "POST",
        &edit,
        &rh,
        Some(&format!(
            "_csrf={csrf}&{}",
            fields(&[("visibility", "origin_hr"), ("version", "2")])
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let v = profile_of(&n, &token, &id).await;
    assert_eq!(
        (v["version"].as_i64(), v["visibility"].as_str()),
        (Some(3), Some("origin_hr"))
    );
    assert!(v["recipients"][0]["deleted_at"].is_string(), "{v}");
    assert_eq!(
        activities_for(&n, &object_id).await,
        ["Create", "Update", "Delete"]
    );

    // A withdrawn profile cannot be edited.
    let r = send(
        &n,
        "POST",
        &format!("{page_path}/profil/{id}/retirer"),
        &rh,
        Some(&format!("_csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = send(&n, "GET", &edit, &rh, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body.contains("retiré par l&#x27;agent"), "{}", r.body);
    // Another agent's path does not reach the profile.
    let r = send(
        &n,
        "GET",
        &format!(
            "/console/agents/{}/profil/{id}/modifier",
            uuid::Uuid::now_v7()
        ),
        &rh,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    n.db.cleanup().await;
}

#[tokio::test]
async fn console_agent_profile_edit_on_sqlite() {
    console_agent_profile_edit(TestDb::sqlite()).await;
}

#[tokio::test]
async fn console_agent_profile_edit_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        console_agent_profile_edit(db).await;
    }
}
