//! Batching, the in-flight window and acknowledgement bookkeeping, shared
//! by both protocols.
//!
//! Input batches (the events of one pipeline batch and one share of its
//! [`AckToken`]) are cut into wire batches by count, bytes and linger. A
//! wire batch keeps, for each input batch it holds events of, a *part*:
//! the shared events, the index range, and a clone of that input's token.
//! So a wire batch spanning several input batches holds several tokens,
//! and an input batch split over several wire batches has a clone in each;
//! the input's own share is acked once its last event is placed, which
//! hands the delivery decision to the clones.
//!
//! A sealed wire batch gets the next sequence number and enters the
//! window, which holds at most `max_in_flight` batches; while it is full no
//! more input is taken. A batch leaves the window only when the receiver
//! answers it:
//! - accepted: every part's token is acked;
//! - rejected for good: every part goes to the dead-letter output as a
//!   [`DeadLetterBatch`] carrying that part's token, which the output acks
//!   after writing;
//! - anything else (retryable rejection, timeout, lost connection): the
//!   batch stays and is sent again.
//!
//! An event whose encoding alone passes [`MAX_BATCH_BYTES`] could never be
//! sent (receivers refuse such messages) and would block everything behind
//! it; it goes straight to the dead-letter output instead, with its token.
//!
//! Nothing here does I/O except handing rejected events to the dead-letter
//! channel. Dropping the queue drops every token it holds, which fails them:
//! an event never counts as delivered because the forwarder stopped.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use keytrail_core::{
    AckToken, DeadLetter, DeadLetterBatch, DeadLetterReason, Event, Events, SharedEvents,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::MAX_BATCH_BYTES;
use crate::telemetry::{self, RejectKind};

/// Batch and window sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Events per batch.
    pub(crate) max_events: usize,
    /// Encoded bytes per batch (a single larger event goes alone).
    pub(crate) max_bytes: usize,
    /// How long a batch that is not full may wait for more events.
    pub(crate) linger: Duration,
    /// Sealed batches not yet answered.
    pub(crate) max_in_flight: usize,
}

/// Turns an event into what a protocol puts on the wire.
pub(crate) trait Encoder: Send + 'static {
    /// One event on the wire.
    type Item: Clone + Send + 'static;

    /// Converts an event.
    fn encode(&mut self, event: &Event) -> Self::Item;

    /// The event at `index`, already converted on the transform thread
    /// (see [`keytrail_core::Prepare`]); `None` when it was not.
    fn prepared(_events: &Events, _index: usize) -> Option<Self::Item> {
        None
    }

    /// The item's encoded length, without the field framing.
    fn encoded_len(item: &Self::Item) -> usize;
}

/// What the sink sends its forwarder task.
#[derive(Debug)]
pub(crate) enum Command {
    /// The events of one input batch and its acknowledgement share.
    Events {
        /// The events.
        events: SharedEvents,
        /// The share to resolve once they are delivered.
        ack: AckToken,
    },
    /// Answer when everything taken so far is resolved.
    Flush(oneshot::Sender<()>),
}

/// The input batch being cut.
struct Input {
    events: SharedEvents,
    next: usize,
    ack: AckToken,
}

/// The events of one input batch inside a wire batch.
struct Part {
    events: SharedEvents,
    range: Range<usize>,
    ack: AckToken,
}

/// A sealed wire batch.
pub(crate) struct WireBatch<T> {
    /// Its sequence number, from 1.
    pub(crate) sequence: u64,
    /// The encoded events.
    pub(crate) items: Vec<T>,
    parts: Vec<Part>,
    /// How many times it was sent.
    pub(crate) sends: u32,
    /// When it was last sent; `None` while it waits to be (re)sent.
    pub(crate) sent_at: Option<Instant>,
    /// Not to be resent before this time (a backoff).
    not_before: Option<Instant>,
}

impl<T> WireBatch<T> {
    /// Number of events.
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

struct Building<T> {
    items: Vec<T>,
    parts: Vec<Part>,
    bytes: usize,
    since: Option<Instant>,
}

impl<T> Building<T> {
    fn new() -> Building<T> {
        Building {
            items: Vec::new(),
            parts: Vec::new(),
            bytes: 0,
            since: None,
        }
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// An encoded event waiting for room in a batch.
struct Spare<T> {
    item: T,
    len: usize,
    index: usize,
}

/// See the module docs.
pub(crate) struct Queue<E: Encoder> {
    encoder: E,
    limits: Limits,
    input: Option<Input>,
    spare: Option<Spare<E::Item>>,
    building: Building<E::Item>,
    window: VecDeque<WireBatch<E::Item>>,
    /// Events too large for any batch, waiting for the dead-letter output.
    oversized: Vec<Part>,
    next_sequence: u64,
    flushes: Vec<oneshot::Sender<()>>,
    closed: bool,
    dead_letters: mpsc::Sender<DeadLetterBatch>,
}

impl<E: Encoder> Queue<E> {
    pub(crate) fn new(
        encoder: E,
        limits: Limits,
        dead_letters: mpsc::Sender<DeadLetterBatch>,
    ) -> Queue<E> {
        Queue {
            encoder,
            limits,
            input: None,
            spare: None,
            building: Building::new(),
            window: VecDeque::with_capacity(limits.max_in_flight),
            oversized: Vec::new(),
            next_sequence: 1,
            flushes: Vec::new(),
            closed: false,
            dead_letters,
        }
    }

    /// True when the next command may be taken: the input is open, the
    /// previous input batch is fully placed and the window has room.
    pub(crate) fn wants_input(&self) -> bool {
        !self.closed && self.input.is_none() && self.window.len() < self.limits.max_in_flight
    }

    /// Takes a command; `None` means the sink is gone (no more input).
    pub(crate) fn take(&mut self, command: Option<Command>) {
        match command {
            None => self.closed = true,
            Some(Command::Events { events, ack }) if events.is_empty() => ack.ack(),
            Some(Command::Events { events, ack }) => {
                self.input = Some(Input {
                    events,
                    next: 0,
                    ack,
                });
            }
            Some(Command::Flush(done)) => self.flushes.push(done),
        }
    }

    /// Places input events into batches and seals batches that are full,
    /// have lingered long enough, or are flushed, as long as the window
    /// has room.
    pub(crate) fn fill(&mut self, now: Instant) {
        loop {
            if self.building.items.len() >= self.limits.max_events && !self.seal() {
                return;
            }
            let spare = match self.spare.take() {
                Some(spare) => spare,
                None => match self.next_event() {
                    Some(spare) => spare,
                    None => break,
                },
            };
            if !self.building.is_empty()
                && self.building.bytes + spare.len > self.limits.max_bytes
                && !self.seal()
            {
                self.spare = Some(spare);
                return;
            }
            self.push(spare, now);
        }
        let due = self
            .building
            .since
            .is_some_and(|since| now >= since + self.limits.linger);
        if !self.building.is_empty() && (due || !self.flushes.is_empty()) {
            self.seal();
        }
    }

    /// Encodes the next event of the input; finishes the input when it is
    /// fully placed. Events too large for any batch are set aside.
    fn next_event(&mut self) -> Option<Spare<E::Item>> {
        loop {
            let input = self.input.as_mut()?;
            let Some(event) = input.events.get(input.next) else {
                // Every event is in a part holding its own clone of the
                // token: this share's job is done, and the batch's status
                // now depends on the clones alone.
                if let Some(input) = self.input.take() {
                    input.ack.ack();
                }
                return None;
            };
            let item = match E::prepared(&input.events, input.next) {
                Some(item) => item,
                None => self.encoder.encode(event),
            };
            let len = E::encoded_len(&item);
            let index = input.next;
            input.next += 1;
            if len > MAX_BATCH_BYTES {
                self.oversized.push(Part {
                    events: Arc::clone(&input.events),
                    range: index..index + 1,
                    ack: input.ack.clone(),
                });
                continue;
            }
            return Some(Spare {
                item,
                // Field key and length prefix of a repeated message field.
                len: len + prost::length_delimiter_len(len) + 1,
                index,
            });
        }
    }

    fn push(&mut self, spare: Spare<E::Item>, now: Instant) {
        let Some(input) = &self.input else {
            return;
        };
        let same_part = self.building.parts.last().is_some_and(|part| {
            Arc::ptr_eq(&part.events, &input.events) && part.range.end == spare.index
        });
        match self.building.parts.last_mut() {
            Some(part) if same_part => part.range.end += 1,
            _ => self.building.parts.push(Part {
                events: Arc::clone(&input.events),
                range: spare.index..spare.index + 1,
                ack: input.ack.clone(),
            }),
        }
        self.building.items.push(spare.item);
        self.building.bytes += spare.len;
        self.building.since.get_or_insert(now);
    }

    /// Moves the batch being built into the window; false when the window
    /// is full.
    fn seal(&mut self) -> bool {
        if self.window.len() >= self.limits.max_in_flight {
            return false;
        }
        if self.building.is_empty() {
            return true;
        }
        let building = std::mem::replace(&mut self.building, Building::new());
        self.window.push_back(WireBatch {
            sequence: self.next_sequence,
            items: building.items,
            parts: building.parts,
            sends: 0,
            sent_at: None,
            not_before: None,
        });
        self.next_sequence += 1;
        telemetry::in_flight(self.window.len());
        true
    }

    /// When the batch being built must be sealed, if the window has room.
    pub(crate) fn linger_deadline(&self) -> Option<Instant> {
        if self.window.len() >= self.limits.max_in_flight {
            return None;
        }
        self.building.since.map(|since| since + self.limits.linger)
    }

    /// Batches waiting to be sent whose backoff, if any, is over, oldest
    /// first. The caller sends each and calls [`Queue::mark_sent`].
    pub(crate) fn due(&self, now: Instant) -> Vec<u64> {
        self.window
            .iter()
            .filter(|b| b.sent_at.is_none() && b.not_before.is_none_or(|t| t <= now))
            .map(|b| b.sequence)
            .collect()
    }

    /// The batch with this sequence number, if it is in the window.
    pub(crate) fn get(&self, sequence: u64) -> Option<&WireBatch<E::Item>> {
        self.window.iter().find(|b| b.sequence == sequence)
    }

    /// Records that a batch was written to the receiver.
    pub(crate) fn mark_sent(&mut self, sequence: u64, now: Instant) {
        if let Some(batch) = self.window.iter_mut().find(|b| b.sequence == sequence) {
            batch.sends += 1;
            batch.sent_at = Some(now);
            batch.not_before = None;
            telemetry::batch_sent(sequence, batch.len(), batch.sends > 1);
        }
    }

    /// Every unanswered batch must be sent again (a new feed stream).
    pub(crate) fn mark_all_unsent(&mut self) {
        for batch in &mut self.window {
            batch.sent_at = None;
        }
    }

    /// The batch must be sent again, not before `at` (OTLP retry).
    pub(crate) fn retry_at(&mut self, sequence: u64, at: Instant) {
        if let Some(batch) = self.window.iter_mut().find(|b| b.sequence == sequence) {
            batch.sent_at = None;
            batch.not_before = Some(at);
        }
    }

    /// The earliest end of a backoff still running.
    pub(crate) fn next_retry(&self) -> Option<Instant> {
        self.window
            .iter()
            .filter(|b| b.sent_at.is_none())
            .filter_map(|b| b.not_before)
            .min()
    }

    /// The oldest unanswered batch, if any.
    pub(crate) fn front(&self) -> Option<&WireBatch<E::Item>> {
        self.window.front()
    }

    /// The sequence number a new feed stream starts with.
    pub(crate) fn first_unanswered(&self) -> u64 {
        self.window
            .front()
            .map_or(self.next_sequence, |b| b.sequence)
    }

    /// Number of unanswered batches.
    pub(crate) fn in_flight(&self) -> usize {
        self.window.len()
    }

    fn remove(&mut self, sequence: u64) -> Option<WireBatch<E::Item>> {
        let at = self.window.iter().position(|b| b.sequence == sequence)?;
        let batch = self.window.remove(at);
        telemetry::in_flight(self.window.len());
        batch
    }

    /// The receiver accepted the batch: its tokens are acked.
    pub(crate) fn accept(&mut self, sequence: u64, now: Instant) {
        let Some(batch) = self.remove(sequence) else {
            return;
        };
        let round_trip = batch
            .sent_at
            .map(|sent| now.saturating_duration_since(sent));
        telemetry::batch_accepted(sequence, batch.len(), round_trip);
        for part in batch.parts {
            part.ack.ack();
        }
    }

    /// The receiver rejected the batch for good: its events go to the
    /// dead-letter output with `reason`, each part with its token.
    pub(crate) async fn reject(&mut self, sequence: u64, reason: &str) {
        let Some(batch) = self.remove(sequence) else {
            return;
        };
        telemetry::batch_rejected(sequence, batch.len(), RejectKind::Permanent, reason);
        for part in batch.parts {
            self.dead_letter(part, reason).await;
        }
    }

    /// Sends the events set aside as too large to the dead-letter output.
    pub(crate) async fn reject_oversized(&mut self) {
        for part in std::mem::take(&mut self.oversized) {
            telemetry::oversized_event(part.range.start);
            let reason = format!("event larger than the {MAX_BATCH_BYTES}-byte grpc message limit");
            self.dead_letter(part, &reason).await;
        }
    }

    async fn dead_letter(&self, part: Part, reason: &str) {
        let letters = part.events[part.range.clone()]
            .iter()
            .map(|event| DeadLetter {
                reason: DeadLetterReason::Rejected,
                detail: Some(reason.to_owned()),
                origin: event.origin.clone(),
                line: 1,
                // Serializing an event cannot fail: every map key is a
                // string and no field has a failing serializer.
                payload: serde_json::to_vec(event).unwrap_or_default(),
            })
            .collect();
        let letters = DeadLetterBatch {
            letters,
            ack: part.ack,
        };
        if let Err(refused) = self.dead_letters.send(letters).await {
            // Dropping the batch fails its token: replayed, not lost.
            telemetry::dead_letter_output_closed(refused.0.letters.len());
        }
    }

    /// True when nothing is held: no input, nothing batched, nothing
    /// unanswered.
    pub(crate) fn is_idle(&self) -> bool {
        self.input.is_none()
            && self.spare.is_none()
            && self.oversized.is_empty()
            && self.building.is_empty()
            && self.window.is_empty()
    }

    /// True when the input is closed and everything was resolved.
    pub(crate) fn is_done(&self) -> bool {
        self.closed && self.is_idle()
    }

    /// Answers flush requests once everything taken is resolved.
    pub(crate) fn check_flushes(&mut self) {
        self.flushes.retain(|done| !done.is_closed());
        if self.is_idle() {
            for done in self.flushes.drain(..) {
                // The caller may have stopped waiting.
                let _ = done.send(());
            }
        }
    }
}

impl<E: Encoder> Drop for Queue<E> {
    fn drop(&mut self) {
        if !self.is_idle() {
            let held = self.window.len() + usize::from(!self.building.is_empty());
            telemetry::abandoned(held);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use keytrail_core::{BatchStatus, Source, Timestamp};

    use super::*;

    /// Items are the event's action; its length is the encoded length.
    struct Actions;

    impl Encoder for Actions {
        type Item = String;

        fn encode(&mut self, event: &Event) -> String {
            event.action.to_string()
        }

        fn prepared(events: &Events, index: usize) -> Option<String> {
            events.prepared::<Shout, Vec<String>>()?.get(index).cloned()
        }

        fn encoded_len(item: &String) -> usize {
            if item == "huge" {
                MAX_BATCH_BYTES + 1
            } else {
                item.len()
            }
        }
    }

    type Statuses = Arc<Mutex<Vec<(usize, BatchStatus)>>>;

    fn input(id: usize, actions: &[&str], statuses: &Statuses) -> Command {
        let seen = Arc::clone(statuses);
        let events = actions
            .iter()
            .map(|a| Event::new(Timestamp::from_millis(0), Source::IbmCloud, (*a).into()))
            .collect();
        Command::Events {
            events: Arc::new(events),
            ack: AckToken::new(move |s| seen.lock().expect("lock").push((id, s))),
        }
    }

    fn queue(max_events: usize, max_bytes: usize, max_in_flight: usize) -> Queue<Actions> {
        let (tx, _rx) = mpsc::channel(1);
        Queue::new(
            Actions,
            Limits {
                max_events,
                max_bytes,
                linger: Duration::from_millis(100),
                max_in_flight,
            },
            tx,
        )
    }

    fn items(queue: &Queue<Actions>) -> Vec<Vec<String>> {
        queue.window.iter().map(|b| b.items.clone()).collect()
    }

    #[test]
    fn batches_are_cut_by_count_and_tokens_follow_the_parts() {
        let statuses = Statuses::default();
        let mut q = queue(2, 1024, 8);
        let now = Instant::now();
        q.take(Some(input(1, &["a", "b", "c"], &statuses)));
        q.fill(now);
        assert!(q.wants_input(), "input 1 fully placed");
        assert_eq!(items(&q), [vec!["a", "b"]], "c waits for more");
        q.take(Some(input(2, &["d"], &statuses)));
        q.fill(now);
        assert_eq!(items(&q), [vec!["a", "b"], vec!["c", "d"]]);
        assert_eq!(q.window[1].parts.len(), 2, "spans two inputs");

        q.accept(1, now);
        assert!(statuses.lock().expect("lock").is_empty(), "c is unanswered");
        q.accept(2, now);
        let mut seen = statuses.lock().expect("lock").clone();
        seen.sort_by_key(|(id, _)| *id);
        assert_eq!(
            seen,
            [(1, BatchStatus::Delivered), (2, BatchStatus::Delivered)]
        );
        assert!(q.is_idle());
    }

    #[test]
    fn a_batch_that_is_not_full_is_sealed_after_the_linger() {
        let statuses = Statuses::default();
        let mut q = queue(10, 1024, 8);
        let now = Instant::now();
        q.take(Some(input(1, &["a"], &statuses)));
        q.fill(now);
        assert!(items(&q).is_empty());
        assert_eq!(q.linger_deadline(), Some(now + Duration::from_millis(100)));
        q.fill(now + Duration::from_millis(99));
        assert!(items(&q).is_empty());
        q.fill(now + Duration::from_millis(100));
        assert_eq!(items(&q), [vec!["a"]]);
        assert_eq!(q.linger_deadline(), None);
    }

    #[test]
    fn batches_are_cut_by_bytes_and_a_large_event_goes_alone() {
        let statuses = Statuses::default();
        let mut q = queue(100, 10, 8);
        let now = Instant::now();
        // Each item costs its length + 2 framing bytes.
        q.take(Some(input(
            1,
            &["abc", "def", "0123456789abc", "g"],
            &statuses,
        )));
        q.fill(now);
        q.fill(now + Duration::from_secs(1));
        assert_eq!(
            items(&q),
            [vec!["abc", "def"], vec!["0123456789abc"], vec!["g"]]
        );
    }

    #[test]
    fn a_full_window_stops_the_input_and_dropping_fails_the_tokens() {
        let statuses = Statuses::default();
        let mut q = queue(1, 1024, 2);
        let now = Instant::now();
        q.take(Some(input(1, &["a", "b", "c"], &statuses)));
        q.fill(now);
        assert_eq!(items(&q), [vec!["a"], vec!["b"]]);
        assert!(!q.wants_input(), "window full");
        assert_eq!(q.linger_deadline(), None);
        q.accept(1, now);
        q.fill(now);
        assert_eq!(items(&q), [vec!["b"], vec!["c"]]);
        drop(q);
        assert_eq!(*statuses.lock().expect("lock"), [(1, BatchStatus::Failed)]);
    }

    #[test]
    fn flush_seals_at_once_and_answers_when_idle() {
        let statuses = Statuses::default();
        let mut q = queue(10, 1024, 2);
        let now = Instant::now();
        let (done, mut answered) = oneshot::channel();
        q.take(Some(input(1, &["a"], &statuses)));
        q.take(Some(Command::Flush(done)));
        q.fill(now);
        assert_eq!(items(&q), [vec!["a"]], "sealed without waiting");
        q.check_flushes();
        assert!(answered.try_recv().is_err(), "not yet acknowledged");
        q.accept(1, now);
        q.check_flushes();
        assert!(answered.try_recv().is_ok());
    }

    #[test]
    fn empty_inputs_are_delivered_at_once() {
        let statuses = Statuses::default();
        let mut q = queue(10, 1024, 2);
        q.take(Some(input(7, &[], &statuses)));
        assert_eq!(
            *statuses.lock().expect("lock"),
            [(7, BatchStatus::Delivered)]
        );
        assert!(q.is_idle());
    }

    /// Shouts the actions, on the transform thread.
    #[derive(Debug)]
    struct Shout;

    impl keytrail_core::Prepare for Shout {
        fn prepare(&self, events: &[Event]) -> Box<dyn std::any::Any + Send + Sync> {
            let shouted: Vec<String> = (events.iter())
                .map(|e| e.action.as_str().to_ascii_uppercase())
                .collect();
            Box::new(shouted)
        }
    }

    #[test]
    fn events_prepared_on_the_transform_thread_are_not_encoded_again() {
        let statuses = Statuses::default();
        let mut q = queue(10, 1024, 2);
        let now = Instant::now();
        let Command::Events { events, ack } = input(1, &["a", "b"], &statuses) else {
            unreachable!("input makes events");
        };
        let steps: Vec<Arc<dyn keytrail_core::Prepare>> = vec![Arc::new(Shout)];
        let prepared = keytrail_core::Prepared::run(&steps, &events);
        let events = Events::new(events.to_vec()).with_prepared(prepared);
        q.take(Some(Command::Events {
            events: Arc::new(events),
            ack,
        }));
        q.fill(now);
        q.take(Some(input(2, &["c"], &statuses)));
        q.fill(now);
        assert!(q.seal());
        assert_eq!(
            items(&q),
            [vec!["A", "B", "c"]],
            "prepared where the batch came with it, encoded here where not"
        );
    }

    #[tokio::test]
    async fn rejected_batches_become_dead_letters_with_their_tokens() {
        let statuses = Statuses::default();
        let (tx, mut rx) = mpsc::channel(4);
        let mut q = Queue::new(
            Actions,
            Limits {
                max_events: 3,
                max_bytes: 1024,
                linger: Duration::ZERO,
                max_in_flight: 4,
            },
            tx,
        );
        let now = Instant::now();
        q.take(Some(input(1, &["a"], &statuses)));
        q.fill(now);
        q.take(Some(input(2, &["b", "c"], &statuses)));
        q.fill(now);
        assert_eq!(items(&q), [vec!["a"], vec!["b", "c"]]);
        q.reject(2, "bad batch").await;
        let letters = rx.recv().await.expect("dead letters");
        assert_eq!(letters.letters.len(), 2);
        assert_eq!(letters.letters[0].reason, DeadLetterReason::Rejected);
        assert_eq!(letters.letters[0].detail.as_deref(), Some("bad batch"));
        assert!(String::from_utf8_lossy(&letters.letters[1].payload).contains(r#""action":"c""#));
        assert!(statuses.lock().expect("lock").is_empty());
        letters.ack.ack();
        assert_eq!(
            *statuses.lock().expect("lock"),
            [(2, BatchStatus::Delivered)]
        );
        assert_eq!(q.first_unanswered(), 1);
    }

    #[tokio::test]
    async fn an_event_too_large_for_any_batch_is_dead_lettered_alone() {
        let statuses = Statuses::default();
        let (tx, mut rx) = mpsc::channel(4);
        let mut q = Queue::new(
            Actions,
            Limits {
                max_events: 10,
                max_bytes: 1024,
                linger: Duration::ZERO,
                max_in_flight: 4,
            },
            tx,
        );
        q.take(Some(input(1, &["a", "huge", "b"], &statuses)));
        q.fill(Instant::now());
        assert_eq!(items(&q), [vec!["a", "b"]]);
        assert!(!q.is_idle());
        q.reject_oversized().await;
        let letters = rx.recv().await.expect("dead letters");
        assert_eq!(letters.letters.len(), 1);
        assert!(
            String::from_utf8_lossy(&letters.letters[0].payload).contains(r#""action":"huge""#)
        );
        letters.ack.ack();
        q.accept(1, Instant::now());
        assert!(q.is_idle());
        assert_eq!(
            *statuses.lock().expect("lock"),
            [(1, BatchStatus::Delivered)]
        );
    }
}
