//! Tests: multikey (to be filled).
