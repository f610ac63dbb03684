//! Privilege where it is needed, nowhere else.
//!
//! A job on a GitHub-hosted runner runs as the user `runner` (uid 1001) with passwordless
//! `sudo`. The build, the push and the reports are that user's; deleting root-owned software,
//! `swapoff` and `apt` are not. So the free stage plans as the user, and when the plan holds
//! something only root may do, the binary runs **itself** again under `sudo -n` as a hidden
//! privileged helper for that one step ([`HELPER_ARG`]), hands it the plan on standard input
//! ([`ReclaimJob`]: the items the user's plan selected, the same target, catalog and protect
//! list, the same `--root`), and reads its [`FreeReport`] back from standard output. The
//! helper reclaims those items and no others, through the same descriptor-held walk
//! (`headroom_disk`), so the confinement is the same. The whole pipeline never runs as root.
//!
//! Without passwordless sudo the step only plans, and [`Reclaimed::PlanOnly`] says what needs
//! root and how to grant it.
//!
//! The data-root move goes the same way ([`MOVE_HELPER_ARG`], [`MoveJob`], the helper's
//! [`Moved`] back on standard output): the helper takes nothing on trust beyond what the plan
//! allows ([`MoveJob::validate`]: the planned `daemon.json`, a target among the other local
//! filesystems' data roots, a local engine whose root is the job's `from`, systemd or a
//! root-owned service program) and moves through the same transaction, whose checks run
//! before the engine stops. A SIGTERM or SIGINT to the user's process is passed on to sudo,
//! which relays it to the helper, whose move rolls back; the user's process waits for it.
//!
//! Every binary that reaches the free stage calls [`helper`] first thing in `main`: it returns
//! `None` unless the process was started as the helper.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::Duration;

use headroom_disk::{
    Candidate, Catalog, Environment, FreeReport, NoProgress, Plan, PlanRequest, ReclaimKind,
    ReclaimOptions, Selection,
};
use headroom_docker::engine::Engine;
use headroom_docker::relocate::{self, Moved};
use serde::{Deserialize, Serialize};

/// The hidden first argument that makes a binary the privileged helper.
pub const HELPER_ARG: &str = "__headroom-privileged-reclaim";

/// The hidden first argument that makes a binary the privileged helper for the data-root
/// move ([`MoveJob`]).
pub const MOVE_HELPER_ARG: &str = "__headroom-privileged-move";

/// The plan handed to the privileged helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReclaimJob {
    pub catalog: Catalog,
    /// `--root`: every path resolved beneath it, nothing outside touched.
    pub root: Option<PathBuf>,
    /// The variables the catalog's `env_paths` read, as the user had them.
    pub vars: BTreeMap<String, String>,
    pub target_path: PathBuf,
    pub need: Option<u64>,
    /// The items the user's plan selected: the helper reclaims these and no others.
    pub items: Vec<String>,
    pub protect: Vec<String>,
}

impl ReclaimJob {
    /// The job for `plan`, made from `request` in `env`.
    pub fn from_plan(
        catalog: &Catalog,
        env: &Environment,
        request: &PlanRequest,
        plan: &Plan,
    ) -> ReclaimJob {
        ReclaimJob {
            catalog: catalog.clone(),
            root: env.root.clone(),
            vars: env.vars.clone(),
            target_path: request.target_path.clone(),
            need: request.need,
            items: plan.selected().map(|i| i.spec.name.clone()).collect(),
            protect: request.protect.clone(),
        }
    }

    /// Plan again (as root, so root-owned trees measure whole) over exactly the job's items,
    /// and reclaim them.
    fn run(&self) -> Result<FreeReport, String> {
        if self.items.is_empty() {
            return Err("the plan selects no item".into());
        }
        let env = Environment {
            root: self.root.clone(),
            vars: self.vars.clone(),
        };
        let request = PlanRequest {
            target_path: self.target_path.clone(),
            need: self.need,
            selection: Selection {
                all: true,
                only: self.items.clone(),
                skip: Vec::new(),
            },
            protect: self.protect.clone(),
        };
        let plan = headroom_disk::plan(&self.catalog, &env, &request, &NoProgress)
            .map_err(|e| format!("planning as root: {e}"))?;
        Ok(headroom_disk::reclaim(
            &plan,
            ReclaimOptions { dry_run: false },
            &NoProgress,
        ))
    }
}

/// What the helper did, for `main` to print and exit with.
#[derive(Debug)]
pub struct HelperExit {
    /// Standard output: the [`FreeReport`] as JSON (empty on failure).
    pub stdout: String,
    /// Standard error: why it failed (empty on success).
    pub stderr: String,
    pub code: u8,
}

/// Call first in `main`: `Some` when this process is the privileged helper (it has done its
/// one step; print what it says and exit), `None` otherwise.
pub fn helper() -> Option<HelperExit> {
    let arg = std::env::args_os().nth(1);
    let moving = arg.as_deref() == Some(MOVE_HELPER_ARG.as_ref());
    if arg.as_deref() != Some(HELPER_ARG.as_ref()) && !moving {
        return None;
    }
    let fail = |why: String| HelperExit {
        stdout: String::new(),
        stderr: format!("headroom privileged helper: {why}\n"),
        code: 2,
    };
    if !rustix::process::geteuid().is_root() {
        return Some(fail(
            "not root: it is started through `sudo -n` only".into(),
        ));
    }
    let mut text = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut text) {
        return Some(fail(format!("reading the plan from standard input: {e}")));
    }
    if moving {
        return Some(match move_helper(&text) {
            Ok(stdout) => HelperExit {
                stdout,
                stderr: String::new(),
                code: 0,
            },
            Err(why) => HelperExit {
                stdout: String::new(),
                stderr: format!("headroom privileged helper: {why}\n"),
                code: 1,
            },
        });
    }
    let job: ReclaimJob = match serde_json::from_str(&text) {
        Ok(job) => job,
        Err(e) => return Some(fail(format!("the plan on standard input: {e}"))),
    };
    Some(match job.run().and_then(|r| json(&r)) {
        Ok(stdout) => HelperExit {
            stdout,
            stderr: String::new(),
            code: 0,
        },
        Err(why) => fail(why),
    })
}

fn json(report: &FreeReport) -> Result<String, String> {
    serde_json::to_string(report).map_err(|e| e.to_string())
}

/// What a reclaim needs root for, as short phrases (`deleting root-owned /usr/share/dotnet
/// (dotnet)`, `swapoff (swap)`); empty when this process may do it all itself.
pub fn root_needed(plan: &Plan) -> Vec<String> {
    let euid = rustix::process::geteuid();
    if euid.is_root() {
        return Vec::new();
    }
    let mut needs = Vec::new();
    for item in plan.selected() {
        let name = &item.spec.name;
        match item.spec.reclaim {
            ReclaimKind::Swap => needs.push(format!("swapoff ({name})")),
            ReclaimKind::AptClean | ReclaimKind::AptRemove => needs.push(format!("apt ({name})")),
            // The engine's socket is the docker group's: no root needed.
            ReclaimKind::DockerImages | ReclaimKind::DockerBuildCache => {}
            ReclaimKind::Delete => {
                if let Some(p) = item.paths.iter().find(|p| !own(p, euid.as_raw())) {
                    needs.push(format!("deleting root-owned {} ({name})", p.display()));
                }
            }
        }
    }
    needs
}

/// Whether the user `uid` may delete `path` itself: it owns it, and may write to its parent.
fn own(path: &Path, uid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let owned = std::fs::symlink_metadata(path).is_ok_and(|m| m.uid() == uid);
    let parent_writable = path.parent().is_some_and(|parent| {
        rustix::fs::access(
            parent,
            rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
        )
        .is_ok()
    });
    owned && parent_writable
}

/// Whether `sudo -n` works here without a password.
pub fn sudo_available() -> bool {
    Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How a reclaim went.
#[derive(Debug)]
pub enum Reclaimed {
    /// Done here or through the helper: `via_sudo` says which.
    Done { report: FreeReport, via_sudo: bool },
    /// Root was needed and `sudo -n` refused: nothing deleted; `message` says what needs
    /// root and how to grant it.
    PlanOnly { report: FreeReport, message: String },
}

/// The helper could not be run, or said it failed.
#[derive(Debug, thiserror::Error)]
#[error("the privileged reclaim through `sudo -n`: {0}")]
pub struct PrivilegeError(pub String);

/// Reclaim `plan`: itself when it may, else through `sudo -n` and the helper, else (no
/// passwordless sudo) only the plan. A dry run never asks for anything.
pub fn reclaim(
    catalog: &Catalog,
    env: &Environment,
    request: &PlanRequest,
    plan: &Plan,
    dry_run: bool,
    progress: &dyn headroom_disk::Progress,
) -> Result<Reclaimed, PrivilegeError> {
    let needs = if dry_run {
        Vec::new()
    } else {
        root_needed(plan)
    };
    if needs.is_empty() {
        let report = headroom_disk::reclaim(plan, ReclaimOptions { dry_run }, progress);
        return Ok(Reclaimed::Done {
            report,
            via_sudo: false,
        });
    }
    if !sudo_available() {
        let report = headroom_disk::reclaim(plan, ReclaimOptions { dry_run: true }, progress);
        return Ok(Reclaimed::PlanOnly {
            report,
            message: no_sudo_message(&needs),
        });
    }
    let job = ReclaimJob::from_plan(catalog, env, request, plan);
    let mut report = run_helper(&job)?;
    // The helper runs in sudo's environment, without the runner's: the user's recognition.
    report.layout = plan.layout.clone();
    Ok(Reclaimed::Done {
        report,
        via_sudo: true,
    })
}

/// The message for a user without passwordless sudo.
pub fn no_sudo_message(needs: &[String]) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "this user".into());
    format!(
        "nothing deleted: {} need root, and `sudo -n` is not allowed here (uid {}). Run as \
         root, or grant passwordless sudo as GitHub-hosted runners do (a line `{user} \
         ALL=(ALL) NOPASSWD:ALL` in a file under /etc/sudoers.d/)",
        needs.join(", "),
        rustix::process::geteuid().as_raw()
    )
}

/// Start `exe ARG` through `sudo -n` (keeping the variables `preserve` names) and hand it
/// `input` (`what`, for the error) on its standard input; its output is piped back.
fn spawn_under_sudo(
    preserve: Option<&str>,
    exe: &Path,
    arg: &str,
    input: &[u8],
    what: &str,
) -> Result<std::process::Child, String> {
    let mut sudo = Command::new("sudo");
    sudo.arg("-n");
    if let Some(names) = preserve {
        sudo.arg(format!("--preserve-env={names}"));
    }
    let mut child = sudo
        .arg("--")
        .arg(exe)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting sudo: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| format!("handing {what} over: {e}"))?;
    }
    Ok(child)
}

/// Run this binary again under `sudo -n` as the helper, with `job` on its standard input.
fn run_helper(job: &ReclaimJob) -> Result<FreeReport, PrivilegeError> {
    let err = |e: String| PrivilegeError(e);
    let exe = std::env::current_exe().map_err(|e| err(format!("this program's path: {e}")))?;
    let input = serde_json::to_vec(job).map_err(|e| err(e.to_string()))?;
    let child = spawn_under_sudo(None, &exe, HELPER_ARG, &input, "the plan").map_err(err)?;
    helper_answer(child.wait_with_output())
}

/// The helper's report on its standard output, or why there is none: its exit status and
/// what it said on standard error.
fn helper_answer<T: serde::de::DeserializeOwned>(
    out: std::io::Result<std::process::Output>,
) -> Result<T, PrivilegeError> {
    let err = |e: String| PrivilegeError(e);
    let out = out.map_err(|e| err(format!("waiting for the helper: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| err(format!("the helper's report: {e}")))
}

/// `daemon.json` for the engine whose runner's `/` is `root` (the real one when `None`).
pub fn daemon_config(root: Option<&Path>) -> PathBuf {
    root.unwrap_or(Path::new("/"))
        .join("etc/docker/daemon.json")
}

/// The data-root move handed to the privileged helper: what the user's plan chose. The
/// helper believes none of it beyond what it checks again as root ([`MoveJob::validate`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveJob {
    /// `--root`: the simulated runner's `/`, whose `daemon.json` is the planned one.
    pub root: Option<PathBuf>,
    /// The move the plan chose, as the helper runs it once checked.
    pub request: relocate::MoveRequest,
}

impl MoveJob {
    /// What the plan allows, checked again by the helper without asking the engine:
    /// `daemon.json` is the one of `root`; the target is the data root on one of the other
    /// local filesystems that the plan's candidates are drawn from (or the old root, for a
    /// store switch alone); the service is systemd or a root-owned program nobody else may
    /// rewrite; the engine is on this machine.
    pub fn validate(&self, candidates: &[Candidate]) -> Result<(), String> {
        let planned = daemon_config(self.root.as_deref());
        if self.request.config != planned {
            return Err(format!(
                "daemon.json {} is not the planned one ({})",
                self.request.config.display(),
                planned.display()
            ));
        }
        if self.request.to != self.request.from
            && !candidates.iter().any(|c| c.data_root() == self.request.to)
        {
            return Err(format!(
                "the target {} is not the data root on another local filesystem ({})",
                self.request.to.display(),
                if candidates.is_empty() {
                    "there is none".to_string()
                } else {
                    candidates
                        .iter()
                        .map(|c| c.data_root().display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        }
        if !self.request.endpoint.is_local() {
            return Err(format!(
                "the engine {} is not on this machine",
                self.request.endpoint.host
            ));
        }
        if self.request.service != relocate::ServiceManager::systemd() {
            let program = self
                .request
                .service
                .stop
                .first()
                .cloned()
                .unwrap_or_default();
            if self.request.service != relocate::ServiceManager::script(Path::new(&program)) {
                return Err(format!(
                    "the service {} is neither systemd nor `PROGRAM stop|start`",
                    self.request.service.name
                ));
            }
            root_owned_program(Path::new(&program))?;
        }
        Ok(())
    }
}

/// A program root may run for the user: an absolute path to a regular file that root owns
/// and nobody else may write.
fn root_owned_program(program: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if !program.is_absolute() {
        return Err(format!(
            "the service program {} is not absolute",
            program.display()
        ));
    }
    let m = std::fs::symlink_metadata(program)
        .map_err(|e| format!("the service program {}: {e}", program.display()))?;
    if !m.file_type().is_file() || m.uid() != 0 || m.mode() & 0o022 != 0 {
        return Err(format!(
            "the service program {} is not a regular file owned by root and writable by root \
             only",
            program.display()
        ));
    }
    Ok(())
}

/// The other local filesystems for a data root on `from`, as `place` draws them.
fn candidates_for(from: &Path, root: Option<&Path>) -> Result<Vec<Candidate>, String> {
    let usage = headroom_disk::usage(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let (major, minor) = usage
        .device
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .ok_or_else(|| format!("the device of {}: {}", from.display(), usage.device))?;
    let table = headroom_disk::MountTable::read().map_err(|e| e.to_string())?;
    Ok(headroom_disk::candidates(
        &table,
        (major, minor),
        root,
        &headroom_disk::statvfs_probe,
    ))
}

/// The helper's side of a move: check the job again as root, ask the engine that `from` is
/// its root, and move through the same transaction (its checks before the engine stops, its
/// journal, its rollback on SIGTERM/SIGINT). The [`Moved`] as JSON.
fn move_helper(text: &str) -> Result<String, String> {
    let job: MoveJob =
        serde_json::from_str(text).map_err(|e| format!("the move on standard input: {e}"))?;
    job.validate(&candidates_for(&job.request.from, job.root.as_deref())?)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let moved = runtime.block_on(async {
        // A move an earlier killed run left halfway is the transaction's to finish first;
        // else the engine must say `from` is its root.
        if relocate::Journal::read(&job.request.config)
            .map_err(|e| e.to_string())?
            .is_none()
        {
            let engine = Engine::connect(job.request.endpoint.clone(), Duration::from_secs(10))
                .await
                .map_err(|e| e.to_string())?;
            let facts = engine.facts().await.map_err(|e| e.to_string())?;
            if facts.data_root.as_deref() != Some(job.request.from.as_path()) {
                return Err(format!(
                    "the engine's data root is {}, not {}",
                    facts
                        .data_root
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "unknown".into()),
                    job.request.from.display()
                ));
            }
        }
        relocate::move_data_root(&job.request)
            .await
            .map_err(|e| e.to_string())
    })?;
    serde_json::to_string(&moved).map_err(|e| e.to_string())
}

/// Move the data root through `sudo -n` and the helper, with `job` on its standard input.
/// A SIGTERM or SIGINT to this process is passed on to sudo, which relays it to the helper,
/// whose move rolls back; this waits for the helper's end either way.
pub async fn move_through_sudo(job: &MoveJob) -> Result<Moved, PrivilegeError> {
    let err = |e: String| PrivilegeError(e);
    let exe = std::env::current_exe().map_err(|e| err(format!("this program's path: {e}")))?;
    let input = serde_json::to_vec(job).map_err(|e| err(e.to_string()))?;
    // The run waits for a move rather than drop it on a signal.
    let _moving = relocate::MovingGuard::enter();
    let mut signals = relocate::interrupt_signals();
    // The move's test hook (`HEADROOM_PAUSE_AT`, relocate's) reaches the helper; sudo's
    // reset environment drops it otherwise. Asked for only when set: a sudoers entry without
    // SETENV refuses it.
    let preserve = std::env::var_os("HEADROOM_PAUSE_AT")
        .is_some()
        .then_some("HEADROOM_PAUSE_AT,HEADROOM_PAUSE_FILE");
    let child =
        spawn_under_sudo(preserve, &exe, MOVE_HELPER_ARG, &input, "the move").map_err(err)?;
    let pid = rustix::process::Pid::from_raw(child.id() as i32);
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output());
    tokio::pin!(waiting);
    let out = loop {
        tokio::select! {
            out = &mut waiting => break out,
            i = &mut signals => {
                let signal = if i == relocate::Interrupt::INT {
                    rustix::process::Signal::INT
                } else {
                    rustix::process::Signal::TERM
                };
                if let Some(pid) = pid {
                    let _ = rustix::process::kill_process(pid, signal);
                }
                signals = Box::pin(std::future::pending());
            }
        }
    };
    helper_answer(out.map_err(|e| err(e.to_string()))?)
}

/// The message for a user without passwordless sudo, when a move needs root.
pub fn no_sudo_move_message(what: &str, config: &Path, service: &str) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "this user".into());
    format!(
        "nothing moved, the engine not stopped: to {what} needs root (daemon.json {} and the \
         engine's restart through {service}), and `sudo -n` is not allowed here (uid {}). Run \
         as root, or grant passwordless sudo as GitHub-hosted runners do (a line `{user} \
         ALL=(ALL) NOPASSWD:ALL` in a file under /etc/sudoers.d/)",
        config.display(),
        rustix::process::geteuid().as_raw()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use headroom_docker::engine::Endpoint;

    #[test]
    fn only_the_hidden_argument_makes_a_helper() {
        // The test binary is started without it.
        assert!(helper().is_none());
    }

    #[test]
    fn a_job_with_no_items_is_refused_rather_than_taken_as_every_item() {
        let job = ReclaimJob {
            catalog: Catalog::builtin(),
            root: Some(PathBuf::from("/nonexistent")),
            vars: BTreeMap::new(),
            target_path: PathBuf::from("/nonexistent"),
            need: None,
            items: Vec::new(),
            protect: Vec::new(),
        };
        assert!(job.run().is_err());
    }

    #[test]
    fn the_message_names_sudo_and_what_needs_root() {
        let m = no_sudo_message(&["deleting root-owned /opt/x (x)".into()]);
        assert!(m.contains("sudo"), "{m}");
        assert!(m.contains("/opt/x"), "{m}");
        assert!(m.contains("/etc/sudoers.d/"), "{m}");
    }

    fn candidate(point: &str) -> Candidate {
        Candidate {
            mount_point: PathBuf::from(point),
            fs_type: "ext4".into(),
            device: "8:17".into(),
            available_bytes: 60 << 30,
            total_bytes: 80 << 30,
        }
    }

    fn move_job() -> MoveJob {
        MoveJob {
            root: None,
            request: relocate::MoveRequest {
                config: PathBuf::from("/etc/docker/daemon.json"),
                from: PathBuf::from("/var/lib/docker"),
                to: PathBuf::from("/mnt/docker"),
                containerd_store: None,
                carry_images: true,
                service: relocate::ServiceManager::systemd(),
                endpoint: Endpoint {
                    host: "unix:///var/run/docker.sock".into(),
                    tls: None,
                    source: "default".into(),
                },
                wait: Duration::from_secs(90),
            },
        }
    }

    #[test]
    fn the_planned_move_passes_the_helpers_checks() {
        let job = move_job();
        assert_eq!(job.validate(&[candidate("/mnt")]), Ok(()));
        // A store switch alone keeps the root.
        let mut job = job;
        job.request.to = job.request.from.clone();
        assert_eq!(job.validate(&[]), Ok(()));
    }

    #[test]
    fn the_helper_refuses_a_target_the_plan_did_not_draw() {
        for to in ["/etc", "/home/runner/docker", "/mnt", "/mnt/docker/../x"] {
            let mut job = move_job();
            job.request.to = PathBuf::from(to);
            let why = job.validate(&[candidate("/mnt")]).unwrap_err();
            assert!(why.contains(to) && why.contains("/mnt/docker"), "{why}");
        }
        assert!(
            move_job()
                .validate(&[])
                .unwrap_err()
                .contains("there is none")
        );
    }

    #[test]
    fn the_helper_refuses_another_daemon_json_an_engine_elsewhere_or_any_service_program() {
        let mut job = move_job();
        job.request.config = PathBuf::from("/tmp/daemon.json");
        let why = job.validate(&[candidate("/mnt")]).unwrap_err();
        assert!(why.contains("not the planned one"), "{why}");
        let mut job = move_job();
        job.root = Some(PathBuf::from("/sim"));
        job.request.config = PathBuf::from("/sim/etc/docker/daemon.json");
        assert_eq!(job.validate(&[candidate("/mnt")]), Ok(()));

        let mut job = move_job();
        job.request.endpoint.host = "tcp://10.0.0.1:2376".into();
        let why = job.validate(&[candidate("/mnt")]).unwrap_err();
        assert!(why.contains("not on this machine"), "{why}");

        let mut job = move_job();
        job.request.service = relocate::ServiceManager {
            name: "x".into(),
            stop: vec!["/bin/sh".into(), "-c".into(), "id".into()],
            start: vec!["/bin/true".into()],
        };
        let why = job.validate(&[candidate("/mnt")]).unwrap_err();
        assert!(why.contains("neither systemd"), "{why}");

        // A program the user could rewrite is not run as root.
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("service");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut job = move_job();
        job.request.service = relocate::ServiceManager::script(&program);
        let why = job.validate(&[candidate("/mnt")]).unwrap_err();
        assert!(why.contains("writable by root only"), "{why}");
    }

    #[test]
    fn a_move_without_sudo_says_what_needs_root_and_how_to_grant_it() {
        let m = no_sudo_move_message(
            "move the data root /var/lib/docker to /mnt/docker",
            Path::new("/etc/docker/daemon.json"),
            "systemd",
        );
        assert!(
            m.contains("`sudo -n`") && m.contains("/etc/sudoers.d/"),
            "{m}"
        );
        assert!(
            m.contains("nothing moved") && m.contains("/mnt/docker"),
            "{m}"
        );
    }
}
