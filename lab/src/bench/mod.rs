//! `cargo xtask bench …`: benchmarks against the tools people use today, side by side in one
//! run; `--record` writes the results, with the command that reproduces them, into
//! docs/benchmarks.md.
//!
//! Each benchmark is a module with a clap command; what they share (timing, medians, tables,
//! the records) is [`crate::harness`] and [`crate::report`], which import no benchmark.

mod build;
mod builder;
mod free;
mod image;
mod incident;
mod inspect;
mod lint;
mod pipeline;
mod store;

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum Bench {
    // The help text is `FreeBench`'s doc comment.
    Free(free::FreeBench),
    Pipeline(pipeline::PipelineBench),
    Image(image::ImageBench),
    Inspect(inspect::InspectBench),
    Lint(lint::LintBench),
    Build(build::BuildBench),
    Store(store::StoreBench),
    Builder(builder::BuilderBench),
    Incident(incident::IncidentBench),
}

impl Bench {
    pub fn run(self) -> Result<ExitCode> {
        match self {
            Bench::Free(bench) => bench.run(),
            Bench::Pipeline(bench) => bench.run(),
            Bench::Image(bench) => bench.run(),
            Bench::Inspect(bench) => bench.run(),
            Bench::Lint(bench) => bench.run(),
            Bench::Build(bench) => bench.run(),
            Bench::Store(bench) => bench.run(),
            Bench::Builder(bench) => bench.run(),
            Bench::Incident(bench) => bench.run(),
        }
    }
}
