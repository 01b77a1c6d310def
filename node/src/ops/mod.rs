//! Operations commands that act on a whole node: `passerelle backup`, `passerelle restore`
//! ([`backup`]) and `passerelle migrate-store` ([`migrate_store`]).
//!
//! They take the configuration and return a [`Failure`](crate::cli::Failure) with the exit
//! code to use; the SQL they need lives in `store::copy`, and external tools (`pg_dump`,
//! `pg_restore`) are found on `PATH` and given the password through the environment,
//! never on their command line.

pub mod backup;
pub mod migrate_store;

use std::path::{Path, PathBuf};

/// Finds an executable on `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// The file of a `sqlite:` URL (`sqlite://PATH`, `sqlite:PATH`, options after `?` ignored).
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// A PostgreSQL URL split for libpq tools: the URL without its password, and the password
/// (to pass as `PGPASSWORD`, so that `ps` does not show it).
pub(crate) fn libpq_target(url: &str) -> (String, Option<String>) {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let password = u.password().map(percent_decode);
            let _ = u.set_password(None);
            (u.to_string(), password)
        }
        Err(_) => (url.to_owned(), None),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| hex(*c)),
                bytes.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.extend(u8::try_from(h * 16 + l).ok());
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite://data/passerelle.db"),
            Some(PathBuf::from("data/passerelle.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/p.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/p.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn passwords_leave_the_url() {
        let (url, pw) = libpq_target("postgres://u:p%40ss@db:5432/x?options=-c%20search_path%3Dt");
        assert_eq!(url, "postgres://u@db:5432/x?options=-c%20search_path%3Dt");
        assert_eq!(pw.as_deref(), Some("p@ss"));
        let (url, pw) = libpq_target("postgres://u@db/x");
        assert_eq!(url, "postgres://u@db/x");
        assert_eq!(pw, None);
    }
}
