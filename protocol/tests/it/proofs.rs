//! Tests: proofs (to be filled).
