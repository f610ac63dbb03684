//! The walk through one stage: ENV and ONBUILD, what COPY and ADD bring, each RUN given to
//! the package checks (`packages.rs`) and to the tracking of what it leaves behind
//! (`leftovers.rs`); and the rules about the stage's shape: `DL3059` (consecutive RUNs),
//! `HR004` (`COPY .` before the dependencies), `HR006` (too many layers), `HR008`
//! (`chown -R`/`chmod -R` over what a COPY added).

use std::collections::BTreeMap;

use super::leftovers::{Made, add_made, check_later_cleanup, is_archive, join, record_made};
use super::packages::{check_run, check_single_installs};
use super::raw::Raw;
use super::run::{Run, record_env};
use crate::ast::{Instruction, Keyword};
use crate::shell::{self, Command};

pub(super) fn check_stage(
    body: &[&Instruction],
    env: &mut BTreeMap<String, String>,
    onbuild_env: &mut BTreeMap<String, String>,
    lists_matter: bool,
    final_stage: bool,
    max_layers: usize,
    out: &mut Vec<Raw>,
) {
    let mut previous_run: Option<Run<'_>> = None;
    let mut made: Vec<Made> = Vec::new();
    let mut single_installs: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut context_copied: Option<usize> = None;
    let mut layers = 0usize;
    let mut run_index = 0usize;
    // The working directory (absolute, as far as it is known) and what each COPY or ADD
    // added: (line, absolute destination).
    let mut workdir = String::from("/");
    let mut copied: Vec<(usize, String)> = Vec::new();
    for inst in body {
        match inst.keyword {
            Keyword::Env => {
                record_env(inst, env);
                previous_run = None;
            }
            Keyword::Onbuild => {
                // The image built FROM this one runs the trigger: hadolint checks it as a RUN
                // of its own, its apt lists always mattering.
                match inst.trigger() {
                    Some(t) if t.keyword == Keyword::Env => record_env(t, onbuild_env),
                    Some(t) if t.keyword == Keyword::Run => {
                        if let Some(run) = Run::new(t) {
                            check_run(&run, onbuild_env, true, out);
                        }
                    }
                    _ => {}
                }
                previous_run = None;
            }
            Keyword::Copy | Keyword::Add => {
                layers += 1;
                let words: Vec<&str> = inst
                    .words()
                    .iter()
                    .map(|w| w.text.as_str())
                    .filter(|w| !w.starts_with("<<"))
                    .collect();
                let sources = words.split_last().map(|(_, s)| s).unwrap_or_default();
                if let Some(dest) = words.last() {
                    copied.push((inst.line, absolute(&workdir, dest)));
                }
                if inst.flag("from").is_none()
                    && sources.iter().any(|s| matches!(*s, "." | "./" | "*"))
                    && context_copied.is_none()
                {
                    context_copied = Some(inst.line);
                }
                if inst.keyword == Keyword::Add
                    && let Some(archive) =
                        sources.iter().find(|s| s.contains("://") && is_archive(s))
                {
                    let dest = words.last().copied().unwrap_or_default().to_string();
                    let name = archive.rsplit('/').next().unwrap_or(archive).to_string();
                    add_made(
                        &mut made,
                        Made::new(
                            format!("the archive {name} added"),
                            vec![dest.clone(), join(&dest, &name)],
                            Vec::new(),
                        ),
                        inst.line,
                        usize::MAX,
                    );
                }
                previous_run = None;
            }
            Keyword::Run => {
                layers += 1;
                let Some(run) = Run::new(inst) else {
                    previous_run = None;
                    run_index += 1;
                    continue;
                };
                check_run(&run, env, lists_matter, out);
                check_recursive_owner(&run, &workdir, &copied, out);
                // hadolint counts every simple command twice (the command and its redirection
                // wrapper) against a limit of 2: only single-command RUNs are merged.
                if let Some(prev) = &previous_run
                    && prev.inst.same_flags(inst)
                    && simple_commands(&prev.commands) <= 1
                    && simple_commands(&run.commands) <= 1
                {
                    out.push(Raw::at(
                        "DL3059",
                        inst,
                        format!(
                            "RUN on line {} and this one could be one layer",
                            prev.inst.line
                        ),
                    ));
                }
                check_later_cleanup(&run, run_index, &mut made, out);
                record_made(&run, run_index, env, &mut made);
                check_single_installs(&run, &mut single_installs, out);
                if let Some(line) = context_copied
                    && run.any(installs_dependencies)
                {
                    out.push(Raw::at(
                        "HR004",
                        inst,
                        format!(
                            "the dependencies are installed after `COPY .` on line {line}: a change to any file in the context re-runs this install"
                        ),
                    ));
                    context_copied = None;
                }
                previous_run = Some(run);
                run_index += 1;
            }
            Keyword::Workdir => {
                if let Some(w) = inst.words().first() {
                    workdir = absolute(&workdir, &w.text);
                }
                previous_run = None;
            }
            _ => previous_run = None,
        }
    }
    if final_stage && layers > max_layers {
        if let Some(first) = body.first() {
            out.push(Raw {
                id: "HR006",
                line: first.line,
                end_line: body.last().map_or(first.line, |l| l.end_line),
                column: 1,
                message: format!(
                    "the final stage has {layers} layers (RUN, COPY, ADD); at most {} wanted",
                    max_layers
                ),
            });
        }
    }
}

/// Simple commands as hadolint counts them for DL3059: those inside `( )`, `{ }`, `$( )` and
/// backquotes count; shell keywords, `for`/`case` headers and `[ ]` tests do not.
pub(super) fn simple_commands(commands: &[Command]) -> usize {
    commands
        .iter()
        .map(|c| {
            let mut words = &c.words[..];
            while let Some((first, rest)) = words.split_first()
                && matches!(
                    first.as_str(),
                    "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "}"
                )
            {
                words = rest;
            }
            let (own, rest) = match words.split_first() {
                None => (0, words),
                Some((first, rest)) if first.starts_with(['(', '{']) => {
                    let inner = first.get(1..first.len().saturating_sub(1)).unwrap_or("");
                    (simple_commands(&shell::commands(inner)), rest)
                }
                Some((first, _))
                    if matches!(
                        first.as_str(),
                        "fi" | "done" | "esac" | "for" | "case" | "select" | "[" | "[["
                    ) =>
                {
                    (0, words)
                }
                Some(_) => (1, words),
            };
            own + c
                .assignments
                .iter()
                .chain(rest)
                .map(|w| substitutions(w))
                .sum::<usize>()
        })
        .sum()
}

/// Simple commands inside the `$( )` and backquoted substitutions of a word.
pub(super) fn substitutions(word: &str) -> usize {
    shell::substitutions(word)
        .into_iter()
        .map(|script| simple_commands(&shell::commands(script)))
        .sum()
}

pub(super) fn installs_dependencies(c: &Command) -> bool {
    c.is_pip_install()
        || c.is_apt("install")
        || matches!(
            (c.program(), c.subcommand()),
            (Some("npm"), Some("install" | "ci" | "i"))
                | (Some("yarn"), Some("install") | None)
                | (Some("pnpm"), Some("install" | "i"))
                | (Some("poetry"), Some("install"))
                | (Some("bundle"), Some("install"))
                | (Some("go"), Some("mod"))
                | (
                    Some("conda" | "mamba" | "micromamba"),
                    Some("install" | "create")
                )
                | (Some("uv"), Some("sync" | "pip"))
        )
}

/// `path` made absolute against the working directory `dir`, without a trailing `/`.
fn absolute(dir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!(
            "{}/{}",
            dir.trim_end_matches('/'),
            path.trim_start_matches("./")
        )
    };
    let trimmed = joined.trim_end_matches(['/', '.']);
    if trimmed.is_empty() {
        "/".into()
    } else {
        trimmed.to_string()
    }
}

/// HR008: `chown -R` / `chmod -R` over files a COPY or ADD of the stage added (the path, a
/// directory above it, or one inside it): each file is copied up into the RUN's layer.
fn check_recursive_owner(
    run: &Run<'_>,
    workdir: &str,
    copied: &[(usize, String)],
    out: &mut Vec<Raw>,
) {
    let within = |a: &str, b: &str| a == b || b == "/" || a.starts_with(&format!("{b}/"));
    for c in &run.commands {
        let Some(program @ ("chown" | "chmod")) = c.program() else {
            continue;
        };
        let recursive = c.args().iter().any(|a| {
            a == "--recursive"
                || a.strip_prefix('-')
                    .is_some_and(|o| !o.starts_with('-') && o.contains('R'))
        });
        if !recursive {
            continue;
        }
        // After the owner or mode: the paths.
        let operands = c.operands_all();
        for path in operands.iter().skip(1) {
            if path.contains(['$', '`', '*']) {
                continue;
            }
            let path = absolute(workdir, path);
            if let Some((line, dest)) = copied
                .iter()
                .rev()
                .find(|(_, d)| within(d, &path) || within(&path, d))
            {
                let flag = if program == "chown" {
                    "--chown"
                } else {
                    "--chmod"
                };
                out.push(Raw::at(
                    "HR008",
                    run.inst,
                    format!(
                        "`{program} -R {path}` rewrites what the COPY on line {line} put in {dest}: the files are in the image twice (use `COPY {flag}`)"
                    ),
                ));
                return;
            }
        }
    }
}
