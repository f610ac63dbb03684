//! The inspect stage's gate: thresholds on an image's analysis — dive's `.dive-ci` rules
//! (`lowestEfficiency`, `highestWastedBytes`, `highestUserWastedPercent`) and headroom's
//! `[inspect]` table (the same three, `max_image_size`, `max_layers`) — their evaluation,
//! the layers linked back to Dockerfile lines, fix hints, and the step-summary section.

use std::path::Path;

use headroom_disk::{format_size, parse_size};
use headroom_inspect::Analysis;
use serde::{Deserialize, Serialize};

use crate::ConfigError;

/// Thresholds of the gate; `None` disables a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub lowest_efficiency: Option<f64>,
    pub highest_wasted_bytes: Option<String>,
    pub highest_user_wasted_percent: Option<f64>,
    pub max_image_size: Option<String>,
    pub max_layers: Option<usize>,
}

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

    /// Apply the `rules:` of a `.dive-ci` file (a small YAML subset: `key: value` lines).
    pub fn with_dive_ci(mut self, text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut in_rules = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim_end();
            if line.trim().is_empty() {
                continue;
            }
            if !line.starts_with(' ') && !line.starts_with('\t') {
                in_rules = line.trim() == "rules:";
                continue;
            }
            if !in_rules {
                continue;
            }
            let at = format!("{origin}:{}", n + 1);
            let (key, value) = line
                .trim()
                .split_once(':')
                .ok_or_else(|| ConfigError::new(&at, "expected `key: value`"))?;
            let value = value.trim().trim_matches(['"', '\'']);
            let disabled = matches!(
                value.to_ascii_lowercase().as_str(),
                "" | "disabled" | "off" | "false"
            );
            let number = |v: &str| -> Result<f64, ConfigError> {
                v.parse::<f64>()
                    .map_err(|_| ConfigError::new(&at, format!("{key}: {v:?} is not a number")))
            };
            match key.trim() {
                "lowestEfficiency" => {
                    self.lowest_efficiency = if disabled { None } else { Some(number(value)?) }
                }
                "highestWastedBytes" => {
                    self.highest_wasted_bytes = if disabled {
                        None
                    } else {
                        parse_size(value)
                            .map_err(|e| ConfigError::new(&at, format!("{key}: {e}")))?;
                        Some(value.to_string())
                    }
                }
                "highestUserWastedPercent" => {
                    self.highest_user_wasted_percent =
                        if disabled { None } else { Some(number(value)?) }
                }
                other => {
                    return Err(ConfigError::new(&at, format!("unknown rule {other:?}")));
                }
            }
        }
        Ok(self)
    }

    /// Our [inspect] table overrides what it sets.
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
                format!("{pct:.4}"),
                pct <= max,
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

/// Our wasted bytes over the bytes of every layer but the first (dive's user waste ratio).
pub fn user_wasted_fraction(a: &Analysis) -> f64 {
    let user: u64 = a.layers.iter().skip(1).map(|l| l.size_bytes).sum();
    if user == 0 {
        0.0
    } else {
        a.wasted_bytes as f64 / user as f64
    }
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

/// The thresholds in force: dive's defaults, then `.dive-ci`, then [inspect] of the config.
pub fn thresholds(dive_ci: &Path, config: &Path) -> Result<Thresholds, ConfigError> {
    let mut t = Thresholds::dive_defaults();
    if dive_ci.is_file() {
        let text = crate::settings::read_config(dive_ci)?;
        t = t.with_dive_ci(&text, &dive_ci.display().to_string())?;
    }
    if config.is_file() {
        let text = crate::settings::read_config(config)?;
        let origin = config.display().to_string();
        let parsed: ImageToml =
            toml::from_str(&text).map_err(|e| ConfigError::toml(&origin, &text, &e))?;
        if let Some(ours) = &parsed.inspect {
            t = t.with(ours);
        }
    }
    Ok(t)
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
    }
}

/// The step-summary section.
pub fn markdown(r: &InspectReport) -> String {
    let a = &r.analysis;
    let mut md = format!(
        "### headroom inspect: {}\n\n{} in {} layers; wasted **{}** (efficiency {:.2}%). dive would say {} wasted ({:.2}%).\n\n",
        a.image.as_deref().unwrap_or("image"),
        format_size(a.total_bytes),
        a.layers.iter().filter(|l| !l.empty).count(),
        format_size(a.wasted_bytes),
        a.efficiency * 100.0,
        format_size(a.dive.wasted_bytes),
        a.dive.efficiency * 100.0,
    );
    if !r.gate.is_empty() {
        md.push_str("| rule | limit | actual | result |\n|---|---|---|---|\n");
        for g in &r.gate {
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                g.rule,
                g.limit,
                g.actual,
                if g.passed { "passed" } else { "**failed**" }
            ));
        }
    }
    for h in &r.hints {
        md.push_str(&format!("\n- {h}"));
    }
    md.push('\n');
    md
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
        let err = Thresholds::dive_defaults()
            .with_dive_ci("rules:\n  fastest: 1\n", ".dive-ci")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown rule"), "{err}");
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
