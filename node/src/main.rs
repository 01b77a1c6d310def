//! `passerelle`: the node binary. Parses the command line and hands over to `cli`.

use std::process::ExitCode;

use clap::Parser as _;
use passerelle_node::cli::{self, Cli, exit};

/// jemalloc rather than glibc's malloc: measured with 1,000 partners, glibc kept every
/// byte of the ~1,000 closed outgoing connections (RSS unchanged after they closed, the
/// freed memory fragmented over its per-thread arenas), while jemalloc returned about
/// 27 MB to the system within seconds (BENCHMARKS.md, memory). It is the C libraries'
/// `malloc` too (SQLite's page caches and prepared statements), so one allocator returns
/// everything freed.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// jemalloc's options (a background thread returning freed pages after about a second)
// are built in by `.cargo/config.toml` (`JEMALLOC_SYS_WITH_MALLOC_CONF`). Measured with
// 1,000 partners: idle RSS 69 → 61 MB (BENCHMARKS.md, memory).

fn main() -> ExitCode {
    passerelle_node::telemetry::install_panic_hook();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let env = std::env::vars().collect();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(cli::execute(cli, env)) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(failure) => {
            eprintln!("error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
