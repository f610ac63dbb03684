//! The plan written out: each edited RUN's script spliced in the source, merged groups
//! joined with `&&` one command group per line, and what each must read back as.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use super::check::Expect;
use super::plan::{Plan, Planner, RunEdit};

impl Planner<'_> {
    /// The escape character, for new line continuations.
    pub(super) fn escape(&self) -> char {
        self.df.escape
    }

    /// RUN `idx`'s script with its edits: (source text, shell text as Docker will read it).
    /// `wrap` puts it in a subshell; `appends` follow on lines of their own.
    pub(super) fn part(&self, idx: usize, plan: &Plan, wrap: bool) -> Option<(String, String)> {
        let run = self.runs.get(&idx)?;
        let word = run.word?;
        let map = run.map.as_ref()?;
        let base = word.span.start.offset;
        let mut src = self.src.get(word.span.range())?.to_string();
        let mut text = word.text.clone();
        let empty = RunEdit::default();
        let edit = plan.edits.get(&idx).unwrap_or(&empty);
        // (shell-text range, source range, new text), applied from the end.
        let mut splices: Vec<(Range<usize>, Range<usize>, &str)> = Vec::new();
        for (at, s) in &edit.inserts {
            let p = map.insert_at(*at);
            splices.push((*at..*at, p..p, s));
        }
        for r in &edit.removes {
            splices.push((r.clone(), map.range(r), ""));
        }
        splices.sort_by_key(|s| std::cmp::Reverse((s.0.start, s.0.end)));
        for (t, s, new) in splices {
            let s = s.start.checked_sub(base)?..s.end.checked_sub(base)?;
            src.get(s.clone())?;
            text.get(t.clone())?;
            src.replace_range(s, new);
            text.replace_range(t, new);
        }
        if wrap {
            src = format!("( {src} )");
            text = format!("( {text} )");
        }
        for a in &edit.appends {
            src.push_str(&format!(" {}{}    && {a}", self.escape(), self.nl));
            text.push_str(&format!("     && {a}"));
        }
        Some((src, text))
    }

    /// Whether part `k` of `n` joined parts (a RUN alone with appends is part 0 of 1 with
    /// something after it) must be a subshell: what it does to the shell would reach the
    /// parts after it, or its `||`/`;` would take them in.
    pub(super) fn wrap(&self, idx: usize, plan: &Plan, k: usize, n: usize) -> bool {
        let Some(run) = self.runs.get(&idx) else {
            return false;
        };
        let appends = plan.edits.get(&idx).is_some_and(|e| !e.appends.is_empty());
        let followed = k + 1 < n || appends;
        (followed && (run.script.leaks || run.script.trailing_separator))
            || (k > 0 && run.script.needs_parens())
    }

    /// The new text, what it must read back as, and the splices that made it; or the RUNs
    /// that could not be rewritten.
    #[allow(clippy::type_complexity)]
    pub(super) fn render(
        &self,
        plan: &Plan,
    ) -> Result<(String, Vec<Expect>, Vec<(Range<usize>, String)>), BTreeSet<usize>> {
        let mut splices: Vec<(Range<usize>, String)> = Vec::new();
        let mut expects = Vec::new();
        let mut in_group: BTreeMap<usize, usize> = BTreeMap::new();
        for (g, group) in plan.groups.iter().enumerate() {
            for &i in group {
                in_group.insert(i, g);
            }
        }
        let mut group_regions: Vec<Range<usize>> = Vec::new();
        for (idx, inst) in self.df.instructions.iter().enumerate() {
            if let Some(&g) = in_group.get(&idx) {
                let group = &plan.groups[g];
                if group.first() != Some(&idx) {
                    continue;
                }
                let (region, text, script) = self
                    .merged(group, plan)
                    .ok_or_else(|| group.iter().copied().collect::<BTreeSet<usize>>())?;
                group_regions.push(region.clone());
                splices.push((region, text));
                expects.push(Expect::Run {
                    members: group.clone(),
                    script,
                });
                continue;
            }
            let Some(edit) = plan.edits.get(&idx) else {
                expects.push(Expect::Same(idx));
                continue;
            };
            if edit.removed {
                splices.push((inst.whole_lines.clone(), String::new()));
                continue;
            }
            let wrap = self.wrap(idx, plan, 0, 1);
            let word = self.runs.get(&idx).and_then(|r| r.word);
            let (Some((src, script)), Some(word)) = (self.part(idx, plan, wrap), word) else {
                return Err(BTreeSet::from([idx]));
            };
            splices.push((word.span.range(), src));
            expects.push(Expect::Run {
                members: vec![idx],
                script,
            });
        }
        // RUNs removed inside a merged region are already gone with it.
        splices.retain(|(r, t)| {
            !t.is_empty()
                || !group_regions
                    .iter()
                    .any(|g| g.start <= r.start && r.end <= g.end && g != r)
        });
        splices.sort_by_key(|(r, _)| r.start);
        let mut out = String::with_capacity(self.src.len());
        let mut applied = Vec::with_capacity(splices.len());
        let mut at = 0;
        for (r, text) in splices {
            if r.start < at {
                continue;
            }
            out.push_str(self.src.get(at..r.start).unwrap_or(""));
            out.push_str(&text);
            at = r.end;
            applied.push((r, text));
        }
        out.push_str(self.src.get(at..).unwrap_or(""));
        Ok((out, expects, applied))
    }

    /// A merged group: the source range it replaces, the new lines, and the shell text.
    pub(super) fn merged(
        &self,
        group: &[usize],
        plan: &Plan,
    ) -> Option<(Range<usize>, String, String)> {
        let first = self.runs.get(group.first()?)?;
        let last = self.runs.get(group.last()?)?;
        let region = first.inst.whole_lines.start..last.inst.whole_lines.end;
        let header = first.inst.span.start.offset..first.word?.span.start.offset;
        // Spans that stay inside the merged RUN; any other comment line in the region goes
        // above it.
        let mut kept: Vec<Range<usize>> = vec![header.clone()];
        let mut parts = Vec::new();
        for (k, &idx) in group.iter().enumerate() {
            let run = self.runs.get(&idx)?;
            kept.push(run.word?.span.range());
            let wrap = self.wrap(idx, plan, k, group.len());
            parts.push(self.part(idx, plan, wrap)?);
        }
        let mut out = String::new();
        let mut at = region.start;
        for line in self.src.get(region.clone())?.split_inclusive('\n') {
            let start = at;
            at += line.len();
            if line.trim_start().starts_with('#')
                && !kept.iter().any(|k| k.start <= start && start < k.end)
            {
                out.push_str(line);
            }
        }
        out.push_str(self.src.get(region.start..header.end)?);
        let mut script = String::new();
        for (k, (src, text)) in parts.iter().enumerate() {
            if k > 0 {
                out.push_str(&format!(" {}{}    && ", self.escape(), self.nl));
                script.push_str("     && ");
            }
            out.push_str(src);
            script.push_str(text);
        }
        let tail = self.src.get(last.inst.span.end.offset..region.end)?;
        if tail.ends_with("\r\n") {
            out.push_str("\r\n");
        } else if tail.ends_with('\n') {
            out.push('\n');
        }
        Some((region, out, script))
    }
}
