//! The shortest path for a sibling repository's xtask: build and push with headroom's
//! defaults — the engine from `DOCKER_HOST`/contexts, the backend chosen for the Dockerfile,
//! credentials from the environment or Docker's config, pushes retried.

use std::time::Duration;

use crate::auth::{self, AuthError, ResolveOptions};
use crate::build::{self, BackendChoice, BuildError, BuildSpec};
use crate::engine::{Engine, EngineError};
use crate::push::{self, PushError, Pushed, RetryPolicy};

/// Why [`build_and_push`] failed; each variant carries the step's own error.
#[derive(Debug, thiserror::Error)]
pub enum BuildAndPushError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Credentials(#[from] AuthError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("{0}")]
    Task(String),
}

/// Build `spec` and push every one of its tags; the digests the registry returned.
/// `spec.tags` empty means `latest`. Progress is not reported: use [`build::build`] and
/// [`push::push_all`] directly to show it.
pub async fn build_and_push(spec: &BuildSpec) -> Result<Vec<Pushed>, BuildAndPushError> {
    let mut spec = spec.clone();
    if spec.tags.is_empty() {
        spec.tags.push("latest".into());
    }
    // Credentials first: a missing password fails in seconds, not after the build.
    let host = auth::registry_host(&spec.image);
    let options = ResolveOptions::from_process_env();
    let credentials = tokio::task::spawn_blocking(move || auth::resolve(&host, &options))
        .await
        .map_err(|e| BuildAndPushError::Task(format!("resolving credentials: {e}")))??;
    let engine = Engine::from_env(Duration::from_secs(5)).await?;
    let owned = spec.clone();
    let backend =
        tokio::task::spawn_blocking(move || build::choose_backend(BackendChoice::Auto, &owned))
            .await
            .map_err(|e| BuildAndPushError::Task(format!("choosing the backend: {e}")))??;
    build::build(&engine, backend, &spec, &|_| {}).await?;
    let pushed = push::push_all(
        &engine,
        &spec.references(),
        credentials.as_ref(),
        RetryPolicy::default(),
        &|_| {},
    )
    .await?;
    Ok(pushed)
}
