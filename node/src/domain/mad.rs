//! The MAD workflow between two nodes, as pure rules on top of `protocol::mad`: which legal
//! relations hold between two employers (from their actor documents), which party a node
//! fires a transition as, which actions are open to a node in a state, and what the
//! receiver of a recorded transition checks.

use std::collections::BTreeSet;

use passerelle_protocol::mad::{
    self, MadRequestState, MadState, Party, Relation, Side, Transition,
};
use passerelle_protocol::vocab::{Collectivite, MadHistoryEntry, MadTerms, OrganisationKind};
use time::Date;

use super::deadlines::{self, DeadlineConfig};

/// Kinds of EPCI (établissements publics de coopération intercommunale à fiscalité propre
/// and Grand Paris territorial establishments).
const EPCI_KINDS: &[OrganisationKind] = &[
    OrganisationKind::Metropole,
    OrganisationKind::CommunauteUrbaine,
    OrganisationKind::CommunauteAgglomeration,
    OrganisationKind::CommunauteCommunes,
    OrganisationKind::EtablissementPublicTerritorial,
];

/// Kinds of communes.
const COMMUNE_KINDS: &[OrganisationKind] =
    &[OrganisationKind::Commune, OrganisationKind::CommuneNouvelle];

/// Kinds of State and hospital-sector bodies.
const STATE_OR_FPH_KINDS: &[OrganisationKind] = &[
    OrganisationKind::EtatAdministration,
    OrganisationKind::EtatEtablissement,
    OrganisationKind::FphEtablissement,
];

/// The relations of `protocol::mad` that hold between `origin` and `host`, read from what
/// each employer declares in its actor document (`epciSiren`, `attachedToSiren`, `kind`).
/// Both nodes compute the same set from the same two documents.
pub fn relations(origin: &Collectivite, host: &Collectivite) -> BTreeSet<Relation> {
    let mut out = BTreeSet::new();
    let member_of = |a: &Collectivite, b: &Collectivite| {
        a.epci_siren.as_ref() == Some(&b.siren) || a.attached_to_siren.as_ref() == Some(&b.siren)
    };
    if member_of(origin, host) || member_of(host, origin) {
        out.insert(Relation::MemberOrAttached);
    }
    if EPCI_KINDS.contains(&origin.kind)
        && COMMUNE_KINDS.contains(&host.kind)
        && host.epci_siren.as_ref() == Some(&origin.siren)
    {
        out.insert(Relation::EpciToMemberCommune);
    }
    if STATE_OR_FPH_KINDS.contains(&host.kind) {
        out.insert(Relation::HostStateOrFph);
    }
    out
}

/// Why a node may not fire a transition as any of its parties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotOurParty {
    /// The transition.
    pub transition: Transition,
    /// The node's side.
    pub side: Side,
}

/// The party `side` fires `transition` as: `requested` when given (it must be one of the
/// transition's parties on that side), else the first such party. `system` transitions
/// are fired by the creator's timers, never by a person.
///
/// # Errors
/// [`NotOurParty`] when no party of `side` may fire it.
pub fn party_for(
    transition: Transition,
    side: Side,
    requested: Option<Party>,
) -> Result<Party, NotOurParty> {
    let refuse = || NotOurParty { transition, side };
    let row = mad::rule(transition).ok_or_else(refuse)?;
    let ours = |p: &Party| p.side() == Some(side) && row.parties.contains(p);
    match requested {
        Some(p) if ours(&p) => Ok(p),
        Some(_) => Err(refuse()),
        None => row
            .parties
            .iter()
            .copied()
            .find(|p| ours(p))
            .ok_or_else(refuse),
    }
}

/// An action a node may take on a request in its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// The transition.
    pub transition: Transition,
    /// The party the node fires it as.
    pub party: Party,
    /// The state it reaches.
    pub to: MadState,
}

/// The transitions a node on `side` may fire from `state` (legal checks not run).
pub fn actions(state: MadState, side: Side) -> Vec<Action> {
    mad::transitions_from(state)
        .filter_map(|row| {
            party_for(row.transition, side, None)
                .ok()
                .map(|party| Action {
                    transition: row.transition,
                    party,
                    to: row.to,
                })
        })
        .collect()
}

/// The transitions that change the terms on the table (they carry new terms).
pub fn carries_terms(transition: Transition) -> bool {
    matches!(
        transition,
        Transition::CounterPropose
            | Transition::ReviseTerms
            | Transition::Renew
            | Transition::ProposeAmendment
    )
}

/// Which convention a transition opens: `send_to_agent` drafts the convention in force
/// (number unchanged), `renew` and `propose_amendment` draft the next avenant.
pub fn opens_avenant(transition: Transition) -> bool {
    matches!(transition, Transition::Renew | Transition::ProposeAmendment)
}

/// The state machine's view of a request from its history: the state reached and the HR
/// department whose proposal is on the table.
pub fn machine_state(history: &[MadHistoryEntry], state: MadState) -> MadRequestState {
    MadRequestState {
        state,
        last_proposer: last_proposer(history),
    }
}

/// The HR department that made the proposal on the table (the last `send`,
/// `counter_propose` or `revise_terms`).
pub fn last_proposer(history: &[MadHistoryEntry]) -> Option<Party> {
    history
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e.transition,
                Transition::Send | Transition::CounterPropose | Transition::ReviseTerms
            )
        })
        .map(|e| e.party)
}

/// The number of the convention in progress or in force: 0, plus one per avenant opened
/// (renewal or amendment).
pub fn amendment_number(history: &[MadHistoryEntry]) -> u32 {
    u32::try_from(
        history
            .iter()
            .filter(|e| opens_avenant(e.transition))
            .count(),
    )
    .unwrap_or(u32::MAX)
}

/// When the running early end was requested: the date of the last `request_early_end`
/// (the act's date when recorded, else the day it was recorded).
pub fn early_end_requested_on(history: &[MadHistoryEntry]) -> Option<Date> {
    history
        .iter()
        .rev()
        .find(|e| e.transition == Transition::RequestEarlyEnd)
        .map(|e| e.date.unwrap_or_else(|| e.at.date()))
}

/// The transition a date brings to a request in `state` on `today`, fired by the
/// creator's timers: the start of an arrêté'd MAD, the term of a running one (before the
/// renewal reminder: once the term is passed there is nothing left to renew), the renewal
/// reminder, the end of a notice.
pub fn due_system_transition(
    state: MadState,
    terms: &MadTerms,
    early_end_requested_on: Option<Date>,
    today: Date,
    cfg: &DeadlineConfig,
) -> Option<Transition> {
    match state {
        MadState::ArreteIssued if today >= terms.start_date => Some(Transition::Start),
        MadState::Active if today > terms.end_date => Some(Transition::ReachTerm),
        MadState::Active if deadlines::renewal_reminder(terms, cfg).is_some_and(|d| today >= d) => {
            Some(Transition::RemindRenewal)
        }
        MadState::EarlyEndRequested => {
            let ends = early_end_requested_on.and_then(|on| {
                on.checked_add(time::Duration::days(i64::from(deadlines::notice_days(
                    terms, cfg,
                ))))
            });
            ends.filter(|e| today >= *e)
                .map(|_| Transition::NoticeElapsed)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_protocol::vocab::Versant;

    fn coll(siren: &str, kind: OrganisationKind, epci: Option<&str>) -> Collectivite {
        serde_json::from_value(serde_json::json!({
            "siren": siren,
            "kind": kind,
            "versant": Versant::Fpt,
            "epciSiren": epci,
        }))
        .unwrap()
    }

    #[test]
    fn relations_from_membership_and_kinds() {
        let grenoble = coll("213801855", OrganisationKind::Commune, Some("200040715"));
        let metropole = coll("200040715", OrganisationKind::Metropole, None);
        let isere = coll("223800012", OrganisationKind::Departement, None);
        // A commune and the EPCI it belongs to: both directions.
        assert!(relations(&grenoble, &metropole).contains(&Relation::MemberOrAttached));
        assert!(relations(&metropole, &grenoble).contains(&Relation::MemberOrAttached));
        assert!(relations(&metropole, &grenoble).contains(&Relation::EpciToMemberCommune));
        assert!(!relations(&grenoble, &metropole).contains(&Relation::EpciToMemberCommune));
        // The Département is a member of neither: no relation (no waiver, no CDI MAD).
        assert!(relations(&isere, &metropole).is_empty());
        assert!(relations(&metropole, &isere).is_empty());
        let hospital = coll("263800500", OrganisationKind::FphEtablissement, None);
        assert_eq!(
            relations(&isere, &hospital),
            BTreeSet::from([Relation::HostStateOrFph])
        );
    }

    #[test]
    fn parties_by_side() {
        use Transition as T;
        assert_eq!(
            party_for(T::AgreeTerms, Side::Host, None),
            Ok(Party::HostHr)
        );
        assert_eq!(
            party_for(T::AgentAgrees, Side::Origin, None),
            Ok(Party::Agent)
        );
        assert_eq!(
            party_for(T::SignConvention, Side::Origin, None),
            Ok(Party::OriginAuthority)
        );
        assert_eq!(
            party_for(T::RequestEarlyEnd, Side::Origin, Some(Party::Agent)),
            Ok(Party::Agent)
        );
        // The host cannot speak for the agent, nor anyone fire a timer.
        assert!(party_for(T::AgentAgrees, Side::Host, None).is_err());
        assert!(party_for(T::RequestEarlyEnd, Side::Host, Some(Party::Agent)).is_err());
        assert!(party_for(T::Start, Side::Origin, None).is_err());
        // Every transition but the timers is open to at least one side.
        for row in mad::TRANSITIONS {
            let any = [Side::Origin, Side::Host]
                .iter()
                .any(|s| party_for(row.transition, *s, None).is_ok());
            assert_eq!(
                any,
                row.parties.iter().any(|p| *p != Party::System),
                "{}",
                row.transition
            );
        }
    }

    fn terms(start: &str, end: &str, notice: u32) -> MadTerms {
        serde_json::from_value(serde_json::json!({
            "activities": "Appui", "quotitePct": 50, "startDate": start, "endDate": end,
            "reimbursement": {"mode": "full"}, "noticeDays": notice
        }))
        .unwrap()
    }

    #[test]
    fn timers_follow_the_dates() {
        use time::macros::date;
        let cfg = DeadlineConfig::default();
        let t = terms("2027-01-04", "2028-12-31", 30);
        let due = |s, today| due_system_transition(s, &t, Some(date!(2028 - 03 - 01)), today, &cfg);
        assert_eq!(due(MadState::ArreteIssued, date!(2027 - 01 - 03)), None);
        assert_eq!(
            due(MadState::ArreteIssued, date!(2027 - 01 - 04)),
            Some(Transition::Start)
        );
        assert_eq!(due(MadState::Active, date!(2028 - 09 - 29)), None);
        // Three months before the term (31 September is clamped to the 30th): the
        // renewal is to be decided.
        assert_eq!(
            due(MadState::Active, date!(2028 - 09 - 30)),
            Some(Transition::RemindRenewal)
        );
        // Past the term, the term wins.
        assert_eq!(
            due(MadState::Active, date!(2029 - 01 - 01)),
            Some(Transition::ReachTerm)
        );
        assert_eq!(
            due(MadState::EarlyEndRequested, date!(2028 - 03 - 30)),
            None
        );
        assert_eq!(
            due(MadState::EarlyEndRequested, date!(2028 - 03 - 31)),
            Some(Transition::NoticeElapsed)
        );
        assert_eq!(due(MadState::Proposed, date!(2030 - 01 - 01)), None);
    }

    #[test]
    fn actions_in_a_state() {
        let host = actions(MadState::Proposed, Side::Host);
        let names: Vec<_> = host.iter().map(|a| a.transition).collect();
        assert!(names.contains(&Transition::AgreeTerms));
        assert!(names.contains(&Transition::Withdraw));
        assert!(actions(MadState::Closed, Side::Origin).is_empty());
        let origin = actions(MadState::AgentReview, Side::Origin);
        assert!(origin.iter().all(|a| a.party == Party::Agent));
        assert!(actions(MadState::AgentReview, Side::Host).is_empty());
    }
}
