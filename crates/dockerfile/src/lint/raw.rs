//! A finding as a check makes it: the rule, where, and the message; ignores, severities,
//! hints and fixes come later ([`super::lint_with_fixes`]).

use crate::ast::Instruction;

/// A finding before ignores and severities are applied.
pub(super) struct Raw {
    pub(super) id: &'static str,
    pub(super) line: usize,
    pub(super) end_line: usize,
    pub(super) column: usize,
    pub(super) message: String,
}

impl Raw {
    pub(super) fn at(id: &'static str, inst: &Instruction, message: String) -> Raw {
        Raw {
            id,
            line: inst.line,
            end_line: inst.end_line,
            column: inst.span.start.column,
            message,
        }
    }

    pub(super) fn at_line(id: &'static str, line: usize, message: String) -> Raw {
        Raw {
            id,
            line,
            end_line: line,
            column: 1,
            message,
        }
    }
}
