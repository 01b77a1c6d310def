//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::error::AppError;
use super::metrics::escape;
use crate::state::AppState;
use crate::store::FederationGauges;

/// # `GET /healthz`
/// Liveness: the process answers. Does not touch the database.
pub async fn get_healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ok\n",
    )
}

/// # `GET /readyz`
/// Readiness: the database answers and every migration known to this binary is applied.
/// 503 otherwise, so a load balancer sends no traffic to this process.
pub async fn get_readyz(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    if let Err(e) = state.store().ping().await {
        tracing::warn!(error = %e, "readiness: database unreachable");
        return Err(AppError::Unavailable(
            "base de données injoignable".to_owned(),
        ));
    }
    let status = state.store().migration_status().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness: cannot read migrations");
        AppError::Unavailable("état des migrations illisible".to_owned())
    })?;
    if status.applied < status.known {
        return Err(AppError::Unavailable(format!(
            "{} migration(s) non appliquée(s) ; lancez `passerelle migrate`",
            status.known - status.applied
        )));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "ready\n",
    ))
}

/// # `GET /metrics`
/// Prometheus text format: request counters and latencies of this process, and a few
/// gauges read from the database (shared by all processes).
pub async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    out.push_str("# HELP passerelle_build_info Version of the running binary.\n# TYPE passerelle_build_info gauge\n");
    let _ = writeln!(
        out,
        "passerelle_build_info{{version=\"{}\",protocol=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        passerelle_protocol::PROTOCOL_VERSION
    );
    out.push_str("# HELP passerelle_uptime_seconds Time since this process started.\n# TYPE passerelle_uptime_seconds gauge\n");
    let _ = writeln!(
        out,
        "passerelle_uptime_seconds {}",
        state.uptime().as_secs_f64()
    );
    let db_up = state.store().ping().await.is_ok();
    out.push_str("# HELP passerelle_database_up Whether the database answered this scrape.\n# TYPE passerelle_database_up gauge\n");
    let _ = writeln!(out, "passerelle_database_up {}", u8::from(db_up));
    if let Ok((postings, accounts)) = state.store().usage().await {
        out.push_str("# HELP passerelle_postings_published Published local postings.\n# TYPE passerelle_postings_published gauge\n");
        let _ = writeln!(out, "passerelle_postings_published {postings}");
        out.push_str("# HELP passerelle_accounts HR accounts.\n# TYPE passerelle_accounts gauge\n");
        let _ = writeln!(out, "passerelle_accounts {accounts}");
    }
    if let Ok(n) = state.store().outbox_len(false).await {
        out.push_str("# HELP passerelle_outbox_activities Activities in the outbox.\n# TYPE passerelle_outbox_activities gauge\n");
        let _ = writeln!(out, "passerelle_outbox_activities {n}");
    }
    match state.store().federation_gauges().await {
        Ok(g) => render_federation(&mut out, &g, crate::store::now_ms()),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the federation gauges"),
    }
    state.metrics().render(&mut out);
    state.federation().metrics().render(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Seconds between two Unix-millisecond times, never negative.
fn age_secs(now_ms: i64, then_ms: i64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let secs = (now_ms.saturating_sub(then_ms)).max(0) as f64 / 1000.0;
    secs
}

/// Renders the federation gauges (`store::gauges`); `now_ms` is the scrape time.
pub fn render_federation(out: &mut String, g: &FederationGauges, now_ms: i64) {
    family(
        out,
        "passerelle_deliveries",
        "gauge",
        "Delivery jobs per recipient inbox and state (pending: not tried yet; retrying: failed, will retry; dead: dead-lettered; delivered).",
    );
    for d in &g.deliveries {
        let _ = writeln!(
            out,
            "passerelle_deliveries{{inbox=\"{}\",state=\"{}\"}} {}",
            escape(&d.inbox),
            escape(&d.state),
            d.count
        );
    }
    family(
        out,
        "passerelle_deliveries_oldest_age_seconds",
        "gauge",
        "Age of the oldest delivery job per recipient inbox and state (pending and retrying only).",
    );
    for d in g
        .deliveries
        .iter()
        .filter(|d| d.state == "pending" || d.state == "retrying")
    {
        let _ = writeln!(
            out,
            "passerelle_deliveries_oldest_age_seconds{{inbox=\"{}\",state=\"{}\"}} {}",
            escape(&d.inbox),
            escape(&d.state),
            age_secs(now_ms, d.oldest_created_at)
        );
    }
    family(
        out,
        "passerelle_delivery_target_consecutive_failures",
        "gauge",
        "Failed deliveries in a row to a recipient inbox.",
    );
    for t in &g.targets {
        let _ = writeln!(
            out,
            "passerelle_delivery_target_consecutive_failures{{inbox=\"{}\"}} {}",
            escape(&t.inbox),
            t.consecutive_failures
        );
    }
    family(
        out,
        "passerelle_delivery_target_circuit_open",
        "gauge",
        "1 while deliveries to a recipient inbox are held by the circuit breaker.",
    );
    for t in &g.targets {
        let open = t.circuit_open_until.is_some_and(|u| u > now_ms);
        let _ = writeln!(
            out,
            "passerelle_delivery_target_circuit_open{{inbox=\"{}\"}} {}",
            escape(&t.inbox),
            u8::from(open)
        );
    }
    family(
        out,
        "passerelle_inbox_received",
        "gauge",
        "Activities stored in the inbox, by channel (push: delivered to us; pull: fetched from a partner's outbox).",
    );
    for i in &g.inbox {
        let _ = writeln!(
            out,
            "passerelle_inbox_received{{via=\"{}\"}} {}",
            escape(&i.via),
            i.received
        );
    }
    family(
        out,
        "passerelle_inbox_unprocessed",
        "gauge",
        "Received activities not yet processed, by channel.",
    );
    for i in &g.inbox {
        let _ = writeln!(
            out,
            "passerelle_inbox_unprocessed{{via=\"{}\"}} {}",
            escape(&i.via),
            i.unprocessed
        );
    }
    family(
        out,
        "passerelle_inbox_oldest_unprocessed_age_seconds",
        "gauge",
        "Age of the oldest received activity not yet processed, by channel.",
    );
    for i in &g.inbox {
        if let Some(t) = i.oldest_unprocessed_at {
            let _ = writeln!(
                out,
                "passerelle_inbox_oldest_unprocessed_age_seconds{{via=\"{}\"}} {}",
                escape(&i.via),
                age_secs(now_ms, t)
            );
        }
    }
    family(
        out,
        "passerelle_sync_lag_seconds",
        "gauge",
        "Time since the last successful pull of a followed partner's outbox.",
    );
    for s in &g.sync {
        if let Some(t) = s.last_success_at {
            let _ = writeln!(
                out,
                "passerelle_sync_lag_seconds{{partner=\"{}\"}} {}",
                escape(&s.actor_id),
                age_secs(now_ms, t)
            );
        }
    }
    family(
        out,
        "passerelle_sync_never_succeeded",
        "gauge",
        "1 for a followed partner whose outbox was never pulled successfully.",
    );
    for s in &g.sync {
        let _ = writeln!(
            out,
            "passerelle_sync_never_succeeded{{partner=\"{}\"}} {}",
            escape(&s.actor_id),
            u8::from(s.last_success_at.is_none())
        );
    }
    family(
        out,
        "passerelle_sync_failing",
        "gauge",
        "1 when the last pull of a followed partner's outbox failed.",
    );
    for s in &g.sync {
        let _ = writeln!(
            out,
            "passerelle_sync_failing{{partner=\"{}\"}} {}",
            escape(&s.actor_id),
            u8::from(s.failing)
        );
    }
    family(
        out,
        "passerelle_sync_items_pulled_total",
        "counter",
        "Activities pulled from a followed partner's outbox.",
    );
    for s in &g.sync {
        let _ = writeln!(
            out,
            "passerelle_sync_items_pulled_total{{partner=\"{}\"}} {}",
            escape(&s.actor_id),
            s.items_pulled
        );
    }
}
