//! The build's output, in the build stage: know the builder before the build (its driver,
//! its state's size, its GC policy), choose the route the image takes out of it
//! ([`crate::route`]) and hold the cache exports to their budget; after the build, read the
//! builder's state again, and on the push routes free it (push-pull: always, before the pull;
//! push: when space is tight) and pull what the smoke test and the inspection need.

use anyhow::{Context, Result, anyhow};
use headroom_disk::format_size;
use headroom_docker::auth::Credentials;
use headroom_docker::build::{Backend, BuildOutcome, BuildSpec, Output};
use headroom_docker::builder::{self, BuilderFacts};
use headroom_docker::engine::{Endpoint, Engine};

use super::Stage;
use super::context::Run;
use crate::route::{self, BuilderReport, Route, RouteInputs};

/// Before the build: the builder, the route, the caches. Gives the spec to build (its
/// output and cache exports set) and records the report's `builder`.
pub(crate) async fn prepare(
    run: &mut Run<'_>,
    engine: &Engine,
    backend: Backend,
    spec: &BuildSpec,
) -> Result<BuildSpec> {
    let s = run.settings;
    let mut spec = spec.clone();
    let mut report = BuilderReport::default();
    let facts = match backend {
        Backend::Engine => None,
        Backend::Buildx => {
            let name = spec.builder.clone();
            let endpoint = engine.endpoint.clone();
            match tokio::task::spawn_blocking(move || builder::inspect(name.as_deref(), &endpoint))
                .await
                .context("reading the builder")?
            {
                Ok(f) => Some(f),
                Err(e) => {
                    run.reporter.warning(
                        Stage::Build,
                        &format!("the builder could not be read, so its image is loaded: {e}"),
                    );
                    None
                }
            }
        }
    };
    let inputs = RouteInputs {
        separate_builder: facts.as_ref().is_some_and(BuilderFacts::is_separate),
        push: s.push && !s.skipped(Stage::Push),
        needs_local: (s.smoke.is_some() && !s.skipped(Stage::Smoke))
            || (s.inspect.is_some() && !s.skipped(Stage::Inspect)),
        available: run.available(),
        expected: s.expected_image_bytes,
    };
    let (chosen, why) = if backend == Backend::Buildx && facts.is_none() {
        (
            Route::Load,
            "the builder is not known: --load, as before".to_string(),
        )
    } else {
        route::choose(s.route, inputs).map_err(|e| anyhow!("--route: {e}"))?
    };
    spec.output = if chosen.pushes() {
        Output::Push
    } else {
        Output::Load
    };
    if let Some(note) =
        route::fit_actions_cache(&mut spec.cache_to, s.cache_budget, inputs.expected)
    {
        run.reporter.note(Stage::Build, &note);
        report.notes.push(note);
    }
    run.reporter
        .note(Stage::Build, &format!("route {}: {why}", chosen.as_str()));
    if let Some(f) = &facts {
        run.reporter.note(Stage::Build, &describe(f));
    }
    report.route = Some(chosen);
    report.why = why;
    report.state_before_bytes = facts.as_ref().and_then(BuilderFacts::bytes);
    report.facts = facts;
    run.report.builder = Some(report);
    Ok(spec)
}

/// The builder in one line: name, driver, state and where it is.
fn describe(f: &BuilderFacts) -> String {
    format!(
        "builder {} (driver {}): state {}{}",
        f.name,
        f.driver,
        f.bytes().map(format_size).unwrap_or_else(|| "?".into()),
        f.state_volume
            .as_ref()
            .map(|v| format!(" in the volume {v} on the engine's data root"))
            .unwrap_or_default()
    )
}

/// After a build that passed: its cache warnings, the builder's state, and on the push
/// routes the state freed and the image pulled.
pub(crate) async fn finish(
    run: &mut Run<'_>,
    engine: &Engine,
    spec: &BuildSpec,
    outcome: &BuildOutcome,
    credentials: Option<&Credentials>,
) -> Result<()> {
    for w in &outcome.cache_warnings {
        run.reporter.warning(
            Stage::Build,
            &format!("the cache export failed; the image is built all the same: {w}"),
        );
    }
    let Some(mut report) = run.report.builder.take() else {
        return Ok(());
    };
    report.cache_warnings = outcome.cache_warnings.clone();
    let result = finish_route(run, engine, spec, &mut report, credentials).await;
    run.report.builder = Some(report);
    result
}

async fn finish_route(
    run: &mut Run<'_>,
    engine: &Engine,
    spec: &BuildSpec,
    report: &mut BuilderReport,
    credentials: Option<&Credentials>,
) -> Result<()> {
    let endpoint = &engine.endpoint;
    if let Some(f) = report.facts.clone() {
        let f = remeasure(f, endpoint).await?;
        report.state_after_build_bytes = f.bytes();
        report.facts = Some(f);
    }
    let route = report.route.unwrap_or(Route::Engine);
    if !route.pushes() {
        return Ok(());
    }
    let state = report.state_after_build_bytes.unwrap_or(0);
    // Tight: another build like this one, loaded, would not fit.
    let tight = run
        .available()
        .is_none_or(|a| a < state.saturating_mul(route::LOAD_MULTIPLE));
    if (route == Route::PushPull || tight)
        && let Some(f) = report.facts.clone()
    {
        let name = f.name.clone();
        let e = endpoint.clone();
        tokio::task::spawn_blocking(move || builder::prune(&name, &e))
            .await
            .context("pruning the builder")?
            .map_err(|e| anyhow!("freeing the builder's state after the push: {e}"))?;
        let f = remeasure(f, endpoint).await?;
        report.pruned = true;
        report.state_after_prune_bytes = f.bytes();
        run.reporter.note(
            Stage::Build,
            &format!(
                "pushed; the builder's state freed: {} → {}",
                format_size(state),
                f.bytes().map(format_size).unwrap_or_else(|| "?".into())
            ),
        );
        report.facts = Some(f);
    }
    if route == Route::PushPull {
        let reference = spec
            .references()
            .first()
            .cloned()
            .ok_or_else(|| anyhow!("no reference to pull"))?;
        headroom_docker::push::pull(engine, &reference, credentials)
            .await
            .map_err(|e| anyhow!("{e} (pushed by the builder, pulled for the smoke test)"))?;
        run.reporter
            .note(Stage::Build, &format!("pulled {reference} into the engine"));
    }
    Ok(())
}

async fn remeasure(mut f: BuilderFacts, endpoint: &Endpoint) -> Result<BuilderFacts> {
    let endpoint = endpoint.clone();
    tokio::task::spawn_blocking(move || {
        builder::measure(&mut f, &endpoint);
        f
    })
    .await
    .context("measuring the builder's state")
}
