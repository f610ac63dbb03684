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
/// With --dump, the Dockerfile is printed as Docker's parser reads it, as JSON. A Dockerfile
/// Docker would refuse to parse is reported as FILE:LINE:COLUMN: MESSAGE, with exit status 1.
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

/// Lint one Dockerfile; `context` is the build context for the .dockerignore check.
pub(crate) fn lint_file(path: &Path, context: Option<&Path>, config: &LintConfig) -> FileFindings {
    let file = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return FileFindings {
                file,
                findings: Vec::new(),
                error: Some(ParseFailure {
                    line: 0,
                    column: 0,
                    message: format!("cannot read it: {e}"),
                }),
            };
        }
    };
    let parsed = match headroom_dockerfile::parse_bytes(&bytes) {
        Ok(d) => d,
        Err(e) => {
            return FileFindings {
                file,
                findings: Vec::new(),
                error: Some(ParseFailure {
                    line: e.line,
                    column: e.column,
                    message: e.kind.to_string(),
                }),
            };
        }
    };
    let context = context
        .map(Path::to_path_buf)
        .or_else(|| path.parent().map(Path::to_path_buf));
    let facts =
        context.map(|dir| context_facts(&dir, path, LintOptions::default().large_context_bytes));
    let findings = headroom_dockerfile::lint::lint(&parsed, &config.options(facts));
    FileFindings {
        file,
        findings,
        error: None,
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
    pub(crate) fn run(self) -> Result<ExitCode> {
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
        let results: Vec<FileFindings> = files
            .iter()
            .map(|f| lint_file(f, self.context.as_deref(), &config))
            .collect();
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
    /// unless the result goes to standard output.
    fn fix(&self, files: &[PathBuf]) -> Result<ExitCode> {
        if files.len() > 1 && self.output.is_some() {
            bail!(
                "-o/--output takes one Dockerfile; {} were given",
                files.len()
            );
        }
        let mut failed = false;
        for file in files {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let text = match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(not_utf8) => {
                    // parse_bytes says where the bad bytes are.
                    if let Err(e) = headroom_dockerfile::parse_bytes(not_utf8.as_bytes()) {
                        eprintln!("{}:{e}", file.display());
                    }
                    failed = true;
                    continue;
                }
            };
            let options = headroom_dockerfile::fix::FixOptions {
                unsafe_fixes: self.fix_unsafe,
                path: file.display().to_string(),
            };
            let fixed = match headroom_dockerfile::fix::fix(&text, &options) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{}:{e}", file.display());
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
            eprint!("{report}");
            match self.output.as_deref() {
                Some(p) if p == Path::new("-") => {
                    std::io::stdout().lock().write_all(fixed.text.as_bytes())?;
                }
                Some(p) => write_atomically(p, &fixed.text)?,
                None if fixed.changed() => write_atomically(file, &fixed.text)?,
                None => {}
            }
        }
        Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    }
}

/// Write beside the target and rename over it: an interrupted write never leaves half a
/// Dockerfile, and the original's permissions are kept.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
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
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let dockerfile = match headroom_dockerfile::parse_bytes(&bytes) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{}:{e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &dockerfile.dump())?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}
