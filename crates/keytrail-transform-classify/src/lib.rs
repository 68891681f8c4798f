//! Severity, actionable events, remediation hints and OCSF ids for keytrail.
//!
//! Classify is the third stage of the pipeline: normalize turns vendor JSON
//! into a [`keytrail_core::Event`], enrich translates historical IBM action
//! names and sets the category, then the [`Classifier`] (a
//! [`keytrail_core::Transform`]) sets, on every event:
//!
//! - `outcome`, refined: an IBM `failure` with status 401 or 403 becomes
//!   `denied` (first, so every later rule sees the final outcome);
//! - `severity`, from the vendor rules of `spec/vendor-rules.md`, then the
//!   operator's severity overrides;
//! - `actionable` and `remediation`, from the vendor rules and the
//!   operator's actionable overrides;
//! - `ocsf`, the OCSF ids ([`OCSF_VERSION`]).
//!
//! # Precedence
//!
//! 1. Outcome refinement (IBM 401/403 → denied).
//! 2. Built-in severity. IBM: the highest of the action's severity, the
//!    status code's and the event's declared `severity`; TKE events are
//!    critical. Securosys: from `level`.
//! 3. `severity` overrides: the last entry matching the action (and the
//!    status code, when the entry names one) sets the severity, higher or
//!    lower. This includes TKE events: the operator's word is final.
//! 4. `actionable`, computed on the final severity: the built-in rule (IBM:
//!    not a success, or critical; Securosys: one of the vendor's important
//!    events) or the last `actionable` entry matching the action whose
//!    `min_severity`, if any, the final severity reaches. So lowering a
//!    critical IBM success makes it non-actionable again, and raising a
//!    success to critical makes it actionable.
//! 5. `remediation`, for actionable events only: the matching `actionable`
//!    entry's own hint if it has one, else the first built-in hint rule that
//!    applies. Non-actionable events get none.
//! 6. OCSF ids, from the category, the action's verb and the final outcome.
//!
//! # Guarantees
//!
//! Applying the classifier is idempotent: it reads only fields earlier
//! stages set (plus the outcome it refines idempotently) and overwrites
//! every field it owns. Built-in hints are `&'static str` set as
//! [`std::borrow::Cow::Borrowed`]; an override's hint is cloned into
//! [`std::borrow::Cow::Owned`] for the (operator-selected) events it
//! matches, so nothing is leaked when a classifier is rebuilt. With no
//! override configured, classifying an event allocates nothing.
//!
//! # Configuration
//!
//! In the binary's configuration file (TOML), under the classify section:
//!
//! ```
//! use keytrail_core::{Event, Outcome, Severity, Source, Timestamp, Transform};
//! use keytrail_transform_classify::ClassifyConfig;
//!
//! let config: ClassifyConfig = toml::from_str(
//!     r#"
//!     [[severity]]
//!     action = "hs-crypto.secrets.read"
//!     severity = "high"
//!     status_code = 404
//!
//!     [[severity]]
//!     pattern = "kms.secrets.*"
//!     severity = "low"
//!
//!     [[actionable]]
//!     pattern = "hs-crypto.ep11.*"
//!     min_severity = "medium"
//!     remediation = "Page the crypto team."
//!     "#,
//! )?;
//! let classifier = config.build()?;
//!
//! let mut event = Event::new(
//!     Timestamp::from_millis(0),
//!     Source::IbmHpcs,
//!     "hs-crypto.secrets.create".into(),
//! );
//! event.outcome = Outcome::Failure;
//! event.status_code = Some(401);
//! classifier.apply(&mut event);
//! assert_eq!(event.outcome, Outcome::Denied);
//! assert_eq!(event.severity, Severity::Critical);
//! assert!(event.actionable && event.remediation.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod tables;

mod overrides;
mod rules;

use keytrail_core::{Event, Severity, Text, Transform};
use serde::{Deserialize, Serialize};

use crate::overrides::{ActionableRule, Matcher, OverrideSet, SeverityRule};

pub use crate::tables::OCSF_VERSION;

/// The severity names accepted in configuration, for error messages.
const VALID_SEVERITIES: &str = "informational, low, medium, high, critical";

/// Classification settings: the operator's overrides of the built-in
/// vendor rules. The default has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// Severity overrides, applied after the built-in rules; when several
    /// match an event, the last one wins.
    #[serde(default)]
    pub severity: Vec<SeverityOverride>,
    /// Extra actionable events, on top of the built-in vendor rules; when
    /// several match an event, the last one wins.
    #[serde(default)]
    pub actionable: Vec<ActionableOverride>,
}

/// Sets the severity of the events it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityOverride {
    /// An exact action name (`hs-crypto.secrets.read`, `LOGIN_FAILURE`).
    /// Exactly one of `action` and `pattern` must be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A glob over action names (`kms.secrets.*`, `*_FAILED`). Exactly one
    /// of `action` and `pattern` must be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The severity to set: `informational`, `low`, `medium`, `high` or
    /// `critical` (any letter case).
    pub severity: String,
    /// Only events with this status code (IBM `reason.reasonCode`); any
    /// event when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u32>,
}

/// Marks the events it matches actionable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionableOverride {
    /// An exact action name. Exactly one of `action` and `pattern` must be
    /// set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A glob over action names. Exactly one of `action` and `pattern` must
    /// be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The hint to give the operator, instead of the built-in one; the
    /// built-in hint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// Only events whose final severity is at least this one; any severity
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<String>,
}

/// Why a [`ClassifyConfig`] could not be built. `section` is the
/// configuration list (`severity`, `actionable`) and `index` the entry's
/// position in it, from 0.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClassifyBuildError {
    /// Both `action` and `pattern` were set.
    #[error("{section}[{index}]: set either `action` or `pattern`, not both")]
    BothActionAndPattern {
        /// The configuration list.
        section: &'static str,
        /// The entry's position.
        index: usize,
    },
    /// Neither `action` nor `pattern` was set, or the one set is empty.
    #[error(
        "{section}[{index}]: set a non-empty `action` (an exact action name) or `pattern` (a glob)"
    )]
    NoActionOrPattern {
        /// The configuration list.
        section: &'static str,
        /// The entry's position.
        index: usize,
    },
    /// A severity name outside the contract scale.
    #[error(
        "{section}[{index}]: unknown {field} `{value}`, expected one of: {valid}",
        valid = VALID_SEVERITIES
    )]
    UnknownSeverity {
        /// The configuration list.
        section: &'static str,
        /// The entry's position.
        index: usize,
        /// The field (`severity`, `min_severity`).
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// A pattern that is not a valid glob.
    #[error("{section}[{index}]: invalid glob pattern `{pattern}`")]
    InvalidPattern {
        /// The configuration list.
        section: &'static str,
        /// The entry's position.
        index: usize,
        /// The pattern given.
        pattern: String,
        /// The parser's complaint.
        #[source]
        source: globset::Error,
    },
    /// The valid patterns of a list could not be compiled together.
    #[error("{section}: cannot compile the glob patterns")]
    PatternSet {
        /// The configuration list.
        section: &'static str,
        /// The compiler's complaint.
        #[source]
        source: globset::Error,
    },
}

impl ClassifyConfig {
    /// Validates the overrides and builds the classifier: exactly one
    /// non-empty `action` or `pattern` per entry, valid severity names,
    /// valid globs. Patterns are compiled here, once.
    pub fn build(&self) -> Result<Classifier, ClassifyBuildError> {
        const SEVERITY: &str = "severity";
        const ACTIONABLE: &str = "actionable";

        let mut severity = Vec::with_capacity(self.severity.len());
        for (index, entry) in self.severity.iter().enumerate() {
            let matcher = matcher(SEVERITY, index, &entry.action, &entry.pattern)?;
            let rule = SeverityRule {
                severity: severity_name(SEVERITY, index, "severity", &entry.severity)?,
                status_code: entry.status_code,
            };
            severity.push((matcher, rule));
        }

        let mut actionable = Vec::with_capacity(self.actionable.len());
        for (index, entry) in self.actionable.iter().enumerate() {
            let matcher = matcher(ACTIONABLE, index, &entry.action, &entry.pattern)?;
            let min_severity = entry
                .min_severity
                .as_deref()
                .map(|name| severity_name(ACTIONABLE, index, "min_severity", name))
                .transpose()?;
            let rule = ActionableRule {
                remediation: entry.remediation.clone(),
                min_severity,
            };
            actionable.push((matcher, rule));
        }

        Ok(Classifier {
            severity: OverrideSet::compile(SEVERITY, severity)?,
            actionable: OverrideSet::compile(ACTIONABLE, actionable)?,
        })
    }
}

fn matcher(
    section: &'static str,
    index: usize,
    action: &Option<String>,
    pattern: &Option<String>,
) -> Result<Matcher, ClassifyBuildError> {
    match (action, pattern) {
        (Some(_), Some(_)) => Err(ClassifyBuildError::BothActionAndPattern { section, index }),
        (Some(action), None) if !action.is_empty() => Ok(Matcher::Action(action.clone())),
        (None, Some(pattern)) if !pattern.is_empty() => Ok(Matcher::Pattern(pattern.clone())),
        _ => Err(ClassifyBuildError::NoActionOrPattern { section, index }),
    }
}

fn severity_name(
    section: &'static str,
    index: usize,
    field: &'static str,
    value: &str,
) -> Result<Severity, ClassifyBuildError> {
    Severity::from_name(value.trim()).ok_or_else(|| ClassifyBuildError::UnknownSeverity {
        section,
        index,
        field,
        value: value.to_owned(),
    })
}

/// Sets severity, actionable, remediation and OCSF ids on events, and
/// refines the IBM outcome (see the crate docs for the precedence). Built
/// by [`ClassifyConfig::build`], or by [`Classifier::new`] for the built-in
/// rules alone.
#[derive(Debug, Default)]
pub struct Classifier {
    severity: OverrideSet<SeverityRule>,
    actionable: OverrideSet<ActionableRule>,
}

impl Classifier {
    /// A classifier with the built-in vendor rules and no overrides.
    pub fn new() -> Classifier {
        Classifier::default()
    }

    /// True when the classifier has no operator overrides.
    pub fn has_overrides(&self) -> bool {
        !(self.severity.is_empty() && self.actionable.is_empty())
    }

    /// True when every text the classifier can set (the remediation hints,
    /// built-in and the operator's) is plain JSON string content
    /// ([`keytrail_core::json::is_plain`]), so that it keeps an event's
    /// texts plain (see [`Event::write_json_plain`]).
    pub fn adds_plain_texts(&self) -> bool {
        use keytrail_core::json::is_plain;
        tables::builtin_hints().all(is_plain)
            && self
                .actionable
                .rules()
                .iter()
                .filter_map(|rule| rule.remediation.as_deref())
                .all(is_plain)
    }
}

impl Transform for Classifier {
    fn apply(&self, event: &mut Event) {
        rules::refine_outcome(event);
        let assessment = rules::assess(rules::lookups(), event);

        let severity = self
            .severity
            .last_match(&event.action, |rule| {
                rule.status_code.is_none() || rule.status_code == event.status_code
            })
            .map_or(assessment.severity, |rule| rule.severity);

        let extra = self.actionable.last_match(&event.action, |rule| {
            rule.min_severity.is_none_or(|min| severity >= min)
        });
        let actionable = assessment.actionable(severity, event.outcome) || extra.is_some();

        let remediation: Option<Text> = if actionable {
            Some(match extra.and_then(|rule| rule.remediation.as_ref()) {
                Some(custom) => Text::Owned(custom.clone()),
                None => Text::Borrowed(assessment.hint(event)),
            })
        } else {
            None
        };

        event.severity = severity;
        event.actionable = actionable;
        event.remediation = remediation;
        event.ocsf = Some(assessment.ocsf);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::error::Error as _;

    use keytrail_core::{Category, Ocsf, Outcome, Source, Timestamp};

    use super::*;
    use crate::tables::{
        IBM_GENERIC_HINT, IBM_HINT_RULES, SECUROSYS_ACTIONABLE, SECUROSYS_FALLBACK_HINT,
    };

    /// The hint of the IBM rule with this name.
    fn ibm_hint(name: &str) -> &'static str {
        IBM_HINT_RULES
            .iter()
            .find(|rule| rule.name == name)
            .map(|rule| rule.hint)
            .expect("a hint rule of that name")
    }

    fn securosys_hint(event_name: &str) -> &'static str {
        SECUROSYS_ACTIONABLE
            .iter()
            .find(|row| match row.event {
                tables::EventName::Exact(name) => name == event_name,
                tables::EventName::Suffix(suffix) => event_name.ends_with(suffix),
            })
            .map(|row| row.hint)
            .expect("a row for that event")
    }

    fn ibm(action: &str, outcome: Outcome, status: Option<u32>, declared: Option<&str>) -> Event {
        let source = match action.split('.').next() {
            Some("hs-crypto") => Source::IbmHpcs,
            Some("kms") => Source::IbmKeyProtect,
            _ => Source::IbmCloud,
        };
        let mut event = Event::new(Timestamp::from_millis(0), source, action.into());
        event.outcome = outcome;
        event.status_code = status;
        event.vendor_severity = declared.map(Into::into);
        event
    }

    fn securosys(name: &str, level: Option<&str>, category: Category, outcome: Outcome) -> Event {
        let mut event = Event::new(Timestamp::from_millis(0), Source::SecurosysKm, name.into());
        event.vendor_severity = level.map(Into::into);
        event.category = category;
        event.outcome = outcome;
        event
    }

    fn classify(classifier: &Classifier, mut event: Event) -> Event {
        classifier.apply(&mut event);
        event
    }

    fn config(text: &str) -> ClassifyConfig {
        toml::from_str(text).expect("valid configuration")
    }

    fn build(text: &str) -> Classifier {
        config(text).build().expect("configuration builds")
    }

    fn build_error(text: &str) -> ClassifyBuildError {
        config(text).build().expect_err("configuration is refused")
    }

    /// Action, outcome in, status code, declared severity → severity,
    /// outcome out, name of the expected hint rule (none: not actionable).
    type IbmCase = (
        &'static str,
        Outcome,
        Option<u32>,
        Option<&'static str>,
        Severity,
        Outcome,
        Option<&'static str>,
    );

    /// `class_uid`, `category_uid`, `activity_id`, `status_id`.
    type OcsfIds = (u32, u32, u32, u32);

    use Outcome::{Denied, Failure, Pending, Success, Unknown};
    use Severity::{Critical, High, Informational, Low, Medium};

    #[test]
    fn ibm_rules() {
        #[rustfmt::skip]
        let cases: &[IbmCase] = &[
            // a 401 wins over a normal action, and the failure is a denial
            ("hs-crypto.secrets.create", Failure, Some(401), None, Critical, Denied, Some("unauthenticated")),
            // the action's severity wins over a lower declared one
            ("hs-crypto.secrets.delete", Success, Some(200), Some("normal"), Critical, Success, Some("success")),
            // 400 is critical for TKE only
            ("hs-crypto.tke-cryptounit-admin.add", Failure, Some(400), None, Critical, Failure, Some("tke_bad_request")),
            ("hs-crypto.secrets.create", Failure, Some(400), None, Medium, Failure, Some("generic")),
            // delete with 409: retention / dual authorization, before the lifecycle rule
            ("hs-crypto.secrets.delete", Failure, Some(409), None, Critical, Failure, Some("key_delete_conflict")),
            // lifecycle actions on keys with registrations
            ("hs-crypto.secrets.rotate", Failure, Some(409), None, Medium, Failure, Some("lifecycle_conflict")),
            ("hs-crypto.secrets.disable", Failure, Some(409), None, Medium, Failure, Some("lifecycle_conflict")),
            ("hs-crypto.secrets.restore", Failure, Some(408), None, Medium, Failure, Some("lifecycle_timeout")),
            ("hs-crypto.secrets-event.ack", Failure, Some(408), None, Informational, Failure, Some("lifecycle_timeout")),
            ("hs-crypto.secrets.ack-delete", Failure, Some(409), None, Medium, Failure, Some("lifecycle_conflict")),
            // not a lifecycle action: a 409 is only a warning with the generic hint
            ("hs-crypto.key-rings.create", Failure, Some(409), None, Medium, Failure, Some("generic")),
            // TKE 401 and 403: the token hint, not the generic 401 one
            ("hs-crypto.tke-cryptounit-threshold.set", Failure, Some(401), None, Critical, Denied, Some("tke_token")),
            ("hs-crypto.tke-cryptounit.reset", Failure, Some(403), None, Critical, Denied, Some("tke_token")),
            ("hs-crypto.secrets.read", Failure, Some(403), None, Critical, Denied, Some("forbidden")),
            // 500
            ("hs-crypto.secrets.read", Failure, Some(500), None, Critical, Failure, Some("server_error")),
            ("hs-crypto.tke-cryptounit-master-key-register.commit", Failure, Some(500), None, Critical, Failure, Some("server_error")),
            // critical successes
            ("hs-crypto.tke-cryptounit-master-key-register.activate", Success, Some(200), None, Critical, Success, Some("success")),
            ("hs-crypto.registrations.delete", Success, None, None, Critical, Success, Some("success")),
            ("hs-crypto.mtlscert-cert.set", Success, Some(200), None, Critical, Success, Some("success")),
            ("hs-crypto.keystore.updatekey", Success, Some(200), None, Critical, Success, Some("success")),
            // warnings and normals that worked are not actionable
            ("hs-crypto.secrets.rotate", Success, Some(200), None, Medium, Success, None),
            ("hs-crypto.policies.write", Success, Some(200), None, Medium, Success, None),
            ("hs-crypto.instance-policies.write", Success, Some(200), None, Medium, Success, None),
            ("hs-crypto.secrets.read", Success, Some(200), None, Informational, Success, None),
            ("hs-crypto.no-such.thing", Success, Some(200), None, Informational, Success, None),
            // a declared severity raises the rule's, in any case; other values are ignored
            ("hs-crypto.secrets.read", Success, Some(200), Some("CRITICAL"), Critical, Success, Some("success")),
            ("hs-crypto.secrets.read", Success, Some(200), Some("Warning"), Medium, Success, None),
            ("hs-crypto.secrets.read", Success, Some(200), Some("urgent"), Informational, Success, None),
            // other status codes
            ("hs-crypto.secrets.create", Failure, Some(503), None, Critical, Failure, Some("generic")),
            ("hs-crypto.secrets.create", Failure, Some(507), None, Critical, Failure, Some("generic")),
            ("hs-crypto.secrets.create", Failure, Some(424), None, Medium, Failure, Some("generic")),
            ("hs-crypto.secrets.create", Failure, Some(502), None, Medium, Failure, Some("generic")),
            ("hs-crypto.secrets.create", Failure, Some(504), None, Medium, Failure, Some("generic")),
            ("hs-crypto.secrets.create", Failure, Some(505), None, Medium, Failure, Some("generic")),
            ("hs-crypto.secrets.read", Failure, Some(404), None, Informational, Failure, Some("generic")),
            ("hs-crypto.secrets.delete", Pending, None, None, Critical, Pending, Some("generic")),
            ("hs-crypto.secrets.read", Unknown, None, None, Informational, Unknown, Some("generic")),
            // only failures become denials
            ("hs-crypto.secrets.read", Unknown, Some(403), None, Critical, Unknown, Some("forbidden")),
            // Key Protect behaves like HPCS
            ("kms.secrets.create", Failure, Some(401), None, Critical, Denied, Some("unauthenticated")),
            ("kms.secrets.delete", Success, Some(200), Some("normal"), Critical, Success, Some("success")),
            ("kms.secrets.rotate", Failure, Some(409), None, Medium, Failure, Some("lifecycle_conflict")),
            ("kms.tke-cryptounit-admin.add", Failure, Some(400), None, Critical, Failure, Some("tke_bad_request")),
            // other IBM Cloud services: status codes count, the HPCS action table does not
            ("iam-groups.group.create", Failure, Some(403), None, Critical, Denied, Some("forbidden")),
            ("is.secrets.delete", Success, Some(200), None, Informational, Success, None),
            ("is.tke-cryptounit.reset", Failure, Some(400), None, Medium, Failure, Some("generic")),
        ];
        let classifier = Classifier::new();
        for &(action, outcome, status, declared, severity, outcome_out, hint) in cases {
            let event = classify(&classifier, ibm(action, outcome, status, declared));
            let case = format!("{action} {outcome:?} {status:?} {declared:?}");
            assert_eq!(event.severity, severity, "severity of {case}");
            assert_eq!(event.outcome, outcome_out, "outcome of {case}");
            assert_eq!(event.actionable, hint.is_some(), "actionable of {case}");
            assert_eq!(
                event.remediation.as_deref(),
                hint.map(ibm_hint),
                "remediation of {case}"
            );
        }
    }

    #[test]
    fn every_tke_action_is_critical_whatever_its_status() {
        let classifier = Classifier::new();
        for action in [
            "hs-crypto.tke-cryptounit-admin.add",
            "hs-crypto.tke-cryptounit-admin.remove",
            "hs-crypto.tke-cryptounit-current-master-key-register.clear",
            "hs-crypto.tke-cryptounit-new-master-key-register.clear",
            "hs-crypto.tke-cryptounit-master-key-register.add",
            "hs-crypto.tke-cryptounit-master-key-register.commit",
            "hs-crypto.tke-cryptounit-master-key-register.activate",
            "hs-crypto.tke-cryptounit-threshold.set",
            "hs-crypto.tke-cryptounit.reset",
            "hs-crypto.tke-some-future-resource.do",
        ] {
            for status in [None, Some(200), Some(404)] {
                let event = classify(&classifier, ibm(action, Success, status, Some("normal")));
                assert_eq!(event.severity, Critical, "{action} {status:?}");
                assert!(event.actionable, "{action}");
                assert_eq!(event.remediation.as_deref(), Some(ibm_hint("success")));
            }
        }
    }

    #[test]
    fn securosys_level_maps_to_severity() {
        let classifier = Classifier::new();
        for (level, severity) in [
            (Some("INFO"), Informational),
            (Some("WARNING"), Medium),
            (Some("WARN"), Medium),
            (Some("warn"), Medium),
            (Some("ERROR"), High),
            (Some("DEBUG"), Informational),
            (None, Informational),
        ] {
            let event = securosys("KEY_CREATED", level, Category::KeyManagement, Success);
            assert_eq!(classify(&classifier, event).severity, severity, "{level:?}");
        }
    }

    #[test]
    fn every_securosys_important_event_is_actionable_with_its_hint() {
        let classifier = Classifier::new();
        for row in SECUROSYS_ACTIONABLE {
            let name = match row.event {
                tables::EventName::Exact(name) => name.to_owned(),
                tables::EventName::Suffix(suffix) => format!("KEY_DELETE{suffix}"),
            };
            let category = row.category.unwrap_or(Category::KeyManagement);
            let event = classify(
                &classifier,
                securosys(&name, Some(row.level), category, Success),
            );
            assert!(event.actionable, "{name}");
            assert_eq!(event.remediation.as_deref(), Some(row.hint), "{name}");
            assert!(
                matches!(event.remediation, Some(Cow::Borrowed(_))),
                "built-in hints are borrowed"
            );
        }
    }

    #[test]
    fn securosys_failed_operations_match_the_pattern_row() {
        let classifier = Classifier::new();
        let failed = securosys_hint("ANY_FAILED");
        #[rustfmt::skip]
        let cases = [
            ("KEY_DELETE_FAILED", Category::KeyManagement, Some(failed)),
            ("USER_UPDATE_FAILED", Category::UserManagement, Some(failed)),
            ("CERTIFICATE_IMPORT_FAILED", Category::CertificateManagement, Some(failed)),
            // the specific row wins over the pattern
            ("MTLS_FAILED", Category::System, Some(securosys_hint("MTLS_FAILED"))),
            // not important events
            ("DATA_OBJECT_UPDATED", Category::DataObject, None),
            ("KEY_CREATED", Category::KeyManagement, None),
            ("LOGOUT", Category::Authentication, None),
            ("FAILED_SOMETHING", Category::Other, None),
        ];
        for (name, category, hint) in cases {
            let event = classify(
                &classifier,
                securosys(name, Some("ERROR"), category, Failure),
            );
            assert_eq!(event.actionable, hint.is_some(), "{name}");
            assert_eq!(event.remediation.as_deref(), hint, "{name}");
            assert_ne!(failed, securosys_hint("MTLS_FAILED"));
        }
    }

    #[test]
    fn securosys_outcome_alone_does_not_make_an_event_actionable() {
        let classifier = Classifier::new();
        let event = classify(
            &classifier,
            securosys("KEY_READ", Some("WARNING"), Category::KeyManagement, Denied),
        );
        assert!(!event.actionable);
        assert_eq!(event.remediation, None);
        assert_eq!(event.outcome, Denied);
    }

    #[test]
    fn ocsf_ids_follow_category_verb_and_outcome() {
        let classifier = Classifier::new();
        #[rustfmt::skip]
        let cases: &[(Event, OcsfIds)] = &[
            // IBM families
            (with_category(ibm("hs-crypto.secrets.create", Success, Some(201), None), Category::KeyManagement), (3004, 3, 1, 1)),
            (with_category(ibm("hs-crypto.secrets.list", Success, Some(200), None), Category::KeyManagement), (3004, 3, 2, 1)),
            (with_category(ibm("hs-crypto.secrets-metadata.read", Success, Some(200), None), Category::KeyManagement), (3004, 3, 2, 1)),
            (with_category(ibm("hs-crypto.secrets.rotate", Success, Some(200), None), Category::KeyManagement), (3004, 3, 3, 1)),
            (with_category(ibm("hs-crypto.secrets.enable", Success, Some(200), None), Category::KeyManagement), (3004, 3, 3, 1)),
            (with_category(ibm("hs-crypto.secrets.delete", Failure, Some(409), None), Category::KeyManagement), (3004, 3, 4, 2)),
            (with_category(ibm("hs-crypto.secrets.delete", Failure, Some(401), None), Category::KeyManagement), (3004, 3, 4, 2)),
            (with_category(ibm("hs-crypto.secrets.delete", Pending, None, None), Category::KeyManagement), (3004, 3, 4, 0)),
            (with_category(ibm("hs-crypto.secrets.default", Unknown, None, None), Category::KeyManagement), (3004, 3, 99, 0)),
            (with_category(ibm("hs-crypto.secrets.wrap", Success, Some(200), None), Category::CryptoOperation), (6003, 6, 99, 1)),
            (with_category(ibm("hs-crypto.policies.write", Success, Some(200), None), Category::PolicyManagement), (3004, 3, 3, 1)),
            (with_category(ibm("hs-crypto.tke-cryptounit-admin.add", Success, Some(200), None), Category::HsmAdministration), (3004, 3, 1, 1)),
            (with_category(ibm("hs-crypto.tke-cryptounit-admin.remove", Success, Some(200), None), Category::HsmAdministration), (3004, 3, 4, 1)),
            (with_category(ibm("hs-crypto.mtlscert-cert.set", Success, Some(200), None), Category::CertificateManagement), (3004, 3, 3, 1)),
            (with_category(ibm("hs-crypto.kmip-key.destroy", Success, Some(200), None), Category::KmipManagement), (3004, 3, 4, 1)),
            (with_category(ibm("hs-crypto.keystore.createkeystore", Success, Some(200), None), Category::KeystoreManagement), (3004, 3, 1, 1)),
            (with_category(ibm("hs-crypto.keystore.listkeysbyids", Success, Some(200), None), Category::KeystoreManagement), (3004, 3, 2, 1)),
            (with_category(ibm("iam-groups.group.create", Failure, Some(403), None), Category::Other), (6003, 6, 1, 2)),
            (with_category(ibm("hs-crypto", Unknown, None, None), Category::Other), (6003, 6, 0, 0)),
            // Securosys families
            (securosys("LOGIN_SUCCESS", Some("INFO"), Category::Authentication, Success), (3002, 3, 1, 1)),
            (securosys("LOGIN_FAILURE", Some("WARNING"), Category::Authentication, Denied), (3002, 3, 1, 2)),
            (securosys("LOGOUT", Some("INFO"), Category::Authentication, Success), (3002, 3, 2, 1)),
            (securosys("USER_CREATED", Some("INFO"), Category::UserManagement, Success), (3001, 3, 1, 1)),
            (securosys("USER_UPDATED", Some("INFO"), Category::UserManagement, Success), (3001, 3, 99, 1)),
            (securosys("USER_DELETED", Some("INFO"), Category::UserManagement, Success), (3001, 3, 6, 1)),
            (securosys("APPROVER_DISABLED", Some("INFO"), Category::ApproverManagement, Success), (3001, 3, 5, 1)),
            (securosys("KEY_DELETE_FAILED", Some("ERROR"), Category::KeyManagement, Failure), (3004, 3, 4, 2)),
            (securosys("CERTIFICATE_CREATED", Some("INFO"), Category::CertificateManagement, Success), (3004, 3, 1, 1)),
            (securosys("DATA_OBJECT_UPDATED", Some("INFO"), Category::DataObject, Success), (3004, 3, 3, 1)),
            (securosys("DATA_OBJECT_CORRUPTED", Some("ERROR"), Category::DataObject, Failure), (3004, 3, 99, 2)),
            (securosys("PROFILE_CREATED", Some("INFO"), Category::ProfileManagement, Success), (3004, 3, 1, 1)),
            (securosys("KMIP_USER_CREATED", Some("INFO"), Category::KmipManagement, Success), (3004, 3, 1, 1)),
            (securosys("DATA_SIGNED", Some("INFO"), Category::CryptoOperation, Success), (6003, 6, 99, 1)),
            // system: errors (by level or by outcome) are application errors
            (securosys("SSL_ERROR", Some("ERROR"), Category::System, Failure), (6008, 6, 1, 2)),
            (securosys("REQUEST_TIMEOUT", Some("ERROR"), Category::System, Unknown), (6008, 6, 1, 0)),
            (securosys("MTLS_FAILED", Some("INFO"), Category::System, Failure), (6008, 6, 1, 2)),
            (securosys("SERVICE_STARTED", Some("INFO"), Category::System, Success), (6002, 6, 3, 1)),
            (securosys("CONFIG_RELOAD", Some("INFO"), Category::System, Success), (6002, 6, 99, 1)),
            (securosys("", None, Category::Other, Unknown), (6003, 6, 0, 0)),
        ];
        for (event, (class_uid, category_uid, activity_id, status_id)) in cases {
            let action = event.action.clone();
            let event = classify(&classifier, event.clone());
            assert_eq!(
                event.ocsf,
                Some(Ocsf {
                    class_uid: *class_uid,
                    category_uid: *category_uid,
                    activity_id: *activity_id,
                    status_id: *status_id
                }),
                "{action}"
            );
        }
    }

    fn with_category(mut event: Event, category: Category) -> Event {
        event.category = category;
        event
    }

    #[test]
    fn classification_is_idempotent() {
        let classifier = build(
            r#"
            [[severity]]
            pattern = "kms.*"
            severity = "high"
            [[actionable]]
            action = "DATA_OBJECT_UPDATED"
            remediation = "Check who edits data objects."
            "#,
        );
        let events = [
            ibm("hs-crypto.secrets.create", Failure, Some(401), None),
            ibm(
                "hs-crypto.secrets.delete",
                Success,
                Some(200),
                Some("normal"),
            ),
            ibm("kms.secrets.read", Success, Some(200), None),
            ibm("iam-groups.group.create", Failure, Some(403), None),
            securosys(
                "DATA_OBJECT_UPDATED",
                Some("INFO"),
                Category::DataObject,
                Success,
            ),
            securosys("MTLS_FAILED", Some("ERROR"), Category::System, Failure),
        ];
        for event in events {
            let once = classify(&classifier, event);
            let twice = classify(&classifier, once.clone());
            assert_eq!(once, twice, "{}", once.action);
        }
    }

    #[test]
    fn classification_overwrites_stale_fields() {
        let classifier = Classifier::new();
        let mut event = ibm("hs-crypto.secrets.read", Success, Some(200), None);
        event.severity = Critical;
        event.actionable = true;
        event.remediation = Some(Cow::Borrowed("stale"));
        let event = classify(&classifier, event);
        assert_eq!(event.severity, Informational);
        assert!(!event.actionable);
        assert_eq!(event.remediation, None);
    }

    #[test]
    fn severity_overrides() {
        let classifier = build(
            r#"
            [[severity]]
            action = "hs-crypto.secrets.read"
            severity = "high"
            status_code = 404

            [[severity]]
            pattern = "kms.secrets.*"
            severity = "low"

            [[severity]]
            action = "hs-crypto.secrets.list"
            severity = "critical"

            [[severity]]
            action = "hs-crypto.secrets.delete"
            severity = "Low"

            [[severity]]
            pattern = "*_FAILED"
            severity = "medium"

            [[severity]]
            action = "USER_UPDATE_FAILED"
            severity = "critical"
            "#,
        );
        #[rustfmt::skip]
        let cases: &[(Event, Severity, bool, Option<&str>)] = &[
            // status_code filter: only the 404 is raised
            (ibm("hs-crypto.secrets.read", Failure, Some(404), None), High, true, Some(ibm_hint("generic"))),
            (ibm("hs-crypto.secrets.read", Success, Some(200), None), Informational, false, None),
            // pattern: every kms.secrets action, lowered or raised, but not hs-crypto
            (ibm("kms.secrets.delete", Success, Some(200), None), Low, false, None),
            (ibm("kms.secrets.read", Success, Some(200), None), Low, false, None),
            (ibm("kms.key-rings.list", Success, Some(200), None), Informational, false, None),
            // raised to critical: a critical success is actionable
            (ibm("hs-crypto.secrets.list", Success, Some(200), None), Critical, true, Some(ibm_hint("success"))),
            // lowered: no longer actionable when it worked, still actionable when it failed
            (ibm("hs-crypto.secrets.delete", Success, Some(200), None), Low, false, None),
            (ibm("hs-crypto.secrets.delete", Failure, Some(409), None), Low, true, Some(ibm_hint("key_delete_conflict"))),
            // the last matching entry wins, whether exact or pattern
            (securosys("KEY_DELETE_FAILED", Some("ERROR"), Category::KeyManagement, Failure), Medium, true, Some(securosys_hint("KEY_DELETE_FAILED"))),
            (securosys("USER_UPDATE_FAILED", Some("ERROR"), Category::UserManagement, Failure), Critical, true, Some(securosys_hint("USER_UPDATE_FAILED"))),
        ];
        for (event, severity, actionable, hint) in cases {
            let action = event.action.clone();
            let event = classify(&classifier, event.clone());
            assert_eq!(event.severity, *severity, "severity of {action}");
            assert_eq!(event.actionable, *actionable, "actionable of {action}");
            assert_eq!(
                event.remediation.as_deref(),
                *hint,
                "remediation of {action}"
            );
        }
    }

    #[test]
    fn last_matching_severity_override_wins_in_configuration_order() {
        let exact_then_pattern = build(
            r#"
            [[severity]]
            action = "kms.secrets.read"
            severity = "high"
            [[severity]]
            pattern = "kms.*"
            severity = "low"
            "#,
        );
        let pattern_then_exact = build(
            r#"
            [[severity]]
            pattern = "kms.*"
            severity = "low"
            [[severity]]
            action = "kms.secrets.read"
            severity = "high"
            "#,
        );
        let event = ibm("kms.secrets.read", Success, Some(200), None);
        assert_eq!(classify(&exact_then_pattern, event.clone()).severity, Low);
        assert_eq!(classify(&pattern_then_exact, event).severity, High);
    }

    #[test]
    fn actionable_overrides() {
        let classifier = build(
            r#"
            [[actionable]]
            action = "DATA_OBJECT_UPDATED"
            remediation = "Check who edits data objects."

            [[actionable]]
            pattern = "hs-crypto.ep11.*"
            min_severity = "medium"

            [[actionable]]
            action = "KEY_EXPORTED"

            [[actionable]]
            action = "hs-crypto.secrets.read"

            [[actionable]]
            action = "hs-crypto.secrets.delete"
            remediation = "Deletions go through change control: find the ticket."
            "#,
        );
        #[rustfmt::skip]
        let cases: &[(Event, bool, Option<&str>)] = &[
            // custom hint
            (securosys("DATA_OBJECT_UPDATED", Some("INFO"), Category::DataObject, Success), true, Some("Check who edits data objects.")),
            // min_severity: below it nothing changes, at it the event is actionable with the built-in hint
            (ibm("hs-crypto.ep11.use", Success, Some(200), None), false, None),
            (ibm("hs-crypto.ep11.use", Success, Some(200), Some("warning")), true, Some(ibm_hint("success"))),
            // no custom hint: the built-in one (Securosys fallback, IBM rules)
            (securosys("KEY_EXPORTED", Some("INFO"), Category::KeyManagement, Success), true, Some(SECUROSYS_FALLBACK_HINT)),
            (ibm("hs-crypto.secrets.read", Success, Some(200), None), true, Some(ibm_hint("success"))),
            (ibm("hs-crypto.secrets.read", Failure, Some(404), None), true, Some(IBM_GENERIC_HINT)),
            // a custom hint replaces the built-in one of an event that is actionable anyway
            (ibm("hs-crypto.secrets.delete", Success, Some(200), None), true, Some("Deletions go through change control: find the ticket.")),
            // events the overrides do not name keep the built-in verdict
            (securosys("KEY_CREATED", Some("INFO"), Category::KeyManagement, Success), false, None),
        ];
        for (event, actionable, hint) in cases {
            let action = event.action.clone();
            let event = classify(&classifier, event.clone());
            assert_eq!(event.actionable, *actionable, "actionable of {action}");
            assert_eq!(
                event.remediation.as_deref(),
                *hint,
                "remediation of {action}"
            );
        }
        let custom = classify(
            &classifier,
            securosys(
                "DATA_OBJECT_UPDATED",
                Some("INFO"),
                Category::DataObject,
                Success,
            ),
        );
        assert!(matches!(custom.remediation, Some(Cow::Owned(_))));
    }

    #[test]
    fn lowered_severity_and_actionable_override_combine() {
        // A critical success lowered below an actionable entry's threshold
        // is not actionable; at the threshold it is.
        let classifier = build(
            r#"
            [[severity]]
            action = "hs-crypto.secrets.delete"
            severity = "high"
            [[actionable]]
            action = "hs-crypto.secrets.delete"
            min_severity = "critical"
            "#,
        );
        let event = classify(
            &classifier,
            ibm("hs-crypto.secrets.delete", Success, Some(200), None),
        );
        assert_eq!(event.severity, High);
        assert!(!event.actionable);
        assert_eq!(event.remediation, None);
    }

    #[test]
    fn texts_are_plain_unless_an_override_hint_needs_escaping() {
        assert!(Classifier::new().adds_plain_texts());
        let hint = |text: &str| {
            build(&format!(
                "[[actionable]]\naction = \"a\"\n[[actionable]]\naction = \"b\"\nremediation = {}",
                toml::Value::String(text.to_owned())
            ))
            .adds_plain_texts()
        };
        assert!(hint("Page the crypto team (24/7) - it's urgent."));
        for text in ["Say \"stop\".", "C:\\keys", "line\nbreak", "tab\there"] {
            assert!(!hint(text), "{text:?}");
        }
    }

    #[test]
    fn invalid_configurations_are_refused_with_clear_messages() {
        #[rustfmt::skip]
        let cases: &[(&str, &[&str])] = &[
            (
                "[[severity]]\naction = \"hs-crypto.secrets.read\"\nseverity = \"urgent\"",
                &["severity[0]", "unknown severity `urgent`", "informational, low, medium, high, critical"],
            ),
            (
                "[[severity]]\naction = \"a\"\nseverity = \"low\"\n[[severity]]\naction = \"b\"\nseverity = \"warning\"",
                &["severity[1]", "`warning`"],
            ),
            (
                "[[actionable]]\naction = \"a\"\nmin_severity = \"sev1\"",
                &["actionable[0]", "unknown min_severity `sev1`", "informational, low, medium, high, critical"],
            ),
            (
                "[[severity]]\npattern = \"kms.[secrets\"\nseverity = \"low\"",
                &["severity[0]", "invalid glob pattern `kms.[secrets`"],
            ),
            (
                "[[severity]]\naction = \"a\"\npattern = \"a*\"\nseverity = \"low\"",
                &["severity[0]", "either `action` or `pattern`, not both"],
            ),
            (
                "[[actionable]]\nremediation = \"x\"",
                &["actionable[0]", "`action`", "`pattern`"],
            ),
            (
                "[[actionable]]\naction = \"\"",
                &["actionable[0]", "non-empty"],
            ),
        ];
        for (text, fragments) in cases {
            let message = build_error(text).to_string();
            for fragment in *fragments {
                assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            }
            assert!(!message.ends_with('.'), "{message:?}");
            assert_eq!(
                message,
                message.to_lowercase().replace("ssl", "SSL"),
                "lowercase: {message:?}"
            );
        }
    }

    #[test]
    fn glob_errors_keep_their_source() {
        let error = build_error("[[actionable]]\npattern = \"{unclosed\"");
        assert!(matches!(
            error,
            ClassifyBuildError::InvalidPattern { index: 0, .. }
        ));
        assert!(error.source().is_some());
    }

    #[test]
    fn configuration_rejects_unknown_fields() {
        for text in [
            "severities = []",
            "[[severity]]\naction = \"a\"\nseverity = \"low\"\nstatus = 404",
            "[[actionable]]\naction = \"a\"\nhint = \"x\"",
        ] {
            assert!(toml::from_str::<ClassifyConfig>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn default_configuration_is_the_built_in_rules() {
        let config: ClassifyConfig = toml::from_str("").expect("empty configuration");
        assert_eq!(config, ClassifyConfig::default());
        let classifier = config.build().expect("builds");
        assert!(!classifier.has_overrides());
        assert!(build("[[severity]]\npattern = \"*\"\nseverity = \"low\"").has_overrides());
        let event = ibm("hs-crypto.secrets.create", Failure, Some(401), None);
        assert_eq!(
            classify(&classifier, event.clone()),
            classify(&Classifier::new(), event)
        );
    }

    #[test]
    fn valid_severity_list_matches_the_scale() {
        let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(VALID_SEVERITIES, names.join(", "));
        assert_eq!(OCSF_VERSION, "1.4.0");
    }
}
