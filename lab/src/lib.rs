//! headroom's lab: the sandboxes, workloads, benchmarks and simulated runner that show what
//! headroom does, with real components. Never published; the product's crates never depend
//! on it. `cargo xtask bench`, `simulate` and `base-image` run it; the workspace tests
//! (`tests/`) build their fixtures on its sandboxes.
//!
//! Unlike the product's libraries, the lab prints: it is the front end of long runs that a
//! person or a CI log watches, and it says what it starts, how far it got and what it found.
//!
//! # Code map
//!
//! - [`sandbox`]: real components, made and torn down here, one of each kind —
//!   [`sandbox::loopfs`] (a filesystem in a file, loop-mounted), [`sandbox::bridge`],
//!   [`sandbox::engine`] (a throwaway `dockerd` with a service program, on a socket or
//!   TLS), [`sandbox::registry`] (with a password), [`sandbox::base_image`] (Debian by
//!   debootstrap, busybox-static), and [`sandbox::runner`], the simulated CI runner built
//!   from them and torn down by name. Sandboxes never import a benchmark or the simulator.
//! - [`workload`]: what the sandboxes are filled with, the same for the same seed — the one
//!   [`workload::Rng`], the Android-SDK-shaped tree, a hosted runner's software.
//! - [`image_run`]: the real `cargo xtask image` run against a sandbox's engine, and the
//!   figures of its report.
//! - [`bench`]: `cargo xtask bench …`, one module per benchmark; [`harness`] (timing,
//!   medians) and [`report`] (tables, docs/benchmarks.md, GitHub step summary) are what
//!   they share, and import none of them.
//! - [`simulate`]: `cargo xtask simulate`, the out-of-space failure and its cure on the
//!   simulated runner.
//! - [`smoke_judge`]: `cargo xtask smoke-judge`, the smoke stage's judgement of a smoke
//!   result made outside a container (`scripts/gpu-check` on a lent GPU machine).
//! - [`workflow`]: a repository's GitHub Actions workflow, read with a YAML parser and run
//!   step by step in the runner box ([`sandbox::runner_box`]) as a hosted runner runs it.
//! - [`sh`]: the lab's one way to run a program (duct), with errors that name the command.
//! - [`signals`]: Ctrl-C and SIGTERM during a long run: every step checks, the foreground
//!   child is told, and the sandboxes are torn down on the way out.
//! - [`repo`]: where the repository is.
//!
//! Imports go one way: the benchmarks and the simulator use the sandboxes, workloads and
//! helpers below them, never the reverse; the lab uses the product's crates, which never use
//! the lab.

pub mod bench;
pub mod harness;
pub mod image_run;
pub mod repo;
pub mod report;
pub mod sandbox;
pub mod sh;
pub mod signals;
pub mod simulate;
pub mod smoke_judge;
pub mod workflow;
pub mod workload;

pub use bench::Bench;
pub use sandbox::base_image::BaseImage;
pub use simulate::Simulate;
pub use smoke_judge::SmokeJudge;
