//! Operations on a whole node: `passerelle backup` / `restore` and `migrate-store`, on
//! both backends, with a row in every table of the schema (see `fixture.rs`).

use std::path::Path;

use axum::http::StatusCode;
use passerelle_node::config::Config;
use passerelle_node::ops::backup::{self, Manifest};
use passerelle_node::state::AppState;
use passerelle_node::store::{PostingStatus, Store};
use passerelle_node::{http, keys};
use passerelle_protocol::httpsig::{self, RequestParts, VerifyPolicy};
use passerelle_protocol::keys::PublicKey;
use passerelle_protocol::proof;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::fixture::{self, BASE, ISERE, Populated};
use crate::http::{TestNode, node_on};
use crate::support::TestDb;

/// Reopens a node on its (restored or copied) database: store, key file, router.
async fn reopen(config: &Config, dir: tempfile::TempDir, db: TestDb, admin: String) -> TestNode {
    let store = Store::connect(&config.database_url(), 4).await.unwrap();
    let key = keys::load_and_register(&store, &config.key_file())
        .await
        .unwrap();
    let router = http::router(AppState::new(config, store.clone(), key).unwrap());
    TestNode {
        router,
        store,
        admin,
        dir,
        db,
    }
}

/// The public keys the node's actor document serves, by full key id.
async fn served_keys(n: &TestNode) -> Vec<(String, PublicKey)> {
    let r = n.request("GET", "/actor", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let actor = r.json();
    actor["assertionMethod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                PublicKey::from_multikey(k["publicKeyMultibase"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

/// The node's signatures verify against the actor document it serves: the object proof
/// of every published posting, and an RFC 9421 signature made with its key file on a
/// delivery-like request.
///
/// The multi-node counterpart, where a real partner accepts the restored node's deliveries,
/// is `restored_node_still_federates` in `tests/tests/federation.rs`.
pub async fn assert_partners_accept_signatures(n: &TestNode, key_file: &Path) {
    let keys = served_keys(n).await;
    assert!(!keys.is_empty(), "the actor serves its keys");
    let published = n
        .store
        .postings(Some(PostingStatus::Published))
        .await
        .unwrap();
    assert!(!published.is_empty());
    for p in &published {
        proof::verify(p.document.clone(), &keys)
            .unwrap_or_else(|e| panic!("the proof of {} does not verify: {e}", p.id));
    }
    // An HTTP message signature, as a delivery to a partner's inbox would carry.
    let (key, created) = keys::load_or_create(key_file).unwrap();
    assert!(!created, "the key file was there");
    let current = n
        .store
        .keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.current)
        .unwrap();
    let key_id = format!("{BASE}/actor#{}", current.key_id);
    let body = json!({"type": "Create", "actor": format!("{BASE}/actor")}).to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let target = format!("{}/inbox", ISERE.trim_end_matches("/actor"));
    let signed = httpsig::sign_passerelle_request(
        "POST",
        &target,
        &[("content-type", "application/activity+json")],
        body.as_bytes(),
        &key,
        &key_id,
        now,
    )
    .unwrap();
    let digest = signed.content_digest.unwrap();
    let headers = [
        ("content-type", "application/activity+json"),
        ("content-digest", digest.as_str()),
        ("signature-input", signed.signature.signature_input.as_str()),
        ("signature", signed.signature.signature.as_str()),
    ];
    let parts = RequestParts {
        method: "POST",
        target_uri: &target,
        headers: &headers,
        body: body.as_bytes(),
    };
    let candidate = httpsig::parse_signature(&parts, None).unwrap();
    let (_, public) = keys
        .iter()
        .find(|(id, _)| id == candidate.key_id())
        .unwrap_or_else(|| panic!("{} is not served by /actor", candidate.key_id()));
    candidate
        .verify(public, &VerifyPolicy::passerelle(now))
        .unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn check_restored(n: &TestNode, pop: &Populated, config: &Config) {
    for id in &pop.postings {
        let (s, p) = n
            .call(
                "GET",
                &format!("/api/v1/postings/{id}"),
                Some(&pop.rh_token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_eq!(p["status"], "published");
    }
    for id in &pop.agents {
        let (s, a) = n
            .call(
                "GET",
                &format!("/api/v1/agents/{id}"),
                Some(&pop.rh_token),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}");
    }
    assert_partners_accept_signatures(n, &config.key_file()).await;
    // New activity continues the outbox after the restored sequence numbers.
    let last = n.store.outbox(None, None, 1, false).await.unwrap()[0].seq;
    let (s, created) = n
        .call(
            "POST",
            "/api/v1/postings",
            Some(&pop.rh_token),
            Some(fixture::posting_content(
                "posting-project-mission.json",
                BASE,
            )),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    let (s, published) = n
        .call(
            "POST",
            &format!("/api/v1/postings/{id}/publish"),
            Some(&pop.rh_token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{published}");
    let next = n.store.outbox(None, None, 1, false).await.unwrap()[0].seq;
    assert!(next > last, "outbox sequence {next} continues after {last}");
    assert_partners_accept_signatures(n, &config.key_file()).await;
}

async fn backup_wipe_restore(db: TestDb, archive: bool) {
    let n = node_on(db, true).await;
    let pop = fixture::populate(&n).await;
    fixture::assert_every_table_populated(&n.store).await;
    let config = fixture::config_of(&n);
    assert_partners_accept_signatures(&n, &config.key_file()).await;
    let before = fixture::all_rows(&n.store).await;
    let counts = n.store.row_counts().await.unwrap();

    let place = tempfile::tempdir().unwrap();
    let out = place
        .path()
        .join(if archive { "node.tar" } else { "node-backup" });
    let summary = backup::backup(&config, None, &out).await.unwrap();
    assert_eq!(
        summary.manifest.tables, counts,
        "the manifest counts every table"
    );
    if archive {
        assert_eq!(mode(&out), 0o600);
    } else {
        for f in ["manifest.json", "node-key.secret"] {
            assert_eq!(mode(&out.join(f)), 0o600, "{f}");
        }
    }
    let manifest: Manifest = backup::inspect(&out).unwrap();
    assert_eq!(manifest, summary.manifest);
    // A second backup never overwrites the first.
    let again = backup::backup(&config, None, &out).await.unwrap_err();
    assert!(
        format!("{:#}", again.error).contains("overwrite"),
        "{:#}",
        again.error
    );

    // Lose everything: database and key file.
    let TestNode {
        router,
        store,
        admin,
        dir,
        db,
    } = n;
    drop(router);
    store.close().await;
    db.wipe().await;
    std::fs::remove_file(config.key_file()).unwrap();

    let restored = backup::restore(&config, &out, false).await.unwrap();
    assert_eq!(restored.migrated, 0);
    assert!(restored.warnings.is_empty(), "{:?}", restored.warnings);
    assert_eq!(
        mode(&config.key_file()),
        0o600,
        "the key file stays private"
    );
    let n = reopen(&config, dir, db, admin).await;
    let after = fixture::all_rows(&n.store).await;
    fixture::assert_same_rows(&before, &after);
    check_restored(&n, &pop, &config).await;

    // Restoring over a node with data is refused without --force, and changes nothing.
    let err = backup::restore(&config, &out, false).await.unwrap_err();
    assert!(
        format!("{:#}", err.error).contains("--force"),
        "{:#}",
        err.error
    );
    assert_ne!(
        fixture::all_rows(&n.store).await,
        before,
        "untouched: it has the new posting"
    );
    n.store.close().await;
    let forced = backup::restore(&config, &out, true).await.unwrap();
    assert_eq!(forced.manifest.tables, counts);
    let n = reopen(&config, n.dir, n.db, n.admin).await;
    fixture::assert_same_rows(&before, &fixture::all_rows(&n.store).await);
    n.store.close().await;
    n.db.cleanup().await;
}

#[tokio::test]
async fn backup_and_restore_sqlite_directory() {
    backup_wipe_restore(TestDb::sqlite(), false).await;
}

#[tokio::test]
async fn backup_and_restore_sqlite_archive() {
    backup_wipe_restore(TestDb::sqlite(), true).await;
}

#[tokio::test]
async fn backup_and_restore_postgres_archive() {
    if let Some(db) = TestDb::postgres().await {
        backup_wipe_restore(db, true).await;
    }
}

#[tokio::test]
async fn damaged_or_foreign_backups_are_refused() {
    let n = node_on(TestDb::sqlite(), true).await;
    let config = fixture::config_of(&n);
    let place = tempfile::tempdir().unwrap();
    let out = place.path().join("b");
    backup::backup(&config, None, &out).await.unwrap();
    let target = {
        let mut c = config.clone();
        c.data.dir = place.path().join("elsewhere");
        c.database.url = Some(format!(
            "sqlite://{}",
            place.path().join("elsewhere/passerelle.db").display()
        ));
        c
    };
    // One flipped byte in the database file: refused, nothing written.
    let db_file = out.join("passerelle.db");
    let mut bytes = std::fs::read(&db_file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&db_file, &bytes).unwrap();
    let err = backup::restore(&target, &out, false).await.unwrap_err();
    assert!(
        format!("{:#}", err.error).contains("checksum mismatch for passerelle.db"),
        "{:#}",
        err.error
    );
    assert!(!target.key_file().exists() && !place.path().join("elsewhere/passerelle.db").exists());
    bytes[last] ^= 0xff;
    std::fs::write(&db_file, &bytes).unwrap();
    // A backup of the other engine is refused with the way forward.
    let mut pg = target.clone();
    pg.database.url = Some("postgres://nobody@127.0.0.1:1/none".into());
    let err = backup::restore(&pg, &out, false).await.unwrap_err();
    assert!(
        format!("{:#}", err.error).contains("migrate-store"),
        "{:#}",
        err.error
    );
    // Intact, it restores; with another base URL it warns.
    let mut moved = target.clone();
    moved.server.base_url = Some("https://rh.ailleurs.example".parse().unwrap());
    let ok = backup::restore(&moved, &out, false).await.unwrap();
    assert!(
        ok.warnings.iter().any(|w| w.contains("server.base_url")),
        "{:?}",
        ok.warnings
    );
}

/// Starts the node on `config` (a real socket on port 0) and reads the postings over HTTP:
/// the HR API lists them and serves each one.
async fn serve_and_read_postings(config: &Config, pop: &Populated) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let node = tokio::spawn(passerelle_node::run(config.clone(), listener, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "the node on the copied database is ready");
    let list: Value = http
        .get(format!("{base}/api/v1/postings"))
        .bearer_auth(&pop.rh_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = list.to_string();
    for id in &pop.postings {
        let r = http
            .get(format!("{base}/api/v1/postings/{id}"))
            .bearer_auth(&pop.rh_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["status"], "published");
        assert!(text.contains(id.as_str()), "the list has {id}: {text}");
    }
    stop.send(()).unwrap();
    node.await.unwrap().unwrap();
}

async fn copy_to(source_db: TestDb, target_db: TestDb) {
    let n = node_on(source_db, true).await;
    let pop = fixture::populate(&n).await;
    fixture::assert_every_table_populated(&n.store).await;
    let before = fixture::all_rows(&n.store).await;
    let mut config = fixture::config_of(&n);
    let report = passerelle_node::ops::migrate_store::migrate_store(&config, &target_db.url)
        .await
        .unwrap();
    let tables = n.store.tables().await.unwrap();
    assert_eq!(
        report.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(),
        tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
        "every table is copied, in foreign-key order"
    );
    // A second copy into the now filled target is refused.
    let err = passerelle_node::ops::migrate_store::migrate_store(&config, &target_db.url)
        .await
        .unwrap_err();
    assert!(
        format!("{:#}", err.error).contains("already holds data"),
        "{:#}",
        err.error
    );

    // The node runs on the copy: same rows, same signatures, outbox continues.
    let TestNode {
        router,
        store,
        admin,
        dir,
        db: source_db,
    } = n;
    drop(router);
    store.close().await;
    config.database.url = Some(target_db.url.clone());
    let copy = reopen(&config, dir, target_db, admin).await;
    fixture::assert_same_rows(&before, &fixture::all_rows(&copy.store).await);
    check_restored(&copy, &pop, &config).await;
    copy.store.close().await;
    serve_and_read_postings(&config, &pop).await;
    source_db.cleanup().await;
    copy.db.cleanup().await;
}

#[tokio::test]
async fn migrate_store_sqlite_to_postgres_and_serve_over_http() {
    let Some(target) = TestDb::postgres().await else {
        return;
    };
    copy_to(TestDb::sqlite(), target).await;
}

#[tokio::test]
async fn migrate_store_postgres_to_sqlite() {
    let Some(source) = TestDb::postgres().await else {
        return;
    };
    copy_to(source, TestDb::sqlite()).await;
}

/// The fixture covers the whole schema, whatever migrations are added: this is what makes
/// the backup and copy tests above fail when a new table is not handled.
#[tokio::test]
async fn fixture_fills_every_table_of_the_schema() {
    for db in TestDb::all().await {
        let n = node_on(db, true).await;
        fixture::populate(&n).await;
        fixture::assert_every_table_populated(&n.store).await;
        let tables = n.store.tables().await.unwrap();
        assert!(tables.len() >= 21, "{tables:?}");
        n.store.close().await;
        n.db.cleanup().await;
    }
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{series} not in /metrics:\n{text}"))
        .parse()
        .unwrap()
}

/// `/metrics` reports deliveries per inbox and state, inbox health, received activities
/// and pull lag, read from the database at scrape time.
#[tokio::test]
async fn metrics_report_federation_health_from_the_database() {
    for db in TestDb::all().await {
        let n = node_on(db, true).await;
        fixture::populate(&n).await;
        let r = n.request("GET", "/metrics", None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        let text = String::from_utf8(r.body).unwrap();
        let inbox = "https://rh.isere.example/inbox";
        let jobs = n.store.row_counts().await.unwrap()["deliveries"];
        let dead = metric(
            &text,
            &format!("passerelle_deliveries{{inbox=\"{inbox}\",state=\"dead\"}}"),
        );
        let retrying = metric(
            &text,
            &format!("passerelle_deliveries{{inbox=\"{inbox}\",state=\"retrying\"}}"),
        );
        assert_eq!((dead, retrying), (1.0, 1.0));
        let pending = text
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "passerelle_deliveries{{inbox=\"{inbox}\",state=\"pending\"}} "
                ))
            })
            .map_or(0.0, |v| v.parse::<f64>().unwrap());
        #[allow(clippy::cast_precision_loss)]
        let total = jobs as f64;
        assert_eq!(dead + retrying + pending, total, "every job in one state");
        assert!(
            metric(
                &text,
                &format!(
                    "passerelle_deliveries_oldest_age_seconds{{inbox=\"{inbox}\",state=\"retrying\"}}"
                )
            ) >= 0.0
        );
        assert_eq!(
            metric(
                &text,
                &format!("passerelle_delivery_target_consecutive_failures{{inbox=\"{inbox}\"}}")
            ),
            3.0
        );
        assert_eq!(
            metric(
                &text,
                &format!("passerelle_delivery_target_circuit_open{{inbox=\"{inbox}\"}}")
            ),
            1.0
        );
        assert_eq!(
            metric(&text, "passerelle_inbox_received{via=\"push\"}"),
            1.0
        );
        assert_eq!(
            metric(&text, "passerelle_inbox_received{via=\"pull\"}"),
            1.0
        );
        assert_eq!(
            metric(&text, "passerelle_inbox_unprocessed{via=\"push\"}"),
            0.0
        );
        assert_eq!(
            metric(&text, "passerelle_inbox_unprocessed{via=\"pull\"}"),
            1.0
        );
        assert!(
            metric(
                &text,
                "passerelle_inbox_oldest_unprocessed_age_seconds{via=\"pull\"}"
            ) >= 0.0
        );
        let partner = format!("{{partner=\"{ISERE}\"}}");
        assert!(
            metric(&text, &format!("passerelle_sync_lag_seconds{partner}")) >= 1800.0,
            "last success 30 min ago"
        );
        assert_eq!(
            metric(&text, &format!("passerelle_sync_never_succeeded{partner}")),
            0.0
        );
        assert_eq!(
            metric(&text, &format!("passerelle_sync_failing{partner}")),
            0.0
        );
        assert_eq!(
            metric(
                &text,
                &format!("passerelle_sync_items_pulled_total{partner}")
            ),
            42.0
        );
        assert_eq!(
            metric(
                &text,
                "passerelle_inbox_activities_total{via=\"push\",outcome=\"accepted\"}"
            ),
            0.0
        );
        // Request latency is still there.
        assert!(text.contains("passerelle_http_request_duration_seconds_bucket{"));
        n.store.close().await;
        n.db.cleanup().await;
    }
}
