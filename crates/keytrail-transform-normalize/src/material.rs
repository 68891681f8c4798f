//! Key material never enters an event.
//!
//! The vendors promise that audit events carry no key payloads or nonces,
//! but a misbehaving producer could put them there. The typed parsers never
//! read such fields; the only place free-form vendor data reaches the event
//! is `details`, and every value bound for it passes through [`scrub`]
//! first, which removes the fields named in [`is_key_material`] at any depth.
//! The `payload` *envelope* (`{"payload": {…event…}, "meta": …}`) is unwrapped
//! before this applies, so it is not mistaken for key material.

use serde_json::Value;

/// Field names that may hold key material, compared without letter case and
/// without `_`/`-` (`encryptedNonce`, `encrypted_nonce`).
const KEY_MATERIAL: &[&str] = &["payload", "encryptednonce", "iv", "plaintext", "ciphertext"];

/// True when a field of this name must be dropped.
pub fn is_key_material(name: &str) -> bool {
    // Every listed name starts with one of these letters; most field
    // names are out on their first byte.
    let first = name.bytes().find(|b| *b != b'_' && *b != b'-');
    if name.len() > 32 || !matches!(first.map(|b| b | 0x20), Some(b'p' | b'e' | b'i' | b'c')) {
        return false;
    }
    let mut folded = [0u8; 32];
    let mut n = 0;
    for b in name.bytes().filter(|b| *b != b'_' && *b != b'-') {
        folded[n] = b.to_ascii_lowercase();
        n += 1;
    }
    let folded = &folded[..n];
    KEY_MATERIAL.iter().any(|k| k.as_bytes() == folded)
}

/// Removes key-material fields from `value`, at any depth, and the fields
/// whose value is an empty string (the contract has no empty strings).
pub fn scrub(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, v| !is_key_material(k) && v.as_str() != Some(""));
            map.values_mut().for_each(scrub);
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_without_case_or_separators() {
        for name in KEY_MATERIAL {
            let first = name.as_bytes()[0];
            assert!(
                b"peic".contains(&first),
                "{name}: the first-letter filter misses it"
            );
        }
        for name in [
            "payload",
            "Payload",
            "encryptedNonce",
            "encrypted_nonce",
            "IV",
            "cipher-text",
        ] {
            assert!(is_key_material(name), "{name}");
        }
        for name in ["keyId", "ivory", "payloads", "nonce"] {
            assert!(!is_key_material(name), "{name}");
        }
    }

    #[test]
    fn scrub_reaches_every_depth() {
        let mut value = serde_json::json!({
            "keep": 1,
            "payload": "secret",
            "nested": {"iv": "x", "empty": "", "list": [{"plaintext": "y", "ok": true}]}
        });
        scrub(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"keep": 1, "nested": {"list": [{"ok": true}]}})
        );
    }
}
