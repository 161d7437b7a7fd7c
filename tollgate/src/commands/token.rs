//! `tollgate token mint`.

use crate::serve::KEY_FILE;
use anyhow::Context;
use std::path::Path;
use time::{Duration, OffsetDateTime};
use tollgate_auth::{LocalIssuer, Role};
use tollgate_eventlog::{load_or_create_key, Signer};

pub fn mint(data_dir: &Path, subject: &str, roles: &[String], ttl_hours: i64) -> anyhow::Result<()> {
    let roles = roles.iter().map(|r| r.parse::<Role>()).collect::<Result<Vec<_>, _>>()?;
    if !(1..=24 * 366).contains(&ttl_hours) {
        anyhow::bail!("--ttl-hours must be between 1 and {}", 24 * 366);
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let key = load_or_create_key(&data_dir.join(KEY_FILE)).context("loading the instance key")?;
    let key_id = Signer::new(key.clone()).key_id().to_owned();
    let issuer = LocalIssuer::new(&key, &key_id)?;
    let token = issuer.mint(subject, &roles, Duration::hours(ttl_hours), OffsetDateTime::now_utc())?;
    println!("{token}");
    Ok(())
}
