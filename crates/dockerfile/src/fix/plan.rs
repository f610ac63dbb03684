//! The planner: every RUN of the file as [`Run`], the stages, and the [`Plan`] the fix
//! families fill (`flags.rs`, `moves.rs`, `lists.rs`, `merges.rs`): per RUN, what to insert,
//! remove and append, which RUNs to join, and the [`Change`]s made.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::apt::{AptUse, script_apt_uses};
use super::change::Change;
use super::run::Run;
use crate::ast::{Dockerfile, Instruction, Keyword};
use crate::rules::FixId;
use crate::shell;

/// What the planner decided for one RUN.
#[derive(Debug, Default, Clone)]
pub(super) struct RunEdit {
    /// Text inserted at offsets of the shell text (flags).
    pub(super) inserts: Vec<(usize, String)>,
    /// Ranges of the shell text taken out (cleanups moved away).
    pub(super) removes: Vec<Range<usize>>,
    /// Commands joined after the script with `&&`, one per line.
    pub(super) appends: Vec<String>,
    /// Every command moved away: the RUN goes.
    pub(super) removed: bool,
}

impl RunEdit {
    pub(super) fn is_empty(&self) -> bool {
        self.inserts.is_empty()
            && self.removes.is_empty()
            && self.appends.is_empty()
            && !self.removed
    }
}

/// What the fix families decided, for `render.rs` to write out.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) edits: BTreeMap<usize, RunEdit>,
    /// Runs of consecutive RUNs to join, each at least two.
    pub(super) groups: Vec<Vec<usize>>,
    pub(super) changes: Vec<Change>,
}

/// The file as the fix families see it.
pub(super) struct Planner<'a> {
    pub(super) src: &'a str,
    pub(super) df: &'a Dockerfile,
    /// Also the fixes that change what gets installed.
    pub(super) unsafe_fixes: bool,
    pub(super) runs: BTreeMap<usize, Run<'a>>,
    /// Instruction ranges of the stages (FROM excluded), and the stage each one builds on.
    pub(super) stages: Vec<(Range<usize>, Option<usize>)>,
    /// The line break the file uses.
    pub(super) nl: &'static str,
    /// File names a COPY or ADD brings in (sources and destinations, without their
    /// directories): run as programs, what they do cannot be seen.
    pub(super) copied: BTreeSet<String>,
    /// Per stage: something after its last instruction may read the package lists: an
    /// ONBUILD trigger (in the image built on this one), a stage that copies or mounts its
    /// files (`COPY --from`, `RUN --mount=from=…`) from a path that may hold them, or the
    /// image's ENTRYPOINT or CMD (its own or inherited) running apt.
    pub(super) needs_lists_after: Vec<bool>,
}

impl<'a> Planner<'a> {
    pub(super) fn new(
        src: &'a str,
        df: &'a Dockerfile,
        unsafe_fixes: bool,
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
        let needs_lists_after = later_readers(df, &all, onbuild_needs_lists);
        Planner {
            src,
            df,
            unsafe_fixes,
            runs,
            stages,
            nl,
            copied,
            needs_lists_after,
        }
    }
}

/// [`Planner::needs_lists_after`]: `onbuild` (per stage, its ONBUILD triggers may read the
/// lists) and the stages that read a stage's files and the ENTRYPOINTs and CMDs that run apt.
fn later_readers(df: &Dockerfile, stages: &[crate::Stage], onbuild: Vec<bool>) -> Vec<bool> {
    let mut needs = onbuild;
    needs.resize(stages.len(), true);
    let mut mark = |reference: &str, path: &str| {
        if let crate::StageRef::Stage(s) = df.resolve_stage(reference)
            && may_hold_lists(path)
            && let Some(slot) = needs.get_mut(s)
        {
            *slot = true;
        }
    };
    // Runs apt at run time, per stage (inherited by the stages built on it).
    let mut runs_apt: Vec<bool> = Vec::with_capacity(stages.len());
    for s in stages {
        let mut own = s
            .base_stage
            .and_then(|b| runs_apt.get(b).copied())
            .unwrap_or(false);
        for inst in df
            .instructions
            .get(s.instructions.clone())
            .unwrap_or_default()
        {
            match inst.keyword {
                Keyword::Copy | Keyword::Add => {
                    if let Some(from) = inst.flag("from").and_then(|f| f.value.as_deref()) {
                        let words = inst.words();
                        for w in words
                            .get(..words.len().saturating_sub(1))
                            .unwrap_or_default()
                        {
                            mark(from, &w.text);
                        }
                    }
                }
                Keyword::Run => {
                    for m in inst.flags_named("mount").filter_map(|f| f.value.as_deref()) {
                        let kv = |key: &[&str]| {
                            m.split(',').find_map(|p| {
                                p.split_once('=')
                                    .filter(|(k, _)| key.contains(&k.trim()))
                                    .map(|(_, v)| v.trim())
                            })
                        };
                        if let Some(from) = kv(&["from"]) {
                            mark(from, kv(&["source", "src"]).unwrap_or("/"));
                        }
                    }
                }
                Keyword::Entrypoint | Keyword::Cmd => {
                    // The last one counts; an apt front end among its commands reads the lists.
                    let text = match inst.exec() {
                        Some(words) => words
                            .iter()
                            .map(|w| w.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        None => inst.shell().map(|w| w.text.clone()).unwrap_or_default(),
                    };
                    let script = shell::read(&text);
                    own = script_apt_uses(&script, &text, &|_| false, &|_| false)
                        .iter()
                        .any(|u| matches!(u, AptUse::Update | AptUse::Needs))
                        || shell::commands(&text)
                            .iter()
                            .any(|c| c.args().iter().any(|a| a.contains("apt-get")));
                }
                _ => {}
            }
        }
        runs_apt.push(own);
    }
    for (slot, apt) in needs.iter_mut().zip(runs_apt) {
        *slot |= apt;
    }
    needs
}

/// Whether a path copied or mounted from a stage may hold apt's lists: a directory above
/// them or a path in them, or one whose value cannot be known here (`$VAR`, a glob).
fn may_hold_lists(path: &str) -> bool {
    const LISTS: &str = "/var/lib/apt/lists";
    if path.contains(['$', '*', '?', '[']) {
        return true;
    }
    let abs = format!("/{}", path.trim_start_matches("./").trim_start_matches('/'));
    let abs = abs.trim_end_matches(['/', '.']);
    abs.is_empty() || LISTS.starts_with(&format!("{abs}/")) || abs.starts_with(LISTS)
}

/// The ARGs declared before the first FROM, with their defaults: what a FROM line may use.
pub(super) fn global_args(df: &Dockerfile) -> BTreeMap<String, Option<String>> {
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
pub(super) fn substitute(text: &str, args: &BTreeMap<String, Option<String>>) -> Option<String> {
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
pub(super) fn posix_base(
    base: &str,
    platform: Option<&str>,
    args: &BTreeMap<String, Option<String>>,
) -> bool {
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

impl Planner<'_> {
    pub(super) fn change(&self, id: FixId, insts: &[usize], description: String) -> Change {
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
}
