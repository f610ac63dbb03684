//! [`FixId::AptListsCleanup`]: `rm -rf /var/lib/apt/lists/*` at the end of a RUN that uses
//! apt, when nothing after it needs the lists before fetching them again.

use super::apt::{AptUse, script_apt_uses};
use super::plan::{Plan, Planner};
use crate::rules::FixId;
use crate::shell::Cmd;

impl Planner<'_> {
    /// What the apt commands of RUN `idx` do to the lists, in order, once the planned
    /// moves are made.
    pub(super) fn apt_uses(&self, idx: usize, plan: &Plan) -> Vec<AptUse> {
        let Some(run) = self.runs.get(&idx) else {
            return Vec::new();
        };
        let edit = plan.edits.get(&idx);
        if edit.is_some_and(|e| e.removed) {
            return Vec::new();
        }
        let mut out = if run.script.understood && run.default_shell && run.inst.heredocs.is_empty()
        {
            let moved = |cmd: &Cmd| {
                edit.is_some_and(|e| {
                    e.removes
                        .iter()
                        .any(|r| r.start <= cmd.range.start && cmd.range.end <= r.end)
                })
            };
            script_apt_uses(
                &run.script,
                run.text(),
                &|n| self.copied.contains(n),
                &moved,
            )
        } else {
            // A heredoc, another shell or a script this reader cannot follow: anything.
            vec![AptUse::May]
        };
        for a in edit.map(|e| e.appends.as_slice()).unwrap_or_default() {
            if a.contains("/var/lib/apt/lists") {
                out.push(AptUse::Removes);
            }
        }
        out
    }

    /// For every stage: whether a stage built on it (at any depth) reads the package lists
    /// before fetching them, or has ONBUILD triggers that may. One pass from the last stage
    /// to the first (a stage's base always comes before it), so a file of thousands of
    /// stages is planned in linear time.
    pub(super) fn children_need_lists(&self, plan: &Plan) -> Vec<bool> {
        let mut needs = vec![false; self.stages.len()];
        for s in (0..self.stages.len()).rev() {
            let (range, base) = &self.stages[s];
            let Some(base) = *base else { continue };
            let own = self.needs_lists_after.get(s).copied().unwrap_or(true)
                || range
                    .clone()
                    .flat_map(|i| self.apt_uses(i, plan))
                    .find(|u| *u != AptUse::Removes)
                    .is_some_and(AptUse::reads);
            if (own || needs[s])
                && let Some(slot) = needs.get_mut(base)
            {
                *slot = true;
            }
        }
        needs
    }

    /// `rm -rf /var/lib/apt/lists/*` at the end of a RUN that uses apt, when no later
    /// command needs the lists before fetching them again.
    pub(super) fn plan_apt_lists(&self, plan: &mut Plan) {
        let mut adds = Vec::new();
        let children_need = self.children_need_lists(plan);
        for (&idx, run) in &self.runs {
            let uses = self.apt_uses(idx, plan);
            let Some(last) = uses
                .iter()
                .rposition(|u| matches!(u, AptUse::Update | AptUse::Needs))
            else {
                continue;
            };
            // Code that cannot be seen after the last apt command: it may need the lists
            // (and so would the same RUN once joined with a later one).
            // Nor after a command that names them: once RUNs are joined, the cleanup would
            // go after it where, apart, it would not (the fix must be idempotent).
            if uses[last..].contains(&AptUse::Removes)
                || uses[last..].contains(&AptUse::May)
                || uses[last..].contains(&AptUse::Named)
                || !run.joinable()
                || run.mounts.iter().any(|m| m.covers("/var/lib/apt/lists"))
            {
                continue;
            }
            let (range, _) = &self.stages[run.stage];
            let next = (idx + 1..range.end)
                .flat_map(|i| self.apt_uses(i, plan))
                .next();
            if next.is_some_and(AptUse::reads)
                || self
                    .needs_lists_after
                    .get(run.stage)
                    .copied()
                    .unwrap_or(true)
                || children_need.get(run.stage).copied().unwrap_or(true)
            {
                continue;
            }
            adds.push(idx);
        }
        for idx in adds {
            plan.edits
                .entry(idx)
                .or_default()
                .appends
                .push("rm -rf /var/lib/apt/lists/*".to_string());
            plan.changes.push(self.change(
                FixId::AptListsCleanup,
                &[idx],
                "removed apt's package lists in the RUN that fetched or used them".to_string(),
            ));
        }
    }
}
