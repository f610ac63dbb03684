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
//! The library never prints.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod github;
pub mod policy;
mod report;
mod runner;
mod stage;

pub use report::{
    Cause, DiskReport, ImageReport, Report, ReportError, SCHEMA_VERSION, SmokeReport, StageReport,
    StageStatus,
};
pub use runner::Runner;
pub use stage::{Stage, UnknownStage};

/// The JSON Schema of [`Report`] (draft 2020-12), as checked in.
pub const REPORT_SCHEMA: &str = include_str!("../report.schema.json");
