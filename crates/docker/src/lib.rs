//! `headroom-docker`: the Docker side of headroom — engine, build, run, push, and
//! Dockerfile and image analysis.
//!
//! The crate is laid out now so that sibling repositories can depend on a stable name; its
//! capabilities arrive with the `cargo xtask image` pipeline.
