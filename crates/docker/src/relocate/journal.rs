//! The move's journal: one JSON file beside `daemon.json` (`daemon.json.headroom-move`),
//! rewritten atomically at each step, removed when the move is done or rolled back. A run
//! killed mid-move (SIGKILL, power loss) leaves it; the next move, or the pipeline before
//! it asks the engine anything, reads it and finishes or rolls back ([`recover`]), so the
//! partial copy it names is known as headroom's own and never blocks a later run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use headroom_disk::write_atomically;
use serde::{Deserialize, Serialize};

use super::{MoveError, ServiceManager, run_argv, wait_for_root, wait_stopped};
use crate::engine::{Endpoint, Engine};

/// A step of a move, as the journal records it and a hook sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Every check passed; the engine is about to be stopped.
    Stopping,
    /// The engine is stopped; the old root is being copied.
    Copying,
    /// The copy is complete; `daemon.json` is being replaced.
    WritingConfig,
    /// `daemon.json` names the new root; the engine is being started.
    Starting,
    /// The engine answers on the new root.
    Done,
}

/// What the journal records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub step: Step,
    pub from: PathBuf,
    pub to: PathBuf,
    pub config: PathBuf,
    /// The original `daemon.json`'s backup; `None` when there was no file.
    pub backup: Option<PathBuf>,
    /// Whether the target directory was there (empty) before the copy: then only its
    /// entries are removed on a roll back.
    pub to_existed: bool,
    pub service: ServiceManager,
    pub pid: u32,
}

/// The journal's path for `config`.
pub fn path(config: &Path) -> PathBuf {
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(".headroom-move");
    config.with_file_name(name)
}

impl Journal {
    pub(super) fn write(&self) -> Result<(), MoveError> {
        let p = path(&self.config);
        let mut text = serde_json::to_vec_pretty(self).unwrap_or_default();
        text.push(b'\n');
        write_atomically(&p, &text).map_err(|e| MoveError::Config {
            path: p.clone(),
            message: format!("writing the move's journal: {e}"),
        })
    }

    /// Read the journal beside `config`, if there is one.
    pub fn read(config: &Path) -> Result<Option<Journal>, MoveError> {
        let p = path(config);
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| MoveError::Config {
                    path: p.clone(),
                    message: format!(
                        "a move's journal that cannot be read ({e}); look at it, then remove it"
                    ),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(MoveError::Config {
                path: p,
                message: e.to_string(),
            }),
        }
    }

    pub(super) fn remove(&self) {
        let _ = std::fs::remove_file(path(&self.config));
    }

    /// Remove the partial copy: the target's entries (and the target, when the move made
    /// it). Never crosses into another filesystem, never follows a link. What could not be
    /// removed, if anything.
    pub(super) fn remove_copy(&self) -> Result<(), String> {
        if self.from == self.to {
            return Ok(());
        }
        let mut errors = Vec::new();
        // A second pass catches what a copy being killed wrote in its last instant.
        for _ in 0..2 {
            errors.clear();
            if self.to_existed {
                if let Ok(entries) = std::fs::read_dir(&self.to) {
                    for e in entries.flatten() {
                        let out = headroom_disk::remove_tree(&e.path(), &[], &|_| {});
                        errors.extend(out.errors);
                    }
                }
            } else {
                errors.extend(headroom_disk::remove_tree(&self.to, &[], &|_| {}).errors);
            }
            if errors.is_empty() {
                return Ok(());
            }
        }
        Err(errors.into_iter().take(3).collect::<Vec<_>>().join("; "))
    }

    /// Put everything back: `daemon.json` as it was, the engine on the old root, the
    /// partial copy removed, the journal removed. Says what it did.
    pub(super) async fn roll_back(&self, endpoint: &Endpoint, wait: Duration) -> String {
        let original = match &self.backup {
            Some(b) => match std::fs::read(b) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    return format!(
                        "the backup {} cannot be read ({e}): put it back as {} by hand, then \
                         start the engine; the journal {} is kept",
                        b.display(),
                        self.config.display(),
                        path(&self.config).display()
                    );
                }
            },
            None => None,
        };
        // The engine is stopped only when it must be: when it does not already run on the
        // old root (it may never have been stopped).
        let on_old = on_root(endpoint, &self.from).await;
        if !on_old {
            let _ = run_argv(&self.service.stop).await;
            let _ = wait_stopped(endpoint, wait).await;
        }
        let config = if self.step >= Step::WritingConfig || !on_old {
            match &original {
                Some(bytes) => write_atomically(&self.config, bytes)
                    .map(|()| format!("{} restored", self.config.display())),
                None => match std::fs::remove_file(&self.config) {
                    Ok(()) => Ok(format!(
                        "{} removed (there was none)",
                        self.config.display()
                    )),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        Ok(format!("{} left absent", self.config.display()))
                    }
                    Err(e) => Err(e),
                },
            }
        } else {
            Ok(format!("{} untouched", self.config.display()))
        };
        let config = match config {
            Ok(done) => done,
            Err(e) => {
                return format!(
                    "restoring {} FAILED ({e}): {}; the journal {} is kept",
                    self.config.display(),
                    match &self.backup {
                        Some(b) => format!("put its backup {} back by hand", b.display()),
                        None => "remove it by hand (there was none before)".into(),
                    },
                    path(&self.config).display()
                );
            }
        };
        let engine = if on_old {
            format!("the engine runs on {}", self.from.display())
        } else {
            match run_argv(&self.service.start).await {
                Ok(()) => match wait_for_root(endpoint, &self.from, None, wait).await {
                    Ok(()) => format!("the engine runs on {} again", self.from.display()),
                    Err(e) => format!(
                        "the engine was started but is not back on {} ({e})",
                        self.from.display()
                    ),
                },
                Err(e) => format!("starting the engine again failed ({e})"),
            }
        };
        let copy = if self.from == self.to {
            String::new()
        } else {
            match self.remove_copy() {
                Ok(()) => format!("; the partial copy in {} was removed", self.to.display()),
                Err(e) => format!(
                    "; the partial copy in {} could not all be removed ({e})",
                    self.to.display()
                ),
            }
        };
        if !copy.contains("could not") {
            // Rolled back whole: the backup this move made is the file as it is again.
            if let (Some(b), Some(bytes)) = (&self.backup, &original)
                && std::fs::read(&self.config).is_ok_and(|now| &now == bytes)
            {
                let _ = std::fs::remove_file(b);
            }
            self.remove();
        }
        format!("{config}, {engine}{copy}")
    }
}

/// Whether the engine answers now, with its data root at `root`.
async fn on_root(endpoint: &Endpoint, root: &Path) -> bool {
    let Ok(engine) = Engine::connect(endpoint.clone(), Duration::from_secs(3)).await else {
        return false;
    };
    let want = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    engine
        .facts()
        .await
        .ok()
        .and_then(|f| f.data_root)
        .is_some_and(|p| p == root || p.canonicalize().is_ok_and(|c| c == want))
}

/// What [`recover`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovered {
    /// No journal: no move was left halfway.
    Nothing,
    /// The engine already answered on the new root: the move was complete.
    Completed(String),
    /// The move was rolled back: what was put back.
    RolledBack(String),
}

/// Finish or roll back a move a killed run left halfway (see the module's documentation):
/// before anything else asks the engine, or a move looks at its target.
pub async fn recover(
    config: &Path,
    endpoint: &Endpoint,
    wait: Duration,
) -> Result<Recovered, MoveError> {
    let Some(journal) = Journal::read(config)? else {
        return Ok(Recovered::Nothing);
    };
    if journal.pid != std::process::id()
        && Path::new(&format!("/proc/{}", journal.pid)).exists()
        && std::fs::read_link(format!("/proc/{}/exe", journal.pid))
            .ok()
            .zip(std::env::current_exe().ok())
            .is_some_and(|(a, b)| a == b)
    {
        return Err(MoveError::Config {
            path: path(config),
            message: format!(
                "another headroom (pid {}) is moving the data root; wait for it",
                journal.pid
            ),
        });
    }
    if journal.from != journal.to && on_root(endpoint, &journal.to).await {
        journal.remove();
        return Ok(Recovered::Completed(format!(
            "a move of the data root from {} to {} left halfway was complete: the engine \
             answers on {}",
            journal.from.display(),
            journal.to.display(),
            journal.to.display()
        )));
    }
    let done = journal.roll_back(endpoint, wait).await;
    Ok(Recovered::RolledBack(format!(
        "a move of the data root from {} to {} left halfway (at step {:?}) was rolled back: \
         {done}",
        journal.from.display(),
        journal.to.display(),
        journal.step
    )))
}
