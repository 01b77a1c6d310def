//! RFC 8785 (JCS) conformance: cyberphone test data, the RFC's own examples and the first
//! 10,000 lines of the ES6 number test file (`../shared/vectors/rfc8785-jcs`).

use passerelle_protocol::canonical::{CanonicalError, ParseLimits, canonicalize, parse_strict};
use serde_json::Value;

fn parse(bytes: &[u8]) -> Value {
    parse_strict(bytes, &ParseLimits::default()).unwrap()
}

#[test]
fn cyberphone_testdata_byte_for_byte() {
    let Some(dir) = crate::shared_vectors("JCS cyberphone testdata") else {
        return;
    };
    let dir = dir.join("rfc8785-jcs/cyberphone-testdata");
    let mut names: Vec<_> = std::fs::read_dir(dir.join("input"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "arrays.json",
            "french.json",
            "structures.json",
            "unicode.json",
            "values.json",
            "weird.json"
        ]
    );
    for name in &names {
        let input = std::fs::read(dir.join("input").join(name)).unwrap();
        let expected = std::fs::read(dir.join("output").join(name)).unwrap();
        let hex_name = name.replace(".json", ".txt");
        let outhex = std::fs::read_to_string(dir.join("outhex").join(&hex_name)).unwrap();
        let outhex: String = outhex.split_whitespace().collect();
        assert_eq!(hex::decode(&outhex).unwrap(), expected, "{hex_name}");
        let got = canonicalize(&parse(&input)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
        assert_eq!(got, expected, "{name}");
        // Canonical output is a fixed point.
        assert_eq!(
            canonicalize(&parse(&got)).unwrap(),
            expected,
            "{name} twice"
        );
    }
}

#[test]
fn rfc8785_examples() {
    let Some(dir) = crate::shared_vectors("JCS RFC 8785 examples") else {
        return;
    };
    let ex = crate::read_json(&dir.join("rfc8785-jcs/rfc8785-examples.json"));

    // §3.2.2 input → §3.2.4 bytes.
    let input = ex["section_3_2_2_input_json_text"].as_str().unwrap();
    let got = canonicalize(&parse(input.as_bytes())).unwrap();
    let expected = hex::decode(ex["section_3_2_4_expected_utf8_hex"].as_str().unwrap()).unwrap();
    assert_eq!(got, expected);
    assert_eq!(
        std::str::from_utf8(&got).unwrap(),
        ex["section_3_2_4_expected_utf8_text"].as_str().unwrap()
    );

    // §3.2.3 sort order (UTF-16 code units, not code points or UTF-8).
    let input = ex["section_3_2_3_sorting_input_json_text"]
        .as_str()
        .unwrap();
    let got = canonicalize(&parse(input.as_bytes())).unwrap();
    let back: serde_json::Map<String, Value> = serde_json::from_slice(&got).unwrap();
    let order: Vec<&Value> = back.values().collect();
    let expected: Vec<&Value> = ex["section_3_2_3_expected_value_order"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(order, expected);

    // Appendix B numbers.
    let samples = ex["appendix_b_number_samples"].as_array().unwrap();
    assert_eq!(samples.len(), 26);
    let mut refused = 0;
    for s in samples {
        let hex = s["ieee754_hex"].as_str().unwrap();
        let bits = u64::from_str_radix(hex, 16).unwrap();
        let f = f64::from_bits(bits);
        match s["expected"].as_str() {
            Some(expected) => {
                let value = Value::from(f);
                assert_eq!(
                    std::str::from_utf8(&canonicalize(&value).unwrap()).unwrap(),
                    expected,
                    "{hex}"
                );
                check_roundtrip(expected, bits);
            }
            None => {
                // NaN/Infinity cannot enter a serde_json Value, and their JSON spellings
                // are refused by the strict parser.
                assert!(!f.is_finite(), "{hex}");
                assert!(serde_json::Number::from_f64(f).is_none());
                assert!(matches!(
                    parse_strict(b"[1e999]", &ParseLimits::default()),
                    Err(CanonicalError::NonFiniteNumber { .. })
                ));
                for text in ["NaN", "Infinity", "-Infinity"] {
                    assert!(
                        parse_strict(text.as_bytes(), &ParseLimits::default()).is_err(),
                        "{text}"
                    );
                }
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 2);
}

/// The expected text parses back (strictly) to the same double, and re-canonicalizes to
/// itself: this is what `float_roundtrip` guarantees.
fn check_roundtrip(expected: &str, bits: u64) {
    let parsed = parse_strict(expected.as_bytes(), &ParseLimits::default())
        .unwrap_or_else(|e| panic!("{expected}: {e}"));
    let f = parsed.as_f64().unwrap();
    // -0 prints as "0", which parses as +0.
    let want = f64::from_bits(bits);
    assert!(
        f.to_bits() == bits || (f == 0.0 && want == 0.0),
        "{expected} parsed to {f:e} ({:016x}), want {bits:016x}",
        f.to_bits()
    );
    assert_eq!(
        std::str::from_utf8(&canonicalize(&parsed).unwrap()).unwrap(),
        expected
    );
}

#[test]
fn es6_numbers_first_10000() {
    let Some(dir) = crate::shared_vectors("JCS ES6 numbers") else {
        return;
    };
    let text =
        std::fs::read_to_string(dir.join("rfc8785-jcs/es6-numbers-first-10000.txt")).unwrap();
    let mut count = 0;
    for line in text.lines() {
        let (hex, expected) = line.split_once(',').unwrap();
        let bits = u64::from_str_radix(hex, 16).unwrap();
        let value = Value::from(f64::from_bits(bits));
        let got = canonicalize(&value).unwrap();
        assert_eq!(std::str::from_utf8(&got).unwrap(), expected, "line {hex}");
        check_roundtrip(expected, bits);
        count += 1;
    }
    assert_eq!(count, 10_000);
}
