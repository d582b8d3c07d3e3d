//! Pluggable storage: the [`Store`] trait and its implementations.
//!
//! A store keeps each run's journal and a projection of it ([`RunRecord`]),
//! and arbitrates ownership between workers with leases. Every method is one
//! atomic operation. Implementations must pass the conformance suite in
//! `store::conformance` (enable the `conformance` feature to run it on your
//! own store).

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::{RunId, WorkerId};
use crate::journal::{Event, Json, NewEvent, RunRecord, RunStatus};
use crate::time::Timestamp;

mod memory;
#[cfg(feature = "sqlite")]
mod sqlite;
mod url;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use memory::MemoryStore;

#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, Synchronous};
pub use url::{STORE_URL_VAR, open_from_url};

/// A run to create.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewRun {
    /// The run's id.
    pub id: RunId,
    /// The registered workflow name.
    pub workflow: String,
    /// The workflow's arguments.
    pub input: Json,
    /// A caller-chosen key that makes creation idempotent.
    pub idempotency_key: Option<String>,
    /// Claim the run for this worker at once (it will start executing it).
    pub claim: Option<Lease>,
    /// Events to append after `run_created` (at sequence 1, 2, ...) in the
    /// same transaction: the start of a claimed run's first step.
    pub events: Vec<NewEvent>,
    /// When the run is created.
    pub created_at: Timestamp,
}

impl NewRun {
    /// A run of `workflow` with `input`, created now.
    #[must_use]
    pub fn new(workflow: impl Into<String>, input: Json) -> Self {
        Self {
            id: RunId::new(),
            workflow: workflow.into(),
            input,
            idempotency_key: None,
            claim: None,
            events: Vec::new(),
            created_at: Timestamp::now(),
        }
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn idempotency_key(mut self, key: Option<String>) -> Self {
        self.idempotency_key = key;
        self
    }

    /// Claims the run for a worker at creation.
    #[must_use]
    pub fn claim(mut self, lease: Option<Lease>) -> Self {
        self.claim = lease;
        self
    }

    /// Events to record after `run_created`, in the same transaction.
    #[must_use]
    pub fn events(mut self, events: Vec<NewEvent>) -> Self {
        self.events = events;
        self
    }

    /// The record of this run as created (before `events` are applied).
    #[must_use]
    pub fn to_record(&self) -> RunRecord {
        let mut record = RunRecord::new(
            self.id,
            self.workflow.clone(),
            self.input.clone(),
            self.created_at,
        );
        record.idempotency_key = self.idempotency_key.clone();
        if let Some(lease) = &self.claim {
            record.owner = Some(lease.worker.clone());
            record.lease_until = Some(lease.until);
            record.status = RunStatus::Running;
        }
        record
    }
}

/// A worker's lease on a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The worker.
    pub worker: WorkerId,
    /// Until when the lease holds unless renewed.
    pub until: Timestamp,
}

/// What [`Store::create_run`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Created {
    /// A new run was recorded.
    New(RunRecord),
    /// A run with the same idempotency key already existed; nothing changed.
    Existing(RunRecord),
}

/// What [`Store::renew_leases`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Renewal {
    /// Renewed runs whose cancellation was requested.
    pub cancel_requested: Vec<RunId>,
    /// Runs the worker asked to renew but no longer owns.
    pub lost: Vec<RunId>,
}

impl Renewal {
    /// A renewal report.
    #[must_use]
    pub fn new(cancel_requested: Vec<RunId>, lost: Vec<RunId>) -> Self {
        Self {
            cancel_requested,
            lost,
        }
    }
}

/// What [`Store::request_cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The run was not owned by a live worker and is now cancelled.
    Cancelled,
    /// A worker owns the run; it will cancel it at its next step.
    Requested,
    /// The run had already ended with this status.
    AlreadyFinished(RunStatus),
}

/// Storage for runs and their journals.
///
/// The trait is object safe; the engine holds an `Arc<dyn Store>`. Methods
/// that change a run's journal take the caller's worker id and fail with
/// [`StoreError::LeaseLost`] when another worker holds the run, and with
/// [`StoreError::Conflict`] when the journal is not at the expected sequence,
/// so that two workers can never both extend one journal.
#[async_trait]
pub trait Store: std::fmt::Debug + Send + Sync + 'static {
    /// Records a new run, its `run_created` event (sequence 0) and then
    /// `run.events` (sequence 1, 2, ...), applying their projection.
    ///
    /// With an idempotency key that an earlier run used, returns that run as
    /// [`Created::Existing`] and changes nothing.
    async fn create_run(&self, run: NewRun) -> Result<Created, StoreError>;

    /// Appends `events` at `expected_seq`, `expected_seq + 1`, ... and updates
    /// the run's projection in the same transaction.
    ///
    /// Fails with [`StoreError::CancelRequested`] when cancellation was
    /// requested, unless the batch contains `run_cancelled`.
    async fn append(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        expected_seq: u64,
        events: &[NewEvent],
    ) -> Result<(), StoreError>;

    /// The run's whole journal, in order.
    async fn load_events(&self, run_id: RunId) -> Result<Vec<Event>, StoreError>;

    /// The run's record, or `None` if there is no such run.
    async fn run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError>;

    /// The runs created most recently first, at most `limit`.
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError>;

    /// Claims up to `limit` runs that are due at `now` (pending, sleeping
    /// past their wake time, or whose owner's lease expired), earliest first,
    /// leasing them to `lease.worker` until `lease.until`.
    ///
    /// `workflows` limits the claim to runs of those workflows; `None` claims
    /// any.
    async fn claim_due(
        &self,
        lease: &Lease,
        now: Timestamp,
        limit: usize,
        workflows: Option<&[String]>,
    ) -> Result<Vec<RunRecord>, StoreError>;

    /// The earliest time at which some unfinished run becomes due, if any.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Extends `lease.worker`'s lease to `lease.until` on each of `runs` it
    /// still owns (the runs it is executing). Reports those whose
    /// cancellation was requested, and those it no longer owns (another
    /// worker took them over after the lease lapsed, or they ended), which it
    /// must stop executing. Runs it does not own are left alone.
    async fn renew_leases(&self, lease: &Lease, runs: &[RunId]) -> Result<Renewal, StoreError>;

    /// Gives up `worker`'s lease on a run: it becomes `sleeping` until
    /// `wake_at`, or `pending` (due at once) when `wake_at` is `None`.
    async fn release(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        wake_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;

    /// Asks for a run to be cancelled: cancels it at once if no live worker
    /// owns it, otherwise flags it for its owner.
    async fn request_cancel(
        &self,
        run_id: RunId,
        now: Timestamp,
    ) -> Result<CancelOutcome, StoreError>;
}

#[async_trait]
impl<S: Store + ?Sized> Store for Arc<S> {
    async fn create_run(&self, run: NewRun) -> Result<Created, StoreError> {
        (**self).create_run(run).await
    }
    async fn append(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        expected_seq: u64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        (**self).append(run_id, worker, expected_seq, events).await
    }
    async fn load_events(&self, run_id: RunId) -> Result<Vec<Event>, StoreError> {
        (**self).load_events(run_id).await
    }
    async fn run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        (**self).run(run_id).await
    }
    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        (**self).list_runs(limit).await
    }
    async fn claim_due(
        &self,
        lease: &Lease,
        now: Timestamp,
        limit: usize,
        workflows: Option<&[String]>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        (**self).claim_due(lease, now, limit, workflows).await
    }
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        (**self).next_due().await
    }
    async fn renew_leases(&self, lease: &Lease, runs: &[RunId]) -> Result<Renewal, StoreError> {
        (**self).renew_leases(lease, runs).await
    }
    async fn release(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        wake_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        (**self).release(run_id, worker, wake_at).await
    }
    async fn request_cancel(
        &self,
        run_id: RunId,
        now: Timestamp,
    ) -> Result<CancelOutcome, StoreError> {
        (**self).request_cancel(run_id, now).await
    }
}

/// Whether a batch of events is allowed to land on a run that is being
/// cancelled.
pub(crate) fn cancels(events: &[NewEvent]) -> bool {
    events
        .iter()
        .any(|e| matches!(e.kind, crate::journal::EventKind::RunCancelled))
}
