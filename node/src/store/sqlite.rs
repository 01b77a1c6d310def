//! SQLite backend: connection options and the few statements that differ from PostgreSQL.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::StoreError;

/// Page size for new databases: rows here are ~2 KB JSON documents, and 8 KiB pages store
/// them 1.5× more compactly and insert them faster than the 4 KiB default
/// (`perf-limits.md` §4).
const PAGE_SIZE: u32 = 8192;

/// How long an unused connection stays open (the pool's reaper closes it within twice
/// that).
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (creating if needed) the SQLite database at `url`.
///
/// WAL journal, `synchronous=NORMAL` (no fsync per commit in WAL mode, durable across
/// process crashes), a 5 s busy timeout so concurrent writers wait instead of failing,
/// and foreign keys on.
pub(super) async fn connect(url: &str, max_connections: u32) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::other("parse the SQLite URL", e))?
        .create_if_missing(true)
        .page_size(PAGE_SIZE)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(max_connections)
        // An idle node keeps no connection open: each holds a page cache (up to 2 MiB)
        // and up to 100 prepared statements, and reopening one costs well under a
        // millisecond (BENCHMARKS.md, memory).
        .min_connections(0)
        .idle_timeout(IDLE_TIMEOUT)
        // A connection whose COMMIT failed (a full disk, a lost server) is still inside its
        // transaction and would refuse every later BEGIN: close it instead of reusing it.
        .after_release(|conn, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
        })
        .connect_with(options)
        .await
        .map_err(|e| StoreError::other("open the SQLite database", e))
}

/// How long a writer waits for its turn in this process: the busy timeout's.
const WRITE_TURN_TIMEOUT: Duration = Duration::from_secs(5);

/// This process's turn at the single writer of the SQLite database behind `pool` (one
/// queue per database file, shared by every pool on it). Times out like the busy timeout,
/// so a writer that would wait on itself fails instead of hanging.
pub(super) async fn write_turn(
    pool: &SqlitePool,
) -> Result<tokio::sync::OwnedMutexGuard<()>, sqlx::Error> {
    static TURNS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let file = pool.connect_options().get_filename().to_path_buf();
    let turn = {
        let mut turns = TURNS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        turns.entry(file).or_default().clone()
    };
    tokio::time::timeout(WRITE_TURN_TIMEOUT, turn.lock_owned())
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)
}

/// `SELECT` returning the engine and its version.
pub(super) const VERSION_SQL: &str = "SELECT 'SQLite ' || sqlite_version()";

/// Statement run at the start of a transaction that appends to the outbox. SQLite has a
/// single writer, so outbox sequence numbers are committed in order without a lock.
pub(super) const LOCK_OUTBOX_SQL: Option<&str> = None;

/// `SELECT` returning the database clock in Unix milliseconds.
pub(super) const NOW_MS_SQL: &str =
    "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

/// Suffix of a sub-`SELECT` that claims rows. SQLite has one writer at a time (and
/// several processes never share one SQLite database), so no row lock is needed.
pub(super) const SKIP_LOCKED: &str = "";
