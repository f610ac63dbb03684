//! [`FixId::MergeRuns`]: consecutive RUNs with the same flags joined into one.

use super::plan::{Plan, Planner};
use crate::rules::FixId;

impl Planner<'_> {
    /// Consecutive RUNs (comments, blank lines and moved-away RUNs between them are fine)
    /// with the same flags, each joinable.
    pub(super) fn plan_merges(&self, plan: &mut Plan) {
        for (range, _) in &self.stages {
            let mut group: Vec<usize> = Vec::new();
            let flush = |group: &mut Vec<usize>, plan: &mut Plan| {
                if group.len() > 1 {
                    plan.groups.push(std::mem::take(group));
                } else {
                    group.clear();
                }
            };
            for idx in range.clone() {
                if plan.edits.get(&idx).is_some_and(|e| e.removed) {
                    continue;
                }
                let Some(run) = self.runs.get(&idx).filter(|r| r.mergeable()) else {
                    flush(&mut group, plan);
                    continue;
                };
                let same = group
                    .first()
                    .and_then(|f| self.runs.get(f))
                    .is_none_or(|f| f.inst.same_flags(run.inst));
                if !same {
                    flush(&mut group, plan);
                }
                // A script ending in a literal backslash can only come last, unparenthesised.
                if run.script.trailing_backslash && (group.is_empty() || run.script.needs_parens())
                {
                    flush(&mut group, plan);
                    continue;
                }
                group.push(idx);
                if !run.joinable() {
                    // It may end a joined run, not be followed (`set -e`, a trailing backslash).
                    flush(&mut group, plan);
                }
            }
            flush(&mut group, plan);
        }
        for group in &plan.groups {
            let lines: Vec<String> = group
                .iter()
                .filter_map(|i| self.df.instructions.get(*i))
                .map(|i| i.line.to_string())
                .collect();
            let update_alone = group.iter().any(|i| {
                self.runs.get(i).is_some_and(|r| {
                    r.script.cmds.len() == 1
                        && r.script.cmds.iter().all(|c| c.shell().is_apt("update"))
                })
            });
            let mut description = format!(
                "merged {} RUN instructions (lines {}) into one",
                group.len(),
                lines.join(", ")
            );
            if update_alone {
                description
                    .push_str("; `apt-get update` now runs in the same layer as the install");
            }
            plan.changes
                .push(self.change(FixId::MergeRuns, group, description));
        }
    }
}
