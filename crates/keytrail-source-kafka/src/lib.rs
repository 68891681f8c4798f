//! The Kafka source of keytrail and its dead-letter output: the
//! at-least-once spine of the pipeline.
//!
//! ```text
//! Kafka ──► KafkaSource ──RawBatch──► normalize ─► … ─► sinks
//!              ▲                                         │
//!              └──── AckToken resolved by every sink ◄───┘
//! ```
//!
//! - [`KafkaSource`]: a consumer group (rdkafka `StreamConsumer`) that
//!   batches records, pauses when the pipeline is full, and commits only
//!   the highest contiguous delivered offset of each partition
//!   ([`tracker`]); see `source` for rebalance and shutdown.
//! - [`DeadLetterWriter`] and [`dead_letter::run`]: records that cannot be
//!   normalized go to a Kafka topic or an NDJSON file with their reason and
//!   origin, and count as delivered only once the write is confirmed.
//! - [`KafkaConfig`] / [`DeadLetterConfig`]: `[kafka]` and `[dead_letter]`,
//!   with any librdkafka property passed through.

mod config;
pub mod dead_letter;
mod source;
mod telemetry;
pub mod tracker;

pub use config::{DeadLetterConfig, KafkaConfig, KafkaConfigError, is_secret_property};
pub use dead_letter::{DeadLetterError, DeadLetterWriter};
pub use source::{KafkaSource, SourceContext, SourceError, SourceStats};
