//! `headroom-pipeline`: what the image pipeline is, as a library.
//!
//! The pipeline is **lint → free → build → inspect → smoke → push**, cheap checks before
//! anything destructive. This crate holds what every caller of it must agree on, so that
//! headroom's own `cargo xtask image` and a sibling repository's xtask behave the same.
//!
//! A sibling repository's xtask is a few lines:
//!
//! ```no_run
//! use headroom_pipeline::{ImageArgs, Pipeline, Settings, Silent};
//! # fn main() -> Result<(), headroom_pipeline::PipelineError> {
//! let args = ImageArgs { config: Some("docker/image.toml".into()), ..ImageArgs::default() };
//! let settings = Settings::resolve(&args, std::path::Path::new("."))?;
//! let report = Pipeline::new(settings).run(&Silent)?;
//! assert!(report.first_failed().is_none());
//! # Ok(()) }
//! ```
//!
//! The library never prints: it returns values and strings, and tells a [`Reporter`] (which
//! the binary implements) what happens.
//!
//! # Code map
//!
//! From the entry point down; a module imports only those below it.
//!
//! - `run.rs` — the sequencer: [`Pipeline::run`] asks the credentials,
//!   the engine and git, then runs the stages in their order, records each one, writes the
//!   report and, on GitHub Actions, the step summary and outputs. `matrix.rs`: the same,
//!   once per `[[variants]]` entry, into one report.
//! - [`stage`] — the declared stage list ([`Stage`]) and one module per stage, each holding
//!   its I/O, how it fills the report and what it tells the reporter: `lint`, `place`,
//!   `free`, `build`, `inspect`, `smoke`, `push`. [`stage::place`] is **placement**, the free
//!   stage's first choice (target met, move the data root to a bigger disk, or delete): its
//!   decision, orchestration and report, over `headroom_disk::candidates` (where it may go)
//!   and `headroom_docker::relocate` (how a data root moves).
//! - [`settings`] — [`ImageArgs`] (the flags) and `docker/image.toml` resolved once into
//!   [`Settings`]; [`config`] — [`ConfigError`] and reading a configuration file, which
//!   `settings`, [`lint`] (the `[lint]` table, linting one Dockerfile) and [`gate`] (the
//!   inspect stage's thresholds and evaluation) share. [`reference`] — every key of the
//!   configuration files as data, and `docs/configuration.md` made from it.
//! - [`policy`] — the rules as functions: smoke expectations, the base-image pull hint, the
//!   free-stage target estimated from the last report; [`budget`] — the disk budget per
//!   phase; [`Runner`] — who may delete unasked (GitHub-hosted runners only).
//! - [`Report`] (`report.rs`) — the one report type, versioned, `Serialize + Deserialize`,
//!   with its JSON Schema ([`REPORT_SCHEMA`]); [`Reporter`] (`reporter.rs`) — the events of a
//!   run, for a binary to show.
//! - [`render`] — every text made from those values: `human` (tables, reports, one line per
//!   event), `markdown` (step summaries), `github` (annotations, groups, step outputs).
//!   [`github`] appends to the files GitHub Actions gives a step.
//! - [`privilege`] — root only where it is needed: a reclaim that needs it runs through
//!   `sudo -n` in a hidden helper (the same binary, handed the plan), called first in `main`.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod budget;
pub mod config;
pub mod gate;
pub mod github;
pub mod lint;
mod matrix;
pub mod policy;
pub mod privilege;
pub mod reference;
pub mod render;
mod report;
mod reporter;
pub mod route;
mod run;
mod runner;
pub mod settings;
pub mod stage;

pub use config::ConfigError;
pub use report::{
    Cause, DiskReport, EndpointReport, EngineDisk, EngineSample, ImageReport, Report, ReportError,
    SCHEMA_VERSION, SmokeReport, StageReport, StageStatus, VariantOutcome,
};
pub use reporter::{Reporter, Silent};
pub use run::{Pipeline, PipelineError};
pub use runner::Runner;
pub use settings::{ImageArgs, Settings};
pub use stage::{Stage, UnknownStage};

/// The JSON Schema of [`Report`] (draft 2020-12), as checked in.
pub const REPORT_SCHEMA: &str = include_str!("../report.schema.json");
