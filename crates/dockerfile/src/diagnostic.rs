//! What the lint reports: a [`Finding`] (its rule, severity, message and place) carrying the
//! [`Fix`] that answers it, if there is one, with the fix's [`Applicability`] — as ruff's
//! diagnostics carry an `Option<Fix>`. A finding is whole when the lint makes it
//! ([`crate::lint::lint_with_fixes`]): nothing adds its fix afterwards.

use serde::{Deserialize, Serialize};

/// How much a finding matters. Ordered: `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[serde(alias = "style")]
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "info" | "style" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "error" => Ok(Severity::Error),
            other => Err(format!("{other:?}: expected error, warning or info")),
        }
    }
}

/// Whether a fix may be applied: whether it keeps what gets installed. A change of the
/// fixer ([`crate::fix::Change::safety`]) and the fix a finding carries ([`Fix`]) say it
/// alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Applicability {
    /// `--fix` applies it: the same program, the same files installed; only layers and
    /// caches change.
    Safe,
    /// Only `--fix-unsafe` applies it ([`crate::fix::FixOptions::unsafe_fixes`]): it changes
    /// what gets installed.
    Unsafe,
}

impl Applicability {
    /// `safe` or `unsafe`, as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Applicability::Safe => "safe",
            Applicability::Unsafe => "unsafe",
        }
    }
}

/// The fix that answers a finding: one of the changes the fixer makes to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Fix {
    /// Whether `--fix` applies it, or only `--fix-unsafe`.
    pub applicability: Applicability,
    /// The change, an index into the file's [`crate::fix::Fixes::changes`] (which holds its
    /// edits of the original text).
    pub change: usize,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub id: &'static str,
    pub severity: Severity,
    pub message: String,
    pub hint: &'static str,
    pub line: usize,
    pub end_line: usize,
    pub column: usize,
    /// The fix that answers it; `None` when the rule has none, when the fixer could not
    /// prove one keeps the program (a script that sets shell options, a RUN it cannot read,
    /// a Windows or unknown base, …), or when no fix was asked for ([`crate::lint::lint`]).
    pub fix: Option<Fix>,
}

impl Finding {
    /// Whether its fix is applied by `--fix` (safe), only by `--fix-unsafe` (unsafe), or
    /// there is none.
    pub fn applicability(&self) -> Option<Applicability> {
        self.fix.map(|f| f.applicability)
    }
}

/// The JSON of a finding: its fields, `applicability` (`safe`, `unsafe`, or `none` without
/// a fix) and `fix`, the index of its change, when it has one.
impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: &'a str,
            severity: Severity,
            message: &'a str,
            hint: &'a str,
            line: usize,
            end_line: usize,
            column: usize,
            applicability: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            fix: Option<usize>,
        }
        Shown {
            id: self.id,
            severity: self.severity,
            message: &self.message,
            hint: self.hint,
            line: self.line,
            end_line: self.end_line,
            column: self.column,
            applicability: self.applicability().map_or("none", Applicability::as_str),
            fix: self.fix.map(|f| f.change),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_shows_its_fix_as_applicability_and_index() {
        let mut f = Finding {
            id: "DL3059",
            severity: Severity::Info,
            message: "m".into(),
            hint: "h",
            line: 2,
            end_line: 3,
            column: 1,
            fix: None,
        };
        let json = serde_json::to_value(&f).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({"id": "DL3059", "severity": "info", "message": "m", "hint": "h",
                "line": 2, "end_line": 3, "column": 1, "applicability": "none"})
        );
        f.fix = Some(Fix {
            applicability: Applicability::Unsafe,
            change: 4,
        });
        let json = serde_json::to_value(&f).expect("serializes");
        assert_eq!(json["applicability"], "unsafe");
        assert_eq!(json["fix"], 4);
        assert_eq!(
            serde_json::to_value(Applicability::Safe).expect("serializes"),
            Applicability::Safe.as_str()
        );
    }
}
