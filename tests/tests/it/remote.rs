//! The pipeline against a remote engine: a second dockerd on loopback TCP with TLS (its own
//! CA and certificates, its data root on a loop filesystem of its own). The build, the smoke
//! test and the push happen there; this machine's engine and files are untouched; the
//! report shows the remote engine's disk; TLS mistakes fail in seconds naming the file; and
//! a second engine rebuilds from the first one's registry cache.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::Path;
use std::time::{Duration, Instant};

use headroom_tests::registry::{Registry, base_image};
use headroom_tests::remote::{SshServer, TlsEngine, make_certs};
use headroom_tests::{Run, check_report, repo_root, xtask};

headroom_tests::tests! {
    the_pipeline_builds_smokes_and_pushes_on_a_tls_engine_and_leaves_this_machine_alone
        needs Root, Docker, Tool("check-jsonschema");
    a_wrong_ca_or_a_missing_key_fails_in_seconds_naming_the_file needs Root, Docker;
    a_second_engine_rebuilds_from_the_first_ones_registry_cache
        needs Root, Docker, Tool("check-jsonschema");
    the_pipeline_runs_over_ssh_as_the_docker_cli_does needs Root, Docker, Tool("check-jsonschema");
    a_docker_context_with_tls_reaches_the_remote_engine
        needs Root, Docker, Tool("check-jsonschema");
}

const SIM_BASE: &str = "headroom/sim-base";

fn image(args: &[&str], envs: &[(String, String)]) -> Run {
    let mut all = vec!["image"];
    all.extend_from_slice(args);
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    xtask(&all, &envs)
}

/// A build context in `dir/ctx` with this Dockerfile on the local busybox base.
fn context_on_base(dir: &Path, body: &str) -> std::path::PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\n{body}", base_image()),
    )
    .unwrap();
    ctx
}

fn the_pipeline_builds_smokes_and_pushes_on_a_tls_engine_and_leaves_this_machine_alone() {
    let engine = TlsEngine::start(1200);
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    // The simulator's workload (busybox with httpd, a health endpoint), its base made on this
    // machine's engine and copied over: nothing can be pulled.
    headroom_docker::local::busybox_image_all_applets(SIM_BASE, None, &tmp.path().join("base"))
        .unwrap();
    engine.load_from_host(SIM_BASE);
    let used_before = engine.used_bytes();
    let report = tmp.path().join("report.json");
    // An empty --root: were the engine taken for a local one, the free stage could delete
    // nothing but there.
    let root = tmp.path().join("runner");
    std::fs::create_dir(&root).unwrap();
    let repo = format!("{}/headroom/remote", registry.host());
    let mut env = engine.env();
    env.push(("REGISTRY_USERNAME".into(), registry.user.clone()));
    env.push(("REGISTRY_PASSWORD".into(), registry.password.clone()));
    let config = repo_root().join("docker/simulate/image.toml");
    let run = image(
        &[
            "--config",
            config.to_str().unwrap(),
            "--image",
            &repo,
            "--build-arg",
            "UNIT_MB=8",
            "--push",
            "--need",
            "100G",
            "--yes",
            "--root",
            root.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        &env,
    );
    assert!(run.success(), "{run:?}");
    let r = check_report(&report);
    let endpoint = r.endpoint.as_ref().unwrap();
    assert_eq!(endpoint.host, engine.host());
    assert!(endpoint.tls && !endpoint.local, "{endpoint:?}");
    let stage = |s: headroom_pipeline::Stage| r.stages.iter().find(|x| x.name == s).unwrap();
    let free = stage(headroom_pipeline::Stage::Free);
    assert_eq!(free.status.as_str(), "skipped");
    let why = free.reason.as_deref().unwrap();
    assert!(
        why.contains("remote") && why.contains(&engine.host()),
        "{why}"
    );
    for s in [
        headroom_pipeline::Stage::Build,
        headroom_pipeline::Stage::Smoke,
        headroom_pipeline::Stage::Push,
    ] {
        assert_eq!(stage(s).status.as_str(), "passed", "{s}: {:?}", r.stages);
    }
    // The health endpoint answered from the container on the remote engine.
    let smoke = r.smoke.as_ref().unwrap();
    assert!(format!("{smoke:?}").contains("health"), "{smoke:?}");
    // The remote engine's disk, sampled through its API over the build.
    let disk = r.disk.engine.as_ref().unwrap();
    assert_eq!(disk.host, engine.host());
    assert!(!disk.samples.is_empty());
    let (before, peak) = (disk.before_bytes.unwrap(), disk.peak_bytes.unwrap());
    assert!(peak > before + (8 << 20), "{disk:?}");
    assert!(r.disk.timeline.is_none() && r.disk.path.is_none());
    // The image is on the remote engine and in the registry, not on this machine's engine;
    // the bytes went to the remote engine's own filesystem.
    let digest = r.image.digest.clone().unwrap();
    let tag = r.image.tags.first().unwrap();
    assert_eq!(
        registry.manifest_digest("headroom/remote", tag).as_deref(),
        Some(digest.as_str())
    );
    assert!(
        engine
            .docker(&["image", "inspect", &format!("{repo}:{tag}")])
            .is_some()
    );
    // Other tests use this machine's engine meanwhile: what must hold is that nothing of
    // this build is there.
    let on_host = std::process::Command::new("docker")
        .args(["images", "-q", &repo])
        .output()
        .unwrap();
    assert!(
        on_host.status.success() && on_host.stdout.is_empty(),
        "the image was made on this machine's engine"
    );
    assert!(engine.used_bytes() > used_before + (8 << 20));
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
}

fn a_wrong_ca_or_a_missing_key_fails_in_seconds_naming_the_file() {
    let engine = TlsEngine::start(300);
    let tmp = tempfile::tempdir().unwrap();
    // Another CA: the engine's certificate is not signed by it.
    let other = tmp.path().join("other");
    make_certs(&other);
    let wrong_ca = tmp.path().join("wrong-ca");
    std::fs::create_dir(&wrong_ca).unwrap();
    std::fs::copy(other.join("ca.pem"), wrong_ca.join("ca.pem")).unwrap();
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(engine.certs.join(f), wrong_ca.join(f)).unwrap();
    }
    let no_key = tmp.path().join("no-key");
    std::fs::create_dir(&no_key).unwrap();
    for f in ["ca.pem", "cert.pem"] {
        std::fs::copy(engine.certs.join(f), no_key.join(f)).unwrap();
    }
    let ctx = context_on_base(tmp.path(), "");
    for (dir, wanted) in [(&wrong_ca, "ca.pem"), (&no_key, "key.pem")] {
        let env = vec![
            ("DOCKER_HOST".to_string(), engine.host()),
            ("DOCKER_TLS_VERIFY".to_string(), "1".to_string()),
            ("DOCKER_CERT_PATH".to_string(), dir.display().to_string()),
        ];
        headroom_tests::xtask_bin(); // built before the clock starts
        let started = Instant::now();
        let run = image(
            &[
                "--context",
                ctx.to_str().unwrap(),
                "--image",
                "headroom-test/tls",
                "--skip",
                "free",
                "--report",
                tmp.path().join("r.json").to_str().unwrap(),
            ],
            &env,
        );
        let took = started.elapsed();
        assert!(!run.success(), "{run:?}");
        assert!(took < Duration::from_secs(15), "{took:?}: {}", run.stderr);
        let file = dir.join(wanted).display().to_string();
        assert!(
            run.stderr.contains(&file),
            "{wanted} not named: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("Start the daemon"), "{}", run.stderr);
    }
}

fn a_second_engine_rebuilds_from_the_first_ones_registry_cache() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context_on_base(
        tmp.path(),
        "RUN head -c 3000000 /dev/urandom > /one\nRUN echo two > /two\n",
    );
    let repo = format!("{}/headroom/shared-cache", registry.host());
    let creds = vec![
        ("REGISTRY_USERNAME".to_string(), registry.user.clone()),
        ("REGISTRY_PASSWORD".to_string(), registry.password.clone()),
    ];
    let build = |env: &[(String, String)], flags: &[&str], report: &Path| {
        let mut args = vec![
            "--context",
            ctx.to_str().unwrap(),
            "--image",
            &repo,
            "--backend",
            "buildx",
            "--report",
            report.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        image(&args, env)
    };
    // Engine A (this machine's) builds and pushes with an inline cache.
    let first = tmp.path().join("a.json");
    let run = build(
        &creds,
        &[
            "--cache-to",
            "type=inline",
            "--push",
            "--skip",
            "free,smoke",
        ],
        &first,
    );
    assert!(run.success(), "{run:?}");
    // Engine B, empty but for the base, rebuilds from the registry.
    let engine = TlsEngine::start(600);
    engine.load_from_host(base_image());
    let mut env = engine.env();
    env.extend(creds.clone());
    let second = tmp.path().join("b.json");
    let cache_from = format!("type=registry,ref={repo}:latest");
    let run = build(
        &env,
        &["--cache-from", &cache_from, "--skip", "free,smoke,push"],
        &second,
    );
    assert!(run.success(), "{run:?}");
    let r = check_report(&second);
    assert!(!r.endpoint.as_ref().unwrap().local);
    let cached = r.build.as_ref().unwrap().cached_steps;
    assert!(
        cached >= 2,
        "{cached} cached steps on engine B: {:?}",
        r.build
    );
    // The image is on B, built without running the steps again.
    let out = engine
        .docker(&["run", "--rm", &format!("{repo}:latest"), "cat", "/two"])
        .unwrap();
    assert_eq!(out, "two");
    assert!(
        !run.stderr.contains(&registry.password),
        "the password was printed"
    );
}

/// `ssh://` as the Docker CLI does it: the system's ssh runs `docker system dial-stdio` on the
/// host (here an sshd on loopback with a key made by the test, reaching this machine's own
/// engine as a remote one). Build, push and the disk sampling all go through it; a refused
/// login fails with ssh's own reason.
fn the_pipeline_runs_over_ssh_as_the_docker_cli_does() {
    let ssh = SshServer::start();
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context_on_base(tmp.path(), "RUN echo over-ssh > /ssh\n");
    let root = tmp.path().join("runner");
    std::fs::create_dir(&root).unwrap();
    let report = tmp.path().join("r.json");
    let repo = format!("{}/headroom/ssh", registry.host());
    let args = [
        "--context",
        ctx.to_str().unwrap(),
        "--image",
        &repo,
        "--backend",
        "engine",
        "--push",
        "--skip",
        "smoke",
        "--need",
        "100G",
        "--yes",
        "--root",
        root.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ];
    let env = vec![
        ("DOCKER_HOST".to_string(), ssh.docker_host()),
        ("REGISTRY_USERNAME".to_string(), registry.user.clone()),
        ("REGISTRY_PASSWORD".to_string(), registry.password.clone()),
    ];
    let run = image(&args, &env);
    assert!(run.success(), "{run:?}");
    let r = check_report(&report);
    let endpoint = r.endpoint.as_ref().unwrap();
    assert_eq!(endpoint.host, ssh.docker_host());
    assert!(!endpoint.local && !endpoint.tls, "{endpoint:?}");
    let free = r
        .stages
        .iter()
        .find(|s| s.name == headroom_pipeline::Stage::Free)
        .unwrap();
    assert!(
        free.reason.as_deref().unwrap().contains("remote"),
        "{free:?}"
    );
    let digest = r.image.digest.clone().unwrap();
    let tag = r.image.tags.first().unwrap();
    assert_eq!(
        registry.manifest_digest("headroom/ssh", tag).as_deref(),
        Some(digest.as_str())
    );
    // The CLI children (docker system df) reached the engine over ssh too.
    let disk = r.disk.engine.as_ref().unwrap();
    assert!(!disk.samples.is_empty(), "{disk:?}");
    assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);

    // A user the server refuses: ssh's reason, in seconds, and no advice to start a daemon.
    let mut env = env.clone();
    env[0].1 = format!("ssh://headroom-no-such-user@{}", ssh.alias);
    let started = Instant::now();
    let run = image(&args, &env);
    assert!(!run.success(), "{run:?}");
    assert!(run.stderr.contains("Permission denied"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ssh to the Docker engine"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Start the daemon"), "{}", run.stderr);
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A docker context (made by the real CLI in a Docker config of the test's own) that points
/// at the TLS engine: the pipeline resolves it as the CLI does, builds there, and its CLI
/// children reach the same engine with the context's TLS files.
fn a_docker_context_with_tls_reaches_the_remote_engine() {
    let engine = TlsEngine::start(400);
    engine.load_from_host(base_image());
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("docker-config");
    std::fs::create_dir(&config).unwrap();
    let c = |f: &str| engine.certs.join(f).display().to_string();
    let docker_opt = format!(
        "host={},ca={},cert={},key={}",
        engine.host(),
        c("ca.pem"),
        c("cert.pem"),
        c("key.pem")
    );
    let out = std::process::Command::new("docker")
        .args(["context", "create", "hr-remote", "--docker", &docker_opt])
        .env("DOCKER_CONFIG", &config)
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ctx = context_on_base(tmp.path(), "RUN echo via-context > /c\n");
    let report = tmp.path().join("r.json");
    let run = image(
        &[
            "--context",
            ctx.to_str().unwrap(),
            "--image",
            "headroom-test/context",
            "--skip",
            "free,smoke,push",
            "--report",
            report.to_str().unwrap(),
        ],
        &[
            ("DOCKER_CONFIG".to_string(), config.display().to_string()),
            ("DOCKER_CONTEXT".to_string(), "hr-remote".to_string()),
        ],
    );
    assert!(run.success(), "{run:?}");
    let r = check_report(&report);
    let endpoint = r.endpoint.as_ref().unwrap();
    assert_eq!(endpoint.host, engine.host());
    assert!(endpoint.tls && !endpoint.local, "{endpoint:?}");
    assert!(endpoint.source.contains("hr-remote"), "{endpoint:?}");
    assert!(
        engine
            .docker(&["image", "inspect", "headroom-test/context:latest"])
            .is_some()
    );
    // docker system df ran against it with the context's TLS files.
    assert!(!r.disk.engine.as_ref().unwrap().samples.is_empty());
}
