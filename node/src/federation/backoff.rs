//! Pure scheduling rules of delivery (protocol §8.2, §8.3): how a response is classified,
//! and how long to wait before the next attempt. No I/O, no clock: callers pass the time
//! and the random draw, so the rules are unit-tested exactly.

use std::time::Duration;

/// What to do after one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: delivered.
    Delivered,
    /// Retry with backoff (5xx, 408, timeouts, connection failures), or no earlier than
    /// the given delay when the partner said so (`Retry-After`, honoured up to 24 h).
    Retry {
        /// The partner's `Retry-After`, if any.
        after: Option<Duration>,
    },
    /// 401: refetch the partner's actor, wait, re-sign and retry once; a second 401 is
    /// final.
    RetryOnceAfterRefresh,
    /// Final failure: dead-letter now (other 4xx, 3xx).
    Final,
    /// 410: the recipient is gone; stop delivering to it and tell the operator.
    Gone,
}

/// Longest `Retry-After` honoured (protocol §8.2).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Classifies an HTTP response status (with its `Retry-After`, already parsed).
pub fn classify(status: u16, retry_after: Option<Duration>) -> Outcome {
    let after = retry_after.map(|d| d.min(MAX_RETRY_AFTER));
    match status {
        200..=299 => Outcome::Delivered,
        401 => Outcome::RetryOnceAfterRefresh,
        408 => Outcome::Retry { after },
        429 => Outcome::Retry { after },
        410 => Outcome::Gone,
        300..=499 => Outcome::Final,
        _ => Outcome::Retry { after },
    }
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP-date (IMF-fixdate, RFC 9110
/// §10.2.3) relative to `now` (Unix seconds). A date in the past means "now".
pub fn parse_retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc()
        .unix_timestamp();
    Some(Duration::from_secs(
        u64::try_from(at.saturating_sub(now_unix)).unwrap_or(0),
    ))
}

/// The retry schedule: delay before retry `n` (n ≥ 1) is
/// `min(cap, base × 2^(n−1)) × j`, with `j` uniform in [0.5, 1.0] (protocol §8.3).
/// `jitter` is the random draw in [0, 1).
pub fn retry_delay(n: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exp = n.saturating_sub(1).min(62);
    let raw = base.saturating_mul(1u32 << exp.min(31));
    let raw = if exp > 31 { cap } else { raw };
    let bounded = raw.min(cap);
    let j = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    bounded.mul_f64(j)
}

/// The delay before the next attempt, or `None` when the job must be dead-lettered.
///
/// `attempts` counts the attempts made so far (≥ 1); `age` is the time since the first
/// attempt; a `Retry-After` wins over the backoff when it is longer.
pub fn next_attempt(
    outcome: Outcome,
    attempts: u32,
    age: Duration,
    schedule: &Schedule,
    jitter: f64,
) -> Option<Duration> {
    let backoff = retry_delay(attempts, schedule.base, schedule.cap, jitter);
    let delay = match outcome {
        Outcome::Delivered | Outcome::Final | Outcome::Gone => return None,
        Outcome::Retry { after } => after.map_or(backoff, |a| a.max(backoff)),
        Outcome::RetryOnceAfterRefresh => schedule.auth_retry,
    };
    if age.saturating_add(delay) > schedule.dead_letter_after {
        return None;
    }
    Some(delay)
}

/// The configured schedule (`[federation]` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// First retry delay.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Age of a job after which it is dead-lettered.
    pub dead_letter_after: Duration,
    /// Wait before the single retry after a 401.
    pub auth_retry: Duration,
}

impl Schedule {
    /// The protocol's recommended values: 10 s, 6 h, 7 days, 60 s.
    pub const RECOMMENDED: Schedule = Schedule {
        base: Duration::from_secs(10),
        cap: Duration::from_secs(6 * 3600),
        dead_letter_after: Duration::from_secs(7 * 24 * 3600),
        auth_retry: Duration::from_secs(60),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn statuses_are_classified_as_the_protocol_says() {
        assert_eq!(classify(202, None), Outcome::Delivered);
        assert_eq!(classify(200, None), Outcome::Delivered);
        assert_eq!(classify(401, None), Outcome::RetryOnceAfterRefresh);
        assert_eq!(classify(408, None), Outcome::Retry { after: None });
        assert_eq!(
            classify(429, Some(30 * S)),
            Outcome::Retry {
                after: Some(30 * S)
            }
        );
        // Retry-After is honoured up to 24 hours.
        assert_eq!(
            classify(503, Some(100_000 * S)),
            Outcome::Retry {
                after: Some(MAX_RETRY_AFTER)
            }
        );
        assert_eq!(classify(500, None), Outcome::Retry { after: None });
        assert_eq!(classify(410, None), Outcome::Gone);
        for final_status in [400, 403, 404, 409, 413, 415, 422, 301, 302, 308] {
            assert_eq!(
                classify(final_status, None),
                Outcome::Final,
                "{final_status}"
            );
        }
    }

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        assert_eq!(parse_retry_after("120", 0), Some(120 * S));
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 - 60),
            Some(60 * S)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_777 + 5),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", 0), None);
        assert_eq!(parse_retry_after("-3", 0), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = 10 * S;
        let cap = 6 * 3600 * S;
        // No jitter draw (0.0) halves; the top of the range (→1.0) is the full delay.
        assert_eq!(retry_delay(1, base, cap, 0.0), 5 * S);
        assert_eq!(retry_delay(1, base, cap, 1.0), 10 * S);
        assert_eq!(retry_delay(2, base, cap, 1.0), 20 * S);
        assert_eq!(retry_delay(3, base, cap, 1.0), 40 * S);
        assert_eq!(retry_delay(4, base, cap, 0.5), Duration::from_secs(60));
        // 10 s × 2^11 = 20 480 s < 6 h; 2^12 exceeds the cap.
        assert_eq!(retry_delay(12, base, cap, 1.0), 20_480 * S);
        assert_eq!(retry_delay(13, base, cap, 1.0), cap);
        assert_eq!(retry_delay(200, base, cap, 1.0), cap);
        assert_eq!(retry_delay(200, base, cap, 0.0), cap / 2);
        // Every draw stays within [0.5, 1.0] of the bounded delay.
        for n in 1..40 {
            for j in [0.0, 0.1, 0.5, 0.99] {
                let d = retry_delay(n, base, cap, j);
                let full = retry_delay(n, base, cap, 1.0);
                assert!(d >= full / 2 && d <= full, "n={n} j={j}");
            }
        }
    }

    #[test]
    fn dead_letter_after_the_configured_age_never_for_final_outcomes() {
        let s = Schedule::RECOMMENDED;
        let day = 24 * 3600 * S;
        assert_eq!(
            next_attempt(Outcome::Retry { after: None }, 1, Duration::ZERO, &s, 1.0),
            Some(10 * S)
        );
        // A long Retry-After wins over a short backoff; a short one does not shorten it.
        assert_eq!(
            next_attempt(
                Outcome::Retry {
                    after: Some(3600 * S)
                },
                1,
                Duration::ZERO,
                &s,
                1.0
            ),
            Some(3600 * S)
        );
        assert_eq!(
            next_attempt(
                Outcome::Retry { after: Some(S) },
                3,
                Duration::ZERO,
                &s,
                1.0
            ),
            Some(40 * S)
        );
        assert_eq!(
            next_attempt(Outcome::RetryOnceAfterRefresh, 1, Duration::ZERO, &s, 0.3),
            Some(60 * S)
        );
        // Still retried just before 7 days, dead-lettered past them.
        assert!(next_attempt(Outcome::Retry { after: None }, 30, 6 * day, &s, 1.0).is_some());
        assert_eq!(
            next_attempt(Outcome::Retry { after: None }, 30, 7 * day, &s, 1.0),
            None
        );
        for o in [Outcome::Delivered, Outcome::Final, Outcome::Gone] {
            assert_eq!(next_attempt(o, 1, Duration::ZERO, &s, 1.0), None);
        }
    }

    #[test]
    fn recommended_schedule_reaches_the_cap_and_spans_days_before_dead_letter() {
        // With the recommended values a job is retried for 7 days: about a dozen quick
        // retries, then one every 3 to 6 hours.
        let s = Schedule::RECOMMENDED;
        let mut age = Duration::ZERO;
        let mut attempts = 1;
        while let Some(d) = next_attempt(Outcome::Retry { after: None }, attempts, age, &s, 1.0) {
            age += d;
            attempts += 1;
        }
        assert!(age <= s.dead_letter_after);
        assert!(age > s.dead_letter_after - s.cap, "{age:?}");
        assert!((35..=45).contains(&attempts), "{attempts}");
    }
}
