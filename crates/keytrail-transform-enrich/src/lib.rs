//! The enrich stage of keytrail: vendor knowledge as data.
//!
//! ```text
//! normalize ──► enrich (this crate) ──► classify
//! ```
//!
//! The normalizer hands over an [`Event`] holding what the vendor sent: the
//! action as received, raw CRNs, a raw TKE location, integer key states.
//! The [`Enricher`] adds what the vendor documents say about it:
//!
//! - **catalog** ([`catalog`]): IBM historical action names are translated
//!   to current ones (the received name is kept in `legacy_action`); known
//!   actions get their one-line `description`; IBM actions get their
//!   `category` from the resource table; Securosys events without a
//!   category of their own get the catalog's;
//! - **fields**: `region`, `account_id` and `instance_id` from the CRNs and
//!   the TKE location, the TKE location's parts, key state names, the
//!   KMIP-for-VMware certificate fingerprint;
//! - **lookups**: operator labels keyed by an event field, from CSV or TOML
//!   files.
//!
//! [`EnrichConfig`] is the operator's part (extra catalog rows, lookups);
//! [`EnrichConfig::build`] validates it and reads the lookup files once,
//! then [`Enricher`] runs per event through [`Transform::apply`]. The
//! catalog tables become hash maps at build time; per event the enricher
//! allocates only for values the output has to own (a translated action
//! name, a region cut from a CRN, labels). It never panics on damaged input
//! and never drops an event: what it cannot derive it leaves alone.

pub mod catalog;
mod fields;
mod lookup;

use std::borrow::Cow;
use std::path::PathBuf;

use keytrail_core::{Category, Event, Transform};
use serde::{Deserialize, Serialize};

pub use fields::{TkeLocation, key_state_name};

use crate::lookup::Lookup;

/// The catalog maps: FxHash (rustc's hasher). The tables are built from
/// compiled-in rows and operator configuration, never from events, so
/// SipHash's defence against chosen keys buys nothing here, while hashing
/// each event's action name with it is a measurable share of this stage.
type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// The operator's configuration of the enrich stage (`[enrich]`).
///
/// ```toml
/// [[enrich.catalog]]
/// action = "hs-crypto.secrets.endtoenddelete"
/// description = "Crypto-shredding of a key completed."
/// category = "key_management"
///
/// [[enrich.lookups]]
/// field = "instance_id"
/// path = "/etc/keytrail/teams.csv"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnrichConfig {
    /// Extra catalog rows; a row wins over the built-in row of the same
    /// action.
    pub catalog: Vec<CatalogRowConfig>,
    /// Label lookups, applied in this order (a later lookup replaces a label
    /// of the same name set by an earlier one).
    pub lookups: Vec<LookupConfig>,
}

/// One extra catalog row (`[[enrich.catalog]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRowConfig {
    /// The full action name as the enricher sees it: an IBM action with its
    /// prefix (`hs-crypto.foo.bar`, `kms.foo.bar`, `iam-groups.group.create`;
    /// historical IBM names are translated before the lookup, so name the
    /// current one) or a Securosys event (`KEY_DELETE_FAILED`). The row
    /// applies to exactly this name.
    pub action: String,
    /// The one-line description to report.
    pub description: String,
    /// A category name (`key_management`, any letter case). When absent, the
    /// category comes from the built-in tables as if the row did not exist.
    /// For Securosys events it applies, like the built-in one, only when the
    /// event carried no category of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// One label lookup (`[[enrich.lookups]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// The event field whose value is the lookup key: `instance_id`,
    /// `account_id`, `region`, `actor.user` or `target.id`.
    pub field: String,
    /// A `.csv` file (header row; first column the key, the others labels)
    /// or a `.toml` file (key → table of label → string). A relative path is
    /// relative to the process's working directory.
    pub path: PathBuf,
}

/// Why an [`EnrichConfig`] could not be built into an [`Enricher`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichBuildError {
    /// A catalog row with an empty action name.
    #[error("catalog row has an empty action")]
    EmptyAction,
    /// A catalog row with an empty description.
    #[error("catalog row `{action}` has an empty description")]
    EmptyDescription {
        /// The row's action.
        action: String,
    },
    /// A catalog row whose category is not a category name.
    #[error("catalog row `{action}` has unknown category `{category}`")]
    UnknownCategory {
        /// The row's action.
        action: String,
        /// The value that is not a category.
        category: String,
    },
    /// Two catalog rows for the same action.
    #[error("catalog row `{action}` appears twice")]
    DuplicateAction {
        /// The repeated action.
        action: String,
    },
    /// A lookup keyed by a field outside the supported set.
    #[error(
        "unknown lookup field `{field}` (expected one of instance_id, account_id, region, actor.user, target.id)"
    )]
    UnknownLookupField {
        /// The configured field name.
        field: String,
    },
    /// A lookup file whose extension is neither `.csv` nor `.toml`.
    #[error("lookup file {} is neither .csv nor .toml", .path.display())]
    LookupFormat {
        /// The configured path.
        path: PathBuf,
    },
    /// A lookup file that could not be read.
    #[error("cannot read lookup file {}", .path.display())]
    ReadLookup {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A CSV lookup file that does not parse.
    #[error("invalid csv in lookup file {}", .path.display())]
    LookupCsv {
        /// The configured path.
        path: PathBuf,
        /// The CSV error (it carries the line).
        #[source]
        source: csv::Error,
    },
    /// A TOML lookup file that does not parse into key → label → string.
    #[error("invalid toml in lookup file {}", .path.display())]
    LookupToml {
        /// The configured path.
        path: PathBuf,
        /// The TOML error (it carries the position).
        #[source]
        source: toml::de::Error,
    },
    /// A lookup file that parses but whose content is unusable.
    #[error("lookup file {}: {problem}", .path.display())]
    LookupContent {
        /// The configured path.
        path: PathBuf,
        /// What is wrong (duplicate key, nameless column, …).
        problem: String,
    },
}

impl EnrichConfig {
    /// Validates the configuration, reads the lookup files and builds the
    /// enricher: the built-in catalogs plus the operator's rows and lookups.
    pub fn build(&self) -> Result<Enricher, EnrichBuildError> {
        let mut enricher = Enricher::new();
        for row in &self.catalog {
            let action = row.action.trim();
            if action.is_empty() {
                return Err(EnrichBuildError::EmptyAction);
            }
            let description = row.description.trim();
            if description.is_empty() {
                return Err(EnrichBuildError::EmptyDescription {
                    action: action.to_owned(),
                });
            }
            let category = row
                .category
                .as_deref()
                .map(|name| {
                    Category::from_name(name.trim()).ok_or_else(|| {
                        EnrichBuildError::UnknownCategory {
                            action: action.to_owned(),
                            category: name.to_owned(),
                        }
                    })
                })
                .transpose()?;
            if enricher.extra.contains_key(action) {
                return Err(EnrichBuildError::DuplicateAction {
                    action: action.to_owned(),
                });
            }
            // Descriptions are handed out per event as `Cow::Borrowed`, so
            // they must live for `'static`. Leaking them here, once per
            // build, costs a few bytes per configured row and keeps the hot
            // path free of clones; a process builds its enricher once (a
            // configuration reload leaks the previous rows, a bounded cost).
            let description: &'static str = Box::leak(description.to_owned().into_boxed_str());
            enricher.extra.insert(
                action.to_owned(),
                ExtraRow {
                    description,
                    category,
                },
            );
        }
        for config in &self.lookups {
            enricher.lookups.push(Lookup::load(config)?);
        }
        Ok(enricher)
    }
}

/// An operator's catalog row, validated.
#[derive(Debug, Clone, Copy)]
struct ExtraRow {
    description: &'static str,
    category: Option<Category>,
}

/// A built-in IBM row, keyed by its name without prefix.
#[derive(Debug, Clone, Copy)]
struct IbmRow {
    description: &'static str,
    category: Category,
}

/// The enrich stage: catalogs, field derivations and operator lookups.
///
/// Build it with [`Enricher::new`] (built-in catalogs only) or
/// [`EnrichConfig::build`]; run it through [`Transform::apply`].
#[derive(Debug)]
pub struct Enricher {
    /// IBM current names (without prefix) → description and category.
    ibm_actions: FastMap<&'static str, IbmRow>,
    /// IBM historical names (without prefix) → current names.
    ibm_historical: FastMap<&'static str, &'static str>,
    /// Securosys events → category and description.
    securosys: FastMap<&'static str, (Category, &'static str)>,
    /// Operator rows by full action name; they win over the built-in ones.
    extra: FastMap<String, ExtraRow>,
    /// Operator lookups, in configuration order.
    lookups: Vec<Lookup>,
}

impl Default for Enricher {
    fn default() -> Self {
        Enricher::new()
    }
}

impl Enricher {
    /// An enricher with the built-in catalogs and no operator extensions.
    pub fn new() -> Enricher {
        let ibm_actions = catalog::IBM_ACTIONS
            .iter()
            .map(|&(name, description)| {
                let category = catalog::ibm_category(name);
                (
                    name,
                    IbmRow {
                        description,
                        category,
                    },
                )
            })
            .collect();
        let ibm_historical = catalog::IBM_HISTORICAL_NAMES.iter().copied().collect();
        let securosys = catalog::SECUROSYS_EVENTS
            .iter()
            .map(|&(event, category, description)| (event, (category, description)))
            .collect();
        Enricher {
            ibm_actions,
            ibm_historical,
            securosys,
            extra: FastMap::default(),
            lookups: Vec::new(),
        }
    }

    /// True when every text the enricher can set is plain JSON string
    /// content ([`keytrail_core::json::is_plain`]), so that it keeps an
    /// event's texts plain (see [`Event::write_json_plain`]): the
    /// descriptions, built-in and the operator's, and the built-in current
    /// names of historical IBM actions are checked here; the key state
    /// names are plain words;
    /// every other text it sets is cut out of the event's own (a CRN's
    /// parts, a TKE location's, a certificate id's fingerprint). Lookups
    /// set labels only, which are always escaped.
    pub fn adds_plain_texts(&self) -> bool {
        use keytrail_core::json::is_plain;
        self.ibm_actions
            .values()
            .all(|row| is_plain(row.description))
            && self.ibm_historical.values().all(|name| is_plain(name))
            && self
                .securosys
                .values()
                .all(|&(_, description)| is_plain(description))
            && self.extra.values().all(|row| is_plain(row.description))
    }

    /// Translation, description and category of an IBM event.
    fn apply_ibm_catalog(&self, event: &mut Event) {
        if let Some((prefix, suffix)) = catalog::split_ibm_prefix(&event.action)
            && let Some(current) = self.ibm_historical.get(suffix)
        {
            let mut translated = keytrail_core::CompactString::from(prefix);
            translated.push_str(current);
            event.legacy_action = Some(std::mem::replace(&mut event.action, translated));
        }

        let action = event.action.as_str();
        let builtin = catalog::split_ibm_prefix(action).map(|(_, suffix)| {
            match self.ibm_actions.get(suffix) {
                Some(row) => (Some(row.description), row.category),
                None => (None, catalog::ibm_category(suffix)),
            }
        });
        let extra = self.extra.get(action);

        let description = extra
            .map(|row| row.description)
            .or(builtin.and_then(|(description, _)| description));
        if let Some(description) = description {
            event.description = Some(Cow::Borrowed(description));
        }
        event.category = extra
            .and_then(|row| row.category)
            .or(builtin.map(|(_, category)| category))
            .unwrap_or(Category::Other);
    }

    /// Description and missing category of a Securosys event.
    fn apply_securosys_catalog(&self, event: &mut Event) {
        let action = event.action.as_str();
        let builtin = self.securosys.get(action);
        let extra = self.extra.get(action);

        let description = extra
            .map(|row| row.description)
            .or(builtin.map(|&(_, description)| description));
        if let Some(description) = description {
            event.description = Some(Cow::Borrowed(description));
        }
        if event.category == Category::Other
            && let Some(category) = extra
                .and_then(|row| row.category)
                .or(builtin.map(|&(category, _)| category))
        {
            event.category = category;
        }
    }
}

impl Transform for Enricher {
    fn apply(&self, event: &mut Event) {
        if event.source.is_ibm() {
            self.apply_ibm_catalog(event);
            fields::derive_ibm_places(event);
            fields::extract_cert_fingerprint(event);
        } else {
            self.apply_securosys_catalog(event);
        }
        fields::name_key_states(event);
        for lookup in &self.lookups {
            lookup.apply(event);
        }
    }
}

#[cfg(test)]
mod test_support {
    use std::path::{Path, PathBuf};

    /// A scratch directory under the system temp dir, removed on drop.
    /// The tag keeps parallel tests apart.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("keytrail-enrich-{}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir can be created");
            TempDir(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        pub(crate) fn write(&self, name: &str, content: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, content).expect("temp file can be written");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use keytrail_core::{Source, Timestamp};

    use super::*;
    use crate::test_support::TempDir;

    fn event(source: Source, action: &str) -> Event {
        Event::new(Timestamp::from_millis(0), source, action.into())
    }

    fn enrich(enricher: &Enricher, source: Source, action: &str) -> Event {
        let mut event = event(source, action);
        enricher.apply(&mut event);
        event
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        enrich: EnrichConfig,
    }

    fn parse(text: &str) -> Result<EnrichConfig, toml::de::Error> {
        toml::from_str::<File>(text).map(|file| file.enrich)
    }

    #[test]
    fn every_legacy_name_translates_under_both_prefixes() {
        let enricher = Enricher::new();
        for (legacy, current) in catalog::IBM_HISTORICAL_NAMES {
            for (prefix, source) in [
                ("hs-crypto.", Source::IbmHpcs),
                ("kms.", Source::IbmKeyProtect),
            ] {
                let received = format!("{prefix}{legacy}");
                let event = enrich(&enricher, source, &received);
                assert_eq!(event.action, format!("{prefix}{current}"), "{received}");
                assert_eq!(event.legacy_action.as_deref(), Some(received.as_str()));
                let description = catalog::IBM_ACTIONS
                    .iter()
                    .find(|(name, _)| name == current)
                    .map(|(_, d)| *d);
                assert_eq!(event.description.as_deref(), description, "{received}");
                assert_eq!(event.category, catalog::ibm_category(current), "{received}");
                assert_ne!(event.category, Category::Other, "{received}");
            }
        }
    }

    #[test]
    fn every_current_name_is_described_under_both_prefixes() {
        let enricher = Enricher::new();
        for (name, description) in catalog::IBM_ACTIONS {
            for prefix in catalog::IBM_PREFIXES {
                let action = format!("{prefix}{name}");
                let event = enrich(&enricher, Source::IbmHpcs, &action);
                assert_eq!(event.action, action);
                assert_eq!(event.legacy_action, None, "{action}");
                assert_eq!(event.description.as_deref(), Some(*description), "{action}");
                assert!(
                    matches!(event.description, Some(Cow::Borrowed(_))),
                    "{action} description is borrowed"
                );
                assert_ne!(event.category, Category::Other, "{action}");
            }
        }
    }

    #[test]
    fn ibm_categories_through_the_enricher() {
        let enricher = Enricher::new();
        let cases = [
            ("hs-crypto.secrets.wrap", Category::CryptoOperation),
            ("kms.secrets.unwrap", Category::CryptoOperation),
            ("kms.secrets.rewrap", Category::CryptoOperation),
            ("hs-crypto.secrets.rotate", Category::KeyManagement),
            ("kms.secrets.ack-rotate", Category::KeyManagement),
            ("hs-crypto.ep11.use", Category::CryptoOperation),
            (
                "hs-crypto.tke-cryptounit.reset",
                Category::HsmAdministration,
            ),
            (
                "hs-crypto.mtlscert-cert.set",
                Category::CertificateManagement,
            ),
            ("kms.instancepolicies.write", Category::PolicyManagement),
            ("hs-crypto.keystore.deletekey", Category::KeystoreManagement),
            ("hs-crypto.kmip-key.destroy", Category::KmipManagement),
        ];
        for (action, category) in cases {
            assert_eq!(
                enrich(&enricher, Source::IbmHpcs, action).category,
                category,
                "{action}"
            );
        }
    }

    #[test]
    fn unknown_action_with_known_resource_gets_only_a_category() {
        let enricher = Enricher::new();
        let event = enrich(
            &enricher,
            Source::IbmKeyProtect,
            "kms.secrets.endtoenddelete",
        );
        assert_eq!(event.category, Category::KeyManagement);
        assert_eq!(event.description, None);
        assert_eq!(event.action, "kms.secrets.endtoenddelete");
        assert_eq!(event.legacy_action, None);
    }

    #[test]
    fn other_services_and_unknown_resources_are_other() {
        let enricher = Enricher::new();
        for action in [
            "iam-groups.group.create",
            "is.snapshot.create",
            "is.volume.volume.update",
            "cloud-object-storage.object.create",
            "kms.instance.create",
            "hs-crypto.",
            "secrets.create",
            "",
        ] {
            let event = enrich(&enricher, Source::IbmCloud, action);
            assert_eq!(event.category, Category::Other, "{action:?}");
            assert_eq!(event.description, None, "{action:?}");
            assert_eq!(event.action, action);
        }
    }

    #[test]
    fn enriching_twice_changes_nothing_more() {
        let enricher = Enricher::new();
        let mut once = event(Source::IbmHpcs, "hs-crypto.keyrings.create");
        once.target.id = Some("crn:v1:bluemix:public:hs-crypto:us-south:a/acc:inst:key:k".into());
        enricher.apply(&mut once);
        let mut twice = once.clone();
        enricher.apply(&mut twice);
        assert_eq!(once, twice);
        assert_eq!(
            twice.legacy_action.as_deref(),
            Some("hs-crypto.keyrings.create")
        );
    }

    #[test]
    fn securosys_events_get_descriptions_and_missing_categories() {
        let enricher = Enricher::new();
        for (name, category, description) in catalog::SECUROSYS_EVENTS {
            let event = enrich(&enricher, Source::SecurosysKm, name);
            assert_eq!(event.category, *category, "{name}");
            assert_eq!(event.description.as_deref(), Some(*description), "{name}");
        }

        let mut own = event(Source::SecurosysKm, "LOGIN_FAILURE");
        own.category = Category::System;
        enricher.apply(&mut own);
        assert_eq!(
            own.category,
            Category::System,
            "the event's own category is kept"
        );

        let unknown = enrich(&enricher, Source::SecurosysKm, "KEY_DELETE_FAILED");
        assert_eq!(
            (unknown.category, unknown.description),
            (Category::Other, None)
        );

        let ibm_name = enrich(&enricher, Source::SecurosysKm, "hs-crypto.secrets.create");
        assert_eq!(
            ibm_name.description, None,
            "IBM rows do not apply to Securosys"
        );
    }

    #[test]
    fn every_event_field_is_derived_through_apply() {
        let enricher = Enricher::new();
        let mut event = event(Source::IbmHpcs, "hs-crypto.kmip-key.create");
        event.actor.id = Some("CertificateID-1a2b3c".into());
        event.target.id =
            Some("crn:v1:bluemix:public:hs-crypto:us-east:a/acc1:inst1:key:k1".into());
        event.tke_mut().location = Some("[us-east].[AZ2-CSSTAG2].[03].[22]".into());
        event.key_mut().state_code = Some(2);
        event.key_mut().previous_state_code = Some(1);
        enricher.apply(&mut event);
        assert_eq!(event.actor.cert_fingerprint.as_deref(), Some("1a2b3c"));
        assert_eq!(event.region.as_deref(), Some("us-east"));
        assert_eq!(event.account_id.as_deref(), Some("acc1"));
        assert_eq!(event.instance_id.as_deref(), Some("inst1"));
        let tke = event.tke.as_deref().expect("tke");
        assert_eq!(tke.availability_zone.as_deref(), Some("AZ2-CSSTAG2"));
        let key = event.key.as_deref().expect("key");
        assert_eq!(key.state.as_deref(), Some("suspended"));
        assert_eq!(key.previous_state.as_deref(), Some("active"));
        assert_eq!(event.category, Category::KmipManagement);
    }

    #[test]
    fn configuration_parses_from_the_documented_form() {
        let config = parse(
            r#"
            [[enrich.catalog]]
            action = "hs-crypto.secrets.create"
            description = "Create a key (ours)."

            [[enrich.lookups]]
            field = "instance_id"
            path = "teams.csv"
            "#,
        )
        .expect("parses");
        assert_eq!(config.catalog.len(), 1);
        assert_eq!(config.catalog[0].category, None);
        assert_eq!(config.lookups[0].path, PathBuf::from("teams.csv"));

        assert_eq!(
            parse("[enrich]\n").expect("empty is fine"),
            EnrichConfig::default()
        );

        let typo = parse(
            "[[enrich.catalog]]\naction = \"x\"\ndescription = \"y\"\ncatgory = \"system\"\n",
        )
        .expect_err("unknown key");
        assert!(typo.to_string().contains("catgory"), "{typo}");
        let top = parse("[enrich]\nlookup = []\n").expect_err("unknown key");
        assert!(top.to_string().contains("lookup"), "{top}");
    }

    #[test]
    fn configured_rows_win_over_built_in_ones() {
        let config = parse(
            r#"
            [[enrich.catalog]]
            action = "hs-crypto.secrets.create"
            description = "Create a key (ours)."
            category = "CRYPTO_OPERATION"

            [[enrich.catalog]]
            action = "kms.secrets.endtoenddelete"
            description = "Crypto-shredding of a key."

            [[enrich.catalog]]
            action = "hs-crypto.secrets-alias.create"
            description = "Alias created."
            category = "other"

            [[enrich.catalog]]
            action = "iam-groups.group.create"
            description = "An access group was created."
            category = "user_management"

            [[enrich.catalog]]
            action = "KEY_DELETE_FAILED"
            description = "Deleting a key failed."
            category = "key_management"

            [[enrich.catalog]]
            action = "LOGIN_FAILURE"
            description = "Wrong password."
            "#,
        )
        .expect("parses");
        let enricher = config.build().expect("builds");
        let check = |source, action: &str, description: &str, category| {
            let event = enrich(&enricher, source, action);
            assert_eq!(event.description.as_deref(), Some(description), "{action}");
            assert_eq!(event.category, category, "{action}");
        };
        check(
            Source::IbmHpcs,
            "hs-crypto.secrets.create",
            "Create a key (ours).",
            Category::CryptoOperation,
        );
        check(
            Source::IbmKeyProtect,
            "kms.secrets.create",
            "Create a key.",
            Category::KeyManagement,
        );
        check(
            Source::IbmKeyProtect,
            "kms.secrets.endtoenddelete",
            "Crypto-shredding of a key.",
            Category::KeyManagement,
        );
        check(
            Source::IbmHpcs,
            "hs-crypto.secrets.createalias",
            "Alias created.",
            Category::Other,
        );
        check(
            Source::IbmCloud,
            "iam-groups.group.create",
            "An access group was created.",
            Category::UserManagement,
        );
        check(
            Source::SecurosysKm,
            "KEY_DELETE_FAILED",
            "Deleting a key failed.",
            Category::KeyManagement,
        );
        check(
            Source::SecurosysKm,
            "LOGIN_FAILURE",
            "Wrong password.",
            Category::Authentication,
        );
    }

    #[test]
    fn texts_are_plain_unless_an_operator_description_needs_escaping() {
        assert!(Enricher::new().adds_plain_texts());
        for code in -1..=6 {
            assert!(keytrail_core::json::is_plain(fields::key_state_name(code)));
        }
        let described = |description: &str| {
            EnrichConfig {
                catalog: vec![CatalogRowConfig {
                    action: "kms.x.y".to_owned(),
                    description: description.to_owned(),
                    category: None,
                }],
                lookups: Vec::new(),
            }
            .build()
            .expect("builds")
            .adds_plain_texts()
        };
        assert!(described("Rotate a key (scheduled) - see 'policy'."));
        for text in ["Say \"stop\".", "C:\\keys", "line\nbreak", "tab\there"] {
            assert!(!described(text), "{text:?}");
        }
    }

    #[test]
    fn bad_catalog_rows_are_refused_by_name() {
        let row = |action: &str, description: &str, category: Option<&str>| EnrichConfig {
            catalog: vec![CatalogRowConfig {
                action: action.to_owned(),
                description: description.to_owned(),
                category: category.map(str::to_owned),
            }],
            lookups: Vec::new(),
        };
        let cases = [
            (
                row("kms.x.y", "d", Some("key-management")),
                "`key-management`",
            ),
            (row("kms.x.y", "d", Some("")), "unknown category ``"),
            (row(" ", "d", None), "empty action"),
            (
                row("kms.x.y", " ", None),
                "`kms.x.y` has an empty description",
            ),
        ];
        for (config, message) in cases {
            let err = config.build().expect_err(message);
            assert!(err.to_string().contains(message), "{err}");
        }

        let mut twice = row("kms.x.y", "d", None);
        twice.catalog.push(twice.catalog[0].clone());
        let err = twice.build().expect_err("duplicate");
        assert!(err.to_string().contains("`kms.x.y` appears twice"), "{err}");
    }

    #[test]
    fn lookups_from_csv_and_toml_label_events() {
        let dir = TempDir::new("lib-lookups");
        let csv = dir.write(
            "teams.csv",
            "instance,team,env\ndd24cdc0-2c77-40a7-8680-53ccd41d9888,payments,prod\n",
        );
        let toml_path = dir.write(
            "regions.toml",
            "[us-south]\nsite = \"dallas\"\nenv = \"dr\"\n",
        );
        let config = EnrichConfig {
            catalog: Vec::new(),
            lookups: vec![
                LookupConfig {
                    field: "instance_id".to_owned(),
                    path: csv,
                },
                LookupConfig {
                    field: "region".to_owned(),
                    path: toml_path,
                },
            ],
        };
        let enricher = config.build().expect("builds");
        let mut event = event(Source::IbmKeyProtect, "kms.secrets.ack-rotate");
        event.log_source_crn = Some(
            "v1:bluemix:public:kms:us-south:a/b3e8ea4428c24cefa34454bd8acccc:dd24cdc0-2c77-40a7-8680-53ccd41d9888::"
                .into(),
        );
        enricher.apply(&mut event);
        let labels = event.labels.as_deref().expect("labels");
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [("env", "dr"), ("site", "dallas"), ("team", "payments")],
            "lookups see derived fields; the later lookup wins on `env`"
        );
        let json = serde_json::to_value(&event).expect("serializes");
        assert_eq!(json["labels"]["team"], "payments");
    }

    #[test]
    fn bad_lookups_stop_the_build() {
        let build = |field: &str, path: &str| {
            EnrichConfig {
                catalog: Vec::new(),
                lookups: vec![LookupConfig {
                    field: field.to_owned(),
                    path: PathBuf::from(path),
                }],
            }
            .build()
        };
        let err = build("user", "teams.csv").expect_err("unknown field");
        assert!(err.to_string().contains("`user`"), "{err}");
        let err = build("region", "/nonexistent/keytrail/teams.csv").expect_err("missing");
        assert!(
            err.to_string().contains("/nonexistent/keytrail/teams.csv"),
            "{err}"
        );
    }
}
