//! RFC 8785 JSON Canonicalization Scheme (JCS), and a strict parser for untrusted JSON.
//!
//! Object proofs (`eddsa-jcs-2022`) sign the JCS form of a document, so two nodes must turn
//! the same JSON value into the same bytes: members sorted by the UTF-16 code units of their
//! names, no insignificant whitespace, the shortest ECMAScript number form (`1e+30`, `4.5`,
//! `0.002`), minimal string escapes, no Unicode normalisation.
//!
//! [`canonicalize`] delegates the serialisation to the `serde_json_canonicalizer` crate
//! (ECMAScript number formatting by `ryu-js`), which reproduces every conformance vector we
//! hold: all cyberphone test files byte for byte, the RFC 8785 §3.2.4 bytes, the §3.2.3 sort
//! order, the 26 Appendix B numbers and the first 10,000 lines of the ES6 number test file
//! (see `protocol/tests/it/jcs.rs`). That crate turns on serde_json's `float_roundtrip`
//! feature for the whole build, so a decimal number parses to the exact nearest double; the
//! ES6 test re-parses every expected text and checks its bits.
//!
//! JSON numbers are IEEE-754 doubles in JCS. An integer that a double cannot carry so that
//! it prints back the same (for example `9007199254740993`, which JCS would print as
//! `9007199254740992`) is refused rather than silently rounded: two different documents
//! must never share a signature.
//!
//! [`parse_strict`] is the entry point for bytes received from the network. serde_json on
//! its own keeps the *last* of two members with the same name, so a verifier and an
//! application could read different values from one signed document; this parser refuses
//! duplicate names, invalid UTF-8, lone surrogates, documents that are too large or too deep,
//! and numbers that overflow a double.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Largest integer magnitude a double represents exactly (2^53).
const MAX_SAFE_INTEGER: u64 = 1 << 53;

/// serde_json's own nesting limit; [`ParseLimits::max_depth`] above it has no effect.
pub const SERDE_JSON_MAX_DEPTH: usize = 127;

/// Errors of canonicalization and strict parsing. Each names where the problem is: a JSON
/// pointer (RFC 6901) or a byte offset / line and column.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum CanonicalError {
    /// The input is larger than the configured limit.
    #[error(
        "JSON document too large: {size} bytes, the limit is {max} bytes; send a smaller document or raise ParseLimits::max_bytes"
    )]
    TooLarge {
        /// Size received, in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The input is not valid UTF-8.
    #[error(
        "JSON document is not valid UTF-8 at byte offset {offset}; JSON text must be UTF-8 (RFC 8259 §8.1)"
    )]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// An object has two members with the same name.
    #[error(
        "duplicate member name {key:?} in the object at {pointer:?}; each name may appear only once (RFC 7493 §2.3)"
    )]
    DuplicateKey {
        /// The repeated name.
        key: String,
        /// JSON pointer of the object holding it (`""` is the root).
        pointer: String,
    },
    /// Arrays and objects are nested deeper than allowed.
    #[error(
        "JSON nesting deeper than {max} levels at {pointer:?}; flatten the document or raise ParseLimits::max_depth"
    )]
    TooDeep {
        /// JSON pointer of the first container beyond the limit.
        pointer: String,
        /// The limit.
        max: usize,
    },
    /// A number is too large for a double (it would become Infinity), or is NaN/Infinity.
    #[error(
        "number at line {line}, column {column} is not a finite IEEE-754 double; JCS (RFC 8785 §3.2.2.3) allows finite numbers only"
    )]
    NonFiniteNumber {
        /// 1-based line of the number.
        line: usize,
        /// 1-based column of the number.
        column: usize,
    },
    /// An integer that a double cannot carry without changing its printed value.
    #[error(
        "integer {value} at {pointer:?} cannot be represented exactly as an IEEE-754 double (JCS would print it as {canonical}); send it as a string"
    )]
    ImpreciseInteger {
        /// The integer as received.
        value: String,
        /// What JCS would print for it.
        canonical: String,
        /// JSON pointer of the number.
        pointer: String,
    },
    /// The input is not JSON (syntax error, lone surrogate, trailing characters…).
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Syntax {
        /// serde_json's description of the problem.
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// The canonical serializer failed (this should not happen for a `serde_json::Value`).
    #[error("JCS serialization failed: {0}")]
    Serialize(String),
}

/// Bounds applied by [`parse_strict`] to untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseLimits {
    /// Maximum nesting of arrays and objects (`{"a":[1]}` has depth 2). serde_json itself
    /// stops at [`SERDE_JSON_MAX_DEPTH`], whichever is lower applies.
    pub max_depth: usize,
    /// Maximum size of the input, in bytes.
    pub max_bytes: usize,
}

impl ParseLimits {
    /// Limits with the given depth and size.
    pub const fn new(max_depth: usize, max_bytes: usize) -> Self {
        Self {
            max_depth,
            max_bytes,
        }
    }
}

impl Default for ParseLimits {
    /// 32 levels and 1 MiB: far above any Passerelle message (a posting is about 2 KB and
    /// 6 levels deep).
    fn default() -> Self {
        Self::new(32, 1024 * 1024)
    }
}

/// Serializes `value` in RFC 8785 canonical form (UTF-8 bytes).
///
/// # Errors
/// [`CanonicalError::ImpreciseInteger`] for an integer a double cannot carry, and
/// [`CanonicalError::Serialize`] if the underlying serializer fails.
///
/// # Examples
/// ```
/// use passerelle_protocol::canonical::canonicalize;
/// let value = serde_json::json!({"b": 4.50, "a": "é", "c": [1E30, 2e-3]});
/// let bytes = canonicalize(&value).unwrap();
/// assert_eq!(bytes, r#"{"a":"é","b":4.5,"c":[1e+30,0.002]}"#.as_bytes());
/// ```
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    check_integers(value, &Path::Root)?;
    serde_json_canonicalizer::to_vec(value).map_err(|e| CanonicalError::Serialize(e.to_string()))
}

/// Canonical form of the object `map` without its member named `skip`, without copying the
/// object (used for "the document without `proof`" and "the proof without `proofValue`").
pub(crate) fn canonicalize_without(
    map: &Map<String, Value>,
    skip: &str,
) -> Result<Vec<u8>, CanonicalError> {
    struct Without<'a>(&'a Map<String, Value>, &'a str);
    impl serde::Serialize for Without<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut out = s.serialize_map(None)?;
            for (k, v) in self.0.iter().filter(|(k, _)| k.as_str() != self.1) {
                out.serialize_entry(k, v)?;
            }
            out.end()
        }
    }
    for (k, v) in map.iter().filter(|(k, _)| k.as_str() != skip) {
        check_integers(v, &Path::Key(&Path::Root, k))?;
    }
    serde_json_canonicalizer::to_vec(&Without(map, skip))
        .map_err(|e| CanonicalError::Serialize(e.to_string()))
}

/// Parses untrusted JSON bytes, refusing what [`serde_json::from_slice`] would accept
/// silently: duplicate member names, and anything beyond `limits`. Number precision is
/// checked as in [`canonicalize`]. Object member order is kept as received.
///
/// # Errors
/// [`CanonicalError::TooLarge`], [`CanonicalError::InvalidUtf8`],
/// [`CanonicalError::DuplicateKey`], [`CanonicalError::TooDeep`],
/// [`CanonicalError::NonFiniteNumber`], [`CanonicalError::ImpreciseInteger`] or
/// [`CanonicalError::Syntax`].
///
/// # Examples
/// ```
/// use passerelle_protocol::canonical::{parse_strict, CanonicalError, ParseLimits};
/// let limits = ParseLimits::default();
/// assert!(parse_strict(br#"{"a":1,"b":2}"#, &limits).is_ok());
/// let err = parse_strict(br#"{"a":{"k":1,"k":2}}"#, &limits).unwrap_err();
/// assert!(matches!(err, CanonicalError::DuplicateKey { ref pointer, .. } if pointer == "/a"));
/// ```
pub fn parse_strict(bytes: &[u8], limits: &ParseLimits) -> Result<Value, CanonicalError> {
    if bytes.len() > limits.max_bytes {
        return Err(CanonicalError::TooLarge {
            size: bytes.len(),
            max: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| CanonicalError::InvalidUtf8 {
        offset: e.valid_up_to(),
    })?;
    let ctx = Ctx {
        max_depth: limits.max_depth,
        error: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = ValueSeed {
        ctx: &ctx,
        depth: 0,
        path: &Path::Root,
    };
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(value) => Ok(value),
        Err(e) => Err(ctx.error.into_inner().unwrap_or_else(|| from_serde(&e))),
    }
}

/// Maps a serde_json error that did not come from our own checks.
fn from_serde(e: &serde_json::Error) -> CanonicalError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    // serde_json appends " at line L column C" to its messages; keep the description only.
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m)
        .to_owned();
    if message.starts_with("number out of range") {
        CanonicalError::NonFiniteNumber { line, column }
    } else {
        CanonicalError::Syntax {
            message,
            line,
            column,
        }
    }
}

/// Where a value sits in the document, as a linked list of parents (built on the stack).
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    /// RFC 6901 JSON pointer.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(parent, key) => {
                write!(f, "{parent}/")?;
                for c in key.chars() {
                    match c {
                        '~' => f.write_str("~0")?,
                        '/' => f.write_str("~1")?,
                        c => write!(f, "{c}")?,
                    }
                }
                Ok(())
            }
            Path::Index(parent, i) => write!(f, "{parent}/{i}"),
        }
    }
}

/// Checks that every integer prints back unchanged through a double.
fn check_integers(value: &Value, path: &Path<'_>) -> Result<(), CanonicalError> {
    match value {
        Value::Number(n) => check_number(n, path),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_integers(v, &Path::Index(path, i))),
        Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| check_integers(v, &Path::Key(path, k))),
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

fn check_number(n: &Number, path: &Path<'_>) -> Result<(), CanonicalError> {
    let magnitude = if let Some(u) = n.as_u64() {
        u
    } else if let Some(i) = n.as_i64() {
        i.unsigned_abs()
    } else {
        return Ok(()); // a double already
    };
    if magnitude <= MAX_SAFE_INTEGER {
        return Ok(());
    }
    let as_double = n.as_f64().unwrap_or(f64::NAN);
    let canonical = serde_json_canonicalizer::to_string(&as_double)
        .map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    let value = n.to_string();
    if canonical == value {
        Ok(())
    } else {
        Err(CanonicalError::ImpreciseInteger {
            value,
            canonical,
            pointer: path.to_string(),
        })
    }
}

/// State shared by every seed of one parse: the limit and the first error we raised.
struct Ctx {
    max_depth: usize,
    error: RefCell<Option<CanonicalError>>,
}

impl Ctx {
    /// Records `error` (the first one wins) and returns a serde error to unwind with.
    fn fail<E: de::Error>(&self, error: CanonicalError) -> E {
        let message = error.to_string();
        let mut slot = self.error.borrow_mut();
        if slot.is_none() {
            *slot = Some(error);
        }
        E::custom(message)
    }
}

/// Deserializes one JSON value, checking duplicates, depth and integers on the way.
#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    ctx: &'a Ctx,
    depth: usize,
    path: &'a Path<'a>,
}

impl ValueSeed<'_> {
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        let depth = self.depth + 1;
        if depth > self.ctx.max_depth {
            return Err(self.ctx.fail(CanonicalError::TooDeep {
                pointer: self.path.to_string(),
                max: self.ctx.max_depth,
            }));
        }
        Ok(depth)
    }

    fn number<E: de::Error>(&self, n: Number) -> Result<Value, E> {
        check_number(&n, self.path).map_err(|e| self.ctx.fail(e))?;
        Ok(Value::Number(n))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.number(Number::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.number(Number::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite double ("number out of range" instead).
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut items = Vec::new();
        loop {
            let path = Path::Index(self.path, items.len());
            let seed = ValueSeed {
                ctx: self.ctx,
                depth,
                path: &path,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(self.ctx.fail(CanonicalError::DuplicateKey {
                    key,
                    pointer: self.path.to_string(),
                }));
            }
            let path = Path::Key(self.path, &key);
            let value = access.next_value_seed(ValueSeed {
                ctx: self.ctx,
                depth,
                path: &path,
            })?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Value, CanonicalError> {
        parse_strict(s.as_bytes(), &ParseLimits::default())
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_pointer() {
        let err = parse(r#"{"a":[{"x~/y":{"k":1,"k":2}}]}"#).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::DuplicateKey {
                key: "k".into(),
                pointer: "/a/0/x~0~1y".into()
            }
        );
        assert!(parse(r#"{"k":1,"K":2}"#).is_ok());
    }

    #[test]
    fn depth_size_and_utf8_limits() {
        let limits = ParseLimits::new(2, 64);
        assert!(parse_strict(br#"{"a":[1]}"#, &limits).is_ok());
        let err = parse_strict(br#"{"a":[{"b":1}]}"#, &limits).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::TooDeep {
                pointer: "/a/0".into(),
                max: 2
            }
        );
        let big = format!("\"{}\"", "x".repeat(63));
        assert_eq!(
            parse_strict(big.as_bytes(), &limits).unwrap_err(),
            CanonicalError::TooLarge { size: 65, max: 64 }
        );
        let err = parse_strict(b"{\"a\":\"\xc3\x28\"}", &limits).unwrap_err();
        assert_eq!(err, CanonicalError::InvalidUtf8 { offset: 6 });
        // serde_json's own recursion limit still applies beyond its depth.
        let deep = "[".repeat(200) + &"]".repeat(200);
        let err = parse_strict(deep.as_bytes(), &ParseLimits::new(1000, 1 << 20)).unwrap_err();
        assert!(matches!(err, CanonicalError::Syntax { .. }), "{err:?}");
    }

    #[test]
    fn numbers_non_finite_and_imprecise() {
        assert!(matches!(
            parse("[1e400]").unwrap_err(),
            CanonicalError::NonFiniteNumber { line: 1, .. }
        ));
        assert!(matches!(
            parse("[NaN]").unwrap_err(),
            CanonicalError::Syntax { .. }
        ));
        let err = parse(r#"{"n":9007199254740993}"#).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::ImpreciseInteger {
                value: "9007199254740993".into(),
                canonical: "9007199254740992".into(),
                pointer: "/n".into()
            }
        );
        // 2^53 itself, and large integers that print back unchanged, are fine.
        assert!(parse("[9007199254740992, -9007199254740992, 1000000000000000000]").is_ok());
        let err = canonicalize(&serde_json::json!({"a": [u64::MAX]})).unwrap_err();
        assert!(
            matches!(err, CanonicalError::ImpreciseInteger { ref pointer, .. } if pointer == "/a/0")
        );
    }

    #[test]
    fn lone_surrogates_and_trailing_garbage_are_syntax_errors() {
        assert!(matches!(
            parse(r#"["\ud800"]"#).unwrap_err(),
            CanonicalError::Syntax { .. }
        ));
        let err = parse(r#"{"a":1} x"#).unwrap_err();
        assert!(
            matches!(
                err,
                CanonicalError::Syntax {
                    line: 1,
                    column: 9,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn canonicalize_without_skips_one_member() {
        let v = parse(r#"{"proof":{"x":1},"b":[1,2],"a":"é"}"#).unwrap();
        let got = canonicalize_without(v.as_object().unwrap(), "proof").unwrap();
        assert_eq!(got, r#"{"a":"é","b":[1,2]}"#.as_bytes());
        let mut copy = v.clone();
        copy.as_object_mut().unwrap().remove("proof");
        assert_eq!(got, canonicalize(&copy).unwrap());
    }

    #[test]
    fn parse_keeps_member_order() {
        let v = parse(r#"{"b":1,"a":2}"#).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["b", "a"]);
        assert_eq!(canonicalize(&v).unwrap(), br#"{"a":2,"b":1}"#);
    }
}
