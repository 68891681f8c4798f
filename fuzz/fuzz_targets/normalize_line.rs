//! Fuzz target: any bytes through normalize → enrich → classify → JSON.
//! The record entry point is used so NDJSON splitting is fuzzed too; every
//! non-blank line must come out as exactly one event or one dead letter.
#![no_main]

use keytrail_core::{AckToken, Batch, RecordMeta, Transform};
use keytrail_transform_classify::Classifier;
use keytrail_transform_enrich::Enricher;
use keytrail_transform_normalize::Normalizer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut batch = Batch::new(AckToken::detached());
    Normalizer::default().normalize_record(data, &RecordMeta::default(), &mut batch);
    let enricher = Enricher::new();
    let classifier = Classifier::new();
    for event in &mut batch.events {
        enricher.apply(event);
        classifier.apply(event);
        let json = serde_json::to_vec(event).expect("events always serialize");
        assert!(!json.is_empty());
    }
    let first = data
        .split(|b| *b == b'\n')
        .find(|l| !l.trim_ascii().is_empty());
    if first.is_none_or(|l| l.trim_ascii() != b"{") {
        let lines = data
            .split(|b| *b == b'\n')
            .filter(|l| !l.trim_ascii().is_empty())
            .count();
        assert_eq!(batch.len(), lines, "one result per non-blank line");
    }
});
