//! A complete, typed client for the [Pusher Channels] HTTP API, also suited to
//! self-hosted Pusher-compatible servers such as Sockudo and Soketi.
//!
//! * **HTTP API**: trigger events to one or many channels (with socket exclusion
//!   and channel attributes), batch triggers, channel list, channel state,
//!   presence users, send to a signed-in user, terminate a user's connections;
//!   every request signed (`auth_version=1.0`), typed answers.
//! * **Auth endpoints**: the JSON pusher-js expects for private, presence and
//!   end-to-end encrypted channels and for user sign-in.
//! * **End-to-end encryption**: events to `private-encrypted-` channels are sealed
//!   with NaCl secretbox under a per-channel key derived from a master key.
//! * **Webhooks**: constant-time signature verification with key rotation and
//!   typed events.
//! * **Validation before sending** with typed errors, and errors that say whether
//!   a retry can help ([`Error::is_retryable`], [`Error::retry_after`]).
//!
//! Secrets never appear in `Debug` output, errors or logs.
//!
//! ```no_run
//! use pusher_client::Client;
//! use serde_json::json;
//!
//! # async fn run() -> Result<(), pusher_client::Error> {
//! let client = Client::builder()
//!     .app_id("123")
//!     .key("key")
//!     .secret("secret")
//!     .cluster("eu")
//!     .build()?;
//! client.trigger("orders", "order-created", &json!({ "id": 42 })).await?;
//!
//! // In the handler of pusher-js's channel authorization request:
//! let body = client.authorize_channel("1234.5678", "private-orders")?.to_json();
//! # let _ = body;
//! # Ok(()) }
//! ```
//!
//! [Pusher Channels]: https://pusher.com/docs/channels/library_auth_reference/rest-api/
#![warn(missing_docs)]

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod auth;
pub mod channels;
mod client;
pub mod config;
pub mod encryption;
pub mod error;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
pub mod signing;
pub mod trigger;
pub mod validation;
pub mod webhook;

pub use auth::{ChannelAuth, PresenceMember, UserAuth};
pub use channels::{ChannelAttribute, ChannelInfo, ChannelList, ChannelsQuery, User};
pub use client::Client;
pub use config::ClientBuilder;
pub use encryption::MasterKey;
pub use error::{Error, Result};
pub use trigger::{BatchEvent, BatchResponse, Event, TriggerResponse};
pub use validation::Limits;
pub use webhook::{Verifier, Webhook, WebhookEvent};
