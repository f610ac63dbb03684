//! `cargo xtask bench builder`: the seed's incident at a stated scale — the peak disk of one
//! build with its smoke test and push, as a multiple of the image, for each output route of a
//! `docker-container` builder (`--route load|push-pull|push`) and for the engine's own builder,
//! with the floor (the image unpacked plus its compressed blobs) measured in the same run.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_disk::{WatchConfig, Watchdog, format_size};
use serde::Serialize;

use crate::image_run::run_image;
use crate::report::{self, benchmarks_md, record_between};
use crate::sandbox::builder::{BUILDKIT_IMAGE, BuilderSpec, ContainerBuilder, GcLimits};
use crate::sandbox::runner::{BASE_IMAGE, Layout, Runner, say};
use crate::sh::cmd;
use crate::signals;

/// Peak disk of a build with smoke test and push, per output route of a `docker-container`
/// builder and for the engine's builder, against the floor (image unpacked + compressed).
///
/// A dedicated dockerd keeps its data root on a fresh loop-mounted ext4 of --size (so the
/// filesystem's readings are the run's alone: the builder's state volume is on it too); the
/// BuildKit image is loaded into it from the host's engine, the base (busybox) pushed to a
/// local registry with a password. The workload is one layer of --mb random megabytes
/// (incompressible: its compressed blob is as big as the layer). Each route runs on a
/// builder made for it (removed after) with the engine reset between runs; a watchdog reads
/// the filesystem's free space every 100 ms over the whole `cargo xtask image` run.
#[derive(Args, Debug)]
pub struct BuilderBench {
    /// The random layer, in MB.
    #[arg(long, default_value_t = 400)]
    mb: u64,
    /// Size of the engine's filesystem.
    #[arg(long, default_value = "8GiB", value_parser = size_arg)]
    size: u64,
    /// Write the results into docs/benchmarks.md.
    #[arg(long)]
    record: bool,
}

fn size_arg(s: &str) -> Result<u64, String> {
    headroom_disk::parse_size(s).map_err(|e| e.to_string())
}

#[derive(Debug, Serialize)]
struct RouteResult {
    what: String,
    passed: bool,
    error: Option<String>,
    seconds: f64,
    /// Available at the start minus the lowest reading over the whole run.
    peak_bytes: u64,
    /// Available at the start minus at the end.
    kept_bytes: u64,
}

const START: &str = "<!-- bench builder: start -->";
const END: &str = "<!-- bench builder: end -->";

impl BuilderBench {
    pub fn run(self) -> Result<ExitCode> {
        if !rustix::process::geteuid().is_root() {
            bail!(
                "cargo xtask bench builder needs root: it loop-mounts a filesystem and starts dockerd"
            );
        }
        if !cmd("docker", ["image", "inspect", BUILDKIT_IMAGE])
            .stdout_null()
            .succeeds()
        {
            bail!("the host's engine has no {BUILDKIT_IMAGE}: run scripts/provision");
        }
        signals::watch(say);
        let root = crate::repo::project_root();
        let work = root.join("target/bench-builder");
        let mut runner = Runner::new(Layout::new(work.clone()));
        let result = self.all(&mut runner, &work);
        drop(runner);
        let (results, image_bytes, compressed_bytes) = result?;
        let md = self.markdown(&results, image_bytes, compressed_bytes);
        eprintln!("\n{md}");
        std::fs::write(
            work.join("results.json"),
            serde_json::to_string_pretty(&results)? + "\n",
        )
        .context("target/bench-builder/results.json")?;
        report::github_step_summary(&md)?;
        if self.record {
            record_between(&benchmarks_md(), &md, START, END)?;
            eprintln!("bench: recorded in docs/benchmarks.md");
        }
        Ok(ExitCode::SUCCESS)
    }

    fn all(&self, runner: &mut Runner, work: &Path) -> Result<(Vec<RouteResult>, u64, u64)> {
        say(&format!(
            "a fresh {} ext4 and a dockerd on it",
            format_size(self.size)
        ));
        runner.make_disk(self.size)?;
        runner.start_engine(&serde_json::json!({}))?;
        let registry = runner.start_registry()?;
        let (host, user, password) = (
            registry.host(),
            registry.user.clone(),
            registry.password.clone(),
        );
        let login = registry.docker_config(&work.join("login"))?;
        let engine = runner.engine()?;
        let ctx = work.join("ctx");
        std::fs::create_dir_all(&ctx)?;
        let base = format!("{host}/bench/base:1");
        std::fs::write(
            ctx.join("Dockerfile"),
            format!(
                "FROM {base}\n\
                 RUN dd if=/dev/urandom of=/blob bs=1M count={} 2>/dev/null \
                 && mkdir -p /www && echo '{{\"status\": \"healthy\"}}' > /www/health \
                 && echo '{{\"checks\": [], \"ok\": true}}' > /ok.json\n\
                 CMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
                self.mb
            ),
        )?;
        std::fs::write(
            ctx.join("image.toml"),
            "[smoke]\ncommand = [\"cat\", \"/ok.json\"]\nhealth_timeout = 60\n",
        )?;
        // Each run starts from an engine holding the base and the BuildKit image alone.
        let push_base = || -> Result<()> {
            say(&format!("loading {BUILDKIT_IMAGE} from the host's engine"));
            cmd("docker", ["save", BUILDKIT_IMAGE])
                .pipe(engine.docker(&["load", "-q"]))
                .run()
                .context("loading the BuildKit image into the bench's engine")?;
            runner.import_base()?;
            engine.docker(&["tag", BASE_IMAGE, &base]).read()?;
            engine
                .docker(&[
                    "--config",
                    &login.display().to_string(),
                    "push",
                    "-q",
                    &base,
                ])
                .read()?;
            Ok(())
        };
        let mut results = Vec::new();
        let routes: [(&str, Option<&str>); 4] = [
            ("engine's builder (classic store)", None),
            ("container builder, --load (before)", Some("load")),
            ("container builder, push-pull", Some("push-pull")),
            ("container builder, push (no smoke)", Some("push")),
        ];
        for (i, (what, route)) in routes.into_iter().enumerate() {
            engine
                .docker(&["system", "prune", "--all", "--force"])
                .read()?;
            push_base()?;
            let builder = match route {
                Some(_) => Some(ContainerBuilder::create(
                    &format!("hrbench{i}"),
                    work,
                    &BuilderSpec {
                        insecure_registries: vec![host.clone()],
                        gc: Some(GcLimits {
                            reserved_space: 100_000_000,
                            max_used_space: self.size / 2,
                            min_free_space: self.size / 8,
                        }),
                        docker_config: None,
                        docker_host: Some(engine.host.clone()),
                    },
                )?),
                None => None,
            };
            let mut args: Vec<String> = vec![
                "--config".into(),
                ctx.join("image.toml").display().to_string(),
                "--context".into(),
                ctx.display().to_string(),
                "--image".into(),
                format!("{host}/bench/route{i}"),
                "--tag".into(),
                "latest".into(),
                "--push".into(),
                "--skip".into(),
                if route == Some("push") {
                    "free,smoke".into()
                } else {
                    "free".into()
                },
            ];
            match (route, &builder) {
                (Some(r), Some(b)) => args.extend([
                    "--backend".into(),
                    "buildx".into(),
                    "--builder".into(),
                    b.name().to_string(),
                    "--route".into(),
                    r.into(),
                ]),
                _ => args.extend(["--backend".into(), "engine".into()]),
            }
            let path = runner.layout.mnt.clone();
            let before = headroom_disk::available_bytes(&path)?;
            let dog = Watchdog::start(
                WatchConfig {
                    path: path.clone(),
                    interval: Duration::from_millis(100),
                    floor: None,
                },
                |_| {},
            )?;
            let run = run_image(runner, &format!("route{i}"), &args);
            let timeline = dog.stop();
            let after = headroom_disk::available_bytes(&path)?;
            drop(builder);
            let run = run?;
            results.push(RouteResult {
                what: what.to_string(),
                passed: run.result == "passed",
                error: run
                    .error
                    .as_ref()
                    .and_then(|e| e.lines().next().map(String::from)),
                seconds: run.seconds,
                peak_bytes: before.saturating_sub(timeline.low_water_bytes.min(after)),
                kept_bytes: before.saturating_sub(after),
            });
        }
        // The floor: the image unpacked (the engine's size of the engine builder's image,
        // pulled back) and its compressed blobs (the registry's manifest).
        let reference = format!("{host}/bench/route0:latest");
        engine
            .docker(&[
                "--config",
                &login.display().to_string(),
                "pull",
                "-q",
                &reference,
            ])
            .read()?;
        let unpacked: u64 = engine
            .docker(&["image", "inspect", "--format", "{{.Size}}", &reference])
            .read()?
            .trim()
            .parse()
            .context("the image's size")?;
        let compressed = compressed_size(&host, "bench/route0", &user, &password)?;
        Ok((results, unpacked, compressed))
    }

    fn markdown(&self, results: &[RouteResult], image: u64, compressed: u64) -> String {
        let floor = image + compressed;
        let x = |b: u64| b as f64 / image.max(1) as f64;
        let mut md = format!(
            "{START}\n## The builder GitHub gives you: peak disk per output route\n\n\
             `cargo xtask bench builder --mb {} --size {} --record` (one layer of {} MB of random \
             data on busybox, built, smoke-tested and pushed to a local registry; the engine's \
             data root on a fresh {} ext4 of its own, the `docker-container` builder's state \
             volume on it too; peak = free space at the start less the lowest reading, every \
             100 ms over the whole run). Image {} unpacked, {} compressed: the floor (one \
             unpacked copy plus its blobs) is {} = {:.2}× the image.\n\n\
             | route | result | peak disk | × image | × floor | kept after | seconds |\n\
             |---|---|---:|---:|---:|---:|---:|\n",
            self.mb,
            format_size(self.size),
            self.mb,
            format_size(self.size),
            format_size(image),
            format_size(compressed),
            format_size(floor),
            x(floor)
        );
        for r in results {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.2}× | {:.2}× | {} | {:.0} |",
                r.what,
                if r.passed {
                    "passed".to_string()
                } else {
                    format!(
                        "failed: {}",
                        r.error.as_deref().unwrap_or("?").replace('|', "\\|")
                    )
                },
                format_size(r.peak_bytes),
                x(r.peak_bytes),
                r.peak_bytes as f64 / floor.max(1) as f64,
                format_size(r.kept_bytes),
                r.seconds
            );
        }
        let _ = writeln!(md, "{END}");
        md
    }
}

/// The compressed size of `repo:latest` in the registry at `host`: its layers and config,
/// as its manifest lists them (the password goes to curl on standard input).
fn compressed_size(host: &str, repo: &str, user: &str, password: &str) -> Result<u64> {
    let manifest = super::registry_manifest(
        host,
        repo,
        "latest",
        user,
        password,
        "application/vnd.docker.distribution.manifest.v2+json, \
         application/vnd.oci.image.manifest.v1+json",
    )?;
    let layers: u64 = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["size"].as_u64())
        .sum();
    Ok(layers + manifest["config"]["size"].as_u64().unwrap_or(0))
}
