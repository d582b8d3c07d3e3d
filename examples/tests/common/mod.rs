//! Running the real `signup-server` binary and driving its page in headless
//! Chromium, for the examples' end-to-end tests.
//!
//! Every test binary uses a part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The Sockudo server `.ci/sockudo.sh` starts.
pub(crate) const SOCKUDO_ADDR: &str = "127.0.0.1:16001";
/// `PUSHER_URL` for that Sockudo server.
pub(crate) const SOCKUDO_URL: &str =
    "http://pusher-client-key:pusher-client-secret@127.0.0.1:16001/apps/pusher-client-test";

/// Where tests leave screenshots (gitignored).
pub(crate) fn artifacts_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../test-artifacts"));
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("could not create {}: {e}", dir.display()));
    dir
}

/// A unique email for this test run.
pub(crate) fn unique_email(who: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = (nanos as u64 ^ u64::from(std::process::id()).rotate_left(24)) & 0xff_ffff;
    format!("{who}.{tag:06x}@example.com")
}

/// A running `signup-server`, killed when dropped.
#[derive(Debug)]
pub(crate) struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The port the HTTP server listens on.
    pub(crate) port: u16,
    /// What it printed on stdout.
    pub(crate) stdout: Arc<Mutex<Vec<String>>>,
    log: PathBuf,
}

impl Server {
    /// Starts the server in `dir` (its working directory, which holds the
    /// SQLite file `signup.db` and the token secret), on a free port unless
    /// `SIGNUP_ADDR` is in `env`, with the embedded Pusher server on a free
    /// port unless `env` says otherwise.
    pub(crate) async fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let log = dir.join(format!(
            "server-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_signup-server"));
        command
            .current_dir(dir)
            .env_remove("PUSHER_URL")
            .env_remove("PUSHER_APP_ID")
            .env_remove("SIGNUP_TOKEN_SECRET")
            .env("SIGNUP_ADDR", "127.0.0.1:0")
            .env("LOCAL_PUSHER_ADDR", "127.0.0.1:0")
            .env(
                "WORKFLOW_DATABASE_URL",
                format!("sqlite://{}", dir.join("signup.db").display()),
            )
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("could not start signup-server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                stdout.lock().unwrap().push(line.clone());
                if let Some(rest) = line.strip_prefix("signup server: http://") {
                    return Some(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
            }
            None
        })
        .await;
        let Ok(Some(addr)) = found else {
            let _ = child.start_kill();
            panic!(
                "signup-server did not print its address within 30 s\nstdout:\n{}\nlog:\n{}",
                stdout.lock().unwrap().join("\n"),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let port = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in `{addr}`"));
        let sink = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Server {
            child,
            url: format!("http://{addr}"),
            port,
            stdout,
            log,
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it.
    pub(crate) async fn kill(mut self) {
        self.child
            .kill()
            .await
            .expect("could not kill signup-server");
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The server's log so far (for failure messages).
    pub(crate) fn log(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "stdout:\n{}\nlog (last 60 lines):\n{}",
            self.stdout.lock().unwrap().join("\n"),
            tail.join("\n")
        )
    }

    /// `GET` a JSON document, returning the status and the body.
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let res = http()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()));
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path} answered {status} with non-JSON `{text}`: {e}"));
        (status, body)
    }

    /// `POST /api/signup` with this email, expecting 202; returns the answer.
    pub(crate) async fn signup(&self, email: &str) -> Value {
        let res = http()
            .post(format!("{}/api/signup", self.url))
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /api/signup: {e}\n{}", self.log()));
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 202, "POST /api/signup answered {status}: {body}");
        body
    }

    /// Polls `GET /api/runs/{id}` until `done` holds for the run's view.
    pub(crate) async fn wait_for_run(
        &self,
        run_id: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, view) = self.get(&format!("/api/runs/{run_id}")).await;
            assert_eq!(status, 200, "GET /api/runs/{run_id}: {view}");
            if done(&view) {
                return view;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "run {run_id} did not get there within {timeout:?}; last view:\n{}\n{}",
                    serde_json::to_string_pretty(&view).unwrap(),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// An HTTP client for the tests.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Panics unless something accepts TCP connections on the Sockudo address.
pub(crate) async fn require_sockudo() {
    let reached = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(SOCKUDO_ADDR),
    )
    .await;
    if !matches!(reached, Ok(Ok(_))) {
        panic!(
            "no Sockudo server answers on {SOCKUDO_ADDR}; start one with `bash .ci/sockudo.sh` \
             (from the workspace root) and run the tests again"
        );
    }
}

/// The names and states of a run view's steps, in order.
pub(crate) fn steps_of(view: &Value) -> Vec<(String, String)> {
    view["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        s["state"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The timeline of a completed signup.
pub(crate) fn completed_timeline() -> Vec<(String, String)> {
    [
        ("create_user", "completed"),
        ("send_welcome_email", "completed"),
        ("sleep", "woke"),
        ("send_onboarding_email", "completed"),
    ]
    .iter()
    .map(|(n, s)| (n.to_string(), s.to_string()))
    .collect()
}

// ---------------------------------------------------------------------------
// The browser

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
}

fn require_program(program: &str, version_arg: &str, install: &str) {
    let ok = std::process::Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "`{program}` is missing or does not run: {install}");
}

/// Checks for Chromium, Node.js and npm, and installs the harness's pinned
/// npm packages when they are missing.
fn prepare_browser() -> PathBuf {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| CHROMIUM.to_owned());
    assert!(
        Path::new(&chromium).is_file(),
        "headless Chromium is missing at {chromium}: install Debian's package with \
         `sudo apt-get install -y chromium` (or set CHROMIUM_PATH)"
    );
    require_program(
        "node",
        "--version",
        "install Node.js 20 or later and npm (`sudo apt-get install -y nodejs npm`)",
    );
    let dir = browser_dir();
    if !dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        require_program(
            "npm",
            "--version",
            "install npm (`sudo apt-get install -y npm`)",
        );
        let status = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .unwrap_or_else(|e| panic!("could not run `npm ci` in {}: {e}", dir.display()));
        assert!(status.success(), "`npm ci` failed in {}", dir.display());
    }
    PathBuf::from(chromium)
}

/// Headless Chromium, driven by `tests/browser/drive.mjs`.
#[derive(Debug)]
pub(crate) struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    log: PathBuf,
}

/// Browser tests run one at a time: a 2-core machine runs one Chromium well.
pub(crate) static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl Browser {
    /// Launches Chromium; `log_dir` keeps the driver's stderr.
    pub(crate) async fn launch(log_dir: &Path) -> Browser {
        let chromium = prepare_browser();
        let log = log_dir.join("browser.log");
        let mut child = Command::new("node")
            .arg(browser_dir().join("drive.mjs"))
            .env("CHROMIUM_PATH", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .expect("could not start node");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Browser {
            child,
            stdin,
            lines,
            log,
        }
    }

    /// Sends a command; the driver's answer, `Ok(result)` or `Err(answer)`.
    pub(crate) async fn try_call(&mut self, command: Value) -> Result<Value, Value> {
        let mut line = command.to_string();
        line.push('\n');
        if let Err(e) = self.stdin.write_all(line.as_bytes()).await {
            panic!("the browser driver is gone ({e}):\n{}", self.log());
        }
        let answer = tokio::time::timeout(Duration::from_secs(180), self.lines.next_line()).await;
        let line = match answer {
            Ok(Ok(Some(line))) => line,
            Ok(_) => panic!("the browser driver exited:\n{}", self.log()),
            Err(_) => panic!("the browser driver did not answer {command} within 180 s"),
        };
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the browser driver printed `{line}`: {e}"));
        if answer["ok"] == json!(true) {
            Ok(answer["result"].clone())
        } else {
            Err(answer)
        }
    }

    /// Sends a command and panics with what the page shows if it fails.
    pub(crate) async fn call(&mut self, command: Value) -> Value {
        match self.try_call(command.clone()).await {
            Ok(result) => result,
            Err(answer) => panic!(
                "browser command {command} failed: {}\npage:\n{}\n{}",
                answer["error"],
                serde_json::to_string_pretty(&answer["snapshot"]).unwrap(),
                self.log()
            ),
        }
    }

    /// Opens `url` in a new browser context named `page`.
    pub(crate) async fn open(&mut self, page: &str, url: &str) -> Value {
        self.call(json!({ "cmd": "open", "page": page, "url": url }))
            .await
    }

    /// Signs up through the form; returns the run id the page shows.
    pub(crate) async fn signup(&mut self, page: &str, email: &str) -> String {
        let result = self
            .call(json!({ "cmd": "signup", "page": page, "email": email }))
            .await;
        result["runId"].as_str().unwrap().to_owned()
    }

    /// Waits until the page shows the run in one of `statuses` (and, when it
    /// completed, its notification); returns the page's snapshot.
    pub(crate) async fn wait_for_run(
        &mut self,
        page: &str,
        run_id: &str,
        statuses: &[&str],
    ) -> Value {
        self.call(json!({
            "cmd": "wait", "page": page, "runId": run_id, "statuses": statuses,
            "notification": true, "timeoutMs": 60_000,
        }))
        .await
    }

    /// Reloads the page and waits until pusher-js is connected again.
    pub(crate) async fn reload(&mut self, page: &str) -> Value {
        self.call(json!({ "cmd": "reload", "page": page })).await
    }

    /// What the page shows now.
    pub(crate) async fn snapshot(&mut self, page: &str) -> Value {
        self.call(json!({ "cmd": "snapshot", "page": page })).await
    }

    /// Saves a full-page screenshot into the artifacts folder.
    pub(crate) async fn screenshot(&mut self, page: &str, name: &str) -> PathBuf {
        let path = artifacts_dir().join(name);
        self.call(json!({ "cmd": "screenshot", "page": page, "path": path }))
            .await;
        path
    }

    /// Closes the browser.
    pub(crate) async fn quit(mut self) {
        let _ = self.try_call(json!({ "cmd": "quit" })).await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    fn log(&self) -> String {
        format!(
            "driver stderr:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

/// The page's run card for `run_id` in a snapshot.
pub(crate) fn run_card<'a>(snapshot: &'a Value, run_id: &str) -> &'a Value {
    snapshot["runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["runId"] == run_id))
        .unwrap_or_else(|| panic!("the page shows no run {run_id}: {snapshot:#}"))
}

/// The names and states of a run card's timeline.
pub(crate) fn timeline(card: &Value) -> Vec<(String, String)> {
    steps_of(card)
}

/// The Pusher messages the page received for `event` on `channel`.
pub(crate) fn messages<'a>(snapshot: &'a Value, channel: &str, event: &str) -> Vec<&'a Value> {
    snapshot["messages"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|m| m["channel"] == channel && m["event"] == event)
                .collect()
        })
        .unwrap_or_default()
}
