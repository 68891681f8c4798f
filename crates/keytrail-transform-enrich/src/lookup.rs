//! Operator lookups: labels from a file, keyed by one event field.
//!
//! The last step of the enrich stage. An operator names a field of the
//! event (`instance_id`, `account_id`, `region`, `actor.user`, `target.id`)
//! and a file that maps values of that field to labels (`team`, `env`,
//! `cost_center`). Files are read and checked once, when the
//! [`Enricher`](crate::Enricher) is built; a file that is missing or
//! malformed stops the build with an error naming it. Per event, a lookup is
//! one hash probe; only a match allocates (the labels are owned strings in
//! the output).
//!
//! File formats, chosen by extension:
//! - `.csv`: a header row, then one row per key. The first column is the
//!   key; every other column is a label, named by its header. Cells are
//!   trimmed; an empty cell gives no label.
//! - `.toml`: a table whose keys are the lookup keys and whose values are
//!   tables of label name → string value:
//!   `[crn-instance-1]` / `team = "payments"`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use keytrail_core::Event;

use crate::{EnrichBuildError, LookupConfig};

/// The event fields a lookup can be keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LookupField {
    InstanceId,
    AccountId,
    Region,
    ActorUser,
    TargetId,
}

impl LookupField {
    /// Every field with its configuration name; the error message of
    /// [`EnrichBuildError::UnknownLookupField`] lists the same names.
    pub(crate) const ALL: [(&'static str, LookupField); 5] = [
        ("instance_id", LookupField::InstanceId),
        ("account_id", LookupField::AccountId),
        ("region", LookupField::Region),
        ("actor.user", LookupField::ActorUser),
        ("target.id", LookupField::TargetId),
    ];

    fn from_name(name: &str) -> Option<LookupField> {
        LookupField::ALL
            .iter()
            .find(|(known, _)| *known == name)
            .map(|&(_, field)| field)
    }

    fn value(self, event: &Event) -> Option<&str> {
        match self {
            LookupField::InstanceId => event.instance_id.as_deref(),
            LookupField::AccountId => event.account_id.as_deref(),
            LookupField::Region => event.region.as_deref(),
            LookupField::ActorUser => event.actor.user.as_deref(),
            LookupField::TargetId => event.target.id.as_deref(),
        }
    }
}

/// One loaded lookup: the field it reads and key → labels.
#[derive(Debug)]
pub(crate) struct Lookup {
    field: LookupField,
    table: HashMap<String, Box<[(String, String)]>>,
}

impl Lookup {
    /// Reads and checks the file of one configured lookup.
    pub(crate) fn load(config: &LookupConfig) -> Result<Lookup, EnrichBuildError> {
        let field = LookupField::from_name(&config.field).ok_or_else(|| {
            EnrichBuildError::UnknownLookupField {
                field: config.field.clone(),
            }
        })?;
        let path = config.path.as_path();
        let parse = match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => parse_csv,
            Some(ext) if ext.eq_ignore_ascii_case("toml") => parse_toml,
            _ => {
                return Err(EnrichBuildError::LookupFormat {
                    path: path.to_owned(),
                });
            }
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| EnrichBuildError::ReadLookup {
                path: path.to_owned(),
                source,
            })?;
        let table = parse(path, &text)?;
        Ok(Lookup { field, table })
    }

    /// Adds the labels of the event's key, if the table has it. Labels set
    /// by an earlier lookup with the same name are replaced.
    pub(crate) fn apply(&self, event: &mut Event) {
        let Some(labels) = self
            .field
            .value(event)
            .and_then(|key| self.table.get(key))
            .filter(|labels| !labels.is_empty())
        else {
            return;
        };
        let target = event.labels.get_or_insert_with(Box::default);
        for (name, value) in labels.iter() {
            target.insert(name.clone(), value.clone());
        }
    }
}

type Table = HashMap<String, Box<[(String, String)]>>;

fn content_error(path: &Path, problem: String) -> EnrichBuildError {
    EnrichBuildError::LookupContent {
        path: path.to_owned(),
        problem,
    }
}

/// Adds one key with its labels, refusing a key seen before.
fn insert_row(
    table: &mut Table,
    path: &Path,
    key: &str,
    labels: Vec<(String, String)>,
) -> Result<(), EnrichBuildError> {
    if key.is_empty() {
        return Err(content_error(path, "a row has an empty key".to_owned()));
    }
    if table.insert(key.to_owned(), labels.into()).is_some() {
        return Err(content_error(path, format!("key `{key}` appears twice")));
    }
    Ok(())
}

fn parse_csv(path: &Path, text: &str) -> Result<Table, EnrichBuildError> {
    let csv_error = |source| EnrichBuildError::LookupCsv {
        path: path.to_owned(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let names: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .skip(1)
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(content_error(
            path,
            "the header row names no label column after the key column".to_owned(),
        ));
    }
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(content_error(
                path,
                format!("label column {} has no name", i + 2),
            ));
        }
        if names[..i].contains(name) {
            return Err(content_error(
                path,
                format!("label column `{name}` appears twice"),
            ));
        }
    }
    let mut table = Table::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let labels = names
            .iter()
            .zip(record.iter().skip(1))
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (name.clone(), value.to_owned()))
            .collect();
        insert_row(&mut table, path, record.get(0).unwrap_or_default(), labels)?;
    }
    Ok(table)
}

fn parse_toml(path: &Path, text: &str) -> Result<Table, EnrichBuildError> {
    let rows: BTreeMap<String, BTreeMap<String, String>> =
        toml::from_str(text).map_err(|source| EnrichBuildError::LookupToml {
            path: path.to_owned(),
            source,
        })?;
    let mut table = Table::new();
    for (key, labels) in rows {
        let labels = labels
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .collect();
        insert_row(&mut table, path, &key, labels)?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use keytrail_core::{Source, Timestamp};

    use super::*;
    use crate::test_support::TempDir;

    fn config(field: &str, path: &Path) -> LookupConfig {
        LookupConfig {
            field: field.to_owned(),
            path: path.to_owned(),
        }
    }

    fn event() -> Event {
        Event::new(
            Timestamp::from_millis(0),
            Source::IbmHpcs,
            "hs-crypto.secrets.create".into(),
        )
    }

    fn labels(event: &Event) -> Vec<(&str, &str)> {
        event
            .labels
            .as_deref()
            .map(|l| l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
            .unwrap_or_default()
    }

    #[test]
    fn csv_rows_become_labels() {
        let dir = TempDir::new("csv-rows");
        let path = dir.write(
            "teams.csv",
            "instance, team, env\n\
             dd24cdc0, payments , prod\n\
             \"with,comma\",\"a, b\",\n",
        );
        let lookup = Lookup::load(&config("instance_id", &path)).expect("loads");

        let mut hit = event();
        hit.instance_id = Some("dd24cdc0".into());
        lookup.apply(&mut hit);
        assert_eq!(labels(&hit), [("env", "prod"), ("team", "payments")]);

        let mut quoted = event();
        quoted.instance_id = Some("with,comma".into());
        lookup.apply(&mut quoted);
        assert_eq!(
            labels(&quoted),
            [("team", "a, b")],
            "empty cells give no label"
        );

        let mut miss = event();
        miss.instance_id = Some("other".into());
        lookup.apply(&mut miss);
        assert!(miss.labels.is_none());

        let mut absent = event();
        lookup.apply(&mut absent);
        assert!(absent.labels.is_none());
    }

    #[test]
    fn toml_tables_become_labels() {
        let dir = TempDir::new("toml-rows");
        let path = dir.write(
            "users.toml",
            "[\"john.doe@securosys.com\"]\nteam = \"hsm-ops\"\noncall = \"yes\"\n\n[nobody]\n",
        );
        let lookup = Lookup::load(&config("actor.user", &path)).expect("loads");
        let mut hit = event();
        hit.actor.user = Some("john.doe@securosys.com".into());
        lookup.apply(&mut hit);
        assert_eq!(labels(&hit), [("oncall", "yes"), ("team", "hsm-ops")]);
    }

    #[test]
    fn every_field_can_key_a_lookup() {
        let dir = TempDir::new("fields");
        let path = dir.write("keys.csv", "key,hit\nv,yes\n");
        type SetField = fn(&mut Event);
        let setters: [(&str, SetField); 5] = [
            ("instance_id", |e| e.instance_id = Some("v".into())),
            ("account_id", |e| e.account_id = Some("v".into())),
            ("region", |e| e.region = Some("v".into())),
            ("actor.user", |e| e.actor.user = Some("v".into())),
            ("target.id", |e| e.target.id = Some("v".into())),
        ];
        assert_eq!(
            setters.map(|(name, _)| name),
            LookupField::ALL.map(|(name, _)| name)
        );
        for (field, set) in setters {
            let lookup = Lookup::load(&config(field, &path)).expect("loads");
            let mut event = event();
            lookup.apply(&mut event);
            assert!(event.labels.is_none(), "{field} unset");
            set(&mut event);
            lookup.apply(&mut event);
            assert_eq!(labels(&event), [("hit", "yes")], "{field}");
        }
    }

    #[test]
    fn bad_files_are_refused_with_their_path() {
        let dir = TempDir::new("bad-files");
        let cases: &[(&str, &str, &str, bool)] = &[
            (
                "ragged.csv",
                "k,a\nx,1,2\n",
                "invalid csv in lookup file",
                true,
            ),
            (
                "bad.toml",
                "[x\nteam = 1",
                "invalid toml in lookup file",
                true,
            ),
            (
                "number.toml",
                "[x]\nteam = 1\n",
                "invalid toml in lookup file",
                true,
            ),
            ("nolabels.csv", "key\nx\n", "names no label column", false),
            (
                "dupkey.csv",
                "k,a\nx,1\nx,2\n",
                "key `x` appears twice",
                false,
            ),
            (
                "dupcol.csv",
                "k,a,a\nx,1,2\n",
                "label column `a` appears twice",
                false,
            ),
            ("emptykey.csv", "k,a\n,1\n", "empty key", false),
            ("teams.json", "{}", "neither .csv nor .toml", false),
        ];
        for (name, content, message, has_source) in cases {
            let path = dir.write(name, content);
            let err = Lookup::load(&config("region", &path)).expect_err(name);
            let text = err.to_string();
            assert!(text.contains(message), "{name}: {text}");
            assert!(text.contains(&*path.to_string_lossy()), "{name}: {text}");
            assert_eq!(err.source().is_some(), *has_source, "{name}");
            assert!(!text.ends_with('.'), "{name}: {text}");
        }

        let missing = dir.path().join("missing.csv");
        let err = Lookup::load(&config("region", &missing)).expect_err("missing file");
        assert!(
            matches!(err, EnrichBuildError::ReadLookup { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("missing.csv"));
        assert!(err.source().is_some());
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Lookup::load(&config("actor.email", Path::new("x.csv"))).expect_err("unknown");
        let text = err.to_string();
        assert!(text.contains("`actor.email`"), "{text}");
        for (name, _) in LookupField::ALL {
            assert!(text.contains(name), "{text} lists {name}");
        }
    }
}
