//! Matching, as suggestions for a human (domain.md §5.3: no automated decision): postings
//! that fit an agent's profile and opt-in profiles that fit a posting, each with a score
//! and the reasons in French; immersion swaps paired by reciprocity; training seats
//! allocated within per-partner quotas.
//!
//! Whether a partner may see a profile (circles, following) is the caller's business: it
//! passes only the postings and profiles the viewer may see. This module only refuses
//! profiles the agent did not open to anyone else (`private`, or `origin_hr` for another
//! node).

use std::collections::{BTreeMap, BTreeSet};

use passerelle_protocol::ids::ActorId;
use passerelle_protocol::vocab::{
    AgentProfile, Categorie, Filiere, MetierRef, Posting, PostingBody, PostingKind, PostingStatus,
    ProfileVisibility, VolunteerRole,
};
use time::{Date, OffsetDateTime};

use super::{date_fr, fold};

/// What a reason is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Criterion {
    /// The kind of posting is one the agent wants.
    Kind,
    /// A métier wanted (or held) matches the posting's.
    Metier,
    /// A theme of the agent appears in the posting.
    Theme,
    /// Catégorie.
    Categorie,
    /// Filière.
    Filiere,
    /// Place of work.
    Area,
    /// Share of working time.
    Quotite,
    /// Dates and availability.
    Dates,
    /// The agent volunteers for this kind of mission.
    Volunteering,
}

/// One reason of a suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// What it is about.
    pub criterion: Criterion,
    /// Points it adds to the score.
    pub points: u32,
    /// The reason in French, for HR and the agent.
    pub text_fr: String,
}

/// A suggestion: the item, its score and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion<'a, T> {
    /// The posting or profile suggested.
    pub item: &'a T,
    /// Sum of the reasons' points (higher is better).
    pub score: u32,
    /// The reasons, strongest first.
    pub reasons: Vec<Reason>,
}

/// The French name of a posting kind.
pub fn kind_fr(kind: PostingKind) -> &'static str {
    match kind {
        PostingKind::Vacancy => "poste vacant",
        PostingKind::MadOffer => "mise à disposition",
        PostingKind::ProjectMission => "mission d'appui à un projet",
        PostingKind::FacilitationRequest => "mission de facilitation",
        PostingKind::ImmersionOffer => "immersion",
        PostingKind::ImmersionSwap => "échange d'immersion (Vis mon job)",
        PostingKind::TrainingSession => "session de formation",
        PostingKind::CareerOffer => "offre de carrière",
        _ => "offre",
    }
}

/// The French name of a filière.
pub fn filiere_fr(f: Filiere) -> &'static str {
    match f {
        Filiere::Administrative => "administrative",
        Filiere::Technique => "technique",
        Filiere::Culturelle => "culturelle",
        Filiere::Sportive => "sportive",
        Filiere::Animation => "animation",
        Filiere::Sociale => "sociale",
        Filiere::MedicoSociale => "médico-sociale",
        Filiere::MedicoTechnique => "médico-technique",
        Filiere::PoliceMunicipale => "police municipale",
        Filiere::SapeursPompiers => "sapeurs-pompiers professionnels",
        _ => "autre",
    }
}

fn categorie_str(c: Categorie) -> &'static str {
    match c {
        Categorie::A => "A",
        Categorie::B => "B",
        _ => "C",
    }
}

/// A comparable key of a métier reference: its ROME code, else its folded label.
fn metier_keys(m: &MetierRef) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(r) = &m.rome {
        keys.push(format!("rome:{}", r.code.to_ascii_uppercase()));
    }
    if let Some(c) = &m.cnfpt {
        keys.push(format!("label:{}", fold(&c.label)));
    }
    if let Some(l) = &m.local {
        keys.push(format!("label:{}", fold(&l.label)));
    }
    keys
}

fn metier_label(m: &MetierRef) -> String {
    let label = m
        .local
        .as_ref()
        .map(|l| l.label.clone())
        .or_else(|| m.cnfpt.as_ref().map(|c| c.label.clone()))
        .or_else(|| m.rome.as_ref().and_then(|r| r.label.clone()));
    match (label, &m.rome) {
        (Some(l), Some(r)) => format!("{l} (ROME {})", r.code),
        (Some(l), None) => l,
        (None, Some(r)) => format!("ROME {}", r.code),
        (None, None) => "métier".to_owned(),
    }
}

/// The smallest share of working time the posting asks for, percent.
fn posting_quotite(p: &Posting) -> Option<u32> {
    match &p.body {
        PostingBody::MadOffer(b) => b.quotite_pct,
        PostingBody::ProjectMission(b) => b.quotite_pct_min,
        _ => None,
    }
    .or_else(|| p.working_time.as_ref().and_then(|w| w.quotite_pct))
}

fn is_statutory(kind: PostingKind) -> bool {
    matches!(
        kind,
        PostingKind::Vacancy
            | PostingKind::MadOffer
            | PostingKind::ProjectMission
            | PostingKind::CareerOffer
    )
}

/// How well `profile` fits `posting` on `today`: `None` when it does not (the posting is
/// not open, a statutory condition fails, the dates or quotité are incompatible, or
/// nothing in the profile asks for it), else the score and reasons.
pub fn fit(profile: &AgentProfile, posting: &Posting, today: Date) -> Option<(u32, Vec<Reason>)> {
    let kind = posting.posting_kind();
    // Career offers are addressed to one agent, never suggested.
    if posting.status != PostingStatus::Published || kind == PostingKind::CareerOffer {
        return None;
    }
    if posting.dates.apply_until.is_some_and(|d| d < today) {
        return None;
    }
    let mut reasons = Vec::new();
    let mut interest = false;

    // Kind.
    if profile.appetites.iter().any(|a| a.kinds.contains(&kind)) {
        interest = true;
        reasons.push(Reason {
            criterion: Criterion::Kind,
            points: 30,
            text_fr: format!("Type d'offre recherché par l'agent : {}.", kind_fr(kind)),
        });
    }

    // Métier: wanted, then held.
    let wanted: Vec<&MetierRef> = profile
        .appetites
        .iter()
        .flat_map(|a| &a.metiers_wanted)
        .collect();
    let mut metier_done = false;
    'outer: for pm in &posting.metiers {
        let pkeys = metier_keys(pm);
        for w in &wanted {
            if metier_keys(w).iter().any(|k| pkeys.contains(k)) {
                interest = true;
                metier_done = true;
                reasons.push(Reason {
                    criterion: Criterion::Metier,
                    points: 30,
                    text_fr: format!("Métier souhaité par l'agent : {}.", metier_label(pm)),
                });
                break 'outer;
            }
        }
    }
    if !metier_done
        && let Some(pm) = posting.metiers.iter().find(|pm| {
            let pkeys = metier_keys(pm);
            profile
                .metiers_current
                .iter()
                .any(|c| metier_keys(c).iter().any(|k| pkeys.contains(k)))
        })
    {
        reasons.push(Reason {
            criterion: Criterion::Metier,
            points: 15,
            text_fr: format!(
                "Même métier que celui exercé par l'agent : {}.",
                metier_label(pm)
            ),
        });
        metier_done = true;
    }

    if !metier_done {
        'near: for pm in &posting.metiers {
            let Some(pr) = &pm.rome else { continue };
            for w in &wanted {
                if let Some(wr) = &w.rome
                    && let (Some(domain), Some(wanted_domain)) =
                        (pr.code.get(..3), wr.code.get(..3))
                    && domain == wanted_domain
                {
                    interest = true;
                    reasons.push(Reason {
                        criterion: Criterion::Metier,
                        points: 10,
                        text_fr: format!(
                            "Métier proche de celui souhaité (même domaine ROME {domain}) : {}.",
                            metier_label(pm)
                        ),
                    });
                    break 'near;
                }
            }
        }
    }
    // Themes.
    let text = fold(&format!(
        "{} {} {}",
        posting.name,
        posting.summary.as_deref().unwrap_or(""),
        posting.missions.as_deref().unwrap_or("")
    ));
    let themes: BTreeSet<&String> = profile
        .appetites
        .iter()
        .flat_map(|a| &a.themes)
        .filter(|t| !t.trim().is_empty() && text.contains(&fold(t.trim())))
        .collect();
    if !themes.is_empty() {
        interest = true;
        reasons.push(Reason {
            criterion: Criterion::Theme,
            points: (5 * u32::try_from(themes.len()).unwrap_or(2)).min(10),
            text_fr: format!(
                "Thème d'intérêt de l'agent présent dans l'offre : {}.",
                themes
                    .into_iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }

    // Volunteering.
    if kind == PostingKind::FacilitationRequest
        && profile
            .volunteering
            .iter()
            .any(|v| v.role == VolunteerRole::Facilitateur)
    {
        interest = true;
        reasons.push(Reason {
            criterion: Criterion::Volunteering,
            points: 20,
            text_fr: "L'agent s'est porté volontaire comme facilitateur.".to_owned(),
        });
    }
    if !interest {
        return None;
    }

    // Statutory layer.
    if let Some(st) = &posting.statutory {
        if let Some(c) = profile.categorie
            && !st.categories.is_empty()
        {
            if st.categories.contains(&c) {
                reasons.push(Reason {
                    criterion: Criterion::Categorie,
                    points: 10,
                    text_fr: format!("Catégorie {} ouverte par l'offre.", categorie_str(c)),
                });
            } else if is_statutory(kind) {
                return None;
            }
        }
        if let Some(f) = profile.filiere
            && st.filieres.contains(&f)
        {
            reasons.push(Reason {
                criterion: Criterion::Filiere,
                points: 10,
                text_fr: format!("Filière {} de l'agent.", filiere_fr(f)),
            });
        }
    }

    // Area.
    if let Some(area) = &profile.area {
        let communes: Vec<_> = posting.locations.iter().map(|l| &l.commune).collect();
        if let Some(c) = communes.iter().find(|c| area.communes.contains(**c)) {
            reasons.push(Reason {
                criterion: Criterion::Area,
                points: 15,
                text_fr: format!("Lieu de travail dans une commune souhaitée ({c})."),
            });
        } else if let Some(c) = communes.iter().find(|c| {
            area.communes
                .iter()
                .any(|a| a.departement() == c.departement())
        }) {
            reasons.push(Reason {
                criterion: Criterion::Area,
                points: 8,
                text_fr: format!(
                    "Lieu de travail dans le département souhaité ({}).",
                    c.departement()
                ),
            });
        }
        if area.remote_ok == Some(true) && posting.telework.as_ref().is_some_and(|t| t.allowed) {
            reasons.push(Reason {
                criterion: Criterion::Area,
                points: 5,
                text_fr: "Télétravail possible, souhaité par l'agent.".to_owned(),
            });
        }
    }

    // Availability: quotité and dates.
    if let Some(av) = &profile.availability {
        if let (Some(max), Some(q)) = (av.quotite_pct_max, posting_quotite(posting)) {
            if q > max {
                return None;
            }
            reasons.push(Reason {
                criterion: Criterion::Quotite,
                points: 5,
                text_fr: format!(
                    "Quotité de {q} % compatible avec le maximum de l'agent ({max} %)."
                ),
            });
        }
        let start = posting.dates.start;
        let end = posting.dates.end;
        if let (Some(until), Some(s)) = (av.until, start)
            && s > until
        {
            return None;
        }
        if let (Some(from), Some(e)) = (av.from, end)
            && e < from
        {
            return None;
        }
        if let Some(s) = start
            && av.from.is_none_or(|f| f <= s)
            && av.until.is_none_or(|u| s <= u)
            && (av.from.is_some() || av.until.is_some())
        {
            reasons.push(Reason {
                criterion: Criterion::Dates,
                points: 5,
                text_fr: format!(
                    "Début le {}, pendant la disponibilité de l'agent.",
                    date_fr(s)
                ),
            });
        }
    }

    reasons.sort_by(|a, b| b.points.cmp(&a.points).then(a.criterion.cmp(&b.criterion)));
    let score = reasons.iter().map(|r| r.points).sum();
    Some((score, reasons))
}

fn sort_suggestions<T>(out: &mut [Suggestion<'_, T>], id: impl Fn(&T) -> &str) {
    out.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| id(a.item).cmp(id(b.item)))
    });
}

/// The postings (local and federated) that fit `profile`, best first.
pub fn postings_for_profile<'a>(
    profile: &AgentProfile,
    postings: &'a [Posting],
    today: Date,
) -> Vec<Suggestion<'a, Posting>> {
    let mut out: Vec<_> = postings
        .iter()
        .filter_map(|p| {
            fit(profile, p, today).map(|(score, reasons)| Suggestion {
                item: p,
                score,
                reasons,
            })
        })
        .collect();
    sort_suggestions(&mut out, |p| p.id.as_str());
    out
}

/// Whether the agent opened `profile` to the HR of the node publishing `posting`.
fn visible_to(profile: &AgentProfile, posting: &Posting) -> bool {
    match profile.visibility {
        ProfileVisibility::Private => false,
        ProfileVisibility::OriginHr => profile.attributed_to == posting.attributed_to,
        _ => true,
    }
}

/// The opt-in profiles that fit `posting`, best first (never a private profile, and an
/// `origin_hr` profile only for a posting of the agent's own node).
pub fn profiles_for_posting<'a>(
    posting: &Posting,
    profiles: &'a [AgentProfile],
    today: Date,
) -> Vec<Suggestion<'a, AgentProfile>> {
    let mut out: Vec<_> = profiles
        .iter()
        .filter(|p| visible_to(p, posting))
        .filter_map(|p| {
            fit(p, posting, today).map(|(score, reasons)| Suggestion {
                item: p,
                score,
                reasons,
            })
        })
        .collect();
    sort_suggestions(&mut out, |p| p.id.as_str());
    out
}

/// Two agents of two nodes who want each other's métier for an immersion day.
#[derive(Debug, Clone, PartialEq)]
pub struct SwapMatch<'a> {
    /// One agent's profile.
    pub a: &'a AgentProfile,
    /// The other's.
    pub b: &'a AgentProfile,
    /// The métier of `b` that `a` wants.
    pub a_discovers: String,
    /// The métier of `a` that `b` wants.
    pub b_discovers: String,
    /// Why, in French.
    pub reason_fr: String,
}

fn wants_swap(p: &AgentProfile) -> bool {
    !matches!(
        p.visibility,
        ProfileVisibility::Private | ProfileVisibility::OriginHr
    ) && p
        .appetites
        .iter()
        .any(|a| a.kinds.contains(&PostingKind::ImmersionSwap))
}

/// The first métier of `holder` that `seeker` wants.
fn wanted_of<'m>(seeker: &AgentProfile, holder: &'m AgentProfile) -> Option<&'m MetierRef> {
    let wanted: BTreeSet<String> = seeker
        .appetites
        .iter()
        .flat_map(|a| &a.metiers_wanted)
        .flat_map(metier_keys)
        .collect();
    holder
        .metiers_current
        .iter()
        .find(|m| metier_keys(m).iter().any(|k| wanted.contains(k)))
}

/// Pairs immersion swaps by reciprocity: two agents of two different nodes, both asking
/// for `immersion_swap`, each holding a métier the other wants. Each agent is paired at
/// most once; the profiles published first are paired first (then by id).
pub fn pair_immersion_swaps(profiles: &[AgentProfile]) -> Vec<SwapMatch<'_>> {
    let mut candidates: Vec<&AgentProfile> = profiles.iter().filter(|p| wants_swap(p)).collect();
    candidates.sort_by(|a, b| {
        a.published
            .cmp(&b.published)
            .then_with(|| a.id.as_str().cmp(b.id.as_str()))
    });
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, a) in candidates.iter().enumerate() {
        if used.contains(a.id.as_str()) {
            continue;
        }
        for b in &candidates[i + 1..] {
            if used.contains(b.id.as_str()) || a.attributed_to == b.attributed_to {
                continue;
            }
            if let (Some(ma), Some(mb)) = (wanted_of(a, b), wanted_of(b, a)) {
                let a_discovers = metier_label(ma);
                let b_discovers = metier_label(mb);
                out.push(SwapMatch {
                    a,
                    b,
                    reason_fr: format!(
                        "Réciprocité : l'agent « {} » découvre le métier {a_discovers}, l'agent « {} » découvre le métier {b_discovers}.",
                        a.handle, b.handle
                    ),
                    a_discovers,
                    b_discovers,
                });
                used.insert(a.id.as_str());
                used.insert(b.id.as_str());
                break;
            }
        }
    }
    out
}

/// A registration to a training session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Registration id.
    pub id: String,
    /// The node of the registered agent.
    pub node: ActorId,
    /// When it was made (first come, first served).
    pub registered_at: OffsetDateTime,
}

/// The seats of a session and who may take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatPolicy {
    /// The node that offers the session.
    pub host: ActorId,
    /// Every seat.
    pub seats_total: u32,
    /// Seats offered to partners (the rest are the host's).
    pub seats_for_partners: u32,
    /// Per-partner quotas.
    pub quotas: BTreeMap<ActorId, u32>,
    /// Quota of a partner not listed (`None`: only listed partners may register).
    pub default_quota: Option<u32>,
}

/// Why a registration waits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitReason {
    /// The host's own seats are taken.
    HostSeatsFull,
    /// The seats offered to partners are taken.
    PartnerSeatsFull,
    /// The partner used its quota.
    QuotaReached {
        /// The quota.
        quota: u32,
    },
    /// The node has no quota on this session.
    NotInvited,
}

impl WaitReason {
    /// The French message for HR.
    pub fn message_fr(&self) -> String {
        match self {
            Self::HostSeatsFull => "Liste d'attente : toutes les places de la collectivité organisatrice sont prises.".to_owned(),
            Self::PartnerSeatsFull => "Liste d'attente : toutes les places offertes aux partenaires sont prises.".to_owned(),
            Self::QuotaReached { quota } => format!("Liste d'attente : votre collectivité a atteint son quota de {quota} place(s)."),
            Self::NotInvited => "Inscription non retenue : votre collectivité ne dispose pas de places sur cette session.".to_owned(),
        }
    }
}

/// The result of [`allocate_seats`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allocation {
    /// Confirmed registrations, in order of arrival.
    pub confirmed: Vec<String>,
    /// Registrations on the waiting list, in order of arrival, with the reason.
    pub waitlisted: Vec<(String, WaitReason)>,
}

/// Allocates seats first come, first served (then by id): the host's agents take the seats
/// not offered to partners; partners share `seats_for_partners`, each within its quota. A
/// registration id seen twice counts once.
pub fn allocate_seats(policy: &SeatPolicy, registrations: &[Registration]) -> Allocation {
    let mut regs: Vec<&Registration> = registrations.iter().collect();
    regs.sort_by(|a, b| {
        a.registered_at
            .cmp(&b.registered_at)
            .then_with(|| a.id.cmp(&b.id))
    });
    let partner_seats = policy.seats_for_partners.min(policy.seats_total);
    let host_seats = policy.seats_total - partner_seats;
    let mut seen = BTreeSet::new();
    let mut host_used = 0;
    let mut partners_used = 0;
    let mut per_node: BTreeMap<&ActorId, u32> = BTreeMap::new();
    let mut out = Allocation::default();
    for r in regs {
        if !seen.insert(r.id.as_str()) {
            continue;
        }
        let verdict = if r.node == policy.host {
            if host_used < host_seats {
                host_used += 1;
                None
            } else {
                Some(WaitReason::HostSeatsFull)
            }
        } else {
            match policy.quotas.get(&r.node).copied().or(policy.default_quota) {
                None => Some(WaitReason::NotInvited),
                Some(quota) => {
                    let used = per_node.entry(&r.node).or_insert(0);
                    if *used >= quota {
                        Some(WaitReason::QuotaReached { quota })
                    } else if partners_used >= partner_seats {
                        Some(WaitReason::PartnerSeatsFull)
                    } else {
                        *used += 1;
                        partners_used += 1;
                        None
                    }
                }
            }
        };
        match verdict {
            None => out.confirmed.push(r.id.clone()),
            Some(w) => out.waitlisted.push((r.id.clone(), w)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use passerelle_protocol::vocab::{Appetite, RomeRef};
    use time::macros::{date, datetime};

    fn example<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!("{}/../spec/examples/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn rome(code: &str) -> MetierRef {
        MetierRef {
            rome: Some(RomeRef {
                code: code.into(),
                label: None,
                version: None,
            }),
            ..Default::default()
        }
    }

    /// A Département project mission on biodiversity (ROME A1204), catégorie C, 10–30 %.
    fn biodiversity_mission() -> Posting {
        let mut p: Posting = example("posting-project-mission.json");
        p.name = "Mission d'appui : inventaire de la biodiversité des parcs".into();
        p.metiers = vec![rome("A1204")];
        if let Some(st) = p.statutory.as_mut() {
            st.categories = vec![Categorie::C, Categorie::B];
            st.filieres = vec![Filiere::Technique];
        }
        if let PostingBody::ProjectMission(b) = &mut p.body {
            b.quotite_pct_min = Some(10);
        }
        p.dates.apply_until = Some(date!(2027 - 02 - 15));
        p.dates.start = Some(date!(2027 - 03 - 01));
        p
    }

    const TODAY: Date = date!(2027 - 01 - 10);

    #[test]
    fn postings_for_a_profile_with_reasons() {
        let profile: AgentProfile = example("agent-profile.json");
        let mission = biodiversity_mission();
        let postings = vec![
            example::<Posting>("posting-vacancy.json"),
            example::<Posting>("posting-mad-offer.json"),
            example::<Posting>("posting-immersion-offer.json"),
            mission.clone(),
        ];
        let found = postings_for_profile(&profile, &postings, TODAY);
        let ids: Vec<&str> = found.iter().map(|s| s.item.id.as_str()).collect();
        assert_eq!(
            ids,
            [mission.id.as_str(), postings[2].id.as_str()],
            "the mission (kind, métier, theme, area…) before the immersion (kind, current métier)"
        );
        let best = &found[0];
        let criteria: Vec<Criterion> = best.reasons.iter().map(|r| r.criterion).collect();
        for c in [
            Criterion::Kind,
            Criterion::Metier,
            Criterion::Theme,
            Criterion::Categorie,
            Criterion::Filiere,
            Criterion::Area,
            Criterion::Quotite,
            Criterion::Dates,
        ] {
            assert!(
                criteria.contains(&c),
                "{c:?} missing from {:?}",
                best.reasons
            );
        }
        assert_eq!(
            best.score,
            best.reasons.iter().map(|r| r.points).sum::<u32>()
        );
        let texts: Vec<&str> = best.reasons.iter().map(|r| r.text_fr.as_str()).collect();
        assert!(texts.iter().any(|t| t.contains("ROME A1204")), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.contains("biodiversité")),
            "{texts:?}"
        );
        assert!(texts.iter().any(|t| t.contains("38185")), "{texts:?}");
        assert!(
            found[1]
                .reasons
                .iter()
                .any(|r| r.text_fr.contains("Même métier"))
        );
        assert!(found[0].score > found[1].score);
    }

    #[test]
    fn hard_conditions_exclude() {
        let profile: AgentProfile = example("agent-profile.json");
        let ok = biodiversity_mission();
        assert!(fit(&profile, &ok, TODAY).is_some());
        // Quotité above the agent's maximum (30 %).
        let mut p = ok.clone();
        if let PostingBody::ProjectMission(b) = &mut p.body {
            b.quotite_pct_min = Some(40);
        }
        assert!(fit(&profile, &p, TODAY).is_none());
        // Applications closed yesterday; open on the last day.
        let mut p = ok.clone();
        p.dates.apply_until = Some(date!(2027 - 01 - 09));
        assert!(fit(&profile, &p, TODAY).is_none());
        p.dates.apply_until = Some(TODAY);
        assert!(fit(&profile, &p, TODAY).is_some());
        // Catégorie not open.
        let mut p = ok.clone();
        if let Some(st) = p.statutory.as_mut() {
            st.categories = vec![Categorie::A];
        }
        assert!(fit(&profile, &p, TODAY).is_none());
        // Not published.
        let mut p = ok.clone();
        p.status = PostingStatus::Draft;
        assert!(fit(&profile, &p, TODAY).is_none());
        // Starts before the agent is available… no: ends before.
        let mut p = ok.clone();
        p.dates.end = Some(date!(2026 - 12 - 31));
        assert!(fit(&profile, &p, TODAY).is_none());
        // Nothing asked for: no suggestion.
        let mut bored = profile.clone();
        bored.appetites.clear();
        bored.metiers_current.clear();
        assert!(fit(&bored, &ok, TODAY).is_none());
    }

    #[test]
    fn profiles_for_a_posting_respect_visibility() {
        let posting = biodiversity_mission(); // by the Département
        let base: AgentProfile = example("agent-profile.json"); // at the Ville
        let mut private = base.clone();
        private.id = "https://emploi.grenoble.fr/profiles/019aa1b2-2222-7222-8222-222222222222"
            .parse()
            .unwrap();
        private.visibility = ProfileVisibility::Private;
        let mut own_hr = base.clone();
        own_hr.id = "https://emploi.grenoble.fr/profiles/019aa1b2-3333-7333-8333-333333333333"
            .parse()
            .unwrap();
        own_hr.visibility = ProfileVisibility::OriginHr;
        let profiles = vec![base.clone(), private, own_hr.clone()];
        let found = profiles_for_posting(&posting, &profiles, TODAY);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].item.id, base.id);
        // The Ville's own posting may see the origin_hr profile.
        let mut local = posting.clone();
        local.attributed_to = base.attributed_to.clone();
        let found = profiles_for_posting(&local, &profiles, TODAY);
        let ids: Vec<_> = found.iter().map(|s| s.item.id.clone()).collect();
        assert!(ids.contains(&own_hr.id) && ids.contains(&base.id) && ids.len() == 2);
    }

    fn swapper(id: &str, node: &str, current: &str, wanted: &str) -> AgentProfile {
        let mut p: AgentProfile = example("agent-profile.json");
        // Published in the order of the ids' last digit.
        let n: i64 = id[id.len() - 1..].parse().unwrap();
        p.published = datetime!(2026-10-01 08:00 UTC) + time::Duration::hours(n);
        p.id = format!("https://{node}/profiles/{id}").parse().unwrap();
        p.attributed_to = format!("https://{node}/actor").parse().unwrap();
        p.handle = id.to_owned();
        p.metiers_current = vec![rome(current)];
        p.appetites = vec![Appetite {
            kinds: vec![PostingKind::ImmersionSwap],
            metiers_wanted: vec![rome(wanted)],
            themes: Vec::new(),
            horizon: None,
        }];
        p
    }

    #[test]
    fn immersion_swaps_need_reciprocity_across_nodes() {
        let a = swapper(
            "019aa1b2-0001-7000-8000-000000000001",
            "ville.example",
            "A1203",
            "K1201",
        );
        let b = swapper(
            "019aa1b2-0002-7000-8000-000000000002",
            "dept.example",
            "K1201",
            "A1203",
        );
        // Same métiers as B, but on A's node: never paired with A.
        let c = swapper(
            "019aa1b2-0003-7000-8000-000000000003",
            "ville.example",
            "K1201",
            "A1203",
        );
        // Wants B's métier too, but B is taken by then.
        let e = swapper(
            "019aa1b2-0005-7000-8000-000000000005",
            "metro.example",
            "A1203",
            "K1201",
        );
        // One-sided: wants K1201 but holds a métier nobody wants.
        let d = swapper(
            "019aa1b2-0004-7000-8000-000000000004",
            "metro.example",
            "M1607",
            "K1201",
        );
        let profiles = vec![e.clone(), d, c.clone(), b.clone(), a.clone()];
        let pairs = pair_immersion_swaps(&profiles);
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.a.handle.as_str(), p.b.handle.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (a.handle.as_str(), b.handle.as_str()),
                (c.handle.as_str(), e.handle.as_str())
            ]
        );
        assert!(
            pairs[0].reason_fr.contains("ROME K1201"),
            "{}",
            pairs[0].reason_fr
        );
        assert!(pairs[0].reason_fr.contains("Réciprocité"));
        // Without the swap appetite, nobody is paired.
        let mut a2 = a.clone();
        a2.appetites[0].kinds = vec![PostingKind::ImmersionOffer];
        assert!(pair_immersion_swaps(&[a2, b]).is_empty());
    }

    #[test]
    fn training_seats_respect_quotas() {
        let host: ActorId = "https://metro.example/actor".parse().unwrap();
        let isere: ActorId = "https://isere.example/actor".parse().unwrap();
        let ville: ActorId = "https://ville.example/actor".parse().unwrap();
        let other: ActorId = "https://other.example/actor".parse().unwrap();
        let policy = SeatPolicy {
            host: host.clone(),
            seats_total: 14,
            seats_for_partners: 6,
            quotas: BTreeMap::from([(isere.clone(), 2), (ville.clone(), 5)]),
            default_quota: None,
        };
        let t0 = datetime!(2027-01-05 09:00 UTC);
        let mut regs = Vec::new();
        let mut add = |id: &str, node: &ActorId, minutes: i64| {
            regs.push(Registration {
                id: id.into(),
                node: node.clone(),
                registered_at: t0 + time::Duration::minutes(minutes),
            });
        };
        for i in 0..9 {
            add(&format!("h{i}"), &host, 10 + i);
        }
        add("i1", &isere, 1);
        add("i2", &isere, 2);
        add("i3", &isere, 3);
        for i in 0..5 {
            add(&format!("v{i}"), &ville, 30 + i);
        }
        add("v0", &ville, 60); // the same registration sent twice
        add("x1", &other, 0);
        let a = allocate_seats(&policy, &regs);
        assert_eq!(a.confirmed.len(), 14);
        assert!(a.confirmed.contains(&"i1".to_owned()) && a.confirmed.contains(&"i2".to_owned()));
        assert_eq!(
            a.waitlisted,
            vec![
                ("x1".to_owned(), WaitReason::NotInvited),
                ("i3".to_owned(), WaitReason::QuotaReached { quota: 2 }),
                ("h8".to_owned(), WaitReason::HostSeatsFull),
                ("v4".to_owned(), WaitReason::PartnerSeatsFull),
            ]
        );
        assert!(a.waitlisted[1].1.message_fr().contains("quota de 2"));
        // Registration order, not input order, decides.
        let mut reversed = regs.clone();
        reversed.reverse();
        assert_eq!(allocate_seats(&policy, &reversed), a);
    }
}
