//! One module per client command group.

pub mod audit;
mod audit_batches;
mod audit_lines;
pub mod catalog;
pub mod explain;
pub mod junit;
pub mod rebuild;
pub mod receipt;
pub mod token;
pub mod unit;
