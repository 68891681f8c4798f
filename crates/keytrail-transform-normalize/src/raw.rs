//! The vendor JSON as it arrives, read in one pass into borrowing structs.
//!
//! [`Top`] holds every top-level field of every accepted shape: IBM CADF,
//! Securosys Key Manager, and the envelopes around them (`_source._line`,
//! `_line`, `payload`/`meta`). Fields nobody reads are skipped by the parser
//! without being built. [`Data`] is IBM `requestData`/`responseData`: the
//! fields the contract names are typed, every other field is kept (scrubbed
//! of key material) for `details`.

use keytrail_core::{CompactString, Ident};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::de::{Embedded, Flag, Int, Key, Obj, Str};
use crate::material::is_key_material;

/// Every top-level field keytrail reads, for every shape.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Top<'a> {
    // IBM Activity Tracker (CADF).
    #[serde(borrow)]
    pub action: Str<'a>,
    #[serde(borrow, rename = "eventTime")]
    pub event_time: Str<'a>,
    #[serde(borrow)]
    pub outcome: Str<'a>,
    #[serde(borrow)]
    pub message: Str<'a>,
    #[serde(borrow)]
    pub severity: Str<'a>,
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow)]
    pub initiator: Obj<Initiator<'a>>,
    #[serde(borrow)]
    pub target: Obj<TargetRaw<'a>>,
    #[serde(borrow)]
    pub reason: Obj<ReasonRaw<'a>>,
    #[serde(rename = "requestData")]
    pub request_data: Embedded<Data>,
    #[serde(rename = "responseData")]
    pub response_data: Embedded<Data>,
    /// Legacy (LogDNA-era) name of `responseData`.
    #[serde(rename = "responseBody")]
    pub response_body: Embedded<Data>,
    /// Legacy request path, used when `requestData.requestURI` is missing.
    #[serde(borrow, rename = "requestPath")]
    pub request_path: Str<'a>,
    #[serde(borrow, rename = "correlationId")]
    pub correlation_id: Str<'a>,
    #[serde(borrow, rename = "correlationID")]
    pub correlation_id_upper: Str<'a>,
    #[serde(borrow, rename = "logSourceCRN")]
    pub log_source_crn: Str<'a>,
    #[serde(rename = "dataEvent")]
    pub data_event: Flag,

    // Securosys Key Manager UI.
    #[serde(borrow)]
    pub timestamp: Str<'a>,
    #[serde(borrow)]
    pub level: Str<'a>,
    #[serde(borrow)]
    pub event: Str<'a>,
    #[serde(borrow)]
    pub category: Str<'a>,
    #[serde(borrow)]
    pub user: Str<'a>,
    #[serde(borrow)]
    pub role: Str<'a>,
    #[serde(borrow)]
    pub provider: Str<'a>,
    #[serde(borrow)]
    pub resource: Str<'a>,
    pub details: Obj<Details>,
    #[serde(borrow)]
    pub result: Str<'a>,
    #[serde(borrow)]
    pub api_url: Str<'a>,
    #[serde(borrow)]
    pub session_id: Str<'a>,

    // Envelopes.
    /// IBM log-analysis export: the event JSON as a string.
    #[serde(borrow, rename = "_line")]
    pub line: Str<'a>,
    /// IBM log-analysis export: `{"_source": {"_line": "…"}}`.
    #[serde(borrow, rename = "_source")]
    pub source: Obj<Box<Top<'a>>>,
    /// Older wrapper `{"payload": {…event…}, "meta": {…}}`. A `payload` that
    /// is not an object is skipped unread.
    #[serde(borrow)]
    pub payload: Obj<Box<Top<'a>>>,
}

impl Top<'_> {
    /// True when the object has any field only IBM CADF events have.
    pub fn looks_ibm(&self) -> bool {
        self.event_time.is_present()
            || self.initiator.0.is_some()
            || self.target.0.is_some()
            || self.reason.0.is_some()
            || self.outcome.is_present()
            || self.log_source_crn.is_present()
    }

    /// True when the object has any field only Securosys events have.
    pub fn looks_securosys(&self) -> bool {
        self.level.is_present()
            || self.timestamp.is_present()
            || self.result.is_present()
            || self.session_id.is_present()
            || self.api_url.is_present()
    }
}

/// IBM `initiator`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Initiator<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow)]
    pub credential: Obj<Credential<'a>>,
    #[serde(borrow)]
    pub host: Obj<Host<'a>>,
}

/// IBM `initiator.credential`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Credential<'a> {
    #[serde(borrow, rename = "type")]
    pub kind: Str<'a>,
}

/// IBM `initiator.host`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct Host<'a> {
    #[serde(borrow)]
    pub address: Str<'a>,
    #[serde(borrow)]
    pub agent: Str<'a>,
}

/// IBM `target`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct TargetRaw<'a> {
    #[serde(borrow)]
    pub id: Str<'a>,
    #[serde(borrow)]
    pub name: Str<'a>,
    #[serde(borrow, rename = "typeURI")]
    pub type_uri: Str<'a>,
}

/// IBM `reason`.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub(crate) struct ReasonRaw<'a> {
    #[serde(rename = "reasonCode")]
    pub code: Int,
    #[serde(borrow, rename = "reasonType")]
    pub kind: Str<'a>,
    #[serde(borrow, rename = "reasonForFailure")]
    pub failure: Str<'a>,
}

/// A key state as sent: an integer, or (some events) a name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyState {
    Code(i64),
    Name(String),
}

/// IBM `requestData` / `responseData` (and their nested `initialValue`,
/// `newValue`, `eventAckData`). Owned: it may come from a decoded string.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Data {
    pub request_uri: Option<CompactString>,
    pub instance_id: Option<Ident>,
    pub correlation_id: Option<Ident>,
    pub key_id: Option<Ident>,
    pub key_type: Option<CompactString>,
    pub key_state: Option<KeyState>,
    pub key_version_id: Option<Ident>,
    pub rewrapped_key_version_id: Option<Ident>,
    pub key_version_created: Option<CompactString>,
    pub key_ring_id: Option<Ident>,
    pub location: Option<CompactString>,
    pub admin_id: Option<CompactString>,
    pub signature_threshold: Option<i64>,
    pub revocation_signature_threshold: Option<i64>,
    pub verification_pattern: Option<CompactString>,
    pub initial_value: Option<Box<Data>>,
    pub new_value: Option<Box<Data>>,
    pub event_ack: Option<Box<Data>>,
    /// Every other field, key material removed.
    pub extras: keytrail_core::DetailsBuilder,
}

impl Data {
    /// What is left after the contract fields were taken: typed fields the
    /// event did not use (under their vendor names), the nested objects'
    /// leftovers, and the untyped extras. This is what goes to `details`.
    ///
    /// The extras' buffer becomes the event's when it has none yet; the
    /// fields added to it are never among the extras (every vendor name of
    /// a typed field has its row in [`Data::read_field`]). The extras
    /// move out of `self`; the typed fields are copied.
    pub fn take_details(&mut self, details: &mut keytrail_core::DetailsBuilder) {
        let mut own = std::mem::take(&mut self.extras);
        let text = [
            ("requestURI", self.request_uri.as_deref()),
            ("instanceID", self.instance_id.as_deref()),
            ("correlationId", self.correlation_id.as_deref()),
            ("keyId", self.key_id.as_deref()),
            ("keyType", self.key_type.as_deref()),
            ("keyVersionId", self.key_version_id.as_deref()),
            (
                "rewrappedKeyVersionId",
                self.rewrapped_key_version_id.as_deref(),
            ),
            (
                "keyVersionCreationDate",
                self.key_version_created.as_deref(),
            ),
            ("keyRingId", self.key_ring_id.as_deref()),
            ("location", self.location.as_deref()),
            ("adminId", self.admin_id.as_deref()),
            ("verificationPattern", self.verification_pattern.as_deref()),
        ];
        for (name, value) in text {
            if let Some(value) = value {
                own.insert_str(name, value);
            }
        }
        let numbers = [
            ("signatureThreshold", &self.signature_threshold),
            (
                "revocationSignatureThreshold",
                &self.revocation_signature_threshold,
            ),
        ];
        for (name, value) in numbers {
            if let Some(value) = value {
                own.insert_int(name, *value);
            }
        }
        match &self.key_state {
            Some(KeyState::Code(code)) => {
                own.insert_int("keyState", *code);
            }
            Some(KeyState::Name(name)) => {
                own.insert_str("keyState", name);
            }
            None => {}
        }
        let nested = [
            ("initialValue", &mut self.initial_value),
            ("newValue", &mut self.new_value),
            ("eventAckData", &mut self.event_ack),
        ];
        for (name, data) in nested {
            if let Some(data) = data {
                let mut inner = keytrail_core::DetailsBuilder::new();
                data.take_details(&mut inner);
                if !inner.is_empty() {
                    own.insert_json(name, &inner.build().to_object_json());
                }
            }
        }
        details.append(own);
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = Data;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data, A::Error> {
        let mut data = Data::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            data.read_field(&key, &mut SerdeFields(&mut map))?;
        }
        Ok(data)
    }
}

/// Where the value of one `requestData`/`responseData` field is read from:
/// serde_json's map access (the reference path) or the on-demand reader
/// (`scan`). The field table in [`Data::read_field`] is shared by both.
pub(crate) trait DataFields<'a> {
    type Error;
    /// A text field ([`Str`] rules).
    fn text(&mut self) -> Result<Str<'a>, Self::Error>;
    /// An integer field ([`Int`] rules).
    fn int(&mut self) -> Result<Int, Self::Error>;
    /// A nested object of the same shape; anything else is absent.
    fn nested(&mut self) -> Result<Option<Box<Data>>, Self::Error>;
    /// A value nobody reads (key material).
    fn skip(&mut self) -> Result<(), Self::Error>;
    /// Any other value, whole, into `details` under `name`: key material
    /// removed at any depth, an empty string dropped.
    fn detail(
        &mut self,
        name: &str,
        details: &mut keytrail_core::DetailsBuilder,
    ) -> Result<(), Self::Error>;
}

impl Data {
    /// Reads the value of field `key` into its place: one row per vendor
    /// name.
    pub(crate) fn read_field<'a, F: DataFields<'a>>(
        &mut self,
        key: &str,
        from: &mut F,
    ) -> Result<(), F::Error> {
        match key {
            "requestURI" | "requestUri" => self.request_uri = from.text()?.trimmed(),
            "instanceID" | "instanceId" => self.instance_id = from.text()?.trimmed(),
            "correlationId" | "correlationID" => self.correlation_id = from.text()?.trimmed(),
            "keyId" | "keyID" => self.key_id = from.text()?.trimmed(),
            "keyType" => self.key_type = from.text()?.trimmed(),
            "keyVersionId" => self.key_version_id = from.text()?.trimmed(),
            "rewrappedKeyVersionId" => self.rewrapped_key_version_id = from.text()?.trimmed(),
            "keyVersionCreationDate" => self.key_version_created = from.text()?.trimmed(),
            "keyRingId" | "keyRingID" => self.key_ring_id = from.text()?.trimmed(),
            "location" => self.location = from.text()?.trimmed(),
            "adminId" | "adminID" => self.admin_id = from.text()?.trimmed(),
            "verificationPattern" => self.verification_pattern = from.text()?.trimmed(),
            "signatureThreshold" => self.signature_threshold = from.int()?.0,
            "revocationSignatureThreshold" => {
                self.revocation_signature_threshold = from.int()?.0;
            }
            "keyState" => {
                let state = from.text()?;
                self.key_state = state
                    .get()
                    .map(|s| match keytrail_core::trim(s).parse::<i64>() {
                        Ok(code) => KeyState::Code(code),
                        Err(_) => KeyState::Name(keytrail_core::trim(s).to_ascii_lowercase()),
                    });
            }
            "initialValue" => self.initial_value = from.nested()?,
            "newValue" => self.new_value = from.nested()?,
            "eventAckData" => self.event_ack = from.nested()?,
            name if is_key_material(name) => from.skip()?,
            _ => from.detail(key, &mut self.extras)?,
        }
        Ok(())
    }
}

/// [`DataFields`] over serde's map access.
struct SerdeFields<'m, A>(&'m mut A);

impl<'de, A: MapAccess<'de>> DataFields<'de> for SerdeFields<'_, A> {
    type Error = A::Error;
    fn text(&mut self) -> Result<Str<'de>, A::Error> {
        self.0.next_value()
    }
    fn int(&mut self) -> Result<Int, A::Error> {
        self.0.next_value()
    }
    fn nested(&mut self) -> Result<Option<Box<Data>>, A::Error> {
        Ok(self.0.next_value::<Obj<Data>>()?.0.map(Box::new))
    }
    fn skip(&mut self) -> Result<(), A::Error> {
        self.0.next_value::<IgnoredAny>().map(|_| ())
    }
    fn detail(
        &mut self,
        name: &str,
        details: &mut keytrail_core::DetailsBuilder,
    ) -> Result<(), A::Error> {
        keep(details, name, self.0.next_value()?);
        Ok(())
    }
}

/// Keeps one `details` field (not key material: the caller skipped those),
/// scrubbed; an empty string is dropped.
pub(crate) fn keep(
    details: &mut keytrail_core::DetailsBuilder,
    name: &str,
    mut value: serde_json::Value,
) {
    crate::material::scrub(&mut value);
    if value.as_str() != Some("") {
        details.insert(name, &value);
    }
}

/// Securosys `details`: kept whole, key material removed.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Details(pub keytrail_core::DetailsBuilder);

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DetailsVisitor;
        impl<'de> Visitor<'de> for DetailsVisitor {
            type Value = Details;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Details, A::Error> {
                let mut out = Details::default();
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    if is_key_material(&key) {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        keep(&mut out.0, &key, map.next_value()?);
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(DetailsVisitor)
    }
}
