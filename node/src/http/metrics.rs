//! Prometheus metrics of HTTP requests, kept per process (each process is scraped on its
//! own; counters restart at zero, as Prometheus expects).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Request counters and latency histograms by method, route and status, and the inbox's
/// outcome counters.
#[derive(Default)]
pub struct Metrics {
    series: Mutex<BTreeMap<(String, String, u16), Series>>,
    inbox_outcomes: Mutex<BTreeMap<String, u64>>,
}

/// Label of [`Metrics::inbox_outcome`] for an accepted activity.
pub const INBOX_ACCEPTED: &str = "accepted";

impl Metrics {
    /// Counts one activity offered to the inbox (pushed or pulled) by its outcome:
    /// [`INBOX_ACCEPTED`], or the stable problem `code` of the refusal (protocol §12, e.g.
    /// `signature_invalid`, `signature_expired` (clock skew), `digest_mismatch`,
    /// `key_unknown`, `proof_invalid`, `validation_failed`, `actor_blocked`). Exposed as
    /// `passerelle_inbox_activities_total{outcome="…"}`. Codes are snake_case; anything
    /// else is counted as `other`, so that a label never carries untrusted text.
    pub fn inbox_outcome(&self, code: &str) {
        let valid = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let label = if valid { code } else { "other" };
        let Ok(mut map) = self.inbox_outcomes.lock() else {
            return;
        };
        *map.entry(label.to_owned()).or_default() += 1;
    }

    /// Records one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let Ok(mut map) = self.series.lock() else {
            return;
        };
        let s = map
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default();
        s.count += 1;
        s.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                s.buckets[i] += 1;
            }
        }
    }

    /// Renders the inbox outcome counters (with `accepted` always present, so that alert
    /// expressions find the series before the first activity arrives).
    fn render_inbox(&self, out: &mut String) {
        let Ok(map) = self.inbox_outcomes.lock() else {
            return;
        };
        out.push_str("# HELP passerelle_inbox_activities_total Activities offered to this process's inbox, by outcome (accepted, or the refusal's problem code).\n");
        out.push_str("# TYPE passerelle_inbox_activities_total counter\n");
        if !map.contains_key(INBOX_ACCEPTED) {
            let _ = writeln!(
                out,
                "passerelle_inbox_activities_total{{outcome=\"{INBOX_ACCEPTED}\"}} 0"
            );
        }
        for (outcome, n) in map.iter() {
            let _ = writeln!(
                out,
                "passerelle_inbox_activities_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
    }

    /// Renders the request series and the inbox counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        self.render_inbox(out);
        let Ok(map) = self.series.lock() else { return };
        out.push_str("# HELP passerelle_http_requests_total HTTP requests handled, by method, route and status.\n");
        out.push_str("# TYPE passerelle_http_requests_total counter\n");
        for ((m, r, st), s) in map.iter() {
            let _ = writeln!(
                out,
                "passerelle_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{st}\"}} {}",
                escape(r),
                s.count
            );
        }
        out.push_str(
            "# HELP passerelle_http_request_duration_seconds Time to handle HTTP requests.\n",
        );
        out.push_str("# TYPE passerelle_http_request_duration_seconds histogram\n");
        for ((m, r, st), s) in map.iter() {
            let labels = format!("method=\"{m}\",route=\"{}\",status=\"{st}\"", escape(r));
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "passerelle_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "passerelle_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "passerelle_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "passerelle_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

/// Escapes a label value (Prometheus text format).
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_outcomes_are_counted_with_safe_labels() {
        let m = Metrics::default();
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("passerelle_inbox_activities_total{outcome=\"accepted\"} 0\n"));
        m.inbox_outcome("accepted");
        m.inbox_outcome("signature_invalid");
        m.inbox_outcome("signature_invalid");
        m.inbox_outcome("bad\"} 1\nevil{");
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("passerelle_inbox_activities_total{outcome=\"accepted\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("passerelle_inbox_activities_total{outcome=\"signature_invalid\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("passerelle_inbox_activities_total{outcome=\"other\"} 1\n"),
            "{out}"
        );
        assert!(!out.contains("evil"), "{out}");
    }
}
