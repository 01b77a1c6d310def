//! Ed25519 keys and their Multikey encoding (FEP-521a).
//!
//! A node signs with one [`SigningKey`] at a time and publishes every [`PublicKey`] it has
//! used, as a Multikey (`publicKeyMultibase` = `z` + base58btc(`0xed 0x01` ‖ 32 key bytes))
//! in its actor's `assertionMethod`. Verification is always *strict*
//! ([`ed25519_dalek::VerifyingKey::verify_strict`]): non-canonical encodings and small-order
//! keys are refused (see `protocol/tests/it/ed25519.rs` for the Wycheproof verdicts).
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
        let key = bytes
            .strip_prefix(&MULTICODEC_ED25519_PUB)
            .ok_or_else(|| err("not an ed25519-pub multicodec key (prefix 0xed01)"))?;
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
