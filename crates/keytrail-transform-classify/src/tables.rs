//! The vendor knowledge of classification, as data.
//!
//! Every table here is a `const` slice with one row per action, status code
//! or rule, in the order of the vendor documents (`shared/reference/`) and
//! of `spec/vendor-rules.md`, so that a change on the vendor side is a
//! one-line diff here. Nothing in this module runs per event: the crate's
//! `rules` module turns these rows into hash maps and index arrays once per
//! process and evaluates events against those.
//!
//! IBM action names are written without their service prefix
//! (`secrets.delete`, not `hs-crypto.secrets.delete`): Hyper Protect Crypto
//! Services (`hs-crypto.`) and Key Protect (`kms.`) share them.
//!
//! All remediation hints are the project's own words, written from the
//! vendors' "analyzing failed events" and "important log events" guidance.
//! They are `&'static str`, so setting one on an event never allocates.

use keytrail_core::{Category, Outcome, Severity};

/// The OCSF schema version the ids in [`OCSF_CLASS_BY_CATEGORY`] and
/// [`OCSF_STATUS_BY_OUTCOME`] follow.
pub const OCSF_VERSION: &str = "1.4.0";

// ---------------------------------------------------------------------------
// IBM severity
// ---------------------------------------------------------------------------

/// IBM's own three-level severity scale (the `severity` field of an Activity
/// Tracker event and the levels of IBM's severity tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IbmLevel {
    /// IBM `normal`.
    Normal,
    /// IBM `warning`.
    Warning,
    /// IBM `critical`.
    Critical,
}

impl IbmLevel {
    /// The normalized severity: normal → informational, warning → medium,
    /// critical → critical.
    pub const fn severity(self) -> Severity {
        match self {
            IbmLevel::Normal => Severity::Informational,
            IbmLevel::Warning => Severity::Medium,
            IbmLevel::Critical => Severity::Critical,
        }
    }
}

/// The service prefixes (text before the first `.`) whose actions the IBM
/// tables describe. Actions of other IBM Cloud services get no action
/// severity of their own (normal); their status code and declared severity
/// still count.
pub const IBM_KNOWN_PREFIXES: &[&str] = &["hs-crypto", "kms"];

/// IBM severity by action (prefix stripped). Actions not listed, known or
/// unknown, are [`IbmLevel::Normal`]. The TKE rows are listed for the record;
/// [`IBM_SEVERITY_BY_RESOURCE_PREFIX`] makes every `tke-*` action critical.
pub const IBM_ACTION_SEVERITY: &[(&str, IbmLevel)] = &[
    // critical
    ("secrets.delete", IbmLevel::Critical),
    ("registrations.delete", IbmLevel::Critical),
    ("tke-cryptounit-admin.add", IbmLevel::Critical),
    ("tke-cryptounit-admin.remove", IbmLevel::Critical),
    (
        "tke-cryptounit-current-master-key-register.clear",
        IbmLevel::Critical,
    ),
    (
        "tke-cryptounit-new-master-key-register.clear",
        IbmLevel::Critical,
    ),
    ("tke-cryptounit-master-key-register.add", IbmLevel::Critical),
    (
        "tke-cryptounit-master-key-register.commit",
        IbmLevel::Critical,
    ),
    (
        "tke-cryptounit-master-key-register.activate",
        IbmLevel::Critical,
    ),
    ("tke-cryptounit-threshold.set", IbmLevel::Critical),
    ("tke-cryptounit.reset", IbmLevel::Critical),
    ("mtlscert-admin-key.create", IbmLevel::Critical),
    ("mtlscert-admin-key.update", IbmLevel::Critical),
    ("mtlscert-admin-key.delete", IbmLevel::Critical),
    ("mtlscert-cert.set", IbmLevel::Critical),
    ("keystore.deletekey", IbmLevel::Critical),
    ("keystore.deletekeystore", IbmLevel::Critical),
    ("keystore.updatekey", IbmLevel::Critical),
    // warning
    ("secrets.rotate", IbmLevel::Warning),
    ("secrets.restore", IbmLevel::Warning),
    ("secrets.enable", IbmLevel::Warning),
    ("secrets.disable", IbmLevel::Warning),
    ("secrets.setkeyfordeletion", IbmLevel::Warning),
    ("secrets.unsetkeyfordeletion", IbmLevel::Warning),
    ("policies.write", IbmLevel::Warning),
    ("instance-policies.write", IbmLevel::Warning),
];

/// The resource prefix of Trusted Key Entry actions (`tke-cryptounit.reset`).
/// TKE events are critical whatever their status, and a 400 on them is
/// critical too.
pub const IBM_TKE_RESOURCE_PREFIX: &str = "tke-";

/// IBM severity by resource prefix, for families the vendor rates as a
/// whole ("the severity level for all TKE events is critical").
pub const IBM_SEVERITY_BY_RESOURCE_PREFIX: &[(&str, IbmLevel)] =
    &[(IBM_TKE_RESOURCE_PREFIX, IbmLevel::Critical)];

/// Which IBM events a status-code row applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventScope {
    /// Every IBM event.
    Any,
    /// Trusted Key Entry (`tke-*`) events only.
    Tke,
    /// Every IBM event except TKE events.
    NotTke,
}

/// One row of IBM's status-code severity table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRow {
    /// `reason.reasonCode`.
    pub code: u32,
    /// Which events the row applies to.
    pub scope: EventScope,
    /// The severity IBM gives the code.
    pub level: IbmLevel,
}

const fn status(code: u32, scope: EventScope, level: IbmLevel) -> StatusRow {
    StatusRow { code, scope, level }
}

/// IBM severity by status code. Codes not listed (2xx, 404, …) are
/// [`IbmLevel::Normal`].
pub const IBM_STATUS_SEVERITY: &[StatusRow] = &[
    // critical
    status(400, EventScope::Tke, IbmLevel::Critical),
    status(401, EventScope::Any, IbmLevel::Critical),
    status(403, EventScope::Any, IbmLevel::Critical),
    status(500, EventScope::Any, IbmLevel::Critical),
    status(503, EventScope::Any, IbmLevel::Critical),
    status(507, EventScope::Any, IbmLevel::Critical),
    // warning
    status(400, EventScope::NotTke, IbmLevel::Warning),
    status(409, EventScope::Any, IbmLevel::Warning),
    status(424, EventScope::Any, IbmLevel::Warning),
    status(502, EventScope::Any, IbmLevel::Warning),
    status(504, EventScope::Any, IbmLevel::Warning),
    status(505, EventScope::Any, IbmLevel::Warning),
];

/// The values of an IBM event's own `severity` field, read in any letter
/// case. Other values are ignored.
pub const IBM_DECLARED_SEVERITY: &[(&str, IbmLevel)] = &[
    ("normal", IbmLevel::Normal),
    ("warning", IbmLevel::Warning),
    ("critical", IbmLevel::Critical),
];

/// IBM status codes after which a `failure` is reported as `denied`.
pub const IBM_DENIED_STATUS: &[u32] = &[401, 403];

// ---------------------------------------------------------------------------
// IBM remediation
// ---------------------------------------------------------------------------

/// IBM actions whose failure the vendor explains under "Lifecycle action on
/// a key with registrations did not complete" (409: the adopting service's
/// key state conflicts; 408: it did not confirm within 4 hours): the key
/// state changes that IBM propagates to registered services, and the
/// acknowledgements those services send back. `secrets.endtoenddelete` is
/// not in the HPCS document; it is kept because Key Protect's delete flow is
/// described under that name in the project brief.
pub const IBM_LIFECYCLE_ACTIONS: &[&str] = &[
    "secrets.rotate",
    "secrets.restore",
    "secrets.enable",
    "secrets.disable",
    "secrets.delete",
    "secrets.setkeyfordeletion",
    "secrets.unsetkeyfordeletion",
    "secrets.expire",
    "secrets.endtoenddelete",
    "secrets.ack-delete",
    "secrets.ack-restore",
    "secrets.ack-rotate",
    "secrets.ack-enable",
    "secrets.ack-disable",
    "secrets-event.ack",
];

/// IBM actions that delete a key (the "unable to delete a key" guidance).
pub const IBM_KEY_DELETE_ACTIONS: &[&str] = &["secrets.delete"];

/// Which IBM actions a hint rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionScope {
    /// Any action.
    Any,
    /// Key deletions ([`IBM_KEY_DELETE_ACTIONS`]).
    KeyDelete,
    /// Lifecycle actions on keys ([`IBM_LIFECYCLE_ACTIONS`]).
    Lifecycle,
    /// Trusted Key Entry (`tke-*`) actions.
    Tke,
}

/// Which outcomes a hint rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeScope {
    /// Any outcome.
    Any,
    /// Only [`Outcome::Success`].
    Success,
}

/// One IBM remediation rule: the first rule whose conditions all hold gives
/// the hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IbmHintRule {
    /// A short name for tests and documentation.
    pub name: &'static str,
    /// Which actions.
    pub actions: ActionScope,
    /// Which status codes; empty means any (or none).
    pub status_codes: &'static [u32],
    /// Which outcomes.
    pub outcome: OutcomeScope,
    /// The hint.
    pub hint: &'static str,
}

const fn hint(
    name: &'static str,
    actions: ActionScope,
    status_codes: &'static [u32],
    outcome: OutcomeScope,
    hint: &'static str,
) -> IbmHintRule {
    IbmHintRule {
        name,
        actions,
        status_codes,
        outcome,
        hint,
    }
}

/// IBM remediation rules, most specific first; the last row matches every
/// event, so every actionable IBM event gets a hint.
///
/// The `success` row covers IBM's critical successes (a key deletion, a
/// master key change) and also any success an operator made actionable
/// through configuration: for a change that worked, confirming it was meant
/// is the one useful check.
pub const IBM_HINT_RULES: &[IbmHintRule] = &[
    hint(
        "key_delete_conflict",
        ActionScope::KeyDelete,
        &[409],
        OutcomeScope::Any,
        "The key could not be deleted: list its registrations for resources with a retention \
         policy (preventKeyDeletion true) and read its policies for a dual authorization \
         deletion policy, in which case a second authorized user must do the delete.",
    ),
    hint(
        "tke_token",
        ActionScope::Tke,
        &[401, 403],
        OutcomeScope::Any,
        "The TKE request was refused: the access token is invalid or may not act on this \
         instance; get a fresh token and check the administrator's roles.",
    ),
    hint(
        "tke_bad_request",
        ActionScope::Tke,
        &[400],
        OutcomeScope::Any,
        "The crypto units refused the operation as unsupported or invalid: check the TKE \
         command and its arguments against the TKE CLI reference.",
    ),
    hint(
        "lifecycle_conflict",
        ActionScope::Lifecycle,
        &[409],
        OutcomeScope::Any,
        "A service registered on this key holds a key state that conflicts with this action: \
         see responseData.reasonForFailure and responseData.resourceCRN for which resource.",
    ),
    hint(
        "lifecycle_timeout",
        ActionScope::Lifecycle,
        &[408],
        OutcomeScope::Any,
        "Services registered on this key did not confirm within 4 hours that they had done \
         their part: see responseData.reasonForFailure and responseData.resourceCRN.",
    ),
    hint(
        "unauthenticated",
        ActionScope::Any,
        &[401],
        OutcomeScope::Any,
        "The caller was not authenticated for this instance: check that its token is valid \
         and that it holds the platform and service roles the action needs on the instance.",
    ),
    hint(
        "forbidden",
        ActionScope::Any,
        &[403],
        OutcomeScope::Any,
        "The access token is invalid or lacks permission for this action: refresh it and \
         check the caller's roles on the instance.",
    ),
    hint(
        "server_error",
        ActionScope::Any,
        &[500],
        OutcomeScope::Any,
        "The service failed internally: reason.reasonForFailure names the cause and the step \
         to take.",
    ),
    hint(
        "success",
        ActionScope::Any,
        &[],
        OutcomeScope::Success,
        "A sensitive change succeeded: confirm with its initiator that it was intended.",
    ),
    hint(
        "generic",
        ActionScope::Any,
        &[],
        OutcomeScope::Any,
        IBM_GENERIC_HINT,
    ),
];

/// The hint of an actionable IBM event that no more specific rule of
/// [`IBM_HINT_RULES`] covers (its last row).
pub const IBM_GENERIC_HINT: &str =
    "The request did not complete as asked: check the status code and reason.reasonForFailure.";

// ---------------------------------------------------------------------------
// Securosys
// ---------------------------------------------------------------------------

/// Severity by Securosys `level`, read in any letter case. Any other level
/// is informational.
pub const SECUROSYS_LEVEL_SEVERITY: &[(&str, Severity)] = &[
    ("INFO", Severity::Informational),
    ("WARNING", Severity::Medium),
    ("WARN", Severity::Medium),
    ("ERROR", Severity::High),
];

/// The Securosys level that marks an error (used to pick the OCSF
/// application error class for system events).
pub const SECUROSYS_ERROR_LEVEL: &str = "ERROR";

/// How a row of [`SECUROSYS_ACTIONABLE`] matches the event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventName {
    /// The event name exactly (`SSL_ERROR`).
    Exact(&'static str),
    /// Any event name ending so (`_FAILED` for `<OPERATION>_FAILED`).
    Suffix(&'static str),
}

/// One of the vendor's "important log events".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurosysRow {
    /// The level the vendor documents for the event.
    pub level: &'static str,
    /// The category the vendor documents; `None` for "any".
    pub category: Option<Category>,
    /// The event name.
    pub event: EventName,
    /// What the operator should check.
    pub hint: &'static str,
}

const fn row(
    level: &'static str,
    category: Option<Category>,
    event: EventName,
    hint: &'static str,
) -> SecurosysRow {
    SecurosysRow {
        level,
        category,
        event,
        hint,
    }
}

/// The Securosys Key Manager's important (actionable) log events, in the
/// vendor's order. An exact name wins over a suffix (`MTLS_FAILED` gets its
/// own hint, not the `_FAILED` one). A row matches an event of its name
/// logged at its level (`WARN` reads as `WARNING`; an event without a level
/// matches by name), and no other Securosys event is actionable.
pub const SECUROSYS_ACTIONABLE: &[SecurosysRow] = &[
    row(
        "ERROR",
        Some(Category::System),
        EventName::Exact("SSL_ERROR"),
        "The Key Manager UI could not validate the TLS certificate chain of a backend (TSB, \
         OAuth or MCP): if that backend uses a private CA, make the UI trust that CA.",
    ),
    row(
        "ERROR",
        Some(Category::System),
        EventName::Exact("REQUEST_ERROR"),
        "A backend (TSB, OAuth or MCP) could not be reached from the Key Manager UI: check that \
         it runs and that the network path and name resolution work.",
    ),
    row(
        "ERROR",
        Some(Category::System),
        EventName::Exact("REQUEST_TIMEOUT"),
        "A backend (TSB, OAuth or MCP) did not answer the Key Manager UI in time: check that it \
         runs and is reachable.",
    ),
    row(
        "ERROR",
        Some(Category::System),
        EventName::Exact("MTLS_FAILED"),
        "Mutual TLS to the TSB failed: check the client certificate, its key and the trusted CA \
         configured for the TSB backend.",
    ),
    row(
        "ERROR",
        None,
        EventName::Suffix("_FAILED"),
        "An operation failed: look in the TSB and HSM logs around this time for the cause.",
    ),
    row(
        "ERROR",
        Some(Category::DataObject),
        EventName::Exact("DATA_OBJECT_CORRUPTED"),
        "A data object of the Key Manager UI was changed outside the UI: delete that object and \
         restart the UI.",
    ),
    row(
        "ERROR",
        Some(Category::Authentication),
        EventName::Exact("LOGIN_ERROR"),
        "A login could not be completed: check the UI's connection to the TSB and the \
         credentials it uses.",
    ),
    row(
        "WARNING",
        Some(Category::Authentication),
        EventName::Exact("LOGIN_FAILURE"),
        "Someone tried to log in with invalid credentials: look for repeated attempts on the \
         same user or from the same session.",
    ),
    row(
        "WARNING",
        Some(Category::Authentication),
        EventName::Exact("LOGIN_DENIED"),
        "OAuth authentication succeeded but authorization refused access: check the user's \
         roles and group mappings.",
    ),
    row(
        "INFO",
        Some(Category::Authentication),
        EventName::Exact("LOGIN_SUCCESS"),
        "A user logged in: confirm the login was expected for this user and provider.",
    ),
    row(
        "INFO",
        Some(Category::UserManagement),
        EventName::Exact("USER_CREATED"),
        "A local user was created: confirm the new account was intended.",
    ),
    row(
        "INFO",
        Some(Category::UserManagement),
        EventName::Exact("USER_UPDATED"),
        "A local user was changed: confirm the change was intended.",
    ),
    row(
        "INFO",
        Some(Category::KmipManagement),
        EventName::Exact("KMIP_USER_CREATED"),
        "A KMIP user was created: confirm the new client account was intended.",
    ),
];

/// The hint of a Securosys event made actionable by configuration that is
/// in no row of [`SECUROSYS_ACTIONABLE`] and whose override carries no hint
/// of its own.
pub const SECUROSYS_FALLBACK_HINT: &str =
    "Check the event's details and the Key Manager UI, TSB and HSM logs around this time.";

/// Every built-in remediation hint (the IBM rules end with
/// [`IBM_GENERIC_HINT`]).
pub(crate) fn builtin_hints() -> impl Iterator<Item = &'static str> {
    IBM_HINT_RULES
        .iter()
        .map(|r| r.hint)
        .chain(SECUROSYS_ACTIONABLE.iter().map(|r| r.hint))
        .chain([SECUROSYS_FALLBACK_HINT])
}

// ---------------------------------------------------------------------------
// OCSF
// ---------------------------------------------------------------------------

/// What an action does, read from its verb (IBM: the last segment of the
/// action; Securosys: a word of the event name). Each OCSF class maps verbs
/// to its own activity ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Creates something.
    Create,
    /// Reads or lists.
    Read,
    /// Changes something that stays.
    Update,
    /// Deletes or destroys.
    Delete,
    /// Enables.
    Enable,
    /// Disables.
    Disable,
    /// Logs in.
    Logon,
    /// Logs out.
    Logoff,
    /// Starts a service.
    Start,
    /// Stops a service.
    Stop,
}

/// Verbs by word, lower case (upper-case forms are derived at build, for
/// Securosys event names). IBM's compound verbs (`createkeystore`,
/// `listkeysbyids`) are spelled out so that the table stays exact.
pub const VERBS: &[(&str, Verb)] = &[
    // create
    ("create", Verb::Create),
    ("created", Verb::Create),
    ("add", Verb::Create),
    ("added", Verb::Create),
    ("createalias", Verb::Create),
    ("createkeystore", Verb::Create),
    ("storenewkey", Verb::Create),
    // read
    ("read", Verb::Read),
    ("list", Verb::Read),
    ("get", Verb::Read),
    ("retrieve", Verb::Read),
    ("head", Verb::Read),
    ("readmetadata", Verb::Read),
    ("listkeyversions", Verb::Read),
    ("listkeysbyattributes", Verb::Read),
    ("listkeysbyids", Verb::Read),
    ("listkeystoresbyattributes", Verb::Read),
    ("listkeystoresbyids", Verb::Read),
    // update
    ("update", Verb::Update),
    ("updated", Verb::Update),
    ("updatekey", Verb::Update),
    ("write", Verb::Update),
    ("patch", Verb::Update),
    ("set", Verb::Update),
    ("merge", Verb::Update),
    ("rotate", Verb::Update),
    ("rotated", Verb::Update),
    ("restore", Verb::Update),
    ("restored", Verb::Update),
    ("expire", Verb::Update),
    ("revoke", Verb::Update),
    ("activate", Verb::Update),
    ("commit", Verb::Update),
    ("clear", Verb::Update),
    ("reset", Verb::Update),
    ("setkeyfordeletion", Verb::Update),
    ("unsetkeyfordeletion", Verb::Update),
    ("ack", Verb::Update),
    ("ack-delete", Verb::Update),
    ("ack-restore", Verb::Update),
    ("ack-rotate", Verb::Update),
    ("ack-enable", Verb::Update),
    ("ack-disable", Verb::Update),
    // delete
    ("delete", Verb::Delete),
    ("deleted", Verb::Delete),
    ("deletealias", Verb::Delete),
    ("deletekey", Verb::Delete),
    ("deletekeystore", Verb::Delete),
    ("endtoenddelete", Verb::Delete),
    ("destroy", Verb::Delete),
    ("destroyed", Verb::Delete),
    ("purge", Verb::Delete),
    ("remove", Verb::Delete),
    ("removed", Verb::Delete),
    // enable / disable
    ("enable", Verb::Enable),
    ("enabled", Verb::Enable),
    ("disable", Verb::Disable),
    ("disabled", Verb::Disable),
    // sessions
    ("login", Verb::Logon),
    ("logon", Verb::Logon),
    ("logout", Verb::Logoff),
    ("logoff", Verb::Logoff),
    // services
    ("start", Verb::Start),
    ("started", Verb::Start),
    ("stop", Verb::Stop),
    ("stopped", Verb::Stop),
];

/// The OCSF activity id for an action whose verb is not in the class's map.
pub const OCSF_ACTIVITY_OTHER: u32 = 99;

/// The OCSF activity id for an action with no verb at all.
pub const OCSF_ACTIVITY_UNKNOWN: u32 = 0;

/// One OCSF event class and how it numbers activities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OcsfClass {
    /// The class caption.
    pub name: &'static str,
    /// `class_uid`.
    pub class_uid: u32,
    /// `category_uid`.
    pub category_uid: u32,
    /// Activity ids by verb.
    pub activities: &'static [(Verb, u32)],
    /// Activity id for a verb missing from `activities`.
    pub other_activity: u32,
    /// Activity id for an action with no verb.
    pub no_verb_activity: u32,
}

/// Create/read/update/delete numbering, shared by Entity Management and API
/// Activity. Enabling or disabling something changes it: update.
const CRUD_ACTIVITIES: &[(Verb, u32)] = &[
    (Verb::Create, 1),
    (Verb::Read, 2),
    (Verb::Update, 3),
    (Verb::Enable, 3),
    (Verb::Disable, 3),
    (Verb::Delete, 4),
];

/// OCSF 3002 Authentication.
pub const OCSF_AUTHENTICATION: OcsfClass = OcsfClass {
    name: "Authentication",
    class_uid: 3002,
    category_uid: 3,
    activities: &[(Verb::Logon, 1), (Verb::Logoff, 2)],
    other_activity: OCSF_ACTIVITY_OTHER,
    no_verb_activity: OCSF_ACTIVITY_UNKNOWN,
};

/// OCSF 3001 Account Change (its own numbering: enable 2, disable 5,
/// delete 6; an update that is not one of its named activities is other).
pub const OCSF_ACCOUNT_CHANGE: OcsfClass = OcsfClass {
    name: "Account Change",
    class_uid: 3001,
    category_uid: 3,
    activities: &[
        (Verb::Create, 1),
        (Verb::Enable, 2),
        (Verb::Disable, 5),
        (Verb::Delete, 6),
    ],
    other_activity: OCSF_ACTIVITY_OTHER,
    no_verb_activity: OCSF_ACTIVITY_UNKNOWN,
};

/// OCSF 3004 Entity Management.
pub const OCSF_ENTITY_MANAGEMENT: OcsfClass = OcsfClass {
    name: "Entity Management",
    class_uid: 3004,
    category_uid: 3,
    activities: CRUD_ACTIVITIES,
    other_activity: OCSF_ACTIVITY_OTHER,
    no_verb_activity: OCSF_ACTIVITY_UNKNOWN,
};

/// OCSF 6002 Application Lifecycle, for Securosys system events that are
/// not errors (the UI's own start, stop and settings).
pub const OCSF_APPLICATION_LIFECYCLE: OcsfClass = OcsfClass {
    name: "Application Lifecycle",
    class_uid: 6002,
    category_uid: 6,
    activities: &[
        (Verb::Start, 3),
        (Verb::Stop, 4),
        (Verb::Enable, 6),
        (Verb::Disable, 7),
        (Verb::Update, 8),
    ],
    other_activity: OCSF_ACTIVITY_OTHER,
    no_verb_activity: OCSF_ACTIVITY_UNKNOWN,
};

/// OCSF 6003 API Activity.
pub const OCSF_API_ACTIVITY: OcsfClass = OcsfClass {
    name: "API Activity",
    class_uid: 6003,
    category_uid: 6,
    activities: CRUD_ACTIVITIES,
    other_activity: OCSF_ACTIVITY_OTHER,
    no_verb_activity: OCSF_ACTIVITY_UNKNOWN,
};

/// OCSF 6008 Application Error, for system events that report an error
/// (level ERROR, or a failed or denied outcome). Its one activity is 1
/// General Error, whatever the verb.
/// The class first appears in OCSF 1.4.0, which is why [`OCSF_VERSION`] is
/// pinned there.
pub const OCSF_APPLICATION_ERROR: OcsfClass = OcsfClass {
    name: "Application Error",
    class_uid: 6008,
    category_uid: 6,
    activities: &[],
    other_activity: 1,
    no_verb_activity: 1,
};

/// OCSF class by event category. `system` events use
/// [`OCSF_APPLICATION_ERROR`] instead when they report an error; `other`
/// (mostly other IBM Cloud services sharing the Activity Tracker topic, all
/// of them API calls) is API Activity.
pub const OCSF_CLASS_BY_CATEGORY: &[(Category, OcsfClass)] = &[
    (Category::Authentication, OCSF_AUTHENTICATION),
    (Category::UserManagement, OCSF_ACCOUNT_CHANGE),
    (Category::ApproverManagement, OCSF_ACCOUNT_CHANGE),
    (Category::KeyManagement, OCSF_ENTITY_MANAGEMENT),
    (Category::CertificateManagement, OCSF_ENTITY_MANAGEMENT),
    (Category::KmipManagement, OCSF_ENTITY_MANAGEMENT),
    (Category::PolicyManagement, OCSF_ENTITY_MANAGEMENT),
    (Category::HsmAdministration, OCSF_ENTITY_MANAGEMENT),
    (Category::KeystoreManagement, OCSF_ENTITY_MANAGEMENT),
    (Category::ProfileManagement, OCSF_ENTITY_MANAGEMENT),
    (Category::DataObject, OCSF_ENTITY_MANAGEMENT),
    (Category::CryptoOperation, OCSF_API_ACTIVITY),
    (Category::System, OCSF_APPLICATION_LIFECYCLE),
    (Category::Other, OCSF_API_ACTIVITY),
];

/// The class a `system` event takes when it reports an error.
pub const OCSF_SYSTEM_ERROR_CLASS: OcsfClass = OCSF_APPLICATION_ERROR;

/// OCSF `status_id` by outcome: 1 success, 2 failure, 0 unknown.
pub const OCSF_STATUS_BY_OUTCOME: &[(Outcome, u32)] = &[
    (Outcome::Success, 1),
    (Outcome::Failure, 2),
    (Outcome::Denied, 2),
    (Outcome::Pending, 0),
    (Outcome::Unknown, 0),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_category_has_exactly_one_ocsf_class() {
        for category in Category::ALL {
            let rows = OCSF_CLASS_BY_CATEGORY
                .iter()
                .filter(|(c, _)| *c == category)
                .count();
            assert_eq!(rows, 1, "{category:?}");
        }
    }

    #[test]
    fn every_outcome_has_exactly_one_ocsf_status() {
        for outcome in Outcome::ALL {
            let rows = OCSF_STATUS_BY_OUTCOME
                .iter()
                .filter(|(o, _)| *o == outcome)
                .count();
            assert_eq!(rows, 1, "{outcome:?}");
        }
    }

    #[test]
    fn ocsf_classes_map_each_verb_once() {
        for (_, class) in OCSF_CLASS_BY_CATEGORY
            .iter()
            .chain([&(Category::System, OCSF_SYSTEM_ERROR_CLASS)])
        {
            let verbs: HashSet<Verb> = class.activities.iter().map(|(v, _)| *v).collect();
            assert_eq!(verbs.len(), class.activities.len(), "{}", class.name);
        }
    }

    #[test]
    fn ibm_action_rows_are_unique_and_unprefixed() {
        let mut seen = HashSet::new();
        for (action, level) in IBM_ACTION_SEVERITY {
            assert!(seen.insert(action), "{action} listed twice");
            let prefix = action.split('.').next().unwrap_or_default();
            assert!(!IBM_KNOWN_PREFIXES.contains(&prefix), "{action}");
            if action.starts_with(IBM_TKE_RESOURCE_PREFIX) {
                assert_eq!(*level, IbmLevel::Critical, "{action}");
            }
        }
    }

    #[test]
    fn ibm_status_rows_do_not_overlap() {
        let mut seen = HashSet::new();
        for row in IBM_STATUS_SEVERITY {
            assert!(seen.insert((row.code, row.scope as u8)), "{}", row.code);
            if row.scope != EventScope::Any {
                assert!(
                    !IBM_STATUS_SEVERITY
                        .iter()
                        .any(|other| other.code == row.code && other.scope == EventScope::Any),
                    "{} is both scoped and unscoped",
                    row.code
                );
            }
        }
    }

    #[test]
    fn ibm_hint_rules_end_with_a_catch_all() {
        let last = IBM_HINT_RULES.last().expect("rules");
        assert_eq!(last.actions, ActionScope::Any);
        assert!(last.status_codes.is_empty());
        assert_eq!(last.outcome, OutcomeScope::Any);
        assert_eq!(last.hint, IBM_GENERIC_HINT);
        let names: HashSet<&str> = IBM_HINT_RULES.iter().map(|r| r.name).collect();
        assert_eq!(names.len(), IBM_HINT_RULES.len());
    }

    #[test]
    fn key_deletions_are_lifecycle_actions() {
        for action in IBM_KEY_DELETE_ACTIONS {
            assert!(IBM_LIFECYCLE_ACTIONS.contains(action), "{action}");
        }
    }

    #[test]
    fn securosys_rows_are_unique_with_one_suffix_row() {
        let mut exact = HashSet::new();
        let mut suffixes = 0;
        for row in SECUROSYS_ACTIONABLE {
            match row.event {
                EventName::Exact(name) => assert!(exact.insert(name), "{name}"),
                EventName::Suffix(_) => suffixes += 1,
            }
            assert!(
                SECUROSYS_LEVEL_SEVERITY
                    .iter()
                    .any(|(level, _)| *level == row.level),
                "{:?}",
                row.event
            );
        }
        assert_eq!(suffixes, 1);
    }

    #[test]
    fn hints_are_distinct_short_sentences() {
        let hints: Vec<&str> = builtin_hints().collect();
        let distinct: HashSet<&str> = hints.iter().copied().collect();
        assert_eq!(distinct.len(), hints.len());
        for hint in hints {
            assert!(hint.ends_with('.'), "{hint}");
            assert!(!hint.contains("  "), "{hint}");
            assert!(hint.len() < 260, "{hint}");
        }
    }

    #[test]
    fn verbs_are_unique_lower_case_words() {
        let mut seen = HashSet::new();
        for (word, _) in VERBS {
            assert!(seen.insert(word), "{word}");
            assert_eq!(*word, word.to_ascii_lowercase());
            assert!(!word.contains(['_', '.']), "{word}");
        }
    }
}
