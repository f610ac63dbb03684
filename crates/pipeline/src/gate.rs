//! The inspect stage's gate: thresholds on an image's analysis — dive's `.dive-ci` rules
//! (`lowestEfficiency`, `highestWastedBytes`, `highestUserWastedPercent`) and headroom's
//! `[inspect]` table (the same three, `max_image_size`, `max_layers`) — their evaluation,
//! the layers linked back to Dockerfile lines, and fix hints. How a person or the step
//! summary sees the result is [`crate::render`]'s.

use std::path::Path;

use headroom_disk::{format_size, parse_size};
use headroom_inspect::Analysis;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, read_config};

/// Thresholds of the gate; `None` disables a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub lowest_efficiency: Option<f64>,
    pub highest_wasted_bytes: Option<String>,
    pub highest_user_wasted_percent: Option<f64>,
    pub max_image_size: Option<String>,
    pub max_layers: Option<usize>,
    /// What reading `.dive-ci` left aside (rules dive's CI does not evaluate, such as plugin
    /// rules), each `FILE:LINE: …`, for the caller to show.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// The rules dive's CI mode evaluates, as `.dive-ci` names them.
const DIVE_RULES: [&str; 3] = [
    "lowestEfficiency",
    "highestWastedBytes",
    "highestUserWastedPercent",
];

impl Thresholds {
    /// dive's defaults.
    pub fn dive_defaults() -> Self {
        Thresholds {
            lowest_efficiency: Some(0.9),
            highest_wasted_bytes: None,
            highest_user_wasted_percent: Some(0.1),
            ..Thresholds::default()
        }
    }

    /// Apply the `rules:` of a `.dive-ci` file as dive reads it: YAML `key: value` lines
    /// under `rules:` (or one flow mapping, `rules: {key: value, …}`), other top-level keys
    /// (`plugins:`, …) ignored. A rule dive does not evaluate — a plugin's (`plugin1/rule1`)
    /// or any other name — is ignored, as dive ignores it, with a note in
    /// [`Thresholds::notes`]; a value dive would refuse is an error naming the line.
    pub fn with_dive_ci(mut self, text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut in_rules = false;
        for (n, raw) in text.lines().enumerate() {
            let at = format!("{origin}:{}", n + 1);
            let line = strip_yaml_comment(raw).trim_end();
            if line.trim().is_empty() || line.trim() == "---" || line.trim() == "..." {
                continue;
            }
            if !line.starts_with(' ') && !line.starts_with('\t') {
                let top = line.trim();
                in_rules = false;
                if let Some(rest) = top.strip_prefix("rules:") {
                    let rest = rest.trim();
                    if rest.is_empty() {
                        in_rules = true;
                    } else if let Some(inner) =
                        rest.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
                    {
                        for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
                            self.dive_rule(pair, &at)?;
                        }
                    } else {
                        return Err(ConfigError::new(
                            &at,
                            format!("rules: expected a mapping of rules, found {rest:?}"),
                        ));
                    }
                }
                continue;
            }
            if in_rules {
                self.dive_rule(line.trim(), &at)?;
            }
        }
        Ok(self)
    }

    /// One `key: value` of `.dive-ci`'s rules.
    fn dive_rule(&mut self, pair: &str, at: &str) -> Result<(), ConfigError> {
        let (key, value) = pair.split_once(':').ok_or_else(|| {
            ConfigError::new(at, format!("expected `key: value`, found {pair:?}"))
        })?;
        let key = key.trim().trim_matches(['"', '\'']);
        let value = value.trim().trim_matches(['"', '\'']);
        let disabled = matches!(
            value.to_ascii_lowercase().as_str(),
            "" | "disabled" | "off" | "false"
        );
        let number = |v: &str| -> Result<f64, ConfigError> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| ConfigError::new(at, format!("{key}: {v:?} is not a number")))
        };
        match key {
            "lowestEfficiency" => {
                self.lowest_efficiency = if disabled { None } else { Some(number(value)?) }
            }
            "highestWastedBytes" => {
                self.highest_wasted_bytes = if disabled {
                    None
                } else {
                    parse_size(value).map_err(|e| ConfigError::new(at, format!("{key}: {e}")))?;
                    Some(value.to_string())
                }
            }
            "highestUserWastedPercent" => {
                self.highest_user_wasted_percent =
                    if disabled { None } else { Some(number(value)?) }
            }
            other if other.contains('/') => self.notes.push(format!(
                "{at}: {other}: a plugin rule; dive's CI does not evaluate plugin rules, and \
                 neither does headroom: ignored"
            )),
            other => {
                let near = DIVE_RULES
                    .iter()
                    .find(|r| r.eq_ignore_ascii_case(other) || edit_distance(r, other) <= 2);
                self.notes.push(match near {
                    Some(r) => format!(
                        "{at}: {other}: not a rule dive evaluates (did you mean {r}?); ignored, \
                         as dive ignores it"
                    ),
                    None => format!(
                        "{at}: {other}: not a rule dive evaluates ({}); ignored, as dive \
                         ignores it",
                        DIVE_RULES.join(", ")
                    ),
                });
            }
        }
        Ok(())
    }

    /// Every threshold readable: sizes parse. What [`Thresholds::evaluate`] would refuse is
    /// refused here, before an image is read.
    pub fn checked(self) -> Result<Self, ConfigError> {
        for (name, value) in [
            ("highestWastedBytes", &self.highest_wasted_bytes),
            ("max_image_size", &self.max_image_size),
        ] {
            if let Some(v) = value {
                parse_size(v).map_err(|e| ConfigError::new(name, format!("{v:?}: {e}")))?;
            }
        }
        for (name, value) in [
            ("lowestEfficiency", self.lowest_efficiency),
            ("highestUserWastedPercent", self.highest_user_wasted_percent),
        ] {
            if value.is_some_and(|v| !v.is_finite()) {
                return Err(ConfigError::new(name, "not a finite number"));
            }
        }
        Ok(self)
    }

    /// Our `[inspect]` table overrides what it sets.
    pub fn with(mut self, ours: &Thresholds) -> Self {
        if ours.lowest_efficiency.is_some() {
            self.lowest_efficiency = ours.lowest_efficiency;
        }
        if ours.highest_wasted_bytes.is_some() {
            self.highest_wasted_bytes = ours.highest_wasted_bytes.clone();
        }
        if ours.highest_user_wasted_percent.is_some() {
            self.highest_user_wasted_percent = ours.highest_user_wasted_percent;
        }
        if ours.max_image_size.is_some() {
            self.max_image_size = ours.max_image_size.clone();
        }
        if ours.max_layers.is_some() {
            self.max_layers = ours.max_layers;
        }
        self
    }

    /// Check an analysis against the thresholds.
    pub fn evaluate(&self, a: &Analysis) -> Result<Vec<GateResult>, ConfigError> {
        let mut out = Vec::new();
        let mut rule = |name: &str, limit: String, actual: String, passed: bool| {
            out.push(GateResult {
                rule: name.to_string(),
                limit,
                actual,
                passed,
            })
        };
        if let Some(min) = self.lowest_efficiency {
            rule(
                "lowestEfficiency",
                format!("{min}"),
                format!("{:.4}", a.efficiency),
                a.efficiency >= min,
            );
        }
        if let Some(max) = &self.highest_wasted_bytes {
            let limit = parse_size(max)
                .map_err(|e| ConfigError::new("highestWastedBytes", format!("{max:?}: {e}")))?;
            rule(
                "highestWastedBytes",
                format_size(limit),
                format_size(a.wasted_bytes),
                a.wasted_bytes <= limit,
            );
        }
        if let Some(max) = self.highest_user_wasted_percent {
            let pct = user_wasted_fraction(a);
            rule(
                "highestUserWastedPercent",
                format!("{max}"),
                fraction(pct),
                // As dive compares: `max < pct` fails; NaN (nothing wasted, nothing added)
                // passes, +Inf (wasted bytes, nothing added) fails.
                pct.is_nan() || pct <= max,
            );
        }
        if let Some(max) = &self.max_image_size {
            let limit = parse_size(max)
                .map_err(|e| ConfigError::new("max_image_size", format!("{max:?}: {e}")))?;
            rule(
                "max_image_size",
                format_size(limit),
                format_size(a.total_bytes),
                a.total_bytes <= limit,
            );
        }
        if let Some(max) = self.max_layers {
            let n = a.layers.iter().filter(|l| !l.empty).count();
            rule("max_layers", max.to_string(), n.to_string(), n <= max);
        }
        Ok(out)
    }
}

/// Our wasted bytes over the bytes of every layer but the first (dive's user waste ratio),
/// divided as dive divides: wasted bytes over no user bytes is +Inf (so an image whose only
/// upper layer deletes a file fails the gate, as in dive), nothing over nothing is NaN
/// (which passes, as in dive). [`fraction`] shows it.
pub fn user_wasted_fraction(a: &Analysis) -> f64 {
    let user: u64 = a.layers.iter().skip(1).map(|l| l.size_bytes).sum();
    a.wasted_bytes as f64 / user as f64
}

/// A fraction as the gate and reports show it: 4 decimals, or `+Inf` / `NaN`.
pub fn fraction(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{x:.4}")
    }
}

/// A string's edit distance to another (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// A YAML line without its comment: `#` at the start or after a blank, outside quotes.
fn strip_yaml_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev_blank = true;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if prev_blank => return &line[..i],
            _ => {}
        }
        prev_blank = c == ' ' || c == '\t';
    }
    line
}

#[derive(Debug, Clone, Serialize)]
pub struct GateResult {
    pub rule: String,
    pub limit: String,
    pub actual: String,
    pub passed: bool,
}

#[derive(Deserialize, Default)]
struct ImageToml {
    #[serde(default)]
    inspect: Option<Thresholds>,
    #[serde(flatten)]
    _rest: toml::Table,
}

/// The thresholds in force: dive's defaults, then `.dive-ci`, then `[inspect]` of the config.
pub fn thresholds(dive_ci: &Path, config: &Path) -> Result<Thresholds, ConfigError> {
    let mut t = Thresholds::dive_defaults();
    if dive_ci.is_file() {
        let text = read_config(dive_ci)?;
        t = t.with_dive_ci(&text, &dive_ci.display().to_string())?;
    }
    if config.is_file() {
        let text = read_config(config)?;
        let origin = config.display().to_string();
        let parsed: ImageToml =
            toml::from_str(&text).map_err(|e| ConfigError::toml(&origin, &text, &e))?;
        if let Some(ours) = &parsed.inspect {
            t = t.with(ours);
        }
    }
    t.checked()
}

/// Dockerfile instructions with their first line, continuation lines joined.
pub fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if current.is_none() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if current.is_some() && trimmed.starts_with('#') {
            continue;
        }
        let (start, mut acc) = current.take().unwrap_or((n + 1, String::new()));
        let (body, continued) = match trimmed.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (trimmed, false),
        };
        if !acc.is_empty() {
            acc.push(' ');
        }
        acc.push_str(body.trim());
        if continued {
            current = Some((start, acc));
        } else {
            out.push((start, acc));
        }
    }
    if let Some(c) = current {
        out.push(c);
    }
    out
}

/// The Dockerfile line of the instruction a layer's `created_by` came from, when it can be
/// told: the longest instruction whose text (keyword removed, whitespace squeezed) appears
/// in `created_by`.
pub fn line_of(created_by: &str, instructions: &[(usize, String)]) -> Option<usize> {
    let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let hay = squeeze(created_by);
    instructions
        .iter()
        .filter_map(|(line, text)| {
            let (keyword, rest) = text.split_once(' ')?;
            let rest = squeeze(rest);
            let keyword = keyword.to_ascii_uppercase();
            let matches = match keyword.as_str() {
                "RUN" => {
                    // BuildKit records RUN flags separately: match the command itself.
                    let cmd = rest
                        .split(' ')
                        .skip_while(|w| w.starts_with("--"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    !cmd.is_empty() && hay.contains(&cmd)
                }
                "COPY" | "ADD" => {
                    hay.contains(&format!("{keyword} ")) && {
                        let dest = rest.split(' ').next_back().unwrap_or("");
                        hay.contains(dest)
                    }
                }
                "WORKDIR" => hay.contains("WORKDIR") && hay.contains(&rest),
                _ => false,
            };
            matches.then_some((*line, rest.len()))
        })
        .max_by_key(|(_, len)| *len)
        .map(|(line, _)| line)
}

/// The inspection result as the report and JSON carry it.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    #[serde(flatten)]
    pub analysis: Analysis,
    pub user_wasted_percent: f64,
    pub layer_lines: Vec<Option<usize>>,
    pub hints: Vec<String>,
    pub gate: Vec<GateResult>,
    pub seconds: f64,
    /// The analysing process's peak resident memory, when the caller measured it (the
    /// xtask's `inspect` does: `VmHWM` of `/proc/self/status`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
}

/// Link layers to Dockerfile lines and write the fix hints.
pub fn finish(
    analysis: Analysis,
    dockerfile: Option<&str>,
    gate: Vec<GateResult>,
    seconds: f64,
) -> InspectReport {
    let instructions = dockerfile.map(instructions).unwrap_or_default();
    let layer_lines: Vec<Option<usize>> = analysis
        .layers
        .iter()
        .map(|l| {
            l.created_by
                .as_deref()
                .and_then(|c| line_of(c, &instructions))
        })
        .collect();
    let at = |layer: usize| match layer_lines.get(layer).copied().flatten() {
        Some(line) => format!("the instruction at line {line}"),
        None => format!("layer {layer}"),
    };
    let hints = analysis
        .top_wasted
        .iter()
        .take(5)
        .map(|w| match w.removed_in {
            Some(removed) => format!(
                "{} ({}): written by {}, removed or overwritten by {}: clean it in {}, not later",
                w.path,
                format_size(w.bytes),
                at(w.written_in),
                at(removed),
                at(w.written_in)
            ),
            None => format!(
                "{} ({}): written by {}",
                w.path,
                format_size(w.bytes),
                at(w.written_in)
            ),
        })
        .collect();
    InspectReport {
        user_wasted_percent: user_wasted_fraction(&analysis),
        analysis,
        layer_lines,
        hints,
        gate,
        seconds,
        peak_memory_bytes: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dive_ci_rules_parse_and_disable() {
        let t = Thresholds::dive_defaults()
            .with_dive_ci(
                "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB # bytes\n  highestUserWastedPercent: disabled\n",
                ".dive-ci",
            )
            .unwrap();
        assert_eq!(t.lowest_efficiency, Some(0.95));
        assert_eq!(t.highest_wasted_bytes.as_deref(), Some("20MB"));
        assert_eq!(t.highest_user_wasted_percent, None);
        let err = Thresholds::dive_defaults()
            .with_dive_ci("rules:\n  lowestEfficiency: lots\n", ".dive-ci")
            .unwrap_err()
            .to_string();
        assert!(err.contains(".dive-ci:2") && err.contains("lots"), "{err}");
        // What dive ignores is ignored, with a note naming the line.
        let t = Thresholds::dive_defaults()
            .with_dive_ci(
                "rules:\n  lowestEfficency: 0.5\n  plugin1/rule1: error\n",
                ".dive-ci",
            )
            .unwrap();
        assert_eq!(t.lowest_efficiency, Some(0.9));
        assert_eq!(t.notes.len(), 2, "{:?}", t.notes);
        assert!(
            t.notes[0].starts_with(".dive-ci:2: ") && t.notes[0].contains("lowestEfficiency?"),
            "{:?}",
            t.notes
        );
        assert!(t.notes[1].contains("plugin rule"), "{:?}", t.notes);
        // A flow mapping, quotes and comments as YAML has them.
        let t = Thresholds::dive_defaults()
            .with_dive_ci(
                "---\nrules: {lowestEfficiency: 0.5, 'highestWastedBytes': \"1 MB\"} # x\n",
                ".dive-ci",
            )
            .unwrap();
        assert_eq!(t.lowest_efficiency, Some(0.5));
        assert_eq!(t.highest_wasted_bytes.as_deref(), Some("1 MB"));
        let err = Thresholds::dive_defaults()
            .with_dive_ci("rules: 3\n", ".dive-ci")
            .unwrap_err()
            .to_string();
        assert!(err.contains(".dive-ci:1"), "{err}");
    }

    #[test]
    fn user_waste_divides_as_dive_does() {
        assert_eq!(fraction(f64::INFINITY), "+Inf");
        assert_eq!(fraction(f64::NAN), "NaN");
        assert_eq!(fraction(0.25), "0.2500");
        assert_eq!(edit_distance("highestWastedBytes", "higestWastedByte"), 2);
    }

    #[test]
    fn dockerfile_lines_are_found_from_created_by() {
        let df = "FROM x\n# comment\nRUN apt-get update \\\n && apt-get install -y curl\nCOPY app /opt/app\nRUN --mount=type=secret,id=ca pip install a\n";
        let ins = instructions(df);
        assert_eq!(ins[1].0, 3);
        assert_eq!(
            line_of(
                "RUN /bin/sh -c apt-get update && apt-get install -y curl # buildkit",
                &ins
            ),
            Some(3)
        );
        assert_eq!(
            line_of("/bin/sh -c apt-get update && apt-get install -y curl", &ins),
            Some(3)
        );
        assert_eq!(line_of("COPY app /opt/app # buildkit", &ins), Some(5));
        assert_eq!(
            line_of("RUN |0 /bin/sh -c pip install a # buildkit", &ins),
            Some(6)
        );
        assert_eq!(line_of("something else", &ins), None);
    }
}
