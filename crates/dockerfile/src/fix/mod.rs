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
//!
//! # Code map
//!
//! [`fix`] plans (`plan.rs`: the file as the planner sees it, each RUN as `run.rs` reads
//! it), lets each family of fixes fill the plan (`flags.rs`, `moves.rs`, `lists.rs`,
//! `merges.rs`), writes it out (`render.rs`, with `srcmap.rs` to splice scripts into the
//! source) and reads it back (`check.rs`), freezing the RUNs whose rewrite did not read
//! back as meant and planning again. What a script does to apt's lists (`apt.rs`) and which
//! commands are cleanups (`cleanup.rs`) are the fixer's knowledge of scripts, over the shell
//! reader ([`crate::shell`]). Its answer is made of [`Change`]s and [`Edit`]s (`change.rs`);
//! [`Fixes`] (`answers.rs`) is the same for the lint, which finds there the fix of each
//! finding. `diff.rs` writes the unified diff.

mod answers;
mod apt;
mod change;
mod check;
mod cleanup;
mod diff;
mod flags;
mod lists;
mod merges;
mod moves;
mod plan;
mod render;
mod run;
mod srcmap;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ast::{Dockerfile, Instruction, Keyword};
use crate::error::ParseError;
use change::{carrying, edits_of};
use plan::{Plan, Planner};

pub use crate::diagnostic::Applicability;
/// Whether a change keeps what gets installed: the [`Applicability`] of the fix it is.
pub use crate::diagnostic::Applicability as Safety;
pub use crate::rules::FixId;
pub use answers::Fixes;
pub(crate) use apt::lists_unread_after_update;
pub use change::{Change, Edit, apply_edits};
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
    let df = crate::parser::parse(src)?;
    let before = layer_counts(&df);
    let mut frozen: BTreeSet<usize> = BTreeSet::new();
    let mut result = None;
    // Each round either succeeds or freezes at least one more RUN, so this ends.
    for _ in 0..=df.instructions.len() {
        let planner = Planner::new(src, &df, options.unsafe_fixes, &frozen);
        let plan = plan(&planner);
        if plan.changes.is_empty() {
            break;
        }
        match planner.render(&plan).and_then(|(text, expects, applied)| {
            Ok((check::check(&text, &df, &expects)?, text, applied))
        }) {
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

/// What the planner decides, family by family: flags first, then cleanups moved (which
/// the apt lists' removal takes into account), then the RUNs joined.
fn plan(planner: &Planner<'_>) -> Plan {
    let mut plan = Plan::default();
    planner.plan_flags(&mut plan);
    planner.plan_moves(&mut plan);
    planner.plan_apt_lists(&mut plan);
    planner.plan_merges(&mut plan);
    plan.edits.retain(|_, e| !e.is_empty());
    plan
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
