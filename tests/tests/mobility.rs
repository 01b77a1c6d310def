//! *Mises à disposition* between real nodes: a complete MAD from proposal to closed (the
//! host proposes, the origin conducts the legal steps, both employers sign the
//! convention, dates start and end it), a rejection, a withdrawal, an early end, a
//! renewal, and transitions refused at both ends — the sender's API before sending, the
//! receiver when a transition reaches it that its state does not allow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use passerelle_protocol::keys::PublicKey;
use passerelle_protocol::vocab::{Activity, ActivityType, ObjectRef};
use passerelle_tests::{
    Backend, GRENOBLE, ISERE, METROPOLE, Node, node_key, postgres_available, signed_activity,
    wait_until,
};
use serde_json::{Value, json};
use time::{Date, Duration as Days, OffsetDateTime};

const PATIENCE: Duration = Duration::from_secs(40);

fn today() -> Date {
    OffsetDateTime::now_utc().date()
}

fn day(offset: i64) -> String {
    (today() + Days::days(offset)).to_string()
}

async fn partners_both_ways(a: &Node, b: &Node) {
    a.follow(b).await;
    b.follow(a).await;
    for (x, y) in [(a, b), (b, a)] {
        wait_until(
            &format!("{} and {} are partners", x.name, y.name),
            PATIENCE,
            || async {
                x.partner(y)
                    .await
                    .is_some_and(|p| p["outgoing"] == "accepted" && p["incoming"] == "accepted")
            },
        )
        .await;
    }
}

/// Three collectivités, partners two by two, open policy; Grenoble declares its EPCI
/// (the Métropole), which makes a reimbursement waiver lawful between them.
async fn three_nodes() -> (Node, Node, Node) {
    let backend = if postgres_available().await {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let metropole = Node::start(&METROPOLE, backend).await;
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    for n in [&isere, &metropole, &grenoble] {
        n.set_policy("open").await;
    }
    let (s, b) = grenoble
        .send(
            reqwest::Method::PUT,
            "/api/v1/node/membership",
            &json!({ "epci_siren": METROPOLE.siren }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    partners_both_ways(&isere, &metropole).await;
    partners_both_ways(&grenoble, &metropole).await;
    (isere, metropole, grenoble)
}

async fn agent(node: &Node, name: &str, statut: &str) -> String {
    let (s, b) = node
        .post(
            "/api/v1/agents",
            &json!({
                "display_name": name,
                "data": {"statut": statut, "categorie": "B", "filiere": "technique",
                         "grade": "Technicien principal de 2e classe", "echelon": 5}
            }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b["id"].as_str().unwrap().to_owned()
}

fn terms(start: i64, end: i64, reimbursement: Value, notice: u32) -> Value {
    json!({
        "activities": "Appui à la direction de l'environnement pour le plan de gestion différenciée des espaces verts.",
        "place": "3 rue Malakoff, Grenoble",
        "quotitePct": 40,
        "hebdoMinutes": 840,
        "schedule": "Lundi et mardi",
        "startDate": day(start),
        "endDate": day(end),
        "evaluation": "host_report_to_origin",
        "leaveAuthority": "origin",
        "reimbursement": reimbursement,
        "noticeDays": notice
    })
}

fn full() -> Value {
    json!({"mode": "full", "monthlyCostEstimate": 1180, "invoicingPeriod": "quarterly"})
}

fn waived() -> Value {
    json!({"mode": "waived", "waiverReason": "collectivite_epa_membre_ou_rattache",
           "waiverExtentPct": 100, "waiverDurationMonths": 12, "monthlyCostEstimate": 1180,
           "invoicingPeriod": "quarterly"})
}

/// The request `object_id` as `node` sees it (its local view), if it holds it.
async fn request(node: &Node, object_id: &str) -> Option<Value> {
    let (s, list) = node.get("/api/v1/mad-requests").await;
    assert_eq!(s, 200, "{list}");
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["object_id"] == object_id)?["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, view) = node.get(&format!("/api/v1/mad-requests/{id}")).await;
    assert_eq!(s, 200, "{view}");
    Some(view)
}

async fn wait_state(node: &Node, object_id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let view = request(node, object_id).await;
        if let Some(v) = &view
            && v["state"] == state
            && v["pending"].is_null()
        {
            return v.clone();
        }
        if tokio::time::Instant::now() > deadline {
            let (_, inbox) = node.get("/api/v1/inbox").await;
            panic!(
                "timed out waiting for {} to hold {object_id} in state {state}; it holds: {}\ninbox: {inbox}",
                node.name,
                view.map(|v| json!({"state": v["state"], "pending": v["pending"], "refusal": v["refusal"], "history": v["history"]})).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both employers hold the same version, state and history.
async fn wait_both(a: &Node, b: &Node, object_id: &str, state: &str) -> (Value, Value) {
    let x = wait_state(a, object_id, state).await;
    let y = wait_state(b, object_id, state).await;
    wait_until(
        &format!(
            "{} and {} hold the same version of {object_id}",
            a.name, b.name
        ),
        PATIENCE,
        || async {
            let x = request(a, object_id).await.unwrap();
            let y = request(b, object_id).await.unwrap();
            x["version"] == y["version"] && x["document"] == y["document"]
        },
    )
    .await;
    let _ = (x, y);
    (
        request(a, object_id).await.unwrap(),
        request(b, object_id).await.unwrap(),
    )
}

async fn fire(node: &Node, view: &Value, transition: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({ "transition": transition });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    node.post(
        &format!(
            "/api/v1/mad-requests/{}/transitions",
            view["id"].as_str().unwrap()
        ),
        &body,
    )
    .await
}

async fn fire_ok(node: &Node, object_id: &str, transition: &str, extra: Value) -> Value {
    let view = request(node, object_id).await.unwrap();
    let (s, b) = fire(node, &view, transition, extra).await;
    assert!(
        s == 200 || s == 202,
        "{} fires {transition}: {s} {b}",
        node.name
    );
    b
}

async fn sign(node: &Node, object_id: &str) -> Value {
    let view = request(node, object_id).await.unwrap();
    let (s, b) = node
        .post(
            &format!(
                "/api/v1/mad-requests/{}/signature",
                view["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert!(s == 200 || s == 202, "{} signs: {s} {b}", node.name);
    b
}

fn refused(s: u16, b: &Value) {
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["code"], "mad_transition_refused", "{b}");
    assert_eq!(
        b["type"],
        "https://w3id.org/passerelle/problems#mad_transition_refused"
    );
}

fn public_key(node_doc: &Value) -> Vec<(String, PublicKey)> {
    node_doc["assertionMethod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                PublicKey::from_multikey(k["publicKeyMultibase"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

async fn actor_doc(node: &Node) -> Value {
    reqwest::get(node.actor())
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The host proposes (answering its MAD offer), the origin agrees and conducts the legal
/// steps, both sign the convention, the arrêté is issued, the dates start and end the
/// MAD, the agent is reintegrated and the request closed. The agent's identity reaches
/// the host only once the agent agreed; both nodes hold the same history; the
/// convention's proof set verifies with both employers' keys; a transition out of turn
/// is refused with a French problem naming the state, the action, who may fire it and
/// the law.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_mad_from_proposal_to_closed_between_two_nodes() {
    let (isere, metropole, grenoble) = three_nodes().await;
    let agent_id = agent(&grenoble, "Camille Martin", "fonctionnaire_titulaire").await;

    // The Métropole (host) proposes: 12 months that ended yesterday, so that the dates
    // start and end it once the arrêté is issued; a waiver, lawful between a commune and
    // its EPCI.
    let (s, created) = metropole
        .post(
            "/api/v1/mad-requests",
            &json!({
                "partner": grenoble.actor(),
                "our_side": "host",
                "agent_ref": "dossier-2026-17",
                "agent_statut": "fonctionnaire_titulaire",
                "terms": terms(-365, -1, waived(), 30),
                "send": true
            }),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["state"], "proposed");
    assert_eq!(created["we_created"], true);
    assert_eq!(created["history"][0]["transition"], "send");
    let oid = created["object_id"].as_str().unwrap().to_owned();

    let at_origin = wait_state(&grenoble, &oid, "proposed").await;
    assert_eq!(at_origin["our_side"], "origin");
    assert_eq!(at_origin["we_created"], false);
    assert_eq!(at_origin["partner_name"], METROPOLE.name);
    let offered: Vec<&str> = at_origin["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["transition"].as_str().unwrap())
        .collect();
    assert!(
        offered.contains(&"agree_terms") && offered.contains(&"reject"),
        "{offered:?}"
    );
    // Only the two employers hold it.
    assert!(request(&isere, &oid).await.is_none());

    // Out of turn: the convention cannot go to the agent before the terms are agreed.
    let (s, b) = fire(&grenoble, &at_origin, "send_to_agent", json!({})).await;
    refused(s, &b);
    let detail = b["detail"].as_str().unwrap();
    assert!(detail.contains("« proposée » (proposed)"), "{detail}");
    assert!(
        detail.contains("transmettre le projet de convention"),
        "{detail}"
    );
    assert!(
        detail.contains("les RH de l'employeur d'origine"),
        "{detail}"
    );
    assert!(detail.contains("décret 2008-580"), "{detail}");
    // The host cannot accept its own proposal.
    let at_host = request(&metropole, &oid).await.unwrap();
    let (s, b) = fire(&metropole, &at_host, "agree_terms", json!({})).await;
    refused(s, &b);
    assert!(
        b["detail"].as_str().unwrap().contains("autre employeur"),
        "{b}"
    );
    // The host cannot speak for the agent.
    let (s, b) = fire(&metropole, &at_host, "agent_agrees", json!({})).await;
    refused(s, &b);

    // The origin links its agent and agrees: the transition goes to the creator (202),
    // which records it.
    let (s, b) = grenoble
        .send(
            reqwest::Method::PUT,
            &format!(
                "/api/v1/mad-requests/{}/agent",
                at_origin["id"].as_str().unwrap()
            ),
            &json!({ "agent_id": agent_id }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = fire(&grenoble, &at_origin, "agree_terms", json!({})).await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["pending"]["transition"], "agree_terms");
    wait_both(&metropole, &grenoble, &oid, "terms_agreed").await;

    // The draft convention goes to the agent; no identity has travelled yet.
    fire_ok(&grenoble, &oid, "send_to_agent", json!({})).await;
    let (h, o) = wait_both(&metropole, &grenoble, &oid, "agent_review").await;
    assert!(h["agent"]["disclosed"].is_null(), "{h}");
    assert!(o["conventions"][0]["document"]["agentIdentity"].is_null());
    assert_eq!(o["conventions"][0]["signed_by_origin"], false);

    // The agent agrees in writing: now (and only now) the host learns who it is.
    fire_ok(&grenoble, &oid, "agent_agrees", json!({})).await;
    let (h, o) = wait_both(&metropole, &grenoble, &oid, "agent_agreed").await;
    assert_eq!(h["agent"]["disclosed"]["name"], "Camille Martin");
    assert_eq!(
        h["agent"]["disclosed"]["grade"],
        "Technicien principal de 2e classe"
    );
    assert_eq!(o["agent"]["local_name"], "Camille Martin");
    assert!(h["agent"]["local_id"].is_null());

    fire_ok(
        &grenoble,
        &oid,
        "inform_assembly",
        json!({"date": day(-2), "reference": "Conseil municipal, délibération 2026-114"}),
    )
    .await;
    let (h, _) = wait_both(&metropole, &grenoble, &oid, "assembly_informed").await;
    let step = h["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        step["reference"],
        "Conseil municipal, délibération 2026-114"
    );
    assert_eq!(step["party"], "origin_authority");

    // The host may not sign first; the origin signs, then the host completes the set.
    let at_host = request(&metropole, &oid).await.unwrap();
    let (s, b) = metropole
        .post(
            &format!(
                "/api/v1/mad-requests/{}/signature",
                at_host["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    sign(&grenoble, &oid).await;
    wait_until(
        "the host holds the origin's signature",
        PATIENCE,
        || async {
            request(&metropole, &oid).await.unwrap()["conventions"][0]["signed_by_origin"] == true
        },
    )
    .await;
    let signed = sign(&metropole, &oid).await;
    assert_eq!(signed["state"], "convention_signed", "{signed}");
    let (h, o) = wait_both(&metropole, &grenoble, &oid, "convention_signed").await;
    for v in [&h, &o] {
        let c = &v["conventions"][0];
        assert_eq!(c["signed_by_origin"], true);
        assert_eq!(c["signed_by_host"], true);
        assert_eq!(c["signatures"].as_array().unwrap().len(), 2, "{c}");
    }
    assert_eq!(
        h["conventions"][0]["document"], o["conventions"][0]["document"],
        "both employers hold the same signed convention"
    );
    // The proof set verifies with both employers' published keys, and names both.
    let convention = o["conventions"][0]["document"].clone();
    let mut keys = public_key(&actor_doc(&grenoble).await);
    keys.extend(public_key(&actor_doc(&metropole).await));
    let verified = passerelle_protocol::proof::verify(convention.clone(), &keys).unwrap();
    assert_eq!(verified.signers().len(), 2);
    assert!(verified.signers()[0].starts_with(&grenoble.actor()));
    assert!(verified.signers()[1].starts_with(&metropole.actor()));
    assert_eq!(convention["agentIdentity"]["name"], "Camille Martin");
    let kinds: Vec<&str> = convention["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for k in [
        "nature_activites",
        "conditions_emploi",
        "controle_evaluation",
        "remboursement",
        "preavis",
        "duree",
        "lieu_temps_travail",
        "renouvellement_fin_anticipee",
        "deontologie",
    ] {
        assert!(kinds.contains(&k), "{k} missing in {kinds:?}");
    }
    // The printable page (French) and `passerelle verify` on the file.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/mad-requests/{}/conventions/0/html",
            grenoble.base,
            o["id"].as_str().unwrap()
        ))
        .bearer_auth(&grenoble.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("Convention de mise à disposition"), "{html}");
    assert!(html.contains("Camille Martin"));
    assert!(html.contains("Grenoble-Alpes Métropole"));
    let file = grenoble.config.data.dir.join("convention.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&convention).unwrap()).unwrap();
    let origin_actor = grenoble.config.data.dir.join("origin-actor.json");
    let host_actor = grenoble.config.data.dir.join("host-actor.json");
    std::fs::write(&origin_actor, actor_doc(&grenoble).await.to_string()).unwrap();
    std::fs::write(&host_actor, actor_doc(&metropole).await.to_string()).unwrap();
    let (code, out, err) = grenoble.cli(&[
        "verify",
        file.to_str().unwrap(),
        "--actor",
        origin_actor.to_str().unwrap(),
        "--actor",
        host_actor.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Ville de Grenoble"), "{out}");

    // The arrêté: the start date is reached, and the term too (the period is over).
    fire_ok(
        &grenoble,
        &oid,
        "issue_arrete",
        json!({"date": day(-1), "reference": "Arrêté n° 2026-A-311"}),
    )
    .await;
    let (h, o) = wait_both(&metropole, &grenoble, &oid, "ending").await;
    let trail: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert!(
        trail.ends_with(&["issue_arrete", "start", "reach_term"]),
        "{trail:?}"
    );
    assert_eq!(h["history"], o["history"]);

    fire_ok(&grenoble, &oid, "reintegrate", json!({})).await;
    wait_both(&metropole, &grenoble, &oid, "reintegrated").await;
    fire_ok(&grenoble, &oid, "close", json!({})).await;
    let (h, o) = wait_both(&metropole, &grenoble, &oid, "closed").await;
    assert_eq!(h["is_final"], true);
    assert!(h["actions"].as_array().unwrap().is_empty());
    assert_eq!(h["document"], o["document"]);
    let trail: Vec<&str> = o["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert_eq!(
        trail,
        [
            "send",
            "agree_terms",
            "send_to_agent",
            "agent_agrees",
            "inform_assembly",
            "sign_convention",
            "issue_arrete",
            "start",
            "reach_term",
            "reintegrate",
            "close"
        ]
    );
    // A final state has no way out, at the sender's API.
    let (s, b) = fire(&grenoble, &o, "reintegrate", json!({})).await;
    refused(s, &b);
    assert!(b["detail"].as_str().unwrap().contains("close"), "{b}");

    isere.shutdown().await;
    metropole.shutdown().await;
    grenoble.shutdown().await;
}

/// The Département proposes a MAD with a reimbursement waiver to the Métropole: the law
/// does not allow it between them, so the Métropole cannot agree (refused at its API),
/// and rejects; a rejected request has no way out. A second request is withdrawn; a
/// stagiaire cannot be proposed. A transition that reaches the creator when its state
/// does not allow it is refused there too, and the refusal comes back to the sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejection_withdrawal_and_refusals_at_both_ends() {
    let (isere, metropole, grenoble) = three_nodes().await;
    let titulaire = agent(&isere, "Dominique Bernard", "fonctionnaire_titulaire").await;
    let stagiaire = agent(&isere, "Alex Petit", "fonctionnaire_stagiaire").await;

    // A stagiaire can never be mis à disposition: not even a draft.
    let (s, b) = isere
        .post(
            "/api/v1/mad-requests",
            &json!({"partner": metropole.actor(), "our_side": "origin", "agent_id": stagiaire,
                    "terms": terms(30, 395, full(), 30)}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("stagiaire"),
        "{b}"
    );
    // A CDI contractuel only between a collectivité and a body it belongs to (or the
    // other listed cases): not between the Département and the Métropole. The draft is
    // kept, the sending refused by the state machine.
    let cdi = agent(&isere, "Lou Moreau", "contractuel_cdi").await;
    let (s, draft) = isere
        .post(
            "/api/v1/mad-requests",
            &json!({"partner": metropole.actor(), "our_side": "origin", "agent_id": cdi,
                    "terms": terms(30, 395, full(), 30)}),
        )
        .await;
    assert_eq!(s, 201, "{draft}");
    assert_eq!(draft["state"], "draft");
    let (s, b) = fire(&isere, &draft, "send", json!({})).await;
    refused(s, &b);
    let detail = b["detail"].as_str().unwrap();
    assert!(detail.contains("contractuel en CDI"), "{detail}");
    assert!(detail.contains("décret 88-145"), "{detail}");
    // More than 36 months is refused too (before anything is stored).
    let (s, b) = isere
        .post(
            "/api/v1/mad-requests",
            &json!({"partner": metropole.actor(), "our_side": "origin", "agent_id": titulaire,
                    "terms": terms(30, 30 + 40 * 31, full(), 30), "send": true}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["errors"][0]["message"].as_str().unwrap().contains("36"),
        "{b}"
    );

    // A waiver between the Département and the Métropole.
    let (s, sent) = isere
        .post(
            "/api/v1/mad-requests",
            &json!({"partner": metropole.actor(), "our_side": "origin", "agent_id": titulaire,
                    "terms": terms(30, 395, waived(), 30), "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let oid = sent["object_id"].as_str().unwrap().to_owned();
    let at_host = wait_state(&metropole, &oid, "proposed").await;
    let (s, b) = fire(&metropole, &at_host, "agree_terms", json!({})).await;
    refused(s, &b);
    let detail = b["detail"].as_str().unwrap();
    assert!(detail.contains("L512-15"), "{detail}");
    assert!(detail.contains("rembourser"), "{detail}");

    // A transition the creator's state does not allow, sent by the Métropole anyway (as
    // a faulty or racing node would): the Département refuses it and says why; neither
    // state moves.
    let (key, key_id) = node_key(&metropole).await;
    let forged = signed_activity(
        &metropole.actor(),
        &key,
        &key_id,
        json!({"type": "Accept", "object": oid, "to": [isere.actor()],
               "transition": "issue_arrete", "party": "origin_authority"}),
    );
    let act: Activity = serde_json::from_value(forged.clone()).unwrap();
    assert_eq!(act.kind, ActivityType::Accept);
    assert!(matches!(act.object, ObjectRef::Id(_)));
    metropole
        .store
        .append_activity(
            &passerelle_node::store::NewActivity {
                activity_id: act.id.to_string(),
                activity_type: "Accept".into(),
                object_id: oid.clone(),
                public: false,
                document: forged,
            },
            None,
        )
        .await
        .unwrap();
    wait_until("the creator records the refusal", PATIENCE, || async {
        request(&isere, &oid).await.unwrap()["refusal"]["by"] == "us"
    })
    .await;
    wait_until("the sender learns of the refusal", PATIENCE, || async {
        request(&metropole, &oid).await.unwrap()["refusal"]["by"] == "partner"
    })
    .await;
    let at_origin = request(&isere, &oid).await.unwrap();
    assert_eq!(at_origin["state"], "proposed");
    assert_eq!(at_origin["refusal"]["transition"], "issue_arrete");
    let at_host = request(&metropole, &oid).await.unwrap();
    assert_eq!(at_host["state"], "proposed");
    let why = at_host["refusal"]["detail"].as_str().unwrap();
    assert!(why.contains("Qui peut la déclencher"), "{why}");
    assert_eq!(at_origin["version"], at_host["version"]);

    // The other way round: a version from the creator that records a transition of the
    // receiver's party it never fired (the Métropole's agreement) is refused by the
    // Métropole, and the refusal comes back to the Département.
    let (key, key_id) = node_key(&isere).await;
    let held = request(&isere, &oid).await.unwrap()["document"].clone();
    let mut forged_version = held.clone();
    forged_version.as_object_mut().unwrap().remove("proof");
    forged_version["version"] = json!(2);
    forged_version["state"] = json!("terms_agreed");
    forged_version["updated"] = json!(held["published"]);
    forged_version["history"].as_array_mut().unwrap().push(
        json!({"version": 2, "transition": "agree_terms", "party": "host_hr",
                     "from": "proposed", "to": "terms_agreed", "at": held["published"]}),
    );
    let forged_version = passerelle_protocol::proof::sign(
        forged_version,
        &key,
        &passerelle_protocol::proof::ProofOptions::new(&key_id, OffsetDateTime::now_utc()),
    )
    .unwrap();
    let update = signed_activity(
        &isere.actor(),
        &key,
        &key_id,
        json!({"type": "Update", "object": forged_version, "to": [metropole.actor()]}),
    );
    isere
        .store
        .append_activity(
            &passerelle_node::store::NewActivity {
                activity_id: update["id"].as_str().unwrap().to_owned(),
                activity_type: "Update".into(),
                object_id: oid.clone(),
                public: false,
                document: update,
            },
            None,
        )
        .await
        .unwrap();
    wait_until("the receiver refuses the version", PATIENCE, || async {
        request(&metropole, &oid).await.unwrap()["refusal"]["by"] == "us"
    })
    .await;
    wait_until("the creator learns of the refusal", PATIENCE, || async {
        request(&isere, &oid).await.unwrap()["refusal"]["by"] == "partner"
    })
    .await;
    let at_host = request(&metropole, &oid).await.unwrap();
    assert_eq!(
        (at_host["state"].as_str(), at_host["version"].as_i64()),
        (Some("proposed"), Some(1))
    );
    assert_eq!(at_host["refusal"]["transition"], "agree_terms");
    let why = request(&isere, &oid).await.unwrap()["refusal"]["detail"].clone();
    assert!(
        why.as_str().unwrap().contains("accepter les conditions"),
        "{why}"
    );

    // The Métropole rejects: final at both; nothing leaves a final state.
    fire_ok(&metropole, &oid, "reject", json!({})).await;
    let (o, _) = wait_both(&isere, &metropole, &oid, "rejected").await;
    let (s, b) = fire(&isere, &o, "withdraw", json!({})).await;
    refused(s, &b);
    assert!(b["detail"].as_str().unwrap().contains("close"), "{b}");

    // A second request, withdrawn by its creator before any answer.
    let (s, sent) = isere
        .post(
            "/api/v1/mad-requests",
            &json!({"partner": metropole.actor(), "our_side": "origin", "agent_id": titulaire,
                    "terms": terms(30, 395, full(), 30), "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let oid2 = sent["object_id"].as_str().unwrap().to_owned();
    wait_state(&metropole, &oid2, "proposed").await;
    fire_ok(&isere, &oid2, "withdraw", json!({})).await;
    let (o, h) = wait_both(&isere, &metropole, &oid2, "withdrawn").await;
    assert_eq!(o["history"], h["history"]);
    assert!(request(&grenoble, &oid2).await.is_none());

    isere.shutdown().await;
    metropole.shutdown().await;
    grenoble.shutdown().await;
}

/// Drives a request created by `origin` (which also conducts the legal steps) to
/// `arrete_issued`.
async fn to_arrete(origin: &Node, host: &Node, oid: &str) {
    wait_state(host, oid, "proposed").await;
    fire_ok(host, oid, "agree_terms", json!({})).await;
    wait_both(origin, host, oid, "terms_agreed").await;
    fire_ok(origin, oid, "send_to_agent", json!({})).await;
    fire_ok(origin, oid, "agent_agrees", json!({})).await;
    fire_ok(origin, oid, "inform_assembly", json!({"date": day(0)})).await;
    sign(origin, oid).await;
    wait_until(
        "the host holds the signature of the origin",
        PATIENCE,
        || async {
            request(host, oid).await.unwrap()["conventions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["signed_by_origin"] == true && c["signed_by_host"] == false)
        },
    )
    .await;
    sign(host, oid).await;
    wait_both(origin, host, oid, "convention_signed").await;
    fire_ok(origin, oid, "issue_arrete", json!({"date": day(0)})).await;
}

/// An early end asked by the host with the notice of the convention, and a renewal for a
/// second period with its avenant, each converging at both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn early_end_and_renewal() {
    let (isere, metropole, grenoble) = three_nodes().await;

    // Early end: the Département's agent at the Métropole for a year from today; the
    // Métropole asks to end it, by a letter of 20 days ago, with 15 days of notice.
    let a = agent(&isere, "Sacha Leroy", "fonctionnaire_titulaire").await;
    let (s, sent) = isere
        .post(
            "/api/v1/mad-requests",
            &json!({"partner": metropole.actor(), "our_side": "origin", "agent_id": a,
                    "terms": terms(0, 365, full(), 15), "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let oid = sent["object_id"].as_str().unwrap().to_owned();
    to_arrete(&isere, &metropole, &oid).await;
    let (h, _) = wait_both(&metropole, &isere, &oid, "active").await;
    let kinds: Vec<&str> = h["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["renewal_reminder", "term"], "{h}");
    assert_eq!(h["deadlines"][1]["date"], day(365));

    // An avenant asked by the host: 50 % instead of 40 %. The agent agrees to it in
    // writing at the origin, both employers sign it, the origin concludes it.
    let mut more = terms(0, 365, full(), 15);
    more["quotitePct"] = json!(50);
    more["hebdoMinutes"] = json!(1050);
    fire_ok(
        &metropole,
        &oid,
        "propose_amendment",
        json!({ "terms": more }),
    )
    .await;
    let (o, _) = wait_both(&isere, &metropole, &oid, "amendment_pending").await;
    assert_eq!(o["amendment_terms"]["quotitePct"], 50);
    assert_eq!(o["terms"]["quotitePct"], 40);
    // Not before the agent agreed and both signed.
    let (s, b) = fire(&isere, &o, "conclude_amendment", json!({})).await;
    refused(s, &b);
    assert!(b["detail"].as_str().unwrap().contains("avenant"), "{b}");
    let (s, b) = isere
        .post(
            &format!(
                "/api/v1/mad-requests/{}/amendment-agreement",
                o["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    sign(&isere, &oid).await;
    wait_until(
        "the host holds the avenant signed by the origin",
        PATIENCE,
        || async {
            request(&metropole, &oid).await.unwrap()["conventions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["amendment"] == 1 && c["signed_by_origin"] == true)
        },
    )
    .await;
    sign(&metropole, &oid).await;
    wait_until(
        "the origin holds the avenant signed by both",
        PATIENCE,
        || async {
            request(&isere, &oid).await.unwrap()["conventions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["amendment"] == 1 && c["signed_by_host"] == true)
        },
    )
    .await;
    fire_ok(&isere, &oid, "conclude_amendment", json!({})).await;
    let (h, o) = wait_both(&metropole, &isere, &oid, "active").await;
    assert_eq!(h["terms"]["quotitePct"], 50);
    assert!(o["amendment_terms"].is_null());
    let avenant = &o["conventions"][1];
    assert_eq!(avenant["document"]["amendment"], 1);
    assert_eq!(avenant["document"]["terms"]["quotitePct"], 50);
    fire_ok(
        &metropole,
        &oid,
        "request_early_end",
        json!({"date": day(-20), "reference": "Courrier du 20 jours"}),
    )
    .await;
    let (h, o) = wait_both(&metropole, &isere, &oid, "ending").await;
    let trail: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transition"].as_str().unwrap())
        .collect();
    assert!(
        trail.ends_with(&["request_early_end", "notice_elapsed"]),
        "{trail:?}"
    );
    let early = &h["history"][trail.len() - 2];
    assert_eq!(early["party"], "host_hr");
    assert_eq!(early["date"], day(-20));
    assert_eq!(h["history"], o["history"]);
    fire_ok(&isere, &oid, "reintegrate", json!({})).await;
    wait_both(&metropole, &isere, &oid, "reintegrated").await;

    // The deadlines list shows the running ones of every request.
    let (s, all) = isere.get("/api/v1/mad-deadlines").await;
    assert_eq!(s, 200, "{all}");

    // Renewal: Grenoble's agent at the Métropole since 11 months, a month left: the
    // reminder opens the renewal, a second period is agreed with its avenant.
    let b = agent(&grenoble, "Noa Garcia", "fonctionnaire_titulaire").await;
    let (s, sent) = grenoble
        .post(
            "/api/v1/mad-requests",
            &json!({"partner": metropole.actor(), "our_side": "origin", "agent_id": b,
                    "terms": terms(-330, 30, waived(), 30), "send": true}),
        )
        .await;
    assert_eq!(s, 201, "{sent}");
    let oid = sent["object_id"].as_str().unwrap().to_owned();
    to_arrete(&grenoble, &metropole, &oid).await;
    let (o, _) = wait_both(&grenoble, &metropole, &oid, "renewal_pending").await;
    assert!(
        o["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["transition"] == "renew" && a["needs_terms"] == true),
        "{o}"
    );
    // A renewal without new terms is refused with a clear message.
    let (s, body) = fire(&grenoble, &o, "renew", json!({})).await;
    assert_eq!(s, 422, "{body}");
    fire_ok(
        &grenoble,
        &oid,
        "renew",
        json!({"terms": terms(31, 31 + 364, waived(), 30)}),
    )
    .await;
    wait_both(&grenoble, &metropole, &oid, "agent_review").await;
    fire_ok(&grenoble, &oid, "agent_agrees", json!({})).await;
    fire_ok(&grenoble, &oid, "inform_assembly", json!({"date": day(0)})).await;
    sign(&grenoble, &oid).await;
    wait_until(
        "the host holds the avenant signed by the origin",
        PATIENCE,
        || async {
            request(&metropole, &oid).await.unwrap()["conventions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["amendment"] == 1 && c["signed_by_origin"] == true)
        },
    )
    .await;
    sign(&metropole, &oid).await;
    wait_both(&grenoble, &metropole, &oid, "convention_signed").await;
    fire_ok(&grenoble, &oid, "issue_arrete", json!({"date": day(0)})).await;
    let (o, h) = wait_both(&grenoble, &metropole, &oid, "arrete_issued").await;
    assert_eq!(o["terms"]["startDate"], day(31));
    assert_eq!(h["terms"]["endDate"], day(31 + 364));
    let avenant = h["conventions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["amendment"] == 1)
        .unwrap();
    assert_eq!(avenant["signed_by_origin"], true);
    assert_eq!(avenant["signed_by_host"], true);
    assert_eq!(avenant["document"]["terms"]["startDate"], day(31));
    assert_eq!(o["history"], h["history"]);

    isere.shutdown().await;
    metropole.shutdown().await;
    grenoble.shutdown().await;
}

async fn remote_profile_ids(node: &Node) -> Vec<String> {
    let (s, list) = node.get("/api/v1/remote-profiles").await;
    assert_eq!(s, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["object_id"].as_str().unwrap().to_owned())
        .collect()
}

/// An agent of Grenoble publishes a pseudonymous profile to Grenoble's partners with its
/// consent; personal data and a missing consent are refused. Matching finds the
/// Métropole's MAD offer for the profile (at Grenoble) and the profile for the offer (at
/// the Métropole), with reasons. Narrowing the scope withdraws it from the Département,
/// which acknowledges; withdrawing consent erases it at every partner, each
/// acknowledging, and the consent log is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn profiles_published_matched_and_withdrawn_everywhere() {
    let (isere, metropole, grenoble) = three_nodes().await;
    partners_both_ways(&grenoble, &isere).await;
    let agent_id = agent(&grenoble, "Jade Roux", "fonctionnaire_titulaire").await;
    let profile = json!({
        "visibility": "federation",
        "categorie": "B",
        "filiere": "technique",
        "metiersCurrent": [{"rome": {"code": "A1203", "label": "Aménagement et entretien des espaces verts"}}],
        "skills": ["conduite de projet", "réseaux"],
        "appetites": [{"kinds": ["mad_offer", "immersion_swap"],
                       "metiersWanted": [{"rome": {"code": "I1101"}}],
                       "themes": ["très haut débit"], "horizon": "6_months"}],
        "availability": {"quotitePctMax": 50},
        "area": {"communes": ["38185"], "maxTravelMinutes": 40, "remoteOk": false},
        "managerInformed": true
    });
    // No name in a profile, and no publication without the agent's consent.
    let mut named = profile.clone();
    named["nom"] = json!("Roux");
    let (s, b) = grenoble
        .post(
            "/api/v1/profiles",
            &json!({"agent_id": agent_id, "consent_text_version": "2026-11", "profile": named}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "/nom", "{b}");
    let (s, b) = grenoble
        .post(
            "/api/v1/profiles",
            &json!({"agent_id": agent_id, "profile": profile}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "consent_text_version", "{b}");

    let (s, created) = grenoble
        .post(
            "/api/v1/profiles",
            &json!({"agent_id": agent_id, "consent_text_version": "2026-11", "profile": profile}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let pid = created["object_id"].as_str().unwrap().to_owned();
    let local = created["id"].as_str().unwrap().to_owned();
    assert!(created["handle"].as_str().unwrap().starts_with("agent-"));
    assert_eq!(created["consents"][0]["scope"], "federation");
    assert_eq!(created["consents"][0]["text_version"], "2026-11");
    let reached: Vec<&str> = created["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(reached.len(), 2, "{created}");
    for n in [&isere, &metropole] {
        wait_until(
            &format!("{} receives the profile", n.name),
            PATIENCE,
            || async { remote_profile_ids(n).await.contains(&pid) },
        )
        .await;
    }
    let (_, at_host) = metropole.get("/api/v1/remote-profiles").await;
    let doc = &at_host[0]["document"];
    assert!(
        doc.get("name").is_none() && doc["handle"] == created["handle"],
        "{doc}"
    );

    // The Métropole offers a MAD that fits: at the Métropole the profile is suggested
    // for the offer, at Grenoble the offer for the profile, each with its reasons.
    let mut offer = passerelle_tests::example_posting("mad-offer");
    offer["dates"] = json!({"publishFrom": day(0), "applyUntil": day(60), "start": day(90), "end": day(90 + 700)});
    let posted = metropole.publish(&offer).await;
    let posting_id = posted["document"]["id"].as_str().unwrap().to_owned();
    let (s, found) = metropole
        .get(&format!("/api/v1/matches/profiles?posting={posting_id}"))
        .await;
    assert_eq!(s, 200, "{found}");
    let hit = found
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == pid)
        .unwrap_or_else(|| panic!("{found}"));
    let criteria: Vec<&str> = hit["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["criterion"].as_str().unwrap())
        .collect();
    assert!(
        criteria.contains(&"kind") && criteria.contains(&"metier"),
        "{hit}"
    );
    assert!(hit["reasons"][0]["text"].as_str().unwrap().len() > 10);
    wait_until(
        "Grenoble caches the Métropole's offer",
        PATIENCE,
        || async {
            grenoble
                .cached_postings()
                .await
                .iter()
                .any(|(id, _, _)| *id == posting_id)
        },
    )
    .await;
    let (s, found) = grenoble
        .get(&format!("/api/v1/matches/postings?profile={pid}"))
        .await;
    assert_eq!(s, 200, "{found}");
    let hit = found
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == posting_id)
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(hit["kind"], "mad_offer");
    assert_eq!(hit["node"], metropole.actor());
    let (s, b) = grenoble
        .get("/api/v1/matches/postings?profile=https://nowhere.example/profiles/1")
        .await;
    assert_eq!(s, 404, "{b}");

    // Narrowing to a circle holding the Métropole only: the Département erases it and
    // acknowledges; a new consent is recorded for the new scope.
    let (s, circle) = grenoble
        .post(
            "/api/v1/circles",
            &json!({ "name": "Métropole", "members": [metropole.actor()] }),
        )
        .await;
    assert_eq!(s, 201, "{circle}");
    let mut narrower = profile.clone();
    narrower["visibility"] = json!("partner_circle");
    narrower["circles"] = json!([circle["url"]]);
    let (s, b) = grenoble
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/profiles/{local}"),
            &json!({"profile": narrower}),
        )
        .await;
    assert_eq!(s, 422, "a new scope needs a new consent: {b}");
    let (s, updated) = grenoble
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/profiles/{local}"),
            &json!({"profile": narrower, "consent_text_version": "2026-12"}),
        )
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["consents"].as_array().unwrap().len(), 2);
    assert!(updated["consents"][0]["withdrawn_at"].is_string());
    assert!(updated["consents"][1]["withdrawn_at"].is_null());
    wait_until("the Département erases the profile", PATIENCE, || async {
        !remote_profile_ids(&isere).await.contains(&pid)
    })
    .await;
    let acked = |view: &Value, actor: &str| {
        view["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["actor"] == actor && r["acknowledged_at"].is_string())
    };
    wait_until("the Département acknowledges", PATIENCE, || async {
        acked(
            &grenoble.get(&format!("/api/v1/profiles/{local}")).await.1,
            &isere.actor(),
        )
    })
    .await;
    wait_until("the Métropole holds version 2", PATIENCE, || async {
        let (_, list) = metropole.get("/api/v1/remote-profiles").await;
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["object_id"] == pid && p["version"] == 2)
    })
    .await;

    // Withdrawal: erased at the Métropole too, acknowledged; nothing left here.
    let (s, gone) = grenoble
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/profiles/{local}"),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "{gone}");
    assert_eq!(gone["withdrawn"], true);
    assert!(gone["document"].is_null());
    assert!(
        gone["consents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["withdrawn_at"].is_string())
    );
    wait_until("the Métropole erases the profile", PATIENCE, || async {
        !remote_profile_ids(&metropole).await.contains(&pid)
    })
    .await;
    wait_until("every partner acknowledged", PATIENCE, || async {
        let v = grenoble.get(&format!("/api/v1/profiles/{local}")).await.1;
        acked(&v, &isere.actor()) && acked(&v, &metropole.actor())
    })
    .await;
    // Erased, not merely hidden: the Métropole's stored copy has no content left.
    let stored = metropole.store.remote_profiles(true).await.unwrap();
    let tomb = stored.iter().find(|p| p.object_id == pid).unwrap();
    assert!(tomb.document.is_none() && tomb.deleted_at.is_some());
    // A withdrawn profile cannot be changed.
    let (s, _) = grenoble
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/profiles/{local}"),
            &json!({"profile": profile, "consent_text_version": "2026-12"}),
        )
        .await;
    assert_eq!(s, 409);

    isere.shutdown().await;
    metropole.shutdown().await;
    grenoble.shutdown().await;
}

async fn publish_profile(node: &Node, agent_id: &str, current: &str, wanted: &str) -> String {
    let (s, p) = node
        .post(
            "/api/v1/profiles",
            &json!({"agent_id": agent_id, "consent_text_version": "2026-11", "profile": {
                "visibility": "federation", "categorie": "C", "filiere": "technique",
                "metiersCurrent": [{"rome": {"code": current}}],
                "appetites": [{"kinds": ["immersion_swap"], "metiersWanted": [{"rome": {"code": wanted}}]}],
                "area": {"communes": ["38185"]}
            }}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    p["object_id"].as_str().unwrap().to_owned()
}

async fn swap_at(node: &Node, object_id: &str) -> Option<Value> {
    let (s, list) = node.get("/api/v1/immersion-swaps").await;
    assert_eq!(s, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|x| x["object_id"] == object_id)
        .cloned()
}

async fn wait_swap(node: &Node, object_id: &str, check: impl Fn(&Value) -> bool) -> Value {
    wait_until(
        &format!("{} holds the swap", node.name),
        PATIENCE,
        || async { swap_at(node, object_id).await.is_some_and(|s| check(&s)) },
    )
    .await;
    swap_at(node, object_id).await.unwrap()
}

async fn registration(node: &Node, id: &str) -> Value {
    let (s, list) = node.get("/api/v1/training-registrations").await;
    assert_eq!(s, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap()
}

async fn wait_registration(node: &Node, id: &str, status: &str) -> Value {
    wait_until(
        &format!("{}'s registration {id} is {status}", node.name),
        PATIENCE,
        || async { registration(node, id).await["status"] == status },
    )
    .await;
    registration(node, id).await
}

async fn register(session_id: &str, node: &Node, agent: String) -> String {
    let (s, r) = node
        .post(
            "/api/v1/training-registrations",
            &json!({"session": session_id, "agent_id": agent}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    r["id"].as_str().unwrap().to_owned()
}

/// Two agents of Grenoble and the Métropole who want each other's métier for a day are
/// paired (reciprocity), the swap proposed, accepted, and each side's immersion tracked
/// at both nodes. A training session of the Département offers seats to partners with a
/// quota each: registrations from three nodes are confirmed or wait-listed within the
/// quotas, and a cancellation gives the seat to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn immersion_swaps_and_training_seats_across_nodes() {
    let (isere, metropole, grenoble) = three_nodes().await;
    partners_both_ways(&grenoble, &isere).await;

    // Swap: a gardener of Grenoble and a social worker of the Métropole.
    let g = agent(&grenoble, "Lina Faure", "fonctionnaire_titulaire").await;
    let m = agent(&metropole, "Hugo Blanc", "fonctionnaire_titulaire").await;
    let gp = publish_profile(&grenoble, &g, "A1203", "K1201").await;
    let mp = publish_profile(&metropole, &m, "K1201", "A1203").await;
    wait_until("Grenoble sees the swap candidate", PATIENCE, || async {
        let (_, c) = grenoble.get("/api/v1/immersion-swaps/candidates").await;
        c.as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["their_profile"] == mp && x["our_profile"] == gp)
        })
    })
    .await;
    let (_, c) = grenoble.get("/api/v1/immersion-swaps/candidates").await;
    assert!(
        c[0]["reason"].as_str().unwrap().contains("Réciprocité"),
        "{c}"
    );
    let (s, proposed) = grenoble
        .post(
            "/api/v1/immersion-swaps",
            &json!({"our_profile": gp, "their_profile": mp, "our_visit_on": day(20),
                    "their_visit_on": day(27), "contact_mailbox": "vismonjob@grenoble.example",
                    "service": "Direction des espaces verts"}),
        )
        .await;
    assert_eq!(s, 201, "{proposed}");
    assert_eq!(proposed["state"], "proposed");
    let sid = proposed["object_id"].as_str().unwrap().to_owned();
    let at_m = wait_swap(&metropole, &sid, |s| s["state"] == "proposed").await;
    assert_eq!(at_m["we_proposed"], false);
    assert_eq!(at_m["our_profile"], mp);
    // The Métropole's agent goes on day 27, Grenoble's comes on day 20.
    assert_eq!(at_m["our_visit_on"], day(27));
    assert_eq!(at_m["their_visit_on"], day(20));
    // Only the other node answers a proposal.
    let (s, _) = grenoble
        .post(
            &format!(
                "/api/v1/immersion-swaps/{}/answer",
                proposed["id"].as_str().unwrap()
            ),
            &json!({"action": "accept"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, b) = metropole
        .post(
            &format!(
                "/api/v1/immersion-swaps/{}/answer",
                at_m["id"].as_str().unwrap()
            ),
            &json!({"action": "accept"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let at_g = wait_swap(&grenoble, &sid, |s| s["state"] == "agreed").await;
    // Grenoble hosted the Métropole's agent: done, recorded at both.
    let (s, b) = grenoble
        .post(
            &format!(
                "/api/v1/immersion-swaps/{}/visit",
                at_g["id"].as_str().unwrap()
            ),
            &json!({"status": "done"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    wait_swap(&metropole, &sid, |s| {
        s["our_visit"] == "done" && s["state"] == "agreed"
    })
    .await;
    let (s, b) = metropole
        .post(
            &format!(
                "/api/v1/immersion-swaps/{}/visit",
                at_m["id"].as_str().unwrap()
            ),
            &json!({"status": "done"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["state"], "done");
    let at_g = wait_swap(&grenoble, &sid, |s| s["state"] == "done").await;
    assert_eq!(at_g["our_visit"], "done");
    assert_eq!(at_g["their_visit"], "done");
    // Without reciprocity, no swap.
    let i = agent(&isere, "Eva Noël", "fonctionnaire_titulaire").await;
    let ip = publish_profile(&isere, &i, "M1801", "M1802").await;
    wait_until(
        "Grenoble receives the Département's profile",
        PATIENCE,
        || async {
            let (_, l) = grenoble.get("/api/v1/remote-profiles").await;
            l.as_array().unwrap().iter().any(|p| p["object_id"] == ip)
        },
    )
    .await;
    let (s, b) = grenoble
        .post(
            "/api/v1/immersion-swaps",
            &json!({"our_profile": gp, "their_profile": ip, "our_visit_on": day(20),
                    "their_visit_on": day(27), "contact_mailbox": "vismonjob@grenoble.example"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("réciprocité"), "{b}");

    // Training: 3 seats, 2 for partners, one each for Grenoble and the Métropole.
    let mut session = passerelle_tests::example_posting("training-session");
    session["dates"] =
        json!({"publishFrom": day(0), "applyUntil": day(30), "start": day(40), "end": day(41)});
    session["body"]["sessionDates"] = json!([day(40), day(41)]);
    session["body"]["seatsTotal"] = json!(3);
    session["body"]["seatsForPartners"] = json!(2);
    let posted = isere.publish(&session).await;
    let session_id = posted["document"]["id"].as_str().unwrap().to_owned();
    let (s, b) = isere
        .send(
            reqwest::Method::PUT,
            "/api/v1/training-quotas",
            &json!({"session": session_id, "quotas": {grenoble.actor(): 1, metropole.actor(): 1}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    for n in [&grenoble, &metropole] {
        wait_until(
            &format!("{} caches the session", n.name),
            PATIENCE,
            || async {
                n.cached_postings()
                    .await
                    .iter()
                    .any(|(id, _, _)| *id == session_id)
            },
        )
        .await;
    }
    let g1 = register(&session_id, &grenoble, g.clone()).await;
    wait_registration(&grenoble, &g1, "confirmed").await;
    let g2 = register(
        &session_id,
        &grenoble,
        agent(&grenoble, "Tom Girard", "fonctionnaire_titulaire").await,
    )
    .await;
    let waiting = wait_registration(&grenoble, &g2, "waitlisted").await;
    assert!(
        waiting["reason"].as_str().unwrap().contains("quota"),
        "{waiting}"
    );
    let m1 = register(&session_id, &metropole, m.clone()).await;
    wait_registration(&metropole, &m1, "confirmed").await;
    // The host's own agents take the seat not offered to partners.
    let i1 = register(&session_id, &isere, i.clone()).await;
    assert_eq!(registration(&isere, &i1).await["status"], "confirmed");
    let i2 = register(
        &session_id,
        &isere,
        agent(&isere, "Léo Perrin", "fonctionnaire_titulaire").await,
    )
    .await;
    assert_eq!(registration(&isere, &i2).await["status"], "waitlisted");
    // At the host: every registration, no agent of another node named.
    let (_, all) = isere
        .get(&format!(
            "/api/v1/training-registrations?session={session_id}"
        ))
        .await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 5);
    assert!(
        all.iter()
            .filter(|r| r["node"] != isere.actor())
            .all(|r| r["agent_id"].is_null())
    );
    let confirmed = all.iter().filter(|r| r["status"] == "confirmed").count();
    assert_eq!(confirmed, 3, "never more than the seats: {all:?}");
    // Grenoble cancels its confirmed registration: its waiting one gets the seat.
    let (s, b) = grenoble
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/training-registrations/{g1}"),
            &json!({}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "cancelled");
    wait_registration(&grenoble, &g2, "confirmed").await;

    isere.shutdown().await;
    metropole.shutdown().await;
    grenoble.shutdown().await;
}

/// The posting lifecycle beyond publication: a posting past its application deadline
/// expires by itself and its partners learn it; a posting declared filled too; neither
/// can be edited any more. The métier picker finds métiers with their ROME codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postings_fill_and_expire_and_the_metier_picker() {
    let isere = Node::start(&ISERE, Backend::Sqlite).await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    isere.set_policy("open").await;
    metropole.set_policy("open").await;
    partners_both_ways(&isere, &metropole).await;

    // Deadline yesterday: it expires at the next pass of the timers, everywhere.
    let mut late = passerelle_tests::example_posting("vacancy");
    late["dates"]["publishFrom"] = json!(day(-20));
    late["dates"]["applyUntil"] = json!(day(-1));
    let late = isere.publish(&late).await;
    let late_id = late["document"]["id"].as_str().unwrap().to_owned();
    let local = late["id"].as_str().unwrap().to_owned();
    wait_until("the posting expires at its node", PATIENCE, || async {
        isere.get(&format!("/api/v1/postings/{local}")).await.1["status"] == "expired"
    })
    .await;
    let (_, expired) = isere.get(&format!("/api/v1/postings/{local}")).await;
    assert_eq!(expired["document"]["status"], "expired");
    assert_eq!(expired["version"], 3);
    wait_until("the partner learns it expired", PATIENCE, || async {
        metropole
            .store
            .remote_posting(&late_id)
            .await
            .unwrap()
            .and_then(|p| p.document)
            .is_some_and(|d| d["status"] == "expired")
    })
    .await;
    let (s, b) = isere
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/postings/{local}"),
            &passerelle_tests::example_posting("vacancy"),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("expired"), "{b}");
    // The list filters on the new statuses.
    let (s, list) = isere.get("/api/v1/postings?status=expired").await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Filled: an Update tells the partner; a draft cannot be filled.
    let mut open = passerelle_tests::example_posting("vacancy");
    open["dates"]["publishFrom"] = json!(day(0));
    open["dates"]["applyUntil"] = json!(day(30));
    let open = isere.publish(&open).await;
    let open_id = open["document"]["id"].as_str().unwrap().to_owned();
    let local = open["id"].as_str().unwrap().to_owned();
    let (s, filled) = isere
        .post(&format!("/api/v1/postings/{local}/fill"), &json!({}))
        .await;
    assert_eq!(s, 200, "{filled}");
    assert_eq!(filled["status"], "filled");
    wait_until("the partner learns it is filled", PATIENCE, || async {
        metropole
            .store
            .remote_posting(&open_id)
            .await
            .unwrap()
            .and_then(|p| p.document)
            .is_some_and(|d| d["status"] == "filled")
    })
    .await;
    let (s, b) = isere
        .post(&format!("/api/v1/postings/{local}/fill"), &json!({}))
        .await;
    assert_eq!(s, 409, "{b}");
    let (s, draft) = isere
        .post(
            "/api/v1/postings",
            &passerelle_tests::example_posting("vacancy"),
        )
        .await;
    assert_eq!(s, 201, "{draft}");
    let (s, b) = isere
        .post(
            &format!("/api/v1/postings/{}/fill", draft["id"].as_str().unwrap()),
            &json!({}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("pourvue"), "{b}");

    // The métier picker.
    let (s, found) = isere.get("/api/v1/metiers?q=espaces%20verts").await;
    assert_eq!(s, 200, "{found}");
    let first = &found[0];
    assert_eq!(first["rome"].as_str().unwrap().len(), 5, "{first}");
    assert_eq!(first["metier_ref"]["rome"]["code"], first["rome"]);
    let (s, found) = isere.get("/api/v1/metiers?filiere=police_municipale").await;
    assert_eq!(s, 200);
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["filiere"] == "police_municipale")
    );
    assert!(!found.as_array().unwrap().is_empty());
    let (s, b) = isere.get("/api/v1/metiers?filiere=marine").await;
    assert_eq!(s, 422, "{b}");

    isere.shutdown().await;
    metropole.shutdown().await;
}

/// A full-time MAD of a Métropole agent to the Département (a collectivité territoriale)
/// in functions of the agent's grade, with a vacant post: once it runs, both employers see
/// that the Département must propose a mutation or a détachement by the third anniversary
/// of the start (décret 2008-580). The same MAD without a vacant post shows no such
/// deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutation_prompt_shown_to_both_employers() {
    let (isere, metropole, grenoble) = three_nodes().await;
    let start = today();
    let due = Date::from_calendar_date(start.year() + 3, start.month(), start.day())
        .or_else(|_| Date::from_calendar_date(start.year() + 3, start.month(), 28))
        .unwrap()
        .to_string();
    let mut ids = Vec::new();
    for vacant in [true, false] {
        let a = agent(&metropole, "Camille Roux", "fonctionnaire_titulaire").await;
        let mut t = terms(0, 365, full(), 15);
        t["quotitePct"] = json!(100);
        t["hebdoMinutes"] = json!(2100);
        t["functionsOfGrade"] = json!(true);
        t["hostVacantPost"] = json!(vacant);
        let (s, sent) = metropole
            .post(
                "/api/v1/mad-requests",
                &json!({"partner": isere.actor(), "our_side": "origin", "agent_id": a,
                        "terms": t, "send": true}),
            )
            .await;
        assert_eq!(s, 201, "{sent}");
        let oid = sent["object_id"].as_str().unwrap().to_owned();
        to_arrete(&metropole, &isere, &oid).await;
        ids.push((vacant, oid));
    }
    for (vacant, oid) in &ids {
        let (o, h) = wait_both(&metropole, &isere, oid, "active").await;
        for view in [&o, &h] {
            let prompts: Vec<(&str, &str)> = view["deadlines"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].as_str().unwrap().starts_with("mutation_prompt"))
                .map(|d| (d["kind"].as_str().unwrap(), d["date"].as_str().unwrap()))
                .collect();
            if *vacant {
                assert!(
                    prompts.contains(&("mutation_prompt_due", due.as_str()))
                        && prompts
                            .iter()
                            .any(|(k, _)| *k == "mutation_prompt_reminder"),
                    "{view}"
                );
            } else {
                assert!(prompts.is_empty(), "{view}");
            }
        }
    }
    // The deadlines list of the Département shows it too.
    let (s, all) = isere.get("/api/v1/mad-deadlines").await;
    assert_eq!(s, 200, "{all}");
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "mutation_prompt_due"),
        "{all}"
    );
    // Regression: this test left its nodes running, and the Métropole's PostgreSQL
    // schema behind it, at every run.
    isere.shutdown().await;
    metropole.shutdown().await;
    grenoble.shutdown().await;
}
