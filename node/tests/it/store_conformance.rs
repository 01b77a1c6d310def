//! The store suite: the same tests on SQLite and PostgreSQL.

use passerelle_node::store::{
    AgentFields, AuditRecord, NewActivity, NewToken, NodeIdentity, PartnerInfo, PartnershipChange,
    PartnershipState, PostingApply, PostingStatus, PostingVersion, Role, Store, StoreError,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::support::TestDb;

/// Runs `f` on a fresh store of every backend.
macro_rules! on_each_backend {
    ($f:ident) => {{
        for db in TestDb::all().await {
            let store = db.store().await;
            eprintln!("store suite: {} on {}", stringify!($f), db.name);
            $f(&store).await;
            store.close().await;
            db.cleanup().await;
        }
    }};
}

fn audit(action: &str) -> AuditRecord {
    AuditRecord::new("test", action, "x")
}

fn identity() -> NodeIdentity {
    NodeIdentity {
        name: "Ville de Grenoble".into(),
        siren: "213801855".into(),
        kind: "commune".into(),
        username: "grenoble".into(),
    }
}

async fn migrations_and_version(store: &Store) {
    let status = store.migration_status().await.unwrap();
    assert_eq!(status.applied, status.known);
    assert!(status.known >= 1);
    // Running migrations again is a no-op.
    store.migrate().await.unwrap();
    let v = store.server_version().await.unwrap();
    assert!(v.contains("SQLite") || v.contains("PostgreSQL"), "{v}");
    if v.contains("PostgreSQL") {
        // Every execution is planned for the tables' current sizes: a generic plan made
        // while a table was empty (a seq scan) made catch-ups quadratic.
        assert!(v.ends_with("(plan_cache_mode force_custom_plan)"), "{v}");
    }
    store.ping().await.unwrap();
}

async fn identity_lifecycle(store: &Store) {
    assert!(matches!(
        store.identity().await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        store
            .init_identity(&identity(), &audit("init"))
            .await
            .unwrap()
    );
    let mut other = identity();
    other.name = "Autre".into();
    // init never overwrites.
    assert!(!store.init_identity(&other, &audit("init")).await.unwrap());
    assert_eq!(store.identity().await.unwrap(), identity());
    store.set_identity(&other, &audit("set")).await.unwrap();
    assert_eq!(store.identity().await.unwrap().name, "Autre");
}

async fn key_rotation_keeps_old_key_with_expiry(store: &Store) {
    assert!(store.keys().await.unwrap().is_empty());
    let t0 = OffsetDateTime::now_utc();
    store
        .add_current_key("key-a", "z6MkA", t0, &audit("k"))
        .await
        .unwrap();
    let expiry = t0 + Duration::days(90);
    store
        .add_current_key("key-b", "z6MkB", expiry, &audit("k"))
        .await
        .unwrap();
    let keys = store.keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        (keys[0].key_id.as_str(), keys[0].current, keys[0].expires_at),
        ("key-b", true, None)
    );
    assert_eq!(keys[1].key_id, "key-a");
    assert!(!keys[1].current);
    let stored = keys[1].expires_at.unwrap();
    assert!(
        (stored - expiry).abs() < Duration::milliseconds(2),
        "{stored} vs {expiry}"
    );
    // The same public key cannot be added twice.
    let err = store
        .add_current_key("key-c", "z6MkB", expiry, &audit("k"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    // And the failed rotation changed nothing.
    assert_eq!(store.keys().await.unwrap(), keys);
}

async fn accounts_and_tokens(store: &Store) {
    let a = store
        .create_account("alice", "$argon2id$fake", Role::Rh, &audit("account"))
        .await
        .unwrap();
    let dup = store
        .create_account("alice", "$argon2id$other", Role::Admin, &audit("account"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })));
    let (found, hash) = store.account_by_username("alice").await.unwrap();
    assert_eq!(
        (found.id, found.role, hash.as_str()),
        (a.id, Role::Rh, "$argon2id$fake")
    );
    assert!(matches!(
        store.account_by_username("bob").await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(store.accounts().await.unwrap().len(), 1);

    // Bootstrap is refused once an account exists.
    let boot = NewToken {
        name: "bootstrap".into(),
        role: Role::Admin,
        token_hash: "h0".into(),
        account_id: None,
        expires_at: None,
    };
    assert!(
        store
            .create_bootstrap_token(&boot, &audit("boot"))
            .await
            .unwrap()
            .is_none()
    );

    let new = NewToken {
        name: "ci".into(),
        role: Role::Lecteur,
        token_hash: "h1".into(),
        account_id: None,
        expires_at: Some(OffsetDateTime::now_utc() + Duration::days(1)),
    };
    let t = store.create_token(&new, &audit("token")).await.unwrap();
    let dup = store.create_token(&new, &audit("token")).await;
    assert!(
        matches!(dup, Err(StoreError::Conflict { .. })),
        "same hash twice"
    );
    let session = NewToken {
        name: "session alice".into(),
        role: Role::Rh,
        token_hash: "h2".into(),
        account_id: Some(a.id),
        expires_at: None,
    };
    store
        .create_token(&session, &audit("session"))
        .await
        .unwrap();
    let by_hash = store.token_by_hash("h1").await.unwrap();
    assert_eq!((by_hash.id, by_hash.role), (t.id, Role::Lecteur));
    assert!(by_hash.is_active(OffsetDateTime::now_utc()));
    // Session tokens are not listed with API tokens.
    let listed = store.tokens().await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["ci"]
    );
    store.touch_token(t.id).await.unwrap();
    assert!(
        store
            .token_by_hash("h1")
            .await
            .unwrap()
            .last_used_at
            .is_some()
    );
    store.revoke_token(t.id, &audit("revoke")).await.unwrap();
    assert!(
        !store
            .token_by_hash("h1")
            .await
            .unwrap()
            .is_active(OffsetDateTime::now_utc())
    );
    assert!(matches!(
        store.revoke_token(t.id, &audit("revoke")).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.token_by_hash("nope").await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn bootstrap_token_only_once(store: &Store) {
    let mk = |h: &str| NewToken {
        name: "bootstrap".into(),
        role: Role::Admin,
        token_hash: h.into(),
        account_id: None,
        expires_at: None,
    };
    assert!(
        store
            .create_bootstrap_token(&mk("b1"), &audit("boot"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .create_bootstrap_token(&mk("b2"), &audit("boot"))
            .await
            .unwrap()
            .is_none()
    );
}

async fn agents_crud_with_audit(store: &Store) {
    let fields = AgentFields {
        display_name: "Camille Martin".into(),
        email: Some("camille.martin@grenoble.fr".into()),
        data: json!({"grade": "attaché"}),
    };
    let a = store
        .create_agent(
            &fields,
            &AuditRecord::new("account:alice", "agent.create", "agent"),
        )
        .await
        .unwrap();
    assert_eq!(store.agent(a.id).await.unwrap(), a);
    let mut changed = fields.clone();
    changed.display_name = "Camille Martin-Durand".into();
    let updated = store
        .update_agent(a.id, &changed, &audit("agent.update"))
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Camille Martin-Durand");
    assert_eq!(store.agents().await.unwrap().len(), 1);
    let missing = Uuid::now_v7();
    assert!(matches!(
        store.update_agent(missing, &changed, &audit("u")).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .delete_agent(a.id, &audit("agent.delete"))
        .await
        .unwrap();
    assert!(matches!(
        store.agent(a.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.delete_agent(a.id, &audit("d")).await,
        Err(StoreError::NotFound { .. })
    ));

    // Every successful write is in the audit log, newest first; failed ones are not.
    let log = store.audit_log(None, 100).await.unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(actions, ["agent.delete", "agent.update", "agent.create"]);
    assert_eq!(log[2].record.actor, "account:alice");
    assert_eq!(log[2].record.target, format!("agent:{}", a.id));
    let page = store.audit_log(Some(log[0].seq), 1).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].record.action, "agent.update");
}

fn activity(kind: &str, object: &str, public: bool) -> NewActivity {
    NewActivity {
        activity_id: format!("https://n.example/activities/{}", Uuid::now_v7()),
        activity_type: kind.into(),
        object_id: object.into(),
        public,
        document: json!({"type": kind, "object": object}),
    }
}

async fn postings_versions_and_outbox(store: &Store) {
    let id = Uuid::now_v7();
    let doc = json!({"type": "Posting", "name": "Chargé de mission"});
    let p = store
        .create_posting(id, "vacancy", &doc, &audit("posting.create"))
        .await
        .unwrap();
    assert_eq!((p.status, p.version), (PostingStatus::Draft, 1));
    assert_eq!(store.posting(id).await.unwrap(), p);
    let dup = store
        .create_posting(id, "vacancy", &doc, &audit("posting.create"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })));

    let object = format!("https://n.example/postings/{id}");
    let create = activity("Create", &object, true);
    let published = store
        .update_posting(
            id,
            1,
            &doc,
            PostingStatus::Published,
            Some(&create),
            &audit("posting.publish"),
        )
        .await
        .unwrap();
    assert_eq!(
        (published.status, published.version),
        (PostingStatus::Published, 2)
    );
    assert!(published.published_at.is_some());

    // A stale version is a conflict, and nothing is written (no outbox entry either).
    let stale = store
        .update_posting(
            id,
            1,
            &doc,
            PostingStatus::Closed,
            Some(&activity("Update", &object, true)),
            &audit("x"),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::Conflict { .. })),
        "{stale:?}"
    );
    assert_eq!(store.outbox_len(false).await.unwrap(), 1);
    let missing = store
        .update_posting(
            Uuid::now_v7(),
            1,
            &doc,
            PostingStatus::Closed,
            None,
            &audit("x"),
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));

    let private = activity("Update", &object, false);
    store
        .update_posting(
            id,
            2,
            &doc,
            PostingStatus::Closed,
            Some(&private),
            &audit("posting.close"),
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .postings(Some(PostingStatus::Closed))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .postings(Some(PostingStatus::Draft))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.postings(None).await.unwrap().len(), 1);

    let delete = activity("Delete", &object, true);
    store
        .delete_posting(id, Some(&delete), &audit("posting.delete"))
        .await
        .unwrap();
    assert!(matches!(
        store.posting(id).await,
        Err(StoreError::NotFound { .. })
    ));

    // Outbox: sequence numbers increase in commit order; public filter; both directions.
    let all = store.outbox(Some(0), None, 10, false).await.unwrap();
    let kinds: Vec<_> = all
        .iter()
        .map(|i| i.activity.activity_type.as_str())
        .collect();
    assert_eq!(kinds, ["Create", "Update", "Delete"]);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[0].activity, create);
    let public_newest_first = store.outbox(None, None, 10, true).await.unwrap();
    let kinds: Vec<_> = public_newest_first
        .iter()
        .map(|i| i.activity.activity_type.as_str())
        .collect();
    assert_eq!(kinds, ["Delete", "Create"]);
    let after_first = store
        .outbox(Some(all[0].seq), None, 1, false)
        .await
        .unwrap();
    assert_eq!(after_first[0].seq, all[1].seq);
    assert_eq!(store.outbox_len(true).await.unwrap(), 2);
    assert_eq!(store.usage().await.unwrap(), (0, 0));
}

async fn partners_list(store: &Store) {
    let info = PartnerInfo {
        actor_id: "https://isere.example/actor".into(),
        name: "Département de l'Isère".into(),
        inbox: "https://isere.example/inbox".into(),
        shared_inbox: None,
        outbox: Some("https://isere.example/outbox".into()),
        siren: Some("223800012".into()),
    };
    let p = store.upsert_partner(&info).await.unwrap();
    assert_eq!(p.outgoing, PartnershipState::None);
    assert_eq!(p.incoming, PartnershipState::None);
    // Recording it again refreshes what we know and keeps the partnership.
    store
        .update_partnership(
            &info.actor_id,
            &PartnershipChange {
                incoming: Some((PartnershipState::Accepted, Some(json!({"type": "Follow"})))),
                ..Default::default()
            },
            None,
            Some(&audit("p")),
        )
        .await
        .unwrap();
    let renamed = PartnerInfo {
        name: "Isère".into(),
        ..info.clone()
    };
    let again = store.upsert_partner(&renamed).await.unwrap();
    assert_eq!(again.id, p.id);
    assert_eq!(again.name, "Isère");
    assert_eq!(again.incoming, PartnershipState::Accepted);
    assert_eq!(again.incoming_follow, Some(json!({"type": "Follow"})));
    let list = store.partners().await.unwrap();
    assert_eq!(list.len(), 1);
    let missing = store
        .update_partnership(
            "https://nobody.example/actor",
            &PartnershipChange {
                outgoing: Some((PartnershipState::Pending, None)),
                ..Default::default()
            },
            None,
            None,
        )
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
}

async fn remote_postings_by_version_and_tombstones(store: &Store) {
    let id = "https://isere.example/postings/019ab4e2-7c10-7a3b-9d21-5f0e8c6a4b01";
    let version = |v: i64, name: &str| PostingVersion {
        object_id: id.into(),
        author: "https://isere.example/actor".into(),
        relayed_by: None,
        kind: "vacancy".into(),
        version: v,
        document: json!({"id": id, "version": v, "name": name}),
        verified_key: "https://isere.example/actor#key-1".into(),
    };
    assert_eq!(
        store.apply_posting_version(&version(2, "b")).await.unwrap(),
        PostingApply::Stored
    );
    // An older version arriving late does not win; the same one again is a duplicate.
    assert_eq!(
        store.apply_posting_version(&version(1, "a")).await.unwrap(),
        PostingApply::Stale
    );
    assert_eq!(
        store.apply_posting_version(&version(2, "b")).await.unwrap(),
        PostingApply::Stale
    );
    // The same version with other content is a conflict; the stored one is kept.
    assert_eq!(
        store
            .apply_posting_version(&version(2, "other"))
            .await
            .unwrap(),
        PostingApply::VersionConflict
    );
    let stored = store.remote_posting(id).await.unwrap().unwrap();
    assert_eq!(stored.version, 2);
    assert_eq!(stored.document.unwrap()["name"], "b");
    assert_eq!(
        store.apply_posting_version(&version(3, "c")).await.unwrap(),
        PostingApply::Stored
    );
    // A delete leaves a tombstone that no later version revives.
    assert!(
        store
            .apply_posting_delete(id, "https://isere.example/actor", None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_posting_delete(id, "https://isere.example/actor", None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.apply_posting_version(&version(9, "z")).await.unwrap(),
        PostingApply::Tombstoned
    );
    let t = store.remote_posting(id).await.unwrap().unwrap();
    assert!(t.deleted_at.is_some() && t.document.is_none());
    // A delete that arrives before its create also wins.
    let other = "https://isere.example/postings/019ab4e2-7c10-7a3b-9d21-5f0e8c6a4b02";
    store
        .apply_posting_delete(other, "https://isere.example/actor", None)
        .await
        .unwrap();
    let late = PostingVersion {
        object_id: other.into(),
        ..version(1, "late")
    };
    assert_eq!(
        store.apply_posting_version(&late).await.unwrap(),
        PostingApply::Tombstoned
    );
    assert_eq!(store.remote_postings(None, false).await.unwrap().len(), 0);
    assert_eq!(store.remote_postings(None, true).await.unwrap().len(), 2);
}

#[tokio::test]
async fn store_remote_postings() {
    on_each_backend!(remote_postings_by_version_and_tombstones);
}

#[tokio::test]
async fn store_migrations_and_version() {
    on_each_backend!(migrations_and_version);
}

#[tokio::test]
async fn store_identity() {
    on_each_backend!(identity_lifecycle);
}

#[tokio::test]
async fn store_keys() {
    on_each_backend!(key_rotation_keeps_old_key_with_expiry);
}

#[tokio::test]
async fn store_accounts_and_tokens() {
    on_each_backend!(accounts_and_tokens);
}

#[tokio::test]
async fn store_bootstrap() {
    on_each_backend!(bootstrap_token_only_once);
}

#[tokio::test]
async fn store_agents_and_audit() {
    on_each_backend!(agents_crud_with_audit);
}

#[tokio::test]
async fn store_postings_and_outbox() {
    on_each_backend!(postings_versions_and_outbox);
}

#[tokio::test]
async fn store_partners() {
    on_each_backend!(partners_list);
}

/// Two stores on one database (two processes) see each other's writes at once.
#[tokio::test]
async fn store_two_handles_share_one_database() {
    for db in TestDb::all().await {
        let a = db.store().await;
        let b = Store::connect(&db.url, 2).await.unwrap();
        let agent = a
            .create_agent(
                &AgentFields {
                    display_name: "X".into(),
                    email: None,
                    data: json!({}),
                },
                &audit("agent.create"),
            )
            .await
            .unwrap();
        assert_eq!(b.agent(agent.id).await.unwrap().display_name, "X");
        a.close().await;
        b.close().await;
        db.cleanup().await;
    }
}

#[test]
fn migration_folders_match() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = names("sqlite");
    assert_eq!(
        sqlite,
        names("postgres"),
        "migrations/sqlite and migrations/postgres must hold the same file names"
    );
    assert_eq!(
        sqlite,
        passerelle_node::store::MIGRATION_FILES,
        "every migration file must be embedded"
    );
}

/// Several processes starting at once on a new database create one bootstrap token.
#[tokio::test]
async fn store_bootstrap_is_created_once_under_concurrency() {
    for db in TestDb::all().await {
        let first = db.store().await;
        let mut stores = vec![first];
        for _ in 0..3 {
            stores.push(Store::connect(&db.url, 2).await.unwrap());
        }
        let attempts = stores.iter().enumerate().map(|(i, s)| {
            let new = NewToken {
                name: "bootstrap".into(),
                role: Role::Admin,
                token_hash: format!("boot{i}"),
                account_id: None,
                expires_at: None,
            };
            async move { s.create_bootstrap_token(&new, &audit("boot")).await }
        });
        let results = futures_join_all(attempts).await;
        let created = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
        let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(errors.is_empty(), "{}: {errors:?}", db.name);
        assert_eq!(created, 1, "{}", db.name);
        for s in &stores {
            s.close().await;
        }
        db.cleanup().await;
    }
}

async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out = Vec::new();
    // Poll all futures concurrently on this task.
    let mut pending: Vec<_> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    for r in results {
        out.push(r.unwrap());
    }
    out
}

async fn clock(store: &Store) {
    let t = store.server_time().await.unwrap();
    let skew = (t - OffsetDateTime::now_utc()).abs();
    assert!(
        skew < Duration::seconds(5),
        "database clock {t} is off by {skew}"
    );
}

#[tokio::test]
async fn store_clock() {
    on_each_backend!(clock);
}

async fn mad_requests_by_version_and_retention(store: &Store) {
    use passerelle_node::store::{ConventionRow, MadChange, MadFilter, NewMad};
    let doc = |state: &str, version: i64| {
        json!({"type": "MadRequest", "state": state, "version": version,
               "agent": {"ref": "agent-1", "statut": "fonctionnaire_titulaire",
                         "disclosed": {"name": "Camille Martin", "grade": "Technicien"}},
               "proof": {"type": "DataIntegrityProof"}})
    };
    let mut ids = Vec::new();
    for (side, oid) in [
        ("host", "https://a.example/mad/requests/1"),
        ("origin", "https://a.example/mad/requests/2"),
    ] {
        let new = NewMad {
            id: Uuid::now_v7(),
            object_id: oid.into(),
            creator: "https://a.example/actor".into(),
            our_side: side.into(),
            partner: "https://a.example/actor".into(),
            agent_id: None,
            state: "proposed".into(),
            version: 1,
            document: doc("proposed", 1),
        };
        let row = store
            .insert_mad_request(&new, None, Some(&audit("mad.create")))
            .await
            .unwrap();
        assert_eq!(row.version, 1);
        ids.push(row.id);
        // The same request id twice is a conflict.
        let again = NewMad {
            id: Uuid::now_v7(),
            ..new
        };
        assert!(matches!(
            store.insert_mad_request(&again, None, None).await,
            Err(StoreError::Conflict { .. })
        ));
    }
    let host = ids[0];
    let change = MadChange {
        state: Some("closed".into()),
        document: Some((2, doc("closed", 2))),
        pending: Some(Some(json!({"activity": "x"}))),
        convention: Some(ConventionRow {
            convention_id: "https://a.example/mad/conventions/1".into(),
            amendment: 0,
            document: json!({"type": "Convention"}),
            draft_sha256: Some("abc".into()),
            signed_by_origin: false,
            signed_by_host: false,
        }),
        ..Default::default()
    };
    let row = store
        .update_mad_request(host, 1, &change, &[], None)
        .await
        .unwrap();
    assert_eq!((row.state.as_str(), row.version), ("closed", 2));
    assert_eq!(row.pending, Some(json!({"activity": "x"})));
    // A change computed on an older version is refused: optimistic concurrency.
    assert!(matches!(
        store
            .update_mad_request(host, 1, &MadChange::default(), &[], None)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store
            .update_mad_request(Uuid::now_v7(), 1, &MadChange::default(), &[], None)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // Clearing a nullable column; re-signing keeps the draft's digest.
    let change = MadChange {
        pending: Some(None),
        convention: Some(ConventionRow {
            convention_id: "https://a.example/mad/conventions/1".into(),
            amendment: 0,
            document: json!({"type": "Convention", "proof": {}}),
            draft_sha256: None,
            signed_by_origin: true,
            signed_by_host: false,
        }),
        ..Default::default()
    };
    let row = store
        .update_mad_request(host, 2, &change, &[], None)
        .await
        .unwrap();
    assert_eq!(row.pending, None);
    let conventions = store.mad_conventions(host).await.unwrap();
    assert_eq!(conventions.len(), 1);
    assert_eq!(conventions[0].draft_sha256.as_deref(), Some("abc"));
    assert!(conventions[0].signed_by_origin);
    let closed = store
        .mad_requests(&MadFilter {
            states: vec!["closed".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    // Retention: the host's closed request loses the agent's identity (and its proof);
    // the origin's record and requests still running keep theirs.
    let later = OffsetDateTime::now_utc() + Duration::days(1);
    assert_eq!(
        store
            .erase_host_identities(later, &["closed"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .erase_host_identities(later, &["closed"])
            .await
            .unwrap(),
        0
    );
    let erased = store.mad_request(host).await.unwrap();
    assert!(erased.erased_at.is_some());
    assert!(erased.document["agent"].get("disclosed").is_none());
    assert!(erased.document.get("proof").is_none());
    assert_eq!(erased.document["agent"]["ref"], "agent-1");
    let origin = store.mad_request(ids[1]).await.unwrap();
    assert_eq!(
        origin.document["agent"]["disclosed"]["name"],
        "Camille Martin"
    );
    // Not yet past the retention period: nothing is erased.
    let earlier = OffsetDateTime::now_utc() - Duration::days(1);
    assert_eq!(
        store
            .erase_host_identities(earlier, &["proposed"])
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn store_mad_requests() {
    on_each_backend!(mad_requests_by_version_and_retention);
}

async fn profiles_consents_recipients_and_erasure(store: &Store) {
    use passerelle_node::store::ProfileWrite;
    let id = Uuid::now_v7();
    let oid = "https://a.example/profiles/1";
    let base = ProfileWrite {
        id,
        object_id: oid.into(),
        agent_id: None,
        handle: "agent-a1b2c3".into(),
        ..Default::default()
    };
    let created = store
        .write_profile(
            &ProfileWrite {
                version: 1,
                document: Some(json!({"type": "AgentProfile", "version": 1})),
                visibility: "federation".into(),
                consent: Some(("v1".into(), "account:drh".into())),
                recipients: vec![
                    "https://b.example/actor".into(),
                    "https://c.example/actor".into(),
                ],
                ..base.clone()
            },
            &[activity("Create", oid, false)],
            Some(&audit("profile.create")),
        )
        .await
        .unwrap();
    assert_eq!(created.version, 1);
    // The handle is unique.
    let other = ProfileWrite {
        id: Uuid::now_v7(),
        object_id: "https://a.example/profiles/2".into(),
        version: 1,
        visibility: "private".into(),
        ..base.clone()
    };
    assert!(matches!(
        store.write_profile(&other, &[], None).await,
        Err(StoreError::Conflict { .. })
    ));
    // A narrower scope: a new consent closes the first; one node is withdrawn from.
    store
        .write_profile(
            &ProfileWrite {
                expected_version: Some(1),
                version: 2,
                document: Some(json!({"type": "AgentProfile", "version": 2})),
                visibility: "partner_circle".into(),
                consent: Some(("v2".into(), "account:drh".into())),
                recipients: vec!["https://b.example/actor".into()],
                deleted_for: Some((
                    "https://a.example/activities/d1".into(),
                    vec!["https://c.example/actor".into()],
                )),
                ..base.clone()
            },
            &[],
            None,
        )
        .await
        .unwrap();
    // A stale version is refused.
    assert!(matches!(
        store
            .write_profile(
                &ProfileWrite {
                    expected_version: Some(1),
                    version: 2,
                    ..base.clone()
                },
                &[],
                None
            )
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let consents = store.profile_consents(id).await.unwrap();
    assert_eq!(consents.len(), 2);
    assert!(consents[0].withdrawn_at.is_some() && consents[1].withdrawn_at.is_none());
    assert!(
        store
            .ack_profile_delete("https://a.example/activities/d1", "https://c.example/actor")
            .await
            .unwrap()
    );
    assert!(
        !store
            .ack_profile_delete("https://a.example/activities/d1", "https://b.example/actor")
            .await
            .unwrap()
    );
    // Withdrawal: content erased, consents closed, a local tombstone.
    let gone = store
        .write_profile(
            &ProfileWrite {
                expected_version: Some(2),
                version: 3,
                document: None,
                visibility: "partner_circle".into(),
                close_consents: true,
                deleted_for: Some((
                    "https://a.example/activities/d2".into(),
                    vec!["https://b.example/actor".into()],
                )),
                withdrawn: true,
                ..base.clone()
            },
            &[],
            None,
        )
        .await
        .unwrap();
    assert!(gone.document.is_none() && gone.withdrawn_at.is_some());
    assert!(
        store
            .profile_consents(id)
            .await
            .unwrap()
            .iter()
            .all(|c| c.withdrawn_at.is_some())
    );
    let recipients = store.profile_recipients(id).await.unwrap();
    assert_eq!(recipients.len(), 2);
    assert!(recipients.iter().all(|r| r.delete_activity.is_some()));
    assert_eq!(
        store.tombstone(oid).await.unwrap().unwrap().0,
        "AgentProfile"
    );
    // Nothing more can be written to a withdrawn profile.
    assert!(
        store
            .write_profile(
                &ProfileWrite {
                    expected_version: Some(3),
                    version: 4,
                    visibility: "private".into(),
                    ..base.clone()
                },
                &[],
                None
            )
            .await
            .is_err()
    );

    // A partner's profile: by version; erased once with its acknowledgement, never
    // revived.
    let rid = "https://b.example/profiles/9";
    let author = "https://b.example/actor";
    assert_eq!(
        store
            .apply_profile_version(rid, author, 2, &json!({"v": 2}))
            .await
            .unwrap(),
        PostingApply::Stored
    );
    assert_eq!(
        store
            .apply_profile_version(rid, author, 1, &json!({"v": 1}))
            .await
            .unwrap(),
        PostingApply::Stale
    );
    assert_eq!(
        store
            .apply_profile_version(rid, author, 2, &json!({"v": 3}))
            .await
            .unwrap(),
        PostingApply::VersionConflict
    );
    let before = store.outbox_len(false).await.unwrap();
    let ack = activity("Accept", "https://b.example/activities/del", false);
    assert!(
        store
            .apply_profile_delete(rid, author, Some(&ack))
            .await
            .unwrap()
    );
    assert!(
        !store
            .apply_profile_delete(rid, author, Some(&activity("Accept", "x", false)))
            .await
            .unwrap()
    );
    assert_eq!(
        store.outbox_len(false).await.unwrap(),
        before + 1,
        "one acknowledgement only"
    );
    assert_eq!(
        store
            .apply_profile_version(rid, author, 5, &json!({"v": 5}))
            .await
            .unwrap(),
        PostingApply::Tombstoned
    );
    assert!(store.remote_profiles(false).await.unwrap().is_empty());
    let all = store.remote_profiles(true).await.unwrap();
    assert!(all[0].document.is_none());
    assert!(store.is_remote_profile(rid).await.unwrap());
}

#[tokio::test]
async fn store_profiles() {
    on_each_backend!(profiles_consents_recipients_and_erasure);
}

async fn swaps_and_registrations(store: &Store) {
    use passerelle_node::store::{RegistrationRow, SwapChange, SwapRow};
    let now = OffsetDateTime::now_utc();
    let swap = SwapRow {
        id: Uuid::now_v7(),
        object_id: "https://a.example/swaps/1".into(),
        proposer: "https://a.example/actor".into(),
        partner: "https://b.example/actor".into(),
        our_profile: "https://a.example/profiles/1".into(),
        their_profile: "https://b.example/profiles/2".into(),
        state: "proposed".into(),
        our_visit_on: Some("2027-04-01".into()),
        their_visit_on: Some("2027-04-08".into()),
        our_visit: "planned".into(),
        their_visit: "planned".into(),
        document: json!({"type": "Posting"}),
        created_at: now,
        updated_at: now,
    };
    store
        .insert_swap(
            &swap,
            &[activity("Create", "https://a.example/swaps/1", false)],
            None,
        )
        .await
        .unwrap();
    assert!(matches!(
        store.insert_swap(&swap, &[], None).await,
        Err(StoreError::Conflict { .. })
    ));
    let agreed = store
        .update_swap(
            swap.id,
            "proposed",
            &SwapChange {
                state: Some("agreed".into()),
                ..Default::default()
            },
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(agreed.state, "agreed");
    // A change computed on an older state is refused.
    assert!(matches!(
        store
            .update_swap(swap.id, "proposed", &SwapChange::default(), &[], None)
            .await,
        Err(StoreError::Conflict { .. })
    ));
    let done = store
        .update_swap(
            swap.id,
            "agreed",
            &SwapChange {
                their_visit: Some("done".into()),
                ..Default::default()
            },
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (done.our_visit.as_str(), done.their_visit.as_str()),
        ("planned", "done")
    );
    assert_eq!(
        store
            .swap_by_object("https://a.example/swaps/1")
            .await
            .unwrap()
            .unwrap()
            .id,
        swap.id
    );

    let session = "https://a.example/postings/7";
    let mut ids = Vec::new();
    for (i, node) in ["https://b.example/actor", "https://c.example/actor"]
        .iter()
        .enumerate()
    {
        let r = RegistrationRow {
            id: Uuid::now_v7(),
            object_id: format!("{}/registrations/{i}", node.trim_end_matches("/actor")),
            session: session.into(),
            node: (*node).into(),
            host: "https://a.example/actor".into(),
            agent_id: None,
            status: "requested".into(),
            reason: None,
            activity_id: Some(format!(
                "{}/activities/{i}",
                node.trim_end_matches("/actor")
            )),
            registered_at: now + Duration::seconds(i as i64),
            updated_at: now,
        };
        store.insert_registration(&r, &[], None).await.unwrap();
        ids.push(r);
    }
    store
        .set_registrations(
            &[
                (ids[0].id, "confirmed".into(), None),
                (ids[1].id, "waitlisted".into(), Some("quota".into())),
            ],
            &[],
            None,
        )
        .await
        .unwrap();
    let regs = store.registrations(Some(session)).await.unwrap();
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[0].status, "confirmed", "in order of registration");
    assert_eq!(regs[1].reason.as_deref(), Some("quota"));
    // Found by its id or by the Add that made it.
    let by_add = store
        .registration_by_object("https://c.example/activities/1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_add.id, ids[1].id);
    store
        .set_training_quotas(
            session,
            &[
                ("https://b.example/actor".into(), 1),
                ("https://c.example/actor".into(), 2),
            ],
            &audit("quotas"),
        )
        .await
        .unwrap();
    store
        .set_training_quotas(
            session,
            &[("https://c.example/actor".into(), 3)],
            &audit("quotas"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.training_quotas(session).await.unwrap(),
        vec![("https://c.example/actor".to_owned(), 3)]
    );
}

#[tokio::test]
async fn store_swaps_and_registrations() {
    on_each_backend!(swaps_and_registrations);
}
