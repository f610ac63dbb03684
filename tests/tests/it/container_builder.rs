//! `cargo xtask image` on the builder GitHub gives you: a buildx `docker-container` builder
//! made from the BuildKit image in `../shared/buildkit/` (the lab's `ContainerBuilder`), with
//! the lab's authenticating registry. Its `FROM` image is on that registry (a container
//! builder cannot see the engine's images), so the one login the run is given
//! (`REGISTRY_USERNAME`/`REGISTRY_PASSWORD`) serves the base, the cache and the push.
//!
//! Tiny images (busybox, a few MB); the builder, its state volume, the registry and the images
//! are removed on drop, also when a test fails.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};

use headroom_lab::sandbox::builder::{BuilderSpec, ContainerBuilder, GcLimits};
use headroom_tests::registry::{Registry, base_image};
use headroom_tests::{Run, sh, xtask};
use serde_json::Value;

headroom_tests::tests! {
    pushes_from_the_builder_without_loading_and_a_failed_cache_export_is_a_warning
        needs Docker, BuildKit, Tool("check-jsonschema");
    a_smoke_test_gets_the_image_by_push_then_pull_with_the_builders_state_freed_between
        needs Docker, BuildKit, Tool("check-jsonschema");
}

/// A registry with the base on it, a container builder that reaches the registry over HTTP,
/// and a directory; removed in that order's reverse.
struct Fixture {
    builder: ContainerBuilder,
    registry: Registry,
    dir: tempfile::TempDir,
    /// Images this test put into the engine, removed on drop.
    images: Vec<String>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for image in &self.images {
            let _ = std::process::Command::new("docker")
                .args(["image", "rm", "--force", image])
                .output();
        }
    }
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let registry = Registry::start();
        let dir = tempfile::tempdir().unwrap();
        let mut images = Vec::new();
        // The base goes to the registry: the builder pulls it from there, with the login.
        let base = format!("{}/base/busybox:1", registry.host());
        sh("docker", &["tag", base_image(), &base]);
        images.push(base.clone());
        let config = registry.docker_config(&dir.path().join("login")).unwrap();
        sh(
            "docker",
            &[
                "--config",
                config.to_str().unwrap(),
                "push",
                "--quiet",
                &base,
            ],
        );
        let builder = ContainerBuilder::create(
            &format!("headroom-it-{name}-{}", std::process::id()),
            dir.path(),
            &BuilderSpec {
                insecure_registries: vec![registry.host()],
                // The limits headroom's workflow gives its builder, scaled down.
                gc: Some(GcLimits {
                    reserved_space: 100_000_000,
                    max_used_space: 2_000_000_000,
                    min_free_space: 1_000_000_000,
                }),
                docker_config: None,
                docker_host: None,
            },
        )
        .unwrap();
        Fixture {
            builder,
            registry,
            dir,
            images,
        }
    }

    fn base(&self) -> String {
        format!("{}/base/busybox:1", self.registry.host())
    }

    /// A context whose Dockerfile is `body` on the registry's base.
    fn context(&self, body: &str) -> PathBuf {
        let ctx = self.dir.path().join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM {}\n{body}", self.base()),
        )
        .unwrap();
        std::fs::write(ctx.join("hello.txt"), "hello\n").unwrap();
        ctx
    }

    /// `cargo xtask image` on the builder with the registry's login in the environment.
    fn image(&mut self, repo: &str, extra: &[&str]) -> (Run, Value, String) {
        let image = format!("{}/{repo}", self.registry.host());
        self.images.push(format!("{image}:latest"));
        let ctx = self.dir.path().join("ctx");
        let report = self
            .dir
            .path()
            .join(format!("{}.json", repo.replace('/', "-")));
        let summary = self.dir.path().join("summary.md");
        let mut args = vec![
            "image",
            "--context",
            ctx.to_str().unwrap(),
            "--image",
            &image,
            "--tag",
            "latest",
            "--builder",
            self.builder.name(),
            "--push",
            "--skip",
            "free",
            "--report",
            report.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = xtask(
            &args,
            &[
                ("REGISTRY_USERNAME", &self.registry.user),
                ("REGISTRY_PASSWORD", &self.registry.password),
                ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
                (
                    "GITHUB_OUTPUT",
                    self.dir.path().join("out.txt").to_str().unwrap(),
                ),
            ],
        );
        assert!(
            !run.stderr.contains(&self.registry.password),
            "the password was printed"
        );
        let r = report_json(&report);
        let md = std::fs::read_to_string(&summary).unwrap_or_default();
        (run, r, md)
    }
}

fn report_json(path: &Path) -> Value {
    headroom_tests::check_report(path);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn in_engine(image: &str) -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", image])
        .output()
        .unwrap()
        .status
        .success()
}

/// A TCP port on loopback that nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pushes_from_the_builder_without_loading_and_a_failed_cache_export_is_a_warning() {
    let mut f = Fixture::new("push");
    f.context("COPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy.txt\n");
    let cache = format!("type=registry,ref=127.0.0.1:{}/cache:x", closed_port());
    let (run, r, md) = f.image("ns/app", &["--cache-to", &cache]);
    assert!(run.success(), "{run:?}");
    let b = &r["builder"];
    assert_eq!(b["route"], "push", "{b}");
    assert_eq!(b["facts"]["driver"], "docker-container", "{b}");
    assert_eq!(b["facts"]["name"], f.builder.name());
    assert!(b["state_after_build_bytes"].as_u64().unwrap() > 0, "{b}");
    // Nothing was loaded into the engine; the registry has the tag, with the digest reported.
    for reference in r["image"]["references"].as_array().unwrap() {
        let reference = reference.as_str().unwrap();
        assert!(!in_engine(reference), "{reference} was loaded");
    }
    let digest = f.registry.manifest_digest("ns/app", "latest").unwrap();
    assert_eq!(r["image"]["digest"], digest.as_str(), "{}", r["image"]);
    // The cache export could not be written: a warning, not a failed step.
    let warnings = b["cache_warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().contains("exporting cache")),
        "{b}"
    );
    assert!(run.stderr.contains("cache export failed"), "{}", run.stderr);
    for stage in r["stages"].as_array().unwrap() {
        assert_ne!(stage["status"], "failed", "{stage}");
    }
    // The route and the builder's disk are in the step summary.
    assert!(md.contains("Route: **push**"), "{md}");
    assert!(
        md.contains(&format!(
            "Builder `{}` (driver docker-container)",
            f.builder.name()
        )),
        "{md}"
    );
    assert!(md.contains("Cache export failed"), "{md}");
}

fn a_smoke_test_gets_the_image_by_push_then_pull_with_the_builders_state_freed_between() {
    let mut f = Fixture::new("pull");
    f.context(
        "RUN /bin/busybox mkdir -p /www && echo '{\"status\": \"healthy\"}' > /www/health \
         && echo '{\"checks\": [], \"ok\": true}' > /ok.json\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    );
    let config = f.dir.path().join("image.toml");
    std::fs::write(
        &config,
        "[smoke]\ncommand = [\"cat\", \"/ok.json\"]\nhealth_timeout = 30\n",
    )
    .unwrap();
    let (run, r, md) = f.image("ns/smoked", &["--config", config.to_str().unwrap()]);
    assert!(run.success(), "{run:?}");
    let b = &r["builder"];
    // No earlier report gives the image's size: --load is not risked.
    assert_eq!(b["route"], "push-pull", "{b}");
    assert_eq!(b["pruned"], true, "{b}");
    let built = b["state_after_build_bytes"].as_u64().unwrap();
    let freed = b["state_after_prune_bytes"].as_u64().unwrap();
    assert!(freed < built, "the builder's state was not freed: {b}");
    // The smoke test ran on the pulled image, which the registry has under the same digest.
    let references: Vec<String> = r["image"]["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    f.images.extend(references.iter().cloned());
    assert!(
        in_engine(&references[0]),
        "{} was not pulled",
        references[0]
    );
    let stages: Vec<(&str, &str)> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert!(stages.contains(&("smoke", "passed")), "{stages:?}");
    assert!(stages.contains(&("push", "passed")), "{stages:?}");
    let digest = f.registry.manifest_digest("ns/smoked", "latest").unwrap();
    assert_eq!(r["image"]["digest"], digest.as_str());
    assert!(md.contains("Route: **push-pull**"), "{md}");
    assert!(md.contains("after it was freed"), "{md}");
}
