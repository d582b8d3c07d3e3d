//! Replay: deterministic clock and randomness, and non-determinism
//! detection when a workflow's code changes under a run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use tests::{bump, count, memory_engine};
use workflow_core::{Error, RunStatus, StepError, now, random, sleep, step, uuid, workflow};

static SEEN: Mutex<BTreeMap<String, String>> = Mutex::new(BTreeMap::new());

#[step]
async fn remember(key: String, value: String) -> Result<(), StepError> {
    SEEN.lock().unwrap().insert(key, value);
    Ok(())
}

#[workflow]
async fn draws(key: String) -> Result<String, StepError> {
    let t = now().duration_since(UNIX_EPOCH).unwrap().as_millis();
    let values = format!("{t} {} {}", random(), uuid());
    remember(key, values.clone()).await?;
    sleep("300ms").await; // unloaded, then replayed: the values are computed again
    Ok(values)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_and_randomness_replay_identically() {
    let engine = memory_engine().await;
    let a = engine
        .start(draws, ("replay/draws-a".into(),))
        .await
        .unwrap();
    let b = engine
        .start(draws, ("replay/draws-b".into(),))
        .await
        .unwrap();
    let (va, vb) = (a.result().await.unwrap(), b.result().await.unwrap());
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(
        seen["replay/draws-a"], va,
        "values after replay equal the first execution's"
    );
    assert_eq!(seen["replay/draws-b"], vb);
    assert_ne!(
        va.split(' ').nth(1),
        vb.split(' ').nth(1),
        "each run has its own randomness"
    );
    engine.shutdown().await;
}

/// Stands in for a deploy that changed the workflow's code.
static CODE_CHANGED: AtomicBool = AtomicBool::new(false);

#[step]
async fn charge(key: String) -> Result<(), StepError> {
    bump(&format!("{key}/charge"));
    Ok(())
}

#[step]
async fn refund(key: String) -> Result<(), StepError> {
    bump(&format!("{key}/refund"));
    Ok(())
}

#[workflow]
async fn evolving(key: String) -> Result<(), StepError> {
    if CODE_CHANGED.load(Ordering::SeqCst) {
        refund(key.clone()).await?;
    } else {
        charge(key.clone()).await?;
    }
    sleep("500ms").await;
    charge(key).await
}

#[workflow]
async fn stable(key: String) -> Result<(), StepError> {
    charge(key.clone()).await?;
    sleep("500ms").await;
    charge(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_code_fails_the_run_with_a_non_determinism_error() {
    let engine = memory_engine().await;
    let changed = engine
        .start(evolving, ("replay/evolving".into(),))
        .await
        .unwrap();
    let untouched = engine
        .start(stable, ("replay/stable".into(),))
        .await
        .unwrap();
    // Both are asleep (unloaded) after their first step.
    for _ in 0..100 {
        if changed.status().await.unwrap() == RunStatus::Sleeping {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(changed.status().await.unwrap(), RunStatus::Sleeping);
    CODE_CHANGED.store(true, Ordering::SeqCst);

    let err = changed.result().await.unwrap_err();
    let Error::RunFailed { error, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        error.message.contains(
            "operation #0 was recorded as step `charge`, but the code now requests step `refund`"
        ),
        "{}",
        error.message
    );
    assert!(
        error.message.starts_with("non-deterministic workflow"),
        "{}",
        error.message
    );
    // Nothing ran for the diverging code.
    assert_eq!(count("replay/evolving/refund"), 0);
    assert_eq!(count("replay/evolving/charge"), 1);
    // The other run is unaffected.
    untouched.result().await.unwrap();
    assert_eq!(count("replay/stable/charge"), 2);
    engine.shutdown().await;
}

#[workflow]
async fn bad_sleep(_key: String) -> Result<(), StepError> {
    sleep("5 parsecs").await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_sleep_fails_the_run_with_the_text() {
    let engine = memory_engine().await;
    let run = engine
        .start(bad_sleep, ("replay/bad-sleep".into(),))
        .await
        .unwrap();
    let err = run.result().await.unwrap_err().to_string();
    assert!(
        err.contains("sleep(\"5 parsecs\")") && err.contains("\"250ms\""),
        "{err}"
    );
    engine.shutdown().await;
}

#[workflow]
async fn until(_key: String) -> Result<u64, StepError> {
    let start = now();
    workflow_core::sleep_until(start + Duration::from_millis(400)).await;
    let end = now();
    Ok(end.duration_since(start).unwrap().as_millis() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleep_until_a_timestamp_wakes_then() {
    let engine = memory_engine().await;
    let run = engine.start(until, ("replay/until".into(),)).await.unwrap();
    let slept = run.result().await.unwrap();
    assert!((400..900).contains(&slept), "slept {slept} ms");
    engine.shutdown().await;
}
