//! `headroom-docker`: the Docker side of headroom — connect to an engine, build an image
//! (through the Engine API or `docker buildx`), tag, push with retries, and explain failures
//! with the engine's own disk figures.
//!
//! The library is async on tokio and never prints: a build reports to a
//! [`build::BuildProgress`] and a push to a [`push::PushProgress`] (each takes the module's
//! event enum; a closure is one), and the `cargo xtask image` pipeline decides how to show
//! them.
//!
//! Code map, roughly in the order a pipeline uses it:
//! - [`engine`]: connect to an engine as the Docker CLI finds it (unix socket, TCP with TLS,
//!   or [`ssh`] through `docker system dial-stdio`), and read its facts;
//! - [`relocate`]: move the engine's data root to another filesystem, and switch its image
//!   store, in one restart;
//! - [`context`]: the build context as a tar made here (`context/plan`: which files, by the
//!   [`ignore`] rules, whose one-pattern matcher is `ignore/pattern`; `context/write`: the
//!   deterministic tar, streamed);
//! - [`build`]: one interface, two backends (files in `image_build/`: `spec`, `outcome`,
//!   `engine` for the Engine API, `buildx` for `docker buildx build`);
//! - [`builder`]: the buildx builder a build runs on (driver, state and its size, GC
//!   policy), and freeing its state after a push;
//! - [`tags`]: tags and OCI labels from git;
//! - [`auth`]: registry credentials as the Docker CLI finds them (`auth/`: `config`,
//!   `helper`, `registry`, `credentials`, `error`, `secret`);
//! - [`push`]: push with retries; [`smoke`]: run the smoke test and the health check, on
//!   the GPUs [`gpu`] decided (policy, request, the probe's error classified);
//! - [`export`]: an image's archive as a `Read`; [`diagnose`]: the engine's disk figures
//!   when something fails;
//! - [`local`]: local stand-ins for tests and benchmarks (a registry with authentication, a
//!   busybox base image).

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod auth;
// The files live in `image_build/`, not `build/`: tools and ignore files take a `build/`
// folder for build output.
#[path = "image_build/mod.rs"]
pub mod build;
pub mod builder;
pub mod context;
pub mod diagnose;
pub mod engine;
pub mod export;
pub mod gpu;
pub mod ignore;
pub mod local;
pub mod push;
pub mod relocate;
pub mod smoke;
pub mod ssh;
pub mod tags;

/// A number unlikely to repeat: for names of temporary containers and directories and for
/// retry jitter (not for secrets). The standard library's hasher keys come from the
/// system's randomness once per thread and differ on each call.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
