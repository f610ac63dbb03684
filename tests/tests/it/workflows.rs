//! The GitHub workflows: valid against GitHub's schema (offline), and thin — they call the
//! same commands as a developer does instead of re-implementing steps in YAML.

use std::path::{Path, PathBuf};

headroom_tests::tests! {
    workflows_validate_against_the_github_schema needs Tool("check-jsonschema");
    workflows_call_the_same_commands_as_developers;
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn workflows_validate_against_the_github_schema() {
    let bin = headroom_tests::harness::tool("check-jsonschema");
    let out = std::process::Command::new(&bin)
        .args(["--builtin-schema", "vendor.github-workflows"])
        .arg(root().join(".github/workflows/ci.yml"))
        .arg(root().join(".github/workflows/image.yml"))
        .output()
        .expect("running check-jsonschema");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn workflows_call_the_same_commands_as_developers() {
    let ci = read(".github/workflows/ci.yml");
    assert!(
        ci.contains("bash .ci/run"),
        "ci.yml runs the repository's CI entry point"
    );
    let image = read(".github/workflows/image.yml");
    assert!(
        image.contains("cargo xtask image --push"),
        "image.yml runs the pipeline"
    );
    for workflow in [&ci, &image] {
        for step in [
            "docker build",
            "docker push",
            "docker buildx build",
            "rm -rf /usr",
        ] {
            assert!(
                !workflow.contains(step),
                "a workflow re-implements `{step}` in YAML"
            );
        }
    }
    // Minimal permissions and a concurrency group on both.
    for workflow in [&ci, &image] {
        assert!(workflow.contains("permissions:\n  contents: read"));
        assert!(workflow.contains("concurrency:"));
    }
    assert!(image.contains("type=gha,mode=max") && image.contains("upload-artifact"));
    assert!(image.contains("tags: [\"v*\"]") && image.contains("branches: [main]"));
}
