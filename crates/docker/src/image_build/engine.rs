//! The engine backend: the Engine API's `/build` (the classic builder), fed the build context
//! as a tar streamed from [`crate::context`].

use std::collections::HashMap;

use bollard::query_parameters::BuildImageOptionsBuilder;
use futures_util::StreamExt;

use super::outcome::{BuildError, BuildEvent, BuildOutcome, BuildProgress, Tail};
use super::spec::BuildSpec;
use crate::context::{ContextOptions, plan_context, stream_tar};
use crate::engine::Engine;

/// Build `spec` through the engine's `/build` (the classic builder), with the context made
/// and streamed by [`crate::context`]. Tags the first reference only.
pub(super) async fn build(
    engine: &Engine,
    spec: &BuildSpec,
    progress: &dyn BuildProgress,
) -> Result<BuildOutcome, BuildError> {
    let plan = plan_context(&ContextOptions {
        root: spec.context.clone(),
        dockerfile: spec.dockerfile.clone(),
    })
    .map_err(|e| BuildError::new(e.to_string(), None, Vec::new()))?;
    let dockerfile_in_tar = plan.dockerfile_name().to_string();
    let (body, writer) = stream_tar(plan);
    let first = spec.references().remove(0);
    let build_args: HashMap<String, String> = spec.build_args.clone().into_iter().collect();
    let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(&dockerfile_in_tar)
        .t(&first)
        .rm(true)
        .forcerm(true)
        .nocache(spec.no_cache)
        .buildargs(&build_args)
        .labels(&labels);
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    if let Some(platform) = spec.platforms.first() {
        options = options.platform(platform);
    }
    if !spec.cache_from.is_empty() {
        options = options.cachefrom(&spec.cache_from);
    }
    let mut stream =
        engine
            .docker
            .build_image(options.build(), None, Some(bollard::body_try_stream(body)));
    let mut tail = Tail::default();
    let mut outcome = BuildOutcome::default();
    let mut current_step: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    tail.push(text);
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        if let Some(step) = line.strip_prefix("Step ") {
                            outcome.steps += 1;
                            current_step = Some(format!("Step {step}"));
                            progress.event(BuildEvent::Step {
                                name: format!("Step {step}"),
                                cached: false,
                            });
                        } else if line.trim() == "---> Using cache" {
                            outcome.cached_steps += 1;
                            if let Some(step) = &current_step {
                                progress.event(BuildEvent::Step {
                                    name: step.clone(),
                                    cached: true,
                                });
                            }
                        } else {
                            progress.event(BuildEvent::Line(line.to_string()));
                        }
                    }
                }
                if let Some(id) = info.aux.and_then(|a| a.id) {
                    outcome.image_id = Some(id);
                }
            }
            Err(e) => {
                let message = match e {
                    bollard::errors::Error::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                tail.push(&message);
                // Drain the context writer so its thread ends.
                drop(stream);
                let _ = writer.await;
                return Err(BuildError::new(
                    format!(
                        "build failed{}: {message}",
                        current_step
                            .as_ref()
                            .map(|s| format!(" at {s}"))
                            .unwrap_or_default()
                    ),
                    current_step,
                    tail.take(),
                ));
            }
        }
    }
    match writer.await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(BuildError::new(
                format!("build context: {e}"),
                None,
                tail.take(),
            ));
        }
        Err(e) => {
            return Err(BuildError::new(
                format!("build context: {e}"),
                None,
                tail.take(),
            ));
        }
    }
    outcome.last_lines = tail.take();
    if outcome.image_id.is_none() {
        // Older engines report only "Successfully built <id>".
        outcome.image_id = engine
            .docker
            .inspect_image(&first)
            .await
            .ok()
            .and_then(|i| i.id);
    }
    Ok(outcome)
}
