//! Moving a real engine's data root to another filesystem (headroom_docker::relocate), with
//! the engine stopped and started through a service program as a runner's systemd would:
//! every other daemon.json key survives, and when the engine cannot start on the new root,
//! daemon.json is put back byte for byte and the engine runs on its old root again.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::time::Duration;

use headroom_docker::local::busybox_image_all_applets;
use headroom_docker::relocate::{MoveError, move_data_root};
use headroom_tests::engine::ServiceEngine;
use serde_json::{Value, json};

headroom_tests::tests! {
    a_move_keeps_every_other_daemon_json_key_the_images_and_the_old_root needs Root, Docker;
    a_restart_that_fails_puts_daemon_json_back_and_the_engine_on_its_old_root needs Root, Docker;
    a_daemon_json_that_does_not_parse_stops_nothing needs Root, Docker;
    the_pipeline_switches_to_the_containerd_store_and_cache_export_then_works
        needs Root, Docker, Tool("check-jsonschema");
}

const IMAGE: &str = "headroom/relocate-test";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn import_image(engine: &ServiceEngine) {
    busybox_image_all_applets(IMAGE, Some(&engine.host), &engine.socket_dir().join("base"))
        .unwrap();
    assert!(engine.docker(&["image", "inspect", IMAGE]).is_some());
}

fn a_move_keeps_every_other_daemon_json_key_the_images_and_the_old_root() {
    let config = json!({
        "log-level": "warn",
        "labels": ["headroom-test=relocate"],
        "max-concurrent-downloads": 7,
        "log-opts": {"max-size": "10m", "max-file": "3"},
    });
    let engine = ServiceEngine::start(&config, false);
    assert_eq!(engine.data_root(), Some(engine.old_root()));
    import_image(&engine);
    let original = std::fs::read(&engine.config).unwrap();
    let before: Value = serde_json::from_slice(&original).unwrap();

    let moved = runtime()
        .block_on(move_data_root(&engine.move_request()))
        .unwrap();

    assert_eq!(moved.to, engine.new_root());
    assert_eq!(engine.data_root(), Some(engine.new_root()), "docker info");
    let now: Value = serde_json::from_slice(&std::fs::read(&engine.config).unwrap()).unwrap();
    // Every key as it was but data-root, which points to the new root.
    let mut expected = before.clone();
    expected["data-root"] = json!(engine.new_root());
    assert_eq!(now, expected);
    for key in config.as_object().unwrap().keys() {
        assert_eq!(now[key], config[key], "{key}");
    }
    let mut kept = moved.kept_keys.clone();
    kept.sort();
    let mut want: Vec<String> = before
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "data-root")
        .cloned()
        .collect();
    want.sort();
    assert_eq!(kept, want);
    // The backup is the file as it was, byte for byte.
    let backup = moved.backup.clone().unwrap();
    assert_eq!(std::fs::read(&backup).unwrap(), original);
    // The kept keys are live: the restarted engine has the label.
    let labels = engine
        .docker(&["info", "--format", "{{json .Labels}}"])
        .unwrap();
    assert!(labels.contains("headroom-test=relocate"), "{labels}");
    // The image came along and runs; the old root is still there, untouched.
    let out = engine
        .docker(&["run", "--rm", "--network", "none", IMAGE, "echo", "moved"])
        .unwrap();
    assert_eq!(out, "moved");
    assert!(engine.old_root().join("image").is_dir());
    assert!(moved.copied_bytes > 0, "{moved:?}");
}

fn a_restart_that_fails_puts_daemon_json_back_and_the_engine_on_its_old_root() {
    // As on a machine whose unit file passes --data-root: dockerd refuses a daemon.json
    // that sets it too, so the restart on the new root fails for real.
    let config = json!({
        "labels": ["headroom-test=restore"],
    });
    let flagged = &ServiceEngine::start(&config, true);
    assert_eq!(flagged.data_root(), Some(flagged.old_root()));
    import_image(flagged);
    let original = std::fs::read(&flagged.config).unwrap();

    // dockerd exits at once; the wait for it on the new root is what the test spends.
    let mut req = flagged.move_request();
    req.wait = Duration::from_secs(15);
    let err = runtime().block_on(move_data_root(&req)).unwrap_err();

    let text = err.to_string();
    assert!(
        matches!(err, MoveError::Failed { step, .. } if step.contains("starting the engine")),
        "{text}"
    );
    assert!(text.contains("restored"), "{text}");
    assert!(text.contains("runs on") && text.contains("again"), "{text}");
    // daemon.json is back byte for byte; the engine answers on its old root with its image.
    assert_eq!(std::fs::read(&flagged.config).unwrap(), original);
    assert_eq!(flagged.data_root(), Some(flagged.old_root()));
    assert!(flagged.docker(&["image", "inspect", IMAGE]).is_some());
    let log = std::fs::read_to_string(&flagged.log).unwrap();
    assert!(
        log.contains("specified both as a flag and in the configuration file"),
        "the restart failed for another reason: {log}"
    );
}

fn a_daemon_json_that_does_not_parse_stops_nothing() {
    let engine = ServiceEngine::start(&json!({"log-level": "warn"}), false);
    let pid = std::fs::read_to_string(&engine.pidfile).unwrap();
    let broken = b"{\"log-level\": \"warn\",\n \"debug\": false,\n oops }\n";
    std::fs::write(&engine.config, broken).unwrap();
    let mut req = engine.move_request();
    req.from = engine.data_root().unwrap();
    let err = runtime().block_on(move_data_root(&req)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("daemon.json") && text.contains("line 3"),
        "{text}"
    );
    assert!(text.contains("nothing was changed"), "{text}");
    // The same engine process still answers; the file is as it was; no new root was made.
    assert_eq!(std::fs::read_to_string(&engine.pidfile).unwrap(), pid);
    assert!(engine.docker(&["version"]).is_some());
    assert_eq!(std::fs::read(&engine.config).unwrap(), broken);
    assert!(!engine.new_root().exists());
}

/// `--engine-store containerd` through the pipeline: planned only off a hosted runner without
/// `--yes`; under `--root` (a simulated runner's daemon.json), the free stage restarts the engine on the containerd store, the base image is brought
/// across, and the cache export the classic store refuses with the default driver works.
fn the_pipeline_switches_to_the_containerd_store_and_cache_export_then_works() {
    let engine = ServiceEngine::start(&json!({"labels": ["headroom-test=store"]}), false);
    import_image(&engine);
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {IMAGE}\nRUN echo store > /store\n"),
    )
    .unwrap();
    let cache = tmp.path().join("cache");
    let report = tmp.path().join("r.json");
    let cache_to = format!("type=local,dest={},mode=max", cache.display());
    let root = engine.socket_dir().to_str().unwrap().to_string();
    let service = engine.service.to_str().unwrap().to_string();
    // Without --root (the real runner's daemon.json) and without --yes, only a plan: this is
    // no hosted runner. With --root, the simulated runner's: done.
    let args = |real: bool| {
        let mut a = vec![
            "image",
            "--context",
            ctx.to_str().unwrap(),
            "--image",
            "headroom-test/store",
            "--backend",
            "buildx",
            "--cache-to",
            &cache_to,
            "--skip",
            "smoke,push",
            "--need",
            "1",
            "--engine-service",
            &service,
            "--engine-store",
            "containerd",
            "--report",
            report.to_str().unwrap(),
        ];
        if real {
            a.extend(["--root", &root]);
        }
        a
    };
    let env = [("DOCKER_HOST", engine.host.as_str())];
    let original = std::fs::read(&engine.config).unwrap();
    let pid = std::fs::read_to_string(&engine.pidfile).unwrap();

    // The plan: nothing restarts, and the classic store's refusal of the cache export is
    // what fails the build.
    let run = headroom_tests::xtask(&args(false), &env);
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr
            .contains("would switch the engine to the containerd image store"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Cache export is not supported"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&engine.config).unwrap(), original);
    assert_eq!(std::fs::read_to_string(&engine.pidfile).unwrap(), pid);

    // Under --root: switched, the base brought across, the cache exported.
    let run = headroom_tests::xtask(&args(true), &env);
    assert!(run.success(), "{run:?}");
    let r = headroom_tests::check_report(&report);
    let p = r.placement.as_ref().unwrap();
    assert!(p.restarted, "{p:?}");
    let store = p.store.as_ref().unwrap();
    assert_eq!(
        (store.from.as_str(), store.to.as_str()),
        ("classic", "containerd")
    );
    assert!(
        store.carried.iter().any(|i| i.starts_with(IMAGE)),
        "{store:?}"
    );
    assert!(
        r.engine.as_ref().unwrap().containerd_store,
        "{:?}",
        r.engine
    );
    assert!(cache.join("index.json").exists(), "no cache was exported");
    let now: Value = serde_json::from_slice(&std::fs::read(&engine.config).unwrap()).unwrap();
    assert_eq!(now["features"]["containerd-snapshotter"], true);
    assert_eq!(now["labels"], json!(["headroom-test=store"]));
    assert_eq!(now["data-root"], json!(engine.old_root()));
}
