//! RFC 9530 `Content-Digest` against `../shared/vectors/rfc9530/digest-vectors.json`.

use passerelle_protocol::digest::{
    DigestAlgorithm, DigestError, content_digest, verify_content_digest,
};

fn vectors() -> Option<serde_json::Value> {
    let dir = crate::shared_vectors("rfc9530 digest vectors")?;
    Some(crate::read_json(&dir.join("rfc9530/digest-vectors.json")))
}

#[test]
fn rfc9530_cases_verify_and_sha256_is_reproduced() {
    let Some(v) = vectors() else { return };
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 15, "the vector file changed");
    for case in cases {
        let id = case["id"].as_str().unwrap();
        // B.4/B.6 carry the corrected Brotli bytes (the RFC's printed hex is not Brotli).
        let body = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
        let field = case["field_value"].as_str().unwrap();
        let expected = match case["algorithm"].as_str().unwrap() {
            "sha-256" => DigestAlgorithm::Sha256,
            "sha-512" => DigestAlgorithm::Sha512,
            other => panic!("{id}: unexpected algorithm {other}"),
        };
        assert_eq!(verify_content_digest(field, &body), Ok(expected), "{id}");
        if expected == DigestAlgorithm::Sha256 {
            assert_eq!(content_digest(&body), field, "{id}");
        }
        // One flipped body byte (or one added to an empty body) must be a mismatch.
        let mut tampered = body.clone();
        match tampered.first_mut() {
            Some(b) => *b ^= 1,
            None => tampered.push(b'x'),
        }
        assert!(
            matches!(
                verify_content_digest(field, &tampered),
                Err(DigestError::Mismatch { .. })
            ),
            "{id}: tampered body accepted"
        );
    }
}

#[test]
fn rfc9530_brotli_hex_as_printed_does_not_match() {
    let Some(v) = vectors() else { return };
    // RFC 9530 B.4 prints `8B 08 80 …` which is not the body the digest was computed over.
    let case = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "B.4-brotli-sha-256")
        .unwrap();
    let mut printed = hex::decode(case["body_hex"].as_str().unwrap()).unwrap();
    printed[0] = 0x8b;
    printed[1] = 0x08;
    let field = case["field_value"].as_str().unwrap();
    assert!(matches!(
        verify_content_digest(field, &printed),
        Err(DigestError::Mismatch { .. })
    ));
}

#[test]
fn rfc9530_invalid_values() {
    let Some(v) = vectors() else { return };
    for case in v["invalid_or_mismatching"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let field = case["field_value"].as_str().unwrap();
        match id {
            // Policy (documented in `digest`): strict RFC 8941 base64, so the superfluous `=`
            // is refused as malformed, never read as another digest and never a panic.
            "malformed-double-padding" => {
                let body = b"{\"hello\": \"world\"}\n";
                assert!(
                    matches!(
                        verify_content_digest(field, body),
                        Err(DigestError::Malformed { .. })
                    ),
                    "{id}"
                );
            }
            "wrong-digest-rfc9421-test-response" => {
                let body = case["body_utf8"].as_str().unwrap().as_bytes();
                assert_eq!(
                    verify_content_digest(field, body),
                    Err(DigestError::Mismatch {
                        algorithm: "sha-512",
                        body_len: body.len()
                    }),
                    "{id}"
                );
            }
            other => panic!("unknown invalid case {other}: update this test"),
        }
    }
}

#[test]
fn rfc9530_deprecated_algorithms_are_ignored_but_not_sufficient() {
    let Some(v) = vectors() else { return };
    let body = br#"{"hello": "world"}"#;
    let sha256 = content_digest(body);
    let samples = v["deprecated_algorithm_samples"]["values"]
        .as_object()
        .unwrap();
    assert!(!samples.is_empty());
    for (alg, value) in samples {
        let alone = format!("{alg}=:{}:", value.as_str().unwrap());
        assert!(
            matches!(
                verify_content_digest(&alone, body),
                Err(DigestError::NoSupportedAlgorithm { ref found }) if found.len() == 1 && &found[0] == alg
            ),
            "{alone}"
        );
        let with_supported = format!("{alone}, {sha256}");
        assert_eq!(
            verify_content_digest(&with_supported, body),
            Ok(DigestAlgorithm::Sha256),
            "{with_supported}"
        );
    }
}

#[test]
fn rfc9530_want_fields_are_not_digests() {
    let Some(v) = vectors() else { return };
    for example in v["want_field_examples"].as_array().unwrap() {
        let value = example.as_str().unwrap().split_once(": ").unwrap().1;
        assert!(
            matches!(
                verify_content_digest(value, b""),
                Err(DigestError::Malformed { .. })
            ),
            "{value}"
        );
    }
}

#[test]
fn every_supported_member_must_match() {
    let body = b"corps";
    let good256 = content_digest(body);
    let wrong512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
    assert!(matches!(
        verify_content_digest(&format!("{good256}, {wrong512}"), body),
        Err(DigestError::Mismatch {
            algorithm: "sha-512",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------
// Our own vectors: spec/vectors/digest/content-digest.json.

fn run_digest_vector(input: &serde_json::Value) -> serde_json::Value {
    let field = input["fieldValue"].as_str().unwrap();
    let body = input["body"].as_str().unwrap().as_bytes();
    match verify_content_digest(field, body) {
        Ok(alg) => serde_json::json!({ "algorithm": alg.key() }),
        Err(e) => serde_json::json!({ "error": crate::httpsig::error_name(&format!("{e:?}")) }),
    }
}

fn build_digest_vectors() -> serde_json::Value {
    let body = r#"{"type":"Create","actor":"https://mairie-a.example/actor","object":{"type":"Posting","name":"Agent d'accueil – état civil"}}"#;
    let sha256 = content_digest(body.as_bytes());
    let sha512 = {
        use base64::Engine as _;
        use sha2::Digest as _;
        format!(
            "sha-512=:{}:",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha512::digest(body))
        )
    };
    let cases: Vec<(&str, Vec<&str>, String, &str)> = vec![
        (
            "sha-256 of a JSON body with non-ASCII text, as Passerelle sends it",
            vec![],
            sha256.clone(),
            body,
        ),
        ("sha-512 accepted from peers", vec![], sha512.clone(), body),
        (
            "sha-256 and sha-512 both present and both matching",
            vec![],
            format!("{sha256}, {sha512}"),
            body,
        ),
        (
            "a deprecated md5 member next to sha-256 is ignored",
            vec!["Deprecated"],
            format!("md5=:Sd/dVLAcvNLSq16eXua5uQ==:, {sha256}"),
            body,
        ),
        (
            "an unknown algorithm next to sha-256 is ignored",
            vec!["Unknown"],
            format!("blake9=:AAAA:, {sha256}"),
            body,
        ),
        ("empty body", vec![], content_digest(b""), ""),
        (
            "body altered (one character)",
            vec!["Mismatch"],
            sha256.clone(),
            &body[..body.len() - 1],
        ),
        (
            "sha-256 matches but sha-512 does not",
            vec!["Mismatch"],
            format!(
                "{sha256}, {}",
                content_digest(b"x").replace("sha-256", "sha-512")
            ),
            body,
        ),
        (
            "only a deprecated algorithm",
            vec!["NoSupported"],
            "md5=:Sd/dVLAcvNLSq16eXua5uQ==:".to_owned(),
            body,
        ),
        (
            "not a dictionary",
            vec!["Malformed"],
            "sha-256 X48E".to_owned(),
            body,
        ),
        (
            "value is a token, not a byte sequence",
            vec!["Malformed"],
            "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE".to_owned(),
            body,
        ),
        (
            "superfluous '=' in the base64 (as printed in some RFC 9530 examples)",
            vec!["Malformed"],
            format!("{}=:", sha256.trim_end_matches(':')),
            body,
        ),
    ];
    let tests: Vec<serde_json::Value> = cases
        .into_iter()
        .enumerate()
        .map(|(i, (comment, flags, field, body))| {
            let input = serde_json::json!({ "fieldValue": field, "body": body });
            let expected = run_digest_vector(&input);
            let result = if expected.get("error").is_some() {
                "invalid"
            } else {
                "valid"
            };
            let flags: Vec<&str> = if result == "valid" {
                std::iter::once("Valid").chain(flags).collect()
            } else {
                flags
            };
            serde_json::json!({
                "tcId": i + 1,
                "comment": comment,
                "flags": flags,
                "input": input,
                "expected": expected,
                "result": result,
            })
        })
        .collect();
    serde_json::json!({
        "algorithm": "RFC9530-Content-Digest",
        "schema": "vector-file.schema.json",
        "generator": "protocol/tests/it/digest.rs from fixed inputs (PASSERELLE_WRITE_VECTORS=1 cargo test -p passerelle-protocol --test it digest)",
        "numberOfTests": tests.len(),
        "notes": {
            "input": "fieldValue: the Content-Digest field value as received; body: the exact body as a UTF-8 string.",
            "Valid": "Must be accepted.",
            "Policy": "sha-256 and sha-512 are checked; other members are ignored when a supported one is present; every supported member must match; Byte Sequences are decoded strictly (RFC 8941).",
            "expected": "valid: algorithm = the strongest algorithm checked; invalid: error = the refusal category (kebab-case name of the passerelle_protocol::digest::DigestError variant).",
            "Deprecated": "RFC 9530 deprecated algorithm present.",
            "Unknown": "Unregistered algorithm present.",
            "Mismatch": "A supported digest does not match the body.",
            "NoSupported": "No supported algorithm.",
            "Malformed": "Not an RFC 8941 dictionary of byte sequences."
        },
        "testGroups": [{ "comment": "Content-Digest fields checked against bodies", "tests": tests }],
    })
}

#[test]
fn passerelle_digest_vectors() {
    crate::httpsig::write_or_compare(
        "spec/vectors/digest/content-digest.json",
        &build_digest_vectors(),
    );
    let file =
        crate::read_json(&crate::workspace_root().join("spec/vectors/digest/content-digest.json"));
    let mut invalid = 0;
    for t in file["testGroups"][0]["tests"].as_array().unwrap() {
        let got = run_digest_vector(&t["input"]);
        assert_eq!(got, t["expected"], "tcId {}", t["tcId"]);
        assert_eq!(t["result"] == "invalid", got.get("error").is_some());
        invalid += usize::from(t["result"] == "invalid");
    }
    assert_eq!(invalid, 6);
}
