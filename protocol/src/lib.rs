//! # Passerelle protocol
//!
//! Passerelle nodes — one per French collectivité — trust each other only through
//! signatures. This crate is the wire format and its rules, as a pure library: no I/O, no
//! async runtime, no HTTP server or SQL crate. The node (`passerelle-node`) owns sockets,
//! storage, time and retries; this crate owns what a message is and whether it is valid.
//!
//! - [`canonical`]: RFC 8785 JSON Canonicalization Scheme.
//! - [`keys`]: Ed25519 keys and their Multikey (FEP-521a) encoding.
//! - [`digest`]: RFC 9530 `Content-Digest`.
//! - [`httpsig`]: RFC 9421 HTTP Message Signatures (`alg="ed25519"`).
//! - [`proof`]: `DataIntegrityProof` with the `eddsa-jcs-2022` cryptosuite, proof sets and
//!   the [`proof::Verified`] type.
//! - [`ids`]: validated identifiers (actor and object ids, SIREN, COG codes, key ids).
//! - [`vocab`]: typed messages (actor, discovery documents, postings, profiles, MAD
//!   requests, conventions, activities) and their validation.
//! - [`mad`]: the *mise à disposition* state machine.
#![warn(missing_docs)]

pub mod canonical;
pub mod digest;
pub mod httpsig;
pub mod ids;
pub mod keys;
pub mod mad;
pub mod proof;
pub mod vocab;

/// Version of the Passerelle protocol implemented by this crate (advertised in NodeInfo
/// and in the actor document).
pub const PROTOCOL_VERSION: &str = "1.0";
