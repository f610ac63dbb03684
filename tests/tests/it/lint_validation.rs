//! `cargo xtask lint` refuses what Docker refuses and accepts what it accepts: every
//! Dockerfile below is built by the local engine (BuildKit, no `# syntax=` line, a local
//! busybox base, nothing pulled) and linted; an invalid one must fail both, with the lint
//! giving BuildKit's message at a line and column, and its valid look-alike must pass both.
//! Bytes that are not UTF-8 are read as BuildKit reads them. A Dockerfile that cannot be
//! read is an I/O error (exit status 2), never a finding.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use headroom_tests::xtask_in;
use serde_json::Value;

/// What Docker and the lint must both do with a Dockerfile.
enum Expect {
    /// Refused: the lint's error at `line:column`, whose message the engine's error holds.
    Refused(usize, usize, &'static str),
    /// Refused, by an engine whose error cannot carry the message (BuildKit fails to send an
    /// error that is not UTF-8).
    RefusedSilently(usize, usize, &'static str),
    Accepted,
}
use Expect::{Accepted, Refused, RefusedSilently};

headroom_tests::tests! {
    the_lint_refuses_what_buildkit_refuses_without_an_engine;
    the_engine_and_the_lint_refuse_and_accept_the_same_dockerfiles needs Docker;
    every_refused_instruction_is_an_error_at_its_place;
    bytes_that_are_not_utf8_are_linted_and_fixed_as_written;
    a_dockerfile_that_cannot_be_read_is_an_io_error;
}

/// `{B}` stands for the base image.
fn cases() -> Vec<(&'static str, &'static [u8], Expect)> {
    vec![
        (
            "unknown-instruction",
            b"FROM {B}\nRUNN echo x\n",
            Refused(2, 1, "unknown instruction: RUNN (did you mean RUN?)"),
        ),
        ("known-instruction", b"FROM {B}\nRUN echo x\n", Accepted),
        (
            "unknown-instruction-far",
            b"FROM {B}\nFROBNICATE x\n",
            Refused(2, 1, "unknown instruction: FROBNICATE"),
        ),
        (
            "copy-one-argument",
            b"FROM {B}\nCOPY onlyone\n",
            Refused(
                2,
                1,
                "COPY requires at least two arguments, but only one was provided. Destination \
                 could not be determined",
            ),
        ),
        (
            "add-json-one-argument",
            b"FROM {B}\nADD [\"onlyone\"]\n",
            Refused(
                2,
                1,
                "ADD requires at least two arguments, but only one was provided. Destination \
                 could not be determined",
            ),
        ),
        (
            "copy-two-arguments",
            b"FROM {B}\nCOPY Dockerfile /x\n",
            Accepted,
        ),
        (
            "from-two-arguments",
            b"FROM {B} b\n",
            Refused(1, 1, "FROM requires either one or three arguments"),
        ),
        (
            "from-three-without-as",
            b"FROM {B} XX b\n",
            Refused(1, 1, "FROM requires either one or three arguments"),
        ),
        ("from-as", b"FROM {B} As Build.x-1_y\n", Accepted),
        (
            "from-bad-stage-name",
            b"FROM {B} AS 1x\n",
            Refused(1, 0, "invalid name for build stage: \"1x\""),
        ),
        (
            "run-unknown-flag",
            b"FROM {B}\nRUN --foo echo x\n",
            Refused(2, 5, "unknown flag: --foo"),
        ),
        (
            "run-misspelt-flag",
            b"FROM {B}\nRUN --mout=type=cache,target=/c echo x\n",
            Refused(2, 5, "unknown flag: --mout (did you mean mount?)"),
        ),
        (
            "run-known-flags",
            b"FROM {B}\nRUN --mount=type=cache,target=/c --network=none echo x\n",
            Accepted,
        ),
        (
            "run-end-of-flags",
            b"FROM {B}\nRUN -- echo --foo\n",
            Accepted,
        ),
        (
            "copy-unknown-flag",
            b"FROM {B}\nCOPY --bogus Dockerfile /x\n",
            Refused(2, 6, "unknown flag: --bogus"),
        ),
        (
            "copy-known-flags",
            b"FROM {B}\nCOPY --chown=1:1 --chmod=644 --link Dockerfile /x\n",
            Accepted,
        ),
        (
            "copy-duplicate-flag",
            b"FROM {B}\nCOPY --chown=1 --chown=2 Dockerfile /x\n",
            Refused(2, 16, "duplicate flag specified: --chown"),
        ),
        (
            "copy-bool-flag-value",
            b"FROM {B}\nCOPY --link=maybe Dockerfile /x\n",
            Refused(2, 6, "expecting boolean value for flag --link, not: maybe"),
        ),
        (
            "copy-string-flag-without-value",
            b"FROM {B}\nCOPY --chown Dockerfile /x\n",
            Refused(2, 6, "missing a value on flag: --chown"),
        ),
        (
            "from-unknown-flag",
            b"FROM --foo=1 {B}\n",
            Refused(1, 6, "unknown flag: --foo"),
        ),
        (
            "from-platform",
            b"FROM --platform=linux/amd64 {B}\n",
            Accepted,
        ),
        (
            "onbuild-from",
            b"FROM {B}\nONBUILD FROM x\n",
            Refused(2, 9, "FROM isn't allowed as an ONBUILD trigger"),
        ),
        (
            "onbuild-maintainer",
            b"FROM {B}\nONBUILD MAINTAINER x\n",
            Refused(2, 9, "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ),
        (
            "onbuild-onbuild",
            b"FROM {B}\nONBUILD ONBUILD RUN x\n",
            Refused(2, 9, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ),
        // A trigger is parsed when an image is built FROM this one: not refused here.
        (
            "onbuild-run",
            b"FROM {B}\nONBUILD RUN echo x\nONBUILD RUNN x\n",
            Accepted,
        ),
        (
            "shell-not-json",
            b"FROM {B}\nSHELL echo\n",
            Refused(2, 1, "SHELL requires the arguments to be in JSON form"),
        ),
        (
            "shell-empty",
            b"FROM {B}\nSHELL []\n",
            Refused(2, 1, "SHELL requires at least one argument"),
        ),
        (
            "shell-json",
            b"FROM {B}\nSHELL [\"/bin/sh\", \"-c\"]\n",
            Accepted,
        ),
        (
            "user-empty",
            b"FROM {B}\nUSER\n",
            Refused(2, 1, "USER requires exactly one argument"),
        ),
        ("user-two-words", b"FROM {B}\nUSER a b\n", Accepted),
        (
            "workdir-empty",
            b"FROM {B}\nWORKDIR\n",
            Refused(2, 1, "WORKDIR requires exactly one argument"),
        ),
        (
            "expose-empty",
            b"FROM {B}\nEXPOSE\n",
            Refused(2, 1, "EXPOSE requires at least one argument"),
        ),
        (
            "env-blank-name",
            b"FROM {B}\nENV =x\n",
            Refused(2, 5, "ENV names can not be blank"),
        ),
        (
            "arg-blank-name",
            b"FROM {B}\nARG =x\n",
            Refused(2, 5, "ARG names can not be blank"),
        ),
        ("arg-flags-ignored", b"FROM {B}\nARG --foo x\n", Accepted),
        (
            "volume-empty-string",
            b"FROM {B}\nVOLUME [\"\"]\n",
            Refused(2, 9, "VOLUME specified can not be an empty string"),
        ),
        (
            "healthcheck-none-arguments",
            b"FROM {B}\nHEALTHCHECK NONE x\n",
            Refused(2, 13, "HEALTHCHECK NONE takes no arguments"),
        ),
        (
            "healthcheck-unknown-type",
            b"FROM {B}\nHEALTHCHECK FOO x\n",
            Refused(2, 13, "Unknown type \"FOO\" in HEALTHCHECK (try CMD)"),
        ),
        (
            "healthcheck-bad-duration",
            b"FROM {B}\nHEALTHCHECK --interval=1 CMD echo x\n",
            Refused(2, 13, "time: missing unit in duration \"1\""),
        ),
        (
            "healthcheck-short-duration",
            b"FROM {B}\nHEALTHCHECK --interval=1ns CMD echo x\n",
            Refused(2, 13, "Interval \"interval\" cannot be less than 1ms"),
        ),
        (
            "healthcheck-negative-retries",
            b"FROM {B}\nHEALTHCHECK --retries=-1 CMD echo x\n",
            Refused(2, 13, "--retries cannot be negative (-1)"),
        ),
        (
            "healthcheck",
            b"FROM {B}\nHEALTHCHECK --interval=1m30s --timeout=3s --retries=3 cmd echo x\n",
            Accepted,
        ),
        (
            "run-network-mode",
            b"FROM {B}\nRUN --network=bogus echo x\n",
            Refused(2, 5, "invalid network mode \"bogus\""),
        ),
        (
            "run-mount-type",
            b"FROM {B}\nRUN --mount=type=bogus echo x\n",
            Refused(2, 5, "unsupported mount type \"bogus\""),
        ),
        (
            "run-mount-key",
            b"FROM {B}\nRUN --mount=type=cache,target=/c,foo=bar echo x\n",
            Refused(2, 5, "unexpected key 'foo' in 'foo=bar'"),
        ),
        (
            "run-mount-variable",
            b"FROM {B}\nARG T=cache\nRUN --mount=type=$T,target=/c echo x\n",
            Accepted,
        ),
        (
            "copy-heredoc-destination",
            b"FROM {B}\nCOPY Dockerfile <<EOF\nx\nEOF\n",
            Refused(2, 17, "COPY cannot accept a heredoc as a destination"),
        ),
        (
            "copy-heredoc-source",
            b"FROM {B}\nCOPY <<EOF /x\nx\nEOF\n",
            Accepted,
        ),
        (
            "instruction-before-from",
            b"RUN echo x\nFROM {B}\n",
            Refused(1, 1, "no build stage in current context"),
        ),
        ("arg-before-from", b"ARG V=1\nFROM {B}\n", Accepted),
        // Bytes that are not UTF-8: BuildKit reads bytes.
        (
            "latin1-comment",
            b"FROM {B}\n# caf\xe9\nRUN echo x\n",
            Accepted,
        ),
        ("latin1-run", b"FROM {B}\nRUN echo caf\xe9\n", Accepted),
        ("latin1-label", b"FROM {B}\nLABEL a=caf\xe9\n", Accepted),
        (
            "latin1-stage-name",
            b"FROM {B} AS caf\xe9\n",
            Refused(1, 0, "invalid name for build stage: \"caf\\xe9\""),
        ),
        (
            "latin1-keyword",
            b"FROM {B}\nRUN\xe9 echo x\n",
            RefusedSilently(2, 1, "unknown instruction: RUN\\xe9"),
        ),
    ]
}

fn lint_json(dir: &Path, file: &str) -> Value {
    let run = xtask_in(
        Some(dir),
        &["lint", "--format", "json", "--fail-on", "none", file],
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    run.json()["files"][0].clone()
}

/// The BuildKit error, or None when the build succeeded.
fn engine(dir: &Path, file: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["build", "--no-cache", "--quiet", "--file"])
        .arg(dir.join(file))
        .arg(dir)
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap();
    if out.status.success() {
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let _ = Command::new("docker").args(["rmi", "-f", &id]).output();
        return None;
    }
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// BuildKit before Dockerfile frontend 1.11 names flags without their `--` in errors.
fn engine_says(engine: &str, message: &str) -> bool {
    let bare = message.replace(": --", ": ").replace("flag --", "flag ");
    // Go prints a byte that is not UTF-8 in a %q string as \xNN, as the lint does.
    engine.contains(message) || engine.contains(&bare)
}

fn write_case(dir: &Path, name: &str, text: &[u8], base: &str) -> String {
    let file = format!("{name}.Dockerfile");
    let mut bytes = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.windows(3).position(|w| w == b"{B}") {
        bytes.extend_from_slice(&rest[..i]);
        bytes.extend_from_slice(base.as_bytes());
        rest = &rest[i + 3..];
    }
    bytes.extend_from_slice(rest);
    std::fs::write(dir.join(&file), bytes).unwrap();
    file
}

/// The lint's verdict on one case: the refusals it reports.
fn lint_refusals(dir: &Path, file: &str) -> Vec<(usize, usize, String)> {
    let f = lint_json(dir, file);
    assert!(f["error"].is_null(), "{file}: {f:#}");
    f["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap() as usize,
                e["column"].as_u64().unwrap() as usize,
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check_lint(name: &str, refusals: &[(usize, usize, String)], expect: &Expect) {
    match expect {
        Refused(line, column, message) | RefusedSilently(line, column, message) => {
            let [(l, c, m)] = refusals else {
                panic!("{name}: want one refusal, got {refusals:?}");
            };
            assert_eq!(*l, *line, "{name}: {refusals:?}");
            if *column > 0 {
                assert_eq!(*c, *column, "{name}: {refusals:?}");
            }
            assert!(m.starts_with(message), "{name}: {m:?} is not {message:?}");
        }
        Accepted => assert!(refusals.is_empty(), "{name}: {refusals:?}"),
    }
}

fn the_lint_refuses_what_buildkit_refuses_without_an_engine() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, expect) in cases() {
        let file = write_case(dir.path(), name, text, "busybox");
        check_lint(name, &lint_refusals(dir.path(), &file), &expect);
    }
}

fn the_engine_and_the_lint_refuse_and_accept_the_same_dockerfiles() {
    let base = headroom_tests::registry::base_image();
    let dir = tempfile::tempdir().unwrap();
    // What the valid COPY cases copy.
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let cases = cases();
    let files: Vec<String> = cases
        .iter()
        .map(|(name, text, _)| write_case(dir.path(), name, text, base))
        .collect();
    // A few builds at a time: each is short, and the engine is shared.
    let verdicts: Vec<Option<String>> = std::thread::scope(|s| {
        let mut out = Vec::new();
        for chunk in files.chunks(4) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|f| s.spawn(|| engine(dir.path(), f)))
                .collect();
            out.extend(handles.into_iter().map(|h| h.join().unwrap()));
        }
        out
    });
    for (((name, _, expect), file), verdict) in cases.iter().zip(&files).zip(verdicts) {
        let refusals = lint_refusals(dir.path(), file);
        check_lint(name, &refusals, expect);
        match (expect, verdict) {
            (Accepted, None) => {}
            (Accepted, Some(e)) => panic!("{name}: the engine refused it:\n{e}"),
            (Refused(..) | RefusedSilently(..), None) => {
                panic!("{name}: the engine built it, the lint refuses it: {refusals:?}")
            }
            (Refused(_, _, message), Some(e)) => {
                assert!(
                    engine_says(&e, message),
                    "{name}: the engine's error does not say {message:?}:\n{e}"
                );
                // The lint's whole message (a suggestion included) is the engine's too.
                assert!(
                    engine_says(&e, &refusals[0].2),
                    "{name}: the engine's error does not say {:?}:\n{e}",
                    refusals[0].2
                );
            }
            (RefusedSilently(..), Some(_)) => {}
        }
    }
}

fn every_refused_instruction_is_an_error_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM a\nRUNN x\nCOPY onlyone\nFROM a b\nRUN --foo x\nONBUILD FROM x\nSHELL echo\n",
    )
    .unwrap();
    let run = xtask_in(Some(dir.path()), &["lint", "Dockerfile"], &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    for line in [
        "Dockerfile:2:1: unknown instruction: RUNN (did you mean RUN?) (error: ",
        "Dockerfile:3:1: COPY requires at least two arguments",
        "Dockerfile:4:1: FROM requires either one or three arguments (error: ",
        "Dockerfile:5:5: unknown flag: --foo (error: ",
        "Dockerfile:6:9: FROM isn't allowed as an ONBUILD trigger (error: ",
        "Dockerfile:7:1: SHELL requires the arguments to be in JSON form (error: ",
    ] {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(line)),
            "no {line:?} in:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("6 error(s)"), "{}", run.stdout);
    // --fail-on none reports them and passes; SARIF and GitHub carry them too.
    let none = xtask_in(
        Some(dir.path()),
        &["lint", "--fail-on", "none", "Dockerfile"],
        &[],
    );
    assert_eq!(none.code, Some(0), "{none:?}");
    let sarif = xtask_in(
        Some(dir.path()),
        &["lint", "--format", "sarif", "Dockerfile"],
        &[],
    );
    let results = sarif.json()["runs"][0]["results"].clone();
    let invalid: Vec<&Value> = results
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == "invalid")
        .collect();
    assert_eq!(invalid.len(), 6, "{results:#}");
    assert_eq!(
        invalid[3]["locations"][0]["physicalLocation"]["region"]["startColumn"],
        5
    );
    let gh = xtask_in(
        Some(dir.path()),
        &["lint", "--format", "github", "Dockerfile"],
        &[],
    );
    assert!(
        gh.stdout
            .contains("::error file=Dockerfile,line=5,col=5,title=invalid::unknown flag: --foo"),
        "{}",
        gh.stdout
    );
    // --fix does not rewrite a file Docker refuses.
    let before = std::fs::read(dir.path().join("Dockerfile")).unwrap();
    let fix = xtask_in(Some(dir.path()), &["lint", "--fix", "Dockerfile"], &[]);
    assert_eq!(fix.code, Some(1), "{fix:?}");
    assert!(
        fix.stderr.contains("Dockerfile:5:5: unknown flag: --foo"),
        "{}",
        fix.stderr
    );
    assert_eq!(
        std::fs::read(dir.path().join("Dockerfile")).unwrap(),
        before
    );
}

fn bytes_that_are_not_utf8_are_linted_and_fixed_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let text: &[u8] = b"FROM a\n# caf\xe9\nRUN echo caf\xe9\nRUN echo b\xff\n";
    std::fs::write(dir.path().join("Dockerfile"), text).unwrap();
    let run = xtask_in(
        Some(dir.path()),
        &["lint", "--fail-on", "warning", "Dockerfile"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.contains("Dockerfile:4: DL3059 "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("0 error(s)"), "{}", run.stdout);

    let fix = xtask_in(
        Some(dir.path()),
        &["lint", "--fix", "Dockerfile", "-o", "fixed"],
        &[],
    );
    assert_eq!(fix.code, Some(0), "{fix:?}");
    let fixed = std::fs::read(dir.path().join("fixed")).unwrap();
    assert_eq!(
        fixed,
        b"FROM a\n# caf\xe9\nRUN echo caf\xe9 \\\n    && echo b\xff\n".to_vec(),
        "{}",
        String::from_utf8_lossy(&fixed)
    );
    // The bytes reach the shell unchanged: the merged script prints what the two did.
    let dash = |script: &[u8]| {
        let out = Command::new("dash")
            .arg("-c")
            .arg(std::ffi::OsStr::from_bytes(script))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        out.stdout
    };
    let mut separate = dash(b"echo caf\xe9");
    separate.extend(dash(b"echo b\xff"));
    assert_eq!(dash(b"echo caf\xe9     && echo b\xff"), separate);
    assert_eq!(separate, b"caf\xe9\nb\xff\n".to_vec());
}

fn a_dockerfile_that_cannot_be_read_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("ok.Dockerfile"), "FROM a\nRUN echo a\nRUN echo b\n").unwrap();
    std::fs::create_dir(d.join("adir")).unwrap();
    let mut unreadable = vec!["missing.Dockerfile", "adir"];
    // Unreadable: mode 000 for anyone but root; /proc/self/mem fails to read (EIO) for root
    // too.
    std::fs::write(d.join("secret.Dockerfile"), "FROM a\n").unwrap();
    std::fs::set_permissions(
        d.join("secret.Dockerfile"),
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    if std::fs::read(d.join("secret.Dockerfile")).is_err() {
        unreadable.push("secret.Dockerfile");
    }
    unreadable.push("/proc/self/mem");
    for path in &unreadable {
        for args in [
            vec!["lint", path],
            vec!["lint", "--fail-on", "none", path],
            vec!["lint", "--format", "json", "--fail-on", "none", path],
            vec!["lint", "--fix", path],
            vec!["lint", "--fix", path, "-o", "-"],
            vec!["lint", "--dump", path],
        ] {
            let run = xtask_in(Some(d), &args, &[]);
            assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
            assert!(
                run.stderr.contains(&format!("{path}: cannot read it")),
                "{args:?}: {}",
                run.stderr
            );
            assert!(!run.stdout.contains(":0:0"), "{args:?}: {}", run.stdout);
            assert!(!run.stdout.contains(path), "{args:?}: {}", run.stdout);
        }
    }
    // The readable file is still linted; the exit status says a file could not be read.
    let run = xtask_in(
        Some(d),
        &[
            "lint",
            "--fail-on",
            "none",
            "ok.Dockerfile",
            "missing.Dockerfile",
        ],
        &[],
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stdout.contains("ok.Dockerfile:3: DL3059 "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("in 1 file(s)"), "{}", run.stdout);
    let run = xtask_in(
        Some(d),
        &["lint", "--fail-on", "none", "ok.Dockerfile"],
        &[],
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    // A bad configuration is a usage error.
    let run = xtask_in(
        Some(d),
        &["lint", "--config", "missing.toml", "ok.Dockerfile"],
        &[],
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("missing.toml"), "{}", run.stderr);
}
