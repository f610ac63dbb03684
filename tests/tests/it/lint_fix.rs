//! `cargo xtask lint --fix`: the naive example comes out with at most a third of its RUN
//! layers, the diff and the layer counts are shown, fixing again changes nothing, and unsafe
//! fixes need their own flag. (tests/tests/it/dockerfile_fix.rs builds fixed files and compares
//! what the engine makes of them.)

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use headroom_tests::xtask;

headroom_tests::tests! {
    the_naive_example_is_fixed_to_a_third_of_its_run_layers_and_stays_fixed;
    fixing_in_place_keeps_permissions_and_unsafe_fixes_need_their_flag;
    a_dockerfile_that_does_not_parse_is_not_touched;
    findings_carry_the_edits_that_fix_applies;
}

fn root() -> &'static Path {
    headroom_tests::repo_root()
}

fn run_instructions(file: &Path) -> usize {
    let dump = xtask(&["lint", "--dump", file.to_str().unwrap()], &[]);
    assert!(dump.success(), "{}", dump.stderr);
    let v: serde_json::Value = serde_json::from_str(&dump.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|i| i["instruction"] == "run")
        .count()
}

fn the_naive_example_is_fixed_to_a_third_of_its_run_layers_and_stays_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let naive = root().join("docker/examples/Dockerfile.naive");
    let original = std::fs::read_to_string(&naive).unwrap();
    let out = dir.path().join("Dockerfile.fixed");
    let run = xtask(
        &[
            "lint",
            "--fix",
            naive.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(run.success(), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(&naive).unwrap(),
        original,
        "-o must leave the input alone"
    );
    assert!(run.stderr.contains("--- a/"), "{}", run.stderr);
    assert!(run.stderr.contains("merge-runs"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("final stage: 23 RUN / 25 layers before"),
        "{}",
        run.stderr
    );
    let before = run_instructions(&naive);
    let after = run_instructions(&out);
    assert!(after * 3 <= before, "{before} RUNs became {after}");
    assert!(!run.stderr.contains("unsafe"), "{}", run.stderr);

    // The fixed file no longer has the problems the fix is for.
    let lint = xtask(
        &[
            "lint",
            "--format",
            "json",
            "--fail-on",
            "none",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_str(&lint.stdout).unwrap();
    let ids: Vec<&str> = v["files"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for gone in [
        "DL3059", "DL3009", "DL3042", "HR001", "HR002", "HR003", "HR006",
    ] {
        assert!(!ids.contains(&gone), "{gone} still found: {ids:?}");
    }

    // Idempotent: fixing the fixed file in place changes nothing.
    let fixed = std::fs::read_to_string(&out).unwrap();
    let again = xtask(&["lint", "--fix", out.to_str().unwrap()], &[]);
    assert!(again.success(), "{}", again.stderr);
    assert!(again.stderr.contains("0 change(s)"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), fixed);
}

fn fixing_in_place_keeps_permissions_and_unsafe_fixes_need_their_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(
        &file,
        "FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\n",
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let run = xtask(&["lint", "--fix", file.to_str().unwrap()], &[]);
    assert!(run.success(), "{}", run.stderr);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("RUN ").count(), 1, "{text}");
    assert!(text.contains("rm -rf /var/lib/apt/lists/*"), "{text}");
    assert!(!text.contains("--no-install-recommends"), "{text}");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    let stdout = xtask(
        &[
            "lint",
            "--fix",
            "--fix-unsafe",
            file.to_str().unwrap(),
            "-o",
            "-",
        ],
        &[],
    );
    assert!(stdout.success(), "{}", stdout.stderr);
    assert!(
        stdout.stdout.contains("--no-install-recommends"),
        "{}",
        stdout.stdout
    );
    assert!(stdout.stderr.contains("unsafe"), "{}", stdout.stderr);
    // -o - writes the result to standard output, not the file.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

fn a_dockerfile_that_does_not_parse_is_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    let text = "FROM a\nRUN <<EOF\necho open\n";
    std::fs::write(&file, text).unwrap();
    let run = xtask(&["lint", "--fix", file.to_str().unwrap()], &[]);
    assert!(!run.success());
    assert!(
        run.stderr.contains("Dockerfile:2:") && run.stderr.contains("unterminated heredoc"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

/// Every Dockerfile of the test corpus (lint, fix, cases, parse) and the repository's own.
fn all_dockerfiles() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in ["lint", "fix", "cases", "parse"] {
        let dir = root().join("tests/fixtures/dockerfiles").join(dir);
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.path().is_file() {
                files.push(e.path());
            }
        }
    }
    for dir in ["docker", "docker/examples", "docker/simulate"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_file() && name.starts_with("Dockerfile") {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
}

/// What the lint says `--fix` fixes is what `--fix` fixes: the safe fixes the findings carry,
/// applied as edits of the original text, give exactly the fixer's output; and each rule's
/// findings marked `safe` are gone from the fixed file (as many fewer as were marked).
fn findings_carry_the_edits_that_fix_applies() {
    use headroom_dockerfile::diagnostic::Fix;
    use headroom_dockerfile::fix::{self, Applicability, Edit, FixOptions, Safety};
    let config = headroom_pipeline::lint::LintConfig::load(None).unwrap();
    let files = all_dockerfiles();
    assert!(files.len() >= 40, "{} Dockerfiles", files.len());
    let (mut marked_safe, mut marked_unsafe, mut changed_files) = (0, 0, 0);
    for file in &files {
        let r = headroom_pipeline::lint::lint_file(file, None, &config).unwrap();
        if r.error.is_some() || !r.invalid.is_empty() {
            assert!(
                r.fixes.changes.is_empty(),
                "{}: refused, yet fixes",
                file.display()
            );
            continue;
        }
        let bytes = std::fs::read(file).unwrap();
        let src = headroom_dockerfile::decode_bytes(&bytes);
        let fixed = fix::fix(&src, &FixOptions::default()).unwrap();
        let mut edits: Vec<Edit> = r
            .fixes
            .changes
            .iter()
            .filter(|c| c.safety == Safety::Safe)
            .flat_map(|c| c.edits.iter().map(|&k| r.fixes.edits[k].clone()))
            .collect();
        edits.sort_by_key(|e| (e.start, e.end));
        edits.dedup();
        assert_eq!(
            fix::apply_edits(&src, &edits).as_deref(),
            Some(fixed.text.as_str()),
            "{}: the safe fixes' edits are not what --fix writes",
            file.display()
        );
        assert_eq!(edits, fixed.edits, "{}", file.display());
        if fixed.changed() {
            changed_files += 1;
        }
        for f in &r.findings {
            let rule = headroom_dockerfile::lint::rule(f.id).unwrap();
            match f.fix {
                Some(Fix {
                    applicability: Applicability::Safe,
                    change,
                }) => {
                    marked_safe += 1;
                    let c = &r.fixes.changes[change];
                    assert_eq!(Some(c.id), rule.fix, "{}: {f:?}", file.display());
                    assert_eq!(c.safety, Safety::Safe);
                }
                Some(Fix {
                    applicability: Applicability::Unsafe,
                    change,
                }) => {
                    marked_unsafe += 1;
                    assert_eq!(r.fixes.changes[change].safety, Safety::Unsafe);
                }
                None => {}
            }
        }
        // Re-lint the fixed text: each per-place rule loses its safe findings.
        let dir = tempfile::tempdir().unwrap();
        let after_path = dir.path().join("Dockerfile");
        std::fs::write(&after_path, headroom_dockerfile::encode_text(&fixed.text)).unwrap();
        let after = headroom_pipeline::lint::lint_file(&after_path, None, &config).unwrap();
        for id in ["DL3009", "DL3019", "DL3042", "DL3059", "HR001", "HR002"] {
            let count = |fs: &[headroom_dockerfile::lint::Finding], safe: bool| {
                fs.iter()
                    .filter(|f| {
                        f.id == id && (!safe || f.applicability() == Some(Applicability::Safe))
                    })
                    .count()
            };
            let (before, safe, left) = (
                count(&r.findings, false),
                count(&r.findings, true),
                count(&after.findings, false),
            );
            assert!(
                left + safe <= before,
                "{}: {id}: {before} before, {safe} marked safe, {left} left after --fix",
                file.display()
            );
            // Findings the fixer leaves are not marked fixable in the fixed file either.
            assert_eq!(
                count(&after.findings, true),
                0,
                "{}: {id} still fixable after --fix",
                file.display()
            );
        }
    }
    eprintln!(
        "{} files, {changed_files} fixed, {marked_safe} findings safe, {marked_unsafe} unsafe",
        files.len()
    );
    assert!(changed_files >= 10, "{changed_files} files fixed");
    assert!(marked_safe >= 20, "{marked_safe} findings marked safe");
    assert!(marked_unsafe >= 1, "{marked_unsafe} findings marked unsafe");
}
