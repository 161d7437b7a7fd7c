//! Read models folded from the log.
//!
//! Today: the catalog of gates and stages (kept in memory, refreshed from
//! the log before use) and a unit's status and explanation, folded on
//! demand from the unit's stream. All are disposable: the log is the truth.

mod catalog;
mod decode;
mod explain;
mod unit_view;

pub use catalog::{CatalogCache, CATALOG_MAX_AGE};
pub use decode::{decode, ProjectionError};
pub use explain::{explain, ActionExplanation, Explanation, GateExplanation, StageExplanation, StageFilter};
pub use unit_view::{unit_view, ReceiptView, UnitView};
