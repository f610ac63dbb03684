//! `headroom-cli`: headroom's command line, as a library and as the `headroom` binary.
//!
//! The whole command line is here, so that every front end is a few lines: the `headroom`
//! binary (`cargo install --path cli`), headroom's own `cargo xtask` (which adds the lab's
//! commands) and a sibling repository's xtask:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     headroom_cli::main_with(std::env::args_os())
//! }
//! ```
//!
//! The libraries below it never print; this crate is where text reaches a terminal or a CI
//! log. It holds flags, exit statuses and the `Reporter` implementations, never a decision
//! that a sibling would need as a library call (that belongs in `headroom-pipeline`).
//!
//! # Code map
//!
//! - `free`, `image`, `inspect`, `lint`: one module per command, each a clap struct with a
//!   `run`.
//! - `completions`: `headroom completions bash|zsh|fish`.
//! - `ui`: how the commands show things (bars on a terminal, plain lines on CI, `::group::`
//!   on GitHub Actions, `-q`/`-v`, folded repeats).
//!
//! # Exit status, in every command
//!
//! 0 success; 1 a check failed (a lint finding at or above the threshold, a gate, the smoke
//! test, the build); 2 a usage or configuration error (a bad flag, a bad value, a missing or
//! malformed file); 130 after SIGINT and 143 after SIGTERM.

mod completions;
mod free;
mod image;
mod inspect;
mod lint;
pub mod ui;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use completions::Completions;
pub use free::Free;
pub use image::Image;
pub use inspect::Inspect;
pub use lint::Lint;

/// Exit status of a usage or configuration error.
pub const EXIT_USAGE: u8 = 2;

const EXAMPLES: &str = "\
Examples:
  headroom image --context . --image ghcr.io/me/app        # build ./Dockerfile, nothing pushed
  headroom image --context . --image ghcr.io/me/app --push # lint, free, build, smoke, push
  headroom free --need 30G --dry-run                       # what would be deleted for 30 GB
  headroom lint Dockerfile                                 # hadolint's rules and headroom's
  headroom inspect ghcr.io/me/app:latest --ci              # fail on wasted bytes
  headroom completions bash > /etc/bash_completion.d/headroom";

/// headroom: build big AI images on small CI disks.
#[derive(Parser, Debug)]
#[command(
    name = "headroom",
    version,
    about = "headroom: build big AI images on small CI disks",
    after_help = EXAMPLES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct Global {
    /// Print only errors and the closing summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print every line, repeats unfolded.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The product's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    Free(Free),
    Image(Box<Image>),
    Inspect(Inspect),
    Lint(Lint),
    Completions(Completions),
}

/// What a front end tells the commands about where it runs.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where the image pipeline writes `target/headroom/report.json` unless told: the
    /// current directory for `headroom`, the workspace for an xtask.
    pub workspace: PathBuf,
    /// The command line's name, for messages and completions (`headroom`, `cargo xtask`).
    pub name: String,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            workspace: PathBuf::from("."),
            name: "headroom".into(),
        }
    }
}

impl Command {
    /// Run the command; errors are printed here, and the exit status follows the one
    /// convention (0, 1, 2, 130, 143).
    pub fn run(self, global: Global, context: &Context) -> ExitCode {
        ui::set_verbosity(global);
        let result = match self {
            Command::Free(cmd) => cmd.run(),
            Command::Image(cmd) => cmd.run(&context.workspace),
            Command::Inspect(cmd) => cmd.run(),
            Command::Lint(cmd) => cmd.run(),
            Command::Completions(cmd) => cmd.run::<Cli>(&context.name),
        };
        match result {
            Ok(code) => code,
            Err(err) => {
                eprintln!("error: {}", ui::printable(&format!("{err:#}")));
                ExitCode::from(exit_status_of(&err))
            }
        }
    }
}

/// 2 when the error is a usage or configuration error (a settings file, a flag's value, a
/// file named on the command line that is not there), else 1.
fn exit_status_of(err: &anyhow::Error) -> u8 {
    let usage = err.chain().any(|cause| {
        cause.is::<headroom_pipeline::config::ConfigError>() || cause.is::<UsageError>()
    });
    if usage { EXIT_USAGE } else { 1 }
}

/// A usage error found after parsing (a flag's value that clap could not check).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parse `args` (the program's name first) and run the command: the whole `headroom`
/// binary. A bad flag or value exits 2; `--help` and `--version` exit 0.
pub fn main_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    if let Some(code) = privileged_helper() {
        return code;
    }
    match Cli::try_parse_from(args) {
        Ok(cli) => cli.command.run(cli.global, &Context::default()),
        Err(e) => exit_for_clap_error(&e),
    }
}

/// When this process was started through `sudo -n` for the one step that needs root
/// (deleting root-owned software, `headroom_pipeline::privilege`): do that step, print what it
/// said, and give the exit status to end with. `None` in every other process. Every binary on
/// headroom calls it first in `main` ([`main_with`] does).
pub fn privileged_helper() -> Option<ExitCode> {
    let helper = headroom_pipeline::privilege::helper()?;
    print!("{}", helper.stdout);
    eprint!("{}", helper.stderr);
    Some(ExitCode::from(helper.code))
}

/// Print clap's error (or help) and give its exit status: 0 for help and version, else 2.
pub fn exit_for_clap_error(e: &clap::Error) -> ExitCode {
    let _ = e.print();
    if e.use_stderr() {
        ExitCode::from(EXIT_USAGE)
    } else {
        ExitCode::SUCCESS
    }
}

/// `headroom` as a binary runs it: [`main_with`] over the process's arguments.
pub fn main() -> ExitCode {
    main_with(std::env::args_os())
}
