//! [`FixId::MoveCleanup`]: a cleanup in a later RUN moved into the RUN that made the data.

use std::collections::BTreeMap;
use std::ops::Range;

use super::apt::{AptUse, apt_use};
use super::cleanup::{Cache, cleanup_of};
use super::plan::{Plan, Planner};
use crate::ast::Keyword;
use crate::rules::FixId;
use crate::shell::{self, Script};

impl Planner<'_> {
    /// The RUN a cleanup of `cache` in RUN `c` belongs in: the last RUN before it in the
    /// stage that uses the cache, when nothing between could touch the cache and that RUN
    /// can take more commands.
    pub(super) fn maker(&self, c: usize, cache: &Cache) -> Option<usize> {
        let run = self.runs.get(&c)?;
        let (range, _) = self.stages.get(run.stage)?;
        for i in (range.start..c).rev() {
            let inst = self.df.instructions.get(i)?;
            if inst.keyword == Keyword::Onbuild {
                continue;
            }
            if let Some(r) = self.runs.get(&i) {
                let apt = *cache == Cache::Apt;
                let uses = if apt {
                    self.apt_uses(i, &Plan::default())
                } else {
                    Vec::new()
                };
                // A RUN that may run apt where it cannot be seen may need the lists.
                if uses.contains(&AptUse::May) {
                    return None;
                }
                // One that reads them by name (`cp -a / /rootfs`) uses them.
                if cache.used_by(&r.uses) || uses.iter().any(|u| u.reads()) {
                    let fits = r.joinable()
                        && !cache
                            .paths()
                            .iter()
                            .any(|p| r.mounts.iter().any(|m| m.covers(p)))
                        && !(*cache == Cache::Pip && r.has_cache_mount());
                    return fits.then_some(i);
                }
                if cache.disturbed_by(inst, &r.uses) {
                    return None;
                }
            } else if cache.disturbed_by(inst, &inst.original) {
                return None;
            }
        }
        None
    }

    /// Cleanups in a later RUN moved into the RUN that made the data.
    pub(super) fn plan_moves(&self, plan: &mut Plan) {
        for (&c, run) in &self.runs {
            // A mount could be what the cleanup cleans.
            if !run.editable() || !run.mounts.is_empty() || !run.script.is_and_chain() {
                continue;
            }
            let text = run.text();
            // (command index, [(maker, text appended there)])
            let mut moved: Vec<(usize, Vec<(usize, String)>)> = Vec::new();
            for (k, cmd) in run.script.cmds.iter().enumerate() {
                let Some(cleanup) = cleanup_of(cmd, text) else {
                    continue;
                };
                // The cleanup is already where the data is made when a command before it
                // in the same RUN uses the cache.
                // So is it when a command before it may run apt where it cannot be seen (as
                // a RUN between the maker and the cleanup keeps it in place, see `maker`).
                let earlier_use = |cache: &Cache| {
                    run.script.cmds[..k].iter().any(|e| {
                        cleanup_of(e, text).is_none()
                            && (cache.used_by(run.raw(e))
                                || (*cache == Cache::Apt
                                    && (shell::opaque(e, &|n| self.copied.contains(n))
                                        || apt_use(e, text).is_some_and(AptUse::reads))))
                    })
                };
                let mut by_maker: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
                let mut all = true;
                for (cache, operand) in &cleanup.items {
                    match (earlier_use(cache), self.maker(c, cache)) {
                        (false, Some(t)) => by_maker.entry(t).or_default().push(operand),
                        _ => all = false,
                    }
                }
                if !all {
                    continue;
                }
                let single = by_maker.len() == 1;
                let appends = by_maker
                    .into_iter()
                    .map(|(t, operands)| {
                        let text = if single {
                            run.raw(cmd).to_string()
                        } else {
                            // Operands made by different RUNs: one `rm` for each.
                            let mut words = vec!["rm".to_string()];
                            words.extend(cleanup.options.iter().cloned());
                            words.extend(operands.iter().map(|s| s.to_string()));
                            words.join(" ")
                        };
                        (t, text)
                    })
                    .collect();
                moved.push((k, appends));
            }
            if moved.is_empty() {
                continue;
            }
            let gone: Vec<usize> = moved.iter().map(|(k, _)| *k).collect();
            let whole = gone.len() == run.script.cmds.len();
            for (k, appends) in moved {
                let cmd_text = run.script.cmds.get(k).map_or("", |cmd| run.raw(cmd));
                let mut insts = vec![c];
                for (t, text) in appends {
                    plan.edits.entry(t).or_default().appends.push(text);
                    insts.push(t);
                }
                let lines: Vec<String> = insts[1..]
                    .iter()
                    .filter_map(|t| self.df.instructions.get(*t))
                    .map(|i| i.line.to_string())
                    .collect();
                plan.changes.push(self.change(
                    FixId::MoveCleanup,
                    &insts,
                    format!(
                        "moved `{cmd_text}` into the RUN at line {}, which makes the data{}",
                        lines.join(" and line "),
                        if whole { "; the later RUN is gone" } else { "" }
                    ),
                ));
            }
            let edit = plan.edits.entry(c).or_default();
            if whole {
                edit.removed = true;
            } else {
                edit.removes.extend(removals(&run.script, &gone));
            }
        }
    }
}

/// The ranges of the shell text to take out to remove commands `gone` (sorted, not all) of
/// an `&&` chain, each with one of the `&&` next to it.
pub(super) fn removals(script: &Script, gone: &[usize]) -> Vec<Range<usize>> {
    let cmds = &script.cmds;
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&a) = gone.get(i) {
        let mut b = a;
        while gone.get(i + 1) == Some(&(b + 1)) {
            b += 1;
            i += 1;
        }
        i += 1;
        let before = a.checked_sub(1).and_then(|p| cmds.get(p));
        match (cmds.get(a), cmds.get(b), cmds.get(b + 1), before) {
            // Up to the next command kept: `A && B && C` without A is `B && C`.
            (Some(first), _, Some(next), _) => out.push(first.range.start..next.range.start),
            // At the end: from the end of the command kept before it.
            (_, Some(last), None, Some(prev)) => out.push(prev.range.end..last.range.end),
            _ => {}
        }
    }
    out
}
