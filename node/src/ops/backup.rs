//! `passerelle backup --out DIR|FILE.tar` and `passerelle restore FROM`.
//!
//! A backup is a directory, or a tar archive of the same files (when `--out` ends in
//! `.tar`), every file mode 0600:
//!
//! | File | What |
//! |---|---|
//! | `manifest.json` | format, versions, schema version, identity, public keys, rows per table, SHA-256 of every other file |
//! | `passerelle.db` | SQLite: a consistent snapshot taken with `VACUUM INTO` while the node runs |
//! | `passerelle.pgdump` | PostgreSQL: `pg_dump --format=custom` of an exported snapshot |
//! | `node-key.secret` | the node's secret signing key (the database only holds public keys) |
//! | `passerelle.toml` | the configuration file in use, if any |
//!
//! The row counts of the manifest are taken from the same snapshot as the data (the
//! snapshot file itself on SQLite, the exported snapshot on PostgreSQL) and checked again
//! after a restore; tables are read from the schema, so tables added by later migrations
//! are covered without a change here.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use time::OffsetDateTime;

use super::{find_on_path, libpq_target, sqlite_path};
use crate::cli::{Failure, exit};
use crate::config::{Config, DatabaseKind, redact_url};
use crate::store::Store;

/// Value of `format` in the manifest of backups this binary writes and reads.
pub const FORMAT: &str = "passerelle-backup/1";
/// Name of the manifest inside a backup.
pub const MANIFEST: &str = "manifest.json";
/// SQLite snapshot inside a backup.
pub const SQLITE_FILE: &str = "passerelle.db";
/// PostgreSQL dump inside a backup.
pub const PGDUMP_FILE: &str = "passerelle.pgdump";
/// Secret key inside a backup.
pub const KEY_FILE: &str = "node-key.secret";
/// Configuration file inside a backup.
pub const CONFIG_FILE: &str = "passerelle.toml";

/// The manifest of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Version of the `passerelle` that wrote the backup.
    pub passerelle_version: String,
    /// Protocol version of that binary.
    pub protocol_version: String,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created_at: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    /// Highest migration applied to the backed-up database.
    pub schema_version: i64,
    /// Every migration applied to it.
    pub migrations: Vec<i64>,
    /// The node's public base URL when the backup was made.
    pub base_url: String,
    /// The collectivité, when set.
    pub identity: Option<IdentitySummary>,
    /// Public keys listed in the database.
    pub keys: Vec<KeySummary>,
    /// Rows per table in the snapshot.
    pub tables: BTreeMap<String, i64>,
    /// Every other file of the backup.
    pub files: Vec<FileEntry>,
}

/// Identity of the node in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentitySummary {
    /// Name of the collectivité.
    pub name: String,
    /// SIREN.
    pub siren: String,
}

/// A public key in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeySummary {
    /// Key id (fragment).
    pub key_id: String,
    /// Multikey.
    pub public_key_multibase: String,
    /// Whether it was the current key.
    pub current: bool,
}

/// A file of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// File name inside the backup.
    pub name: String,
    /// `database`, `key` or `config`.
    pub role: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

fn fail(code: u8, e: anyhow::Error) -> Failure {
    Failure::new(code, e)
}

fn io_fail(context: String) -> impl FnOnce(std::io::Error) -> Failure {
    move |e| fail(exit::FAILURE, anyhow::Error::new(e).context(context))
}

/// SHA-256 and size of a file.
fn digest_file(path: &Path) -> Result<(String, u64), Failure> {
    let mut file =
        std::fs::File::open(path).map_err(io_fail(format!("cannot read {}", path.display())))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(io_fail(format!("cannot read {}", path.display())))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Creates a directory with mode 0700 (and its parents).
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(path)
}

fn set_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Copies `from` to `to` (which must not exist) with mode 0600.
fn copy_private(from: &Path, to: &Path) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut src =
        std::fs::File::open(from).map_err(io_fail(format!("cannot read {}", from.display())))?;
    let mut dst = options
        .open(to)
        .map_err(io_fail(format!("cannot create {}", to.display())))?;
    std::io::copy(&mut src, &mut dst).map_err(io_fail(format!("cannot write {}", to.display())))?;
    dst.sync_all()
        .map_err(io_fail(format!("cannot write {}", to.display())))?;
    Ok(())
}

fn is_tar(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tar")
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Runs a libpq tool (`pg_dump`, `pg_restore`) with the password in `PGPASSWORD`.
fn run_pg_tool(tool: &Path, args: &[String], password: Option<&str>) -> Result<(), Failure> {
    let mut cmd = Command::new(tool);
    cmd.args(args);
    if let Some(pw) = password {
        cmd.env("PGPASSWORD", pw);
    }
    let out = cmd
        .output()
        .map_err(io_fail(format!("cannot run {}", tool.display())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(
            exit::FAILURE,
            anyhow!(
                "{} failed ({}): {}",
                tool.display(),
                out.status,
                stderr.trim().replace('\n', " | ")
            ),
        ));
    }
    Ok(())
}

async fn connect(config: &Config) -> Result<Store, Failure> {
    let url = config.database_url();
    Store::connect(&url, 2).await.map_err(|e| {
        fail(
            exit::DATABASE,
            anyhow::Error::new(e).context(format!(
                "cannot open the database {} (database.url)",
                redact_url(&url)
            )),
        )
    })
}

fn db_fail(e: crate::store::StoreError) -> Failure {
    fail(exit::DATABASE, anyhow::Error::new(e))
}

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupSummary {
    /// The directory or archive written.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// `passerelle backup --out OUT`: writes a consistent backup of the node while it runs.
///
/// # Errors
/// A [`Failure`]: `OUT` exists and is not an empty directory, the database is
/// unreachable (exit 4), `pg_dump` is missing or fails, the key file is missing or does not
/// match the database.
pub async fn backup(
    config: &Config,
    config_file: Option<&Path>,
    out: &Path,
) -> Result<BackupSummary, Failure> {
    let tar = is_tar(out);
    if tar {
        if out.exists() {
            return Err(fail(
                exit::FAILURE,
                anyhow!(
                    "{} exists; backups never overwrite a file, choose a new name",
                    out.display()
                ),
            ));
        }
    } else if out.exists() {
        let empty = std::fs::read_dir(out)
            .map_err(io_fail(format!("cannot read {}", out.display())))?
            .next()
            .is_none();
        if !empty {
            return Err(fail(
                exit::FAILURE,
                anyhow!(
                    "{} is not an empty directory; backups never overwrite files, choose a new directory",
                    out.display()
                ),
            ));
        }
    }
    let staging = if tar {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "backup.tar".to_owned());
        out.with_file_name(format!(".{name}.partial-{}", uuid::Uuid::now_v7().simple()))
    } else {
        out.to_path_buf()
    };
    let created_staging = !staging.exists();
    create_private_dir(&staging)
        .map_err(io_fail(format!("cannot create {}", staging.display())))?;
    let result = write_backup(config, config_file, &staging).await;
    let result = match result {
        Ok(manifest) if tar => write_tar(&staging, out, &manifest).map(|()| manifest),
        other => other,
    };
    if tar || (result.is_err() && created_staging) {
        let _ = std::fs::remove_dir_all(&staging);
    } else if result.is_err() {
        // The directory existed (empty) before: leave it empty again.
        if let Ok(entries) = std::fs::read_dir(&staging) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let manifest = result?;
    Ok(BackupSummary {
        path: out.to_path_buf(),
        manifest,
    })
}

async fn write_backup(
    config: &Config,
    config_file: Option<&Path>,
    dir: &Path,
) -> Result<Manifest, Failure> {
    let store = connect(config).await?;
    let result = write_backup_with(&store, config, config_file, dir).await;
    store.close().await;
    result
}

async fn write_backup_with(
    store: &Store,
    config: &Config,
    config_file: Option<&Path>,
    dir: &Path,
) -> Result<Manifest, Failure> {
    if !store.has_tables().await.map_err(db_fail)? {
        return Err(fail(
            exit::DATABASE,
            anyhow!(
                "the database has no tables: nothing to back up (is database.url the node's database?)"
            ),
        ));
    }
    let migrations = store.applied_migrations().await.map_err(db_fail)?;
    let known = store.known_migrations();
    if let Some(v) = migrations.iter().find(|v| !known.contains(v)) {
        return Err(fail(
            exit::DATABASE,
            anyhow!(
                "the database has migration {v}, unknown to this binary; back it up with the newer `passerelle` that migrated it"
            ),
        ));
    }
    let tables = store.tables().await.map_err(db_fail)?;
    let mut files = Vec::new();
    let created_at = now_rfc3339();
    let counts = match store.kind() {
        DatabaseKind::Sqlite => {
            let dest = dir.join(SQLITE_FILE);
            store.sqlite_snapshot(&dest).await.map_err(db_fail)?;
            set_private(&dest).map_err(io_fail(format!("cannot protect {}", dest.display())))?;
            let snapshot = Store::open_sqlite_file_readonly(&dest)
                .await
                .map_err(db_fail)?;
            let counts = snapshot.row_counts().await.map_err(db_fail);
            snapshot.close().await;
            files.push((SQLITE_FILE, "database"));
            counts?
        }
        DatabaseKind::Postgres => {
            let Some(pg_dump) = find_on_path("pg_dump") else {
                return Err(fail(
                    exit::FAILURE,
                    anyhow!(
                        "pg_dump is not on PATH: install the PostgreSQL client tools (Debian: postgresql-client, of the server's major version or newer) and run the backup again, or back up with your own `pg_dump --format=custom` plus the key file {} (docs/operations/backup-restore.md)",
                        config.key_file().display()
                    ),
                ));
            };
            let mut snapshot = store.pg_snapshot().await.map_err(db_fail)?;
            let counts = snapshot.row_counts(&tables).await.map_err(db_fail)?;
            let dest = dir.join(PGDUMP_FILE);
            let (url, password) = libpq_target(&config.database_url());
            let mut args = vec![
                "--format=custom".to_owned(),
                format!("--snapshot={}", snapshot.name()),
                format!("--file={}", dest.display()),
            ];
            if snapshot.schema() != "public" {
                args.push(format!("--schema={}", snapshot.schema()));
            }
            args.push(format!("--dbname={url}"));
            let dumped = run_pg_tool(&pg_dump, &args, password.as_deref());
            snapshot.finish().await.map_err(db_fail)?;
            dumped?;
            set_private(&dest).map_err(io_fail(format!("cannot protect {}", dest.display())))?;
            files.push((PGDUMP_FILE, "database"));
            counts
        }
    };
    // The key file: the database only lists public keys.
    let key_path = config.key_file();
    if !key_path.exists() {
        return Err(fail(
            exit::FAILURE,
            anyhow!(
                "no key file at {} (data.key_file): a backup without the secret key cannot restore the node's identity",
                key_path.display()
            ),
        ));
    }
    let keys = store.keys().await.map_err(db_fail)?;
    check_key_matches(&key_path, &keys)?;
    copy_private(&key_path, &dir.join(KEY_FILE))?;
    files.push((KEY_FILE, "key"));
    if let Some(cf) = config_file {
        copy_private(cf, &dir.join(CONFIG_FILE))?;
        files.push((CONFIG_FILE, "config"));
    }
    let mut entries = Vec::new();
    for (name, role) in files {
        let (sha256, bytes) = digest_file(&dir.join(name))?;
        entries.push(FileEntry {
            name: name.to_owned(),
            role: role.to_owned(),
            bytes,
            sha256,
        });
    }
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        passerelle_version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: passerelle_protocol::PROTOCOL_VERSION.to_owned(),
        created_at,
        database: match store.kind() {
            DatabaseKind::Sqlite => "sqlite",
            DatabaseKind::Postgres => "postgres",
        }
        .to_owned(),
        schema_version: migrations.iter().copied().max().unwrap_or(0),
        migrations,
        base_url: config.base_url(),
        identity: store.identity().await.ok().map(|i| IdentitySummary {
            name: i.name,
            siren: i.siren,
        }),
        keys: keys
            .iter()
            .map(|k| KeySummary {
                key_id: k.key_id.clone(),
                public_key_multibase: k.public_key_multibase.clone(),
                current: k.current,
            })
            .collect(),
        tables: counts,
        files: entries,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| fail(exit::FAILURE, anyhow::Error::new(e)))?;
    let mpath = dir.join(MANIFEST);
    write_private(&mpath, text.as_bytes())?;
    Ok(manifest)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .map_err(io_fail(format!("cannot create {}", path.display())))?;
    f.write_all(bytes)
        .and_then(|()| f.write_all(b"\n"))
        .and_then(|()| f.sync_all())
        .map_err(io_fail(format!("cannot write {}", path.display())))
}

/// The key file's public key must be the database's current key.
fn check_key_matches(path: &Path, keys: &[crate::store::NodeKey]) -> Result<(), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(io_fail(format!("cannot read {}", path.display())))?;
    let key =
        passerelle_protocol::keys::SigningKey::from_multikey_secret(text.trim()).map_err(|e| {
            fail(
                exit::FAILURE,
                anyhow!(
                    "key file {} does not hold an Ed25519 Multikey secret: {e}",
                    path.display()
                ),
            )
        })?;
    let public = key.public_key().to_multikey();
    match keys.iter().find(|k| k.current) {
        Some(current) if current.public_key_multibase != public => Err(fail(
            exit::FAILURE,
            anyhow!(
                "key file {} holds key {public}, but the database's current key is {}; a backup of the two would not restore a working node",
                path.display(),
                current.public_key_multibase
            ),
        )),
        _ => Ok(()),
    }
}

fn write_tar(dir: &Path, out: &Path, manifest: &Manifest) -> Result<(), Failure> {
    let partial = out.with_extension("tar.partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options
        .open(&partial)
        .map_err(io_fail(format!("cannot create {}", partial.display())))?;
    let mut builder = tar::Builder::new(file);
    let mtime = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    let names = std::iter::once(MANIFEST).chain(manifest.files.iter().map(|f| f.name.as_str()));
    let result = (|| -> std::io::Result<std::fs::File> {
        for name in names {
            let path = dir.join(name);
            let mut src = std::fs::File::open(&path)?;
            let mut header = tar::Header::new_ustar();
            header.set_size(src.metadata()?.len());
            header.set_mode(0o600);
            header.set_mtime(mtime);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, name, &mut src)?;
        }
        let file = builder.into_inner()?;
        file.sync_all()?;
        Ok(file)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(io_fail(format!("cannot write {}", out.display()))(e));
    }
    std::fs::rename(&partial, out).map_err(io_fail(format!("cannot write {}", out.display())))
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreSummary {
    /// The manifest of the restored backup.
    pub manifest: Manifest,
    /// Migrations applied after the restore (a backup of an older release).
    pub migrated: usize,
    /// A warning for the operator (different base URL), if any.
    pub warnings: Vec<String>,
}

/// A backup opened for reading: its directory (extracted from the archive if needed).
struct Opened {
    dir: PathBuf,
    /// Extraction directory to remove afterwards.
    temporary: Option<PathBuf>,
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(t) = &self.temporary {
            let _ = std::fs::remove_dir_all(t);
        }
    }
}

fn open_backup(from: &Path, scratch_parent: &Path) -> Result<Opened, Failure> {
    if from.is_dir() {
        return Ok(Opened {
            dir: from.to_path_buf(),
            temporary: None,
        });
    }
    let file = std::fs::File::open(from).map_err(io_fail(format!(
        "cannot read the backup {}",
        from.display()
    )))?;
    let scratch = scratch_parent.join(format!(
        ".passerelle-restore-{}",
        uuid::Uuid::now_v7().simple()
    ));
    create_private_dir(&scratch)
        .map_err(io_fail(format!("cannot create {}", scratch.display())))?;
    let opened = Opened {
        dir: scratch.clone(),
        temporary: Some(scratch.clone()),
    };
    let allowed = [MANIFEST, SQLITE_FILE, PGDUMP_FILE, KEY_FILE, CONFIG_FILE];
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries()
        .map_err(io_fail(format!("{} is not a tar archive", from.display())))?;
    for entry in entries {
        let mut entry = entry.map_err(io_fail(format!(
            "{} is not a readable tar archive",
            from.display()
        )))?;
        let name = entry
            .path()
            .map_err(io_fail(format!("{}: bad entry name", from.display())))?
            .to_string_lossy()
            .into_owned();
        // Only the files a backup holds, by bare name: nothing can land outside `scratch`.
        let Some(name) = allowed.iter().find(|a| **a == name) else {
            return Err(fail(
                exit::FAILURE,
                anyhow!(
                    "{}: unexpected entry {name:?}; this is not a Passerelle backup",
                    from.display()
                ),
            ));
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(fail(
                exit::FAILURE,
                anyhow!("{}: entry {name} is not a regular file", from.display()),
            ));
        }
        let dest = scratch.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut out = options.open(&dest).map_err(io_fail(format!(
            "{}: duplicate entry {name}",
            from.display()
        )))?;
        std::io::copy(&mut entry, &mut out).map_err(io_fail(format!(
            "cannot extract {name} from {}",
            from.display()
        )))?;
    }
    Ok(opened)
}

/// Reads the manifest and checks every file against it.
fn read_and_verify(dir: &Path) -> Result<Manifest, Failure> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(io_fail(format!(
        "cannot read {}; is this a backup made by `passerelle backup`?",
        mpath.display()
    )))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        fail(
            exit::FAILURE,
            anyhow!("{} is not a valid backup manifest: {e}", mpath.display()),
        )
    })?;
    if manifest.format != FORMAT {
        return Err(fail(
            exit::FAILURE,
            anyhow!(
                "backup format {:?} is not {FORMAT:?}; restore it with the passerelle version that made it ({})",
                manifest.format,
                manifest.passerelle_version
            ),
        ));
    }
    for f in &manifest.files {
        if f.name.contains('/') || f.name.contains("..") {
            return Err(fail(
                exit::FAILURE,
                anyhow!("manifest names a file outside the backup: {:?}", f.name),
            ));
        }
        let path = dir.join(&f.name);
        if !path.exists() {
            return Err(fail(
                exit::FAILURE,
                anyhow!("the backup lacks {} listed in its manifest", f.name),
            ));
        }
        let (sha, bytes) = digest_file(&path)?;
        if sha != f.sha256 || bytes != f.bytes {
            return Err(fail(
                exit::FAILURE,
                anyhow!(
                    "checksum mismatch for {}: the manifest says sha256 {} ({} bytes), the file has {sha} ({bytes} bytes); the backup is damaged",
                    f.name,
                    f.sha256,
                    f.bytes
                ),
            ));
        }
    }
    for role in ["database", "key"] {
        if !manifest.files.iter().any(|f| f.role == role) {
            return Err(fail(
                exit::FAILURE,
                anyhow!("the backup has no {role} file"),
            ));
        }
    }
    Ok(manifest)
}

fn dir_is_empty(dir: &Path, ignore: &[&Path]) -> bool {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .all(|e| ignore.iter().any(|i| *i == e.path().as_path())),
        Err(_) => true,
    }
}

/// `passerelle restore FROM`: restores a backup into the configured data directory and
/// database, verifies it, applies newer migrations and checks that the node can start.
///
/// # Errors
/// A [`Failure`]: damaged backup (checksums), a non-empty target without `force`, a
/// backup of the other database engine, a backup from a newer release, tool failures.
pub async fn restore(config: &Config, from: &Path, force: bool) -> Result<RestoreSummary, Failure> {
    let data_dir = &config.data.dir;
    // An archive is extracted inside the data directory, the one place the node's user is
    // sure to be allowed to write (the systemd unit's StateDirectory); the emptiness check
    // below ignores it, and it is removed before the restored database is opened.
    create_private_dir(data_dir).map_err(io_fail(format!(
        "cannot create the data directory {}",
        data_dir.display()
    )))?;
    let opened = open_backup(from, data_dir)?;
    let manifest = read_and_verify(&opened.dir)?;
    let url = config.database_url();
    let kind =
        DatabaseKind::from_url(&url).map_err(|e| fail(exit::CONFIG, anyhow::Error::new(e)))?;
    let wanted = match kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    };
    if manifest.database != wanted {
        return Err(fail(
            exit::FAILURE,
            anyhow!(
                "this is a {} backup and database.url is {wanted}; restore it on {} first, then move with `passerelle migrate-store --to …`",
                manifest.database,
                manifest.database
            ),
        ));
    }
    let known = crate::store::known_migration_versions();
    if let Some(v) = manifest.migrations.iter().find(|v| !known.contains(v)) {
        return Err(fail(
            exit::DATABASE,
            anyhow!(
                "the backup's database has migration {v}, unknown to this binary ({}); restore it with passerelle {} or newer",
                env!("CARGO_PKG_VERSION"),
                manifest.passerelle_version
            ),
        ));
    }
    // Never overwrite a node by accident.
    let key_path = config.key_file();
    let opened_dir = opened.dir.clone();
    if !force {
        if !dir_is_empty(data_dir, &[opened_dir.as_path()]) {
            return Err(fail(
                exit::FAILURE,
                anyhow!(
                    "the data directory {} is not empty; restore into an empty one, or add --force to replace what is there",
                    data_dir.display()
                ),
            ));
        }
        if key_path.exists() {
            return Err(fail(
                exit::FAILURE,
                anyhow!(
                    "the key file {} exists; add --force to replace it",
                    key_path.display()
                ),
            ));
        }
    }
    create_private_dir(data_dir).map_err(io_fail(format!(
        "cannot create the data directory {}",
        data_dir.display()
    )))?;
    let db_entry = manifest
        .files
        .iter()
        .find(|f| f.role == "database")
        .map(|f| opened.dir.join(&f.name))
        .ok_or_else(|| fail(exit::FAILURE, anyhow!("the backup has no database file")))?;
    match kind {
        DatabaseKind::Sqlite => {
            let path = sqlite_path(&url).ok_or_else(|| {
                fail(
                    exit::CONFIG,
                    anyhow!("database.url {url:?} names no SQLite file to restore into"),
                )
            })?;
            let existing = path.exists();
            if existing && !force {
                return Err(fail(
                    exit::FAILURE,
                    anyhow!(
                        "the database file {} exists; add --force to replace it",
                        path.display()
                    ),
                ));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_private_dir(parent)
                    .map_err(io_fail(format!("cannot create {}", parent.display())))?;
            }
            let tmp = path.with_extension("db.restoring");
            let _ = std::fs::remove_file(&tmp);
            copy_private(&db_entry, &tmp)?;
            for suffix in ["-wal", "-shm", "-journal"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
            std::fs::rename(&tmp, &path)
                .map_err(io_fail(format!("cannot write {}", path.display())))?;
        }
        DatabaseKind::Postgres => {
            let store = connect(config).await?;
            let non_empty = !store.is_empty().await.map_err(db_fail)?;
            store.close().await;
            if non_empty && !force {
                return Err(fail(
                    exit::FAILURE,
                    anyhow!(
                        "the database {} holds data; restore into an empty database, or add --force to replace it",
                        redact_url(&url)
                    ),
                ));
            }
            let Some(pg_restore) = find_on_path("pg_restore") else {
                return Err(fail(
                    exit::FAILURE,
                    anyhow!(
                        "pg_restore is not on PATH: install the PostgreSQL client tools (Debian: postgresql-client) and run the restore again"
                    ),
                ));
            };
            let (target, password) = libpq_target(&url);
            let args = vec![
                "--clean".to_owned(),
                "--if-exists".to_owned(),
                "--no-owner".to_owned(),
                "--no-privileges".to_owned(),
                "--single-transaction".to_owned(),
                format!("--dbname={target}"),
                db_entry.display().to_string(),
            ];
            run_pg_tool(&pg_restore, &args, password.as_deref())?;
        }
    }
    // The key file, mode 0600, replaced atomically.
    let key_src = opened.dir.join(KEY_FILE);
    if let Some(parent) = key_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)
            .map_err(io_fail(format!("cannot create {}", parent.display())))?;
    }
    let key_tmp = key_path.with_extension("restoring");
    let _ = std::fs::remove_file(&key_tmp);
    copy_private(&key_src, &key_tmp)?;
    std::fs::rename(&key_tmp, &key_path)
        .map_err(io_fail(format!("cannot write {}", key_path.display())))?;
    drop(opened);

    // Verify what was restored, then bring the schema up to date and check the key.
    let store = connect(config).await?;
    let result = verify_restored(&store, config, &manifest).await;
    store.close().await;
    let migrated = result?;
    let mut warnings = Vec::new();
    if config.base_url() != manifest.base_url {
        warnings.push(format!(
            "the backup was made with server.base_url {} and this configuration uses {}; partners know the node by the first one: set server.base_url to it unless you are moving the node on purpose (docs/tls-and-domain.md)",
            manifest.base_url,
            config.base_url()
        ));
    }
    Ok(RestoreSummary {
        manifest,
        migrated,
        warnings,
    })
}

async fn verify_restored(
    store: &Store,
    config: &Config,
    manifest: &Manifest,
) -> Result<usize, Failure> {
    let counts = store.row_counts().await.map_err(db_fail)?;
    for (table, n) in &manifest.tables {
        let got = counts.get(table).copied();
        if got != Some(*n) {
            return Err(fail(
                exit::FAILURE,
                anyhow!(
                    "after the restore, table {table} has {} rows where the backup had {n}",
                    got.map_or_else(|| "no table and no".to_owned(), |g| g.to_string())
                ),
            ));
        }
    }
    let applied = store.applied_migrations().await.map_err(db_fail)?;
    if applied != manifest.migrations {
        return Err(fail(
            exit::FAILURE,
            anyhow!(
                "after the restore, migrations {applied:?} are applied where the backup had {:?}",
                manifest.migrations
            ),
        ));
    }
    let before = applied.len();
    store.migrate().await.map_err(db_fail)?;
    let after = store.applied_migrations().await.map_err(db_fail)?.len();
    crate::keys::load_and_register(store, &config.key_file())
        .await
        .map_err(|e| {
            fail(
                exit::FAILURE,
                anyhow::Error::new(e)
                    .context("the restored key file does not match the restored database"),
            )
        })?;
    Ok(after - before)
}

/// Reads a backup's manifest after verifying its checksums (for tests and inspection).
///
/// # Errors
/// As [`restore`] for a damaged or foreign backup.
pub fn inspect(from: &Path) -> Result<Manifest, Failure> {
    let scratch = std::env::temp_dir();
    let opened = open_backup(from, &scratch)?;
    read_and_verify(&opened.dir)
}

/// Prints what a backup wrote.
pub fn print_backup(summary: &BackupSummary) {
    let m = &summary.manifest;
    let rows: i64 = m.tables.values().sum();
    println!(
        "backup written to {} ({} database, schema version {}, {} tables, {rows} rows, key file included)",
        summary.path.display(),
        m.database,
        m.schema_version,
        m.tables.len()
    );
    for f in &m.files {
        println!("  {}\t{} bytes\tsha256 {}", f.name, f.bytes, f.sha256);
    }
    println!(
        "it holds the node's secret key: store it encrypted, readable by as few people as possible"
    );
}

/// Prints what a restore did.
pub fn print_restore(summary: &RestoreSummary) {
    let m = &summary.manifest;
    println!(
        "restored the backup of {} taken {} (passerelle {}, {} tables, checksums and row counts verified)",
        m.identity.as_ref().map_or_else(
            || "a node without identity".to_owned(),
            |i| format!("{} (SIREN {})", i.name, i.siren)
        ),
        m.created_at,
        m.passerelle_version,
        m.tables.len()
    );
    if summary.migrated > 0 {
        println!("applied {} newer migration(s)", summary.migrated);
    }
    println!(
        "the key file matches the database's current key; start the node with `passerelle serve`"
    );
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
}
