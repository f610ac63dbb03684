//! What the fixer gives back for each fix it makes: a [`Change`] (its id, the rules it
//! answers, whether it is safe, what was done, where), carried by [`Edit`]s, splices of the
//! original text.

use std::ops::Range;

use serde::Serialize;

use crate::diagnostic::Applicability;
use crate::rules::FixId;

/// One splice of the original text: bytes `start..end` replaced by `content`. Lines and
/// columns (1-based, columns in characters) say where for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub content: String,
}

/// `edits` applied to `src` (sorted by start, not overlapping): what [`fix`](crate::fix::fix()) does with
/// [`Fixed::edits`](crate::fix::Fixed::edits).
pub fn apply_edits(src: &str, edits: &[Edit]) -> Option<String> {
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    for e in edits {
        if e.start < at || e.end < e.start {
            return None;
        }
        out.push_str(src.get(at..e.start)?);
        out.push_str(&e.content);
        at = e.end;
    }
    out.push_str(src.get(at..)?);
    Some(out)
}

/// One change that [`fix`](crate::fix::fix()) made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub id: FixId,
    /// The lint rules it answers.
    pub rules: Vec<&'static str>,
    pub safety: Applicability,
    /// What was done, in one sentence.
    pub description: String,
    /// 1-based first and last line, in the original text, of what was changed.
    pub line: usize,
    pub end_line: usize,
    /// The original lines of the instructions changed.
    pub original: String,
    /// The splices of the original text that carry this change: indices into
    /// [`Fixed::edits`](crate::fix::Fixed::edits) (or [`Fixes::edits`](crate::fix::Fixes::edits)). A splice may carry several changes (a merged
    /// RUN with `--no-cache-dir` added inside it); the edits of an unsafe change hold the
    /// safe changes of the same lines too.
    pub edits: Vec<usize>,
}

/// Splices as [`Edit`]s, with lines and columns of the original text.
pub(super) fn edits_of(src: &str, splices: Vec<(Range<usize>, String)>) -> Vec<Edit> {
    // Line starts, to turn offsets into lines by binary search.
    let starts: Vec<usize> = std::iter::once(0)
        .chain(src.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let place = |offset: usize| -> (usize, usize) {
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let start = starts.get(line - 1).copied().unwrap_or(0);
        let column = src.get(start..offset).map_or(0, |t| t.chars().count()) + 1;
        (line, column)
    };
    splices
        .into_iter()
        .map(|(r, content)| {
            let (line, column) = place(r.start);
            let (end_line, end_column) = place(r.end);
            Edit {
                start: r.start,
                end: r.end,
                line,
                column,
                end_line,
                end_column,
                content,
            }
        })
        .collect()
}

/// The edits that touch the lines of `change`.
pub(super) fn carrying(edits: &[Edit], change: &Change) -> Vec<usize> {
    edits
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            // An edit ending at the start of a line does not touch that line.
            let last = if e.end_column == 1 && e.end_line > e.line {
                e.end_line - 1
            } else {
                e.end_line
            };
            e.line <= change.end_line && change.line <= last
        })
        .map(|(k, _)| k)
        .collect()
}
