//! What dates bring, checked periodically by every process: the dated transitions of the
//! MAD requests this node created (start, term, renewal reminder, end of notice).
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
