//! The disk budget per phase: where a build's bytes went. The watchdog's samples during the
//! build are cut at each step's start, as the builder names its steps (the `FROM` step pulls
//! the base; BuildKit's `exporting to image` and `exporting cache` are steps of their own),
//! and the stages before and after the build (free, inspect, smoke, push) are read at their
//! start and end.

use headroom_disk::Sample;
use serde::{Deserialize, Serialize};

/// One phase's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// `free`, `step 3: RUN pip install …`, `export`, `inspect`, `smoke`, `push`.
    pub name: String,
    /// Milliseconds since the pipeline started.
    pub start_ms: u64,
    pub end_ms: u64,
    /// Available bytes on the data root's filesystem when the phase started and ended.
    pub available_start: u64,
    pub available_end: u64,
    /// The lowest available reading within the phase.
    pub low_bytes: u64,
    /// Bytes the phase held at its peak: start minus its lowest reading.
    pub peak_bytes: u64,
    /// What it left taken (negative: it gave bytes back, as the free stage does).
    pub net_bytes: i64,
}

impl Phase {
    fn new(name: String, start_ms: u64, end_ms: u64, start: u64, end: u64, low: u64) -> Phase {
        let low = low.min(start).min(end);
        Phase {
            name,
            start_ms,
            end_ms,
            available_start: start,
            available_end: end,
            low_bytes: low,
            peak_bytes: start - low,
            net_bytes: start as i64 - end as i64,
        }
    }

    /// A phase read only at its two ends.
    pub fn between(name: &str, start_ms: u64, end_ms: u64, start: u64, end: u64) -> Phase {
        Phase::new(
            name.to_string(),
            start_ms,
            end_ms,
            start,
            end,
            start.min(end),
        )
    }
}

/// Cut the build's `samples` (ms since the build's start, which is `offset_ms` in pipeline
/// time) at the `steps` (ms since the same start, name), up to `end_ms`.
pub fn build_phases(
    samples: &[Sample],
    steps: &[(u64, String)],
    offset_ms: u64,
    end_ms: u64,
) -> Vec<Phase> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    // The reading in force at `ms`: the last sample at or before it.
    let at = |ms: u64| {
        samples
            .iter()
            .take_while(|s| s.ms <= ms)
            .last()
            .unwrap_or(first)
            .available_bytes
    };
    let low_in = |from: u64, to: u64| {
        samples
            .iter()
            .filter(|s| s.ms >= from && s.ms <= to)
            .map(|s| s.available_bytes)
            .min()
            .unwrap_or(u64::MAX)
    };
    let mut cuts: Vec<(u64, String)> = Vec::new();
    if steps.first().is_none_or(|(ms, _)| *ms > 0) {
        cuts.push((0, "build context".into()));
    }
    for (i, (ms, name)) in steps.iter().enumerate() {
        // The classic builder numbers its steps itself ("Step 5/15 : RUN …").
        let numbered = name.starts_with("Step ") && name.contains(" : ");
        let label = if numbered {
            short(name)
        } else {
            format!("step {}: {}", i + 1, short(name))
        };
        cuts.push((*ms, label));
    }
    let end = end_ms.max(samples.last().map_or(0, |s| s.ms));
    let mut out = Vec::new();
    for (i, (from, name)) in cuts.iter().enumerate() {
        let to = cuts.get(i + 1).map_or(end, |(ms, _)| *ms);
        if to < *from {
            continue;
        }
        out.push(Phase::new(
            name.clone(),
            offset_ms + from,
            offset_ms + to,
            at(*from),
            at(to),
            low_in(*from, to),
        ));
    }
    out
}

/// A step's name, short enough for a table.
fn short(name: &str) -> String {
    let one_line = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= 60 {
        return one_line;
    }
    let cut: String = one_line.chars().take(59).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(points: &[(u64, u64)]) -> Vec<Sample> {
        points
            .iter()
            .map(|&(ms, available_bytes)| Sample {
                ms,
                available_bytes,
            })
            .collect()
    }

    #[test]
    fn each_step_gets_the_bytes_taken_while_it_ran() {
        // 100 free; step 1 (pull) takes 10, step 2 takes 40 then gives 20 back.
        let s = samples(&[
            (0, 100),
            (500, 95),
            (1000, 90),
            (1500, 60),
            (2000, 50),
            (2500, 70),
        ]);
        let steps = vec![
            (0, "FROM base".to_string()),
            (1000, "RUN pip install torch".into()),
            (2000, "exporting to image".into()),
        ];
        let p = build_phases(&s, &steps, 5000, 2500);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "step 1: FROM base",
                "step 2: RUN pip install torch",
                "step 3: exporting to image"
            ]
        );
        assert_eq!(p[0].start_ms, 5000);
        assert_eq!((p[0].available_start, p[0].available_end), (100, 90));
        assert_eq!(p[0].peak_bytes, 10);
        assert_eq!(p[0].net_bytes, 10);
        assert_eq!(p[1].peak_bytes, 40);
        assert_eq!(p[1].net_bytes, 40);
        assert_eq!(p[1].low_bytes, 50);
        // The export gave 20 back: a negative net.
        assert_eq!(p[2].net_bytes, -20);
        assert_eq!(p[2].end_ms, 7500);
    }

    #[test]
    fn time_before_the_first_step_is_the_context() {
        let s = samples(&[(0, 100), (300, 98), (600, 97)]);
        let p = build_phases(&s, &[(400, "FROM x".into())], 0, 600);
        assert_eq!(p[0].name, "build context");
        assert_eq!(p[0].net_bytes, 2);
        assert_eq!(p[1].name, "step 1: FROM x");
    }

    #[test]
    fn no_samples_no_phases_and_a_freeing_phase_is_negative() {
        assert!(build_phases(&[], &[(0, "FROM x".into())], 0, 10).is_empty());
        let free = Phase::between("free", 0, 10, 50, 80);
        assert_eq!(free.net_bytes, -30);
        assert_eq!(free.peak_bytes, 0);
        assert_eq!(free.low_bytes, 50);
    }

    #[test]
    fn the_classic_builders_own_numbers_are_kept() {
        let s = samples(&[(0, 10), (10, 9)]);
        let p = build_phases(&s, &[(0, "Step 2/15 : FROM base".into())], 0, 10);
        assert_eq!(p[0].name, "Step 2/15 : FROM base");
    }

    #[test]
    fn long_step_names_are_cut() {
        let name = format!("RUN {}", "x ".repeat(80));
        let s = samples(&[(0, 10), (10, 9)]);
        let p = build_phases(&s, &[(0, name)], 0, 10);
        assert!(p[0].name.chars().count() <= 70, "{}", p[0].name);
        assert!(p[0].name.ends_with('…'));
    }
}
