//! Used by the code `#[workflow]` and `#[step]` generate. Not public API.

pub use futures::future::BoxFuture;
pub use inventory;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::registry::Registration;
pub use crate::step::{StepSpec, run as step};
use crate::step_error::StepError;

/// Values that can be journaled: arguments and results of steps and
/// workflows.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in the workflow journal",
    label = "this type must implement `serde::Serialize` and `serde::Deserialize`",
    note = "arguments and results of steps and workflows are journaled as JSON: add \
            `#[derive(serde::Serialize, serde::Deserialize)]` to the type, or use a type that has them"
)]
pub trait Journaled: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Journaled for T {}

/// Checks that `T` can be journaled (the check happens when this is named).
pub const fn assert_journaled<T: Journaled>() {}

/// What a step may return.
#[diagnostic::on_unimplemented(
    message = "a `#[step]` must return `Result<T, StepError>`, not `{Self}`",
    label = "change this to `Result<T, StepError>`",
    note = "convert other errors with `?` (they become retryable) or `FatalError::new(..).into()`"
)]
pub trait StepOutput {}

impl<T: Journaled> StepOutput for Result<T, StepError> {}

/// Checks a step's return type.
pub const fn assert_step_output<T: StepOutput>() {}

/// What a workflow may return: `Result<T, E>` with `E` convertible into a
/// [`StepError`].
#[diagnostic::on_unimplemented(
    message = "a `#[workflow]` must return `Result<T, E>` where `E: Into<StepError>`, not `{Self}`",
    label = "change this to `Result<T, StepError>`"
)]
pub trait WorkflowOutput {
    /// The success type.
    type Ok: Journaled;
    /// Converts the error side into a [`StepError`].
    fn into_step_result(self) -> Result<Self::Ok, StepError>;
}

impl<T: Journaled, E: Into<StepError>> WorkflowOutput for Result<T, E> {
    type Ok = T;
    fn into_step_result(self) -> Result<T, StepError> {
        self.map_err(Into::into)
    }
}

/// Checks a workflow's return type.
pub const fn assert_workflow_output<T: WorkflowOutput>() {}
