//! Durable workflows for async Rust.
//!
//! Mark async functions with [`#[workflow]`](macro@workflow) and
//! [`#[step]`](macro@step); start runs with [`Engine::start`]. Each run keeps
//! a journal in a [`Store`]: steps are retried and their results recorded,
//! [`sleep`] is durable, a [`FatalError`] stops retries, and a run that was
//! interrupted (by a crash, a deploy, a long sleep) resumes by replaying its
//! journal, without running finished steps again.
//!
//! ```
//! use workflow_core::{sleep, step, workflow, Engine, FatalError, MemoryStore, StepError};
//!
//! #[step]
//! async fn create_user(email: String) -> Result<u64, StepError> {
//!     if !email.contains('@') {
//!         return Err(FatalError::new("invalid email").into());
//!     }
//!     Ok(42)
//! }
//!
//! #[step(max_retries = 5)]
//! async fn send_welcome(user: u64) -> Result<(), StepError> {
//!     Ok(()) // any error returned with `?` is retried
//! }
//!
//! #[workflow]
//! async fn signup(email: String) -> Result<u64, StepError> {
//!     let user = create_user(email).await?;
//!     send_welcome(user).await?;
//!     sleep("10ms").await; // durable: survives restarts
//!     Ok(user)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> workflow_core::Result<()> {
//! let engine = Engine::builder().store(MemoryStore::new()).build().await?;
//! let run = engine.start(signup, ("ada@example.com".to_string(),)).await?; // returns at once
//! assert_eq!(run.result().await?, 42);
//! # engine.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Writing workflows
//!
//! A workflow's body is replayed from its journal after a suspension or a
//! crash, so it must take the same path every time:
//!
//! - Do I/O in steps, never in the workflow body. Read the clock with
//!   [`now`] and draw randomness with [`random`] or [`uuid()`](fn@uuid).
//! - Await only steps, [`sleep`] and other workflow code. A plain
//!   `tokio::time::sleep` or channel in the body is not journaled; during a
//!   replay the run fails with a non-determinism error rather than guess.
//! - Run steps concurrently with `futures::join!`, `try_join!` or
//!   `tokio::select!`. Create the step futures in a fixed order (as the
//!   arguments of the macro, or in sequence inside each branch); with
//!   `select!`, prefer `biased;`. Do not `tokio::spawn` steps from workflow
//!   code: a spawned task is outside the run.
//! - Changing a workflow's code while runs of it are in flight is safe as
//!   long as the order of its steps, sleeps and clock reads up to where those
//!   runs are stays the same; otherwise they fail with an error naming the
//!   recorded and the requested operation. Keep a workflow's name (and its
//!   steps' names) with `name = "..."` when renaming the functions.
//!
//! Steps run *at least once*: a step interrupted by a crash runs again. Use
//! [`StepContext::idempotency_key`] with external services.
//!
//! # Stores
//!
//! [`SqliteStore`] (feature `sqlite`, on by default) keeps everything in one
//! file and is the embedded default; [`MemoryStore`] is for tests.
//! [`store::open_from_url`] picks one from a URL such as `sqlite://app.db`.
//!
//! # Features
//!
//! - `macros` (default): `#[workflow]` and `#[step]`.
//! - `sqlite` (default): [`SqliteStore`].
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod context;
mod determinism;
mod engine;
mod error;
mod ids;
pub mod journal;
mod registry;
mod replay;
mod retry;
mod sleep;
mod step;
mod step_error;
pub mod store;
mod time;

#[doc(hidden)]
pub mod __private;

pub use determinism::{now, random, random_u64, uuid};
pub use engine::{Engine, EngineBuilder, RunHandle, StartOptions};
pub use error::{Error, Result, StoreError};
pub use ids::{ParseRunIdError, RunId, WorkerId};
pub use journal::{ErrorRecord, Event, EventKind, RunRecord, RunStatus};
pub use registry::Workflow;
pub use retry::RetryPolicy;
pub use sleep::{SleepFor, sleep, sleep_until};
pub use step::StepContext;
pub use step_error::{FatalError, RetryableError, StepError};
pub use store::{CancelOutcome, MemoryStore, Store};
#[cfg(feature = "sqlite")]
pub use store::{SqliteStore, Synchronous};
pub use time::Timestamp;

/// Marks an async function as a durable workflow.
///
/// The function becomes a value you pass to [`Engine::start`], with its
/// arguments as a tuple. Its body is the run's orchestration: it calls
/// steps, sleeps and reads the clock through [`now`]; it is replayed from the
/// journal after a suspension or a crash, so it must be deterministic: do I/O
/// in steps, not here.
///
/// Arguments must be owned and implement `Serialize` and `Deserialize`; the
/// function returns `Result<T, E>` where `T` is journaled the same way and
/// `E` converts into [`StepError`].
///
/// # Options
///
/// - `name = "..."`: the name runs are stored under (default: the function's
///   name). Keep it when renaming the function so stored runs still find it.
/// - `crate = "..."`: the path of `workflow_core` when it is renamed.
///
/// # Equivalent code
///
/// `#[workflow] async fn signup(email: String) -> Result<u64, StepError>`
/// expands to roughly:
///
/// ```text
/// #[allow(non_camel_case_types)]
/// #[derive(Clone, Copy, Debug, Default)]
/// struct signup;
///
/// impl workflow_core::Workflow for signup {
///     const NAME: &'static str = "signup";
///     type Input = (String,);
///     type Output = u64;
///     fn run((email,): (String,)) -> BoxFuture<'static, Result<u64, StepError>> {
///         Box::pin(async move { /* the body */ })
///     }
/// }
/// // plus a link-time registration under "signup"
/// ```
///
/// # Misuse
///
/// ```compile_fail
/// # use workflow_core::{workflow, StepError};
/// #[workflow]
/// fn not_async() -> Result<(), StepError> { Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use workflow_macros::workflow;

/// Marks an async function as a step: a journaled, retried unit of work.
///
/// Called inside a workflow, a step runs at most once to completion per run:
/// its result is recorded, and replays return the recorded result without
/// running it. A failing step is retried with exponential backoff (3 retries
/// by default); a [`FatalError`] is not retried. After the last attempt the
/// call returns the error to the workflow, which may handle it.
///
/// Called outside a workflow, the step is a plain async function.
///
/// Steps run *at least once*: after a crash mid-step, the step runs again. Use
/// [`StepContext::idempotency_key`] with external APIs.
///
/// # Options
///
/// - `max_retries = 5`: retries after the first attempt (default 3).
/// - `initial_backoff = "1s"`, `max_backoff = "60s"`, `backoff_factor = 2.0`,
///   `jitter = true`: the delays between attempts (see [`RetryPolicy`]).
/// - `name = "..."`: the name recorded in the journal (default: the
///   function's name).
/// - `crate = "..."`: the path of `workflow_core` when it is renamed.
///
/// # Equivalent code
///
/// `#[step] async fn create_user(email: String) -> Result<User, StepError>`
/// becomes a function returning a future that runs the body through the
/// runtime:
///
/// ```text
/// fn create_user(email: String) -> impl Future<Output = Result<User, StepError>> + Send {
///     async fn body(email: String) -> Result<User, StepError> { /* the body */ }
///     static SPEC: StepSpec = StepSpec::new("create_user");
///     workflow_core::__private::step(&SPEC, (email,), |(email,)| body(email))
/// }
/// ```
///
/// # Misuse
///
/// ```compile_fail
/// # use workflow_core::{step, StepError};
/// #[step]
/// async fn borrowed(name: &str) -> Result<(), StepError> { Ok(()) }
/// ```
#[cfg(feature = "macros")]
pub use workflow_macros::step;
