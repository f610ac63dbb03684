//! What the pipeline's lint stage and `cargo xtask lint` share: headroom.toml's `[lint]`
//! table, one Dockerfile read as Docker reads it and linted, and the findings as the machine
//! formats carry them — JSON and SARIF 2.1.0 (code scanning). A human line per finding and
//! GitHub's workflow annotations are [`crate::render`]'s.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use headroom_dockerfile::lint::{ContextFacts, Finding, LintOptions, Linted, RULES, Severity};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{ConfigError, read_config, tool_config_path};

/// The least severe finding that fails the run, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FailOn(Option<Severity>);

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
    pub fn fails(self, files: &[FileFindings]) -> bool {
        self.0
            .is_some_and(|at| files.iter().any(|f| f.worst().is_some_and(|w| w >= at)))
    }
}

/// headroom.toml's `[lint]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {
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
    pub fn load(path: Option<&Path>) -> Result<LintConfig, ConfigError> {
        let Some(path) = tool_config_path(path) else {
            return Ok(LintConfig::default());
        };
        let text = read_config(&path)?;
        LintConfig::from_toml(&text, &path.display().to_string())
    }

    /// The `[lint]` table of headroom.toml's text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<LintConfig, ConfigError> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| ConfigError::toml(origin, text, &e))?;
        for id in file.lint.ignore.iter().chain(file.lint.severity.keys()) {
            if headroom_dockerfile::lint::rule(id).is_none() {
                return Err(ConfigError::new(
                    origin,
                    format!("[lint]: unknown rule {id:?} (see cargo xtask lint --help)"),
                ));
            }
        }
        Ok(file.lint)
    }

    /// The pipeline's lint stage's threshold: `fail_on`, else errors (a gate before a build
    /// stops only what Docker or a rule calls an error).
    pub fn fail_on(&self) -> FailOn {
        self.fail_on.unwrap_or(FailOn(Some(Severity::Error)))
    }

    /// The `lint` command's threshold: `fail_on`, else hadolint's default
    /// (`--failure-threshold info`): any finding fails.
    pub fn fail_on_as_hadolint(&self) -> FailOn {
        self.fail_on.unwrap_or(FailOn(Some(Severity::Info)))
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
pub struct ReadError {
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
pub const EXIT_IO: u8 = 2;

/// A Dockerfile's bytes; a directory is refused by name (reading one fails on some systems
/// only after opening it).
pub fn read_dockerfile(path: &Path) -> Result<Vec<u8>, ReadError> {
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
pub fn lint_file(
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
                fixes: Default::default(),
            });
        }
    };
    let invalid: Vec<ParseFailure> = headroom_dockerfile::validate::validate(&parsed)
        .into_iter()
        .map(|i| failure(i.line(), i.column(), shown(&i.message)))
        .collect();
    let context = context
        .map(Path::to_path_buf)
        .or_else(|| path.parent().map(Path::to_path_buf));
    let facts =
        context.map(|dir| context_facts(&dir, path, LintOptions::default().large_context_bytes));
    let options = config.options(facts);
    // A file Docker's build refuses is never rewritten, so none of its findings is fixable.
    let Linted { findings, fixes } = if invalid.is_empty() {
        let text = headroom_dockerfile::decode_bytes(&bytes);
        headroom_dockerfile::lint::lint_with_fixes(&text, &parsed, &options)
    } else {
        Linted {
            findings: headroom_dockerfile::lint::lint(&parsed, &options),
            fixes: Default::default(),
        }
    };
    Ok(FileFindings {
        file,
        findings,
        error: None,
        invalid,
        fixes,
    })
}

/// A message as it can be shown: a byte that is not UTF-8 (kept by the parser as a private
/// character) as `\xNN`, as Go prints it.
pub fn shown(message: &str) -> String {
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

/// The findings of one file, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct FileFindings {
    pub file: String,
    pub findings: Vec<Finding>,
    /// A Dockerfile that does not parse: `line:column: message`.
    pub error: Option<ParseFailure>,
    /// Instructions Docker's build refuses (BuildKit's instruction checks), in order.
    pub invalid: Vec<ParseFailure>,
    /// What `--fix` changes (safe) and what only `--fix-unsafe` adds (unsafe), and the edits
    /// of the original text they point at; a finding's `fix` is an index into
    /// `fixes.changes`.
    pub fixes: headroom_dockerfile::fix::Fixes,
}

#[derive(Debug, Clone, Serialize)]
pub struct ParseFailure {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl FileFindings {
    /// The most severe thing in the file (a parse failure or a refused instruction is an
    /// error).
    pub fn worst(&self) -> Option<Severity> {
        let refused = self.refusals().next().map(|_| Severity::Error);
        self.findings
            .iter()
            .map(|f| f.severity)
            .chain(refused)
            .max()
    }

    /// What Docker refuses, with its kind: `parse` (the parser) or `invalid` (an instruction
    /// the build refuses), and what the human output says of it.
    pub fn refusals(&self) -> impl Iterator<Item = (&'static str, &'static str, &ParseFailure)> {
        let parse = self
            .error
            .iter()
            .map(|e| ("parse", "Docker cannot parse this", e));
        let invalid = self
            .invalid
            .iter()
            .map(|e| ("invalid", "Docker's build refuses this", e));
        parse.chain(invalid)
    }
}

/// Counts per severity over all files (parse failures count as errors).
pub fn counts(files: &[FileFindings]) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::from([("error", 0), ("warning", 0), ("info", 0)]);
    for f in files {
        for finding in &f.findings {
            *c.entry(finding.severity.as_str()).or_insert(0) += 1;
        }
        *c.entry("error").or_insert(0) += f.refusals().count();
    }
    c
}

pub fn json(files: &[FileFindings]) -> serde_json::Value {
    json!({ "files": files, "counts": counts(files) })
}

/// SARIF 2.1.0, as GitHub code scanning and other tools read it.
pub fn sarif(files: &[FileFindings]) -> serde_json::Value {
    let rules: Vec<serde_json::Value> = RULES
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.title },
                "help": { "text": r.hint },
                "defaultConfiguration": { "level": level(r.severity) },
            })
        })
        .collect();
    let mut results = Vec::new();
    for f in files {
        for (kind, _, e) in f.refusals() {
            results.push(json!({
                "ruleId": kind,
                "level": "error",
                "message": { "text": e.message },
                "locations": [location(&f.file, e.line, e.line, e.column)],
            }));
        }
        for x in &f.findings {
            results.push(json!({
                "ruleId": x.id,
                "level": level(x.severity),
                "message": { "text": format!("{} ({})", x.message, x.hint) },
                "locations": [location(&f.file, x.line, x.end_line, x.column)],
            }));
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "headroom-lint",
                "informationUri": "https://github.com/headroom-dev/headroom",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn location(file: &str, line: usize, end_line: usize, column: usize) -> serde_json::Value {
    json!({ "physicalLocation": {
        "artifactLocation": { "uri": file },
        "region": { "startLine": line.max(1), "endLine": end_line.max(line).max(1), "startColumn": column.max(1) },
    }})
}
