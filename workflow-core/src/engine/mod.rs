//! The [`Engine`]: starts runs, executes them on a pool of tasks, and answers
//! questions about them.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use futures::FutureExt;
use serde::Serialize;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::ids::{RunId, WorkerId};
use crate::journal::{ErrorRecord, Event, Json, RunRecord, to_json};
use crate::registry::{Registration, Registry, Workflow};
use crate::store::{CancelOutcome, Created, Lease, NewRun, Store};
use crate::time::Timestamp;

mod builder;
mod driver;
mod handle;
mod scheduler;

pub use builder::EngineBuilder;
pub use handle::RunHandle;

/// How a run ended, as the worker that ended it knows.
#[derive(Debug, Clone)]
pub(crate) enum Finished {
    Completed(Json),
    Failed(ErrorRecord),
    Cancelled,
}

/// A run this engine executes: the tokens that stop it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    /// Stop and record the run as cancelled.
    pub(crate) cancel: CancellationToken,
    /// Stop without recording anything: the run is no longer ours.
    pub(crate) abandon: CancellationToken,
}

/// Settings of an engine.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) concurrency: usize,
    pub(crate) worker: bool,
    pub(crate) lease: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) suspend_after: Duration,
    pub(crate) claim_unknown: bool,
}

/// Options for [`Engine::start_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StartOptions {
    /// A caller-chosen key: starting again with the same key returns the run
    /// the first start created instead of creating another.
    pub idempotency_key: Option<String>,
}

impl StartOptions {
    /// Sets the idempotency key.
    #[must_use]
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }
}

/// The workflow engine: starts runs, executes them durably, and reports on
/// them.
///
/// An engine is cheap to clone; clones share one worker. Executing runs and
/// all their state lives in the [`Store`]; any number of engine processes can
/// share a store, each claiming runs with a lease.
///
/// # Examples
///
/// ```
/// use workflow_core::{step, workflow, Engine, MemoryStore, RunStatus, StepError};
///
/// #[step]
/// async fn greet(name: String) -> Result<String, StepError> {
///     Ok(format!("hello, {name}"))
/// }
///
/// #[workflow]
/// async fn hello(name: String) -> Result<String, StepError> {
///     greet(name).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> workflow_core::Result<()> {
/// let engine = Engine::builder().store(MemoryStore::new()).build().await?;
/// let run = engine.start(hello, ("world".to_string(),)).await?;
/// assert_eq!(run.result().await?, "hello, world");
/// assert_eq!(run.status().await?, RunStatus::Completed);
/// engine.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("worker", &self.inner.worker)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) worker: WorkerId,
    pub(crate) config: Config,
    registry: RwLock<Registry>,
    permits: Arc<Semaphore>,
    live: Mutex<HashMap<RunId, Live>>,
    waiters: Mutex<HashMap<RunId, Vec<oneshot::Sender<Option<Finished>>>>>,
    pub(crate) wake_scheduler: Notify,
    pub(crate) shutdown: CancellationToken,
    tasks: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    pub(crate) fn lease(&self) -> Lease {
        Lease {
            worker: self.worker.clone(),
            until: Timestamp::now() + self.config.lease,
        }
    }

    /// The workflows this engine claims runs of: `None` for all.
    pub(crate) fn claimable_workflows(&self) -> Option<Vec<String>> {
        if self.config.claim_unknown {
            return None;
        }
        Some(
            self.registry
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .names(),
        )
    }

    pub(crate) fn registration(&self, name: &str) -> Option<Registration> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
    }

    pub(crate) fn is_live(&self, id: RunId) -> bool {
        lock(&self.live).contains_key(&id)
    }

    /// The runs this engine is executing.
    pub(crate) fn live_runs(&self) -> Vec<RunId> {
        lock(&self.live).keys().copied().collect()
    }

    pub(crate) fn live(&self, id: RunId) -> Option<Live> {
        lock(&self.live).get(&id).cloned()
    }

    /// Spawns a task that executes a claimed run while holding `permit`.
    pub(crate) fn launch(
        self: &Arc<Self>,
        id: RunId,
        start: driver::Start,
        permit: OwnedSemaphorePermit,
    ) {
        let live = self.track(id);
        let inner = self.clone();
        self.tasks.spawn(async move {
            let exit = driver::drive(inner.clone(), start, live);
            inner.settle(id, exit, permit).await;
        });
    }

    /// Spawns a task that loads a claimed run's journal and executes it.
    pub(crate) fn resume(self: &Arc<Self>, record: RunRecord, permit: OwnedSemaphorePermit) {
        let id = record.id;
        let live = self.track(id);
        let inner = self.clone();
        self.tasks.spawn(async move {
            let exit = driver::resume(inner.clone(), record, live);
            inner.settle(id, exit, permit).await;
        });
    }

    fn track(&self, id: RunId) -> Live {
        let live = Live::default();
        lock(&self.live).insert(id, live.clone());
        live
    }

    /// Waits for a driver, then stops tracking its run and acts on how it
    /// stopped: the run is forgotten here *before* it is released, so that
    /// the scheduler never mistakes a released run for one it executes, and
    /// waiters are told last, so that one that finds the run not executing
    /// here can rely on the store. A driver that panics outside workflow
    /// code leaves its run to its lease.
    async fn settle(
        &self,
        id: RunId,
        driver: impl Future<Output = driver::Exit>,
        permit: OwnedSemaphorePermit,
    ) {
        let exit = match AssertUnwindSafe(driver).catch_unwind().await {
            Ok(exit) => exit,
            Err(panic) => {
                tracing::error!(run_id = %id, panic = crate::step::panic_message(&*panic), "run driver panicked");
                driver::Exit::Gone
            }
        };
        lock(&self.live).remove(&id);
        drop(permit);
        let finished = match exit {
            driver::Exit::Finished(finished) => Some(finished),
            driver::Exit::Release(wake_at) => {
                if let Err(e) = self.store.release(id, &self.worker, wake_at).await {
                    tracing::warn!(run_id = %id, error = %e, "could not release the run");
                }
                None
            }
            driver::Exit::Gone => None,
        };
        self.notify_finished(id, finished);
        self.wake_scheduler.notify_one();
    }

    pub(crate) fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }

    pub(crate) fn free_permits(&self) -> usize {
        self.permits.available_permits()
    }

    /// Tells the run's waiters that it stopped executing here, with the
    /// outcome when it ended.
    pub(crate) fn notify_finished(&self, id: RunId, outcome: Option<Finished>) {
        if let Some(waiters) = lock(&self.waiters).remove(&id) {
            for w in waiters {
                let _ = w.send(outcome.clone());
            }
        }
    }

    pub(crate) fn watch(&self, id: RunId) -> oneshot::Receiver<Option<Finished>> {
        let (tx, rx) = oneshot::channel();
        let mut waiters = lock(&self.waiters);
        let list = waiters.entry(id).or_default();
        list.retain(|w| !w.is_closed());
        list.push(tx);
        rx
    }

    /// Forgets the waiters of a run that nobody waits for any more.
    pub(crate) fn prune_waiters(&self, id: RunId) {
        let mut waiters = lock(&self.waiters);
        if let Some(list) = waiters.get_mut(&id) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiters.remove(&id);
            }
        }
    }
}

impl Engine {
    /// A builder; a store is required.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::new()
    }

    fn start_with_config(store: Arc<dyn Store>, config: Config, registry: Registry) -> Self {
        let inner = Arc::new(Inner {
            store,
            worker: WorkerId::new(),
            permits: Arc::new(Semaphore::new(if config.worker {
                config.concurrency
            } else {
                0
            })),
            config,
            registry: RwLock::new(registry),
            live: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            wake_scheduler: Notify::new(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        if inner.config.worker {
            inner.tasks.spawn(scheduler::run(inner.clone()));
            inner.tasks.spawn(scheduler::renew_leases(inner.clone()));
        }
        tracing::debug!(worker = %inner.worker, "engine started");
        Engine { inner }
    }

    /// Starts a run of `workflow` with `input` (its arguments as a tuple) and
    /// returns at once.
    ///
    /// The run is recorded in the store before this returns; a worker (this
    /// engine, or another process on the same store) executes it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the run cannot be recorded,
    /// [`Error::Serialization`] when the input cannot be serialized, and
    /// [`Error::ShutDown`] after [`shutdown`](Self::shutdown).
    pub async fn start<W: Workflow>(
        &self,
        workflow: W,
        input: W::Input,
    ) -> Result<RunHandle<W::Output>> {
        self.start_with(workflow, input, StartOptions::default())
            .await
    }

    /// Starts a run with options, such as an idempotency key.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start), and [`Error::KeyConflict`] when the key
    /// already started a run of another workflow.
    ///
    /// # Examples
    ///
    /// ```
    /// # use workflow_core::{workflow, Engine, MemoryStore, StartOptions, StepError};
    /// # #[workflow]
    /// # async fn charge(order: u64) -> Result<u64, StepError> { Ok(order) }
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> workflow_core::Result<()> {
    /// # let engine = Engine::builder().store(MemoryStore::new()).build().await?;
    /// let opts = StartOptions::default().idempotency_key("order-42");
    /// let first = engine.start_with(charge, (42,), opts.clone()).await?;
    /// let again = engine.start_with(charge, (42,), opts).await?;
    /// assert_eq!(first.id(), again.id());
    /// # engine.shutdown().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_with<W: Workflow>(
        &self,
        _workflow: W,
        input: W::Input,
        options: StartOptions,
    ) -> Result<RunHandle<W::Output>> {
        self.inner
            .registry
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .ensure(Registration::of::<W>());
        let id = RunId::new();
        let input = to_json(&input).map_err(|source| Error::Serialization {
            action: "serialize the input",
            run_id: id,
            source,
        })?;
        let id = self.create(id, W::NAME, input, options).await?;
        Ok(RunHandle::new(self.clone(), id))
    }

    /// Starts a run of the workflow registered as `name`, with its arguments
    /// as a JSON array (or any value that serializes to one).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownWorkflow`] when no workflow of that name is
    /// registered, and as [`start_with`](Self::start_with).
    pub async fn start_by_name(
        &self,
        name: &str,
        input: &impl Serialize,
        options: StartOptions,
    ) -> Result<RunHandle<serde_json::Value>> {
        let Some(registration) = self.inner.registration(name) else {
            return Err(Error::UnknownWorkflow {
                name: name.to_owned(),
            });
        };
        let id = RunId::new();
        let input = to_json(input).map_err(|source| Error::Serialization {
            action: "serialize the input",
            run_id: id,
            source,
        })?;
        if let Err(source) = (registration.start)(&input) {
            return Err(Error::Serialization {
                action: "decode the input",
                run_id: id,
                source,
            });
        }
        let id = self.create(id, registration.name, input, options).await?;
        Ok(RunHandle::new(self.clone(), id))
    }

    async fn create(
        &self,
        id: RunId,
        workflow: &'static str,
        input: Json,
        options: StartOptions,
    ) -> Result<RunId> {
        let inner = &self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(Error::ShutDown);
        }
        let permit = inner.try_permit();
        let claim = permit.as_ref().map(|_| inner.lease());
        let launch = driver::Launch {
            id,
            workflow: workflow.to_owned(),
            input: input.clone(),
            events: Vec::new(),
            next_seq: 1,
        };
        // With a slot free, run the workflow up to its first step now and
        // record that step's start together with the run: one write fewer.
        let mut prepared = None;
        let mut first_events = Vec::new();
        if permit.is_some()
            && let Ok(mut p) = driver::prepare(inner, launch.clone())
            && let Some(events) = p.first_events()
        {
            first_events = events;
            prepared = Some(p);
        }
        let mut run = NewRun::new(workflow, input)
            .idempotency_key(options.idempotency_key.clone())
            .claim(claim)
            .events(first_events);
        run.id = id;
        match inner.store.create_run(run).await? {
            Created::New(record) => {
                tracing::debug!(run_id = %record.id, workflow, "run created");
                if inner.shutdown.is_cancelled() {
                    // Shut down while recording: leave the run to another worker.
                    if permit.is_some() {
                        let _ = inner.store.release(id, &inner.worker, None).await;
                    }
                    return Ok(record.id);
                }
                match (permit, prepared) {
                    (Some(permit), Some(prepared)) => {
                        prepared.ctx.mark_durable(record.next_seq);
                        inner.launch(id, driver::Start::Prepared(prepared), permit);
                    }
                    (Some(permit), None) => inner.launch(id, driver::Start::Launch(launch), permit),
                    (None, _) => inner.wake_scheduler.notify_one(),
                }
                Ok(record.id)
            }
            Created::Existing(record) => {
                if record.workflow != workflow {
                    return Err(Error::KeyConflict {
                        key: options.idempotency_key.unwrap_or_default(),
                        existing: record.workflow,
                        requested: workflow.to_owned(),
                    });
                }
                Ok(record.id)
            }
        }
    }

    /// A handle to an existing run, typed with its workflow's output.
    ///
    /// Nothing is checked until the handle is used.
    pub fn handle<O>(&self, id: RunId) -> RunHandle<O> {
        RunHandle::new(self.clone(), id)
    }

    /// The run's record: status, result or error, timing.
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`] for an unknown id, [`Error::Store`] when the
    /// store fails.
    pub async fn run(&self, id: RunId) -> Result<RunRecord> {
        self.inner
            .store
            .run(id)
            .await?
            .ok_or(Error::RunNotFound(id))
    }

    /// The run's journal, in order.
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`] for an unknown id, [`Error::Store`] when the
    /// store fails or a row is corrupt.
    pub async fn journal(&self, id: RunId) -> Result<Vec<Event>> {
        match self.inner.store.load_events(id).await {
            Err(crate::StoreError::NotFound(id)) => Err(Error::RunNotFound(id)),
            other => Ok(other?),
        }
    }

    /// The most recently created runs, newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store fails.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        Ok(self.inner.store.list_runs(limit).await?)
    }

    /// Cancels a run. A run this engine is executing stops at once (a step
    /// in flight is dropped); a run another worker owns stops at its next
    /// step; an idle run is cancelled in the store.
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`] for an unknown id, [`Error::Store`] when the
    /// store fails.
    pub async fn cancel(&self, id: RunId) -> Result<CancelOutcome> {
        let live = self.inner.live(id);
        if let Some(live) = live {
            let finished = self.inner.watch(id);
            live.cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), finished).await;
            let record = self.run(id).await?;
            if record.status.is_terminal() {
                return Ok(if record.status == crate::RunStatus::Cancelled {
                    CancelOutcome::Cancelled
                } else {
                    CancelOutcome::AlreadyFinished(record.status)
                });
            }
        }
        match self.inner.store.request_cancel(id, Timestamp::now()).await {
            Err(crate::StoreError::NotFound(id)) => Err(Error::RunNotFound(id)),
            other => {
                let outcome = other?;
                if outcome == CancelOutcome::Cancelled {
                    self.inner.notify_finished(id, Some(Finished::Cancelled));
                }
                Ok(outcome)
            }
        }
    }

    /// This engine's worker id (the owner recorded on the runs it leases).
    #[must_use]
    pub fn worker_id(&self) -> &WorkerId {
        &self.inner.worker
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Stops taking runs, unloads every run this engine executes (a step in
    /// flight is dropped and runs again elsewhere), releases their leases so
    /// another worker can take them at once, and waits for all that.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}
