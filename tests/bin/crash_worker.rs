//! A worker process for the crash-recovery tests: it runs workflows on a
//! SQLite file, logs every step execution to a file (a side effect outside
//! the journal), and exits once every run in the store has ended. The tests
//! kill it with SIGKILL at chosen moments and start it again.
//!
//! ```text
//! crash-worker DB LOG SCENARIO [--start N]
//! ```

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use workflow_core::{Engine, SqliteStore, StepError, sleep, step, workflow};

static LOG: OnceLock<String> = OnceLock::new();

fn log(key: &str, what: &str) {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    // One write per line: appends from concurrent steps must not interleave.
    let line = format!("{key} {what} {millis}\n");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(LOG.get().expect("log path set"))
        .expect("log opens");
    file.write_all(line.as_bytes()).expect("log writes");
}

#[step]
async fn a(key: String) -> Result<(), StepError> {
    log(&key, "a");
    Ok(())
}

#[step]
async fn b(key: String) -> Result<(), StepError> {
    log(&key, "b");
    Ok(())
}

#[step]
async fn c(key: String) -> Result<(), StepError> {
    log(&key, "c");
    Ok(())
}

#[step]
async fn slow(key: String) -> Result<(), StepError> {
    log(&key, "slow-start");
    tokio::time::sleep(Duration::from_secs(2)).await;
    log(&key, "slow-end");
    Ok(())
}

#[step(max_retries = 2, initial_backoff = "10ms")]
async fn abort_step(key: String) -> Result<(), StepError> {
    log(&key, "abort_step");
    std::process::abort();
}

#[workflow]
async fn crash_sleep(key: String) -> Result<(), StepError> {
    a(key.clone()).await?;
    b(key.clone()).await?;
    sleep("1500ms").await;
    c(key).await
}

#[workflow]
async fn crash_step(key: String) -> Result<(), StepError> {
    a(key.clone()).await?;
    slow(key.clone()).await?;
    c(key).await
}

#[workflow]
async fn poison(key: String) -> Result<(), StepError> {
    a(key.clone()).await?;
    abort_step(key).await
}

#[step]
async fn before(key: String) -> Result<(), StepError> {
    log(&key, "before");
    Ok(())
}

#[step]
async fn after(key: String) -> Result<(), StepError> {
    log(&key, "after");
    Ok(())
}

#[workflow]
async fn timer(key: String) -> Result<(), StepError> {
    before(key.clone()).await?;
    sleep("2s").await;
    after(key).await
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: crash-worker DB LOG SCENARIO [--start N]");
        std::process::exit(2);
    }
    let (db, scenario) = (&args[1], args[3].as_str());
    LOG.set(args[2].clone()).expect("set once");
    let start: usize = match args.get(4).map(String::as_str) {
        Some("--start") => args.get(5).and_then(|n| n.parse().ok()).expect("--start N"),
        _ => 0,
    };

    let store = SqliteStore::open(db).await.expect("store opens");
    let engine = Engine::builder()
        .store(store)
        .lease_duration(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(50))
        .suspend_after(
            std::env::var("CRASH_SUSPEND_AFTER_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map_or(Duration::from_millis(200), Duration::from_millis),
        )
        .build()
        .await
        .expect("engine builds");
    for i in 0..start {
        let key = format!("{scenario}-{i}");
        let started = match scenario {
            "sleep" => engine.start(crash_sleep, (key,)).await.map(|_| ()),
            "step" => engine.start(crash_step, (key,)).await.map(|_| ()),
            "poison" => engine.start(poison, (key,)).await.map(|_| ()),
            "timer" => engine.start(timer, (key,)).await.map(|_| ()),
            other => panic!("unknown scenario {other}"),
        };
        started.expect("run starts");
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let runs = engine.runs(10_000).await.expect("runs list");
        if !runs.is_empty() && runs.iter().all(|r| r.status.is_terminal()) {
            break;
        }
        if std::time::Instant::now() > deadline {
            eprintln!("runs did not finish in time");
            std::process::exit(3);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    engine.shutdown().await;
}
