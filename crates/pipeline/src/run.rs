//! The pipeline itself: [`Pipeline::run`] takes resolved [`Settings`], runs the declared
//! stages in order — lint → free → build → inspect → smoke → push, with the engine, git and
//! the registry credentials asked before the first stage and the lint before anything is
//! deleted — and returns the [`Report`] it built (also written to the settings' report
//! path). Ctrl-C and SIGTERM stop it: the build request is dropped (the engine removes the
//! build's containers, the buildx child is killed by its guard) and the report says
//! `interrupted`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use headroom_disk::{
    FreeReport, PlanRequest, ReclaimKind, ReclaimOptions, Sample, Selection, Timeline, WatchConfig,
    Watchdog, format_size,
};
use headroom_docker::auth::{self, ResolveOptions};
use headroom_docker::build::{self, BuildEvent, BuildSpec};
use headroom_docker::diagnose::diagnose;
use headroom_docker::engine::{Engine, EngineFacts};
use headroom_docker::push::{self, RetryPolicy};
use headroom_docker::relocate;
use headroom_docker::smoke::{self, GpuPolicy};
use headroom_docker::tags;

use crate::budget::{self, Phase};
use crate::gate::InspectReport;
use crate::place::{self, Method, PlacementReport, StoreSwitch, store_name};
use crate::policy::{self, SmokeExpectations};
use crate::settings::{ConfigError, EngineStore, NeedSource, Settings};
use crate::{
    Cause, EndpointReport, EngineDisk, EngineSample, Report, ReportError, Reporter, SmokeReport,
    Stage, StageReport, StageStatus, github,
};

/// Why a pipeline run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The settings could not be resolved: nothing ran, no report was written.
    #[error(transparent)]
    Settings(#[from] ConfigError),
    /// A stage failed (or the engine, git or the credentials did before the first one).
    #[error("{message}")]
    Failed {
        /// The stage that failed; `None` before the first stage.
        stage: Option<Stage>,
        message: String,
        report: Box<Report>,
    },
    /// Ctrl-C or SIGTERM stopped the run.
    #[error("{message}")]
    Interrupted {
        message: String,
        report: Box<Report>,
    },
    /// The report could not be written; `failure` is the run's own failure, if any.
    #[error("writing the report {}: {source}", path.display())]
    Report {
        path: PathBuf,
        source: ReportError,
        failure: Option<String>,
    },
}

impl PipelineError {
    /// The exit status a command should end with: 130 when interrupted, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            PipelineError::Interrupted { .. } => 130,
            _ => 1,
        }
    }

    /// The report of the run, when it got as far as making one.
    pub fn report(&self) -> Option<&Report> {
        match self {
            PipelineError::Failed { report, .. } | PipelineError::Interrupted { report, .. } => {
                Some(report)
            }
            _ => None,
        }
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

/// What placement did.
enum Placed {
    /// The data root stays (the target is met, or deleting follows).
    Stay,
    /// A dry run: the move it would make, as the stage's skip reason.
    Planned(String),
    /// The data root is now here.
    Moved(PathBuf),
}

/// One stage's outcome, as the pipeline sees it.
enum Outcome {
    Passed,
    Skipped(String),
}

/// The image pipeline over resolved settings.
#[derive(Debug)]
pub struct Pipeline {
    settings: Settings,
}

/// What a run carries from stage to stage.
struct Run<'r> {
    report: Report,
    reporter: &'r dyn Reporter,
    /// The stage running now, for the error's `stage`.
    current: Option<Stage>,
    /// The inspect stage's report, typed, for the step summary.
    inspect: Option<InspectReport>,
    /// When the run started: phases are timed from here.
    started: Instant,
    /// The data root, when it is on this machine: each stage's bytes are read on it.
    watch: Option<PathBuf>,
}

impl Run<'_> {
    fn available(&self) -> Option<u64> {
        headroom_disk::available_bytes(self.watch.as_deref()?).ok()
    }

    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    /// A stage's disk phase, read at its two ends (the build's come from its samples; the
    /// lint takes no disk).
    fn stage_phase(&mut self, name: Stage, start: Instant, before: Option<u64>) {
        if matches!(name, Stage::Lint | Stage::Build) {
            return;
        }
        if let (Some(before), Some(after)) = (before, self.available()) {
            let phase = Phase::between(
                &name.to_string(),
                self.ms(start),
                self.ms(Instant::now()),
                before,
                after,
            );
            self.report.disk.phases.push(phase);
        }
    }
}

/// Run a stage body unless `--skip` names it, then record it. Evaluates to the stage's
/// `Result<()>`.
macro_rules! stage {
    ($self:ident, $run:ident, $name:expr, $body:expr) => {{
        let name = $name;
        $run.current = Some(name);
        let start = Instant::now();
        let before = $run.available();
        let result = if $self.settings.skipped(name) {
            Ok(Outcome::Skipped("--skip".into()))
        } else {
            $run.reporter.stage_started(name);
            $body.await
        };
        record(&mut *$run, name, start.elapsed().as_secs_f64(), &result);
        if !$self.settings.skipped(name) {
            $run.stage_phase(name, start, before);
        }
        result.map(|_| ())
    }};
}

/// Write the run's report and say where; one that cannot be written is the run's error (with
/// the run's own `failure` kept in it). Gives `failure` back.
pub(crate) fn write_report(
    report: &Report,
    path: &Path,
    failure: Option<String>,
    reporter: &dyn Reporter,
) -> Result<Option<String>, PipelineError> {
    if let Err(source) = report.write(path) {
        return Err(PipelineError::Report {
            path: path.to_path_buf(),
            source,
            failure,
        });
    }
    reporter.report_written(path);
    Ok(failure)
}

/// Add a stage's outcome to the report and tell the reporter.
fn record(run: &mut Run<'_>, name: Stage, seconds: f64, result: &Result<Outcome>) {
    let (status, reason) = match result {
        Ok(Outcome::Passed) => (StageStatus::Passed, None),
        Ok(Outcome::Skipped(why)) => (StageStatus::Skipped, Some(why.clone())),
        Err(e) => (StageStatus::Failed, Some(format!("{e:#}"))),
    };
    let stage = StageReport {
        name,
        status,
        seconds,
        reason,
    };
    run.reporter.stage_finished(&stage);
    run.report.stages.push(stage);
}

/// The free stage's work, ready to run on a blocking thread.
struct FreeJob {
    catalog: headroom_disk::Catalog,
    env: headroom_disk::Environment,
    request: PlanRequest,
    need: u64,
    dry_run: bool,
}

impl FreeJob {
    /// Measure, plan and reclaim (blocking: walks and deletes).
    fn run(self, progress: &dyn headroom_disk::Progress) -> Result<FreeReport> {
        let plan = headroom_disk::plan(&self.catalog, &self.env, &self.request, progress)
            .with_context(|| {
                format!(
                    "planning to free space on {}",
                    self.request.target_path.display()
                )
            })?;
        Ok(headroom_disk::reclaim(
            &plan,
            ReclaimOptions {
                dry_run: self.dry_run,
            },
            progress,
        ))
    }
}

/// The free stage running alongside the build (--free-in-background).
struct BackgroundFree {
    task: tokio::task::JoinHandle<Result<FreeReport>>,
    /// Turns true when the reclaim is over.
    done: tokio::sync::watch::Receiver<bool>,
    /// Available bytes the build keeps while the reclaim runs.
    floor: u64,
    need: u64,
    started: Instant,
}

impl BackgroundFree {
    fn freeing(&self) -> bool {
        !*self.done.borrow()
    }

    async fn wait_done(&self) {
        let mut done = self.done.clone();
        // An error means the reclaim thread is gone: as good as done.
        let _ = done.wait_for(|d| *d).await;
    }
}

/// What the engine and git said before the first stage.
struct Facts {
    engine: Engine,
    facts: Option<EngineFacts>,
    /// The data root, when it is on this machine: the free stage's and the watchdog's path.
    watch: Option<PathBuf>,
    spec: BuildSpec,
}

impl Pipeline {
    pub fn new(settings: Settings) -> Pipeline {
        Pipeline { settings }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Run the pipeline on a runtime of its own (for a `main` that has none).
    pub fn run(&self, reporter: &dyn Reporter) -> Result<Report, PipelineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| PipelineError::Failed {
                stage: None,
                message: format!("starting the async runtime: {e}"),
                report: Box::default(),
            })?;
        let result = runtime.block_on(self.run_async(reporter));
        // After Ctrl-C a background free stage may still be deleting (only what it planned):
        // the run returns rather than wait for it.
        runtime.shutdown_background();
        result
    }

    /// Run the pipeline on the caller's tokio runtime (multi-threaded).
    pub async fn run_async(&self, reporter: &dyn Reporter) -> Result<Report, PipelineError> {
        if !self.settings.variants.is_empty() {
            return Box::pin(self.run_matrix(reporter)).await;
        }
        let mut run = Run {
            report: Report::default(),
            reporter,
            current: None,
            inspect: None,
            started: Instant::now(),
            watch: None,
        };
        let start = run.started;
        let mut interrupted = false;
        // Ctrl-C drops the stages' future: the build request is cancelled, and the engine
        // removes the build's intermediate containers (forcerm). SIGTERM is how CI cancels a
        // job: handled the same way, so containers and the buildx child are cleaned up by
        // their drop guards.
        let result = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            Err(e) => Err(anyhow::anyhow!("installing the SIGTERM handler: {e}")),
            Ok(mut terminate) => tokio::select! {
                r = self.stages(&mut run) => r,
                _ = tokio::signal::ctrl_c() => {
                    interrupted = true;
                    Err(anyhow::anyhow!("interrupted (Ctrl-C): the pipeline was stopped"))
                }
                _ = terminate.recv() => {
                    interrupted = true;
                    Err(anyhow::anyhow!("terminated (SIGTERM): the pipeline was stopped"))
                }
            },
        };
        let mut report = run.report;
        report.seconds = start.elapsed().as_secs_f64();
        let failure = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(f) = &failure {
            report.errors.push(f.clone());
        }
        if interrupted {
            report.cause = Some(Cause::Interrupted);
        }
        let failure = write_report(&report, &self.settings.report_path, failure, reporter)?;
        match failure {
            None => Ok(report),
            Some(message) if interrupted => Err(PipelineError::Interrupted {
                message,
                report: Box::new(report),
            }),
            Some(message) => Err(PipelineError::Failed {
                stage: run.current,
                message,
                report: Box::new(report),
            }),
        }
    }

    /// The engine and git, asked at once; tags and labels from git.
    async fn facts(&self, run: &mut Run<'_>) -> Result<Facts> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let dirs = self.settings.git_dirs.clone();
        let git_task = tokio::task::spawn_blocking(move || {
            // The first of the candidates that is in a repository.
            let mut last = tags::GitFacts::default();
            for dir in dirs.iter().filter(|d| d.is_dir()) {
                last = tags::git_facts(dir, &env);
                if last.sha.is_some() || last.branch.is_some() {
                    break;
                }
            }
            last
        });
        let engine = Engine::from_env(Duration::from_secs(5)).await?;
        let facts = engine.facts().await.ok();
        let git = git_task.await.context("reading git facts")?;
        run.report.engine = facts.clone();
        run.report.endpoint = Some(EndpointReport {
            host: engine.endpoint.host.clone(),
            source: engine.endpoint.source.clone(),
            tls: engine.endpoint.tls.is_some(),
            local: engine.endpoint.is_local(),
        });
        let data_root = facts.as_ref().and_then(|f| f.data_root.clone());
        let local = engine.endpoint.is_local();
        let watch = data_root.filter(|p| local && p.exists());

        let mut spec = self.settings.spec.clone();
        spec.tags = tags::compute_tags(&git, &self.settings.tag_rules)?;
        if spec.tags.is_empty() {
            spec.tags.push("latest".into());
        }
        if let Some(v) = &self.settings.variant {
            spec.tags = spec
                .tags
                .iter()
                .map(|t| format!("{t}-{}", v.name))
                .collect();
            for t in &v.tags {
                if !spec.tags.contains(t) {
                    spec.tags.push(t.clone());
                }
            }
        }
        spec.labels = tags::oci_labels(&git, None, &rfc3339_now());
        let r = &mut run.report;
        r.image.name = spec.image.clone();
        r.image.tags = spec.tags.clone();
        r.image.references = spec.references();
        r.disk.path = watch.clone();
        if let Some(p) = &watch {
            r.disk.available_before = headroom_disk::available_bytes(p).ok();
        }
        Ok(Facts {
            engine,
            facts,
            watch,
            spec,
        })
    }

    async fn stages(&self, run: &mut Run<'_>) -> Result<()> {
        // The credentials need only the repository's host: asked first, so a half-set pair
        // fails in seconds, before the engine is asked anything.
        let credentials = self.credentials(&self.settings.spec).await?;
        let logins = self
            .cache_logins(&self.settings.spec, credentials.as_ref())
            .await?;
        let Facts {
            mut engine,
            mut facts,
            mut watch,
            mut spec,
        } = self.facts(run).await?;
        spec.registry_logins = logins;
        run.watch = watch.clone();
        // Cheap checks before anything destructive: the engine has answered and the
        // credentials are resolved; a Dockerfile the lint stops must not cost a deleted byte.
        stage!(self, run, Stage::Lint, self.lint(run, &spec))?;
        let in_background = self.settings.free_in_background && !self.settings.skipped(Stage::Free);
        let background = if in_background {
            // Placement first: a move restarts the engine, which no build may see.
            let moved = match watch.as_deref() {
                Some(root) => self.place(run, &engine, root).await?,
                None => Placed::Stay,
            };
            if let Placed::Moved(to) = moved {
                (engine, facts) = self.reconnect(run, &to).await?;
                run.watch = Some(to.clone());
                watch = Some(to);
                record(run, Stage::Free, 0.0, &Ok(Outcome::Passed));
                None
            } else {
                self.start_free_in_background(run, watch.as_deref())?
            }
        } else {
            stage!(
                self,
                run,
                Stage::Free,
                self.free(run, &engine, watch.as_deref())
            )?;
            if let Some(to) = self.moved_to(run) {
                (engine, facts) = self.reconnect(run, &to).await?;
                run.watch = Some(to.clone());
                watch = Some(to);
            }
            None
        };
        let watch = watch.as_deref();
        let built = stage!(
            self,
            run,
            Stage::Build,
            self.build(run, &engine, &spec, watch, background.as_ref())
        );
        if let Some(bg) = background {
            let freed = self.finish_free_in_background(run, bg, built.is_ok()).await;
            // A failed build says more than the free stage's shortfall: report that one,
            // and the free stage's cause as a warning.
            match freed {
                Err(e) if built.is_err() => run.reporter.warning(Stage::Free, &format!("{e:#}")),
                other => {
                    if built.is_ok() {
                        other?;
                    }
                }
            }
        }
        if let Err(e) = built {
            let d = diagnose(&engine, facts.as_ref()).await;
            for line in d.lines() {
                run.reporter
                    .note(Stage::Build, &format!("diagnostics: {line}"));
            }
            run.report.diagnostics = Some(d);
            run.current = Some(Stage::Build);
            return Err(e);
        }
        stage!(self, run, Stage::Inspect, self.inspect(run, &engine, &spec))?;
        stage!(
            self,
            run,
            Stage::Smoke,
            self.smoke(run, &engine, facts.as_ref(), &spec)
        )?;
        let pushed = stage!(
            self,
            run,
            Stage::Push,
            self.push(run, &engine, &spec, credentials.clone())
        );
        if let Some(p) = watch {
            run.report.disk.available_after = headroom_disk::available_bytes(p).ok();
        }
        pushed?;
        run.current = None;
        self.outputs(run)?;
        Ok(())
    }

    /// The free stage's first choice (place.rs): nothing, when the target is met; a move of
    /// the data root to another filesystem, when one has room and the engine may restart;
    /// else the deleting that follows. A store switch (`--engine-store`) rides on the same
    /// restart, or has one of its own. The choice and its reason go to the report.
    async fn place(&self, run: &mut Run<'_>, engine: &Engine, root: &Path) -> Result<Placed> {
        let s = &self.settings;
        let current_store = engine.facts().await.ok().map(|f| f.containerd_store);
        let switch = s
            .engine_store
            .map(|w| w == EngineStore::Containerd)
            .filter(|want| current_store != Some(*want));
        let need = s.need.map(|(n, _)| n);
        if need.is_none() && switch.is_none() {
            return Ok(Placed::Stay);
        }
        let usage = headroom_disk::usage(root)
            .with_context(|| format!("free: the data root {}", root.display()))?;
        let need = need.unwrap_or(0);
        let candidates = self.other_filesystems(&usage);
        let data_root_bytes = if usage.available_bytes < need && !candidates.is_empty() {
            let root = root.to_path_buf();
            tokio::task::spawn_blocking(move || headroom_disk::measure(&[root]).size.disk_bytes)
                .await
                .context("measuring the data root")?
        } else {
            0
        };
        let restart_blocked = self.restart_blocked(engine).await;
        let move_blocked = if s.move_data_root {
            restart_blocked.clone()
        } else {
            Some("moving is off (--no-move, or free.move_data_root = false)".into())
        };
        let choice = place::choose(
            need,
            usage.available_bytes,
            data_root_bytes,
            &candidates,
            move_blocked.as_deref(),
        );
        let mut report = PlacementReport {
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
            copied_bytes: None,
            available_after: None,
            config: None,
            backup: None,
            kept_keys: Vec::new(),
            service: None,
            store: None,
            candidates,
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
        let config = place::daemon_config(s.root.as_deref());
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
        let what = match (moving, switch) {
            (true, Some(on)) => format!(
                "move the data root {} to {} and switch to the {} image store",
                root.display(),
                to.display(),
                store_name(on)
            ),
            (true, None) => format!("move the data root {} to {}", root.display(), to.display()),
            (false, Some(on)) => format!("switch the engine to the {} image store", store_name(on)),
            (false, None) => unreachable!("nothing to do was handled above"),
        };
        if report.dry_run {
            let why = format!(
                "not a GitHub-hosted runner: would {what} (about {:.0} s, {} copied; {} and the \
                 engine's restart through {}); pass --yes to do it",
                choice.estimated_seconds.max(place::RESTART_SECONDS),
                format_size(data_root_bytes),
                config.display(),
                service.name
            );
            run.report.placement = Some(report);
            return Ok(Placed::Planned(why));
        }
        run.reporter.note(
            Stage::Free,
            &format!(
                "placement: {}; going to {what}: restarting the engine through {}",
                choice.reason, service.name
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
        let moved = match relocate::move_data_root(&request).await {
            Ok(m) => m,
            Err(e) => {
                run.report.placement = Some(report);
                bail!("free: {what}: {e}");
            }
        };
        report.restarted = true;
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
            report.available_after = headroom_disk::available_bytes(&to).ok();
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
        Ok(Placed::Moved(to))
    }

    /// The other local filesystems the data root could move to, most room first.
    fn other_filesystems(&self, usage: &headroom_disk::FsUsage) -> Vec<headroom_disk::Candidate> {
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
            self.settings.root.as_deref(),
            &headroom_disk::statvfs_probe,
        )
    }

    /// Why the engine may not be restarted here (for a move or a store switch), when it may
    /// not.
    async fn restart_blocked(&self, engine: &Engine) -> Option<String> {
        let s = &self.settings;
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

    /// The new data root, when the free stage moved it.
    fn moved_to(&self, run: &Run<'_>) -> Option<PathBuf> {
        run.report
            .placement
            .as_ref()
            .filter(|p| p.restarted)
            .map(|p| p.to.clone().unwrap_or_else(|| p.from.clone()))
    }

    /// After a move: a new connection to the restarted engine, and its facts.
    async fn reconnect(
        &self,
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

    /// What the free stage would do, or why it is skipped.
    fn free_job(
        &self,
        run: &Run<'_>,
        data_root: Option<&Path>,
        background: bool,
    ) -> std::result::Result<FreeJob, String> {
        let s = &self.settings;
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

    async fn free(
        &self,
        run: &mut Run<'_>,
        engine: &Engine,
        data_root: Option<&Path>,
    ) -> Result<Outcome> {
        if let Some(root) = data_root {
            match self.place(run, engine, root).await? {
                Placed::Moved(_) => return Ok(Outcome::Passed),
                Placed::Planned(why) => return Ok(Outcome::Skipped(why)),
                Placed::Stay => {}
            }
        }
        let job = match self.free_job(run, data_root, false) {
            Ok(job) => job,
            Err(why) => return Ok(Outcome::Skipped(why)),
        };
        let need = job.need;
        let progress = run.reporter.free_progress();
        // Deleting gigabytes blocks: keep it off the task that also watches for signals.
        let report = tokio::task::spawn_blocking(move || job.run(&*progress))
            .await
            .context("the free stage's reclaim thread")??;
        self.finish_free(run, report, need, None)
    }

    /// Record the free stage's report; fail when its target was not met (unless the build,
    /// run alongside, fit anyway).
    fn finish_free(
        &self,
        run: &mut Run<'_>,
        report: FreeReport,
        need: u64,
        built: Option<bool>,
    ) -> Result<Outcome> {
        let met = report.target_met;
        let available = report.filesystem.available_after;
        let mount = report.filesystem.mount_point.clone();
        run.report.disk.freed_bytes = Some(report.freed_bytes);
        run.report.free = Some(report.clone());
        if report.dry_run {
            run.reporter.free_plan(&report);
            return Ok(Outcome::Skipped(
                "not a GitHub-hosted runner: plan printed, nothing deleted (pass --yes to free)"
                    .into(),
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
    fn start_free_in_background(
        &self,
        run: &mut Run<'_>,
        data_root: Option<&Path>,
    ) -> Result<Option<BackgroundFree>> {
        let job = match self.free_job(run, data_root, true) {
            Ok(job) => job,
            Err(why) => {
                record(run, Stage::Free, 0.0, &Ok(Outcome::Skipped(why)));
                return Ok(None);
            }
        };
        run.reporter.stage_started(Stage::Free);
        let floor = self.settings.free_floor.unwrap_or(job.need / 4);
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

    async fn finish_free_in_background(
        &self,
        run: &mut Run<'_>,
        bg: BackgroundFree,
        built: bool,
    ) -> Result<()> {
        let result = match bg.task.await {
            Ok(Ok(report)) => self.finish_free(run, report, bg.need, Some(built)),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("the free stage's reclaim thread: {e}")),
        };
        record(
            run,
            Stage::Free,
            bg.started.elapsed().as_secs_f64(),
            &result,
        );
        result.map(|_| ())
    }

    async fn build(
        &self,
        run: &mut Run<'_>,
        engine: &Engine,
        spec: &BuildSpec,
        watch: Option<&Path>,
        background: Option<&BackgroundFree>,
    ) -> Result<Outcome> {
        let choice = self.settings.backend;
        let owned = spec.clone();
        let backend = tokio::task::spawn_blocking(move || build::choose_backend(choice, &owned))
            .await
            .context("choosing the backend")??;
        let build_start = Instant::now();
        let dog = match watch {
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
        let remote_dog = (!engine.endpoint.is_local()).then(|| EngineDog::start(engine));
        let reporter = run.reporter;
        reporter.build_started(&spec.references(), &format!("{backend:?}"));
        let step = Mutex::new(String::new());
        // Each step's start, for the disk budget per phase.
        let steps: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
        let on_event = |e: BuildEvent| {
            reporter.build_event(&e);
            if let BuildEvent::Step { name, .. } = e {
                let ms = build_start.elapsed().as_millis() as u64;
                steps
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((ms, name.clone()));
                *step.lock().unwrap_or_else(|p| p.into_inner()) = name;
            }
        };
        // While the free stage deletes in the background, the build keeps the floor: under
        // it, the build is stopped between steps (the engine cancels the running step and
        // keeps the finished ones as cache), waits for the free stage, and goes on.
        let guard = background.zip(watch).filter(|(bg, _)| bg.freeing());
        let mut stops = 0u32;
        let result = loop {
            let attempt = build::build(engine, backend, spec, &on_event);
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
                    let at = step.lock().unwrap_or_else(|p| p.into_inner()).clone();
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
        let timeline = dog.map(Watchdog::stop);
        if let Some(d) = remote_dog {
            let disk = d.stop(engine).await;
            if let Some(peak) = disk.peak_bytes {
                reporter.note(
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
        run.report.disk.build_stops = stops;
        if let Some(t) = &timeline {
            reporter.disk(t);
            run.report.disk.low_water_bytes = Some(t.low_water_bytes);
            run.report.disk.timeline = Some(t.clone());
            let steps = steps.into_inner().unwrap_or_else(|p| p.into_inner());
            run.report.disk.phases.extend(budget::build_phases(
                &t.samples,
                &steps,
                run.ms(build_start),
                build_start.elapsed().as_millis() as u64,
            ));
        }
        match result {
            Ok(outcome) => {
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
                Ok(Outcome::Passed)
            }
            Err(e) => {
                let mut message = e.message.clone();
                if e.no_space {
                    run.report.cause = Some(Cause::NoSpace);
                    message.push_str(&self.no_space_advice(run, watch, timeline.as_ref()));
                }
                if let Some(hint) =
                    policy::base_pull_hint(&message, &e.last_lines, &spec.build_args)
                {
                    message.push_str(&hint);
                }
                if !e.last_lines.is_empty() {
                    message.push_str("\nlast build lines:\n  ");
                    message.push_str(&e.last_lines.join("\n  "));
                }
                bail!(message)
            }
        }
    }

    /// Plain words for a build that died of a full disk: which filesystem, how low it went,
    /// and what the free stage could have reclaimed (recorded in the report too).
    fn no_space_advice(
        &self,
        run: &mut Run<'_>,
        watch: Option<&Path>,
        timeline: Option<&Timeline>,
    ) -> String {
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
            && let Some(best) = self.other_filesystems(&usage).first()
        {
            s.push_str(&format!(
                " A second disk with {} free was not used: {} ({}); the free stage moves \
                 the data root there when the target (--need) does not fit here.",
                format_size(best.available_bytes),
                best.mount_point.display(),
                best.fs_type
            ));
        }
        let env = match &self.settings.root {
            Some(root) => headroom_disk::Environment::under_root(root),
            None => headroom_disk::Environment::host(),
        };
        let request = PlanRequest {
            target_path: p.to_path_buf(),
            need: None,
            selection: Selection::default(),
            protect: self.settings.protect.clone(),
        };
        if let Ok(plan) = headroom_disk::plan(
            &self.settings.catalog,
            &env,
            &request,
            &headroom_disk::NoProgress,
        ) {
            let names: Vec<String> = plan.selected().map(|i| i.spec.name.clone()).collect();
            let skipped = if self.settings.skipped(Stage::Free) {
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

    /// Lint the Dockerfile before anything is built; at or above headroom.toml's `[lint]
    /// fail_on` (default: errors) the pipeline stops here.
    async fn lint(&self, run: &mut Run<'_>, spec: &BuildSpec) -> Result<Outcome> {
        let config = &self.settings.lint;
        let files = [crate::lint::lint_file(
            &spec.dockerfile,
            Some(&spec.context),
            config,
        )?];
        run.reporter.lint(&files);
        run.report.lint = Some(crate::lint::json(&files));
        if config.fail_on().fails(&files) {
            bail!(
                "{} has findings at or above the lint's fail_on level (see above; set [lint] \
                 fail_on or ignores in headroom.toml, or fix them: cargo xtask lint --fix)",
                spec.dockerfile.display()
            );
        }
        Ok(Outcome::Passed)
    }

    async fn inspect(
        &self,
        run: &mut Run<'_>,
        engine: &Engine,
        spec: &BuildSpec,
    ) -> Result<Outcome> {
        let Some(thresholds) = &self.settings.inspect else {
            return Ok(Outcome::Skipped(
                "no [inspect] table in the config (and no --inspect)".into(),
            ));
        };
        let start = Instant::now();
        let image = spec.references().remove(0);
        let reader = headroom_docker::export::export(engine, &image);
        let analysis = tokio::task::spawn_blocking(move || {
            // Verified: the image streams out of the engine at a fraction of the speed a
            // SHA-256 runs at, so checking every digest costs nothing measurable (bench
            // inspect records both).
            headroom_inspect::analyze(
                std::io::BufReader::with_capacity(1 << 20, reader),
                &headroom_inspect::AnalyzeOptions {
                    verify: true,
                    ..headroom_inspect::AnalyzeOptions::default()
                },
            )
        })
        .await
        .context("the analysis thread")?
        .with_context(|| format!("analysing {image}"))?;
        for note in &thresholds.notes {
            run.reporter.note(Stage::Inspect, &format!("note: {note}"));
        }
        let gate = thresholds.evaluate(&analysis)?;
        let dockerfile = std::fs::read_to_string(&spec.dockerfile).ok();
        let report = crate::gate::finish(
            analysis,
            dockerfile.as_deref(),
            gate,
            start.elapsed().as_secs_f64(),
        );
        run.reporter.note(
            Stage::Inspect,
            &format!(
                "{} stored, {} wasted (efficiency {:.2}%)",
                format_size(report.analysis.total_bytes),
                format_size(report.analysis.wasted_bytes),
                report.analysis.efficiency * 100.0
            ),
        );
        for h in &report.hints {
            run.reporter.note(Stage::Inspect, &format!("hint: {h}"));
        }
        let failed: Vec<String> = report
            .gate
            .iter()
            .filter(|g| !g.passed)
            .map(|g| format!("{} {} (limit {})", g.rule, g.actual, g.limit))
            .collect();
        run.report.inspect = Some(serde_json::to_value(&report)?);
        run.inspect = Some(report);
        if !failed.is_empty() {
            bail!("over the image thresholds: {}", failed.join("; "));
        }
        Ok(Outcome::Passed)
    }

    async fn smoke(
        &self,
        run: &mut Run<'_>,
        engine: &Engine,
        facts: Option<&EngineFacts>,
        spec: &BuildSpec,
    ) -> Result<Outcome> {
        let Some(config) = &self.settings.smoke else {
            return Ok(Outcome::Skipped(
                "no [smoke] table in the config (and no --gpu)".into(),
            ));
        };
        let policy = self.settings.gpu.or(config.gpu).unwrap_or_default();
        let facts = facts.cloned().unwrap_or_default();
        let gpu = smoke::gpu_request(policy, &facts).map_err(|e| anyhow::anyhow!(e))?;
        let mut report = SmokeReport {
            device: match &gpu {
                None => "cpu".into(),
                Some(g) => serde_json::to_string(g).unwrap_or_default(),
            },
            ..SmokeReport::default()
        };
        if gpu.is_none() && policy == GpuPolicy::Auto {
            let note = "no GPU on this engine (no NVIDIA runtime, no CDI devices): the smoke test runs on CPU";
            run.reporter.note(Stage::Smoke, note);
            report.note = Some(note.into());
        }
        let image = spec.references().remove(0);
        let mut env = BTreeMap::new();
        if gpu.is_some() {
            env.insert("HEADROOM_SMOKE_REQUIRE_CUDA".to_string(), "1".to_string());
        }
        if let Some(t) = &config.torch {
            env.insert("HEADROOM_SMOKE_REQUIRE_TORCH".into(), "1".into());
            env.insert("HEADROOM_SMOKE_TORCH_VERSION".into(), t.clone());
        }
        if let Some(m) = config.min_tflops {
            env.insert("HEADROOM_SMOKE_MIN_TFLOPS".into(), m.to_string());
        }
        if let Some(m) = &config.model {
            env.insert("HEADROOM_SMOKE_MODEL".into(), m.clone());
        }
        if !config.imports.is_empty() {
            env.insert("HEADROOM_SMOKE_IMPORTS".into(), config.imports.join(","));
        }
        let command = config
            .command
            .clone()
            .unwrap_or_else(|| vec!["python3".into(), "/opt/headroom/smoke.py".into()]);
        let smoke_run = smoke::run_smoke(
            engine,
            &image,
            &command,
            &env,
            gpu.clone(),
            Duration::from_secs(config.timeout.unwrap_or(600)),
        )
        .await?;
        let expect = SmokeExpectations {
            torch: config.torch.clone(),
            min_tflops: config.min_tflops,
        };
        report.mismatches = policy::smoke_mismatches(&smoke_run, &expect, gpu.is_some());
        let failed = !report.mismatches.is_empty();
        if let Some(result) = &smoke_run.result {
            run.reporter.note(Stage::Smoke, &result.to_string());
        }
        report.run = Some(smoke_run);
        if failed {
            let message = format!("smoke test failed: {}", report.mismatches.join("; "));
            run.report.smoke = Some(report);
            bail!(message);
        }
        let health = smoke::check_health(
            engine,
            &image,
            config.port.unwrap_or(8000),
            gpu,
            Duration::from_secs(config.health_timeout.unwrap_or(120)),
        )
        .await;
        match health {
            Ok(h) => {
                run.reporter.note(
                    Stage::Smoke,
                    &format!(
                        "healthy after {:.1} s: {}",
                        h.seconds,
                        h.response
                            .as_ref()
                            .map(|r| r.to_string())
                            .unwrap_or_default()
                    ),
                );
                report.health = Some(h);
                run.report.smoke = Some(report);
                Ok(Outcome::Passed)
            }
            Err(e) => {
                run.report.smoke = Some(report);
                bail!("health check: {e}")
            }
        }
    }

    /// The registry credentials, resolved before anything is built so a half-set pair or a
    /// broken config.json fails in seconds, not after the build.
    async fn credentials(&self, spec: &BuildSpec) -> Result<Option<auth::Credentials>> {
        let s = &self.settings;
        if !s.push || s.skipped(Stage::Push) {
            return Ok(None);
        }
        let host = auth::registry_host(&spec.image);
        let options = ResolveOptions {
            password_stdin: s.password.clone(),
            username: s.username.clone(),
            env: std::env::vars().collect(),
            ..ResolveOptions::default()
        };
        // Credential helpers may take their time (an unlock prompt): not on the async thread.
        Ok(
            tokio::task::spawn_blocking(move || auth::resolve(&host, &options))
                .await
                .context("resolving registry credentials")??,
        )
    }

    /// What buildx must be given for the registries of the build's cache and push: buildx
    /// authenticates to a registry cache itself and reads only Docker's config, so
    /// credentials that came from the environment or `--password-stdin` would never reach it,
    /// and a private cache would silently miss. Those credentials name "the registry": the
    /// one pushed to, or, without --push, the one registry the cache refs name. They are
    /// never handed out for any other host (a cache elsewhere uses Docker's config, `docker
    /// login`), so a password cannot travel to a registry it was not meant for.
    async fn cache_logins(
        &self,
        spec: &BuildSpec,
        push: Option<&auth::Credentials>,
    ) -> Result<Vec<auth::Credentials>> {
        let s = &self.settings;
        let given = |c: &auth::Credentials| {
            matches!(
                c.source,
                auth::CredentialSource::Env { .. } | auth::CredentialSource::Stdin
            )
        };
        let mut hosts: Vec<String> = spec
            .cache_from
            .iter()
            .chain(&spec.cache_to)
            .flat_map(|c| c.split(','))
            .filter_map(|kv| kv.trim().strip_prefix("ref="))
            .map(auth::registry_host)
            .collect();
        hosts.sort();
        hosts.dedup();
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        if s.push && !s.skipped(Stage::Push) {
            let push_host = auth::registry_host(&spec.image);
            return Ok(push
                .filter(|c| given(c) && hosts.contains(&push_host))
                .cloned()
                .into_iter()
                .collect());
        }
        let [host] = hosts.as_slice() else {
            return Ok(Vec::new());
        };
        let host = host.clone();
        let options = ResolveOptions {
            password_stdin: s.password.clone(),
            username: s.username.clone(),
            env: std::env::vars().collect(),
            ..ResolveOptions::default()
        };
        let found = tokio::task::spawn_blocking(move || auth::resolve(&host, &options))
            .await
            .context("resolving the registry cache's credentials")??;
        Ok(found.filter(|c| given(c)).into_iter().collect())
    }

    async fn push(
        &self,
        run: &mut Run<'_>,
        engine: &Engine,
        spec: &BuildSpec,
        credentials: Option<auth::Credentials>,
    ) -> Result<Outcome> {
        if !self.settings.push {
            return Ok(Outcome::Skipped(
                "--push not given: nothing leaves this machine".into(),
            ));
        }
        let reporter = run.reporter;
        let pushed = push::push_all(
            engine,
            &spec.references(),
            credentials.as_ref(),
            RetryPolicy::default(),
            &|e| reporter.push_event(&e),
        )
        .await?;
        let r = &mut run.report;
        for p in &pushed {
            r.image
                .digests
                .insert(p.reference.clone(), p.digest.clone());
        }
        r.image.digest = pushed.first().map(|p| p.digest.clone());
        Ok(Outcome::Passed)
    }

    /// On GitHub Actions: the step outputs and the step summary.
    fn outputs(&self, run: &Run<'_>) -> Result<()> {
        if !self.settings.github_outputs {
            return Ok(());
        }
        github::append_outputs(&github::outputs(&run.report))?;
        let mut md = github::step_summary(&run.report);
        if let Some(i) = &run.inspect {
            md.push('\n');
            md.push_str(&crate::gate::markdown(i));
        }
        github::append_step_summary(&md)?;
        Ok(())
    }
}

/// Now as RFC 3339 (UTC), without a date crate: from `date`, else empty.
fn rfc3339_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
