//! Build stages: which instructions belong to which FROM, and what `FROM <name>`,
//! `COPY --from=<name|index>` and `RUN --mount=from=…` refer to, decided as BuildKit decides.

use std::ops::Range;

use serde::Serialize;

use crate::ast::{Args, Dockerfile, Instruction, Keyword, Span};

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// 0-based, as `COPY --from=0` counts.
    pub index: usize,
    /// The name from `FROM image AS name`, in lower case (BuildKit compares names ignoring
    /// case). Not checked against Docker's naming rule (`^[a-z][a-z0-9-_.]*$`).
    pub name: Option<String>,
    /// The image as written (may hold `$VARIABLES`); empty for a FROM without arguments.
    pub base: String,
    /// The earlier stage the base names, if it names one (`FROM build AS test`).
    pub base_stage: Option<usize>,
    /// The `--platform` flag's value, if given.
    pub platform: Option<String>,
    /// Index of the FROM in [`Dockerfile::instructions`].
    pub from: usize,
    /// Indices of the stage's other instructions in [`Dockerfile::instructions`].
    pub instructions: Range<usize>,
    /// The FROM instruction's span.
    pub span: Span,
}

/// What a stage reference (`--from=…`) points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StageRef {
    /// A stage, by its index.
    Stage(usize),
    /// Not a stage: an image reference.
    Image(String),
    /// A number that is not the index of any stage (BuildKit: "invalid stage index").
    InvalidIndex(i64),
}

impl Dockerfile {
    /// The build stages, in order. Instructions before the first FROM (global ARGs) belong
    /// to none.
    pub fn stages(&self) -> Vec<Stage> {
        let froms: Vec<usize> = self
            .instructions
            .iter()
            .enumerate()
            .filter(|(_, i)| i.keyword == Keyword::From)
            .map(|(n, _)| n)
            .collect();
        let mut stages: Vec<Stage> = Vec::with_capacity(froms.len());
        for (index, &from) in froms.iter().enumerate() {
            let Some(inst) = self.instructions.get(from) else {
                continue;
            };
            let words = match &inst.args {
                Args::Words(w) => w.as_slice(),
                _ => &[],
            };
            let base = words.first().map(|w| w.text.clone()).unwrap_or_default();
            let name = match words {
                [_, as_word, name] if as_word.text.eq_ignore_ascii_case("as") => {
                    Some(name.text.to_lowercase())
                }
                _ => None,
            };
            // BuildKit looks the base up among the names of the stages before this one.
            let base_stage = stages
                .iter()
                .find(|s| s.name.as_deref() == Some(base.as_str()))
                .map(|s| s.index);
            let end = froms
                .get(index + 1)
                .copied()
                .unwrap_or(self.instructions.len());
            stages.push(Stage {
                index,
                name,
                base,
                base_stage,
                platform: inst.flag("platform").and_then(|f| f.value.clone()),
                from,
                instructions: from + 1..end,
                span: inst.span,
            });
        }
        stages
    }

    /// The stage that instruction number `instruction` belongs to.
    pub fn stage_of(&self, instruction: usize) -> Option<usize> {
        let stage = self
            .instructions
            .iter()
            .take(instruction.checked_add(1)?)
            .filter(|i| i.keyword == Keyword::From)
            .count();
        (instruction < self.instructions.len() && stage > 0).then(|| stage - 1)
    }

    /// What `reference` (the value of `--from=` or of a mount's `from=`) points at: a number
    /// is a stage index, otherwise a stage name (ignoring case, any stage of the file), and
    /// failing that an image.
    pub fn resolve_stage(&self, reference: &str) -> StageRef {
        let stages = self.stages();
        if let Ok(index) = reference.parse::<i64>() {
            return match usize::try_from(index) {
                Ok(i) if i < stages.len() => StageRef::Stage(i),
                _ => StageRef::InvalidIndex(index),
            };
        }
        let lower = reference.to_lowercase();
        stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .map_or_else(
                || StageRef::Image(reference.to_string()),
                |s| StageRef::Stage(s.index),
            )
    }

    /// Where `COPY --from=…` (or ADD) takes its files from; `None` without `--from`.
    pub fn copy_from(&self, inst: &Instruction) -> Option<StageRef> {
        let value = inst.flag("from")?.value.as_deref()?;
        Some(self.resolve_stage(value))
    }
}
