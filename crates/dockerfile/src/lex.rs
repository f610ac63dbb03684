//! Docker's shell-like word processing (BuildKit's `shell.Lex`), without variable values.
//!
//! Docker runs words through this lexer in two places that matter to a parser: to find
//! heredoc markers (`<<EOF`) on an instruction line, and to remove quotes and escapes from
//! the words of ENV, LABEL, COPY and the like when it uses them. Every variable is treated as
//! unset and left as written (`$A`, `${A:-x}`), which is what Docker's parser itself does when
//! it looks for heredocs.
//!
//! Quirks kept because Docker has them: inside double quotes the escape character only
//! escapes `"`, `$` and itself (otherwise it stays); with raw escapes on, an escape that
//! escapes nothing inside double quotes is written twice; nested `${…}` words share one word
//! buffer, so a word that contains `${a:-b}` restarts at it; `${a//b/c}` comes back as
//! `${a/b/c}`. Nesting deeper than [`MAX_DEPTH`] `${` is refused instead of followed.

use crate::error::WordError;

/// Deepest `${…${…}…}` nesting followed (Docker has no limit; this keeps the stack bounded).
pub(crate) const MAX_DEPTH: usize = 64;

/// A word found by [`words`], with its byte range in the lexed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexWord {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Default)]
struct Words {
    words: Vec<LexWord>,
    in_word: bool,
}

struct Lexer<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    /// The current word; shared by nested calls, as in Docker.
    buf: String,
    buf_start: usize,
    depth: usize,
}

/// `text` with quotes removed and escapes resolved (Docker's `ProcessWord`), variables left
/// as written.
pub(crate) fn unquote(text: &str, escape: char) -> Result<String, WordError> {
    Lexer::new(text, escape, false, false)
        .run()
        .map(|(result, _)| result)
}

/// The words of `text` split the way Docker splits a line when looking for heredocs (escape
/// `\`, quotes and escapes kept in the words).
pub(crate) fn heredoc_words(text: &str) -> Result<Vec<LexWord>, WordError> {
    Lexer::new(text, '\\', true, true)
        .run()
        .map(|(_, words)| words)
}

/// Docker's `ProcessWords`: words with quotes removed (`raw_quotes` false) or kept.
pub(crate) fn split_words(text: &str, raw_quotes: bool) -> Result<Vec<String>, WordError> {
    Lexer::new(text, '\\', raw_quotes, false)
        .run()
        .map(|(_, words)| words.into_iter().map(|w| w.text).collect())
}

fn err<T>(msg: impl Into<String>) -> Result<T, WordError> {
    Err(WordError(msg.into()))
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, escape: char, raw_quotes: bool, raw_escapes: bool) -> Self {
        Lexer {
            src,
            chars: src.char_indices().collect(),
            pos: 0,
            escape,
            raw_quotes,
            raw_escapes,
            buf: String::new(),
            buf_start: 0,
            depth: 0,
        }
    }

    fn run(&mut self) -> Result<(String, Vec<LexWord>), WordError> {
        let raw = self.raw_escapes;
        self.stop_on(None, raw)
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|c| c.1)
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn offset(&self) -> usize {
        self.chars.get(self.pos).map_or(self.src.len(), |c| c.0)
    }

    fn add_char(&mut self, w: &mut Words, ch: char, at: usize) {
        if ch.is_whitespace() {
            if w.in_word && !self.buf.is_empty() {
                w.words.push(LexWord {
                    text: std::mem::take(&mut self.buf),
                    start: self.buf_start,
                    end: at,
                });
                w.in_word = false;
            }
        } else {
            self.add_raw_char(w, ch, at);
        }
    }

    fn add_raw_char(&mut self, w: &mut Words, ch: char, at: usize) {
        if self.buf.is_empty() {
            self.buf_start = at;
        }
        self.buf.push(ch);
        w.in_word = true;
    }

    fn add_string(&mut self, w: &mut Words, s: &str, at: usize) {
        for ch in s.chars() {
            self.add_char(w, ch, at);
        }
    }

    fn add_raw_string(&mut self, w: &mut Words, s: &str, at: usize) {
        if self.buf.is_empty() {
            self.buf_start = at;
        }
        self.buf.push_str(s);
        w.in_word = true;
    }

    fn finish(&mut self, mut w: Words, end: usize) -> Vec<LexWord> {
        if !self.buf.is_empty() {
            w.words.push(LexWord {
                text: std::mem::take(&mut self.buf),
                start: self.buf_start,
                end,
            });
        }
        w.words
    }

    /// Process up to `stop` (consumed) or the end of the text.
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<LexWord>), WordError> {
        if self.depth >= MAX_DEPTH {
            return err("substitutions nested too deeply");
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        result
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<LexWord>), WordError> {
        let mut result = String::new();
        self.buf.clear();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            let at = self.offset();
            if Some(ch) == stop {
                self.next();
                let words = self.finish(words, at);
                return Ok((result, words));
            }
            match ch {
                '$' => {
                    let tmp = self.dollar()?;
                    result.push_str(&tmp);
                    self.add_string(&mut words, &tmp, at);
                }
                '<' => {
                    let tmp = self.possible_heredoc();
                    result.push_str(&tmp);
                    self.add_raw_string(&mut words, &tmp, at);
                }
                '\'' => {
                    let tmp = self.single_quote()?;
                    result.push_str(&tmp);
                    self.add_raw_string(&mut words, &tmp, at);
                }
                '"' => {
                    let tmp = self.double_quote()?;
                    result.push_str(&tmp);
                    self.add_raw_string(&mut words, &tmp, at);
                }
                _ => {
                    self.next();
                    let mut ch = ch;
                    if ch == self.escape {
                        if self.raw_escapes {
                            self.add_raw_char(&mut words, ch, at);
                            result.push(ch);
                        }
                        // The escape character escapes the next one; at the end it is dropped.
                        match self.next() {
                            Some(c) => ch = c,
                            None => break,
                        }
                        self.add_raw_char(&mut words, ch, at);
                    } else {
                        self.add_char(&mut words, ch, at);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        let end = self.offset();
        Ok((result, self.finish(words, end)))
    }

    fn single_quote(&mut self) -> Result<String, WordError> {
        let mut out = String::new();
        self.next();
        if self.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching single-quote",
                    );
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, WordError> {
        let mut out = String::new();
        self.next();
        if self.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return err(
                        "unexpected end of statement while looking for matching double-quote",
                    );
                }
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            // An escape at the very end is ignored (the quote is then unclosed).
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.escape => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `$name` or `${…}`, given back as written since no variable is set.
    fn dollar(&mut self) -> Result<String, WordError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(format!("${name}"));
        }
        self.next();
        match self.peek() {
            None => return err("syntax error: missing '}'"),
            Some('{' | '}' | ':') => return err("syntax error: bad substitution"),
            Some(_) => {}
        }
        let name = self.name();
        let ch = self.next();
        // Go prints the end of input as U+FFFD.
        let mut modifier = String::from(ch.unwrap_or('\u{FFFD}'));
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut op = ch;
                let null_is_unset = ch == Some(':');
                if null_is_unset {
                    op = self.next();
                    modifier.push(op.unwrap_or('\u{FFFD}'));
                }
                let raw = matches!(op, Some('#' | '%'));
                if null_is_unset && raw {
                    return err(format!("unsupported modifier ({modifier}) in substitution"));
                }
                let (word, _) = self.stop_on_or(Some('}'), raw, "syntax error: missing '}'")?;
                Ok(format!("${{{name}{modifier}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.next();
                }
                let (pattern, _) =
                    self.stop_on_or(Some('/'), true, "syntax error: missing '/' in ${}")?;
                let (replacement, _) =
                    self.stop_on_or(Some('}'), true, "syntax error: missing '}'")?;
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => err(format!("unsupported modifier ({modifier}) in substitution")),
        }
    }

    /// [`Self::stop_on`], with `at_end` as the message when the text ran out.
    fn stop_on_or(
        &mut self,
        stop: Option<char>,
        raw: bool,
        at_end: &str,
    ) -> Result<(String, Vec<LexWord>), WordError> {
        self.stop_on(stop, raw).map_err(|e| {
            if self.peek().is_none() {
                WordError(at_end.into())
            } else {
                e
            }
        })
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                name.push(ch);
                return name;
            }
            if !ch.is_alphabetic() && !ch.is_numeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// `<<` followed by blanks stays one word, so `<< EOF` is a heredoc marker.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            self.next();
            out.push(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_follows_docker() {
        let u = |s: &str| unquote(s, '\\').unwrap();
        assert_eq!(u(r#""two words""#), "two words");
        assert_eq!(u("'single $X'"), "single $X");
        assert_eq!(u(r#"a\ b"#), "a b");
        assert_eq!(u(r#""a\"b""#), "a\"b");
        assert_eq!(u(r#""a\nb""#), "a\\nb");
        assert_eq!(u("$HOME/x"), "$HOME/x");
        assert_eq!(u("${A:-b c}"), "${A:-b c}");
        assert_eq!(u("${A//x/y}"), "${A/x/y}");
        assert_eq!(unquote("a`\"b", '`').unwrap(), "a\"b");
        assert!(unquote("'open", '\\').is_err());
        assert!(unquote("\"open", '\\').is_err());
        assert!(unquote("${", '\\').is_err());
        assert!(unquote("${}", '\\').is_err());
        assert!(unquote("${a!}", '\\').is_err());
    }

    #[test]
    fn heredoc_words_keep_quotes_and_blanks_after_markers() {
        let w: Vec<String> = heredoc_words(r#"RUN <<  EOF "a b" c\ d"#)
            .unwrap()
            .into_iter()
            .map(|w| w.text)
            .collect();
        assert_eq!(w, ["RUN", "<<  EOF", "\"a b\"", "c\\ d"]);
    }

    #[test]
    fn deep_nesting_is_refused_not_followed() {
        let deep = "${a:-".repeat(10_000);
        assert!(unquote(&deep, '\\').is_err());
        let ok = format!("{}x{}", "${a:-".repeat(10), "}".repeat(10));
        assert_eq!(unquote(&ok, '\\').unwrap(), ok);
    }
}
