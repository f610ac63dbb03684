//! `headroom free` (and `cargo xtask free`): free disk space on a CI runner, by target, safely.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use headroom_disk::{
    Catalog, Environment, FreeReport, PlanRequest, Selection, UserConfig, format_size, parse_size,
};
use headroom_pipeline::privilege::Reclaimed;
use headroom_pipeline::render;

use crate::{UsageError, ui};

/// Free disk space: plan the cheapest items that reach a target, then reclaim them.
///
/// Sizes take decimal units (k, M, G, T = powers of 10, as in "14 GB") or binary ones
/// (Ki, Mi, Gi, Ti = powers of 2), with or without a trailing B, or plain bytes:
/// 30G = 30GB = 30,000,000,000 bytes; 30GiB = 32,212,254,720 bytes.
///
/// Safety: unless this is a GitHub-hosted runner (GITHUB_ACTIONS=true and
/// RUNNER_ENVIRONMENT=github-hosted) or --root is given, only the plan is printed and
/// nothing is deleted without --yes. --dry-run never deletes.
#[derive(Args, Debug)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:
  headroom free --need 30G --dry-run      # the plan for 30 GB free, nothing deleted
  headroom free --need 30G                # on a GitHub-hosted runner: delete to reach it
  headroom free --only dotnet,android --yes
  headroom free --list"
)]
pub struct Free {
    /// Resolve every catalog path under DIR and touch nothing outside it (no swapoff, no
    /// apt, no Docker). For tests, chroots and mounted images.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Free until at least SIZE is available on the target filesystem (e.g. 30G).
    #[arg(long, value_name = "SIZE", value_parser = size_arg)]
    need: Option<u64>,
    /// The filesystem to free is the one holding P [default: Docker's data root, else /;
    /// with --root, DIR].
    #[arg(long, value_name = "P")]
    path: Option<PathBuf>,
    /// Reclaim every default item, even past the target.
    #[arg(long)]
    all: bool,
    /// Only these items (comma-separated); opt-in items must be named here.
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    only: Vec<String>,
    /// Never these items (comma-separated).
    #[arg(long, value_name = "a,b", value_delimiter = ',')]
    skip: Vec<String>,
    /// Print the plan with each item's measured size; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Delete without asking where it would otherwise only plan (not a hosted runner).
    #[arg(long)]
    yes: bool,
    /// Print exactly one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// Configuration file with a [free] table (protect, extra items)
    /// [default: headroom.toml in the current directory, when present].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// List the catalog's items and exit.
    #[arg(long)]
    list: bool,
}

fn size_arg(s: &str) -> Result<u64, String> {
    parse_size(s).map_err(|e| e.to_string())
}

impl Free {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let (catalog, user) = load_catalog(self.config.as_deref())?;
        if self.list {
            return self.list_items(&catalog);
        }
        let env = match &self.root {
            Some(root) => {
                if !root.exists() {
                    return Err(UsageError(format!(
                        "--root {}: no such directory",
                        root.display()
                    ))
                    .into());
                }
                if !root.is_dir() {
                    return Err(
                        UsageError(format!("--root {}: not a directory", root.display())).into(),
                    );
                }
                Environment::under_root(root)
            }
            None => Environment::host(),
        };
        let target_path = self.target_path();
        let request = PlanRequest {
            target_path: target_path.clone(),
            need: self.need,
            selection: Selection {
                all: self.all || self.need.is_none(),
                only: self.only.clone(),
                skip: self.skip.clone(),
            },
            protect: user.protect.clone(),
        };
        let reporter = ui::Reporter::new();
        let plan = match headroom_disk::plan(&catalog, &env, &request, &reporter) {
            Ok(plan) => plan,
            // A protect entry that protects nothing: name the file it came from.
            Err(e @ headroom_disk::Error::Protect { .. }) => {
                let file = headroom_pipeline::settings::tool_config_path(self.config.as_deref())
                    .unwrap_or_default();
                return Err(UsageError(format!("{}: {e}; nothing deleted", file.display())).into());
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "planning to free space on {}",
                    target_path.display()
                )));
            }
        };

        let allowed = ui::github_hosted_runner() || self.root.is_some() || self.yes;
        let dry_run = self.dry_run || !allowed;
        if !dry_run {
            reporter.begin_reclaim(plan.selected().map(|i| i.size.files).sum());
        }
        let reclaimed = headroom_pipeline::privilege::reclaim(
            &catalog, &env, &request, &plan, dry_run, &reporter,
        )?;
        reporter.finish();
        let (report, no_sudo) = match reclaimed {
            Reclaimed::Done { report, .. } => (report, None),
            Reclaimed::PlanOnly { report, message } => (report, Some(message)),
        };

        self.show(&report)?;
        if let Some(message) = no_sudo {
            eprintln!("free: {message}");
            return Ok(ExitCode::FAILURE);
        }
        if !self.dry_run && !allowed && plan.selected().next().is_some() {
            eprintln!(
                "free: nothing deleted: this is not a GitHub-hosted runner \
                 (GITHUB_ACTIONS=true and RUNNER_ENVIRONMENT=github-hosted) and --root was not given. \
                 Review the plan above, then re-run with --yes to delete the planned items."
            );
        }
        Ok(self.exit_code(&report))
    }

    fn target_path(&self) -> PathBuf {
        if let Some(p) = &self.path {
            return p.clone();
        }
        if let Some(root) = &self.root {
            return root.clone();
        }
        headroom_disk::docker_data_root()
            .ok()
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    fn list_items(&self, catalog: &Catalog) -> Result<ExitCode> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&catalog.items)?);
            return Ok(ExitCode::SUCCESS);
        }
        let rows: Vec<Vec<String>> = catalog
            .items
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    serde_json::to_value(i.reclaim)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    if i.opt_in { "opt-in" } else { "default" }.to_string(),
                    i.paths.join(" "),
                ]
            })
            .collect();
        print!(
            "{}",
            ui::table(&["item", "reclaim", "chosen", "paths"], &rows)
        );
        Ok(ExitCode::SUCCESS)
    }

    fn show(&self, report: &FreeReport) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            print!("{}", render::human::free_report(report));
        }
        ui::github_step_summary(&render::markdown::free(report))?;
        ui::github_outputs(&render::github::free_outputs(report))?;
        Ok(())
    }

    /// Failure when a target is not met, or (with no target) when an item failed. With a
    /// target that is met, failed items are reported but do not fail the step.
    fn exit_code(&self, report: &FreeReport) -> ExitCode {
        let failed: Vec<&str> = report.failed().map(|i| i.name.as_str()).collect();
        if !report.dry_run && !report.target_met {
            let need = report.need_bytes.unwrap_or(0);
            eprintln!(
                "error: target not met: {} available on {}, {} needed. Free more with --all or by \
                 naming opt-in items (--only large-packages,…), or move Docker's data root to a \
                 bigger disk.",
                format_size(report.filesystem.available_after),
                report.filesystem.mount_point,
                format_size(need),
            );
            return ExitCode::FAILURE;
        }
        if !failed.is_empty() {
            eprintln!(
                "{}: {} item(s) failed: {} (see the reason column)",
                if report.need_bytes.is_some() {
                    "warning"
                } else {
                    "error"
                },
                failed.len(),
                failed.join(", ")
            );
            if report.need_bytes.is_none() {
                return ExitCode::FAILURE;
            }
        }
        ExitCode::SUCCESS
    }
}

/// The built-in catalog with headroom.toml's `[free]` table applied (`--config`, else
/// ./headroom.toml when there is one): extra items and protected paths.
pub(crate) fn load_catalog(config: Option<&Path>) -> Result<(Catalog, UserConfig)> {
    Ok(headroom_pipeline::settings::load_catalog(config)?)
}
