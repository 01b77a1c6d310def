//! Agents' opt-in profiles on the agent's page: the profile as published (appetites,
//! volunteering, availability, area, scope), its consent log and receivers, the postings
//! that fit it (with reasons), and the forms to publish a profile, to edit it (a new
//! version sent to its receivers) and to withdraw it (deleted at every receiver).
//!
//! Handlers call the services the API calls (`mobility::profiles::create`, `update`,
//! `withdraw`), which validate (`protocol`), sign, record consent and address the
//! activities. The form only turns typed text into the wire format, refusing in French
//! what cannot be converted (a date, a number, a code); editing keeps what the form does
//! not show (other appetites, current métiers, métiers without a ROME code…).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{Value as Ctx, context};
use passerelle_protocol::ids::CogCommune;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::pages::form;
use super::{ConsoleError, Form, User, page_ctx, render_status, see_other, when};
use crate::domain::metiers;
use crate::feed;
use crate::mobility::MobilityError;
use crate::mobility::profiles as service;
use crate::state::AppState;
use crate::store::{Circle, ProfileRow, Role};

/// Scopes a profile may have, in French.
pub const SCOPES: &[(&str, &str)] = &[
    ("private", "Privé : l'agent seul"),
    ("origin_hr", "Notre service RH seulement"),
    (
        "partner_circle",
        "Les cercles de partenaires choisis par l'agent",
    ),
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
    feed::label(SCOPES, s).unwrap_or(s)
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
    let circles = store.circles().await?;
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
            circles => strings(doc.get("circles")).into_iter().map(|url| circles.iter().find(|c| c.url == url).map_or(url, |c| c.name.clone())).collect::<Vec<_>>(),
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

/// What the profile form offers (scopes, the node's circles, kinds, roles, horizons,
/// catégories, filières).
pub fn form_options(circles: &[Circle]) -> Ctx {
    let opts = |t: &[(&str, &str)]| {
        t.iter()
            .map(|(v, l)| context! { value => v, label => l })
            .collect::<Vec<_>>()
    };
    context! {
        scopes => opts(SCOPES),
        circles => circles.iter().map(|c| context! { value => c.url, label => c.name }).collect::<Vec<_>>(),
        kinds => opts(feed::KINDS),
        roles => opts(ROLES),
        horizons => opts(HORIZONS),
        categories => opts(feed::CATEGORIES),
        filieres => opts(feed::FILIERES),
    }
}

/// The profile form as typed (shown again after a refusal), or as read from a profile.
#[derive(Debug, Default, Serialize)]
struct ProfileForm {
    visibility: String,
    circles: Vec<String>,
    consent_text_version: String,
    categorie: String,
    filiere: String,
    cadre_emplois: String,
    grade: String,
    skills: String,
    kinds: Vec<String>,
    metiers: String,
    themes: String,
    horizon: String,
    volunteer_role: String,
    volunteer_days: String,
    available_from: String,
    available_until: String,
    quotite_max: String,
    notice_weeks: String,
    communes: String,
    travel: String,
    remote_ok: bool,
    languages: String,
    certifications: String,
    manager_informed: bool,
    /// The version the form was opened on (edit only).
    version: String,
}

/// The empty form, for the agent's page.
pub fn new_form() -> Ctx {
    Ctx::from_serialize(ProfileForm::default())
}

fn read_form(f: &Form) -> ProfileForm {
    ProfileForm {
        visibility: f.text("visibility"),
        circles: f.all("circles"),
        consent_text_version: f.text("consent_text_version"),
        categorie: f.text("categorie"),
        filiere: f.text("filiere"),
        cadre_emplois: f.text("cadre_emplois"),
        grade: f.text("grade"),
        skills: f.text("skills"),
        kinds: f.all("kinds"),
        metiers: f.text("metiers"),
        themes: f.text("themes"),
        horizon: f.text("horizon"),
        volunteer_role: f.text("volunteer_role"),
        volunteer_days: f.text("volunteer_days"),
        available_from: f.text("available_from"),
        available_until: f.text("available_until"),
        quotite_max: f.text("quotite_max"),
        notice_weeks: f.text("notice_weeks"),
        communes: f.text("communes"),
        travel: f.text("travel"),
        remote_ok: f.get("remote_ok").is_some(),
        languages: f.text("languages"),
        certifications: f.text("certifications"),
        manager_informed: f.get("manager_informed").is_some(),
        version: f.text("version"),
    }
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The form's values of a stored profile.
fn form_of(row: &ProfileRow) -> ProfileForm {
    let doc = row.document.clone().unwrap_or_default();
    let appetite = doc.pointer("/appetites/0").cloned().unwrap_or_default();
    let volunteering = doc.pointer("/volunteering/0").cloned().unwrap_or_default();
    let av = doc.get("availability").cloned().unwrap_or_default();
    let area = doc.get("area").cloned().unwrap_or_default();
    let joined = |v: Option<&Value>| strings(v).join(", ");
    let rome_codes: Vec<String> = appetite
        .get("metiersWanted")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.pointer("/rome/code").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    ProfileForm {
        visibility: text_of(doc.get("visibility")),
        circles: strings(doc.get("circles")),
        consent_text_version: String::new(),
        categorie: text_of(doc.get("categorie")),
        filiere: text_of(doc.get("filiere")),
        cadre_emplois: text_of(doc.get("cadreEmplois")),
        grade: text_of(doc.get("grade")),
        skills: joined(doc.get("skills")),
        kinds: strings(appetite.get("kinds")),
        metiers: rome_codes.join(", "),
        themes: joined(appetite.get("themes")),
        horizon: text_of(appetite.get("horizon")),
        volunteer_role: text_of(volunteering.get("role")),
        volunteer_days: text_of(volunteering.get("daysPerYear")),
        available_from: text_of(av.get("from")),
        available_until: text_of(av.get("until")),
        quotite_max: text_of(av.get("quotitePctMax")),
        notice_weeks: text_of(av.get("noticeWeeks")),
        communes: joined(area.get("communes")),
        travel: text_of(area.get("maxTravelMinutes")),
        remote_ok: area.get("remoteOk").and_then(Value::as_bool) == Some(true),
        languages: joined(doc.get("languages")),
        certifications: joined(doc.get("certifications")),
        manager_informed: doc.get("managerInformed").and_then(Value::as_bool) == Some(true),
        version: row.version.to_string(),
    }
}

fn list(s: &str) -> Vec<String> {
    s.split([',', '\n', ';'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Sets `key` to `value`, or removes it when there is none.
fn put(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    match value {
        Some(v) => {
            m.insert(key.to_owned(), v);
        }
        None => {
            m.remove(key);
        }
    }
}

fn non_empty(v: Vec<String>) -> Option<Value> {
    (!v.is_empty()).then(|| json!(v))
}

/// Converts typed text into the wire format; what cannot be converted is refused with a
/// French message tied to its field. The rules (dates in order, quotité within 1–100 %,
/// circles for a circle scope, consent, no personal data) are the domain's, checked by
/// the service afterwards.
struct Reader {
    errors: Vec<(String, String)>,
}

impl Reader {
    fn bad(&mut self, field: &str, message: String) {
        self.errors.push((field.to_owned(), message));
    }

    fn number(&mut self, field: &str, raw: &str) -> Option<Value> {
        if raw.is_empty() {
            return None;
        }
        match raw.parse::<u32>() {
            Ok(n) => Some(json!(n)),
            Err(_) => {
                self.bad(
                    field,
                    format!("« {raw} » n'est pas un nombre entier positif."),
                );
                None
            }
        }
    }

    fn day(&mut self, field: &str, raw: &str) -> Option<Value> {
        if raw.is_empty() {
            return None;
        }
        let ok = time::Date::parse(
            raw,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok();
        if !ok {
            self.bad(field, format!("« {raw} » n'est pas une date (AAAA-MM-JJ)."));
        }
        ok.then(|| json!(raw))
    }

    fn choice(
        &mut self,
        field: &str,
        raw: &str,
        table: &[(&'static str, &'static str)],
        message: &str,
    ) -> Option<Value> {
        if raw.is_empty() {
            return None;
        }
        if feed::label(table, raw).is_none() {
            self.bad(field, message.to_owned());
            return None;
        }
        Some(json!(raw))
    }
}

/// The profile content sent to the service: `base` (the stored profile, or nothing for a
/// new one) with the form's fields set or removed. Members the form does not show are
/// kept.
fn content_from_form(
    base: Option<&Value>,
    v: &ProfileForm,
    circles: &[Circle],
) -> Result<Value, Vec<(String, String)>> {
    let mut r = Reader { errors: Vec::new() };
    let mut doc = base.and_then(Value::as_object).cloned().unwrap_or_default();

    let visibility = if feed::label(SCOPES, &v.visibility).is_some() {
        Some(json!(v.visibility))
    } else {
        r.bad(
            "visibility",
            "Choisissez la portée que l'agent a choisie parmi celles proposées.".to_owned(),
        );
        None
    };
    put(&mut doc, "visibility", visibility);
    if v.visibility == "partner_circle" {
        for c in &v.circles {
            if !circles.iter().any(|x| &x.url == c) {
                r.bad(
                    "circles",
                    "Ce cercle n'existe pas (ou plus) : choisissez parmi les cercles proposés."
                        .to_owned(),
                );
            }
        }
        put(&mut doc, "circles", Some(json!(v.circles)));
    } else {
        doc.remove("circles");
    }
    let categorie = r.choice(
        "categorie",
        &v.categorie,
        feed::CATEGORIES,
        "Choisissez la catégorie A, B ou C.",
    );
    put(&mut doc, "categorie", categorie);
    let filiere = r.choice(
        "filiere",
        &v.filiere,
        feed::FILIERES,
        "Choisissez une des filières proposées.",
    );
    put(&mut doc, "filiere", filiere);
    for (key, value) in [("cadreEmplois", &v.cadre_emplois), ("grade", &v.grade)] {
        put(&mut doc, key, (!value.is_empty()).then(|| json!(value)));
    }
    for (key, value) in [
        ("skills", &v.skills),
        ("languages", &v.languages),
        ("certifications", &v.certifications),
    ] {
        put(&mut doc, key, non_empty(list(value)));
    }

    // The first appetite holds the form's wishes; the others are kept.
    let mut appetites: Vec<Value> = doc
        .get("appetites")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut first = appetites
        .first()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(k) = v
        .kinds
        .iter()
        .find(|k| feed::label(feed::KINDS, k).is_none())
    {
        r.bad(
            "kinds",
            format!("« {k} » n'est pas un type d'offre : choisissez parmi les types proposés."),
        );
    }
    put(&mut first, "kinds", non_empty(v.kinds.clone()));
    let before: Vec<Value> = first
        .get("metiersWanted")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    // Métiers without a ROME code are not in the form: kept.
    let mut wanted: Vec<Value> = before
        .iter()
        .filter(|m| m.pointer("/rome/code").is_none())
        .cloned()
        .collect();
    for code in list(&v.metiers) {
        let code = code.to_ascii_uppercase();
        if !metiers::is_rome_code(&code) {
            r.bad(
                "metiers",
                format!(
                    "« {code} » n'est pas un code ROME : une lettre de A à N et 4 chiffres, par exemple K1404."
                ),
            );
            continue;
        }
        let known = before
            .iter()
            .find(|m| m.pointer("/rome/code").and_then(Value::as_str) == Some(code.as_str()))
            .cloned();
        let reference = known.or_else(|| {
            metiers::by_rome(&code)
                .first()
                .and_then(|m| serde_json::to_value(m.metier_ref()).ok())
        });
        wanted.push(reference.unwrap_or_else(|| json!({"rome": {"code": code}})));
    }
    put(&mut first, "metiersWanted", non_empty_values(wanted));
    put(&mut first, "themes", non_empty(list(&v.themes)));
    let horizon = r.choice(
        "horizon",
        &v.horizon,
        HORIZONS,
        "Choisissez un des horizons proposés.",
    );
    put(&mut first, "horizon", horizon);
    match (first.is_empty(), appetites.is_empty()) {
        (true, true) => {}
        (true, false) => {
            appetites.remove(0);
        }
        (false, true) => appetites.push(Value::Object(first)),
        (false, false) => appetites[0] = Value::Object(first),
    }
    put(&mut doc, "appetites", non_empty_values(appetites));

    // The first volunteering is the form's; the others are kept.
    let mut volunteering: Vec<Value> = doc
        .get("volunteering")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let role = r.choice(
        "volunteer_role",
        &v.volunteer_role,
        ROLES,
        "Choisissez un des volontariats proposés.",
    );
    let days = r.number("volunteer_days", &v.volunteer_days);
    match role {
        Some(role) => {
            let mut one = volunteering
                .first()
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            one.insert("role".into(), role);
            put(&mut one, "daysPerYear", days);
            if volunteering.is_empty() {
                volunteering.push(Value::Object(one));
            } else {
                volunteering[0] = Value::Object(one);
            }
        }
        None if v.volunteer_role.is_empty() && !volunteering.is_empty() => {
            volunteering.remove(0);
        }
        None => {}
    }
    put(&mut doc, "volunteering", non_empty_values(volunteering));

    let mut av = doc
        .get("availability")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let from = r.day("available_from", &v.available_from);
    put(&mut av, "from", from);
    let until = r.day("available_until", &v.available_until);
    put(&mut av, "until", until);
    let quotite = r.number("quotite_max", &v.quotite_max);
    put(&mut av, "quotitePctMax", quotite);
    let notice = r.number("notice_weeks", &v.notice_weeks);
    put(&mut av, "noticeWeeks", notice);
    put(
        &mut doc,
        "availability",
        (!av.is_empty()).then_some(Value::Object(av)),
    );

    let mut area = doc
        .get("area")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut communes = Vec::new();
    for c in list(&v.communes) {
        if c.parse::<CogCommune>().is_ok() {
            communes.push(c);
        } else {
            r.bad(
                "communes",
                format!(
                    "« {c} » n'est pas un code commune de l'INSEE (5 caractères, par exemple 38185 ou 2A004)."
                ),
            );
        }
    }
    put(&mut area, "communes", non_empty(communes));
    let travel = r.number("travel", &v.travel);
    put(&mut area, "maxTravelMinutes", travel);
    put(&mut area, "remoteOk", v.remote_ok.then(|| json!(true)));
    put(
        &mut doc,
        "area",
        (!area.is_empty()).then_some(Value::Object(area)),
    );
    put(
        &mut doc,
        "managerInformed",
        v.manager_informed.then(|| json!(true)),
    );
    if r.errors.is_empty() {
        Ok(Value::Object(doc))
    } else {
        Err(r.errors)
    }
}

fn non_empty_values(v: Vec<Value>) -> Option<Value> {
    (!v.is_empty()).then(|| Value::Array(v))
}

/// The form field a problem of the service is about (a JSON pointer of the profile, or a
/// field of the request); `""` when the form has none.
fn form_field(path: &str) -> &'static str {
    match path {
        "visibility" | "/visibility" | "/to" => "visibility",
        "/circles" => "circles",
        "consent_text_version" => "consent_text_version",
        "/categorie" => "categorie",
        "/filiere" => "filiere",
        "/availability/from" => "available_from",
        "/availability/until" => "available_until",
        "/availability/quotitePctMax" => "quotite_max",
        "/availability/noticeWeeks" => "notice_weeks",
        _ => "",
    }
}

fn agent_id(id: &str) -> Result<Uuid, ConsoleError> {
    id.parse()
        .map_err(|_| ConsoleError::NotFound("Cet agent n'existe pas.".into()))
}

/// The agent's profile `profile`, or 404.
async fn agents_profile(
    state: &AppState,
    agent: Uuid,
    profile: &str,
) -> Result<ProfileRow, ConsoleError> {
    let profile: Uuid = profile
        .parse()
        .map_err(|_| ConsoleError::NotFound("Ce profil n'existe pas.".into()))?;
    let row = state.store().profile(profile).await?;
    if row.agent_id != Some(agent) {
        return Err(ConsoleError::NotFound(
            "Ce profil n'est pas celui de cet agent.".into(),
        ));
    }
    Ok(row)
}

fn withdrawn() -> ConsoleError {
    ConsoleError::BadRequest(
        "Ce profil a été retiré par l'agent : il ne peut plus être modifié. Publiez-en un nouveau si l'agent le souhaite.".into(),
    )
}

/// A refusal shown on the form: its status, summary and per-field problems.
struct Shown {
    status: StatusCode,
    message: String,
    errors: Vec<(String, String)>,
}

fn shown(e: MobilityError, what: &str) -> Result<Shown, ConsoleError> {
    match e {
        MobilityError::Invalid { detail, errors } => Ok(Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("Le profil n'a pas été {what} : {detail}."),
            errors: errors
                .into_iter()
                .map(|(path, m)| {
                    // The protocol names the missing circles in English.
                    let m = if path == "/circles" {
                        "Choisissez au moins un cercle de partenaires : la portée « cercles choisis par l'agent » en demande un.".to_owned()
                    } else {
                        m
                    };
                    (form_field(&path).to_owned(), m)
                })
                .collect(),
        }),
        MobilityError::Conflict(m) => Ok(Shown {
            status: StatusCode::CONFLICT,
            message: format!("Le profil n'a pas été {what} : {m}."),
            errors: Vec::new(),
        }),
        other => Err(crate::http::error::AppError::from(other).into()),
    }
}

/// The publish form (`row` absent) or the edit form of `row`, with a refusal if any.
async fn form_page(
    state: &AppState,
    user: &User,
    agent: Uuid,
    row: Option<&ProfileRow>,
    values: &ProfileForm,
    refusal: Option<Shown>,
) -> Result<Response, ConsoleError> {
    let a = state.store().agent(agent).await?;
    let circles = state.store().circles().await?;
    let (status, error, errors) = match refusal {
        Some(s) => (s.status, Some(s.message), s.errors),
        None => (StatusCode::OK, None, Vec::new()),
    };
    let (title, action, submit) = match row {
        Some(p) => (
            format!("Modifier le profil {}", p.handle),
            format!("/console/agents/{agent}/profil/{}/modifier", p.id),
            "Enregistrer et envoyer la nouvelle version",
        ),
        None => (
            "Publier un profil de mobilité".to_owned(),
            format!("/console/agents/{agent}/profil"),
            "Publier le profil",
        ),
    };
    let base = page_ctx(state, user, "agents").await;
    render_status(
        status,
        "profile_form.html",
        context! { ..base, ..context! {
            title => title,
            action => action,
            submit => submit,
            agent => context! { id => agent.to_string(), name => a.display_name },
            profile => row.map(|p| context! {
                handle => p.handle,
                version => p.version,
                scope => scope_label(&p.visibility).to_owned(),
            }),
            values => values,
            options => form_options(&circles),
            error => error,
            errors => errors.iter().map(|(f, m)| context! { field => f, message => m }).collect::<Vec<_>>(),
        }},
    )
}

fn consent_of(v: &ProfileForm) -> Option<String> {
    Some(v.consent_text_version.clone()).filter(|c| !c.is_empty())
}

/// # `POST /console/agents/{id}/profil` (rh)
/// Publishes a profile of the agent to the scope it chose, with its consent (the service
/// of `POST /api/v1/profiles`); a refusal is shown on the form (422).
pub async fn post_publish(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let id = agent_id(&id)?;
    state.store().agent(id).await?;
    let values = read_form(&f);
    let circles = state.store().circles().await?;
    let refusal = match content_from_form(None, &values, &circles) {
        Err(errors) => Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "Le profil n'a pas été publié : corrigez les champs signalés.".to_owned(),
            errors,
        },
        Ok(content) => {
            match service::create(
                state.federation(),
                &user.principal,
                id,
                content,
                consent_of(&values),
            )
            .await
            {
                Ok(_) => {
                    return Ok(see_other(&format!(
                        "/console/agents/{id}?ok=profil_publie#profils"
                    )));
                }
                Err(e) => shown(e, "publié")?,
            }
        }
    };
    form_page(&state, &user, id, None, &values, Some(refusal)).await
}

/// # `GET /console/agents/{id}/profil/{profile}/modifier` (rh)
/// The form of a live profile, filled with its current content.
pub async fn get_edit(
    State(state): State<AppState>,
    user: User,
    Path((id, profile)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let id = agent_id(&id)?;
    let row = agents_profile(&state, id, &profile).await?;
    if row.document.is_none() {
        return Err(withdrawn());
    }
    form_page(&state, &user, id, Some(&row), &form_of(&row), None).await
}

/// # `POST /console/agents/{id}/profil/{profile}/modifier` (rh)
/// A new version of the profile through the service of `PUT /api/v1/profiles/{id}`:
/// sent as an `Update` to the nodes of its scope, a `Delete` to those a narrower scope
/// leaves out; a new scope needs the agent's consent. Refused when the profile changed
/// since the form was opened (409) or the content breaks a rule (422); nothing changed.
pub async fn post_edit(
    State(state): State<AppState>,
    user: User,
    Path((id, profile)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let id = agent_id(&id)?;
    let row = agents_profile(&state, id, &profile).await?;
    if row.document.is_none() {
        return Err(withdrawn());
    }
    let mut values = read_form(&f);
    if values.version != row.version.to_string() {
        values.version = row.version.to_string();
        let refusal = Shown {
            status: StatusCode::CONFLICT,
            message: format!(
                "Le profil n'a pas été modifié : il a changé depuis l'ouverture du formulaire (il est maintenant en version {}). Rechargez la page pour partir de la version actuelle, ou enregistrez à nouveau pour la remplacer par ce formulaire.",
                row.version
            ),
            errors: Vec::new(),
        };
        return form_page(&state, &user, id, Some(&row), &values, Some(refusal)).await;
    }
    let circles = state.store().circles().await?;
    let refusal = match content_from_form(row.document.as_ref(), &values, &circles) {
        Err(errors) => Shown {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "Le profil n'a pas été modifié : corrigez les champs signalés.".to_owned(),
            errors,
        },
        Ok(content) => {
            match service::update(
                state.federation(),
                &user.principal,
                row.id,
                content,
                consent_of(&values),
            )
            .await
            {
                Ok(_) => {
                    return Ok(see_other(&format!(
                        "/console/agents/{id}?ok=profil_modifie#profils"
                    )));
                }
                Err(e) => shown(e, "modifié")?,
            }
        }
    };
    form_page(&state, &user, id, Some(&row), &values, Some(refusal)).await
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
    let row = agents_profile(&state, id, &profile).await?;
    match service::withdraw(state.federation(), &user.principal, row.id).await {
        Ok(_) => Ok(see_other(&format!(
            "/console/agents/{id}?ok=profil_retire#profils"
        ))),
        Err(MobilityError::Conflict(m)) => Err(ConsoleError::BadRequest(m)),
        Err(e) => Err(crate::http::error::AppError::from(e).into()),
    }
}
