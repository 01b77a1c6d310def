//! [`ProtocolError`]: a refusal of the federation protocol (spec/protocol.md §12), with its
//! status and stable `code`. The HTTP layer turns it into a problem document; senders
//! dispatch on the code and the status (retry classes of §8.2).

use passerelle_protocol::canonical::CanonicalError;
use passerelle_protocol::digest::DigestError;
use passerelle_protocol::httpsig::HttpSigError;
use passerelle_protocol::proof::ProofError;
use passerelle_protocol::vocab::{ParseError, Problems, Rule};

use super::actors::KeyLookupError;

/// A protocol refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct ProtocolError {
    /// HTTP status.
    pub status: u16,
    /// Stable code of §12.
    pub code: &'static str,
    /// What was wrong and how to fix it (English: partners' operators read it).
    pub detail: String,
    /// Validation problems (`validation_failed`): JSON pointer and message.
    pub errors: Vec<(String, String)>,
    /// Seconds to wait before retrying (`Retry-After`), when the refusal says so.
    pub retry_after: Option<u64>,
}

impl ProtocolError {
    /// A refusal with `status`, `code` and `detail`.
    pub fn new(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// `415 unsupported_media_type`.
    pub fn media_type(found: &str) -> Self {
        Self::new(
            415,
            "unsupported_media_type",
            format!(
                "Content-Type {found:?} is not accepted; send application/activity+json (or application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\")"
            ),
        )
    }

    /// `413 body_too_large`.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "body_too_large",
            format!("the body is larger than {limit} bytes (protocol §11)"),
        )
    }

    /// `400 digest_missing`.
    pub fn digest_missing() -> Self {
        Self::new(
            400,
            "digest_missing",
            "a request with a body must carry Content-Digest with a sha-256 member (RFC 9530)",
        )
    }

    /// `403 actor_blocked`.
    pub fn blocked(actor: &str) -> Self {
        Self::new(
            403,
            "actor_blocked",
            format!("{actor} is blocked by this node's operator"),
        )
    }

    /// `403 not_a_partner`.
    pub fn not_a_partner(actor: &str, what: &str) -> Self {
        Self::new(
            403,
            "not_a_partner",
            format!(
                "{actor} is not a partner of this node in either direction; only Follow (and the answer to our Follow) is accepted from it, not {what} (protocol §7.5)"
            ),
        )
    }

    /// Whether a sender should retry (5xx).
    pub fn is_retryable(&self) -> bool {
        self.status >= 500
    }
}

impl From<DigestError> for ProtocolError {
    fn from(e: DigestError) -> Self {
        let code = match &e {
            DigestError::Mismatch { .. } => "digest_mismatch",
            _ => "digest_invalid",
        };
        Self::new(400, code, e.to_string())
    }
}

impl From<HttpSigError> for ProtocolError {
    fn from(e: HttpSigError) -> Self {
        let (status, code) = match &e {
            HttpSigError::MissingSignatureInput
            | HttpSigError::MissingSignature
            | HttpSigError::LabelNotFound { .. } => (401, "signature_missing"),
            HttpSigError::UnsupportedAlgorithm { .. } => (400, "signature_algorithm_unsupported"),
            HttpSigError::ComponentNotCovered { .. } => (400, "signature_component_missing"),
            HttpSigError::MissingCreated
            | HttpSigError::MissingExpires
            | HttpSigError::CreatedTooOld { .. }
            | HttpSigError::CreatedInFuture { .. }
            | HttpSigError::Expired { .. } => (401, "signature_expired"),
            HttpSigError::ContentDigest(d) => return d.clone().into(),
            _ => (401, "signature_invalid"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<KeyLookupError> for ProtocolError {
    fn from(e: KeyLookupError) -> Self {
        let (status, code) = match &e {
            KeyLookupError::Unknown { .. } => (401, "key_unknown"),
            KeyLookupError::Expired { .. } => (401, "key_expired"),
            KeyLookupError::Revoked { .. } => (401, "key_revoked"),
            KeyLookupError::FetchFailed { .. } => (503, "key_fetch_failed"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<CanonicalError> for ProtocolError {
    fn from(e: CanonicalError) -> Self {
        match &e {
            CanonicalError::TooDeep { .. } => Self::new(400, "json_too_deep", e.to_string()),
            CanonicalError::TooLarge { max, .. } => Self::too_large(*max),
            _ => Self::new(400, "json_invalid", e.to_string()),
        }
    }
}

impl From<ParseError> for ProtocolError {
    fn from(e: ParseError) -> Self {
        match &e {
            ParseError::UnknownType { .. } => Self::new(400, "unknown_type", e.to_string()),
            ParseError::Json(_) => Self::new(400, "json_invalid", e.to_string()),
            _ => {
                let mut err = Self::new(422, "validation_failed", e.to_string());
                err.errors.push((String::new(), e.to_string()));
                err
            }
        }
    }
}

impl From<ProofError> for ProtocolError {
    fn from(e: ProofError) -> Self {
        let code = match &e {
            ProofError::NoProof => "proof_missing",
            ProofError::UnknownType { .. } | ProofError::UnknownCryptosuite { .. } => {
                "proof_unsupported"
            }
            _ => "proof_invalid",
        };
        Self::new(400, code, e.to_string())
    }
}

impl From<Problems> for ProtocolError {
    /// Origin and id rules have their own codes; everything else is `validation_failed`
    /// with every problem listed.
    fn from(p: Problems) -> Self {
        if p.any(|r| matches!(r, Rule::OriginMismatch { .. })) {
            return Self::new(403, "origin_mismatch", p.to_string());
        }
        if p.any(|r| matches!(r, Rule::Addressing { .. })) {
            return Self::new(403, "addressing_forbidden", p.to_string());
        }
        if p.any(|r| matches!(r, Rule::PlainHttp)) {
            return Self::new(400, "id_invalid", p.to_string());
        }
        let mut err = Self::new(422, "validation_failed", p.to_string());
        err.errors = p
            .iter()
            .map(|problem| (problem.path.clone(), problem.to_string()))
            .collect();
        err
    }
}
