//! Parallel steps with `join!`, `try_join!` and `select!`, executed and then
//! replayed (each workflow sleeps long enough to be unloaded and resumed).

use std::time::Duration;

use tests::{bump, count, memory_engine, sqlite_engine};
use workflow_core::{EventKind, StepError, sleep, step, workflow};

#[step]
async fn slow(key: String, ms: u64) -> Result<u64, StepError> {
    bump(&format!("{key}/slow/{ms}"));
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

#[workflow]
async fn fan_out(key: String) -> Result<Vec<u64>, StepError> {
    let (a, b, c) = futures::try_join!(
        slow(key.clone(), 60),
        slow(key.clone(), 20),
        slow(key.clone(), 40)
    )?;
    // Sequences inside concurrent branches.
    let (left, right) = futures::join!(
        async {
            let x = slow(key.clone(), 30).await?;
            let y = slow(key.clone(), 31).await?;
            Ok::<_, StepError>(x + y)
        },
        async {
            sleep("15ms").await;
            slow(key.clone(), 5).await
        }
    );
    sleep("300ms").await; // unloaded here, replayed when it wakes
    let d = slow(key.clone(), 1).await?;
    Ok(vec![a, b, c, left?, right?, d])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_run_concurrently_and_replay_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sqlite_engine(dir.path()).await;
    let key = "parallel/fan";
    let run = engine.start(fan_out, (key.into(),)).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), run.result())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, [60, 20, 40, 61, 5, 1]);
    for ms in [60, 20, 40, 30, 31, 5, 1] {
        assert_eq!(
            count(&format!("{key}/slow/{ms}")),
            1,
            "step slow({ms}) ran once"
        );
    }
    // The first three ran concurrently: all started before any completed.
    let journal = run.journal().await.unwrap();
    let first_completion = journal
        .iter()
        .position(|e| matches!(e.kind, EventKind::StepCompleted { .. }))
        .unwrap();
    let starts_before = journal[..first_completion]
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StepStarted { .. }))
        .count();
    assert_eq!(starts_before, 3);
    // It really was unloaded and resumed: the sleep's wake-up is journaled.
    assert!(
        journal
            .iter()
            .any(|e| matches!(e.kind, EventKind::WaitCompleted { op } if op == 7))
    );
    engine.shutdown().await;
}

#[workflow]
async fn race(key: String, step_ms: u64, timeout_ms: u64) -> Result<String, StepError> {
    let winner = tokio::select! {
        biased;
        r = slow(key.clone(), step_ms) => format!("step {}", r?),
        () = sleep(Duration::from_millis(timeout_ms)) => "timeout".to_string(),
    };
    sleep("300ms").await; // unloaded here, replayed when it wakes
    Ok(winner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_raced_against_a_sleep_keeps_its_outcome_on_replay() {
    let engine = memory_engine().await;
    let fast = engine
        .start(race, ("parallel/race-fast".into(), 10, 2_000))
        .await
        .unwrap();
    let slow_run = engine
        .start(race, ("parallel/race-slow".into(), 3_000, 50))
        .await
        .unwrap();
    assert_eq!(fast.result().await.unwrap(), "step 10");
    assert_eq!(slow_run.result().await.unwrap(), "timeout");
    // The slow step was dropped when the timer won, and replay did not
    // start it again.
    assert_eq!(count("parallel/race-slow/slow/3000"), 1);
    assert_eq!(count("parallel/race-fast/slow/10"), 1);
    let journal = slow_run.journal().await.unwrap();
    assert!(
        !journal
            .iter()
            .any(|e| matches!(e.kind, EventKind::StepCompleted { .. }))
    );
    engine.shutdown().await;
}
