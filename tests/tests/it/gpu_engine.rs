//! The smoke stage against a fake GPU at the engine's boundary: a throwaway engine whose
//! default runtime is a registered `nvidia` runtime (a wrapper around runc) and whose `PATH`
//! has a fake `nvidia-container-runtime-hook` (so dockerd's NVIDIA device driver exists),
//! both recording what they were asked ([`headroom_lab::sandbox::fake_gpu`]). The image
//! carries the CUDA base's environment (`NVIDIA_VISIBLE_DEVICES=all`, `NVIDIA_REQUIRE_CUDA`).
//! Asserted: the created containers' GPU request (one NVIDIA hook, all GPUs), each probe
//! failure classified (no driver, driver too old, no device), `--gpu off` hiding the devices
//! (`NVIDIA_VISIBLE_DEVICES=void`) that the default runtime would otherwise expose, and a
//! failed start still leaving a smoke section in the report.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::Path;

use headroom_lab::sandbox::fake_gpu::{FakeGpu, Mode};
use headroom_tests::engine::ServiceEngine;
use headroom_tests::{Run, check_report, xtask};
use serde_json::Value;

headroom_tests::tests! {
    the_smoke_stage_on_a_fake_gpu_engine needs Root, Docker, Program("python3"), Program("runc"),
        Tool("check-jsonschema");
}

const IMAGE: &str = "headroom-test/fake-cuda";

/// `cargo xtask image` against the engine, smoke stage only (`gpu: None`: no stage at all);
/// its run and its report.
fn smoke(engine: &ServiceEngine, dir: &Path, gpu: Option<&str>) -> (Run, Value) {
    let config = dir.join("image.toml");
    std::fs::write(
        &config,
        "[smoke]\ncommand = [\"sh\", \"-c\", \"echo smoke ran\"]\nhealth = false\n",
    )
    .unwrap();
    let report = dir.join("report.json");
    let _ = std::fs::remove_file(&report);
    let mut args = vec![
        "image",
        "--config",
        config.to_str().unwrap(),
        "--image",
        IMAGE,
        "--report",
        report.to_str().unwrap(),
        "--skip",
    ];
    match gpu {
        Some(policy) => args.extend(["lint,free,build,inspect,push", "--gpu", policy]),
        None => args.push("lint,free,build,inspect,smoke,push"),
    }
    let run = xtask(&args, &[("DOCKER_HOST", engine.host.as_str())]);
    assert!(report.exists(), "no report: {run:?}");
    check_report(&report);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    (run, r)
}

fn hooks(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["who"] == "hook").collect()
}

fn the_smoke_stage_on_a_fake_gpu_engine() {
    let tmp = tempfile::tempdir().unwrap();
    let gpu = FakeGpu::new(&tmp.path().join("gpu")).unwrap();
    let engine = ServiceEngine::start_with(&gpu.daemon_settings(true), false, Some(&gpu.bin()));
    let info = engine
        .docker(&["info", "--format", "{{json .Runtimes}} {{.DefaultRuntime}}"])
        .unwrap();
    assert!(
        info.contains("\"nvidia\"") && info.ends_with(" nvidia"),
        "{info}"
    );
    // busybox with the CUDA base's environment and labels (its entrypoint needs bash).
    headroom_docker::local::busybox_image("headroom-test/bb", Some(&engine.host), tmp.path())
        .unwrap();
    let id = engine
        .docker(&["create", "headroom-test/bb", "true"])
        .unwrap();
    let mut commit: Vec<String> = vec!["commit".into()];
    for change in headroom_lab::sandbox::base_image::cuda_changes() {
        if change.starts_with("ENV ") || change.starts_with("LABEL ") {
            commit.extend(["--change".into(), change]);
        }
    }
    // Under every reference the pipeline will use (its tags come from git).
    let (_, r) = smoke(&engine, tmp.path(), None);
    let references: Vec<&str> = r["image"]["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let image = references[0];
    commit.extend([id.clone(), image.into()]);
    let commit: Vec<&str> = commit.iter().map(String::as_str).collect();
    engine.docker(&commit).unwrap();
    engine.docker(&["rm", &id]).unwrap();
    // The default runtime alone exposes the GPUs of an image that says NVIDIA_VISIBLE_DEVICES=all.
    gpu.take_records();
    engine.docker(&["run", "--rm", image, "true"]).unwrap();
    let plain = gpu.take_records();
    assert!(
        hooks(&plain).iter().any(|h| h["exposed"] == true),
        "{plain:?}"
    );

    // auto, a working GPU: the probe and the smoke container each get one NVIDIA hook for
    // all GPUs, from dockerd's device driver (the runtime adds none of its own).
    let (run, r) = smoke(&engine, tmp.path(), Some("auto"));
    assert!(run.success(), "{run:?}");
    assert_eq!(r["smoke"]["device"], "gpu", "{r:#}");
    assert_eq!(r["smoke"]["gpu"]["request"]["kind"], "nvidia", "{r:#}");
    let records = gpu.take_records();
    let hooked = hooks(&records);
    assert_eq!(hooked.len(), 2, "probe and smoke: {records:?}");
    for h in &hooked {
        assert_eq!(h["visible"], "all", "{h}");
        assert_eq!(h["nvidia_hooks"], 1, "one request, one hook: {h}");
        assert_eq!(h["args"], serde_json::json!(["prestart"]), "{h}");
        assert_eq!(h["exposed"], true, "{h}");
    }
    assert!(
        records
            .iter()
            .filter(|r| r["who"] == "runtime")
            .all(|r| r["hook_from_engine"] == true && r["hook_added"] == false),
        "{records:?}"
    );

    // off: the devices hidden, although the default runtime would expose them.
    let (run, r) = smoke(&engine, tmp.path(), Some("off"));
    assert!(run.success(), "{run:?}");
    assert_eq!(r["smoke"]["device"], "cpu");
    let records = gpu.take_records();
    let created: Vec<&Value> = records.iter().filter(|r| r["who"] == "runtime").collect();
    assert_eq!(created.len(), 1, "the smoke container only: {records:?}");
    assert_eq!(created[0]["visible"], "void");
    assert_eq!(created[0]["hook_added"], false);
    assert!(hooks(&records).is_empty(), "{records:?}");

    // Each failure of the hook, classified; the container never started, yet the report has
    // the smoke section with the cause.
    for (mode, class, words) in [
        (
            Mode::NoDriver,
            "no working NVIDIA driver",
            "libnvidia-ml.so.1",
        ),
        (
            Mode::OldDriver,
            "the NVIDIA driver is too old",
            "unsatisfied condition: cuda>=11.8",
        ),
        (Mode::NoDevice, "no GPU device", "unknown device"),
    ] {
        gpu.set_mode(mode).unwrap();
        let (run, r) = smoke(&engine, tmp.path(), Some("required"));
        assert!(!run.success(), "{mode:?}: {run:?}");
        assert!(
            run.stderr.contains(class) && run.stderr.contains(words),
            "{mode:?}: {}",
            run.stderr
        );
        let section = &r["smoke"];
        assert_eq!(section["device"], "none", "{mode:?}: {r:#}");
        assert!(
            section["error"].as_str().unwrap().contains(words),
            "{mode:?}: {section:#}"
        );
        assert!(
            r["stages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "smoke" && s["status"] == "failed"),
            "{r:#}"
        );
    }

    // auto, a runtime without a driver: on a host with no GPU of its own, CPU with the cause
    // classified; on a host that shows one, a failure.
    gpu.set_mode(Mode::NoDriver).unwrap();
    gpu.take_records();
    let (run, r) = smoke(&engine, tmp.path(), Some("auto"));
    if headroom_docker::smoke::host_gpu_hint().is_none() {
        assert!(run.success(), "{run:?}");
        assert_eq!(r["smoke"]["device"], "cpu");
        assert_eq!(r["smoke"]["gpu"]["failure"], "no-driver", "{r:#}");
    } else {
        assert!(
            !run.success() && run.stderr.contains("could not use"),
            "{run:?}"
        );
    }
    let left = engine
        .docker(&["ps", "-aq", "--filter", "name=headroom-"])
        .unwrap();
    assert_eq!(left, "", "containers left behind");
}
