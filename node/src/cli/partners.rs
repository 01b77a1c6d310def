//! `passerelle partners …`: partnerships from the command line, for operators. The
//! commands write to the database (the activity that tells the other node goes to the
//! outbox in the same transaction); a running `serve` process delivers it.

use std::sync::Arc;

use clap::Subcommand;

use super::{CliResult, Failure, exit, open_store};
use crate::config::Config;
use crate::federation::partners::{self, Policy};
use crate::federation::{Federation, FederationError};
use crate::keys::{self, KeyRing};
use crate::store::{BlockKind, PartnershipState};

/// `passerelle partners …`.
#[derive(Debug, Subcommand)]
pub enum PartnersCommand {
    /// List known nodes with the partnership in each direction and delivery health.
    List,
    /// Ask a node to become a partner (sends a `Follow`): an actor URL
    /// (`https://rh.ville.fr/actor`), an address (`https://rh.ville.fr`) or an account
    /// (`drh@rh.ville.fr`).
    Add {
        /// The other node.
        address: String,
    },
    /// Accept a node's pending partnership request.
    Accept {
        /// The node's actor URL.
        actor: String,
    },
    /// Refuse a node's request, or end the partnership in which it follows us.
    Reject {
        /// The node's actor URL.
        actor: String,
    },
    /// Stop following a node (`Undo` of our `Follow`).
    Unfollow {
        /// The node's actor URL.
        actor: String,
    },
    /// Show or set the partnership policy: `open`, `approval` or `closed`.
    Policy {
        /// The new policy (shown when absent).
        policy: Option<String>,
    },
    /// Block a node (its actor URL) or, with --origin, every node of a host.
    Block {
        /// Actor URL, or origin (`https://host`) with --origin.
        target: String,
        /// Block the whole origin.
        #[arg(long)]
        origin: bool,
        /// Why (kept for the operators).
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Lift a block.
    Unblock {
        /// The blocked actor URL or origin.
        target: String,
    },
    /// Pull every followed partner's outbox now (catch-up).
    Sync,
}

fn fed_failure(e: FederationError) -> Failure {
    Failure::new(exit::FAILURE, anyhow::Error::new(e))
}

/// Runs `passerelle partners …`.
///
/// # Errors
/// A [`Failure`] with its exit code.
pub async fn run(config: Config, cmd: PartnersCommand) -> CliResult {
    let store = open_store(&config, true).await?;
    let key = keys::load_and_register(&store, &config.key_file()).await?;
    let ring = Arc::new(KeyRing::new(
        &format!("{}/actor", config.base_url()),
        key,
        &config.key_file(),
    ));
    let fed = Federation::new(&config, store.clone(), ring)?;
    let who = "cli";
    let pending = "the message is in the outbox; the running node (`passerelle serve`) delivers it";
    match cmd {
        PartnersCommand::List => {
            let health = store.delivery_health().await.map_err(anyhow::Error::new)?;
            let partners = store.partners().await.map_err(anyhow::Error::new)?;
            if partners.is_empty() {
                println!("no known node yet; add one with `passerelle partners add https://…`");
            }
            for p in partners {
                let h = health.iter().find(|h| h.inbox_url == p.delivery_inbox());
                let delivery = h.map_or_else(
                    || "no delivery yet".to_owned(),
                    |h| {
                        format!(
                            "{} pending, {} delivered, {} dead{}",
                            h.pending,
                            h.delivered,
                            h.dead,
                            h.last_error
                                .as_deref()
                                .filter(|_| h.consecutive_failures > 0)
                                .map(|e| format!(", failing: {e}"))
                                .unwrap_or_default()
                        )
                    },
                );
                println!(
                    "{}\t{}\twe follow: {}\tit follows us: {}\t{}",
                    p.actor_id,
                    p.name,
                    p.outgoing.as_str(),
                    p.incoming.as_str(),
                    delivery
                );
            }
        }
        PartnersCommand::Add { address } => {
            let p = partners::follow(&fed, &address, who)
                .await
                .map_err(fed_failure)?;
            println!(
                "partnership request sent to {} ({}); {pending}",
                p.actor_id, p.name
            );
        }
        PartnersCommand::Accept { actor } => {
            partners::accept(&fed, &actor, Some(who))
                .await
                .map_err(fed_failure)?;
            println!("{actor} is now a partner; {pending}");
        }
        PartnersCommand::Reject { actor } => {
            partners::reject(&fed, &actor, Some(who))
                .await
                .map_err(fed_failure)?;
            println!("request of {actor} refused; {pending}");
        }
        PartnersCommand::Unfollow { actor } => {
            partners::unfollow(&fed, &actor, who)
                .await
                .map_err(fed_failure)?;
            println!("no longer following {actor}; {pending}");
        }
        PartnersCommand::Policy { policy } => match policy {
            None => {
                let p = partners::policy(&fed).await.map_err(fed_failure)?;
                println!("{}", p.as_str());
            }
            Some(name) => {
                let Some(p) = Policy::parse(&name) else {
                    return Err(Failure::new(
                        exit::USAGE,
                        anyhow::anyhow!("unknown policy {name:?}; use open, approval or closed"),
                    ));
                };
                partners::set_policy(&fed, p, who)
                    .await
                    .map_err(fed_failure)?;
                println!("partnership policy: {}", p.as_str());
            }
        },
        PartnersCommand::Block {
            target,
            origin,
            reason,
        } => {
            let kind = if origin {
                BlockKind::Origin
            } else {
                BlockKind::Actor
            };
            partners::block(&fed, &target, kind, &reason, who)
                .await
                .map_err(fed_failure)?;
            println!("{target} blocked");
        }
        PartnersCommand::Unblock { target } => {
            partners::unblock(&fed, &target, who)
                .await
                .map_err(fed_failure)?;
            println!("{target} unblocked");
        }
        PartnersCommand::Sync => {
            store.request_pull(None).await.map_err(anyhow::Error::new)?;
            let n = store
                .partners()
                .await
                .map_err(anyhow::Error::new)?
                .iter()
                .filter(|p| p.outgoing == PartnershipState::Accepted)
                .count();
            println!("pull requested for {n} followed partner(s); the running node pulls them");
        }
    }
    store.close().await;
    Ok(())
}
