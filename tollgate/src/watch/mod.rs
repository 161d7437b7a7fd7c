//! Running the built-in watchers: `tollgate watch NAME --config FILE` on
//! Kafka, or every watcher of a file inside `serve` on the log itself.

mod config;
mod embedded;

pub use config::{WatcherEntry, WatchersFile};
pub use embedded::{EmbeddedWatchers, ServerSide};

use anyhow::{bail, Context};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tollgate_promotion_watcher::PromotionWatcher;
use tollgate_test_runner_watcher::TestRunnerWatcher;
use tollgate_ticket_watcher::TicketWatcher;
use tollgate_watchers::{ConfigError, KafkaRuntime, Reporter, Watcher};
use tollgate_webhook_watcher::WebhookWatcher;

/// Builds the watcher `name` of the file; `reporter` is where its receipts
/// go (every kind but the webhook reports back). Errors name the setting,
/// prefixed with `watchers.{name}.`.
pub fn build(name: &str, entry: WatcherEntry, reporter: Option<Reporter>) -> Result<Arc<dyn Watcher>, ConfigError> {
    let in_file = |e: ConfigError| ConfigError::new(format!("watchers.{name}.{}", e.field), e.rule);
    let needs_reporter = || {
        reporter.clone().ok_or_else(|| {
            ConfigError::new("tollgate", format!("watcher {name} submits receipts: configure [tollgate] server"))
        })
    };
    Ok(match entry {
        WatcherEntry::Webhook(config) => Arc::new(WebhookWatcher::new(name, config).map_err(in_file)?),
        WatcherEntry::Promotion(config) => {
            Arc::new(PromotionWatcher::new(name, config, needs_reporter()?).map_err(in_file)?)
        }
        WatcherEntry::Ticket(config) => Arc::new(TicketWatcher::new(name, config, needs_reporter()?).map_err(in_file)?),
        WatcherEntry::TestRunner(config) => {
            Arc::new(TestRunnerWatcher::new(name, config, needs_reporter()?).map_err(in_file)?)
        }
    })
}

/// `tollgate watch NAME --config FILE`: runs one watcher in its Kafka
/// consumer group until `shutdown`, with its counters on `metrics_addr`
/// when one is given.
pub async fn watch(
    name: &str,
    config_path: &Path,
    metrics_addr: Option<SocketAddr>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut file = WatchersFile::load(config_path)?;
    let Some(entry) = file.watchers.remove(name) else {
        let known: Vec<&String> = file.watchers.keys().collect();
        bail!("{} configures no watcher {name} (it has {known:?})", config_path.display());
    };
    let Some(kafka) = file.kafka.clone() else {
        bail!(
            "{}: [kafka] brokers is required to run a watcher on its own; \
             in the embedded default, run it inside the server with `tollgate serve --watchers FILE`",
            config_path.display()
        );
    };
    let reporter = match &file.tollgate {
        Some(section) => Some(reporter_from_env(section)?),
        None => None,
    };
    let watcher = build(name, entry, reporter)?;
    let topic = format!("{}units", kafka.topic_prefix);
    let group = format!("{}{name}", kafka.group_prefix);
    let runtime = KafkaRuntime::new(&kafka.brokers, &topic, &group, file.runtime_options());
    if let Some(addr) = metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let bound = listener.local_addr()?;
        // Scripts (and tests) read this line to learn the port.
        println!("tollgate watch metrics on http://{bound}/metrics");
        let router = crate::metrics::watcher_router(vec![(name.to_owned(), runtime.stats())]);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the metrics endpoint stopped");
            }
        });
    }
    tracing::info!(watcher = name, %topic, %group, "watching");
    let stats = runtime.run(watcher, shutdown).await.context("the watcher stopped")?;
    eprintln!("watcher {name} stopped: {stats:?}");
    Ok(())
}

fn reporter_from_env(section: &config::TollgateSection) -> anyhow::Result<Reporter> {
    let token = tollgate_watchers::secret_from_env("tollgate.token_env", &section.token_env)?;
    Reporter::new(&section.server, &token).context("building the HTTP client")
}
