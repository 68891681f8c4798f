//! The benches of group `normalize` (see `normalize.rs`), shared by the
//! bench binaries that run them on the system allocator and on mimalloc.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use keytrail_benches::Transforms;
use keytrail_core::Event;
use keytrail_transform_normalize::Texts;

/// How a bench writes one event's contract JSON, given what its texts
/// need.
type WriteJson = fn(Texts, &Event, &mut Vec<u8>);

/// The group's benches under the name `name`.
pub fn run(c: &mut Criterion, name: &str) {
    let lines = keytrail_benches::corpus();
    let bytes = keytrail_benches::total_bytes(&lines);
    let transforms = Transforms::new();

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("serde_json_value_parse_only", |b| {
        b.iter(|| keytrail_benches::value_parse_pass(&lines));
    });
    group.bench_function("sonic_rs_value_parse_only", |b| {
        b.iter(|| keytrail_benches::sonic_parse_pass(&lines));
    });
    group.bench_function("keytrail_normalize_enrich_classify", |b| {
        b.iter(|| transforms.pass(&lines));
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
        ("keytrail_full_to_json", |_, event, out| {
            let _ = serde_json::to_writer(out, event);
        }),
        ("keytrail_full_to_json_direct", |texts, event, out| {
            texts.write_json(event, out)
        }),
    ];
    for (name, write) in writers {
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for line in &lines {
                    transforms.with_event(line, |event, texts| {
                        write(texts, event, &mut out);
                        out.push(b'\n');
                    });
                }
                black_box(out.len());
            });
        });
    }
    group.finish();
}
