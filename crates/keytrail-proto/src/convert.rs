//! Conversions between [`keytrail_core::Event`] and the protobuf
//! [`v1::Event`].
//!
//! Where it sits: the gRPC sink converts each classified event to protobuf
//! before it is batched; a receiver converts back to store or print the
//! JSON contract form.
//!
//! Guarantees:
//! - core → protobuf never fails and never drops a field of the JSON
//!   contract (`log_source_crn`, which is not part of the output, is not
//!   sent);
//! - protobuf → core → JSON gives exactly the JSON of the original event:
//!   `details` values travel as compact JSON text and are kept as that text
//!   (checked, and rewritten compactly when a sender spaced it out), the
//!   severity id is the enum number;
//! - protobuf → core refuses what keytrail never sends (an unspecified or
//!   unknown enum value, a `details` value that is not JSON) with a
//!   [`ConvertError`] naming the field, so a receiver can reject the batch
//!   for good instead of storing a guess.

use keytrail_core::{
    Actor, Category, Details, DetailsBuilder, Event, KeyFacts, Ocsf, Origin, Outcome, Reason,
    Severity, Source, Target, Timestamp, TkeFacts, json,
};

use crate::v1;

/// Why a protobuf event could not become a [`keytrail_core::Event`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// An enumeration field holds 0 (unspecified) or a number this version
    /// does not know.
    #[error("field `{field}` has unspecified or unknown value {value}")]
    UnknownEnum {
        /// The field (`source`, `category`, `outcome`, `severity`).
        field: &'static str,
        /// The number received.
        value: i32,
    },
    /// A `details` entry whose value is not JSON text.
    #[error("details entry `{name}` is not valid json")]
    InvalidDetail {
        /// The entry's name.
        name: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
}

impl From<&Event> for v1::Event {
    fn from(event: &Event) -> v1::Event {
        v1::Event {
            time_unix_ms: event.time.as_millis(),
            time_inferred: event.time_inferred,
            source: source_to_proto(event.source) as i32,
            action: event.action.to_string(),
            legacy_action: text(event.legacy_action.as_deref()),
            description: text(event.description.as_deref()),
            category: category_to_proto(event.category) as i32,
            outcome: outcome_to_proto(event.outcome) as i32,
            status_code: event.status_code,
            severity: severity_to_proto(event.severity) as i32,
            vendor_severity: text(event.vendor_severity.as_deref()),
            actionable: event.actionable,
            remediation: text(event.remediation.as_deref()),
            correlation_id: text(event.correlation_id.as_deref()),
            request_uri: text(event.request_uri.as_deref()),
            instance_id: text(event.instance_id.as_deref()),
            region: text(event.region.as_deref()),
            account_id: text(event.account_id.as_deref()),
            message: text(event.message.as_deref()),
            event_id: text(event.event_id.as_deref()),
            data_event: event.data_event,
            actor: (!event.actor.is_empty()).then(|| actor_to_proto(&event.actor)),
            target: (!event.target.is_empty()).then(|| target_to_proto(&event.target)),
            key: event.key.as_deref().map(key_to_proto),
            tke: event.tke.as_deref().map(tke_to_proto),
            reason: event.reason.as_ref().map(|r| v1::Reason {
                r#type: text(r.kind.as_deref()),
                failure: text(r.failure.as_deref()),
            }),
            details: event
                .details
                .iter()
                .map(|(name, json)| (name.to_owned(), json.to_owned()))
                .collect(),
            labels: event.labels.as_deref().cloned().unwrap_or_default(),
            ocsf: event.ocsf.map(|o| v1::Ocsf {
                class_uid: o.class_uid,
                category_uid: o.category_uid,
                activity_id: o.activity_id,
                status_id: o.status_id,
            }),
            origin: event.origin.as_ref().map(|o| v1::Origin {
                topic: o.topic.to_string(),
                partition: o.partition,
                offset: o.offset,
            }),
        }
    }
}

impl TryFrom<v1::Event> for Event {
    type Error = ConvertError;

    fn try_from(proto: v1::Event) -> Result<Event, ConvertError> {
        let source = source_from_proto(proto.source)?;
        let mut event = Event::new(
            Timestamp::from_millis(proto.time_unix_ms),
            source,
            proto.action.into(),
        );
        event.time_inferred = proto.time_inferred;
        event.legacy_action = proto.legacy_action.map(Into::into);
        event.description = proto.description.map(Into::into);
        event.category = category_from_proto(proto.category)?;
        event.outcome = outcome_from_proto(proto.outcome)?;
        event.status_code = proto.status_code;
        event.severity = severity_from_proto(proto.severity)?;
        event.vendor_severity = proto.vendor_severity.map(Into::into);
        event.actionable = proto.actionable;
        event.remediation = proto.remediation.map(Into::into);
        event.correlation_id = proto.correlation_id.map(Into::into);
        event.request_uri = proto.request_uri.map(Into::into);
        event.instance_id = proto.instance_id.map(Into::into);
        event.region = proto.region.map(Into::into);
        event.account_id = proto.account_id.map(Into::into);
        event.message = proto.message.map(Into::into);
        event.event_id = proto.event_id.map(Into::into);
        event.data_event = proto.data_event;
        event.actor = proto.actor.map(actor_from_proto).unwrap_or_default();
        event.target = proto.target.map(target_from_proto).unwrap_or_default();
        event.key = proto.key.map(|k| Box::new(key_from_proto(k)));
        event.tke = proto.tke.map(|t| Box::new(tke_from_proto(t)));
        event.reason = proto.reason.map(|r| Reason {
            kind: r.r#type.map(Into::into),
            failure: r.failure.map(Into::into),
        });
        event.details = details_from_proto(
            proto
                .details
                .iter()
                .map(|(name, text)| (name.as_str(), text.as_str())),
        )?;
        event.labels = (!proto.labels.is_empty()).then(|| Box::new(proto.labels));
        event.ocsf = proto.ocsf.map(|o| Ocsf {
            class_uid: o.class_uid,
            category_uid: o.category_uid,
            activity_id: o.activity_id,
            status_id: o.status_id,
        });
        event.origin = proto.origin.map(|o| Origin {
            topic: o.topic.into(),
            partition: o.partition,
            offset: o.offset,
        });
        Ok(event)
    }
}

/// Each value is checked to be JSON. A plain string or integer (most
/// values) is recognized without a parser. keytrail sends compact text,
/// kept as it is; any other (whitespace between tokens, which could hold
/// a line break, or nesting deeper than [`MAX_PLAIN_NESTING`]) is parsed,
/// within serde_json's depth limit, and written back compactly, so the
/// JSON of the event stays one line. Entries may come in any order; of equal names the
/// last one wins, as in a protobuf map.
pub(crate) fn details_from_proto<'a>(
    details: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Details, ConvertError> {
    let mut out = DetailsBuilder::new();
    for (name, text) in details {
        if json::plain_string(text).is_some() || json::is_integer(text) {
            out.insert_json(name, text);
            continue;
        }
        let invalid = |source| ConvertError::InvalidDetail {
            name: name.to_owned(),
            source,
        };
        let raw = serde_json::from_str::<&serde_json::value::RawValue>(text).map_err(invalid)?;
        if is_compact(raw.get()) {
            out.insert_json(name, raw.get());
        } else {
            let value = serde_json::from_str::<serde_json::Value>(text).map_err(invalid)?;
            out.insert(name, &value);
        }
    }
    Ok(out.build())
}

/// Nesting kept as sent; deeper values go through serde_json's parser and
/// its depth limit.
const MAX_PLAIN_NESTING: usize = 64;

/// True when `json` (known to be valid) has no whitespace between its
/// tokens and nests at most [`MAX_PLAIN_NESTING`] deep.
fn is_compact(json: &str) -> bool {
    let layout = json::layout(json.as_bytes(), MAX_PLAIN_NESTING);
    layout.deepest <= MAX_PLAIN_NESTING && !layout.spaced
}

/// An owned protobuf string of an event field.
fn text(field: Option<&str>) -> Option<String> {
    field.map(str::to_owned)
}

fn actor_to_proto(actor: &Actor) -> v1::Actor {
    v1::Actor {
        user: text(actor.user.as_deref()),
        id: text(actor.id.as_deref()),
        role: text(actor.role.as_deref()),
        provider: text(actor.provider.as_deref()),
        ip: text(actor.ip.as_deref()),
        user_agent: text(actor.user_agent.as_deref()),
        session_id: text(actor.session_id.as_deref()),
        cert_fingerprint: text(actor.cert_fingerprint.as_deref()),
    }
}

fn actor_from_proto(actor: v1::Actor) -> Actor {
    Actor {
        user: actor.user.map(Into::into),
        id: actor.id.map(Into::into),
        role: actor.role.map(Into::into),
        provider: actor.provider.map(Into::into),
        ip: actor.ip.map(Into::into),
        user_agent: actor.user_agent.map(Into::into),
        session_id: actor.session_id.map(Into::into),
        cert_fingerprint: actor.cert_fingerprint.map(Into::into),
    }
}

fn target_to_proto(target: &Target) -> v1::Target {
    v1::Target {
        id: text(target.id.as_deref()),
        name: text(target.name.as_deref()),
        r#type: text(target.kind.as_deref()),
        api_url: text(target.api_url.as_deref()),
    }
}

fn target_from_proto(target: v1::Target) -> Target {
    Target {
        id: target.id.map(Into::into),
        name: target.name.map(Into::into),
        kind: target.r#type.map(Into::into),
        api_url: target.api_url.map(Into::into),
    }
}

fn key_to_proto(key: &KeyFacts) -> v1::Key {
    v1::Key {
        id: text(key.id.as_deref()),
        r#type: text(key.kind.as_deref()),
        state: text(key.state.as_deref()),
        state_code: key.state_code,
        previous_state: text(key.previous_state.as_deref()),
        previous_state_code: key.previous_state_code,
        version_id: text(key.version_id.as_deref()),
        rewrapped_version_id: text(key.rewrapped_version_id.as_deref()),
        version_created: text(key.version_created.as_deref()),
        key_ring_id: text(key.key_ring_id.as_deref()),
        previous_key_ring_id: text(key.previous_key_ring_id.as_deref()),
    }
}

fn key_from_proto(key: v1::Key) -> KeyFacts {
    KeyFacts {
        id: key.id.map(Into::into),
        kind: key.r#type.map(Into::into),
        state: key.state.map(Into::into),
        state_code: key.state_code,
        previous_state: key.previous_state.map(Into::into),
        previous_state_code: key.previous_state_code,
        version_id: key.version_id.map(Into::into),
        rewrapped_version_id: key.rewrapped_version_id.map(Into::into),
        version_created: key.version_created.map(Into::into),
        key_ring_id: key.key_ring_id.map(Into::into),
        previous_key_ring_id: key.previous_key_ring_id.map(Into::into),
    }
}

fn tke_to_proto(tke: &TkeFacts) -> v1::Tke {
    v1::Tke {
        location: text(tke.location.as_deref()),
        availability_zone: text(tke.availability_zone.as_deref()),
        hsm_index: tke.hsm_index,
        domain_index: tke.domain_index,
        admin_id: text(tke.admin_id.as_deref()),
        signature_threshold: tke.signature_threshold,
        revocation_signature_threshold: tke.revocation_signature_threshold,
        verification_pattern: text(tke.verification_pattern.as_deref()),
    }
}

fn tke_from_proto(tke: v1::Tke) -> TkeFacts {
    TkeFacts {
        location: tke.location.map(Into::into),
        availability_zone: tke.availability_zone.map(Into::into),
        hsm_index: tke.hsm_index,
        domain_index: tke.domain_index,
        admin_id: tke.admin_id.map(Into::into),
        signature_threshold: tke.signature_threshold,
        revocation_signature_threshold: tke.revocation_signature_threshold,
        verification_pattern: tke.verification_pattern.map(Into::into),
    }
}

/// One row per variant: the core value and its protobuf enum value. Both
/// directions read the same table, so they cannot disagree.
const SOURCES: [(Source, v1::Source); 4] = [
    (Source::SecurosysKm, v1::Source::SecurosysKm),
    (Source::IbmHpcs, v1::Source::IbmHpcs),
    (Source::IbmKeyProtect, v1::Source::IbmKeyProtect),
    (Source::IbmCloud, v1::Source::IbmCloud),
];

const CATEGORIES: [(Category, v1::Category); 14] = [
    (Category::Authentication, v1::Category::Authentication),
    (Category::KeyManagement, v1::Category::KeyManagement),
    (
        Category::CertificateManagement,
        v1::Category::CertificateManagement,
    ),
    (Category::UserManagement, v1::Category::UserManagement),
    (
        Category::ApproverManagement,
        v1::Category::ApproverManagement,
    ),
    (Category::CryptoOperation, v1::Category::CryptoOperation),
    (Category::DataObject, v1::Category::DataObject),
    (Category::ProfileManagement, v1::Category::ProfileManagement),
    (Category::KmipManagement, v1::Category::KmipManagement),
    (Category::System, v1::Category::System),
    (Category::PolicyManagement, v1::Category::PolicyManagement),
    (Category::HsmAdministration, v1::Category::HsmAdministration),
    (
        Category::KeystoreManagement,
        v1::Category::KeystoreManagement,
    ),
    (Category::Other, v1::Category::Other),
];

const OUTCOMES: [(Outcome, v1::Outcome); 5] = [
    (Outcome::Success, v1::Outcome::Success),
    (Outcome::Failure, v1::Outcome::Failure),
    (Outcome::Denied, v1::Outcome::Denied),
    (Outcome::Pending, v1::Outcome::Pending),
    (Outcome::Unknown, v1::Outcome::Unknown),
];

const SEVERITIES: [(Severity, v1::Severity); 5] = [
    (Severity::Informational, v1::Severity::Informational),
    (Severity::Low, v1::Severity::Low),
    (Severity::Medium, v1::Severity::Medium),
    (Severity::High, v1::Severity::High),
    (Severity::Critical, v1::Severity::Critical),
];

fn to_proto<C: PartialEq + Copy, P: Copy>(table: &[(C, P)], value: C, unspecified: P) -> P {
    table
        .iter()
        .find(|(core, _)| *core == value)
        .map_or(unspecified, |(_, proto)| *proto)
}

fn from_proto<C: Copy, P: Copy + Into<i32>>(
    table: &[(C, P)],
    field: &'static str,
    value: i32,
) -> Result<C, ConvertError> {
    table
        .iter()
        .find(|(_, proto)| (*proto).into() == value)
        .map(|(core, _)| *core)
        .ok_or(ConvertError::UnknownEnum { field, value })
}

pub(crate) fn source_to_proto(source: Source) -> v1::Source {
    to_proto(&SOURCES, source, v1::Source::Unspecified)
}

pub(crate) fn source_from_proto(value: i32) -> Result<Source, ConvertError> {
    from_proto(&SOURCES, "source", value)
}

pub(crate) fn category_to_proto(category: Category) -> v1::Category {
    to_proto(&CATEGORIES, category, v1::Category::Unspecified)
}

pub(crate) fn category_from_proto(value: i32) -> Result<Category, ConvertError> {
    from_proto(&CATEGORIES, "category", value)
}

pub(crate) fn outcome_to_proto(outcome: Outcome) -> v1::Outcome {
    to_proto(&OUTCOMES, outcome, v1::Outcome::Unspecified)
}

pub(crate) fn outcome_from_proto(value: i32) -> Result<Outcome, ConvertError> {
    from_proto(&OUTCOMES, "outcome", value)
}

pub(crate) fn severity_to_proto(severity: Severity) -> v1::Severity {
    to_proto(&SEVERITIES, severity, v1::Severity::Unspecified)
}

pub(crate) fn severity_from_proto(value: i32) -> Result<Severity, ConvertError> {
    from_proto(&SEVERITIES, "severity", value)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use prost::Message as _;

    use super::*;

    /// An event with every field of the contract set.
    pub(crate) fn full_event() -> Event {
        let mut event = Event::new(
            Timestamp::from_millis(1_774_375_218_936),
            Source::IbmHpcs,
            "hs-crypto.secrets.create".into(),
        );
        event.time_inferred = true;
        event.legacy_action = Some("hs-crypto.secrets.old".into());
        event.description = Some("Create a key".into());
        event.category = Category::KeyManagement;
        event.outcome = Outcome::Denied;
        event.status_code = Some(403);
        event.severity = Severity::Critical;
        event.vendor_severity = Some("critical".into());
        event.actionable = true;
        event.remediation = Some("Check the policy".into());
        event.correlation_id = Some("corr".into());
        event.request_uri = Some("https://example.invalid/keys".into());
        event.instance_id = Some("inst".into());
        event.region = Some("us-south".into());
        event.account_id = Some("acct".into());
        event.message = Some("Hyper Protect Crypto Services: create key".into());
        event.event_id = Some("id-1".into());
        event.data_event = Some(false);
        event.actor = Actor {
            user: Some("alice".into()),
            id: Some("IBMid-1".into()),
            role: Some("admin".into()),
            provider: Some("token".into()),
            ip: Some("192.0.2.1".into()),
            user_agent: Some("curl".into()),
            session_id: Some("s".into()),
            cert_fingerprint: Some("ab:cd".into()),
        };
        event.target = Target {
            id: Some("crn:v1:...".into()),
            name: Some("root key".into()),
            kind: Some("kms/secrets".into()),
            api_url: Some("/api".into()),
        };
        event.key = Some(Box::new(KeyFacts {
            id: Some("k".into()),
            kind: Some("root".into()),
            state: Some("active".into()),
            state_code: Some(1),
            previous_state: Some("pre_activation".into()),
            previous_state_code: Some(0),
            version_id: Some("v".into()),
            rewrapped_version_id: Some("rv".into()),
            version_created: Some("2026-01-01".into()),
            key_ring_id: Some("ring".into()),
            previous_key_ring_id: Some("old-ring".into()),
        }));
        event.tke = Some(Box::new(TkeFacts {
            location: Some("[us-east].[AZ2].[03].[22]".into()),
            availability_zone: Some("AZ2".into()),
            hsm_index: Some(3),
            domain_index: Some(22),
            admin_id: Some("admin".into()),
            signature_threshold: Some(2),
            revocation_signature_threshold: Some(1),
            verification_pattern: Some("vp".into()),
        }));
        event.reason = Some(Reason {
            kind: Some("Forbidden".into()),
            failure: Some("no".into()),
        });
        event.details.insert("count", &serde_json::json!(3));
        event.details.insert("ratio", &serde_json::json!(0.1));
        event
            .details
            .insert("nested", &serde_json::json!({"a": [1, "b", null]}));
        event
            .details
            .insert("text", &serde_json::json!("quote \" and é"));
        event.labels = Some(Box::new(BTreeMap::from([("team".into(), "crypto".into())])));
        event.ocsf = Some(Ocsf {
            class_uid: 6003,
            category_uid: 6,
            activity_id: 1,
            status_id: 2,
        });
        event.origin = Some(Origin {
            topic: keytrail_core::Topic::from("audit"),
            partition: 2,
            offset: 42,
        });
        event
    }

    fn round_trip(event: &Event) -> Event {
        let proto = v1::Event::from(event);
        let bytes = proto.encode_to_vec();
        let decoded = v1::Event::decode(bytes.as_slice()).expect("decodes");
        Event::try_from(decoded).expect("converts back")
    }

    #[test]
    fn a_full_event_round_trips_to_the_same_json() {
        let event = full_event();
        let back = round_trip(&event);
        assert_eq!(back, event);
        assert_eq!(
            serde_json::to_string(&back).expect("serializes"),
            serde_json::to_string(&event).expect("serializes")
        );
    }

    #[test]
    fn a_minimal_event_round_trips_without_empty_objects() {
        let event = Event::new(
            Timestamp::from_millis(0),
            Source::SecurosysKm,
            "LOGIN_SUCCESS".into(),
        );
        let proto = v1::Event::from(&event);
        assert!(proto.actor.is_none() && proto.target.is_none() && proto.details.is_empty());
        assert_eq!(round_trip(&event), event);
    }

    #[test]
    fn every_enum_value_maps_both_ways() {
        for source in Source::ALL {
            assert_eq!(
                source_from_proto(source_to_proto(source) as i32).expect("maps"),
                source
            );
        }
        for category in Category::ALL {
            assert_eq!(
                category_from_proto(category_to_proto(category) as i32).expect("maps"),
                category
            );
        }
        for outcome in Outcome::ALL {
            assert_eq!(
                outcome_from_proto(outcome_to_proto(outcome) as i32).expect("maps"),
                outcome
            );
        }
        for severity in Severity::ALL {
            let proto = severity_to_proto(severity);
            assert_eq!(
                proto as i32,
                i32::from(severity.id()),
                "number is the OCSF id"
            );
            assert_eq!(severity_from_proto(proto as i32).expect("maps"), severity);
        }
    }

    #[test]
    fn unspecified_enums_and_bad_details_are_refused_by_name() {
        let mut proto = v1::Event::from(&full_event());
        proto.source = 0;
        let err = Event::try_from(proto).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "field `source` has unspecified or unknown value 0"
        );

        let mut proto = v1::Event::from(&full_event());
        proto.severity = 99;
        assert!(matches!(
            Event::try_from(proto),
            Err(ConvertError::UnknownEnum {
                field: "severity",
                value: 99
            })
        ));

        let mut proto = v1::Event::from(&full_event());
        proto.details.insert("broken".into(), "{not json".into());
        let err = Event::try_from(proto).expect_err("refused");
        assert_eq!(err.to_string(), "details entry `broken` is not valid json");

        let mut proto = v1::Event::from(&full_event());
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        proto.details.insert("deep".into(), deep);
        assert!(matches!(
            Event::try_from(proto),
            Err(ConvertError::InvalidDetail { name, .. }) if name == "deep"
        ));
    }

    #[test]
    fn spaced_out_details_are_written_back_compactly() {
        let mut proto = v1::Event::from(&full_event());
        proto.details.clear();
        proto
            .details
            .insert("spaced".into(), "{ \"a\" :\n [1, \"x y\"] }".into());
        proto
            .details
            .insert("kept".into(), r#"{"a":"b\"\n"}"#.into());
        let event = Event::try_from(proto).expect("converts");
        assert_eq!(event.details.get("spaced"), Some(r#"{"a":[1,"x y"]}"#));
        assert_eq!(event.details.get("kept"), Some(r#"{"a":"b\"\n"}"#));
        let mut json = Vec::new();
        event.write_json(&mut json);
        assert!(!json.contains(&b'\n'), "one line");
    }
}
