//! The closed-loop load generator: `concurrency` workers, each with its own kept-alive
//! connection, send pre-built requests one after another and time each answer. The same
//! generator drives the node, the limit servers and the peer, so that the ratios compare
//! like with like.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// One request, ready to send.
#[derive(Debug, Clone)]
pub struct Req {
    /// Full URL.
    pub url: String,
    /// Header fields.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Bytes,
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Requests sent.
    pub sent: usize,
    /// Answers 2xx.
    pub ok: usize,
    /// Answers by status (0: transport error).
    pub statuses: BTreeMap<u16, usize>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latencies of the 2xx answers, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadResult {
    /// 2xx answers per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Latency percentile `p` (0..=1) in milliseconds.
    pub fn pct_ms(&self, p: f64) -> f64 {
        pct(&self.latencies, p).as_secs_f64() * 1000.0
    }
}

/// Percentile of sorted durations.
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Sends every request of `reqs` with `concurrency` workers; returns the measurements.
pub async fn run(reqs: Vec<Req>, concurrency: usize) -> LoadResult {
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (reqs, next, client) = (reqs.clone(), next.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(r) = reqs.get(i) else { break };
                let mut b = client.post(&r.url).body(r.body.clone());
                for (n, v) in &r.headers {
                    b = b.header(n, v);
                }
                let t = Instant::now();
                let status = match b.send().await {
                    Ok(resp) => {
                        let s = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        s
                    }
                    Err(_) => 0,
                };
                if (200..300).contains(&status) {
                    lat.push(t.elapsed());
                }
                *statuses.entry(status).or_default() += 1;
            }
            (lat, statuses)
        }));
    }
    let mut out = LoadResult::default();
    for w in workers {
        if let Ok((lat, statuses)) = w.await {
            out.latencies.extend(lat);
            for (s, n) in statuses {
                *out.statuses.entry(s).or_default() += n;
            }
        }
    }
    out.elapsed = started.elapsed();
    out.sent = out.statuses.values().sum();
    out.ok = out
        .statuses
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    out.latencies.sort();
    out
}

/// Resident set size and its peak of a process, in MB (`VmRSS`, `VmHWM`).
pub fn rss_mb(pid: u32) -> (f64, f64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples the RSS of `pid` every 100 ms until the returned sender is dropped; the task
/// answers the largest `VmRSS` seen.
pub fn sample_rss(
    pid: u32,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<f64>,
) {
    let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut max: f64 = 0.0;
        loop {
            max = max.max(rss_mb(pid).0);
            tokio::select! {
                _ = &mut rx => return max,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    });
    (tx, task)
}

/// Open file descriptors of a process (sockets included).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}
