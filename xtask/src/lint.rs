//! `cargo xtask lint`: layer and cache problems in Dockerfiles, with hadolint's ids where
//! hadolint has the rule; `--fix` merges layers without changing what gets installed;
//! `--dump` prints what the parser sees (the JSON shape is documented in the
//! `headroom-dockerfile` crate).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use headroom_dockerfile::lint::{ContextFacts, LintOptions, Severity};
use serde::Deserialize;

use crate::lint_report::{self, FileFindings, ParseFailure};
use crate::ui;

/// Lint Dockerfiles for layer and cache problems.
///
/// Rules: hadolint's DL3059, DL3009, DL3015, DL3042, DL3019, DL3032, DL3036, DL3040, DL3060
/// (same ids, same meaning) and headroom's HR001-HR007 (cleanup in a later layer, apt-get
/// update alone, one package per install, COPY . before the install, download and extract
/// in different layers, too many layers, no .dockerignore). Ignore with
/// `# hadolint ignore=ID` or `# headroom ignore=ID` above an instruction, or in headroom.toml:
/// [lint] ignore = [..], fail_on = "error", max_layers = 12, [lint.severity] ID = "warning".
///
/// With --dump, the Dockerfile is printed as Docker's parser reads it, as JSON. What Docker
/// refuses (its parser, or its build: unknown instructions, wrong argument counts, unknown
/// flags, ...) is reported as FILE:LINE:COLUMN: MESSAGE, an error.
///
/// Exit status: 0 nothing at --fail-on; 1 findings at --fail-on; 2 an I/O or usage error
/// (a Dockerfile that is missing, unreadable or a directory), whatever --fail-on says.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct Lint {
    /// The Dockerfiles [default: docker/Dockerfile].
    files: Vec<PathBuf>,
    /// Print the parsed instructions as JSON (one file) instead of linting.
    #[arg(long, conflicts_with_all = ["format", "fix"])]
    dump: bool,
    /// human, json, sarif or github [default: human, with annotations on GitHub Actions].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Fail (exit 1) on findings at least this severe: error, warning, info or none
    /// [default: [lint] fail_on, else error].
    #[arg(long, value_name = "LEVEL")]
    fail_on: Option<FailOn>,
    /// headroom.toml with a [lint] table [default: ./headroom.toml when present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The build context, for the .dockerignore check [default: the Dockerfile's directory].
    #[arg(long, value_name = "DIR")]
    context: Option<PathBuf>,
    /// Rewrite the Dockerfile with the fixes that never change what gets installed (merged
    /// RUNs, caches removed in the layer that makes them); prints a diff, the changes and the
    /// layer counts before and after.
    #[arg(long)]
    fix: bool,
    /// With --fix: also the fixes that change what gets installed (listed as unsafe).
    #[arg(long, requires = "fix")]
    fix_unsafe: bool,
    /// With --fix: write the result to OUT (`-` for standard output) instead of in place.
    #[arg(short = 'o', long = "output", value_name = "OUT", requires = "fix")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
    Github,
}

/// The least severe finding that fails the run, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub(crate) struct FailOn(Option<Severity>);

impl std::str::FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(FailOn(None));
        }
        s.parse::<Severity>()
            .map(|s| FailOn(Some(s)))
            .map_err(|e| format!("{e} (or none)"))
    }
}

impl TryFrom<String> for FailOn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FailOn {
    pub(crate) fn fails(self, files: &[FileFindings]) -> bool {
        self.0
            .is_some_and(|at| files.iter().any(|f| f.worst().is_some_and(|w| w >= at)))
    }
}

/// headroom.toml's `[lint]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LintConfig {
    #[serde(default)]
    ignore: Vec<String>,
    fail_on: Option<FailOn>,
    max_layers: Option<usize>,
    #[serde(default)]
    severity: BTreeMap<String, Severity>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    lint: LintConfig,
    // Other tools' tables ([free], …) live in the same file.
    #[serde(flatten)]
    _rest: toml::Table,
}

impl LintConfig {
    /// `--config FILE`, else ./headroom.toml when there is one, else the defaults. Unknown
    /// keys and rule ids are errors naming the file.
    pub(crate) fn load(path: Option<&Path>) -> Result<LintConfig> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("headroom.toml");
                if !p.is_file() {
                    return Ok(LintConfig::default());
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("--config {}", path.display()))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for id in file.lint.ignore.iter().chain(file.lint.severity.keys()) {
            if headroom_dockerfile::lint::rule(id).is_none() {
                bail!(
                    "{}: [lint]: unknown rule {id:?} (see cargo xtask lint --help)",
                    path.display()
                );
            }
        }
        Ok(file.lint)
    }

    pub(crate) fn fail_on(&self) -> FailOn {
        self.fail_on.unwrap_or(FailOn(Some(Severity::Error)))
    }

    fn options(&self, context: Option<ContextFacts>) -> LintOptions {
        let defaults = LintOptions::default();
        LintOptions {
            max_layers: self.max_layers.unwrap_or(defaults.max_layers),
            context,
            ignore: self
                .ignore
                .iter()
                .map(|s| s.to_ascii_uppercase())
                .collect::<BTreeSet<_>>(),
            severity: self
                .severity
                .iter()
                .map(|(k, v)| (k.to_ascii_uppercase(), *v))
                .collect(),
            ..defaults
        }
    }
}

/// A Dockerfile that could not be read (missing, unreadable, a directory): not a finding
/// but an I/O error, exit status 2.
#[derive(Debug)]
pub(crate) struct ReadError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: cannot read it: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for ReadError {}

/// The exit status of an I/O or usage error.
pub(crate) const EXIT_IO: u8 = 2;

/// A Dockerfile's bytes; a directory is refused by name (reading one fails on some systems
/// only after opening it).
pub(crate) fn read_dockerfile(path: &Path) -> Result<Vec<u8>, ReadError> {
    let error = |error| ReadError {
        path: path.to_path_buf(),
        error,
    };
    if path.is_dir() {
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    std::fs::read(path).map_err(error)
}

fn failure(line: usize, column: usize, message: String) -> ParseFailure {
    ParseFailure {
        line,
        column,
        message,
    }
}

/// Lint one Dockerfile; `context` is the build context for the .dockerignore check. Bytes
/// that are not UTF-8 are read as Docker reads them; what Docker's parser or its build
/// refuses is reported with line and column.
pub(crate) fn lint_file(
    path: &Path,
    context: Option<&Path>,
    config: &LintConfig,
) -> Result<FileFindings, ReadError> {
    let file = path.display().to_string();
    let bytes = read_dockerfile(path)?;
    let parsed = match headroom_dockerfile::parse_bytes(&bytes) {
        Ok(d) => d,
        Err(e) => {
            return Ok(FileFindings {
                file,
                findings: Vec::new(),
                error: Some(failure(e.line, e.column, e.kind.to_string())),
                invalid: Vec::new(),
            });
        }
    };
    let invalid = headroom_dockerfile::validate::validate(&parsed)
        .into_iter()
        .map(|i| failure(i.line(), i.column(), shown(&i.message)))
        .collect();
    let context = context
        .map(Path::to_path_buf)
        .or_else(|| path.parent().map(Path::to_path_buf));
    let facts =
        context.map(|dir| context_facts(&dir, path, LintOptions::default().large_context_bytes));
    let findings = headroom_dockerfile::lint::lint(&parsed, &config.options(facts));
    Ok(FileFindings {
        file,
        findings,
        error: None,
        invalid,
    })
}

/// A message as it can be shown: a byte that is not UTF-8 (kept by the parser as a private
/// character) as `\xNN`, as Go prints it.
fn shown(message: &str) -> String {
    match headroom_dockerfile::encode_text(message) {
        std::borrow::Cow::Borrowed(_) => message.to_string(),
        std::borrow::Cow::Owned(bytes) => bytes
            .utf8_chunks()
            .map(|c| {
                let mut s = c.valid().to_string();
                for b in c.invalid() {
                    s.push_str(&format!("\\x{b:02x}"));
                }
                s
            })
            .collect(),
    }
}

/// Whether the context has a .dockerignore (or `<Dockerfile>.dockerignore`), and its size,
/// counted up to `enough` bytes (the answer is the same past it).
fn context_facts(dir: &Path, dockerfile: &Path, enough: u64) -> ContextFacts {
    let own = dockerfile
        .file_name()
        .map(|n| format!("{}.dockerignore", n.to_string_lossy()));
    let dockerignore = dir.join(".dockerignore").is_file()
        || own.is_some_and(|n| dockerfile.with_file_name(n).is_file());
    let mut bytes = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                bytes += meta.len();
            }
            if bytes >= enough {
                return ContextFacts {
                    dockerignore,
                    bytes,
                };
            }
        }
    }
    ContextFacts {
        dockerignore,
        bytes,
    }
}

impl Lint {
    /// Exit status 0: nothing at `--fail-on`; 1: findings at `--fail-on` (a Dockerfile
    /// Docker refuses is an error); 2: an I/O or usage error (a Dockerfile that cannot be
    /// read, a bad headroom.toml), whatever `--fail-on` says.
    pub(crate) fn run(self) -> Result<ExitCode> {
        match self.run_files() {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                Ok(ExitCode::from(EXIT_IO))
            }
        }
    }

    fn run_files(self) -> Result<ExitCode> {
        let files = if self.files.is_empty() {
            vec![PathBuf::from("docker/Dockerfile")]
        } else {
            self.files.clone()
        };
        if self.dump {
            return dump(&files);
        }
        if self.fix {
            return self.fix(&files);
        }
        let config = LintConfig::load(self.config.as_deref())?;
        let mut results: Vec<FileFindings> = Vec::new();
        let mut unreadable = 0;
        for f in &files {
            match lint_file(f, self.context.as_deref(), &config) {
                Ok(r) => results.push(r),
                Err(e) => {
                    eprintln!("error: {e}");
                    unreadable += 1;
                }
            }
        }
        let mut out = std::io::stdout().lock();
        match self.format {
            Some(Format::Json) => {
                serde_json::to_writer_pretty(&mut out, &lint_report::json(&results))?;
                writeln!(out)?;
            }
            Some(Format::Sarif) => {
                serde_json::to_writer_pretty(&mut out, &lint_report::sarif(&results))?;
                writeln!(out)?;
            }
            Some(Format::Github) => write!(out, "{}", lint_report::github(&results))?,
            Some(Format::Human) => write!(out, "{}", lint_report::human(&results))?,
            None => {
                write!(out, "{}", lint_report::human(&results))?;
                if ui::on_github_actions() {
                    write!(out, "{}", lint_report::github(&results))?;
                }
            }
        }
        if unreadable > 0 {
            return Ok(ExitCode::from(EXIT_IO));
        }
        let fail_on = self.fail_on.unwrap_or_else(|| config.fail_on());
        Ok(if fail_on.fails(&results) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

impl Lint {
    /// --fix: each file rewritten (or written to -o), the diff and what changed on stderr
    /// unless the result goes to standard output. A file Docker refuses is not rewritten
    /// (exit 1); one that cannot be read or written is an I/O error (exit 2).
    fn fix(&self, files: &[PathBuf]) -> Result<ExitCode> {
        if files.len() > 1 && self.output.is_some() {
            bail!(
                "-o/--output takes one Dockerfile; {} were given",
                files.len()
            );
        }
        let mut failed = false;
        let mut io_failed = false;
        for file in files {
            let bytes = match read_dockerfile(file) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    io_failed = true;
                    continue;
                }
            };
            // Bytes that are not UTF-8 travel through the fixer as one character each and are
            // written back as they were.
            let text = headroom_dockerfile::decode_bytes(&bytes);
            if *headroom_dockerfile::encode_text(&text) != *bytes {
                eprintln!(
                    "{}: holds both bytes that are not UTF-8 and the characters U+10FF80 to \
                     U+10FFFF that stand for them; not rewritten",
                    file.display()
                );
                failed = true;
                continue;
            }
            match headroom_dockerfile::parse(&text) {
                Err(e) => {
                    eprintln!("{}:{}", file.display(), shown(&e.to_string()));
                    failed = true;
                    continue;
                }
                Ok(df) => {
                    let invalid = headroom_dockerfile::validate::validate(&df);
                    if !invalid.is_empty() {
                        for i in &invalid {
                            eprintln!("{}:{}", file.display(), shown(&i.to_string()));
                        }
                        eprintln!(
                            "{}: Docker's build refuses this Dockerfile; not rewritten",
                            file.display()
                        );
                        failed = true;
                        continue;
                    }
                }
            }
            let options = headroom_dockerfile::fix::FixOptions {
                unsafe_fixes: self.fix_unsafe,
                path: file.display().to_string(),
            };
            let fixed = match headroom_dockerfile::fix::fix(&text, &options) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{}:{}", file.display(), shown(&e.to_string()));
                    failed = true;
                    continue;
                }
            };
            let to_stdout = self.output.as_deref() == Some(Path::new("-"));
            let mut report = String::new();
            if !to_stdout {
                report.push_str(&fixed.diff);
            }
            for c in &fixed.changes {
                report.push_str(&format!(
                    "{}:{}: {} ({}{}): {}\n",
                    file.display(),
                    c.line,
                    c.id.as_str(),
                    c.rules.join(", "),
                    match c.safety {
                        headroom_dockerfile::fix::Safety::Safe => "",
                        headroom_dockerfile::fix::Safety::Unsafe =>
                            "; unsafe: changes what is installed",
                    },
                    c.description
                ));
            }
            let (b, a) = (fixed.before.final_stage, fixed.after.final_stage);
            report.push_str(&format!(
                "{}: {} change(s); final stage: {} RUN / {} layers before, {} RUN / {} layers after\n",
                file.display(),
                fixed.changes.len(),
                b.run,
                b.layers,
                a.run,
                a.layers
            ));
            std::io::stderr()
                .lock()
                .write_all(&headroom_dockerfile::encode_text(&report))?;
            let out = headroom_dockerfile::encode_text(&fixed.text);
            let written = match self.output.as_deref() {
                Some(p) if p == Path::new("-") => std::io::stdout()
                    .lock()
                    .write_all(&out)
                    .context("writing standard output"),
                Some(p) => write_atomically(p, &out),
                None if fixed.changed() => write_atomically(file, &out),
                None => Ok(()),
            };
            if let Err(e) = written {
                eprintln!("error: {e:#}");
                io_failed = true;
            }
        }
        Ok(if io_failed {
            ExitCode::from(EXIT_IO)
        } else if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// Write beside the target and rename over it: an interrupted write never leaves half a
/// Dockerfile, and the original's permissions are kept.
fn write_atomically(path: &Path, text: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let tmp = dir.join(format!(".{name}.headroom-fix.tmp"));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn dump(files: &[PathBuf]) -> Result<ExitCode> {
    let [file] = files else {
        bail!("--dump takes one Dockerfile; {} were given", files.len());
    };
    let bytes = read_dockerfile(file)?;
    let dockerfile = match headroom_dockerfile::parse_bytes(&bytes) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}:{}", file.display(), shown(&e.to_string()));
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    // As Go's encoding/json writes them: a byte that is not UTF-8 as U+FFFD.
    let json = serde_json::to_string_pretty(&dockerfile.dump())?;
    let json: String = json
        .chars()
        .map(|c| {
            if ('\u{10ff80}'..='\u{10ffff}').contains(&c) {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    writeln!(out, "{json}")?;
    Ok(ExitCode::SUCCESS)
}
