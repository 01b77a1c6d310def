//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::error::AppError;
use crate::state::AppState;

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
