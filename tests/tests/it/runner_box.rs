//! The pipeline as a GitHub-hosted runner runs it: the runner box (`runner`, uid 1001, group
//! docker, passwordless sudo or not, the Actions environment, a 2026 disk layout scaled down,
//! its preinstalled trees root-owned) and a workflow read with a YAML parser and run step by
//! step as that user (`headroom_lab::workflow`).
//!
//! The workflow these tests run is the one README's GitHub section shows ([`FREE_WORKFLOW`]):
//! `cargo xtask free` as the job's user, which reaches root through `sudo -n` for the
//! root-owned items only. Each box is at most ~600 MiB of loop files, nothing of Docker's on
//! it, and is torn down (user, sudoers entry, mounts) even when a test fails.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};

use headroom_lab::sandbox::runner_box::{BoxSpec, RunnerBox};
use headroom_lab::workflow::Workflow;
use headroom_lab::workflow::run::{JobRun, JobSpec, Outcome, run_job};
use serde_json::Value;

headroom_tests::tests! {
    the_shipped_workflow_is_one_the_box_runs;
    root_owned_items_are_freed_through_sudo_on_private_72 needs Root, Program("sudo"), Program("runuser");
    root_owned_items_are_freed_through_sudo_on_dual needs Root, Program("sudo"), Program("runuser");
    public_145_with_room_deletes_nothing needs Root, Program("sudo"), Program("runuser");
    arm_with_room_deletes_nothing needs Root, Program("sudo"), Program("runuser");
    without_sudo_nothing_is_deleted_and_the_message_names_sudo
        needs Root, Program("sudo"), Program("runuser");
    a_failing_build_reports_in_the_summary_the_outputs_and_an_annotation
        needs Root, Docker, Program("sudo"), Program("runuser");
}

/// The sibling's workflow these tests run (README, "On GitHub Actions", shows the same
/// steps): free what the build needs as the job's own user. `NEED` is the box's scaled
/// equivalent of the build's 25 GB.
const FREE_WORKFLOW: &str = r#"name: free
on: push
jobs:
  free:
    runs-on: ubuntu-24.04
    env:
      NEED: "@NEED@"
    steps:
      - uses: actions/checkout@v4
      - uses: dtolnay/rust-toolchain@stable
      - name: Free what the build needs
        id: free
        run: cargo xtask free --root "$HEADROOM_BOX_ROOT" --need "$NEED" --json
"#;

fn box_dir() -> PathBuf {
    std::env::temp_dir().join("headroom-runner-box")
}

fn make_box(layout: &str, sudo: bool) -> RunnerBox {
    RunnerBox::create(BoxSpec {
        layout: layout.into(),
        sudo,
        dir: box_dir(),
        xtask: headroom_tests::xtask_bin().to_path_buf(),
    })
    .unwrap_or_else(|e| panic!("making the runner box {layout}: {e:#}"))
}

/// The build's 25 GB, at the box's scale.
fn need_bytes(rbox: &RunnerBox) -> u64 {
    (25.0 * rbox.usable as f64 / rbox.layout.root.disk_gb) as u64
}

/// A repository holding `workflow` at .github/workflows/`name`, and `files`.
fn repo(dir: &Path, name: &str, workflow: &str, files: &[(&str, &str)]) -> (PathBuf, Workflow) {
    let repo = dir.join("repo");
    let path = repo.join(".github/workflows").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, workflow).unwrap();
    for (rel, text) in files {
        let p = repo.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let w = Workflow::read(&path).unwrap();
    let problems = w.check(&repo);
    assert!(problems.is_empty(), "{problems:#?}");
    (repo, w)
}

/// Run the free workflow in `rbox`; the job and the free step's JSON report (when it printed
/// one).
fn run_free(rbox: &RunnerBox) -> (JobRun, Option<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let text = FREE_WORKFLOW.replace("@NEED@", &need_bytes(rbox).to_string());
    let (repo, w) = repo(tmp.path(), "free.yml", &text, &[]);
    let job = run_job(
        rbox,
        &JobSpec {
            workflow: &w,
            job: None,
            source: &repo,
            secrets: Default::default(),
        },
    )
    .unwrap();
    let step = job.step("free").unwrap();
    let json = serde_json::from_str(&step.stdout).ok();
    (job, json)
}

fn available(rbox: &RunnerBox) -> u64 {
    headroom_lab::sandbox::loopfs::sync_fs(&rbox.root);
    headroom_disk::available_bytes(&rbox.root).unwrap()
}

/// The free step's report and its step summary name `layout`, recognised by the rules of
/// crates/disk/src/layouts.toml from what was measured in the box.
fn recognised(job: &JobRun, json: &Value, rbox: &RunnerBox) {
    let name = rbox.layout.name.as_str();
    let layout = &json["layout"];
    assert_eq!(layout["name"], name, "{layout:#}");
    let e = &layout["evidence"];
    assert_eq!(e["hosted"], true, "{layout:#}");
    assert_eq!(e["gb_bytes"], rbox.layout.mib_per_gb << 20, "{layout:#}");
    // The evidence is the box's own filesystems: its root, and /mnt only on dual.
    let total = e["root_total_bytes"].as_u64().unwrap();
    assert!(total <= rbox.layout.root_bytes() && total > rbox.layout.root_bytes() * 9 / 10);
    assert_eq!(
        e["mnt_total_bytes"].is_u64(),
        rbox.layout.second_bytes().is_some(),
        "{layout:#}"
    );
    let why: Vec<&str> = layout["why"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(why.contains(&"a GitHub-hosted runner"), "{why:?}");
    assert!(
        why.iter().any(|w| w.starts_with("root filesystem")),
        "{why:?}"
    );
    let line = format!("Runner layout: **{name}**");
    assert!(job.summary.contains(&line), "{line}: {}", job.summary);
}

fn no_root_owned_files_in_home(rbox: &RunnerBox) {
    let found = rbox.root_owned_in_home();
    assert!(
        found.is_empty(),
        "root-owned files in the runner's home: {found:?}"
    );
}

fn the_shipped_workflow_is_one_the_box_runs() {
    let root = headroom_tests::repo_root();
    let w = Workflow::read(&root.join(".github/workflows/image.yml")).unwrap();
    let problems = w.check(root);
    assert!(problems.is_empty(), "{problems:#?}");
    let job = w.job(None).unwrap();
    assert!(
        job.steps.iter().any(|s| s
            .run
            .as_deref()
            .is_some_and(|r| r.contains("cargo xtask image"))),
        "image.yml runs the pipeline: {job:#?}"
    );
    // The report goes where the job's user may write, and is uploaded from there.
    let text = std::fs::read_to_string(root.join(".github/workflows/image.yml")).unwrap();
    assert!(
        !text.contains("--report target/headroom"),
        "image.yml writes its report into the checkout"
    );
}

fn freed_through_sudo(layout: &str) {
    let rbox = make_box(layout, true);
    let before = available(&rbox);
    let need = need_bytes(&rbox);
    assert!(
        before < need,
        "{layout}: the box starts with room ({before} ≥ {need})"
    );
    let (job, json) = run_free(&rbox);
    let step = job.step("free").unwrap();
    assert_eq!(step.outcome, Outcome::Success, "{layout}: {step:#?}");
    let json = json.unwrap_or_else(|| panic!("{layout}: no JSON report: {step:#?}"));
    assert_eq!(json["dry_run"], false, "{json:#}");
    assert_eq!(json["target_met"], true, "{json:#}");
    recognised(&job, &json, &rbox);
    let freed = json["freed_bytes"].as_u64().unwrap();
    assert!(freed > 0, "{layout}: nothing freed: {json:#}");
    // Root-owned trees went, as the filesystem counts it.
    let after = available(&rbox);
    assert!(after >= need, "{layout}: {after} available, {need} needed");
    assert!(
        after - before >= freed / 2,
        "{before} → {after}, freed {freed}"
    );
    let reclaimed: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["freed_bytes"].as_u64().unwrap_or(0) > 0)
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(!reclaimed.is_empty(), "{json:#}");
    for item in json["items"].as_array().unwrap() {
        assert!(
            item["errors"].as_array().unwrap().is_empty(),
            "{layout}: {item:#}"
        );
    }
    no_root_owned_files_in_home(&rbox);
}

fn root_owned_items_are_freed_through_sudo_on_private_72() {
    freed_through_sudo("private-72");
}

fn root_owned_items_are_freed_through_sudo_on_dual() {
    freed_through_sudo("dual");
}

fn public_145_with_room_deletes_nothing() {
    with_room_deletes_nothing("public-145");
}

fn arm_with_room_deletes_nothing() {
    with_room_deletes_nothing("arm");
}

fn with_room_deletes_nothing(layout: &str) {
    let rbox = make_box(layout, true);
    let before = available(&rbox);
    assert!(before > need_bytes(&rbox), "{layout} starts with room");
    let (job, json) = run_free(&rbox);
    let step = job.step("free").unwrap();
    assert_eq!(step.outcome, Outcome::Success, "{step:#?}");
    let json = json.unwrap();
    recognised(&job, &json, &rbox);
    assert_eq!(json["freed_bytes"], 0, "{json:#}");
    assert_eq!(json["target_met"], true, "{json:#}");
    assert_eq!(available(&rbox), before, "something was deleted");
    no_root_owned_files_in_home(&rbox);
}

fn without_sudo_nothing_is_deleted_and_the_message_names_sudo() {
    let rbox = make_box("private-72", false);
    let before = available(&rbox);
    let areas = std::fs::read_dir(rbox.root.join("usr/local/lib/android"))
        .unwrap()
        .count();
    let (job, json) = run_free(&rbox);
    let step = job.step("free").unwrap();
    assert_eq!(step.outcome, Outcome::Failure, "{step:#?}");
    assert!(
        step.stderr.contains("sudo") && step.stderr.contains("need root"),
        "{}",
        step.stderr
    );
    assert!(step.stderr.contains("/etc/sudoers.d/"), "{}", step.stderr);
    let json = json.unwrap();
    assert_eq!(json["dry_run"], true, "{json:#}");
    recognised(&job, &json, &rbox);
    assert_eq!(available(&rbox), before, "something was deleted");
    assert_eq!(
        std::fs::read_dir(rbox.root.join("usr/local/lib/android"))
            .unwrap()
            .count(),
        areas
    );
    no_root_owned_files_in_home(&rbox);
}

/// A sibling's image workflow whose build fails: the pipeline's report goes to
/// `$RUNNER_TEMP`, and the summary, the outputs and an annotation say what failed.
const IMAGE_WORKFLOW: &str = r#"name: image
on: push
jobs:
  image:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/checkout@v4
      - uses: Swatinem/rust-cache@v2
      - name: Build
        id: image
        run: cargo xtask image --context . --image headroom-box/fails --tag latest --skip free,push
      - name: After
        if: always()
        run: echo "result=${{ steps.image.outputs.result }} cause=${{ steps.image.outputs.cause }}"
      - uses: actions/upload-artifact@v4
        if: always()
        with:
          name: headroom-report
          path: ${{ runner.temp }}/headroom/report.json
"#;

fn a_failing_build_reports_in_the_summary_the_outputs_and_an_annotation() {
    let base = headroom_tests::registry::base_image();
    let rbox = make_box("private-72", true);
    let tmp = tempfile::tempdir().unwrap();
    let dockerfile = format!("FROM {base}\nRUN echo about to fail && false\n");
    let (repo, w) = repo(
        tmp.path(),
        "image.yml",
        IMAGE_WORKFLOW,
        &[("Dockerfile", &dockerfile)],
    );
    let job = run_job(
        &rbox,
        &JobSpec {
            workflow: &w,
            job: None,
            source: &repo,
            secrets: Default::default(),
        },
    )
    .unwrap();
    assert!(!job.passed);
    let build = job.step("image").unwrap();
    assert_eq!(build.outcome, Outcome::Failure, "{build:#?}");
    assert_eq!(
        build.outputs.get("result").map(String::as_str),
        Some("failed"),
        "{build:#?}"
    );
    assert_eq!(
        build.outputs.get("cause").map(String::as_str),
        Some("build-failed"),
        "{build:#?}"
    );
    assert_eq!(
        build.outputs.get("failed-stage").map(String::as_str),
        Some("build")
    );
    assert!(
        build
            .stdout
            .lines()
            .any(|l| l.starts_with("::error title=headroom%3A build failed::")),
        "{}",
        build.stdout
    );
    assert!(
        job.summary.contains("headroom image: failed at `build`"),
        "{}",
        job.summary
    );
    assert!(job.summary.contains("about to fail"), "{}", job.summary);
    // Later steps saw the outputs; the report was where the job's user may write.
    let after = job.step("After").unwrap();
    assert!(
        after.stdout.contains("result=failed cause=build-failed"),
        "{after:#?}"
    );
    let report = job.artifacts.join("headroom-report/report.json");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(report["errors"].as_array().is_some_and(|e| !e.is_empty()));
    no_root_owned_files_in_home(&rbox);
    drop(job);
    let _ = std::process::Command::new("docker")
        .args(["image", "rm", "--force", "headroom-box/fails:latest"])
        .output();
}
