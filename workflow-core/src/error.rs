//! The crate's error types: [`Error`] for the engine API and [`StoreError`]
//! for storage backends.

use crate::ids::RunId;
use crate::journal::{ErrorRecord, RunStatus};

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the engine API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed.
    #[error("workflow store error")]
    Store(#[from] StoreError),

    /// No workflow with this name is registered in this process.
    #[error(
        "no workflow named `{name}` is registered in this process; check that the crate \
         defining it is linked, or keep its old name with `#[workflow(name = \"{name}\")]`"
    )]
    UnknownWorkflow {
        /// The name that was asked for.
        name: String,
    },

    /// Two workflows were registered under one name.
    #[error(
        "two workflows are registered as `{name}`; give one of them another name with \
         `#[workflow(name = \"...\")]`"
    )]
    DuplicateWorkflow {
        /// The name in question.
        name: String,
    },

    /// No run with this id exists.
    #[error("no run with id {0}")]
    RunNotFound(RunId),

    /// The run failed; the error says why.
    #[error("run {run_id} failed: {error}")]
    RunFailed {
        /// The run.
        run_id: RunId,
        /// The recorded error.
        error: ErrorRecord,
    },

    /// The run was cancelled before it finished.
    #[error("run {0} was cancelled")]
    RunCancelled(RunId),

    /// The run's arguments or result could not be converted to or from JSON.
    #[error("could not {action} for run {run_id}")]
    Serialization {
        /// What was being done.
        action: &'static str,
        /// The run.
        run_id: RunId,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },

    /// An idempotency key was reused for a different workflow.
    #[error(
        "idempotency key `{key}` already started a run of workflow `{existing}`, not `{requested}`"
    )]
    KeyConflict {
        /// The key.
        key: String,
        /// The workflow of the existing run.
        existing: String,
        /// The workflow that was asked for.
        requested: String,
    },

    /// The engine's configuration is invalid.
    #[error("invalid engine configuration: {0}")]
    Config(String),

    /// The engine is shutting down and takes no new runs.
    #[error("the engine is shut down")]
    ShutDown,
}

/// Errors of a [`Store`](crate::Store).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No run with this id exists.
    #[error("no run with id {0}")]
    NotFound(RunId),

    /// Another append extended the journal first.
    #[error("journal of run {run_id} is at sequence {actual}, not {expected}")]
    Conflict {
        /// The run.
        run_id: RunId,
        /// The sequence the caller expected.
        expected: u64,
        /// The sequence the store holds.
        actual: u64,
    },

    /// The caller no longer owns the run's lease.
    #[error("this worker no longer holds the lease on run {0}")]
    LeaseLost(RunId),

    /// Cancellation was requested; only a cancellation may be appended.
    #[error("run {0} is being cancelled")]
    CancelRequested(RunId),

    /// The run has already ended.
    #[error("run {run_id} has already ended ({status})")]
    Finished {
        /// The run.
        run_id: RunId,
        /// Its final status.
        status: RunStatus,
    },

    /// A stored row could not be read back.
    #[error("corrupt {what} for run {run_id}: {reason}")]
    Corrupt {
        /// The run.
        run_id: RunId,
        /// Which row (for example `journal event 5`).
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The backend (database, file, connection) failed.
    #[error("store backend error: {message}")]
    Backend {
        /// What was being done.
        message: String,
        /// The backend's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// A backend error with a message and a cause.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}
