//! Workflow registration: how a worker finds a run's code by name.
//!
//! `#[workflow]` registers every workflow at link time (through
//! [`inventory`]), so a process that links the code can resume its runs after
//! a restart without any call to remember.

use std::collections::HashMap;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::Error;
use crate::journal::{Json, to_json};
use crate::step_error::{FatalError, StepError};

/// A durable workflow: what `#[workflow]` implements for the type it
/// generates.
///
/// You rarely implement this by hand; it is what [`Engine::start`] takes.
///
/// [`Engine::start`]: crate::Engine::start
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a workflow",
    label = "expected a function marked `#[workflow]`",
    note = "mark the async fn with `#[workflow]` to make it startable"
)]
pub trait Workflow: Copy + Send + Sync + 'static {
    /// The name the run is stored under; stable across renames of the
    /// function when set with `#[workflow(name = "...")]`.
    const NAME: &'static str;
    /// The arguments, as a tuple.
    type Input: Serialize + DeserializeOwned + Send + 'static;
    /// The result.
    type Output: Serialize + DeserializeOwned + Send + 'static;
    /// Runs the workflow's body.
    fn run(input: Self::Input) -> BoxFuture<'static, Result<Self::Output, StepError>>;
}

/// A running workflow body with its input and output as JSON.
pub(crate) type ErasedRun = BoxFuture<'static, Result<Json, StepError>>;

/// A registered workflow, as collected from `#[workflow]` items.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    pub(crate) name: &'static str,
    pub(crate) start: fn(&RawValue) -> Result<ErasedRun, serde_json::Error>,
}

impl Registration {
    /// The registration of `W`.
    pub const fn of<W: Workflow>() -> Self {
        Self {
            name: W::NAME,
            start: start_erased::<W>,
        }
    }
}

inventory::collect!(Registration);

fn start_erased<W: Workflow>(input: &RawValue) -> Result<ErasedRun, serde_json::Error> {
    let input: W::Input = serde_json::from_str(input.get())?;
    Ok(Box::pin(async move {
        let output = W::run(input).await?;
        to_json(&output).map_err(|e| {
            FatalError::with_source("the workflow's result could not be serialized", e).into()
        })
    }))
}

/// The workflows this process can run, by name.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_name: HashMap<&'static str, Registration>,
}

impl Registry {
    /// Every workflow linked into this binary.
    pub(crate) fn linked() -> Result<Self, Error> {
        let mut registry = Registry::default();
        for registration in inventory::iter::<Registration> {
            registry.insert(*registration)?;
        }
        Ok(registry)
    }

    /// Adds a registration; a second workflow under one name is an error.
    pub(crate) fn insert(&mut self, registration: Registration) -> Result<(), Error> {
        if self
            .by_name
            .insert(registration.name, registration)
            .is_some()
        {
            return Err(Error::DuplicateWorkflow {
                name: registration.name.to_owned(),
            });
        }
        Ok(())
    }

    /// Adds a registration unless its name is known already.
    pub(crate) fn ensure(&mut self, registration: Registration) {
        self.by_name
            .entry(registration.name)
            .or_insert(registration);
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.by_name.keys().map(|name| (*name).to_owned()).collect()
    }

    pub(crate) fn get(&self, name: &str) -> Option<Registration> {
        self.by_name.get(name).copied()
    }
}
