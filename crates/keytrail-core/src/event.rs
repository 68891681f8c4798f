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
use std::fmt;

use compact_str::CompactString;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::details::Details;
use crate::ident::Ident;
use crate::time::Timestamp;
use crate::topic::Topic;

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
        // Lowercased into a buffer as long as the longest name, then one
        // match (a jump on the length, then the bytes compared).
        let mut buf = [0u8; 22];
        let lower = buf.get_mut(..name.len())?;
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        Some(match &*lower {
            b"authentication" => Category::Authentication,
            b"key_management" => Category::KeyManagement,
            b"certificate_management" => Category::CertificateManagement,
            b"user_management" => Category::UserManagement,
            b"approver_management" => Category::ApproverManagement,
            b"crypto_operation" => Category::CryptoOperation,
            b"data_object" => Category::DataObject,
            b"profile_management" => Category::ProfileManagement,
            b"kmip_management" => Category::KmipManagement,
            b"system" => Category::System,
            b"policy_management" => Category::PolicyManagement,
            b"hsm_administration" => Category::HsmAdministration,
            b"keystore_management" => Category::KeystoreManagement,
            b"other" => Category::Other,
            _ => return None,
        })
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
    pub user: Option<CompactString>,
    /// IBM `initiator.id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<CompactString>,
    /// Securosys `role`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<CompactString>,
    /// Securosys `provider`; IBM `initiator.credential.type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<CompactString>,
    /// IBM `initiator.host.address`, trimmed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<CompactString>,
    /// IBM `initiator.host.agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<CompactString>,
    /// Securosys `session_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<CompactString>,
    /// The TLS certificate fingerprint of a KMIP-for-VMware initiator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_fingerprint: Option<Ident>,
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
    pub id: Option<CompactString>,
    /// IBM `target.name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<CompactString>,
    /// IBM `target.typeURI`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CompactString>,
    /// Securosys `api_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<CompactString>,
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
    pub id: Option<Ident>,
    /// `requestData.keyType`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CompactString>,
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
    pub version_id: Option<Ident>,
    /// `responseData.rewrappedKeyVersionId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewrapped_version_id: Option<Ident>,
    /// `responseData.keyVersionCreationDate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_created: Option<CompactString>,
    /// `requestData.newValue.keyRingId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_ring_id: Option<Ident>,
    /// `requestData.initialValue.keyRingId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_key_ring_id: Option<Ident>,
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
    pub location: Option<CompactString>,
    /// Second bracket of the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<CompactString>,
    /// Third bracket of the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hsm_index: Option<u32>,
    /// Fourth bracket of the location.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_index: Option<u32>,
    /// `requestData.adminId`: hash of the administrator's signature key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_id: Option<CompactString>,
    /// `requestData.signatureThreshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_threshold: Option<i64>,
    /// `requestData.revocationSignatureThreshold`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_signature_threshold: Option<i64>,
    /// `responseData.verificationPattern`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_pattern: Option<CompactString>,
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
    pub kind: Option<CompactString>,
    /// `reason.reasonForFailure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<CompactString>,
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
    /// Topic name; the Kafka source's are interned ([`Topic`]).
    pub topic: Topic,
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
    pub action: CompactString,
    /// The historical IBM name as received, when it was translated.
    pub legacy_action: Option<CompactString>,
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
    pub vendor_severity: Option<CompactString>,
    /// True when an operations team should alert on it.
    pub actionable: bool,
    /// What the operator should check, for actionable events.
    pub remediation: Option<Text>,
    /// IBM `correlationId` / `correlationID`.
    pub correlation_id: Option<Ident>,
    /// IBM `requestData.requestURI`.
    pub request_uri: Option<CompactString>,
    /// IBM service instance.
    pub instance_id: Option<Ident>,
    /// IBM region.
    pub region: Option<CompactString>,
    /// IBM account.
    pub account_id: Option<Ident>,
    /// IBM `message` (human-readable summary).
    pub message: Option<CompactString>,
    /// The event's own unique id when it has one (IBM `id`).
    pub event_id: Option<Ident>,
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
    /// Remaining per-action vendor fields, never key material; empty when
    /// there are none.
    pub details: Details,
    /// Operator labels from configured lookups (`team`, `env`).
    pub labels: Option<Box<BTreeMap<String, String>>>,
    /// OCSF ids.
    pub ocsf: Option<Ocsf>,
    /// Kafka origin.
    pub origin: Option<Origin>,
    /// IBM `logSourceCRN`, kept for enrichment; not part of the output.
    pub log_source_crn: Option<CompactString>,
}

impl Event {
    /// An event with the given time, source and action and every other
    /// field empty: the starting point of a vendor parser.
    pub fn new(time: Timestamp, source: Source, action: CompactString) -> Event {
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
            details: Details::new(),
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
        if !self.details.is_empty() {
            map.serialize_entry("details", &self.details)?;
        }
        if let Some(labels) = self.labels.as_deref().filter(|l| !l.is_empty()) {
            map.serialize_entry("labels", labels)?;
        }
        entry(&mut map, "ocsf", &self.ocsf)?;
        entry(&mut map, "origin", &self.origin)?;
        map.end()
    }
}

/// A member of the contract by its constant name, also kept as the JSON
/// writer writes it after an earlier member and before a string
/// (`,"name":"`), so that it copies the parts it needs as they are.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Member(&'static str);

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Member").field(&self.name()).finish()
    }
}

impl Member {
    /// The member's name (`time`, `actor`, `user`).
    pub fn name(self) -> &'static str {
        // The token is the name between `,"` and `":"`.
        self.0
            .get(2..self.0.len().saturating_sub(3))
            .unwrap_or_default()
    }

    /// `,"name":`, with the opening quote of a string value after it when
    /// `string`.
    #[inline(always)]
    fn token(self, string: bool) -> &'static [u8] {
        let end = self.0.len().saturating_sub(usize::from(!string));
        self.0.as_bytes().get(..end).unwrap_or_default()
    }
}

/// A [`Member`] by name.
macro_rules! k {
    ($name:literal) => {
        Member(concat!(",\"", $name, "\":\""))
    };
}

/// Receives the members of one object of an event's JSON contract, in the
/// order and with the values [`Event::write_json`] writes them (see
/// [`Event::write_contract`]). The JSON writer is one of these, the OTLP
/// log record's attributes another.
pub trait ContractMembers {
    /// A string.
    fn str(&mut self, member: Member, value: &str);

    /// A string known to need no JSON escaping (the contract's enum names,
    /// the formatted time).
    fn plain_str(&mut self, member: Member, value: &str) {
        self.str(member, value);
    }

    /// A time, as the contract writes it (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    fn time(&mut self, member: Member, value: Timestamp) {
        let mut buf = [0u8; 32];
        self.plain_str(member, value.format(&mut buf));
    }

    /// A string when there is one.
    fn opt_str(&mut self, member: Member, value: Option<&str>) {
        if let Some(value) = value {
            self.str(member, value);
        }
    }

    /// A string member whose name is data (the operator's labels).
    fn dynamic_str(&mut self, name: &str, value: &str);

    /// A string that did not come from the event's record (the origin's
    /// topic): escaped even by a writer that takes the event's own texts as
    /// plain.
    fn outside_str(&mut self, member: Member, value: &str) {
        self.str(member, value);
    }

    /// An integer.
    fn int(&mut self, member: Member, value: i64);

    /// An integer when there is one.
    fn opt_int(&mut self, member: Member, value: Option<i64>) {
        if let Some(value) = value {
            self.int(member, value);
        }
    }

    /// A boolean.
    fn bool(&mut self, member: Member, value: bool);

    /// The end of the object.
    fn close(self);
}

/// [`ContractMembers`] of the event's own object, which also holds the
/// nested objects (one level deep: the contract nests no further) and
/// `details`.
pub trait ContractObject: ContractMembers {
    /// The receiver of a nested object's members.
    type Nested<'n>: ContractMembers
    where
        Self: 'n;

    /// A nested object as the value of `member`; its members go to what
    /// this returns, which is closed before the next member of this one.
    fn object(&mut self, member: Member) -> Self::Nested<'_>;

    /// The `details` object: names with compact JSON values.
    fn details(&mut self, member: Member, details: &Details);
}

impl Event {
    /// Appends the contract JSON of the event to `out`: exactly the bytes
    /// `serde_json::to_writer(out, &event)` writes through the
    /// [`Serialize`] impl above, written directly. No serde traversal, and
    /// strings are copied in runs between the bytes that need escaping
    /// instead of byte by byte; this is what printing events costs on the
    /// hot path (`keytrail normalize`, file outputs). The tests keep the
    /// two forms identical.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Most events fit; a larger one grows the buffer once more.
        out.reserve(2048);
        self.write_contract(JsonObject::<false>::open(out));
    }

    /// [`Event::write_json`] of an event whose own texts are known to be
    /// plain: none holds `"`, `\` or a byte below 0x20
    /// ([`crate::json::is_plain`]). They are copied between quotes without
    /// a look, which saves the escaper's call per text. `details`, the
    /// labels and the origin's topic come from elsewhere and are escaped
    /// as always.
    ///
    /// # Correctness
    ///
    /// The caller vouches for the texts: `keytrail normalize` does when
    /// the normalizer says so of the texts it kept (`Texts::Plain` from
    /// `Normalizer::normalize_line_texts`: none had an escape in the
    /// line) and the enricher and classifier add only plain texts
    /// (`Transforms::with_line`). The bytes
    /// are [`Event::write_json`]'s when that holds; debug builds check
    /// every text and panic on one that is not plain. In a release build a
    /// text that is not plain corrupts the output: invalid JSON, or valid
    /// JSON with other content (a text `x","admin":"y` adds a member).
    pub fn write_json_plain(&self, out: &mut Vec<u8>) {
        out.reserve(2048);
        self.write_contract(JsonObject::<true>::open(out));
    }

    /// Hands every member of the event's JSON contract to `o`, in the
    /// contract's order, then closes it: [`Event::write_json`] through the
    /// JSON writer, and any other form of the same members (the OTLP
    /// attributes) through its own [`ContractObject`].
    #[inline]
    pub fn write_contract<M: ContractObject>(&self, mut o: M) {
        o.time(k!("time"), self.time);
        if self.time_inferred {
            o.bool(k!("time_inferred"), true);
        }
        o.plain_str(k!("source"), self.source.as_str());
        o.str(k!("action"), &self.action);
        o.opt_str(k!("legacy_action"), self.legacy_action.as_deref());
        o.opt_str(k!("description"), self.description.as_deref());
        o.plain_str(k!("category"), self.category.as_str());
        o.plain_str(k!("outcome"), self.outcome.as_str());
        o.opt_int(k!("status_code"), self.status_code.map(i64::from));
        o.plain_str(k!("severity"), self.severity.as_str());
        o.int(k!("severity_id"), i64::from(self.severity.id()));
        o.opt_str(k!("vendor_severity"), self.vendor_severity.as_deref());
        o.bool(k!("actionable"), self.actionable);
        o.opt_str(k!("remediation"), self.remediation.as_deref());
        o.opt_str(k!("correlation_id"), self.correlation_id.as_deref());
        o.opt_str(k!("request_uri"), self.request_uri.as_deref());
        o.opt_str(k!("instance_id"), self.instance_id.as_deref());
        o.opt_str(k!("region"), self.region.as_deref());
        o.opt_str(k!("account_id"), self.account_id.as_deref());
        o.opt_str(k!("message"), self.message.as_deref());
        o.opt_str(k!("event_id"), self.event_id.as_deref());
        if let Some(data_event) = self.data_event {
            o.bool(k!("data_event"), data_event);
        }
        if !self.actor.is_empty() {
            let a = &self.actor;
            let mut n = o.object(k!("actor"));
            n.opt_str(k!("user"), a.user.as_deref());
            n.opt_str(k!("id"), a.id.as_deref());
            n.opt_str(k!("role"), a.role.as_deref());
            n.opt_str(k!("provider"), a.provider.as_deref());
            n.opt_str(k!("ip"), a.ip.as_deref());
            n.opt_str(k!("user_agent"), a.user_agent.as_deref());
            n.opt_str(k!("session_id"), a.session_id.as_deref());
            n.opt_str(k!("cert_fingerprint"), a.cert_fingerprint.as_deref());
            n.close();
        }
        if !self.target.is_empty() {
            let t = &self.target;
            let mut n = o.object(k!("target"));
            n.opt_str(k!("id"), t.id.as_deref());
            n.opt_str(k!("name"), t.name.as_deref());
            n.opt_str(k!("type"), t.kind.as_deref());
            n.opt_str(k!("api_url"), t.api_url.as_deref());
            n.close();
        }
        if let Some(k) = self.key.as_deref().filter(|k| !k.is_empty()) {
            let mut n = o.object(k!("key"));
            n.opt_str(k!("id"), k.id.as_deref());
            n.opt_str(k!("type"), k.kind.as_deref());
            n.opt_str(k!("state"), k.state.as_deref());
            n.opt_int(k!("state_code"), k.state_code);
            n.opt_str(k!("previous_state"), k.previous_state.as_deref());
            n.opt_int(k!("previous_state_code"), k.previous_state_code);
            n.opt_str(k!("version_id"), k.version_id.as_deref());
            n.opt_str(
                k!("rewrapped_version_id"),
                k.rewrapped_version_id.as_deref(),
            );
            n.opt_str(k!("version_created"), k.version_created.as_deref());
            n.opt_str(k!("key_ring_id"), k.key_ring_id.as_deref());
            n.opt_str(
                k!("previous_key_ring_id"),
                k.previous_key_ring_id.as_deref(),
            );
            n.close();
        }
        if let Some(t) = self.tke.as_deref().filter(|t| !t.is_empty()) {
            let mut n = o.object(k!("tke"));
            n.opt_str(k!("location"), t.location.as_deref());
            n.opt_str(k!("availability_zone"), t.availability_zone.as_deref());
            n.opt_int(k!("hsm_index"), t.hsm_index.map(i64::from));
            n.opt_int(k!("domain_index"), t.domain_index.map(i64::from));
            n.opt_str(k!("admin_id"), t.admin_id.as_deref());
            n.opt_int(k!("signature_threshold"), t.signature_threshold);
            n.opt_int(
                k!("revocation_signature_threshold"),
                t.revocation_signature_threshold,
            );
            n.opt_str(
                k!("verification_pattern"),
                t.verification_pattern.as_deref(),
            );
            n.close();
        }
        if let Some(r) = self.reason.as_ref().filter(|r| !r.is_empty()) {
            let mut n = o.object(k!("reason"));
            n.opt_str(k!("type"), r.kind.as_deref());
            n.opt_str(k!("failure"), r.failure.as_deref());
            n.close();
        }
        if !self.details.is_empty() {
            o.details(k!("details"), &self.details);
        }
        if let Some(labels) = self.labels.as_deref().filter(|l| !l.is_empty()) {
            let mut n = o.object(k!("labels"));
            for (name, value) in labels {
                n.dynamic_str(name, value);
            }
            n.close();
        }
        if let Some(ocsf) = &self.ocsf {
            let mut n = o.object(k!("ocsf"));
            n.int(k!("class_uid"), i64::from(ocsf.class_uid));
            n.int(k!("category_uid"), i64::from(ocsf.category_uid));
            n.int(k!("activity_id"), i64::from(ocsf.activity_id));
            n.int(k!("status_id"), i64::from(ocsf.status_id));
            n.close();
        }
        if let Some(origin) = &self.origin {
            let mut n = o.object(k!("origin"));
            n.outside_str(k!("topic"), &origin.topic);
            n.int(k!("partition"), i64::from(origin.partition));
            n.int(k!("offset"), origin.offset);
            n.close();
        }
        o.close();
    }
}

/// One JSON object being written: commas between members, `}` at the end.
/// Member names are the constant tokens of [`k!`], copied as they are.
/// With `PLAIN`, the event's texts are copied without escaping (see
/// [`Event::write_json_plain`]).
struct JsonObject<'o, const PLAIN: bool> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o, const PLAIN: bool> JsonObject<'o, PLAIN> {
    #[inline(always)]
    fn open(out: &'o mut Vec<u8>) -> JsonObject<'o, PLAIN> {
        out.push(b'{');
        JsonObject { out, empty: true }
    }

    /// A member's name, after a comma unless it is the first member, and
    /// the opening quote of its value when `string`. Each branch copies a
    /// token of constant length, which the compiler writes in place.
    #[inline(always)]
    fn key(&mut self, member: Member, string: bool) {
        let token = member.token(string);
        if self.empty {
            self.out
                .extend_from_slice(token.get(1..).unwrap_or_default());
        } else {
            self.out.extend_from_slice(token);
        }
        self.empty = false;
    }
}

impl<const PLAIN: bool> ContractMembers for JsonObject<'_, PLAIN> {
    #[inline(always)]
    fn str(&mut self, member: Member, value: &str) {
        if PLAIN {
            self.plain_str(member, value);
        } else {
            self.key(member, false);
            write_json_str(self.out, value);
        }
    }

    /// Copied between quotes without a look.
    #[inline(always)]
    fn plain_str(&mut self, member: Member, value: &str) {
        debug_assert!(
            crate::json::is_plain(value),
            "`{}` needs escaping",
            member.name()
        );
        self.key(member, true);
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
    }

    /// The time's 24 ASCII bytes copied without a UTF-8 check.
    #[inline(always)]
    fn time(&mut self, member: Member, value: Timestamp) {
        self.key(member, true);
        self.out.extend_from_slice(&value.contract_form());
        self.out.push(b'"');
    }

    #[inline(always)]
    fn opt_str(&mut self, member: Member, value: Option<&str>) {
        if let Some(value) = value {
            self.str(member, value);
        }
    }

    fn outside_str(&mut self, member: Member, value: &str) {
        self.key(member, false);
        write_json_str(self.out, value);
    }

    /// The name is escaped like a value.
    fn dynamic_str(&mut self, name: &str, value: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_json_str(self.out, name);
        self.out.push(b':');
        write_json_str(self.out, value);
    }

    #[inline(always)]
    fn int(&mut self, member: Member, value: i64) {
        self.key(member, false);
        write_int(self.out, value);
    }

    #[inline(always)]
    fn opt_int(&mut self, member: Member, value: Option<i64>) {
        if let Some(value) = value {
            self.int(member, value);
        }
    }

    #[inline(always)]
    fn bool(&mut self, member: Member, value: bool) {
        self.key(member, false);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }

    #[inline(always)]
    fn close(self) {
        self.out.push(b'}');
    }
}

impl<const PLAIN: bool> ContractObject for JsonObject<'_, PLAIN> {
    type Nested<'n>
        = JsonObject<'n, PLAIN>
    where
        Self: 'n;

    #[inline(always)]
    fn object(&mut self, member: Member) -> JsonObject<'_, PLAIN> {
        self.key(member, false);
        JsonObject::open(self.out)
    }

    #[inline(always)]
    fn details(&mut self, member: Member, details: &Details) {
        self.key(member, false);
        details.write_object(self.out);
    }
}

/// An integer in decimal, as serde_json writes it (with the same itoa).
fn write_int(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// Eight copies of a byte.
const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

/// The index of the first byte of `bytes` at or after `from` that a JSON
/// string cannot hold as is (`"`, `\` or a control byte below 0x20), or the
/// length; eight bytes at a time. The text writer of [`crate::Details`]
/// uses it to copy runs between escapes, the normalizer's reader to find the
/// end of a string.
#[inline]
pub fn find_json_special(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let control = word.wrapping_sub(splat(0x20)) & !word;
        let quote = word ^ splat(b'"');
        let quote = quote.wrapping_sub(splat(1)) & !quote;
        let backslash = word ^ splat(b'\\');
        let backslash = backslash.wrapping_sub(splat(1)) & !backslash;
        // Only the lowest mark is exact, which is the one used.
        let marks = (control | quote | backslash) & splat(0x80);
        if marks != 0 {
            return at + (marks.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while let Some(&b) = bytes.get(at) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            break;
        }
        at += 1;
    }
    at
}

/// Where escaped JSON text goes: the event writer's byte buffer, or the
/// text of [`crate::Details`]. Everything written is UTF-8.
pub(crate) trait JsonOut {
    /// Room for `additional` more bytes.
    fn reserve_text(&mut self, additional: usize);
    /// Appends text.
    fn put(&mut self, text: &str);
    /// Appends `text` as a JSON string, quotes included (the escapes of
    /// [`write_json_str`]).
    fn put_json_str(&mut self, text: &str) {
        escape_by_words(self, text);
    }
}

impl JsonOut for Vec<u8> {
    #[inline(always)]
    fn reserve_text(&mut self, additional: usize) {
        self.reserve(additional);
    }
    #[inline(always)]
    fn put(&mut self, text: &str) {
        self.extend_from_slice(text.as_bytes());
    }
    /// The event writer's strings, 16 or 32 bytes per step (sonic-rs's
    /// escaper, vector width chosen at run time); serde_json's escapes.
    #[inline(always)]
    fn put_json_str(&mut self, text: &str) {
        json_escape_simd::escape_into(text, self);
    }
}

impl JsonOut for String {
    #[inline(always)]
    fn reserve_text(&mut self, additional: usize) {
        self.reserve(additional);
    }
    #[inline(always)]
    fn put(&mut self, text: &str) {
        self.push_str(text);
    }
}

/// serde_json's escape of each control byte below 0x20: the short forms
/// `\b \t \n \f \r`, `\u00xx` (lower-case hex) for the others.
const CONTROL_ESCAPES: [&str; 32] = [
    "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007", "\\b",
    "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011", "\\u0012",
    "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019", "\\u001a",
    "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
];

/// A JSON string with serde_json's escapes: `\"`, `\\`, the control bytes
/// as [`CONTROL_ESCAPES`]; everything else as is.
#[inline(always)]
pub(crate) fn write_json_str<O: JsonOut + ?Sized>(out: &mut O, text: &str) {
    out.put_json_str(text);
}

/// [`write_json_str`] a word at a time, for outputs that are `String`s.
fn escape_by_words<O: JsonOut + ?Sized>(out: &mut O, text: &str) {
    let bytes = text.as_bytes();
    let first = find_json_special(bytes, 0);
    if first == bytes.len() {
        // The usual case: nothing to escape, one copy.
        out.reserve_text(bytes.len() + 2);
        out.put("\"");
        out.put(text);
        out.put("\"");
        return;
    }
    out.put("\"");
    let mut start = 0;
    loop {
        let at = find_json_special(bytes, start);
        // Special bytes are ASCII, so `start` and `at` are char boundaries.
        out.put(text.get(start..at).unwrap_or_default());
        let Some(&b) = bytes.get(at) else {
            break;
        };
        out.put(match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            _ => CONTROL_ESCAPES
                .get(usize::from(b))
                .copied()
                .unwrap_or_default(),
        });
        start = at + 1;
    }
    out.put("\"");
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
    fn writes_integers_as_serde_json_does() {
        let mut out = Vec::new();
        let edges = [i64::MIN, -10_000, -1, 99_999, 1_000_000, i64::MAX];
        for value in (0..=10_001).chain(edges) {
            out.clear();
            out.extend_from_slice(b"x");
            write_int(&mut out, value);
            let expected = serde_json::to_string(&value).expect("an integer");
            assert_eq!(out.get(1..), Some(expected.as_bytes()), "{value}");
        }
    }

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

    /// Every field set, with text that needs every kind of escape.
    fn full_event(text: &str) -> Event {
        let t = |suffix: &str| Some(compact_str::format_compact!("{text}{suffix}"));
        let id = |suffix: &str| Some(Ident::from(format!("{text}{suffix}")));
        let mut event = Event::new(
            Timestamp::from_millis(1_774_375_218_936),
            Source::IbmHpcs,
            compact_str::format_compact!("hs-crypto.{text}"),
        );
        event.time_inferred = true;
        event.legacy_action = t("legacy");
        event.description = Some(Cow::Borrowed("Create a key."));
        event.category = Category::KeyManagement;
        event.outcome = Outcome::Denied;
        event.status_code = Some(403);
        event.severity = Severity::High;
        event.vendor_severity = t("sev");
        event.actionable = true;
        event.remediation = Some(Cow::Owned(format!("check {text}")));
        event.correlation_id = id("c");
        event.request_uri = t("/u");
        event.instance_id = id("i");
        event.region = t("r");
        event.account_id = id("a");
        event.message = t("m");
        event.event_id = id("e");
        event.data_event = Some(false);
        event.actor = Actor {
            user: t("u"),
            id: t("id"),
            role: t("role"),
            provider: t("p"),
            ip: t("ip"),
            user_agent: t("ua"),
            session_id: t("s"),
            cert_fingerprint: id("fp"),
        };
        event.target = Target {
            id: t("tid"),
            name: t("tn"),
            kind: t("tk"),
            api_url: t("url"),
        };
        event.key = Some(Box::new(KeyFacts {
            id: id("k"),
            kind: t("kt"),
            state: Some(Cow::Borrowed("active")),
            state_code: Some(1),
            previous_state: Some(Cow::Owned(text.to_owned())),
            previous_state_code: Some(-3),
            version_id: id("v"),
            rewrapped_version_id: id("rv"),
            version_created: t("vc"),
            key_ring_id: id("kr"),
            previous_key_ring_id: id("pkr"),
        }));
        event.tke = Some(Box::new(TkeFacts {
            location: t("loc"),
            availability_zone: t("az"),
            hsm_index: Some(3),
            domain_index: Some(u32::MAX),
            admin_id: t("adm"),
            signature_threshold: Some(i64::MIN),
            revocation_signature_threshold: Some(i64::MAX),
            verification_pattern: t("vp"),
        }));
        event.reason = Some(Reason {
            kind: t("rt"),
            failure: t("rf"),
        });
        event.details.insert(
            &format!("{text}k"),
            &serde_json::json!({"n": [1.5, text, null]}),
        );
        let mut labels = BTreeMap::new();
        labels.insert(format!("{text}team"), format!("{text}pay"));
        labels.insert("env".to_owned(), "prod".to_owned());
        event.labels = Some(Box::new(labels));
        event.ocsf = Some(Ocsf {
            class_uid: 6003,
            category_uid: 6,
            activity_id: 1,
            status_id: 2,
        });
        event.origin = Some(Origin {
            topic: Topic::from(format!("audit{text}")),
            partition: -1,
            offset: i64::MAX,
        });
        event
    }

    #[test]
    fn direct_json_is_the_serde_json() {
        let mut texts: Vec<String> = [
            "",
            "plain",
            "q\"uote",
            "back\\slash",
            "tab\tnl\ncr\r",
            "\u{8}\u{c}\u{1}\u{1f}\u{7f}",
            "ünïcödé ✓ 🔑",
            "0123456789abcdef\"0123456789abcdef\\",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        for byte in 0u8..=0x7f {
            texts.push(format!(
                "{}x{}",
                char::from(byte),
                "y".repeat(usize::from(byte % 17))
            ));
        }
        for text in &texts {
            let full = full_event(text);
            let mut minimal = Event::new(
                Timestamp::from_millis(-1),
                Source::SecurosysKm,
                text.as_str().into(),
            );
            minimal.actor.user = Some(text.as_str().into());
            for event in [&full, &minimal] {
                let mut direct = Vec::new();
                event.write_json(&mut direct);
                let serde = serde_json::to_vec(event).expect("serializes");
                assert_eq!(
                    String::from_utf8_lossy(&direct),
                    String::from_utf8_lossy(&serde),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn sparse_objects_are_the_serde_json() {
        // Nested objects whose first member is each of their members in
        // turn: the comma of the first member is the writer's to drop.
        let mut events = Vec::new();
        let base = || {
            Event::new(
                Timestamp::from_millis(7),
                Source::IbmKeyProtect,
                "kms.secrets.read".into(),
            )
        };
        let full = full_event("x");
        let parts = [
            full.actor.user.clone(),
            full.actor.id.clone(),
            full.actor.role.clone(),
            full.actor.provider.clone(),
            full.actor.ip.clone(),
            full.actor.user_agent.clone(),
            full.actor.session_id.clone(),
        ];
        for (i, part) in parts.into_iter().enumerate() {
            let mut event = base();
            match i {
                0 => event.actor.user = part,
                1 => event.actor.id = part,
                2 => event.actor.role = part,
                3 => event.actor.provider = part,
                4 => event.actor.ip = part,
                5 => event.actor.user_agent = part,
                _ => event.actor.session_id = part,
            }
            events.push(event);
        }
        let mut event = base();
        event.actor.cert_fingerprint = full.actor.cert_fingerprint.clone();
        event.target.api_url = full.target.api_url.clone();
        event.reason = Some(Reason {
            kind: None,
            failure: Some("f".into()),
        });
        events.push(event);
        let mut event = base();
        event.key = Some(Box::new(KeyFacts {
            state_code: Some(5),
            ..KeyFacts::default()
        }));
        event.tke = Some(Box::new(TkeFacts {
            signature_threshold: Some(2),
            ..TkeFacts::default()
        }));
        events.push(event);
        let mut event = base();
        event.tke = Some(Box::new(TkeFacts {
            hsm_index: Some(0),
            verification_pattern: Some("vp".into()),
            ..TkeFacts::default()
        }));
        event.labels = full.labels.clone();
        event.origin = full.origin.clone();
        events.push(event);
        for event in &events {
            let mut json = Vec::new();
            event.write_json(&mut json);
            let serde = serde_json::to_vec(event).expect("serializes");
            assert_eq!(
                String::from_utf8_lossy(&json),
                String::from_utf8_lossy(&serde)
            );
            let mut plain = Vec::new();
            event.write_json_plain(&mut plain);
            assert_eq!(plain, json);
        }
    }

    #[test]
    fn members_are_named_and_shown_by_name() {
        assert_eq!(k!("user_agent").name(), "user_agent");
        assert_eq!(format!("{:?}", k!("id")), "Member(\"id\")");
    }

    #[test]
    fn plain_json_is_the_json_when_the_own_texts_are_plain() {
        let plain = [
            "",
            "plain",
            "\u{fc}n\u{ef}c\u{f6}d\u{e9} \u{2713} \u{1f511} \u{7f}",
            "0123456789abcdef0123456789abcdef/'<>&",
        ];
        // The labels, details and topic need not be plain.
        let outside = ["q\"uote", "back\\slash", "tab\tnl\n\u{1}", "plain"];
        for text in plain {
            for other in outside {
                let mut event = full_event(text);
                let mut labels = BTreeMap::new();
                labels.insert(other.to_owned(), other.to_owned());
                event.labels = Some(Box::new(labels));
                event
                    .details
                    .insert(other, &serde_json::json!({ other: other }));
                if let Some(origin) = event.origin.as_mut() {
                    origin.topic = Topic::from(other.to_owned());
                }
                let mut json = Vec::new();
                event.write_json(&mut json);
                let mut plain_json = Vec::new();
                event.write_json_plain(&mut plain_json);
                assert_eq!(
                    String::from_utf8_lossy(&plain_json),
                    String::from_utf8_lossy(&json),
                    "{text:?} {other:?}"
                );
                assert_eq!(json, serde_json::to_vec(&event).expect("serializes"));
            }
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "`user` needs escaping")]
    fn debug_builds_refuse_a_text_that_is_not_plain() {
        let mut event = full_event("plain");
        event.actor.user = Some("q\"uote".into());
        event.write_json_plain(&mut Vec::new());
    }

    #[test]
    fn strings_escape_as_serde_json_at_every_offset() {
        let specials: Vec<char> = (0u8..0x80)
            .map(char::from)
            .chain(['é', '✓', '🔑'])
            .collect();
        for len in 0..72 {
            for at in 0..=len {
                for &special in &specials {
                    let text: String = (0..len)
                        .map(|i| if i == at { special } else { 'a' })
                        .collect();
                    let expected = serde_json::to_string(&text).expect("serializes");
                    let mut bytes = b"prefix".to_vec();
                    write_json_str(&mut bytes, &text);
                    assert_eq!(bytes.get(6..), Some(expected.as_bytes()), "{text:?}");
                    let mut string = String::from("prefix");
                    write_json_str(&mut string, &text);
                    assert_eq!(string.get(6..), Some(expected.as_str()), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn integers_are_written_as_serde_json_writes_them() {
        for value in [0, 1, -1, 9, 10, -10, 1_234_567, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_int(&mut out, value);
            assert_eq!(out, serde_json::to_vec(&value).expect("serializes"));
        }
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
