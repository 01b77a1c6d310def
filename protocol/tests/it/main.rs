//! Integration tests of the protocol crate: external conformance vectors
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! (`../shared/vectors`), our own vectors (`spec/vectors`), and the vocabulary.

mod as2;
mod digest;
mod ed25519;
mod httpsig;
mod jcs;
mod multikey;
mod proofs;
mod props;
mod spec_vectors;
mod vocab;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("protocol/ has a parent")
        .to_path_buf()
}

/// The external vectors folder (`../shared/vectors` beside the checkout), or `None` when it
/// is absent outside CI, after printing one line saying what was skipped. Under `CI` a
/// missing folder is a failure: CI must never skip the conformance suite.
pub fn shared_vectors(what: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("PASSERELLE_SHARED_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/vectors"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{what}: the shared vectors folder {} is missing, and CI must not skip conformance tests",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED {what}: {} not found (set PASSERELLE_SHARED_VECTORS)",
        dir.display()
    );
    None
}

/// Reads a file as a JSON value, with the path in the panic message.
pub fn read_json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
