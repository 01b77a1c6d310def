//! Tests: vocab (to be filled).
