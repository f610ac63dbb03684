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
//! Every binary that reaches the free stage calls [`helper`] first thing in `main`: it returns
//! `None` unless the process was started as the helper.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use headroom_disk::{
    Catalog, Environment, FreeReport, NoProgress, Plan, PlanRequest, ReclaimKind, ReclaimOptions,
    Selection,
};
use serde::{Deserialize, Serialize};

/// The hidden first argument that makes a binary the privileged helper.
pub const HELPER_ARG: &str = "__headroom-privileged-reclaim";

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
    if std::env::args_os().nth(1).as_deref() != Some(HELPER_ARG.as_ref()) {
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

/// Run this binary again under `sudo -n` as the helper, with `job` on its standard input.
fn run_helper(job: &ReclaimJob) -> Result<FreeReport, PrivilegeError> {
    let err = |e: String| PrivilegeError(e);
    let exe = std::env::current_exe().map_err(|e| err(format!("this program's path: {e}")))?;
    let input = serde_json::to_vec(job).map_err(|e| err(e.to_string()))?;
    let mut child = Command::new("sudo")
        .arg("-n")
        .arg("--")
        .arg(&exe)
        .arg(HELPER_ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(format!("starting sudo: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&input)
            .map_err(|e| err(format!("handing the plan over: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| err(format!("waiting for the helper: {e}")))?;
    if !out.status.success() {
        return Err(err(format!(
            "{} ({})",
            String::from_utf8_lossy(&out.stderr).trim(),
            out.status
        )));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| err(format!("the helper's report: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
