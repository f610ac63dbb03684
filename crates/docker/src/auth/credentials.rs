//! What was resolved: [`Credentials`] for one registry and where they came from.

use std::fmt;
use std::path::PathBuf;

use super::secret::Secret;

/// Where credentials came from, for reports. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialSource {
    /// `--password-stdin` (with the username from `--username` or the environment).
    Stdin,
    /// A pair of environment variables.
    Env { user_var: String, pass_var: String },
    /// An `auths` entry of a `config.json`.
    ConfigAuths { path: PathBuf },
    /// The `credsStore` helper named in `config.json`.
    CredsStore { helper: String },
    /// A per-registry `credHelpers` entry in `config.json`.
    CredHelper { helper: String },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("--password-stdin"),
            Self::Env { user_var, pass_var } => {
                write!(f, "environment ({user_var}/{pass_var})")
            }
            Self::ConfigAuths { path } => write!(f, "auths in {}", path.display()),
            Self::CredsStore { helper } => {
                write!(f, "credsStore docker-credential-{helper}")
            }
            Self::CredHelper { helper } => {
                write!(f, "credHelpers docker-credential-{helper}")
            }
        }
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// The server address the credentials belong to: the registry host, or
    /// [`DOCKER_HUB_SERVER`](super::DOCKER_HUB_SERVER) for Docker Hub (what the engine
    /// expects as `serveraddress`).
    pub server: String,
    pub source: CredentialSource,
}

impl Credentials {
    /// Docker's convention: a helper or `config.json` returning the username `<token>` means
    /// the password is an identity (refresh) token, to be sent as `identitytoken` rather than
    /// as a basic-auth password.
    pub fn is_identity_token(&self) -> bool {
        self.username == "<token>"
    }
}
