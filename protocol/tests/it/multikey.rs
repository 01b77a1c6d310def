//! Multikey (FEP-521a) conformance: `../shared/vectors/multikey`.

use passerelle_protocol::keys::{KeyError, PublicKey, SigningKey};

fn arr32(hex_str: &str) -> [u8; 32] {
    hex::decode(hex_str).unwrap().try_into().unwrap()
}

#[test]
fn ed25519_multikey_vectors() {
    let Some(dir) = crate::shared_vectors("Multikey vectors") else {
        return;
    };
    let file = crate::read_json(&dir.join("multikey/ed25519-multikey-vectors.json"));
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 15);
    let (mut ed25519, mut rsa) = (0, 0);
    for v in vectors {
        let source = v["source"].as_str().unwrap();
        let multibase = v["publicKeyMultibase"].as_str().unwrap();
        if v["key_type"] == "RSA" {
            rsa += 1;
            let err = PublicKey::from_multikey(multibase).unwrap_err();
            assert!(
                matches!(
                    err,
                    KeyError::UnsupportedKeyType {
                        key_type: "rsa-pub",
                        ..
                    }
                ),
                "{source}: {err:?}"
            );
            let message = err.to_string();
            assert!(
                message.contains("rsa-pub") && message.contains("z6Mk"),
                "{message}"
            );
            if let Some(der) = v["pkcs1_der_hex"].as_str() {
                // The vector's own encoding rule: z + base58btc(0x85 0x24 ‖ PKCS#1 DER).
                let mut bytes = vec![0x85, 0x24];
                bytes.extend(hex::decode(der).unwrap());
                assert_eq!(format!("z{}", bs58::encode(bytes).into_string()), multibase);
            }
            continue;
        }
        ed25519 += 1;
        let public =
            PublicKey::from_multikey(multibase).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(public.to_multikey(), multibase, "{source}");
        if let Some(hex_key) = v["public_key_hex"].as_str() {
            assert_eq!(hex::encode(public.to_bytes()), hex_key, "{source}");
            assert_eq!(
                PublicKey::from_bytes(&arr32(hex_key))
                    .unwrap()
                    .to_multikey(),
                multibase
            );
        }
        if let Some(seed) = v["seed_hex"].as_str() {
            let key = SigningKey::from_seed(&arr32(seed));
            assert_eq!(key.public_key(), public, "{source}");
        }
        if let Some(secret) = v["privateKeyMultibase"].as_str() {
            let key = SigningKey::from_multikey_secret(secret).unwrap();
            assert_eq!(key.public_key(), public, "{source}");
            assert_eq!(key.to_multikey_secret().as_str(), secret, "{source}");
        }
        if let Some(did) = v["did"].as_str() {
            assert_eq!(did.strip_prefix("did:key:"), Some(multibase));
        }
        if let Some(raw) = v["publicKeyBase58_raw"].as_str() {
            assert_eq!(bs58::encode(public.to_bytes()).into_string(), raw);
        }
        if let Some(x) = v["publicKeyJwk_x"].as_str() {
            use base64::Engine as _;
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            assert_eq!(engine.encode(public.to_bytes()), x);
        }
    }
    assert_eq!((ed25519, rsa), (13, 2));

    let negatives = file["negative_examples_DERIVED"].as_array().unwrap();
    assert_eq!(negatives.len(), 4);
    for n in negatives {
        let value = n["value"].as_str().unwrap();
        let err = PublicKey::from_multikey(value).unwrap_err();
        let why = n["why"].as_str().unwrap();
        match &err {
            KeyError::UnsupportedKeyType { key_type, .. } => {
                assert_eq!(*key_type, "x25519-pub", "{why}");
            }
            KeyError::InvalidMultikey { value: v, reason } => {
                assert_eq!(v, value);
                assert!(!reason.is_empty());
            }
            other => panic!("{why}: unexpected {other:?}"),
        }
        assert!(err.to_string().len() > 20, "{why}: {err}");
    }
}

#[test]
fn did_key_spec_ed25519_entries() {
    let Some(dir) = crate::shared_vectors("did:key spec vectors") else {
        return;
    };
    let file =
        crate::read_json(&dir.join("multikey/did-key-spec-test-vectors-ed25519-x25519.json"));
    let entries = file.as_object().unwrap();
    assert_eq!(entries.len(), 5);
    for (did, entry) in entries {
        let multibase = did.strip_prefix("did:key:").unwrap();
        let key = SigningKey::from_seed(&arr32(entry["seed"].as_str().unwrap()));
        let public = key.public_key();
        assert_eq!(public.to_multikey(), multibase, "{did}");
        assert_eq!(PublicKey::from_multikey(multibase), Ok(public), "{did}");
        let vkp = &entry["verificationKeyPair"];
        let id = vkp["id"].as_str().unwrap();
        assert!(id.ends_with(&format!("#{multibase}")), "{id}");
        assert!(
            ["Ed25519VerificationKey2018", "JsonWebKey2020"]
                .contains(&vkp["type"].as_str().unwrap()),
            "{did}"
        );
        if let Some(raw) = vkp["publicKeyBase58"].as_str() {
            assert_eq!(bs58::encode(public.to_bytes()).into_string(), raw, "{did}");
        }
        if let Some(x) = vkp["publicKeyJwk"]["x"].as_str() {
            use base64::Engine as _;
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            assert_eq!(engine.encode(public.to_bytes()), x, "{did}");
        }
        // The X25519 key agreement key is a Multikey of another type: refused by name.
        let kak_id = entry["keyAgreementKeyPair"]["id"].as_str().unwrap();
        let x25519 = kak_id.rsplit_once('#').unwrap().1;
        assert!(matches!(
            PublicKey::from_multikey(x25519),
            Err(KeyError::UnsupportedKeyType {
                key_type: "x25519-pub",
                ..
            })
        ));
        // The DID document lists the Ed25519 key under the did:key fragment.
        let first = &entry["didDocument"]["verificationMethod"][0];
        assert_eq!(first["id"], format!("{did}#{multibase}"));
    }
}

#[test]
fn invalid_multikeys_are_refused_clearly() {
    let key = SigningKey::from_seed(&[9u8; 32]);
    let good = key.public_key().to_multikey();
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "must start with 'z'"),
        (good[1..].to_owned(), "must start with 'z'"),
        (format!("{good}0"), "not valid base58btc"), // '0' is not in the alphabet
        (
            format!("z{}", bs58::encode([0xed, 0x01, 1, 2]).into_string()),
            "32 bytes",
        ),
        (
            format!("z{}", bs58::encode([0x12; 34]).into_string()),
            "prefix 0xed01",
        ),
        (format!(" {good}"), "must start with 'z'"),
    ];
    for (value, reason_part) in cases {
        let err = PublicKey::from_multikey(&value).unwrap_err();
        assert!(
            matches!(&err, KeyError::InvalidMultikey { reason, .. } if reason.contains(reason_part)),
            "{value:?}: {err:?}"
        );
    }
    // A secret key given where a public one is expected: refused without echoing it.
    let secret = key.to_multikey_secret();
    let err = PublicKey::from_multikey(&secret).unwrap_err();
    assert!(
        matches!(err, KeyError::UnsupportedKeyType { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&secret[..8]), "{err}");
}
