//! `cargo xtask inspect` on images built on the real engine with exactly known waste, read
//! both from the engine's export and from a saved archive; and the CI gate.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::Path;

use headroom_tests::registry::base_image;
use headroom_tests::{sh, xtask};
use serde_json::Value;

headroom_tests::tests! {
    known_waste_is_reported_exactly_from_the_engine_and_from_a_saved_archive needs Docker;
    the_ci_gate_fails_an_image_over_its_thresholds_and_passes_one_under needs Docker;
    verify_finds_a_changed_byte_that_the_header_walk_cannot needs Docker;
    broken_archives_are_clear_errors;
    the_inspect_stage_of_the_pipeline_gates_the_image needs Docker;
    the_gate_takes_dive_ci_as_dive_does_and_fails_what_dive_fails needs Docker, Tool("dive");
    dives_figures_are_what_dive_reports needs Tool("dive");
    deep_paths_are_analysed_in_bounded_memory;
}

/// (name, Dockerfile body after FROM, expected wasted bytes)
const CASES: &[(&str, &str, u64)] = &[
    (
        "deleted-file",
        "RUN head -c 1000000 /dev/urandom > /f\nRUN rm /f\n",
        1_000_000,
    ),
    (
        "deleted-tree",
        "RUN mkdir -p /d/a/b && head -c 300000 /dev/urandom > /d/a/x && head -c 200000 /dev/urandom > /d/a/b/y\nRUN rm -rf /d\n",
        500_000,
    ),
    (
        "replaced-dir",
        "RUN mkdir /o && head -c 400000 /dev/urandom > /o/x\nRUN rm -rf /o && mkdir /o && head -c 1000 /dev/urandom > /o/new\n",
        400_000,
    ),
    (
        "overwritten-twice",
        "RUN head -c 100000 /dev/urandom > /w\nRUN head -c 200000 /dev/urandom > /w\nRUN head -c 300000 /dev/urandom > /w\n",
        300_000,
    ),
    (
        "hard-link",
        "RUN head -c 500000 /dev/urandom > /h1 && ln /h1 /h2\n",
        0,
    ),
    (
        "moved",
        "RUN head -c 600000 /dev/urandom > /m1\nRUN mv /m1 /m2\n",
        600_000,
    ),
    (
        "pip-cache",
        "RUN mkdir -p /root/.cache/pip/http && head -c 700000 /dev/urandom > /root/.cache/pip/http/blob\nRUN rm -rf /root/.cache/pip\n",
        700_000,
    ),
];

fn build(name: &str, body: &str, dir: &Path) -> String {
    let ctx = dir.join(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\n{body}", base_image()),
    )
    .unwrap();
    let image = format!("headroom-test/waste-{name}:latest");
    let out = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &image])
        .arg(&ctx)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

fn inspect_json(target: &str, extra: &[&str]) -> Value {
    let mut args = vec!["inspect", target, "--json", "--config", "/nonexistent.toml"];
    args.extend_from_slice(extra);
    let run = xtask(&args, &[]);
    assert!(run.success(), "{run:?}");
    run.json()
}

fn known_waste_is_reported_exactly_from_the_engine_and_from_a_saved_archive() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, body, expected) in CASES {
        let image = build(name, body, tmp.path());
        let from_engine = inspect_json(&image, &[]);
        assert_eq!(
            from_engine["wasted_bytes"].as_u64(),
            Some(*expected),
            "{name} (engine): {from_engine:#}"
        );
        let tar = tmp.path().join(format!("{name}.tar"));
        sh("docker", &["save", "-o", tar.to_str().unwrap(), &image]);
        let from_file = inspect_json(tar.to_str().unwrap(), &[]);
        assert_eq!(
            from_file["wasted_bytes"].as_u64(),
            Some(*expected),
            "{name} (archive): {from_file:#}"
        );
        assert_eq!(
            from_engine["total_bytes"], from_file["total_bytes"],
            "{name}"
        );
        // The fast path (headers only, names' digests) and a verifying read agree on all of
        // it, digests included; and with the engine's stream.
        let verified = inspect_json(tar.to_str().unwrap(), &["--verify"]);
        assert_eq!(analysis(&from_file), analysis(&verified), "{name}");
        assert_eq!(
            analysis(&from_engine)["layers"],
            analysis(&from_file)["layers"],
            "{name}"
        );
        // Every wasted copy is listed with the layer that wrote it and the later one that
        // removed or overwrote it; together they are the whole waste.
        let top = from_engine["top_wasted"].as_array().unwrap();
        let listed: u64 = top.iter().map(|w| w["bytes"].as_u64().unwrap()).sum();
        assert_eq!(listed, *expected, "{name}: {top:#?}");
        for w in top {
            assert!(
                w["written_in"].as_u64() < w["removed_in"].as_u64(),
                "{name}: {w:#}"
            );
        }
        for layer in from_engine["layers"].as_array().unwrap() {
            for key in [
                "index",
                "digest",
                "size_bytes",
                "created_by",
                "wasted_bytes",
            ] {
                assert!(layer.get(key).is_some(), "{name}: layers[].{key}");
            }
        }
        let _ = std::process::Command::new("docker")
            .args(["rmi", &image])
            .output();
    }
}

fn the_ci_gate_fails_an_image_over_its_thresholds_and_passes_one_under() {
    let tmp = tempfile::tempdir().unwrap();
    let wasteful = build(
        "gate-wasteful",
        "RUN head -c 2000000 /dev/urandom > /big\nRUN rm /big\n",
        tmp.path(),
    );
    let lean = build(
        "gate-lean",
        "RUN head -c 2000000 /dev/urandom > /big\n",
        tmp.path(),
    );
    let dive_ci = tmp.path().join(".dive-ci");
    std::fs::write(&dive_ci, "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 1MB\n  highestUserWastedPercent: 0.10\n").unwrap();
    let gate = |image: &str| {
        xtask(
            &[
                "inspect",
                image,
                "--ci",
                "--ci-config",
                dive_ci.to_str().unwrap(),
                "--config",
                "/nonexistent.toml",
            ],
            &[],
        )
    };
    let run = gate(&wasteful);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("highestWastedBytes failed"),
        "{}",
        run.stderr
    );
    let run = gate(&lean);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout.contains("gate: lowestEfficiency passed"),
        "{}",
        run.stdout
    );
    // Our own thresholds from the image config: max layers.
    let config = tmp.path().join("image.toml");
    std::fs::write(&config, "[inspect]\nmax_layers = 1\n").unwrap();
    let run = xtask(
        &[
            "inspect",
            &lean,
            "--ci",
            "--ci-config",
            "/nonexistent",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("max_layers failed"), "{}", run.stderr);
}

/// A report without what depends on the run (its time, its memory, where it read from).
fn analysis(report: &Value) -> Value {
    let mut v = report.clone();
    if let Some(o) = v.as_object_mut() {
        for key in ["seconds", "peak_memory_bytes", "layout", "image"] {
            o.remove(key);
        }
    }
    if let Some(layers) = v["layers"].as_array_mut() {
        for layer in layers {
            if let Some(l) = layer.as_object_mut() {
                l.remove("blob");
            }
        }
    }
    v
}

fn verify_finds_a_changed_byte_that_the_header_walk_cannot() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = "headroom-verify-marker-0123456789";
    let image = build(
        "verify-flip",
        &format!("RUN printf '{marker}' > /marked\n"),
        tmp.path(),
    );
    let tar = tmp.path().join("verify.tar");
    sh("docker", &["save", "-o", tar.to_str().unwrap(), &image]);
    let _ = std::process::Command::new("docker")
        .args(["rmi", &image])
        .output();
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker.as_bytes())
        .expect("the marker in the saved layer");
    // A file's content, not a header: the walk of headers cannot see it, a digest can.
    bytes[at] ^= 0x20;
    std::fs::write(&tar, &bytes).unwrap();
    let path = tar.to_str().unwrap();
    let unverified = inspect_json(path, &[]);
    assert!(unverified["total_bytes"].as_u64().unwrap() > 0);
    let run = xtask(
        &["inspect", path, "--verify", "--config", "/nonexistent.toml"],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr.contains("not the digest it is named by") && run.stderr.contains("verify.tar"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

fn broken_archives_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage = tmp.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive at all, just words").unwrap();
    let run = xtask(
        &[
            "inspect",
            garbage.to_str().unwrap(),
            "--config",
            "/nonexistent.toml",
        ],
        &[],
    );
    assert!(!run.success());
    assert!(run.stderr.contains("garbage.tar"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

fn the_inspect_stage_of_the_pipeline_gates_the_image() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {}\nRUN head -c 1500000 /dev/urandom > /tmp/big\nRUN rm /tmp/big\n",
            base_image()
        ),
    )
    .unwrap();
    let config = tmp.path().join("image.toml");
    std::fs::write(&config, "[inspect]\nlowest_efficiency = 0.99\n").unwrap();
    let report = tmp.path().join("r.json");
    let run = xtask(
        &[
            "image",
            "--config",
            config.to_str().unwrap(),
            "--context",
            ctx.to_str().unwrap(),
            "--image",
            "headroom-test/inspect-stage",
            "--backend",
            "engine",
            "--skip",
            "free,smoke,push",
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr.contains("over the image thresholds") && run.stderr.contains("lowestEfficiency"),
        "{}",
        run.stderr
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        r["inspect"]["wasted_bytes"].as_u64(),
        Some(1_500_000),
        "{:#}",
        r["inspect"]
    );
    let hint = r["inspect"]["hints"][0].as_str().unwrap();
    assert!(
        hint.contains("tmp/big") && hint.contains("line 2") && hint.contains("line 3"),
        "{hint}"
    );
}

/// dive, from the tools venv (a test that calls this needs `Tool("dive")`).
fn dive() -> std::path::PathBuf {
    headroom_tests::harness::tool("dive")
}

/// The gate reads dive's `.dive-ci` as dive does and reaches dive's verdict where dive's
/// division decides it: an image whose only upper layer deletes a file from the base has
/// wasted bytes over no user bytes (+Inf), which dive fails. A plugin rule is ignored with a
/// note; a configuration error is exit 2 and reads no image.
fn the_gate_takes_dive_ci_as_dive_does_and_fails_what_dive_fails() {
    let dive = dive();
    let tmp = tempfile::tempdir().unwrap();
    let only_delete = build("only-delete", "RUN rm /bin/busybox\n", tmp.path());
    let archive = tmp.path().join("only-delete.tar");
    sh(
        "docker",
        &[
            "save",
            "-o",
            archive.to_str().unwrap(),
            only_delete.as_str(),
        ],
    );
    // dive's own example configuration's shape: a document start, a plugins list, comments,
    // a plugin rule; only the user-waste rule on, so it alone decides.
    let dive_ci = tmp.path().join(".dive-ci");
    std::fs::write(
        &dive_ci,
        "---\nplugins:\n  - plugin1\n\nrules:\n  # the ratio of wasted bytes to the bytes the image adds\n  lowestEfficiency: disabled\n  highestWastedBytes: disabled\n  highestUserWastedPercent: 0.10\n\n  plugin1/rule1: error\n",
    )
    .unwrap();
    let theirs = std::process::Command::new(&dive)
        .arg(&archive)
        .args(["--source", "docker-archive", "--ci", "--ci-config"])
        .arg(&dive_ci)
        .env("CI", "true")
        .output()
        .unwrap();
    let dive_said = String::from_utf8_lossy(&theirs.stdout).into_owned();
    assert_eq!(theirs.status.code(), Some(1), "dive: {dive_said}");
    assert!(
        dive_said.contains("highestUserWastedPercent"),
        "{dive_said}"
    );
    let gate = |target: &str| {
        xtask(
            &[
                "inspect",
                target,
                "--ci",
                "--ci-config",
                dive_ci.to_str().unwrap(),
                "--config",
                "/nonexistent.toml",
            ],
            &[],
        )
    };
    for target in [archive.to_str().unwrap(), only_delete.as_str()] {
        let run = gate(target);
        assert_eq!(run.code, Some(1), "as dive: {run:?}");
        assert!(
            run.stderr.contains("highestUserWastedPercent failed: +Inf"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(":11: plugin1/rule1: a plugin rule"),
            "{}",
            run.stderr
        );
        assert!(run.stdout.contains("user wasted +Inf"), "{}", run.stdout);
    }
    // A value dive refuses: exit 2, not 1, and the image is not read (a missing one would
    // otherwise be the error).
    std::fs::write(&dive_ci, "rules:\n  highestWastedBytes: lots\n").unwrap();
    let run = gate("/nonexistent/image.tar");
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains(".dive-ci:2") && run.stderr.contains("lots"),
        "{}",
        run.stderr
    );
}

/// An entry of a hand-made layer: a file with its content (a whiteout is an empty file named
/// `.wh.…`), or a directory.
enum Entry {
    File(String, Vec<u8>),
    Dir(String),
}

/// A layer tar of `entries`, names as PAX `path` records (as Docker writes long names).
fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (name, data, kind) = match e {
            Entry::File(n, d) => (n, &d[..], tar::EntryType::Regular),
            Entry::Dir(n) => (n, &b""[..], tar::EntryType::Directory),
        };
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_entry_type(kind);
        b.append_pax_extensions([("path", name.as_bytes())])
            .unwrap();
        h.set_path("placeholder").unwrap();
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn file(name: &str, data: &[u8]) -> Entry {
    Entry::File(name.into(), data.to_vec())
}

/// A legacy `docker save` archive of `layers`, bottom first, with a config that lists their
/// diff ids.
fn saved(layers: &[Vec<u8>]) -> Vec<u8> {
    let sha = |d: &[u8]| {
        use sha2::Digest;
        sha2::Sha256::digest(d)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| format!("sha256:{}", sha(l)))
        .collect();
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({"created_by": format!("layer {i}")}))
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history,
    }))
    .unwrap();
    let config_name = format!("{}.json", sha(&config));
    let paths: Vec<String> = (1..=layers.len())
        .map(|i| format!("{i}/layer.tar"))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name, "RepoTags": ["hand/made:1"], "Layers": paths,
    }]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    for (path, l) in paths.iter().zip(layers) {
        add(path, l);
    }
    add(&config_name, &config);
    add("manifest.json", &manifest);
    b.into_inner().unwrap()
}

/// "dive's figures" are dive's: on hand-made archives of the cases dive's accounting turns on
/// (an overwritten file, directories that exist only implicitly, a deleted directory, a
/// whiteout of a path no lower layer has, an opaque whiteout), dive 0.13.1's own `--json`
/// gives the same efficiency and wasted bytes.
fn dives_figures_are_what_dive_reports() {
    let dive = dive();
    let x = vec![b'x'; 1000];
    let cases: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "overwritten",
            vec![
                layer(&[file("w", &x)]),
                layer(&[file("w", &[x.clone(), x.clone()].concat())]),
                layer(&[file("w", b"a")]),
            ],
        ),
        (
            "implicit-dirs",
            vec![
                layer(&[file("a/b/c/f", &x)]),
                layer(&[file("a/b/c/f", &[b'y'; 500])]),
            ],
        ),
        (
            "deleted-dir",
            vec![
                layer(&[Entry::Dir("d".into()), file("d/1", &x), file("d/2", &x)]),
                layer(&[file(".wh.d", b""), file("z", &[b'z'; 10])]),
            ],
        ),
        (
            // dive's defect, followed: the lookup of a path no lower layer has fails, leaving
            // -1 as its smallest size and the rest of the layer (`c`) unvisited.
            "absent-whiteout",
            vec![
                layer(&[file("a/f", &x)]),
                layer(&[file("b/.wh.gone", b""), file("c", &[b'y'; 10])]),
            ],
        ),
        (
            "opaque",
            vec![
                layer(&[Entry::Dir("o".into()), file("o/1", &x)]),
                layer(&[
                    Entry::Dir("o".into()),
                    file("o/.wh..wh..opq", b""),
                    file("o/2", &[b'q'; 20]),
                ]),
            ],
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, layers) in cases {
        let archive = tmp.path().join(format!("{name}.tar"));
        std::fs::write(&archive, saved(&layers)).unwrap();
        let json = tmp.path().join(format!("{name}.dive.json"));
        let out = std::process::Command::new(&dive)
            .arg(&archive)
            .args(["--source", "docker-archive", "--json"])
            .arg(&json)
            .env("CI", "true")
            .output()
            .unwrap();
        assert!(out.status.success(), "dive on {name}: {out:?}");
        let theirs: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let ours = inspect_json(archive.to_str().unwrap(), &[]);
        let their_eff = theirs["image"]["efficiencyScore"].as_f64().unwrap();
        let our_eff = ours["dive"]["efficiency"].as_f64().unwrap();
        assert!(
            (their_eff - our_eff).abs() < 1e-12,
            "{name}: efficiency {their_eff} vs {our_eff}"
        );
        assert_eq!(
            theirs["image"]["inefficientBytes"], ours["dive"]["wasted_bytes"],
            "{name}: wasted bytes"
        );
    }
}

/// Deep paths cost memory by their number, not the square of their depth: six files 30,000
/// directories deep (a 460 KB archive, long names as PAX records) are analysed in well under
/// 400 MB, with the figures a shallow copy of the same archive gives.
fn deep_paths_are_analysed_in_bounded_memory() {
    let archive = |depth: usize| {
        let deep = |k: usize| format!("d{k}/{}f", "a/".repeat(depth));
        let l0 = layer(
            &(0..6)
                .map(|k| file(&deep(k), &[b'x'; 100]))
                .collect::<Vec<_>>(),
        );
        let l1 = layer(&[file(&deep(0), &[b'y'; 50])]);
        saved(&[l0, l1])
    };
    let tmp = tempfile::tempdir().unwrap();
    let figures = |depth: usize| {
        let path = tmp.path().join(format!("deep-{depth}.tar"));
        std::fs::write(&path, archive(depth)).unwrap();
        let v = inspect_json(path.to_str().unwrap(), &[]);
        let peak = v["peak_memory_bytes"].as_u64().unwrap();
        let keep = serde_json::json!({
            "total": v["total_bytes"], "wasted": v["wasted_bytes"],
            "dive_wasted": v["dive"]["wasted_bytes"], "dive_efficiency": v["dive"]["efficiency"],
        });
        (keep, peak)
    };
    let (shallow, _) = figures(3);
    let (deep, peak) = figures(30_000);
    assert_eq!(deep, shallow);
    assert_eq!(deep["wasted"], 100);
    assert!(
        peak < 400_000_000,
        "peak memory {peak} bytes for deep paths"
    );
}
