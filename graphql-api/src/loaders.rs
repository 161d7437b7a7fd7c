//! Batch loaders keyed by unit key: however many units a response holds,
//! each kind of per-unit list is one query (`... WHERE unit_key IN (...)`).

use async_graphql::dataloader::Loader;
use std::collections::HashMap;
use std::sync::Arc;
use tollgate_readmodels::queries::{ReceiptRow, StatusRow, TimelineRow};
use tollgate_readmodels::{ReadError, ReadStore};

/// Loader errors are handed to every waiting field, hence shared.
pub type LoadError = Arc<ReadError>;

pub struct Stages(pub ReadStore);
pub struct Gates(pub ReadStore);
pub struct Receipts(pub ReadStore);
pub struct Timelines(pub ReadStore);

/// Rows (already in the wanted order) grouped by unit, order kept.
fn by_unit<T>(rows: Vec<T>, key: impl Fn(&T) -> &str) -> HashMap<String, Vec<T>> {
    let mut grouped: HashMap<String, Vec<T>> = HashMap::new();
    for row in rows {
        grouped.entry(key(&row).to_owned()).or_default().push(row);
    }
    grouped
}

impl Loader<String> for Stages {
    type Value = Vec<StatusRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, LoadError> {
        Ok(by_unit(self.0.stage_statuses(keys).await?, |r| &r.unit_key))
    }
}

impl Loader<String> for Gates {
    type Value = Vec<StatusRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, LoadError> {
        Ok(by_unit(self.0.gate_statuses(keys).await?, |r| &r.unit_key))
    }
}

impl Loader<String> for Receipts {
    type Value = Vec<ReceiptRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, LoadError> {
        Ok(by_unit(self.0.receipts_of_units(keys).await?, |r| &r.unit_key))
    }
}

impl Loader<String> for Timelines {
    type Value = Vec<TimelineRow>;
    type Error = LoadError;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, Self::Value>, LoadError> {
        Ok(by_unit(self.0.timelines(keys).await?, |r| &r.unit_key))
    }
}
