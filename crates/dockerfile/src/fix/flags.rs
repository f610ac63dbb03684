//! [`FixId::PipNoCacheDir`], [`FixId::ApkNoCache`] and (unsafe)
//! [`FixId::AptNoInstallRecommends`]: a flag added to an install command.

use std::collections::BTreeMap;

use super::plan::{Plan, Planner};
use crate::ast::Keyword;
use crate::rules::FixId;

impl Planner<'_> {
    /// Whether `PIP_NO_CACHE_DIR` is set by an ENV or ARG before instruction `idx`.
    pub(super) fn pip_cache_off(&self, idx: usize) -> bool {
        self.df.instructions.iter().take(idx).any(|i| {
            matches!(i.keyword, Keyword::Env | Keyword::Arg)
                && i.pairs().iter().any(|p| p.key.text == "PIP_NO_CACHE_DIR")
        })
    }

    /// Flags added to install commands: `--no-cache-dir`, `--no-cache`, and (unsafe)
    /// `--no-install-recommends`.
    pub(super) fn plan_flags(&self, plan: &mut Plan) {
        let recommends_configured = self.src.contains("Install-Recommends");
        for (&idx, run) in &self.runs {
            if !run.editable() {
                continue;
            }
            let text = run.text();
            let mut found: BTreeMap<FixId, usize> = BTreeMap::new();
            let mut inserts = Vec::new();
            for cmd in &run.script.cmds {
                let sh = cmd.shell();
                let has = |f: &str| sh.has_any(&[f]);
                let after = |i: usize| cmd.words.get(i).map(|w| w.range.end);
                // pip install: the word `install` after pip's own options.
                if sh.is_pip_install()
                    && !has("--no-cache-dir")
                    && !sh.args().iter().any(|a| a.starts_with("--cache-dir"))
                    && !text.contains("PIP_NO_CACHE_DIR")
                    && !run.has_cache_mount()
                    && !self.pip_cache_off(idx)
                {
                    let pip_at = cmd.words.len() - sh.pip_args().map_or(0, <[String]>::len);
                    let at = cmd
                        .words
                        .iter()
                        .enumerate()
                        .skip(pip_at)
                        .find(|(_, w)| !w.text.starts_with('-'))
                        .and_then(|(i, _)| after(i));
                    if let Some(at) = at {
                        inserts.push((at, " --no-cache-dir".to_string()));
                        *found.entry(FixId::PipNoCacheDir).or_default() += 1;
                    }
                }
                let program_at = cmd.program_at();
                let sub = cmd.subcommand_at(program_at);
                let sub_text = sub.and_then(|i| cmd.words.get(i)).map(|w| w.text.as_str());
                if sh.program() == Some("apk")
                    && sub_text == Some("add")
                    && !sh.args().iter().any(|a| a.contains("cache"))
                    && !run.has_cache_mount()
                    && let Some(at) = sub.and_then(after)
                {
                    inserts.push((at, " --no-cache".to_string()));
                    *found.entry(FixId::ApkNoCache).or_default() += 1;
                }
                if self.unsafe_fixes
                    && matches!(sh.program(), Some("apt-get" | "apt"))
                    && sub_text == Some("install")
                    && !recommends_configured
                    && !has("--no-install-recommends")
                    && let Some(at) = sub.and_then(after)
                {
                    inserts.push((at, " --no-install-recommends".to_string()));
                    *found.entry(FixId::AptNoInstallRecommends).or_default() += 1;
                }
            }
            if inserts.is_empty() {
                continue;
            }
            plan.edits.entry(idx).or_default().inserts.extend(inserts);
            for (id, n) in found {
                let (what, cmd) = match id {
                    FixId::PipNoCacheDir => ("--no-cache-dir", "pip install"),
                    FixId::ApkNoCache => ("--no-cache", "apk add"),
                    _ => ("--no-install-recommends", "apt-get install"),
                };
                let times = if n == 1 {
                    String::new()
                } else {
                    format!(" ({n} commands)")
                };
                plan.changes
                    .push(self.change(id, &[idx], format!("added {what} to {cmd}{times}")));
            }
        }
    }
}
