//! Read-only views for the console: delivery health per recipient inbox, and the history
//! of an object (the activities about it sent from the outbox or received in the inbox).

use serde_json::Value;
use sqlx::Row as _;
use time::OffsetDateTime;

use super::{Inner, Result, Store, from_ms, map_err, parse_json, postgres, sqlite};

/// Delivery health of one recipient inbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryHealth {
    /// The inbox.
    pub inbox_url: String,
    /// Jobs waiting (first attempt or retry).
    pub pending: i64,
    /// Jobs delivered.
    pub delivered: i64,
    /// Jobs given up (dead-lettered; the partner catches up by pulling).
    pub dead: i64,
    /// Failures in a row.
    pub consecutive_failures: i64,
    /// Deliveries paused until then (circuit breaker).
    pub circuit_open_until: Option<OffsetDateTime>,
    /// Last success.
    pub last_success_at: Option<OffsetDateTime>,
    /// Last failure.
    pub last_failure_at: Option<OffsetDateTime>,
    /// Last error, as recorded.
    pub last_error: Option<String>,
}

/// One activity about an object.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// `sent` (outbox) or `received` (inbox).
    pub direction: &'static str,
    /// Activity type (`Create`, `Update`, `Delete`, `Announce`…).
    pub activity_type: String,
    /// Who sent it (received activities).
    pub actor: Option<String>,
    /// When it was sent or received.
    pub at: OffsetDateTime,
    /// The object's `version` in the activity, when it embeds one.
    pub version: Option<i64>,
}

fn embedded_version(doc: &Value) -> Option<i64> {
    let obj = doc.get("object")?;
    obj.get("version")
        .and_then(Value::as_i64)
        .or_else(|| obj.pointer("/object/version").and_then(Value::as_i64))
}

impl Store {
    /// Delivery health of every recipient inbox we have delivered to, by inbox.
    pub async fn delivery_health(&self) -> Result<Vec<DeliveryHealth>> {
        let mut out: Vec<DeliveryHealth> = Vec::new();
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT inbox_url, state, COUNT(*) AS n FROM deliveries GROUP BY inbox_url, state ORDER BY inbox_url",
            )
            .fetch_all(pool)
            .await
            .map_err(map_err("count deliveries"))?;
            for r in rows {
                let inbox: String = col!(r, "inbox_url");
                let state: String = col!(r, "state");
                let n: i64 = col!(r, "n");
                let i = match out.iter().position(|h| h.inbox_url == inbox) {
                    Some(i) => i,
                    None => {
                        out.push(DeliveryHealth { inbox_url: inbox, ..DeliveryHealth::default() });
                        out.len() - 1
                    }
                };
                match state.as_str() {
                    "pending" => out[i].pending = n,
                    "delivered" => out[i].delivered = n,
                    "dead" => out[i].dead = n,
                    _ => {}
                }
            }
            let rows = sqlx::query(
                "SELECT inbox_url, consecutive_failures, circuit_open_until, last_success_at, last_failure_at, last_error \
                 FROM delivery_targets ORDER BY inbox_url",
            )
            .fetch_all(pool)
            .await
            .map_err(map_err("read delivery targets"))?;
            for r in rows {
                let inbox: String = col!(r, "inbox_url");
                let i = match out.iter().position(|h| h.inbox_url == inbox) {
                    Some(i) => i,
                    None => {
                        out.push(DeliveryHealth { inbox_url: inbox, ..DeliveryHealth::default() });
                        out.len() - 1
                    }
                };
                let open: Option<i64> = col!(r, "circuit_open_until");
                let ok: Option<i64> = col!(r, "last_success_at");
                let ko: Option<i64> = col!(r, "last_failure_at");
                let failures: i64 = col!(r, "consecutive_failures");
                out[i].consecutive_failures = failures;
                out[i].circuit_open_until = open.map(from_ms);
                out[i].last_success_at = ok.map(from_ms);
                out[i].last_failure_at = ko.map(from_ms);
                out[i].last_error = col!(r, "last_error");
            }
        });
        out.sort_by(|a, b| a.inbox_url.cmp(&b.inbox_url));
        Ok(out)
    }

    /// The activities about `object_id` this node sent or received, oldest first.
    pub async fn object_history(&self, object_id: &str) -> Result<Vec<HistoryEntry>> {
        let mut out = Vec::new();
        both!(self, pool => {
            let rows = sqlx::query(
                "SELECT activity_type, document, created_at FROM outbox WHERE object_id = $1 ORDER BY seq",
            )
            .bind(object_id)
            .fetch_all(pool)
            .await
            .map_err(map_err("read the history of an object"))?;
            for r in rows {
                let doc: String = col!(r, "document");
                out.push(HistoryEntry {
                    direction: "sent",
                    activity_type: col!(r, "activity_type"),
                    actor: None,
                    at: from_ms(col!(r, "created_at")),
                    version: embedded_version(&parse_json(&doc)?),
                });
            }
            let rows = sqlx::query(
                "SELECT activity_type, actor_id, document, received_at FROM inbox WHERE object_id = $1 ORDER BY seq",
            )
            .bind(object_id)
            .fetch_all(pool)
            .await
            .map_err(map_err("read the history of an object"))?;
            for r in rows {
                let doc: String = col!(r, "document");
                out.push(HistoryEntry {
                    direction: "received",
                    activity_type: col!(r, "activity_type"),
                    actor: Some(col!(r, "actor_id")),
                    at: from_ms(col!(r, "received_at")),
                    version: embedded_version(&parse_json(&doc)?),
                });
            }
        });
        out.sort_by_key(|e| e.at);
        Ok(out)
    }
}
