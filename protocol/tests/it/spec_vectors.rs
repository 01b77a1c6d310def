//! Tests: spec_vectors (to be filled).
