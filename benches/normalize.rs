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
//!   through serde (how `keytrail normalize` wrote events before the
//!   direct writer) and
//!   `keytrail_full_to_json_direct`, the same bytes written directly as
//!   `keytrail normalize` writes them (plain texts copied as they are).
//!
//! Throughput is declared in events (lines); `BENCHMARKS.md` converts to
//! bytes. Corpus: see `keytrail_benches::corpus`.

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "normalize_group.rs"]
mod group;

fn normalize(c: &mut Criterion) {
    group::run(c, "normalize");
}

criterion_group!(benches, normalize);
criterion_main!(benches);
