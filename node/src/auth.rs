//! Authentication of HR users and API clients: argon2id passwords, hashed bearer tokens,
//! roles. No HTTP here: `http::api` extracts the credentials and calls these functions.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::store::{ApiToken, AuditRecord, NewToken, Role, Store, StoreError};

/// Prefix of every token secret, so leaked tokens are easy to recognise and scan for.
pub const TOKEN_PREFIX: &str = "psl_";

/// Lifetime of a session token obtained by logging in.
pub const SESSION_LIFETIME: Duration = Duration::hours(12);

/// Shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Authentication errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Unknown user, wrong password, or disabled account (not told apart, on purpose).
    #[error("identifiant ou mot de passe incorrect")]
    BadCredentials,
    /// The token is unknown, revoked or expired.
    #[error(
        "jeton d'accès inconnu, révoqué ou expiré ; demandez-en un nouveau à un administrateur"
    )]
    BadToken,
    /// The caller's role is too low for the action.
    #[error("cette action demande le rôle « {needed} » ; votre rôle est « {actual} »")]
    Forbidden {
        /// Role required.
        needed: Role,
        /// Role held.
        actual: Role,
    },
    /// A password is too weak to be accepted.
    #[error("le mot de passe doit compter au moins {MIN_PASSWORD_LEN} caractères")]
    WeakPassword,
    /// Hashing failed (should not happen).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who is making a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Audit name: `account:NAME` or `token:ID`.
    pub actor: String,
    /// Role granted.
    pub role: Role,
}

impl Principal {
    /// Succeeds when the principal holds at least `needed`.
    ///
    /// # Errors
    /// [`AuthError::Forbidden`] otherwise.
    pub fn require(&self, needed: Role) -> Result<(), AuthError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                needed,
                actual: self.role,
            })
        }
    }

    /// An audit record for an action of this principal.
    pub fn audit(&self, action: &str, target: impl Into<String>) -> AuditRecord {
        AuditRecord::new(self.actor.clone(), action, target)
    }
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes).
///
/// # Errors
/// [`AuthError::WeakPassword`] for a short password.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AuthError::WeakPassword);
    }
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random token secret (256 bits), to show once.
pub fn new_token_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The stored form of a token secret: hex SHA-256. Secrets are random and 256 bits long,
/// so a fast hash is enough (no dictionary to guess from).
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates an API token; returns the stored token and its secret (shown once).
///
/// # Errors
/// [`AuthError::Store`] when the write fails.
pub async fn create_token(
    store: &Store,
    name: &str,
    role: Role,
    expires_at: Option<OffsetDateTime>,
    audit_actor: &str,
) -> Result<(ApiToken, String), AuthError> {
    let secret = new_token_secret();
    let new = NewToken {
        name: name.to_owned(),
        role,
        token_hash: token_hash(&secret),
        account_id: None,
        expires_at,
    };
    let mut audit = AuditRecord::new(audit_actor, "token.create", format!("token:{name}"));
    audit.details = serde_json::json!({ "name": name, "role": role.as_str() });
    let token = store.create_token(&new, &audit).await?;
    Ok((token, secret))
}

/// Creates the first admin token if the node has no credential yet; returns its secret.
///
/// # Errors
/// [`AuthError::Store`] when the write fails.
pub async fn bootstrap_token(store: &Store) -> Result<Option<String>, AuthError> {
    let secret = new_token_secret();
    let new = NewToken {
        name: crate::store::BOOTSTRAP_TOKEN_NAME.to_owned(),
        role: Role::Admin,
        token_hash: token_hash(&secret),
        account_id: None,
        expires_at: Some(OffsetDateTime::now_utc() + Duration::days(7)),
    };
    let audit = AuditRecord::new("system", "token.bootstrap", "token:bootstrap");
    Ok(store
        .create_bootstrap_token(&new, &audit)
        .await?
        .map(|_| secret))
}

/// Authenticates a bearer token secret.
///
/// # Errors
/// [`AuthError::BadToken`] for an unknown, revoked or expired token.
pub async fn authenticate_token(store: &Store, secret: &str) -> Result<Principal, AuthError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Err(AuthError::BadToken);
    }
    let token = match store.token_by_hash(&token_hash(secret)).await {
        Ok(t) => t,
        Err(StoreError::NotFound { .. }) => return Err(AuthError::BadToken),
        Err(e) => return Err(e.into()),
    };
    if !token.is_active(OffsetDateTime::now_utc()) {
        return Err(AuthError::BadToken);
    }
    store.touch_token(token.id).await?;
    let actor = match token.account_id {
        Some(account) => format!("session:{account}"),
        None => format!("token:{}", token.id),
    };
    Ok(Principal {
        actor,
        role: token.role,
    })
}

/// Checks a username and password and opens a session: returns a session token secret
/// valid for [`SESSION_LIFETIME`], and its expiry.
///
/// # Errors
/// [`AuthError::BadCredentials`] for any mismatch.
pub async fn login(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<(Principal, String, OffsetDateTime), AuthError> {
    let (account, hash) = match store.account_by_username(username).await {
        Ok(found) => found,
        Err(StoreError::NotFound { .. }) => {
            // Spend the same time as a real check so usernames cannot be probed.
            let _ = verify_password(password, DUMMY_HASH);
            return Err(AuthError::BadCredentials);
        }
        Err(e) => return Err(e.into()),
    };
    let pw = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    if !ok || account.disabled {
        return Err(AuthError::BadCredentials);
    }
    let secret = new_token_secret();
    let expires = OffsetDateTime::now_utc() + SESSION_LIFETIME;
    let new = NewToken {
        name: format!("session {}", account.username),
        role: account.role,
        token_hash: token_hash(&secret),
        account_id: Some(account.id),
        expires_at: Some(expires),
    };
    let actor = format!("account:{}", account.username);
    store
        .create_token(
            &new,
            &AuditRecord::new(
                actor.clone(),
                "session.open",
                format!("account:{}", account.id),
            ),
        )
        .await?;
    Ok((
        Principal {
            actor,
            role: account.role,
        },
        secret,
        expires,
    ))
}

/// Creates an HR account with an argon2id password hash.
///
/// # Errors
/// [`AuthError::WeakPassword`], or [`AuthError::Store`] (conflict if the name is taken).
pub async fn create_account(
    store: &Store,
    username: &str,
    password: &str,
    role: Role,
    audit_actor: &str,
) -> Result<Uuid, AuthError> {
    let pw = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))??;
    let mut audit = AuditRecord::new(audit_actor, "account.create", format!("account:{username}"));
    audit.details = serde_json::json!({ "role": role.as_str() });
    Ok(store
        .create_account(username, &hash, role, &audit)
        .await?
        .id)
}

/// A valid argon2id hash of a random password, used to equalize timing.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$W0Tw9Wf2dN1q2a7y7x5Hb1Ff2Q9fM7h1rX0m3mS3c0Q";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterx", &h));
        assert!(matches!(
            hash_password("short"),
            Err(AuthError::WeakPassword)
        ));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token_secret();
        let b = new_token_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() > 40);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn roles_are_ordered() {
        let p = Principal {
            actor: "x".into(),
            role: Role::Rh,
        };
        assert!(p.require(Role::Lecteur).is_ok());
        assert!(p.require(Role::Rh).is_ok());
        assert!(matches!(
            p.require(Role::Admin),
            Err(AuthError::Forbidden { .. })
        ));
    }
}
