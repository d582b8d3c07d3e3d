//! Engine benchmarks: latency, throughput, resume cost and memory.
//!
//! ```text
//! cargo bench -p workflow-core --bench engine
//! ```
//!
//! Prints, for a workflow of three no-op steps, the sequential
//! start-and-await latency and the concurrent throughput on `SqliteStore`
//! (a file on disk, WAL) and on `MemoryStore` (the baseline, same process);
//! the time to resume a run whose journal holds 10,000 completed steps; and
//! the peak RSS with 100,000 sleeping runs in a SQLite store.
//!
//! Sizes can be scaled down with `BENCH_SCALE` (for example `0.1`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use workflow_core::{
    Engine, EventKind, MemoryStore, RunStatus, SqliteStore, StepError, Store, sleep, step, workflow,
};

#[step]
async fn noop(i: u32) -> Result<u32, StepError> {
    Ok(i)
}

#[workflow]
async fn three_steps(i: u32) -> Result<u32, StepError> {
    let a = noop(i).await?;
    let b = noop(a + 1).await?;
    noop(b + 1).await
}

#[workflow]
async fn long_journal(n: u32) -> Result<u32, StepError> {
    let mut sum = 0;
    for i in 0..n {
        sum = noop(i).await?.wrapping_add(sum);
    }
    sleep("1500ms").await;
    Ok(sum)
}

#[workflow]
async fn sleeper(_i: u32) -> Result<(), StepError> {
    sleep("1h").await;
    Ok(())
}

fn scale(n: usize) -> usize {
    let factor: f64 = std::env::var("BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * factor) as usize).max(1)
}

/// Whether to run a scenario: all of them unless `BENCH_ONLY` names some
/// (comma-separated: `sleeping`, `sequential`, `concurrent`, `resume`).
fn enabled(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|o| o.trim() == name))
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn engine(store: Arc<dyn Store>) -> Engine {
    Engine::builder()
        .shared_store(store)
        .build()
        .await
        .expect("engine")
}

async fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open(dir.path().join(name))
            .await
            .expect("sqlite"),
    )
}

async fn sequential(store: Arc<dyn Store>, n: usize) -> Duration {
    let engine = engine(store).await;
    // Warm up.
    for i in 0..20 {
        engine
            .start(three_steps, (i,))
            .await
            .unwrap()
            .result()
            .await
            .unwrap();
    }
    let t = Instant::now();
    for i in 0..n {
        let run = engine.start(three_steps, (i as u32,)).await.unwrap();
        assert_eq!(run.result().await.unwrap(), i as u32 + 2);
    }
    let per = t.elapsed() / n as u32;
    engine.shutdown().await;
    per
}

async fn concurrent(store: Arc<dyn Store>, n: usize) -> f64 {
    let engine = engine(store).await;
    let t = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let run = engine.start(three_steps, (i as u32,)).await.unwrap();
            run.result().await.unwrap()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(task.await.unwrap(), i as u32 + 2);
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    engine.shutdown().await;
    rate
}

/// Returns (journal length, time to load it, time from the wake-up time to
/// the resumed run having replayed everything).
async fn resume(store: Arc<dyn Store>, steps: u32) -> (usize, Duration, Duration) {
    let engine = engine(store.clone()).await;
    let run = engine.start(long_journal, (steps,)).await.unwrap();
    while run.status().await.unwrap() != RunStatus::Sleeping {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    let journal = store.load_events(run.id()).await.unwrap();
    let load = t.elapsed();
    run.result().await.unwrap();
    let journal_after = run.journal().await.unwrap();
    let wake_at = journal_after
        .iter()
        .find_map(|e| match e.kind {
            EventKind::WaitCreated { wake_at, .. } => Some(wake_at),
            _ => None,
        })
        .unwrap();
    let woke = journal_after
        .iter()
        .find(|e| matches!(e.kind, EventKind::WaitCompleted { .. }))
        .unwrap()
        .at;
    engine.shutdown().await;
    (journal.len(), load, wake_at.until(woke))
}

async fn sleeping_runs(store: Arc<dyn Store>, n: usize) -> (u64, u64, Duration) {
    let before = rss_kib("VmRSS:");
    let engine = engine(store).await;
    let t = Instant::now();
    let mut handles = Vec::with_capacity(1024);
    for i in 0..n {
        handles.push(engine.start(sleeper, (i as u32,)));
        if handles.len() == 1024 {
            for h in futures::future::join_all(handles.drain(..)).await {
                h.unwrap();
            }
        }
    }
    for h in futures::future::join_all(handles.drain(..)).await {
        h.unwrap();
    }
    // Wait until every run is unloaded.
    loop {
        let live = engine.runs(1).await.unwrap();
        let sleeping = engine.store().next_due().await.unwrap();
        if !live.is_empty()
            && sleeping
                .is_some_and(|t| t > workflow_core::Timestamp::now() + Duration::from_secs(60))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = t.elapsed();
    let peak = rss_kib("VmHWM:");
    engine.shutdown().await;
    (before, peak, elapsed)
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    println!("workflow-core engine benchmark (3 no-op steps per workflow unless noted)\n");

    // Memory first: VmHWM only grows, so later scenarios must not inflate it.
    let n_sleep = scale(100_000);
    if enabled("sleeping") {
        let (before, peak, took) =
            sleeping_runs(sqlite_store(&dir, "sleep.db").await, n_sleep).await;
        println!(
            "sleeping runs (SQLite): {n_sleep} runs unloaded in {:.1} s; RSS before {:.1} MB, peak {:.1} MB (target <= 50 MB)",
            took.as_secs_f64(),
            before as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    }

    let n_seq = scale(1_000);
    if enabled("sequential") {
        let seq_mem = sequential(Arc::new(MemoryStore::new()), n_seq).await;
        let seq_sqlite = sequential(sqlite_store(&dir, "seq.db").await, n_seq).await;
        println!(
            "sequential start+await, N={n_seq}: SQLite {:.3} ms/workflow (target <= 0.5), memory {:.3} ms/workflow; SQLite/memory = {:.2}x",
            seq_sqlite.as_secs_f64() * 1e3,
            seq_mem.as_secs_f64() * 1e3,
            seq_sqlite.as_secs_f64() / seq_mem.as_secs_f64()
        );
    }

    let n_conc = scale(10_000);
    if enabled("concurrent") {
        let conc_mem = concurrent(Arc::new(MemoryStore::new()), n_conc).await;
        let conc_sqlite = concurrent(sqlite_store(&dir, "conc.db").await, n_conc).await;
        println!(
            "concurrent throughput, N={n_conc}: SQLite {conc_sqlite:.0} workflows/s (target >= 5000), memory {conc_mem:.0} workflows/s; SQLite/memory = {:.2}",
            conc_sqlite / conc_mem
        );
    }

    let steps = scale(10_000) as u32;
    if enabled("resume") {
        let (len, load, resumed) = resume(sqlite_store(&dir, "resume.db").await, steps).await;
        println!(
            "resume a run with {steps} completed steps ({len} journal events), SQLite: load {:.1} ms, wake-up to replayed {} ms (target <= 20)",
            load.as_secs_f64() * 1e3,
            resumed.as_millis()
        );
        let (_, load_m, resumed_m) = resume(Arc::new(MemoryStore::new()), steps).await;
        println!(
            "resume a run with {steps} completed steps, memory: load {:.1} ms, wake-up to replayed {} ms",
            load_m.as_secs_f64() * 1e3,
            resumed_m.as_millis()
        );
    }
}
