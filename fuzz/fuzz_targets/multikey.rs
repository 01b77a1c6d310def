//! Multikey decoding (public `z6Mk…` and secret `z3u2…` forms).
//!
//! Properties: no panic; whatever decodes is the unique encoding of what it decodes to
//! (the secret form, read from key files, may carry surrounding whitespace).
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::keys::{PublicKey, SigningKey};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = PublicKey::from_multikey(text) {
        assert_eq!(
            key.to_multikey(),
            text,
            "a non-canonical public Multikey decoded"
        );
    }
    if let Ok(key) = SigningKey::from_multikey_secret(text) {
        assert_eq!(
            key.to_multikey_secret().as_str(),
            text.trim(),
            "a non-canonical secret Multikey decoded"
        );
    }
});
