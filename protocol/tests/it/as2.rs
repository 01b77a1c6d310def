//! Tests: as2 (to be filled).
