//! The view of a run that `GET /api/runs/{id}` returns: status, steps (name,
//! attempts, state, timing) and result or error, derived from the journal.

use serde::Serialize;
use serde_json::Value;
use workflow_core::{Event, EventKind, RunRecord};

/// A run, for the page.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// The run id.
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// `pending`, `running`, `sleeping`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// When the run was created (ms since the Unix epoch).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Steps and sleeps, in the order they started.
    pub steps: Vec<StepView>,
    /// The workflow's result, once completed.
    pub result: Option<Value>,
    /// The error, once failed.
    pub error: Option<String>,
}

/// One step or sleep of a run.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    /// The operation's position in the workflow.
    pub op: u32,
    /// `step` or `sleep`.
    pub kind: &'static str,
    /// The step's name (`sleep` for sleeps).
    pub name: String,
    /// `running`, `retrying`, `completed`, `failed`, `sleeping` or `woke`.
    pub state: &'static str,
    /// Attempts made so far.
    pub attempts: u32,
    /// When it started.
    pub started_at: i64,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// The last attempt's error, if it failed.
    pub last_error: Option<String>,
    /// When a retry or a sleep is due.
    pub wake_at: Option<i64>,
    /// The attempts that failed and were retried, oldest first.
    pub failed_attempts: Vec<FailedAttempt>,
}

/// An attempt of a step that failed and was retried.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedAttempt {
    /// The attempt number.
    pub attempt: u32,
    /// Its error.
    pub error: String,
    /// When it failed.
    pub at: i64,
}

impl RunView {
    /// Builds the view from a run's record and journal.
    pub fn new(record: &RunRecord, journal: &[Event]) -> Self {
        let mut steps: Vec<StepView> = Vec::new();
        for event in journal {
            let at = event.at.as_millis();
            let Some(op) = event.kind.op() else { continue };
            let index = steps.iter().position(|s| s.op == op);
            match (&event.kind, index) {
                (EventKind::StepStarted { step, attempt, .. }, None) => steps.push(StepView {
                    op,
                    kind: "step",
                    name: step.clone(),
                    state: "running",
                    attempts: *attempt,
                    started_at: at,
                    finished_at: None,
                    last_error: None,
                    wake_at: None,
                    failed_attempts: Vec::new(),
                }),
                (EventKind::WaitCreated { wake_at, .. }, None) => steps.push(StepView {
                    op,
                    kind: "sleep",
                    name: "sleep".into(),
                    state: "sleeping",
                    attempts: 0,
                    started_at: at,
                    finished_at: None,
                    last_error: None,
                    wake_at: Some(wake_at.as_millis()),
                    failed_attempts: Vec::new(),
                }),
                (kind, Some(i)) => {
                    let s = &mut steps[i];
                    match kind {
                        EventKind::StepStarted { attempt, .. } => {
                            s.attempts = *attempt;
                            s.state = "running";
                            s.wake_at = None;
                        }
                        EventKind::StepRetrying {
                            attempt,
                            error,
                            retry_at,
                            ..
                        } => {
                            s.failed_attempts.push(FailedAttempt {
                                attempt: *attempt,
                                error: error.message.clone(),
                                at,
                            });
                            s.state = "retrying";
                            s.last_error = Some(error.message.clone());
                            s.wake_at = Some(retry_at.as_millis());
                        }
                        EventKind::StepCompleted { .. } => {
                            s.state = "completed";
                            s.finished_at = Some(at);
                        }
                        EventKind::StepFailed {
                            attempts, error, ..
                        } => {
                            s.state = "failed";
                            s.attempts = *attempts;
                            s.last_error = Some(error.message.clone());
                            s.finished_at = Some(at);
                        }
                        EventKind::WaitCompleted { .. } => {
                            s.state = "woke";
                            s.finished_at = Some(at);
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Self {
            run_id: record.id.to_string(),
            workflow: record.workflow.clone(),
            status: record.status.to_string(),
            created_at: record.created_at.as_millis(),
            updated_at: record.updated_at.as_millis(),
            steps,
            result: record
                .output
                .as_ref()
                .and_then(|o| serde_json::from_str(o.get()).ok()),
            error: record.error.as_ref().map(ToString::to_string),
        }
    }
}
