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
}
