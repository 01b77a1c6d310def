//! Deadlines of a MAD and of postings (domain.md §1.6, §1.9, §7.6), as pure functions over
//! dates. The node computes them when a request changes, stores them, shows them and runs
//! its timers from them; `today` always comes from the caller.
//!
//! Boundary conventions, shared with `passerelle_protocol::mad`:
//! - a date "is due" on that day (`today >= date`);
//! - the notice of an early end requested on day D with N days of notice elapses on D + N;
//! - a period may end at the latest 36 months after its start ([`period_limit`]);
//! - a posting accepts applications until its `applyUntil` day included, and expires the
//!   day after.

use passerelle_protocol::mad::{DEFAULT_NOTICE_DAYS, MAX_PERIOD_MONTHS, MadState};
use passerelle_protocol::vocab::{MadTerms, Posting, PostingStatus, add_months};
use time::{Date, Duration};

use super::date_fr;

/// Tunable delays (domain.md §7.6 marks them as configurable guesses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineConfig {
    /// Renewal reminder, months before the term (3).
    pub renewal_reminder_months: u32,
    /// Notice of an early end when the convention says nothing, days (30).
    pub default_notice_days: u32,
    /// Reminder of the 3-year mutation proposal, months before it is due (6).
    pub mutation_prompt_months_before: u32,
}

impl Default for DeadlineConfig {
    fn default() -> Self {
        Self {
            renewal_reminder_months: 3,
            default_notice_days: DEFAULT_NOTICE_DAYS,
            mutation_prompt_months_before: 6,
        }
    }
}

/// `date` minus `months` calendar months (the day is clamped to the month's length:
/// 31 May − 3 months = 28 or 29 February).
pub fn sub_months(date: Date, months: u32) -> Option<Date> {
    let total =
        i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1 - i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = time::Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = date.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}

/// When to remind both employers that the term approaches: `renewal_reminder_months`
/// before the end date, but never before the start.
pub fn renewal_reminder(terms: &MadTerms, cfg: &DeadlineConfig) -> Option<Date> {
    sub_months(terms.end_date, cfg.renewal_reminder_months).map(|d| d.max(terms.start_date))
}

/// The notice of an early end, in days: the convention's, else the default.
pub fn notice_days(terms: &MadTerms, cfg: &DeadlineConfig) -> u32 {
    terms.notice_days.unwrap_or(cfg.default_notice_days)
}

/// The day the notice of an early end requested on `requested_on` elapses; the MAD ends
/// then, or at its term if that comes first.
pub fn end_of_notice(requested_on: Date, terms: &MadTerms, cfg: &DeadlineConfig) -> Option<Date> {
    requested_on
        .checked_add(Duration::days(i64::from(notice_days(terms, cfg))))
        .map(|d| d.min(terms.end_date))
}

/// The latest end date of a period starting on `start` (3 years, CGFP L512-7, décret
/// 2008-580).
pub fn period_limit(start: Date) -> Option<Date> {
    add_months(start, MAX_PERIOD_MONTHS)
}

/// When the host must be prompted to propose a mutation or a détachement: a full-time
/// MAD, in functions of the agent's grade, to a collectivité with a vacant post, has to be
/// followed by such a proposal within 3 years of its first start (décret 2008-580,
/// domain.md §7.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutationPrompt {
    /// The proposal is due by this date (first start + 3 years).
    pub due: Date,
    /// The node starts prompting on this date.
    pub remind_from: Date,
}

/// The facts the mutation prompt depends on, supplied by the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutationFacts {
    /// First day of the first period (renewals keep it).
    pub first_start: Date,
    /// Quotité of the MAD, percent.
    pub quotite_pct: u32,
    /// The host is a collectivité territoriale.
    pub host_is_collectivite: bool,
    /// The agent exercises functions of their grade at the host.
    pub functions_of_grade: bool,
    /// The host has a vacant post matching the agent's grade.
    pub host_has_vacant_post: bool,
}

/// The mutation prompt, when the rule applies.
pub fn mutation_prompt(facts: &MutationFacts, cfg: &DeadlineConfig) -> Option<MutationPrompt> {
    if facts.quotite_pct < 100
        || !facts.host_is_collectivite
        || !facts.functions_of_grade
        || !facts.host_has_vacant_post
    {
        return None;
    }
    let due = add_months(facts.first_start, MAX_PERIOD_MONTHS)?;
    let remind_from = sub_months(due, cfg.mutation_prompt_months_before)?.max(facts.first_start);
    Some(MutationPrompt { due, remind_from })
}

/// The kinds of deadline shown to HR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DeadlineKind {
    /// Remind both employers that the term approaches.
    RenewalReminder,
    /// The end date of the current period.
    Term,
    /// The end of the notice of an early end.
    EndOfNotice,
    /// Start prompting the host to propose a mutation or détachement.
    MutationPromptReminder,
    /// The mutation or détachement proposal is due.
    MutationPromptDue,
    /// A posting's application deadline has passed.
    PostingExpiry,
}

/// One computed deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// What it is.
    pub kind: DeadlineKind,
    /// The day it falls due.
    pub date: Date,
    /// A French sentence for HR.
    pub label_fr: String,
}

impl Deadline {
    /// Whether it has fallen due on `today`.
    pub fn is_due(&self, today: Date) -> bool {
        today >= self.date
    }

    /// Days left until it falls due (negative once passed).
    pub fn days_left(&self, today: Date) -> i64 {
        (self.date - today).whole_days()
    }
}

/// What [`mad_deadlines`] needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct MadFacts<'a> {
    /// The terms of the current period.
    pub terms: &'a MadTerms,
    /// The request's state.
    pub state: MadState,
    /// When an early end was requested.
    pub early_end_requested_on: Option<Date>,
    /// Facts for the mutation prompt, when known.
    pub mutation: Option<MutationFacts>,
}

/// The deadlines of a MAD in its current state, soonest first. A request not yet signed
/// or already ending has no running deadline but the ones of its state.
pub fn mad_deadlines(facts: &MadFacts<'_>, cfg: &DeadlineConfig) -> Vec<Deadline> {
    use MadState as S;
    let t = facts.terms;
    let mut out = Vec::new();
    let running = matches!(
        facts.state,
        S::ConventionSigned | S::ArreteIssued | S::Active | S::AmendmentPending | S::RenewalPending
    );
    if running {
        if facts.state != S::RenewalPending
            && let Some(d) = renewal_reminder(t, cfg)
        {
            out.push(Deadline {
                kind: DeadlineKind::RenewalReminder,
                date: d,
                label_fr: format!(
                    "Rappel : la mise à disposition arrive à son terme le {} ; décider de son renouvellement (nouvel accord de l'agent, avenant, arrêté).",
                    date_fr(t.end_date)
                ),
            });
        }
        out.push(Deadline {
            kind: DeadlineKind::Term,
            date: t.end_date,
            label_fr: format!("Terme de la mise à disposition le {}.", date_fr(t.end_date)),
        });
        if let Some(p) = facts
            .mutation
            .as_ref()
            .and_then(|m| mutation_prompt(m, cfg))
        {
            out.push(Deadline {
                kind: DeadlineKind::MutationPromptReminder,
                date: p.remind_from,
                label_fr: format!(
                    "L'organisme d'accueil doit proposer une mutation ou un détachement à l'agent avant le {} (décret 2008-580).",
                    date_fr(p.due)
                ),
            });
            out.push(Deadline {
                kind: DeadlineKind::MutationPromptDue,
                date: p.due,
                label_fr: format!(
                    "Échéance de la proposition de mutation ou de détachement : {}.",
                    date_fr(p.due)
                ),
            });
        }
    }
    if facts.state == S::EarlyEndRequested
        && let Some(requested) = facts.early_end_requested_on
        && let Some(d) = end_of_notice(requested, t, cfg)
    {
        out.push(Deadline {
            kind: DeadlineKind::EndOfNotice,
            date: d,
            label_fr: format!(
                "Fin anticipée demandée le {} : le préavis de {} jours prend fin le {}.",
                date_fr(requested),
                notice_days(t, cfg),
                date_fr(d)
            ),
        });
    }
    out.sort_by_key(|d| (d.date, d.kind));
    out
}

/// The day a posting expires: the day after its `applyUntil`.
pub fn posting_expires_on(posting: &Posting) -> Option<Date> {
    posting.dates.apply_until.and_then(|d| d.next_day())
}

/// Whether a published (or suspended) posting has expired on `today`: it should move to
/// `expired`.
pub fn posting_is_expired(posting: &Posting, today: Date) -> bool {
    matches!(
        posting.status,
        PostingStatus::Published | PostingStatus::Suspended
    ) && posting_expires_on(posting).is_some_and(|d| today >= d)
}

/// The expiry deadline of a posting, for display.
pub fn posting_deadline(posting: &Posting) -> Option<Deadline> {
    let until = posting.dates.apply_until?;
    Some(Deadline {
        kind: DeadlineKind::PostingExpiry,
        date: until.next_day()?,
        label_fr: format!(
            "Candidatures jusqu'au {} inclus ; l'offre expire ensuite automatiquement.",
            date_fr(until)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_protocol::vocab::{ReimbursementMode, ReimbursementTerms};
    use time::macros::date;

    fn terms(start: Date, end: Date, notice: Option<u32>) -> MadTerms {
        MadTerms {
            activities: "Appui".into(),
            place: None,
            quotite_pct: 100,
            hebdo_minutes: None,
            schedule: None,
            start_date: start,
            end_date: end,
            renewal_terms: None,
            evaluation: None,
            leave_authority: None,
            reimbursement: ReimbursementTerms {
                mode: ReimbursementMode::Full,
                waiver_reason: None,
                waiver_extent_pct: None,
                waiver_duration_months: None,
                monthly_cost_estimate: None,
                invoicing_period: None,
            },
            complement_remuneration: None,
            frais: None,
            notice_days: notice,
            functions_of_grade: None,
            host_vacant_post: None,
            extra: Default::default(),
        }
    }

    #[test]
    fn month_arithmetic_clamps() {
        assert_eq!(
            sub_months(date!(2028 - 05 - 31), 3),
            Some(date!(2028 - 02 - 29))
        );
        assert_eq!(
            sub_months(date!(2027 - 05 - 31), 3),
            Some(date!(2027 - 02 - 28))
        );
        assert_eq!(
            sub_months(date!(2027 - 02 - 15), 2),
            Some(date!(2026 - 12 - 15))
        );
        assert_eq!(
            sub_months(date!(2027 - 01 - 01), 0),
            Some(date!(2027 - 01 - 01))
        );
    }

    #[test]
    fn renewal_reminder_three_months_before_term() {
        let cfg = DeadlineConfig::default();
        let t = terms(date!(2027 - 03 - 01), date!(2028 - 02 - 29), None);
        assert_eq!(renewal_reminder(&t, &cfg), Some(date!(2027 - 11 - 29)));
        let cfg6 = DeadlineConfig {
            renewal_reminder_months: 6,
            ..cfg
        };
        assert_eq!(renewal_reminder(&t, &cfg6), Some(date!(2027 - 08 - 29)));
        // A two-month MAD: the reminder cannot precede the start.
        let short = terms(date!(2027 - 03 - 01), date!(2027 - 04 - 30), None);
        assert_eq!(renewal_reminder(&short, &cfg), Some(date!(2027 - 03 - 01)));
    }

    #[test]
    fn notice_default_and_convention() {
        let cfg = DeadlineConfig::default();
        let t = terms(date!(2027 - 01 - 01), date!(2028 - 12 - 31), None);
        assert_eq!(notice_days(&t, &cfg), 30);
        assert_eq!(
            end_of_notice(date!(2028 - 06 - 01), &t, &cfg),
            Some(date!(2028 - 07 - 01))
        );
        let t60 = terms(date!(2027 - 01 - 01), date!(2028 - 12 - 31), Some(60));
        // Same boundary as the protocol's NoticeElapsed check: 1 June + 60 days = 31 July.
        assert_eq!(
            end_of_notice(date!(2028 - 06 - 01), &t60, &cfg),
            Some(date!(2028 - 07 - 31))
        );
        // Notice running past the term: the term comes first.
        assert_eq!(
            end_of_notice(date!(2028 - 12 - 15), &t60, &cfg),
            Some(date!(2028 - 12 - 31))
        );
    }

    #[test]
    fn three_year_limit_matches_the_protocol() {
        let start = date!(2027 - 01 - 01);
        let limit = period_limit(start).unwrap();
        assert_eq!(limit, date!(2030 - 01 - 01));
        assert_eq!(terms(start, limit, None).months(), MAX_PERIOD_MONTHS);
        let after = limit.next_day().unwrap();
        assert_eq!(terms(start, after, None).months(), MAX_PERIOD_MONTHS + 1);
        assert_eq!(
            period_limit(date!(2028 - 02 - 29)),
            Some(date!(2031 - 02 - 28))
        );
    }

    #[test]
    fn mutation_prompt_only_when_the_rule_applies() {
        let cfg = DeadlineConfig::default();
        let facts = MutationFacts {
            first_start: date!(2027 - 03 - 01),
            quotite_pct: 100,
            host_is_collectivite: true,
            functions_of_grade: true,
            host_has_vacant_post: true,
        };
        assert_eq!(
            mutation_prompt(&facts, &cfg),
            Some(MutationPrompt {
                due: date!(2030 - 03 - 01),
                remind_from: date!(2029 - 09 - 01)
            })
        );
        for spoil in [
            MutationFacts {
                quotite_pct: 99,
                ..facts
            },
            MutationFacts {
                host_is_collectivite: false,
                ..facts
            },
            MutationFacts {
                functions_of_grade: false,
                ..facts
            },
            MutationFacts {
                host_has_vacant_post: false,
                ..facts
            },
        ] {
            assert_eq!(mutation_prompt(&spoil, &cfg), None, "{spoil:?}");
        }
    }

    #[test]
    fn deadlines_follow_the_state() {
        let cfg = DeadlineConfig::default();
        let t = terms(date!(2027 - 03 - 01), date!(2028 - 02 - 29), Some(45));
        let mut facts = MadFacts {
            terms: &t,
            state: MadState::Active,
            early_end_requested_on: None,
            mutation: None,
        };
        let active = mad_deadlines(&facts, &cfg);
        let kinds: Vec<_> = active.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, [DeadlineKind::RenewalReminder, DeadlineKind::Term]);
        assert!(
            active[0].label_fr.contains("29 février 2028"),
            "{}",
            active[0].label_fr
        );
        // Due on the day, not the day before.
        assert!(!active[0].is_due(date!(2027 - 11 - 28)));
        assert!(active[0].is_due(date!(2027 - 11 - 29)));
        assert_eq!(active[0].days_left(date!(2027 - 11 - 19)), 10);

        facts.state = MadState::EarlyEndRequested;
        facts.early_end_requested_on = Some(date!(2027 - 06 - 10));
        let early = mad_deadlines(&facts, &cfg);
        assert_eq!(early.len(), 1);
        assert_eq!(early[0].kind, DeadlineKind::EndOfNotice);
        assert_eq!(early[0].date, date!(2027 - 07 - 25));
        assert!(
            early[0].label_fr.contains("45 jours"),
            "{}",
            early[0].label_fr
        );

        for s in [
            MadState::Draft,
            MadState::Proposed,
            MadState::Closed,
            MadState::Withdrawn,
        ] {
            facts.state = s;
            assert!(mad_deadlines(&facts, &cfg).is_empty(), "{s}");
        }
    }

    #[test]
    fn posting_expires_the_day_after_apply_until() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../spec/examples/posting-vacancy.json"
        ))
        .unwrap();
        let mut p: Posting = serde_json::from_str(&text).unwrap();
        p.status = PostingStatus::Published;
        p.dates.apply_until = Some(date!(2027 - 01 - 15));
        assert!(!posting_is_expired(&p, date!(2027 - 01 - 15)));
        assert!(posting_is_expired(&p, date!(2027 - 01 - 16)));
        assert_eq!(posting_deadline(&p).unwrap().date, date!(2027 - 01 - 16));
        p.status = PostingStatus::Filled;
        assert!(!posting_is_expired(&p, date!(2027 - 02 - 01)));
        p.status = PostingStatus::Published;
        p.dates.apply_until = None;
        assert!(!posting_is_expired(&p, date!(2099 - 01 - 01)));
    }
}
