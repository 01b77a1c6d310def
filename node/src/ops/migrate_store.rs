//! `passerelle migrate-store --to URL`: copies every table of the configured database into
//! another one (SQLite to PostgreSQL, or back), for an operator who outgrows SQLite.
//!
//! The target is migrated to the same schema, must hold no rows, and receives every row in
//! one transaction ([`Store::copy_into`]); row counts are compared afterwards. The key file
//! does not move: it stays where `data.key_file` says.

use anyhow::anyhow;

use crate::cli::{Failure, exit};
use crate::config::{Config, DatabaseKind, redact_url};
use crate::store::{CopyReport, Store};

/// Copies the configured database into `to`. Returns the rows copied per table.
///
/// # Errors
/// A [`Failure`]: a database unreachable or not migrated (exit 4), the same database on
/// both sides, a target holding rows, a copy that does not verify.
pub async fn migrate_store(config: &Config, to: &str) -> Result<CopyReport, Failure> {
    let from = config.database_url();
    DatabaseKind::from_url(to).map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow::Error::new(e).context("--to must be a postgres:// or sqlite:// URL"),
        )
    })?;
    if from == to {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!(
                "--to names the database in use ({}); give the new database",
                redact_url(to)
            ),
        ));
    }
    let open = |url: String| async move {
        Store::connect(&url, 4).await.map_err(|e| {
            Failure::new(
                exit::DATABASE,
                anyhow::Error::new(e)
                    .context(format!("cannot open the database {}", redact_url(&url))),
            )
        })
    };
    let source = open(from.clone()).await?;
    let applied = source
        .applied_migrations()
        .await
        .map_err(|e| Failure::new(exit::DATABASE, e))?;
    if applied != source.known_migrations() {
        source.close().await;
        return Err(Failure::new(
            exit::DATABASE,
            anyhow!(
                "the source database {} is not up to date ({}/{} migrations applied); run `passerelle migrate` first",
                redact_url(&from),
                applied.len(),
                source.known_migrations().len()
            ),
        ));
    }
    let target = open(to.to_owned()).await?;
    let result = async {
        if !target.is_empty().await.map_err(|e| Failure::new(exit::DATABASE, e))? {
            return Err(Failure::new(
                exit::FAILURE,
                anyhow!(
                    "the target database {} already holds data; give an empty database (migrate-store never merges)",
                    redact_url(to)
                ),
            ));
        }
        target
            .migrate()
            .await
            .map_err(|e| Failure::new(exit::DATABASE, e))?;
        let report = source.copy_into(&target).await.map_err(|e| {
            Failure::new(
                exit::FAILURE,
                anyhow::Error::new(e).context("the copy failed and was rolled back; the target is still empty"),
            )
        })?;
        // The feed index is derived from the postings: rebuilt on the target.
        target.reindex_feed().await.map_err(|e| {
            Failure::new(
                exit::FAILURE,
                anyhow::Error::new(e).context("the data was copied, but the feed index could not be rebuilt; it is rebuilt when the node starts"),
            )
        })?;
        Ok(report)
    }
    .await;
    source.close().await;
    target.close().await;
    result
}

/// Prints what was copied, and what to do next.
pub fn print_report(report: &CopyReport, to: &str) {
    let rows: u64 = report.iter().map(|(_, n)| n).sum();
    for (table, n) in report {
        println!("  {table}\t{n}");
    }
    println!(
        "copied {rows} rows in {} tables to {}; row counts verified",
        report.len(),
        redact_url(to)
    );
    println!(
        "next: set database.url (or database.url_file) to the new database, keep the same key file, and start the node"
    );
}
