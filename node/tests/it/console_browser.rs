//! The console in a real headless Chromium (Debian's `chromium` driven through
//! `chromedriver` with `fantoccini`), against a real node (`passerelle_node::run` on a
//! port-0 loopback socket): sign in, search, filter, open a posting, publish one with a
//! validation error first, find it in the feed, keyboard navigation, the collectivité's
//! membership on the node page, an agent's profile published then edited. Screenshots of
//! the main pages are written to `target/console-screenshots/`.
//!
//! Outside CI a missing `chromium` or `chromedriver` skips with one line; under `CI` it
//! fails (`.ci/run` installs both).

use std::time::Duration;

use fantoccini::{Client, Locator};
use passerelle_node::store::{PartnerInfo, Role, Store};
use serde_json::json;

use crate::feed_store::Partner;
use crate::support::TestDb;

const PASSWORD: &str = "mot de passe très long";

#[path = "../../../tests/support/browser.rs"]
mod browser;
use browser::*;

/// A real node on a loopback port, with an admin account and partners' postings.
async fn start_node() -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    TestDb,
    tempfile::TempDir,
) {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let mut config = passerelle_node::config::Config::default();
    config.data.dir = dir.path().to_path_buf();
    config.database.url = Some(db.url.clone());
    // The node serves plain http on loopback: development mode.
    config.federation.allow_http_loopback_peers = true;
    let store = db.store().await;
    passerelle_node::auth::create_account(&store, "drh", PASSWORD, Role::Admin, "test")
        .await
        .unwrap();
    store
        .init_identity(
            &passerelle_node::store::NodeIdentity {
                name: "Ville de Grenoble".into(),
                siren: "213801855".into(),
                kind: "commune".into(),
                username: "grenoble".into(),
            },
            &passerelle_node::store::AuditRecord::new("test", "node.init", "node"),
        )
        .await
        .unwrap();
    seed(&store).await;
    store.close().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(passerelle_node::run(config, listener, async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (base, tx, db, dir)
}

async fn seed(store: &Store) {
    let isere = Partner::new("https://rh.isere.example");
    store
        .upsert_partner(&PartnerInfo {
            actor_id: isere.actor(),
            name: "Département de l'Isère".into(),
            inbox: format!("{}/inbox", isere.origin),
            shared_inbox: None,
            outbox: None,
            siren: Some("223800012".into()),
        })
        .await
        .unwrap();
    let docs = [
        json!({"name": "Responsable de la médiathèque", "summary": "Lecture publique et action culturelle.",
               "statutory": {"categories": ["B"], "filieres": ["culturelle"]},
               "employer": {"name": "Département de l'Isère"},
               "locations": [{"commune": "38185", "address": "Grenoble"}],
               "dates": {"applyUntil": "2027-01-15"}, "telework": {"allowed": true}}),
        json!({"name": "Ingénieure voirie", "summary": "Routes départementales.",
               "statutory": {"categories": ["A"], "filieres": ["technique"]},
               "employer": {"name": "Département de l'Isère"},
               "locations": [{"commune": "38053"}], "dates": {"applyUntil": "2027-02-01"}}),
        json!({"name": "Animateur jeunesse", "statutory": {"categories": ["C"], "filieres": ["animation"]},
               "employer": {"name": "Ville de Lyon"}, "locations": [{"commune": "69123"}]}),
    ];
    for d in docs {
        let doc = isere.posting("vacancy", 1, d);
        store
            .apply_posting_version(&isere.version(&doc))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn console_in_a_real_browser() {
    let Some((driver, chromium)) = driver("console browser tests").await else {
        return;
    };
    let (base, stop, _db, _dir) = start_node().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, &chromium, profile.path()).await;
    let result = scenario(&c, &base).await;
    let _ = c.close().await;
    let _ = stop.send(());
    result.unwrap();
}

async fn scenario(c: &Client, base: &str) -> Result<(), fantoccini::error::CmdError> {
    // Sign in: the console sends us to the sign-in page first.
    c.goto(&format!("{base}/console/offres")).await?;
    assert!(
        c.current_url()
            .await?
            .path()
            .ends_with("/console/connexion")
    );
    // Keyboard: the first Tab reaches the skip link.
    c.find(Locator::Css("body"))
        .await?
        .send_keys("\u{E004}")
        .await?;
    let focused = c.active_element().await?;
    assert_eq!(focused.text().await?, "Aller au contenu");
    shot(c, "01-connexion").await;
    fill(c, "#username", "drh").await;
    fill(c, "#password", PASSWORD).await;
    click_away(c, Locator::Css("form button[type=submit]")).await?;
    c.wait().for_element(Locator::Css(".results")).await?;
    let page = text(c).await;
    assert!(page.contains("3 offres"), "{page}");
    assert!(page.contains("Signature vérifiée"));
    assert!(page.contains("publiée par Département de l'Isère"));
    shot(c, "02-offres").await;

    // Search in French: no accents, plural.
    fill(c, "#q", "mediatheques").await;
    click_away(c, Locator::Css("form[role=search] button[type=submit]")).await?;
    c.wait().for_element(Locator::Css(".results")).await?;
    let page = text(c).await;
    assert!(page.contains("1 offre"), "{page}");
    assert!(page.contains("Responsable de la médiathèque"));
    shot(c, "03-recherche").await;

    // Filter by a facet, then clear.
    c.goto(&format!("{base}/console/offres")).await?;
    click_away(c, Locator::LinkText("Catégorie A")).await?;
    c.wait().for_element(Locator::Css(".results")).await?;
    let page = text(c).await;
    assert!(
        page.contains("1 offre") && page.contains("Ingénieure voirie"),
        "{page}"
    );
    shot(c, "04-filtre-facette").await;

    // A posting's detail.
    click_away(c, Locator::LinkText("Ingénieure voirie")).await?;
    c.wait().for_element(Locator::Css(".proof-box")).await?;
    let page = text(c).await;
    assert!(
        page.contains("Signature vérifiée — publié par Département de l'Isère"),
        "{page}"
    );
    shot(c, "05-detail").await;

    // Publish an immersion: an incomplete form first shows French messages.
    c.goto(&format!(
        "{base}/console/mes-offres/nouvelle?kind=immersion_offer"
    ))
    .await?;
    fill(c, "[id='champ-name']", "Vis mon job : agent d'accueil").await;
    click_away(c, Locator::Css("button[name=publier]")).await?;
    c.wait().for_element(Locator::Css(".error-summary")).await?;
    let page = text(c).await;
    assert!(page.contains("point"), "{page}");
    assert!(page.contains("obligatoire"), "{page}");
    shot(c, "06-publication-erreurs").await;
    for (css, v) in [
        (
            "[id='champ-summary']",
            "Une journée à l'accueil de la mairie.",
        ),
        ("[id='champ-metiers-0-rome-code']", "M1601"),
        ("[id='champ-locations-0-commune']", "38185"),
        (
            "[id='champ-locations-0-address']",
            "Hôtel de ville, Grenoble",
        ),
        (
            "[id='champ-contact-mailbox']",
            "immersions@grenoble.example",
        ),
        (
            "[id='champ-body-slots']",
            "2027-03-16 journée\n2027-03-18 demi-journée",
        ),
        ("[id='champ-body-hostService']", "Accueil général"),
        ("[id='champ-body-maxParticipants']", "2"),
    ] {
        fill(c, css, v).await;
    }
    // A date field's typing order depends on the browser's locale: set its value.
    c.execute(
        "document.getElementById('champ-dates-applyUntil').value = '2027-02-28'",
        vec![],
    )
    .await?;
    click_away(c, Locator::Css("button[name=publier]")).await?;
    c.wait().for_element(Locator::Css(".proof-box")).await?;
    let page = text(c).await;
    assert!(page.contains("Vis mon job : agent d'accueil"), "{page}");
    assert!(
        page.contains("Publiée (envoyée aux destinataires)"),
        "{page}"
    );
    assert!(
        page.contains("Signature vérifiée — publié par Ville de Grenoble"),
        "{page}"
    );
    assert!(page.contains("18 mars 2027 (demi-journée)"), "{page}");
    shot(c, "07-offre-publiee").await;

    // It is in the feed, found by an inflected word.
    c.goto(&format!("{base}/console/offres?q=accueils")).await?;
    let page = text(c).await;
    assert!(page.contains("Vis mon job : agent d'accueil"), "{page}");

    // Save the search.
    fill(c, "#save-name", "Accueil").await;
    click_away(c, Locator::Css(".save-search button")).await?;
    c.wait().for_element(Locator::Css("table")).await?;
    assert!(text(c).await.contains("Accueil"));
    shot(c, "08-recherches").await;

    // The other main pages.
    for (path, name, expect) in [
        ("/console/mes-offres", "09-nos-offres", "Vis mon job"),
        ("/console/agents", "10-agents", "Agents"),
        (
            "/console/partenaires",
            "11-partenaires",
            "Département de l'Isère",
        ),
        ("/console/journal", "12-journal", "posting.publish"),
        ("/console/noeud", "13-noeud", "Clés de signature"),
        (
            "/console/mes-offres/nouvelle?kind=vacancy",
            "14-formulaire-poste",
            "Motif de la vacance",
        ),
    ] {
        c.goto(&format!("{base}{path}")).await?;
        let page = text(c).await;
        assert!(page.contains(expect), "{path}: {page}");
        shot(c, name).await;
    }

    // The collectivité's membership on the node page: an invalid SIREN is refused in
    // French next to its field, then a valid one (typed with spaces) is recorded.
    let membership = "form[action='/console/noeud/appartenance'] button[type=submit]";
    c.goto(&format!("{base}/console/noeud")).await?;
    fill(c, "#epci_siren", "123456789").await;
    click_away(c, Locator::Css(membership)).await?;
    c.wait().for_element(Locator::Css(".error-summary")).await?;
    let page = text(c).await;
    assert!(
        page.contains("« 123456789 » n'est pas un SIREN valide"),
        "{page}"
    );
    let field = c.find(Locator::Css("#epci_siren")).await?;
    assert_eq!(field.attr("aria-invalid").await?.as_deref(), Some("true"));
    shot(c, "15-noeud-appartenance-erreur").await;
    fill(c, "#epci_siren", "200 040 715").await;
    click_away(c, Locator::Css(membership)).await?;
    let page = text(c).await;
    assert!(page.contains("SIREN 200040715"), "{page}");
    assert!(page.contains("a été enregistrée"), "{page}");

    // An agent's opt-in profile: published, then edited — a quotité out of range is
    // refused in French, then the corrected form is sent with the keyboard (Enter).
    c.goto(&format!("{base}/console/agents/nouveau")).await?;
    fill(c, "#name", "Camille Martin").await;
    click_away(c, Locator::Css("main form button[type=submit]")).await?;
    c.find(Locator::Css("details.step summary"))
        .await?
        .click()
        .await?;
    fill(c, "#themes", "jardins partagés").await;
    fill(c, "#quotite_max", "40").await;
    click_away(
        c,
        Locator::Css("form[action$='/profil'] button[type=submit]"),
    )
    .await?;
    let page = text(c).await;
    assert!(
        page.contains("Le profil de l'agent a été publié."),
        "{page}"
    );
    assert!(page.contains("40 % au plus"), "{page}");
    click_away(c, Locator::Css("a[href*='/profil/'][href$='/modifier']")).await?;
    let field = c.find(Locator::Css("#quotite_max")).await?;
    assert_eq!(field.prop("value").await?.as_deref(), Some("40"));
    fill(c, "#quotite_max", "150").await;
    click_away(c, Locator::Css("main form button[type=submit]")).await?;
    c.wait().for_element(Locator::Css(".error-summary")).await?;
    let page = text(c).await;
    assert!(
        page.contains("Le pourcentage doit être compris entre 1 et 100"),
        "{page}"
    );
    assert!(page.contains("jardins partagés") || page.contains("Modifier le profil"));
    shot(c, "16-profil-erreur").await;
    fill(c, "#quotite_max", "50").await;
    c.find(Locator::Css("#quotite_max"))
        .await?
        .send_keys("\u{E007}")
        .await?;
    c.wait().for_element(Locator::Css(".notice")).await?;
    let page = text(c).await;
    assert!(page.contains("Le profil a été modifié"), "{page}");
    assert!(page.contains("50 % au plus"), "{page}");
    shot(c, "17-profil-modifie").await;
    Ok(())
}
