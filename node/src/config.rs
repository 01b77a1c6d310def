//! The node's configuration: one typed [`Config`], documented once.
//!
//! Values come from three layers, later layers winning: the TOML file
//! (`--config`, `PASSERELLE_CONFIG`, or `./passerelle.toml` when it exists), then the
//! environment (`PASSERELLE_<SECTION>_<KEY>`, for example `PASSERELLE_SERVER_LISTEN`), then
//! the command line. Every key has a default, so a node runs with no configuration at all.
//! Secrets may be given as a path in the matching `*_file` key (for example
//! `database.url_file`), which systemd's `LoadCredential=` and container secrets provide.
//!
//! The doc comments of the structs below are the reference: [`example_toml`] turns them
//! into `deploy/passerelle.example.toml`, and a test keeps that file equal to the output.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use documented::{Documented, DocumentedFields};
use serde::{Deserialize, Serialize};
use url::Url;

/// Prefix of every configuration environment variable.
pub const ENV_PREFIX: &str = "PASSERELLE_";
/// Environment variable naming the configuration file.
pub const CONFIG_FILE_ENV: &str = "PASSERELLE_CONFIG";
/// Configuration file read when neither `--config` nor `PASSERELLE_CONFIG` is given, if it
/// exists.
pub const DEFAULT_CONFIG_FILE: &str = "passerelle.toml";

/// Passerelle node configuration.
///
/// Precedence: this file < environment variables (`PASSERELLE_<SECTION>_<KEY>`, for example
/// `PASSERELLE_SERVER_LISTEN=0.0.0.0:8080`) < command-line options. Every key is optional;
/// the values shown are the defaults. `passerelle check-config` prints the effective
/// configuration and where each value came from.
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, Documented, DocumentedFields,
)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server.
    pub server: ServerConfig,
    /// Database: embedded SQLite (default) or PostgreSQL.
    pub database: DatabaseConfig,
    /// Local files: data directory and the node's signing key.
    pub data: DataConfig,
    /// Logs.
    pub log: LogConfig,
    /// Federation with partner nodes.
    pub federation: FederationConfig,
}

/// `[server]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port the HTTP server binds to. Use `0.0.0.0:8080` behind a reverse proxy
    /// on another host; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Public base URL of the node, as partners and browsers reach it (https in
    /// production). Defaults to `http://<listen>`. Example: `https://rh.ville-exemple.fr`
    pub base_url: Option<Url>,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Time limit for handling one request, in seconds.
    pub request_timeout_secs: u64,
    /// Time given to in-flight requests to finish after SIGINT/SIGTERM, in seconds.
    pub shutdown_grace_secs: u64,
    /// Requests per second allowed to one client of the HR API, the console and the public
    /// pages (one API token or session, else one address); beyond, `429` with
    /// `Retry-After`. Health, readiness and metrics are not limited. Per process.
    pub rate_limit_per_second: u32,
    /// Burst above `rate_limit_per_second` a client may use at once.
    pub rate_limit_burst: u32,
    /// Reverse proxies (CIDR) whose `X-Forwarded-For` gives the client's address for rate
    /// limiting; other peers are the client themselves.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: None,
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            shutdown_grace_secs: 30,
            rate_limit_per_second: 50,
            rate_limit_burst: 200,
            trusted_proxies: vec!["127.0.0.1/32".to_owned(), "::1/128".to_owned()],
        }
    }
}

impl ServerConfig {
    /// The trusted proxies, parsed.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first entry that is not CIDR.
    pub fn trusted_proxy_ranges(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|r| {
                r.parse::<ipnet::IpNet>().map_err(|e| ConfigError::Invalid {
                    key: "server.trusted_proxies",
                    message: format!("{r:?} is not an address range: {e}"),
                    fix: "write ranges in CIDR notation, e.g. 127.0.0.1/32 or 10.0.0.0/8"
                        .to_owned(),
                })
            })
            .collect()
    }
}

/// `[database]` section.
#[derive(Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`. Defaults to
    /// `sqlite://<data.dir>/passerelle.db`. Several `passerelle serve` processes may share
    /// one PostgreSQL database. Example: `postgres://passerelle@127.0.0.1:5432/passerelle`
    pub url: Option<String>,
    /// File holding the database URL (a secret when it carries a password); replaces
    /// `url`. Example: `/run/credentials/passerelle.service/database_url`
    pub url_file: Option<PathBuf>,
    /// Largest number of open connections per process (default 8).
    pub max_connections: Option<u32>,
    /// Apply pending migrations when `passerelle serve` starts. With `false`, `serve` refuses
    /// to start on an older schema (exit code 4) until `passerelle migrate` has been run, so
    /// that an upgrade migrates as a separate, watched step.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: None,
            migrate_on_start: true,
        }
    }
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("url_file", &self.url_file)
            .field("max_connections", &self.max_connections)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

/// `[data]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory for the SQLite database and the key file; created at first start.
    pub dir: PathBuf,
    /// File holding the node's Ed25519 secret key (Multikey), mode 0600. Defaults to
    /// `<data.dir>/node-key.secret`. Example: `/var/lib/passerelle/node-key.secret`
    pub key_file: Option<PathBuf>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("passerelle-data"),
            key_file: None,
        }
    }
}

/// `[log]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Log format: `text` (for a terminal) or `json` (one object per line, for collectors).
    pub format: LogFormat,
    /// Log filter in `tracing` `EnvFilter` syntax; `RUST_LOG` is not read.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[federation]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DocumentedFields)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// DEVELOPMENT MODE: accept partner nodes on loopback addresses over plain http
    /// (`http://127.0.0.1:…`). Never enable in production; announced loudly at start.
    pub allow_http_loopback_peers: bool,
    /// Host names of partners allowed to resolve to private addresses (RFC 1918,
    /// `fc00::/7`, shared `100.64.0.0/10`), for collectivités that talk over an intranet
    /// such as the RIE. Loopback and link-local addresses stay refused. In the environment,
    /// a comma-separated list. Example: `["rh.agglo.rie.gouv.fr"]`
    pub private_network_hosts: Vec<String>,
    /// Private address ranges (CIDR) that partners may resolve to, as
    /// `private_network_hosts` but by address. Example: `["10.20.0.0/16"]`
    pub private_network_ranges: Vec<String>,
    /// Delivery workers per process: the largest number of deliveries in flight at once.
    pub delivery_concurrency: u32,
    /// Largest number of deliveries in flight at once to one partner inbox.
    pub per_inbox_concurrency: u32,
    /// Delay before the first retry of a failed delivery, in milliseconds; each retry
    /// doubles it (with jitter), up to `retry_cap_ms` (protocol §8.3).
    pub retry_base_ms: u64,
    /// Longest delay between two retries of a delivery, in milliseconds (default 6 h).
    pub retry_cap_ms: u64,
    /// Age after which a delivery that keeps failing is dead-lettered (kept, shown to the
    /// operator, replayable; the partner still recovers it by pulling our outbox), in
    /// seconds. The protocol forbids less than 72 hours in production (default 7 days).
    pub dead_letter_after_secs: u64,
    /// Wait before retrying, once, a delivery answered 401 (after refetching the
    /// partner's actor), in milliseconds (protocol §8.2: at least 60 s).
    pub auth_retry_delay_ms: u64,
    /// How often each process looks for due deliveries, received activities to process
    /// and pulls to run that another process created, in milliseconds. Work created by
    /// the same process starts at once.
    pub poll_interval_ms: u64,
    /// Interval between two pulls of each followed partner's outbox, in seconds (with
    /// jitter; protocol §9.3 recommends 15 minutes). Pulls also run at start, when a
    /// partner comes back and on demand.
    pub pull_interval_secs: u64,
    /// Connect timeout of outgoing requests (deliveries and fetches), in seconds.
    pub connect_timeout_secs: u64,
    /// Total timeout of outgoing requests, in seconds.
    pub request_timeout_secs: u64,
    /// Activities per second accepted on the inbox from one partner (by the origin of its
    /// signing key); beyond, `429` with `Retry-After`, which senders honour. Per process.
    pub inbox_rate_per_second: u32,
    /// Burst above `inbox_rate_per_second` a partner may use at once (a catch-up after an
    /// outage).
    pub inbox_rate_burst: u32,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            allow_http_loopback_peers: false,
            private_network_hosts: Vec::new(),
            private_network_ranges: Vec::new(),
            delivery_concurrency: 32,
            per_inbox_concurrency: 4,
            retry_base_ms: 10_000,
            retry_cap_ms: 6 * 3600 * 1000,
            dead_letter_after_secs: 7 * 24 * 3600,
            auth_retry_delay_ms: 60_000,
            poll_interval_ms: 1000,
            pull_interval_secs: 900,
            connect_timeout_secs: 10,
            request_timeout_secs: 30,
            inbox_rate_per_second: 500,
            inbox_rate_burst: 2000,
        }
    }
}

impl FederationConfig {
    /// The private ranges partners may resolve to, parsed.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first range that is not CIDR.
    pub fn private_ranges(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.private_network_ranges
            .iter()
            .map(|r| {
                r.parse::<ipnet::IpNet>().map_err(|e| ConfigError::Invalid {
                    key: "federation.private_network_ranges",
                    message: format!("{r:?} is not an address range: {e}"),
                    fix: "write ranges in CIDR notation, e.g. 10.20.0.0/16 or fd00:1::/48"
                        .to_owned(),
                })
            })
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for range in self.private_ranges()? {
            let a = range.network();
            if a.is_loopback() || range.contains(&std::net::IpAddr::from([127, 0, 0, 1])) {
                return Err(ConfigError::Invalid {
                    key: "federation.private_network_ranges",
                    message: format!("{range} covers loopback addresses"),
                    fix: "allow only intranet ranges; loopback peers are for development mode (federation.allow_http_loopback_peers)".to_owned(),
                });
            }
        }
        let positive: [(&'static str, u64, &str); 9] = [
            (
                "federation.inbox_rate_per_second",
                u64::from(self.inbox_rate_per_second),
                "500",
            ),
            (
                "federation.inbox_rate_burst",
                u64::from(self.inbox_rate_burst),
                "2000",
            ),
            (
                "federation.delivery_concurrency",
                u64::from(self.delivery_concurrency),
                "32",
            ),
            (
                "federation.per_inbox_concurrency",
                u64::from(self.per_inbox_concurrency),
                "4",
            ),
            ("federation.retry_base_ms", self.retry_base_ms, "10000"),
            ("federation.poll_interval_ms", self.poll_interval_ms, "1000"),
            (
                "federation.pull_interval_secs",
                self.pull_interval_secs,
                "900",
            ),
            (
                "federation.connect_timeout_secs",
                self.connect_timeout_secs,
                "10",
            ),
            (
                "federation.request_timeout_secs",
                self.request_timeout_secs,
                "30",
            ),
        ];
        for (key, value, default) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    message: "0 is not allowed here".to_owned(),
                    fix: format!("use a positive value (default {default})"),
                });
            }
        }
        if !self.allow_http_loopback_peers && self.dead_letter_after_secs < 72 * 3600 {
            return Err(ConfigError::Invalid {
                key: "federation.dead_letter_after_secs",
                message: format!(
                    "{} s is less than the 72 hours the protocol requires before a delivery is given up (§8.3)",
                    self.dead_letter_after_secs
                ),
                fix: "use at least 259200 (default 604800, 7 days)".to_owned(),
            });
        }
        if self.retry_cap_ms < self.retry_base_ms {
            return Err(ConfigError::Invalid {
                key: "federation.retry_cap_ms",
                message: format!(
                    "the cap ({} ms) is below the first delay ({} ms)",
                    self.retry_cap_ms, self.retry_base_ms
                ),
                fix: "set retry_cap_ms at least to retry_base_ms (defaults 21600000 and 10000)"
                    .to_owned(),
            });
        }
        Ok(())
    }
}

/// Where a configuration value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// The configuration file.
    File,
    /// An environment variable.
    Env,
    /// A command-line option.
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Default => "default",
            Origin::File => "file",
            Origin::Env => "environment",
            Origin::CommandLine => "command line",
        })
    }
}

/// Configuration errors. Each names the key and says how to fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error(
        "cannot read configuration file {path}: {cause}; check the path given to --config or PASSERELLE_CONFIG"
    )]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, not a separate source).
        cause: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Parser message, with line and column.
        message: String,
    },
    /// An unknown section at the top of the file.
    #[error("unknown section [{section}] in {origin}; known sections: {known}")]
    UnknownSection {
        /// The section name.
        section: String,
        /// Where it was found.
        origin: Origin,
        /// The valid names.
        known: String,
    },
    /// A section has an unknown key or a value of the wrong type.
    #[error(
        "invalid [{section}] section: {message}; see deploy/passerelle.example.toml for every key"
    )]
    Section {
        /// The section name.
        section: String,
        /// The deserializer's message, naming the field.
        message: String,
    },
    /// An environment variable with our prefix that matches no key.
    #[error("unknown environment variable {var}; known variables: {known}")]
    UnknownEnv {
        /// The variable.
        var: String,
        /// The valid names.
        known: String,
    },
    /// An environment variable whose value has the wrong type.
    #[error("environment variable {var}={value:?} is not {expected}")]
    InvalidEnv {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A key has an invalid value.
    #[error("{key}: {message}; fix: {fix}")]
    Invalid {
        /// Dotted key, e.g. `database.url`.
        key: &'static str,
        /// What is wrong.
        message: String,
        /// How to fix it.
        fix: String,
    },
    /// A `*_file` secret could not be read.
    #[error(
        "{key}: cannot read secret file {path}: {cause}; check the path and that the node's user may read it"
    )]
    SecretFile {
        /// Dotted key, e.g. `database.url_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause (part of the message, not a separate source).
        cause: std::io::Error,
    },
}

/// Section names, in file order.
const SECTIONS: &[&str] = &["server", "database", "data", "log", "federation"];

/// Values given on the command line; they override the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--base-url`.
    pub base_url: Option<Url>,
    /// `--database-url`.
    pub database_url: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
    /// `--allow-http-loopback-peers`.
    pub allow_http_loopback_peers: bool,
}

/// A loaded configuration with the origin of every value that was set.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Dotted key → origin, for every key not left at its default.
    pub origins: BTreeMap<String, Origin>,
}

impl Config {
    /// Loads the configuration from the file, the environment and the command line.
    ///
    /// `file` is the explicit `--config` path; `env` is the process environment (passed in
    /// so tests stay isolated). Secrets are resolved and the result validated.
    ///
    /// # Errors
    /// Any [`ConfigError`]: unreadable file, bad syntax, unknown key or variable, bad value.
    pub fn load(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        cli: &CliOverrides,
    ) -> Result<Loaded, ConfigError> {
        let mut origins = BTreeMap::new();
        let file = match file {
            Some(p) => Some(p.to_path_buf()),
            None => match env.get(CONFIG_FILE_ENV) {
                Some(p) => Some(PathBuf::from(p)),
                None => {
                    let p = PathBuf::from(DEFAULT_CONFIG_FILE);
                    p.exists().then_some(p)
                }
            },
        };
        let mut table = match &file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|cause| ConfigError::ReadFile {
                        path: path.clone(),
                        cause,
                    })?;
                let table: toml::Table =
                    toml::from_str(&text).map_err(|e| ConfigError::Syntax {
                        path: path.clone(),
                        message: e.to_string().trim().replace('\n', " "),
                    })?;
                for (section, value) in &table {
                    if !SECTIONS.contains(&section.as_str()) {
                        return Err(ConfigError::UnknownSection {
                            section: section.clone(),
                            origin: Origin::File,
                            known: SECTIONS.join(", "),
                        });
                    }
                    if let toml::Value::Table(t) = value {
                        for key in t.keys() {
                            origins.insert(format!("{section}.{key}"), Origin::File);
                        }
                    }
                }
                table
            }
            None => toml::Table::new(),
        };
        apply_env(&mut table, env, &mut origins)?;
        apply_cli(&mut table, cli, &mut origins);
        let mut config = Config::default();
        for section in SECTIONS {
            let Some(value) = table.remove(*section) else {
                continue;
            };
            let err = |e: toml::de::Error| ConfigError::Section {
                section: (*section).to_owned(),
                message: e.message().to_owned(),
            };
            match *section {
                "server" => config.server = value.try_into().map_err(err)?,
                "database" => config.database = value.try_into().map_err(err)?,
                "data" => config.data = value.try_into().map_err(err)?,
                "log" => config.log = value.try_into().map_err(err)?,
                _ => config.federation = value.try_into().map_err(err)?,
            }
        }
        config.resolve_secrets()?;
        config.validate()?;
        Ok(Loaded {
            config,
            file,
            origins,
        })
    }

    /// Replaces `*_file` keys by the secrets they point to.
    fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = self.database.url_file.take() {
            if self.database.url.is_some() {
                return Err(ConfigError::Invalid {
                    key: "database.url_file",
                    message: "both database.url and database.url_file are set".to_owned(),
                    fix: "keep only one of them".to_owned(),
                });
            }
            let text = std::fs::read_to_string(&path).map_err(|cause| ConfigError::SecretFile {
                key: "database.url_file",
                path: path.clone(),
                cause,
            })?;
            self.database.url = Some(text.trim().to_owned());
            self.database.url_file = Some(path);
        }
        Ok(())
    }

    /// Checks values that the types alone do not constrain.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key and its fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.server.base_url {
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(ConfigError::Invalid {
                    key: "server.base_url",
                    message: format!("{url} is not an http(s) URL with a host"),
                    fix: "use a URL such as https://rh.ville-exemple.fr".to_owned(),
                });
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(ConfigError::Invalid {
                    key: "server.base_url",
                    message: format!("{url} has a query or a fragment"),
                    fix: "give only scheme, host, port and optional path".to_owned(),
                });
            }
            if url.scheme() == "http" && !is_loopback_url(url) {
                return Err(ConfigError::Invalid {
                    key: "server.base_url",
                    message: format!("{url} uses plain http on a non-loopback host"),
                    fix: "use https (terminate TLS in a reverse proxy) or a loopback address for local tests".to_owned(),
                });
            }
        }
        if let Some(url) = &self.database.url {
            DatabaseKind::from_url(url)?;
        }
        if self.database.max_connections == Some(0) {
            return Err(ConfigError::Invalid {
                key: "database.max_connections",
                message: "0 connections cannot serve any request".to_owned(),
                fix: "remove the key or set a value of 1 or more".to_owned(),
            });
        }
        if self.server.body_limit_bytes < 1024 {
            return Err(ConfigError::Invalid {
                key: "server.body_limit_bytes",
                message: format!(
                    "{} bytes is too small for any request",
                    self.server.body_limit_bytes
                ),
                fix: "use at least 1024 (the default is 1048576)".to_owned(),
            });
        }
        if self.server.request_timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "server.request_timeout_secs",
                message: "a zero timeout fails every request".to_owned(),
                fix: "use a positive number of seconds (default 30)".to_owned(),
            });
        }
        if self.server.rate_limit_per_second == 0 || self.server.rate_limit_burst == 0 {
            return Err(ConfigError::Invalid {
                key: "server.rate_limit_per_second",
                message: "a zero rate or burst refuses every request".to_owned(),
                fix: "use positive values (defaults 50 and 200)".to_owned(),
            });
        }
        self.server.trusted_proxy_ranges()?;
        self.federation.validate()?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(ConfigError::Invalid {
                key: "log.filter",
                message: format!("{:?} is not a valid filter: {e}", self.log.filter),
                fix: "use a level (info, debug) or directives such as `info,passerelle_node=debug`"
                    .to_owned(),
            });
        }
        Ok(())
    }

    /// The database URL in effect (the default is SQLite in the data directory).
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data.dir.join("passerelle.db").display()),
        }
    }

    /// The key file in effect.
    pub fn key_file(&self) -> PathBuf {
        self.data
            .key_file
            .clone()
            .unwrap_or_else(|| self.data.dir.join("node-key.secret"))
    }

    /// The public base URL in effect, without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.server.base_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.server.listen),
        }
    }
}

/// Database backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl DatabaseKind {
    /// Picks the backend from the URL scheme.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] on any other scheme.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(ConfigError::Invalid {
                key: "database.url",
                message: format!("unsupported database URL {:?}", redact_url(url)),
                fix: "use sqlite://PATH or postgres://USER@HOST:PORT/DB".to_owned(),
            })
        }
    }
}

/// Hides the password of a URL, for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// Kind of value of a key, for parsing environment variables.
#[derive(Debug, Clone, Copy)]
enum KeyType {
    Str,
    Bool,
    Int,
    List,
}

/// Every `(section, key, type)`, taken from the documented structs.
fn all_keys() -> Vec<(&'static str, &'static str, KeyType)> {
    let example = example_config();
    let mut keys = Vec::new();
    for (section, names) in section_field_names() {
        let table = section_table(&example, section);
        for name in names {
            let ty = match table.get(*name) {
                Some(toml::Value::Boolean(_)) => KeyType::Bool,
                Some(toml::Value::Integer(_)) => KeyType::Int,
                Some(toml::Value::Array(_)) => KeyType::List,
                _ => KeyType::Str,
            };
            keys.push((section, *name, ty));
        }
    }
    keys
}

fn section_field_names() -> [(&'static str, &'static [&'static str]); 5] {
    [
        ("server", ServerConfig::FIELD_NAMES),
        ("database", DatabaseConfig::FIELD_NAMES),
        ("data", DataConfig::FIELD_NAMES),
        ("log", LogConfig::FIELD_NAMES),
        ("federation", FederationConfig::FIELD_NAMES),
    ]
}

fn section_docs(section: &str) -> &'static [&'static str] {
    match section {
        "server" => ServerConfig::FIELD_DOCS,
        "database" => DatabaseConfig::FIELD_DOCS,
        "data" => DataConfig::FIELD_DOCS,
        "log" => LogConfig::FIELD_DOCS,
        _ => FederationConfig::FIELD_DOCS,
    }
}

fn section_table(config: &Config, section: &str) -> toml::Table {
    match toml::Table::try_from(config) {
        Ok(mut t) => match t.remove(section) {
            Some(toml::Value::Table(s)) => s,
            _ => toml::Table::new(),
        },
        Err(_) => toml::Table::new(),
    }
}

/// The environment variable for a key.
pub fn env_var(section: &str, key: &str) -> String {
    format!(
        "{ENV_PREFIX}{}_{}",
        section.to_uppercase(),
        key.to_uppercase()
    )
}

fn apply_env(
    table: &mut toml::Table,
    env: &BTreeMap<String, String>,
    origins: &mut BTreeMap<String, Origin>,
) -> Result<(), ConfigError> {
    let keys = all_keys();
    // Only variables naming one of our sections are configuration (and a typo there is an
    // error); other `PASSERELLE_*` variables belong to tools around the node (test harness,
    // interop helpers) and are ignored.
    let section_prefixes: Vec<String> = keys
        .iter()
        .map(|(s, _, _)| format!("{ENV_PREFIX}{}_", s.to_uppercase()))
        .collect();
    for (var, value) in env {
        if var == CONFIG_FILE_ENV || !section_prefixes.iter().any(|p| var.starts_with(p)) {
            continue;
        }
        let Some((section, key, ty)) = keys.iter().find(|(s, k, _)| env_var(s, k) == *var) else {
            return Err(ConfigError::UnknownEnv {
                var: var.clone(),
                known: keys
                    .iter()
                    .map(|(s, k, _)| env_var(s, k))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let parsed = match ty {
            KeyType::Str => toml::Value::String(value.clone()),
            KeyType::Bool => match value.as_str() {
                "true" | "1" | "yes" => toml::Value::Boolean(true),
                "false" | "0" | "no" => toml::Value::Boolean(false),
                _ => {
                    return Err(ConfigError::InvalidEnv {
                        var: var.clone(),
                        value: value.clone(),
                        expected: "a boolean (true or false)",
                    });
                }
            },
            KeyType::List => toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| toml::Value::String(v.to_owned()))
                    .collect(),
            ),
            KeyType::Int => match value.parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => {
                    return Err(ConfigError::InvalidEnv {
                        var: var.clone(),
                        value: value.clone(),
                        expected: "a whole number",
                    });
                }
            },
        };
        set(table, section, key, parsed);
        origins.insert(format!("{section}.{key}"), Origin::Env);
    }
    Ok(())
}

fn apply_cli(table: &mut toml::Table, cli: &CliOverrides, origins: &mut BTreeMap<String, Origin>) {
    let mut put = |section: &str, key: &str, value: toml::Value| {
        set(table, section, key, value);
        origins.insert(format!("{section}.{key}"), Origin::CommandLine);
    };
    if let Some(v) = cli.listen {
        put("server", "listen", toml::Value::String(v.to_string()));
    }
    if let Some(v) = &cli.base_url {
        put("server", "base_url", toml::Value::String(v.to_string()));
    }
    if let Some(v) = &cli.database_url {
        put("database", "url", toml::Value::String(v.clone()));
    }
    if let Some(v) = &cli.data_dir {
        put("data", "dir", toml::Value::String(v.display().to_string()));
    }
    if let Some(v) = cli.log_format {
        let s = match v {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        put("log", "format", toml::Value::String(s.to_owned()));
    }
    if cli.allow_http_loopback_peers {
        put(
            "federation",
            "allow_http_loopback_peers",
            toml::Value::Boolean(true),
        );
    }
}

fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let entry = table
        .entry(section.to_owned())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let toml::Value::Table(t) = entry {
        t.insert(key.to_owned(), value);
    } else {
        let mut t = toml::Table::new();
        t.insert(key.to_owned(), value);
        *entry = toml::Value::Table(t);
    }
}

/// The defaults, with an example value for each optional key (taken from its doc
/// comment's `Example:`), used for the example file and for key types.
fn example_config() -> Config {
    let mut c = Config::default();
    c.server.base_url = Url::parse("https://rh.ville-exemple.fr").ok();
    c.database.url = Some("postgres://passerelle@127.0.0.1:5432/passerelle".to_owned());
    c.database.url_file = Some(PathBuf::from(
        "/run/credentials/passerelle.service/database_url",
    ));
    c.database.max_connections = Some(8);
    c.data.key_file = Some(PathBuf::from("/var/lib/passerelle/node-key.secret"));
    c.federation.private_network_hosts = vec!["rh.agglo.rie.gouv.fr".to_owned()];
    c.federation.private_network_ranges = vec!["10.20.0.0/16".to_owned()];
    c
}

/// Generates the example configuration file from the doc comments and defaults.
///
/// Keys without a default are written commented out, with their example value.
pub fn example_toml() -> String {
    let defaults = Config::default();
    let example = example_config();
    let mut out =
        String::from("# Generated by `passerelle check-config --example`; do not edit by hand.\n");
    for line in Config::DOCS.lines() {
        push_comment(&mut out, line);
    }
    for (section, names) in section_field_names() {
        out.push('\n');
        if let Ok(doc) = Config::get_field_docs(section) {
            for line in doc.lines() {
                push_comment(&mut out, line);
            }
        }
        out.push_str(&format!("[{section}]\n"));
        let dflt = section_table(&defaults, section);
        let ex = section_table(&example, section);
        let docs = section_docs(section);
        for (i, name) in names.iter().enumerate() {
            out.push('\n');
            if let Some(doc) = docs.get(i) {
                for line in doc.lines() {
                    push_comment(&mut out, line);
                }
            }
            out.push_str(&format!("# Environment: {}\n", env_var(section, name)));
            match (dflt.get(*name), ex.get(*name)) {
                (Some(v), _) => out.push_str(&format!("{name} = {v}\n")),
                (None, Some(v)) => out.push_str(&format!("# {name} = {v}\n")),
                (None, None) => out.push_str(&format!("# {name} =\n")),
            }
        }
    }
    out
}

fn push_comment(out: &mut String, line: &str) {
    if line.trim().is_empty() {
        out.push_str("#\n");
    } else {
        out.push_str("# ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("c.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn precedence_file_then_env_then_cli() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "[server]\nlisten = \"127.0.0.1:1111\"\nrequest_timeout_secs = 7\n[log]\nformat = \"json\"\n",
        );
        let e = env(&[("PASSERELLE_SERVER_LISTEN", "127.0.0.1:2222")]);
        let loaded = Config::load(Some(&file), &e, &CliOverrides::default()).unwrap();
        assert_eq!(loaded.config.server.listen.port(), 2222);
        assert_eq!(loaded.config.server.request_timeout_secs, 7);
        assert_eq!(loaded.config.log.format, LogFormat::Json);
        assert_eq!(loaded.origins["server.listen"], Origin::Env);
        assert_eq!(loaded.origins["server.request_timeout_secs"], Origin::File);
        let cli = CliOverrides {
            listen: Some("127.0.0.1:3333".parse().unwrap()),
            ..CliOverrides::default()
        };
        let loaded = Config::load(Some(&file), &e, &cli).unwrap();
        assert_eq!(loaded.config.server.listen.port(), 3333);
        assert_eq!(loaded.origins["server.listen"], Origin::CommandLine);
    }

    #[test]
    fn federation_settings_are_checked_with_the_key_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for (text, key) in [
            (
                "[federation]\ndead_letter_after_secs = 3600\n",
                "federation.dead_letter_after_secs",
            ),
            (
                "[federation]\nretry_base_ms = 5000\nretry_cap_ms = 100\n",
                "federation.retry_cap_ms",
            ),
            (
                "[federation]\nprivate_network_ranges = [\"10.0.0.0/33\"]\n",
                "federation.private_network_ranges",
            ),
            (
                "[federation]\nprivate_network_ranges = [\"127.0.0.0/8\"]\n",
                "federation.private_network_ranges",
            ),
            (
                "[federation]\ndelivery_concurrency = 0\n",
                "federation.delivery_concurrency",
            ),
        ] {
            let file = write(dir.path(), text);
            let msg = Config::load(Some(&file), &env(&[]), &CliOverrides::default())
                .unwrap_err()
                .to_string();
            assert!(msg.contains(key), "{text}: {msg}");
        }
        // Development mode may shorten the dead-letter delay (tests do).
        let file = write(
            dir.path(),
            "[federation]\nallow_http_loopback_peers = true\ndead_letter_after_secs = 1\n",
        );
        assert!(Config::load(Some(&file), &env(&[]), &CliOverrides::default()).is_ok());
        // Lists come from the environment as comma-separated values.
        let loaded = Config::load(
            None,
            &env(&[(
                "PASSERELLE_FEDERATION_PRIVATE_NETWORK_HOSTS",
                "a.rie.gouv.fr, b.rie.gouv.fr",
            )]),
            &CliOverrides::default(),
        )
        .unwrap();
        assert_eq!(
            loaded.config.federation.private_network_hosts,
            ["a.rie.gouv.fr", "b.rie.gouv.fr"]
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "[server]\nlisen = \"127.0.0.1:1\"\n");
        let err = Config::load(Some(&file), &env(&[]), &CliOverrides::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("[server]") && msg.contains("lisen"), "{msg}");
        let file = write(dir.path(), "[serveur]\n");
        let msg = Config::load(Some(&file), &env(&[]), &CliOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[serveur]") && msg.contains("server"), "{msg}");
        let msg = Config::load(
            None,
            &env(&[("PASSERELLE_SERVER_LISEN", "x")]),
            &CliOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("PASSERELLE_SERVER_LISEN") && msg.contains("PASSERELLE_SERVER_LISTEN"),
            "{msg}"
        );
    }

    /// Regression: CI exports `PASSERELLE_INTEROP_PYTHON` and `PASSERELLE_TEST_POSTGRES_URL`;
    /// a node started in that environment refused to start ("unknown environment variable").
    #[test]
    fn variables_outside_our_sections_are_ignored() {
        let e = env(&[
            ("PASSERELLE_INTEROP_PYTHON", "/tmp/venv/bin/python"),
            ("PASSERELLE_TEST_POSTGRES_URL", "postgres://x"),
            ("PASSERELLE_SERVER_LISTEN", "127.0.0.1:2223"),
        ]);
        let loaded = Config::load(None, &e, &CliOverrides::default()).unwrap();
        assert_eq!(loaded.config.server.listen.to_string(), "127.0.0.1:2223");
        let err = Config::load(
            None,
            &env(&[("PASSERELLE_DATABASE_URLL", "sqlite://x.db")]),
            &CliOverrides::default(),
        );
        assert!(
            err.is_err(),
            "a typo inside a known section is still refused"
        );
    }

    #[test]
    fn typed_env_values() {
        let e = env(&[
            ("PASSERELLE_FEDERATION_ALLOW_HTTP_LOOPBACK_PEERS", "true"),
            ("PASSERELLE_SERVER_BODY_LIMIT_BYTES", "4096"),
        ]);
        let c = Config::load(None, &e, &CliOverrides::default())
            .unwrap()
            .config;
        assert!(c.federation.allow_http_loopback_peers);
        assert_eq!(c.server.body_limit_bytes, 4096);
        let err = Config::load(
            None,
            &env(&[("PASSERELLE_SERVER_BODY_LIMIT_BYTES", "lots")]),
            &CliOverrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidEnv { .. }), "{err}");
    }

    #[test]
    fn secret_from_file_and_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("db_url");
        std::fs::write(&secret, "postgres://u:Zq9-secret-Zq9@127.0.0.1/db\n").unwrap();
        let e = env(&[("PASSERELLE_DATABASE_URL_FILE", secret.to_str().unwrap())]);
        let c = Config::load(None, &e, &CliOverrides::default())
            .unwrap()
            .config;
        assert_eq!(
            c.database.url.as_deref(),
            Some("postgres://u:Zq9-secret-Zq9@127.0.0.1/db")
        );
        // The password is not in the Debug form (a word that a random temporary path
        // cannot contain: "pw" once matched the temporary directory's name).
        assert!(!format!("{c:?}").contains("Zq9-secret-Zq9"));
        let mut both = e.clone();
        both.insert("PASSERELLE_DATABASE_URL".into(), "sqlite://x.db".into());
        let err = Config::load(None, &both, &CliOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("database.url_file"), "{err}");
        let missing = env(&[("PASSERELLE_DATABASE_URL_FILE", "/nonexistent/secret")]);
        let err = Config::load(None, &missing, &CliOverrides::default()).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::SecretFile {
                    key: "database.url_file",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_name_key_and_fix() {
        let cases = [
            ("PASSERELLE_DATABASE_URL", "mysql://x", "database.url"),
            (
                "PASSERELLE_SERVER_BASE_URL",
                "http://rh.example.fr",
                "server.base_url",
            ),
            (
                "PASSERELLE_SERVER_BODY_LIMIT_BYTES",
                "10",
                "server.body_limit_bytes",
            ),
            ("PASSERELLE_LOG_FILTER", "info,,=[", "log.filter"),
        ];
        for (var, value, key) in cases {
            let err =
                Config::load(None, &env(&[(var, value)]), &CliOverrides::default()).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with(key) && msg.contains("fix:"), "{var}: {msg}");
        }
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = Config::load(None, &env(&[]), &CliOverrides::default())
            .unwrap()
            .config;
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.base_url(), "http://127.0.0.1:8080");
        assert!(c.database_url().starts_with("sqlite://passerelle-data/"));
        assert!(!c.federation.allow_http_loopback_peers);
    }

    #[test]
    fn example_file_parses_to_defaults() {
        let text = example_toml();
        let parsed: Config = toml::from_str(&text).unwrap();
        assert_eq!(parsed, Config::default());
        // Every key is documented, with its environment variable.
        for (section, key, _) in all_keys() {
            assert!(text.contains(&env_var(section, key)), "{section}.{key}");
        }
    }
}
