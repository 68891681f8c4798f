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
    pub fn parse_vendor(text: &str) -> Result<Timestamp, TimeError> {
        let bytes = text.trim().as_bytes();
        let err = || TimeError {
            text: text.chars().take(64).collect(),
        };
        if bytes.len() < 20 || bytes.len() > MAX_TIME_LEN {
            return Err(err());
        }
        // `+0000` / `-0600`: insert the colon RFC 3339 wants.
        let mut buf = [0u8; MAX_TIME_LEN + 1];
        let n = bytes.len();
        let fixed: &[u8] = match bytes[n - 5] {
            b'+' | b'-' if bytes[n - 4..].iter().all(u8::is_ascii_digit) => {
                buf[..n - 2].copy_from_slice(&bytes[..n - 2]);
                buf[n - 2] = b':';
                buf[n - 1..=n].copy_from_slice(&bytes[n - 2..]);
                &buf[..=n]
            }
            _ => bytes,
        };
        let fixed = std::str::from_utf8(fixed).map_err(|_| err())?;
        let parsed = DateTime::parse_from_rfc3339(fixed).map_err(|_| err())?;
        Ok(Timestamp(parsed.timestamp_millis()))
    }

    /// Writes the contract form into a fixed buffer and returns it as text.
    fn format(self, buf: &mut [u8; 32]) -> &str {
        let Some(dt) = DateTime::<Utc>::from_timestamp_millis(self.0) else {
            return "1970-01-01T00:00:00.000Z";
        };
        let year = dt.year().clamp(0, 9999) as u32;
        let millis = dt.timestamp_subsec_millis();
        let fields: [(usize, u32, usize); 7] = [
            (0, year, 4),
            (5, dt.month(), 2),
            (8, dt.day(), 2),
            (11, dt.hour(), 2),
            (14, dt.minute(), 2),
            (17, dt.second(), 2),
            (20, millis, 3),
        ];
        buf[..24].copy_from_slice(b"0000-00-00T00:00:00.000Z");
        for (at, mut value, width) in fields {
            for i in (at..at + width).rev() {
                buf[i] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        // Only ASCII digits and separators were written.
        std::str::from_utf8(&buf[..24]).unwrap_or("1970-01-01T00:00:00.000Z")
    }
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
            "2020-05-13T19:09:42.123456789012345678901234567890Z",
        ] {
            assert!(Timestamp::parse_vendor(bad).is_err(), "{bad:?} accepted");
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
