//! Errors of remote calls, classified by what a retry can do about them.

use std::time::Duration;

/// Why a remote call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The server answered with an error status.
    #[error("{target} answered {status}{code}: {message}", code = code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        target: &'static str,
        status: u16,
        /// The vendor's machine-readable code (Kota `error_code`, IC `code`).
        code: Option<String>,
        message: String,
        /// From a 429's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// No answer: refused, reset, timed out, or cut mid-response.
    #[error("{target}: {message}")]
    Network {
        target: &'static str,
        message: String,
        /// False only when the request cannot have left (connect failed).
        maybe_sent: bool,
    },
    /// An answer that does not follow the vendor's documented schema.
    #[error("{target}: unexpected response: {message}")]
    Decode {
        target: &'static str,
        message: String,
    },
    /// Credentials refused (401/403): no retry helps; fix the configuration.
    #[error("{target} refused the credentials ({status}): {message}. Check the API key or client credentials")]
    Auth {
        target: &'static str,
        status: u16,
        message: String,
    },
}

impl RemoteError {
    /// Whether waiting and trying again can help.
    pub fn retryable(&self) -> bool {
        match self {
            RemoteError::Status { status, .. } => *status == 429 || *status >= 500,
            RemoteError::Network { .. } => true,
            RemoteError::Decode { .. } | RemoteError::Auth { .. } => false,
        }
    }

    /// Whether the server may have acted on the request although we saw no
    /// success: a create must then look before creating again.
    pub fn maybe_committed(&self) -> bool {
        match self {
            RemoteError::Status { status, .. } => *status >= 500,
            RemoteError::Network { maybe_sent, .. } => *maybe_sent,
            RemoteError::Decode { .. } => true,
            RemoteError::Auth { .. } => false,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            RemoteError::Status { status, .. } | RemoteError::Auth { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            RemoteError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RemoteError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, data-free description for the state journal: status, code
    /// and the message (vendors' messages name fields, not values).
    pub fn journal_text(&self) -> String {
        crate::model::truncate(&self.to_string(), 300)
    }
}
