//! The free stage: placement first ([`super::place`]); when the build stays where it is
//! and the target is not met, the catalog's items measured, planned and reclaimed on the
//! data root's filesystem (`headroom_disk`), on a blocking thread. Off a GitHub-hosted
//! runner without `--yes` (or `--root`) it only plans. With `--free-in-background` it runs
//! alongside lint and build, which keeps a floor of free space while it deletes.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use headroom_disk::{FreeReport, PlanRequest, ReclaimKind, Selection, format_size};
use headroom_docker::engine::Engine;

use super::Stage;
use super::context::{Outcome, Run};
use super::place::{self, Placed};
use crate::privilege::{self, Reclaimed};
use crate::settings::NeedSource;

/// The free stage's work, ready to run on a blocking thread.
struct FreeJob {
    catalog: headroom_disk::Catalog,
    env: headroom_disk::Environment,
    request: PlanRequest,
    need: u64,
    dry_run: bool,
}

impl FreeJob {
    /// Measure, plan and reclaim (blocking: walks and deletes); what needs root goes
    /// through `sudo -n` ([`crate::privilege`]).
    fn run(self, progress: &dyn headroom_disk::Progress) -> Result<Freed> {
        let plan = headroom_disk::plan(&self.catalog, &self.env, &self.request, progress)
            .with_context(|| {
                format!(
                    "planning to free space on {}",
                    self.request.target_path.display()
                )
            })?;
        let reclaimed = privilege::reclaim(
            &self.catalog,
            &self.env,
            &self.request,
            &plan,
            self.dry_run,
            progress,
        )?;
        Ok(match reclaimed {
            Reclaimed::Done { report, via_sudo } => Freed {
                report,
                via_sudo,
                no_sudo: None,
            },
            Reclaimed::PlanOnly { report, message } => Freed {
                report,
                via_sudo: false,
                no_sudo: Some(message),
            },
        })
    }
}

/// A reclaim's report, and how privilege went.
struct Freed {
    report: FreeReport,
    via_sudo: bool,
    /// Root was needed and `sudo -n` refused: why nothing was deleted.
    no_sudo: Option<String>,
}

/// The free stage running alongside the build (--free-in-background).
pub(crate) struct BackgroundFree {
    task: tokio::task::JoinHandle<Result<Freed>>,
    /// Turns true when the reclaim is over.
    done: tokio::sync::watch::Receiver<bool>,
    /// Available bytes the build keeps while the reclaim runs.
    pub(crate) floor: u64,
    need: u64,
    started: Instant,
}

impl BackgroundFree {
    pub(crate) fn freeing(&self) -> bool {
        !*self.done.borrow()
    }

    pub(crate) async fn wait_done(&self) {
        let mut done = self.done.clone();
        // An error means the reclaim thread is gone: as good as done.
        let _ = done.wait_for(|d| *d).await;
    }
}

/// The free stage: placement, then deleting what the target needs.
pub(crate) async fn run(
    run: &mut Run<'_>,
    engine: &Engine,
    data_root: Option<&Path>,
) -> Result<Outcome> {
    if let Some(root) = data_root {
        match place::place(run, engine, root).await? {
            Placed::Moved(_) => return Ok(Outcome::Passed),
            Placed::Planned(why) => return Ok(Outcome::Skipped(why)),
            Placed::Stay => {}
        }
    }
    let job = match job(run, data_root, false) {
        Ok(job) => job,
        Err(why) => return Ok(Outcome::Skipped(why)),
    };
    let need = job.need;
    let progress = run.reporter.free_progress();
    // Deleting gigabytes blocks: keep it off the task that also watches for signals.
    let report = tokio::task::spawn_blocking(move || job.run(&*progress))
        .await
        .context("the free stage's reclaim thread")??;
    finish(run, report, need, None)
}

/// What the free stage would do, or why it is skipped.
fn job(run: &Run<'_>, data_root: Option<&Path>, background: bool) -> Result<FreeJob, String> {
    let s = run.settings;
    let Some(path) = data_root else {
        return Err(match run.report.endpoint.as_ref().filter(|e| !e.local) {
            Some(e) => format!(
                "the engine is remote ({}, from {}): the build's disk is that host's, and \
                 nothing on this machine is deleted for it",
                e.host, e.source
            ),
            None => "the engine's data root is not on this machine".into(),
        });
    };
    let Some((need, source)) = s.need else {
        return Err(
            "no target: set --need SIZE or free.need in docker/image.toml (after one \
             build with a report, the target is estimated from it)"
                .into(),
        );
    };
    if source == NeedSource::LastReport {
        run.reporter.note(
            Stage::Free,
            &format!(
                "target {} estimated from the last report (what the last build consumed, \
                 plus a quarter and 2 GB)",
                format_size(need)
            ),
        );
    }
    let catalog = s.catalog.clone();
    let env = match &s.root {
        Some(root) => headroom_disk::Environment::under_root(root),
        None => headroom_disk::Environment::host(),
    };
    // Pruning images or the build cache while a build runs could take its base image or
    // cache from under it: in the background, Docker's items are left out.
    let skip = if background {
        catalog
            .items
            .iter()
            .filter(|i| {
                matches!(
                    i.reclaim,
                    ReclaimKind::DockerImages | ReclaimKind::DockerBuildCache
                )
            })
            .map(|i| i.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    Ok(FreeJob {
        catalog,
        env,
        request: PlanRequest {
            target_path: path.to_path_buf(),
            need: Some(need),
            selection: Selection {
                skip,
                ..Selection::default()
            },
            protect: s.protect.clone(),
        },
        need,
        dry_run: !s.may_delete(),
    })
}

/// Record the free stage's report; fail when its target was not met (unless the build,
/// run alongside, fit anyway).
fn finish(run: &mut Run<'_>, freed: Freed, need: u64, built: Option<bool>) -> Result<Outcome> {
    let Freed {
        report,
        via_sudo,
        no_sudo,
    } = freed;
    if let Some(message) = no_sudo {
        run.report.free = Some(report.clone());
        run.reporter.free_plan(&report);
        run.reporter.warning(Stage::Free, &message);
        return Ok(Outcome::Skipped(message));
    }
    if via_sudo {
        run.reporter.note(
            Stage::Free,
            "root-owned items reclaimed through `sudo -n` (the plan handed to a privileged \
             helper for this step only)",
        );
    }
    let met = report.target_met;
    let available = report.filesystem.available_after;
    let mount = report.filesystem.mount_point.clone();
    run.report.disk.freed_bytes = Some(report.freed_bytes);
    run.report.free = Some(report.clone());
    if report.dry_run {
        run.reporter.free_plan(&report);
        return Ok(Outcome::Skipped(
            "not a GitHub-hosted runner: plan printed, nothing deleted (pass --yes to free)".into(),
        ));
    }
    run.reporter.note(
        Stage::Free,
        &format!(
            "{} freed in {:.1} s; {} available on {mount}",
            format_size(report.freed_bytes),
            report.seconds,
            format_size(available)
        ),
    );
    if !met {
        let message = format!(
            "{} available on {mount}, {} needed",
            format_size(available),
            format_size(need)
        );
        if built == Some(true) {
            return Ok(Outcome::Skipped(format!(
                "target not met ({message}), but the build fit"
            )));
        }
        bail!("free: {message}");
    }
    Ok(Outcome::Passed)
}

/// --free-in-background: plan and reclaim on a blocking thread while lint and build go on.
pub(crate) fn start_in_background(
    run: &mut Run<'_>,
    data_root: Option<&Path>,
) -> Result<Option<BackgroundFree>> {
    let job = match job(run, data_root, true) {
        Ok(job) => job,
        Err(why) => {
            run.record(Stage::Free, 0.0, &Ok(Outcome::Skipped(why)));
            return Ok(None);
        }
    };
    run.reporter.stage_started(Stage::Free);
    let floor = run.settings.free_floor.unwrap_or(job.need / 4);
    let need = job.need;
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let task = tokio::task::spawn_blocking(move || {
        // No progress bars: the build's lines are on the terminal meanwhile.
        let report = job.run(&headroom_disk::NoProgress);
        let _ = done_tx.send(true);
        report
    });
    run.report.disk.free_in_background = true;
    run.report.disk.floor_bytes = Some(floor);
    run.reporter.note(
        Stage::Free,
        &format!(
            "running in the background (target {}; the build keeps {} available until it \
             is done)",
            format_size(need),
            format_size(floor)
        ),
    );
    Ok(Some(BackgroundFree {
        task,
        done,
        floor,
        need,
        started: Instant::now(),
    }))
}

/// Wait for the free stage run alongside the build, and record it.
pub(crate) async fn finish_in_background(
    run: &mut Run<'_>,
    bg: BackgroundFree,
    built: bool,
) -> Result<()> {
    let result = match bg.task.await {
        Ok(Ok(report)) => finish(run, report, bg.need, Some(built)),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(anyhow::anyhow!("the free stage's reclaim thread: {e}")),
    };
    run.record(Stage::Free, bg.started.elapsed().as_secs_f64(), &result);
    result.map(|_| ())
}
