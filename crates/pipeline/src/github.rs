//! GitHub Actions' files for a step: `$GITHUB_OUTPUT` and `$GITHUB_STEP_SUMMARY`, appended
//! to when the runner provides them. What goes in them is made in [`crate::render`].

use std::io::Write;

/// A file GitHub Actions gave the step (`$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`) that could
/// not be written.
#[derive(Debug, thiserror::Error)]
#[error("${var} ({path}): {source}")]
pub struct EnvFileError {
    pub var: &'static str,
    pub path: String,
    pub source: std::io::Error,
}

/// On GitHub Actions: append Markdown to the step summary, if the runner provides one.
pub fn append_step_summary(markdown: &str) -> Result<(), EnvFileError> {
    append_to_env_file("GITHUB_STEP_SUMMARY", markdown)
}

/// On GitHub Actions: set step outputs, if the runner provides the file.
pub fn append_outputs<K: AsRef<str>>(pairs: &[(K, String)]) -> Result<(), EnvFileError> {
    let text: String = pairs
        .iter()
        .map(|(k, v)| format!("{}={v}\n", k.as_ref()))
        .collect();
    append_to_env_file("GITHUB_OUTPUT", &text)
}

fn append_to_env_file(var: &'static str, text: &str) -> Result<(), EnvFileError> {
    let Some(path) = std::env::var_os(var).filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let error = |source| EnvFileError {
        var,
        path: path.to_string_lossy().into_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(error)
}
