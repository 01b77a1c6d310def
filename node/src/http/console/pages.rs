//! Console pages of the feed: search with filters and facets, a posting's detail, saved
//! searches, and the exports of the current search.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use minijinja::context;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{ConsoleError, Form, User, day_fr, notice, page_ctx, render, see_other, when};
use crate::domain::search;
use crate::feed::{self, FeedParams};
use crate::http::api::feed::{self as api, FeedItemView, FeedResponse};
use crate::state::AppState;
use crate::store::{Facet, FeedSort, Role};

fn parse_params(raw: &str) -> (FeedParams, Vec<String>) {
    // Pages ignore `ok` (notices); everything else is the search.
    let kept: String = url::form_urlencoded::parse(raw.as_bytes())
        .filter(|(k, v)| k != "ok" && !v.trim().is_empty())
        .fold(
            url::form_urlencoded::Serializer::new(String::new()),
            |mut s, (k, v)| {
                s.append_pair(&k, &v);
                s
            },
        )
        .finish();
    match FeedParams::parse(&kept) {
        Ok(p) => (p, Vec::new()),
        Err(feed::FeedError::Invalid(problems)) => (
            FeedParams::default(),
            problems
                .into_iter()
                .map(|(f, m)| format!("{f} : {m}"))
                .collect(),
        ),
        Err(feed::FeedError::Store(_)) => (FeedParams::default(), Vec::new()),
    }
}

fn ok_code(raw: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.as_bytes())
        .find(|(k, _)| k == "ok")
        .map(|(_, v)| v.into_owned())
}

#[derive(Serialize)]
struct Opt {
    value: String,
    label: String,
    selected: bool,
}

fn options(table: &[(&str, &str)], selected: &[String]) -> Vec<Opt> {
    table
        .iter()
        .map(|(v, l)| Opt {
            value: (*v).to_owned(),
            label: (*l).to_owned(),
            selected: selected.iter().any(|s| s == v),
        })
        .collect()
}

#[derive(Serialize)]
struct FacetLink {
    label: String,
    count: i64,
    selected: bool,
    href: String,
}

#[derive(Serialize)]
struct FacetBlock {
    name: String,
    label: String,
    values: Vec<FacetLink>,
}

fn feed_href(p: &FeedParams) -> String {
    let q = p.to_query_string(true);
    if q.is_empty() {
        "/console/offres".to_owned()
    } else {
        format!("/console/offres?{q}")
    }
}

#[derive(Serialize)]
struct ItemCard {
    item: FeedItemView,
    href: String,
    apply_until: Option<String>,
    start: Option<String>,
    verified_at: Option<String>,
}

fn card(item: FeedItemView) -> ItemCard {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("id", &item.id);
    ItemCard {
        href: format!("/console/offre?{}", s.finish()),
        apply_until: item.apply_until.as_deref().map(day_fr),
        start: item.start.as_deref().map(day_fr),
        verified_at: item.proof.at.map(when),
        item,
    }
}

/// # `GET /console/offres`
/// The feed: search, filters, facets, results, paging.
pub async fn get_feed(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let raw = raw.unwrap_or_default();
    let (params, problems) = parse_params(&raw);
    let r = feed::search(&state, &params, None).await;
    let (response, problems) = match r {
        Ok(r) => (Some(FeedResponse::new(&r, &state.actor_id())), problems),
        Err(feed::FeedError::Invalid(p)) => (
            None,
            p.into_iter().map(|(f, m)| format!("{f} : {m}")).collect(),
        ),
        Err(e) => return Err(e.into()),
    };
    let (items, (total, total_exact, facets_exact), next, facets) = match response {
        Some(resp) => {
            let next = resp.next_cursor.as_ref().map(|c| {
                let mut p = params.clone();
                p.cursor = Some(c.clone());
                feed_href(&p)
            });
            let facets: Vec<FacetBlock> = resp
                .facets
                .iter()
                .map(|f| FacetBlock {
                    name: f.name.clone(),
                    label: f.label.clone(),
                    values: f
                        .values
                        .iter()
                        .map(|v| {
                            let facet = Facet::ALL
                                .into_iter()
                                .find(|x| x.as_str() == f.name)
                                .unwrap_or(Facet::Kind);
                            FacetLink {
                                label: v.label.clone(),
                                count: v.count,
                                selected: v.selected,
                                href: feed_href(&params.toggled(facet, &v.value)),
                            }
                        })
                        .collect(),
                })
                .collect();
            (
                resp.items.into_iter().map(card).collect::<Vec<_>>(),
                (resp.total.unwrap_or(0), resp.total_exact, resp.facets_exact),
                next,
                facets,
            )
        }
        None => (Vec::new(), (0, true, true), None, Vec::new()),
    };
    let search_query = params.to_query_string(false);
    let first_page = params.cursor.is_some().then(|| {
        let mut p = params.clone();
        p.cursor = None;
        feed_href(&p)
    });
    let exports = |ext: &str| {
        if search_query.is_empty() {
            format!("/console/offres/export.{ext}")
        } else {
            format!("/console/offres/export.{ext}?{search_query}")
        }
    };
    let departements: Vec<Opt> = search::DEPARTEMENTS
        .iter()
        .map(|(c, n, _)| Opt {
            value: (*c).to_owned(),
            label: format!("{c} — {n}"),
            selected: params.departement.iter().any(|d| d == c),
        })
        .collect();
    let regions: Vec<Opt> = search::REGIONS
        .iter()
        .map(|(c, n)| Opt {
            value: (*c).to_owned(),
            label: (*n).to_owned(),
            selected: params.region.iter().any(|d| d == c),
        })
        .collect();
    let mut statuses = vec![Opt {
        value: "all".into(),
        label: "Tous les statuts".into(),
        selected: params.status.iter().any(|s| s == "all"),
    }];
    statuses.extend(options(&feed::STATUSES[..6], &params.status));
    let base = page_ctx(&state, &user, "offres").await;
    render(
        "feed.html",
        context! { ..base, ..context! {
            q => params.q,
            kinds => options(feed::KINDS, &params.kind),
            categories => options(feed::CATEGORIES, &params.categorie),
            filieres => options(feed::FILIERES, &params.filiere),
            working_times => options(feed::WORKING_TIMES, &params.working_time),
            statuses => statuses,
            sorts => options(feed::SORTS, &params.sort.map(|s| vec![s.as_str().to_owned()]).unwrap_or_default()),
            departements => departements,
            regions => regions,
            metier => params.metier.join(", "),
            commune => params.commune.join(", "),
            telework => params.telework.map(|t| if t { "true" } else { "false" }).unwrap_or(""),
            deadline_from => params.deadline_from,
            deadline_to => params.deadline_to,
            start_from => params.start_from,
            start_to => params.start_to,
            quotite_min => params.quotite_min,
            quotite_max => params.quotite_max,
            origin_local => params.origin.iter().any(|o| o == "local"),
            items => items,
            total => total,
            total_exact => total_exact,
            facets_exact => facets_exact,
            facet_sample => crate::store::FACET_SAMPLE,
            next => next,
            first_page => first_page,
            facets => facets,
            problems => problems,
            search_query => search_query,
            has_search => !params.is_empty_search(),
            export_csv => exports("csv"),
            export_atom => exports("atom"),
            export_ics => exports("ics"),
            notice => notice(ok_code(&raw).as_deref()),
        }},
    )
}

#[derive(Serialize)]
struct Row {
    label: String,
    value: String,
}

fn s(doc: &Value, p: &str) -> Option<String> {
    doc.pointer(p)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|v| !v.trim().is_empty())
}

fn list(doc: &Value, p: &str) -> Vec<String> {
    doc.pointer(p)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(true) => Some("oui".into()),
        Value::Bool(false) => Some("non".into()),
        Value::Array(a) => {
            let parts: Vec<String> = a
                .iter()
                .filter_map(|x| match x {
                    Value::Object(o) => {
                        Some(o.values().filter_map(scalar).collect::<Vec<_>>().join(" "))
                    }
                    other => scalar(other),
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join(" ; "))
        }
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .filter_map(|(k, v)| scalar(v).map(|v| format!("{k} : {v}")))
                .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Null => None,
    }
}

/// The rows of a posting's detail, with French labels.
fn detail_rows(doc: &Value) -> (Vec<Row>, Vec<Row>) {
    let mut main = Vec::new();
    let push = |rows: &mut Vec<Row>, label: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            rows.push(Row {
                label: label.to_owned(),
                value: v,
            });
        }
    };
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(", "));
    push(&mut main, "Employeur", s(doc, "/employer/name"));
    push(&mut main, "Service", s(doc, "/employer/service"));
    push(
        &mut main,
        "Autorité de recrutement",
        s(doc, "/employer/recruitingAuthority"),
    );
    push(
        &mut main,
        "Versant",
        s(doc, "/statutory/versant").map(|v| v.to_uppercase()),
    );
    push(
        &mut main,
        "Catégories",
        join(list(doc, "/statutory/categories")),
    );
    push(
        &mut main,
        "Filières",
        join(
            list(doc, "/statutory/filieres")
                .iter()
                .map(|f| feed::label(feed::FILIERES, f).unwrap_or(f).to_owned())
                .collect(),
        ),
    );
    push(
        &mut main,
        "Cadres d'emplois",
        join(list(doc, "/statutory/cadresEmplois")),
    );
    push(&mut main, "Grades", join(list(doc, "/statutory/grades")));
    push(
        &mut main,
        "Ouvert aux contractuels",
        s(doc, "/statutory/openToContractuels").map(|v| match v.as_str() {
            "none" => "non (réservé aux fonctionnaires)".to_owned(),
            other => format!("oui ({other})"),
        }),
    );
    let metiers: Vec<String> = doc
        .pointer("/metiers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| {
                    let mut parts = Vec::new();
                    if let Some(c) = s(m, "/rome/code") {
                        parts.push(format!("ROME {c}"));
                    }
                    for p in ["/rome/label", "/cnfpt/label", "/local/label"] {
                        if let Some(l) = s(m, p) {
                            parts.push(l);
                        }
                    }
                    parts.join(" — ")
                })
                .collect()
        })
        .unwrap_or_default();
    push(&mut main, "Métiers", join(metiers));
    let places: Vec<String> = doc
        .pointer("/locations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|l| {
                    let commune = s(l, "/commune").unwrap_or_default();
                    let dep = search::departement_of_commune(&commune)
                        .and_then(|d| search::departement_name(d).map(|n| format!("{n} ({d})")));
                    let mut parts = Vec::new();
                    if let Some(a) = s(l, "/address") {
                        parts.push(a);
                    }
                    parts.push(format!("commune {commune}"));
                    if let Some(d) = dep {
                        parts.push(d);
                    }
                    parts.join(", ")
                })
                .collect()
        })
        .unwrap_or_default();
    push(&mut main, "Lieux de travail", join(places));
    push(
        &mut main,
        "Temps de travail",
        s(doc, "/workingTime/kind").map(|k| {
            let mut t = feed::label(feed::WORKING_TIMES, &k)
                .unwrap_or(&k)
                .to_owned();
            if let Some(m) = doc
                .pointer("/workingTime/hebdoMinutes")
                .and_then(Value::as_i64)
            {
                t.push_str(&format!(", {} h {:02} par semaine", m / 60, m % 60));
            }
            if let Some(p) = doc
                .pointer("/workingTime/quotitePct")
                .and_then(Value::as_i64)
            {
                t.push_str(&format!(", {p} %"));
            }
            t
        }),
    );
    push(
        &mut main,
        "Télétravail",
        doc.pointer("/telework/allowed")
            .and_then(Value::as_bool)
            .map(|a| {
                if !a {
                    return "non".to_owned();
                }
                match doc
                    .pointer("/telework/daysPerWeekMax")
                    .and_then(Value::as_i64)
                {
                    Some(d) => format!("oui, jusqu'à {d} jour(s) par semaine"),
                    None => "oui".to_owned(),
                }
            }),
    );
    for (label, p) in [
        ("Visible à partir du", "/dates/publishFrom"),
        ("Date limite de candidature", "/dates/applyUntil"),
        ("Prise de poste ou début", "/dates/start"),
        ("Fin", "/dates/end"),
    ] {
        push(&mut main, label, s(doc, p).map(|d| day_fr(&d)));
    }
    push(&mut main, "Contact", s(doc, "/contact/mailbox"));
    push(&mut main, "Service à contacter", s(doc, "/contact/service"));
    push(
        &mut main,
        "Conditions particulières",
        join(list(doc, "/requirements")),
    );
    push(&mut main, "Références", join(list(doc, "/legalRefs")));
    let mut body = Vec::new();
    if let Some(Value::Object(b)) = doc.get("body") {
        for (k, v) in b {
            let label = super::postings::body_label(k)
                .unwrap_or(k.as_str())
                .to_owned();
            let value = match (k.as_str(), v) {
                ("slots", Value::Array(slots)) => Some(
                    slots
                        .iter()
                        .map(|slot| {
                            let d = s(slot, "/date").map(|d| day_fr(&d)).unwrap_or_default();
                            match s(slot, "/duration").as_deref() {
                                Some("half_day") => format!("{d} (demi-journée)"),
                                _ => format!("{d} (journée)"),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" ; "),
                ),
                ("sessionDates" | "proposedDates", Value::Array(days)) => Some(
                    days.iter()
                        .filter_map(Value::as_str)
                        .map(day_fr)
                        .collect::<Vec<_>>()
                        .join(" ; "),
                ),
                ("vacancyDate", Value::String(d)) => Some(day_fr(d)),
                _ => scalar(v),
            };
            push(&mut body, &label, value);
        }
    }
    (main, body)
}

#[derive(Serialize)]
struct HistoryRow {
    what: String,
    at: String,
    version: Option<i64>,
    by: Option<String>,
}

/// # `GET /console/offre?id=URL` (or `?local=UUID` for a draft)
/// A posting's detail: who published it, that its signature was verified, who relayed
/// it, its fields and its history.
pub async fn get_posting(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let raw = raw.unwrap_or_default();
    let q: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| q.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone());
    let names = feed::Names::load(&state).await?;
    let actor = state.actor_id();
    let not_found = || ConsoleError::NotFound("Cette offre n'existe pas ou n'existe plus.".into());
    // A local posting by id (drafts are not in the feed), else a feed posting by URL.
    let (item_view, doc, local) = if let Some(local_id) = get("local") {
        let id: Uuid = local_id.parse().map_err(|_| not_found())?;
        let posting = state.store().posting(id).await?;
        let url = posting
            .document
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let view = state
            .store()
            .feed_item(&url)
            .await?
            .map(|item| FeedItemView::new(&item, &names, &actor));
        (view, posting.document.clone(), Some(posting))
    } else {
        let url = get("id").ok_or_else(not_found)?;
        let item = state.store().feed_item(&url).await?.ok_or_else(not_found)?;
        let doc = feed::document(&state, &item).await?.ok_or_else(not_found)?;
        let local = match item.local_id {
            Some(id) => Some(state.store().posting(id).await?),
            None => None,
        };
        (Some(FeedItemView::new(&item, &names, &actor)), doc, local)
    };
    let object_id = doc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let history: Vec<HistoryRow> = state
        .store()
        .object_history(&object_id)
        .await?
        .into_iter()
        .map(|h| HistoryRow {
            what: match (h.direction, h.activity_type.as_str()) {
                ("sent", "Create") => "Publiée (envoyée aux destinataires)".to_owned(),
                ("sent", "Update") => "Mise à jour envoyée".to_owned(),
                ("sent", "Delete") => "Retrait envoyé".to_owned(),
                ("received", "Create") => "Reçue".to_owned(),
                ("received", "Update") => "Mise à jour reçue".to_owned(),
                ("received", "Announce") => "Reçue par relais".to_owned(),
                ("received", "Delete") => "Retrait reçu".to_owned(),
                (d, t) => format!("{t} ({})", if d == "sent" { "envoyée" } else { "reçue" }),
            },
            at: when(h.at),
            version: h.version,
            by: h.actor.map(|a| names.of(&a)),
        })
        .collect();
    let (rows, body_rows) = detail_rows(&doc);
    let kind = s(&doc, "/postingKind").unwrap_or_default();
    let status = s(&doc, "/status").unwrap_or_default();
    let author = s(&doc, "/attributedTo").unwrap_or_default();
    let contact_url =
        s(&doc, "/contact/url").filter(|u| u.starts_with("https://") || u.starts_with("http://"));
    let local_ctx = local.as_ref().map(|p| {
        context! {
            id => p.id.to_string(),
            status => p.status.as_str(),
            version => p.version,
            can_publish => p.status == crate::store::PostingStatus::Draft,
            can_close => p.status == crate::store::PostingStatus::Published,
            can_edit => p.status != crate::store::PostingStatus::Closed,
        }
    });
    let base = page_ctx(
        &state,
        &user,
        if local.is_some() {
            "mes-offres"
        } else {
            "offres"
        },
    )
    .await;
    render(
        "posting.html",
        context! { ..base, ..context! {
            name => s(&doc, "/name").unwrap_or_default(),
            kind_label => feed::label(feed::KINDS, &kind).unwrap_or(&kind),
            status_label => feed::label(feed::STATUSES, &status).unwrap_or(&status),
            summary => s(&doc, "/summary"),
            missions => s(&doc, "/missions"),
            profile => s(&doc, "/profile"),
            rows => rows,
            body_rows => body_rows,
            item => item_view.map(card),
            author_name => names.of(&author),
            version => doc.get("version").and_then(Value::as_i64),
            posting_id => object_id,
            contact_url => contact_url,
            history => history,
            local => local_ctx,
            published => s(&doc, "/published"),
        }},
    )
}

/// Parses a form body, checking its CSRF token, and refuses a field holding U+0000 (a
/// database cannot store it).
pub fn form(user: &User, body: &Bytes) -> Result<Form, ConsoleError> {
    let form = Form::parse(body);
    user.check_csrf(&form)?;
    if form.has_nul() {
        return Err(ConsoleError::BadRequest(super::NUL_IN_FORM.to_owned()));
    }
    Ok(form)
}

#[derive(Serialize)]
struct SavedRow {
    id: String,
    name: String,
    query: String,
    new_count: i64,
    alert: bool,
    href: String,
    seen_at: String,
}

/// # `GET /console/recherches`
/// The user's saved searches and their new matches.
pub async fn get_saved(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let mut rows = Vec::new();
    for s in state
        .store()
        .saved_searches(api::owner(&user.principal))
        .await?
    {
        let new_count = api::new_count(&state, &s).await?;
        rows.push(SavedRow {
            id: s.id.to_string(),
            name: s.name,
            href: if s.query.is_empty() {
                "/console/offres".to_owned()
            } else {
                format!("/console/offres?{}", s.query)
            },
            query: s.query,
            new_count,
            alert: s.alert,
            seen_at: when(s.seen_at),
        });
    }
    let base = page_ctx(&state, &user, "recherches").await;
    render(
        "saved.html",
        context! { ..base, ..context! {
            searches => rows,
            notice => notice(ok_code(raw.as_deref().unwrap_or("")).as_deref()),
        }},
    )
}

/// # `POST /console/recherches`
/// Saves the current search.
pub async fn post_saved(
    State(state): State<AppState>,
    user: User,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let f = form(&user, &body)?;
    let alert = f.get("alert").is_some();
    match api::save_search(
        &state,
        &user.principal,
        &f.text("name"),
        &f.text("query"),
        alert,
    )
    .await
    {
        Ok(_) => Ok(see_other("/console/recherches?ok=recherche")),
        Err(crate::http::error::AppError::Validation { errors, .. }) => {
            Err(ConsoleError::BadRequest(
                errors
                    .into_iter()
                    .map(|e| e.message)
                    .collect::<Vec<_>>()
                    .join(" ; "),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// # `GET /console/recherches/{id}`
/// The new matches of a saved search.
pub async fn get_saved_one(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ConsoleError::NotFound("Recherche introuvable.".into()))?;
    let s = state
        .store()
        .saved_search(api::owner(&user.principal), id)
        .await?;
    let mut params = FeedParams::parse(&s.query)?;
    params.sort = Some(FeedSort::Recent);
    params.limit = Some(feed::MAX_LIMIT);
    params.facets = Some(false);
    let r = feed::search(&state, &params, Some(s.seen_doc_id)).await?;
    let actor = state.actor_id();
    let items: Vec<ItemCard> = r
        .page
        .items
        .iter()
        .map(|i| card(FeedItemView::new(i, &r.names, &actor)))
        .collect();
    let base = page_ctx(&state, &user, "recherches").await;
    render(
        "saved_one.html",
        context! { ..base, ..context! {
            id => s.id.to_string(),
            name => s.name,
            href => if s.query.is_empty() { "/console/offres".to_owned() } else { format!("/console/offres?{}", s.query) },
            items => items,
            seen_at => when(s.seen_at),
        }},
    )
}

/// # `POST /console/recherches/{id}/vu`
/// Marks the matches of a saved search seen.
pub async fn post_saved_seen(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    form(&user, &body)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ConsoleError::NotFound("Recherche introuvable.".into()))?;
    let max = state.store().feed_max_doc_id().await?;
    state
        .store()
        .mark_saved_search_seen(api::owner(&user.principal), id, max)
        .await?;
    Ok(see_other("/console/recherches?ok=vu"))
}

/// # `POST /console/recherches/{id}/supprimer`
/// Deletes a saved search.
pub async fn post_saved_delete(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    form(&user, &body)?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ConsoleError::NotFound("Recherche introuvable.".into()))?;
    state
        .store()
        .delete_saved_search(
            api::owner(&user.principal),
            id,
            &user
                .principal
                .audit("saved_search.delete", format!("saved_search:{id}")),
        )
        .await?;
    Ok(see_other("/console/recherches?ok=recherche_supprimee"))
}

fn export_params(raw: Option<String>) -> Result<FeedParams, ConsoleError> {
    let (p, problems) = parse_params(raw.as_deref().unwrap_or(""));
    if problems.is_empty() {
        Ok(p)
    } else {
        Err(ConsoleError::BadRequest(problems.join(" ; ")))
    }
}

/// # `GET /console/offres/export.csv`
pub async fn get_export_csv(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    Ok(api::csv_export(&state, &export_params(raw)?).await?)
}

/// # `GET /console/offres/export.atom`
pub async fn get_export_atom(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    let params = export_params(raw.clone())?;
    let self_url = format!(
        "{}/console/offres/export.atom?{}",
        state.base_url(),
        raw.unwrap_or_default()
    );
    Ok(api::atom_export(&state, &params, &self_url).await?)
}

/// # `GET /console/offres/export.ics`
pub async fn get_export_ics(
    State(state): State<AppState>,
    user: User,
    RawQuery(raw): RawQuery,
) -> Result<Response, ConsoleError> {
    user.require(Role::Lecteur)?;
    Ok(api::ics_export(&state, &export_params(raw)?).await?)
}
