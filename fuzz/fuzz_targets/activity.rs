//! Activity JSON as an inbox receives it: `parse_strict`, dispatch on `type`, validation.
//!
//! Properties: no panic; `Message::from_slice` reads the bytes exactly as `parse_strict`
//! then `Message::from_value` do; a parsed message serializes, its serialization parses
//! back to the same message and canonicalizes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::canonical::{ParseLimits, canonicalize, parse_strict};
use passerelle_protocol::vocab::{Message, ValidationContext};

fuzz_target!(|data: &[u8]| {
    let direct = Message::from_slice(data);
    let Ok(value) = parse_strict(data, &ParseLimits::default()) else {
        assert!(
            direct.is_err(),
            "Message::from_slice accepts what parse_strict refuses"
        );
        return;
    };
    let Ok(message) = Message::from_value(value) else {
        assert!(
            direct.is_err(),
            "Message::from_slice accepts what from_value refuses"
        );
        return;
    };
    assert_eq!(
        direct.as_ref(),
        Ok(&message),
        "Message::from_slice reads another message"
    );
    for ctx in [
        ValidationContext::production(),
        ValidationContext::development(),
    ] {
        if let Err(problems) = message.validate(&ctx) {
            for problem in problems.iter() {
                assert!(!format!("{problem:?}").is_empty());
            }
        }
    }
    let _ = (
        message.type_name(),
        message.id(),
        message.owner(),
        message.is_private(),
    );
    let back = message.to_value().expect("a parsed message must serialize");
    let again = Message::from_value(back.clone()).expect("a serialized message must parse");
    assert_eq!(
        again, message,
        "parse → serialize → parse changed the message"
    );
    canonicalize(&back).expect("a serialized message must canonicalize");
});
