//! Replay: matching a run's recorded journal to the operations its code
//! requests, in the order the journal recorded them.
//!
//! Operations get ids from call order. A recorded event is handed to its
//! operation only when every earlier event has been consumed (the cursor), so
//! that concurrent branches observe outcomes in the order they did when the
//! run first executed. An operation with no more recorded events goes live
//! only once the whole journal has been consumed.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::journal::{Event, EventKind};

/// The kind of a durable operation, used to detect non-determinism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Step,
    Sleep,
    Now,
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpKind::Step => "step",
            OpKind::Sleep => "sleep",
            OpKind::Now => "now()",
        })
    }
}

/// An operation as the code requests it or the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpDescriptor {
    pub(crate) kind: OpKind,
    pub(crate) name: String,
}

impl fmt::Display for OpDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            OpKind::Step => write!(f, "step `{}`", self.name),
            kind => write!(f, "{kind}"),
        }
    }
}

#[derive(Debug)]
struct OpHistory {
    descriptor: OpDescriptor,
    /// Indices into `Replay::events` not yet consumed, in order.
    pending: VecDeque<usize>,
}

/// What the journal offers an operation now.
#[derive(Debug)]
pub(crate) enum Take {
    /// The operation's next recorded event.
    Event(EventKind),
    /// The operation has recorded events (or the journal is not yet fully
    /// replayed) but they are not next: wait.
    Wait,
    /// Replay is over for this operation: execute it.
    Live,
}

/// The replay state of one run.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    events: Vec<Event>,
    consumed: Vec<bool>,
    cursor: usize,
    ops: HashMap<u32, OpHistory>,
}

fn descriptor_of(kind: &EventKind) -> Option<OpDescriptor> {
    match kind {
        EventKind::StepStarted { step, .. } => Some(OpDescriptor {
            kind: OpKind::Step,
            name: step.clone(),
        }),
        EventKind::WaitCreated { .. } => Some(OpDescriptor {
            kind: OpKind::Sleep,
            name: String::new(),
        }),
        EventKind::TimeRecorded { .. } => Some(OpDescriptor {
            kind: OpKind::Now,
            name: String::new(),
        }),
        _ => None,
    }
}

impl Replay {
    /// Builds the replay state from a run's journal.
    ///
    /// # Errors
    ///
    /// A message when an operation's first event is not one that creates an
    /// operation (the journal is inconsistent).
    pub(crate) fn new(journal: Vec<Event>) -> Result<Self, String> {
        let events: Vec<Event> = journal
            .into_iter()
            .filter(|e| e.kind.op().is_some())
            .collect();
        let mut ops: HashMap<u32, OpHistory> = HashMap::new();
        for (i, event) in events.iter().enumerate() {
            let op = event.kind.op().expect("filtered to operation events");
            match ops.get_mut(&op) {
                Some(history) => history.pending.push_back(i),
                None => {
                    let descriptor = descriptor_of(&event.kind).ok_or_else(|| {
                        format!(
                            "journal event {} (`{}`) refers to operation #{op}, which no earlier event created",
                            event.seq,
                            event.kind.name()
                        )
                    })?;
                    ops.insert(
                        op,
                        OpHistory {
                            descriptor,
                            pending: VecDeque::from([i]),
                        },
                    );
                }
            }
        }
        let consumed = vec![false; events.len()];
        Ok(Self {
            events,
            consumed,
            cursor: 0,
            ops,
        })
    }

    /// Whether every recorded event has been consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.cursor == self.events.len()
    }

    /// What the journal recorded as operation `op`, if anything.
    pub(crate) fn recorded(&self, op: u32) -> Option<&OpDescriptor> {
        self.ops.get(&op).map(|h| &h.descriptor)
    }

    /// The operation that owns the next event to consume.
    pub(crate) fn cursor_op(&self) -> Option<u32> {
        self.events.get(self.cursor).and_then(|e| e.kind.op())
    }

    /// A description of the next event to consume, for error messages.
    pub(crate) fn describe_cursor(&self) -> Option<String> {
        let event = self.events.get(self.cursor)?;
        let op = event.kind.op()?;
        let what = self
            .ops
            .get(&op)
            .map(|h| h.descriptor.to_string())
            .unwrap_or_default();
        Some(format!(
            "operation #{op} ({what}), journal event {} `{}`",
            event.seq,
            event.kind.name()
        ))
    }

    /// Offers operation `op` its next event if that event is next in the
    /// journal.
    pub(crate) fn take(&mut self, op: u32) -> Take {
        let done = self.is_done();
        let cursor = self.cursor;
        let next = self.ops.get_mut(&op).and_then(|h| match h.pending.front() {
            Some(&i) if i == cursor => h.pending.pop_front(),
            _ => None,
        });
        if let Some(i) = next {
            let kind = self.events[i].kind.clone();
            self.consume(i);
            return Take::Event(kind);
        }
        let has_more = self.ops.get(&op).is_some_and(|h| !h.pending.is_empty());
        if done && !has_more {
            Take::Live
        } else {
            Take::Wait
        }
    }

    /// Takes operation `op`'s next event wherever it is (for operations that
    /// complete synchronously, such as reading the clock).
    pub(crate) fn take_any(&mut self, op: u32) -> Option<EventKind> {
        let i = self.ops.get_mut(&op)?.pending.pop_front()?;
        let kind = self.events[i].kind.clone();
        self.consume(i);
        Some(kind)
    }

    fn consume(&mut self, i: usize) {
        self.consumed[i] = true;
        while self.cursor < self.events.len() && self.consumed[self.cursor] {
            self.cursor += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::to_json;
    use crate::time::Timestamp;

    fn ev(seq: u64, kind: EventKind) -> Event {
        Event {
            seq,
            at: Timestamp::from_millis(0),
            kind,
        }
    }

    fn started(op: u32, name: &str) -> EventKind {
        EventKind::StepStarted {
            op,
            step: name.into(),
            attempt: 1,
            input: None,
        }
    }

    fn completed(op: u32) -> EventKind {
        EventKind::StepCompleted {
            op,
            output: to_json(&op).unwrap(),
        }
    }

    #[test]
    fn events_are_handed_out_in_journal_order() {
        // a(0) and c(1) start; c completes before a.
        let mut r = Replay::new(vec![
            ev(1, started(0, "a")),
            ev(2, started(1, "c")),
            ev(3, completed(1)),
            ev(4, completed(0)),
        ])
        .unwrap();
        assert!(matches!(
            r.take(0),
            Take::Event(EventKind::StepStarted { .. })
        ));
        assert!(
            matches!(r.take(0), Take::Wait),
            "a's completion is not next"
        );
        assert!(matches!(r.take(1), Take::Event(_)));
        assert_eq!(r.cursor_op(), Some(1));
        assert!(matches!(
            r.take(1),
            Take::Event(EventKind::StepCompleted { .. })
        ));
        assert!(matches!(
            r.take(0),
            Take::Event(EventKind::StepCompleted { .. })
        ));
        assert!(r.is_done());
        assert!(matches!(r.take(0), Take::Live));
        assert!(matches!(r.take(7), Take::Live));
    }

    #[test]
    fn new_operations_wait_until_the_journal_is_consumed() {
        let mut r = Replay::new(vec![ev(1, started(0, "a"))]).unwrap();
        assert!(matches!(r.take(1), Take::Wait));
        assert!(matches!(r.take(0), Take::Event(_)));
        assert!(matches!(r.take(1), Take::Live));
    }

    #[test]
    fn orphan_events_are_rejected() {
        let err = Replay::new(vec![ev(3, completed(0))]).unwrap_err();
        assert!(err.contains("operation #0"), "{err}");
    }
}
