//! Executing one run: polling the workflow future, flushing its journal,
//! unloading it while it only waits, and recording how it ended.

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;
use tracing::Instrument;

use super::{Finished, Inner, Live};
use crate::context::{self, Failure, RunContext};
use crate::error::{Error, StoreError};
use crate::ids::RunId;
use crate::journal::{ErrorRecord, Event, EventKind, Json, NewEvent, RunRecord};
use crate::replay::Replay;
use crate::step::panic_message;
use crate::step_error::StepError;
use crate::time::Timestamp;

/// How a driver stopped executing a run; the engine acts on it once the run
/// is no longer tracked as executing here.
#[derive(Debug)]
pub(crate) enum Exit {
    /// The run ended here.
    Finished(Finished),
    /// Give the run up: sleeping until the time, or due at once.
    Release(Option<Timestamp>),
    /// The run is not ours any more (another worker took it, or nothing could
    /// be recorded); leave it to its lease.
    Gone,
}

impl From<Option<Finished>> for Exit {
    fn from(finished: Option<Finished>) -> Self {
        finished.map_or(Exit::Gone, Exit::Finished)
    }
}

/// A claimed run, ready to execute.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub(crate) id: RunId,
    pub(crate) workflow: String,
    pub(crate) input: Json,
    /// The journal so far (empty for a run this engine just created).
    pub(crate) events: Vec<Event>,
    pub(crate) next_seq: u64,
}

/// Loads a claimed run's journal and executes it.
pub(crate) async fn resume(engine: Arc<Inner>, record: RunRecord, live: Live) -> Exit {
    let id = record.id;
    match engine.store.load_events(id).await {
        Ok(events) => {
            let launch = Launch {
                id,
                workflow: record.workflow,
                input: record.input,
                next_seq: record.next_seq,
                events,
            };
            drive(engine, Start::Launch(launch), live).await
        }
        Err(e @ StoreError::Corrupt { .. }) => {
            let message = format!("{e}; the run cannot be replayed");
            fail_run(&engine, id, record.next_seq, ErrorRecord::fatal(message))
                .await
                .into()
        }
        Err(e) => {
            tracing::warn!(run_id = %id, error = %e, "could not load the journal; releasing the run");
            Exit::Release(Some(Timestamp::now() + engine.config.poll_interval))
        }
    }
}

/// Executes a run until it ends, is unloaded, or this worker lets it go.
pub(crate) async fn drive(engine: Arc<Inner>, start: Start, live: Live) -> Exit {
    let (id, workflow) = match &start {
        Start::Launch(l) => (l.id, l.workflow.as_str()),
        Start::Prepared(p) => (p.ctx.run_id, p.workflow.as_str()),
    };
    let span = tracing::info_span!("run", run_id = %id, %workflow);
    execute(&engine, start, &live).instrument(span).await
}

/// Records a run as failed without executing it.
async fn fail_run(
    engine: &Inner,
    id: RunId,
    next_seq: u64,
    error: ErrorRecord,
) -> Option<Finished> {
    tracing::error!(run_id = %id, error = %error.message, "run failed");
    let events = [NewEvent::now(EventKind::RunFailed {
        error: error.clone(),
    })];
    match engine
        .store
        .append(id, &engine.worker, next_seq, &events)
        .await
    {
        Ok(()) => Some(Finished::Failed(error)),
        Err(e) => {
            tracing::warn!(run_id = %id, error = %e, "could not record the failure");
            None
        }
    }
}

/// Wakes the driver and remembers that it happened.
#[derive(Default)]
struct Signal {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        self.task.wake();
    }
}

impl Signal {
    async fn wait(&self) {
        poll_fn(|cx| {
            self.task.register(cx.waker());
            if self.woken.load(Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

/// Commits the context's unflushed events. On failure, returns the sequence
/// the failed batch started at.
async fn flush(engine: &Inner, ctx: &RunContext) -> Result<(), (u64, StoreError)> {
    let Some((first, events)) = ctx.take_pending() else {
        return Ok(());
    };
    let n = events.len() as u64;
    engine
        .store
        .append(ctx.run_id, &engine.worker, first, &events)
        .await
        .map_err(|e| (first, e))?;
    ctx.mark_durable(first + n);
    Ok(())
}

/// A run ready to execute: its context and its workflow's future.
pub(crate) struct Prepared {
    pub(crate) ctx: Arc<RunContext>,
    workflow: String,
    body: Pin<Box<dyn Future<Output = Result<Json, StepError>> + Send>>,
    signal: Arc<Signal>,
    waker: Waker,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("run_id", &self.ctx.run_id)
            .finish_non_exhaustive()
    }
}

/// What a run starts from.
#[derive(Debug)]
pub(crate) enum Start {
    /// A claimed run and its journal.
    Launch(Launch),
    /// A run prepared (and polled once) before it was recorded.
    Prepared(Prepared),
}

/// Builds a run's context and future from its journal; on failure, the
/// message to fail the run with.
pub(crate) fn prepare(engine: &Inner, launch: Launch) -> Result<Prepared, String> {
    let Some(registration) = engine.registration(&launch.workflow) else {
        return Err(Error::UnknownWorkflow {
            name: launch.workflow,
        }
        .to_string());
    };
    let started = launch
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::RunStarted { .. }));
    let replay =
        Replay::new(launch.events).map_err(|m| format!("the journal is inconsistent: {m}"))?;
    let body = (registration.start)(&launch.input).map_err(|e| {
        format!(
            "the stored arguments of this run no longer decode as the arguments of workflow \
             `{}`: {e}; did the workflow's signature change?",
            launch.workflow
        )
    })?;
    let ctx = Arc::new(RunContext::new(launch.id, replay, launch.next_seq));
    if !started {
        ctx.enqueue(EventKind::RunStarted {
            worker: engine.worker.clone(),
        });
    }
    let body = Box::pin(context::scope(Some(ctx.clone()), body));
    let signal = Arc::new(Signal::default());
    let waker = Waker::from(signal.clone());
    Ok(Prepared {
        ctx,
        workflow: launch.workflow,
        body,
        signal,
        waker,
    })
}

impl Prepared {
    /// Runs the workflow up to its first durable operation and returns the
    /// events that got it there, so that they can be recorded together with
    /// the run. `None` when the workflow did anything else (ended, failed,
    /// panicked): the run is then recorded plainly and started afresh.
    pub(crate) fn first_events(&mut self) -> Option<Vec<NewEvent>> {
        let polled = catch_unwind(AssertUnwindSafe(|| {
            self.body
                .as_mut()
                .poll(&mut Context::from_waker(&self.waker))
        }));
        if !matches!(polled, Ok(Poll::Pending)) || self.ctx.has_failed() {
            return None;
        }
        self.ctx.take_pending().map(|(_, events)| events)
    }
}

/// Executes the run.
async fn execute(engine: &Arc<Inner>, start: Start, live: &Live) -> Exit {
    let prepared = match start {
        Start::Prepared(prepared) => prepared,
        Start::Launch(launch) => {
            let (id, next_seq) = (launch.id, launch.next_seq);
            match prepare(engine, launch) {
                Ok(prepared) => prepared,
                Err(message) => {
                    return fail_run(engine, id, next_seq, ErrorRecord::fatal(message))
                        .await
                        .into();
                }
            }
        }
    };
    let Prepared {
        ctx,
        mut body,
        signal,
        waker,
        ..
    } = prepared;
    let id = ctx.run_id;

    loop {
        // Checked on every pass, not only while idle: a run that keeps making
        // progress must still stop when asked.
        if live.abandon.is_cancelled() {
            tracing::warn!("this worker lost the run's lease; stopping it");
            return Exit::Gone;
        }
        if live.cancel.is_cancelled() {
            drop(body);
            return cancelled(engine, &ctx).await;
        }
        if engine.shutdown.is_cancelled() {
            drop(body);
            return shut_down(engine, &ctx).await;
        }
        signal.woken.store(false, Ordering::SeqCst);
        let polled = match catch_unwind(AssertUnwindSafe(|| {
            body.as_mut().poll(&mut Context::from_waker(&waker))
        })) {
            Ok(polled) => polled,
            Err(panic) => {
                drop(body);
                let message = format!("the workflow panicked: {}", panic_message(&*panic));
                return fail(engine, &ctx, Failure::Invalid(message)).await;
            }
        };
        if let Some(failure) = ctx.take_fatal() {
            drop(body);
            return fail(engine, &ctx, failure).await;
        }
        if let Poll::Ready(result) = polled {
            drop(body);
            if result.is_ok() && ctx.is_replaying() {
                let message = format!(
                    "non-deterministic workflow: it returned, but the journal records more \
                     operations, starting with {}",
                    ctx.describe_replay_position()
                );
                return fail(engine, &ctx, Failure::Nondeterminism(message)).await;
            }
            let (kind, finished) = match result {
                Ok(output) => (
                    EventKind::RunCompleted {
                        output: output.clone(),
                    },
                    Finished::Completed(output),
                ),
                Err(error) => {
                    let error = error.to_record();
                    tracing::info!(error = %error, "run failed");
                    (
                        EventKind::RunFailed {
                            error: error.clone(),
                        },
                        Finished::Failed(error),
                    )
                }
            };
            ctx.enqueue(kind);
            return match flush(engine, &ctx).await {
                Ok(()) => Exit::Finished(finished),
                Err((first, e)) => store_trouble(engine, id, first, e).await,
            };
        }
        if let Err((first, e)) = flush(engine, &ctx).await {
            drop(body);
            return store_trouble(engine, id, first, e).await;
        }
        if signal.woken.load(Ordering::SeqCst) {
            continue;
        }
        if ctx.is_replaying() {
            drop(body);
            let message = format!(
                "non-deterministic workflow: replay is stuck; the journal records {} next, but \
                 the workflow code waits for something else (did the code change, or does it \
                 await something other than steps, `sleep` and `now`?)",
                ctx.describe_replay_position()
            );
            return fail(engine, &ctx, Failure::Nondeterminism(message)).await;
        }
        if let Some(wake_at) = ctx.only_waiting_until()
            && Timestamp::now().until(wake_at) >= engine.config.suspend_after
        {
            drop(body);
            tracing::debug!(%wake_at, "run sleeps; unloading it");
            return Exit::Release(Some(wake_at));
        }
        tokio::select! {
            biased;
            () = live.abandon.cancelled() => {
                tracing::warn!("this worker lost the run's lease; stopping it");
                return Exit::Gone;
            }
            () = live.cancel.cancelled() => {
                drop(body);
                return cancelled(engine, &ctx).await;
            }
            () = engine.shutdown.cancelled() => {
                drop(body);
                return shut_down(engine, &ctx).await;
            }
            () = signal.wait() => {}
        }
    }
}

/// Records the run's cancellation.
async fn cancelled(engine: &Arc<Inner>, ctx: &RunContext) -> Exit {
    tracing::info!("run cancelled");
    ctx.enqueue(EventKind::RunCancelled);
    match flush(engine, ctx).await {
        Ok(()) => Exit::Finished(Finished::Cancelled),
        Err((first, e)) => store_trouble(engine, ctx.run_id, first, e).await,
    }
}

/// Records what the run did so far and gives it up, for another worker to
/// take at once.
async fn shut_down(engine: &Arc<Inner>, ctx: &RunContext) -> Exit {
    tracing::debug!("engine shutting down; releasing the run");
    match flush(engine, ctx).await {
        Ok(()) => Exit::Release(None),
        Err((first, e)) => store_trouble(engine, ctx.run_id, first, e).await,
    }
}

/// Ends the run with a failure the engine detected.
async fn fail(engine: &Arc<Inner>, ctx: &RunContext, failure: Failure) -> Exit {
    let (Failure::Nondeterminism(message) | Failure::Journal(message) | Failure::Invalid(message)) =
        failure;
    tracing::error!(error = %message, "run failed");
    let error = ErrorRecord::fatal(message);
    ctx.enqueue(EventKind::RunFailed {
        error: error.clone(),
    });
    match flush(engine, ctx).await {
        Ok(()) => Exit::Finished(Finished::Failed(error)),
        Err((first, e)) => store_trouble(engine, ctx.run_id, first, e).await,
    }
}

/// Reacts to a store error while appending at `first`.
async fn store_trouble(engine: &Arc<Inner>, id: RunId, first: u64, error: StoreError) -> Exit {
    match error {
        StoreError::CancelRequested(_) => {
            tracing::info!("run cancelled");
            let events = [NewEvent::now(EventKind::RunCancelled)];
            match engine
                .store
                .append(id, &engine.worker, first, &events)
                .await
            {
                Ok(()) => Exit::Finished(Finished::Cancelled),
                Err(e) => {
                    tracing::warn!(error = %e, "could not record the cancellation");
                    Exit::Gone
                }
            }
        }
        StoreError::LeaseLost(_) | StoreError::Conflict { .. } | StoreError::Finished { .. } => {
            tracing::warn!(%error, "another worker took over the run; letting it go");
            Exit::Gone
        }
        error => {
            tracing::warn!(%error, "store error; the run will be retried");
            Exit::Release(Some(Timestamp::now() + engine.config.poll_interval))
        }
    }
}
