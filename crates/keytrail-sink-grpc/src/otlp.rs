//! The OTLP driver (`protocol = "otlp"`): events as OpenTelemetry log
//! records, one `opentelemetry.proto.collector.logs.v1.LogsService/Export`
//! call per batch, for SIEMs and collectors that speak OTLP/gRPC.
//!
//! # Mapping
//!
//! | log record | from the event |
//! |---|---|
//! | `time_unix_nano` | `time` |
//! | `observed_time_unix_nano` | when keytrail encoded it |
//! | `severity_number` | informational → INFO (9), low → INFO2 (10), medium → WARN (13), high → ERROR (17), critical → FATAL (21) |
//! | `severity_text` | the severity's contract name (`high`) |
//! | `body` | `message` when the event has one, else `action` |
//! | `event_name` | `action` |
//! | `attributes` | every field of the JSON contract; nested objects are flattened with dots (`actor.user`, `origin.partition`, `details.keyType`), values keep their JSON type (string, int, double, bool, array, key-value list) |
//!
//! The resource carries `service.name = keytrail` and `service.version`.
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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use keytrail_core::{Event, Severity};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::backoff::Backoff;
use crate::forwarder::{Auth, Connection, describe, sleep_until, wait_retry};
use crate::queue::{Command, Encoder, Queue};
use crate::telemetry::{self, RejectKind};

/// The OTLP severity number of a keytrail severity.
pub fn severity_number(severity: Severity) -> SeverityNumber {
    match severity {
        Severity::Informational => SeverityNumber::Info,
        Severity::Low => SeverityNumber::Info2,
        Severity::Medium => SeverityNumber::Warn,
        Severity::High => SeverityNumber::Error,
        Severity::Critical => SeverityNumber::Fatal,
    }
}

/// Encodes events as OTLP log records (see the module docs).
pub(crate) struct LogEncoder {
    resource: Resource,
    scope: InstrumentationScope,
}

impl LogEncoder {
    pub(crate) fn new() -> LogEncoder {
        LogEncoder {
            resource: Resource {
                attributes: vec![
                    string_attribute("service.name", "keytrail"),
                    string_attribute("service.version", env!("CARGO_PKG_VERSION")),
                ],
                ..Resource::default()
            },
            scope: InstrumentationScope {
                name: "keytrail".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                ..InstrumentationScope::default()
            },
        }
    }

    fn request(&self, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(self.scope.clone()),
                    log_records: records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        }
    }
}

impl Encoder for LogEncoder {
    type Item = LogRecord;

    fn encode(&mut self, event: &Event) -> LogRecord {
        log_record(event)
    }

    fn encoded_len(item: &LogRecord) -> usize {
        prost::Message::encoded_len(item)
    }
}

/// One event as an OTLP log record (see the module docs).
pub fn log_record(event: &Event) -> LogRecord {
    let millis = u64::try_from(event.time.as_millis()).unwrap_or(0);
    let observed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
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

type Client = LogsServiceClient<InterceptedService<Channel, Auth>>;

async fn export(
    mut client: Client,
    sequence: u64,
    request: ExportLogsServiceRequest,
    timeout: Duration,
) -> (u64, Result<ExportLogsServiceResponse, Status>) {
    let mut request = Request::new(request);
    request.set_timeout(timeout);
    let result = match tokio::time::timeout(timeout, client.export(request)).await {
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

    let mut client =
        LogsServiceClient::with_interceptor(connection.channel.clone(), connection.auth.clone())
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
    use std::sync::Arc;

    use keytrail_core::{Origin, Source, Timestamp};

    use super::*;

    fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a any_value::Value> {
        record
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
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
            topic: Arc::from("audit"),
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
