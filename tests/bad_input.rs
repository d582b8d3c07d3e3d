//! Bad input never panics the engine: each problem fails only the affected
//! run, or returns a typed error, with a message a user can act on.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tests::{bump, count, engine_on, fast, sqlite_engine};
use workflow_core::journal::NewEvent;
use workflow_core::store::{CancelOutcome, Created, Lease, NewRun, Renewal};
use workflow_core::{
    Engine, Error, Event, MemoryStore, RunId, RunRecord, RunStatus, SqliteStore, StartOptions,
    StepError, Store, StoreError, Timestamp, WorkerId, sleep, step, workflow,
};

#[step]
async fn add(key: String, n: u64) -> Result<u64, StepError> {
    bump(&key);
    Ok(n + 1)
}

#[workflow]
async fn counter(key: String, n: u64) -> Result<u64, StepError> {
    let m = add(key.clone(), n).await?;
    sleep("300ms").await;
    add(key, m).await
}

fn json(text: &str) -> Box<serde_json::value::RawValue> {
    serde_json::value::RawValue::from_string(text.to_owned()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_workflow_name_fails_only_that_run() {
    let store = Arc::new(MemoryStore::new());
    let ghost = NewRun::new("workflow_that_was_deleted", json("[]"));
    let ghost_id = ghost.id;
    store.create_run(ghost).await.unwrap();
    let engine = fast(Engine::builder().shared_store(store))
        .build()
        .await
        .unwrap();
    let healthy = engine
        .start(counter, ("bad/unknown-healthy".into(), 1))
        .await
        .unwrap();

    let err = engine.handle::<()>(ghost_id).result().await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("no workflow named `workflow_that_was_deleted`"),
        "{message}"
    );
    assert!(
        message.contains("#[workflow(name = "),
        "says how to fix it: {message}"
    );
    assert_eq!(healthy.result().await.unwrap(), 3);

    // Starting an unknown workflow by name is a typed error.
    let err = engine
        .start_by_name("nope", &(1,), StartOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownWorkflow { ref name } if name == "nope"),
        "{err:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_can_leave_unknown_workflows_to_other_processes() {
    let store = Arc::new(MemoryStore::new());
    let other = NewRun::new("workflow_of_another_service", json("[]"));
    let other_id = other.id;
    store.create_run(other).await.unwrap();
    let engine = fast(
        Engine::builder()
            .shared_store(store.clone())
            .claim_unknown_workflows(false),
    )
    .build()
    .await
    .unwrap();
    let mine = engine
        .start(counter, ("bad/filtered".into(), 1))
        .await
        .unwrap();
    assert_eq!(mine.result().await.unwrap(), 3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let record = engine.run(other_id).await.unwrap();
    assert_eq!(
        record.status,
        RunStatus::Pending,
        "left for a process that knows it"
    );
    assert!(record.owner.is_none());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_no_longer_decode_fail_only_that_run() {
    let store = Arc::new(MemoryStore::new());
    // Stored by an older version whose second argument was a string.
    let old = NewRun::new("counter", json(r#"["bad/old-args","seven"]"#));
    let old_id = old.id;
    store.create_run(old).await.unwrap();
    let engine = fast(Engine::builder().shared_store(store))
        .build()
        .await
        .unwrap();
    let err = engine
        .handle::<u64>(old_id)
        .result()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no longer decode as the arguments of workflow `counter`"),
        "{err}"
    );
    assert!(
        err.contains("did the workflow's signature change?"),
        "{err}"
    );
    assert_eq!(count("bad/old-args"), 0);

    // start_by_name checks the arguments before recording anything.
    let err = engine
        .start_by_name("counter", &("x", "y"), StartOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Serialization { .. }), "{err:?}");
    let ok = engine
        .start_by_name("counter", &("bad/by-name", 4), StartOptions::default())
        .await
        .unwrap();
    assert_eq!(ok.result().await.unwrap(), serde_json::json!(6));
    engine.shutdown().await;
}

/// An engine on SQLite in `dir` with two `counter` runs: a victim, asleep
/// when this returns, and a healthy one.
async fn victim_asleep(
    dir: &std::path::Path,
    victim: &str,
    healthy: (&str, u64),
) -> (
    Engine,
    workflow_core::RunHandle<u64>,
    workflow_core::RunHandle<u64>,
) {
    let engine = sqlite_engine(dir).await;
    let victim = engine.start(counter, (victim.into(), 1)).await.unwrap();
    let healthy = engine
        .start(counter, (healthy.0.into(), healthy.1))
        .await
        .unwrap();
    while victim.status().await.unwrap() != RunStatus::Sleeping {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (engine, victim, healthy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_journal_row_fails_only_that_run() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, victim, healthy) =
        victim_asleep(dir.path(), "bad/corrupt", ("bad/corrupt-healthy", 10)).await;
    // Damage the recorded result of the first step while the run sleeps.
    let conn = rusqlite::Connection::open(dir.path().join("workflow.db")).unwrap();
    let changed = conn
        .execute(
            "UPDATE wf_events SET data = '{\"step_completed\": {\"op\": 0, \"outp' \
             WHERE run_id = ?1 AND kind = 'step_completed'",
            [victim.id().to_string()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let err = victim.result().await.unwrap_err().to_string();
    assert!(err.contains("corrupt journal event 3"), "{err}");
    assert!(err.contains("cannot be replayed"), "{err}");
    assert_eq!(healthy.result().await.unwrap(), 12);
    assert_eq!(count("bad/corrupt"), 1, "the damaged run ran nothing more");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_run_row_fails_only_that_run() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, victim, healthy) = victim_asleep(
        dir.path(),
        "bad/corrupt-row",
        ("bad/corrupt-row-healthy", 20),
    )
    .await;
    let conn = rusqlite::Connection::open(dir.path().join("workflow.db")).unwrap();
    let changed = conn
        .execute(
            "UPDATE wf_runs SET input = '[\"bad/corrupt-row\", 1' WHERE id = ?1",
            [victim.id().to_string()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    // When it wakes, the unreadable row is failed rather than claimed again
    // and again ahead of every other run.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let record = loop {
        let conn = rusqlite::Connection::open(dir.path().join("workflow.db")).unwrap();
        let (status, error): (String, Option<String>) = conn
            .query_row(
                "SELECT status, error FROM wf_runs WHERE id = ?1",
                [victim.id().to_string()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        if status == "failed" || std::time::Instant::now() > deadline {
            break (status, error);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record.0, "failed");
    let error = record.1.unwrap();
    assert!(
        error.contains("corrupt run input") && error.contains("cannot be executed"),
        "{error}"
    );
    assert_eq!(healthy.result().await.unwrap(), 22);
    assert_eq!(count("bad/corrupt-row"), 1);
    let after = engine
        .start(counter, ("bad/corrupt-row-after".into(), 5))
        .await
        .unwrap();
    assert_eq!(after.result().await.unwrap(), 7);
    engine.shutdown().await;
}

/// A store that fails on command, to stand in for a database that is down.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    down: AtomicBool,
    /// Runs whose appends fail.
    failing: Mutex<HashSet<RunId>>,
}

impl FlakyStore {
    fn check(&self, run: Option<RunId>) -> Result<(), StoreError> {
        let failing = run.is_some_and(|id| self.failing.lock().unwrap().contains(&id));
        if self.down.load(Ordering::SeqCst) || failing {
            return Err(StoreError::Backend {
                message: "connection refused".into(),
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Store for FlakyStore {
    async fn create_run(&self, run: NewRun) -> Result<Created, StoreError> {
        self.check(None)?;
        self.inner.create_run(run).await
    }
    async fn append(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        expected_seq: u64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        self.check(Some(run_id))?;
        self.inner
            .append(run_id, worker, expected_seq, events)
            .await
    }
    async fn load_events(&self, run_id: RunId) -> Result<Vec<Event>, StoreError> {
        self.check(None)?;
        self.inner.load_events(run_id).await
    }
    async fn run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        self.inner.run(run_id).await
    }
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.list_runs(limit).await
    }
    async fn claim_due(
        &self,
        lease: &Lease,
        now: Timestamp,
        limit: usize,
        workflows: Option<&[String]>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        self.check(None)?;
        self.inner.claim_due(lease, now, limit, workflows).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_due().await
    }
    async fn renew_leases(&self, lease: &Lease, runs: &[RunId]) -> Result<Renewal, StoreError> {
        self.inner.renew_leases(lease, runs).await
    }
    async fn release(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        wake_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.inner.release(run_id, worker, wake_at).await
    }
    async fn request_cancel(
        &self,
        run_id: RunId,
        now: Timestamp,
    ) -> Result<CancelOutcome, StoreError> {
        self.inner.request_cancel(run_id, now).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_errors_are_typed_and_affect_only_the_runs_they_touch() {
    let store = Arc::new(FlakyStore::default());
    let engine = fast(Engine::builder().shared_store(store.clone()))
        .build()
        .await
        .unwrap();

    store.down.store(true, Ordering::SeqCst);
    let err = engine
        .start(counter, ("bad/down".into(), 1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Backend { .. })),
        "{err:?}"
    );
    store.down.store(false, Ordering::SeqCst);

    let victim = engine
        .start(counter, ("bad/flaky-victim".into(), 1))
        .await
        .unwrap();
    while victim.status().await.unwrap() != RunStatus::Sleeping {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store.failing.lock().unwrap().insert(victim.id());
    let healthy = engine
        .start(counter, ("bad/flaky-healthy".into(), 5))
        .await
        .unwrap();
    assert_eq!(healthy.result().await.unwrap(), 7);

    // The victim cannot record its progress; it is retried, not lost.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!victim.status().await.unwrap().is_terminal());
    store.failing.lock().unwrap().clear();
    assert_eq!(victim.result().await.unwrap(), 3);
    engine.shutdown().await;
}

#[tokio::test]
async fn opening_a_store_in_a_missing_directory_is_a_typed_error() {
    let err = SqliteStore::open("/nonexistent-dir/for/sure/workflow.db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }));
    assert!(
        err.to_string()
            .contains("/nonexistent-dir/for/sure/workflow.db"),
        "{err}"
    );
    let err = workflow_core::store::open_from_url("mysql://localhost")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown store URL"), "{err}");
    let _ = engine_on(MemoryStore::new()).await;
}

#[step(max_retries = 2, initial_backoff = "10ms")]
async fn panics_once(key: String) -> Result<u32, StepError> {
    let n = bump(&key);
    if n == 1 {
        panic!("index out of bounds");
    }
    Ok(n)
}

#[workflow]
async fn panicky(key: String, workflow_panics: bool) -> Result<u32, StepError> {
    let n = panics_once(key).await?;
    if workflow_panics {
        panic!("workflow bug");
    }
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_fail_an_attempt_or_a_run_never_the_engine() {
    let engine = engine_on(MemoryStore::new()).await;
    let step_panics = engine
        .start(panicky, ("bad/panic-step".into(), false))
        .await
        .unwrap();
    assert_eq!(
        step_panics.result().await.unwrap(),
        2,
        "retried after the panic"
    );
    let journal = step_panics.journal().await.unwrap();
    assert!(journal.iter().any(|e| matches!(&e.kind,
        workflow_core::EventKind::StepRetrying { error, .. }
            if error.message == "the step panicked: index out of bounds")));

    let workflow_panics = engine
        .start(panicky, ("bad/panic-wf".into(), true))
        .await
        .unwrap();
    let err = workflow_panics.result().await.unwrap_err().to_string();
    assert!(err.contains("the workflow panicked: workflow bug"), "{err}");

    // The engine goes on serving.
    let after = engine
        .start(counter, ("bad/after-panic".into(), 1))
        .await
        .unwrap();
    assert_eq!(after.result().await.unwrap(), 3);
    engine.shutdown().await;
}
