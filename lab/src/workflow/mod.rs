//! A GitHub Actions workflow, run the way a hosted runner runs it, in the runner box
//! ([`crate::sandbox::runner_box`]): the repository's own `.github/workflows/*.yml` (or a
//! sibling's), read with a YAML parser, each `run:` step a script run by the `runner` user
//! with `bash --noprofile --norc -eo pipefail` and the step's `env:`, each `uses:` emulated by
//! what the action does ([`actions`]), `${{ }}` evaluated for what workflows use ([`expr`]).
//!
//! - [`Workflow::read`] parses; [`Workflow::check`] checks that every step can be run here
//!   (known actions, expressions the box evaluates) without running anything;
//! - [`run::run_job`] runs one job and returns each step's outcome, output and outputs, and
//!   the job's step summary.

pub mod actions;
pub mod expr;
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_yaml_ng::Value;

/// A workflow file, as far as the box runs it.
#[derive(Debug, Clone)]
pub struct Workflow {
    pub path: PathBuf,
    pub env: BTreeMap<String, String>,
    pub jobs: Vec<Job>,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub env: BTreeMap<String, String>,
    pub steps: Vec<Step>,
}

/// One step: a script (`run`) or an action (`uses`).
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// Its name, else `run`'s first line or `uses`.
    pub name: String,
    pub id: Option<String>,
    pub uses: Option<String>,
    pub run: Option<String>,
    pub shell: Option<String>,
    pub with: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub condition: Option<String>,
    pub working_directory: Option<String>,
    pub continue_on_error: bool,
}

impl Workflow {
    /// Read and parse `path`; errors name the file and the job or step at fault.
    pub fn read(path: &Path) -> Result<Workflow> {
        let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
        Workflow::parse(&text, path)
    }

    /// Parse a workflow's text (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Workflow> {
        let doc: Value = serde_yaml_ng::from_str(text)
            .with_context(|| format!("{}: not YAML", path.display()))?;
        let at = |what: &str| format!("{}: {what}", path.display());
        let Some(jobs) = doc.get("jobs").and_then(Value::as_mapping) else {
            bail!("{}", at("no `jobs:` mapping"));
        };
        let mut out = Workflow {
            path: path.to_path_buf(),
            env: strings(doc.get("env"), &at("env"))?,
            jobs: Vec::new(),
        };
        for (id, job) in jobs {
            let id = scalar(id).with_context(|| at("a job id that is not a string"))?;
            let where_ = at(&format!("jobs.{id}"));
            let steps = steps(job.get("steps"), &where_)?;
            out.jobs.push(Job {
                env: strings(job.get("env"), &format!("{where_}.env"))?,
                id,
                steps,
            });
        }
        Ok(out)
    }

    /// The job `id`; the first when `None`.
    pub fn job(&self, id: Option<&str>) -> Result<&Job> {
        let found = match id {
            Some(id) => self.jobs.iter().find(|j| j.id == id),
            None => self.jobs.first(),
        };
        found.with_context(|| format!("{}: no job {}", self.path.display(), id.unwrap_or("at all")))
    }

    /// Every step of every job can run in the box: its action is emulated, its expressions
    /// are ones the box evaluates. What cannot, one line each (empty: all can).
    pub fn check(&self, repo: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        for job in &self.jobs {
            for (i, step) in job.steps.iter().enumerate() {
                let at = format!(
                    "{}: jobs.{}.steps[{i}] ({})",
                    self.path.display(),
                    job.id,
                    step.name
                );
                problems.extend(step.check(repo).into_iter().map(|p| format!("{at}: {p}")));
            }
        }
        problems
    }
}

impl Step {
    /// What of this step the box could not run.
    pub fn check(&self, repo: &Path) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(c) = &self.condition
            && let Err(e) = expr::condition_known(c)
        {
            problems.push(format!("if: {e}"));
        }
        let texts = self
            .with
            .values()
            .chain(self.env.values())
            .chain(self.run.iter());
        for text in texts {
            if let Err(e) = expr::check(text) {
                problems.push(e.to_string());
            }
        }
        if let Some(uses) = &self.uses
            && let Err(e) = actions::known(uses, repo)
        {
            problems.push(format!("{e:#}"));
        }
        problems
    }
}

/// The steps of a job (or of a composite action).
pub(crate) fn steps(value: Option<&Value>, at: &str) -> Result<Vec<Step>> {
    let Some(list) = value.and_then(Value::as_sequence) else {
        bail!("{at}: no `steps:` list");
    };
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let at = format!("{at}.steps[{i}]");
        if s.as_mapping().is_none() {
            bail!("{at}: not a mapping");
        }
        let text = |key: &str| -> Result<Option<String>> {
            s.get(key)
                .map(|v| scalar(v).with_context(|| format!("{at}.{key}: not a string")))
                .transpose()
        };
        let uses = text("uses")?;
        let run = text("run")?;
        if uses.is_some() == run.is_some() {
            bail!("{at}: a step has either `uses:` or `run:`");
        }
        let name = text("name")?.unwrap_or_else(|| match (&uses, &run) {
            (Some(u), _) => u.clone(),
            (_, Some(r)) => format!("Run {}", r.lines().next().unwrap_or("")),
            _ => String::new(),
        });
        out.push(Step {
            name,
            id: text("id")?,
            shell: text("shell")?,
            condition: text("if")?,
            working_directory: text("working-directory")?,
            continue_on_error: s
                .get("continue-on-error")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            with: strings(s.get("with"), &format!("{at}.with"))?,
            env: strings(s.get("env"), &format!("{at}.env"))?,
            uses,
            run,
        });
    }
    Ok(out)
}

/// A mapping of scalars as strings (`env:`, `with:`); none is an empty map.
pub(crate) fn strings(value: Option<&Value>, at: &str) -> Result<BTreeMap<String, String>> {
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let Some(map) = value.as_mapping() else {
        bail!("{at}: not a mapping");
    };
    map.iter()
        .map(|(k, v)| {
            let k = scalar(k).with_context(|| format!("{at}: a key that is not a string"))?;
            let v = scalar(v).with_context(|| format!("{at}.{k}: not a scalar"))?;
            Ok((k, v))
        })
        .collect()
}

/// A scalar as the runner reads it: strings as they are, numbers and booleans as written.
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_parses_into_steps_and_bad_ones_name_the_place() {
        let text = "on: push\nenv: {A: 1}\njobs:\n  j:\n    steps:\n      - uses: actions/checkout@v4\n      - name: x\n        id: s\n        if: always()\n        env: {B: \"${{ env.A }}\"}\n        run: |\n          echo hi\n";
        let w = Workflow::parse(text, Path::new("w.yml")).expect("parses");
        assert_eq!(w.env["A"], "1");
        let j = w.job(None).expect("a job");
        assert_eq!(j.steps.len(), 2);
        assert_eq!(j.steps[1].id.as_deref(), Some("s"));
        assert_eq!(j.steps[1].condition.as_deref(), Some("always()"));
        assert_eq!(j.steps[1].run.as_deref(), Some("echo hi\n"));
        let bad = "jobs:\n  j:\n    steps:\n      - name: both\n        run: x\n        uses: y\n";
        let e = Workflow::parse(bad, Path::new("w.yml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("w.yml: jobs.j.steps[0]"), "{e}");
        assert!(Workflow::parse("jobs: [", Path::new("w.yml")).is_err());
    }
}
