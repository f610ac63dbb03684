//! The README's promise to sibling repositories: examples/sibling-xtask builds with
//! headroom-cli as a git dependency, as another repository takes it, and runs the same
//! pipeline as `cargo xtask image` — lint, free (under `--root`), build, inspect, smoke, push
//! to a registry with authentication — with its own `docker/image.toml`, a report that
//! validates against the schema, and GitHub outputs. The git URL is pointed at this checkout
//! (GitHub cannot be reached here), so the committed tree is what gets built, as a sibling
//! would get it.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::Path;
use std::process::Command;

use headroom_tests::registry::{Registry, base_image};
use headroom_tests::{check_report, sh, without_github_env};

headroom_tests::tests! {
    the_sibling_example_runs_the_whole_pipeline_from_git_dependencies
        needs Docker, Tool("check-jsonschema");
}

const UPSTREAM: &str = "https://github.com/headroom-dev/headroom";

fn the_sibling_example_runs_the_whole_pipeline_from_git_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = root.join("examples/sibling-xtask");
    // On the filesystem of Docker's data root (both on / here and in CI), so that the free
    // stage's deletions under --root count towards the build's disk.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let sibling = dir.path().join("sibling");
    std::fs::create_dir_all(sibling.join("src")).unwrap();

    let manifest = std::fs::read_to_string(example.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains(&format!("git = \"{UPSTREAM}\"")),
        "the example must take headroom as a git dependency:\n{manifest}"
    );
    let local = format!("git = \"file://{}\"", root.display());
    std::fs::write(
        sibling.join("Cargo.toml"),
        manifest.replace(&format!("git = \"{UPSTREAM}\""), &local),
    )
    .unwrap();
    std::fs::copy(example.join("src/main.rs"), sibling.join("src/main.rs")).unwrap();
    // The workspace's lock pins third-party crates to what this machine already has.
    std::fs::copy(root.join("Cargo.lock"), sibling.join("Cargo.lock")).unwrap();

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet"])
        .current_dir(&sibling)
        // Its own target directory, kept between runs: third-party crates build once.
        .env("CARGO_TARGET_DIR", root.join("target/sibling-xtask"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo build of the sibling example failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(sibling.join("Cargo.lock")).unwrap();
    assert!(
        lock.contains("source = \"git+file://"),
        "headroom did not come from git:\n{lock}"
    );

    // Off a hosted runner, with neither --yes nor --root, the free stage only plans.
    let bin = root.join("target/sibling-xtask/debug/sibling-xtask");
    let sibling_run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = Command::new(&bin);
        without_github_env(&mut cmd);
        cmd.current_dir(&sibling)
            .args(args)
            .env("RUNNER_ENVIRONMENT", "self-hosted");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        (out.status.success(), stderr)
    };
    // With no engine answering on this address (and no config yet), the engine's error.
    let (ok, stderr) = sibling_run(
        &["image", "--image", "sibling/app", "--skip", "free"],
        &[("DOCKER_HOST", "tcp://127.0.0.1:9")],
    );
    assert!(!ok);
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    // The whole command line came with it: a bad flag is a usage error, as in `headroom`.
    let status = Command::new(&bin)
        .args(["image", "--no-such-flag"])
        .output()
        .unwrap()
        .status;
    assert_eq!(status.code(), Some(2), "{status:?}");

    // The sibling's own repository: a Dockerfile, its image.toml, a git commit for the tags.
    let registry = Registry::start();
    let image = format!("{}/sibling/app", registry.host());
    std::fs::create_dir_all(sibling.join("docker")).unwrap();
    std::fs::write(
        sibling.join("docker/Dockerfile"),
        format!(
            "FROM {}\nRUN mkdir -p /srv && echo sibling > /sibling.txt && echo '{{\"status\": \"ok\"}}' > /srv/health\n\
             HEALTHCHECK --interval=10s CMD [\"busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8000/health\"]\n\
             CMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/srv\"]\n",
            base_image()
        ),
    )
    .unwrap();
    std::fs::write(
        sibling.join("docker/image.toml"),
        format!(
            "dockerfile = \"Dockerfile\"\ncontext = \".\"\nimage = \"{image}\"\ndefault_branch = \"main\"\n\n\
             [smoke]\ncommand = [\"sh\", \"-c\", \"test -s /sibling.txt && echo '{{\\\"checks\\\": [], \\\"ok\\\": true}}'\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(sibling.join(".gitignore"), "target/\n").unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=sibling",
                "-c",
                "user.email=sibling@example.invalid",
            ])
            .args(args)
            .current_dir(&sibling)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "--quiet", "--initial-branch", "main"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "--message", "sibling"]);
    let sha = git(&["rev-parse", "--short=7", "HEAD"]);

    // A runner's tree for the free stage, and a target that needs some of it deleted.
    let runner = dir.path().join("runner");
    let dotnet = runner.join("usr/share/dotnet");
    // 200 MB, and a target halfway into it: other tests share this filesystem and may take or
    // give back up to 100 MB meanwhile without changing what must be deleted.
    headroom_tests::fill(&dotnet, 200, 1024 * 1024);
    let available = headroom_disk::available_bytes(dir.path()).unwrap();
    let need = (available + 100_000_000).to_string();
    let report = dir.path().join("report.json");
    let outputs = dir.path().join("github_output");
    let summary = dir.path().join("summary.md");
    let (ok, stderr) = sibling_run(
        &[
            "image",
            "--push",
            "--inspect",
            "--root",
            runner.to_str().unwrap(),
            "--need",
            &need,
            "--report",
            report.to_str().unwrap(),
        ],
        &[
            ("REGISTRY_USERNAME", &registry.user),
            ("REGISTRY_PASSWORD", &registry.password),
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains(&registry.password),
        "the password was printed"
    );
    // Progress, from headroom-cli's reporter.
    for stage in ["lint", "free", "build", "inspect", "smoke", "push"] {
        assert!(
            stderr.contains(&format!("{stage}: passed")),
            "{stage}: {stderr}"
        );
    }
    let r = check_report(&report);
    let names: Vec<String> = r.stages.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["lint", "free", "build", "inspect", "smoke", "push"]);
    assert!(
        r.free.as_ref().is_some_and(|f| f.freed_bytes > 0) && !dotnet.exists(),
        "the free stage did not delete the runner's dotnet: {:?}",
        r.free
    );
    let health = r.smoke.as_ref().and_then(|s| s.health.as_ref());
    assert!(
        health.is_some_and(|h| h.docker_status == "healthy"),
        "{health:?}"
    );
    // Tags from the sibling's git, digests as the registry has them.
    for tag in ["latest".to_string(), format!("sha-{sha}")] {
        let reference = format!("{image}:{tag}");
        let reported = r
            .image
            .digests
            .get(&reference)
            .unwrap_or_else(|| panic!("{reference} not in the report: {:?}", r.image.digests));
        assert_eq!(
            registry.manifest_digest("sibling/app", &tag).as_ref(),
            Some(reported),
            "{reference}"
        );
    }
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    let digest = r.image.digest.clone().unwrap();
    assert!(
        outputs.lines().any(|l| l == format!("digest={digest}")),
        "{outputs}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("| push | passed |"), "{summary}");
    let _ = sh(
        "docker",
        &[
            "rmi",
            "-f",
            &format!("{image}:latest"),
            &format!("{image}:sha-{sha}"),
        ],
    );
}
