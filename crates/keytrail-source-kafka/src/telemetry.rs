//! Everything the Kafka source and the dead-letter output report, in one
//! place: metrics through the `metrics` facade and log lines through
//! `tracing`. Label values come from closed sets or from the topic and
//! partition numbers; no record content, user name or secret is ever used.

use keytrail_core::DeadLetter;
use metrics::{counter, gauge};

use crate::dead_letter::DeadLetterError;
use crate::tracker::PartitionKey;

pub(crate) fn records_consumed(topic: &str, n: u64) {
    counter!("keytrail_kafka_records_consumed_total", "topic" => topic.to_owned()).increment(n);
}

pub(crate) fn committed(positions: &[(PartitionKey, i64)]) {
    counter!("keytrail_kafka_commits_total", "result" => "ok").increment(1);
    for (key, offset) in positions {
        gauge!("keytrail_kafka_committed_offset", "topic" => key.topic.to_string(), "partition" => key.partition.to_string())
            .set(*offset as f64);
    }
    tracing::debug!(partitions = positions.len(), "offsets committed");
}

pub(crate) fn commit_failed(error: &rdkafka::error::KafkaError) {
    counter!("keytrail_kafka_commits_total", "result" => "error").increment(1);
    tracing::warn!(%error, "offset commit failed; it will be retried");
}

pub(crate) fn lag(topic: &str, partition: i32, lag: i64) {
    gauge!("keytrail_kafka_consumer_lag", "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag.max(0) as f64);
}

pub(crate) fn rebalance(kind: &'static str, partitions: usize) {
    counter!("keytrail_kafka_rebalances_total", "kind" => kind).increment(1);
    tracing::info!(kind, partitions, "rebalance");
}

pub(crate) fn paused(paused: bool, partitions: usize) {
    gauge!("keytrail_kafka_paused_partitions").set(if paused { partitions as f64 } else { 0.0 });
    if paused {
        tracing::debug!(partitions, "pipeline full: partitions paused");
    } else {
        tracing::debug!(partitions, "pipeline has room: partitions resumed");
    }
}

pub(crate) fn replay(key: &PartitionKey, offset: i64) {
    counter!("keytrail_kafka_replays_total").increment(1);
    tracing::warn!(topic = %key.topic, partition = key.partition, offset, "a batch was not delivered: replaying the partition from the first undelivered offset");
}

pub(crate) fn consumer_error(error: &rdkafka::error::KafkaError) {
    counter!("keytrail_stage_errors_total", "stage" => "source").increment(1);
    tracing::warn!(%error, "kafka consumer error");
}

pub(crate) fn dead_lettered(letters: &[DeadLetter]) {
    for letter in letters {
        counter!("keytrail_dead_letters_total", "reason" => letter.reason.label()).increment(1);
    }
}

pub(crate) fn dead_letter_write_failed(error: &DeadLetterError) {
    counter!("keytrail_stage_errors_total", "stage" => "dead_letter").increment(1);
    tracing::warn!(error = %error, "dead-letter write failed; retrying");
}

pub(crate) fn offset_gap(key: &PartitionKey, expected: i64, got: i64) {
    counter!("keytrail_kafka_offset_gaps_total", "topic" => key.topic.to_string()).increment(1);
    // Compaction and transaction markers leave gaps on purpose; retention
    // deleting records a lagging consumer had not read yet does too.
    tracing::debug!(topic = %key.topic, partition = key.partition, expected, got, "offset gap");
}
