//! Where each byte of a RUN's shell text (continuations joined, comment lines dropped)
//! comes from in the source, so that an edit of the script is a splice of the file.

use std::ops::Range;

use crate::ast::Word;
use crate::parser::trim_continuation;

/// Where each byte of a RUN's shell text comes from in the source: the text is the source
/// with continuations (escape character, line break) and comment lines taken out.
#[derive(Debug, Clone)]
pub(super) struct SrcMap {
    /// (offset in the shell text, offset in the source) where each piece starts.
    pub(super) pieces: Vec<(usize, usize)>,
    pub(super) text: String,
}

impl SrcMap {
    /// Rebuild the pieces of `word` the way the parser joins lines, or `None` when that
    /// does not give the word's text back.
    pub(super) fn new(src: &str, word: &Word, escape: char) -> Option<SrcMap> {
        let base = word.span.start.offset;
        let region = src.get(word.span.range())?;
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut at = 0;
        for (n, raw) in region.split_inclusive('\n').enumerate() {
            let line = raw.trim_end_matches(['\r', '\n']);
            if n > 0 {
                let t = line.trim_start();
                if t.starts_with('#') || t.is_empty() {
                    at += raw.len();
                    continue;
                }
            }
            let (piece, _) = trim_continuation(line, escape);
            if !piece.is_empty() {
                pieces.push((text.len(), base + at));
                text.push_str(piece);
            }
            at += raw.len();
        }
        (text == word.text).then_some(SrcMap { pieces, text })
    }

    /// Source offset of byte `off` of the shell text.
    pub(super) fn src(&self, off: usize) -> usize {
        let i = self.pieces.partition_point(|p| p.0 <= off);
        match i.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some(&(l, s)) => s + (off - l),
            None => self.pieces.first().map_or(0, |p| p.1),
        }
    }

    /// Source offset for an insertion at `off` of the shell text: right after the byte
    /// before it, so the insertion stays on that line.
    pub(super) fn insert_at(&self, off: usize) -> usize {
        match self
            .text
            .get(..off)
            .and_then(|t| t.char_indices().next_back())
        {
            Some((prev, c)) => self.src(prev) + c.len_utf8(),
            None => self.src(0),
        }
    }

    /// Source range of the shell-text range `r`.
    pub(super) fn range(&self, r: &Range<usize>) -> Range<usize> {
        if r.is_empty() {
            let s = self.insert_at(r.start);
            return s..s;
        }
        self.src(r.start)..self.insert_at(r.end)
    }
}
