//! The README's promise to sibling repositories: examples/sibling-xtask builds with
//! headroom-disk and headroom-docker as git dependencies, as another repository takes them.
//! The git URL is pointed at this checkout (GitHub cannot be reached here), so the
//! committed tree is what gets built, as a sibling would get it.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::Path;
use std::process::Command;

const UPSTREAM: &str = "https://github.com/headroom-dev/headroom";

#[test]
fn the_sibling_example_builds_with_git_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let example = root.join("examples/sibling-xtask");
    let dir = tempfile::tempdir().unwrap();
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

    // Off a hosted runner it only plans; with no engine answering on this address, it
    // must fail with the engine's error, not delete or panic.
    let bin = root.join("target/sibling-xtask/debug/sibling-xtask");
    let run = Command::new(bin)
        .current_dir(&sibling)
        .env("RUNNER_ENVIRONMENT", "self-hosted")
        .env("DOCKER_HOST", "tcp://127.0.0.1:9")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
