//! Offset tracking: which offsets may be committed.
//!
//! The rule is at-least-once's: an offset is committed only when every
//! record of its partition up to it has been acknowledged by every sink (or
//! written to the dead-letter output). Batches are acknowledged in any order;
//! each partition keeps its in-flight batches in consumption order and its
//! committable position advances only over a contiguous run of delivered
//! batches. A later success never commits past an earlier failure.
//!
//! A failed batch makes its partitions replay: the tracker returns the
//! position to seek back to (the first offset not known delivered) and
//! starts a new *generation* for the partition, so the acknowledgements of
//! batches still in flight from before the seek are ignored.
//!
//! Pure bookkeeping, no I/O: the source calls it and does the Kafka work.

use std::collections::VecDeque;

use keytrail_core::{BatchStatus, Topic};
use rustc_hash::FxHashMap as HashMap;

/// A topic partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Topic name.
    pub topic: Topic,
    /// Partition number.
    pub partition: i32,
}

impl PartitionKey {
    /// A key for `topic`/`partition`.
    pub fn new(topic: impl Into<Topic>, partition: i32) -> PartitionKey {
        PartitionKey {
            topic: topic.into(),
            partition,
        }
    }
}

/// Identifies a registered batch.
pub type BatchId = u64;

#[derive(Debug)]
struct Inflight {
    batch: BatchId,
    /// One past the batch's last offset in this partition.
    end: i64,
    done: bool,
}

#[derive(Debug, Default)]
struct PartitionState {
    generation: u32,
    /// Everything below this offset is delivered (or was never ours).
    committable: Option<i64>,
    /// The last position handed out for commit.
    committed: Option<i64>,
    inflight: VecDeque<Inflight>,
}

impl PartitionState {
    fn advance(&mut self) {
        while self.inflight.front().is_some_and(|f| f.done) {
            if let Some(front) = self.inflight.pop_front() {
                self.committable = Some(self.committable.map_or(front.end, |c| c.max(front.end)));
            }
        }
    }
}

/// What a failed batch asks of the source: seek these partitions back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The partition.
    pub key: PartitionKey,
    /// The offset to consume again from.
    pub offset: i64,
}

/// Per-partition commit bookkeeping. See the module docs.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<PartitionKey, PartitionState>,
    batches: HashMap<BatchId, Vec<(PartitionKey, u32)>>,
    next_batch: BatchId,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> OffsetTracker {
        OffsetTracker::default()
    }

    /// A partition was assigned to this consumer.
    pub fn assign(&mut self, key: PartitionKey) {
        self.partitions.entry(key).or_default();
    }

    /// A partition was revoked: forget it, and return the position to
    /// commit for it if it advanced since the last commit.
    pub fn revoke(&mut self, key: &PartitionKey) -> Option<i64> {
        let state = self.partitions.remove(key)?;
        state
            .committable
            .filter(|c| state.committed.is_none_or(|done| *c > done))
    }

    /// True when the partition is assigned.
    pub fn is_assigned(&self, key: &PartitionKey) -> bool {
        self.partitions.contains_key(key)
    }

    /// A record at `offset` was consumed: the first one seen sets the
    /// partition's starting position (everything before it is not ours).
    /// False, and nothing noted, when the partition is not assigned.
    pub fn observe(&mut self, key: &PartitionKey, offset: i64) -> bool {
        let Some(state) = self.partitions.get_mut(key) else {
            return false;
        };
        if state.committable.is_none() {
            state.committable = Some(offset);
        }
        true
    }

    /// Registers a batch that holds, per partition, records up to `end - 1`.
    /// Partitions that are no longer assigned are left out.
    pub fn register(&mut self, parts: impl IntoIterator<Item = (PartitionKey, i64)>) -> BatchId {
        let id = self.next_batch;
        self.next_batch += 1;
        let mut members = Vec::new();
        for (key, end) in parts {
            if let Some(state) = self.partitions.get_mut(&key) {
                state.inflight.push_back(Inflight {
                    batch: id,
                    end,
                    done: false,
                });
                members.push((key, state.generation));
            }
        }
        self.batches.insert(id, members);
        id
    }

    /// A batch was resolved. Returns the partitions to replay when it failed.
    pub fn resolve(&mut self, id: BatchId, status: BatchStatus) -> Vec<Replay> {
        let Some(members) = self.batches.remove(&id) else {
            return Vec::new();
        };
        let mut replays = Vec::new();
        for (key, generation) in members {
            let Some(state) = self.partitions.get_mut(&key) else {
                continue;
            };
            if state.generation != generation {
                continue;
            }
            match status {
                BatchStatus::Delivered => {
                    if let Some(entry) = state.inflight.iter_mut().find(|f| f.batch == id) {
                        entry.done = true;
                    }
                    state.advance();
                }
                BatchStatus::Failed => {
                    state.advance();
                    // `committable` is set by the first record observed, so it
                    // is known whenever a batch was registered.
                    let offset = state.committable.or(state.committed);
                    state.generation = state.generation.wrapping_add(1);
                    state.inflight.clear();
                    if let Some(offset) = offset {
                        replays.push(Replay { key, offset });
                    }
                }
            }
        }
        replays
    }

    /// Positions to commit now (only partitions that advanced), marked as
    /// committed.
    pub fn take_commits(&mut self) -> Vec<(PartitionKey, i64)> {
        let mut out = Vec::new();
        for (key, state) in &mut self.partitions {
            if let Some(position) = state.committable
                && state.committed.is_none_or(|done| position > done)
            {
                state.committed = Some(position);
                out.push((key.clone(), position));
            }
        }
        out.sort();
        out
    }

    /// A commit handed out by [`take_commits`](Self::take_commits) failed:
    /// it will be handed out again.
    pub fn commit_failed(&mut self, commits: &[(PartitionKey, i64)]) {
        for (key, position) in commits {
            if let Some(state) = self.partitions.get_mut(key)
                && state.committed == Some(*position)
            {
                state.committed = None;
            }
        }
    }

    /// Batches in flight that hold records of `key`.
    pub fn in_flight(&self, key: &PartitionKey) -> usize {
        self.partitions.get(key).map_or(0, |s| s.inflight.len())
    }

    /// Batches registered and not yet resolved.
    pub fn batches_in_flight(&self) -> usize {
        self.batches.len()
    }

    /// The last position handed out for commit, per partition.
    pub fn committed(&self) -> Vec<(PartitionKey, i64)> {
        let mut out: Vec<_> = self
            .partitions
            .iter()
            .filter_map(|(k, s)| s.committed.map(|c| (k.clone(), c)))
            .collect();
        out.sort();
        out
    }

    /// Assigned partitions.
    pub fn assigned(&self) -> Vec<PartitionKey> {
        let mut keys: Vec<_> = self.partitions.keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: i32) -> PartitionKey {
        PartitionKey::new("audit", n)
    }

    fn tracker(partitions: &[i32]) -> OffsetTracker {
        let mut t = OffsetTracker::new();
        for n in partitions {
            t.assign(p(*n));
        }
        t
    }

    /// Consumes offsets `from..to` of partition `n` as one batch.
    fn batch(t: &mut OffsetTracker, n: i32, from: i64, to: i64) -> BatchId {
        for offset in from..to {
            t.observe(&p(n), offset);
        }
        t.register([(p(n), to)])
    }

    #[test]
    fn commits_only_a_contiguous_run_of_delivered_batches() {
        let mut t = tracker(&[0]);
        let first = batch(&mut t, 0, 0, 10);
        let second = batch(&mut t, 0, 10, 20);
        let third = batch(&mut t, 0, 20, 30);
        t.resolve(third, BatchStatus::Delivered);
        t.resolve(second, BatchStatus::Delivered);
        assert_eq!(
            t.take_commits(),
            [(p(0), 0)],
            "nothing past the first batch"
        );
        t.resolve(first, BatchStatus::Delivered);
        assert_eq!(t.take_commits(), [(p(0), 30)]);
        assert!(t.take_commits().is_empty(), "no commit without progress");
    }

    #[test]
    fn a_later_success_never_commits_past_an_earlier_failure() {
        let mut t = tracker(&[0]);
        let first = batch(&mut t, 0, 0, 10);
        let second = batch(&mut t, 0, 10, 20);
        let third = batch(&mut t, 0, 20, 30);
        t.resolve(first, BatchStatus::Delivered);
        let replays = t.resolve(second, BatchStatus::Failed);
        assert_eq!(
            replays,
            [Replay {
                key: p(0),
                offset: 10
            }]
        );
        t.resolve(third, BatchStatus::Delivered);
        assert_eq!(t.take_commits(), [(p(0), 10)], "stops at the failed batch");
        // The replay starts a new generation: offsets 10.. come again.
        let again = batch(&mut t, 0, 10, 30);
        t.resolve(again, BatchStatus::Delivered);
        assert_eq!(t.take_commits(), [(p(0), 30)]);
    }

    #[test]
    fn batches_spanning_partitions_commit_each_partition() {
        let mut t = tracker(&[0, 1]);
        t.observe(&p(0), 5);
        t.observe(&p(1), 100);
        let both = t.register([(p(0), 8), (p(1), 103)]);
        let only_one = batch(&mut t, 1, 103, 110);
        t.resolve(only_one, BatchStatus::Delivered);
        assert_eq!(t.take_commits(), [(p(0), 5), (p(1), 100)]);
        t.resolve(both, BatchStatus::Delivered);
        assert_eq!(t.take_commits(), [(p(0), 8), (p(1), 110)]);
    }

    #[test]
    fn revocation_returns_the_final_position_and_forgets_the_partition() {
        let mut t = tracker(&[0, 1]);
        let a = batch(&mut t, 0, 0, 4);
        let b = batch(&mut t, 1, 0, 4);
        t.resolve(a, BatchStatus::Delivered);
        assert_eq!(t.revoke(&p(0)), Some(4));
        assert!(!t.is_assigned(&p(0)));
        // A late ack for a forgotten partition is ignored.
        t.resolve(b, BatchStatus::Delivered);
        assert_eq!(t.take_commits(), [(p(1), 4)]);
        assert_eq!(t.revoke(&p(1)), None, "already committed");
    }

    #[test]
    fn failed_commits_are_retried() {
        let mut t = tracker(&[0]);
        let a = batch(&mut t, 0, 0, 3);
        t.resolve(a, BatchStatus::Delivered);
        let commits = t.take_commits();
        t.commit_failed(&commits);
        assert_eq!(t.take_commits(), commits);
    }

    #[test]
    fn late_acks_from_before_a_replay_are_ignored() {
        let mut t = tracker(&[0]);
        let a = batch(&mut t, 0, 0, 10);
        let b = batch(&mut t, 0, 10, 20);
        assert_eq!(
            t.resolve(a, BatchStatus::Failed),
            [Replay {
                key: p(0),
                offset: 0
            }]
        );
        t.resolve(b, BatchStatus::Delivered);
        assert_eq!(
            t.take_commits(),
            [(p(0), 0)],
            "b belongs to the old generation"
        );
        assert_eq!(t.in_flight(&p(0)), 0);
    }

    #[test]
    fn counts_batches_in_flight() {
        let mut t = tracker(&[0]);
        let a = batch(&mut t, 0, 0, 1);
        let _b = batch(&mut t, 0, 1, 2);
        assert_eq!((t.batches_in_flight(), t.in_flight(&p(0))), (2, 2));
        t.resolve(a, BatchStatus::Delivered);
        assert_eq!((t.batches_in_flight(), t.in_flight(&p(0))), (1, 1));
    }
}
