//! The lint: layer and cache problems in a Dockerfile, each a [`Finding`] with a rule id, a
//! severity, the line, a fix hint and the fix that answers it.
//!
//! Where hadolint has the rule, the id and meaning are hadolint's (`DL3059`, `DL3009`, …), so
//! existing ignores and habits carry over. The rules hadolint lacks have `HR` ids. The rules
//! are data ([`RULES`], in [`crate::rules`]); the checks find the places.
//!
//! Ignores: `# hadolint ignore=DL3008,HR001` or `# headroom ignore=…` in the comment block
//! right above an instruction; `# hadolint global ignore=…` / `# headroom global ignore=…`
//! anywhere for the whole file; and [`LintOptions::ignore`] (a configuration file).
//!
//! # Code map
//!
//! [`lint`] and [`lint_with_fixes`] walk the stages (`stage.rs`: ENV, ONBUILD, COPY and ADD,
//! and the stage's shape: `DL3059`, `HR004`, `HR006`, `HR008`; `HR007`, about the context,
//! is here).
//! Each RUN is read once (`run.rs`) and checked by `packages.rs` (the package managers'
//! rules and `HR003`) and `leftovers.rs` (`HR001`, `HR005`). A check's finding is a `Raw`
//! (`raw.rs`); `ignore.rs` drops the ignored ones, and the rest are made whole here: the
//! severity, the rule's hint, and the fix that the fixer's [`Fixes`] hold for it.

mod ignore;
mod leftovers;
mod packages;
mod raw;
mod run;
mod stage;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ast::{Dockerfile, Instruction, Keyword};
use crate::diagnostic::{Applicability, Fix};
use crate::fix::{self, Fixes};
use raw::Raw;

pub use crate::diagnostic::{Finding, Severity};
pub use crate::rules::{RULES, Rule, rule};

/// What the lint knows about the build context (the caller measures it).
#[derive(Debug, Clone, Default)]
pub struct ContextFacts {
    pub dockerignore: bool,
    /// Bytes in the context (the caller may stop counting past the threshold).
    pub bytes: u64,
}

/// Settings: thresholds, ignores and severities (from a configuration file or flags).
#[derive(Debug, Clone)]
pub struct LintOptions {
    /// Most layers (RUN, COPY, ADD) the final stage may have (HR006).
    pub max_layers: usize,
    /// Contexts at least this big need a `.dockerignore` (HR007).
    pub large_context_bytes: u64,
    pub context: Option<ContextFacts>,
    /// Rule ids never reported.
    pub ignore: BTreeSet<String>,
    /// Severity per rule id, instead of the rule's own.
    pub severity: BTreeMap<String, Severity>,
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            max_layers: 12,
            large_context_bytes: 100_000_000,
            context: None,
            ignore: BTreeSet::new(),
            severity: BTreeMap::new(),
        }
    }
}

/// Lint a parsed Dockerfile: the findings in line order, none with a fix. For a file that
/// is not to be rewritten (one Docker's build refuses), or where only the findings matter;
/// [`lint_with_fixes`] gives each finding the fix that answers it.
pub fn lint(df: &Dockerfile, options: &LintOptions) -> Vec<Finding> {
    findings(
        ignore::not_ignored(df, check(df, options), &options.ignore),
        options,
        |_| None,
    )
}

/// What [`lint_with_fixes`] gives back.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Linted {
    /// In line order, each with the fix that answers it, if any.
    pub findings: Vec<Finding>,
    /// What `--fix` changes (safe), then what only `--fix-unsafe` adds (unsafe), and the
    /// edits of the original text they point at: a finding's [`Fix::change`] is an index
    /// into `fixes.changes`.
    pub fixes: Fixes,
}

/// Lint `df`, parsed from `src`, with the fixer's answer to each finding, so that what the
/// lint calls fixable is what the fixer does. A change answers a finding when the finding's
/// rule is one of the change's and their lines (or the lines of the change's edits) meet;
/// the unsafe fixes are looked for only when a finding's rule has one. Were `src` not to
/// parse (it is the text `df` was read from, so it does), no finding would have a fix.
pub fn lint_with_fixes(src: &str, df: &Dockerfile, options: &LintOptions) -> Linted {
    let raw = ignore::not_ignored(df, check(df, options), &options.ignore);
    let unsafe_too = raw.iter().any(|r| {
        rule(r.id)
            .and_then(|r| r.fix)
            .is_some_and(|id| id.safety() == Applicability::Unsafe)
    });
    let fixes = fix::fixes(src, unsafe_too).unwrap_or_default();
    let answers = fixes.answers();
    let findings = findings(raw, options, |r| answers.fix(r.id, r.line, r.end_line));
    Linted { findings, fixes }
}

/// What every check finds, before ignores.
fn check(df: &Dockerfile, options: &LintOptions) -> Vec<Raw> {
    let mut raw = Vec::new();
    let stages = df.stages();
    let built_upon: BTreeSet<usize> = stages.iter().filter_map(|s| s.base_stage).collect();
    // ENV inherited from the stage a FROM builds on.
    let mut stage_env: Vec<BTreeMap<String, String>> = Vec::new();
    // ENV set by ONBUILD triggers, which only other ONBUILD triggers see (as in hadolint).
    let mut onbuild_env: BTreeMap<String, String> = BTreeMap::new();
    // Instructions before the first FROM other than ARG (no build accepts them, but hadolint
    // lints them as a stage of their own, and so does its test suite): a stage with no base,
    // the final one when the file has no FROM.
    let first_from = stages.first().map_or(df.instructions.len(), |s| s.from);
    let prefix: Vec<&Instruction> = df.instructions[..first_from].iter().collect();
    if prefix.iter().any(|i| i.keyword != Keyword::Arg) {
        let last = stages.is_empty();
        stage::check_stage(
            &prefix,
            &mut BTreeMap::new(),
            &mut onbuild_env,
            last,
            last,
            options.max_layers,
            &mut raw,
        );
    }
    for (n, stage) in stages.iter().enumerate() {
        let mut env = stage
            .base_stage
            .and_then(|b| stage_env.get(b).cloned())
            .unwrap_or_default();
        let body: Vec<&Instruction> = df
            .instructions
            .get(stage.instructions.clone())
            .unwrap_or_default()
            .iter()
            .collect();
        let last = n + 1 == stages.len();
        stage::check_stage(
            &body,
            &mut env,
            &mut onbuild_env,
            last || built_upon.contains(&n),
            last,
            options.max_layers,
            &mut raw,
        );
        stage_env.push(env);
    }
    if let Some(ctx) = &options.context
        && !ctx.dockerignore
        && ctx.bytes >= options.large_context_bytes
    {
        raw.push(Raw::at_line(
            "HR007",
            1,
            format!(
                "the build context holds {} MB and has no .dockerignore",
                ctx.bytes / 1_000_000
            ),
        ));
    }
    raw
}

/// The findings, whole: each with its rule's hint, its severity (the rule's, or the one the
/// options give it) and the fix `fix_of` finds for it; in line order.
fn findings(
    raw: Vec<Raw>,
    options: &LintOptions,
    fix_of: impl Fn(&Raw) -> Option<Fix>,
) -> Vec<Finding> {
    let mut out: Vec<Finding> = raw
        .into_iter()
        .filter_map(|r| {
            let rule = rule(r.id)?;
            Some(Finding {
                id: rule.id,
                severity: options
                    .severity
                    .get(rule.id)
                    .copied()
                    .unwrap_or(rule.severity),
                fix: fix_of(&r),
                message: r.message,
                hint: rule.hint,
                line: r.line,
                end_line: r.end_line,
                column: r.column,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.line, a.id).cmp(&(b.line, b.id)));
    out.dedup_by(|a, b| a.line == b.line && a.id == b.id && a.message == b.message);
    out
}
