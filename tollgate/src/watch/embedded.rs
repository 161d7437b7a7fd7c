//! `tollgate serve --watchers FILE`: every watcher of the file follows the
//! log inside the server (no Kafka needed) and reports back to the server
//! itself, with a submitter token the server mints for it.

use super::{build, reporter_from_env, WatchersFile};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tollgate_auth::{LocalIssuer, Role};
use tollgate_eventlog::EventLog;
use tollgate_watchers::{LogRuntime, Reporter, Watcher};

/// How long a minted watcher token lives; a restart mints a fresh one.
const TOKEN_TTL: Duration = Duration::days(366);

/// The watchers of one file, built and ready to follow the log.
pub struct EmbeddedWatchers {
    runs: Vec<(Arc<dyn Watcher>, LogRuntime)>,
}

/// What the server lends its watchers.
pub struct ServerSide<'a> {
    pub log: &'a EventLog,
    /// Positions and dead letters live here, one set of files per watcher.
    pub state_dir: PathBuf,
    /// The CloudEvents source the events carry.
    pub source: &'a str,
    /// Where the server listens (watchers report back there).
    pub addr: SocketAddr,
    pub issuer: &'a LocalIssuer,
}

impl EmbeddedWatchers {
    /// Builds every watcher of `path`; a bad setting stops the server
    /// before it serves anything.
    pub fn build(path: &Path, server: &ServerSide<'_>) -> anyhow::Result<EmbeddedWatchers> {
        let file = WatchersFile::load(path)?;
        let options = file.runtime_options();
        let mut runs = Vec::new();
        for (name, entry) in file.watchers {
            let reporter = match &file.tollgate {
                Some(section) => reporter_from_env(section)?,
                None => self_reporter(&name, server)?,
            };
            let watcher = build(&name, entry, Some(reporter))?;
            let runtime = LogRuntime::new(server.log.clone(), &server.state_dir, server.source, options.clone());
            runs.push((watcher, runtime));
        }
        Ok(EmbeddedWatchers { runs })
    }

    /// Each watcher's live counters, by name.
    pub fn stats(&self) -> Vec<(String, tollgate_watchers::StatsHandle)> {
        self.runs.iter().map(|(watcher, runtime)| (watcher.name().to_owned(), runtime.stats())).collect()
    }

    /// Starts every watcher; each stops when `stop` turns true.
    pub fn spawn(self, stop: &watch::Receiver<bool>) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        for (watcher, runtime) in self.runs {
            let mut stop = stop.clone();
            tasks.spawn(async move {
                let name = watcher.name().to_owned();
                let stopped = async move {
                    let _ = stop.wait_for(|s| *s).await;
                };
                match runtime.run(watcher, stopped).await {
                    Ok(stats) => tracing::info!(watcher = %name, ?stats, "watcher stopped"),
                    Err(e) => tracing::error!(watcher = %name, error = %e, "watcher failed"),
                }
            });
        }
        tasks
    }
}

/// A reporter to this server, as subject `watcher:{name}`.
fn self_reporter(name: &str, server: &ServerSide<'_>) -> anyhow::Result<Reporter> {
    let token = server
        .issuer
        .mint(&format!("watcher:{name}"), &[Role::Submitter], TOKEN_TTL, OffsetDateTime::now_utc())
        .context("minting a watcher token")?;
    let mut addr = server.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    Reporter::new(&format!("http://{addr}"), &token).context("building the HTTP client")
}
