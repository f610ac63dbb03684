//! How lint findings are shown: a human line per finding, JSON, SARIF 2.1.0 (code scanning),
//! and GitHub workflow annotations.

use std::collections::BTreeMap;

use headroom_dockerfile::lint::{Finding, RULES, Severity};
use serde::Serialize;
use serde_json::json;

/// The findings of one file, or why it could not be read.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileFindings {
    pub file: String,
    pub findings: Vec<Finding>,
    /// A Dockerfile that does not parse: `line:column: message`.
    pub error: Option<ParseFailure>,
    /// Instructions Docker's build refuses (BuildKit's instruction checks), in order.
    pub invalid: Vec<ParseFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ParseFailure {
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
pub(crate) fn counts(files: &[FileFindings]) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::from([("error", 0), ("warning", 0), ("info", 0)]);
    for f in files {
        for finding in &f.findings {
            *c.entry(finding.severity.as_str()).or_insert(0) += 1;
        }
        *c.entry("error").or_insert(0) += f.refusals().count();
    }
    c
}

/// `file:line: ID message (severity; hint)`, one line per finding.
pub(crate) fn human(files: &[FileFindings]) -> String {
    let mut out = String::new();
    for f in files {
        for (_, what, e) in f.refusals() {
            out.push_str(&format!(
                "{}:{}:{}: {} (error: {what})\n",
                f.file, e.line, e.column, e.message
            ));
        }
        for x in &f.findings {
            out.push_str(&format!(
                "{}:{}: {} {} ({}; {})\n",
                f.file,
                x.line,
                x.id,
                x.message,
                x.severity.as_str(),
                x.hint
            ));
        }
    }
    let c = counts(files);
    out.push_str(&format!(
        "{} error(s), {} warning(s), {} info in {} file(s)\n",
        c["error"],
        c["warning"],
        c["info"],
        files.len()
    ));
    out
}

pub(crate) fn json(files: &[FileFindings]) -> serde_json::Value {
    json!({ "files": files, "counts": counts(files) })
}

/// SARIF 2.1.0, as GitHub code scanning and other tools read it.
pub(crate) fn sarif(files: &[FileFindings]) -> serde_json::Value {
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

/// GitHub workflow commands: `::warning file=…,line=…,endLine=…,col=…,title=ID::message`.
pub(crate) fn github(files: &[FileFindings]) -> String {
    let mut out = String::new();
    for f in files {
        for (kind, _, e) in f.refusals() {
            out.push_str(&format!(
                "::error file={},line={},col={},title={kind}::{}\n",
                property(&f.file),
                e.line,
                e.column,
                data(&e.message)
            ));
        }
        for x in &f.findings {
            let command = match x.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "notice",
            };
            out.push_str(&format!(
                "::{command} file={},line={},endLine={},col={},title={}::{}\n",
                property(&f.file),
                x.line,
                x.end_line,
                x.column,
                x.id,
                data(&format!("{} ({})", x.message, x.hint))
            ));
        }
    }
    out
}

/// Escaping for a workflow command's message.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escaping for a workflow command's property value.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<FileFindings> {
        let df = headroom_dockerfile::parse("FROM a\nRUN apt-get update\nRUN pip install x\n")
            .expect("parses");
        let findings = headroom_dockerfile::lint::lint(&df, &Default::default());
        vec![FileFindings {
            file: "dir,x/Dockerfile".into(),
            findings,
            error: None,
            invalid: Vec::new(),
        }]
    }

    #[test]
    fn every_format_carries_every_finding() {
        let files = sample();
        let n = files[0].findings.len();
        assert!(n >= 3, "{:?}", files[0].findings);
        let text = human(&files);
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("dir,x/Dockerfile:"))
                .count(),
            n
        );
        assert!(text.contains("dir,x/Dockerfile:2: HR002 "), "{text}");
        let sarif = sarif(&files);
        assert_eq!(sarif["version"], "2.1.0");
        assert_eq!(
            sarif["runs"][0]["results"].as_array().map(Vec::len),
            Some(n)
        );
        assert_eq!(
            sarif["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .map(Vec::len),
            Some(RULES.len())
        );
        let gh = github(&files);
        assert_eq!(gh.lines().count(), n);
        assert!(
            gh.contains("::warning file=dir%2Cx/Dockerfile,line=3,"),
            "{gh}"
        );
        assert!(gh.contains("::notice "), "{gh}");
        let j = json(&files);
        assert_eq!(j["files"][0]["findings"].as_array().map(Vec::len), Some(n));
    }

    #[test]
    fn messages_cannot_break_out_of_a_workflow_command() {
        assert_eq!(data("a\nb%"), "a%0Ab%25");
        assert_eq!(property("a:b,c"), "a%3Ab%2Cc");
    }
}
