//! The lint stage: the Dockerfile linted before anything is built; at or above
//! headroom.toml's `[lint] fail_on` (default: errors) the pipeline stops here, before the
//! first deleted byte.

use anyhow::{Result, bail};
use headroom_docker::build::BuildSpec;

use super::context::{Outcome, Run};

pub(crate) fn run(run: &mut Run<'_>, spec: &BuildSpec) -> Result<Outcome> {
    let config = &run.settings.lint;
    let files = [crate::lint::lint_file(
        &spec.dockerfile,
        Some(&spec.context),
        config,
    )?];
    run.reporter.lint(&files);
    run.report.lint = Some(crate::lint::json(&files));
    if config.fail_on().fails(&files) {
        bail!(
            "{} has findings at or above the lint's fail_on level (see above; set [lint] \
             fail_on or ignores in headroom.toml, or fix them: cargo xtask lint --fix)",
            spec.dockerfile.display()
        );
    }
    Ok(Outcome::Passed)
}
