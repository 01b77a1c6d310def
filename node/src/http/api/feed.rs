//! The feed: one search over local and partners' postings (`GET /api/v1/feed`), saved
//! searches with their new matches, and exports (CSV, Atom, iCalendar) of any query.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{AppJson, Caller};
use crate::feed::{self, FeedError, FeedParams, Names, SearchResult};
use crate::http::error::{AppError, AppPath, FieldError, Problem};
use crate::state::AppState;
use crate::store::{FeedItem, Role, SavedSearch, StoreError};

impl From<FeedError> for AppError {
    fn from(e: FeedError) -> Self {
        match e {
            FeedError::Invalid(problems) => AppError::bad_request(
                "invalid_query",
                format!(
                    "recherche invalide : {}",
                    problems
                        .iter()
                        .map(|(f, m)| format!("{f} : {m}"))
                        .collect::<Vec<_>>()
                        .join(" ; ")
                ),
            ),
            FeedError::Store(s) => s.into(),
        }
    }
}

/// Parameters of a feed query. Repeat a parameter or separate values with commas for
/// alternatives; different parameters combine.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FeedQueryDoc {
    /// French full text: case, accents and inflections ignored (« ingénieure » finds
    /// « ingénieurs »); every word must match; `-mot` excludes.
    q: Option<String>,
    /// Posting kinds (`vacancy`, `mad_offer`, `project_mission`, `facilitation_request`,
    /// `immersion_offer`, `immersion_swap`, `training_session`, `career_offer`).
    kind: Option<Vec<String>>,
    /// Statuses (`published` by default; `all` for every status).
    status: Option<Vec<String>>,
    /// Publishing nodes: actor ids, or `local` for this node.
    origin: Option<Vec<String>>,
    /// Circles (id or URL): postings published by their members.
    circle: Option<Vec<String>>,
    /// Catégories (`A`, `B`, `C`).
    categorie: Option<Vec<String>>,
    /// Filières (`administrative`, `technique`, `culturelle`…).
    filiere: Option<Vec<String>>,
    /// Cadres d'emplois, as published (one per parameter).
    cadre: Option<Vec<String>>,
    /// Métiers: ROME codes (`K1401`) or part of a label (accents ignored).
    metier: Option<Vec<String>>,
    /// Départements (COG code: `38`, `2A`, `974`).
    departement: Option<Vec<String>>,
    /// Régions (COG code: `84`).
    region: Option<Vec<String>>,
    /// Communes (COG code: `38185`).
    commune: Option<Vec<String>>,
    /// Working time (`complet`, `non_complet`, `quotite`).
    working_time: Option<Vec<String>>,
    /// Telework possible (`true`/`false`).
    telework: Option<bool>,
    /// Deadline on or after (`YYYY-MM-DD`; postings without a deadline match).
    deadline_from: Option<String>,
    /// Deadline on or before.
    deadline_to: Option<String>,
    /// Start on or after (postings without a start date match).
    start_from: Option<String>,
    /// Start on or before.
    start_to: Option<String>,
    /// Quotité at least (percent; temps complet is 100).
    quotite_min: Option<i64>,
    /// Quotité at most.
    quotite_max: Option<i64>,
    /// `recent` (default without `q`), `relevance` (default with `q`), `deadline`, `start`.
    /// `relevance` ranks the 1,000 matches most recently added to the feed, best first
    /// (ties: newest first); when more postings match, the older ones follow them,
    /// newest first.
    sort: Option<String>,
    /// Cursor of the next page (`next_cursor` of the previous page).
    cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    limit: Option<u32>,
    /// Whether to count matches per facet value (default `true`).
    facets: Option<bool>,
}

/// A node, by actor id and name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeRef {
    /// Actor id.
    pub actor: String,
    /// Name (from its actor document), else its host.
    pub name: String,
}

/// The object proof of a posting, as checked.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProofView {
    /// The posting's proof was verified against its publisher's key (received postings)
    /// or made by this node (local ones).
    pub verified: bool,
    /// Key of the proof (`verificationMethod`).
    pub key: Option<String>,
    /// When it was verified (received) or signed (local).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<OffsetDateTime>,
}

/// One posting of the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedItemView {
    /// The posting's id (URL).
    pub id: String,
    /// Id of a local posting (for `/api/v1/postings/{id}`).
    pub local_id: Option<Uuid>,
    /// Published by this node.
    pub local: bool,
    /// Kind.
    pub kind: String,
    /// Kind, in French.
    pub kind_label: String,
    /// Status.
    pub status: String,
    /// Status, in French.
    pub status_label: String,
    /// Visibility.
    pub visibility: String,
    /// Title.
    pub name: String,
    /// Summary.
    pub summary: Option<String>,
    /// Employer.
    pub employer: Option<String>,
    /// Who published it.
    pub published_by: NodeRef,
    /// Who relayed it to us, if it came by `Announce`.
    pub relayed_by: Option<NodeRef>,
    /// Its proof.
    pub proof: ProofView,
    /// Deadline (`YYYY-MM-DD`).
    pub apply_until: Option<String>,
    /// Start (`YYYY-MM-DD`).
    pub start: Option<String>,
    /// Quotité (percent).
    pub quotite_pct: Option<i64>,
    /// Working time.
    pub working_time: Option<String>,
    /// Telework possible.
    pub telework: Option<bool>,
    /// First publication.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub published_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

impl FeedItemView {
    /// The view of a feed row.
    pub fn new(item: &FeedItem, names: &Names, local_actor: &str) -> Self {
        Self {
            id: item.posting_id.clone(),
            local_id: item.local_id,
            local: item.author == local_actor,
            kind: item.kind.clone(),
            kind_label: feed::label(feed::KINDS, &item.kind)
                .unwrap_or(item.kind.as_str())
                .to_owned(),
            status: item.status.clone(),
            status_label: feed::label(feed::STATUSES, &item.status)
                .unwrap_or(item.status.as_str())
                .to_owned(),
            visibility: item.visibility.clone(),
            name: item.name.clone(),
            summary: item.summary.clone(),
            employer: item.employer.clone(),
            published_by: NodeRef {
                actor: item.author.clone(),
                name: names.of(&item.author),
            },
            relayed_by: item.relayed_by.as_ref().map(|r| NodeRef {
                actor: r.clone(),
                name: names.of(r),
            }),
            proof: ProofView {
                verified: item.verified_key.is_some(),
                key: item.verified_key.clone(),
                at: item.verified_at,
            },
            apply_until: item.apply_until.clone(),
            start: item.start.clone(),
            quotite_pct: item.quotite_pct,
            working_time: item.working_time.clone(),
            telework: item.telework,
            published_at: item.published_at,
            updated_at: item.updated_at,
        }
    }
}

/// One value of a facet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FacetValueView {
    /// Value (as a query parameter).
    pub value: String,
    /// Display name.
    pub label: String,
    /// Matching postings.
    pub count: i64,
    /// Whether the query selects it.
    pub selected: bool,
}

/// Counts of one facet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FacetView {
    /// Facet (the query parameter it filters: `kind`, `categorie`…; `rome` filters with
    /// `metier`).
    pub name: String,
    /// Display name.
    pub label: String,
    /// Values, most frequent first (at most 30).
    pub values: Vec<FacetValueView>,
}

/// A page of the feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeedResponse {
    /// The postings.
    pub items: Vec<FeedItemView>,
    /// Number of matches, counted up to 1,000: when `total_exact` is false there are more
    /// than `total` (1,000).
    pub total: Option<i64>,
    /// Whether `total` is the exact number of matches (false: "more than `total`").
    pub total_exact: bool,
    /// Sort used.
    pub sort: String,
    /// Cursor of the next page (pass it as `cursor`), absent on the last page.
    pub next_cursor: Option<String>,
    /// Counts per facet (a facet the query restricts is counted without its own
    /// restriction). Each facet is counted over at most 1,000 matches: beyond,
    /// `facets_exact` is false and the counts are those of a sample of 1,000 matches.
    pub facets: Vec<FacetView>,
    /// Whether the facet counts are over all the matches (false: some are over a sample of
    /// 1,000 matches; true when no facets were asked).
    pub facets_exact: bool,
    /// The query, canonical, without paging (what a saved search keeps).
    pub query: String,
}

impl FeedResponse {
    /// The response for a search result.
    pub fn new(r: &SearchResult, local_actor: &str) -> Self {
        let mut facets: Vec<FacetView> = Vec::new();
        for c in &r.page.facets {
            let name = c.facet.as_str();
            let label = feed::value_label(c.facet, &c.value, &r.names);
            let selected = r.params.selected(c.facet, &c.value);
            let value = FacetValueView {
                value: c.value.clone(),
                label,
                count: c.count,
                selected,
            };
            match facets.iter_mut().find(|f| f.name == name) {
                Some(f) => f.values.push(value),
                None => facets.push(FacetView {
                    name: name.to_owned(),
                    label: feed::facet_label(c.facet).to_owned(),
                    values: vec![value],
                }),
            }
        }
        Self {
            items: r
                .page
                .items
                .iter()
                .map(|i| FeedItemView::new(i, &r.names, local_actor))
                .collect(),
            total: r.page.total,
            total_exact: r.page.total_exact,
            sort: r.sort.as_str().to_owned(),
            next_cursor: r.next_cursor.clone(),
            facets_exact: r.page.facets_exact,
            facets,
            query: r.params.to_query_string(false),
        }
    }
}

/// # `GET /api/v1/feed`
/// Searches local and partners' postings (lecteur).
#[utoipa::path(get, path = "/api/v1/feed", tag = "feed", params(FeedQueryDoc),
    responses((status = 200, body = FeedResponse), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn get_feed(
    State(state): State<AppState>,
    Caller(p): Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<FeedResponse>, AppError> {
    p.require(Role::Lecteur)?;
    let params = FeedParams::parse(query.as_deref().unwrap_or(""))?;
    let r = feed::search(&state, &params, None).await?;
    Ok(Json(FeedResponse::new(&r, &state.actor_id())))
}

// ---- saved searches ----

/// A search to save.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedSearchBody {
    /// Name shown to its owner (unique per owner).
    pub name: String,
    /// The query, as the query string of `GET /api/v1/feed` (paging is ignored).
    pub query: String,
    /// Whether new matches are signalled (default true).
    #[serde(default)]
    pub alert: Option<bool>,
}

/// A saved search with its new matches.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedSearchView {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The query (canonical query string).
    pub query: String,
    /// Whether new matches are signalled.
    pub alert: bool,
    /// Matches first indexed since the owner last marked the results seen.
    pub new_count: i64,
    /// When the owner last marked the results seen.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub seen_at: OffsetDateTime,
    /// Creation.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

/// The owner key of saved searches: the principal's audit name.
pub fn owner(p: &crate::auth::Principal) -> &str {
    &p.actor
}

/// How many postings match a saved search since its owner last looked.
///
/// # Errors
/// Store errors; a stored query that no longer parses counts 0.
pub async fn new_count(state: &AppState, s: &SavedSearch) -> Result<i64, StoreError> {
    if !s.alert {
        return Ok(0);
    }
    let Ok(params) = FeedParams::parse(&s.query) else {
        return Ok(0);
    };
    let mut filter = params.filter(&state.actor_id());
    filter.after_doc_id = Some(s.seen_doc_id);
    state.store().feed_count(&filter).await
}

/// The view of a saved search.
///
/// # Errors
/// Store errors.
pub async fn saved_view(state: &AppState, s: SavedSearch) -> Result<SavedSearchView, AppError> {
    let new_count = new_count(state, &s).await?;
    Ok(SavedSearchView {
        id: s.id,
        name: s.name,
        query: s.query,
        alert: s.alert,
        new_count,
        seen_at: s.seen_at,
        created_at: s.created_at,
    })
}

/// Checks and saves a search for `p`.
///
/// # Errors
/// A validation problem (French) for an empty name or a bad query.
pub async fn save_search(
    state: &AppState,
    p: &crate::auth::Principal,
    name: &str,
    query: &str,
    alert: bool,
) -> Result<SavedSearch, AppError> {
    let name = name.trim();
    let mut errors = Vec::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError {
            field: "name".into(),
            message: "le nom de la recherche est obligatoire (100 caractères au plus)".into(),
        });
    }
    let params = match FeedParams::parse(query) {
        Ok(p) => Some(p.search_only()),
        Err(FeedError::Invalid(problems)) => {
            errors.extend(problems.into_iter().map(|(f, m)| FieldError {
                field: format!("query.{f}"),
                message: m,
            }));
            None
        }
        Err(FeedError::Store(e)) => return Err(e.into()),
    };
    let Some(params) = params.filter(|_| errors.is_empty()) else {
        return Err(AppError::Validation {
            detail: "recherche enregistrée invalide".into(),
            errors,
        });
    };
    let mut audit = p.audit("saved_search.create", "saved_search");
    audit.details = serde_json::json!({ "name": name });
    match state
        .store()
        .create_saved_search(
            owner(p),
            name,
            &params.to_query_string(false),
            alert,
            &audit,
        )
        .await
    {
        Ok(s) => Ok(s),
        Err(StoreError::Conflict { .. }) => Err(AppError::Conflict(format!(
            "vous avez déjà une recherche enregistrée nommée « {name} »"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// # `GET /api/v1/saved-searches`
/// The caller's saved searches, each with its count of new matches (lecteur).
#[utoipa::path(get, path = "/api/v1/saved-searches", tag = "feed",
    responses((status = 200, body = Vec<SavedSearchView>), (status = 401, body = Problem)))]
pub async fn list_saved_searches(
    State(state): State<AppState>,
    Caller(p): Caller,
) -> Result<Json<Vec<SavedSearchView>>, AppError> {
    p.require(Role::Lecteur)?;
    let mut out = Vec::new();
    for s in state.store().saved_searches(owner(&p)).await? {
        out.push(saved_view(&state, s).await?);
    }
    Ok(Json(out))
}

/// # `POST /api/v1/saved-searches`
/// Saves a search (lecteur); what matches now counts as seen.
#[utoipa::path(post, path = "/api/v1/saved-searches", tag = "feed", request_body = SavedSearchBody,
    responses((status = 201, body = SavedSearchView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_saved_search(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppJson(body): AppJson<SavedSearchBody>,
) -> Result<(StatusCode, Json<SavedSearchView>), AppError> {
    p.require(Role::Lecteur)?;
    let s = save_search(
        &state,
        &p,
        &body.name,
        &body.query,
        body.alert.unwrap_or(true),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(saved_view(&state, s).await?)))
}

/// # `DELETE /api/v1/saved-searches/{id}`
/// Deletes one of the caller's saved searches.
#[utoipa::path(delete, path = "/api/v1/saved-searches/{id}", tag = "feed", params(("id" = Uuid, Path, description = "Saved search id")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_saved_search(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode, AppError> {
    p.require(Role::Lecteur)?;
    state
        .store()
        .delete_saved_search(
            owner(&p),
            id,
            &p.audit("saved_search.delete", format!("saved_search:{id}")),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// New matches of a saved search.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewMatches {
    /// The saved search.
    pub search: SavedSearchView,
    /// Postings first indexed since the owner last marked the results seen, newest first
    /// (at most 100).
    pub items: Vec<FeedItemView>,
}

/// # `GET /api/v1/saved-searches/{id}/new`
/// The new matches of one of the caller's saved searches.
#[utoipa::path(get, path = "/api/v1/saved-searches/{id}/new", tag = "feed", params(("id" = Uuid, Path, description = "Saved search id")),
    responses((status = 200, body = NewMatches), (status = 404, body = Problem)))]
pub async fn get_new_matches(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<NewMatches>, AppError> {
    p.require(Role::Lecteur)?;
    let s = state.store().saved_search(owner(&p), id).await?;
    let mut params = FeedParams::parse(&s.query)?;
    params.sort = Some(crate::store::FeedSort::Recent);
    params.limit = Some(feed::MAX_LIMIT);
    params.facets = Some(false);
    let r = feed::search(&state, &params, Some(s.seen_doc_id)).await?;
    let actor = state.actor_id();
    Ok(Json(NewMatches {
        items: r
            .page
            .items
            .iter()
            .map(|i| FeedItemView::new(i, &r.names, &actor))
            .collect(),
        search: saved_view(&state, s).await?,
    }))
}

/// # `POST /api/v1/saved-searches/{id}/seen`
/// Marks the current matches of a saved search seen.
#[utoipa::path(post, path = "/api/v1/saved-searches/{id}/seen", tag = "feed", params(("id" = Uuid, Path, description = "Saved search id")),
    responses((status = 200, body = SavedSearchView), (status = 404, body = Problem)))]
pub async fn post_seen(
    State(state): State<AppState>,
    Caller(p): Caller,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<SavedSearchView>, AppError> {
    p.require(Role::Lecteur)?;
    let max = state.store().feed_max_doc_id().await?;
    state
        .store()
        .mark_saved_search_seen(owner(&p), id, max)
        .await?;
    let s = state.store().saved_search(owner(&p), id).await?;
    Ok(Json(saved_view(&state, s).await?))
}

// ---- exports ----

/// Most postings in one export.
pub const EXPORT_MAX: usize = 5000;

/// The console page of a posting.
pub fn console_url(state: &AppState, posting_id: &str) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("id", posting_id);
    format!("{}/console/offre?{}", state.base_url(), s.finish())
}

/// Every match of a query with its document (for CSV and iCalendar).
///
/// # Errors
/// As [`feed::search`].
pub async fn items_with_documents(
    state: &AppState,
    params: &FeedParams,
) -> Result<(Vec<crate::exports::ItemWithDoc>, Names), AppError> {
    let (items, names) = feed::all_items(state, params, EXPORT_MAX).await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let doc = feed::document(state, &item).await?;
        out.push((item, doc));
    }
    Ok((out, names))
}

fn text_response(content_type: &'static str, filename: Option<&str>, body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(name) = filename
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
    {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

/// CSV of a query.
///
/// # Errors
/// Bad parameters or store errors.
pub async fn csv_export(state: &AppState, params: &FeedParams) -> Result<Response, AppError> {
    let (items, names) = items_with_documents(state, params).await?;
    let body = crate::exports::csv(&items, &names, &|id| console_url(state, id));
    Ok(text_response(
        "text/csv; charset=utf-8; header=present",
        Some("passerelle-offres.csv"),
        body,
    ))
}

/// Atom feed of a query.
///
/// # Errors
/// Bad parameters or store errors.
pub async fn atom_export(
    state: &AppState,
    params: &FeedParams,
    self_url: &str,
) -> Result<Response, AppError> {
    let mut p = params.search_only();
    p.sort = Some(crate::store::FeedSort::Recent);
    let (items, names) = feed::all_items(state, &p, 200).await?;
    let query = params.to_query_string(false);
    let title = if params.is_empty_search() {
        "Passerelle — fil des offres".to_owned()
    } else if params.q.trim().is_empty() {
        "Passerelle — offres filtrées".to_owned()
    } else {
        format!("Passerelle — offres « {} »", params.q.trim())
    };
    let feed_id = format!("{}/api/v1/feed/export.atom?{query}", state.base_url());
    let body = crate::exports::atom(&items, &names, &title, self_url, &feed_id, &|id| {
        console_url(state, id)
    });
    Ok(text_response(
        "application/atom+xml; charset=utf-8",
        None,
        body,
    ))
}

/// iCalendar of the immersion and training days of a query.
///
/// # Errors
/// Bad parameters or store errors.
pub async fn ics_export(state: &AppState, params: &FeedParams) -> Result<Response, AppError> {
    let mut p = params.search_only();
    if p.kind.is_empty() {
        p.kind = crate::exports::CALENDAR_KINDS
            .iter()
            .map(|k| (*k).to_owned())
            .collect();
    } else {
        p.kind
            .retain(|k| crate::exports::CALENDAR_KINDS.contains(&k.as_str()));
        if p.kind.is_empty() {
            return Err(AppError::bad_request(
                "invalid_query",
                "le calendrier ne contient que les immersions et les formations : choisissez kind=immersion_offer, immersion_swap ou training_session",
            ));
        }
    }
    let (items, names) = items_with_documents(state, &p).await?;
    let body = crate::exports::ics(&items, &names, OffsetDateTime::now_utc(), &|id| {
        console_url(state, id)
    });
    Ok(text_response(
        "text/calendar; charset=utf-8",
        Some("passerelle-agenda.ics"),
        body,
    ))
}

/// # `GET /api/v1/feed/export.csv`
/// Every match of a feed query as CSV (`;`-separated, UTF-8 with BOM, at most 5,000 rows).
#[utoipa::path(get, path = "/api/v1/feed/export.csv", tag = "feed", params(FeedQueryDoc),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn get_feed_csv(
    State(state): State<AppState>,
    Caller(p): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    p.require(Role::Lecteur)?;
    let params = FeedParams::parse(query.as_deref().unwrap_or(""))?;
    csv_export(&state, &params).await
}

/// # `GET /api/v1/feed/export.atom`
/// The 200 most recent matches of a feed query as an Atom feed.
#[utoipa::path(get, path = "/api/v1/feed/export.atom", tag = "feed", params(FeedQueryDoc),
    responses((status = 200, content_type = "application/atom+xml", body = String), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn get_feed_atom(
    State(state): State<AppState>,
    Caller(p): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    p.require(Role::Lecteur)?;
    let raw = query.unwrap_or_default();
    let params = FeedParams::parse(&raw)?;
    let self_url = format!("{}/api/v1/feed/export.atom?{raw}", state.base_url());
    atom_export(&state, &params, &self_url).await
}

/// # `GET /api/v1/feed/export.ics`
/// The days of the immersions, immersion swaps and training sessions matching a feed query,
/// as an iCalendar file (one all-day event per day).
#[utoipa::path(get, path = "/api/v1/feed/export.ics", tag = "feed", params(FeedQueryDoc),
    responses((status = 200, content_type = "text/calendar", body = String), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn get_feed_ics(
    State(state): State<AppState>,
    Caller(p): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    p.require(Role::Lecteur)?;
    let params = FeedParams::parse(query.as_deref().unwrap_or(""))?;
    ics_export(&state, &params).await
}
