//! The OTLP driver (`protocol = "otlp"`): events as OpenTelemetry log
//! records, one `opentelemetry.proto.collector.logs.v1.LogsService/Export`
//! call per batch, for SIEMs and collectors that speak OTLP/gRPC.
//!
//! # Mapping
//!
//! | log record | from the event |
//! |---|---|
//! | `time_unix_nano` | `time` |
//! | `observed_time_unix_nano` | when keytrail encoded it (one time per batch on the transform threads) |
//! | `severity_number` | informational → INFO (9), low → INFO2 (10), medium → WARN (13), high → ERROR (17), critical → FATAL (21) |
//! | `severity_text` | the severity's contract name (`high`) |
//! | `body` | `message` when the event has one, else `action` |
//! | `event_name` | `action` |
//! | `attributes` | every field of the JSON contract, in the contract's order; nested objects are flattened with dots (`actor.user`, `origin.partition`, `details.keyType`), values keep their JSON type (string, int, double, bool, array, key-value list) |
//!
//! The resource carries `service.name = keytrail` and `service.version`.
//!
//! # Encoding
//!
//! The records are written straight to protobuf bytes
//! ([`keytrail_proto::encode_log_record`]), on the transform threads
//! (`OtlpPrepare`, a [`keytrail_core::Prepare`] step): the forwarding task
//! puts the bytes of up to a batch's records in an export request, and
//! every resend shares them. [`log_record`] builds the same record as
//! prost messages; it is the reference the encoding is tested against.
//!
//! # Acknowledgement
//!
//! OTLP has no sequence numbers, so there is no go-back-N: up to
//! `max_in_flight_batches` exports run at once, each answered on its own.
//! - A successful export without rejected records: accepted.
//! - A successful export whose `partial_success` reports rejected records:
//!   OTLP does not say which, and says not to retry them, so the whole
//!   batch is treated as rejected for good and goes to the dead-letter
//!   output with the receiver's message. Records the receiver kept then
//!   also appear in the dead-letter output: nothing is lost, some may be
//!   doubled.
//! - Status `INVALID_ARGUMENT` (the receiver cannot take this data):
//!   rejected for good, dead-lettered.
//! - Any other status, or no answer within `request_timeout_ms`: retried
//!   after a backoff, the batch alone.
//!
//! So with more than one batch in flight, a retried batch can arrive after
//! later ones; set `max_in_flight_batches = 1` when the receiver needs
//! strict order. Before the first export the driver waits for the
//! receiver's health service (overall status, service `""`); receivers
//! without one count as ready.

use std::any::Any;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use keytrail_core::{Event, Events, Prepare, Severity};
use keytrail_proto::{EncodedEvents, EventArena, LogsFrame, encode_log_record};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::backoff::Backoff;
use crate::codec::ReservingCodec;
use crate::config::MAX_BATCH_BYTES;
use crate::forwarder::{Auth, Connection, describe, sleep_until, wait_retry};
use crate::queue::{Command, Encoder, Queue};
use crate::telemetry::{self, RejectKind};

/// The OTLP severity number of a keytrail severity.
pub fn severity_number(severity: Severity) -> SeverityNumber {
    SeverityNumber::try_from(keytrail_proto::otlp::severity_number(severity))
        .unwrap_or(SeverityNumber::Unspecified)
}

/// Encodes events as OTLP log records (see the module docs), straight to
/// bytes ([`encode_log_record`]); the request around them carries the
/// resource and scope, encoded once.
pub(crate) struct LogEncoder {
    resource: Bytes,
    scope: Bytes,
    /// Where records of batches that come without their step's result
    /// are encoded.
    arena: EventArena,
}

impl LogEncoder {
    pub(crate) fn new() -> LogEncoder {
        let resource = Resource {
            attributes: vec![
                string_attribute("service.name", "keytrail"),
                string_attribute("service.version", env!("CARGO_PKG_VERSION")),
            ],
            ..Resource::default()
        };
        let scope = InstrumentationScope {
            name: "keytrail".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ..InstrumentationScope::default()
        };
        LogEncoder {
            resource: prost::Message::encode_to_vec(&resource).into(),
            scope: prost::Message::encode_to_vec(&scope).into(),
            arena: EventArena::default(),
        }
    }

    fn request(&self, records: Vec<Bytes>) -> LogsFrame {
        LogsFrame {
            resource: self.resource.clone(),
            scope: self.scope.clone(),
            records,
        }
    }
}

impl Encoder for LogEncoder {
    type Item = Bytes;

    fn encode(&mut self, event: &Event) -> Bytes {
        let observed = unix_nanos_now();
        self.arena
            .encode_with(|chunk| encode_log_record(event, observed, chunk))
    }

    fn prepared(events: &Events, index: usize) -> Option<Bytes> {
        let encoded = events.prepared::<OtlpPrepare, EncodedEvents>()?;
        // Made from these very events, one for one; anything else is not
        // theirs.
        (encoded.len() == events.len())
            .then(|| encoded.get(index))
            .flatten()
    }

    fn encoded_len(item: &Bytes) -> usize {
        item.len()
    }
}

/// A little above a log record's average size in the benches' corpus, so
/// that a usual batch fits its buffer without growing it.
const TYPICAL_RECORD_BYTES: usize = 1536;

/// The OTLP protocol's work on the transform threads: each batch's events
/// encoded as log records there, while they are in that core's cache, with
/// one observed time per batch. The forwarding task only copies bytes; it
/// encodes an event itself only when a batch comes without them.
#[derive(Debug)]
pub(crate) struct OtlpPrepare;

impl Prepare for OtlpPrepare {
    fn prepare(&self, events: &[Event]) -> Box<dyn Any + Send + Sync> {
        let observed = unix_nanos_now();
        Box::new(EncodedEvents::encode_with(
            events,
            TYPICAL_RECORD_BYTES,
            |event, out| encode_log_record(event, observed, out),
        ))
    }
}

/// Now, in nanoseconds since the Unix epoch (0 before it).
fn unix_nanos_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One event as an OTLP log record (see the module docs), built as prost
/// messages through `serde_json::Value`: the reference mapping, which the
/// driver's own encoding ([`encode_log_record`]) is tested against. The
/// driver does not use it.
pub fn log_record(event: &Event) -> LogRecord {
    log_record_at(event, unix_nanos_now())
}

/// [`log_record`] observed at `observed` (nanoseconds since the epoch).
pub fn log_record_at(event: &Event, observed: u64) -> LogRecord {
    let millis = u64::try_from(event.time.as_millis()).unwrap_or(0);
    let body = event.message.as_deref().unwrap_or(&event.action);
    LogRecord {
        time_unix_nano: millis.saturating_mul(1_000_000),
        observed_time_unix_nano: observed,
        severity_number: severity_number(event.severity) as i32,
        severity_text: event.severity.as_str().to_owned(),
        body: Some(string_value(body)),
        attributes: attributes(event),
        event_name: event.action.to_string(),
        ..LogRecord::default()
    }
}

/// The event's JSON contract form, flattened one level with dots.
fn attributes(event: &Event) -> Vec<KeyValue> {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(event) else {
        return Vec::new();
    };
    let mut attributes = Vec::with_capacity(fields.len() + 8);
    for (name, value) in fields {
        match value {
            serde_json::Value::Object(inner) => {
                for (key, value) in inner {
                    attributes.push(KeyValue {
                        key: format!("{name}.{key}"),
                        value: Some(any_value_of(value)),
                        ..KeyValue::default()
                    });
                }
            }
            value => attributes.push(KeyValue {
                key: name,
                value: Some(any_value_of(value)),
                ..KeyValue::default()
            }),
        }
    }
    attributes
}

fn any_value_of(value: serde_json::Value) -> AnyValue {
    use serde_json::Value;

    let value = match value {
        Value::Null => None,
        Value::Bool(b) => Some(any_value::Value::BoolValue(b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(any_value::Value::IntValue(i)),
            None => n.as_f64().map(any_value::Value::DoubleValue),
        },
        Value::String(s) => Some(any_value::Value::StringValue(s)),
        Value::Array(items) => Some(any_value::Value::ArrayValue(ArrayValue {
            values: items.into_iter().map(any_value_of).collect(),
        })),
        Value::Object(fields) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: fields
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value: Some(any_value_of(value)),
                    ..KeyValue::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

fn string_value(text: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(text.to_owned())),
    }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(string_value(value)),
        ..KeyValue::default()
    }
}

/// What became of one export.
enum Outcome {
    Accepted,
    Permanent(String),
    /// `transport`: no answer from the receiver itself (connection or
    /// deadline), as opposed to a status it sent.
    Retry {
        reason: String,
        transport: bool,
    },
}

fn outcome(result: Result<ExportLogsServiceResponse, Status>) -> Outcome {
    match result {
        Ok(response) => match response.partial_success {
            Some(partial) if partial.rejected_log_records > 0 => Outcome::Permanent(format!(
                "otlp receiver rejected {} log records: {}",
                partial.rejected_log_records, partial.error_message
            )),
            _ => Outcome::Accepted,
        },
        Err(status) if status.code() == Code::InvalidArgument => Outcome::Permanent(format!(
            "otlp receiver refused the batch: {}",
            describe(&status)
        )),
        Err(status) => Outcome::Retry {
            transport: std::error::Error::source(&status).is_some()
                || status.code() == Code::DeadlineExceeded,
            reason: format!("otlp export failed: {}", describe(&status)),
        },
    }
}

type Client = tonic::client::Grpc<InterceptedService<Channel, Auth>>;

/// The export method's path, and its service and method names.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
const LOGS_SERVICE: &str = "opentelemetry.proto.collector.logs.v1.LogsService";

/// One export call, as the generated client makes it, with a request whose
/// records are already encoded.
async fn export(
    mut client: Client,
    sequence: u64,
    request: LogsFrame,
    timeout: Duration,
) -> (u64, Result<ExportLogsServiceResponse, Status>) {
    let mut request = Request::new(request);
    request.set_timeout(timeout);
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new(LOGS_SERVICE, "Export"));
    let call = async {
        client
            .ready()
            .await
            .map_err(|error| Status::unknown(format!("Service was not ready: {error}")))?;
        client
            .unary(
                request,
                http::uri::PathAndQuery::from_static(EXPORT_PATH),
                ReservingCodec::<LogsFrame, ExportLogsServiceResponse>::default(),
            )
            .await
    };
    let result = match tokio::time::timeout(timeout, call).await {
        Ok(result) => result.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded(
            "no answer within request_timeout_ms",
        )),
    };
    (sequence, result)
}

/// Runs until the input is closed and everything is resolved.
pub(crate) async fn run(
    connection: Connection,
    mut commands: mpsc::Receiver<Command>,
    mut queue: Queue<LogEncoder>,
) {
    let settings = connection.settings;
    let mut backoff = Backoff::new(settings.backoff);
    while let Err(failure) = connection.check_health("").await {
        connection.link_down(&failure);
        let delay = backoff.next_delay();
        telemetry::link_failed(&failure, delay);
        if !wait_retry(delay, &mut commands, &mut queue).await {
            return;
        }
    }
    backoff.reset();
    connection.link_up();
    telemetry::connected("otlp", queue.first_unanswered(), queue.in_flight());

    let service = InterceptedService::new(connection.channel.clone(), connection.auth.clone());
    let mut client = tonic::client::Grpc::new(service)
        .max_decoding_message_size(MAX_BATCH_BYTES)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .accept_compressed(tonic::codec::CompressionEncoding::Zstd);
    if let Some(encoding) = connection.compression {
        client = client.send_compressed(encoding);
    }
    let encoder = LogEncoder::new();
    let mut exports = FuturesUnordered::new();
    loop {
        let now = Instant::now();
        queue.fill(now);
        queue.reject_oversized().await;
        for sequence in queue.due(now) {
            let Some(batch) = queue.get(sequence) else {
                continue;
            };
            if batch.sends > 0 {
                telemetry::reconnect();
            }
            let request = encoder.request(batch.items.clone());
            exports.push(export(
                client.clone(),
                sequence,
                request,
                settings.request_timeout,
            ));
            queue.mark_sent(sequence, now);
        }
        queue.check_flushes();
        if queue.is_done() {
            return;
        }

        tokio::select! {
            Some((sequence, result)) = exports.next(), if !exports.is_empty() => {
                let events = queue.get(sequence).map_or(0, |b| b.len());
                match outcome(result) {
                    Outcome::Accepted => {
                        queue.accept(sequence, Instant::now());
                        backoff.reset();
                        connection.link_up();
                    }
                    Outcome::Permanent(reason) => queue.reject(sequence, &reason).await,
                    Outcome::Retry { reason, transport } => {
                        if !transport {
                            telemetry::batch_rejected(
                                sequence,
                                events,
                                RejectKind::Retryable,
                                &reason,
                            );
                        }
                        let delay = backoff.next_delay();
                        connection.link_down(&reason);
                        telemetry::link_failed(&reason, delay);
                        queue.retry_at(sequence, Instant::now() + delay);
                    }
                }
            }
            () = sleep_until(queue.next_retry()) => {}
            () = sleep_until(queue.linger_deadline()) => {}
            command = commands.recv(), if queue.wants_input() => queue.take(command),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use keytrail_core::{KeyFacts, Ocsf, Origin, Reason, Source, Timestamp, TkeFacts};

    use super::*;

    fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a any_value::Value> {
        record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    /// Every member of the contract set, with `details` values of every
    /// JSON type and texts that need escaping in JSON.
    fn rich_event() -> Event {
        let mut event = Event::new(
            Timestamp::from_millis(1_774_375_218_936),
            Source::IbmHpcs,
            "hs-crypto.keys.rotate".into(),
        );
        event.time_inferred = true;
        event.legacy_action = Some("kms.keys.rotate".into());
        event.description = Some("Rotate a key".into());
        event.status_code = Some(200);
        event.severity = Severity::Critical;
        event.vendor_severity = Some("critical".into());
        event.actionable = true;
        event.remediation = Some("Check \"who\"\n".into());
        event.correlation_id = Some("c-1".into());
        event.request_uri = Some("/api/v2/keys".into());
        event.instance_id = Some("i-1".into());
        event.region = Some("us-south".into());
        event.account_id = Some("a".repeat(140).into());
        event.message = Some("Key rotated ünïcode".into());
        event.event_id = Some("e-1".into());
        event.data_event = Some(true);
        event.actor.user = Some("alice".into());
        event.actor.ip = Some("198.51.100.7".into());
        event.actor.session_id = Some(String::new().into());
        event.target.id = Some("crn:v1:x".into());
        event.target.kind = Some("kms/key".into());
        event.key = Some(Box::new(KeyFacts {
            id: Some("k-1".into()),
            state_code: Some(-3),
            previous_state_code: Some(0),
            ..KeyFacts::default()
        }));
        event.tke = Some(Box::new(TkeFacts {
            hsm_index: Some(2),
            signature_threshold: Some(i64::MIN),
            ..TkeFacts::default()
        }));
        event.reason = Some(Reason {
            kind: Some("OK".into()),
            failure: None,
        });
        for (name, value) in [
            ("plain", serde_json::json!("root")),
            ("escaped", serde_json::json!("a\"b\\c\u{1}")),
            ("small", serde_json::json!(42)),
            ("negative", serde_json::json!(-7)),
            ("zero", serde_json::json!(0)),
            ("huge", serde_json::json!(u64::MAX)),
            ("fraction", serde_json::json!(1.5)),
            ("flag", serde_json::json!(false)),
            ("nothing", serde_json::Value::Null),
            (
                "list",
                serde_json::json!(["x", 1, [true], {"b": 2, "a": null}]),
            ),
            ("nested", serde_json::json!({"z": {"y": []}, "a": "b"})),
            ("", serde_json::json!("")),
            // As deep as prost decodes (100 nested messages in all).
            ("deep", deep_value(30)),
        ] {
            event.details.insert(name, &value);
        }
        event.labels = Some(Box::new(BTreeMap::from([
            ("team".to_owned(), "crypto".to_owned()),
            (String::new(), "v".to_owned()),
            ("k".to_owned(), String::new()),
        ])));
        event.ocsf = Some(Ocsf {
            class_uid: 6003,
            category_uid: 6,
            activity_id: 99,
            status_id: 1,
        });
        event.origin = Some(Origin {
            topic: keytrail_core::Topic::from("audit"),
            partition: 3,
            offset: 7,
        });
        event
    }

    /// Arrays and objects nested `depth` levels around an integer.
    fn deep_value(depth: usize) -> serde_json::Value {
        (0..depth).fold(serde_json::json!(-0), |value, level| {
            if level % 2 == 0 {
                serde_json::json!([value, "x"])
            } else {
                serde_json::json!({ "n": value, "m": null })
            }
        })
    }

    /// `record` with its attributes in name order (the reference takes
    /// them from a `serde_json::Map`).
    fn sorted(mut record: LogRecord) -> LogRecord {
        record.attributes.sort_by(|a, b| a.key.cmp(&b.key));
        record
    }

    #[test]
    fn the_direct_encoding_is_the_reference_record() {
        let observed = 1_774_375_219_000_000_123;
        let bare = Event::new(
            Timestamp::from_millis(-1),
            Source::SecurosysKm,
            String::new().into(),
        );
        for event in [rich_event(), bare] {
            let mut bytes = Vec::new();
            encode_log_record(&event, observed, &mut bytes);
            let decoded =
                <LogRecord as prost::Message>::decode(bytes.as_slice()).expect("a log record");
            // Canonical: prost writes the decoded record back byte for byte.
            assert_eq!(prost::Message::encode_to_vec(&decoded), bytes);
            assert_eq!(sorted(decoded), sorted(log_record_at(&event, observed)));
        }
    }

    #[test]
    fn a_request_of_encoded_records_decodes_as_the_export_request() {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;

        let events = [rich_event(), rich_event()];
        let encoder = LogEncoder::new();
        let encoded = EncodedEvents::encode_with(&events, 64, |event, out| {
            encode_log_record(event, 5, out);
        });
        let records = (0..events.len()).filter_map(|i| encoded.get(i)).collect();
        let frame = encoder.request(records);
        let bytes = prost::Message::encode_to_vec(&frame);
        assert_eq!(bytes.len(), prost::Message::encoded_len(&frame));
        let request = <ExportLogsServiceRequest as prost::Message>::decode(bytes.as_slice())
            .expect("an export request");
        let [resource_logs] = request.resource_logs.as_slice() else {
            panic!("one resource: {request:?}");
        };
        let resource = resource_logs.resource.clone().unwrap_or_default();
        assert_eq!(
            resource.attributes,
            [
                string_attribute("service.name", "keytrail"),
                string_attribute("service.version", env!("CARGO_PKG_VERSION")),
            ]
        );
        let [scope_logs] = resource_logs.scope_logs.as_slice() else {
            panic!("one scope: {request:?}");
        };
        assert_eq!(
            scope_logs.scope.as_ref().map(|s| s.name.as_str()),
            Some("keytrail")
        );
        let records: Vec<LogRecord> = scope_logs.log_records.iter().cloned().map(sorted).collect();
        let expected = sorted(log_record_at(&events[0], 5));
        assert_eq!(records, [expected.clone(), expected]);
    }

    #[test]
    fn severities_map_to_otlp_numbers() {
        let numbers: Vec<i32> = Severity::ALL
            .iter()
            .map(|s| severity_number(*s) as i32)
            .collect();
        assert_eq!(numbers, [9, 10, 13, 17, 21]);
    }

    #[test]
    fn an_event_becomes_a_log_record() {
        let mut event = Event::new(
            Timestamp::from_millis(1_774_375_218_936),
            Source::IbmHpcs,
            "hs-crypto.secrets.delete".into(),
        );
        event.severity = Severity::High;
        event.actor.user = Some("alice".into());
        event.origin = Some(Origin {
            topic: keytrail_core::Topic::from("audit"),
            partition: 3,
            offset: 7,
        });
        event.details.insert("keyType", &serde_json::json!("root"));

        let record = log_record(&event);
        assert_eq!(record.time_unix_nano, 1_774_375_218_936_000_000);
        assert_eq!(record.severity_number, 17);
        assert_eq!(record.severity_text, "high");
        assert_eq!(record.event_name, "hs-crypto.secrets.delete");
        assert_eq!(
            record.body.and_then(|b| b.value),
            Some(any_value::Value::StringValue(
                "hs-crypto.secrets.delete".into()
            ))
        );
        let record = log_record(&event);
        assert_eq!(
            attribute(&record, "actor.user"),
            Some(&any_value::Value::StringValue("alice".into()))
        );
        assert_eq!(
            attribute(&record, "origin.partition"),
            Some(&any_value::Value::IntValue(3))
        );
        assert_eq!(
            attribute(&record, "details.keyType"),
            Some(&any_value::Value::StringValue("root".into()))
        );
        assert_eq!(
            attribute(&record, "severity_id"),
            Some(&any_value::Value::IntValue(4))
        );
        assert_eq!(
            attribute(&record, "actionable"),
            Some(&any_value::Value::BoolValue(false))
        );

        event.message = Some("Key deleted".into());
        let body = log_record(&event).body.and_then(|b| b.value);
        assert_eq!(
            body,
            Some(any_value::Value::StringValue("Key deleted".into()))
        );
    }

    #[test]
    fn partial_success_and_invalid_argument_are_permanent() {
        let partial = ExportLogsServiceResponse {
            partial_success: Some(
                opentelemetry_proto::tonic::collector::logs::v1::ExportLogsPartialSuccess {
                    rejected_log_records: 2,
                    error_message: "bad records".into(),
                },
            ),
        };
        assert!(matches!(outcome(Ok(partial)), Outcome::Permanent(r) if r.contains("bad records")));
        assert!(matches!(
            outcome(Ok(ExportLogsServiceResponse::default())),
            Outcome::Accepted
        ));
        assert!(matches!(
            outcome(Err(Status::invalid_argument("no"))),
            Outcome::Permanent(_)
        ));
        assert!(matches!(
            outcome(Err(Status::unavailable("busy"))),
            Outcome::Retry {
                transport: false,
                ..
            }
        ));
    }
}
