//! An in-memory store, for tests and documentation examples.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{CancelOutcome, Created, Lease, NewRun, Renewal, Store, cancels};
use crate::error::StoreError;
use crate::ids::{RunId, WorkerId};
use crate::journal::{Event, EventKind, NewEvent, Projection, RunRecord, RunStatus};
use crate::time::Timestamp;

/// A [`Store`] that keeps everything in memory.
///
/// Nothing survives the process; use it in tests and examples. It implements
/// the same semantics as the durable stores (leases, sequence checks,
/// cancellation).
///
/// # Examples
///
/// ```
/// use workflow_core::{Engine, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> workflow_core::Result<()> {
/// let engine = Engine::builder().store(MemoryStore::new()).build().await?;
/// # engine.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    runs: HashMap<RunId, Entry>,
    keys: HashMap<String, RunId>,
    due: BTreeSet<(Timestamp, RunId)>,
}

#[derive(Debug)]
struct Entry {
    record: RunRecord,
    events: Vec<Event>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl Inner {
    /// Runs `change` on a run's record and keeps the due index in step.
    fn update<T>(
        &mut self,
        run_id: RunId,
        change: impl FnOnce(&mut Entry) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let entry = self
            .runs
            .get_mut(&run_id)
            .ok_or(StoreError::NotFound(run_id))?;
        let before = entry.record.due_at();
        let out = change(entry)?;
        let after = entry.record.due_at();
        if before != after {
            if let Some(t) = before {
                self.due.remove(&(t, run_id));
            }
            if let Some(t) = after {
                self.due.insert((t, run_id));
            }
        }
        Ok(out)
    }
}

fn check_owner(record: &RunRecord, worker: &WorkerId) -> Result<(), StoreError> {
    if record.status.is_terminal() {
        return Err(StoreError::Finished {
            run_id: record.id,
            status: record.status,
        });
    }
    if record.owner.as_ref() != Some(worker) {
        return Err(StoreError::LeaseLost(record.id));
    }
    Ok(())
}

fn push_events(entry: &mut Entry, events: &[NewEvent], now: Timestamp) {
    for event in events {
        entry.events.push(Event {
            seq: entry.record.next_seq,
            at: event.at,
            kind: event.kind.clone(),
        });
        entry.record.next_seq += 1;
    }
    Projection::of(events).apply(&mut entry.record, now);
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_run(&self, run: NewRun) -> Result<Created, StoreError> {
        let mut inner = self.inner.lock().expect("memory store poisoned");
        if let Some(key) = &run.idempotency_key
            && let Some(existing) = inner.keys.get(key)
        {
            let record = inner.runs[existing].record.clone();
            return Ok(Created::Existing(record));
        }
        let record = run.to_record();
        let created = EventKind::RunCreated {
            workflow: run.workflow,
            input: run.input,
        };
        let events = vec![Event {
            seq: 0,
            at: run.created_at,
            kind: created,
        }];
        if let Some(key) = run.idempotency_key {
            inner.keys.insert(key, run.id);
        }
        let mut entry = Entry { record, events };
        if !run.events.is_empty() {
            push_events(&mut entry, &run.events, run.created_at);
        }
        let record = entry.record.clone();
        if let Some(due) = record.due_at() {
            inner.due.insert((due, run.id));
        }
        inner.runs.insert(run.id, entry);
        Ok(Created::New(record))
    }

    async fn append(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        expected_seq: u64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("memory store poisoned");
        inner.update(run_id, |entry| {
            check_owner(&entry.record, worker)?;
            if entry.record.next_seq != expected_seq {
                return Err(StoreError::Conflict {
                    run_id,
                    expected: expected_seq,
                    actual: entry.record.next_seq,
                });
            }
            if entry.record.cancel_requested && !cancels(events) {
                return Err(StoreError::CancelRequested(run_id));
            }
            push_events(entry, events, Timestamp::now());
            Ok(())
        })
    }

    async fn load_events(&self, run_id: RunId) -> Result<Vec<Event>, StoreError> {
        let inner = self.inner.lock().expect("memory store poisoned");
        let entry = inner
            .runs
            .get(&run_id)
            .ok_or(StoreError::NotFound(run_id))?;
        Ok(entry.events.clone())
    }

    async fn run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let inner = self.inner.lock().expect("memory store poisoned");
        Ok(inner.runs.get(&run_id).map(|e| e.record.clone()))
    }

    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let inner = self.inner.lock().expect("memory store poisoned");
        let mut runs: Vec<_> = inner.runs.values().map(|e| e.record.clone()).collect();
        runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        runs.truncate(limit);
        Ok(runs)
    }

    async fn claim_due(
        &self,
        lease: &Lease,
        now: Timestamp,
        limit: usize,
        workflows: Option<&[String]>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut inner = self.inner.lock().expect("memory store poisoned");
        let due: Vec<RunId> = inner
            .due
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, id)| *id)
            .filter(|id| {
                workflows
                    .is_none_or(|names| names.iter().any(|n| *n == inner.runs[id].record.workflow))
            })
            .take(limit)
            .collect();
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            let record = inner.update(id, |entry| {
                let r = &mut entry.record;
                r.owner = Some(lease.worker.clone());
                r.lease_until = Some(lease.until);
                r.wake_at = None;
                r.status = RunStatus::Running;
                r.updated_at = now;
                Ok(r.clone())
            })?;
            claimed.push(record);
        }
        Ok(claimed)
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let inner = self.inner.lock().expect("memory store poisoned");
        Ok(inner.due.first().map(|(t, _)| *t))
    }

    async fn renew_leases(&self, lease: &Lease, runs: &[RunId]) -> Result<Renewal, StoreError> {
        let mut inner = self.inner.lock().expect("memory store poisoned");
        let mut renewal = Renewal::default();
        for &id in runs {
            let owned = inner.runs.get(&id).is_some_and(|e| {
                e.record.owner.as_ref() == Some(&lease.worker) && !e.record.status.is_terminal()
            });
            if !owned {
                renewal.lost.push(id);
                continue;
            }
            let flagged = inner.update(id, |entry| {
                entry.record.lease_until = Some(lease.until);
                Ok(entry.record.cancel_requested)
            })?;
            if flagged {
                renewal.cancel_requested.push(id);
            }
        }
        Ok(renewal)
    }

    async fn release(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        wake_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let mut inner = self.inner.lock().expect("memory store poisoned");
        inner.update(run_id, |entry| {
            check_owner(&entry.record, worker)?;
            let r = &mut entry.record;
            r.owner = None;
            r.lease_until = None;
            r.wake_at = Some(wake_at.unwrap_or_else(Timestamp::now));
            r.status = if wake_at.is_some() {
                RunStatus::Sleeping
            } else {
                RunStatus::Pending
            };
            r.updated_at = Timestamp::now();
            Ok(())
        })
    }

    async fn request_cancel(
        &self,
        run_id: RunId,
        now: Timestamp,
    ) -> Result<CancelOutcome, StoreError> {
        let mut inner = self.inner.lock().expect("memory store poisoned");
        inner.update(run_id, |entry| {
            let r = &entry.record;
            if r.status.is_terminal() {
                return Ok(CancelOutcome::AlreadyFinished(r.status));
            }
            if r.owner.is_some() && r.lease_until.is_some_and(|until| until > now) {
                entry.record.cancel_requested = true;
                return Ok(CancelOutcome::Requested);
            }
            push_events(
                entry,
                &[NewEvent {
                    at: now,
                    kind: EventKind::RunCancelled,
                }],
                now,
            );
            Ok(CancelOutcome::Cancelled)
        })
    }
}
