//! MAD negotiation messages: `MadRequest` (terms, parties, state) and `Convention` (terms
//! plus the mandatory clauses, carrying one proof per signing party). Both contain personal
//! data and travel only between the two employers.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime};

use super::posting::{MAD_MAX_MONTHS, WaiverReason, months_between};
use super::{Extra, Report, Rule, Validate, date_format, is_public, one_or_many, type_tag};
use crate::ids::{ActorId, ObjectId};
use crate::mad::{ConventionClause, MadState, Party, Transition};

type_tag!(
    /// The `type` of a [`MadRequest`].
    MadRequestType = "MadRequest"
);
type_tag!(
    /// The `type` of a [`Convention`].
    ConventionType = "Convention"
);

/// The agent's statut, which decides MAD eligibility (domain.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AgentStatut {
    /// Fonctionnaire titulaire.
    FonctionnaireTitulaire,
    /// Fonctionnaire stagiaire.
    FonctionnaireStagiaire,
    /// Contractuel en CDI.
    ContractuelCdi,
    /// Contractuel en CDD.
    ContractuelCdd,
    /// Contrat de projet.
    ContractuelProjet,
    /// Apprentice.
    Apprenti,
    /// Anything else.
    Autre,
}

/// How the agent's activity at the host is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EvaluationMode {
    /// The host reports to the origin, which runs the entretien professionnel.
    HostReportToOrigin,
    /// The origin evaluates on information sent by the host.
    OriginOnHostInfo,
}

/// Who decides on annual leave and ordinary sick leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeaveAuthority {
    /// The host (MAD above half-time).
    Host,
    /// The origin (required when the quotité is 50 % or less).
    Origin,
}

/// Full reimbursement or waiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReimbursementMode {
    /// The host reimburses salary and charges (the rule).
    Full,
    /// Waived, on a ground of CGFP L512-15.
    Waived,
}

/// How often the host is invoiced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InvoicingPeriod {
    /// Monthly.
    Monthly,
    /// Quarterly.
    Quarterly,
    /// Yearly.
    Yearly,
}

/// Reimbursement terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReimbursementTerms {
    /// Full or waived.
    pub mode: ReimbursementMode,
    /// Ground of the waiver (required when waived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver_reason: Option<WaiverReason>,
    /// Share waived, percent (when waived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver_extent_pct: Option<u32>,
    /// Duration of the waiver, months (when waived).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver_duration_months: Option<u32>,
    /// Estimated monthly cost (salary and charges × quotité), euros.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_cost_estimate: Option<u32>,
    /// Invoicing period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoicing_period: Option<InvoicingPeriod>,
}

/// The terms of a MAD, as negotiated by both HR departments (domain.md §7.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MadTerms {
    /// Nature of the activities (Markdown).
    pub activities: String,
    /// Place of work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Share of working time, percent.
    pub quotite_pct: u32,
    /// Weekly minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hebdo_minutes: Option<u32>,
    /// Schedule, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// First day.
    #[serde(with = "date_format::day")]
    pub start_date: Date,
    /// Last day (at most 36 months after the start).
    #[serde(with = "date_format::day")]
    pub end_date: Date,
    /// Renewal terms, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_terms: Option<String>,
    /// Evaluation mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationMode>,
    /// Who decides on leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave_authority: Option<LeaveAuthority>,
    /// Reimbursement.
    pub reimbursement: ReimbursementTerms,
    /// Nature of a complément de rémunération paid by the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complement_remuneration: Option<String>,
    /// Expenses policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frais: Option<String>,
    /// Notice for an early end, days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_days: Option<u32>,
    /// The agent exercises functions of their grade at the host. With a full-time MAD to
    /// a collectivité territoriale that has a matching vacant post, the host must propose
    /// a mutation or a détachement within 3 years of the first start (décret 2008-580).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions_of_grade: Option<bool>,
    /// The host has a vacant post matching the agent's grade (see `functions_of_grade`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_vacant_post: Option<bool>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl MadTerms {
    /// Length of the period in months (any started month counts).
    pub fn months(&self) -> u32 {
        months_between(self.start_date, self.end_date)
    }
}

impl Validate for MadTerms {
    fn check(&self, r: &mut Report<'_>) {
        if self.activities.trim().is_empty() {
            r.required("activities", "the nature of the activities");
        }
        if !(1..=100).contains(&self.quotite_pct) {
            r.push(
                "quotitePct",
                self.quotite_pct,
                Rule::Percentage {
                    min: 1,
                    max: 100,
                    pct: self.quotite_pct,
                },
            );
        }
        if self.end_date < self.start_date {
            r.push(
                "endDate",
                self.end_date.to_string(),
                Rule::DateOrder {
                    earlier: "startDate",
                    later: "endDate",
                },
            );
        } else if self.months() > MAD_MAX_MONTHS {
            r.push(
                "endDate",
                self.end_date.to_string(),
                Rule::MadTooLong {
                    months: self.months(),
                },
            );
        }
        if self.quotite_pct <= 50 && self.leave_authority == Some(LeaveAuthority::Host) {
            r.push(
                "leaveAuthority",
                "host",
                Rule::Inconsistent {
                    what: "leave is decided by the origin when the quotité is 50 % or less",
                },
            );
        }
        r.nested("reimbursement", |r| {
            let re = &self.reimbursement;
            match re.mode {
                ReimbursementMode::Full => {
                    if re.waiver_reason.is_some() {
                        r.push(
                            "waiverReason",
                            re.waiver_reason,
                            Rule::NotAllowed {
                                what: "a waiver reason with full reimbursement",
                            },
                        );
                    }
                }
                ReimbursementMode::Waived => {
                    if re.waiver_reason.is_none() {
                        r.required(
                            "waiverReason",
                            "the legal ground of the waiver (CGFP L512-15)",
                        );
                    }
                    match re.waiver_extent_pct {
                        None => r.required("waiverExtentPct", "the extent of the waiver"),
                        Some(p) if !(1..=100).contains(&p) => r.push(
                            "waiverExtentPct",
                            p,
                            Rule::Percentage {
                                min: 1,
                                max: 100,
                                pct: p,
                            },
                        ),
                        Some(_) => {}
                    }
                    if re.waiver_duration_months.is_none() {
                        r.required("waiverDurationMonths", "the duration of the waiver");
                    }
                }
            }
        });
    }
}

/// The agent concerned: a reference at the origin, their statut, and — only after the
/// agent's consent — the identity the host needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRef {
    /// Opaque reference at the origin node.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Statut (decides eligibility).
    pub statut: AgentStatut,
    /// Identity disclosed to the host after the agent's consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disclosed: Option<DisclosedIdentity>,
}

/// What the host learns about the agent, after consent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DisclosedIdentity {
    /// Full name.
    pub name: String,
    /// Grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// Échelon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echelon: Option<u8>,
}

/// One step of a request's history: the transition that produced a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MadHistoryEntry {
    /// The version this step produced (1 for `send`).
    pub version: u64,
    /// The transition.
    pub transition: Transition,
    /// Who fired it.
    pub party: Party,
    /// The state it left.
    pub from: MadState,
    /// The state it reached.
    pub to: MadState,
    /// When it was recorded.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The other employer's activity that fired it (absent for the creator's own steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ObjectId>,
    /// Date of the act recorded (séance of the assembly, arrêté, request of an early end).
    #[serde(
        default,
        with = "date_format::day::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub date: Option<Date>,
    /// Reference of the act (délibération, arrêté number, letter…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The states from which the agent's identity may travel to the host: from the agent's
/// written agreement on (spec/protocol.md §6.3, §15). Once the agent agreed (an
/// `agent_agrees` in the history), the identity stays known to the host, through a
/// renewal too.
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

/// A MAD request between an origin and a host node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MadRequest {
    /// JSON-LD context; absent when embedded.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The request id (on the node that proposed it).
    pub id: ObjectId,
    /// Always `"MadRequest"`.
    #[serde(rename = "type")]
    pub kind: MadRequestType,
    /// The node that proposed it (origin or host).
    pub attributed_to: ActorId,
    /// The agent's employer.
    pub origin: ActorId,
    /// The receiving employer.
    pub host: ActorId,
    /// The agent.
    pub agent: AgentRef,
    /// The posting answered, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posting: Option<ObjectId>,
    /// The terms.
    pub terms: MadTerms,
    /// State in the MAD workflow (see [`crate::mad`]).
    pub state: MadState,
    /// Version, from 1 (each revision of terms increments it).
    pub version: u64,
    /// First sent.
    #[serde(with = "time::serde::rfc3339")]
    pub published: OffsetDateTime,
    /// Last change.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub updated: Option<OffsetDateTime>,
    /// Legal references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub legal_basis: Vec<String>,
    /// The transitions that produced each version, oldest first (§4.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<MadHistoryEntry>,
    /// Terms of an amendment (*avenant*) being agreed (state `amendment_pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amendment_terms: Option<MadTerms>,
    /// Recipients: the two employers only.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<String>,
    /// Secondary recipients (the two employers only).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<String>,
    /// Data Integrity proof, kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl MadRequest {
    /// The problems of the history: each entry a row of [`crate::mad::TRANSITIONS`]
    /// fired by one of its parties, from the state the previous entry reached (`draft`
    /// before the first), versions following one another up to the request's, the last
    /// entry reaching the request's state. Empty when consistent (or absent).
    pub fn history_problems(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.history.is_empty() {
            return out;
        }
        let mut state = MadState::Draft;
        let first = self.history.first().map_or(0, |e| e.version);
        for (i, e) in self.history.iter().enumerate() {
            if e.version != first + i as u64 {
                out.push("history versions must follow one another");
            }
            if e.from != state {
                out.push("each history entry must leave the state the previous one reached");
            }
            match crate::mad::rule(e.transition) {
                Some(row) => {
                    if !row.from.contains(&e.from) || row.to != e.to {
                        out.push("a history entry does not match its transition's row");
                    }
                    if !row.parties.contains(&e.party) {
                        out.push("a history entry names a party that may not fire its transition");
                    }
                }
                None => out.push("a history entry names an unknown transition"),
            }
            state = e.to;
        }
        if first != 1 {
            out.push("the history must start at version 1 (send)");
        }
        if self.history.last().map(|e| e.version) != Some(self.version) {
            out.push("the last history entry must produce the request's version");
        }
        if state != self.state {
            out.push("the last history entry must reach the request's state");
        }
        out.dedup();
        out
    }
}

/// Checks the common rules of a two-party message: proposer is a party, the parties differ,
/// the id is on the proposer's origin, recipients are the two parties only.
fn check_two_party(
    r: &mut Report<'_>,
    id: &ObjectId,
    attributed_to: &ActorId,
    (origin, host): (&ActorId, &ActorId),
    to: &[String],
    cc: &[String],
    what: &'static str,
) {
    r.check_id_policy("id", id.as_url());
    r.check_id_policy("origin", origin.as_url());
    r.check_id_policy("host", host.as_url());
    r.check_same_origin("id", id, attributed_to, "attributedTo");
    r.check_minted("id", id);
    if attributed_to != origin && attributed_to != host {
        r.push(
            "attributedTo",
            attributed_to.as_str(),
            Rule::ActorMismatch {
                what: "attributedTo",
                other: "the origin or the host",
            },
        );
    }
    if origin == host {
        r.push(
            "host",
            host.as_str(),
            Rule::Inconsistent {
                what: "the origin and the host must be two different employers",
            },
        );
    }
    let parties = [origin.as_str(), host.as_str()];
    for (field, list) in [("to", to), ("cc", cc)] {
        for (i, a) in list.iter().enumerate() {
            if is_public(a) || !parties.contains(&a.as_str()) {
                r.nested(field, |r| {
                    r.push(
                        &i.to_string(),
                        a,
                        Rule::Addressing {
                            what,
                            allowed: "the origin and host actors",
                        },
                    );
                });
            }
        }
    }
}

impl Validate for MadRequest {
    fn check(&self, r: &mut Report<'_>) {
        check_two_party(
            r,
            &self.id,
            &self.attributed_to,
            (&self.origin, &self.host),
            &self.to,
            &self.cc,
            "a MAD request",
        );
        if self.version == 0 {
            r.push("version", 0, Rule::Range { rule: "at least 1" });
        }
        if let Some((_, crate::mad::Eligibility::Never, rule)) = crate::mad::STATUT_ELIGIBILITY
            .iter()
            .find(|(s, _, _)| *s == self.agent.statut)
        {
            r.nested("agent", |r| {
                r.push("statut", self.agent.statut, Rule::Ineligible { rule });
            });
        }
        if self.agent.reference.trim().is_empty() {
            r.nested("agent", |r| {
                r.required("ref", "the agent's reference at the origin")
            });
        }
        r.nested("terms", |r| self.terms.check(r));
        if let Some(t) = &self.amendment_terms {
            r.nested("amendmentTerms", |r| t.check(r));
        }
        let agreed_once = self
            .history
            .iter()
            .any(|e| e.transition == Transition::AgentAgrees);
        if self.agent.disclosed.is_some() && !agreed_once && !IDENTITY_STATES.contains(&self.state)
        {
            r.nested("agent", |r| {
                r.push(
                    "disclosed",
                    self.state.as_str(),
                    Rule::NotAllowed {
                        what: "the agent's identity before the agent's written agreement (state agent_agreed or later)",
                    },
                );
            });
        }
        for what in self.history_problems() {
            r.push("history", self.history.len(), Rule::Inconsistent { what });
        }
    }
}

/// One clause of a convention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Clause {
    /// Which mandatory (or optional) clause.
    pub kind: ConventionClause,
    /// The text (French).
    pub text: String,
}

/// The agent's written agreement on the draft (before signature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentAgreement {
    /// When the agent agreed.
    #[serde(with = "time::serde::rfc3339")]
    pub agreed_at: OffsetDateTime,
    /// SHA-256 (hex) of the document the agent agreed to.
    pub document_sha256: String,
}

/// A MAD convention (or one of its amendments), signed by both employers: its `proof` is a
/// proof set with one proof per signing party.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Convention {
    /// JSON-LD context; absent when embedded.
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The convention id.
    pub id: ObjectId,
    /// Always `"Convention"`.
    #[serde(rename = "type")]
    pub kind: ConventionType,
    /// The node that drafted it.
    pub attributed_to: ActorId,
    /// The MAD request it concludes.
    pub mad_request: ObjectId,
    /// The agent's employer.
    pub origin: ActorId,
    /// The receiving employer.
    pub host: ActorId,
    /// 0 for the convention, n for its n-th amendment (*avenant*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amendment: Option<u32>,
    /// The terms agreed.
    pub terms: MadTerms,
    /// The clauses (every mandatory clause, see [`crate::mad::MANDATORY_CLAUSES`]).
    pub clauses: Vec<Clause>,
    /// The agent's written agreement, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_agreement: Option<AgentAgreement>,
    /// Drafted at.
    #[serde(with = "time::serde::rfc3339")]
    pub published: OffsetDateTime,
    /// Recipients: the two employers only.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to: Vec<String>,
    /// Secondary recipients (the two employers only).
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc: Vec<String>,
    /// Proof set: one Data Integrity proof per signing party, kept as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Value>,
    /// Unknown properties, kept.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Convention {
    /// The clause kinds present.
    pub fn clause_kinds(&self) -> std::collections::BTreeSet<ConventionClause> {
        self.clauses.iter().map(|c| c.kind).collect()
    }

    /// Number of proofs attached (0, 1 for a single proof, n for a proof set).
    pub fn proof_count(&self) -> usize {
        match &self.proof {
            None => 0,
            Some(Value::Array(a)) => a.len(),
            Some(_) => 1,
        }
    }
}

impl Validate for Convention {
    fn check(&self, r: &mut Report<'_>) {
        check_two_party(
            r,
            &self.id,
            &self.attributed_to,
            (&self.origin, &self.host),
            &self.to,
            &self.cc,
            "a convention",
        );
        r.nested("terms", |r| self.terms.check(r));
        let present = self.clause_kinds();
        for missing in crate::mad::missing_clauses(&present, &self.terms) {
            r.push(
                "clauses",
                missing,
                Rule::Required {
                    what: missing.label(),
                },
            );
        }
        r.nested("clauses", |r| {
            for (i, c) in self.clauses.iter().enumerate() {
                if c.text.trim().is_empty() {
                    r.nested(i.to_string(), |r| {
                        r.required("text", "the text of the clause")
                    });
                }
            }
        });
        if let Some(a) = &self.agent_agreement {
            let ok = a.document_sha256.len() == 64
                && a.document_sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !ok {
                r.nested("agentAgreement", |r| {
                    r.push(
                        "documentSha256",
                        &a.document_sha256,
                        Rule::Range {
                            rule: "a SHA-256 digest in lower-case hex (64 characters)",
                        },
                    );
                });
            }
        }
        // Each proof of the set is made with a key of one of the two employers.
        let (proofs, is_set): (Vec<&Value>, bool) = match &self.proof {
            Some(Value::Array(a)) => (a.iter().collect(), true),
            Some(p) => (vec![p], false),
            None => (Vec::new(), false),
        };
        for (i, p) in proofs.iter().enumerate() {
            let method = p.get("verificationMethod").and_then(Value::as_str);
            let controller = method.and_then(|m| m.parse::<crate::ids::KeyId>().ok());
            let ok = controller.is_some_and(|k| {
                let c = k.controller();
                c == self.origin || c == self.host
            });
            if !ok {
                let rule = Rule::ActorMismatch {
                    what: "the proof's verificationMethod (a key id)",
                    other: "a key of the origin or of the host",
                };
                r.nested("proof", |r| {
                    if is_set {
                        r.nested(i.to_string(), |r| {
                            r.push("verificationMethod", method, rule)
                        });
                    } else {
                        r.push("verificationMethod", method, rule);
                    }
                });
            }
        }
        if self.proof_count() > 2 {
            r.push(
                "proof",
                self.proof_count(),
                Rule::Range {
                    rule: "at most two proofs (one per signing employer)",
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::ValidationContext;
    use serde_json::json;

    fn request(history: Value, state: &str, version: u64, disclosed: bool) -> MadRequest {
        let mut agent = json!({"ref": "agent-7f3c", "statut": "fonctionnaire_titulaire"});
        if disclosed {
            agent["disclosed"] = json!({"name": "Camille Martin"});
        }
        serde_json::from_value(json!({
            "id": "https://emploi.grenoble.fr/mad/requests/019ab4f0-2e17-7b40-9c63-7a1d3e5f8b10",
            "type": "MadRequest",
            "attributedTo": "https://emploi.grenoble.fr/actor",
            "origin": "https://emploi.grenoble.fr/actor",
            "host": "https://passerelle.isere.fr/actor",
            "agent": agent,
            "terms": {"activities": "Appui", "quotitePct": 50, "startDate": "2027-01-04",
                      "endDate": "2028-12-31", "reimbursement": {"mode": "full"}},
            "state": state, "version": version, "published": "2026-11-24T10:00:00Z",
            "history": history,
            "to": ["https://passerelle.isere.fr/actor"]
        }))
        .unwrap()
    }

    fn entry(v: u64, t: &str, p: &str, from: &str, to: &str) -> Value {
        json!({"version": v, "transition": t, "party": p, "from": from, "to": to,
               "at": "2026-11-24T10:00:00Z"})
    }

    #[test]
    fn history_must_follow_the_table() {
        let ok = request(
            json!([
                entry(1, "send", "origin_hr", "draft", "proposed"),
                entry(2, "agree_terms", "host_hr", "proposed", "terms_agreed"),
            ]),
            "terms_agreed",
            2,
            false,
        );
        assert!(ok.history_problems().is_empty());
        ok.validate(&ValidationContext::production()).unwrap();
        // A skipped state, a party the table does not allow, a gap, a wrong last state.
        for (history, state, version, what) in [
            (
                json!([
                    entry(1, "send", "origin_hr", "draft", "proposed"),
                    entry(
                        2,
                        "send_to_agent",
                        "origin_hr",
                        "terms_agreed",
                        "agent_review"
                    )
                ]),
                "agent_review",
                2,
                "leave the state the previous one reached",
            ),
            (
                json!([entry(1, "send", "agent", "draft", "proposed")]),
                "proposed",
                1,
                "party that may not fire",
            ),
            (
                json!([
                    entry(1, "send", "origin_hr", "draft", "proposed"),
                    entry(3, "agree_terms", "host_hr", "proposed", "terms_agreed")
                ]),
                "terms_agreed",
                3,
                "follow one another",
            ),
            (
                json!([entry(1, "send", "origin_hr", "draft", "proposed")]),
                "terms_agreed",
                1,
                "reach the request's state",
            ),
            (
                json!([entry(1, "send", "origin_hr", "draft", "active")]),
                "active",
                1,
                "does not match its transition's row",
            ),
        ] {
            let r = request(history, state, version, false);
            let problems = r.history_problems();
            assert!(
                problems.iter().any(|p| p.contains(what)),
                "{what}: {problems:?}"
            );
            assert!(r.validate(&ValidationContext::production()).is_err());
        }
    }

    #[test]
    fn identity_only_after_the_agent_agreed() {
        let early = request(
            json!([entry(1, "send", "origin_hr", "draft", "proposed")]),
            "proposed",
            1,
            true,
        );
        let err = early
            .validate(&ValidationContext::production())
            .unwrap_err();
        assert!(err.iter().any(|p| p.path == "/agent/disclosed"), "{err:?}");
        // After the agent agreed, through a renewal's new agent review too.
        let mut history = vec![
            entry(1, "send", "origin_hr", "draft", "proposed"),
            entry(2, "agree_terms", "host_hr", "proposed", "terms_agreed"),
            entry(
                3,
                "send_to_agent",
                "origin_hr",
                "terms_agreed",
                "agent_review",
            ),
            entry(4, "agent_agrees", "agent", "agent_review", "agent_agreed"),
        ];
        request(json!(history), "agent_agreed", 4, true)
            .validate(&ValidationContext::production())
            .unwrap();
        history.extend([
            entry(
                5,
                "inform_assembly",
                "origin_authority",
                "agent_agreed",
                "assembly_informed",
            ),
            entry(
                6,
                "sign_convention",
                "host_hr",
                "assembly_informed",
                "convention_signed",
            ),
            entry(
                7,
                "issue_arrete",
                "origin_authority",
                "convention_signed",
                "arrete_issued",
            ),
            entry(8, "start", "system", "arrete_issued", "active"),
            entry(9, "remind_renewal", "system", "active", "renewal_pending"),
            entry(10, "renew", "origin_hr", "renewal_pending", "agent_review"),
        ]);
        request(json!(history), "agent_review", 10, true)
            .validate(&ValidationContext::production())
            .unwrap();
    }
}
