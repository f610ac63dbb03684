//! Where the pipeline runs, and what that allows.

use std::collections::BTreeMap;

/// The CI facts that decide what may happen without asking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Runner {
    /// Inside a GitHub Actions job (`GITHUB_ACTIONS=true`).
    pub github_actions: bool,
    /// On a GitHub-hosted runner (`GITHUB_ACTIONS=true` and `RUNNER_ENVIRONMENT=github-hosted`):
    /// a throw-away machine.
    pub hosted: bool,
}

impl Runner {
    /// From a set of environment variables.
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Runner {
        let github_actions = vars.get("GITHUB_ACTIONS").is_some_and(|v| v == "true");
        let hosted = github_actions
            && vars
                .get("RUNNER_ENVIRONMENT")
                .is_some_and(|v| v == "github-hosted");
        Runner {
            github_actions,
            hosted,
        }
    }

    /// From this process's environment.
    pub fn detect() -> Runner {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Runner::from_vars(&vars)
    }

    /// Deleting preinstalled software needs no `--yes` only on a GitHub-hosted runner: a
    /// self-hosted runner, or a laptop, is somebody's machine.
    pub fn may_delete_unasked(self) -> bool {
        self.hosted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_github_hosted_runner_may_delete_unasked() {
        let hosted = vars(&[
            ("GITHUB_ACTIONS", "true"),
            ("RUNNER_ENVIRONMENT", "github-hosted"),
        ]);
        assert!(Runner::from_vars(&hosted).may_delete_unasked());
        for case in [
            vars(&[
                ("GITHUB_ACTIONS", "true"),
                ("RUNNER_ENVIRONMENT", "self-hosted"),
            ]),
            vars(&[("RUNNER_ENVIRONMENT", "github-hosted")]),
            vars(&[
                ("GITHUB_ACTIONS", "false"),
                ("RUNNER_ENVIRONMENT", "github-hosted"),
            ]),
            vars(&[]),
        ] {
            assert!(!Runner::from_vars(&case).may_delete_unasked(), "{case:?}");
        }
    }
}
