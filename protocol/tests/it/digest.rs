//! Tests: digest (to be filled).
