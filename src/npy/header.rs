//! The `.npy` header: magic, version, length and the Python dictionary
//! literal that describes the array.

use super::{DType, NpyError, NpyErrorKind};

/// The magic string every `.npy` file starts with.
pub(super) const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Bytes before the header text: magic, 2 version bytes, then a 2 (v1) or 4
/// (v2, v3) byte little-endian header length.
const PREAMBLE_V1: usize = MAGIC.len() + 2 + 2;
const PREAMBLE_V2: usize = MAGIC.len() + 2 + 4;

/// The total length of magic, version, length field and header text is padded
/// to a multiple of this (numpy >= 1.x writes 64).
pub(super) const HEADER_ALIGN: usize = 64;

/// Upper bound on the header text we accept (numpy itself refuses headers
/// above 10 000 bytes unless told otherwise).
const MAX_HEADER_LEN: usize = 1 << 20;

/// The header of a C-order array: magic, version 1.0, length, dictionary,
/// padded with spaces and ended by '\n' so that the data starts on a
/// `HEADER_ALIGN` boundary, as numpy writes it.
pub(super) fn encode(dtype: DType, shape: &[usize]) -> Vec<u8> {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        dtype.descr(),
        shape_tuple(shape)
    );
    let unpadded = PREAMBLE_V1 + dict.len() + 1;
    let padding = (HEADER_ALIGN - unpadded % HEADER_ALIGN) % HEADER_ALIGN;
    // At most MAX_RANK dimensions of at most 20 digits: far below u16::MAX.
    let header_len = (dict.len() + padding + 1) as u16;
    let mut out = Vec::with_capacity(unpadded + padding);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out
}

fn shape_tuple(shape: &[usize]) -> String {
    match shape {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// Checks magic and version, returns the header text and where the data starts.
pub(super) fn split(bytes: &[u8]) -> Result<(&str, usize), NpyError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        let found = bytes[..bytes.len().min(MAGIC.len())].to_vec();
        return Err(NpyErrorKind::BadMagic { found }.into());
    }
    let truncated = |expected: usize| NpyErrorKind::TruncatedHeader {
        expected,
        found: bytes.len(),
    };
    let (major, minor) = match bytes.get(MAGIC.len()..MAGIC.len() + 2) {
        Some(&[major, minor]) => (major, minor),
        _ => return Err(truncated(MAGIC.len() + 2).into()),
    };
    let preamble = match (major, minor) {
        (1, 0) => PREAMBLE_V1,
        (2, 0) | (3, 0) => PREAMBLE_V2,
        _ => return Err(NpyErrorKind::UnsupportedVersion { major, minor }.into()),
    };
    let len_field = bytes
        .get(MAGIC.len() + 2..preamble)
        .ok_or_else(|| truncated(preamble))?;
    let header_len = len_field
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | b as usize);
    if header_len > MAX_HEADER_LEN {
        return Err(NpyErrorKind::BadHeader {
            header: String::new(),
            reason: format!("header length {header_len} exceeds {MAX_HEADER_LEN} bytes"),
        }
        .into());
    }
    let end = preamble + header_len;
    let raw = bytes.get(preamble..end).ok_or_else(|| truncated(end))?;
    // v1 and v2 headers are latin-1, v3 headers UTF-8; the dictionary numpy
    // writes is ASCII in all cases, so UTF-8 decoding accepts every valid one.
    let header = std::str::from_utf8(raw).map_err(|_| NpyErrorKind::BadHeader {
        header: String::from_utf8_lossy(raw).into_owned(),
        reason: "header is not valid text".to_string(),
    })?;
    Ok((header, end))
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }`.
pub(super) fn parse(header: &str) -> Result<(DType, Vec<usize>), NpyError> {
    let bad = |reason: String| -> NpyError {
        NpyErrorKind::BadHeader {
            header: header.trim_end().to_string(),
            reason,
        }
        .into()
    };
    let entries = HeaderParser {
        s: header.as_bytes(),
        pos: 0,
    }
    .dict()
    .map_err(bad)?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    for (key, value) in entries {
        let slot_taken = match (key.as_str(), value) {
            ("descr", Value::Str(s)) => descr.replace(s).is_some(),
            ("fortran_order", Value::Bool(b)) => fortran.replace(b).is_some(),
            ("shape", Value::Tuple(t)) => shape.replace(t).is_some(),
            ("descr", _) => return Err(bad("'descr' must be a string".to_string())),
            ("fortran_order", _) => {
                return Err(bad("'fortran_order' must be True or False".to_string()))
            }
            ("shape", _) => return Err(bad("'shape' must be a tuple of integers".to_string())),
            (other, _) => return Err(bad(format!("unexpected key {other:?}"))),
        };
        if slot_taken {
            return Err(bad(format!("duplicate key {key:?}")));
        }
    }
    let descr = descr.ok_or_else(|| bad("missing key 'descr'".to_string()))?;
    let fortran = fortran.ok_or_else(|| bad("missing key 'fortran_order'".to_string()))?;
    let shape = shape.ok_or_else(|| bad("missing key 'shape'".to_string()))?;
    let dtype = DType::from_descr(&descr).ok_or(NpyErrorKind::UnsupportedDtype { descr })?;
    // A Fortran-ordered array with at most one dimension larger than 1 has the
    // same memory layout as in C order; numpy still flags it, so refuse only
    // when the order matters.
    if fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(NpyErrorKind::FortranOrder.into());
    }
    Ok((dtype, shape))
}

/// A header value: the subset of Python literals numpy writes.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// A recursive-descent parser for the header dictionary.
struct HeaderParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl HeaderParser<'_> {
    fn skip_ws(&mut self) {
        while self
            .s
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_whitespace())
        {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek() {
            Some(found) if found == c => {
                self.pos += 1;
                Ok(())
            }
            Some(found) => Err(format!(
                "expected '{}' at byte {}, found '{}'",
                c as char,
                self.pos,
                found.escape_ascii()
            )),
            None => Err(format!(
                "expected '{}', found the end of the header",
                c as char
            )),
        }
    }

    fn dict(mut self) -> Result<Vec<(String, Value)>, String> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        loop {
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.string()?;
            self.expect(b':')?;
            let value = self.value()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(format!("expected ',' or '}}' after the value of {key:?}")),
            }
            entries.push((key, value));
        }
        if self.peek().is_some() {
            return Err(format!(
                "unexpected text after the dictionary at byte {}",
                self.pos
            ));
        }
        Ok(entries)
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => Ok(Value::Tuple(self.tuple()?)),
            Some(b'T' | b'F') => {
                let rest = &self.s[self.pos..];
                for (word, value) in [(&b"True"[..], true), (&b"False"[..], false)] {
                    if rest.starts_with(word) {
                        self.pos += word.len();
                        return Ok(Value::Bool(value));
                    }
                }
                Err(format!("unexpected word at byte {}", self.pos))
            }
            Some(c) => Err(format!(
                "unexpected '{}' at byte {}",
                c.escape_ascii(),
                self.pos
            )),
            None => Err("expected a value, found the end of the header".to_string()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(format!(
                    "expected a quoted key or string at byte {}",
                    self.pos
                ))
            }
        };
        let start = self.pos + 1;
        let len = self.s[start..]
            .iter()
            .position(|&c| c == quote)
            .ok_or_else(|| "unterminated string".to_string())?;
        self.pos = start + len + 1;
        String::from_utf8(self.s[start..start + len].to_vec())
            .map_err(|_| "string is not valid text".to_string())
    }

    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            match self.peek() {
                Some(b')') => {
                    self.pos += 1;
                    return Ok(dims);
                }
                Some(c) if c.is_ascii_digit() => {
                    let start = self.pos;
                    while self.s.get(self.pos).is_some_and(u8::is_ascii_digit) {
                        self.pos += 1;
                    }
                    // Python 2 era files may carry an 'L' suffix on longs.
                    if self.s.get(self.pos) == Some(&b'L') {
                        self.pos += 1;
                    }
                    let digits = String::from_utf8_lossy(&self.s[start..self.pos]);
                    let dim = digits
                        .trim_end_matches('L')
                        .parse::<usize>()
                        .map_err(|_| format!("dimension {digits} is out of range"))?;
                    dims.push(dim);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {}
                        _ => {
                            return Err(format!(
                                "expected ',' or ')' in shape at byte {}",
                                self.pos
                            ))
                        }
                    }
                }
                Some(c) => {
                    return Err(format!(
                        "expected a non-negative integer in shape at byte {}, found '{}'",
                        self.pos,
                        c.escape_ascii()
                    ))
                }
                None => return Err("unterminated shape tuple".to_string()),
            }
        }
    }
}
