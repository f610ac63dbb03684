//! hadolint's own rule specs, case for case: every assertion of `test/Hadolint/Rule/DLxxxxSpec.hs`
//! for each DL id the lint shares with hadolint (generated into
//! `tests/fixtures/hadolint-specs/DLxxxx.toml`, with hadolint's commit named there) must get
//! the same answer from headroom's lint. A case is linted as hadolint's test helpers lint it
//! (`tests/fixtures/hadolint-specs/README.md`): its text with a newline appended, the
//! `onBuild…` helpers' cases in their `ONBUILD` form, and only the file's rule counted.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::collections::BTreeSet;
use std::path::PathBuf;

use headroom_dockerfile::lint::{LintOptions, RULES, lint};

headroom_tests::tests! {
    every_case_of_hadolints_specs_gets_hadolints_answer;
    every_shared_rule_has_its_spec;
}

const DIR: &str = "tests/fixtures/hadolint-specs";

fn dir() -> PathBuf {
    headroom_tests::repo_root().join(DIR)
}

/// One spec file, read.
struct Spec {
    rule: String,
    commit: String,
    cases: Vec<toml::Value>,
}

fn specs() -> Vec<Spec> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: not TOML: {e}", path.display()));
        let s = |t: &toml::Table, k: &str| {
            t.get(k)
                .and_then(toml::Value::as_str)
                .unwrap_or_else(|| panic!("{}: no `{k}`", path.display()))
                .to_string()
        };
        let source = doc
            .get("source")
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("{}: no [source]", path.display()));
        out.push(Spec {
            rule: s(&doc, "rule"),
            commit: s(source, "commit"),
            cases: doc
                .get("case")
                .and_then(toml::Value::as_array)
                .cloned()
                .unwrap_or_default(),
        });
    }
    out
}

/// What the lint answers on one case, and whether that is the spec's answer.
fn agrees(rule: &str, case: &toml::Value) -> Result<(), String> {
    let field = |k: &str| case.get(k).and_then(toml::Value::as_str);
    let onbuild = case
        .get("onbuild")
        .and_then(toml::Value::as_bool)
        .unwrap_or(false);
    let text = if onbuild {
        field("onbuild_dockerfile")
    } else {
        field("dockerfile")
    }
    .ok_or("no dockerfile")?;
    // hadolint's helpers append a newline before parsing.
    let src = format!("{text}\n");
    let df = headroom_dockerfile::parse(&src).map_err(|e| format!("does not parse: {e}"))?;
    let found = lint(&df, &LintOptions::default())
        .into_iter()
        .filter(|f| f.id == rule)
        .count();
    let expect = field("expect").ok_or("no expect")?;
    let count = case.get("count").and_then(toml::Value::as_integer);
    let ok = match (expect, count) {
        ("catches", Some(n)) => found as i64 == n,
        ("catches", None) => found >= 1,
        ("catches-not", _) => found == 0,
        (other, _) => return Err(format!("unknown expect {other:?}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the spec says {expect}{}, headroom finds {found}",
            count.map(|n| format!(" (exactly {n})")).unwrap_or_default()
        ))
    }
}

fn every_case_of_hadolints_specs_gets_hadolints_answer() {
    let mut total = 0;
    let mut wrong = Vec::new();
    let mut per_rule = Vec::new();
    for spec in specs() {
        assert_eq!(spec.commit.len(), 40, "{}: the commit is named", spec.rule);
        assert!(!spec.cases.is_empty(), "{}: no cases", spec.rule);
        let mut agree = 0;
        for case in &spec.cases {
            total += 1;
            let id = case.get("id").and_then(toml::Value::as_str).unwrap_or("?");
            match agrees(&spec.rule, case) {
                Ok(()) => agree += 1,
                Err(why) => {
                    let text = case
                        .get("dockerfile")
                        .and_then(toml::Value::as_str)
                        .unwrap_or("");
                    wrong.push(format!("{id}: {why}\n    {text:?}"));
                }
            }
        }
        per_rule.push(format!("{} {agree}/{}", spec.rule, spec.cases.len()));
    }
    assert!(total > 200, "only {total} cases read");
    assert!(
        wrong.is_empty(),
        "{} of {total} cases of hadolint's specs get another answer ({}):\n{}",
        wrong.len(),
        per_rule.join(", "),
        wrong.join("\n")
    );
}

/// Every DL id of the rule table has its spec file, and every spec file is a rule of ours.
fn every_shared_rule_has_its_spec() {
    let ours: BTreeSet<String> = RULES
        .iter()
        .map(|r| r.id.to_string())
        .filter(|id| id.starts_with("DL"))
        .collect();
    let specs: BTreeSet<String> = specs().into_iter().map(|s| s.rule).collect();
    assert_eq!(
        ours, specs,
        "the DL ids of the rule table and the spec files"
    );
}
