//! Logging (`tracing`, text or JSON) and the panic hook.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;

use crate::config::{LogConfig, LogFormat};

/// Installs the global `tracing` subscriber (logs go to stderr). Calling it twice is
/// harmless: the second call is ignored (tests start several nodes in one process).
pub fn init(log: &LogConfig) {
    let filter = EnvFilter::try_new(&log.filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match log.format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    drop(result);
}

/// Replaces the panic message by one that says what to report and where.
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        eprintln!(
            "passerelle {} crashed (a bug). Please report it to the Passerelle issue tracker with the message above and the logs.",
            env!("CARGO_PKG_VERSION"),
        );
    }));
}
