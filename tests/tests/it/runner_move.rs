//! The data-root move as the runner user (issue 31): `cargo xtask image` run as `runner`
//! (uid 1001, group docker) on a throwaway engine restarted through its service program,
//! with a second filesystem beneath `--root` to move to. With passwordless sudo the move runs
//! as root through `sudo -n` (the binary's hidden move helper) and the engine answers on the
//! new root with the same image; the report says it went through sudo, and nothing
//! root-owned is left in the runner's home. Without sudo nothing is stopped or moved and the
//! message names sudo. A SIGTERM to the runner's process reaches the helper through sudo,
//! whose move rolls back.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use headroom_docker::local::busybox_image_all_applets;
use headroom_lab::sandbox::runner_box::{self, BoxSpec, RunnerBox};
use headroom_tests::LoopFs;
use headroom_tests::attack::bind;
use headroom_tests::engine::ServiceEngine;
use serde_json::json;

headroom_tests::tests! {
    the_runners_move_goes_through_sudo
        needs Root, Docker, Program("sudo"), Tool("check-jsonschema");
    without_sudo_the_runners_move_stops_nothing_and_names_sudo
        needs Root, Docker, Program("sudo");
    sigterm_to_the_runner_reaches_the_helper_whose_move_rolls_back
        needs Root, Docker, Program("sudo"), Tool("check-jsonschema");
}

const IMAGE: &str = "headroom/runner-move";

fn make_box(sudo: bool) -> RunnerBox {
    RunnerBox::create(BoxSpec {
        layout: "private-72".into(),
        sudo,
        dir: std::env::temp_dir().join("headroom-runner-box"),
        xtask: headroom_tests::xtask_bin().to_path_buf(),
    })
    .unwrap_or_else(|e| panic!("making the runner box: {e:#}"))
}

/// Stops the engine before the filesystem mounted beneath its directory is unmounted.
struct StopFirst<'a>(&'a ServiceEngine);

impl Drop for StopFirst<'_> {
    fn drop(&mut self) {
        let _ = self.0.service_run("stop");
    }
}

/// Let the runner reach `path` (search permission on it and the directories above).
fn reachable(path: &Path) {
    for dir in path.ancestors() {
        if dir == Path::new("/") {
            break;
        }
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o005)).unwrap();
    }
}

/// The pipeline as the runner (uid 1001, the docker group), needing `need` bytes: the
/// command, and the report's path.
fn as_runner(rbox: &RunnerBox, engine: &ServiceEngine, need: u64) -> (Command, PathBuf) {
    use std::os::unix::process::CommandExt;
    let work = rbox.workspace();
    let ctx = work.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {IMAGE}\nRUN true\n")).unwrap();
    runner_box::chown_runner(&work).unwrap();
    let gid = Command::new("id")
        .args(["-g", runner_box::USER])
        .output()
        .unwrap();
    let gid: u32 = String::from_utf8_lossy(&gid.stdout).trim().parse().unwrap();
    let report = work.join("report.json");
    let mut cmd = Command::new(rbox.bin().join("xtask"));
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", runner_box::HOME)
        .env("USER", runner_box::USER)
        .env("DOCKER_HOST", &engine.host)
        .arg("image")
        .arg("--context")
        .arg(&ctx)
        .args(["--image", "headroom-test/runner-move", "--tag", "latest"])
        .args(["--skip", "smoke,push", "--need", &need.to_string()])
        .arg("--engine-service")
        .arg(&engine.service)
        .arg("--root")
        .arg(engine.socket_dir())
        .arg("--report")
        .arg(&report)
        .current_dir(&work)
        .uid(runner_box::UID)
        .gid(gid)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    (cmd, report)
}

/// Run the pipeline as the runner; its exit code, standard error, and the report's path.
fn run_as_runner(
    rbox: &RunnerBox,
    engine: &ServiceEngine,
    need: u64,
) -> (Option<i32>, String, PathBuf) {
    let (mut cmd, report) = as_runner(rbox, engine, need);
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    )
}

fn image_id(engine: &ServiceEngine) -> String {
    engine
        .docker(&["images", "-q", "--no-trunc", IMAGE])
        .unwrap()
        .trim()
        .to_string()
}

/// The box, the engine with its image reachable by the runner, and a bigger filesystem at
/// `--root`'s `/mnt`; runs `check` with the need that only a move meets.
fn scenario(sudo: bool, check: impl FnOnce(&RunnerBox, &ServiceEngine, u64)) {
    let rbox = make_box(sudo);
    let engine = ServiceEngine::start(&json!({"labels": ["headroom-test=runner-move"]}), false);
    busybox_image_all_applets(IMAGE, Some(&engine.host), &engine.socket_dir().join("base"))
        .unwrap();
    reachable(engine.socket_dir());
    reachable(&engine.old_root());
    let mnt = engine.socket_dir().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let bigger = LoopFs::new(700);
    let _mounted = bind(&bigger.mount, &mnt);
    let _stop = StopFirst(&engine);
    headroom_lab::sandbox::loopfs::sync_fs(&engine.old_root());
    let need = headroom_disk::available_bytes(&engine.old_root()).unwrap() + (64 << 20);
    check(&rbox, &engine, need);
}

fn the_runners_move_goes_through_sudo() {
    scenario(true, |rbox, engine, need| {
        let image = image_id(engine);
        assert!(!image.is_empty());
        let (code, stderr, report) = run_as_runner(rbox, engine, need);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("through `sudo -n`"), "{stderr}");
        let to = engine.socket_dir().join("mnt/docker");
        assert_eq!(engine.data_root(), Some(to.clone()), "{stderr}");
        assert_eq!(image_id(engine), image, "the image on the new root");
        let r = headroom_tests::check_report(&report);
        let p = r.placement.as_ref().unwrap();
        assert!(p.restarted && p.via_sudo, "{p:?}");
        assert_eq!(p.to.as_deref(), Some(to.as_path()), "{p:?}");
        let found = rbox.root_owned_in_home();
        assert!(
            found.is_empty(),
            "root-owned in the runner's home: {found:?}"
        );
    });
}

fn without_sudo_the_runners_move_stops_nothing_and_names_sudo() {
    scenario(false, |rbox, engine, need| {
        let config = std::fs::read(&engine.config).unwrap();
        let pid = std::fs::read_to_string(&engine.pidfile).unwrap();
        let (_, stderr, _) = run_as_runner(rbox, engine, need);
        assert!(
            stderr.contains("nothing moved") && stderr.contains("`sudo -n` is not allowed"),
            "{stderr}"
        );
        assert!(stderr.contains("/etc/sudoers.d/"), "{stderr}");
        assert_eq!(std::fs::read(&engine.config).unwrap(), config);
        assert_eq!(std::fs::read_to_string(&engine.pidfile).unwrap(), pid);
        assert_eq!(engine.data_root(), Some(engine.old_root()));
        assert!(!engine.socket_dir().join("mnt/docker").exists());
        let found = rbox.root_owned_in_home();
        assert!(
            found.is_empty(),
            "root-owned in the runner's home: {found:?}"
        );
    });
}

/// A SIGTERM to the runner's process while the helper, as root, copies the data root
/// (paused there by `HEADROOM_PAUSE_AT`, passed through sudo): sudo relays it, the helper's
/// move rolls back, and the runner's process waits for that and exits 143.
fn sigterm_to_the_runner_reaches_the_helper_whose_move_rolls_back() {
    scenario(true, |rbox, engine, need| {
        let image = image_id(engine);
        let config = std::fs::read(&engine.config).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let paused = tmp.path().join("paused");
        let (mut cmd, report) = as_runner(rbox, engine, need);
        cmd.env("HEADROOM_PAUSE_AT", "copying")
            .env("HEADROOM_PAUSE_FILE", &paused);
        let mut child = cmd.spawn().unwrap();
        let start = std::time::Instant::now();
        while !paused.exists() {
            if let Some(status) = child.try_wait().unwrap() {
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the run ended ({status}) before the pause: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(180),
                "never paused at the copy"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(143), "{stderr}");
        assert!(stderr.contains("rolled back"), "{stderr}");
        assert_eq!(engine.data_root(), Some(engine.old_root()), "{stderr}");
        assert_eq!(image_id(engine), image);
        assert_eq!(std::fs::read(&engine.config).unwrap(), config);
        assert!(
            !engine.socket_dir().join("mnt/docker").exists(),
            "a partial copy is left"
        );
        let left: Vec<String> = std::fs::read_dir(engine.config.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("headroom-tmp") || n.contains("headroom-move"))
            .collect();
        assert!(left.is_empty(), "left beside daemon.json: {left:?}");
        let r = headroom_tests::check_report(&report);
        assert_eq!(
            r.cause.map(|c| format!("{c:?}")).as_deref(),
            Some("Interrupted")
        );
        assert!(rbox.root_owned_in_home().is_empty());
    });
}
