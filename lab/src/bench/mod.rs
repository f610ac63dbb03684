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

/// Every manifest type a registry may answer with: single images and indexes.
pub(crate) const ACCEPT_ANY_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest `repo:reference` in the plain-HTTP registry at `host`, asking for the types
/// in `accept` (the password goes to curl on standard input, never on its command line).
pub(crate) fn registry_manifest(
    host: &str,
    repo: &str,
    reference: &str,
    user: &str,
    password: &str,
    accept: &str,
) -> Result<serde_json::Value> {
    use anyhow::Context;
    use std::io::Write;
    let url = format!("http://{host}/v2/{repo}/manifests/{reference}");
    let mut child = std::process::Command::new("curl")
        .args(["-sf", "-K", "-", "-H"])
        .arg(format!("Accept: {accept}"))
        .arg(&url)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running curl")?;
    let config = format!(
        "user = \"{user}:{}\"\n",
        password.replace('\\', "\\\\").replace('"', "\\\"")
    );
    child
        .stdin
        .take()
        .context("curl's stdin")?
        .write_all(config.as_bytes())?;
    let out = child.wait_with_output()?;
    serde_json::from_slice(&out.stdout).with_context(|| format!("the manifest at {url}"))
}
