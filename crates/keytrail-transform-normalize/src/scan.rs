//! The on-demand reader: the normalizer's fast path from JSON text to the
//! vendor structs of [`crate::raw`].
//!
//! One forward pass over the bytes. Fields the contract reads are taken as
//! borrowed slices of the input (decoded only when they hold escapes);
//! everything else is skipped: validated as JSON, never built. Strings are
//! scanned for the bytes that end a run: in the usual line, which one
//! vectorized pass shows to hold no control byte, only `"` and `\`,
//! sixteen bytes a step ([`keytrail_core::lanes`]); otherwise control
//! bytes too, a word at a time.
//! Nesting is counted on the way, so no separate depth pass is needed.
//!
//! It fills exactly the structs serde_json fills through the `Deserialize`
//! impls of `raw` and `de`, which stay the reference: whenever the reader
//! meets something whose meaning it does not reproduce byte for byte, it
//! gives up with [`Fallback`] and the caller runs the serde_json path on
//! the same text. That covers every invalid input (so rejections and their
//! messages are serde_json's), duplicate fields (an error for serde's
//! derive), `\u` escapes (surrogate rules), numbers that are not exact
//! integers in a field that is read (serde_json's float rules), object keys
//! with escapes, and nesting past the limit (the reference reports it as
//! `too_deep`). Real events take the fast path; the property tests check
//! that both paths agree wherever the fast one answers.

use std::borrow::Cow;
use std::cell::Cell;

use keytrail_core::DetailsBuilder;
use keytrail_core::event::find_json_special;
use keytrail_core::lanes::{self, chunk as chunk_at};

use crate::Texts;
use crate::de::{Embedded, Flag, Int, Obj, Str};
use crate::material::is_key_material;
use crate::raw::{self, Credential, Data, DataFields, Host, Initiator, ReasonRaw, TargetRaw, Top};

/// The reader leaves this text to serde_json (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fallback;

type Result<T> = std::result::Result<T, Fallback>;

/// Reads one event object (the whole text, whitespace around it allowed)
/// into `top`, which starts empty; after a [`Fallback`] it holds a part.
/// Also says whether a text it kept had an escape.
pub(crate) fn read_top<'a>(text: &'a str, max_depth: usize, top: &mut Top<'a>) -> Result<Texts> {
    let mut reader = Reader::new(text, max_depth);
    reader.orders = ORDERS.get();
    reader.ws();
    let read = reader.top(top, TopField::FIRST);
    ORDERS.set(reader.orders);
    read?;
    reader.end()?;
    Ok(reader.texts())
}

thread_local! {
    /// The order of the keys in the last events this thread read.
    static ORDERS: Cell<Orders> = const { Cell::new(Orders::NEW) };
}

/// The [`KeyOrder`] of each kind of object the reader reads by name.
#[derive(Debug, Clone, Copy)]
struct Orders {
    /// An event's fields; the guesses for the first key of an event and
    /// of an envelope's inner event have places of their own
    /// ([`TopField::FIRST`], [`TopField::FIRST_INNER`]).
    top: KeyOrder<{ TopField::COUNT + 2 }>,
    initiator: KeyOrder<{ INITIATOR.len() + 1 }>,
    credential: KeyOrder<{ CREDENTIAL.len() + 1 }>,
    host: KeyOrder<{ HOST.len() + 1 }>,
    target: KeyOrder<{ TARGET.len() + 1 }>,
    reason: KeyOrder<{ REASON.len() + 1 }>,
}

impl Orders {
    const NEW: Orders = Orders {
        top: KeyOrder::NEW,
        initiator: KeyOrder::NEW,
        credential: KeyOrder::NEW,
        host: KeyOrder::NEW,
        target: KeyOrder::NEW,
        reason: KeyOrder::NEW,
    };
}

/// For each field of an object (by its index), the field that came after
/// it the last time it was read: a guess at the next key.
///
/// A producer writes its events' keys in one order, so after `action`
/// comes what came after it last time. Trying a guess costs one masked
/// comparison of sixteen bytes against the key's [`Token`], where reading
/// a key costs a search for its closing quote and a lookup of its name.
/// A wrong guess costs only that comparison: the key is then read as any
/// other, and the guess learned. A key that names no field (`observer`)
/// is skipped and leaves the last field as it was, so the field after it
/// is learned as coming after the field before it. The guesses change no
/// result, only its cost (what was learned from a line that goes to the
/// fallback may be kept in part).
///
/// Index `fields.len()` holds the guess for an object's first key (and
/// for events, [`TopField::FIRST_INNER`] that for an envelope's inner
/// event), so `M` is the number of fields and one (or two).
#[derive(Debug, Clone, Copy)]
struct KeyOrder<const M: usize>([u8; M]);

impl<const M: usize> KeyOrder<M> {
    /// Nothing learned yet.
    const NEW: KeyOrder<M> = KeyOrder([u8::MAX; M]);
    /// The guess after `last` (a field, or the place of the first key).
    #[inline]
    fn after(&self, last: usize) -> Option<usize> {
        self.0.get(last).map(|&next| usize::from(next))
    }

    /// Learns that `field` came after `last`.
    #[inline]
    fn learn(&mut self, last: usize, field: usize) {
        if let Some(slot) = self.0.get_mut(last) {
            *slot = u8::try_from(field).unwrap_or(u8::MAX);
        }
    }
}

/// An object key as compact JSON writes it, `"name":`, as the first
/// bytes of a sixteen-byte word, with the mask of those bytes: the key is
/// at a place when the sixteen bytes there agree with the word under the
/// mask.
#[derive(Debug, Clone, Copy)]
struct Token {
    name: &'static [u8],
    word: u128,
    mask: u128,
    len: usize,
}

impl Token {
    /// The token of `name`. A name of over 13 bytes does not fit in
    /// sixteen with its quotes and colon: its token never matches, and
    /// the key is read as any other. (Its word's first byte is 0xff,
    /// which no `str` holds.)
    const fn of(name: &'static [u8]) -> Token {
        let len = name.len() + 3;
        if len > 16 {
            return Token {
                name,
                word: 0xff,
                mask: 0xff,
                len,
            };
        }
        let mut bytes = [0u8; 16];
        bytes[0] = b'"';
        let mut i = 0;
        while i < name.len() {
            bytes[i + 1] = name[i];
            i += 1;
        }
        bytes[len - 2] = b'"';
        bytes[len - 1] = b':';
        let mask = if len == 16 {
            u128::MAX
        } else {
            (1u128 << (8 * len)) - 1
        };
        Token {
            name,
            word: u128::from_le_bytes(bytes),
            mask,
            len,
        }
    }
}

/// The fields of [`Initiator`] the reader reads, by index.
const INITIATOR: [Token; 4] = [
    Token::of(b"id"),
    Token::of(b"name"),
    Token::of(b"credential"),
    Token::of(b"host"),
];
/// The fields of [`Credential`].
const CREDENTIAL: [Token; 1] = [Token::of(b"type")];
/// The fields of [`Host`].
const HOST: [Token; 2] = [Token::of(b"address"), Token::of(b"agent")];
/// The fields of [`TargetRaw`].
const TARGET: [Token; 3] = [Token::of(b"id"), Token::of(b"name"), Token::of(b"typeURI")];
/// The fields of [`ReasonRaw`].
const REASON: [Token; 3] = [
    Token::of(b"reasonCode"),
    Token::of(b"reasonType"),
    Token::of(b"reasonForFailure"),
];

/// Walks one JSON value of any type (the whole text, whitespace around it
/// allowed), validating it as [`Reader::skip`] does and keeping nothing.
pub(crate) fn walk(text: &str, max_depth: usize) -> Result<()> {
    let mut reader = Reader::new(text, max_depth);
    reader.skip()?;
    reader.end()
}

/// [`read_top`] into a new [`Top`].
#[cfg(test)]
pub(crate) fn top(text: &str, max_depth: usize) -> Result<Top<'_>> {
    let mut top = Top::default();
    read_top(text, max_depth, &mut top)?;
    Ok(top)
}

/// Reads an IBM `requestData`/`responseData` sent as a JSON-encoded string,
/// and says whether a text it kept had an escape.
pub(crate) fn data(text: &str, max_depth: usize) -> Result<(Data, Texts)> {
    let mut reader = Reader::new(text, max_depth);
    let mut data = Data::default();
    reader.ws();
    reader.data(&mut data)?;
    reader.end()?;
    Ok((data, reader.texts()))
}

/// A string as it appears between its quotes: where it is in the input.
#[derive(Debug, Clone, Copy)]
struct Raw {
    start: usize,
    end: usize,
    /// It holds (simple) escapes and must be decoded.
    escaped: bool,
}

/// The value of a string whose raw text is `text`. Only the simple
/// escapes can be there: the scanner leaves `\u` to the fallback.
///
/// The usual callers are IBM's JSON-encoded `requestData` and a LogDNA
/// `_line` holding a whole event: hundreds of bytes with an escaped quote
/// every dozen. Each sixteen bytes are copied whole and the write position
/// moves up to the first backslash among them, so runs between escapes
/// cost no call. The write position never passes the read position, so
/// `out` needs no room past the text's length. `None` only if the result
/// were not UTF-8, which replacing ASCII escapes in a `str` cannot cause.
fn unescape(text: &str) -> Option<String> {
    let src = text.as_bytes();
    let mut out = vec![0u8; src.len()];
    let (mut read, mut written) = (0, 0);
    loop {
        let at = match chunk_at(src, read) {
            Some(chunk) => {
                out.get_mut(written..written + 16)?.copy_from_slice(&chunk);
                let marks = lanes::eq(chunk, b'\\');
                if marks == 0 {
                    read += 16;
                    written += 16;
                    continue;
                }
                marks.trailing_zeros() as usize
            }
            None => {
                let rest = src.get(read..)?;
                let at = memchr::memchr(b'\\', rest).unwrap_or(rest.len());
                out.get_mut(written..written + at)?
                    .copy_from_slice(rest.get(..at)?);
                if at == rest.len() {
                    written += at;
                    break;
                }
                at
            }
        };
        read += at;
        written += at;
        let escape = src.get(read + 1).copied().unwrap_or(b'\\');
        *out.get_mut(written)? = match escape {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            // `"`, `\` and `/` stand for themselves.
            other => other,
        };
        read += 2;
        written += 1;
    }
    out.truncate(written);
    String::from_utf8(out).ok()
}

/// An integer exactly as serde_json hands it to a visitor.
#[derive(Debug, Clone, Copy)]
enum Integer {
    Unsigned(u64),
    Signed(i64),
}

/// Bit `i` set where `chunk[i]` is `"` or `\`.
#[inline(always)]
fn quote_or_backslash(chunk: [u8; 16]) -> u32 {
    lanes::eq2(chunk, b'"', b'\\')
}

/// The index of the first `"` or `\` at or after `from`, or the length,
/// in text known to hold no control byte: sixteen bytes a step, inline
/// (keys and most values end within the first steps). Under sixteen bytes
/// from the end, the text's last sixteen are tested instead, the marks
/// before `from`'s place shifted out, so the end of a line costs no byte
/// loop either.
#[inline]
fn find_quote_or_backslash(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    for &chunk in bytes.get(from..).unwrap_or_default().as_chunks::<16>().0 {
        let marks = quote_or_backslash(chunk);
        if marks != 0 {
            return at + marks.trailing_zeros() as usize;
        }
        at += 16;
    }
    if let Some(marks) = lanes::rest(bytes, at, quote_or_backslash) {
        return if marks != 0 {
            at + marks.trailing_zeros() as usize
        } else {
            bytes.len()
        };
    }
    // A text under sixteen bytes.
    bytes
        .iter()
        .skip(at)
        .position(|&b| b == b'"' || b == b'\\')
        .map_or(bytes.len(), |i| at + i)
}

/// Where the usual key that starts at `from` ends: the index of its
/// closing quote when one of the first 16 bytes is, no backslash comes
/// before it, and a colon follows it at once; `None` for any other key,
/// and for a usual one less than 16 bytes from the end of the text (the
/// general path reads both). In text known to hold no control byte.
#[inline(always)]
fn short_key_end(bytes: &[u8], from: usize) -> Option<usize> {
    let marks = quote_or_backslash(chunk_at(bytes, from)?);
    if marks == 0 {
        return None;
    }
    let end = from + marks.trailing_zeros() as usize;
    (bytes.get(end..end + 2) == Some(b"\":")).then_some(end)
}

/// True when the text holds a byte below 0x20 anywhere (a line is about a
/// kilobyte, and usually clean: one branch-free pass of vector minimums).
fn has_control_byte(bytes: &[u8]) -> bool {
    lanes::any_below(bytes, 0x20)
}

/// Marks field `bit` as read; a second time is serde's duplicate-field
/// error, left to the fallback.
#[inline]
fn once(seen: &mut u64, bit: u32) -> Result<()> {
    let mask = 1u64 << bit;
    if *seen & mask != 0 {
        return Err(Fallback);
    }
    *seen |= mask;
    Ok(())
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    max_depth: usize,
    /// No byte below 0x20 anywhere (the usual case: one compact line), so
    /// no string can hold one and the scan looks for `"` and `\` only.
    clean: bool,
    /// A string kept as a text had an escape: the one way a text this
    /// reader keeps can hold a quote, a backslash or a control byte.
    escaped_text: bool,
    /// The guesses at the next key.
    orders: Orders,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str, max_depth: usize) -> Reader<'a> {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            max_depth,
            clean: !has_control_byte(text.as_bytes()),
            escaped_text: false,
            orders: Orders::NEW,
        }
    }

    /// Whether the texts kept so far can be written as they are. A string
    /// without escapes holds no quote and no backslash, and the scan gives
    /// up on a raw control byte in one; numbers kept as text are digits.
    /// Embedded JSON text is not counted: the reader of that text judges
    /// what it keeps of it.
    fn texts(&self) -> Texts {
        if self.escaped_text {
            Texts::MayNeedEscaping
        } else {
            Texts::Plain
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips JSON whitespace. Every other byte that can come next is above
    /// the space, so one comparison settles the usual case.
    #[inline]
    fn ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if b > b' ' || !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return;
            }
            self.pos += 1;
        }
    }

    /// The first byte of the next value.
    #[inline]
    fn next_byte(&mut self) -> Result<u8> {
        self.ws();
        self.peek().ok_or(Fallback)
    }

    /// Only whitespace may follow the value.
    fn end(&mut self) -> Result<()> {
        self.ws();
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// Consumes `byte`, or gives up.
    #[inline]
    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// A string, the opening quote already consumed.
    #[inline(always)]
    fn string(&mut self) -> Result<Raw> {
        let start = self.pos;
        let mut at = start;
        let mut escaped = false;
        loop {
            at = if self.clean {
                find_quote_or_backslash(self.bytes, at)
            } else {
                find_json_special(self.bytes, at)
            };
            match self.bytes.get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(Raw {
                        start,
                        end: at,
                        escaped,
                    });
                }
                Some(b'\\') => match self.bytes.get(at + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                        escaped = true;
                        at += 2;
                    }
                    // `\u` (surrogate rules), an invalid escape, the end.
                    _ => return Err(Fallback),
                },
                // A control character, or the end of the input.
                _ => return Err(Fallback),
            }
        }
    }

    /// The raw bytes of a string.
    #[inline]
    fn bytes_of(&self, raw: Raw) -> &'a [u8] {
        self.bytes.get(raw.start..raw.end).unwrap_or_default()
    }

    /// A string's value, borrowed unless it has escapes.
    #[inline(always)]
    fn decode(&self, raw: Raw) -> Result<Cow<'a, str>> {
        if raw.escaped {
            return self.decode_escaped(raw);
        }
        self.text
            .get(raw.start..raw.end)
            .map(Cow::Borrowed)
            .ok_or(Fallback)
    }

    /// [`Reader::decode`] of a string with escapes, out of the way of the
    /// usual case.
    #[cold]
    #[inline(never)]
    fn decode_escaped(&self, raw: Raw) -> Result<Cow<'a, str>> {
        let text = self.text.get(raw.start..raw.end).ok_or(Fallback)?;
        unescape(text).map(Cow::Owned).ok_or(Fallback)
    }

    /// An object key as a field name; a key with escapes is left to
    /// serde_json.
    #[inline]
    fn name(&self, raw: Raw) -> Result<&'a str> {
        if raw.escaped {
            return Err(Fallback);
        }
        self.text.get(raw.start..raw.end).ok_or(Fallback)
    }

    /// An object key as bytes, for the field tables; escapes are left to
    /// serde_json.
    #[inline]
    fn name_bytes(&self, raw: Raw) -> Result<&'a [u8]> {
        if raw.escaped {
            return Err(Fallback);
        }
        Ok(self.bytes_of(raw))
    }

    /// A number, checked against the JSON grammar: its text, and whether
    /// it is an integer (no fraction, no exponent).
    fn number(&mut self) -> Result<(&'a str, bool)> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Fallback),
        }
        let mut integral = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.some_digits()?;
            integral = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.some_digits()?;
            integral = false;
        }
        let text = self.text.get(start..self.pos).ok_or(Fallback)?;
        Ok((text, integral))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn some_digits(&mut self) -> Result<()> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            Err(Fallback)
        } else {
            Ok(())
        }
    }

    /// A number handed to a visitor: serde_json's integers exactly; the
    /// rest (fractions, exponents, integers past 64 bits, `-0`, which
    /// serde_json turns into floats) is left to the fallback.
    fn integer(&mut self) -> Result<(&'a str, Integer)> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        // The value is summed up as the digits are read, in one pass.
        let magnitude = match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                0
            }
            Some(first @ b'1'..=b'9') => {
                self.pos += 1;
                let mut value = u64::from(first - b'0');
                while let Some(digit @ b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                        .ok_or(Fallback)?;
                }
                value
            }
            _ => return Err(Fallback),
        };
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return Err(Fallback);
        }
        let value = if negative {
            if magnitude == 0 {
                return Err(Fallback);
            }
            Integer::Signed(0i64.checked_sub_unsigned(magnitude).ok_or(Fallback)?)
        } else {
            Integer::Unsigned(magnitude)
        };
        let text = self.text.get(start..self.pos).ok_or(Fallback)?;
        Ok((text, value))
    }

    fn literal(&mut self, word: &[u8]) -> Result<()> {
        if self
            .bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// `true`, `false` or `null`; `None` for null.
    fn literal_value(&mut self, first: u8) -> Result<Option<bool>> {
        match first {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => Err(Fallback),
        }
    }

    /// One level deeper; past the limit is the fallback's `too_deep`.
    #[inline]
    fn enter(&mut self) -> Result<()> {
        self.pos += 1;
        self.depth += 1;
        if self.depth > self.max_depth {
            Err(Fallback)
        } else {
            Ok(())
        }
    }

    /// At `{`: opens the object and reads its first key, if any.
    fn first_key(&mut self) -> Result<Option<Raw>> {
        if self.open()? {
            self.key().map(Some)
        } else {
            Ok(None)
        }
    }

    /// After a value inside an object: the next key, or `None` at `}`.
    fn next_key(&mut self) -> Result<Option<Raw>> {
        if self.more()? {
            self.key().map(Some)
        } else {
            Ok(None)
        }
    }

    /// At `{`: opens the object; true when a key follows, false when the
    /// object is empty (and closed).
    #[inline]
    fn open(&mut self) -> Result<bool> {
        self.enter()?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After a value inside an object: true at the `,` before another
    /// key (consumed, with the whitespace after it), false at the `}`
    /// (consumed: the object is closed).
    #[inline]
    fn more(&mut self) -> Result<bool> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(true)
            }
            Some(b'}') => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(Fallback),
        }
    }

    /// `"key"` and the colon after it. The usual key (compact text, no
    /// escape, under 16 bytes, the colon right after it) is read here with
    /// no call, so this small part inlines where keys are read; any other
    /// goes through [`Reader::key_general`].
    #[inline]
    fn key(&mut self) -> Result<Raw> {
        if self.clean
            && self.peek() == Some(b'"')
            && let Some(end) = short_key_end(self.bytes, self.pos + 1)
        {
            let start = self.pos + 1;
            self.pos = end + 2;
            return Ok(Raw {
                start,
                end,
                escaped: false,
            });
        }
        self.key_general()
    }

    /// Consumes `token` when the key at the reader's place is it: a
    /// token that fits holds no byte that needs a check, so a match is a
    /// valid key and its colon, whatever comes after it. A key less than
    /// sixteen bytes from the end of the text is not compared: it is read
    /// as any other.
    #[inline(always)]
    fn at_token(&mut self, token: Token) -> bool {
        let Some(chunk) = chunk_at(self.bytes, self.pos) else {
            return false;
        };
        if (u128::from_le_bytes(chunk) ^ token.word) & token.mask != 0 {
            return false;
        }
        self.pos += token.len;
        true
    }

    /// A key of [`Top`] and its colon: the field it names, if any, the
    /// guess after `last` tried first (see [`KeyOrder`]). A field is
    /// marked as read in `seen` and becomes `last`.
    #[inline(always)]
    fn top_key(&mut self, last: &mut usize, seen: &mut u64) -> Result<Option<TopField>> {
        let guess = self
            .orders
            .top
            .after(*last)
            .and_then(|i| TopField::ALL.get(i).copied());
        let field = match guess {
            Some(field) if self.at_token(field.token()) => field,
            _ => {
                let raw = self.key()?;
                match TopField::of(self.name_bytes(raw)?) {
                    Some(field) => field,
                    None => return Ok(None),
                }
            }
        };
        once(seen, field as u32)?;
        self.orders.top.learn(*last, field as usize);
        *last = field as usize;
        Ok(Some(field))
    }

    /// A key of an object whose fields are `fields`, and its colon: the
    /// index of the field it names, if any, the guess after `last` in the
    /// object's `order` tried first. A field is marked as read in `seen`
    /// and becomes `last`.
    #[inline(always)]
    fn field<const M: usize>(
        &mut self,
        fields: &[Token],
        order: &mut KeyOrder<M>,
        last: &mut usize,
        seen: &mut u64,
    ) -> Result<Option<usize>> {
        let guess = order.after(*last).and_then(|i| Some((i, *fields.get(i)?)));
        let field = match guess {
            Some((i, token)) if self.at_token(token) => i,
            _ => {
                let raw = self.key()?;
                let name = self.name_bytes(raw)?;
                match fields.iter().position(|field| field.name == name) {
                    Some(i) => i,
                    None => return Ok(None),
                }
            }
        };
        once(seen, field as u32)?;
        order.learn(*last, field);
        *last = field;
        Ok(Some(field))
    }

    /// [`Reader::key`] for every key.
    #[inline(never)]
    fn key_general(&mut self) -> Result<Raw> {
        self.expect(b'"')?;
        let key = self.string()?;
        self.ws();
        self.expect(b':')?;
        Ok(key)
    }

    /// Skips any value, validating it.
    fn skip(&mut self) -> Result<()> {
        match self.next_byte()? {
            b'"' => {
                self.pos += 1;
                self.string().map(drop)
            }
            b'{' => {
                let mut key = self.first_key()?;
                while key.is_some() {
                    self.skip()?;
                    key = self.next_key()?;
                }
                Ok(())
            }
            b'[' => self.skip_array(),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            first => self.literal_value(first).map(drop),
        }
    }

    fn skip_array(&mut self) -> Result<()> {
        self.enter()?;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            self.skip()?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Fallback),
            }
        }
    }

    /// A value of a type the field does not take: skipped, as serde's
    /// visitors do (a number still has to be one serde_json reads).
    fn skip_other(&mut self, first: u8) -> Result<()> {
        match first {
            b'-' | b'0'..=b'9' => self.integer().map(drop),
            b'"' => {
                self.pos += 1;
                self.string().map(drop)
            }
            b'{' | b'[' => self.skip(),
            _ => self.literal_value(first).map(drop),
        }
    }

    /// A [`Str`] field.
    fn text(&mut self) -> Result<Str<'a>> {
        self.str_field(true)
    }

    /// A [`Str`] field that holds JSON text to be read again (a LogDNA
    /// `_line`): its escapes are not counted, since the text's own reader
    /// judges what is kept of it.
    fn json_text(&mut self) -> Result<Str<'a>> {
        self.str_field(false)
    }

    /// A [`Str`] field; an escape in it is noted when it is `kept` as a
    /// text of the event. The usual value, a string right after the colon
    /// in a clean line, with no escape, is read here; anything else by
    /// [`Reader::str_field_other`], out of line, so that this part stays
    /// small and saves fewer registers.
    #[inline(always)]
    fn str_field(&mut self, kept: bool) -> Result<Str<'a>> {
        if self.clean && self.peek() == Some(b'"') {
            let start = self.pos + 1;
            let end = find_quote_or_backslash(self.bytes, start);
            if self.bytes.get(end) == Some(&b'"')
                && let Some(text) = self.text.get(start..end)
            {
                self.pos = end + 1;
                return Ok(Str(Some(Cow::Borrowed(text))));
            }
        }
        self.str_field_other(kept)
    }

    /// [`Reader::str_field`] for whitespace first, a string with escapes,
    /// a line with control bytes, a number or another value.
    #[inline(never)]
    fn str_field_other(&mut self, kept: bool) -> Result<Str<'a>> {
        match self.next_byte()? {
            b'"' => {
                self.pos += 1;
                let raw = self.string()?;
                self.escaped_text |= kept && raw.escaped;
                Ok(Str(Some(self.decode(raw)?)))
            }
            b'-' | b'0'..=b'9' => {
                let (text, _) = self.integer()?;
                Ok(Str(Some(Cow::Borrowed(text))))
            }
            first => self.skip_other(first).map(|()| Str(None)),
        }
    }

    /// An [`Int`] field.
    fn int(&mut self) -> Result<Int> {
        match self.next_byte()? {
            b'"' => {
                self.pos += 1;
                let raw = self.string()?;
                let text = self.decode(raw)?;
                Ok(Int(text.trim().parse().ok()))
            }
            b'-' | b'0'..=b'9' => Ok(Int(match self.integer()?.1 {
                Integer::Signed(v) => Some(v),
                Integer::Unsigned(v) => i64::try_from(v).ok(),
            })),
            first => self.skip_other(first).map(|()| Int(None)),
        }
    }

    /// A [`Flag`] field.
    fn flag(&mut self) -> Result<Flag> {
        match self.next_byte()? {
            b'"' => {
                self.pos += 1;
                let raw = self.string()?;
                let text = self.decode(raw)?;
                let text = text.trim();
                Ok(Flag(if text.eq_ignore_ascii_case("true") {
                    Some(true)
                } else if text.eq_ignore_ascii_case("false") {
                    Some(false)
                } else {
                    None
                }))
            }
            first @ (b't' | b'f' | b'n') => self.literal_value(first).map(Flag),
            first => self.skip_other(first).map(|()| Flag(None)),
        }
    }

    /// An [`Obj`] field: `read` when the value is an object (the reader is
    /// at its `{`), absent otherwise.
    fn object<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T>) -> Result<Obj<T>> {
        match self.next_byte()? {
            b'{' => read(self).map(|t| Obj(Some(t))),
            b'[' => self.skip_array().map(|()| Obj(None)),
            first => self.skip_other(first).map(|()| Obj(None)),
        }
    }

    /// An [`Embedded`] field, read into `slot` (which is absent): the
    /// object form is filled in place, `Data` being large to move.
    fn embedded(&mut self, slot: &mut Embedded<Data>) -> Result<()> {
        match self.next_byte()? {
            b'{' => {
                let data = slot.parsed();
                self.data(data)
            }
            b'"' => {
                self.pos += 1;
                let raw = self.string()?;
                let text = self.decode(raw)?;
                if text.trim_start().starts_with('{') {
                    *slot = Embedded::Text(text.into_owned());
                }
                Ok(())
            }
            b'[' => self.skip_array(),
            first => self.skip_other(first),
        }
    }

    /// A `details` value into `details` under `name`, as the compact JSON
    /// serde_json would write for it: its text as it is when it already is
    /// that ([`Reader::skip_plain`]), else parsed, scrubbed of key material
    /// and written back. An empty string is dropped.
    fn detail(&mut self, name: &str, details: &mut DetailsBuilder) -> Result<()> {
        self.ws();
        let start = self.pos;
        let plain = self.skip_plain()?;
        let text = self.text.get(start..self.pos).ok_or(Fallback)?;
        if plain {
            if text != "\"\"" {
                details.insert_json(name, text);
            }
        } else {
            let value = serde_json::from_str(text).map_err(|_| Fallback)?;
            raw::keep(details, name, value);
        }
        Ok(())
    }

    /// Skips a value, validating it; true when its text is what serde_json
    /// writes for it and scrubbing cannot change it: a string without
    /// escapes, an integer serde_json keeps as one, a literal, or an array
    /// of these without whitespace.
    fn skip_plain(&mut self) -> Result<bool> {
        match self.peek().ok_or(Fallback)? {
            b'"' => {
                self.pos += 1;
                Ok(!self.string()?.escaped)
            }
            b'-' | b'0'..=b'9' => {
                let (text, integral) = self.number()?;
                // 18 digits always fit in an i64; serde_json reads `-0`
                // and integers past 64 bits as floats.
                Ok(integral && !text.starts_with("-0") && text.len() <= 18)
            }
            b'[' => {
                self.enter()?;
                let before = self.pos;
                self.ws();
                let mut plain = self.pos == before;
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(plain);
                }
                loop {
                    let before = self.pos;
                    self.ws();
                    plain &= self.pos == before;
                    plain &= self.skip_plain()?;
                    let after = self.pos;
                    self.ws();
                    plain &= self.pos == after;
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            self.depth -= 1;
                            return Ok(plain);
                        }
                        _ => return Err(Fallback),
                    }
                }
            }
            b'{' => self.skip().map(|()| false),
            first => self.literal_value(first).map(|_| true),
        }
    }

    /// An IBM `requestData`/`responseData` object, at its `{`.
    fn data(&mut self, data: &mut Data) -> Result<()> {
        if self.peek() != Some(b'{') {
            return Err(Fallback);
        }
        let mut key = self.first_key()?;
        while let Some(raw) = key {
            data.read_field(self.name(raw)?, self)?;
            key = self.next_key()?;
        }
        Ok(())
    }

    /// A Securosys `details` object, at its `{`.
    fn details(&mut self) -> Result<raw::Details> {
        let mut details = DetailsBuilder::new();
        let mut key = self.first_key()?;
        while let Some(raw) = key {
            let name = self.name(raw)?;
            if is_key_material(name) {
                self.skip()?;
            } else {
                self.detail(name, &mut details)?;
            }
            key = self.next_key()?;
        }
        Ok(raw::Details(details))
    }

    /// Every field of [`Top`], at its `{`. Text fields share one call
    /// site (through [`TopField::text_slot`]): keeping this loop small
    /// keeps the whole hot path in the instruction cache.
    fn top(&mut self, top: &mut Top<'a>, first: usize) -> Result<()> {
        use TopField as F;
        if self.peek() != Some(b'{') {
            return Err(Fallback);
        }
        let (mut last, mut seen) = (first, 0);
        let mut more = self.open()?;
        while more {
            match self.top_key(&mut last, &mut seen)? {
                None => self.skip()?,
                Some(field) => {
                    if let Some(slot) = field.text_slot(top) {
                        *slot = self.text()?;
                    } else {
                        match field {
                            F::Initiator => top.initiator = self.object(Self::initiator)?,
                            F::Target => top.target = self.object(Self::target)?,
                            F::Reason => top.reason = self.object(Self::reason)?,
                            F::RequestData => self.embedded(&mut top.request_data)?,
                            F::ResponseData => self.embedded(&mut top.response_data)?,
                            F::ResponseBody => self.embedded(&mut top.response_body)?,
                            F::Line => top.line = self.json_text()?,
                            F::DataEvent => top.data_event = self.flag()?,
                            F::Details => top.details = self.object(Self::details)?,
                            F::Source => top.source = self.object(Self::boxed_top)?,
                            F::Payload => top.payload = self.object(Self::boxed_top)?,
                            // Text fields were handled above.
                            _ => self.skip()?,
                        }
                    }
                }
            }
            more = self.more()?;
        }
        Ok(())
    }

    /// An envelope's inner object.
    fn boxed_top(&mut self) -> Result<Box<Top<'a>>> {
        let mut top = Box::<Top<'a>>::default();
        self.top(&mut top, TopField::FIRST_INNER)?;
        Ok(top)
    }

    /// An object whose fields are `fields`, at its `{`, its keys guessed
    /// with `order`: `read` takes the value of each field by its index,
    /// and any other key's value is skipped.
    #[inline(always)]
    fn named<const M: usize>(
        &mut self,
        fields: &[Token],
        order: &mut KeyOrder<M>,
        mut read: impl FnMut(&mut Self, usize) -> Result<()>,
    ) -> Result<()> {
        let (mut last, mut seen) = (fields.len(), 0);
        let mut more = self.open()?;
        while more {
            match self.field(fields, order, &mut last, &mut seen)? {
                Some(field) => read(self, field)?,
                None => self.skip()?,
            }
            more = self.more()?;
        }
        Ok(())
    }

    fn initiator(&mut self) -> Result<Initiator<'a>> {
        let mut initiator = Initiator::default();
        let mut order = self.orders.initiator;
        self.named(&INITIATOR, &mut order, |reader, field| {
            match field {
                0 => initiator.id = reader.text()?,
                1 => initiator.name = reader.text()?,
                2 => initiator.credential = reader.object(Self::credential)?,
                3 => initiator.host = reader.object(Self::host)?,
                _ => reader.skip()?,
            }
            Ok(())
        })?;
        self.orders.initiator = order;
        Ok(initiator)
    }

    fn credential(&mut self) -> Result<Credential<'a>> {
        let mut credential = Credential::default();
        let mut order = self.orders.credential;
        self.named(&CREDENTIAL, &mut order, |reader, field| {
            match field {
                0 => credential.kind = reader.text()?,
                _ => reader.skip()?,
            }
            Ok(())
        })?;
        self.orders.credential = order;
        Ok(credential)
    }

    fn host(&mut self) -> Result<Host<'a>> {
        let mut host = Host::default();
        let mut order = self.orders.host;
        self.named(&HOST, &mut order, |reader, field| {
            match field {
                0 => host.address = reader.text()?,
                1 => host.agent = reader.text()?,
                _ => reader.skip()?,
            }
            Ok(())
        })?;
        self.orders.host = order;
        Ok(host)
    }

    fn target(&mut self) -> Result<TargetRaw<'a>> {
        let mut target = TargetRaw::default();
        let mut order = self.orders.target;
        self.named(&TARGET, &mut order, |reader, field| {
            match field {
                0 => target.id = reader.text()?,
                1 => target.name = reader.text()?,
                2 => target.type_uri = reader.text()?,
                _ => reader.skip()?,
            }
            Ok(())
        })?;
        self.orders.target = order;
        Ok(target)
    }

    fn reason(&mut self) -> Result<ReasonRaw<'a>> {
        let mut reason = ReasonRaw::default();
        let mut order = self.orders.reason;
        self.named(&REASON, &mut order, |reader, field| {
            match field {
                0 => reason.code = reader.int()?,
                1 => reason.kind = reader.text()?,
                2 => reason.failure = reader.text()?,
                _ => reader.skip()?,
            }
            Ok(())
        })?;
        self.orders.reason = order;
        Ok(reason)
    }
}

impl<'a> DataFields<'a> for Reader<'a> {
    type Error = Fallback;

    fn text(&mut self) -> Result<Str<'a>> {
        Reader::text(self)
    }

    fn int(&mut self) -> Result<Int> {
        Reader::int(self)
    }

    fn nested(&mut self) -> Result<Option<Box<Data>>> {
        let nested = self.object(|reader| {
            let mut data = Box::<Data>::default();
            reader.data(&mut data)?;
            Ok(data)
        })?;
        Ok(nested.0)
    }

    fn skip(&mut self) -> Result<()> {
        Reader::skip(self)
    }

    fn detail(&mut self, name: &str, details: &mut DetailsBuilder) -> Result<()> {
        Reader::detail(self, name, details)
    }
}

/// The fields of [`Top`], by their JSON names. The discriminant is the
/// field's bit in the duplicate check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopField {
    Action,
    EventTime,
    Outcome,
    Message,
    Severity,
    Id,
    Initiator,
    Target,
    Reason,
    RequestData,
    ResponseData,
    ResponseBody,
    RequestPath,
    CorrelationId,
    CorrelationIdUpper,
    LogSourceCrn,
    DataEvent,
    Timestamp,
    Level,
    Event,
    Category,
    User,
    Role,
    Provider,
    Resource,
    Details,
    Result,
    ApiUrl,
    SessionId,
    Line,
    Source,
    Payload,
}

impl TopField {
    /// Every field, each at its discriminant.
    const ALL: [TopField; 32] = {
        use TopField as F;
        [
            F::Action,
            F::EventTime,
            F::Outcome,
            F::Message,
            F::Severity,
            F::Id,
            F::Initiator,
            F::Target,
            F::Reason,
            F::RequestData,
            F::ResponseData,
            F::ResponseBody,
            F::RequestPath,
            F::CorrelationId,
            F::CorrelationIdUpper,
            F::LogSourceCrn,
            F::DataEvent,
            F::Timestamp,
            F::Level,
            F::Event,
            F::Category,
            F::User,
            F::Role,
            F::Provider,
            F::Resource,
            F::Details,
            F::Result,
            F::ApiUrl,
            F::SessionId,
            F::Line,
            F::Source,
            F::Payload,
        ]
    };
    const COUNT: usize = TopField::ALL.len();
    /// The place of the guess at an event's first key in [`Orders::top`].
    const FIRST: usize = TopField::COUNT;
    /// The place of the guess at an envelope's inner event's first key.
    const FIRST_INNER: usize = TopField::COUNT + 1;

    /// The JSON name of each field, at its discriminant.
    const NAMES: [&'static [u8]; TopField::COUNT] = [
        b"action",
        b"eventTime",
        b"outcome",
        b"message",
        b"severity",
        b"id",
        b"initiator",
        b"target",
        b"reason",
        b"requestData",
        b"responseData",
        b"responseBody",
        b"requestPath",
        b"correlationId",
        b"correlationID",
        b"logSourceCRN",
        b"dataEvent",
        b"timestamp",
        b"level",
        b"event",
        b"category",
        b"user",
        b"role",
        b"provider",
        b"resource",
        b"details",
        b"result",
        b"api_url",
        b"session_id",
        b"_line",
        b"_source",
        b"payload",
    ];

    /// The [`Token`] of each field, at its discriminant.
    const TOKENS: [Token; TopField::COUNT] = {
        let mut tokens = [Token::of(b""); TopField::COUNT];
        let mut i = 0;
        while i < TopField::COUNT {
            tokens[i] = Token::of(TopField::NAMES[i]);
            i += 1;
        }
        tokens
    };

    /// The field's key as a [`Token`].
    #[inline(always)]
    fn token(self) -> Token {
        TopField::TOKENS[self as usize]
    }

    /// The place of a text field in [`Top`]; `None` for the others.
    fn text_slot<'t, 'a>(self, top: &'t mut Top<'a>) -> Option<&'t mut Str<'a>> {
        use TopField as F;
        Some(match self {
            F::Action => &mut top.action,
            F::EventTime => &mut top.event_time,
            F::Outcome => &mut top.outcome,
            F::Message => &mut top.message,
            F::Severity => &mut top.severity,
            F::Id => &mut top.id,
            F::RequestPath => &mut top.request_path,
            F::CorrelationId => &mut top.correlation_id,
            F::CorrelationIdUpper => &mut top.correlation_id_upper,
            F::LogSourceCrn => &mut top.log_source_crn,
            F::Timestamp => &mut top.timestamp,
            F::Level => &mut top.level,
            F::Event => &mut top.event,
            F::Category => &mut top.category,
            F::User => &mut top.user,
            F::Role => &mut top.role,
            F::Provider => &mut top.provider,
            F::Resource => &mut top.resource,
            F::Result => &mut top.result,
            F::ApiUrl => &mut top.api_url,
            F::SessionId => &mut top.session_id,
            F::Line
            | F::Initiator
            | F::Target
            | F::Reason
            | F::RequestData
            | F::ResponseData
            | F::ResponseBody
            | F::DataEvent
            | F::Details
            | F::Source
            | F::Payload => return None,
        })
    }

    /// The field a key names. Dispatching on the length first leaves one
    /// or a few fixed-size comparisons per key.
    #[inline]
    fn of(key: &[u8]) -> Option<TopField> {
        use TopField as F;
        Some(match key.len() {
            2 if key == b"id" => F::Id,
            4 => match key {
                b"user" => F::User,
                b"role" => F::Role,
                _ => return None,
            },
            5 => match key {
                b"level" => F::Level,
                b"event" => F::Event,
                b"_line" => F::Line,
                _ => return None,
            },
            6 => match key {
                b"action" => F::Action,
                b"target" => F::Target,
                b"reason" => F::Reason,
                b"result" => F::Result,
                _ => return None,
            },
            7 => match key {
                b"outcome" => F::Outcome,
                b"message" => F::Message,
                b"details" => F::Details,
                b"api_url" => F::ApiUrl,
                b"_source" => F::Source,
                b"payload" => F::Payload,
                _ => return None,
            },
            8 => match key {
                b"severity" => F::Severity,
                b"category" => F::Category,
                b"provider" => F::Provider,
                b"resource" => F::Resource,
                _ => return None,
            },
            9 => match key {
                b"eventTime" => F::EventTime,
                b"initiator" => F::Initiator,
                b"dataEvent" => F::DataEvent,
                b"timestamp" => F::Timestamp,
                _ => return None,
            },
            10 if key == b"session_id" => F::SessionId,
            11 => match key {
                b"requestData" => F::RequestData,
                b"requestPath" => F::RequestPath,
                _ => return None,
            },
            12 => match key {
                b"responseData" => F::ResponseData,
                b"responseBody" => F::ResponseBody,
                b"logSourceCRN" => F::LogSourceCrn,
                _ => return None,
            },
            13 => match key {
                b"correlationId" => F::CorrelationId,
                b"correlationID" => F::CorrelationIdUpper,
                _ => return None,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(text: &str) -> Option<Top<'_>> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn finds_the_first_special_byte_in_any_position() {
        for len in 0..40 {
            for at in 0..len {
                for special in [b'"', b'\\', 0x01, 0x1f] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 3 < len {
                        bytes[at + 3] = b'"';
                    }
                    assert_eq!(find_json_special(&bytes, 0), at, "{len} {at} {special}");
                }
            }
            let plain = vec![0xc3; len];
            assert_eq!(
                find_json_special(&plain, 0),
                len,
                "high bytes are not special"
            );
        }
    }

    #[test]
    fn reads_integers_as_serde_json_hands_them_over() {
        use serde_json::Number;
        let numbers = [
            "0",
            "7",
            "-7",
            "10",
            "1234567890",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "-9223372036854775808",
            "-9223372036854775809",
            "-0",
            "-00",
            "1.5",
            "-0.5",
            "1e3",
            "1E3",
            "2.",
            "-",
            "-a",
            "12}",
            "3,",
        ];
        for number in numbers {
            let mut reader = Reader::new(number, 8);
            let read = reader.integer().ok();
            // serde_json reads the whole text; the reader may stop at a
            // byte after the number (`}` or `,`), which its caller judges.
            let whole = number.trim_end_matches(['}', ',']);
            let expected = serde_json::from_str::<Number>(whole).ok().and_then(|n| {
                match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => Some(Integer::Unsigned(u)),
                    (None, Some(i)) => Some(Integer::Signed(i)),
                    _ => None,
                }
            });
            let shown = |i: Option<Integer>| format!("{i:?}");
            assert_eq!(
                shown(read.map(|(_, value)| value)),
                shown(expected),
                "{number}"
            );
            if let Some((text, _)) = read {
                assert_eq!(text, whole, "{number}");
                assert_eq!(reader.pos, whole.len(), "{number}");
            }
        }
        // A leading zero ends the number; the byte after it is the
        // caller's to reject, as serde_json does.
        let mut reader = Reader::new("01", 8);
        let read = reader.integer().ok();
        assert!(
            matches!(read, Some(("0", Integer::Unsigned(0)))),
            "{read:?}"
        );
        assert_eq!(reader.pos, 1);
    }

    #[test]
    fn unescapes_like_serde_json_at_any_offset() {
        let escapes = [r#"\""#, r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"];
        for len in 0..40 {
            for at in 0..=len {
                for escape in escapes {
                    for second in [None, Some(at / 2), Some(len)] {
                        let mut raw = "é".repeat(len / 4) + &"a".repeat(len - len / 4);
                        let mut at = at.min(raw.len());
                        while !raw.is_char_boundary(at) {
                            at -= 1;
                        }
                        raw.insert_str(at, escape);
                        if let Some(second) = second {
                            raw.push_str(&"x".repeat(second));
                            raw.push_str(r"\\");
                        }
                        let expected: String = serde_json::from_str(&format!("\"{raw}\""))
                            .expect("a valid JSON string");
                        assert_eq!(unescape(&raw).as_deref(), Some(expected.as_str()), "{raw}");
                    }
                }
            }
        }
        assert_eq!(unescape("").as_deref(), Some(""));
        assert_eq!(unescape(r"\\\\\\").as_deref(), Some(r"\\\"));
    }

    #[test]
    fn finds_quotes_and_backslashes_in_any_position() {
        // Fillers one above `"` and `\`, and the two with only the high
        // bit apart from them, which a byte test must not take.
        for filler in [b'a', b'#', b']', 0xa2, 0xdc] {
            for len in 0..80 {
                for at in 0..len {
                    for special in [b'"', b'\\'] {
                        let mut bytes = vec![filler; len];
                        bytes[at] = special;
                        assert_eq!(find_quote_or_backslash(&bytes, 0), at, "{len} {at}");
                        assert_eq!(find_quote_or_backslash(&bytes, at), at, "{len} {at}");
                    }
                }
                assert_eq!(find_quote_or_backslash(&vec![filler; len], 0), len);
            }
        }
    }

    /// Marks before the start are not found, wherever the start is: in a
    /// whole step, or in the last sixteen bytes the search falls back to.
    #[test]
    fn finds_nothing_before_the_start() {
        for len in 0..80 {
            for from in 0..=len {
                for special in [b'"', b'\\'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[..from].fill(special);
                    assert_eq!(find_quote_or_backslash(&bytes, from), len, "{len} {from}");
                    for at in from..len {
                        let mut bytes = bytes.clone();
                        bytes[at] = special;
                        assert_eq!(
                            find_quote_or_backslash(&bytes, from),
                            at,
                            "{len} {from} {at}"
                        );
                    }
                }
            }
        }
    }

    /// The short key's path against the general one, reader by reader:
    /// every length around the sixteen bytes it looks at, an escape at every
    /// place, whitespace before the colon, no colon, and the text ending
    /// at every point after the key.
    #[test]
    fn short_keys_read_as_the_general_path_reads_them() {
        let read = |text: &str, general: bool| {
            let mut reader = Reader::new(text, 64);
            let key = if general {
                reader.key_general()
            } else {
                reader.key()
            };
            key.map(|raw| (raw.start, raw.end, raw.escaped, reader.pos))
        };
        let mut keys = Vec::new();
        for len in 0..20 {
            let plain = "k".repeat(len);
            keys.push(plain.clone());
            for at in 0..=len {
                for escape in [r#"\""#, r"\\", r"\u0041", "\"", "\\"] {
                    let mut key = plain.clone();
                    key.insert_str(at, escape);
                    keys.push(key);
                }
            }
        }
        // A long tail, so that the sixteen bytes of every short key are there.
        let long = ":1,\"zzzzzzzzzzzzzzzzzzzz\":2}";
        let mut short = [false; 16];
        for key in &keys {
            for after in [long, ":1}", ":", " :1}", "\n:1}", "1}", ",", ""] {
                let whole = format!("\"{key}\"{after}");
                for end in 0..=whole.len() {
                    let text = &whole[..end];
                    assert_eq!(read(text, false), read(text, true), "{text:?}");
                    if short_key_end(text.as_bytes(), 1).is_some() {
                        short[key.len()] = true;
                    }
                }
            }
        }
        // The short path itself ran for keys of every length it takes.
        assert_eq!(short, [true; 16]);
    }

    #[test]
    fn control_bytes_are_seen_anywhere() {
        for len in 1..200 {
            for at in [0, len / 2, len - 1] {
                let mut bytes = vec![b'a'; len];
                assert!(!has_control_byte(&bytes));
                bytes[at] = b'\t';
                assert!(has_control_byte(&bytes), "{len} {at}");
            }
        }
    }

    #[test]
    fn control_characters_in_strings_are_left_to_serde() {
        for text in [
            "{\"action\":\"a\tb\"}",
            "{\"action\":\"a\u{1}b\"}",
            "{\t\"action\":\"a\"}",
        ] {
            let fast = top(text, 64);
            assert_eq!(fast.is_ok(), reference(text).is_some(), "{text:?}");
        }
    }

    #[test]
    fn every_top_field_is_in_the_table() {
        let names = [
            "action",
            "eventTime",
            "outcome",
            "message",
            "severity",
            "id",
            "initiator",
            "target",
            "reason",
            "requestData",
            "responseData",
            "responseBody",
            "requestPath",
            "correlationId",
            "correlationID",
            "logSourceCRN",
            "dataEvent",
            "timestamp",
            "level",
            "event",
            "category",
            "user",
            "role",
            "provider",
            "resource",
            "details",
            "result",
            "api_url",
            "session_id",
            "_line",
            "_source",
            "payload",
        ];
        let mut bits = 0u64;
        for name in names {
            let field = TopField::of(name.as_bytes()).unwrap_or_else(|| panic!("{name}"));
            bits |= 1 << field as u32;
            // Each name reaches serde's field of the same name.
            let object =
                r#"{"id":"a","name":"b","typeURI":"c","reasonType":"d","keyId":"e","action":"f"}"#;
            let mut meaningful = false;
            for value in [r#""true""#, object] {
                let text = format!(r#"{{"{name}":{value}}}"#);
                assert_eq!(top(&text, 64).ok(), reference(&text), "{text}");
                meaningful |= reference(&text) != Some(Top::default());
            }
            assert!(meaningful, "{name}");
        }
        assert_eq!(bits.count_ones() as usize, names.len());
        assert_eq!(TopField::of(b"observer"), None);
        // The tables the guesses use agree with the names.
        assert_eq!(TopField::COUNT, names.len());
        for (i, field) in TopField::ALL.into_iter().enumerate() {
            assert_eq!(field as usize, i);
            let name = TopField::NAMES.get(i).copied().unwrap_or_default();
            assert_eq!(TopField::of(name), Some(field));
            let token = field.token();
            let written = format!("\"{}\":", String::from_utf8_lossy(name));
            let mut word = [0u8; 16];
            word.get_mut(..written.len())
                .unwrap_or_default()
                .copy_from_slice(written.as_bytes());
            assert_eq!(token.len, written.len());
            assert_eq!(token.word, u128::from_le_bytes(word));
            assert_eq!(token.mask.count_ones() as usize, 8 * written.len());
            assert_eq!(token.mask.trailing_ones() as usize, 8 * written.len());
        }
    }

    #[test]
    fn tokens_match_their_key_only() {
        let tables: [&[Token]; 6] = [
            &TopField::TOKENS,
            &INITIATOR,
            &CREDENTIAL,
            &HOST,
            &TARGET,
            &REASON,
        ];
        for token in tables.into_iter().flatten() {
            let name = String::from_utf8_lossy(token.name);
            let tail = r#""value that is long enough","next":1}"#;
            let fits = token.len <= 16;
            for (text, matches) in [
                (format!(r#""{name}":{tail}"#), fits),
                (format!(r#""{name}" :{tail}"#), false),
                (format!(r#""{name}x":{tail}"#), false),
                (format!(r#""x{name}":{tail}"#), false),
                (format!("\0{name}\":{tail}"), false),
                (format!("\u{ff}{name}\":{tail}"), false),
            ] {
                let mut reader = Reader::new(&text, 64);
                assert_eq!(reader.at_token(*token), matches, "{text}");
                let after = if matches { token.len } else { 0 };
                assert_eq!(reader.pos, after, "{text}");
            }
        }
    }

    #[test]
    fn reads_what_serde_reads() {
        for text in [
            r#"{"action":"a\"b\\c\/d\n","eventTime":12,"x":[1,{"y":null}],"dataEvent":"TRUE"}"#,
            r#" { "initiator" : { "id" : "i" , "host" : { "address" : " 1.2.3.4 " } } } "#,
            r#"{"reason":{"reasonCode":"401","reasonType":true},"requestData":"{\"keyId\":\"k\"}"}"#,
            r#"{"responseData":{"keyState":"DEK_ENABLED","newValue":{"keyState":3},"iv":"x","extra":{"payload":1,"keep":""}}}"#,
            r#"{"details":{"a":1.5,"plaintext":"p","b":"","c":[{"iv":2}]},"event":"E"}"#,
            r#"{"_source":{"_line":"{\"action\":\"x\"}"},"payload":{"action":"y"},"target":[1]}"#,
            r#"{"reason":{"reasonCode":-7},"severity":-3,"id":18446744073709551615}"#,
        ] {
            assert_eq!(top(text, 64).ok(), reference(text), "{text}");
            assert!(top(text, 64).is_ok(), "fast path for {text}");
        }
    }

    /// What this thread's reader guesses after `field` in an event.
    fn guess_after(field: usize) -> Option<TopField> {
        let next = ORDERS.get().top.after(field)?;
        TopField::ALL.get(next).copied()
    }

    #[test]
    fn guesses_follow_the_last_order_read() {
        ORDERS.set(Orders::NEW);
        let text = r#"{"outcome":"o","observer":{},"action":"a","id":"i"}"#;
        assert_eq!(top(text, 64).ok(), reference(text));
        assert_eq!(guess_after(TopField::FIRST), Some(TopField::Outcome));
        // The key that names no field leaves the guess to the one before.
        assert_eq!(
            guess_after(TopField::Outcome as usize),
            Some(TopField::Action)
        );
        assert_eq!(guess_after(TopField::Action as usize), Some(TopField::Id));
        let nested = r#"{"initiator":{"name":"n","id":"i"},"reason":{"reasonType":"t"}}"#;
        assert_eq!(top(nested, 64).ok(), reference(nested));
        let orders = ORDERS.get();
        assert_eq!(orders.initiator.after(INITIATOR.len()), Some(1));
        assert_eq!(orders.initiator.after(1), Some(0));
        assert_eq!(orders.reason.after(REASON.len()), Some(1));
        // An envelope's inner event has a first guess of its own.
        let enveloped = r#"{"payload":{"severity":"s","action":"a"}}"#;
        assert_eq!(top(enveloped, 64).ok(), reference(enveloped));
        assert_eq!(guess_after(TopField::FIRST), Some(TopField::Payload));
        assert_eq!(guess_after(TopField::FIRST_INNER), Some(TopField::Severity));
    }

    #[test]
    fn guesses_change_no_result() {
        // Each text is read after each other one, so that the keys are
        // met with right guesses, wrong ones, and guesses that are the
        // start of the key or a key that starts like them.
        let texts = [
            r#"{"action":"a","id":"i","outcome":"o","initiator":{"id":"u","name":"n"}}"#,
            r#"{"id":"i","action":"a","initiator":{"name":"n","id":"u"},"outcome":"o"}"#,
            r#"{"action":"a","id" :"i","outcome":"o"}"#,
            r#"{"action":"a","ids":"x","id":"i"}"#,
            r#"{"action":"a","i":"x","id":"i"}"#,
            r#"{"action":"a","id":"i","action":"b","observer":"xxxxxxxxxxxxxxxx"}"#,
            r#"{"action":"a","\u0069d":"i","observer":"xxxxxxxxxxxxxxxx"}"#,
            r#"{"action":"a","id":1,"observer":"xxxxxxxxxxxxxxxx"}"#,
            r#"{"action":"a","id":"i"}"#,
            r#"{"reason":{"reasonCode":1,"reasonType":"t","reasonForFailure":"f"}}"#,
            r#"{"reason":{"reasonType":"t","reasonCode":1,"reasonType":"u"}}"#,
            r#"{"initiator":{"host":{"agent":"g","address":"d"},"credential":{"type":"t"}}}"#,
            r#"{"initiator":{"credential":{"type":"t"},"host":{"address":"d","agent":"g"}}}"#,
            r#"{"target":{"typeURI":"t","name":"n","id":"i"},"_line":"{}"}"#,
            r#"{"target":{"id":"i","name":"n","typeURI":"t"}, "_line" :"{}","observer":"xxxxxxxxxxxxxxxx"}"#,
            "{\"action\":\"a\",\n\"id\":\"i\",\"observer\":\"xxxxxxxxxxxxxxxx\"}",
            // A byte no key starts with, where the guess is a name too
            // long for a token.
            "{\"reason\":{\"reasonType\":\"t\",\u{0}xxxxxxxxxxxxxxxxxx\"f\"}}",
            "{\"reason\":{\"reasonType\":\"t\",\u{ff}xxxxxxxxxxxxxxxxx\"f\"}}",
        ];
        for first in texts {
            for then in texts {
                ORDERS.set(Orders::NEW);
                for text in [first, then, then] {
                    let fast = top(text, 64);
                    let learned = ORDERS.get();
                    if let Ok(fast) = &fast {
                        assert_eq!(Some(fast), reference(text).as_ref(), "{text} after {first}");
                    }
                    // Nor do they send a text to the fallback.
                    ORDERS.set(Orders::NEW);
                    assert_eq!(top(text, 64).is_ok(), fast.is_ok(), "{text} after {first}");
                    ORDERS.set(learned);
                }
            }
        }
    }

    #[test]
    fn leaves_the_unusual_to_serde() {
        for text in [
            r#"{"action":"\u00e9"}"#,
            r#"{"action":"a","action":"b"}"#,
            r#"{"act\"ion":"a"}"#,
            r#"{"action":1.5}"#,
            r#"{"action":-0}"#,
            r#"{"action":18446744073709551616}"#,
            r#"{"action":"a"} x"#,
            r#"{"action":"a",}"#,
            r#"{"action":01}"#,
            r#"{"x":[1,]}"#,
            "{\"action\":\"a\tb\"}",
            r#"{"a":{"b":{"c":1}}}"#,
            r#"[1]"#,
            r#"{"x":tru}"#,
        ] {
            assert_eq!(top(text, 2).err(), Some(Fallback), "{text}");
        }
    }

    #[test]
    fn details_text_is_what_serde_json_writes() {
        // Each value either copied as it is or parsed and written back:
        // the text must be the same either way.
        let values = [
            r#""plain""#,
            r#""""#,
            r#""esc\/aped\u00e9\n""#,
            r#""a\"b\/c\n""#,
            "[ ]",
            "[\n]",
            "0",
            "-12",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551616",
            "-0",
            "1.50",
            "1e3",
            "true",
            "null",
            "[]",
            r#"["a",1,false,null,[2]]"#,
            r#"[ "a" ,1 ]"#,
            r#"["a\"",-0]"#,
            r#"[1.0]"#,
            r#"{"z":1,"a":"","payload":"k","n":{"iv":1,"b":[]}}"#,
            r#"[{"plaintext":"p"}]"#,
        ];
        for value in values {
            let securosys = format!(r#"{{"details":{{"x":{value},"iv":1}}}}"#);
            let ibm = format!(r#"{{"requestData":{{"x":{value},"keyId":"k"}}}}"#);
            for text in [securosys, ibm] {
                let fast = top(&text, 64);
                // `\u` escapes are always the fallback's.
                assert_eq!(fast.is_err(), value.contains("\\u"), "{text}");
                if let Ok(fast) = fast {
                    assert_eq!(Some(fast), reference(&text), "{text}");
                }
            }
        }
    }

    #[test]
    fn skipped_floats_stay_on_the_fast_path() {
        let text = r#"{"action":"a","x":[1.5e3,-0.25,-0],"y":{"z":1E-2}}"#;
        assert_eq!(top(text, 64).ok(), reference(text));
    }

    #[test]
    fn data_text_reads_like_serde() {
        let text = r#" {"requestURI":" /x ","signatureThreshold":"2","keyRingId":7} "#;
        assert_eq!(
            data(text, 64).ok().map(|(data, _)| data),
            serde_json::from_str::<Data>(text).ok()
        );
        assert_eq!(data("{\"a\":1} {", 64), Err(Fallback));
    }
}
