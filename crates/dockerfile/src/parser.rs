//! From text to [`Dockerfile`], step by step as BuildKit's `frontend/dockerfile/parser` does
//! it: physical lines, parser directives, logical lines (continuations), the keyword and
//! its flags, arguments shaped per instruction, then heredoc bodies.

use std::cell::Cell;
use std::ops::Range;

use crate::ast::{
    Args, Comment, Directive, Dockerfile, Flag, Heredoc, Instruction, KeyValue, Keyword, Position,
    Span, Word,
};
use crate::error::{ParseError, ParseErrorKind};
use crate::json::{JsonArray, parse_array};
use crate::lex;

/// Docker reads lines through a 64 KiB buffer: a longer line is an error.
const MAX_LINE: usize = 65535;

/// ONBUILD ONBUILD … nesting followed before giving up (Docker's build refuses any).
const MAX_ONBUILD_DEPTH: usize = 8;

/// Parse a Dockerfile. See the crate documentation for what is kept and how.
pub fn parse(src: &str) -> Result<Dockerfile, ParseError> {
    let source = Source::new(src);
    Parser {
        src: &source,
        escape: '\\',
        next: 0,
    }
    .run()
}

/// Parse a Dockerfile given as bytes. Docker reads bytes, not text: a byte that is not
/// UTF-8 (a Latin-1 `é` in a comment, in a `RUN` script, in a label) is kept as it is, and
/// only refused where Docker refuses it (in a keyword, in a stage name, …). Here such bytes
/// are read through [`decode_bytes`], so the offsets of the result refer to that text.
pub fn parse_bytes(bytes: &[u8]) -> Result<Dockerfile, ParseError> {
    parse(&decode_bytes(bytes))
}

/// The code point that stands for byte 0x80 when it is not part of UTF-8 text; bytes 0x80 to
/// 0xFF map to U+10FF80 to U+10FFFF (private use), one character each.
const RAW_BYTE_BASE: u32 = 0x10_FF00;

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
struct Line<'a> {
    /// Offset of the first character (after the byte-order mark on the first line).
    start: usize,
    /// The line without its terminator (every trailing `\r` and `\n` removed, as Docker does).
    text: &'a str,
    /// Offset after the terminator.
    end: usize,
    /// Bytes Docker's scanner holds for this line (terminator excluded).
    raw_len: usize,
    ascii: bool,
}

struct Source<'a> {
    src: &'a str,
    lines: Vec<Line<'a>>,
    bom: bool,
    /// The last (line index, offset, column) computed on a non-ASCII line: positions are
    /// mostly asked in ascending order, so counting goes on from there.
    last_column: Cell<(usize, usize, usize)>,
}

impl<'a> Source<'a> {
    fn new(src: &'a str) -> Self {
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
    fn position(&self, offset: usize) -> Position {
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

    fn span(&self, range: Range<usize>) -> Span {
        Span {
            start: self.position(range.start),
            end: self.position(range.end.max(range.start)),
        }
    }

    fn error(&self, offset: usize, kind: ParseErrorKind) -> ParseError {
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
struct Logical {
    text: String,
    /// (offset in `text`, offset in the source) of each non-empty piece.
    pieces: Vec<(usize, usize)>,
    /// Where an empty logical line sits in the source.
    base: usize,
}

impl Logical {
    fn push(&mut self, src_offset: usize, piece: &str) {
        if !piece.is_empty() {
            self.pieces.push((self.text.len(), src_offset));
            self.text.push_str(piece);
        }
    }

    /// Source offset of the byte at `off` of the logical text.
    fn to_src(&self, off: usize) -> usize {
        let i = self.pieces.partition_point(|p| p.0 <= off);
        match i.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some(&(l, s)) => s + (off - l),
            None => self.pieces.first().map_or(self.base, |p| p.1),
        }
    }

    /// Source range of the logical range `start..end`.
    fn src_range(&self, start: usize, end: usize) -> Range<usize> {
        let s = self.to_src(start);
        if end <= start {
            return s..s;
        }
        s..self.to_src(end - 1) + 1
    }
}

/// The whitespace Docker's `reWhitespace` splits on (`[\t\v\f\r ]`).
fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go's regexp `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Docker's `trimContinuationCharacter`: a line ending in the escape character (and
/// optional blanks) continues, unless that escape character is itself escaped. Gives the line
/// without the escape character and whatever follows it, and whether the line is complete.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some("") => ("", false),
        Some(before) if !before.ends_with(escape) => (before, false),
        _ => (line, true),
    }
}

/// A directive line (`#` removed, Docker's `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`):
/// lower-case name, value, and the value's offset in `line`.
fn parse_directive(line: &str) -> Option<(String, &str, usize)> {
    let rest = line.strip_prefix('#')?;
    let body = rest.trim_start();
    if !body.bytes().next()?.is_ascii_alphabetic() {
        return None;
    }
    let name_len = body.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let name = body.get(..name_len)?.to_ascii_lowercase();
    let after = body.get(name_len..)?.trim_start_matches(is_re_space);
    let after = after.strip_prefix('=')?;
    let trimmed = after.trim_start_matches(is_re_space);
    let value = if trimmed.is_empty() {
        // Only blanks after `=`: the lazy `(.+?)` still takes the last one.
        after.get(after.len().checked_sub(1)?..)?
    } else {
        trimmed.trim_end_matches(is_re_space)
    };
    if !matches!(name.as_str(), "syntax" | "escape" | "check") {
        return None;
    }
    let value_at = line.len() - if trimmed.is_empty() { 1 } else { trimmed.len() };
    Some((name, value, value_at))
}

/// Where the lines of an instruction sit, for the instruction and its ONBUILD trigger.
#[derive(Clone, Copy)]
struct Frame {
    line: usize,
    end_line: usize,
    end: usize,
}

struct Parser<'s, 'a> {
    src: &'s Source<'a>,
    escape: char,
    /// Index of the next physical line to read.
    next: usize,
}

/// What [`Parser::line`] gives for an index out of range (never, in practice).
static NO_LINE: Line<'static> = Line {
    start: 0,
    text: "",
    end: 0,
    raw_len: 0,
    ascii: true,
};

impl<'s, 'a> Parser<'s, 'a> {
    fn pos(&self, offset: usize) -> Position {
        self.src.position(offset)
    }

    /// Take the next physical line, refusing one longer than Docker reads.
    fn take_line(&mut self) -> Result<Option<usize>, ParseError> {
        let idx = self.next;
        let Some(line) = self.src.lines.get(idx) else {
            return Ok(None);
        };
        if line.raw_len > MAX_LINE {
            return Err(self.src.error(
                line.start + MAX_LINE.min(line.text.len()),
                ParseErrorKind::LineTooLong,
            ));
        }
        self.next += 1;
        Ok(Some(idx))
    }

    fn line(&self, idx: usize) -> &'s Line<'a> {
        self.src.lines.get(idx).unwrap_or(&NO_LINE)
    }

    fn comment(&self, idx: usize) -> Comment {
        let l = self.line(idx);
        let trimmed = l.text.trim_start();
        let at = l.start + (l.text.len() - trimmed.len());
        Comment {
            text: trimmed.get(1..).unwrap_or("").trim().to_string(),
            line: idx + 1,
            span: self.src.span(at..l.start + l.text.len()),
        }
    }

    fn run(mut self) -> Result<Dockerfile, ParseError> {
        let mut directives: Vec<Directive> = Vec::new();
        let mut directives_done = false;
        let mut comments: Vec<Comment> = Vec::new();
        let mut instructions = Vec::new();

        while let Some(idx) = self.take_line()? {
            let line = self.line(idx);
            let (start, text) = (line.start, line.text);
            let trimmed = text.trim_start();
            let lead = start + (text.len() - trimmed.len());

            // Directives: only while every line so far was one.
            let mut is_directive = false;
            if !directives_done {
                match parse_directive(trimmed) {
                    None => directives_done = true,
                    Some((name, value, value_at)) => {
                        if directives.iter().any(|d| d.name == name) {
                            return Err(self
                                .src
                                .error(lead, ParseErrorKind::DuplicateDirective(name)));
                        }
                        if name == "escape" {
                            self.escape = match value {
                                "`" => '`',
                                "\\" => '\\',
                                _ => {
                                    return Err(self.src.error(
                                        lead + value_at,
                                        ParseErrorKind::InvalidEscape(value.to_string()),
                                    ));
                                }
                            };
                        }
                        directives.push(Directive {
                            name,
                            value: value.to_string(),
                            line: idx + 1,
                            span: self.src.span(lead..start + text.len()),
                        });
                        is_directive = true;
                    }
                }
            }
            if trimmed.starts_with('#') {
                if !is_directive {
                    comments.push(self.comment(idx));
                }
                continue;
            }

            let (first, mut complete) = trim_continuation(trimmed, self.escape);
            if complete && first.is_empty() {
                continue;
            }
            let mut logical = Logical {
                base: lead,
                ..Logical::default()
            };
            logical.push(lead, first);

            let mut inner_comments = Vec::new();
            let mut empty_lines = Vec::new();
            let mut last = idx;
            while !complete {
                let Some(ci) = self.take_line()? else { break };
                last = ci;
                let l = self.line(ci);
                let t = l.text.trim_start();
                if t.starts_with('#') {
                    inner_comments.push(self.comment(ci));
                    continue;
                }
                if t.is_empty() {
                    empty_lines.push(ci + 1);
                    continue;
                }
                let (piece, c) = trim_continuation(l.text, self.escape);
                complete = c;
                logical.push(l.start, piece);
            }

            let frame = Frame {
                line: idx + 1,
                end_line: last + 1,
                end: self.line(last).start + self.line(last).text.len(),
            };
            let len = logical.text.len();
            let mut inst = self.instruction(&logical, 0..len, frame, 0)?;
            inst.line = idx + 1;

            let heredocs = self.heredocs(&logical, &inst)?;
            if !heredocs.is_empty() {
                let last = self.next.saturating_sub(1);
                let frame = Frame {
                    end_line: last + 1,
                    end: self.line(last).start + self.line(last).text.len(),
                    ..frame
                };
                let mut cur = Some(&mut inst);
                while let Some(i) = cur {
                    i.end_line = frame.end_line;
                    i.span.end = self.pos(frame.end);
                    cur = match &mut i.args {
                        Args::Onbuild(t) => Some(&mut **t),
                        _ => None,
                    };
                }
                match &mut inst.args {
                    Args::Onbuild(t) => t.heredocs = heredocs,
                    _ => inst.heredocs = heredocs,
                }
            }
            let end_idx = inst.end_line.saturating_sub(1);
            inst.whole_lines = start..self.line(end_idx).end;
            inst.comments = std::mem::take(&mut comments);
            inst.inner_comments = inner_comments;
            inst.empty_continuation_lines = empty_lines;
            instructions.push(inst);
        }

        if instructions.is_empty() {
            let at = self.src.src.len();
            return Err(self.src.error(at, ParseErrorKind::NoInstructions));
        }
        Ok(Dockerfile {
            directives,
            escape: self.escape,
            bom: self.src.bom,
            instructions,
            trailing_comments: comments,
        })
    }

    /// Docker's `newNodeFromLine` on `range` of the logical line: keyword, flags, arguments.
    fn instruction(
        &self,
        lg: &Logical,
        range: Range<usize>,
        frame: Frame,
        depth: usize,
    ) -> Result<Instruction, ParseError> {
        let s = lg.text.get(range.clone()).unwrap_or("");
        let ts = range.start + (s.len() - s.trim_start().len());
        let trimmed = s.trim();
        let te = ts + trimmed.len();
        let kw_len = trimmed.find(is_split_space).unwrap_or(trimmed.len());
        let kw_text = trimmed.get(..kw_len).unwrap_or("");
        let after = trimmed.get(kw_len..).unwrap_or("");
        let args_start =
            ts + kw_len + (after.len() - after.trim_start_matches(is_split_space).len());

        let keyword = Keyword::parse(kw_text);
        let (flags, rest_start) = self.flags(lg, args_start, te);
        let rest_text = lg.text.get(rest_start..te).unwrap_or("");
        let rest_start = rest_start + (rest_text.len() - rest_text.trim_start().len());
        let rest = rest_start..te.max(rest_start);

        let args = match keyword {
            Keyword::Add | Keyword::Copy | Keyword::Volume => self.json_or_words(lg, rest)?,
            Keyword::Arg => self.arg_pairs(lg, rest),
            Keyword::Cmd | Keyword::Entrypoint | Keyword::Run | Keyword::Shell => {
                self.json_or_shell(lg, rest)?
            }
            Keyword::Env => self.pairs(lg, rest, "ENV")?,
            Keyword::Label => self.pairs(lg, rest, "LABEL")?,
            Keyword::Expose | Keyword::From => self.split_words(lg, rest),
            Keyword::Healthcheck => self.healthcheck(lg, rest)?,
            Keyword::Maintainer | Keyword::Stopsignal | Keyword::User | Keyword::Workdir => {
                match self.word(lg, rest) {
                    Some(w) => Args::Text(w),
                    None => Args::Empty,
                }
            }
            Keyword::Onbuild => {
                if rest.is_empty() {
                    Args::Empty
                } else if depth >= MAX_ONBUILD_DEPTH {
                    return Err(self
                        .src
                        .error(lg.to_src(rest.start), ParseErrorKind::TooDeep));
                } else {
                    let mut trigger = self.instruction(lg, rest, frame, depth + 1)?;
                    trigger.line = trigger.keyword_word.span.start.line;
                    Args::Onbuild(Box::new(trigger))
                }
            }
            Keyword::Unknown(_) => match self.word(lg, rest) {
                Some(w) => Args::Unknown(w),
                None => Args::Empty,
            },
        };

        let kw_src = lg.src_range(ts, ts + kw_len);
        let keyword_word = Word {
            text: kw_text.to_string(),
            span: self.src.span(kw_src.clone()),
        };
        Ok(Instruction {
            keyword,
            line: frame.line,
            end_line: frame.end_line,
            span: self.src.span(kw_src.start..frame.end),
            whole_lines: 0..0,
            original: s.to_string(),
            keyword_word,
            flags,
            args,
            heredocs: Vec::new(),
            comments: Vec::new(),
            inner_comments: Vec::new(),
            empty_continuation_lines: Vec::new(),
        })
    }

    /// A word covering `range` of the logical line, or `None` when the range is empty.
    fn word(&self, lg: &Logical, range: Range<usize>) -> Option<Word> {
        let text = lg.text.get(range.clone())?;
        if text.is_empty() {
            return None;
        }
        Some(Word {
            text: text.to_string(),
            span: self.src.span(lg.src_range(range.start, range.end)),
        })
    }

    fn word_at(&self, lg: &Logical, text: String, start: usize, end: usize) -> Word {
        Word {
            text,
            span: self.src.span(lg.src_range(start, end)),
        }
    }

    /// Docker's `extractBuilderFlags`: leading words that start with `--`, quotes removed and
    /// escapes resolved, up to the first other word (or a bare `--`). Gives the flags and
    /// where the rest starts.
    fn flags(&self, lg: &Logical, start: usize, end: usize) -> (Vec<Flag>, usize) {
        #[derive(PartialEq)]
        enum Phase {
            Spaces,
            Word,
            Quote,
        }
        let s = lg.text.get(start..end).unwrap_or("");
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        let mut found: Vec<(String, usize, usize)> = Vec::new();
        let mut phase = Phase::Spaces;
        let mut word = String::new();
        let mut quote = '\0';
        let mut blank_ok = false;
        let mut word_start = 0;
        let mut k = 0;
        loop {
            let at_end = k >= chars.len();
            let (pos, mut ch) = chars.get(k).copied().unwrap_or((s.len(), '\0'));
            if phase == Phase::Spaces {
                if at_end {
                    return (self.make_flags(lg, start, found), end);
                }
                if ch.is_whitespace() {
                    k += 1;
                    continue;
                }
                let next = chars.get(k + 1).map(|c| c.1);
                if ch != '-' || next != Some('-') {
                    return (self.make_flags(lg, start, found), start + pos);
                }
                phase = Phase::Word;
                word_start = pos;
            }
            if at_end {
                if word != "--" && (blank_ok || !word.is_empty()) {
                    found.push((word, word_start, s.len()));
                }
                return (self.make_flags(lg, start, found), end);
            }
            if phase == Phase::Word {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (self.make_flags(lg, start, found), start + pos);
                    }
                    if blank_ok || !word.is_empty() {
                        found.push((std::mem::take(&mut word), word_start, pos));
                    }
                    word.clear();
                    blank_ok = false;
                    k += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                    k += 1;
                    continue;
                }
            } else if ch == quote {
                phase = Phase::Word;
                k += 1;
                continue;
            }
            if ch == self.escape {
                if k + 1 == chars.len() {
                    // An escape at the very end is dropped (and closes an open quote).
                    phase = Phase::Word;
                    k += 1;
                    continue;
                }
                k += 1;
                ch = chars.get(k).map_or(ch, |c| c.1);
            }
            word.push(ch);
            k += 1;
        }
    }

    fn make_flags(
        &self,
        lg: &Logical,
        base: usize,
        found: Vec<(String, usize, usize)>,
    ) -> Vec<Flag> {
        found
            .into_iter()
            .map(|(word, from, to)| {
                let body = word.strip_prefix("--").unwrap_or(&word);
                let (name, value) = match body.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (body.to_string(), None),
                };
                Flag {
                    name,
                    value,
                    span: self.src.span(lg.src_range(base + from, base + to)),
                }
            })
            .collect()
    }

    /// Docker's `parseWords`: words separated by whitespace, where quotes group and the
    /// escape character protects the next character; quotes and escapes stay in the words.
    fn parse_words(&self, lg: &Logical, range: Range<usize>) -> Vec<(String, usize, usize)> {
        #[derive(PartialEq)]
        enum Phase {
            Spaces,
            Word,
            Quote,
        }
        let base = range.start;
        let s = lg.text.get(range).unwrap_or("");
        let chars: Vec<(usize, char)> = s.char_indices().collect();
        let n = chars.len();
        let mut words = Vec::new();
        let mut phase = Phase::Spaces;
        let mut quote = '\0';
        let mut blank_ok = false;
        let mut word = String::new();
        let mut word_start = 0;
        let mut k = 0;
        loop {
            let at_end = k >= n;
            let (pos, mut ch) = chars.get(k).copied().unwrap_or((s.len(), '\0'));
            if phase == Phase::Spaces {
                if at_end {
                    break;
                }
                if ch.is_whitespace() {
                    k += 1;
                    continue;
                }
                phase = Phase::Word;
                word_start = pos;
            }
            if at_end {
                if blank_ok || !word.is_empty() {
                    words.push((word, base + word_start, base + s.len()));
                }
                break;
            }
            if phase == Phase::Word {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push((std::mem::take(&mut word), base + word_start, base + pos));
                    }
                    word.clear();
                    blank_ok = false;
                    k += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = ch;
                    blank_ok = true;
                    phase = Phase::Quote;
                }
                if ch == self.escape {
                    if k + 1 == n {
                        k += 1;
                        continue;
                    }
                    // Unquoted, the escape and the next character are kept together.
                    word.push(ch);
                    k += 1;
                    ch = chars.get(k).map_or(ch, |c| c.1);
                }
                word.push(ch);
                k += 1;
                continue;
            }
            // In quotes.
            if ch == quote {
                phase = Phase::Word;
            }
            // The escape character means nothing inside single quotes.
            if ch == self.escape && quote != '\'' {
                if k + 1 == n {
                    phase = Phase::Word;
                    k += 1;
                    continue;
                }
                k += 1;
                word.push(ch);
                ch = chars.get(k).map_or(ch, |c| c.1);
            }
            word.push(ch);
            k += 1;
        }
        words
    }

    /// Docker's `parseStringsWhitespaceDelimited`.
    fn split_words(&self, lg: &Logical, range: Range<usize>) -> Args {
        let base = range.start;
        let s = lg.text.get(range).unwrap_or("");
        let mut words = Vec::new();
        let mut word_start = None;
        for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
            match (is_split_space(c), word_start) {
                (true, Some(ws)) => {
                    words.push(self.word_at(
                        lg,
                        s.get(ws..i).unwrap_or("").to_string(),
                        base + ws,
                        base + i,
                    ));
                    word_start = None;
                }
                (false, None) => word_start = Some(i),
                _ => {}
            }
        }
        if words.is_empty() {
            Args::Empty
        } else {
            Args::Words(words)
        }
    }

    /// The JSON array at `range`: `Ok(Some)` when it is one, `Ok(None)` when it is not JSON.
    fn json(&self, lg: &Logical, range: Range<usize>) -> Result<Option<Vec<Word>>, ParseError> {
        let base = range.start;
        let s = lg.text.get(range).unwrap_or("");
        match parse_array(s) {
            JsonArray::Strings(items) => Ok(Some(
                items
                    .into_iter()
                    .map(|(text, a, b)| self.word_at(lg, text, base + a, base + b))
                    .collect(),
            )),
            JsonArray::NotStrings(at) => Err(self
                .src
                .error(lg.to_src(base + at), ParseErrorKind::JsonNotStrings)),
            JsonArray::Invalid => Ok(None),
        }
    }

    /// Docker's `parseMaybeJSON`.
    fn json_or_shell(&self, lg: &Logical, range: Range<usize>) -> Result<Args, ParseError> {
        if range.is_empty() {
            return Ok(Args::Empty);
        }
        Ok(match self.json(lg, range.clone())? {
            Some(words) => Args::Json(words),
            None => self.word(lg, range).map_or(Args::Empty, Args::Shell),
        })
    }

    /// Docker's `parseMaybeJSONToList`.
    fn json_or_words(&self, lg: &Logical, range: Range<usize>) -> Result<Args, ParseError> {
        Ok(match self.json(lg, range.clone())? {
            Some(words) => Args::Json(words),
            None => self.split_words(lg, range),
        })
    }

    /// Docker's `parseHealthConfig`: the kind word, then a command like CMD's.
    fn healthcheck(&self, lg: &Logical, range: Range<usize>) -> Result<Args, ParseError> {
        let base = range.start;
        let s = lg.text.get(range.clone()).unwrap_or("");
        let sep = s.find(char::is_whitespace).unwrap_or(s.len());
        if sep == 0 {
            return Ok(Args::Empty);
        }
        let after = s.get(sep..).unwrap_or("");
        let next = sep + (after.len() - after.trim_start().len());
        let kind = self.word_at(lg, s.get(..sep).unwrap_or("").to_string(), base, base + sep);
        let command = self.json_or_shell(lg, base + next..range.end)?;
        Ok(Args::Healthcheck {
            kind,
            command: Box::new(command),
        })
    }

    /// Docker's `parseNameVal` (ENV, LABEL): `k=v …`, or the legacy `k value with spaces`
    /// when the first word has no `=`.
    fn pairs(&self, lg: &Logical, range: Range<usize>, key: &str) -> Result<Args, ParseError> {
        let words = self.parse_words(lg, range.clone());
        let Some(first) = words.first() else {
            return Ok(Args::Empty);
        };
        if !first.0.contains('=') {
            let s = lg.text.get(range.clone()).unwrap_or("");
            let base = range.start;
            let Some(k_end) = s.find(is_split_space) else {
                return Err(self.src.error(
                    lg.to_src(base),
                    ParseErrorKind::MissingValue(key.to_string()),
                ));
            };
            let after = s.get(k_end..).unwrap_or("");
            let v_start = k_end + (after.len() - after.trim_start_matches(is_split_space).len());
            let pair = KeyValue {
                key: self.word_at(lg, s.get(..k_end).unwrap_or("").into(), base, base + k_end),
                value: Some(self.word_at(
                    lg,
                    s.get(v_start..).unwrap_or("").into(),
                    base + v_start,
                    range.end,
                )),
                legacy: true,
                span: self.src.span(lg.src_range(base, range.end)),
            };
            return Ok(Args::Pairs(vec![pair]));
        }
        let mut pairs = Vec::with_capacity(words.len());
        for (text, start, end) in words {
            let Some(eq) = text.find('=') else {
                return Err(self
                    .src
                    .error(lg.to_src(start), ParseErrorKind::MissingEquals(text)));
            };
            pairs.push(self.split_pair(lg, &text, start, end, eq));
        }
        Ok(Args::Pairs(pairs))
    }

    /// ARG: names, or `name=value`.
    fn arg_pairs(&self, lg: &Logical, range: Range<usize>) -> Args {
        let words = self.parse_words(lg, range);
        if words.is_empty() {
            return Args::Empty;
        }
        let pairs = words
            .into_iter()
            .map(|(text, start, end)| match text.find('=') {
                Some(eq) => self.split_pair(lg, &text, start, end, eq),
                None => KeyValue {
                    key: self.word_at(lg, text, start, end),
                    value: None,
                    legacy: false,
                    span: self.src.span(lg.src_range(start, end)),
                },
            })
            .collect();
        Args::Pairs(pairs)
    }

    /// `key=value` split at the first `=` (byte `eq` of the word's text, which matches the
    /// logical line up to the word's end).
    fn split_pair(
        &self,
        lg: &Logical,
        text: &str,
        start: usize,
        end: usize,
        eq: usize,
    ) -> KeyValue {
        let key = text.get(..eq).unwrap_or("");
        let value = text.get(eq + 1..).unwrap_or("");
        let v_start = (start + eq + 1).min(end);
        KeyValue {
            key: self.word_at(lg, key.to_string(), start, start + eq),
            value: Some(self.word_at(lg, value.to_string(), v_start, end)),
            legacy: false,
            span: self.src.span(lg.src_range(start, end)),
        }
    }

    /// The heredocs of `inst` (or of its ONBUILD trigger), bodies read from the lines that
    /// follow, in order.
    fn heredocs(&mut self, lg: &Logical, inst: &Instruction) -> Result<Vec<Heredoc>, ParseError> {
        let target = inst.trigger().unwrap_or(inst);
        let allowed = matches!(target.keyword, Keyword::Run | Keyword::Copy | Keyword::Add)
            && !matches!(target.args, Args::Json(_));
        if !allowed || !lg.text.contains("<<") {
            return Ok(Vec::new());
        }
        // Docker ignores a line it cannot split (an unbalanced quote): no heredocs then.
        let Ok(words) = lex::heredoc_words(&lg.text) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for w in words {
            let marker = lg.src_range(w.start, w.end);
            let Some(mut doc) = self.heredoc_marker(&w.text, marker.start)? else {
                continue;
            };
            doc.span = self.src.span(marker);
            out.push(doc);
        }
        for doc in &mut out {
            let first = self.next;
            let mut terminated = false;
            while let Some(idx) = self.take_line()? {
                let l = self.line(idx);
                let candidate = if doc.strip_tabs {
                    l.text.trim_start_matches('\t')
                } else {
                    l.text
                };
                if candidate == doc.name {
                    terminated = true;
                    break;
                }
                doc.body
                    .push_str(self.src.src.get(l.start..l.end).unwrap_or(""));
            }
            if !terminated {
                return Err(self.src.error(
                    doc.span.start.offset,
                    ParseErrorKind::UnterminatedHeredoc(doc.name.clone()),
                ));
            }
            let last = self.line(self.next.saturating_sub(1));
            let body_start = self.src.lines.get(first).map_or(last.start, |l| l.start);
            doc.body_span = self.src.span(body_start..last.start + last.text.len());
        }
        Ok(out)
    }

    /// Docker's `ParseHeredoc` on one word: `[n]<<[-][ ]NAME` where NAME lexes to one word.
    fn heredoc_marker(&self, word: &str, at: usize) -> Result<Option<Heredoc>, ParseError> {
        let digits = word.bytes().take_while(u8::is_ascii_digit).count();
        let Some(after) = word.get(digits..).and_then(|w| w.strip_prefix("<<")) else {
            return Ok(None);
        };
        let (strip_tabs, after) = match after.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let rest = after.trim_start_matches(is_re_space);
        if rest.is_empty() || rest.contains('<') {
            return Ok(None);
        }
        let invalid = |e: crate::WordError| self.src.error(at, ParseErrorKind::InvalidHeredoc(e.0));
        let words = lex::split_words(rest, false).map_err(invalid)?;
        let [name] = words.as_slice() else {
            return Ok(None);
        };
        let raw = lex::split_words(rest, true).map_err(invalid)?;
        let [raw_name] = raw.as_slice() else {
            return Err(self.src.error(
                at,
                ParseErrorKind::InvalidHeredoc(format!(
                    "internal lexing of heredoc produced inconsistent results: {rest}"
                )),
            ));
        };
        let quotes = |s: &str| s.chars().filter(|c| matches!(c, '\'' | '"')).count();
        let fd = (digits > 0).then(|| {
            word.get(..digits)
                .and_then(|d| d.parse().ok())
                .unwrap_or(u64::MAX)
        });
        Ok(Some(Heredoc {
            name: name.clone(),
            fd,
            strip_tabs,
            expand: quotes(name) == quotes(raw_name),
            body: String::new(),
            span: Span::default(),
            body_span: Span::default(),
        }))
    }
}
