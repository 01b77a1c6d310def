//! Object proofs: `DataIntegrityProof` with the `eddsa-jcs-2022` cryptosuite (W3C Data
//! Integrity EdDSA Cryptosuites v1.0 §3.3; FEP-8b32), proof sets and [`Verified`].
//!
//! Every activity and posting a node publishes carries a proof, so it stays verifiable when
//! relayed, cached or exported. A proof is computed as follows:
//!
//! 1. *proof config* = the proof's options — `type`, `cryptosuite`, `created`,
//!    `verificationMethod`, `proofPurpose` and, when the document has one, the document's
//!    `@context` — i.e. the proof object without `proofValue`;
//! 2. *hashData* = SHA-256(JCS(proof config)) ‖ SHA-256(JCS(document without `proof`));
//! 3. `proofValue` = `z` + base58btc(Ed25519 signature of hashData).
//!
//! **Proof sets.** `proof` may be an array: one proof per signing party (a convention is
//! signed by both employers). Each proof signs the document *without any proof*, so the
//! proofs are independent (a set, not a chain): [`sign`] on an already-signed document adds
//! a proof and keeps the others; `previousProof` chains are refused. Because it is a set,
//! removing one proof leaves a document validly signed by the others: a verifier that needs
//! several parties lists them in [`VerifyOptions::required_signers`].
//!
//! **Verification** works on the JSON as received — a [`serde_json::Value`] parsed with
//! [`crate::canonical::parse_strict`], never a re-serialized typed struct, which would
//! drop unknown members and break the signature. It has two phases so that an async caller
//! can fetch keys in between: [`proofs`] lists who signed (verification methods), the caller
//! resolves those keys, then [`verify`] checks every proof and returns [`Verified`], which
//! nothing else can construct.
//!
//! Compatibility choices:
//! - A proof that carries `@context` must carry exactly the document's `@context`
//!   ([`ProofError::ContextMismatch`]; the W3C text only asks the document's to *start
//!   with* it — we are stricter).
//! - A proof *without* `@context` is accepted and hashed as received: that is what
//!   FEP-8b32 implementations produced before 2024 (vector `2023-08-legacy-proof-without-
//!   context`). Removing the `@context` of a proof made with one breaks its signature, since
//!   the proof config is hashed as received.
//! - Members of the proof other than `proofValue` (`expires`, `domain`, `nonce`…) are part
//!   of the proof config, hence signed.

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::canonical::{CanonicalError, canonicalize_without};
use crate::keys::{PublicKey, Signature, SigningKey};

/// The proof `type` we produce and accept.
pub const PROOF_TYPE: &str = "DataIntegrityProof";
/// The only cryptosuite we produce and accept.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";
/// The proof purpose Passerelle uses (keys are published in the actor's `assertionMethod`).
pub const ASSERTION_METHOD: &str = "assertionMethod";

/// Why a document could not be signed or did not verify. `index` is the position of the
/// proof in the `proof` array (0 when `proof` is a single object).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ProofError {
    /// The document is not a JSON object.
    #[error("a signed document must be a JSON object, got {found}")]
    NotAnObject {
        /// The JSON type received.
        found: &'static str,
    },
    /// The document has no `proof` member, or an empty `proof` array.
    #[error("the document has no proof: add a `proof` member (DataIntegrityProof, eddsa-jcs-2022)")]
    NoProof,
    /// `proof` (or one element of a `proof` array) is not a JSON object.
    #[error(
        "proof #{index} is not a JSON object; `proof` must be an object or an array of objects"
    )]
    ProofNotAnObject {
        /// Position of the proof.
        index: usize,
    },
    /// A required member of the proof is missing or is not a string.
    #[error(
        "proof #{index}: member `{field}` is missing or not a string; it is required by eddsa-jcs-2022"
    )]
    MissingField {
        /// Position of the proof.
        index: usize,
        /// The member name.
        field: &'static str,
    },
    /// The proof `type` is not `DataIntegrityProof`.
    #[error(
        "proof #{index}: unknown proof type {found:?}; only \"DataIntegrityProof\" is accepted"
    )]
    UnknownType {
        /// Position of the proof.
        index: usize,
        /// The type received.
        found: String,
    },
    /// The cryptosuite is not `eddsa-jcs-2022`.
    #[error("proof #{index}: unknown cryptosuite {found:?}; only \"eddsa-jcs-2022\" is accepted")]
    UnknownCryptosuite {
        /// Position of the proof.
        index: usize,
        /// The cryptosuite received.
        found: String,
    },
    /// `created` is not an RFC 3339 date-time.
    #[error(
        "proof #{index}: `created` {value:?} is not an RFC 3339 date-time such as \"2026-11-23T10:00:00Z\""
    )]
    InvalidCreated {
        /// Position of the proof.
        index: usize,
        /// The value received.
        value: String,
    },
    /// The proof chains to another one (`previousProof`), which we do not support.
    #[error(
        "proof #{index} has `previousProof`: proof chains are not supported, sign as a proof set (independent proofs) instead"
    )]
    ProofChainUnsupported {
        /// Position of the proof.
        index: usize,
    },
    /// `proofValue` is absent.
    #[error("proof #{index}: `proofValue` is missing; a proof must carry its signature")]
    MissingProofValue {
        /// Position of the proof.
        index: usize,
    },
    /// `proofValue` is not `z` + base58btc of 64 bytes.
    #[error(
        "proof #{index}: malformed `proofValue`: {reason}; expected \"z\" + base58btc of a 64-byte Ed25519 signature"
    )]
    MalformedProofValue {
        /// Position of the proof.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The proof carries an `@context` different from the document's.
    #[error(
        "proof #{index}: its `@context` differs from the document's; a proof's `@context` must equal the document's `@context`"
    )]
    ContextMismatch {
        /// Position of the proof.
        index: usize,
    },
    /// The proof purpose is not the one the verifier demands.
    #[error("proof #{index}: proofPurpose {found:?} where {expected:?} is required")]
    WrongPurpose {
        /// Position of the proof.
        index: usize,
        /// The purpose demanded.
        expected: String,
        /// The purpose found.
        found: String,
    },
    /// No key was provided for the proof's verification method.
    #[error(
        "proof #{index}: no key provided for verificationMethod {verification_method:?}; resolve it (actor's assertionMethod) and pass it to verify"
    )]
    MissingKey {
        /// Position of the proof.
        index: usize,
        /// The verification method to resolve.
        verification_method: String,
    },
    /// The signature does not verify: the document or the proof was altered, or the key
    /// is not the signer's.
    #[error(
        "proof #{index}: the signature by {verification_method:?} does not verify: the document or its proof was altered, or the key is not the signer's"
    )]
    BadSignature {
        /// Position of the proof.
        index: usize,
        /// The verification method of the proof.
        verification_method: String,
    },
    /// A signer the verifier requires has no proof in the document (e.g. one proof of a
    /// set was removed).
    #[error(
        "no proof by required signer {verification_method:?}: the document must carry a proof by each required party"
    )]
    MissingSigner {
        /// The verification method required.
        verification_method: String,
    },
    /// An existing `proof` member prevents signing (not an object or array of objects).
    #[error(
        "cannot add a proof: the existing `proof` member is not an object or an array of objects"
    )]
    ExistingProofMalformed,
    /// The document (or the proof config) cannot be canonicalized.
    #[error("cannot canonicalize for the proof: {0}")]
    Canonical(#[from] CanonicalError),
}

/// Whether a new proof copies the document's `@context`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ContextMode {
    /// Copy the document's `@context` into the proof when it has one (current W3C and
    /// FEP-8b32 rule; the default).
    #[default]
    FromDocument,
    /// Produce a proof without `@context`, as FEP-8b32 implementations did before 2024.
    /// Only for reproducing such proofs in tests; never use it for new messages.
    LegacyOmit,
}

/// Options of a new proof. `created` is passed in: this crate reads no clock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProofOptions {
    /// The key id (`https://…/actor#key-…`), as listed in the signer's `assertionMethod`.
    pub verification_method: String,
    /// Proof purpose; [`ASSERTION_METHOD`] by default.
    pub proof_purpose: String,
    /// Creation time, written in RFC 3339, UTC, to the second.
    pub created: OffsetDateTime,
    /// Whether the proof copies the document's `@context`.
    pub context: ContextMode,
}

impl ProofOptions {
    /// Options for an `assertionMethod` proof by `verification_method`, created at
    /// `created`.
    pub fn new(verification_method: impl Into<String>, created: OffsetDateTime) -> Self {
        Self {
            verification_method: verification_method.into(),
            proof_purpose: ASSERTION_METHOD.to_owned(),
            created,
            context: ContextMode::FromDocument,
        }
    }

    /// Sets the proof purpose.
    #[must_use]
    pub fn with_purpose(mut self, purpose: impl Into<String>) -> Self {
        self.proof_purpose = purpose.into();
        self
    }

    /// Sets the `@context` mode.
    #[must_use]
    pub fn with_context(mut self, context: ContextMode) -> Self {
        self.context = context;
        self
    }
}

/// What a proof says about itself, read before verifying (to resolve its key).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProofInfo {
    /// Position in the `proof` array (0 for a single proof).
    pub index: usize,
    /// `type` (always [`PROOF_TYPE`] once returned).
    pub proof_type: String,
    /// `cryptosuite` (always [`CRYPTOSUITE`] once returned).
    pub cryptosuite: String,
    /// `verificationMethod`: the key to resolve.
    pub verification_method: String,
    /// `proofPurpose`.
    pub proof_purpose: String,
    /// `created`, when present.
    pub created: Option<OffsetDateTime>,
    /// Whether the proof carries an `@context` (absent in legacy proofs).
    pub has_context: bool,
}

/// What the verifier demands beyond valid signatures.
///
/// A proof set is a set: removing one proof leaves a document that the remaining signers
/// still validly signed. When several parties must have signed (a convention), say so in
/// [`VerifyOptions::required_signers`], or check [`Verified::signers`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// The proof purpose every proof must have; `None` accepts any.
    pub purpose: Option<String>,
    /// Verification methods that must each have a valid proof.
    pub required_signers: Vec<String>,
}

impl Default for VerifyOptions {
    /// Demands [`ASSERTION_METHOD`] and no particular signer.
    fn default() -> Self {
        Self {
            purpose: Some(ASSERTION_METHOD.to_owned()),
            required_signers: Vec::new(),
        }
    }
}

impl VerifyOptions {
    /// Demands `purpose` (or any purpose with `None`), and no particular signer.
    pub fn with_purpose(purpose: Option<&str>) -> Self {
        Self {
            purpose: purpose.map(str::to_owned),
            required_signers: Vec::new(),
        }
    }

    /// Also requires a valid proof by `verification_method`.
    #[must_use]
    pub fn require_signer(mut self, verification_method: impl Into<String>) -> Self {
        self.required_signers.push(verification_method.into());
        self
    }
}

/// A value whose proofs all verified. Only [`verify`] makes one: the field is private, there
/// is no public constructor and no `Deserialize`.
///
/// ```compile_fail,E0451
/// // Private fields: cannot be built by hand.
/// let v = passerelle_protocol::proof::Verified { inner: 1_u8, signers: Vec::new() };
/// ```
///
/// ```compile_fail,E0277
/// // No `Deserialize`: cannot be read from JSON.
/// let v: passerelle_protocol::proof::Verified<serde_json::Value> = serde_json::from_str("{}").unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Verified<T> {
    inner: T,
    signers: Vec<String>,
}

impl<T> Verified<T> {
    /// The verified value.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// A reference to the verified value.
    pub fn as_inner(&self) -> &T {
        &self.inner
    }

    /// The verification methods whose proofs verified, in proof order.
    pub fn signers(&self) -> &[String] {
        &self.signers
    }

    /// Converts the verified value (e.g. parses the verified JSON into a typed message),
    /// keeping the signers attached.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verified<U> {
        Verified {
            inner: f(self.inner),
            signers: self.signers,
        }
    }

    /// Fallible [`Verified::map`].
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Verified<U>, E> {
        Ok(Verified {
            inner: f(self.inner)?,
            signers: self.signers,
        })
    }
}

/// Adds an `eddsa-jcs-2022` proof by `key` to `doc`. A document already signed keeps its
/// proofs: `proof` becomes (or stays) an array, and the new proof, like the others, signs
/// the document without any proof.
///
/// # Errors
/// [`ProofError::NotAnObject`], [`ProofError::ExistingProofMalformed`] or
/// [`ProofError::Canonical`].
///
/// # Examples
/// ```
/// use passerelle_protocol::keys::SigningKey;
/// use passerelle_protocol::proof::{self, ProofOptions};
/// let key = SigningKey::from_seed(&[1; 32]);
/// let doc = serde_json::json!({"type": "Note", "content": "Bonjour"});
/// let options = ProofOptions::new("https://a.example/actor#k1", time::macros::datetime!(2026-11-23 10:00 UTC));
/// let signed = proof::sign(doc, &key, &options).unwrap();
/// let keys = [("https://a.example/actor#k1".to_owned(), key.public_key())];
/// let verified = proof::verify(signed, &keys).unwrap();
/// assert_eq!(verified.signers(), ["https://a.example/actor#k1"]);
/// ```
pub fn sign(doc: Value, key: &SigningKey, options: &ProofOptions) -> Result<Value, ProofError> {
    let Value::Object(mut map) = doc else {
        return Err(ProofError::NotAnObject {
            found: json_type(&doc),
        });
    };
    let existing = match map.get("proof") {
        None => Vec::new(),
        Some(Value::Object(p)) => vec![Value::Object(p.clone())],
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => items.clone(),
        Some(_) => return Err(ProofError::ExistingProofMalformed),
    };
    let created = options
        .created
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(options.created)
        .format(&Rfc3339)
        .map_err(|e| CanonicalError::Serialize(e.to_string()))?;
    let mut proof = Map::new();
    proof.insert("type".into(), PROOF_TYPE.into());
    proof.insert("cryptosuite".into(), CRYPTOSUITE.into());
    proof.insert("created".into(), created.into());
    proof.insert(
        "verificationMethod".into(),
        options.verification_method.clone().into(),
    );
    proof.insert("proofPurpose".into(), options.proof_purpose.clone().into());
    if options.context == ContextMode::FromDocument
        && let Some(context) = map.get("@context")
    {
        proof.insert("@context".into(), context.clone());
    }
    let doc_hash = Sha256::digest(canonicalize_without(&map, "proof")?);
    let config_hash = Sha256::digest(canonicalize_without(&proof, "proofValue")?);
    let mut hash_data = [0u8; 64];
    hash_data[..32].copy_from_slice(&config_hash);
    hash_data[32..].copy_from_slice(&doc_hash);
    let signature = key.sign(&hash_data);
    proof.insert(
        "proofValue".into(),
        format!("z{}", bs58::encode(signature.to_bytes()).into_string()).into(),
    );
    let new_proof = Value::Object(proof);
    let proof_value = if existing.is_empty() {
        new_proof
    } else {
        let mut all = existing;
        all.push(new_proof);
        Value::Array(all)
    };
    map.insert("proof".into(), proof_value);
    Ok(Value::Object(map))
}

/// Lists the proofs of `doc` (who signed, with what), checking their shape but not their
/// signatures: call it to know which keys to resolve before [`verify`].
///
/// # Errors
/// [`ProofError::NotAnObject`], [`ProofError::NoProof`], [`ProofError::ProofNotAnObject`],
/// [`ProofError::MissingField`], [`ProofError::UnknownType`],
/// [`ProofError::UnknownCryptosuite`], [`ProofError::InvalidCreated`],
/// [`ProofError::ProofChainUnsupported`].
pub fn proofs(doc: &Value) -> Result<Vec<ProofInfo>, ProofError> {
    let map = doc.as_object().ok_or(ProofError::NotAnObject {
        found: json_type(doc),
    })?;
    proof_objects(map)?
        .into_iter()
        .enumerate()
        .map(|(index, proof)| proof_info(index, proof))
        .collect()
}

/// Verifies every proof of `doc` with `keys` (pairs of verification method and key),
/// demanding the [`ASSERTION_METHOD`] purpose. Each proof must verify and have its key in
/// `keys`. `doc` must be the JSON as received (parse it with
/// [`crate::canonical::parse_strict`]).
///
/// # Errors
/// Any [`ProofError`] but [`ProofError::ExistingProofMalformed`]; the first failing proof
/// is reported.
pub fn verify(doc: Value, keys: &[(String, PublicKey)]) -> Result<Verified<Value>, ProofError> {
    verify_with(doc, keys, &VerifyOptions::default())
}

/// [`verify`] with explicit [`VerifyOptions`].
///
/// # Errors
/// As [`verify`].
pub fn verify_with(
    doc: Value,
    keys: &[(String, PublicKey)],
    options: &VerifyOptions,
) -> Result<Verified<Value>, ProofError> {
    let signers = verify_ref(&doc, keys, options)?;
    Ok(Verified {
        inner: doc,
        signers,
    })
}

/// [`verify_with`] on a borrowed document, for a caller that keeps it (no copy is made):
/// returns the signers' verification methods, in proof order.
///
/// # Errors
/// As [`verify`].
pub fn verify_ref(
    doc: &Value,
    keys: &[(String, PublicKey)],
    options: &VerifyOptions,
) -> Result<Vec<String>, ProofError> {
    let map = doc.as_object().ok_or(ProofError::NotAnObject {
        found: json_type(doc),
    })?;
    let proof_objects = proof_objects(map)?;
    let mut infos = Vec::with_capacity(proof_objects.len());
    for (index, proof) in proof_objects.iter().enumerate() {
        let info = proof_info(index, proof)?;
        if let Some(expected) = &options.purpose
            && &info.proof_purpose != expected
        {
            return Err(ProofError::WrongPurpose {
                index,
                expected: expected.clone(),
                found: info.proof_purpose,
            });
        }
        if let Some(context) = proof.get("@context")
            && map.get("@context") != Some(context)
        {
            return Err(ProofError::ContextMismatch { index });
        }
        infos.push(info);
    }
    let doc_hash = Sha256::digest(canonicalize_without(map, "proof")?);
    for (proof, info) in proof_objects.iter().zip(&infos) {
        let index = info.index;
        let signature = proof_value(index, proof)?;
        let key = keys
            .iter()
            .find(|(vm, _)| *vm == info.verification_method)
            .map(|(_, key)| key)
            .ok_or_else(|| ProofError::MissingKey {
                index,
                verification_method: info.verification_method.clone(),
            })?;
        let config_hash = Sha256::digest(canonicalize_without(proof, "proofValue")?);
        let mut hash_data = [0u8; 64];
        hash_data[..32].copy_from_slice(&config_hash);
        hash_data[32..].copy_from_slice(&doc_hash);
        key.verify(&hash_data, &signature)
            .map_err(|_| ProofError::BadSignature {
                index,
                verification_method: info.verification_method.clone(),
            })?;
    }
    let signers: Vec<String> = infos.into_iter().map(|i| i.verification_method).collect();
    if let Some(missing) = options
        .required_signers
        .iter()
        .find(|required| !signers.contains(required))
    {
        return Err(ProofError::MissingSigner {
            verification_method: missing.clone(),
        });
    }
    Ok(signers)
}

/// The proof objects of a document, in order.
fn proof_objects(map: &Map<String, Value>) -> Result<Vec<&Map<String, Value>>, ProofError> {
    match map.get("proof") {
        None => Err(ProofError::NoProof),
        Some(Value::Object(p)) => Ok(vec![p]),
        Some(Value::Array(items)) if items.is_empty() => Err(ProofError::NoProof),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                item.as_object()
                    .ok_or(ProofError::ProofNotAnObject { index })
            })
            .collect(),
        Some(_) => Err(ProofError::ProofNotAnObject { index: 0 }),
    }
}

fn proof_info(index: usize, proof: &Map<String, Value>) -> Result<ProofInfo, ProofError> {
    let field = |field: &'static str| {
        proof
            .get(field)
            .and_then(Value::as_str)
            .ok_or(ProofError::MissingField { index, field })
    };
    let proof_type = field("type")?;
    if proof_type != PROOF_TYPE {
        return Err(ProofError::UnknownType {
            index,
            found: proof_type.to_owned(),
        });
    }
    let cryptosuite = field("cryptosuite")?;
    if cryptosuite != CRYPTOSUITE {
        return Err(ProofError::UnknownCryptosuite {
            index,
            found: cryptosuite.to_owned(),
        });
    }
    if proof.contains_key("previousProof") {
        return Err(ProofError::ProofChainUnsupported { index });
    }
    let created = match proof.get("created") {
        None => None,
        Some(value) => {
            let text = value.as_str().ok_or(ProofError::MissingField {
                index,
                field: "created",
            })?;
            Some(
                OffsetDateTime::parse(text, &Rfc3339).map_err(|_| ProofError::InvalidCreated {
                    index,
                    value: text.to_owned(),
                })?,
            )
        }
    };
    Ok(ProofInfo {
        index,
        proof_type: proof_type.to_owned(),
        cryptosuite: cryptosuite.to_owned(),
        verification_method: field("verificationMethod")?.to_owned(),
        proof_purpose: field("proofPurpose")?.to_owned(),
        created,
        has_context: proof.contains_key("@context"),
    })
}

fn proof_value(index: usize, proof: &Map<String, Value>) -> Result<Signature, ProofError> {
    let malformed = |reason| ProofError::MalformedProofValue { index, reason };
    let value = match proof.get("proofValue") {
        None => return Err(ProofError::MissingProofValue { index }),
        Some(Value::String(s)) => s,
        Some(_) => return Err(malformed("not a string")),
    };
    let rest = value
        .strip_prefix('z')
        .ok_or_else(|| malformed("does not start with 'z' (multibase base58btc)"))?;
    let bytes = bs58::decode(rest)
        .into_vec()
        .map_err(|_| malformed("not valid base58btc"))?;
    Signature::from_slice(&bytes).map_err(|_| malformed("does not decode to 64 bytes"))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn key(n: u8) -> (SigningKey, String) {
        (
            SigningKey::from_seed(&[n; 32]),
            format!("https://n{n}.example/actor#k"),
        )
    }

    #[test]
    fn sign_then_verify_and_shape() {
        let (k, vm) = key(1);
        let doc = json!({"@context": ["https://www.w3.org/ns/activitystreams"], "type": "Note"});
        let signed = sign(
            doc,
            &k,
            &ProofOptions::new(&vm, datetime!(2026-11-23 10:00:00.5 +01:00)),
        )
        .unwrap();
        let proof = &signed["proof"];
        assert_eq!(proof["created"], "2026-11-23T09:00:00Z");
        assert_eq!(proof["@context"], signed["@context"]);
        assert!(proof["proofValue"].as_str().unwrap().starts_with('z'));
        let infos = proofs(&signed).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].verification_method, vm);
        assert_eq!(infos[0].created, Some(datetime!(2026-11-23 09:00 UTC)));
        let v = verify(signed.clone(), &[(vm.clone(), k.public_key())]).unwrap();
        assert_eq!(v.as_inner(), &signed);
        assert_eq!(v.signers(), [vm]);
    }

    #[test]
    fn purpose_is_demanded_when_asked() {
        let (k, vm) = key(2);
        let opts =
            ProofOptions::new(&vm, datetime!(2026-11-23 10:00 UTC)).with_purpose("authentication");
        let signed = sign(json!({"a": 1}), &k, &opts).unwrap();
        let keys = [(vm, k.public_key())];
        assert!(matches!(
            verify(signed.clone(), &keys),
            Err(ProofError::WrongPurpose { index: 0, .. })
        ));
        assert!(verify_with(signed.clone(), &keys, &VerifyOptions::with_purpose(None)).is_ok());
        assert!(
            verify_with(
                signed,
                &keys,
                &VerifyOptions::with_purpose(Some("authentication"))
            )
            .is_ok()
        );
    }

    #[test]
    fn shape_errors_are_distinct() {
        let (k, vm) = key(3);
        let keys = [(vm.clone(), k.public_key())];
        let signed = sign(
            json!({"a": 1}),
            &k,
            &ProofOptions::new(&vm, datetime!(2026-11-23 10:00 UTC)),
        )
        .unwrap();
        let with = |f: &dyn Fn(&mut Map<String, Value>)| {
            let mut d = signed.clone();
            f(d["proof"].as_object_mut().unwrap());
            verify(d, &keys).unwrap_err()
        };
        assert_eq!(
            verify(json!([1]), &keys).unwrap_err(),
            ProofError::NotAnObject { found: "an array" }
        );
        assert_eq!(
            verify(json!({"a": 1}), &keys).unwrap_err(),
            ProofError::NoProof
        );
        assert_eq!(
            verify(json!({"proof": []}), &keys).unwrap_err(),
            ProofError::NoProof
        );
        assert_eq!(
            verify(json!({"proof": [1]}), &keys).unwrap_err(),
            ProofError::ProofNotAnObject { index: 0 }
        );
        assert!(matches!(
            with(&|p| {
                p.remove("proofValue");
            }),
            ProofError::MissingProofValue { .. }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("proofValue".into(), json!(7));
            }),
            ProofError::MalformedProofValue {
                reason: "not a string",
                ..
            }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("proofValue".into(), json!("z0OIl"));
            }),
            ProofError::MalformedProofValue {
                reason: "not valid base58btc",
                ..
            }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("proofValue".into(), json!("u1234"));
            }),
            ProofError::MalformedProofValue { .. }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("proofValue".into(), json!("z2222"));
            }),
            ProofError::MalformedProofValue {
                reason: "does not decode to 64 bytes",
                ..
            }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("type".into(), json!("Ed25519Signature2020"));
            }),
            ProofError::UnknownType { .. }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("cryptosuite".into(), json!("eddsa-rdfc-2022"));
            }),
            ProofError::UnknownCryptosuite { .. }
        ));
        assert!(matches!(
            with(&|p| {
                p.remove("verificationMethod");
            }),
            ProofError::MissingField {
                field: "verificationMethod",
                ..
            }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("created".into(), json!("hier"));
            }),
            ProofError::InvalidCreated { .. }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("previousProof".into(), json!("urn:x"));
            }),
            ProofError::ProofChainUnsupported { .. }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("@context".into(), json!("https://x"));
            }),
            ProofError::ContextMismatch { .. }
        ));
        assert!(matches!(
            with(&|p| {
                p.insert("nonce".into(), json!("abc"));
            }),
            ProofError::BadSignature { .. }
        ));
        assert!(matches!(
            verify(signed.clone(), &[]).unwrap_err(),
            ProofError::MissingKey { .. }
        ));
        let (other, _) = key(4);
        assert!(matches!(
            verify(signed.clone(), &[(vm, other.public_key())]).unwrap_err(),
            ProofError::BadSignature { .. }
        ));
        assert_eq!(
            sign(
                json!({"proof": 1}),
                &k,
                &ProofOptions::new("x", datetime!(2026-11-23 10:00 UTC))
            )
            .unwrap_err(),
            ProofError::ExistingProofMalformed
        );
    }
}
