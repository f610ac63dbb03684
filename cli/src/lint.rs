//! `headroom lint` (and `cargo xtask lint`): layer and cache problems in Dockerfiles, with hadolint's ids where
//! hadolint has the rule; `--fix` merges layers without changing what gets installed;
//! `--dump` prints what the parser sees (the JSON shape is documented in the
//! `headroom-dockerfile` crate).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use crate::ui;
use headroom_pipeline::lint::{
    self as lint_report, EXIT_IO, FailOn, FileFindings, LintConfig, lint_file, read_dockerfile,
    shown,
};
use headroom_pipeline::render;

/// Lint Dockerfiles for layer and cache problems.
///
/// Rules: hadolint's DL3059, DL3009, DL3015, DL3042, DL3019, DL3032, DL3036, DL3040, DL3060
/// (same ids, same meaning) and headroom's HR001-HR008 (cleanup in a later layer, apt-get
/// update alone, one package per install, COPY . before the install, download and extract
/// in different layers, too many layers, no .dockerignore, chown -R over copied files). Ignore with
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
#[command(
    verbatim_doc_comment,
    after_help = "Examples:
  headroom lint Dockerfile
  headroom lint Dockerfile --fail-on error --format sarif > lint.sarif
  headroom lint Dockerfile --fix          # rewrite in place, print the diff"
)]
pub struct Lint {
    /// The Dockerfiles [default: docker/Dockerfile].
    files: Vec<PathBuf>,
    /// Print the parsed instructions as JSON (one file) instead of linting.
    #[arg(long, conflicts_with_all = ["format", "fix"])]
    dump: bool,
    /// human, json, sarif or github [default: human, with annotations on GitHub Actions].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Fail (exit 1) on findings at least this severe: error, warning, info or none
    /// [default: [lint] fail_on, else info, as hadolint's --failure-threshold].
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

impl Lint {
    /// Exit status 0: nothing at `--fail-on`; 1: findings at `--fail-on` (a Dockerfile
    /// Docker refuses is an error); 2: an I/O or usage error (a Dockerfile that cannot be
    /// read, a bad headroom.toml), whatever `--fail-on` says.
    pub(crate) fn run(self) -> Result<ExitCode> {
        match self.run_files() {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {}", ui::printable(&format!("{e:#}")));
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
                    eprintln!("error: {}", ui::printable(&e.to_string()));
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
            Some(Format::Github) => write!(out, "{}", render::github::annotations(&results))?,
            Some(Format::Human) => write!(out, "{}", render::human::findings(&results))?,
            None => {
                write!(out, "{}", render::human::findings(&results))?;
                if ui::on_github_actions() {
                    write!(out, "{}", render::github::annotations(&results))?;
                }
            }
        }
        if unreadable > 0 {
            return Ok(ExitCode::from(EXIT_IO));
        }
        let fail_on = self.fail_on.unwrap_or_else(|| config.fail_on_as_hadolint());
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
                    eprintln!("error: {}", ui::printable(&e.to_string()));
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
            let report = render::human::fixes(&file.display().to_string(), &fixed, !to_stdout);
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
                eprintln!("error: {}", ui::printable(&format!("{e:#}")));
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
    headroom_disk::write_atomically(path, text)
        .with_context(|| format!("writing {}", path.display()))
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
