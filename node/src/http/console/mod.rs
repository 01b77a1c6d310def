//! The HR web console (French), served under `/console`: server-rendered HTML from
//! minijinja templates embedded in the binary (`node/templates/console/`), one small
//! embedded style sheet, no JavaScript.
//!
//! Security: the session is a session token (the same as `POST /api/v1/session` returns)
//! in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/console` (`Secure` when the base
//! URL is https); every form carries a CSRF token derived from the session secret, checked
//! on every POST; templates escape every value (HTML auto-escaping; postings come from
//! other nodes); every handler checks the role it needs (`lecteur < rh < admin`); pages
//! are sent with a strict Content-Security-Policy (no script at all) and `no-store`.

mod admin;
mod mad;
mod pages;
mod partners;
mod postings;
mod profiles;

use std::sync::LazyLock;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{AutoEscape, Environment, Value as Ctx, context};
use sha2::{Digest as _, Sha256};

use crate::auth::{self, AuthError, Principal};
use crate::state::AppState;
use crate::store::{Role, StoreError};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "passerelle_session";
/// Name of the cookie that protects the sign-in form (double submit).
pub const LOGIN_CSRF_COOKIE: &str = "passerelle_connexion";
/// Name of the CSRF form field.
pub const CSRF_FIELD: &str = "_csrf";

static STYLE: &str = include_str!("../../../assets/console.css");

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../templates/console/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates!(
    "base.html",
    "macros.html",
    "login.html",
    "error.html",
    "feed.html",
    "posting.html",
    "saved.html",
    "saved_one.html",
    "my_postings.html",
    "posting_kind.html",
    "posting_form.html",
    "agents.html",
    "agent.html",
    "agent_form.html",
    "profile_form.html",
    "partners.html",
    "audit.html",
    "node.html",
    "mad_list.html",
    "mad.html",
    "mad_form.html",
);

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in TEMPLATES {
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "console template does not compile");
        }
    }
    env
});

/// Console routes (merged into the node's router).
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/offres") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/offres") }),
        )
        .route("/console/style.css", get(get_style))
        .route(
            "/console/connexion",
            get(admin::get_login).post(admin::post_login),
        )
        .route("/console/deconnexion", post(admin::post_logout))
        .route("/console/offres", get(pages::get_feed))
        .route("/console/offres/export.csv", get(pages::get_export_csv))
        .route("/console/offres/export.atom", get(pages::get_export_atom))
        .route("/console/offres/export.ics", get(pages::get_export_ics))
        .route("/console/offre", get(pages::get_posting))
        .route(
            "/console/recherches",
            get(pages::get_saved).post(pages::post_saved),
        )
        .route("/console/recherches/{id}", get(pages::get_saved_one))
        .route("/console/recherches/{id}/vu", post(pages::post_saved_seen))
        .route(
            "/console/recherches/{id}/supprimer",
            post(pages::post_saved_delete),
        )
        .route("/console/mes-offres", get(postings::get_list))
        .route(
            "/console/mes-offres/nouvelle",
            get(postings::get_new).post(postings::post_new),
        )
        .route(
            "/console/mes-offres/{id}/modifier",
            get(postings::get_edit).post(postings::post_edit),
        )
        .route(
            "/console/mes-offres/{id}/publier",
            post(postings::post_publish),
        )
        .route(
            "/console/mes-offres/{id}/cloturer",
            post(postings::post_close),
        )
        .route(
            "/console/mes-offres/{id}/supprimer",
            post(postings::post_delete),
        )
        .route("/console/agents", get(admin::get_agents))
        .route(
            "/console/agents/nouveau",
            get(admin::get_agent_new).post(admin::post_agent_new),
        )
        .route("/console/agents/{id}", get(admin::get_agent))
        .route("/console/agents/{id}/profil", post(profiles::post_publish))
        .route(
            "/console/agents/{id}/profil/{profile}/modifier",
            get(profiles::get_edit).post(profiles::post_edit),
        )
        .route(
            "/console/agents/{id}/profil/{profile}/retirer",
            post(profiles::post_withdraw),
        )
        .route(
            "/console/agents/{id}/modifier",
            get(admin::get_agent_edit).post(admin::post_agent_edit),
        )
        .route(
            "/console/agents/{id}/supprimer",
            post(admin::post_agent_delete),
        )
        .route("/console/mad", get(mad::get_list))
        .route(
            "/console/mad/nouvelle",
            get(mad::get_new).post(mad::post_new),
        )
        .route("/console/mad/{id}", get(mad::get_one))
        .route("/console/mad/{id}/etape", post(mad::post_step))
        .route("/console/mad/{id}/signer", post(mad::post_sign))
        .route("/console/mad/{id}/agent", post(mad::post_link_agent))
        .route(
            "/console/mad/{id}/accord-avenant",
            post(mad::post_amendment_agreement),
        )
        .route(
            "/console/mad/{id}/convention/{amendment}",
            get(mad::get_convention),
        )
        .route("/console/partenaires", get(admin::get_partners))
        .route("/console/partenaires/demande", post(partners::post_request))
        .route("/console/partenaires/rejouer", post(partners::post_replay))
        .route("/console/partenaires/blocages", post(partners::post_block))
        .route(
            "/console/partenaires/blocages/lever",
            post(partners::post_unblock),
        )
        .route("/console/partenaires/cercles", post(partners::post_circle))
        .route(
            "/console/partenaires/cercles/{id}/supprimer",
            post(partners::post_circle_delete),
        )
        .route(
            "/console/partenaires/{id}/{action}",
            post(partners::post_action),
        )
        .route("/console/journal", get(admin::get_audit))
        .route("/console/noeud", get(admin::get_node))
        .route("/console/noeud/identite", post(admin::post_identity))
        .route("/console/noeud/appartenance", post(admin::post_membership))
        .route("/console/noeud/politique", post(admin::post_policy))
        .layer(middleware::map_response_with_state(state, security_headers))
}

async fn security_headers(State(_state): State<AppState>, mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

async fn get_style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// Errors of console pages: an HTML page in French (or a redirect to sign in).
#[derive(Debug)]
pub enum ConsoleError {
    /// Not signed in: go to the sign-in page, then come back.
    SignIn(String),
    /// Signed in, role too low.
    Forbidden(String),
    /// Nothing here.
    NotFound(String),
    /// The form's CSRF token is missing or wrong.
    Csrf,
    /// The request is malformed.
    BadRequest(String),
    /// A bug or an infrastructure failure (logged, never shown).
    Internal(String),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { .. } => {
                ConsoleError::NotFound("Cet élément n'existe pas ou n'existe plus.".to_owned())
            }
            StoreError::Conflict { what } => ConsoleError::BadRequest(format!("Conflit : {what}")),
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ConsoleError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Forbidden { .. } => ConsoleError::Forbidden(e.to_string()),
            AuthError::Store(s) => s.into(),
            other => ConsoleError::SignIn(other.to_string()),
        }
    }
}

impl From<crate::http::error::AppError> for ConsoleError {
    fn from(e: crate::http::error::AppError) -> Self {
        use crate::http::error::AppError as A;
        match e {
            A::NotFound(m) => ConsoleError::NotFound(m),
            A::Forbidden(m) => ConsoleError::Forbidden(m),
            A::Unauthorized(m) => ConsoleError::SignIn(m),
            A::Internal(m) => ConsoleError::Internal(m),
            other => ConsoleError::BadRequest(other.to_string()),
        }
    }
}

impl From<crate::feed::FeedError> for ConsoleError {
    fn from(e: crate::feed::FeedError) -> Self {
        match e {
            crate::feed::FeedError::Store(s) => s.into(),
            other => ConsoleError::BadRequest(other.to_string()),
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            ConsoleError::SignIn(next) => {
                let mut s = url::form_urlencoded::Serializer::new(String::new());
                s.append_pair("suite", &next);
                return Redirect::to(&format!("/console/connexion?{}", s.finish())).into_response();
            }
            ConsoleError::Forbidden(m) => (StatusCode::FORBIDDEN, "Accès refusé", m),
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, "Introuvable", m),
            ConsoleError::Csrf => (
                StatusCode::FORBIDDEN,
                "Formulaire expiré",
                "Le formulaire a expiré ou ne vient pas de cette console. Rechargez la page et recommencez.".to_owned(),
            ),
            ConsoleError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Requête invalide", m),
            ConsoleError::Internal(cause) => {
                tracing::error!(error = %cause, "console: internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Erreur interne",
                    "Une erreur interne est survenue ; elle a été journalisée. Réessayez plus tard ou contactez l'administrateur du nœud.".to_owned(),
                )
            }
        };
        let body = render_raw(
            "error.html",
            context! { title => title, message => message, user => Ctx::from(()) },
        )
        .unwrap_or_else(|_| format!("{title} : {message}"));
        (status, html_headers(), body).into_response()
    }
}

fn html_headers() -> [(header::HeaderName, &'static str); 1] {
    [(header::CONTENT_TYPE, "text/html; charset=utf-8")]
}

fn render_raw(name: &str, ctx: Ctx) -> Result<String, minijinja::Error> {
    ENV.get_template(name)?.render(ctx)
}

/// Renders a page.
///
/// # Errors
/// [`ConsoleError::Internal`] when the template fails (a bug).
pub fn render(name: &str, ctx: Ctx) -> Result<Response, ConsoleError> {
    render_status(StatusCode::OK, name, ctx)
}

/// Renders a page with a status (422 for a form with errors).
///
/// # Errors
/// [`ConsoleError::Internal`] when the template fails (a bug).
pub fn render_status(status: StatusCode, name: &str, ctx: Ctx) -> Result<Response, ConsoleError> {
    let body = render_raw(name, ctx)
        .map_err(|e| ConsoleError::Internal(format!("template {name}: {e:#}")))?;
    Ok((status, html_headers(), body).into_response())
}

/// The CSRF token of a session: derived from its secret, so it cannot be guessed without
/// the cookie, and needs no storage.
pub fn csrf_token(session_secret: &str) -> String {
    let digest = Sha256::digest(format!("passerelle-console-csrf\0{session_secret}").as_bytes());
    hex::encode(&digest[..16])
}

/// Constant-time comparison of two tokens.
pub(super) fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie value from the request headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

/// A `Set-Cookie` value with the console's flags.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.base_url().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path=/console; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// The signed-in user of a console request.
#[derive(Debug, Clone)]
pub struct User {
    /// Who (audit name, role).
    pub principal: Principal,
    /// The CSRF token to put in forms.
    pub csrf: String,
    /// Display name (the account's username).
    pub name: String,
    /// Session token hash (to sign out).
    token_secret: String,
}

impl User {
    /// Fails with an "access denied" page when the role is too low.
    ///
    /// # Errors
    /// [`ConsoleError::Forbidden`].
    pub fn require(&self, role: Role) -> Result<(), ConsoleError> {
        self.principal.require(role).map_err(|_| {
            ConsoleError::Forbidden(format!(
                "Cette page demande le rôle « {} » ; votre rôle est « {} ».",
                role_label(role),
                role_label(self.principal.role)
            ))
        })
    }

    /// Checks the CSRF token of a submitted form.
    ///
    /// # Errors
    /// [`ConsoleError::Csrf`].
    pub fn check_csrf(&self, form: &Form) -> Result<(), ConsoleError> {
        match form.get(CSRF_FIELD) {
            Some(t) if same_token(t, &self.csrf) => Ok(()),
            _ => Err(ConsoleError::Csrf),
        }
    }

    /// What templates know of the user.
    pub fn ctx(&self) -> Ctx {
        context! {
            name => self.name,
            role => self.principal.role.as_str(),
            role_label => role_label(self.principal.role),
            csrf => self.csrf,
            is_rh => self.principal.role >= Role::Rh,
            is_admin => self.principal.role >= Role::Admin,
        }
    }
}

/// French name of a role.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Lecteur => "lecteur",
        Role::Rh => "RH",
        Role::Admin => "administrateur",
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map_or("/console/offres", |p| p.as_str())
            .to_owned();
        let next = if parts.method == axum::http::Method::GET {
            next
        } else {
            "/console/offres".to_owned()
        };
        let Some(secret) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ConsoleError::SignIn(next));
        };
        let principal = match auth::authenticate_token(state.store(), secret).await {
            Ok(p) => p,
            Err(AuthError::BadToken) => return Err(ConsoleError::SignIn(next)),
            Err(e) => return Err(e.into()),
        };
        let name = match principal.actor.strip_prefix("session:") {
            Some(id) => state
                .store()
                .accounts()
                .await?
                .into_iter()
                .find(|a| a.id.to_string() == id)
                .map(|a| a.username)
                .unwrap_or_else(|| principal.actor.clone()),
            None => principal.actor.clone(),
        };
        Ok(User {
            csrf: csrf_token(secret),
            principal,
            name,
            token_secret: secret.to_owned(),
        })
    }
}

/// A submitted `application/x-www-form-urlencoded` body, repeated names kept.
#[derive(Debug, Clone, Default)]
pub struct Form(pub Vec<(String, String)>);

/// What an officer is told of a form with U+0000 in a field ([`Form::has_nul`]).
pub const NUL_IN_FORM: &str = "Le caractère nul (U+0000) n'est admis dans aucun champ.";

impl Form {
    /// Parses a body.
    pub fn parse(body: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Whether a name or a value holds U+0000 (`%00`), which no field may carry: the
    /// database cannot store it (the API refuses it the same way, `AppJson`). The
    /// officer is told [`NUL_IN_FORM`].
    pub fn has_nul(&self) -> bool {
        self.0
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed first value of `name`, empty when absent.
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().trim().to_owned()
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A redirect after a successful POST (303), with an optional notice code.
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// French notice for a `?ok=` code (fixed texts: nothing from the request is reflected).
pub fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "creee" => "L'offre a été enregistrée comme brouillon.",
        "modifiee" => "L'offre a été modifiée.",
        "publiee" => "L'offre a été publiée.",
        "cloturee" => "L'offre a été clôturée.",
        "supprimee" => "L'offre a été supprimée.",
        "recherche" => "La recherche a été enregistrée.",
        "vu" => "Les nouvelles offres ont été marquées comme vues.",
        "recherche_supprimee" => "La recherche enregistrée a été supprimée.",
        "agent_cree" => "L'agent a été créé.",
        "agent_modifie" => "La fiche de l'agent a été modifiée.",
        "agent_supprime" => "L'agent a été supprimé.",
        "profil_publie" => "Le profil de l'agent a été publié.",
        "profil_modifie" => {
            "Le profil a été modifié ; sa nouvelle version a été envoyée aux collectivités de sa portée."
        }
        "profil_retire" => {
            "Le profil a été retiré ; sa suppression a été envoyée à chaque collectivité qui l'avait reçu."
        }
        "identite" => "L'identité du nœud a été enregistrée.",
        "appartenance" => {
            "L'appartenance de la collectivité (EPCI, rattachement) a été enregistrée."
        }
        "politique" => "La politique de partenariat a été enregistrée.",
        _ => return None,
    })
}

/// Base context of every page.
pub async fn page_ctx(state: &AppState, user: &User, nav: &str) -> Ctx {
    let node_name = state
        .store()
        .identity()
        .await
        .map(|i| i.name)
        .unwrap_or_else(|_| "Passerelle".to_owned());
    context! { user => user.ctx(), nav => nav, node_name => node_name }
}

/// A date-time in French, for pages (`14/12/2026 à 09:30 UTC`).
pub fn when(t: time::OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[day]/[month]/[year] à [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// A `YYYY-MM-DD` day in French (`1er mars 2027`), or the input when it is not one.
pub fn day_fr(d: &str) -> String {
    time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
        .map(crate::domain::date_fr)
        .unwrap_or_else(|_| d.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_field_holding_nul_is_seen() {
        assert!(!Form::parse(b"name=Poste+%C3%A0+pourvoir&csrf=x").has_nul());
        assert!(Form::parse(b"name=Poste%00&csrf=x").has_nul());
        assert!(Form::parse(b"na%00me=x").has_nul());
    }

    #[test]
    fn every_template_compiles() {
        for (name, _) in TEMPLATES {
            assert!(ENV.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session() {
        let a = csrf_token("psl_a");
        assert_eq!(a, csrf_token("psl_a"));
        assert_ne!(a, csrf_token("psl_b"));
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &csrf_token("psl_b")));
        assert!(!same_token(&a, ""));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; passerelle_session=psl_x; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("psl_x"));
        assert_eq!(cookie(&h, "passerelle"), None);
    }
}
