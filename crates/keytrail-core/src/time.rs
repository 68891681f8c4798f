//! Event time: parsing the vendors' formats and writing the contract form.
//!
//! Vendors send RFC 3339 with drift: IBM writes `2019-11-18T19:56:53.57+0000`
//! (offset without a colon) beside `…Z`, `…+00:00` and `…-06:00`, with 0 to 9
//! fraction digits. All of them are accepted; the contract form is always
//! UTC with exactly three fraction digits (extra digits are truncated) and a
//! `Z`: `2026-03-24T18:00:18.936Z`.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, as milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Why a vendor time string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time {text:?} is not RFC 3339 with a UTC offset")]
pub struct TimeError {
    text: String,
}

/// Longest time string accepted (a 9-digit fraction and a `+00:00` offset
/// fit in 35 bytes; the rest is slack).
const MAX_TIME_LEN: usize = 48;

impl Timestamp {
    /// From milliseconds since the epoch.
    pub const fn from_millis(millis: i64) -> Timestamp {
        Timestamp(millis)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// The current time.
    pub fn now() -> Timestamp {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Timestamp(i64::try_from(since).unwrap_or(i64::MAX))
    }

    /// Parses any of the vendor time forms (see the module docs).
    ///
    /// The forms vendors actually send (`T`, `Z` or a numeric offset with
    /// or without its colon, 0 to 9 fraction digits) are read by a
    /// fixed-layout parser; anything else goes through chrono's RFC 3339
    /// parser, which also decides what is refused.
    pub fn parse_vendor(text: &str) -> Result<Timestamp, TimeError> {
        let bytes = crate::trim(text).as_bytes();
        let err = || TimeError {
            text: text.chars().take(64).collect(),
        };
        if bytes.len() < 20 || bytes.len() > MAX_TIME_LEN {
            return Err(err());
        }
        if let Some(millis) = parse_fixed(bytes) {
            return Ok(Timestamp(millis));
        }
        Timestamp::parse_with_chrono(bytes).ok_or_else(err)
    }

    /// The general path of [`Timestamp::parse_vendor`], after its length
    /// check.
    fn parse_with_chrono(bytes: &[u8]) -> Option<Timestamp> {
        let n = bytes.len();
        if !(20..=MAX_TIME_LEN).contains(&n) {
            return None;
        }
        // `+0000` / `-0600`: insert the colon RFC 3339 wants.
        let mut buf = [0u8; MAX_TIME_LEN + 1];
        let fixed: &[u8] = match bytes[n - 5] {
            b'+' | b'-' if bytes[n - 4..].iter().all(u8::is_ascii_digit) => {
                buf[..n - 2].copy_from_slice(&bytes[..n - 2]);
                buf[n - 2] = b':';
                buf[n - 1..=n].copy_from_slice(&bytes[n - 2..]);
                &buf[..=n]
            }
            _ => bytes,
        };
        let fixed = std::str::from_utf8(fixed).ok()?;
        let parsed = DateTime::parse_from_rfc3339(fixed).ok()?;
        Some(Timestamp(parsed.timestamp_millis()))
    }

    /// Writes the contract form into a fixed buffer and returns it as text.
    pub(crate) fn format(self, buf: &mut [u8; 32]) -> &str {
        buf[..24].copy_from_slice(&self.contract_form());
        // Only ASCII digits and separators were written.
        std::str::from_utf8(&buf[..24]).unwrap_or("1970-01-01T00:00:00.000Z")
    }

    /// The contract form, `YYYY-MM-DDTHH:MM:SS.mmmZ`: 24 ASCII bytes, so a
    /// writer of bytes can copy them without a UTF-8 check.
    pub(crate) fn contract_form(self) -> [u8; 24] {
        let days = self.0.div_euclid(MILLIS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let Ok(year @ 0..=9999) = u32::try_from(year) else {
            return self.contract_form_with_chrono();
        };
        // The time of day is below 86,400,000 ms, so it fits a u32, whose
        // divisions are cheaper than an i64's.
        let in_day = self.0.rem_euclid(MILLIS_PER_DAY) as u32;
        let seconds = in_day / 1000;
        write_parts([
            year,
            month as u32,
            day as u32,
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60,
            in_day % 1000,
        ])
    }

    /// [`Timestamp::contract_form`] for years outside 0..=9999 (clamped)
    /// and out of chrono's range (the epoch).
    fn contract_form_with_chrono(self) -> [u8; 24] {
        let Some(dt) = DateTime::<Utc>::from_timestamp_millis(self.0) else {
            return EPOCH;
        };
        write_parts([
            dt.year().clamp(0, 9999) as u32,
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.timestamp_subsec_millis(),
        ])
    }
}

/// What a time out of every range is written as.
const EPOCH: [u8; 24] = *b"1970-01-01T00:00:00.000Z";

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The two ASCII digits of every number below 100.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// The two digits of `n % 100`.
#[inline(always)]
fn pair(n: u32) -> [u8; 2] {
    DIGIT_PAIRS[(n % 100) as usize]
}

/// The contract form of year (below 10,000), month, day, hour, minute,
/// second and millisecond (below 1,000), each at its fixed place.
fn write_parts([year, month, day, hour, minute, second, millis]: [u32; 7]) -> [u8; 24] {
    let [y1, y2] = pair(year / 100);
    let [y3, y4] = pair(year);
    let [mo1, mo2] = pair(month);
    let [d1, d2] = pair(day);
    let [h1, h2] = pair(hour);
    let [mi1, mi2] = pair(minute);
    let [s1, s2] = pair(second);
    let [ms2, ms3] = pair(millis);
    let ms1 = b'0' + (millis / 100 % 10) as u8;
    [
        y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T', h1, h2, b':', mi1, mi2, b':', s1, s2,
        b'.', ms1, ms2, ms3, b'Z',
    ]
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The stem every strict form starts with: `0` where a digit goes.
const STEM: &[u8; 19] = b"0000-00-00T00:00:00";

/// The checks of the eight stem bytes from `at`, as words: which bits are
/// compared (a digit's high nibble, all of a separator), what they must
/// be (`0x3_`, the separator), what is added to each digit so that one
/// above `9` leaves `0x3_` (`0x06`; nothing on a separator), and the
/// digits' high nibbles.
const fn stem_word_checks(at: usize) -> [u64; 4] {
    let (mut compared, mut expected, mut add, mut digits) = (0u64, 0u64, 0u64, 0u64);
    let mut i = 0;
    while i < 8 {
        let shift = 8 * i;
        let c = STEM[at + i];
        if c == b'0' {
            compared |= 0xF0 << shift;
            expected |= 0x30 << shift;
            add |= 0x06 << shift;
            digits |= 0xF0 << shift;
        } else {
            compared |= 0xFF << shift;
            expected |= (c as u64) << shift;
        }
        i += 1;
    }
    [compared, expected, add, digits]
}

/// Where the three checked words of the stem start; together they cover
/// all 19 bytes.
const STEM_WORDS: [usize; 3] = [0, 8, 11];
const STEM_CHECKS: [[u64; 4]; 3] = [
    stem_word_checks(STEM_WORDS[0]),
    stem_word_checks(STEM_WORDS[1]),
    stem_word_checks(STEM_WORDS[2]),
];

/// True when `stem` is `YYYY-MM-DDTHH:MM:SS` with ASCII digits: a word at
/// a time, every byte of the word at once. A digit's high nibble must be
/// `3`; adding 6 then carries out of no byte, and keeps it `3` only for
/// `0` to `9`.
fn stem_is_well_formed(stem: &[u8; 19]) -> bool {
    let mut ok = true;
    for (at, [compared, expected, add, digits]) in STEM_WORDS.into_iter().zip(STEM_CHECKS) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&stem[at..at + 8]);
        let word = u64::from_le_bytes(bytes);
        ok &= word & compared == expected && word.wrapping_add(add) & digits == expected & digits;
    }
    ok
}

/// The strict forms: `YYYY-MM-DDTHH:MM:SS`, an optional `.` with 1 to 9
/// digits, then `Z`, `±HH:MM` or `±HHMM`, every field in range. `None`
/// for anything else (chrono decides then).
fn parse_fixed(b: &[u8]) -> Option<i64> {
    let stem: &[u8; 19] = b.get(..19)?.try_into().ok()?;
    if !stem_is_well_formed(stem) {
        return None;
    }
    // Every digit was checked above.
    let value = |c: u8| i64::from(c.wrapping_sub(b'0'));
    let two = |at: usize| value(stem[at]) * 10 + value(stem[at + 1]);
    let year = two(0) * 100 + two(2);
    let (month, day) = (two(5), two(8));
    let (hour, minute, second) = (two(11), two(14), two(17));
    let in_range = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    if !in_range {
        return None;
    }
    let digit = |at: usize| -> Option<i64> {
        let c = *b.get(at)?;
        c.is_ascii_digit().then(|| i64::from(c - b'0'))
    };
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(d) = digit(at) {
            if at - start < 3 {
                millis = millis * 10 + d;
            }
            at += 1;
        }
        let count = at - start;
        if !(1..=9).contains(&count) {
            return None;
        }
        for _ in count..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match *b.get(at..)? {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            if ![h1, h2, m1, m2].iter().all(u8::is_ascii_digit) {
                return None;
            }
            let hours = value(h1) * 10 + value(h2);
            let minutes = value(m1) * 10 + value(m2);
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        f.write_str(self.format(&mut buf))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 32];
        serializer.serialize_str(self.format(&mut buf))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_vendor(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> String {
        Timestamp::parse_vendor(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    }

    #[test]
    fn accepts_the_five_vendor_forms() {
        assert_eq!(
            norm("2019-11-18T19:56:53.57+0000"),
            "2019-11-18T19:56:53.570Z"
        );
        assert_eq!(norm("2026-03-24T18:00:18.936Z"), "2026-03-24T18:00:18.936Z");
        assert_eq!(
            norm("2020-03-08T12:22:01+00:00"),
            "2020-03-08T12:22:01.000Z"
        );
        assert_eq!(
            norm("2019-12-11T16:00:58-06:00"),
            "2019-12-11T22:00:58.000Z"
        );
        assert_eq!(norm("2019-12-20T16:38:06Z"), "2019-12-20T16:38:06.000Z");
    }

    #[test]
    fn truncates_extra_fraction_digits() {
        assert_eq!(
            norm("2020-05-13T19:09:42.267695+00:00"),
            "2020-05-13T19:09:42.267Z"
        );
        assert_eq!(
            norm("2020-05-13T19:09:42.999999999Z"),
            "2020-05-13T19:09:42.999Z"
        );
        assert_eq!(
            norm("2020-05-13T19:09:42.1-0130"),
            "2020-05-13T20:39:42.100Z"
        );
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "yesterday",
            "2020-05-13",
            "2020-05-13T19:09:42",
            "2020-13-13T19:09:42Z",
            "2020-05-13T19:09:42+0",
            "2020-05-13T19:09:42+0a:00",
            "2020-05-13T19:09:42-00:0a",
            "2020-05-13T19:09:42+000a",
            "2020-05-13T19:09:42.123456789012345678901234567890Z",
        ] {
            assert!(Timestamp::parse_vendor(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// A few thousand times spread over the years, with the fast parser's
    /// forms, against chrono.
    #[test]
    fn the_fixed_layout_parser_agrees_with_chrono() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let millis = (next() % 253_402_300_800_000) as i64 - 62_135_596_800_000 / 2;
            let base = Timestamp::from_millis(millis).to_string();
            let stem = &base[..19];
            let digits = &"123456789"[..(next() % 10) as usize];
            let fraction = if digits.is_empty() {
                String::new()
            } else {
                format!(".{digits}")
            };
            let hours = next() % 26;
            let minutes = next() % 62;
            let sign = if next() % 2 == 0 { '+' } else { '-' };
            for zone in [
                "Z".to_owned(),
                format!("{sign}{hours:02}:{minutes:02}"),
                format!("{sign}{hours:02}{minutes:02}"),
            ] {
                let text = format!("{stem}{fraction}{zone}");
                let fast = parse_fixed(text.as_bytes()).map(Timestamp::from_millis);
                let chrono = Timestamp::parse_with_chrono(text.as_bytes());
                if fast.is_some() {
                    assert_eq!(fast, chrono, "{text}");
                }
                assert_eq!(Timestamp::parse_vendor(&text).ok(), chrono, "{text}");
            }
        }
        for text in [
            "2024-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2000-02-29T23:59:59.999+23:59",
            "2020-01-01T24:00:00Z",
            "2020-01-01T00:00:60Z",
            "2020-01-01t00:00:00Z",
            "2020-01-01 00:00:00z",
            "2020-01-01T00:00:00.Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert_eq!(
                Timestamp::parse_vendor(text).ok(),
                Timestamp::parse_with_chrono(text.as_bytes()),
                "{text}"
            );
        }
    }

    /// Every byte at every place of the stem, and pairs of edge bytes at
    /// neighbouring places: the word checks take exactly a digit where
    /// `STEM` has `0` and exactly its separator elsewhere.
    #[test]
    fn the_stem_check_takes_exactly_its_layout() {
        let good = *b"2024-02-29T23:59:58";
        assert!(stem_is_well_formed(&good));
        let fits = |at: usize, byte: u8| {
            if STEM[at] == b'0' {
                byte.is_ascii_digit()
            } else {
                byte == STEM[at]
            }
        };
        for at in 0..19 {
            for byte in 0..=u8::MAX {
                let mut stem = good;
                stem[at] = byte;
                assert_eq!(
                    stem_is_well_formed(&stem),
                    fits(at, byte),
                    "{byte:#04x} at {at}"
                );
            }
        }
        let edges = [
            0x00, b'-', b'/', b'0', b'9', b':', b'?', b'T', 0xB0, 0xB9, 0xFF,
        ];
        for at in 0..18 {
            for first in edges {
                for second in edges {
                    let mut stem = good;
                    stem[at] = first;
                    stem[at + 1] = second;
                    assert_eq!(
                        stem_is_well_formed(&stem),
                        fits(at, first) && fits(at + 1, second),
                        "{first:#04x} {second:#04x} at {at}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_day_arithmetic_formats_as_chrono_does() {
        let mut buf = [0u8; 32];
        let mut millis = -62_167_219_200_000i64 - 86_400_000; // before year 0
        while millis < 253_402_300_800_000 + 86_400_000 {
            assert_eq!(
                Timestamp(millis).contract_form(),
                Timestamp(millis).contract_form_with_chrono(),
                "{millis}"
            );
            // And the digits as chrono writes them, where the year has four.
            let dt = DateTime::<Utc>::from_timestamp_millis(millis).expect("in range");
            if (0..=9999).contains(&dt.year()) {
                assert_eq!(
                    Timestamp(millis).format(&mut buf),
                    dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                    "{millis}"
                );
            }
            millis += 9_876_543_211;
        }
        for millis in [i64::MIN, i64::MAX, -1, 0, 951_782_400_000] {
            assert_eq!(
                Timestamp(millis).contract_form(),
                Timestamp(millis).contract_form_with_chrono()
            );
            assert_eq!(
                Timestamp(millis).format(&mut buf).as_bytes(),
                Timestamp(millis).contract_form()
            );
        }
    }

    #[test]
    fn formats_before_the_epoch() {
        assert_eq!(
            Timestamp::from_millis(-1).to_string(),
            "1969-12-31T23:59:59.999Z"
        );
    }
}
