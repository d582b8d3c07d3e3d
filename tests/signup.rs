//! The signup workflow of the product's introduction, end to end on SQLite.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tests::{bump, count, sqlite_engine};
use workflow_core::{EventKind, RetryableError, RunStatus, StepError, sleep, step, workflow};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    email: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Outcome {
    status: String,
    user: User,
}

#[step]
async fn create_user(email: String) -> Result<User, StepError> {
    bump(&format!("{email}/create_user"));
    Ok(User { id: 7, email })
}

#[step(
    max_retries = 3,
    initial_backoff = "50ms",
    backoff_factor = 2.0,
    jitter = false
)]
async fn send_welcome_email(user: User) -> Result<(), StepError> {
    let n = bump(&format!("{}/send_welcome_email", user.email));
    if n <= 2 {
        return Err(RetryableError::new(format!("smtp flaked on attempt {n}")).into());
    }
    Ok(())
}

#[step]
async fn send_onboarding_email(user: User) -> Result<(), StepError> {
    bump(&format!("{}/send_onboarding_email", user.email));
    Ok(())
}

#[step]
async fn notify(user: User) -> Result<Outcome, StepError> {
    bump(&format!("{}/notify", user.email));
    Ok(Outcome {
        status: "completed".into(),
        user,
    })
}

#[workflow]
async fn handle_user_signup(email: String) -> Result<Outcome, StepError> {
    let user = create_user(email).await?;
    send_welcome_email(user.clone()).await?;
    sleep("400ms").await;
    send_onboarding_email(user.clone()).await?;
    notify(user).await
}

fn summary(event: &EventKind) -> String {
    match event {
        EventKind::StepStarted {
            op, step, attempt, ..
        } => format!("started #{op} {step} a{attempt}"),
        EventKind::StepRetrying {
            op, attempt, error, ..
        } => {
            format!("retrying #{op} a{attempt}: {}", error.message)
        }
        EventKind::StepCompleted { op, .. } => format!("completed #{op}"),
        EventKind::WaitCreated { op, .. } => format!("wait #{op}"),
        EventKind::WaitCompleted { op } => format!("woke #{op}"),
        other => other.name().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_step_signup_with_a_sleep_completes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sqlite_engine(dir.path()).await;
    let email = "ada@signup.test".to_string();

    let started = std::time::Instant::now();
    let run = engine
        .start(handle_user_signup, (email.clone(),))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "start() returns at once"
    );

    let outcome = tokio::time::timeout(Duration::from_secs(20), run.result())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(outcome.status, "completed");
    assert_eq!(
        outcome.user,
        User {
            id: 7,
            email: email.clone()
        }
    );
    assert_eq!(run.status().await.unwrap(), RunStatus::Completed);

    // Each step ran once, except the flaky one, which ran three times.
    for (step, n) in [
        ("create_user", 1),
        ("send_welcome_email", 3),
        ("send_onboarding_email", 1),
        ("notify", 1),
    ] {
        assert_eq!(count(&format!("{email}/{step}")), n, "{step}");
    }

    let journal = run.journal().await.unwrap();
    let lines: Vec<String> = journal.iter().map(|e| summary(&e.kind)).collect();
    assert_eq!(
        lines,
        [
            "run_created",
            "run_started",
            "started #0 create_user a1",
            "completed #0",
            "started #1 send_welcome_email a1",
            "retrying #1 a1: smtp flaked on attempt 1",
            "started #1 send_welcome_email a2",
            "retrying #1 a2: smtp flaked on attempt 2",
            "started #1 send_welcome_email a3",
            "completed #1",
            "wait #2",
            "woke #2",
            "started #3 send_onboarding_email a1",
            "completed #3",
            "started #4 notify a1",
            "completed #4",
            "run_completed",
        ]
    );
    // Sequence numbers are dense.
    for (i, e) in journal.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
    }
    // The wait lasted its 400 ms.
    let (created, woke) = (&journal[10], &journal[11]);
    let slept = created.at.until(woke.at);
    assert!(slept >= Duration::from_millis(390), "slept {slept:?}");
    // The result is recorded in the journal and the projection.
    let EventKind::RunCompleted { output } = &journal.last().unwrap().kind else {
        panic!()
    };
    let recorded: Outcome = serde_json::from_str(output.get()).unwrap();
    assert_eq!(recorded, outcome);
    engine.shutdown().await;
}

#[tokio::test]
async fn steps_called_outside_a_workflow_are_plain_functions() {
    let user = create_user("plain@signup.test".into()).await.unwrap();
    assert_eq!(user.id, 7);
    // Not retried outside a workflow: the first failure is returned as is.
    let err = send_welcome_email(User {
        id: 1,
        email: "plain2@signup.test".into(),
    })
    .await
    .unwrap_err();
    assert_eq!(err.message(), "smtp flaked on attempt 1");
    assert_eq!(count("plain2@signup.test/send_welcome_email"), 1);
}
