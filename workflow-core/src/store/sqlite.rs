//! The embedded default store: one SQLite file in WAL mode.

use std::path::{Path, PathBuf};
use std::thread;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use tokio::sync::{mpsc, oneshot};

use super::{CancelOutcome, Created, Lease, NewRun, Renewal, Store, cancels};
use crate::error::StoreError;
use crate::ids::{RunId, WorkerId};
use crate::journal::{
    ErrorRecord, Event, EventKind, Json, NewEvent, Projection, RunRecord, RunStatus,
};
use crate::time::Timestamp;

/// How hard SQLite works to make each commit durable.
///
/// In WAL mode both settings survive a crash of the process (`kill -9`): a
/// committed transaction is in the WAL file. They differ on a crash of the
/// operating system or a power cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Synchronous {
    /// `synchronous = NORMAL`: the WAL is synced at checkpoints, not at every
    /// commit. A power cut may lose the last commits; the database stays
    /// consistent. The default: it is what makes sub-millisecond steps
    /// possible.
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is synced to disk before it returns.
    Full,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// A [`Store`] in one SQLite file, the embedded default.
///
/// The database runs in WAL mode with `synchronous = NORMAL` by default (see
/// [`Synchronous`]). One writer thread owns the connection and commits the
/// operations that arrive while it is busy in one transaction (group commit),
/// so many concurrent runs share each commit. Several processes may open the
/// same file; SQLite serialises their writes.
///
/// # Examples
///
/// ```no_run
/// use workflow_core::{Engine, SqliteStore};
///
/// # async fn f() -> workflow_core::Result<()> {
/// let store = SqliteStore::open("workflow.db").await?;
/// let engine = Engine::builder().store(store).build().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStore {
    jobs: mpsc::UnboundedSender<Job>,
    path: PathBuf,
}

/// The outcome callback of a job, called once the batch commits or fails.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;
/// One operation: runs inside the batch transaction (or, given `None`, reports
/// that no transaction could be begun) and says whether it succeeded, so that
/// its savepoint is kept or rolled back.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Finish) + Send>;

const MAX_BATCH: usize = 512;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS wf_runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    idempotency_key  TEXT UNIQUE,
    owner            TEXT,
    lease_until      INTEGER,
    wake_at          INTEGER,
    due_at           INTEGER,
    next_seq         INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS wf_runs_due ON wf_runs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS wf_runs_owner ON wf_runs (owner) WHERE owner IS NOT NULL;
CREATE INDEX IF NOT EXISTS wf_runs_created ON wf_runs (created_at);
CREATE TABLE IF NOT EXISTS wf_events (
    run_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    data   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"#;

const RUN_COLUMNS: &str = "id, workflow, status, input, output, error, idempotency_key, owner, \
     lease_until, wake_at, next_seq, cancel_requested, created_at, updated_at";

/// Builder for a [`SqliteStore`] with non-default settings.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SqliteStoreBuilder {
    synchronous: Synchronous,
}

impl SqliteStoreBuilder {
    /// Sets the durability of commits.
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// Opens (or creates) the database file at `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened or is not a
    /// database this store can use.
    pub async fn open(self, path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (jobs, rx) = mpsc::unbounded_channel();
        let thread_path = path.clone();
        let synchronous = self.synchronous;
        thread::Builder::new()
            .name("workflow-sqlite".into())
            .spawn(move || match open_connection(&thread_path, synchronous) {
                Ok(conn) => {
                    let _ = ready_tx.send(Ok(()));
                    writer_loop(conn, rx);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::backend("could not start the SQLite thread", e))?;
        ready_rx.await.map_err(|_| StoreError::Backend {
            message: "the SQLite thread stopped".into(),
            source: None,
        })??;
        Ok(SqliteStore { jobs, path })
    }
}

fn open_connection(path: &Path, synchronous: Synchronous) -> Result<Connection, StoreError> {
    let what = || format!("could not open SQLite database {}", path.display());
    let conn = Connection::open(path).map_err(|e| StoreError::backend(what(), e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| StoreError::backend(what(), e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| StoreError::backend(what(), e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend {
            message: format!(
                "{} does not support WAL mode (got `{mode}`)",
                path.display()
            ),
            source: None,
        });
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {}; PRAGMA cache_size = -8192; PRAGMA temp_store = MEMORY;",
        synchronous.pragma()
    ))
    .map_err(|e| StoreError::backend(what(), e))?;
    conn.execute_batch(SCHEMA)
        .map_err(|e| StoreError::backend(what(), e))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn writer_loop(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = next_job(&mut rx) {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, &mut batch);
    }
}

/// How long the writer keeps looking for the next job before it sleeps. A run
/// usually sends its next write within microseconds of the last one's
/// commit; catching it without a sleep and wake-up saves a good part of a
/// write's latency.
const SPIN: std::time::Duration = std::time::Duration::from_micros(40);

fn next_job(rx: &mut mpsc::UnboundedReceiver<Job>) -> Option<Job> {
    let start = std::time::Instant::now();
    loop {
        match rx.try_recv() {
            Ok(job) => return Some(job),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if start.elapsed() < SPIN => {
                std::hint::spin_loop();
            }
            Err(mpsc::error::TryRecvError::Empty) => return rx.blocking_recv(),
        }
    }
}

fn run_batch(conn: &Connection, batch: &mut Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let message = e.to_string();
        for job in batch.drain(..) {
            let (_, finish) = job(None);
            finish(Err(message.clone()));
        }
        return;
    }
    let mut finishes = Vec::with_capacity(batch.len());
    // Set when SQLite rolled the whole transaction back by itself (a full
    // disk, an I/O error): nothing of this batch is written, so no job may
    // report success and none may run outside the transaction.
    let mut aborted = None;
    for job in batch.drain(..) {
        if aborted.is_some() || run_cached(conn, "SAVEPOINT job").is_err() {
            let (_, finish) = job(None);
            finishes.push(finish);
            aborted.get_or_insert_with(|| "could not isolate a write in the batch".to_owned());
            continue;
        }
        let (ok, finish) = job(Some(conn));
        finishes.push(finish);
        if conn.is_autocommit() {
            aborted = Some("SQLite rolled the transaction back".to_owned());
            continue;
        }
        if !ok {
            let _ = run_cached(conn, "ROLLBACK TO job");
        }
        let _ = run_cached(conn, "RELEASE job");
    }
    let outcome = match aborted {
        Some(reason) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(reason)
        }
        None => conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        }),
    };
    for finish in finishes {
        finish(outcome.clone());
    }
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute([])
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::backend("SQLite query failed", e)
}

fn corrupt(run_id: RunId, what: impl Into<String>, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        run_id,
        what: what.into(),
        reason: reason.to_string(),
    }
}

fn parse_json(run_id: RunId, what: &str, text: String) -> Result<Json, StoreError> {
    serde_json::value::RawValue::from_string(text).map_err(|e| corrupt(run_id, what, e))
}

/// Reads a `wf_runs` row selected with [`RUN_COLUMNS`].
fn read_run(row: &Row<'_>) -> rusqlite::Result<Result<RunRecord, StoreError>> {
    let id_text: String = row.get(0)?;
    let Ok(id) = id_text.parse::<RunId>() else {
        return Ok(Err(StoreError::Backend {
            message: format!("run row with invalid id `{id_text}`"),
            source: None,
        }));
    };
    let status: String = row.get(2)?;
    let input: String = row.get(3)?;
    let output: Option<String> = row.get(4)?;
    let error: Option<String> = row.get(5)?;
    let owner: Option<String> = row.get(7)?;
    let parsed = || -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            id,
            workflow: row.get(1).map_err(backend)?,
            status: status.parse().map_err(|e| corrupt(id, "run status", e))?,
            input: parse_json(id, "run input", input.clone())?,
            output: output
                .clone()
                .map(|o| parse_json(id, "run output", o))
                .transpose()?,
            error: error
                .as_deref()
                .map(serde_json::from_str::<ErrorRecord>)
                .transpose()
                .map_err(|e| corrupt(id, "run error", e))?,
            idempotency_key: row.get(6).map_err(backend)?,
            owner: owner.clone().map(WorkerId::from),
            lease_until: row
                .get::<_, Option<i64>>(8)
                .map_err(backend)?
                .map(Timestamp::from_millis),
            wake_at: row
                .get::<_, Option<i64>>(9)
                .map_err(backend)?
                .map(Timestamp::from_millis),
            next_seq: row.get::<_, i64>(10).map_err(backend)? as u64,
            cancel_requested: row.get::<_, i64>(11).map_err(backend)? != 0,
            created_at: Timestamp::from_millis(row.get(12).map_err(backend)?),
            updated_at: Timestamp::from_millis(row.get(13).map_err(backend)?),
        })
    };
    Ok(parsed())
}

fn select_run(conn: &Connection, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM wf_runs WHERE id = ?1"))
        .map_err(backend)?;
    stmt.query_row(params![run_id.to_string()], read_run)
        .optional()
        .map_err(backend)?
        .transpose()
}

fn insert_event(
    conn: &Connection,
    run_id: &str,
    seq: u64,
    at: Timestamp,
    kind: &EventKind,
) -> Result<(), StoreError> {
    let data = serde_json::to_string(kind)
        .map_err(|e| StoreError::backend("could not encode a journal event", e))?;
    conn.prepare_cached(
        "INSERT INTO wf_events (run_id, seq, at, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(backend)?
    .execute(params![
        run_id,
        seq as i64,
        at.as_millis(),
        kind.name(),
        data
    ])
    .map_err(backend)?;
    Ok(())
}

/// An event encoded for insertion, prepared on the caller's thread so that
/// the writer thread only writes.
struct Encoded {
    at: i64,
    kind: &'static str,
    data: String,
}

/// A batch of events ready to append: the encoded rows and their projection.
struct Batch {
    rows: Vec<Encoded>,
    projection: Projection,
    error: Option<String>,
}

impl Batch {
    fn encode(events: &[NewEvent]) -> Result<Self, StoreError> {
        let rows = events
            .iter()
            .map(|e| {
                Ok(Encoded {
                    at: e.at.as_millis(),
                    kind: e.kind.name(),
                    data: serde_json::to_string(&e.kind)
                        .map_err(|e| StoreError::backend("could not encode a journal event", e))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let projection = Projection::of(events);
        let error = projection
            .error
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::backend("could not encode a run error", e))?;
        Ok(Self {
            rows,
            projection,
            error,
        })
    }
}

/// Appends events after the run row has been checked.
fn append_events(
    conn: &Connection,
    run_id: RunId,
    first_seq: u64,
    batch: &Batch,
    now: Timestamp,
) -> Result<(), StoreError> {
    let id = run_id.to_string();
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO wf_events (run_id, seq, at, kind, data) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(backend)?;
    for (i, row) in batch.rows.iter().enumerate() {
        insert
            .execute(params![
                id,
                (first_seq + i as u64) as i64,
                row.at,
                row.kind,
                row.data
            ])
            .map_err(backend)?;
    }
    let projection = &batch.projection;
    let terminal = projection.is_terminal();
    let error = batch.error.as_deref();
    conn.prepare_cached(
        "UPDATE wf_runs SET next_seq = next_seq + ?2, status = COALESCE(?3, status), \
         output = COALESCE(?4, output), error = COALESCE(?5, error), updated_at = ?6, \
         owner = CASE WHEN ?7 THEN NULL ELSE owner END, \
         lease_until = CASE WHEN ?7 THEN NULL ELSE lease_until END, \
         wake_at = CASE WHEN ?7 THEN NULL ELSE wake_at END, \
         due_at = CASE WHEN ?7 THEN NULL ELSE due_at END \
         WHERE id = ?1",
    )
    .map_err(backend)?
    .execute(params![
        id,
        batch.rows.len() as i64,
        projection.status.map(RunStatus::as_str),
        projection.output.as_ref().map(|o| o.get()),
        error,
        now.as_millis(),
        terminal,
    ])
    .map_err(backend)?;
    Ok(())
}

/// Ends a run whose row cannot be read, recording why.
fn quarantine(
    conn: &Connection,
    id: &str,
    error: &StoreError,
    now: Timestamp,
) -> Result<(), StoreError> {
    tracing::error!(run_id = id, %error, "failing a run whose row cannot be read");
    let record = ErrorRecord::fatal(format!("{error}; the run cannot be executed"));
    let record = serde_json::to_string(&record)
        .map_err(|e| StoreError::backend("could not encode a run error", e))?;
    conn.prepare_cached(
        "UPDATE wf_runs SET status = 'failed', error = ?2, owner = NULL, lease_until = NULL, \
         wake_at = NULL, due_at = NULL, updated_at = ?3 WHERE id = ?1",
    )
    .map_err(backend)?
    .execute(params![id, record, now.as_millis()])
    .map_err(backend)?;
    Ok(())
}

/// The fields of a run that writes check.
struct RunState {
    status: RunStatus,
    owner: Option<String>,
    next_seq: u64,
    cancel_requested: bool,
}

impl RunState {
    fn check_owner(&self, run_id: RunId, worker: &WorkerId) -> Result<(), StoreError> {
        if self.status.is_terminal() {
            return Err(StoreError::Finished {
                run_id,
                status: self.status,
            });
        }
        if self.owner.as_deref() != Some(worker.as_str()) {
            return Err(StoreError::LeaseLost(run_id));
        }
        Ok(())
    }
}

fn select_state(conn: &Connection, run_id: RunId) -> Result<RunState, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT status, owner, next_seq, cancel_requested FROM wf_runs WHERE id = ?1",
        )
        .map_err(backend)?
        .query_row(params![run_id.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .optional()
        .map_err(backend)?;
    let (status, owner, next_seq, cancel) = row.ok_or(StoreError::NotFound(run_id))?;
    Ok(RunState {
        status: status
            .parse()
            .map_err(|e| corrupt(run_id, "run status", e))?,
        owner,
        next_seq: next_seq as u64,
        cancel_requested: cancel != 0,
    })
}

impl SqliteStore {
    /// Opens (or creates) the database file at `path` with default settings.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the file cannot be opened or is not a
    /// database this store can use.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder().open(path).await
    }

    /// A builder for non-default settings.
    pub fn builder() -> SqliteStoreBuilder {
        SqliteStoreBuilder::default()
    }

    /// The database file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn),
                None => Err(StoreError::Backend {
                    message: "could not begin a SQLite transaction".into(),
                    source: None,
                }),
            };
            let ok = result.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let _ = tx.send(match commit {
                    Ok(()) => result,
                    Err(message) => Err(StoreError::Backend {
                        message: format!("SQLite commit failed: {message}"),
                        source: None,
                    }),
                });
            });
            (ok, finish)
        });
        let closed = || StoreError::Backend {
            message: "the SQLite thread stopped".into(),
            source: None,
        };
        self.jobs.send(job).map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_run(&self, run: NewRun) -> Result<Created, StoreError> {
        let batch = (!run.events.is_empty())
            .then(|| Batch::encode(&run.events))
            .transpose()?;
        self.call(move |conn| {
            if let Some(key) = &run.idempotency_key {
                let existing: Option<String> = conn
                    .prepare_cached("SELECT id FROM wf_runs WHERE idempotency_key = ?1")
                    .map_err(backend)?
                    .query_row(params![key], |r| r.get(0))
                    .optional()
                    .map_err(backend)?;
                if let Some(id) = existing {
                    let id: RunId = id
                        .parse()
                        .map_err(|e| StoreError::backend("bad run id", e))?;
                    let record = select_run(conn, id)?.ok_or(StoreError::NotFound(id))?;
                    return Ok(Created::Existing(record));
                }
            }
            let mut record = run.to_record();
            let id = run.id.to_string();
            conn.prepare_cached(
                "INSERT INTO wf_runs (id, workflow, status, input, idempotency_key, owner, \
                 lease_until, due_at, next_seq, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)",
            )
            .map_err(backend)?
            .execute(params![
                id,
                record.workflow,
                record.status.as_str(),
                record.input.get(),
                record.idempotency_key,
                record.owner.as_ref().map(WorkerId::as_str),
                record.lease_until.map(Timestamp::as_millis),
                record.due_at().map(Timestamp::as_millis),
                record.created_at.as_millis(),
            ])
            .map_err(backend)?;
            let created = EventKind::RunCreated {
                workflow: run.workflow,
                input: run.input,
            };
            insert_event(conn, &id, 0, run.created_at, &created)?;
            if let Some(batch) = &batch {
                append_events(conn, run.id, 1, batch, run.created_at)?;
                record.next_seq += batch.rows.len() as u64;
                if let Some(status) = batch.projection.status {
                    record.status = status;
                }
            }
            Ok(Created::New(record))
        })
        .await
    }

    async fn append(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        expected_seq: u64,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        let worker = worker.clone();
        let cancelling = cancels(events);
        let batch = Batch::encode(events)?;
        self.call(move |conn| {
            // Check ownership and position with the row in hand; SQLite
            // serialises writers, so nothing changes between check and write.
            let state = select_state(conn, run_id)?;
            state.check_owner(run_id, &worker)?;
            if state.next_seq != expected_seq {
                return Err(StoreError::Conflict {
                    run_id,
                    expected: expected_seq,
                    actual: state.next_seq,
                });
            }
            if state.cancel_requested && !cancelling {
                return Err(StoreError::CancelRequested(run_id));
            }
            append_events(conn, run_id, expected_seq, &batch, Timestamp::now())
        })
        .await
    }

    async fn load_events(&self, run_id: RunId) -> Result<Vec<Event>, StoreError> {
        self.call(move |conn| {
            if select_run(conn, run_id)?.is_none() {
                return Err(StoreError::NotFound(run_id));
            }
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at, data FROM wf_events WHERE run_id = ?1 ORDER BY seq",
                )
                .map_err(backend)?;
            let mut rows = stmt.query(params![run_id.to_string()]).map_err(backend)?;
            let mut events = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                let seq: i64 = row.get(0).map_err(backend)?;
                let at: i64 = row.get(1).map_err(backend)?;
                let data = row
                    .get_ref(2)
                    .map_err(backend)?
                    .as_str()
                    .map_err(|e| corrupt(run_id, format!("journal event {seq}"), e))?;
                let kind: EventKind = serde_json::from_str(data)
                    .map_err(|e| corrupt(run_id, format!("journal event {seq}"), e))?;
                if seq as u64 != events.len() as u64 {
                    return Err(corrupt(
                        run_id,
                        format!("journal event {seq}"),
                        format!("expected sequence {}", events.len()),
                    ));
                }
                events.push(Event {
                    seq: seq as u64,
                    at: Timestamp::from_millis(at),
                    kind,
                });
            }
            Ok(events)
        })
        .await
    }

    async fn run(&self, run_id: RunId) -> Result<Option<RunRecord>, StoreError> {
        self.call(move |conn| select_run(conn, run_id)).await
    }

    async fn list_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        self.call(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {RUN_COLUMNS} FROM wf_runs ORDER BY created_at DESC, id DESC LIMIT ?1"
                ))
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![limit as i64], read_run)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend)?).collect()
        })
        .await
    }

    async fn claim_due(
        &self,
        lease: &Lease,
        now: Timestamp,
        limit: usize,
        workflows: Option<&[String]>,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let lease = lease.clone();
        let names = workflows
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::backend("could not encode workflow names", e))?;
        self.call(move |conn| {
            // Pick the runs first, in due order: the rows an UPDATE ...
            // RETURNING gives back come in no particular order.
            let mut pick = conn
                .prepare_cached(
                    "SELECT id FROM wf_runs WHERE due_at <= ?1 \
                     AND (?2 IS NULL OR workflow IN (SELECT value FROM json_each(?2))) \
                     ORDER BY due_at, id LIMIT ?3",
                )
                .map_err(backend)?;
            let ids = pick
                .query_map(params![now.as_millis(), names, limit as i64], |r| {
                    r.get::<_, String>(0)
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<String>>>()
                .map_err(backend)?;
            let mut claim = conn
                .prepare_cached(&format!(
                    "UPDATE wf_runs SET owner = ?2, lease_until = ?3, due_at = ?3, wake_at = NULL, \
                     status = 'running', updated_at = ?4 WHERE id = ?1 RETURNING {RUN_COLUMNS}"
                ))
                .map_err(backend)?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let record = claim
                    .query_row(
                        params![
                            id,
                            lease.worker.as_str(),
                            lease.until.as_millis(),
                            now.as_millis()
                        ],
                        read_run,
                    )
                    .map_err(backend)?;
                match record {
                    Ok(record) => claimed.push(record),
                    // A row that cannot be read would be claimed again and
                    // again, ahead of every other run: fail it instead.
                    Err(e) => quarantine(conn, &id, &e, now)?,
                }
            }
            Ok(claimed)
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.call(|conn| {
            conn.prepare_cached("SELECT MIN(due_at) FROM wf_runs WHERE due_at IS NOT NULL")
                .map_err(backend)?
                .query_row([], |r| r.get::<_, Option<i64>>(0))
                .map(|t| t.map(Timestamp::from_millis))
                .map_err(backend)
        })
        .await
    }

    async fn renew_leases(&self, lease: &Lease, runs: &[RunId]) -> Result<Renewal, StoreError> {
        if runs.is_empty() {
            return Ok(Renewal::default());
        }
        let lease = lease.clone();
        let asked = runs.to_vec();
        let ids = serde_json::to_string(&runs.iter().map(ToString::to_string).collect::<Vec<_>>())
            .map_err(|e| StoreError::backend("could not encode run ids", e))?;
        self.call(move |conn| {
            conn.prepare_cached(
                "UPDATE wf_runs SET lease_until = ?2, due_at = ?2 \
                 WHERE owner = ?1 AND id IN (SELECT value FROM json_each(?3))",
            )
            .map_err(backend)?
            .execute(params![lease.worker.as_str(), lease.until.as_millis(), ids])
            .map_err(backend)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, cancel_requested FROM wf_runs WHERE owner = ?1 \
                     AND id IN (SELECT value FROM json_each(?2))",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![lease.worker.as_str(), ids], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0))
                })
                .map_err(backend)?;
            let mut owned = std::collections::HashSet::new();
            let mut renewal = Renewal::default();
            for row in rows {
                let (id, cancel) = row.map_err(backend)?;
                let id: RunId = id
                    .parse()
                    .map_err(|e| StoreError::backend("bad run id", e))?;
                owned.insert(id);
                if cancel {
                    renewal.cancel_requested.push(id);
                }
            }
            renewal.lost = asked.into_iter().filter(|id| !owned.contains(id)).collect();
            Ok(renewal)
        })
        .await
    }

    async fn release(
        &self,
        run_id: RunId,
        worker: &WorkerId,
        wake_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let worker = worker.clone();
        self.call(move |conn| {
            select_state(conn, run_id)?.check_owner(run_id, &worker)?;
            let now = Timestamp::now();
            let (status, due) = match wake_at {
                Some(t) => (RunStatus::Sleeping, t),
                None => (RunStatus::Pending, now),
            };
            conn.prepare_cached(
                "UPDATE wf_runs SET owner = NULL, lease_until = NULL, wake_at = ?2, due_at = ?2, \
                 status = ?3, updated_at = ?4 WHERE id = ?1",
            )
            .map_err(backend)?
            .execute(params![
                run_id.to_string(),
                due.as_millis(),
                status.as_str(),
                now.as_millis()
            ])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn request_cancel(
        &self,
        run_id: RunId,
        now: Timestamp,
    ) -> Result<CancelOutcome, StoreError> {
        self.call(move |conn| {
            let record = select_run(conn, run_id)?.ok_or(StoreError::NotFound(run_id))?;
            if record.status.is_terminal() {
                return Ok(CancelOutcome::AlreadyFinished(record.status));
            }
            if record.owner.is_some() && record.lease_until.is_some_and(|until| until > now) {
                conn.prepare_cached("UPDATE wf_runs SET cancel_requested = 1 WHERE id = ?1")
                    .map_err(backend)?
                    .execute(params![run_id.to_string()])
                    .map_err(backend)?;
                return Ok(CancelOutcome::Requested);
            }
            let batch = Batch::encode(&[NewEvent {
                at: now,
                kind: EventKind::RunCancelled,
            }])?;
            append_events(conn, run_id, record.next_seq, &batch, now)?;
            Ok(CancelOutcome::Cancelled)
        })
        .await
    }
}
