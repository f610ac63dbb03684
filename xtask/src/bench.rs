//! `cargo xtask bench …`: benchmarks recorded in docs/benchmarks.md.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub(crate) enum Bench {
    /// Reclaim vs `rm -rf`, and measure vs `du -s`, on a synthetic Android-SDK-shaped tree.
    Free,
}

impl Bench {
    pub(crate) fn run(self) -> Result<ExitCode> {
        Ok(ExitCode::SUCCESS)
    }
}
