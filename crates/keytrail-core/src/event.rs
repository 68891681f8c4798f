//! The normalized audit event.
//!
//! One type for every vendor. Its JSON form (the [`serde::Serialize`] impl
//! below) is the contract of `spec/normalized-event.md`: contract field
//! names are exact, absent values are omitted (never empty strings), and
//! `severity_id` is derived from `severity` so the two cannot disagree.
//!
//! Which stage fills which field:
//! - normalize: everything read straight from the vendor JSON (time, source,
//!   action, outcome, status code, actor, target, raw key and TKE facts,
//!   details) plus `origin` and the Kafka header fallbacks;
//! - enrich: catalog facts (current action name, description, category),
//!   CRN-derived region/account/instance, key state names, TKE location
//!   split, certificate fingerprint, operator labels;
//! - classify: severity, actionable, remediation, OCSF ids.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Text that is usually a catalog constant and sometimes owned (operator
/// configuration): borrowing the constant keeps the hot path allocation free.
pub type Text = Cow<'static, str>;

/// Which product emitted the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Securosys Key Manager UI JSON log.
    SecurosysKm,
    /// IBM Hyper Protect Crypto Services (Activity Tracker CADF).
    IbmHpcs,
    /// IBM Key Protect (Activity Tracker CADF).
    IbmKeyProtect,
    /// Any other IBM Cloud service sharing the Activity Tracker topic.
    IbmCloud,
}

impl Source {
    /// Every source, for metrics pre-registration and tests.
    pub const ALL: [Source; 4] = [
        Source::SecurosysKm,
        Source::IbmHpcs,
        Source::IbmKeyProtect,
        Source::IbmCloud,
    ];

    /// The contract name (`securosys_km`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::SecurosysKm => "securosys_km",
            Source::IbmHpcs => "ibm_hpcs",
            Source::IbmKeyProtect => "ibm_key_protect",
            Source::IbmCloud => "ibm_cloud",
        }
    }

    /// True for the IBM Activity Tracker sources.
    pub const fn is_ibm(self) -> bool {
        !matches!(self, Source::SecurosysKm)
    }
}

/// The unified event family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Logins and sessions.
    Authentication,
    /// Key lifecycle.
    KeyManagement,
    /// Certificates (Securosys) and the HPCS certificate manager.
    CertificateManagement,
    /// Local users.
    UserManagement,
    /// Securosys approvers.
    ApproverManagement,
    /// Wrap, unwrap, sign and other uses of a key.
    CryptoOperation,
    /// Securosys data objects.
    DataObject,
    /// Securosys profiles.
    ProfileManagement,
    /// KMIP users, keys and adapters.
    KmipManagement,
    /// Securosys system events (backend connectivity, TLS).
    System,
    /// Key and instance policies.
    PolicyManagement,
    /// Trusted Key Entry: crypto units, master keys, administrators.
    HsmAdministration,
    /// EP11 keystores.
    KeystoreManagement,
    /// Anything else.
    Other,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 14] = [
        Category::Authentication,
        Category::KeyManagement,
        Category::CertificateManagement,
        Category::UserManagement,
        Category::ApproverManagement,
        Category::CryptoOperation,
        Category::DataObject,
        Category::ProfileManagement,
        Category::KmipManagement,
        Category::System,
        Category::PolicyManagement,
        Category::HsmAdministration,
        Category::KeystoreManagement,
        Category::Other,
    ];

    /// The contract name (`key_management`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Authentication => "authentication",
            Category::KeyManagement => "key_management",
            Category::CertificateManagement => "certificate_management",
            Category::UserManagement => "user_management",
            Category::ApproverManagement => "approver_management",
            Category::CryptoOperation => "crypto_operation",
            Category::DataObject => "data_object",
            Category::ProfileManagement => "profile_management",
            Category::KmipManagement => "kmip_management",
            Category::System => "system",
            Category::PolicyManagement => "policy_management",
            Category::HsmAdministration => "hsm_administration",
            Category::KeystoreManagement => "keystore_management",
            Category::Other => "other",
        }
    }

    /// Reads a category name in any letter case (`KEY_MANAGEMENT`,
    /// `key_management`); `None` for a name outside the set.
    pub fn from_name(name: &str) -> Option<Category> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(name))
    }
}

/// What came of the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It worked.
    Success,
    /// It failed.
    Failure,
    /// It was refused for lack of authentication or permission.
    Denied,
    /// It is still under way (IBM `pending`).
    Pending,
    /// The event did not say.
    #[default]
    Unknown,
}

impl Outcome {
    /// Every outcome.
    pub const ALL: [Outcome; 5] = [
        Outcome::Success,
        Outcome::Failure,
        Outcome::Denied,
        Outcome::Pending,
        Outcome::Unknown,
    ];

    /// The contract name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
            Outcome::Pending => "pending",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The normalized severity scale, ordered from least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Nothing to do.
    #[default]
    Informational,
    /// Worth a look.
    Low,
    /// IBM `warning`, Securosys `WARNING`.
    Medium,
    /// Securosys `ERROR`.
    High,
    /// IBM `critical`.
    Critical,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Informational,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The contract name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The OCSF severity id: informational 1 … critical 5.
    pub const fn id(self) -> u8 {
        match self {
            Severity::Informational => 1,
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }

    /// Reads a contract severity name (`high`), any letter case.
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// Who acted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// Securosys `user`; IBM `initiator.name`, else `initiator.id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// IBM `initiator.id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Securosys `role`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Securosys `provider`; IBM `initiator.credential.type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// IBM `initiator.host.address`, trimmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// IBM `initiator.host.agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Securosys `session_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The TLS certificate fingerprint of a KMIP-for-VMware initiator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<String>,
}

impl Actor {
    /// True when no field is set (the object is then omitted).
    pub fn is_empty(&self) -> bool {
        self == &Actor::default()
    }
}

/// What was acted on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// IBM `target.id` (a CRN); Securosys `resource`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// IBM `target.name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// IBM `target.typeURI`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Securosys `api_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
}

impl Target {
    /// True when no field is set (the object is then omitted).
    pub fn is_empty(&self) -> bool {
        self == &Target::default()
    }
}

/// Key lifecycle facts of an IBM key event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyFacts {
    /// `responseData.keyId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `requestData.keyType`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The key state as a name (`active`, `destroyed`, `dek_enabled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Text>,
    /// The key state integer as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_code: Option<i64>,
    /// The state before the action, as a name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<Text>,
    /// The state integer before the action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_state_code: Option<i64>,
    /// `responseData.keyVersionId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `responseData.rewrappedKeyVersionId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrapped_version_id: Option<String>,
    /// `responseData.keyVersionCreationDate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_created: Option<String>,
    /// `requestData.newValue.keyRingId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ring_id: Option<String>,
    /// `requestData.initialValue.keyRingId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_key_ring_id: Option<String>,
}

impl KeyFacts {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self == &KeyFacts::default()
    }
}

/// Trusted Key Entry facts of an HPCS `tke-*` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TkeFacts {
    /// `requestData.location` as sent: `[us-east].[AZ2-CSSTAG2].[03].[22]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Second bracket of the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Third bracket of the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsm_index: Option<u32>,
    /// Fourth bracket of the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_index: Option<u32>,
    /// `requestData.adminId`: hash of the administrator's signature key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_id: Option<String>,
    /// `requestData.signatureThreshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_threshold: Option<i64>,
    /// `requestData.revocationSignatureThreshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_signature_threshold: Option<i64>,
    /// `responseData.verificationPattern`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_pattern: Option<String>,
}

impl TkeFacts {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self == &TkeFacts::default()
    }
}

/// IBM `reason` details beyond the status code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// `reason.reasonType` (`Forbidden`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `reason.reasonForFailure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Reason {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.kind.is_none() && self.failure.is_none()
    }
}

/// OCSF classification for SIEMs that speak OCSF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ocsf {
    /// OCSF class (3002 Authentication, 6003 API Activity, …).
    pub class_uid: u32,
    /// OCSF category (3 Identity & Access Management, 6 Application Activity).
    pub category_uid: u32,
    /// Activity within the class.
    pub activity_id: u32,
    /// 1 success, 2 failure, 0 unknown, 99 other.
    pub status_id: u32,
}

/// Where in Kafka the event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Topic name, shared by every event of the topic.
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
}

/// The normalized audit event. See the module docs for who fills what.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Event time, UTC, millisecond precision.
    pub time: Timestamp,
    /// True when the event carried no time and `time` was inferred.
    pub time_inferred: bool,
    /// Emitting product.
    pub source: Source,
    /// Canonical action name (IBM: the current name).
    pub action: String,
    /// The historical IBM name as received, when it was translated.
    pub legacy_action: Option<String>,
    /// Catalog description of the action.
    pub description: Option<Text>,
    /// Unified family.
    pub category: Category,
    /// What came of it.
    pub outcome: Outcome,
    /// IBM `reason.reasonCode`.
    pub status_code: Option<u32>,
    /// Normalized severity; `severity_id` is derived from it.
    pub severity: Severity,
    /// The vendor's own level or severity, as sent.
    pub vendor_severity: Option<String>,
    /// True when an operations team should alert on it.
    pub actionable: bool,
    /// What the operator should check, for actionable events.
    pub remediation: Option<Text>,
    /// IBM `correlationId` / `correlationID`.
    pub correlation_id: Option<String>,
    /// IBM `requestData.requestURI`.
    pub request_uri: Option<String>,
    /// IBM service instance.
    pub instance_id: Option<String>,
    /// IBM region.
    pub region: Option<String>,
    /// IBM account.
    pub account_id: Option<String>,
    /// IBM `message` (human-readable summary).
    pub message: Option<String>,
    /// The event's own unique id when it has one (IBM `id`).
    pub event_id: Option<String>,
    /// IBM `dataEvent`.
    pub data_event: Option<bool>,
    /// Who acted.
    pub actor: Actor,
    /// What was acted on.
    pub target: Target,
    /// Key lifecycle facts.
    pub key: Option<Box<KeyFacts>>,
    /// Trusted Key Entry facts.
    pub tke: Option<Box<TkeFacts>>,
    /// IBM reason type and failure text.
    pub reason: Option<Reason>,
    /// Remaining per-action vendor fields, never key material.
    pub details: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// Operator labels from configured lookups (`team`, `env`).
    pub labels: Option<Box<BTreeMap<String, String>>>,
    /// OCSF ids.
    pub ocsf: Option<Ocsf>,
    /// Kafka origin.
    pub origin: Option<Origin>,
    /// IBM `logSourceCRN`, kept for enrichment; not part of the output.
    pub log_source_crn: Option<String>,
}

impl Event {
    /// An event with the given time, source and action and every other
    /// field empty: the starting point of a vendor parser.
    pub fn new(time: Timestamp, source: Source, action: String) -> Event {
        Event {
            time,
            time_inferred: false,
            source,
            action,
            legacy_action: None,
            description: None,
            category: Category::Other,
            outcome: Outcome::Unknown,
            status_code: None,
            severity: Severity::Informational,
            vendor_severity: None,
            actionable: false,
            remediation: None,
            correlation_id: None,
            request_uri: None,
            instance_id: None,
            region: None,
            account_id: None,
            message: None,
            event_id: None,
            data_event: None,
            actor: Actor::default(),
            target: Target::default(),
            key: None,
            tke: None,
            reason: None,
            details: None,
            labels: None,
            ocsf: None,
            origin: None,
            log_source_crn: None,
        }
    }

    /// The OCSF severity id of [`Event::severity`].
    pub fn severity_id(&self) -> u8 {
        self.severity.id()
    }

    /// The key facts, created empty on first use.
    pub fn key_mut(&mut self) -> &mut KeyFacts {
        self.key.get_or_insert_with(Box::default)
    }

    /// The TKE facts, created empty on first use.
    pub fn tke_mut(&mut self) -> &mut TkeFacts {
        self.tke.get_or_insert_with(Box::default)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("time", &self.time)?;
        if self.time_inferred {
            map.serialize_entry("time_inferred", &true)?;
        }
        map.serialize_entry("source", &self.source)?;
        map.serialize_entry("action", &self.action)?;
        entry(&mut map, "legacy_action", &self.legacy_action)?;
        entry(&mut map, "description", &self.description)?;
        map.serialize_entry("category", &self.category)?;
        map.serialize_entry("outcome", &self.outcome)?;
        entry(&mut map, "status_code", &self.status_code)?;
        map.serialize_entry("severity", &self.severity)?;
        map.serialize_entry("severity_id", &self.severity.id())?;
        entry(&mut map, "vendor_severity", &self.vendor_severity)?;
        map.serialize_entry("actionable", &self.actionable)?;
        entry(&mut map, "remediation", &self.remediation)?;
        entry(&mut map, "correlation_id", &self.correlation_id)?;
        entry(&mut map, "request_uri", &self.request_uri)?;
        entry(&mut map, "instance_id", &self.instance_id)?;
        entry(&mut map, "region", &self.region)?;
        entry(&mut map, "account_id", &self.account_id)?;
        entry(&mut map, "message", &self.message)?;
        entry(&mut map, "event_id", &self.event_id)?;
        entry(&mut map, "data_event", &self.data_event)?;
        if !self.actor.is_empty() {
            map.serialize_entry("actor", &self.actor)?;
        }
        if !self.target.is_empty() {
            map.serialize_entry("target", &self.target)?;
        }
        if let Some(key) = self.key.as_deref().filter(|k| !k.is_empty()) {
            map.serialize_entry("key", key)?;
        }
        if let Some(tke) = self.tke.as_deref().filter(|t| !t.is_empty()) {
            map.serialize_entry("tke", tke)?;
        }
        if let Some(reason) = self.reason.as_ref().filter(|r| !r.is_empty()) {
            map.serialize_entry("reason", reason)?;
        }
        if let Some(details) = self.details.as_deref().filter(|d| !d.is_empty()) {
            map.serialize_entry("details", details)?;
        }
        if let Some(labels) = self.labels.as_deref().filter(|l| !l.is_empty()) {
            map.serialize_entry("labels", labels)?;
        }
        entry(&mut map, "ocsf", &self.ocsf)?;
        entry(&mut map, "origin", &self.origin)?;
        map.end()
    }
}

fn entry<M: SerializeMap, T: Serialize>(
    map: &mut M,
    key: &'static str,
    value: &Option<T>,
) -> Result<(), M::Error> {
    match value {
        Some(v) => map.serialize_entry(key, v),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_ids_follow_ocsf_and_order() {
        let ids: Vec<u8> = Severity::ALL.iter().map(|s| s.id()).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert!(Severity::Critical > Severity::High);
        assert_eq!(Severity::from_name("HIGH"), Some(Severity::High));
        assert_eq!(Severity::from_name("warning"), None);
    }

    #[test]
    fn category_names_round_trip_in_any_case() {
        for c in Category::ALL {
            assert_eq!(Category::from_name(&c.as_str().to_uppercase()), Some(c));
        }
        assert_eq!(Category::from_name("nonsense"), None);
    }

    #[test]
    fn minimal_event_serializes_without_empty_values() {
        let event = Event::new(
            Timestamp::from_millis(1_774_375_218_936),
            Source::SecurosysKm,
            "LOGIN_SUCCESS".into(),
        );
        let json = serde_json::to_string(&event).expect("serializes");
        assert_eq!(
            json,
            r#"{"time":"2026-03-24T18:00:18.936Z","source":"securosys_km","action":"LOGIN_SUCCESS","category":"other","outcome":"unknown","severity":"informational","severity_id":1,"actionable":false}"#
        );
    }

    #[test]
    fn nested_objects_use_contract_names() {
        let mut event = Event::new(
            Timestamp::from_millis(0),
            Source::IbmHpcs,
            "hs-crypto.secrets.create".into(),
        );
        event.target.kind = Some("kms/secrets".into());
        event.key_mut().kind = Some("root".into());
        event.tke_mut().hsm_index = Some(3);
        event.severity = Severity::Critical;
        event.time_inferred = true;
        let value = serde_json::to_value(&event).expect("serializes");
        assert_eq!(value["target"]["type"], "kms/secrets");
        assert_eq!(value["key"]["type"], "root");
        assert_eq!(value["tke"]["hsm_index"], 3);
        assert_eq!(value["severity_id"], 5);
        assert_eq!(value["time_inferred"], true);
        assert!(value.get("actor").is_none());
    }
}
