//! The benches of group `normalize` (see `normalize.rs`), shared by the
//! bench binaries that run them on the system allocator and on mimalloc.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use keytrail_core::{Event, RecordMeta, Transform};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::Normalizer;

/// How a bench writes one event's contract JSON.
type WriteJson = fn(&Event, &mut Vec<u8>);

/// The group's benches under the name `name`.
pub fn run(c: &mut Criterion, name: &str) {
    let lines = keytrail_benches::corpus();
    let bytes = keytrail_benches::total_bytes(&lines);
    let normalizer = Normalizer::default();
    let enricher = Enricher::new();
    let classifier = Classifier::new();
    let meta = RecordMeta::default();

    let mut group = c.benchmark_group(name);
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
    let writers: [(&str, WriteJson); 2] = [
        ("keytrail_full_to_json", |event, out| {
            let _ = serde_json::to_writer(out, event);
        }),
        ("keytrail_full_to_json_direct", |event, out| {
            event.write_json(out)
        }),
    ];
    for (name, write) in writers {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for line in &lines {
                    if let Ok(mut event) = normalizer.normalize_line(line, &meta) {
                        enricher.apply(&mut event);
                        classifier.apply(&mut event);
                        write(&event, &mut out);
                        out.push(b'\n');
                    }
                }
                black_box(out.len());
            });
        });
    }
    group.finish();
}
