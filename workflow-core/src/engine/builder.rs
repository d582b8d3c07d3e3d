//! [`EngineBuilder`]: configuring an [`Engine`].

use std::sync::Arc;
use std::time::Duration;

use super::{Config, Engine};
use crate::error::{Error, Result};
use crate::registry::{Registration, Registry, Workflow};
use crate::store::Store;

/// Configures and builds an [`Engine`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use workflow_core::{Engine, MemoryStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> workflow_core::Result<()> {
/// let engine = Engine::builder()
///     .store(MemoryStore::new())
///     .concurrency(64)
///     .lease_duration(Duration::from_secs(10))
///     .build()
///     .await?;
/// # engine.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct EngineBuilder {
    store: Option<Arc<dyn Store>>,
    config: Config,
    registrations: Vec<Registration>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("store", &self.store.as_ref().map(|_| ".."))
            .field("config", &self.config)
            .finish()
    }
}

impl EngineBuilder {
    pub(super) fn new() -> Self {
        Self {
            store: None,
            config: Config::default(),
            registrations: Vec::new(),
        }
    }

    /// The store runs and journals live in. Required.
    pub fn store(mut self, store: impl Store) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// A store that is already shared (for example one opened with
    /// [`open_from_url`](crate::store::open_from_url)).
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// How many runs this engine executes at once (default 1024). Runs
    /// beyond that wait in the store.
    pub fn concurrency(mut self, runs: usize) -> Self {
        self.config.concurrency = runs;
        self
    }

    /// Whether this engine executes runs (default `true`). Without a worker
    /// it only starts, queries and cancels runs that other processes execute.
    pub fn worker(mut self, enabled: bool) -> Self {
        self.config.worker = enabled;
        self
    }

    /// How long a claim on a run lasts without renewal (default 30 s). After
    /// a worker dies, its runs are picked up by others once this passes.
    pub fn lease_duration(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How often to look for due runs when nothing signals them (default
    /// 1 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// Unload a run that waits only for timers when the next one is at least
    /// this far away (default 1 s). Unloaded runs cost a row in the store and
    /// nothing in memory; they are replayed when they wake.
    pub fn suspend_after(mut self, threshold: Duration) -> Self {
        self.config.suspend_after = threshold;
        self
    }

    /// Whether this engine claims runs of workflows it does not know (default
    /// `true`): such a run fails with an error naming the missing workflow.
    /// Turn it off when processes with different sets of workflows share a
    /// store, so that each claims only the runs it can execute.
    pub fn claim_unknown_workflows(mut self, claim: bool) -> Self {
        self.config.claim_unknown = claim;
        self
    }

    /// Registers a workflow explicitly. Workflows marked `#[workflow]` are
    /// registered automatically; this is for platforms where link-time
    /// registration is unavailable.
    pub fn register<W: Workflow>(mut self, _workflow: W) -> Self {
        self.registrations.push(Registration::of::<W>());
        self
    }

    /// Builds the engine and, unless [`worker(false)`](Self::worker), starts
    /// executing due runs.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a missing store or invalid settings, and
    /// [`Error::DuplicateWorkflow`] when two workflows share a name.
    pub async fn build(self) -> Result<Engine> {
        let store = self
            .store
            .ok_or_else(|| Error::Config("no store: call `.store(...)` on the builder".into()))?;
        let c = &self.config;
        if c.worker && c.concurrency == 0 {
            return Err(Error::Config(
                "`concurrency` must be at least 1 for a worker".into(),
            ));
        }
        if c.lease < Duration::from_millis(100) {
            return Err(Error::Config(
                "`lease_duration` must be at least 100 ms".into(),
            ));
        }
        if c.poll_interval.is_zero() {
            return Err(Error::Config(
                "`poll_interval` must be greater than zero".into(),
            ));
        }
        let mut registry = Registry::linked()?;
        for registration in self.registrations {
            registry.ensure(registration);
        }
        Ok(Engine::start_with_config(store, self.config, registry))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            concurrency: 1024,
            worker: true,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            suspend_after: Duration::from_secs(1),
            claim_unknown: true,
        }
    }
}
