//! Postings: one envelope (`type: "Posting"`) with a `postingKind` and a kind-specific
//! `body` (domain.md §7.3), carrying the statutory fields of a French public job offer
//! (décret 2018-1351 art. 3, CGFP L313-4).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime};

use super::actor::Versant;
use super::{Extra, Report, Rule, Validate, date_format, is_public, one_or_many, type_tag};
use crate::ids::{ActorId, CogCommune, ObjectId, Siret};

type_tag!(
    /// The `type` of a [`Posting`].
    PostingType = "Posting"
);

/// Longest MAD period, in months (CGFP L512-7, décret 2008-580: 3 years, renewable).
pub const MAD_MAX_MONTHS: u32 = 36;
/// Longest project mission, in months (Isère MATP model).
pub const MISSION_MAX_MONTHS: u32 = 24;
/// Quotité bounds of a project mission, in percent of working time.
pub const MISSION_QUOTITE_PCT: (u32, u32) = (10, 40);

/// The kind of a posting (`postingKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PostingKind {
    /// Vacancy or creation of a permanent post (mutation, détachement, contractuel…).
    Vacancy,
    /// A host seeks an agent on *mise à disposition*.
    MadOffer,
    /// A project support mission (10–40 %, ≤ 24 months).
    ProjectMission,
    /// A half-day or one-day facilitation request.
    FacilitationRequest,
    /// A one-day immersion slot ("Vis mon job").
    ImmersionOffer,
    /// A reciprocal immersion swap proposal.
    ImmersionSwap,
    /// A shared training session.
    TrainingSession,
    /// A targeted offer to one senior manager, private.
    CareerOffer,
}

impl PostingKind {
    /// Every kind.
    pub const ALL: [PostingKind; 8] = [
        Self::Vacancy,
        Self::MadOffer,
        Self::ProjectMission,
        Self::FacilitationRequest,
        Self::ImmersionOffer,
        Self::ImmersionSwap,
        Self::TrainingSession,
        Self::CareerOffer,
    ];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vacancy => "vacancy",
            Self::MadOffer => "mad_offer",
            Self::ProjectMission => "project_mission",
            Self::FacilitationRequest => "facilitation_request",
            Self::ImmersionOffer => "immersion_offer",
            Self::ImmersionSwap => "immersion_swap",
            Self::TrainingSession => "training_session",
            Self::CareerOffer => "career_offer",
        }
    }
}

/// Lifecycle status of a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PostingStatus {
    /// Not yet published (never federated).
    Draft,
    /// Open.
    Published,
    /// Temporarily closed to applications.
    Suspended,
    /// Filled.
    Filled,
    /// Closed without being filled.
    Closed,
    /// Cancelled.
    Cancelled,
    /// Past its deadline.
    Expired,
}

/// Who may see a posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Visibility {
    /// Own agents only: never federated.
    Internal,
    /// Named nodes only (addressed in `to`): the only visibility of a career offer.
    Direct,
    /// The partner circles listed in `circles`.
    PartnerCircle,
    /// Every partner node (followers).
    Federation,
    /// Anyone, including the public collection.
    Public,
}

/// Statutory category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Categorie {
    /// Catégorie A (conception, encadrement).
    A,
    /// Catégorie B (application).
    B,
    /// Catégorie C (exécution).
    C,
}

/// Filière (FPT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Filiere {
    /// Administrative.
    Administrative,
    /// Technique.
    Technique,
    /// Culturelle.
    Culturelle,
    /// Sportive.
    Sportive,
    /// Animation.
    Animation,
    /// Sociale.
    Sociale,
    /// Médico-sociale.
    MedicoSociale,
    /// Médico-technique.
    MedicoTechnique,
    /// Police municipale.
    PoliceMunicipale,
    /// Sapeurs-pompiers professionnels.
    SapeursPompiers,
}

/// Whether and on which legal basis the post is open to contractuels (CGFP L332-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpenToContractuels {
    /// Reserved to fonctionnaires.
    None,
    /// L332-8 1°: no cadre d'emplois for these functions.
    #[serde(rename = "l332_8_1")]
    L332_8_1,
    /// L332-8 2°: needs of the service or nature of the functions.
    #[serde(rename = "l332_8_2")]
    L332_8_2,
    /// L332-8 3°: communes < 1,000 inhabitants, groupements < 15,000.
    #[serde(rename = "l332_8_3")]
    L332_8_3,
    /// L332-8 4°: communes nouvelles from communes < 1,000.
    #[serde(rename = "l332_8_4")]
    L332_8_4,
    /// L332-8 5°: temps non complet < 50 %.
    #[serde(rename = "l332_8_5")]
    L332_8_5,
    /// L332-8 6°: small communes, post depending on an external authority.
    #[serde(rename = "l332_8_6")]
    L332_8_6,
    /// Another legal basis (named in `legalRefs`).
    Other,
}

/// The statutory layer: what decides who can legally take the post (décret 2018-1351 art.
/// 3, 1° and 3°).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Statutory {
    /// Versant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versant: Option<Versant>,
    /// Catégories accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Categorie>,
    /// Filières.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filieres: Vec<Filiere>,
    /// Cadres d'emplois accepted (labels or codes, e.g. "Attachés territoriaux").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cadres_emplois: Vec<String>,
    /// Grades accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grades: Vec<String>,
    /// Open to contractuels, and on which basis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_to_contractuels: Option<OpenToContractuels>,
    /// Senior management post ("A+", informal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encadrement_superieur: Option<bool>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A ROME code reference (France Travail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RomeRef {
    /// Code: a letter and 4 digits, e.g. `K1401`.
    pub code: String,
    /// Label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// ROME version, e.g. "4.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A CNFPT *répertoire des métiers* reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CnfptRef {
    /// Label of the métier.
    pub label: String,
    /// Edition (e.g. 2019).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<u16>,
    /// Spécialité.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialite: Option<String>,
    /// Fiche id, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiche_id: Option<String>,
}

/// A collectivité's own métier label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalMetierRef {
    /// Label.
    pub label: String,
    /// Local id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A métier, in one or more nomenclatures (at least one of ROME, CNFPT, local).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetierRef {
    /// ROME code (machine pivot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rome: Option<RomeRef>,
    /// CNFPT label (what HR staff know).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnfpt: Option<CnfptRef>,
    /// Local label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalMetierRef>,
    /// Unknown properties (ESCO…), kept.
    #[serde(flatten)]
    pub extra: Extra,
}

fn is_rome_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5 && (b'A'..=b'N').contains(&b[0]) && b[1..].iter().all(u8::is_ascii_digit)
}

impl Validate for MetierRef {
    fn check(&self, r: &mut Report<'_>) {
        if self.rome.is_none() && self.cnfpt.is_none() && self.local.is_none() {
            r.required("", "a métier reference (rome, cnfpt or local)");
        }
        if let Some(rome) = &self.rome
            && !is_rome_code(&rome.code)
        {
            r.nested("rome", |r| {
                r.push(
                    "code",
                    &rome.code,
                    Rule::Range {
                        rule: "a ROME code: a letter A-N and 4 digits, e.g. K1401",
                    },
                );
            });
        }
    }
}

/// The employer and recruiting authority (décret 2018-1351 art. 3, 4° and 5°).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Employer {
    /// Name of the employing organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The establishment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siret: Option<Siret>,
    /// The recruiting authority (e.g. "Le Maire de Grenoble").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recruiting_authority: Option<String>,
    /// The service or direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where the work happens (décret 2018-1351 art. 3, 10°).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// COG code of the commune.
    pub commune: CogCommune,
    /// Street address or site name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The establishment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siret: Option<Siret>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Full-time, part-time post, or quotité.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkingTimeKind {
    /// Temps complet.
    Complet,
    /// Temps non complet (a weekly duration below 35 h).
    NonComplet,
    /// A share of working time.
    Quotite,
}

/// Working time of the post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkingTime {
    /// Kind.
    pub kind: WorkingTimeKind,
    /// Weekly minutes (for `non_complet`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hebdo_minutes: Option<u32>,
    /// Percentage (for `quotite`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotite_pct: Option<u32>,
}

/// Telework terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Telework {
    /// Whether telework is possible.
    pub allowed: bool,
    /// Maximum days per week.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_per_week_max: Option<u8>,
}

/// The posting's dates (décret 2018-1351 art. 3, 11° and 12°).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostingDates {
    /// Visible from.
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub publish_from: Option<Date>,
    /// Applications until (deadline).
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub apply_until: Option<Date>,
    /// Start of the post, mission or session.
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub start: Option<Date>,
    /// End (temporary postings).
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub end: Option<Date>,
}

/// A functional contact (never a person's own address).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// Functional mailbox, e.g. `mobilite@grenoble.fr`.
    pub mailbox: String,
    /// Service to send applications to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Application URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Remuneration elements (optional in an offer; documented in career offers).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Remuneration {
    /// Grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// Échelon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echelon: Option<u8>,
    /// Indice majoré.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indice_majore: Option<u32>,
    /// NBI points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbi_points: Option<u32>,
    /// RIFSEEP: monthly IFSE, in euros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifse_mensuel: Option<u32>,
    /// RIFSEEP: maximum yearly CIA, in euros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cia_annuel_max: Option<u32>,
    /// Other elements, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Création or vacance d'emploi.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VacancyKind {
    /// A new post.
    Creation,
    /// An existing post that became vacant.
    Vacance,
}

/// *Motif de la vacance* (CGFP L313-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VacancyReason {
    /// The previous holder left by mutation.
    Mutation,
    /// Détachement.
    Detachement,
    /// Disponibilité.
    Disponibilite,
    /// Retirement.
    Retraite,
    /// Resignation.
    Demission,
    /// Death.
    Deces,
    /// End of contract.
    FinContrat,
    /// End of functions.
    CessationFonctions,
    /// Intégration.
    Integration,
    /// Reorganisation.
    Reorganisation,
    /// Other.
    Autre,
}

/// How the post can be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Route {
    /// Mutation.
    Mutation,
    /// Détachement.
    Detachement,
    /// Intégration directe.
    IntegrationDirecte,
    /// Liste d'aptitude (after a concours).
    ListeAptitude,
    /// Contract.
    Contractuel,
    /// Mise à disposition.
    Mad,
}

/// Body of a `vacancy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VacancyBody {
    /// Création or vacance (art. 3, 2°).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vacancy_kind: Option<VacancyKind>,
    /// Motif of the vacancy (CGFP L313-4), required for a `vacance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vacancy_reason: Option<VacancyReason>,
    /// Date the post is vacant (art. 3, 11°).
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub vacancy_date: Option<Date>,
    /// Routes by which it can be filled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Number of posts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posts_count: Option<u32>,
    /// Remuneration elements (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remuneration: Option<Remuneration>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Reimbursement the host expects to pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReimbursementExpected {
    /// Full reimbursement of salary and charges (the rule).
    Full,
    /// A waiver is requested (only in the cases of CGFP L512-15).
    WaiverRequested,
}

/// Legal ground of a reimbursement waiver (CGFP L512-15, domain.md §1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WaiverReason {
    /// Between a collectivité and an EPA it is a member of or attached to.
    CollectiviteEpaMembreOuRattache,
    /// Towards the CSFPT.
    Csfpt,
    /// Towards an international intergovernmental organisation.
    OrganisationInternationale,
    /// Towards an EU institution or body.
    Ue,
    /// Towards a foreign State.
    EtatEtranger,
}

/// Body of a `mad_offer`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MadOfferBody {
    /// Share of working time, in percent (1–100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotite_pct: Option<u32>,
    /// Duration of the MAD period, in months (≤ 36).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_months: Option<u32>,
    /// Whether it may be renewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewable: Option<bool>,
    /// Schedule, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Reimbursement expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reimbursement_expected: Option<ReimbursementExpected>,
    /// Waiver ground, when a waiver is requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver_reason: Option<WaiverReason>,
    /// Nature of a complément de rémunération paid by the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complement_remuneration: Option<String>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Body of a `project_mission`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectMissionBody {
    /// Project name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_name: Option<String>,
    /// Sponsoring direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor_direction: Option<String>,
    /// Minimum quotité, percent (≥ 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotite_pct_min: Option<u32>,
    /// Maximum quotité, percent (≤ 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotite_pct_max: Option<u32>,
    /// Duration in months (≤ 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_months: Option<u32>,
    /// Whether agents of other employers may apply (then a MAD convention is needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_employer: Option<bool>,
    /// Skills wanted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skills_wanted: Vec<String>,
    /// Whether the agent's manager must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_agreement_required: Option<bool>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Half a day or a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DayPart {
    /// Half a day.
    HalfDay,
    /// A full day.
    Day,
}

/// Body of a `facilitation_request`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FacilitationRequestBody {
    /// Topic (séminaire, atelier participatif…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Format, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Half day or day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DayPart>,
    /// Remote session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
    /// Skills wanted from the facilitator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facilitator_skills: Vec<String>,
    /// Expected group size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_size: Option<u32>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One immersion slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    /// The day.
    #[serde(with = "date_format::day")]
    pub date: Date,
    /// Half day or day.
    pub duration: DayPart,
}

/// Body of an `immersion_offer`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmersionOfferBody {
    /// Slots offered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slots: Vec<Slot>,
    /// Host service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_service: Option<String>,
    /// Role of the tutor (never a name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tutor_role: Option<String>,
    /// Participants per slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_participants: Option<u32>,
    /// Observation only (no hands-on work).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation_only: Option<bool>,
    /// Safety requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safety_requirements: Option<String>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Whether a swap requires the return immersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reciprocity {
    /// Both immersions or none.
    Required,
    /// The return immersion is welcome but optional.
    Optional,
}

/// The two postings of a matched swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SwapPair {
    /// First posting.
    pub posting_a: ObjectId,
    /// Second posting.
    pub posting_b: ObjectId,
}

/// Body of an `immersion_swap`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmersionSwapBody {
    /// Service of the post offered for the swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiator_service: Option<String>,
    /// Métiers wanted in return.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wanted_metiers: Vec<MetierRef>,
    /// Reciprocity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reciprocity: Option<Reciprocity>,
    /// Proposed days.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposed_dates: Vec<DateItem>,
    /// Filled when matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<SwapPair>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A calendar date inside a list (`YYYY-MM-DD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DateItem(#[serde(with = "date_format::day")] pub Date);

/// Who trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TrainerKind {
    /// An internal trainer (an agent).
    Interne,
    /// The CNFPT.
    Cnfpt,
    /// A contractor.
    Prestataire,
}

/// How costs are shared between participating employers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CostSharing {
    /// Free.
    Free,
    /// A price per seat.
    PerSeat,
    /// Pro rata of seats used.
    ProRata,
}

/// Body of a `training_session`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainingSessionBody {
    /// Programme, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programme: Option<String>,
    /// Who trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainer_kind: Option<TrainerKind>,
    /// Session days.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_dates: Vec<DateItem>,
    /// Remote session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
    /// Seats in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_total: Option<u32>,
    /// Seats offered to partners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_for_partners: Option<u32>,
    /// Cost sharing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_sharing: Option<CostSharing>,
    /// Whether an attestation is delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<bool>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Route proposed by a career offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CareerRoute {
    /// Mutation.
    Mutation,
    /// Détachement.
    Detachement,
    /// Mise à disposition.
    Mad,
    /// Intégration directe.
    IntegrationDirecte,
}

/// Decision on a career offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CareerDecision {
    /// Not yet decided.
    #[default]
    Pending,
    /// Accepted by the agent.
    Accepted,
    /// Refused by the agent.
    Refused,
    /// Withdrawn by the offering node.
    Withdrawn,
}

/// Body of a `career_offer`: private, to one senior manager through their origin HR.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CareerOfferBody {
    /// Pseudonymous reference of the agent, relayed by their origin node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_agent_ref: Option<String>,
    /// The post proposed, if it is a posting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed_post: Option<ObjectId>,
    /// Route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<CareerRoute>,
    /// Current remuneration (as declared by the agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remuneration_current: Option<Remuneration>,
    /// Proposed remuneration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remuneration_proposed: Option<Remuneration>,
    /// Decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<CareerDecision>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The kind-specific body; on the wire, `postingKind` names the variant and `body` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "postingKind", content = "body", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PostingBody {
    /// `vacancy`.
    Vacancy(VacancyBody),
    /// `mad_offer`.
    MadOffer(MadOfferBody),
    /// `project_mission`.
    ProjectMission(ProjectMissionBody),
    /// `facilitation_request`.
    FacilitationRequest(FacilitationRequestBody),
    /// `immersion_offer`.
    ImmersionOffer(ImmersionOfferBody),
    /// `immersion_swap`.
    ImmersionSwap(ImmersionSwapBody),
    /// `training_session`.
    TrainingSession(TrainingSessionBody),
    /// `career_offer`.
    CareerOffer(CareerOfferBody),
}

impl PostingBody {
    /// The kind of the body.
    pub fn kind(&self) -> PostingKind {
        match self {
            Self::Vacancy(_) => PostingKind::Vacancy,
            Self::MadOffer(_) => PostingKind::MadOffer,
            Self::ProjectMission(_) => PostingKind::ProjectMission,
            Self::FacilitationRequest(_) => PostingKind::FacilitationRequest,
            Self::ImmersionOffer(_) => PostingKind::ImmersionOffer,
            Self::ImmersionSwap(_) => PostingKind::ImmersionSwap,
            Self::TrainingSession(_) => PostingKind::TrainingSession,
            Self::CareerOffer(_) => PostingKind::CareerOffer,
        }
    }
}

/// A posting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Posting {
    /// JSON-LD context; absent when embedded.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The posting id (minted by the owner node, ends in a UUIDv7).
    pub id: ObjectId,
    /// Always `"Posting"`.
    #[serde(rename = "type")]
    pub kind: PostingType,
    /// The owner node's actor.
    pub attributed_to: ActorId,
    /// Version, from 1; the highest version wins.
    pub version: u64,
    /// First publication.
    #[serde(with = "time::serde::rfc3339")]
    pub published: OffsetDateTime,
    /// Last change.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated: Option<OffsetDateTime>,
    /// Status.
    pub status: PostingStatus,
    /// Visibility.
    pub visibility: Visibility,
    /// Partner circles addressed (`partner_circle` visibility).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub circles: Vec<ObjectId>,
    /// Primary recipients.
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
    /// Title of the post (*intitulé*, art. 3, 9°).
    pub name: String,
    /// One-paragraph summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Missions (art. 3, 7°), Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missions: Option<String>,
    /// Expected profile: experience, competencies (art. 3, 7°), Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Specific conditions: habilitations, diplomas, permits (art. 3, 8°).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requirements: Vec<String>,
    /// Métier references (art. 3, 6°).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metiers: Vec<MetierRef>,
    /// Statutory layer (art. 3, 1° and 3°).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statutory: Option<Statutory>,
    /// Employer and recruiting authority (art. 3, 4° and 5°).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employer: Option<Employer>,
    /// Places of work (art. 3, 10°).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// Working time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_time: Option<WorkingTime>,
    /// Telework.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telework: Option<Telework>,
    /// Dates.
    #[serde(default)]
    pub dates: PostingDates,
    /// Functional contact (art. 3, 12°).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// Legal references ("CGFP L313-4"…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legal_refs: Vec<String>,
    /// The kind and its body (`postingKind` + `body`).
    #[serde(flatten)]
    pub body: PostingBody,
    /// Data Integrity proof, kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Posting {
    /// The posting kind.
    pub fn posting_kind(&self) -> PostingKind {
        self.body.kind()
    }

    /// Whether it is addressed to the public collection.
    pub fn is_public(&self) -> bool {
        self.to.iter().chain(&self.cc).any(|a| is_public(a))
    }
}

/// `date` plus `months` calendar months (day clamped to the month's length).
pub fn add_months(date: Date, months: u32) -> Option<Date> {
    let total =
        i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1 + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = time::Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

/// Whole months from `start` to `end` (rounded up: any started month counts).
pub fn months_between(start: Date, end: Date) -> u32 {
    let mut n = 0;
    while let Some(next) = add_months(start, n)
        && next < end
    {
        n += 1;
        if n > 1200 {
            break;
        }
    }
    n
}

fn required_text(r: &mut Report<'_>, field: &str, value: Option<&String>, what: &'static str) {
    if value.is_none_or(|s| s.trim().is_empty()) {
        r.required(field, what);
    }
}

fn check_pct(r: &mut Report<'_>, field: &str, pct: u32, min: u32, max: u32) {
    if !(min..=max).contains(&pct) {
        r.push(field, pct, Rule::Percentage { min, max, pct });
    }
}

fn check_order(
    r: &mut Report<'_>,
    field: &str,
    a: Option<Date>,
    b: Option<Date>,
    earlier: &'static str,
    later: &'static str,
) {
    if let (Some(a), Some(b)) = (a, b)
        && a > b
    {
        r.push(field, b.to_string(), Rule::DateOrder { earlier, later });
    }
}

impl Posting {
    fn check_statutory(&self, r: &mut Report<'_>, full: bool) {
        let Some(st) = &self.statutory else {
            r.required(
                "statutory",
                "the statutory fields (versant, catégories, cadres d'emplois or grades)",
            );
            return;
        };
        r.nested("statutory", |r| {
            if st.versant.is_none() {
                r.required("versant", "the versant (fpt, fpe, fph)");
            }
            if st.categories.is_empty() {
                r.required("categories", "at least one catégorie (A, B, C)");
            }
            if full {
                if st.cadres_emplois.is_empty() && st.grades.is_empty() {
                    r.required("cadresEmplois", "the cadres d'emplois or grades expected");
                }
                if st.open_to_contractuels.is_none() {
                    r.required(
                        "openToContractuels",
                        "whether the post is open to contractuels (none, or the CGFP L332-8 case)",
                    );
                }
            }
        });
    }

    fn check_common(&self, r: &mut Report<'_>) {
        r.check_id_policy("id", self.id.as_url());
        r.check_id_policy("attributedTo", self.attributed_to.as_url());
        r.check_same_origin("id", &self.id, &self.attributed_to, "attributedTo");
        r.check_minted("id", &self.id);
        if self.version == 0 {
            r.push("version", 0, Rule::Range { rule: "at least 1" });
        }
        if self.name.trim().is_empty() {
            r.required("name", "the title of the post (intitulé)");
        }
        if let Some(u) = self.updated
            && u < self.published
        {
            r.push(
                "updated",
                u.to_string(),
                Rule::DateOrder {
                    earlier: "published",
                    later: "updated",
                },
            );
        }
        r.nested("dates", |r| {
            let d = &self.dates;
            check_order(
                r,
                "applyUntil",
                d.publish_from,
                d.apply_until,
                "publishFrom",
                "applyUntil",
            );
            check_order(r, "end", d.start, d.end, "start", "end");
            check_order(r, "start", d.publish_from, d.start, "publishFrom", "start");
        });
        match &self.contact {
            None => r.required("contact", "a functional contact mailbox"),
            Some(c) if !c.mailbox.contains('@') => r.nested("contact", |r| {
                r.push(
                    "mailbox",
                    &c.mailbox,
                    Rule::Range {
                        rule: "an e-mail address",
                    },
                );
            }),
            Some(_) => {}
        }
        r.nested("metiers", |r| {
            for (i, m) in self.metiers.iter().enumerate() {
                r.nested(i.to_string(), |r| m.check(r));
            }
        });
        if let Some(wt) = &self.working_time {
            r.nested("workingTime", |r| match wt.kind {
                WorkingTimeKind::NonComplet => match wt.hebdo_minutes {
                    None => r.required(
                        "hebdoMinutes",
                        "the weekly duration of a temps non complet post",
                    ),
                    Some(m) if m == 0 || m >= 35 * 60 => r.push(
                        "hebdoMinutes",
                        m,
                        Rule::Range {
                            rule: "between 1 and 2099 minutes (below 35 h) for temps non complet",
                        },
                    ),
                    Some(_) => {}
                },
                WorkingTimeKind::Quotite => match wt.quotite_pct {
                    None => r.required("quotitePct", "the quotité"),
                    Some(p) => check_pct(r, "quotitePct", p, 1, 100),
                },
                WorkingTimeKind::Complet => {}
            });
        }
        self.check_addressing(r);
    }

    fn check_addressing(&self, r: &mut Report<'_>) {
        let public = self.is_public();
        let recipients = self.to.len() + self.cc.len();
        match self.visibility {
            Visibility::Public => {
                if !public {
                    r.push(
                        "to",
                        &self.to,
                        Rule::Inconsistent {
                            what: "a public posting is addressed to the public collection",
                        },
                    );
                }
            }
            Visibility::Internal => {
                if recipients > 0 {
                    r.push(
                        "to",
                        &self.to,
                        Rule::Addressing {
                            what: "an internal posting",
                            allowed: "nobody outside its own node",
                        },
                    );
                }
            }
            Visibility::PartnerCircle | Visibility::Federation | Visibility::Direct => {
                if public {
                    r.push(
                        "to",
                        &self.to,
                        Rule::Addressing {
                            what: "a posting that is not public",
                            allowed: "its partners, circles or named nodes",
                        },
                    );
                }
                if recipients == 0 {
                    r.required("to", "the recipients (partners, circles or nodes)");
                }
            }
        }
        if self.visibility == Visibility::PartnerCircle && self.circles.is_empty() {
            r.required("circles", "the partner circles addressed");
        }
    }

    fn check_body(&self, r: &mut Report<'_>) {
        let d = &self.dates;
        match &self.body {
            PostingBody::Vacancy(b) => {
                self.check_statutory(r, true);
                if self.metiers.is_empty() {
                    r.required("metiers", "the métier references (ROME, CNFPT or local)");
                }
                required_text(r, "missions", self.missions.as_ref(), "the missions");
                required_text(r, "profile", self.profile.as_ref(), "the expected profile");
                match &self.employer {
                    None => r.required("employer", "the employer and recruiting authority"),
                    Some(e) => r.nested("employer", |r| {
                        required_text(
                            r,
                            "recruitingAuthority",
                            e.recruiting_authority.as_ref(),
                            "the recruiting authority",
                        );
                    }),
                }
                if self.locations.is_empty() {
                    r.required("locations", "the place of work (COG commune)");
                }
                if d.apply_until.is_none() {
                    r.nested("dates", |r| {
                        r.required("applyUntil", "the application deadline")
                    });
                }
                r.nested("body", |r| {
                    match b.vacancy_kind {
                        None => r.required("vacancyKind", "création or vacance d'emploi"),
                        Some(VacancyKind::Vacance) if b.vacancy_reason.is_none() => {
                            r.required("vacancyReason", "the motif of the vacancy (CGFP L313-4)");
                        }
                        Some(_) => {}
                    }
                    if b.vacancy_date.is_none() {
                        r.required("vacancyDate", "the date the post is vacant");
                    }
                    if b.posts_count == Some(0) {
                        r.push("postsCount", 0, Rule::Range { rule: "at least 1" });
                    }
                });
            }
            PostingBody::MadOffer(b) => {
                self.check_statutory(r, false);
                if self.metiers.is_empty() {
                    r.required("metiers", "the métier references (ROME, CNFPT or local)");
                }
                required_text(
                    r,
                    "missions",
                    self.missions.as_ref(),
                    "the activities of the MAD",
                );
                if self.locations.is_empty() {
                    r.required("locations", "the place of work (COG commune)");
                }
                if d.start.is_none() {
                    r.nested("dates", |r| r.required("start", "the start date"));
                }
                if let (Some(s), Some(e)) = (d.start, d.end) {
                    let months = months_between(s, e);
                    if months > MAD_MAX_MONTHS {
                        r.nested("dates", |r| {
                            r.push("end", e.to_string(), Rule::MadTooLong { months })
                        });
                    }
                }
                r.nested("body", |r| {
                    match b.quotite_pct {
                        None => r.required("quotitePct", "the quotité"),
                        Some(p) => check_pct(r, "quotitePct", p, 1, 100),
                    }
                    match b.duration_months {
                        None => r.required("durationMonths", "the duration in months"),
                        Some(m) if m == 0 => {
                            r.push("durationMonths", m, Rule::Range { rule: "at least 1" })
                        }
                        Some(m) if m > MAD_MAX_MONTHS => {
                            r.push("durationMonths", m, Rule::MadTooLong { months: m })
                        }
                        Some(_) => {}
                    }
                    match (b.reimbursement_expected, b.waiver_reason) {
                        (None, _) => r.required(
                            "reimbursementExpected",
                            "full reimbursement or a waiver request",
                        ),
                        (Some(ReimbursementExpected::WaiverRequested), None) => {
                            r.required(
                                "waiverReason",
                                "the legal ground of the waiver (CGFP L512-15)",
                            );
                        }
                        (Some(ReimbursementExpected::Full), Some(w)) => r.push(
                            "waiverReason",
                            w,
                            Rule::NotAllowed {
                                what: "a waiver reason with full reimbursement",
                            },
                        ),
                        _ => {}
                    }
                });
            }
            PostingBody::ProjectMission(b) => {
                required_text(r, "missions", self.missions.as_ref(), "the missions");
                if let (Some(s), Some(e)) = (d.start, d.end) {
                    let months = months_between(s, e);
                    if months > MISSION_MAX_MONTHS {
                        r.nested("dates", |r| {
                            r.push("end", e.to_string(), Rule::MissionTooLong { months })
                        });
                    }
                }
                r.nested("body", |r| {
                    required_text(
                        r,
                        "projectName",
                        b.project_name.as_ref(),
                        "the project name",
                    );
                    let (lo, hi) = MISSION_QUOTITE_PCT;
                    for (field, v) in [
                        ("quotitePctMin", b.quotite_pct_min),
                        ("quotitePctMax", b.quotite_pct_max),
                    ] {
                        match v {
                            None => r.required(field, "the quotité range (10 to 40 %)"),
                            Some(p) if !(lo..=hi).contains(&p) => {
                                r.push(field, p, Rule::MissionQuotite { pct: p })
                            }
                            Some(_) => {}
                        }
                    }
                    if let (Some(a), Some(z)) = (b.quotite_pct_min, b.quotite_pct_max)
                        && a > z
                    {
                        r.push(
                            "quotitePctMin",
                            a,
                            Rule::Inconsistent {
                                what: "quotitePctMin must not exceed quotitePctMax",
                            },
                        );
                    }
                    match b.duration_months {
                        None => r.required("durationMonths", "the duration in months (at most 24)"),
                        Some(m) if m == 0 => {
                            r.push("durationMonths", m, Rule::Range { rule: "at least 1" })
                        }
                        Some(m) if m > MISSION_MAX_MONTHS => {
                            r.push("durationMonths", m, Rule::MissionTooLong { months: m });
                        }
                        Some(_) => {}
                    }
                });
            }
            PostingBody::FacilitationRequest(b) => {
                if b.remote != Some(true) && self.locations.is_empty() {
                    r.required("locations", "the place (or remote: true)");
                }
                r.nested("body", |r| {
                    required_text(r, "topic", b.topic.as_ref(), "the topic");
                    if b.duration.is_none() {
                        r.required("duration", "half_day or day");
                    }
                    if b.group_size == Some(0) {
                        r.push("groupSize", 0, Rule::Range { rule: "at least 1" });
                    }
                });
            }
            PostingBody::ImmersionOffer(b) => {
                if self.locations.is_empty() {
                    r.required("locations", "the place of the immersion (COG commune)");
                }
                r.nested("body", |r| {
                    if b.slots.is_empty() {
                        r.required("slots", "at least one slot");
                    }
                    required_text(
                        r,
                        "hostService",
                        b.host_service.as_ref(),
                        "the host service",
                    );
                    match b.max_participants {
                        None => {
                            r.required("maxParticipants", "the number of participants per slot")
                        }
                        Some(0) => r.push("maxParticipants", 0, Rule::Range { rule: "at least 1" }),
                        Some(_) => {}
                    }
                    if let Some(deadline) = d.apply_until {
                        for (i, s) in b.slots.iter().enumerate() {
                            if s.date < deadline {
                                r.nested("slots", |r| {
                                    r.nested(i.to_string(), |r| {
                                        r.push(
                                            "date",
                                            s.date.to_string(),
                                            Rule::DateOrder {
                                                earlier: "dates.applyUntil",
                                                later: "slot date",
                                            },
                                        );
                                    });
                                });
                            }
                        }
                    }
                });
            }
            PostingBody::ImmersionSwap(b) => r.nested("body", |r| {
                required_text(
                    r,
                    "initiatorService",
                    b.initiator_service.as_ref(),
                    "the service offered for the swap",
                );
                if b.reciprocity.is_none() {
                    r.required("reciprocity", "required or optional");
                }
                if b.proposed_dates.is_empty() {
                    r.required("proposedDates", "at least one proposed day");
                }
                r.nested("wantedMetiers", |r| {
                    for (i, m) in b.wanted_metiers.iter().enumerate() {
                        r.nested(i.to_string(), |r| m.check(r));
                    }
                });
            }),
            PostingBody::TrainingSession(b) => {
                if b.remote != Some(true) && self.locations.is_empty() {
                    r.required("locations", "the place (or remote: true)");
                }
                r.nested("body", |r| {
                    required_text(r, "programme", b.programme.as_ref(), "the programme");
                    if b.trainer_kind.is_none() {
                        r.required("trainerKind", "who trains (interne, cnfpt, prestataire)");
                    }
                    if b.session_dates.is_empty() {
                        r.required("sessionDates", "at least one session day");
                    }
                    match (b.seats_total, b.seats_for_partners) {
                        (None, _) => r.required("seatsTotal", "the number of seats"),
                        (Some(0), _) => r.push("seatsTotal", 0, Rule::Range { rule: "at least 1" }),
                        (Some(t), Some(p)) if p > t => r.push(
                            "seatsForPartners",
                            p,
                            Rule::Inconsistent {
                                what: "seatsForPartners must not exceed seatsTotal",
                            },
                        ),
                        _ => {}
                    }
                });
            }
            PostingBody::CareerOffer(b) => {
                let recipients = self.to.len() + self.cc.len();
                let ok = match self.visibility {
                    Visibility::Direct => {
                        self.to.len() == 1 && self.cc.is_empty() && !self.is_public()
                    }
                    Visibility::Internal => recipients == 0,
                    _ => false,
                };
                if !ok {
                    r.push(
                        "visibility",
                        self.visibility,
                        Rule::Addressing {
                            what: "a career offer",
                            allowed: "one node (visibility direct, one actor in to, nothing in cc)",
                        },
                    );
                }
                r.nested("body", |r| {
                    required_text(
                        r,
                        "targetAgentRef",
                        b.target_agent_ref.as_ref(),
                        "the agent's pseudonymous reference",
                    );
                    if b.route.is_none() {
                        r.required(
                            "route",
                            "the route (mutation, detachement, mad, integration_directe)",
                        );
                    }
                });
            }
        }
    }
}

impl Validate for Posting {
    fn check(&self, r: &mut Report<'_>) {
        self.check_common(r);
        self.check_body(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months() {
        assert_eq!(
            add_months(date!(2026 - 01 - 31), 1),
            Some(date!(2026 - 02 - 28))
        );
        assert_eq!(
            add_months(date!(2026 - 11 - 15), 3),
            Some(date!(2027 - 02 - 15))
        );
        assert_eq!(
            months_between(date!(2026 - 01 - 01), date!(2029 - 01 - 01)),
            36
        );
        assert_eq!(
            months_between(date!(2026 - 01 - 01), date!(2029 - 01 - 02)),
            37
        );
        assert_eq!(
            months_between(date!(2026 - 01 - 01), date!(2026 - 01 - 01)),
            0
        );
        assert_eq!(
            months_between(date!(2026 - 01 - 01), date!(2026 - 01 - 02)),
            1
        );
    }

    #[test]
    fn rome_codes() {
        assert!(is_rome_code("K1401"));
        assert!(!is_rome_code("Z1401"));
        assert!(!is_rome_code("K140"));
        assert!(!is_rome_code("k1401"));
    }
}
