//! Sixteen bytes at a time: the byte searches of the hot path (the
//! normalizer's string scan, unescaping and control-byte pass, the CRN
//! split) as one compare or minimum per byte value over sixteen lanes and
//! one bit mask, with no `unsafe` (`wide` uses SSE2, which every x86-64
//! has, and falls back to plain arrays where it knows no vector unit).

use wide::u8x16;

/// The sixteen bytes at `at`, if the text has them.
#[inline(always)]
pub fn chunk(bytes: &[u8], at: usize) -> Option<[u8; 16]> {
    bytes.get(at..at.checked_add(16)?)?.try_into().ok()
}

/// Bit `i` set where `chunk[i]` is `byte`.
#[inline(always)]
pub fn eq(chunk: [u8; 16], byte: u8) -> u32 {
    u8x16::from(chunk).simd_eq(u8x16::splat(byte)).to_bitmask()
}

/// Bit `i` set where `chunk[i]` is `a` or `b`.
#[inline(always)]
pub fn eq2(chunk: [u8; 16], a: u8, b: u8) -> u32 {
    let lanes = u8x16::from(chunk);
    (lanes.simd_eq(u8x16::splat(a)) | lanes.simd_eq(u8x16::splat(b))).to_bitmask()
}

/// True when some byte of `bytes` is below `limit`: the smallest byte of
/// each lane, sixty-four bytes a step with no branch but the loop's, then
/// sixteen a step, then the last sixteen (overlapping what was read); a
/// byte loop only for a text under sixteen bytes.
pub fn any_below(bytes: &[u8], limit: u8) -> bool {
    let lanes = |chunk: &[u8]| u8x16::from(<[u8; 16]>::try_from(chunk).unwrap_or([u8::MAX; 16]));
    let mut least = u8x16::splat(u8::MAX);
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        let (a, b) = block.split_at(32);
        let (a0, a1) = a.split_at(16);
        let (b0, b1) = b.split_at(16);
        least = least.min(lanes(a0).min(lanes(a1)).min(lanes(b0).min(lanes(b1))));
    }
    let mut chunks = blocks.remainder().chunks_exact(16);
    for chunk in &mut chunks {
        least = least.min(lanes(chunk));
    }
    if !chunks.remainder().is_empty() {
        match bytes.len().checked_sub(16) {
            Some(last) => least = least.min(lanes(bytes.get(last..).unwrap_or_default())),
            None => return bytes.iter().any(|&b| b < limit),
        }
    }
    // A lane is below the limit when the limit's predecessor is not below
    // it (`limit` 0 has no such byte).
    let Some(most) = limit.checked_sub(1) else {
        return false;
    };
    least.min(u8x16::splat(most)).simd_eq(least).to_bitmask() != 0
}

/// `marks` of the bytes from `at` to the end of a text with fewer than
/// sixteen left there (bit 0 stands for `at`): the text's last sixteen
/// bytes are tested and the marks before `at` shifted out, so the end of a
/// text costs no byte loop; no marks from a start past the end. `None`
/// when the text is under sixteen bytes, or when a whole chunk is left at
/// `at`.
#[inline(always)]
pub fn rest(bytes: &[u8], at: usize, marks: impl Fn([u8; 16]) -> u32) -> Option<u32> {
    let last = bytes.len().checked_sub(16)?;
    let skip = at.checked_sub(last).filter(|&skip| skip > 0)?;
    let found = marks(chunk(bytes, last)?);
    Some(u32::try_from(skip).map_or(0, |skip| found.checked_shr(skip).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_mark_exactly_the_bytes_asked_for() {
        // Every byte value against every place, beside its neighbours
        // (one above and one below, and the high bit flipped).
        for byte in 0..=u8::MAX {
            for place in 0..16 {
                let mut bytes = [byte.wrapping_add(1); 16];
                bytes[place] = byte;
                if let Some(before) = place.checked_sub(1) {
                    bytes[before] = byte.wrapping_sub(1);
                }
                if let Some(after) = bytes.get_mut(place + 2) {
                    *after = byte ^ 0x80;
                }
                let expected = |a: u8, b: u8| {
                    bytes
                        .iter()
                        .enumerate()
                        .filter(|&(_, &x)| x == a || x == b)
                        .fold(0u32, |mask, (i, _)| mask | 1 << i)
                };
                assert_eq!(eq(bytes, byte), expected(byte, byte), "{byte} {place}");
                assert_eq!(
                    eq2(bytes, b'"', byte),
                    expected(b'"', byte),
                    "{byte} {place}"
                );
                assert_eq!(
                    eq2(bytes, byte, b':'),
                    expected(byte, b':'),
                    "{byte} {place}"
                );
            }
        }
    }

    #[test]
    fn the_rest_holds_the_marks_from_its_start_on() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len)
                .map(|i| if i % 3 == 0 { b':' } else { b'a' })
                .collect();
            for at in 0..=len + 1 {
                let got = rest(&bytes, at, |chunk| eq(chunk, b':'));
                if len < 16 || at + 16 <= len {
                    assert_eq!(got, None, "{len} {at}");
                    continue;
                }
                let expected = (at..len)
                    .filter(|&i| i % 3 == 0)
                    .fold(0u32, |mask, i| mask | 1 << (i - at));
                assert_eq!(got, Some(expected), "{len} {at}");
            }
            if len >= 16 {
                assert_eq!(rest(&bytes, usize::MAX, |chunk| eq(chunk, b':')), Some(0));
            }
        }
    }

    #[test]
    fn a_byte_below_the_limit_is_seen_anywhere() {
        for limit in [0, 1, 0x20, 0x80, u8::MAX] {
            for len in 0..200 {
                let clean = vec![limit; len];
                assert!(!any_below(&clean, limit), "{limit} {len}");
                for at in 0..len {
                    for byte in [0, limit.wrapping_sub(1), limit / 2] {
                        let mut bytes = clean.clone();
                        bytes[at] = byte;
                        assert_eq!(
                            any_below(&bytes, limit),
                            byte < limit,
                            "{limit} {len} {at} {byte}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn chunks_are_there_only_whole() {
        let bytes: Vec<u8> = (0..40).collect();
        assert_eq!(chunk(&bytes, 0).map(|c| c[0]), Some(0));
        assert_eq!(chunk(&bytes, 24).map(|c| c[15]), Some(39));
        assert_eq!(chunk(&bytes, 25), None);
        assert_eq!(chunk(&bytes, usize::MAX), None);
    }
}
