//! Property tests: whatever the bytes, the normalizer answers with exactly
//! one event or one rejection per line, never panics, and never lets key
//! material through.

use keytrail_core::{AckToken, Batch, RecordMeta, Timestamp};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// Field names the parsers look at, so random objects reach deep paths.
const KEYS: &[&str] = &[
    "action",
    "eventTime",
    "outcome",
    "initiator",
    "target",
    "reason",
    "reasonCode",
    "requestData",
    "responseData",
    "responseBody",
    "keyState",
    "newValue",
    "initialValue",
    "eventAckData",
    "location",
    "payload",
    "_line",
    "_source",
    "event",
    "timestamp",
    "level",
    "details",
    "result",
    "id",
    "name",
    "host",
    "address",
    "credential",
    "type",
    "logSourceCRN",
    "correlationId",
    "correlationID",
    "signatureThreshold",
    "iv",
    "plaintext",
    "x",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::String),
        Just(Value::String("2024-01-01T00:00:00.123+0000".into())),
        Just(Value::String("hs-crypto.secrets.create".into())),
        Just(Value::String(
            "crn:v1:bluemix:public:kms:us-south:a/1:2:key:3".into()
        )),
        Just(Value::String("{\"keyState\":1}".into())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Random objects that are recognisably events, so the builders run.
fn event_like() -> impl Strategy<Value = Value> {
    (json_value(), prop::bool::ANY).prop_map(|(extra, ibm)| {
        let mut object = match extra {
            Value::Object(map) => map,
            other => Map::from_iter([("x".to_owned(), other)]),
        };
        if ibm {
            object.insert("action".into(), "kms.secrets.rotate".into());
            object.insert("eventTime".into(), "2024-01-01T00:00:00Z".into());
        } else {
            object.insert("event".into(), "LOGIN_FAILURE".into());
            object.insert("timestamp".into(), "2024-01-01T00:00:00Z".into());
        }
        Value::Object(object)
    })
}

/// Event-like objects, and objects with random fields, sent as JSON text
/// inside a line (a LogDNA `_line`, an IBM `requestData` string), with a
/// random text in a field the event keeps.
fn embedded_line() -> impl Strategy<Value = Vec<u8>> {
    (event_like(), json_value(), "[ -~]{0,12}", prop::bool::ANY).prop_map(
        |(event, data, text, logdna)| {
            let with_text = |value: Value, keys: &[&str]| {
                let mut object = match value {
                    Value::Object(map) => map,
                    other => Map::from_iter([("x".to_owned(), other)]),
                };
                for key in keys {
                    object.insert((*key).to_owned(), Value::String(text.clone()));
                }
                Value::Object(object)
            };
            let line = if logdna {
                let event = with_text(event, &["message", "user"]);
                serde_json::json!({"_source": {"_host": "h", "_line": event.to_string()}})
            } else {
                serde_json::json!({
                    "action": "kms.secrets.read",
                    "eventTime": "2024-01-01T00:00:00Z",
                    "requestData": with_text(data, &["requestURI", "keyId"]).to_string(),
                })
            };
            line.to_string().into_bytes()
        },
    )
}

fn any_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        event_like().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// True when some object field holds `""` (array elements are values, not
/// fields, and are kept as sent).
fn has_empty_string(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.iter().any(has_empty_string),
        Value::Object(map) => map
            .values()
            .any(|v| v.as_str() == Some("") || has_empty_string(v)),
        _ => false,
    }
}

/// The reference parse of a line into the vendor structs: serde_json.
fn reference_top(text: &str) -> Option<crate::raw::Top<'_>> {
    serde_json::from_str(text).ok()
}

/// A valid JSON text changed at one place: a byte dropped, doubled or
/// replaced by one that matters to the JSON grammar.
fn mutated() -> impl Strategy<Value = String> {
    const BYTES: &[u8] = b"{}[],:\"\\ 0-.eEtfn\x01/u";
    (
        event_like(),
        any::<prop::sample::Index>(),
        0..3u8,
        prop::sample::select(BYTES),
    )
        .prop_map(|(value, at, how, byte)| {
            let mut bytes = value.to_string().into_bytes();
            let at = at.index(bytes.len());
            match how {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, bytes[at]),
                _ => bytes[at] = byte,
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fast_reader_agrees_with_serde_on_json(value in json_value()) {
        let text = value.to_string();
        if let Ok(fast) = crate::scan::top(&text, DEFAULT_MAX_DEPTH) {
            prop_assert_eq!(Some(fast), reference_top(&text), "{}", text);
        }
    }

    #[test]
    fn fast_reader_agrees_with_serde_on_events(value in event_like()) {
        let text = value.to_string();
        let fast = crate::scan::top(&text, DEFAULT_MAX_DEPTH);
        // serde_json writes no `\u` escape for printable text, so these
        // stay on the fast path unless they repeat a field.
        if let Ok(fast) = fast {
            prop_assert_eq!(Some(fast), reference_top(&text), "{}", text);
        }
    }

    #[test]
    fn fast_reader_accepts_no_broken_json(text in mutated()) {
        if let Ok(fast) = crate::scan::top(&text, DEFAULT_MAX_DEPTH) {
            prop_assert_eq!(Some(fast), reference_top(&text), "{}", text);
        }
    }

    #[test]
    fn both_paths_give_the_same_event(value in event_like()) {
        let text = value.to_string();
        let meta = RecordMeta::default();
        let normalizer = Normalizer::default();
        let fast = normalizer.normalize_line(text.as_bytes(), &meta);
        let mut texts = Texts::Plain;
        let mut ctx = Context::new(&normalizer, &meta, &mut texts);
        let reference = match reference_top(&text) {
            Some(mut top) => normalizer.event_from_top(&mut top, &mut ctx, 0),
            None => return Ok(()),
        };
        match (fast, reference) {
            (Ok(mut a), Ok(b)) => {
                // An inferred time is the clock's.
                if a.time_inferred {
                    a.time = b.time;
                }
                prop_assert_eq!(a, b);
            }
            (a, b) => prop_assert_eq!(a.err(), b.err()),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Normalizer::default().normalize_line(&bytes, &RecordMeta::default());
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let text = value.to_string();
        let _ = Normalizer::default().normalize_line(text.as_bytes(), &RecordMeta::default());
    }

    #[test]
    fn event_like_objects_normalize_and_serialize(value in event_like()) {
        let text = value.to_string();
        if let Ok(event) = Normalizer::default().normalize_line(text.as_bytes(), &RecordMeta::default()) {
            let out = serde_json::to_value(&event).expect("an event always serializes");
            prop_assert!(!has_empty_string(&out), "empty string in {}", out);
        }
    }

    #[test]
    fn one_result_per_non_blank_line(lines in prop::collection::vec(any_line(), 0..12)) {
        // Newlines inside a line would make it two lines.
        let lines: Vec<Vec<u8>> = lines
            .into_iter()
            .map(|l| l.into_iter().map(|b| if b == b'\n' { b' ' } else { b }).collect())
            .collect();
        let record = lines.join(&b'\n');
        let expected: Vec<u32> = lines
            .iter()
            .zip(1u32..)
            .filter(|(l, _)| !l.trim_ascii().is_empty())
            .map(|(_, n)| n)
            .collect();
        // A record whose first line is a lone `{` is read as one pretty-printed object.
        prop_assume!(lines.iter().find(|l| !l.trim_ascii().is_empty()).is_none_or(|l| l.trim_ascii() != b"{"));
        let mut batch = Batch::new(AckToken::detached());
        Normalizer::default().normalize_record(&record, &RecordMeta::default(), &mut batch);
        prop_assert_eq!(batch.len(), expected.len());
        let mut dead_lines: Vec<u32> = batch.dead_letters.iter().map(|d| d.line).collect();
        dead_lines.sort_unstable();
        prop_assert!(dead_lines.iter().all(|n| expected.contains(n)));
    }

    #[test]
    fn key_material_never_leaks(value in event_like(), secret in "[A-Z]{12}") {
        let mut value = value;
        let planted = serde_json::json!({
            "payload": secret, "iv": secret, "plaintext": secret,
            "ciphertext": secret, "encryptedNonce": secret, "keep": 1
        });
        if let Value::Object(map) = &mut value {
            map.insert("requestData".into(), planted.clone());
            map.insert("responseData".into(), Value::String(planted.to_string()));
            map.insert("details".into(), serde_json::json!({"nested": [planted]}));
        }
        let text = value.to_string();
        if let Ok(event) = Normalizer::default().normalize_line(text.as_bytes(), &RecordMeta::default()) {
            let out = serde_json::to_string(&event).expect("serializes");
            prop_assert!(!out.contains(&secret), "{} leaked into {}", secret, out);
        }
    }

    #[test]
    fn crn_service_reads_as_crn_parse(text in "(crn:)?[v1a-z<> ]{0,3}(:[a-z<>/ v-]{0,4}){0,6}") {
        prop_assert_eq!(
            crate::ibm_cadf::crn_service(&text),
            keytrail_core::crn::Crn::parse(&text).map(|c| c.service)
        );
    }

    #[test]
    fn direct_json_is_the_serde_json(value in event_like()) {
        let text = value.to_string();
        if let Ok(event) = Normalizer::default().normalize_line(text.as_bytes(), &RecordMeta::default()) {
            let mut direct = Vec::new();
            event.write_json(&mut direct);
            let serde = serde_json::to_vec(&event).expect("serializes");
            prop_assert_eq!(String::from_utf8_lossy(&direct), String::from_utf8_lossy(&serde));
        }
    }

    #[test]
    fn texts_said_to_be_plain_are_plain(
        line in prop_oneof![any_line(), mutated().prop_map(String::into_bytes), embedded_line()],
        strip in any::<bool>(),
    ) {
        // As generated (escapes in kept and skipped strings, embedded JSON
        // text), or with the backslashes dropped: escapes gone, strings
        // cut short, control bytes left raw.
        let line: Vec<u8> = if strip {
            line.into_iter().filter(|&b| b != b'\\').collect()
        } else {
            line
        };
        let mut texts = Texts::MayNeedEscaping;
        let normalized = Normalizer::default().normalize_line_texts(&line, &RecordMeta::default(), &mut texts);
        if let (Ok(event), Texts::Plain) = (normalized, texts) {
            let mut json = Vec::new();
            event.write_json(&mut json);
            // Debug builds check every text on the way.
            let mut plain = Vec::new();
            event.write_json_plain(&mut plain);
            prop_assert_eq!(String::from_utf8_lossy(&plain), String::from_utf8_lossy(&json));
        }
    }

    #[test]
    fn times_round_trip(millis in -62_135_596_800_000i64..253_402_300_799_999) {
        let t = Timestamp::from_millis(millis);
        prop_assert_eq!(Timestamp::parse_vendor(&t.to_string()).expect("own format parses"), t);
    }
}
