//! Tests: jcs (to be filled).
