//! From text to [`Dockerfile`], step by step as BuildKit's `frontend/dockerfile/parser` does
//! it: physical lines, parser directives, logical lines (continuations), the keyword and
//! its flags, arguments shaped per instruction, then heredoc bodies.

mod args;
mod source;

use std::ops::Range;

use crate::ast::{
    Args, Comment, Directive, Dockerfile, Heredoc, Instruction, Keyword, Position, Span, Word,
};
use crate::error::{ParseError, ParseErrorKind, WordError};
use crate::lex;
use args::ArgReader;
use source::{Line, Logical, Source, is_re_space, is_split_space};

pub(crate) use source::trim_continuation;
pub use source::{decode_bytes, encode_text};

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
        let reader = ArgReader {
            src: self.src,
            escape: self.escape,
        };
        let (flags, rest_start) = reader.flags(lg, args_start, te);
        let rest_text = lg.text.get(rest_start..te).unwrap_or("");
        let rest_start = rest_start + (rest_text.len() - rest_text.trim_start().len());
        let rest = rest_start..te.max(rest_start);

        let args = match keyword {
            Keyword::Add | Keyword::Copy | Keyword::Volume => reader.json_or_words(lg, rest)?,
            Keyword::Arg => reader.arg_pairs(lg, rest),
            Keyword::Cmd | Keyword::Entrypoint | Keyword::Run | Keyword::Shell => {
                reader.json_or_shell(lg, rest)?
            }
            Keyword::Env => reader.pairs(lg, rest, "ENV")?,
            Keyword::Label => reader.pairs(lg, rest, "LABEL")?,
            Keyword::Expose | Keyword::From => reader.split_words(lg, rest),
            Keyword::Healthcheck => reader.healthcheck(lg, rest)?,
            Keyword::Maintainer | Keyword::Stopsignal | Keyword::User | Keyword::Workdir => {
                match reader.word(lg, rest) {
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
            Keyword::Unknown(_) => match reader.word(lg, rest) {
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
        let invalid = |e: WordError| self.src.error(at, ParseErrorKind::InvalidHeredoc(e.0));
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
