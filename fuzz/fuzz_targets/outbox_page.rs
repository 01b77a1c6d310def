//! Outbox pages (`OrderedCollectionPage`) pulled from a partner during catch-up.
//!
//! Properties: no panic; a page re-serializes and parses back to the same page; each
//! item decodes and validates on its own.
#![no_main]

use libfuzzer_sys::fuzz_target;
use passerelle_protocol::canonical::{ParseLimits, parse_strict};
use passerelle_protocol::vocab::{Message, OrderedCollectionPage, ValidationContext};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_strict(data, &ParseLimits::default()) else {
        return;
    };
    let ctx = ValidationContext::production();
    if let Ok(message) = Message::from_value(value.clone()) {
        let _ = message.validate(&ctx);
    }
    let Ok(page) = serde_json::from_value::<OrderedCollectionPage>(value) else {
        return;
    };
    for item in page.items() {
        if let Ok(message) = item {
            let _ = message.validate(&ctx);
        }
    }
    let back = serde_json::to_value(&page).expect("a parsed page must serialize");
    let again: OrderedCollectionPage =
        serde_json::from_value(back).expect("a serialized page must parse");
    assert_eq!(again, page, "parse → serialize → parse changed the page");
});
