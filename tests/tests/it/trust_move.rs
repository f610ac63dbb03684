//! A data-root move as a transaction (issue 29), on a throwaway engine restarted through its
//! service program: what can refuse is asked before the engine stops (an immutable or
//! bind-mounted `daemon.json`), an interruption at each step rolls the move back (the engine
//! answers on its old root with the same images, containers and volumes, `daemon.json` byte
//! for byte, no partial copy, no journal), and a run killed outright is finished or rolled
//! back by the next one, whose own move then succeeds. Interruptions are sent from the
//! move's step hook, never after a sleep.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use headroom_docker::local::busybox_image_all_applets;
use headroom_docker::relocate::{Interrupt, MoveError, Step, move_data_root, move_data_root_until};
use headroom_tests::attack::bind;
use headroom_tests::engine::ServiceEngine;
use serde_json::json;

headroom_tests::tests! {
    an_immutable_or_bind_mounted_daemon_json_is_refused_before_the_engine_stops
        needs Root, Docker;
    an_interrupted_move_rolls_back_at_each_step needs Root, Docker;
    a_move_killed_outright_is_rolled_back_first_and_its_copy_blocks_nothing needs Root, Docker;
    sigterm_during_the_pipelines_restart_rolls_back_and_exits_143 needs Root, Docker;
}

const IMAGE: &str = "headroom/trust-move";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An engine with an image, a stopped container and a volume holding a file.
fn engine_with_objects() -> ServiceEngine {
    let engine = ServiceEngine::start(&json!({"labels": ["headroom-test=trust-move"]}), false);
    busybox_image_all_applets(IMAGE, Some(&engine.host), &engine.socket_dir().join("base"))
        .unwrap();
    engine.docker(&["volume", "create", "keepvol"]).unwrap();
    engine
        .docker(&[
            "run",
            "--name",
            "keep",
            "--network",
            "none",
            "-v",
            "keepvol:/v",
            IMAGE,
            "sh",
            "-c",
            "echo precious > /v/file",
        ])
        .unwrap();
    engine
}

/// What the engine holds: image ids, container names, volume names, the volume's file.
fn objects(engine: &ServiceEngine) -> Vec<String> {
    let mut out = Vec::new();
    for args in [
        &["images", "-q", "--no-trunc"][..],
        &["ps", "-a", "--format", "{{.Names}} {{.Image}}"][..],
        &["volume", "ls", "-q"][..],
    ] {
        out.push(
            engine
                .docker(args)
                .unwrap_or_else(|| panic!("docker {args:?}")),
        );
    }
    // The volume's file as the engine's data root holds it (read from disk: the output of a
    // `docker run` of a short-lived container can be lost under load, which is not the move's).
    let root = engine
        .data_root()
        .expect("the engine answers with its data root");
    let file = root.join("volumes/keepvol/_data/file");
    out.push(
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .to_string(),
    );
    out
}

/// The engine answers on its old root with `before`'s objects, `daemon.json` is `config`,
/// and nothing of the move is left: no copy, no journal, no temporary file.
#[track_caller]
fn assert_as_before(engine: &ServiceEngine, before: &[String], config: &[u8], what: &str) {
    assert_eq!(engine.data_root(), Some(engine.old_root()), "{what}");
    assert_eq!(objects(engine), before, "{what}: the engine's objects");
    assert_eq!(std::fs::read(&engine.config).unwrap(), config, "{what}");
    assert!(
        !engine.new_root().exists(),
        "{what}: a partial copy is left"
    );
    let dir = engine.config.parent().unwrap();
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("headroom-tmp") || n.contains("headroom-move"))
        .collect();
    assert!(left.is_empty(), "{what}: left beside daemon.json: {left:?}");
}

fn an_immutable_or_bind_mounted_daemon_json_is_refused_before_the_engine_stops() {
    let engine = engine_with_objects();
    let before = objects(&engine);
    let config = std::fs::read(&engine.config).unwrap();
    let pid = std::fs::read_to_string(&engine.pidfile).unwrap();
    let refused = |what: &str, word: &str| {
        let err = runtime()
            .block_on(move_data_root(&engine.move_request()))
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, MoveError::Config { .. }), "{what}: {text}");
        assert!(text.contains(word), "{what}: {text}");
        assert!(text.contains("not stopped"), "{what}: {text}");
        // The same engine process answered throughout.
        assert_eq!(
            std::fs::read_to_string(&engine.pidfile).unwrap(),
            pid,
            "{what}"
        );
        assert_as_before(&engine, &before, &config, what);
    };
    // chattr +i where the filesystem has the flag (tmpfs since Linux 6.0).
    let chattr = Command::new("chattr")
        .arg("+i")
        .arg(&engine.config)
        .status()
        .is_ok_and(|s| s.success());
    if chattr {
        refused("an immutable daemon.json", "immutable");
        let _ = Command::new("chattr")
            .arg("-i")
            .arg(&engine.config)
            .status();
    }
    // A file bind-mounted over daemon.json (read-only) cannot be renamed over.
    let guard = bind(&engine.config, &engine.config);
    let ro = Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(&engine.config)
        .status()
        .unwrap();
    assert!(ro.success());
    refused("a read-only bind-mounted daemon.json", "mount point");
    guard.unmount();
    // And the move works once the file can be replaced.
    let moved = runtime()
        .block_on(move_data_root(&engine.move_request()))
        .unwrap();
    assert_eq!(moved.to, engine.new_root());
    assert_eq!(engine.data_root(), Some(engine.new_root()));
    assert_eq!(objects(&engine), before, "after the move");
}

fn an_interrupted_move_rolls_back_at_each_step() {
    let engine = engine_with_objects();
    let before = objects(&engine);
    let config = std::fs::read(&engine.config).unwrap();
    for at in [
        Step::Stopping,
        Step::Copying,
        Step::WritingConfig,
        Step::Starting,
    ] {
        let what = format!("SIGTERM at {at:?}");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let tx = Mutex::new(Some(tx));
        let hook = |step: Step| {
            if step == at
                && let Some(tx) = tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
        };
        let interrupt = async move {
            let _ = rx.await;
            Interrupt::TERM
        };
        let err = runtime()
            .block_on(move_data_root_until(
                &engine.move_request(),
                &hook,
                interrupt,
            ))
            .unwrap_err();
        let text = err.to_string();
        match &err {
            MoveError::Interrupted {
                code, step, signal, ..
            } => {
                assert_eq!((*code, *step, *signal), (143, at, "SIGTERM"), "{text}");
            }
            other => panic!("{what}: {other}"),
        }
        assert!(text.contains("rolled back"), "{what}: {text}");
        assert_as_before(&engine, &before, &config, &what);
    }
    // Once the copy has begun (the target has entries), whichever step that is by then.
    let target = engine.new_root();
    let interrupt = async move {
        for _ in 0..60_000 {
            if std::fs::read_dir(&target).is_ok_and(|mut d| d.next().is_some()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Interrupt::INT
    };
    let err = runtime()
        .block_on(move_data_root_until(
            &engine.move_request(),
            &|_| {},
            interrupt,
        ))
        .unwrap_err();
    assert!(
        matches!(err, MoveError::Interrupted { code: 130, .. }),
        "{err}"
    );
    assert_as_before(&engine, &before, &config, "SIGINT during the copy");
}

fn a_move_killed_outright_is_rolled_back_first_and_its_copy_blocks_nothing() {
    let engine = engine_with_objects();
    let before = objects(&engine);
    // Killed once the copy is complete and before daemon.json is written: the engine is
    // stopped, the copy fills the target, the journal says where it stopped.
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let hook = |step: Step| {
        if step == Step::WritingConfig
            && let Some(tx) = tx.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
    };
    runtime().block_on(async {
        let req = engine.move_request();
        // The kill is looked at first each time the move yields: it stops where the hook was.
        tokio::select! {
            biased;
            _ = rx => {}
            r = move_data_root_until(&req, &hook, std::future::pending()) => {
                panic!("the move was not cut short: {r:?}")
            }
        }
    });
    assert!(
        engine.docker(&["version"]).is_none(),
        "the engine is stopped"
    );
    assert!(
        std::fs::read_dir(engine.new_root())
            .unwrap()
            .next()
            .is_some(),
        "the copy is there"
    );
    let journal = headroom_docker::relocate::Journal::read(&engine.config)
        .unwrap()
        .unwrap();
    assert_eq!(journal.step, Step::WritingConfig);

    // The next run rolls it back first, knows the copy as its own, and moves.
    let moved = runtime()
        .block_on(move_data_root(&engine.move_request()))
        .unwrap();
    let recovered = moved.recovered.clone().unwrap_or_default();
    assert!(recovered.contains("rolled back"), "{moved:?}");
    assert_eq!(engine.data_root(), Some(engine.new_root()));
    assert_eq!(objects(&engine), before, "after the recovered move");
    assert!(
        headroom_docker::relocate::Journal::read(&engine.config)
            .unwrap()
            .is_none()
    );
}

/// The pipeline's own signal handling: `cargo xtask image` switching the image store (a
/// restart of the engine) is paused at the engine's start (`HEADROOM_PAUSE_AT`) and sent a
/// real SIGTERM there: it waits for the move to roll back, says so, and exits 143.
fn sigterm_during_the_pipelines_restart_rolls_back_and_exits_143() {
    let engine = engine_with_objects();
    let before = objects(&engine);
    let config = std::fs::read(&engine.config).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM {IMAGE}\nRUN true\n")).unwrap();
    let paused = tmp.path().join("paused");
    let report = tmp.path().join("r.json");
    let mut cmd = Command::new(headroom_tests::xtask_bin());
    cmd.arg("image")
        .arg("--context")
        .arg(&ctx)
        .args(["--image", "headroom-test/paused", "--tag", "latest"])
        .args(["--skip", "smoke,push", "--need", "1"])
        .arg("--engine-service")
        .arg(&engine.service)
        .args(["--engine-store", "containerd", "--root"])
        .arg(engine.socket_dir())
        .arg("--report")
        .arg(&report)
        .env("DOCKER_HOST", &engine.host)
        .env("HEADROOM_PAUSE_AT", "starting")
        .env("HEADROOM_PAUSE_FILE", &paused)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    headroom_tests::without_github_env(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    // The move says where it stopped by creating the file; wait for that event (bounded).
    let start = std::time::Instant::now();
    while !paused.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the run ended ({status}) before the pause: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "never paused at the engine's start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(&paused).unwrap(), "starting");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("rolled back"), "{stderr}");
    assert_as_before(&engine, &before, &config, "SIGTERM through the pipeline");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["cause"], "interrupted", "{r:#}");
}
