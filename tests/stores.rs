//! The store conformance suite against every store, and SQLite-specific
//! durability and corruption tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;
use workflow_core::journal::{EventKind, NewEvent};
use workflow_core::store::Lease;
use workflow_core::store::conformance;
use workflow_core::store::{Created, NewRun};
use workflow_core::{MemoryStore, RunId, SqliteStore, Store, StoreError, Timestamp, WorkerId};

/// A fresh in-memory store (nothing to keep alive).
async fn memory() -> (Arc<MemoryStore>, ()) {
    (Arc::new(MemoryStore::new()), ())
}

/// A fresh SQLite store on a file in a new temporary directory, which must
/// outlive the store.
async fn sqlite() -> (Arc<SqliteStore>, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("workflows.db"))
        .await
        .expect("open SQLite store");
    (Arc::new(store), dir)
}

/// One test per check, for one store.
macro_rules! conformance_tests {
    ($store:ident: $($check:ident),* $(,)?) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (store, _keep) = super::$store().await;
                    workflow_core::store::conformance::$check(store).await;
                }
            )*

            #[test]
            fn every_check_has_a_test() {
                let tested = [$(stringify!($check)),*];
                for check in workflow_core::store::conformance::CHECKS {
                    assert!(tested.contains(check), "no test runs conformance check `{check}`");
                }
            }
        }
    };
}

macro_rules! for_each_store {
    ($($store:ident),*) => {
        $(
            conformance_tests!($store:
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
            );
        )*
    };
}

for_each_store!(memory, sqlite);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_memory() {
    conformance::run_all(|| Box::pin(async { Arc::new(MemoryStore::new()) })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_on_sqlite_as_dyn_store() {
    let dir = Arc::new(tempfile::tempdir().expect("temporary directory"));
    let n = Arc::new(AtomicUsize::new(0));
    conformance::run_all(move || {
        let path = dir
            .path()
            .join(format!("{}.db", n.fetch_add(1, Ordering::Relaxed)));
        Box::pin(async move {
            let store = SqliteStore::open(path).await.expect("open SQLite store");
            Arc::new(store) as Arc<dyn Store>
        })
    })
    .await;
}

// ---------------------------------------------------------------------------
// SQLite only

/// Creates a run claimed by `worker` and appends `steps` started steps.
async fn run_with_steps(store: &SqliteStore, worker: &WorkerId, steps: u32) -> RunId {
    let until = Timestamp::from_millis(Timestamp::now().as_millis() + 600_000);
    let run = NewRun::new("wf", serde_json::value::to_raw_value(&("zoë", 1)).unwrap())
        .idempotency_key(Some(format!("key-{}", RunId::new())))
        .claim(Some(Lease {
            worker: worker.clone(),
            until,
        }));
    let id = match store.create_run(run).await.expect("create_run") {
        Created::New(r) => r.id,
        other => panic!("unexpected {other:?}"),
    };
    for op in 0..steps {
        let event = NewEvent::now(EventKind::StepCompleted {
            op,
            output: serde_json::value::to_raw_value(&format!("out-{op}")).unwrap(),
        });
        store
            .append(id, worker, 1 + u64::from(op), &[event])
            .await
            .expect("append");
    }
    id
}

#[tokio::test]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    let worker = WorkerId::from("w".to_owned());
    let (id, key) = {
        let store = SqliteStore::open(&path).await.unwrap();
        let id = run_with_steps(&store, &worker, 3).await;
        let key = store.run(id).await.unwrap().unwrap().idempotency_key;
        (id, key)
        // the store is dropped here, closing the file
    };

    let store = SqliteStore::open(&path).await.unwrap();
    let record = store
        .run(id)
        .await
        .unwrap()
        .expect("the run after reopening");
    assert_eq!(record.next_seq, 4);
    assert_eq!(record.owner, Some(worker.clone()));
    assert_eq!(record.input.get(), r#"["zoë",1]"#);
    let events = store.load_events(id).await.unwrap();
    assert_eq!(events.len(), 4);
    match &events[3].kind {
        EventKind::StepCompleted { op, output } => {
            assert_eq!(*op, 2);
            assert_eq!(output.get(), r#""out-2""#);
        }
        other => panic!("unexpected {}", other.name()),
    }
    // The idempotency key is durable too.
    let again =
        NewRun::new("wf", serde_json::value::to_raw_value(&()).unwrap()).idempotency_key(key);
    match store.create_run(again).await.unwrap() {
        Created::Existing(r) => assert_eq!(r.id, id),
        other => panic!("reopened store forgot the idempotency key: {other:?}"),
    }
    // And the run can go on where it stopped.
    let event = NewEvent::now(EventKind::RunCompleted {
        output: serde_json::value::to_raw_value(&1).unwrap(),
    });
    store.append(id, &worker, 4, &[event]).await.unwrap();
}

#[tokio::test]
async fn sqlite_corrupt_event_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let worker = WorkerId::from("w".to_owned());
    let broken = run_with_steps(&store, &worker, 3).await;
    let healthy = run_with_steps(&store, &worker, 3).await;

    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let changed = conn
        .execute(
            "UPDATE wf_events SET data = ?1 WHERE run_id = ?2 AND seq = 2",
            rusqlite::params!["{\"step_completed\": not json", broken.to_string()],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    match store.load_events(broken).await {
        Err(StoreError::Corrupt {
            run_id,
            what,
            reason,
        }) => {
            assert_eq!(run_id, broken);
            assert!(
                what.contains("event 2"),
                "`what` does not name the event: {what}"
            );
            assert!(!reason.is_empty());
            let message = StoreError::Corrupt {
                run_id,
                what,
                reason,
            }
            .to_string();
            assert!(message.contains(&broken.to_string()), "{message}");
        }
        other => panic!("loading a corrupt journal returned {other:?}"),
    }
    // The other run and the corrupt run's record are unaffected.
    let events = store.load_events(healthy).await.expect("the healthy run");
    assert_eq!(events.len(), 4);
    assert_eq!(store.run(broken).await.unwrap().unwrap().next_seq, 4);
    assert_eq!(store.list_runs(10).await.unwrap().len(), 2);

    // A row of the wrong type (a blob, not text) is corrupt as well.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn.execute(
        "UPDATE wf_events SET data = ?1 WHERE run_id = ?2 AND seq = 1",
        rusqlite::params![vec![0xffu8, 0x00, 0xfe], healthy.to_string()],
    )
    .unwrap();
    drop(conn);
    match store.load_events(healthy).await {
        Err(StoreError::Corrupt { what, .. }) => {
            assert!(
                what.contains("event 1"),
                "`what` does not name the event: {what}"
            );
        }
        other => panic!("loading a journal with a blob row returned {other:?}"),
    }
}

#[tokio::test]
async fn sqlite_open_in_missing_directory_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("workflows.db");
    match SqliteStore::open(&path).await {
        Err(e @ StoreError::Backend { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&path.display().to_string()),
                "the error does not name {}: {message}",
                path.display()
            );
        }
        Err(other) => panic!("expected a backend error, got {other:?}"),
        Ok(_) => panic!("opened a database in a directory that does not exist"),
    }
}
