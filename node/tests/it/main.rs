//! Integration tests of the node: the store suite on both backends, router tests without
//! sockets, the real binary on a real port, and the generated files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binary;
mod console;
mod console_browser;
mod console_mad;
mod console_node;
mod console_partners;
mod feed_api;
mod feed_store;
mod fixture;
mod generated;
mod http;
mod ops;
mod postings;
mod store_conformance;
mod store_queue;
mod support;
mod upgrade;
