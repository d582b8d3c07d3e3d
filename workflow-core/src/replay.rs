//! Replay: matching a run's recorded journal to the operations its code
//! requests, in the order the journal recorded them.
//!
//! Operations get ids from call order. A recorded event is handed to its
//! operation only when every earlier event has been consumed (the cursor), so
//! that concurrent branches observe outcomes in the order they did when the
//! run first executed. An operation with no more recorded events goes live
//! only once the whole journal has been consumed.
//!
//! Replaying costs O(1) per event and allocates nothing per operation, so
//! resuming a run is linear in its journal's length.

use std::fmt;

use crate::journal::{Event, EventKind};

/// The kind of a durable operation, used to detect non-determinism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Step,
    Sleep,
    Now,
}

/// An operation as the code requests it or the journal records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpDescriptor<'a> {
    pub(crate) kind: OpKind,
    pub(crate) name: &'a str,
}

impl fmt::Display for OpDescriptor<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            OpKind::Step => write!(f, "step `{}`", self.name),
            OpKind::Sleep => f.write_str("a sleep"),
            OpKind::Now => f.write_str("a clock read (`now()`)"),
        }
    }
}

fn descriptor_of(kind: &EventKind) -> Option<OpDescriptor<'_>> {
    match kind {
        EventKind::StepStarted { step, .. } => Some(OpDescriptor {
            kind: OpKind::Step,
            name: step,
        }),
        EventKind::WaitCreated { .. } => Some(OpDescriptor {
            kind: OpKind::Sleep,
            name: "",
        }),
        EventKind::TimeRecorded { .. } => Some(OpDescriptor {
            kind: OpKind::Now,
            name: "",
        }),
        _ => None,
    }
}

const NONE: u32 = u32::MAX;

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
    /// Operation events in journal order; `None` once consumed.
    events: Vec<Option<EventKind>>,
    /// The journal sequence number of each event (for messages).
    seqs: Vec<u64>,
    /// For each event, the index of the next event of the same operation.
    next_of_op: Vec<u32>,
    /// For each operation (by number), the index of its next unconsumed
    /// event. Operation numbers are dense, so a vector does.
    heads: Vec<u32>,
    /// The first unconsumed event.
    cursor: usize,
}

impl Replay {
    /// Builds the replay state from a run's journal.
    ///
    /// # Errors
    ///
    /// A message when an operation's first event is not one that creates an
    /// operation (the journal is inconsistent).
    pub(crate) fn new(journal: Vec<Event>) -> Result<Self, String> {
        let mut replay = Replay::default();
        // Operation numbers come from call order; a number far beyond the
        // journal's length can only come from a damaged row.
        let limit = journal.len().saturating_mul(8).saturating_add(4096);
        let mut tails: Vec<u32> = Vec::new();
        for event in journal {
            let Some(op) = event.kind.op() else { continue };
            let slot = op as usize;
            if slot >= limit {
                return Err(format!(
                    "journal event {} refers to operation #{op}, far beyond the journal's length",
                    event.seq
                ));
            }
            if slot >= tails.len() {
                tails.resize(slot + 1, NONE);
                replay.heads.resize(slot + 1, NONE);
            }
            let index = replay.events.len() as u32;
            match std::mem::replace(&mut tails[slot], index) {
                NONE => {
                    if descriptor_of(&event.kind).is_none() {
                        return Err(format!(
                            "journal event {} (`{}`) refers to operation #{op}, which no earlier event created",
                            event.seq,
                            event.kind.name()
                        ));
                    }
                    replay.heads[slot] = index;
                }
                tail => replay.next_of_op[tail as usize] = index,
            }
            replay.events.push(Some(event.kind));
            replay.seqs.push(event.seq);
            replay.next_of_op.push(NONE);
        }
        Ok(replay)
    }

    /// Whether every recorded event has been consumed.
    pub(crate) fn is_done(&self) -> bool {
        self.cursor == self.events.len()
    }

    fn head(&self, op: u32) -> Option<usize> {
        self.heads
            .get(op as usize)
            .copied()
            .filter(|&i| i != NONE)
            .map(|i| i as usize)
    }

    /// Checks that the journal recorded `requested` as operation `op` (or
    /// nothing); on a mismatch, says what it recorded.
    pub(crate) fn check(&self, op: u32, requested: OpDescriptor<'_>) -> Result<(), String> {
        let Some(recorded) = self
            .head(op)
            .and_then(|i| self.events[i].as_ref())
            .and_then(descriptor_of)
        else {
            return Ok(());
        };
        if recorded == requested {
            Ok(())
        } else {
            Err(format!(
                "operation #{op} was recorded as {recorded}, but the code now requests {requested}"
            ))
        }
    }

    /// The operation that owns the next event to consume.
    pub(crate) fn cursor_op(&self) -> Option<u32> {
        self.events
            .get(self.cursor)
            .and_then(|e| e.as_ref())
            .and_then(EventKind::op)
    }

    /// A description of the next event to consume, for error messages.
    pub(crate) fn describe_cursor(&self) -> Option<String> {
        let event = self.events.get(self.cursor)?.as_ref()?;
        let op = event.op()?;
        Some(format!(
            "operation #{op} (journal event {} `{}`)",
            self.seqs[self.cursor],
            event.name()
        ))
    }

    /// Offers operation `op` its next event if that event is next in the
    /// journal.
    pub(crate) fn take(&mut self, op: u32) -> Take {
        match self.head(op) {
            Some(i) if i == self.cursor => Take::Event(self.consume(op, i)),
            Some(_) => Take::Wait,
            None if self.is_done() => Take::Live,
            None => Take::Wait,
        }
    }

    /// Takes operation `op`'s next event wherever it is (for operations that
    /// complete synchronously, such as reading the clock).
    pub(crate) fn take_any(&mut self, op: u32) -> Option<EventKind> {
        let i = self.head(op)?;
        Some(self.consume(op, i))
    }

    fn consume(&mut self, op: u32, i: usize) -> EventKind {
        self.heads[op as usize] = self.next_of_op[i];
        let kind = self.events[i].take().expect("an unconsumed event");
        while self.cursor < self.events.len() && self.events[self.cursor].is_none() {
            self.cursor += 1;
        }
        kind
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
    fn mismatches_name_both_operations() {
        let r = Replay::new(vec![ev(1, started(0, "charge"))]).unwrap();
        assert!(
            r.check(
                0,
                OpDescriptor {
                    kind: OpKind::Step,
                    name: "charge"
                }
            )
            .is_ok()
        );
        assert!(
            r.check(
                5,
                OpDescriptor {
                    kind: OpKind::Sleep,
                    name: ""
                }
            )
            .is_ok()
        );
        let err = r
            .check(
                0,
                OpDescriptor {
                    kind: OpKind::Sleep,
                    name: "",
                },
            )
            .unwrap_err();
        assert_eq!(
            err,
            "operation #0 was recorded as step `charge`, but the code now requests a sleep"
        );
    }

    #[test]
    fn orphan_events_are_rejected() {
        let err = Replay::new(vec![ev(3, completed(0))]).unwrap_err();
        assert!(err.contains("operation #0"), "{err}");
    }

    #[test]
    fn out_of_order_takes_advance_the_cursor_past_consumed_events() {
        let mut r = Replay::new(vec![
            ev(1, started(0, "a")),
            ev(
                2,
                EventKind::TimeRecorded {
                    op: 1,
                    time: Timestamp::from_millis(5),
                },
            ),
            ev(3, completed(0)),
        ])
        .unwrap();
        assert!(matches!(
            r.take_any(1),
            Some(EventKind::TimeRecorded { .. })
        ));
        assert!(matches!(r.take(0), Take::Event(_)));
        assert!(matches!(
            r.take(0),
            Take::Event(EventKind::StepCompleted { .. })
        ));
        assert!(r.is_done());
    }
}
