//! Evaluation of the built-in vendor rules.
//!
//! [`lookups`] turns the `const` tables of [`crate::tables`] into hash maps
//! and index arrays once per process; [`assess`] then reads one event
//! against them and returns what the vendor rules say about it (severity,
//! whether the vendor calls it actionable, which hint applies, its OCSF
//! ids). [`crate::Classifier`] layers the operator's overrides on top and
//! writes the result into the event.
//!
//! Guarantees: every function here is pure (the event is only read), does
//! no I/O and allocates nothing; per event there is at most one hash lookup
//! per table (FxHash: the keys are compiled in), plus a walk over the ten ordered hint rules for actionable
//! IBM events and over the few words of a Securosys event name.

use std::sync::LazyLock;

use keytrail_core::{Category, Event, Ocsf, Outcome, Severity};

use crate::tables::{
    ActionScope, EventName, EventScope, IBM_ACTION_SEVERITY, IBM_DECLARED_SEVERITY,
    IBM_DENIED_STATUS, IBM_GENERIC_HINT, IBM_HINT_RULES, IBM_KEY_DELETE_ACTIONS,
    IBM_KNOWN_PREFIXES, IBM_LIFECYCLE_ACTIONS, IBM_SEVERITY_BY_RESOURCE_PREFIX,
    IBM_STATUS_SEVERITY, IBM_TKE_RESOURCE_PREFIX, IbmHintRule, IbmLevel, OCSF_API_ACTIVITY,
    OCSF_CLASS_BY_CATEGORY, OCSF_STATUS_BY_OUTCOME, OCSF_SYSTEM_ERROR_CLASS, OcsfClass,
    OutcomeScope, SECUROSYS_ACTIONABLE, SECUROSYS_ERROR_LEVEL, SECUROSYS_FALLBACK_HINT,
    SECUROSYS_LEVEL_SEVERITY, SecurosysRow, VERBS, Verb,
};

/// The catalog maps: FxHash (rustc's hasher). The tables are built from
/// compiled-in rows and operator configuration, never from events, so
/// SipHash's defence against chosen keys buys nothing here, while hashing
/// each event's action name with it is a measurable share of this stage.
type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// What the IBM tables know about one action (prefix stripped).
#[derive(Debug, Clone, Copy, Default)]
struct IbmActionFacts {
    /// Severity of the action itself.
    level: Option<IbmLevel>,
    /// A lifecycle action on a key (hint rules).
    lifecycle: bool,
    /// A key deletion (hint rules).
    key_delete: bool,
}

/// Severity of one status code, for TKE and for other IBM events.
#[derive(Debug, Clone, Copy)]
struct StatusLevels {
    tke: IbmLevel,
    other: IbmLevel,
}

/// The built-in tables, indexed.
#[derive(Debug)]
pub(crate) struct Lookups {
    ibm_actions: FastMap<&'static str, IbmActionFacts>,
    ibm_status: FastMap<u32, StatusLevels>,
    securosys_exact: FastMap<&'static str, &'static SecurosysRow>,
    securosys_suffix: Vec<&'static SecurosysRow>,
    verbs: FastMap<Box<str>, Verb>,
    ocsf_class: [Option<&'static OcsfClass>; Category::ALL.len()],
    ocsf_status: [u32; Outcome::ALL.len()],
}

static LOOKUPS: LazyLock<Lookups> = LazyLock::new(Lookups::build);

/// The built-in tables, indexed on first use and shared by every
/// classifier of the process.
pub(crate) fn lookups() -> &'static Lookups {
    &LOOKUPS
}

impl Lookups {
    fn build() -> Lookups {
        let mut ibm_actions: FastMap<&'static str, IbmActionFacts> = FastMap::default();
        for &(action, level) in IBM_ACTION_SEVERITY {
            ibm_actions.entry(action).or_default().level = Some(level);
        }
        for &action in IBM_LIFECYCLE_ACTIONS {
            ibm_actions.entry(action).or_default().lifecycle = true;
        }
        for &action in IBM_KEY_DELETE_ACTIONS {
            ibm_actions.entry(action).or_default().key_delete = true;
        }

        let mut ibm_status: FastMap<u32, StatusLevels> = FastMap::default();
        for row in IBM_STATUS_SEVERITY {
            let levels = ibm_status.entry(row.code).or_insert(StatusLevels {
                tke: IbmLevel::Normal,
                other: IbmLevel::Normal,
            });
            if matches!(row.scope, EventScope::Any | EventScope::Tke) {
                levels.tke = levels.tke.max(row.level);
            }
            if matches!(row.scope, EventScope::Any | EventScope::NotTke) {
                levels.other = levels.other.max(row.level);
            }
        }

        let mut securosys_exact = FastMap::default();
        let mut securosys_suffix = Vec::new();
        for row in SECUROSYS_ACTIONABLE {
            match row.event {
                EventName::Exact(name) => {
                    securosys_exact.insert(name, row);
                }
                EventName::Suffix(_) => securosys_suffix.push(row),
            }
        }

        let mut verbs = FastMap::with_capacity_and_hasher(VERBS.len() * 2, Default::default());
        for &(word, verb) in VERBS {
            verbs.insert(Box::from(word), verb);
            verbs.insert(word.to_ascii_uppercase().into_boxed_str(), verb);
        }

        let mut ocsf_class = [None; Category::ALL.len()];
        for (category, class) in OCSF_CLASS_BY_CATEGORY {
            ocsf_class[*category as usize] = Some(class);
        }
        let mut ocsf_status = [0; Outcome::ALL.len()];
        for &(outcome, status) in OCSF_STATUS_BY_OUTCOME {
            ocsf_status[outcome as usize] = status;
        }

        Lookups {
            ibm_actions,
            ibm_status,
            securosys_exact,
            securosys_suffix,
            verbs,
            ocsf_class,
            ocsf_status,
        }
    }

    fn securosys_row(&self, event_name: &str) -> Option<&'static SecurosysRow> {
        if let Some(row) = self.securosys_exact.get(event_name) {
            return Some(row);
        }
        self.securosys_suffix
            .iter()
            .copied()
            .find(|row| match row.event {
                EventName::Suffix(suffix) => event_name.ends_with(suffix),
                EventName::Exact(name) => event_name == name,
            })
    }
}

/// The verb of an action, as far as the verb table knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VerbMatch {
    /// A verb of the table.
    Known(Verb),
    /// A verb-shaped part that the table does not know.
    Unrecognized,
    /// No verb at all (an empty action).
    Absent,
}

/// The parts of an IBM action name.
#[derive(Debug, Clone, Copy)]
struct IbmAction<'a> {
    /// The prefix is `hs-crypto` or `kms`: the IBM tables apply.
    known_service: bool,
    /// The action without its prefix (`secrets.delete`).
    name: &'a str,
    /// The last segment (`delete`).
    verb: &'a str,
}

impl<'a> IbmAction<'a> {
    fn parse(action: &'a str) -> IbmAction<'a> {
        // Byte searches: a `char` pattern costs more than these short
        // names take to scan.
        let (prefix, name) = match action.bytes().position(|b| b == b'.') {
            Some(dot) => (&action[..dot], &action[dot + 1..]),
            None => (action, ""),
        };
        let verb = match name.bytes().rposition(|b| b == b'.') {
            Some(dot) => &name[dot + 1..],
            None => name,
        };
        IbmAction {
            known_service: IBM_KNOWN_PREFIXES.contains(&prefix),
            name,
            verb,
        }
    }

    fn resource_level(&self) -> Option<IbmLevel> {
        if !self.known_service {
            return None;
        }
        IBM_SEVERITY_BY_RESOURCE_PREFIX
            .iter()
            .find(|(prefix, _)| self.name.starts_with(prefix))
            .map(|&(_, level)| level)
    }

    fn is_tke(&self) -> bool {
        self.known_service && self.name.starts_with(IBM_TKE_RESOURCE_PREFIX)
    }
}

/// The vendor-specific facts an assessment keeps for the actionable and
/// hint decisions, which are taken after the operator's overrides.
#[derive(Debug, Clone, Copy)]
enum VendorFacts {
    Ibm {
        tke: bool,
        lifecycle: bool,
        key_delete: bool,
    },
    Securosys {
        row: Option<&'static SecurosysRow>,
    },
}

/// What the built-in rules say about one event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Assessment {
    /// The severity from the vendor rules, before overrides.
    pub(crate) severity: Severity,
    /// The OCSF ids.
    pub(crate) ocsf: Ocsf,
    facts: VendorFacts,
}

/// Reports `failure` as `denied` for IBM events refused with 401 or 403.
/// Idempotent; other events are left alone.
pub(crate) fn refine_outcome(event: &mut Event) {
    if event.source.is_ibm()
        && event.outcome == Outcome::Failure
        && event
            .status_code
            .is_some_and(|code| IBM_DENIED_STATUS.contains(&code))
    {
        event.outcome = Outcome::Denied;
    }
}

/// Reads one event against the built-in tables. Call after
/// [`refine_outcome`].
pub(crate) fn assess(lookups: &Lookups, event: &Event) -> Assessment {
    if event.source.is_ibm() {
        assess_ibm(lookups, event)
    } else {
        assess_securosys(lookups, event)
    }
}

fn assess_ibm(lookups: &Lookups, event: &Event) -> Assessment {
    let action = IbmAction::parse(&event.action);
    let tke = action.is_tke();
    let facts = if action.known_service {
        lookups
            .ibm_actions
            .get(action.name)
            .copied()
            .unwrap_or_default()
    } else {
        IbmActionFacts::default()
    };

    let action_level = facts
        .level
        .into_iter()
        .chain(action.resource_level())
        .max()
        .unwrap_or(IbmLevel::Normal);
    let status_level = event
        .status_code
        .and_then(|code| lookups.ibm_status.get(&code))
        .map_or(IbmLevel::Normal, |levels| {
            if tke { levels.tke } else { levels.other }
        });
    let declared_level = event
        .vendor_severity
        .as_deref()
        .map(keytrail_core::trim)
        .and_then(|declared| {
            IBM_DECLARED_SEVERITY
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(declared))
                .map(|&(_, level)| level)
        })
        .unwrap_or(IbmLevel::Normal);
    let severity = action_level
        .max(status_level)
        .max(declared_level)
        .severity();

    let verb = lookup_verb(lookups, action.verb);
    Assessment {
        severity,
        ocsf: ocsf(lookups, event, verb, false),
        facts: VendorFacts::Ibm {
            tke,
            lifecycle: facts.lifecycle,
            key_delete: facts.key_delete,
        },
    }
}

fn assess_securosys(lookups: &Lookups, event: &Event) -> Assessment {
    let level = event.vendor_severity.as_deref().map(keytrail_core::trim);
    let severity = level
        .and_then(|level| {
            SECUROSYS_LEVEL_SEVERITY
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(level))
                .map(|&(_, severity)| severity)
        })
        .unwrap_or(Severity::Informational);
    let error_level = level.is_some_and(|level| level.eq_ignore_ascii_case(SECUROSYS_ERROR_LEVEL));

    let verb = event
        .action
        .split('_')
        .find_map(|word| lookups.verbs.get(word).copied())
        .map_or(
            if event.action.is_empty() {
                VerbMatch::Absent
            } else {
                VerbMatch::Unrecognized
            },
            VerbMatch::Known,
        );

    Assessment {
        severity,
        ocsf: ocsf(lookups, event, verb, error_level),
        facts: VendorFacts::Securosys {
            row: lookups
                .securosys_row(&event.action)
                .filter(|row| level.is_none_or(|level| same_level(row.level, level))),
        },
    }
}

/// Securosys levels compare without case, `WARN` reading as `WARNING`.
fn same_level(documented: &str, sent: &str) -> bool {
    fn canonical(level: &str) -> &str {
        if level.eq_ignore_ascii_case("WARN") {
            "WARNING"
        } else {
            level
        }
    }
    canonical(documented).eq_ignore_ascii_case(canonical(sent))
}

fn lookup_verb(lookups: &Lookups, verb: &str) -> VerbMatch {
    if verb.is_empty() {
        return VerbMatch::Absent;
    }
    lookups
        .verbs
        .get(verb)
        .copied()
        .map_or(VerbMatch::Unrecognized, VerbMatch::Known)
}

fn ocsf(lookups: &Lookups, event: &Event, verb: VerbMatch, error_level: bool) -> Ocsf {
    let reports_error = error_level || matches!(event.outcome, Outcome::Failure | Outcome::Denied);
    let class = if event.category == Category::System && reports_error {
        &OCSF_SYSTEM_ERROR_CLASS
    } else {
        lookups.ocsf_class[event.category as usize].unwrap_or(&OCSF_API_ACTIVITY)
    };
    let activity_id = match verb {
        VerbMatch::Known(verb) => class
            .activities
            .iter()
            .find(|(v, _)| *v == verb)
            .map_or(class.other_activity, |&(_, id)| id),
        VerbMatch::Unrecognized => class.other_activity,
        VerbMatch::Absent => class.no_verb_activity,
    };
    Ocsf {
        class_uid: class.class_uid,
        category_uid: class.category_uid,
        activity_id,
        status_id: lookups.ocsf_status[event.outcome as usize],
    }
}

impl Assessment {
    /// Whether the vendor rules call the event actionable at the given
    /// (final) severity. IBM: not a success, or critical. Securosys: one of
    /// the vendor's important events.
    pub(crate) fn actionable(&self, severity: Severity, outcome: Outcome) -> bool {
        match self.facts {
            VendorFacts::Ibm { .. } => {
                outcome != Outcome::Success || severity == Severity::Critical
            }
            VendorFacts::Securosys { row } => row.is_some(),
        }
    }

    /// The built-in hint for the event, used when it is actionable and no
    /// override supplies one. Always some text: the last IBM rule matches
    /// everything, and Securosys events outside the table get a fallback.
    pub(crate) fn hint(&self, event: &Event) -> &'static str {
        match self.facts {
            VendorFacts::Ibm {
                tke,
                lifecycle,
                key_delete,
            } => IBM_HINT_RULES
                .iter()
                .find(|rule| ibm_rule_matches(rule, event, tke, lifecycle, key_delete))
                .map_or(IBM_GENERIC_HINT, |rule| rule.hint),
            VendorFacts::Securosys { row } => row.map_or(SECUROSYS_FALLBACK_HINT, |row| row.hint),
        }
    }
}

fn ibm_rule_matches(
    rule: &IbmHintRule,
    event: &Event,
    tke: bool,
    lifecycle: bool,
    key_delete: bool,
) -> bool {
    let action = match rule.actions {
        ActionScope::Any => true,
        ActionScope::KeyDelete => key_delete,
        ActionScope::Lifecycle => lifecycle,
        ActionScope::Tke => tke,
    };
    let status = rule.status_codes.is_empty()
        || event
            .status_code
            .is_some_and(|code| rule.status_codes.contains(&code));
    let outcome = match rule.outcome {
        OutcomeScope::Any => true,
        OutcomeScope::Success => event.outcome == Outcome::Success,
    };
    action && status && outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibm_actions_split_into_prefix_name_and_verb() {
        #[rustfmt::skip]
        let cases = [
            ("hs-crypto.secrets.delete", true, "secrets.delete", "delete"),
            ("kms.secrets-event.ack", true, "secrets-event.ack", "ack"),
            ("kms.secrets.ack-delete", true, "secrets.ack-delete", "ack-delete"),
            ("iam-groups.group.create", false, "group.create", "create"),
            ("hs-crypto", true, "", ""),
            ("", false, "", ""),
            ("kms.", true, "", ""),
            ("kms.keys", true, "keys", "keys"),
            ("a..b", false, ".b", "b"),
            ("é.ü.ß", false, "ü.ß", "ß"),
        ];
        for (action, known, name, verb) in cases {
            let parsed = IbmAction::parse(action);
            assert_eq!(parsed.known_service, known, "{action}");
            assert_eq!(parsed.name, name, "{action}");
            assert_eq!(parsed.verb, verb, "{action}");
        }
        assert!(IbmAction::parse("hs-crypto.tke-cryptounit.reset").is_tke());
        assert!(!IbmAction::parse("other.tke-cryptounit.reset").is_tke());
    }

    #[test]
    fn verbs_are_found_in_both_cases() {
        let lookups = lookups();
        assert_eq!(
            lookup_verb(lookups, "create"),
            VerbMatch::Known(Verb::Create)
        );
        assert_eq!(
            lookup_verb(lookups, "CREATED"),
            VerbMatch::Known(Verb::Create)
        );
        assert_eq!(lookup_verb(lookups, "wrap"), VerbMatch::Unrecognized);
        assert_eq!(lookup_verb(lookups, ""), VerbMatch::Absent);
    }

    #[test]
    fn status_400_depends_on_tke() {
        let levels = lookups().ibm_status.get(&400).expect("400 is listed");
        assert_eq!(levels.tke, IbmLevel::Critical);
        assert_eq!(levels.other, IbmLevel::Warning);
        let levels = lookups().ibm_status.get(&401).expect("401 is listed");
        assert_eq!(
            (levels.tke, levels.other),
            (IbmLevel::Critical, IbmLevel::Critical)
        );
    }

    #[test]
    fn securosys_exact_rows_win_over_the_suffix_row() {
        let lookups = lookups();
        let mtls = lookups.securosys_row("MTLS_FAILED").expect("listed");
        assert_eq!(mtls.event, EventName::Exact("MTLS_FAILED"));
        let failed = lookups.securosys_row("KEY_DELETE_FAILED").expect("pattern");
        assert_eq!(failed.event, EventName::Suffix("_FAILED"));
        assert!(lookups.securosys_row("KEY_DELETED").is_none());
    }
}
