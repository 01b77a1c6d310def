//! Test databases: a temporary SQLite file, and a fresh PostgreSQL schema per test.

use passerelle_node::store::Store;

/// Default PostgreSQL server of the project machines and CI.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database for one test; dropping it removes the SQLite file (PostgreSQL schemas are
/// dropped by [`TestDb::cleanup`]).
pub struct TestDb {
    /// `sqlite` or `postgres`.
    pub name: &'static str,
    /// URL to give to `Store::connect` or to the binary.
    pub url: String,
    schema: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh SQLite database in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        Self {
            name: "sqlite",
            url,
            schema: None,
            _dir: Some(dir),
        }
    }

    /// A fresh schema on the test PostgreSQL server, or `None` (after one SKIPPED line)
    /// when it is unreachable outside CI. Under `CI`, unreachable is a failure.
    pub async fn postgres() -> Option<Self> {
        let admin = std::env::var("PASSERELLE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let store = match Store::connect(&admin, 1).await {
            Ok(s) => s,
            Err(e) => {
                if std::env::var_os("CI").is_some() {
                    panic!("PostgreSQL is required under CI at {admin}: {e}");
                }
                eprintln!(
                    "SKIPPED: PostgreSQL tests (no server at {admin}: {e}); set PASSERELLE_TEST_POSTGRES_URL"
                );
                return None;
            }
        };
        store.close().await;
        let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
        exec(&admin, &format!("CREATE SCHEMA {schema}")).await;
        let sep = if admin.contains('?') { '&' } else { '?' };
        let url = format!("{admin}{sep}options=-c%20search_path%3D{schema}");
        Some(Self {
            name: "postgres",
            url,
            schema: Some((admin, schema)),
            _dir: None,
        })
    }

    /// Both backends (PostgreSQL only when reachable).
    pub async fn all() -> Vec<Self> {
        let mut dbs = vec![Self::sqlite()];
        if let Some(pg) = Self::postgres().await {
            dbs.push(pg);
        }
        dbs
    }

    /// Opens a migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url, 4).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// Empties the database as a lost disk or a dropped database would: the SQLite file
    /// (and its WAL) is deleted, the PostgreSQL schema dropped and created again empty.
    pub async fn wipe(&self) {
        match &self.schema {
            Some((admin, schema)) => {
                exec(
                    admin,
                    &format!("DROP SCHEMA {schema} CASCADE; CREATE SCHEMA {schema}"),
                )
                .await;
            }
            None => {
                let path = self.url.trim_start_matches("sqlite://");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
        }
    }

    /// Drops the PostgreSQL schema.
    pub async fn cleanup(self) {
        if let Some((admin, schema)) = &self.schema {
            exec(admin, &format!("DROP SCHEMA {schema} CASCADE")).await;
        }
    }
}

async fn exec(url: &str, sql: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// The workspace root.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The shared vectors folder, or `None` after one SKIPPED line outside CI (a failure
/// under `CI`).
pub fn shared_vectors(what: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("PASSERELLE_SHARED_VECTORS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/vectors"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{what}: {} is missing and CI must not skip it",
            dir.display()
        );
    }
    eprintln!(
        "SKIPPED {what}: {} not found (set PASSERELLE_SHARED_VECTORS)",
        dir.display()
    );
    None
}
