//! Cheap checks before destruction (issue 29): a wrong password, missing credentials, a
//! context that does not exist, a Dockerfile that is not there or an invalid image
//! reference stop `cargo xtask image` before the free stage deletes its first byte — checked
//! on a tree standing for the runner's disk, file by file. The credentials are asked of the
//! lab's authenticating registry with the request a push begins with; nothing is pushed.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};

use headroom_tests::registry::{Registry, base_image};
use headroom_tests::{Run, listing, xtask};
use serde_json::Value;

headroom_tests::tests! {
    a_wrong_password_or_no_credentials_delete_nothing needs Docker;
    a_missing_context_dockerfile_or_bad_reference_deletes_nothing needs Docker;
}

/// A runner tree with catalog items the free stage would take.
fn runner(dir: &Path) -> PathBuf {
    let root = dir.join("runner");
    for item in ["usr/share/dotnet/sdk", "usr/local/lib/android/sdk"] {
        let d = root.join(item);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..20 {
            std::fs::write(d.join(format!("f{i}")), vec![7u8; 4096]).unwrap();
        }
    }
    root
}

fn context(dir: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}\nRUN echo never\n", base_image()),
    )
    .unwrap();
    ctx
}

/// `image` freeing `root` (a target it can never meet, so it would delete all it may).
fn image(root: &Path, report: &Path, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut all = vec![
        "image",
        "--root",
        root.to_str().unwrap(),
        "--need",
        "100T",
        "--yes",
        "--skip",
        "smoke",
        "--tag",
        "latest",
        "--report",
        report.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    xtask(&all, envs)
}

#[track_caller]
fn assert_nothing_deleted(
    run: &Run,
    root: &Path,
    before: &std::collections::BTreeMap<PathBuf, u64>,
    report: &Path,
    what: &str,
) {
    assert!(!run.success(), "{what}: {run:?}");
    assert_eq!(&listing(root), before, "{what}: the free stage deleted");
    if let Ok(text) = std::fs::read_to_string(report) {
        let r: Value = serde_json::from_str(&text).unwrap();
        let ran: Vec<&str> = r["stages"]
            .as_array()
            .map(|s| s.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(
            !ran.contains(&"free") && !ran.contains(&"build"),
            "{what}: {ran:?}"
        );
    }
}

fn a_wrong_password_or_no_credentials_delete_nothing() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = runner(tmp.path());
    let before = listing(&root);
    let ctx = context(tmp.path());
    let report = tmp.path().join("r.json");
    let image_ref = format!("{}/ns/preflight", registry.host());
    let docker_config = tmp.path().join("docker-config");
    std::fs::create_dir(&docker_config).unwrap();
    let args = [
        "--context",
        ctx.to_str().unwrap(),
        "--image",
        &image_ref,
        "--push",
    ];
    let wrong = "not-the-password-29";
    let run = image(
        &root,
        &report,
        &args,
        &[
            ("REGISTRY_USERNAME", &registry.user),
            ("REGISTRY_PASSWORD", wrong),
            ("DOCKER_CONFIG", docker_config.to_str().unwrap()),
        ],
    );
    assert_nothing_deleted(&run, &root, &before, &report, "a wrong password");
    assert!(
        run.stderr.contains("refused the credentials"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(wrong) && !run.stdout.contains(wrong));

    let _ = std::fs::remove_file(&report);
    let run = image(
        &root,
        &report,
        &args,
        &[("DOCKER_CONFIG", docker_config.to_str().unwrap())],
    );
    assert_nothing_deleted(&run, &root, &before, &report, "no credentials");
    assert!(
        run.stderr
            .contains("asks for credentials and none were found"),
        "{}",
        run.stderr
    );
}

fn a_missing_context_dockerfile_or_bad_reference_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = runner(tmp.path());
    let before = listing(&root);
    let ctx = context(tmp.path());
    let report = tmp.path().join("r.json");
    let missing = tmp.path().join("no-such-context");
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "a context that does not exist",
            vec![
                "--context",
                missing.to_str().unwrap(),
                "--image",
                "headroom-test/pre",
                "--skip",
                "lint",
            ],
            "context",
        ),
        (
            "a Dockerfile that does not exist",
            vec![
                "--context",
                ctx.to_str().unwrap(),
                "--dockerfile",
                "/nonexistent/Dockerfile",
                "--image",
                "headroom-test/pre",
                "--skip",
                "lint",
            ],
            "Dockerfile",
        ),
        (
            "an invalid image reference",
            vec![
                "--context",
                ctx.to_str().unwrap(),
                "--image",
                "headroom-test/Bad__Name",
            ],
            "image",
        ),
    ];
    for (what, args, word) in cases {
        let _ = std::fs::remove_file(&report);
        let run = image(&root, &report, &args, &[]);
        assert_nothing_deleted(&run, &root, &before, &report, what);
        assert!(run.stderr.contains(word), "{what}: {}", run.stderr);
    }
}
