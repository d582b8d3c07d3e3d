//! The journal: each run's append-only, densely numbered event log, and the
//! run status projected from it.
//!
//! The journal is the single source of truth. Stores keep a projection of it
//! per run ([`RunRecord`]) and update it in the same transaction as each
//! append, using [`Projection`] so that every store derives it the same way.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ids::{RunId, WorkerId};
use crate::time::Timestamp;

/// A JSON document as stored in the journal (arguments, results).
pub type Json = Box<RawValue>;

/// One event of a run's journal, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Position in the run's journal; the first event (`run_created`) is 0.
    pub seq: u64,
    /// When the event was recorded.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// An event to append, before the store numbers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewEvent {
    /// When the event was recorded.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

impl NewEvent {
    /// An event recorded now.
    #[must_use]
    pub fn now(kind: EventKind) -> Self {
        Self {
            at: Timestamp::now(),
            kind,
        }
    }
}

/// What a journal event records.
///
/// Operations of the workflow (steps, sleeps, recorded times) carry `op`, the
/// operation's position in the workflow's call order, which is how replay
/// matches the journal to the code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The run was created with its workflow's name and input.
    RunCreated {
        /// The registered workflow name.
        workflow: String,
        /// The workflow's arguments.
        input: Json,
    },
    /// A worker began executing the run for the first time.
    RunStarted {
        /// The worker that started it.
        worker: WorkerId,
    },
    /// The workflow returned successfully.
    RunCompleted {
        /// The workflow's result.
        output: Json,
    },
    /// The workflow returned an error, or the engine could not run it.
    RunFailed {
        /// Why.
        error: ErrorRecord,
    },
    /// The run was cancelled.
    RunCancelled,
    /// An attempt of a step began.
    StepStarted {
        /// The operation number.
        op: u32,
        /// The step's name.
        step: String,
        /// The attempt number, from 1.
        attempt: u32,
        /// The step's arguments (on the first attempt only).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        input: Option<Json>,
    },
    /// An attempt failed and the step will be tried again at `retry_at`.
    StepRetrying {
        /// The operation number.
        op: u32,
        /// The attempt that failed.
        attempt: u32,
        /// The attempt's error.
        error: ErrorRecord,
        /// When the next attempt may start.
        retry_at: Timestamp,
    },
    /// The step succeeded.
    StepCompleted {
        /// The operation number.
        op: u32,
        /// The step's result.
        output: Json,
    },
    /// The step failed for good: a fatal error, or its attempts are used up.
    StepFailed {
        /// The operation number.
        op: u32,
        /// How many attempts were made.
        attempts: u32,
        /// The last error.
        error: ErrorRecord,
    },
    /// A durable sleep began.
    WaitCreated {
        /// The operation number.
        op: u32,
        /// When the sleep ends.
        wake_at: Timestamp,
    },
    /// A durable sleep ended.
    WaitCompleted {
        /// The operation number.
        op: u32,
    },
    /// The workflow read the clock through [`now`](crate::now).
    TimeRecorded {
        /// The operation number.
        op: u32,
        /// The time it read.
        time: Timestamp,
    },
}

impl EventKind {
    /// The event's type as a short snake_case name (`step_completed`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::RunCreated { .. } => "run_created",
            EventKind::RunStarted { .. } => "run_started",
            EventKind::RunCompleted { .. } => "run_completed",
            EventKind::RunFailed { .. } => "run_failed",
            EventKind::RunCancelled => "run_cancelled",
            EventKind::StepStarted { .. } => "step_started",
            EventKind::StepRetrying { .. } => "step_retrying",
            EventKind::StepCompleted { .. } => "step_completed",
            EventKind::StepFailed { .. } => "step_failed",
            EventKind::WaitCreated { .. } => "wait_created",
            EventKind::WaitCompleted { .. } => "wait_completed",
            EventKind::TimeRecorded { .. } => "time_recorded",
        }
    }

    /// The operation this event belongs to, `None` for run-level events.
    #[must_use]
    pub fn op(&self) -> Option<u32> {
        match self {
            EventKind::StepStarted { op, .. }
            | EventKind::StepRetrying { op, .. }
            | EventKind::StepCompleted { op, .. }
            | EventKind::StepFailed { op, .. }
            | EventKind::WaitCreated { op, .. }
            | EventKind::WaitCompleted { op }
            | EventKind::TimeRecorded { op, .. } => Some(*op),
            _ => None,
        }
    }

    /// Whether this event ends the run.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::RunCompleted { .. } | EventKind::RunFailed { .. } | EventKind::RunCancelled
        )
    }
}

/// An error as recorded in the journal: its message and whether it was fatal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The error's message, with its causes.
    pub message: String,
    /// Whether the error stopped retries.
    #[serde(default)]
    pub fatal: bool,
    /// The failed step, when a step's failure failed the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The failed step's attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl ErrorRecord {
    /// A record with only a message, not fatal.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            fatal: false,
            step: None,
            attempts: None,
        }
    }

    /// A fatal record with a message.
    pub fn fatal(message: impl Into<String>) -> Self {
        Self {
            fatal: true,
            ..Self::new(message)
        }
    }
}

impl fmt::Display for ErrorRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.step, self.attempts) {
            (Some(step), Some(n)) => write!(f, "step `{step}` failed after {n} attempt(s): ")?,
            (Some(step), None) => write!(f, "step `{step}` failed: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

/// Where a run is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunStatus {
    /// Recorded, not yet picked up by a worker.
    Pending,
    /// Owned by a worker that is executing it.
    Running,
    /// Waiting for a timer (a sleep or a retry delay); no worker holds it.
    Sleeping,
    /// The workflow returned a result.
    Completed,
    /// The workflow returned an error or could not be run.
    Failed,
    /// The run was cancelled.
    Cancelled,
}

impl RunStatus {
    /// Whether the run has ended.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// The status as stored (`pending`, `running`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Sleeping => "sleeping",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when a stored status is not one of [`RunStatus`]'s.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown run status `{0}`")]
pub struct ParseStatusError(String);

impl FromStr for RunStatus {
    type Err = ParseStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => RunStatus::Pending,
            "running" => RunStatus::Running,
            "sleeping" => RunStatus::Sleeping,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            other => return Err(ParseStatusError(other.to_owned())),
        })
    }
}

/// A run as a store keeps it: the projection of its journal plus scheduling
/// fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's id.
    pub id: RunId,
    /// The registered workflow name.
    pub workflow: String,
    /// The current status.
    pub status: RunStatus,
    /// The workflow's arguments.
    pub input: Json,
    /// The result, once completed.
    pub output: Option<Json>,
    /// The error, once failed.
    pub error: Option<ErrorRecord>,
    /// The caller's idempotency key, if one was given.
    pub idempotency_key: Option<String>,
    /// The worker that holds the run's lease.
    pub owner: Option<WorkerId>,
    /// Until when the owner's lease is valid.
    pub lease_until: Option<Timestamp>,
    /// When a sleeping run is due to wake.
    pub wake_at: Option<Timestamp>,
    /// The sequence number the next appended event will get.
    pub next_seq: u64,
    /// Whether cancellation was requested while a worker owned the run.
    pub cancel_requested: bool,
    /// When the run was created.
    pub created_at: Timestamp,
    /// When the run last changed.
    pub updated_at: Timestamp,
}

impl RunRecord {
    /// A fresh record for a run created now (before any store holds it).
    #[must_use]
    pub fn new(id: RunId, workflow: String, input: Json, created_at: Timestamp) -> Self {
        Self {
            id,
            workflow,
            status: RunStatus::Pending,
            input,
            output: None,
            error: None,
            idempotency_key: None,
            owner: None,
            lease_until: None,
            wake_at: None,
            next_seq: 1,
            cancel_requested: false,
            created_at,
            updated_at: created_at,
        }
    }

    /// When a worker may claim the run: `None` for finished runs.
    #[must_use]
    pub fn due_at(&self) -> Option<Timestamp> {
        if self.status.is_terminal() {
            return None;
        }
        match (&self.owner, self.lease_until, self.wake_at) {
            (Some(_), Some(lease), _) => Some(lease),
            (_, _, Some(wake)) => Some(wake),
            _ => Some(self.created_at),
        }
    }
}

/// The change a batch of appended events makes to a [`RunRecord`].
///
/// Every store applies this in the transaction that appends the events.
#[derive(Debug, Default)]
pub struct Projection {
    /// The new status, if the batch changes it.
    pub status: Option<RunStatus>,
    /// The result, if the batch completes the run.
    pub output: Option<Json>,
    /// The error, if the batch fails the run.
    pub error: Option<ErrorRecord>,
}

impl Projection {
    /// The projection of appending `events`.
    #[must_use]
    pub fn of(events: &[NewEvent]) -> Self {
        let mut p = Projection::default();
        for event in events {
            match &event.kind {
                EventKind::RunStarted { .. } => p.status = Some(RunStatus::Running),
                EventKind::RunCompleted { output } => {
                    p.status = Some(RunStatus::Completed);
                    p.output = Some(output.clone());
                }
                EventKind::RunFailed { error } => {
                    p.status = Some(RunStatus::Failed);
                    p.error = Some(error.clone());
                }
                EventKind::RunCancelled => p.status = Some(RunStatus::Cancelled),
                _ => {}
            }
        }
        p
    }

    /// Whether the batch ends the run.
    #[must_use]
    pub fn is_terminal(&self) -> bool {
        self.status.is_some_and(RunStatus::is_terminal)
    }

    /// Applies the projection to a record (for in-memory stores).
    pub fn apply(self, record: &mut RunRecord, at: Timestamp) {
        if let Some(status) = self.status {
            record.status = status;
            if status.is_terminal() {
                record.owner = None;
                record.lease_until = None;
                record.wake_at = None;
            }
        }
        if self.output.is_some() {
            record.output = self.output;
        }
        if self.error.is_some() {
            record.error = self.error;
        }
        record.updated_at = at;
    }
}

/// Reads a field that is present as `Some`, even when it is JSON `null`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Json>, D::Error> {
    Json::deserialize(deserializer).map(Some)
}

/// Serializes a value to journal JSON.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Json, serde_json::Error> {
    serde_json::value::to_raw_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_json() {
        let kind = EventKind::StepStarted {
            op: 3,
            step: "send".into(),
            attempt: 2,
            input: Some(to_json(&("a@b.c",)).unwrap()),
        };
        let text = serde_json::to_string(&kind).unwrap();
        assert!(text.starts_with(r#"{"step_started":{"op":3"#), "{text}");
        let back: EventKind = serde_json::from_str(&text).unwrap();
        assert_eq!(back.op(), Some(3));
        assert_eq!(back.name(), "step_started");
    }

    #[test]
    fn a_null_input_stays_present() {
        let kind = EventKind::StepStarted {
            op: 0,
            step: "s".into(),
            attempt: 1,
            input: Some(to_json(&()).unwrap()),
        };
        let back: EventKind = serde_json::from_str(&serde_json::to_string(&kind).unwrap()).unwrap();
        let EventKind::StepStarted { input, .. } = back else {
            panic!()
        };
        assert_eq!(input.unwrap().get(), "null");
        let absent: EventKind =
            serde_json::from_str(r#"{"step_started":{"op":0,"step":"s","attempt":2}}"#).unwrap();
        assert!(matches!(absent, EventKind::StepStarted { input: None, .. }));
    }

    #[test]
    fn projection_follows_terminal_events() {
        let events = [
            NewEvent::now(EventKind::RunStarted {
                worker: WorkerId::from("w".to_owned()),
            }),
            NewEvent::now(EventKind::RunFailed {
                error: ErrorRecord::new("boom"),
            }),
        ];
        let p = Projection::of(&events);
        assert_eq!(p.status, Some(RunStatus::Failed));
        assert!(p.is_terminal());
        assert_eq!(p.error.unwrap().message, "boom");
    }

    #[test]
    fn statuses_parse_back() {
        for s in [
            RunStatus::Pending,
            RunStatus::Running,
            RunStatus::Sleeping,
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), s);
        }
        assert!("sleepy".parse::<RunStatus>().is_err());
    }
}
