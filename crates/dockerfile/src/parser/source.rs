//! The text as Docker's parser reads it: bytes as text, the physical lines and the
//! position of every offset, the logical lines joined from them (continuations), and the
//! blanks that separate words.

use std::cell::Cell;
use std::ops::Range;

use crate::ast::{Position, Span};
use crate::error::{ParseError, ParseErrorKind};

/// The code point that stands for byte 0x80 when it is not part of UTF-8 text; bytes 0x80 to
/// 0xFF map to U+10FF80 to U+10FFFF (private use), one character each.
pub(super) const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// `bytes` as text: UTF-8 as it is, and every byte that is not part of valid UTF-8 as one
/// character from U+10FF80 to U+10FFFF, so that [`encode_text`] gives the bytes back. Columns
/// then count such a byte as one character.
pub fn decode_bytes(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 2);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.push(char::from_u32(RAW_BYTE_BASE + u32::from(b)).unwrap_or('\u{fffd}'));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The bytes of a text from [`decode_bytes`]: U+10FF80 to U+10FFFF back to single bytes.
/// `encode_text(&decode_bytes(b)) == b` unless `b` holds those characters as UTF-8 itself.
pub fn encode_text(text: &str) -> std::borrow::Cow<'_, [u8]> {
    let raw = |c: char| (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xFF).contains(&u32::from(c));
    if !text.chars().any(raw) {
        return std::borrow::Cow::Borrowed(text.as_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        if raw(c) {
            out.push((u32::from(c) - RAW_BYTE_BASE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    std::borrow::Cow::Owned(out)
}

/// One physical line.
#[derive(Debug)]
pub(super) struct Line<'a> {
    /// Offset of the first character (after the byte-order mark on the first line).
    pub(super) start: usize,
    /// The line without its terminator (every trailing `\r` and `\n` removed, as Docker does).
    pub(super) text: &'a str,
    /// Offset after the terminator.
    pub(super) end: usize,
    /// Bytes Docker's scanner holds for this line (terminator excluded).
    pub(super) raw_len: usize,
    pub(super) ascii: bool,
}

pub(super) struct Source<'a> {
    pub(super) src: &'a str,
    pub(super) lines: Vec<Line<'a>>,
    pub(super) bom: bool,
    /// The last (line index, offset, column) computed on a non-ASCII line: positions are
    /// mostly asked in ascending order, so counting goes on from there.
    pub(super) last_column: Cell<(usize, usize, usize)>,
}

impl<'a> Source<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        let bom = src.starts_with('\u{feff}');
        let mut lines = Vec::new();
        let mut at = 0;
        for raw in src.split_inclusive('\n') {
            let skip = if at == 0 && bom {
                '\u{feff}'.len_utf8()
            } else {
                0
            };
            let body = raw.strip_suffix('\n').unwrap_or(raw);
            let text = body
                .get(skip..)
                .unwrap_or("")
                .trim_end_matches(['\r', '\n']);
            lines.push(Line {
                start: at + skip,
                text,
                end: at + raw.len(),
                raw_len: body.len(),
                ascii: text.is_ascii(),
            });
            at += raw.len();
        }
        Source {
            src,
            lines,
            bom,
            last_column: Cell::new((usize::MAX, 0, 0)),
        }
    }

    /// Line and column of a byte offset.
    pub(super) fn position(&self, offset: usize) -> Position {
        let idx = self
            .lines
            .partition_point(|l| l.start <= offset)
            .saturating_sub(1);
        let Some(line) = self.lines.get(idx) else {
            return Position {
                line: 1,
                column: 1,
                offset,
            };
        };
        let before = offset.saturating_sub(line.start);
        let column = if line.ascii {
            before
        } else {
            let (memo_line, memo_offset, memo_column) = self.last_column.get();
            let count = |a: usize, b: usize| self.src.get(a..b).map(|s| s.chars().count());
            let near = memo_line == idx;
            let column = if near && memo_offset <= offset {
                count(memo_offset, offset).map(|n| memo_column + n)
            } else if near && memo_offset - offset < before {
                count(offset, memo_offset).map(|n| memo_column.saturating_sub(n))
            } else {
                count(line.start, offset)
            }
            .unwrap_or(before);
            self.last_column.set((idx, offset, column));
            column
        };
        Position {
            line: idx + 1,
            column: column + 1,
            offset,
        }
    }

    pub(super) fn span(&self, range: Range<usize>) -> Span {
        Span {
            start: self.position(range.start),
            end: self.position(range.end.max(range.start)),
        }
    }

    pub(super) fn error(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
        let p = self.position(offset);
        ParseError {
            line: p.line,
            column: p.column,
            offset,
            kind,
        }
    }
}

/// A logical line: pieces of physical lines joined, with where each piece came from.
#[derive(Debug, Default)]
pub(super) struct Logical {
    pub(super) text: String,
    /// (offset in `text`, offset in the source) of each non-empty piece.
    pub(super) pieces: Vec<(usize, usize)>,
    /// Where an empty logical line sits in the source.
    pub(super) base: usize,
}

impl Logical {
    pub(super) fn push(&mut self, src_offset: usize, piece: &str) {
        if !piece.is_empty() {
            self.pieces.push((self.text.len(), src_offset));
            self.text.push_str(piece);
        }
    }

    /// Source offset of the byte at `off` of the logical text.
    pub(super) fn to_src(&self, off: usize) -> usize {
        let i = self.pieces.partition_point(|p| p.0 <= off);
        match i.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some(&(l, s)) => s + (off - l),
            None => self.pieces.first().map_or(self.base, |p| p.1),
        }
    }

    /// Source range of the logical range `start..end`.
    pub(super) fn src_range(&self, start: usize, end: usize) -> Range<usize> {
        let s = self.to_src(start);
        if end <= start {
            return s..s;
        }
        s..self.to_src(end - 1) + 1
    }
}

/// The whitespace Docker's `reWhitespace` splits on (`[\t\v\f\r ]`).
pub(super) fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go's regexp `\s`.
pub(super) fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Docker's `trimContinuationCharacter`: a line ending in the escape character (and
/// optional blanks) continues, unless that escape character is itself escaped. Gives the line
/// without the escape character and whatever follows it, and whether the line is complete.
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some("") => ("", false),
        Some(before) if !before.ends_with(escape) => (before, false),
        _ => (line, true),
    }
}
