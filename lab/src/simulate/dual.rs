//! The dual layout's checks: a move of the data root to the second disk keeps every other
//! setting of daemon.json, deletes nothing, and one whose restart fails puts everything back.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::summary::{RestoreCheck, Summary};
use crate::image_run::RunSummary;
use crate::sandbox::runner::{BASE_IMAGE, Layout, Runner, say};

/// The keys of the runner's daemon.json besides data-root (and, `after` a move, a check that
/// data-root now points to the second disk).
pub(super) fn daemon_json_keys(layout: &Layout, after: bool) -> Result<Vec<String>> {
    let path = layout.daemon_json();
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| path.display().to_string())?;
    let Some(map) = value.as_object() else {
        bail!("{}: not a JSON object", path.display());
    };
    if after {
        let root = map.get("data-root").and_then(|v| v.as_str()).unwrap_or("");
        if !Path::new(root).starts_with(layout.second_mnt()) {
            bail!(
                "{}: data-root is {root:?} after the pipeline, not on the second disk {}",
                path.display(),
                layout.second_mnt().display()
            );
        }
    }
    Ok(map.keys().filter(|k| *k != "data-root").cloned().collect())
}

pub(super) fn check_restore(
    sandbox: &Runner,
    run: &dyn Fn() -> Result<RunSummary>,
) -> Result<RestoreCheck> {
    let layout = &sandbox.layout;
    let engine = sandbox.engine()?;
    let config = layout.daemon_json();
    let original = std::fs::read(&config).with_context(|| config.display().to_string())?;
    let mut unit_config: serde_json::Value = serde_json::from_slice(&original)?;
    if let Some(map) = unit_config.as_object_mut() {
        map.remove("data-root");
    }
    say("restore check: the engine's unit now passes --data-root itself");
    engine.service_run("stop")?;
    std::fs::write(
        engine.unit_data_root(),
        layout.data_root.display().to_string(),
    )?;
    let unit_text = serde_json::to_string_pretty(&unit_config)? + "\n";
    std::fs::write(&config, &unit_text)?;
    engine.service_run("start")?;
    engine.wait_answering()?;
    let run = run();
    let after = std::fs::read(&config).unwrap_or_default();
    let root = engine.data_root_now();
    let base = engine.docker(&["image", "inspect", BASE_IMAGE]).succeeds();
    let copy = layout.second_mnt().join("docker");
    let mut check = RestoreCheck {
        daemon_json_restored: after == unit_text.as_bytes(),
        data_root_after: root.clone(),
        base_image_kept: base,
        partial_copy_left: copy.exists(),
        ..RestoreCheck::default()
    };
    match run {
        Ok(r) => {
            check.result = r.result.clone();
            check.error = r.error.clone();
        }
        Err(e) => check.problems.push(format!("{e:#}")),
    }
    if check.result != "failed" {
        check
            .problems
            .push(format!("expected a failed move, got {:?}", check.result));
    }
    if !check
        .error
        .as_deref()
        .is_some_and(|e| e.contains("restored"))
    {
        check.problems.push(format!(
            "the error does not say what was restored: {:?}",
            check.error
        ));
    }
    if !check.daemon_json_restored {
        check.problems.push("daemon.json is not as it was".into());
    }
    if root.as_deref() != Some(layout.data_root.as_path()) {
        check
            .problems
            .push(format!("the engine is not back on its old root: {root:?}"));
    }
    if !base {
        check.problems.push(format!("{BASE_IMAGE} is gone"));
    }
    // Back to the runner as it was; the partial copy is the simulator's to clear.
    engine.service_run("stop")?;
    std::fs::remove_file(engine.unit_data_root())?;
    std::fs::write(&config, &original)?;
    if copy.exists() {
        let outcome = headroom_disk::remove_tree(&copy, &[], &|_| {});
        if let Some(e) = outcome.errors.first() {
            bail!("clearing {}: {e}", copy.display());
        }
    }
    engine.service_run("start")?;
    engine.wait_answering()?;
    Ok(check)
}

/// Dual layout: the pipeline passed by placement alone.
pub(super) fn check_placed(layout: &Layout, summary: &mut Summary) {
    let run = &summary.pipeline;
    let mut problem = |p: String| summary.problems.push(format!("pipeline: {p}"));
    if run.placement.as_deref() != Some("move_data_root") {
        problem(format!(
            "expected placement move_data_root, got {:?}",
            run.placement
        ));
    }
    if !run
        .relocated_to
        .as_deref()
        .is_some_and(|p| p.starts_with(layout.second_mnt()))
    {
        problem(format!(
            "the data root is not on the second disk {}: {:?}",
            layout.second_mnt().display(),
            run.relocated_to
        ));
    }
    if run.freed_bytes.unwrap_or(0) != 0 || !run.freed_items.is_empty() {
        problem(format!(
            "something was deleted: {:?} bytes, items {:?}",
            run.freed_bytes,
            run.freed_items.keys().collect::<Vec<_>>()
        ));
    }
    if summary.daemon_json_keys_before != summary.daemon_json_keys_after {
        summary.problems.push(format!(
            "daemon.json: keys {:?} before the move, {:?} after",
            summary.daemon_json_keys_before, summary.daemon_json_keys_after
        ));
    }
}

/// A layout with room: the pipeline passed with nothing deleted.
pub(super) fn check_nothing_deleted(summary: &mut Summary) {
    let run = &summary.pipeline;
    if run.freed_bytes.unwrap_or(0) != 0 || !run.freed_items.is_empty() {
        summary.problems.push(format!(
            "pipeline: something was deleted on a layout with room: {:?} bytes, items {:?}",
            run.freed_bytes,
            run.freed_items.keys().collect::<Vec<_>>()
        ));
    }
}
