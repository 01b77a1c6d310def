//! `Signature-Input` / `Signature` parsing and verification with a fixed key (the key of
//! `spec/vectors/httpsig`).
//!
//! Input: a request as text, `now` on the first line, then the method, the target URI,
//! `Name: value` header lines, an empty line and the body (raw bytes).
//!
//! Properties: no panic; a parsed signature base ends with its `@signature-params` line;
//! a verified signature covers `@method` and `@target-uri`, and with a body its covered
//! `Content-Digest` matches that body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::digest::verify_content_digest;
use passerelle_protocol::httpsig::{Component, RequestParts, VerifyPolicy, parse_signature};
use passerelle_protocol::keys::PublicKey;

const KEY: &str = "z6MktULudTtAsAhRegYPiZ6631RV3viv12qd4GQF8z1xB22S";

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let Ok(head) = std::str::from_utf8(head) else {
        return;
    };
    let mut lines = head.split('\n');
    let now = lines
        .next()
        .and_then(|l| l.trim().parse::<i64>().ok())
        .unwrap_or(1_790_000_010);
    let (Some(method), Some(target)) = (lines.next(), lines.next()) else {
        return;
    };
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n, v.trim_start()))
        .collect();
    let parts = RequestParts {
        method,
        target_uri: target,
        headers: &headers,
        body,
    };
    let Ok(candidate) = parse_signature(&parts, None) else {
        return;
    };
    let last = candidate.base().rsplit('\n').next().unwrap_or_default();
    assert!(
        last.starts_with("\"@signature-params\": "),
        "signature base without its params line: {:?}",
        candidate.base()
    );
    let key = PublicKey::from_multikey(KEY).expect("the vector key decodes");
    let Ok(verified) = candidate.verify(&key, &VerifyPolicy::passerelle(now)) else {
        return;
    };
    assert!(verified.components.contains(&Component::Method));
    assert!(verified.components.contains(&Component::TargetUri));
    if !body.is_empty() {
        let digest = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-digest"))
            .map(|(_, v)| *v)
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            verify_content_digest(&digest, body).is_ok(),
            "verified with a body its Content-Digest does not match"
        );
    }
});
