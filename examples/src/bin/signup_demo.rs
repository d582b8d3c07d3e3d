//! The signup flow on the embedded defaults: a durable workflow on SQLite
//! that creates a user, sends a welcome email (which fails at random and is
//! retried), sleeps durably, sends an onboarding email, and prints its
//! journal.
//!
//! ```text
//! cargo run -p examples --bin signup-demo
//! ```
//!
//! Environment: `WORKFLOW_DATABASE_URL` (default `sqlite://workflow.db`),
//! `SIGNUP_SLEEP` (default `5s`), `SIGNUP_FAILURE_RATE` (default `0.3`).

use serde::{Deserialize, Serialize};
use workflow_core::{
    Engine, EventKind, FatalError, RetryableError, StepError, sleep, step, store, workflow,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    id: String,
    email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Outcome {
    status: String,
    user_id: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[step]
async fn create_user(email: String) -> Result<User, StepError> {
    if !email.contains('@') {
        return Err(FatalError::new(format!("`{email}` is not an email address")).into());
    }
    let id = format!("user-{}", &uuid_like(&email)[..8]);
    println!("  create_user: created {id} for {email}");
    Ok(User { id, email })
}

#[step(max_retries = 5, initial_backoff = "200ms", max_backoff = "2s")]
async fn send_welcome_email(user: User) -> Result<(), StepError> {
    let rate: f64 = env_or("SIGNUP_FAILURE_RATE", "0.3").parse().unwrap_or(0.3);
    if rand::random::<f64>() < rate {
        println!(
            "  send_welcome_email: SMTP flaked for {}; will retry",
            user.email
        );
        return Err(RetryableError::new("SMTP server unavailable").into());
    }
    println!("  send_welcome_email: sent to {}", user.email);
    Ok(())
}

#[step]
async fn send_onboarding_email(user: User) -> Result<(), StepError> {
    println!("  send_onboarding_email: sent to {}", user.email);
    Ok(())
}

#[step]
async fn notify(user: User) -> Result<Outcome, StepError> {
    println!("  notify: {} is onboarded", user.id);
    Ok(Outcome {
        status: "completed".into(),
        user_id: user.id,
    })
}

#[workflow]
async fn handle_user_signup(email: String) -> Result<Outcome, StepError> {
    let user = create_user(email).await?;
    send_welcome_email(user.clone()).await?;
    sleep(env_or("SIGNUP_SLEEP", "5s")).await;
    send_onboarding_email(user.clone()).await?;
    notify(user).await
}

/// A short stable digest of a string (FNV-1a), for readable demo ids.
fn uuid_like(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x1000_0000_01b3);
    }
    format!("{h:016x}")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = env_or(store::STORE_URL_VAR, "sqlite://workflow.db");
    let email = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ada@example.com".into());
    println!("store: {url}");
    let engine = Engine::builder()
        .shared_store(store::open_from_url(&url).await?)
        .build()
        .await?;

    let run = engine.start(handle_user_signup, (email.clone(),)).await?;
    println!("started run {} for {email}", run.id());
    let outcome = run.result().await;
    println!("result: {outcome:?}\n\njournal of run {}:", run.id());
    for event in run.journal().await? {
        let detail = match &event.kind {
            EventKind::StepStarted { step, attempt, .. } => format!("{step} (attempt {attempt})"),
            EventKind::StepRetrying {
                attempt,
                error,
                retry_at,
                ..
            } => {
                format!(
                    "attempt {attempt} failed: {}; retry at {retry_at}",
                    error.message
                )
            }
            EventKind::StepFailed {
                attempts, error, ..
            } => {
                format!("after {attempts} attempts: {}", error.message)
            }
            EventKind::WaitCreated { wake_at, .. } => format!("until {wake_at}"),
            EventKind::StepCompleted { output, .. } | EventKind::RunCompleted { output } => {
                output.get().to_owned()
            }
            EventKind::RunFailed { error } => error.message.clone(),
            _ => String::new(),
        };
        let op = event
            .kind
            .op()
            .map(|op| format!("#{op}"))
            .unwrap_or_default();
        println!(
            "  {:>3}  {}  {:<15} {:<4} {detail}",
            event.seq,
            event.at,
            event.kind.name(),
            op
        );
    }
    engine.shutdown().await;
    outcome?;
    Ok(())
}
