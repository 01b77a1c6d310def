//! Ed25519 keys and their Multikey encoding (FEP-521a).
//!
//! A node signs with one [`SigningKey`] at a time and publishes every [`PublicKey`] it has
//! used, as a Multikey (`publicKeyMultibase` = `z` + base58btc(`0xed 0x01` ‖ 32 key bytes))
//! in its actor's `assertionMethod`. Only Ed25519 Multikeys are accepted: an RSA, X25519,
//! P-256… Multikey is refused with [`KeyError::UnsupportedKeyType`] naming its type.
//!
//! # Strict verification
//!
//! [`PublicKey::verify`] is ed25519-dalek's `verify_strict`. Against the 151 Wycheproof
//! cases it gives exactly Wycheproof's verdicts (as OpenSSL and libsodium do); the cases
//! below are those a careless verifier accepts, with how we treat them
//! (`protocol/tests/it/ed25519.rs` checks each, by tcId):
//!
//! - **Malleable S** (`S ≥ L`, tcId 63–66 and 85): refused. RFC 8032 §5.1.7 requires
//!   `S < L`; otherwise `S + L` gives a second valid-looking signature for the same message.
//! - **High bits of S / S reduced mod p** (tcId 67–70): refused by the same range check.
//! - **Non-canonical or altered R** (tcId 42–59, 151): refused. The encoding of the
//!   recomputed `R` is compared byte for byte with the received one, so a flipped sign bit,
//!   an unused high bit or `y = 1` with the sign of `x` set never verifies.
//! - **R of small order / R not a point** (tcId 60–62): refused; strict verification
//!   refuses an `R` of small order (here the identity) and any `R` that does not decode.
//! - **Small-order public keys** (not in that Wycheproof file; tested with the identity and
//!   a point of order 8): refused. With such a key, `R` = identity and `S` = 0 satisfy the
//!   RFC 8032 equation for *every* message; `verify_strict` refuses weak keys outright.
//!   [`PublicKey::from_bytes`] still accepts them (they are curve points), so a key is only
//!   "bad" when it is used.
//! - **Wrong signature length** (truncated, trailing garbage, tcId 30–41): refused by
//!   [`Signature::from_slice`] before any curve arithmetic.
//! - **Cofactored vs cofactorless equation**: `verify_strict` uses the cofactorless check
//!   (`[S]B = R + [k]A`), as RFC 8032 permits; with small-order `R` and `A` refused, both
//!   equations give the same verdicts on honest signatures. Batch verification is *not*
//!   used: it skips the weak-key checks.
//!
//! Secret keys never appear in `Debug` output and are zeroized when dropped.

use std::fmt;

use ed25519_dalek::Signer as _;
use zeroize::Zeroizing;

/// Multicodec prefix of an Ed25519 public key (`ed25519-pub`, varint of 0xed).
pub const MULTICODEC_ED25519_PUB: [u8; 2] = [0xed, 0x01];
/// Multicodec prefix of an Ed25519 private key (`ed25519-priv`, varint of 0x1300).
pub const MULTICODEC_ED25519_PRIV: [u8; 2] = [0x80, 0x26];

/// Errors about keys and raw signatures.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Rng(String),
    /// The bytes are not a valid Ed25519 public key (wrong length or not a curve point).
    #[error("invalid Ed25519 public key: {0}")]
    InvalidPublicKey(String),
    /// A Multikey string is malformed.
    #[error("invalid Multikey {value:?}: {reason}")]
    InvalidMultikey {
        /// The string received (public keys only; private keys are never echoed).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A well-formed Multikey of a type we do not accept (RSA, X25519, P-256…).
    #[error(
        "unsupported Multikey type {key_type} in {prefix:?}…: Passerelle accepts Ed25519 keys only (publicKeyMultibase starting with \"z6Mk\")"
    )]
    UnsupportedKeyType {
        /// The multicodec name of the key type found (`rsa-pub`, `x25519-pub`…).
        key_type: &'static str,
        /// The first characters of the value received.
        prefix: String,
    },
    /// A signature has the wrong length.
    #[error("invalid Ed25519 signature: expected 64 bytes, got {0}")]
    InvalidSignatureLength(usize),
    /// The signature does not verify under the key (strict verification).
    #[error("Ed25519 signature verification failed")]
    BadSignature,
}

/// An Ed25519 signing (secret) key. Its `Debug` output hides the secret, and the secret is
/// zeroized on drop.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// Generates a new key from the operating system's random number generator.
    ///
    /// # Errors
    /// [`KeyError::Rng`] when the system RNG is unavailable.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| KeyError::Rng(e.to_string()))?;
        Ok(Self::from_seed(&seed))
    }

    /// Builds a key from its 32-byte seed (the RFC 8032 "secret key").
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, in a buffer that is zeroized on drop.
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message` (deterministic, RFC 8032).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }

    /// The private key as a Multikey string (`z` + base58btc(`0x80 0x26` ‖ seed)), the form
    /// used in key files. Keep it secret.
    pub fn to_multikey_secret(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(34));
        bytes.extend_from_slice(&MULTICODEC_ED25519_PRIV);
        bytes.extend_from_slice(self.seed().as_ref());
        Zeroizing::new(format!("z{}", bs58::encode(bytes.as_slice()).into_string()))
    }

    /// Parses a private key Multikey string (`z3u2…`).
    ///
    /// # Errors
    /// [`KeyError::InvalidMultikey`] (the value itself is not echoed).
    pub fn from_multikey_secret(value: &str) -> Result<Self, KeyError> {
        let err = |reason| KeyError::InvalidMultikey {
            value: "<secret>".to_owned(),
            reason,
        };
        let rest = value
            .trim()
            .strip_prefix('z')
            .ok_or_else(|| err("must start with 'z' (base58btc)"))?;
        let bytes = Zeroizing::new(
            bs58::decode(rest)
                .into_vec()
                .map_err(|_| err("not valid base58btc"))?,
        );
        let seed = bytes
            .strip_prefix(&MULTICODEC_ED25519_PRIV)
            .ok_or_else(|| err("not an ed25519-priv multicodec key (prefix 0x8026)"))?;
        let seed: &[u8; 32] = seed
            .try_into()
            .map_err(|_| err("an Ed25519 private key has 32 bytes"))?;
        Ok(Self::from_seed(seed))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// An Ed25519 public (verifying) key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Parses 32 raw bytes.
    ///
    /// # Errors
    /// [`KeyError::InvalidPublicKey`] when the bytes are not a curve point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|e| KeyError::InvalidPublicKey(e.to_string()))
    }

    /// The 32 raw bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The Multikey form, `z6Mk…`.
    pub fn to_multikey(&self) -> String {
        let mut bytes = Vec::with_capacity(34);
        bytes.extend_from_slice(&MULTICODEC_ED25519_PUB);
        bytes.extend_from_slice(self.0.as_bytes());
        format!("z{}", bs58::encode(bytes).into_string())
    }

    /// Parses a Multikey `publicKeyMultibase` value (`z6Mk…`).
    ///
    /// # Errors
    /// [`KeyError::InvalidMultikey`] naming what is wrong, or
    /// [`KeyError::InvalidPublicKey`].
    pub fn from_multikey(value: &str) -> Result<Self, KeyError> {
        let err = |reason| KeyError::InvalidMultikey {
            value: value.to_owned(),
            reason,
        };
        let rest = value
            .strip_prefix('z')
            .ok_or_else(|| err("must start with 'z' (base58btc)"))?;
        let bytes = bs58::decode(rest)
            .into_vec()
            .map_err(|_| err("not valid base58btc"))?;
        let Some(key) = bytes.strip_prefix(&MULTICODEC_ED25519_PUB) else {
            return Err(match other_key_type(&bytes) {
                Some(key_type) => KeyError::UnsupportedKeyType {
                    key_type,
                    prefix: value.chars().take(4).collect(),
                },
                None => err("not an ed25519-pub multicodec key (prefix 0xed01)"),
            });
        };
        let key: &[u8; 32] = key
            .try_into()
            .map_err(|_| err("an Ed25519 public key has 32 bytes"))?;
        Self::from_bytes(key)
    }

    /// Verifies `signature` over `message`, strictly (RFC 8032 with canonical `S`, and
    /// refusing small-order keys and non-canonical `R`).
    ///
    /// # Errors
    /// [`KeyError::BadSignature`].
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| KeyError::BadSignature)
    }
}

/// Names the multicodec key type that `bytes` starts with, for the key types other than
/// `ed25519-pub` that a Multikey is likely to carry.
fn other_key_type(bytes: &[u8]) -> Option<&'static str> {
    const KNOWN: &[([u8; 2], &str)] = &[
        ([0x85, 0x24], "rsa-pub"),
        ([0xec, 0x01], "x25519-pub"),
        ([0x80, 0x24], "p256-pub"),
        ([0x81, 0x24], "p384-pub"),
        ([0xe7, 0x01], "secp256k1-pub"),
        (
            [0x80, 0x26],
            "ed25519-priv (a SECRET key, not a public one)",
        ),
    ];
    KNOWN
        .iter()
        .find(|(prefix, _)| bytes.starts_with(prefix))
        .map(|(_, name)| *name)
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_multikey())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_multikey())
    }
}

/// A 64-byte Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// Parses a signature from a byte slice.
    ///
    /// # Errors
    /// [`KeyError::InvalidSignatureLength`] when it is not 64 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        <[u8; 64]>::try_from(bytes)
            .map(Self)
            .map_err(|_| KeyError::InvalidSignatureLength(bytes.len()))
    }

    /// The 64 raw bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multikey_round_trip_and_redacted_debug() {
        let key = SigningKey::from_seed(&[7u8; 32]);
        let public = key.public_key();
        let mk = public.to_multikey();
        assert!(mk.starts_with("z6Mk"), "{mk}");
        assert_eq!(PublicKey::from_multikey(&mk), Ok(public));
        let secret = key.to_multikey_secret();
        assert!(secret.starts_with("z3u2"), "{}", secret.as_str());
        let back = SigningKey::from_multikey_secret(&secret).map(|k| k.public_key());
        assert_eq!(back, Ok(public));
        let debug = format!("{key:?}");
        assert!(!debug.contains(secret.as_str()) && debug.contains("redacted"));
    }

    #[test]
    fn sign_verify_and_tamper() {
        let key = SigningKey::generate().expect("rng");
        let sig = key.sign(b"bonjour");
        assert_eq!(key.public_key().verify(b"bonjour", &sig), Ok(()));
        assert_eq!(
            key.public_key().verify(b"bonjouR", &sig),
            Err(KeyError::BadSignature)
        );
    }
}
