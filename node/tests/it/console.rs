//! The web console through the router: sign-in and session cookie flags, CSRF on every
//! form, roles on every page, escaping of content received from other nodes, the
//! publishing form of every kind with French validation messages.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use passerelle_node::auth;
use passerelle_node::store::Role;
use tower::ServiceExt as _;

use crate::feed_api::receive;
use crate::feed_store::Partner;
use crate::http::{TestNode, node};

pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

pub async fn send(n: &TestNode, method: &str, uri: &str, cookie: &str, form: Option<&str>) -> Page {
    let mut req = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    let req = match form {
        Some(f) => req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(f.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let resp = n.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 10 << 20)
        .await
        .unwrap();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn set_cookies(p: &Page) -> Vec<String> {
    p.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + marker.len();
    body[start..start + body[start..].find('"').unwrap()].to_owned()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Signs in through the form; returns the session cookie and the CSRF token of pages.
pub async fn sign_in(n: &TestNode, username: &str, role: Role) -> (String, String) {
    auth::create_account(&n.store, username, "mot de passe très long", role, "test")
        .await
        .unwrap();
    let login = send(n, "GET", "/console/connexion", "", None).await;
    assert_eq!(login.status, StatusCode::OK);
    let login_cookie = set_cookies(&login)[0].split(';').next().unwrap().to_owned();
    let csrf = hidden(&login.body, "_csrf");
    let r = send(
        n,
        "POST",
        "/console/connexion",
        &login_cookie,
        Some(&format!(
            "_csrf={csrf}&suite=%2Fconsole%2Foffres&username={username}&password={}",
            enc("mot de passe très long")
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let session = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("passerelle_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Secure"] {
        assert!(session.contains(flag), "{session}");
    }
    let cookie = session.split(';').next().unwrap().to_owned();
    let page = send(n, "GET", "/console/offres", &cookie, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = hidden(&page.body, "_csrf");
    (cookie, csrf)
}

#[tokio::test]
async fn console_sign_in_session_and_csrf() {
    let n = node().await;
    // Not signed in: sent to the sign-in page, then back.
    let r = send(&n, "GET", "/console/offres?q=x", "", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers[header::LOCATION],
        "/console/connexion?suite=%2Fconsole%2Foffres%3Fq%3Dx"
    );
    // A sign-in form without its token is refused; a wrong password too.
    auth::create_account(
        &n.store,
        "alice",
        "mot de passe très long",
        Role::Rh,
        "test",
    )
    .await
    .unwrap();
    let r = send(
        &n,
        "POST",
        "/console/connexion",
        "",
        Some("username=alice&password=x"),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        set_cookies(&r)
            .iter()
            .all(|c| !c.starts_with("passerelle_session"))
    );
    let login = send(
        &n,
        "GET",
        "/console/connexion?suite=https%3A%2F%2Fevil.example",
        "",
        None,
    )
    .await;
    assert!(!login.body.contains("evil.example"), "open redirect");
    let login_cookie = set_cookies(&login)[0].split(';').next().unwrap().to_owned();
    let csrf = hidden(&login.body, "_csrf");
    let r = send(
        &n,
        "POST",
        "/console/connexion",
        &login_cookie,
        Some(&format!("_csrf={csrf}&username=alice&password=wrong")),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Identifiant ou mot de passe incorrect"));
    // A field holding U+0000 (`%00`), which the database cannot store: the sign-in page
    // again, with why.
    let r = send(
        &n,
        "POST",
        "/console/connexion",
        &login_cookie,
        Some(&format!("_csrf={csrf}&username=alice%00&password=x")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("caractère nul"), "{}", r.body);

    let (cookie, csrf) = sign_in(&n, "bob", Role::Rh).await;
    let page = send(&n, "GET", "/console/offres", &cookie, None).await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(page.body.contains("lang=\"fr\""));

    // Every form needs the session's CSRF token.
    let form = "name=Recherche&query=q%3Dx";
    let r = send(&n, "POST", "/console/recherches", &cookie, Some(form)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("Formulaire expiré"));
    let r = send(
        &n,
        "POST",
        "/console/recherches",
        &cookie,
        Some(&format!("_csrf={}&{form}", "0".repeat(32))),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        n.store
            .saved_searches("session:x")
            .await
            .unwrap()
            .is_empty()
    );
    let r = send(
        &n,
        "POST",
        "/console/recherches",
        &cookie,
        Some(&format!("_csrf={csrf}&name=Re%00cherche&query=q%3Dx")),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("caractère nul"), "{}", r.body);
    let r = send(
        &n,
        "POST",
        "/console/recherches",
        &cookie,
        Some(&format!("_csrf={csrf}&{form}&alert=1")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);

    // Signing out revokes the session.
    let r = send(
        &n,
        "POST",
        "/console/deconnexion",
        &cookie,
        Some(&format!("_csrf={csrf}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(&n, "GET", "/console/offres", &cookie, None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn console_roles_are_enforced_on_every_page() {
    let n = node().await;
    let (reader, reader_csrf) = sign_in(&n, "lea", Role::Lecteur).await;
    let (rh, _) = sign_in(&n, "remi", Role::Rh).await;
    let (admin, _) = sign_in(&n, "ada", Role::Admin).await;
    // Readable by every role.
    for page in [
        "/console/offres",
        "/console/mes-offres",
        "/console/recherches",
        "/console/agents",
        "/console/partenaires",
        "/console/noeud",
        "/console/mad",
    ] {
        let r = send(&n, "GET", page, &reader, None).await;
        assert_eq!(r.status, StatusCode::OK, "{page}: {}", r.body);
    }
    // RH pages.
    for page in [
        "/console/mes-offres/nouvelle",
        "/console/agents/nouveau",
        "/console/mad/nouvelle",
    ] {
        assert_eq!(
            send(&n, "GET", page, &reader, None).await.status,
            StatusCode::FORBIDDEN,
            "{page}"
        );
        assert_eq!(
            send(&n, "GET", page, &rh, None).await.status,
            StatusCode::OK,
            "{page}"
        );
    }
    let r = send(
        &n,
        "POST",
        "/console/agents/nouveau",
        &reader,
        Some(&format!("_csrf={reader_csrf}&name=X")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("rôle « RH »"), "{}", r.body);
    assert!(n.store.agents().await.unwrap().is_empty());
    // Admin pages.
    assert_eq!(
        send(&n, "GET", "/console/journal", &rh, None).await.status,
        StatusCode::FORBIDDEN
    );
    let r = send(&n, "GET", "/console/journal", &admin, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("session.open"));
    // The node page shows the identity form to admins only.
    assert!(
        !send(&n, "GET", "/console/noeud", &rh, None)
            .await
            .body
            .contains("/console/noeud/identite")
    );
    assert!(
        send(&n, "GET", "/console/noeud", &admin, None)
            .await
            .body
            .contains("/console/noeud/identite")
    );
}

#[tokio::test]
async fn console_escapes_what_partners_send() {
    let n = node().await;
    let (cookie, _) = sign_in(&n, "eve", Role::Lecteur).await;
    let partner = Partner::new("https://rh.lyon.example");
    receive(
        &n,
        &partner,
        "<script>alert(1)</script> Ingénieur \"x\" onmouseover='y'",
        None,
    )
    .await;
    let page = send(&n, "GET", "/console/offres?q=ingenieur", &cookie, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;"));
    assert!(!page.body.contains("onmouseover='y'"));
    assert!(page.body.contains("Signature vérifiée"));
    assert!(page.body.contains("1 offre"));
    // The detail page says who published it and that its signature was verified.
    let item = n.store.feed_search(&Default::default()).await.unwrap();
    let _ = item;
    let id = n
        .store
        .remote_postings(None, false)
        .await
        .unwrap()
        .remove(0)
        .object_id;
    let detail = send(
        &n,
        "GET",
        &format!("/console/offre?id={}", enc(&id)),
        &cookie,
        None,
    )
    .await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert!(
        detail
            .body
            .contains("Signature vérifiée — publié par rh.lyon.example"),
        "{}",
        detail.body
    );
    assert!(!detail.body.contains("<script>"));
    let missing = send(
        &n,
        "GET",
        "/console/offre?id=https%3A%2F%2Fx.example%2Fp",
        &cookie,
        None,
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn console_publishing_form_of_every_kind() {
    let n = node().await;
    let (cookie, csrf) = sign_in(&n, "rose", Role::Rh).await;
    for kind in [
        "vacancy",
        "mad_offer",
        "project_mission",
        "facilitation_request",
        "immersion_offer",
        "immersion_swap",
        "training_session",
        "career_offer",
    ] {
        let r = send(
            &n,
            "GET",
            &format!("/console/mes-offres/nouvelle?kind={kind}"),
            &cookie,
            None,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{kind}");
        assert!(r.body.contains("Intitulé du poste ou de l"), "{kind}");
        // Every input has a label.
        let inputs = r.body.matches("<input id=\"").count()
            + r.body.matches("<select id=\"").count()
            + r.body.matches("<textarea id=\"").count();
        let labels = r.body.matches("<label for=\"").count();
        assert!(
            labels >= inputs,
            "{kind}: {labels} labels for {inputs} inputs"
        );
    }
    // An incomplete vacancy: 422 with the protocol's rules in French, tied to fields.
    let r = send(
        &n,
        "POST",
        "/console/mes-offres/nouvelle?kind=vacancy",
        &cookie,
        Some(&format!(
            "_csrf={csrf}&%2Fname=Juriste&%2Fvisibility=federation&%2Fdates%2FapplyUntil=31%2F12%2F2026"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body.contains("n&#x27;est pas une date") || r.body.contains("n'est pas une date"),
        "{}",
        r.body
    );
    let r = send(
        &n,
        "POST",
        "/console/mes-offres/nouvelle?kind=vacancy",
        &cookie,
        Some(&format!(
            "_csrf={csrf}&%2Fname=Juriste&%2Fvisibility=federation"
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Ce champ est obligatoire."), "{}", r.body);
    assert!(r.body.contains("aria-invalid=\"true\""));
    assert!(n.store.postings(None).await.unwrap().is_empty());
    // A complete one is published, then found in the feed.
    let fields = [
        ("/name", "Juriste marchés publics"),
        ("/visibility", "federation"),
        ("/summary", "Sécuriser les achats."),
        ("/missions", "Rédiger les pièces des marchés."),
        ("/profile", "Juriste confirmé."),
        ("/statutory/versant", "fpt"),
        ("/statutory/categories", "A"),
        ("/statutory/cadresEmplois", "Attachés territoriaux"),
        ("/statutory/openToContractuels", "l332_8_2"),
        ("/metiers/0/rome/code", "k1903"),
        ("/employer/name", "Ville de Grenoble"),
        ("/employer/recruitingAuthority", "Le Maire"),
        ("/locations/0/commune", "38185"),
        ("/workingTime/kind", "complet"),
        ("/dates/applyUntil", "2027-01-31"),
        ("/contact/mailbox", "recrutement@grenoble.example"),
        ("/body/vacancyKind", "vacance"),
        ("/body/vacancyReason", "mutation"),
        ("/body/vacancyDate", "2027-03-01"),
        ("/body/routes", "mutation"),
    ];
    let mut body = format!("_csrf={csrf}&publier=1");
    for (k, v) in fields {
        body.push_str(&format!("&{}={}", enc(k), enc(v)));
    }
    let r = send(
        &n,
        "POST",
        "/console/mes-offres/nouvelle?kind=vacancy",
        &cookie,
        Some(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let postings = n.store.postings(None).await.unwrap();
    assert_eq!(postings.len(), 1);
    assert_eq!(postings[0].document["metiers"][0]["rome"]["code"], "K1903");
    assert_eq!(postings[0].status.as_str(), "published");
    let feed = send(&n, "GET", "/console/offres?q=juristes", &cookie, None).await;
    assert!(
        feed.body.contains("Juriste marchés publics"),
        "{}",
        feed.body
    );
    // Editing keeps what the form does not show.
    let id = postings[0].id;
    let mut doc = postings[0].document.clone();
    doc["metiers"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"local": {"label": "Acheteur"}}));
    let content = passerelle_node::postings::editable_content(&doc);
    let rh = n.token(Role::Rh).await;
    let (s, _) = n
        .call(
            "PUT",
            &format!("/api/v1/postings/{id}"),
            Some(&rh),
            Some(content),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let form = send(
        &n,
        "GET",
        &format!("/console/mes-offres/{id}/modifier"),
        &cookie,
        None,
    )
    .await;
    assert!(form.body.contains("value=\"Juriste marchés publics\""));
    let mut body = format!("_csrf={csrf}");
    for (k, v) in fields {
        let v = if k == "/name" {
            "Juriste des marchés publics"
        } else {
            v
        };
        body.push_str(&format!("&{}={}", enc(k), enc(v)));
    }
    let r = send(
        &n,
        "POST",
        &format!("/console/mes-offres/{id}/modifier"),
        &cookie,
        Some(&body),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = n.store.posting(id).await.unwrap();
    assert_eq!(p.document["name"], "Juriste des marchés publics");
    assert_eq!(p.document["metiers"][1]["local"]["label"], "Acheteur");
    // Its detail page shows the history of what was sent.
    let detail = send(
        &n,
        "GET",
        &format!("/console/offre?local={id}"),
        &cookie,
        None,
    )
    .await;
    assert!(
        detail.body.contains("Publiée (envoyée aux destinataires)"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("Mise à jour envoyée"));
}
