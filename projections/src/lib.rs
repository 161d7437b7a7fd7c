//! Read models folded from the log.
//!
//! Today: the catalog of gates and stages (kept in memory, current with
//! every append this process makes) and a unit's status, folded on demand
//! from the unit's stream. Both are disposable: the log is the truth.

mod catalog;
mod decode;
mod unit_view;

pub use catalog::CatalogCache;
pub use decode::{decode, ProjectionError};
pub use unit_view::{unit_view, ReceiptView, UnitView};
