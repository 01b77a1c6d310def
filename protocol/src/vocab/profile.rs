//! `AgentProfile`: an agent's opt-in, pseudonymous profile (appetites, volunteering,
//! availability, area). It carries **no** name, photo, age, salary or evaluation, and
//! validation refuses unknown properties that look like them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime};

use super::posting::{Categorie, Filiere, MetierRef, PostingKind};
use super::{Extra, Report, Rule, Validate, date_format, is_public, one_or_many, type_tag};
use crate::ids::{ActorId, CogCommune, ObjectId};

type_tag!(
    /// The `type` of an [`AgentProfile`].
    AgentProfileType = "AgentProfile"
);

/// Who may see a profile, as chosen by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProfileVisibility {
    /// Only the agent.
    Private,
    /// The agent's own HR department.
    OriginHr,
    /// The partner circles listed.
    PartnerCircle,
    /// Every partner node (never the public).
    Federation,
}

/// When the agent would like to move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Horizon {
    /// Now.
    #[serde(rename = "now")]
    Now,
    /// Within 6 months.
    #[serde(rename = "6_months")]
    SixMonths,
    /// Within a year.
    #[serde(rename = "1_year")]
    OneYear,
    /// Within two years.
    #[serde(rename = "2_years")]
    TwoYears,
}

/// An appetite: what the agent would like to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Appetite {
    /// Kinds of postings of interest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<PostingKind>,
    /// Métiers wanted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metiers_wanted: Vec<MetierRef>,
    /// Themes, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// Horizon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<Horizon>,
}

/// A standing offer by the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VolunteerRole {
    /// Facilitator.
    Facilitateur,
    /// Internal trainer.
    FormateurInterne,
    /// Immersion tutor.
    TuteurImmersion,
    /// Mentor.
    Mentor,
    /// Crisis reinforcement.
    RenfortCrise,
}

/// Volunteering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volunteering {
    /// Role.
    pub role: VolunteerRole,
    /// Skills offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    /// Days per year offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_per_year: Option<u32>,
}

/// Availability.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    /// From.
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<Date>,
    /// Until.
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub until: Option<Date>,
    /// Largest share of working time, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotite_pct_max: Option<u32>,
    /// Notice needed, weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_weeks: Option<u32>,
}

/// Where the agent could work.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Area {
    /// Communes (COG).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communes: Vec<CogCommune>,
    /// Longest commute, minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_travel_minutes: Option<u32>,
    /// Remote work welcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ok: Option<bool>,
}

/// An agent's pseudonymous profile, published by their own node per their consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentProfile {
    /// JSON-LD context; absent when embedded.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The profile id.
    pub id: ObjectId,
    /// Always `"AgentProfile"`.
    #[serde(rename = "type")]
    pub kind: AgentProfileType,
    /// The agent's node.
    pub attributed_to: ActorId,
    /// Pseudonymous handle, node-scoped (never the agent's name).
    pub handle: String,
    /// Visibility chosen by the agent.
    pub visibility: ProfileVisibility,
    /// Partner circles (for `partner_circle`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub circles: Vec<ObjectId>,
    /// Version, from 1.
    pub version: u64,
    /// Published at.
    #[serde(with = "time::serde::rfc3339")]
    pub published: OffsetDateTime,
    /// Updated at.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated: Option<OffsetDateTime>,
    /// Catégorie (if the agent shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categorie: Option<Categorie>,
    /// Filière.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filiere: Option<Filiere>,
    /// Cadre d'emplois.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadre_emplois: Option<String>,
    /// Grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// Current métiers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metiers_current: Vec<MetierRef>,
    /// Skills.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills: Vec<String>,
    /// Appetites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appetites: Vec<Appetite>,
    /// Volunteering.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volunteering: Vec<Volunteering>,
    /// Availability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Availability>,
    /// Area.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub area: Option<Area>,
    /// Languages (BCP 47 tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Certifications (permis, CACES, habilitations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certifications: Vec<String>,
    /// The manager is informed (not authorising).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_informed: Option<bool>,
    /// Recipients.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<String>,
    /// Secondary recipients.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<String>,
    /// Data Integrity proof, kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// Unknown properties, kept (but refused by validation when they look like personal
    /// data).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Property names refused outright in a profile (compared in lower case).
const FORBIDDEN_EXACT: &[&str] = &[
    "age", "agerange", "nom", "prenom", "prénom", "sexe", "gender", "genre", "address", "adresse",
    "grille", "echelon", "échelon",
];
/// Fragments that make a property name refused (compared in lower case).
const FORBIDDEN_FRAGMENTS: &[&str] = &[
    "name",
    "photo",
    "avatar",
    "icon",
    "image",
    "picture",
    "portrait",
    "birth",
    "naissance",
    "salar",
    "salaire",
    "remunerat",
    "rémunérat",
    "traitement",
    "indice",
    "prime",
    "ifse",
    "evaluat",
    "évaluat",
    "notation",
    "rating",
    "entretien",
    "email",
    "mail",
    "phone",
    "telephone",
    "téléphone",
];

/// Whether a property name looks like personal data that a pseudonymous profile must not
/// carry.
pub fn looks_like_personal_data(property: &str) -> bool {
    let p = property.to_lowercase();
    FORBIDDEN_EXACT.contains(&p.as_str()) || FORBIDDEN_FRAGMENTS.iter().any(|f| p.contains(f))
}

impl Validate for AgentProfile {
    fn check(&self, r: &mut Report<'_>) {
        r.check_id_policy("id", self.id.as_url());
        r.check_same_origin("id", &self.id, &self.attributed_to, "attributedTo");
        r.check_minted("id", &self.id);
        if self.version == 0 {
            r.push("version", 0, Rule::Range { rule: "at least 1" });
        }
        let handle_ok = !self.handle.is_empty()
            && self.handle.len() <= 64
            && self
                .handle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !handle_ok {
            r.push(
                "handle",
                &self.handle,
                Rule::Range {
                    rule: "a pseudonymous handle of 1 to 64 ASCII letters, digits, '-' or '_'",
                },
            );
        }
        for (key, value) in &self.extra {
            if looks_like_personal_data(key) {
                r.push(
                    key,
                    value,
                    Rule::PersonalData {
                        property: key.clone(),
                    },
                );
            }
        }
        let recipients = self.to.len() + self.cc.len();
        if self.to.iter().chain(&self.cc).any(|a| is_public(a)) {
            r.push(
                "to",
                &self.to,
                Rule::Addressing {
                    what: "an agent profile",
                    allowed: "partner nodes chosen by the agent",
                },
            );
        }
        match self.visibility {
            ProfileVisibility::Private | ProfileVisibility::OriginHr if recipients > 0 => {
                r.push(
                    "to",
                    &self.to,
                    Rule::Addressing {
                        what: "a private or HR-only profile",
                        allowed: "nobody outside its own node",
                    },
                );
            }
            ProfileVisibility::PartnerCircle if self.circles.is_empty() => {
                r.required("circles", "the partner circles chosen by the agent");
            }
            _ => {}
        }
        if let Some(a) = &self.availability {
            r.nested("availability", |r| {
                if let (Some(f), Some(u)) = (a.from, a.until)
                    && f > u
                {
                    r.push(
                        "until",
                        u.to_string(),
                        Rule::DateOrder {
                            earlier: "from",
                            later: "until",
                        },
                    );
                }
                if let Some(p) = a.quotite_pct_max
                    && !(1..=100).contains(&p)
                {
                    r.push(
                        "quotitePctMax",
                        p,
                        Rule::Percentage {
                            min: 1,
                            max: 100,
                            pct: p,
                        },
                    );
                }
            });
        }
        r.nested("metiersCurrent", |r| {
            for (i, m) in self.metiers_current.iter().enumerate() {
                r.nested(i.to_string(), |r| m.check(r));
            }
        });
    }
}
