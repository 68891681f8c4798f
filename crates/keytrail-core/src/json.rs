//! Facts about JSON text that need no parser.

/// How a JSON text is laid out outside its strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The deepest nesting of objects and arrays seen; the scan stops once
    /// it passes the limit it was given, so this is at most `limit + 1`.
    pub deepest: usize,
    /// True when whitespace stands between tokens (up to where the scan
    /// stopped).
    pub spaced: bool,
}

/// Scans `json` (not checked to be valid) outside its strings: its deepest
/// nesting, stopping as soon as that passes `limit`, and whether it holds
/// whitespace between tokens.
pub fn layout(json: &[u8], limit: usize) -> Layout {
    let mut out = Layout {
        deepest: 0,
        spaced: false,
    };
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                out.deepest = out.deepest.max(depth);
                if depth > limit {
                    break;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b' ' | b'\t' | b'\n' | b'\r' => out.spaced = true,
            _ => {}
        }
    }
    out
}

/// The characters of `json` when it is one JSON string that needs no
/// unescaping: a quote, then characters other than quotes, backslashes and
/// control characters, then a quote. Such a text is valid, compact JSON.
pub fn plain_string(json: &str) -> Option<&str> {
    let text = json.strip_prefix('"')?.strip_suffix('"')?;
    text.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\')
        .then_some(text)
}

/// True when `text` goes into a JSON string as it is: it holds no `"`, no
/// `\` and no byte below 0x20, so escaping would copy it unchanged.
pub fn is_plain(text: &str) -> bool {
    crate::event::find_json_special(text.as_bytes(), 0) == text.len()
}

/// True when `json` is one JSON integer as the grammar writes it: an
/// optional minus, then `0` or digits that do not start with `0`. Such a
/// text is valid, compact JSON, whatever its length.
pub fn is_integer(json: &str) -> bool {
    let digits = json.strip_prefix('-').unwrap_or(json).as_bytes();
    match digits {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_and_spaces_inside_strings_do_not_count() {
        let text = br#"{"a [ {":"x \" ] } y","b":[[1]]}"#;
        assert_eq!(
            layout(text, 10),
            Layout {
                deepest: 3,
                spaced: false
            }
        );
        assert!(layout(b"{ \"a\":1}", 10).spaced);
        assert!(layout(b"[1,\n2]", 10).spaced);
    }

    #[test]
    fn the_scan_stops_past_the_limit() {
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(layout(deep.as_bytes(), 5).deepest, 6);
        assert_eq!(layout(deep.as_bytes(), 100).deepest, 100);
    }

    #[test]
    fn plain_strings_and_integers_are_exactly_the_grammars() {
        assert_eq!(plain_string(r#""abc""#), Some("abc"));
        assert_eq!(plain_string(r#""""#), Some(""));
        assert_eq!(plain_string("\"caf\u{e9}\""), Some("caf\u{e9}"));
        assert_eq!(plain_string("\"a b\u{7f}\""), Some("a b\u{7f}"));
        for not_plain in [
            r#""a\"b""#,
            r#""a\\b""#,
            "\"tab\there\"",
            "\"nul\u{0}\"",
            "\"unit separator\u{1f}\"",
            r#""open"#,
            r#"""#,
            "12",
            "",
            r#" "a""#,
        ] {
            assert_eq!(plain_string(not_plain), None, "{not_plain:?}");
        }
        for text in ["", "abc", "caf\u{e9} \u{7f}", "a/b'c"] {
            assert!(is_plain(text), "{text:?}");
        }
        for text in [
            "\"",
            "a\\b",
            "tab\t",
            "\u{0}",
            "\u{1f}x",
            "0123456789abcdef\n",
        ] {
            assert!(!is_plain(text), "{text:?}");
        }
        for integer in ["0", "-0", "7", "-7", "10", "123456789012345678901234567890"] {
            assert!(is_integer(integer), "{integer:?}");
            assert!(serde_json::from_str::<&serde_json::value::RawValue>(integer).is_ok());
        }
        for not_integer in [
            "", "-", "01", "-01", "1.5", "1e3", "+1", " 1", "1 ", "--1", "0x1",
        ] {
            assert!(!is_integer(not_integer), "{not_integer:?}");
        }
    }
}
