//! Delivery workers (spec/protocol.md §8): each process claims due jobs from the
//! database, sends each as a signed `POST` (re-signed at every attempt), classifies the
//! answer (§8.2), and records it: delivered, retried later with backoff and jitter (the
//! partner's `Retry-After` honoured), retried once after a refetch on `401`, or
//! dead-lettered (kept and replayable; the partner still recovers the activity by pulling
//! our outbox). A failing inbox gets one probe at a time and, after a few failures in a
//! row, a circuit that pauses its jobs until the next retry.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::backoff::{self, Outcome};
use super::group_commit::{GroupCommit, Refused};
use super::net::NetError;
use super::{Federation, jitter, sleep_or_stop};
use crate::store::{DeliveryJob, DeliveryOutcome};

/// The delivery loop of one process.
pub async fn run(fed: Arc<Federation>, mut shutdown: watch::Receiver<bool>) {
    let concurrency = fed.config().delivery_concurrency.max(1) as usize;
    let per_inbox = fed.config().per_inbox_concurrency.max(1);
    let poll = Duration::from_millis(fed.config().poll_interval_ms);
    // An attempt lasts at most the request timeout; a job whose process died is taken again
    // after twice that, plus a margin.
    let lease = Duration::from_secs(fed.config().request_timeout_secs.saturating_mul(2) + 5);
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks: JoinSet<()> = JoinSet::new();
    let (recorder, recorder_task) = Recorder::spawn(fed.clone(), concurrency);
    loop {
        while tasks.try_join_next().is_some() {}
        if *shutdown.borrow() {
            break;
        }
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = tasks.join_next() => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        let free = u32::try_from(free).unwrap_or(u32::MAX);
        let jobs = match fed
            .store()
            .claim_deliveries(fed.owner(), free, per_inbox, lease)
            .await
        {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim delivery jobs");
                if sleep_or_stop(poll, &mut shutdown).await {
                    break;
                }
                continue;
            }
        };
        if jobs.is_empty() {
            let notified = fed.store().events().outbox.notified();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(poll) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        for job in jobs {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                break;
            };
            let fed = fed.clone();
            let recorder = recorder.clone();
            tasks.spawn(async move {
                deliver(&fed, &recorder, job).await;
                drop(permit);
            });
        }
    }
    // Let attempts in flight finish; what does not is taken again when its lease ends.
    let grace = Duration::from_secs(fed.config().request_timeout_secs.min(10));
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    // The recorder ends once every attempt's handle is gone and its queue is recorded.
    drop(tasks);
    drop(recorder);
    let _ = tokio::time::timeout(grace, recorder_task).await;
}

/// Group commit of delivery outcomes ([`GroupCommit`]): attempts hand their outcome to
/// one writer task, which records whatever has accumulated in one transaction
/// ([`crate::store::Store::record_deliveries`]). A fan-out to a thousand partners then
/// costs a few commits instead of a thousand (each an fsync on PostgreSQL, each a turn of
/// the single writer on SQLite). An attempt waits for its record before it ends, so a job
/// is never claimed again while its outcome is in flight.
#[derive(Debug, Clone)]
struct Recorder {
    commit: GroupCommit<(DeliveryJob, DeliveryOutcome), i64>,
}

impl Recorder {
    /// Starts the writer task; it ends when every handle is dropped and its queue is
    /// recorded.
    fn spawn(fed: Arc<Federation>, capacity: usize) -> (Self, tokio::task::JoinHandle<()>) {
        let (commit, task) = GroupCommit::spawn(
            capacity.clamp(1, 512),
            None,
            Box::new(move |batch: Vec<(DeliveryJob, DeliveryOutcome)>| {
                let fed = fed.clone();
                Box::pin(async move {
                    let items: Vec<(&DeliveryJob, &DeliveryOutcome)> =
                        batch.iter().map(|(j, o)| (j, o)).collect();
                    fed.store()
                        .record_deliveries(&items)
                        .await
                        .map_err(|e| e.to_string())
                })
            }),
        );
        (Self { commit }, task)
    }

    /// Records one outcome (with the others waiting); the inbox's failures in a row
    /// before this attempt.
    async fn record(&self, job: DeliveryJob, outcome: DeliveryOutcome) -> Result<i64, String> {
        self.commit
            .submit((job, outcome))
            .await
            .map_err(|e| match e {
                Refused::Stopped(_) => "the delivery recorder stopped".to_owned(),
                Refused::Failed(e) => e,
            })
    }
}

/// The problem `code` of an error answer, if it has one: at most 64 characters, control
/// characters dropped (it is stored with the job, and a database cannot store U+0000).
fn problem_code(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("code")?
        .as_str()
        .map(|s| s.chars().filter(|c| !c.is_control()).take(64).collect())
}

/// One attempt of one job, recorded.
async fn deliver(fed: &Federation, recorder: &Recorder, job: DeliveryJob) {
    let signer = fed.signer();
    let attempt = fed
        .net()
        .post_activity(&job.inbox_url, job.body.clone().into_bytes(), &signer)
        .await;
    let now = OffsetDateTime::now_utc();
    let age = job.first_attempt_at.map_or(Duration::ZERO, |t| {
        Duration::try_from(now - t).unwrap_or(Duration::ZERO)
    });
    let attempts = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
    let schedule = fed.schedule();
    let retry = |status: Option<u16>,
                 code: Option<String>,
                 error: String,
                 after: Option<Duration>,
                 auth: bool| {
        let outcome = if auth {
            Outcome::RetryOnceAfterRefresh
        } else {
            Outcome::Retry { after }
        };
        match backoff::next_attempt(outcome, attempts, age, &schedule, jitter()) {
            Some(delay) => DeliveryOutcome::Retry {
                status,
                code,
                error,
                next_attempt_at: now + delay,
                auth_retry: auth,
            },
            None => DeliveryOutcome::Dead {
                status,
                code,
                error: format!("{error} (given up after {attempts} attempts)"),
            },
        }
    };
    let mut gone = false;
    let outcome = match attempt {
        Ok(resp) => {
            let after = resp
                .retry_after
                .as_deref()
                .and_then(|v| backoff::parse_retry_after(v, now.unix_timestamp()));
            let code = problem_code(&resp.body);
            let error = format!(
                "{} answered {}{}",
                job.inbox_url,
                resp.status,
                code.as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            );
            match backoff::classify(resp.status, after) {
                Outcome::Delivered => DeliveryOutcome::Delivered {
                    status: resp.status,
                },
                Outcome::Retry { after } => retry(Some(resp.status), code, error, after, false),
                Outcome::RetryOnceAfterRefresh if !job.auth_retried => {
                    refresh_recipient(fed, &job.inbox_url).await;
                    retry(Some(resp.status), code, error, None, true)
                }
                Outcome::RetryOnceAfterRefresh | Outcome::Final => DeliveryOutcome::Dead {
                    status: Some(resp.status),
                    code,
                    error,
                },
                Outcome::Gone => {
                    gone = true;
                    DeliveryOutcome::Dead {
                        status: Some(resp.status),
                        code: Some(code.unwrap_or_else(|| "gone".to_owned())),
                        error: format!("{error}: the recipient is gone"),
                    }
                }
            }
        }
        Err(NetError::Redirect { url, reason }) => DeliveryOutcome::Dead {
            status: None,
            code: Some("redirect".to_owned()),
            error: format!(
                "{url}: {reason} (redirects are not followed on POST; re-discover the partner)"
            ),
        },
        Err(e @ NetError::Refused { .. }) => DeliveryOutcome::Dead {
            status: None,
            code: Some("refused_address".to_owned()),
            error: e.to_string(),
        },
        Err(e @ NetError::Sign { .. }) => DeliveryOutcome::Dead {
            status: None,
            code: Some("sign_failed".to_owned()),
            error: e.to_string(),
        },
        Err(e) => retry(None, None, e.to_string(), None, false),
    };
    let metrics = fed.metrics();
    match &outcome {
        DeliveryOutcome::Delivered { .. } => {
            metrics
                .deliveries_ok
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        DeliveryOutcome::Retry {
            error,
            next_attempt_at,
            ..
        } => {
            metrics
                .deliveries_retry
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(inbox = %job.inbox_url, activity = %job.activity_id, %error, retry_at = %next_attempt_at, "delivery failed; will retry");
        }
        DeliveryOutcome::Dead { error, .. } => {
            metrics
                .deliveries_dead
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(inbox = %job.inbox_url, activity = %job.activity_id, %error, "delivery dead-lettered");
        }
    }
    let came_back = matches!(outcome, DeliveryOutcome::Delivered { .. });
    let (job_id, inbox_url) = (job.id, job.inbox_url.clone());
    match recorder.record(job, outcome).await {
        Ok(previous_failures) => {
            if came_back && previous_failures > 0 {
                partner_came_back(fed, &inbox_url).await;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, job = job_id, "cannot record a delivery; the job will be tried again")
        }
    }
    if gone
        && let Err(e) = fed
            .store()
            .dead_letter_inbox(&inbox_url, "the recipient is gone (410)")
            .await
    {
        tracing::warn!(error = %e, "cannot dead-letter the jobs of a gone inbox");
    }
}

/// Refetches the actors behind an inbox (its key or inbox may have changed, §8.2).
async fn refresh_recipient(fed: &Federation, inbox_url: &str) {
    let Ok(partners) = fed.store().partners().await else {
        return;
    };
    for p in partners.iter().filter(|p| p.delivery_inbox() == inbox_url) {
        match fed.actors().refetch(&p.actor_id).await {
            Ok(actor) => {
                if let Err(e) = fed
                    .store()
                    .upsert_partner(&super::partners::partner_info(&actor.doc))
                    .await
                {
                    tracing::warn!(error = %e, "cannot update a partner");
                }
            }
            Err(e) => {
                tracing::info!(actor = %p.actor_id, error = %e, "cannot refetch a partner after a 401")
            }
        }
    }
}

/// A delivery succeeded after failures: the partner is back; its other jobs go now and
/// we catch up with its outbox (§9.3).
async fn partner_came_back(fed: &Federation, inbox_url: &str) {
    tracing::info!(inbox = inbox_url, "partner reachable again");
    if let Err(e) = fed.store().retry_inbox_now(inbox_url).await {
        tracing::warn!(error = %e, "cannot reschedule deliveries");
    }
    if let Ok(partners) = fed.store().partners().await {
        for p in partners.iter().filter(|p| p.delivery_inbox() == inbox_url) {
            if let Err(e) = fed.store().request_pull(Some(&p.actor_id)).await {
                tracing::warn!(error = %e, "cannot request a pull");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_codes_are_read_from_problem_documents() {
        assert_eq!(
            problem_code(br#"{"type":"x","code":"digest_mismatch","status":400}"#).as_deref(),
            Some("digest_mismatch")
        );
        assert_eq!(problem_code(b"<html>oops</html>"), None);
        assert_eq!(problem_code(br#"{"code":42}"#), None);
        // Stored with the job: no control character (a database cannot store U+0000).
        assert_eq!(
            problem_code(br#"{"code":"bad\u0000code\n"}"#).as_deref(),
            Some("badcode")
        );
    }
}
