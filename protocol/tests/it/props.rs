//! Property tests (proptest) of what parses bytes from outside: canonical JSON
//! (`parse_strict` + JCS), transport signatures (RFC 9421), object proofs
//! (`eddsa-jcs-2022`), Multikey, and the invariants of the MAD state machine.
//!
//! Case counts stay moderate so that the suite is quick on two cores: 256 for the cheap
//! properties, 64 for those that sign and verify. Run them alone with
//! `cargo test -p passerelle-protocol --test it props`; `PROPTEST_CASES=…` raises the count.

use std::collections::BTreeMap;

use passerelle_protocol::canonical::{CanonicalError, ParseLimits, canonicalize, parse_strict};
use passerelle_protocol::httpsig::{
    RequestParts, VerifyPolicy, parse_signature, sign_passerelle_request,
};
use passerelle_protocol::keys::{PublicKey, SigningKey};
use passerelle_protocol::mad::{
    self, MANDATORY_CLAUSES, MadContext, MadError, MadRequestState, MadState, Party, TRANSITIONS,
    Transition,
};
use passerelle_protocol::proof::{self, ProofOptions};
use passerelle_protocol::vocab::{self, AgentStatut, MadTerms};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Number, Value};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Failures found are turned into named regression tests, not files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// JSON generators
// ---------------------------------------------------------------------------------------

/// 2^53: integers up to this magnitude are exact doubles, the range JCS can carry.
const MAX_SAFE: i64 = 1 << 53;

/// Strings that exercise escaping: quotes, backslashes, controls, non-ASCII, astral.
fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 @é€\"\\\\/\u{0}-\u{1f}\u{7f}\u{2028}\u{1F600}]{0,10}",
        any::<String>(),
    ]
}

fn json_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-MAX_SAFE..=MAX_SAFE).prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        (-1000.0f64..1000.0).prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        json_number(),
        json_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((json_string(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A small deterministic generator for the layout choices of [`write_messy`].
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Serializes `v` as JSON that means the same but looks different: members shuffled,
/// random whitespace between tokens, characters randomly written as `\u` escapes
/// (surrogate pairs beyond the BMP), integers sometimes written `1.0` or `1e0`, doubles
/// in exponent form.
fn write_messy(v: &Value, rng: &mut Rng, out: &mut String) {
    fn ws(rng: &mut Rng, out: &mut String) {
        for _ in 0..rng.below(3) {
            out.push([' ', '\n', '\t', '\r'][rng.below(4)]);
        }
    }
    fn string(s: &str, rng: &mut Rng, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            let must = c == '"' || c == '\\' || c < ' ';
            if must || rng.below(4) == 0 {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            } else {
                out.push(c);
            }
        }
        out.push('"');
    }
    match v {
        Value::Null | Value::Bool(_) => out.push_str(&v.to_string()),
        Value::Number(n) => match (n.as_i64(), rng.below(3)) {
            (Some(i), 1) if i.unsigned_abs() < MAX_SAFE as u64 => out.push_str(&format!("{i}.0")),
            (Some(i), 2) if i.unsigned_abs() < MAX_SAFE as u64 => out.push_str(&format!("{i}e0")),
            (None, 1) => {
                let f = n.as_f64().unwrap();
                out.push_str(&format!("{f:e}"));
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => string(s, rng, out),
        Value::Array(items) => {
            out.push('[');
            ws(rng, out);
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    ws(rng, out);
                    out.push(',');
                    ws(rng, out);
                }
                write_messy(item, rng, out);
            }
            ws(rng, out);
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            for i in (1..members.len()).rev() {
                members.swap(i, rng.below(i + 1));
            }
            out.push('{');
            ws(rng, out);
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    ws(rng, out);
                    out.push(',');
                    ws(rng, out);
                }
                string(k, rng, out);
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                write_messy(item, rng, out);
            }
            ws(rng, out);
            out.push('}');
        }
    }
}

fn messy(v: &Value, seed: u64) -> String {
    let mut out = String::new();
    write_messy(v, &mut Rng(seed | 1), &mut out);
    out
}

fn limits() -> ParseLimits {
    ParseLimits::default()
}

/// Replaces the byte at `at` by another value derived from `with` (never the same byte).
fn flip_byte(bytes: &mut [u8], at: usize, with: u8) {
    let old = bytes[at];
    bytes[at] = if with == old {
        old.wrapping_add(1)
    } else {
        with
    };
}

/// Replaces the character at byte `at` of an ASCII string by another printable ASCII
/// character (never the same one), so the result stays a valid header value.
fn flip_ascii(s: &str, at: usize, with: u8) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let old = bytes[at];
    let mut new = 0x21 + with % 94;
    if new == old {
        new = if old == 0x7e { 0x21 } else { old + 1 };
    }
    bytes[at] = new;
    String::from_utf8(bytes).unwrap()
}

// ---------------------------------------------------------------------------------------
// Canonicalization and parse_strict
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// canonicalize(parse(canonicalize(v))) == canonicalize(v), and the canonical bytes
    /// read back (strictly and with serde_json) to the same value.
    #[test]
    fn canonicalization_is_idempotent(v in json_value()) {
        let c1 = canonicalize(&v).unwrap();
        let back = parse_strict(&c1, &limits()).unwrap();
        let c2 = canonicalize(&back).unwrap();
        prop_assert_eq!(&c1, &c2);
        let via_serde: Value = serde_json::from_slice(&c1).unwrap();
        prop_assert_eq!(back, via_serde);
    }

    /// Member order, whitespace, `\u` escapes and number spelling do not change the
    /// canonical form.
    #[test]
    fn canonical_form_ignores_layout(v in json_value(), seed in any::<u64>()) {
        let text = messy(&v, seed);
        let parsed = parse_strict(text.as_bytes(), &limits())
            .map_err(|e| TestCaseError::fail(format!("{e} in {text}")))?;
        prop_assert_eq!(canonicalize(&parsed).unwrap(), canonicalize(&v).unwrap(), "{}", text);
    }

    /// Without duplicate names, parse_strict reads exactly what serde_json reads.
    #[test]
    fn parse_strict_agrees_with_serde_json(v in json_value(), seed in any::<u64>()) {
        let text = messy(&v, seed);
        let strict = parse_strict(text.as_bytes(), &limits()).unwrap();
        let loose: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(strict, loose);
    }

    /// On damaged JSON, parse_strict never accepts what serde_json refuses, never reads
    /// another value, and refuses for its own reasons only what serde_json accepts.
    #[test]
    fn parse_strict_is_stricter_than_serde_json(
        v in json_value(),
        seed in any::<u64>(),
        damage in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = messy(&v, seed).into_bytes();
        for (at, with) in &damage {
            let i = at.index(bytes.len());
            flip_byte(&mut bytes, i, *with);
        }
        let loose = serde_json::from_slice::<Value>(&bytes);
        match parse_strict(&bytes, &limits()) {
            Ok(strict) => prop_assert_eq!(Some(strict), loose.ok()),
            Err(CanonicalError::Syntax { .. } | CanonicalError::InvalidUtf8 { .. }) => {
                prop_assert!(loose.is_err(), "serde_json accepts what parse_strict calls a syntax error");
            }
            Err(_) => {}
        }
    }

    /// A member name that appears twice is refused, wherever the object is.
    #[test]
    fn duplicate_member_names_are_refused(
        members in prop::collection::btree_map("[a-z]{1,4}", json_value(), 1..5),
        dup in any::<Index>(),
        wrap in 0usize..3,
    ) {
        let (name, value) = members.iter().nth(dup.index(members.len())).unwrap();
        let mut text = String::from("{");
        for (k, v) in &members {
            text.push_str(&format!("{}:{},", Value::from(k.as_str()), v));
        }
        text.push_str(&format!("{}:{}}}", Value::from(name.as_str()), value));
        let text = match wrap {
            0 => text,
            1 => format!("[1,{text}]"),
            _ => format!("{{\"outer\":{text}}}"),
        };
        prop_assert!(serde_json::from_str::<Value>(&text).is_ok());
        let err = parse_strict(text.as_bytes(), &limits()).unwrap_err();
        let is_duplicate = matches!(err, CanonicalError::DuplicateKey { .. });
        prop_assert!(is_duplicate, "{}", err);
    }
}

// ---------------------------------------------------------------------------------------
// Transport signatures (RFC 9421)
// ---------------------------------------------------------------------------------------

const KEY_ID: &str = "https://mairie-a.example/actor#key-1";
const CREATED: i64 = 1_790_000_000;
const CONTENT_TYPE: &str = "application/activity+json";

fn test_key() -> SigningKey {
    SigningKey::from_seed(&[42; 32])
}

/// A request as received: owned strings, so that tests can damage any byte.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header_mut(&mut self, name: &str) -> Option<&mut String> {
        self.headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    fn verify(&self, key: &PublicKey) -> Result<(), String> {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let parts = RequestParts {
            method: &self.method,
            target_uri: &self.target,
            headers: &headers,
            body: &self.body,
        };
        let candidate = parse_signature(&parts, None).map_err(|e| e.to_string())?;
        candidate
            .verify(key, &VerifyPolicy::passerelle(CREATED + 5))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn signed_request(body: Vec<u8>, path: &str, user_agent: &str) -> Received {
    let target = format!("https://cdg-b.example/{path}");
    let signed = sign_passerelle_request(
        "POST",
        &target,
        &[("Content-Type", CONTENT_TYPE)],
        &body,
        &test_key(),
        KEY_ID,
        CREATED,
    )
    .unwrap();
    let mut headers = vec![
        ("Host".to_owned(), "cdg-b.example".to_owned()),
        ("Content-Type".to_owned(), CONTENT_TYPE.to_owned()),
        ("User-Agent".to_owned(), user_agent.to_owned()),
    ];
    if let Some(digest) = signed.content_digest {
        headers.push(("Content-Digest".to_owned(), digest));
    }
    headers.push((
        "Signature-Input".to_owned(),
        signed.signature.signature_input,
    ));
    headers.push(("Signature".to_owned(), signed.signature.signature));
    Received {
        method: "POST".to_owned(),
        target,
        headers,
        body,
    }
}

/// The parts of a signed request a single-byte change must be detected in.
#[derive(Debug, Clone, Copy)]
enum Covered {
    Method,
    Target,
    ContentType,
    ContentDigest,
    Body,
    SignatureInput,
    Signature,
}

fn covered() -> impl Strategy<Value = Covered> {
    prop_oneof![
        Just(Covered::Method),
        Just(Covered::Target),
        Just(Covered::ContentType),
        Just(Covered::ContentDigest),
        Just(Covered::Body),
        Just(Covered::SignatureInput),
        Just(Covered::Signature),
    ]
}

proptest! {
    #![proptest_config(config(64))]

    /// Any single-byte change to the method, the target URI, a covered header, the body or
    /// the signature fields makes verification fail, except a change of the unused base64
    /// bits of the signature, which leaves the signature bytes as they were.
    #[test]
    fn transport_signature_detects_any_covered_byte_change(
        body in prop::collection::vec(any::<u8>(), 0..200),
        path in "[a-z0-9._~/-]{0,20}(\\?[a-z0-9=&%]{0,12})?",
        part in covered(),
        at in any::<Index>(),
        with in any::<u8>(),
    ) {
        let key = test_key().public_key();
        let original = signed_request(body, &path, "passerelle-test/1.0");
        prop_assert_eq!(original.verify(&key), Ok(()));
        let mut request = original.clone();
        let damage = |s: &mut String| *s = flip_ascii(s, at.index(s.len()), with);
        match part {
            Covered::Method => damage(&mut request.method),
            Covered::Target => damage(&mut request.target),
            Covered::ContentType | Covered::ContentDigest | Covered::Body
                if request.body.is_empty() =>
            {
                // Without a body, Content-Type and Content-Digest are not covered (the
                // Passerelle profile); a body appearing must be refused.
                request.body.push(with);
            }
            Covered::ContentType => damage(request.header_mut("content-type").unwrap()),
            Covered::ContentDigest => damage(request.header_mut("content-digest").unwrap()),
            Covered::Body => {
                let i = at.index(request.body.len());
                flip_byte(&mut request.body, i, with);
            }
            Covered::SignatureInput => damage(request.header_mut("signature-input").unwrap()),
            Covered::Signature => damage(request.header_mut("signature").unwrap()),
        }
        if matches!(part, Covered::Signature)
            && signature_bytes(&request) == signature_bytes(&original)
        {
            // Another spelling of the same bytes (non-zero base64 pad bits, RFC 8941
            // §4.2.7): the same signature, see
            // `transport_signature_pad_bits_are_ignored_and_only_them`.
            prop_assert_eq!(request.verify(&key), Ok(()));
        } else {
            prop_assert!(request.verify(&key).is_err(), "{:?} still verifies", request);
        }
    }

    /// Headers the signature does not cover may change, be added, or be reordered.
    #[test]
    fn transport_signature_ignores_uncovered_headers(
        body in prop::collection::vec(any::<u8>(), 0..200),
        user_agent in "[ -~]{1,30}",
        other in "[ -~]{0,30}",
        at in any::<Index>(),
        with in any::<u8>(),
        rotate in 0usize..6,
    ) {
        let key = test_key().public_key();
        let mut request = signed_request(body, "inbox", &user_agent);
        let ua = request.header_mut("user-agent").unwrap();
        *ua = flip_ascii(ua, at.index(ua.len()), with);
        request.headers.push(("X-Forwarded-For".to_owned(), other));
        request.headers.rotate_left(rotate);
        prop_assert_eq!(request.verify(&key), Ok(()));
    }
}

// ---------------------------------------------------------------------------------------
// Object proofs (eddsa-jcs-2022)
// ---------------------------------------------------------------------------------------

const VM: &str = "https://mairie-a.example/actor#key-1";

fn document() -> impl Strategy<Value = Value> {
    prop::collection::vec((json_string(), json_value()), 0..6).prop_map(|members| {
        let mut doc = Map::new();
        doc.insert("@context".into(), vocab::context());
        doc.insert("type".into(), "Note".into());
        for (k, v) in members {
            if k != "proof" {
                doc.insert(k, v);
            }
        }
        Value::Object(doc)
    })
}

fn sign_doc(doc: Value) -> Value {
    let created = time::macros::datetime!(2026-11-23 10:00 UTC);
    proof::sign(doc, &test_key(), &ProofOptions::new(VM, created)).unwrap()
}

fn verifies(doc: Value) -> bool {
    proof::verify(doc, &[(VM.to_owned(), test_key().public_key())]).is_ok()
}

proptest! {
    #![proptest_config(config(64))]

    /// A single-byte change to a signed document verifies if and only if it leaves the
    /// canonical form (document and proof) unchanged.
    #[test]
    fn object_proof_detects_any_canonical_change(
        doc in document(),
        at in any::<Index>(),
        with in any::<u8>(),
    ) {
        let signed = sign_doc(doc);
        let mut bytes = serde_json::to_vec(&signed).unwrap();
        prop_assert!(verifies(parse_strict(&bytes, &limits()).unwrap()));
        let i = at.index(bytes.len());
        flip_byte(&mut bytes, i, with);
        // A damaged document that does not parse is refused before any proof check.
        if let Ok(damaged) = parse_strict(&bytes, &limits()) {
            let same = canonicalize(&damaged).unwrap() == canonicalize(&signed).unwrap();
            prop_assert_eq!(verifies(damaged), same, "{}", String::from_utf8_lossy(&bytes));
        }
    }

    /// Re-serializing a signed document differently (member order, whitespace, escapes,
    /// number spelling) keeps the proof valid.
    #[test]
    fn object_proof_survives_layout_changes(doc in document(), seed in any::<u64>()) {
        let signed = sign_doc(doc);
        let text = messy(&signed, seed);
        prop_assert!(verifies(parse_strict(text.as_bytes(), &limits()).unwrap()), "{}", text);
    }
}

// ---------------------------------------------------------------------------------------
// Multikey
// ---------------------------------------------------------------------------------------

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

proptest! {
    #![proptest_config(config(256))]

    /// Public and secret Multikeys round-trip; an Ed25519 public Multikey starts `z6Mk`.
    #[test]
    fn multikey_round_trips(seed in any::<[u8; 32]>()) {
        let key = SigningKey::from_seed(&seed);
        let public = key.public_key();
        let encoded = public.to_multikey();
        prop_assert!(encoded.starts_with("z6Mk"), "{}", encoded);
        prop_assert_eq!(PublicKey::from_multikey(&encoded).unwrap(), public);
        prop_assert_eq!(PublicKey::from_bytes(&public.to_bytes()).unwrap(), public);
        let secret = key.to_multikey_secret();
        let back = SigningKey::from_multikey_secret(&secret).unwrap();
        prop_assert_eq!(back.public_key(), public);
        prop_assert_eq!(back.to_multikey_secret(), secret);
    }

    /// The encoding is unique: a value that decodes is exactly the encoding of what it
    /// decodes to, so one changed character never yields the same key.
    #[test]
    fn multikey_decoding_accepts_only_canonical_encodings(
        seed in any::<[u8; 32]>(),
        at in any::<Index>(),
        with in any::<Index>(),
        garbage in "[ -~]{0,60}",
    ) {
        let public = SigningKey::from_seed(&seed).public_key();
        let mut encoded = public.to_multikey().into_bytes();
        let i = at.index(encoded.len());
        let mut c = BASE58[with.index(BASE58.len())];
        if c == encoded[i] {
            c = if c == b'z' { b'1' } else { b'z' };
        }
        encoded[i] = c;
        for candidate in [String::from_utf8(encoded).unwrap(), garbage] {
            if let Ok(decoded) = PublicKey::from_multikey(&candidate) {
                prop_assert_ne!(decoded, public);
                prop_assert_eq!(decoded.to_multikey(), candidate);
            }
        }
    }

    /// Raw public keys that decode encode back to the same bytes.
    #[test]
    fn public_key_bytes_round_trip(bytes in any::<[u8; 32]>()) {
        if let Ok(key) = PublicKey::from_bytes(&bytes) {
            prop_assert_eq!(key.to_bytes(), bytes);
            prop_assert_eq!(PublicKey::from_multikey(&key.to_multikey()).unwrap(), key);
        }
    }
}

// ---------------------------------------------------------------------------------------
// MAD state machine
// ---------------------------------------------------------------------------------------

const PARTIES: [Party; 5] = [
    Party::OriginHr,
    Party::HostHr,
    Party::Agent,
    Party::OriginAuthority,
    Party::System,
];

fn transitions() -> Vec<Transition> {
    TRANSITIONS.iter().map(|r| r.transition).collect()
}

fn terms() -> MadTerms {
    serde_json::from_value(serde_json::json!({
        "activities": "Appui au déploiement du très haut débit",
        "quotitePct": 50,
        "startDate": "2027-01-01",
        "endDate": "2028-12-31",
        "reimbursement": {"mode": "full"},
        "noticeDays": 60
    }))
    .unwrap()
}

/// A context in which every precondition holds (today is after the term).
fn ok_ctx(terms: &MadTerms) -> MadContext<'_> {
    let mut ctx = MadContext::new(
        terms,
        AgentStatut::FonctionnaireTitulaire,
        time::macros::date!(2030 - 01 - 01),
    );
    ctx.convention_clauses = MANDATORY_CLAUSES.iter().map(|(c, _, _)| *c).collect();
    ctx.signed_by_origin = true;
    ctx.signed_by_host = true;
    ctx.amendment_agreed = true;
    ctx.fault_agreed_by_both = true;
    ctx.early_end_requested_on = Some(time::macros::date!(2028 - 01 - 01));
    ctx
}

/// A context in which preconditions hold or not, as `flags` says.
fn ctx_from_flags(terms: &MadTerms, flags: u8) -> MadContext<'_> {
    let mut ctx = ok_ctx(terms);
    let on = |bit: u8| flags & (1 << bit) != 0;
    if on(0) {
        ctx.agent_statut = AgentStatut::FonctionnaireStagiaire;
    }
    if on(1) {
        ctx.convention_clauses.clear();
    }
    ctx.signed_by_host = !on(2);
    ctx.amendment_agreed = !on(3);
    ctx.fault_agreed_by_both = !on(4);
    if on(5) {
        ctx.early_end_requested_on = None;
    }
    if on(6) {
        ctx.today = time::macros::date!(2026 - 11 - 23);
    }
    ctx
}

/// One accepted transition, as a node records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Step {
    transition: Transition,
    party: Party,
    from: MadState,
    to: MadState,
}

/// Every (transition, party) that `apply` accepts from `state` under `ctx`.
fn accepted(state: &MadRequestState, ctx: &MadContext<'_>) -> Vec<(Transition, Party)> {
    let mut out = Vec::new();
    for t in transitions() {
        for p in PARTIES {
            if mad::apply(state, t, p, ctx).is_ok() {
                out.push((t, p));
            }
        }
    }
    out
}

/// A run from draft, each step picked by the next choice among the accepted ones; stops
/// at a final state. Also checks that only final states are dead ends.
fn random_run(choices: &[Index], ctx: &MadContext<'_>) -> (MadRequestState, Vec<Step>) {
    let mut state = MadRequestState::draft();
    let mut steps = Vec::new();
    for choice in choices {
        let options = accepted(&state, ctx);
        assert_eq!(
            options.is_empty(),
            state.state.is_final(),
            "{:?}: dead end that is not final, or a final state with a way out",
            state
        );
        if options.is_empty() {
            break;
        }
        let (transition, party) = options[choice.index(options.len())];
        let next = mad::apply(&state, transition, party, ctx).unwrap();
        steps.push(Step {
            transition,
            party,
            from: state.state,
            to: next.state,
        });
        state = next;
    }
    (state, steps)
}

/// A node applying transitions delivered to it. Each delivery carries the sender's
/// sequence number (the MAD request's version: DESIGN.md keeps per-object order by
/// version numbers), because [`mad::apply`] takes only the current state: it has no
/// notion of order, so the node must restore it before calling it.
struct Node {
    state: MadRequestState,
    history: Vec<Step>,
    parked: BTreeMap<usize, (Transition, Party)>,
}

impl Node {
    fn new() -> Self {
        Self {
            state: MadRequestState::draft(),
            history: Vec::new(),
            parked: BTreeMap::new(),
        }
    }

    /// Receives delivery `seq` (at least once, in any order), then applies every
    /// transition whose predecessors are all applied.
    fn receive(&mut self, seq: usize, event: (Transition, Party), ctx: &MadContext<'_>) {
        if seq < self.history.len() {
            return; // a duplicate delivery
        }
        self.parked.insert(seq, event);
        while let Some((t, p)) = self.parked.remove(&self.history.len()) {
            let next = mad::apply(&self.state, t, p, ctx).unwrap();
            self.history.push(Step {
                transition: t,
                party: p,
                from: self.state.state,
                to: next.state,
            });
            self.state = next;
        }
    }
}

#[test]
fn mad_no_transition_leaves_a_final_state() {
    let t = terms();
    let finals: Vec<MadState> = MadState::ALL.into_iter().filter(|s| s.is_final()).collect();
    assert_eq!(finals.len(), 4, "{finals:?}");
    for flags in [0u8, 0x7f] {
        let ctx = ctx_from_flags(&t, flags);
        for state in &finals {
            for last_proposer in [None, Some(Party::OriginHr), Some(Party::HostHr)] {
                let current = MadRequestState {
                    state: *state,
                    last_proposer,
                };
                for transition in transitions() {
                    for party in PARTIES {
                        let err = mad::apply(&current, transition, party, &ctx).unwrap_err();
                        assert!(
                            matches!(err, MadError::FinalState { state: s, .. } if s == *state),
                            "{transition} by {party} from {state}: {err}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn mad_every_state_is_reachable_from_draft() {
    let t = terms();
    let ctx = ok_ctx(&t);
    let mut seen = vec![MadRequestState::draft()];
    let mut todo = vec![MadRequestState::draft()];
    while let Some(state) = todo.pop() {
        for (transition, party) in accepted(&state, &ctx) {
            let next = mad::apply(&state, transition, party, &ctx).unwrap();
            if !seen.contains(&next) {
                seen.push(next);
                todo.push(next);
            }
        }
    }
    for state in MadState::ALL {
        assert!(
            seen.iter().any(|s| s.state == state),
            "{state} is not reachable from draft"
        );
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// What `apply` accepts follows the table row; what it refuses names the state and
    /// the transition tried, and leaves the request where it was: a node that also sees
    /// refused attempts ends in the same state with the same history.
    #[test]
    fn mad_refused_transitions_change_nothing(
        choices in prop::collection::vec(any::<Index>(), 0..40),
        noise in prop::collection::vec((any::<Index>(), any::<Index>(), any::<u8>()), 0..40),
    ) {
        let t = terms();
        let ctx = ok_ctx(&t);
        let (end, steps) = random_run(&choices, &ctx);
        let all = transitions();
        let mut state = MadRequestState::draft();
        let mut history = Vec::new();
        let mut noise = noise.into_iter();
        for step in &steps {
            if let Some((ti, pi, flags)) = noise.next() {
                let (transition, party) = (all[ti.index(all.len())], PARTIES[pi.index(PARTIES.len())]);
                let noisy_ctx = ctx_from_flags(&t, flags);
                let before = state;
                match mad::apply(&state, transition, party, &noisy_ctx) {
                    Ok(next) => {
                        let row = mad::rule(transition).unwrap();
                        prop_assert!(!before.state.is_final());
                        prop_assert!(row.from.contains(&before.state));
                        prop_assert!(row.parties.contains(&party));
                        prop_assert_eq!(next.state, row.to);
                    }
                    Err(err) => {
                        let (s, tr) = refusal(&err);
                        prop_assert_eq!((s, tr), (before.state, transition), "{}", err);
                        prop_assert!(!err.message_fr().is_empty());
                    }
                }
                prop_assert_eq!(state, before);
            }
            let next = mad::apply(&state, step.transition, step.party, &ctx).unwrap();
            history.push(Step { transition: step.transition, party: step.party, from: state.state, to: next.state });
            state = next;
        }
        prop_assert_eq!(state, end);
        prop_assert_eq!(history, steps);
    }

    /// Two nodes apply the same run, each receiving the transitions in any order and any
    /// number of times (at-least-once delivery); ordered by sequence number, they end in
    /// the same state with the same history as the run, and a node's history is always a
    /// prefix of it.
    #[test]
    fn mad_two_nodes_converge_under_reordered_deliveries(
        choices in prop::collection::vec(any::<Index>(), 0..40),
        order_a in prop::collection::vec(any::<Index>(), 0..80),
        order_b in prop::collection::vec(any::<Index>(), 0..80),
        seed in any::<u64>(),
    ) {
        let t = terms();
        let ctx = ok_ctx(&t);
        let (end, steps) = random_run(&choices, &ctx);
        let events: Vec<(Transition, Party)> = steps.iter().map(|s| (s.transition, s.party)).collect();
        let mut nodes = [Node::new(), Node::new()];
        // Each node gets every event once plus random duplicates, shuffled.
        let mut schedules = Vec::new();
        for (extra, salt) in [(&order_a, 1u64), (&order_b, 2)] {
            let mut deliveries: Vec<usize> = (0..events.len()).collect();
            if !events.is_empty() {
                deliveries.extend(extra.iter().map(|i| i.index(events.len())));
            }
            let mut rng = Rng(seed.wrapping_mul(salt) | 1);
            for i in (1..deliveries.len()).rev() {
                deliveries.swap(i, rng.below(i + 1));
            }
            schedules.push(deliveries);
        }
        // Interleave the two nodes' deliveries.
        let mut rng = Rng(seed | 1);
        let (mut ia, mut ib) = (0, 0);
        while ia < schedules[0].len() || ib < schedules[1].len() {
            let pick_a = ib == schedules[1].len() || (ia < schedules[0].len() && rng.below(2) == 0);
            let (node, seq) = if pick_a {
                ia += 1;
                (0, schedules[0][ia - 1])
            } else {
                ib += 1;
                (1, schedules[1][ib - 1])
            };
            nodes[node].receive(seq, events[seq], &ctx);
            for n in &nodes {
                prop_assert_eq!(&n.history[..], &steps[..n.history.len()]);
            }
        }
        for n in &nodes {
            prop_assert_eq!(n.state, end);
            prop_assert_eq!(&n.history, &steps);
            prop_assert!(n.parked.is_empty());
        }
    }
}

/// The state and transition a refusal names.
fn refusal(err: &MadError) -> (MadState, Transition) {
    match err {
        MadError::FinalState { state, transition }
        | MadError::WrongState {
            state, transition, ..
        }
        | MadError::WrongParty {
            state, transition, ..
        }
        | MadError::NotCounterparty {
            state, transition, ..
        }
        | MadError::Ineligible {
            state, transition, ..
        }
        | MadError::TooLong {
            state, transition, ..
        }
        | MadError::DatesReversed {
            state, transition, ..
        }
        | MadError::WaiverNotAllowed {
            state, transition, ..
        }
        | MadError::MissingClauses {
            state, transition, ..
        }
        | MadError::Precondition {
            state, transition, ..
        } => (*state, *transition),
        other => panic!("unknown MadError variant {other:?}"),
    }
}

/// A node without sequence numbers (the only order `mad::apply` itself knows is the
/// state): it applies each delivered transition that `apply` accepts, parks the ones it
/// refuses and retries them after each change. Returns the state, the history and the
/// transitions left parked.
fn unordered_delivery(
    events: &[(Transition, Party)],
    order: &[usize],
    ctx: &MadContext<'_>,
) -> (MadRequestState, Vec<Step>, Vec<(Transition, Party)>) {
    let mut state = MadRequestState::draft();
    let mut history = Vec::new();
    let mut parked: Vec<(Transition, Party)> = Vec::new();
    for &i in order {
        parked.push(events[i]);
        while let Some(pos) = parked
            .iter()
            .position(|(t, p)| mad::apply(&state, *t, *p, ctx).is_ok())
        {
            let (t, p) = parked.remove(pos);
            let next = mad::apply(&state, t, p, ctx).unwrap();
            history.push(Step {
                transition: t,
                party: p,
                from: state.state,
                to: next.state,
            });
            state = next;
        }
    }
    (state, history, parked)
}

proptest! {
    #![proptest_config(config(256))]

    /// Without sequence numbers, a node that ends up applying every transition of the run
    /// (in whatever order they came) is in the same state as the sender, proposer
    /// included. (It may still strand a transition forever: see
    /// `mad_unordered_delivery_can_strand_a_transition`.)
    #[test]
    fn mad_unordered_delivery_agrees_when_nothing_is_left_parked(
        choices in prop::collection::vec(any::<Index>(), 0..40),
        seed in any::<u64>(),
    ) {
        let t = terms();
        let ctx = ok_ctx(&t);
        let (end, steps) = random_run(&choices, &ctx);
        let events: Vec<(Transition, Party)> =
            steps.iter().map(|s| (s.transition, s.party)).collect();
        let mut order: Vec<usize> = (0..events.len()).collect();
        let mut rng = Rng(seed | 1);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let (state, history, parked) = unordered_delivery(&events, &order, &ctx);
        prop_assert_eq!(history.len() + parked.len(), events.len());
        if parked.is_empty() {
            prop_assert_eq!(state, end, "{:?} delivered as {:?}", events, order);
        }
    }
}

/// Found by proptest: `mad::apply` carries no version, so a node that applies MAD
/// transitions in arrival order can strand one. The origin sends then withdraws; the
/// host receives the withdrawal first, which is legal from `draft`, and the proposal can
/// then never apply. Both end `withdrawn`, but with different histories and proposers.
/// The node must therefore order MAD activities by the request's version (DESIGN.md,
/// *Delivery*) before calling `apply`, as `mad_two_nodes_converge_under_reordered_deliveries`
/// does; the refusal of the late proposal is how a node sees that it got them out of order.
#[test]
fn mad_unordered_delivery_can_strand_a_transition() {
    let t = terms();
    let ctx = ok_ctx(&t);
    let events = [
        (Transition::Send, Party::OriginHr),
        (Transition::Withdraw, Party::OriginHr),
    ];
    let (sender, _) = {
        let mut node = Node::new();
        node.receive(0, events[0], &ctx);
        node.receive(1, events[1], &ctx);
        (node.state, node.history)
    };
    let (receiver, history, parked) = unordered_delivery(&events, &[1, 0], &ctx);
    assert_eq!(sender.state, MadState::Withdrawn);
    assert_eq!(receiver.state, MadState::Withdrawn);
    assert_ne!(receiver, sender, "the proposer of record differs");
    assert_eq!(history.len(), 1);
    assert_eq!(parked, [events[0]]);
    let err = mad::apply(&receiver, Transition::Send, Party::OriginHr, &ctx).unwrap_err();
    assert!(matches!(err, MadError::FinalState { .. }), "{err}");
}

/// The signature bytes a request carries, as parsed.
fn signature_bytes(request: &Received) -> Option<Vec<u8>> {
    let headers: Vec<(&str, &str)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let parts = RequestParts {
        method: &request.method,
        target_uri: &request.target,
        headers: &headers,
        body: &request.body,
    };
    parse_signature(&parts, None)
        .ok()
        .map(|c| c.signature_bytes().to_vec())
}

/// The last base64 character of a 64-byte signature carries 4 unused bits. RFC 8941
/// §4.2.7 says parsers SHOULD NOT fail on non-zero pad bits, and the `sfv` parser does
/// not: the 15 other spellings that differ only in those bits decode to the same
/// signature and verify (so a replay cache must key on the decoded signature, not on the
/// header text); the 48 spellings that change the bytes are refused.
#[test]
fn transport_signature_pad_bits_are_ignored_and_only_them() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let key = test_key().public_key();
    let request = signed_request(b"{}".to_vec(), "inbox", "t");
    let original = signature_bytes(&request).unwrap();
    let text = request
        .headers
        .iter()
        .find(|(n, _)| n == "Signature")
        .unwrap()
        .1
        .clone();
    let last = text.len() - 4; // "…X==:"
    assert_eq!(&text[last + 1..], "==:");
    let (mut same, mut refused) = (0, 0);
    for &c in ALPHABET {
        let mut changed = request.clone();
        let value = changed.header_mut("signature").unwrap();
        let mut bytes = value.clone().into_bytes();
        bytes[last] = c;
        *value = String::from_utf8(bytes).unwrap();
        if signature_bytes(&changed).as_ref() == Some(&original) {
            assert_eq!(changed.verify(&key), Ok(()));
            same += 1;
        } else {
            assert!(changed.verify(&key).is_err(), "{changed:?}");
            refused += 1;
        }
    }
    assert_eq!((same, refused), (16, 48));
}

// ---------------------------------------------------------------------------------------
// Message::from_slice: bytes from outside
// ---------------------------------------------------------------------------------------

fn follow() -> Value {
    serde_json::json!({
        "@context": vocab::context(),
        "id": "https://emploi.grenoble.fr/activities/0190c5d2-3b4a-7c8d-9e0f-123456789abc",
        "type": "Follow",
        "actor": "https://emploi.grenoble.fr/actor",
        "object": "https://www.isere.fr/actor",
        "to": ["https://www.isere.fr/actor"],
        "published": "2026-11-23T10:00:00Z"
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// `Message::from_slice` reads bytes as `parse_strict` does: the same message for what
    /// parse_strict accepts, a refusal for what it refuses (a member given twice could
    /// otherwise be read one way by the proof check and another way by the application).
    #[test]
    fn message_from_slice_is_as_strict_as_parse_strict(
        dup in any::<Index>(),
        other in json_value(),
        seed in any::<u64>(),
        twice in any::<bool>(),
    ) {
        let doc = follow();
        let mut text = messy(&doc, seed);
        if twice {
            let map = doc.as_object().unwrap();
            let name = map.keys().nth(dup.index(map.len())).unwrap();
            let close = text.rfind('}').unwrap();
            text.replace_range(close.., &format!(",{}:{other}}}", Value::from(name.as_str())));
        }
        match parse_strict(text.as_bytes(), &limits()) {
            Ok(value) => prop_assert_eq!(
                vocab::Message::from_slice(text.as_bytes()).ok(),
                vocab::Message::from_value(value).ok()
            ),
            Err(e) => prop_assert!(
                vocab::Message::from_slice(text.as_bytes()).is_err(),
                "parse_strict refuses ({}) but Message::from_slice accepts {}", e, text
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Content-Digest
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// The digest we send verifies its body, and any single-byte change to the body is a
    /// mismatch.
    #[test]
    fn content_digest_detects_any_body_change(
        body in prop::collection::vec(any::<u8>(), 1..300),
        at in any::<Index>(),
        with in any::<u8>(),
    ) {
        use passerelle_protocol::digest::{
            DigestAlgorithm, DigestError, content_digest, verify_content_digest,
        };
        let field = content_digest(&body);
        prop_assert_eq!(verify_content_digest(&field, &body), Ok(DigestAlgorithm::Sha256));
        let mut changed = body.clone();
        let i = at.index(changed.len());
        flip_byte(&mut changed, i, with);
        let mismatch = matches!(
            verify_content_digest(&field, &changed),
            Err(DigestError::Mismatch { algorithm: "sha-256", .. })
        );
        prop_assert!(mismatch);
    }
}
