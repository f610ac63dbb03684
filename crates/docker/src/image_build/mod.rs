//! Building an image through one interface with two backends: the Engine API (bollard,
//! classic builder) and `docker buildx build` (BuildKit: secrets, cache import/export,
//! several platforms, remote builders, provenance/SBOM).
//!
//! Here: [`choose_backend`] and [`build`], which runs one backend and tags the result. Below
//! it: `spec` (what to build), `outcome` (what a build reports while it runs and when it
//! ends), and one file per backend, `engine` and `buildx`.

mod buildx;
mod engine;
mod outcome;
mod spec;
#[cfg(test)]
mod tests;

use std::time::Instant;

pub use buildx::{buildx_args, buildx_available, cache_export, client_config};
pub use outcome::{BuildError, BuildEvent, BuildOutcome, BuildProgress, is_no_space};
pub use spec::{Backend, BackendChoice, BuildSpec, Output, SecretSpec, buildkit_syntax};

use crate::engine::Engine;

/// Pick the backend: `auto` takes buildx when it is installed and the build asks for
/// something only buildx does, else the engine.
pub fn choose_backend(choice: BackendChoice, spec: &BuildSpec) -> Result<Backend, BuildError> {
    let needs = spec.needs_buildx();
    match choice {
        BackendChoice::Buildx => Ok(Backend::Buildx),
        BackendChoice::Engine if !needs.is_empty() => Err(BuildError::new(
            format!(
                "the engine backend cannot do {}: use --backend buildx (or auto)",
                needs.join(", ")
            ),
            None,
            Vec::new(),
        )),
        BackendChoice::Engine => Ok(Backend::Engine),
        BackendChoice::Auto if needs.is_empty() => Ok(Backend::Engine),
        BackendChoice::Auto if buildx_available() => Ok(Backend::Buildx),
        BackendChoice::Auto => Err(BuildError::new(
            format!(
                "this build needs docker buildx for {}, and `docker buildx version` failed: \
                 install the buildx plugin (scripts/provision does)",
                needs.join(", ")
            ),
            None,
            Vec::new(),
        )),
    }
}

/// Build `spec` with `backend` on `engine`, reporting progress to `progress`.
pub async fn build(
    engine: &Engine,
    backend: Backend,
    spec: &BuildSpec,
    progress: &dyn BuildProgress,
) -> Result<BuildOutcome, BuildError> {
    if spec.tags.is_empty() {
        return Err(BuildError::new("no tags to build", None, Vec::new()));
    }
    let start = Instant::now();
    let mut outcome = match backend {
        Backend::Engine => engine::build(engine, spec, progress).await?,
        Backend::Buildx => buildx::build(engine, spec, progress).await?,
    };
    outcome.backend = Some(backend);
    outcome.references = spec.references();
    outcome.seconds = start.elapsed().as_secs_f64();
    // One tag per build request: add the others.
    if backend == Backend::Engine {
        for reference in spec.references().iter().skip(1) {
            let (repo, tag) = reference.rsplit_once(':').unwrap_or((reference, "latest"));
            let id = outcome.image_id.clone().unwrap_or_default();
            let options = bollard::query_parameters::TagImageOptionsBuilder::default()
                .repo(repo)
                .tag(tag)
                .build();
            engine
                .docker
                .tag_image(&id, Some(options))
                .await
                .map_err(|e| {
                    BuildError::new(format!("tagging {reference}: {e}"), None, Vec::new())
                })?;
        }
    }
    Ok(outcome)
}
