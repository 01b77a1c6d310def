//! The MAD convention: generated from the agreed terms with every mandatory clause of
//! domain.md §1.5 (décret 2008-580, plus the décret 2022-1682 clauses our template
//! requires), in French, as a protocol [`Convention`] document and as a printable HTML
//! page.
//!
//! Personal data (domain.md §5): the agent's identity appears only from the agent-agreed
//! state on ([`IDENTITY_STATES`]); before that, [`build`] refuses it.
//!
//! The parties' names and SIREN and the agent's identity have no field in the protocol's
//! `Convention` type: they travel as the extension properties `parties` and
//! `agentIdentity` (kept by the protocol as unknown properties, hence signed).

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment};
use passerelle_protocol::ids::{ActorId, KeyId, ObjectId, Siren};
use passerelle_protocol::mad::{
    ConventionClause, DEFAULT_NOTICE_DAYS, MadState, Relation, WAIVER_RULES, missing_clauses,
};
use passerelle_protocol::proof;
use passerelle_protocol::vocab::{
    self, AgentAgreement, Clause, Convention, DisclosedIdentity, EvaluationMode, InvoicingPeriod,
    LeaveAuthority, MadTerms, ReimbursementMode, Validate, ValidationContext,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::date_fr;

/// The HTML template of the printable convention (French, accessible, print CSS).
const TEMPLATE: &str = include_str!("../../templates/convention.html");

/// Legal references printed on every convention.
pub const LEGAL_BASIS: [&str; 3] = [
    "Code général de la fonction publique, articles L512-6 à L512-17",
    "Décret n° 2008-580 du 18 juin 2008 relatif au régime de la mise à disposition applicable aux collectivités territoriales et aux établissements publics administratifs locaux",
    "Code général de la fonction publique, articles L121-1 à L121-11 (obligations déontologiques)",
];

/// The states in which the agent's identity may appear in the convention: from the
/// agent's written agreement on (domain.md §5, minimisation by stage).
pub const IDENTITY_STATES: &[MadState] = &[
    MadState::AgentAgreed,
    MadState::AssemblyInformed,
    MadState::ConventionSigned,
    MadState::ArreteIssued,
    MadState::Active,
    MadState::AmendmentPending,
    MadState::RenewalPending,
    MadState::EarlyEndRequested,
    MadState::Ending,
    MadState::Reintegrated,
    MadState::Closed,
];

/// One employer of the MAD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The node's actor id.
    pub id: ActorId,
    /// Name of the collectivité or établissement, e.g. "Ville de Grenoble".
    pub name: String,
    /// SIREN.
    pub siren: Siren,
}

/// The two employers, as carried in the convention's `parties` property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    /// The agent's employer.
    pub origin: Party,
    /// The receiving employer.
    pub host: Party,
}

/// Which employer drafted the convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drafter {
    /// The origin (usual case).
    Origin,
    /// The host.
    Host,
}

/// Everything [`build`] needs.
#[derive(Debug, Clone)]
pub struct ConventionInput<'a> {
    /// The convention id (minted by the drafting node).
    pub id: ObjectId,
    /// The MAD request it concludes.
    pub mad_request: ObjectId,
    /// Which employer drafts it.
    pub drafter: Drafter,
    /// The two employers.
    pub parties: &'a Parties,
    /// The agreed terms.
    pub terms: &'a MadTerms,
    /// Relations known between origin and host (decide whether a waiver is lawful).
    pub relations: &'a BTreeSet<Relation>,
    /// The request's current state (decides whether the identity may appear).
    pub state: MadState,
    /// The agent's identity, only from [`IDENTITY_STATES`] on.
    pub agent: Option<&'a DisclosedIdentity>,
    /// The agent's written agreement, once given.
    pub agent_agreement: Option<AgentAgreement>,
    /// 0 (or `None`) for the convention, n for its n-th *avenant*.
    pub amendment: Option<u32>,
    /// When it is drafted.
    pub published: OffsetDateTime,
}

/// Why a convention cannot be generated or rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConventionError {
    /// The agent's identity was given before the agent agreed.
    #[error(
        "the agent's identity may appear in the convention only from state agent_agreed on (domain.md §5), the request is {state}: generate the draft without the identity"
    )]
    IdentityTooEarly {
        /// The request's state.
        state: MadState,
    },
    /// The terms waive reimbursement where CGFP L512-15 does not allow it.
    #[error(
        "reimbursement waiver {reason} is not allowed between these employers: it requires the relation {required} (CGFP L512-15); set reimbursement.mode to \"full\" or record the relation"
    )]
    WaiverNotAllowed {
        /// The waiver ground claimed ("none" when absent).
        reason: String,
        /// The relation the ground requires ("a listed ground" when unknown).
        required: String,
    },
    /// A mandatory clause is missing (a bug of the generator: every clause is written).
    #[error("the generated convention lacks {missing:?} (décret 2008-580)")]
    MissingClauses {
        /// The clauses missing.
        missing: Vec<ConventionClause>,
    },
    /// The generated document breaks a protocol rule (e.g. terms over 36 months).
    #[error("the generated convention is invalid: {0}")]
    Invalid(vocab::Problems),
    /// The document cannot be converted to or from JSON.
    #[error("the convention cannot be converted to JSON: {0}")]
    Json(String),
    /// The HTML template failed.
    #[error("cannot render the convention page: {0}")]
    Render(String),
}

impl ConventionError {
    /// The French message for HR officers.
    pub fn message_fr(&self) -> String {
        match self {
            Self::IdentityTooEarly { .. } => "L'identité de l'agent ne peut figurer dans la convention qu'après son accord écrit ; générez le projet sans l'identité.".to_owned(),
            Self::WaiverNotAllowed { .. } => "L'exonération de remboursement n'est possible que dans les cas prévus par l'article L512-15 du CGFP (par exemple entre une collectivité et un établissement public dont elle est membre) ; l'organisme d'accueil doit rembourser.".to_owned(),
            Self::MissingClauses { missing } => format!(
                "La convention doit comporter : {}.",
                missing.iter().map(|c| c.label_fr()).collect::<Vec<_>>().join(", ")
            ),
            Self::Invalid(problems) => format!(
                "La convention générée n'est pas valide : {}.",
                problems.iter().map(|p| p.message_fr()).collect::<Vec<_>>().join(" ; ")
            ),
            Self::Json(_) | Self::Render(_) => "La convention n'a pas pu être produite ; contactez l'administrateur du nœud.".to_owned(),
        }
    }
}

/// Builds the convention: terms, every mandatory clause in French, the parties, the agent's
/// identity when allowed, and the recipients (the other employer). The result has no proof
/// yet; each employer signs it with `proof::sign`.
///
/// # Errors
/// [`ConventionError::IdentityTooEarly`], [`ConventionError::WaiverNotAllowed`],
/// [`ConventionError::MissingClauses`], [`ConventionError::Invalid`].
pub fn build(input: &ConventionInput<'_>) -> Result<Convention, ConventionError> {
    if input.agent.is_some() && !IDENTITY_STATES.contains(&input.state) {
        return Err(ConventionError::IdentityTooEarly { state: input.state });
    }
    let waiver_basis = waiver_basis(input.terms, input.relations)?;
    let clauses = clauses(input.parties, input.terms, waiver_basis);
    let present: BTreeSet<ConventionClause> = clauses.iter().map(|c| c.kind).collect();
    let missing = missing_clauses(&present, input.terms);
    if !missing.is_empty() {
        return Err(ConventionError::MissingClauses { missing });
    }
    let (attributed_to, recipient) = match input.drafter {
        Drafter::Origin => (&input.parties.origin.id, &input.parties.host.id),
        Drafter::Host => (&input.parties.host.id, &input.parties.origin.id),
    };
    let mut extra = vocab::Extra::new();
    extra.insert(
        "parties".into(),
        serde_json::to_value(input.parties).map_err(|e| ConventionError::Json(e.to_string()))?,
    );
    if let Some(agent) = input.agent {
        extra.insert(
            "agentIdentity".into(),
            serde_json::to_value(agent).map_err(|e| ConventionError::Json(e.to_string()))?,
        );
    }
    extra.insert("legalBasis".into(), json!(LEGAL_BASIS));
    let convention = Convention {
        context: Some(vocab::context()),
        id: input.id.clone(),
        kind: Default::default(),
        attributed_to: attributed_to.clone(),
        mad_request: input.mad_request.clone(),
        origin: input.parties.origin.id.clone(),
        host: input.parties.host.id.clone(),
        amendment: input.amendment,
        terms: input.terms.clone(),
        clauses,
        agent_agreement: input.agent_agreement.clone(),
        published: input.published,
        to: vec![recipient.as_str().to_owned()],
        cc: Vec::new(),
        proof: None,
        extra,
    };
    let policy = if convention.id.is_plain_http() {
        ValidationContext::development()
    } else {
        ValidationContext::production()
    };
    convention
        .validate(&policy)
        .map_err(ConventionError::Invalid)?;
    Ok(convention)
}

/// The legal basis of the waiver, when the terms waive reimbursement lawfully.
fn waiver_basis(
    terms: &MadTerms,
    relations: &BTreeSet<Relation>,
) -> Result<Option<&'static str>, ConventionError> {
    if terms.reimbursement.mode != ReimbursementMode::Waived {
        return Ok(None);
    }
    let reason = terms.reimbursement.waiver_reason;
    let rule = reason.and_then(|r| WAIVER_RULES.iter().find(|(w, _, _)| *w == r));
    match rule {
        Some((_, relation, basis)) if relations.contains(relation) => Ok(Some(basis)),
        _ => Err(ConventionError::WaiverNotAllowed {
            reason: reason.map_or_else(|| "none".to_owned(), |r| format!("{r:?}")),
            required: rule.map_or_else(
                || "a ground listed in CGFP L512-15".to_owned(),
                |(_, rel, _)| format!("{rel:?}"),
            ),
        }),
    }
}

fn hours(minutes: u32) -> String {
    match minutes % 60 {
        0 => format!("{} heures", minutes / 60),
        m => format!("{} h {m:02}", minutes / 60),
    }
}

/// The clauses, in the order of the printed convention.
fn clauses(parties: &Parties, t: &MadTerms, waiver_basis: Option<&str>) -> Vec<Clause> {
    let o = &parties.origin.name;
    let h = &parties.host.name;
    let q = t.quotite_pct;
    let mut out = Vec::new();
    let mut push = |kind, text: String| out.push(Clause { kind, text });

    push(
        ConventionClause::NatureActivites,
        format!(
            "L'agent est mis à disposition de {h} pour y exercer les activités suivantes : {}",
            t.activities.trim()
        ),
    );

    let mut employ = format!(
        "L'agent est mis à disposition à hauteur de {q} % de son temps de travail{}. Il exerce ses fonctions sous l'autorité de {h}, dont il suit l'organisation et les règles de travail ; il demeure dans son cadre d'emplois et continue de percevoir la rémunération correspondant à son emploi, versée par {o}.",
        t.schedule
            .as_deref()
            .map(|s| format!(" ({})", s.trim()))
            .unwrap_or_default()
    );
    let leave = t.leave_authority.unwrap_or(if q <= 50 {
        LeaveAuthority::Origin
    } else {
        LeaveAuthority::Host
    });
    let leave_by = match leave {
        LeaveAuthority::Origin => o,
        _ => h,
    };
    employ.push_str(&format!(
        " Les congés annuels et les congés de maladie ordinaire sont accordés par {leave_by}."
    ));
    if let Some(frais) = &t.frais {
        employ.push_str(&format!(" Frais : {}", frais.trim()));
    }
    push(ConventionClause::ConditionsEmploi, employ);

    let eval = match t.evaluation {
        Some(EvaluationMode::OriginOnHostInfo) => format!(
            "{o} apprécie la valeur professionnelle de l'agent sur la base des informations transmises chaque année par {h} sur sa manière de servir ; l'entretien professionnel est conduit par {o}."
        ),
        _ => format!(
            "{h} contrôle les activités de l'agent et transmet chaque année à {o} un rapport sur sa manière de servir ; l'entretien professionnel est conduit par {o}, qui conserve le dossier individuel de l'agent."
        ),
    };
    push(ConventionClause::ControleEvaluation, eval);

    let re = &t.reimbursement;
    let mut refund = match waiver_basis {
        Some(basis) => {
            let extent = re.waiver_extent_pct.unwrap_or(100);
            let duration = re.waiver_duration_months.map_or_else(
                || "toute la durée de la mise à disposition".to_owned(),
                |m| format!("{m} mois"),
            );
            let mut s = format!(
                "Par dérogation au principe du remboursement (fondement : {basis}), {h} est exonéré du remboursement à {o} de la rémunération et des cotisations et contributions afférentes, à hauteur de {extent} % et pour une durée de {duration}."
            );
            if extent < 100 {
                s.push_str(&format!(
                    " Le solde ({} %) est remboursé par {h} à {o}, au prorata de la quotité de mise à disposition.",
                    100 - extent
                ));
            }
            s
        }
        None => format!(
            "{h} rembourse à {o} la rémunération de l'agent ainsi que les cotisations et contributions afférentes, au prorata de la quotité de mise à disposition ({q} %)."
        ),
    };
    if let Some(cost) = re.monthly_cost_estimate {
        refund.push_str(&format!(" Coût mensuel estimé : {cost} euros."));
    }
    if let Some(period) = re.invoicing_period {
        let p = match period {
            InvoicingPeriod::Monthly => "mensuelle",
            InvoicingPeriod::Quarterly => "trimestrielle",
            _ => "annuelle",
        };
        refund.push_str(&format!(" Périodicité de facturation : {p}."));
    }
    push(ConventionClause::Remboursement, refund);

    if let Some(complement) = &t.complement_remuneration {
        push(
            ConventionClause::ComplementRemuneration,
            format!(
                "{h} verse à l'agent un complément de rémunération dûment justifié, de la nature suivante : {}",
                complement.trim()
            ),
        );
    }

    let notice = match t.notice_days {
        Some(d) => format!("{d} jours"),
        None => format!(
            "{DEFAULT_NOTICE_DAYS} jours (durée par défaut, faute de stipulation contraire)"
        ),
    };
    push(
        ConventionClause::Preavis,
        format!(
            "Il peut être mis fin à la mise à disposition avant son terme, à la demande de {o}, de {h} ou de l'agent, moyennant un préavis de {notice}, notifié par écrit aux deux autres parties."
        ),
    );

    push(
        ConventionClause::Duree,
        format!(
            "La mise à disposition prend effet le {} et prend fin le {}, soit une durée de {} mois ; une période de mise à disposition ne peut excéder trois ans.",
            date_fr(t.start_date),
            date_fr(t.end_date),
            t.months()
        ),
    );

    let place = t.place.as_deref().map_or_else(
        || format!("dans les locaux de {h}"),
        |p| p.trim().to_owned(),
    );
    let weekly = t.hebdo_minutes.map_or_else(
        || format!("correspondant à la quotité de {q} %"),
        |m| format!("de {}", hours(m)),
    );
    push(
        ConventionClause::LieuTempsTravail,
        format!("Lieu de travail : {place}. Durée hebdomadaire de travail {weekly}."),
    );

    let renewal = t.renewal_terms.as_deref().map_or_else(
        || "La mise à disposition peut être renouvelée par périodes de trois ans au plus, par avenant, après accord écrit de l'agent et nouvel arrêté.".to_owned(),
        |r| r.trim().to_owned(),
    );
    push(
        ConventionClause::RenouvellementFinAnticipee,
        format!(
            "{renewal} La fin anticipée intervient dans les conditions de préavis prévues par la présente convention ; en cas de faute disciplinaire, il peut être mis fin à la mise à disposition sans préavis, par accord entre {o} et {h}. À la fin de la mise à disposition, l'agent est réaffecté par {o} dans son emploi antérieur ou dans un emploi correspondant à son grade."
        ),
    );

    push(
        ConventionClause::Deontologie,
        format!(
            "L'agent reste soumis aux obligations déontologiques prévues aux articles L121-1 à L121-11 du code général de la fonction publique (dignité, impartialité, intégrité, probité, neutralité, laïcité, secret et discrétion professionnels, prévention des conflits d'intérêts). Le pouvoir disciplinaire demeure exercé par {o}, qui peut être saisi par {h}."
        ),
    );
    out
}

/// What the page shows of one proof (not verified here: `passerelle verify` does that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureLine {
    /// Who signed: the party's name, or the key's controller when not a party.
    pub signer: String,
    /// "employeur d'origine", "organisme d'accueil" or "tiers".
    pub role: String,
    /// When, in French ("14 décembre 2026 à 10:12 UTC"), or "date non indiquée".
    pub when: String,
    /// The key id (verificationMethod).
    pub key_id: String,
}

/// The proofs present on a convention, for display.
pub fn signature_lines(convention: &Convention) -> Vec<SignatureLine> {
    let Some(p) = &convention.proof else {
        return Vec::new();
    };
    let parties = parties_of(convention);
    let holder = json!({ "proof": p });
    let Ok(infos) = proof::proofs(&holder) else {
        return vec![SignatureLine {
            signer: "preuve illisible".to_owned(),
            role: "—".to_owned(),
            when: "—".to_owned(),
            key_id: "—".to_owned(),
        }];
    };
    infos
        .into_iter()
        .map(|info| {
            let controller = info
                .verification_method
                .parse::<KeyId>()
                .ok()
                .map(|k| k.controller());
            let (signer, role) = match &controller {
                Some(c) if *c == convention.origin => {
                    (party_name(parties.as_ref(), true, c), "employeur d'origine")
                }
                Some(c) if *c == convention.host => (
                    party_name(parties.as_ref(), false, c),
                    "organisme d'accueil",
                ),
                Some(c) => (c.as_str().to_owned(), "tiers"),
                None => (info.verification_method.clone(), "tiers"),
            };
            SignatureLine {
                signer,
                role: role.to_owned(),
                when: info
                    .created
                    .map_or_else(|| "date non indiquée".to_owned(), datetime_fr),
                key_id: info.verification_method,
            }
        })
        .collect()
}

fn party_name(parties: Option<&Parties>, origin: bool, id: &ActorId) -> String {
    parties
        .map(|p| if origin { &p.origin.name } else { &p.host.name })
        .cloned()
        .unwrap_or_else(|| id.as_str().to_owned())
}

/// A date-time in French, in UTC: "14 décembre 2026 à 10:12 UTC".
pub fn datetime_fr(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{} à {:02}:{:02} UTC",
        date_fr(t.date()),
        t.hour(),
        t.minute()
    )
}

/// The `parties` property of a convention, when present and well-formed.
pub fn parties_of(convention: &Convention) -> Option<Parties> {
    convention
        .extra
        .get("parties")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The `agentIdentity` property of a convention, when present and well-formed.
pub fn agent_of(convention: &Convention) -> Option<DisclosedIdentity> {
    convention
        .extra
        .get("agentIdentity")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

#[derive(Serialize)]
struct ClauseView {
    number: usize,
    title: String,
    text: String,
}

#[derive(Serialize)]
struct PageView {
    title: String,
    id: String,
    mad_request: String,
    origin: Value,
    host: Value,
    agent: Option<DisclosedIdentity>,
    start: String,
    end: String,
    quotite: u32,
    clauses: Vec<ClauseView>,
    agreement: Option<Value>,
    published: String,
    legal_basis: Vec<&'static str>,
    signatures: Vec<SignatureLine>,
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Renders the printable HTML page of a convention (French, auto-escaped): both parties,
/// the agent (when disclosed), every clause, the agent's agreement and a "Signatures"
/// block listing the proofs present.
///
/// # Errors
/// [`ConventionError::Render`] if the template fails.
pub fn render_html(convention: &Convention) -> Result<String, ConventionError> {
    let parties = parties_of(convention);
    let party_view = |origin: bool| {
        let id = if origin {
            &convention.origin
        } else {
            &convention.host
        };
        match &parties {
            Some(p) => {
                let party = if origin { &p.origin } else { &p.host };
                json!({"name": party.name, "siren": party.siren.as_str(), "id": id.as_str()})
            }
            None => json!({"name": id.as_str(), "siren": null, "id": id.as_str()}),
        }
    };
    let title = match convention.amendment {
        Some(n) if n > 0 => format!("Avenant n° {n} à la convention de mise à disposition"),
        _ => "Convention de mise à disposition".to_owned(),
    };
    let view = PageView {
        title,
        id: convention.id.as_str().to_owned(),
        mad_request: convention.mad_request.as_str().to_owned(),
        origin: party_view(true),
        host: party_view(false),
        agent: agent_of(convention),
        start: date_fr(convention.terms.start_date),
        end: date_fr(convention.terms.end_date),
        quotite: convention.terms.quotite_pct,
        clauses: convention
            .clauses
            .iter()
            .enumerate()
            .map(|(i, c)| ClauseView {
                number: i + 1,
                title: capitalize(c.kind.label_fr()),
                text: c.text.clone(),
            })
            .collect(),
        agreement: convention
            .agent_agreement
            .as_ref()
            .map(|a| json!({"when": datetime_fr(a.agreed_at), "sha256": a.document_sha256})),
        published: datetime_fr(convention.published),
        legal_basis: LEGAL_BASIS.to_vec(),
        signatures: signature_lines(convention),
    };
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("convention.html", TEMPLATE)
        .map_err(|e| ConventionError::Render(e.to_string()))?;
    let template = env
        .get_template("convention.html")
        .map_err(|e| ConventionError::Render(e.to_string()))?;
    template
        .render(minijinja::Value::from_serialize(&view))
        .map_err(|e| ConventionError::Render(e.to_string()))
}

/// The convention as JSON, ready to sign (`proof::sign`) and send.
///
/// # Errors
/// [`ConventionError::Json`].
pub fn to_json(convention: &Convention) -> Result<Value, ConventionError> {
    serde_json::to_value(convention).map_err(|e| ConventionError::Json(e.to_string()))
}

/// A convention read back from (signed) JSON.
///
/// # Errors
/// [`ConventionError::Json`] when the JSON is not a convention.
pub fn from_json(value: Value) -> Result<Convention, ConventionError> {
    serde_json::from_value(value).map_err(|e| ConventionError::Json(e.to_string()))
}
