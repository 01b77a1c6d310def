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
