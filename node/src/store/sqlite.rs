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

/// Page cache of the writer connection, in KiB (`PRAGMA cache_size` takes it negative).
const WRITER_CACHE_KIB: u32 = 16 * 1024;

/// How long the writer connection stays open unused (the pool's reaper closes it within
/// twice that): its page cache is only worth keeping while writes keep coming.
const WRITER_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The pool of the one connection through which the store of `pool` writes (one per
/// store, opened with its first write; another store on the same file has its own).
///
/// In WAL mode a connection drops its whole page cache when it finds that another
/// connection committed since its last transaction. Writers taken from the shared pool
/// took turns, so each found the others' commits and started cold, reading back the
/// index pages the previous writer had just loaded (most of the stalls of a catch-up,
/// BENCHMARKS.md). The one writer connection only ever follows its own commits, so its
/// larger cache stays valid.
///
/// The writer belongs to `pool`: it is found by the address of the pool's connect
/// options, which its entry keeps allocated (a `Weak`), so that no later pool can take
/// that address while the entry exists. It is closed with the store
/// ([`close_writer`]), or dropped once the store's pool is gone, and a closed store
/// opens no new one.
///
/// # Errors
/// [`sqlx::Error::PoolClosed`] when the store is closed.
pub(super) fn writer(pool: &SqlitePool) -> Result<SqlitePool, sqlx::Error> {
    if pool.is_closed() {
        return Err(sqlx::Error::PoolClosed);
    }
    let options = pool.connect_options();
    let key = Arc::as_ptr(&options) as usize;
    let mut writers = writers();
    // An entry whose owner is alive is this store's: `options` holds that address.
    if let Some(w) = writers.get(&key)
        && w.owner.strong_count() > 0
    {
        return Ok(w.pool.clone());
    }
    // A new writer: first drop those of stores dropped without being closed (one of them
    // may have had this address).
    writers.retain(|_, w| w.owner.strong_count() > 0);
    let pool = open_writer(&options);
    writers.insert(
        key,
        Writer {
            owner: Arc::downgrade(&options),
            pool: pool.clone(),
        },
    );
    Ok(pool)
}

/// A store's writer pool and the options of the store's pool, which identify it.
struct Writer {
    owner: std::sync::Weak<SqliteConnectOptions>,
    pool: SqlitePool,
}

/// The writer connections of this process, by the address of their store's options.
fn writers() -> std::sync::MutexGuard<'static, HashMap<usize, Writer>> {
    static WRITERS: OnceLock<Mutex<HashMap<usize, Writer>>> = OnceLock::new();
    WRITERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Closes the writer connection of the store of `pool` (the store is closing).
pub(super) async fn close_writer(pool: &SqlitePool) {
    let key = Arc::as_ptr(&pool.connect_options()) as usize;
    let writer = writers().remove(&key);
    if let Some(writer) = writer {
        writer.pool.close().await;
    }
}

/// A pool of one connection opened with `options` and a larger page cache.
fn open_writer(options: &SqliteConnectOptions) -> SqlitePool {
    let options = options
        .clone()
        .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"));
    SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(WRITER_IDLE_TIMEOUT)
        // As for the shared pool: a connection whose COMMIT failed is closed, not reused.
        .after_release(|conn, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
        })
        .connect_lazy_with(options)
}

/// `SELECT` returning the engine and its version.
pub(super) const VERSION_SQL: &str = "SELECT 'SQLite ' || sqlite_version()";

/// Statement run in a transaction that appends to the outbox, before its first append. SQLite has a
/// single writer, so outbox sequence numbers are committed in order without a lock.
pub(super) const LOCK_OUTBOX_SQL: Option<&str> = None;

/// `SELECT` returning the database clock in Unix milliseconds.
pub(super) const NOW_MS_SQL: &str =
    "SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)";

/// Suffix of a sub-`SELECT` that claims rows. SQLite has one writer at a time (and
/// several processes never share one SQLite database), so no row lock is needed.
pub(super) const SKIP_LOCKED: &str = "";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BeginWrite as _;

    async fn cache_size<'e>(e: impl sqlx::SqliteExecutor<'e>) -> i64 {
        sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(e)
            .await
            .unwrap()
    }

    /// Write transactions and autocommit writes run on the writer connection (its own
    /// page cache), reads on the shared pool; each store on a file has its own writer,
    /// closed with it; a closed store writes no more.
    #[tokio::test]
    async fn writes_run_on_the_one_writer_connection() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let writer_cache = -i64::from(WRITER_CACHE_KIB);
        let pool = connect(&url, 4).await.unwrap();
        assert_ne!(cache_size(&pool).await, writer_cache);
        let mut tx = pool.begin_write().await.unwrap();
        assert_eq!(cache_size(&mut *tx).await, writer_cache);
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let turn = pool.write_turn().await.unwrap();
        assert_eq!(cache_size(&*turn).await, writer_cache);
        sqlx::query("INSERT INTO t (x) VALUES (1)")
            .execute(&*turn)
            .await
            .unwrap();
        drop(turn);

        // Another store on the same file has its own writer; closing one leaves the
        // other's open.
        let other = connect(&url, 2).await.unwrap();
        let mut tx = other.begin_write().await.unwrap();
        assert_eq!(cache_size(&mut *tx).await, writer_cache);
        sqlx::query("INSERT INTO t (x) VALUES (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        pool.close().await;
        close_writer(&pool).await;
        assert!(matches!(
            pool.begin_write().await.err(),
            Some(sqlx::Error::PoolClosed)
        ));
        assert!(matches!(
            pool.write_turn().await.err(),
            Some(sqlx::Error::PoolClosed)
        ));
        let mut tx = other.begin_write().await.unwrap();
        sqlx::query("INSERT INTO t (x) VALUES (3)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let sum: i64 = sqlx::query_scalar("SELECT SUM(x) FROM t")
            .fetch_one(&other)
            .await
            .unwrap();
        assert_eq!(sum, 6);

        // A file replaced at the same path (a restore) while a store is still open on the
        // old one: a new store writes to the new file, not through the old store's writer.
        std::fs::remove_file(dir.path().join("w.db")).unwrap();
        let _ = std::fs::remove_file(dir.path().join("w.db-wal"));
        let _ = std::fs::remove_file(dir.path().join("w.db-shm"));
        let fresh = connect(&url, 2).await.unwrap();
        let mut tx = fresh.begin_write().await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&fresh)
            .await
            .unwrap();
        assert_eq!(n, 0);
        fresh.close().await;
        close_writer(&fresh).await;
        other.close().await;
        close_writer(&other).await;
    }
}
