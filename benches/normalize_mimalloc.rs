//! Group `normalize_mimalloc`: the benches of group `normalize` with the
//! process on mimalloc, the allocator the `keytrail` binary ships with.
//! Both the transforms and the baselines use it, so the ratios read as
//! they would for a pipeline built on a fast allocator (Vector ships
//! jemalloc). The `Value` parse allocates about 53 times per line and the
//! transforms about 8, so the baseline gains more.

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "normalize_group.rs"]
mod group;

fn normalize_mimalloc(c: &mut Criterion) {
    group::run(c, "normalize_mimalloc");
}

criterion_group!(benches, normalize_mimalloc);
criterion_main!(benches);
