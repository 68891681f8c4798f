//! `str::trim` for the hot path.

/// `str::trim`, without decoding characters when the text starts and ends
/// with a visible ASCII character, as vendor names, times, CRNs and levels
/// do: then there is nothing to trim, and two byte tests say so.
#[inline]
pub fn trim(text: &str) -> &str {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::trim;

    #[test]
    fn trims_as_str_trim_does() {
        for text in [
            "",
            " ",
            "a",
            " a ",
            "a\u{a0}",
            "\u{2003}b",
            "b\u{2003}",
            "x y",
            "\tz\r",
            "~!",
            "\u{7f}",
            "\u{85}x\u{85}",
            "é",
        ] {
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }
}
