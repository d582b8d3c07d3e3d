//! Shared fixtures for the workspace-level tests: engines tuned for fast
//! tests, and counters of side effects that live outside the journal.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use workflow_core::{Engine, EngineBuilder, MemoryStore, SqliteStore, Store};

static CALLS: Mutex<BTreeMap<String, u32>> = Mutex::new(BTreeMap::new());

/// Counts one execution of `key` (a side effect outside the journal) and
/// returns how many there have been, this one included.
pub fn bump(key: &str) -> u32 {
    let mut calls = CALLS.lock().unwrap_or_else(|p| p.into_inner());
    let n = calls.entry(key.to_owned()).or_default();
    *n += 1;
    *n
}

/// How many times `key` was executed.
pub fn count(key: &str) -> u32 {
    CALLS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(key)
        .copied()
        .unwrap_or(0)
}

/// An engine builder with short timings, so that suspension, leases and
/// polling happen within a test's patience.
pub fn fast(builder: EngineBuilder) -> EngineBuilder {
    builder
        .lease_duration(Duration::from_secs(2))
        .poll_interval(Duration::from_millis(50))
        .suspend_after(Duration::from_millis(100))
}

/// A fast engine on a store.
pub async fn engine_on(store: impl Store) -> Engine {
    fast(Engine::builder().store(store))
        .build()
        .await
        .expect("engine builds")
}

/// A fast engine on a fresh in-memory store.
pub async fn memory_engine() -> Engine {
    engine_on(MemoryStore::new()).await
}

/// A fast engine on a SQLite file in `dir`.
pub async fn sqlite_engine(dir: &Path) -> Engine {
    let store = SqliteStore::open(dir.join("workflow.db"))
        .await
        .expect("sqlite opens");
    engine_on(store).await
}
