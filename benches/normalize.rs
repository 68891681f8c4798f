//! Group `normalize`: keytrail's normalize + enrich + classify per event,
//! beside two baselines that parse the same bytes, so each figure reads as
//! a ratio:
//!
//! - `serde_json_value_parse_only`: a generic pipeline's first step, a
//!   `serde_json::Value` tree, nothing else;
//! - `sonic_rs_value_parse_only`: the fastest validating JSON parser we
//!   found (`sonic-rs`, SIMD), into its own `Value` tree;
//! - `keytrail_normalize_enrich_classify`: the three transforms, the event
//!   kept in memory;
//! - `serde_json_value_roundtrip` beside `keytrail_full_to_json`: parse and
//!   write back compactly, against the transforms plus the contract JSON
//!   through serde (what `keytrail normalize` does per line today) and
//!   `keytrail_full_to_json_direct`, the same bytes from
//!   `Event::write_json`.
//!
//! Throughput is declared in events (lines); `BENCHMARKS.md` converts to
//! bytes. Corpus: see `keytrail_benches::corpus`.

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keytrail_core::{RecordMeta, Transform};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::Normalizer;

fn normalize(c: &mut Criterion) {
    let lines = keytrail_benches::corpus();
    let bytes = keytrail_benches::total_bytes(&lines);
    let normalizer = Normalizer::default();
    let enricher = Enricher::new();
    let classifier = Classifier::new();
    let meta = RecordMeta::default();

    let mut group = c.benchmark_group("normalize");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("serde_json_value_parse_only", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = black_box(serde_json::from_slice::<serde_json::Value>(line));
            }
        });
    });
    group.bench_function("sonic_rs_value_parse_only", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = black_box(sonic_rs::from_slice::<sonic_rs::Value>(line));
            }
        });
    });
    group.bench_function("keytrail_normalize_enrich_classify", |b| {
        b.iter(|| {
            for line in &lines {
                if let Ok(mut event) = normalizer.normalize_line(line, &meta) {
                    enricher.apply(&mut event);
                    classifier.apply(&mut event);
                    black_box(&event);
                }
            }
        });
    });
    let mut out = Vec::with_capacity(bytes * 2);
    group.bench_function("serde_json_value_roundtrip", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                if let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) {
                    let _ = serde_json::to_writer(&mut out, &value);
                    out.push(b'\n');
                }
            }
            black_box(out.len());
        });
    });
    group.bench_function("keytrail_full_to_json", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                if let Ok(mut event) = normalizer.normalize_line(line, &meta) {
                    enricher.apply(&mut event);
                    classifier.apply(&mut event);
                    let _ = serde_json::to_writer(&mut out, &event);
                    out.push(b'\n');
                }
            }
            black_box(out.len());
        });
    });
    group.bench_function("keytrail_full_to_json_direct", |b| {
        b.iter(|| {
            out.clear();
            for line in &lines {
                if let Ok(mut event) = normalizer.normalize_line(line, &meta) {
                    enricher.apply(&mut event);
                    classifier.apply(&mut event);
                    event.write_json(&mut out);
                    out.push(b'\n');
                }
            }
            black_box(out.len());
        });
    });
    group.finish();
}

criterion_group!(benches, normalize);
criterion_main!(benches);
