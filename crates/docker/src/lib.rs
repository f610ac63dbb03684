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
pub mod smoke;
pub mod tags;
