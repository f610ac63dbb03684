//! The lint: layer and cache problems in a Dockerfile, each a [`Finding`] with a rule id, a
//! severity, the line and a fix hint.
//!
//! Where hadolint has the rule, the id and meaning are hadolint's (`DL3059`, `DL3009`, …), so
//! existing ignores and habits carry over. The rules hadolint lacks have `HR` ids. The rules
//! are data ([`RULES`]); the checks below find the places.
//!
//! Ignores: `# hadolint ignore=DL3008,HR001` or `# headroom ignore=…` in the comment block
//! right above an instruction; `# hadolint global ignore=…` / `# headroom global ignore=…`
//! anywhere for the whole file; and [`LintOptions::ignore`] (a configuration file).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ast::{Dockerfile, Instruction, Keyword};
use crate::diagnostic::{Applicability, Fix};
use crate::fix::{self, Fixes};
use crate::shell::{self, Command};

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
        not_ignored(df, check(df, options), options),
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
    let raw = not_ignored(df, check(df, options), options);
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
        check_stage(
            &body,
            &mut env,
            &mut onbuild_env,
            last || built_upon.contains(&n),
            last,
            options,
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

/// A finding before ignores and severities are applied.
struct Raw {
    id: &'static str,
    line: usize,
    end_line: usize,
    column: usize,
    message: String,
}

impl Raw {
    fn at(id: &'static str, inst: &Instruction, message: String) -> Raw {
        Raw {
            id,
            line: inst.line,
            end_line: inst.end_line,
            column: inst.span.start.column,
            message,
        }
    }

    fn at_line(id: &'static str, line: usize, message: String) -> Raw {
        Raw {
            id,
            line,
            end_line: line,
            column: 1,
            message,
        }
    }
}

/// A RUN as the checks see it.
struct Run<'a> {
    inst: &'a Instruction,
    commands: Vec<Command>,
    /// Nothing after the script's `apt-get update` reads the lists (the fixer's reading).
    lists_unread: bool,
    /// `--mount` values, for cache-mount exemptions.
    mounts: Vec<String>,
}

impl<'a> Run<'a> {
    /// The commands of a RUN as hadolint reads them: the shell text; the body of the heredoc
    /// the command line starts with (`RUN <<EOF`), after what else is on the line; the exec
    /// form's words joined by spaces. `None` for a RUN without arguments.
    fn new(inst: &'a Instruction) -> Option<Run<'a>> {
        let (commands, lists_unread) = if let Some(script) = inst.shell() {
            let mut commands = shell::commands(&script.text);
            match inst.heredocs.first() {
                Some(heredoc) if script.text.trim_start().starts_with("<<") => {
                    for c in &mut commands {
                        c.words.retain(|w| !w.starts_with("<<"));
                    }
                    commands.retain(|c| !c.words.is_empty() || !c.assignments.is_empty());
                    let body = heredoc.content();
                    commands.extend(shell::commands(&body));
                    let unread = crate::fix::lists_unread_after_update(&body);
                    (commands, unread)
                }
                _ => (
                    commands,
                    crate::fix::lists_unread_after_update(&script.text),
                ),
            }
        } else {
            let words: Vec<&str> = inst.exec()?.iter().map(|w| w.text.as_str()).collect();
            let text = words.join(" ");
            (
                shell::commands(&text),
                crate::fix::lists_unread_after_update(&text),
            )
        };
        Some(Run {
            inst,
            commands,
            lists_unread,
            mounts: inst
                .flags_named("mount")
                .filter_map(|f| f.value.clone())
                .collect(),
        })
    }

    fn cache_mount_on(&self, path_part: &str) -> bool {
        self.mounts.iter().any(|m| {
            (m.contains("type=cache") || m.contains("type=tmpfs"))
                && m.split(',').any(|kv| {
                    kv.split_once('=').is_some_and(|(k, v)| {
                        matches!(k, "target" | "dst" | "destination") && v.contains(path_part)
                    })
                })
        })
    }

    fn any(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.commands.iter().any(f)
    }

    /// `rm -r…` of a path starting with `prefix`.
    fn removes(&self, prefix: &str) -> bool {
        self.commands.iter().any(|c| removes(c, prefix))
    }
}

fn removes(c: &Command, prefix: &str) -> bool {
    c.is_rm() && c.operands_all().iter().any(|p| p.starts_with(prefix))
}

impl Command {
    /// Every non-option argument (for `rm`, which has no subcommand).
    fn operands_all(&self) -> Vec<&str> {
        self.args()
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(String::as_str)
            .collect()
    }
}

/// The values hadolint takes as setting PIP_NO_CACHE_DIR (anything else, `2` included, does
/// not exempt a pip install from DL3042 there).
fn truthy(v: &str) -> bool {
    let v = v.trim_matches(['"', '\'']).to_ascii_lowercase();
    matches!(v.as_str(), "1" | "true" | "on" | "yes")
}

/// `PIP_NO_CACHE_DIR=<truthy>` anywhere in the RUN: before a command, after `env`, `export`.
fn sets_pip_no_cache_dir(run: &Run<'_>) -> bool {
    run.commands.iter().any(|c| {
        c.assignments
            .iter()
            .chain(&c.words)
            .any(|w| w.strip_prefix("PIP_NO_CACHE_DIR=").is_some_and(truthy))
    })
}

fn record_env(inst: &Instruction, env: &mut BTreeMap<String, String>) {
    for kv in inst.pairs() {
        let key = kv.key.text.trim_matches(['"', '\'']).to_string();
        let value = kv
            .value
            .as_ref()
            .map(|v| v.text.clone())
            .unwrap_or_default();
        env.insert(key, value);
    }
}

/// Simple commands as hadolint counts them for DL3059: those inside `( )`, `{ }`, `$( )` and
/// backquotes count; shell keywords, `for`/`case` headers and `[ ]` tests do not.
fn simple_commands(commands: &[Command]) -> usize {
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
fn substitutions(word: &str) -> usize {
    shell::substitutions(word)
        .into_iter()
        .map(|script| simple_commands(&shell::commands(script)))
        .sum()
}

/// Paths a RUN leaves behind as caches or downloads, with the RUN's index.
#[derive(Debug)]
struct Made {
    what: String,
    /// Cleanup matches when it removes a path starting with one of these.
    prefixes: Vec<String>,
    /// Or runs one of these cleanup commands (program, subcommand).
    commands: Vec<(&'static str, &'static str)>,
    /// The instructions that made it: (line, RUN index; `usize::MAX` for an ADD). The same
    /// data made by several RUNs is one entry, so each later RUN is checked against the
    /// kinds of data made, not against every RUN before it.
    origins: Vec<(usize, usize)>,
}

impl Made {
    fn new(
        what: String,
        prefixes: Vec<String>,
        commands: Vec<(&'static str, &'static str)>,
    ) -> Self {
        Made {
            what,
            prefixes,
            commands,
            origins: Vec::new(),
        }
    }
}

/// Record `m`, made by the instruction on `line` (RUN `run`), with the same data made
/// before.
fn add_made(made: &mut Vec<Made>, m: Made, line: usize, run: usize) {
    match made
        .iter_mut()
        .find(|k| k.what == m.what && k.prefixes == m.prefixes && k.commands == m.commands)
    {
        Some(k) => k.origins.push((line, run)),
        None => {
            let mut m = m;
            m.origins.push((line, run));
            made.push(m);
        }
    }
}

fn check_stage(
    body: &[&Instruction],
    env: &mut BTreeMap<String, String>,
    onbuild_env: &mut BTreeMap<String, String>,
    lists_matter: bool,
    final_stage: bool,
    options: &LintOptions,
    out: &mut Vec<Raw>,
) {
    let mut previous_run: Option<Run<'_>> = None;
    let mut made: Vec<Made> = Vec::new();
    let mut single_installs: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut context_copied: Option<usize> = None;
    let mut layers = 0usize;
    let mut run_index = 0usize;
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
            _ => previous_run = None,
        }
    }
    if final_stage && layers > options.max_layers {
        if let Some(first) = body.first() {
            out.push(Raw {
                id: "HR006",
                line: first.line,
                end_line: body.last().map_or(first.line, |l| l.end_line),
                column: 1,
                message: format!(
                    "the final stage has {layers} layers (RUN, COPY, ADD); at most {} wanted",
                    options.max_layers
                ),
            });
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn is_archive(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst", ".zip",
        ".whl", ".run", ".deb",
    ]
    .iter()
    .any(|ext| p.ends_with(ext))
}

fn installs_dependencies(c: &Command) -> bool {
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

/// apt-get, apt or aptitude with `sub` among its arguments: hadolint's matching, which also
/// sees the subcommand after an option's value (`apt-get -o K=V install`).
fn apt_runs(c: &Command, sub: &str) -> bool {
    matches!(c.program(), Some("apt-get" | "apt" | "aptitude")) && c.args().iter().any(|a| a == sub)
}

/// The checks that look at one RUN alone.
fn check_run(
    run: &Run<'_>,
    env: &BTreeMap<String, String>,
    lists_matter: bool,
    out: &mut Vec<Raw>,
) {
    let inst = run.inst;
    let updates = run.any(|c| apt_runs(c, "update"));
    // A cache mount on the lists, or on both /var/lib/apt and /var/cache/apt (as Docker's
    // documentation writes it), keeps them out of the layer.
    let lists_mounted = run.cache_mount_on("/var/lib/apt/lists")
        || (run.cache_mount_on("/var/lib/apt") && run.cache_mount_on("/var/cache/apt"));
    if updates && lists_matter && !run.removes("/var/lib/apt/lists") && !lists_mounted {
        out.push(Raw::at(
            "DL3009",
            inst,
            "apt-get update without `rm -rf /var/lib/apt/lists/*` in the same RUN: the lists stay in this layer".into(),
        ));
    }
    if updates && run.lists_unread {
        out.push(Raw::at(
            "HR002",
            inst,
            "apt-get update without an install in the same RUN".into(),
        ));
    }
    // Package managers are matched as hadolint matches them: the program and the
    // subcommand anywhere among its arguments (`apt-get -o K=V install`, `apk -X URL add`).
    let has = |c: &Command, words: &[&str]| c.args().iter().any(|a| words.contains(&a.as_str()));
    for (n, c) in run.commands.iter().enumerate() {
        // A cleanup counts when it comes after the install.
        let later = run.commands.get(n + 1..).unwrap_or_default();
        if c.program() == Some("apt-get")
            && has(c, &["install"])
            && !c.has_any(&["--no-install-recommends"])
            && !c.args().iter().any(|a| {
                a.contains("APT::Install-Recommends=false")
                    || a.contains("APT::Install-Recommends=0")
            })
        {
            out.push(Raw::at(
                "DL3015",
                inst,
                "apt-get install without --no-install-recommends".into(),
            ));
        }
        if c.pip_args()
            .is_some_and(|a| a.iter().any(|w| w == "install"))
            && !c
                .pip_args()
                .is_some_and(|a| a.iter().any(|w| w == "--no-cache-dir"))
            && !env.get("PIP_NO_CACHE_DIR").is_some_and(|v| truthy(v))
            && !sets_pip_no_cache_dir(run)
            && !run.cache_mount_on(".cache/pip")
        {
            out.push(Raw::at(
                "DL3042",
                inst,
                "pip install without --no-cache-dir: pip's cache stays in this layer".into(),
            ));
        }
        if c.program() == Some("apk")
            && has(c, &["add"])
            && !c.has_any(&["--no-cache"])
            && !run.cache_mount_on("/var/cache/apk")
        {
            out.push(Raw::at("DL3019", inst, "apk add without --no-cache".into()));
        }
        for (program, install, clean, cache, id) in [
            (
                "yum",
                &["install", "groupinstall", "localinstall"][..],
                &["clean"][..],
                &["/var/cache/yum"][..],
                "DL3032",
            ),
            (
                "zypper",
                &["install", "in"][..],
                &["clean", "cc"][..],
                &[][..],
                "DL3036",
            ),
            (
                "dnf",
                &["install", "groupinstall", "localinstall"][..],
                &["clean"][..],
                &["/var/cache/dnf", "/var/cache/yum"][..],
                "DL3040",
            ),
            (
                "microdnf",
                &["install"][..],
                &["clean"][..],
                &["/var/cache/dnf", "/var/cache/yum"][..],
                "DL3040",
            ),
        ] {
            if c.program() == Some(program)
                && has(c, install)
                && !later.iter().any(|o| {
                    (o.program() == Some(program)
                        && o.subcommand().is_some_and(|s| clean.contains(&s)))
                        || cache.iter().any(|dir| removes(o, dir))
                })
            {
                out.push(Raw::at(
                    id,
                    inst,
                    format!("{program} install without `{program} clean` after it in the same RUN"),
                ));
            }
        }
        if c.program() == Some("yarn")
            && (has(c, &["install"]) || c.subcommand().is_none())
            && !later.iter().any(|o| {
                o.program() == Some("yarn")
                    && o.args().starts_with(&["cache".into(), "clean".into()])
            })
            && !run.cache_mount_on("yarn")
        {
            out.push(Raw::at(
                "DL3060",
                inst,
                "yarn install without `yarn cache clean` after it in the same RUN".into(),
            ));
        }
    }
    // HR005 within one RUN is fine (download and extract together); across RUNs it is
    // found by the cleanup tracking below.
}

/// What a RUN leaves behind that a later RUN might clean up.
fn record_made(run: &Run<'_>, index: usize, env: &BTreeMap<String, String>, made: &mut Vec<Made>) {
    let line = run.inst.line;
    if run.any(|c| c.is_apt("update")) && !run.removes("/var/lib/apt/lists") {
        add_made(
            made,
            Made::new(
                "apt lists".into(),
                vec!["/var/lib/apt/lists".into()],
                Vec::new(),
            ),
            line,
            index,
        );
    }
    if run.any(|c| c.is_apt("install")) && !run.any(|c| c.is_apt("clean")) {
        add_made(
            made,
            Made::new(
                "apt's package cache".into(),
                vec!["/var/cache/apt".into()],
                vec![("apt-get", "clean"), ("apt", "clean")],
            ),
            line,
            index,
        );
    }
    let pip_cache = !env.get("PIP_NO_CACHE_DIR").is_some_and(|v| truthy(v))
        && !run.cache_mount_on(".cache/pip")
        && !run.removes("/root/.cache");
    if pip_cache
        && run.any(|c| {
            c.is_pip_install()
                && !c
                    .pip_args()
                    .is_some_and(|a| a.iter().any(|w| w == "--no-cache-dir"))
        })
    {
        add_made(
            made,
            Made::new(
                "pip's cache".into(),
                vec![
                    "/root/.cache/pip".into(),
                    "/root/.cache".into(),
                    "~/.cache/pip".into(),
                    "$HOME/.cache/pip".into(),
                ],
                vec![("pip", "cache"), ("pip3", "cache")],
            ),
            line,
            index,
        );
    }
    // Downloads to a file: curl -o F / --output F, wget -O F (or into a directory: -P).
    for c in &run.commands {
        if let Some(file) = download_target(c)
            && !run.removes(&file)
        {
            add_made(
                made,
                Made::new(format!("the download {file}"), vec![file], Vec::new()),
                line,
                index,
            );
        }
    }
}

fn download_target(c: &Command) -> Option<String> {
    let args = c.args();
    let flag_value = |flags: &[&str]| {
        args.iter().enumerate().find_map(|(i, a)| {
            for f in flags {
                if a == f {
                    return args.get(i + 1).cloned();
                }
                if let Some(v) = a.strip_prefix(&format!("{f}=")) {
                    return Some(v.to_string());
                }
            }
            None
        })
    };
    let file = match c.program()? {
        "curl" => flag_value(&["-o", "--output"]),
        "wget" => flag_value(&["-O", "--output-document"]),
        _ => None,
    }?;
    (file.starts_with('/') && file != "/dev/null" && file != "-").then_some(file)
}

/// HR001 and HR005: a RUN cleaning up (or extracting) what an earlier RUN made.
fn check_later_cleanup(run: &Run<'_>, index: usize, made: &mut Vec<Made>, out: &mut Vec<Raw>) {
    // What this RUN removes and runs, read once (not once per kind of data made before).
    let removed: Vec<String> = run
        .commands
        .iter()
        .filter(|c| c.is_rm())
        .flat_map(|c| c.operands_all())
        .map(|p| p.to_string())
        .collect();
    // (program, subcommand, pip's arguments) of each command.
    type Runs<'a> = Vec<(Option<&'a str>, Option<&'a str>, Option<&'a [String]>)>;
    let runs: Runs<'_> = run
        .commands
        .iter()
        .map(|c| (c.program(), c.subcommand(), c.pip_args()))
        .collect();
    let extracting: Vec<&String> = run
        .commands
        .iter()
        .filter(|c| {
            matches!(
                c.program(),
                Some("tar" | "unzip" | "bsdtar" | "7z" | "dpkg" | "sh" | "bash" | "pip" | "pip3")
            )
        })
        .flat_map(|c| c.args().iter())
        .collect();
    let mut cleaned = Vec::new();
    for (n, m) in made.iter().enumerate() {
        let earlier: Vec<(usize, usize)> =
            m.origins.iter().copied().filter(|o| o.1 != index).collect();
        if earlier.is_empty() {
            continue;
        }
        let by_rm = removed.iter().any(|p| {
            m.prefixes
                .iter()
                .any(|pre| p.starts_with(pre.as_str()) || pre.starts_with(p.trim_end_matches("/*")))
        });
        let by_command = runs.iter().any(|(program, subcommand, pip)| {
            m.commands.iter().any(|(p, s)| {
                (*program == Some(*p) || (*p == "pip" && pip.is_some()))
                    && (*subcommand == Some(*s) || pip.is_some_and(|a| a.iter().any(|w| w == s)))
            })
        });
        if by_rm || by_command {
            for (line, from) in earlier {
                let from = if from == usize::MAX { "ADD" } else { "RUN" };
                cleaned.push((n, (m.what.clone(), from, line)));
            }
        } else if m.what.starts_with("the download") || m.what.starts_with("the archive") {
            let extracts = extracting.iter().any(|a| {
                m.prefixes
                    .iter()
                    .any(|pre| *a == pre || a.ends_with(pre.rsplit('/').next().unwrap_or(pre)))
            });
            if extracts {
                for (line, _) in earlier {
                    out.push(Raw::at(
                        "HR005",
                        run.inst,
                        format!(
                            "uses {} from line {line}, which stays in that layer",
                            m.what
                        ),
                    ));
                }
            }
        }
    }
    if !cleaned.is_empty() {
        // "apt lists made by the RUNs on lines 2, 5": one phrase per kind of data.
        let mut by_what: Vec<(String, Vec<String>)> = Vec::new();
        for (_, (what, from, line)) in &cleaned {
            let key = format!("{what} made by the {from}");
            match by_what.iter_mut().find(|(k, _)| *k == key) {
                Some((_, lines)) => lines.push(line.to_string()),
                None => by_what.push((key, vec![line.to_string()])),
            }
        }
        let what: Vec<String> = by_what
            .iter()
            .map(|(k, lines)| match lines.as_slice() {
                [one] => format!("{k} on line {one}"),
                many => format!("{k}s on lines {}", many.join(", ")),
            })
            .collect();
        out.push(Raw::at(
            "HR001",
            run.inst,
            format!(
                "removes {}: the bytes stay in those layers",
                what.join(", and ")
            ),
        ));
    }
    // What was cleaned up is gone: only the origins of this RUN (if any) stay.
    let mut gone: Vec<usize> = cleaned.iter().map(|(n, _)| *n).collect();
    gone.dedup();
    for n in gone.into_iter().rev() {
        if let Some(m) = made.get_mut(n) {
            m.origins.retain(|o| o.1 == index);
            if m.origins.is_empty() {
                made.remove(n);
            }
        }
    }
}

/// HR003: RUNs that install exactly one package with the same tool, repeated.
fn check_single_installs(
    run: &Run<'_>,
    seen: &mut BTreeMap<&'static str, usize>,
    out: &mut Vec<Raw>,
) {
    // Packages per tool in this RUN: a RUN that installs a single one is a layer for it.
    let mut per_tool: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in &run.commands {
        let (tool, packages) = if c.is_apt("install") {
            ("apt-get", c.operands().len())
        } else if c.is_pip_install() {
            ("pip", c.pip_args().map(pip_packages).unwrap_or_default())
        } else {
            continue;
        };
        *per_tool.entry(tool).or_insert(0) += packages;
    }
    for (tool, packages) in per_tool {
        if packages != 1 {
            continue;
        }
        let count = seen.entry(tool).or_insert(0);
        *count += 1;
        if *count >= 2 {
            out.push(Raw::at(
                "HR003",
                run.inst,
                format!(
                    "another RUN for a single `{tool} install` package ({count} such RUNs so far in this stage)"
                ),
            ));
        }
    }
}

/// The packages on a `pip install` line: operands, not values of options that take one.
fn pip_packages(args: &[String]) -> usize {
    const TAKES_VALUE: &[&str] = &[
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        "-t",
        "--target",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "--cert",
        "--client-cert",
        "--proxy",
        "--timeout",
        "--retries",
        "--prefix",
        "--root",
        "--src",
        "--platform",
        "--python-version",
        "--implementation",
        "--abi",
        "--upgrade-strategy",
        "--trusted-host",
        "--cache-dir",
        "--log",
        "--progress-bar",
        "--no-binary",
        "--only-binary",
        "--config-settings",
        "-C",
        "--global-option",
        "--exists-action",
        "--report",
    ];
    let mut n = 0;
    let mut skip = false;
    let mut past_install = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if TAKES_VALUE.contains(&a.as_str()) {
            skip = true;
            // A requirements file is many packages.
            if matches!(a.as_str(), "-r" | "--requirement") {
                n += 2;
            }
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        if !past_install {
            past_install = a == "install";
            continue;
        }
        n += 1;
    }
    n
}

/// The findings not ignored (by comments, or by the options).
fn not_ignored(df: &Dockerfile, raw: Vec<Raw>, options: &LintOptions) -> Vec<Raw> {
    let mut global: BTreeSet<String> = options
        .ignore
        .iter()
        .map(|s| s.to_ascii_uppercase())
        .collect();
    let all_comments = df
        .instructions
        .iter()
        .flat_map(|i| i.comments.iter().chain(&i.inner_comments))
        .chain(&df.trailing_comments)
        .map(|c| c.text.as_str());
    for text in all_comments {
        if let Some(ids) = ignore_ids(text, true) {
            global.extend(ids);
        }
    }
    // The first instruction (ONBUILD triggers included) on each line, looked up once.
    let mut on_line: BTreeMap<usize, &Instruction> = BTreeMap::new();
    for i in df.walk() {
        on_line.entry(i.line).or_insert(i);
    }
    raw.into_iter()
        .filter(|r| !global.contains(r.id))
        .filter(|r| {
            // Inline ignores: the comment block directly above the instruction on r.line.
            let Some(inst) = on_line.get(&r.line) else {
                return true;
            };
            !inst
                .adjacent_comments()
                .iter()
                .filter_map(|c| ignore_ids(&c.text, false))
                .any(|ids| ids.iter().any(|id| id == r.id))
        })
        .collect()
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

/// `hadolint ignore=A,B` / `headroom ignore=A,B` (or their `global` forms when `global`).
fn ignore_ids(comment: &str, global: bool) -> Option<Vec<String>> {
    let text = comment.trim();
    let rest = text
        .strip_prefix("hadolint")
        .or_else(|| text.strip_prefix("headroom"))?
        .trim_start();
    let rest = if global {
        rest.strip_prefix("global")?.trim_start()
    } else {
        rest
    };
    let ids = rest
        .strip_prefix("ignore")?
        .trim_start()
        .strip_prefix('=')?;
    Some(
        ids.split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(src: &str) -> Vec<(&'static str, usize)> {
        ids_with(src, &LintOptions::default())
    }

    fn ids_with(src: &str, options: &LintOptions) -> Vec<(&'static str, usize)> {
        let df = crate::parse(src).expect("parses");
        lint(&df, options)
            .into_iter()
            .map(|f| (f.id, f.line))
            .collect()
    }

    fn has(src: &str, id: &str) -> bool {
        ids(src).iter().any(|(i, _)| *i == id)
    }

    #[test]
    fn commands_inside_compound_commands_are_linted() {
        let src = "FROM debian:bookworm\n\
            RUN if [ -f r ]; then pip install -r r; fi\n\
            RUN case \"$X\" in a) pip install a ;; *) pip install b ;; esac\n\
            RUN for p in a b; do apk add $p; done\n\
            RUN ( apt-get update && apt-get install curl )\n\
            RUN { apt-get update; apt-get install -y wget; }\n\
            RUN while read p; do pip install \"$p\"; done < reqs\n";
        let found = ids(src);
        for (id, line) in [
            ("DL3042", 2),
            ("DL3042", 3),
            ("DL3019", 4),
            ("DL3009", 5),
            ("DL3015", 5),
            ("DL3015", 6),
            ("DL3042", 7),
        ] {
            assert!(
                found.contains(&(id, line)),
                "{id} at line {line}: {found:?}"
            );
        }
    }

    #[test]
    fn consecutive_short_runs_with_the_same_flags_are_dl3059() {
        let src =
            "FROM a\nRUN a\n# note\nRUN b\nRUN c && d\nENV X=1\nRUN e\nRUN --network=none f\n";
        assert_eq!(ids(src), [("DL3059", 4)]);
        // A chained RUN is left alone: hadolint counts each command twice against a limit of
        // two, so only single-command RUNs are merged.
        assert!(!has("FROM a\nRUN a && b\nRUN c\n", "DL3059"));
        assert!(!has("FROM a\nRUN a && b && c\nRUN d\n", "DL3059"));
    }

    #[test]
    fn dl3059_counts_commands_as_hadolint_does() {
        for (second, fires) in [
            ("RUN (cd x)", true),
            ("RUN (cd x && make)", false),
            ("RUN echo $(date)", false),
            ("RUN echo $((1+2))", true),
            ("RUN for i in 1 2; do a; done", true),
            ("RUN while true; do a; done", false),
            ("RUN [ -f x ] || a", true),
            ("RUN <<EOF\nb\nEOF", true),
            ("RUN <<EOF\nb\nc\nEOF", false),
        ] {
            let src = format!("FROM a\nRUN a\n{second}\n");
            assert_eq!(has(&src, "DL3059"), fires, "{second}");
        }
        assert_eq!(ids("FROM a\nRUN [\"a\"]\nRUN [\"b\"]\n"), [("DL3059", 3)]);
        // Flags in another order are the same flags.
        let reordered = "FROM a\nRUN --mount=type=cache,target=/a --network=none a\nRUN --network=none --mount=type=cache,target=/a b\n";
        assert_eq!(ids(reordered), [("DL3059", 3)]);
    }

    #[test]
    fn heredoc_bodies_exec_forms_and_onbuild_triggers_are_linted() {
        assert_eq!(
            ids("FROM a\nRUN <<EOF\npip install x\nEOF\n"),
            [("DL3042", 2)]
        );
        assert_eq!(
            ids("FROM a\nRUN <<EOF bash\npip install x\nEOF\n"),
            [("DL3042", 2)]
        );
        // A heredoc fed to a command is that command's data.
        assert!(ids("FROM a\nRUN cat <<EOF > /x\npip install x\nEOF\n").is_empty());
        assert_eq!(
            ids("FROM a\nRUN [\"pip\", \"install\", \"x\"]\n"),
            [("DL3042", 2)]
        );
        // The image built FROM this one runs the trigger, whatever the stage.
        let trigger =
            "FROM a AS base\nONBUILD RUN apt-get update && apt-get install -y x\nFROM b\n";
        assert_eq!(ids(trigger), [("DL3009", 2), ("DL3015", 2)]);
        // Only an ONBUILD ENV reaches a trigger; and a trigger is no RUN of this stage.
        assert!(has(
            "FROM a\nENV PIP_NO_CACHE_DIR=1\nONBUILD RUN pip install x\n",
            "DL3042"
        ));
        assert!(!has(
            "FROM a\nONBUILD ENV PIP_NO_CACHE_DIR=1\nONBUILD RUN pip install x\n",
            "DL3042"
        ));
        assert!(!has("FROM a\nRUN a\nONBUILD RUN b\nRUN c\n", "DL3059"));
    }

    #[test]
    fn package_managers_are_matched_as_hadolint_matches_them() {
        for (run, id) in [
            (
                "apt-get -o Dpkg::Options::=--force-confold install -y x",
                "DL3015",
            ),
            ("apk -X http://x add y", "DL3019"),
            ("dnf -y --enablerepo crb install x", "DL3040"),
            ("dnf clean all && dnf install -y x", "DL3040"),
            ("yum clean all && yum install -y x", "DL3032"),
            ("zypper clean && zypper install -y x", "DL3036"),
            ("yarn cache clean && yarn install", "DL3060"),
            ("pip --cache-dir /x install y", "DL3042"),
        ] {
            assert!(has(&format!("FROM a\nRUN {run}\n"), id), "{run}");
        }
        for ok in [
            "yum install -y x && rm -rf /var/cache/yum",
            "export PIP_NO_CACHE_DIR=1 && pip install y",
            "env PIP_NO_CACHE_DIR=1 pip install y",
        ] {
            assert!(ids(&format!("FROM a\nRUN {ok}\n")).is_empty(), "{ok}");
        }
        // Not an update alone: the install comes after an option's value.
        assert!(!has(
            "FROM a\nRUN apt-get update && apt-get -o K=V install -y --no-install-recommends x && rm -rf /var/lib/apt/lists/*\n",
            "HR002"
        ));
        assert!(has(
            "FROM a\nENV PIP_NO_CACHE_DIR=2\nRUN pip install y\n",
            "DL3042"
        ));
        // Docker's documented cache mounts keep the lists out of the layer; half of them do not.
        let mounts = "RUN --mount=type=cache,target=/var/cache/apt --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y --no-install-recommends x";
        assert!(!has(&format!("FROM a\n{mounts}\n"), "DL3009"));
        assert!(has(
            "FROM a\nRUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y --no-install-recommends x\n",
            "DL3009"
        ));
    }

    #[test]
    fn apt_lists_left_behind_are_dl3009_in_stages_that_matter() {
        assert!(has(
            "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x\n",
            "DL3009"
        ));
        assert!(!has(
            "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x && rm -rf /var/lib/apt/lists/*\n",
            "DL3009"
        ));
        assert!(!has(
            "FROM a\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y --no-install-recommends x\n",
            "DL3009"
        ));
        // A builder stage nothing builds on: its lists never reach the image.
        let multi = "FROM a AS build\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\nFROM b\nCOPY --from=build /x /x\n";
        assert!(!has(multi, "DL3009"));
        let upon = "FROM a AS base\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\nFROM base\nRUN true\n";
        assert!(has(upon, "DL3009"));
    }

    #[test]
    fn install_recommends_and_pip_cache() {
        assert!(has("FROM a\nRUN apt-get install -y x\n", "DL3015"));
        assert!(!has(
            "FROM a\nRUN apt-get install -y -o APT::Install-Recommends=false x\n",
            "DL3015"
        ));
        for pip in [
            "pip install x",
            "pip3 install x",
            "/opt/venv/bin/pip install x",
            "python3 -m pip install x",
        ] {
            assert!(has(&format!("FROM a\nRUN {pip}\n"), "DL3042"), "{pip}");
        }
        for ok in [
            "RUN pip install --no-cache-dir x",
            "RUN PIP_NO_CACHE_DIR=1 pip install x",
            "RUN --mount=type=cache,target=/root/.cache/pip pip install x",
            "ENV PIP_NO_CACHE_DIR=1\nRUN pip install x",
            "RUN pipx install x",
        ] {
            assert!(!has(&format!("FROM a\n{ok}\n"), "DL3042"), "{ok}");
        }
        assert!(has(
            "FROM a\nENV PIP_NO_CACHE_DIR=0\nRUN pip install x\n",
            "DL3042"
        ));
        // Inherited from the stage built upon.
        assert!(!has(
            "FROM a AS base\nENV PIP_NO_CACHE_DIR=true\nFROM base\nRUN pip install x\n",
            "DL3042"
        ));
    }

    #[test]
    fn other_package_managers_clean_up_in_the_same_run() {
        assert!(has("FROM a\nRUN apk add curl\n", "DL3019"));
        assert!(!has("FROM a\nRUN apk add --no-cache curl\n", "DL3019"));
        assert!(has("FROM a\nRUN yum install -y x\n", "DL3032"));
        assert!(!has(
            "FROM a\nRUN yum install -y x && yum clean all\n",
            "DL3032"
        ));
        assert!(has("FROM a\nRUN zypper install -y x\n", "DL3036"));
        assert!(!has(
            "FROM a\nRUN zypper install -y x && zypper clean\n",
            "DL3036"
        ));
        assert!(has("FROM a\nRUN dnf install -y x\n", "DL3040"));
        assert!(!has(
            "FROM a\nRUN dnf install -y x && dnf clean all\n",
            "DL3040"
        ));
        assert!(has("FROM a\nRUN yarn install\n", "DL3060"));
        assert!(!has(
            "FROM a\nRUN yarn install && yarn cache clean\n",
            "DL3060"
        ));
    }

    #[test]
    fn cleanup_in_a_later_layer_is_hr001() {
        let src = "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x\nRUN pip install y\nRUN apt-get clean && rm -rf /var/lib/apt/lists/*\nRUN rm -rf /root/.cache/pip\n";
        let found: Vec<usize> = ids(src)
            .into_iter()
            .filter(|(id, _)| *id == "HR001")
            .map(|(_, l)| l)
            .collect();
        assert_eq!(found, [4, 5]);
        // The same cleanup in the RUN that made the data is what we want.
        assert!(!has(
            "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x && rm -rf /var/lib/apt/lists/*\n",
            "HR001"
        ));
        let download = "FROM a\nRUN curl -fsSL -o /tmp/x.tar.gz https://e.org/x.tar.gz\nRUN tar -xzf /tmp/x.tar.gz -C /opt\nRUN rm /tmp/x.tar.gz\n";
        assert_eq!(
            ids(download)
                .into_iter()
                .filter(|(id, _)| id.starts_with("HR"))
                .collect::<Vec<_>>(),
            [("HR005", 3), ("HR001", 4)]
        );
        assert!(has(
            "FROM a\nADD https://e.org/cuda.tar.gz /tmp/\nRUN tar -xzf /tmp/cuda.tar.gz -C /usr/local\n",
            "HR005"
        ));
    }

    #[test]
    fn update_alone_single_package_installs_and_copy_before_install() {
        assert!(has(
            "FROM a\nRUN apt-get update\nRUN apt-get install -y --no-install-recommends x\n",
            "HR002"
        ));
        assert!(!has(
            "FROM a\nRUN apt-get update && apt-get upgrade -y\n",
            "HR002"
        ));
        // Whatever reads the lists in the same RUN, however it is written, is their use:
        // other apt subcommands, apt-cache, code that cannot be seen, compound commands.
        for used in [
            "apt-get update && apt-get build-dep -y nginx",
            "apt-get update && apt-get source --compile nginx",
            "apt-get update && apt-cache policy nginx",
            "apt-get update && xargs apt-get install -y < /pkgs.txt",
            "apt-get update && bash -c 'apt-get install -y x'",
            "apt-get update && /usr/local/bin/install-deps.sh",
            "apt-get update && if true; then apt-get install -y x; fi",
            "case $a in amd64) apt-get update ;; esac && apt-get install -y x",
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o Dpkg::Options::=--force-confnew -y install x",
            "apt-get update && eval \"$INSTALL\"",
            "apt-get update && echo $(( $(apt-cache search x | wc -l) ))",
        ] {
            assert!(
                !has(&format!("FROM a\nRUN {used}\n"), "HR002"),
                "HR002 on: {used}"
            );
        }
        for unused in [
            "apt-get update",
            "apt-get update && echo done",
            "apt-get install -y x && apt-get update",
            "apt-get update && apt-get clean",
            // Arithmetic runs nothing: `N/2` is no script to look into.
            "apt-get update && echo $((N/2))",
        ] {
            assert!(
                has(&format!("FROM a\nRUN {unused}\n"), "HR002"),
                "no HR002 on: {unused}"
            );
        }
        let singles = "FROM a\nRUN pip install --no-cache-dir a\nRUN pip install --no-cache-dir b==1 --index-url https://x\nRUN pip install --no-cache-dir c d\nRUN pip install --no-cache-dir -r req.txt\n";
        assert_eq!(
            ids(singles)
                .into_iter()
                .filter(|(id, _)| *id == "HR003")
                .collect::<Vec<_>>(),
            [("HR003", 3)]
        );
        assert!(has(
            "FROM a\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n",
            "HR004"
        ));
        assert!(!has(
            "FROM a\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\n",
            "HR004"
        ));
    }

    #[test]
    fn layers_and_context() {
        let mut src = String::from("FROM a\n");
        for n in 0..13 {
            src.push_str(&format!("COPY f{n} /f{n}\n"));
        }
        assert!(has(&src, "HR006"));
        let opts = LintOptions {
            max_layers: 20,
            ..LintOptions::default()
        };
        assert!(!ids_with(&src, &opts).iter().any(|(id, _)| *id == "HR006"));
        let big = LintOptions {
            context: Some(ContextFacts {
                dockerignore: false,
                bytes: 200_000_000,
            }),
            ..LintOptions::default()
        };
        assert_eq!(ids_with("FROM a\n", &big), [("HR007", 1)]);
    }

    #[test]
    fn ignores_inline_global_and_configured_and_severities() {
        let src =
            "FROM a\n# hadolint ignore=DL3015,DL3009\nRUN apt-get update && apt-get install -y x\n";
        assert!(ids(src).is_empty(), "{:?}", ids(src));
        let ours = "FROM a\n# headroom ignore=HR002\nRUN apt-get update\n";
        assert_eq!(ids(ours), [("DL3009", 3)]);
        // An empty line between comment and instruction ends the block: no ignore.
        let apart = "FROM a\n# hadolint ignore=DL3015\n\nRUN apt-get install -y x\n";
        assert_eq!(ids(apart), [("DL3015", 4)]);
        let global = "# hadolint global ignore=DL3015\nFROM a\nRUN apt-get install -y x\n";
        assert!(ids(global).is_empty());
        let mut opts = LintOptions::default();
        opts.ignore.insert("dl3015".into());
        assert!(ids_with("FROM a\nRUN apt-get install -y x\n", &opts).is_empty());
        let mut opts = LintOptions::default();
        opts.severity.insert("DL3015".into(), Severity::Error);
        let df = crate::parse("FROM a\nRUN apt-get install -y x\n").expect("parses");
        assert_eq!(lint(&df, &opts)[0].severity, Severity::Error);
    }

    #[test]
    fn findings_carry_the_fix_that_answers_them() {
        use crate::fix::FixId;
        let src = "FROM a\nRUN apt-get update\nRUN apt-get install -y x\nRUN yum install -y y\n";
        let df = crate::parse(src).expect("parses");
        let linted = lint_with_fixes(src, &df, &LintOptions::default());
        let fix_of = |id: &str| {
            let f = linted.findings.iter().find(|f| f.id == id);
            let f = f.unwrap_or_else(|| panic!("no {id}: {:?}", linted.findings));
            f.fix
                .map(|x| (x.applicability, linted.fixes.changes[x.change].id))
        };
        assert_eq!(
            fix_of("HR002"),
            Some((Applicability::Safe, FixId::MergeRuns))
        );
        assert_eq!(
            fix_of("DL3015"),
            Some((Applicability::Unsafe, FixId::AptNoInstallRecommends))
        );
        assert_eq!(fix_of("DL3032"), None, "the rule has no fix");
        // The lint alone: the same findings, none with a fix.
        let plain = lint(&df, &LintOptions::default());
        assert_eq!(plain.len(), linted.findings.len());
        assert!(plain.iter().all(|f| f.fix.is_none()));
        assert_eq!(
            plain.iter().map(|f| (f.id, f.line)).collect::<Vec<_>>(),
            linted
                .findings
                .iter()
                .map(|f| (f.id, f.line))
                .collect::<Vec<_>>()
        );
        // No finding with an unsafe fix: no unsafe change is looked for.
        let src = "FROM a\n# hadolint ignore=DL3015\nRUN apt-get install -y x\n";
        let df = crate::parse(src).expect("parses");
        let linted = lint_with_fixes(src, &df, &LintOptions::default());
        assert!(
            linted
                .fixes
                .changes
                .iter()
                .all(|c| c.safety == Applicability::Safe),
            "{:?}",
            linted.fixes
        );
    }
}
