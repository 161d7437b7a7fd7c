//! A complete watcher: prints every StagePassed event of the units whose
//! key matches a pattern.
//!
//! ```text
//! cargo run -p tollgate-watchers --example log_stage_passed -- \
//!     --brokers 127.0.0.1:9092 --topic tollgate.units --units 'openssl@*'
//! ```
//!
//! Ctrl-C stops it; offsets of printed events are committed, so a restart
//! in the same group goes on where it stopped.

use clap::Parser;
use tollgate_watchers::{async_trait, Filter, HandlerError, KafkaRuntime, RuntimeOptions, TollgateEvent, Watcher};

/// Prints StagePassed events.
#[derive(Debug, Parser)]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// The units topic (`{prefix}units`).
    #[arg(long)]
    topic: String,
    /// The consumer group.
    #[arg(long, default_value = "log-stage-passed")]
    group: String,
    /// Unit-key glob (`*` only).
    #[arg(long, default_value = "*")]
    units: String,
}

struct LogStagePassed {
    filter: Filter,
}

#[async_trait]
impl Watcher for LogStagePassed {
    fn name(&self) -> &str {
        "log-stage-passed"
    }

    fn filter(&self) -> &Filter {
        &self.filter
    }

    async fn handle(&self, event: &TollgateEvent) -> Result<(), HandlerError> {
        let stage = event.stage().unwrap_or("?");
        let gates: Vec<&str> = event.gates().collect();
        println!("{} {} passed stage {stage} (gates {gates:?}, event {})", event.time, event.subject, event.id);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let watcher = std::sync::Arc::new(LogStagePassed {
        filter: Filter::all().event_type("StagePassed").unit_pattern(args.units),
    });
    let runtime = KafkaRuntime::new(args.brokers, args.topic, args.group, RuntimeOptions::default());
    let stats = runtime
        .run(watcher, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    eprintln!("stopped: {stats:?}");
    Ok(())
}
