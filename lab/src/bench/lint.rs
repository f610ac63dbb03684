//! `cargo xtask bench lint`: `cargo xtask lint` against hadolint on the lint corpus and the
//! repository's Dockerfiles: time per file, and what each finds; and the fixer's time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_dockerfile::fix::{FixOptions, fix};
use headroom_dockerfile::lint::{LintOptions, RULES};
use serde_json::Value;

use crate::harness::median;
use crate::report::{self, benchmarks_md, record_between, today};
use crate::sh::{Cmd, NO_ARGS, cmd};

/// Lint every Dockerfile of the corpus (tests/fixtures/dockerfiles/lint, docker/Dockerfile,
/// docker/examples/Dockerfile.naive, docker/simulate/Dockerfile*) with `cargo xtask lint`
/// and with hadolint, a process per file as CI runs a linter, alternating which goes
/// first; also the library's parse + lint, and parse + fix, in process. Reports the median
/// time per file,
/// the findings per rule id of each, those only headroom finds, and every hadolint finding
/// of a shared id (DL…) that headroom misses.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct LintBench {
    /// Timed runs over the corpus; medians are reported.
    #[arg(long, value_name = "N", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
    /// The hadolint binary.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/opt/headroom/venv/bin/hadolint"
    )]
    hadolint: String,
    /// Write the results into docs/benchmarks.md (between the bench-lint markers).
    #[arg(long)]
    record: bool,
}

const START: &str = "<!-- bench-lint:start -->";
const END: &str = "<!-- bench-lint:end -->";

/// Passes over the corpus per in-process measurement, so that one lasts long enough to time.
const IN_PROCESS_PASSES: usize = 200;

/// `(rule id, line)` of each finding in a file.
type Found = BTreeSet<(String, u64)>;

/// [`Found`] per file.
type Findings = BTreeMap<String, Found>;

/// Seconds per file of one run.
#[derive(Debug, Clone, Copy)]
struct RunTimes {
    hadolint_first: bool,
    headroom: f64,
    hadolint: f64,
    in_process: f64,
    fix: f64,
}

/// What the fixer did to the corpus (safe fixes only).
#[derive(Debug, Clone, Copy, Default)]
struct FixFacts {
    changed: usize,
    layers_before: usize,
    layers_after: usize,
}

impl LintBench {
    pub fn run(self) -> Result<ExitCode> {
        let root = crate::repo::project_root();
        let files = corpus(&root)?;
        let work = root.join("target/bench-lint");
        std::fs::create_dir_all(&work)?;
        // No headroom.toml of the tree changes what is found.
        let config = work.join("headroom.toml");
        std::fs::write(&config, "")?;
        let xtask = std::env::current_exe().context("the xtask binary")?;
        let hadolint_version = cmd(&self.hadolint, ["--version"]).read().with_context(|| {
            format!(
                "--hadolint {} (scripts/provision installs it)",
                self.hadolint
            )
        })?;
        let texts: Vec<Vec<u8>> = files
            .iter()
            .map(|f| std::fs::read(root.join(f)).with_context(|| format!("reading {f}")))
            .collect::<Result<_>>()?;

        let ours_cmd = |file: &str| {
            let args = ["lint", "--format", "json", "--fail-on", "none", "--config"];
            let mut args: Vec<&std::ffi::OsStr> = args.map(AsRef::as_ref).to_vec();
            args.extend([config.as_os_str(), file.as_ref()]);
            cmd(&xtask, args).dir(&root).env_remove("GITHUB_ACTIONS")
        };
        let theirs_cmd =
            |file: &str| cmd(&self.hadolint, ["-f", "json", "--no-fail", file]).dir(&root);

        eprintln!(
            "bench: {} Dockerfiles, a warm-up pass of each tool …",
            files.len()
        );
        let (ours, _) = per_file(&files, &ours_cmd, our_findings)?;
        let (theirs, _) = per_file(&files, &theirs_cmd, hadolint_findings)?;
        let mut runs = Vec::new();
        for run in 1..=self.runs {
            let hadolint_first = run % 2 == 0;
            let mut headroom = 0.0;
            let mut hadolint = 0.0;
            for hadolint_side in [hadolint_first, !hadolint_first] {
                if hadolint_side {
                    eprintln!("bench: run {run}/{}: hadolint …", self.runs);
                    hadolint = per_file(&files, &theirs_cmd, hadolint_findings)?.1;
                } else {
                    eprintln!("bench: run {run}/{}: cargo xtask lint …", self.runs);
                    headroom = per_file(&files, &ours_cmd, our_findings)?.1;
                }
            }
            runs.push(RunTimes {
                hadolint_first,
                headroom,
                hadolint,
                in_process: in_process(&texts)?,
                fix: in_process_fix(&texts)?,
            });
        }
        let report = Report {
            files,
            hadolint_version,
            runs,
            ours,
            theirs,
            fixed: fix_facts(&texts)?,
            scaling: scaling()?,
            command: format!("cargo xtask bench lint --runs {}", self.runs),
        };
        print!("{}", report.text());
        if self.record {
            let date = today()?;
            record_between(&benchmarks_md(), &report.markdown(&date), START, END)?;
            eprintln!("bench: recorded in docs/benchmarks.md");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The corpus, relative to the project root, sorted.
fn corpus(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for (dir, wanted) in [
        (
            "tests/fixtures/dockerfiles/lint",
            (|n: &str| n.ends_with(".Dockerfile")) as fn(&str) -> bool,
        ),
        ("docker/simulate", |n: &str| n.starts_with("Dockerfile")),
    ] {
        let entries =
            std::fs::read_dir(root.join(dir)).with_context(|| format!("reading {dir}"))?;
        for e in entries {
            let name = e?.file_name().to_string_lossy().into_owned();
            if wanted(&name) {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.push("docker/Dockerfile".into());
    files.push("docker/examples/Dockerfile.naive".into());
    files.sort();
    Ok(files)
}

/// Run `cmd` for each file, one process after another: the findings, and seconds per file.
fn per_file(
    files: &[String],
    cmd: &dyn Fn(&str) -> Cmd,
    read: fn(&[u8]) -> Result<Found>,
) -> Result<(Findings, f64)> {
    let mut outputs = Vec::with_capacity(files.len());
    let start = Instant::now();
    for f in files {
        outputs.push(cmd(f).output()?);
    }
    let seconds = start.elapsed().as_secs_f64() / files.len().max(1) as f64;
    let mut found = Findings::new();
    for (f, out) in files.iter().zip(outputs) {
        if !out.status.success() {
            bail!(
                "{f}: the linter failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        found.insert(
            f.clone(),
            read(&out.stdout).with_context(|| format!("{f}: reading the linter's JSON"))?,
        );
    }
    Ok((found, seconds))
}

fn our_findings(stdout: &[u8]) -> Result<Found> {
    let json: Value = serde_json::from_slice(stdout)?;
    let file = &json["files"][0];
    if !file["error"].is_null() {
        bail!("headroom cannot parse it: {}", file["error"]);
    }
    let mut out = BTreeSet::new();
    for f in file["findings"].as_array().into_iter().flatten() {
        let (Some(id), Some(line)) = (f["id"].as_str(), f["line"].as_u64()) else {
            bail!("a finding without id or line: {f}");
        };
        out.insert((id.to_string(), line));
    }
    Ok(out)
}

fn hadolint_findings(stdout: &[u8]) -> Result<Found> {
    let json: Value = serde_json::from_slice(stdout)?;
    let mut out = BTreeSet::new();
    for f in json.as_array().into_iter().flatten() {
        let (Some(code), Some(line)) = (f["code"].as_str(), f["line"].as_u64()) else {
            bail!("a finding without code or line: {f}");
        };
        out.insert((code.to_string(), line));
    }
    Ok(out)
}

/// The library's parse + lint of every file, in this process: seconds per file.
fn in_process(texts: &[Vec<u8>]) -> Result<f64> {
    let options = LintOptions::default();
    let start = Instant::now();
    for _ in 0..IN_PROCESS_PASSES {
        for t in texts {
            let df = headroom_dockerfile::parse_bytes(t)
                .map_err(|e| anyhow::anyhow!("a corpus file does not parse: {e}"))?;
            std::hint::black_box(headroom_dockerfile::lint::lint(&df, &options));
        }
    }
    Ok(start.elapsed().as_secs_f64() / (IN_PROCESS_PASSES * texts.len().max(1)) as f64)
}

/// The library's parse + fix (safe fixes) of every file, in this process: seconds per file.
fn in_process_fix(texts: &[Vec<u8>]) -> Result<f64> {
    let texts = utf8(texts)?;
    let options = FixOptions::default();
    let start = Instant::now();
    for _ in 0..IN_PROCESS_PASSES {
        for t in &texts {
            let fixed = fix(t, &options)
                .map_err(|e| anyhow::anyhow!("a corpus file does not parse: {e}"))?;
            std::hint::black_box(fixed);
        }
    }
    Ok(start.elapsed().as_secs_f64() / (IN_PROCESS_PASSES * texts.len().max(1)) as f64)
}

/// A Dockerfile of `n` RUNs in one stage, of `n` RUNs that each leave a cache (apt lists,
/// pip's cache: what the later-cleanup checks track), or of `n` stages on one base (each
/// with an apt RUN and another RUN): the shapes where a check that compares everything
/// with everything shows.
fn generated(what: &str, n: usize) -> String {
    let mut text = String::from("FROM debian:bookworm AS base\n");
    for i in 0..n {
        match what {
            "RUNs" => text.push_str(&format!("RUN echo {i} > /tmp/f{i}\n")),
            "cache RUNs" if i % 2 == 0 => {
                text.push_str(&format!("RUN apt-get update && apt-get install -y p{i}\n"))
            }
            "cache RUNs" => text.push_str(&format!("RUN echo {i} && pip install p{i}\n")),
            _ => text.push_str(&format!(
                "FROM base AS s{i}\nRUN apt-get update && apt-get install -y curl\nRUN echo {i}\n"
            )),
        }
    }
    text
}

/// The shapes timed at 1×, 2× and 4×, with the size at 1×.
const SHAPES: [(&str, usize); 3] = [("RUNs", 2_500), ("cache RUNs", 2_500), ("stages", 1_250)];

/// `fix`, and the lint as `cargo xtask lint` runs it (parse, lint, and the fixer's answer
/// for each finding), timed on generated files of 1×, 2× and 4× a size, to show how they
/// grow: (tool, shape, count, seconds).
fn scaling() -> Result<Vec<Scaled>> {
    let mut out = Vec::new();
    for (what, base) in SHAPES {
        for n in [base, base * 2, base * 4] {
            let text = generated(what, n);
            let start = Instant::now();
            let fixed = fix(&text, &FixOptions::default())
                .map_err(|e| anyhow::anyhow!("a generated file does not parse: {e}"))?;
            out.push(("fix", what, n, start.elapsed().as_secs_f64()));
            std::hint::black_box(fixed);
            let start = Instant::now();
            let df = headroom_dockerfile::parse(&text)
                .map_err(|e| anyhow::anyhow!("a generated file does not parse: {e}"))?;
            let linted =
                headroom_dockerfile::lint::lint_with_fixes(&text, &df, &LintOptions::default());
            out.push(("lint", what, n, start.elapsed().as_secs_f64()));
            std::hint::black_box(linted);
        }
    }
    Ok(out)
}

/// (tool, shape, count, seconds) of [`scaling`].
type Scaled = (&'static str, &'static str, usize, f64);

/// How a tool grows: per item at 4× the size over per item at 1× (1.0 is linear).
fn growth(scaling: &[Scaled], tool: &str, what: &str) -> Option<f64> {
    let rows: Vec<&Scaled> = scaling
        .iter()
        .filter(|r| r.0 == tool && r.1 == what)
        .collect();
    let (first, last) = (rows.first()?, rows.last()?);
    let per = |r: &Scaled| r.3 / r.2.max(1) as f64;
    Some(per(last) / per(first).max(1e-12))
}

fn fix_facts(texts: &[Vec<u8>]) -> Result<FixFacts> {
    let mut facts = FixFacts::default();
    for t in utf8(texts)? {
        let fixed = fix(t, &FixOptions::default())
            .map_err(|e| anyhow::anyhow!("a corpus file does not parse: {e}"))?;
        facts.changed += usize::from(fixed.changed());
        facts.layers_before += fixed.before.file.layers;
        facts.layers_after += fixed.after.file.layers;
    }
    Ok(facts)
}

fn utf8(texts: &[Vec<u8>]) -> Result<Vec<&str>> {
    texts
        .iter()
        .map(|t| std::str::from_utf8(t).context("a corpus file is not UTF-8"))
        .collect()
}

struct Report {
    files: Vec<String>,
    hadolint_version: String,
    runs: Vec<RunTimes>,
    ours: Findings,
    theirs: Findings,
    fixed: FixFacts,
    /// `--fix` and the lint on generated files of growing size.
    scaling: Vec<Scaled>,
    command: String,
}

/// Per rule id: hadolint's count, ours, ours at a line where hadolint has none, and
/// hadolint's at a line where ours has none.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    hadolint: usize,
    headroom: usize,
    only_headroom: usize,
    missed: usize,
}

impl Report {
    fn medians(&self) -> (f64, f64, f64, f64) {
        let m = |f: fn(&RunTimes) -> f64| median(self.runs.iter().map(f).collect());
        (
            m(|r| r.headroom),
            m(|r| r.hadolint),
            m(|r| r.in_process),
            m(|r| r.fix),
        )
    }

    fn shared(id: &str) -> bool {
        id.starts_with("DL")
    }

    /// Rows for every id of ours, then hadolint's others with a finding.
    fn counts(&self) -> BTreeMap<&'static str, Counts> {
        let mut counts: BTreeMap<&'static str, Counts> =
            RULES.iter().map(|r| (r.id, Counts::default())).collect();
        for file in &self.files {
            let empty = BTreeSet::new();
            let ours = self.ours.get(file).unwrap_or(&empty);
            let theirs = self.theirs.get(file).unwrap_or(&empty);
            for (id, line) in ours {
                if let Some(c) = counts.get_mut(id.as_str()) {
                    c.headroom += 1;
                    if !theirs.contains(&(id.clone(), *line)) {
                        c.only_headroom += 1;
                    }
                }
            }
            for (id, line) in theirs {
                if let Some(c) = counts.get_mut(id.as_str()) {
                    c.hadolint += 1;
                    if !ours.contains(&(id.clone(), *line)) {
                        c.missed += 1;
                    }
                }
            }
        }
        counts
    }

    /// `file:line ID` of each finding of `id`s (shared ones) that one side has alone.
    fn alone(&self, ours_side: bool) -> Vec<String> {
        let mut out = Vec::new();
        for file in &self.files {
            let empty = BTreeSet::new();
            let ours = self.ours.get(file).unwrap_or(&empty);
            let theirs = self.theirs.get(file).unwrap_or(&empty);
            let (mine, other) = if ours_side {
                (ours, theirs)
            } else {
                (theirs, ours)
            };
            let shared = RULES.iter().map(|r| r.id).filter(|id| Self::shared(id));
            let shared: BTreeSet<&str> = shared.collect();
            for (id, line) in mine.difference(other) {
                if shared.contains(id.as_str()) {
                    out.push(format!("{file}:{line} {id}"));
                }
            }
        }
        out
    }

    fn missed(&self) -> Vec<String> {
        self.alone(false)
    }

    fn rows(&self) -> Vec<Vec<String>> {
        let ms = |s: f64| format!("{:.1}", s * 1e3);
        let us = |s: f64| format!("{:.0}", s * 1e6);
        let mut rows: Vec<Vec<String>> = self
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                vec![
                    (i + 1).to_string(),
                    if r.hadolint_first {
                        "hadolint"
                    } else {
                        "headroom"
                    }
                    .into(),
                    ms(r.headroom),
                    ms(r.hadolint),
                    us(r.in_process),
                    us(r.fix),
                ]
            })
            .collect();
        let (h, t, p, x) = self.medians();
        rows.push(vec![
            "median".into(),
            String::new(),
            ms(h),
            ms(t),
            us(p),
            us(x),
        ]);
        rows
    }

    const HEADERS: [&'static str; 6] = [
        "run",
        "first",
        "headroom (ms/file)",
        "hadolint (ms/file)",
        "headroom in-process (µs/file)",
        "fix in-process (µs/file)",
    ];

    fn count_rows(&self) -> Vec<Vec<String>> {
        self.counts()
            .iter()
            .map(|(id, c)| {
                let theirs = |n: usize| {
                    if Self::shared(id) {
                        n.to_string()
                    } else {
                        "–".into()
                    }
                };
                vec![
                    id.to_string(),
                    theirs(c.hadolint),
                    c.headroom.to_string(),
                    c.only_headroom.to_string(),
                    theirs(c.missed),
                ]
            })
            .collect()
    }

    const COUNT_HEADERS: [&'static str; 5] = [
        "id",
        "hadolint",
        "headroom",
        "only headroom",
        "hadolint's missed by headroom",
    ];

    fn goals(&self) -> Vec<String> {
        let (h, t, _, _) = self.medians();
        let ratio = t / h.max(1e-9);
        let missed = self.missed().len();
        let shared: usize = self
            .counts()
            .iter()
            .filter(|(id, _)| Self::shared(id))
            .map(|(_, c)| c.hadolint)
            .sum();
        let mut goals = vec![
            format!(
                "faster than hadolint per file: {} ({ratio:.1}×: {:.1} ms vs {:.1} ms)",
                if h < t { "met" } else { "not met" },
                h * 1e3,
                t * 1e3
            ),
            format!(
                "every hadolint finding of a shared id found by headroom: {} ({missed} of {shared} missed)",
                if missed == 0 { "met" } else { "not met" }
            ),
        ];
        for tool in ["fix", "lint"] {
            for (what, _) in SHAPES {
                if let Some(g) = growth(&self.scaling, tool, what) {
                    goals.push(format!(
                        "{tool} linear in {what} (time per item at 4× the size ≤ 2× that at 1×): {} ({g:.2}×)",
                        if g <= 2.0 { "met" } else { "not met" }
                    ));
                }
            }
        }
        goals
    }

    fn scaling_line(&self) -> String {
        let part = |tool: &str| {
            self.scaling
                .iter()
                .filter(|r| r.0 == tool)
                .map(|(_, what, n, s)| format!("{n} {what} {s:.2} s"))
                .collect::<Vec<String>>()
                .join(", ")
        };
        format!(
            "fix on generated files (in process): {}; lint (parse, lint and the fixer's answer per finding): {}",
            part("fix"),
            part("lint")
        )
    }

    fn profile() -> &'static str {
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    }

    fn text(&self) -> String {
        let mut out = report::table(&Self::HEADERS, &self.rows());
        out.push('\n');
        out.push_str(&report::table(&Self::COUNT_HEADERS, &self.count_rows()));
        for m in self.missed() {
            out.push_str(&format!("missed: {m}\n"));
        }
        out.push_str(&format!("{}\n", self.fix_line()));
        out.push_str(&format!("{}\n", self.scaling_line()));
        for g in self.goals() {
            out.push_str(&format!("goal: {g}\n"));
        }
        out.push_str(&format!("reproduce: {}\n", self.command));
        out
    }

    fn fix_line(&self) -> String {
        let f = self.fixed;
        format!(
            "fix (safe fixes): {} of {} files changed; RUN, COPY and ADD layers {} → {}",
            f.changed,
            self.files.len(),
            f.layers_before,
            f.layers_after
        )
    }

    fn markdown(&self, date: &str) -> String {
        let table = |headers: &[&str], rows: &[Vec<String>], right_from: usize| {
            let mut t = format!("| {} |\n|", headers.join(" | "));
            for n in 0..headers.len() {
                t.push_str(if n >= right_from { "--:|" } else { "---|" });
            }
            t.push('\n');
            for r in rows {
                t.push_str(&format!("| {} |\n", r.join(" | ")));
            }
            t
        };
        let fixtures = self
            .files
            .iter()
            .filter(|f| f.starts_with("tests/"))
            .count();
        let extra = self.alone(true);
        let mut md = format!(
            "{START}\n## Dockerfile lint: `cargo xtask lint` vs hadolint\n\n\
             {} Dockerfiles: the lint corpus (`tests/fixtures/dockerfiles/lint`, {fixtures} files \
             written after the kinds found in public repositories) and the repository's own \
             ({}). Each tool runs as a process per file, as CI runs a linter, with JSON output; \
             which goes first alternates, after an untimed warm-up pass of each. The in-process \
             figures are the library's parse + lint of a file, and its parse + fix \
             (`headroom_dockerfile::fix`, safe fixes), without the process. Recorded {date} with:\n\n```sh\n{}\n```\n\n\
             - nproc: {}\n- hadolint: {}\n- headroom: the xtask binary as `cargo xtask` builds \
             it ({} profile)\n\n",
            self.files.len(),
            self.files.len() - fixtures,
            self.command,
            cmd("nproc", NO_ARGS).read().unwrap_or_else(|_| "?".into()),
            self.hadolint_version,
            Self::profile(),
        );
        md.push_str(&table(&Self::HEADERS, &self.rows(), 2));
        md.push_str(
            "\nFindings per rule over the corpus (a finding is a rule id at a line; DL ids mean \
             what they mean in hadolint, HR ids are headroom's own):\n\n",
        );
        md.push_str(&table(&Self::COUNT_HEADERS, &self.count_rows(), 1));
        if !extra.is_empty() {
            md.push_str(&format!(
                "\nShared ids found by headroom alone: {}.\n",
                extra.join(", ")
            ));
        }
        let missed = self.missed();
        if !missed.is_empty() {
            md.push_str(&format!(
                "\nhadolint's findings headroom misses: {}.\n",
                missed.join(", ")
            ));
        }
        md.push_str(&format!("\n{}.\n", self.fix_line()));
        md.push_str(&format!("\n{}.\n", self.scaling_line()));
        md.push_str("\nGoals:\n\n");
        for g in self.goals() {
            md.push_str(&format!("- {g}\n"));
        }
        md.push_str(&format!("{END}\n"));
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_per_item_time_at_the_largest_size_over_the_smallest() {
        let linear = [
            ("fix", "RUNs", 10, 1.0),
            ("fix", "RUNs", 20, 2.0),
            ("fix", "RUNs", 40, 4.0),
        ];
        assert!((growth(&linear, "fix", "RUNs").unwrap() - 1.0).abs() < 1e-9);
        assert!(growth(&linear, "lint", "RUNs").is_none());
        let square = [("lint", "stages", 10, 1.0), ("lint", "stages", 40, 16.0)];
        assert!((growth(&square, "lint", "stages").unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(growth(&square, "lint", "RUNs"), None);
        assert!(generated("cache RUNs", 4).matches("apt-get update").count() == 2);
        assert!(generated("RUNs", 3).matches("\nRUN ").count() == 3);
        assert!(generated("stages", 3).matches("\nFROM base").count() == 3);
    }

    fn found(v: &[(&str, u64)]) -> Found {
        v.iter().map(|(id, line)| (id.to_string(), *line)).collect()
    }

    #[test]
    fn findings_are_compared_rule_and_line_at_once() {
        let report = Report {
            files: vec!["a".into()],
            hadolint_version: "hadolint".into(),
            runs: vec![RunTimes {
                hadolint_first: false,
                headroom: 0.002,
                hadolint: 0.05,
                in_process: 1e-4,
                fix: 2e-4,
            }],
            ours: [(
                "a".to_string(),
                found(&[("DL3059", 3), ("DL3042", 5), ("HR001", 6)]),
            )]
            .into(),
            theirs: [(
                "a".to_string(),
                found(&[("DL3059", 3), ("DL3015", 4), ("DL3008", 4), ("DL3042", 6)]),
            )]
            .into(),
            fixed: FixFacts {
                changed: 1,
                layers_before: 9,
                layers_after: 4,
            },
            scaling: vec![("fix", "RUNs", 10, 0.1), ("fix", "RUNs", 40, 0.4)],
            command: "cargo xtask bench lint --runs 1".into(),
        };
        let c = report.counts();
        let row = |id: &str| {
            let x = c[id];
            (x.hadolint, x.headroom, x.only_headroom, x.missed)
        };
        assert_eq!(row("DL3059"), (1, 1, 0, 0));
        assert_eq!(row("DL3015"), (1, 0, 0, 1));
        // The same rule at another line is one found alone and one missed.
        assert_eq!(row("DL3042"), (1, 1, 1, 1));
        assert_eq!(row("HR001"), (0, 1, 1, 0));
        // hadolint's rules we do not have are not ours to count.
        assert!(!c.contains_key("DL3008"));
        assert_eq!(report.missed(), ["a:4 DL3015", "a:6 DL3042"]);
        assert_eq!(report.alone(true), ["a:5 DL3042"]);
        let goals = report.goals();
        assert!(goals[0].contains(": met"), "{goals:?}");
        assert!(goals[1].contains(": not met (2 of 3 missed)"), "{goals:?}");
        let md = report.markdown("2026-01-01");
        assert!(md.starts_with(START) && md.ends_with(&format!("{END}\n")));
        assert!(md.contains("cargo xtask bench lint --runs 1"), "{md}");
        assert!(md.contains("a:4 DL3015, a:6 DL3042"), "{md}");
        assert!(
            md.contains("1 of 1 files changed; RUN, COPY and ADD layers 9 → 4"),
            "{md}"
        );
    }
}
