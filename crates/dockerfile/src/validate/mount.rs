//! `RUN --mount=…`: the types, keys and values BuildKit's `instructions` package accepts,
//! with its messages.

use super::go::{go_quote, suggest};

/// BuildKit's `parseMount` for one `--mount` value. A value holding `$`, quotes or escapes
/// is checked by BuildKit only once its variables are expanded, and so only for what
/// `from=` says here (which never expands).
pub(super) fn mount(value: &str) -> Result<(), String> {
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
