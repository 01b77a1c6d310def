//! Federation health read at scrape time for `/metrics`: delivery jobs per recipient inbox,
//! the health of each inbox, received activities, and the pull cursor of each partner.
//! Read from the database, so every process sharing it reports the same values.

use sqlx::Row as _;

use super::{Inner, Result, Store, map_err, postgres, sqlite};

/// Delivery jobs of one recipient inbox in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryCount {
    /// The recipient inbox URL.
    pub inbox: String,
    /// `pending` (never tried yet), `retrying` (pending after a failure), `dead`
    /// (dead-lettered) or `delivered`.
    pub state: String,
    /// Number of jobs.
    pub count: i64,
    /// Creation time of the oldest job in this state (Unix ms).
    pub oldest_created_at: i64,
}

/// Health of one recipient inbox (`delivery_targets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetHealth {
    /// The inbox URL.
    pub inbox: String,
    /// Failures in a row.
    pub consecutive_failures: i64,
    /// The circuit breaker holds deliveries until then (Unix ms).
    pub circuit_open_until: Option<i64>,
    /// Last successful delivery (Unix ms).
    pub last_success_at: Option<i64>,
}

/// Received activities by channel (`push` or `pull`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCount {
    /// `push` or `pull`.
    pub via: String,
    /// Activities stored.
    pub received: i64,
    /// Of those, not yet processed.
    pub unprocessed: i64,
    /// Reception time of the oldest unprocessed one (Unix ms).
    pub oldest_unprocessed_at: Option<i64>,
}

/// Pull state of one followed partner (`sync_state`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGauge {
    /// The partner's actor id.
    pub actor_id: String,
    /// Last successful pull (Unix ms).
    pub last_success_at: Option<i64>,
    /// Last pull attempt (Unix ms).
    pub last_pull_at: Option<i64>,
    /// Activities pulled from it so far.
    pub items_pulled: i64,
    /// Whether the last pull failed.
    pub failing: bool,
}

/// Everything `/metrics` reports about federation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FederationGauges {
    /// Delivery jobs per inbox and state.
    pub deliveries: Vec<DeliveryCount>,
    /// Health per inbox.
    pub targets: Vec<TargetHealth>,
    /// Received activities per channel.
    pub inbox: Vec<InboxCount>,
    /// Pull state per partner.
    pub sync: Vec<SyncGauge>,
}

const DELIVERIES_SQL: &str = "SELECT inbox_url, \
     CASE WHEN state = 'pending' AND attempts > 0 THEN 'retrying' ELSE state END AS st, \
     COUNT(*) AS n, MIN(created_at) AS oldest \
     FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2";
const TARGETS_SQL: &str = "SELECT inbox_url, consecutive_failures, circuit_open_until, last_success_at \
     FROM delivery_targets ORDER BY inbox_url";
const INBOX_SQL: &str = "SELECT via, COUNT(*) AS n, \
     COALESCE(SUM(CASE WHEN processed_at IS NULL THEN 1 ELSE 0 END), 0) AS unprocessed, \
     MIN(CASE WHEN processed_at IS NULL THEN received_at END) AS oldest \
     FROM inbox GROUP BY via ORDER BY via";
const SYNC_SQL: &str = "SELECT actor_id, last_success_at, last_pull_at, items_pulled, \
     CASE WHEN last_error IS NULL THEN 0 ELSE 1 END AS failing FROM sync_state ORDER BY actor_id";

impl Store {
    /// Reads the federation gauges (a few grouped queries on indexed tables).
    pub async fn federation_gauges(&self) -> Result<FederationGauges> {
        both!(self, pool => {
            let mut g = FederationGauges::default();
            for r in sqlx::query(DELIVERIES_SQL).fetch_all(pool).await.map_err(map_err("count deliveries"))? {
                g.deliveries.push(DeliveryCount {
                    inbox: col!(r, "inbox_url"),
                    state: col!(r, "st"),
                    count: col!(r, "n"),
                    oldest_created_at: col!(r, "oldest"),
                });
            }
            for r in sqlx::query(TARGETS_SQL).fetch_all(pool).await.map_err(map_err("read delivery targets"))? {
                g.targets.push(TargetHealth {
                    inbox: col!(r, "inbox_url"),
                    consecutive_failures: col!(r, "consecutive_failures"),
                    circuit_open_until: col!(r, "circuit_open_until"),
                    last_success_at: col!(r, "last_success_at"),
                });
            }
            for r in sqlx::query(INBOX_SQL).fetch_all(pool).await.map_err(map_err("count the inbox"))? {
                g.inbox.push(InboxCount {
                    via: col!(r, "via"),
                    received: col!(r, "n"),
                    unprocessed: col!(r, "unprocessed"),
                    oldest_unprocessed_at: col!(r, "oldest"),
                });
            }
            for r in sqlx::query(SYNC_SQL).fetch_all(pool).await.map_err(map_err("read pull cursors"))? {
                let failing: i32 = col!(r, "failing");
                g.sync.push(SyncGauge {
                    actor_id: col!(r, "actor_id"),
                    last_success_at: col!(r, "last_success_at"),
                    last_pull_at: col!(r, "last_pull_at"),
                    items_pulled: col!(r, "items_pulled"),
                    failing: failing != 0,
                });
            }
            Ok(g)
        })
    }
}

/// The current time in Unix milliseconds, the unit of every stored time.
pub fn now_ms() -> i64 {
    super::to_ms(super::now())
}
