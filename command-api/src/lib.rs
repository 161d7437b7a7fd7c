//! The command side over HTTP: define, disable and enable gates and
//! stages, submit and revoke receipts. Every body is checked against its
//! JSON Schema and the domain's input rules before anything is written;
//! the only write is the append to the log.

mod caller;
mod catalog;
mod dsse;
mod errors;
mod receipt_input;
mod receipts;
mod service;
mod unit_cache;

use axum::extract::FromRef;
use axum::routing::post;
use axum::Router;
use std::sync::Arc;
use tollgate_api_common::Access;

pub use dsse::{pae, RECEIPT_PAYLOAD_TYPE};
pub use service::CommandService;

/// What the command handlers share.
#[derive(Clone)]
pub struct CommandState {
    pub service: Arc<CommandService>,
    pub access: Arc<Access>,
}

impl FromRef<CommandState> for Arc<Access> {
    fn from_ref(state: &CommandState) -> Self {
        state.access.clone()
    }
}

/// The command routes, ready to merge into the server's router.
pub fn router(state: CommandState) -> Router {
    Router::new()
        .route("/v1/gates", post(catalog::define_gate))
        .route("/v1/gates/{name}/{verb}", post(catalog::toggle_gate))
        .route("/v1/stages", post(catalog::define_stage))
        .route("/v1/stages/{name}/{verb}", post(catalog::toggle_stage))
        .route("/v1/receipts", post(receipts::submit))
        .route("/v1/receipts/{id}/revoke", post(receipts::revoke))
        .with_state(state)
}
