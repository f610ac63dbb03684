//! A sibling repository's xtask: headroom's whole command line — `cargo xtask image` (lint →
//! free → build → inspect → smoke → push), `free`, `lint`, `inspect`, `completions` — with
//! this repository's own image.toml, the same report, step summary and GitHub outputs.
//! It deletes only on a GitHub-hosted runner, with `--yes`, or under `--root`.

fn main() -> std::process::ExitCode {
    headroom_cli::main_with(std::env::args_os())
}
