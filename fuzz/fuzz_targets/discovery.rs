//! WebFinger JRD (RFC 7033) and NodeInfo 2.1 documents, as fetched from another node.
//!
//! Properties: no panic; what parses re-serializes and parses back to the same document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::canonical::{ParseLimits, parse_strict};
use passerelle_protocol::vocab::{Jrd, NodeInfo, NodeInfoLinks, parse_acct};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    value: &serde_json::Value,
) -> Option<T> {
    let parsed: T = serde_json::from_value(value.clone()).ok()?;
    let back = serde_json::to_value(&parsed).expect("a parsed document must serialize");
    let again: T = serde_json::from_value(back).expect("a serialized document must parse");
    assert_eq!(
        again, parsed,
        "parse → serialize → parse changed the document"
    );
    Some(parsed)
}

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_strict(data, &ParseLimits::default()) else {
        return;
    };
    if let Some(jrd) = round_trip::<Jrd>(&value) {
        let _ = jrd.actor_id();
        if let Some((user, host)) = parse_acct(&jrd.subject) {
            assert!(!user.is_empty() && !host.is_empty());
        }
    }
    if let Some(info) = round_trip::<NodeInfo>(&value) {
        let _ = info.passerelle_protocol_version();
    }
    if let Some(links) = round_trip::<NodeInfoLinks>(&value) {
        let _ = links.href_21();
    }
});
