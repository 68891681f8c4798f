//! The vendor catalogs, as data.
//!
//! Every table here is a `const` slice with one row per action or event, in
//! the order of the vendor document it comes from, so that a reviewer can
//! hold the two side by side. The [`Enricher`](crate::Enricher) turns them
//! into hash maps once, when it is built; nothing here is consulted per
//! event.
//!
//! Sources:
//! - IBM rows: `reference/ibm-hpcs-activity-tracker-events.txt` (action
//!   tables and the historical-name table) and `spec/vendor-rules.md` (the
//!   actions only the severity table names). IBM descriptions are copied
//!   from the document as they stand, including its spelling.
//! - Categories: the "Categories" section of `spec/normalized-event.md`.
//! - Securosys rows: the "Log Events" table of the Key Manager log
//!   reference plus the `DATA_OBJECT_UPDATED` sample event; descriptions are
//!   the project's own one-line summaries.
//!
//! IBM names are stored without their service prefix: every row is known
//! under each of [`IBM_PREFIXES`], with the same description, category and
//! translation.

use keytrail_core::Category;

/// The IBM service prefixes under which every IBM row is known: HPCS sends
/// `hs-crypto.`, Key Protect (and HPCS for some key actions) sends `kms.`.
pub const IBM_PREFIXES: [&str; 2] = ["hs-crypto.", "kms."];

/// IBM actions by current name (without prefix) and their description.
///
/// The rows up to the `registrations.default` row and the TKE, certificate
/// manager, KMIP, EP11 and KMIP management rows follow the action tables of
/// the IBM document, descriptions verbatim. Rows marked "ours" are named by
/// the document (historical-name table) or by `vendor-rules.md` (severity
/// table) without a description, so the description is the project's.
pub const IBM_ACTIONS: &[(&str, &str)] = &[
    // Key events.
    ("secrets.create", "Create a key."),
    ("secrets-alias.create", "Create a key alias."),
    ("secrets.default", "Invalid key request event."),
    ("secrets.delete", "Delete a key."),
    ("secrets-alias.delete", "Delete a key alias."),
    ("secrets.disable", "Disable operations for a key."),
    ("secrets.enable", "Enable operations for a key."),
    (
        "secrets-event.ack",
        "Acknowledge a lifecycle action on a key.",
    ),
    ("secrets.expire", "Expire a key."),
    ("secrets.head", "Retrieve key total."),
    ("secrets.list", "List keys."),
    (
        "secrets-key-versions.list",
        "List all the versions of a key.",
    ),
    ("secrets.wrap", "Wrap a key."),
    ("secrets.patch", "Patch a key."),
    ("secrets.purge", "Purge a key."),
    ("secrets.read", "Retrieve all key information."),
    (
        "secrets-metadata.read",
        "Retrieve key metadata (excluding key payload, if applicable).",
    ),
    ("secrets.restore", "Restore a key."),
    ("secrets.rewrap", "Rewrap a key."),
    ("secrets.rotate", "Rotate a key."),
    (
        "secrets.setkeyfordeletion",
        "Authorize deletion for a key with Dual Authorization policy.",
    ),
    (
        "secrets.unsetkeyfordeletion",
        "Cancel deletion for a key with Dual Authorization policy.",
    ),
    ("secrets.unwrap", "Unwrap a key."),
    // Key ring events.
    ("key-rings.create", "Create a key ring."),
    ("key-rings.delete", "Delete a key ring."),
    ("key-rings.list", "List key rings in an instance."),
    ("key-rings.request", "Invalid key ring request."),
    // Policy events.
    ("policies.read", "List key policies."),
    ("policies.write", "Set key policies."),
    ("instance-policies.read", "List instance policies."),
    ("instance-policies.write", "Set instance policies."),
    ("policies.default", "Invalid policy request event."),
    ("instance-policies.request", "Invalid policy request event."),
    // Import token events.
    ("import-token.create", "Create an import token."),
    ("import-token.read", "Retrieve an import token."),
    (
        "import-token.request",
        "Invalid import token request event.",
    ),
    // Registration events.
    ("registrations.list", "List registrations for any key."),
    (
        "registrations.default",
        "Invalid registration request event.",
    ),
    // Trusted Key Entry events.
    (
        "tke-cryptounit-admin.add",
        "Add a crypto unit administrator to the selected crypto units.",
    ),
    (
        "tke-cryptounit-admin.remove",
        "Remove a crypto unit administrator from the selected crypto units.",
    ),
    (
        "tke-cryptounit-threshold.set",
        "Set the signature thresholds for the selected crypto units.",
    ),
    (
        "tke-cryptounit-master-key-register.add",
        "Load the new master key register.",
    ),
    (
        "tke-cryptounit-master-key-register.commit",
        "Commit the new master key register.",
    ),
    (
        "tke-cryptounit-master-key-register.activate",
        "Activate the current master key register.",
    ),
    (
        "tke-cryptounit-new-master-key-register.clear",
        "Clear the new master key register.",
    ),
    (
        "tke-cryptounit-current-master-key-register.clear",
        "Clear the current master key register.",
    ),
    (
        "tke-cryptounit.reset",
        "Zeroize and reset the selected crypto units",
    ),
    // Certificate manager events.
    (
        "mtlscert-admin-key.create",
        "Create the administrator signature key for the certificate administrator to connect to the certificate manager server.",
    ),
    (
        "mtlscert-admin-key.update",
        "Refresh and update the administrator signature key for the certificate administrator.",
    ),
    (
        "mtlscert-admin-key.read",
        "Get the administrator signature key of the certificate administrator.",
    ),
    (
        "mtlscert-admin-key.delete",
        "Delete the administrator signature key of the certificate administrator.",
    ),
    (
        "mtlscert-cert.set",
        "Create or update certificates by the certificate administrator.",
    ),
    (
        "mtlscert-cert.list",
        "List all certificates that are managed by the certificate administrator.",
    ),
    (
        "mtlscert-cert.read",
        "Get certificates by the certificate administrator.",
    ),
    (
        "mtlscert-cert.delete",
        "Delete certificates by the certificate administrator.",
    ),
    // KMIP for VMware events.
    ("kmip-key.create", "A KMIP key is created."),
    ("kmip-key.read", "A KMIP key is retrieved."),
    (
        "kmip-key-attributes.retrieve",
        "A KMIP key's attributes are retrieved.",
    ),
    ("kmip-key.activate", "A KMIP key is activated."),
    ("kmip-key.revoke", "A KMIP key is revoked."),
    ("kmip-key.destroy", "A KMIP key is destroyed."),
    // EP11 keystore events.
    ("keystore.createkeystore", "Create an EP11 keystore."),
    ("keystore.deletekey", "Delete an EP11 key."),
    ("keystore.deletekeystore", "Delete an EP11 keystore."),
    ("keystore.listkeysbyattributes", "View EP11 keys."),
    ("keystore.listkeysbyids", "View EP11 keys."),
    ("keystore.listkeystoresbyattributes", "View EP11 keystores."),
    ("keystore.listkeystoresbyids", "View EP11 keystores."),
    ("keystore.storenewkey", "Store an EP11 key."),
    ("keystore.updatekey", "Update an EP11 key."),
    // EP11 crypto events.
    ("ep11.use", "Cryptographic operation"),
    // KMIP management events.
    (
        "kmip-management.create",
        "Create a KMIP adapter or KMIP adapter client certificate.",
    ),
    (
        "kmip-management.delete",
        "Delete a KMIP adapter, KMIP adapter client certificate, or KMIP object.",
    ),
    (
        "kmip-management.list",
        "List KMIP adapters, KMIP adapter client certificates, or KMIP objects.",
    ),
    (
        "kmip-management.read",
        "Get a KMIP adapter, KMIP adapter client certificate, or KMIP object.",
    ),
    (
        "kmip-management.default",
        "Invalid KMIP managmenet API request.",
    ),
    // Current names that only the historical-name table shows (ours).
    (
        "governance-config.read",
        "Read the governance configuration of an instance.",
    ),
    (
        "instance-allowed-ip-port.read",
        "Read the allowed-network IP port of an instance.",
    ),
    (
        "instance-ip-allowlist-port.read",
        "Read the IP allowlist port of an instance.",
    ),
    ("secrets-alias.request", "Invalid key alias request event."),
    // Actions only the severity table of vendor-rules.md names (ours).
    (
        "registrations.create",
        "Register a cloud resource with a key.",
    ),
    (
        "registrations.write",
        "Replace the registration of a cloud resource with a key.",
    ),
    (
        "registrations.merge",
        "Update the registration of a cloud resource with a key.",
    ),
    (
        "registrations.delete",
        "Remove the registration of a cloud resource from a key.",
    ),
    (
        "secrets.ack-delete",
        "An adopting service acknowledged the deletion of a key.",
    ),
    (
        "secrets.ack-restore",
        "An adopting service acknowledged the restoration of a key.",
    ),
    (
        "secrets.ack-rotate",
        "An adopting service acknowledged the rotation of a key.",
    ),
    (
        "secrets.ack-enable",
        "An adopting service acknowledged the enabling of a key.",
    ),
    (
        "secrets.ack-disable",
        "An adopting service acknowledged the disabling of a key.",
    ),
];

/// Table 1 of the IBM document: historical name → current name, both
/// without prefix. A received historical name is translated to the current
/// one (under the same prefix) and kept as `legacy_action`.
pub const IBM_HISTORICAL_NAMES: &[(&str, &str)] = &[
    ("governance.configread", "governance-config.read"),
    ("importtoken.create", "import-token.create"),
    ("importtoken.read", "import-token.read"),
    ("importtoken.default", "import-token.request"),
    (
        "instance.readallowedipport",
        "instance-allowed-ip-port.read",
    ),
    (
        "instance.readipwhitelistport",
        "instance-ip-allowlist-port.read",
    ),
    ("instancepolicies.write", "instance-policies.write"),
    ("instancepolicies.read", "instance-policies.read"),
    ("instancepolicies.default", "instance-policies.request"),
    ("keyrings.create", "key-rings.create"),
    ("keyrings.delete", "key-rings.delete"),
    ("keyrings.list", "key-rings.list"),
    ("keyrings.default", "key-rings.request"),
    ("secrets.defaultalias", "secrets-alias.request"),
    ("secrets.createalias", "secrets-alias.create"),
    ("secrets.deletealias", "secrets-alias.delete"),
    ("secrets.eventack", "secrets-event.ack"),
    ("secrets.listkeyversions", "secrets-key-versions.list"),
    ("secrets.readmetadata", "secrets-metadata.read"),
];

/// IBM resource (the part between the prefix and the verb) → category.
/// A resource missing here, and matching no [`IBM_RESOURCE_PREFIX_CATEGORIES`]
/// row, is `other`.
pub const IBM_RESOURCE_CATEGORIES: &[(&str, Category)] = &[
    ("secrets", Category::KeyManagement),
    ("secrets-alias", Category::KeyManagement),
    ("secrets-event", Category::KeyManagement),
    ("secrets-key-versions", Category::KeyManagement),
    ("secrets-metadata", Category::KeyManagement),
    ("key-rings", Category::KeyManagement),
    ("import-token", Category::KeyManagement),
    ("registrations", Category::KeyManagement),
    ("ep11", Category::CryptoOperation),
    ("policies", Category::PolicyManagement),
    ("instance-policies", Category::PolicyManagement),
    ("governance-config", Category::PolicyManagement),
    ("instance-allowed-ip-port", Category::PolicyManagement),
    ("instance-ip-allowlist-port", Category::PolicyManagement),
    ("kmip-key", Category::KmipManagement),
    ("kmip-key-attributes", Category::KmipManagement),
    ("kmip-management", Category::KmipManagement),
    ("keystore", Category::KeystoreManagement),
];

/// IBM resource name prefixes → category (`tke-cryptounit-admin` is a
/// `tke-*` resource).
pub const IBM_RESOURCE_PREFIX_CATEGORIES: &[(&str, Category)] = &[
    ("tke-", Category::HsmAdministration),
    ("mtlscert-", Category::CertificateManagement),
];

/// The resource whose verbs in [`IBM_CRYPTO_VERBS`] are crypto operations
/// rather than key management.
pub const IBM_CRYPTO_RESOURCE: &str = "secrets";

/// Verbs on [`IBM_CRYPTO_RESOURCE`] that use a key rather than manage it:
/// this rule wins over the resource row.
pub const IBM_CRYPTO_VERBS: &[&str] = &["wrap", "unwrap", "rewrap"];

/// Securosys Key Manager events: name as sent, category, description.
///
/// The category fills in only when the event carried none of its own.
pub const SECUROSYS_EVENTS: &[(&str, Category, &str)] = &[
    (
        "SSL_ERROR",
        Category::System,
        "The UI could not validate the TLS certificate chain of a backend (TSB, OAuth, MCP).",
    ),
    (
        "REQUEST_ERROR",
        Category::System,
        "A request from the UI to a backend (TSB, OAuth, MCP) could not be made.",
    ),
    (
        "REQUEST_TIMEOUT",
        Category::System,
        "A request from the UI to a backend (TSB, OAuth, MCP) timed out.",
    ),
    (
        "MTLS_FAILED",
        Category::System,
        "The mutual TLS connection from the UI to the TSB failed.",
    ),
    (
        "DATA_OBJECT_CORRUPTED",
        Category::DataObject,
        "A data object kept by the UI was found altered outside the UI.",
    ),
    (
        "LOGIN_ERROR",
        Category::Authentication,
        "A login could not be completed because of a backend or credential problem.",
    ),
    (
        "LOGIN_FAILURE",
        Category::Authentication,
        "A login was tried with invalid credentials.",
    ),
    (
        "LOGIN_DENIED",
        Category::Authentication,
        "A user passed OAuth authentication but authorization refused access.",
    ),
    (
        "LOGIN_SUCCESS",
        Category::Authentication,
        "A user logged in.",
    ),
    (
        "USER_CREATED",
        Category::UserManagement,
        "A local user was created.",
    ),
    (
        "USER_UPDATED",
        Category::UserManagement,
        "A local user was changed.",
    ),
    (
        "KMIP_USER_CREATED",
        Category::KmipManagement,
        "A KMIP user was created.",
    ),
    (
        "DATA_OBJECT_UPDATED",
        Category::DataObject,
        "A data object was updated.",
    ),
];

/// The category of an IBM action given without its prefix
/// (`secrets.wrap`), by the resource table alone.
///
/// The resource is everything before the last `.`, the verb everything
/// after it; an action without a `.` is all resource.
pub fn ibm_category(action: &str) -> Category {
    let (resource, verb) = action.rsplit_once('.').unwrap_or((action, ""));
    if resource == IBM_CRYPTO_RESOURCE && IBM_CRYPTO_VERBS.contains(&verb) {
        return Category::CryptoOperation;
    }
    if let Some(&(_, category)) = IBM_RESOURCE_CATEGORIES
        .iter()
        .find(|(name, _)| *name == resource)
    {
        return category;
    }
    IBM_RESOURCE_PREFIX_CATEGORIES
        .iter()
        .find(|(prefix, _)| resource.starts_with(prefix))
        .map_or(Category::Other, |&(_, category)| category)
}

/// Splits an IBM action into its known prefix (`hs-crypto.` or `kms.`) and
/// the rest; `None` for any other service.
pub fn split_ibm_prefix(action: &str) -> Option<(&'static str, &str)> {
    IBM_PREFIXES.iter().find_map(|&prefix| {
        action
            .strip_prefix(prefix)
            .map(|rest| (prefix, rest))
            .filter(|(_, rest)| !rest.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet, HashSet};
    use std::path::{Path, PathBuf};

    use super::*;

    /// The IBM document, when the shared workspace is beside the clone.
    fn reference_document() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/reference/ibm-hpcs-activity-tracker-events.txt")
    }

    /// The committed list of every action name the document mentions.
    fn fixture_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/catalog/ibm-actions.txt")
    }

    /// Every `hs-crypto.[a-z0-9.-]+` match of `text`, trailing `.` trimmed,
    /// with the severity table's doubled prefix read as a single one.
    fn action_names_in(text: &str) -> BTreeSet<String> {
        const PREFIX: &str = "hs-crypto.";
        let mut names = BTreeSet::new();
        let mut rest = text;
        while let Some(start) = rest.find(PREFIX) {
            let after = &rest[start + PREFIX.len()..];
            let len = after
                .find(|c: char| {
                    !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
                })
                .unwrap_or(after.len());
            let body = after[..len].trim_end_matches('.');
            if !body.is_empty() {
                let body = body.strip_prefix(PREFIX).unwrap_or(body);
                names.insert(format!("{PREFIX}{body}"));
            }
            rest = &after[len..];
        }
        names
    }

    fn known_suffixes() -> HashSet<&'static str> {
        IBM_ACTIONS
            .iter()
            .map(|(name, _)| *name)
            .chain(IBM_HISTORICAL_NAMES.iter().map(|(legacy, _)| *legacy))
            .collect()
    }

    #[test]
    fn every_action_of_the_document_is_known() {
        let fixture = std::fs::read_to_string(fixture_path()).expect("fixture list is committed");
        let listed: BTreeSet<String> = fixture
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        assert!(
            listed.len() > 90,
            "fixture looks truncated: {}",
            listed.len()
        );

        let document = reference_document();
        match std::fs::read_to_string(&document) {
            Ok(text) => assert_eq!(
                listed,
                action_names_in(&text),
                "tests/fixtures/catalog/ibm-actions.txt has drifted from the IBM document"
            ),
            Err(_) => eprintln!(
                "note: {} is absent; checking the committed fixture only",
                document.display()
            ),
        }

        let known = known_suffixes();
        let unknown: Vec<&String> = listed
            .iter()
            .filter(|name| {
                let suffix = name.strip_prefix("hs-crypto.").unwrap_or(name);
                !known.contains(suffix)
            })
            .collect();
        assert!(unknown.is_empty(), "unknown to the catalog: {unknown:?}");
    }

    /// When the document is present, its action tables (name line followed
    /// by description line) and its historical table (name line followed by
    /// name line) must match the catalog rows exactly.
    #[test]
    fn descriptions_and_translations_match_the_document() {
        let Ok(text) = std::fs::read_to_string(reference_document()) else {
            eprintln!("note: IBM document absent; description check skipped");
            return;
        };
        let name_of = |line: &str| -> Option<String> {
            line.strip_suffix(" |")?
                .strip_prefix("hs-crypto.")
                .filter(|n| !n.contains(' '))
                .map(str::to_owned)
        };
        let lines: Vec<&str> = text.lines().collect();
        let mut described = BTreeMap::new();
        let mut historical = BTreeMap::new();
        let mut i = 0;
        while i + 1 < lines.len() {
            if let Some(name) = name_of(lines[i]) {
                if let Some(current) = name_of(lines[i + 1]) {
                    historical.insert(name, current);
                    i += 2;
                    continue;
                }
                if let Some(description) = lines[i + 1].strip_suffix(" |") {
                    described.insert(name, description.to_owned());
                    i += 2;
                    continue;
                }
            }
            i += 1;
        }
        assert_eq!(described.len(), 76, "action rows found in the document");
        let catalog: BTreeMap<String, String> = IBM_ACTIONS
            .iter()
            .map(|(n, d)| ((*n).to_owned(), (*d).to_owned()))
            .collect();
        for (name, description) in &described {
            assert_eq!(
                catalog.get(name),
                Some(description),
                "description of {name}"
            );
        }
        let ours: BTreeMap<String, String> = IBM_HISTORICAL_NAMES
            .iter()
            .map(|(l, c)| ((*l).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(historical, ours);
    }

    #[test]
    fn extraction_follows_the_pattern() {
        let names = action_names_in(
            "see hs-crypto.secrets.delete\n| and hs-crypto.hs-crypto.instance-policies.write. \
             but not hs-crypto/tke-cryptounit nor Hs-crypto.X",
        );
        let expected: BTreeSet<String> = [
            "hs-crypto.secrets.delete",
            "hs-crypto.instance-policies.write",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn tables_are_consistent() {
        let mut seen = HashSet::new();
        for (name, description) in IBM_ACTIONS {
            assert!(seen.insert(*name), "duplicate row {name}");
            assert!(!description.is_empty(), "{name} has no description");
            assert!(name.contains('.'), "{name} has no verb");
            assert!(!name.starts_with("hs-crypto.") && !name.starts_with("kms."));
        }
        for (legacy, current) in IBM_HISTORICAL_NAMES {
            assert!(
                seen.contains(current),
                "{legacy} translates to unknown {current}"
            );
            assert!(!seen.contains(legacy), "{legacy} is also a current name");
        }
        let mut events = HashSet::new();
        for (event, _, description) in SECUROSYS_EVENTS {
            assert!(events.insert(*event), "duplicate event {event}");
            assert!(!description.is_empty());
        }
        assert_eq!(SECUROSYS_EVENTS.len(), 13);
    }

    #[test]
    fn every_category_row_applies() {
        let cases: &[(&str, Category)] = &[
            ("secrets.create", Category::KeyManagement),
            ("secrets.ack-rotate", Category::KeyManagement),
            ("secrets.endtoenddelete", Category::KeyManagement),
            ("secrets-alias.create", Category::KeyManagement),
            ("secrets-event.ack", Category::KeyManagement),
            ("secrets-key-versions.list", Category::KeyManagement),
            ("secrets-metadata.read", Category::KeyManagement),
            ("key-rings.create", Category::KeyManagement),
            ("import-token.request", Category::KeyManagement),
            ("registrations.merge", Category::KeyManagement),
            ("secrets.wrap", Category::CryptoOperation),
            ("secrets.unwrap", Category::CryptoOperation),
            ("secrets.rewrap", Category::CryptoOperation),
            ("ep11.use", Category::CryptoOperation),
            ("policies.write", Category::PolicyManagement),
            ("instance-policies.request", Category::PolicyManagement),
            ("governance-config.read", Category::PolicyManagement),
            ("instance-allowed-ip-port.read", Category::PolicyManagement),
            (
                "instance-ip-allowlist-port.read",
                Category::PolicyManagement,
            ),
            ("tke-cryptounit.reset", Category::HsmAdministration),
            ("tke-cryptounit-admin.add", Category::HsmAdministration),
            ("tke-anything-new.do", Category::HsmAdministration),
            ("mtlscert-cert.set", Category::CertificateManagement),
            ("mtlscert-admin-key.read", Category::CertificateManagement),
            ("kmip-key.create", Category::KmipManagement),
            ("kmip-key-attributes.retrieve", Category::KmipManagement),
            ("kmip-management.default", Category::KmipManagement),
            ("keystore.storenewkey", Category::KeystoreManagement),
            ("instance.create", Category::Other),
            ("secrets-wrap.wrap", Category::Other),
            ("keyrings.create", Category::Other),
            ("secrets", Category::KeyManagement),
            ("", Category::Other),
        ];
        for (action, category) in cases {
            assert_eq!(ibm_category(action), *category, "{action}");
        }
    }

    #[test]
    fn prefixes_split_only_known_services() {
        assert_eq!(
            split_ibm_prefix("hs-crypto.secrets.create"),
            Some(("hs-crypto.", "secrets.create"))
        );
        assert_eq!(
            split_ibm_prefix("kms.keyrings.list"),
            Some(("kms.", "keyrings.list"))
        );
        assert_eq!(split_ibm_prefix("kms."), None);
        assert_eq!(split_ibm_prefix("iam-groups.group.create"), None);
        assert_eq!(split_ibm_prefix("kmsx.secrets.create"), None);
    }
}
