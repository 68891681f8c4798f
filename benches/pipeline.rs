//! Group `pipeline`: the in-process part of the pipeline, no Kafka and no
//! network: record bytes in, encoded protobuf batches out.
//!
//! - `transforms_to_protobuf`: records in Kafka-sized batches (1000, the
//!   source's `batch_max_records` default) through normalize, enrich and
//!   classify, each event encoded straight to protobuf bytes
//!   (`keytrail_proto::EventArena`, what the gRPC sink's encoder does) and
//!   framed into `ForwardRequest` batches of 500 (the sink's
//!   `batch_max_events` default) in a reused buffer;
//! - `transforms_to_protobuf_via_message`: the same, converting each event
//!   to a `keytrail.v1.Event` message first and encoding that with prost
//!   (what the sink did before), for the ratio;
//! - `serde_json_value_parse_only`: the same baseline as in `normalize`,
//!   so this group reads as a ratio too;
//! - `receiver_to_json`: the other end of the feed, the reference
//!   receiver's work per request (prepared outside the timing): decoded
//!   straight into core events (`keytrail_proto::ForwardMessage`), their
//!   contract JSON written to a reused buffer;
//! - `receiver_to_json_via_message`: the same through prost's generated
//!   `ForwardRequest` and `Event::try_from` (the receiver before).
//!
//! Throughput is in corpus lines for every case, so the receiver's figures
//! compare with the sender's directly.
//!
//! The full loopback path (Kafka mock cluster → `keytrail run` → gRPC
//! receiver) is the `loopback` bench. Corpus: see
//! `keytrail_benches::corpus`.

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keytrail_core::{AckToken, Batch, RecordMeta, Transform};
use keytrail_proto::{ForwardFrame, v1};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::Normalizer;
use prost::Message;

use keytrail_benches::{EVENTS_PER_REQUEST, RECORDS_PER_BATCH};

fn pipeline(c: &mut Criterion) {
    let lines = keytrail_benches::corpus();
    let normalizer = Normalizer::default();
    let enricher = Enricher::new();
    let classifier = Classifier::new();
    let meta = RecordMeta::default();

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("serde_json_value_parse_only", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = black_box(serde_json::from_slice::<serde_json::Value>(line));
            }
        });
    });
    let mut wire = Vec::with_capacity(4 << 20);
    for direct in [true, false] {
        let name = if direct {
            "transforms_to_protobuf"
        } else {
            "transforms_to_protobuf_via_message"
        };
        group.bench_function(name, |b| {
            let mut arena = keytrail_proto::EventArena::default();
            b.iter(|| {
                let mut sequence = 0u64;
                let mut sent = 0usize;
                for records in lines.chunks(RECORDS_PER_BATCH) {
                    let mut batch = Batch::new(AckToken::detached());
                    batch.events.reserve(records.len());
                    for record in records {
                        normalizer.normalize_record(record, &meta, &mut batch);
                    }
                    enricher.transform(&mut batch);
                    classifier.transform(&mut batch);
                    for events in batch.events.chunks(EVENTS_PER_REQUEST) {
                        sequence += 1;
                        wire.clear();
                        // Encoding into a Vec only fails when it cannot grow.
                        let _ = if direct {
                            ForwardFrame::Batch {
                                sequence,
                                events: events.iter().map(|e| arena.encode(e)).collect(),
                            }
                            .encode(&mut wire)
                        } else {
                            v1::ForwardRequest {
                                kind: Some(v1::forward_request::Kind::Batch(v1::EventBatch {
                                    sequence,
                                    events: events.iter().map(v1::Event::from).collect(),
                                })),
                            }
                            .encode(&mut wire)
                        };
                        sent += wire.len();
                    }
                }
                black_box(sent);
            });
        });
    }
    let requests = keytrail_benches::feed_requests(&lines);
    let mut out = Vec::with_capacity(keytrail_benches::total_bytes(&lines) * 2);
    group.bench_function("receiver_to_json", |b| {
        b.iter(|| black_box(keytrail_benches::receive(&requests, &mut out)));
    });
    group.bench_function("receiver_to_json_via_message", |b| {
        b.iter(|| black_box(keytrail_benches::receive_via_message(&requests, &mut out)));
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
