//! [`AuthError`]: why credentials could not be resolved. No variant carries a secret.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why credentials could not be resolved. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "--password-stdin was given but no username: pass --username or set {}",
        .env_vars.join(" or ")
    )]
    StdinWithoutUsername { env_vars: Vec<&'static str> },

    #[error("--password-stdin was given but standard input was empty")]
    EmptyStdinPassword,

    #[error(
        "{set} is set but {missing} is not (or is empty): set both {set} and {missing}, or neither"
    )]
    HalfSetEnv {
        set: &'static str,
        missing: &'static str,
    },

    #[error("cannot read Docker config {}: {source}", .path.display())]
    ConfigRead { path: PathBuf, source: io::Error },

    #[error("Docker config {} is not valid JSON: {message} at line {line} column {column}", .path.display())]
    ConfigSyntax {
        path: PathBuf,
        message: String,
        line: usize,
        column: usize,
    },

    #[error("Docker config {}: {what}", .path.display())]
    ConfigShape { path: PathBuf, what: String },

    #[error("Docker config {}: auths[{key:?}].auth {reason}", .path.display())]
    BadAuthField {
        path: PathBuf,
        key: String,
        reason: &'static str,
    },

    #[error("credential helper docker-credential-{helper} was not found on PATH")]
    HelperNotFound { helper: String },

    #[error("cannot run credential helper docker-credential-{helper}: {source}")]
    HelperSpawn { helper: String, source: io::Error },

    #[error("credential helper docker-credential-{helper} did not answer within {}s", .timeout.as_secs())]
    HelperTimedOut { helper: String, timeout: Duration },

    #[error("credential helper docker-credential-{helper} failed ({status}){}",
        .stderr_first_line.as_deref().map(|l| format!(": {l}")).unwrap_or_default())]
    HelperFailed {
        helper: String,
        status: String,
        stderr_first_line: Option<String>,
    },

    #[error("credential helper docker-credential-{helper} answered something unexpected: {what}")]
    HelperOutput { helper: String, what: String },
}
