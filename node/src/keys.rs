//! The node's signing key: the key file (mode 0600, Multikey secret) and rotation.
//!
//! The secret key lives only in the key file; the database lists every public key with its
//! creation and expiry, so the actor document can publish old keys until they expire and
//! several processes sharing a database agree on which key is current.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use passerelle_protocol::keys::{KeyError, SigningKey};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::store::{AuditRecord, NodeKey, Store, StoreError};

/// Key file errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The key file could not be read or written.
    #[error(
        "key file {path}: {cause}; check the path (data.key_file) and the node user's permissions"
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, not a separate source).
        cause: std::io::Error,
    },
    /// The key file is readable or writable by other users.
    #[error("key file {path} has mode {mode:o}, readable by other users; run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The key file does not hold a Multikey Ed25519 secret.
    #[error(
        "key file {path} does not hold an Ed25519 Multikey secret: {cause}; restore it from a backup"
    )]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message).
        cause: KeyError,
    },
    /// The key file's key is not the database's current key.
    #[error(
        "key file {path} holds key {public}, but the database's current key is {current}; copy the current key file from the node that ran `passerelle keys rotate`, or point data.key_file at it"
    )]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Public key in the file.
        public: String,
        /// Current public key in the database.
        current: String,
    },
    /// Key generation failed.
    #[error("cannot generate a key: {0}")]
    Generate(KeyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The node's current signing key and its id in the actor document.
#[derive(Debug)]
pub struct NodeSigningKey {
    /// The secret key.
    pub key: SigningKey,
    /// Fragment id, e.g. `key-0190…`.
    pub key_id: String,
}

/// A key that signs for the node: the secret and its full id (`{actor}#key-…`), as used in
/// HTTP signatures (`keyid`) and object proofs (`verificationMethod`).
pub struct Signer {
    key: SigningKey,
    key_id: String,
    fragment: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `actor_id` with `key` known as `fragment` in its actor document.
    pub fn new(actor_id: &str, key: SigningKey, fragment: &str) -> Self {
        Self {
            key,
            key_id: format!("{actor_id}#{fragment}"),
            fragment: fragment.to_owned(),
        }
    }

    /// The secret key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The full key id (`{actor}#key-…`).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key's fragment (`key-…`).
    pub fn fragment(&self) -> &str {
        &self.fragment
    }
}

/// The node's current signer, swapped when the database names another current key (a
/// `passerelle keys rotate` run by another process): every process sharing the database
/// moves to the new key without a restart.
pub struct KeyRing {
    current: std::sync::RwLock<std::sync::Arc<Signer>>,
    path: PathBuf,
    actor_id: String,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("current", &self.current().key_id)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// A key ring holding `key`, read from `path`, for `actor_id`.
    pub fn new(actor_id: &str, key: NodeSigningKey, path: &Path) -> Self {
        Self {
            current: std::sync::RwLock::new(std::sync::Arc::new(Signer::new(
                actor_id,
                key.key,
                &key.key_id,
            ))),
            path: path.to_path_buf(),
            actor_id: actor_id.to_owned(),
        }
    }

    /// The current signer.
    pub fn current(&self) -> std::sync::Arc<Signer> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the key file when the database's current key changed. Returns whether
    /// the signer changed.
    ///
    /// # Errors
    /// [`KeyFileError`] when the key file does not hold the database's current key.
    pub async fn refresh(&self, store: &Store) -> Result<bool, KeyFileError> {
        let keys = store.keys().await?;
        let Some(current) = keys.into_iter().find(|k| k.current) else {
            return Ok(false);
        };
        if current.key_id == self.current().fragment {
            return Ok(false);
        }
        let loaded = load_and_register(store, &self.path).await?;
        let signer = std::sync::Arc::new(Signer::new(&self.actor_id, loaded.key, &loaded.key_id));
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = signer;
        Ok(true)
    }
}

/// Reads the key file, creating it with a new key (mode 0600) when it does not exist.
/// Returns the key and whether it was created.
///
/// # Errors
/// [`KeyFileError`] when the file is unreadable, too open, or invalid.
pub fn load_or_create(path: &Path) -> Result<(SigningKey, bool), KeyFileError> {
    let io = |cause| KeyFileError::Io {
        path: path.to_path_buf(),
        cause,
    };
    if path.exists() {
        check_permissions(path)?;
        let text = std::fs::read_to_string(path).map_err(io)?;
        let key = SigningKey::from_multikey_secret(text.trim()).map_err(|cause| {
            KeyFileError::Invalid {
                path: path.to_path_buf(),
                cause,
            }
        })?;
        return Ok((key, false));
    }
    let key = SigningKey::generate().map_err(KeyFileError::Generate)?;
    write_key_file(path, &key)?;
    Ok((key, true))
}

/// Writes `key` to `path` with mode 0600, atomically (temporary file, then rename).
fn write_key_file(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let io = |cause| KeyFileError::Io {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    let secret = key.to_multikey_secret();
    file.write_all(secret.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .map_err(|cause| KeyFileError::Io {
            path: path.to_path_buf(),
            cause,
        })?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), KeyFileError> {
    Ok(())
}

/// A fresh key id.
fn new_key_id() -> String {
    format!("key-{}", Uuid::now_v7().simple())
}

/// Loads the key file and makes sure the database lists it as the current key (it
/// registers it on first start).
///
/// # Errors
/// [`KeyFileError::Mismatch`] when the database's current key is another one.
pub async fn load_and_register(store: &Store, path: &Path) -> Result<NodeSigningKey, KeyFileError> {
    let (key, _) = load_or_create(path)?;
    let public = key.public_key().to_multikey();
    let keys = store.keys().await?;
    if let Some(current) = keys.iter().find(|k| k.current) {
        if current.public_key_multibase == public {
            return Ok(NodeSigningKey {
                key,
                key_id: current.key_id.clone(),
            });
        }
        return Err(KeyFileError::Mismatch {
            path: path.to_path_buf(),
            public,
            current: current.public_key_multibase.clone(),
        });
    }
    let key_id = new_key_id();
    let audit = AuditRecord::new("system", "key.register", format!("key:{key_id}"));
    match store
        .add_current_key(&key_id, &public, OffsetDateTime::now_utc(), &audit)
        .await
    {
        Ok(()) => Ok(NodeSigningKey { key, key_id }),
        // Another process registered a key at the same moment: re-read.
        Err(StoreError::Conflict { .. }) => Box::pin(load_and_register(store, path)).await,
        Err(e) => Err(e.into()),
    }
}

/// Rotates the key: a new key becomes current and is written to the key file; the old
/// key expires at `now + grace` (protocol §3.2: at the rotation, `grace` zero; a grace
/// lets processes that cannot reload at once keep signing requests with it) and stays
/// listed in the actor document for 400 days after that, so proofs made with it before
/// its expiry still verify.
///
/// # Errors
/// Any [`KeyFileError`]; on error the key file keeps the old key unless the database
/// already switched (then the error says so through `Io`).
pub async fn rotate(
    store: &Store,
    path: &Path,
    grace: Duration,
    actor: &str,
) -> Result<NodeKey, KeyFileError> {
    let current = load_and_register(store, path).await?;
    let new = SigningKey::generate().map_err(KeyFileError::Generate)?;
    // Keep the old secret beside the new one until the rotation is committed.
    let backup = path.with_extension("previous");
    std::fs::copy(path, &backup).map_err(|cause| KeyFileError::Io {
        path: backup.clone(),
        cause,
    })?;
    write_key_file(path, &new)?;
    let key_id = new_key_id();
    let mut audit = AuditRecord::new(actor, "key.rotate", format!("key:{key_id}"));
    audit.details = serde_json::json!({ "previous": current.key_id, "previous_expires_in_days": grace.whole_days() });
    if let Err(e) = store
        .add_current_key(
            &key_id,
            &new.public_key().to_multikey(),
            OffsetDateTime::now_utc() + grace,
            &audit,
        )
        .await
    {
        // Put the old key back: the database still lists it as current.
        let _ = std::fs::rename(&backup, path);
        return Err(e.into());
    }
    let _ = std::fs::remove_file(&backup);
    let keys = store.keys().await?;
    keys.into_iter()
        .find(|k| k.key_id == key_id)
        .ok_or_else(|| {
            KeyFileError::Store(StoreError::NotFound {
                what: format!("key {key_id}"),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key.secret");
        let (k1, created) = load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let (k2, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.public_key().to_multikey(), k2.public_key().to_multikey());
    }

    #[cfg(unix)]
    #[test]
    fn open_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.secret");
        load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn garbage_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.secret");
        write_key_file(&path, &SigningKey::from_seed(&[7; 32])).unwrap();
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(
            load_or_create(&path),
            Err(KeyFileError::Invalid { .. })
        ));
    }
}
