//! Harness for multi-node integration tests: nodes on loopback ports with their own
//! databases.
