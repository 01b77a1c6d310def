//! Ed25519 conformance: RFC 8032 §7.1 byte for byte, and every Wycheproof case through our
//! strict verifier (`../shared/vectors/rfc8032`).

use passerelle_protocol::keys::{PublicKey, Signature, SigningKey};

fn arr32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

#[test]
fn rfc8032_section_7_1() {
    let Some(dir) = crate::shared_vectors("Ed25519 RFC 8032 §7.1") else {
        return;
    };
    let file = crate::read_json(&dir.join("rfc8032/ed25519-rfc8032-7.1.json"));
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let key = SigningKey::from_seed(&arr32(v["secret_key_hex"].as_str().unwrap()));
        let public = key.public_key();
        assert_eq!(
            hex::encode(public.to_bytes()),
            v["public_key_hex"].as_str().unwrap(),
            "{name}"
        );
        let msg = hex::decode(v["message_hex"].as_str().unwrap()).unwrap();
        assert_eq!(msg.len() as u64, v["message_length"].as_u64().unwrap());
        let sig = key.sign(&msg);
        assert_eq!(
            hex::encode(sig.to_bytes()),
            v["signature_hex"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(public.verify(&msg, &sig), Ok(()), "{name}");
        let from_bytes = PublicKey::from_bytes(&public.to_bytes()).unwrap();
        assert_eq!(from_bytes, public);
        let mut bad = msg.clone();
        bad.push(0);
        assert!(public.verify(&bad, &sig).is_err(), "{name}");
    }
}

/// Wycheproof cases where our strict verifier disagrees with Wycheproof's verdict, as
/// `(tcId, reason)`. Empty: `PublicKey::verify` (ed25519-dalek 3 `verify_strict`) agrees
/// with all 151 verdicts, like OpenSSL and libsodium. The list is compared exactly, so any
/// change of behaviour (a dalek upgrade, a switch away from `verify_strict`) fails this
/// test and must be explained here.
const DISAGREEMENTS: &[(u64, &str)] = &[];

/// Wycheproof cases (tcId) that only a careless verifier accepts, by the rule that refuses
/// them; `keys.rs` documents each rule. All must be refused.
const RULES: &[(&str, &[u64])] = &[
    (
        "S >= L (malleable S, RFC 8032 §5.1.7)",
        &[63, 64, 65, 66, 85],
    ),
    ("high bits of S set / S reduced mod p", &[67, 68, 69, 70]),
    (
        "R not the canonical encoding of the recomputed point",
        &[
            42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 151,
        ],
    ),
    ("R is the identity or not a point", &[60, 61, 62]),
    (
        "wrong length (truncated, garbage, compressed)",
        &[30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41],
    ),
];

#[test]
fn wycheproof_strict_verification() {
    let Some(dir) = crate::shared_vectors("Ed25519 Wycheproof") else {
        return;
    };
    let file = crate::read_json(&dir.join("rfc8032/wycheproof-ed25519_test.json"));
    assert_eq!(file["algorithm"], "EDDSA");
    let mut total = 0;
    let mut disagreements = Vec::new();
    let mut refused_ids = Vec::new();
    let mut refused_by_flag = std::collections::BTreeMap::<String, u32>::new();
    for group in file["testGroups"].as_array().unwrap() {
        let pk = hex::decode(group["publicKey"]["pk"].as_str().unwrap()).unwrap();
        let key = <[u8; 32]>::try_from(pk.as_slice())
            .ok()
            .and_then(|b| PublicKey::from_bytes(&b).ok());
        for case in group["tests"].as_array().unwrap() {
            total += 1;
            let tc_id = case["tcId"].as_u64().unwrap();
            let msg = hex::decode(case["msg"].as_str().unwrap()).unwrap();
            let sig = hex::decode(case["sig"].as_str().unwrap()).unwrap();
            let ours = match (key, Signature::from_slice(&sig)) {
                (Some(key), Ok(sig)) => key.verify(&msg, &sig).is_ok(),
                _ => false,
            };
            let expected = match case["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {tc_id}: unexpected result {other:?}"),
            };
            if ours != expected {
                disagreements.push((
                    tc_id,
                    case["comment"].as_str().unwrap().to_owned(),
                    case["flags"].clone(),
                ));
            }
            if !ours {
                refused_ids.push(tc_id);
                for flag in case["flags"].as_array().unwrap() {
                    *refused_by_flag
                        .entry(flag.as_str().unwrap().to_owned())
                        .or_default() += 1;
                }
            }
        }
    }
    assert_eq!(total, 151);
    assert_eq!(file["numberOfTests"].as_u64(), Some(151));
    let got: Vec<u64> = disagreements.iter().map(|d| d.0).collect();
    let want: Vec<u64> = DISAGREEMENTS.iter().map(|d| d.0).collect();
    assert_eq!(
        got, want,
        "disagreements with Wycheproof: {disagreements:#?}"
    );
    for (rule, ids) in RULES {
        for id in *ids {
            assert!(refused_ids.contains(id), "tcId {id} ({rule}) was accepted");
        }
    }
    // The malleability and encoding rules must actually have been exercised.
    for flag in [
        "SignatureMalleability",
        "InvalidEncoding",
        "TruncatedSignature",
        "SignatureWithGarbage",
    ] {
        assert!(
            refused_by_flag.get(flag).copied().unwrap_or(0) > 0,
            "no case flagged {flag} was refused: {refused_by_flag:?}"
        );
    }
}

/// Small-order public keys are not in this Wycheproof file, so we test them here: with the
/// identity as public key, R = identity and S = 0 "verify" any message under the lenient
/// RFC 8032 equation; strict verification refuses them (keys.rs, "small-order keys").
#[test]
fn small_order_keys_are_refused() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // A point of order 8 (the libsodium blocklist's first entry).
    let order8 = arr32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a");
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&identity);
    let forged = Signature(sig);
    let lenient = ed25519_dalek::VerifyingKey::from_bytes(&identity).unwrap();
    let dalek_sig = ed25519_dalek::Signature::from_bytes(&sig);
    assert!(
        ed25519_dalek::Verifier::verify(&lenient, b"any message", &dalek_sig).is_ok(),
        "the lenient equation accepts the forgery (else this test shows nothing)"
    );
    for key in [identity, order8] {
        let public = PublicKey::from_bytes(&key).unwrap();
        for msg in [
            &b"any message"[..],
            b"",
            b"another one",
            b"1",
            b"2",
            b"3",
            b"4",
            b"5",
        ] {
            assert!(public.verify(msg, &forged).is_err(), "{key:02x?}");
        }
    }
}
