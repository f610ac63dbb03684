//! Pushing tags to a registry with credentials, retrying transient failures with exponential
//! backoff and jitter, and never retrying (or printing) what a retry cannot fix.

use std::time::Duration;

use bollard::auth::DockerCredentials;
use bollard::query_parameters::PushImageOptionsBuilder;
use futures_util::StreamExt;
use serde::Serialize;

use crate::auth::Credentials;
use crate::engine::Engine;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `n` (1-based, n ≥ 2): exponential, with ±25% jitter.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self
            .first_delay
            .saturating_mul(1 << (n.saturating_sub(2)).min(16));
        let base = base.min(self.max_delay);
        let jitter = 0.75 + (crate::random_u64() >> 11) as f64 / (1u64 << 53) as f64 * 0.5;
        base.mul_f64(jitter)
    }
}

/// One pushed reference.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    pub reference: String,
    pub digest: String,
    pub attempts: u32,
    pub seconds: f64,
}

/// Progress of a push.
#[derive(Debug, Clone)]
pub enum PushEvent {
    Status {
        reference: String,
        line: String,
    },
    Retry {
        reference: String,
        attempt: u32,
        delay: Duration,
        error: String,
    },
}

/// Receives a push's [`PushEvent`]s. The library never prints: the caller decides how to show
/// them. A closure `Fn(PushEvent)` is a `PushProgress`.
pub trait PushProgress: Send + Sync {
    fn event(&self, event: PushEvent);
}

impl<F: Fn(PushEvent) + Send + Sync> PushProgress for F {
    fn event(&self, event: PushEvent) {
        self(event)
    }
}

/// Why a push failed.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("pushing {reference} failed after {attempts} attempt(s): {message}{hint}")]
pub struct PushError {
    pub reference: String,
    pub message: String,
    pub attempts: u32,
    pub transient: bool,
    pub hint: String,
}

/// Whether an error is worth retrying: connection trouble, timeouts and 5xx are; auth
/// failures (401/403) and missing repositories (404) are not.
pub fn is_transient(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    let permanent = [
        "unauthorized",
        "authentication required",
        "denied",
        "forbidden",
        "not found",
        "no basic auth credentials",
        "does not exist",
        "invalid reference",
        "x509",
        "certificate",
        "server gave http response to https client",
    ];
    if permanent.iter().any(|p| m.contains(p)) || has_status(&m, &[401, 403, 404]) {
        return false;
    }
    let transient = [
        "connection refused",
        "connection reset",
        "broken pipe",
        "timeout",
        "timed out",
        "eof",
        "internal server error",
        "bad gateway",
        "service unavailable",
        "gateway timeout",
        "toomanyrequests",
        "too many requests",
        "temporarily",
        "tls handshake",
        "no such host",
        "i/o",
    ];
    transient.iter().any(|t| m.contains(t)) || has_status(&m, &[429, 500, 502, 503, 504])
}

/// An HTTP status code as a whole word: not part of a longer number, and not a port
/// (a number right after ':').
fn has_status(message: &str, codes: &[u16]) -> bool {
    let bytes = message.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let after_colon = start > 0 && bytes[start - 1] == b':';
            if !after_colon
                && let Ok(n) = message[start..i].parse::<u16>()
                && codes.contains(&n)
            {
                return true;
            }
        } else if bytes[i].is_ascii_alphabetic() {
            // Skip words such as "sha256" or "cu118" whole.
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    false
}

/// Push every reference (`repo:tag`), each with retries, reporting to `progress`; returns
/// the digests.
pub async fn push_all(
    engine: &Engine,
    references: &[String],
    credentials: Option<&Credentials>,
    policy: RetryPolicy,
    progress: &dyn PushProgress,
) -> Result<Vec<Pushed>, PushError> {
    let Some((first, rest)) = references.split_first() else {
        return Ok(Vec::new());
    };
    // The first push uploads the layers; the other tags then only add manifests, so they
    // go together.
    let mut pushed = vec![push_one(engine, first, credentials, policy, progress).await?];
    let others = futures_util::future::join_all(
        rest.iter()
            .map(|r| push_one(engine, r, credentials, policy, progress)),
    )
    .await;
    for result in others {
        pushed.push(result?);
    }
    Ok(pushed)
}

async fn push_one(
    engine: &Engine,
    reference: &str,
    credentials: Option<&Credentials>,
    policy: RetryPolicy,
    progress: &dyn PushProgress,
) -> Result<Pushed, PushError> {
    let start = std::time::Instant::now();
    let (repo, tag) = split_reference(reference);
    let mut attempt = 1;
    loop {
        match push_attempt(engine, reference, &repo, &tag, credentials, progress).await {
            Ok(digest) => {
                return Ok(Pushed {
                    reference: reference.to_string(),
                    digest,
                    attempts: attempt,
                    seconds: start.elapsed().as_secs_f64(),
                });
            }
            Err(message) => {
                let message = scrub(&message, credentials);
                let transient = is_transient(&message);
                if !transient || attempt >= policy.attempts {
                    let hint = if transient {
                        String::new()
                    } else if message.to_ascii_lowercase().contains("auth")
                        || message.contains("401")
                        || message.contains("denied")
                    {
                        match credentials {
                            Some(c) => format!(
                                " (credentials for {} from {}: check the username and password/token)",
                                c.server, c.source
                            ),
                            None => " (no credentials found: set REGISTRY_USERNAME and REGISTRY_PASSWORD, \
                                     use --password-stdin, or `docker login`)"
                                .to_string(),
                        }
                    } else {
                        String::new()
                    };
                    return Err(PushError {
                        reference: reference.to_string(),
                        message,
                        attempts: attempt,
                        transient,
                        hint,
                    });
                }
                attempt += 1;
                let delay = policy.delay(attempt);
                progress.event(PushEvent::Retry {
                    reference: reference.to_string(),
                    attempt,
                    delay,
                    error: message,
                });
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn push_attempt(
    engine: &Engine,
    reference: &str,
    repo: &str,
    tag: &str,
    credentials: Option<&Credentials>,
    progress: &dyn PushProgress,
) -> Result<String, String> {
    let creds = credentials.map(engine_credentials);
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut stream = engine.docker.push_image(repo, Some(options), creds);
    let mut digest = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = info.status {
                    if let Some(d) = parse_digest(&status) {
                        digest = Some(d);
                    }
                    progress.event(PushEvent::Status {
                        reference: reference.to_string(),
                        line: status,
                    });
                }
            }
            Err(bollard::errors::Error::DockerStreamError { error }) => return Err(error),
            Err(e) => return Err(e.to_string()),
        }
    }
    digest.ok_or_else(|| "the engine reported no digest for the push".to_string())
}

/// The credentials as the Engine API takes them.
fn engine_credentials(c: &Credentials) -> DockerCredentials {
    if c.is_identity_token() {
        // `docker login` with a token stores it under the username `<token>`.
        DockerCredentials {
            identitytoken: Some(c.password.expose().to_string()),
            serveraddress: Some(c.server.clone()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(c.username.clone()),
            password: Some(c.password.expose().to_string()),
            serveraddress: Some(c.server.clone()),
            ..Default::default()
        }
    }
}

/// Pull `reference` into the engine (what a builder pushed, for the stages that need the
/// image here), with the push's credentials; errors never hold the password.
pub async fn pull(
    engine: &Engine,
    reference: &str,
    credentials: Option<&Credentials>,
) -> Result<(), String> {
    let (repo, tag) = split_reference(reference);
    let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_image(&repo)
        .tag(&tag)
        .build();
    let mut stream =
        engine
            .docker
            .create_image(Some(options), None, credentials.map(engine_credentials));
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            let message = match e {
                bollard::errors::Error::DockerStreamError { error } => error,
                e => e.to_string(),
            };
            return Err(format!(
                "pulling {reference}: {}",
                scrub(&message, credentials)
            ));
        }
    }
    Ok(())
}

/// `latest: digest: sha256:… size: 528` → `sha256:…`.
pub fn parse_digest(status: &str) -> Option<String> {
    let rest = status.split("digest: ").nth(1)?;
    let digest = rest.split_whitespace().next()?;
    (digest.starts_with("sha256:") && digest.len() == 71).then(|| digest.to_string())
}

/// `host:5000/ns/app:tag` → (`host:5000/ns/app`, `tag`); the tag defaults to `latest`.
pub fn split_reference(reference: &str) -> (String, String) {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (name.to_string(), "latest".to_string()),
    }
}

/// Remove the password from any text that might echo it.
fn scrub(text: &str, credentials: Option<&Credentials>) -> String {
    match credentials {
        Some(c) if !c.password.expose().is_empty() => text.replace(c.password.expose(), "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_and_permanent_errors() {
        assert!(is_transient(
            "Get \"http://127.0.0.1:5000/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused"
        ));
        assert!(is_transient(
            "received unexpected HTTP status: 503 Service Unavailable"
        ));
        assert!(!is_transient("unauthorized: authentication required"));
        assert!(!is_transient(
            "denied: requested access to the resource is denied"
        ));
        assert!(!is_transient("something odd"));
        // Ports are not status codes; certificates are not transient; 429 is.
        assert!(!is_transient(
            "Get https://reg:5000/v2/: x509: certificate signed by unknown authority"
        ));
        assert!(is_transient(
            "dial tcp 10.0.0.1:4040: connect: connection refused"
        ));
        assert!(is_transient("toomanyrequests: rate limit exceeded"));
        assert!(is_transient(
            "received unexpected HTTP status: 502 Bad Gateway"
        ));
        assert!(!is_transient("unexpected status 404 from registry"));
    }

    #[test]
    fn digests_and_references() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(
            parse_digest(&format!("latest: digest: {d} size: 528")),
            Some(d)
        );
        assert_eq!(parse_digest("Pushed"), None);
        assert_eq!(
            split_reference("127.0.0.1:5000/ns/app:sha-abc"),
            ("127.0.0.1:5000/ns/app".into(), "sha-abc".into())
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/ns/app"),
            ("127.0.0.1:5000/ns/app".into(), "latest".into())
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(2) <= Duration::from_millis(625));
        assert!(p.delay(3) >= Duration::from_millis(750));
        assert!(p.delay(30) <= Duration::from_secs(10));
    }
}
