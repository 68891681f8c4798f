//! Group `normalize`: keytrail's normalize + enrich + classify per event,
//! beside a generic pipeline's first step (`serde_json::Value` parse only)
//! on the same bytes, so each figure reads as a ratio.
//!
//! Corpus: `benches/data/corpus.jsonl`, written by `make bench` with
//! `keytrail gen --seed 1` (set `KEYTRAIL_BENCH_CORPUS` to use another file).

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keytrail_core::{RecordMeta, Transform};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::Normalizer;

fn corpus() -> Vec<Vec<u8>> {
    let path = std::env::var("KEYTRAIL_BENCH_CORPUS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/data/corpus.jsonl").to_owned());
    let text = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read the bench corpus {path} ({e}); run `make bench`"));
    text.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn normalize(c: &mut Criterion) {
    let lines = corpus();
    let bytes: usize = lines.iter().map(Vec::len).sum();
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
    group.finish();
}

criterion_group!(benches, normalize);
criterion_main!(benches);
