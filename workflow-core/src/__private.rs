//! Used by the code `#[workflow]` and `#[step]` generate. Not public API.
//!
//! The generated code states what it needs from the user's types as `where`
//! clauses on the traits below (`for<'__wf> User: Journaled`, ...) and proves
//! them once, at a call whose arguments carry the spans of the user's types.
//! So a type that is not serializable gives one error, under that type, with
//! the message of the trait it misses; the code that relies on the bound
//! type-checks under the assumption and adds no further errors.

use std::future::Future;

pub use futures::future::BoxFuture;
pub use inventory;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::registry::Registration;
pub use crate::step::{StepSpec, run};
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

// `do_not_recommend`: report "`User` cannot be stored ..." rather than one
// error for each missing serde trait.
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> Journaled for T {}

/// What a step may return: `Result<T, StepError>`.
#[diagnostic::on_unimplemented(
    message = "a `#[step]` must return `Result<T, StepError>`, not `{Self}`",
    label = "change this to `Result<T, StepError>`",
    note = "convert other errors with `?` (they become retryable) or `FatalError::new(..).into()`"
)]
pub trait StepOutput: Sized + Send + 'static {
    /// The success type.
    type Ok: Journaled;
    /// Into the form the runtime journals.
    fn into_step_result(self) -> Result<Self::Ok, StepError>;
    /// Back from the form the runtime journals.
    fn from_step_result(result: Result<Self::Ok, StepError>) -> Self;
}

impl<T: Journaled> StepOutput for Result<T, StepError> {
    type Ok = T;
    fn into_step_result(self) -> Result<T, StepError> {
        self
    }
    fn from_step_result(result: Result<T, StepError>) -> Self {
        result
    }
}

/// Runs a step through the runtime ([`run`]) with the step's own return type.
///
/// The future is boxed so that its type carries no bounds on the user's
/// types: the function that calls this states them in a `where` clause.
pub fn step<A, R, F, Fut>(spec: &'static StepSpec, args: A, body: F) -> BoxFuture<'static, R>
where
    A: Journaled,
    R: StepOutput,
    F: Fn(A) -> Fut + Send + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let durable = run(spec, args, move |args| {
        let body = body(args);
        async move { body.await.into_step_result() }
    });
    Box::pin(async move { R::from_step_result(durable.await) })
}

/// The error side of what a workflow may return.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned as the error of a `#[workflow]`",
    label = "the error type must convert into `StepError`",
    note = "return `Result<T, StepError>`, or implement `std::error::Error` (or \
            `From<{Self}> for StepError`) for the error type"
)]
pub trait WorkflowError: Into<StepError> {}

#[diagnostic::do_not_recommend]
impl<E: Into<StepError>> WorkflowError for E {}

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

impl<T: Journaled, E: WorkflowError> WorkflowOutput for Result<T, E> {
    type Ok = T;
    fn into_step_result(self) -> Result<T, StepError> {
        self.map_err(Into::into)
    }
}
