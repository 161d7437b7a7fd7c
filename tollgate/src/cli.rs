//! The command line: `serve`, and the client commands a CI job or an
//! operator runs against a server.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "tollgate", version, about = "Event-sourced gatekeeper for software delivery pipelines")]
pub struct Cli {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How client commands reach the server and print answers.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// The Tollgate server.
    #[arg(long, env = "TOLLGATE_SERVER", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// A bearer token (see `tollgate token mint`).
    #[arg(long, env = "TOLLGATE_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded SQLite under --data-dir unless configured otherwise).
    Serve(ServeArgs),
    /// Mint tokens with the instance key.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Producer signing keys, for signed receipts.
    #[command(subcommand)]
    ProducerKey(ProducerKeyCommand),
    /// Define, disable, enable and list gates.
    #[command(subcommand)]
    Gate(GateCommand),
    /// Define, disable, enable and list stages.
    #[command(subcommand)]
    Stage(StageCommand),
    /// Submit and revoke receipts.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Submit a JUnit/xUnit XML report as receipts, one per suite (or case);
    /// exits 3 when any of them fails.
    Junit(JunitArgs),
    /// Show units.
    #[command(subcommand)]
    Unit(UnitCommand),
    /// Why a unit's stages have (or have not) passed: stage, gate, action, receipt.
    Explain {
        /// A unit key or package URL.
        unit: String,
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Export and verify the signed, hash-chained log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Fold a fresh generation of read models from the whole log and swap it
    /// in, while servers keep answering from the current one.
    Rebuild {
        /// One projection (units, receipts, definitions, timeline); all when absent.
        projection: Option<String>,
        /// The server's data dir.
        #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
        data_dir: PathBuf,
        /// The log's PostgreSQL database, when it is not the data dir's SQLite file.
        #[arg(long, env = "TOLLGATE_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Run one watcher of a config file in its Kafka consumer group until
    /// Ctrl-C or SIGTERM.
    Watch {
        /// The watcher's name (its `[watchers.NAME]` table).
        name: String,
        /// The watchers' TOML config file.
        #[arg(long, env = "TOLLGATE_WATCHERS")]
        config: PathBuf,
        /// Serve `GET /metrics` (this watcher's counters, Prometheus text)
        /// and `GET /healthz` on this address. They take no token: bind it
        /// where only the scraper reaches (the default is none).
        #[arg(long, env = "TOLLGATE_WATCH_METRICS_ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where the log and the instance key live.
    #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, env = "TOLLGATE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Requests per second each caller (token subject) may make, with
    /// bursts of twice that; 0 (the default) sets no limit.
    #[arg(long, env = "TOLLGATE_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,
    /// Keep the log in PostgreSQL instead of the embedded SQLite file
    /// (postgres://user@host:port/db); the data dir still holds the key.
    #[arg(long, env = "TOLLGATE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Run the watchers of this file (see `tollgate watch`) inside the
    /// server, following the log directly; they report back to this server.
    #[arg(long, env = "TOLLGATE_WATCHERS")]
    pub watchers: Option<PathBuf>,
    /// Trust the OIDC issuers of this TOML file and grant roles to their
    /// groups and subjects (see docs/access.example.toml). Tokens minted
    /// with the instance key are accepted with or without it.
    #[arg(long, env = "TOLLGATE_ACCESS")]
    pub access: Option<PathBuf>,
    #[command(flatten)]
    pub relay: RelayArgs,
}

/// The relay that publishes the log to Kafka (only with --kafka-brokers).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Kafka relay")]
pub struct RelayArgs {
    /// Kafka bootstrap servers (host:port[,host:port...]). When set, the
    /// relay publishes every event of the log there; when absent, no relay runs.
    #[arg(long, env = "TOLLGATE_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Prefix of the topic names: `{prefix}units` and `{prefix}catalog`.
    #[arg(long, env = "TOLLGATE_KAFKA_TOPIC_PREFIX", default_value = "tollgate.")]
    pub kafka_topic_prefix: String,
    /// Partitions of the units topic when the relay creates it.
    #[arg(long, env = "TOLLGATE_KAFKA_PARTITIONS", default_value_t = 6,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_partitions: i32,
    /// Replication factor of the topics when the relay creates them (1 is
    /// for development; use 3 on a real cluster).
    #[arg(long, env = "TOLLGATE_KAFKA_REPLICATION_FACTOR", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..))]
    pub kafka_replication_factor: i32,
    /// Most events published per second: a backlog (after Kafka was down)
    /// drains at this rate.
    #[arg(long, env = "TOLLGATE_RELAY_MAX_RATE", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub relay_max_rate: u32,
    /// The CloudEvents `source` of published events.
    #[arg(long, env = "TOLLGATE_RELAY_SOURCE", default_value = "tollgate")]
    pub relay_source: String,
}

#[derive(Subcommand, Debug)]
pub enum ProducerKeyCommand {
    /// Create an Ed25519 key file (mode 0600) and print its public key, to
    /// register on gates with `gate define --producer-key ID=HEX`.
    New {
        /// The key file to create (an existing one is only read).
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a token signed with the instance key of --data-dir.
    Mint {
        #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
        data_dir: PathBuf,
        /// Who the token names (recorded as the producer of its receipts).
        #[arg(long)]
        subject: String,
        /// admin, gate-owner, submitter, auditor or reader; repeat for
        /// several. Local tokens are unlimited within their roles; limits
        /// on units, gates and actions come with OIDC grants (--access).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// How long the token is valid, in hours.
        #[arg(long, default_value_t = 24)]
        ttl_hours: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum GateCommand {
    /// Define (or redefine) a gate. A redefinition replaces the whole
    /// definition: actions, mode, schema and producer keys alike.
    Define {
        name: String,
        /// A required action; repeat for several. None: any action counts.
        #[arg(long = "action")]
        actions: Vec<String>,
        #[arg(long, default_value = "enforcing")]
        mode: String,
        /// A JSON Schema file for the custom section of this gate's receipts.
        #[arg(long)]
        schema: Option<PathBuf>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// A producer key whose signed receipts the gate accepts, as
        /// ID=HEX (the hex public key `producer-key new` prints); repeat
        /// for several.
        #[arg(long = "producer-key")]
        producer_keys: Vec<String>,
        /// Refuse receipts not signed by one of the producer keys.
        #[arg(long)]
        require_signed: bool,
    },
    Disable {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    Enable {
        name: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum StageCommand {
    /// Define (or redefine) a stage.
    Define {
        name: String,
        /// A gate of the stage; repeat for several.
        #[arg(long = "gate", required = true)]
        gates: Vec<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    Disable {
        name: String,
        #[arg(long)]
        reason: Option<String>,
    },
    Enable {
        name: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum ReceiptCommand {
    /// Submit one receipt.
    Submit(SubmitArgs),
    /// Revoke a receipt; gates and stages are re-evaluated.
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// name@version-release/platform/package, or a package URL (pkg:...).
    #[arg(long)]
    pub unit: String,
    #[arg(long)]
    pub gate: String,
    #[arg(long)]
    pub action: String,
    /// The action passed.
    #[arg(long, conflicts_with = "fail", required_unless_present = "fail")]
    pub pass: bool,
    /// The action failed.
    #[arg(long)]
    pub fail: bool,
    /// The custom section as JSON, or @FILE to read it from a file.
    #[arg(long)]
    pub custom: Option<String>,
    /// An artifact reference URI@sha256:HEX; repeat for several.
    #[arg(long = "artifact")]
    pub artifacts: Vec<String>,
    /// Makes a retried submit return the first result.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Sign the receipt (a DSSE envelope) with the producer key in this
    /// file (see `producer-key new`); needs --key-id.
    #[arg(long, requires = "key_id")]
    pub sign_key: Option<PathBuf>,
    /// The id the gate registered the signing key under.
    #[arg(long, requires = "sign_key")]
    pub key_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct JunitArgs {
    /// The report file.
    pub file: PathBuf,
    /// The gate the receipts go to.
    #[arg(long)]
    pub gate: String,
    /// name@version-release/platform/package, or a package URL (pkg:...).
    #[arg(long)]
    pub unit: String,
    /// The action of the failing receipt when the report cannot be read
    /// (default: the file's name without its extension).
    #[arg(long)]
    pub action: Option<String>,
    /// One receipt per suite (action: the suite's name) or per test case
    /// (action: suite.case); names are lowercased and cleaned to fit.
    #[arg(long, default_value = "suite", value_parser = ["suite", "case"])]
    pub granularity: String,
}

#[derive(Subcommand, Debug)]
pub enum UnitCommand {
    /// Every stage and gate of a unit, passed or not, and why.
    Show { unit: String },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Write the log as NDJSON (stdout unless --file).
    Export {
        #[arg(long, default_value_t = 1)]
        from: u64,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Re-check every hash, the chain and every signature.
    Verify(VerifyArgs),
}

/// Where to read the log from: --data-dir, --file, or (with neither) the
/// server named by --server. The keys to trust: --public-key, a JWKS the
/// auditor holds; without it, the data dir's key or the server's /v1/keys,
/// which only proves the log consistent with the keys kept beside it.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Verify the log stored in this data dir (with its instance key).
    #[arg(long, conflicts_with = "file")]
    pub data_dir: Option<PathBuf>,
    /// With --data-dir: the log is in this PostgreSQL database, not in the
    /// data dir's SQLite file.
    #[arg(long, env = "TOLLGATE_DATABASE_URL", requires = "data_dir", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Verify an export written by `audit export`.
    #[arg(long, requires = "public_key")]
    pub file: Option<PathBuf>,
    /// The JWKS (as served by GET /v1/keys) to trust; required with --file.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
}
