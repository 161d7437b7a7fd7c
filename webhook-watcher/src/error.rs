//! Why one rule's request failed, and whether trying again can help.

use crate::guard::AddressRefused;

/// One rule's failed delivery. Messages name the rule and the URL's host
/// and never carry the secret, a header value or the URL's path and query
/// (which may hold a receiver's token).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// A template failed to render (an undefined value, a bad filter call).
    #[error("{rule}: cannot render: {reason}")]
    Template { rule: String, reason: String },
    /// The rendered request is unusable (a bad URL, a header value with a
    /// newline).
    #[error("{rule}: invalid request to {host}: {reason}")]
    Invalid { rule: String, host: String, reason: String },
    /// The SSRF guard refused the destination.
    #[error("{rule}: {source}")]
    Refused {
        rule: String,
        #[source]
        source: AddressRefused,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("{rule}: {host} answered HTTP {status}{detail}")]
    Status { rule: String, host: String, status: u16, detail: String },
    /// The request failed on the way: a timeout, a refused connection, a
    /// TLS failure, a reset.
    #[error("{rule}: {host}: {reason}")]
    Transport { rule: String, host: String, reason: String },
}

impl DeliveryError {
    /// Timeouts, connection failures, 429 and 5xx may pass later; a 3xx,
    /// another 4xx, a refusal or a template error never will.
    pub fn is_retryable(&self) -> bool {
        match self {
            DeliveryError::Transport { .. } => true,
            DeliveryError::Status { status, .. } => *status == 429 || *status >= 500,
            DeliveryError::Template { .. } | DeliveryError::Invalid { .. } | DeliveryError::Refused { .. } => false,
        }
    }
}
