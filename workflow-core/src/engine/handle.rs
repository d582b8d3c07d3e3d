//! [`RunHandle`]: a typed handle to one run.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use super::{Engine, Finished};
use crate::error::{Error, Result};
use crate::ids::RunId;
use crate::journal::{ErrorRecord, Event, RunRecord, RunStatus};
use crate::store::CancelOutcome;

/// A handle to one run, typed with its workflow's output.
///
/// Returned by [`Engine::start`]; also made from a stored id with
/// [`Engine::handle`]. The handle holds no resources: dropping it does not
/// affect the run.
pub struct RunHandle<O = serde_json::Value> {
    engine: Engine,
    id: RunId,
    _output: PhantomData<fn() -> O>,
}

impl<O> Clone for RunHandle<O> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            id: self.id,
            _output: PhantomData,
        }
    }
}

impl<O> fmt::Debug for RunHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunHandle").field("id", &self.id).finish()
    }
}

impl<O> RunHandle<O> {
    pub(super) fn new(engine: Engine, id: RunId) -> Self {
        Self {
            engine,
            id,
            _output: PhantomData,
        }
    }

    /// The run's id.
    #[must_use]
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The run's current status.
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`] for an unknown id, [`Error::Store`] when the
    /// store fails.
    pub async fn status(&self) -> Result<RunStatus> {
        Ok(self.engine.run(self.id).await?.status)
    }

    /// The run's record (status, result or error, timing).
    ///
    /// # Errors
    ///
    /// As [`status`](Self::status).
    pub async fn record(&self) -> Result<RunRecord> {
        self.engine.run(self.id).await
    }

    /// The run's journal.
    ///
    /// # Errors
    ///
    /// As [`Engine::journal`].
    pub async fn journal(&self) -> Result<Vec<Event>> {
        self.engine.journal(self.id).await
    }

    /// Cancels the run; see [`Engine::cancel`].
    ///
    /// # Errors
    ///
    /// As [`Engine::cancel`].
    pub async fn cancel(&self) -> Result<CancelOutcome> {
        self.engine.cancel(self.id).await
    }
}

impl<O: DeserializeOwned> RunHandle<O> {
    /// Waits for the run to end and returns its result.
    ///
    /// # Errors
    ///
    /// [`Error::RunFailed`] with the recorded error when the workflow failed,
    /// [`Error::RunCancelled`] when it was cancelled, [`Error::Serialization`]
    /// when the stored result does not decode as `O`, and
    /// [`Error::RunNotFound`] / [`Error::Store`] as for
    /// [`status`](Self::status).
    pub async fn result(&self) -> Result<O> {
        let inner = self.engine.inner();
        /// Drops this call's waiter entry however the call ends.
        struct Prune<'a>(&'a super::Inner, RunId);
        impl Drop for Prune<'_> {
            fn drop(&mut self) {
                self.0.prune_waiters(self.1);
            }
        }
        let _prune = Prune(inner, self.id);
        loop {
            let finished = inner.watch(self.id);
            // A run this engine executes reports its end directly; anything
            // else is read from the store (and polled, for runs that other
            // processes execute).
            if !inner.is_live(self.id) {
                let record = self.engine.run(self.id).await?;
                let outcome = match record.status {
                    RunStatus::Completed => {
                        Some(Finished::Completed(record.output.ok_or_else(|| {
                            Error::Store(crate::StoreError::Corrupt {
                                run_id: self.id,
                                what: "run output".into(),
                                reason: "a completed run has no output".into(),
                            })
                        })?))
                    }
                    RunStatus::Failed => Some(Finished::Failed(
                        record
                            .error
                            .unwrap_or_else(|| ErrorRecord::new("unknown error")),
                    )),
                    RunStatus::Cancelled => Some(Finished::Cancelled),
                    _ => None,
                };
                if let Some(outcome) = outcome {
                    return self.decode(outcome);
                }
            }
            if let Ok(Ok(Some(outcome))) =
                tokio::time::timeout(inner.config.poll_interval, finished).await
            {
                return self.decode(outcome);
            }
        }
    }

    fn decode(&self, outcome: Finished) -> Result<O> {
        match outcome {
            Finished::Completed(output) => {
                serde_json::from_str(output.get()).map_err(|source| Error::Serialization {
                    action: "decode the result",
                    run_id: self.id,
                    source,
                })
            }
            Finished::Failed(error) => Err(Error::RunFailed {
                run_id: self.id,
                error,
            }),
            Finished::Cancelled => Err(Error::RunCancelled(self.id)),
        }
    }
}
