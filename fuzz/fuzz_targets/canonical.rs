//! Canonicalization of arbitrary JSON: `parse_strict`, then RFC 8785.
//!
//! Properties: no panic; what `parse_strict` accepts serde_json reads identically; what
//! it accepts canonicalizes; the canonical bytes re-parse and canonicalize to themselves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::canonical::{ParseLimits, canonicalize, parse_strict};

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits::default();
    let Ok(value) = parse_strict(data, &limits) else {
        return;
    };
    let loose: serde_json::Value =
        serde_json::from_slice(data).expect("serde_json refuses what parse_strict accepted");
    assert_eq!(
        loose, value,
        "parse_strict and serde_json read different values"
    );
    let canonical = canonicalize(&value).expect("an accepted value must canonicalize");
    let again = parse_strict(&canonical, &limits).expect("canonical output must re-parse");
    assert_eq!(
        canonicalize(&again).expect("re-parsed canonical output must canonicalize"),
        canonical,
        "canonicalization is not idempotent"
    );
});
