//! The console of two real nodes in a real headless Chromium (Debian's `chromium` driven
//! through `chromedriver` with `fantoccini`): an HR user at Grenoble publishes an
//! immersion in Grenoble's console and the Métropole's HR user sees it in the Métropole's
//! feed; Grenoble proposes one of its agents for a *mise à disposition* in its console,
//! the Métropole accepts the terms in its own, and both nodes converge on the same
//! version. Each employer has its own browser profile (cookies are per host, not per
//! port). Screenshots of the new pages are written to `target/console-screenshots/`.
//!
//! Outside CI a missing `chromium` or `chromedriver` skips with one line; under `CI` it
//! fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use fantoccini::{Client, Locator};
use passerelle_node::store::Role;
use passerelle_tests::{Backend, GRENOBLE, METROPOLE, Node, wait_until};
use serde_json::{Value, json};
use time::{Duration as Days, OffsetDateTime};

const PASSWORD: &str = "mot de passe très long";
const PATIENCE: Duration = Duration::from_secs(40);

#[path = "../support/browser.rs"]
mod browser;
use browser::*;

/// Sets a field's value directly (dates and selects: typing depends on the locale).
async fn set(c: &Client, id: &str, value: &str) {
    c.execute(
        "document.getElementById(arguments[0]).value = arguments[1]",
        vec![json!(id), json!(value)],
    )
    .await
    .unwrap();
}

async fn sign_in(c: &Client, base: &str) -> Result<(), fantoccini::error::CmdError> {
    c.goto(&format!("{base}/console/offres")).await?;
    fill(c, "#username", "drh").await;
    fill(c, "#password", PASSWORD).await;
    click_away(c, Locator::Css("form button[type=submit]")).await?;
    c.wait().for_element(Locator::Css(".results")).await?;
    Ok(())
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

/// The only MAD request a node holds, through the API.
async fn only_request(node: &Node) -> Option<Value> {
    let (s, list) = node.get("/api/v1/mad-requests").await;
    assert_eq!(s, 200, "{list}");
    let id = list.as_array()?.first()?["id"].as_str()?.to_owned();
    let (s, view) = node.get(&format!("/api/v1/mad-requests/{id}")).await;
    assert_eq!(s, 200, "{view}");
    Some(view)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_consoles_publish_and_conduct_a_mad() {
    let Some((driver, chromium)) = driver("cross-node console browser test").await else {
        return;
    };
    let grenoble = Node::start(&GRENOBLE, Backend::Sqlite).await;
    let metropole = Node::start(&METROPOLE, Backend::Sqlite).await;
    for n in [&grenoble, &metropole] {
        n.set_policy("open").await;
        passerelle_node::auth::create_account(&n.store, "drh", PASSWORD, Role::Rh, "test")
            .await
            .unwrap();
    }
    partners_both_ways(&grenoble, &metropole).await;
    let (s, agent) = grenoble
        .post(
            "/api/v1/agents",
            &json!({
                "display_name": "Camille Martin",
                "data": {"statut": "fonctionnaire_titulaire", "categorie": "B", "filiere": "technique",
                         "grade": "Technicien principal de 2e classe", "echelon": 5}
            }),
        )
        .await;
    assert_eq!(s, 201, "{agent}");
    let agent_id = agent["id"].as_str().unwrap().to_owned();

    let profile_a = tempfile::tempdir().unwrap();
    let profile_b = tempfile::tempdir().unwrap();
    let a = browser(&driver, &chromium, profile_a.path()).await;
    let b = browser(&driver, &chromium, profile_b.path()).await;
    let result = scenario(&a, &b, &grenoble, &metropole, &agent_id).await;
    let _ = a.close().await;
    let _ = b.close().await;
    result.unwrap();

    // Both employers hold the same version of the request, the convention signed.
    wait_until(
        "both nodes hold the same version of the request",
        PATIENCE,
        || async {
            let (Some(x), Some(y)) = (
                only_request(&grenoble).await,
                only_request(&metropole).await,
            ) else {
                return false;
            };
            x["state"] == "convention_signed"
                && x["pending"].is_null()
                && y["pending"].is_null()
                && x["version"] == y["version"]
                && x["document"] == y["document"]
        },
    )
    .await;
    grenoble.shutdown().await;
    metropole.shutdown().await;
}

async fn scenario(
    a: &Client,
    b: &Client,
    grenoble: &Node,
    metropole: &Node,
    agent_id: &str,
) -> Result<(), fantoccini::error::CmdError> {
    let (base_a, base_b) = (&grenoble.base, &metropole.base);
    sign_in(a, base_a).await?;
    sign_in(b, base_b).await?;

    // Grenoble publishes an immersion in its console.
    a.goto(&format!(
        "{base_a}/console/mes-offres/nouvelle?kind=immersion_offer"
    ))
    .await?;
    for (css, v) in [
        (
            "[id='champ-name']",
            "Vis mon job : jardinier du parc Mistral",
        ),
        (
            "[id='champ-summary']",
            "Une journée avec l'équipe des parcs.",
        ),
        ("[id='champ-metiers-0-rome-code']", "A1203"),
        ("[id='champ-locations-0-commune']", "38185"),
        (
            "[id='champ-locations-0-address']",
            "Parc Paul Mistral, Grenoble",
        ),
        (
            "[id='champ-contact-mailbox']",
            "immersions@grenoble.example",
        ),
        ("[id='champ-body-slots']", "2027-03-16 journée"),
        ("[id='champ-body-hostService']", "Parcs et jardins"),
        ("[id='champ-body-maxParticipants']", "2"),
    ] {
        fill(a, css, v).await;
    }
    set(a, "champ-dates-applyUntil", "2027-02-28").await;
    click_away(a, Locator::Css("button[name=publier]")).await?;
    a.wait().for_element(Locator::Css(".proof-box")).await?;
    let page = text(a).await;
    assert!(
        page.contains("Publiée (envoyée aux destinataires)"),
        "{page}"
    );
    shot(a, "20-noeud-a-offre-publiee").await;

    // The Métropole's HR sees it in its feed, signed by Grenoble.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        b.goto(&format!("{base_b}/console/offres?q=jardinier"))
            .await?;
        let page = text(b).await;
        if page.contains("Vis mon job : jardinier du parc Mistral") {
            assert!(page.contains("publiée par Ville de Grenoble"), "{page}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the posting never reached the Métropole's feed: {page}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    shot(b, "21-noeud-b-flux-offre-recue").await;

    // Grenoble proposes its agent to the Métropole.
    a.goto(&format!("{base_a}/console/mad/nouvelle?agent={agent_id}"))
        .await?;
    shot(a, "22-noeud-a-nouvelle-mad").await;
    let today = OffsetDateTime::now_utc().date();
    set(a, "partner", &metropole.actor()).await;
    fill(
        a,
        "#activities",
        "Appui à la direction de l'environnement pour le plan de gestion des espaces verts.",
    )
    .await;
    fill(a, "#place", "3 rue Malakoff, Grenoble").await;
    fill(a, "#quotite_pct", "40").await;
    set(a, "start_date", &(today + Days::days(30)).to_string()).await;
    set(a, "end_date", &(today + Days::days(395)).to_string()).await;
    set(a, "leave_authority", "origin").await;
    fill(a, "#monthly_cost", "1180").await;
    click_away(a, Locator::Css("button[name=envoyer]")).await?;
    a.wait().for_element(Locator::Css("#etat")).await?;
    let page = text(a).await;
    assert!(
        page.contains("La demande de mise à disposition a été envoyée"),
        "{page}"
    );
    assert!(page.contains("proposée"), "{page}");
    assert!(page.contains("Camille Martin"), "{page}");
    shot(a, "23-noeud-a-mad-proposee").await;

    // The Métropole receives it, and accepts the terms in its console.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        b.goto(&format!("{base_b}/console/mad")).await?;
        let page = text(b).await;
        if page.contains("Demandes reçues") && page.contains("Ville de Grenoble") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never reached the Métropole: {page}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let page = text(b).await;
    // The host does not learn the agent's name before the agent agreed.
    assert!(!page.contains("Camille Martin"), "{page}");
    shot(b, "24-noeud-b-mad-liste").await;
    click_away(b, Locator::Css("table a[href^='/console/mad/']")).await?;
    let page = text(b).await;
    assert!(page.contains("Accepter les conditions"), "{page}");
    assert!(page.contains("Durée maximale de la période"), "{page}");
    shot(b, "25-noeud-b-mad-detail").await;
    click_away(
        b,
        Locator::XPath("//button[normalize-space()='Accepter les conditions']"),
    )
    .await?;
    let page = text(b).await;
    assert!(
        page.contains("transmise") || page.contains("conditions acceptées"),
        "{page}"
    );

    // Both consoles show the terms agreed once Grenoble recorded the step.
    for (c, base, name) in [
        (b, base_b, "26-noeud-b-conditions-acceptees"),
        (a, base_a, "27-noeud-a-conditions-acceptees"),
    ] {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            c.goto(&format!("{base}/console/mad")).await?;
            click_away(c, Locator::Css("table a[href^='/console/mad/']")).await?;
            let page = text(c).await;
            if page.contains("conditions acceptées") && !page.contains("sera enregistrée quand") {
                assert!(page.contains("Accepter les conditions"), "{page}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: the terms were never agreed: {page}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        shot(c, name).await;
    }

    // Grenoble conducts its legal steps in its console: the draft convention to the
    // agent, the agent's written agreement, the assembly informed (date and reference
    // of the séance), its signature; the Métropole signs last.
    wait_api(grenoble, metropole, "terms_agreed").await;
    step(a, base_a, "Transmettre le projet de convention à l'agent").await?;
    wait_api(grenoble, metropole, "agent_review").await;
    step(a, base_a, "Enregistrer l'accord écrit de l'agent").await?;
    wait_api(grenoble, metropole, "agent_agreed").await;
    open_request(a, base_a).await?;
    set(
        a,
        "date-inform_assembly",
        &(today - Days::days(2)).to_string(),
    )
    .await;
    fill(
        a,
        "#ref-inform_assembly",
        "Conseil municipal, délibération 2026-114",
    )
    .await;
    shot(a, "28-noeud-a-informer-assemblee").await;
    click_away(
        a,
        Locator::XPath("//button[normalize-space()=\"Informer l'assemblée délibérante\"]"),
    )
    .await?;
    wait_api(grenoble, metropole, "assembly_informed").await;
    step(a, base_a, "Signer la convention").await?;
    wait_until(
        "the Métropole holds Grenoble's signature",
        PATIENCE,
        || async {
            only_request(metropole).await.unwrap()["conventions"][0]["signed_by_origin"] == true
        },
    )
    .await;
    open_request(b, base_b).await?;
    let page = text(b).await;
    // Once the agent agreed, the host knows the agent's name.
    assert!(page.contains("Camille Martin"), "{page}");
    click_away(
        b,
        Locator::XPath("//form[contains(@action, '/signer')]/button"),
    )
    .await?;
    let page = text(b).await;
    assert!(!page.contains("Action refusée"), "{page}");
    wait_api(grenoble, metropole, "convention_signed").await;
    open_request(b, base_b).await?;
    let page = text(b).await;
    assert!(page.contains("convention signée"), "{page}");
    assert!(page.contains("par l'organisme d'accueil : oui"), "{page}");
    assert!(page.contains("délibération 2026-114"), "{page}");
    shot(b, "29-noeud-b-convention-signee").await;
    click_away(b, Locator::LinkText("Convention de mise à disposition")).await?;
    let page = text(b).await;
    assert!(page.contains("Camille Martin"), "{page}");
    shot(b, "30-noeud-b-convention").await;
    for (path, name, expect) in [
        (
            "/console/partenaires",
            "31-noeud-a-partenaires",
            "Grenoble-Alpes Métropole",
        ),
        ("/console/noeud", "32-noeud-a-noeud", "Clé en service"),
    ] {
        a.goto(&format!("{base_a}{path}")).await?;
        let page = text(a).await;
        assert!(page.contains(expect), "{path}: {page}");
        shot(a, name).await;
    }
    Ok(())
}

/// Opens the only request in a console.
async fn open_request(c: &Client, base: &str) -> Result<(), fantoccini::error::CmdError> {
    c.goto(&format!("{base}/console/mad")).await?;
    click_away(c, Locator::Css("table a[href^='/console/mad/']")).await
}

/// Opens the only request and clicks the action button labelled `label`.
async fn step(c: &Client, base: &str, label: &str) -> Result<(), fantoccini::error::CmdError> {
    open_request(c, base).await?;
    let xpath = format!("//button[starts-with(normalize-space(), \"{label}\")]");
    click_away(c, Locator::XPath(&xpath)).await?;
    let page = text(c).await;
    assert!(!page.contains("Action refusée"), "{label}: {page}");
    Ok(())
}

/// Waits until both nodes hold the request in `state`, with nothing pending.
async fn wait_api(a: &Node, b: &Node, state: &str) {
    wait_until(
        &format!("both nodes hold the request in state {state}"),
        PATIENCE,
        || async {
            let (Some(x), Some(y)) = (only_request(a).await, only_request(b).await) else {
                return false;
            };
            x["state"] == state
                && y["state"] == state
                && x["pending"].is_null()
                && y["pending"].is_null()
                && x["version"] == y["version"]
        },
    )
    .await;
}
