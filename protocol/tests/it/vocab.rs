//! The vocabulary: typed messages, dispatch, validation, round trips, discovery documents,
//! and the spec examples (`spec/examples/`) against their schemas (`spec/schemas/`).

use passerelle_protocol::ids::{ActorId, KeyId, Siren, UrlPolicy};
use passerelle_protocol::keys::SigningKey;
use passerelle_protocol::vocab::{
    self, Jrd, Message, Multikey, NodeInfo, NodeInfoLinks, NodeInfoUsage, ParseError, Rule,
    Validate, ValidationContext,
};
use serde_json::{Value, json};

fn prod() -> ValidationContext {
    ValidationContext::production()
}

/// Asserts that serializing the parsed message gives back the input, field for field.
fn assert_round_trip(input: &Value, message: &Message) {
    let back = message.to_value().unwrap();
    assert_eq!(&back, input, "round trip changed the document");
}

fn grenoble_actor() -> Value {
    let key = SigningKey::from_seed(&[7; 32]).public_key();
    let old = SigningKey::from_seed(&[6; 32]).public_key();
    json!({
        "@context": vocab::context(),
        "id": "https://emploi.grenoble.fr/actor",
        "type": "Organization",
        "preferredUsername": "grenoble",
        "name": "Ville de Grenoble",
        "inbox": "https://emploi.grenoble.fr/inbox",
        "outbox": "https://emploi.grenoble.fr/outbox",
        "followers": "https://emploi.grenoble.fr/followers",
        "following": "https://emploi.grenoble.fr/following",
        "endpoints": {"sharedInbox": "https://emploi.grenoble.fr/inbox"},
        "assertionMethod": [
            {
                "id": "https://emploi.grenoble.fr/actor#key-2025-1",
                "type": "Multikey",
                "controller": "https://emploi.grenoble.fr/actor",
                "publicKeyMultibase": old.to_multikey(),
                "expires": "2026-01-31T00:00:00Z"
            },
            {
                "id": "https://emploi.grenoble.fr/actor#key-2026-1",
                "type": "Multikey",
                "controller": "https://emploi.grenoble.fr/actor",
                "publicKeyMultibase": key.to_multikey()
            }
        ],
        "collectivite": {
            "siren": "213801855",
            "kind": "commune",
            "versant": "fpt",
            "commune": "38185",
            "departement": "38",
            "region": "84",
            "epciSiren": "200040715"
        },
        "protocolVersion": "1.0",
        "icon": {"type": "Image", "url": "https://emploi.grenoble.fr/logo.png"}
    })
}

#[test]
fn organization_parses_validates_and_round_trips() {
    let doc = grenoble_actor();
    let msg = Message::from_value(doc.clone()).unwrap();
    assert_eq!(msg.type_name(), "Organization");
    msg.validate(&prod()).unwrap();
    assert_round_trip(&doc, &msg);
    let Message::Organization(org) = &msg else {
        panic!("not an Organization")
    };
    // The unknown property is kept, the keys are read, the expired one is not valid now.
    assert!(org.extra.contains_key("icon"));
    let key_id: KeyId = "https://emploi.grenoble.fr/actor#key-2026-1"
        .parse()
        .unwrap();
    assert_eq!(
        org.key(&key_id).unwrap().public_key().unwrap(),
        SigningKey::from_seed(&[7; 32]).public_key()
    );
    let now = time::macros::datetime!(2026-11-23 12:00 UTC);
    let valid: Vec<_> = org.keys_valid_at(now).map(|k| k.id.to_string()).collect();
    assert_eq!(valid, vec![key_id.to_string()]);
    assert_eq!(org.collectivite.siren.as_str(), "213801855");
}

#[test]
fn organization_problems_are_all_reported() {
    let mut doc = grenoble_actor();
    doc["outbox"] = json!("https://autre.example/outbox");
    doc["assertionMethod"][1]["controller"] = json!("https://autre.example/actor");
    doc["assertionMethod"][1]["publicKeyMultibase"] = json!("zNotAKey");
    doc["@context"] = json!("https://www.w3.org/ns/activitystreams");
    doc["preferredUsername"] = json!("Ville de Grenoble");
    let msg = Message::from_value(doc).unwrap();
    let problems = msg.validate(&prod()).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "/@context",
        "/preferredUsername",
        "/outbox",
        "/assertionMethod/1/controller",
        "/assertionMethod/1/publicKeyMultibase",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
    }
    assert!(problems.any(|r| matches!(r, Rule::OriginMismatch { .. })));
    // Every problem has an English and a French text naming the field.
    for p in problems.iter() {
        assert!(p.to_string().starts_with(&p.path));
        assert!(p.message_fr().contains(&p.path));
    }
}

#[test]
fn organization_with_bad_siren_is_refused_at_parse_time() {
    let mut doc = grenoble_actor();
    doc["collectivite"]["siren"] = json!("213801856");
    let err = Message::from_value(doc).unwrap_err();
    let ParseError::Invalid { path, message, .. } = &err else {
        panic!("unexpected error {err}")
    };
    assert_eq!(path, "collectivite.siren");
    assert!(message.contains("Luhn"), "{message}");
}

#[test]
fn loopback_http_ids_follow_the_policy() {
    let mut doc = grenoble_actor();
    let text = doc
        .to_string()
        .replace("https://emploi.grenoble.fr", "http://127.0.0.1:8081");
    doc = serde_json::from_str(&text).unwrap();
    let msg = Message::from_value(doc).unwrap();
    msg.validate(&ValidationContext::development()).unwrap();
    let problems = msg.validate(&prod()).unwrap_err();
    assert!(problems.any(|r| *r == Rule::PlainHttp));
    // Non-loopback http never parses.
    let text = text.replace("http://127.0.0.1:8081", "http://grenoble.example");
    assert!(Message::from_value(serde_json::from_str(&text).unwrap()).is_err());
    assert!(
        ActorId::parse_with("http://127.0.0.1/actor", UrlPolicy::HttpsOnly).is_err(),
        "HttpsOnly must refuse loopback http"
    );
}

#[test]
fn dispatch_reports_unknown_types_by_name() {
    let err =
        Message::from_value(json!({"type": "Note", "id": "https://a.example/n/1"})).unwrap_err();
    assert!(
        matches!(&err, ParseError::UnknownType { name, .. } if name == "Note"),
        "{err}"
    );
    assert!(err.to_string().contains("\"Note\""));
    assert!(err.message_fr().contains("Note"));
    assert_eq!(
        Message::from_value(json!({"id": "https://a.example/n/1"})).unwrap_err(),
        ParseError::MissingType
    );
    assert!(matches!(
        Message::from_value(json!({"type": ["Create", "Note"]})).unwrap_err(),
        ParseError::TypeNotString { .. }
    ));
    assert!(matches!(
        Message::from_value(json!([1, 2])).unwrap_err(),
        ParseError::NotAnObject { found: "array" }
    ));
    // Remove is an AS2 activity, but not one Passerelle speaks.
    assert!(matches!(
        Message::from_slice(br#"{"type":"Remove"}"#).unwrap_err(),
        ParseError::UnknownType { .. }
    ));
}

fn activity(kind: &str, object: Value) -> Value {
    json!({
        "@context": vocab::context(),
        "id": "https://emploi.grenoble.fr/activities/0190c5d2-3b4a-7c8d-9e0f-123456789abc",
        "type": kind,
        "actor": "https://emploi.grenoble.fr/actor",
        "object": object,
        "to": ["https://www.isere.fr/actor"],
        "published": "2026-11-23T10:00:00Z"
    })
}

#[test]
fn activities_with_bare_ids_and_embedded_objects() {
    let follow = activity("Follow", json!("https://www.isere.fr/actor"));
    let msg = Message::from_value(follow.clone()).unwrap();
    msg.validate(&prod()).unwrap();
    assert_round_trip(&follow, &msg);

    // Update of the actor itself (key rotation): embedded Organization.
    let update = activity("Update", grenoble_actor());
    let msg = Message::from_value(update.clone()).unwrap();
    msg.validate(&prod()).unwrap();
    assert_round_trip(&update, &msg);
    let Message::Activity(a) = &msg else { panic!() };
    assert!(matches!(
        a.object.embedded(),
        Some(Message::Organization(_))
    ));

    // Undo of an embedded Follow.
    let undo = activity("Undo", follow.clone());
    Message::from_value(undo)
        .unwrap()
        .validate(&prod())
        .unwrap();

    // Create with a bare id is refused: Create carries the object.
    let create = activity(
        "Create",
        json!("https://emploi.grenoble.fr/postings/0190c5d2-3b4a-7c8d-9e0f-123456789abd"),
    );
    let problems = Message::from_value(create)
        .unwrap()
        .validate(&prod())
        .unwrap_err();
    assert!(problems.iter().any(|p| p.path == "/object"));

    // Update of someone else's actor is refused.
    let mut other = grenoble_actor();
    other["id"] = json!("https://www.isere.fr/actor");
    let problems = Message::from_value(activity("Update", other))
        .unwrap()
        .validate(&prod())
        .unwrap_err();
    assert!(problems.any(|r| matches!(r, Rule::ActorMismatch { .. })));

    // An activity id on another origin than its actor, without UUIDv7, without recipients.
    let mut forged = activity("Follow", json!("https://www.isere.fr/actor"));
    forged["id"] = json!("https://pirate.example/activities/1");
    forged.as_object_mut().unwrap().remove("to");
    let problems = Message::from_value(forged)
        .unwrap()
        .validate(&prod())
        .unwrap_err();
    assert!(problems.any(|r| matches!(r, Rule::OriginMismatch { .. })));
    assert!(problems.any(|r| *r == Rule::NotUuidV7));
    assert!(problems.iter().any(|p| p.path == "/to"));

    // An embedded object of unknown type is refused by name, inside the activity.
    let err = Message::from_value(activity("Create", json!({"type": "Note"}))).unwrap_err();
    assert!(err.to_string().contains("\"Note\""), "{err}");
}

#[test]
fn multikey_document() {
    let key = SigningKey::from_seed(&[1; 32]).public_key();
    let mk = Multikey::new("https://ville.example/actor#key-1".parse().unwrap(), &key);
    assert_eq!(mk.controller.as_str(), "https://ville.example/actor");
    let v = serde_json::to_value(&mk).unwrap();
    assert_eq!(v["type"], "Multikey");
    let back: Multikey = serde_json::from_value(v).unwrap();
    assert_eq!(back.public_key().unwrap(), key);
    // A fragment-less key id is refused.
    let bad = json!({"id": "https://ville.example/actor", "type": "Multikey",
        "controller": "https://ville.example/actor", "publicKeyMultibase": key.to_multikey()});
    assert!(serde_json::from_value::<Multikey>(bad).is_err());
}

#[test]
fn webfinger_rfc7033_examples_parse_and_round_trip() {
    let Some(dir) = crate::shared_vectors("webfinger RFC 7033 examples") else {
        return;
    };
    let file = crate::read_json(&dir.join("webfinger/rfc7033-examples.json"));
    let mut seen = 0;
    for example in file["examples"].as_array().unwrap() {
        let Some(jrd_value) = example.get("jrd") else {
            continue;
        };
        let jrd: Jrd = serde_json::from_value(jrd_value.clone())
            .unwrap_or_else(|e| panic!("{}: {e}", example["section"]));
        assert_eq!(&serde_json::to_value(&jrd).unwrap(), jrd_value);
        // The text form parses to the same JRD.
        if let Some(text) = example["jrd_text"].as_str() {
            let from_text: Jrd = serde_json::from_str(text).unwrap();
            assert_eq!(from_text, jrd);
        }
        seen += 1;
    }
    assert!(seen >= 3, "expected the three JRDs of RFC 7033, saw {seen}");
}

#[test]
fn webfinger_for_our_actor() {
    let actor: ActorId = "https://emploi.grenoble.fr/actor".parse().unwrap();
    let jrd = Jrd::for_actor("grenoble", "emploi.grenoble.fr", &actor);
    let v = serde_json::to_value(&jrd).unwrap();
    assert_eq!(v["subject"], "acct:grenoble@emploi.grenoble.fr");
    assert_eq!(v["links"][0]["type"], "application/activity+json");
    let back: Jrd = serde_json::from_value(v).unwrap();
    assert_eq!(back.actor_id(), Some(actor));
    assert_eq!(
        vocab::parse_acct("acct:grenoble@emploi.grenoble.fr"),
        Some(("grenoble", "emploi.grenoble.fr"))
    );
    assert_eq!(vocab::parse_acct("https://emploi.grenoble.fr/actor"), None);
    assert_eq!(vocab::parse_acct("acct:@emploi.grenoble.fr"), None);
}

#[test]
fn nodeinfo_ours_validates_against_the_2_1_schema() {
    let Some(dir) = crate::shared_vectors("NodeInfo 2.1 schema") else {
        return;
    };
    let schema = crate::read_json(&dir.join("nodeinfo/nodeinfo-2.1-schema.json"));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let actor: ActorId = "https://emploi.grenoble.fr/actor".parse().unwrap();
    let siren: Siren = "213801855".parse().unwrap();
    let ours = NodeInfo::passerelle("0.1.0", &actor, &siren, NodeInfoUsage::default());
    let v = serde_json::to_value(&ours).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{v:#}");
    assert_eq!(
        ours.passerelle_protocol_version(),
        Some(passerelle_protocol::PROTOCOL_VERSION)
    );
    // The schema is not a no-op: a bad software name fails it.
    let mut bad = v.clone();
    bad["software"]["name"] = json!("Passerelle Node");
    assert!(!validator.is_valid(&bad));

    // The well-known document.
    let links = NodeInfoLinks::v21("https://emploi.grenoble.fr/nodeinfo/2.1");
    let lv = serde_json::to_value(&links).unwrap();
    assert_eq!(
        lv["links"][0]["rel"],
        "http://nodeinfo.diaspora.software/ns/schema/2.1"
    );
    let wild: NodeInfoLinks = serde_json::from_value(crate::read_json(
        &dir.join("nodeinfo/wildebeest-well-known-nodeinfo.json"),
    ))
    .unwrap();
    assert!(wild.href_21().is_some());
}

#[test]
fn nodeinfo_peers_parse() {
    let Some(dir) = crate::shared_vectors("NodeInfo documents") else {
        return;
    };
    // Wildebeest omits `services` (schema-invalid, tolerated).
    let wild: NodeInfo = serde_json::from_value(crate::read_json(
        &dir.join("nodeinfo/wildebeest-nodeinfo21.json"),
    ))
    .unwrap();
    assert_eq!(wild.software.name, "wildebeest");
    assert!(wild.services.inbound.is_empty());
    assert_eq!(wild.usage.users.total, Some(1));
    let example: NodeInfo = serde_json::from_value(crate::read_json(
        &dir.join("nodeinfo/nodeinfo-2.1-example.json"),
    ))
    .unwrap();
    assert_eq!(example.services.outbound, vec!["facebook", "twitter"]);
    assert_eq!(example.usage.local_posts, Some(500));
}

#[test]
fn embedded_objects_validate_through_the_trait() {
    // `Validate::validate` on an embedded object does not require @context.
    let mut doc = grenoble_actor();
    doc.as_object_mut().unwrap().remove("@context");
    let Message::Organization(org) = Message::from_value(doc).unwrap() else {
        panic!()
    };
    org.validate(&prod()).unwrap();
}

// ---------------------------------------------------------------------------------------
// Spec examples (`spec/examples/`): every example parses, validates, round-trips; every
// negative example (`spec/examples/invalid/`, outcomes in `expected.json`) is refused with
// the expected rule at the expected path.

fn examples_dir() -> std::path::PathBuf {
    crate::workspace_root().join("spec/examples")
}

fn json_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn spec_examples_parse_validate_and_round_trip() {
    let files = json_files(&examples_dir());
    assert!(
        files.len() >= 8,
        "expected the spec examples, found {}",
        files.len()
    );
    let mut kinds = std::collections::BTreeSet::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc = crate::read_json(path);
        let msg = Message::from_value(doc.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Err(problems) = msg.validate(&prod()) {
            panic!("{name}: {problems}");
        }
        assert_eq!(
            msg.to_value().unwrap(),
            doc,
            "{name}: round trip changed the document"
        );
        if let Message::Posting(p) = &msg {
            kinds.insert(p.posting_kind().as_str());
        }
    }
    for kind in vocab::PostingKind::ALL {
        assert!(
            kinds.contains(kind.as_str()),
            "no example of posting kind {}",
            kind.as_str()
        );
    }
}

#[test]
fn spec_negative_examples_are_refused_with_the_expected_rule() {
    let dir = examples_dir().join("invalid");
    let expected = crate::read_json(&dir.join("expected.json"));
    let expected = expected.as_object().unwrap();
    let files: Vec<_> = json_files(&dir)
        .into_iter()
        .filter(|p| !p.ends_with("expected.json"))
        .collect();
    assert_eq!(
        files.len(),
        expected.len(),
        "every negative example has an expectation"
    );
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let want = expected
            .get(&name)
            .unwrap_or_else(|| panic!("{name}: no expectation"));
        let result = Message::from_value(crate::read_json(&path));
        match want["outcome"].as_str().unwrap() {
            "parse_error" => {
                let err = result.err().unwrap_or_else(|| panic!("{name}: parsed"));
                let ParseError::Invalid { path: at, .. } = &err else {
                    panic!("{name}: unexpected error {err}")
                };
                assert_eq!(at, want["path"].as_str().unwrap(), "{name}: {err}");
                assert!(!err.message_fr().is_empty());
            }
            "invalid" => {
                let msg = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                // What a receiver runs: the document check, then the message's rules.
                let problems = vocab::check_no_nul(&crate::read_json(&path))
                    .and_then(|()| msg.validate(&prod()))
                    .err()
                    .unwrap_or_else(|| panic!("{name}: accepted"));
                for p in want["problems"].as_array().unwrap() {
                    let (at, rule) = (p["path"].as_str().unwrap(), p["rule"].as_str().unwrap());
                    assert!(
                        problems
                            .iter()
                            .any(|x| x.path == at && x.rule.code() == rule),
                        "{name}: expected {rule} at {at}, got {problems}"
                    );
                }
            }
            "unknown_type" => {
                let err = result.err().unwrap_or_else(|| panic!("{name}: parsed"));
                assert!(
                    matches!(&err, ParseError::UnknownType { name: n, .. } if n == want["name"].as_str().unwrap()),
                    "{name}: {err}"
                );
            }
            other => panic!("{name}: unknown outcome {other}"),
        }
    }
}

#[test]
fn posting_validation_reports_every_problem_at_once() {
    let mut doc = crate::read_json(&examples_dir().join("posting-mad-offer.json"));
    doc["body"]["durationMonths"] = json!(48);
    doc["body"]["quotitePct"] = json!(120);
    doc["dates"]["end"] = json!("2027-01-01");
    doc.as_object_mut().unwrap().remove("contact");
    let problems = Message::from_value(doc)
        .unwrap()
        .validate(&prod())
        .unwrap_err();
    let codes: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.path.as_str(), p.rule.code()))
        .collect();
    for want in [
        ("/body/durationMonths", "mad_too_long"),
        ("/body/quotitePct", "percentage"),
        ("/dates/end", "date_order"),
        ("/contact", "required"),
    ] {
        assert!(codes.contains(&want), "{want:?} not in {codes:?}");
    }
    let mad = problems
        .iter()
        .find(|p| p.rule.code() == "mad_too_long")
        .unwrap();
    assert!(
        mad.message_fr().contains("ne peut excéder 36 mois"),
        "{}",
        mad.message_fr()
    );
    assert!(mad.to_string().contains("48"), "{mad}");
}

#[test]
fn posting_kind_and_body_must_match() {
    // A vacancy body under postingKind mad_offer: the MAD body ignores vacancy fields
    // (kept as unknown), and the MAD rules then report what is missing.
    let mut doc = crate::read_json(&examples_dir().join("posting-vacancy.json"));
    doc["postingKind"] = json!("mad_offer");
    let msg = Message::from_value(doc.clone()).unwrap();
    let problems = msg.validate(&prod()).unwrap_err();
    assert!(
        problems.iter().any(|p| p.path == "/body/quotitePct"),
        "{problems}"
    );
    // Round trip still keeps every field.
    assert_eq!(msg.to_value().unwrap(), doc);
    // A body that is not an object is refused at parse time.
    doc["body"] = json!("n/a");
    assert!(Message::from_value(doc).is_err());
}

#[test]
fn create_posting_activity() {
    let posting = crate::read_json(&examples_dir().join("posting-vacancy.json"));
    let mut object = posting.clone();
    object.as_object_mut().unwrap().remove("@context");
    let create = json!({
        "@context": vocab::context(),
        "id": "https://emploi.grenoble.fr/activities/019aa1b2-3c4d-7e5f-8a6b-000000000001",
        "type": "Create",
        "actor": "https://emploi.grenoble.fr/actor",
        "object": object,
        "to": ["https://emploi.grenoble.fr/followers"]
    });
    let msg = Message::from_value(create.clone()).unwrap();
    msg.validate(&prod()).unwrap();
    assert_eq!(msg.to_value().unwrap(), create);
    // Creating another node's posting is refused.
    let mut forged = create.clone();
    forged["object"]["attributedTo"] = json!("https://passerelle.isere.fr/actor");
    let problems = Message::from_value(forged)
        .unwrap()
        .validate(&prod())
        .unwrap_err();
    assert!(
        problems.any(|r| matches!(r, Rule::ActorMismatch { .. })),
        "{problems}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.path == "/object/id" && p.rule.code() == "origin_mismatch"),
        "{problems}"
    );
    // A career offer must not travel in a public activity.
    let mut career = crate::read_json(&examples_dir().join("posting-career-offer.json"));
    career.as_object_mut().unwrap().remove("@context");
    let offer = json!({
        "@context": vocab::context(),
        "id": "https://passerelle.isere.fr/activities/019aa1b2-3c4d-7e5f-8a6b-000000000002",
        "type": "Offer",
        "actor": "https://passerelle.isere.fr/actor",
        "object": career,
        "to": [vocab::PUBLIC]
    });
    let problems = Message::from_value(offer)
        .unwrap()
        .validate(&prod())
        .unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.path == "/to" && p.rule.code() == "addressing"),
        "{problems}"
    );
}

#[test]
fn spec_discovery_examples() {
    let dir = examples_dir().join("discovery");
    let wf = crate::read_json(&dir.join("webfinger.json"));
    let jrd: Jrd = serde_json::from_value(wf.clone()).unwrap();
    assert_eq!(serde_json::to_value(&jrd).unwrap(), wf);
    assert_eq!(
        jrd.actor_id().unwrap().as_str(),
        "https://emploi.grenoble.fr/actor"
    );
    let ni = crate::read_json(&dir.join("nodeinfo.json"));
    let parsed: NodeInfo = serde_json::from_value(ni.clone()).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), ni);
    assert_eq!(parsed.passerelle_protocol_version(), Some("1.0"));
    let links: NodeInfoLinks =
        serde_json::from_value(crate::read_json(&dir.join("nodeinfo-well-known.json"))).unwrap();
    assert!(links.href_21().unwrap().ends_with("/nodeinfo/2.1"));
    let Some(shared) = crate::shared_vectors("NodeInfo 2.1 schema (spec example)") else {
        return;
    };
    let schema = crate::read_json(&shared.join("nodeinfo/nodeinfo-2.1-schema.json"));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&ni).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

// ---------------------------------------------------------------------------------------
// JSON Schemas (`spec/schemas/`) and the JSON-LD context (`spec/context/`).

fn schema_for(type_name: &str) -> jsonschema::Validator {
    let name = if vocab::ActivityType::from_name(type_name).is_some() {
        "Activity"
    } else {
        type_name
    };
    let path = crate::workspace_root().join(format!("spec/schemas/{name}.schema.json"));
    let schema = crate::read_json(&path);
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema_errors(validator: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn spec_examples_validate_against_their_schemas() {
    let mut checked = std::collections::BTreeSet::new();
    for path in json_files(&examples_dir()) {
        let doc = crate::read_json(&path);
        let type_name = doc["type"].as_str().unwrap().to_owned();
        let errors = schema_errors(&schema_for(&type_name), &doc);
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        // Embedded objects validate against their own schema too.
        if let Some(obj) = doc.get("object").filter(|o| o.is_object()) {
            let inner = obj["type"].as_str().unwrap();
            let errors = schema_errors(&schema_for(inner), obj);
            assert!(errors.is_empty(), "{} (object): {errors:?}", path.display());
        }
        checked.insert(type_name);
    }
    for t in [
        "Organization",
        "Posting",
        "AgentProfile",
        "MadRequest",
        "Convention",
        "OrderedCollection",
        "OrderedCollectionPage",
    ] {
        assert!(checked.contains(t), "no example of {t}");
    }
    let wf = crate::read_json(&examples_dir().join("discovery/webfinger.json"));
    assert!(schema_errors(&schema_for("Jrd"), &wf).is_empty());
}

#[test]
fn schemas_refuse_negative_examples_they_can_express() {
    // Rules a schema can state (enums, bounds, required fields, forbidden properties);
    // checksums, origins and date arithmetic are left to `Validate`.
    for name in [
        "posting-unknown-categorie",
        "posting-unknown-kind",
        "posting-vacancy-without-statutory-fields",
        "posting-vacancy-without-motif",
        "posting-career-offer-public",
        "posting-project-mission-quotite-50",
        "posting-project-mission-30-months",
        "posting-mad-offer-40-months",
        "posting-without-passerelle-context",
        "agent-profile-with-name",
        "agent-profile-with-photo-salary-evaluation",
        "agent-profile-public",
        "mad-request-waiver-without-ground",
        "convention-without-notice-clause",
        "outbox-with-items",
        "activity-unknown-type",
    ] {
        let doc = crate::read_json(&examples_dir().join(format!("invalid/{name}.json")));
        let type_name = doc["type"].as_str().unwrap();
        let schema_name = if type_name == "Like" {
            "Follow"
        } else {
            type_name
        };
        assert!(
            !schema_for(schema_name).is_valid(&doc),
            "{name}: the schema accepts it"
        );
    }
}

#[test]
fn context_defines_every_property_of_the_examples() {
    let ctx = crate::read_json(&crate::workspace_root().join("spec/context/passerelle-v1.jsonld"));
    let defined: std::collections::BTreeSet<String> = ctx["@context"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // ActivityStreams 2.0 and Data Integrity terms, defined by the other two contexts.
    let standard = [
        "@context",
        "id",
        "type",
        "actor",
        "object",
        "target",
        "to",
        "cc",
        "published",
        "updated",
        "name",
        "summary",
        "attributedTo",
        "inbox",
        "outbox",
        "followers",
        "following",
        "endpoints",
        "sharedInbox",
        "preferredUsername",
        "orderedItems",
        "totalItems",
        "first",
        "last",
        "next",
        "prev",
        "partOf",
        "proof",
    ];
    fn walk(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.insert(k.clone());
                    walk(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut used = std::collections::BTreeSet::new();
    for path in json_files(&examples_dir()) {
        walk(&crate::read_json(&path), &mut used);
    }
    let missing: Vec<_> = used
        .iter()
        .filter(|k| !defined.contains(*k) && !standard.contains(&k.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "terms missing from passerelle-v1.jsonld: {missing:?}"
    );
}

#[test]
fn constructors_build_valid_messages() {
    use passerelle_protocol::ids::{mint, uuid_v7};
    use passerelle_protocol::vocab::{
        Activity, ActivityType, Collectivite, ObjectRef, Organization,
    };
    let id: ActorId = "https://emploi.grenoble.fr/actor".parse().unwrap();
    let key = SigningKey::from_seed(&[9; 32]).public_key();
    let collectivite: Collectivite = serde_json::from_value(json!({
        "siren": "213801855", "kind": "commune", "versant": "fpt", "commune": "38185"
    }))
    .unwrap();
    let org = Organization::new(
        id.clone(),
        "grenoble",
        "Ville de Grenoble",
        collectivite,
        vec![Multikey::new(
            "https://emploi.grenoble.fr/actor#key-1".parse().unwrap(),
            &key,
        )],
    )
    .unwrap();
    assert_eq!(org.inbox.as_str(), "https://emploi.grenoble.fr/actor/inbox");
    assert_eq!(
        org.endpoints.shared_inbox.as_str(),
        "https://emploi.grenoble.fr/inbox"
    );
    let msg = Message::Organization(Box::new(org.clone()));
    msg.validate(&prod()).unwrap();
    // Serialized, it parses back to the same actor.
    assert_eq!(Message::from_value(msg.to_value().unwrap()).unwrap(), msg);

    let activity_id = mint(
        "https://emploi.grenoble.fr",
        "activities",
        uuid_v7(1_795_000_000_000, [3; 10]),
    )
    .unwrap();
    let update = Activity::new(
        ActivityType::Update,
        activity_id,
        id,
        ObjectRef::Embedded(Box::new(msg)),
        vec!["https://emploi.grenoble.fr/actor/followers".into()],
    );
    let msg = Message::Activity(Box::new(update));
    msg.validate(&prod()).unwrap();
    assert_eq!(msg.to_value().unwrap()["object"]["type"], "Organization");
}

/// Every example message of the spec decodes the same borrowed (`from_value_ref`, what
/// the inbox uses) and owned (`from_value`), and the same when broken.
#[test]
fn borrowed_and_owned_decoding_agree_on_the_spec_examples() {
    let dir = crate::workspace_root().join("spec/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut broken = value.clone();
        if let Some(o) = broken.as_object_mut() {
            o.insert("id".into(), json!(42));
        }
        for v in [value, broken] {
            let borrowed = Message::from_value_ref(&v).map_err(|e| e.to_string());
            let owned = Message::from_value(v).map_err(|e| e.to_string());
            assert_eq!(borrowed, owned, "{}", path.display());
        }
        seen += 1;
    }
    assert!(seen > 20, "only {seen} examples in {}", dir.display());
}

/// U+0000 is valid JSON (`\u0000`) but no message may carry it (§4.2): every string and
/// member name holding it is listed with its pointer.
#[test]
fn nul_characters_are_refused_with_their_pointers() {
    use passerelle_protocol::vocab::{Rule, check_no_nul};
    let text = std::fs::read_to_string(examples_dir().join("posting-vacancy.json")).unwrap();
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    assert!(check_no_nul(&doc).is_ok());
    doc["name"] = json!("Poste\u{0} n° 1");
    doc["employer"]["a/b\u{0}"] = json!(1);
    doc["tags~"] = json!(["ok", "x\u{0}"]);
    // Text that merely spells the escape is not the character.
    doc["summary"] = json!("\\u0000");
    let problems = check_no_nul(&doc).unwrap_err();
    let mut paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(paths, ["/employer", "/name", "/tags~0/1"]);
    assert!(problems.any(|r| *r == Rule::NulCharacter));
    assert_eq!(Rule::NulCharacter.code(), "nul_character");
    // A document full of them is refused with the first twenty.
    let many = Value::Array(vec![json!("\u{0}"); 100]);
    assert_eq!(check_no_nul(&many).unwrap_err().iter().count(), 20);
    assert_eq!(
        check_no_nul(&json!("\u{0}"))
            .unwrap_err()
            .iter()
            .next()
            .unwrap()
            .path,
        "/"
    );
    // Under a name holding it, the pointer shows it escaped (error texts are stored).
    let nested = check_no_nul(&json!({"k\u{0}": {"x": "\u{0}"}})).unwrap_err();
    let paths: Vec<&str> = nested.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["/", "/k\\u0000/x"]);
    assert!(!nested.to_string().contains('\u{0}'), "{nested}");
}
