//! `tollgate rebuild [PROJECTION]`: folds a fresh generation of read models
//! from the whole log next to the serving one, then swaps it in; servers
//! keep answering from the old generation until the swap.

use crate::progress::ProgressLine;
use crate::serve::{open_log, open_read_store, DB_FILE, KEY_FILE};
use anyhow::{bail, Context};
use std::path::Path;
use tollgate_eventlog::{load_or_create_key, Signer};
use tollgate_readmodels::{rebuild_many, Projection};

pub async fn run(data_dir: &Path, database_url: Option<&str>, projection: Option<&str>) -> anyhow::Result<()> {
    let projections = match projection {
        Some(name) => vec![Projection::parse(name)?],
        None => Projection::ALL.to_vec(),
    };
    let key_path = data_dir.join(KEY_FILE);
    if !key_path.exists() || (database_url.is_none() && !data_dir.join(DB_FILE).exists()) {
        bail!("{} holds no Tollgate log ({KEY_FILE} and {DB_FILE} expected)", data_dir.display());
    }
    let key = load_or_create_key(&key_path).context("loading the instance key")?;
    let log = open_log(data_dir, database_url, Signer::new(key)).await?;
    let reads = open_read_store(data_dir, database_url).await?;
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let mut line = ProgressLine::new(format!("rebuilding {}", names.join(", ")));
    let rebuilt = rebuild_many(&reads, &log, &projections, |p| line.update(p.done, p.total, p.elapsed))
        .await
        .with_context(|| format!("rebuilding {}", names.join(", ")))?;
    line.finish();
    for done in rebuilt {
        let rate = done.events as f64 / done.elapsed.as_secs_f64().max(1e-3);
        println!(
            "{}: generation {} replaces {} ({} events in {:.1}s, {rate:.0}/s)",
            done.projection,
            done.new_generation,
            done.old_generation,
            done.events,
            done.elapsed.as_secs_f64()
        );
    }
    Ok(())
}
