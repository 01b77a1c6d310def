//! Console pages of the *mises à disposition*: the list of requests (received and sent),
//! a request's page (state, timeline, next legal steps and who may take them, deadlines,
//! terms, conventions), the forms that fire this node's transitions, sign the convention
//! and propose a new request from an agent.
//!
//! Handlers are thin: they read the form and call the same services as the JSON API
//! (`mobility::mad`), and show the same view (`http::api::mad::view`). The state machine,
//! the legal checks and the federation stay in the domain; a refusal is shown in French
//! on the request's page.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Value as Ctx, context};
use passerelle_protocol::mad::{self as rules, MadState, Party, Side, Transition};
use passerelle_protocol::vocab::AgentStatut;
use serde::Serialize;
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::pages::form;
use super::{ConsoleError, Form, User, day_fr, page_ctx, render_status, see_other, when};
use crate::domain::convention as conv;
use crate::domain::deadlines;
use crate::http::api::mad::{MadView, view};
use crate::mobility::MobilityError;
use crate::mobility::mad::{self as service, Fire, NewRequest, Parsed};
use crate::state::AppState;
use crate::store::{MadFilter, Role};

/// French notice of a `?ok=` code on the MAD pages (fixed texts).
fn mad_notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "creee" => "La demande de mise à disposition a été enregistrée.",
        "envoyee" => "La demande de mise à disposition a été envoyée à l'autre employeur.",
        "enregistree" => "L'étape a été enregistrée et transmise à l'autre employeur.",
        "transmise" => {
            "L'étape a été transmise à l'autre employeur ; elle sera enregistrée à sa confirmation."
        }
        "signee" => "Votre signature a été apposée sur la convention.",
        "accord_avenant" => "L'accord écrit de l'agent sur l'avenant a été enregistré.",
        "agent_lie" => "L'agent de notre collectivité est rattaché à la demande.",
        _ => return None,
    })
}

fn ok_code(raw: &Option<String>) -> Option<String> {
    url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "ok")
        .map(|(_, v)| v.into_owned())
}

fn request_id(id: &str) -> Result<Uuid, ConsoleError> {
    id.parse().map_err(|_| {
        ConsoleError::NotFound("Cette demande de mise à disposition n'existe pas.".into())
    })
}

fn side_label(side: &str) -> &'static str {
    if side == "origin" {
        "employeur d'origine"
    } else {
        "organisme d'accueil"
    }
}

fn statut_label(s: &str) -> &'static str {
    match s {
        "fonctionnaire_titulaire" => "fonctionnaire titulaire",
        "fonctionnaire_stagiaire" => "fonctionnaire stagiaire",
        "contractuel_cdi" => "contractuel en CDI",
        "contractuel_cdd" => "contractuel en CDD",
        "contractuel_projet" => "contrat de projet",
        "apprenti" => "apprenti",
        _ => "autre situation",
    }
}

const STATUTS: [&str; 7] = [
    "fonctionnaire_titulaire",
    "fonctionnaire_stagiaire",
    "contractuel_cdi",
    "contractuel_cdd",
    "contractuel_projet",
    "apprenti",
    "autre",
];

/// The agent as this node may show it: the local fiche at the origin, the identity the
/// agent agreed to disclose at the host, otherwise the reference only.
fn agent_name(v: &MadView) -> String {
    if let Some(n) = &v.agent.local_name {
        return n.clone();
    }
    if let Some(n) = v
        .agent
        .disclosed
        .as_ref()
        .and_then(|d| d.get("name"))
        .and_then(Value::as_str)
    {
        return n.to_owned();
    }
    format!("Agent (réf. {})", v.agent.reference)
}

fn rfc3339_fr(s: &str) -> String {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(when)
        .unwrap_or_else(|_| s.to_owned())
}

fn terms_text(t: &Value, key: &str) -> Option<String> {
    t.get(key).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The terms in French, as `(label, value)` rows.
fn terms_rows(t: &Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut push = |label: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            rows.push((label.to_owned(), v));
        }
    };
    push("Activités", terms_text(t, "activities"));
    push("Lieu", terms_text(t, "place"));
    push(
        "Quotité",
        terms_text(t, "quotitePct").map(|q| format!("{q} %")),
    );
    push(
        "Durée hebdomadaire",
        t.get("hebdoMinutes")
            .and_then(Value::as_u64)
            .map(|m| format!("{} h {:02}", m / 60, m % 60)),
    );
    push("Horaires", terms_text(t, "schedule"));
    push("Début", terms_text(t, "startDate").map(|d| day_fr(&d)));
    push("Fin", terms_text(t, "endDate").map(|d| day_fr(&d)));
    push(
        "Évaluation",
        terms_text(t, "evaluation").map(|e| {
            match e.as_str() {
                "host_report_to_origin" => {
                    "rapport de l'organisme d'accueil à l'employeur d'origine"
                }
                "origin_on_host_info" => {
                    "par l'employeur d'origine sur les informations de l'organisme d'accueil"
                }
                _ => "autre",
            }
            .to_owned()
        }),
    );
    push(
        "Congés accordés par",
        terms_text(t, "leaveAuthority").map(|l| side_label(&l).to_owned()),
    );
    if let Some(r) = t.get("reimbursement") {
        let mode = match r.get("mode").and_then(Value::as_str) {
            Some("waived") => "dérogation au remboursement",
            _ => "remboursement intégral par l'organisme d'accueil",
        };
        push("Remboursement", Some(mode.to_owned()));
        push(
            "Coût mensuel estimé",
            terms_text(r, "monthlyCostEstimate").map(|c| format!("{c} €")),
        );
        push(
            "Facturation",
            terms_text(r, "invoicingPeriod").map(|p| {
                match p.as_str() {
                    "monthly" => "mensuelle",
                    "quarterly" => "trimestrielle",
                    "yearly" => "annuelle",
                    _ => "autre",
                }
                .to_owned()
            }),
        );
        push("Motif de la dérogation", terms_text(r, "waiverReason"));
    }
    push(
        "Préavis de fin anticipée",
        terms_text(t, "noticeDays").map(|d| format!("{d} jours")),
    );
    push(
        "Conditions de renouvellement",
        terms_text(t, "renewalTerms"),
    );
    push(
        "Complément de rémunération",
        terms_text(t, "complementRemuneration"),
    );
    push("Frais", terms_text(t, "frais"));
    rows
}

/// Every transition that may leave the state, with the parties that may fire it and
/// whether this node is one of them (the next legal steps).
fn next_steps(state: MadState, our_side: &str) -> Vec<Ctx> {
    let side = if our_side == "origin" {
        Side::Origin
    } else {
        Side::Host
    };
    rules::transitions_from(state)
        .filter(|r| r.transition != Transition::Send || state == MadState::Draft)
        .map(|r| {
            let parties: Vec<&str> = r.parties.iter().map(|p| p.label_fr()).collect();
            context! {
                label => capitalise(r.transition.label_fr()),
                to => r.to.label_fr(),
                parties => parties.join(", "),
                ours => r.parties.iter().any(|p| p.side() == Some(side)),
                system => r.parties.iter().all(|p| *p == Party::System),
                legal => r.legal_basis,
            }
        })
        .collect()
}

/// Transitions whose form asks for the date and reference of the act.
fn wants_act(t: &str) -> bool {
    matches!(
        t,
        "inform_assembly" | "issue_arrete" | "request_early_end" | "agent_agrees"
    )
}

#[derive(Serialize)]
struct Row {
    id: String,
    agent: String,
    partner: String,
    side: &'static str,
    state: String,
    state_label: String,
    period: String,
    quotite: String,
    next_deadline: Option<String>,
    waiting: bool,
    open_actions: usize,
    updated: String,
}

/// # `GET /console/mad`
/// The requests this node is a party to: received, then sent.
pub async fn get_list(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let mut received = Vec::new();
    let mut sent = Vec::new();
    for row in state.store().mad_requests(&MadFilter::default()).await? {
        let Ok(parsed) = Parsed::new(row) else {
            continue;
        };
        let v = view(&state, parsed).await?;
        let terms = &v.terms;
        let r = Row {
            id: v.id.to_string(),
            agent: agent_name(&v),
            partner: v.partner_name.clone(),
            side: side_label(&v.our_side),
            state: v.state.clone(),
            state_label: v.state_label.clone(),
            period: format!(
                "du {} au {}",
                terms_text(terms, "startDate")
                    .map(|d| day_fr(&d))
                    .unwrap_or_default(),
                terms_text(terms, "endDate")
                    .map(|d| day_fr(&d))
                    .unwrap_or_default()
            ),
            quotite: terms_text(terms, "quotitePct")
                .map(|q| format!("{q} %"))
                .unwrap_or_default(),
            next_deadline: (!v.is_final)
                .then(|| {
                    v.deadlines
                        .iter()
                        .find(|d| d.days_left >= 0)
                        .map(|d| format!("{} : {}", d.label, day_fr(&d.date)))
                })
                .flatten(),
            waiting: v.pending.is_some(),
            open_actions: v.actions.len(),
            updated: rfc3339_fr(&v.updated_at),
        };
        if v.we_created {
            sent.push(r);
        } else {
            received.push(r);
        }
    }
    let base = page_ctx(&state, &user, "mad").await;
    render_status(
        StatusCode::OK,
        "mad_list.html",
        context! { ..base, ..context! {
            received => received,
            sent => sent,
            notice => mad_notice(ok_code(&raw).as_deref()),
        }},
    )
}

async fn detail_page(
    state: &AppState,
    user: &User,
    id: Uuid,
    status: StatusCode,
    error: Option<(String, Vec<(String, String)>)>,
    notice_code: Option<&str>,
) -> Result<Response, ConsoleError> {
    let parsed = service::load(state.federation(), id)
        .await
        .map_err(mobility_error)?;
    let doc_state = parsed.doc.state;
    let start = parsed.doc.terms.start_date;
    let end = parsed.doc.terms.end_date;
    let v = view(state, parsed).await?;
    let today = OffsetDateTime::now_utc().date();
    let history: Vec<_> = v
        .history
        .iter()
        .map(|h| {
            context! {
                label => capitalise(&h.transition_label),
                party => h.party_label,
                to => h.to_label,
                at => rfc3339_fr(&h.at),
                date => h.date.as_deref().map(day_fr),
                reference => h.reference,
            }
        })
        .collect();
    let actions: Vec<_> = v
        .actions
        .iter()
        .map(|a| {
            context! {
                transition => a.transition,
                label => capitalise(&a.label),
                party => a.party,
                party_label => a.party_label,
                to => a.to_label,
                needs_terms => a.needs_terms,
                sign => a.transition == "sign_convention",
                act => wants_act(&a.transition),
                fault => a.transition == "end_for_fault",
                danger => matches!(a.transition.as_str(), "reject" | "withdraw" | "agent_declines" | "end_for_fault"),
            }
        })
        .collect();
    let deadlines: Vec<_> = v
        .deadlines
        .iter()
        .map(|d| {
            context! {
                label => d.label.trim_end_matches('.'),
                date => day_fr(&d.date),
                days_left => d.days_left,
                due => d.due,
            }
        })
        .collect();
    let limit = deadlines::period_limit(start).map(crate::domain::date_fr);
    let has_term = v.deadlines.iter().any(|d| d.kind == "term");
    let conventions: Vec<_> = v
        .conventions
        .iter()
        .map(|c| {
            context! {
                amendment => c.amendment,
                title => if c.amendment == 0 { "Convention de mise à disposition".to_owned() } else { format!("Avenant n° {}", c.amendment) },
                signed_by_origin => c.signed_by_origin,
                signed_by_host => c.signed_by_host,
                agent_agreed => c.agent_agreed_at.as_deref().map(rfc3339_fr),
                signatures => c.signatures.iter().map(|s| context!{ signer => s.signer, role => s.role, when => s.when }).collect::<Vec<_>>(),
            }
        })
        .collect();
    let pending = v.pending.as_ref().map(|p| {
        p.get("transition")
            .and_then(Value::as_str)
            .and_then(Transition::from_wire)
            .map_or_else(|| "en attente".to_owned(), |t| t.label_fr().to_owned())
    });
    let refusal = v.refusal.as_ref().map(|r| {
        context! {
            by_us => r.get("by").and_then(Value::as_str) == Some("us"),
            detail => r.get("detail").and_then(Value::as_str).or_else(|| r.get("problem").and_then(|p| p.get("detail")).and_then(Value::as_str)).unwrap_or("refus sans motif"),
        }
    });
    let disclosed = v.agent.disclosed.as_ref().map(|d| {
        context! {
            name => d.get("name").and_then(Value::as_str),
            grade => d.get("grade").and_then(Value::as_str),
            echelon => d.get("echelon").and_then(Value::as_u64),
        }
    });
    let (error, errors) = match error {
        Some((m, e)) => (
            Some(m),
            e.into_iter()
                .map(|(f, m)| context! { field => f, message => m })
                .collect::<Vec<_>>(),
        ),
        None => (None, Vec::new()),
    };
    // At the origin, a request the host created names the agent by a reference only:
    // HR links it to the local agent record.
    let link_agents: Vec<_> = if v.our_side == "origin"
        && v.agent.local_id.is_none()
        && !v.is_final
        && user.principal.role >= Role::Rh
    {
        state
            .store()
            .agents()
            .await?
            .into_iter()
            .map(|a| context! { id => a.id.to_string(), name => a.display_name })
            .collect()
    } else {
        Vec::new()
    };
    let base = page_ctx(state, user, "mad").await;
    render_status(
        status,
        "mad.html",
        context! { ..base, ..context! {
            r => context! {
                id => v.id.to_string(),
                object_id => v.object_id,
                side => v.our_side,
                side_label => side_label(&v.our_side),
                other_side_label => side_label(if v.our_side == "origin" { "host" } else { "origin" }),
                partner => v.partner_name,
                partner_actor => v.partner,
                we_created => v.we_created,
                state => v.state,
                state_label => v.state_label,
                is_final => v.is_final,
                version => v.version,
                agent => agent_name(&v),
                agent_local_id => v.agent.local_id.map(|i| i.to_string()),
                agent_reference => v.agent.reference,
                agent_statut => statut_label(&v.agent.statut),
                disclosed => disclosed,
                posting_href => v.posting.as_deref().map(|p| format!("/console/offre?id={}", url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>())),
                posting => v.posting,
                terms => terms_rows(&v.terms),
                amendment_terms => v.amendment_terms.as_ref().map(terms_rows),
                created => rfc3339_fr(&v.created_at),
                updated => rfc3339_fr(&v.updated_at),
            },
            history => history,
            actions => actions,
            amendment_pending => doc_state == MadState::AmendmentPending,
            next_steps => next_steps(doc_state, &v.our_side),
            deadlines => deadlines,
            period_limit => limit,
            term => (!has_term).then(|| crate::domain::date_fr(end)),
            today => crate::domain::date_fr(today),
            conventions => conventions,
            pending => pending,
            refusal => refusal,
            error => error,
            errors => errors,
            terms_form => terms_form_values(&v.terms),
            link_agents => link_agents,
            notice => mad_notice(notice_code),
        }},
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// A failure of the MAD service, shown in French: a refusal or invalid input is shown on
/// the page (409, 422), the rest is mapped as everywhere else.
enum Shown {
    Page(StatusCode, String, Vec<(String, String)>),
    Error(ConsoleError),
}

fn shown(e: MobilityError) -> Shown {
    match e {
        MobilityError::Refused(err) => Shown::Page(StatusCode::CONFLICT, err.detail_fr(), vec![]),
        MobilityError::Invalid { detail, errors } => {
            Shown::Page(StatusCode::UNPROCESSABLE_ENTITY, detail, errors)
        }
        MobilityError::Conflict(m) => Shown::Page(StatusCode::CONFLICT, m, vec![]),
        other => Shown::Error(mobility_error(other)),
    }
}

fn mobility_error(e: MobilityError) -> ConsoleError {
    crate::http::error::AppError::from(e).into()
}

/// # `GET /console/mad/{id}`
pub async fn get_one(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    detail_page(
        &state,
        &user,
        request_id(&id)?,
        StatusCode::OK,
        None,
        ok_code(&raw).as_deref(),
    )
    .await
}

fn parse_day(field: &str, s: &str) -> Result<Option<Date>, Shown> {
    if s.is_empty() {
        return Ok(None);
    }
    Date::parse(s, &time::format_description::well_known::Iso8601::DATE)
        .map(Some)
        .map_err(|_| {
            let m = format!("« {s} » n'est pas une date (AAAA-MM-JJ).");
            Shown::Page(
                StatusCode::UNPROCESSABLE_ENTITY,
                m.clone(),
                vec![(field.to_owned(), m)],
            )
        })
}

async fn after(
    state: &AppState,
    user: &User,
    id: Uuid,
    result: Result<&'static str, Shown>,
) -> Result<Response, ConsoleError> {
    match result {
        Ok(code) => Ok(see_other(&format!("/console/mad/{id}?ok={code}"))),
        Err(Shown::Page(status, message, errors)) => {
            detail_page(state, user, id, status, Some((message, errors)), None).await
        }
        Err(Shown::Error(e)) => Err(e),
    }
}

/// # `POST /console/mad/{id}/etape` (rh)
/// Fires a transition of this node's side (`transition`, optional `party`, `date`,
/// `reference`, `fault_agreed`, and the terms fields for the transitions that carry
/// terms).
pub async fn post_step(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let id = request_id(&id)?;
    let result = fire_step(&state, &user, id, &f).await;
    after(&state, &user, id, result).await
}

async fn fire_step(
    state: &AppState,
    user: &User,
    id: Uuid,
    f: &Form,
) -> Result<&'static str, Shown> {
    let name = f.text("transition");
    let transition = Transition::from_wire(&name).ok_or_else(|| {
        Shown::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("« {name} » n'est pas une étape de mise à disposition."),
            vec![],
        )
    })?;
    let party = match f.text("party").as_str() {
        "" => None,
        p => Some(Party::from_wire(p).ok_or_else(|| {
            Shown::Page(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("« {p} » n'est pas une partie."),
                vec![],
            )
        })?),
    };
    let terms = crate::domain::mad::carries_terms(transition).then(|| terms_from_form(f));
    let reference = Some(f.text("reference")).filter(|r| !r.is_empty());
    let fire = Fire {
        transition: Some(transition),
        party,
        terms,
        date: parse_day("date", &f.text("date"))?,
        reference,
        fault_agreed: f.get("fault_agreed").is_some(),
    };
    match service::fire(state.federation(), &user.principal, id, fire).await {
        Ok(service::Fired::Recorded(_)) => Ok("enregistree"),
        Ok(service::Fired::Sent(_)) => Ok("transmise"),
        Err(e) => Err(shown(e)),
    }
}

/// # `POST /console/mad/{id}/signer` (rh)
/// Signs the current convention or avenant for this employer.
pub async fn post_sign(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    form(&user, &body)?;
    let id = request_id(&id)?;
    let result = service::sign(state.federation(), &user.principal, id)
        .await
        .map(|_| "signee")
        .map_err(shown);
    after(&state, &user, id, result).await
}

/// # `POST /console/mad/{id}/agent` (rh, origin)
/// Links the local agent (`agent_id`) to a request the host created.
pub async fn post_link_agent(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let id = request_id(&id)?;
    let result = match Uuid::parse_str(&f.text("agent_id")) {
        Ok(agent) => service::link_agent(state.federation(), &user.principal, id, agent)
            .await
            .map(|_| "agent_lie")
            .map_err(shown),
        Err(_) => Err(Shown::Page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choisissez l'agent concerné dans la liste.".to_owned(),
            vec![(
                "agent_id".to_owned(),
                "Choisissez l'agent concerné dans la liste.".to_owned(),
            )],
        )),
    };
    after(&state, &user, id, result).await
}

/// # `POST /console/mad/{id}/accord-avenant` (rh, origin)
/// Records the agent's written agreement on the avenant being agreed.
pub async fn post_amendment_agreement(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    form(&user, &body)?;
    let id = request_id(&id)?;
    let result = service::record_amendment_agreement(state.federation(), &user.principal, id)
        .await
        .map(|_| "accord_avenant")
        .map_err(shown);
    after(&state, &user, id, result).await
}

/// # `GET /console/mad/{id}/convention/{amendment}`
/// The printable convention (0) or avenant (n), the same page as the API's.
pub async fn get_convention(
    State(state): State<AppState>,
    user: User,
    Path((id, amendment)): Path<(String, i64)>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let id = request_id(&id)?;
    let row = state
        .store()
        .mad_conventions(id)
        .await?
        .into_iter()
        .find(|c| c.amendment == amendment)
        .ok_or_else(|| ConsoleError::NotFound("Cette convention n'existe pas (encore).".into()))?;
    let convention =
        conv::from_json(row.document).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let html = conv::render_html(&convention).map_err(|e| ConsoleError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response())
}

// ---- the terms form (a new request, a counter-proposal, a renewal, an avenant) ----

#[derive(Serialize, Default)]
struct TermsForm {
    activities: String,
    place: String,
    quotite_pct: String,
    schedule: String,
    start_date: String,
    end_date: String,
    evaluation: String,
    leave_authority: String,
    reimbursement: String,
    monthly_cost: String,
    invoicing: String,
    waiver_reason: String,
    notice_days: String,
    renewal_terms: String,
}

fn terms_form_values(t: &Value) -> TermsForm {
    let s = |k: &str| terms_text(t, k).unwrap_or_default();
    let r = t.get("reimbursement").cloned().unwrap_or_default();
    let rs = |k: &str| terms_text(&r, k).unwrap_or_default();
    TermsForm {
        activities: s("activities"),
        place: s("place"),
        quotite_pct: s("quotitePct"),
        schedule: s("schedule"),
        start_date: s("startDate"),
        end_date: s("endDate"),
        evaluation: s("evaluation"),
        leave_authority: s("leaveAuthority"),
        reimbursement: rs("mode"),
        monthly_cost: rs("monthlyCostEstimate"),
        invoicing: rs("invoicingPeriod"),
        waiver_reason: rs("waiverReason"),
        notice_days: s("noticeDays"),
        renewal_terms: s("renewalTerms"),
    }
}

fn read_terms_form(f: &Form) -> TermsForm {
    TermsForm {
        activities: f.text("activities"),
        place: f.text("place"),
        quotite_pct: f.text("quotite_pct"),
        schedule: f.text("schedule"),
        start_date: f.text("start_date"),
        end_date: f.text("end_date"),
        evaluation: f.text("evaluation"),
        leave_authority: f.text("leave_authority"),
        reimbursement: f.text("reimbursement"),
        monthly_cost: f.text("monthly_cost"),
        invoicing: f.text("invoicing"),
        waiver_reason: f.text("waiver_reason"),
        notice_days: f.text("notice_days"),
        renewal_terms: f.text("renewal_terms"),
    }
}

/// The terms in the protocol's wire format; what does not parse is left for the domain
/// to refuse in French (numbers that are not numbers are sent as text).
fn terms_from_form(f: &Form) -> Value {
    let v = read_terms_form(f);
    let mut t = serde_json::Map::new();
    let num = |s: &str| {
        s.parse::<u64>()
            .map_or_else(|_| Value::String(s.to_owned()), Value::from)
    };
    t.insert("activities".into(), json!(v.activities));
    for (k, val) in [
        ("place", &v.place),
        ("schedule", &v.schedule),
        ("evaluation", &v.evaluation),
        ("leaveAuthority", &v.leave_authority),
        ("renewalTerms", &v.renewal_terms),
    ] {
        if !val.is_empty() {
            t.insert(k.into(), json!(val));
        }
    }
    t.insert("quotitePct".into(), num(&v.quotite_pct));
    t.insert("startDate".into(), json!(v.start_date));
    t.insert("endDate".into(), json!(v.end_date));
    if !v.notice_days.is_empty() {
        t.insert("noticeDays".into(), num(&v.notice_days));
    }
    let mut r = serde_json::Map::new();
    r.insert(
        "mode".into(),
        json!(if v.reimbursement.is_empty() {
            "full"
        } else {
            v.reimbursement.as_str()
        }),
    );
    if !v.monthly_cost.is_empty() {
        r.insert("monthlyCostEstimate".into(), num(&v.monthly_cost));
    }
    if !v.invoicing.is_empty() {
        r.insert("invoicingPeriod".into(), json!(v.invoicing));
    }
    if v.reimbursement == "waived" && !v.waiver_reason.is_empty() {
        r.insert("waiverReason".into(), json!(v.waiver_reason));
    }
    t.insert("reimbursement".into(), Value::Object(r));
    Value::Object(t)
}

// ---- a new request ----

#[derive(Serialize, Default)]
struct NewForm {
    partner: String,
    our_side: String,
    agent_id: String,
    agent_ref: String,
    agent_statut: String,
    posting: String,
    terms: TermsForm,
}

async fn new_page(
    state: &AppState,
    user: &User,
    values: &NewForm,
    status: StatusCode,
    error: Option<String>,
    errors: &[(String, String)],
) -> Result<Response, ConsoleError> {
    let partners: Vec<_> = state
        .store()
        .partners()
        .await?
        .into_iter()
        .filter(|p| p.is_partner_either_way())
        .map(|p| {
            context! {
                actor => p.actor_id,
                name => if p.name.is_empty() { p.actor_id.clone() } else { p.name.clone() },
            }
        })
        .collect();
    let agents: Vec<_> = state
        .store()
        .agents()
        .await?
        .into_iter()
        .map(|a| {
            context! {
                id => a.id.to_string(),
                name => a.display_name,
                statut => a.data.get("statut").and_then(Value::as_str).map(statut_label),
            }
        })
        .collect();
    let base = page_ctx(state, user, "mad").await;
    render_status(
        status,
        "mad_form.html",
        context! { ..base, ..context! {
            values => values,
            partners => partners,
            agents => agents,
            statuts => STATUTS.iter().map(|s| context!{ value => s, label => statut_label(s) }).collect::<Vec<_>>(),
            error => error,
            errors => errors.iter().map(|(f, m)| context!{ field => f, message => m }).collect::<Vec<_>>(),
        }},
    )
}

/// # `GET /console/mad/nouvelle` (rh)
/// The form of a new request; `?agent=ID` proposes that agent (origin), `?posting=URL`
/// answers a posting.
pub async fn get_new(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let q: Vec<(String, String)> =
        url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| {
        q.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let values = NewForm {
        agent_id: get("agent"),
        posting: get("posting"),
        partner: get("partenaire"),
        our_side: if get("agent").is_empty() && !get("posting").is_empty() {
            "host".to_owned()
        } else {
            "origin".to_owned()
        },
        terms: TermsForm {
            quotite_pct: "100".into(),
            reimbursement: "full".into(),
            invoicing: "quarterly".into(),
            evaluation: "host_report_to_origin".into(),
            notice_days: "30".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    new_page(&state, &user, &values, StatusCode::OK, None, &[]).await
}

/// # `POST /console/mad/nouvelle` (rh)
/// Creates the request and sends it (`envoyer`), or keeps a draft.
pub async fn post_new(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let values = NewForm {
        partner: f.text("partner"),
        our_side: f.text("our_side"),
        agent_id: f.text("agent_id"),
        agent_ref: f.text("agent_ref"),
        agent_statut: f.text("agent_statut"),
        posting: f.text("posting"),
        terms: read_terms_form(&f),
    };
    let mut errors = Vec::new();
    let side = match values.our_side.as_str() {
        "origin" => Some(Side::Origin),
        "host" => Some(Side::Host),
        _ => {
            errors.push((
                "our_side".to_owned(),
                "Choisissez le rôle de votre collectivité.".to_owned(),
            ));
            None
        }
    };
    let agent_id = match values.agent_id.as_str() {
        "" => None,
        s => match s.parse::<Uuid>() {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(("agent_id".to_owned(), "Cet agent n'existe pas.".to_owned()));
                None
            }
        },
    };
    let statut: Option<AgentStatut> = match values.agent_statut.as_str() {
        "" => None,
        s => serde_json::from_value(Value::String(s.to_owned())).ok(),
    };
    let (Some(side), true) = (side, errors.is_empty()) else {
        return new_page(
            &state,
            &user,
            &values,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("La demande n'a pas été enregistrée : corrigez les champs signalés.".into()),
            &errors,
        )
        .await;
    };
    let input = NewRequest {
        partner: values.partner.clone(),
        side,
        agent_id,
        agent_ref: Some(values.agent_ref.clone()).filter(|s| !s.is_empty()),
        agent_statut: statut,
        posting: Some(values.posting.clone()).filter(|s| !s.is_empty()),
        terms: terms_from_form(&f),
    };
    let fed = state.federation();
    let created = match service::create(fed, &user.principal, input).await {
        Ok(row) => row,
        Err(e) => {
            return match shown(e) {
                Shown::Page(status, message, errors) => {
                    new_page(&state, &user, &values, status, Some(message), &errors).await
                }
                Shown::Error(e) => Err(e),
            };
        }
    };
    if f.get("envoyer").is_none() {
        return Ok(see_other(&format!("/console/mad/{}?ok=creee", created.id)));
    }
    let fire = Fire {
        transition: Some(Transition::Send),
        ..Default::default()
    };
    let result = service::fire(fed, &user.principal, created.id, fire)
        .await
        .map(|_| "envoyee")
        .map_err(shown);
    after(&state, &user, created.id, result).await
}
