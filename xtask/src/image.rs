//! `cargo xtask image`: the pipeline — lint → free disk → build → inspect → smoke test →
//! push — the same command locally and in CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_disk::{
    Catalog, Environment, FreeReport, PlanRequest, ReclaimKind, ReclaimOptions, Sample, Selection,
    Timeline, WatchConfig, Watchdog, format_size, parse_size,
};
use headroom_docker::auth::{self, ResolveOptions};
use headroom_docker::build::{self, BackendChoice, BuildEvent, BuildSpec, SecretSpec};
use headroom_docker::diagnose::diagnose;
use headroom_docker::engine::{Engine, EngineFacts};
use headroom_docker::push::{self, PushEvent, RetryPolicy};
use headroom_docker::smoke::{self, GpuPolicy};
use headroom_docker::tags::{self, TagRules};
use headroom_pipeline::policy::{self, SmokeExpectations};
use headroom_pipeline::{Cause, Report, SmokeReport, Stage, StageReport, StageStatus, github};
use serde::{Deserialize, Serialize};

use crate::ui;

/// Run the image pipeline: lint → free → build → inspect → smoke → push.
///
/// Settings come from docker/image.toml (paths in it are relative to that file); every
/// setting can be overridden by a flag. Without --push nothing leaves the machine.
#[derive(Args, Debug, Default)]
pub(crate) struct Image {
    /// Configuration file.
    #[arg(long, value_name = "FILE", default_value = "docker/image.toml")]
    config: PathBuf,
    /// The Dockerfile [default: `dockerfile` in the config, else CONTEXT/Dockerfile].
    #[arg(long, value_name = "FILE")]
    dockerfile: Option<PathBuf>,
    /// The build context directory [default: `context` in the config, else the config's
    /// directory].
    #[arg(long, value_name = "DIR")]
    context: Option<PathBuf>,
    /// Repository to tag and push, e.g. 127.0.0.1:5000/ns/app or docker.io/org/app.
    #[arg(long, value_name = "NAME")]
    image: Option<String>,
    /// Extra tag (repeatable); `latest` and `sha-<short>` come from git.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Build argument (repeatable).
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// engine | buildx | auto: auto takes buildx when the Dockerfile or flags need BuildKit
    /// features the engine's builder lacks [default: `backend` in the config, else auto].
    #[arg(long, value_name = "BACKEND")]
    backend: Option<BackendChoice>,
    /// Import build cache (repeatable; buildx syntax, e.g. type=registry,ref=REPO:cache or
    /// type=local,src=DIR).
    #[arg(long = "cache-from", value_name = "SPEC")]
    cache_from: Vec<String>,
    /// Export build cache (repeatable; e.g. type=inline, type=local,dest=DIR;
    /// type=registry needs --push).
    #[arg(long = "cache-to", value_name = "SPEC")]
    cache_to: Vec<String>,
    /// Target platform (repeatable or comma-separated).
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    platforms: Vec<String>,
    /// Build secret id=NAME,src=PATH (repeatable); never stored in a layer.
    #[arg(long = "secret", value_name = "id=NAME,src=PATH")]
    secrets: Vec<SecretSpec>,
    /// Build stage to stop at.
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// buildx builder to use (a remote BuildKit).
    #[arg(long, value_name = "NAME")]
    builder: Option<String>,
    /// Push the tags after a successful build and smoke test.
    #[arg(long)]
    push: bool,
    /// Stages to skip (comma-separated): lint, free, build, inspect, smoke, push.
    #[arg(long, value_name = "STAGES", value_delimiter = ',')]
    skip: Vec<Stage>,
    /// Where to write the JSON report.
    #[arg(long, value_name = "PATH")]
    report: Option<PathBuf>,
    /// Read the registry password from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// Registry username (with --password-stdin).
    #[arg(long, value_name = "USER")]
    username: Option<String>,
    /// Free-stage target: available bytes needed on the data root's filesystem.
    #[arg(long, value_name = "SIZE")]
    need: Option<String>,
    /// Let the free stage delete off a GitHub-hosted runner.
    #[arg(long)]
    yes: bool,
    /// Resolve the free stage's catalog paths under DIR (a tree standing for the runner's
    /// disk: the simulator, chroots); nothing outside it is touched, no apt, swap or Docker.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Run the free stage alongside lint and build instead of before them. While it is
    /// still deleting, the build keeps the floor (--free-floor): under it, the build waits
    /// at a step boundary for the free stage to finish.
    #[arg(long)]
    free_in_background: bool,
    /// With --free-in-background: the available bytes to keep on the data root's
    /// filesystem while the free stage runs [default: a quarter of the target].
    #[arg(long, value_name = "SIZE")]
    free_floor: Option<String>,
    /// The default branch, for the `latest` tag.
    #[arg(long, value_name = "BRANCH")]
    default_branch: Option<String>,
    /// Build without the build cache.
    #[arg(long)]
    no_cache: bool,
    /// GPUs for the smoke test: auto (when the engine has them), required, off
    /// [default: `smoke.gpu` in the config, else auto].
    #[arg(long, value_name = "POLICY")]
    gpu: Option<GpuPolicy>,
    /// Analyse the built image's layers and waste, and gate on its thresholds.
    #[arg(long)]
    inspect: bool,
}

/// `docker/image.toml`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ImageConfig {
    dockerfile: Option<PathBuf>,
    context: Option<PathBuf>,
    image: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    default_branch: Option<String>,
    backend: Option<BackendChoice>,
    #[serde(default)]
    build_args: BTreeMap<String, String>,
    target: Option<String>,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default)]
    cache_from: Vec<String>,
    #[serde(default)]
    cache_to: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
    builder: Option<String>,
    provenance: Option<bool>,
    sbom: Option<bool>,
    #[serde(default)]
    free: FreeConfig,
    /// The smoke stage runs when this table is present (or --gpu is given).
    smoke: Option<SmokeConfig>,
    /// The inspect stage runs when this table is present (or --inspect is given): waste and
    /// size thresholds, on top of dive's `.dive-ci` rules.
    inspect: Option<crate::inspect::Thresholds>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SmokeConfig {
    gpu: Option<GpuPolicy>,
    /// The torch version the smoke test must find (the local `+cuXXX` part is ignored).
    torch: Option<String>,
    /// Minimum matrix-multiply throughput, TFLOP/s.
    min_tflops: Option<f64>,
    /// A model path or name for one load and one inference.
    model: Option<String>,
    /// Seconds to wait for the container's health.
    health_timeout: Option<u64>,
    /// Seconds the smoke script may run.
    timeout: Option<u64>,
    /// Python modules that must import in the image.
    #[serde(default)]
    imports: Vec<String>,
    /// Port of the health endpoint inside the container.
    port: Option<u16>,
    /// The smoke command [default: python3 /opt/headroom/smoke.py].
    command: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FreeConfig {
    /// Available bytes the build needs on the data root's filesystem, e.g. "25G".
    need: Option<String>,
}

/// One stage's outcome, as the pipeline sees it.
enum Outcome {
    Passed,
    Skipped(String),
}

impl Image {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let result = runtime.block_on(self.run_async());
        // After Ctrl-C a background free stage may still be deleting (only what it planned):
        // the process exits rather than wait for it.
        runtime.shutdown_background();
        result
    }

    async fn run_async(self) -> Result<ExitCode> {
        let config = load_config(&self.config)?;
        let base = self
            .config
            .parent()
            .filter(|_| self.config.exists())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let spec = self.spec(&config, &base)?;
        let report_path = self
            .report
            .clone()
            .unwrap_or_else(|| crate::project_root().join("target/headroom/report.json"));
        let password = if self.password_stdin {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .context("--password-stdin: reading standard input")?;
            Some(text.trim_end_matches(['\n', '\r']).to_string())
        } else {
            None
        };

        let pipeline = Pipeline {
            args: &self,
            spec,
            config,
            report: Mutex::new(Report::default()),
            password,
            previous_need: Report::read(&report_path)
                .ok()
                .and_then(|r| policy::estimate_need(&r)),
            inspect: Mutex::new(None),
        };
        let start = Instant::now();
        let mut interrupted = false;
        // Ctrl-C drops the pipeline future: the build request is cancelled, and the engine
        // removes the build's intermediate containers (forcerm).
        // SIGTERM is how CI cancels a job: handled like Ctrl-C, so containers and the buildx
        // child are cleaned up by their drop guards.
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?;
        let result = tokio::select! {
            r = pipeline.run() => r,
            _ = tokio::signal::ctrl_c() => {
                interrupted = true;
                Err(anyhow::anyhow!("interrupted (Ctrl-C): the pipeline was stopped"))
            }
            _ = terminate.recv() => {
                interrupted = true;
                Err(anyhow::anyhow!("terminated (SIGTERM): the pipeline was stopped"))
            }
        };
        let mut report = pipeline
            .report
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        report.seconds = start.elapsed().as_secs_f64();
        if let Err(e) = &result {
            report.errors.push(format!("{e:#}"));
        }
        if interrupted {
            report.cause = Some(Cause::Interrupted);
        }
        if let Err(e) = report.write(&report_path) {
            if let Err(pipeline) = &result {
                eprintln!("error: {pipeline:#}");
            }
            return Err(e.into());
        }
        eprintln!("image: report written to {}", report_path.display());
        if interrupted {
            if let Err(e) = &result {
                eprintln!("error: {e:#}");
            }
            return Ok(ExitCode::from(130));
        }
        result.map(|()| ExitCode::SUCCESS)
    }

    fn spec(&self, config: &ImageConfig, base: &Path) -> Result<BuildSpec> {
        let rel = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        let context = match &self.context {
            Some(c) => c.clone(),
            None => config
                .context
                .as_ref()
                .map(rel)
                .unwrap_or_else(|| base.to_path_buf()),
        };
        let dockerfile = match &self.dockerfile {
            Some(f) => f.clone(),
            None => config
                .dockerfile
                .as_ref()
                .map(rel)
                .unwrap_or_else(|| context.join("Dockerfile")),
        };
        let image = self
            .image
            .clone()
            .or_else(|| config.image.clone())
            .context("no image name: pass --image NAME or set `image` in docker/image.toml")?;
        let last = image.rsplit('/').next().unwrap_or(&image);
        if image.contains('@')
            || last.contains(':')
            || image.is_empty()
            || image != image.to_ascii_lowercase()
        {
            bail!(
                "--image {image:?}: give the repository only, in lower case (e.g. registry:5000/ns/app); \
                 tags come from git and --tag"
            );
        }
        let mut build_args = config.build_args.clone();
        for kv in &self.build_args {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("--build-arg {kv:?}: expected K=V"))?;
            build_args.insert(k.to_string(), v.to_string());
        }
        let mut secrets = Vec::new();
        for s in &config.secrets {
            secrets.push(
                s.parse::<SecretSpec>()
                    .map_err(|e| anyhow::anyhow!("{}: secrets: {e}", self.config.display()))?,
            );
        }
        secrets.extend(self.secrets.iter().cloned());
        let or = |flag: &Vec<String>, conf: &Vec<String>| {
            if flag.is_empty() {
                conf.clone()
            } else {
                flag.clone()
            }
        };
        let cache_to = or(&self.cache_to, &config.cache_to);
        if !self.push && cache_to.iter().any(|c| c.contains("type=registry")) {
            bail!(
                "--cache-to type=registry uploads to a registry, and without --push nothing may \
                 leave this machine: add --push, or use type=inline or type=local"
            );
        }
        Ok(BuildSpec {
            context,
            dockerfile,
            image,
            tags: Vec::new(),
            build_args,
            target: self.target.clone().or_else(|| config.target.clone()),
            labels: BTreeMap::new(),
            platforms: or(&self.platforms, &config.platforms),
            secrets,
            cache_from: or(&self.cache_from, &config.cache_from),
            cache_to,
            builder: self.builder.clone().or_else(|| config.builder.clone()),
            provenance: config.provenance,
            sbom: config.sbom,
            no_cache: self.no_cache,
        })
    }

    fn skipped(&self, stage: Stage) -> bool {
        self.skip.contains(&stage)
    }
}

fn load_config(path: &Path) -> Result<ImageConfig> {
    if !path.exists() {
        if path == Path::new("docker/image.toml") {
            return Ok(ImageConfig::default());
        }
        bail!("--config {}: no such file", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--config {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The free stage's work, ready to run on a blocking thread.
struct FreeJob {
    catalog: Catalog,
    env: Environment,
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

struct Pipeline<'a> {
    args: &'a Image,
    spec: BuildSpec,
    config: ImageConfig,
    report: Mutex<Report>,
    password: Option<String>,
    /// A free-stage target estimated from the previous run's report.
    previous_need: Option<u64>,
    /// The inspect stage's report, typed, for the step summary.
    inspect: Mutex<Option<crate::inspect::InspectReport>>,
}

impl Pipeline<'_> {
    fn report(&self) -> std::sync::MutexGuard<'_, Report> {
        self.report.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn stage<F, Fut>(&self, name: Stage, body: F) -> Result<()>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Outcome>>,
    {
        let github = ui::on_github_actions();
        if github {
            println!("::group::{name}");
        }
        let start = Instant::now();
        let result = if self.args.skipped(name) {
            Ok(Outcome::Skipped("--skip".into()))
        } else {
            body().await
        };
        self.record_stage(name, start.elapsed().as_secs_f64(), &result);
        if github {
            println!("::endgroup::");
        }
        result.map(|_| ())
    }

    /// Print a stage's outcome and add it to the report.
    fn record_stage(&self, name: Stage, seconds: f64, result: &Result<Outcome>) {
        let (status, reason) = match result {
            Ok(Outcome::Passed) => (StageStatus::Passed, None),
            Ok(Outcome::Skipped(why)) => (StageStatus::Skipped, Some(why.clone())),
            Err(e) => (StageStatus::Failed, Some(format!("{e:#}"))),
        };
        // A failure's cause is printed once, as the command's error; the stage line says
        // only that it failed.
        let shown = reason.as_ref().filter(|_| status != StageStatus::Failed);
        eprintln!(
            "image: {name}: {}{} ({seconds:.1} s)",
            status.as_str(),
            shown.map(|r| format!(": {r}")).unwrap_or_default()
        );
        self.report().stages.push(StageReport {
            name,
            status,
            seconds,
            reason,
        });
    }

    async fn run(&self) -> Result<()> {
        // git and the engine answer independently: ask both at once.
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let git_env = env.clone();
        let git_task =
            tokio::task::spawn_blocking(move || tags::git_facts(&crate::project_root(), &git_env));
        let engine = Engine::from_env(Duration::from_secs(5)).await?;
        let facts = engine.facts().await.ok();
        let git = git_task.await.context("reading git facts")?;
        self.report().engine = facts.clone();
        let data_root = facts.as_ref().and_then(|f| f.data_root.clone());
        let local = engine.endpoint.host.starts_with("unix://");
        let watch_path = data_root.clone().filter(|p| local && p.exists());

        let mut spec = self.spec.clone();
        let rules = TagRules {
            default_branch: self
                .args
                .default_branch
                .clone()
                .or_else(|| self.config.default_branch.clone()),
            extra: self
                .config
                .tags
                .iter()
                .chain(&self.args.tags)
                .cloned()
                .collect(),
        };
        spec.tags = tags::compute_tags(&git, &rules)?;
        if spec.tags.is_empty() {
            spec.tags.push("latest".into());
        }
        let created = rfc3339_now();
        spec.labels = tags::oci_labels(&git, None, &created);
        {
            let mut r = self.report();
            r.image.name = spec.image.clone();
            r.image.tags = spec.tags.clone();
            r.image.references = spec.references();
            r.disk.path = watch_path.clone();
            if let Some(p) = &watch_path {
                r.disk.available_before = headroom_disk::available_bytes(p).ok();
            }
        }

        let credentials = self.credentials(&spec).await?;
        // Cheap checks before anything destructive: the engine has answered and the
        // credentials are resolved; a Dockerfile the lint stops must not cost a deleted byte.
        self.stage(Stage::Lint, || self.lint(&spec)).await?;
        let background = if self.args.free_in_background && !self.args.skipped(Stage::Free) {
            self.start_free_in_background(watch_path.as_deref())?
        } else {
            self.stage(Stage::Free, || self.free(watch_path.as_deref()))
                .await?;
            None
        };
        let built = self
            .stage(Stage::Build, || {
                self.build(&engine, &spec, watch_path.as_deref(), background.as_ref())
            })
            .await;
        if let Some(bg) = background {
            let freed = self.finish_free_in_background(bg, built.is_ok()).await;
            // A failed build says more than the free stage's shortfall: report that one,
            // and the free stage's cause as a warning.
            match freed {
                Err(e) if built.is_err() => eprintln!("warning: free: {e:#}"),
                other => {
                    if built.is_ok() {
                        other?;
                    }
                }
            }
        }
        if let Err(e) = built {
            self.report().diagnostics = Some(diagnose(&engine, facts.as_ref()).await);
            let d = self.report().diagnostics.clone();
            for line in d.map(|d| d.lines()).unwrap_or_default() {
                eprintln!("image: diagnostics: {line}");
            }
            return Err(e);
        }
        self.stage(Stage::Inspect, || self.inspect(&engine, &spec))
            .await?;
        self.stage(Stage::Smoke, || self.smoke(&engine, facts.as_ref(), &spec))
            .await?;
        let pushed = self
            .stage(Stage::Push, || {
                self.push(&engine, &spec, credentials.clone())
            })
            .await;
        if let Some(p) = &watch_path {
            self.report().disk.available_after = headroom_disk::available_bytes(p).ok();
        }
        pushed?;
        self.outputs()?;
        Ok(())
    }

    /// The free stage's catalog (with headroom.toml's `[free]` table), where its paths are,
    /// and what it must not touch.
    fn free_setup(&self) -> Result<(Catalog, Environment, Vec<String>)> {
        let (catalog, user) = crate::free::load_catalog(None)?;
        let env = match &self.args.root {
            Some(root) if !root.is_dir() => {
                bail!("--root {}: not a directory", root.display())
            }
            Some(root) => Environment::under_root(root),
            None => Environment::host(),
        };
        Ok((catalog, env, user.protect))
    }

    /// What the free stage would do, or why it is skipped.
    fn free_job(
        &self,
        data_root: Option<&Path>,
        background: bool,
    ) -> Result<std::result::Result<FreeJob, String>> {
        let Some(path) = data_root else {
            return Ok(Err("the engine's data root is not on this machine".into()));
        };
        let need = match self.args.need.as_ref().or(self.config.free.need.as_ref()) {
            Some(n) => Some(parse_size(n).with_context(|| "--need / free.need")?),
            None => None,
        };
        let Some(need) = need.or(self.previous_need) else {
            return Ok(Err(
                "no target: set --need SIZE or free.need in docker/image.toml (after one \
                 build with a report, the target is estimated from it)"
                    .into(),
            ));
        };
        if self.args.need.is_none() && self.config.free.need.is_none() {
            eprintln!(
                "image: free: target {} estimated from the last report (what the last build \
                 consumed, plus a quarter and 2 GB)",
                format_size(need)
            );
        }
        let (catalog, env, protect) = self.free_setup()?;
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
        let dry_run = !(ui::github_hosted_runner() || self.args.yes || self.args.root.is_some());
        Ok(Ok(FreeJob {
            catalog,
            env,
            request: PlanRequest {
                target_path: path.to_path_buf(),
                need: Some(need),
                selection: Selection {
                    skip,
                    ..Selection::default()
                },
                protect,
            },
            need,
            dry_run,
        }))
    }

    async fn free(&self, data_root: Option<&Path>) -> Result<Outcome> {
        let job = match self.free_job(data_root, false)? {
            Ok(job) => job,
            Err(why) => return Ok(Outcome::Skipped(why)),
        };
        let need = job.need;
        // Deleting gigabytes blocks: keep it off the task that also watches for signals.
        let report = tokio::task::spawn_blocking(move || job.run(&ui::Reporter::new()))
            .await
            .context("the free stage's reclaim thread")??;
        self.finish_free(report, need, None)
    }

    /// Record the free stage's report; fail when its target was not met (unless the build,
    /// run alongside, fit anyway).
    fn finish_free(&self, report: FreeReport, need: u64, built: Option<bool>) -> Result<Outcome> {
        let dry_run = report.dry_run;
        let met = report.target_met;
        let available = report.filesystem.available_after;
        let mount = report.filesystem.mount_point.clone();
        {
            let mut r = self.report();
            r.disk.freed_bytes = Some(report.freed_bytes);
            r.free = Some(report.clone());
        }
        if dry_run {
            // The plan as a table for people; Markdown goes to the step summary only.
            eprint!("{}", crate::free::human(&report));
            return Ok(Outcome::Skipped(
                "not a GitHub-hosted runner: plan printed, nothing deleted (pass --yes to free)"
                    .into(),
            ));
        }
        eprintln!(
            "image: free: {} freed in {:.1} s; {} available on {mount}",
            format_size(report.freed_bytes),
            report.seconds,
            format_size(available)
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
    fn start_free_in_background(&self, data_root: Option<&Path>) -> Result<Option<BackgroundFree>> {
        let job = match self.free_job(data_root, true)? {
            Ok(job) => job,
            Err(why) => {
                self.record_stage(Stage::Free, 0.0, &Ok(Outcome::Skipped(why)));
                return Ok(None);
            }
        };
        let floor = match &self.args.free_floor {
            Some(f) => parse_size(f).with_context(|| format!("--free-floor {f:?}"))?,
            None => job.need / 4,
        };
        let need = job.need;
        let (done_tx, done) = tokio::sync::watch::channel(false);
        let task = tokio::task::spawn_blocking(move || {
            // No progress bars: the build's lines are on the terminal meanwhile.
            let report = job.run(&headroom_disk::NoProgress);
            let _ = done_tx.send(true);
            report
        });
        {
            let mut r = self.report();
            r.disk.free_in_background = true;
            r.disk.floor_bytes = Some(floor);
        }
        eprintln!(
            "image: free: running in the background (target {}; the build keeps {} available \
             until it is done)",
            format_size(need),
            format_size(floor)
        );
        Ok(Some(BackgroundFree {
            task,
            done,
            floor,
            need,
            started: Instant::now(),
        }))
    }

    async fn finish_free_in_background(&self, bg: BackgroundFree, built: bool) -> Result<()> {
        let result = match bg.task.await {
            Ok(Ok(report)) => self.finish_free(report, bg.need, Some(built)),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("the free stage's reclaim thread: {e}")),
        };
        self.record_stage(Stage::Free, bg.started.elapsed().as_secs_f64(), &result);
        result.map(|_| ())
    }

    async fn build(
        &self,
        engine: &Engine,
        spec: &BuildSpec,
        watch: Option<&Path>,
        background: Option<&BackgroundFree>,
    ) -> Result<Outcome> {
        let choice = self
            .args
            .backend
            .or(self.config.backend)
            .unwrap_or_default();
        let owned = spec.clone();
        let backend = tokio::task::spawn_blocking(move || build::choose_backend(choice, &owned))
            .await
            .context("choosing the backend")??;
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
        eprintln!(
            "image: building {} with {backend:?}",
            spec.references().join(", ")
        );
        let step = Mutex::new(String::new());
        let on_event = |e: BuildEvent| match e {
            BuildEvent::Step { name, cached } => {
                eprintln!("build: {name}{}", if cached { " (cached)" } else { "" });
                *step.lock().unwrap_or_else(|p| p.into_inner()) = name;
            }
            BuildEvent::Line(l) => eprintln!("build: {l}"),
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
                eprintln!(
                    "image: build: waiting for the free stage: {} available on the data root's \
                     filesystem, under the floor of {}",
                    format_size(available),
                    format_size(bg.floor)
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
                    eprintln!(
                        "image: build: {} available, under the floor of {} while the free stage \
                         is still deleting: build stopped at {at:?}; it resumes from the build \
                         cache when the free stage is done",
                        format_size(sample.available_bytes),
                        format_size(bg.floor)
                    );
                    bg.wait_done().await;
                }
            }
        };
        let timeline = dog.map(Watchdog::stop);
        {
            let mut r = self.report();
            r.disk.build_stops = stops;
            if let Some(t) = &timeline {
                r.disk.low_water_bytes = Some(t.low_water_bytes);
                r.disk.timeline = Some(t.clone());
            }
        }
        match result {
            Ok(outcome) => {
                // By id when the backend reported one, else by the first tag.
                let id = outcome
                    .image_id
                    .clone()
                    .or_else(|| spec.references().first().cloned());
                self.report().build = Some(outcome);
                if let Some(id) = id {
                    if let Ok(inspect) = engine.docker.inspect_image(&id).await {
                        let mut r = self.report();
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
                    self.report().cause = Some(Cause::NoSpace);
                    message.push_str(&self.no_space_advice(watch, timeline.as_ref()));
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
    fn no_space_advice(&self, watch: Option<&Path>, timeline: Option<&Timeline>) -> String {
        let mut s = String::from("\nThe build ran out of disk space");
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
        let Ok((catalog, env, protect)) = self.free_setup() else {
            return s;
        };
        let request = PlanRequest {
            target_path: p.to_path_buf(),
            need: None,
            selection: Selection::default(),
            protect,
        };
        if let Ok(plan) = headroom_disk::plan(&catalog, &env, &request, &headroom_disk::NoProgress)
        {
            let names: Vec<String> = plan.selected().map(|i| i.spec.name.clone()).collect();
            let skipped = if self.args.skipped(Stage::Free) {
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
            let mut r = self.report();
            r.disk.reclaimable_bytes = Some(plan.planned_bytes());
            r.disk.reclaimable_items = names;
        }
        s
    }

    /// Lint the Dockerfile before anything is built: findings printed (and annotated on
    /// GitHub Actions); at or above headroom.toml's `[lint] fail_on` (default: errors) the
    /// pipeline stops here.
    async fn lint(&self, spec: &BuildSpec) -> Result<Outcome> {
        let config = crate::lint::LintConfig::load(None)?;
        let files = [crate::lint::lint_file(
            &spec.dockerfile,
            Some(&spec.context),
            &config,
        )?];
        let human = crate::lint_report::human(&files);
        for line in human.lines() {
            eprintln!("image: lint: {line}");
        }
        if ui::on_github_actions() {
            print!("{}", crate::lint_report::github(&files));
        }
        self.report().lint = Some(crate::lint_report::json(&files));
        if config.fail_on().fails(&files) {
            bail!(
                "{} has findings at or above the lint's fail_on level (see above; set [lint] \
                 fail_on or ignores in headroom.toml, or fix them: cargo xtask lint --fix)",
                spec.dockerfile.display()
            );
        }
        Ok(Outcome::Passed)
    }

    async fn inspect(&self, engine: &Engine, spec: &BuildSpec) -> Result<Outcome> {
        if self.config.inspect.is_none() && !self.args.inspect {
            return Ok(Outcome::Skipped(
                "no [inspect] table in the config (and no --inspect)".into(),
            ));
        }
        let start = Instant::now();
        let image = spec.references().remove(0);
        let reader = headroom_docker::export::export(engine, &image);
        let analysis = tokio::task::spawn_blocking(move || {
            headroom_docker::inspect::analyze(
                std::io::BufReader::with_capacity(1 << 20, reader),
                &headroom_docker::inspect::AnalyzeOptions::default(),
            )
        })
        .await
        .context("the analysis thread")?
        .with_context(|| format!("analysing {image}"))?;
        let mut thresholds =
            crate::inspect::thresholds(Path::new(".dive-ci"), Path::new("/nonexistent"))?;
        if let Some(ours) = &self.config.inspect {
            thresholds = thresholds.with(ours);
        }
        let gate = thresholds.evaluate(&analysis)?;
        let dockerfile = std::fs::read_to_string(&spec.dockerfile).ok();
        let report = crate::inspect::finish(
            analysis,
            dockerfile.as_deref(),
            gate,
            start.elapsed().as_secs_f64(),
        );
        eprintln!(
            "image: inspect: {} stored, {} wasted (efficiency {:.2}%)",
            format_size(report.analysis.total_bytes),
            format_size(report.analysis.wasted_bytes),
            report.analysis.efficiency * 100.0
        );
        for h in &report.hints {
            eprintln!("image: inspect: hint: {h}");
        }
        let failed: Vec<String> = report
            .gate
            .iter()
            .filter(|g| !g.passed)
            .map(|g| format!("{} {} (limit {})", g.rule, g.actual, g.limit))
            .collect();
        self.report().inspect = Some(serde_json::to_value(&report)?);
        *self.inspect.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        if !failed.is_empty() {
            bail!("over the image thresholds: {}", failed.join("; "));
        }
        Ok(Outcome::Passed)
    }

    async fn smoke(
        &self,
        engine: &Engine,
        facts: Option<&EngineFacts>,
        spec: &BuildSpec,
    ) -> Result<Outcome> {
        let default = SmokeConfig::default();
        let config = match (&self.config.smoke, self.args.gpu) {
            (Some(c), _) => c,
            (None, Some(_)) => &default,
            (None, None) => {
                return Ok(Outcome::Skipped(
                    "no [smoke] table in the config (and no --gpu)".into(),
                ));
            }
        };
        let policy = self.args.gpu.or(config.gpu).unwrap_or_default();
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
            eprintln!("image: smoke: {note}");
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
        let run = smoke::run_smoke(
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
        report.mismatches = policy::smoke_mismatches(&run, &expect, gpu.is_some());
        let failed = !report.mismatches.is_empty();
        if let Some(result) = &run.result {
            eprintln!("image: smoke: {result}");
        }
        report.run = Some(run);
        if failed {
            let message = format!("smoke test failed: {}", report.mismatches.join("; "));
            self.report().smoke = Some(report);
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
                eprintln!(
                    "image: smoke: healthy after {:.1} s: {}",
                    h.seconds,
                    h.response
                        .as_ref()
                        .map(|r| r.to_string())
                        .unwrap_or_default()
                );
                report.health = Some(h);
                self.report().smoke = Some(report);
                Ok(Outcome::Passed)
            }
            Err(e) => {
                self.report().smoke = Some(report);
                bail!("health check: {e}")
            }
        }
    }

    /// The registry credentials, resolved before anything is built so a half-set pair or a
    /// broken config.json fails in seconds, not after the build.
    async fn credentials(&self, spec: &BuildSpec) -> Result<Option<auth::Credentials>> {
        if !self.args.push || self.args.skipped(Stage::Push) {
            return Ok(None);
        }
        let host = auth::registry_host(&spec.image);
        let options = ResolveOptions {
            password_stdin: self.password.clone(),
            username: self.args.username.clone(),
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

    async fn push(
        &self,
        engine: &Engine,
        spec: &BuildSpec,
        credentials: Option<auth::Credentials>,
    ) -> Result<Outcome> {
        if !self.args.push {
            return Ok(Outcome::Skipped(
                "--push not given: nothing leaves this machine".into(),
            ));
        }
        let on_event = |e: PushEvent| match e {
            PushEvent::Status { reference, line } => {
                if line.contains("digest:") || line.starts_with("Pushed") {
                    eprintln!("push: {reference}: {line}");
                }
            }
            PushEvent::Retry {
                reference,
                attempt,
                delay,
                error,
            } => eprintln!(
                "push: {reference}: attempt {attempt} in {:.1} s after: {error}",
                delay.as_secs_f64()
            ),
        };
        let pushed = push::push_all(
            engine,
            &spec.references(),
            credentials.as_ref(),
            RetryPolicy::default(),
            &on_event,
        )
        .await?;
        let mut r = self.report();
        for p in &pushed {
            r.image
                .digests
                .insert(p.reference.clone(), p.digest.clone());
        }
        r.image.digest = pushed.first().map(|p| p.digest.clone());
        Ok(Outcome::Passed)
    }

    fn outputs(&self) -> Result<()> {
        let r = self.report();
        ui::github_outputs(&github::outputs(&r))?;
        let mut md = github::step_summary(&r);
        if let Some(i) = &*self.inspect.lock().unwrap_or_else(|p| p.into_inner()) {
            md.push('\n');
            md.push_str(&crate::inspect::markdown(i));
        }
        ui::github_step_summary(&md)?;
        Ok(())
    }
}

/// Now as RFC 3339 (UTC), without a date crate: from `date`, else the Unix epoch seconds.
fn rfc3339_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
