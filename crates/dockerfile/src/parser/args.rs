//! The arguments of an instruction shaped as Docker shapes them: flags, words, JSON arrays,
//! the shell form, ENV/LABEL/ARG pairs, HEALTHCHECK's kind and command.

use std::ops::Range;

use super::source::{Logical, Source, is_split_space};
use crate::ast::{Args, Flag, KeyValue, Word};
use crate::error::{ParseError, ParseErrorKind};
use crate::json::{JsonArray, parse_array};

/// What the argument readers need: the source (for spans and errors), and the escape
/// character in force.
#[derive(Clone, Copy)]
pub(super) struct ArgReader<'s, 'a> {
    pub(super) src: &'s Source<'a>,
    pub(super) escape: char,
}

impl ArgReader<'_, '_> {
    /// A word covering `range` of the logical line, or `None` when the range is empty.
    pub(super) fn word(&self, lg: &Logical, range: Range<usize>) -> Option<Word> {
        let text = lg.text.get(range.clone())?;
        if text.is_empty() {
            return None;
        }
        Some(Word {
            text: text.to_string(),
            span: self.src.span(lg.src_range(range.start, range.end)),
        })
    }

    pub(super) fn word_at(&self, lg: &Logical, text: String, start: usize, end: usize) -> Word {
        Word {
            text,
            span: self.src.span(lg.src_range(start, end)),
        }
    }

    /// Docker's `extractBuilderFlags`: leading words that start with `--`, quotes removed and
    /// escapes resolved, up to the first other word (or a bare `--`). Gives the flags and
    /// where the rest starts.
    pub(super) fn flags(&self, lg: &Logical, start: usize, end: usize) -> (Vec<Flag>, usize) {
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

    pub(super) fn make_flags(
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
    pub(super) fn parse_words(
        &self,
        lg: &Logical,
        range: Range<usize>,
    ) -> Vec<(String, usize, usize)> {
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
    pub(super) fn split_words(&self, lg: &Logical, range: Range<usize>) -> Args {
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
    pub(super) fn json(
        &self,
        lg: &Logical,
        range: Range<usize>,
    ) -> Result<Option<Vec<Word>>, ParseError> {
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
    pub(super) fn json_or_shell(
        &self,
        lg: &Logical,
        range: Range<usize>,
    ) -> Result<Args, ParseError> {
        if range.is_empty() {
            return Ok(Args::Empty);
        }
        Ok(match self.json(lg, range.clone())? {
            Some(words) => Args::Json(words),
            None => self.word(lg, range).map_or(Args::Empty, Args::Shell),
        })
    }

    /// Docker's `parseMaybeJSONToList`.
    pub(super) fn json_or_words(
        &self,
        lg: &Logical,
        range: Range<usize>,
    ) -> Result<Args, ParseError> {
        Ok(match self.json(lg, range.clone())? {
            Some(words) => Args::Json(words),
            None => self.split_words(lg, range),
        })
    }

    /// Docker's `parseHealthConfig`: the kind word, then a command like CMD's.
    pub(super) fn healthcheck(
        &self,
        lg: &Logical,
        range: Range<usize>,
    ) -> Result<Args, ParseError> {
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
    pub(super) fn pairs(
        &self,
        lg: &Logical,
        range: Range<usize>,
        key: &str,
    ) -> Result<Args, ParseError> {
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
    pub(super) fn arg_pairs(&self, lg: &Logical, range: Range<usize>) -> Args {
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
    pub(super) fn split_pair(
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
}
