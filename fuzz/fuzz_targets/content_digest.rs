//! RFC 9530 `Content-Digest` parsing and checking.
//!
//! Input: the field value on the first line, the body after it.
//!
//! Properties: no panic; the digest we send always verifies its body; an accepted field
//! names the algorithm it reports.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::digest::{DigestAlgorithm, content_digest, verify_content_digest};

fuzz_target!(|data: &[u8]| {
    let (field, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    assert_eq!(
        verify_content_digest(&content_digest(body), body),
        Ok(DigestAlgorithm::Sha256)
    );
    let Ok(field) = std::str::from_utf8(field) else {
        return;
    };
    if let Ok(algorithm) = verify_content_digest(field, body) {
        assert!(
            field.contains(algorithm.key()),
            "{field:?} accepted as {}",
            algorithm.key()
        );
    }
});
