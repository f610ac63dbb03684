//! The auto-fix: rewrite a Dockerfile's text so that it makes fewer layers and leaves no
//! package caches behind, without changing what ends up installed (unless asked to).
//!
//! The source is spliced, never printed again from the tree: whatever is not fixed stays
//! byte for byte, and a file with nothing to fix comes back as it was. Every rewritten
//! instruction is read back with [`crate::parse`] and compared with what the fix meant to
//! write (flags and the shell text Docker will run); a RUN whose rewrite does not read back
//! as intended is left as it was. Fixing a fixed file changes nothing.
//!
//! Only RUNs in shell form, without heredocs, run by `/bin/sh` (no SHELL earlier in the
//! stage or in the stage it is built on, no Windows base) and whose script this module can
//! read (quotes and parentheses balanced, no `case`) are touched; ONBUILD triggers never.
//!
//! Safe fixes ([`Safety::Safe`], always applied):
//!
//! * [`FixId::MergeRuns`]: consecutive RUNs with the same flags are joined with `&&`, one
//!   command group per line (`` \ `` or the file's escape character, 4 spaces), comments
//!   that were above or between them kept above, in order. Only RUNs directly after one
//!   another (comment lines, blank lines and RUNs whose every command was moved away may be
//!   between). Each RUN ran in a shell of its own, so a script that would reach the commands
//!   joined after it (`cd`, `export`, `set`, `exit`, `source`, `exec`, `trap`, `umask`, a
//!   bare assignment, a function, …) becomes a subshell `( … )`, and so does a script with
//!   a top-level `||` or `;` joined after another (`A && (B || C)`, not `A && B || C`). Not
//!   joined: a script with a `#` comment (it would swallow what follows) or a background
//!   `&` (it would outlive its RUN), and RUNs with a tmpfs or writable bind mount (new for
//!   each RUN). `apt-get update` alone in a RUN is thus folded into the install after it.
//! * [`FixId::MoveCleanup`]: a cleanup in a later RUN — `apt-get clean`, or `rm` of
//!   `/var/lib/apt/lists…`, `/var/cache/apt…`, pip's cache in root's home (`/root`, `~`,
//!   `$HOME`), or a file named under `/tmp` or `/var/tmp` — is moved to the end of the
//!   last RUN before it in the stage that mentions the cache (`apt`, `pip`, the file's
//!   path), the later command (or its RUN, when nothing is left) removed. Only from a RUN
//!   without mounts whose script is one `&&` chain, into a RUN that can take more commands
//!   and has no mount over the cache, and only when nothing between could touch the cache
//!   or change where it is: no USER, SHELL or VOLUME, no COPY/ADD/ENV/ARG/WORKDIR that
//!   mentions it (or `home`, `xdg`, `tmp` as it applies), no RUN that mentions `tmp` for a
//!   file under /tmp. Globs under /tmp (`/tmp/*`) are never moved: what else is there
//!   cannot be known.
//! * [`FixId::AptListsCleanup`]: `rm -rf /var/lib/apt/lists/*` at the end of a RUN that
//!   updates or uses apt's lists and does not remove them afterwards, unless the next apt
//!   command of the stage needs the lists before fetching them again (an install without
//!   its own update), a stage built on this one does, or the RUN has a mount over them.
//! * [`FixId::PipNoCacheDir`]: `--no-cache-dir` after `install` in every spelling of
//!   `pip install` ([`crate::shell::Command::is_pip_install`]), unless `PIP_NO_CACHE_DIR`
//!   is set (ENV, ARG, or in the script), a `--cache-dir` is given or the RUN has a cache
//!   mount.
//! * [`FixId::ApkNoCache`]: `--no-cache` after `apk add`, unless a cache option or a cache
//!   mount is there: the same packages, without the index left in the layer.
//!
//! Unsafe fixes ([`Safety::Unsafe`], only with [`FixOptions::unsafe_fixes`]):
//!
//! * [`FixId::AptNoInstallRecommends`]: `--no-install-recommends` after `apt-get install`
//!   (and `apt install`), unless the file mentions `Install-Recommends` anywhere. Fewer
//!   packages get installed: what the image needs from them must be named.

mod diff;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::Serialize;

use crate::ast::{Dockerfile, Instruction, Keyword, Word};
use crate::diagnostic::Fix;
use crate::error::ParseError;
use crate::shell::{self, Cmd, Script, Tok};

pub use crate::diagnostic::Applicability;
/// Whether a change keeps what gets installed: the [`Applicability`] of the fix it is.
pub use crate::diagnostic::Applicability as Safety;
pub use crate::rules::FixId;
pub use diff::unified_diff;

/// What [`fix`] may do, and how to name the file in the diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixOptions {
    /// Also apply the fixes that change what gets installed ([`Safety::Unsafe`]); the CLI's
    /// `--fix-unsafe`.
    pub unsafe_fixes: bool,
    /// The path shown in the diff headers (`--- a/PATH`, `+++ b/PATH`).
    pub path: String,
}

impl Default for FixOptions {
    fn default() -> Self {
        FixOptions {
            unsafe_fixes: false,
            path: "Dockerfile".to_string(),
        }
    }
}

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

/// `edits` applied to `src` (sorted by start, not overlapping): what [`fix`] does with
/// [`Fixed::edits`].
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

/// One change that [`fix`] made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub id: FixId,
    /// The lint rules it answers.
    pub rules: Vec<&'static str>,
    pub safety: Safety,
    /// What was done, in one sentence.
    pub description: String,
    /// 1-based first and last line, in the original text, of what was changed.
    pub line: usize,
    pub end_line: usize,
    /// The original lines of the instructions changed.
    pub original: String,
    /// The splices of the original text that carry this change: indices into
    /// [`Fixed::edits`] (or [`Fixes::edits`]). A splice may carry several changes (a merged
    /// RUN with `--no-cache-dir` added inside it); the edits of an unsafe change hold the
    /// safe changes of the same lines too.
    pub edits: Vec<usize>,
}

/// Layer counts: RUN instructions, and every instruction that makes a layer (RUN, COPY,
/// ADD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Layers {
    pub run: usize,
    pub layers: usize,
}

/// [`Layers`] of the final stage and of the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LayerCounts {
    pub final_stage: Layers,
    pub file: Layers,
}

/// What [`fix`] gives back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fixed {
    /// The new text (the input itself when nothing was fixed).
    pub text: String,
    /// The changes, in the order of their lines.
    pub changes: Vec<Change>,
    pub before: LayerCounts,
    pub after: LayerCounts,
    /// `--- a/PATH` / `+++ b/PATH` unified diff, 3 lines of context; empty when unchanged.
    pub diff: String,
    /// Every splice made, in order: [`apply_edits`] of them on the input gives `text`.
    pub edits: Vec<Edit>,
}

impl Fixed {
    /// Whether anything was changed.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Layer counts of a parsed Dockerfile (ONBUILD triggers are not counted: they run in
/// another build).
pub fn layer_counts(df: &Dockerfile) -> LayerCounts {
    let count = |insts: &[Instruction]| Layers {
        run: insts.iter().filter(|i| i.keyword == Keyword::Run).count(),
        layers: insts
            .iter()
            .filter(|i| matches!(i.keyword, Keyword::Run | Keyword::Copy | Keyword::Add))
            .count(),
    };
    let final_stage = df
        .stages()
        .last()
        .map(|s| {
            count(
                df.instructions
                    .get(s.instructions.clone())
                    .unwrap_or_default(),
            )
        })
        .unwrap_or_default();
    LayerCounts {
        final_stage,
        file: count(&df.instructions),
    }
}

/// Fix `src`. Errors only when `src` does not parse; a Dockerfile with nothing to fix comes
/// back byte for byte.
pub fn fix(src: &str, options: &FixOptions) -> Result<Fixed, ParseError> {
    let df = crate::parse(src)?;
    let before = layer_counts(&df);
    let mut frozen: BTreeSet<usize> = BTreeSet::new();
    let mut result = None;
    // Each round either succeeds or freezes at least one more RUN, so this ends.
    for _ in 0..=df.instructions.len() {
        let planner = Planner::new(src, &df, options, &frozen);
        let plan = planner.plan();
        if plan.changes.is_empty() {
            break;
        }
        match planner
            .render(&plan)
            .and_then(|(text, expects, applied)| Ok((check(&text, &df, &expects)?, text, applied)))
        {
            Ok((after, text, applied)) => {
                let edits = edits_of(src, applied);
                let mut changes = plan.changes;
                for c in &mut changes {
                    c.edits = carrying(&edits, c);
                }
                result = Some((text, changes, after, edits));
                break;
            }
            Err(bad) => {
                #[cfg(test)]
                tests::REJECTED.with(|n| n.set(n.get() + 1));
                let before_len = frozen.len();
                frozen.extend(bad);
                if frozen.len() == before_len {
                    // Nothing new to blame: give up on every change.
                    frozen.extend(planner.runs.keys().copied());
                }
            }
        }
    }
    Ok(match result {
        Some((text, mut changes, after, edits)) => {
            changes.sort_by_key(|c| (c.line, c.id));
            Fixed {
                diff: unified_diff(src, &text, &options.path, 3),
                after: layer_counts(&after),
                text,
                changes,
                before,
                edits,
            }
        }
        None => Fixed {
            text: src.to_string(),
            changes: Vec::new(),
            before,
            after: before,
            diff: String::new(),
            edits: Vec::new(),
        },
    })
}

/// Splices as [`Edit`]s, with lines and columns of the original text.
fn edits_of(src: &str, splices: Vec<(Range<usize>, String)>) -> Vec<Edit> {
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
fn carrying(edits: &[Edit], change: &Change) -> Vec<usize> {
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

/// The fixes of one file, as the lint shows them: the safe changes `--fix` makes, then the
/// unsafe ones only `--fix-unsafe` adds, and the edits they point at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Fixes {
    pub changes: Vec<Change>,
    /// The safe changes' edits (exactly [`Fixed::edits`] of `--fix`), then those of
    /// `--fix-unsafe`, which replace them where they meet.
    pub edits: Vec<Edit>,
}

/// The fixes of `src` as the lint shows them ([`crate::lint::lint_with_fixes`]): the safe
/// changes `--fix` makes, then, when `unsafe_too`, the unsafe ones only `--fix-unsafe` adds.
pub(crate) fn fixes(src: &str, unsafe_too: bool) -> Result<Fixes, ParseError> {
    let path = FixOptions::default().path;
    let safe = fix(
        src,
        &FixOptions {
            unsafe_fixes: false,
            path: path.clone(),
        },
    )?;
    let mut changes = safe.changes;
    let mut edits = safe.edits;
    if unsafe_too {
        let all = fix(
            src,
            &FixOptions {
                unsafe_fixes: true,
                path,
            },
        )?;
        let base = edits.len();
        let mut used = BTreeMap::new();
        for mut c in all
            .changes
            .into_iter()
            .filter(|c| c.safety == Safety::Unsafe)
        {
            for k in &mut c.edits {
                let next = base + used.len();
                *k = *used.entry(*k).or_insert(next);
            }
            changes.push(c);
        }
        let mut kept: Vec<(usize, usize)> = used.into_iter().map(|(k, n)| (n, k)).collect();
        kept.sort_unstable();
        edits.extend(
            kept.into_iter()
                .filter_map(|(_, k)| all.edits.get(k).cloned()),
        );
    }
    Ok(Fixes { changes, edits })
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
    safety: Vec<Safety>,
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
struct Spans {
    items: Vec<(usize, usize, usize)>,
    /// The largest `last` among `items[..=i]`.
    max_last: Vec<usize>,
}

impl Spans {
    fn push(&mut self, first: usize, last: usize, what: usize) {
        self.items.push((first, last, what));
    }

    fn done(mut self) -> Spans {
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
    fn meeting(&self, first: usize, last: usize) -> Option<usize> {
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

/// What a rewritten Dockerfile must read back as, instruction by instruction.
#[derive(Debug)]
enum Expect {
    /// An instruction left alone: the same logical line.
    Same(usize),
    /// A RUN rewritten from `members` (several when merged): these flags, this shell text.
    Run { members: Vec<usize>, script: String },
}

/// Read `text` back and compare it with `expects`; on a mismatch, the RUNs to leave alone.
fn check(text: &str, df: &Dockerfile, expects: &[Expect]) -> Result<Dockerfile, BTreeSet<usize>> {
    let touched = |upto: usize| -> BTreeSet<usize> {
        // The RUNs rewritten at or before expectation `upto`: one of them broke the text.
        expects
            .iter()
            .take(upto + 1)
            .rev()
            .find_map(|e| match e {
                Expect::Run { members, .. } => Some(members.iter().copied().collect()),
                Expect::Same(_) => None,
            })
            .unwrap_or_default()
    };
    let Ok(new) = crate::parse(text) else {
        return Err(BTreeSet::new());
    };
    if new.escape != df.escape || new.directives.len() != df.directives.len() {
        return Err(BTreeSet::new());
    }
    for (j, e) in expects.iter().enumerate() {
        let Some(got) = new.instructions.get(j) else {
            return Err(touched(j));
        };
        let ok = match e {
            Expect::Same(i) => df.instructions.get(*i).is_some_and(|old| {
                old.keyword == got.keyword
                    && old.original == got.original
                    && heredoc_bodies(old) == heredoc_bodies(got)
            }),
            Expect::Run { members, script } => {
                let first = members.first().and_then(|&i| df.instructions.get(i));
                got.keyword == Keyword::Run
                    && got.heredocs.is_empty()
                    && got.shell().is_some_and(|w| &w.text == script)
                    && first.is_some_and(|f| f.same_flags(got))
            }
        };
        if !ok {
            return Err(touched(j));
        }
    }
    if new.instructions.len() != expects.len() {
        return Err(touched(expects.len()));
    }
    Ok(new)
}

/// Heredocs without their positions (which move when lines before them change).
fn heredoc_bodies(inst: &Instruction) -> Vec<(&str, &str, bool, bool, Option<u64>)> {
    inst.heredocs
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.body.as_str(),
                h.strip_tabs,
                h.expand,
                h.fd,
            )
        })
        .collect()
}

/// Where each byte of a RUN's shell text comes from in the source: the text is the source
/// with continuations (escape character, line break) and comment lines taken out.
#[derive(Debug, Clone)]
struct SrcMap {
    /// (offset in the shell text, offset in the source) where each piece starts.
    pieces: Vec<(usize, usize)>,
    text: String,
}

impl SrcMap {
    /// Rebuild the pieces of `word` the way the parser joins lines, or `None` when that
    /// does not give the word's text back.
    fn new(src: &str, word: &Word, escape: char) -> Option<SrcMap> {
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
            let piece = trim_continuation(line, escape);
            if !piece.is_empty() {
                pieces.push((text.len(), base + at));
                text.push_str(piece);
            }
            at += raw.len();
        }
        (text == word.text).then_some(SrcMap { pieces, text })
    }

    /// Source offset of byte `off` of the shell text.
    fn src(&self, off: usize) -> usize {
        let i = self.pieces.partition_point(|p| p.0 <= off);
        match i.checked_sub(1).and_then(|i| self.pieces.get(i)) {
            Some(&(l, s)) => s + (off - l),
            None => self.pieces.first().map_or(0, |p| p.1),
        }
    }

    /// Source offset for an insertion at `off` of the shell text: right after the byte
    /// before it, so the insertion stays on that line.
    fn insert_at(&self, off: usize) -> usize {
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
    fn range(&self, r: &Range<usize>) -> Range<usize> {
        if r.is_empty() {
            let s = self.insert_at(r.start);
            return s..s;
        }
        self.src(r.start)..self.insert_at(r.end)
    }
}

/// The parser's rule for a line that continues: ends with the escape character (and
/// blanks), not itself escaped. The line without the escape character and what follows.
fn trim_continuation(line: &str, escape: char) -> &str {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(before) if !before.ends_with(escape) => before,
        _ => line,
    }
}

/// A cache a cleanup command removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Cache {
    /// `/var/lib/apt/lists`, `/var/cache/apt` (and `apt-get clean`).
    Apt,
    /// pip's cache in root's home.
    Pip,
    /// One named file or directory under `/tmp` or `/var/tmp` (a download).
    Tmp(String),
}

impl Cache {
    /// Whether an instruction's text shows it may make or use this cache; the cleanup
    /// belongs after the last one that does.
    fn used_by(&self, text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        match self {
            Cache::Apt => lower.contains("apt"),
            Cache::Pip => lower.contains("pip"),
            Cache::Tmp(p) => text.contains(p.as_str()),
        }
    }

    /// Whether an instruction between the maker and the cleanup could touch the cache
    /// (or change where it is) without being a maker itself.
    fn disturbed_by(&self, inst: &Instruction, text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        match inst.keyword {
            Keyword::Run => matches!(self, Cache::Tmp(_)) && lower.contains("tmp"),
            // Another user, another shell, a volume (later writes discarded), another stage.
            Keyword::User | Keyword::Shell | Keyword::Volume | Keyword::From => true,
            Keyword::Copy | Keyword::Add | Keyword::Env | Keyword::Arg | Keyword::Workdir => {
                match self {
                    Cache::Apt => lower.contains("apt"),
                    Cache::Pip => ["pip", ".cache", "home", "xdg"]
                        .iter()
                        .any(|w| lower.contains(w)),
                    Cache::Tmp(_) => lower.contains("tmp"),
                }
            }
            _ => false,
        }
    }

    /// Paths a mount on which would make the cleanup act on the mount instead of the
    /// layer.
    fn paths(&self) -> Vec<&str> {
        match self {
            Cache::Apt => vec!["/var/lib/apt/lists", "/var/cache/apt"],
            Cache::Pip => vec!["/root/.cache/pip"],
            Cache::Tmp(p) => vec![p.as_str()],
        }
    }
}

/// A command that only removes caches: `rm -rf <known cache paths>` or `apt-get clean`.
#[derive(Debug, Clone)]
struct Cleanup {
    /// `rm`'s options as written (`-rf`); empty for `apt-get clean`.
    options: Vec<String>,
    /// What it removes: the cache and the operand as written (`apt-get clean` has one
    /// item, with no operand).
    items: Vec<(Cache, String)>,
}

fn cleanup_of(cmd: &Cmd, script: &str) -> Option<Cleanup> {
    if !cmd.assignments.is_empty() || !cmd.redirects.is_empty() {
        return None;
    }
    let raw = |t: &Tok| script.get(t.range.clone()).unwrap_or("").to_string();
    let first = cmd.words.first()?;
    let rest = cmd.words.get(1..).unwrap_or_default();
    // Only plain words: quotes would change what `~` and globs do.
    if cmd.words.iter().any(|w| raw(w) != w.text) {
        return None;
    }
    match first.text.as_str() {
        "rm" | "/bin/rm" | "/usr/bin/rm" => {
            let mut options = Vec::new();
            let mut items = Vec::new();
            let mut operands_only = false;
            for w in rest {
                let t = w.text.as_str();
                if !operands_only && t == "--" {
                    operands_only = true;
                    options.push(t.to_string());
                } else if !operands_only && t.starts_with('-') {
                    let short = t.len() > 1
                        && !t.starts_with("--")
                        && t.chars()
                            .skip(1)
                            .all(|c| matches!(c, 'r' | 'R' | 'f' | 'v'));
                    let long = matches!(t, "--recursive" | "--force" | "--verbose");
                    if !short && !long {
                        return None;
                    }
                    options.push(t.to_string());
                } else {
                    items.push((cache_of_path(t)?, t.to_string()));
                }
            }
            (!items.is_empty()).then_some(Cleanup { options, items })
        }
        "apt-get" | "apt" => {
            let mut sub = None;
            for w in rest {
                match w.text.as_str() {
                    "-y" | "-q" | "-qq" | "--yes" | "--quiet" | "--assume-yes" => {}
                    "clean" | "autoclean" if sub.is_none() => sub = Some(()),
                    _ => return None,
                }
            }
            sub.map(|()| Cleanup {
                options: Vec::new(),
                items: vec![(Cache::Apt, String::new())],
            })
        }
        _ => None,
    }
}

/// The cache an `rm` operand belongs to, for the paths whose maker can be found.
fn cache_of_path(p: &str) -> Option<Cache> {
    if p.contains("..") {
        return None;
    }
    let under = |dir: &str| p == dir || p.strip_prefix(dir).is_some_and(|r| r.starts_with('/'));
    if !p.contains('$') && (under("/var/lib/apt/lists") || under("/var/cache/apt")) {
        return Some(Cache::Apt);
    }
    for home in ["/root", "~", "$HOME", "${HOME}"] {
        if let Some(rest) = p.strip_prefix(home)
            && matches!(rest, "/.cache/pip" | "/.cache/pip/" | "/.cache/pip/*")
        {
            return Some(Cache::Pip);
        }
    }
    let named = p
        .strip_prefix("/tmp/")
        .or_else(|| p.strip_prefix("/var/tmp/"))
        .is_some_and(|rest| {
            !rest.trim_matches('/').is_empty()
                && !rest.contains(|c: char| "*?[]{}$~`\\".contains(c))
        });
    named.then(|| Cache::Tmp(p.trim_end_matches('/').to_string()))
}

/// What an apt command does to the package lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AptUse {
    /// `apt-get update`: fetches them.
    Update,
    /// Install, upgrade, search, …: reads them.
    Needs,
    /// `rm -rf /var/lib/apt/lists/*`: removes them.
    Removes,
    /// Code that cannot be seen (a script, `bash -c`, `xargs`, …): may read them.
    May,
}

impl AptUse {
    /// Reads the lists (or may): they must still be there.
    fn reads(self) -> bool {
        matches!(self, AptUse::Needs | AptUse::May)
    }
}

fn apt_use(cmd: &Cmd, script: &str) -> Option<AptUse> {
    if let Some(c) = cleanup_of(cmd, script) {
        let lists = c
            .items
            .iter()
            .any(|(cache, op)| *cache == Cache::Apt && op.starts_with("/var/lib/apt/lists"));
        return lists.then_some(AptUse::Removes);
    }
    let sh = cmd.shell();
    match sh.program()? {
        "apt-get" | "apt" | "aptitude" => match sh.subcommand() {
            Some("update") => Some(AptUse::Update),
            Some("clean" | "autoclean" | "autoremove" | "remove" | "purge" | "mark") => None,
            _ => Some(AptUse::Needs),
        },
        "apt-cache" | "apt-file" | "add-apt-repository" => Some(AptUse::Needs),
        _ => None,
    }
}

/// What the commands of `script` (its text `text`) do to the package lists, in order;
/// commands for which `skip` holds are left out. A command that runs code this reader
/// cannot see ([`shell::opaque`]), here or in a command substitution, may need them.
fn script_apt_uses(
    script: &Script,
    text: &str,
    copied: &dyn Fn(&str) -> bool,
    skip: &dyn Fn(&Cmd) -> bool,
) -> Vec<AptUse> {
    let mut out = Vec::new();
    for cmd in script.cmds.iter().filter(|c| !skip(c)) {
        for w in cmd
            .assignments
            .iter()
            .chain(&cmd.words)
            .chain(&cmd.redirects)
        {
            if w.text.contains("$(") || w.text.contains('`') {
                for sub in shell::substitutions(&w.text) {
                    let s = shell::read(sub);
                    if s.understood {
                        out.extend(script_apt_uses(&s, sub, copied, &|_| false));
                    } else {
                        out.push(AptUse::May);
                    }
                }
            }
        }
        if let Some(u) = apt_use(cmd, text) {
            out.push(u);
        } else if shell::opaque(cmd, copied) {
            out.push(AptUse::May);
        }
    }
    out
}

/// Whether nothing in `text` after its first `apt-get update` reads the lists it fetched: no
/// install, upgrade, build-dep, source, search … and no code this reader cannot see (a script,
/// `bash -c`, `xargs`, a substitution it cannot read). A script it cannot read may read them.
/// The lint's `HR002` asks this, so that the lint and the fixer share one notion of what
/// needs the lists.
pub(crate) fn lists_unread_after_update(text: &str) -> bool {
    let script = shell::read(text);
    if !script.understood {
        return false;
    }
    let uses = script_apt_uses(&script, text, &|_| false, &|_| false);
    let from = uses
        .iter()
        .position(|u| *u == AptUse::Update)
        .map_or(0, |i| i + 1);
    !uses[from..].iter().any(|u| u.reads())
}

/// The ranges of the shell text to take out to remove commands `gone` (sorted, not all) of
/// an `&&` chain, each with one of the `&&` next to it.
fn removals(script: &Script, gone: &[usize]) -> Vec<Range<usize>> {
    let cmds = &script.cmds;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&a) = gone.get(i) {
        let mut b = a;
        while gone.get(i + 1) == Some(&(b + 1)) {
            b += 1;
            i += 1;
        }
        i += 1;
        let before = a.checked_sub(1).and_then(|p| cmds.get(p));
        match (cmds.get(a), cmds.get(b), cmds.get(b + 1), before) {
            // Up to the next command kept: `A && B && C` without A is `B && C`.
            (Some(first), _, Some(next), _) => out.push(first.range.start..next.range.start),
            // At the end: from the end of the command kept before it.
            (_, Some(last), None, Some(prev)) => out.push(prev.range.end..last.range.end),
            _ => {}
        }
    }
    out
}

/// A `--mount` flag: its type and target.
#[derive(Debug, Clone)]
struct Mount {
    kind: String,
    target: Option<String>,
    /// A bind mount that may be written (`rw`): the writes are dropped after the RUN.
    writable: bool,
}

fn mounts(inst: &Instruction) -> Vec<Mount> {
    inst.flags_named("mount")
        .map(|f| {
            let mut m = Mount {
                kind: "bind".to_string(),
                target: None,
                writable: false,
            };
            for kv in f.value.as_deref().unwrap_or("").split(',') {
                match kv.split_once('=') {
                    Some(("type", v)) => m.kind = v.to_string(),
                    Some(("target" | "dst" | "destination", v)) => m.target = Some(v.to_string()),
                    Some(("rw" | "readwrite", v)) => m.writable = v != "false",
                    None if matches!(kv, "rw" | "readwrite") => m.writable = true,
                    _ => {}
                }
            }
            m
        })
        .collect()
}

impl Mount {
    /// Whether files written under `path` would land in this mount rather than in the
    /// layer (or the other way round): one path holds the other. Secrets and SSH sockets
    /// live elsewhere.
    fn covers(&self, path: &str) -> bool {
        if matches!(self.kind.as_str(), "secret" | "ssh") {
            return false;
        }
        let Some(t) = self.target.as_deref() else {
            return true;
        };
        let t = t.trim_end_matches('/');
        let p = path.trim_end_matches('/');
        let inside =
            |a: &str, b: &str| a == b || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
        t.is_empty() || inside(p, t) || inside(t, p)
    }
}

/// A RUN as the planner sees it.
#[derive(Debug)]
struct Run<'d> {
    inst: &'d Instruction,
    stage: usize,
    /// The shell-form text.
    word: Option<&'d Word>,
    script: Script,
    map: Option<SrcMap>,
    /// Run by `/bin/sh -c`: no SHELL before it in its stage or in a stage it is built on,
    /// and no Windows base.
    default_shell: bool,
    frozen: bool,
    /// The text other RUNs' cleanups look at: the script with its cleanup commands blanked
    /// out (or, when it cannot be read, all of it and its heredocs).
    uses: String,
    mounts: Vec<Mount>,
}

impl Run<'_> {
    /// The fixer may splice this RUN's script.
    fn editable(&self) -> bool {
        self.word.is_some()
            && self.inst.heredocs.is_empty()
            && self.script.understood
            && self.map.is_some()
            && self.default_shell
            && !self.frozen
    }

    /// Commands may be joined after this RUN's script, in the same shell: see
    /// [`Script::may_be_followed`].
    fn joinable(&self) -> bool {
        self.editable() && !self.script.heredoc && self.script.may_be_followed()
    }

    fn text(&self) -> &str {
        self.word.map_or("", |w| w.text.as_str())
    }

    fn raw(&self, cmd: &Cmd) -> &str {
        self.text().get(cmd.range.clone()).unwrap_or("")
    }

    fn has_cache_mount(&self) -> bool {
        self.mounts.iter().any(|m| m.kind == "cache")
    }

    /// Whether this RUN may be joined with its neighbours: a tmpfs or a writable bind
    /// mount is new for every RUN, so a joined RUN would see the files another left there.
    /// A RUN that is not [`Run::joinable`] may still be the last of a joined run.
    fn mergeable(&self) -> bool {
        self.editable()
            && !self.script.comment
            && !self.script.background
            && !self.script.heredoc
            && !self
                .mounts
                .iter()
                .any(|m| m.kind == "tmpfs" || (m.kind == "bind" && m.writable))
    }
}

/// What the planner decided for one RUN.
#[derive(Debug, Default, Clone)]
struct RunEdit {
    /// Text inserted at offsets of the shell text (flags).
    inserts: Vec<(usize, String)>,
    /// Ranges of the shell text taken out (cleanups moved away).
    removes: Vec<Range<usize>>,
    /// Commands joined after the script with `&&`, one per line.
    appends: Vec<String>,
    /// Every command moved away: the RUN goes.
    removed: bool,
}

impl RunEdit {
    fn is_empty(&self) -> bool {
        self.inserts.is_empty()
            && self.removes.is_empty()
            && self.appends.is_empty()
            && !self.removed
    }
}

#[derive(Debug, Default)]
struct Plan {
    edits: BTreeMap<usize, RunEdit>,
    /// Runs of consecutive RUNs to join, each at least two.
    groups: Vec<Vec<usize>>,
    changes: Vec<Change>,
}

struct Planner<'a> {
    src: &'a str,
    df: &'a Dockerfile,
    options: &'a FixOptions,
    runs: BTreeMap<usize, Run<'a>>,
    /// Instruction ranges of the stages (FROM excluded), and the stage each one builds on.
    stages: Vec<(Range<usize>, Option<usize>)>,
    /// The line break the file uses.
    nl: &'static str,
    /// File names a COPY or ADD brings in (sources and destinations, without their
    /// directories): run as programs, what they do cannot be seen.
    copied: BTreeSet<String>,
    /// Per stage: an ONBUILD trigger in it may read the package lists (in the image built
    /// on this one, after everything here).
    onbuild_needs_lists: Vec<bool>,
}

impl<'a> Planner<'a> {
    fn new(
        src: &'a str,
        df: &'a Dockerfile,
        options: &'a FixOptions,
        frozen: &BTreeSet<usize>,
    ) -> Planner<'a> {
        let all = df.stages();
        let stages: Vec<(Range<usize>, Option<usize>)> = all
            .iter()
            .map(|s| (s.instructions.clone(), s.base_stage))
            .collect();
        let global = global_args(df);
        let mut runs = BTreeMap::new();
        // Whether each stage ends with another shell than `/bin/sh -c`; a stage built on
        // it inherits that shell.
        let mut other_shell: Vec<bool> = Vec::new();
        for (stage, s) in all.iter().enumerate() {
            let inherited = s
                .base_stage
                .and_then(|b| other_shell.get(b).copied())
                .unwrap_or(false);
            // Windows images run `cmd /S /C`, where `( … )` is no subshell; a base whose
            // name is not known (an ARG without a default) may be one.
            let posix =
                s.base_stage.is_some() || posix_base(&s.base, s.platform.as_deref(), &global);
            let mut default_shell = !inherited && posix;
            for idx in s.instructions.clone() {
                let Some(inst) = df.instructions.get(idx) else {
                    continue;
                };
                match inst.keyword {
                    Keyword::Shell => default_shell = false,
                    Keyword::Run => {
                        runs.insert(
                            idx,
                            Run::new(
                                src,
                                df.escape,
                                inst,
                                stage,
                                default_shell,
                                frozen.contains(&idx),
                            ),
                        );
                    }
                    _ => {}
                }
            }
            other_shell.push(!default_shell);
        }
        let nl = if src.contains("\r\n") { "\r\n" } else { "\n" };
        let mut copied = BTreeSet::new();
        for inst in df.walk() {
            if matches!(inst.keyword, Keyword::Copy | Keyword::Add) {
                for w in inst.words() {
                    let t = w.text.trim_matches(['"', '\'']).trim_end_matches('/');
                    copied.insert(t.rsplit('/').next().unwrap_or(t).to_string());
                }
            }
        }
        let onbuild_needs_lists = all
            .iter()
            .map(|s| {
                df.instructions
                    .get(s.instructions.clone())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(Instruction::trigger)
                    .filter(|t| t.keyword == Keyword::Run)
                    .any(|t| {
                        let Some(w) = t.shell().filter(|_| t.heredocs.is_empty()) else {
                            return true;
                        };
                        let script = shell::read(&w.text);
                        !script.understood
                            || script_apt_uses(&script, &w.text, &|n| copied.contains(n), &|_| {
                                false
                            })
                            .into_iter()
                            .find(|u| *u != AptUse::Removes)
                            .is_some_and(AptUse::reads)
                    })
            })
            .collect();
        Planner {
            src,
            df,
            options,
            runs,
            stages,
            nl,
            copied,
            onbuild_needs_lists,
        }
    }
}

/// The ARGs declared before the first FROM, with their defaults: what a FROM line may use.
fn global_args(df: &Dockerfile) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    for inst in df
        .instructions
        .iter()
        .take_while(|i| i.keyword != Keyword::From)
    {
        if inst.keyword == Keyword::Arg {
            for kv in inst.pairs() {
                let value = kv
                    .value
                    .as_ref()
                    .map(|v| v.text.trim_matches(['"', '\'']).to_string());
                out.insert(kv.key.text.clone(), value);
            }
        }
    }
    out
}

/// `text` with `$NAME`, `${NAME}` (and `${NAME:-x}`, `${NAME-x}`) of `args` replaced by their
/// defaults; `None` when a variable has no known value.
fn substitute(text: &str, args: &BTreeMap<String, Option<String>>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, fallback, len) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}')?;
            let body = &inner[..end];
            let (name, fallback) = match body.find([':', '-']) {
                Some(i) => (
                    &body[..i],
                    Some(body[i..].trim_start_matches(':').strip_prefix('-')?),
                ),
                None => (body, None),
            };
            (name, fallback, end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], None, end)
        };
        let value = match args.get(name) {
            Some(Some(v)) if !v.is_empty() => v.clone(),
            _ => fallback?.to_string(),
        };
        if value.contains('$') {
            return None;
        }
        out.push_str(&value);
        rest = &after[len..];
    }
    out.push_str(rest);
    Some(out)
}

/// Whether a FROM's image runs RUNs with a POSIX `/bin/sh`: not a Windows image (by its
/// name or platform), and not an image whose name depends on a build argument without a
/// default (its OS cannot be known).
fn posix_base(base: &str, platform: Option<&str>, args: &BTreeMap<String, Option<String>>) -> bool {
    let Some(name) = substitute(base, args) else {
        return false;
    };
    let lower = name.to_ascii_lowercase();
    let windows = ["windows", "nanoserver", "servercore"]
        .iter()
        .any(|w| lower.contains(w))
        || platform
            .and_then(|p| substitute(p, args))
            .is_some_and(|p| p.to_ascii_lowercase().starts_with("windows"));
    !windows && !name.is_empty()
}

impl<'d> Run<'d> {
    fn new(
        src: &str,
        escape: char,
        inst: &'d Instruction,
        stage: usize,
        default_shell: bool,
        frozen: bool,
    ) -> Run<'d> {
        let word = inst.shell();
        let script = word.map_or_else(Script::default, |w| shell::read(&w.text));
        let map = word.and_then(|w| SrcMap::new(src, w, escape));
        let mut uses = match word {
            Some(w) if script.understood && default_shell => {
                let mut t = w.text.clone();
                for c in &script.cmds {
                    if cleanup_of(c, &w.text).is_some() {
                        let blank = " ".repeat(c.range.len());
                        t.replace_range(c.range.clone(), &blank);
                    }
                }
                t
            }
            _ => inst.original.clone(),
        };
        for h in &inst.heredocs {
            uses.push('\n');
            uses.push_str(&h.body);
        }
        Run {
            inst,
            stage,
            word,
            script,
            map,
            default_shell,
            frozen,
            uses,
            mounts: mounts(inst),
        }
    }
}

impl Planner<'_> {
    fn plan(&self) -> Plan {
        let mut plan = Plan::default();
        self.plan_flags(&mut plan);
        self.plan_moves(&mut plan);
        self.plan_apt_lists(&mut plan);
        self.plan_merges(&mut plan);
        plan.edits.retain(|_, e| !e.is_empty());
        plan
    }

    fn change(&self, id: FixId, insts: &[usize], description: String) -> Change {
        let mut line = usize::MAX;
        let mut end_line = 0;
        let mut original = String::new();
        let mut insts = insts.to_vec();
        insts.sort_unstable();
        insts.dedup();
        for i in insts {
            let Some(inst) = self.df.instructions.get(i) else {
                continue;
            };
            line = line.min(inst.line);
            end_line = end_line.max(inst.end_line);
            let text = self.src.get(inst.whole_lines.clone()).unwrap_or("");
            original.push_str(text.trim_end_matches(['\r', '\n']));
            original.push('\n');
        }
        Change {
            id,
            rules: id.rules(),
            safety: id.safety(),
            description,
            line: if line == usize::MAX { 0 } else { line },
            end_line,
            original: original.trim_end_matches('\n').to_string(),
            edits: Vec::new(),
        }
    }

    /// Whether `PIP_NO_CACHE_DIR` is set by an ENV or ARG before instruction `idx`.
    fn pip_cache_off(&self, idx: usize) -> bool {
        self.df.instructions.iter().take(idx).any(|i| {
            matches!(i.keyword, Keyword::Env | Keyword::Arg)
                && i.pairs().iter().any(|p| p.key.text == "PIP_NO_CACHE_DIR")
        })
    }

    /// Flags added to install commands: `--no-cache-dir`, `--no-cache`, and (unsafe)
    /// `--no-install-recommends`.
    fn plan_flags(&self, plan: &mut Plan) {
        let recommends_configured = self.src.contains("Install-Recommends");
        for (&idx, run) in &self.runs {
            if !run.editable() {
                continue;
            }
            let text = run.text();
            let mut found: BTreeMap<FixId, usize> = BTreeMap::new();
            let mut inserts = Vec::new();
            for cmd in &run.script.cmds {
                let sh = cmd.shell();
                let has = |f: &str| sh.has_any(&[f]);
                let after = |i: usize| cmd.words.get(i).map(|w| w.range.end);
                // pip install: the word `install` after pip's own options.
                if sh.is_pip_install()
                    && !has("--no-cache-dir")
                    && !sh.args().iter().any(|a| a.starts_with("--cache-dir"))
                    && !text.contains("PIP_NO_CACHE_DIR")
                    && !run.has_cache_mount()
                    && !self.pip_cache_off(idx)
                {
                    let pip_at = cmd.words.len() - sh.pip_args().map_or(0, <[String]>::len);
                    let at = cmd
                        .words
                        .iter()
                        .enumerate()
                        .skip(pip_at)
                        .find(|(_, w)| !w.text.starts_with('-'))
                        .and_then(|(i, _)| after(i));
                    if let Some(at) = at {
                        inserts.push((at, " --no-cache-dir".to_string()));
                        *found.entry(FixId::PipNoCacheDir).or_default() += 1;
                    }
                }
                let program_at = cmd.program_at();
                let sub = cmd.subcommand_at(program_at);
                let sub_text = sub.and_then(|i| cmd.words.get(i)).map(|w| w.text.as_str());
                if sh.program() == Some("apk")
                    && sub_text == Some("add")
                    && !sh.args().iter().any(|a| a.contains("cache"))
                    && !run.has_cache_mount()
                    && let Some(at) = sub.and_then(after)
                {
                    inserts.push((at, " --no-cache".to_string()));
                    *found.entry(FixId::ApkNoCache).or_default() += 1;
                }
                if self.options.unsafe_fixes
                    && matches!(sh.program(), Some("apt-get" | "apt"))
                    && sub_text == Some("install")
                    && !recommends_configured
                    && !has("--no-install-recommends")
                    && let Some(at) = sub.and_then(after)
                {
                    inserts.push((at, " --no-install-recommends".to_string()));
                    *found.entry(FixId::AptNoInstallRecommends).or_default() += 1;
                }
            }
            if inserts.is_empty() {
                continue;
            }
            plan.edits.entry(idx).or_default().inserts.extend(inserts);
            for (id, n) in found {
                let (what, cmd) = match id {
                    FixId::PipNoCacheDir => ("--no-cache-dir", "pip install"),
                    FixId::ApkNoCache => ("--no-cache", "apk add"),
                    _ => ("--no-install-recommends", "apt-get install"),
                };
                let times = if n == 1 {
                    String::new()
                } else {
                    format!(" ({n} commands)")
                };
                plan.changes
                    .push(self.change(id, &[idx], format!("added {what} to {cmd}{times}")));
            }
        }
    }

    /// The RUN a cleanup of `cache` in RUN `c` belongs in: the last RUN before it in the
    /// stage that uses the cache, when nothing between could touch the cache and that RUN
    /// can take more commands.
    fn maker(&self, c: usize, cache: &Cache) -> Option<usize> {
        let run = self.runs.get(&c)?;
        let (range, _) = self.stages.get(run.stage)?;
        for i in (range.start..c).rev() {
            let inst = self.df.instructions.get(i)?;
            if inst.keyword == Keyword::Onbuild {
                continue;
            }
            if let Some(r) = self.runs.get(&i) {
                if cache.used_by(&r.uses) {
                    let fits = r.joinable()
                        && !cache
                            .paths()
                            .iter()
                            .any(|p| r.mounts.iter().any(|m| m.covers(p)))
                        && !(*cache == Cache::Pip && r.has_cache_mount());
                    return fits.then_some(i);
                }
                if cache.disturbed_by(inst, &r.uses) {
                    return None;
                }
                // A RUN that may run apt where it cannot be seen may need the lists.
                if *cache == Cache::Apt && self.apt_uses(i, &Plan::default()).contains(&AptUse::May)
                {
                    return None;
                }
            } else if cache.disturbed_by(inst, &inst.original) {
                return None;
            }
        }
        None
    }

    /// Cleanups in a later RUN moved into the RUN that made the data.
    fn plan_moves(&self, plan: &mut Plan) {
        for (&c, run) in &self.runs {
            // A mount could be what the cleanup cleans.
            if !run.editable() || !run.mounts.is_empty() || !run.script.is_and_chain() {
                continue;
            }
            let text = run.text();
            // (command index, [(maker, text appended there)])
            let mut moved: Vec<(usize, Vec<(usize, String)>)> = Vec::new();
            for (k, cmd) in run.script.cmds.iter().enumerate() {
                let Some(cleanup) = cleanup_of(cmd, text) else {
                    continue;
                };
                // The cleanup is already where the data is made when a command before it
                // in the same RUN uses the cache.
                let earlier_use = |cache: &Cache| {
                    run.script.cmds[..k]
                        .iter()
                        .any(|e| cleanup_of(e, text).is_none() && cache.used_by(run.raw(e)))
                };
                let mut by_maker: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
                let mut all = true;
                for (cache, operand) in &cleanup.items {
                    match (earlier_use(cache), self.maker(c, cache)) {
                        (false, Some(t)) => by_maker.entry(t).or_default().push(operand),
                        _ => all = false,
                    }
                }
                if !all {
                    continue;
                }
                let single = by_maker.len() == 1;
                let appends = by_maker
                    .into_iter()
                    .map(|(t, operands)| {
                        let text = if single {
                            run.raw(cmd).to_string()
                        } else {
                            // Operands made by different RUNs: one `rm` for each.
                            let mut words = vec!["rm".to_string()];
                            words.extend(cleanup.options.iter().cloned());
                            words.extend(operands.iter().map(|s| s.to_string()));
                            words.join(" ")
                        };
                        (t, text)
                    })
                    .collect();
                moved.push((k, appends));
            }
            if moved.is_empty() {
                continue;
            }
            let gone: Vec<usize> = moved.iter().map(|(k, _)| *k).collect();
            let whole = gone.len() == run.script.cmds.len();
            for (k, appends) in moved {
                let cmd_text = run.script.cmds.get(k).map_or("", |cmd| run.raw(cmd));
                let mut insts = vec![c];
                for (t, text) in appends {
                    plan.edits.entry(t).or_default().appends.push(text);
                    insts.push(t);
                }
                let lines: Vec<String> = insts[1..]
                    .iter()
                    .filter_map(|t| self.df.instructions.get(*t))
                    .map(|i| i.line.to_string())
                    .collect();
                plan.changes.push(self.change(
                    FixId::MoveCleanup,
                    &insts,
                    format!(
                        "moved `{cmd_text}` into the RUN at line {}, which makes the data{}",
                        lines.join(" and line "),
                        if whole { "; the later RUN is gone" } else { "" }
                    ),
                ));
            }
            let edit = plan.edits.entry(c).or_default();
            if whole {
                edit.removed = true;
            } else {
                edit.removes.extend(removals(&run.script, &gone));
            }
        }
    }

    /// What the apt commands of RUN `idx` do to the lists, in order, once the planned
    /// moves are made.
    fn apt_uses(&self, idx: usize, plan: &Plan) -> Vec<AptUse> {
        let Some(run) = self.runs.get(&idx) else {
            return Vec::new();
        };
        let edit = plan.edits.get(&idx);
        if edit.is_some_and(|e| e.removed) {
            return Vec::new();
        }
        let mut out = if run.script.understood && run.default_shell && run.inst.heredocs.is_empty()
        {
            let moved = |cmd: &Cmd| {
                edit.is_some_and(|e| {
                    e.removes
                        .iter()
                        .any(|r| r.start <= cmd.range.start && cmd.range.end <= r.end)
                })
            };
            script_apt_uses(
                &run.script,
                run.text(),
                &|n| self.copied.contains(n),
                &moved,
            )
        } else {
            // A heredoc, another shell or a script this reader cannot follow: anything.
            vec![AptUse::May]
        };
        for a in edit.map(|e| e.appends.as_slice()).unwrap_or_default() {
            if a.contains("/var/lib/apt/lists") {
                out.push(AptUse::Removes);
            }
        }
        out
    }

    /// For every stage: whether a stage built on it (at any depth) reads the package lists
    /// before fetching them, or has ONBUILD triggers that may. One pass from the last stage
    /// to the first (a stage's base always comes before it), so a file of thousands of
    /// stages is planned in linear time.
    fn children_need_lists(&self, plan: &Plan) -> Vec<bool> {
        let mut needs = vec![false; self.stages.len()];
        for s in (0..self.stages.len()).rev() {
            let (range, base) = &self.stages[s];
            let Some(base) = *base else { continue };
            let own = self.onbuild_needs_lists.get(s).copied().unwrap_or(true)
                || range
                    .clone()
                    .flat_map(|i| self.apt_uses(i, plan))
                    .find(|u| *u != AptUse::Removes)
                    .is_some_and(AptUse::reads);
            if (own || needs[s])
                && let Some(slot) = needs.get_mut(base)
            {
                *slot = true;
            }
        }
        needs
    }

    /// `rm -rf /var/lib/apt/lists/*` at the end of a RUN that uses apt, when no later
    /// command needs the lists before fetching them again.
    fn plan_apt_lists(&self, plan: &mut Plan) {
        let mut adds = Vec::new();
        let children_need = self.children_need_lists(plan);
        for (&idx, run) in &self.runs {
            let uses = self.apt_uses(idx, plan);
            let Some(last) = uses
                .iter()
                .rposition(|u| matches!(u, AptUse::Update | AptUse::Needs))
            else {
                continue;
            };
            // Code that cannot be seen after the last apt command: it may need the lists
            // (and so would the same RUN once joined with a later one).
            if uses[last..].contains(&AptUse::Removes)
                || uses[last..].contains(&AptUse::May)
                || !run.joinable()
                || run.mounts.iter().any(|m| m.covers("/var/lib/apt/lists"))
            {
                continue;
            }
            let (range, _) = &self.stages[run.stage];
            let next = (idx + 1..range.end)
                .flat_map(|i| self.apt_uses(i, plan))
                .next();
            if next.is_some_and(AptUse::reads)
                || self
                    .onbuild_needs_lists
                    .get(run.stage)
                    .copied()
                    .unwrap_or(true)
                || children_need.get(run.stage).copied().unwrap_or(true)
            {
                continue;
            }
            adds.push(idx);
        }
        for idx in adds {
            plan.edits
                .entry(idx)
                .or_default()
                .appends
                .push("rm -rf /var/lib/apt/lists/*".to_string());
            plan.changes.push(self.change(
                FixId::AptListsCleanup,
                &[idx],
                "removed apt's package lists in the RUN that fetched or used them".to_string(),
            ));
        }
    }

    /// Consecutive RUNs (comments, blank lines and moved-away RUNs between them are fine)
    /// with the same flags, each joinable.
    fn plan_merges(&self, plan: &mut Plan) {
        for (range, _) in &self.stages {
            let mut group: Vec<usize> = Vec::new();
            let flush = |group: &mut Vec<usize>, plan: &mut Plan| {
                if group.len() > 1 {
                    plan.groups.push(std::mem::take(group));
                } else {
                    group.clear();
                }
            };
            for idx in range.clone() {
                if plan.edits.get(&idx).is_some_and(|e| e.removed) {
                    continue;
                }
                let Some(run) = self.runs.get(&idx).filter(|r| r.mergeable()) else {
                    flush(&mut group, plan);
                    continue;
                };
                let same = group
                    .first()
                    .and_then(|f| self.runs.get(f))
                    .is_none_or(|f| f.inst.same_flags(run.inst));
                if !same {
                    flush(&mut group, plan);
                }
                // A script ending in a literal backslash can only come last, unparenthesised.
                if run.script.trailing_backslash && (group.is_empty() || run.script.needs_parens())
                {
                    flush(&mut group, plan);
                    continue;
                }
                group.push(idx);
                if !run.joinable() {
                    // It may end a joined run, not be followed (`set -e`, a trailing backslash).
                    flush(&mut group, plan);
                }
            }
            flush(&mut group, plan);
        }
        for group in &plan.groups {
            let lines: Vec<String> = group
                .iter()
                .filter_map(|i| self.df.instructions.get(*i))
                .map(|i| i.line.to_string())
                .collect();
            let update_alone = group.iter().any(|i| {
                self.runs.get(i).is_some_and(|r| {
                    r.script.cmds.len() == 1
                        && r.script.cmds.iter().all(|c| c.shell().is_apt("update"))
                })
            });
            let mut description = format!(
                "merged {} RUN instructions (lines {}) into one",
                group.len(),
                lines.join(", ")
            );
            if update_alone {
                description
                    .push_str("; `apt-get update` now runs in the same layer as the install");
            }
            plan.changes
                .push(self.change(FixId::MergeRuns, group, description));
        }
    }
}

impl Planner<'_> {
    /// The escape character, for new line continuations.
    fn escape(&self) -> char {
        self.df.escape
    }

    /// RUN `idx`'s script with its edits: (source text, shell text as Docker will read it).
    /// `wrap` puts it in a subshell; `appends` follow on lines of their own.
    fn part(&self, idx: usize, plan: &Plan, wrap: bool) -> Option<(String, String)> {
        let run = self.runs.get(&idx)?;
        let word = run.word?;
        let map = run.map.as_ref()?;
        let base = word.span.start.offset;
        let mut src = self.src.get(word.span.range())?.to_string();
        let mut text = word.text.clone();
        let empty = RunEdit::default();
        let edit = plan.edits.get(&idx).unwrap_or(&empty);
        // (shell-text range, source range, new text), applied from the end.
        let mut splices: Vec<(Range<usize>, Range<usize>, &str)> = Vec::new();
        for (at, s) in &edit.inserts {
            let p = map.insert_at(*at);
            splices.push((*at..*at, p..p, s));
        }
        for r in &edit.removes {
            splices.push((r.clone(), map.range(r), ""));
        }
        splices.sort_by_key(|s| std::cmp::Reverse((s.0.start, s.0.end)));
        for (t, s, new) in splices {
            let s = s.start.checked_sub(base)?..s.end.checked_sub(base)?;
            src.get(s.clone())?;
            text.get(t.clone())?;
            src.replace_range(s, new);
            text.replace_range(t, new);
        }
        if wrap {
            src = format!("( {src} )");
            text = format!("( {text} )");
        }
        for a in &edit.appends {
            src.push_str(&format!(" {}{}    && {a}", self.escape(), self.nl));
            text.push_str(&format!("     && {a}"));
        }
        Some((src, text))
    }

    /// Whether part `k` of `n` joined parts (a RUN alone with appends is part 0 of 1 with
    /// something after it) must be a subshell: what it does to the shell would reach the
    /// parts after it, or its `||`/`;` would take them in.
    fn wrap(&self, idx: usize, plan: &Plan, k: usize, n: usize) -> bool {
        let Some(run) = self.runs.get(&idx) else {
            return false;
        };
        let appends = plan.edits.get(&idx).is_some_and(|e| !e.appends.is_empty());
        let followed = k + 1 < n || appends;
        (followed && (run.script.leaks || run.script.trailing_separator))
            || (k > 0 && run.script.needs_parens())
    }

    /// The new text, what it must read back as, and the splices that made it; or the RUNs
    /// that could not be rewritten.
    #[allow(clippy::type_complexity)]
    fn render(
        &self,
        plan: &Plan,
    ) -> Result<(String, Vec<Expect>, Vec<(Range<usize>, String)>), BTreeSet<usize>> {
        let mut splices: Vec<(Range<usize>, String)> = Vec::new();
        let mut expects = Vec::new();
        let mut in_group: BTreeMap<usize, usize> = BTreeMap::new();
        for (g, group) in plan.groups.iter().enumerate() {
            for &i in group {
                in_group.insert(i, g);
            }
        }
        let mut group_regions: Vec<Range<usize>> = Vec::new();
        for (idx, inst) in self.df.instructions.iter().enumerate() {
            if let Some(&g) = in_group.get(&idx) {
                let group = &plan.groups[g];
                if group.first() != Some(&idx) {
                    continue;
                }
                let (region, text, script) = self
                    .merged(group, plan)
                    .ok_or_else(|| group.iter().copied().collect::<BTreeSet<usize>>())?;
                group_regions.push(region.clone());
                splices.push((region, text));
                expects.push(Expect::Run {
                    members: group.clone(),
                    script,
                });
                continue;
            }
            let Some(edit) = plan.edits.get(&idx) else {
                expects.push(Expect::Same(idx));
                continue;
            };
            if edit.removed {
                splices.push((inst.whole_lines.clone(), String::new()));
                continue;
            }
            let wrap = self.wrap(idx, plan, 0, 1);
            let word = self.runs.get(&idx).and_then(|r| r.word);
            let (Some((src, script)), Some(word)) = (self.part(idx, plan, wrap), word) else {
                return Err(BTreeSet::from([idx]));
            };
            splices.push((word.span.range(), src));
            expects.push(Expect::Run {
                members: vec![idx],
                script,
            });
        }
        // RUNs removed inside a merged region are already gone with it.
        splices.retain(|(r, t)| {
            !t.is_empty()
                || !group_regions
                    .iter()
                    .any(|g| g.start <= r.start && r.end <= g.end && g != r)
        });
        splices.sort_by_key(|(r, _)| r.start);
        let mut out = String::with_capacity(self.src.len());
        let mut applied = Vec::with_capacity(splices.len());
        let mut at = 0;
        for (r, text) in splices {
            if r.start < at {
                continue;
            }
            out.push_str(self.src.get(at..r.start).unwrap_or(""));
            out.push_str(&text);
            at = r.end;
            applied.push((r, text));
        }
        out.push_str(self.src.get(at..).unwrap_or(""));
        Ok((out, expects, applied))
    }

    /// A merged group: the source range it replaces, the new lines, and the shell text.
    fn merged(&self, group: &[usize], plan: &Plan) -> Option<(Range<usize>, String, String)> {
        let first = self.runs.get(group.first()?)?;
        let last = self.runs.get(group.last()?)?;
        let region = first.inst.whole_lines.start..last.inst.whole_lines.end;
        let header = first.inst.span.start.offset..first.word?.span.start.offset;
        // Spans that stay inside the merged RUN; any other comment line in the region goes
        // above it.
        let mut kept: Vec<Range<usize>> = vec![header.clone()];
        let mut parts = Vec::new();
        for (k, &idx) in group.iter().enumerate() {
            let run = self.runs.get(&idx)?;
            kept.push(run.word?.span.range());
            let wrap = self.wrap(idx, plan, k, group.len());
            parts.push(self.part(idx, plan, wrap)?);
        }
        let mut out = String::new();
        let mut at = region.start;
        for line in self.src.get(region.clone())?.split_inclusive('\n') {
            let start = at;
            at += line.len();
            if line.trim_start().starts_with('#')
                && !kept.iter().any(|k| k.start <= start && start < k.end)
            {
                out.push_str(line);
            }
        }
        out.push_str(self.src.get(region.start..header.end)?);
        let mut script = String::new();
        for (k, (src, text)) in parts.iter().enumerate() {
            if k > 0 {
                out.push_str(&format!(" {}{}    && ", self.escape(), self.nl));
                script.push_str("     && ");
            }
            out.push_str(src);
            script.push_str(text);
        }
        let tail = self.src.get(last.inst.span.end.offset..region.end)?;
        if tail.ends_with("\r\n") {
            out.push_str("\r\n");
        } else if tail.ends_with('\n') {
            out.push('\n');
        }
        Some((region, out, script))
    }
}
