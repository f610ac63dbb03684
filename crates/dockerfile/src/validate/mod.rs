//! What Docker refuses after parsing: BuildKit turns every parsed instruction into a typed
//! command (`frontend/dockerfile/instructions`) and stops the build at the first one that
//! does not fit — an unknown keyword, a wrong number of arguments, an unknown or repeated
//! flag, `ONBUILD FROM`, a `SHELL` that is not JSON, a `HEALTHCHECK` duration that is not
//! one, a `--mount` that names an unknown type or key.
//!
//! [`validate`] makes the same checks on a [`Dockerfile`] and gives every instruction that
//! fails one, with BuildKit's message and where it is. What BuildKit checks only with the
//! build's variables in hand (a `--mount` or `--network` value holding `$`), or only when the
//! image is used (an `ONBUILD` trigger), is not checked here, as BuildKit does not check it
//! before the build either.
//!
//! The flags are those of current BuildKit releases: `COPY --parents`/`--exclude`,
//! `ADD --unpack`/`--exclude` and `RUN --security`/`--device` are accepted although older
//! engines (BuildKit 0.13, Docker 26) refuse them without a `# syntax=` line that picks a
//! newer frontend.

mod go;
mod mount;
#[cfg(test)]
mod tests;

use crate::ast::{Args, Dockerfile, Flag, Instruction, Keyword, Span};
use go::{go_duration, go_quote, suggest};
use mount::mount;

/// One instruction Docker refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Where the problem is: the flag, argument or keyword at fault.
    pub span: Span,
    /// BuildKit's message.
    pub message: String,
}

impl Invalid {
    /// 1-based line.
    pub fn line(&self) -> usize {
        self.span.start.line
    }

    /// 1-based column, in characters.
    pub fn column(&self) -> usize {
        self.span.start.column
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line(), self.column(), self.message)
    }
}

/// Every instruction of `df` that Docker's build refuses before running anything, each with
/// the first problem BuildKit reports for it, in source order.
pub fn validate(df: &Dockerfile) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut seen_from = false;
    for inst in &df.instructions {
        if let Err(e) = instruction(inst) {
            out.push(e);
            // BuildKit stops at the first; the place of a stage is still known from here on.
            seen_from |= inst.keyword == Keyword::From;
            continue;
        }
        match inst.keyword {
            Keyword::From => seen_from = true,
            Keyword::Arg => {}
            _ if !seen_from => {
                out.push(at(
                    inst.keyword_word.span,
                    "no build stage in current context",
                ));
                seen_from = true;
            }
            _ => {}
        }
    }
    out
}

fn at(span: Span, message: impl Into<String>) -> Invalid {
    Invalid {
        span,
        message: message.into(),
    }
}

type Check = Result<(), Invalid>;

/// The instruction names, as BuildKit suggests them.
const NAMES: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

fn instruction(inst: &Instruction) -> Check {
    let kw = inst.keyword_word.span;
    let name = inst.keyword.as_str().to_ascii_uppercase();
    let n = arg_count(&inst.args);
    let exactly_one = || {
        if n != 1 {
            return Err(at(kw, format!("{name} requires exactly one argument")));
        }
        Ok(())
    };
    let at_least_one = || {
        if n == 0 {
            return Err(at(kw, format!("{name} requires at least one argument")));
        }
        Ok(())
    };
    match &inst.keyword {
        Keyword::Unknown(_) => {
            let written = &inst.keyword_word.text;
            let mut message = format!("unknown instruction: {written}");
            if let Some(s) = suggest(written, &NAMES, false) {
                message.push_str(&format!(" (did you mean {s}?)"));
            }
            Err(at(kw, message))
        }
        Keyword::Env | Keyword::Label => {
            flags(inst, &[])?;
            at_least_one()?;
            blank_names(inst, &name)
        }
        Keyword::Maintainer => {
            exactly_one()?;
            flags(inst, &[])
        }
        Keyword::Add | Keyword::Copy => {
            if n < 2 {
                return Err(at(
                    kw,
                    format!(
                        "{name} requires at least two arguments, but only one was provided. \
                         Destination could not be determined"
                    ),
                ));
            }
            let known: &[(&str, FlagType)] = if inst.keyword == Keyword::Copy {
                &[
                    ("chown", FlagType::String),
                    ("from", FlagType::String),
                    ("chmod", FlagType::String),
                    ("link", FlagType::Bool),
                    ("exclude", FlagType::Strings),
                    ("parents", FlagType::Bool),
                ]
            } else {
                &[
                    ("chown", FlagType::String),
                    ("chmod", FlagType::String),
                    ("link", FlagType::Bool),
                    ("keep-git-dir", FlagType::Bool),
                    ("checksum", FlagType::String),
                    ("unpack", FlagType::Bool),
                    ("exclude", FlagType::Strings),
                ]
            };
            flags(inst, known)?;
            if let Some(dest) = inst.words().last()
                && is_heredoc_marker(&dest.text)
            {
                return Err(at(
                    dest.span,
                    format!("{name} cannot accept a heredoc as a destination"),
                ));
            }
            Ok(())
        }
        Keyword::From => {
            from_args(inst)?;
            flags(inst, &[("platform", FlagType::String)])
        }
        Keyword::Onbuild => {
            at_least_one()?;
            flags(inst, &[])?;
            if let Some(t) = inst.trigger() {
                match t.keyword {
                    Keyword::Onbuild => {
                        return Err(at(
                            t.keyword_word.span,
                            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                        ));
                    }
                    Keyword::Maintainer | Keyword::From => {
                        return Err(at(
                            t.keyword_word.span,
                            format!(
                                "{} isn't allowed as an ONBUILD trigger",
                                t.keyword_word.text.trim().to_uppercase()
                            ),
                        ));
                    }
                    // The trigger itself is parsed when an image is built FROM this one.
                    _ => {}
                }
            }
            Ok(())
        }
        Keyword::Workdir | Keyword::User => {
            exactly_one()?;
            flags(inst, &[])
        }
        Keyword::Run => {
            let used = parse_flags(
                inst,
                &[
                    ("mount", FlagType::Strings),
                    ("network", FlagType::String),
                    ("security", FlagType::String),
                    ("device", FlagType::Strings),
                ],
            )?;
            for f in &used {
                let value = f.value.as_deref().unwrap_or("");
                match f.name.as_str() {
                    "network" if !matches!(value, "default" | "none" | "host") => {
                        return Err(at(
                            f.span,
                            format!("invalid network mode {}", go_quote(value)),
                        ));
                    }
                    "security" if !matches!(value, "sandbox" | "insecure") => {
                        return Err(at(
                            f.span,
                            format!("security {} is not valid", go_quote(value)),
                        ));
                    }
                    "mount" => mount(value).map_err(|m| at(f.span, m))?,
                    _ => {}
                }
            }
            Ok(())
        }
        Keyword::Cmd | Keyword::Entrypoint => flags(inst, &[]),
        Keyword::Healthcheck => healthcheck(inst),
        Keyword::Expose => {
            at_least_one()?;
            flags(inst, &[])
        }
        Keyword::Volume => {
            at_least_one()?;
            flags(inst, &[])?;
            if let Some(w) = inst.words().iter().find(|w| w.text.trim().is_empty()) {
                return Err(at(w.span, "VOLUME specified can not be an empty string"));
            }
            Ok(())
        }
        // BuildKit reads no flags for STOPSIGNAL and ARG.
        Keyword::Stopsignal => exactly_one(),
        Keyword::Arg => {
            at_least_one()?;
            blank_names(inst, "ARG")
        }
        Keyword::Shell => {
            flags(inst, &[])?;
            match &inst.args {
                Args::Json(w) if !w.is_empty() => Ok(()),
                Args::Json(_) | Args::Empty => Err(at(kw, "SHELL requires at least one argument")),
                _ => Err(at(kw, "SHELL requires the arguments to be in JSON form")),
            }
        }
    }
}

/// How many arguments BuildKit's node holds for these args.
fn arg_count(args: &Args) -> usize {
    match args {
        Args::Empty => 0,
        Args::Json(w) | Args::Words(w) => w.len(),
        Args::Shell(_) | Args::Text(_) | Args::Unknown(_) | Args::Onbuild(_) => 1,
        Args::Pairs(p) => p.len(),
        Args::Healthcheck { command, .. } => 1 + arg_count(command),
    }
}

fn blank_names(inst: &Instruction, name: &str) -> Check {
    match inst.pairs().iter().find(|p| p.key.text.is_empty()) {
        Some(p) => Err(at(p.span, format!("{name} names can not be blank"))),
        None => Ok(()),
    }
}

fn from_args(inst: &Instruction) -> Check {
    let words = inst.words();
    match words {
        [_] => Ok(()),
        [_, as_word, name] if as_word.text.eq_ignore_ascii_case("as") => {
            let lower = name.text.to_lowercase();
            let mut chars = lower.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.')
                });
            if valid {
                return Ok(());
            }
            Err(at(
                name.span,
                format!(
                    "invalid name for build stage: {}, name can't start with a number or \
                     contain symbols",
                    go_quote(&name.text)
                ),
            ))
        }
        _ => Err(at(
            inst.keyword_word.span,
            "FROM requires either one or three arguments",
        )),
    }
}

/// BuildKit's `MustParseHeredoc`: `[n]<<[-]NAME`.
fn is_heredoc_marker(word: &str) -> bool {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.trim_start();
    !rest.is_empty() && !rest.contains('<')
}

#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    String,
    Strings,
}

/// [`parse_flags`], for instructions whose flag values mean nothing more.
fn flags(inst: &Instruction, known: &[(&str, FlagType)]) -> Check {
    parse_flags(inst, known).map(drop)
}

/// BuildKit's `BFlags.Parse` with the flags `known`: the flags used, or the first error.
fn parse_flags<'a>(
    inst: &'a Instruction,
    known: &[(&str, FlagType)],
) -> Result<Vec<&'a Flag>, Invalid> {
    let mut used: Vec<&Flag> = Vec::new();
    for f in &inst.flags {
        let flag_name = format!("--{}", f.name);
        let Some(&(_, kind)) = known.iter().find(|(n, _)| *n == f.name) else {
            let mut message = format!("unknown flag: {flag_name}");
            let names: Vec<&str> = known.iter().map(|k| k.0).collect();
            if let Some(s) = suggest(&f.name, &names, true) {
                message.push_str(&format!(" (did you mean {s}?)"));
            }
            return Err(at(f.span, message));
        };
        if kind != FlagType::Strings && used.iter().any(|u| u.name == f.name) {
            return Err(at(f.span, format!("duplicate flag specified: {flag_name}")));
        }
        used.push(f);
        match (kind, f.value.as_deref()) {
            (FlagType::Bool, Some("")) | (FlagType::String | FlagType::Strings, None) => {
                return Err(at(f.span, format!("missing a value on flag: {flag_name}")));
            }
            (FlagType::Bool, Some(v)) if !matches!(v.to_lowercase().as_str(), "true" | "false") => {
                return Err(at(
                    f.span,
                    format!("expecting boolean value for flag {flag_name}, not: {v}"),
                ));
            }
            _ => {}
        }
    }
    Ok(used)
}

fn healthcheck(inst: &Instruction) -> Check {
    let kw = inst.keyword_word.span;
    let Args::Healthcheck { kind, command } = &inst.args else {
        return Err(at(kw, "HEALTHCHECK requires at least one argument"));
    };
    let typ = kind.text.to_uppercase();
    if typ == "NONE" {
        // BuildKit reads no flags for NONE.
        if arg_count(command) != 0 {
            return Err(at(kind.span, "HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(());
    }
    let used = parse_flags(
        inst,
        &[
            ("interval", FlagType::String),
            ("timeout", FlagType::String),
            ("start-period", FlagType::String),
            ("start-interval", FlagType::String),
            ("retries", FlagType::String),
        ],
    )?;
    if typ != "CMD" {
        return Err(at(
            kind.span,
            format!("Unknown type {} in HEALTHCHECK (try CMD)", go_quote(&typ)),
        ));
    }
    if arg_count(command) == 0 {
        return Err(at(kind.span, "Missing command after HEALTHCHECK CMD"));
    }
    for name in ["interval", "timeout", "start-period", "start-interval"] {
        let Some(f) = used.iter().rev().find(|f| f.name == name) else {
            continue;
        };
        let value = f.value.as_deref().unwrap_or("");
        if value.is_empty() {
            continue;
        }
        let d = go_duration(value).map_err(|m| at(f.span, m))?;
        if d != 0 && d < 1_000_000 {
            return Err(at(
                f.span,
                format!("Interval {} cannot be less than 1ms", go_quote(name)),
            ));
        }
    }
    if let Some(f) = used.iter().find(|f| f.name == "retries")
        && let Some(v) = f.value.as_deref().filter(|v| !v.is_empty())
    {
        let n = v.parse::<i32>().map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            at(
                f.span,
                format!("strconv.ParseInt: parsing {}: {why}", go_quote(v)),
            )
        })?;
        if n < 0 {
            return Err(at(f.span, format!("--retries cannot be negative ({n})")));
        }
    }
    Ok(())
}
