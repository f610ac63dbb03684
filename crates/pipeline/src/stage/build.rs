//! The build stage, in the jobs it does: choose the backend; watch the disk (the data
//! root's filesystem here, or a remote engine's own usage); follow the build's steps; keep a
//! floor of free space while the free stage still deletes in the background (stop between
//! steps, wait, resume from the cache); record the disk's timeline and each step's budget;
//! record the image; and, when the build fails, say why in plain words (a full disk: where,
//! and what could have been reclaimed; a base image that could not be pulled).

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use headroom_disk::{PlanRequest, Sample, Selection, Timeline, WatchConfig, Watchdog, format_size};
use headroom_docker::auth::Credentials;
use headroom_docker::build::{self, Backend, BuildError, BuildEvent, BuildOutcome, BuildSpec};
use headroom_docker::engine::Engine;

use super::Stage;
use super::context::{Outcome, Run};
use super::free::BackgroundFree;
use crate::report::{Cause, EngineDisk, EngineSample};
use crate::reporter::Reporter;
use crate::settings::Settings;
use crate::{budget, policy};

/// Build the image; `watch` is the data root when it is on this machine, `background` the
/// free stage when it runs alongside, `credentials` the push registry's (to pull what a
/// builder pushed).
pub(crate) async fn run(
    run: &mut Run<'_>,
    engine: &Engine,
    spec: &BuildSpec,
    watch: Option<&Path>,
    background: Option<&BackgroundFree>,
    credentials: Option<&Credentials>,
) -> Result<Outcome> {
    let backend = choose_backend(run.settings, spec).await?;
    let spec = &super::output::prepare(run, engine, backend, spec).await?;
    let build_start = Instant::now();
    let watchers = Watchers::start(engine, watch)?;
    let reporter = run.reporter;
    reporter.build_started(&spec.references(), &format!("{backend:?}"));
    let steps = Steps::default();
    let on_event = |e: BuildEvent| steps.follow(reporter, build_start, e);
    let guard = background.zip(watch).filter(|(bg, _)| bg.freeing());
    let (result, stops) =
        build_keeping_floor(engine, backend, spec, &on_event, guard, reporter, &steps).await?;
    // The route's end (the builder's state freed, the image pulled) is watched too: its
    // peak is the build's.
    let routed = match &result {
        Ok(outcome) => super::output::finish(run, engine, spec, outcome, credentials).await,
        Err(_) => Ok(()),
    };
    let timeline = watchers.stop(run, engine).await;
    run.report.disk.build_stops = stops;
    if let Some(t) = &timeline {
        record_timeline(run, t, &steps.into_starts(), build_start);
    }
    match result {
        Ok(outcome) => {
            routed?;
            record_image(run, engine, spec, outcome).await;
            Ok(Outcome::Passed)
        }
        Err(e) => Err(failure(run, e, spec, watch, timeline.as_ref())),
    }
}

/// The backend for `--backend` (auto: buildx when the build needs BuildKit's features).
async fn choose_backend(s: &Settings, spec: &BuildSpec) -> Result<Backend> {
    let choice = s.backend;
    let owned = spec.clone();
    Ok(
        tokio::task::spawn_blocking(move || build::choose_backend(choice, &owned))
            .await
            .context("choosing the backend")??,
    )
}

/// What watches the disk over the build: the data root's filesystem when it is on this
/// machine; a remote engine's own usage otherwise.
struct Watchers {
    local: Option<Watchdog>,
    remote: Option<EngineDog>,
}

impl Watchers {
    fn start(engine: &Engine, watch: Option<&Path>) -> Result<Watchers> {
        let local = match watch {
            Some(p) => Some(Watchdog::start(
                WatchConfig {
                    path: p.to_path_buf(),
                    interval: Duration::from_millis(500),
                    floor: None,
                },
                |_| {},
            )?),
            None => None,
        };
        // A remote engine's disk cannot be read here: its own usage is sampled instead.
        let remote = (!engine.endpoint.is_local()).then(|| EngineDog::start(engine));
        Ok(Watchers { local, remote })
    }

    /// Stop both; the remote engine's usage goes to the report (with a line when it was
    /// read), the local timeline is returned.
    async fn stop(self, run: &mut Run<'_>, engine: &Engine) -> Option<Timeline> {
        let timeline = self.local.map(Watchdog::stop);
        if let Some(d) = self.remote {
            let disk = d.stop(engine).await;
            if let Some(peak) = disk.peak_bytes {
                run.reporter.note(
                    Stage::Build,
                    &format!(
                        "the remote engine at {} held {} at most during the build ({} before, \
                         {} after; its own count: images, containers, volumes, build cache)",
                        disk.host,
                        format_size(peak),
                        disk.before_bytes
                            .map(format_size)
                            .unwrap_or_else(|| "?".into()),
                        disk.after_bytes
                            .map(format_size)
                            .unwrap_or_else(|| "?".into()),
                    ),
                );
            }
            run.report.disk.engine = Some(disk);
        }
        timeline
    }
}

/// Samples a remote engine's usage (`docker system df`) while the build runs.
struct EngineDog {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<EngineSample>>,
    host: String,
}

impl EngineDog {
    fn start(engine: &Engine) -> EngineDog {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let sampled = engine.clone();
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut samples = Vec::new();
            loop {
                if let Ok(used) = headroom_docker::diagnose::engine_used_bytes(&sampled).await {
                    samples.push(EngineSample {
                        ms: start.elapsed().as_millis() as u64,
                        used_bytes: used,
                    });
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            samples
        });
        EngineDog {
            stop,
            task,
            host: engine.endpoint.host.clone(),
        }
    }

    /// End the sampling, with one last reading after the build.
    async fn stop(self, engine: &Engine) -> EngineDisk {
        let _ = self.stop.send(());
        let mut samples = self.task.await.unwrap_or_default();
        let after = headroom_docker::diagnose::engine_used_bytes(engine)
            .await
            .ok();
        if let (Some(a), Some(last)) = (after, samples.last().map(|s| s.ms)) {
            samples.push(EngineSample {
                ms: last + 1,
                used_bytes: a,
            });
        }
        EngineDisk {
            host: self.host,
            before_bytes: samples.first().map(|s| s.used_bytes),
            peak_bytes: samples.iter().map(|s| s.used_bytes).max(),
            after_bytes: after,
            samples,
        }
    }
}

/// The build's steps as they start: the one running now (where a stop happens), and each
/// one's start, for the disk budget per step.
#[derive(Default)]
struct Steps {
    current: Mutex<String>,
    starts: Mutex<Vec<(u64, String)>>,
}

impl Steps {
    /// Pass a build event on to the reporter, and note a step's start.
    fn follow(&self, reporter: &dyn Reporter, build_start: Instant, e: BuildEvent) {
        reporter.build_event(&e);
        if let BuildEvent::Step { name, .. } = e {
            let ms = build_start.elapsed().as_millis() as u64;
            self.starts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((ms, name.clone()));
            *self.current.lock().unwrap_or_else(|p| p.into_inner()) = name;
        }
    }

    fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn into_starts(self) -> Vec<(u64, String)> {
        self.starts.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

/// Build; while the free stage deletes in the background (`guard`), keep its floor: under
/// it, the build is stopped between steps (the engine cancels the running step and keeps
/// the finished ones as cache), waits for the free stage, and goes on. Gives the build's
/// result and how often it was stopped.
async fn build_keeping_floor(
    engine: &Engine,
    backend: Backend,
    spec: &BuildSpec,
    on_event: &dyn build::BuildProgress,
    guard: Option<(&BackgroundFree, &Path)>,
    reporter: &dyn Reporter,
    steps: &Steps,
) -> Result<(Result<BuildOutcome, BuildError>, u32)> {
    let mut stops = 0u32;
    let result = loop {
        let attempt = build::build(engine, backend, spec, on_event);
        let Some((bg, path)) = guard.filter(|(bg, _)| bg.freeing()) else {
            break attempt.await;
        };
        let available = headroom_disk::available_bytes(path)?;
        if available < bg.floor {
            reporter.note(
                Stage::Build,
                &format!(
                    "waiting for the free stage: {} available on the data root's \
                     filesystem, under the floor of {}",
                    format_size(available),
                    format_size(bg.floor)
                ),
            );
            bg.wait_done().await;
            continue;
        }
        let (crossed_tx, crossed) = tokio::sync::oneshot::channel::<Sample>();
        let floor_dog = Watchdog::start(
            WatchConfig {
                path: path.to_path_buf(),
                interval: Duration::from_millis(100),
                floor: Some(bg.floor),
            },
            move |sample| {
                let _ = crossed_tx.send(sample);
            },
        )?;
        let crossed_while_freeing = async {
            let sample = crossed.await.ok()?;
            bg.freeing().then_some(sample)
        };
        tokio::select! {
            r = attempt => {
                floor_dog.stop();
                break r;
            }
            Some(sample) = crossed_while_freeing => {
                floor_dog.stop();
                stops += 1;
                let at = steps.current();
                reporter.note(
                    Stage::Build,
                    &format!(
                        "{} available, under the floor of {} while the free stage is \
                         still deleting: build stopped at {at:?}; it resumes from the \
                         build cache when the free stage is done",
                        format_size(sample.available_bytes),
                        format_size(bg.floor)
                    ),
                );
                bg.wait_done().await;
            }
        }
    };
    Ok((result, stops))
}

/// The data root's free space over the build: the low-water mark, the timeline, and the
/// disk budget of each step.
fn record_timeline(run: &mut Run<'_>, t: &Timeline, steps: &[(u64, String)], build_start: Instant) {
    run.reporter.disk(t);
    run.report.disk.low_water_bytes = Some(t.low_water_bytes);
    run.report.disk.timeline = Some(t.clone());
    let phases = budget::build_phases(
        &t.samples,
        steps,
        run.ms(build_start),
        build_start.elapsed().as_millis() as u64,
    );
    run.report.disk.phases.extend(phases);
}

/// The build's outcome, and the image's id, size and layers as the engine has them.
async fn record_image(run: &mut Run<'_>, engine: &Engine, spec: &BuildSpec, outcome: BuildOutcome) {
    // By id when the backend reported one, else by the first tag.
    let id = outcome
        .image_id
        .clone()
        .or_else(|| spec.references().first().cloned());
    run.report.build = Some(outcome);
    if let Some(id) = id {
        if let Ok(inspect) = engine.docker.inspect_image(&id).await {
            let r = &mut run.report;
            r.image.id = inspect.id.clone();
            r.image.size_bytes = inspect.size.map(|s| s.max(0) as u64);
            r.image.layers = inspect.root_fs.and_then(|fs| fs.layers).map(|l| l.len());
        }
    }
}

/// A failed build's error: the builder's message, with plain words for a full disk or a
/// base image that could not be pulled, and the build's last lines.
fn failure(
    run: &mut Run<'_>,
    e: BuildError,
    spec: &BuildSpec,
    watch: Option<&Path>,
    timeline: Option<&Timeline>,
) -> anyhow::Error {
    let mut message = e.message.clone();
    if e.no_space {
        run.report.cause = Some(Cause::NoSpace);
        message.push_str(&no_space_advice(run, watch, timeline));
    }
    if let Some(hint) = policy::base_pull_hint(&message, &e.last_lines, &spec.build_args) {
        message.push_str(&hint);
    }
    if !e.last_lines.is_empty() {
        message.push_str("\nlast build lines:\n  ");
        message.push_str(&e.last_lines.join("\n  "));
    }
    anyhow::anyhow!(message)
}

/// Plain words for a build that died of a full disk: which filesystem, how low it went,
/// and what the free stage could have reclaimed (recorded in the report too).
fn no_space_advice(run: &mut Run<'_>, watch: Option<&Path>, timeline: Option<&Timeline>) -> String {
    let settings = run.settings;
    let mut s = String::from("\nThe build ran out of disk space");
    if let Some(e) = run.report.endpoint.as_ref().filter(|e| !e.local) {
        s.push_str(&format!(
            " on the remote engine at {}: its disk, not this machine's, is full. Free \
             space on that host (docker system prune, a bigger disk for its data root); \
             the free stage here cannot.",
            e.host
        ));
        return s;
    }
    if let Some(p) = watch {
        s.push_str(&format!(
            " on the filesystem of Docker's data root {}",
            p.display()
        ));
        if let Ok(u) = headroom_disk::usage(p) {
            s.push_str(&format!(
                " ({} of {} available now)",
                format_size(u.available_bytes),
                format_size(u.total_bytes)
            ));
        }
    }
    if let Some(t) = timeline {
        s.push_str(&format!(
            "; low-water mark {}",
            format_size(t.low_water_bytes)
        ));
    }
    s.push('.');
    let Some(p) = watch else {
        return s;
    };
    if let Ok(usage) = headroom_disk::usage(p)
        && let Some(best) = super::place::candidates(settings, &usage).first()
    {
        s.push_str(&format!(
            " A second disk with {} free was not used: {} ({}); the free stage moves \
             the data root there when the target (--need) does not fit here.",
            format_size(best.available_bytes),
            best.mount_point.display(),
            best.fs_type
        ));
    }
    let env = match &settings.root {
        Some(root) => headroom_disk::Environment::under_root(root),
        None => headroom_disk::Environment::host(),
    };
    let request = PlanRequest {
        target_path: p.to_path_buf(),
        need: None,
        selection: Selection::default(),
        protect: settings.protect.clone(),
    };
    if let Ok(plan) = headroom_disk::plan(
        &settings.catalog,
        &env,
        &request,
        &headroom_disk::NoProgress,
    ) {
        let names: Vec<String> = plan.selected().map(|i| i.spec.name.clone()).collect();
        let skipped = if settings.skipped(Stage::Free) {
            "free stage skipped; "
        } else {
            ""
        };
        s.push_str(&format!(
            " {skipped}{} reclaimable{}{}",
            format_size(plan.planned_bytes()),
            if names.is_empty() { "" } else { ": " },
            names.join(", ")
        ));
        s.push_str(
            ". Run the free stage with a target (--need SIZE), or move Docker's data root \
             to a bigger disk.",
        );
        run.report.disk.reclaimable_bytes = Some(plan.planned_bytes());
        run.report.disk.reclaimable_items = names;
    }
    s
}
