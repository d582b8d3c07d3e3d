//! The signup flow, end to end: `POST /api/signup` starts the
//! `handle_user_signup` workflow, whose steps report progress and finally
//! notify the browser through Pusher Channels; a page served by the same
//! process shows each event live with `pusher-js`.
//!
//! With no Pusher configuration the server starts an embedded
//! Pusher-compatible server ([`pusher_client::server::LocalServer`]), so it
//! runs on a fresh machine with no account.
#![warn(missing_docs)]

pub mod config;
pub mod http;
pub mod notifier;
pub mod runs;
pub mod workflow;
