//! The feed service: one query over local and partners' postings, shared by the HR API
//! (`/api/v1/feed`), the exports and the console. No HTTP here.
//!
//! A query is written as URL query parameters (the same in the API, in console links and
//! in saved searches): repeated parameters or comma-separated values are alternatives,
//! different parameters combine. [`FeedParams::parse`] checks every parameter and reports
//! every problem in French; [`FeedParams::to_query_string`] writes the canonical form.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::search::{self, TextQuery};
use crate::state::AppState;
use crate::store::{
    Facet, FeedBounds, FeedCursor, FeedFilter, FeedItem, FeedPage, FeedQuery, FeedSort, StoreError,
};

/// Default page size.
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size of a feed query (exports page through the results).
pub const MAX_LIMIT: u32 = 100;

/// Errors of the feed service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// Parameters that cannot be understood; one French message each.
    #[error("recherche invalide : {}", .0.iter().map(|(f, m)| format!("{f} : {m}")).collect::<Vec<_>>().join(" ; "))]
    Invalid(Vec<(String, String)>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The kinds of posting with their French names.
pub const KINDS: &[(&str, &str)] = &[
    ("vacancy", "Poste vacant"),
    ("mad_offer", "Mise à disposition"),
    ("project_mission", "Mission d'appui à un projet"),
    ("facilitation_request", "Demande d'animation"),
    ("immersion_offer", "Immersion (Vis mon job)"),
    ("immersion_swap", "Immersion réciproque"),
    ("training_session", "Formation partagée"),
    ("career_offer", "Proposition de carrière"),
];

/// Statuses of a posting with their French names.
pub const STATUSES: &[(&str, &str)] = &[
    ("published", "Ouverte"),
    ("suspended", "Suspendue"),
    ("filled", "Pourvue"),
    ("closed", "Clôturée"),
    ("cancelled", "Annulée"),
    ("expired", "Expirée"),
    ("draft", "Brouillon"),
];

/// Filières with their French names.
pub const FILIERES: &[(&str, &str)] = &[
    ("administrative", "Administrative"),
    ("technique", "Technique"),
    ("culturelle", "Culturelle"),
    ("sportive", "Sportive"),
    ("animation", "Animation"),
    ("sociale", "Sociale"),
    ("medico_sociale", "Médico-sociale"),
    ("medico_technique", "Médico-technique"),
    ("police_municipale", "Police municipale"),
    ("sapeurs_pompiers", "Sapeurs-pompiers"),
];

/// Working time kinds with their French names.
pub const WORKING_TIMES: &[(&str, &str)] = &[
    ("complet", "Temps complet"),
    ("non_complet", "Temps non complet"),
    ("quotite", "Temps partiel (quotité)"),
];

/// Catégories.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("A", "Catégorie A"),
    ("B", "Catégorie B"),
    ("C", "Catégorie C"),
];

/// Sorts with their French names.
pub const SORTS: &[(&str, &str)] = &[
    ("recent", "Les plus récentes"),
    ("deadline", "Date limite la plus proche"),
    ("start", "Prise de poste la plus proche"),
    ("relevance", "Pertinence"),
];

/// The French name of a value in one of the tables above.
pub fn label(table: &[(&'static str, &'static str)], value: &str) -> Option<&'static str> {
    table.iter().find(|(v, _)| *v == value).map(|(_, l)| *l)
}

/// French name of a facet.
pub fn facet_label(facet: Facet) -> &'static str {
    match facet {
        Facet::Kind => "Type d'offre",
        Facet::Status => "Statut",
        Facet::Origin => "Publiée par",
        Facet::WorkingTime => "Temps de travail",
        Facet::Telework => "Télétravail",
        Facet::Categorie => "Catégorie",
        Facet::Filiere => "Filière",
        Facet::Cadre => "Cadre d'emplois",
        Facet::Rome => "Métier (code ROME)",
        Facet::Departement => "Département",
        Facet::Region => "Région",
        Facet::Commune => "Commune",
    }
}

/// A feed query as parameters (the API's and the console's query string).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedParams {
    /// Full text.
    pub q: String,
    /// Kinds.
    pub kind: Vec<String>,
    /// Statuses; empty means `published`; `all` means any.
    pub status: Vec<String>,
    /// Publishing nodes (actor ids, or `local`).
    pub origin: Vec<String>,
    /// Circles (ids or URLs).
    pub circle: Vec<String>,
    /// Catégories.
    pub categorie: Vec<String>,
    /// Filières.
    pub filiere: Vec<String>,
    /// Cadres d'emplois.
    pub cadre: Vec<String>,
    /// Métiers (ROME codes or labels).
    pub metier: Vec<String>,
    /// Départements.
    pub departement: Vec<String>,
    /// Régions.
    pub region: Vec<String>,
    /// Communes.
    pub commune: Vec<String>,
    /// Working time kinds.
    pub working_time: Vec<String>,
    /// Telework.
    pub telework: Option<bool>,
    /// Deadline bounds.
    pub deadline_from: Option<String>,
    /// Deadline bounds.
    pub deadline_to: Option<String>,
    /// Start bounds.
    pub start_from: Option<String>,
    /// Start bounds.
    pub start_to: Option<String>,
    /// Quotité bounds.
    pub quotite_min: Option<i64>,
    /// Quotité bounds.
    pub quotite_max: Option<i64>,
    /// Sort (default: relevance with text, else recent).
    pub sort: Option<FeedSort>,
    /// Page cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// Whether to compute facets (default true).
    pub facets: Option<bool>,
}

/// Parameters that describe the search itself (not paging): kept in saved searches.
const SEARCH_PARAMS: &[&str] = &[
    "q",
    "kind",
    "status",
    "origin",
    "circle",
    "categorie",
    "filiere",
    "cadre",
    "metier",
    "departement",
    "region",
    "commune",
    "working_time",
    "telework",
    "deadline_from",
    "deadline_to",
    "start_from",
    "start_to",
    "quotite_min",
    "quotite_max",
    "sort",
];

fn is_day(s: &str) -> bool {
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

impl FeedParams {
    /// Parses a query string. Unknown parameters and bad values are reported, all at once.
    ///
    /// # Errors
    /// [`FeedError::Invalid`] with a French message per problem.
    pub fn parse(query: &str) -> Result<Self, FeedError> {
        let mut p = Self::default();
        let mut problems: Vec<(String, String)> = Vec::new();
        let mut bad = |field: &str, msg: String| problems.push((field.to_owned(), msg));
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let value = value.trim().to_owned();
            let values = || -> Vec<String> {
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect()
            };
            let mut push_checked =
                |list: &mut Vec<String>, check: &dyn Fn(&str) -> Option<String>| {
                    for v in values() {
                        match check(&v) {
                            Some(msg) => bad(&key, msg),
                            None => {
                                if !list.contains(&v) {
                                    list.push(v);
                                }
                            }
                        }
                    }
                };
            let in_table = |table: &'static [(&'static str, &'static str)], what: &'static str| {
                move |v: &str| -> Option<String> {
                    if table.iter().any(|(k, _)| *k == v) {
                        None
                    } else {
                        Some(format!(
                            "{what} « {v} » inconnu(e) ; valeurs possibles : {}",
                            table.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                        ))
                    }
                }
            };
            let any = |_: &str| -> Option<String> { None };
            match key.as_ref() {
                "q" => p.q = value.clone(),
                "kind" => push_checked(&mut p.kind, &in_table(KINDS, "type d'offre")),
                "status" => push_checked(&mut p.status, &|v: &str| {
                    if v == "all" {
                        None
                    } else {
                        in_table(STATUSES, "statut")(v)
                    }
                }),
                "origin" => push_checked(&mut p.origin, &any),
                "circle" => push_checked(&mut p.circle, &any),
                "categorie" => push_checked(&mut p.categorie, &|v: &str| {
                    in_table(CATEGORIES, "catégorie")(&v.to_ascii_uppercase())
                }),
                "filiere" => push_checked(&mut p.filiere, &in_table(FILIERES, "filière")),
                "cadre" => {
                    // Cadre labels may contain commas: one value per parameter.
                    if !value.is_empty() && !p.cadre.contains(&value) {
                        p.cadre.push(value.clone());
                    }
                }
                "metier" => push_checked(&mut p.metier, &any),
                "departement" => push_checked(&mut p.departement, &|v: &str| {
                    search::departement_name(&v.to_ascii_uppercase())
                        .is_none()
                        .then(|| format!("département « {v} » inconnu (code COG : 38, 2A, 974…)"))
                }),
                "region" => push_checked(&mut p.region, &|v: &str| {
                    search::region_name(v)
                        .is_none()
                        .then(|| format!("région « {v} » inconnue (code COG : 84, 11…)"))
                }),
                "commune" => push_checked(&mut p.commune, &|v: &str| {
                    v.parse::<passerelle_protocol::ids::CogCommune>()
                        .is_err()
                        .then(|| format!("code commune « {v} » invalide (code COG à 5 caractères, par exemple 38185)"))
                }),
                "working_time" => push_checked(
                    &mut p.working_time,
                    &in_table(WORKING_TIMES, "temps de travail"),
                ),
                "telework" => match value.as_str() {
                    "" => {}
                    "true" | "oui" => p.telework = Some(true),
                    "false" | "non" => p.telework = Some(false),
                    other => bad(&key, format!("« {other} » : attendu true ou false")),
                },
                "deadline_from" | "deadline_to" | "start_from" | "start_to" => {
                    if value.is_empty() {
                        continue;
                    }
                    if !is_day(&value) {
                        bad(
                            &key,
                            format!("date « {value} » invalide : attendu AAAA-MM-JJ"),
                        );
                        continue;
                    }
                    let slot = match key.as_ref() {
                        "deadline_from" => &mut p.deadline_from,
                        "deadline_to" => &mut p.deadline_to,
                        "start_from" => &mut p.start_from,
                        _ => &mut p.start_to,
                    };
                    *slot = Some(value.clone());
                }
                "quotite_min" | "quotite_max" => {
                    if value.is_empty() {
                        continue;
                    }
                    match value.parse::<i64>() {
                        Ok(n) if (0..=100).contains(&n) => {
                            if key == "quotite_min" {
                                p.quotite_min = Some(n);
                            } else {
                                p.quotite_max = Some(n);
                            }
                        }
                        _ => bad(
                            &key,
                            format!("quotité « {value} » invalide : un pourcentage de 0 à 100"),
                        ),
                    }
                }
                "sort" => match value.as_str() {
                    "" => {}
                    "recent" => p.sort = Some(FeedSort::Recent),
                    "deadline" => p.sort = Some(FeedSort::Deadline),
                    "start" => p.sort = Some(FeedSort::Start),
                    "relevance" => p.sort = Some(FeedSort::Relevance),
                    other => bad(
                        &key,
                        format!(
                            "tri « {other} » inconnu ; valeurs possibles : recent, deadline, start, relevance"
                        ),
                    ),
                },
                "cursor" => {
                    if !value.is_empty() {
                        p.cursor = Some(value.clone());
                    }
                }
                "limit" => match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => p.limit = Some(n),
                    _ => bad(
                        &key,
                        format!("taille de page « {value} » invalide : de 1 à {MAX_LIMIT}"),
                    ),
                },
                "facets" => match value.as_str() {
                    "true" | "oui" | "" => p.facets = Some(true),
                    "false" | "non" => p.facets = Some(false),
                    other => bad(&key, format!("« {other} » : attendu true ou false")),
                },
                other => bad(other, "paramètre inconnu".to_owned()),
            }
        }
        // Normalise case of codes.
        for c in &mut p.categorie {
            *c = c.to_ascii_uppercase();
        }
        for d in &mut p.departement {
            *d = d.to_ascii_uppercase();
        }
        if p.sort == Some(FeedSort::Relevance) && TextQuery::parse(&p.q).is_none() {
            problems.push((
                "sort".to_owned(),
                "le tri par pertinence demande une recherche en texte libre (paramètre q)"
                    .to_owned(),
            ));
        }
        if problems.is_empty() {
            Ok(p)
        } else {
            Err(FeedError::Invalid(problems))
        }
    }

    /// The canonical query string. With `paging` false, the cursor, the page size and
    /// the facets switch are left out (what a saved search keeps).
    pub fn to_query_string(&self, paging: bool) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        if !self.q.trim().is_empty() {
            s.append_pair("q", self.q.trim());
        }
        for (k, list) in [
            ("kind", &self.kind),
            ("status", &self.status),
            ("origin", &self.origin),
            ("circle", &self.circle),
            ("categorie", &self.categorie),
            ("filiere", &self.filiere),
            ("cadre", &self.cadre),
            ("metier", &self.metier),
            ("departement", &self.departement),
            ("region", &self.region),
            ("commune", &self.commune),
            ("working_time", &self.working_time),
        ] {
            for v in list {
                s.append_pair(k, v);
            }
        }
        if let Some(t) = self.telework {
            s.append_pair("telework", if t { "true" } else { "false" });
        }
        for (k, v) in [
            ("deadline_from", &self.deadline_from),
            ("deadline_to", &self.deadline_to),
            ("start_from", &self.start_from),
            ("start_to", &self.start_to),
        ] {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        }
        for (k, v) in [
            ("quotite_min", self.quotite_min),
            ("quotite_max", self.quotite_max),
        ] {
            if let Some(v) = v {
                s.append_pair(k, &v.to_string());
            }
        }
        if let Some(sort) = self.sort {
            s.append_pair("sort", sort.as_str());
        }
        if paging {
            if let Some(c) = &self.cursor {
                s.append_pair("cursor", c);
            }
            if let Some(l) = self.limit {
                s.append_pair("limit", &l.to_string());
            }
            if self.facets == Some(false) {
                s.append_pair("facets", "false");
            }
        }
        s.finish()
    }

    /// Whether the parameters restrict anything beyond the default status.
    pub fn is_empty_search(&self) -> bool {
        let mut bare = self.clone();
        bare.cursor = None;
        bare.limit = None;
        bare.facets = None;
        bare.sort = None;
        bare.status.clear();
        bare == Self::default()
    }

    /// The effective sort.
    pub fn effective_sort(&self) -> FeedSort {
        self.sort.unwrap_or(if TextQuery::parse(&self.q).is_some() {
            FeedSort::Relevance
        } else {
            FeedSort::Recent
        })
    }

    /// The store filter; `local_actor` stands for `origin=local`.
    pub fn filter(&self, local_actor: &str) -> FeedFilter {
        let statuses = if self.status.iter().any(|s| s == "all") {
            Vec::new()
        } else if self.status.is_empty() {
            vec!["published".to_owned()]
        } else {
            self.status.clone()
        };
        FeedFilter {
            text: TextQuery::parse(&self.q),
            kinds: self.kind.clone(),
            statuses,
            origins: self
                .origin
                .iter()
                .map(|o| {
                    if o == "local" {
                        local_actor.to_owned()
                    } else {
                        o.clone()
                    }
                })
                .collect(),
            circles: self.circle.clone(),
            categories: self.categorie.clone(),
            filieres: self.filiere.clone(),
            cadres: self.cadre.clone(),
            metiers: self.metier.clone(),
            departements: self.departement.clone(),
            regions: self.region.clone(),
            communes: self.commune.clone(),
            working_times: self.working_time.clone(),
            telework: self.telework,
            deadline_from: self.deadline_from.clone(),
            deadline_to: self.deadline_to.clone(),
            start_from: self.start_from.clone(),
            start_to: self.start_to.clone(),
            quotite_min: self.quotite_min,
            quotite_max: self.quotite_max,
            after_doc_id: None,
        }
    }

    /// Whether `value` is selected for `facet`.
    pub fn selected(&self, facet: Facet, value: &str) -> bool {
        let list = match facet {
            Facet::Kind => &self.kind,
            Facet::Status => &self.status,
            Facet::Origin => &self.origin,
            Facet::WorkingTime => &self.working_time,
            Facet::Categorie => &self.categorie,
            Facet::Filiere => &self.filiere,
            Facet::Cadre => &self.cadre,
            Facet::Rome => &self.metier,
            Facet::Departement => &self.departement,
            Facet::Region => &self.region,
            Facet::Commune => &self.commune,
            Facet::Telework => {
                return self.telework.map(|t| t.to_string()).as_deref() == Some(value);
            }
        };
        list.iter().any(|v| v == value)
    }

    /// The same search with `value` of `facet` toggled (and no cursor): facet links.
    pub fn toggled(&self, facet: Facet, value: &str) -> Self {
        let mut p = self.clone();
        p.cursor = None;
        let list = match facet {
            Facet::Kind => &mut p.kind,
            Facet::Status => &mut p.status,
            Facet::Origin => &mut p.origin,
            Facet::WorkingTime => &mut p.working_time,
            Facet::Categorie => &mut p.categorie,
            Facet::Filiere => &mut p.filiere,
            Facet::Cadre => &mut p.cadre,
            Facet::Rome => &mut p.metier,
            Facet::Departement => &mut p.departement,
            Facet::Region => &mut p.region,
            Facet::Commune => &mut p.commune,
            Facet::Telework => {
                let v = value == "true";
                p.telework = if p.telework == Some(v) { None } else { Some(v) };
                return p;
            }
        };
        if let Some(i) = list.iter().position(|v| v == value) {
            list.remove(i);
        } else {
            list.push(value.to_owned());
        }
        p
    }

    /// Keeps only the parameters that describe the search (for saved searches).
    pub fn search_only(&self) -> Self {
        let mut p = self.clone();
        p.cursor = None;
        p.limit = None;
        p.facets = None;
        p
    }
}

/// Whether `name` is a query parameter of a search (not of paging).
pub fn is_search_param(name: &str) -> bool {
    SEARCH_PARAMS.contains(&name)
}

/// Encodes a cursor for `sort` (opaque to clients).
pub fn encode_cursor(sort: FeedSort, cursor: &FeedCursor) -> String {
    let raw = match cursor {
        FeedCursor::After { key, doc_id } => format!("a|{}|{key}|{doc_id}", sort.as_str()),
        FeedCursor::Offset(n) => format!("o|{}|{n}", sort.as_str()),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a cursor made by [`encode_cursor`] for the same sort.
pub fn decode_cursor(sort: FeedSort, text: &str) -> Option<FeedCursor> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let raw = String::from_utf8(bytes).ok()?;
    let parts: Vec<&str> = raw.split('|').collect();
    match parts.as_slice() {
        ["a", s, key, doc] if *s == sort.as_str() => Some(FeedCursor::After {
            key: (*key).to_owned(),
            doc_id: doc.parse().ok()?,
        }),
        ["o", s, n] if *s == sort.as_str() => Some(FeedCursor::Offset(n.parse().ok()?)),
        _ => None,
    }
}

/// Names of the nodes a page mentions: actor id → name.
#[derive(Debug, Clone, Default)]
pub struct Names(BTreeMap<String, String>);

impl Names {
    /// Loads the names of every known partner and of this node.
    ///
    /// # Errors
    /// Store errors.
    pub async fn load(state: &AppState) -> Result<Self, StoreError> {
        let mut map = BTreeMap::new();
        for p in state.store().partners().await? {
            if !p.name.is_empty() {
                map.insert(p.actor_id, p.name);
            }
        }
        match state.store().identity().await {
            Ok(i) => {
                map.insert(state.actor_id(), i.name);
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(Self(map))
    }

    /// The name of a node: known name, else its host.
    pub fn of(&self, actor: &str) -> String {
        if let Some(n) = self.0.get(actor) {
            return n.clone();
        }
        url::Url::parse(actor)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| actor.to_owned())
    }
}

/// A display name for a facet value.
pub fn value_label(facet: Facet, value: &str, names: &Names) -> String {
    let known = match facet {
        Facet::Kind => label(KINDS, value).map(str::to_owned),
        Facet::Status => label(STATUSES, value).map(str::to_owned),
        Facet::WorkingTime => label(WORKING_TIMES, value).map(str::to_owned),
        Facet::Filiere => label(FILIERES, value).map(str::to_owned),
        Facet::Categorie => label(CATEGORIES, value).map(str::to_owned),
        Facet::Telework => Some(if value == "true" { "Possible" } else { "Non" }.to_owned()),
        Facet::Origin => Some(names.of(value)),
        Facet::Departement => search::departement_name(value).map(|n| format!("{n} ({value})")),
        Facet::Region => search::region_name(value).map(str::to_owned),
        Facet::Rome => crate::domain::metiers::by_rome(value)
            .first()
            .map(|m| format!("{value} — {}", m.label)),
        Facet::Cadre | Facet::Commune => None,
    };
    known.unwrap_or_else(|| value.to_owned())
}

/// One search: the page, and what it needs to be shown.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// The parameters as understood.
    pub params: FeedParams,
    /// The effective sort.
    pub sort: FeedSort,
    /// The page.
    pub page: FeedPage,
    /// Encoded cursor of the next page.
    pub next_cursor: Option<String>,
    /// Node names.
    pub names: Names,
}

/// Runs a feed search.
///
/// # Errors
/// [`FeedError::Invalid`] for a cursor that does not belong to the query's sort.
pub async fn search(
    state: &AppState,
    params: &FeedParams,
    after_doc_id: Option<i64>,
) -> Result<SearchResult, FeedError> {
    let sort = params.effective_sort();
    let cursor = match &params.cursor {
        Some(c) => Some(decode_cursor(sort, c).ok_or_else(|| {
            FeedError::Invalid(vec![(
                "cursor".to_owned(),
                "curseur invalide ou d'un autre tri : reprenez à la première page".to_owned(),
            )])
        })?),
        None => None,
    };
    let mut filter = params.filter(&state.actor_id());
    filter.after_doc_id = after_doc_id;
    let query = FeedQuery {
        filter,
        sort,
        cursor,
        limit: params.limit.unwrap_or(DEFAULT_LIMIT),
        facets: params.facets.unwrap_or(true),
        total: true,
        bounds: FeedBounds::default(),
    };
    let page = state.store().feed_search(&query).await?;
    let next_cursor = page.next.as_ref().map(|c| encode_cursor(sort, c));
    let names = Names::load(state).await?;
    Ok(SearchResult {
        params: params.clone(),
        sort,
        page,
        next_cursor,
        names,
    })
}

/// The stored document of a feed posting (local or received), if it still exists.
///
/// # Errors
/// Store errors.
pub async fn document(state: &AppState, item: &FeedItem) -> Result<Option<Value>, StoreError> {
    if let Some(id) = item.local_id {
        return match state.store().posting(id).await {
            Ok(p) => Ok(Some(p.document)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        };
    }
    Ok(state
        .store()
        .remote_posting(&item.posting_id)
        .await?
        .and_then(|r| r.document))
}

/// Every matching posting of a search (for exports), up to `max`, in the search's order.
///
/// # Errors
/// As [`search`].
pub async fn all_items(
    state: &AppState,
    params: &FeedParams,
    max: usize,
) -> Result<(Vec<FeedItem>, Names), FeedError> {
    let mut p = params.search_only();
    p.limit = Some(MAX_LIMIT);
    p.facets = Some(false);
    let mut out = Vec::new();
    loop {
        let r = search(state, &p, None).await?;
        out.extend(r.page.items);
        match r.next_cursor {
            Some(c) if out.len() < max => p.cursor = Some(c),
            _ => {
                out.truncate(max);
                return Ok((out, r.names));
            }
        }
    }
}

/// RFC 3339 text of a time (seconds).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_round_trip_and_accept_lists() {
        let p = FeedParams::parse(
            "q=ing%C3%A9nieure&kind=vacancy,mad_offer&kind=vacancy&categorie=a&departement=2a&telework=oui&deadline_to=2027-01-31&sort=deadline&limit=50",
        )
        .unwrap();
        assert_eq!(p.q, "ingénieure");
        assert_eq!(p.kind, ["vacancy", "mad_offer"]);
        assert_eq!(p.categorie, ["A"]);
        assert_eq!(p.departement, ["2A"]);
        assert_eq!(p.telework, Some(true));
        assert_eq!(p.sort, Some(FeedSort::Deadline));
        let again = FeedParams::parse(&p.to_query_string(true)).unwrap();
        assert_eq!(again, p);
        assert!(!p.to_query_string(false).contains("limit"));
    }

    #[test]
    fn every_problem_is_reported_in_french() {
        let Err(FeedError::Invalid(problems)) = FeedParams::parse(
            "kind=job&categorie=D&departement=20&commune=123&deadline_from=31/12/2026&quotite_min=150&limit=0&sort=best&colour=blue",
        ) else {
            panic!("accepted")
        };
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "kind",
                "categorie",
                "departement",
                "commune",
                "deadline_from",
                "quotite_min",
                "limit",
                "sort",
                "colour"
            ]
        );
        assert!(problems[0].1.contains("inconnu"));
        assert!(problems[4].1.contains("AAAA-MM-JJ"));
        assert!(matches!(
            FeedParams::parse("sort=relevance"),
            Err(FeedError::Invalid(_))
        ));
    }

    #[test]
    fn cursors_belong_to_their_sort() {
        let c = FeedCursor::After {
            key: "2027-01-01".into(),
            doc_id: 42,
        };
        let text = encode_cursor(FeedSort::Deadline, &c);
        assert_eq!(decode_cursor(FeedSort::Deadline, &text), Some(c));
        assert_eq!(decode_cursor(FeedSort::Recent, &text), None);
        assert_eq!(decode_cursor(FeedSort::Recent, "garbage!"), None);
        let o = encode_cursor(FeedSort::Relevance, &FeedCursor::Offset(20));
        assert_eq!(
            decode_cursor(FeedSort::Relevance, &o),
            Some(FeedCursor::Offset(20))
        );
    }

    #[test]
    fn facet_links_toggle_values() {
        let p = FeedParams::parse("kind=vacancy&cursor=abc").unwrap();
        let t = p.toggled(Facet::Kind, "mad_offer");
        assert_eq!(t.kind, ["vacancy", "mad_offer"]);
        assert_eq!(t.cursor, None);
        assert!(t.toggled(Facet::Kind, "vacancy").kind == ["mad_offer"]);
        assert!(p.selected(Facet::Kind, "vacancy"));
        let t = p.toggled(Facet::Telework, "true");
        assert_eq!(t.telework, Some(true));
        assert_eq!(t.toggled(Facet::Telework, "true").telework, None);
    }
}
