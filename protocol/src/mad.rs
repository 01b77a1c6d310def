//! The *mise à disposition* (MAD) state machine (domain.md §7.6), as pure code.
//!
//! Every transition is a row of [`TRANSITIONS`]: the states it leaves, the state it reaches,
//! the parties that may fire it and the legal checks it runs. The legal rules themselves
//! are tables too: [`STATUT_ELIGIBILITY`] (who may be *mis à disposition*, domain.md §1.3),
//! [`WAIVER_RULES`] (when the host may be exempted from reimbursing, §1.7),
//! [`MANDATORY_CLAUSES`] (what the convention must say, §1.5) and [`MAX_PERIOD_MONTHS`]
//! (3 years per period, §1.6). [`apply`] reads the tables; it contains no rule of its own,
//! so a change of the law is a change of data.
//!
//! Final states ([`MadState::is_final`]: rejected, declined by the agent, withdrawn, closed)
//! have no way out.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::vocab::{AgentStatut, MadTerms, ReimbursementMode, WaiverReason};

/// The states of a MAD request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MadState {
    /// Being written by one HR department.
    Draft,
    /// Sent to the other employer.
    Proposed,
    /// The other employer made a counter-proposal.
    Negotiating,
    /// Both employers agreed on the terms (the host's agreement).
    TermsAgreed,
    /// The convention draft is with the agent, before signature.
    AgentReview,
    /// The agent refused (final).
    DeclinedByAgent,
    /// The agent agreed in writing.
    AgentAgreed,
    /// The origin's assembly was informed (CGFP L512-12).
    AssemblyInformed,
    /// Both employers signed the convention.
    ConventionSigned,
    /// The origin's authority issued the arrêté.
    ArreteIssued,
    /// The MAD is running.
    Active,
    /// An amendment (*avenant*) is being agreed.
    AmendmentPending,
    /// The term approaches; renewal is being decided.
    RenewalPending,
    /// Origin, host or agent asked to end early; notice is running.
    EarlyEndRequested,
    /// The MAD is ending.
    Ending,
    /// The agent is back at the origin.
    Reintegrated,
    /// Everything settled (final).
    Closed,
    /// The counterparty refused the proposal (final).
    Rejected,
    /// Withdrawn before agreement (final).
    Withdrawn,
}

impl MadState {
    /// Every state.
    pub const ALL: [MadState; 19] = [
        Self::Draft,
        Self::Proposed,
        Self::Negotiating,
        Self::TermsAgreed,
        Self::AgentReview,
        Self::DeclinedByAgent,
        Self::AgentAgreed,
        Self::AssemblyInformed,
        Self::ConventionSigned,
        Self::ArreteIssued,
        Self::Active,
        Self::AmendmentPending,
        Self::RenewalPending,
        Self::EarlyEndRequested,
        Self::Ending,
        Self::Reintegrated,
        Self::Closed,
        Self::Rejected,
        Self::Withdrawn,
    ];

    /// Whether no transition leaves this state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::DeclinedByAgent | Self::Closed | Self::Rejected | Self::Withdrawn
        )
    }

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Proposed => "proposed",
            Self::Negotiating => "negotiating",
            Self::TermsAgreed => "terms_agreed",
            Self::AgentReview => "agent_review",
            Self::DeclinedByAgent => "declined_by_agent",
            Self::AgentAgreed => "agent_agreed",
            Self::AssemblyInformed => "assembly_informed",
            Self::ConventionSigned => "convention_signed",
            Self::ArreteIssued => "arrete_issued",
            Self::Active => "active",
            Self::AmendmentPending => "amendment_pending",
            Self::RenewalPending => "renewal_pending",
            Self::EarlyEndRequested => "early_end_requested",
            Self::Ending => "ending",
            Self::Reintegrated => "reintegrated",
            Self::Closed => "closed",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
}

impl MadState {
    /// The French name of the state, for HR officers.
    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Draft => "brouillon",
            Self::Proposed => "proposée",
            Self::Negotiating => "en négociation",
            Self::TermsAgreed => "conditions acceptées",
            Self::AgentReview => "projet de convention soumis à l'agent",
            Self::DeclinedByAgent => "refusée par l'agent",
            Self::AgentAgreed => "accord écrit de l'agent recueilli",
            Self::AssemblyInformed => "assemblée délibérante informée",
            Self::ConventionSigned => "convention signée",
            Self::ArreteIssued => "arrêté de mise à disposition pris",
            Self::Active => "en cours",
            Self::AmendmentPending => "avenant en préparation",
            Self::RenewalPending => "renouvellement à décider",
            Self::EarlyEndRequested => "fin anticipée demandée (préavis en cours)",
            Self::Ending => "fin de la mise à disposition",
            Self::Reintegrated => "agent réintégré",
            Self::Closed => "clôturée",
            Self::Rejected => "refusée par l'autre employeur",
            Self::Withdrawn => "retirée",
        }
    }

    /// The state named by its wire value.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for MadState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who fires a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Party {
    /// HR of the agent's employer.
    OriginHr,
    /// HR of the receiving employer (speaks for the host).
    HostHr,
    /// The agent.
    Agent,
    /// The origin's *autorité territoriale* (executive), who informs the assembly, signs
    /// and issues the arrêté.
    OriginAuthority,
    /// The node itself (timers: start date, term, notice).
    System,
}

impl Party {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OriginHr => "origin_hr",
            Self::HostHr => "host_hr",
            Self::Agent => "agent",
            Self::OriginAuthority => "origin_authority",
            Self::System => "system",
        }
    }
}

impl Party {
    /// Every party.
    pub const ALL: [Party; 5] = [
        Self::OriginHr,
        Self::HostHr,
        Self::Agent,
        Self::OriginAuthority,
        Self::System,
    ];

    /// The French name of the party, for HR officers.
    pub fn label_fr(self) -> &'static str {
        match self {
            Self::OriginHr => "les RH de l'employeur d'origine",
            Self::HostHr => "les RH de l'organisme d'accueil",
            Self::Agent => "l'agent",
            Self::OriginAuthority => "l'autorité territoriale de l'employeur d'origine",
            Self::System => "le nœud, à la date prévue",
        }
    }

    /// The employer that speaks for the party: the origin for its HR, its authority and
    /// the agent (whose written agreement is recorded at the origin), the host for its HR;
    /// `None` for `system` (recorded by the request's creator).
    pub fn side(self) -> Option<Side> {
        match self {
            Self::OriginHr | Self::OriginAuthority | Self::Agent => Some(Side::Origin),
            Self::HostHr => Some(Side::Host),
            Self::System => None,
        }
    }

    /// The party named by its wire value.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// One of the two employers of a MAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The agent's employer.
    Origin,
    /// The receiving employer.
    Host,
}

impl Side {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Origin => "origin",
            Self::Host => "host",
        }
    }

    /// The other employer.
    pub fn other(self) -> Self {
        match self {
            Self::Origin => Self::Host,
            Self::Host => Self::Origin,
        }
    }
}

impl fmt::Display for Party {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transitions of the MAD workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transition {
    /// draft → proposed.
    Send,
    /// proposed → negotiating (counterparty).
    CounterPropose,
    /// negotiating → proposed.
    ReviseTerms,
    /// proposed → terms_agreed (counterparty).
    AgreeTerms,
    /// proposed → rejected (counterparty).
    Reject,
    /// terms_agreed → agent_review: the convention draft goes to the agent.
    SendToAgent,
    /// agent_review → agent_agreed.
    AgentAgrees,
    /// agent_review → declined_by_agent.
    AgentDeclines,
    /// agent_agreed → assembly_informed.
    InformAssembly,
    /// assembly_informed → convention_signed.
    SignConvention,
    /// convention_signed → arrete_issued.
    IssueArrete,
    /// arrete_issued → active (start date reached).
    Start,
    /// active → amendment_pending.
    ProposeAmendment,
    /// amendment_pending → active (avenant agreed and signed).
    ConcludeAmendment,
    /// amendment_pending → active (amendment dropped, terms unchanged).
    AbandonAmendment,
    /// active → renewal_pending.
    RemindRenewal,
    /// renewal_pending → agent_review (new period).
    Renew,
    /// renewal_pending → ending.
    DeclineRenewal,
    /// active → early_end_requested.
    RequestEarlyEnd,
    /// early_end_requested → ending (notice elapsed).
    NoticeElapsed,
    /// active → ending (disciplinary fault, no notice, origin and host agree).
    EndForFault,
    /// active → ending (term reached).
    ReachTerm,
    /// ending → reintegrated.
    Reintegrate,
    /// reintegrated → closed.
    Close,
    /// draft / proposed / negotiating → withdrawn.
    Withdraw,
}

impl Transition {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::CounterPropose => "counter_propose",
            Self::ReviseTerms => "revise_terms",
            Self::AgreeTerms => "agree_terms",
            Self::Reject => "reject",
            Self::SendToAgent => "send_to_agent",
            Self::AgentAgrees => "agent_agrees",
            Self::AgentDeclines => "agent_declines",
            Self::InformAssembly => "inform_assembly",
            Self::SignConvention => "sign_convention",
            Self::IssueArrete => "issue_arrete",
            Self::Start => "start",
            Self::ProposeAmendment => "propose_amendment",
            Self::ConcludeAmendment => "conclude_amendment",
            Self::AbandonAmendment => "abandon_amendment",
            Self::RemindRenewal => "remind_renewal",
            Self::Renew => "renew",
            Self::DeclineRenewal => "decline_renewal",
            Self::RequestEarlyEnd => "request_early_end",
            Self::NoticeElapsed => "notice_elapsed",
            Self::EndForFault => "end_for_fault",
            Self::ReachTerm => "reach_term",
            Self::Reintegrate => "reintegrate",
            Self::Close => "close",
            Self::Withdraw => "withdraw",
        }
    }
}

impl Transition {
    /// Every transition, in the order of [`TRANSITIONS`].
    pub const ALL: [Transition; 25] = [
        Self::Send,
        Self::CounterPropose,
        Self::ReviseTerms,
        Self::AgreeTerms,
        Self::Reject,
        Self::SendToAgent,
        Self::AgentAgrees,
        Self::AgentDeclines,
        Self::InformAssembly,
        Self::SignConvention,
        Self::IssueArrete,
        Self::Start,
        Self::ProposeAmendment,
        Self::ConcludeAmendment,
        Self::AbandonAmendment,
        Self::RemindRenewal,
        Self::Renew,
        Self::DeclineRenewal,
        Self::RequestEarlyEnd,
        Self::NoticeElapsed,
        Self::EndForFault,
        Self::ReachTerm,
        Self::Reintegrate,
        Self::Close,
        Self::Withdraw,
    ];

    /// The French name of the action, for HR officers.
    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Send => "envoyer la proposition",
            Self::CounterPropose => "faire une contre-proposition",
            Self::ReviseTerms => "réviser les conditions",
            Self::AgreeTerms => "accepter les conditions",
            Self::Reject => "refuser la proposition",
            Self::SendToAgent => "transmettre le projet de convention à l'agent",
            Self::AgentAgrees => "enregistrer l'accord écrit de l'agent",
            Self::AgentDeclines => "enregistrer le refus de l'agent",
            Self::InformAssembly => "informer l'assemblée délibérante",
            Self::SignConvention => "signer la convention",
            Self::IssueArrete => "prendre l'arrêté de mise à disposition",
            Self::Start => "débuter la mise à disposition",
            Self::ProposeAmendment => "proposer un avenant",
            Self::ConcludeAmendment => "conclure l'avenant",
            Self::AbandonAmendment => "abandonner l'avenant",
            Self::RemindRenewal => "ouvrir la décision de renouvellement",
            Self::Renew => "renouveler",
            Self::DeclineRenewal => "ne pas renouveler",
            Self::RequestEarlyEnd => "demander une fin anticipée",
            Self::NoticeElapsed => "constater la fin du préavis",
            Self::EndForFault => "mettre fin pour faute disciplinaire",
            Self::ReachTerm => "constater le terme",
            Self::Reintegrate => "réintégrer l'agent",
            Self::Close => "clôturer",
            Self::Withdraw => "retirer la demande",
        }
    }

    /// The transition named by its wire value.
    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for Transition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A legal or procedural check run by a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Check {
    /// The agent's statut allows a MAD between these employers ([`STATUT_ELIGIBILITY`]).
    Eligibility,
    /// The period lasts at most [`MAX_PERIOD_MONTHS`].
    MaxPeriod,
    /// A waived reimbursement is allowed for this relation ([`WAIVER_RULES`]).
    WaiverAllowed,
    /// The convention draft has every mandatory clause ([`MANDATORY_CLAUSES`]).
    MandatoryClauses,
    /// Fired by the HR department that did not make the last proposal.
    Counterparty,
    /// Both employers' signatures are on the convention.
    BothSignatures,
    /// The agent agreed to the amendment and it is signed.
    AmendmentAgreed,
    /// The start date is reached.
    StartDateReached,
    /// The end date is reached.
    TermReached,
    /// The notice of the early-end request has elapsed.
    NoticeElapsed,
    /// Origin and host agree that a disciplinary fault ends the MAD without notice.
    FaultAgreedByBoth,
}

/// One row of the transition table.
#[derive(Debug, Clone, Copy)]
pub struct TransitionRule {
    /// The transition.
    pub transition: Transition,
    /// The states it may leave.
    pub from: &'static [MadState],
    /// The state it reaches.
    pub to: MadState,
    /// The parties that may fire it.
    pub parties: &'static [Party],
    /// The checks it runs, in order.
    pub checks: &'static [Check],
    /// The legal step, for messages and the audit trail.
    pub legal_basis: &'static str,
}

use MadState as S;
use Party as P;

const HR: &[Party] = &[P::OriginHr, P::HostHr];

/// The MAD workflow (domain.md §7.6), one row per transition.
pub const TRANSITIONS: &[TransitionRule] = &[
    TransitionRule {
        transition: Transition::Send,
        from: &[S::Draft],
        to: S::Proposed,
        parties: HR,
        checks: &[Check::Eligibility, Check::MaxPeriod],
        legal_basis: "CGFP L512-7, L512-8; décret 88-145 art. 35-1 (CDI)",
    },
    TransitionRule {
        transition: Transition::CounterPropose,
        from: &[S::Proposed],
        to: S::Negotiating,
        parties: HR,
        checks: &[Check::Counterparty],
        legal_basis: "décret 2008-580 (accord de l'organisme d'accueil)",
    },
    TransitionRule {
        transition: Transition::ReviseTerms,
        from: &[S::Negotiating],
        to: S::Proposed,
        parties: HR,
        checks: &[Check::Eligibility, Check::MaxPeriod],
        legal_basis: "décret 2008-580",
    },
    TransitionRule {
        transition: Transition::AgreeTerms,
        from: &[S::Proposed],
        to: S::TermsAgreed,
        parties: HR,
        checks: &[
            Check::Counterparty,
            Check::Eligibility,
            Check::MaxPeriod,
            Check::WaiverAllowed,
        ],
        legal_basis: "CGFP L512-15; décret 2008-580",
    },
    TransitionRule {
        transition: Transition::Reject,
        from: &[S::Proposed],
        to: S::Rejected,
        parties: HR,
        checks: &[Check::Counterparty],
        legal_basis: "décret 2008-580",
    },
    TransitionRule {
        transition: Transition::SendToAgent,
        from: &[S::TermsAgreed],
        to: S::AgentReview,
        parties: &[P::OriginHr],
        checks: &[Check::MandatoryClauses, Check::MaxPeriod],
        legal_basis: "décret 2008-580 (convention transmise à l'agent avant signature)",
    },
    TransitionRule {
        transition: Transition::AgentAgrees,
        from: &[S::AgentReview],
        to: S::AgentAgreed,
        parties: &[P::Agent],
        checks: &[],
        legal_basis: "CGFP L512-7 1°",
    },
    TransitionRule {
        transition: Transition::AgentDeclines,
        from: &[S::AgentReview],
        to: S::DeclinedByAgent,
        parties: &[P::Agent],
        checks: &[],
        legal_basis: "CGFP L512-7 1°",
    },
    TransitionRule {
        transition: Transition::InformAssembly,
        from: &[S::AgentAgreed],
        to: S::AssemblyInformed,
        parties: &[P::OriginAuthority],
        checks: &[],
        legal_basis: "CGFP L512-12 (information préalable de l'organe délibérant)",
    },
    TransitionRule {
        transition: Transition::SignConvention,
        from: &[S::AssemblyInformed],
        to: S::ConventionSigned,
        parties: &[P::OriginAuthority, P::HostHr],
        checks: &[Check::MandatoryClauses, Check::BothSignatures],
        legal_basis: "CGFP L512-7 2°",
    },
    TransitionRule {
        transition: Transition::IssueArrete,
        from: &[S::ConventionSigned],
        to: S::ArreteIssued,
        parties: &[P::OriginAuthority],
        checks: &[],
        legal_basis: "décret 2008-580 (arrêté de l'autorité territoriale d'origine)",
    },
    TransitionRule {
        transition: Transition::Start,
        from: &[S::ArreteIssued],
        to: S::Active,
        parties: &[P::System],
        checks: &[Check::StartDateReached],
        legal_basis: "décret 2008-580",
    },
    TransitionRule {
        transition: Transition::ProposeAmendment,
        from: &[S::Active],
        to: S::AmendmentPending,
        parties: HR,
        checks: &[],
        legal_basis: "décret 2008-580 (avenant)",
    },
    TransitionRule {
        transition: Transition::ConcludeAmendment,
        from: &[S::AmendmentPending],
        to: S::Active,
        parties: &[P::OriginHr],
        checks: &[
            Check::AmendmentAgreed,
            Check::MaxPeriod,
            Check::WaiverAllowed,
            Check::MandatoryClauses,
        ],
        legal_basis: "décret 2008-580 (avenant accepté par l'agent, arrêté modificatif)",
    },
    TransitionRule {
        transition: Transition::AbandonAmendment,
        from: &[S::AmendmentPending],
        to: S::Active,
        parties: HR,
        checks: &[],
        legal_basis: "décret 2008-580",
    },
    TransitionRule {
        transition: Transition::RemindRenewal,
        from: &[S::Active],
        to: S::RenewalPending,
        parties: &[P::System, P::OriginHr, P::HostHr],
        checks: &[],
        legal_basis: "décret 2008-580 (renouvellement par périodes de 3 ans au plus)",
    },
    TransitionRule {
        transition: Transition::Renew,
        from: &[S::RenewalPending],
        to: S::AgentReview,
        parties: &[P::OriginHr],
        checks: &[
            Check::Eligibility,
            Check::MaxPeriod,
            Check::WaiverAllowed,
            Check::MandatoryClauses,
        ],
        legal_basis: "décret 2008-580 (nouvel accord de l'agent, avenant, arrêté)",
    },
    TransitionRule {
        transition: Transition::DeclineRenewal,
        from: &[S::RenewalPending],
        to: S::Ending,
        parties: &[P::OriginHr, P::HostHr, P::Agent],
        checks: &[],
        legal_basis: "décret 2008-580",
    },
    TransitionRule {
        transition: Transition::RequestEarlyEnd,
        from: &[S::Active],
        to: S::EarlyEndRequested,
        parties: &[P::OriginHr, P::HostHr, P::Agent],
        checks: &[],
        legal_basis: "décret 2008-580 (fin anticipée, préavis prévu par la convention)",
    },
    TransitionRule {
        transition: Transition::NoticeElapsed,
        from: &[S::EarlyEndRequested],
        to: S::Ending,
        parties: &[P::System],
        checks: &[Check::NoticeElapsed],
        legal_basis: "décret 2008-580",
    },
    TransitionRule {
        transition: Transition::EndForFault,
        from: &[S::Active],
        to: S::Ending,
        parties: &[P::OriginAuthority],
        checks: &[Check::FaultAgreedByBoth],
        legal_basis: "décret 2008-580 (faute disciplinaire, sans préavis, accord origine et accueil)",
    },
    TransitionRule {
        transition: Transition::ReachTerm,
        from: &[S::Active],
        to: S::Ending,
        parties: &[P::System],
        checks: &[Check::TermReached],
        legal_basis: "décret 2008-580",
    },
    TransitionRule {
        transition: Transition::Reintegrate,
        from: &[S::Ending],
        to: S::Reintegrated,
        parties: &[P::OriginHr],
        checks: &[],
        legal_basis: "décret 2008-580 (réaffectation à l'origine ou prise en charge par le CDG)",
    },
    TransitionRule {
        transition: Transition::Close,
        from: &[S::Reintegrated],
        to: S::Closed,
        parties: &[P::OriginHr],
        checks: &[],
        legal_basis: "décret 2008-580 (remboursements soldés, rapports archivés)",
    },
    TransitionRule {
        transition: Transition::Withdraw,
        from: &[S::Draft, S::Proposed, S::Negotiating],
        to: S::Withdrawn,
        parties: HR,
        checks: &[],
        legal_basis: "—",
    },
];

/// The rule of `transition` in [`TRANSITIONS`].
pub fn rule(transition: Transition) -> Option<&'static TransitionRule> {
    TRANSITIONS.iter().find(|r| r.transition == transition)
}

/// Longest MAD period, in months (3 years, renewable by periods of at most 3 years).
pub const MAX_PERIOD_MONTHS: u32 = 36;

/// A fact about the two employers, from attachment and EPCI membership data (SIRENE,
/// BANATIC), which the node supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Relation {
    /// A collectivité and an établissement public of which it is a member or which is
    /// attached to it (either direction).
    MemberOrAttached,
    /// The origin is an EPCI and the host one of its member communes.
    EpciToMemberCommune,
    /// The host is a State administration or a hospital-sector body.
    HostStateOrFph,
    /// The host is the CSFPT.
    HostCsfpt,
    /// The host is an international intergovernmental organisation.
    HostInternationalOrganisation,
    /// The host is an EU institution or body.
    HostEuBody,
    /// The host is a foreign State.
    HostForeignState,
}

/// Whether a statut allows a MAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    /// Always (within the other rules).
    Always,
    /// Only when one of these relations holds between origin and host.
    WhenRelation(&'static [Relation]),
    /// Never.
    Never,
}

/// Who may be *mis à disposition* (domain.md §1.3), with the source of each rule.
pub const STATUT_ELIGIBILITY: &[(AgentStatut, Eligibility, &str)] = &[
    (
        AgentStatut::FonctionnaireTitulaire,
        Eligibility::Always,
        "CGFP L512-6",
    ),
    (
        AgentStatut::FonctionnaireStagiaire,
        Eligibility::Never,
        "a fonctionnaire stagiaire cannot be mis à disposition",
    ),
    (
        AgentStatut::ContractuelCdi,
        Eligibility::WhenRelation(&[
            Relation::MemberOrAttached,
            Relation::EpciToMemberCommune,
            Relation::HostStateOrFph,
        ]),
        "décret 88-145 art. 35-1 (CDI: collectivité ↔ établissement membre ou rattaché, EPCI → communes membres, État ou FPH)",
    ),
    (
        AgentStatut::ContractuelCdd,
        Eligibility::Never,
        "a contractuel en CDD cannot be mis à disposition",
    ),
    (
        AgentStatut::ContractuelProjet,
        Eligibility::Never,
        "a contrat de projet cannot be mis à disposition",
    ),
    (
        AgentStatut::Apprenti,
        Eligibility::Never,
        "an apprentice cannot be mis à disposition",
    ),
    (
        AgentStatut::Autre,
        Eligibility::Never,
        "only fonctionnaires titulaires and, in some cases, CDI contractuels can be mis à disposition",
    ),
];

/// When the host may be exempted from reimbursing (CGFP L512-15, domain.md §1.7): the
/// waiver ground and the relation that must hold.
pub const WAIVER_RULES: &[(WaiverReason, Relation, &str)] = &[
    (
        WaiverReason::CollectiviteEpaMembreOuRattache,
        Relation::MemberOrAttached,
        "CGFP L512-15: collectivité ↔ établissement public dont elle est membre ou qui lui est rattaché",
    ),
    (
        WaiverReason::Csfpt,
        Relation::HostCsfpt,
        "CGFP L512-15: CSFPT",
    ),
    (
        WaiverReason::OrganisationInternationale,
        Relation::HostInternationalOrganisation,
        "CGFP L512-15: organisation internationale intergouvernementale",
    ),
    (
        WaiverReason::Ue,
        Relation::HostEuBody,
        "CGFP L512-15: institution ou organe de l'Union européenne",
    ),
    (
        WaiverReason::EtatEtranger,
        Relation::HostForeignState,
        "CGFP L512-15: État étranger",
    ),
];

/// The clauses of a MAD convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConventionClause {
    /// Nature of the activities.
    NatureActivites,
    /// Conditions of employment.
    ConditionsEmploi,
    /// How the activities are controlled and evaluated.
    ControleEvaluation,
    /// Reimbursement terms, or the extent and duration of the waiver.
    Remboursement,
    /// Nature of the complément de rémunération paid by the host.
    ComplementRemuneration,
    /// Notice for an early end.
    Preavis,
    /// Duration.
    Duree,
    /// Place and working time.
    LieuTempsTravail,
    /// Conditions of renewal and early end.
    RenouvellementFinAnticipee,
    /// Reminder of ethics obligations (CGFP L121-1 à L121-11).
    Deontologie,
}

impl ConventionClause {
    /// English label.
    pub fn label(self) -> &'static str {
        match self {
            Self::NatureActivites => "the clause on the nature of the activities",
            Self::ConditionsEmploi => "the clause on the conditions of employment",
            Self::ControleEvaluation => "the clause on control and evaluation",
            Self::Remboursement => {
                "the clause on reimbursement (or the waiver's extent and duration)"
            }
            Self::ComplementRemuneration => "the clause on the complément de rémunération",
            Self::Preavis => "the clause on notice for an early end",
            Self::Duree => "the clause on duration",
            Self::LieuTempsTravail => "the clause on place and working time",
            Self::RenouvellementFinAnticipee => "the clause on renewal and early end",
            Self::Deontologie => "the reminder of ethics obligations",
        }
    }

    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            Self::NatureActivites => "nature des activités",
            Self::ConditionsEmploi => "conditions d'emploi",
            Self::ControleEvaluation => "modalités du contrôle et de l'évaluation des activités",
            Self::Remboursement => {
                "modalités de remboursement (ou étendue et durée de l'exonération)"
            }
            Self::ComplementRemuneration => "nature du complément de rémunération",
            Self::Preavis => "règles de préavis en cas de fin anticipée",
            Self::Duree => "durée",
            Self::LieuTempsTravail => "lieu et temps de travail",
            Self::RenouvellementFinAnticipee => "conditions de renouvellement et de fin anticipée",
            Self::Deontologie => "rappel des obligations déontologiques (CGFP L121-1 à L121-11)",
        }
    }
}

impl fmt::Display for ConventionClause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// When a clause is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClauseCondition {
    /// In every convention.
    Always,
    /// When the host pays a complément de rémunération.
    IfComplement,
}

/// The clauses a convention must contain (domain.md §1.5: décret 2008-580, plus the
/// décret 2022-1682 clauses Passerelle's template requires as good practice).
pub const MANDATORY_CLAUSES: &[(ConventionClause, ClauseCondition, &str)] = &[
    (
        ConventionClause::NatureActivites,
        ClauseCondition::Always,
        "décret 2008-580",
    ),
    (
        ConventionClause::ConditionsEmploi,
        ClauseCondition::Always,
        "décret 2008-580",
    ),
    (
        ConventionClause::ControleEvaluation,
        ClauseCondition::Always,
        "décret 2008-580",
    ),
    (
        ConventionClause::Remboursement,
        ClauseCondition::Always,
        "décret 2008-580",
    ),
    (
        ConventionClause::ComplementRemuneration,
        ClauseCondition::IfComplement,
        "décret 2008-580",
    ),
    (
        ConventionClause::Preavis,
        ClauseCondition::Always,
        "décret 2008-580",
    ),
    (
        ConventionClause::Duree,
        ClauseCondition::Always,
        "décret 2022-1682 (template)",
    ),
    (
        ConventionClause::LieuTempsTravail,
        ClauseCondition::Always,
        "décret 2022-1682 (template)",
    ),
    (
        ConventionClause::RenouvellementFinAnticipee,
        ClauseCondition::Always,
        "décret 2022-1682 (template)",
    ),
    (
        ConventionClause::Deontologie,
        ClauseCondition::Always,
        "décret 2022-1682 (template), CGFP L121-1 à L121-11",
    ),
];

/// The mandatory clauses missing from `present`, given the terms.
pub fn missing_clauses(
    present: &BTreeSet<ConventionClause>,
    terms: &MadTerms,
) -> Vec<ConventionClause> {
    MANDATORY_CLAUSES
        .iter()
        .filter(|(clause, cond, _)| {
            let required = match cond {
                ClauseCondition::Always => true,
                ClauseCondition::IfComplement => terms.complement_remuneration.is_some(),
            };
            required && !present.contains(clause)
        })
        .map(|(clause, _, _)| *clause)
        .collect()
}

/// The state of a request as the machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MadRequestState {
    /// Current state.
    pub state: MadState,
    /// The HR department that made the proposal on the table, if any.
    pub last_proposer: Option<Party>,
}

impl MadRequestState {
    /// A new draft.
    pub fn draft() -> Self {
        Self {
            state: MadState::Draft,
            last_proposer: None,
        }
    }
}

/// What the checks need to know, supplied by the node.
#[derive(Debug, Clone)]
pub struct MadContext<'a> {
    /// The terms on the table (the new ones for a renewal or amendment).
    pub terms: &'a MadTerms,
    /// The agent's statut.
    pub agent_statut: AgentStatut,
    /// Relations known between origin and host.
    pub relations: BTreeSet<Relation>,
    /// The clauses of the convention draft (or avenant).
    pub convention_clauses: BTreeSet<ConventionClause>,
    /// Today, in the node's time zone.
    pub today: Date,
    /// Whether the origin's signature is on the convention.
    pub signed_by_origin: bool,
    /// Whether the host's signature is on the convention.
    pub signed_by_host: bool,
    /// Whether the agent agreed to the amendment and it is signed by both.
    pub amendment_agreed: bool,
    /// Whether origin and host agree that a disciplinary fault ends the MAD.
    pub fault_agreed_by_both: bool,
    /// When an early end was requested.
    pub early_end_requested_on: Option<Date>,
}

impl<'a> MadContext<'a> {
    /// A context with the terms, statut and date, and nothing else known yet.
    pub fn new(terms: &'a MadTerms, agent_statut: AgentStatut, today: Date) -> Self {
        Self {
            terms,
            agent_statut,
            relations: BTreeSet::new(),
            convention_clauses: BTreeSet::new(),
            today,
            signed_by_origin: false,
            signed_by_host: false,
            amendment_agreed: false,
            fault_agreed_by_both: false,
            early_end_requested_on: None,
        }
    }
}

/// Default notice for an early end when the terms do not say (days).
pub const DEFAULT_NOTICE_DAYS: u32 = 30;

/// Why a transition is refused. Each message names the state, the transition and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MadError {
    /// The request is in a final state.
    #[error(
        "{transition} refused: the MAD request is {state}, a final state that no transition leaves"
    )]
    FinalState {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
    },
    /// The transition does not leave this state.
    #[error("{transition} is not possible from state {state}; it applies to: {allowed}")]
    WrongState {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// The states it leaves, comma-separated.
        allowed: String,
    },
    /// The party may not fire this transition.
    #[error("{transition} from {state} cannot be fired by {party}; only by: {allowed}")]
    WrongParty {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// Who tried.
        party: Party,
        /// Who may, comma-separated.
        allowed: String,
    },
    /// Only the counterparty of the last proposal may answer it.
    #[error(
        "{transition} from {state} must come from the other employer than the one that made the proposal ({party} made it)"
    )]
    NotCounterparty {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// Who tried (and made the proposal).
        party: Party,
    },
    /// The agent's statut does not allow the MAD.
    #[error(
        "{transition} from {state} refused: agent statut {statut:?} is not eligible for a MAD between these employers ({rule})"
    )]
    Ineligible {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// The statut.
        statut: AgentStatut,
        /// The rule and its source.
        rule: &'static str,
    },
    /// The period exceeds 36 months.
    #[error(
        "{transition} from {state} refused: the period lasts {months} months, more than the 36 allowed per period (CGFP L512-7, décret 2008-580); renew instead"
    )]
    TooLong {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// The period's length.
        months: u32,
    },
    /// The end date precedes the start date.
    #[error(
        "{transition} from {state} refused: the end date {end} precedes the start date {start}"
    )]
    DatesReversed {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// Start.
        start: Date,
        /// End.
        end: Date,
    },
    /// The reimbursement waiver is not allowed between these employers.
    #[error(
        "{transition} from {state} refused: reimbursement waiver {reason:?} requires {required:?} between origin and host ({rule}); otherwise the host reimburses"
    )]
    WaiverNotAllowed {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// The waiver ground claimed (None when absent).
        reason: Option<WaiverReason>,
        /// The relation that must hold.
        required: Option<Relation>,
        /// The rule and its source.
        rule: &'static str,
    },
    /// The convention lacks mandatory clauses.
    #[error(
        "{transition} from {state} refused: the convention lacks {missing:?} (décret 2008-580)"
    )]
    MissingClauses {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// The clauses missing.
        missing: Vec<ConventionClause>,
    },
    /// A procedural precondition is not met (date not reached, signature missing…).
    #[error("{transition} from {state} refused: {what}")]
    Precondition {
        /// Current state.
        state: MadState,
        /// Transition attempted.
        transition: Transition,
        /// The precondition, in words.
        what: &'static str,
    },
}

impl MadError {
    /// The French message for HR officers.
    pub fn message_fr(&self) -> String {
        match self {
            MadError::FinalState { state, .. } => format!(
                "La demande de mise à disposition est close (état « {state} ») : aucune action n'est plus possible."
            ),
            MadError::WrongState {
                state, transition, ..
            } => format!(
                "L'action « {} » n'est pas possible dans l'état « {} ».",
                transition.label_fr(),
                state.label_fr()
            ),
            MadError::WrongParty {
                transition, party, ..
            } => format!(
                "L'action « {} » ne peut pas être déclenchée par {}.",
                transition.label_fr(),
                party.label_fr()
            ),
            MadError::NotCounterparty { .. } => {
                "Seul l'autre employeur peut répondre à cette proposition.".to_owned()
            }
            MadError::Ineligible { statut, .. } => format!(
                "La situation statutaire de l'agent ({}) ne permet pas cette mise à disposition : seuls les fonctionnaires titulaires, et les contractuels en CDI entre une collectivité et un établissement qui en est membre ou qui lui est rattaché, d'un EPCI vers ses communes membres ou vers l'État ou la fonction publique hospitalière (décret 88-145 art. 35-1), peuvent être mis à disposition ; jamais un stagiaire, un CDD, un contrat de projet ni un apprenti.",
                statut_fr(*statut)
            ),
            MadError::TooLong { months, .. } => format!(
                "La durée d'une mise à disposition ne peut excéder 36 mois (CGFP L512-7, décret 2008-580) ; durée demandée : {months} mois."
            ),
            MadError::DatesReversed { .. } => "La date de fin précède la date de début.".to_owned(),
            MadError::WaiverNotAllowed { reason, .. } => format!(
                "L'exonération de remboursement{} n'est possible que dans les cas prévus par l'article L512-15 du CGFP (entre une collectivité et un établissement public dont elle est membre ou qui lui est rattaché, vers le CSFPT, une organisation internationale, l'Union européenne ou un État étranger) ; entre ces deux employeurs, l'organisme d'accueil doit rembourser la rémunération et les charges.",
                reason
                    .map(|r| format!(" demandée ({})", waiver_fr(r)))
                    .unwrap_or_default()
            ),
            MadError::MissingClauses { missing, .. } => format!(
                "La convention doit comporter : {}.",
                missing
                    .iter()
                    .map(|c| c.label_fr())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            MadError::Precondition { what, .. } => {
                format!("Condition non remplie : {}.", precondition_fr(what))
            }
        }
    }
}

impl MadError {
    /// The state the request was in.
    pub fn state(&self) -> MadState {
        match self {
            Self::FinalState { state, .. }
            | Self::WrongState { state, .. }
            | Self::WrongParty { state, .. }
            | Self::NotCounterparty { state, .. }
            | Self::Ineligible { state, .. }
            | Self::TooLong { state, .. }
            | Self::DatesReversed { state, .. }
            | Self::WaiverNotAllowed { state, .. }
            | Self::MissingClauses { state, .. }
            | Self::Precondition { state, .. } => *state,
        }
    }

    /// The transition refused.
    pub fn transition(&self) -> Transition {
        match self {
            Self::FinalState { transition, .. }
            | Self::WrongState { transition, .. }
            | Self::WrongParty { transition, .. }
            | Self::NotCounterparty { transition, .. }
            | Self::Ineligible { transition, .. }
            | Self::TooLong { transition, .. }
            | Self::DatesReversed { transition, .. }
            | Self::WaiverNotAllowed { transition, .. }
            | Self::MissingClauses { transition, .. }
            | Self::Precondition { transition, .. } => *transition,
        }
    }

    /// The full French explanation for HR officers: the action and the state, what
    /// refuses it, who may fire it from which states, and its legal basis.
    pub fn detail_fr(&self) -> String {
        let (state, transition) = (self.state(), self.transition());
        let mut out = format!(
            "Action « {} » ({transition}) refusée : la demande de mise à disposition est à l'état « {} » ({state}). {}",
            transition.label_fr(),
            state.label_fr(),
            self.message_fr()
        );
        if let Some(row) = rule(transition) {
            let who = row
                .parties
                .iter()
                .map(|p| p.label_fr())
                .collect::<Vec<_>>()
                .join(" ou ");
            let from = row
                .from
                .iter()
                .map(|s| format!("« {} »", s.label_fr()))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!(
                " Qui peut la déclencher : {who}, depuis l'état {from}."
            ));
            if row.legal_basis != "—" {
                out.push_str(&format!(" Fondement : {}.", row.legal_basis));
            }
        }
        out
    }
}

/// The French text of a precondition of [`MadError::Precondition`].
fn precondition_fr(what: &str) -> &str {
    match what {
        "the convention needs the signatures of both employers" => {
            "la convention doit porter la signature des deux employeurs"
        }
        "the agent must agree to the avenant in writing and both employers sign it" => {
            "l'agent doit donner son accord écrit sur l'avenant, signé par les deux employeurs"
        }
        "the start date is not reached" => "la date de début n'est pas atteinte",
        "the end date is not passed" => "la date de fin n'est pas dépassée",
        "the date of the early-end request is unknown" => {
            "la date de la demande de fin anticipée est inconnue"
        }
        "the notice agreed in the convention has not elapsed" => {
            "le préavis prévu par la convention n'est pas écoulé"
        }
        "an end for disciplinary fault without notice needs the agreement of both origin and host" => {
            "une fin pour faute disciplinaire sans préavis exige l'accord de l'employeur d'origine et de l'organisme d'accueil"
        }
        other => other,
    }
}

/// The French name of a statut.
pub fn statut_fr(statut: AgentStatut) -> &'static str {
    match statut {
        AgentStatut::FonctionnaireTitulaire => "fonctionnaire titulaire",
        AgentStatut::FonctionnaireStagiaire => "fonctionnaire stagiaire",
        AgentStatut::ContractuelCdi => "contractuel en CDI",
        AgentStatut::ContractuelCdd => "contractuel en CDD",
        AgentStatut::ContractuelProjet => "contrat de projet",
        AgentStatut::Apprenti => "apprenti",
        _ => "autre situation",
    }
}

/// The French name of a waiver ground.
pub fn waiver_fr(reason: WaiverReason) -> &'static str {
    match reason {
        WaiverReason::CollectiviteEpaMembreOuRattache => {
            "collectivité et établissement public membre ou rattaché"
        }
        WaiverReason::Csfpt => "CSFPT",
        WaiverReason::OrganisationInternationale => "organisation internationale",
        WaiverReason::Ue => "Union européenne",
        WaiverReason::EtatEtranger => "État étranger",
    }
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn run_check(
    check: Check,
    current: &MadRequestState,
    transition: Transition,
    actor: Party,
    ctx: &MadContext<'_>,
) -> Result<(), MadError> {
    let state = current.state;
    let pre = |what| MadError::Precondition {
        state,
        transition,
        what,
    };
    match check {
        Check::Counterparty => {
            if current.last_proposer == Some(actor) {
                return Err(MadError::NotCounterparty {
                    state,
                    transition,
                    party: actor,
                });
            }
        }
        Check::Eligibility => {
            let (eligibility, source) = STATUT_ELIGIBILITY
                .iter()
                .find(|(s, _, _)| *s == ctx.agent_statut)
                .map_or((Eligibility::Never, "statut not listed"), |(_, e, src)| {
                    (*e, *src)
                });
            let ok = match eligibility {
                Eligibility::Always => true,
                Eligibility::Never => false,
                Eligibility::WhenRelation(rels) => rels.iter().any(|r| ctx.relations.contains(r)),
            };
            if !ok {
                return Err(MadError::Ineligible {
                    state,
                    transition,
                    statut: ctx.agent_statut,
                    rule: source,
                });
            }
        }
        Check::MaxPeriod => {
            let t = ctx.terms;
            if t.end_date < t.start_date {
                return Err(MadError::DatesReversed {
                    state,
                    transition,
                    start: t.start_date,
                    end: t.end_date,
                });
            }
            let months = t.months();
            if months > MAX_PERIOD_MONTHS {
                return Err(MadError::TooLong {
                    state,
                    transition,
                    months,
                });
            }
        }
        Check::WaiverAllowed => {
            let re = &ctx.terms.reimbursement;
            if re.mode == ReimbursementMode::Waived {
                let Some(reason) = re.waiver_reason else {
                    return Err(MadError::WaiverNotAllowed {
                        state,
                        transition,
                        reason: None,
                        required: None,
                        rule: "a waiver needs its legal ground (CGFP L512-15)",
                    });
                };
                let (required, rule) = WAIVER_RULES
                    .iter()
                    .find(|(w, _, _)| *w == reason)
                    .map_or((None, "waiver ground not listed"), |(_, r, src)| {
                        (Some(*r), *src)
                    });
                if !required.is_some_and(|r| ctx.relations.contains(&r)) {
                    return Err(MadError::WaiverNotAllowed {
                        state,
                        transition,
                        reason: Some(reason),
                        required,
                        rule,
                    });
                }
            }
        }
        Check::MandatoryClauses => {
            let missing = missing_clauses(&ctx.convention_clauses, ctx.terms);
            if !missing.is_empty() {
                return Err(MadError::MissingClauses {
                    state,
                    transition,
                    missing,
                });
            }
        }
        Check::BothSignatures => {
            if !(ctx.signed_by_origin && ctx.signed_by_host) {
                return Err(pre("the convention needs the signatures of both employers"));
            }
        }
        Check::AmendmentAgreed => {
            if !ctx.amendment_agreed {
                return Err(pre(
                    "the agent must agree to the avenant in writing and both employers sign it",
                ));
            }
        }
        Check::StartDateReached => {
            if ctx.today < ctx.terms.start_date {
                return Err(pre("the start date is not reached"));
            }
        }
        Check::TermReached => {
            if ctx.today <= ctx.terms.end_date {
                return Err(pre("the end date is not passed"));
            }
        }
        Check::NoticeElapsed => {
            let Some(requested) = ctx.early_end_requested_on else {
                return Err(pre("the date of the early-end request is unknown"));
            };
            let notice = ctx.terms.notice_days.unwrap_or(DEFAULT_NOTICE_DAYS);
            let ends = requested.checked_add(time::Duration::days(i64::from(notice)));
            if ends.is_none_or(|e| ctx.today < e) {
                return Err(pre("the notice agreed in the convention has not elapsed"));
            }
        }
        Check::FaultAgreedByBoth => {
            if !ctx.fault_agreed_by_both {
                return Err(pre(
                    "an end for disciplinary fault without notice needs the agreement of both origin and host",
                ));
            }
        }
    }
    Ok(())
}

/// Fires `transition` by `actor` on `current`, running the checks of its row in
/// [`TRANSITIONS`].
///
/// # Errors
/// A [`MadError`] naming the state, the transition and the rule that refuses it.
///
/// # Examples
/// ```
/// use passerelle_protocol::mad::{apply, MadContext, MadRequestState, MadState, Party, Transition};
/// # let terms: passerelle_protocol::vocab::MadTerms = serde_json::from_value(serde_json::json!({
/// #   "activities": "Appui au projet", "quotitePct": 50, "startDate": "2027-01-01",
/// #   "endDate": "2028-12-31", "reimbursement": {"mode": "full"}})).unwrap();
/// use passerelle_protocol::vocab::AgentStatut;
/// let ctx = MadContext::new(&terms, AgentStatut::FonctionnaireTitulaire, time::macros::date!(2026-11-23));
/// let sent = apply(&MadRequestState::draft(), Transition::Send, Party::HostHr, &ctx)?;
/// assert_eq!(sent.state, MadState::Proposed);
/// // The same employer cannot accept its own proposal.
/// assert!(apply(&sent, Transition::AgreeTerms, Party::HostHr, &ctx).is_err());
/// # Ok::<(), passerelle_protocol::mad::MadError>(())
/// ```
pub fn apply(
    current: &MadRequestState,
    transition: Transition,
    actor: Party,
    ctx: &MadContext<'_>,
) -> Result<MadRequestState, MadError> {
    let state = current.state;
    if state.is_final() {
        return Err(MadError::FinalState { state, transition });
    }
    let row = rule(transition)
        .filter(|r| r.from.contains(&state))
        .ok_or_else(|| MadError::WrongState {
            state,
            transition,
            allowed: rule(transition).map_or_else(String::new, |r| join(r.from)),
        })?;
    if !row.parties.contains(&actor) {
        return Err(MadError::WrongParty {
            state,
            transition,
            party: actor,
            allowed: join(row.parties),
        });
    }
    for check in row.checks {
        run_check(*check, current, transition, actor, ctx)?;
    }
    let last_proposer = match transition {
        Transition::Send | Transition::CounterPropose | Transition::ReviseTerms => Some(actor),
        _ => current.last_proposer,
    };
    Ok(MadRequestState {
        state: row.to,
        last_proposer,
    })
}

/// The transitions that leave `state` (empty for final states).
pub fn transitions_from(state: MadState) -> impl Iterator<Item = &'static TransitionRule> {
    TRANSITIONS
        .iter()
        .filter(move |r| !state.is_final() && r.from.contains(&state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const ALL_TRANSITIONS: [Transition; 25] = [
        Transition::Send,
        Transition::CounterPropose,
        Transition::ReviseTerms,
        Transition::AgreeTerms,
        Transition::Reject,
        Transition::SendToAgent,
        Transition::AgentAgrees,
        Transition::AgentDeclines,
        Transition::InformAssembly,
        Transition::SignConvention,
        Transition::IssueArrete,
        Transition::Start,
        Transition::ProposeAmendment,
        Transition::ConcludeAmendment,
        Transition::AbandonAmendment,
        Transition::RemindRenewal,
        Transition::Renew,
        Transition::DeclineRenewal,
        Transition::RequestEarlyEnd,
        Transition::NoticeElapsed,
        Transition::EndForFault,
        Transition::ReachTerm,
        Transition::Reintegrate,
        Transition::Close,
        Transition::Withdraw,
    ];

    fn terms(start: &str, end: &str) -> MadTerms {
        serde_json::from_value(serde_json::json!({
            "activities": "Appui au déploiement du très haut débit",
            "quotitePct": 50,
            "startDate": start,
            "endDate": end,
            "reimbursement": {"mode": "full"},
            "noticeDays": 60
        }))
        .unwrap()
    }

    fn all_clauses() -> BTreeSet<ConventionClause> {
        MANDATORY_CLAUSES.iter().map(|(c, _, _)| *c).collect()
    }

    fn at(state: MadState, last_proposer: Option<Party>) -> MadRequestState {
        MadRequestState {
            state,
            last_proposer,
        }
    }

    /// A context where every precondition holds (today after the term).
    fn ok_ctx(t: &MadTerms) -> MadContext<'_> {
        let mut c = MadContext::new(
            t,
            AgentStatut::FonctionnaireTitulaire,
            date!(2030 - 01 - 01),
        );
        c.convention_clauses = all_clauses();
        c.signed_by_origin = true;
        c.signed_by_host = true;
        c.amendment_agreed = true;
        c.fault_agreed_by_both = true;
        c.early_end_requested_on = Some(date!(2028 - 01 - 01));
        c
    }

    #[test]
    fn table_is_complete_and_consistent() {
        for t in ALL_TRANSITIONS {
            assert_eq!(
                TRANSITIONS.iter().filter(|r| r.transition == t).count(),
                1,
                "{t} must have exactly one row"
            );
        }
        assert_eq!(TRANSITIONS.len(), ALL_TRANSITIONS.len());
        for r in TRANSITIONS {
            assert!(
                !r.from.is_empty() && !r.parties.is_empty(),
                "{}",
                r.transition
            );
            for s in r.from {
                assert!(!s.is_final(), "{} leaves final state {s}", r.transition);
            }
        }
        for s in MadState::ALL {
            let out = transitions_from(s).count();
            assert_eq!(out == 0, s.is_final(), "state {s}: {out} transitions out");
        }
        // Every state but draft is reached by some transition.
        for s in MadState::ALL.into_iter().filter(|s| *s != MadState::Draft) {
            assert!(TRANSITIONS.iter().any(|r| r.to == s), "{s} unreachable");
        }
    }

    #[test]
    fn every_transition_succeeds_from_each_of_its_states_for_each_party() {
        let t = terms("2027-01-01", "2028-12-31");
        let ctx = ok_ctx(&t);
        for row in TRANSITIONS {
            for from in row.from {
                for party in row.parties {
                    // The counterparty check: the proposal on the table is the other HR's.
                    let other = if *party == Party::OriginHr {
                        Party::HostHr
                    } else {
                        Party::OriginHr
                    };
                    let next = apply(&at(*from, Some(other)), row.transition, *party, &ctx)
                        .unwrap_or_else(|e| {
                            panic!("{} from {from} by {party}: {e}", row.transition)
                        });
                    assert_eq!(next.state, row.to);
                }
            }
        }
    }

    #[test]
    fn full_lifecycle_with_amendment_renewal_and_early_end() {
        let t = terms("2027-01-01", "2028-12-31");
        let mut ctx = MadContext::new(
            &t,
            AgentStatut::FonctionnaireTitulaire,
            date!(2026 - 11 - 23),
        );
        let mut s = MadRequestState::draft();
        let step = |s: &mut MadRequestState, tr, p, ctx: &MadContext<'_>| {
            *s = apply(s, tr, p, ctx).unwrap_or_else(|e| panic!("{tr} by {p}: {e}"));
        };
        step(&mut s, Transition::Send, Party::HostHr, &ctx);
        assert_eq!(s.last_proposer, Some(Party::HostHr));
        step(&mut s, Transition::CounterPropose, Party::OriginHr, &ctx);
        assert_eq!(s.state, MadState::Negotiating);
        step(&mut s, Transition::ReviseTerms, Party::OriginHr, &ctx);
        step(&mut s, Transition::AgreeTerms, Party::HostHr, &ctx);
        assert_eq!(s.state, MadState::TermsAgreed);
        ctx.convention_clauses = all_clauses();
        step(&mut s, Transition::SendToAgent, Party::OriginHr, &ctx);
        step(&mut s, Transition::AgentAgrees, Party::Agent, &ctx);
        step(
            &mut s,
            Transition::InformAssembly,
            Party::OriginAuthority,
            &ctx,
        );
        ctx.signed_by_origin = true;
        ctx.signed_by_host = true;
        step(&mut s, Transition::SignConvention, Party::HostHr, &ctx);
        step(
            &mut s,
            Transition::IssueArrete,
            Party::OriginAuthority,
            &ctx,
        );
        ctx.today = date!(2027 - 01 - 01);
        step(&mut s, Transition::Start, Party::System, &ctx);
        assert_eq!(s.state, MadState::Active);
        step(&mut s, Transition::ProposeAmendment, Party::HostHr, &ctx);
        ctx.amendment_agreed = true;
        step(&mut s, Transition::ConcludeAmendment, Party::OriginHr, &ctx);
        step(&mut s, Transition::RemindRenewal, Party::System, &ctx);
        let renewed = terms("2029-01-01", "2031-12-31");
        let mut rctx = ctx.clone();
        rctx.terms = &renewed;
        step(&mut s, Transition::Renew, Party::OriginHr, &rctx);
        assert_eq!(s.state, MadState::AgentReview);
        step(&mut s, Transition::AgentAgrees, Party::Agent, &rctx);
        step(
            &mut s,
            Transition::InformAssembly,
            Party::OriginAuthority,
            &rctx,
        );
        step(
            &mut s,
            Transition::SignConvention,
            Party::OriginAuthority,
            &rctx,
        );
        step(
            &mut s,
            Transition::IssueArrete,
            Party::OriginAuthority,
            &rctx,
        );
        rctx.today = date!(2029 - 01 - 01);
        step(&mut s, Transition::Start, Party::System, &rctx);
        step(&mut s, Transition::RequestEarlyEnd, Party::Agent, &rctx);
        rctx.early_end_requested_on = Some(date!(2029 - 06 - 01));
        rctx.today = date!(2029 - 07 - 31);
        step(&mut s, Transition::NoticeElapsed, Party::System, &rctx);
        step(&mut s, Transition::Reintegrate, Party::OriginHr, &rctx);
        step(&mut s, Transition::Close, Party::OriginHr, &rctx);
        assert_eq!(s.state, MadState::Closed);
    }

    #[test]
    fn final_states_have_no_way_out() {
        let t = terms("2027-01-01", "2028-12-31");
        let ctx = ok_ctx(&t);
        for s in MadState::ALL.into_iter().filter(|s| s.is_final()) {
            for tr in ALL_TRANSITIONS {
                for p in [
                    Party::OriginHr,
                    Party::HostHr,
                    Party::Agent,
                    Party::OriginAuthority,
                    Party::System,
                ] {
                    let err = apply(&at(s, None), tr, p, &ctx).unwrap_err();
                    assert_eq!(
                        err,
                        MadError::FinalState {
                            state: s,
                            transition: tr
                        }
                    );
                    assert!(err.to_string().contains(s.as_str()));
                }
            }
        }
    }

    #[test]
    fn wrong_state_and_wrong_party() {
        let t = terms("2027-01-01", "2028-12-31");
        let ctx = ok_ctx(&t);
        let err = apply(
            &MadRequestState::draft(),
            Transition::Start,
            Party::System,
            &ctx,
        )
        .unwrap_err();
        assert!(matches!(err, MadError::WrongState { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("start") && msg.contains("draft") && msg.contains("arrete_issued"),
            "{msg}"
        );
        for (state, tr, party) in [
            (MadState::Draft, Transition::Send, Party::Agent),
            (
                MadState::ConventionSigned,
                Transition::IssueArrete,
                Party::HostHr,
            ),
            (
                MadState::AgentReview,
                Transition::AgentAgrees,
                Party::OriginHr,
            ),
            (
                MadState::AgentAgreed,
                Transition::InformAssembly,
                Party::HostHr,
            ),
            (MadState::ArreteIssued, Transition::Start, Party::OriginHr),
            (MadState::Active, Transition::EndForFault, Party::HostHr),
            (MadState::Ending, Transition::Reintegrate, Party::HostHr),
        ] {
            let err = apply(&at(state, None), tr, party, &ctx).unwrap_err();
            assert!(
                matches!(err, MadError::WrongParty { .. }),
                "{tr} by {party}: {err}"
            );
            assert!(err.to_string().contains(party.as_str()));
            assert!(!err.message_fr().is_empty());
        }
    }

    #[test]
    fn counterparty_only_answers_a_proposal() {
        let t = terms("2027-01-01", "2028-12-31");
        let ctx = ok_ctx(&t);
        let proposed = at(MadState::Proposed, Some(Party::HostHr));
        for tr in [
            Transition::AgreeTerms,
            Transition::Reject,
            Transition::CounterPropose,
        ] {
            let err = apply(&proposed, tr, Party::HostHr, &ctx).unwrap_err();
            assert!(
                matches!(err, MadError::NotCounterparty { .. }),
                "{tr}: {err}"
            );
            apply(&proposed, tr, Party::OriginHr, &ctx).unwrap();
        }
        // Either employer may withdraw before agreement.
        assert_eq!(
            apply(&proposed, Transition::Withdraw, Party::HostHr, &ctx)
                .unwrap()
                .state,
            MadState::Withdrawn
        );
    }

    #[test]
    fn eligibility_by_statut_is_data() {
        let t = terms("2027-01-01", "2028-12-31");
        let mut ctx = ok_ctx(&t);
        for (statut, eligibility, _) in STATUT_ELIGIBILITY {
            ctx.agent_statut = *statut;
            ctx.relations.clear();
            let r = apply(
                &MadRequestState::draft(),
                Transition::Send,
                Party::OriginHr,
                &ctx,
            );
            match eligibility {
                Eligibility::Always => assert!(r.is_ok(), "{statut:?}"),
                Eligibility::Never | Eligibility::WhenRelation(_) => {
                    let err = r.unwrap_err();
                    assert!(
                        matches!(err, MadError::Ineligible { .. }),
                        "{statut:?}: {err}"
                    );
                }
            }
        }
        ctx.agent_statut = AgentStatut::ContractuelCdi;
        for rel in [
            Relation::MemberOrAttached,
            Relation::EpciToMemberCommune,
            Relation::HostStateOrFph,
        ] {
            ctx.relations = BTreeSet::from([rel]);
            apply(
                &MadRequestState::draft(),
                Transition::Send,
                Party::OriginHr,
                &ctx,
            )
            .unwrap();
        }
        ctx.relations = BTreeSet::from([Relation::HostCsfpt]);
        assert!(
            apply(
                &MadRequestState::draft(),
                Transition::Send,
                Party::OriginHr,
                &ctx
            )
            .is_err()
        );
        ctx.agent_statut = AgentStatut::FonctionnaireStagiaire;
        ctx.relations = BTreeSet::from([Relation::MemberOrAttached]);
        let err = apply(
            &MadRequestState::draft(),
            Transition::Send,
            Party::OriginHr,
            &ctx,
        )
        .unwrap_err();
        assert!(err.to_string().contains("stagiaire"), "{err}");
    }

    #[test]
    fn thirty_six_months_per_period() {
        let ok = terms("2027-01-01", "2030-01-01");
        assert_eq!(ok.months(), 36);
        apply(
            &MadRequestState::draft(),
            Transition::Send,
            Party::HostHr,
            &ok_ctx(&ok),
        )
        .unwrap();
        let long = terms("2027-01-01", "2030-01-02");
        for (state, tr, party) in [
            (MadState::Draft, Transition::Send, Party::HostHr),
            (
                MadState::Negotiating,
                Transition::ReviseTerms,
                Party::HostHr,
            ),
            (MadState::Proposed, Transition::AgreeTerms, Party::HostHr),
            (
                MadState::TermsAgreed,
                Transition::SendToAgent,
                Party::OriginHr,
            ),
            (
                MadState::AmendmentPending,
                Transition::ConcludeAmendment,
                Party::OriginHr,
            ),
            (MadState::RenewalPending, Transition::Renew, Party::OriginHr),
        ] {
            let err =
                apply(&at(state, Some(Party::OriginHr)), tr, party, &ok_ctx(&long)).unwrap_err();
            assert_eq!(
                err,
                MadError::TooLong {
                    state,
                    transition: tr,
                    months: 37
                },
                "{tr}"
            );
            assert!(err.message_fr().contains("ne peut excéder 36 mois"));
        }
        let reversed = terms("2028-01-01", "2027-01-01");
        let err = apply(
            &MadRequestState::draft(),
            Transition::Send,
            Party::HostHr,
            &ok_ctx(&reversed),
        )
        .unwrap_err();
        assert!(matches!(err, MadError::DatesReversed { .. }), "{err}");
    }

    #[test]
    fn reimbursement_waiver_only_for_listed_relations() {
        let mut t = terms("2027-01-01", "2028-12-31");
        t.reimbursement.mode = ReimbursementMode::Waived;
        t.reimbursement.waiver_reason = Some(WaiverReason::CollectiviteEpaMembreOuRattache);
        let proposed = at(MadState::Proposed, Some(Party::HostHr));
        // Département de l'Isère ↔ Grenoble-Alpes Métropole: not a member, must reimburse.
        let ctx = ok_ctx(&t);
        let err = apply(&proposed, Transition::AgreeTerms, Party::OriginHr, &ctx).unwrap_err();
        assert!(matches!(err, MadError::WaiverNotAllowed { .. }), "{err}");
        assert!(err.to_string().contains("L512-15"), "{err}");
        // Ville de Grenoble ↔ Grenoble-Alpes Métropole (member): the waiver is allowed.
        let mut ctx = ok_ctx(&t);
        ctx.relations.insert(Relation::MemberOrAttached);
        apply(&proposed, Transition::AgreeTerms, Party::OriginHr, &ctx).unwrap();
        // Each ground needs its own relation.
        for (reason, relation, _) in WAIVER_RULES {
            let mut t2 = t.clone();
            t2.reimbursement.waiver_reason = Some(*reason);
            let mut ctx = ok_ctx(&t2);
            ctx.relations = BTreeSet::from([*relation]);
            apply(&proposed, Transition::AgreeTerms, Party::OriginHr, &ctx).unwrap();
            let other: BTreeSet<Relation> = WAIVER_RULES
                .iter()
                .map(|(_, r, _)| *r)
                .filter(|r| r != relation)
                .collect();
            ctx.relations = other;
            assert!(
                apply(&proposed, Transition::AgreeTerms, Party::OriginHr, &ctx).is_err(),
                "{reason:?}"
            );
        }
        // A waiver without its ground.
        t.reimbursement.waiver_reason = None;
        let mut ctx = ok_ctx(&t);
        ctx.relations.insert(Relation::MemberOrAttached);
        assert!(matches!(
            apply(&proposed, Transition::AgreeTerms, Party::OriginHr, &ctx).unwrap_err(),
            MadError::WaiverNotAllowed { reason: None, .. }
        ));
    }

    #[test]
    fn convention_needs_its_mandatory_clauses() {
        let mut t = terms("2027-01-01", "2028-12-31");
        let mut ctx = ok_ctx(&t);
        ctx.convention_clauses.remove(&ConventionClause::Preavis);
        ctx.convention_clauses
            .remove(&ConventionClause::ControleEvaluation);
        let err = apply(
            &at(MadState::TermsAgreed, None),
            Transition::SendToAgent,
            Party::OriginHr,
            &ctx,
        )
        .unwrap_err();
        assert_eq!(
            err,
            MadError::MissingClauses {
                state: MadState::TermsAgreed,
                transition: Transition::SendToAgent,
                missing: vec![
                    ConventionClause::ControleEvaluation,
                    ConventionClause::Preavis
                ],
            }
        );
        assert!(err.message_fr().contains("préavis"), "{}", err.message_fr());
        let err = apply(
            &at(MadState::AssemblyInformed, None),
            Transition::SignConvention,
            Party::HostHr,
            &ctx,
        )
        .unwrap_err();
        assert!(matches!(err, MadError::MissingClauses { .. }));
        // The complement clause is required only when the host pays a complement.
        assert!(missing_clauses(&all_clauses(), &t).is_empty());
        let mut without = all_clauses();
        without.remove(&ConventionClause::ComplementRemuneration);
        assert!(missing_clauses(&without, &t).is_empty());
        t.complement_remuneration = Some("IFSE complémentaire de 150 € bruts mensuels".into());
        assert_eq!(
            missing_clauses(&without, &t),
            vec![ConventionClause::ComplementRemuneration]
        );
    }

    #[test]
    fn procedural_preconditions() {
        let t = terms("2027-01-01", "2028-12-31");
        type Spoil = fn(&mut MadContext<'_>);
        let cases: [(MadState, Transition, Party, Spoil); 6] = [
            (
                MadState::AssemblyInformed,
                Transition::SignConvention,
                Party::HostHr,
                |c| c.signed_by_host = false,
            ),
            (
                MadState::AmendmentPending,
                Transition::ConcludeAmendment,
                Party::OriginHr,
                |c| c.amendment_agreed = false,
            ),
            (
                MadState::ArreteIssued,
                Transition::Start,
                Party::System,
                |c| c.today = date!(2026 - 12 - 31),
            ),
            (
                MadState::Active,
                Transition::ReachTerm,
                Party::System,
                |c| c.today = date!(2028 - 12 - 31),
            ),
            (
                MadState::EarlyEndRequested,
                Transition::NoticeElapsed,
                Party::System,
                |c| {
                    // Requested on 1 June with 60 days of notice: not elapsed on 30 July.
                    c.early_end_requested_on = Some(date!(2028 - 06 - 01));
                    c.today = date!(2028 - 07 - 30);
                },
            ),
            (
                MadState::Active,
                Transition::EndForFault,
                Party::OriginAuthority,
                |c| c.fault_agreed_by_both = false,
            ),
        ];
        for (state, tr, party, spoil) in cases {
            let mut ctx = ok_ctx(&t);
            apply(&at(state, None), tr, party, &ctx).unwrap();
            spoil(&mut ctx);
            let err = apply(&at(state, None), tr, party, &ctx).unwrap_err();
            assert!(matches!(err, MadError::Precondition { .. }), "{tr}: {err}");
            assert!(
                err.to_string().contains(tr.as_str()) && err.to_string().contains(state.as_str())
            );
        }
        // Notice: exactly 60 days after the request is enough.
        let mut ctx = ok_ctx(&t);
        ctx.early_end_requested_on = Some(date!(2028 - 06 - 01));
        ctx.today = date!(2028 - 07 - 31);
        apply(
            &at(MadState::EarlyEndRequested, None),
            Transition::NoticeElapsed,
            Party::System,
            &ctx,
        )
        .unwrap();
        ctx.early_end_requested_on = None;
        assert!(
            apply(
                &at(MadState::EarlyEndRequested, None),
                Transition::NoticeElapsed,
                Party::System,
                &ctx
            )
            .is_err()
        );
    }

    #[test]
    fn wire_names() {
        assert_eq!(
            serde_json::to_value(MadState::TermsAgreed).unwrap(),
            "terms_agreed"
        );
        assert_eq!(
            serde_json::to_value(MadState::DeclinedByAgent).unwrap(),
            "declined_by_agent"
        );
        for s in MadState::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for t in ALL_TRANSITIONS {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}

#[cfg(test)]
mod french {
    use super::*;
    use time::macros::date;

    #[test]
    fn refusals_name_state_action_parties_and_law_in_french() {
        let terms: MadTerms = serde_json::from_value(serde_json::json!({
            "activities": "Appui", "quotitePct": 50, "startDate": "2027-01-04",
            "endDate": "2028-12-31", "reimbursement": {"mode": "waived",
            "waiverReason": "collectivite_epa_membre_ou_rattache", "waiverExtentPct": 100,
            "waiverDurationMonths": 12}}))
        .unwrap();
        let ctx = MadContext::new(
            &terms,
            AgentStatut::FonctionnaireTitulaire,
            date!(2026 - 11 - 23),
        );
        let proposed = MadRequestState {
            state: MadState::Proposed,
            last_proposer: Some(Party::OriginHr),
        };
        let err = apply(&proposed, Transition::AgreeTerms, Party::HostHr, &ctx).unwrap_err();
        let d = err.detail_fr();
        assert!(
            d.contains("« accepter les conditions » (agree_terms)"),
            "{d}"
        );
        assert!(d.contains("« proposée » (proposed)"), "{d}");
        assert!(d.contains("L512-15"), "{d}");
        assert!(
            d.contains("les RH de l'employeur d'origine ou les RH de l'organisme d'accueil"),
            "{d}"
        );
        let err = apply(&proposed, Transition::Start, Party::System, &ctx).unwrap_err();
        assert!(
            err.detail_fr()
                .contains("« arrêté de mise à disposition pris »"),
            "{}",
            err.detail_fr()
        );
        // Every precondition has a French text.
        let arrete = MadRequestState {
            state: MadState::ArreteIssued,
            last_proposer: None,
        };
        let err = apply(&arrete, Transition::Start, Party::System, &ctx).unwrap_err();
        assert!(
            err.message_fr()
                .contains("la date de début n'est pas atteinte"),
            "{}",
            err.message_fr()
        );
        for s in MadState::ALL {
            assert_eq!(MadState::from_wire(s.as_str()), Some(s));
            assert!(!s.label_fr().is_empty());
        }
        for t in Transition::ALL {
            assert_eq!(Transition::from_wire(t.as_str()), Some(t));
        }
        for p in Party::ALL {
            assert_eq!(Party::from_wire(p.as_str()), Some(p));
        }
    }
}
