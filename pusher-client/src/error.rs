//! The crate's error type.
//!
//! Every fallible operation returns [`Result`], whose error is [`Error`]. Errors
//! fall into three groups:
//!
//! * **invalid input** (`Invalid*`, `TooMany*`, `*TooLong`, `PayloadTooLarge`, ...):
//!   found before anything is sent; retrying the same call cannot help;
//! * **transport and server failures** ([`Error::Timeout`], [`Error::Connect`],
//!   [`Error::Api`], ...): [`Error::is_retryable`] and [`Error::retry_after`] say
//!   whether and when another attempt can succeed;
//! * **webhook and decryption failures**, returned while verifying incoming data.
//!
//! No variant ever carries the application secret or the encryption master key.

use std::time::Duration;

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while configuring the client, validating input,
/// talking to the Pusher HTTP API, authorizing channels or verifying webhooks.
///
/// ```
/// use pusher_client::{Client, Error};
///
/// let client = Client::builder()
///     .app_id("1")
///     .key("key")
///     .secret("secret")
///     .host("127.0.0.1")
///     .build()?;
/// let err = client.authorize_channel("not a socket id", "private-orders").unwrap_err();
/// assert!(matches!(err, Error::InvalidSocketId { .. }));
/// assert!(!err.is_retryable());
/// # Ok::<(), pusher_client::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is incomplete or malformed (missing app id, bad URL,
    /// unparsable environment variable, ...).
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A channel name contains a character outside `[A-Za-z0-9_\-=@,.;]`
    /// or is empty.
    #[error("invalid channel name `{channel}`: {reason}")]
    InvalidChannelName {
        /// The rejected channel name.
        channel: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A channel name is longer than the configured limit.
    #[error("channel name `{channel}` is {len} characters long, the limit is {max}")]
    ChannelNameTooLong {
        /// The rejected channel name.
        channel: String,
        /// Its length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },

    /// An event name is empty or longer than the limit.
    #[error("invalid event name `{event}`: {reason}")]
    InvalidEventName {
        /// The rejected event name.
        event: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A trigger names no channel at all.
    #[error("an event must be sent to at least one channel")]
    NoChannels,

    /// A trigger names more channels than the API accepts in one request.
    #[error("an event can be sent to at most {max} channels at once, got {count}")]
    TooManyChannels {
        /// How many channels were given.
        count: usize,
        /// The limit (100 on Pusher).
        max: usize,
    },

    /// A batch holds no event.
    #[error("a batch must contain at least one event")]
    EmptyBatch,

    /// A batch holds more events than the API accepts in one request.
    #[error("a batch can contain at most {max} events, got {count}")]
    BatchTooLarge {
        /// How many events were given.
        count: usize,
        /// The limit (10 on Pusher).
        max: usize,
    },

    /// The event data (after encryption, if any) is larger than the limit.
    #[error("event data is {size} bytes, the limit is {max} bytes")]
    PayloadTooLarge {
        /// Size of the data in bytes.
        size: usize,
        /// The configured limit (10 KiB by default).
        max: usize,
    },

    /// A socket id does not have the `digits.digits` form Pusher issues.
    #[error("invalid socket id `{socket_id}`: expected the form `1234.5678`")]
    InvalidSocketId {
        /// The rejected socket id.
        socket_id: String,
    },

    /// A user id is empty, too long or contains characters Pusher does not accept.
    #[error("invalid user id `{user_id}`: {reason}")]
    InvalidUserId {
        /// The rejected user id.
        user_id: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// Presence or user data is missing its user id.
    #[error("{what} must contain a non-empty `{field}` field")]
    MissingUserId {
        /// Which payload was inspected (`presence channel data`, `user data`).
        what: &'static str,
        /// The field that must be present (`user_id` or `id`).
        field: &'static str,
    },

    /// The operation needs a different kind of channel (for example presence
    /// data for a non-presence channel).
    #[error("channel `{channel}` cannot be used here: {reason}")]
    WrongChannelType {
        /// The channel that was given.
        channel: String,
        /// What kind of channel is expected.
        reason: &'static str,
    },

    /// An event to a `private-encrypted-` channel was combined with other channels.
    #[error("events to encrypted channels must target exactly one channel, got {count}")]
    EncryptedMultipleChannels {
        /// How many channels were given.
        count: usize,
    },

    /// A `private-encrypted-` channel was used but no master key is configured.
    #[error(
        "channel `{channel}` is end-to-end encrypted but no encryption master key is configured"
    )]
    MissingMasterKey {
        /// The encrypted channel.
        channel: String,
    },

    /// The encryption master key is not 32 bytes of valid base64.
    #[error("invalid encryption master key: {reason}")]
    InvalidMasterKey {
        /// Why it was rejected (never the key itself).
        reason: &'static str,
    },

    /// Encrypted data could not be decrypted (wrong key or tampered data).
    #[error("could not decrypt data for channel `{channel}`: {reason}")]
    Decrypt {
        /// The channel whose key was used.
        channel: String,
        /// What failed.
        reason: &'static str,
    },

    /// Event data could not be serialized to JSON.
    #[error("could not serialize data to JSON")]
    Serialize(#[source] serde_json::Error),

    /// The server answered with a non-success status.
    #[error("the Pusher API answered {status}: {body}")]
    Api {
        /// The HTTP status code.
        status: u16,
        /// The response body, as text (truncated to 4 KiB).
        body: String,
        /// The delay the server asked for in a `Retry-After` header, if any.
        retry_after: Option<Duration>,
    },

    /// The server answered with success but its body is not the JSON expected.
    #[error("the Pusher API answered {status} with a body that is not the expected JSON")]
    Decode {
        /// The HTTP status code.
        status: u16,
        /// The response body, as text (truncated to 4 KiB).
        body: String,
        /// Why parsing failed.
        #[source]
        source: serde_json::Error,
    },

    /// No answer arrived within the configured timeout.
    #[error("the request to the Pusher API timed out")]
    Timeout(#[source] reqwest::Error),

    /// The server could not be reached (refused, DNS failure, TLS failure, ...).
    #[error("could not connect to the Pusher API")]
    Connect(#[source] reqwest::Error),

    /// Any other HTTP-level failure (connection reset mid-request, malformed response).
    #[error("HTTP error while talking to the Pusher API")]
    Http(#[source] reqwest::Error),

    /// A webhook carries an `X-Pusher-Key` that matches none of the configured keys.
    #[error("webhook key `{key}` is not one of the configured keys")]
    WebhookUnknownKey {
        /// The key found in the request.
        key: String,
    },

    /// A webhook's `X-Pusher-Signature` does not match its body.
    #[error("webhook signature does not match its body")]
    WebhookInvalidSignature,

    /// A webhook lacks the `X-Pusher-Key` or `X-Pusher-Signature` header.
    #[error("webhook is missing the `{header}` header")]
    WebhookMissingHeader {
        /// The missing header's name.
        header: &'static str,
    },

    /// A webhook's body is not the JSON Pusher sends.
    #[error("webhook body is not valid Pusher webhook JSON")]
    WebhookBody(#[source] serde_json::Error),
}

impl Error {
    /// Whether another attempt of the same call can succeed.
    ///
    /// True for timeouts, connection failures, `5xx` answers, `429 Too Many
    /// Requests` and `408 Request Timeout`; false for invalid input, `4xx`
    /// answers such as a bad signature or an unknown app, and webhook errors.
    ///
    /// ```
    /// use pusher_client::Error;
    ///
    /// let busy = Error::Api { status: 503, body: String::new(), retry_after: None };
    /// assert!(busy.is_retryable());
    /// let denied = Error::Api { status: 401, body: "bad signature".into(), retry_after: None };
    /// assert!(!denied.is_retryable());
    /// ```
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Timeout(_) | Error::Connect(_) => true,
            // A request that could not even be built will fail the same way again.
            Error::Http(e) => !e.is_builder(),
            Error::Api { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }

    /// The delay the server asked for before another attempt (`Retry-After`).
    ///
    /// Only `429` and `503` answers carry one; `None` means "use your own backoff"
    /// when [`is_retryable`](Self::is_retryable) is true.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pusher_client::Error;
    ///
    /// let err = Error::Api {
    ///     status: 429,
    ///     body: String::new(),
    ///     retry_after: Some(Duration::from_secs(2)),
    /// };
    /// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    /// ```
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the error was raised by validation, before anything was sent.
    ///
    /// ```
    /// use pusher_client::Error;
    ///
    /// assert!(Error::NoChannels.is_invalid_input());
    /// ```
    #[must_use]
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidChannelName { .. }
                | Error::ChannelNameTooLong { .. }
                | Error::InvalidEventName { .. }
                | Error::NoChannels
                | Error::TooManyChannels { .. }
                | Error::EmptyBatch
                | Error::BatchTooLarge { .. }
                | Error::PayloadTooLarge { .. }
                | Error::InvalidSocketId { .. }
                | Error::InvalidUserId { .. }
                | Error::MissingUserId { .. }
                | Error::WrongChannelType { .. }
                | Error::EncryptedMultipleChannels { .. }
                | Error::MissingMasterKey { .. }
                | Error::Serialize(_)
        )
    }

    /// The HTTP status of a server answer, if this error carries one.
    ///
    /// ```
    /// use pusher_client::Error;
    ///
    /// let err = Error::Api { status: 404, body: "no such app".into(), retry_after: None };
    /// assert_eq!(err.status(), Some(404));
    /// ```
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub(crate) fn from_reqwest(err: reqwest::Error) -> Self {
        // The URL holds the signed query (key and signature, never the secret);
        // drop it anyway so errors stay short and free of credentials.
        let err = err.without_url();
        if err.is_timeout() {
            Error::Timeout(err)
        } else if err.is_connect() {
            Error::Connect(err)
        } else {
            Error::Http(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses() {
        let api = |status| Error::Api {
            status,
            body: String::new(),
            retry_after: None,
        };
        for status in [500, 502, 503, 504, 429, 408] {
            assert!(api(status).is_retryable(), "{status}");
        }
        for status in [400, 401, 403, 404, 413] {
            assert!(!api(status).is_retryable(), "{status}");
        }
        assert!(!Error::NoChannels.is_retryable());
        assert!(Error::NoChannels.is_invalid_input());
        assert!(!api(500).is_invalid_input());
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static + std::error::Error>() {}
        assert_bounds::<Error>();
    }
}
