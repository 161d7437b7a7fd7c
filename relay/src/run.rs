//! The relay task: terms of leadership, one after the other, until shutdown.
//! A term takes the lead (or waits as standby), makes sure the topics
//! exist, and pumps events ([`crate::pump`]) until an error or shutdown;
//! any error ends the term, the next one starts over from the checkpoint.

use crate::config::RelayConfig;
use crate::error::RelayError;
use crate::publisher::Publisher;
use crate::pump::{pump, Stop};
use crate::status::{RelayStatus, Role, StatusReceiver};
use crate::store::{Checkpoints, Leadership};
use crate::topics::ensure_topics;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tollgate_eventlog::EventLog;
use tracing::Instrument as _;

/// How long shutdown waits for the relay to checkpoint what Kafka confirmed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The running relay.
pub struct Relay {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
    status: StatusReceiver,
}

impl Relay {
    /// Starts the relay in the background on the current runtime. It never
    /// fails here: an unreachable broker or database is retried, logged and
    /// shown in [`Relay::status`].
    pub fn spawn(log: EventLog, config: RelayConfig) -> Relay {
        let (stop, stop_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(RelayStatus::starting());
        let span = tracing::info_span!("relay", prefix = %config.topic_prefix);
        let task = tokio::spawn(supervise(log, config, Stop::new(stop_rx), status_tx).instrument(span));
        Relay { task, stop, status }
    }

    /// A live view of the relay's role, checkpoint and lag.
    pub fn status(&self) -> StatusReceiver {
        self.status.clone()
    }

    /// Stops sending, waits a little for deliveries in flight, stores the
    /// checkpoint and gives the lead up.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut task).await.is_err() {
            tracing::warn!("the relay did not stop in time; unconfirmed events will be published again");
            task.abort();
        }
    }
}

/// What a term ended with, when not with an error.
enum Ended {
    Stopped,
    NotLeader,
}

async fn supervise(log: EventLog, config: RelayConfig, mut stop: Stop, status: watch::Sender<RelayStatus>) {
    let mut checkpoints = None;
    while !stop.requested() {
        match term(&log, &config, &mut checkpoints, &mut stop, &status).await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::NotLeader) => {}
            Err(e) => {
                tracing::warn!(error = %e, "relay term ended; publishing resumes from the checkpoint");
                status.send_modify(|s| {
                    s.role = Role::Starting;
                    s.last_error = Some(e.to_string());
                });
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.retry_interval) => {}
            _ = stop.wait() => {}
        }
    }
    tracing::info!("relay stopped");
}

async fn term(
    log: &EventLog,
    config: &RelayConfig,
    checkpoints: &mut Option<Checkpoints>,
    stop: &mut Stop,
    status: &watch::Sender<RelayStatus>,
) -> Result<Ended, RelayError> {
    let store = match checkpoints {
        Some(store) => store.clone(),
        None => checkpoints.insert(Checkpoints::connect(&config.database).await?).clone(),
    };
    let name = config.checkpoint_name();
    let Some(mut lead) = Leadership::try_acquire(&config.database).await? else {
        // Standby: report the leader's progress, which is in the database.
        let (published, head) = (store.load(&name).await?, log.head().await?);
        status.send_modify(|s| {
            if s.role != Role::Standby {
                tracing::info!("another process's relay leads; standing by");
            }
            *s = RelayStatus { role: Role::Standby, published, head, last_error: None };
        });
        return Ok(Ended::NotLeader);
    };
    tracing::info!("relay leads");
    let result = lead_term(log, config, &store, &mut lead, stop, status).await;
    lead.release().await;
    result.map(|()| Ended::Stopped)
}

async fn lead_term(
    log: &EventLog,
    config: &RelayConfig,
    store: &Checkpoints,
    lead: &mut Leadership,
    stop: &mut Stop,
    status: &watch::Sender<RelayStatus>,
) -> Result<(), RelayError> {
    ensure_topics(config).await?;
    let publisher = Publisher::new(&config.brokers, &config.topic_prefix, &config.source)?;
    let result = pump(log, config, store, lead, &publisher, stop, status).await;
    // Whatever was not confirmed is published again by the next term.
    publisher.close(Duration::ZERO).await;
    result
}
