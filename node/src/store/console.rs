//! Read-only views for the console: the history
//! of an object (the activities about it sent from the outbox or received in the inbox).

use serde_json::Value;
use sqlx::Row as _;
use time::OffsetDateTime;

use super::{Inner, Result, Store, from_ms, map_err, parse_json, postgres, sqlite};

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
