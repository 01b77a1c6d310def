//! `passerelle-bench`: runs each scenario against real `passerelle` processes on loopback
//! (started as the integration tests start them: `passerelle --config FILE serve`, built in
//! release beside this binary), on SQLite and on PostgreSQL, and measures in the same run
//! the limits that bound each scenario. Prints a table; writes `results.json` to `--out`.
//!
//! ```sh
//! cargo build --release -p passerelle-node -p passerelle-bench --bins --example feed_bench
//! target/release/passerelle-bench --out bench-results          # full run
//! target/release/passerelle-bench --quick                      # CI smoke run (< 1 min)
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    clippy::too_many_arguments
)]

mod fakes;
mod limits;
mod load;
mod scenarios;

use std::path::PathBuf;

use clap::Parser;
use serde_json::{Value, json};

/// Benchmarks of Passerelle nodes on loopback.
#[derive(Debug, Clone, Parser)]
#[command(name = "passerelle-bench", version)]
pub struct Args {
    /// Tiny sizes (a smoke run for CI, under about a minute).
    #[arg(long)]
    pub quick: bool,
    /// Where to write `results.json`.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Backends: `sqlite`, `postgres` (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    pub backends: Vec<String>,
    /// Scenarios: `limits`, `inbox`, `fanout`, `catchup`, `feed` (comma-separated; memory
    /// and start-up are measured within inbox and catch-up).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "limits,inbox,fanout,catchup,feed"
    )]
    pub only: Vec<String>,
    /// Inbox: signed activities sent per run.
    #[arg(long)]
    pub inbox_requests: Option<usize>,
    /// Inbox: partners sending at once (one fake partner node each).
    #[arg(long, value_delimiter = ',')]
    pub inbox_partners: Option<Vec<usize>>,
    /// Inbox: concurrent connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Fan-out: numbers of partners.
    #[arg(long, value_delimiter = ',')]
    pub fanout: Option<Vec<usize>>,
    /// Fan-out: seconds to wait after the deliveries before reading the node's RSS and
    /// open descriptors again.
    #[arg(long, default_value_t = 0)]
    pub fanout_linger: u64,
    /// Fan-out: seconds the node is left alone after the partners' set-up before its idle
    /// RSS is read (the RSS right after the set-up is reported too): beyond the outgoing
    /// connections' idle timeout (10 s, closed within 20 s) and the allocator's return of
    /// freed pages. `--quick` reads it at once.
    #[arg(long, default_value_t = 30)]
    pub idle_settle: u64,
    /// Catch-up: activities missed by the returning partner.
    #[arg(long, value_delimiter = ',')]
    pub catchup: Option<Vec<usize>>,
    /// Feed: numbers of postings (e.g. 100000,1000000).
    #[arg(long, value_delimiter = ',')]
    pub scale: Option<Vec<usize>>,
    /// Also run the same inbox load against the peer built on `activitypub_federation`
    /// (`bench/lemmy-peer`, built on demand).
    #[arg(long)]
    pub peer: bool,
}

/// The results of a run.
#[derive(Debug, Default)]
pub struct Report {
    /// One JSON object per measurement.
    pub rows: Vec<Value>,
}

impl Report {
    /// Records and prints one measurement: `value` in `unit`, with its limit when known.
    pub fn add(
        &mut self,
        scenario: &str,
        backend: &str,
        what: &str,
        value: f64,
        unit: &str,
        limit: Option<(f64, &str)>,
        target: Option<&str>,
    ) {
        let ratio = limit.map(|(l, _)| if l > 0.0 { value / l } else { 0.0 });
        let shown_limit = limit
            .map(|(l, name)| format!("{} ({name})", fmt(l)))
            .unwrap_or_default();
        println!(
            "| {scenario} | {backend} | {what} | {} {unit} | {shown_limit} | {} | {} |",
            fmt(value),
            ratio
                .map(|r| format!("{:.0} %", r * 100.0))
                .unwrap_or_default(),
            target.unwrap_or("")
        );
        self.rows.push(json!({
            "scenario": scenario, "backend": backend, "what": what, "value": value,
            "unit": unit, "limit": limit.map(|l| l.0), "limit_name": limit.map(|l| l.1),
            "ratio": ratio, "target": target,
        }));
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A short description of the machine and its load, for the report.
fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|l| l.trim().to_owned())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        "cpu": cpu,
        "memory": mem,
        "loadavg_at_start": load.trim(),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let machine = machine();
    println!("passerelle-bench — machine: {machine}");
    println!(
        "\n| scenario | backend | measurement | value | limit | ratio to limit | target |\n|---|---|---|---:|---:|---:|---|"
    );
    let mut report = Report::default();
    let started = std::time::Instant::now();
    let result = scenarios::run_all(&args, &mut report).await;
    if let Err(e) = &result {
        eprintln!("error: {e:#}");
    }
    std::fs::create_dir_all(&args.out)?;
    let out = args.out.join("results.json");
    let doc = json!({
        "machine": machine,
        "loadavg_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "quick": args.quick,
        "seconds": started.elapsed().as_secs_f64(),
        "error": result.as_ref().err().map(|e| format!("{e:#}")),
        "results": report.rows,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&doc)?)?;
    println!(
        "\nwrote {} ({:.0} s)",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    result
}
