//! `headroom-pipeline`: what the image pipeline is, as a library.
//!
//! The pipeline is **lint → free → build → inspect → smoke → push**, cheap checks before
//! anything destructive. This crate holds what every caller of it must agree on, so that
//! headroom's own `cargo xtask image` and a sibling repository's xtask behave the same:
//!
//! - the declared stage list and its order ([`Stage`]);
//! - who may delete without being asked ([`Runner`]: GitHub-hosted runners only);
//! - the policy rules: smoke expectations, the base-image pull hint, the free-stage target
//!   estimated from the last report ([`policy`]);
//! - the one report type, versioned and `Serialize + Deserialize` ([`Report`]), its JSON
//!   Schema (`report.schema.json`, [`REPORT_SCHEMA`]), and what GitHub Actions gets from it
//!   (step summary and outputs, [`github`]).
//!
//! - the run itself: [`Settings`] resolved once from flags ([`ImageArgs`]) and files, then
//!   [`Pipeline::run`] with a [`Reporter`] for what a person sees, returning the report;
//! - the lint stage's file reading and formats ([`lint`]) and the inspect gate ([`gate`]).
//!
//! A sibling repository's xtask is a few lines:
//!
//! ```no_run
//! use headroom_pipeline::{ImageArgs, Pipeline, Settings, Silent};
//! # fn main() -> Result<(), headroom_pipeline::PipelineError> {
//! let args = ImageArgs { config: "docker/image.toml".into(), ..ImageArgs::default() };
//! let settings = Settings::resolve(&args, std::path::Path::new("."))?;
//! let report = Pipeline::new(settings).run(&Silent)?;
//! assert!(report.first_failed().is_none());
//! # Ok(()) }
//! ```
//!
//! The library never prints.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod budget;
pub mod gate;
pub mod github;
pub mod lint;
mod matrix;
pub mod place;
pub mod policy;
mod report;
mod reporter;
mod run;
mod runner;
pub mod settings;
mod stage;

pub use report::{
    Cause, DiskReport, EndpointReport, EngineDisk, EngineSample, ImageReport, Report, ReportError,
    SCHEMA_VERSION, SmokeReport, StageReport, StageStatus, VariantOutcome,
};
pub use reporter::{Reporter, Silent};
pub use run::{Pipeline, PipelineError};
pub use runner::Runner;
pub use settings::{ConfigError, ImageArgs, Settings};
pub use stage::{Stage, UnknownStage};

/// The JSON Schema of [`Report`] (draft 2020-12), as checked in.
pub const REPORT_SCHEMA: &str = include_str!("../report.schema.json");
