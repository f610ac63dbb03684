//! The push stage, and the registry credentials it needs: resolved before the first stage
//! (a half-set pair or a broken config.json fails in seconds, not after the build), and
//! handed to buildx for a registry cache only when they name the same registry.

use anyhow::{Context, Result};
use headroom_docker::auth::{self, ResolveOptions};
use headroom_docker::build::BuildSpec;
use headroom_docker::engine::Engine;
use headroom_docker::push::{self, RetryPolicy};

use super::Stage;
use super::context::{Outcome, Run};
use crate::settings::Settings;

/// How credentials are looked up: `--password-stdin` and `--username`, then the environment
/// and Docker's config.
fn resolve_options(s: &Settings) -> ResolveOptions {
    ResolveOptions {
        password_stdin: s.password.as_ref().map(|p| p.expose().to_string()),
        username: s.username.clone(),
        env: std::env::vars().collect(),
        ..ResolveOptions::default()
    }
}

/// The registry credentials, resolved before anything is built so a half-set pair or a
/// broken config.json fails in seconds, not after the build.
pub(crate) async fn credentials(s: &Settings) -> Result<Option<auth::Credentials>> {
    if !s.push || s.skipped(Stage::Push) {
        return Ok(None);
    }
    let host = auth::registry_host(&s.spec.image);
    let options = resolve_options(s);
    // Credential helpers may take their time (an unlock prompt): not on the async thread.
    Ok(
        tokio::task::spawn_blocking(move || auth::resolve(&host, &options))
            .await
            .context("resolving registry credentials")??,
    )
}

/// What buildx must be given for the registries of the build's cache, base images and push:
/// buildx (its builder) authenticates to them itself and reads only Docker's config, so
/// credentials that came from the environment or `--password-stdin` would never reach it,
/// and a private cache would silently miss, a `FROM` on the push registry fail with 401 and
/// a push from the builder be refused. Those credentials name "the registry": the one pushed
/// to (given for everything on it: base, cache, push, one login as `docker login` would
/// make), or, without --push, the one registry the cache refs name. They are never handed
/// out for any other host (a cache elsewhere uses Docker's config, `docker login`), so a
/// password cannot travel to a registry it was not meant for.
pub(crate) async fn cache_logins(
    s: &Settings,
    push: Option<&auth::Credentials>,
) -> Result<Vec<auth::Credentials>> {
    let spec = &s.spec;
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
    if s.push && !s.skipped(Stage::Push) {
        // The login is for the push registry's host alone (client_config writes it under
        // `c.server`), whatever else the build reaches.
        return Ok(push.filter(|c| given(c)).cloned().into_iter().collect());
    }
    if hosts.is_empty() {
        return Ok(Vec::new());
    }
    let [host] = hosts.as_slice() else {
        return Ok(Vec::new());
    };
    let host = host.clone();
    let options = resolve_options(s);
    let found = tokio::task::spawn_blocking(move || auth::resolve(&host, &options))
        .await
        .context("resolving the registry cache's credentials")??;
    Ok(found.filter(|c| given(c)).into_iter().collect())
}

/// Push every reference; the digests go to the report.
pub(crate) async fn run(
    run: &mut Run<'_>,
    engine: &Engine,
    spec: &BuildSpec,
    credentials: Option<auth::Credentials>,
) -> Result<Outcome> {
    if !run.settings.push {
        return Ok(Outcome::Skipped(
            "--push not given: nothing leaves this machine".into(),
        ));
    }
    // The builder pushed already (route push or push-pull): its digest is every tag's.
    let from_builder = run.report.builder.as_ref().and_then(|b| b.route);
    if let Some(digest) = run
        .report
        .build
        .as_ref()
        .and_then(|b| b.pushed_digest.clone())
        .filter(|_| from_builder.is_some_and(crate::route::Route::pushes))
    {
        let r = &mut run.report;
        for reference in spec.references() {
            r.image.digests.insert(reference, digest.clone());
        }
        r.image.digest = Some(digest);
        run.reporter.note(
            Stage::Push,
            "pushed from the builder during the build (nothing loaded to push again)",
        );
        return Ok(Outcome::Passed);
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
