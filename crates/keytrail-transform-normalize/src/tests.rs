//! Unit tests of the vendor parsers and of every input quirk, on small
//! hand-written events shaped after the real samples.

use keytrail_core::{
    AckToken, Batch, Category, DeadLetterReason, Event, Origin, Outcome, RecordMeta, Source,
    Timestamp,
};

use super::*;

fn normalize(line: &str) -> Result<Event, Rejection> {
    Normalizer::default().normalize_line(line.as_bytes(), &RecordMeta::default())
}

fn ok(line: &str) -> Event {
    normalize(line).unwrap_or_else(|r| panic!("rejected: {r}"))
}

fn reason(line: &[u8]) -> DeadLetterReason {
    match Normalizer::default().normalize_line(line, &RecordMeta::default()) {
        Ok(event) => panic!("accepted as {}", event.action),
        Err(r) => r.reason,
    }
}

const SECUROSYS: &str = r#"{"timestamp":"2026-02-01T08:15:00.125Z","level":"WARNING","event":"LOGIN_FAILURE","category":"AUTHENTICATION","user":"alice@example.org","role":"admin","provider":"microsoft","resource":"KM-UI","details":{"attempt":3},"result":"DENIED","api_url":"https://tsb.example.org","session_id":"4242"}"#;

const IBM_CREATE: &str = r#"{"eventTime":"2025-07-01T10:00:00.5+0000","action":"hs-crypto.secrets.create","outcome":"success","message":"Hyper Protect Crypto Services: create secret","severity":"normal","initiator":{"id":"IBMid-1","name":"bob@example.org","typeURI":"service/security/account/user","credential":{"type":"token"},"host":{"address":" 203.0.113.9 ","agent":"curl/8"}},"target":{"id":"crn:v1:bluemix:public:hs-crypto:eu-de:a/acct1:inst1:key:key1","name":"root-1","typeURI":"kms/secrets"},"reason":{"reasonCode":201,"reasonType":"Created"},"requestData":{"requestURI":"/api/v2/keys","instanceID":"inst1","keyType":"root"},"responseData":{"keyId":"key1","keyState":1,"keyVersionId":"v1","keyVersionCreationDate":"2025-07-01T10:00:00Z","totalResources":1},"correlationId":"c-1","logSourceCRN":"crn:v1:bluemix:public:hs-crypto:eu-de:a/acct1:inst1::","dataEvent":false}"#;

#[test]
fn securosys_fields_map_to_the_contract() {
    let e = ok(SECUROSYS);
    assert_eq!(e.source, Source::SecurosysKm);
    assert_eq!(e.action, "LOGIN_FAILURE");
    assert_eq!(e.time.to_string(), "2026-02-01T08:15:00.125Z");
    assert_eq!(e.category, Category::Authentication);
    assert_eq!(e.outcome, Outcome::Denied);
    assert_eq!(e.vendor_severity.as_deref(), Some("WARNING"));
    assert_eq!(e.actor.user.as_deref(), Some("alice@example.org"));
    assert_eq!(e.actor.role.as_deref(), Some("admin"));
    assert_eq!(e.actor.provider.as_deref(), Some("microsoft"));
    assert_eq!(e.actor.session_id.as_deref(), Some("4242"));
    assert_eq!(e.target.id.as_deref(), Some("KM-UI"));
    assert_eq!(e.target.api_url.as_deref(), Some("https://tsb.example.org"));
    assert_eq!(e.details.value("attempt"), Some(3.into()));
    assert_eq!(e.status_code, None);
}

#[test]
fn securosys_results_and_categories() {
    let with = |result: &str, category: &str| {
        ok(&SECUROSYS
            .replace("\"DENIED\"", &format!("\"{result}\""))
            .replace("\"AUTHENTICATION\"", &format!("\"{category}\"")))
    };
    assert_eq!(with("SUCCESS", "KEY_MANAGEMENT").outcome, Outcome::Success);
    assert_eq!(with("ERROR", "KMIP_MANAGEMENT").outcome, Outcome::Failure);
    assert_eq!(
        with("ERROR", "KMIP_MANAGEMENT").category,
        Category::KmipManagement
    );
    assert_eq!(with("MAYBE", "NEW_THING").outcome, Outcome::Unknown);
    assert_eq!(with("MAYBE", "NEW_THING").category, Category::Other);
    // An empty details object is absent, not `{}`.
    let empty = ok(&SECUROSYS.replace(r#"{"attempt":3}"#, "{}"));
    assert!(empty.details.is_empty());
}

#[test]
fn ibm_fields_map_to_the_contract() {
    let e = ok(IBM_CREATE);
    assert_eq!(e.source, Source::IbmHpcs);
    assert_eq!(e.action, "hs-crypto.secrets.create");
    assert_eq!(e.time.to_string(), "2025-07-01T10:00:00.500Z");
    assert!(!e.time_inferred);
    assert_eq!(e.outcome, Outcome::Success);
    assert_eq!(e.status_code, Some(201));
    assert_eq!(e.vendor_severity.as_deref(), Some("normal"));
    assert_eq!(e.correlation_id.as_deref(), Some("c-1"));
    assert_eq!(e.request_uri.as_deref(), Some("/api/v2/keys"));
    assert_eq!(e.instance_id.as_deref(), Some("inst1"));
    assert_eq!(e.actor.user.as_deref(), Some("bob@example.org"));
    assert_eq!(e.actor.id.as_deref(), Some("IBMid-1"));
    assert_eq!(e.actor.provider.as_deref(), Some("token"));
    assert_eq!(
        e.actor.ip.as_deref(),
        Some("203.0.113.9"),
        "address is trimmed"
    );
    assert_eq!(e.actor.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(e.target.name.as_deref(), Some("root-1"));
    assert_eq!(e.target.kind.as_deref(), Some("kms/secrets"));
    let key = e.key.as_deref().expect("key facts");
    assert_eq!(key.id.as_deref(), Some("key1"));
    assert_eq!(key.kind.as_deref(), Some("root"));
    assert_eq!(key.state_code, Some(1));
    assert_eq!(key.version_id.as_deref(), Some("v1"));
    assert_eq!(key.version_created.as_deref(), Some("2025-07-01T10:00:00Z"));
    assert_eq!(
        e.reason.as_ref().and_then(|r| r.kind.as_deref()),
        Some("Created")
    );
    assert_eq!(e.data_event, Some(false));
    assert_eq!(e.details.value("totalResources"), Some(1.into()));
    assert!(
        !e.details.contains("keyId"),
        "contract fields are not repeated"
    );
}

#[test]
fn ibm_source_follows_the_crn_then_the_prefix() {
    let kp_action_on_hpcs =
        IBM_CREATE.replace("hs-crypto.secrets.create", "kms.secrets.ack-rotate");
    assert_eq!(ok(&kp_action_on_hpcs).source, Source::IbmHpcs);
    let kms_crn = IBM_CREATE.replace(":hs-crypto:", ":kms:");
    assert_eq!(ok(&kms_crn).source, Source::IbmKeyProtect);
    let no_crn =
        r#"{"eventTime":"2025-07-01T10:00:00Z","action":"kms.secrets.read","outcome":"success"}"#;
    assert_eq!(ok(no_crn).source, Source::IbmKeyProtect);
    let other = r#"{"eventTime":"2025-07-01T10:00:00Z","action":"iam-groups.group.create","outcome":"success","target":{"id":"crn:v1:bluemix:public:iam-groups:global:a/x::group:1"}}"#;
    assert_eq!(ok(other).source, Source::IbmCloud);
}

#[test]
fn ibm_initiator_name_falls_back_to_id() {
    let e = ok(&IBM_CREATE.replace(r#""name":"bob@example.org""#, r#""name":"""#));
    assert_eq!(e.actor.user.as_deref(), Some("IBMid-1"));
    let no_address = ok(&IBM_CREATE.replace(" 203.0.113.9 ", "  "));
    assert_eq!(no_address.actor.ip, None, "blank address is absent");
}

#[test]
fn ibm_denials_and_numeric_string_codes() {
    let denied = IBM_CREATE
        .replace(r#""outcome":"success""#, r#""outcome":"failure""#)
        .replace(r#""reasonCode":201"#, r#""reasonCode":"403""#);
    let e = ok(&denied);
    assert_eq!(e.status_code, Some(403));
    assert_eq!(e.outcome, Outcome::Denied);
}

#[test]
fn stringified_request_and_response_data() {
    let line = r#"{"eventTime":"2020-03-11T09:28:35.15+0000","action":"kms.secrets.read","outcome":"success","requestData":"{\"requestURI\":\"/api/v2/keys/k\",\"instanceId\":\"i-9\",\"keyType\":\"standard\"}","responseData":"{\"keyId\":\"k\",\"keyState\":\"3\",\"maxAllowedRetrievals\":5}"}"#;
    let e = ok(line);
    assert_eq!(e.request_uri.as_deref(), Some("/api/v2/keys/k"));
    assert_eq!(e.instance_id.as_deref(), Some("i-9"), "instanceId casing");
    let key = e.key.as_deref().expect("key facts");
    assert_eq!((key.id.as_deref(), key.state_code), (Some("k"), Some(3)));
    assert_eq!(e.details.value("maxAllowedRetrievals"), Some(5.into()));
}

#[test]
fn correlation_id_casing_and_legacy_response_body() {
    let upper = r#"{"eventTime":"2019-12-20T16:38:06Z","action":"kms.secrets.delete","outcome":"success","correlationID":"c-9"}"#;
    assert_eq!(ok(upper).correlation_id.as_deref(), Some("c-9"));
    let legacy = r#"{"eventTime":"2019-12-20T16:38:06Z","action":"kms.secrets.endtoenddelete","outcome":"failure","requestPath":"/keymonitor/deletion","reason":{"reasonCode":408},"responseBody":{"keyId":"k2","correlationID":"c-10","outstandingResourceCRNs":"a,b"}}"#;
    let e = ok(legacy);
    assert_eq!(e.correlation_id.as_deref(), Some("c-10"));
    assert_eq!(e.request_uri.as_deref(), Some("/keymonitor/deletion"));
    assert_eq!(e.key.as_deref().and_then(|k| k.id.as_deref()), Some("k2"));
    assert_eq!(
        e.details.value("outstandingResourceCRNs"),
        Some("a,b".into())
    );
    assert_eq!(e.outcome, Outcome::Failure);
}

#[test]
fn key_states_textual_nested_and_previous() {
    let ack = r#"{"eventTime":"2020-05-13T19:12:13.32+0000","action":"kms.secrets.ack-rotate","outcome":"success","responseData":{"eventAckData":{"eventId":"e1","keyState":"DEK_ENABLED"}}}"#;
    let e = ok(ack);
    assert_eq!(
        e.key.as_deref().and_then(|k| k.state.as_deref()),
        Some("dek_enabled")
    );
    assert_eq!(
        e.details
            .value("eventAckData")
            .map(|d| d["eventId"].clone()),
        Some("e1".into())
    );
    let expire = r#"{"eventTime":"2020-05-13T19:12:13Z","action":"hs-crypto.secrets.expire","outcome":"success","requestData":{"expirationDate":"2020-06-01T00:00:00Z","newValue":{"keyRingId":"r2"},"initialValue":{"keyRingId":"r1"}},"responseData":{"initialValue":{"keyState":1},"newValue":{"keyState":3}}}"#;
    let e = ok(expire);
    let key = e.key.as_deref().expect("key facts");
    assert_eq!(
        (key.previous_state_code, key.state_code),
        (Some(1), Some(3))
    );
    assert_eq!(
        (
            key.previous_key_ring_id.as_deref(),
            key.key_ring_id.as_deref()
        ),
        (Some("r1"), Some("r2"))
    );
    assert_eq!(
        e.details.value("expirationDate"),
        Some("2020-06-01T00:00:00Z".into())
    );
}

#[test]
fn tke_facts_are_read_as_sent() {
    let line = r#"{"eventTime":"2024-01-01T00:00:00Z","action":"hs-crypto.tke-cryptounit-threshold.set","outcome":"success","requestData":{"location":"[us-east].[AZ2-CSSTAG2].[03].[22]","adminId":"ab12","signatureThreshold":"2","revocationSignatureThreshold":1},"responseData":{"verificationPattern":"ffee"}}"#;
    let e = ok(line);
    let tke = e.tke.as_deref().expect("tke facts");
    assert_eq!(
        tke.location.as_deref(),
        Some("[us-east].[AZ2-CSSTAG2].[03].[22]")
    );
    assert_eq!(tke.admin_id.as_deref(), Some("ab12"));
    assert_eq!(tke.signature_threshold, Some(2));
    assert_eq!(tke.revocation_signature_threshold, Some(1));
    assert_eq!(tke.verification_pattern.as_deref(), Some("ffee"));
}

#[test]
fn key_material_never_reaches_the_event() {
    let line = r#"{"eventTime":"2024-01-01T00:00:00Z","action":"hs-crypto.secrets.wrap","outcome":"success","payload":"AAAA","plaintext":"BBBB","requestData":{"payload":"CCCC","encryptedNonce":"DDDD","iv":"EEEE","other":{"ciphertext":"FFFF","keep":"yes"}},"responseData":"{\"plaintext\":\"GGGG\",\"keyVersionId\":\"v\"}"}"#;
    let e = ok(line);
    let json = serde_json::to_string(&e).expect("serializes");
    for secret in ["AAAA", "BBBB", "CCCC", "DDDD", "EEEE", "FFFF", "GGGG"] {
        assert!(!json.contains(secret), "{secret} leaked: {json}");
    }
    assert!(json.contains(r#""keep":"yes""#));
    let securosys = SECUROSYS.replace(
        r#"{"attempt":3}"#,
        r#"{"payload":"HHHH","n":{"iv":"IIII"}}"#,
    );
    let json = serde_json::to_string(&ok(&securosys)).expect("serializes");
    assert!(!json.contains("HHHH") && !json.contains("IIII"), "{json}");
}

#[test]
fn envelopes_are_unwrapped() {
    let inner = serde_json::to_string(IBM_CREATE).expect("quotes");
    let source_line = format!(r#"{{"_source":{{"_host":"h","_logtype":"json","_line":{inner}}}}}"#);
    assert_eq!(ok(&source_line).action, "hs-crypto.secrets.create");
    let bare_line = format!(r#"{{"_line":{inner}}}"#);
    assert_eq!(ok(&bare_line).correlation_id.as_deref(), Some("c-1"));
    let payload = r#"{"payload":{"action":"bss-metering-test.event.create","eventTime":"2018-06-13T00:05:39.11+0000","outcome":"success"},"meta":{"x":1},"logSourceCRN":"crn:v1:bluemix:public:kms:us-south:a/1:2::"}"#;
    let e = ok(payload);
    assert_eq!(e.action, "bss-metering-test.event.create");
    assert_eq!(
        e.source,
        Source::IbmKeyProtect,
        "outer logSourceCRN is used"
    );
    assert_eq!(
        e.log_source_crn.as_deref(),
        Some("crn:v1:bluemix:public:kms:us-south:a/1:2::")
    );
}

#[test]
fn missing_time_is_inferred_from_the_record_then_the_clock() {
    let line = r#"{"action":"is.vpc.vpc.create","outcome":"failure","reason":{"reasonCode":403}}"#;
    let meta = RecordMeta {
        timestamp: Some(Timestamp::from_millis(1_700_000_000_000)),
        ..RecordMeta::default()
    };
    let e = Normalizer::default()
        .normalize_line(line.as_bytes(), &meta)
        .expect("normalizes");
    assert!(e.time_inferred);
    assert_eq!(e.time, Timestamp::from_millis(1_700_000_000_000));
    let before = Timestamp::now();
    let e = ok(line);
    assert!(e.time_inferred && e.time >= before);
}

#[test]
fn kafka_meta_sets_origin_and_header_fallbacks() {
    let meta = RecordMeta {
        origin: Some(Origin {
            topic: keytrail_core::Topic::from("audit"),
            partition: 2,
            offset: 77,
        }),
        timestamp: None,
        account: Some("hdr-acct".into()),
        region: Some("hdr-region".into()),
    };
    let e = Normalizer::default()
        .normalize_line(IBM_CREATE.as_bytes(), &meta)
        .expect("normalizes");
    assert_eq!(e.origin.as_ref().map(|o| o.offset), Some(77));
    assert_eq!(e.region.as_deref(), Some("hdr-region"));
    assert_eq!(e.account_id.as_deref(), Some("hdr-acct"));
}

#[test]
fn each_bad_input_has_its_reason() {
    assert_eq!(reason(b"\xff\xfe{}"), DeadLetterReason::InvalidUtf8);
    assert_eq!(reason(b"{\"action\": "), DeadLetterReason::InvalidJson);
    assert_eq!(reason(b"not json"), DeadLetterReason::InvalidJson);
    assert_eq!(reason(b"[1,2"), DeadLetterReason::InvalidJson);
    assert_eq!(reason(b"{\"a\":1} trailing"), DeadLetterReason::InvalidJson);
    assert_eq!(reason(b"[1,2,3]"), DeadLetterReason::NotAnObject);
    assert_eq!(reason(b"\"text\""), DeadLetterReason::NotAnObject);
    assert_eq!(reason(b"42"), DeadLetterReason::NotAnObject);
    assert_eq!(
        reason(b"{\"hello\":\"world\"}"),
        DeadLetterReason::UnknownFormat
    );
    assert_eq!(
        reason(br#"{"eventTime":"2020-01-01T00:00:00Z","outcome":"success"}"#),
        DeadLetterReason::MissingField("action")
    );
    assert_eq!(
        reason(br#"{"timestamp":"2020-01-01T00:00:00Z","level":"INFO","result":"SUCCESS"}"#),
        DeadLetterReason::MissingField("event")
    );
    assert_eq!(
        reason(br#"{"eventTime":"last tuesday","action":"kms.secrets.read"}"#),
        DeadLetterReason::BadTime
    );
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    assert_eq!(
        reason(format!(r#"{{"a":{deep}}}"#).as_bytes()),
        DeadLetterReason::TooDeep
    );
    let big = format!(
        r#"{{"event":"X","pad":"{}"}}"#,
        "x".repeat(DEFAULT_MAX_EVENT_BYTES)
    );
    assert_eq!(reason(big.as_bytes()), DeadLetterReason::TooLarge);
}

#[test]
fn depth_limit_counts_structure_not_strings() {
    let brackets_in_text = format!(
        r#"{{"event":"X","timestamp":"2020-01-01T00:00:00Z","note":"{}"}}"#,
        "[{".repeat(100)
    );
    assert!(normalize(&brackets_in_text).is_ok());
    let at_limit = format!(
        r#"{{"event":"X","timestamp":"2020-01-01T00:00:00Z","d":{}1{}}}"#,
        "[".repeat(63),
        "]".repeat(63)
    );
    assert!(normalize(&at_limit).is_ok(), "64 levels are allowed");
}

#[test]
fn limits_are_configurable_and_validated() {
    let small = NormalizeConfig {
        max_event_bytes: 64,
        max_depth: 2,
    }
    .build()
    .expect("valid");
    let meta = RecordMeta::default();
    assert_eq!(
        small
            .normalize_line(IBM_CREATE.as_bytes(), &meta)
            .map_err(|r| r.reason),
        Err(DeadLetterReason::TooLarge)
    );
    assert_eq!(
        small
            .normalize_line(br#"{"a":{"b":{"c":1}}}"#, &meta)
            .map_err(|r| r.reason),
        Err(DeadLetterReason::TooDeep)
    );
    assert!(
        NormalizeConfig {
            max_event_bytes: 0,
            max_depth: 64
        }
        .build()
        .is_err()
    );
    assert!(
        NormalizeConfig {
            max_event_bytes: 10,
            max_depth: 500
        }
        .build()
        .is_err()
    );
    let parsed: Result<NormalizeConfig, _> = toml::from_str("max_depth = 10\nmax_bytes = 3");
    assert!(parsed.is_err(), "unknown keys are refused");
}

#[test]
fn a_record_yields_one_result_per_line_in_order() {
    let record = format!("{IBM_CREATE}\nnot json\n\n{SECUROSYS}\n[1]\n");
    let meta = RecordMeta::default();
    let mut batch = Batch::new(AckToken::detached());
    Normalizer::default().normalize_record(record.as_bytes(), &meta, &mut batch);
    let actions: Vec<&str> = batch.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["hs-crypto.secrets.create", "LOGIN_FAILURE"]);
    let dead: Vec<(u32, String)> = batch
        .dead_letters
        .iter()
        .map(|d| (d.line, d.reason.to_string()))
        .collect();
    assert_eq!(
        dead,
        [
            (2, "invalid_json".to_owned()),
            (5, "not_an_object".to_owned())
        ]
    );
    assert_eq!(batch.dead_letters[0].payload, b"not json");
}

#[test]
fn odd_field_types_do_not_cost_the_event() {
    let line = r#"{"eventTime":"2024-01-01T00:00:00Z","action":"hs-crypto.secrets.read","outcome":["x"],"initiator":"nobody","target":{"id":42,"name":{"a":1}},"reason":{"reasonCode":true},"requestData":[1,2],"responseData":"not json at all","dataEvent":"yes","severity":7}"#;
    let e = ok(line);
    assert_eq!(e.outcome, Outcome::Unknown);
    assert_eq!(e.target.id.as_deref(), Some("42"));
    assert_eq!(e.target.name, None);
    assert_eq!(e.status_code, None);
    assert_eq!(e.data_event, None);
    assert_eq!(e.vendor_severity.as_deref(), Some("7"));
}

#[test]
fn real_shapes_take_the_fast_path_and_read_as_serde_does() {
    let inner = serde_json::to_string(IBM_CREATE).expect("quotes");
    let lines = [
        IBM_CREATE.to_owned(),
        SECUROSYS.to_owned(),
        format!(r#"{{"_source":{{"_host":"h","_logtype":"json","_line":{inner}}}}}"#),
        format!(r#"{{"payload":{IBM_CREATE},"meta":{{"x":1}}}}"#),
        r#"{"eventTime":"2020-03-11T09:28:35.15+0000","action":"kms.secrets.read","requestData":"{\"requestURI\":\"/k\",\"instanceId\":\"i-9\"}","responseData":{"keyId":"k","keyState":"3","maxAllowedRetrievals":5,"eventAckData":{"keyState":"DEK_ENABLED"}}}"#.to_owned(),
    ];
    for line in &lines {
        let fast = crate::scan::top(line, DEFAULT_MAX_DEPTH).expect("fast path");
        let reference: crate::raw::Top<'_> = serde_json::from_str(line).expect("serde parses");
        assert_eq!(fast, reference, "{line}");
    }
}

#[test]
fn the_walk_takes_json_the_reader_can_walk() {
    let normalizer = Normalizer::default();
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let (deepest, too_deep) = (nested(DEFAULT_MAX_DEPTH), nested(DEFAULT_MAX_DEPTH + 1));
    let spaced = "\t{ \"a\" :\r\n[1, -2.5e3, true, null, {\"b\": \"\\n\"}] }\n";
    for line in [SECUROSYS, IBM_CREATE, spaced, deepest.as_str()] {
        assert!(normalizer.walk_line(line.as_bytes()), "{line}");
    }
    let cut = &IBM_CREATE[..IBM_CREATE.len() - 1];
    // `\u` escapes and control bytes in strings are left to serde_json's
    // fallback, so the walk stops at them.
    let stops = [
        cut,
        "{\"a\":\"\\u00e9\"}",
        "{\"a\":\"x\ty\"}",
        "{} {}",
        "{\"a\":01}",
        "{\"a\" 1}",
        "[1,]",
        too_deep.as_str(),
    ];
    for line in stops {
        assert!(!normalizer.walk_line(line.as_bytes()), "{line}");
    }
    assert!(!normalizer.walk_line(b"{\"a\":\"\xff\"}"));
}

#[test]
fn texts_are_plain_unless_a_kept_text_had_an_escape() {
    let texts = |line: &str, meta: &RecordMeta| {
        let mut texts = Texts::MayNeedEscaping;
        Normalizer::default()
            .normalize_line_texts(line.as_bytes(), meta, &mut texts)
            .unwrap_or_else(|r| panic!("rejected: {r}"));
        texts
    };
    let none = RecordMeta::default();
    let plain = |line: &str| texts(line, &none) == Texts::Plain;
    assert!(plain(SECUROSYS));
    assert!(plain(IBM_CREATE));

    // Backslashes where nothing is kept from them: a skipped field, a
    // Securosys `details` value (written escaped), a JSON-encoded
    // `requestData` whose own texts have none; an enveloped line, below.
    let skipped = IBM_CREATE.replacen(r#""dataEvent""#, r#""x":["a\"b\\"],"dataEvent""#, 1);
    assert_ne!(skipped, IBM_CREATE);
    assert!(plain(&skipped), "{skipped}");
    let details = SECUROSYS.replacen(r#"{"attempt":3}"#, r#"{"path":"C:\\keys\n"}"#, 1);
    assert_ne!(details, SECUROSYS);
    assert!(plain(&details), "{details}");
    let embedded = r#"{"eventTime":"2020-03-11T09:28:35.15+0000","action":"kms.secrets.read","requestData":"{\"requestURI\":\"/api/v2/keys/k\",\"instanceId\":\"i-9\"}"}"#;
    assert!(plain(embedded));

    // An escape in a text that is kept, at each level, even one that
    // decodes to a plain text.
    for (kept, escaped) in [
        (r#""message":"Hyper"#, r#""message":"\"Hyper"#),
        (r#""name":"bob"#, r#""name":"b\\ob"#),
        (r#""agent":"curl/8""#, r#""agent":"curl\/8""#),
        (r#""keyId":"key1""#, r#""keyId":"key\t1""#),
        (r#""logSourceCRN":"crn"#, r#""logSourceCRN":"\ncrn"#),
    ] {
        let line = IBM_CREATE.replacen(kept, escaped, 1);
        assert_ne!(line, IBM_CREATE, "{kept}");
        assert!(!plain(&line), "{line}");
    }
    let user = SECUROSYS.replacen("alice@", r#"al\"ice@"#, 1);
    assert_ne!(user, SECUROSYS);
    assert!(!plain(&user));
    let inner = embedded.replacen(r"/api/v2/keys/k", r"/api/\\\\v2", 1);
    assert_ne!(inner, embedded);
    assert!(!plain(&inner), "{inner}");
    let outer_crn = r#"{"payload":{"action":"kms.secrets.read","eventTime":"2018-06-13T00:05:39.11+0000"},"logSourceCRN":"crn:v1:bluemix:public:kms:us-south:a/1:2:\"x:"}"#;
    assert!(!plain(outer_crn));
    // The serde_json path does not say.
    assert!(!plain(&IBM_CREATE.replacen("bob", r"\u0062ob", 1)));
    // A LogDNA `_line` is read again, and its own texts judged.
    let enveloped = |event: &str| {
        let line = serde_json::to_string(event).expect("quotes");
        format!(r#"{{"_source":{{"_host":"h\"1","_line":{line}}}}}"#)
    };
    assert!(plain(&enveloped(IBM_CREATE)));
    assert!(!plain(&enveloped(&user)));

    // A region or account from the record's metadata.
    let region = RecordMeta {
        region: Some("eu\"de".into()),
        ..RecordMeta::default()
    };
    let account = RecordMeta {
        account: Some("a\\1".into()),
        ..RecordMeta::default()
    };
    for meta in [region, account] {
        assert_eq!(texts(SECUROSYS, &meta), Texts::MayNeedEscaping, "{meta:?}");
    }
}
