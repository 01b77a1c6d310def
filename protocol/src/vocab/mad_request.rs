//! MAD negotiation messages: `MadRequest` (terms, parties, state) and `Convention` (terms
//! plus the mandatory clauses, carrying one proof per signing party). Both contain personal
//! data and travel only between the two employers.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, OffsetDateTime};

use super::posting::{MAD_MAX_MONTHS, WaiverReason, months_between};
use super::{Extra, Report, Rule, Validate, date_format, is_public, one_or_many, type_tag};
use crate::ids::{ActorId, ObjectId};
use crate::mad::{ConventionClause, MadState};

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
