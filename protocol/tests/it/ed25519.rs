//! Tests: ed25519 (to be filled).
