//! The `handle_user_signup` workflow and its steps.

use serde::{Deserialize, Serialize};
use workflow_core::{FatalError, RetryableError, StepContext, StepError, sleep, step, workflow};

use crate::notifier::{
    NOTIFICATION_EVENT, PUBLIC_CHANNEL, Services, now_millis, progress_data, user_channel,
};

/// A user the workflow created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The id chosen at signup (see [`new_user_id`](crate::notifier::new_user_id)).
    pub id: String,
    /// The email address.
    pub email: String,
}

/// The onboarding notification sent to the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Text for people.
    pub message: String,
    /// The user's id.
    pub user_id: String,
    /// The user's email.
    pub email: String,
    /// What kind of notification this is (`onboarding`).
    #[serde(rename = "type")]
    pub kind: String,
    /// When it was sent (ms since the Unix epoch).
    pub timestamp: u64,
    /// The same for every attempt of the sending step, so that a client can
    /// drop a repeat.
    pub idempotency_key: String,
    /// The run that sent it.
    pub run_id: String,
}

/// What a completed signup returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `completed`.
    pub status: String,
    /// The notification that was sent.
    pub notification: Notification,
}

fn services() -> Result<std::sync::Arc<Services>, StepError> {
    Services::get().map_err(|m| FatalError::new(m).into())
}

fn step_meta() -> (String, u32, String) {
    StepContext::current()
        .map(|s| (s.run_id().to_string(), s.attempt(), s.idempotency_key()))
        .unwrap_or_default()
}

/// Creates the user record.
#[step]
pub async fn create_user(email: String, user_id: String) -> Result<User, StepError> {
    let services = services()?;
    let (run_id, attempt, _) = step_meta();
    let user = User { id: user_id, email };
    services.progress(
        &user.id,
        progress_data(&run_id, "create_user", "completed", attempt, None),
    );
    Ok(user)
}

/// Sends the welcome email; the mail server fails now and then.
#[step(max_retries = 5, initial_backoff = "500ms", max_backoff = "4s")]
pub async fn send_welcome_email(user: User) -> Result<(), StepError> {
    let services = services()?;
    let (run_id, attempt, _) = step_meta();
    if rand::random::<f64>() < services.failure_rate {
        let detail = Some("the mail server did not answer; retrying".to_owned());
        services.progress(
            &user.id,
            progress_data(&run_id, "send_welcome_email", "retrying", attempt, detail),
        );
        return Err(RetryableError::new("SMTP server unavailable").into());
    }
    services.progress(
        &user.id,
        progress_data(&run_id, "send_welcome_email", "completed", attempt, None),
    );
    Ok(())
}

/// Sends the onboarding email and tells the browser, on the public channel
/// and on the user's private channel.
#[step(max_retries = 4, initial_backoff = "500ms", max_backoff = "4s")]
pub async fn send_onboarding_email(user: User) -> Result<Notification, StepError> {
    let services = services()?;
    let (run_id, _, idempotency_key) = step_meta();
    let notification = Notification {
        message: format!(
            "Welcome aboard, {}! Your onboarding email is on its way.",
            user.email
        ),
        user_id: user.id.clone(),
        email: user.email.clone(),
        kind: "onboarding".into(),
        timestamp: now_millis(),
        idempotency_key,
        run_id: run_id.clone(),
    };
    let channels = [PUBLIC_CHANNEL.to_owned(), user_channel(&user.id)];
    let event = pusher_client::Event::json(channels, NOTIFICATION_EVENT, &notification)
        .map_err(|e| FatalError::with_source("the notification is not a valid Pusher event", e))?;
    match services.pusher.trigger_event(&event).await {
        Ok(_) => {}
        Err(e) if e.is_retryable() => {
            let mut error = RetryableError::with_source("could not reach the Pusher server", e);
            if let Some(delay) = error_retry_after(&error) {
                error = error.retry_after(delay);
            }
            return Err(error.into());
        }
        Err(e) => {
            return Err(FatalError::with_source("Pusher rejected the notification", e).into());
        }
    }
    // The notification itself tells the page that this step completed.
    Ok(notification)
}

fn error_retry_after(error: &RetryableError) -> Option<std::time::Duration> {
    std::error::Error::source(error)
        .and_then(|e| e.downcast_ref::<pusher_client::Error>())
        .and_then(pusher_client::Error::retry_after)
}

/// The signup: create the user, welcome them, wait, onboard them. The user
/// id is chosen by the caller so that it can hand the browser the user's
/// channel before the run starts.
#[workflow]
pub async fn handle_user_signup(email: String, user_id: String) -> Result<Outcome, StepError> {
    let user = create_user(email, user_id).await?;
    send_welcome_email(user.clone()).await?;
    let pause = Services::get().map(|s| s.sleep).unwrap_or_default();
    sleep(pause).await;
    let notification = send_onboarding_email(user).await?;
    Ok(Outcome {
        status: "completed".into(),
        notification,
    })
}
