//! `cargo xtask inspect`: where an image's bytes went — per layer, wasted bytes with the layer
//! (and Dockerfile line) that wrote and removed them, dive's figures beside ours, and a CI
//! gate with dive-compatible thresholds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use headroom_disk::{format_size, parse_size};
use headroom_docker::inspect::{Analysis, AnalyzeOptions, analyze};
use serde::{Deserialize, Serialize};

use crate::ui;

/// Analyse an image: layer sizes, wasted bytes (bytes stored in a layer but not visible in
/// the final image), the paths that waste most, and dive's figures for comparison.
///
/// TARGET is an image in the engine (streamed from `docker save`'s API, never written to
/// disk) or a `docker save` / OCI archive file.
///
/// With --ci, fail when the image is over its thresholds: dive's `.dive-ci` keys
/// (lowestEfficiency 0.9, highestWastedBytes disabled, highestUserWastedPercent 0.1 by
/// default) and the [inspect] table of the image config (max_image_size, max_layers, and
/// the same three as lowest_efficiency, highest_wasted_bytes, highest_user_wasted_percent).
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub(crate) struct Inspect {
    /// Image name or archive path.
    target: String,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
    /// How many wasted paths to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// The Dockerfile the image was built from, to point at lines.
    #[arg(long, value_name = "FILE")]
    dockerfile: Option<PathBuf>,
    /// Fail (exit 1) when a threshold is crossed.
    #[arg(long)]
    ci: bool,
    /// dive's CI configuration file (used when it exists).
    #[arg(long, value_name = "FILE", default_value = ".dive-ci")]
    ci_config: PathBuf,
    /// Image configuration with an [inspect] table (used when it exists).
    #[arg(long, value_name = "FILE", default_value = "docker/image.toml")]
    config: PathBuf,
}

/// Thresholds of the gate; `None` disables a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Thresholds {
    pub lowest_efficiency: Option<f64>,
    pub highest_wasted_bytes: Option<String>,
    pub highest_user_wasted_percent: Option<f64>,
    pub max_image_size: Option<String>,
    pub max_layers: Option<usize>,
}

impl Thresholds {
    /// dive's defaults.
    pub(crate) fn dive_defaults() -> Self {
        Thresholds {
            lowest_efficiency: Some(0.9),
            highest_wasted_bytes: None,
            highest_user_wasted_percent: Some(0.1),
            ..Thresholds::default()
        }
    }

    /// Apply the `rules:` of a `.dive-ci` file (a small YAML subset: `key: value` lines).
    pub(crate) fn with_dive_ci(mut self, text: &str, origin: &str) -> Result<Self> {
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
            let (key, value) = line
                .trim()
                .split_once(':')
                .with_context(|| format!("{origin}:{}: expected `key: value`", n + 1))?;
            let value = value.trim().trim_matches(['"', '\'']);
            let disabled = matches!(
                value.to_ascii_lowercase().as_str(),
                "" | "disabled" | "off" | "false"
            );
            let number = |v: &str| -> Result<f64> {
                v.parse::<f64>()
                    .with_context(|| format!("{origin}:{}: {key}: {v:?} is not a number", n + 1))
            };
            match key.trim() {
                "lowestEfficiency" => {
                    self.lowest_efficiency = if disabled { None } else { Some(number(value)?) }
                }
                "highestWastedBytes" => {
                    self.highest_wasted_bytes = if disabled {
                        None
                    } else {
                        parse_size(value).with_context(|| format!("{origin}:{}: {key}", n + 1))?;
                        Some(value.to_string())
                    }
                }
                "highestUserWastedPercent" => {
                    self.highest_user_wasted_percent =
                        if disabled { None } else { Some(number(value)?) }
                }
                other => bail!("{origin}:{}: unknown rule {other:?}", n + 1),
            }
        }
        Ok(self)
    }

    /// Our [inspect] table overrides what it sets.
    pub(crate) fn with(mut self, ours: &Thresholds) -> Self {
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
    pub(crate) fn evaluate(&self, a: &Analysis) -> Result<Vec<GateResult>> {
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
            let limit = parse_size(max).with_context(|| format!("highestWastedBytes {max:?}"))?;
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
            let limit = parse_size(max).with_context(|| format!("max_image_size {max:?}"))?;
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
pub(crate) fn user_wasted_fraction(a: &Analysis) -> f64 {
    let user: u64 = a.layers.iter().skip(1).map(|l| l.size_bytes).sum();
    if user == 0 {
        0.0
    } else {
        a.wasted_bytes as f64 / user as f64
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GateResult {
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
pub(crate) fn thresholds(dive_ci: &Path, config: &Path) -> Result<Thresholds> {
    let mut t = Thresholds::dive_defaults();
    if dive_ci.is_file() {
        let text =
            std::fs::read_to_string(dive_ci).with_context(|| dive_ci.display().to_string())?;
        t = t.with_dive_ci(&text, &dive_ci.display().to_string())?;
    }
    if config.is_file() {
        let text = std::fs::read_to_string(config).with_context(|| config.display().to_string())?;
        let parsed: ImageToml =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
        if let Some(ours) = &parsed.inspect {
            t = t.with(ours);
        }
    }
    Ok(t)
}

/// Dockerfile instructions with their first line, continuation lines joined.
pub(crate) fn instructions(text: &str) -> Vec<(usize, String)> {
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
pub(crate) fn line_of(created_by: &str, instructions: &[(usize, String)]) -> Option<usize> {
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
pub(crate) struct InspectReport {
    #[serde(flatten)]
    pub analysis: Analysis,
    pub user_wasted_percent: f64,
    pub layer_lines: Vec<Option<usize>>,
    pub hints: Vec<String>,
    pub gate: Vec<GateResult>,
    pub seconds: f64,
}

impl Inspect {
    pub(crate) fn run(self) -> Result<ExitCode> {
        let start = std::time::Instant::now();
        let options = AnalyzeOptions {
            top_n: self.top,
            ..AnalyzeOptions::default()
        };
        let analysis = if Path::new(&self.target).is_file() {
            let file = std::fs::File::open(&self.target).with_context(|| self.target.clone())?;
            analyze(std::io::BufReader::with_capacity(1 << 20, file), &options)
                .with_context(|| format!("reading {}", self.target))?
        } else {
            analyze_from_engine(&self.target, options)?
        };
        let dockerfile = match &self.dockerfile {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| format!("--dockerfile {}", f.display()))?,
            ),
            None => None,
        };
        let gate = thresholds(&self.ci_config, &self.config)?.evaluate(&analysis)?;
        let report = finish(
            analysis,
            dockerfile.as_deref(),
            gate,
            start.elapsed().as_secs_f64(),
        );
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", human(&report));
        }
        ui::github_step_summary(&markdown(&report))?;
        let failed: Vec<&GateResult> = report.gate.iter().filter(|g| !g.passed).collect();
        if self.ci && !failed.is_empty() {
            for g in &failed {
                eprintln!(
                    "inspect: {} failed: {} (limit {})",
                    g.rule, g.actual, g.limit
                );
            }
            return Ok(ExitCode::FAILURE);
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Stream an image out of the engine into the analyser.
pub(crate) fn analyze_from_engine(image: &str, options: AnalyzeOptions) -> Result<Analysis> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let engine =
            headroom_docker::engine::Engine::from_env(std::time::Duration::from_secs(5)).await?;
        engine
            .docker
            .inspect_image(image)
            .await
            .with_context(|| format!("{image}: not an image in the engine, nor a file"))?;
        let reader = headroom_docker::export::export(&engine, image);
        let image = image.to_string();
        tokio::task::spawn_blocking(move || {
            analyze(std::io::BufReader::with_capacity(1 << 20, reader), &options)
                .with_context(|| format!("analysing {image}"))
        })
        .await
        .context("the analysis thread")?
    })
}

/// Link layers to Dockerfile lines and write the fix hints.
pub(crate) fn finish(
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

fn human(r: &InspectReport) -> String {
    let a = &r.analysis;
    let rows: Vec<Vec<String>> = a
        .layers
        .iter()
        .map(|l| {
            let created = l.created_by.clone().unwrap_or_default();
            let created: String = created.chars().take(70).collect();
            vec![
                l.index.to_string(),
                format_size(l.size_bytes),
                format_size(l.wasted_bytes),
                r.layer_lines
                    .get(l.index)
                    .copied()
                    .flatten()
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                created,
            ]
        })
        .collect();
    let mut out = ui::table(&["layer", "size", "wasted", "line", "created by"], &rows);
    out.push_str(&format!(
        "\n{}: {} in {} layers; wasted {} (efficiency {:.2}%); duplicate content {}\n",
        a.image.as_deref().unwrap_or("image"),
        format_size(a.total_bytes),
        a.layers.iter().filter(|l| !l.empty).count(),
        format_size(a.wasted_bytes),
        a.efficiency * 100.0,
        format_size(a.duplicate_bytes),
    ));
    out.push_str(&format!(
        "dive's figures: efficiency {:.2}%, wasted {}, user wasted {:.2}% — {}\n",
        a.dive.efficiency * 100.0,
        format_size(a.dive.wasted_bytes),
        a.dive.user_wasted_percent * 100.0,
        a.dive.explanation
    ));
    if !a.top_wasted.is_empty() {
        out.push('\n');
        let rows: Vec<Vec<String>> = a
            .top_wasted
            .iter()
            .map(|w| {
                vec![
                    format_size(w.bytes),
                    w.written_in.to_string(),
                    w.removed_in.map(|r| r.to_string()).unwrap_or_default(),
                    w.path.clone(),
                ]
            })
            .collect();
        out.push_str(&ui::table(
            &["wasted", "written in", "removed in", "path"],
            &rows,
        ));
    }
    for h in &r.hints {
        out.push_str(&format!("hint: {h}\n"));
    }
    for g in &r.gate {
        out.push_str(&format!(
            "gate: {} {} (limit {}, actual {})\n",
            g.rule,
            if g.passed { "passed" } else { "FAILED" },
            g.limit,
            g.actual
        ));
    }
    out
}

/// The step-summary section.
pub(crate) fn markdown(r: &InspectReport) -> String {
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
