//! Agents' opt-in profiles on the agent's page: the profile as published (appetites,
//! volunteering, availability, area, scope), its consent log and receivers, the postings
//! that fit it (with reasons), and the forms to publish a profile and to withdraw it
//! (withdrawal deletes it at every receiver). Handlers call the services the API calls
//! (`mobility::profiles`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::{Value as Ctx, context};
use serde_json::{Value, json};
use uuid::Uuid;

use super::pages::form;
use super::{ConsoleError, Form, User, see_other, when};
use crate::feed;
use crate::mobility::MobilityError;
use crate::mobility::profiles as service;
use crate::state::AppState;
use crate::store::{ProfileRow, Role};

/// Scopes a profile may have, in French.
pub const SCOPES: &[(&str, &str)] = &[
    ("private", "Privé : l'agent seul"),
    ("origin_hr", "Notre service RH seulement"),
    (
        "federation",
        "Toutes les collectivités partenaires (jamais le public)",
    ),
];

const ROLES: &[(&str, &str)] = &[
    ("facilitateur", "Facilitateur"),
    ("formateur_interne", "Formateur interne"),
    ("tuteur_immersion", "Tuteur d'immersion"),
    ("mentor", "Mentor"),
    ("renfort_crise", "Renfort en cas de crise"),
];

const HORIZONS: &[(&str, &str)] = &[
    ("now", "dès maintenant"),
    ("6_months", "dans les 6 mois"),
    ("1_year", "dans l'année"),
    ("2_years", "dans les 2 ans"),
];

fn scope_label(s: &str) -> &str {
    match s {
        "partner_circle" => "Cercles de partenaires choisis",
        other => feed::label(SCOPES, other).unwrap_or(other),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    x.as_str().map(str::to_owned).or_else(|| {
                        // A métier reference: its label, else its code.
                        x.get("rome")
                            .or_else(|| x.get("cnfpt"))
                            .and_then(|r| r.get("label").or_else(|| r.get("code")))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The agent's profiles, for the agent's page (newest first).
pub async fn agent_profiles(state: &AppState, agent: Uuid) -> Result<Vec<Ctx>, ConsoleError> {
    let store = state.store();
    let mut rows: Vec<ProfileRow> = store
        .profiles()
        .await?
        .into_iter()
        .filter(|p| p.agent_id == Some(agent))
        .collect();
    rows.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    let mut out = Vec::new();
    for p in rows {
        let consents: Vec<_> = store
            .profile_consents(p.id)
            .await?
            .into_iter()
            .map(|c| {
                context! {
                    scope => scope_label(&c.scope).to_owned(),
                    text_version => c.text_version,
                    granted => when(c.granted_at),
                    withdrawn => c.withdrawn_at.map(when),
                    by => c.recorded_by,
                }
            })
            .collect();
        let mut receivers = Vec::new();
        for r in store.profile_recipients(p.id).await? {
            let name = store
                .partner_by_actor(&r.actor_id)
                .await?
                .map(|x| x.name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| r.actor_id.clone());
            receivers.push(context! {
                name => name,
                sent => when(r.sent_at),
                deleted => r.delete_sent_at.map(when),
                acknowledged => r.acknowledged_at.map(when),
            });
        }
        let doc = p.document.clone().unwrap_or_default();
        let appetites: Vec<_> = doc
            .get("appetites")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        context! {
                            kinds => strings(x.get("kinds")).iter().map(|k| feed::label(feed::KINDS, k).unwrap_or(k.as_str()).to_owned()).collect::<Vec<_>>(),
                            metiers => strings(x.get("metiersWanted")),
                            themes => strings(x.get("themes")),
                            horizon => x.get("horizon").and_then(Value::as_str).map(|h| feed::label(HORIZONS, h).unwrap_or(h).to_owned()),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let volunteering: Vec<_> = doc
            .get("volunteering")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        let role = x.get("role").and_then(Value::as_str).unwrap_or("");
                        context! {
                            role => feed::label(ROLES, role).unwrap_or(role).to_owned(),
                            skills => strings(x.get("skills")),
                            days => x.get("daysPerYear").and_then(Value::as_u64),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let av = doc.get("availability");
        let area = doc.get("area");
        let matches = if p.withdrawn_at.is_none() {
            match service::postings_for(state.federation(), &p.object_id).await {
                Ok(found) => found
                    .into_iter()
                    .take(10)
                    .map(|m| {
                        context! {
                            href => format!("/console/offre?id={}", url::form_urlencoded::byte_serialize(m.id.as_bytes()).collect::<String>()),
                            label => m.label,
                            kind => m.kind.as_deref().map(|k| feed::label(feed::KINDS, k).unwrap_or(k).to_owned()),
                            score => m.score,
                            reasons => m.reasons.into_iter().map(|r| r.text_fr).collect::<Vec<_>>(),
                        }
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "console: matches of a profile");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        out.push(context! {
            id => p.id.to_string(),
            handle => p.handle,
            scope => scope_label(&p.visibility).to_owned(),
            version => p.version,
            withdrawn => p.withdrawn_at.map(when),
            created => when(p.created_at),
            updated => when(p.updated_at),
            categorie => doc.get("categorie").and_then(Value::as_str),
            filiere => doc.get("filiere").and_then(Value::as_str),
            skills => strings(doc.get("skills")),
            appetites => appetites,
            volunteering => volunteering,
            available_from => av.and_then(|a| a.get("from")).and_then(Value::as_str).map(super::day_fr),
            available_until => av.and_then(|a| a.get("until")).and_then(Value::as_str).map(super::day_fr),
            quotite_max => av.and_then(|a| a.get("quotitePctMax")).and_then(Value::as_u64),
            communes => strings(area.and_then(|a| a.get("communes"))),
            travel => area.and_then(|a| a.get("maxTravelMinutes")).and_then(Value::as_u64),
            remote_ok => area.and_then(|a| a.get("remoteOk")).and_then(Value::as_bool),
            consents => consents,
            receivers => receivers,
            matches => matches,
        });
    }
    Ok(out)
}

/// What the publish form offers (scopes, kinds, roles, horizons).
pub fn form_options() -> Ctx {
    let opts = |t: &[(&str, &str)]| {
        t.iter()
            .map(|(v, l)| context! { value => v, label => l })
            .collect::<Vec<_>>()
    };
    context! {
        scopes => opts(SCOPES),
        kinds => opts(feed::KINDS),
        roles => opts(ROLES),
        horizons => opts(HORIZONS),
    }
}

fn list(s: &str) -> Vec<String> {
    s.split([',', '\n', ';'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn num(s: &str) -> Option<Value> {
    (!s.is_empty()).then(|| {
        s.parse::<u64>()
            .map_or_else(|_| Value::String(s.to_owned()), Value::from)
    })
}

/// The profile content in the protocol's wire format, from the form.
fn profile_from_form(f: &Form) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("visibility".into(), json!(f.text("visibility")));
    for (k, field) in [("categorie", "categorie"), ("filiere", "filiere")] {
        let v = f.text(field);
        if !v.is_empty() {
            doc.insert(k.into(), json!(v));
        }
    }
    let skills = list(&f.text("skills"));
    if !skills.is_empty() {
        doc.insert("skills".into(), json!(skills));
    }
    let mut appetite = serde_json::Map::new();
    let kinds = f.all("kinds");
    if !kinds.is_empty() {
        appetite.insert("kinds".into(), json!(kinds));
    }
    let metiers: Vec<Value> = list(&f.text("metiers"))
        .into_iter()
        .map(|code| json!({"rome": {"code": code}}))
        .collect();
    if !metiers.is_empty() {
        appetite.insert("metiersWanted".into(), json!(metiers));
    }
    let themes = list(&f.text("themes"));
    if !themes.is_empty() {
        appetite.insert("themes".into(), json!(themes));
    }
    let horizon = f.text("horizon");
    if !horizon.is_empty() {
        appetite.insert("horizon".into(), json!(horizon));
    }
    if !appetite.is_empty() {
        doc.insert("appetites".into(), json!([appetite]));
    }
    let role = f.text("volunteer_role");
    if !role.is_empty() {
        let mut v = serde_json::Map::new();
        v.insert("role".into(), json!(role));
        if let Some(d) = num(&f.text("volunteer_days")) {
            v.insert("daysPerYear".into(), d);
        }
        doc.insert("volunteering".into(), json!([v]));
    }
    let mut av = serde_json::Map::new();
    for (k, field) in [("from", "available_from"), ("until", "available_until")] {
        let v = f.text(field);
        if !v.is_empty() {
            av.insert(k.into(), json!(v));
        }
    }
    if let Some(q) = num(&f.text("quotite_max")) {
        av.insert("quotitePctMax".into(), q);
    }
    if !av.is_empty() {
        doc.insert("availability".into(), Value::Object(av));
    }
    let mut area = serde_json::Map::new();
    let communes = list(&f.text("communes"));
    if !communes.is_empty() {
        area.insert("communes".into(), json!(communes));
    }
    if let Some(t) = num(&f.text("travel")) {
        area.insert("maxTravelMinutes".into(), t);
    }
    if f.get("remote_ok").is_some() {
        area.insert("remoteOk".into(), json!(true));
    }
    if !area.is_empty() {
        doc.insert("area".into(), Value::Object(area));
    }
    if f.get("manager_informed").is_some() {
        doc.insert("managerInformed".into(), json!(true));
    }
    Value::Object(doc)
}

fn agent_id(id: &str) -> Result<Uuid, ConsoleError> {
    id.parse()
        .map_err(|_| ConsoleError::NotFound("Cet agent n'existe pas.".into()))
}

fn refused(e: MobilityError) -> ConsoleError {
    match e {
        MobilityError::Invalid { detail, errors } => {
            let mut m = format!("Le profil n'a pas été publié : {detail}.");
            for (_, e) in errors {
                m.push_str(&format!(" {e}."));
            }
            ConsoleError::BadRequest(m)
        }
        MobilityError::Conflict(m) => ConsoleError::BadRequest(m),
        other => crate::http::error::AppError::from(other).into(),
    }
}

/// # `POST /console/agents/{id}/profil` (rh)
/// Publishes a profile of the agent to the scope it chose, with its consent.
pub async fn post_publish(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let id = agent_id(&id)?;
    let consent = Some(f.text("consent_text_version")).filter(|c| !c.is_empty());
    service::create(
        state.federation(),
        &user.principal,
        id,
        profile_from_form(&f),
        consent,
    )
    .await
    .map_err(refused)?;
    Ok(see_other(&format!(
        "/console/agents/{id}?ok=profil_publie#profils"
    )))
}

/// # `POST /console/agents/{id}/profil/{profile}/retirer` (rh)
/// Withdraws a profile: deleted here and at every node that received it.
pub async fn post_withdraw(
    State(state): State<AppState>,
    user: User,
    Path((id, profile)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    form(&user, &body)?;
    let id = agent_id(&id)?;
    let profile: Uuid = profile
        .parse()
        .map_err(|_| ConsoleError::NotFound("Ce profil n'existe pas.".into()))?;
    let row = state.store().profile(profile).await?;
    if row.agent_id != Some(id) {
        return Err(ConsoleError::NotFound(
            "Ce profil n'est pas celui de cet agent.".into(),
        ));
    }
    service::withdraw(state.federation(), &user.principal, profile)
        .await
        .map_err(refused)?;
    Ok(see_other(&format!(
        "/console/agents/{id}?ok=profil_retire#profils"
    )))
}
