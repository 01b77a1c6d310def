//! Console pages of the node's own postings: the list, and one form per kind to publish
//! and edit them, with the protocol's validation messages in French.
//!
//! The form is described by [`FIELDS`]: one entry per field, named by its JSON pointer in
//! the posting document. Submitting replaces exactly those properties and keeps the others
//! (a second métier or location added through the API is not lost by an edit in the
//! console). Values are checked here first (dates, numbers, COG codes, SIRET), then the
//! posting service has `protocol` validate the whole posting.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use passerelle_protocol::vocab::Rule;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::pages::form;
use super::{ConsoleError, User, day_fr, notice, page_ctx, render, render_status, see_other, when};
use crate::feed;
use crate::postings::{self, PostingError};
use crate::state::AppState;
use crate::store::{PostingStatus, Role};

/// How a field is entered.
#[derive(Debug, Clone, Copy)]
enum Input {
    Text,
    Textarea,
    Email,
    Url,
    Date,
    Number,
    /// One value among options (empty allowed).
    Select(&'static [(&'static str, &'static str)]),
    /// Yes / no / not said.
    YesNo,
    /// Several values among options.
    Checks(&'static [(&'static str, &'static str)]),
    /// One value per line.
    Lines,
    /// One date per line.
    DateLines,
    /// One slot per line: `AAAA-MM-JJ journée` or `AAAA-MM-JJ demi-journée`.
    Slots,
    /// A commune COG code.
    Commune,
    /// A SIRET.
    Siret,
    /// The node's circles (for `partner_circle`).
    Circles,
    /// Partner nodes (for `direct`).
    Partners,
}

#[derive(Debug, Clone, Copy)]
struct Field {
    path: &'static str,
    label: &'static str,
    hint: &'static str,
    input: Input,
    /// Kinds that have the field (empty: every kind).
    kinds: &'static [&'static str],
    group: &'static str,
}

const VISIBILITIES: &[(&str, &str)] = &[
    ("federation", "Tous les partenaires"),
    ("partner_circle", "Un ou plusieurs cercles de partenaires"),
    ("public", "Public (aussi sur la page publique du nœud)"),
    ("internal", "Interne (agents de la collectivité seulement)"),
    ("direct", "Nœuds désignés (proposition de carrière)"),
];
const VERSANTS: &[(&str, &str)] = &[
    ("fpt", "Fonction publique territoriale"),
    ("fpe", "Fonction publique de l'État"),
    ("fph", "Fonction publique hospitalière"),
];
const CONTRACTUELS: &[(&str, &str)] = &[
    ("none", "Non : réservé aux fonctionnaires"),
    ("l332_8_1", "L332-8 1° : pas de cadre d'emplois"),
    (
        "l332_8_2",
        "L332-8 2° : besoins du service ou nature des fonctions",
    ),
    ("l332_8_3", "L332-8 3° : petite commune ou groupement"),
    ("l332_8_4", "L332-8 4° : commune nouvelle"),
    ("l332_8_5", "L332-8 5° : temps non complet < 50 %"),
    (
        "l332_8_6",
        "L332-8 6° : poste dépendant d'une autorité extérieure",
    ),
    ("other", "Autre fondement (voir références)"),
];
const VACANCY_KINDS: &[(&str, &str)] = &[("creation", "Création"), ("vacance", "Vacance")];
const VACANCY_REASONS: &[(&str, &str)] = &[
    ("mutation", "Mutation"),
    ("detachement", "Détachement"),
    ("disponibilite", "Disponibilité"),
    ("retraite", "Retraite"),
    ("demission", "Démission"),
    ("deces", "Décès"),
    ("fin_contrat", "Fin de contrat"),
    ("cessation_fonctions", "Cessation de fonctions"),
    ("integration", "Intégration"),
    ("reorganisation", "Réorganisation"),
    ("autre", "Autre"),
];
const ROUTES: &[(&str, &str)] = &[
    ("mutation", "Mutation"),
    ("detachement", "Détachement"),
    ("integration_directe", "Intégration directe"),
    ("liste_aptitude", "Liste d'aptitude"),
    ("contractuel", "Contrat"),
    ("mad", "Mise à disposition"),
];
const REIMBURSEMENT: &[(&str, &str)] = &[
    ("full", "Remboursement intégral (la règle)"),
    ("waiver_requested", "Dérogation demandée"),
];
const WAIVERS: &[(&str, &str)] = &[
    (
        "collectivite_epa_membre_ou_rattache",
        "Collectivité et EPA membre ou rattaché",
    ),
    ("csfpt", "CSFPT"),
    ("organisation_internationale", "Organisation internationale"),
    ("ue", "Institution de l'Union européenne"),
    ("etat_etranger", "État étranger"),
];
const DAY_PARTS: &[(&str, &str)] = &[("half_day", "Demi-journée"), ("day", "Journée")];
const RECIPROCITY: &[(&str, &str)] = &[("required", "Obligatoire"), ("optional", "Souhaitée")];
const TRAINERS: &[(&str, &str)] = &[
    ("interne", "Formateur interne"),
    ("cnfpt", "CNFPT"),
    ("prestataire", "Prestataire"),
];
const COSTS: &[(&str, &str)] = &[
    ("free", "Gratuit"),
    ("per_seat", "Prix par place"),
    ("pro_rata", "Au prorata des places"),
];
const CAREER_ROUTES: &[(&str, &str)] = &[
    ("mutation", "Mutation"),
    ("detachement", "Détachement"),
    ("mad", "Mise à disposition"),
    ("integration_directe", "Intégration directe"),
];

const VAC: &[&str] = &["vacancy"];
const MAD: &[&str] = &["mad_offer"];
const MISSION: &[&str] = &["project_mission"];
const FACIL: &[&str] = &["facilitation_request"];
const IMM: &[&str] = &["immersion_offer"];
const SWAP: &[&str] = &["immersion_swap"];
const TRAIN: &[&str] = &["training_session"];
const CAREER: &[&str] = &["career_offer"];

macro_rules! f {
    ($path:literal, $label:literal, $input:expr, $group:literal) => {
        f!($path, $label, "", $input, &[], $group)
    };
    ($path:literal, $label:literal, $hint:literal, $input:expr, $kinds:expr, $group:literal) => {
        Field {
            path: $path,
            label: $label,
            hint: $hint,
            input: $input,
            kinds: $kinds,
            group: $group,
        }
    };
}

const FIELDS: &[Field] = &[
    f!(
        "/name",
        "Intitulé du poste ou de l'offre",
        Input::Text,
        "Offre"
    ),
    f!(
        "/visibility",
        "Diffusion",
        "Qui reçoit l'offre.",
        Input::Select(VISIBILITIES),
        &[],
        "Offre"
    ),
    f!(
        "/circles",
        "Cercles de partenaires",
        "Pour une diffusion à des cercles.",
        Input::Circles,
        &[],
        "Offre"
    ),
    f!(
        "/to",
        "Nœuds destinataires",
        "Pour une proposition de carrière.",
        Input::Partners,
        &[],
        "Offre"
    ),
    f!("/summary", "Résumé", Input::Textarea, "Offre"),
    f!("/missions", "Missions", Input::Textarea, "Offre"),
    f!("/profile", "Profil recherché", Input::Textarea, "Offre"),
    f!(
        "/requirements",
        "Conditions particulières",
        "Une par ligne (habilitations, diplômes, permis).",
        Input::Lines,
        &[],
        "Offre"
    ),
    f!(
        "/statutory/versant",
        "Versant",
        Input::Select(VERSANTS),
        "Cadre statutaire"
    ),
    f!(
        "/statutory/categories",
        "Catégories",
        Input::Checks(feed::CATEGORIES),
        "Cadre statutaire"
    ),
    f!(
        "/statutory/filieres",
        "Filières",
        Input::Checks(feed::FILIERES),
        "Cadre statutaire"
    ),
    f!(
        "/statutory/cadresEmplois",
        "Cadres d'emplois",
        "Un par ligne, par exemple « Attachés territoriaux ».",
        Input::Lines,
        &[],
        "Cadre statutaire"
    ),
    f!(
        "/statutory/grades",
        "Grades",
        "Un par ligne.",
        Input::Lines,
        &[],
        "Cadre statutaire"
    ),
    f!(
        "/statutory/openToContractuels",
        "Ouverture aux contractuels",
        Input::Select(CONTRACTUELS),
        "Cadre statutaire"
    ),
    f!(
        "/metiers/0/rome/code",
        "Code ROME du métier",
        "Une lettre et 4 chiffres, par exemple K1401.",
        Input::Text,
        &[],
        "Métier"
    ),
    f!(
        "/metiers/0/cnfpt/label",
        "Métier (répertoire du CNFPT)",
        Input::Text,
        "Métier"
    ),
    f!(
        "/metiers/0/local/label",
        "Intitulé local du métier",
        Input::Text,
        "Métier"
    ),
    f!(
        "/employer/name",
        "Employeur",
        Input::Text,
        "Employeur et lieu"
    ),
    f!(
        "/employer/siret",
        "SIRET de l'établissement",
        "14 chiffres.",
        Input::Siret,
        &[],
        "Employeur et lieu"
    ),
    f!(
        "/employer/recruitingAuthority",
        "Autorité de recrutement",
        "Par exemple « Le Maire de Grenoble ».",
        Input::Text,
        &[],
        "Employeur et lieu"
    ),
    f!(
        "/employer/service",
        "Service ou direction",
        Input::Text,
        "Employeur et lieu"
    ),
    f!(
        "/locations/0/commune",
        "Commune du lieu de travail (code COG)",
        "5 caractères, par exemple 38185.",
        Input::Commune,
        &[],
        "Employeur et lieu"
    ),
    f!(
        "/locations/0/address",
        "Adresse du lieu de travail",
        Input::Text,
        "Employeur et lieu"
    ),
    f!(
        "/workingTime/kind",
        "Temps de travail",
        Input::Select(feed::WORKING_TIMES),
        "Conditions"
    ),
    f!(
        "/workingTime/hebdoMinutes",
        "Durée hebdomadaire (minutes)",
        "Pour un temps non complet, par exemple 1050 pour 17 h 30.",
        Input::Number,
        &[],
        "Conditions"
    ),
    f!(
        "/workingTime/quotitePct",
        "Quotité (%)",
        "Pour un temps partiel.",
        Input::Number,
        &[],
        "Conditions"
    ),
    f!(
        "/telework/allowed",
        "Télétravail possible",
        Input::YesNo,
        "Conditions"
    ),
    f!(
        "/telework/daysPerWeekMax",
        "Jours de télétravail par semaine (au plus)",
        Input::Number,
        "Conditions"
    ),
    f!(
        "/dates/publishFrom",
        "Visible à partir du",
        Input::Date,
        "Dates"
    ),
    f!(
        "/dates/applyUntil",
        "Date limite de candidature",
        Input::Date,
        "Dates"
    ),
    f!(
        "/dates/start",
        "Prise de poste ou début",
        Input::Date,
        "Dates"
    ),
    f!("/dates/end", "Fin", Input::Date, "Dates"),
    f!(
        "/contact/mailbox",
        "Adresse de contact (fonctionnelle)",
        "Jamais l'adresse personnelle d'un agent.",
        Input::Email,
        &[],
        "Contact"
    ),
    f!(
        "/contact/service",
        "Service à contacter",
        Input::Text,
        "Contact"
    ),
    f!("/contact/url", "Lien de candidature", Input::Url, "Contact"),
    f!(
        "/legalRefs",
        "Références juridiques",
        "Une par ligne.",
        Input::Lines,
        &[],
        "Contact"
    ),
    // vacancy
    f!(
        "/body/vacancyKind",
        "Création ou vacance",
        "",
        Input::Select(VACANCY_KINDS),
        VAC,
        "Poste vacant"
    ),
    f!(
        "/body/vacancyReason",
        "Motif de la vacance",
        "",
        Input::Select(VACANCY_REASONS),
        VAC,
        "Poste vacant"
    ),
    f!(
        "/body/vacancyDate",
        "Date de vacance",
        "",
        Input::Date,
        VAC,
        "Poste vacant"
    ),
    f!(
        "/body/routes",
        "Voies de recrutement",
        "",
        Input::Checks(ROUTES),
        VAC,
        "Poste vacant"
    ),
    f!(
        "/body/postsCount",
        "Nombre de postes",
        "",
        Input::Number,
        VAC,
        "Poste vacant"
    ),
    f!(
        "/body/remuneration/grade",
        "Grade (rémunération)",
        "",
        Input::Text,
        VAC,
        "Poste vacant"
    ),
    f!(
        "/body/remuneration/ifseMensuel",
        "IFSE mensuelle (€)",
        "",
        Input::Number,
        VAC,
        "Poste vacant"
    ),
    f!(
        "/body/remuneration/other",
        "Autres éléments de rémunération",
        "",
        Input::Text,
        VAC,
        "Poste vacant"
    ),
    // mad_offer
    f!(
        "/body/quotitePct",
        "Quotité de la mise à disposition (%)",
        "",
        Input::Number,
        MAD,
        "Mise à disposition"
    ),
    f!(
        "/body/durationMonths",
        "Durée (mois)",
        "36 mois au plus par période.",
        Input::Number,
        MAD,
        "Mise à disposition"
    ),
    f!(
        "/body/renewable",
        "Renouvelable",
        "",
        Input::YesNo,
        MAD,
        "Mise à disposition"
    ),
    f!(
        "/body/schedule",
        "Organisation du temps",
        "",
        Input::Text,
        MAD,
        "Mise à disposition"
    ),
    f!(
        "/body/reimbursementExpected",
        "Remboursement",
        "",
        Input::Select(REIMBURSEMENT),
        MAD,
        "Mise à disposition"
    ),
    f!(
        "/body/waiverReason",
        "Motif de la dérogation",
        "",
        Input::Select(WAIVERS),
        MAD,
        "Mise à disposition"
    ),
    f!(
        "/body/complementRemuneration",
        "Complément de rémunération",
        "",
        Input::Text,
        MAD,
        "Mise à disposition"
    ),
    // project_mission
    f!(
        "/body/projectName",
        "Projet",
        "",
        Input::Text,
        MISSION,
        "Mission"
    ),
    f!(
        "/body/sponsorDirection",
        "Direction porteuse",
        "",
        Input::Text,
        MISSION,
        "Mission"
    ),
    f!(
        "/body/quotitePctMin",
        "Quotité minimale (%)",
        "De 10 à 40 %.",
        Input::Number,
        MISSION,
        "Mission"
    ),
    f!(
        "/body/quotitePctMax",
        "Quotité maximale (%)",
        "De 10 à 40 %.",
        Input::Number,
        MISSION,
        "Mission"
    ),
    f!(
        "/body/durationMonths",
        "Durée (mois)",
        "24 mois au plus.",
        Input::Number,
        MISSION,
        "Mission"
    ),
    f!(
        "/body/crossEmployer",
        "Ouverte aux agents d'autres employeurs",
        "",
        Input::YesNo,
        MISSION,
        "Mission"
    ),
    f!(
        "/body/skillsWanted",
        "Compétences recherchées",
        "Une par ligne.",
        Input::Lines,
        MISSION,
        "Mission"
    ),
    f!(
        "/body/managerAgreementRequired",
        "Accord du responsable requis",
        "",
        Input::YesNo,
        MISSION,
        "Mission"
    ),
    // facilitation_request
    f!("/body/topic", "Sujet", "", Input::Text, FACIL, "Animation"),
    f!(
        "/body/format",
        "Format",
        "",
        Input::Text,
        FACIL,
        "Animation"
    ),
    f!(
        "/body/duration",
        "Durée",
        "",
        Input::Select(DAY_PARTS),
        FACIL,
        "Animation"
    ),
    f!(
        "/body/remote",
        "À distance",
        "",
        Input::YesNo,
        FACIL,
        "Animation"
    ),
    f!(
        "/body/facilitatorSkills",
        "Compétences de l'animateur",
        "Une par ligne.",
        Input::Lines,
        FACIL,
        "Animation"
    ),
    f!(
        "/body/groupSize",
        "Taille du groupe",
        "",
        Input::Number,
        FACIL,
        "Animation"
    ),
    // immersion_offer
    f!(
        "/body/slots",
        "Créneaux",
        "Un par ligne : AAAA-MM-JJ journée, ou AAAA-MM-JJ demi-journée.",
        Input::Slots,
        IMM,
        "Immersion"
    ),
    f!(
        "/body/hostService",
        "Service d'accueil",
        "",
        Input::Text,
        IMM,
        "Immersion"
    ),
    f!(
        "/body/tutorRole",
        "Fonction du tuteur",
        "Jamais un nom.",
        Input::Text,
        IMM,
        "Immersion"
    ),
    f!(
        "/body/maxParticipants",
        "Participants par créneau",
        "",
        Input::Number,
        IMM,
        "Immersion"
    ),
    f!(
        "/body/observationOnly",
        "Observation seulement",
        "",
        Input::YesNo,
        IMM,
        "Immersion"
    ),
    f!(
        "/body/safetyRequirements",
        "Consignes de sécurité",
        "",
        Input::Text,
        IMM,
        "Immersion"
    ),
    // immersion_swap
    f!(
        "/body/initiatorService",
        "Service proposé à l'échange",
        "",
        Input::Text,
        SWAP,
        "Immersion réciproque"
    ),
    f!(
        "/body/reciprocity",
        "Réciprocité",
        "",
        Input::Select(RECIPROCITY),
        SWAP,
        "Immersion réciproque"
    ),
    f!(
        "/body/proposedDates",
        "Dates proposées",
        "Une par ligne (AAAA-MM-JJ).",
        Input::DateLines,
        SWAP,
        "Immersion réciproque"
    ),
    // training_session
    f!(
        "/body/programme",
        "Programme",
        "",
        Input::Textarea,
        TRAIN,
        "Formation"
    ),
    f!(
        "/body/trainerKind",
        "Formateur",
        "",
        Input::Select(TRAINERS),
        TRAIN,
        "Formation"
    ),
    f!(
        "/body/sessionDates",
        "Dates des sessions",
        "Une par ligne (AAAA-MM-JJ).",
        Input::DateLines,
        TRAIN,
        "Formation"
    ),
    f!(
        "/body/remote",
        "À distance",
        "",
        Input::YesNo,
        TRAIN,
        "Formation"
    ),
    f!(
        "/body/seatsTotal",
        "Places au total",
        "",
        Input::Number,
        TRAIN,
        "Formation"
    ),
    f!(
        "/body/seatsForPartners",
        "Places ouvertes aux partenaires",
        "",
        Input::Number,
        TRAIN,
        "Formation"
    ),
    f!(
        "/body/costSharing",
        "Partage des coûts",
        "",
        Input::Select(COSTS),
        TRAIN,
        "Formation"
    ),
    f!(
        "/body/attestation",
        "Attestation délivrée",
        "",
        Input::YesNo,
        TRAIN,
        "Formation"
    ),
    // career_offer
    f!(
        "/body/targetAgentRef",
        "Référence pseudonyme de l'agent",
        "Transmise par son employeur d'origine.",
        Input::Text,
        CAREER,
        "Proposition de carrière"
    ),
    f!(
        "/body/proposedPost",
        "Poste proposé (adresse de l'offre)",
        "",
        Input::Url,
        CAREER,
        "Proposition de carrière"
    ),
    f!(
        "/body/route",
        "Voie",
        "",
        Input::Select(CAREER_ROUTES),
        CAREER,
        "Proposition de carrière"
    ),
];

/// French label of a body property, for detail pages.
pub fn body_label(key: &str) -> Option<&'static str> {
    let path = format!("/body/{key}");
    FIELDS.iter().find(|f| f.path == path).map(|f| f.label)
}

fn applies(f: &Field, kind: &str) -> bool {
    f.kinds.is_empty() || f.kinds.contains(&kind)
}

fn html_id(path: &str) -> String {
    format!("champ{}", path.replace('/', "-"))
}

/// The value at `path` as form text.
fn form_value(doc: &Value, f: &Field) -> (String, Vec<String>) {
    let Some(v) = doc.pointer(f.path) else {
        return (String::new(), Vec::new());
    };
    match (f.input, v) {
        (Input::Checks(_) | Input::Circles | Input::Partners, Value::Array(a)) => (
            String::new(),
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        (Input::Slots, Value::Array(a)) => (
            a.iter()
                .map(|s| {
                    let d = s.get("date").and_then(Value::as_str).unwrap_or_default();
                    let p = match s.get("duration").and_then(Value::as_str) {
                        Some("half_day") => "demi-journée",
                        _ => "journée",
                    };
                    format!("{d} {p}")
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Vec::new(),
        ),
        (_, Value::Array(a)) => (
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
            Vec::new(),
        ),
        (_, Value::String(s)) => (s.clone(), Vec::new()),
        (_, Value::Number(n)) => (n.to_string(), Vec::new()),
        (_, Value::Bool(b)) => ((if *b { "true" } else { "false" }).to_owned(), Vec::new()),
        _ => (String::new(), Vec::new()),
    }
}

/// Sets (or with `None` removes) the value at a JSON pointer, creating objects and the
/// first element of arrays on the way; removing leaves no empty objects behind.
fn set_pointer(doc: &mut Value, path: &str, value: Option<Value>) {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    set_in(doc, &segments, value);
}

fn set_in(node: &mut Value, segments: &[&str], value: Option<Value>) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let next_is_index = rest.first().is_some_and(|s| s.parse::<usize>().is_ok());
    match node {
        Value::Object(map) => {
            if rest.is_empty() {
                match value {
                    Some(v) => {
                        map.insert((*first).to_owned(), v);
                    }
                    None => {
                        map.remove(*first);
                    }
                }
                return;
            }
            if value.is_none() && !map.contains_key(*first) {
                return;
            }
            let child = map
                .entry((*first).to_owned())
                .or_insert_with(|| if next_is_index { json!([]) } else { json!({}) });
            set_in(child, rest, value);
            let empty = match child {
                Value::Object(m) => m.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => false,
            };
            if empty {
                map.remove(*first);
            }
        }
        Value::Array(items) => {
            let Ok(i) = first.parse::<usize>() else {
                return;
            };
            if i >= items.len() {
                if value.is_none() || i > items.len() {
                    return;
                }
                items.push(json!({}));
            }
            if rest.is_empty() {
                match value {
                    Some(v) => items[i] = v,
                    None => {
                        items.remove(i);
                    }
                }
                return;
            }
            set_in(&mut items[i], rest, value);
            if items[i].as_object().is_some_and(Map::is_empty) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn is_day(s: &str) -> bool {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

/// Reads the form into `doc` (only the fields of `kind`); returns per-field problems.
fn apply_form(doc: &mut Value, kind: &str, f: &super::Form) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for field in FIELDS.iter().filter(|x| applies(x, kind)) {
        let raw = f.text(field.path);
        let mut bad = |m: String| errors.push((field.path.to_owned(), m));
        let value: Option<Value> = match field.input {
            Input::Text | Input::Textarea | Input::Email | Input::Url => {
                if matches!(field.input, Input::Email)
                    && !raw.is_empty()
                    && !raw
                        .split_once('@')
                        .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                {
                    bad(format!(
                        "« {raw} » n'est pas une adresse électronique (nom@domaine.fr)."
                    ));
                    continue;
                }
                if matches!(field.input, Input::Url)
                    && !raw.is_empty()
                    && !raw.starts_with("https://")
                {
                    bad("Le lien doit commencer par https://.".to_owned());
                    continue;
                }
                let raw = if field.path == "/metiers/0/rome/code" {
                    raw.to_ascii_uppercase()
                } else {
                    raw
                };
                (!raw.is_empty()).then(|| json!(raw))
            }
            Input::Date => {
                if raw.is_empty() {
                    None
                } else if is_day(&raw) {
                    Some(json!(raw))
                } else {
                    bad(format!("« {raw} » n'est pas une date (AAAA-MM-JJ)."));
                    continue;
                }
            }
            Input::Number => {
                if raw.is_empty() {
                    None
                } else {
                    match raw.parse::<u32>() {
                        Ok(n) => Some(json!(n)),
                        Err(_) => {
                            bad(format!("« {raw} » n'est pas un nombre entier positif."));
                            continue;
                        }
                    }
                }
            }
            Input::Select(options) => {
                if raw.is_empty() {
                    None
                } else if options.iter().any(|(v, _)| *v == raw) {
                    Some(json!(raw))
                } else {
                    bad("Choisissez une des valeurs proposées.".to_owned());
                    continue;
                }
            }
            Input::YesNo => match raw.as_str() {
                "true" => Some(json!(true)),
                "false" => Some(json!(false)),
                _ => None,
            },
            Input::Checks(options) => {
                let values = f.all(field.path);
                if values.iter().any(|v| !options.iter().any(|(o, _)| o == v)) {
                    bad("Choisissez parmi les valeurs proposées.".to_owned());
                    continue;
                }
                (!values.is_empty()).then(|| json!(values))
            }
            Input::Circles | Input::Partners => {
                let values = f.all(field.path);
                (!values.is_empty()).then(|| json!(values))
            }
            Input::Lines => {
                let lines: Vec<String> = raw
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                (!lines.is_empty()).then(|| json!(lines))
            }
            Input::DateLines => {
                let lines: Vec<&str> = raw
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if let Some(badline) = lines.iter().find(|l| !is_day(l)) {
                    bad(format!("« {badline} » n'est pas une date (AAAA-MM-JJ)."));
                    continue;
                }
                (!lines.is_empty()).then(|| json!(lines))
            }
            Input::Slots => {
                let mut slots = Vec::new();
                let mut failed = false;
                for line in raw.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let (d, part) = line
                        .split_once(char::is_whitespace)
                        .unwrap_or((line, "journée"));
                    let duration = match crate::domain::fold(part.trim()).as_str() {
                        "journee" | "jour" | "" => "day",
                        "demi-journee" | "demi journee" | "demi" => "half_day",
                        _ => {
                            bad(format!(
                                "« {line} » : indiquez « journée » ou « demi-journée » après la date."
                            ));
                            failed = true;
                            break;
                        }
                    };
                    if !is_day(d) {
                        bad(format!(
                            "« {line} » : la date doit être au format AAAA-MM-JJ."
                        ));
                        failed = true;
                        break;
                    }
                    slots.push(json!({"date": d, "duration": duration}));
                }
                if failed {
                    continue;
                }
                (!slots.is_empty()).then(|| json!(slots))
            }
            Input::Commune => {
                if raw.is_empty() {
                    None
                } else if raw.parse::<passerelle_protocol::ids::CogCommune>().is_ok() {
                    Some(json!(raw.to_ascii_uppercase()))
                } else {
                    bad(format!(
                        "« {raw} » n'est pas un code commune (COG à 5 caractères, par exemple 38185)."
                    ));
                    continue;
                }
            }
            Input::Siret => {
                let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
                if digits.is_empty() {
                    None
                } else if digits.parse::<passerelle_protocol::ids::Siret>().is_ok() {
                    Some(json!(digits))
                } else {
                    bad(format!(
                        "« {raw} » n'est pas un SIRET valide (14 chiffres, clé de contrôle)."
                    ));
                    continue;
                }
            }
        };
        set_pointer(doc, field.path, value);
    }
    // The kind's body is required on the wire, even when empty.
    if let Some(map) = doc.as_object_mut() {
        map.entry("body").or_insert_with(|| json!({}));
    }
    errors
}

#[derive(Serialize)]
struct OptView {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct FieldView {
    name: &'static str,
    id: String,
    label: &'static str,
    hint: &'static str,
    input: &'static str,
    value: String,
    options: Vec<OptView>,
    error: Option<String>,
}

#[derive(Serialize)]
struct GroupView {
    legend: &'static str,
    fields: Vec<FieldView>,
}

#[derive(Serialize)]
struct SummaryError {
    message: String,
    href: Option<String>,
}

async fn dynamic_options(
    state: &AppState,
    input: Input,
) -> Result<Vec<(String, String)>, ConsoleError> {
    Ok(match input {
        Input::Circles => state
            .store()
            .circles()
            .await?
            .into_iter()
            .map(|c| (c.url, c.name))
            .collect(),
        Input::Partners => state
            .store()
            .partners()
            .await?
            .into_iter()
            .filter(|p| p.is_partner_either_way())
            .map(|p| {
                let name = if p.name.is_empty() {
                    p.actor_id.clone()
                } else {
                    p.name
                };
                (p.actor_id, name)
            })
            .collect(),
        _ => Vec::new(),
    })
}

async fn groups(
    state: &AppState,
    kind: &str,
    doc: &Value,
    errors: &[(String, String)],
) -> Result<Vec<GroupView>, ConsoleError> {
    let mut out: Vec<GroupView> = Vec::new();
    for field in FIELDS.iter().filter(|f| applies(f, kind)) {
        let (value, selected) = form_value(doc, field);
        let (input, options): (&'static str, Vec<OptView>) = match field.input {
            Input::Text | Input::Commune | Input::Siret => ("text", Vec::new()),
            Input::Textarea => ("textarea", Vec::new()),
            Input::Email => ("email", Vec::new()),
            Input::Url => ("url", Vec::new()),
            Input::Date => ("date", Vec::new()),
            Input::Number => ("number", Vec::new()),
            Input::Lines | Input::DateLines | Input::Slots => ("lines", Vec::new()),
            Input::Select(o) => (
                "select",
                o.iter()
                    .map(|(v, l)| OptView {
                        value: (*v).into(),
                        label: (*l).into(),
                        selected: value == *v,
                    })
                    .collect(),
            ),
            Input::YesNo => (
                "select",
                [("true", "Oui"), ("false", "Non")]
                    .iter()
                    .map(|(v, l)| OptView {
                        value: (*v).into(),
                        label: (*l).into(),
                        selected: value == *v,
                    })
                    .collect(),
            ),
            Input::Checks(o) => (
                "checks",
                o.iter()
                    .map(|(v, l)| OptView {
                        value: (*v).into(),
                        label: (*l).into(),
                        selected: selected.iter().any(|s| s == v),
                    })
                    .collect(),
            ),
            Input::Circles | Input::Partners => {
                let opts = dynamic_options(state, field.input).await?;
                if opts.is_empty() && selected.is_empty() {
                    continue;
                }
                let mut views: Vec<OptView> = opts
                    .into_iter()
                    .map(|(v, l)| OptView {
                        selected: selected.contains(&v),
                        value: v,
                        label: l,
                    })
                    .collect();
                for s in &selected {
                    if !views.iter().any(|o| o.value == *s) {
                        views.push(OptView {
                            value: s.clone(),
                            label: s.clone(),
                            selected: true,
                        });
                    }
                }
                ("checks", views)
            }
        };
        let error = errors
            .iter()
            .filter(|(p, _)| p == field.path)
            .map(|(_, m)| m.clone())
            .collect::<Vec<_>>();
        let view = FieldView {
            name: field.path,
            id: html_id(field.path),
            label: field.label,
            hint: field.hint,
            input,
            value,
            options,
            error: (!error.is_empty()).then(|| error.join(" ")),
        };
        match out.iter_mut().find(|g| g.legend == field.group) {
            Some(g) => g.fields.push(view),
            None => out.push(GroupView {
                legend: field.group,
                fields: vec![view],
            }),
        }
    }
    Ok(out)
}

/// Problems placed on fields (path, message), and those for the summary.
type Placed = (Vec<(String, String)>, Vec<String>);

/// Maps protocol problems to form fields: (field path, message) for those the form shows,
/// summary messages for the others.
fn place_problems(
    kind: &str,
    problems: &passerelle_protocol::vocab::Problems,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut fields = Vec::new();
    let mut summary = Vec::new();
    for p in problems.iter() {
        let path = p.path.as_str();
        let field = FIELDS.iter().filter(|f| applies(f, kind)).find(|f| {
            f.path == path
                || path.starts_with(&format!("{}/", f.path))
                // `/metiers/0` or `/locations/0` problems go to their first field.
                || (f.path.starts_with(&format!("{path}/")) && path.matches('/').count() >= 2)
        });
        let message = match (&p.rule, field) {
            (Rule::Required { .. }, Some(_)) => "Ce champ est obligatoire.".to_owned(),
            (rule, _) => rule.message_fr(),
        };
        match field {
            Some(f) => fields.push((f.path.to_owned(), message)),
            None => {
                // A required group (e.g. `/statutory`) names its fields in the summary.
                let under: Vec<&str> = FIELDS
                    .iter()
                    .filter(|f| applies(f, kind) && f.path.starts_with(&format!("{path}/")))
                    .map(|f| f.label)
                    .collect();
                if matches!(p.rule, Rule::Required { .. }) && !under.is_empty() {
                    summary.push(format!(
                        "Informations obligatoires manquantes : {}.",
                        under.join(", ")
                    ));
                } else {
                    summary.push(format!("{message} (champ {path})"));
                }
            }
        }
    }
    (fields, summary)
}

/// # `GET /console/mes-offres`
/// The node's own postings, drafts included.
pub async fn get_list(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    #[derive(Serialize)]
    struct Row {
        id: String,
        name: String,
        kind: String,
        status: String,
        status_code: &'static str,
        version: i64,
        updated: String,
        deadline: Option<String>,
        href: String,
    }
    let rows: Vec<Row> = state
        .store()
        .postings(None)
        .await?
        .into_iter()
        .map(|p| Row {
            id: p.id.to_string(),
            name: p
                .document
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            kind: feed::label(feed::KINDS, &p.kind)
                .unwrap_or(&p.kind)
                .to_owned(),
            status: feed::label(feed::STATUSES, p.status.as_str())
                .unwrap_or(p.status.as_str())
                .to_owned(),
            status_code: p.status.as_str(),
            version: p.version,
            updated: when(p.updated_at),
            deadline: p
                .document
                .pointer("/dates/applyUntil")
                .and_then(Value::as_str)
                .map(day_fr),
            href: format!("/console/offre?local={}", p.id),
        })
        .collect();
    let ok = raw.as_deref().and_then(|r| {
        url::form_urlencoded::parse(r.as_bytes())
            .find(|(k, _)| k == "ok")
            .map(|(_, v)| v.into_owned())
    });
    let base = page_ctx(&state, &user, "mes-offres").await;
    render(
        "my_postings.html",
        context! { ..base, ..context! {
            postings => rows,
            kinds => feed::KINDS.iter().map(|(v, l)| context!{ value => v, label => l }).collect::<Vec<_>>(),
            notice => notice(ok.as_deref()),
        }},
    )
}

#[allow(clippy::too_many_arguments)]
async fn render_form(
    state: &AppState,
    user: &User,
    kind: &str,
    doc: &Value,
    errors: &[(String, String)],
    summary: &[String],
    action: &str,
    editing: bool,
) -> Result<Response, ConsoleError> {
    let groups = groups(state, kind, doc, errors).await?;
    let mut summary_view: Vec<SummaryError> = summary
        .iter()
        .map(|m| SummaryError {
            message: m.clone(),
            href: None,
        })
        .collect();
    for (path, message) in errors {
        let label = FIELDS
            .iter()
            .find(|f| f.path == path)
            .map_or(path.as_str(), |f| f.label);
        summary_view.push(SummaryError {
            message: format!("{label} : {message}"),
            href: Some(format!("#{}", html_id(path))),
        });
    }
    let status = if summary_view.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let base = page_ctx(state, user, "mes-offres").await;
    render_status(
        status,
        "posting_form.html",
        context! { ..base, ..context! {
            kind => kind,
            kind_label => feed::label(feed::KINDS, kind).unwrap_or(kind),
            groups => groups,
            errors => summary_view,
            action => action,
            editing => editing,
        }},
    )
}

fn kind_param(raw: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "kind")
        .map(|(_, v)| v.into_owned())
        .filter(|k| feed::KINDS.iter().any(|(x, _)| x == k))
}

/// # `GET /console/mes-offres/nouvelle?kind=…`
/// Chooses a kind, then shows its form.
pub async fn get_new(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let Some(kind) = kind_param(raw.as_deref()) else {
        let base = page_ctx(&state, &user, "mes-offres").await;
        return render(
            "posting_kind.html",
            context! { ..base, ..context! {
                kinds => feed::KINDS.iter().map(|(v, l)| context!{ value => v, label => l }).collect::<Vec<_>>(),
            }},
        );
    };
    let visibility = if kind == "career_offer" {
        "direct"
    } else {
        "federation"
    };
    let doc = json!({ "visibility": visibility, "statutory": { "versant": "fpt" } });
    render_form(
        &state,
        &user,
        &kind,
        &doc,
        &[],
        &[],
        &format!("/console/mes-offres/nouvelle?kind={kind}"),
        false,
    )
    .await
}

fn invalid_to_form(kind: &str, e: PostingError) -> Result<Placed, ConsoleError> {
    match e {
        PostingError::Invalid(problems) => Ok(place_problems(kind, &problems)),
        PostingError::NotAnObject | PostingError::Unreadable(_) => Ok((
            Vec::new(),
            vec![format!("L'offre n'a pas pu être lue : {e}")],
        )),
        PostingError::Transition { .. } => Ok((Vec::new(), vec![e.to_string()])),
        PostingError::Store(s) => Err(s.into()),
        PostingError::Sign(m) => Err(ConsoleError::Internal(m)),
    }
}

/// # `POST /console/mes-offres/nouvelle?kind=…`
/// Creates a draft; with `publier`, publishes it at once.
pub async fn post_new(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let kind = kind_param(raw.as_deref())
        .ok_or_else(|| ConsoleError::BadRequest("Type d'offre inconnu.".into()))?;
    let action = format!("/console/mes-offres/nouvelle?kind={kind}");
    let mut doc = json!({ "postingKind": kind });
    let errors = apply_form(&mut doc, &kind, &f);
    if !errors.is_empty() {
        return render_form(&state, &user, &kind, &doc, &errors, &[], &action, false).await;
    }
    let created = match postings::create(&state, &user.principal, doc.clone()).await {
        Ok(p) => p,
        Err(e) => {
            let (fields, summary) = invalid_to_form(&kind, e)?;
            return render_form(
                &state, &user, &kind, &doc, &fields, &summary, &action, false,
            )
            .await;
        }
    };
    if f.get("publier").is_some() {
        postings::set_status(
            &state,
            &user.principal,
            created.id,
            PostingStatus::Published,
        )
        .await
        .map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
        return Ok(see_other(&format!(
            "/console/offre?local={}&ok=publiee",
            created.id
        )));
    }
    Ok(see_other("/console/mes-offres?ok=creee"))
}

fn parse_id(id: &str) -> Result<Uuid, ConsoleError> {
    id.parse()
        .map_err(|_| ConsoleError::NotFound("Cette offre n'existe pas.".into()))
}

/// # `GET /console/mes-offres/{id}/modifier`
pub async fn get_edit(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let id = parse_id(&id)?;
    let posting = state.store().posting(id).await?;
    render_form(
        &state,
        &user,
        &posting.kind,
        &posting.document,
        &[],
        &[],
        &format!("/console/mes-offres/{id}/modifier"),
        true,
    )
    .await
}

/// # `POST /console/mes-offres/{id}/modifier`
pub async fn post_edit(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    let f = form(&user, &body)?;
    let id = parse_id(&id)?;
    let posting = state.store().posting(id).await?;
    let kind = posting.kind.clone();
    let action = format!("/console/mes-offres/{id}/modifier");
    let mut doc = postings::editable_content(&posting.document);
    let errors = apply_form(&mut doc, &kind, &f);
    if !errors.is_empty() {
        return render_form(&state, &user, &kind, &doc, &errors, &[], &action, true).await;
    }
    if let Err(e) = postings::update(&state, &user.principal, id, doc.clone()).await {
        let (fields, summary) = invalid_to_form(&kind, e)?;
        return render_form(&state, &user, &kind, &doc, &fields, &summary, &action, true).await;
    }
    Ok(see_other(&format!("/console/offre?local={id}&ok=modifiee")))
}

async fn transition(
    state: &AppState,
    user: &User,
    id: &str,
    body: &Bytes,
    target: Option<PostingStatus>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Rh)?;
    form(user, body)?;
    let id = parse_id(id)?;
    let result = match target {
        Some(t) => postings::set_status(state, &user.principal, id, t)
            .await
            .map(|_| ()),
        None => postings::delete(state, &user.principal, id).await,
    };
    match result {
        Ok(()) => Ok(see_other(match target {
            Some(PostingStatus::Published) => "/console/mes-offres?ok=publiee",
            Some(_) => "/console/mes-offres?ok=cloturee",
            None => "/console/mes-offres?ok=supprimee",
        })),
        Err(PostingError::Invalid(problems)) => Err(ConsoleError::BadRequest(format!(
            "L'offre ne peut pas être publiée en l'état ; modifiez-la d'abord. {}",
            problems
                .iter()
                .map(|p| p.message_fr())
                .collect::<Vec<_>>()
                .join(" ")
        ))),
        Err(PostingError::Store(s)) => Err(s.into()),
        Err(e @ PostingError::Transition { .. }) => Err(ConsoleError::BadRequest(e.to_string())),
        Err(e) => Err(ConsoleError::Internal(e.to_string())),
    }
}

/// # `POST /console/mes-offres/{id}/publier`
pub async fn post_publish(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    transition(&state, &user, &id, &body, Some(PostingStatus::Published)).await
}

/// # `POST /console/mes-offres/{id}/cloturer`
pub async fn post_close(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    transition(&state, &user, &id, &body, Some(PostingStatus::Closed)).await
}

/// # `POST /console/mes-offres/{id}/supprimer`
pub async fn post_delete(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    transition(&state, &user, &id, &body, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_set_and_removed_cleanly() {
        let mut doc = json!({"metiers": [{"rome": {"code": "K1401"}}, {"local": {"label": "x"}}]});
        set_pointer(&mut doc, "/metiers/0/cnfpt/label", Some(json!("Jardinier")));
        set_pointer(&mut doc, "/statutory/versant", Some(json!("fpt")));
        set_pointer(&mut doc, "/locations/0/commune", Some(json!("38185")));
        assert_eq!(doc["metiers"][0]["cnfpt"]["label"], "Jardinier");
        assert_eq!(doc["metiers"][1]["local"]["label"], "x");
        assert_eq!(doc["locations"][0]["commune"], "38185");
        set_pointer(&mut doc, "/statutory/versant", None);
        assert!(doc.get("statutory").is_none());
        set_pointer(&mut doc, "/locations/0/commune", None);
        assert!(doc.get("locations").is_none());
        set_pointer(&mut doc, "/dates/end", None);
        assert!(doc.get("dates").is_none());
    }

    #[test]
    fn every_kind_has_a_form_and_labels_are_french() {
        for (kind, _) in feed::KINDS {
            let n = FIELDS.iter().filter(|f| applies(f, kind)).count();
            let own = FIELDS.iter().filter(|f| f.kinds.contains(kind)).count();
            assert!(n > 30 && own >= 3, "{kind}: {n} fields, {own} of its own");
        }
        let mut paths: Vec<(&str, &str)> = FIELDS
            .iter()
            .flat_map(|f| {
                if f.kinds.is_empty() {
                    vec![(f.path, "*")]
                } else {
                    f.kinds.iter().map(|k| (f.path, *k)).collect()
                }
            })
            .collect();
        let n = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), n, "a field is listed twice for a kind");
    }

    #[test]
    fn form_values_are_checked_in_french() {
        let f = super::super::Form(vec![
            ("/name".into(), "Jardinier".into()),
            ("/dates/applyUntil".into(), "31/12/2026".into()),
            ("/locations/0/commune".into(), "123".into()),
            ("/workingTime/quotitePct".into(), "beaucoup".into()),
            (
                "/body/slots".into(),
                "2027-03-04 demi-journée\n2027-03-05".into(),
            ),
            ("/statutory/categories".into(), "A".into()),
            ("/statutory/categories".into(), "B".into()),
        ]);
        let mut doc = json!({"postingKind": "immersion_offer"});
        let errors = apply_form(&mut doc, "immersion_offer", &f);
        let fields: Vec<&str> = errors.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            fields,
            [
                "/locations/0/commune",
                "/workingTime/quotitePct",
                "/dates/applyUntil"
            ]
        );
        assert!(errors.iter().all(|(_, m)| m.contains('«')));
        assert_eq!(doc["statutory"]["categories"], json!(["A", "B"]));
        assert_eq!(
            doc["body"]["slots"],
            json!([{"date": "2027-03-04", "duration": "half_day"}, {"date": "2027-03-05", "duration": "day"}])
        );
    }
}
