//! From an event to the label values of the audit counters.
//!
//! This is the only place that decides what an audit label may say, and it
//! keeps every value in a bounded set:
//! - `source`, `category`, `outcome`, `severity`: the closed enums of
//!   `keytrail-core` (their contract names);
//! - `action`: the event's action only when the vendor catalog knows it:
//!   the enricher gave it a description (IBM `hs-crypto.`/`kms.` actions,
//!   the Securosys events of the catalog), or it is a Securosys
//!   `<OPERATION>_FAILED` event, a pattern the vendor documents. Anything
//!   else is [`OTHER_ACTION`]. A catalog name must also look like one
//!   (ASCII letters, digits, `.`, `_`, `-`; at most
//!   [`MAX_ACTION_LABEL_LEN`] bytes) or it is folded too.
//!
//! No user name, key id, IP address, CRN or free text ever becomes a label.
//! How many distinct catalog actions may appear is bounded separately, by
//! the sink's series cap ([`crate::sink`]).
//!
//! The [`PREREGISTERED_ACTIONABLE`] table names the actionable series that
//! the alert rules in `deploy/prometheus/alerts.yml` watch; the sink
//! creates them at zero so that `increase()` sees the first event.

use keytrail_core::{Category, Event, Outcome, Severity, Source};

/// The action label value of every event whose action is not in the
/// catalog, and of every series beyond the cap.
pub const OTHER_ACTION: &str = "other";

/// The longest action accepted as a label value.
pub const MAX_ACTION_LABEL_LEN: usize = 128;

/// The suffix of Securosys `<OPERATION>_FAILED` events.
const FAILED_SUFFIX: &str = "_FAILED";

/// The action label an event gets, before the series cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionLabel<'a> {
    /// A catalog action, exported under its own name.
    Known(&'a str),
    /// Not in the catalog: exported as [`OTHER_ACTION`].
    Other,
}

impl ActionLabel<'_> {
    /// The label value.
    pub fn as_str(&self) -> &str {
        match self {
            ActionLabel::Known(action) => action,
            ActionLabel::Other => OTHER_ACTION,
        }
    }
}

/// The action label of `event` (see the module docs).
pub fn action_label(event: &Event) -> ActionLabel<'_> {
    let action = event.action.as_str();
    let known = event.description.is_some()
        || (event.source == Source::SecurosysKm && is_failed_event(action));
    if known && is_label_safe(action) {
        ActionLabel::Known(action)
    } else {
        ActionLabel::Other
    }
}

/// A Securosys `<OPERATION>_FAILED` name: upper-case words joined by `_`.
fn is_failed_event(action: &str) -> bool {
    action.strip_suffix(FAILED_SUFFIX).is_some_and(|op| {
        op.starts_with(|c: char| c.is_ascii_uppercase())
            && op
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// Short, plain ASCII, and not the fold value itself.
fn is_label_safe(action: &str) -> bool {
    !action.is_empty()
        && action.len() <= MAX_ACTION_LABEL_LEN
        && action != OTHER_ACTION
        && action
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Number of distinct `keytrail_events_total` series one action can have:
/// every source × category × outcome × severity.
pub(crate) const EVENT_SERIES_PER_ACTION: usize =
    Source::ALL.len() * Category::ALL.len() * Outcome::ALL.len() * Severity::ALL.len();

/// Number of distinct `keytrail_actionable_events_total` series one action
/// can have: every source × severity.
pub(crate) const ACTIONABLE_SERIES_PER_ACTION: usize = Source::ALL.len() * Severity::ALL.len();

/// Dense index of the closed labels of an events series, below
/// [`EVENT_SERIES_PER_ACTION`].
pub(crate) fn event_series_index(
    source: Source,
    category: Category,
    outcome: Outcome,
    severity: Severity,
) -> usize {
    ((source as usize * Category::ALL.len() + category as usize) * Outcome::ALL.len()
        + outcome as usize)
        * Severity::ALL.len()
        + severity as usize
}

/// Dense index of the closed labels of an actionable series, below
/// [`ACTIONABLE_SERIES_PER_ACTION`].
pub(crate) fn actionable_series_index(source: Source, severity: Severity) -> usize {
    source as usize * Severity::ALL.len() + severity as usize
}

/// The actionable series the alert rules watch, created at zero: the
/// Securosys "important log events" at the severity of their documented
/// level, and the IBM actions rated critical (key and keystore deletion,
/// registration deletion, every TKE action, certificate manager
/// administration). IBM actions are listed under HPCS's `hs-crypto.`
/// prefix, plus the `kms.` key actions both HPCS and Key Protect send.
pub const PREREGISTERED_ACTIONABLE: &[(Source, &str, Severity)] = &[
    (Source::SecurosysKm, "SSL_ERROR", Severity::High),
    (Source::SecurosysKm, "REQUEST_ERROR", Severity::High),
    (Source::SecurosysKm, "REQUEST_TIMEOUT", Severity::High),
    (Source::SecurosysKm, "MTLS_FAILED", Severity::High),
    (Source::SecurosysKm, "DATA_OBJECT_CORRUPTED", Severity::High),
    (Source::SecurosysKm, "LOGIN_ERROR", Severity::High),
    (Source::SecurosysKm, "LOGIN_FAILURE", Severity::Medium),
    (Source::SecurosysKm, "LOGIN_DENIED", Severity::Medium),
    (
        Source::SecurosysKm,
        "LOGIN_SUCCESS",
        Severity::Informational,
    ),
    (Source::SecurosysKm, "USER_CREATED", Severity::Informational),
    (Source::SecurosysKm, "USER_UPDATED", Severity::Informational),
    (
        Source::SecurosysKm,
        "KMIP_USER_CREATED",
        Severity::Informational,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.secrets.delete",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.registrations.delete",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-admin.add",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-admin.remove",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-current-master-key-register.clear",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-new-master-key-register.clear",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-master-key-register.add",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-master-key-register.commit",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-master-key-register.activate",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit-threshold.set",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.tke-cryptounit.reset",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.mtlscert-admin-key.create",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.mtlscert-admin-key.update",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.mtlscert-admin-key.delete",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.mtlscert-cert.set",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.keystore.deletekey",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.keystore.deletekeystore",
        Severity::Critical,
    ),
    (
        Source::IbmHpcs,
        "hs-crypto.keystore.updatekey",
        Severity::Critical,
    ),
    (Source::IbmHpcs, "kms.secrets.delete", Severity::Critical),
    (
        Source::IbmHpcs,
        "kms.registrations.delete",
        Severity::Critical,
    ),
    (
        Source::IbmKeyProtect,
        "kms.secrets.delete",
        Severity::Critical,
    ),
    (
        Source::IbmKeyProtect,
        "kms.registrations.delete",
        Severity::Critical,
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use keytrail_core::Timestamp;

    use super::*;

    fn event(source: Source, action: &str, described: bool) -> Event {
        let mut e = Event::new(Timestamp::from_millis(0), source, action.into());
        if described {
            e.description = Some("From the catalog.".into());
        }
        e
    }

    #[test]
    fn catalog_actions_keep_their_name() {
        let e = event(Source::IbmHpcs, "hs-crypto.secrets.delete", true);
        assert_eq!(
            action_label(&e),
            ActionLabel::Known("hs-crypto.secrets.delete")
        );
        let e = event(Source::SecurosysKm, "LOGIN_FAILURE", true);
        assert_eq!(action_label(&e).as_str(), "LOGIN_FAILURE");
    }

    #[test]
    fn actions_outside_the_catalog_are_other() {
        for (source, action) in [
            (Source::IbmHpcs, "hs-crypto.secrets.brand-new"),
            (Source::IbmCloud, "iam-groups.group.create"),
            (Source::SecurosysKm, "KEY_CREATED"),
        ] {
            let e = event(source, action, false);
            assert_eq!(action_label(&e), ActionLabel::Other, "{action}");
            assert_eq!(action_label(&e).as_str(), "other");
        }
    }

    #[test]
    fn securosys_failed_events_are_a_known_pattern() {
        for action in ["KEY_DELETE_FAILED", "USER_UPDATE_FAILED", "MTLS_FAILED"] {
            let e = event(Source::SecurosysKm, action, false);
            assert_eq!(action_label(&e), ActionLabel::Known(action));
        }
        // Only for Securosys, only upper-case words before the suffix.
        for (source, action) in [
            (Source::IbmHpcs, "KEY_DELETE_FAILED"),
            (Source::SecurosysKm, "_FAILED"),
            (Source::SecurosysKm, "FAILED"),
            (Source::SecurosysKm, "key_delete_FAILED"),
            (Source::SecurosysKm, "KEY DELETE_FAILED"),
            (Source::SecurosysKm, "alice@example.com_FAILED"),
        ] {
            let e = event(source, action, false);
            assert_eq!(action_label(&e), ActionLabel::Other, "{action}");
        }
    }

    #[test]
    fn odd_text_never_becomes_a_label_even_with_a_description() {
        let long = "A".repeat(MAX_ACTION_LABEL_LEN + 1);
        for action in [
            "",
            "other",
            "crn:v1:bluemix:public:hs-crypto:us-south:a/123::key:abc",
            "hs-crypto.secrets.delete\n",
            "10.0.0.1 login",
            "é",
            long.as_str(),
        ] {
            let e = event(Source::IbmHpcs, action, true);
            assert_eq!(action_label(&e), ActionLabel::Other, "{action:?}");
        }
        let longest = "A".repeat(MAX_ACTION_LABEL_LEN);
        let e = event(Source::IbmHpcs, &longest, true);
        assert_eq!(action_label(&e), ActionLabel::Known(longest.as_str()));
    }

    #[test]
    fn series_indexes_are_dense_and_distinct() {
        let mut seen = HashSet::new();
        for s in Source::ALL {
            for c in Category::ALL {
                for o in Outcome::ALL {
                    for v in Severity::ALL {
                        let i = event_series_index(s, c, o, v);
                        assert!(i < EVENT_SERIES_PER_ACTION);
                        assert!(seen.insert(i));
                    }
                }
            }
        }
        assert_eq!(seen.len(), EVENT_SERIES_PER_ACTION);
        let mut seen = HashSet::new();
        for s in Source::ALL {
            for v in Severity::ALL {
                let i = actionable_series_index(s, v);
                assert!(i < ACTIONABLE_SERIES_PER_ACTION);
                assert!(seen.insert(i));
            }
        }
        assert_eq!(seen.len(), ACTIONABLE_SERIES_PER_ACTION);
    }

    #[test]
    fn preregistered_series_are_unique_and_label_safe() {
        let mut seen = HashSet::new();
        for &(source, action, severity) in PREREGISTERED_ACTIONABLE {
            assert!(seen.insert((source, action, severity)), "{action}");
            assert!(is_label_safe(action), "{action}");
            if source.is_ibm() {
                assert!(
                    action.starts_with("hs-crypto.") || action.starts_with("kms."),
                    "{action}"
                );
            }
        }
    }
}
