//! The command line's conventions, in the `headroom` binary and in `cargo xtask` alike: a bad
//! flag or value is a usage error (exit 2) in every command, `--help` shows examples,
//! completions for bash, zsh and fish, `lint` fails at hadolint's threshold, and an error
//! never prints raw bytes.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::Path;

use headroom_tests::registry::base_image;
use headroom_tests::{Run, headroom_bin, headroom_in, repo_root, sh, without_github_env, xtask};

headroom_tests::tests! {
    a_bad_flag_exits_2_in_every_command;
    a_bad_value_exits_2_in_every_command;
    every_command_shows_examples_in_its_help;
    completions_for_bash_zsh_and_fish;
    lint_fails_at_hadolints_threshold_by_default;
    a_garbage_archive_is_a_usage_error_shown_without_raw_bytes;
    quiet_and_verbose_are_global_and_exclusive;
    the_readme_quick_start_builds_a_fresh_project needs Docker;
}

fn headroom(args: &[&str]) -> Run {
    headroom_in(None, args, &[])
}

const PRODUCT: [&str; 5] = ["free", "image", "inspect", "lint", "completions"];
const LAB: [&str; 3] = ["base-image", "simulate", "bench"];

fn assert_usage_error(run: &Run, what: &str) {
    assert_eq!(run.code, Some(2), "{what}: {run:?}");
    assert!(!run.stderr.contains("panicked"), "{what}: {run:?}");
}

fn a_bad_flag_exits_2_in_every_command() {
    assert_usage_error(&headroom(&["--no-such-flag"]), "headroom --no-such-flag");
    assert_usage_error(&headroom(&["no-such-command"]), "headroom no-such-command");
    assert_usage_error(&headroom(&[]), "headroom with no command");
    for command in PRODUCT {
        let run = headroom(&[command, "--no-such-flag"]);
        assert_usage_error(&run, &format!("headroom {command}"));
        assert!(run.stderr.contains("--no-such-flag"), "{run:?}");
        let run = xtask(&[command, "--no-such-flag"], &[]);
        assert_usage_error(&run, &format!("cargo xtask {command}"));
    }
    for command in LAB {
        assert_usage_error(
            &xtask(&[command, "--no-such-flag"], &[]),
            &format!("cargo xtask {command}"),
        );
    }
    // Help and version are not errors.
    for args in [&["--help"][..], &["--version"], &["image", "--help"]] {
        assert_eq!(headroom(args).code, Some(0), "{args:?}");
    }
}

fn a_bad_value_exits_2_in_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["free", "--need", "lots"], "--need"),
        (&["free", "--root", missing, "--dry-run"], "--root"),
        // Settings are resolved before anything runs: no engine is asked.
        (
            &["image", "--image", "registry.test/app", "--need", "lots"],
            "--need",
        ),
        (&["image", "--image", "Not/Lower:case"], "--image"),
        (&["image", "--config", missing], "--config"),
        (&["inspect", missing], "missing"),
        (&["lint", missing], "missing"),
        (&["lint", "--fail-on", "sometimes", missing], "--fail-on"),
        (&["completions", "tcsh"], "tcsh"),
    ];
    for (args, named) in cases {
        for run in [headroom(args), xtask(args, &[])] {
            assert_usage_error(&run, &args.join(" "));
            assert!(
                run.stderr.contains(named),
                "{args:?}: the error does not name {named}: {run:?}"
            );
        }
    }
}

fn every_command_shows_examples_in_its_help() {
    let top = headroom(&["--help"]);
    assert!(top.stdout.contains("Examples:"), "{top:?}");
    for command in PRODUCT {
        let run = headroom(&[command, "--help"]);
        assert_eq!(run.code, Some(0), "{run:?}");
        let examples = run
            .stdout
            .split_once("Examples:")
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("headroom {command} --help has no examples:\n{run:?}"));
        assert!(
            examples.contains(&format!("headroom {command}")),
            "{command}: {examples}"
        );
    }
}

fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let run = headroom(&["completions", shell]);
        assert_eq!(run.code, Some(0), "{run:?}");
        for word in ["image", "lint", "need", "fail-on"] {
            assert!(run.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    // The bash script is bash: it parses, and completing `headroom im` offers `image`.
    let script = headroom(&["completions", "bash"]).stdout;
    let probe = format!(
        "{script}\nCOMP_WORDS=(headroom im); COMP_CWORD=1; COMP_LINE='headroom im'; \
         COMP_POINT=11; _headroom headroom im headroom; printf '%s\\n' \"${{COMPREPLY[@]}}\""
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &probe])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let offered = String::from_utf8_lossy(&out.stdout);
    assert!(offered.lines().any(|l| l == "image"), "{offered}");
}

fn lint_fails_at_hadolints_threshold_by_default() {
    let dir = tempfile::tempdir().unwrap();
    // A .dockerignore beside it; one finding below warning: DL3059 (two RUNs in a row),
    // which hadolint rates info.
    std::fs::write(dir.path().join(".dockerignore"), ".git\n").unwrap();
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "FROM debian:bookworm-slim\nRUN echo one > /one\nRUN echo two > /two\n",
    )
    .unwrap();
    let file = dockerfile.to_str().unwrap();
    let run = headroom(&["lint", file, "--format", "json"]);
    let findings = run.json();
    let severities: Vec<&str> = findings
        .pointer("/files/0/findings")
        .and_then(|f| f.as_array())
        .map(|a| a.iter().filter_map(|x| x["severity"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !severities.is_empty() && severities.iter().all(|s| *s == "info"),
        "the fixture should have info findings only: {run:?}"
    );
    assert_eq!(
        run.code,
        Some(1),
        "info findings fail, as in hadolint: {run:?}"
    );
    let run = headroom(&["lint", file, "--fail-on", "warning"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    // A clean file passes.
    std::fs::write(&dockerfile, "FROM debian:bookworm-slim\nCMD [\"true\"]\n").unwrap();
    let run = headroom(&["lint", file]);
    assert_eq!(run.code, Some(0), "{run:?}");
}

fn a_garbage_archive_is_a_usage_error_shown_without_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("image.tar");
    let mut garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    garbage[..6].copy_from_slice(b"\x1b[2J\x07\x00");
    std::fs::write(&archive, &garbage).unwrap();
    let run = headroom(&["inspect", archive.to_str().unwrap()]);
    assert_usage_error(&run, "inspect of a garbage archive");
    let controls: Vec<char> = run
        .stderr
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        controls.is_empty(),
        "raw bytes printed: {controls:?}: {run:?}"
    );
    assert!(run.stderr.contains("image.tar"), "{run:?}");
}

fn quiet_and_verbose_are_global_and_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let dockerfile = dir.path().join("Dockerfile");
    std::fs::write(&dockerfile, "FROM debian:bookworm-slim\nCMD [\"true\"]\n").unwrap();
    let file = dockerfile.to_str().unwrap();
    for args in [
        &["-q", "lint", file][..],
        &["lint", "-q", file],
        &["lint", file, "-v"],
    ] {
        assert_eq!(headroom(args).code, Some(0), "{args:?}");
    }
    assert_usage_error(&headroom(&["lint", "-q", "-v", file]), "-q with -v");
    assert!(Path::new(file).exists());
}

/// The README's quick start, followed literally (its install line aside: the binary under test
/// is on PATH instead, and the base image is made here, as nothing can be pulled): in a fresh
/// directory, it builds that project's Dockerfile. Then the same project named by `--context`
/// from inside headroom's own checkout: headroom's docker/image.toml is not read.
fn the_readme_quick_start_builds_a_fresh_project() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = readme
        .split("\n## Quick start\n")
        .nth(1)
        .expect("README.md has a Quick start section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the quick start has a sh block");
    assert!(block.contains("cargo install"), "{block}");
    let script: String = block
        .lines()
        .filter(|l| !l.starts_with("cargo install"))
        .map(|l| l.replace("debian:bookworm-slim", base_image()) + "\n")
        .collect();
    assert!(script.contains("headroom image"), "{script}");
    let image = script
        .split("--image ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the quick start names an image")
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let bin_dir = headroom_bin().parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = std::process::Command::new("bash");
    without_github_env(&mut cmd);
    let out = cmd
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", &path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the quick start failed:\n{script}\n{stderr}"
    );
    assert!(
        !stderr.contains("nvidia"),
        "headroom's own image was built:\n{stderr}"
    );
    // The closing table.
    for word in ["stage", "result", "build", "passed", "total"] {
        assert!(stderr.contains(word), "no closing table:\n{stderr}");
    }
    let hello = |image: &str| {
        sh(
            "docker",
            &[
                "run",
                "--rm",
                "--entrypoint",
                "sh",
                image,
                "-c",
                "read l < /hello.txt; echo $l",
            ],
        )
    };
    assert_eq!(hello(&format!("{image}:latest")).trim(), "hello");

    // From inside headroom's checkout, the project named by --context is what gets built.
    let project = dir.path().join("hello");
    std::fs::write(
        project.join("Dockerfile"),
        format!("FROM {}\nRUN echo again > /hello.txt\n", base_image()),
    )
    .unwrap();
    let report = dir.path().join("report.json");
    let run = headroom_in(
        Some(repo_root()),
        &[
            "image",
            "--context",
            project.to_str().unwrap(),
            "--image",
            &image,
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(!run.stderr.contains("nvidia"), "{run:?}");
    // Tagged as the git repository it ran in says (the context is in none).
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let references: Vec<String> = report["image"]["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert!(!references.is_empty(), "{report:#}");
    assert_eq!(hello(&references[0]).trim(), "again");
    let mut rmi = vec!["rmi".to_string(), "-f".into(), format!("{image}:latest")];
    rmi.extend(references);
    let rmi: Vec<&str> = rmi.iter().map(String::as_str).collect();
    let _ = sh("docker", &rmi);
}
