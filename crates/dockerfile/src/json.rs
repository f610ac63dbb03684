//! The JSON array of exec-form instructions, read the way Docker reads it (Go's
//! `encoding/json` into `[]any`), keeping where each element sits.
//!
//! Docker's rule: text that is not one valid JSON document (trailing text, a missing quote,
//! a number too large for a float64, nesting over 10000 levels) is not JSON, and the
//! instruction falls back to its shell or word form; a valid JSON array with an element that
//! is not a string is an error.

/// Go's `encoding/json` nesting limit.
const MAX_NESTING: usize = 10_000;

/// What the text is, as far as Docker's JSON form goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonArray {
    /// The strings, each with the byte range of its literal (quotes included).
    Strings(Vec<(String, usize, usize)>),
    /// Valid JSON array, but the element at this byte offset is not a string.
    NotStrings(usize),
    /// Not a JSON array: use the other form.
    Invalid,
}

/// Read `text` (already trimmed of leading whitespace) as Docker's exec form.
pub(crate) fn parse_array(text: &str) -> JsonArray {
    if !text.starts_with('[') {
        return JsonArray::Invalid;
    }
    let mut r = Reader {
        s: text.as_bytes(),
        text,
        i: 0,
        overflow: false,
    };
    match r.document() {
        Some(elements) if !r.overflow => {
            let mut out = Vec::with_capacity(elements.len());
            for e in elements {
                match e {
                    Element::Str(s, start, end) => out.push((s, start, end)),
                    Element::Other(at) => return JsonArray::NotStrings(at),
                }
            }
            JsonArray::Strings(out)
        }
        _ => JsonArray::Invalid,
    }
}

enum Element {
    Str(String, usize, usize),
    Other(usize),
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    /// A number that does not fit a float64: Go reports it after decoding, so the whole text
    /// counts as not JSON.
    overflow: bool,
}

#[derive(Clone, Copy)]
enum Open {
    Array,
    Object,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The whole document: the top-level array, then only whitespace.
    fn document(&mut self) -> Option<Vec<Element>> {
        let mut elements = Vec::new();
        self.i = 1;
        self.ws();
        if !self.eat(b']') {
            loop {
                self.ws();
                let start = self.i;
                if self.peek() == Some(b'"') {
                    let s = self.string(true)?;
                    elements.push(Element::Str(s, start, self.i));
                } else {
                    self.value()?;
                    elements.push(Element::Other(start));
                }
                self.ws();
                if self.eat(b']') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
            }
        }
        self.ws();
        (self.i == self.s.len()).then_some(elements)
    }

    /// Skip one value of any kind, without recursion.
    fn value(&mut self) -> Option<()> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // A value.
            self.ws();
            match self.peek()? {
                b'[' | b'{' if stack.len() + 1 >= MAX_NESTING => return None,
                b'[' => {
                    self.i += 1;
                    self.ws();
                    if !self.eat(b']') {
                        stack.push(Open::Array);
                        continue;
                    }
                }
                b'{' => {
                    self.i += 1;
                    self.ws();
                    if !self.eat(b'}') {
                        stack.push(Open::Object);
                        self.key()?;
                        continue;
                    }
                }
                b'"' => {
                    self.string(false)?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // After a value: close containers or move to the next member.
            loop {
                let Some(&open) = stack.last() else {
                    return Some(());
                };
                self.ws();
                if self.eat(b',') {
                    if let Open::Object = open {
                        self.key()?;
                    }
                    break;
                }
                let close = match open {
                    Open::Array => b']',
                    Open::Object => b'}',
                };
                if !self.eat(close) {
                    return None;
                }
                stack.pop();
            }
        }
    }

    /// `"key" :` inside an object.
    fn key(&mut self) -> Option<()> {
        self.ws();
        if self.peek() != Some(b'"') {
            return None;
        }
        self.string(false)?;
        self.ws();
        self.eat(b':').then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i.checked_add(word.len())?;
        if self.s.get(self.i..end)? == word {
            self.i = end;
            Some(())
        } else {
            None
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<()> {
        let start = self.i;
        self.eat(b'-');
        if self.eat(b'0') {
            // No leading zeros.
        } else if self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return None;
            }
        }
        let n: f64 = self.text.get(start..self.i)?.parse().ok()?;
        if n.is_infinite() {
            self.overflow = true;
        }
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let end = self.i.checked_add(4)?;
        let hex = self.text.get(self.i..end)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i = end;
        u32::from_str_radix(hex, 16).ok()
    }

    /// A string literal; decoded when `keep`. Lone surrogates become U+FFFD, as in Go.
    fn string(&mut self, keep: bool) -> Option<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let run_start = self.i;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            if keep {
                out.push_str(self.text.get(run_start..self.i)?);
            }
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.i += 1;
                    let simple = match self.peek()? {
                        b'"' => Some('"'),
                        b'\\' => Some('\\'),
                        b'/' => Some('/'),
                        b'b' => Some('\u{8}'),
                        b'f' => Some('\u{c}'),
                        b'n' => Some('\n'),
                        b'r' => Some('\r'),
                        b't' => Some('\t'),
                        b'u' => None,
                        _ => return None,
                    };
                    let c = match simple {
                        Some(c) => {
                            self.i += 1;
                            c
                        }
                        None => {
                            self.i += 1;
                            let unit = self.hex4()?;
                            self.code_point(unit)
                        }
                    };
                    if keep {
                        out.push(c);
                    }
                }
                // A control character inside a string.
                _ => return None,
            }
        }
    }

    /// The character of a `\uXXXX` escape, taking the low half of a surrogate pair when one
    /// follows.
    fn code_point(&mut self, unit: u32) -> char {
        if !(0xD800..0xE000).contains(&unit) {
            return char::from_u32(unit).unwrap_or('\u{FFFD}');
        }
        if (0xD800..0xDC00).contains(&unit) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
            let save = self.i;
            self.i += 2;
            if let Some(low) = self.hex4().filter(|l| (0xDC00..0xE000).contains(l)) {
                let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                return char::from_u32(c).unwrap_or('\u{FFFD}');
            }
            self.i = save;
        }
        '\u{FFFD}'
    }
}
