//! The conformance suite every [`Store`] must pass.
//!
//! Each check is a `pub async fn` that takes a fresh, empty store and panics
//! when the store does not behave as the [`Store`] trait documents: journal
//! numbering, idempotent creation, leases, claims, sleeps, cancellation and
//! concurrent use. [`run_all`] runs every check, each on a new store.
//!
//! Checks pass explicit times to the methods that take one (`claim_due`,
//! `request_cancel`), so they do not depend on the speed of the machine.
//! Some checks spawn tasks: run them inside a Tokio runtime, preferably a
//! multi-threaded one.
//!
//! # Examples
//!
//! ```
//! use std::sync::Arc;
//! use workflow_core::MemoryStore;
//! use workflow_core::store::conformance;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The whole suite, each check on a new store:
//! conformance::run_all(|| Box::pin(async { Arc::new(MemoryStore::new()) })).await;
//! // Or one check:
//! conformance::append_at_wrong_seq_conflicts(Arc::new(MemoryStore::new())).await;
//! # }
//! ```

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{BoxFuture, LocalBoxFuture};

use super::{CancelOutcome, Created, Lease, NewRun, Renewal, Store};
use crate::error::StoreError;
use crate::ids::{RunId, WorkerId};
use crate::journal::{ErrorRecord, Event, EventKind, Json, NewEvent, RunRecord, RunStatus};
use crate::time::Timestamp;

/// A check of the suite: its name and how to run it on a store.
type Check<S> = (&'static str, fn(Arc<S>) -> LocalBoxFuture<'static, ()>);

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        /// The names of all checks, in the order [`run_all`] runs them.
        ///
        /// Each is also a function of this module.
        pub const CHECKS: &[&str] = &[$(stringify!($name)),*];

        fn all_checks<S: Store + ?Sized>() -> Vec<Check<S>> {
            vec![$((stringify!($name), |store| Box::pin($name(store)))),*]
        }
    };
}

checks![
    create_run_records_run_created,
    idempotency_key_returns_existing_run,
    concurrent_creates_with_one_key_make_one_run,
    claim_at_creation,
    append_numbers_events_densely,
    append_at_wrong_seq_conflicts,
    append_by_other_worker_loses_lease,
    append_after_end_is_finished,
    run_completed_projects_output,
    run_failed_projects_error,
    events_round_trip,
    unknown_run_is_not_found,
    claim_due_earliest_first_with_limit,
    claim_due_filters_workflows,
    claim_due_skips_live_leases,
    claim_due_takes_expired_leases,
    release_to_sleep,
    release_to_pending,
    release_by_non_owner_loses_lease,
    next_due_is_earliest,
    renew_leases_extends_own_runs,
    cancel_unowned_run,
    cancel_leased_run,
    cancel_finished_run,
    list_runs_newest_first,
    concurrent_appends,
    racing_claimers_share_runs,
];

/// Runs every check of the suite, each on a fresh store from `make`.
///
/// `make` must return a new, empty store each time it is called.
///
/// # Panics
///
/// On the first check that fails, with a message naming the check and what
/// went wrong.
pub async fn run_all<S, F>(make: F)
where
    S: Store + ?Sized,
    F: Fn() -> BoxFuture<'static, Arc<S>>,
{
    for (_, check) in all_checks::<S>() {
        check(make().await).await;
    }
}

/// Runs one check's body and names the check in its panic, if any.
async fn named(check: &str, body: impl Future<Output = ()>) {
    if let Err(panic) = AssertUnwindSafe(body).catch_unwind().await {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        panic!("store conformance check `{check}` failed: {message}");
    }
}

// ---------------------------------------------------------------------------
// Helpers

fn json(text: &str) -> Json {
    serde_json::value::RawValue::from_string(text.to_owned()).expect("valid JSON")
}

/// A time `ms` milliseconds after `t`.
fn after(t: Timestamp, ms: i64) -> Timestamp {
    Timestamp::from_millis(t.as_millis() + ms)
}

fn worker(name: &str) -> WorkerId {
    WorkerId::from(format!("conformance-{name}"))
}

fn lease(worker: &WorkerId, until: Timestamp) -> Lease {
    Lease {
        worker: worker.clone(),
        until,
    }
}

/// A run of `workflow` created at `created_at`.
fn new_run(workflow: &str, created_at: Timestamp) -> NewRun {
    let mut run = NewRun::new(workflow, json(r#"{"n":1}"#));
    run.created_at = created_at;
    run
}

async fn create<S: Store + ?Sized>(store: &S, run: NewRun) -> RunRecord {
    match store.create_run(run).await {
        Ok(Created::New(record)) => record,
        Ok(other) => panic!("create_run of a new run returned {other:?}"),
        Err(e) => panic!("create_run failed: {e}"),
    }
}

/// Creates a run claimed by `owner` until `until`.
async fn create_claimed<S: Store + ?Sized>(
    store: &S,
    owner: &WorkerId,
    until: Timestamp,
) -> RunRecord {
    let run = new_run("wf", Timestamp::now()).claim(Some(lease(owner, until)));
    create(store, run).await
}

async fn record<S: Store + ?Sized>(store: &S, id: RunId) -> RunRecord {
    store
        .run(id)
        .await
        .unwrap_or_else(|e| panic!("run({id}) failed: {e}"))
        .unwrap_or_else(|| panic!("run({id}) returned None for an existing run"))
}

async fn events<S: Store + ?Sized>(store: &S, id: RunId) -> Vec<Event> {
    store
        .load_events(id)
        .await
        .unwrap_or_else(|e| panic!("load_events({id}) failed: {e}"))
}

async fn append_ok<S: Store + ?Sized>(
    store: &S,
    id: RunId,
    worker: &WorkerId,
    seq: u64,
    kinds: Vec<EventKind>,
) {
    let batch: Vec<NewEvent> = kinds.into_iter().map(NewEvent::now).collect();
    if let Err(e) = store.append(id, worker, seq, &batch).await {
        panic!("append at sequence {seq} by the owner failed: {e}");
    }
}

async fn claim<S: Store + ?Sized>(
    store: &S,
    lease: &Lease,
    now: Timestamp,
    limit: usize,
    workflows: Option<&[String]>,
) -> Vec<RunRecord> {
    store
        .claim_due(lease, now, limit, workflows)
        .await
        .unwrap_or_else(|e| panic!("claim_due failed: {e}"))
}

fn ids(records: &[RunRecord]) -> Vec<RunId> {
    records.iter().map(|r| r.id).collect()
}

fn step_started(op: u32) -> EventKind {
    EventKind::StepStarted {
        op,
        step: "step".into(),
        attempt: 1,
        input: None,
    }
}

fn completed() -> EventKind {
    EventKind::RunCompleted {
        output: json(r#"{"ok":true}"#),
    }
}

/// The event as stored JSON, to compare events exactly (raw JSON payloads
/// are written out verbatim).
fn encode(kind: &EventKind) -> String {
    serde_json::to_string(kind).expect("events serialize")
}

fn assert_no_owner(r: &RunRecord, context: &str) {
    assert!(
        r.owner.is_none() && r.lease_until.is_none(),
        "{context}: expected no owner and no lease, got owner {:?} until {:?}",
        r.owner,
        r.lease_until
    );
}

// ---------------------------------------------------------------------------
// Creation

/// `create_run` records the run as pending with `next_seq` 1 and writes its
/// `run_created` event at sequence 0.
///
/// # Panics
///
/// When the store does not.
pub async fn create_run_records_run_created<S: Store + ?Sized>(store: Arc<S>) {
    named("create_run_records_run_created", async {
        let created_at = after(Timestamp::now(), -1_000);
        let mut run = NewRun::new("signup", json(r#"{"email":"ada@example.com"}"#));
        run.created_at = created_at;
        let id = run.id;
        let r = create(&*store, run).await;
        assert_eq!(r.id, id, "the returned record has another id");
        assert_eq!(r.workflow, "signup");
        assert_eq!(r.status, RunStatus::Pending);
        assert_eq!(r.next_seq, 1, "next_seq after creation");
        assert_eq!(r.input.get(), r#"{"email":"ada@example.com"}"#);
        assert_eq!(r.created_at, created_at);
        assert!(r.output.is_none() && r.error.is_none());
        assert!(!r.cancel_requested);
        assert_no_owner(&r, "a run created without a claim");

        let stored = record(&*store, id).await;
        assert_eq!(stored.status, RunStatus::Pending);
        assert_eq!(stored.next_seq, 1);
        assert_eq!(stored.workflow, "signup");
        assert_eq!(stored.input.get(), r#"{"email":"ada@example.com"}"#);
        assert_eq!(stored.created_at, created_at);
        assert!(stored.idempotency_key.is_none());

        let journal = events(&*store, id).await;
        assert_eq!(journal.len(), 1, "a new run's journal: {journal:?}");
        assert_eq!(journal[0].seq, 0, "run_created is at sequence 0");
        assert_eq!(journal[0].at, created_at, "run_created is at created_at");
        match &journal[0].kind {
            EventKind::RunCreated { workflow, input } => {
                assert_eq!(workflow, "signup");
                assert_eq!(input.get(), r#"{"email":"ada@example.com"}"#);
            }
            other => panic!("the first event is {}, not run_created", other.name()),
        }
    })
    .await;
}

/// A second `create_run` with an earlier run's idempotency key returns that
/// run as [`Created::Existing`] and changes nothing.
///
/// # Panics
///
/// When the store does not.
pub async fn idempotency_key_returns_existing_run<S: Store + ?Sized>(store: Arc<S>) {
    named("idempotency_key_returns_existing_run", async {
        let first = NewRun::new("wf", json("[1]")).idempotency_key(Some("key-1".into()));
        let first_id = first.id;
        let r = create(&*store, first).await;
        assert_eq!(r.idempotency_key.as_deref(), Some("key-1"));

        let w = worker("a");
        let second = NewRun::new("wf", json("[2]"))
            .idempotency_key(Some("key-1".into()))
            .claim(Some(lease(&w, after(Timestamp::now(), 60_000))));
        let second_id = second.id;
        match store.create_run(second).await {
            Ok(Created::Existing(existing)) => {
                assert_eq!(existing.id, first_id, "Existing names another run");
                assert_eq!(existing.input.get(), "[1]", "Existing has the new input");
                assert_eq!(existing.status, RunStatus::Pending);
                assert_no_owner(&existing, "Existing took the second call's claim");
            }
            Ok(Created::New(_)) => panic!("a reused idempotency key created a new run"),
            Err(e) => panic!("create_run with a reused key failed: {e}"),
        }
        assert!(
            store.run(second_id).await.expect("run").is_none(),
            "the second run's id was recorded"
        );
        let stored = record(&*store, first_id).await;
        assert_eq!(stored.status, RunStatus::Pending);
        assert_eq!(stored.next_seq, 1);
        assert_eq!(stored.idempotency_key.as_deref(), Some("key-1"));
        assert_no_owner(&stored, "the first run after a reused key");
        assert_eq!(events(&*store, first_id).await.len(), 1);
        let all = store.list_runs(100).await.expect("list_runs");
        assert_eq!(all.len(), 1, "runs after a reused key: {:?}", ids(&all));

        // Another key makes another run.
        let third = NewRun::new("wf", json("[3]")).idempotency_key(Some("key-2".into()));
        create(&*store, third).await;
    })
    .await;
}

/// Many concurrent `create_run` calls with one idempotency key make exactly
/// one run.
///
/// # Panics
///
/// When the store does not.
pub async fn concurrent_creates_with_one_key_make_one_run<S: Store + ?Sized>(store: Arc<S>) {
    named("concurrent_creates_with_one_key_make_one_run", async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.spawn(async move {
                let run = NewRun::new("wf", json(&format!("[{i}]")))
                    .idempotency_key(Some("shared".into()));
                store.create_run(run).await
            });
        }
        let mut new = 0;
        let mut seen = HashSet::new();
        while let Some(result) = tasks.join_next().await {
            match result.expect("task panicked") {
                Ok(Created::New(r)) => {
                    new += 1;
                    seen.insert(r.id);
                }
                Ok(Created::Existing(r)) => {
                    seen.insert(r.id);
                }
                Err(e) => panic!("concurrent create_run failed: {e}"),
            }
        }
        assert_eq!(new, 1, "{new} calls created a run with the same key");
        assert_eq!(seen.len(), 1, "the calls returned different runs: {seen:?}");
        assert_eq!(store.list_runs(100).await.expect("list_runs").len(), 1);
    })
    .await;
}

/// `NewRun::claim` leases the run to the worker at creation: it is running,
/// owned, and not claimable while the lease holds.
///
/// # Panics
///
/// When the store does not.
pub async fn claim_at_creation<S: Store + ?Sized>(store: Arc<S>) {
    named("claim_at_creation", async {
        let now = Timestamp::now();
        let w = worker("a");
        let until = after(now, 30_000);
        let r = create_claimed(&*store, &w, until).await;
        assert_eq!(r.status, RunStatus::Running);
        assert_eq!(r.owner.as_ref(), Some(&w));
        assert_eq!(r.lease_until, Some(until));
        assert_eq!(r.next_seq, 1);

        let stored = record(&*store, r.id).await;
        assert_eq!(stored.status, RunStatus::Running);
        assert_eq!(stored.owner.as_ref(), Some(&w));
        assert_eq!(stored.lease_until, Some(until));

        let other = lease(&worker("b"), after(now, 60_000));
        let claimed = claim(&*store, &other, after(now, 1_000), 10, None).await;
        assert!(
            claimed.is_empty(),
            "claim_due took a run claimed at creation whose lease holds"
        );
        // The owner can write at once.
        append_ok(
            &*store,
            r.id,
            &w,
            1,
            vec![EventKind::RunStarted { worker: w.clone() }],
        )
        .await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Appending

/// The owner's appends at the expected sequence succeed and number events
/// densely.
///
/// # Panics
///
/// When the store does not.
pub async fn append_numbers_events_densely<S: Store + ?Sized>(store: Arc<S>) {
    named("append_numbers_events_densely", async {
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(Timestamp::now(), 60_000)).await;
        append_ok(
            &*store,
            r.id,
            &w,
            1,
            vec![
                EventKind::RunStarted { worker: w.clone() },
                step_started(0),
                EventKind::StepCompleted {
                    op: 0,
                    output: json("1"),
                },
            ],
        )
        .await;
        assert_eq!(record(&*store, r.id).await.next_seq, 4);
        append_ok(&*store, r.id, &w, 4, vec![step_started(1)]).await;
        append_ok(
            &*store,
            r.id,
            &w,
            5,
            vec![EventKind::StepCompleted {
                op: 1,
                output: json("2"),
            }],
        )
        .await;
        let stored = record(&*store, r.id).await;
        assert_eq!(stored.next_seq, 6, "next_seq after 5 appended events");
        assert_eq!(
            stored.status,
            RunStatus::Running,
            "run_started sets running"
        );
        assert_eq!(stored.owner.as_ref(), Some(&w), "appending keeps the owner");

        let journal = events(&*store, r.id).await;
        let seqs: Vec<u64> = journal.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4, 5], "sequence numbers");
        let names: Vec<&str> = journal.iter().map(|e| e.kind.name()).collect();
        assert_eq!(
            names,
            [
                "run_created",
                "run_started",
                "step_started",
                "step_completed",
                "step_started",
                "step_completed"
            ]
        );
    })
    .await;
}

/// An append at another sequence than the journal's fails with
/// [`StoreError::Conflict`] and changes nothing.
///
/// # Panics
///
/// When the store does not.
pub async fn append_at_wrong_seq_conflicts<S: Store + ?Sized>(store: Arc<S>) {
    named("append_at_wrong_seq_conflicts", async {
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(Timestamp::now(), 60_000)).await;
        append_ok(&*store, r.id, &w, 1, vec![step_started(0)]).await;
        for wrong in [0, 1, 3, 7] {
            let batch = [NewEvent::now(step_started(1))];
            match store.append(r.id, &w, wrong, &batch).await {
                Err(StoreError::Conflict {
                    run_id,
                    expected,
                    actual,
                }) => {
                    assert_eq!(run_id, r.id);
                    assert_eq!(expected, wrong, "Conflict::expected");
                    assert_eq!(actual, 2, "Conflict::actual");
                }
                other => panic!("append at sequence {wrong} (journal at 2) returned {other:?}"),
            }
        }
        assert_eq!(record(&*store, r.id).await.next_seq, 2);
        assert_eq!(events(&*store, r.id).await.len(), 2);
        append_ok(&*store, r.id, &w, 2, vec![step_started(1)]).await;
    })
    .await;
}

/// An append by a worker that does not hold the lease fails with
/// [`StoreError::LeaseLost`], as does one on a run nobody owns.
///
/// # Panics
///
/// When the store does not.
pub async fn append_by_other_worker_loses_lease<S: Store + ?Sized>(store: Arc<S>) {
    named("append_by_other_worker_loses_lease", async {
        let a = worker("a");
        let b = worker("b");
        let r = create_claimed(&*store, &a, after(Timestamp::now(), 60_000)).await;
        let batch = [NewEvent::now(step_started(0))];
        match store.append(r.id, &b, 1, &batch).await {
            Err(StoreError::LeaseLost(id)) => assert_eq!(id, r.id),
            other => panic!("append by a non-owner returned {other:?}"),
        }
        let pending = create(&*store, new_run("wf", Timestamp::now())).await;
        match store.append(pending.id, &a, 1, &batch).await {
            Err(StoreError::LeaseLost(id)) => assert_eq!(id, pending.id),
            other => panic!("append to an unowned run returned {other:?}"),
        }
        assert_eq!(record(&*store, r.id).await.next_seq, 1);
        assert_eq!(events(&*store, r.id).await.len(), 1);
        assert_eq!(events(&*store, pending.id).await.len(), 1);
    })
    .await;
}

/// An append to a run that has ended fails with [`StoreError::Finished`].
///
/// # Panics
///
/// When the store does not.
pub async fn append_after_end_is_finished<S: Store + ?Sized>(store: Arc<S>) {
    named("append_after_end_is_finished", async {
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(Timestamp::now(), 60_000)).await;
        append_ok(&*store, r.id, &w, 1, vec![completed()]).await;
        let batch = [NewEvent::now(step_started(0))];
        match store.append(r.id, &w, 2, &batch).await {
            Err(StoreError::Finished { run_id, status }) => {
                assert_eq!(run_id, r.id);
                assert_eq!(status, RunStatus::Completed);
            }
            other => panic!("append after run_completed returned {other:?}"),
        }
        let cancel = [NewEvent::now(EventKind::RunCancelled)];
        match store.append(r.id, &w, 2, &cancel).await {
            Err(StoreError::Finished { .. }) => {}
            other => panic!("run_cancelled after run_completed returned {other:?}"),
        }
        assert_eq!(events(&*store, r.id).await.len(), 2);
    })
    .await;
}

/// `run_completed` makes the run completed with its output, releases it and
/// takes it out of scheduling.
///
/// # Panics
///
/// When the store does not.
pub async fn run_completed_projects_output<S: Store + ?Sized>(store: Arc<S>) {
    named("run_completed_projects_output", async {
        let now = Timestamp::now();
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(now, 60_000)).await;
        let output = r#"{"user":{"id":42,"name":"Zoë"},"tags":["a","b"]}"#;
        append_ok(
            &*store,
            r.id,
            &w,
            1,
            vec![
                EventKind::RunStarted { worker: w.clone() },
                EventKind::RunCompleted {
                    output: json(output),
                },
            ],
        )
        .await;
        let stored = record(&*store, r.id).await;
        assert_eq!(stored.status, RunStatus::Completed);
        assert_eq!(stored.output.as_ref().map(|o| o.get()), Some(output));
        assert!(stored.error.is_none());
        assert_eq!(stored.next_seq, 3);
        assert_no_owner(&stored, "a completed run");
        assert_eq!(
            store.next_due().await.expect("next_due"),
            None,
            "a completed run is still due"
        );
        let late = lease(&w, after(now, 3_700_000));
        let claimed = claim(&*store, &late, after(now, 3_600_000), 10, None).await;
        assert!(claimed.is_empty(), "claim_due took a completed run");
    })
    .await;
}

/// `run_failed` makes the run failed with its error and releases it.
///
/// # Panics
///
/// When the store does not.
pub async fn run_failed_projects_error<S: Store + ?Sized>(store: Arc<S>) {
    named("run_failed_projects_error", async {
        let now = Timestamp::now();
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(now, 60_000)).await;
        let error = ErrorRecord {
            message: "card declined: «insufficient funds» 💳".into(),
            fatal: true,
            step: Some("charge".into()),
            attempts: Some(4),
        };
        append_ok(
            &*store,
            r.id,
            &w,
            1,
            vec![EventKind::RunFailed {
                error: error.clone(),
            }],
        )
        .await;
        let stored = record(&*store, r.id).await;
        assert_eq!(stored.status, RunStatus::Failed);
        assert_eq!(stored.error.as_ref(), Some(&error));
        assert!(stored.output.is_none());
        assert_no_owner(&stored, "a failed run");
        assert_eq!(store.next_due().await.expect("next_due"), None);
        let late = lease(&w, after(now, 3_700_000));
        let claimed = claim(&*store, &late, after(now, 3_600_000), 10, None).await;
        assert!(claimed.is_empty(), "claim_due took a failed run");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Reading

/// The position of each [`EventKind`] variant; adding a variant breaks this
/// match so the suite is extended with it.
fn variant_index(kind: &EventKind) -> usize {
    match kind {
        EventKind::RunCreated { .. } => 0,
        EventKind::RunStarted { .. } => 1,
        EventKind::RunCompleted { .. } => 2,
        EventKind::RunFailed { .. } => 3,
        EventKind::RunCancelled => 4,
        EventKind::StepStarted { .. } => 5,
        EventKind::StepRetrying { .. } => 6,
        EventKind::StepCompleted { .. } => 7,
        EventKind::StepFailed { .. } => 8,
        EventKind::WaitCreated { .. } => 9,
        EventKind::WaitCompleted { .. } => 10,
        EventKind::TimeRecorded { .. } => 11,
    }
}
const VARIANTS: usize = 12;

/// `load_events` returns every [`EventKind`] variant exactly as appended,
/// including raw JSON payloads with nesting, escapes, whitespace and
/// non-ASCII text.
///
/// # Panics
///
/// When the store does not.
pub async fn events_round_trip<S: Store + ?Sized>(store: Arc<S>) {
    named("events_round_trip", async {
        let t0 = after(Timestamp::now(), -10_000);
        let w = worker("ünïcødé-✓");
        let input =
            r#"{"email":"zoë@example.com","nested":{"list":[1,2.5,-3e10,null,true],"s":"日本語 \"q\" \\ \n 🚀"}}"#;
        let mut run = NewRun::new("wf-ü", json(input));
        run.created_at = t0;
        run.claim = Some(lease(&w, after(Timestamp::now(), 60_000)));
        let id = create(&*store, run).await.id;
        let kinds = vec![
            EventKind::RunStarted { worker: w.clone() },
            EventKind::StepStarted {
                op: 0,
                step: "send_émail".into(),
                attempt: 1,
                input: Some(json(r#"[ {"to" : "ä@b.c", "deep": {"a": {"b": [{}]}}} ]"#)),
            },
            EventKind::StepRetrying {
                op: 0,
                attempt: 1,
                error: ErrorRecord::new("timeout ⏱ after 3s"),
                retry_at: after(t0, 5_000),
            },
            EventKind::StepStarted {
                op: 0,
                step: "send_émail".into(),
                attempt: 2,
                input: None,
            },
            EventKind::StepCompleted {
                op: 0,
                output: json(r#"{"id":"msg-1","ok":true,"meta":{"ß":"∑"}}"#),
            },
            EventKind::StepStarted {
                op: 1,
                step: "charge".into(),
                attempt: 1,
                // Not `null`: `Option<Json>` reads a JSON `null` back as
                // `None`, a limit of the journal's encoding, not of stores.
                input: Some(json(r#""plain string""#)),
            },
            EventKind::StepCompleted {
                op: 4,
                output: json("null"),
            },
            EventKind::StepFailed {
                op: 1,
                attempts: 4,
                error: ErrorRecord {
                    message: "declined".into(),
                    fatal: true,
                    step: Some("charge".into()),
                    attempts: Some(4),
                },
            },
            EventKind::WaitCreated {
                op: 2,
                wake_at: after(t0, 86_400_000),
            },
            EventKind::WaitCompleted { op: 2 },
            EventKind::TimeRecorded {
                op: 3,
                time: Timestamp::from_millis(-1),
            },
            EventKind::RunCompleted {
                output: json(r#"[{"a":{"b":{"c":"ünïcødé"}}}, 1, "x"]"#),
            },
        ];
        let batch: Vec<NewEvent> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| NewEvent {
                at: after(t0, 1 + i as i64),
                kind: kind.clone(),
            })
            .collect();
        // One event per append, then check the whole journal.
        for (i, event) in batch.iter().enumerate() {
            let seq = 1 + i as u64;
            if let Err(e) = store.append(id, &w, seq, std::slice::from_ref(event)).await {
                panic!("append of {} failed: {e}", event.kind.name());
            }
        }

        // The two other terminal events, on their own runs.
        let failed = create_claimed(&*store, &w, after(Timestamp::now(), 60_000)).await;
        let failure = EventKind::RunFailed {
            error: ErrorRecord {
                message: "oops — «ошибка»".into(),
                fatal: false,
                step: None,
                attempts: None,
            },
        };
        let failure_event = NewEvent {
            at: after(t0, 100),
            kind: failure,
        };
        store
            .append(failed.id, &w, 1, std::slice::from_ref(&failure_event))
            .await
            .expect("append run_failed");
        let cancelled = create_claimed(&*store, &w, after(Timestamp::now(), 60_000)).await;
        let cancel_event = NewEvent {
            at: after(t0, 200),
            kind: EventKind::RunCancelled,
        };
        store
            .append(cancelled.id, &w, 1, std::slice::from_ref(&cancel_event))
            .await
            .expect("append run_cancelled");

        let journal = events(&*store, id).await;
        assert_eq!(journal.len(), 1 + batch.len(), "journal length");
        match &journal[0].kind {
            EventKind::RunCreated { workflow, input: got } => {
                assert_eq!(workflow, "wf-ü");
                assert_eq!(got.get(), input, "run_created input");
            }
            other => panic!("first event is {}", other.name()),
        }
        assert_eq!(journal[0].at, t0);
        for (i, (got, sent)) in journal[1..].iter().zip(&batch).enumerate() {
            assert_eq!(got.seq, 1 + i as u64, "seq of {}", sent.kind.name());
            assert_eq!(got.at, sent.at, "time of {}", sent.kind.name());
            assert_eq!(
                encode(&got.kind),
                encode(&sent.kind),
                "{} did not round-trip",
                sent.kind.name()
            );
        }
        for (run, sent) in [(failed.id, &failure_event), (cancelled.id, &cancel_event)] {
            let journal = events(&*store, run).await;
            assert_eq!(journal.len(), 2);
            assert_eq!(journal[1].seq, 1);
            assert_eq!(journal[1].at, sent.at);
            assert_eq!(encode(&journal[1].kind), encode(&sent.kind));
        }

        let mut covered: BTreeSet<usize> = journal.iter().map(|e| variant_index(&e.kind)).collect();
        covered.insert(variant_index(&failure_event.kind));
        covered.insert(variant_index(&cancel_event.kind));
        assert_eq!(covered.len(), VARIANTS, "not every event variant is tested");
    })
    .await;
}

/// A run that does not exist: `run` is `None`, `load_events`, `append`,
/// `release` and `request_cancel` fail with [`StoreError::NotFound`].
///
/// # Panics
///
/// When the store does not.
pub async fn unknown_run_is_not_found<S: Store + ?Sized>(store: Arc<S>) {
    named("unknown_run_is_not_found", async {
        // Another run exists, so the store is not simply empty.
        create(&*store, new_run("wf", Timestamp::now())).await;
        let id = RunId::new();
        let w = worker("a");
        assert!(
            store.run(id).await.expect("run").is_none(),
            "run() of unknown"
        );
        match store.load_events(id).await {
            Err(StoreError::NotFound(got)) => assert_eq!(got, id),
            other => panic!("load_events of an unknown run returned {other:?}"),
        }
        let batch = [NewEvent::now(step_started(0))];
        match store.append(id, &w, 1, &batch).await {
            Err(StoreError::NotFound(got)) => assert_eq!(got, id),
            other => panic!("append to an unknown run returned {other:?}"),
        }
        match store.release(id, &w, None).await {
            Err(StoreError::NotFound(got)) => assert_eq!(got, id),
            other => panic!("release of an unknown run returned {other:?}"),
        }
        match store.request_cancel(id, Timestamp::now()).await {
            Err(StoreError::NotFound(got)) => assert_eq!(got, id),
            other => panic!("request_cancel of an unknown run returned {other:?}"),
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Claiming

/// `claim_due` takes the earliest due runs first, at most `limit`, and leases
/// them to the worker.
///
/// # Panics
///
/// When the store does not.
pub async fn claim_due_earliest_first_with_limit<S: Store + ?Sized>(store: Arc<S>) {
    named("claim_due_earliest_first_with_limit", async {
        let t0 = after(Timestamp::now(), -60_000);
        // Created out of time order, so that ids (which sort by creation)
        // disagree with due times.
        let mut by_time = Vec::new();
        for offset in [50, 10, 40, 20, 30] {
            let r = create(&*store, new_run("wf", after(t0, offset))).await;
            by_time.push((offset, r.id));
        }
        by_time.sort();
        let expected: Vec<RunId> = by_time.iter().map(|(_, id)| *id).collect();
        let w = worker("a");
        let now = after(t0, 1_000);
        let l = lease(&w, after(now, 30_000));

        let none = claim(&*store, &l, now, 0, None).await;
        assert!(none.is_empty(), "limit 0 claimed {:?}", ids(&none));

        let first = claim(&*store, &l, now, 2, None).await;
        assert_eq!(
            ids(&first),
            expected[..2],
            "the two earliest, earliest first"
        );
        for r in &first {
            assert_eq!(r.status, RunStatus::Running, "claimed run's status");
            assert_eq!(r.owner.as_ref(), Some(&w), "claimed run's owner");
            assert_eq!(r.lease_until, Some(l.until), "claimed run's lease");
            let stored = record(&*store, r.id).await;
            assert_eq!(stored.status, RunStatus::Running);
            assert_eq!(stored.owner.as_ref(), Some(&w));
            assert_eq!(stored.lease_until, Some(l.until));
        }
        let rest = claim(&*store, &l, now, 10, None).await;
        assert_eq!(
            ids(&rest),
            expected[2..],
            "the remaining runs, earliest first"
        );
        let again = claim(&*store, &l, now, 10, None).await;
        assert!(
            again.is_empty(),
            "claimed runs were claimed again: {:?}",
            ids(&again)
        );
        // The owner can append to what it claimed.
        append_ok(
            &*store,
            expected[0],
            &w,
            1,
            vec![EventKind::RunStarted { worker: w.clone() }],
        )
        .await;
    })
    .await;
}

/// `claim_due` with a `workflows` filter takes only runs of those workflows.
///
/// # Panics
///
/// When the store does not.
pub async fn claim_due_filters_workflows<S: Store + ?Sized>(store: Arc<S>) {
    named("claim_due_filters_workflows", async {
        let t0 = after(Timestamp::now(), -60_000);
        let a = create(&*store, new_run("alpha", after(t0, 1))).await.id;
        let b = create(&*store, new_run("beta", after(t0, 2))).await.id;
        let c = create(&*store, new_run("gamma", after(t0, 3))).await.id;
        let w = worker("a");
        let now = after(t0, 1_000);
        let l = lease(&w, after(now, 30_000));

        let empty: &[String] = &[];
        let none = claim(&*store, &l, now, 10, Some(empty)).await;
        assert!(none.is_empty(), "an empty filter claimed {:?}", ids(&none));

        let names = ["gamma".to_owned(), "alpha".to_owned(), "other".to_owned()];
        let got = claim(&*store, &l, now, 10, Some(&names)).await;
        assert_eq!(ids(&got), [a, c], "runs of alpha and gamma");
        assert_eq!(record(&*store, b).await.status, RunStatus::Pending);
        let rest = claim(&*store, &l, now, 10, None).await;
        assert_eq!(ids(&rest), [b], "no filter claims the rest");
    })
    .await;
}

/// `claim_due` leaves runs whose owner's lease still holds.
///
/// # Panics
///
/// When the store does not.
pub async fn claim_due_skips_live_leases<S: Store + ?Sized>(store: Arc<S>) {
    named("claim_due_skips_live_leases", async {
        let now = Timestamp::now();
        let a = worker("a");
        let b = worker("b");
        let until = after(now, 30_000);
        let r = create_claimed(&*store, &a, until).await;
        // Also a run claimed through claim_due.
        let p = create(&*store, new_run("wf", after(now, -10))).await;
        let got = claim(&*store, &lease(&a, until), now, 10, None).await;
        assert_eq!(ids(&got), [p.id]);

        for t in [now, after(now, 10_000), after(until, -1)] {
            let got = claim(&*store, &lease(&b, after(t, 30_000)), t, 10, None).await;
            assert!(
                got.is_empty(),
                "claim_due at {t} took runs leased until {until}: {:?}",
                ids(&got)
            );
        }
        for id in [r.id, p.id] {
            let stored = record(&*store, id).await;
            assert_eq!(stored.owner.as_ref(), Some(&a));
            assert_eq!(stored.lease_until, Some(until));
        }
    })
    .await;
}

/// `claim_due` takes runs whose owner's lease expired (a dead worker) and
/// gives them to the new worker; the old owner then loses them.
///
/// # Panics
///
/// When the store does not.
pub async fn claim_due_takes_expired_leases<S: Store + ?Sized>(store: Arc<S>) {
    named("claim_due_takes_expired_leases", async {
        let now = Timestamp::now();
        let dead = worker("dead");
        let alive = worker("alive");
        let until = after(now, 5_000);
        let r = create_claimed(&*store, &dead, until).await;
        append_ok(
            &*store,
            r.id,
            &dead,
            1,
            vec![EventKind::RunStarted {
                worker: dead.clone(),
            }],
        )
        .await;

        let later = after(until, 1);
        let new_until = after(later, 30_000);
        let got = claim(&*store, &lease(&alive, new_until), later, 10, None).await;
        assert_eq!(ids(&got), [r.id], "the run with an expired lease");
        assert_eq!(got[0].owner.as_ref(), Some(&alive));
        assert_eq!(got[0].lease_until, Some(new_until));
        assert_eq!(got[0].status, RunStatus::Running);
        assert_eq!(got[0].next_seq, 2, "the journal is kept");

        let batch = [NewEvent::now(step_started(0))];
        match store.append(r.id, &dead, 2, &batch).await {
            Err(StoreError::LeaseLost(id)) => assert_eq!(id, r.id),
            other => panic!("the old owner's append after a takeover returned {other:?}"),
        }
        match store.release(r.id, &dead, None).await {
            Err(StoreError::LeaseLost(id)) => assert_eq!(id, r.id),
            other => panic!("the old owner's release after a takeover returned {other:?}"),
        }
        let renewed = store
            .renew_leases(&lease(&dead, after(later, 60_000)), &[r.id])
            .await
            .expect("renew_leases");
        assert!(renewed.cancel_requested.is_empty());
        assert_eq!(
            renewed.lost,
            [r.id],
            "the old owner must learn it lost the run"
        );
        let stored = record(&*store, r.id).await;
        assert_eq!(
            stored.owner.as_ref(),
            Some(&alive),
            "the old owner renewed it back"
        );
        assert_eq!(stored.lease_until, Some(new_until));
        append_ok(&*store, r.id, &alive, 2, vec![step_started(0)]).await;
        assert_eq!(events(&*store, r.id).await.len(), 3);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Releasing

/// `release(Some(wake_at))` makes the run sleep: unowned, not claimable
/// before `wake_at`, claimable at and after it.
///
/// # Panics
///
/// When the store does not.
pub async fn release_to_sleep<S: Store + ?Sized>(store: Arc<S>) {
    named("release_to_sleep", async {
        let now = Timestamp::now();
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(now, 30_000)).await;
        let wake_at = after(now, 3_600_000);
        store
            .release(r.id, &w, Some(wake_at))
            .await
            .expect("release by the owner");
        let stored = record(&*store, r.id).await;
        assert_eq!(stored.status, RunStatus::Sleeping);
        assert_eq!(stored.wake_at, Some(wake_at));
        assert_no_owner(&stored, "a released run");
        assert_eq!(store.next_due().await.expect("next_due"), Some(wake_at));

        let b = worker("b");
        for t in [now, after(wake_at, -1)] {
            let got = claim(&*store, &lease(&b, after(t, 30_000)), t, 10, None).await;
            assert!(
                got.is_empty(),
                "claim_due at {t} took a run sleeping until {wake_at}"
            );
        }
        let got = claim(
            &*store,
            &lease(&b, after(wake_at, 30_000)),
            wake_at,
            10,
            None,
        )
        .await;
        assert_eq!(ids(&got), [r.id], "claim_due at wake_at");
        assert_eq!(got[0].owner.as_ref(), Some(&b));
        assert_eq!(got[0].status, RunStatus::Running);
    })
    .await;
}

/// `release(None)` makes the run pending and claimable at once.
///
/// # Panics
///
/// When the store does not.
pub async fn release_to_pending<S: Store + ?Sized>(store: Arc<S>) {
    named("release_to_pending", async {
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(Timestamp::now(), 30_000)).await;
        store
            .release(r.id, &w, None)
            .await
            .expect("release by the owner");
        let stored = record(&*store, r.id).await;
        assert_eq!(stored.status, RunStatus::Pending);
        assert_no_owner(&stored, "a released run");
        let now = Timestamp::now();
        let due = store.next_due().await.expect("next_due");
        assert!(
            due.is_some_and(|t| t <= now),
            "next_due after release(None) is {due:?}"
        );

        let b = worker("b");
        let got = claim(&*store, &lease(&b, after(now, 30_000)), now, 10, None).await;
        assert_eq!(ids(&got), [r.id], "a run released without a wake time");
        assert_eq!(got[0].owner.as_ref(), Some(&b));
    })
    .await;
}

/// `release` by a worker that does not hold the lease fails with
/// [`StoreError::LeaseLost`] and leaves the run alone; on an ended run it
/// fails with [`StoreError::Finished`].
///
/// # Panics
///
/// When the store does not.
pub async fn release_by_non_owner_loses_lease<S: Store + ?Sized>(store: Arc<S>) {
    named("release_by_non_owner_loses_lease", async {
        let a = worker("a");
        let b = worker("b");
        let until = after(Timestamp::now(), 30_000);
        let r = create_claimed(&*store, &a, until).await;
        match store.release(r.id, &b, None).await {
            Err(StoreError::LeaseLost(id)) => assert_eq!(id, r.id),
            other => panic!("release by a non-owner returned {other:?}"),
        }
        let stored = record(&*store, r.id).await;
        assert_eq!(stored.status, RunStatus::Running);
        assert_eq!(stored.owner.as_ref(), Some(&a));
        assert_eq!(stored.lease_until, Some(until));

        let pending = create(&*store, new_run("wf", Timestamp::now())).await;
        match store.release(pending.id, &a, None).await {
            Err(StoreError::LeaseLost(id)) => assert_eq!(id, pending.id),
            other => panic!("release of an unowned run returned {other:?}"),
        }

        append_ok(&*store, r.id, &a, 1, vec![completed()]).await;
        match store.release(r.id, &a, None).await {
            Err(StoreError::Finished { run_id, status }) => {
                assert_eq!(run_id, r.id);
                assert_eq!(status, RunStatus::Completed);
            }
            other => panic!("release of a completed run returned {other:?}"),
        }
        assert_eq!(record(&*store, r.id).await.status, RunStatus::Completed);
    })
    .await;
}

// ---------------------------------------------------------------------------
// Scheduling

/// `next_due` is the earliest time an unfinished run becomes due (creation,
/// lease expiry or wake time), and `None` when only finished runs remain.
///
/// # Panics
///
/// When the store does not.
pub async fn next_due_is_earliest<S: Store + ?Sized>(store: Arc<S>) {
    named("next_due_is_earliest", async {
        assert_eq!(
            store.next_due().await.expect("next_due"),
            None,
            "empty store"
        );
        let t0 = after(Timestamp::now(), -60_000);
        let w = worker("a");
        // A pending run due at its creation.
        let pending = create(&*store, new_run("wf", after(t0, 10))).await;
        assert_eq!(
            store.next_due().await.expect("next_due"),
            Some(after(t0, 10))
        );
        // A run leased until before that.
        let mut leased = new_run("wf", after(t0, 20));
        leased.claim = Some(lease(&w, after(t0, 5)));
        let leased = create(&*store, leased).await;
        assert_eq!(
            store.next_due().await.expect("next_due"),
            Some(after(t0, 5)),
            "a lease expiring first"
        );
        append_ok(&*store, leased.id, &w, 1, vec![completed()]).await;
        assert_eq!(
            store.next_due().await.expect("next_due"),
            Some(after(t0, 10)),
            "after the leased run completed"
        );

        let now = after(t0, 100);
        let got = claim(&*store, &lease(&w, after(t0, 10_000)), now, 10, None).await;
        assert_eq!(ids(&got), [pending.id]);
        assert_eq!(
            store.next_due().await.expect("next_due"),
            Some(after(t0, 10_000)),
            "a claimed run is due when its lease expires"
        );
        store
            .renew_leases(&lease(&w, after(t0, 20_000)), &[pending.id])
            .await
            .expect("renew_leases");
        assert_eq!(
            store.next_due().await.expect("next_due"),
            Some(after(t0, 20_000)),
            "after renewing the lease"
        );
        let wake_at = after(Timestamp::now(), 3_600_000);
        store
            .release(pending.id, &w, Some(wake_at))
            .await
            .expect("release");
        assert_eq!(
            store.next_due().await.expect("next_due"),
            Some(wake_at),
            "a sleeping run"
        );

        let got = claim(
            &*store,
            &lease(&w, after(wake_at, 1_000)),
            wake_at,
            10,
            None,
        )
        .await;
        assert_eq!(ids(&got), [pending.id]);
        append_ok(&*store, pending.id, &w, 1, vec![completed()]).await;
        assert_eq!(
            store.next_due().await.expect("next_due"),
            None,
            "only finished runs remain"
        );
    })
    .await;
}

/// `renew_leases` extends the worker's lease on the runs it names and still
/// owns, and only those, and returns those whose cancellation was requested.
///
/// # Panics
///
/// When the store does not.
pub async fn renew_leases_extends_own_runs<S: Store + ?Sized>(store: Arc<S>) {
    named("renew_leases_extends_own_runs", async {
        let now = Timestamp::now();
        let a = worker("a");
        let b = worker("b");
        let until = after(now, 10_000);
        let a1 = create_claimed(&*store, &a, until).await.id;
        let a2 = create_claimed(&*store, &a, until).await.id;
        let b1 = create_claimed(&*store, &b, until).await.id;
        let done = create_claimed(&*store, &a, until).await.id;
        append_ok(&*store, done, &a, 1, vec![completed()]).await;
        let pending = create(&*store, new_run("wf", after(now, 20_000))).await.id;

        assert_eq!(
            store.request_cancel(a2, now).await.expect("request_cancel"),
            CancelOutcome::Requested
        );
        let renewed_until = after(now, 60_000);
        let flagged = store
            .renew_leases(&lease(&a, renewed_until), &[a1, a2, b1, done, pending])
            .await
            .expect("renew_leases");
        assert_eq!(
            flagged.cancel_requested,
            [a2],
            "runs of a with cancellation requested"
        );
        let mut lost = flagged.lost.clone();
        lost.sort();
        let mut expected = vec![b1, done, pending];
        expected.sort();
        assert_eq!(lost, expected, "runs a asked about but does not own");
        for id in [a1, a2] {
            let r = record(&*store, id).await;
            assert_eq!(
                r.lease_until,
                Some(renewed_until),
                "a's lease was not renewed"
            );
            assert_eq!(r.owner.as_ref(), Some(&a));
        }
        let r = record(&*store, b1).await;
        assert_eq!(
            r.lease_until,
            Some(until),
            "renewing a's leases changed b's"
        );
        assert_eq!(r.owner.as_ref(), Some(&b));
        assert_no_owner(&record(&*store, done).await, "a completed run after renew");
        assert_no_owner(&record(&*store, pending).await, "a pending run after renew");

        // The old expiry no longer makes a's runs claimable; b's is.
        let t = after(until, 1);
        let got = claim(&*store, &lease(&b, after(t, 1_000)), t, 10, None).await;
        assert_eq!(ids(&got), [b1], "claim_due after a renewed and b did not");

        let flagged = store
            .renew_leases(&lease(&b, after(now, 90_000)), &[b1])
            .await
            .expect("renew_leases");
        assert_eq!(
            flagged,
            Renewal::default(),
            "b owns b1 and nobody asked to cancel it"
        );
        let nobody = store
            .renew_leases(&lease(&worker("c"), after(now, 90_000)), &[a1, b1])
            .await
            .expect("renew_leases of a worker without runs");
        assert!(nobody.cancel_requested.is_empty());
        assert_eq!(nobody.lost.len(), 2, "c owns neither run");
    })
    .await;
}

// ---------------------------------------------------------------------------
// Cancellation

/// `request_cancel` on a run no live worker owns cancels it at once with a
/// `run_cancelled` event at its next sequence.
///
/// # Panics
///
/// When the store does not.
pub async fn cancel_unowned_run<S: Store + ?Sized>(store: Arc<S>) {
    named("cancel_unowned_run", async {
        let now = Timestamp::now();
        let pending = create(&*store, new_run("wf", now)).await.id;
        assert_eq!(
            store
                .request_cancel(pending, now)
                .await
                .expect("request_cancel"),
            CancelOutcome::Cancelled,
            "cancelling a pending run"
        );
        let r = record(&*store, pending).await;
        assert_eq!(r.status, RunStatus::Cancelled);
        assert_eq!(r.next_seq, 2);
        assert_no_owner(&r, "a cancelled run");
        let journal = events(&*store, pending).await;
        assert_eq!(journal.len(), 2);
        assert_eq!(journal[1].seq, 1);
        assert!(
            matches!(journal[1].kind, EventKind::RunCancelled),
            "the last event is {}",
            journal[1].kind.name()
        );

        // A sleeping run with some history.
        let w = worker("a");
        let sleeping = create_claimed(&*store, &w, after(now, 30_000)).await.id;
        append_ok(
            &*store,
            sleeping,
            &w,
            1,
            vec![step_started(0), step_started(1)],
        )
        .await;
        store
            .release(sleeping, &w, Some(after(now, 3_600_000)))
            .await
            .expect("release");
        assert_eq!(
            store
                .request_cancel(sleeping, now)
                .await
                .expect("request_cancel"),
            CancelOutcome::Cancelled,
            "cancelling a sleeping run"
        );
        let journal = events(&*store, sleeping).await;
        assert_eq!(journal.len(), 4);
        assert_eq!(journal[3].seq, 3);
        assert!(matches!(journal[3].kind, EventKind::RunCancelled));
        assert_eq!(record(&*store, sleeping).await.status, RunStatus::Cancelled);

        // A run whose owner's lease expired.
        let until = after(now, 1_000);
        let abandoned = create_claimed(&*store, &w, until).await.id;
        assert_eq!(
            store
                .request_cancel(abandoned, after(until, 1))
                .await
                .expect("request_cancel"),
            CancelOutcome::Cancelled,
            "cancelling a run whose lease expired"
        );
        let r = record(&*store, abandoned).await;
        assert_eq!(r.status, RunStatus::Cancelled);
        assert_no_owner(&r, "a cancelled run");
        let batch = [NewEvent::now(step_started(0))];
        match store.append(abandoned, &w, 2, &batch).await {
            Err(StoreError::Finished { status, .. }) => {
                assert_eq!(status, RunStatus::Cancelled);
            }
            other => panic!("append by the old owner of a cancelled run returned {other:?}"),
        }
        assert_eq!(store.next_due().await.expect("next_due"), None);
    })
    .await;
}

/// `request_cancel` on a run with a live lease flags it: the owner's appends
/// then fail with [`StoreError::CancelRequested`] unless they contain
/// `run_cancelled`, which ends the run.
///
/// # Panics
///
/// When the store does not.
pub async fn cancel_leased_run<S: Store + ?Sized>(store: Arc<S>) {
    named("cancel_leased_run", async {
        let now = Timestamp::now();
        let w = worker("a");
        let r = create_claimed(&*store, &w, after(now, 30_000)).await.id;
        append_ok(
            &*store,
            r,
            &w,
            1,
            vec![EventKind::RunStarted { worker: w.clone() }],
        )
        .await;
        assert_eq!(
            store.request_cancel(r, now).await.expect("request_cancel"),
            CancelOutcome::Requested
        );
        let stored = record(&*store, r).await;
        assert!(stored.cancel_requested, "cancel_requested is not set");
        assert_eq!(stored.status, RunStatus::Running);
        assert_eq!(stored.owner.as_ref(), Some(&w));
        assert_eq!(
            stored.next_seq, 2,
            "a requested cancellation appends nothing"
        );
        assert_eq!(
            store.request_cancel(r, now).await.expect("request_cancel"),
            CancelOutcome::Requested,
            "a second request"
        );

        let batch = [NewEvent::now(step_started(0))];
        match store.append(r, &w, 2, &batch).await {
            Err(StoreError::CancelRequested(id)) => assert_eq!(id, r),
            other => panic!("the owner's append after a cancel request returned {other:?}"),
        }
        assert_eq!(events(&*store, r).await.len(), 2);
        append_ok(
            &*store,
            r,
            &w,
            2,
            vec![
                EventKind::StepFailed {
                    op: 0,
                    attempts: 1,
                    error: ErrorRecord::new("cancelled"),
                },
                EventKind::RunCancelled,
            ],
        )
        .await;
        let stored = record(&*store, r).await;
        assert_eq!(stored.status, RunStatus::Cancelled);
        assert_eq!(stored.next_seq, 4);
        assert_no_owner(&stored, "a cancelled run");
        let journal = events(&*store, r).await;
        assert!(matches!(journal[3].kind, EventKind::RunCancelled));
        assert_eq!(store.next_due().await.expect("next_due"), None);
    })
    .await;
}

/// `request_cancel` on an ended run reports its final status and changes
/// nothing.
///
/// # Panics
///
/// When the store does not.
pub async fn cancel_finished_run<S: Store + ?Sized>(store: Arc<S>) {
    named("cancel_finished_run", async {
        let now = Timestamp::now();
        let w = worker("a");
        let done = create_claimed(&*store, &w, after(now, 30_000)).await.id;
        append_ok(&*store, done, &w, 1, vec![completed()]).await;
        let failed = create_claimed(&*store, &w, after(now, 30_000)).await.id;
        append_ok(
            &*store,
            failed,
            &w,
            1,
            vec![EventKind::RunFailed {
                error: ErrorRecord::new("no"),
            }],
        )
        .await;
        let cancelled = create(&*store, new_run("wf", now)).await.id;
        store
            .request_cancel(cancelled, now)
            .await
            .expect("request_cancel");

        for (id, status) in [
            (done, RunStatus::Completed),
            (failed, RunStatus::Failed),
            (cancelled, RunStatus::Cancelled),
        ] {
            let before = events(&*store, id).await.len();
            assert_eq!(
                store.request_cancel(id, now).await.expect("request_cancel"),
                CancelOutcome::AlreadyFinished(status)
            );
            let r = record(&*store, id).await;
            assert_eq!(r.status, status);
            assert!(!r.cancel_requested || status == RunStatus::Cancelled);
            assert_eq!(
                events(&*store, id).await.len(),
                before,
                "journal of a {status} run"
            );
        }
    })
    .await;
}

// ---------------------------------------------------------------------------
// Listing

/// `list_runs` returns the most recently created runs first, at most `limit`.
///
/// # Panics
///
/// When the store does not.
pub async fn list_runs_newest_first<S: Store + ?Sized>(store: Arc<S>) {
    named("list_runs_newest_first", async {
        assert!(store.list_runs(10).await.expect("list_runs").is_empty());
        let t0 = after(Timestamp::now(), -60_000);
        let mut created = Vec::new();
        for offset in [3, 1, 4, 0, 2] {
            let r = create(&*store, new_run("wf", after(t0, offset * 1_000))).await;
            created.push((offset, r.id));
        }
        created.sort();
        created.reverse();
        let newest: Vec<RunId> = created.iter().map(|(_, id)| *id).collect();

        let got = store.list_runs(3).await.expect("list_runs");
        assert_eq!(ids(&got), newest[..3], "the three newest, newest first");
        let got = store.list_runs(100).await.expect("list_runs");
        assert_eq!(ids(&got), newest, "all runs, newest first");
        assert!(
            store.list_runs(0).await.expect("list_runs").is_empty(),
            "limit 0"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// Concurrency

/// 50 tasks appending to 50 runs at once all succeed, and each journal is
/// dense and in order.
///
/// # Panics
///
/// When the store does not.
pub async fn concurrent_appends<S: Store + ?Sized>(store: Arc<S>) {
    named("concurrent_appends", async {
        const RUNS: usize = 50;
        const BATCHES: u32 = 10;
        let w = worker("a");
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(
                create_claimed(&*store, &w, after(Timestamp::now(), 600_000))
                    .await
                    .id,
            );
        }
        let mut tasks = tokio::task::JoinSet::new();
        for id in runs.clone() {
            let store = store.clone();
            let w = w.clone();
            tasks.spawn(async move {
                for op in 0..BATCHES {
                    let seq = 1 + u64::from(op) * 2;
                    let batch = [
                        NewEvent::now(step_started(op)),
                        NewEvent::now(EventKind::StepCompleted {
                            op,
                            output: json(&format!(r#"{{"run":"{id}","op":{op}}}"#)),
                        }),
                    ];
                    store
                        .append(id, &w, seq, &batch)
                        .await
                        .map_err(|e| format!("append to {id} at {seq}: {e}"))?;
                    tokio::task::yield_now().await;
                }
                Ok::<_, String>(())
            });
        }
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result.expect("task panicked") {
                panic!("concurrent append failed: {e}");
            }
        }
        for id in runs {
            let journal = events(&*store, id).await;
            assert_eq!(journal.len(), 1 + 2 * BATCHES as usize, "journal of {id}");
            for (i, e) in journal.iter().enumerate() {
                assert_eq!(e.seq, i as u64, "journal of {id}");
            }
            let last = &journal[journal.len() - 1].kind;
            match last {
                EventKind::StepCompleted { op, output } => {
                    assert_eq!(*op, BATCHES - 1);
                    assert!(
                        output.get().contains(&id.to_string()),
                        "output of another run"
                    );
                }
                other => panic!("last event of {id} is {}", other.name()),
            }
            assert_eq!(
                record(&*store, id).await.next_seq,
                1 + 2 * u64::from(BATCHES)
            );
        }
    })
    .await;
}

/// Two workers claiming the same due runs at once never both get one run,
/// and between them they get all.
///
/// # Panics
///
/// When the store does not.
pub async fn racing_claimers_share_runs<S: Store + ?Sized>(store: Arc<S>) {
    named("racing_claimers_share_runs", async {
        const RUNS: usize = 100;
        let t0 = after(Timestamp::now(), -60_000);
        let mut all = BTreeSet::new();
        for i in 0..RUNS {
            let r = create(&*store, new_run("wf", after(t0, i as i64))).await;
            all.insert(r.id);
        }
        let now = after(t0, 1_000);
        let claimer = |name: &str| {
            let store = store.clone();
            let l = lease(&worker(name), after(Timestamp::now(), 600_000));
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let batch = store
                        .claim_due(&l, now, 7, None)
                        .await
                        .map_err(|e| format!("claim_due: {e}"))?;
                    if batch.is_empty() {
                        return Ok::<_, String>((l.worker, got));
                    }
                    got.extend(batch.into_iter().map(|r| r.id));
                    if got.len() > RUNS {
                        return Err(format!(
                            "{} claimed {} of {RUNS} runs whose leases hold",
                            l.worker,
                            got.len()
                        ));
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let (a, b) = (claimer("a"), claimer("b"));
        let (wa, got_a) = a
            .await
            .expect("task panicked")
            .unwrap_or_else(|e| panic!("{e}"));
        let (wb, got_b) = b
            .await
            .expect("task panicked")
            .unwrap_or_else(|e| panic!("{e}"));

        let mut union = BTreeSet::new();
        for id in got_a.iter().chain(&got_b) {
            assert!(union.insert(*id), "run {id} was claimed twice");
        }
        assert_eq!(
            union, all,
            "the claimers did not get every run between them"
        );
        for (w, got) in [(&wa, &got_a), (&wb, &got_b)] {
            for id in got {
                let r = record(&*store, *id).await;
                assert_eq!(r.owner.as_ref(), Some(w), "owner of {id}");
            }
        }
    })
    .await;
}
