//! PostgreSQL backend: connection options and the few statements that differ from SQLite.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::StoreError;

/// Connects to the PostgreSQL database at `url`.
///
/// The URL may carry `?options=-c%20search_path%3D<schema>` to work in a schema of its
/// own (the test suite does).
pub(super) async fn connect(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    // Each execution of a prepared statement is planned with its parameters and the
    // tables' current sizes. With PostgreSQL's default, a statement prepared while its
    // tables were small (a new node, a partner's catch-up starting from empty) could keep
    // a generic plan made then, a sequential scan, while the tables grew: the look-up of
    // a batch's postings in `remote_postings` read the whole table each time, and a
    // catch-up's cost grew with the square of its size. Planning costs tens of
    // microseconds a statement; the node's statements mostly handle batches.
    // (A `SET` once connected rather than a startup option, which connection poolers such
    // as PgBouncer refuse by default.)
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::other("parse the PostgreSQL URL", e))?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::raw_sql("SET plan_cache_mode = force_custom_plan")
                    .execute(conn)
                    .await
                    .map(|_| ())
            })
        })
        // A connection whose COMMIT failed (a full disk, a lost server) is still inside its
        // transaction and would refuse every later BEGIN: close it instead of reusing it.
        .after_release(|conn, _| {
            Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
        })
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| StoreError::other("connect to PostgreSQL", e))
}

/// `SELECT` returning the engine and its version, with how the node's sessions plan
/// their statements (see [`connect`]).
pub(super) const VERSION_SQL: &str =
    "SELECT version() || ' (plan_cache_mode ' || current_setting('plan_cache_mode') || ')'";

/// Statement run in a transaction that appends to the outbox, before its first append (after
/// the feed's lock when it takes both: `feed::FEED_LOCK_CLASS`). Several
/// processes may write to one database; identity values are handed out before commit, so
/// without this lock a reader paging by sequence number could skip a row that commits
/// late. The lock serializes outbox appends only; reads are not blocked.
pub(super) const LOCK_OUTBOX_SQL: Option<&str> =
    Some("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE");

/// `SELECT` returning the database server's clock in Unix milliseconds.
pub(super) const NOW_MS_SQL: &str =
    "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

/// Suffix of a sub-`SELECT` that claims rows: rows another process is claiming are
/// skipped instead of waited for, so each job goes to one process.
pub(super) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
