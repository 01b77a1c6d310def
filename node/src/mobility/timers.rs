//! What dates bring, checked periodically by every process: the dated transitions of the
//! MAD requests this node created (start, term, renewal reminder, end of notice), the
//! expiry of postings past their application deadline, and (in `mad::tick`) the
//! retention of the agents' identities at the host.
//!
//! Every effect is written on the version it was computed from, so several processes on
//! one PostgreSQL database may run this loop at once: one wins, the others find a newer
//! version and do nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::federation::{Federation, sleep_or_stop};

/// How often the timers run: five polls of the federation workers (5 s by default).
pub fn interval(fed: &Federation) -> Duration {
    Duration::from_millis(
        fed.config()
            .poll_interval_ms
            .saturating_mul(5)
            .clamp(250, 60_000),
    )
}

/// One pass of every timer on `today`.
pub async fn tick(fed: &Federation, today: time::Date) {
    match super::mad::tick(fed, today).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(transitions = n, "dated MAD transitions recorded"),
        Err(e) => tracing::warn!(error = %e, "cannot run the MAD timers"),
    }
    match expire_postings(fed, today).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(postings = n, "postings expired at their deadline"),
        Err(e) => tracing::warn!(error = %e, "cannot expire postings"),
    }
}

/// The timer loop of one process; stops at shutdown.
pub async fn run(fed: Arc<Federation>, mut shutdown: watch::Receiver<bool>) {
    let every = interval(&fed);
    loop {
        tick(&fed, super::today()).await;
        if sleep_or_stop(every, &mut shutdown).await {
            return;
        }
    }
}

/// Expires the published postings whose application deadline passed (the day after
/// `applyUntil`): each gets the status `expired` in a new version, sent to its audience
/// as an `Update`, and written only on the version it was read at, so that several
/// processes never expire one posting twice. Returns how many expired.
///
/// # Errors
/// A store failure listing the postings.
pub async fn expire_postings(
    fed: &Federation,
    today: time::Date,
) -> Result<usize, crate::store::StoreError> {
    use passerelle_protocol::vocab::{ActivityType, Message, ObjectRef, Posting, Validate as _};
    use serde_json::{Value, json};

    use crate::store::{AuditRecord, PostingStatus, StoreError};

    let mut expired = 0;
    for p in fed.store().postings(Some(PostingStatus::Published)).await? {
        let Ok(wire) = serde_json::from_value::<Posting>(p.document.clone()) else {
            continue;
        };
        if !crate::domain::deadlines::posting_is_expired(&wire, today) {
            continue;
        }
        let mut doc = p.document.clone();
        if let Value::Object(m) = &mut doc {
            m.remove("proof");
            m.insert("status".into(), json!("expired"));
            m.insert("version".into(), json!(p.version + 1));
            m.insert(
                "updated".into(),
                json!(
                    crate::federation::now_seconds()
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
            );
        }
        let valid = serde_json::from_value::<Posting>(doc.clone())
            .map_err(|e| e.to_string())
            .and_then(|x| x.validate(fed.validation()).map_err(|e| e.to_string()));
        if let Err(e) = valid {
            tracing::warn!(posting = %p.id, error = %e, "cannot expire a posting: its new version is invalid");
            continue;
        }
        let signed = match fed.sign(doc) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(posting = %p.id, error = %e, "cannot sign an expired posting");
                continue;
            }
        };
        let internal = signed.get("visibility").and_then(Value::as_str) == Some("internal");
        let act = if internal {
            None
        } else {
            let list = |k: &str| -> Vec<String> {
                signed
                    .get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let object = match Message::from_value(signed.clone()) {
                Ok(m) => ObjectRef::Embedded(Box::new(m)),
                Err(e) => {
                    tracing::warn!(posting = %p.id, error = %e, "cannot expire a posting");
                    continue;
                }
            };
            match fed.activity(ActivityType::Update, object, list("to"), list("cc")) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(posting = %p.id, error = %e, "cannot expire a posting");
                    continue;
                }
            }
        };
        let audit = AuditRecord::new("system", "posting.expire", format!("posting:{}", p.id));
        match fed
            .store()
            .update_posting(
                p.id,
                p.version,
                &signed,
                PostingStatus::Expired,
                act.as_ref(),
                &audit,
            )
            .await
        {
            Ok(_) => expired += 1,
            Err(StoreError::Conflict { .. } | StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(expired)
}
