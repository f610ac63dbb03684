//! The sequencer: [`Pipeline::run`] takes resolved [`Settings`], runs the declared stages
//! in order — lint → free → build → inspect → smoke → push (each one a module of
//! [`crate::stage`]), with the engine, git and the registry credentials asked before the
//! first stage and the lint before anything is deleted — and returns the [`Report`] it built
//! (also written to the settings' report path). Ctrl-C and SIGTERM stop it: the build
//! request is dropped (the engine removes the build's containers, the buildx child is
//! killed by its guard) and the report says `interrupted`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use headroom_docker::build::BuildSpec;
use headroom_docker::diagnose::diagnose;
use headroom_docker::engine::{Engine, EngineFacts};
use headroom_docker::relocate;
use headroom_docker::tags;

use crate::config::ConfigError;
use crate::github;
use crate::render;
use crate::report::{Cause, EndpointReport, Report, ReportError};
use crate::reporter::Reporter;
use crate::settings::Settings;
use crate::stage::Stage;
use crate::stage::context::{Outcome, Run};
use crate::stage::place::{self, Placed};
use crate::stage::{build, free, inspect, lint, preflight, push, smoke};

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
    /// Ctrl-C or SIGTERM stopped the run; `code` is the status to exit with (130, 143).
    #[error("{message}")]
    Interrupted {
        message: String,
        code: u8,
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
    /// The exit status a command should end with: 2 for settings that cannot be resolved
    /// (a usage or configuration error), 130 after SIGINT, 143 after SIGTERM, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            PipelineError::Settings(_) => 2,
            PipelineError::Interrupted { code, .. } => *code,
            _ => 1,
        }
    }

    /// How the run ended, for the annotation a binary prints on GitHub Actions; `None` when
    /// there is no report.
    pub fn outcome(&self) -> Option<render::Outcome> {
        match self {
            PipelineError::Failed {
                stage,
                message,
                report,
            } => Some(render::Outcome::of(report, Some(message), false, *stage)),
            PipelineError::Interrupted {
                message, report, ..
            } => Some(render::Outcome::of(report, Some(message), true, None)),
            _ => None,
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

/// The image pipeline over resolved settings.
#[derive(Debug)]
pub struct Pipeline {
    settings: Settings,
}

/// What the engine and git said before the first stage.
struct Facts {
    engine: Engine,
    facts: Option<EngineFacts>,
    /// The data root, when it is on this machine: the free stage's and the watchdog's path.
    watch: Option<PathBuf>,
    spec: BuildSpec,
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

/// Run a stage unless `--skip` names it, then record it and its disk phase.
async fn stage<'r>(
    run: &mut Run<'r>,
    name: Stage,
    body: impl AsyncFnOnce(&mut Run<'r>) -> Result<Outcome>,
) -> Result<()> {
    run.current = Some(name);
    let start = Instant::now();
    let before = run.available();
    let skipped = run.settings.skipped(name);
    let result = if skipped {
        Ok(Outcome::Skipped("--skip".into()))
    } else {
        run.reporter.stage_started(name);
        body(run).await
    };
    run.record(name, start.elapsed().as_secs_f64(), &result);
    if !skipped {
        run.stage_phase(name, start, before);
    }
    result.map(|_| ())
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
        let mut run = Run::new(&self.settings, reporter);
        let start = run.started;
        // Ctrl-C drops the stages' future: the build request is cancelled, and the engine
        // removes the build's intermediate containers (forcerm). SIGTERM is how CI cancels a
        // job: handled the same way, so containers and the buildx child are cleaned up by
        // their drop guards. A data-root move is never dropped halfway: it rolls back on the
        // same signal (the engine back on its old root), and the run waits for that.
        let mut signal: Option<relocate::Interrupt> = None;
        let result = {
            let stages = self.stages(&mut run);
            tokio::pin!(stages);
            let mut signals = relocate::interrupt_signals();
            loop {
                tokio::select! {
                    r = &mut stages => break r,
                    i = &mut signals, if signal.is_none() => {
                        signal = Some(i);
                        if !relocate::moving() {
                            break Err(anyhow::anyhow!(
                                "{}: the pipeline was stopped",
                                if i == relocate::Interrupt::INT {
                                    "interrupted (Ctrl-C)"
                                } else {
                                    "terminated (SIGTERM)"
                                }
                            ));
                        }
                    }
                }
            }
        };
        let interrupted = signal.is_some();
        run.report.seconds = start.elapsed().as_secs_f64();
        let mut failure = result.as_ref().err().map(|e| format!("{e:#}"));
        if let Some(f) = &failure {
            run.report.errors.push(f.clone());
        }
        if interrupted {
            run.report.cause = Some(Cause::Interrupted);
        }
        let outcome =
            render::Outcome::of(&run.report, failure.as_deref(), interrupted, run.current);
        if let Err(e) = self.outputs(&run, &outcome) {
            run.report.errors.push(e.to_string());
            failure.get_or_insert_with(|| e.to_string());
        }
        let report = run.report;
        let failure = write_report(&report, &self.settings.report_path, failure, reporter)?;
        match failure {
            None => Ok(report),
            Some(message) if interrupted => Err(PipelineError::Interrupted {
                message,
                code: signal.map_or(130, |i| i.code),
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
        let s = &self.settings;
        // The credentials need only the repository's host: asked first, so a half-set pair
        // fails in seconds, before the engine is asked anything.
        // A data-root move a killed run left halfway is finished or rolled back before the
        // engine is asked anything (it may be stopped).
        place::recover(run).await?;
        let credentials = push::credentials(s).await?;
        let logins = push::cache_logins(s, credentials.as_ref()).await?;
        let Facts {
            mut engine,
            mut facts,
            mut watch,
            mut spec,
        } = self.facts(run).await?;
        spec.registry_logins = logins;
        run.watch = watch.clone();
        // Before the first destructive step: the context and Dockerfile readable, the
        // references valid, the builder there, the registry accepting the credentials.
        preflight::run(run, &engine, &spec, credentials.as_ref()).await?;
        // Cheap checks before anything destructive: the engine has answered and the
        // credentials are resolved; a Dockerfile the lint stops must not cost a deleted byte.
        stage(run, Stage::Lint, async |run| lint::run(run, &spec)).await?;
        let background = if s.free_in_background && !s.skipped(Stage::Free) {
            // Placement first: a move restarts the engine, which no build may see.
            let placed = match watch.as_deref() {
                Some(root) => place::place(run, &engine, root).await?,
                None => Placed::Stay,
            };
            if let Placed::Moved(to) = placed {
                (engine, facts) = place::reconnect(run, &to).await?;
                run.watch = Some(to.clone());
                watch = Some(to);
                run.record(Stage::Free, 0.0, &Ok(Outcome::Passed));
                None
            } else {
                free::start_in_background(run, watch.as_deref())?
            }
        } else {
            let data_root = watch.as_deref();
            stage(run, Stage::Free, async |run| {
                free::run(run, &engine, data_root).await
            })
            .await?;
            if let Some(to) = place::moved_to(run) {
                (engine, facts) = place::reconnect(run, &to).await?;
                run.watch = Some(to.clone());
                watch = Some(to);
            }
            None
        };
        let watch = watch.as_deref();
        let built = stage(run, Stage::Build, async |run| {
            build::run(
                run,
                &engine,
                &spec,
                watch,
                background.as_ref(),
                credentials.as_ref(),
            )
            .await
        })
        .await;
        if let Some(bg) = background {
            let freed = free::finish_in_background(run, bg, built.is_ok()).await;
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
        stage(run, Stage::Inspect, async |run| {
            inspect::run(run, &engine, &spec).await
        })
        .await?;
        stage(run, Stage::Smoke, async |run| {
            smoke::run(run, &engine, facts.as_ref(), &spec).await
        })
        .await?;
        let pushed = stage(run, Stage::Push, async |run| {
            push::run(run, &engine, &spec, credentials.clone()).await
        })
        .await;
        if let Some(p) = watch {
            run.report.disk.available_after = headroom_disk::available_bytes(p).ok();
        }
        pushed?;
        run.current = None;
        Ok(())
    }

    /// On GitHub Actions, on every run (passed, failed or interrupted): the step outputs and
    /// the step summary, with the failing stage, its cause and message when there is one.
    fn outputs(
        &self,
        run: &Run<'_>,
        outcome: &render::Outcome,
    ) -> Result<(), github::EnvFileError> {
        if !self.settings.github_outputs {
            return Ok(());
        }
        github::append_outputs(&render::github::run_outputs(&run.report, outcome))?;
        let mut md = render::markdown::outcome(outcome);
        md.push_str(&render::markdown::step_summary(&run.report));
        if let Some(i) = &run.inspect {
            md.push('\n');
            md.push_str(&render::markdown::inspect(i));
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
