//! `headroom-docker`: the Docker side of headroom — connect to an engine, build an image
//! (through the Engine API or `docker buildx`), tag, push with retries, and explain failures
//! with the engine's own disk figures.
//!
//! The library is async on tokio, never prints, and reports progress through events; the
//! `cargo xtask image` pipeline decides how to show them.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod auth;
pub mod build;
pub mod context;
pub mod diagnose;
pub mod engine;
pub mod export;
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
