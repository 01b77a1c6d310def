//! The feed index on both backends: French full text (accents, case, inflections),
//! filters, facets, sorting, cursor paging, maintenance in the posting transactions, and
//! saved searches.

use passerelle_node::domain::search::TextQuery;
use passerelle_node::store::{
    AuditRecord, Facet, FeedBounds, FeedCursor, FeedFilter, FeedPage, FeedQuery, FeedSort,
    PostingStatus, PostingVersion, RANK_MAX, Store,
};
use passerelle_protocol::keys::SigningKey;
use passerelle_protocol::proof::{self, ProofOptions};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::support::TestDb;

/// A partner node of the tests, with its own key.
pub struct Partner {
    pub origin: String,
    pub key: SigningKey,
}

impl Partner {
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            key: SigningKey::generate().unwrap(),
        }
    }

    pub fn actor(&self) -> String {
        format!("{}/actor", self.origin)
    }

    pub fn key_id(&self) -> String {
        format!("{}#key-1", self.actor())
    }

    /// A signed posting of this partner: a minimal posting of `kind` (no free text) with
    /// `changes` merged over it (a `null` removes the property).
    pub fn posting(&self, kind: &str, version: i64, changes: Value) -> Value {
        let mut doc = json!({
            "@context": passerelle_protocol::vocab::context(),
            "id": format!("{}/postings/{}", self.origin, Uuid::now_v7()),
            "type": "Posting",
            "postingKind": kind,
            "attributedTo": self.actor(),
            "version": version,
            "published": "2026-11-01T09:00:00Z",
            "status": "published",
            "visibility": "federation",
            "to": [format!("{}/followers", self.origin)],
            "name": "Offre",
            "dates": {},
            "body": {}
        });
        merge(&mut doc, &changes);
        self.sign(doc)
    }

    pub fn sign(&self, mut doc: Value) -> Value {
        doc.as_object_mut().unwrap().remove("proof");
        proof::sign(
            doc,
            &self.key,
            &ProofOptions::new(self.key_id(), OffsetDateTime::now_utc()),
        )
        .unwrap()
    }

    /// The store's view of a received, verified posting version.
    pub fn version(&self, doc: &Value) -> PostingVersion {
        // The test really verifies what it stores.
        proof::verify(doc.clone(), &[(self.key_id(), self.key.public_key())]).unwrap();
        PostingVersion {
            object_id: doc["id"].as_str().unwrap().to_owned(),
            author: self.actor(),
            relayed_by: None,
            kind: doc["postingKind"].as_str().unwrap().to_owned(),
            version: doc["version"].as_i64().unwrap(),
            document: doc.clone(),
            verified_key: self.key_id(),
        }
    }
}

pub fn merge(doc: &mut Value, changes: &Value) {
    if let (Value::Object(d), Value::Object(c)) = (doc, changes) {
        for (k, v) in c {
            if v.is_null() {
                d.remove(k);
            } else if v.is_object() && d.get(k).is_some_and(Value::is_object) {
                merge(d.get_mut(k).unwrap(), v);
            } else {
                d.insert(k.clone(), v.clone());
            }
        }
    }
}

macro_rules! on_each_backend {
    ($f:ident) => {{
        for db in TestDb::all().await {
            let store = db.store().await;
            eprintln!("feed suite: {} on {}", stringify!($f), db.name);
            $f(&store, &db).await;
            store.close().await;
            db.cleanup().await;
        }
    }};
}

fn q(text: &str) -> FeedFilter {
    FeedFilter {
        text: TextQuery::parse(text),
        ..FeedFilter::default()
    }
}

async fn names(store: &Store, filter: FeedFilter) -> Vec<String> {
    let page = store
        .feed_search(&FeedQuery {
            filter,
            limit: 100,
            ..FeedQuery::default()
        })
        .await
        .unwrap();
    let mut n: Vec<String> = page.items.into_iter().map(|i| i.name).collect();
    n.sort();
    n
}

/// Three partners, six postings of various kinds.
async fn seed(store: &Store) -> (Partner, Partner, Vec<Value>) {
    let isere = Partner::new("https://rh.isere.example");
    let lyon = Partner::new("https://rh.lyon.example");
    let docs = vec![
        isere.posting(
            "vacancy",
            1,
            json!({
                "name": "Ingénieur voirie et réseaux (H/F)",
                "summary": "Le Département recherche un ingénieur pour ses routes.",
                "statutory": {"categories": ["A"], "filieres": ["technique"], "cadresEmplois": ["Ingénieurs territoriaux"]},
                "metiers": [{"rome": {"code": "F1106", "label": "Ingénierie et études du BTP"}}],
                "locations": [{"commune": "38185", "address": "Grenoble"}],
                "telework": {"allowed": true, "daysPerWeekMax": 1},
                "workingTime": {"kind": "complet"},
                "dates": {"applyUntil": "2027-01-15", "start": "2027-03-01"},
                "published": "2026-11-01T09:00:00Z"
            }),
        ),
        isere.posting(
            "vacancy",
            1,
            json!({
                "name": "Responsable de la médiathèque",
                "summary": "Direction de la lecture publique.",
                "statutory": {"categories": ["B"], "filieres": ["culturelle"], "cadresEmplois": ["Assistants de conservation"]},
                "metiers": [{"cnfpt": {"label": "Responsable de bibliothèque"}}],
                "locations": [{"commune": "38053", "address": "Bourgoin-Jallieu"}],
                "telework": {"allowed": false},
                "workingTime": {"kind": "quotite", "quotitePct": 80},
                "dates": {"applyUntil": "2026-12-20", "start": "2027-01-10"},
                "published": "2026-11-05T09:00:00Z"
            }),
        ),
        lyon.posting(
            "vacancy",
            1,
            json!({
                "name": "Animatrice périscolaire",
                "summary": "Accueil des enfants dans les mediatheques et écoles.",
                "statutory": {"categories": ["C"], "filieres": ["animation"], "cadresEmplois": ["Adjoints d'animation"]},
                "metiers": [{"rome": {"code": "G1203", "label": "Animation de loisirs auprès d'enfants"}}],
                "locations": [{"commune": "69123", "address": "Lyon"}],
                "telework": null,
                "workingTime": {"kind": "non_complet", "hebdoMinutes": 1050},
                "dates": {"applyUntil": null, "start": null},
                "published": "2026-11-03T09:00:00Z"
            }),
        ),
        lyon.posting(
            "immersion_offer",
            1,
            json!({"name": "Vis mon job : jardinier des parcs", "published": "2026-11-04T09:00:00Z",
                   "locations": [{"commune": "69123"}]}),
        ),
        lyon.posting(
            "training_session",
            1,
            json!({"name": "Formation accueil du public", "published": "2026-11-02T09:00:00Z",
                   "locations": [{"commune": "75056"}]}),
        ),
    ];
    for d in &docs {
        let author = if d["attributedTo"] == json!(isere.actor()) {
            &isere
        } else {
            &lyon
        };
        store
            .apply_posting_version(&author.version(d))
            .await
            .unwrap();
    }
    (isere, lyon, docs)
}

async fn full_text_is_french(store: &Store, _db: &TestDb) {
    seed(store).await;
    let vr = "Ingénieur voirie et réseaux (H/F)";
    let media = "Responsable de la médiathèque";
    let anim = "Animatrice périscolaire";
    // Accents, case and inflections.
    assert_eq!(names(store, q("ingénieure")).await, [vr]);
    assert_eq!(names(store, q("INGENIEURS")).await, [vr]);
    assert_eq!(names(store, q("mediatheques")).await, [anim, media]);
    assert_eq!(names(store, q("Médiathèque")).await, [anim, media]);
    assert_eq!(names(store, q("animateur")).await, [anim]);
    // Every word must match; `-word` excludes; stop words are ignored.
    assert_eq!(names(store, q("médiathèque responsable")).await, [media]);
    assert_eq!(names(store, q("médiathèque -responsable")).await, [anim]);
    assert_eq!(names(store, q("de la")).await.len(), 5);
    // Métier labels, cadres and places are searched too.
    assert_eq!(names(store, q("bibliothèque")).await, [media]);
    assert_eq!(names(store, q("grenoble")).await, [vr]);
    assert!(names(store, q("astronaute")).await.is_empty());
    // A word too long for PostgreSQL's index (2,048 bytes) matches nothing and excludes
    // nothing, on both backends (PostgreSQL refused the query).
    let long = "x".repeat(2048);
    assert!(names(store, q(&long)).await.is_empty());
    assert_eq!(
        names(store, q(&format!("médiathèque -{long}"))).await,
        [anim, media]
    );
    let ranked = store
        .feed_search(&FeedQuery {
            filter: q(&long),
            sort: FeedSort::Relevance,
            limit: 10,
            ..FeedQuery::default()
        })
        .await
        .unwrap();
    assert!(ranked.items.is_empty());
    // Relevance: a title match ranks first.
    let page = store
        .feed_search(&FeedQuery {
            filter: q("médiathèque"),
            sort: FeedSort::Relevance,
            limit: 10,
            ..FeedQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items[0].name, media);
}

async fn filters_and_facets(store: &Store, _db: &TestDb) {
    let (isere, lyon, _) = seed(store).await;
    let vr = "Ingénieur voirie et réseaux (H/F)";
    let media = "Responsable de la médiathèque";
    let anim = "Animatrice périscolaire";
    let f = |edit: &dyn Fn(&mut FeedFilter)| {
        let mut f = FeedFilter::default();
        edit(&mut f);
        f
    };
    assert_eq!(
        names(store, f(&|f| f.kinds = vec!["vacancy".into()])).await,
        [anim, vr, media]
    );
    assert_eq!(
        names(store, f(&|f| f.categories = vec!["A".into(), "B".into()])).await,
        [vr, media]
    );
    assert_eq!(
        names(store, f(&|f| f.filieres = vec!["culturelle".into()])).await,
        [media]
    );
    assert_eq!(
        names(
            store,
            f(&|f| f.cadres = vec!["Ingénieurs territoriaux".into()])
        )
        .await,
        [vr]
    );
    // Métier by ROME code or by any part of a label, accents ignored.
    assert_eq!(
        names(store, f(&|f| f.metiers = vec!["f1106".into()])).await,
        [vr]
    );
    assert_eq!(
        names(store, f(&|f| f.metiers = vec!["bibliotheque".into()])).await,
        [media]
    );
    assert_eq!(
        names(store, f(&|f| f.departements = vec!["38".into()])).await,
        [vr, media]
    );
    assert_eq!(
        names(store, f(&|f| f.regions = vec!["84".into()]))
            .await
            .len(),
        4
    );
    assert_eq!(
        names(store, f(&|f| f.regions = vec!["11".into()])).await,
        ["Formation accueil du public"]
    );
    assert_eq!(
        names(store, f(&|f| f.communes = vec!["38053".into()])).await,
        [media]
    );
    assert_eq!(
        names(store, f(&|f| f.origins = vec![isere.actor()])).await,
        [vr, media]
    );
    assert_eq!(names(store, f(&|f| f.telework = Some(true))).await, [vr]);
    assert_eq!(
        names(store, f(&|f| f.telework = Some(false))).await,
        [media]
    );
    assert_eq!(
        names(store, f(&|f| f.working_times = vec!["quotite".into()])).await,
        [media]
    );
    // Quotités: complet = 100 %, 17 h 30 of 35 h = 50 %.
    assert_eq!(names(store, f(&|f| f.quotite_min = Some(90))).await, [vr]);
    assert_eq!(names(store, f(&|f| f.quotite_max = Some(60))).await, [anim]);
    // Dates: a bound excludes postings beyond it; absent dates match a lower bound only.
    assert_eq!(
        names(store, f(&|f| f.deadline_to = Some("2026-12-31".into()))).await,
        [media]
    );
    assert!(
        names(store, f(&|f| f.deadline_from = Some("2027-01-01".into())))
            .await
            .contains(&vr.to_owned())
    );
    assert_eq!(
        names(
            store,
            f(&|f| {
                f.start_from = Some("2027-02-01".into());
                f.start_to = Some("2027-12-31".into());
            })
        )
        .await,
        [vr]
    );
    // Combined with text.
    assert_eq!(
        names(
            store,
            f(&|f| {
                f.text = TextQuery::parse("médiathèque");
                f.departements = vec!["69".into()];
            })
        )
        .await,
        [anim]
    );
    // Circles: postings published by the members of a circle.
    let circle = store
        .put_circle(
            Uuid::now_v7(),
            "Métropole",
            "https://rh.grenoble.example/circles/metropole",
            &[lyon.actor()],
            &AuditRecord::new("test", "circle.put", "circle"),
        )
        .await
        .unwrap();
    assert_eq!(
        names(store, f(&|f| f.circles = vec![circle.url.clone()]))
            .await
            .len(),
        3
    );
    assert_eq!(
        names(store, f(&|f| f.circles = vec![circle.id.to_string()]))
            .await
            .len(),
        3
    );

    // Facets count the matches; a restricted facet still shows its other values.
    let filter = f(&|f| f.categories = vec!["A".into()]);
    let page = store
        .feed_search(&FeedQuery {
            filter,
            limit: 10,
            facets: true,
            total: true,
            ..FeedQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, Some(1));
    let count = |facet: Facet, value: &str| {
        page.facets
            .iter()
            .find(|c| c.facet == facet && c.value == value)
            .map(|c| c.count)
    };
    assert_eq!(count(Facet::Categorie, "A"), Some(1));
    assert_eq!(count(Facet::Categorie, "B"), Some(1));
    assert_eq!(count(Facet::Categorie, "C"), Some(1));
    assert_eq!(count(Facet::Kind, "vacancy"), Some(1));
    assert_eq!(count(Facet::Kind, "immersion_offer"), None);
    assert_eq!(count(Facet::Departement, "38"), Some(1));
    assert_eq!(count(Facet::Region, "84"), Some(1));
    assert_eq!(count(Facet::Origin, &isere.actor()), Some(1));
    assert_eq!(count(Facet::Telework, "true"), Some(1));
    assert_eq!(count(Facet::Rome, "F1106"), Some(1));
    // Without filters: every posting counted once per value.
    let all = store.feed_facets(&FeedFilter::default()).await.unwrap();
    let kinds: i64 = all
        .iter()
        .filter(|c| c.facet == Facet::Kind)
        .map(|c| c.count)
        .sum();
    assert_eq!(kinds, 5);
    assert_eq!(
        all.iter()
            .find(|c| c.facet == Facet::Region && c.value == "84")
            .map(|c| c.count),
        Some(4)
    );
}

async fn sorting_and_paging(store: &Store, _db: &TestDb) {
    seed(store).await;
    for sort in [FeedSort::Recent, FeedSort::Deadline, FeedSort::Start] {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .feed_search(&FeedQuery {
                    sort,
                    cursor: cursor.clone(),
                    limit: 2,
                    ..FeedQuery::default()
                })
                .await
                .unwrap();
            assert!(page.items.len() <= 2);
            seen.extend(page.items);
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5, "{sort:?}");
        let mut ids: Vec<i64> = seen.iter().map(|i| i.doc_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 5, "no posting twice ({sort:?})");
        match sort {
            FeedSort::Recent => {
                assert!(seen.windows(2).all(|w| w[0].updated_at >= w[1].updated_at));
                assert_eq!(seen[0].name, "Responsable de la médiathèque");
            }
            FeedSort::Deadline => {
                assert_eq!(seen[0].apply_until.as_deref(), Some("2026-12-20"));
                assert_eq!(seen[1].apply_until.as_deref(), Some("2027-01-15"));
            }
            FeedSort::Start => {
                assert_eq!(seen[0].start.as_deref(), Some("2027-01-10"));
            }
            FeedSort::Relevance => unreachable!(),
        }
    }
    // Relevance pages by offset, and needs text.
    let page = store
        .feed_search(&FeedQuery {
            filter: q("mediatheque"),
            sort: FeedSort::Relevance,
            limit: 1,
            ..FeedQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.next, Some(FeedCursor::Offset(1)));
    let second = store
        .feed_search(&FeedQuery {
            filter: q("mediatheque"),
            sort: FeedSort::Relevance,
            cursor: page.next,
            limit: 1,
            ..FeedQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_ne!(second.items[0].doc_id, page.items[0].doc_id);
    assert!(
        store
            .feed_search(&FeedQuery {
                sort: FeedSort::Relevance,
                limit: 1,
                ..FeedQuery::default()
            })
            .await
            .is_err()
    );
}

async fn index_follows_versions_and_deletes(store: &Store, db: &TestDb) {
    let (isere, _, docs) = seed(store).await;
    let first = &docs[0];
    let id = first["id"].as_str().unwrap();
    let before = store.feed_item(id).await.unwrap().unwrap();
    assert_eq!(before.author, isere.actor());
    assert_eq!(
        before.verified_key.as_deref(),
        Some(isere.key_id().as_str())
    );
    assert!(before.verified_at.is_some());
    // A new version replaces the indexed text and facets; the doc id stays.
    let mut v2 = first.clone();
    merge(
        &mut v2,
        &json!({"version": 2, "name": "Technicienne des espaces verts",
                "statutory": {"categories": ["B"]}}),
    );
    let v2 = isere.sign(v2);
    store
        .apply_posting_version(&isere.version(&v2))
        .await
        .unwrap();
    assert!(names(store, q("ingénieur voirie")).await.is_empty());
    assert_eq!(
        names(store, q("techniciennes")).await,
        ["Technicienne des espaces verts"]
    );
    let after = store.feed_item(id).await.unwrap().unwrap();
    assert_eq!(after.doc_id, before.doc_id);
    assert_eq!(
        names(
            store,
            FeedFilter {
                categories: vec!["A".into()],
                ..FeedFilter::default()
            }
        )
        .await
        .len(),
        0
    );
    // An older version arriving late changes nothing.
    store
        .apply_posting_version(&isere.version(first))
        .await
        .unwrap();
    assert_eq!(
        names(store, q("techniciennes")).await,
        ["Technicienne des espaces verts"]
    );
    // A relayed version says who relayed it.
    let mut v3 = v2.clone();
    merge(&mut v3, &json!({"version": 3}));
    let v3 = isere.sign(v3);
    let mut relayed = isere.version(&v3);
    relayed.relayed_by = Some("https://rh.departement.example/actor".into());
    store.apply_posting_version(&relayed).await.unwrap();
    assert_eq!(
        store
            .feed_item(id)
            .await
            .unwrap()
            .unwrap()
            .relayed_by
            .as_deref(),
        Some("https://rh.departement.example/actor")
    );
    // A delete removes it from the feed, text and facets included.
    assert!(
        store
            .apply_posting_delete(id, &isere.actor(), None)
            .await
            .unwrap()
    );
    assert!(store.feed_item(id).await.unwrap().is_none());
    assert!(names(store, q("techniciennes")).await.is_empty());
    assert_eq!(store.feed_count(&FeedFilter::default()).await.unwrap(), 4);
    // Its facet rows went with it (no foreign key removes them, migration 0009).
    assert_eq!(orphan_term_rows(db).await, 0);
    let facets = store.feed_facets(&FeedFilter::default()).await.unwrap();
    assert!(
        !facets
            .iter()
            .any(|c| c.facet == Facet::Departement && c.value == "38" && c.count > 1)
    );
}

async fn local_postings_join_the_feed_when_published(store: &Store, db: &TestDb) {
    let id = Uuid::now_v7();
    let url = format!("https://rh.grenoble.example/postings/{id}");
    let doc = |status: &str, version: i64| {
        json!({
            "id": url, "type": "Posting", "postingKind": "vacancy", "status": status,
            "attributedTo": "https://rh.grenoble.example/actor", "version": version,
            "published": "2026-11-10T10:00:00Z", "visibility": "federation",
            "name": "Juriste marchés publics", "locations": [{"commune": "38185"}],
            "proof": {"verificationMethod": "https://rh.grenoble.example/actor#key-a"}
        })
    };
    let audit = AuditRecord::new("test", "posting", "x");
    store
        .create_posting(id, "vacancy", &doc("draft", 1), &audit)
        .await
        .unwrap();
    // Drafts are not in the feed.
    assert!(names(store, q("juriste")).await.is_empty());
    store
        .update_posting(
            id,
            1,
            &doc("published", 2),
            PostingStatus::Published,
            None,
            &audit,
        )
        .await
        .unwrap();
    let item = store.feed_item(&url).await.unwrap().unwrap();
    assert_eq!(item.local_id, Some(id));
    assert_eq!(item.status, "published");
    assert_eq!(
        item.verified_key.as_deref(),
        Some("https://rh.grenoble.example/actor#key-a")
    );
    assert_eq!(
        names(store, q("juristes")).await,
        ["Juriste marchés publics"]
    );
    store
        .update_posting(
            id,
            2,
            &doc("closed", 3),
            PostingStatus::Closed,
            None,
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(
        store.feed_item(&url).await.unwrap().unwrap().status,
        "closed"
    );
    let open = FeedFilter {
        statuses: vec!["published".into()],
        ..q("juriste")
    };
    assert!(names(store, open).await.is_empty());
    // The facet rows go with each version and with the posting (no foreign key removes
    // them, migration 0009).
    assert_eq!(term_rows(db).await, 3, "commune, département, région");
    store.delete_posting(id, None, &audit).await.unwrap();
    assert!(store.feed_item(&url).await.unwrap().is_none());
    assert_eq!(term_rows(db).await, 0);
    assert_eq!(orphan_term_rows(db).await, 0);
}

async fn saved_searches_signal_new_matches(store: &Store, _db: &TestDb) {
    let (isere, _, _) = seed(store).await;
    let audit = AuditRecord::new("session:alice", "saved_search.create", "x");
    let s = store
        .create_saved_search("session:alice", "Ingénieurs", "q=ingenieur", true, &audit)
        .await
        .unwrap();
    // Names are unique per owner, not across owners.
    assert!(
        store
            .create_saved_search("session:alice", "Ingénieurs", "q=x", true, &audit)
            .await
            .is_err()
    );
    store
        .create_saved_search("session:bob", "Ingénieurs", "q=x", false, &audit)
        .await
        .unwrap();
    let new_matches = |seen: i64| FeedFilter {
        after_doc_id: Some(seen),
        ..q("ingénieur")
    };
    // What existed when the search was saved is not new.
    assert_eq!(
        store.feed_count(&new_matches(s.seen_doc_id)).await.unwrap(),
        0
    );
    let doc = isere.posting(
        "vacancy",
        1,
        json!({"name": "Ingénieure bâtiments", "published": "2026-11-20T09:00:00Z"}),
    );
    store
        .apply_posting_version(&isere.version(&doc))
        .await
        .unwrap();
    assert_eq!(
        store.feed_count(&new_matches(s.seen_doc_id)).await.unwrap(),
        1
    );
    // Marking seen clears it; only the owner sees (and can change) the search.
    let max = store.feed_max_doc_id().await.unwrap();
    store
        .mark_saved_search_seen("session:alice", s.id, max)
        .await
        .unwrap();
    let s = store.saved_search("session:alice", s.id).await.unwrap();
    assert_eq!(s.seen_doc_id, max);
    assert_eq!(
        store.feed_count(&new_matches(s.seen_doc_id)).await.unwrap(),
        0
    );
    assert!(store.saved_search("session:bob", s.id).await.is_err());
    assert!(
        store
            .mark_saved_search_seen("session:bob", s.id, 0)
            .await
            .is_err()
    );
    assert_eq!(
        store.saved_searches("session:alice").await.unwrap().len(),
        1
    );
    store
        .delete_saved_search("session:alice", s.id, &audit)
        .await
        .unwrap();
    assert!(
        store
            .saved_searches("session:alice")
            .await
            .unwrap()
            .is_empty()
    );
}

async fn reindex_restores_missing_rows(store: &Store, db: &TestDb) {
    seed(store).await;
    // Empty the index behind the store's back, as an old backup would be.
    let stmts = if db.name == "sqlite" {
        vec![
            "DELETE FROM feed_fts",
            "DELETE FROM feed_terms",
            "DELETE FROM feed_postings",
        ]
    } else {
        vec!["DELETE FROM feed_terms", "DELETE FROM feed_postings"]
    };
    raw(db, &stmts).await;
    assert_eq!(store.feed_count(&FeedFilter::default()).await.unwrap(), 0);
    assert_eq!(store.reindex_feed().await.unwrap(), 5);
    assert_eq!(store.reindex_feed().await.unwrap(), 0);
    assert_eq!(names(store, q("ingénieure")).await.len(), 1);

    // Only a local posting missing (every received one indexed): found and indexed too.
    let id = Uuid::now_v7();
    let url = format!("https://rh.grenoble.example/postings/{id}");
    let doc = json!({
        "id": url, "type": "Posting", "postingKind": "vacancy", "status": "published",
        "attributedTo": "https://rh.grenoble.example/actor", "version": 1,
        "published": "2026-11-10T10:00:00Z", "visibility": "federation",
        "name": "Juriste marchés publics", "locations": [{"commune": "38185"}],
    });
    let audit = AuditRecord::new("test", "posting", "x");
    store
        .create_posting(id, "vacancy", &doc, &audit)
        .await
        .unwrap();
    store
        .update_posting(id, 1, &doc, PostingStatus::Published, None, &audit)
        .await
        .unwrap();
    assert_eq!(names(store, q("juriste")).await.len(), 1);
    let local = "(SELECT doc_id FROM feed_postings WHERE local_id IS NOT NULL)";
    let delete_terms = format!("DELETE FROM feed_terms WHERE doc_id IN {local}");
    let delete_fts = format!("DELETE FROM feed_fts WHERE rowid IN {local}");
    let mut stmts = vec![delete_terms.as_str()];
    if db.name == "sqlite" {
        stmts.push(&delete_fts);
    }
    stmts.push("DELETE FROM feed_postings WHERE local_id IS NOT NULL");
    raw(db, &stmts).await;
    assert!(names(store, q("juriste")).await.is_empty());
    assert_eq!(store.reindex_feed().await.unwrap(), 1);
    assert_eq!(store.reindex_feed().await.unwrap(), 0);
    assert_eq!(names(store, q("juriste")).await.len(), 1);
}

/// Words combined with multi-valued filters (which the full-text index intersects
/// through its facet tokens), on every plan: values listed first or checked row by row
/// (`dense_terms` 0), sorted by date or by relevance, with total and facets.
async fn words_with_facet_filters(store: &Store, _db: &TestDb) {
    seed(store).await;
    let vr = "Ingénieur voirie et réseaux (H/F)";
    let media = "Responsable de la médiathèque";
    let anim = "Animatrice périscolaire";
    let with = |text: &str, edit: &dyn Fn(&mut FeedFilter)| {
        let mut f = q(text);
        edit(&mut f);
        f
    };
    let cases: Vec<(FeedFilter, Vec<&str>)> = vec![
        (
            with("médiathèque", &|f| f.departements = vec!["38".into()]),
            vec![media],
        ),
        (
            with("médiathèque", &|f| f.departements = vec!["69".into()]),
            vec![anim],
        ),
        (
            with("médiathèque", &|f| {
                f.departements = vec!["38".into(), "69".into()]
            }),
            vec![anim, media],
        ),
        (
            with("médiathèque", &|f| f.departements = vec!["75".into()]),
            vec![],
        ),
        (
            with("médiathèque", &|f| f.regions = vec!["84".into()]),
            vec![anim, media],
        ),
        (
            with("médiathèque", &|f| f.categories = vec!["C".into()]),
            vec![anim],
        ),
        (
            with("médiathèque", &|f| f.filieres = vec!["culturelle".into()]),
            vec![media],
        ),
        (
            with("ingénieur", &|f| {
                f.cadres = vec!["Ingénieurs territoriaux".into()]
            }),
            vec![vr],
        ),
        (
            with("ingénieur", &|f| {
                f.cadres = vec!["Attachés territoriaux".into()]
            }),
            vec![],
        ),
        (
            with("ingénieur", &|f| f.communes = vec!["38185".into()]),
            vec![vr],
        ),
        (
            with("ingénieur", &|f| f.metiers = vec!["f1106".into()]),
            vec![vr],
        ),
        (
            with("enfants", &|f| {
                f.metiers = vec!["G1203".into(), "F1106".into()]
            }),
            vec![anim],
        ),
        // A métier label is not a token: matched by substring as without words.
        (
            with("médiathèque", &|f| {
                f.metiers = vec!["bibliotheque".into()]
            }),
            vec![media],
        ),
        (
            with("médiathèque", &|f| {
                f.departements = vec!["38".into(), "69".into()];
                f.categories = vec!["B".into()];
            }),
            vec![media],
        ),
        (
            with("médiathèque -responsable", &|f| {
                f.regions = vec!["84".into()]
            }),
            vec![anim],
        ),
    ];
    for (filter, want) in cases {
        for dense_terms in [0, FeedBounds::default().dense_terms] {
            for sort in [FeedSort::Recent, FeedSort::Relevance] {
                let page = store
                    .feed_search(&FeedQuery {
                        filter: filter.clone(),
                        sort,
                        limit: 100,
                        total: true,
                        facets: true,
                        bounds: FeedBounds {
                            dense_terms,
                            ..FeedBounds::default()
                        },
                        ..FeedQuery::default()
                    })
                    .await
                    .unwrap();
                let mut got: Vec<String> = page.items.into_iter().map(|i| i.name).collect();
                got.sort();
                assert_eq!(got, want, "{filter:?}, dense_terms {dense_terms}, {sort:?}");
                assert_eq!(page.total, Some(want.len() as i64), "{filter:?}");
            }
        }
    }
}

/// A feed indexed before its full-text index held facet tokens (migration 0007) gets
/// them: on SQLite the node rebuilds the full-text rows at start, keeping each
/// posting's `doc_id`; on PostgreSQL the migration adds them to each row.
async fn facet_tokens_reach_an_older_index(store: &Store, db: &TestDb) {
    seed(store).await;
    let media = "Responsable de la médiathèque";
    let in_38 = || {
        let mut f = q("médiathèque");
        f.departements = vec!["38".into()];
        f
    };
    let ids = |page: FeedPage| page.items.iter().map(|i| i.doc_id).collect::<Vec<_>>();
    let all = FeedQuery {
        limit: 100,
        ..FeedQuery::default()
    };
    let before = ids(store.feed_search(&all).await.unwrap());
    let migration = include_str!("../../migrations/sqlite/0007_feed_facet_tokens.sql");
    if db.name == "sqlite" {
        // The table as migration 0006 left it, then migration 0007 itself.
        raw(
            db,
            &[
                "DROP TABLE feed_fts_pending",
                "DROP TABLE feed_fts",
                "CREATE VIRTUAL TABLE feed_fts USING fts5 (name, body, content = '', \
                 contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 2')",
                migration,
            ],
        )
        .await;
        // Nothing is found until the node has rebuilt the rows.
        assert!(names(store, in_38()).await.is_empty());
    } else {
        // The tokens are lexemes without weight (D): strip them, then migrate.
        raw(
            db,
            &["UPDATE feed_postings SET tsv = ts_filter(tsv, '{a,b}')"],
        )
        .await;
        assert!(names(store, in_38()).await.is_empty());
        raw(
            db,
            &[include_str!(
                "../../migrations/postgres/0007_feed_facet_tokens.sql"
            )],
        )
        .await;
    }
    assert_eq!(store.reindex_feed().await.unwrap(), 0);
    assert_eq!(names(store, in_38()).await, [media]);
    assert_eq!(ids(store.feed_search(&all).await.unwrap()), before);
    assert_eq!(names(store, q("ingénieure")).await.len(), 1);
}

/// Large feeds: `total` counts up to a bound and facets are counted over the most recently
/// indexed matches, both flagged; below the bounds everything is exact.
async fn bounded_counts(store: &Store, _db: &TestDb) {
    // doc ids 1..=5: vacancy ×3 (38185, 38053, 69123), immersion (69123), training (75056).
    seed(store).await;
    let search = |filter: FeedFilter, total_max: i64, facet_sample: i64| {
        let query = FeedQuery {
            filter,
            limit: 10,
            facets: true,
            total: true,
            bounds: FeedBounds {
                total_max,
                facet_sample,
                ..FeedBounds::default()
            },
            ..FeedQuery::default()
        };
        async move { store.feed_search(&query).await.unwrap() }
    };
    let count = |page: &FeedPage, facet: Facet, value: &str| {
        page.facets
            .iter()
            .find(|c| c.facet == facet && c.value == value)
            .map(|c| c.count)
    };

    // Within the bounds (also exactly at them): exact.
    for (total_max, sample) in [(5, 5), (10_000, 2_000)] {
        let page = search(FeedFilter::default(), total_max, sample).await;
        assert_eq!(page.total, Some(5));
        assert!(page.total_exact && page.facets_exact);
        assert_eq!(count(&page, Facet::Kind, "vacancy"), Some(3));
        assert_eq!(count(&page, Facet::Departement, "69"), Some(2));
        assert_eq!(page.items.len(), 5, "the page itself is never cut short");
    }

    // Beyond: "more than 3", and facets over a sample of 2 matches (which ones is up to
    // the database): each count is at most the exact one, and one value per posting.
    let exact = search(FeedFilter::default(), 10, 10).await;
    let sum = |page: &FeedPage, facet: Facet| -> i64 {
        page.facets
            .iter()
            .filter(|c| c.facet == facet)
            .map(|c| c.count)
            .sum()
    };
    let within = |page: &FeedPage| {
        for c in &page.facets {
            let all = count(&exact, c.facet, &c.value).unwrap_or(0);
            assert!(c.count <= all, "{c:?} over {all}");
        }
    };
    let page = search(FeedFilter::default(), 3, 2).await;
    assert_eq!(page.total, Some(3));
    assert!(!page.total_exact);
    assert!(!page.facets_exact);
    assert_eq!(page.items.len(), 5, "the page itself is never cut short");
    assert_eq!(sum(&page, Facet::Kind), 2);
    assert_eq!(sum(&page, Facet::Origin), 2);
    assert_eq!(sum(&page, Facet::Departement), 2);
    within(&page);

    // A sample at least as large as the bound of the total counts the total too (one
    // scan, not two): the same answers as a separate count, under, at and over the bound.
    for (total_max, sample, total, total_exact, facets_exact) in [
        (3, 4, 3, false, false),
        (4, 5, 4, false, true),
        (5, 6, 5, true, true),
        (6, 6, 5, true, true),
        (4, 3, 4, false, false),
    ] {
        let page = search(FeedFilter::default(), total_max, sample).await;
        assert_eq!(
            (page.total, page.total_exact, page.facets_exact),
            (Some(total), total_exact, facets_exact),
            "total counted up to {total_max}, facets over {sample}"
        );
    }

    // A restricted facet is counted over its own (wider) matches: 3 vacancies fit a
    // sample of 3, but the kind facet counts all 5 postings, which do not.
    let vacancies = FeedFilter {
        kinds: vec!["vacancy".into()],
        ..FeedFilter::default()
    };
    let page = search(vacancies.clone(), 3, 3).await;
    assert_eq!(page.total, Some(3));
    assert!(page.total_exact);
    assert!(!page.facets_exact);
    assert_eq!(count(&page, Facet::Categorie, "A"), Some(1));
    assert_eq!(count(&page, Facet::Categorie, "B"), Some(1));
    assert_eq!(count(&page, Facet::Categorie, "C"), Some(1));
    assert_eq!(sum(&page, Facet::Kind), 3);
    within(&page);
    let page = search(vacancies, 3, 5).await;
    assert!(page.total_exact && page.facets_exact);
    assert_eq!(count(&page, Facet::Kind, "vacancy"), Some(3));
    assert_eq!(count(&page, Facet::Kind, "immersion_offer"), Some(1));

    // With full text: the same bounds apply to the text matches.
    let page = search(q("mediatheque"), 1, 1).await;
    assert_eq!(page.total, Some(1));
    assert!(!page.total_exact && !page.facets_exact);
    assert_eq!(page.items.len(), 2);
    assert_eq!(sum(&page, Facet::Categorie), 1);
    let page = search(q("mediatheque"), 2, 2).await;
    assert_eq!(page.total, Some(2));
    assert!(page.total_exact && page.facets_exact);
    assert_eq!(count(&page, Facet::Categorie, "B"), Some(1));
    assert_eq!(count(&page, Facet::Categorie, "C"), Some(1));

    // SQLite checks frequent filter values posting by posting (a plan choice): the same
    // results and counts whichever way.
    let filter = FeedFilter {
        categories: vec!["A".into(), "C".into()],
        regions: vec!["84".into()],
        ..FeedFilter::default()
    };
    let mut answers = Vec::new();
    for dense_terms in [0, 5_000] {
        let query = FeedQuery {
            filter: filter.clone(),
            limit: 10,
            facets: true,
            total: true,
            bounds: FeedBounds {
                dense_terms,
                ..FeedBounds::default()
            },
            ..FeedQuery::default()
        };
        let page = store.feed_search(&query).await.unwrap();
        let names: Vec<String> = page.items.iter().map(|i| i.name.clone()).collect();
        answers.push((names, page.total, page.facets));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].1, Some(2));

    // Without facets or total: nothing is counted, and nothing is flagged approximate.
    let page = store
        .feed_search(&FeedQuery {
            limit: 10,
            ..FeedQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, None);
    assert!(page.facets.is_empty() && page.facets_exact);
}

async fn relevance_ranks_the_newest_matches(store: &Store, _db: &TestDb) {
    // « médiathèque »: doc 2 by its title (the best match), doc 3 (newer) by its summary.
    seed(store).await;
    let media = "Responsable de la médiathèque";
    let anim = "Animatrice périscolaire";
    let search = |filter: FeedFilter, rank_max: i64, limit: u32, cursor: Option<FeedCursor>| {
        let query = FeedQuery {
            filter,
            sort: FeedSort::Relevance,
            cursor,
            limit,
            total: true,
            facets: true,
            bounds: FeedBounds {
                rank_max,
                ..FeedBounds::default()
            },
        };
        async move { store.feed_search(&query).await.unwrap() }
    };
    let titles =
        |page: &FeedPage| -> Vec<String> { page.items.iter().map(|i| i.name.clone()).collect() };

    // All matches ranked (the default bound, or exactly as many as match): best first.
    for rank_max in [RANK_MAX, 2] {
        let page = search(q("médiathèque"), rank_max, 10, None).await;
        assert_eq!(titles(&page), [media, anim]);
        assert_eq!((page.total, page.total_exact), (Some(2), true));
    }
    // Only the newest match ranked: the older one follows it, whatever its score.
    let page = search(q("médiathèque"), 1, 10, None).await;
    assert_eq!(titles(&page), [anim, media]);
    assert_eq!((page.total, page.total_exact), (Some(2), true));
    // Paging by offset crosses from the ranked matches to the older ones.
    let first = search(q("médiathèque"), 1, 1, None).await;
    assert_eq!(titles(&first), [anim]);
    assert_eq!(first.next, Some(FeedCursor::Offset(1)));
    let second = search(q("médiathèque"), 1, 1, first.next.clone()).await;
    assert_eq!(titles(&second), [media]);
    assert_eq!(second.next, None);
    let beyond = search(q("médiathèque"), 1, 1, Some(FeedCursor::Offset(5))).await;
    assert!(beyond.items.is_empty());

    // Filters and exclusions with text stay exact, ranked or not.
    for rank_max in [RANK_MAX, 1] {
        let mut f = q("médiathèque");
        f.categories = vec!["B".into()];
        let page = search(f, rank_max, 10, None).await;
        assert_eq!(titles(&page), [media]);
        assert_eq!(page.total, Some(1));
        let page = search(q("médiathèque -responsable"), rank_max, 10, None).await;
        assert_eq!(titles(&page), [anim]);
        let mut f = q("médiathèque");
        f.kinds = vec!["vacancy".into()];
        f.regions = vec!["84".into()];
        let page = search(f, rank_max, 10, None).await;
        let mut got = titles(&page);
        got.sort();
        assert_eq!(got, [anim, media]);
        assert_eq!(page.total, Some(2));
        assert!(
            page.facets
                .iter()
                .any(|c| c.facet == Facet::Departement && c.value == "69" && c.count == 1)
        );
        let mut f = q("ingénieur");
        f.departements = vec!["69".into()];
        assert!(search(f, rank_max, 10, None).await.items.is_empty());
    }
}

/// The node writes PostgreSQL's `tsvector` and `tsquery` itself (`search::pg_tsvector_of`,
/// `TextQuery::tsquery`): they must be what the server's `french` configuration makes of
/// the same folded text, which rows indexed before (and any tool reading `tsv`) used.
#[tokio::test]
async fn feed_tsvector_is_the_servers_french_analysis_postgres() {
    use passerelle_node::domain::search::{self, IndexEntry};
    use sqlx::Connection as _;
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    // Every posting example of the specification: its title and its other text (every
    // string but identifiers and links: PostgreSQL's parser reads some of those, such as
    // `7e5f` in a UUID, as a number in scientific notation and a word; the node indexes
    // such a word whole).
    let mut cases: Vec<(String, String, String)> = Vec::new();
    let examples = crate::support::workspace_root().join("spec/examples");
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if !file.starts_with("posting-") || !file.ends_with(".json") {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        fn strings(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::String(s) if !s.contains("://") && !s.starts_with("urn:") => {
                    out.push(s.clone())
                }
                Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
                Value::Object(o) => o
                    .iter()
                    .filter(|(k, _)| !["id", "proof", "published", "updated"].contains(&k.as_str()))
                    .for_each(|(_, v)| strings(v, out)),
                _ => {}
            }
        }
        let mut body = Vec::new();
        strings(&doc, &mut body);
        let tokens = IndexEntry::from_document(&doc).facet_tokens();
        cases.push((
            doc["name"].as_str().unwrap().to_owned(),
            body.join("\n"),
            tokens,
        ));
    }
    assert!(
        cases.len() >= 8,
        "posting examples in {}",
        examples.display()
    );
    // Numbers and words with digits (not stemmed), repeated words, stop words that only
    // PostgreSQL's list had, a word too long to index, letters beyond French.
    let repeated = vec!["agent"; 300].join(" ");
    // Not indexed (2,048 bytes and more, whatever its stem), not stemmed (over 1,000).
    let long = format!("{}ements {}ements", "x".repeat(2043), "y".repeat(1000));
    cases.push((
        "Ingénieur·e F1106 (H/F) 2026 — 1er poste".into(),
        format!(
            "Ayant, ayante et ayants droit ; étant, étants. B2B, 3D, COVID19, 35h, 1607 heures. \
             {long} Œuvres, cœur, ex æquo, España, Straße, København, αβγ, m² et 25°. {repeated} fin"
        ),
        "categoriez41 departementz3338".into(),
    ));
    cases.push((String::new(), String::new(), String::new()));
    for (name, body, tokens) in &cases {
        let ours = search::pg_tsvector_of(name, body, tokens);
        let (same, theirs): (bool, String) = sqlx::query_as(
            "SELECT CAST($1 AS tsvector) = t, CAST(t AS text) FROM (SELECT \
             setweight(to_tsvector('french', $2), 'A') || setweight(to_tsvector('french', $3), 'B') \
             || array_to_tsvector(string_to_array($4, ' ')) AS t) s",
        )
        .bind(&ours)
        .bind(search::folded(name))
        .bind(search::folded(body))
        .bind(tokens)
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert!(same, "{name}:\nnode:   {ours}\nserver: {theirs}");
    }
    // Queries: each word alone, and all at once.
    let words = "ingénieures médiathèques F1106 2026 b2b cœur espaces-verts 1er l'agent";
    let mut queries: Vec<String> = words.split(' ').map(str::to_owned).collect();
    queries.push(words.to_owned());
    // A word too long to be indexed is left out, as `to_tsquery` does.
    queries.push(format!("ingénieures {}", "x".repeat(2048)));
    queries.push("x".repeat(2048));
    for q in queries {
        let parsed = TextQuery::parse(&q).unwrap();
        let ours = TextQuery::tsquery(&parsed.include, "&");
        let folded: Vec<String> = parsed.include.iter().map(|t| t.word.clone()).collect();
        let (same, theirs): (bool, String) = sqlx::query_as(
            "SELECT CAST($1 AS tsquery) = to_tsquery('french', $2), CAST(to_tsquery('french', $2) AS text)",
        )
        .bind(&ours)
        .bind(folded.join(" & "))
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert!(same, "{q}: node {ours}, server {theirs}");
    }
    drop(c);
    db.cleanup().await;
}

/// `SELECT COUNT(*)` of `sql`'s rows, read directly from the database.
async fn count(db: &TestDb, sql: &str) -> i64 {
    use sqlx::Connection as _;
    let sql = format!("SELECT COUNT(*) FROM ({sql}) AS counted");
    if db.name == "sqlite" {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

/// Every `feed_terms` row.
async fn term_rows(db: &TestDb) -> i64 {
    count(db, "SELECT 1 FROM feed_terms").await
}

/// `feed_terms` rows whose posting is not in the feed.
async fn orphan_term_rows(db: &TestDb) -> i64 {
    count(
        db,
        "SELECT 1 FROM feed_terms t WHERE NOT EXISTS \
         (SELECT 1 FROM feed_postings f WHERE f.doc_id = t.doc_id)",
    )
    .await
}

async fn raw(db: &TestDb, stmts: &[&str]) {
    use sqlx::Connection as _;
    if db.name == "sqlite" {
        let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        for s in stmts {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&mut c)
                .await
                .unwrap();
        }
    } else {
        let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
        for s in stmts {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.to_string()))
                .execute(&mut c)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn feed_full_text_is_french() {
    on_each_backend!(full_text_is_french);
}

#[tokio::test]
async fn feed_filters_and_facets() {
    on_each_backend!(filters_and_facets);
}

#[tokio::test]
async fn feed_sorting_and_paging() {
    on_each_backend!(sorting_and_paging);
}

#[tokio::test]
async fn feed_follows_versions_and_deletes() {
    on_each_backend!(index_follows_versions_and_deletes);
}

#[tokio::test]
async fn feed_local_postings() {
    on_each_backend!(local_postings_join_the_feed_when_published);
}

#[tokio::test]
async fn feed_saved_searches() {
    on_each_backend!(saved_searches_signal_new_matches);
}

#[tokio::test]
async fn feed_bounded_counts() {
    on_each_backend!(bounded_counts);
}

#[tokio::test]
async fn feed_relevance_is_bounded() {
    on_each_backend!(relevance_ranks_the_newest_matches);
}

#[tokio::test]
async fn feed_words_with_facet_filters() {
    on_each_backend!(words_with_facet_filters);
}

#[tokio::test]
async fn feed_facet_tokens_reach_an_older_index() {
    on_each_backend!(facet_tokens_reach_an_older_index);
}

#[tokio::test]
async fn feed_reindex() {
    on_each_backend!(reindex_restores_missing_rows);
}

async fn delivery_health_per_inbox(store: &Store, db: &TestDb) {
    assert!(store.delivery_health().await.unwrap().is_empty());
    raw(
        db,
        &[
            "INSERT INTO outbox (activity_id, activity_type, object_id, public, document, created_at) \
             VALUES ('https://a.example/activities/1', 'Create', 'https://a.example/postings/1', FALSE, '{}', 1000)",
            "INSERT INTO deliveries (outbox_seq, inbox_url, state, attempts, created_at, next_attempt_at) \
             SELECT seq, 'https://b.example/inbox', 'delivered', 1, 1000, 1000 FROM outbox",
            "INSERT INTO deliveries (outbox_seq, inbox_url, state, attempts, created_at, next_attempt_at) \
             SELECT seq, 'https://c.example/inbox', 'pending', 3, 1000, 1000 FROM outbox",
            "INSERT INTO delivery_targets (inbox_url, consecutive_failures, circuit_open_until, last_success_at, last_failure_at, last_error) \
             VALUES ('https://c.example/inbox', 3, 5000, NULL, 4000, 'HTTP 503')",
        ],
    )
    .await;
    let h = store.delivery_health().await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(
        (h[0].inbox_url.as_str(), h[0].delivered, h[0].pending),
        ("https://b.example/inbox", 1, 0)
    );
    assert_eq!((h[1].pending, h[1].consecutive_failures), (1, 3));
    assert_eq!(h[1].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(h[1].circuit_open_until_ms, Some(5000));
    // The history of the object lists the activity sent about it.
    let history = store
        .object_history("https://a.example/postings/1")
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].direction, history[0].activity_type.as_str()),
        ("sent", "Create")
    );
}

#[tokio::test]
async fn console_delivery_health() {
    on_each_backend!(delivery_health_per_inbox);
}
