//! `cargo xtask lint`: read a Dockerfile as Docker reads it. For now `--dump` prints what the
//! parser sees (the JSON shape is documented in the `headroom-dockerfile` crate).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

/// Parse a Dockerfile the way Docker's parser does and print it as JSON: one object per
/// instruction with its lines, lower-case keyword, flags, and either `args` or the `shell`
/// text handed to the shell (plus `heredocs`, and `trigger` for ONBUILD).
///
/// A Dockerfile Docker would refuse to parse is reported as FILE:LINE:COLUMN: MESSAGE, with
/// exit status 1.
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct Lint {
    /// The Dockerfile.
    file: PathBuf,
    /// Print the parsed instructions as JSON.
    #[arg(long, required = true)]
    dump: bool,
}

impl Lint {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let bytes = std::fs::read(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        let dockerfile = match headroom_dockerfile::parse_bytes(&bytes) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{}:{e}", self.file.display());
                return Ok(ExitCode::FAILURE);
            }
        };
        if self.dump {
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &dockerfile.dump())?;
            writeln!(out)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
