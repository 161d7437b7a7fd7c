//! `tollgate serve`: wires the log, the catalog, the command and query
//! routers, the shared layers and (with `--kafka-brokers`) the Kafka relay
//! into one server.

use crate::cli::{RelayArgs, ServeArgs};
use crate::watch::{EmbeddedWatchers, ServerSide};
use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::{middleware, Router};
use serde_json::json;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tollgate_api_common::{
    record_duration, request_id_layer, Access, ApiError, HttpMetrics, RateLimiter, Schemas, MAX_BODY_BYTES,
};
use tollgate_auth::LocalIssuer;
use tollgate_auth::{AccessConfig, TokenValidator, LOCAL_ISSUER};
use tollgate_command_api::{CommandService, CommandState};
use tollgate_eventlog::{load_or_create_key, public_jwk, EventLog, Signer};
use tollgate_projections::CatalogCache;
use tollgate_query_api::QueryState;
use tollgate_readmodels::{Projector, ReadStore};
use tollgate_relay::{Database, Relay, RelayConfig};

/// File names inside the data dir.
pub const KEY_FILE: &str = "instance.key";
pub const DB_FILE: &str = "tollgate.db";

/// The read models' SQLite file inside the data dir (embedded default).
pub const READ_DB_FILE: &str = "readmodels.db";

/// A bound, ready server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// Keeps the read models up to date with the log.
    projector: Projector,
    /// Publishes the log to Kafka in the background; `None` without brokers.
    relay: Option<Relay>,
    /// The watchers of `--watchers`, started with the server.
    watchers: Option<EmbeddedWatchers>,
}

impl Application {
    pub async fn build(args: &ServeArgs) -> anyhow::Result<Self> {
        let data_dir = &args.data_dir;
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating data dir {}", data_dir.display()))?;
        let key = load_or_create_key(&data_dir.join(KEY_FILE)).context("loading the instance key")?;
        let verifying = key.verifying_key();
        let signer = Signer::new(key.clone());
        let key_id = signer.key_id().to_owned();
        let log = open_log(data_dir, args.database_url.as_deref(), signer).await?;
        let reads = open_read_store(data_dir, args.database_url.as_deref()).await?;
        let projector = Projector::new(reads.clone(), log.clone());
        let catalog = Arc::new(CatalogCache::load(&log).await.context("loading gates and stages")?);
        let schemas = Arc::new(Schemas::load().context("compiling the built-in JSON Schemas")?);
        let mut tokens = TokenValidator::default();
        tokens.trust_ed25519(LOCAL_ISSUER, &key_id, verifying.as_bytes());
        if let Some(path) = &args.access {
            tokens.trust_oidc(&load_access(path)?).context("trusting the access file's issuers")?;
        }
        let access = Arc::new(Access { tokens, limits: RateLimiter::new(args.rate_limit) });
        // Fetched in the background: an issuer that is down delays no
        // start, and its keys are fetched again when its tokens arrive.
        let fetching = access.clone();
        tokio::spawn(async move { fetching.tokens.fetch_keys().await });
        let jwks = Arc::new(json!({ "keys": [public_jwk(&verifying)] }));
        let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
        let watchers = match &args.watchers {
            Some(path) => {
                let issuer = LocalIssuer::new(&key, &key_id).context("the local token issuer")?;
                let server = ServerSide {
                    log: &log,
                    state_dir: data_dir.join("watchers"),
                    source: &args.relay.relay_source,
                    addr: listener.local_addr()?,
                    issuer: &issuer,
                };
                let built = EmbeddedWatchers::build(path, &server)
                    .with_context(|| format!("configuring the watchers of {}", path.display()))?;
                Some(built)
            }
            None => None,
        };

        let command = CommandState {
            service: Arc::new(CommandService::new(log.clone(), catalog.clone(), schemas)),
            access: access.clone(),
        };
        // The relay only reads the log: it never slows down or blocks an append.
        let relay = args.relay.kafka_brokers.as_ref().map(|brokers| {
            let database = match &args.database_url {
                Some(url) => Database::Postgres(url.clone()),
                None => Database::Sqlite(data_dir.join(DB_FILE)),
            };
            Relay::spawn(log.clone(), relay_config(brokers, database, &args.relay))
        });
        let http = Arc::new(HttpMetrics::default());
        let metrics = crate::metrics::Sources {
            http: http.clone(),
            access: access.clone(),
            log: log.clone(),
            projector: projector.metrics(),
            reads: reads.clone(),
            relay: relay.as_ref().map(Relay::status),
            watchers: watchers.as_ref().map(EmbeddedWatchers::stats).unwrap_or_default(),
        };
        let relay_routes = crate::relay_status::router(access.clone(), relay.as_ref().map(Relay::status));
        let graphql = tollgate_graphql_api::GraphqlState::new(reads.clone(), log.clone(), access.clone());
        let query = QueryState { log, catalog, access, jwks };
        let router = tollgate_command_api::router(command)
            .merge(tollgate_query_api::router(query))
            .merge(tollgate_graphql_api::router(graphql))
            .merge(relay_routes)
            .merge(crate::metrics::router(metrics))
            .route_layer(middleware::from_fn_with_state(http, record_duration))
            .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(middleware::from_fn(request_id_layer));
        Ok(Self { listener, router, projector, relay, watchers })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until SIGINT or SIGTERM, then finishes open requests and
    /// stops the projector, the watchers and the relay (each keeps its
    /// checkpoint).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let (stop, stopping) = watch::channel(false);
        let mut background = self.watchers.map(|w| w.spawn(&stopping)).unwrap_or_default();
        let mut until_stopped = stopping.clone();
        background.spawn(self.projector.run(async move {
            let _ = until_stopped.wait_for(|s| *s).await;
        }));
        let signal = async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        };
        let served =
            axum::serve(self.listener, self.router).with_graceful_shutdown(signal).await.context("serving HTTP");
        while background.join_next().await.is_some() {}
        if let Some(relay) = self.relay {
            relay.shutdown().await;
        }
        served
    }
}

/// The access file of `--access`, checked whole before the server starts.
fn load_access(path: &Path) -> anyhow::Result<AccessConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the access file {}", path.display()))?;
    AccessConfig::parse(&text).with_context(|| format!("in the access file {}", path.display()))
}

/// The read models beside the log: schema `tollgate_read` of the same
/// PostgreSQL database, or `readmodels.db` in the data dir.
pub async fn open_read_store(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<ReadStore> {
    match database_url {
        Some(url) => ReadStore::open_postgres(url).await.context("opening the read models in PostgreSQL"),
        None => {
            let path = data_dir.join(READ_DB_FILE);
            ReadStore::open_sqlite(&path).await.with_context(|| format!("opening the read models {}", path.display()))
        }
    }
}

fn relay_config(brokers: &str, database: Database, args: &RelayArgs) -> RelayConfig {
    let mut config = RelayConfig::new(brokers, database);
    config.topic_prefix.clone_from(&args.kafka_topic_prefix);
    config.source.clone_from(&args.relay_source);
    config.partitions = args.kafka_partitions;
    config.replication_factor = args.kafka_replication_factor;
    config.max_rate = args.relay_max_rate;
    config
}

/// PostgreSQL when a URL is given, the data dir's SQLite file otherwise.
pub async fn open_log(data_dir: &Path, database_url: Option<&str>, signer: Signer) -> anyhow::Result<EventLog> {
    match database_url {
        Some(url) => EventLog::open_postgres(url, signer).await.context("opening the event log in PostgreSQL"),
        None => {
            let path = data_dir.join(DB_FILE);
            EventLog::open_sqlite(&path, signer)
                .await
                .with_context(|| format!("opening the event log {}", path.display()))
        }
    }
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
