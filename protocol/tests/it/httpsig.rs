//! Tests: httpsig (to be filled).
