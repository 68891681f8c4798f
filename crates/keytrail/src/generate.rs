//! `keytrail gen`: realistic vendor audit events for demos, tests and
//! benches.
//!
//! Every event the catalog knows, in the shapes and with the quirks real
//! producers have: IBM CADF events of HPCS and Key Protect (the five time
//! forms, stringified `requestData`, `correlationID` casing, numeric-string
//! reason codes, envelopes, historical action names, TKE locations, KMIP
//! certificate initiators) and Securosys Key Manager lines, with success and
//! failure outcomes and plausible status codes, plus a share of malformed
//! records. The same `--seed` gives the same bytes. Each event carries a
//! unique `id` (`kt-<seed>-<n>`) so tests can count what arrived.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use keytrail_core::Timestamp;
use keytrail_transform_enrich::catalog::{IBM_ACTIONS, IBM_HISTORICAL_NAMES, SECUROSYS_EVENTS};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

/// Arguments of `keytrail gen`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// How many records to write.
    #[arg(long, default_value_t = 1000)]
    pub events: u64,
    /// Seed of the generator: the same seed gives the same output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Share of IBM events, in percent (the rest are Securosys).
    #[arg(long, default_value_t = 70.0)]
    pub ibm_percent: f64,
    /// Share of malformed records, in percent.
    #[arg(long, default_value_t = 1.0)]
    pub malformed_percent: f64,
    /// Records per second; 0 writes as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Produce to Kafka at these brokers (`host:port,…`) instead of
    /// writing to stdout.
    #[arg(long, value_name = "BOOTSTRAP")]
    pub kafka: Option<String>,
    /// Topic to produce to, with --kafka.
    #[arg(long, default_value = "hsm-audit")]
    pub topic: String,
}

/// `count` records of `keytrail gen`'s usual mix (70 % IBM) from `seed`,
/// `malformed_percent` of them malformed: the corpus of the tests.
pub fn mixed_records(seed: u64, count: u64, malformed_percent: f64) -> Vec<Vec<u8>> {
    Generator::new(&Args {
        events: count,
        seed,
        ibm_percent: 70.0,
        malformed_percent,
        rate: 0.0,
        kafka: None,
        topic: String::new(),
    })
    .records(count)
}

/// Runs the command: records to stdout, one per line, or to Kafka.
pub fn run(args: &Args) -> anyhow::Result<()> {
    if let Some(bootstrap) = &args.kafka {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let progress = progress_bar(args.events);
        let sent = runtime.block_on(produce(args, bootstrap, &progress))?;
        progress.finish_and_clear();
        eprintln!("produced {sent} records to {}", args.topic);
        return Ok(());
    }
    write_stdout(args)
}

/// A progress bar on stderr when it is a terminal and the run is long.
pub fn progress_bar(total: u64) -> ProgressBar {
    if total < 10_000 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} events [{bar:40}] {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// Produces `args.events` records to `args.topic` at `bootstrap`, keyed by
/// their id, paced by `args.rate`, and waits for every delivery. Returns how
/// many were delivered.
pub async fn produce(args: &Args, bootstrap: &str, progress: &ProgressBar) -> anyhow::Result<u64> {
    use rdkafka::producer::FutureProducer;
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("compression.type", "zstd")
        .create()?;
    let mut generator = Generator::new(args);
    let start = Instant::now();
    let mut deliveries = std::collections::VecDeque::new();
    let mut delivered = 0u64;
    let mut line = Vec::with_capacity(4096);
    for n in 0..args.events {
        line.clear();
        generator.record(n, &mut line);
        let key = format!("kt-{}-{n}", args.seed);
        let record = FutureRecord::to(&args.topic)
            .key(key.as_bytes())
            .payload(&line[..]);
        deliveries.push_back(enqueue(&producer, record)?);
        // Keep the number of outstanding deliveries bounded.
        while deliveries.len() >= 10_000 {
            if let Some(delivery) = deliveries.pop_front() {
                settle(delivery.await, &mut delivered, progress)?;
            }
        }
        if args.rate > 0.0 {
            let due = start + Duration::from_secs_f64((n + 1) as f64 / args.rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
    }
    for delivery in deliveries {
        settle(delivery.await, &mut delivered, progress)?;
    }
    Ok(delivered)
}

/// Hands a record to the producer, waiting (polling the producer) while its
/// local queue is full; the returned future resolves on delivery.
pub fn enqueue<K, P>(
    producer: &rdkafka::producer::FutureProducer,
    mut record: FutureRecord<'_, K, P>,
) -> Result<rdkafka::producer::DeliveryFuture, rdkafka::error::KafkaError>
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    use rdkafka::error::KafkaError::MessageProduction;
    use rdkafka::types::RDKafkaErrorCode::QueueFull;
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((MessageProduction(QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
            Err((error, _)) => return Err(error),
        }
    }
}

fn settle<E>(
    result: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, E>,
    delivered: &mut u64,
    progress: &ProgressBar,
) -> anyhow::Result<()> {
    match result {
        Ok(Ok(_)) => {
            *delivered += 1;
            progress.inc(1);
            Ok(())
        }
        Ok(Err((error, _))) => Err(error.into()),
        Err(_) => anyhow::bail!("the producer was dropped before delivering"),
    }
}

fn write_stdout(args: &Args) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut generator = Generator::new(args);
    let start = Instant::now();
    let mut line = Vec::with_capacity(4096);
    for n in 0..args.events {
        line.clear();
        generator.record(n, &mut line);
        line.push(b'\n');
        if let Err(e) = out.write_all(&line) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        if args.rate > 0.0 {
            let due = start + Duration::from_secs_f64((n + 1) as f64 / args.rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                out.flush()?;
                std::thread::sleep(wait);
            }
        }
    }
    match out.flush() {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Deterministic event source.
pub struct Generator {
    rng: StdRng,
    seed: u64,
    ibm_share: f64,
    malformed_share: f64,
    base_millis: i64,
}

/// IBM service instances the generator acts on: (service, region, account,
/// instance).
const INSTANCES: &[(&str, &str, &str, &str)] = &[
    (
        "hs-crypto",
        "us-south",
        "b3e8ea4428c24cefa34454bd8ac0a1f2",
        "dd24cdc0-2c77-40a7-8680-53ccd41d9888",
    ),
    (
        "hs-crypto",
        "eu-de",
        "f047b55a3362ac06afad8a3f2f5586ea",
        "6ba8beba-a85b-4b7a-9dbd-97db8e1eea83",
    ),
    (
        "hs-crypto",
        "us-east",
        "81de6380e6222019c6567c9c8de6dece",
        "e3215e30-d27b-4533-857b-b27b7c5943b0",
    ),
    (
        "kms",
        "us-south",
        "a12333e9bd28461a8c92385628efac9f",
        "fd692647-43d0-4699-9f83-f39a54b1327b",
    ),
    (
        "kms",
        "jp-tok",
        "67db3d7ff3f34220b40e2d81480754c9",
        "0d86b31a-5b37-4305-8760-7683d356d1b2",
    ),
];

const USERS: &[&str] = &[
    "alice.martin@example.com",
    "bob.keller@example.com",
    "carol.nguyen@example.com",
    "dan.okafor@example.com",
];

const FAILURE_CODES: &[u32] = &[400, 401, 403, 404, 408, 409, 500, 503];

impl Generator {
    /// A generator for the given arguments.
    pub fn new(args: &Args) -> Generator {
        Generator {
            rng: StdRng::seed_from_u64(args.seed),
            seed: args.seed,
            ibm_share: (args.ibm_percent / 100.0).clamp(0.0, 1.0),
            malformed_share: (args.malformed_percent / 100.0).clamp(0.0, 1.0),
            base_millis: 1_767_225_600_000, // 2026-01-01T00:00:00Z
        }
    }

    /// Records `0..n`, one `Vec` each (tests and benches).
    pub fn records(&mut self, n: u64) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                let mut line = Vec::new();
                self.record(i, &mut line);
                line
            })
            .collect()
    }

    /// Appends record `n` (without newline) to `out`.
    pub fn record(&mut self, n: u64, out: &mut Vec<u8>) {
        let id = format!("kt-{}-{n}", self.seed);
        let millis = self.base_millis + i64::try_from(n).unwrap_or(i64::MAX / 4) * 250;
        if self.rng.random_bool(self.malformed_share) {
            self.malformed(&id, millis, out);
        } else if self.rng.random_bool(self.ibm_share) {
            self.ibm(&id, millis, out);
        } else {
            self.securosys(&id, millis, out);
        }
    }

    fn ibm(&mut self, id: &str, millis: i64, out: &mut Vec<u8>) {
        let &(service, region, account, instance) =
            INSTANCES.choose(&mut self.rng).unwrap_or(&INSTANCES[0]);
        let (suffix, _) = *IBM_ACTIONS.choose(&mut self.rng).unwrap_or(&IBM_ACTIONS[0]);
        let historical = IBM_HISTORICAL_NAMES
            .iter()
            .find(|(_, current)| *current == suffix)
            .filter(|_| self.rng.random_bool(0.1))
            .map(|(old, _)| *old);
        let prefix = if service == "kms" || self.rng.random_bool(0.1) {
            "kms"
        } else {
            "hs-crypto"
        };
        let action = format!("{prefix}.{}", historical.unwrap_or(suffix));
        let resource = suffix.split('.').next().unwrap_or("secrets");
        let tke = resource.starts_with("tke-");
        let kmip = resource.starts_with("kmip-key");

        let failed = self.rng.random_bool(0.12);
        let code = if failed {
            *FAILURE_CODES.choose(&mut self.rng).unwrap_or(&500)
        } else {
            *[200u32, 200, 201, 204]
                .choose(&mut self.rng)
                .unwrap_or(&200)
        };
        let key_id = self.uuid();
        let crn_base = format!("crn:v1:bluemix:public:{service}:{region}:a/{account}:{instance}");
        let target_id = if tke {
            format!("{crn_base}:crypto-unit:{}", self.rng.random_range(1..4))
        } else {
            format!("{crn_base}:key:{key_id}")
        };
        let user = *USERS.choose(&mut self.rng).unwrap_or(&USERS[0]);
        let mut initiator = json!({
            "id": format!("IBMid-{:06X}", self.rng.random_range(0..0xFF_FFFFu32)),
            "name": user,
            "typeURI": "service/security/account/user",
            "credential": {"type": "token"},
            "host": {"address": format!("198.51.100.{}", self.rng.random_range(1..250)), "agent": "keytrail-gen/1.0"}
        });
        if kmip {
            initiator = json!({
                "id": format!("CertificateID-{}", self.hex(40)),
                "typeURI": "service/security/account/user",
                "credential": {"type": "certificate"}
            });
        }
        let mut request = json!({
            "requestURI": format!("/api/v2/keys/{key_id}"),
            "instanceID": instance,
        });
        let mut response = json!({});
        if resource == "secrets" {
            request["keyType"] = json!(if self.rng.random_bool(0.6) {
                "root"
            } else {
                "standard"
            });
            response = json!({
                "keyId": key_id,
                "keyState": *[0, 1, 1, 1, 2, 3, 5].choose(&mut self.rng).unwrap_or(&1),
                "keyVersionId": self.uuid(),
                "keyVersionCreationDate": Timestamp::from_millis(millis - 86_400_000).to_string(),
            });
        }
        if tke {
            request = json!({
                "location": format!("[{region}].[AZ{}-CS{}].[{:02}].[{:02}]",
                    self.rng.random_range(1..4), self.rng.random_range(1..9),
                    self.rng.random_range(0..16), self.rng.random_range(0..40)),
                "adminId": self.hex(64),
            });
            response = json!({"verificationPattern": self.hex(64)});
        }
        let mut event = json!({
            "eventTime": self.time_text(millis),
            "action": action,
            "outcome": if failed { "failure" } else { "success" },
            "message": format!("{}: {} {}", if service == "kms" { "Key Protect" } else { "Hyper Protect Crypto Services" }, suffix.rsplit('.').next().unwrap_or("act"), resource),
            "initiator": initiator,
            "target": {"id": target_id, "name": format!("key-{}", &key_id[..8]), "typeURI": format!("{service}/{resource}")},
            "observer": {"name": "ActivityTracker"},
            "reason": {"reasonCode": code, "reasonType": if failed { "Failed" } else { "OK" }},
            "severity": *["normal", "normal", "warning", "critical"].choose(&mut self.rng).unwrap_or(&"normal"),
            "dataEvent": resource == "secrets",
            "saveServiceCopy": true,
            "logSourceCRN": format!("{crn_base}::"),
            "id": id,
        });
        if failed {
            event["reason"]["reasonForFailure"] = json!(if self.rng.random_bool(0.5) {
                "The request could not be completed; see the service documentation."
            } else {
                "The key could not be processed: the resource is in a state that does not allow this action, or the caller lacks the required service access role."
            });
        }
        self.ibm_extras(&mut event, &mut request);
        // Drift seen in real events.
        if self.rng.random_bool(0.15) {
            event["requestData"] = json!(request.to_string());
        } else {
            event["requestData"] = request;
        }
        if response.as_object().is_some_and(|r| !r.is_empty()) {
            event["responseData"] = response;
        }
        let correlation = self.uuid();
        if self.rng.random_bool(0.2) {
            event["correlationID"] = json!(correlation);
        } else {
            event["correlationId"] = json!(correlation);
        }
        if self.rng.random_bool(0.1) {
            event["reason"]["reasonCode"] = json!(code.to_string());
        }
        let wrapped = match self.rng.random_range(0..100) {
            0..5 => {
                json!({"_source": {"_host": "logdna", "_logtype": "json", "_line": event.to_string()}})
            }
            5..8 => json!({"payload": event, "meta": {"serviceProviderName": service}}),
            _ => event,
        };
        write_json(&wrapped, out);
    }

    /// Optional fields, so that sizes spread over 0.8–2 KB as real events'
    /// do: some events lose the initiator's host or the service-copy flag,
    /// some requests carry expiry, counts, aliases or a description.
    fn ibm_extras(&mut self, event: &mut Value, request: &mut Value) {
        if self.rng.random_bool(0.25) {
            if let Some(initiator) = event["initiator"].as_object_mut() {
                initiator.remove("host");
            }
            if let Some(event) = event.as_object_mut() {
                event.remove("saveServiceCopy");
            }
        }
        let Some(fields) = request.as_object_mut() else {
            return;
        };
        if self.rng.random_bool(0.3) {
            fields.insert("expirationDate".into(), json!("2027-12-31T23:59:59Z"));
        }
        if self.rng.random_bool(0.3) {
            fields.insert(
                "totalResources".into(),
                json!(self.rng.random_range(1..500)),
            );
            fields.insert(
                "maxAllowedRetrievals".into(),
                json!(self.rng.random_range(1..10)),
            );
        }
        if self.rng.random_bool(0.25) {
            let aliases: Vec<String> = (0..self.rng.random_range(1..5))
                .map(|i| format!("alias-{i}-{}", self.hex(12)))
                .collect();
            fields.insert("keyAliases".into(), json!(aliases));
        }
        if self.rng.random_bool(0.2) {
            let words = [
                "rotation", "of", "the", "payments", "root", "key", "for", "region", "audit",
                "policy",
            ];
            let text: Vec<&str> = (0..self.rng.random_range(5..60))
                .map(|_| *words.choose(&mut self.rng).unwrap_or(&"key"))
                .collect();
            fields.insert("description".into(), json!(text.join(" ")));
        }
    }

    fn securosys(&mut self, id: &str, millis: i64, out: &mut Vec<u8>) {
        let generic = [
            ("KEY_CREATED", "KEY_MANAGEMENT", "INFO", "SUCCESS"),
            ("KEY_DELETE_FAILED", "KEY_MANAGEMENT", "ERROR", "ERROR"),
            ("USER_UPDATE_FAILED", "USER_MANAGEMENT", "ERROR", "ERROR"),
            (
                "CERTIFICATE_IMPORTED",
                "CERTIFICATE_MANAGEMENT",
                "INFO",
                "SUCCESS",
            ),
            ("SIGN", "CRYPTO_OPERATION", "INFO", "SUCCESS"),
            ("DATA_OBJECT_UPDATED", "DATA_OBJECT", "INFO", "SUCCESS"),
        ];
        let (event, category, level, result) = if self.rng.random_bool(0.5) {
            let (name, category, _) = *SECUROSYS_EVENTS
                .choose(&mut self.rng)
                .unwrap_or(&SECUROSYS_EVENTS[0]);
            let (level, result) = securosys_level(name);
            (name, category.as_str().to_ascii_uppercase(), level, result)
        } else {
            let (name, category, level, result) =
                *generic.choose(&mut self.rng).unwrap_or(&generic[0]);
            (name, category.to_owned(), level, result)
        };
        let level = if level == "WARNING" && self.rng.random_bool(0.3) {
            "WARN"
        } else {
            level
        };
        let user = *USERS.choose(&mut self.rng).unwrap_or(&USERS[0]);
        let line = json!({
            "timestamp": Timestamp::from_millis(millis).to_string(),
            "level": level,
            "event": event,
            "category": category,
            "user": user,
            "role": if self.rng.random_bool(0.3) { "admin" } else { "user" },
            "provider": *["microsoft", "keycloak", "local"].choose(&mut self.rng).unwrap_or(&"local"),
            "resource": format!("KEY-{:04}", self.rng.random_range(0..10_000)),
            "details": self.securosys_details(),
            "result": result,
            "api_url": "https://tsb.example.com",
            "session_id": self.rng.random_range(100_000_000_000u64..999_999_999_999).to_string(),
            "id": id,
        });
        write_json(&line, out);
    }

    /// Zero to four detail fields (most lines have none), which spread the
    /// line sizes over 250–450 bytes.
    fn securosys_details(&mut self) -> Value {
        let mut details = serde_json::Map::new();
        let n = *[0usize, 0, 0, 1, 2, 3, 4]
            .choose(&mut self.rng)
            .unwrap_or(&0);
        let candidates = [
            ("keyName", json!(format!("key-{}", self.hex(8)))),
            (
                "algorithm",
                json!(
                    *["RSA", "EC", "AES", "ED"]
                        .choose(&mut self.rng)
                        .unwrap_or(&"RSA")
                ),
            ),
            (
                "keySize",
                json!(
                    *[256, 2048, 3072, 4096]
                        .choose(&mut self.rng)
                        .unwrap_or(&2048)
                ),
            ),
            (
                "partition",
                json!(format!("PART-{:03}", self.rng.random_range(0..100))),
            ),
            (
                "clientIp",
                json!(format!("203.0.113.{}", self.rng.random_range(1..250))),
            ),
        ];
        for (name, value) in candidates.into_iter().take(n) {
            details.insert(name.into(), value);
        }
        Value::Object(details)
    }

    fn malformed(&mut self, id: &str, millis: i64, out: &mut Vec<u8>) {
        let text = match self.rng.random_range(0..6) {
            0 => format!(
                r#"{{"eventTime":"{}","action":"hs-crypto.secrets.read","id":"{id}""#,
                Timestamp::from_millis(millis)
            ),
            1 => format!(r#"["{id}"]"#),
            2 => format!(r#"{{"hello":"world","id":"{id}"}}"#),
            3 => format!(
                r#"{{"eventTime":"{}","outcome":"success","id":"{id}"}}"#,
                Timestamp::from_millis(millis)
            ),
            4 => format!(r#"{{"eventTime":"not a time","action":"kms.secrets.read","id":"{id}"}}"#),
            _ => format!(
                "{} audit line without JSON {id}",
                Timestamp::from_millis(millis)
            ),
        };
        out.extend_from_slice(text.as_bytes());
    }

    /// One of the five vendor time forms.
    fn time_text(&mut self, millis: i64) -> String {
        let canonical = Timestamp::from_millis(millis).to_string();
        let stem = &canonical[..19];
        match self.rng.random_range(0..5) {
            0 => format!("{stem}.{:02}+0000", (millis % 1000) / 10),
            1 => canonical,
            2 => format!("{stem}+00:00"),
            3 => format!("{stem}.{:06}Z", (millis % 1000) * 1000),
            _ => {
                let local = Timestamp::from_millis(millis - 6 * 3_600_000).to_string();
                format!("{}-06:00", &local[..19])
            }
        }
    }

    fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    fn hex(&mut self, len: usize) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        (0..len)
            .map(|_| char::from(DIGITS[self.rng.random_range(0..16)]))
            .collect()
    }
}

/// The level and result a Securosys event of that name is logged with.
fn securosys_level(name: &str) -> (&'static str, &'static str) {
    match name {
        "LOGIN_FAILURE" | "LOGIN_DENIED" => ("WARNING", "DENIED"),
        n if n.ends_with("_ERROR")
            || n.ends_with("_FAILED")
            || n.ends_with("_TIMEOUT")
            || n.ends_with("_CORRUPTED") =>
        {
            ("ERROR", "ERROR")
        }
        _ => ("INFO", "SUCCESS"),
    }
}

fn write_json(value: &Value, out: &mut Vec<u8>) {
    // Writing JSON into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(seed: u64, n: u64) -> Vec<Vec<u8>> {
        mixed_records(seed, n, 1.0)
    }

    #[test]
    fn same_seed_same_bytes() {
        assert_eq!(records(7, 200), records(7, 200));
        assert_ne!(records(7, 200), records(8, 200));
    }

    #[test]
    fn records_are_single_lines_with_unique_ids() {
        let lines = records(1, 2000);
        for (n, line) in lines.iter().enumerate() {
            assert!(!line.contains(&b'\n'), "record {n} spans lines");
            let text = String::from_utf8_lossy(line);
            assert!(
                text.contains(&format!("kt-1-{n}")),
                "record {n} lacks its id: {text}"
            );
        }
    }
}
