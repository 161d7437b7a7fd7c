//! How domain refusals and log errors become API errors.

use tollgate_api_common::ApiError;
use tollgate_domain::{CatalogError, ReceiptError};
use tollgate_eventlog::AppendError;

pub fn idempotency_error(rule: &str) -> ApiError {
    ApiError::invalid("Idempotency-Key", rule)
}

pub fn receipt_error(e: ReceiptError) -> ApiError {
    let detail = e.to_string();
    let at = |field: &str| ApiError::Domain { detail: detail.clone(), field: Some(field.to_owned()) };
    match e {
        ReceiptError::UnknownGate(_) => at("/gate"),
        ReceiptError::ActionNotRequired { .. } => at("/action"),
        ReceiptError::BadReason => at("/reason"),
        ReceiptError::DuplicateReceipt(_) | ReceiptError::AlreadyRevoked(_) | ReceiptError::SignedPayloadReused(_) => {
            ApiError::Conflict(detail)
        }
        ReceiptError::ReceiptNotFound(_) => ApiError::NotFound(detail),
        ReceiptError::UnsignedReceipt(_) | ReceiptError::UnknownProducerKey { .. } => at("/signatures"),
    }
}

/// `path_target`: the gate or stage named in the URL path, if the command
/// came that way (then an unknown name is a 404, not a body error).
pub fn catalog_error(e: CatalogError, path_target: bool) -> ApiError {
    let detail = e.to_string();
    let at = |field: &str| ApiError::Domain { detail: detail.clone(), field: Some(field.to_owned()) };
    match e {
        CatalogError::UnknownGate(_) | CatalogError::UnknownStage(_) if path_target => ApiError::NotFound(detail),
        CatalogError::UnknownGate(_) | CatalogError::NoGates | CatalogError::DuplicateGate(_) => at("/gates"),
        CatalogError::UnknownStage(_) => at("/name"),
        CatalogError::DuplicateAction(_) => at("/required_actions"),
        CatalogError::DuplicateKey(_) => at("/producer_keys"),
        CatalogError::SignedWithoutKeys => at("/require_signed"),
        CatalogError::TextTooLong { field } => at(&format!("/{field}")),
    }
}

pub fn append_error(e: AppendError) -> ApiError {
    match e {
        AppendError::WrongExpectedVersion { stream, .. } => {
            ApiError::Conflict(format!("{stream} changed concurrently; retry the request"))
        }
        AppendError::IdempotencyKeyReused { .. } => {
            idempotency_error("was already used with a different request; use a new key for a new request")
        }
        AppendError::DuplicateEventId { event_id } => ApiError::Conflict(format!("event {event_id} already exists")),
        AppendError::TooLarge { limit, .. } => ApiError::TooLarge { limit },
        AppendError::Conflict => {
            ApiError::Conflict("another writer appended at the same time; retry the request".into())
        }
        AppendError::NulCharacter { field } => {
            ApiError::invalid(format!("/{field}"), "must not contain NUL characters")
        }
        other => ApiError::internal(other),
    }
}
