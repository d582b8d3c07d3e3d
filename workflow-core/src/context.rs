//! The per-run context that workflow code reaches through a task-local:
//! operation ids, replay, the unflushed journal tail, timers and fatal
//! failures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ids::RunId;
use crate::journal::{EventKind, NewEvent};
use crate::replay::{OpDescriptor, OpKind, Replay, Take};
use crate::time::Timestamp;

tokio::task_local! {
    /// The run whose workflow code is executing, `None` inside step bodies.
    static CURRENT: Option<Arc<RunContext>>;
}

/// The context of the workflow code running on this task, if any.
pub(crate) fn current() -> Option<Arc<RunContext>> {
    CURRENT.try_with(|c| c.clone()).ok().flatten()
}

/// Runs `fut` with `ctx` as the current run context.
pub(crate) fn scope<F: std::future::Future>(
    ctx: Option<Arc<RunContext>>,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Option<Arc<RunContext>>, F> {
    CURRENT.scope(ctx, fut)
}

/// Why a run cannot go on.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The code and the journal disagree.
    Nondeterminism(String),
    /// A recorded value no longer decodes, or the journal is inconsistent.
    Journal(String),
    /// The workflow code asked for something invalid (for example a sleep
    /// with an unparsable duration).
    Invalid(String),
}

/// Per-run state shared by the driver and the operation futures.
#[derive(Debug)]
pub(crate) struct RunContext {
    pub(crate) run_id: RunId,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next_op: u32,
    replay: Replay,
    /// Operations waiting for their turn in the journal.
    gated: HashMap<u32, Waker>,
    running_steps: usize,
    waits: HashMap<u32, Timestamp>,
    fatal: Option<Failure>,
    rng: ChaCha8Rng,
    pending: Vec<NewEvent>,
    /// Sequence number of the next event to enqueue.
    next_seq: u64,
    /// Every event below this sequence is committed.
    durable_seq: u64,
    durable_waiters: Vec<(u64, Waker)>,
}

fn wake_all(wakers: impl IntoIterator<Item = Waker>) {
    for w in wakers {
        w.wake();
    }
}

impl RunContext {
    pub(crate) fn new(run_id: RunId, replay: Replay, next_seq: u64) -> Self {
        let seed = u64::from_le_bytes(
            run_id.as_uuid().as_bytes()[8..]
                .try_into()
                .expect("8 bytes"),
        ) ^ u64::from_le_bytes(
            run_id.as_uuid().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        );
        Self {
            run_id,
            state: Mutex::new(State {
                next_op: 0,
                replay,
                gated: HashMap::new(),
                running_steps: 0,
                waits: HashMap::new(),
                fatal: None,
                rng: ChaCha8Rng::seed_from_u64(seed),
                pending: Vec::new(),
                next_seq,
                durable_seq: next_seq,
                durable_waiters: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves nothing half-written that
        // matters more than the panic itself; keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves the next operation id and checks it against the journal.
    ///
    /// Returns `None` (and fails the run) when the journal recorded a
    /// different operation at this position.
    pub(crate) fn reserve(&self, kind: OpKind, name: &str) -> Option<u32> {
        let mut st = self.lock();
        let op = st.next_op;
        st.next_op += 1;
        if let Err(mismatch) = st.replay.check(op, OpDescriptor { kind, name }) {
            let message = format!(
                "non-deterministic workflow: {mismatch}; the workflow's code changed in a way \
                 that changes the order of its steps, sleeps or clock reads"
            );
            st.fatal.get_or_insert(Failure::Nondeterminism(message));
            return None;
        }
        Some(op)
    }

    /// Polls for operation `op`'s next recorded event.
    pub(crate) fn poll_take(&self, op: u32, cx: &mut Context<'_>) -> Poll<Option<EventKind>> {
        let mut st = self.lock();
        match st.replay.take(op) {
            Take::Event(kind) => {
                let wake = st.after_cursor_moved();
                drop(st);
                wake_all(wake);
                Poll::Ready(Some(kind))
            }
            Take::Live => Poll::Ready(None),
            Take::Wait => {
                st.gated.insert(op, cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Takes operation `op`'s next recorded event out of order (for
    /// synchronous operations).
    pub(crate) fn take_now(&self, op: u32) -> Option<EventKind> {
        let mut st = self.lock();
        let kind = st.replay.take_any(op);
        let wake = st.after_cursor_moved();
        drop(st);
        wake_all(wake);
        kind
    }

    /// Appends an event to the unflushed tail; returns its sequence number.
    pub(crate) fn enqueue(&self, kind: EventKind) -> u64 {
        let mut st = self.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.pending.push(NewEvent::now(kind));
        seq
    }

    /// Polls until the event with sequence `seq` is committed.
    pub(crate) fn poll_durable(&self, seq: u64, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.lock();
        if st.durable_seq > seq {
            Poll::Ready(())
        } else {
            st.durable_waiters.push((seq, cx.waker().clone()));
            Poll::Pending
        }
    }

    /// Records a failure that ends the run (the first one wins).
    pub(crate) fn fail(&self, failure: Failure) {
        self.lock().fatal.get_or_insert(failure);
    }

    /// A random `u64` from the run's deterministic generator.
    pub(crate) fn next_random(&self) -> u64 {
        rand::RngCore::next_u64(&mut self.lock().rng)
    }

    pub(crate) fn step_running(&self, delta: isize) {
        let mut st = self.lock();
        st.running_steps = st.running_steps.saturating_add_signed(delta);
    }

    pub(crate) fn set_wait(&self, op: u32, until: Option<Timestamp>) {
        let mut st = self.lock();
        match until {
            Some(t) => st.waits.insert(op, t),
            None => st.waits.remove(&op),
        };
    }

    // ---- for the driver ----

    pub(crate) fn has_failed(&self) -> bool {
        self.lock().fatal.is_some()
    }

    pub(crate) fn take_fatal(&self) -> Option<Failure> {
        self.lock().fatal.take()
    }

    pub(crate) fn is_replaying(&self) -> bool {
        !self.lock().replay.is_done()
    }

    pub(crate) fn describe_replay_position(&self) -> String {
        let st = self.lock();
        st.replay
            .describe_cursor()
            .unwrap_or_else(|| "the end of the journal".into())
    }

    /// The unflushed events and the sequence the first of them takes.
    pub(crate) fn take_pending(&self) -> Option<(u64, Vec<NewEvent>)> {
        let mut st = self.lock();
        if st.pending.is_empty() {
            return None;
        }
        let first = st.next_seq - st.pending.len() as u64;
        Some((first, std::mem::take(&mut st.pending)))
    }

    /// Marks every event below `seq` committed and wakes their waiters.
    pub(crate) fn mark_durable(&self, seq: u64) {
        let mut st = self.lock();
        st.durable_seq = st.durable_seq.max(seq);
        let durable = st.durable_seq;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut st.durable_waiters)
            .into_iter()
            .partition(|(s, _)| *s < durable);
        st.durable_waiters = waiting;
        drop(st);
        wake_all(ready.into_iter().map(|(_, w)| w));
    }

    /// When the run may be unloaded: it waits only for timers, and the
    /// earliest of them is this.
    pub(crate) fn only_waiting_until(&self) -> Option<Timestamp> {
        let st = self.lock();
        if st.running_steps > 0 {
            return None;
        }
        st.waits.values().min().copied()
    }
}

impl State {
    /// Wakers to call after the replay cursor moved: the owner of the next
    /// event, or everyone once the journal is consumed.
    fn after_cursor_moved(&mut self) -> Vec<Waker> {
        if self.gated.is_empty() {
            return Vec::new();
        }
        if self.replay.is_done() {
            return self.gated.drain().map(|(_, w)| w).collect();
        }
        match self
            .replay
            .cursor_op()
            .and_then(|op| self.gated.remove(&op))
        {
            Some(w) => vec![w],
            None => Vec::new(),
        }
    }
}
