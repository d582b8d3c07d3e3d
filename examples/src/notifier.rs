//! What the workflow's steps share: one Pusher client, the settings, and the
//! channel and token scheme the page uses.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// The public channel every onboarding notification also goes to.
pub const PUBLIC_CHANNEL: &str = "my-channel";
/// The onboarding notification's event name.
pub const NOTIFICATION_EVENT: &str = "my-event";
/// The progress event's name (on the user's private channel).
pub const PROGRESS_EVENT: &str = "progress";

/// Shared services of the workflow's steps.
#[derive(Debug)]
pub struct Services {
    /// The one Pusher client of the process.
    pub pusher: pusher_client::Client,
    /// The workflow's durable sleep.
    pub sleep: Duration,
    /// How often the welcome email fails.
    pub failure_rate: f64,
    token_secret: Vec<u8>,
}

static SERVICES: OnceLock<Arc<Services>> = OnceLock::new();

impl Services {
    /// Services over a Pusher client; user tokens are keyed from
    /// `token_secret`.
    pub fn new(
        pusher: pusher_client::Client,
        sleep: Duration,
        failure_rate: f64,
        token_secret: &[u8],
    ) -> Self {
        Self {
            pusher,
            sleep,
            failure_rate,
            token_secret: token_secret.to_vec(),
        }
    }

    /// Makes these the services the steps use. The first call wins.
    pub fn install(self) -> Arc<Services> {
        SERVICES.get_or_init(|| Arc::new(self)).clone()
    }

    /// The installed services.
    ///
    /// # Errors
    ///
    /// A message when the server has not installed them (a step running in a
    /// process that is not the signup server).
    pub fn get() -> Result<Arc<Services>, String> {
        SERVICES
            .get()
            .cloned()
            .ok_or_else(|| "the signup services are not set up in this process".into())
    }

    /// The token a browser presents to subscribe to `user_id`'s private
    /// channel.
    pub fn user_token(&self, user_id: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.token_secret).expect("HMAC takes any key");
        mac.update(user_id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `token` is `user_id`'s token (constant time).
    pub fn check_token(&self, user_id: &str, token: &str) -> bool {
        let Ok(bytes) = hex::decode(token) else {
            return false;
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.token_secret).expect("HMAC takes any key");
        mac.update(user_id.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }

    /// Publishes a progress event for a run on its user's channel, in the
    /// background: progress is best effort, and a slow Pusher server must not
    /// hold up the step. A failure is logged.
    pub fn progress(&self, user_id: &str, data: Value) {
        let channel = user_channel(user_id);
        let pusher = self.pusher.clone();
        tokio::spawn(async move {
            if let Err(e) = pusher.trigger(&channel, PROGRESS_EVENT, &data).await {
                tracing::warn!(error = %e, %channel, "could not publish progress");
            }
        });
    }
}

/// A new, unguessable user id. Signups get a fresh one each, so knowing
/// someone's email does not give access to their channel.
pub fn new_user_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("u{}", hex::encode(bytes))
}

/// The private channel of a user.
pub fn user_channel(user_id: &str) -> String {
    format!("private-user-{user_id}")
}

/// The user id a private user channel belongs to.
pub fn channel_user(channel: &str) -> Option<&str> {
    channel
        .strip_prefix("private-user-")
        .filter(|id| !id.is_empty())
}

/// A progress payload.
pub fn progress_data(
    run_id: &str,
    step: &str,
    state: &str,
    attempt: u32,
    detail: Option<String>,
) -> Value {
    json!({
        "runId": run_id,
        "step": step,
        "state": state,
        "attempt": attempt,
        "detail": detail,
        "timestamp": now_millis(),
    })
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_fresh_and_channels_round_trip() {
        let id = new_user_id();
        assert_ne!(id, new_user_id());
        assert_eq!(id.len(), 25);
        assert_eq!(channel_user(&user_channel(&id)), Some(id.as_str()));
        assert_eq!(channel_user("private-other"), None);
    }

    #[test]
    fn tokens_are_per_user() {
        let pusher = pusher_client::Client::builder()
            .app_id("1")
            .key("k")
            .secret("s")
            .host("127.0.0.1")
            .build()
            .unwrap();
        let s = Services::new(pusher, Duration::ZERO, 0.0, b"secret");
        let token = s.user_token("u1");
        assert!(s.check_token("u1", &token));
        assert!(!s.check_token("u2", &token));
        assert!(!s.check_token("u1", "zz"));
    }
}
