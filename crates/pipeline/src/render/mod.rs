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
