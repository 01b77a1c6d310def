//! A node holding a row in every table of the schema, for the whole-database tests
//! (backup and restore, `migrate-store`, metrics).
//!
//! Rows are written through the node's own services where they exist (HR API, store
//! methods) and with SQL for tables whose writers are still being built (inbox, delivery
//! health, pull cursors). [`assert_every_table_populated`] fails when a migration adds a
//! table that [`populate`] does not fill: add rows for it here, and the backup, restore and
//! copy tests then cover it.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use passerelle_node::config::Config;
use passerelle_node::store::{
    AuditRecord, BlockKind, Cell, PartnerInfo, PartnershipChange, PartnershipState, PostingVersion,
    Role, Store,
};
use serde_json::{Value, json};

use crate::http::TestNode;
use crate::support::workspace_root;

/// Public URL of the fixture node (as in `http.rs`).
pub const BASE: &str = "https://rh.grenoble.example";
/// A partner whose `Follow` we accepted: our deliveries go to its inbox.
pub const ISERE: &str = "https://rh.isere.example/actor";
/// A node we asked to follow.
pub const SAVOIE: &str = "https://rh.savoie.example/actor";

/// What [`populate`] created, for checks after a restore or a copy.
#[derive(Debug, Clone)]
pub struct Populated {
    /// Local postings still present (published), by id.
    pub postings: Vec<String>,
    /// Agents, by id.
    pub agents: Vec<String>,
    /// An RH token.
    pub rh_token: String,
}

/// A spec posting example, moved to `origin`, without server-owned properties.
pub fn posting_content(name: &str, origin: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join("spec/examples").join(name)).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let from = url::Url::parse(doc["attributedTo"].as_str().unwrap())
        .unwrap()
        .origin()
        .ascii_serialization();
    let mut doc: Value = serde_json::from_str(&text.replace(&from, origin)).unwrap();
    for key in [
        "@context",
        "id",
        "type",
        "attributedTo",
        "version",
        "published",
        "updated",
        "status",
        "proof",
    ] {
        doc.as_object_mut().unwrap().remove(key);
    }
    doc
}

/// The configuration of a fixture node (the one `http::node_on` builds).
pub fn config_of(n: &TestNode) -> Config {
    let mut config = Config::default();
    config.data.dir = n.dir.path().to_path_buf();
    config.database.url = Some(n.db.url.clone());
    config.server.base_url = Some(BASE.parse().unwrap());
    config
}

/// Runs SQL on the node's database through a connection of its own.
pub async fn exec(url: &str, sql: &str) {
    use sqlx::Connection as _;
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.close().await.unwrap();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        c.close().await.unwrap();
    }
}

fn audit(action: &str) -> AuditRecord {
    AuditRecord::new("cli", action, "fixture")
}

/// Fills every table of the node's schema.
pub async fn populate(n: &TestNode) -> Populated {
    let store = &n.store;
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    // Partners: Isère follows us (accepted), we asked Savoie.
    for (actor, name, siren) in [
        (ISERE, "Département de l'Isère", "223800012"),
        (SAVOIE, "Département de la Savoie", "227300019"),
    ] {
        let origin = actor.trim_end_matches("/actor");
        store
            .upsert_partner(&PartnerInfo {
                actor_id: actor.into(),
                name: name.into(),
                inbox: format!("{origin}/inbox"),
                shared_inbox: None,
                outbox: Some(format!("{origin}/outbox")),
                siren: Some(siren.into()),
            })
            .await
            .unwrap();
        store
            .put_remote_actor(
                actor,
                &json!({"id": actor, "type": "Organization", "name": name, "inbox": format!("{origin}/inbox")}),
            )
            .await
            .unwrap();
    }
    store
        .update_partnership(
            ISERE,
            &PartnershipChange {
                incoming: Some((
                    PartnershipState::Accepted,
                    Some(json!({"type": "Follow", "actor": ISERE, "object": format!("{BASE}/actor")})),
                )),
                ..Default::default()
            },
            None,
            Some(&audit("partner.accept")),
        )
        .await
        .unwrap();
    store
        .update_partnership(
            SAVOIE,
            &PartnershipChange {
                outgoing: Some((
                    PartnershipState::Pending,
                    Some(format!("{BASE}/activities/follow-savoie")),
                )),
                ..Default::default()
            },
            None,
            Some(&audit("partner.follow")),
        )
        .await
        .unwrap();
    store
        .put_circle(
            uuid::Uuid::now_v7(),
            "Départements alpins",
            &format!("{BASE}/circles/alpins"),
            &[ISERE.to_owned(), SAVOIE.to_owned()],
            &audit("circle.put"),
        )
        .await
        .unwrap();
    store
        .add_block(
            "https://spam.example",
            BlockKind::Origin,
            "démarchage",
            &audit("block.add"),
        )
        .await
        .unwrap();
    store
        .set_setting("partnership_policy", "approval", &audit("settings"))
        .await
        .unwrap();
    // A remote posting, and a remote tombstone.
    let mut remote = posting_content("posting-mad-offer.json", "https://rh.isere.example");
    remote["id"] = json!("https://rh.isere.example/postings/1");
    remote["type"] = json!("Posting");
    remote["attributedTo"] = json!(ISERE);
    remote["version"] = json!(3);
    store
        .apply_posting_version(&PostingVersion {
            object_id: "https://rh.isere.example/postings/1".into(),
            author: ISERE.into(),
            relayed_by: None,
            kind: "mad_offer".into(),
            version: 3,
            document: remote,
            verified_key: format!("{ISERE}#key-1"),
        })
        .await
        .unwrap();
    store
        .apply_posting_delete("https://rh.isere.example/postings/2", ISERE, None)
        .await
        .unwrap();

    // HR: an account, tokens, agents, postings (one deleted: a tombstone).
    passerelle_node::auth::create_account(store, "drh", "mot de passe solide", Role::Admin, "cli")
        .await
        .unwrap();
    let rh = n.token(Role::Rh).await;
    let mut agents = Vec::new();
    for (name, email) in [
        ("Agent Sauvegardé", "agent.a@grenoble.example"),
        ("Agente Restaurée", "agent.b@grenoble.example"),
    ] {
        let (s, a) = n
            .call(
                "POST",
                "/api/v1/agents",
                Some(&rh),
                Some(json!({"display_name": name, "email": email, "data": {"grade": "attaché", "service": "DRH"}})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        agents.push(a["id"].as_str().unwrap().to_owned());
    }
    let mut postings = Vec::new();
    for name in [
        "posting-vacancy.json",
        "posting-mad-offer.json",
        "posting-training-session.json",
    ] {
        let (s, p) = n
            .call(
                "POST",
                "/api/v1/postings",
                Some(&rh),
                Some(posting_content(name, BASE)),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{p}");
        let id = p["id"].as_str().unwrap().to_owned();
        let (s, p) = n
            .call(
                "POST",
                &format!("/api/v1/postings/{id}/publish"),
                Some(&rh),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        postings.push(id);
    }
    let gone = postings.pop().unwrap();
    let (s, body) = n
        .call(
            "DELETE",
            &format!("/api/v1/postings/{gone}"),
            Some(&rh),
            None,
        )
        .await;
    assert!(s.is_success(), "{s} {body}");

    // Tables whose writers are being built: SQL, with realistic values.
    let url = &n.db.url;
    let follow =
        json!({"id": "https://rh.isere.example/activities/9", "type": "Create", "actor": ISERE})
            .to_string()
            .replace('\'', "''");
    exec(
        url,
        &format!(
            "INSERT INTO inbox (activity_id, actor_id, activity_type, object_id, document, via, received_at, processed_at, outcome) VALUES \
             ('https://rh.isere.example/activities/9', '{ISERE}', 'Create', 'https://rh.isere.example/postings/1', '{follow}', 'push', {now}, {now}, 'stored'), \
             ('https://rh.isere.example/activities/10', '{ISERE}', 'Update', 'https://rh.isere.example/postings/1', '{follow}', 'pull', {now}, NULL, NULL)"
        ),
    )
    .await;
    exec(
        url,
        &format!(
            "INSERT INTO delivery_targets (inbox_url, consecutive_failures, circuit_open_until, last_success_at, last_failure_at, last_error) VALUES \
             ('https://rh.isere.example/inbox', 3, {until}, {old}, {now}, 'HTTP 503')",
            until = now + 86_400_000,
            old = now - 3_600_000
        ),
    )
    .await;
    exec(
        url,
        &format!(
            "INSERT INTO sync_state (actor_id, next_url, last_pull_at, last_success_at, last_error, items_pulled) VALUES \
             ('{ISERE}', 'https://rh.isere.example/outbox?after=42', {now}, {old}, NULL, 42)",
            old = now - 1_800_000
        ),
    )
    .await;
    // Mobility: a MAD request with Isère and its convention, a profile with its consent
    // log and recipients, a partner's profile, an immersion swap, a training registration
    // and a quota.
    let mad = serde_json::to_string(&json!({
        "@context": passerelle_protocol::vocab::context(),
        "id": format!("{BASE}/mad/requests/019aa1b2-c5d6-77e8-9f0a-1b2c3d4e5f60"),
        "type": "MadRequest", "attributedTo": format!("{BASE}/actor"),
        "origin": format!("{BASE}/actor"), "host": ISERE,
        "agent": {"ref": "agent-3f2a", "statut": "fonctionnaire_titulaire"},
        "terms": {"activities": "Appui au projet", "quotitePct": 40, "startDate": "2027-03-01",
                  "endDate": "2028-02-29", "reimbursement": {"mode": "full"}},
        "state": "proposed", "version": 1, "published": "2026-11-22T10:15:00Z", "to": [ISERE]
    }))
    .unwrap()
    .replace('\'', "''");
    let agent = &agents[0];
    let other = &agents[1];
    exec(
        url,
        &format!(
            "INSERT INTO mad_requests (id, object_id, creator, our_side, partner, agent_id, state, version, document, amendment, pending, refusal, created_at, updated_at) VALUES \
             ('019aa1b2-c5d6-77e8-9f0a-1b2c3d4e5f61', '{BASE}/mad/requests/019aa1b2-c5d6-77e8-9f0a-1b2c3d4e5f60', '{BASE}/actor', 'origin', '{ISERE}', '{agent}', 'proposed', 1, '{mad}', 0, NULL, '{{\"by\":\"partner\"}}', {now}, {now}); \
             INSERT INTO mad_conventions (convention_id, mad_id, amendment, document, draft_sha256, signed_by_origin, signed_by_host, created_at, updated_at) VALUES \
             ('{BASE}/mad/conventions/019aa1b2-d6e7-78f9-8a0b-2c3d4e5f6071', '019aa1b2-c5d6-77e8-9f0a-1b2c3d4e5f61', 0, '{{\"type\":\"Convention\"}}', '3f7a', TRUE, FALSE, {now}, {now}); \
             INSERT INTO profiles (id, object_id, agent_id, handle, visibility, version, document, created_at, updated_at, withdrawn_at) VALUES \
             ('019aa1b2-1111-7111-8111-111111111112', '{BASE}/profiles/019aa1b2-1111-7111-8111-111111111111', '{other}', 'jardin-38-a7', 'federation', 3, '{{\"type\":\"AgentProfile\"}}', {now}, {now}, NULL); \
             INSERT INTO profile_consents (profile_id, scope, text_version, granted_at, withdrawn_at, recorded_by) VALUES \
             ('019aa1b2-1111-7111-8111-111111111112', 'federation', 'v1', {now}, NULL, 'account:drh'); \
             INSERT INTO profile_recipients (profile_id, actor_id, sent_at, delete_activity, delete_sent_at, acknowledged_at) VALUES \
             ('019aa1b2-1111-7111-8111-111111111112', '{ISERE}', {now}, NULL, NULL, NULL); \
             INSERT INTO remote_profiles (object_id, author, version, document, first_seen_at, updated_at, deleted_at) VALUES \
             ('https://rh.isere.example/profiles/1', '{ISERE}', 2, '{{\"type\":\"AgentProfile\"}}', {now}, {now}, NULL); \
             INSERT INTO immersion_swaps (id, object_id, proposer, partner, our_profile, their_profile, state, our_visit_on, their_visit_on, our_visit, their_visit, document, created_at, updated_at) VALUES \
             ('019aa1b2-2222-7222-8222-222222222222', '{BASE}/swaps/019aa1b2-2222-7222-8222-222222222223', '{BASE}/actor', '{ISERE}', '{BASE}/profiles/019aa1b2-1111-7111-8111-111111111111', 'https://rh.isere.example/profiles/1', 'agreed', '2027-04-01', '2027-04-08', 'planned', 'done', '{{}}', {now}, {now}); \
             INSERT INTO training_registrations (id, object_id, session, node, host, agent_id, status, reason, activity_id, registered_at, updated_at) VALUES \
             ('019aa1b2-3333-7333-8333-333333333333', 'https://rh.isere.example/registrations/1', '{BASE}/postings/1', '{ISERE}', '{BASE}/actor', NULL, 'confirmed', NULL, 'https://rh.isere.example/activities/11', {now}, {now}); \
             INSERT INTO training_quotas (session, actor_id, quota) VALUES ('{BASE}/postings/1', '{ISERE}', 2)"
        ),
    )
    .await;
    // The publications above fanned out delivery jobs to Isère; one has failed, one is
    // dead-lettered.
    let deliveries = store.row_counts().await.unwrap()["deliveries"];
    assert!(
        deliveries >= 2,
        "publishing to a follower created {deliveries} delivery jobs"
    );
    exec(
        url,
        &format!(
            "UPDATE deliveries SET attempts = 4, first_attempt_at = {old}, last_attempt_at = {now}, last_status = 503, last_code = 'unavailable', last_error = 'HTTP 503' \
             WHERE id = (SELECT MIN(id) FROM deliveries)",
            old = now - 600_000
        ),
    )
    .await;
    exec(
        url,
        &format!(
            "UPDATE deliveries SET state = 'dead', attempts = 30, finished_at = {now}, last_status = 410 WHERE id = (SELECT MAX(id) FROM deliveries)"
        ),
    )
    .await;
    // A saved search of an HR user.
    store
        .create_saved_search(
            "account:drh",
            "Médiathèques de l'Isère",
            "q=m%C3%A9diath%C3%A8que&departement=38",
            true,
            &passerelle_node::store::AuditRecord::new("account:drh", "saved_search.create", "x"),
        )
        .await
        .unwrap();
    Populated {
        postings,
        agents,
        rh_token: rh,
    }
}

/// Every table of the schema holds at least one row. A failure names the tables to add
/// to [`populate`].
pub async fn assert_every_table_populated(store: &Store) {
    let empty: Vec<String> = store
        .row_counts()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, n)| *n == 0)
        .map(|(t, _)| t)
        .collect();
    assert!(
        empty.is_empty(),
        "tables without rows in the fixture (add rows for them in node/tests/it/fixture.rs so that backups and copies are checked on them): {empty:?}"
    );
}

/// Every row of every table, engine-neutral, for comparisons.
pub async fn all_rows(store: &Store) -> BTreeMap<String, Vec<Vec<Cell>>> {
    let mut out = BTreeMap::new();
    for t in store.tables().await.unwrap() {
        let rows = store.table_rows(&t.name, &[]).await.unwrap();
        out.insert(t.name, rows);
    }
    out
}

/// Compares two stores table by table, naming the first table that differs.
pub fn assert_same_rows(
    before: &BTreeMap<String, Vec<Vec<Cell>>>,
    after: &BTreeMap<String, Vec<Vec<Cell>>>,
) {
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (table, rows) in before {
        assert_eq!(rows.len(), after[table].len(), "row count of {table}");
        for (i, (a, b)) in rows.iter().zip(&after[table]).enumerate() {
            assert_eq!(a, b, "row {i} of {table}");
        }
    }
}
