//! Golden tests: hand-written vendor events, run through the whole chain
//! (normalize → enrich → classify), compared field by field with
//! normalized events written by hand from `spec/normalized-event.md` and
//! `spec/vendor-rules.md`.
//!
//! Layout (paths relative to the `keytrail-tests` package):
//!
//! - `fixtures/{securosys,ibm,envelopes}/NAME.jsonl`: one input event per
//!   line;
//! - `expected/{securosys,ibm,envelopes}/NAME.jsonl`: one expected
//!   normalized event per input line, same order;
//! - `fixtures/bad/bad.jsonl` and `expected/bad/bad.jsonl`: one refused line
//!   per dead-letter reason and the `{"error": …, "line": …}` record each must
//!   give. The two reasons a text file cannot hold well (`invalid_utf8`,
//!   `too_large`) are built in [`bytes_the_fixtures_cannot_hold_are_refused`].
//!
//! Every difference is reported with its path and both values, and each
//! test fails once with the whole list.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use keytrail_core::{AckToken, Batch, RecordMeta, Transform};
use keytrail_transform_classify::{Classifier, ClassifyConfig};
use keytrail_transform_enrich::{EnrichConfig, Enricher};
use keytrail_transform_normalize::{NormalizeConfig, Normalizer, Rejection};
use serde_json::Value;

/// The vendor groups whose fixtures are normalized events.
const EVENT_GROUPS: &[&str] = &["securosys", "ibm", "envelopes"];

/// Field names that carry key material (`vendor-rules.md`, "Field facts").
/// Their values, planted in the fixtures, must never reach an output.
const KEY_MATERIAL_FIELDS: &[&str] =
    &["payload", "encryptedNonce", "iv", "plaintext", "ciphertext"];

/// How many key-material values the fixtures plant at least; guards the
/// collector against silently finding nothing.
const MIN_PLANTED_KEY_MATERIAL: usize = 20;

/// The default chain, as `keytrail normalize` builds it without a
/// configuration file.
struct Chain {
    normalizer: Normalizer,
    enricher: Enricher,
    classifier: Classifier,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            normalizer: NormalizeConfig::default()
                .build()
                .expect("the default normalize settings are valid"),
            enricher: EnrichConfig::default()
                .build()
                .expect("the default enrich settings are valid"),
            classifier: ClassifyConfig::default()
                .build()
                .expect("the default classify settings are valid"),
        }
    }

    /// One line through every stage, as JSON.
    fn run(&self, line: &[u8]) -> Result<Value, Rejection> {
        let mut event = self
            .normalizer
            .normalize_line(line, &RecordMeta::default())?;
        self.enricher.apply(&mut event);
        self.classifier.apply(&mut event);
        Ok(serde_json::to_value(&event).expect("an event always serializes"))
    }
}

/// The root of the `keytrail-tests` package.
fn package_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `.jsonl` files of a fixture group, sorted by name.
fn jsonl_files(group: &str) -> Vec<PathBuf> {
    let dir = package_dir().join("fixtures").join(group);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The non-blank lines of a file, with their 1-based line numbers.
fn lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect()
}

/// Short JSON text of a value for a report line.
fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "(absent)".to_owned(), Value::to_string)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends one report line per difference between `expected` and `actual`
/// under `path`: changed values, keys only one side has, array lengths.
fn diff(path: &str, expected: Option<&Value>, actual: Option<&Value>, out: &mut Vec<String>) {
    match (expected, actual) {
        (Some(Value::Object(want)), Some(Value::Object(got))) => {
            let keys: BTreeSet<&String> = want.keys().chain(got.keys()).collect();
            for key in keys {
                diff(&join(path, key), want.get(key), got.get(key), out);
            }
        }
        (Some(Value::Array(want)), Some(Value::Array(got))) => {
            for i in 0..want.len().max(got.len()) {
                diff(&format!("{path}[{i}]"), want.get(i), got.get(i), out);
            }
        }
        (want, got) if want == got => {}
        (want, got) => out.push(format!(
            "{path}: expected {}, got {}",
            show(want),
            show(got)
        )),
    }
}

/// True for the contract time form `2026-03-24T18:00:18.936Z`.
fn is_contract_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 24
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            23 => *b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// Collects the string values of key-material fields anywhere in `value`,
/// looking into JSON text held in strings (`_line`, stringified
/// `requestData`/`responseData`) too.
fn planted_key_material(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if let (true, Some(text)) =
                    (KEY_MATERIAL_FIELDS.contains(&key.as_str()), inner.as_str())
                {
                    found.push(text.to_owned());
                }
                planted_key_material(inner, found);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| planted_key_material(item, found)),
        Value::String(text) if text.trim_start().starts_with(['{', '[']) => {
            if let Ok(inner) = serde_json::from_str::<Value>(text) {
                planted_key_material(&inner, found);
            }
        }
        _ => {}
    }
}

/// Compares one output with its expectation; `where_` names the line.
fn check_event(where_: &str, expected: &Value, actual: &Value, problems: &mut Vec<String>) {
    let mut differences = Vec::new();
    let inferred = expected.get("time_inferred") == Some(&Value::Bool(true));
    if inferred {
        // The time of an event without one is the read time: only its form
        // and the flag can be checked.
        let mut want = expected.clone();
        let mut got = actual.clone();
        if let (Some(want), Some(got)) = (want.as_object_mut(), got.as_object_mut()) {
            want.remove("time");
            let time = got.remove("time");
            if !time
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(is_contract_time)
            {
                differences.push(format!(
                    "time: expected an inferred contract time, got {}",
                    show(time.as_ref())
                ));
            }
        }
        diff("", Some(&want), Some(&got), &mut differences);
    } else {
        diff("", Some(expected), Some(actual), &mut differences);
    }
    problems.extend(differences.into_iter().map(|d| format!("{where_}: {d}")));
}

/// Every `fixtures/<group>/*.jsonl` line normalizes to the matching line of
/// `expected/<group>/`, field by field, with no key material in any output.
#[test]
fn golden_events_match_the_hand_written_expectations() {
    let chain = Chain::new();
    let mut problems = Vec::new();
    let mut planted_total = 0;
    let mut events_checked = 0;

    for group in EVENT_GROUPS {
        let files = jsonl_files(group);
        assert!(!files.is_empty(), "no fixtures in fixtures/{group}");
        for input_path in files {
            let name = input_path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            let label = format!("{group}/{name}");
            let expected_path = package_dir().join("expected").join(group).join(&name);
            let input_text = read(&input_path);
            let expected_text = read(&expected_path);
            let inputs = lines(&input_text);
            let expectations = lines(&expected_text);
            if inputs.len() != expectations.len() {
                problems.push(format!(
                    "{label}: {} input lines but {} expected lines",
                    inputs.len(),
                    expectations.len()
                ));
            }

            for (&(line_no, input), &(_, expected)) in inputs.iter().zip(&expectations) {
                let where_ = format!("{label} line {line_no}");
                let expected: Value = serde_json::from_str(expected)
                    .unwrap_or_else(|e| panic!("{where_}: expected line is not JSON: {e}"));
                let input_json: Value = serde_json::from_str(input)
                    .unwrap_or_else(|e| panic!("{where_}: fixture line is not JSON: {e}"));
                let mut planted = Vec::new();
                planted_key_material(&input_json, &mut planted);
                planted_total += planted.len();

                let actual = match chain.run(input.as_bytes()) {
                    Ok(actual) => actual,
                    Err(rejection) => {
                        problems.push(format!("{where_}: rejected as {rejection}"));
                        continue;
                    }
                };
                events_checked += 1;
                check_event(&where_, &expected, &actual, &mut problems);

                let printed = actual.to_string();
                for secret in &planted {
                    if printed.contains(secret.as_str()) {
                        problems.push(format!(
                            "{where_}: key material {secret:?} reached the output"
                        ));
                    }
                }
            }
        }
    }

    assert!(
        planted_total >= MIN_PLANTED_KEY_MATERIAL,
        "only {planted_total} key-material values found in the fixtures"
    );
    assert!(events_checked > 0, "no event was checked");
    assert!(
        problems.is_empty(),
        "{} golden difference(s) in {events_checked} events:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Every fixture has an expectation file and every expectation a fixture.
#[test]
fn golden_fixture_and_expectation_files_pair_up() {
    let mut problems = Vec::new();
    for group in EVENT_GROUPS.iter().chain(&["bad"]) {
        for (from, to) in [("fixtures", "expected"), ("expected", "fixtures")] {
            let dir = package_dir().join(from).join(group);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            for entry in entries {
                let path = entry.expect("a readable directory entry").path();
                if path.extension().is_none_or(|ext| ext != "jsonl") {
                    continue;
                }
                let name = path.file_name().expect("a file name");
                if !package_dir().join(to).join(group).join(name).is_file() {
                    problems.push(format!(
                        "{from}/{group}/{} has no {to} counterpart",
                        name.to_string_lossy()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `{"error": …, "line": …}` records of `expected/bad/bad.jsonl`.
fn expected_dead_letters() -> Vec<(String, u32)> {
    let path = package_dir().join("expected/bad/bad.jsonl");
    lines(&read(&path))
        .into_iter()
        .map(|(n, line)| {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("expected/bad/bad.jsonl line {n}: {e}"));
            let error = record["error"]
                .as_str()
                .unwrap_or_else(|| panic!("expected/bad/bad.jsonl line {n}: no error"))
                .to_owned();
            let line = record["line"]
                .as_u64()
                .and_then(|l| u32::try_from(l).ok())
                .unwrap_or_else(|| panic!("expected/bad/bad.jsonl line {n}: no line"));
            (error, line)
        })
        .collect()
}

/// Each bad line is refused with its reason, line by line and as one
/// NDJSON record, and yields no event.
#[test]
fn golden_bad_lines_are_refused_with_their_reason() {
    let chain = Chain::new();
    let input = read(&package_dir().join("fixtures/bad/bad.jsonl"));
    let expected = expected_dead_letters();
    let mut problems = Vec::new();

    let inputs = lines(&input);
    if inputs.len() != expected.len() {
        problems.push(format!(
            "{} bad lines but {} expected records",
            inputs.len(),
            expected.len()
        ));
    }
    for ((line_no, line), (reason, expected_line)) in inputs.iter().zip(&expected) {
        if u32::try_from(*line_no).ok() != Some(*expected_line) {
            problems.push(format!(
                "bad/bad.jsonl line {line_no}: paired with the record for line {expected_line}"
            ));
        }
        match chain.run(line.as_bytes()) {
            Ok(event) => problems.push(format!(
                "bad/bad.jsonl line {line_no}: expected {reason}, got an event: {event}"
            )),
            Err(rejection) if rejection.reason.to_string() == *reason => {}
            Err(rejection) => problems.push(format!(
                "bad/bad.jsonl line {line_no}: expected {reason}, got {}",
                rejection.reason
            )),
        }
    }

    // The whole file as one NDJSON record: one dead letter per line, with
    // the line number the `{"error", "line"}` record carries, and no event.
    let normalizer = NormalizeConfig::default()
        .build()
        .expect("the default normalize settings are valid");
    let mut batch = Batch::new(AckToken::detached());
    normalizer.normalize_record(input.as_bytes(), &RecordMeta::default(), &mut batch);
    let got: Vec<(String, u32)> = batch
        .dead_letters
        .iter()
        .map(|d| (d.reason.to_string(), d.line))
        .collect();
    if got != expected {
        problems.push(format!(
            "bad/bad.jsonl as one record: expected dead letters {expected:?}, got {got:?}"
        ));
    }
    if !batch.events.is_empty() {
        problems.push(format!(
            "bad/bad.jsonl as one record: {} event(s) came out",
            batch.events.len()
        ));
    }
    batch.ack.ack();

    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `invalid_utf8` and `too_large`, which a text fixture cannot carry well:
/// built here from a good Securosys line, refused alone and inside a record
/// whose good lines still come through.
#[test]
fn bytes_the_fixtures_cannot_hold_are_refused() {
    let chain = Chain::new();
    let good = read(&package_dir().join("fixtures/securosys/levels.jsonl"))
        .lines()
        .next()
        .expect("levels.jsonl has a first line")
        .to_owned();
    assert!(
        chain.run(good.as_bytes()).is_ok(),
        "the base line normalizes"
    );

    // A Latin-1 byte in the user name.
    let mut invalid_utf8 = good.clone().into_bytes();
    let at = good.find("anna").expect("the base line names anna");
    invalid_utf8[at] = 0xE4;

    // Over the 1 MiB default limit, and valid JSON otherwise.
    let padding = "x".repeat(1024 * 1024);
    let too_large = good.replacen(
        r#""details":{"#,
        &format!(r#""details":{{"padding":"{padding}","#),
        1,
    );
    assert!(too_large.len() > 1024 * 1024);

    for (bytes, reason) in [
        (&invalid_utf8[..], "invalid_utf8"),
        (too_large.as_bytes(), "too_large"),
    ] {
        match chain.run(bytes) {
            Ok(event) => panic!("expected {reason}, got an event: {event}"),
            Err(rejection) => assert_eq!(rejection.reason.to_string(), reason),
        }
    }

    let mut record = Vec::new();
    for part in [
        good.as_bytes(),
        &invalid_utf8,
        good.as_bytes(),
        too_large.as_bytes(),
        good.as_bytes(),
    ] {
        record.extend_from_slice(part);
        record.push(b'\n');
    }
    let normalizer = NormalizeConfig::default()
        .build()
        .expect("the default normalize settings are valid");
    let mut batch = Batch::new(AckToken::detached());
    normalizer.normalize_record(&record, &RecordMeta::default(), &mut batch);
    let dead: Vec<(String, u32)> = batch
        .dead_letters
        .iter()
        .map(|d| (d.reason.to_string(), d.line))
        .collect();
    assert_eq!(
        dead,
        [("invalid_utf8".to_owned(), 2), ("too_large".to_owned(), 4)]
    );
    assert_eq!(batch.events.len(), 3, "the good lines still normalize");
    batch.ack.ack();
}
