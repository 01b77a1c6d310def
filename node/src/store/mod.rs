//! Storage: one [`Store`] with domain-level methods over SQLite or PostgreSQL.
//!
//! The backend is chosen by the database URL (`sqlite:` or `postgres://`). Both backends
//! run the same SQL (numbered `$1` parameters work in both), written once in this file;
//! `sqlite.rs` and `postgres.rs` hold connection options and the few statements that
//! differ. Migrations live in `node/migrations/{sqlite,postgres}/` with identical file
//! names and are embedded in the binary.
//!
//! Conventions: times are stored as Unix milliseconds, ids minted here are UUIDv7 text,
//! JSON documents are stored as text. Every write that an HR user or an operator makes
//! takes an [`AuditRecord`] and writes it in the same transaction, so the audit log
//! cannot miss a committed change. Nothing is kept in process memory: several processes
//! may share one PostgreSQL database.

mod postgres;
mod sqlite;

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::config::DatabaseKind;

/// Storage errors, typed for callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The requested row does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked up, e.g. `agent 0190…`.
        what: String,
    },
    /// The write conflicts with existing data (duplicate key, stale version, bad reference).
    #[error("conflict: {what}")]
    Conflict {
        /// What conflicted.
        what: String,
    },
    /// The database failed; details are for logs, not for clients.
    #[error("database error while trying to {action}: {cause}")]
    Other {
        /// What the store was doing.
        action: &'static str,
        /// The cause (part of the message, so a one-line report shows it once).
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    fn other(action: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Other {
            action,
            cause: Box::new(e),
        }
    }

    fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    fn conflict(what: impl Into<String>) -> Self {
        Self::Conflict { what: what.into() }
    }
}

/// Maps a sqlx error: constraint violations become [`StoreError::Conflict`].
fn map_err(action: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::conflict(format!(
            "{action}: an entry with the same key already exists"
        )),
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::conflict(format!("{action}: it refers to a missing entry"))
        }
        sqlx::Error::Database(db) if db.is_check_violation() => {
            StoreError::conflict(format!("{action}: a value is outside the allowed set"))
        }
        _ => StoreError::other(action, e),
    }
}

/// Appends the rows of a multi-row `VALUES` list to `sql`: `rows` parenthesised lists of
/// `cols` placeholders each, the statement's first parameters. On PostgreSQL they are
/// numbered from `$1` (`($1, $2), ($3, $4)` for two rows of two); on SQLite (`sqlite`)
/// they are anonymous (`(?, ?), (?, ?)`). SQLite keeps the names of numbered (`$N`)
/// parameters in a list that it scans for each one, and sqlx asks for the name of every
/// parameter it binds, so binding n numbered parameters took n² steps
/// (`sqlite3_bind_parameter_name` was 5 % of a pulling node's CPU, a fifth of its SQLite
/// thread's, BENCHMARKS.md). sqlx binds anonymous parameters in order, and a numbered
/// parameter of the same statement by its number, which follows the list's.
fn push_values(sql: &mut String, rows: usize, cols: usize, sqlite: bool) {
    push_values_with(sql, rows, cols, 0, sqlite, |_, _| {});
}

/// [`push_values`] where each row also takes `extra` more parameters, numbered after its
/// `cols` plain ones, that `tail` writes into the row as expressions (given `sql` and the
/// row's first parameter number minus one). Numbered (PostgreSQL) placeholders only when
/// `extra` is not 0.
fn push_values_with(
    sql: &mut String,
    rows: usize,
    cols: usize,
    extra: usize,
    sqlite: bool,
    tail: impl Fn(&mut String, usize),
) {
    use std::fmt::Write as _;
    debug_assert!(!(sqlite && extra > 0), "extra parameters are numbered");
    for row in 0..rows {
        let base = row * (cols + extra);
        sql.push_str(if row > 0 { ", (" } else { "(" });
        for col in 1..=cols {
            let sep = if col > 1 { ", " } else { "" };
            if sqlite {
                let _ = write!(sql, "{sep}?");
            } else {
                let _ = write!(sql, "{sep}${}", base + col);
            }
        }
        tail(sql, base);
        sql.push(')');
    }
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Roles of HR users and API tokens.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only access.
    Lecteur,
    /// HR officer: manages postings and agents.
    Rh,
    /// Administrator: also manages accounts, tokens and partners.
    Admin,
}

impl Role {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Lecteur => "lecteur",
            Role::Rh => "rh",
            Role::Admin => "admin",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lecteur" => Some(Role::Lecteur),
            "rh" => Some(Role::Rh),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Lifecycle of a local posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostingStatus {
    /// Being written; visible only locally.
    Draft,
    /// Published to partners (and the public, depending on its addressing).
    Published,
    /// Filled: the post found its candidate.
    Filled,
    /// Closed: no longer open to candidates.
    Closed,
    /// Past its application deadline (set automatically the day after `applyUntil`).
    Expired,
}

impl PostingStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PostingStatus::Draft => "draft",
            PostingStatus::Published => "published",
            PostingStatus::Filled => "filled",
            PostingStatus::Closed => "closed",
            PostingStatus::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "draft" => Ok(Self::Draft),
            "published" => Ok(Self::Published),
            "filled" => Ok(Self::Filled),
            "closed" => Ok(Self::Closed),
            "expired" => Ok(Self::Expired),
            other => Err(StoreError::conflict(format!(
                "unknown posting status {other:?} in the database"
            ))),
        }
    }
}

/// Who the node is: its collectivité.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// Name of the collectivité.
    pub name: String,
    /// SIREN (9 digits).
    pub siren: String,
    /// Kind of collectivité (commune, département…).
    pub kind: String,
    /// Account name in WebFinger (`acct:USERNAME@host`).
    pub username: String,
}

/// A public key of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeKey {
    /// Fragment naming the key in the actor document, e.g. `key-0190…`.
    pub key_id: String,
    /// Multikey `z6Mk…`.
    pub public_key_multibase: String,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// After this time proofs made with the key are no longer accepted.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether the node signs with this key now.
    pub current: bool,
    /// When the key was declared compromised, if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// An HR user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// Creation time.
    pub created_at: OffsetDateTime,
}

/// An API token (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Id.
    pub id: Uuid,
    /// Label given at creation.
    pub name: String,
    /// Role granted.
    pub role: Role,
    /// Account it belongs to (session tokens), if any.
    pub account_id: Option<Uuid>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Expiry, if any.
    pub expires_at: Option<OffsetDateTime>,
    /// Last use.
    pub last_used_at: Option<OffsetDateTime>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiToken {
    /// Whether the token may be used at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Label.
    pub name: String,
    /// Role granted.
    pub role: Role,
    /// Hex SHA-256 of the secret.
    pub token_hash: String,
    /// Account, for session tokens.
    pub account_id: Option<Uuid>,
    /// Expiry.
    pub expires_at: Option<OffsetDateTime>,
}

/// Who did what, written with each change.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Who: `account:NAME`, `token:ID` or `cli`.
    pub actor: String,
    /// What, e.g. `posting.publish`.
    pub action: String,
    /// On what, e.g. `posting:0190…`.
    pub target: String,
    /// Extra details.
    pub details: serde_json::Value,
}

impl AuditRecord {
    /// A record with no details.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
    ) -> Self {
        Self {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            details: serde_json::Value::Null,
        }
    }
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Sequence number (increasing).
    pub seq: i64,
    /// When.
    pub at: OffsetDateTime,
    /// The record.
    pub record: AuditRecord,
}

/// A local agent (personal data; never federated except within a MAD).
#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    /// Id.
    pub id: Uuid,
    /// Name as shown to HR.
    pub display_name: String,
    /// Work e-mail.
    pub email: Option<String>,
    /// Other fields (grade, service, appetites…).
    pub data: serde_json::Value,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// Fields of an agent to create or replace.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFields {
    /// Name as shown to HR.
    pub display_name: String,
    /// Work e-mail.
    pub email: Option<String>,
    /// Other fields.
    pub data: serde_json::Value,
}

/// A local posting.
#[derive(Debug, Clone, PartialEq)]
pub struct Posting {
    /// Id.
    pub id: Uuid,
    /// Kind (`vacancy`, `mad_offer`, …).
    pub kind: String,
    /// Status.
    pub status: PostingStatus,
    /// The posting document, as validated by `protocol`.
    pub document: serde_json::Value,
    /// Version, incremented by every change.
    pub version: i64,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// First publication.
    pub published_at: Option<OffsetDateTime>,
}

/// An activity to append to the outbox with a change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewActivity {
    /// Activity id (URL).
    pub activity_id: String,
    /// `Create`, `Update`, `Delete`…
    pub activity_type: String,
    /// Id of the object it is about.
    pub object_id: String,
    /// Whether it appears in the public outbox.
    pub public: bool,
    /// The activity document.
    pub document: serde_json::Value,
}

/// A stored outbox activity.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    /// Sequence number: the paging cursor, increasing in commit order.
    pub seq: i64,
    /// The activity.
    pub activity: NewActivity,
    /// When it was appended.
    pub created_at: OffsetDateTime,
}

/// Status of the database schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Migrations known to this binary.
    pub known: usize,
    /// Of those, applied to the database.
    pub applied: usize,
}

/// Database handle. Cheap to clone; holds a connection pool.
#[derive(Clone)]
pub struct Store {
    inner: Inner,
    events: std::sync::Arc<Events>,
}

/// In-process wake-ups: a write that creates work (an outbox activity, an inbox item)
/// wakes this process's workers at once. Other processes sharing the database find the
/// work by polling; the database is the only record of the work itself.
#[derive(Debug, Default)]
pub struct Events {
    /// Signalled after a commit that appended to the outbox (delivery jobs to run).
    pub outbox: tokio::sync::Notify,
    /// Signalled after a commit that stored received activities (items to project).
    pub inbox: tokio::sync::Notify,
    /// Bumped after this process changed a partnership or the block list, so that
    /// in-memory copies of them are reloaded at once.
    pub policy_generation: std::sync::atomic::AtomicU64,
}

impl Events {
    /// Records a change of partnerships or blocks.
    pub fn policy_changed(&self) {
        self.policy_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The current generation of partnerships and blocks.
    pub fn policy_generation(&self) -> u64 {
        self.policy_generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[derive(Clone)]
enum Inner {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("kind", &self.kind()).finish()
    }
}

/// A write transaction ([`BeginWrite::begin_write`]): the `sqlx` transaction and, on
/// SQLite, this process's turn at the database's single writer, held until it ends.
/// Derefs to the connection, so statements run on `&mut *tx` as on a transaction.
struct WriteTx<DB: sqlx::Database> {
    tx: sqlx::Transaction<'static, DB>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<DB: sqlx::Database> WriteTx<DB> {
    async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.tx
    }
}

impl<DB: sqlx::Database> std::ops::DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }
}

/// Opens a transaction that will write. On SQLite, writers of this process first queue
/// for their turn in memory ([`sqlite::write_turn`]), then take the write lock at once
/// (`BEGIN IMMEDIATE`) on the database's one writer connection ([`sqlite::writer`]): they
/// wait for each other in order instead of polling the lock through SQLite's busy handler
/// (which sleeps up to 100 ms between tries and made a group commit wait behind the
/// projection), never fail when a read-then-write transaction tries to upgrade, and find
/// the writer's page cache still valid. The busy timeout still covers any other process.
///
/// A single statement that writes outside a transaction (an autocommit `UPDATE`) takes
/// the same turn first ([`BeginWrite::write_turn`]) and runs on the same connection, or it
/// would wait for the lock through the busy handler behind every queued transaction (a
/// pull's `sync_state` update took over a second during a catch-up), and its commit from
/// another connection would empty the writer's cache.
trait BeginWrite {
    type Db: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = std::result::Result<WriteTx<Self::Db>, sqlx::Error>> + Send;

    /// This process's turn at the writer, held while one autocommit statement runs on the
    /// pool it derefs to: the writer connection's on SQLite, the pool itself on PostgreSQL
    /// (row locks, no single writer).
    fn write_turn(
        &self,
    ) -> impl std::future::Future<Output = std::result::Result<WriteTurn<Self::Db>, sqlx::Error>> + Send;
}

/// A turn at the writer for autocommit statements ([`BeginWrite::write_turn`]): derefs to
/// the pool to run them on.
struct WriteTurn<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<DB: sqlx::Database> std::ops::Deref for WriteTurn<DB> {
    type Target = sqlx::Pool<DB>;
    fn deref(&self) -> &sqlx::Pool<DB> {
        &self.pool
    }
}

impl BeginWrite for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
    async fn begin_write(&self) -> std::result::Result<WriteTx<Self::Db>, sqlx::Error> {
        let turn = sqlite::write_turn(self).await?;
        let tx = sqlite::writer(self)?.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx {
            tx,
            _turn: Some(turn),
        })
    }

    async fn write_turn(&self) -> std::result::Result<WriteTurn<Self::Db>, sqlx::Error> {
        let turn = sqlite::write_turn(self).await?;
        Ok(WriteTurn {
            pool: sqlite::writer(self)?,
            _turn: Some(turn),
        })
    }
}

impl BeginWrite for sqlx::PgPool {
    type Db = sqlx::Postgres;
    async fn begin_write(&self) -> std::result::Result<WriteTx<Self::Db>, sqlx::Error> {
        Ok(WriteTx {
            tx: self.begin().await?,
            _turn: None,
        })
    }

    async fn write_turn(&self) -> std::result::Result<WriteTurn<Self::Db>, sqlx::Error> {
        Ok(WriteTurn {
            pool: self.clone(),
            _turn: None,
        })
    }
}

/// Runs the same code on either pool. `$body` is compiled once per backend.
macro_rules! both {
    ($self:ident, $pool:ident, $lock:ident => $body:expr) => {
        match &$self.inner {
            Inner::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $lock = sqlite::LOCK_OUTBOX_SQL;
                $body
            }
            Inner::Postgres($pool) => {
                #[allow(unused_variables)]
                let $lock = postgres::LOCK_OUTBOX_SQL;
                $body
            }
        }
    };
    ($self:ident, $pool:ident => $body:expr) => {
        both!($self, $pool, _lock => $body)
    };
}

/// Embedded migrations: (version, description, SQLite, PostgreSQL).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "initial",
        include_str!("../../migrations/sqlite/0001_initial.sql"),
        include_str!("../../migrations/postgres/0001_initial.sql"),
    ),
    (
        2,
        "federation",
        include_str!("../../migrations/sqlite/0002_federation.sql"),
        include_str!("../../migrations/postgres/0002_federation.sql"),
    ),
    (
        3,
        "feed",
        include_str!("../../migrations/sqlite/0003_feed.sql"),
        include_str!("../../migrations/postgres/0003_feed.sql"),
    ),
    (
        4,
        "mobility",
        include_str!("../../migrations/sqlite/0004_mobility.sql"),
        include_str!("../../migrations/postgres/0004_mobility.sql"),
    ),
    (
        5,
        "feed plans",
        include_str!("../../migrations/sqlite/0005_feed_plans.sql"),
        include_str!("../../migrations/postgres/0005_feed_plans.sql"),
    ),
    (
        6,
        "inbox counts",
        include_str!("../../migrations/sqlite/0006_inbox_counts.sql"),
        include_str!("../../migrations/postgres/0006_inbox_counts.sql"),
    ),
    (
        7,
        "feed facet tokens",
        include_str!("../../migrations/sqlite/0007_feed_facet_tokens.sql"),
        include_str!("../../migrations/postgres/0007_feed_facet_tokens.sql"),
    ),
    (
        8,
        "outbox pages",
        include_str!("../../migrations/sqlite/0008_outbox_pages.sql"),
        include_str!("../../migrations/postgres/0008_outbox_pages.sql"),
    ),
    (
        9,
        "feed terms unchecked",
        include_str!("../../migrations/sqlite/0009_feed_terms_unchecked.sql"),
        include_str!("../../migrations/postgres/0009_feed_terms_unchecked.sql"),
    ),
];

/// File names of the embedded migrations, for the test that both folders match.
pub const MIGRATION_FILES: &[&str] = &[
    "0001_initial.sql",
    "0002_federation.sql",
    "0003_feed.sql",
    "0004_mobility.sql",
    "0005_feed_plans.sql",
    "0006_inbox_counts.sql",
    "0007_feed_facet_tokens.sql",
    "0008_outbox_pages.sql",
    "0009_feed_terms_unchecked.sql",
];

fn migrator(kind: DatabaseKind) -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sqlite_sql, pg_sql)| {
            let sql = match kind {
                DatabaseKind::Sqlite => *sqlite_sql,
                DatabaseKind::Postgres => *pg_sql,
            };
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sqlx::SqlSafeStr::into_sql_str(sql),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn parse_uuid(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::other("decode a stored id", e))
}

fn parse_role(s: &str) -> Result<Role> {
    Role::parse(s)
        .ok_or_else(|| StoreError::conflict(format!("unknown role {s:?} in the database")))
}

fn parse_json(s: &str) -> Result<serde_json::Value> {
    serde_json::from_str(s).map_err(|e| StoreError::other("decode a stored JSON document", e))
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

/// Reads a column, mapping a decode error.
macro_rules! col {
    ($row:expr, $name:literal) => {
        $row.try_get($name)
            .map_err(map_err(concat!("read column ", $name)))?
    };
}

macro_rules! key_from_row {
    ($r:expr) => {{
        let r = &$r;
        let expires: Option<i64> = col!(r, "expires_at");
        let revoked: Option<i64> = col!(r, "revoked_at");
        NodeKey {
            key_id: col!(r, "key_id"),
            public_key_multibase: col!(r, "public_key_multibase"),
            created_at: from_ms(col!(r, "created_at")),
            expires_at: expires.map(from_ms),
            current: col!(r, "is_current"),
            revoked_at: revoked.map(from_ms),
        }
    }};
}

macro_rules! account_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let role: String = col!(r, "role");
        Account {
            id: parse_uuid(&id)?,
            username: col!(r, "username"),
            role: parse_role(&role)?,
            disabled: col!(r, "disabled"),
            created_at: from_ms(col!(r, "created_at")),
        }
    }};
}

macro_rules! token_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let role: String = col!(r, "role");
        let account: Option<String> = col!(r, "account_id");
        let expires: Option<i64> = col!(r, "expires_at");
        let used: Option<i64> = col!(r, "last_used_at");
        let revoked: Option<i64> = col!(r, "revoked_at");
        ApiToken {
            id: parse_uuid(&id)?,
            name: col!(r, "name"),
            role: parse_role(&role)?,
            account_id: account.as_deref().map(parse_uuid).transpose()?,
            created_at: from_ms(col!(r, "created_at")),
            expires_at: expires.map(from_ms),
            last_used_at: used.map(from_ms),
            revoked_at: revoked.map(from_ms),
        }
    }};
}

macro_rules! agent_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let data: String = col!(r, "data");
        Agent {
            id: parse_uuid(&id)?,
            display_name: col!(r, "display_name"),
            email: col!(r, "email"),
            data: parse_json(&data)?,
            created_at: from_ms(col!(r, "created_at")),
            updated_at: from_ms(col!(r, "updated_at")),
        }
    }};
}

macro_rules! posting_from_row {
    ($r:expr) => {{
        let r = &$r;
        let id: String = col!(r, "id");
        let status: String = col!(r, "status");
        let document: String = col!(r, "document");
        let published: Option<i64> = col!(r, "published_at");
        Posting {
            id: parse_uuid(&id)?,
            kind: col!(r, "kind"),
            status: PostingStatus::parse(&status)?,
            document: parse_json(&document)?,
            version: col!(r, "version"),
            created_at: from_ms(col!(r, "created_at")),
            updated_at: from_ms(col!(r, "updated_at")),
            published_at: published.map(from_ms),
        }
    }};
}

macro_rules! outbox_from_row {
    ($r:expr) => {{
        let r = &$r;
        let document: String = col!(r, "document");
        OutboxItem {
            seq: col!(r, "seq"),
            activity: NewActivity {
                activity_id: col!(r, "activity_id"),
                activity_type: col!(r, "activity_type"),
                object_id: col!(r, "object_id"),
                public: col!(r, "public"),
                document: parse_json(&document)?,
            },
            created_at: from_ms(col!(r, "created_at")),
        }
    }};
}

/// Writes an audit record inside a transaction.
macro_rules! audit {
    ($tx:expr, $rec:expr) => {{
        let rec: &AuditRecord = $rec;
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(to_ms(now()))
        .bind(&rec.actor)
        .bind(&rec.action)
        .bind(&rec.target)
        .bind(json_text(&rec.details))
        .execute(&mut *$tx)
        .await
        .map_err(map_err("write the audit log"))?;
    }};
}

/// Appends an activity to the outbox inside a transaction, records its audience (for
/// signed pulls, protocol §9.2) and creates its delivery jobs (§8.1): one per recipient
/// inbox, a shared inbox counted once. Recipients are the named actors we know, the
/// partners (accepted followers) when the local `followers` collection is addressed, and
/// the accepted followers that are members of an addressed circle. Evaluates to the
/// activity's sequence number.
macro_rules! outbox_append {
    ($tx:expr, $lock:expr, $act:expr) => {{
        let act: &NewActivity = $act;
        if let Some(lock) = $lock {
            sqlx::query(lock)
                .execute(&mut *$tx)
                .await
                .map_err(map_err("lock the outbox"))?;
        }
        let t = to_ms(now());
        let row = sqlx::query(
            "INSERT INTO outbox (activity_id, activity_type, object_id, public, document, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
        )
        .bind(&act.activity_id)
        .bind(&act.activity_type)
        .bind(&act.object_id)
        .bind(act.public)
        .bind(json_text(&act.document))
        .bind(t)
        .fetch_one(&mut *$tx)
        .await
        .map_err(map_err("append to the outbox"))?;
        let seq: i64 = col!(row, "seq");
        for audience in $crate::store::federation::audience_of(&act.document) {
            sqlx::query(
                "INSERT INTO outbox_audience (audience, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(&audience)
            .bind(seq)
            .execute(&mut *$tx)
            .await
            .map_err(map_err("record the audience of an activity"))?;
        }
        let followers = $crate::store::federation::followers_of_activity(&act.document);
        sqlx::query($crate::store::federation::FAN_OUT_SQL)
            .bind(seq)
            .bind(followers)
            .bind(t)
            .execute(&mut *$tx)
            .await
            .map_err(map_err("create delivery jobs"))?;
        seq
    }};
}

/// Inserts a token inside a transaction and returns it.
macro_rules! insert_token {
    ($tx:expr, $new:expr) => {{
        let new: &NewToken = $new;
        let token = ApiToken {
            id: Uuid::now_v7(),
            name: new.name.clone(),
            role: new.role,
            account_id: new.account_id,
            created_at: from_ms(to_ms(now())),
            expires_at: new.expires_at.map(|t| from_ms(to_ms(t))),
            last_used_at: None,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, role, account_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.id.to_string())
        .bind(&token.name)
        .bind(&new.token_hash)
        .bind(new.role.as_str())
        .bind(new.account_id.map(|a| a.to_string()))
        .bind(to_ms(token.created_at))
        .bind(token.expires_at.map(to_ms))
        .execute(&mut *$tx)
        .await
        .map_err(map_err("create the token"))?;
        token
    }};
}

/// Name of the first-start admin token (at most one ever exists).
pub const BOOTSTRAP_TOKEN_NAME: &str = "bootstrap";

const POSTING_COLUMNS: &str =
    "id, kind, status, document, version, created_at, updated_at, published_at";

impl Store {
    /// Connects to the database named by `url` (`sqlite:` or `postgres://`).
    ///
    /// # Errors
    /// [`StoreError::Other`] when the URL is not supported or the database unreachable.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let kind = DatabaseKind::from_url(url)
            .map_err(|e| StoreError::other("choose a database backend", e))?;
        let inner = match kind {
            DatabaseKind::Sqlite => Inner::Sqlite(sqlite::connect(url, max_connections).await?),
            DatabaseKind::Postgres => {
                Inner::Postgres(postgres::connect(url, max_connections).await?)
            }
        };
        Ok(Self {
            inner,
            events: std::sync::Arc::default(),
        })
    }

    /// This process's wake-ups for the store's background workers.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Wakes the delivery workers of this process (after an outbox append).
    pub(crate) fn notify_outbox(&self) {
        self.events.outbox.notify_waiters();
        self.events.outbox.notify_one();
    }

    /// The backend in use.
    pub fn kind(&self) -> DatabaseKind {
        match self.inner {
            Inner::Sqlite(_) => DatabaseKind::Sqlite,
            Inner::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    /// Applies pending migrations (safe to run from several processes at once).
    pub async fn migrate(&self) -> Result<()> {
        let m = migrator(self.kind());
        both!(self, pool => m.run(pool).await.map_err(|e| StoreError::other("apply migrations", e)))
    }

    /// How many of the known migrations are applied.
    pub async fn migration_status(&self) -> Result<MigrationStatus> {
        let m = migrator(self.kind());
        let known = m.iter().count();
        let versions: Vec<i64> = both!(self, pool => {
            // A missing table means no migration was applied.
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_all(pool)
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("version"))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(map_err("read applied migrations"))?,
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(e) => return Err(StoreError::other("read applied migrations", e)),
            }
        });
        let applied = m
            .iter()
            .filter(|mig| versions.contains(&mig.version))
            .count();
        Ok(MigrationStatus { known, applied })
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<()> {
        both!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await.map_err(map_err("reach the database"))?;
        });
        Ok(())
    }

    /// The database engine and version, e.g. `SQLite 3.51.3`.
    pub async fn server_version(&self) -> Result<String> {
        both!(self, pool => {
            let sql = match self.kind() {
                DatabaseKind::Sqlite => sqlite::VERSION_SQL,
                DatabaseKind::Postgres => postgres::VERSION_SQL,
            };
            let row = sqlx::query(sql).fetch_one(pool).await.map_err(map_err("read the database version"))?;
            row.try_get::<String, _>(0).map_err(map_err("read the database version"))
        })
    }

    /// The database's clock (for `passerelle diagnostics`: signed messages carry times).
    pub async fn server_time(&self) -> Result<OffsetDateTime> {
        both!(self, pool => {
            let sql = match self.kind() {
                DatabaseKind::Sqlite => sqlite::NOW_MS_SQL,
                DatabaseKind::Postgres => postgres::NOW_MS_SQL,
            };
            let row = sqlx::query(sql).fetch_one(pool).await.map_err(map_err("read the database clock"))?;
            let ms: i64 = row.try_get(0).map_err(map_err("read the database clock"))?;
            Ok(from_ms(ms))
        })
    }

    // ---- node identity and keys ----

    /// The node's identity.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] before `passerelle init` (or the first `serve`).
    pub async fn identity(&self) -> Result<NodeIdentity> {
        both!(self, pool => {
            let row = sqlx::query("SELECT name, siren, kind, username FROM node_identity WHERE singleton = 1")
                .fetch_optional(pool)
                .await
                .map_err(map_err("read the node identity"))?
                .ok_or_else(|| StoreError::not_found("node identity"))?;
            Ok(NodeIdentity {
                name: col!(row, "name"),
                siren: col!(row, "siren"),
                kind: col!(row, "kind"),
                username: col!(row, "username"),
            })
        })
    }

    /// Sets the node's identity (creating or replacing it).
    pub async fn set_identity(&self, identity: &NodeIdentity, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let t = to_ms(now());
            sqlx::query(
                "INSERT INTO node_identity (singleton, name, siren, kind, username, created_at, updated_at) \
                 VALUES (1, $1, $2, $3, $4, $5, $5) \
                 ON CONFLICT (singleton) DO UPDATE SET name = excluded.name, siren = excluded.siren, \
                 kind = excluded.kind, username = excluded.username, updated_at = excluded.updated_at",
            )
            .bind(&identity.name)
            .bind(&identity.siren)
            .bind(&identity.kind)
            .bind(&identity.username)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("write the node identity"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }

    /// Sets the identity only if none exists; returns whether it was written.
    pub async fn init_identity(
        &self,
        identity: &NodeIdentity,
        audit: &AuditRecord,
    ) -> Result<bool> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let t = to_ms(now());
            let done = sqlx::query(
                "INSERT INTO node_identity (singleton, name, siren, kind, username, created_at, updated_at) \
                 VALUES (1, $1, $2, $3, $4, $5, $5) ON CONFLICT (singleton) DO NOTHING",
            )
            .bind(&identity.name)
            .bind(&identity.siren)
            .bind(&identity.kind)
            .bind(&identity.username)
            .bind(t)
            .execute(&mut *tx)
            .await
            .map_err(map_err("write the node identity"))?
            .rows_affected()
                == 1;
            if done {
                audit!(tx, audit);
            }
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(done)
        })
    }

    /// All public keys, current first, then newest first.
    pub async fn keys(&self) -> Result<Vec<NodeKey>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT key_id, public_key_multibase, created_at, expires_at, is_current, revoked_at FROM node_keys \
                 ORDER BY is_current DESC, created_at DESC, key_id DESC",
            )
            .fetch_all(pool)
            .await
            .map_err(map_err("read the node keys"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(key_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Registers `key` as the current key. Any previous current key stays listed and
    /// expires at `old_expires_at`.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the key id or public key is already known.
    pub async fn add_current_key(
        &self,
        key_id: &str,
        public_key_multibase: &str,
        old_expires_at: OffsetDateTime,
        audit: &AuditRecord,
    ) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query("UPDATE node_keys SET is_current = FALSE, expires_at = $1 WHERE is_current = TRUE")
                .bind(to_ms(old_expires_at))
                .execute(&mut *tx)
                .await
                .map_err(map_err("retire the current key"))?;
            sqlx::query(
                "INSERT INTO node_keys (key_id, public_key_multibase, created_at, expires_at, is_current) \
                 VALUES ($1, $2, $3, NULL, TRUE)",
            )
            .bind(key_id)
            .bind(public_key_multibase)
            .bind(to_ms(now()))
            .execute(&mut *tx)
            .await
            .map_err(map_err("add a node key"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }

    /// Declares a former key compromised (protocol §3.3). The current key cannot be
    /// revoked: rotate first.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown key, [`StoreError::Conflict`] for the
    /// current key.
    pub async fn revoke_key(&self, key_id: &str, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let row = sqlx::query("SELECT is_current FROM node_keys WHERE key_id = $1")
                .bind(key_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err("read a node key"))?
                .ok_or_else(|| StoreError::not_found(format!("key {key_id}")))?;
            let current: bool = col!(row, "is_current");
            if current {
                return Err(StoreError::conflict(format!(
                    "key {key_id} is the current key; rotate first (passerelle keys rotate --compromised)"
                )));
            }
            let t = to_ms(now());
            sqlx::query(
                "UPDATE node_keys SET revoked_at = COALESCE(revoked_at, $1), \
                 expires_at = CASE WHEN expires_at IS NULL OR expires_at > $1 THEN $1 ELSE expires_at END \
                 WHERE key_id = $2",
            )
            .bind(t)
            .bind(key_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err("revoke a node key"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }

    // ---- accounts and tokens ----

    /// Creates an HR account.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if the username is taken.
    pub async fn create_account(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        audit: &AuditRecord,
    ) -> Result<Account> {
        let account = Account {
            id: Uuid::now_v7(),
            username: username.to_owned(),
            role,
            disabled: false,
            created_at: from_ms(to_ms(now())),
        };
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO accounts (id, username, password_hash, role, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, FALSE, $5)",
            )
            .bind(account.id.to_string())
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(to_ms(account.created_at))
            .execute(&mut *tx)
            .await
            .map_err(map_err("create the account"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        Ok(account)
    }

    /// An account and its password hash, by username.
    pub async fn account_by_username(&self, username: &str) -> Result<(Account, String)> {
        both!(self, pool => {
            let row = sqlx::query(
                "SELECT id, username, password_hash, role, disabled, created_at FROM accounts WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await
            .map_err(map_err("read an account"))?
            .ok_or_else(|| StoreError::not_found(format!("account {username:?}")))?;
            let hash: String = col!(row, "password_hash");
            Ok((account_from_row!(row), hash))
        })
    }

    /// All accounts, by username.
    pub async fn accounts(&self) -> Result<Vec<Account>> {
        both!(self, pool => {
            let rows = sqlx::query("SELECT id, username, role, disabled, created_at FROM accounts ORDER BY username")
                .fetch_all(pool)
                .await
                .map_err(map_err("list accounts"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(account_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Creates an API token.
    pub async fn create_token(&self, new: &NewToken, audit: &AuditRecord) -> Result<ApiToken> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let token = insert_token!(tx, new);
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(token)
        })
    }

    /// Creates `new` only if the node has no account and no token yet (first start).
    /// Returns `None` when the node was already set up. Safe against concurrent starts.
    pub async fn create_bootstrap_token(
        &self,
        new: &NewToken,
        audit: &AuditRecord,
    ) -> Result<Option<ApiToken>> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM accounts) + (SELECT COUNT(*) FROM api_tokens) AS n",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err("count credentials"))?;
            let n: i64 = col!(row, "n");
            if n > 0 {
                return Ok(None);
            }
            // The unique index `api_tokens_one_bootstrap` lets only one of several
            // processes starting at once create it; the others get a conflict.
            let mut new = new.clone();
            new.name = BOOTSTRAP_TOKEN_NAME.to_owned();
            let written: Result<ApiToken> = async {
                let token = insert_token!(tx, &new);
                audit!(tx, audit);
                Ok(token)
            }
            .await;
            match written {
                Ok(token) => {
                    tx.commit().await.map_err(map_err("commit"))?;
                    Ok(Some(token))
                }
                Err(StoreError::Conflict { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        })
    }

    /// A token by the hash of its secret, whether active or not.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<ApiToken> {
        both!(self, pool => {
            let row = sqlx::query(
                "SELECT id, name, role, account_id, created_at, expires_at, last_used_at, revoked_at \
                 FROM api_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
            .map_err(map_err("read a token"))?
            .ok_or_else(|| StoreError::not_found("token"))?;
            Ok(token_from_row!(row))
        })
    }

    /// Records that a token was used.
    pub async fn touch_token(&self, id: Uuid) -> Result<()> {
        both!(self, pool => {
            let writer = pool.write_turn().await.map_err(map_err("wait for the writer"))?;
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(to_ms(now()))
                .bind(id.to_string())
                .execute(&*writer)
                .await
                .map_err(map_err("update a token"))?;
        });
        Ok(())
    }

    /// All tokens that are not session tokens, newest first.
    pub async fn tokens(&self) -> Result<Vec<ApiToken>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, name, role, account_id, created_at, expires_at, last_used_at, revoked_at \
                 FROM api_tokens WHERE account_id IS NULL ORDER BY created_at DESC, id DESC",
            )
            .fetch_all(pool)
            .await
            .map_err(map_err("list tokens"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(token_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Revokes a token.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if no active token has this id.
    pub async fn revoke_token(&self, id: Uuid, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(to_ms(now()))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("revoke a token"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("active token {id}")));
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }

    // ---- audit log ----

    /// Audit entries, newest first, with `seq < before` when given.
    pub async fn audit_log(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT seq, at, actor, action, target, details FROM audit_log \
                 WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
            )
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(map_err("read the audit log"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let details: String = col!(r, "details");
                out.push(AuditEntry {
                    seq: col!(r, "seq"),
                    at: from_ms(col!(r, "at")),
                    record: AuditRecord {
                        actor: col!(r, "actor"),
                        action: col!(r, "action"),
                        target: col!(r, "target"),
                        details: parse_json(&details)?,
                    },
                });
            }
            Ok(out)
        })
    }

    // ---- agents ----

    /// Creates a local agent.
    pub async fn create_agent(&self, fields: &AgentFields, audit: &AuditRecord) -> Result<Agent> {
        let t = from_ms(to_ms(now()));
        let agent = Agent {
            id: Uuid::now_v7(),
            display_name: fields.display_name.clone(),
            email: fields.email.clone(),
            data: fields.data.clone(),
            created_at: t,
            updated_at: t,
        };
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO agents (id, display_name, email, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(agent.id.to_string())
            .bind(&agent.display_name)
            .bind(&agent.email)
            .bind(json_text(&agent.data))
            .bind(to_ms(t))
            .execute(&mut *tx)
            .await
            .map_err(map_err("create the agent"))?;
            let mut audit = audit.clone();
            audit.target = format!("agent:{}", agent.id);
            audit!(tx, &audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        Ok(agent)
    }

    /// One agent.
    pub async fn agent(&self, id: Uuid) -> Result<Agent> {
        both!(self, pool => {
            let row = sqlx::query("SELECT id, display_name, email, data, created_at, updated_at FROM agents WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(map_err("read an agent"))?
                .ok_or_else(|| StoreError::not_found(format!("agent {id}")))?;
            Ok(agent_from_row!(row))
        })
    }

    /// All agents, by name.
    pub async fn agents(&self) -> Result<Vec<Agent>> {
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, display_name, email, data, created_at, updated_at FROM agents ORDER BY display_name, id",
            )
            .fetch_all(pool)
            .await
            .map_err(map_err("list agents"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(agent_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Replaces an agent's fields.
    pub async fn update_agent(
        &self,
        id: Uuid,
        fields: &AgentFields,
        audit: &AuditRecord,
    ) -> Result<Agent> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query("UPDATE agents SET display_name = $1, email = $2, data = $3, updated_at = $4 WHERE id = $5")
                .bind(&fields.display_name)
                .bind(&fields.email)
                .bind(json_text(&fields.data))
                .bind(to_ms(now()))
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("update the agent"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("agent {id}")));
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        self.agent(id).await
    }

    /// Deletes an agent.
    pub async fn delete_agent(&self, id: Uuid, audit: &AuditRecord) -> Result<()> {
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            let n = sqlx::query("DELETE FROM agents WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("delete the agent"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("agent {id}")));
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
            Ok(())
        })
    }

    // ---- postings ----

    /// Creates a draft posting with the given id.
    pub async fn create_posting(
        &self,
        id: Uuid,
        kind: &str,
        document: &serde_json::Value,
        audit: &AuditRecord,
    ) -> Result<Posting> {
        let t = from_ms(to_ms(now()));
        both!(self, pool => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            sqlx::query(
                "INSERT INTO postings (id, kind, status, document, version, created_at, updated_at, published_at) \
                 VALUES ($1, $2, 'draft', $3, 1, $4, $4, NULL)",
            )
            .bind(id.to_string())
            .bind(kind)
            .bind(json_text(document))
            .bind(to_ms(t))
            .execute(&mut *tx)
            .await
            .map_err(map_err("create the posting"))?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        Ok(Posting {
            id,
            kind: kind.to_owned(),
            status: PostingStatus::Draft,
            document: document.clone(),
            version: 1,
            created_at: t,
            updated_at: t,
            published_at: None,
        })
    }

    /// One posting.
    pub async fn posting(&self, id: Uuid) -> Result<Posting> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {POSTING_COLUMNS} FROM postings WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a posting"))?
                .ok_or_else(|| StoreError::not_found(format!("posting {id}")))?;
            Ok(posting_from_row!(row))
        })
    }

    /// Postings, newest change first, optionally with one status.
    pub async fn postings(&self, status: Option<PostingStatus>) -> Result<Vec<Posting>> {
        both!(self, pool => {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {POSTING_COLUMNS} FROM postings WHERE ($1 IS NULL OR status = $1) ORDER BY updated_at DESC, id DESC"
            ));
            let rows = sqlx::query(sql)
                .bind(status.map(PostingStatus::as_str))
                .fetch_all(pool)
                .await
                .map_err(map_err("list postings"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(posting_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Changes a posting's document and/or status if its version is still
    /// `expected_version`; appends `activity` to the outbox in the same transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; [`StoreError::Conflict`] when the
    /// posting changed since `expected_version` was read.
    pub async fn update_posting(
        &self,
        id: Uuid,
        expected_version: i64,
        document: &serde_json::Value,
        status: PostingStatus,
        activity: Option<&NewActivity>,
        audit: &AuditRecord,
    ) -> Result<Posting> {
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            // The feed's lock before the outbox's (see `feed::FEED_LOCK_CLASS`).
            feed::FeedIndex::lock_feed(&mut *tx).await?;
            if let Some(act) = activity {
                let _seq = outbox_append!(tx, lock, act);
            }
            let t = to_ms(now());
            let n = sqlx::query(
                "UPDATE postings SET document = $1, status = $2, version = version + 1, updated_at = $3, \
                 published_at = CASE WHEN $2 = 'published' AND published_at IS NULL THEN $3 ELSE published_at END \
                 WHERE id = $4 AND version = $5",
            )
            .bind(json_text(document))
            .bind(status.as_str())
            .bind(t)
            .bind(id.to_string())
            .bind(expected_version)
            .execute(&mut *tx)
            .await
            .map_err(map_err("update the posting"))?
            .rows_affected();
            if n == 0 {
                let exists = sqlx::query("SELECT 1 FROM postings WHERE id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err("read a posting"))?
                    .is_some();
                return Err(if exists {
                    StoreError::conflict(format!("posting {id} changed since version {expected_version}; reload it and retry"))
                } else {
                    StoreError::not_found(format!("posting {id}"))
                });
            }
            feed::index_local(&mut *tx, id, document, status).await?;
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if activity.is_some() {
            self.notify_outbox();
        }
        self.posting(id).await
    }

    /// Deletes a posting, appending `activity` (a `Delete`) to the outbox. A posting that
    /// was published leaves a tombstone: its id answers 410 and is never reused.
    pub async fn delete_posting(
        &self,
        id: Uuid,
        activity: Option<&NewActivity>,
        audit: &AuditRecord,
    ) -> Result<()> {
        both!(self, pool, lock => {
            let mut tx = pool.begin_write().await.map_err(map_err("begin a transaction"))?;
            // The feed's lock before the posting's row and the outbox's lock, as
            // `update_posting` takes them (see `feed::FEED_LOCK_CLASS`).
            feed::FeedIndex::lock_feed(&mut *tx).await?;
            let n = sqlx::query("DELETE FROM postings WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(map_err("delete the posting"))?
                .rows_affected();
            if n == 0 {
                return Err(StoreError::not_found(format!("posting {id}")));
            }
            feed::unindex_local(&mut *tx, id).await?;
            if let Some(act) = activity {
                let _seq = outbox_append!(tx, lock, act);
                sqlx::query(
                    "INSERT INTO tombstones (object_id, former_type, deleted_at) VALUES ($1, 'Posting', $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&act.object_id)
                .bind(to_ms(now()))
                .execute(&mut *tx)
                .await
                .map_err(map_err("record a tombstone"))?;
            }
            audit!(tx, audit);
            tx.commit().await.map_err(map_err("commit"))?;
        });
        if activity.is_some() {
            self.notify_outbox();
        }
        Ok(())
    }

    /// When the local object `object_id` was deleted, if it was.
    pub async fn tombstone(&self, object_id: &str) -> Result<Option<(String, OffsetDateTime)>> {
        both!(self, pool => {
            let row = sqlx::query("SELECT former_type, deleted_at FROM tombstones WHERE object_id = $1")
                .bind(object_id)
                .fetch_optional(pool)
                .await
                .map_err(map_err("read a tombstone"))?;
            Ok(match row {
                Some(r) => Some((col!(r, "former_type"), from_ms(col!(r, "deleted_at")))),
                None => None,
            })
        })
    }

    // ---- outbox ----

    /// Outbox activities with `seq < before` (newest first) or, with `after`, `seq > after`
    /// (oldest first). `public_only` keeps the public ones.
    pub async fn outbox(
        &self,
        after: Option<i64>,
        before: Option<i64>,
        limit: u32,
        public_only: bool,
    ) -> Result<Vec<OutboxItem>> {
        both!(self, pool => {
            let sql = if after.is_some() {
                "SELECT seq, activity_id, activity_type, object_id, public, document, created_at FROM outbox \
                 WHERE seq > $1 AND seq < $2 AND (public = TRUE OR $3 = FALSE) ORDER BY seq ASC LIMIT $4"
            } else {
                "SELECT seq, activity_id, activity_type, object_id, public, document, created_at FROM outbox \
                 WHERE seq > $1 AND seq < $2 AND (public = TRUE OR $3 = FALSE) ORDER BY seq DESC LIMIT $4"
            };
            let rows = sqlx::query(sql)
                .bind(after.unwrap_or(0))
                .bind(before.unwrap_or(i64::MAX))
                .bind(public_only)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(map_err("read the outbox"))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(outbox_from_row!(r));
            }
            Ok(out)
        })
    }

    /// Number of outbox activities.
    pub async fn outbox_len(&self, public_only: bool) -> Result<i64> {
        both!(self, pool => {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE public = TRUE OR $1 = FALSE")
                .bind(public_only)
                .fetch_one(pool)
                .await
                .map_err(map_err("count the outbox"))?;
            Ok(col!(row, "n"))
        })
    }

    /// Counts for NodeInfo and metrics: (published postings, accounts).
    pub async fn usage(&self) -> Result<(i64, i64)> {
        both!(self, pool => {
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM postings WHERE status = 'published') AS postings, \
                 (SELECT COUNT(*) FROM accounts) AS accounts",
            )
            .fetch_one(pool)
            .await
            .map_err(map_err("count usage"))?;
            Ok((col!(row, "postings"), col!(row, "accounts")))
        })
    }

    /// Closes the pool (and on SQLite the writer connection), waiting for connections to
    /// be returned.
    pub async fn close(&self) {
        both!(self, pool => pool.close().await);
        // After the pool: a closed store opens no new writer ([`sqlite::writer`]).
        if let Inner::Sqlite(pool) = &self.inner {
            sqlite::close_writer(pool).await;
        }
    }
}

// Further `impl Store` blocks, one file per area. They are declared after the macros above
// (`both!`, `col!`, `audit!`, `outbox_append!`…), which are in scope in them.
mod federation;
pub use federation::*;
mod queue;
pub use queue::*;
mod copy;
pub use copy::*;
mod gauges;
pub use gauges::*;
mod feed;
pub use feed::*;
mod console;
pub use console::*;
mod mobility;
pub use mobility::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_lists_are_numbered_on_postgresql_and_anonymous_on_sqlite() {
        let mut pg = String::new();
        push_values(&mut pg, 2, 2, false);
        assert_eq!(pg, "($1, $2), ($3, $4)");
        let mut lite = String::new();
        push_values(&mut lite, 2, 2, true);
        assert_eq!(lite, "(?, ?), (?, ?)");
    }

    /// On SQLite, anonymous placeholders bind in order and a numbered parameter of the
    /// same statement by its number, even written before the list (as the projection's
    /// `UPDATE inbox … WHERE seq IN (…)` does).
    #[tokio::test]
    async fn sqlite_binds_a_numbered_parameter_beside_an_anonymous_list() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE t (k INTEGER, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        )
        .execute(&pool)
        .await
        .unwrap();
        let mut sql = String::from("UPDATE t SET v = $3 WHERE k IN ");
        push_values(&mut sql, 1, 2, true);
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(1)
            .bind(3)
            .bind("z")
            .execute(&pool)
            .await
            .unwrap();
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT k, v FROM t ORDER BY k")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "z".to_owned()),
                (2, "b".to_owned()),
                (3, "z".to_owned())
            ]
        );
    }
}
