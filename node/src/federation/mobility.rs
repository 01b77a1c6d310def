//! Projection of the mobility activities (spec/protocol.md §4.3, §6.3, §15): MAD requests
//! and their transitions, conventions and their signatures, agents' profiles and their
//! withdrawal, immersion swaps, training registrations. [`project`] claims what is about mobility and hands it to the services of
//! `crate::mobility`; everything else goes on to the partnership and posting projection.

use serde_json::Value;

use super::{Federation, FederationError};
use crate::mobility::{exchanges, mad, profiles};
use crate::store::InboxEntry;

/// Projects `entry` when it is about mobility; `None` otherwise.
///
/// # Errors
/// A failure to retry later (store, actor resolution, a convention not arrived yet).
pub async fn project(
    fed: &Federation,
    entry: &InboxEntry,
) -> Result<Option<&'static str>, FederationError> {
    let doc = &entry.document;
    let object = doc.get("object").filter(|o| o.is_object());
    let object_type = object.and_then(|o| o.get("type")).and_then(Value::as_str);
    let none = Value::Null;
    let obj = object.unwrap_or(&none);
    Ok(Some(match (entry.activity_type.as_str(), object_type) {
        ("Offer", Some("MadRequest")) => mad::on_offer(fed, entry, obj).await?,
        ("Create" | "Update", Some("MadRequest")) => mad::on_version(fed, entry, obj).await?,
        ("Create", Some("Convention")) => mad::on_convention(fed, entry, obj).await?,
        ("Add", Some("Convention")) => mad::on_add(fed, entry, obj).await?,
        ("Accept" | "Reject", _) => {
            if let Some(outcome) = mad::on_answer(fed, entry).await? {
                outcome
            } else if let Some(outcome) = exchanges::on_swap_answer(fed, entry).await? {
                outcome
            } else if let Some(outcome) = exchanges::on_registration_answer(fed, entry).await? {
                outcome
            } else {
                return profiles::on_ack(fed, entry).await;
            }
        }
        ("Create" | "Update", Some("Posting")) => {
            return exchanges::on_swap_posting(fed, entry, obj).await;
        }
        ("Add", _) => return exchanges::on_register(fed, entry).await,
        ("Undo", _) => return exchanges::on_undo(fed, entry).await,
        ("Create" | "Update", Some("AgentProfile")) => {
            profiles::on_version(fed, entry, obj).await?
        }
        ("Delete", _) => return profiles::on_delete(fed, entry).await,
        _ => return Ok(None),
    }))
}
