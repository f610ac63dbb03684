//! The fixes of one file as the lint shows them ([`Fixes`]), and which of them answers
//! which finding: a change answers a finding when the finding's rule is one of the
//! change's and their lines (or the lines of the change's edits) meet.

use std::collections::BTreeMap;

use serde::Serialize;

use super::change::{Change, Edit};
use crate::diagnostic::{Applicability, Fix};

/// The fixes of one file, as the lint shows them: the safe changes `--fix` makes, then the
/// unsafe ones only `--fix-unsafe` adds, and the edits they point at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fixes {
    pub changes: Vec<Change>,
    /// The safe changes' edits (exactly [`Fixed::edits`](crate::fix::Fixed::edits) of `--fix`), then those of
    /// `--fix-unsafe`, which replace them where they meet.
    pub edits: Vec<Edit>,
}

impl Fixes {
    /// Which change answers which finding, looked up by rule and lines.
    pub(crate) fn answers(&self) -> Answers {
        // Per rule: the changes' own lines, and the lines of their edits.
        let mut own: BTreeMap<&'static str, Spans> = BTreeMap::new();
        let mut spliced: BTreeMap<&'static str, Spans> = BTreeMap::new();
        for (k, c) in self.changes.iter().enumerate() {
            for &rule in &c.rules {
                own.entry(rule).or_default().push(c.line, c.end_line, k);
                for e in c.edits.iter().filter_map(|&e| self.edits.get(e)) {
                    spliced.entry(rule).or_default().push(e.line, e.end_line, k);
                }
            }
        }
        Answers {
            own: own.into_iter().map(|(r, s)| (r, s.done())).collect(),
            spliced: spliced.into_iter().map(|(r, s)| (r, s.done())).collect(),
            safety: self.changes.iter().map(|c| c.safety).collect(),
        }
    }
}

/// Which change of a file's [`Fixes`] answers a finding: one whose rules hold the
/// finding's and whose lines (or the lines of whose edits) meet the finding's.
#[derive(Debug)]
pub(crate) struct Answers {
    own: BTreeMap<&'static str, Spans>,
    spliced: BTreeMap<&'static str, Spans>,
    /// Per change.
    safety: Vec<Applicability>,
}

impl Answers {
    /// The fix of a finding of rule `id` on lines `line..=end_line`.
    pub(crate) fn fix(&self, id: &str, line: usize, end_line: usize) -> Option<Fix> {
        let end = end_line.max(line);
        // The change on the finding's lines; else one whose splice covers them (the apt
        // lists of an `apt-get update` merged into the install are removed at the install).
        let change = self
            .own
            .get(id)
            .and_then(|s| s.meeting(line, end))
            .or_else(|| self.spliced.get(id).and_then(|s| s.meeting(line, end)))?;
        Some(Fix {
            applicability: *self.safety.get(change)?,
            change,
        })
    }
}

/// Line ranges (first, last, what), to find one that meets a given range in logarithmic
/// time plus the ranges that overlap.
#[derive(Debug, Default)]
pub(super) struct Spans {
    pub(super) items: Vec<(usize, usize, usize)>,
    /// The largest `last` among `items[..=i]`.
    pub(super) max_last: Vec<usize>,
}

impl Spans {
    pub(super) fn push(&mut self, first: usize, last: usize, what: usize) {
        self.items.push((first, last, what));
    }

    pub(super) fn done(mut self) -> Spans {
        self.items.sort_unstable();
        let mut max = 0;
        self.max_last = self
            .items
            .iter()
            .map(|&(_, last, _)| {
                max = max.max(last);
                max
            })
            .collect();
        self
    }

    /// The latest-starting range that meets `first..=last`.
    pub(super) fn meeting(&self, first: usize, last: usize) -> Option<usize> {
        let upto = self.items.partition_point(|&(f, _, _)| f <= last);
        for i in (0..upto).rev() {
            if self.max_last.get(i).is_none_or(|&m| m < first) {
                return None;
            }
            if let Some(&(_, l, what)) = self.items.get(i)
                && l >= first
            {
                return Some(what);
            }
        }
        None
    }
}
