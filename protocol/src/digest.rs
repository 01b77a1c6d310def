//! RFC 9530 `Content-Digest`.
//!
//! A `Content-Digest` field is an RFC 8941 Dictionary whose keys are hash algorithm names
//! and whose values are Byte Sequences, e.g.
//! `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`. Passerelle always *sends*
//! `sha-256`; it *accepts* `sha-256` and `sha-512` and ignores other (deprecated or unknown)
//! algorithms as long as one supported digest is present. When several supported digests are
//! present, every one of them must match.
//!
//! Byte Sequences are decoded strictly (RFC 8941 §3.3.5 base64 with canonical padding): the
//! `…FabDg==:` values with a superfluous `=` printed in some RFC 9530 examples are refused
//! as [`DigestError::Malformed`] rather than guessed at.

use base64::Engine as _;
use sha2::Digest as _;

/// A digest algorithm this crate can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// SHA-256 (`sha-256`), what Passerelle sends.
    Sha256,
    /// SHA-512 (`sha-512`), accepted from peers.
    Sha512,
}

impl DigestAlgorithm {
    /// The algorithm's key in the `Content-Digest` dictionary (`sha-256`, `sha-512`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Sha256 => "sha-256",
            Self::Sha512 => "sha-512",
        }
    }

    /// Parses an algorithm key; `None` for unsupported ones.
    pub fn from_key(key: &str) -> Option<Self> {
        match key {
            "sha-256" => Some(Self::Sha256),
            "sha-512" => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The digest of `body` with this algorithm.
    pub fn digest(self, body: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => sha2::Sha256::digest(body).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(body).to_vec(),
        }
    }
}

/// Why a `Content-Digest` field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The field is not an RFC 8941 Dictionary of Byte Sequences.
    #[error(
        "malformed Content-Digest {value:?}: {reason}; expected an RFC 8941 dictionary such as sha-256=:<base64>:"
    )]
    Malformed {
        /// The field value received.
        value: String,
        /// What the parser found wrong.
        reason: String,
    },
    /// No member uses an algorithm this node checks.
    #[error(
        "Content-Digest has no supported algorithm (found: {found:?}); send sha-256 (or sha-512)"
    )]
    NoSupportedAlgorithm {
        /// The algorithm keys present in the field.
        found: Vec<String>,
    },
    /// A supported digest does not match the body.
    #[error(
        "Content-Digest {algorithm} does not match the body ({body_len} bytes): the body was altered or the digest was computed over other bytes"
    )]
    Mismatch {
        /// The algorithm key whose digest differs.
        algorithm: &'static str,
        /// Length of the body that was hashed.
        body_len: usize,
    },
}

/// The `Content-Digest` field value for `body`, with SHA-256: `sha-256=:<base64>:`.
///
/// # Examples
/// ```
/// use passerelle_protocol::digest::content_digest;
/// assert_eq!(
///     content_digest(br#"{"hello": "world"}"#),
///     "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
/// );
/// ```
pub fn content_digest(body: &[u8]) -> String {
    let digest = sha2::Sha256::digest(body);
    let mut out = String::with_capacity(54);
    out.push_str("sha-256=:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut out);
    out.push(':');
    out
}

/// Checks a `Content-Digest` field value against `body`.
///
/// Returns the strongest supported algorithm that was checked (SHA-512 over SHA-256).
/// Unsupported members (`md5`, `unixsum`, unknown keys) are ignored when at least one
/// supported member is present; every supported member must match.
///
/// # Errors
/// [`DigestError::Malformed`], [`DigestError::NoSupportedAlgorithm`] or
/// [`DigestError::Mismatch`].
pub fn verify_content_digest(
    header_value: &str,
    body: &[u8],
) -> Result<DigestAlgorithm, DigestError> {
    let malformed = |reason: String| DigestError::Malformed {
        value: header_value.to_owned(),
        reason,
    };
    let dict: sfv::Dictionary = sfv::Parser::new(header_value.trim())
        .parse()
        .map_err(|e| malformed(e.to_string()))?;
    let mut strongest: Option<DigestAlgorithm> = None;
    let mut found = Vec::with_capacity(dict.len());
    for (key, entry) in &dict {
        found.push(key.as_str().to_owned());
        let Some(algorithm) = DigestAlgorithm::from_key(key.as_str()) else {
            continue;
        };
        let expected = match entry {
            sfv::ListEntry::Item(item) => item.bare_item.as_byte_sequence().ok_or_else(|| {
                malformed(format!(
                    "the {} member is not a byte sequence",
                    key.as_str()
                ))
            })?,
            sfv::ListEntry::InnerList(_) => {
                return Err(malformed(format!(
                    "the {} member is an inner list, not a byte sequence",
                    key.as_str()
                )));
            }
        };
        if algorithm.digest(body) != expected {
            return Err(DigestError::Mismatch {
                algorithm: algorithm.key(),
                body_len: body.len(),
            });
        }
        strongest = match (strongest, algorithm) {
            (Some(DigestAlgorithm::Sha512), _) => Some(DigestAlgorithm::Sha512),
            (_, a) => Some(a),
        };
    }
    strongest.ok_or(DigestError::NoSupportedAlgorithm { found })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let body = b"bonjour la collectivite";
        let field = content_digest(body);
        assert_eq!(
            verify_content_digest(&field, body),
            Ok(DigestAlgorithm::Sha256)
        );
        assert!(matches!(
            verify_content_digest(&field, b"bonjour la collectivitE"),
            Err(DigestError::Mismatch {
                algorithm: "sha-256",
                ..
            })
        ));
    }

    #[test]
    fn unsupported_only_and_malformed() {
        assert!(matches!(
            verify_content_digest("md5=:Sd/dVLAcvNLSq16eXua5uQ==:", b"x"),
            Err(DigestError::NoSupportedAlgorithm { found }) if found == ["md5"]
        ));
        assert!(matches!(
            verify_content_digest("sha-256=X48E", b"x"),
            Err(DigestError::Malformed { .. })
        ));
        assert!(matches!(
            verify_content_digest("sha-256=(:AA==:)", b"x"),
            Err(DigestError::Malformed { .. })
        ));
    }
}
