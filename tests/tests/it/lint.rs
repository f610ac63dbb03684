//! `cargo xtask lint` against hadolint on a corpus of Dockerfiles (every hadolint finding of
//! the ids we share must be ours too, at the same line), and the command itself: its lines,
//! exit status, output formats, configuration and unparsable files.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use headroom_dockerfile::lint::RULES;
use headroom_tests::harness::Need;
use headroom_tests::xtask_in;
use serde_json::Value;

headroom_tests::tests! {
    every_hadolint_finding_of_a_shared_id_is_ours_too needs HADOLINT;
    lint_prints_a_line_per_finding_and_fails_at_hadolints_threshold;
    every_format_carries_the_same_findings;
    headroom_toml_ignores_rules_changes_severities_and_refuses_what_it_does_not_know;
    a_dockerfile_docker_cannot_parse_is_reported_at_its_place;
}

const NAIVE: &str = "docker/examples/Dockerfile.naive";

fn root() -> PathBuf {
    headroom_tests::repo_root().to_path_buf()
}

/// The lint corpus and the repository's own Dockerfiles, relative to the root.
fn corpus() -> Vec<String> {
    let root = root();
    let mut files: Vec<String> = Vec::new();
    for dir in ["tests/fixtures/dockerfiles/lint", "docker/simulate"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let wanted = if dir.ends_with("lint") {
                name.ends_with(".Dockerfile")
            } else {
                name.starts_with("Dockerfile")
            };
            if wanted {
                files.push(format!("{dir}/{name}"));
            }
        }
    }
    files.push("docker/Dockerfile".into());
    files.push(NAIVE.into());
    files.sort();
    files
}

/// The ids that mean what hadolint means by them.
fn mapped() -> BTreeSet<&'static str> {
    RULES
        .iter()
        .map(|r| r.id)
        .filter(|id| id.starts_with("DL"))
        .collect()
}

/// A hadolint that answers `--version`: `$HADOLINT`, the tools venv's or the one on PATH.
const HADOLINT: Need = Need::Other {
    missing: "needs hadolint (scripts/provision installs it into /opt/headroom/venv)",
    met: || hadolint().is_some(),
};

/// A hadolint that answers (`$HADOLINT`, the tools venv's or the one on PATH), if any.
fn hadolint() -> Option<PathBuf> {
    let candidates = std::env::var_os("HADOLINT")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            headroom_tests::harness::tool("hadolint"),
            PathBuf::from("hadolint"),
        ]);
    for c in candidates {
        let works = Command::new(&c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if works {
            return Some(c);
        }
    }
    None
}

/// An empty configuration, so that no headroom.toml in the tree changes the findings.
fn empty_config(dir: &Path) -> String {
    let path = dir.join("headroom.toml");
    std::fs::write(&path, "").unwrap();
    path.to_string_lossy().into_owned()
}

fn every_hadolint_finding_of_a_shared_id_is_ours_too() {
    let hadolint = hadolint().expect("a hadolint (HADOLINT is this test's need)");
    let root = root();
    let files = corpus();
    let lint_dir = root.join("tests/fixtures/dockerfiles/lint");
    let fixtures = files
        .iter()
        .filter(|f| f.starts_with("tests/fixtures/dockerfiles/lint/"))
        .count();
    assert!(
        fixtures >= 15,
        "{}: {fixtures} Dockerfiles",
        lint_dir.display()
    );
    for f in &files {
        if f.starts_with("tests/") {
            let text = std::fs::read_to_string(root.join(f)).unwrap();
            assert!(
                text.starts_with('#'),
                "{f}: starts with a comment saying what it stands for"
            );
        }
    }
    let mapped = mapped();

    let out = Command::new(&hadolint)
        .args(["-f", "json", "--no-fail"])
        .args(&files)
        .current_dir(&root)
        .output()
        .unwrap();
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hadolint printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // file -> {(id, line)} of hadolint's findings with a shared id
    let mut expected: BTreeMap<String, BTreeSet<(String, u64)>> = BTreeMap::new();
    for f in theirs.as_array().unwrap() {
        let code = f["code"].as_str().unwrap();
        if mapped.contains(code) {
            expected
                .entry(f["file"].as_str().unwrap().to_string())
                .or_default()
                .insert((code.to_string(), f["line"].as_u64().unwrap()));
        }
    }
    // The corpus exercises every shared rule.
    let seen: BTreeSet<&str> = expected
        .values()
        .flatten()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(seen, mapped, "shared ids hadolint reports on the corpus");

    let tmp = tempfile::tempdir().unwrap();
    let config = empty_config(tmp.path());
    let mut args = vec![
        "lint",
        "--format",
        "json",
        "--fail-on",
        "none",
        "--config",
        &config,
    ];
    args.extend(files.iter().map(String::as_str));
    let run = xtask_in(Some(&root), &args, &[]);
    assert!(run.success(), "{run:?}");
    let ours = run.json();
    let mut found: BTreeMap<String, BTreeSet<(String, u64)>> = BTreeMap::new();
    for f in ours["files"].as_array().unwrap() {
        let file = f["file"].as_str().unwrap().to_string();
        assert!(
            f["error"].is_null(),
            "{file}: we cannot parse it: {}",
            f["error"]
        );
        let set = found.entry(file).or_default();
        for x in f["findings"].as_array().unwrap() {
            set.insert((
                x["id"].as_str().unwrap().to_string(),
                x["line"].as_u64().unwrap(),
            ));
        }
    }
    let mut misses = Vec::new();
    for (file, wanted) in &expected {
        let ours = found.get(file).cloned().unwrap_or_default();
        for (id, line) in wanted.difference(&ours) {
            misses.push(format!("{file}:{line}: {id}"));
        }
    }
    let total: usize = expected.values().map(BTreeSet::len).sum();
    assert!(
        misses.is_empty(),
        "{} of hadolint's {total} findings of shared ids are not ours:\n{}",
        misses.len(),
        misses.join("\n")
    );
}

/// `(id, line)` of every `FILE:LINE: ID …` line about `file`.
fn human_findings(stdout: &str, file: &str) -> Vec<(String, u64)> {
    let prefix = format!("{file}:");
    let mut out: Vec<(String, u64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (line, rest) = rest.split_once(": ").unwrap();
            let id = rest.split_whitespace().next().unwrap();
            (id.to_string(), line.parse().unwrap())
        })
        .collect();
    out.sort();
    out
}

fn lint_prints_a_line_per_finding_and_fails_at_hadolints_threshold() {
    let root = root();
    // Findings fail at hadolint's default threshold (info); --fail-on none only reports.
    let run = xtask_in(Some(&root), &["lint", NAIVE], &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    let reported = xtask_in(Some(&root), &["lint", "--fail-on", "none", NAIVE], &[]);
    assert_eq!(reported.code, Some(0), "{reported:?}");
    assert_eq!(reported.stdout, run.stdout);
    assert!(
        !run.stdout.lines().any(|l| l.starts_with("::")),
        "{}",
        run.stdout
    );
    let found = human_findings(&run.stdout, NAIVE);
    let ids: BTreeSet<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    for id in [
        "DL3059", "DL3009", "DL3015", "DL3042", "HR001", "HR002", "HR003", "HR006",
    ] {
        assert!(ids.contains(id), "{id} missing from:\n{}", run.stdout);
    }
    let mut marked = 0;
    for line in run.stdout.lines().filter(|l| l.starts_with(NAIVE)) {
        let line = match line.rsplit_once(") [") {
            Some((rest, mark)) => {
                assert!(mark == "--fix]" || mark == "--fix-unsafe]", "{line}");
                marked += 1;
                rest.to_string() + ")"
            }
            None => line.to_string(),
        };
        assert!(
            line.ends_with(')') && (line.contains(" (info; ") || line.contains(" (warning; ")),
            "{line}"
        );
    }
    assert!(
        marked >= 5,
        "findings --fix fixes are marked:\n{}",
        run.stdout
    );
    let failing = xtask_in(Some(&root), &["lint", "--fail-on", "warning", NAIVE], &[]);
    assert_eq!(failing.code, Some(1), "{failing:?}");
    assert_eq!(human_findings(&failing.stdout, NAIVE), found);
}

fn every_format_carries_the_same_findings() {
    let root = root();
    let human = human_findings(&xtask_in(Some(&root), &["lint", NAIVE], &[]).stdout, NAIVE);
    assert!(human.len() > 20, "{human:?}");

    let json = xtask_in(Some(&root), &["lint", "--format", "json", NAIVE], &[]).json();
    let mut from_json: Vec<(String, u64)> = json["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    from_json.sort();
    assert_eq!(json["files"][0]["file"], NAIVE);
    assert_eq!(from_json, human);

    let sarif = xtask_in(Some(&root), &["lint", "--format", "sarif", NAIVE], &[]).json();
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    let rules: BTreeSet<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let mut from_sarif = Vec::new();
    for r in run["results"].as_array().unwrap() {
        let id = r["ruleId"].as_str().unwrap();
        assert!(rules.contains(id), "{id} is not in tool.driver.rules");
        assert!(
            matches!(r["level"].as_str(), Some("error" | "warning" | "note")),
            "{r}"
        );
        assert!(
            r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()),
            "{r}"
        );
        let location = &r["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], NAIVE);
        let line = location["region"]["startLine"].as_u64().unwrap();
        assert!(line >= 1, "{r}");
        from_sarif.push((id.to_string(), line));
    }
    from_sarif.sort();
    assert_eq!(from_sarif, human);

    let github = xtask_in(Some(&root), &["lint", "--format", "github", NAIVE], &[]);
    let mut from_github = Vec::new();
    for l in github.stdout.lines() {
        let (command, rest) = l.strip_prefix("::").unwrap().split_once(' ').unwrap();
        assert!(matches!(command, "error" | "warning" | "notice"), "{l}");
        let (props, message) = rest.split_once("::").unwrap();
        assert!(!message.is_empty(), "{l}");
        let props: BTreeMap<&str, &str> = props
            .split(',')
            .map(|kv| kv.split_once('=').unwrap())
            .collect();
        assert_eq!(props["file"], NAIVE);
        from_github.push((props["title"].to_string(), props["line"].parse().unwrap()));
    }
    from_github.sort();
    assert_eq!(from_github, human);

    // On GitHub Actions the default output adds the annotations to the lines.
    let on_actions = xtask_in(Some(&root), &["lint", NAIVE], &[("GITHUB_ACTIONS", "true")]);
    assert_eq!(on_actions.code, Some(1), "{on_actions:?}");
    assert_eq!(human_findings(&on_actions.stdout, NAIVE), human);
    assert!(
        on_actions
            .stdout
            .contains(&format!("::warning file={NAIVE},line=")),
        "{}",
        on_actions.stdout
    );
}

fn headroom_toml_ignores_rules_changes_severities_and_refuses_what_it_does_not_know() {
    let root = root();
    let tmp = tempfile::tempdir().unwrap();
    let lint_with = |toml: &str| {
        let path = tmp.path().join("headroom.toml");
        std::fs::write(&path, toml).unwrap();
        let config = path.to_string_lossy().into_owned();
        (
            xtask_in(Some(&root), &["lint", "--config", &config, NAIVE], &[]),
            config,
        )
    };

    let (ignored, _) = lint_with("[lint]\nignore = [\"DL3059\"]\nfail_on = \"none\"\n");
    assert_eq!(ignored.code, Some(0), "{ignored:?}");
    let ids: BTreeSet<String> = human_findings(&ignored.stdout, NAIVE)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(!ids.contains("DL3059") && ids.contains("DL3015"), "{ids:?}");

    let (severe, _) = lint_with("[lint.severity]\nDL3015 = \"error\"\n");
    assert_eq!(severe.code, Some(1), "{severe:?}");
    assert!(severe.stdout.contains(" DL3015 "), "{}", severe.stdout);
    for line in severe.stdout.lines().filter(|l| l.contains(" DL3015 ")) {
        assert!(line.contains(" (error; "), "{line}");
    }

    let (unknown_rule, config) = lint_with("[lint]\nignore = [\"NOPE\"]\n");
    assert_eq!(unknown_rule.code, Some(2), "{unknown_rule:?}");
    assert!(
        unknown_rule.stderr.contains(&config) && unknown_rule.stderr.contains("NOPE"),
        "{}",
        unknown_rule.stderr
    );

    let (unknown_key, config) = lint_with("[lint]\nignroe = [\"DL3059\"]\n");
    assert_eq!(unknown_key.code, Some(2), "{unknown_key:?}");
    assert!(
        unknown_key.stderr.contains(&config) && unknown_key.stderr.contains("ignroe"),
        "{}",
        unknown_key.stderr
    );
}

fn a_dockerfile_docker_cannot_parse_is_reported_at_its_place() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, text, line) in [
        ("escape.Dockerfile", "# escape=x\nFROM debian:12\n", 1),
        (
            "heredoc.Dockerfile",
            "FROM debian:12\nRUN <<EOF\napt-get update\n",
            2,
        ),
    ] {
        std::fs::write(tmp.path().join(name), text).unwrap();
        let run = xtask_in(Some(tmp.path()), &["lint", name], &[]);
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        let prefix = format!("{name}:{line}:");
        let reported = run.stdout.lines().find(|l| l.starts_with(&prefix));
        let column = reported
            .and_then(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split_once(':'))
            .map(|(col, _)| col.parse::<u64>());
        assert!(
            matches!(column, Some(Ok(c)) if c >= 1),
            "no {prefix}COL: line in:\n{}",
            run.stdout
        );
    }
}
