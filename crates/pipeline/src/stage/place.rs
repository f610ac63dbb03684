//! Placement: where the build gets its room, the free stage's first choice. Cheapest
//! first: the target already met; moving the engine's data root to another local filesystem
//! with room for the target and the old root's copy; and only then deleting catalog items
//! on the filesystem that holds the build. Each option gets an estimated cost, and the
//! report (`placement`) says which was taken and why. An image-store switch
//! (`--engine-store`) rides on the same engine restart, or has one of its own.
//!
//! The decision ([`choose`]), its orchestration (`place`) and its report
//! ([`PlacementReport`]) are here. The filesystems it may move to are
//! `headroom_disk::candidates`'s; the move itself (stop the engine, copy, rewrite
//! `daemon.json`, start it, put everything back on failure) is
//! `headroom_docker::relocate::move_data_root`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use headroom_disk::{Candidate, FsUsage, format_size};
use headroom_docker::engine::{Engine, EngineFacts};
use headroom_docker::relocate;

use super::Stage;
use super::context::Run;
use crate::privilege;
use crate::settings::{EngineStore, Settings};

pub(crate) mod report;
pub use report::{Method, PlacementReport, StoreSwitch};

/// Copying a data root: what a local disk-to-disk `cp -a` of many small files sustains on a
/// hosted runner (bytes per second), and what a stop and a start of the engine take.
pub const COPY_BYTES_PER_SECOND: f64 = 150e6;
pub const RESTART_SECONDS: f64 = 8.0;

/// `containerd` or `classic`.
pub fn store_name(containerd: bool) -> &'static str {
    if containerd { "containerd" } else { "classic" }
}

/// The choice, before anything is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub method: Method,
    pub reason: String,
    pub to: Option<PathBuf>,
    pub estimated_seconds: f64,
}

/// Pick the cheapest option. `blocked`: why a move may not happen here (no service manager,
/// running containers, disabled), when it may not.
pub fn choose(
    need: u64,
    available: u64,
    data_root_bytes: u64,
    candidates: &[Candidate],
    blocked: Option<&str>,
) -> Choice {
    if available >= need {
        return Choice {
            method: Method::TargetMet,
            reason: format!(
                "{} available, {} needed",
                format_size(available),
                format_size(need)
            ),
            to: None,
            estimated_seconds: 0.0,
        };
    }
    let delete = |reason: String| Choice {
        method: Method::Delete,
        reason,
        to: None,
        estimated_seconds: 0.0,
    };
    let Some(best) = candidates.first() else {
        return delete("no other local filesystem to move the data root to".into());
    };
    // The copy lands on the new filesystem before the build starts.
    let room = best.available_bytes.saturating_sub(data_root_bytes);
    if room < need {
        return delete(format!(
            "the filesystem with the most room, {}, has {} available: {} after copying the \
             data root ({}), {} needed",
            best.mount_point.display(),
            format_size(best.available_bytes),
            format_size(room),
            format_size(data_root_bytes),
            format_size(need)
        ));
    }
    if let Some(why) = blocked {
        return delete(format!(
            "{} on {} would fit the build, but the data root cannot be moved: {why}",
            format_size(best.available_bytes),
            best.mount_point.display()
        ));
    }
    Choice {
        method: Method::MoveDataRoot,
        reason: format!(
            "{} available here, {} needed; {} has {}: moving the data root deletes nothing",
            format_size(available),
            format_size(need),
            best.mount_point.display(),
            format_size(best.available_bytes)
        ),
        to: Some(best.data_root()),
        estimated_seconds: RESTART_SECONDS + data_root_bytes as f64 / COPY_BYTES_PER_SECOND,
    }
}

pub use crate::privilege::daemon_config;

/// What placement did.
pub(crate) enum Placed {
    /// The data root stays (the target is met, or deleting follows).
    Stay,
    /// A dry run: the move it would make, as the stage's skip reason.
    Planned(String),
    /// The data root is now here.
    Moved(PathBuf),
}

/// What placement weighed, and what it chose.
struct Decision {
    choice: Choice,
    /// The report so far: the choice, its inputs, the candidates.
    report: PlacementReport,
    /// `--engine-store` asks for a switch: to containerd's store (`true`) or the classic one.
    switch: Option<bool>,
    /// Why the engine may not restart here, when it may not.
    restart_blocked: Option<String>,
}

/// Place the build on the data root `root`: nothing, when the target is met; a move of the
/// data root to another filesystem, when one has room and the engine may restart; else the
/// deleting that follows. The choice and its reason go to the report.
pub(crate) async fn place(run: &mut Run<'_>, engine: &Engine, root: &Path) -> Result<Placed> {
    let s = run.settings;
    let Some(Decision {
        choice,
        mut report,
        switch,
        restart_blocked,
    }) = decide(s, engine, root).await?
    else {
        return Ok(Placed::Stay);
    };
    let moving = choice.method == Method::MoveDataRoot;
    if !moving && switch.is_none() {
        if choice.method == Method::Delete {
            run.reporter
                .note(Stage::Free, &format!("placement: {}", choice.reason));
        }
        run.report.placement = Some(report);
        return Ok(Placed::Stay);
    }
    if let (Some(on), Some(why)) = (switch, &restart_blocked) {
        run.report.placement = Some(report);
        bail!(
            "free: --engine-store {}: the engine cannot be restarted to switch its image \
             store: {why}",
            store_name(on)
        );
    }
    let Some(service) = s.engine_service.clone() else {
        // choose() saw the block: a move is only chosen with a service manager.
        bail!("free: no service manager to restart the engine with");
    };
    let to = choice.to.clone().unwrap_or_else(|| root.to_path_buf());
    let config = daemon_config(s.root.as_deref());
    report.config = Some(config.clone());
    report.service = Some(service.name.clone());
    let images = if switch.is_some() {
        engine.image_count().await.ok()
    } else {
        None
    };
    report.store = switch.map(|on| StoreSwitch {
        from: store_name(!on).into(),
        to: store_name(on).into(),
        carried: Vec::new(),
        images_left_behind: images.unwrap_or(0) as u64,
    });
    let what = describe(moving, switch, root, &to);
    if report.dry_run {
        let why = format!(
            "not a GitHub-hosted runner: would {what} (about {:.0} s, {} copied; {} and the \
             engine's restart through {}); pass --yes to do it",
            choice.estimated_seconds.max(RESTART_SECONDS),
            format_size(report.data_root_bytes),
            config.display(),
            service.name
        );
        run.report.placement = Some(report);
        return Ok(Placed::Planned(why));
    }
    let via_sudo = !rustix::process::geteuid().is_root();
    if via_sudo && !privilege::sudo_available() {
        // The move rewrites daemon.json and restarts the engine: root's, through sudo.
        let why = privilege::no_sudo_move_message(&what, &config, &service.name);
        run.reporter.warning(Stage::Free, &why);
        run.report.placement = Some(report);
        return Ok(Placed::Planned(why));
    }
    run.reporter.note(
        Stage::Free,
        &format!(
            "placement: {}; going to {what}: restarting the engine through {}{}",
            choice.reason,
            service.name,
            if via_sudo {
                " (as root, through `sudo -n`)"
            } else {
                ""
            }
        ),
    );
    let request = relocate::MoveRequest {
        config,
        from: root.to_path_buf(),
        to: to.clone(),
        containerd_store: switch,
        carry_images: true,
        service,
        endpoint: engine.endpoint.clone(),
        wait: Duration::from_secs(90),
    };
    let job = privilege::MoveJob {
        root: s.root.clone(),
        request,
    };
    restart(run, report, &job, via_sudo, moving, &what).await?;
    Ok(Placed::Moved(to))
}

/// Weigh the options; `None` when there is nothing to place (no target, no store switch).
async fn decide(s: &Settings, engine: &Engine, root: &Path) -> Result<Option<Decision>> {
    let current_store = engine.facts().await.ok().map(|f| f.containerd_store);
    let switch = s
        .engine_store
        .map(|w| w == EngineStore::Containerd)
        .filter(|want| current_store != Some(*want));
    let need = s.need.map(|(n, _)| n);
    if need.is_none() && switch.is_none() {
        return Ok(None);
    }
    let usage = headroom_disk::usage(root)
        .with_context(|| format!("free: the data root {}", root.display()))?;
    let need = need.unwrap_or(0);
    let candidates = candidates(s, &usage);
    let data_root_bytes = if usage.available_bytes < need && !candidates.is_empty() {
        let root = root.to_path_buf();
        tokio::task::spawn_blocking(move || headroom_disk::measure(&[root]).size.disk_bytes)
            .await
            .context("measuring the data root")?
    } else {
        0
    };
    let restart_blocked = restart_blocked(s, engine).await;
    let move_blocked = if s.move_data_root {
        restart_blocked.clone()
    } else {
        Some("moving is off (--no-move, or free.move_data_root = false)".into())
    };
    let choice = choose(
        need,
        usage.available_bytes,
        data_root_bytes,
        &candidates,
        move_blocked.as_deref(),
    );
    let report = PlacementReport {
        method: choice.method,
        reason: choice.reason.clone(),
        from: root.to_path_buf(),
        to: choice.to.clone(),
        need_bytes: need,
        available_bytes: usage.available_bytes,
        data_root_bytes,
        estimated_seconds: choice.estimated_seconds,
        seconds: 0.0,
        dry_run: !s.may_delete(),
        restarted: false,
        via_sudo: false,
        copied_bytes: None,
        available_after: None,
        config: None,
        backup: None,
        kept_keys: Vec::new(),
        service: None,
        store: None,
        candidates,
    };
    Ok(Some(Decision {
        choice,
        report,
        switch,
        restart_blocked,
    }))
}

/// What the restart does, in words: a move, a store switch, or both.
fn describe(moving: bool, switch: Option<bool>, root: &Path, to: &Path) -> String {
    match (moving, switch) {
        (true, Some(on)) => format!(
            "move the data root {} to {} and switch to the {} image store",
            root.display(),
            to.display(),
            store_name(on)
        ),
        (true, None) => format!("move the data root {} to {}", root.display(), to.display()),
        (false, Some(on)) => format!("switch the engine to the {} image store", store_name(on)),
        (false, None) => unreachable!("nothing to do was handled above"),
    }
}

/// Move the data root (and switch the store) through the engine's restart; the report gets
/// what was done, the reporter a line with the figures.
async fn restart(
    run: &mut Run<'_>,
    mut report: PlacementReport,
    job: &privilege::MoveJob,
    via_sudo: bool,
    moving: bool,
    what: &str,
) -> Result<()> {
    let to = &job.request.to;
    let moved = if via_sudo {
        privilege::move_through_sudo(job)
            .await
            .map_err(anyhow::Error::from)
    } else {
        relocate::move_data_root(&job.request)
            .await
            .map_err(anyhow::Error::from)
    };
    let moved = match moved {
        Ok(m) => m,
        Err(e) => {
            run.report.placement = Some(report);
            bail!("free: {what}: {e}");
        }
    };
    if let Some(m) = &moved.recovered {
        run.reporter.note(Stage::Free, m);
    }
    report.restarted = true;
    report.via_sudo = via_sudo;
    report.seconds = moved.seconds;
    if let Some(st) = &mut report.store {
        st.images_left_behind = st
            .images_left_behind
            .saturating_sub(moved.carried_images.len() as u64);
        st.carried = moved.carried_images.clone();
    }
    report.backup = moved.backup.clone();
    report.kept_keys = moved.kept_keys.clone();
    if moving {
        report.copied_bytes = Some(moved.copied_bytes);
        report.available_after = headroom_disk::available_bytes(to).ok();
    }
    let left = report
        .store
        .as_ref()
        .filter(|st| st.images_left_behind > 0)
        .map(|st| {
            format!(
                "; {} untagged image(s) of the {} store are not in the {} one (still on \
                 disk, back when the store is switched back)",
                st.images_left_behind, st.from, st.to
            )
        })
        .unwrap_or_default();
    run.reporter.note(
        Stage::Free,
        &format!(
            "done in {:.1} s{}; {} keeps {} other key(s){}; nothing deleted{left}",
            moved.seconds,
            if moving {
                format!(
                    " ({} copied, {} available on {})",
                    format_size(moved.copied_bytes),
                    format_size(report.available_after.unwrap_or(0)),
                    to.display()
                )
            } else {
                String::new()
            },
            moved.config.display(),
            moved.kept_keys.len(),
            moved
                .backup
                .as_ref()
                .map(|b| format!(", its backup is {}", b.display()))
                .unwrap_or_default()
        ),
    );
    run.report.disk.freed_bytes = Some(0);
    run.report.placement = Some(report);
    Ok(())
}

/// The other local filesystems the data root could move to, most room first.
pub(crate) fn candidates(s: &Settings, usage: &FsUsage) -> Vec<Candidate> {
    let Some((major, minor)) = usage
        .device
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
    else {
        return Vec::new();
    };
    let Ok(table) = headroom_disk::MountTable::read() else {
        return Vec::new();
    };
    headroom_disk::candidates(
        &table,
        (major, minor),
        s.root.as_deref(),
        &headroom_disk::statvfs_probe,
    )
}

/// Why the engine may not be restarted here (for a move or a store switch), when it may
/// not.
async fn restart_blocked(s: &Settings, engine: &Engine) -> Option<String> {
    // daemon.json must be replaceable, or the move would be refused after all. Another
    // user cannot probe root's directory: the helper asks the same as root before the
    // engine stops, or, without sudo, the move is only planned.
    if rustix::process::geteuid().is_root()
        && let Err(why) = headroom_disk::check_replaceable(&daemon_config(s.root.as_deref()))
    {
        return Some(why);
    }
    if s.engine_service.is_none() {
        return Some(if s.root.is_some() {
            "under --root, the simulated engine's service must be given \
             (--engine-service PROGRAM)"
                .into()
        } else {
            "no service manager to restart the engine with (this machine does not run \
             systemd): pass --engine-service PROGRAM"
                .into()
        });
    }
    // A restart stops every container: a job's service containers (a database, a
    // registry) would die with it.
    match engine.docker.list_containers(None).await {
        Ok(running) if !running.is_empty() => Some(format!(
            "{} container(s) run on the engine ({}), and a restart would stop them",
            running.len(),
            running
                .iter()
                .filter_map(|c| c.names.as_ref()?.first().cloned())
                .map(|n| n.trim_start_matches('/').to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Ok(_) => None,
        Err(e) => Some(format!("the engine's containers could not be listed: {e}")),
    }
}

/// Finish or roll back a data-root move that a killed run left halfway (its journal beside
/// `daemon.json`), before anything asks the engine: it may be stopped.
pub(crate) async fn recover(run: &mut Run<'_>) -> Result<()> {
    let s = run.settings;
    let config = daemon_config(s.root.as_deref());
    if relocate::Journal::read(&config)?.is_none() {
        return Ok(());
    }
    let env: std::collections::BTreeMap<String, String> = std::env::vars().collect();
    let endpoint = headroom_docker::engine::resolve_endpoint(&env)?;
    match relocate::recover(&config, &endpoint, Duration::from_secs(90)).await? {
        relocate::Recovered::Nothing => {}
        relocate::Recovered::Completed(m) | relocate::Recovered::RolledBack(m) => {
            run.reporter.note(Stage::Free, &m);
        }
    }
    Ok(())
}

/// The new data root, when placement moved it.
pub(crate) fn moved_to(run: &Run<'_>) -> Option<PathBuf> {
    run.report
        .placement
        .as_ref()
        .filter(|p| p.restarted)
        .map(|p| p.to.clone().unwrap_or_else(|| p.from.clone()))
}

/// After a move: a new connection to the restarted engine, and its facts.
pub(crate) async fn reconnect(
    run: &mut Run<'_>,
    root: &Path,
) -> Result<(Engine, Option<EngineFacts>)> {
    let engine = Engine::from_env(Duration::from_secs(10))
        .await
        .context("reconnecting to the engine after moving its data root")?;
    let facts = engine.facts().await.ok();
    run.report.engine = facts.clone();
    run.report.disk.path = Some(root.to_path_buf());
    Ok((engine, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(point: &str, available_gb: u64) -> Candidate {
        Candidate {
            mount_point: PathBuf::from(point),
            fs_type: "ext4".into(),
            device: "8:17".into(),
            available_bytes: available_gb << 30,
            total_bytes: 80 << 30,
        }
    }

    #[test]
    fn a_met_target_does_nothing() {
        let c = choose(10 << 30, 20 << 30, 0, &[fs("/mnt", 66)], None);
        assert_eq!(c.method, Method::TargetMet);
        assert_eq!(c.to, None);
    }

    #[test]
    fn a_second_disk_with_room_is_taken_before_deleting() {
        let c = choose(
            25 << 30,
            14 << 30,
            1 << 30,
            &[fs("/mnt", 66), fs("/data", 30)],
            None,
        );
        assert_eq!(c.method, Method::MoveDataRoot);
        assert_eq!(c.to.as_deref(), Some(Path::new("/mnt/docker")));
        assert!(c.estimated_seconds > RESTART_SECONDS && c.estimated_seconds < 20.0);
        assert!(c.reason.contains("/mnt"), "{}", c.reason);
    }

    #[test]
    fn the_copy_of_the_old_root_counts_against_the_new_disk() {
        let c = choose(25 << 30, 14 << 30, 10 << 30, &[fs("/mnt", 30)], None);
        assert_eq!(c.method, Method::Delete);
        assert!(c.reason.contains("after copying"), "{}", c.reason);
        let c = choose(25 << 30, 14 << 30, 5 << 30, &[fs("/mnt", 30)], None);
        assert_eq!(c.method, Method::MoveDataRoot);
    }

    #[test]
    fn a_blocked_move_falls_back_to_deleting_and_says_why() {
        let c = choose(
            25 << 30,
            14 << 30,
            0,
            &[fs("/mnt", 66)],
            Some("2 containers run"),
        );
        assert_eq!(c.method, Method::Delete);
        assert!(c.reason.contains("2 containers run"), "{}", c.reason);
        let c = choose(25 << 30, 14 << 30, 0, &[], None);
        assert_eq!(c.method, Method::Delete);
        assert!(
            c.reason.contains("no other local filesystem"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn the_config_is_under_the_simulated_root() {
        assert_eq!(daemon_config(None), Path::new("/etc/docker/daemon.json"));
        assert_eq!(
            daemon_config(Some(Path::new("/sim/runner"))),
            Path::new("/sim/runner/etc/docker/daemon.json")
        );
    }
}
