//! Running one job of a workflow in the runner box, step by step, as a hosted runner does:
//! each `run:` step is a script file under `RUNNER_TEMP`, run by the `runner` user with
//! `bash --noprofile --norc -eo pipefail` in the workspace, with the Actions environment, the
//! workflow's, job's and step's `env:` and what earlier steps appended to `GITHUB_ENV` and
//! `GITHUB_PATH`; each step gets its own `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH` and
//! `GITHUB_STEP_SUMMARY` files, read back after it. A failed step fails the job; later steps
//! run only when their `if:` says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_yaml_ng::Value;

use super::actions::{self, Kind, Uses};
use super::expr::{self, Contexts};
use super::{Step, Workflow};
use crate::sandbox::builder::{BuilderSpec, ContainerBuilder, ensure_buildkit_image};
use crate::sandbox::runner_box::{self, RunnerBox};
use crate::sh::cmd;

/// What to run.
#[derive(Debug)]
pub struct JobSpec<'a> {
    pub workflow: &'a Workflow,
    /// The job's id; the first job when `None`.
    pub job: Option<&'a str>,
    /// The repository that `actions/checkout` copies into the workspace.
    pub source: &'a Path,
    /// `secrets.*`; an unset one is empty, as on GitHub.
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Skipped,
}

/// One step as it ran.
#[derive(Debug)]
pub struct StepRun {
    pub name: String,
    pub id: Option<String>,
    pub outcome: Outcome,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub outputs: BTreeMap<String, String>,
}

/// A job as it ran. Holds the builders its setup-buildx steps made, removed when dropped.
#[derive(Debug)]
pub struct JobRun {
    pub steps: Vec<StepRun>,
    /// Every step's `GITHUB_STEP_SUMMARY`, in order: the job's summary page.
    pub summary: String,
    pub passed: bool,
    /// Where upload-artifact steps copied their paths.
    pub artifacts: PathBuf,
    _builders: Vec<ContainerBuilder>,
}

impl JobRun {
    /// The step named (or with id) `name`.
    pub fn step(&self, name: &str) -> Option<&StepRun> {
        self.steps
            .iter()
            .find(|s| s.name == name || s.id.as_deref() == Some(name))
    }
}

struct State<'b> {
    rbox: &'b RunnerBox,
    env: BTreeMap<String, String>,
    path: Vec<String>,
    cx: Contexts,
    failed: bool,
    counter: usize,
    summary: String,
    builders: Vec<ContainerBuilder>,
    artifacts: PathBuf,
}

/// Run the job in `rbox`.
pub fn run_job(rbox: &RunnerBox, spec: &JobSpec<'_>) -> Result<JobRun> {
    let job = spec.workflow.job(spec.job)?;
    let base = rbox.environment();
    let mut cx = Contexts {
        secrets: spec.secrets.clone(),
        ..Contexts::default()
    };
    for (k, v) in &base {
        if let Some(key) = k.strip_prefix("GITHUB_") {
            cx.github.insert(key.to_ascii_lowercase(), v.clone());
        }
        if let Some(key) = k.strip_prefix("RUNNER_") {
            cx.runner.insert(key.to_ascii_lowercase(), v.clone());
        }
    }
    let mut state = State {
        rbox,
        env: base,
        path: Vec::new(),
        cx,
        failed: false,
        counter: 0,
        summary: String::new(),
        builders: Vec::new(),
        artifacts: rbox.spec.dir.join("artifacts"),
    };
    for (k, v) in spec.workflow.env.iter().chain(&job.env) {
        state.cx.env = state.env.clone();
        let v = expr::interpolate(v, &state.cx)?;
        state.env.insert(k.clone(), v);
    }
    let mut runs = Vec::new();
    for step in &job.steps {
        let start = std::time::Instant::now();
        let run = state.step(step, spec.source, &BTreeMap::new())?;
        eprintln!(
            "workflow: {} → {:?}{} in {:.1} s",
            run.name,
            run.outcome,
            run.code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
            start.elapsed().as_secs_f64()
        );
        runs.push(run);
    }
    Ok(JobRun {
        steps: runs,
        summary: state.summary,
        passed: !state.failed,
        artifacts: state.artifacts,
        _builders: state.builders,
    })
}

impl State<'_> {
    fn step(
        &mut self,
        step: &Step,
        source: &Path,
        inputs: &BTreeMap<String, String>,
    ) -> Result<StepRun> {
        let mut run = StepRun {
            name: step.name.clone(),
            id: step.id.clone(),
            outcome: Outcome::Skipped,
            code: None,
            stdout: String::new(),
            stderr: String::new(),
            outputs: BTreeMap::new(),
        };
        let condition = step.condition.as_deref().unwrap_or("success()");
        if !expr::condition_met(condition, self.failed)? {
            return Ok(run);
        }
        self.cx.env = self.env.clone();
        self.cx.inputs = inputs.clone();
        let mut env = self.env.clone();
        for (k, v) in &step.env {
            env.insert(k.clone(), expr::interpolate(v, &self.cx)?);
        }
        let with: BTreeMap<String, String> = step
            .with
            .iter()
            .map(|(k, v)| Ok((k.clone(), expr::interpolate(v, &self.cx)?)))
            .collect::<Result<_>>()?;
        let ok = match (&step.run, &step.uses) {
            (Some(script), _) => {
                let script = expr::interpolate(script, &self.cx)?;
                self.script(&script, step, &env, &mut run)?
            }
            (None, Some(uses)) => self.action(uses, &with, &env, source, &mut run)?,
            (None, None) => bail!("step {:?}: neither run nor uses", step.name),
        };
        run.outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        if !ok && !step.continue_on_error {
            self.failed = true;
        }
        if let Some(id) = &step.id {
            self.cx.steps.insert(id.clone(), run.outputs.clone());
            let outcome = if ok { "success" } else { "failure" };
            self.cx.outcomes.insert(id.clone(), outcome.into());
        }
        Ok(run)
    }

    /// A `run:` step: the script as the runner user; true when it exits 0.
    fn script(
        &mut self,
        script: &str,
        step: &Step,
        env: &BTreeMap<String, String>,
        run: &mut StepRun,
    ) -> Result<bool> {
        self.counter += 1;
        let n = self.counter;
        let temp = self.rbox.temp();
        let files = temp.join("_runner_file_commands");
        std::fs::create_dir_all(&files)?;
        let file = |what: &str| files.join(format!("{what}_{n}"));
        let (output, set_env, add_path, summary) = (
            file("set_output"),
            file("set_env"),
            file("add_path"),
            file("step_summary"),
        );
        for f in [&output, &set_env, &add_path, &summary] {
            std::fs::write(f, "")?;
        }
        let script_file = temp.join(format!("step-{n}.sh"));
        std::fs::write(&script_file, script)?;
        runner_box::chown_runner(&temp)?;
        let mut env = env.clone();
        env.insert("GITHUB_OUTPUT".into(), output.display().to_string());
        env.insert("GITHUB_ENV".into(), set_env.display().to_string());
        env.insert("GITHUB_PATH".into(), add_path.display().to_string());
        env.insert("GITHUB_STEP_SUMMARY".into(), summary.display().to_string());
        if !self.path.is_empty()
            && let Some(p) = env.get_mut("PATH")
        {
            *p = format!("{}:{p}", self.path.join(":"));
        }
        let shell: &[&str] = match step.shell.as_deref() {
            None | Some("bash") => &["bash", "--noprofile", "--norc", "-eo", "pipefail"],
            Some("sh") => &["sh", "-e"],
            Some(other) => bail!(
                "step {:?}: shell {other:?} is not run by the box",
                step.name
            ),
        };
        let cwd = match &step.working_directory {
            Some(d) => self.rbox.workspace().join(d),
            None => self.rbox.workspace(),
        };
        let mut args: Vec<String> = ["-u", runner_box::USER, "--", "env", "-i"]
            .map(String::from)
            .to_vec();
        args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        args.extend(shell.iter().map(|s| s.to_string()));
        args.push(script_file.display().to_string());
        let out = cmd("runuser", &args).dir(&cwd).output()?;
        run.code = out.status.code();
        run.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        run.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        run.outputs = read_pairs(&output)?;
        for (k, v) in read_pairs(&set_env)? {
            self.env.insert(k, v);
        }
        let added = std::fs::read_to_string(&add_path).unwrap_or_default();
        self.path.splice(
            0..0,
            added
                .lines()
                .rev()
                .map(String::from)
                .filter(|l| !l.is_empty()),
        );
        self.summary
            .push_str(&std::fs::read_to_string(&summary).unwrap_or_default());
        Ok(out.status.success())
    }

    /// A `uses:` step, by what the action does.
    fn action(
        &mut self,
        uses: &str,
        with: &BTreeMap<String, String>,
        env: &BTreeMap<String, String>,
        source: &Path,
        run: &mut StepRun,
    ) -> Result<bool> {
        match actions::known(uses, &self.rbox.workspace())? {
            Uses::Known(_, Kind::NoOp(why)) => {
                run.stdout = format!("{uses}: nothing to do in the runner box ({why})\n");
                Ok(true)
            }
            Uses::Known(_, Kind::Checkout) => {
                checkout(source, &self.rbox.workspace())?;
                Ok(true)
            }
            Uses::Known(_, Kind::SetupBuildx) => {
                let name = format!("builder-box{}", self.builders.len());
                run.outputs = self.setup_buildx(&name)?;
                Ok(true)
            }
            Uses::Known(_, Kind::UploadArtifact) => {
                let name = with.get("name").map_or("artifact", String::as_str);
                let dest = self.artifacts.join(name);
                std::fs::create_dir_all(&dest)?;
                let mut copied = 0;
                for p in with.get("path").into_iter().flat_map(|p| p.lines()) {
                    let p = self.rbox.workspace().join(p.trim());
                    if p.is_file()
                        && let Some(file) = p.file_name()
                    {
                        std::fs::copy(&p, dest.join(file))?;
                        copied += 1;
                    }
                }
                run.stdout = format!("{copied} file(s) uploaded to {}\n", dest.display());
                Ok(copied > 0 || with.get("if-no-files-found").is_none_or(|w| w != "error"))
            }
            Uses::Local(dir) => self.composite(&dir, with, env, source, run),
        }
    }

    /// `docker/setup-buildx-action` with `driver: docker-container`: a builder from the
    /// BuildKit image, in the runner's own buildx configuration, selected.
    fn setup_buildx(&mut self, name: &str) -> Result<BTreeMap<String, String>> {
        ensure_buildkit_image(&crate::repo::project_root())?;
        let config = Path::new(runner_box::HOME).join(".docker");
        let builder = ContainerBuilder::create(
            name,
            &self.rbox.spec.dir.join("buildkit"),
            &BuilderSpec {
                docker_config: Some(config.clone()),
                ..BuilderSpec::default()
            },
        )?;
        cmd("docker", ["buildx", "use", name])
            .env("DOCKER_CONFIG", &config)
            .read()?;
        runner_box::chown_runner(&config)?;
        self.builders.push(builder);
        Ok(BTreeMap::from([
            ("name".to_string(), name.to_string()),
            ("driver".to_string(), "docker-container".to_string()),
        ]))
    }

    /// A local composite action: its inputs (defaults, then `with:`), its steps.
    fn composite(
        &mut self,
        dir: &Path,
        with: &BTreeMap<String, String>,
        env: &BTreeMap<String, String>,
        source: &Path,
        run: &mut StepRun,
    ) -> Result<bool> {
        let file = actions::action_file(dir);
        let text = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
        let doc: Value = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("{}: not YAML", file.display()))?;
        let at = file.display().to_string();
        let runs = doc.get("runs");
        let using = runs.and_then(|r| r.get("using")).and_then(Value::as_str);
        if using != Some("composite") {
            bail!("{at}: runs.using is {using:?}: the runner box runs composite actions only");
        }
        let mut inputs = BTreeMap::new();
        if let Some(map) = doc.get("inputs").and_then(Value::as_mapping) {
            for (k, v) in map {
                let Some(k) = super::scalar(k) else { continue };
                let default = v.get("default").and_then(super::scalar).unwrap_or_default();
                inputs.insert(k, default);
            }
        }
        for (k, v) in with {
            if !inputs.contains_key(k) {
                bail!("{at}: no input {k:?} (with: {k})");
            }
            inputs.insert(k.clone(), v.clone());
        }
        let steps = super::steps(runs.and_then(|r| r.get("steps")), &format!("{at}: runs"))?;
        // The action's steps see the caller's step env, and their own.
        let saved = std::mem::replace(&mut self.env, env.clone());
        let failed_before = self.failed;
        let mut ok = true;
        for step in &steps {
            let inner = self.step(step, source, &inputs)?;
            run.stdout.push_str(&inner.stdout);
            run.stderr.push_str(&inner.stderr);
            if inner.outcome == Outcome::Failure {
                ok = false;
                run.code = inner.code;
            }
        }
        self.cx.inputs = inputs;
        if let Some(map) = doc.get("outputs").and_then(Value::as_mapping) {
            for (k, v) in map {
                let (Some(k), Some(value)) =
                    (super::scalar(k), v.get("value").and_then(super::scalar))
                else {
                    continue;
                };
                run.outputs.insert(k, expr::interpolate(&value, &self.cx)?);
            }
        }
        // What the action's steps added to GITHUB_ENV stays for the job's later steps.
        let added: Vec<(String, String)> = self
            .env
            .iter()
            .filter(|(k, v)| env.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.env = saved;
        self.env.extend(added);
        self.failed = failed_before;
        Ok(ok)
    }
}

/// `actions/checkout`: the repository's tree (less `target/` and `.git/`) copied into the
/// workspace, the runner's.
fn checkout(source: &Path, workspace: &Path) -> Result<()> {
    std::fs::create_dir_all(workspace)?;
    let from = source.display().to_string();
    let to = workspace.display().to_string();
    cmd(
        "tar",
        [
            "-C",
            from.as_str(),
            "--exclude=./target",
            "--exclude=./.git",
            "-cf",
            "-",
            ".",
        ],
    )
    .pipe(cmd("tar", ["-C", to.as_str(), "-xf", "-"]))
    .run()
    .with_context(|| format!("checking out {from} into {to}"))?;
    runner_box::chown_runner(workspace)
}

/// A step file's `NAME=VALUE` lines and `NAME<<DELIMITER` blocks.
fn read_pairs(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    parse_pairs(&text).with_context(|| path.display().to_string())
}

fn parse_pairs(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            loop {
                match lines.next() {
                    Some(l) if l == delimiter => break,
                    Some(l) => value.push(l),
                    None => bail!("{name}: no closing {delimiter}"),
                }
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        } else {
            bail!("{line:?}: neither NAME=VALUE nor NAME<<DELIMITER");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_files_read_as_the_runner_reads_them() {
        let p = parse_pairs("a=1\nb<<EOF\nx\ny\nEOF\nc=d=e\n").unwrap();
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "x\ny");
        assert_eq!(p["c"], "d=e");
        assert!(parse_pairs("b<<EOF\nx\n").is_err());
        assert!(parse_pairs("junk\n").is_err());
    }
}
