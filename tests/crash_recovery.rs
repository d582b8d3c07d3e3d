//! Crash recovery with real processes: a worker on a SQLite file is killed
//! with SIGKILL at chosen moments; a new process on the same file finishes
//! every run. Step executions are counted through a log file that lives
//! outside the journal.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use workflow_core::{RunStatus, SqliteStore, Store};

fn worker(dir: &Path, scenario: &str, start: Option<usize>) -> Child {
    worker_with(dir, scenario, start, &[])
}

fn worker_with(dir: &Path, scenario: &str, start: Option<usize>, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash-worker"));
    cmd.envs(env.iter().copied());
    cmd.arg(dir.join("workflow.db"))
        .arg(dir.join("steps.log"))
        .arg(scenario);
    if let Some(n) = start {
        cmd.arg("--start").arg(n.to_string());
    }
    cmd.spawn().expect("crash-worker starts")
}

/// `(key, what)` -> timestamps (ms) of each logged execution.
fn log(dir: &Path) -> BTreeMap<(String, String), Vec<u128>> {
    let text = std::fs::read_to_string(dir.join("steps.log")).unwrap_or_default();
    let mut out: BTreeMap<(String, String), Vec<u128>> = BTreeMap::new();
    // Only whole lines: the worker may be writing the last one right now.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    for line in complete.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [key, what, at] = parts[..] else {
            panic!("malformed log line {line:?}");
        };
        out.entry((key.to_owned(), what.to_owned()))
            .or_default()
            .push(at.parse().unwrap());
    }
    out
}

fn times(dir: &Path, key: &str, what: &str) -> usize {
    log(dir)
        .get(&(key.to_owned(), what.to_owned()))
        .map_or(0, Vec::len)
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(mut child: Child) {
    child.kill().expect("SIGKILL");
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "killed by a signal: {status:?}");
}

fn finish(mut child: Child) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("worker did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn statuses(dir: &Path) -> Vec<(RunStatus, Option<String>)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(dir.join("workflow.db")).await.unwrap();
        store
            .list_runs(100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.status, r.error.map(|e| e.to_string())))
            .collect()
    })
}

const RUNS: usize = 4;

/// The tests below time real processes; running them one at a time keeps
/// their timings honest on a small machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the sleep scenario, kills the worker once every run sleeps, and
/// finishes the runs in a new worker; checks that each step ran once.
fn kill_in_sleep_and_recover(dir: &Path, env: &[(&str, &str)]) {
    let first = worker_with(dir, "sleep", Some(RUNS), env);
    wait_for(
        "every run to reach its sleep",
        Duration::from_secs(20),
        || (0..RUNS).all(|i| times(dir, &format!("sleep-{i}"), "b") == 1),
    );
    std::thread::sleep(Duration::from_millis(200));
    kill(first);
    assert!(
        (0..RUNS).all(|i| times(dir, &format!("sleep-{i}"), "c") == 0),
        "still asleep"
    );

    let status = finish(worker_with(dir, "sleep", None, env));
    assert!(status.success(), "{status:?}");
    for i in 0..RUNS {
        let key = format!("sleep-{i}");
        for step in ["a", "b", "c"] {
            assert_eq!(times(dir, &key, step), 1, "{key}: step {step} ran once");
        }
    }
}

#[test]
fn killed_inside_a_sleep_every_run_finishes_and_no_step_runs_twice() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    kill_in_sleep_and_recover(dir.path(), &[]);
    let st = statuses(dir.path());
    assert_eq!(st.len(), RUNS);
    assert!(st.iter().all(|(s, _)| *s == RunStatus::Completed), "{st:?}");
}

#[test]
fn killed_inside_a_sleep_held_in_memory_the_run_is_reclaimed_after_its_lease() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // Sleeps shorter than this stay in memory, under the worker's lease.
    kill_in_sleep_and_recover(dir.path(), &[("CRASH_SUSPEND_AFTER_MS", "60000")]);
    let log = log(dir.path());
    for i in 0..RUNS {
        let key = format!("sleep-{i}");
        let b = log[&(key.clone(), "b".to_owned())][0];
        let c = log[&(key.clone(), "c".to_owned())][0];
        assert!(
            c - b >= 1500,
            "{key}: the sleep was not cut short ({} ms)",
            c - b
        );
    }
}

#[test]
fn killed_inside_a_step_the_interrupted_step_runs_again_at_most_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let first = worker(dir.path(), "step", Some(RUNS));
    wait_for(
        "every run to be inside its slow step",
        Duration::from_secs(20),
        || (0..RUNS).all(|i| times(dir.path(), &format!("step-{i}"), "slow-start") == 1),
    );
    kill(first);

    let status = finish(worker(dir.path(), "step", None));
    assert!(status.success(), "{status:?}");
    for i in 0..RUNS {
        let key = format!("step-{i}");
        assert_eq!(
            times(dir.path(), &key, "a"),
            1,
            "{key}: completed step not run again"
        );
        assert_eq!(
            times(dir.path(), &key, "slow-start"),
            2,
            "{key}: interrupted step ran once more"
        );
        assert_eq!(times(dir.path(), &key, "slow-end"), 1);
        assert_eq!(times(dir.path(), &key, "c"), 1);
    }
    let st = statuses(dir.path());
    assert!(st.iter().all(|(s, _)| *s == RunStatus::Completed), "{st:?}");
}

#[test]
fn a_step_that_aborts_the_process_every_time_fails_the_run_instead_of_looping() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut crashes = 0;
    let mut start = Some(1);
    let finished = loop {
        let status = finish(worker(dir.path(), "poison", start.take()));
        if status.success() {
            break true;
        }
        assert!(
            status.code().is_none(),
            "the worker died of its abort: {status:?}"
        );
        crashes += 1;
        if crashes > 6 {
            break false;
        }
    };
    assert!(finished, "the run must end; it crash-looped");
    // max_retries = 2: three attempts, each of which took the process down.
    assert_eq!(crashes, 3);
    assert_eq!(times(dir.path(), "poison-0", "abort_step"), 3);
    assert_eq!(times(dir.path(), "poison-0", "a"), 1);
    let st = statuses(dir.path());
    assert_eq!(st[0].0, RunStatus::Failed);
    let error = st[0].1.clone().unwrap();
    assert!(error.contains("abort_step"), "{error}");
    assert!(
        error.contains("the process stopped while the step was running, in each of its 3 attempts"),
        "{error}"
    );
}

#[test]
fn a_two_second_sleep_survives_a_restart_and_wakes_on_time() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let first = worker(dir.path(), "timer", Some(1));
    wait_for("the run to start sleeping", Duration::from_secs(20), || {
        times(dir.path(), "timer-0", "before") == 1
    });
    std::thread::sleep(Duration::from_millis(1000));
    kill(first);
    let status = finish(worker(dir.path(), "timer", None));
    assert!(status.success(), "{status:?}");
    let log = log(dir.path());
    let before = log[&("timer-0".to_owned(), "before".to_owned())][0];
    let after = log[&("timer-0".to_owned(), "after".to_owned())][0];
    let slept = after - before;
    assert!(
        (1500..=2500).contains(&slept),
        "woke after {slept} ms, expected 2000 ± 500"
    );
}
