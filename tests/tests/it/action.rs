//! `action.yml`, the one-step adoption: valid against GitHub's schema, and run as GitHub's
//! runner runs a composite action — its `runs.steps` in order, `${{ inputs.* }}`,
//! `${{ steps.*.outputs.* }}` and `${{ github.action_path }}` substituted, each `run` step in
//! `bash --noprofile --norc -eo pipefail` with its own `$GITHUB_OUTPUT`, and the action's
//! outputs read from its steps' — on a sample project with a handful of inputs: it builds,
//! smoke-tests and pushes the project's image to an authenticating registry, with its outputs
//! set. GitHub's cache service cannot exist here: the `actions/cache` step stands for a cache
//! hit, restoring the CLI this test built into the directory the action asks for.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use headroom_tests::registry::{Registry, base_image};
use headroom_tests::{check_report, harness, headroom_bin, repo_root, sh, without_github_env};
use serde_json::Value;

headroom_tests::tests! {
    the_action_validates_against_githubs_schema needs Tool("check-jsonschema");
    the_action_builds_smoke_tests_and_pushes_a_sample_project
        needs Docker, Tool("check-jsonschema"), Program("jq"), Program("git");
}

fn the_action_validates_against_githubs_schema() {
    let out = Command::new(harness::tool("check-jsonschema"))
        .args(["--builtin-schema", "vendor.github-actions"])
        .arg(repo_root().join("action.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Inputs and outputs are named as docker/build-push-action and free-disk-space name them.
    let action = action();
    for input in [
        "image",
        "tags",
        "context",
        "file",
        "push",
        "need",
        "cache-from",
        "cache-to",
        "platforms",
        "build-args",
        "secrets",
        "config",
        "install-profile",
    ] {
        assert!(action["inputs"].get(input).is_some(), "no input {input}");
    }
    for output in [
        "digest",
        "imageid",
        "metadata",
        "freed-bytes",
        "peak-disk",
        "result",
        "cause",
        "report",
    ] {
        assert!(
            action["outputs"].get(output).is_some(),
            "no output {output}"
        );
    }
}

/// action.yml as JSON, read by the YAML parser of the tools venv (ruamel.yaml, which
/// check-jsonschema brings).
fn action() -> Value {
    let out = Command::new(harness::tool("python3"))
        .args([
            "-c",
            "import json, sys\nfrom ruamel.yaml import YAML\n\
             print(json.dumps(YAML(typ='safe').load(open(sys.argv[1]))))",
        ])
        .arg(repo_root().join("action.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What a runner knows while it runs the action's steps.
struct Runner {
    inputs: BTreeMap<String, String>,
    steps: BTreeMap<String, BTreeMap<String, String>>,
    action_path: PathBuf,
}

impl Runner {
    /// `${{ EXPR }}` replaced, as the runner does before a step runs; an expression this
    /// runner does not know fails the test rather than passing through.
    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("an unclosed expression") + start;
            let expr = rest[start + 3..end].trim();
            let value = if let Some(name) = expr.strip_prefix("inputs.") {
                self.inputs.get(name).cloned().unwrap_or_default()
            } else if let Some(path) = expr.strip_prefix("steps.") {
                let (id, key) = path.split_once(".outputs.").expect("steps.ID.outputs.KEY");
                self.steps
                    .get(id)
                    .and_then(|o| o.get(key))
                    .cloned()
                    .unwrap_or_default()
            } else {
                match expr {
                    "github.action_path" => self.action_path.display().to_string(),
                    "runner.os" => "Linux".into(),
                    "runner.arch" => "X64".into(),
                    other => panic!("an expression this runner does not know: {other}"),
                }
            };
            out.push_str(&value);
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// `$GITHUB_OUTPUT`'s `KEY=VALUE` and `KEY<<DELIMITER` forms.
fn read_outputs(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((key, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.insert(key.to_string(), value.join("\n"));
        } else if let Some((key, value)) = line.split_once('=') {
            out.insert(key.to_string(), value.to_string());
        }
    }
    out
}

fn the_action_builds_smoke_tests_and_pushes_a_sample_project() {
    let action = action();
    assert_eq!(action["runs"]["using"], "composite");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();

    // The sample project: a Dockerfile on a locally made base, its image.toml's smoke test,
    // a git commit for the tags.
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("Dockerfile"),
        format!(
            "FROM {}\nARG GREETING=unset\n\
             RUN mkdir -p /srv && echo \"$GREETING\" > /greeting && echo '{{\"status\": \"ok\"}}' > /srv/health\n\
             HEALTHCHECK --interval=10s CMD [\"busybox\", \"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8000/health\"]\n\
             CMD [\"busybox\", \"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/srv\"]\n",
            base_image()
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("image.toml"),
        "default_branch = \"main\"\n\n[smoke]\n\
         command = [\"sh\", \"-c\", \"grep -qx hello /greeting && echo '{\\\"checks\\\": [], \\\"ok\\\": true}'\"]\n",
    )
    .unwrap();
    std::fs::write(project.join(".dockerignore"), ".git\n").unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(&project)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "--quiet", "--initial-branch", "main"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "--message", "sample"]);

    let registry = Registry::start();
    let image = format!("{}/sample/app", registry.host());
    let given: BTreeMap<&str, String> = BTreeMap::from([
        ("image", image.clone()),
        ("context", project.display().to_string()),
        ("push", "true".into()),
        ("tags", "v1, nightly".into()),
        ("build-args", "GREETING=hello\n".into()),
        ("need", "1M".into()),
        ("username", registry.user.clone()),
        ("password", registry.password.clone()),
    ]);
    let mut inputs = BTreeMap::new();
    for (name, spec) in action["inputs"].as_object().unwrap() {
        let default = spec["default"].as_str().unwrap_or_default().to_string();
        inputs.insert(name.clone(), default);
    }
    for (name, value) in &given {
        assert!(inputs.contains_key(*name), "no input {name}");
        inputs.insert(name.to_string(), value.clone());
    }
    let mut runner = Runner {
        inputs,
        steps: BTreeMap::new(),
        action_path: repo_root().to_path_buf(),
    };

    let temp = dir.path().join("runner-temp");
    let tool_cache = dir.path().join("tool-cache");
    std::fs::create_dir_all(&temp).unwrap();
    let summary = dir.path().join("summary.md");
    let github_path = dir.path().join("github_path");
    let mut log = String::new();
    for (i, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let id = step["id"].as_str().unwrap_or_default().to_string();
        if let Some(uses) = step["uses"].as_str() {
            assert!(
                uses.starts_with("actions/cache@"),
                "an unknown action: {uses}"
            );
            // A cache hit: the CLI as the install step saved it, where the cache puts it.
            let path = runner.substitute(step["with"]["path"].as_str().unwrap());
            let key = runner.substitute(step["with"]["key"].as_str().unwrap());
            assert!(
                key.contains("headroom-cli-0."),
                "the key names the version: {key}"
            );
            std::fs::create_dir_all(Path::new(&path).join("bin")).unwrap();
            std::fs::copy(headroom_bin(), Path::new(&path).join("bin/headroom")).unwrap();
            runner
                .steps
                .insert(id, BTreeMap::from([("cache-hit".into(), "true".into())]));
            continue;
        }
        assert_eq!(step["shell"], "bash", "step {i}");
        let script = runner.substitute(step["run"].as_str().unwrap());
        let output = dir.path().join(format!("output-{i}"));
        let mut cmd = Command::new("bash");
        without_github_env(&mut cmd);
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
            .current_dir(dir.path())
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("RUNNER_ENVIRONMENT", "self-hosted")
            .env("RUNNER_TEMP", &temp)
            .env("RUNNER_TOOL_CACHE", &tool_cache)
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_PATH", &github_path)
            .env("GITHUB_STEP_SUMMARY", &summary);
        if let Some(env) = step["env"].as_object() {
            for (k, v) in env {
                cmd.env(k, runner.substitute(v.as_str().unwrap()));
            }
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        log.push_str(&format!(
            "--- step {i} ({id})\n{}{stderr}",
            String::from_utf8_lossy(&out.stdout)
        ));
        assert!(out.status.success(), "step {i} ({id}) failed:\n{log}");
        runner.steps.insert(id, read_outputs(&output));
    }
    assert!(
        !log.contains(&registry.password),
        "the password was printed"
    );
    assert!(
        log.contains("cached"),
        "the install step did not take the cache: {log}"
    );

    // The action's outputs, as a workflow's later steps see them.
    let outputs: BTreeMap<String, String> = action["outputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), runner.substitute(v["value"].as_str().unwrap())))
        .collect();
    assert_eq!(outputs["result"], "success", "{outputs:?}\n{log}");
    let report = check_report(Path::new(&outputs["report"]));
    let names: Vec<String> = report.stages.iter().map(|s| s.name.to_string()).collect();
    for stage in ["lint", "free", "build", "smoke", "push"] {
        assert!(
            names.iter().any(|n| n == stage),
            "{stage}: {names:?}\n{log}"
        );
    }
    assert!(
        report.stages.iter().all(|s| s.status.as_str() != "failed"),
        "{:?}",
        report.stages
    );
    let smoke = report.smoke.as_ref().and_then(|s| s.run.as_ref());
    assert!(smoke.is_some_and(|r| r.exit_code == 0), "{smoke:?}");
    let digest = &outputs["digest"];
    assert!(digest.starts_with("sha256:"), "{outputs:?}");
    for tag in ["latest", "v1", "nightly"] {
        assert_eq!(
            registry.manifest_digest("sample/app", tag).as_ref(),
            Some(digest),
            "{tag}"
        );
    }
    assert!(outputs["imageid"].starts_with("sha256:"), "{outputs:?}");
    let metadata: Value = serde_json::from_str(&outputs["metadata"]).unwrap();
    assert_eq!(metadata["containerimage.digest"], digest.as_str());
    outputs["freed-bytes"].parse::<u64>().unwrap();
    outputs["peak-disk"].parse::<u64>().unwrap();
    assert_eq!(outputs["cause"], "");
    // Later steps find `headroom` on PATH.
    let path = std::fs::read_to_string(&github_path).unwrap();
    assert!(
        Path::new(path.trim()).join("headroom").is_file(),
        "GITHUB_PATH: {path}"
    );

    let mut rmi = vec!["rmi", "-f"];
    let references: Vec<String> = report.image.references.clone();
    rmi.extend(references.iter().map(String::as_str));
    let _ = sh("docker", &rmi);
}
