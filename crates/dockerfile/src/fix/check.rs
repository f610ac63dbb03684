//! The read-back: a rewritten Dockerfile is parsed again and compared, instruction by
//! instruction, with what the fix meant to write; what does not read back as intended
//! names the RUNs to leave alone.

use std::collections::BTreeSet;

use crate::ast::{Dockerfile, Instruction, Keyword};

/// What a rewritten Dockerfile must read back as, instruction by instruction.
#[derive(Debug)]
pub(super) enum Expect {
    /// An instruction left alone: the same logical line.
    Same(usize),
    /// A RUN rewritten from `members` (several when merged): these flags, this shell text.
    Run { members: Vec<usize>, script: String },
}

/// Read `text` back and compare it with `expects`; on a mismatch, the RUNs to leave alone.
pub(super) fn check(
    text: &str,
    df: &Dockerfile,
    expects: &[Expect],
) -> Result<Dockerfile, BTreeSet<usize>> {
    let touched = |upto: usize| -> BTreeSet<usize> {
        // The RUNs rewritten at or before expectation `upto`: one of them broke the text.
        expects
            .iter()
            .take(upto + 1)
            .rev()
            .find_map(|e| match e {
                Expect::Run { members, .. } => Some(members.iter().copied().collect()),
                Expect::Same(_) => None,
            })
            .unwrap_or_default()
    };
    let Ok(new) = crate::parser::parse(text) else {
        return Err(BTreeSet::new());
    };
    if new.escape != df.escape || new.directives.len() != df.directives.len() {
        return Err(BTreeSet::new());
    }
    for (j, e) in expects.iter().enumerate() {
        let Some(got) = new.instructions.get(j) else {
            return Err(touched(j));
        };
        let ok = match e {
            Expect::Same(i) => df.instructions.get(*i).is_some_and(|old| {
                old.keyword == got.keyword
                    && old.original == got.original
                    && heredoc_bodies(old) == heredoc_bodies(got)
            }),
            Expect::Run { members, script } => {
                let first = members.first().and_then(|&i| df.instructions.get(i));
                got.keyword == Keyword::Run
                    && got.heredocs.is_empty()
                    && got.shell().is_some_and(|w| &w.text == script)
                    && first.is_some_and(|f| f.same_flags(got))
            }
        };
        if !ok {
            return Err(touched(j));
        }
    }
    if new.instructions.len() != expects.len() {
        return Err(touched(expects.len()));
    }
    Ok(new)
}

/// Heredocs without their positions (which move when lines before them change).
pub(super) fn heredoc_bodies(inst: &Instruction) -> Vec<(&str, &str, bool, bool, Option<u64>)> {
    inst.heredocs
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.body.as_str(),
                h.strip_tabs,
                h.expand,
                h.fd,
            )
        })
        .collect()
}
