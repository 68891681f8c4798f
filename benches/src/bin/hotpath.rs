//! `hotpath MODE [PASSES]`: one or more passes of a hot-path step over the
//! bench corpus, for `valgrind --tool=callgrind` and for allocation counts.
//!
//! Modes:
//! - `transforms`: normalize + enrich + classify each line;
//! - `walk`: what the normalizer's reader must do before it keeps anything,
//!   alone: the UTF-8 check and a validating walk over the whole line;
//! - `transforms_batched`: the same work as `keytrail run` arranges it,
//!   each stage over a batch of 1000 records before the next;
//! - `json`: the same, then the contract JSON into a reused buffer through
//!   serde (how `keytrail normalize` wrote events before the direct writer);
//! - `json_direct`: the same bytes written directly, as `keytrail
//!   normalize` writes them (`Event::write_json_plain` for an event whose
//!   texts had no escape, `Event::write_json` otherwise);
//! - `proto`: the `pipeline` bench's path, batches of 1000 records through
//!   the transforms, then `keytrail.v1` batches of 500 encoded with prost;
//! - `otlp`: the same batches as `proto`, each batch's events encoded as
//!   OTLP log records at once (the OTLP protocol's step on the transform
//!   threads), then export requests of 500 records;
//! - `otlp_messages`: the same through prost's `LogRecord` messages built
//!   from `serde_json::Value` (the OTLP protocol before the twelfth round);
//! - `serde_value`: `serde_json::Value` parse only (the baseline);
//! - `receive`: the receiver's side of `proto` (prepared before the
//!   count): each `ForwardRequest` decoded straight into core events and
//!   their contract JSON written, as the reference receiver does;
//! - `receive_via_message`: the same through prost's `ForwardRequest` and
//!   `Event::try_from` (the receiver before the fifth round).
//!
//! The timed work is in the `pass_*` functions, so callgrind can count just
//! it: `valgrind --tool=callgrind --collect-atstart=no
//! --toggle-collect='hotpath::pass_*' target/release/hotpath transforms`.
//! Instructions per event are that total over the corpus's line count.
//! The program itself prints, for the measured passes, the number of
//! lines, events, and allocations and allocated bytes per line, counted by
//! a wrapping global allocator (a handful of instructions per allocation,
//! the same before and after any change).

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use keytrail_benches::Transforms;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

/// The allocator under the passes, counting allocations and their bytes:
/// the system's, or with the `mimalloc` feature the one `keytrail` ships
/// with (`cargo build --release -p keytrail-benches --bin hotpath
/// --features mimalloc`).
struct Counting;

#[cfg(not(feature = "mimalloc"))]
use std::alloc::System as Inner;

#[cfg(feature = "mimalloc")]
use mimalloc::MiMalloc as Inner;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `Inner` with the caller's arguments
// unchanged, so `Inner`'s guarantees carry over; the counters are plain
// atomics and never touch the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded as received (see above).
        unsafe { Inner.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received (see above).
        unsafe { Inner.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: forwarded as received (see above).
        unsafe { Inner.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[inline(never)]
fn pass_transforms(stages: &Transforms, lines: &[Vec<u8>]) -> u64 {
    let mut events = 0;
    for line in lines {
        let kept = stages.with_event(line, |event, _| {
            black_box(event);
        });
        events += u64::from(kept.is_some());
    }
    events
}

/// The reader's floor: each line checked as UTF-8 and walked as JSON,
/// nothing built.
#[inline(never)]
fn pass_walk(stages: &Transforms, lines: &[Vec<u8>]) -> u64 {
    lines
        .iter()
        .map(|line| u64::from(stages.walk(black_box(line))))
        .sum()
}

/// The transforms as `keytrail run` applies them: batches of 1000 records,
/// each stage over the whole batch before the next.
#[inline(never)]
fn pass_transforms_batched(stages: &Transforms, lines: &[Vec<u8>]) -> u64 {
    let mut events = 0;
    for records in lines.chunks(1000) {
        let batch = stages.batch(records);
        events += batch.events.len() as u64;
        black_box(&batch);
    }
    events
}

#[inline(never)]
fn pass_json(stages: &Transforms, lines: &[Vec<u8>], out: &mut Vec<u8>) -> u64 {
    let mut events = 0;
    out.clear();
    for line in lines {
        let written = stages.with_event(line, |event, _| {
            let _ = serde_json::to_writer(&mut *out, event);
            out.push(b'\n');
        });
        events += u64::from(written.is_some());
    }
    black_box(out.len());
    events
}

#[inline(never)]
fn pass_json_direct(stages: &Transforms, lines: &[Vec<u8>], out: &mut Vec<u8>) -> u64 {
    let mut events = 0;
    out.clear();
    for line in lines {
        let written = stages.with_event(line, |event, texts| {
            texts.write_json(event, out);
            out.push(b'\n');
        });
        events += u64::from(written.is_some());
    }
    black_box(out.len());
    events
}

#[inline(never)]
fn pass_proto(stages: &Transforms, lines: &[Vec<u8>], wire: &mut Vec<u8>) -> u64 {
    use prost::Message;
    let mut events = 0;
    let mut sequence = 0;
    let mut arena = keytrail_proto::EventArena::default();
    for records in lines.chunks(1000) {
        let batch = stages.batch(records);
        events += batch.events.len() as u64;
        for chunk in batch.events.chunks(500) {
            sequence += 1;
            let request = keytrail_proto::ForwardFrame::Batch {
                sequence,
                events: chunk.iter().map(|e| arena.encode(e)).collect(),
            };
            wire.clear();
            let _ = request.encode(wire);
            black_box(wire.len());
        }
    }
    events
}

#[inline(never)]
fn pass_otlp(stages: &Transforms, lines: &[Vec<u8>], wire: &mut Vec<u8>) -> u64 {
    use prost::Message;
    let mut events = 0;
    for records in lines.chunks(1000) {
        let batch = stages.batch(records);
        events += batch.events.len() as u64;
        let encoded = keytrail_proto::EncodedEvents::encode_with(&batch.events, 1536, |e, out| {
            keytrail_proto::encode_log_record(e, 1, out);
        });
        for start in (0..encoded.len()).step_by(500) {
            let request = keytrail_proto::LogsFrame {
                records: (start..encoded.len().min(start + 500))
                    .filter_map(|i| encoded.get(i))
                    .collect(),
                ..keytrail_proto::LogsFrame::default()
            };
            wire.clear();
            let _ = request.encode(wire);
            black_box(wire.len());
        }
    }
    events
}

#[inline(never)]
fn pass_otlp_messages(stages: &Transforms, lines: &[Vec<u8>], wire: &mut Vec<u8>) -> u64 {
    use prost::Message;
    let mut events = 0;
    for records in lines.chunks(1000) {
        let batch = stages.batch(records);
        events += batch.events.len() as u64;
        for chunk in batch.events.chunks(500) {
            let request = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: chunk
                            .iter()
                            .map(keytrail_sink_grpc::otlp::log_record)
                            .collect(),
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            };
            wire.clear();
            let _ = request.encode(wire);
            black_box(wire.len());
        }
    }
    events
}

#[inline(never)]
fn pass_serde_value(lines: &[Vec<u8>]) -> u64 {
    let mut events = 0;
    for line in lines {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) {
            black_box(&value);
            events += 1;
        }
    }
    events
}

#[inline(never)]
fn pass_receive(requests: &[Vec<u8>], out: &mut Vec<u8>) -> u64 {
    let events = keytrail_benches::receive(requests, out);
    black_box(out.len());
    events
}

#[inline(never)]
fn pass_receive_via_message(requests: &[Vec<u8>], out: &mut Vec<u8>) -> u64 {
    let events = keytrail_benches::receive_via_message(requests, out);
    black_box(out.len());
    events
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "transforms".to_owned());
    let passes: u64 = args.next().and_then(|p| p.parse().ok()).unwrap_or(1);
    let lines = keytrail_benches::corpus();
    let bytes = keytrail_benches::total_bytes(&lines);
    let stages = Transforms::new();
    let mut out = Vec::with_capacity(bytes * 2);
    let requests = if mode.starts_with("receive") {
        keytrail_benches::feed_requests(&lines)
    } else {
        Vec::new()
    };
    // Warm-up outside the counts: lazily built tables, buffer growth.
    let _ = pass_json(&stages, &lines[..lines.len().min(100)], &mut out);

    let (allocations, allocated) = (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    );
    let started = std::time::Instant::now();
    let mut events = 0;
    for _ in 0..passes {
        events += match mode.as_str() {
            "transforms" => pass_transforms(&stages, &lines),
            "walk" => pass_walk(&stages, &lines),
            "transforms_batched" => pass_transforms_batched(&stages, &lines),
            "json" => pass_json(&stages, &lines, &mut out),
            "json_direct" => pass_json_direct(&stages, &lines, &mut out),
            "proto" => pass_proto(&stages, &lines, &mut out),
            "otlp" => pass_otlp(&stages, &lines, &mut out),
            "otlp_messages" => pass_otlp_messages(&stages, &lines, &mut out),
            "serde_value" => pass_serde_value(&lines),
            "receive" => pass_receive(&requests, &mut out),
            "receive_via_message" => pass_receive_via_message(&requests, &mut out),
            other => {
                eprintln!(
                    "unknown mode {other}: transforms, walk, json, json_direct, proto, otlp, \
                     otlp_messages, serde_value, receive or receive_via_message"
                );
                std::process::exit(2);
            }
        };
    }
    let elapsed = started.elapsed();
    let measured = (lines.len() as u64 * passes) as f64;
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    let allocated = ALLOCATED_BYTES.load(Ordering::Relaxed) - allocated;
    println!(
        "mode={mode} passes={passes} lines={} bytes={bytes} events={} \
         allocations/line={:.2} allocated_bytes/line={:.0} ns/line={:.0}",
        lines.len(),
        events / passes,
        allocations as f64 / measured,
        allocated as f64 / measured,
        elapsed.as_nanos() as f64 / measured,
    );
}
