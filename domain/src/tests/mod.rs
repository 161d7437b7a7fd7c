//! Given / when / then tests for every rule of the gate and stage table.

mod catalog_rules;
mod harness;
mod unit_rules;
