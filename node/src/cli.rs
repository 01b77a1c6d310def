//! The command line: `passerelle demo | serve | init | check-config | migrate | backup |
//! restore | migrate-store | keys | token | user | partners | diagnostics | verify`.
//!
//! Errors are printed once, on one line (`error: …`), and the process exits with one of
//! the [`exit`] codes.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;
use url::Url;
use uuid::Uuid;

use crate::config::{CliOverrides, Config, ConfigError, LogFormat, Origin};
use crate::store::{AuditRecord, NodeIdentity, Role, Store};
use crate::{auth, keys};

mod demo;
mod partners;
pub use demo::DemoArgs;
pub use partners::PartnersCommand;

/// Exit codes of `passerelle`.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The command failed at run time (see the message).
    pub const FAILURE: u8 = 1;
    /// Bad command-line usage (unknown option, missing argument).
    pub const USAGE: u8 = 2;
    /// The configuration is invalid.
    pub const CONFIG: u8 = 3;
    /// The database is unreachable or its schema cannot be brought up to date.
    pub const DATABASE: u8 = 4;
}

const EXIT_CODES: &str = "Exit codes: 0 success, 1 failure, 2 usage error, 3 invalid configuration, 4 database unreachable or not migrated.\n\
Configuration precedence: file (--config, PASSERELLE_CONFIG or ./passerelle.toml) < environment (PASSERELLE_<SECTION>_<KEY>) < command line.";

/// Passerelle node: federated exchange of agents between French collectivités.
#[derive(Debug, Parser)]
#[command(name = "passerelle", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Overrides `data.dir`.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Overrides `database.url` (`sqlite://PATH` or `postgres://…`).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options of `serve` and `init` that shape the server.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Overrides `server.listen` (address:port; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Overrides `server.base_url`, the public URL of the node.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<Url>,
    /// DEVELOPMENT MODE: accept partner nodes on loopback addresses over plain http.
    #[arg(long)]
    pub allow_http_loopback_peers: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start three federated demo collectivités on this machine (Isère, Métropole,
    /// Grenoble) with partnerships and postings of every kind, and print their consoles.
    Demo(DemoArgs),
    /// Run the node (creates the data directory, database and key at first start).
    Serve(ServerArgs),
    /// Set up the node explicitly: data directory, database, key and identity.
    Init(InitArgs),
    /// Check the configuration and print the effective values and their origin.
    CheckConfig {
        /// Print the documented example configuration file instead.
        #[arg(long)]
        example: bool,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Write a consistent backup (database snapshot, key file, configuration, manifest)
    /// while the node runs.
    Backup {
        /// Output: a new or empty directory, or a new FILE.tar archive.
        #[arg(long, value_name = "DIR|FILE.tar")]
        out: PathBuf,
    },
    /// Restore a backup into the configured data directory and database, verify it and
    /// apply newer migrations. The node must be stopped.
    Restore {
        /// The backup: a directory or a .tar archive written by `passerelle backup`.
        from: PathBuf,
        /// Replace a non-empty data directory, key file or database.
        #[arg(long)]
        force: bool,
    },
    /// Copy every table of the configured database into another (empty) database, e.g.
    /// from SQLite to PostgreSQL. Stop the node first.
    MigrateStore {
        /// The new database: `postgres://USER:PASSWORD@HOST:PORT/DB` or `sqlite://PATH`.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Show or rotate the node's signing key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage HR accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage partnerships with other nodes (requests, policy, blocks, catch-up).
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// Print version, database and clock information for support requests.
    Diagnostics,
    /// Verify a signed document (a MAD convention) offline and say who signed it and when.
    #[command(
        after_help = "Keys come from actor documents embedded in the file (`actors`), from *.json actor documents next to it, from --actor and from --key.\nExit codes: 0 every signature valid (and both employers signed a convention), 10 invalid signature, 11 incomplete (one employer has not signed), 12 unreadable file or argument, 13 a key is missing."
    )]
    Verify {
        /// The signed JSON document.
        file: PathBuf,
        /// A public key: `z6Mk…` (tried on every proof) or `KEYID=z6Mk…`. Repeatable.
        #[arg(long = "key", value_name = "MULTIKEY")]
        keys: Vec<String>,
        /// An actor document (Organization JSON) whose keys to use. Repeatable.
        #[arg(long = "actor", value_name = "FILE")]
        actors: Vec<PathBuf>,
    },
}

/// `passerelle init` options.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Name of the collectivité, e.g. "Ville de Grenoble".
    #[arg(long)]
    pub name: String,
    /// SIREN of the collectivité (9 digits).
    #[arg(long)]
    pub siren: String,
    /// Kind: commune, departement, region, cdg, communaute_communes…
    #[arg(long, default_value = "commune")]
    pub kind: String,
    /// WebFinger account name; defaults to a slug of the name.
    #[arg(long)]
    pub username: Option<String>,
    /// Replace an existing identity.
    #[arg(long)]
    pub force: bool,
    /// Server options written into the new configuration file.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `passerelle keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the node's public keys.
    Show,
    /// Generate a new key and tell partners (an `Update` of the actor). The old key
    /// expires now and stays published 400 days, so older proofs still verify.
    Rotate {
        /// Days the old key may still sign requests (for processes sharing the database
        /// that cannot load the new key file at once); 0 follows the protocol.
        #[arg(long, default_value_t = 0)]
        grace_days: u32,
        /// The current key may be compromised: mark it `revoked` (partners then refuse
        /// whatever it signs, whatever its date) instead of merely expired.
        #[arg(long, conflicts_with = "grace_days")]
        compromised: bool,
    },
    /// Declare a former key compromised (`revoked` in the actor document, §3.3).
    Revoke {
        /// The key id (`key-…`, from `passerelle keys show`).
        key_id: String,
    },
}

/// `passerelle token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token; its secret is printed once.
    Create {
        /// Label: who or what uses the token.
        #[arg(long)]
        name: String,
        /// Role granted.
        #[arg(long, value_parser = parse_role, default_value = "admin")]
        role: Role,
        /// Expiry in days (never by default).
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// List API tokens (never their secrets).
    List,
    /// Revoke an API token.
    Revoke {
        /// Token id, from `passerelle token list`.
        id: Uuid,
    },
}

/// `passerelle user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an HR account. The password is read from --password-file or from the first
    /// line of standard input.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Role.
        #[arg(long, value_parser = parse_role, default_value = "rh")]
        role: Role,
        /// File holding the password.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role {s:?}; use admin, rh or lecteur"))
}

/// A command failure: the error and the exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code, one of [`exit`].
    pub code: u8,
    /// The error (printed once, with its causes on one line).
    pub error: anyhow::Error,
}

impl Failure {
    /// A failure with its exit code.
    pub(crate) fn new(code: u8, error: impl Into<anyhow::Error>) -> Self {
        Self {
            code,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self {
            code: exit::FAILURE,
            error,
        }
    }
}

impl From<keys::KeyFileError> for Failure {
    fn from(e: keys::KeyFileError) -> Self {
        Self::new(exit::FAILURE, e)
    }
}

type CliResult = Result<(), Failure>;

impl Cli {
    fn overrides(&self) -> CliOverrides {
        let server = match &self.command {
            Command::Serve(s) => Some(s),
            Command::Init(i) => Some(&i.server),
            _ => None,
        };
        CliOverrides {
            listen: server.and_then(|s| s.listen),
            base_url: server.and_then(|s| s.base_url.clone()),
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
            allow_http_loopback_peers: server.is_some_and(|s| s.allow_http_loopback_peers),
        }
    }
}

/// Runs a parsed command line with the given environment.
///
/// # Errors
/// A [`Failure`] with the exit code to use.
pub async fn execute(cli: Cli, env: BTreeMap<String, String>) -> CliResult {
    if let Command::Verify { file, keys, actors } = &cli.command {
        return verify(file, keys, actors);
    }
    if let Command::Demo(args) = &cli.command {
        return demo::run(args.clone()).await;
    }
    if let Command::CheckConfig { example: true } = cli.command {
        print!("{}", crate::config::example_toml());
        return Ok(());
    }
    let loaded =
        Config::load(cli.config.as_deref(), &env, &cli.overrides()).map_err(config_failure)?;
    let config = loaded.config.clone();
    match cli.command {
        Command::Serve(_) => {
            crate::telemetry::init(&config.log);
            serve(config).await
        }
        Command::Init(args) => init(config, args, cli.config.clone()).await,
        Command::CheckConfig { .. } => {
            print_config(&loaded);
            Ok(())
        }
        Command::Migrate => {
            // Connect only: the schema being out of date is why this command runs.
            let store = connect_store(&config).await?;
            store
                .migrate()
                .await
                .map_err(|e| Failure::new(exit::DATABASE, e))?;
            let status = store
                .migration_status()
                .await
                .map_err(|e| Failure::new(exit::DATABASE, e))?;
            println!("migrations: {}/{} applied", status.applied, status.known);
            Ok(())
        }
        Command::Backup { out } => {
            let summary = crate::ops::backup::backup(&config, loaded.file.as_deref(), &out).await?;
            crate::ops::backup::print_backup(&summary);
            Ok(())
        }
        Command::Restore { from, force } => {
            let summary = crate::ops::backup::restore(&config, &from, force).await?;
            crate::ops::backup::print_restore(&summary);
            Ok(())
        }
        Command::MigrateStore { to } => {
            let report = crate::ops::migrate_store::migrate_store(&config, &to).await?;
            crate::ops::migrate_store::print_report(&report, &to);
            Ok(())
        }
        Command::Keys(cmd) => keys_command(config, cmd).await,
        Command::Token(cmd) => token_command(config, cmd).await,
        Command::User(cmd) => user_command(config, cmd).await,
        Command::Partners(cmd) => partners::run(config, cmd).await,
        Command::Diagnostics => diagnostics(config).await,
        Command::Verify { file, keys, actors } => verify(&file, &keys, &actors),
        Command::Demo(args) => demo::run(args).await,
    }
}

fn config_failure(e: ConfigError) -> Failure {
    Failure::new(
        exit::CONFIG,
        anyhow::Error::new(e).context("invalid configuration"),
    )
}

fn print_config(loaded: &crate::config::Loaded) {
    match &loaded.file {
        Some(f) => println!("# configuration file: {}", f.display()),
        None => println!("# no configuration file (defaults, environment and command line only)"),
    }
    println!("# configuration is valid; effective values (origin in the comment):");
    let mut shown = loaded.config.clone();
    // Never print a secret: the URL's password is masked.
    shown.database.url = shown.database.url.as_deref().map(crate::config::redact_url);
    let table = toml::Table::try_from(&shown).unwrap_or_default();
    for (section, value) in &table {
        println!("\n[{section}]");
        if let toml::Value::Table(t) = value {
            for (key, v) in t {
                let origin = loaded
                    .origins
                    .get(&format!("{section}.{key}"))
                    .copied()
                    .unwrap_or(Origin::Default);
                println!("{key} = {v}  # {origin}");
            }
        }
    }
    println!(
        "\n# database in use: {}",
        crate::config::redact_url(&loaded.config.database_url())
    );
    println!("# key file: {}", loaded.config.key_file().display());
    println!("# public base URL: {}", loaded.config.base_url());
}

/// Creates the data directory when the default SQLite database or key file lives there.
fn ensure_data_dir(config: &Config) -> Result<(), Failure> {
    let dir = &config.data.dir;
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| {
            format!(
                "cannot create the data directory {} (data.dir)",
                dir.display()
            )
        })
        .map_err(Failure::from)
}

/// Connects to the configured database without looking at its schema.
async fn connect_store(config: &Config) -> Result<Store, Failure> {
    ensure_data_dir(config)?;
    let url = config.database_url();
    Store::connect(&url, config.database.max_connections.unwrap_or(8))
        .await
        .map_err(|e| {
            Failure::new(
                exit::DATABASE,
                anyhow::Error::new(e).context(format!(
                    "cannot open the database {} (database.url)",
                    crate::config::redact_url(&url)
                )),
            )
        })
}

/// Opens the store; with `migrate`, applies migrations. Without, a database on an older
/// schema is refused (exit 4, naming `passerelle migrate`); an empty one is initialised.
pub(crate) async fn open_store(config: &Config, migrate: bool) -> Result<Store, Failure> {
    let store = connect_store(config).await?;
    if migrate {
        store
            .migrate()
            .await
            .map_err(|e| Failure::new(exit::DATABASE, e))?;
    } else {
        let status = store
            .migration_status()
            .await
            .map_err(|e| Failure::new(exit::DATABASE, e))?;
        if status.applied < status.known && !matches!(status.applied, 0) {
            return Err(Failure::new(
                exit::DATABASE,
                anyhow::anyhow!(
                    "the database schema is not up to date ({}/{} migrations applied); run `passerelle migrate`",
                    status.applied,
                    status.known
                ),
            ));
        }
        if status.applied == 0 {
            store
                .migrate()
                .await
                .map_err(|e| Failure::new(exit::DATABASE, e))?;
        }
    }
    Ok(store)
}

async fn serve(config: Config) -> CliResult {
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (server.listen); is another process using the port? Choose another with --listen",
                config.server.listen
            )
        })?;
    let shutdown = shutdown_signal();
    // Check the database first, so that this failure gets its own exit code; without
    // `database.migrate_on_start`, an older schema stops here (exit 4).
    open_store(&config, config.database.migrate_on_start)
        .await?
        .close()
        .await;
    crate::run(config, listener, shutdown)
        .await
        .map_err(Failure::from)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this function is
/// called (not when the future is first polled), so a signal that arrives while the
/// node is starting still stops it gracefully.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut term, mut int) = signals;
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = term => {},
                () = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; finishing in-flight requests");
    }
}

fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.to_lowercase().chars() {
        let c = match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').chars().take(64).collect()
}

async fn init(config: Config, args: InitArgs, config_path: Option<PathBuf>) -> CliResult {
    let body = crate::http::api::NodeIdentityBody {
        name: args.name.clone(),
        siren: args.siren.clone(),
        kind: args.kind.clone(),
        username: args.username.clone().unwrap_or_else(|| slug(&args.name)),
    };
    let identity: NodeIdentity = crate::http::api::check_identity(&body).map_err(|e| {
        let detail = match &e {
            crate::http::error::AppError::Validation { errors, .. } => errors
                .iter()
                .map(|f| format!("--{}: {}", f.field.replace('_', "-"), f.message))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        Failure::new(exit::USAGE, anyhow::anyhow!("invalid identity: {detail}"))
    })?;
    let store = open_store(&config, true).await?;
    let key = keys::load_and_register(&store, &config.key_file()).await?;
    let audit = AuditRecord::new("cli", "node.init", "node");
    if args.force {
        store
            .set_identity(&identity, &audit)
            .await
            .map_err(anyhow::Error::new)?;
    } else if !store
        .init_identity(&identity, &audit)
        .await
        .map_err(anyhow::Error::new)?
    {
        let current = store.identity().await.map_err(anyhow::Error::new)?;
        return Err(Failure::from(anyhow::anyhow!(
            "the node is already initialised as {:?} (SIREN {}); add --force to replace its identity",
            current.name,
            current.siren
        )));
    }
    // Record the server options in a configuration file, when given and none exists.
    if args.server.base_url.is_some() || args.server.listen.is_some() {
        let path = config_path.unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_CONFIG_FILE));
        if path.exists() {
            println!(
                "configuration file {} exists; left unchanged",
                path.display()
            );
        } else {
            let mut text = String::from(
                "# Written by `passerelle init`; see deploy/passerelle.example.toml for every key.\n[server]\n",
            );
            if let Some(l) = args.server.listen {
                text.push_str(&format!("listen = \"{l}\"\n"));
            }
            if let Some(u) = &args.server.base_url {
                text.push_str(&format!("base_url = \"{u}\"\n"));
            }
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote configuration file {}", path.display());
        }
    }
    println!(
        "node initialised: {} (SIREN {}, {}), account acct:{}",
        identity.name, identity.siren, identity.kind, identity.username
    );
    println!(
        "database: {}",
        crate::config::redact_url(&config.database_url())
    );
    println!(
        "signing key: {} in {}",
        key.key_id,
        config.key_file().display()
    );
    match auth::bootstrap_token(&store)
        .await
        .map_err(anyhow::Error::new)?
    {
        Some(secret) => print_bootstrap(&secret),
        None => println!(
            "admin credentials already exist; create more with `passerelle token create` or `passerelle user create`"
        ),
    }
    store.close().await;
    Ok(())
}

/// Prints the one-time admin token.
pub(crate) fn print_bootstrap(secret: &str) {
    println!("first start: one-time admin token (valid 7 days, shown only now):");
    println!("    {secret}");
    println!(
        "use it as `Authorization: Bearer <token>`, then create accounts with `passerelle user create --role admin`"
    );
}

async fn keys_command(config: Config, cmd: KeysCommand) -> CliResult {
    let store = open_store(&config, true).await?;
    match cmd {
        KeysCommand::Show => {
            let _ = keys::load_and_register(&store, &config.key_file()).await?;
            for k in store.keys().await.map_err(anyhow::Error::new)? {
                let state = if k.current {
                    "current".to_owned()
                } else if let Some(r) = k.revoked_at {
                    format!("revoked {}", fmt_time(r))
                } else {
                    match k.expires_at {
                        Some(e) => format!("expires {}", fmt_time(e)),
                        None => "retired".to_owned(),
                    }
                };
                println!("{}\t{}\t{}", k.key_id, k.public_key_multibase, state);
            }
        }
        KeysCommand::Rotate {
            grace_days,
            compromised,
        } => {
            let previous = keys::load_and_register(&store, &config.key_file())
                .await?
                .key_id;
            let key = keys::rotate(
                &store,
                &config.key_file(),
                time::Duration::days(i64::from(grace_days)),
                "cli",
            )
            .await?;
            println!(
                "new current key {} ({}) written to {}",
                key.key_id,
                key.public_key_multibase,
                config.key_file().display()
            );
            if compromised {
                let audit = AuditRecord::new("cli", "key.revoke", format!("key:{previous}"));
                store
                    .revoke_key(&previous, &audit)
                    .await
                    .map_err(anyhow::Error::new)?;
                println!(
                    "key {previous} is marked revoked: partners refuse whatever it signs (re-publish live postings so that they are signed with the new key)"
                );
            } else {
                println!(
                    "the previous key expires in {grace_days} day(s) and stays published 400 days after that, so proofs made with it still verify"
                );
            }
            println!("{}", announce_actor_update(&config, &store).await?);
            println!(
                "processes sharing this database switch to the new key within seconds when they read the same key file; give the others a copy"
            );
        }
        KeysCommand::Revoke { key_id } => {
            let audit = AuditRecord::new("cli", "key.revoke", format!("key:{key_id}"));
            store
                .revoke_key(&key_id, &audit)
                .await
                .map_err(anyhow::Error::new)?;
            println!(
                "key {key_id} is marked revoked; {}",
                announce_actor_update(&config, &store).await?
            );
        }
    }
    store.close().await;
    Ok(())
}

/// Sends partners an `Update` of our actor (after a key rotation): a hint that makes
/// them refetch it (§3.2). Returns what happened, for the operator.
async fn announce_actor_update(config: &Config, store: &Store) -> Result<String, Failure> {
    if store.identity().await.is_err() {
        return Ok("the node has no identity yet, so no partner to tell".to_owned());
    }
    let key = keys::load_and_register(store, &config.key_file()).await?;
    let state = crate::state::AppState::new(config, store.clone(), key)?;
    let actor = crate::http::discovery::actor_document(&state)
        .await
        .map_err(|e| Failure::from(anyhow::anyhow!("cannot build the actor document: {e}")))?;
    let fed = state.federation();
    let act = fed
        .activity(
            passerelle_protocol::vocab::ActivityType::Update,
            passerelle_protocol::vocab::ObjectRef::Embedded(Box::new(
                passerelle_protocol::vocab::Message::Organization(Box::new(actor)),
            )),
            vec![fed.followers_url()],
            Vec::new(),
        )
        .map_err(anyhow::Error::new)?;
    let audit = AuditRecord::new("cli", "actor.update", "node");
    store
        .append_activity(&act, Some(&audit))
        .await
        .map_err(anyhow::Error::new)?;
    Ok("partners are told by an Update of the actor (delivered by the running node)".to_owned())
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

async fn token_command(config: Config, cmd: TokenCommand) -> CliResult {
    let store = open_store(&config, true).await?;
    match cmd {
        TokenCommand::Create {
            name,
            role,
            expires_days,
        } => {
            let expires = expires_days
                .map(|d| OffsetDateTime::now_utc() + time::Duration::days(i64::from(d)));
            let (token, secret) = auth::create_token(&store, &name, role, expires, "cli")
                .await
                .map_err(anyhow::Error::new)?;
            println!(
                "token {} ({}, role {}) created; its secret is shown only now:",
                token.id, token.name, token.role
            );
            println!("{secret}");
        }
        TokenCommand::List => {
            for t in store.tokens().await.map_err(anyhow::Error::new)? {
                let state = match t.revoked_at {
                    Some(r) => format!("revoked {}", fmt_time(r)),
                    None => match t.expires_at {
                        Some(e) if e <= OffsetDateTime::now_utc() => {
                            format!("expired {}", fmt_time(e))
                        }
                        _ => "active".to_owned(),
                    },
                };
                println!("{}\t{}\t{}\t{}", t.id, t.name, t.role, state);
            }
        }
        TokenCommand::Revoke { id } => {
            store
                .revoke_token(
                    id,
                    &AuditRecord::new("cli", "token.revoke", format!("token:{id}")),
                )
                .await
                .map_err(|e| {
                    anyhow::Error::new(e)
                        .context("cannot revoke; list tokens with `passerelle token list`")
                })?;
            println!("token {id} revoked");
        }
    }
    store.close().await;
    Ok(())
}

async fn user_command(config: Config, cmd: UserCommand) -> CliResult {
    let UserCommand::Create {
        username,
        role,
        password_file,
    } = cmd;
    let password = match password_file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read --password-file {}", path.display()))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line
        }
    };
    let password = password.trim_end_matches(['\r', '\n']);
    let store = open_store(&config, true).await?;
    auth::create_account(&store, &username, password, role, "cli")
        .await
        .map_err(|e| {
            anyhow::Error::new(e).context(format!("cannot create account {username:?}"))
        })?;
    println!("account {username} created with role {role}; log in with POST /api/v1/session");
    store.close().await;
    Ok(())
}

async fn diagnostics(config: Config) -> CliResult {
    println!(
        "passerelle {} (protocol {})",
        env!("CARGO_PKG_VERSION"),
        passerelle_protocol::PROTOCOL_VERSION
    );
    println!("clock (UTC): {}", fmt_time(OffsetDateTime::now_utc()));
    println!(
        "database: {}",
        crate::config::redact_url(&config.database_url())
    );
    let store = open_store(&config, false).await?;
    let version = store
        .server_version()
        .await
        .map_err(|e| Failure::new(exit::DATABASE, e))?;
    println!("database server: {version}");
    let local = OffsetDateTime::now_utc();
    let db_time = store
        .server_time()
        .await
        .map_err(|e| Failure::new(exit::DATABASE, e))?;
    let skew = (db_time - local).as_seconds_f64();
    println!(
        "database clock (UTC): {} (skew {skew:+.3} s){}",
        fmt_time(db_time),
        if skew.abs() > 5.0 {
            " WARNING: clocks differ; signed messages may be refused, check NTP"
        } else {
            ""
        }
    );
    let status = store
        .migration_status()
        .await
        .map_err(|e| Failure::new(exit::DATABASE, e))?;
    println!("migrations: {}/{} applied", status.applied, status.known);
    match store.identity().await {
        Ok(i) => println!("identity: {} (SIREN {}, {})", i.name, i.siren, i.kind),
        Err(_) => println!("identity: not set (run `passerelle init`)"),
    }
    println!("public base URL: {}", config.base_url());
    println!(
        "development mode (http loopback peers): {}",
        if config.federation.allow_http_loopback_peers {
            "ON"
        } else {
            "off"
        }
    );
    store.close().await;
    Ok(())
}

/// `passerelle verify`: reads the document, the actor documents (given and adjacent) and
/// the keys, then prints the report of `domain::verify` and exits with its code.
fn verify(file: &std::path::Path, keys: &[String], actors: &[PathBuf]) -> CliResult {
    use crate::domain::verify as v;
    use passerelle_protocol::canonical::{ParseLimits, parse_strict};
    let unreadable = |e: anyhow::Error| Failure::new(v::exit::UNREADABLE, e);
    let bytes = std::fs::read(file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(unreadable)?;
    let known = keys
        .iter()
        .map(|k| v::parse_key_arg(k).map_err(|e| unreadable(e.into())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut actor_docs = Vec::new();
    for path in actors {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read --actor {}", path.display()))
            .map_err(unreadable)?;
        let doc = parse_strict(&text, &ParseLimits::default())
            .with_context(|| format!("--actor {} is not strict JSON", path.display()))
            .map_err(unreadable)?;
        actor_docs.push((path.display().to_string(), doc));
    }
    // Actor documents next to the file are used too; other files there are ignored.
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && p.file_name() != file.file_name()
                    && !actors.contains(p)
            })
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(doc) = std::fs::read(&p)
                .map_err(anyhow::Error::new)
                .and_then(|b| parse_strict(&b, &ParseLimits::default()).map_err(Into::into))
                && v::is_actor_document(&doc)
            {
                actor_docs.push((p.display().to_string(), doc));
            }
        }
    }
    let report = v::verify_document(&bytes, &actor_docs, &known).map_err(|e| {
        let code = e.exit_code();
        Failure::new(
            code,
            anyhow::Error::new(e).context(format!("cannot verify {}", file.display())),
        )
    })?;
    for line in report.lines() {
        println!("{line}");
    }
    match report.outcome {
        v::Outcome::Valid => Ok(()),
        v::Outcome::Invalid => Err(Failure::new(
            report.exit_code(),
            anyhow::anyhow!(
                "{}: a signature does not verify (document altered, or wrong or expired key)",
                file.display()
            ),
        )),
        v::Outcome::Incomplete => Err(Failure::new(
            report.exit_code(),
            anyhow::anyhow!(
                "{}: incomplete, one employer has not signed the convention",
                file.display()
            ),
        )),
        v::Outcome::KeyMissing => Err(Failure::new(
            report.exit_code(),
            anyhow::anyhow!(
                "{}: no key for a signature; pass --key MULTIKEY or --actor FILE",
                file.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Ville de Saint-Étienne"), "ville-de-saint-etienne");
        assert_eq!(slug("  Département  de l'Isère "), "departement-de-l-isere");
    }
}
