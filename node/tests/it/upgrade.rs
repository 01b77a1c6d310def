//! Upgrades: a database created by the previous release's schema (migration 0001 alone,
//! `node/migrations/*/0001_initial.sql`) with realistic rows migrates forward, keeps its
//! data, and serves; `database.migrate_on_start = false` makes `serve` refuse it until
//! `passerelle migrate` has run.

use std::process::Command;

use axum::http::StatusCode;
use passerelle_node::config::Config;
use passerelle_node::state::AppState;
use passerelle_node::store::{PartnershipState, PostingStatus, Store};
use passerelle_node::{auth, http, keys};
use serde_json::{Value, json};

use crate::fixture::{BASE, exec};
use crate::http::TestNode;
use crate::support::{TestDb, workspace_root};

/// The previous release's schema version.
const PREVIOUS: i64 = 1;

fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join("spec/examples").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sql_text(v: &Value) -> String {
    v.to_string().replace('\'', "''")
}

/// Builds a database as the previous release left it: schema 0001 and the rows its code
/// wrote (identity, key, accounts, tokens, audit, postings, agents, partners, outbox).
/// Returns the API token secret and the key file's directory.
async fn previous_release_database(db: &TestDb, dir: &std::path::Path) -> String {
    let store = Store::connect(&db.url, 2).await.unwrap();
    store.migrate_to(PREVIOUS).await.unwrap();
    assert_eq!(store.applied_migrations().await.unwrap(), vec![1]);
    store.close().await;
    let (key, _) = keys::load_or_create(&dir.join("node-key.secret")).unwrap();
    let public = key.public_key().to_multikey();
    let secret = "psl_previous-release-token-0123456789abcdefghijklmnopqrstuv";
    let hash = auth::token_hash(secret);
    let (t1, t2) = (1_767_225_600_000_i64, 1_767_312_000_000_i64); // 2026-01-01, 2026-01-02
    let vacancy = example("posting-vacancy.json");
    let mad = example("posting-mad-offer.json");
    let create = example("activity-create-posting.json");
    let (bool_t, bool_f) = if db.name == "sqlite" {
        ("1", "0")
    } else {
        ("TRUE", "FALSE")
    };
    exec(
        &db.url,
        &format!(
            "INSERT INTO node_identity (singleton, name, siren, kind, username, created_at, updated_at) \
             VALUES (1, 'Ville de Grenoble', '213801855', 'commune', 'grenoble', {t1}, {t1});
             INSERT INTO node_keys (key_id, public_key_multibase, created_at, expires_at, is_current) VALUES \
             ('key-old', 'z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', {t1}, {t2}, {bool_f}), \
             ('key-0001', '{public}', {t2}, NULL, {bool_t});
             INSERT INTO accounts (id, username, password_hash, role, disabled, created_at) VALUES \
             ('01a24a70-0000-7000-8000-000000000001', 'drh', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA', 'admin', {bool_f}, {t1});
             INSERT INTO api_tokens (id, name, token_hash, role, account_id, created_at, expires_at, last_used_at, revoked_at) VALUES \
             ('01a24a70-0000-7000-8000-000000000002', 'sirh', '{hash}', 'rh', NULL, {t1}, NULL, {t2}, NULL), \
             ('01a24a70-0000-7000-8000-000000000003', 'session', 'deadbeef', 'admin', '01a24a70-0000-7000-8000-000000000001', {t1}, {t2}, NULL, {t2});
             INSERT INTO audit_log (at, actor, action, target, details) VALUES \
             ({t1}, 'cli', 'node.init', 'node', 'null'), ({t2}, 'account:drh', 'posting.publish', 'posting:01a24a70-0000-7000-8000-00000000000a', '{{\"version\":2}}');
             INSERT INTO postings (id, kind, status, document, version, created_at, updated_at, published_at) VALUES \
             ('01a24a70-0000-7000-8000-00000000000a', 'vacancy', 'published', '{vacancy}', 2, {t1}, {t2}, {t2}), \
             ('01a24a70-0000-7000-8000-00000000000b', 'mad_offer', 'draft', '{mad}', 1, {t2}, {t2}, NULL);
             INSERT INTO agents (id, display_name, email, data, created_at, updated_at) VALUES \
             ('01a24a70-0000-7000-8000-000000000010', 'Agent Ancien', 'ancien@grenoble.example', '{{\"grade\":\"rédacteur\"}}', {t1}, {t2});
             INSERT INTO partners (id, actor_id, name, status, created_at) VALUES \
             ('01a24a70-0000-7000-8000-000000000020', 'https://rh.isere.example/actor', 'Isère', 'accepted', {t1}), \
             ('01a24a70-0000-7000-8000-000000000021', 'https://rh.savoie.example/actor', 'Savoie', 'pending', {t2});
             INSERT INTO outbox ({seq_col}activity_id, activity_type, object_id, public, document, created_at) {overriding}VALUES \
             ({seq1}'https://rh.grenoble.example/activities/1', 'Create', 'https://rh.grenoble.example/postings/1', {bool_t}, '{create}', {t1}), \
             ({seq2}'https://rh.grenoble.example/activities/2', 'Update', 'https://rh.grenoble.example/postings/1', {bool_f}, '{create}', {t2});",
            vacancy = sql_text(&vacancy),
            mad = sql_text(&mad),
            create = sql_text(&create),
            // Sequence numbers are paging cursors partners keep: use large ones to check
            // that they survive and that new ones follow.
            seq_col = "seq, ",
            overriding = if db.name == "sqlite" { "" } else { "OVERRIDING SYSTEM VALUE " },
            seq1 = "40, ",
            seq2 = "41, ",
        ),
    )
    .await;
    if db.name != "sqlite" {
        exec(
            &db.url,
            "SELECT setval(pg_get_serial_sequence('outbox', 'seq'), 41)",
        )
        .await;
    }
    secret.to_owned()
}

async fn previous_release_migrates_forward(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let token = previous_release_database(&db, dir.path()).await;
    let store = Store::connect(&db.url, 4).await.unwrap();
    let before = crate::fixture::all_rows(&store).await;
    // The columns each table had in the previous release.
    let old_columns: std::collections::BTreeMap<String, Vec<String>> = store
        .tables()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.columns.into_iter().map(|c| c.name).collect()))
        .collect();
    store.migrate().await.unwrap();
    assert_eq!(
        store.applied_migrations().await.unwrap(),
        store.known_migrations(),
        "every migration applied"
    );
    // Every row of the old tables is still there, in the columns they had (a migration
    // may add columns; `partners.status` was folded into the two partnership directions).
    for (table, rows) in &before {
        if table == "partners" {
            let cols = ["id", "actor_id", "name", "created_at"]
                .map(String::from)
                .to_vec();
            let after = store.table_rows(table, &cols).await.unwrap();
            assert_eq!(after.len(), rows.len(), "{table}");
            continue;
        }
        let after = store.table_rows(table, &old_columns[table]).await.unwrap();
        assert_eq!(&after, rows, "{table} unchanged");
    }
    // The data is usable through today's code.
    assert_eq!(store.identity().await.unwrap().siren, "213801855");
    let keys = store.keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].current && keys[0].key_id == "key-0001");
    let partners = store.partners().await.unwrap();
    let isere = partners.iter().find(|p| p.name == "Isère").unwrap();
    assert_eq!(
        (isere.outgoing, isere.incoming),
        (PartnershipState::Accepted, PartnershipState::Accepted)
    );
    let savoie = partners.iter().find(|p| p.name == "Savoie").unwrap();
    assert_eq!(savoie.outgoing, PartnershipState::Pending);
    assert_eq!(
        store
            .postings(Some(PostingStatus::Published))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.agents().await.unwrap()[0].display_name,
        "Agent Ancien"
    );
    let audience = store.table_rows("outbox_audience", &[]).await.unwrap();
    assert!(
        !audience.is_empty(),
        "the audience of old activities was filled in"
    );

    // A node runs on it: the old token works, old postings are served, new activity
    // continues the outbox after the old cursors.
    let mut config = Config::default();
    config.data.dir = dir.path().to_path_buf();
    config.database.url = Some(db.url.clone());
    config.server.base_url = Some(BASE.parse().unwrap());
    let key = keys::load_and_register(&store, &config.key_file())
        .await
        .unwrap();
    assert_eq!(key.key_id, "key-0001");
    let n = TestNode {
        router: http::router(AppState::new(&config, store.clone(), key).unwrap()),
        store: store.clone(),
        admin: token.clone(),
        dir,
        db,
    };
    let (s, list) = n.call("GET", "/api/v1/postings", Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    let actor = n.request("GET", "/actor", None, None).await.json();
    assert!(actor.to_string().contains("key-0001"));
    let rh = token.clone();
    let mut content = crate::fixture::posting_content("posting-vacancy.json", BASE);
    content["title"] = json!("Offre publiée après la mise à jour");
    let (s, p) = n
        .call("POST", "/api/v1/postings", Some(&rh), Some(content))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let id = p["id"].as_str().unwrap();
    let (s, p) = n
        .call(
            "POST",
            &format!("/api/v1/postings/{id}/publish"),
            Some(&rh),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let newest = n.store.outbox(None, None, 1, false).await.unwrap()[0].seq;
    assert!(
        newest > 41,
        "new outbox entries follow the old cursors: {newest}"
    );
    n.store.close().await;
    n.db.cleanup().await;
}

#[tokio::test]
async fn previous_release_database_migrates_forward_sqlite() {
    previous_release_migrates_forward(TestDb::sqlite()).await;
}

#[tokio::test]
async fn previous_release_database_migrates_forward_postgres() {
    if let Some(db) = TestDb::postgres().await {
        previous_release_migrates_forward(db).await;
    }
}

/// With `database.migrate_on_start = false`, `serve` stops on the old schema with exit code
/// 4 and one line naming `passerelle migrate`; after `passerelle migrate`, it serves.
#[tokio::test]
async fn serve_without_migrate_on_start_refuses_an_old_schema() {
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    previous_release_database(&db, dir.path()).await;
    let bin = env!("CARGO_BIN_EXE_passerelle");
    let run = |args: &[&str]| {
        Command::new(bin)
            .current_dir(dir.path())
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--database-url",
                &db.url,
            ])
            .args(args)
            .env_remove("PASSERELLE_CONFIG")
            .env("PASSERELLE_DATABASE_MIGRATE_ON_START", "false")
            .env("PASSERELLE_LOG_FILTER", "warn")
            .output()
            .unwrap()
    };
    let out = run(&["serve", "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    let known = passerelle_node::store::MIGRATION_FILES.len();
    assert!(
        stderr.contains(&format!("1/{known} migrations applied"))
            && stderr.contains("`passerelle migrate`"),
        "{stderr}"
    );
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("migrations: {known}/{known} applied")
    );
    // Now `serve` starts (it prints its banner; stop it at once).
    let mut child = Command::new(bin)
        .current_dir(dir.path())
        .args([
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--database-url",
            &db.url,
        ])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("PASSERELLE_CONFIG")
        .env("PASSERELLE_DATABASE_MIGRATE_ON_START", "false")
        .env("PASSERELLE_LOG_FILTER", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(line.starts_with("Passerelle "), "{line}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
