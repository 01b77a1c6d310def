//! The feed index: one query over local and received postings, with French full text,
//! filters, facet counts, sorting and cursor paging; and saved searches.
//!
//! `feed_postings` holds one row per posting in the feed (local ones once published,
//! received ones until deleted), `feed_terms` the multi-valued facets, and the full text is
//! in `feed_fts` (SQLite FTS5 over stems computed by `domain::search`) or in the `tsv`
//! column (PostgreSQL: lexemes of the folded text built by `domain::search`, as the server's
//! `french` configuration would make them). Rows are written in the same transaction
//! as the posting they index: `update_posting`/`delete_posting` for local postings,
//! `apply_posting_version`/`apply_posting_delete` for received ones.

use std::fmt::Write as _;

use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AuditRecord, BeginWrite as _, Inner, PostingStatus, Result, Store, StoreError, from_ms,
    json_text, map_err, now, parse_json, parse_uuid, postgres, push_values, push_values_with,
    sqlite, to_ms,
};
use crate::domain::search::{IndexEntry, NO_DATE, Term, TextQuery, facet_token, field};

/// Key of the PostgreSQL advisory lock taken by feed writers, so that `doc_id`s (handed
/// out before commit) become visible in increasing order.
///
/// Every writer of the remote postings cache (`remote_postings`, then its feed rows)
/// takes it too, before it reads the row it will change: at PostgreSQL's read committed,
/// two transactions storing versions of one posting (a pulled page and the projection, or
/// two processes) would otherwise both read the old row, and the later commit could write
/// an older version over a newer one or revive a posting deleted meanwhile. Taken first,
/// it also orders every such writer the same way (no deadlock with their row locks).
///
/// A transaction that also appends to the outbox (whose table lock orders its sequence
/// numbers) takes this lock first: the storing of a version relays it from inside the
/// feed's lock, so a local posting's change takes the feed's lock before the outbox's too.
///
/// An advisory lock's key is the database's, not the schema's: the lock is this class
/// with the hash of the node's schema (`current_schema()`), so that nodes sharing one
/// database in their own schemas (a hosting centre de gestion, the tests) never wait for
/// each other's feed; two schemas whose names collide in the hash only share the lock.
const FEED_LOCK_CLASS: i32 = 0x7061_7373;

/// The statement taking the feed's lock ([`FEED_LOCK_CLASS`]) until the end of the
/// transaction.
const FEED_LOCK_SQL: &str = "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))";

/// A multi-valued or single-valued filter dimension, also a facet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    /// `postingKind`.
    Kind,
    /// `status`.
    Status,
    /// Publishing node (actor id).
    Origin,
    /// `workingTime.kind`.
    WorkingTime,
    /// Telework allowed (`true`/`false`).
    Telework,
    /// Catégorie.
    Categorie,
    /// Filière.
    Filiere,
    /// Cadre d'emplois (as written by the publisher).
    Cadre,
    /// ROME code.
    Rome,
    /// Département.
    Departement,
    /// Région.
    Region,
    /// Commune (COG).
    Commune,
}

impl Facet {
    /// Every facet, in display order.
    pub const ALL: [Facet; 12] = [
        Facet::Kind,
        Facet::Categorie,
        Facet::Filiere,
        Facet::Cadre,
        Facet::Rome,
        Facet::Region,
        Facet::Departement,
        Facet::Commune,
        Facet::Origin,
        Facet::WorkingTime,
        Facet::Telework,
        Facet::Status,
    ];

    /// Wire name (also the query parameter).
    pub fn as_str(self) -> &'static str {
        match self {
            Facet::Kind => "kind",
            Facet::Status => "status",
            Facet::Origin => "origin",
            Facet::WorkingTime => "working_time",
            Facet::Telework => "telework",
            Facet::Categorie => "categorie",
            Facet::Filiere => "filiere",
            Facet::Cadre => "cadre",
            Facet::Rome => "rome",
            Facet::Departement => "departement",
            Facet::Region => "region",
            Facet::Commune => "commune",
        }
    }

    /// The `feed_terms.field` of a multi-valued facet.
    fn term_field(self) -> Option<&'static str> {
        Some(match self {
            Facet::Categorie => field::CATEGORIE,
            Facet::Filiere => field::FILIERE,
            Facet::Cadre => field::CADRE,
            Facet::Rome => field::ROME,
            Facet::Departement => field::DEPARTEMENT,
            Facet::Region => field::REGION,
            Facet::Commune => field::COMMUNE,
            _ => return None,
        })
    }

    /// The `feed_postings` column of a single-valued facet.
    fn column(self) -> Option<&'static str> {
        Some(match self {
            Facet::Kind => "kind",
            Facet::Status => "status",
            Facet::Origin => "author",
            Facet::WorkingTime => "working_time",
            _ => return None,
        })
    }
}

/// What to search for. Values within one dimension are alternatives (OR); dimensions
/// combine (AND). Empty lists do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedFilter {
    /// Full text.
    pub text: Option<TextQuery>,
    /// Posting kinds.
    pub kinds: Vec<String>,
    /// Statuses (wire values).
    pub statuses: Vec<String>,
    /// Publishing nodes (actor ids).
    pub origins: Vec<String>,
    /// Circles (ids or URLs): postings published by their members.
    pub circles: Vec<String>,
    /// Catégories.
    pub categories: Vec<String>,
    /// Filières.
    pub filieres: Vec<String>,
    /// Cadres d'emplois, as written.
    pub cadres: Vec<String>,
    /// ROME codes (upper case) or métier labels (any part of a folded label).
    pub metiers: Vec<String>,
    /// Départements.
    pub departements: Vec<String>,
    /// Régions.
    pub regions: Vec<String>,
    /// Communes (COG).
    pub communes: Vec<String>,
    /// Working time kinds.
    pub working_times: Vec<String>,
    /// Telework allowed.
    pub telework: Option<bool>,
    /// Deadline on or after (`YYYY-MM-DD`; postings without a deadline match).
    pub deadline_from: Option<String>,
    /// Deadline on or before.
    pub deadline_to: Option<String>,
    /// Start on or after (postings without a start date match).
    pub start_from: Option<String>,
    /// Start on or before.
    pub start_to: Option<String>,
    /// Quotité at least (percent).
    pub quotite_min: Option<i64>,
    /// Quotité at most (percent).
    pub quotite_max: Option<i64>,
    /// Only postings first indexed after this `doc_id` (saved-search alerts).
    pub after_doc_id: Option<i64>,
}

impl FeedFilter {
    fn values(&self, facet: Facet) -> &[String] {
        match facet {
            Facet::Kind => &self.kinds,
            Facet::Status => &self.statuses,
            Facet::Origin => &self.origins,
            Facet::WorkingTime => &self.working_times,
            Facet::Categorie => &self.categories,
            Facet::Filiere => &self.filieres,
            Facet::Cadre => &self.cadres,
            Facet::Rome => &[],
            Facet::Departement => &self.departements,
            Facet::Region => &self.regions,
            Facet::Commune => &self.communes,
            Facet::Telework => &[],
        }
    }

    /// Whether the filter restricts `facet`'s dimension.
    fn restricts(&self, facet: Facet) -> bool {
        match facet {
            Facet::Telework => self.telework.is_some(),
            Facet::Rome => !self.metiers.is_empty(),
            other => !self.values(other).is_empty(),
        }
    }

    /// The same filter without its restriction on `facet` (for that facet's counts).
    fn without(&self, facet: Facet) -> Self {
        let mut f = self.clone();
        match facet {
            Facet::Kind => f.kinds.clear(),
            Facet::Status => f.statuses.clear(),
            Facet::Origin => f.origins.clear(),
            Facet::WorkingTime => f.working_times.clear(),
            Facet::Telework => f.telework = None,
            Facet::Categorie => f.categories.clear(),
            Facet::Filiere => f.filieres.clear(),
            Facet::Cadre => f.cadres.clear(),
            Facet::Rome => f.metiers.clear(),
            Facet::Departement => f.departements.clear(),
            Facet::Region => f.regions.clear(),
            Facet::Commune => f.communes.clear(),
        }
        f
    }
}

/// Order of results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedSort {
    /// Most recently changed first.
    #[default]
    Recent,
    /// Nearest deadline first (postings without one last).
    Deadline,
    /// Earliest start first (postings without one last).
    Start,
    /// Best full-text match first (needs a text query): SQLite FTS5 `bm25` (title
    /// weighted 4, the rest 1), PostgreSQL `ts_rank_cd`; ties newest first. Only the
    /// [`FeedBounds::rank_max`] matches most recently added to the feed are ranked (so
    /// the cost does not grow with the matches); when more postings match, the older ones
    /// follow the ranked ones, newest first.
    Relevance,
}

impl FeedSort {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedSort::Recent => "recent",
            FeedSort::Deadline => "deadline",
            FeedSort::Start => "start",
            FeedSort::Relevance => "relevance",
        }
    }
}

/// Where a page starts: after a (sort key, doc id) pair, or at an offset (relevance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedCursor {
    /// After this sort key and `doc_id`.
    After {
        /// The sort key of the last result (time in ms or a date).
        key: String,
        /// Its `doc_id`.
        doc_id: i64,
    },
    /// Skip this many results.
    Offset(i64),
}

/// One feed query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedQuery {
    /// Filters.
    pub filter: FeedFilter,
    /// Order.
    pub sort: FeedSort,
    /// Start of the page.
    pub cursor: Option<FeedCursor>,
    /// Page size.
    pub limit: u32,
    /// Whether to count matches per facet value.
    pub facets: bool,
    /// Whether to count all matches.
    pub total: bool,
    /// How far counting goes (see [`FeedBounds`]).
    pub bounds: FeedBounds,
}

/// Most matches counted for `total` by default: beyond, the total is "more than this".
pub const TOTAL_MAX: i64 = 1_000;

/// Matches over which facets are counted by default: beyond, the counts are those of a
/// sample of this many matches, and flagged as such.
pub const FACET_SAMPLE: i64 = 1_000;

/// Matches ranked by relevance by default (see [`FeedBounds::rank_max`]).
pub const RANK_MAX: i64 = 1_000;

/// Bounds on the work of one feed query, so that its cost does not grow with the feed:
/// `total` counts at most `total_max` matches and facets are counted over at most
/// `facet_sample` matches (whichever the database finds first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedBounds {
    /// Most matches counted for the total.
    pub total_max: i64,
    /// Most matches over which facets are counted.
    pub facet_sample: i64,
    /// SQLite: postings above which the selected values of a multi-valued filter are
    /// checked posting by posting rather than listed first (a plan choice: the results
    /// are the same).
    pub dense_terms: i64,
    /// Most matches ranked by relevance: the `rank_max` matches most recently added to
    /// the feed (highest `doc_id`) are ranked, and any older ones follow them, newest
    /// first (see [`FeedSort::Relevance`]).
    pub rank_max: i64,
}

impl Default for FeedBounds {
    fn default() -> Self {
        Self {
            total_max: TOTAL_MAX,
            facet_sample: FACET_SAMPLE,
            dense_terms: DENSE_TERMS,
            rank_max: RANK_MAX,
        }
    }
}

/// One posting of the feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedItem {
    /// Index sequence: increases with each posting's first indexing.
    pub doc_id: i64,
    /// The posting's id (URL).
    pub posting_id: String,
    /// Id of a local posting.
    pub local_id: Option<Uuid>,
    /// Publishing node (actor id).
    pub author: String,
    /// Relaying node, when received by `Announce`.
    pub relayed_by: Option<String>,
    /// `postingKind`.
    pub kind: String,
    /// `status`.
    pub status: String,
    /// `visibility`.
    pub visibility: String,
    /// Title.
    pub name: String,
    /// Summary.
    pub summary: Option<String>,
    /// Employer.
    pub employer: Option<String>,
    /// Deadline (`YYYY-MM-DD`).
    pub apply_until: Option<String>,
    /// Start (`YYYY-MM-DD`).
    pub start: Option<String>,
    /// Quotité (percent).
    pub quotite_pct: Option<i64>,
    /// Working time kind.
    pub working_time: Option<String>,
    /// Telework allowed.
    pub telework: Option<bool>,
    /// First publication.
    pub published_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Key of the verified proof.
    pub verified_key: Option<String>,
    /// When the proof was verified (received postings) or made (local ones).
    pub verified_at: Option<OffsetDateTime>,
}

/// Matches per value of a facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FacetCount {
    /// The facet.
    pub facet: Facet,
    /// The value.
    pub value: String,
    /// Matching postings.
    pub count: i64,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedPage {
    /// The postings.
    pub items: Vec<FeedItem>,
    /// Cursor of the next page, if there is one.
    pub next: Option<FeedCursor>,
    /// All matches (when asked), counted up to [`FeedBounds::total_max`].
    pub total: Option<i64>,
    /// Whether `total` is the exact number of matches; when false there are more than
    /// `total` (which is then [`FeedBounds::total_max`]).
    pub total_exact: bool,
    /// Counts per facet value (when asked), by facet then count.
    pub facets: Vec<FacetCount>,
    /// Whether the facet counts are exact (also when none were asked); when false, some
    /// facets were counted over a sample of [`FeedBounds::facet_sample`] matches only.
    pub facets_exact: bool,
}

/// Most values listed per facet.
pub const FACET_VALUES_MAX: usize = 30;

/// A saved search.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedSearch {
    /// Id.
    pub id: Uuid,
    /// Owner (the principal's audit name).
    pub owner: String,
    /// Name given by the owner.
    pub name: String,
    /// The query, as a URL query string (`q=…&kind=…`).
    pub query: String,
    /// Whether new matches are signalled.
    pub alert: bool,
    /// Newest `doc_id` the owner has seen.
    pub seen_doc_id: i64,
    /// When the owner last marked the results seen.
    pub seen_at: OffsetDateTime,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// A value bound to a query.
#[derive(Debug, Clone)]
enum Param {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// SQL text and its parameters, numbered `$1…` in order.
#[derive(Debug, Default)]
struct Sql {
    params: Vec<Param>,
}

impl Sql {
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn text(&mut self, s: &str) -> String {
        self.bind(Param::Text(s.to_owned()))
    }

    fn list(&mut self, values: &[String]) -> String {
        values
            .iter()
            .map(|v| self.text(v))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                Param::Text(s) => q.bind(s.clone()),
                Param::Int(i) => q.bind(*i),
                Param::Bool(b) => q.bind(*b),
            };
        }
        q
    }};
}

fn is_rome(code: &str) -> bool {
    crate::domain::metiers::is_rome_code(code)
}

/// The multi-valued facets selected by value (the métier, matched by ROME code or by
/// label, has rules of its own).
const TERM_VALUE_FACETS: [Facet; 6] = [
    Facet::Categorie,
    Facet::Filiere,
    Facet::Cadre,
    Facet::Departement,
    Facet::Region,
    Facet::Commune,
];

/// The [`facet_token`]s that `filter` selects, one group of alternatives per restricted
/// multi-valued facet (and one for its métiers when all are ROME codes; labels are
/// matched by substring, which no token can do).
fn facet_token_groups(filter: &FeedFilter) -> Vec<Vec<String>> {
    let mut groups = Vec::new();
    for facet in TERM_VALUE_FACETS {
        let values = filter.values(facet);
        if let Some(field) = facet.term_field()
            && !values.is_empty()
        {
            groups.push(values.iter().map(|v| facet_token(field, v)).collect());
        }
    }
    if metiers_are_rome_codes(filter) {
        groups.push(
            filter
                .metiers
                .iter()
                .map(|m| facet_token(field::ROME, &m.to_ascii_uppercase()))
                .collect(),
        );
    }
    groups
}

/// Whether the filter selects métiers, all by ROME code (a label is matched by substring,
/// which no token can do).
fn metiers_are_rome_codes(filter: &FeedFilter) -> bool {
    !filter.metiers.is_empty()
        && filter
            .metiers
            .iter()
            .all(|m| is_rome(&m.to_ascii_uppercase()))
}

/// Whether the words' condition of `filter` ([`fts5_words`], [`pg_words`]: present
/// whenever the filter has words to find) carries its [`facet_token_groups`]. A token
/// stands for exactly one (field, value) term of `feed_terms`, and both are written
/// together from the same [`IndexEntry`](crate::domain::search::IndexEntry): the facets
/// the tokens cover then need no `feed_terms` condition of their own, which at a million
/// postings would list the postings of a whole département (150,000) to intersect them.
fn tokens_apply(filter: &FeedFilter) -> bool {
    filter.text.as_ref().is_some_and(|t| !t.include.is_empty())
}

/// The FTS5 query (SQLite) of the words `include`, in the title and text, narrowed by
/// the [`facet_token_groups`] of the filter, so that the full-text index itself
/// intersects the words with those filters (a merge of posting lists); [`conditions`]
/// then checks no other way the facets the tokens cover ([`tokens_apply`]).
fn fts5_words(filter: &FeedFilter, include: &[Term]) -> String {
    let mut q = format!("{{name body}} : ({})", TextQuery::fts5(include, "AND"));
    for group in facet_token_groups(filter) {
        let alts: Vec<String> = group.iter().map(|t| format!("\"{t}\"")).collect();
        let _ = write!(q, " AND facets : ({})", alts.join(" OR "));
    }
    q
}

/// The PostgreSQL condition that `f.tsv` holds the words `include` and, as on SQLite
/// ([`fts5_words`]), the filter's facet tokens, so that one GIN index scan intersects
/// them. Words and tokens are cast to `tsquery`, not parsed by `to_tsquery`: the words'
/// lexemes are the node's ([`TextQuery::tsquery`]), and no dictionary changes a token.
fn pg_words(filter: &FeedFilter, include: &[Term], sql: &mut Sql) -> String {
    let p = sql.text(&TextQuery::tsquery(include, "&"));
    let groups = facet_token_groups(filter);
    if groups.is_empty() {
        return format!("f.tsv @@ CAST({p} AS tsquery)");
    }
    let facets = groups
        .iter()
        .map(|g| {
            let alts: Vec<String> = g.iter().map(|t| format!("'{t}'")).collect();
            format!("({})", alts.join(" | "))
        })
        .collect::<Vec<_>>()
        .join(" & ");
    let f = sql.text(&facets);
    format!("f.tsv @@ (CAST({p} AS tsquery) && CAST({f} AS tsquery))")
}

/// The estimated rows of the top node of a plan printed by `EXPLAIN` (its first line,
/// `… (cost=… rows=N width=…)`).
fn plan_rows(line: &str) -> Option<f64> {
    let rest = &line[line.find(" rows=")? + 6..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The `WHERE` conditions (on alias `f`) of a filter.
/// `dense` lists the multi-valued facets whose selected values hold many postings
/// (SQLite only, see [`Store::dense_term_facets`]): they are checked posting by posting
/// (`EXISTS`, one index probe each) instead of listing all their postings first (`IN`).
fn conditions(
    filter: &FeedFilter,
    pg: bool,
    skip_text_include: bool,
    dense: &[Facet],
    walk: Option<&str>,
    sql: &mut Sql,
) -> String {
    // When walking a sort index (SQLite, see `Store::walks_sort_index`), `+` keeps the
    // planner from using any other index: every other condition is checked row by row.
    let plus = if walk.is_some() { "+" } else { "" };
    let mut c: Vec<String> = Vec::new();
    for facet in [
        Facet::Kind,
        Facet::Status,
        Facet::Origin,
        Facet::WorkingTime,
    ] {
        let values = filter.values(facet);
        if !values.is_empty()
            && let Some(col) = facet.column()
        {
            c.push(format!("{plus}f.{col} IN ({})", sql.list(values)));
        }
    }
    let tokens = tokens_apply(filter);
    for facet in TERM_VALUE_FACETS {
        let values = filter.values(facet);
        if !values.is_empty()
            && !tokens
            && let Some(field) = facet.term_field()
        {
            let fp = sql.text(field);
            let list = sql.list(values);
            c.push(if dense.contains(&facet) {
                format!(
                    "EXISTS (SELECT 1 FROM feed_terms t WHERE t.field = {fp} AND t.value IN ({list}) \
                     AND t.doc_id = f.doc_id)"
                )
            } else {
                format!(
                    "f.doc_id IN (SELECT t.doc_id FROM feed_terms t WHERE t.field = {fp} AND t.value IN ({list}))"
                )
            });
        }
    }
    // ROME codes alone are covered by their tokens too.
    let metiers_by_token = tokens && metiers_are_rome_codes(filter);
    if !filter.metiers.is_empty() && !metiers_by_token {
        let mut alts = Vec::new();
        for m in &filter.metiers {
            if is_rome(&m.to_ascii_uppercase()) {
                let fp = sql.text(field::ROME);
                let v = sql.text(&m.to_ascii_uppercase());
                alts.push(format!("(t.field = {fp} AND t.value = {v})"));
            } else {
                let label = crate::domain::search::folded(m);
                if label.is_empty() {
                    continue;
                }
                let fp = sql.text(field::METIER);
                let v = sql.text(&format!("%{}%", label.replace(['%', '_'], "")));
                alts.push(format!("(t.field = {fp} AND t.value LIKE {v})"));
            }
        }
        if !alts.is_empty() {
            c.push(if walk.is_some() || dense.contains(&Facet::Rome) {
                format!(
                    "EXISTS (SELECT 1 FROM feed_terms t WHERE t.doc_id = f.doc_id AND ({}))",
                    alts.join(" OR ")
                )
            } else {
                format!(
                    "f.doc_id IN (SELECT t.doc_id FROM feed_terms t WHERE {})",
                    alts.join(" OR ")
                )
            });
        }
    }
    if !filter.circles.is_empty() {
        let ids = sql.list(&filter.circles);
        let urls = sql.list(&filter.circles);
        c.push(format!(
            "{plus}f.author IN (SELECT m.actor_id FROM circle_members m JOIN circles ci ON ci.id = m.circle_id \
             WHERE ci.id IN ({ids}) OR ci.url IN ({urls}))"
        ));
    }
    if let Some(t) = filter.telework {
        let b = sql.bind(Param::Bool(t));
        c.push(format!("f.telework = {b}"));
    }
    for (value, col, op) in [
        (&filter.deadline_from, "apply_until", ">="),
        (&filter.deadline_to, "apply_until", "<="),
        (&filter.start_from, "start_date", ">="),
        (&filter.start_to, "start_date", "<="),
    ] {
        if let Some(v) = value {
            let p = sql.text(v);
            // A range on the walked sort column narrows the walk itself.
            let plus = if walk == Some(col) { "" } else { plus };
            c.push(format!("{plus}f.{col} {op} {p}"));
        }
    }
    if let Some(v) = filter.quotite_min {
        let p = sql.bind(Param::Int(v));
        c.push(format!("f.quotite_pct >= {p}"));
    }
    if let Some(v) = filter.quotite_max {
        let p = sql.bind(Param::Int(v));
        c.push(format!("f.quotite_pct <= {p}"));
    }
    if let Some(v) = filter.after_doc_id {
        let p = sql.bind(Param::Int(v));
        c.push(format!("f.doc_id > {p}"));
    }
    if let Some(text) = &filter.text {
        if !text.include.is_empty() && !skip_text_include {
            c.push(if pg {
                pg_words(filter, &text.include, sql)
            } else {
                let p = sql.text(&fts5_words(filter, &text.include));
                format!("{plus}f.doc_id IN (SELECT rowid FROM feed_fts WHERE feed_fts MATCH {p})")
            });
        }
        if !text.exclude.is_empty() {
            c.push(if pg {
                let p = sql.text(&TextQuery::tsquery(&text.exclude, "|"));
                format!("NOT (f.tsv @@ CAST({p} AS tsquery))")
            } else {
                let p = sql.text(&format!(
                    "{{name body}} : ({})",
                    TextQuery::fts5(&text.exclude, "OR")
                ));
                format!("f.doc_id NOT IN (SELECT rowid FROM feed_fts WHERE feed_fts MATCH {p})")
            });
        }
    }
    if c.is_empty() {
        "1 = 1".to_owned()
    } else {
        c.join(" AND ")
    }
}

/// The `FROM` and `WHERE` of the matches of `filter` when no order is needed (counts and
/// facet samples). On SQLite with words to find and no selective term filter, the
/// full-text index drives (each match then checked against the other filters, the scan
/// stopping at the `LIMIT`) instead of listing every text match first.
fn matches_source(
    filter: &FeedFilter,
    pg: bool,
    dense: &[Facet],
    sql: &mut Sql,
) -> (String, String) {
    let include = filter
        .text
        .as_ref()
        .map(|t| t.include.as_slice())
        .unwrap_or_default();
    let selective_terms = Facet::ALL
        .into_iter()
        .any(|f| f.term_field().is_some() && filter.restricts(f) && !dense.contains(&f));
    if pg || include.is_empty() || selective_terms {
        let where_ = conditions(filter, pg, false, dense, None, sql);
        return ("feed_postings f".to_owned(), where_);
    }
    let p = sql.text(&fts5_words(filter, include));
    let where_ = conditions(filter, false, true, dense, None, sql);
    (
        "feed_fts CROSS JOIN feed_postings f ON f.doc_id = feed_fts.rowid".to_owned(),
        format!("feed_fts MATCH {p} AND {where_}"),
    )
}

const ITEM_COLUMNS: &str = "f.doc_id, f.posting_id, f.local_id, f.author, f.relayed_by, f.kind, \
     f.status, f.visibility, f.name, f.summary, f.employer, f.apply_until, f.start_date, \
     f.quotite_pct, f.working_time, f.telework, f.published_at, f.updated_at, f.verified_key, \
     f.verified_at";

macro_rules! item_from_row {
    ($r:expr) => {{
        let r = &$r;
        let local: Option<String> = col!(r, "local_id");
        let apply_until: String = col!(r, "apply_until");
        let start: String = col!(r, "start_date");
        let verified_at: Option<i64> = col!(r, "verified_at");
        FeedItem {
            doc_id: col!(r, "doc_id"),
            posting_id: col!(r, "posting_id"),
            local_id: local.as_deref().map(parse_uuid).transpose()?,
            author: col!(r, "author"),
            relayed_by: col!(r, "relayed_by"),
            kind: col!(r, "kind"),
            status: col!(r, "status"),
            visibility: col!(r, "visibility"),
            name: col!(r, "name"),
            summary: col!(r, "summary"),
            employer: col!(r, "employer"),
            apply_until: (apply_until != NO_DATE).then_some(apply_until),
            start: (start != NO_DATE).then_some(start),
            quotite_pct: col!(r, "quotite_pct"),
            working_time: col!(r, "working_time"),
            telework: col!(r, "telework"),
            published_at: from_ms(col!(r, "published_at")),
            updated_at: from_ms(col!(r, "updated_at")),
            verified_key: col!(r, "verified_key"),
            verified_at: verified_at.map(from_ms),
        }
    }};
}

macro_rules! saved_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        SavedSearch {
            id: parse_uuid(&id)?,
            owner: col!(r, "owner"),
            name: col!(r, "name"),
            query: col!(r, "query"),
            alert: col!(r, "alert"),
            seen_doc_id: col!(r, "seen_doc_id"),
            seen_at: from_ms(col!(r, "seen_at")),
            created_at: from_ms(col!(r, "created_at")),
        }
    }};
}

/// What the feed row of a posting records besides its document.
#[derive(Debug, Clone)]
pub(super) struct FeedRecord<'a> {
    pub posting_id: &'a str,
    pub local_id: Option<Uuid>,
    pub author: &'a str,
    pub relayed_by: Option<&'a str>,
    pub verified_key: Option<String>,
    pub verified_at: Option<i64>,
    pub entry: std::borrow::Cow<'a, IndexEntry>,
}

impl<'a> FeedRecord<'a> {
    /// A local posting: its proof was made by this node when it was built.
    pub fn local(id: Uuid, document: &'a serde_json::Value, signed_at: i64) -> Option<Self> {
        let posting_id = document.get("id")?.as_str()?;
        let author = document.get("attributedTo")?.as_str()?;
        let entry = IndexEntry::from_document(document);
        Some(Self {
            posting_id,
            local_id: Some(id),
            author,
            relayed_by: None,
            verified_key: entry.proof_key.clone(),
            verified_at: Some(signed_at),
            entry: std::borrow::Cow::Owned(entry),
        })
    }
}

impl<'a> FeedRecord<'a> {
    /// A received posting version, verified at `verified_at`.
    pub fn remote(v: &'a super::PostingVersion, verified_at: i64) -> Self {
        Self::remote_indexed(
            v,
            std::borrow::Cow::Owned(IndexEntry::from_document(&v.document)),
            verified_at,
        )
    }

    /// [`FeedRecord::remote`] with the version's index entry already computed.
    pub fn remote_indexed(
        v: &'a super::PostingVersion,
        entry: std::borrow::Cow<'a, IndexEntry>,
        verified_at: i64,
    ) -> Self {
        Self {
            posting_id: &v.object_id,
            local_id: None,
            author: &v.author,
            relayed_by: v.relayed_by.as_deref(),
            verified_key: Some(v.verified_key.clone()),
            verified_at: Some(verified_at),
            entry,
        }
    }
}

/// The PostgreSQL `tsv` of a feed row from parameter `$n`: the text form built by the
/// node ([`IndexEntry::pg_tsvector`]: the folded title weighted A, the folded text
/// weighted B, and the posting's [`facet_token`]s as lexemes without positions, which
/// narrow a search but which `ts_rank_cd` ignores).
fn pg_tsv(n: usize) -> String {
    format!("CAST(${n} AS tsvector)")
}

/// Writes of the feed index inside a transaction (one implementation per backend).
pub(super) trait FeedIndex: Send {
    /// Indexes (or re-indexes) a posting.
    fn feed_upsert(
        &mut self,
        rec: &FeedRecord<'_>,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Indexes postings that are not in the feed yet, in a few multi-row statements
    /// (what [`Store::reindex_feed`] does in bulk); one already there (indexed meanwhile
    /// by another writer) is left as it is. Returns how many were added.
    fn feed_insert_new(
        &mut self,
        recs: &[FeedRecord<'_>],
    ) -> impl std::future::Future<Output = Result<u64>> + Send;
    /// Takes the feed's lock until the end of the transaction ([`FEED_LOCK_CLASS`]) on
    /// PostgreSQL; nothing on SQLite, whose single writer already serialises writers.
    fn lock_feed(&mut self) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Removes a posting by its id (`by_local` false) or by the local posting id.
    fn feed_remove(
        &mut self,
        key: &str,
        by_local: bool,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

/// Binds the columns of a feed row from `local_id` to `verified_at`, in the order of the
/// `INSERT` and `UPDATE` statements of [`FeedIndex`] and of the bulk indexing.
trait BindFeedFields {
    fn bind_feed_fields(self, rec: &FeedRecord<'_>) -> Self;
}

macro_rules! bind_feed_fields_impl {
    ($db:ty) => {
        impl BindFeedFields for sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments> {
            fn bind_feed_fields(self, rec: &FeedRecord<'_>) -> Self {
                let e = &rec.entry;
                self.bind(rec.local_id.map(|u| u.to_string()))
                    .bind(rec.author)
                    .bind(rec.relayed_by)
                    .bind(&e.kind)
                    .bind(&e.status)
                    .bind(&e.visibility)
                    .bind(&e.name)
                    .bind(&e.summary)
                    .bind(&e.employer)
                    .bind(&e.apply_until)
                    .bind(&e.start)
                    .bind(e.quotite_pct)
                    .bind(&e.working_time)
                    .bind(e.telework)
                    .bind(e.published_ms)
                    .bind(e.updated_ms)
                    .bind(rec.verified_key.as_deref())
                    .bind(rec.verified_at)
            }
        }
    };
}

bind_feed_fields_impl!(sqlx::Sqlite);
bind_feed_fields_impl!(sqlx::Postgres);

macro_rules! feed_index_impl {
    ($conn:ty, $pg:expr) => {
        impl FeedIndex for $conn {
            async fn feed_upsert(&mut self, rec: &FeedRecord<'_>) -> Result<()> {
                let pg: bool = $pg;
                let e = &rec.entry;
                self.lock_feed().await?;
                let existing = sqlx::query("SELECT doc_id FROM feed_postings WHERE posting_id = $1")
                    .bind(rec.posting_id)
                    .fetch_optional(&mut *self)
                    .await
                    .map_err(map_err("read the feed index"))?;
                let t = to_ms(now());
                let doc_id: i64 = match existing {
                    Some(r) => {
                        let doc_id: i64 = col!(r, "doc_id");
                        let tsv = if pg {
                            format!(", tsv = {}", pg_tsv(20))
                        } else {
                            String::new()
                        };
                        let sql = format!(
                            "UPDATE feed_postings SET local_id = $1, author = $2, relayed_by = $3, kind = $4, status = $5, \
                             visibility = $6, name = $7, summary = $8, employer = $9, apply_until = $10, start_date = $11, \
                             quotite_pct = $12, working_time = $13, telework = $14, published_at = $15, updated_at = $16, \
                             verified_key = $17, verified_at = $18{tsv} WHERE doc_id = $19"
                        );
                        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind_feed_fields(rec)
                            .bind(doc_id);
                        let q = if pg {
                            q.bind(e.pg_tsvector().into_owned())
                        } else {
                            q
                        };
                        q.execute(&mut *self)
                            .await
                            .map_err(map_err("update the feed index"))?;
                        sqlx::query("DELETE FROM feed_terms WHERE doc_id = $1")
                            .bind(doc_id)
                            .execute(&mut *self)
                            .await
                            .map_err(map_err("update the feed index"))?;
                        if !pg {
                            sqlx::query("DELETE FROM feed_fts WHERE rowid = $1")
                                .bind(doc_id)
                                .execute(&mut *self)
                                .await
                                .map_err(map_err("update the feed index"))?;
                        }
                        doc_id
                    }
                    None => {
                        let (tsv_col, tsv_val) = if pg {
                            (", tsv", format!(", {}", pg_tsv(21)))
                        } else {
                            ("", String::new())
                        };
                        let sql = format!(
                            "INSERT INTO feed_postings (posting_id, local_id, author, relayed_by, kind, status, visibility, \
                             name, summary, employer, apply_until, start_date, quotite_pct, working_time, telework, \
                             published_at, updated_at, verified_key, verified_at, indexed_at{tsv_col}) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20{tsv_val}) \
                             RETURNING doc_id"
                        );
                        let q = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .bind(rec.posting_id)
                            .bind_feed_fields(rec)
                            .bind(t);
                        let q = if pg {
                            q.bind(e.pg_tsvector().into_owned())
                        } else {
                            q
                        };
                        let row = q
                            .fetch_one(&mut *self)
                            .await
                            .map_err(map_err("add to the feed index"))?;
                        col!(row, "doc_id")
                    }
                };
                let terms: Vec<(i64, &str, &str)> =
                    e.terms.iter().map(|(f, v)| (doc_id, *f, v.as_str())).collect();
                self.insert_terms(&terms).await?;
                if !pg {
                    sqlx::query("INSERT INTO feed_fts (rowid, name, body, facets) VALUES ($1, $2, $3, $4)")
                        .bind(doc_id)
                        .bind(e.stems_name())
                        .bind(e.stems_body())
                        .bind(e.facet_tokens())
                        .execute(&mut *self)
                        .await
                        .map_err(map_err("index the text of a posting"))?;
                }
                Ok(())
            }

            async fn feed_insert_new(&mut self, recs: &[FeedRecord<'_>]) -> Result<u64> {
                let pg: bool = $pg;
                if recs.is_empty() {
                    return Ok(0);
                }
                self.lock_feed().await?;
                let t = to_ms(now());
                let rows_per_insert = if pg { BULK_ROWS.0 } else { BULK_ROWS.1 };
                let mut added: Vec<(i64, &FeedRecord<'_>)> = Vec::with_capacity(recs.len());
                for chunk in recs.chunks(rows_per_insert) {
                    let mut sql = String::from(
                        "INSERT INTO feed_postings (posting_id, local_id, author, relayed_by, kind, status, visibility, \
                         name, summary, employer, apply_until, start_date, quotite_pct, working_time, telework, \
                         published_at, updated_at, verified_key, verified_at, indexed_at",
                    );
                    sql.push_str(if pg { ", tsv) VALUES " } else { ") VALUES " });
                    push_values_with(&mut sql, chunk.len(), 20, if pg { 1 } else { 0 }, !pg, |sql, b| {
                        if pg {
                            let _ = write!(sql, ", {}", pg_tsv(b + 21));
                        }
                    });
                    sql.push_str(" ON CONFLICT (posting_id) DO NOTHING RETURNING posting_id, doc_id");
                    // Computed ahead on a pulled page (`IndexEntry::with_pg_tsvector`).
                    let tsvs: Vec<std::borrow::Cow<'_, str>> = if pg {
                        chunk.iter().map(|rec| rec.entry.pg_tsvector()).collect()
                    } else {
                        Vec::new()
                    };
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (i, rec) in chunk.iter().enumerate() {
                        q = q
                            .bind(rec.posting_id)
                            .bind_feed_fields(rec)
                            .bind(t);
                        if let Some(tsv) = tsvs.get(i) {
                            q = q.bind(tsv.as_ref());
                        }
                    }
                    let rows = q
                        .fetch_all(&mut *self)
                        .await
                        .map_err(map_err("add to the feed index"))?;
                    for r in rows {
                        let id: String = col!(r, "posting_id");
                        let doc_id: i64 = col!(r, "doc_id");
                        if let Some(rec) = chunk.iter().find(|rec| rec.posting_id == id) {
                            added.push((doc_id, rec));
                        }
                    }
                }
                let terms: Vec<(i64, &str, &str)> = added
                    .iter()
                    .flat_map(|(doc_id, rec)| {
                        rec.entry.terms.iter().map(move |(f, v)| (*doc_id, *f, v.as_str()))
                    })
                    .collect();
                self.insert_terms(&terms).await?;
                if !pg {
                    for chunk in added.chunks(rows_per_insert) {
                        let mut sql = String::from("INSERT INTO feed_fts (rowid, name, body, facets) VALUES ");
                        push_values(&mut sql, chunk.len(), 4, true);
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for (doc_id, rec) in chunk {
                            let e = &rec.entry;
                            q = q.bind(*doc_id).bind(e.stems_name()).bind(e.stems_body()).bind(e.facet_tokens());
                        }
                        q.execute(&mut *self)
                            .await
                            .map_err(map_err("index the text of a posting"))?;
                    }
                }
                Ok(u64::try_from(added.len()).unwrap_or(u64::MAX))
            }

            async fn lock_feed(&mut self) -> Result<()> {
                if $pg {
                    sqlx::query(FEED_LOCK_SQL)
                        .bind(FEED_LOCK_CLASS)
                        .execute(&mut *self)
                        .await
                        .map_err(map_err("lock the feed index"))?;
                }
                Ok(())
            }

            async fn feed_remove(&mut self, key: &str, by_local: bool) -> Result<()> {
                let pg: bool = $pg;
                let sql = if by_local {
                    "SELECT doc_id FROM feed_postings WHERE local_id = $1"
                } else {
                    "SELECT doc_id FROM feed_postings WHERE posting_id = $1"
                };
                let Some(row) = sqlx::query(sql)
                    .bind(key)
                    .fetch_optional(&mut *self)
                    .await
                    .map_err(map_err("read the feed index"))?
                else {
                    return Ok(());
                };
                let doc_id: i64 = col!(row, "doc_id");
                if !pg {
                    sqlx::query("DELETE FROM feed_fts WHERE rowid = $1")
                        .bind(doc_id)
                        .execute(&mut *self)
                        .await
                        .map_err(map_err("remove from the feed index"))?;
                }
                sqlx::query("DELETE FROM feed_terms WHERE doc_id = $1")
                    .bind(doc_id)
                    .execute(&mut *self)
                    .await
                    .map_err(map_err("remove from the feed index"))?;
                sqlx::query("DELETE FROM feed_postings WHERE doc_id = $1")
                    .bind(doc_id)
                    .execute(&mut *self)
                    .await
                    .map_err(map_err("remove from the feed index"))?;
                Ok(())
            }
        }
    };
}

feed_index_impl!(sqlx::SqliteConnection, false);
feed_index_impl!(sqlx::PgConnection, true);

/// Inserts the `feed_terms` rows `(doc_id, field, value)` of postings added to the feed or
/// indexed again (one implementation per backend), with a plain `INSERT`: each posting's
/// terms are distinct ([`IndexEntry`]), and its `doc_id` is new or its rows were deleted
/// first, so a conflict is a bug that fails the transaction (no `ON CONFLICT`, which costs
/// a speculative insertion a row; no foreign key either, migration 0009).
trait TermRows {
    fn insert_terms(
        &mut self,
        terms: &[(i64, &str, &str)],
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

impl TermRows for sqlx::SqliteConnection {
    async fn insert_terms(&mut self, terms: &[(i64, &str, &str)]) -> Result<()> {
        for chunk in terms.chunks(BULK_ROWS.1 * 5) {
            let mut sql = String::from("INSERT INTO feed_terms (field, value, doc_id) VALUES ");
            push_values(&mut sql, chunk.len(), 3, true);
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (doc_id, f, v) in chunk {
                q = q.bind(*f).bind(*v).bind(*doc_id);
            }
            q.execute(&mut *self)
                .await
                .map_err(map_err("index the facets of a posting"))?;
        }
        Ok(())
    }
}

impl TermRows for sqlx::PgConnection {
    /// One statement with three array parameters, whatever the number of rows: a page of
    /// postings has thousands of terms, which took statements of 1,000 rows and 3,000
    /// parameters each, every one parsed, bound and planned by the server (half of its
    /// time in a catch-up went to them).
    async fn insert_terms(&mut self, terms: &[(i64, &str, &str)]) -> Result<()> {
        if terms.is_empty() {
            return Ok(());
        }
        let mut docs = Vec::with_capacity(terms.len());
        let mut fields = Vec::with_capacity(terms.len());
        let mut values = Vec::with_capacity(terms.len());
        for (doc_id, f, v) in terms {
            docs.push(*doc_id);
            fields.push(*f);
            values.push(*v);
        }
        sqlx::query(
            "INSERT INTO feed_terms (field, value, doc_id) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[])",
        )
        .bind(&fields)
        .bind(&values)
        .bind(&docs)
        .execute(&mut *self)
        .await
        .map_err(map_err("index the facets of a posting"))?;
        Ok(())
    }
}

/// Indexes a local posting after a change (a draft leaves the feed).
pub(super) async fn index_local<C: FeedIndex + ?Sized>(
    conn: &mut C,
    id: Uuid,
    document: &serde_json::Value,
    status: PostingStatus,
) -> Result<()> {
    if status == PostingStatus::Draft {
        return conn.feed_remove(&id.to_string(), true).await;
    }
    match FeedRecord::local(id, document, to_ms(now())) {
        Some(rec) => conn.feed_upsert(&rec).await,
        None => {
            // The posting service always sets both; a document without them stays out
            // of the feed rather than failing the change.
            tracing::warn!(%id, "local posting without id or attributedTo: not in the feed");
            conn.feed_remove(&id.to_string(), true).await
        }
    }
}

/// Removes a local posting from the feed.
pub(super) async fn unindex_local<C: FeedIndex + ?Sized>(conn: &mut C, id: Uuid) -> Result<()> {
    conn.feed_remove(&id.to_string(), true).await
}

/// Removes a received posting from the feed.
pub(super) async fn unindex_remote<C: FeedIndex + ?Sized>(
    conn: &mut C,
    object_id: &str,
) -> Result<()> {
    conn.feed_remove(object_id, false).await
}

/// Postings above which the selected values of a multi-valued facet are "dense" on SQLite
/// by default (see [`FeedBounds::dense_terms`]).
pub const DENSE_TERMS: i64 = 5_000;

/// `field` of the row of a facet count query that counts the sampled matches.
const MATCHES_ROW: &str = "#matches";

/// Rows of each index read by SQLite's `ANALYZE` in [`Store::optimize`] (approximate
/// statistics are enough for the plan choices of the feed).
pub const ANALYSIS_LIMIT: u32 = 2_000;

/// Fewest rows for a SQLite table to keep planner statistics ([`Store::optimize`]).
pub const MIN_ANALYZED_ROWS: u32 = 10_000;

/// Rows indexed per transaction by [`Store::reindex_feed`].
const REINDEX_BATCH: i64 = 500;

/// Rows per multi-row `INSERT` of [`FeedIndex::feed_insert_new`]: (PostgreSQL, SQLite).
/// PostgreSQL saves round trips (22 parameters a row, well within its limits); SQLite has
/// none to save, and binding costs grow with the square of a statement's parameters
/// there (each is looked up by name), so its statements stay small.
pub(super) const BULK_ROWS: (usize, usize) = (200, 16);

impl Store {
    /// Runs a feed query.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] for a relevance sort without a text query or a cursor of
    /// another sort; database errors.
    pub async fn feed_search(&self, query: &FeedQuery) -> Result<FeedPage> {
        let pg = matches!(self.inner, Inner::Postgres(_));
        let filter = &query.filter;
        let include = filter
            .text
            .as_ref()
            .map(|t| t.include.clone())
            .unwrap_or_default();
        if query.sort == FeedSort::Relevance && include.is_empty() {
            return Err(StoreError::conflict(
                "sorting by relevance needs a text query",
            ));
        }
        let limit = i64::from(query.limit.clamp(1, 500));
        let mut sql = Sql::default();
        let relevance = query.sort == FeedSort::Relevance;
        let dense = self
            .dense_term_facets(filter, query.bounds.dense_terms)
            .await?;
        let mut offset = 0i64;
        let mut items: Vec<FeedItem>;
        if relevance {
            if let Some(c) = &query.cursor {
                let FeedCursor::Offset(n) = c else {
                    return Err(StoreError::conflict("this cursor belongs to another sort"));
                };
                offset = (*n).max(0);
            }
            items = self
                .relevance_page(
                    filter,
                    &include,
                    offset,
                    limit + 1,
                    query.bounds.rank_max,
                    &dense,
                )
                .await?;
        } else {
            let mut keyset = String::new();
            let (col, dir, cmp) = match query.sort {
                FeedSort::Deadline => ("apply_until", "ASC", ">"),
                FeedSort::Start => ("start_date", "ASC", ">"),
                _ => ("updated_at", "DESC", "<"),
            };
            let walk = self
                .walks_sort_index(filter, &dense, query.bounds.dense_terms)
                .await?
                .then_some(col);
            let where_ = conditions(filter, pg, false, &dense, walk, &mut sql);
            let order = format!("f.{col} {dir}, f.doc_id {dir}");
            if let Some(c) = &query.cursor {
                let FeedCursor::After { key, doc_id } = c else {
                    return Err(StoreError::conflict("this cursor belongs to another sort"));
                };
                let k = if col == "updated_at" {
                    let ms: i64 = key
                        .parse()
                        .map_err(|_| StoreError::conflict("this cursor belongs to another sort"))?;
                    sql.bind(Param::Int(ms))
                } else {
                    sql.text(key)
                };
                let d = sql.bind(Param::Int(*doc_id));
                keyset =
                    format!(" AND (f.{col} {cmp} {k} OR (f.{col} = {k} AND f.doc_id {cmp} {d}))");
            }
            let lim = sql.bind(Param::Int(limit + 1));
            let page_sql = format!(
                "SELECT {ITEM_COLUMNS} FROM feed_postings f WHERE {where_}{keyset} ORDER BY {order} LIMIT {lim}"
            );
            items = both!(self, pool => {
                let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(page_sql)), &sql.params)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("search the feed"))?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(item_from_row!(r));
                }
                out
            });
        }
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            items.last().map(|last| match query.sort {
                FeedSort::Relevance => FeedCursor::Offset(offset + limit),
                FeedSort::Deadline => FeedCursor::After {
                    key: last
                        .apply_until
                        .clone()
                        .unwrap_or_else(|| NO_DATE.to_owned()),
                    doc_id: last.doc_id,
                },
                FeedSort::Start => FeedCursor::After {
                    key: last.start.clone().unwrap_or_else(|| NO_DATE.to_owned()),
                    doc_id: last.doc_id,
                },
                FeedSort::Recent => FeedCursor::After {
                    key: to_ms(last.updated_at).to_string(),
                    doc_id: last.doc_id,
                },
            })
        } else {
            None
        };
        let bounds = query.bounds;
        let sample = bounds.facet_sample.max(1);
        let (facets, facets_exact, sampled) = if query.facets {
            self.bounded_facets(filter, sample, &dense).await?
        } else {
            (Vec::new(), true, None)
        };
        let (total, total_exact) = if query.total {
            let max = bounds.total_max.max(0);
            // The facets' sample counted the matches up to `sample + 1` already: when
            // that reaches past `max`, it is the count (one scan of the matches, not two).
            let n = match sampled {
                Some(n) if sample >= max => n.min(max.saturating_add(1)),
                _ => {
                    self.feed_count_upto(filter, max.saturating_add(1), &dense)
                        .await?
                }
            };
            (Some(n.min(max)), n <= max)
        } else {
            (None, false)
        };
        Ok(FeedPage {
            items,
            next,
            total,
            total_exact,
            facets,
            facets_exact,
        })
    }

    /// `want` results of the relevance order from `offset`. The candidates are the
    /// `rank_max` newest matches (highest `doc_id`, found in index order, so the work is
    /// bounded whatever the number of matches), ranked best first with ties newest first;
    /// older matches follow them, newest first.
    async fn relevance_page(
        &self,
        filter: &FeedFilter,
        include: &[Term],
        offset: i64,
        want: i64,
        rank_max: i64,
        dense: &[Facet],
    ) -> Result<Vec<FeedItem>> {
        let pg = matches!(self.inner, Inner::Postgres(_));
        let rank_max = rank_max.max(1);
        let mut sql = Sql::default();
        // Score: lower is better (bm25 is negative; ts_rank_cd is negated).
        let text = if pg {
            let where_ = conditions(filter, true, false, dense, None, &mut sql);
            let order = if self.pg_few_matches(&where_, &sql.params, rank_max).await? {
                // `+ 0`: not the order of an index, so the matches are found through the
                // full-text index and sorted.
                "f.doc_id + 0"
            } else {
                "f.doc_id"
            };
            let lim = sql.bind(Param::Int(rank_max));
            let p = sql.text(&TextQuery::tsquery(include, "&"));
            format!(
                "WITH c AS MATERIALIZED (SELECT f.doc_id, f.tsv FROM feed_postings f WHERE {where_} \
                 ORDER BY {order} DESC LIMIT {lim}) \
                 SELECT c.doc_id, -CAST(ts_rank_cd(c.tsv, CAST({p} AS tsquery)) AS DOUBLE PRECISION) AS score FROM c"
            )
        } else {
            // The full-text index drives, newest first, and stops at `rank_max` matches.
            let p = sql.text(&fts5_words(filter, include));
            let where_ = conditions(filter, false, true, dense, None, &mut sql);
            let lim = sql.bind(Param::Int(rank_max));
            // The facet tokens weigh nothing in the score.
            format!(
                "SELECT feed_fts.rowid AS doc_id, bm25(feed_fts, 4.0, 1.0, 0.0) AS score \
                 FROM feed_fts CROSS JOIN feed_postings f ON f.doc_id = feed_fts.rowid \
                 WHERE feed_fts MATCH {p} AND {where_} ORDER BY feed_fts.rowid DESC LIMIT {lim}"
            )
        };
        let mut ranked: Vec<(i64, f64)> = both!(self, pool => {
            let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params)
                .fetch_all(pool)
                .await
                .map_err(map_err("rank the feed"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((col!(r, "doc_id"), col!(r, "score")));
            }
            out
        });
        let all_ranked = i64::try_from(ranked.len()).unwrap_or(i64::MAX) < rank_max;
        let oldest = ranked.iter().map(|(d, _)| *d).min();
        ranked.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let ids: Vec<i64> = ranked
            .iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(usize::try_from(want).unwrap_or(0))
            .map(|(d, _)| *d)
            .collect();
        let mut items = self.feed_items_by_doc_id(&ids).await?;
        let missing = want - i64::try_from(ids.len()).unwrap_or(0);
        if !all_ranked
            && missing > 0
            && let Some(oldest) = oldest
        {
            // Past the ranked matches: the older ones, newest first.
            let skip = (offset - rank_max).max(0);
            let mut sql = Sql::default();
            let text = if pg {
                let where_ = conditions(filter, true, false, dense, None, &mut sql);
                let o = sql.bind(Param::Int(oldest));
                let lim = sql.bind(Param::Int(missing));
                let off = sql.bind(Param::Int(skip));
                format!(
                    "SELECT {ITEM_COLUMNS} FROM feed_postings f WHERE {where_} AND f.doc_id < {o} \
                     ORDER BY f.doc_id DESC LIMIT {lim} OFFSET {off}"
                )
            } else {
                let p = sql.text(&fts5_words(filter, include));
                let where_ = conditions(filter, false, true, dense, None, &mut sql);
                let o = sql.bind(Param::Int(oldest));
                let lim = sql.bind(Param::Int(missing));
                let off = sql.bind(Param::Int(skip));
                format!(
                    "SELECT {ITEM_COLUMNS} FROM feed_fts CROSS JOIN feed_postings f ON f.doc_id = feed_fts.rowid \
                     WHERE feed_fts MATCH {p} AND feed_fts.rowid < {o} AND {where_} \
                     ORDER BY feed_fts.rowid DESC LIMIT {lim} OFFSET {off}"
                )
            };
            let older: Vec<FeedItem> = both!(self, pool => {
                let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("search the feed"))?;
                let mut out = Vec::with_capacity(rows.len());
                for r in rows {
                    out.push(item_from_row!(r));
                }
                out
            });
            items.extend(older);
        }
        Ok(items)
    }

    /// PostgreSQL: whether the `rank_max` newest matches of `where_` (with words) are
    /// better found through the full-text index, all the matches then sorted, than by
    /// walking `doc_id` backwards and testing each row until `rank_max` match.
    ///
    /// PostgreSQL's planner walks backwards whenever the matches are not very rare: it
    /// estimates their number well but counts testing a row's `tsv` as nearly free, when
    /// it reads and decompresses the whole `tsv` (2–3 µs a row here). The walk reads
    /// about `rank_max × rows / matches` rows, the index about `matches`: the index is
    /// cheaper below about `sqrt(rank_max × rows)` matches (31,600 of a million rows for
    /// 1,000 ranked; at 9,300 matches of a million, the walk read 105,000 rows in 257 ms
    /// where the index took 30 ms). Both numbers are the planner's estimates (`EXPLAIN`,
    /// `reltuples`): no row is read to decide.
    async fn pg_few_matches(&self, where_: &str, params: &[Param], rank_max: i64) -> Result<bool> {
        let Inner::Postgres(pool) = &self.inner else {
            return Ok(false);
        };
        let explain = format!("EXPLAIN SELECT 1 FROM feed_postings f WHERE {where_}");
        let plan: Vec<String> = bind_all!(sqlx::query_scalar(sqlx::AssertSqlSafe(explain)), params)
            .fetch_all(pool)
            .await
            .map_err(map_err("estimate the matches"))?;
        let matches = plan.first().and_then(|line| plan_rows(line));
        let rows: f64 = sqlx::query_scalar(
            "SELECT CAST(GREATEST(reltuples, 0) AS DOUBLE PRECISION) FROM pg_class \
             WHERE oid = CAST('feed_postings' AS regclass)",
        )
        .fetch_one(pool)
        .await
        .map_err(map_err("estimate the feed's size"))?;
        #[allow(clippy::cast_precision_loss)]
        let few = matches.is_some_and(|m| m * m < (rank_max as f64) * rows);
        Ok(few)
    }

    /// The feed rows of `ids`, in that order (rows deleted meanwhile are left out).
    async fn feed_items_by_doc_id(&self, ids: &[i64]) -> Result<Vec<FeedItem>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::default();
        let list = ids
            .iter()
            .map(|d| sql.bind(Param::Int(*d)))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!("SELECT {ITEM_COLUMNS} FROM feed_postings f WHERE f.doc_id IN ({list})");
        let mut found: Vec<FeedItem> = both!(self, pool => {
            let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params)
                .fetch_all(pool)
                .await
                .map_err(map_err("read the feed index"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(item_from_row!(r));
            }
            out
        });
        found.sort_by_key(|item| ids.iter().position(|d| *d == item.doc_id));
        Ok(found)
    }

    /// The multi-valued facets of `filter` whose selected values hold more than `above`
    /// postings (SQLite only; PostgreSQL's planner knows value frequencies
    /// itself). Listing such postings first costs more than checking each candidate.
    async fn dense_term_facets(&self, filter: &FeedFilter, above: i64) -> Result<Vec<Facet>> {
        let Inner::Sqlite(pool) = &self.inner else {
            return Ok(Vec::new());
        };
        let mut dense = Vec::new();
        for facet in Facet::ALL {
            let values = filter.values(facet);
            let Some(field) = facet.term_field() else {
                continue;
            };
            if values.is_empty() {
                continue;
            }
            let mut sql = Sql::default();
            let fp = sql.text(field);
            let list = sql.list(values);
            let lim = sql.bind(Param::Int(above.max(0).saturating_add(1)));
            let text = format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM feed_terms t WHERE t.field = {fp} \
                 AND t.value IN ({list}) LIMIT {lim}) s"
            );
            let row = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params)
                .fetch_one(pool)
                .await
                .map_err(map_err("count feed terms"))?;
            let n: i64 = col!(row, "n");
            if n > above {
                dense.push(facet);
            }
        }
        Ok(dense)
    }

    /// Whether a sorted page should walk the index of its sort order, checking every
    /// filter row by row (SQLite only: its planner, without statistics on how values are
    /// spread, tends to list every posting of a frequent value, then sort them all). True
    /// when no filter is selective: each restricted dimension that an index could list
    /// (kind, origin, multi-valued facets, métier, words) holds more than `above` postings,
    /// so the first page is found after a few hundred rows of the sort order.
    async fn walks_sort_index(
        &self,
        filter: &FeedFilter,
        dense: &[Facet],
        above: i64,
    ) -> Result<bool> {
        let Inner::Sqlite(pool) = &self.inner else {
            return Ok(false);
        };
        // (Métiers are probed below.)
        if Facet::ALL.into_iter().any(|f| {
            f != Facet::Rome
                && f.term_field().is_some()
                && filter.restricts(f)
                && !dense.contains(&f)
        }) {
            return Ok(false);
        }
        let mut probes: Vec<(String, Sql)> = Vec::new();
        for facet in [Facet::Kind, Facet::Origin] {
            let values = filter.values(facet);
            if !values.is_empty()
                && let Some(col) = facet.column()
            {
                let mut sql = Sql::default();
                let list = sql.list(values);
                probes.push((
                    format!("SELECT 1 AS one FROM feed_postings f WHERE f.{col} IN ({list})"),
                    sql,
                ));
            }
        }
        if !filter.metiers.is_empty() {
            // The term rows of the métiers (one per posting and value), from their index.
            let mut sql = Sql::default();
            let only_metier = FeedFilter {
                metiers: filter.metiers.clone(),
                ..FeedFilter::default()
            };
            let where_ = conditions(&only_metier, false, false, &[], None, &mut sql);
            let inner = where_
                .strip_prefix("f.doc_id IN (SELECT t.doc_id FROM feed_terms t WHERE ")
                .and_then(|w| w.strip_suffix(')'))
                .unwrap_or("1 = 0")
                .to_owned();
            probes.push((
                format!("SELECT 1 AS one FROM feed_terms t WHERE {inner}"),
                sql,
            ));
        }
        if let Some(text) = filter.text.as_ref().filter(|t| !t.include.is_empty()) {
            let mut sql = Sql::default();
            let p = sql.text(&fts5_words(filter, &text.include));
            probes.push((
                format!("SELECT 1 AS one FROM feed_fts WHERE feed_fts MATCH {p}"),
                sql,
            ));
        }
        for (inner, mut sql) in probes {
            let lim = sql.bind(Param::Int(above.max(0).saturating_add(1)));
            let text = format!("SELECT COUNT(*) AS n FROM ({inner} LIMIT {lim}) s");
            let row = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params)
                .fetch_one(pool)
                .await
                .map_err(map_err("count feed matches"))?;
            let n: i64 = col!(row, "n");
            if n <= above {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Number of postings matching `filter` (exact, whatever their number: for small
    /// sets such as a saved search's new matches).
    pub async fn feed_count(&self, filter: &FeedFilter) -> Result<i64> {
        self.feed_count_upto(filter, i64::MAX, &[]).await
    }

    /// Number of postings matching `filter`, counting no further than `max`.
    async fn feed_count_upto(&self, filter: &FeedFilter, max: i64, dense: &[Facet]) -> Result<i64> {
        let pg = matches!(self.inner, Inner::Postgres(_));
        let mut sql = Sql::default();
        let (from, where_) = matches_source(filter, pg, dense, &mut sql);
        let text = if max == i64::MAX {
            format!("SELECT COUNT(*) AS n FROM {from} WHERE {where_}")
        } else {
            let lim = sql.bind(Param::Int(max));
            format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM {from} WHERE {where_} LIMIT {lim}) s"
            )
        };
        both!(self, pool => {
            let row = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params)
                .fetch_one(pool)
                .await
                .map_err(map_err("count feed results"))?;
            Ok(col!(row, "n"))
        })
    }

    /// Counts per facet value, exact (for tests and small feeds: the cost grows with
    /// the matches). A facet the filter restricts is counted without its own restriction
    /// (so its other values stay visible and selectable).
    pub async fn feed_facets(&self, filter: &FeedFilter) -> Result<Vec<FacetCount>> {
        Ok(self.bounded_facets(filter, i64::MAX, &[]).await?.0)
    }

    /// Counts per facet value over at most `sample` matches of each count; whether every
    /// count was over all the matches; and the matches of `filter` itself counted up to
    /// `sample + 1`, when a count was over them (not when `filter` restricts every facet).
    async fn bounded_facets(
        &self,
        filter: &FeedFilter,
        sample: i64,
        dense: &[Facet],
    ) -> Result<(Vec<FacetCount>, bool, Option<i64>)> {
        let unrestricted: Vec<Facet> = Facet::ALL
            .into_iter()
            .filter(|f| !filter.restricts(*f))
            .collect();
        let (mut out, mut exact, matches) = self
            .facet_counts(filter, &unrestricted, sample, dense)
            .await?;
        for facet in Facet::ALL.into_iter().filter(|f| filter.restricts(*f)) {
            let wider = filter.without(facet);
            let (counts, all, _) = self.facet_counts(&wider, &[facet], sample, dense).await?;
            out.extend(counts);
            exact &= all;
        }
        out.sort_by(|a, b| {
            a.facet
                .cmp(&b.facet)
                .then(b.count.cmp(&a.count))
                .then(a.value.cmp(&b.value))
        });
        let mut kept: Vec<FacetCount> = Vec::with_capacity(out.len());
        for c in out {
            if kept.iter().filter(|k| k.facet == c.facet).count() < FACET_VALUES_MAX {
                kept.push(c);
            }
        }
        Ok((kept, exact, matches))
    }

    /// Counts for `facets` over at most `sample` matches of `filter`; whether those were
    /// all the matches; and the matches counted, up to `sample + 1` (none without facets
    /// to count).
    async fn facet_counts(
        &self,
        filter: &FeedFilter,
        facets: &[Facet],
        sample: i64,
        dense: &[Facet],
    ) -> Result<(Vec<FacetCount>, bool, Option<i64>)> {
        if facets.is_empty() {
            return Ok((Vec::new(), true, None));
        }
        let pg = matches!(self.inner, Inner::Postgres(_));
        let mut sql = Sql::default();
        let (from, where_) = matches_source(filter, pg, dense, &mut sql);
        // The first row counts the sample plus one more match, if there is one (so that
        // a sample short of all the matches is told apart).
        let mut parts: Vec<String> = vec![format!(
            "SELECT '{MATCHES_ROW}' AS field, '' AS value, COUNT(*) AS n FROM m0"
        )];
        for facet in facets {
            // Facet names and columns are constants of this file, never user input.
            let name = facet.as_str();
            if let Some(col) = facet.column() {
                parts.push(format!(
                    "SELECT '{name}' AS field, {col} AS value, COUNT(*) AS n FROM m WHERE {col} IS NOT NULL GROUP BY {col}"
                ));
            } else if *facet == Facet::Telework {
                parts.push(format!(
                    "SELECT '{name}' AS field, CASE WHEN telework THEN 'true' ELSE 'false' END AS value, COUNT(*) AS n \
                     FROM m WHERE telework IS NOT NULL GROUP BY telework"
                ));
            }
        }
        let term_fields: Vec<String> = facets
            .iter()
            .filter_map(|f| f.term_field())
            .map(str::to_owned)
            .collect();
        if !term_fields.is_empty() {
            let list = sql.list(&term_fields);
            // The sample is small: loop over it and look each match's terms up by `doc_id`
            // (SQLite needs the join order spelled out: `m CROSS JOIN t`).
            let join = if pg { "JOIN" } else { "CROSS JOIN" };
            parts.push(format!(
                "SELECT t.field AS field, t.value AS value, COUNT(*) AS n FROM m {join} feed_terms t \
                 ON t.doc_id = m.doc_id WHERE t.field IN ({list}) GROUP BY t.field, t.value"
            ));
        }
        let (limit0, limit) = if sample == i64::MAX {
            (String::new(), String::new())
        } else {
            let l0 = sql.bind(Param::Int(sample.saturating_add(1)));
            let l = sql.bind(Param::Int(sample));
            // No `ORDER BY`: the sample is whichever matches the plan finds first, so that
            // a few matches are found through their index, and many stop the scan early.
            (format!(" LIMIT {l0}"), format!(" LIMIT {l}"))
        };
        let text = format!(
            "WITH m0 AS MATERIALIZED (SELECT f.doc_id, f.kind, f.status, f.author, f.working_time, f.telework \
             FROM {from} WHERE {where_}{limit0}), \
             m AS MATERIALIZED (SELECT doc_id, kind, status, author, working_time, telework FROM m0{limit}) {}",
            parts.join(" UNION ALL ")
        );
        let rows: Vec<(String, String, i64)> = both!(self, pool => {
            let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(text)), &sql.params)
                .fetch_all(pool)
                .await
                .map_err(map_err("count facets"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push((col!(r, "field"), col!(r, "value"), col!(r, "n")));
            }
            out
        });
        let mut out = Vec::with_capacity(rows.len());
        let mut exact = true;
        let mut matches = None;
        for (field, value, count) in rows {
            if field == MATCHES_ROW {
                exact = count <= sample;
                matches = Some(count);
                continue;
            }
            let facet = facets
                .iter()
                .copied()
                .find(|f| f.term_field() == Some(field.as_str()) || f.as_str() == field);
            if let Some(facet) = facet {
                out.push(FacetCount {
                    facet,
                    value,
                    count,
                });
            }
        }
        Ok((out, exact, matches))
    }

    /// The feed row of a posting, by its id (URL).
    pub async fn feed_item(&self, posting_id: &str) -> Result<Option<FeedItem>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {ITEM_COLUMNS} FROM feed_postings f WHERE f.posting_id = $1"));
            let row = sqlx::query(sql)
                .bind(posting_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read the feed index"))?;
            Ok(match row {
                Some(r) => Some(item_from_row!(r)),
                None => None,
            })
        })
    }

    /// The highest `doc_id` in the feed (0 when empty).
    pub async fn feed_max_doc_id(&self) -> Result<i64> {
        both!(self, pool => {
            let row = sqlx::query("SELECT COALESCE(MAX(doc_id), 0) AS n FROM feed_postings")
                .fetch_one(pool)
                .await
                .map_err(map_err("read the feed index"))?;
            Ok(col!(row, "n"))
        })
    }

    /// Indexes the published local postings and the received postings that are missing
    /// from the feed (after the feed's migration, or a restore from an older backup);
    /// returns how many were indexed. Works in batches, one transaction each.
    pub async fn reindex_feed(&self) -> Result<u64> {
        let refilled = self.refill_feed_fts().await?;
        if refilled > 0 {
            tracing::info!(refilled, "full-text rows of the feed rebuilt");
        }
        // Nothing is missing at almost every start: that is checked on a reader, without
        // the write lock, so that scanning every posting does not fill the SQLite writer
        // connection's cache (8–16 MB more until it closes, 30–60 s unused).
        if !self.feed_misses_postings().await? {
            return Ok(0);
        }
        let mut done = 0u64;
        // Local postings, by id.
        let mut last = String::new();
        loop {
            let (n, seen): (u64, usize) = both!(self, pool => {
                let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
                let rows = sqlx::query(
                    "SELECT p.id, p.status, p.document, p.updated_at FROM postings p \
                     WHERE p.id > $1 AND p.status <> 'draft' \
                     AND NOT EXISTS (SELECT 1 FROM feed_postings f WHERE f.local_id = p.id) \
                     ORDER BY p.id LIMIT $2",
                )
                .bind(&last)
                .bind(REINDEX_BATCH)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err("list postings to index"))?;
                let mut n = 0u64;
                for r in &rows {
                    let id: String = col!(r, "id");
                    last.clone_from(&id);
                    let doc: String = col!(r, "document");
                    let doc = parse_json(&doc)?;
                    let updated: i64 = col!(r, "updated_at");
                    let id = parse_uuid(&id)?;
                    match FeedRecord::local(id, &doc, updated) {
                        Some(rec) => tx.feed_upsert(&rec).await?,
                        None => {
                            tracing::warn!(%id, "local posting without id or attributedTo: not indexed");
                            continue;
                        }
                    }
                    n += 1;
                }
                tx.commit().await.map_err(map_err("commit"))?;
                (n, rows.len())
            });
            done += n;
            if seen == 0 {
                break;
            }
        }
        // Received postings, by id.
        let mut last = String::new();
        loop {
            let (n, seen): (u64, usize) = both!(self, pool => {
                let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
                let rows = sqlx::query(
                    "SELECT r.object_id, r.author, r.relayed_by, r.kind, r.version, r.document, r.verified_key, r.verified_at \
                     FROM remote_postings r WHERE r.object_id > $1 AND r.deleted_at IS NULL AND r.document IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM feed_postings f WHERE f.posting_id = r.object_id) \
                     ORDER BY r.object_id LIMIT $2",
                )
                .bind(&last)
                .bind(REINDEX_BATCH)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err("list received postings to index"))?;
                let mut versions = Vec::with_capacity(rows.len());
                for r in &rows {
                    let doc: String = col!(r, "document");
                    let kind: Option<String> = col!(r, "kind");
                    let key: Option<String> = col!(r, "verified_key");
                    let object_id: String = col!(r, "object_id");
                    last.clone_from(&object_id);
                    let v = super::PostingVersion {
                        object_id,
                        author: col!(r, "author"),
                        relayed_by: col!(r, "relayed_by"),
                        kind: kind.unwrap_or_default(),
                        version: col!(r, "version"),
                        document: parse_json(&doc)?,
                        verified_key: key.unwrap_or_default(),
                    };
                    let at: i64 = col!(r, "verified_at");
                    versions.push((v, at));
                }
                let recs: Vec<FeedRecord<'_>> = versions.iter().map(|(v, at)| FeedRecord::remote(v, *at)).collect();
                let n = tx.feed_insert_new(&recs).await?;
                tx.commit().await.map_err(map_err("commit"))?;
                (n, rows.len())
            });
            done += n;
            if seen == 0 {
                break;
            }
        }
        Ok(done)
    }

    /// Whether a published local posting or a received one is missing from the feed.
    async fn feed_misses_postings(&self) -> Result<bool> {
        both!(self, pool => {
            let missing: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM postings p WHERE p.status <> 'draft' \
                   AND NOT EXISTS (SELECT 1 FROM feed_postings f WHERE f.local_id = p.id)) \
                 OR EXISTS (SELECT 1 FROM remote_postings r WHERE r.deleted_at IS NULL AND r.document IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM feed_postings f WHERE f.posting_id = r.object_id))",
            )
            .fetch_one(pool)
            .await
            .map_err(map_err("check the feed index"))?;
            Ok(missing)
        })
    }

    /// SQLite: gives back their full-text row (`feed_fts`, with its facet tokens) to the
    /// feed rows listed in `feed_fts_pending` (all of them after migration 0007), from
    /// the postings' documents, keeping their `doc_id`; returns how many. A listed row
    /// that left the feed meanwhile is dropped from the list. Works in batches, one
    /// transaction each, so an interrupted start resumes where it stopped.
    async fn refill_feed_fts(&self) -> Result<u64> {
        let Inner::Sqlite(pool) = &self.inner else {
            return Ok(0);
        };
        let mut done = 0u64;
        loop {
            let mut tx = pool
                .begin_write()
                .await
                .map_err(map_err("begin a transaction"))?;
            let rows = sqlx::query(
                "SELECT p.doc_id, COALESCE(l.document, r.document) AS document \
                 FROM feed_fts_pending p LEFT JOIN feed_postings f ON f.doc_id = p.doc_id \
                 LEFT JOIN postings l ON l.id = f.local_id \
                 LEFT JOIN remote_postings r ON f.local_id IS NULL AND r.object_id = f.posting_id \
                 ORDER BY p.doc_id LIMIT $1",
            )
            .bind(REINDEX_BATCH)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err("list the feed rows to index again"))?;
            if rows.is_empty() {
                break;
            }
            let mut entries: Vec<(i64, IndexEntry)> = Vec::with_capacity(rows.len());
            let mut last = 0i64;
            for r in &rows {
                let doc_id: i64 = col!(r, "doc_id");
                last = doc_id;
                let doc: Option<String> = col!(r, "document");
                if let Some(doc) = doc {
                    entries.push((doc_id, IndexEntry::from_document(&parse_json(&doc)?)));
                }
            }
            for chunk in entries.chunks(BULK_ROWS.1) {
                let mut sql = String::from(
                    "INSERT OR REPLACE INTO feed_fts (rowid, name, body, facets) VALUES ",
                );
                push_values(&mut sql, chunk.len(), 4, true);
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (doc_id, e) in chunk {
                    q = q
                        .bind(*doc_id)
                        .bind(e.stems_name())
                        .bind(e.stems_body())
                        .bind(e.facet_tokens());
                }
                q.execute(&mut *tx)
                    .await
                    .map_err(map_err("index the text of a posting"))?;
            }
            sqlx::query("DELETE FROM feed_fts_pending WHERE doc_id <= $1")
                .bind(last)
                .execute(&mut *tx)
                .await
                .map_err(map_err("index the text of a posting"))?;
            tx.commit().await.map_err(map_err("commit"))?;
            done += u64::try_from(entries.len()).unwrap_or(0);
        }
        Ok(done)
    }

    /// Refreshes the planner's statistics where they are stale: SQLite `PRAGMA optimize`
    /// (which runs `ANALYZE` only on tables never analyzed or whose size changed much
    /// since, over at most [`ANALYSIS_LIMIT`] rows of each index, so it stays short); on
    /// PostgreSQL, `VACUUM (ANALYZE)` of the feed tables when `bulk` (postings were just
    /// indexed in bulk; autovacuum keeps them current otherwise). Run at start and every
    /// hour.
    pub async fn optimize(&self, bulk: bool) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(pool) => {
                // The turn at the writer, but a connection of the shared pool: reading
                // every table would fill the writer's larger cache with pages that
                // writes do not need (16 MB more at rest).
                let _turn = pool
                    .write_turn()
                    .await
                    .map_err(map_err("wait for the writer"))?;
                let mut conn = pool.acquire().await.map_err(map_err("open a connection"))?;
                // 0x10002: every table, not only those this connection used. Then the
                // statistics of small tables are dropped, in the same transaction: taken
                // while a table is small (the inbox of a node that just started), they
                // make the planner scan it once it has grown — the claim of the
                // projection read the whole inbox, 50–150 ms per claim, during a
                // 100,000-activity catch-up, until the next hourly pass. Without
                // statistics SQLite assumes a large table and uses the indexes. A
                // connection loads the statistics when it opens (after `ANALYZE
                // sqlite_schema` for this one).
                let has_stat4: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat4')",
                )
                .fetch_one(&mut *conn)
                .await
                .map_err(map_err("refresh the planner statistics"))?;
                let stat4 = if has_stat4 {
                    "DELETE FROM sqlite_stat4 WHERE tbl NOT IN (SELECT tbl FROM sqlite_stat1);"
                } else {
                    ""
                };
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "BEGIN IMMEDIATE; \
                     PRAGMA analysis_limit = {ANALYSIS_LIMIT}; PRAGMA optimize = 0x10002; \
                     DELETE FROM sqlite_stat1 WHERE tbl IN (SELECT tbl FROM sqlite_stat1 \
                       GROUP BY tbl HAVING max(CAST(stat AS INTEGER)) < {MIN_ANALYZED_ROWS}); \
                     {stat4} COMMIT; ANALYZE sqlite_schema"
                )))
                .execute(&mut *conn)
                .await
                .map_err(map_err("refresh the planner statistics"))?;
            }
            Inner::Postgres(pool) => {
                if bulk {
                    // VACUUM also marks the new rows all-visible, so that checks of
                    // `feed_terms` are answered from its index alone (seconds at 1M).
                    sqlx::raw_sql("VACUUM (ANALYZE) feed_postings, feed_terms")
                        .execute(pool)
                        .await
                        .map_err(map_err("refresh the planner statistics"))?;
                }
            }
        }
        Ok(())
    }

    // ---- saved searches ----

    /// Saves a search for `owner`; what is in the feed now counts as seen.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the owner already has a search with this name.
    pub async fn create_saved_search(
        &self,
        owner: &str,
        name: &str,
        query: &str,
        alert: bool,
        audit: &AuditRecord,
    ) -> Result<SavedSearch> {
        let seen = self.feed_max_doc_id().await?;
        let t = from_ms(to_ms(now()));
        let s = SavedSearch {
            id: Uuid::now_v7(),
            owner: owner.to_owned(),
            name: name.to_owned(),
            query: query.to_owned(),
            alert,
            seen_doc_id: seen,
            seen_at: t,
            created_at: t,
        };
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO saved_searches (id, owner, name, query, alert, seen_doc_id, seen_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(s.id.to_string())
            .bind(owner)
            .bind(name)
            .bind(query)
            .bind(alert)
            .bind(seen)
            .bind(to_ms(t))
            .execute(&mut *tx)
            .await
            .map_err(map_err("save a search"))?;
            let mut audit = audit.clone();
            audit.target = format!("saved_search:{}", s.id);
            audit!(tx, &audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        Ok(s)
    }

    /// The saved searches of `owner`, oldest first.
    pub async fn saved_searches(&self, owner: &str) -> Result<Vec<SavedSearch>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, owner, name, query, alert, seen_doc_id, seen_at, created_at FROM saved_searches \
                 WHERE owner = $1 ORDER BY created_at, id",
            )
            .bind(owner)
            .fetch_all(pool)
            .await
            .map_err(map_err("list saved searches"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(saved_from_row!(r));
            }
            Ok(out)
        })
    }

    /// One saved search of `owner` (another owner's is not found).
    pub async fn saved_search(&self, owner: &str, id: Uuid) -> Result<SavedSearch> {
        both!(self, pool => {
            let row = sqlx::query(
                "SELECT id, owner, name, query, alert, seen_doc_id, seen_at, created_at FROM saved_searches \
                 WHERE owner = $1 AND id = $2",
            )
            .bind(owner)
            .bind(id.to_string())
            .fetch_optional(pool)
            .await
            .map_err(map_err("read a saved search"))?
            .ok_or_else(|| StoreError::not_found(format!("saved search {id}")))?;
            Ok(saved_from_row!(row))
        })
    }

    /// Marks the results of a saved search seen up to `doc_id`.
    pub async fn mark_saved_search_seen(&self, owner: &str, id: Uuid, doc_id: i64) -> Result<()> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            let n = sqlx::query(
                "UPDATE saved_searches SET seen_doc_id = CASE WHEN seen_doc_id > $1 THEN seen_doc_id ELSE $1 END, \
                 seen_at = $2 WHERE owner = $3 AND id = $4",
            )
            .bind(doc_id)
            .bind(to_ms(now()))
            .bind(owner)
            .bind(id.to_string())
            .execute(&*writer)
            .await
            .map_err(map_err("mark a saved search seen"))?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("saved search {id}")));
            }
            Ok(())
        })
    }

    /// Deletes a saved search of `owner`.
    pub async fn delete_saved_search(
        &self,
        owner: &str,
        id: Uuid,
        audit: &AuditRecord,
    ) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query("DELETE FROM saved_searches WHERE owner = $1 AND id = $2")
                .bind(owner)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("delete a saved search"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("saved search {id}")));
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::store::{IncomingActivity, Via};

    #[test]
    fn plan_rows_reads_the_top_node() {
        let line =
            "Bitmap Heap Scan on feed_postings f  (cost=257.24..29982.66 rows=9451 width=64)";
        assert_eq!(plan_rows(line), Some(9451.0));
        assert_eq!(
            plan_rows("Result  (cost=0.00..0.01 rows=1 width=4)"),
            Some(1.0)
        );
        assert_eq!(plan_rows("Seq Scan on t"), None);
        assert_eq!(plan_rows("Limit (rows=)"), None);
    }

    /// The projection's claim, as `Store::claim_inbox` runs it, for `EXPLAIN QUERY PLAN`.
    const CLAIM: &str = "EXPLAIN QUERY PLAN UPDATE inbox SET lease_until = 1, lease_owner = 'x' \
        WHERE seq IN (SELECT seq FROM inbox WHERE processed_at IS NULL \
        AND (lease_until IS NULL OR lease_until < 2) ORDER BY seq LIMIT 32) RETURNING seq";

    /// Regression: `optimize` at the start of a node whose inbox held one activity stored
    /// statistics saying so, and the claim then scanned the whole inbox once it had grown
    /// (50–150 ms per claim at 50,000 activities). Statistics of small tables are now
    /// dropped, and the claim walks its partial index.
    #[tokio::test]
    async fn optimize_keeps_no_statistics_of_small_tables() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::connect(&url, 2).await.unwrap();
        store.migrate().await.unwrap();
        let item = IncomingActivity {
            activity_id: "https://a.example/activities/1".into(),
            actor_id: "https://a.example/actor".into(),
            activity_type: "Follow".into(),
            object_id: None,
            document: serde_json::json!({"type": "Follow"}),
            via: Via::Push,
            signers: Vec::new(),
        };
        store.accept_activities(&[item]).await.unwrap();
        store.optimize(false).await.unwrap();
        let Inner::Sqlite(pool) = &store.inner else {
            unreachable!()
        };
        let small: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl IN ('inbox', 'deliveries', 'feed_postings')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(small, 0, "statistics of small tables were kept");
        // A connection opened after the pass plans the claim on the partial index.
        let mut fresh = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap();
        let plan: Vec<String> = sqlx::query(CLAIM)
            .fetch_all(&mut fresh)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect();
        assert!(
            plan.iter().any(|d| d.contains("inbox_unprocessed")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|d| d == "SCAN inbox"), "{plan:?}");
    }
}
