//! The scanners of InfluxDB 1.x's `models/points.go`, byte for byte: where each part of a
//! line ends, which escapes count there, and the message InfluxDB gives when it does not.
//!
//! InfluxDB reads a line twice: a first pass validates it (`scanKey`, `scanFields`,
//! `scanTime`), a second cuts the fields into keys and values (`walkFields`) with slightly
//! different escaping rules. Both are kept here as they are, quirks included, because the
//! collector must acknowledge exactly the lines InfluxDB stores and read them exactly as
//! InfluxDB does: in the key, a separator is escaped when the byte before it is a
//! backslash (so `\\,` escapes the comma); in the fields, a backslash escapes whatever
//! byte follows it.

use super::ParseError;
use crate::lineproto::ByteSet;

// The bytes each scanner looks at; it steps over every other one at once, which gives the
// same result as looking at each: the checks are all on these bytes and on a backslash
// before them.
/// `scanFields`
static FIELDS_SPECIAL: ByteSet = ByteSet::of(b"\\\"=, ");
/// `scanMeasurement`
static MEASUREMENT_SPECIAL: ByteSet = ByteSet::of(b"\\, ");
/// `scanTagsKey` and `scanTagsValue`
static TAG_SPECIAL: ByteSet = ByteSet::of(b"\\, =");
/// A field key in `walkFields`
static KEY_SPECIAL: ByteSet = ByteSet::of(b"\\=");
/// A field value in `walkFields` (`scanFieldValue`)
static VALUE_SPECIAL: ByteSet = ByteSet::of(b"\\\",");

/// The first index from `i` whose byte is in `set`, or the end.
#[inline]
fn skip(b: &[u8], mut i: usize, set: &ByteSet) -> usize {
    while i < b.len() && !set.contains(b[i]) {
        i += 1;
    }
    i
}

/// The largest series key InfluxDB stores: the measurement and tags, and with each field
/// key four bytes more (`models.MaxKeyLength`).
pub const MAX_KEY_LENGTH: usize = 65_535;

/// What InfluxDB skips before a line, its fields and its timestamp (`skipWhitespace`).
pub(super) fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | 0) {
        i += 1;
    }
    i
}

/// Where the measurement and tags end (`scanKey`): the index of the space after them, and
/// each tag as written (`key=value`) with the index of its `=`.
pub(super) fn scan_key<'a>(
    line: &'a str,
    start: usize,
    tags: &mut Vec<(&'a str, usize)>,
) -> Result<(usize, usize), ParseError> {
    let b = line.as_bytes();
    // scanMeasurement: anything but a comma may come first.
    if start >= b.len() || b[start] == b',' {
        return Err(ParseError::MissingMeasurement);
    }
    let mut i = start;
    let measurement_end;
    loop {
        i = skip(b, i + 1, &MEASUREMENT_SPECIAL);
        if i >= b.len() {
            return Err(ParseError::MissingFields);
        }
        if b[i - 1] == b'\\' {
            continue;
        }
        if b[i] == b',' {
            measurement_end = i;
            i += 1;
            break;
        }
        if b[i] == b' ' {
            return Ok((i, i));
        }
    }
    // scanTags
    loop {
        let tag_start = i;
        if i >= b.len() || matches!(b[i], b' ' | b',' | b'=') {
            return Err(ParseError::MissingTagKey);
        }
        loop {
            i = skip(b, i + 1, &TAG_SPECIAL);
            if i >= b.len() || (matches!(b[i], b' ' | b',') && b[i - 1] != b'\\') {
                return Err(ParseError::MissingTagValue);
            }
            if b[i] == b'=' && b[i - 1] != b'\\' {
                break;
            }
        }
        let eq = i - tag_start;
        i += 1;
        if i >= b.len() || matches!(b[i], b',' | b' ') {
            return Err(ParseError::MissingTagValue);
        }
        loop {
            i = skip(b, i + 1, &TAG_SPECIAL);
            if i >= b.len() {
                return Err(ParseError::MissingFields);
            }
            if b[i - 1] == b'\\' {
                continue;
            }
            match b[i] {
                b'=' => return Err(ParseError::InvalidTagFormat),
                b',' => {
                    tags.push((&line[tag_start..i], eq));
                    i += 1;
                    break;
                }
                b' ' => {
                    tags.push((&line[tag_start..i], eq));
                    check_duplicates(tags)?;
                    return Ok((measurement_end, i));
                }
                _ => {}
            }
        }
    }
}

/// InfluxDB compares tag keys as written, escapes and all.
fn check_duplicates(tags: &[(&str, usize)]) -> Result<(), ParseError> {
    fn key<'a>(t: &(&'a str, usize)) -> &'a [u8] {
        &t.0.as_bytes()[..t.1]
    }
    if tags.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        return Ok(());
    }
    let mut keys: Vec<&[u8]> = tags.iter().map(key).collect();
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(ParseError::DuplicateTags);
    }
    Ok(())
}

/// The most fields whose places [`scan_fields`] keeps.
const CUTS: usize = 8;

/// What [`scan_fields`] found on its way.
#[derive(Debug, Clone, Default)]
pub(super) struct Scanned {
    /// The index of each `+` the collector let through before a number, which InfluxDB
    /// refuses (the collector writes the number without it).
    pub plus: Vec<usize>,
    /// The index of each field's `=` and of its value's end, when InfluxDB's second pass
    /// cuts the fields in the same places: without a backslash, and for at most eight
    /// fields (the hot path: numbers from devices). It then need not run.
    pub cuts: Option<([(usize, usize); CUTS], usize)>,
}

/// Validates the fields (`scanFields`): the index of their end, and whether a `+` was
/// skipped before a number (so the text cannot be copied as it is).
pub(super) fn scan_fields(b: &[u8], start: usize, unsigned: bool) -> Result<(usize, Scanned), ParseError> {
    let mut i = start;
    let mut quoted = false;
    let (mut equals, mut commas) = (0usize, 0usize);
    let mut scanned = Scanned::default();
    let mut cuts = [(0, 0); CUTS];
    let mut plain = true;
    loop {
        if i >= b.len() {
            break;
        }
        if !FIELDS_SPECIAL.contains(b[i]) {
            i += 1;
            continue;
        }
        if b[i] == b'\\' && i + 1 < b.len() {
            plain = false;
            i += 2;
            continue;
        }
        if b[i] == b'"' && equals > commas {
            quoted = !quoted;
            i += 1;
            continue;
        }
        if b[i] == b'=' && !quoted {
            // The second pass cuts where the first did only while every field has one `=`
            // and then its comma: not for `a=""=1,o` or `,o="=9` (found by fuzzing, where
            // the places taken from here crossed).
            plain &= equals == commas;
            if let Some(cut) = cuts.get_mut(equals) {
                cut.0 = i;
            }
            equals += 1;
            let before = |n: usize| i.checked_sub(n).map(|j| b[j]);
            if matches!(before(1), Some(b' ' | b',')) && before(2) != Some(b'\\') {
                return Err(ParseError::MissingFieldKey);
            }
            let Some(&next) = b.get(i + 1) else {
                return Err(ParseError::MissingFieldValue);
            };
            if next == b',' || next == b' ' {
                return Err(ParseError::MissingFieldValue);
            }
            if is_numeric(next) || matches!(next, b'-' | b'N' | b'n') {
                i = scan_number(b, i + 1, unsigned)?;
                continue;
            }
            // Only where InfluxDB's second pass sees a value: not after an `=` that follows a
            // backslash (`f\\=+1`), which it reads as part of the key.
            if next == b'+' && b[i - 1] != b'\\' && b.get(i + 2).is_some_and(|&c| is_numeric(c)) {
                scanned.plus.push(i + 1);
                i = scan_number(b, i + 2, unsigned)?;
                continue;
            }
            if next != b'"' {
                i = scan_boolean(b, i + 1)?;
                continue;
            }
        }
        if b[i] == b',' && !quoted {
            plain &= commas + 1 == equals;
            if let Some(cut) = cuts.get_mut(commas) {
                cut.1 = i;
            }
            commas += 1;
        }
        if b[i] == b' ' && !quoted {
            break;
        }
        i += 1;
    }
    if quoted {
        return Err(ParseError::UnbalancedQuotes);
    }
    if equals == 0 || commas + 1 != equals {
        return Err(ParseError::InvalidFieldFormat);
    }
    if plain && equals <= CUTS {
        cuts[equals - 1].1 = i.min(b.len());
        scanned.cuts = Some((cuts, equals));
    }
    Ok((i, scanned))
}

fn is_numeric(c: u8) -> bool {
    c.is_ascii_digit() || c == b'.'
}

/// `scanNumber`: the end of the number starting at `start`.
fn scan_number(b: &[u8], start: usize, unsigned: bool) -> Result<usize, ParseError> {
    let mut i = start;
    let (mut int, mut uint, mut decimal, mut scientific) = (false, false, false, false);
    if b.get(i) == Some(&b'-') {
        i += 1;
        if i == b.len() {
            return Err(ParseError::InvalidNumber);
        }
    }
    while i < b.len() && b[i] != b',' && b[i] != b' ' {
        let c = b[i];
        // Most bytes of a number: a digit passes every check below.
        if c.is_ascii_digit() {
            i += 1;
            continue;
        }
        if (c == b'i' || c == b'u') && i > start && !(int || uint) {
            if c == b'i' {
                int = true;
            } else {
                uint = true;
            }
            i += 1;
            continue;
        }
        if c == b'.' {
            if decimal {
                return Err(ParseError::InvalidNumber);
            }
            decimal = true;
        }
        if i > start && (c == b'e' || c == b'E') {
            scientific = true;
            i += 1;
            continue;
        }
        if (c == b'+' || c == b'-') && matches!(b[i - 1], b'e' | b'E') {
            i += 1;
            continue;
        }
        // InfluxDB's NaN check looks at the whole line's length, not the value's.
        if i + 2 < b.len() && (c == b'N' || c == b'n') {
            return Err(ParseError::InvalidNumber);
        }
        if !is_numeric(c) {
            return Err(ParseError::InvalidNumber);
        }
        i += 1;
    }
    if (int || uint) && (decimal || scientific) {
        return Err(ParseError::InvalidNumber);
    }
    let digits =
        (i - start).saturating_sub(usize::from(int) + usize::from(decimal) + usize::from(b[start] == b'-'));
    if digits == 0 {
        return Err(ParseError::InvalidNumber);
    }
    let text = |end: usize| String::from_utf8_lossy(&b[start..end]).into_owned();
    if int {
        if b[i - 1] != b'i' {
            return Err(ParseError::InvalidNumber);
        }
        if i - 1 - start >= 19 && parse_i64(&b[start..i - 1]).is_none() {
            return Err(ParseError::IntegerOutOfRange(text(i - 1)));
        }
    } else if uint {
        if !unsigned || b[i - 1] != b'u' || b[start] == b'-' {
            return Err(ParseError::InvalidNumber);
        }
        if i - 1 - start >= 20 && parse_u64(&b[start..i - 1]).is_none() {
            return Err(ParseError::UnsignedOutOfRange(text(i - 1)));
        }
    } else if (scientific || i - start >= 25) && parse_f64(&b[start..i]).is_none() {
        return Err(ParseError::InvalidFloat);
    }
    Ok(i)
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Go's `strconv.ParseFloat` on what [`scan_number`] lets through: the same correctly
/// rounded value, and out of range (±Inf) is an error.
fn parse_f64(b: &[u8]) -> Option<f64> {
    let value: f64 = std::str::from_utf8(b).ok()?.parse().ok()?;
    value.is_finite().then_some(value)
}

/// `scanBoolean`: the end of the boolean starting at `start`.
fn scan_boolean(b: &[u8], start: usize) -> Result<usize, ParseError> {
    if start < b.len() && !matches!(b[start], b't' | b'f' | b'T' | b'F') {
        return Err(ParseError::InvalidBoolean);
    }
    let mut i = start + 1;
    while i < b.len() && b[i] != b',' && b[i] != b' ' {
        i += 1;
    }
    let word = &b[start..i];
    let valid = match word {
        [_] => true,
        [b't' | b'T', ..] | [b'f' | b'F', ..] => {
            matches!(word, b"true" | b"TRUE" | b"True" | b"false" | b"FALSE" | b"False")
        }
        _ => false,
    };
    if valid {
        Ok(i)
    } else {
        Err(ParseError::InvalidBoolean)
    }
}

/// `scanTime`: the timestamp's text (empty when there is none) and where it ends. With
/// `plus`, a `+` before the digits is let through.
pub(super) fn scan_time(b: &[u8], from: usize, plus: bool) -> Result<(usize, usize), ParseError> {
    let start = skip_whitespace(b, from);
    let mut i = start;
    while i < b.len() && b[i] != b'\n' && b[i] != b' ' {
        let sign = i == start
            && (b[i] == b'-' || (plus && b[i] == b'+' && b.get(i + 1).is_some_and(u8::is_ascii_digit)));
        if !sign && !b[i].is_ascii_digit() {
            return Err(ParseError::BadTimestamp);
        }
        i += 1;
    }
    Ok((start, i))
}

/// `walkFields`: the next field of `fields` from `at`, as the index of its `=` and the
/// index after its value (its comma, or the end).
pub(super) fn next_field(fields: &[u8], at: usize) -> Result<(usize, usize), ParseError> {
    // scanTo(buf, 0, '='): the first `=` not after a backslash.
    let mut i = skip(fields, at, &KEY_SPECIAL);
    while i < fields.len() && !(fields[i] == b'=' && (i == at || fields[i - 1] != b'\\')) {
        i = skip(fields, i + 1, &KEY_SPECIAL);
    }
    let rest = fields.len() - at;
    if i - at + 2 > rest {
        return Err(ParseError::InvalidFieldKey(String::from_utf8_lossy(&fields[at..i]).into_owned()));
    }
    let eq = i;
    // scanFieldValue: a backslash escapes only a quote or a backslash here.
    let mut i = eq + 1;
    let mut quoted = false;
    loop {
        i = skip(fields, i, &VALUE_SPECIAL);
        if i >= fields.len() {
            break;
        }
        match fields[i] {
            b'\\' if i + 1 < fields.len() && matches!(fields[i + 1], b'"' | b'\\') => {
                i += 2;
                continue;
            }
            b'"' => quoted = !quoted,
            b',' if !quoted => break,
            _ => {}
        }
        i += 1;
    }
    Ok((eq, i.min(fields.len())))
}
