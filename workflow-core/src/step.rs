//! Steps: journaled, retried units of work, and the metadata a step can read
//! about its own execution.

use std::any::Any;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::context::{self, Failure, RunContext};
use crate::ids::RunId;
use crate::journal::{ErrorRecord, EventKind, Json, to_json};
use crate::replay::OpKind;
use crate::retry::RetryPolicy;
use crate::step_error::{FatalError, StepError};
use crate::time::Timestamp;

tokio::task_local! {
    static CURRENT_STEP: StepContext;
}

/// What a running step knows about its own execution.
///
/// Read it inside a `#[step]` with [`StepContext::current`]. Steps run *at
/// least once*: after a crash, a step that was running is run again. Pass
/// [`idempotency_key`](Self::idempotency_key) to external APIs so that they
/// can recognise the repeat.
///
/// # Examples
///
/// ```
/// use workflow_core::{step, StepContext, StepError};
///
/// #[step]
/// async fn charge(amount: u64) -> Result<String, StepError> {
///     let key = StepContext::current()
///         .map(|s| s.idempotency_key())
///         .unwrap_or_default();
///     Ok(format!("charged {amount} with key {key}"))
/// }
/// ```
#[derive(Debug, Clone)]
pub struct StepContext {
    run_id: RunId,
    step_id: u32,
    name: &'static str,
    attempt: u32,
}

impl StepContext {
    /// The context of the step running on this task, or `None` outside a
    /// step (or when the step was called outside a workflow).
    #[must_use]
    pub fn current() -> Option<StepContext> {
        CURRENT_STEP.try_with(Clone::clone).ok()
    }

    /// The run this step belongs to.
    #[must_use]
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The step's operation number in its workflow (stable across replays).
    #[must_use]
    pub fn step_id(&self) -> u32 {
        self.step_id
    }

    /// The step's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The attempt number, from 1.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A key that is the same for every attempt of this step in this run, and
    /// different for every other step: `{run_id}:{step_id}`.
    #[must_use]
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.run_id, self.step_id)
    }
}

/// A step's static description, emitted by `#[step]`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct StepSpec {
    name: &'static str,
    policy: RetryPolicy,
}

impl StepSpec {
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            policy: RetryPolicy {
                max_retries: RetryPolicy::DEFAULT_MAX_RETRIES,
                initial_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(60),
                factor: 2.0,
                jitter: true,
            },
        }
    }

    pub const fn max_retries(mut self, n: u32) -> Self {
        self.policy.max_retries = n;
        self
    }

    pub const fn initial_backoff_ms(mut self, ms: u64) -> Self {
        self.policy.initial_backoff = Duration::from_millis(ms);
        self
    }

    pub const fn max_backoff_ms(mut self, ms: u64) -> Self {
        self.policy.max_backoff = Duration::from_millis(ms);
        self
    }

    pub const fn backoff_factor(mut self, factor: f64) -> Self {
        self.policy.factor = factor;
        self
    }

    pub const fn jitter(mut self, jitter: bool) -> Self {
        self.policy.jitter = jitter;
        self
    }

    /// The step's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The step's retry policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

/// Runs a step: durably inside a workflow, as a plain call outside one.
///
/// The operation id is reserved when this is called (not when the future is
/// first polled), so that ids follow the workflow's call order.
pub fn run<A, T, F, Fut>(
    spec: &'static StepSpec,
    args: A,
    body: F,
) -> impl Future<Output = Result<T, StepError>> + Send + use<A, T, F, Fut>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    F: Fn(A) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, StepError>> + Send,
{
    let ctx = context::current();
    let op = ctx.as_ref().map(|c| c.reserve(OpKind::Step, spec.name));
    async move {
        match (ctx, op) {
            (Some(ctx), Some(Some(op))) => {
                let span = tracing::info_span!("step", run_id = %ctx.run_id, step = spec.name, op);
                durable(ctx, op, spec, args, body).instrument(span).await
            }
            (Some(_), _) => std::future::pending().await,
            (None, _) => body(args).await,
        }
    }
}

/// Stops the operation for good: the run has a fatal failure recorded.
async fn halt<T>(ctx: &RunContext, failure: Failure) -> T {
    ctx.fail(failure);
    std::future::pending().await
}

/// Sleeps until `at` as a registered timer of the run (so the run can be
/// unloaded while nothing else happens).
pub(crate) async fn wait_until(ctx: &RunContext, op: u32, at: Timestamp) {
    struct Registered<'a>(&'a RunContext, u32);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            self.0.set_wait(self.1, None);
        }
    }
    ctx.set_wait(op, Some(at));
    let _registered = Registered(ctx, op);
    tokio::time::sleep(Timestamp::now().until(at)).await;
}

/// Counts a step body as running for as long as it lives.
struct Running<'a>(&'a RunContext);

impl<'a> Running<'a> {
    fn new(ctx: &'a RunContext) -> Self {
        ctx.step_running(1);
        Self(ctx)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.step_running(-1);
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

fn decode<T: DeserializeOwned>(json: &Json) -> Result<T, serde_json::Error> {
    serde_json::from_str(json.get())
}

async fn durable<A, T, F, Fut>(
    ctx: Arc<RunContext>,
    op: u32,
    spec: &'static StepSpec,
    args: A,
    body: F,
) -> Result<T, StepError>
where
    A: Serialize + DeserializeOwned + Send + 'static,
    T: Serialize + DeserializeOwned + Send + 'static,
    F: Fn(A) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, StepError>> + Send,
{
    let name = spec.name;
    let policy = spec.policy;
    let mut attempt = 0;
    let mut interrupted = false;
    let mut retry_at = None;

    // Replay what the journal recorded for this step, in journal order.
    while let Some(event) = poll_fn(|cx| ctx.poll_take(op, cx)).await {
        match event {
            EventKind::StepStarted { attempt: a, .. } => {
                attempt = a;
                interrupted = true;
                retry_at = None;
            }
            EventKind::StepRetrying {
                attempt: a,
                retry_at: at,
                ..
            } => {
                attempt = a;
                interrupted = false;
                retry_at = Some(at);
            }
            EventKind::StepCompleted { output, .. } => {
                return match decode(&output) {
                    Ok(value) => Ok(value),
                    Err(e) => {
                        let message = format!(
                            "the recorded result of step `{name}` (operation #{op}) no longer \
                             decodes as the step's return type: {e}"
                        );
                        halt(&ctx, Failure::Journal(message)).await
                    }
                };
            }
            EventKind::StepFailed {
                attempts, error, ..
            } => {
                return Err(StepError::from_step_record(&error, name, attempts));
            }
            other => {
                let message = format!(
                    "journal event `{}` for operation #{op} does not belong to step `{name}`",
                    other.name()
                );
                return halt(&ctx, Failure::Journal(message)).await;
            }
        }
    }

    // Live from here on.
    if interrupted {
        tracing::warn!(
            attempt,
            "the process stopped while this step ran; it runs again"
        );
        if attempt >= policy.max_attempts() {
            let error = ErrorRecord::fatal(format!(
                "the process stopped while the step was running, in each of its {attempt} \
                 attempts; it is not tried again (does the step crash or abort the process?)"
            ));
            ctx.enqueue(EventKind::StepFailed {
                op,
                attempts: attempt,
                error: error.clone(),
            });
            return Err(StepError::from_step_record(&error, name, attempt));
        }
    }
    if let Some(at) = retry_at {
        wait_until(&ctx, op, at).await;
    }

    let input = match to_json(&args) {
        Ok(json) => json,
        Err(e) => {
            let error: StepError =
                FatalError::with_source("the step's arguments could not be serialized", e).into();
            attempt += 1;
            let record = error.to_record();
            ctx.enqueue(EventKind::StepStarted {
                op,
                step: name.to_owned(),
                attempt,
                input: None,
            });
            ctx.enqueue(EventKind::StepFailed {
                op,
                attempts: attempt,
                error: record.clone(),
            });
            return Err(StepError::from_step_record(&record, name, attempt));
        }
    };
    let mut args = Some(args);
    loop {
        attempt += 1;
        let first = attempt == 1;
        let seq = ctx.enqueue(EventKind::StepStarted {
            op,
            step: name.to_owned(),
            attempt,
            input: first.then(|| input.clone()),
        });
        poll_fn(|cx| ctx.poll_durable(seq, cx)).await;

        let this_args = match args.take() {
            Some(a) => a,
            None => match decode(&input) {
                Ok(a) => a,
                Err(e) => {
                    let message =
                        format!("the arguments of step `{name}` do not decode again: {e}");
                    return halt(&ctx, Failure::Journal(message)).await;
                }
            },
        };
        let meta = StepContext {
            run_id: ctx.run_id,
            step_id: op,
            name,
            attempt,
        };
        let result = {
            let _running = Running::new(&ctx);
            let span = tracing::info_span!("attempt", attempt);
            let attempt = CURRENT_STEP.scope(meta, context::scope(None, body(this_args)));
            // A panicking step is a failed attempt, not a dead worker.
            match AssertUnwindSafe(attempt)
                .catch_unwind()
                .instrument(span)
                .await
            {
                Ok(result) => result,
                Err(panic) => Err(StepError::msg(format!(
                    "the step panicked: {}",
                    panic_message(&*panic)
                ))),
            }
        };

        let error = match result.and_then(|value| {
            to_json(&value).map_err(|e| {
                FatalError::with_source("the step's result could not be serialized", e).into()
            })
        }) {
            Ok(output) => {
                // Hand the workflow the value as the journal holds it, so that
                // a replay sees exactly the same thing.
                let value = decode(&output);
                ctx.enqueue(EventKind::StepCompleted { op, output });
                return match value {
                    Ok(value) => Ok(value),
                    Err(e) => {
                        let message = format!(
                            "the result of step `{name}` does not decode from its own JSON: {e}"
                        );
                        halt(&ctx, Failure::Journal(message)).await
                    }
                };
            }
            Err(error) => error,
        };

        let record = error.to_record();
        if error.is_fatal() || attempt >= policy.max_attempts() {
            tracing::warn!(attempt, error = %record.message, "step failed");
            ctx.enqueue(EventKind::StepFailed {
                op,
                attempts: attempt,
                error: record.clone(),
            });
            return Err(StepError::from_step_record(&record, name, attempt));
        }
        let delay = policy.delay(attempt, error.retry_after());
        let at = Timestamp::now() + delay;
        tracing::info!(attempt, error = %record.message, ?delay, "step failed; retrying");
        ctx.enqueue(EventKind::StepRetrying {
            op,
            attempt,
            error: record,
            retry_at: at,
        });
        wait_until(&ctx, op, at).await;
    }
}
