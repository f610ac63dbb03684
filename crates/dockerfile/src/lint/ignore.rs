//! Ignores: `# hadolint ignore=DL3008,HR001` or `# headroom ignore=…` in the comment block
//! right above an instruction; `# hadolint global ignore=…` / `# headroom global ignore=…`
//! anywhere for the whole file; and the ids a configuration file names.

use std::collections::{BTreeMap, BTreeSet};

use super::raw::Raw;
use crate::ast::{Dockerfile, Instruction};

/// The findings not ignored by comments, nor by `ignore` (rule ids, in any case).
pub(super) fn not_ignored(df: &Dockerfile, raw: Vec<Raw>, ignore: &BTreeSet<String>) -> Vec<Raw> {
    let mut global: BTreeSet<String> = ignore.iter().map(|s| s.to_ascii_uppercase()).collect();
    let all_comments = df
        .instructions
        .iter()
        .flat_map(|i| i.comments.iter().chain(&i.inner_comments))
        .chain(&df.trailing_comments)
        .map(|c| c.text.as_str());
    for text in all_comments {
        if let Some(ids) = ignore_ids(text, true) {
            global.extend(ids);
        }
    }
    // The first instruction (ONBUILD triggers included) on each line, looked up once.
    let mut on_line: BTreeMap<usize, &Instruction> = BTreeMap::new();
    for i in df.walk() {
        on_line.entry(i.line).or_insert(i);
    }
    raw.into_iter()
        .filter(|r| !global.contains(r.id))
        .filter(|r| {
            // Inline ignores: the comment block directly above the instruction on r.line.
            let Some(inst) = on_line.get(&r.line) else {
                return true;
            };
            !inst
                .adjacent_comments()
                .iter()
                .filter_map(|c| ignore_ids(&c.text, false))
                .any(|ids| ids.iter().any(|id| id == r.id))
        })
        .collect()
}

/// `hadolint ignore=A,B` / `headroom ignore=A,B` (or their `global` forms when `global`).
pub(super) fn ignore_ids(comment: &str, global: bool) -> Option<Vec<String>> {
    let text = comment.trim();
    let rest = text
        .strip_prefix("hadolint")
        .or_else(|| text.strip_prefix("headroom"))?
        .trim_start();
    let rest = if global {
        rest.strip_prefix("global")?.trim_start()
    } else {
        rest
    };
    let ids = rest
        .strip_prefix("ignore")?
        .trim_start()
        .strip_prefix('=')?;
    Some(
        ids.split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
            .collect(),
    )
}
