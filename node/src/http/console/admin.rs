//! Console pages: sign-in and sign-out, agents, partners (read-only for now), the audit
//! log, and the node's settings (identity, EPCI membership and attachment, partnership
//! policy) and keys.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use minijinja::context;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::pages::form;
use super::{
    CSRF_FIELD, ConsoleError, Form, LOGIN_CSRF_COOKIE, SESSION_COOKIE, User, cookie, notice,
    page_ctx, render, render_status, role_label, same_token, see_other, set_cookie, when,
};
use crate::auth::{self, AuthError};
use crate::http::api::NodeIdentityBody;
use crate::http::api::check_identity;
use crate::http::api::mad::{MembershipBody, read_membership, save_membership};
use crate::http::error::AppError;
use crate::state::AppState;
use crate::store::{AgentFields, PartnershipState, Role, StoreError};

fn ok_code(raw: &Option<String>) -> Option<String> {
    url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "ok")
        .map(|(_, v)| v.into_owned())
}

/// Where to go after signing in: only console paths (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/console/") && !n.starts_with("/console//") && !n.contains('\\') =>
        {
            n.to_owned()
        }
        _ => "/console/offres".to_owned(),
    }
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    next: &str,
    username: &str,
    error: Option<&str>,
) -> Result<Response, ConsoleError> {
    let token = auth::new_token_secret();
    let csrf = super::csrf_token(&token);
    let mut r = render_status(
        status,
        "login.html",
        context! {
            user => minijinja::Value::from(()),
            csrf => csrf,
            next => next,
            username => username,
            error => error,
        },
    )?;
    if let Ok(v) = HeaderValue::from_str(&set_cookie(state, LOGIN_CSRF_COOKIE, &token, 3600)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// # `GET /console/connexion`
pub async fn get_login(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    let next = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "suite")
        .map(|(_, v)| v.into_owned());
    login_page(
        &state,
        StatusCode::OK,
        &safe_next(next.as_deref()),
        "",
        None,
    )
}

/// # `POST /console/connexion`
/// Checks the password, opens a session and sets the session cookie.
pub async fn post_login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    let f = Form::parse(&body);
    let next = safe_next(f.get("suite"));
    // Double submit: the form's token must derive from the cookie set with the form.
    let csrf_ok = match (cookie(&headers, LOGIN_CSRF_COOKIE), f.get(CSRF_FIELD)) {
        (Some(c), Some(t)) => same_token(&super::csrf_token(c), t),
        _ => false,
    };
    if !csrf_ok {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            &next,
            &f.text("username"),
            Some("Le formulaire a expiré : saisissez à nouveau vos identifiants."),
        );
    }
    if f.has_nul() {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            &next,
            "",
            Some(super::NUL_IN_FORM),
        );
    }
    let username = f.text("username");
    let password = f.get("password").unwrap_or_default().to_owned();
    match auth::login(state.store(), &username, &password).await {
        Ok((_, secret, _)) => {
            let mut r = see_other(&next);
            let max_age = auth::SESSION_LIFETIME.whole_seconds();
            for c in [
                set_cookie(&state, SESSION_COOKIE, &secret, max_age),
                set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    r.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            Ok(r)
        }
        Err(AuthError::BadCredentials) => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &next,
            &username,
            Some("Identifiant ou mot de passe incorrect."),
        ),
        Err(e) => Err(e.into()),
    }
}

/// # `POST /console/deconnexion`
/// Revokes the session and clears the cookie.
pub async fn post_logout(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    form(&user, &body)?;
    match state
        .store()
        .token_by_hash(&auth::token_hash(&user.token_secret))
        .await
    {
        Ok(t) => {
            state
                .store()
                .revoke_token(
                    t.id,
                    &user
                        .principal
                        .audit("session.close", format!("token:{}", t.id)),
                )
                .await?;
        }
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let mut r = see_other("/console/connexion");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&state, SESSION_COOKIE, "", 0)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

// ---- agents ----

#[derive(Serialize)]
struct AgentRow {
    id: String,
    name: String,
    email: Option<String>,
    grade: Option<String>,
    service: Option<String>,
    notes: Option<String>,
    updated: String,
    other: Vec<(String, String)>,
}

fn agent_row(a: crate::store::Agent) -> AgentRow {
    let text = |k: &str| a.data.get(k).and_then(Value::as_str).map(str::to_owned);
    let other = a
        .data
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !["grade", "service", "notes"].contains(&k.as_str()))
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    AgentRow {
        id: a.id.to_string(),
        grade: text("grade"),
        service: text("service"),
        notes: text("notes"),
        name: a.display_name,
        email: a.email,
        updated: when(a.updated_at),
        other,
    }
}

/// # `GET /console/agents`
pub async fn get_agents(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let agents: Vec<AgentRow> = state
        .store()
        .agents()
        .await?
        .into_iter()
        .map(agent_row)
        .collect();
    let base = page_ctx(&state, &user, "agents").await;
    render(
        "agents.html",
        context! { ..base, ..context! { agents => agents, notice => notice(ok_code(&raw).as_deref()) }},
    )
}

fn agent_id(id: &str) -> Result<Uuid, ConsoleError> {
    id.parse()
        .map_err(|_| ConsoleError::NotFound("Cet agent n'existe pas.".into()))
}

/// # `GET /console/agents/{id}`
pub async fn get_agent(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let id = agent_id(&id)?;
    let agent = agent_row(state.store().agent(id).await?);
    let profiles = super::profiles::agent_profiles(&state, id).await?;
    let circles = state.store().circles().await?;
    let base = page_ctx(&state, &user, "agents").await;
    render(
        "agent.html",
        context! { ..base, ..context! {
            agent => agent,
            profiles => profiles,
            options => super::profiles::form_options(&circles),
            new_profile => super::profiles::new_form(),
            notice => notice(ok_code(&raw).as_deref()),
        }},
    )
}

#[derive(Serialize, Default)]
struct AgentForm {
    name: String,
    email: String,
    grade: String,
    service: String,
    notes: String,
}

async fn agent_form_page(
    state: &AppState,
    user: &User,
    action: &str,
    values: &AgentForm,
    errors: &[(String, String)],
) -> Result<Response, ConsoleError> {
    let base = page_ctx(state, user, "agents").await;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(
        status,
        "agent_form.html",
        context! { ..base, ..context! {
            action => action,
            values => values,
            errors => errors.iter().map(|(f, m)| context!{ field => f, message => m }).collect::<Vec<_>>(),
        }},
    )
}

fn read_agent_form(f: &Form) -> (AgentForm, Vec<(String, String)>) {
    let values = AgentForm {
        name: f.text("name"),
        email: f.text("email"),
        grade: f.text("grade"),
        service: f.text("service"),
        notes: f.text("notes"),
    };
    let mut errors = Vec::new();
    if values.name.is_empty() {
        errors.push((
            "name".to_owned(),
            "Le nom de l'agent est obligatoire.".to_owned(),
        ));
    }
    if !values.email.is_empty()
        && !values
            .email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !values.email.contains(' '))
    {
        errors.push((
            "email".to_owned(),
            format!(
                "« {} » n'est pas une adresse électronique (nom@domaine.fr).",
                values.email
            ),
        ));
    }
    (values, errors)
}

fn agent_fields(values: &AgentForm, mut data: Value) -> AgentFields {
    if !data.is_object() {
        data = json!({});
    }
    for (k, v) in [
        ("grade", &values.grade),
        ("service", &values.service),
        ("notes", &values.notes),
    ] {
        if let Some(m) = data.as_object_mut() {
            if v.is_empty() {
                m.remove(k);
            } else {
                m.insert(k.to_owned(), json!(v));
            }
        }
    }
    AgentFields {
        display_name: values.name.clone(),
        email: (!values.email.is_empty()).then(|| values.email.clone()),
        data,
    }
}

/// # `GET /console/agents/nouveau`
pub async fn get_agent_new(
    State(state): State<AppState>,
    user: User,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    agent_form_page(
        &state,
        &user,
        "/console/agents/nouveau",
        &AgentForm::default(),
        &[],
    )
    .await
}

/// # `POST /console/agents/nouveau`
pub async fn post_agent_new(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let (values, errors) = read_agent_form(&f);
    if !errors.is_empty() {
        return agent_form_page(&state, &user, "/console/agents/nouveau", &values, &errors).await;
    }
    let agent = state
        .store()
        .create_agent(
            &agent_fields(&values, json!({})),
            &user.principal.audit("agent.create", "agent"),
        )
        .await?;
    Ok(see_other(&format!(
        "/console/agents/{}?ok=agent_cree",
        agent.id
    )))
}

/// # `GET /console/agents/{id}/modifier`
pub async fn get_agent_edit(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let a = agent_row(state.store().agent(agent_id(&id)?).await?);
    let values = AgentForm {
        name: a.name,
        email: a.email.unwrap_or_default(),
        grade: a.grade.unwrap_or_default(),
        service: a.service.unwrap_or_default(),
        notes: a.notes.unwrap_or_default(),
    };
    agent_form_page(
        &state,
        &user,
        &format!("/console/agents/{}/modifier", a.id),
        &values,
        &[],
    )
    .await
}

/// # `POST /console/agents/{id}/modifier`
pub async fn post_agent_edit(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let id = agent_id(&id)?;
    let current = state.store().agent(id).await?;
    let (values, errors) = read_agent_form(&f);
    let action = format!("/console/agents/{id}/modifier");
    if !errors.is_empty() {
        return agent_form_page(&state, &user, &action, &values, &errors).await;
    }
    state
        .store()
        .update_agent(
            id,
            &agent_fields(&values, current.data),
            &user.principal.audit("agent.update", format!("agent:{id}")),
        )
        .await?;
    Ok(see_other(&format!("/console/agents/{id}?ok=agent_modifie")))
}

/// # `POST /console/agents/{id}/supprimer`
pub async fn post_agent_delete(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    form(&user, &body)?;
    let id = agent_id(&id)?;
    state
        .store()
        .delete_agent(
            id,
            &user.principal.audit("agent.delete", format!("agent:{id}")),
        )
        .await?;
    Ok(see_other("/console/agents?ok=agent_supprime"))
}

// ---- partners ----

fn state_label(s: PartnershipState) -> &'static str {
    match s {
        PartnershipState::None => "—",
        PartnershipState::Pending => "en attente",
        PartnershipState::Accepted => "acceptée",
        PartnershipState::Rejected => "refusée",
    }
}

fn from_ms(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// # `GET /console/partenaires`
/// Partners, pending requests, circles, blocks and delivery health (read-only: the
/// partnership decisions are taken through the federation services).
pub async fn get_partners(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let partners = state.store().partners().await?;
    let health = state.store().delivery_health().await?;
    let circles = state.store().circles().await?;
    let name_of = |actor: &str| {
        partners
            .iter()
            .find(|p| p.actor_id == actor)
            .map(|p| p.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| actor.to_owned())
    };
    #[derive(Serialize)]
    struct P {
        id: String,
        following: bool,
        name: String,
        actor: String,
        siren: Option<String>,
        outgoing: &'static str,
        incoming: &'static str,
        pending_request: bool,
        circles: Vec<String>,
        health: Option<H>,
        since: String,
    }
    #[derive(Serialize)]
    struct H {
        inbox: String,
        pending: i64,
        delivered: i64,
        dead: i64,
        failures: i64,
        paused_until: Option<String>,
        last_success: Option<String>,
        last_failure: Option<String>,
        last_error: Option<String>,
        status: &'static str,
    }
    let h_of = |inbox: &str| {
        health.iter().find(|h| h.inbox_url == inbox).map(|h| H {
            inbox: h.inbox_url.clone(),
            pending: h.pending,
            delivered: h.delivered,
            dead: h.dead,
            failures: h.consecutive_failures,
            paused_until: h.circuit_open_until_ms.map(from_ms).map(when),
            last_success: h.last_success_ms.map(from_ms).map(when),
            last_failure: h.last_failure_ms.map(from_ms).map(when),
            last_error: h.last_error.clone(),
            status: if h.circuit_open_until_ms.is_some() || h.consecutive_failures > 0 {
                "en difficulté"
            } else if h.pending > 0 {
                "envois en cours"
            } else {
                "à jour"
            },
        })
    };
    let rows: Vec<P> = partners
        .iter()
        .map(|p| P {
            id: p.id.to_string(),
            following: matches!(
                p.outgoing,
                PartnershipState::Pending | PartnershipState::Accepted
            ),
            name: if p.name.is_empty() {
                p.actor_id.clone()
            } else {
                p.name.clone()
            },
            actor: p.actor_id.clone(),
            siren: p.siren.clone(),
            outgoing: state_label(p.outgoing),
            incoming: state_label(p.incoming),
            pending_request: p.incoming == PartnershipState::Pending,
            circles: circles
                .iter()
                .filter(|c| c.members.contains(&p.actor_id))
                .map(|c| c.name.clone())
                .collect(),
            health: h_of(p.delivery_inbox()),
            since: when(p.created_at),
        })
        .collect();
    let pending: Vec<&P> = rows.iter().filter(|p| p.pending_request).collect();
    let circles_view: Vec<_> = circles
        .iter()
        .map(|c| {
            context! {
                id => c.id.to_string(),
                name => c.name,
                url => c.url,
                members => c.members.iter().map(|m| name_of(m)).collect::<Vec<_>>(),
            }
        })
        .collect();
    // Blocks and dead letters are for admins, as in the API.
    let is_admin = user.principal.role >= Role::Admin;
    let blocks: Vec<_> = if is_admin { state.store().blocks().await? } else { Vec::new() }
        .into_iter()
        .map(|b| context! {
            target => b.target,
            kind => if matches!(b.kind, crate::store::BlockKind::Origin) { "domaine" } else { "nœud" },
            reason => b.reason,
            since => when(b.created_at),
        })
        .collect();
    let policy = state
        .store()
        .setting(crate::store::POLICY_SETTING)
        .await?
        .unwrap_or_else(|| "approval".to_owned());
    let dead: Vec<_> = if is_admin {
        state.store().dead_letters(None, 50).await?
    } else {
        Vec::new()
    }
    .into_iter()
    .map(|d| {
        context! {
            partner => partners.iter().find(|p| p.delivery_inbox() == d.inbox_url).map_or_else(|| d.inbox_url.clone(), |p| name_of(&p.actor_id)),
            inbox => d.inbox_url,
            activity => d.activity_id,
            kind => d.activity_type,
            attempts => d.attempts,
            status => d.last_status,
            error => d.last_error.or(d.last_code),
            at => d.finished_ms.map(from_ms).map(when),
        }
    })
    .collect();
    let members: Vec<_> = rows
        .iter()
        .map(|p| context! { actor => p.actor, name => p.name })
        .collect();
    let base = page_ctx(&state, &user, "partenaires").await;
    render(
        "partners.html",
        context! { ..base, ..context! {
            notice => super::partners::partners_notice(ok_code(&raw).as_deref()),
            dead => dead,
            members => members,
            partners => rows,
            pending => pending,
            circles => circles_view,
            blocks => blocks,
            policy => policy_label(&policy),
        }},
    )
}

const POLICIES: &[(&str, &str)] = &[
    (
        "open",
        "Ouverte : toute demande de partenariat est acceptée",
    ),
    ("approval", "Sur approbation : un administrateur décide"),
    ("closed", "Fermée : aucune nouvelle demande"),
];

fn policy_label(p: &str) -> &'static str {
    POLICIES
        .iter()
        .find(|(v, _)| *v == p)
        .map_or("inconnue", |(_, l)| *l)
}

// ---- audit ----

/// # `GET /console/journal`
/// The audit log (admin), newest first, 50 per page.
pub async fn get_audit(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let before = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "avant")
        .and_then(|(_, v)| v.parse::<i64>().ok());
    let entries = state.store().audit_log(before, 50).await?;
    let next = (entries.len() == 50)
        .then(|| {
            entries
                .last()
                .map(|e| format!("/console/journal?avant={}", e.seq))
        })
        .flatten();
    let rows: Vec<_> = entries
        .into_iter()
        .map(|e| context! {
            seq => e.seq,
            at => when(e.at),
            actor => e.record.actor,
            action => e.record.action,
            target => e.record.target,
            details => if e.record.details.is_null() { String::new() } else { e.record.details.to_string() },
        })
        .collect();
    let base = page_ctx(&state, &user, "journal").await;
    render(
        "audit.html",
        context! { ..base, ..context! { entries => rows, next => next, first => before.is_some() }},
    )
}

// ---- node ----

/// A node settings form that was refused: the values sent and the problems, shown again
/// in the form's section.
enum Refused {
    Identity(NodeIdentityBody, Vec<(String, String)>),
    Membership(MembershipBody, Vec<(String, String)>),
}

async fn node_page(
    state: &AppState,
    user: &User,
    refused: Option<Refused>,
    notice_code: Option<&str>,
) -> Result<Response, ConsoleError> {
    let (values, membership_values, form, errors) = match refused {
        Some(Refused::Identity(v, e)) => (Some(v), None, "identite", e),
        Some(Refused::Membership(v, e)) => (None, Some(v), "appartenance", e),
        None => (None, None, "", Vec::new()),
    };
    let identity = match values {
        Some(v) => Some(v),
        None => match state.store().identity().await {
            Ok(i) => Some(NodeIdentityBody {
                name: i.name,
                siren: i.siren,
                kind: i.kind,
                username: i.username,
            }),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        },
    };
    let membership = read_membership(state.store()).await?;
    let membership_form = membership_values.unwrap_or(MembershipBody {
        epci_siren: membership.epci_siren.clone(),
        attached_to_siren: membership.attached_to_siren.clone(),
    });
    let actor = state.actor_id();
    let keys: Vec<_> = state
        .store()
        .keys()
        .await?
        .into_iter()
        .map(|k| {
            context! {
                id => format!("{actor}#{}", k.key_id),
                multibase => k.public_key_multibase,
                current => k.current,
                created => when(k.created_at),
                expired => k.expires_at.is_some_and(|e| e <= time::OffsetDateTime::now_utc()),
                revoked => k.revoked_at.map(when),
                expires => k.expires_at.map(when),
            }
        })
        .collect();
    let policy = state
        .store()
        .setting(crate::store::POLICY_SETTING)
        .await?
        .unwrap_or_else(|| "approval".to_owned());
    let base = page_ctx(state, user, "noeud").await;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    render_status(
        status,
        "node.html",
        context! { ..base, ..context! {
            actor => actor,
            base_url => state.base_url(),
            identity => identity.map(|i| context!{ name => i.name, siren => i.siren, kind => i.kind, username => i.username }),
            membership => context!{ epci_siren => membership.epci_siren, attached_to_siren => membership.attached_to_siren },
            membership_form => context!{ epci_siren => membership_form.epci_siren, attached_to_siren => membership_form.attached_to_siren },
            refused_form => form,
            keys => keys,
            policies => POLICIES.iter().map(|(v, l)| context!{ value => v, label => l, selected => *v == policy }).collect::<Vec<_>>(),
            policy_label => policy_label(&policy),
            dev_mode => state.allow_http_loopback_peers(),
            errors => errors.iter().map(|(f, m)| context!{ field => f, message => m }).collect::<Vec<_>>(),
            role_label => role_label(user.principal.role),
            notice => notice(notice_code),
        }},
    )
}

/// # `GET /console/noeud`
/// The node's identity, keys and partnership policy.
pub async fn get_node(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    node_page(&state, &user, None, ok_code(&raw).as_deref()).await
}

/// # `POST /console/noeud/identite` (admin)
pub async fn post_identity(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    let values = NodeIdentityBody {
        name: f.text("name"),
        siren: f.text("siren"),
        kind: f.text("kind"),
        username: f.text("username"),
    };
    match check_identity(&values) {
        Ok(identity) => {
            state
                .store()
                .set_identity(&identity, &user.principal.audit("node.identity", "node"))
                .await?;
            Ok(see_other("/console/noeud?ok=identite"))
        }
        Err(AppError::Validation { errors, .. }) => {
            let errors = errors.into_iter().map(|e| (e.field, e.message)).collect();
            node_page(&state, &user, Some(Refused::Identity(values, errors)), None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A SIREN typed in a form: spaces (`213 801 855`) removed; empty is `None`.
fn siren_input(f: &Form, name: &str) -> Option<String> {
    let v: String = f
        .get(name)
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (!v.is_empty()).then_some(v)
}

/// # `POST /console/noeud/appartenance` (admin)
/// Declares the EPCI the collectivité is a member of and the collectivité it is attached
/// to (empty: none), with the same check, writes and audit records as `PUT
/// /api/v1/node/membership`.
pub async fn post_membership(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    let values = MembershipBody {
        epci_siren: siren_input(&f, "epci_siren"),
        attached_to_siren: siren_input(&f, "attached_to_siren"),
    };
    match save_membership(state.store(), &user.principal, &values).await {
        Ok(_) => Ok(see_other("/console/noeud?ok=appartenance#appartenance")),
        Err(AppError::Validation { errors, .. }) => {
            let errors = errors.into_iter().map(|e| (e.field, e.message)).collect();
            node_page(
                &state,
                &user,
                Some(Refused::Membership(values, errors)),
                None,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// # `POST /console/noeud/politique` (admin)
pub async fn post_policy(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Admin)?;
    let f = form(&user, &body)?;
    let policy = f.text("policy");
    if !POLICIES.iter().any(|(v, _)| *v == policy) {
        return Err(ConsoleError::BadRequest(
            "Politique inconnue : choisissez ouverte, sur approbation ou fermée.".into(),
        ));
    }
    let mut audit = user.principal.audit("node.policy", "node");
    audit.details = json!({ "policy": policy });
    state
        .store()
        .set_setting(crate::store::POLICY_SETTING, &policy, &audit)
        .await?;
    Ok(see_other("/console/noeud?ok=politique"))
}
