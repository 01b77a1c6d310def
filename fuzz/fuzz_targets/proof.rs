//! Object proof (`eddsa-jcs-2022`) verification of an arbitrary document, with the keys of
//! `spec/vectors/eddsa-jcs-2022`.
//!
//! Properties: no panic; `proofs` and `verify` agree on the shape of the proofs; a
//! verified document names as signers exactly the verification methods of its proofs,
//! and still verifies after a canonical re-serialization.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::canonical::{ParseLimits, canonicalize, parse_strict};
use passerelle_protocol::keys::PublicKey;
use passerelle_protocol::proof::{self, VerifyOptions};

const KEYS: [(&str, &str); 2] = [
    (
        "https://rh.mairie-exemple.example/actor#key-1",
        "z6MkqZV5nd8JmyjD4ManK8fFJrP76voYx5gHsf2t8M47M7LK",
    ),
    (
        "https://rh.cdg-exemple.example/actor#key-1",
        "z6MkneU82YiNZcXptfu7whXBBaCLKggX6enENPbrAZerUS7q",
    ),
];

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    let Ok(doc) = parse_strict(data, &limits) else {
        return;
    };
    let keys: Vec<(String, PublicKey)> = KEYS
        .iter()
        .map(|(vm, mk)| {
            (
                (*vm).to_owned(),
                PublicKey::from_multikey(mk).expect("vector key"),
            )
        })
        .collect();
    let infos = proof::proofs(&doc);
    let verified = proof::verify_with(doc.clone(), &keys, &VerifyOptions::with_purpose(None));
    let Ok(verified) = verified else {
        return;
    };
    let infos = infos.expect("verify accepted proofs that proofs() refuses");
    let mut methods: Vec<&str> = infos
        .iter()
        .map(|i| i.verification_method.as_str())
        .collect();
    let mut signers: Vec<&str> = verified.signers().iter().map(String::as_str).collect();
    methods.sort_unstable();
    methods.dedup();
    signers.sort_unstable();
    signers.dedup();
    assert_eq!(
        signers, methods,
        "signers differ from the proofs' verification methods"
    );
    let canonical = canonicalize(&doc).expect("a verified document canonicalizes");
    let again = parse_strict(&canonical, &limits).expect("canonical output re-parses");
    assert!(
        proof::verify_with(again, &keys, &VerifyOptions::with_purpose(None)).is_ok(),
        "a verified document no longer verifies in canonical form"
    );
});
