//! Every text the pipeline's values are shown as: for a person ([`human`]: tables, reports,
//! one line per event of a run), for a Markdown page such as GitHub's step summary
//! ([`markdown`]), and for GitHub Actions' workflow commands and step outputs ([`github`]).
//!
//! Each function takes a value and returns a `String`; nothing here prints or writes. The
//! library declares the reporter traits ([`crate::Reporter`], `headroom_disk::Progress`),
//! a binary implements them and prints what it gets from here.

pub mod github;
pub mod human;
pub mod markdown;

use crate::report::{Cause, Report};
use crate::stage::Stage;

/// How a run ended, as the step summary, the step outputs and the annotations say it: made on
/// every run, passed, failed or interrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `passed`, `failed` or `interrupted`.
    pub result: &'static str,
    /// `no_space`, `interrupted`, else `STAGE-failed` (`setup-failed` before the first
    /// stage); `None` when the run passed.
    pub cause: Option<String>,
    pub failed_stage: Option<Stage>,
    /// The failure's message, diagnosis included.
    pub message: Option<String>,
}

impl Outcome {
    /// From the report, the run's failure (if any), whether it was interrupted and the stage
    /// it was in.
    pub fn of(
        r: &Report,
        failure: Option<&str>,
        interrupted: bool,
        current: Option<Stage>,
    ) -> Outcome {
        let Some(message) = failure else {
            return Outcome {
                result: "passed",
                cause: None,
                failed_stage: None,
                message: None,
            };
        };
        let failed_stage = r.first_failed().map(|s| s.name).or(current);
        let cause = match r.cause {
            Some(Cause::NoSpace) => "no_space".to_string(),
            Some(Cause::Interrupted) => "interrupted".to_string(),
            None => match failed_stage {
                Some(stage) => format!("{stage}-failed"),
                None => "setup-failed".to_string(),
            },
        };
        Outcome {
            result: if interrupted { "interrupted" } else { "failed" },
            cause: Some(cause),
            failed_stage,
            message: Some(message.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::{FileFindings, json, sarif};
    use headroom_dockerfile::lint::RULES;

    use super::{github, human};

    fn sample() -> Vec<FileFindings> {
        let src = "FROM a\nRUN apt-get update\nRUN pip install x\n";
        let df = headroom_dockerfile::parse(src).expect("parses");
        let headroom_dockerfile::lint::Linted { findings, fixes } =
            headroom_dockerfile::lint::lint_with_fixes(src, &df, &Default::default());
        vec![FileFindings {
            file: "dir,x/Dockerfile".into(),
            findings,
            error: None,
            invalid: Vec::new(),
            fixes,
        }]
    }

    #[test]
    fn every_format_carries_every_finding() {
        let files = sample();
        let n = files[0].findings.len();
        assert!(n >= 3, "{:?}", files[0].findings);
        let text = human::findings(&files);
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
        let gh = github::annotations(&files);
        assert_eq!(gh.lines().count(), n);
        assert!(
            gh.contains("::warning file=dir%2Cx/Dockerfile,line=3,"),
            "{gh}"
        );
        assert!(gh.contains("::notice "), "{gh}");
        let j = json(&files);
        assert_eq!(j["files"][0]["findings"].as_array().map(Vec::len), Some(n));
    }
}
