//! The consumer-group source.
//!
//! One rdkafka `StreamConsumer` per process, in a consumer group over one or
//! more topics. Records are gathered into batches (by count and linger),
//! each batch gets an [`AckToken`] whose resolution comes back to the source,
//! and the [`OffsetTracker`] decides what may be committed. The loop:
//!
//! - **commits** on an interval, asynchronously, only positions the tracker
//!   hands out (never a synchronous commit per record);
//! - **backpressure**: when the pipeline's first channel is full and a
//!   batch is ready, it stops taking records: librdkafka's prefetch queue,
//!   bounded by `queued.max.messages.kbytes`, holds what was fetched and
//!   the fetcher waits. Only if the pipeline stays full for
//!   `pause_after_ms` (a SIEM outage, not a busy moment) does it pause
//!   every assigned partition and keep polling, so that group events are
//!   served and the group does not rebalance; it resumes once the channel
//!   is half empty again. Pausing is not the first resort because
//!   librdkafka drops the prefetched records of a paused partition and
//!   takes about a second after the resume to fetch again;
//! - **replays** a partition from its first undelivered offset when a batch
//!   failed;
//! - **rebalances**: on revocation it drops the records of the revoked
//!   partitions it has not sent yet, waits (bounded) for their in-flight
//!   batches, commits synchronously and lets them go; assigned partitions
//!   start from their committed offset;
//! - **shuts down** by sending what it holds, closing its channel (so every
//!   stage drains), waiting (bounded) for the last acknowledgements and
//!   committing synchronously.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc as std_mpsc};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::FutureExt as _;
use keytrail_core::{
    AckToken, BatchStatus, Origin, RawBatch, RawRecord, RecordMeta, Timestamp, Topic,
};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, error::KafkaResult};
use rustc_hash::FxHashMap as HashMap;
use tokio::runtime::RuntimeFlavor;
use tokio::sync::{Notify, mpsc};
use tokio::time::MissedTickBehavior;

use crate::config::KafkaConfig;
use crate::telemetry;
use crate::tracker::{BatchId, OffsetTracker, PartitionKey, Replay};

/// Why the source could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The consumer could not be created.
    #[error("cannot create the kafka consumer")]
    Create(#[source] rdkafka::error::KafkaError),
    /// The subscription failed.
    #[error("cannot subscribe to kafka topics")]
    Subscribe(#[source] rdkafka::error::KafkaError),
}

/// Counters an embedder (or a test) can read while the source runs; the
/// same facts also go to the metrics.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Records consumed from Kafka.
    pub records: AtomicU64,
    /// True while the partitions are paused for backpressure.
    pub paused: AtomicBool,
    /// How often partitions were paused.
    pub pauses: AtomicU64,
    /// Partition assignments received.
    pub assignments: AtomicU64,
    /// Partition revocations received.
    pub revocations: AtomicU64,
    /// Successful commits.
    pub commits: AtomicU64,
    /// Partitions sought back to replay a failed batch.
    pub replays: AtomicU64,
}

/// State shared by the consumer loop and the rebalance callbacks (which run
/// inside the consumer's poll, on the loop's own task).
struct State {
    tracker: OffsetTracker,
    /// Partitions a failed batch sends back, not sought yet.
    replays: Vec<Replay>,
    /// Records consumed but not yet sent downstream; their values are in
    /// the source's [`RecordCopier`].
    pending: Vec<PendingRecord>,
    /// Per partition, the offset after the last record taken, to notice
    /// gaps (compaction, transaction markers, retention overtaking a lagging
    /// group).
    next_offsets: HashMap<PartitionKey, i64>,
    paused: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Acknowledgements of the batches sent downstream. Never locked
    /// while `state` is held.
    acks: Mutex<std_mpsc::Receiver<(BatchId, BatchStatus)>>,
    stats: Arc<SourceStats>,
    /// Positions whose asynchronous commit failed, to hand out again.
    failed_commits: Mutex<Vec<(PartitionKey, i64)>>,
    revocation_timeout: Duration,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain bookkeeping behind; keep
    // going with it rather than poisoning the whole source.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    /// Drops the pending (not yet sent) records of these partitions: they
    /// will be consumed again from their replay or committed position.
    fn forget_pending(&mut self, keys: &[PartitionKey]) {
        self.pending.retain(|r| {
            r.meta.origin.as_ref().is_none_or(|o| {
                !keys
                    .iter()
                    .any(|k| k.partition == o.partition && *k.topic == *o.topic)
            })
        });
    }

    /// Applies acknowledgements; the partitions to replay wait in
    /// `replays` for the consumer loop to seek them.
    fn resolve(&mut self, acks: impl IntoIterator<Item = (BatchId, BatchStatus)>) {
        for (id, status) in acks {
            self.replays.extend(self.tracker.resolve(id, status));
        }
    }

    /// Batches of these partitions not yet acknowledged.
    fn in_flight(&self, keys: &[PartitionKey]) -> usize {
        keys.iter().map(|k| self.tracker.in_flight(k)).sum()
    }

    /// Forgets revoked partitions; returns the positions to commit for
    /// them. A revoked partition is not sought again, so its replays go;
    /// the other partitions' replays (a cooperative rebalance keeps them)
    /// stay.
    fn revoke(&mut self, keys: &[PartitionKey]) -> Vec<(PartitionKey, i64)> {
        self.replays.retain(|replay| !keys.contains(&replay.key));
        let mut commits = Vec::new();
        for key in keys {
            self.next_offsets.remove(key);
            if let Some(position) = self.tracker.revoke(key) {
                commits.push((key.clone(), position));
            }
        }
        commits
    }

    /// The replays to seek: each partition's records from its replay
    /// offset on are consumed again, and the ones pending are dropped.
    fn take_replays(&mut self) -> Vec<Replay> {
        let replays = std::mem::take(&mut self.replays);
        for replay in &replays {
            self.next_offsets.insert(replay.key.clone(), replay.offset);
            self.forget_pending(std::slice::from_ref(&replay.key));
        }
        replays
    }
}

impl Shared {
    /// Every acknowledgement that has arrived.
    fn take_acks(&self) -> Vec<(BatchId, BatchStatus)> {
        lock(&self.acks).try_iter().collect()
    }

    /// Waits, until the revocation timeout at most, for the batches in
    /// flight of these partitions; returns how many are still out.
    ///
    /// The wait blocks the thread that polls the consumer (rebalance
    /// callbacks run inside its poll). It sleeps on the acknowledgement
    /// channel, so it ends as soon as the last one arrives. On a
    /// multi-thread runtime the worker's other tasks move to another
    /// thread meanwhile (`block_in_place`). On a current-thread runtime
    /// they cannot run, so acknowledgements that depend on them arrive
    /// only after the timeout.
    fn settle_in_flight(&self, keys: &[PartitionKey]) -> usize {
        let deadline = Instant::now() + self.revocation_timeout;
        let mut arrived = None;
        loop {
            let waiting = {
                let acks = self.take_acks();
                let mut state = lock(&self.state);
                state.resolve(arrived.take().into_iter().chain(acks));
                state.in_flight(keys)
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if waiting == 0 || left.is_zero() {
                return waiting;
            }
            match blocking(|| lock(&self.acks).recv_timeout(left)) {
                Ok(ack) => arrived = Some(ack),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                // The source holds a sender for as long as it runs.
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return waiting,
            }
        }
    }
}

/// Runs `wait`, which blocks, without holding up a multi-thread runtime's
/// other tasks; elsewhere (a current-thread runtime, no runtime) it just
/// runs.
fn blocking<T>(wait: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// The consumer context: rebalance, commit and statistics callbacks.
pub struct SourceContext {
    shared: Arc<Shared>,
}

impl ClientContext for SourceContext {
    fn stats(&self, statistics: Statistics) {
        let committed: HashMap<PartitionKey, i64> = {
            let state = lock(&self.shared.state);
            state.tracker.committed().into_iter().collect()
        };
        for (topic, stats) in &statistics.topics {
            for (partition, p) in &stats.partitions {
                let key = PartitionKey::new(topic.as_str(), *partition);
                if let Some(position) = committed.get(&key)
                    && p.hi_offset >= 0
                {
                    telemetry::lag(topic, *partition, p.hi_offset - position);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(revoked) = rebalance else {
            return;
        };
        telemetry::rebalance("revoke", revoked.count());
        self.shared
            .stats
            .revocations
            .fetch_add(1, Ordering::Relaxed);
        let keys: Vec<PartitionKey> = revoked
            .elements()
            .iter()
            .map(|e| PartitionKey::new(e.topic(), e.partition()))
            .collect();
        lock(&self.shared.state).forget_pending(&keys);
        // Wait (bounded) for the revoked partitions' batches in flight. The
        // other stages run on other threads; acknowledgements arrive on the
        // channel meanwhile.
        let waiting = self.shared.settle_in_flight(&keys);
        if waiting > 0 {
            tracing::warn!(
                batches = waiting,
                "revocation timed out waiting for in-flight batches; they will be replayed by the next owner"
            );
        }
        let commits = lock(&self.shared.state).revoke(&keys);
        for key in &keys {
            telemetry::lag(&key.topic, key.partition, 0);
        }
        if !commits.is_empty() {
            match consumer.commit(&to_list(&commits), CommitMode::Sync) {
                Ok(()) => {
                    self.shared.stats.commits.fetch_add(1, Ordering::Relaxed);
                    telemetry::committed(&commits);
                }
                Err(error) => telemetry::commit_failed(&error),
            }
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(assigned) = rebalance else {
            return;
        };
        telemetry::rebalance("assign", assigned.count());
        self.shared
            .stats
            .assignments
            .fetch_add(1, Ordering::Relaxed);
        let mut state = lock(&self.shared.state);
        for e in assigned.elements() {
            state
                .tracker
                .assign(PartitionKey::new(e.topic(), e.partition()));
        }
        if state.paused && assigned.count() > 0 {
            // The pipeline is still full: new partitions wait too.
            if let Err(error) = consumer.pause(assigned) {
                telemetry::consumer_error(&error);
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        if let Err(error) = result {
            telemetry::commit_failed(&error);
            let mut failed = lock(&self.shared.failed_commits);
            for e in offsets.elements() {
                if let Offset::Offset(position) = e.offset() {
                    failed.push((PartitionKey::new(e.topic(), e.partition()), position));
                }
            }
        }
    }
}

fn to_list(positions: &[(PartitionKey, i64)]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (key, position) in positions {
        // Adding a fresh partition to a new list cannot fail.
        let _ = list.add_partition_offset(&key.topic, key.partition, Offset::Offset(*position));
    }
    list
}

/// The Kafka source. See the module docs.
pub struct KafkaSource {
    consumer: StreamConsumer<SourceContext>,
    shared: Arc<Shared>,
    ack_tx: std_mpsc::Sender<(BatchId, BatchStatus)>,
    notify: Arc<Notify>,
    copier: RecordCopier,
    config: KafkaConfig,
}

impl KafkaSource {
    /// Creates the consumer and subscribes to the configured topics.
    pub fn new(config: &KafkaConfig) -> Result<KafkaSource, SourceError> {
        KafkaSource::with_stats(config, Arc::default())
    }

    /// Like [`KafkaSource::new`], reporting into `stats`.
    pub fn with_stats(
        config: &KafkaConfig,
        stats: Arc<SourceStats>,
    ) -> Result<KafkaSource, SourceError> {
        let (ack_tx, acks) = std_mpsc::channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                tracker: OffsetTracker::new(),
                replays: Vec::new(),
                pending: Vec::new(),
                next_offsets: HashMap::default(),
                paused: false,
            }),
            acks: Mutex::new(acks),
            failed_commits: Mutex::new(Vec::new()),
            stats,
            revocation_timeout: Duration::from_millis(config.revocation_timeout_ms),
        });
        let consumer: StreamConsumer<SourceContext> = config
            .consumer_config()
            .create_with_context(SourceContext {
                shared: Arc::clone(&shared),
            })
            .map_err(SourceError::Create)?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(SourceError::Subscribe)?;
        Ok(KafkaSource {
            consumer,
            shared,
            ack_tx,
            notify: Arc::new(Notify::new()),
            copier: RecordCopier::default(),
            config: config.clone(),
        })
    }

    /// Runs until `shutdown` resolves or the output channel closes, then
    /// drains and commits (see the module docs).
    pub async fn run(
        mut self,
        output: mpsc::Sender<RawBatch>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let max_records = self.config.batch_max_records;
        let linger = Duration::from_millis(self.config.batch_linger_ms);
        let mut commit_tick =
            tokio::time::interval(Duration::from_millis(self.config.commit_interval_ms));
        commit_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut linger_deadline: Option<tokio::time::Instant> = None;
        let pause_after = Duration::from_millis(self.config.pause_after_ms);
        // Since when a ready batch has found the pipeline full.
        let mut full_since: Option<tokio::time::Instant> = None;

        loop {
            self.apply_acks();
            let (pending, mut paused) = {
                let state = lock(&self.shared.state);
                (state.pending.len(), state.paused)
            };
            let ready = pending >= max_records
                || (pending > 0
                    && linger_deadline.is_some_and(|d| d <= tokio::time::Instant::now()));
            // Resume only once the channel is at least half empty, so a
            // nearly full pipeline does not flap between pause and resume.
            if paused && output.capacity() * 2 >= output.max_capacity() {
                self.set_paused(false);
                paused = lock(&self.shared.state).paused;
            }
            if !ready {
                // Fullness counts only while a ready batch waits for room.
                full_since = None;
            }
            if ready {
                match output.try_reserve() {
                    Ok(permit) => {
                        permit.send(self.take_batch(max_records));
                        linger_deadline = None;
                        full_since = None;
                        continue;
                    }
                    Err(mpsc::error::TrySendError::Full(())) => {
                        let since = *full_since.get_or_insert_with(tokio::time::Instant::now);
                        if !paused && since.elapsed() >= pause_after {
                            self.set_paused(true);
                            paused = lock(&self.shared.state).paused;
                            if !paused {
                                // The pause failed (logged): try again after
                                // another pause_after_ms, not in a spin.
                                full_since = Some(tokio::time::Instant::now());
                            }
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(())) => break,
                }
            }
            let pause_at = full_since
                .filter(|_| ready && !paused)
                .map(|since| since + pause_after);
            // A full batch waits for the pipeline without taking more; a
            // paused consumer is polled for its group events.
            let take = pending < max_records || paused;
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = self.notify.notified() => {}
                _ = commit_tick.tick() => self.commit(CommitMode::Async),
                permit = output.reserve(), if ready => {
                    let Ok(permit) = permit else { break };
                    permit.send(self.take_batch(max_records));
                    linger_deadline = None;
                    full_since = None;
                }
                () = tokio::time::sleep(RESUME_CHECK), if paused => {}
                () = sleep_until(linger_deadline), if pending > 0 && !ready => {}
                () = sleep_until(pause_at), if pause_at.is_some() => {}
                message = self.consumer.recv(), if take => {
                    // Take what librdkafka already holds without going
                    // round the select for every record.
                    let mut message = Some(message);
                    let mut taken = Taken::default();
                    while let Some(result) = message.take() {
                        match result {
                            Ok(message) => {
                                take_record(&mut self.copier, &self.shared, &message, &mut taken);
                                if linger_deadline.is_none() {
                                    linger_deadline = Some(tokio::time::Instant::now() + linger);
                                }
                            }
                            Err(error) => telemetry::consumer_error(&error),
                        }
                        if taken.pending < max_records {
                            message = self.consumer.recv().now_or_never();
                        }
                    }
                    taken.report(&self.shared.stats);
                }
            }
        }
        self.drain(output).await;
    }

    /// Resolves acknowledged batches, replays failed partitions, retries
    /// failed commits.
    fn apply_acks(&mut self) {
        let replays = {
            let acks = self.shared.take_acks();
            let mut state = lock(&self.shared.state);
            state.resolve(acks);
            state.take_replays()
        };
        for replay in replays {
            telemetry::replay(&replay.key, replay.offset);
            self.shared.stats.replays.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = self.consumer.seek(
                &replay.key.topic,
                replay.key.partition,
                Offset::Offset(replay.offset),
                Timeout::After(Duration::from_secs(5)),
            ) {
                telemetry::consumer_error(&error);
            }
        }
        let failed = std::mem::take(&mut *lock(&self.shared.failed_commits));
        if !failed.is_empty() {
            lock(&self.shared.state).tracker.commit_failed(&failed);
        }
    }

    /// Commits every position that advanced.
    fn commit(&mut self, mode: CommitMode) {
        self.apply_acks();
        let commits = lock(&self.shared.state).tracker.take_commits();
        if commits.is_empty() {
            return;
        }
        match self.consumer.commit(&to_list(&commits), mode) {
            Ok(()) => {
                self.shared.stats.commits.fetch_add(1, Ordering::Relaxed);
                telemetry::committed(&commits);
            }
            Err(error) => {
                telemetry::commit_failed(&error);
                lock(&self.shared.state).tracker.commit_failed(&commits);
            }
        }
    }

    fn set_paused(&mut self, paused: bool) {
        let assignment = match self.consumer.assignment() {
            Ok(list) => list,
            Err(error) => {
                telemetry::consumer_error(&error);
                return;
            }
        };
        let result = if paused {
            self.consumer.pause(&assignment)
        } else {
            // librdkafka resumes each partition from the offset after the
            // last record handed to us (it drops what it had prefetched).
            self.consumer.resume(&assignment)
        };
        match result {
            Ok(()) => {
                lock(&self.shared.state).paused = paused;
                self.shared.stats.paused.store(paused, Ordering::Relaxed);
                if paused {
                    self.shared.stats.pauses.fetch_add(1, Ordering::Relaxed);
                }
                telemetry::paused(paused, assignment.count());
            }
            Err(error) => telemetry::consumer_error(&error),
        }
    }

    /// Takes up to `max` pending records as a batch and registers it.
    fn take_batch(&mut self, max: usize) -> RawBatch {
        let mut state = lock(&self.shared.state);
        let n = state.pending.len().min(max);
        let records = self.copier.batch(&mut state.pending, n);
        let mut ends: HashMap<PartitionKey, i64> = HashMap::default();
        for origin in records.iter().filter_map(|r| r.meta.origin.as_ref()) {
            let end = ends
                .entry(PartitionKey {
                    topic: origin.topic.clone(),
                    partition: origin.partition,
                })
                .or_insert(origin.offset + 1);
            *end = (*end).max(origin.offset + 1);
        }
        let id = state.tracker.register(ends);
        drop(state);
        let ack_tx = self.ack_tx.clone();
        let notify = Arc::clone(&self.notify);
        let ack = AckToken::new(move |status| {
            // The source may be gone at shutdown; nothing to tell then.
            let _ = ack_tx.send((id, status));
            notify.notify_one();
        });
        RawBatch { records, ack }
    }
}

/// One consumed record into the pending batch (unless its partition was
/// revoked meanwhile); notes offset gaps.
fn take_record(
    copier: &mut RecordCopier,
    shared: &Shared,
    message: &BorrowedMessage<'_>,
    taken: &mut Taken,
) {
    let record = copier.record(message);
    taken.count(record.meta.origin.as_ref().map(|o| &o.topic));
    let mut state = lock(&shared.state);
    if let Some(origin) = &record.meta.origin {
        let key = PartitionKey {
            topic: origin.topic.clone(),
            partition: origin.partition,
        };
        if !state.tracker.observe(&key, origin.offset) {
            // A record of a partition revoked meanwhile.
            taken.pending = state.pending.len();
            return;
        }
        match state.next_offsets.get_mut(&key) {
            Some(next) => {
                if origin.offset > *next {
                    telemetry::offset_gap(&key, *next, origin.offset);
                }
                *next = origin.offset + 1;
            }
            None => {
                state.next_offsets.insert(key, origin.offset + 1);
            }
        }
    }
    state.pending.push(record);
    taken.pending = state.pending.len();
}

/// Room taken for record values at a time: a few batches of typical
/// records.
const VALUE_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// A consumed record waiting for its batch.
struct PendingRecord {
    /// Where its value starts in the stream of every value copied so far
    /// (see [`RecordCopier`]).
    start: usize,
    /// The value's length.
    len: usize,
    meta: RecordMeta,
}

/// Copies consumed messages out of librdkafka: the values one after another
/// into chunks of memory, the topic names once (interned).
///
/// When a batch is cut, its records' values are split off the chunk as one
/// `Bytes` and each record's value is a slice of it. A copy costs no
/// allocation and no atomic write; the chunk's reference count (one for
/// every batch cut from the chunk) is incremented once per record, in one
/// run when the batch is cut. A live batch keeps its whole chunk alive;
/// raw batches are dropped once transformed (dead letters copy their
/// line), so a chunk lives no longer than the batches in flight.
#[derive(Default)]
struct RecordCopier {
    topics: HashMap<String, Topic>,
    /// The values not yet taken by a batch, and room for more.
    values: BytesMut,
    /// The stream position of `values`' first byte.
    taken: usize,
}

impl RecordCopier {
    /// One consumed message, copied.
    fn record(&mut self, message: &BorrowedMessage<'_>) -> PendingRecord {
        let value = message.payload().unwrap_or_default();
        PendingRecord {
            start: self.copy(value),
            len: value.len(),
            meta: self.meta(message),
        }
    }

    /// Appends `value`; returns where it starts in the stream.
    fn copy(&mut self, value: &[u8]) -> usize {
        if self.values.capacity() - self.values.len() < value.len() {
            // Also copies the values not yet taken into the new room (a new
            // chunk is normally started when a batch is cut, when few or
            // none are left). The room at least doubles, so a long wait
            // for the next batch does not copy the same values over and
            // over.
            let room = value.len().max(VALUE_CHUNK_BYTES).max(self.values.len());
            self.values.reserve(room);
        }
        let start = self.taken + self.values.len();
        self.values.extend_from_slice(value);
        start
    }

    /// The first `n` pending records (in stream order, as consumed) as a
    /// batch's records, their values in one shared buffer.
    fn batch(&mut self, pending: &mut Vec<PendingRecord>, n: usize) -> Vec<RawRecord> {
        let base = self.taken;
        // Every pending record starts at or after `taken`: values before it
        // were all taken by earlier batches.
        let end = pending[..n].last().map_or(base, |r| r.start + r.len);
        let values = self.values.split_to(end - base).freeze();
        self.taken = end;
        if self.values.capacity() - self.values.len() < VALUE_CHUNK_BYTES / 4 {
            let mut chunk = BytesMut::with_capacity(VALUE_CHUNK_BYTES.max(2 * self.values.len()));
            chunk.extend_from_slice(&self.values);
            self.values = chunk;
        }
        pending
            .drain(..n)
            .map(|r| {
                let from = r.start - base;
                RawRecord {
                    payload: values.slice(from..from + r.len),
                    meta: r.meta,
                }
            })
            .collect()
    }

    fn meta(&mut self, message: &BorrowedMessage<'_>) -> RecordMeta {
        let topic = match self.topics.get(message.topic()) {
            Some(topic) => topic.clone(),
            None => {
                let topic = Topic::interned(message.topic());
                self.topics
                    .insert(message.topic().to_owned(), topic.clone());
                topic
            }
        };
        let mut meta = RecordMeta {
            origin: Some(Origin {
                topic,
                partition: message.partition(),
                offset: message.offset(),
            }),
            timestamp: message.timestamp().to_millis().map(Timestamp::from_millis),
            account: None,
            region: None,
        };
        if let Some(headers) = message.headers() {
            for header in headers.iter() {
                let value = header
                    .value
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .map(str::trim)
                    .filter(|v| !v.is_empty());
                match header.key {
                    "account" => meta.account = value.map(str::to_owned),
                    "region" => meta.region = value.map(str::to_owned),
                    _ => {}
                }
            }
        }
        meta
    }
}

impl KafkaSource {
    /// Shutdown: send what is pending, close the channel, wait (bounded) for
    /// the last acknowledgements, commit synchronously.
    async fn drain(mut self, output: mpsc::Sender<RawBatch>) {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.config.drain_timeout_ms);
        loop {
            let pending = lock(&self.shared.state).pending.len();
            if pending == 0 {
                break;
            }
            match tokio::time::timeout_at(deadline, output.reserve()).await {
                Ok(Ok(permit)) => permit.send(self.take_batch(self.config.batch_max_records)),
                _ => break,
            }
        }
        drop(output);
        loop {
            self.apply_acks();
            let in_flight = lock(&self.shared.state).tracker.batches_in_flight();
            if in_flight == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, self.notify.notified())
                .await
                .is_err()
            {
                tracing::warn!(
                    batches = in_flight,
                    "shutdown timed out waiting for acknowledgements; they will be replayed"
                );
                break;
            }
        }
        self.commit(CommitMode::Sync);
        tracing::info!("kafka source stopped");
    }
}

/// Records taken in one turn of the loop, counted once at its end (a
/// metrics update per record costs a label lookup).
#[derive(Default)]
struct Taken {
    /// Pending records after the last one taken.
    pending: usize,
    /// Records consumed, per run of the same topic.
    topic: Option<Topic>,
    run: u64,
    total: u64,
}

impl Taken {
    fn count(&mut self, topic: Option<&Topic>) {
        self.total += 1;
        match (topic, &self.topic) {
            (Some(topic), Some(current)) if Topic::same_copy(topic, current) => self.run += 1,
            (topic, _) => {
                self.flush_run();
                self.topic = topic.cloned();
                self.run = 1;
            }
        }
    }

    fn flush_run(&mut self) {
        if let Some(topic) = &self.topic {
            telemetry::records_consumed(topic, self.run);
        }
        self.run = 0;
    }

    fn report(mut self, stats: &SourceStats) {
        self.flush_run();
        stats.records.fetch_add(self.total, Ordering::Relaxed);
    }
}

/// How often a paused source checks whether the pipeline has room again.
const RESUME_CHECK: Duration = Duration::from_millis(10);

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shared state with one assigned partition per key, each with a batch
    /// in flight; the sender of the acknowledgements and the batches' ids.
    fn in_flight_shared(
        keys: &[PartitionKey],
        timeout: Duration,
    ) -> (
        Arc<Shared>,
        std_mpsc::Sender<(BatchId, BatchStatus)>,
        Vec<BatchId>,
    ) {
        let mut tracker = OffsetTracker::new();
        let mut ids = Vec::new();
        for key in keys {
            tracker.assign(key.clone());
            assert!(tracker.observe(key, 10));
            ids.push(tracker.register([(key.clone(), 20)]));
        }
        let (ack_tx, acks) = std_mpsc::channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                tracker,
                replays: Vec::new(),
                pending: Vec::new(),
                next_offsets: HashMap::default(),
                paused: false,
            }),
            acks: Mutex::new(acks),
            stats: Arc::default(),
            failed_commits: Mutex::new(Vec::new()),
            revocation_timeout: timeout,
        });
        (shared, ack_tx, ids)
    }

    // A revocation waits on the worker that polls the consumer. With one
    // worker, the task that acknowledges can only run if that worker's
    // other tasks move elsewhere while it waits; without that, the wait
    // would run out its 20 s and report the batch still out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_revocation_wait_leaves_the_runtime_its_worker() {
        let key = PartitionKey::new("audit", 0);
        let (shared, ack_tx, ids) =
            in_flight_shared(std::slice::from_ref(&key), Duration::from_secs(20));
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn({
            let (shared, key) = (Arc::clone(&shared), key.clone());
            async move {
                let _ = started_tx.send(());
                shared.settle_in_flight(std::slice::from_ref(&key))
            }
        });
        started.await.expect("the waiting task runs");
        let id = ids[0];
        let acknowledger = tokio::spawn(async move {
            ack_tx
                .send((id, BatchStatus::Delivered))
                .expect("the source listens");
        });
        assert_eq!(
            waiter.await.expect("no panic"),
            0,
            "the batch was acknowledged"
        );
        acknowledger.await.expect("no panic");
        assert_eq!(lock(&shared.state).tracker.in_flight(&key), 0);
    }

    #[test]
    fn replays_of_revoked_partitions_go_and_the_others_are_sought() {
        let revoked = PartitionKey::new("audit", 0);
        let kept = PartitionKey::new("audit", 1);
        let other = PartitionKey::new("audit", 2);
        let (shared, ack_tx, ids) = in_flight_shared(
            &[revoked.clone(), kept.clone(), other.clone()],
            Duration::from_millis(0),
        );
        // Both batches fail before the wait looks; a zero timeout returns
        // after one look, with the other partition's batch still out.
        ack_tx.send((ids[0], BatchStatus::Failed)).expect("open");
        ack_tx.send((ids[1], BatchStatus::Failed)).expect("open");
        assert_eq!(shared.settle_in_flight(std::slice::from_ref(&revoked)), 0);

        let mut state = lock(&shared.state);
        assert_eq!(state.replays.len(), 2, "{:?}", state.replays);
        let commits = state.revoke(std::slice::from_ref(&revoked));
        assert_eq!(commits, [(revoked.clone(), 10)], "the failed batch's start");
        let pending = |key: &PartitionKey, offset: i64| PendingRecord {
            start: 0,
            len: 0,
            meta: RecordMeta {
                origin: Some(Origin {
                    topic: key.topic.clone(),
                    partition: key.partition,
                    offset,
                }),
                ..RecordMeta::default()
            },
        };
        state.pending = vec![pending(&kept, 25), pending(&other, 25)];
        let replays = state.take_replays();
        assert_eq!(replays.len(), 1, "{replays:?}");
        assert_eq!((&replays[0].key, replays[0].offset), (&kept, 10));
        assert_eq!(state.next_offsets.get(&kept), Some(&10));
        let left: Vec<i32> = state
            .pending
            .iter()
            .filter_map(|r| r.meta.origin.as_ref().map(|o| o.partition))
            .collect();
        assert_eq!(
            left,
            [other.partition],
            "the kept partition's pending records go"
        );
        assert!(state.replays.is_empty());
    }

    #[test]
    fn an_acknowledgement_during_the_wait_ends_it() {
        let keys = [PartitionKey::new("audit", 0), PartitionKey::new("audit", 1)];
        let (shared, ack_tx, ids) = in_flight_shared(&keys, Duration::from_secs(60));
        ack_tx.send((ids[0], BatchStatus::Delivered)).expect("open");
        // The second acknowledgement is sent once the wait holds the
        // channel, which it does while it sleeps in `recv_timeout` (and
        // briefly while it takes what has arrived; then the look that
        // follows finds it instead).
        let sender = std::thread::spawn({
            let shared = Arc::clone(&shared);
            move || {
                while shared.acks.try_lock().is_ok() {
                    std::thread::yield_now();
                }
                ack_tx.send((ids[1], BatchStatus::Delivered)).expect("open");
            }
        });
        assert_eq!(shared.settle_in_flight(&keys), 0);
        sender.join().expect("no panic");
    }

    #[test]
    fn a_batch_takes_its_values_as_one_buffer_and_each_keeps_its_bytes() {
        let mut copier = RecordCopier::default();
        let values: Vec<Vec<u8>> = (0..3000)
            .map(|i| match i % 100 {
                // Empty, and larger than a chunk.
                7 => Vec::new(),
                50 => vec![b'x'; VALUE_CHUNK_BYTES + 1],
                _ => format!("{{\"n\":{i},\"pad\":\"{}\"}}", "p".repeat(i % 900)).into_bytes(),
            })
            .collect();
        let mut pending: Vec<PendingRecord> = Vec::new();
        assert!(copier.batch(&mut pending, 0).is_empty(), "nothing pending");
        let mut batches: Vec<Vec<RawRecord>> = Vec::new();
        let mut copied = values.iter().enumerate();
        // Batches of 1, 7, 300 and 500 records cut while more records wait,
        // and one record forgotten (as a revoked partition's) before its
        // batch is cut.
        for cut in [1usize, 7, 300, 500].into_iter().cycle() {
            pending.extend(
                copied
                    .by_ref()
                    .take(cut + 3)
                    .map(|(i, value)| PendingRecord {
                        start: copier.copy(value),
                        len: value.len(),
                        meta: RecordMeta {
                            timestamp: Some(Timestamp::from_millis(i as i64)),
                            ..RecordMeta::default()
                        },
                    }),
            );
            if batches.len() == 5 {
                pending.remove(1);
            }
            let n = cut.min(pending.len());
            if n == 0 {
                break;
            }
            batches.push(copier.batch(&mut pending, n));
        }
        assert!(pending.is_empty());
        assert!(copier.values.is_empty(), "every value was taken");

        let records: Vec<&RawRecord> = batches.iter().flatten().collect();
        assert_eq!(records.len(), values.len() - 1, "all but the forgotten one");
        for record in &records {
            let i = record.meta.timestamp.expect("set").as_millis() as usize;
            assert_eq!(&record.payload[..], &values[i][..], "record {i}");
        }
        // A batch is one buffer: each value follows the one before in
        // memory, except around the forgotten record, whose bytes stay
        // between its neighbours.
        let follows = |a: &RawRecord, b: &RawRecord| {
            a.payload.is_empty()
                || b.payload.is_empty()
                || a.payload.as_ptr().wrapping_add(a.payload.len()) == b.payload.as_ptr()
        };
        let apart: usize = batches
            .iter()
            .map(|b| b.windows(2).filter(|w| !follows(&w[0], &w[1])).count())
            .sum();
        assert!(apart <= 1, "{apart} breaks within batches");
    }
}
