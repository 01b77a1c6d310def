//! `eddsa-jcs-2022` object proofs against the W3C vc-di-eddsa test vectors, the derived
//! negative cases and the three FEP-8b32 generations (`../shared/vectors`), plus proof sets.

use std::path::Path;

use passerelle_protocol::canonical::canonicalize;
use passerelle_protocol::keys::{PublicKey, SigningKey};
use passerelle_protocol::proof::{self, ContextMode, ProofError, ProofOptions};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim_end().to_owned()
}

fn without(value: &Value, member: &str) -> Value {
    let mut v = value.clone();
    v.as_object_mut().unwrap().shift_remove(member);
    v
}

fn options_from(proof: &Value) -> ProofOptions {
    let created = OffsetDateTime::parse(proof["created"].as_str().unwrap(), &Rfc3339).unwrap();
    let context = if proof.get("@context").is_some() {
        ContextMode::FromDocument
    } else {
        ContextMode::LegacyOmit
    };
    ProofOptions::new(proof["verificationMethod"].as_str().unwrap(), created)
        .with_purpose(proof["proofPurpose"].as_str().unwrap())
        .with_context(context)
}

/// Keys for every proof of `doc`, resolved by the two-phase API.
fn keys_for(doc: &Value, key: PublicKey) -> Vec<(String, PublicKey)> {
    proof::proofs(doc)
        .unwrap()
        .into_iter()
        .map(|i| (i.verification_method, key))
        .collect()
}

#[test]
fn vc_di_eddsa_jcs_intermediates_and_signed_document() {
    let Some(dir) = crate::shared_vectors("vc-di-eddsa eddsa-jcs-2022") else {
        return;
    };
    let dir = dir.join("vc-di-eddsa");
    let jcs = dir.join("eddsa-jcs-2022");
    let pair = crate::read_json(&dir.join("keyPair.json"));
    let key =
        SigningKey::from_multikey_secret(pair["privateKeyMultibase"].as_str().unwrap()).unwrap();
    let public = PublicKey::from_multikey(pair["publicKeyMultibase"].as_str().unwrap()).unwrap();
    assert_eq!(key.public_key(), public);
    let unsigned = crate::read_json(&dir.join("unsigned.json"));
    let config = crate::read_json(&jcs.join("proofConfigJCS.json"));

    // Every intermediate, computed step by step.
    let canon_doc = canonicalize(&unsigned).unwrap();
    assert_eq!(
        String::from_utf8(canon_doc.clone()).unwrap(),
        text(&jcs.join("canonDocJCS.txt"))
    );
    let doc_hash = Sha256::digest(&canon_doc);
    assert_eq!(hex::encode(doc_hash), text(&jcs.join("docHashJCS.txt")));
    let canon_proof = canonicalize(&config).unwrap();
    assert_eq!(
        String::from_utf8(canon_proof.clone()).unwrap(),
        text(&jcs.join("proofCanonJCS.txt"))
    );
    let proof_hash = Sha256::digest(&canon_proof);
    assert_eq!(hex::encode(proof_hash), text(&jcs.join("proofHashJCS.txt")));
    let combined = [proof_hash.as_slice(), doc_hash.as_slice()].concat();
    assert_eq!(
        hex::encode(&combined),
        text(&jcs.join("combinedHashJCS.txt"))
    );
    let sig = key.sign(&combined);
    assert_eq!(
        hex::encode(sig.to_bytes()),
        text(&jcs.join("sigHexJCS.txt"))
    );
    let proof_value = format!("z{}", bs58::encode(sig.to_bytes()).into_string());
    assert_eq!(proof_value, text(&jcs.join("sigBTC58JCS.txt")));

    // The library reproduces the signed document as a whole.
    let expected = crate::read_json(&jcs.join("signedJCS.json"));
    let signed = proof::sign(unsigned.clone(), &key, &options_from(&config)).unwrap();
    assert_eq!(signed, expected);
    assert_eq!(signed["proof"]["proofValue"], proof_value);

    // And verifies the published one, as received.
    let infos = proof::proofs(&expected).unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0].verification_method, config["verificationMethod"]);
    assert!(infos[0].has_context);
    let keys = keys_for(&expected, public);
    let verified = proof::verify(expected.clone(), &keys).unwrap();
    assert_eq!(
        verified.signers(),
        [config["verificationMethod"].as_str().unwrap()]
    );
    assert_eq!(verified.into_inner(), expected);
    tamper_every_value(&expected, &keys);
}

#[test]
fn vc_di_negative_cases_are_refused() {
    let Some(dir) = crate::shared_vectors("vc-di-eddsa negative cases") else {
        return;
    };
    let file = crate::read_json(&dir.join("vc-di-eddsa/negative-cases-derived.json"));
    let key = PublicKey::from_multikey("z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2").unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 11);
    for case in cases {
        assert_eq!(case["expected"], "invalid");
        let doc = case["document"].clone();
        let mutation = case["mutation"].as_str().unwrap();
        let keys = keys_for(&doc, key);
        let err = proof::verify(doc, &keys).unwrap_err();
        // Purpose changes are caught before the signature check; the others by it.
        let expected_kind = if mutation.contains("proofPurpose") {
            matches!(err, ProofError::WrongPurpose { .. })
        } else {
            matches!(err, ProofError::BadSignature { .. })
        };
        assert!(expected_kind, "{mutation}: {err:?}");
        // Even without demanding a purpose, the signature fails.
        let doc = case["document"].clone();
        let keys = keys_for(&doc, key);
        let options = proof::VerifyOptions::with_purpose(None);
        assert!(
            matches!(
                proof::verify_with(doc, &keys, &options),
                Err(ProofError::BadSignature { .. })
            ),
            "{mutation}"
        );
    }
}

#[test]
fn fep_8b32_three_generations() {
    let Some(dir) = crate::shared_vectors("FEP-8b32") else {
        return;
    };
    let generations = [
        "current-2025-10",
        "2024-06-data-integrity-v1",
        "2023-08-legacy-proof-without-context",
    ];
    for generation in generations {
        let dir = dir.join("fep-8b32").join(generation);
        let params = crate::read_json(&dir.join("params-and-intermediates.json"));
        let document = crate::read_json(&dir.join("document.json"));
        let signed = crate::read_json(&dir.join("signed.json"));
        let actor = crate::read_json(&dir.join("actor.json"));
        let key = SigningKey::from_multikey_secret(
            params["ed25519_secret_key_multibase"].as_str().unwrap(),
        )
        .unwrap();
        let inter = &params["intermediate_values_DERIVED_here"];
        assert_eq!(without(&signed, "proof"), document, "{generation}");

        // Intermediates.
        let canon_doc = String::from_utf8(canonicalize(&document).unwrap()).unwrap();
        assert_eq!(
            canon_doc,
            inter["canonical_document"].as_str().unwrap(),
            "{generation}"
        );
        let config = without(&signed["proof"], "proofValue");
        let canon_config = String::from_utf8(canonicalize(&config).unwrap()).unwrap();
        assert_eq!(
            canon_config,
            inter["canonical_proof_options"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(Sha256::digest(canon_doc.as_bytes())),
            inter["document_sha256_hex"].as_str().unwrap()
        );
        assert_eq!(
            hex::encode(Sha256::digest(canon_config.as_bytes())),
            inter["proof_options_sha256_hex"].as_str().unwrap()
        );

        // Re-signing reproduces the published proof exactly.
        let options = options_from(&signed["proof"]);
        assert_eq!(options.verification_method, params["verificationMethod"]);
        let resigned = proof::sign(document.clone(), &key, &options).unwrap();
        assert_eq!(resigned, signed, "{generation}");
        assert_eq!(resigned["proof"]["proofValue"], inter["proofValue"]);

        // Verification with the actor's assertionMethod key.
        let method = actor["assertionMethod"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == params["verificationMethod"])
            .unwrap();
        assert_eq!(method["type"], "Multikey");
        let public =
            PublicKey::from_multikey(method["publicKeyMultibase"].as_str().unwrap()).unwrap();
        assert_eq!(public, key.public_key());
        let infos = proof::proofs(&signed).unwrap();
        assert_eq!(
            infos[0].has_context,
            generation != "2023-08-legacy-proof-without-context"
        );
        let keys = vec![(method["id"].as_str().unwrap().to_owned(), public)];
        let verified =
            proof::verify(signed.clone(), &keys).unwrap_or_else(|e| panic!("{generation}: {e}"));
        assert_eq!(
            verified.signers(),
            [params["verificationMethod"].as_str().unwrap()]
        );
        tamper_every_value(&signed, &keys);
    }
}

/// Changes every scalar of `signed` (document and proof), adds a member to every object and
/// an element to every array, and removes every member and element in turn: each variant
/// must fail verification, all current signers being required (so that removing one proof
/// of a set is noticed).
fn tamper_every_value(signed: &Value, keys: &[(String, PublicKey)]) {
    let any_purpose = keys
        .iter()
        .fold(proof::VerifyOptions::with_purpose(None), |o, (vm, _)| {
            o.require_signer(vm)
        });
    assert!(proof::verify_with(signed.clone(), keys, &any_purpose).is_ok());
    let mut pointers = Vec::new();
    collect_pointers(signed, String::new(), &mut pointers);
    let mut variants = 0;
    for pointer in &pointers {
        let node = signed.pointer(pointer).unwrap();
        let mut changed = Vec::new();
        match node {
            Value::String(s) => {
                changed.push(json!(format!("{s}x")));
                changed.push(json!(s.to_uppercase() + " "));
            }
            Value::Number(n) => changed.push(json!(n.as_f64().unwrap() + 1.0)),
            Value::Bool(b) => changed.push(json!(!b)),
            Value::Null => changed.push(json!(0)),
            Value::Object(map) => {
                let mut m = map.clone();
                m.insert("extra".into(), json!("ajout"));
                changed.push(Value::Object(m));
            }
            Value::Array(items) => {
                let mut a = items.clone();
                a.push(json!("ajout"));
                changed.push(Value::Array(a));
            }
        }
        for replacement in changed {
            let mut doc = signed.clone();
            *doc.pointer_mut(pointer).unwrap() = replacement;
            variants += 1;
            assert!(
                proof::verify_with(doc, keys, &any_purpose).is_err(),
                "changing {pointer:?} went unnoticed"
            );
        }
        if let Some((parent, last)) = pointer.rsplit_once('/') {
            let mut doc = signed.clone();
            match doc.pointer_mut(parent).unwrap() {
                Value::Object(map) => {
                    map.shift_remove(&last.replace("~1", "/").replace("~0", "~"));
                }
                Value::Array(items) => {
                    items.remove(last.parse::<usize>().unwrap());
                }
                _ => unreachable!(),
            }
            variants += 1;
            assert!(
                proof::verify_with(doc, keys, &any_purpose).is_err(),
                "removing {pointer:?} went unnoticed"
            );
        }
    }
    assert!(variants > 20, "only {variants} variants");
}

fn collect_pointers(value: &Value, pointer: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                collect_pointers(v, format!("{pointer}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_pointers(v, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(pointer);
}

/// Two parties sign the same document: a proof set.
#[test]
fn proof_set_of_two() {
    let created = time::macros::datetime!(2026-11-23 10:00 UTC);
    let (a, b) = (
        SigningKey::from_seed(&[0xa1; 32]),
        SigningKey::from_seed(&[0xb2; 32]),
    );
    let (vm_a, vm_b) = (
        "https://rh.mairie-lyon.example/actor#k1".to_owned(),
        "https://rh.metropole-lyon.example/actor#k1".to_owned(),
    );
    let convention = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/passerelle/v1"],
        "type": "Convention",
        "name": "Mise à disposition d’un agent — 50 % du temps",
        "startTime": "2027-01-01",
        "quotite": 0.5
    });
    let once = proof::sign(convention.clone(), &a, &ProofOptions::new(&vm_a, created)).unwrap();
    assert!(once["proof"].is_object());
    let twice = proof::sign(once.clone(), &b, &ProofOptions::new(&vm_b, created)).unwrap();
    let proofs = twice["proof"].as_array().unwrap();
    assert_eq!(proofs.len(), 2);
    assert_eq!(
        proofs[0], once["proof"],
        "signing again keeps the first proof unchanged"
    );
    let keys = vec![
        (vm_a.clone(), a.public_key()),
        (vm_b.clone(), b.public_key()),
    ];
    let infos = proof::proofs(&twice).unwrap();
    assert_eq!(
        infos
            .iter()
            .map(|i| i.verification_method.as_str())
            .collect::<Vec<_>>(),
        [vm_a.as_str(), vm_b.as_str()]
    );
    let verified = proof::verify(twice.clone(), &keys).unwrap();
    assert_eq!(verified.signers(), [vm_a.clone(), vm_b.clone()]);

    // A set, not a chain: B's proof alone verifies over the bare document.
    let mut only_b = convention.clone();
    only_b["proof"] = proofs[1].clone();
    assert!(proof::verify(only_b, &keys).is_ok());
    // Signing in the other order gives the same two proofs.
    let other_order = proof::sign(
        proof::sign(convention.clone(), &b, &ProofOptions::new(&vm_b, created)).unwrap(),
        &a,
        &ProofOptions::new(&vm_a, created),
    )
    .unwrap();
    assert_eq!(other_order["proof"][0], proofs[1]);
    assert_eq!(other_order["proof"][1], proofs[0]);

    // Either proof altered: refused, naming it.
    for index in 0..2 {
        let mut doc = twice.clone();
        doc["proof"][index]["created"] = json!("2026-11-23T10:00:01Z");
        assert_eq!(
            proof::verify(doc, &keys).unwrap_err(),
            ProofError::BadSignature {
                index,
                verification_method: keys[index].0.clone()
            }
        );
    }
    // Either key missing from the list: refused.
    for index in 0..2 {
        let partial = vec![keys[1 - index].clone()];
        assert_eq!(
            proof::verify(twice.clone(), &partial).unwrap_err(),
            ProofError::MissingKey {
                index,
                verification_method: keys[index].0.clone()
            }
        );
    }
    // A proof removed from the set: the rest still verifies (it is a set), unless the
    // verifier requires both signers.
    let mut one_removed = twice.clone();
    one_removed["proof"].as_array_mut().unwrap().remove(1);
    assert_eq!(
        proof::verify(one_removed.clone(), &keys).unwrap().signers(),
        [vm_a.as_str()]
    );
    let both = proof::VerifyOptions::default()
        .require_signer(&vm_a)
        .require_signer(&vm_b);
    assert!(proof::verify_with(twice.clone(), &keys, &both).is_ok());
    assert_eq!(
        proof::verify_with(one_removed, &keys, &both).unwrap_err(),
        ProofError::MissingSigner {
            verification_method: vm_b.clone()
        }
    );
    // Keys swapped between the two methods: refused.
    let swapped = vec![(vm_a, b.public_key()), (vm_b, a.public_key())];
    assert!(matches!(
        proof::verify(twice.clone(), &swapped),
        Err(ProofError::BadSignature { index: 0, .. })
    ));
    tamper_every_value(&twice, &keys);
}
