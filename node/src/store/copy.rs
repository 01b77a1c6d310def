//! Whole-database operations, for backups and for moving between backends.
//!
//! Everything here reads the schema from the database itself (tables, columns, foreign
//! keys, identity columns), so a table added by a later migration is backed up, counted,
//! compared and copied without a change to this file. Rows travel as engine-neutral
//! [`Cell`]s (booleans as 0/1 integers, as SQLite stores them).
//!
//! - [`Store::tables`]: the tables of the schema in foreign-key order (a table comes after
//!   the tables it references); `_sqlx_migrations` is left out ([`Store::applied_migrations`]).
//! - [`Store::row_counts`], [`Store::table_rows`]: what a backup or a copy is checked against.
//! - [`Store::sqlite_snapshot`]: `VACUUM INTO`, a consistent copy taken inside one read
//!   transaction while the node keeps running.
//! - [`Store::pg_snapshot`]: a `REPEATABLE READ` transaction whose exported snapshot
//!   `pg_dump --snapshot` reads, so the dump and the row counts see the same data.
//! - [`Store::copy_into`]: `passerelle migrate-store`, every row from one store to an empty
//!   one, in one transaction on each side, identity counters set past the copied maxima.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr as _;

use sqlx::{AssertSqlSafe, Row as _, ValueRef as _};

use super::{
    BeginWrite as _, Inner, Result, Store, StoreError, map_err, migrator, postgres, sqlite,
};

/// Rows per `INSERT` when copying (well under both engines' bound-parameter limits).
const BATCH_CELLS: usize = 8_000;

/// One value of a row, independent of the engine.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// Integers of any width, and booleans (0 or 1).
    Int(i64),
    /// Floating-point numbers.
    Real(f64),
    /// Text.
    Text(String),
    /// Binary data.
    Bytes(Vec<u8>),
}

/// Declared type of a column, as far as copying needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// 64-bit integer (SQLite `INTEGER`, PostgreSQL `bigint`).
    BigInt,
    /// 32-bit integer (PostgreSQL `integer`).
    Int,
    /// 16-bit integer (PostgreSQL `smallint`).
    SmallInt,
    /// Boolean (PostgreSQL `boolean`; SQLite stores 0/1 in an `INTEGER`).
    Bool,
    /// Floating point.
    Real,
    /// Text.
    Text,
    /// Binary.
    Bytes,
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Name.
    pub name: String,
    /// Type.
    pub kind: ColumnKind,
}

/// A table of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Name.
    pub name: String,
    /// Columns, in declaration order.
    pub columns: Vec<ColumnInfo>,
    /// Primary-key columns, in key order.
    pub primary_key: Vec<String>,
    /// Tables this one references by foreign key.
    pub references: Vec<String>,
    /// Column filled by an identity counter (PostgreSQL identity, SQLite `AUTOINCREMENT`).
    pub identity: Option<String>,
}

/// What [`Store::copy_into`] copied: rows per table, in copy order.
pub type CopyReport = Vec<(String, u64)>;

fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn sqlite_kind(declared: &str) -> ColumnKind {
    // SQLite's type affinity rules (https://sqlite.org/datatype3.html §3.1).
    let t = declared.to_ascii_uppercase();
    if t.contains("INT") {
        ColumnKind::BigInt
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        ColumnKind::Text
    } else if t.contains("BLOB") || t.is_empty() {
        ColumnKind::Bytes
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        ColumnKind::Real
    } else if t.contains("BOOL") {
        ColumnKind::Bool
    } else {
        ColumnKind::BigInt
    }
}

fn pg_kind(table: &str, column: &str, data_type: &str) -> Result<ColumnKind> {
    Ok(match data_type {
        "bigint" => ColumnKind::BigInt,
        "integer" => ColumnKind::Int,
        "smallint" => ColumnKind::SmallInt,
        "boolean" => ColumnKind::Bool,
        "double precision" | "real" => ColumnKind::Real,
        "text" | "character varying" | "character" => ColumnKind::Text,
        "bytea" => ColumnKind::Bytes,
        other => {
            return Err(StoreError::conflict(format!(
                "column {table}.{column} has type {other}, which whole-database copies do not handle yet; extend store/copy.rs"
            )));
        }
    })
}

/// Orders tables so that each comes after the tables it references (then by name).
fn fk_order(mut tables: Vec<TableInfo>) -> Result<Vec<TableInfo>> {
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let ready = tables.iter().position(|t| {
            t.references
                .iter()
                .all(|r| r == &t.name || done.contains(r))
        });
        let Some(i) = ready else {
            return Err(StoreError::conflict(format!(
                "foreign keys form a cycle among {:?}",
                tables.iter().map(|t| &t.name).collect::<Vec<_>>()
            )));
        };
        let t = tables.remove(i);
        done.insert(t.name.clone());
        out.push(t);
    }
    Ok(out)
}

fn decode_sqlite(row: &sqlx::sqlite::SqliteRow, n: usize) -> Result<Vec<Cell>> {
    use sqlx::TypeInfo as _;
    let mut cells = Vec::with_capacity(n);
    for i in 0..n {
        let raw = row
            .try_get_raw(i)
            .map_err(map_err("read a value for copying"))?;
        if raw.is_null() {
            cells.push(Cell::Null);
            continue;
        }
        let ty = raw.type_info().name().to_owned();
        let e = map_err("decode a value for copying");
        cells.push(match ty.as_str() {
            "INTEGER" | "BOOLEAN" | "INT8" => {
                Cell::Int(row.try_get_unchecked::<i64, _>(i).map_err(e)?)
            }
            "REAL" => Cell::Real(row.try_get_unchecked::<f64, _>(i).map_err(e)?),
            "TEXT" => Cell::Text(row.try_get_unchecked::<String, _>(i).map_err(e)?),
            _ => Cell::Bytes(row.try_get_unchecked::<Vec<u8>, _>(i).map_err(e)?),
        });
    }
    Ok(cells)
}

fn decode_pg(row: &sqlx::postgres::PgRow, n: usize) -> Result<Vec<Cell>> {
    use sqlx::TypeInfo as _;
    let mut cells = Vec::with_capacity(n);
    for i in 0..n {
        let raw = row
            .try_get_raw(i)
            .map_err(map_err("read a value for copying"))?;
        if raw.is_null() {
            cells.push(Cell::Null);
            continue;
        }
        let ty = raw.type_info().name().to_owned();
        let e = map_err("decode a value for copying");
        cells.push(match ty.as_str() {
            "INT8" => Cell::Int(row.try_get::<i64, _>(i).map_err(e)?),
            "INT4" => Cell::Int(i64::from(row.try_get::<i32, _>(i).map_err(e)?)),
            "INT2" => Cell::Int(i64::from(row.try_get::<i16, _>(i).map_err(e)?)),
            "BOOL" => Cell::Int(i64::from(row.try_get::<bool, _>(i).map_err(e)?)),
            "FLOAT8" => Cell::Real(row.try_get::<f64, _>(i).map_err(e)?),
            "FLOAT4" => Cell::Real(f64::from(row.try_get::<f32, _>(i).map_err(e)?)),
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
                Cell::Text(row.try_get::<String, _>(i).map_err(e)?)
            }
            "BYTEA" => Cell::Bytes(row.try_get::<Vec<u8>, _>(i).map_err(e)?),
            other => {
                return Err(StoreError::conflict(format!(
                    "a value of PostgreSQL type {other} cannot be copied yet; extend store/copy.rs"
                )));
            }
        });
    }
    Ok(cells)
}

fn type_mismatch(kind: ColumnKind, cell: &Cell) -> StoreError {
    StoreError::conflict(format!("a {cell:?} value cannot go into a {kind:?} column"))
}

fn int_of(cell: &Cell, kind: ColumnKind) -> Result<Option<i64>> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Int(v) => Ok(Some(*v)),
        other => Err(type_mismatch(kind, other)),
    }
}

fn bind_pg<'q>(
    q: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    kind: ColumnKind,
    cell: &Cell,
) -> Result<sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>> {
    let overflow = |v: i64| StoreError::conflict(format!("{v} does not fit a {kind:?} column"));
    Ok(match kind {
        ColumnKind::BigInt => q.bind(int_of(cell, kind)?),
        ColumnKind::Int => q.bind(
            int_of(cell, kind)?
                .map(|v| i32::try_from(v).map_err(|_| overflow(v)))
                .transpose()?,
        ),
        ColumnKind::SmallInt => q.bind(
            int_of(cell, kind)?
                .map(|v| i16::try_from(v).map_err(|_| overflow(v)))
                .transpose()?,
        ),
        ColumnKind::Bool => q.bind(int_of(cell, kind)?.map(|v| v != 0)),
        ColumnKind::Real => q.bind(match cell {
            Cell::Null => None,
            Cell::Real(v) => Some(*v),
            #[allow(clippy::cast_precision_loss)]
            Cell::Int(v) => Some(*v as f64),
            other => return Err(type_mismatch(kind, other)),
        }),
        ColumnKind::Text => q.bind(match cell {
            Cell::Null => None,
            Cell::Text(s) => Some(s.clone()),
            other => return Err(type_mismatch(kind, other)),
        }),
        ColumnKind::Bytes => q.bind(match cell {
            Cell::Null => None,
            Cell::Bytes(b) => Some(b.clone()),
            Cell::Text(s) => Some(s.clone().into_bytes()),
            other => return Err(type_mismatch(kind, other)),
        }),
    })
}

fn bind_sqlite<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    cell: &Cell,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    // SQLite stores what it is given; the schema's CHECK constraints guard the values.
    match cell {
        Cell::Null => q.bind(None::<i64>),
        Cell::Int(v) => q.bind(*v),
        Cell::Real(v) => q.bind(*v),
        Cell::Text(s) => q.bind(s.clone()),
        Cell::Bytes(b) => q.bind(b.clone()),
    }
}

/// Versions of the migrations this binary knows, ascending (the same on both engines).
pub fn known_migration_versions() -> Vec<i64> {
    super::MIGRATIONS.iter().map(|m| m.0).collect()
}

/// A PostgreSQL snapshot held open for `pg_dump --snapshot` (see [`Store::pg_snapshot`]).
pub struct PgSnapshot {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    name: String,
    schema: String,
}

impl PgSnapshot {
    /// The exported snapshot's name, for `pg_dump --snapshot=NAME`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema the store works in (`current_schema()`), for `pg_dump --schema`.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Row counts of `tables`, as the snapshot sees them.
    pub async fn row_counts(&mut self, tables: &[TableInfo]) -> Result<BTreeMap<String, i64>> {
        let mut out = BTreeMap::new();
        for t in tables {
            let sql = format!("SELECT COUNT(*) FROM {}", quote(&t.name));
            let row = sqlx::query(AssertSqlSafe(sql))
                .fetch_one(&mut *self.tx)
                .await
                .map_err(map_err("count rows"))?;
            let n: i64 = row.try_get(0).map_err(map_err("count rows"))?;
            out.insert(t.name.clone(), n);
        }
        Ok(out)
    }

    /// Ends the snapshot's transaction (after `pg_dump` is done with it).
    pub async fn finish(self) -> Result<()> {
        self.tx
            .rollback()
            .await
            .map_err(map_err("end the snapshot"))
    }
}

impl Store {
    /// Migration versions applied to the database, ascending (empty when none).
    pub async fn applied_migrations(&self) -> Result<Vec<i64>> {
        both!(self, pool => {
            match sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
                .fetch_all(pool)
                .await
            {
                Ok(rows) => rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("version"))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(map_err("read applied migrations")),
                Err(sqlx::Error::Database(_)) => Ok(Vec::new()),
                Err(e) => Err(StoreError::other("read applied migrations", e)),
            }
        })
    }

    /// Versions of the migrations this binary knows, ascending.
    pub fn known_migrations(&self) -> Vec<i64> {
        known_migration_versions()
    }

    /// Applies the migrations up to and including `version`, and no later one. Used to
    /// build databases of an earlier release (upgrade tests) and by restores of older
    /// backups.
    pub async fn migrate_to(&self, version: i64) -> Result<()> {
        let m = migrator(self.kind());
        both!(self, pool => m.run_to(version, pool).await.map_err(|e| StoreError::other("apply migrations", e)))
    }

    /// The tables of the schema, each after the tables it references; derived tables (the
    /// feed index, rebuilt from the postings by [`Store::reindex_feed`]) are left out.
    pub async fn tables(&self) -> Result<Vec<TableInfo>> {
        let tables = match &self.inner {
            Inner::Sqlite(pool) => {
                let names: Vec<(String, String)> = sqlx::query_as(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations' ORDER BY name",
                )
                .fetch_all(pool)
                .await
                .map_err(map_err("list tables"))?;
                let mut out = Vec::new();
                for (name, sql) in names {
                    if is_derived_table(&name) {
                        continue;
                    }
                    let cols: Vec<(String, String, i64)> = sqlx::query_as(
                        "SELECT name, type, pk FROM pragma_table_info($1) ORDER BY cid",
                    )
                    .bind(&name)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("list columns"))?;
                    let refs: Vec<(String,)> = sqlx::query_as(
                        "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)",
                    )
                    .bind(&name)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("list foreign keys"))?;
                    let mut pk: Vec<(i64, String)> = cols
                        .iter()
                        .filter(|c| c.2 > 0)
                        .map(|c| (c.2, c.0.clone()))
                        .collect();
                    pk.sort();
                    let identity = if sql.to_ascii_uppercase().contains("AUTOINCREMENT") {
                        pk.first().map(|p| p.1.clone())
                    } else {
                        None
                    };
                    out.push(TableInfo {
                        columns: cols
                            .iter()
                            .map(|(n, t, _)| ColumnInfo {
                                name: n.clone(),
                                kind: sqlite_kind(t),
                            })
                            .collect(),
                        primary_key: pk.into_iter().map(|p| p.1).collect(),
                        references: refs.into_iter().map(|r| r.0).collect(),
                        identity,
                        name,
                    });
                }
                out
            }
            Inner::Postgres(pool) => {
                let names: Vec<(String,)> = sqlx::query_as(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                     AND table_name <> '_sqlx_migrations' ORDER BY table_name",
                )
                .fetch_all(pool)
                .await
                .map_err(map_err("list tables"))?;
                let mut out = Vec::new();
                for (name,) in names {
                    if is_derived_table(&name) {
                        continue;
                    }
                    let cols: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
                        "SELECT column_name::text, data_type::text, is_identity::text, column_default::text \
                         FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                    )
                    .bind(&name)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("list columns"))?;
                    let regclass = quote(&name);
                    let refs: Vec<(String,)> = sqlx::query_as(
                        "SELECT DISTINCT cf.relname::text FROM pg_constraint c \
                         JOIN pg_class cf ON cf.oid = c.confrelid \
                         WHERE c.contype = 'f' AND c.conrelid = ($1::text)::regclass",
                    )
                    .bind(&regclass)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("list foreign keys"))?;
                    let pk: Vec<(String,)> = sqlx::query_as(
                        "SELECT a.attname::text FROM pg_index i \
                         JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON TRUE \
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                         WHERE i.indrelid = ($1::text)::regclass AND i.indisprimary ORDER BY k.ord",
                    )
                    .bind(&regclass)
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("list primary keys"))?;
                    let mut columns = Vec::with_capacity(cols.len());
                    let mut identity = None;
                    for (col, ty, is_identity, default) in &cols {
                        columns.push(ColumnInfo {
                            name: col.clone(),
                            kind: pg_kind(&name, col, ty)?,
                        });
                        if is_identity == "YES"
                            || default
                                .as_deref()
                                .is_some_and(|d| d.starts_with("nextval("))
                        {
                            identity = Some(col.clone());
                        }
                    }
                    out.push(TableInfo {
                        columns,
                        primary_key: pk.into_iter().map(|p| p.0).collect(),
                        references: refs.into_iter().map(|r| r.0).collect(),
                        identity,
                        name,
                    });
                }
                out
            }
        };
        fk_order(tables)
    }

    /// Number of rows of every table of the schema.
    pub async fn row_counts(&self) -> Result<BTreeMap<String, i64>> {
        let tables = self.tables().await?;
        let mut out = BTreeMap::new();
        for t in &tables {
            let sql = format!("SELECT COUNT(*) FROM {}", quote(&t.name));
            let n: i64 = both!(self, pool => {
                let row = sqlx::query(AssertSqlSafe(sql)).fetch_one(pool).await.map_err(map_err("count rows"))?;
                row.try_get(0).map_err(map_err("count rows"))?
            });
            out.insert(t.name.clone(), n);
        }
        Ok(out)
    }

    /// Every row of `table`, with the columns in `columns` order (all columns when empty),
    /// as engine-neutral cells, sorted: two stores holding the same data give equal results
    /// whatever their engines.
    pub async fn table_rows(&self, table: &str, columns: &[String]) -> Result<Vec<Vec<Cell>>> {
        let info = self
            .tables()
            .await?
            .into_iter()
            .find(|t| t.name == table)
            .ok_or_else(|| StoreError::not_found(format!("table {table}")))?;
        let cols: Vec<String> = if columns.is_empty() {
            info.columns.iter().map(|c| c.name.clone()).collect()
        } else {
            columns.to_vec()
        };
        let sql = format!(
            "SELECT {} FROM {}",
            cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
            quote(table)
        );
        let mut rows = match &self.inner {
            Inner::Sqlite(pool) => {
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("read rows"))?;
                rows.iter()
                    .map(|r| decode_sqlite(r, cols.len()))
                    .collect::<Result<Vec<_>>>()?
            }
            Inner::Postgres(pool) => {
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .fetch_all(pool)
                    .await
                    .map_err(map_err("read rows"))?;
                rows.iter()
                    .map(|r| decode_pg(r, cols.len()))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Ok(rows)
    }

    /// Writes a consistent copy of this SQLite database to `dest` (which must not exist)
    /// with `VACUUM INTO`: SQLite builds the copy inside one read transaction, so it is a
    /// snapshot of one moment even while the node keeps writing (WAL mode lets writers go
    /// on meanwhile).
    ///
    /// # Errors
    /// [`StoreError::Conflict`] on PostgreSQL; [`StoreError::Other`] when SQLite fails.
    pub async fn sqlite_snapshot(&self, dest: &Path) -> Result<()> {
        let Inner::Sqlite(pool) = &self.inner else {
            return Err(StoreError::conflict(
                "VACUUM INTO snapshots are for SQLite only",
            ));
        };
        sqlx::query("VACUUM INTO $1")
            .bind(dest.display().to_string())
            .execute(pool)
            .await
            .map_err(map_err("write a snapshot of the database (VACUUM INTO)"))?;
        Ok(())
    }

    /// Opens a SQLite database file read-only and without locking (a snapshot written by
    /// [`Store::sqlite_snapshot`] or found in a backup), to count or read its rows.
    pub async fn open_sqlite_file_readonly(path: &Path) -> Result<Self> {
        let options =
            sqlx::sqlite::SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
                .map_err(|e| StoreError::other("parse the SQLite path", e))?
                .read_only(true)
                .immutable(true);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::other("open the SQLite file", e))?;
        Ok(Self {
            inner: Inner::Sqlite(pool),
            events: std::sync::Arc::default(),
        })
    }

    /// Opens a read-only `REPEATABLE READ` transaction on PostgreSQL and exports its
    /// snapshot, for `pg_dump --snapshot` and for counting the same rows it dumps.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] on SQLite.
    pub async fn pg_snapshot(&self) -> Result<PgSnapshot> {
        let Inner::Postgres(pool) = &self.inner else {
            return Err(StoreError::conflict(
                "exported snapshots are for PostgreSQL only",
            ));
        };
        let mut tx = pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(map_err("begin a snapshot"))?;
        let row = sqlx::query("SELECT pg_export_snapshot(), current_schema()::text")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err("export a snapshot"))?;
        let name: String = row.try_get(0).map_err(map_err("export a snapshot"))?;
        let schema: String = row.try_get(1).map_err(map_err("export a snapshot"))?;
        Ok(PgSnapshot { tx, name, schema })
    }

    /// Whether no table of the schema holds a row (true for a database without tables).
    pub async fn is_empty(&self) -> Result<bool> {
        Ok(self.row_counts().await?.values().all(|n| *n == 0))
    }

    /// Whether the schema has any table at all (migrations or not).
    pub async fn has_tables(&self) -> Result<bool> {
        let n: i64 = match &self.inner {
            Inner::Sqlite(pool) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_one(pool)
            .await
            .map_err(map_err("list tables"))?,
            Inner::Postgres(pool) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
            )
            .fetch_one(pool)
            .await
            .map_err(map_err("list tables"))?,
        };
        Ok(n > 0)
    }

    /// Copies every row of every table into `target`, which must have the same schema
    /// (same migrations applied) and no rows. Reads one consistent snapshot of this store;
    /// writes in one transaction on the target, so a failure leaves it empty. Identity
    /// counters of the target are set past the copied maxima, so new rows (outbox
    /// sequence numbers, which partners use as paging cursors) continue after the copied
    /// ones. Returns the rows copied per table; row counts are compared after the commit.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the schemas differ or the target holds rows.
    pub async fn copy_into(&self, target: &Store) -> Result<CopyReport> {
        let (mine, theirs) = (
            self.applied_migrations().await?,
            target.applied_migrations().await?,
        );
        if mine != theirs {
            return Err(StoreError::conflict(format!(
                "the source has migrations {mine:?} and the target {theirs:?}; migrate both to the same version"
            )));
        }
        let tables = self.tables().await?;
        let target_tables = target.tables().await?;
        let names: BTreeSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        let target_names: BTreeSet<&str> = target_tables.iter().map(|t| t.name.as_str()).collect();
        if names != target_names {
            return Err(StoreError::conflict(format!(
                "the schemas differ: tables only in the source {:?}, only in the target {:?}",
                names.difference(&target_names).collect::<Vec<_>>(),
                target_names.difference(&names).collect::<Vec<_>>()
            )));
        }
        let non_empty: Vec<String> = target
            .row_counts()
            .await?
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| format!("{t} ({n} rows)"))
            .collect();
        if !non_empty.is_empty() {
            return Err(StoreError::conflict(format!(
                "the target database is not empty: {}",
                non_empty.join(", ")
            )));
        }
        let mut source = Reader::begin(self).await?;
        let mut writer = Writer::begin(target).await?;
        let mut report = Vec::with_capacity(tables.len());
        let mut expected = BTreeMap::new();
        for t in &tables {
            let Some(tt) = target_tables.iter().find(|x| x.name == t.name) else {
                continue;
            };
            for c in &tt.columns {
                if !t.columns.iter().any(|s| s.name == c.name) {
                    return Err(StoreError::conflict(format!(
                        "column {}.{} exists only in the target",
                        t.name, c.name
                    )));
                }
            }
            let cols: Vec<String> = tt.columns.iter().map(|c| c.name.clone()).collect();
            let order = if t.primary_key.is_empty() {
                (1..=cols.len())
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                t.primary_key
                    .iter()
                    .map(|c| quote(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let batch = (BATCH_CELLS / cols.len().max(1)).max(1);
            let select = format!(
                "SELECT {} FROM {} ORDER BY {order}",
                cols.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", "),
                quote(&t.name)
            );
            let count = source.count(&t.name).await?;
            expected.insert(t.name.clone(), count);
            let mut copied = 0u64;
            let mut offset = 0usize;
            loop {
                let rows = source
                    .fetch(
                        &format!("{select} LIMIT {batch} OFFSET {offset}"),
                        cols.len(),
                    )
                    .await?;
                if rows.is_empty() {
                    break;
                }
                offset += rows.len();
                copied += rows.len() as u64;
                writer.insert(tt, &rows).await?;
            }
            if let Some(id) = &tt.identity {
                writer.reset_identity(&tt.name, id).await?;
            }
            report.push((t.name.clone(), copied));
        }
        source.finish().await?;
        writer.commit().await?;
        let after = target.row_counts().await?;
        for (table, n) in &expected {
            let got = after.get(table).copied().unwrap_or(-1);
            if got != *n {
                return Err(StoreError::conflict(format!(
                    "after the copy, table {table} has {got} rows in the target and {n} in the source"
                )));
            }
        }
        Ok(report)
    }
}

/// The source side of a copy: one read transaction (one snapshot).
enum Reader {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Reader {
    async fn begin(store: &Store) -> Result<Self> {
        Ok(match &store.inner {
            // A deferred transaction: its first read fixes the snapshot (WAL mode).
            Inner::Sqlite(pool) => {
                Self::Sqlite(pool.begin().await.map_err(map_err("begin reading"))?)
            }
            Inner::Postgres(pool) => Self::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await
                    .map_err(map_err("begin reading"))?,
            ),
        })
    }

    async fn count(&mut self, table: &str) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", quote(table));
        match self {
            Self::Sqlite(tx) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut **tx)
                    .await
            }
            Self::Postgres(tx) => {
                sqlx::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(&mut **tx)
                    .await
            }
        }
        .map_err(map_err("count rows"))
    }

    async fn fetch(&mut self, sql: &str, n: usize) -> Result<Vec<Vec<Cell>>> {
        match self {
            Self::Sqlite(tx) => sqlx::query(AssertSqlSafe(sql.to_owned()))
                .fetch_all(&mut **tx)
                .await
                .map_err(map_err("read rows to copy"))?
                .iter()
                .map(|r| decode_sqlite(r, n))
                .collect(),
            Self::Postgres(tx) => sqlx::query(AssertSqlSafe(sql.to_owned()))
                .fetch_all(&mut **tx)
                .await
                .map_err(map_err("read rows to copy"))?
                .iter()
                .map(|r| decode_pg(r, n))
                .collect(),
        }
    }

    async fn finish(self) -> Result<()> {
        match self {
            Self::Sqlite(tx) => tx.rollback().await,
            Self::Postgres(tx) => tx.rollback().await,
        }
        .map_err(map_err("end the read transaction"))
    }
}

/// The target side of a copy: one write transaction.
enum Writer {
    Sqlite(super::WriteTx<sqlx::Sqlite>),
    Postgres(super::WriteTx<sqlx::Postgres>),
}

impl Writer {
    async fn begin(store: &Store) -> Result<Self> {
        Ok(match &store.inner {
            Inner::Sqlite(pool) => {
                Self::Sqlite(pool.begin_write().await.map_err(map_err("begin writing"))?)
            }
            Inner::Postgres(pool) => {
                Self::Postgres(pool.begin_write().await.map_err(map_err("begin writing"))?)
            }
        })
    }

    async fn insert(&mut self, table: &TableInfo, rows: &[Vec<Cell>]) -> Result<()> {
        let cols = table
            .columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("INSERT INTO {} ({cols})", quote(&table.name));
        if matches!(self, Self::Postgres(_)) && table.identity.is_some() {
            sql.push_str(" OVERRIDING SYSTEM VALUE");
        }
        sql.push_str(" VALUES ");
        let width = table.columns.len();
        let mut p = 0usize;
        for (i, _) in rows.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..width {
                if j > 0 {
                    sql.push_str(", ");
                }
                p += 1;
                sql.push_str(&format!("${p}"));
            }
            sql.push(')');
        }
        match self {
            Self::Sqlite(tx) => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for row in rows {
                    for cell in row {
                        q = bind_sqlite(q, cell);
                    }
                }
                q.execute(&mut **tx).await.map(|_| ())
            }
            Self::Postgres(tx) => {
                let mut q = sqlx::query(AssertSqlSafe(sql));
                for row in rows {
                    for (cell, col) in row.iter().zip(&table.columns) {
                        q = bind_pg(q, col.kind, cell)?;
                    }
                }
                q.execute(&mut **tx).await.map(|_| ())
            }
        }
        .map_err(map_err("insert copied rows"))?;
        Ok(())
    }

    /// Sets the identity counter of `table.column` past the largest copied value.
    async fn reset_identity(&mut self, table: &str, column: &str) -> Result<()> {
        match self {
            Self::Postgres(tx) => {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX({c}) FROM {t}), 1), \
                     (SELECT MAX({c}) FROM {t}) IS NOT NULL)",
                    c = quote(column),
                    t = quote(table)
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(quote(table))
                    .bind(column)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err("set an identity counter"))?;
            }
            Self::Sqlite(tx) => {
                // SQLite raises the AUTOINCREMENT counter on explicit inserts already; make
                // sure of it (the row exists once the table has had a row).
                let sql = format!(
                    "UPDATE sqlite_sequence SET seq = MAX(seq, COALESCE((SELECT MAX({c}) FROM {t}), 0)) WHERE name = $1",
                    c = quote(column),
                    t = quote(table)
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(table)
                    .execute(&mut **tx)
                    .await
                    .map_err(map_err("set an identity counter"))?;
            }
        }
        Ok(())
    }

    async fn commit(self) -> Result<()> {
        match self {
            Self::Sqlite(tx) => tx.commit().await,
            Self::Postgres(tx) => tx.commit().await,
        }
        .map_err(map_err("commit the copy"))
    }
}

/// Whether a table holds only data derived from other tables: the feed index
/// (`feed_postings`, `feed_terms`, SQLite's FTS5 `feed_fts` and its shadow tables). Whole-
/// database copies and counts leave them out; a node rebuilds them at start
/// ([`Store::reindex_feed`]), and `migrate-store` right after the copy.
pub fn is_derived_table(name: &str) -> bool {
    ["feed_postings", "feed_terms", "feed_fts"]
        .iter()
        .any(|p| name == *p || name.starts_with(&format!("{p}_")))
}
