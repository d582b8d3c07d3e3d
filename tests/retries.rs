//! Retry semantics: fatal errors, backoff delays, `retry_after`, and
//! workflows that handle a failed step.

use std::time::Duration;

use tests::{bump, count, memory_engine};
use workflow_core::{
    Error, EventKind, FatalError, RetryableError, RunStatus, StepContext, StepError, step, workflow,
};

#[step(max_retries = 5, initial_backoff = "10ms")]
async fn rejects(key: String) -> Result<(), StepError> {
    bump(&key);
    Err(FatalError::new("invalid data").into())
}

#[workflow]
async fn fatal_flow(key: String) -> Result<(), StepError> {
    rejects(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_errors_are_never_retried() {
    let engine = memory_engine().await;
    let run = engine
        .start(fatal_flow, ("retries/fatal".into(),))
        .await
        .unwrap();
    let err = run.result().await.unwrap_err();
    let Error::RunFailed { error, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(error.fatal);
    assert_eq!(error.message, "invalid data");
    assert_eq!(count("retries/fatal"), 1);
    let starts = run
        .journal()
        .await
        .unwrap()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StepStarted { .. }))
        .count();
    assert_eq!(starts, 1);
    assert_eq!(run.status().await.unwrap(), RunStatus::Failed);
    engine.shutdown().await;
}

#[step(
    max_retries = 3,
    initial_backoff = "100ms",
    backoff_factor = 2.0,
    jitter = false
)]
async fn flaky(key: String) -> Result<u32, StepError> {
    let n = bump(&key);
    if n <= 3 {
        return Err(std::io::Error::other(format!("connection reset ({n})")).into());
    }
    Ok(n)
}

#[workflow]
async fn flaky_flow(key: String) -> Result<u32, StepError> {
    flaky(key).await
}

/// The gaps between attempts, from the journal.
fn attempt_gaps(journal: &[workflow_core::Event]) -> Vec<Duration> {
    let starts: Vec<_> = journal
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StepStarted { .. }))
        .map(|e| e.at)
        .collect();
    starts.windows(2).map(|w| w[0].until(w[1])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_errors_follow_the_backoff_policy() {
    let engine = memory_engine().await;
    let run = engine
        .start(flaky_flow, ("retries/flaky".into(),))
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 4);
    let journal = run.journal().await.unwrap();
    let gaps = attempt_gaps(&journal);
    assert_eq!(gaps.len(), 3);
    for (gap, expected) in gaps.iter().zip([100, 200, 400]) {
        let expected = Duration::from_millis(expected);
        assert!(
            *gap >= expected && *gap < expected + Duration::from_millis(250),
            "gap {gap:?}, expected about {expected:?} (all: {gaps:?})"
        );
    }
    // The recorded retry times match the policy.
    let retry_delays: Vec<_> = journal
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StepRetrying { retry_at, .. } => Some(e.at.until(*retry_at).as_millis()),
            _ => None,
        })
        .collect();
    assert_eq!(retry_delays, [100, 200, 400]);
    engine.shutdown().await;
}

#[step(max_retries = 2, initial_backoff = "10ms", jitter = false)]
async fn rate_limited(key: String) -> Result<(), StepError> {
    if bump(&key) == 1 {
        return Err(RetryableError::new("slow down")
            .retry_after(Duration::from_millis(600))
            .into());
    }
    Ok(())
}

#[workflow]
async fn rate_limited_flow(key: String) -> Result<(), StepError> {
    rate_limited(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_overrides_the_backoff() {
    let engine = memory_engine().await;
    let run = engine
        .start(rate_limited_flow, ("retries/after".into(),))
        .await
        .unwrap();
    run.result().await.unwrap();
    let gaps = attempt_gaps(&run.journal().await.unwrap());
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= Duration::from_millis(600), "{gaps:?}");
    assert!(gaps[0] < Duration::from_millis(1500), "{gaps:?}");
    engine.shutdown().await;
}

#[step(max_retries = 1, initial_backoff = "10ms")]
async fn always_fails(key: String) -> Result<String, StepError> {
    let attempt = StepContext::current().map(|s| s.attempt()).unwrap_or(0);
    bump(&key);
    Err(RetryableError::new(format!("down on attempt {attempt}")).into())
}

#[step]
async fn compensate(reason: String) -> Result<String, StepError> {
    Ok(format!("refunded because {reason}"))
}

#[workflow]
async fn compensating_flow(key: String) -> Result<(String, u32), StepError> {
    match always_fails(key).await {
        Ok(v) => Ok((v, 0)),
        Err(e) => {
            let attempts = e.attempts().unwrap_or(0);
            let text = compensate(e.to_string()).await?;
            Ok((text, attempts))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_can_handle_a_failed_step_and_go_on() {
    let engine = memory_engine().await;
    let run = engine
        .start(compensating_flow, ("retries/compensate".into(),))
        .await
        .unwrap();
    let (text, attempts) = run.result().await.unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(
        text,
        "refunded because step `always_fails` failed after 2 attempts: down on attempt 2"
    );
    assert_eq!(count("retries/compensate"), 2);
    assert_eq!(run.status().await.unwrap(), RunStatus::Completed);
    engine.shutdown().await;
}

#[workflow]
async fn propagating_flow(key: String) -> Result<String, StepError> {
    always_fails(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhandled_step_failure_fails_the_run_with_the_steps_error() {
    let engine = memory_engine().await;
    let run = engine
        .start(propagating_flow, ("retries/propagate".into(),))
        .await
        .unwrap();
    let err = run.result().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("step `always_fails` failed after 2 attempt(s): down on attempt 2"),
        "{err}"
    );
    engine.shutdown().await;
}
