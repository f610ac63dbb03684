//! Connecting to a Docker engine the way the Docker CLI finds it, failing fast and clearly
//! when nothing answers, and reading the engine facts the pipeline needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Where the engine is, and how that was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `unix:///path`, `tcp://host:port`.
    pub host: String,
    /// Client certificate material for TLS (`DOCKER_TLS_VERIFY`, or a context's TLS dir).
    pub tls: Option<TlsFiles>,
    /// `DOCKER_HOST`, `context NAME` or `default`.
    pub source: String,
}

impl Endpoint {
    /// Whether the engine is on this machine (a unix socket): its data root is a local path.
    pub fn is_local(&self) -> bool {
        self.host.starts_with("unix://")
    }

    /// The environment a docker CLI child needs to reach the same engine: `DOCKER_HOST`,
    /// and for TLS `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` (the CLI wants `ca.pem`,
    /// `cert.pem` and `key.pem` in one directory, which is how both sources give them).
    pub fn cli_env(&self) -> Vec<(String, String)> {
        let mut env = vec![("DOCKER_HOST".to_string(), self.host.clone())];
        if let Some(dir) = self.tls.as_ref().and_then(|t| t.ca.parent()) {
            env.push(("DOCKER_TLS_VERIFY".into(), "1".into()));
            env.push(("DOCKER_CERT_PATH".into(), dir.display().to_string()));
        }
        env
    }

    /// Run the docker CLI against this engine (on a blocking thread, stdin closed): its
    /// stdout, or `what: ` and its stderr.
    pub async fn cli(&self, what: &str, args: Vec<String>) -> Result<String, String> {
        let env = self.cli_env();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("docker")
                .args(&args)
                .envs(env)
                .env_remove("DOCKER_CONTEXT")
                .stdin(std::process::Stdio::null())
                .output()
        })
        .await
        .map_err(|e| format!("{what}: {e}"))?
        .map_err(|e| format!("{what}: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let said = stderr.trim();
            return Err(format!(
                "{what}: {}",
                if said.is_empty() { "failed" } else { said }
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The deepest cause of `e`: what the operating system or the TLS library said ("Connection
/// refused (os error 111)"), not the HTTP client's wrapper ("Error in the hyper legacy client").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Plain words for a TLS failure, naming the file to look at: which of the CA, the client
/// certificate or the key the handshake's complaint points to.
fn tls_reason(tls: &TlsFiles, host: &str, reason: &str) -> String {
    let r = reason.to_ascii_lowercase();
    let ca = tls.ca.display();
    if r.contains("notvalidforname") || r.contains("not valid for name") {
        return format!(
            "the engine's certificate is not valid for the name in {host} ({reason}): connect \
             by a name or address the certificate lists, or reissue it"
        );
    }
    if r.contains("expired") || r.contains("notvalidyet") {
        return format!(
            "the engine's certificate is outside its validity period ({reason}): renew it, or \
             check this machine's clock"
        );
    }
    if r.contains("badsignature") || r.contains("unknownissuer") || r.contains("invalid peer") {
        return format!(
            "the engine's certificate is not signed by the CA in {ca} ({reason}): \
             DOCKER_CERT_PATH must hold that engine's ca.pem"
        );
    }
    if r.contains("certificate required") || r.contains("bad certificate") || r.contains("alert") {
        return format!(
            "the engine refused the client certificate {} ({reason}): it must be signed by \
             the CA the engine trusts (its --tlscacert)",
            tls.cert.display()
        );
    }
    format!(
        "TLS with {ca}, {}, {}: {reason}",
        tls.cert.display(),
        tls.key.display()
    )
}

fn looks_like_tls(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "handshake",
        "alert",
        "badsignature",
        "unknownissuer",
    ]
    .iter()
    .any(|w| r.contains(w))
}

/// The TLS files must be there and readable before a connection is tried: the error names
/// the one that is not.
fn check_tls_files(tls: &TlsFiles, source: &str) -> Result<(), EngineError> {
    for (path, what) in [
        (&tls.ca, "the CA certificate"),
        (&tls.cert, "the client certificate"),
        (&tls.key, "the client key"),
    ] {
        if let Err(e) = std::fs::File::open(path) {
            return Err(EngineError::Config {
                what: format!("{source}: {}", path.display()),
                message: format!("{what} for TLS cannot be read: {e}"),
            });
        }
    }
    Ok(())
}

/// Why the engine could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "no Docker engine answers at {host} ({source_desc}): {reason}. Start the daemon (e.g. \
         `scripts/provision` or `sudo dockerd`), or point DOCKER_HOST at a running one"
    )]
    Unreachable {
        host: String,
        source_desc: String,
        reason: String,
    },
    #[error("{what}: {message}")]
    Config { what: String, message: String },
    /// ssh could not reach the engine (`ssh://`).
    #[error(
        "ssh to the Docker engine at {host} ({source_desc}) failed: {reason}. Check that `ssh \
         {target} docker version` works here: keys or agent, known hosts, docker on that host"
    )]
    Ssh {
        host: String,
        source_desc: String,
        target: String,
        reason: String,
    },
    /// The engine answered, but the TLS handshake failed.
    #[error("TLS with the Docker engine at {host} ({source_desc}) failed: {reason}")]
    Tls {
        host: String,
        source_desc: String,
        reason: String,
    },
    #[error("Docker engine at {host}: {source}")]
    Api {
        host: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// Find the engine: `DOCKER_HOST` (with `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`), else the
/// active context (`DOCKER_CONTEXT`, else `currentContext` in config.json), else the
/// default socket. `env` is a snapshot of the environment.
pub fn resolve_endpoint(env: &BTreeMap<String, String>) -> Result<Endpoint, EngineError> {
    let config_dir = env
        .get("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env.get("HOME").map(|h| Path::new(h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from("/root/.docker"));
    if let Some(host) = env.get("DOCKER_HOST").filter(|h| !h.is_empty()) {
        let verify = env
            .get("DOCKER_TLS_VERIFY")
            .is_some_and(|v| !v.is_empty() && v != "0");
        let tls = verify.then(|| {
            let dir = env
                .get("DOCKER_CERT_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| config_dir.clone());
            tls_files(&dir)
        });
        return Ok(Endpoint {
            host: host.clone(),
            tls,
            source: "DOCKER_HOST".into(),
        });
    }
    let context = match env.get("DOCKER_CONTEXT").filter(|c| !c.is_empty()) {
        Some(c) => Some(c.clone()),
        None => current_context(&config_dir)?,
    };
    if let Some(name) = context.filter(|c| c != "default") {
        return context_endpoint(&config_dir, &name);
    }
    Ok(Endpoint {
        host: "unix:///var/run/docker.sock".into(),
        tls: None,
        source: "default".into(),
    })
}

fn tls_files(dir: &Path) -> TlsFiles {
    TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    }
}

fn current_context(config_dir: &Path) -> Result<Option<String>, EngineError> {
    let path = config_dir.join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| EngineError::Config {
            what: path.display().to_string(),
            message: e.to_string(),
        })?;
    Ok(value
        .get("currentContext")
        .and_then(|c| c.as_str())
        .map(String::from))
}

/// Contexts live in `contexts/meta/<sha256(name)>/meta.json`, TLS files in
/// `contexts/tls/<sha256(name)>/docker/`.
fn context_endpoint(config_dir: &Path, name: &str) -> Result<Endpoint, EngineError> {
    let hash = hex(&Sha256::digest(name.as_bytes()));
    let meta = config_dir
        .join("contexts/meta")
        .join(&hash)
        .join("meta.json");
    let bad = |message: String| EngineError::Config {
        what: format!("docker context {name:?} ({})", meta.display()),
        message,
    };
    let text = std::fs::read_to_string(&meta).map_err(|e| bad(e.to_string()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let docker = &value["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .ok_or_else(|| bad("no Endpoints.docker.Host".into()))?
        .to_string();
    let tls_dir = config_dir.join("contexts/tls").join(&hash).join("docker");
    let tls = tls_dir.join("ca.pem").exists().then(|| tls_files(&tls_dir));
    Ok(Endpoint {
        host,
        tls,
        source: format!("context {name}"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A connected engine.
#[derive(Debug, Clone)]
pub struct Engine {
    pub docker: Docker,
    pub endpoint: Endpoint,
    /// For an `ssh://` engine: the proxy the client talks through, alive as long as any
    /// clone of the engine.
    _ssh_proxy: Option<std::sync::Arc<crate::ssh::SshProxy>>,
}

/// How long one long request (a build, a push) may wait for the engine's first answer.
const REQUEST_TIMEOUT_SECS: u64 = 3600;

impl Engine {
    /// Connect and check that the engine answers within `answer_within`; negotiate the API
    /// version down to the engine's.
    pub async fn connect(
        endpoint: Endpoint,
        answer_within: Duration,
    ) -> Result<Engine, EngineError> {
        let unreachable = |reason: String| EngineError::Unreachable {
            host: endpoint.host.clone(),
            source_desc: endpoint.source.clone(),
            reason,
        };
        let host = endpoint.host.as_str();
        let mut ssh = None;
        let docker = if let Some(rest) = host.strip_prefix("ssh://") {
            let target = crate::ssh::SshTarget::parse(rest).map_err(|m| EngineError::Config {
                what: format!("{} ({host})", endpoint.source),
                message: m,
            })?;
            let proxy = crate::ssh::SshProxy::start(&target).map_err(unreachable)?;
            let uri = format!("unix://{}", proxy.socket().display());
            ssh = Some(std::sync::Arc::new(proxy));
            Docker::connect_with_unix(&uri, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if let Some(path) = host.strip_prefix("unix://") {
            if !Path::new(path).exists() {
                return Err(unreachable("the socket does not exist".into()));
            }
            Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if host.starts_with("tcp://")
            || host.starts_with("http://")
            || host.starts_with("https://")
        {
            match &endpoint.tls {
                Some(tls) => {
                    check_tls_files(tls, &endpoint.source)?;
                    Docker::connect_with_ssl(
                        host,
                        &tls.key,
                        &tls.cert,
                        &tls.ca,
                        REQUEST_TIMEOUT_SECS,
                        API_DEFAULT_VERSION,
                    )
                }
                None => Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION),
            }
        } else {
            return Err(EngineError::Config {
                what: format!("{} ({host})", endpoint.source),
                message: "unsupported scheme; use unix://, tcp:// or ssh://".into(),
            });
        }
        .map_err(|e| unreachable(e.to_string()))?;
        // An ssh session starts (and authenticates) before the engine can answer.
        let answer_within = if ssh.is_some() {
            answer_within + Duration::from_secs(10)
        } else {
            answer_within
        };
        // What ssh said, when it said something: then the failure is ssh's, not the engine's.
        let ssh_error = |reason: String| {
            let said = ssh.as_ref().map(|s| s.last_error()).unwrap_or_default();
            match host.strip_prefix("ssh://") {
                Some(target) if !said.is_empty() => EngineError::Ssh {
                    host: endpoint.host.clone(),
                    source_desc: endpoint.source.clone(),
                    target: target.to_string(),
                    reason: said,
                },
                _ => unreachable(reason),
            }
        };
        match tokio::time::timeout(answer_within, docker.ping()).await {
            Err(_) => {
                return Err(ssh_error(format!(
                    "no answer within {} s",
                    answer_within.as_secs_f64()
                )));
            }
            Ok(Err(e)) => {
                let reason = innermost(&e);
                if ssh.is_some() {
                    return Err(ssh_error(reason));
                }
                return Err(match &endpoint.tls {
                    Some(tls) if looks_like_tls(&reason) => EngineError::Tls {
                        host: endpoint.host.clone(),
                        source_desc: endpoint.source.clone(),
                        reason: tls_reason(tls, &endpoint.host, &reason),
                    },
                    _ => unreachable(reason),
                });
            }
            Ok(Ok(_)) => {}
        }
        let docker = tokio::time::timeout(answer_within, docker.negotiate_version())
            .await
            .map_err(|_| unreachable("version negotiation timed out".into()))?
            .map_err(|e| unreachable(innermost(&e)))?;
        Ok(Engine {
            docker,
            endpoint,
            _ssh_proxy: ssh,
        })
    }

    /// Connect to the engine the environment names.
    pub async fn from_env(answer_within: Duration) -> Result<Engine, EngineError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Engine::connect(resolve_endpoint(&env)?, answer_within).await
    }

    pub fn api_error(&self, source: bollard::errors::Error) -> EngineError {
        EngineError::Api {
            host: self.endpoint.host.clone(),
            source,
        }
    }

    /// How many images the engine lists (tagged or not, not intermediate).
    pub async fn image_count(&self) -> Result<usize, EngineError> {
        self.docker
            .list_images(None::<bollard::query_parameters::ListImagesOptions>)
            .await
            .map(|l| l.len())
            .map_err(|e| self.api_error(e))
    }

    /// What the pipeline needs to know about the engine.
    pub async fn facts(&self) -> Result<EngineFacts, EngineError> {
        let version = self.docker.version().await.map_err(|e| self.api_error(e))?;
        let info = self.docker.info().await.map_err(|e| self.api_error(e))?;
        let runtimes: Vec<String> = info
            .runtimes
            .as_ref()
            .map(|r| {
                let mut names: Vec<String> = r.keys().cloned().collect();
                names.sort();
                names
            })
            .unwrap_or_default();
        let cdi_gpu_devices: Vec<String> = info
            .discovered_devices
            .as_ref()
            .map(|devices| {
                devices
                    .iter()
                    .filter(|d| d.source.as_deref() == Some("cdi"))
                    .filter_map(|d| d.id.clone())
                    .filter(|id| id.contains("gpu"))
                    .collect()
            })
            .unwrap_or_default();
        let api_version = version.api_version.clone().unwrap_or_default();
        let os = version.os.clone().unwrap_or_default();
        let containerd_store = info.driver_status.iter().flatten().any(|pair| {
            pair.first().is_some_and(|k| k == "driver-type")
                && pair
                    .get(1)
                    .is_some_and(|v| v.starts_with("io.containerd.snapshotter"))
        });
        Ok(EngineFacts {
            version: version.version.unwrap_or_default(),
            api_version: api_version.clone(),
            os: os.clone(),
            arch: version.arch.unwrap_or_default(),
            data_root: info.docker_root_dir.map(PathBuf::from),
            storage_driver: info.driver.clone().unwrap_or_default(),
            containerd_store,
            // BuildKit is in every Linux engine since API 1.39 (18.09).
            buildkit: os == "linux" && api_at_least(&api_version, 1, 39),
            nvidia_runtime: runtimes.iter().any(|r| r == "nvidia"),
            runtimes,
            cdi_spec_dirs: info.cdi_spec_dirs.unwrap_or_default(),
            cdi_gpu_devices,
        })
    }
}

fn api_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// Facts about the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineFacts {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
    pub data_root: Option<PathBuf>,
    /// `overlay2` (the classic image store), `overlayfs` (containerd's snapshotter)…
    #[serde(default)]
    pub storage_driver: String,
    /// Whether images live in containerd's image store (`features.containerd-snapshotter`).
    #[serde(default)]
    pub containerd_store: bool,
    pub buildkit: bool,
    pub runtimes: Vec<String>,
    pub nvidia_runtime: bool,
    pub cdi_spec_dirs: Vec<String>,
    /// CDI device names for GPUs (`nvidia.com/gpu=0`, …) the engine discovered.
    pub cdi_gpu_devices: Vec<String>,
}

impl EngineFacts {
    /// Whether containers can be given GPUs.
    pub fn has_gpus(&self) -> bool {
        self.nvidia_runtime || !self.cdi_gpu_devices.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> TlsFiles {
        TlsFiles {
            ca: "/certs/ca.pem".into(),
            cert: "/certs/cert.pem".into(),
            key: "/certs/key.pem".into(),
        }
    }

    #[test]
    fn a_tls_failure_names_the_file_it_points_to() {
        let host = "tcp://10.0.0.5:2376";
        let r = tls_reason(&files(), host, "invalid peer certificate: BadSignature");
        assert!(
            r.contains("/certs/ca.pem") && r.contains("not signed"),
            "{r}"
        );
        let r = tls_reason(&files(), host, "invalid peer certificate: UnknownIssuer");
        assert!(r.contains("/certs/ca.pem"), "{r}");
        let r = tls_reason(&files(), host, "invalid peer certificate: NotValidForName");
        assert!(
            r.contains(host) && r.contains("not valid for the name"),
            "{r}"
        );
        let r = tls_reason(&files(), host, "invalid peer certificate: Expired");
        assert!(r.contains("validity") && r.contains("clock"), "{r}");
        let r = tls_reason(&files(), host, "received fatal alert: CertificateRequired");
        assert!(r.contains("/certs/cert.pem"), "{r}");
        let r = tls_reason(&files(), host, "something else");
        assert!(r.contains("/certs/key.pem"), "{r}");
    }

    #[test]
    fn missing_tls_files_are_named_before_connecting() {
        let dir = tempfile::tempdir().unwrap();
        let tls = TlsFiles {
            ca: dir.path().join("ca.pem"),
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&tls.ca, "x").unwrap();
        std::fs::write(&tls.cert, "x").unwrap();
        let e = check_tls_files(&tls, "DOCKER_CERT_PATH")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key.pem") && e.contains("client key"), "{e}");
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn docker_host_wins_and_tls_follows_the_verify_flag() {
        let e = resolve_endpoint(&env(&[
            ("DOCKER_HOST", "tcp://10.0.0.1:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ]))
        .unwrap();
        assert_eq!(e.host, "tcp://10.0.0.1:2376");
        assert_eq!(e.tls.unwrap().ca, PathBuf::from("/certs/ca.pem"));
        let e = resolve_endpoint(&env(&[
            ("DOCKER_HOST", "unix:///x.sock"),
            ("DOCKER_TLS_VERIFY", "0"),
        ]))
        .unwrap();
        assert!(e.tls.is_none());
        assert_eq!(e.source, "DOCKER_HOST");
    }

    #[test]
    fn the_active_context_is_read_from_its_meta_file() {
        let dir = tempfile::tempdir().unwrap();
        let hash = hex(&Sha256::digest(b"remote"));
        let meta = dir.path().join("contexts/meta").join(&hash);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://build:2375"}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"currentContext":"remote"}"#,
        )
        .unwrap();
        let cfg = dir.path().to_str().unwrap();
        let e = resolve_endpoint(&env(&[("DOCKER_CONFIG", cfg)])).unwrap();
        assert_eq!(e.host, "tcp://build:2375");
        assert_eq!(e.source, "context remote");
        let e = resolve_endpoint(&env(&[
            ("DOCKER_CONFIG", cfg),
            ("DOCKER_CONTEXT", "default"),
        ]))
        .unwrap();
        assert_eq!(e.host, "unix:///var/run/docker.sock");
        let err = resolve_endpoint(&env(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn api_versions_compare() {
        assert!(api_at_least("1.45", 1, 39));
        assert!(!api_at_least("1.38", 1, 39));
        assert!(!api_at_least("garbage", 1, 39));
    }

    #[tokio::test]
    async fn a_missing_socket_is_a_clear_error() {
        let err = Engine::connect(
            Endpoint {
                host: "unix:///no/such/docker.sock".into(),
                tls: None,
                source: "DOCKER_HOST".into(),
            },
            Duration::from_secs(2),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unix:///no/such/docker.sock") && err.contains("DOCKER_HOST"),
            "{err}"
        );
    }
}
