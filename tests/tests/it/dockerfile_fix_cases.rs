//! `lint --fix` must keep what a build does, on the cases where a naive merge does not: each
//! Dockerfile in tests/fixtures/dockerfiles/cases is built as written and as fixed (classic
//! builder, the local Debian base) and the outcomes must be the same: both fail, or both
//! succeed with the same files under /out (names, sizes, modes, contents). Files with an
//! ONBUILD trigger also get a child build `FROM` each image, which runs the trigger.
//!
//! The cases: `set -e` in a script joined before another (POSIX ignores -e in a non-last
//! member of `&&`), a script ending in `;`, apt's lists removed while a later `xargs`,
//! `bash -c`, copied script or ONBUILD trigger installs, a literal `\` ending a script under
//! `# escape=\``, and a Windows base named through an ARG (or a base nobody can know).

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};
use std::process::Command;

use headroom_dockerfile::fix::{FixOptions, fix};
use headroom_tests::debian_base;

headroom_tests::tests! {
    set_e_in_a_script_followed_by_another_still_stops_the_build needs Docker;
    set_e_in_the_last_joined_script_still_stops_the_build needs Docker;
    set_e_scripts_that_succeed_leave_the_same_files needs Docker;
    a_script_ending_in_a_separator_is_joined_into_valid_shell needs Docker;
    apt_lists_stay_for_a_later_xargs_install needs Docker;
    apt_lists_stay_for_a_later_bash_c_install needs Docker;
    apt_lists_stay_for_a_later_script needs Docker;
    apt_lists_stay_for_an_onbuild_trigger needs Docker;
    apt_lists_stay_for_wrappers_consumers_entrypoints_and_readers_by_name needs Docker;
    a_literal_backslash_ending_a_script_under_the_backtick_escape_is_kept needs Docker;
    a_windows_base_named_through_an_arg_gets_no_posix_rewrite needs Docker;
    a_base_of_unknown_os_gets_no_posix_rewrite needs Docker;
}

fn cases() -> PathBuf {
    headroom_tests::repo_root().join("tests/fixtures/dockerfiles/cases")
}

/// Images made by one case, removed when it ends, however it ends.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = Command::new("docker")
                .args(["image", "rm", "--force", image])
                .output();
        }
    }
}

/// What a build did: failed (with the engine's last lines), or the files it left in /out.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Failed,
    Built(String),
}

fn build(dockerfile: &Path, image: &str, base: &str) -> (Outcome, String) {
    let text = std::fs::read_to_string(dockerfile).unwrap();
    // The classic builder has no `RUN --mount`: such a file is built with the engine's
    // BuildKit (no `# syntax=` line, so nothing is pulled).
    let buildkit = if text.contains("--mount=") { "1" } else { "0" };
    let out = Command::new("docker")
        .args(["build", "--quiet", "--force-rm", "--tag", image])
        .arg("--file")
        .arg(dockerfile)
        .args(["--build-arg", &format!("BASE={base}")])
        .arg(cases().join("context"))
        .env("DOCKER_BUILDKIT", buildkit)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        return (Outcome::Failed, log);
    }
    let mut built = files(image);
    if text.contains("\nENTRYPOINT") {
        // What the image does when it runs is part of what it is.
        let run = Command::new("docker")
            .args(["run", "--rm", "--network", "none", image])
            .output()
            .unwrap();
        built.push_str(&format!("entrypoint: {}\n", run.status));
    }
    (Outcome::Built(built), log)
}

/// Every file under /out of `image`: path, type, size, mode and a digest of its contents.
fn files(image: &str) -> String {
    let out = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "/bin/sh",
        ])
        .arg(image)
        .args([
            "-c",
            "[ -d /out ] || exit 0; cd /out && find . -printf '%p %y %s %m\\n' | LC_ALL=C sort \
             && find . -type f -exec md5sum {} + | LC_ALL=C sort",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "listing /out of {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build `name` as written and as fixed (and a child of each when it has ONBUILD); the
/// outcomes must match. The original and the fixed text, and the outcome.
fn check(name: &str) -> (String, String, Outcome) {
    let src = std::fs::read_to_string(cases().join(format!("{name}.Dockerfile"))).unwrap();
    let fixed = fix(&src, &FixOptions::default()).unwrap();
    let _builds = crate::BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let base = debian_base();
    let tmp = tempfile::tempdir().unwrap();
    let written = tmp.path().join("original.Dockerfile");
    let rewritten = tmp.path().join("fixed.Dockerfile");
    std::fs::write(&written, &src).unwrap();
    std::fs::write(&rewritten, &fixed.text).unwrap();
    let pid = std::process::id();
    let tag = |which: &str| format!("headroom-test/case-{name}-{which}-{pid}:latest");
    let images = Images(vec![
        tag("original"),
        tag("fixed"),
        tag("original-child"),
        tag("fixed-child"),
    ]);
    let (mut before, log_before) = build(&written, &images.0[0], base);
    let (mut after, log_after) = build(&rewritten, &images.0[1], base);
    if src.contains("ONBUILD") {
        for (k, outcome) in [(0, &mut before), (1, &mut after)] {
            if *outcome == Outcome::Failed {
                continue;
            }
            let child = tmp.path().join(format!("child{k}.Dockerfile"));
            let text = format!(
                "FROM {}\nRUN mkdir -p /out && tree --version > /out/tree\n",
                images.0[k]
            );
            std::fs::write(&child, text).unwrap();
            *outcome = build(&child, &images.0[k + 2], base).0;
        }
    }
    assert_eq!(
        before, after,
        "{name}: the fixed Dockerfile builds differently\n--- fixed:\n{}\n--- original build:\n{log_before}\n--- fixed build:\n{log_after}",
        fixed.text
    );
    (src, fixed.text, before)
}

/// The file names of a listing ([`files`]), in order.
fn names(outcome: &Outcome) -> Option<Vec<String>> {
    match outcome {
        Outcome::Failed => None,
        Outcome::Built(listing) => Some(
            listing
                .lines()
                .filter(|l| l.ends_with(|c: char| c.is_ascii_digit()) && l.starts_with("./"))
                .filter_map(|l| l.rsplitn(4, ' ').last())
                .map(|p| p.trim_start_matches("./").to_string())
                .collect(),
        ),
    }
}

/// [`check`] for a case that builds: both builds leave these files in /out.
fn check_files(name: &str, expected: &[&str]) -> (String, String) {
    let (src, fixed, outcome) = check(name);
    assert_eq!(
        names(&outcome),
        Some(expected.iter().map(|s| s.to_string()).collect()),
        "{name}: as written, the build did not do what the case is about: {outcome:?}"
    );
    (src, fixed)
}

/// [`check`] for a case whose build fails as written.
fn check_fails(name: &str) -> (String, String) {
    let (src, fixed, outcome) = check(name);
    assert_eq!(outcome, Outcome::Failed, "{name}: as written it must fail");
    (src, fixed)
}

fn runs(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("RUN ")).count()
}

fn set_e_in_a_script_followed_by_another_still_stops_the_build() {
    let (_, fixed) = check_fails("set-e-merged");
    // The `set -e` script ends a joined run: `mkdir` may join it, `echo next` may not.
    assert!(fixed.contains("\nRUN echo next"), "{fixed}");
}

fn set_e_in_the_last_joined_script_still_stops_the_build() {
    let (src, fixed) = check_fails("set-e-last");
    assert!(runs(&fixed) < runs(&src), "{fixed}");
}

fn set_e_scripts_that_succeed_leave_the_same_files() {
    check_files("set-e-succeeds", &["a", "b", "c", "d", "e"]);
}

fn a_script_ending_in_a_separator_is_joined_into_valid_shell() {
    let (src, fixed) = check_files("trailing-separator", &["a", "b", "c"]);
    assert!(runs(&fixed) < runs(&src), "{fixed}");
}

fn apt_lists_stay_for_a_later_xargs_install() {
    check_files("apt-lists-xargs", &[]);
}

fn apt_lists_stay_for_a_later_bash_c_install() {
    check_files("apt-lists-bash-c", &[]);
}

fn apt_lists_stay_for_a_later_script() {
    check_files("apt-lists-script", &[]);
}

fn apt_lists_stay_for_an_onbuild_trigger() {
    check_files("apt-lists-onbuild", &["tree"]);
}

/// An install behind a wrapper the fixer does not know (`nice -n 5`), a stage that copies
/// the lists (`COPY --from`) or mounts them (`RUN --mount=from=…`), an ENTRYPOINT that reads
/// them when the image runs, a later `ls` of them: as fixed, each builds (and runs) as
/// written, and the lists stay where the fix would have broken it.
fn apt_lists_stay_for_wrappers_consumers_entrypoints_and_readers_by_name() {
    for (name, files) in [
        ("apt-lists-wrapper", &[][..]),
        ("apt-lists-copy-from", &["tree"][..]),
        ("apt-lists-mount-from", &["tree"][..]),
        ("apt-lists-entrypoint", &[][..]),
        ("apt-lists-read-by-name", &["count"][..]),
    ] {
        let (_, fixed) = check_files(name, files);
        let df = headroom_dockerfile::parse(&fixed).unwrap();
        let first_install = df
            .instructions
            .iter()
            .find(|i| i.original.contains("--no-install-recommends hello"))
            .unwrap();
        assert!(
            !first_install.original.contains("/var/lib/apt/lists"),
            "{name}: the lists go in the RUN that fetched them:\n{fixed}"
        );
    }
}

fn a_literal_backslash_ending_a_script_under_the_backtick_escape_is_kept() {
    check_files("escape-trailing-backslash", &["a\\", "b", "c", "d"]);
}

fn a_windows_base_named_through_an_arg_gets_no_posix_rewrite() {
    let (src, fixed) = check_files("windows-arg", &["here"]);
    assert_eq!(src, fixed, "nothing may be rewritten for cmd");
}

fn a_base_of_unknown_os_gets_no_posix_rewrite() {
    let (src, fixed) = check_files("unknown-base", &["here"]);
    assert_eq!(src, fixed, "nothing may be rewritten for an unknown shell");
}
