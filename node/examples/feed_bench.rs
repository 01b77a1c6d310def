//! Feed benchmark (not a test): seeds N received postings into a fresh database, indexes
//! them with the node's own indexing code (`Store::reindex_feed`), then runs typical feed
//! queries (full text, filters, facets, paging) and prints p50/p99 latencies.
//!
//! ```sh
//! cargo run --release -p passerelle-node --example feed_bench -- sqlite 100000
//! cargo run --release -p passerelle-node --example feed_bench -- postgres 100000
//! ```
//!
//! PostgreSQL uses `PASSERELLE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) in a schema of its own, dropped at the end.
//!
//! Arguments: `BACKEND N [RUNS] [--keep NAME]`. Seeding a million postings takes minutes:
//! with `--keep`, the database is kept (SQLite: the file `NAME`; PostgreSQL: the schema
//! `NAME`) and reused by the next run with the same `N` (pending migrations are applied
//! and whatever is missing from the feed is indexed). Delete it when done (`rm NAME*`, or
//! `DROP SCHEMA NAME CASCADE`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use passerelle_node::feed::FeedParams;
use passerelle_node::store::{FeedBounds, FeedQuery, Store};
use serde_json::json;
use sqlx::Connection as _;

const METIERS: &[(&str, &str, &str, &str)] = &[
    ("Ingénieur voirie et réseaux", "F1106", "technique", "A"),
    ("Technicien des bâtiments", "F1104", "technique", "B"),
    ("Responsable de médiathèque", "K1601", "culturelle", "A"),
    (
        "Assistant de conservation du patrimoine",
        "K1602",
        "culturelle",
        "B",
    ),
    ("Animateur périscolaire", "G1203", "animation", "C"),
    ("Agent d'accueil", "M1601", "administrative", "C"),
    (
        "Gestionnaire des ressources humaines",
        "M1501",
        "administrative",
        "B",
    ),
    ("Juriste marchés publics", "K1903", "administrative", "A"),
    ("Jardinier des espaces verts", "A1203", "technique", "C"),
    (
        "Éducateur des activités physiques et sportives",
        "G1204",
        "sportive",
        "B",
    ),
    ("Policier municipal", "K1706", "police_municipale", "C"),
    ("Auxiliaire de puériculture", "J1304", "medico_sociale", "C"),
    ("Travailleur social", "K1201", "sociale", "A"),
    (
        "Chargé de mission développement économique",
        "K1802",
        "administrative",
        "A",
    ),
    ("Agent d'entretien des locaux", "K2204", "technique", "C"),
    ("Comptable", "M1203", "administrative", "B"),
];

const COMMUNES: &[(&str, &str)] = &[
    ("38185", "Grenoble"),
    ("38053", "Bourgoin-Jallieu"),
    ("38563", "Vienne"),
    ("69123", "Lyon"),
    ("69266", "Villeurbanne"),
    ("73065", "Chambéry"),
    ("74010", "Annecy"),
    ("26362", "Valence"),
    ("07186", "Privas"),
    ("42218", "Saint-Étienne"),
    ("63113", "Clermont-Ferrand"),
    ("01053", "Bourg-en-Bresse"),
    ("75056", "Paris"),
    ("13055", "Marseille"),
    ("31555", "Toulouse"),
    ("33063", "Bordeaux"),
    ("35238", "Rennes"),
    ("44109", "Nantes"),
    ("59350", "Lille"),
    ("67482", "Strasbourg"),
];

const KINDS: &[&str] = &[
    "vacancy",
    "vacancy",
    "vacancy",
    "vacancy",
    "vacancy",
    "vacancy",
    "mad_offer",
    "project_mission",
    "immersion_offer",
    "training_session",
];

const WORDS: &[&str] = &[
    "projet",
    "équipe",
    "usagers",
    "service public",
    "territoire",
    "transition écologique",
    "numérique",
    "encadrement",
    "partenariats",
    "budget",
    "qualité",
    "sécurité",
    "accueil",
    "jeunesse",
    "culture",
    "mobilité",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

fn posting(i: usize, rng: &mut Rng) -> (String, String, String, serde_json::Value) {
    let origin = format!("https://rh{}.example", i % 200);
    let id = format!("{origin}/postings/{:08}-0000-7000-8000-{:012}", i, i);
    let (title, rome, filiere, cat) = *rng.pick(METIERS);
    let (commune, city) = *rng.pick(COMMUNES);
    let kind = *rng.pick(KINDS);
    let summary: Vec<&str> = (0..8).map(|_| *rng.pick(WORDS)).collect();
    let day = 1 + rng.next() % 28;
    let month = 1 + rng.next() % 12;
    let telework = rng.next().is_multiple_of(2);
    let quotite = [50, 80, 100][(rng.next() % 3) as usize];
    let doc = json!({
        "id": id, "type": "Posting", "postingKind": kind,
        "attributedTo": format!("{origin}/actor"), "version": 1,
        "published": format!("2026-{:02}-{:02}T09:00:00Z", 1 + (i % 11), 1 + (i % 28)),
        "status": "published", "visibility": "federation",
        "name": format!("{title} (H/F)"),
        "summary": format!("{} à {city} : {}.", title, summary.join(", ")),
        "missions": "Piloter les projets du service, accompagner les équipes et les usagers.",
        "statutory": {"versant": "fpt", "categories": [cat], "filieres": [filiere],
                      "cadresEmplois": ["Cadre d'emplois de la filière"]},
        "metiers": [{"rome": {"code": rome, "label": title}}],
        "employer": {"name": format!("Collectivité {}", i % 200)},
        "locations": [{"commune": commune, "address": city}],
        "workingTime": if quotite == 100 { json!({"kind": "complet"}) } else { json!({"kind": "quotite", "quotitePct": quotite}) },
        "telework": {"allowed": telework},
        "dates": {"applyUntil": format!("2027-{month:02}-{day:02}"), "start": format!("2027-{:02}-01", 1 + (month % 12))},
        "body": {}
    });
    (id, format!("{origin}/actor"), kind.to_owned(), doc)
}

macro_rules! seed_body {
    ($c:expr, $n:expr, $rows:expr) => {{
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut i = 0;
        // Big transactions of multi-row inserts: seeding is not what is measured.
        while i < $n {
            let mut tx = $c.begin().await.unwrap();
            let end = (i + 20_000).min($n);
            let mut j = i;
            while j < end {
                // SQLite binds by parameter name, at a cost that grows with the square
                // of a statement's parameters: small statements there.
                let rows = (end - j).min($rows);
                let mut sql = String::from(
                    "INSERT INTO remote_postings (object_id, author, relayed_by, kind, version, document, \
                     verified_key, verified_at, first_seen_at, updated_at) VALUES ",
                );
                for r in 0..rows {
                    let b = r * 5;
                    sql.push_str(&format!(
                        "{}(${}, ${}, NULL, ${}, 1, ${}, ${}, 0, 0, 0)",
                        if r > 0 { ", " } else { "" },
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    ));
                }
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for k in j..j + rows {
                    let (id, author, kind, doc) = posting(k, &mut rng);
                    q = q
                        .bind(id)
                        .bind(author.clone())
                        .bind(kind)
                        .bind(doc.to_string())
                        .bind(format!("{author}#key-1"));
                }
                q.execute(&mut *tx).await.unwrap();
                j += rows;
            }
            tx.commit().await.unwrap();
            i = end;
        }
    }};
}

trait Seed {
    async fn seed(&mut self, n: usize);
}
impl Seed for sqlx::SqliteConnection {
    async fn seed(&mut self, n: usize) {
        seed_body!(self, n, 20)
    }
}
impl Seed for sqlx::PgConnection {
    async fn seed(&mut self, n: usize) {
        seed_body!(self, n, 200)
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str).to_owned();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let runs: usize = args
        .get(3)
        .filter(|a| !a.starts_with("--"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let keep: Option<String> = args
        .iter()
        .position(|a| a == "--keep")
        .and_then(|i| args.get(i + 1).cloned());
    let dir = tempfile::tempdir().unwrap();
    let (url, cleanup) = if backend == "postgres" {
        let admin = std::env::var("PASSERELLE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let schema = keep
            .clone()
            .unwrap_or_else(|| format!("bench_{}", uuid::Uuid::now_v7().simple()));
        assert!(
            schema
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "schema name: letters, digits, _"
        );
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&mut c)
        .await
        .unwrap();
        (
            format!("{admin}?options=-c%20search_path%3D{schema}"),
            keep.is_none().then_some((admin, schema)),
        )
    } else {
        let path = match &keep {
            Some(p) => std::path::PathBuf::from(p),
            None => dir.path().join("bench.db"),
        };
        (format!("sqlite://{}", path.display()), None)
    };
    let store = Store::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    println!("feed benchmark: {backend}, {n} received postings, {runs} runs per query");
    let seeded: i64 = if backend == "postgres" {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM remote_postings")
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM remote_postings")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    let t = Instant::now();
    if seeded == n as i64 {
        println!(
            "reusing the {n} postings kept in {}",
            keep.as_deref().unwrap_or("?")
        );
    } else if seeded != 0 {
        panic!("the kept database holds {seeded} postings, not {n}: delete it or use another name");
    } else if backend == "postgres" {
        sqlx::PgConnection::connect(&url)
            .await
            .unwrap()
            .seed(n)
            .await;
    } else {
        sqlx::SqliteConnection::connect(&url)
            .await
            .unwrap()
            .seed(n)
            .await;
    }
    println!(
        "seeded remote_postings in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let indexed = store.reindex_feed().await.unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "indexed {indexed} postings in {secs:.1} s ({:.0} postings/s, one transaction per 500)",
        indexed as f64 / secs
    );
    // What the node does at start: planner statistics.
    let t = Instant::now();
    store.optimize(true).await.unwrap();
    println!(
        "planner statistics refreshed in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let queries: &[(&str, &str)] = &[
        ("landing page (no filter, recent, facets)", ""),
        ("text « ingénieur » (relevance, facets)", "q=ing%C3%A9nieur"),
        (
            "text « médiathèques » + département 38 (facets)",
            "q=m%C3%A9diath%C3%A8ques&departement=38",
        ),
        (
            "filters kind+catégorie+région (facets)",
            "kind=vacancy&categorie=A&region=84",
        ),
        (
            "text « animateur » + télétravail, by deadline, no facets",
            "q=animateur&telework=true&sort=deadline&facets=false",
        ),
        (
            "métier ROME + quotité ≤ 80 + deadline window (facets)",
            "metier=K1601&quotite_max=80&deadline_from=2027-03-01&deadline_to=2027-06-30",
        ),
    ];
    // The bounds of counting can be tried out without rebuilding.
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<i64>().ok());
    let defaults = FeedBounds::default();
    let bounds = FeedBounds {
        total_max: env("FEED_BENCH_TOTAL_MAX").unwrap_or(defaults.total_max),
        facet_sample: env("FEED_BENCH_FACET_SAMPLE").unwrap_or(defaults.facet_sample),
        dense_terms: env("FEED_BENCH_DENSE_TERMS").unwrap_or(defaults.dense_terms),
        rank_max: env("FEED_BENCH_RANK_MAX").unwrap_or(defaults.rank_max),
    };
    println!(
        "\ntotal counted up to {}, facets over at most {} matches, relevance ranks the {} newest matches",
        bounds.total_max, bounds.facet_sample, bounds.rank_max
    );
    println!("\n| query | matches | p50 (ms) | p99 (ms) |\n|---|---:|---:|---:|");
    for (label, qs) in queries {
        let params = FeedParams::parse(qs).unwrap();
        let mut q = FeedQuery {
            filter: params.filter("https://local.example/actor"),
            sort: params.effective_sort(),
            cursor: None,
            limit: 20,
            facets: params.facets.unwrap_or(true),
            total: true,
            bounds,
        };
        let first = store.feed_search(&q).await.unwrap();
        let total = match (first.total.unwrap_or(0), first.total_exact) {
            (n, true) => n.to_string(),
            (n, false) => format!("> {n}"),
        };
        let total = if q.facets && !first.facets_exact {
            format!("{total} (facets over a sample)")
        } else {
            total
        };
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let page = store.feed_search(&q).await.unwrap();
            times.push(t.elapsed());
            std::hint::black_box(page);
        }
        times.sort();
        println!(
            "| {label} | {total} | {:.1} | {:.1} |",
            pct(&times, 0.5).as_secs_f64() * 1000.0,
            pct(&times, 0.99).as_secs_f64() * 1000.0
        );
        // The second page through the cursor (keyset paging) costs the same as the first.
        if let Some(next) = first.next.clone() {
            q.cursor = Some(next);
            q.facets = false;
            q.total = false;
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                std::hint::black_box(store.feed_search(&q).await.unwrap());
                times.push(t.elapsed());
            }
            times.sort();
            println!(
                "| … its next page (cursor, no facets, no count) | | {:.1} | {:.1} |",
                pct(&times, 0.5).as_secs_f64() * 1000.0,
                pct(&times, 0.99).as_secs_f64() * 1000.0
            );
        }
    }
    store.close().await;
    if let Some((admin, schema)) = cleanup {
        let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut c)
            .await
            .unwrap();
    }
}
