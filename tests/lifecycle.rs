//! Run lifecycle: idempotent start, cancellation, step metadata, shutdown
//! and hand-over between engines.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tests::{bump, count, engine_on, fast};
use workflow_core::{
    CancelOutcome, Engine, Error, MemoryStore, RetryableError, RunStatus, StartOptions,
    StepContext, StepError, sleep, step, workflow,
};

#[step]
async fn record(key: String) -> Result<u32, StepError> {
    Ok(bump(&key))
}

#[workflow]
async fn once(key: String) -> Result<u32, StepError> {
    record(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_starts_one_run() {
    let engine = engine_on(MemoryStore::new()).await;
    let opts = StartOptions::default().idempotency_key("order-1");
    let a = engine
        .start_with(once, ("life/idem".into(),), opts.clone())
        .await
        .unwrap();
    let b = engine
        .start_with(once, ("life/idem".into(),), opts.clone())
        .await
        .unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(a.result().await.unwrap(), 1);
    let c = engine
        .start_with(once, ("life/idem".into(),), opts)
        .await
        .unwrap();
    assert_eq!(c.id(), a.id(), "also after the run finished");
    assert_eq!(count("life/idem"), 1);
    // The same key for another workflow is a conflict, not a silent reuse.
    let err = engine
        .start_with(
            sleepy,
            ("x".into(),),
            StartOptions::default().idempotency_key("order-1"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::KeyConflict { .. }), "{err:?}");
    engine.shutdown().await;
}

#[workflow]
async fn sleepy(key: String) -> Result<(), StepError> {
    record(key.clone()).await?;
    sleep("30s").await;
    record(key).await?;
    Ok(())
}

#[step]
async fn stuck(key: String) -> Result<(), StepError> {
    bump(&key);
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(())
}

#[workflow]
async fn busy(key: String) -> Result<(), StepError> {
    stuck(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_sleeping_and_running_runs() {
    let engine = engine_on(MemoryStore::new()).await;
    let asleep = engine
        .start(sleepy, ("life/cancel-sleep".into(),))
        .await
        .unwrap();
    let running = engine
        .start(busy, ("life/cancel-busy".into(),))
        .await
        .unwrap();
    while asleep.status().await.unwrap() != RunStatus::Sleeping || count("life/cancel-busy") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(asleep.cancel().await.unwrap(), CancelOutcome::Cancelled);
    let t = std::time::Instant::now();
    assert_eq!(running.cancel().await.unwrap(), CancelOutcome::Cancelled);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "a running run stops at once"
    );
    for run in [&asleep, &running] {
        assert_eq!(run.status().await.unwrap(), RunStatus::Cancelled);
        assert!(matches!(run.result().await, Err(Error::RunCancelled(_))));
    }
    assert_eq!(
        asleep.cancel().await.unwrap(),
        CancelOutcome::AlreadyFinished(RunStatus::Cancelled)
    );
    // The sleeping run never woke to run its second step.
    assert_eq!(count("life/cancel-sleep"), 1);
    engine.shutdown().await;
}

static KEYS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

#[step(max_retries = 2, initial_backoff = "10ms")]
async fn charge_card(amount: u64) -> Result<u64, StepError> {
    let ctx = StepContext::current().expect("inside a step");
    KEYS.lock().unwrap().insert(ctx.idempotency_key());
    assert_eq!(ctx.name(), "charge_card");
    if ctx.attempt() < 3 {
        return Err(RetryableError::new("gateway timeout").into());
    }
    Ok(amount)
}

#[workflow]
async fn checkout(amount: u64) -> Result<u64, StepError> {
    charge_card(amount).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_metadata_gives_a_stable_idempotency_key() {
    let engine = engine_on(MemoryStore::new()).await;
    let run = engine.start(checkout, (99,)).await.unwrap();
    assert_eq!(run.result().await.unwrap(), 99);
    let keys = KEYS.lock().unwrap().clone();
    assert_eq!(
        keys.len(),
        1,
        "the same key for all three attempts: {keys:?}"
    );
    assert_eq!(keys.into_iter().next().unwrap(), format!("{}:0", run.id()));
    assert!(StepContext::current().is_none());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hands_runs_to_another_engine() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let first = fast(Engine::builder().shared_store(store.clone()))
        .build()
        .await
        .unwrap();
    let run = first.start(busy, ("life/handover".into(),)).await.unwrap();
    while count("life/handover") == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = std::time::Instant::now();
    first.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(
        first.run(run.id()).await.unwrap().status,
        RunStatus::Pending,
        "released"
    );
    assert!(matches!(
        first.start(once, ("x".into(),)).await,
        Err(Error::ShutDown)
    ));

    let second = fast(Engine::builder().shared_store(store))
        .build()
        .await
        .unwrap();
    // The second engine picks the run up at once (no lease to wait for) and
    // runs the interrupted step again.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while count("life/handover") < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(count("life/handover"), 2);
    assert_eq!(
        second.run(run.id()).await.unwrap().owner.as_ref(),
        Some(second.worker_id())
    );
    second.cancel(run.id()).await.unwrap();
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_only_engine_starts_runs_that_a_worker_executes() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let client = fast(Engine::builder().shared_store(store.clone()).worker(false))
        .build()
        .await
        .unwrap();
    let run = client.start(once, ("life/client".into(),)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(run.status().await.unwrap(), RunStatus::Pending);
    let worker = fast(Engine::builder().shared_store(store))
        .build()
        .await
        .unwrap();
    assert_eq!(run.result().await.unwrap(), 1);
    worker.shutdown().await;
    client.shutdown().await;
}

#[step]
async fn tick(key: String, i: u32) -> Result<u32, StepError> {
    bump(&key);
    tokio::time::sleep(Duration::from_millis(30)).await;
    Ok(i)
}

#[workflow]
async fn ticking(key: String) -> Result<u32, StepError> {
    let mut last = 0;
    for i in 0..200 {
        last = tick(key.clone(), i).await?;
    }
    Ok(last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_executing_in_another_engine_is_cancelled_at_its_next_step() {
    let store = std::sync::Arc::new(MemoryStore::new());
    let worker = fast(Engine::builder().shared_store(store.clone()))
        .build()
        .await
        .unwrap();
    let client = fast(Engine::builder().shared_store(store).worker(false))
        .build()
        .await
        .unwrap();
    let run = worker
        .start(ticking, ("life/remote-cancel".into(),))
        .await
        .unwrap();
    while count("life/remote-cancel") < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The client engine does not execute the run: it can only ask.
    assert_eq!(
        client.cancel(run.id()).await.unwrap(),
        CancelOutcome::Requested
    );
    let t = std::time::Instant::now();
    assert!(matches!(
        client.handle::<u32>(run.id()).result().await,
        Err(Error::RunCancelled(_))
    ));
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stopped at its next step"
    );
    let ran = count("life/remote-cancel");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        count("life/remote-cancel"),
        ran,
        "no step ran after the cancellation"
    );
    assert!(ran < 200);
    worker.shutdown().await;
    client.shutdown().await;
}

#[step]
async fn keeps_working(key: String) -> Result<(), StepError> {
    for _ in 0..600 {
        bump(&key);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[workflow]
async fn long_haul(key: String) -> Result<(), StepError> {
    keeps_working(key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_stops_executing_the_run() {
    use workflow_core::store::Lease;
    use workflow_core::{Store, Timestamp, WorkerId};

    let store = std::sync::Arc::new(MemoryStore::new());
    let engine = fast(Engine::builder().shared_store(store.clone()))
        .build()
        .await
        .unwrap();
    let run = engine
        .start(long_haul, ("life/lost-lease".into(),))
        .await
        .unwrap();
    while count("life/lost-lease") < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Another worker takes the run over, as it may once a lease has lapsed
    // (a stalled process, a store outage longer than the lease).
    let thief = Lease {
        worker: WorkerId::from("other-worker".to_owned()),
        until: Timestamp::now() + Duration::from_secs(60),
    };
    let later = Timestamp::now() + Duration::from_secs(10);
    let taken = store.claim_due(&thief, later, 10, None).await.unwrap();
    assert_eq!(taken.iter().map(|r| r.id).collect::<Vec<_>>(), [run.id()]);
    let journal = store.load_events(run.id()).await.unwrap().len();

    // At its next renewal the engine learns it lost the run and stops it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let before = count("life/lost-lease");
        tokio::time::sleep(Duration::from_millis(200)).await;
        if count("life/lost-lease") == before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the step kept running"
        );
    }
    assert_eq!(
        store.load_events(run.id()).await.unwrap().len(),
        journal,
        "it recorded nothing"
    );
    assert_eq!(
        store.run(run.id()).await.unwrap().unwrap().owner,
        Some(thief.worker)
    );
    engine.shutdown().await;
}
