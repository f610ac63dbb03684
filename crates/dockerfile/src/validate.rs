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

use crate::ast::{Args, Dockerfile, Flag, Instruction, Keyword, Span};

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

/// Go's `time.ParseDuration`, in nanoseconds.
fn go_duration(orig: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let int_len = s.bytes().take_while(u8::is_ascii_digit).count();
        let (int, rest) = s.split_at(int_len);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(r) => {
                let n = r.bytes().take_while(u8::is_ascii_digit).count();
                r.split_at(n)
            }
            None => ("", rest),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (unit, rest) = rest.split_at(unit_len);
        let scale: f64 = match unit {
            "" => return Err(format!("time: missing unit in duration {}", go_quote(orig))),
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(orig)
                ));
            }
        };
        let number: f64 = format!("{}.{}", if int.is_empty() { "0" } else { int }, frac)
            .trim_end_matches('.')
            .parse()
            .map_err(|_| invalid())?;
        total += number * scale;
        if total > i64::MAX as f64 {
            return Err(invalid());
        }
        s = rest;
    }
    let ns = total as i128;
    Ok(if neg { -ns } else { ns })
}

/// BuildKit's `parseMount` for one `--mount` value. A value holding `$`, quotes or escapes
/// is checked by BuildKit only once its variables are expanded, and so only for what
/// `from=` says here (which never expands).
fn mount(value: &str) -> Result<(), String> {
    let plain = !value.contains(['$', '"', '\'', '\\']);
    if !plain {
        if !value.contains('"') {
            for field in value.split(',') {
                if let Some((k, v)) = field.split_once('=')
                    && k.eq_ignore_ascii_case("from")
                    && v.find('$').is_some_and(|i| i + 1 != v.len())
                {
                    return Err(
                        "'from' doesn't support variable expansion, define alias stage instead"
                            .into(),
                    );
                }
            }
        }
        return Ok(());
    }
    let mut typ = "bind".to_string();
    let (mut from, mut source, mut target, mut id, mut sharing) =
        (false, false, false, false, false);
    let (mut mode, mut uid, mut gid) = (false, false, false);
    let parse_bool = |key: &str, v: &str| -> Result<(), String> {
        if matches!(
            v,
            "1" | "t"
                | "T"
                | "TRUE"
                | "true"
                | "True"
                | "0"
                | "f"
                | "F"
                | "FALSE"
                | "false"
                | "False"
        ) {
            Ok(())
        } else {
            Err(format!("invalid value for {key}: {v}"))
        }
    };
    for field in value.split(',') {
        let (key, v) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), v),
            None => {
                let key = field.to_lowercase();
                match key.as_str() {
                    "readonly" | "ro" | "readwrite" | "rw" => continue,
                    "required" if matches!(typ.as_str(), "secret" | "ssh") => continue,
                    "required" => {
                        return Err(format!("unexpected key '{key}' for mount type '{typ}'"));
                    }
                    _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
                }
            }
        };
        match key.as_str() {
            "type" => {
                let t = v.to_lowercase();
                if !matches!(t.as_str(), "bind" | "cache" | "tmpfs" | "secret" | "ssh") {
                    let mut m = format!("unsupported mount type {}", go_quote(v));
                    if let Some(s) = suggest(v, &["bind", "cache", "tmpfs", "secret", "ssh"], true)
                    {
                        m.push_str(&format!(" (did you mean {s}?)"));
                    }
                    return Err(m);
                }
                typ = t;
            }
            "from" => from = !v.is_empty(),
            "source" | "src" => source = !v.is_empty(),
            "target" | "dst" | "destination" => target = !v.is_empty(),
            "readonly" | "ro" | "readwrite" | "rw" => parse_bool(&key, v)?,
            "required" if matches!(typ.as_str(), "secret" | "ssh") => parse_bool(&key, v)?,
            "size" if typ == "tmpfs" => {
                if !ram_in_bytes(v) {
                    return Err(format!("invalid value for {key}: {v}"));
                }
            }
            "required" | "size" => {
                return Err(format!("unexpected key '{key}' for mount type '{typ}'"));
            }
            "id" => id = !v.is_empty(),
            "sharing" => {
                let s = v.to_lowercase();
                if !matches!(s.as_str(), "shared" | "private" | "locked") {
                    let mut m = format!("unsupported sharing value {}", go_quote(v));
                    if let Some(s) = suggest(v, &["shared", "private", "locked"], true) {
                        m.push_str(&format!(" (did you mean {s}?)"));
                    }
                    return Err(m);
                }
                sharing = true;
            }
            "mode" => {
                if u32::from_str_radix(v, 8).is_err() || v.starts_with('+') {
                    return Err(format!("invalid value {v} for mode"));
                }
                mode = true;
            }
            "uid" | "gid" => {
                if v.parse::<u32>().is_err() || v.starts_with('+') {
                    return Err(format!("invalid value {v} for {key}"));
                }
                if key == "uid" {
                    uid = true;
                } else {
                    gid = true;
                }
            }
            "env" => {}
            _ => {
                const KEYS: [&str; 19] = [
                    "type",
                    "from",
                    "source",
                    "target",
                    "readonly",
                    "id",
                    "sharing",
                    "required",
                    "size",
                    "mode",
                    "uid",
                    "gid",
                    "src",
                    "dst",
                    "destination",
                    "ro",
                    "rw",
                    "readwrite",
                    "env",
                ];
                let mut m = format!("unexpected key '{key}' in '{field}'");
                if let Some(s) = suggest(&key, &KEYS, true) {
                    m.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(m);
            }
        }
    }
    if !matches!(typ.as_str(), "secret" | "ssh" | "cache") {
        for (set, what) in [(mode, "mode"), (uid, "uid"), (gid, "gid")] {
            if set {
                return Err(format!(
                    "{what} not allowed for {} type mounts",
                    go_quote(&typ)
                ));
            }
        }
    }
    if typ == "secret" {
        if from {
            return Err("secret mount should not have a from".into());
        }
        if sharing {
            return Err("secret mount should not define sharing".into());
        }
        if !source && !target && !id {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if source && id {
            return Err("both source and id can't be set".into());
        }
    }
    if sharing && typ != "cache" {
        return Err(format!("invalid cache sharing set for {typ} mount"));
    }
    Ok(())
}

/// docker/go-units `RAMInBytes`: a number, an optional space, then k, m, g, t or p with an
/// optional `i` and `b` (any case), or just `b`.
fn ram_in_bytes(v: &str) -> bool {
    let num_len = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(num_len);
    let number_ok = !num.is_empty()
        && num
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.as_str();
    let unit_ok = unit.is_empty()
        || unit == "b"
        || unit
            .strip_prefix(['k', 'm', 'g', 't', 'p'])
            .is_some_and(|r| matches!(r, "" | "i" | "b" | "ib"));
    number_ok && unit_ok
}

/// Go's `%q`: quotes, backslashes and control characters escaped; a byte that is not UTF-8
/// (see [`crate::decode_bytes`]) as `\xNN`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        let n = u32::from(c);
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ if (0x10_FF80..=0x10_FFFF).contains(&n) => {
                out.push_str(&format!("\\x{:02x}", n - 0x10_FF00));
            }
            _ if c.is_control() && n < 0x80 => out.push_str(&format!("\\x{n:02x}")),
            _ if c.is_control() => out.push_str(&format!("\\u{n:04x}")),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// BuildKit's `suggest.Search`: the option within edit distance 2 of `value` (the closest,
/// the first of equals), in `value`'s case when matching ignores case; none when `value` is
/// one of them.
fn suggest(value: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let val = fold(value);
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let o = fold(opt);
        if o == val {
            return None;
        }
        let d = levenshtein(&val, &o);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                o
            } else if value == value.to_lowercase() {
                o.to_lowercase()
            } else if value == value.to_uppercase() {
                o.to_uppercase()
            } else {
                o
            });
        }
    }
    best
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(src: &str) -> Vec<String> {
        validate(&crate::parse(src).expect("parses"))
            .into_iter()
            .map(|i| i.to_string())
            .collect()
    }

    #[test]
    fn buildkit_refusals_have_its_messages_and_places() {
        let cases: &[(&str, &str)] = &[
            (
                "FROM a\nRUNN x\n",
                "2:1: unknown instruction: RUNN (did you mean RUN?)",
            ),
            (
                "FROM a\nrunn x\n",
                "2:1: unknown instruction: runn (did you mean run?)",
            ),
            (
                "FROM a\nFROBNICATE x\n",
                "2:1: unknown instruction: FROBNICATE",
            ),
            (
                "FROM a\nCOPY onlyone\n",
                "2:1: COPY requires at least two arguments, but only one was provided. \
                 Destination could not be determined",
            ),
            (
                "FROM a\nADD [\"onlyone\"]\n",
                "2:1: ADD requires at least two arguments, but only one was provided. \
                 Destination could not be determined",
            ),
            (
                "FROM a b\n",
                "1:1: FROM requires either one or three arguments",
            ),
            (
                "FROM a XX b\n",
                "1:1: FROM requires either one or three arguments",
            ),
            ("FROM\n", "1:1: FROM requires either one or three arguments"),
            (
                "FROM a AS 1x\n",
                "1:11: invalid name for build stage: \"1x\", name can't start with a number or \
                 contain symbols",
            ),
            ("FROM a\nRUN --foo true\n", "2:5: unknown flag: --foo"),
            (
                "FROM a\nRUN --mout=type=cache true\n",
                "2:5: unknown flag: --mout (did you mean mount?)",
            ),
            ("FROM a\nCOPY --bogus . /x\n", "2:6: unknown flag: --bogus"),
            ("FROM --foo=1 a\n", "1:6: unknown flag: --foo"),
            (
                "FROM a\nONBUILD FROM x\n",
                "2:9: FROM isn't allowed as an ONBUILD trigger",
            ),
            (
                "FROM a\nonbuild maintainer x\n",
                "2:9: MAINTAINER isn't allowed as an ONBUILD trigger",
            ),
            (
                "FROM a\nONBUILD ONBUILD RUN x\n",
                "2:9: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
            ),
            (
                "FROM a\nONBUILD\n",
                "2:1: ONBUILD requires at least one argument",
            ),
            (
                "FROM a\nSHELL echo\n",
                "2:1: SHELL requires the arguments to be in JSON form",
            ),
            (
                "FROM a\nSHELL []\n",
                "2:1: SHELL requires at least one argument",
            ),
            ("FROM a\nUSER\n", "2:1: USER requires exactly one argument"),
            (
                "FROM a\nWORKDIR\n",
                "2:1: WORKDIR requires exactly one argument",
            ),
            (
                "FROM a\nSTOPSIGNAL\n",
                "2:1: STOPSIGNAL requires exactly one argument",
            ),
            (
                "FROM a\nMAINTAINER\n",
                "2:1: MAINTAINER requires exactly one argument",
            ),
            (
                "FROM a\nEXPOSE\n",
                "2:1: EXPOSE requires at least one argument",
            ),
            ("FROM a\nENV\n", "2:1: ENV requires at least one argument"),
            (
                "FROM a\nLABEL\n",
                "2:1: LABEL requires at least one argument",
            ),
            ("FROM a\nARG\n", "2:1: ARG requires at least one argument"),
            ("FROM a\nARG =x\n", "2:5: ARG names can not be blank"),
            ("FROM a\nENV =x\n", "2:5: ENV names can not be blank"),
            (
                "FROM a\nVOLUME\n",
                "2:1: VOLUME requires at least one argument",
            ),
            (
                "FROM a\nVOLUME [\"\"]\n",
                "2:9: VOLUME specified can not be an empty string",
            ),
            (
                "FROM a\nHEALTHCHECK\n",
                "2:1: HEALTHCHECK requires at least one argument",
            ),
            (
                "FROM a\nHEALTHCHECK NONE x\n",
                "2:13: HEALTHCHECK NONE takes no arguments",
            ),
            (
                "FROM a\nHEALTHCHECK FOO x\n",
                "2:13: Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
            ),
            (
                "FROM a\nHEALTHCHECK CMD\n",
                "2:13: Missing command after HEALTHCHECK CMD",
            ),
            (
                "FROM a\nHEALTHCHECK CMD []\n",
                "2:13: Missing command after HEALTHCHECK CMD",
            ),
            (
                "FROM a\nHEALTHCHECK --interval=xx CMD true\n",
                "2:13: time: invalid duration \"xx\"",
            ),
            (
                "FROM a\nHEALTHCHECK --timeout=1 CMD true\n",
                "2:13: time: missing unit in duration \"1\"",
            ),
            (
                "FROM a\nHEALTHCHECK --interval=1ns CMD true\n",
                "2:13: Interval \"interval\" cannot be less than 1ms",
            ),
            (
                "FROM a\nHEALTHCHECK --retries=-1 CMD true\n",
                "2:13: --retries cannot be negative (-1)",
            ),
            (
                "FROM a\nHEALTHCHECK --retries=abc CMD true\n",
                "2:13: strconv.ParseInt: parsing \"abc\": invalid syntax",
            ),
            (
                "FROM a\nCOPY --chown=1 --chown=2 . /x\n",
                "2:16: duplicate flag specified: --chown",
            ),
            (
                "FROM a\nCOPY --link=maybe . /x\n",
                "2:6: expecting boolean value for flag --link, not: maybe",
            ),
            (
                "FROM a\nCOPY --link= . /x\n",
                "2:6: missing a value on flag: --link",
            ),
            (
                "FROM a\nCOPY --chown . /x\n",
                "2:6: missing a value on flag: --chown",
            ),
            (
                "FROM a\nRUN --network true\n",
                "2:5: missing a value on flag: --network",
            ),
            (
                "FROM a\nRUN --network=bogus true\n",
                "2:5: invalid network mode \"bogus\"",
            ),
            (
                "FROM a\nARG N=none\nRUN --network=$N true\n",
                "3:5: invalid network mode \"$N\"",
            ),
            (
                "FROM a\nCOPY a <<EOF\nx\nEOF\n",
                "2:8: COPY cannot accept a heredoc as a destination",
            ),
            (
                "RUN true\nFROM a\n",
                "1:1: no build stage in current context",
            ),
            (
                "FROM a\nRUN --mount=type=bogus true\n",
                "2:5: unsupported mount type \"bogus\"",
            ),
            (
                "FROM a\nRUN --mount=type=cache,target=/c,foo=bar true\n",
                "2:5: unexpected key 'foo' in 'foo=bar' (did you mean from?)",
            ),
            (
                "FROM a\nRUN --mount=type=cache,target=/c,bogus true\n",
                "2:5: invalid field 'bogus' must be a key=value pair",
            ),
            (
                "FROM a\nRUN --mount=type=cache,target=/c,ro=maybe true\n",
                "2:5: invalid value for ro: maybe",
            ),
            (
                "FROM a\nRUN --mount=type=bind,target=/c,mode=0700 true\n",
                "2:5: mode not allowed for \"bind\" type mounts",
            ),
            (
                "FROM a\nRUN --mount=type=secret true\n",
                "2:5: invalid secret mount. one of source, target required",
            ),
            (
                "FROM a\nRUN --mount=type=cache,target=/c,sharing=bogus true\n",
                "2:5: unsupported sharing value \"bogus\"",
            ),
            (
                "FROM a\nRUN --mount=from=$X,target=/c true\n",
                "2:5: 'from' doesn't support variable expansion, define alias stage instead",
            ),
        ];
        for (src, want) in cases {
            assert_eq!(messages(src), [want.to_string()], "{src:?}");
        }
    }

    #[test]
    fn what_buildkit_accepts_passes() {
        for src in [
            "FROM a\n",
            "FROM scratch\n",
            "ARG V=1\nFROM a:$V AS Build.x-1_y\n",
            "FROM --platform=linux/amd64 a as b\n",
            "FROM a\nRUN\nCMD\nENTRYPOINT\n",
            "FROM a\nRUN -- --foo\n",
            "FROM a\nCOPY -- . /x\n",
            "FROM a\nCOPY --link --chmod=755 --chown=1:1 --from=b --exclude=a --exclude=b . /x\n",
            "FROM a\nCOPY --link=TRUE --parents . /x\n",
            "FROM a\nADD --keep-git-dir=false --checksum=sha256:00 --unpack=true --link a /x\n",
            "FROM a\nCOPY <<EOF /x\nhi\nEOF\n",
            "FROM a\nRUN --mount=type=cache,target=/a --mount=type=cache,target=/b,sharing=locked \
             --network=none --security=sandbox true\n",
            "FROM a\nRUN --mount=type=secret,id=tok,required --mount=type=tmpfs,target=/t,size=64m true\n",
            "FROM a\nRUN --mount=type=cache,target=/c,mode=0700,uid=1,gid=2,ro=false true\n",
            "FROM a\nARG T=cache\nRUN --mount=type=$T,target=/c true\n",
            "FROM a\nUSER a b\nWORKDIR a b\nSTOPSIGNAL --foo SIGTERM\nARG --foo x\n",
            "FROM a\nHEALTHCHECK --interval=1m30s --timeout=3s --start-period=1.5s --retries=3 CMD true\n",
            "FROM a\nHEALTHCHECK --interval=0 cmd true\nHEALTHCHECK --foo=1 NONE\n",
            "FROM a\nONBUILD RUNN x\nONBUILD RUN --foo x\nONBUILD COPY onlyone\n",
            "FROM a\nSHELL [\"/bin/sh\", \"-c\"]\nEXPOSE 80\nVOLUME /v\nENV a=b\nLABEL a=b\n",
            "FROM a\nMAINTAINER someone <a@b>\n",
        ] {
            assert_eq!(messages(src), Vec::<String>::new(), "{src:?}");
        }
    }

    #[test]
    fn every_refused_instruction_is_reported_once() {
        let got = messages("CMD x\nFROM a b\nRUNN x\nRUN --foo --bar x\nFROM a\n");
        assert_eq!(
            got,
            [
                "1:1: no build stage in current context",
                "2:1: FROM requires either one or three arguments",
                "3:1: unknown instruction: RUNN (did you mean RUN?)",
                "4:5: unknown flag: --foo",
            ]
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(go_duration(".5ms"), Ok(500_000));
        assert_eq!(go_duration("-2h"), Ok(-7_200_000_000_000));
        assert_eq!(go_duration("0"), Ok(0));
        assert!(go_duration("").is_err());
        assert!(go_duration("s").is_err());
        assert_eq!(
            go_duration("3x"),
            Err("time: unknown unit \"x\" in duration \"3x\"".to_string())
        );
    }

    #[test]
    fn quoted_as_go_quotes() {
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        let raw = crate::decode_bytes(b"caf\xe9");
        assert_eq!(go_quote(&raw), r#""caf\xe9""#);
        assert_eq!(go_quote("café"), "\"café\"");
        assert_eq!(go_quote("\u{1}\u{85}"), r#""\x01\u0085""#);
    }

    #[test]
    fn suggestions_within_two_edits() {
        assert_eq!(suggest("RUNN", &NAMES, false).as_deref(), Some("RUN"));
        assert_eq!(suggest("cpy", &NAMES, false).as_deref(), Some("copy"));
        assert_eq!(
            suggest("Workdri", &NAMES, false).as_deref(),
            Some("workdir")
        );
        assert_eq!(suggest("FROBNICATE", &NAMES, false), None);
        assert_eq!(suggest("RUN", &NAMES, false), None);
    }
}
