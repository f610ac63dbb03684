//! Moving the engine's data root to another filesystem, instead of deleting to make room,
//! and switching its image store (classic or containerd's), in one restart.
//!
//! The engine is stopped through its service manager, the old root is copied (never moved:
//! it stays where it was until the user removes it), `daemon.json` is merged — only
//! `data-root` changes, every other key is kept — with a backup beside it, and the engine is
//! started again and asked where its root is. When any step after the stop fails, the
//! original `daemon.json` is put back (or removed, if there was none) and the engine is
//! started on its old root; the error says both what failed and what was restored.
//!
//! A move is a transaction. Everything that can refuse — `daemon.json` readable and
//! replaceable (not immutable, not a mount point, its directory writable), the target
//! absent or empty and apart from the old root, the service programs there — is asked
//! before the engine stops. A journal beside `daemon.json` records each step
//! ([`journal`]). SIGTERM or SIGINT during the move rolls it back (the engine restarted on
//! the old root, the partial copy removed) and the error says so
//! ([`MoveError::Interrupted`]); a run killed outright leaves the journal, and the next
//! move, or [`recover`], finishes or rolls back before anything else.

mod interrupt;
mod journal;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use headroom_disk::write_atomically;
use serde::{Deserialize, Serialize};

use crate::engine::{Endpoint, Engine};
use interrupt::{Halt, check_program, or_interrupt, pause_at};
pub use interrupt::{Interrupt, MovingGuard, interrupt_signals, moving};
pub use journal::{Journal, Recovered, Step, recover};

/// How the engine is stopped and started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceManager {
    /// Shown in reports and errors: `systemd`, or the script's path.
    pub name: String,
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

impl ServiceManager {
    /// systemd, as on GitHub-hosted runners: the socket unit too, or the next API call would
    /// start the engine again on its old root while the copy runs.
    pub fn systemd() -> ServiceManager {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect();
        ServiceManager {
            name: "systemd".into(),
            stop: argv(&["systemctl", "stop", "docker.socket", "docker.service"]),
            start: argv(&["systemctl", "start", "docker.service"]),
        }
    }

    /// A program called as `PROGRAM stop` and `PROGRAM start` (an init script, a test's own
    /// engine).
    pub fn script(program: &Path) -> ServiceManager {
        let p = program.display().to_string();
        ServiceManager {
            name: p.clone(),
            stop: vec![p.clone(), "stop".into()],
            start: vec![p, "start".into()],
        }
    }

    /// The service manager of this machine, when it has one headroom knows.
    pub fn detect() -> Option<ServiceManager> {
        Path::new("/run/systemd/system")
            .is_dir()
            .then(ServiceManager::systemd)
    }
}

/// What to move, where, and how.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MoveRequest {
    /// `/etc/docker/daemon.json` (or the simulated runner's).
    pub config: PathBuf,
    /// The engine's data root now (`docker info`'s `DockerRootDir`).
    pub from: PathBuf,
    /// The new data root: absent or an empty directory, on another filesystem; `from` to
    /// keep the root (a store switch alone).
    pub to: PathBuf,
    /// Switch the image store: `Some(true)` containerd's, `Some(false)` the classic one.
    pub containerd_store: Option<bool>,
    /// On a store switch, bring the tagged images across (`docker save` before, `docker
    /// load` after, through a file beside the data root that is removed after): the new store
    /// does not see the old one's.
    pub carry_images: bool,
    pub service: ServiceManager,
    /// The engine to ask, before and after.
    pub endpoint: Endpoint,
    /// How long the engine may take to stop, and to answer again.
    pub wait: Duration,
}

/// What a move did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Moved {
    pub from: PathBuf,
    pub to: PathBuf,
    pub config: PathBuf,
    /// The original `daemon.json`, kept beside it (none when there was no file).
    pub backup: Option<PathBuf>,
    /// The keys of `daemon.json` besides `data-root`, all kept.
    pub kept_keys: Vec<String>,
    /// Bytes the copy of the old root allocated on the new filesystem.
    pub copied_bytes: u64,
    /// The image store after the restart, when it was switched.
    pub containerd_store: Option<bool>,
    /// Tagged images brought across a store switch.
    pub carried_images: Vec<String>,
    pub seconds: f64,
    pub service: String,
    /// A move an earlier, killed run left halfway, finished or rolled back first.
    #[serde(default)]
    pub recovered: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    #[error("the new data root {}: {message}", path.display())]
    Target { path: PathBuf, message: String },
    #[error("stopping the engine ({service}): {message}; nothing was changed")]
    Stop { service: String, message: String },
    /// A step after the stop failed; `restored` says what was put back.
    #[error("{step}: {message}; {restored}")]
    Failed {
        step: &'static str,
        message: String,
        restored: String,
    },
    /// SIGTERM or SIGINT came during the move, at `step`: rolled back; `restored` says how.
    /// `code` is the status to exit with (143, 130).
    #[error("interrupted by {signal} while {step:?}: the move was rolled back: {restored}")]
    Interrupted {
        signal: &'static str,
        code: u8,
        step: Step,
        restored: String,
    },
}

const DATA_ROOT_KEY: &str = "data-root";

/// A `daemon.json` document.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// Read `daemon.json`: `None` when there is none. Anything but a JSON object is refused, with
/// the line and column of the first error.
pub fn read_config(path: &Path) -> Result<Option<(Vec<u8>, JsonObject)>, MoveError> {
    // Rewriting it would replace the link with a file: the user's setup changed behind them.
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_symlink() {
            let target = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_else(|_| "?".into());
            return Err(MoveError::Config {
                path: path.to_path_buf(),
                message: format!(
                    "a symbolic link (to {target}): headroom does not rewrite it; set data-root \
                     in the file it points to, or replace the link with a file; nothing was \
                     changed"
                ),
            });
        }
        if !m.is_file() {
            return Err(MoveError::Config {
                path: path.to_path_buf(),
                message: "not a regular file; nothing was changed".into(),
            });
        }
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(MoveError::Config {
                path: path.to_path_buf(),
                message: format!("reading it: {e}"),
            });
        }
    };
    // dockerd reads an empty file as no settings.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some((bytes, serde_json::Map::new())));
    }
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(map)) => Ok(Some((bytes, map))),
        Ok(_) => Err(MoveError::Config {
            path: path.to_path_buf(),
            message: "not a JSON object: the engine would not start with it; nothing was changed"
                .into(),
        }),
        Err(e) => Err(MoveError::Config {
            path: path.to_path_buf(),
            message: format!(
                "not valid JSON (line {}, column {}: {e}); nothing was changed",
                e.line(),
                e.column()
            ),
        }),
    }
}

/// `config` with `data-root` set to `to` and, given a store, `features.containerd-snapshotter`
/// set (the other features kept); every other key and value as it was.
pub fn merged(
    config: Option<&JsonObject>,
    to: &Path,
    containerd_store: Option<bool>,
) -> JsonObject {
    let mut map = config.cloned().unwrap_or_default();
    map.insert(
        DATA_ROOT_KEY.into(),
        serde_json::Value::String(to.display().to_string()),
    );
    if let Some(on) = containerd_store {
        let features = map
            .entry("features")
            .or_insert_with(|| serde_json::Value::Object(JsonObject::new()));
        if !features.is_object() {
            *features = serde_json::Value::Object(JsonObject::new());
        }
        if let Some(f) = features.as_object_mut() {
            f.insert(STORE_FEATURE.into(), serde_json::Value::Bool(on));
        }
    }
    map
}

const STORE_FEATURE: &str = "containerd-snapshotter";

fn backup_path(config: &Path) -> PathBuf {
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(".headroom-backup");
    config.with_file_name(name)
}

/// The backup's path for this move: `daemon.json.headroom-backup`, or, when an earlier move
/// left one (the original, before any move), the first free `….headroom-backup.N`: a backup is
/// never overwritten.
fn free_backup_path(config: &Path) -> PathBuf {
    let first = backup_path(config);
    if std::fs::symlink_metadata(&first).is_err() {
        return first;
    }
    (1..)
        .map(|n| {
            let mut name = first.file_name().unwrap_or_default().to_os_string();
            name.push(format!(".{n}"));
            first.with_file_name(name)
        })
        .find(|p| std::fs::symlink_metadata(p).is_err())
        .unwrap_or(first)
}

/// Check the new root can be used: absent or empty, not inside the old one (nor the old one
/// inside it).
pub fn check_target(from: &Path, to: &Path) -> Result<(), MoveError> {
    let bad = |message: String| MoveError::Target {
        path: to.to_path_buf(),
        message,
    };
    if !to.is_absolute() {
        return Err(bad("not an absolute path".into()));
    }
    if to.starts_with(from) || from.starts_with(to) {
        return Err(bad(format!(
            "overlaps the old data root {}",
            from.display()
        )));
    }
    match std::fs::symlink_metadata(to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(bad(e.to_string())),
        Ok(m) if m.file_type().is_symlink() => Err(bad("is a symbolic link".into())),
        Ok(m) if !m.is_dir() => Err(bad("exists and is not a directory".into())),
        Ok(_) => match std::fs::read_dir(to).map(|mut entries| entries.next().is_none()) {
            Ok(true) => Ok(()),
            Ok(false) => Err(bad("exists and is not empty".into())),
            Err(e) => Err(bad(e.to_string())),
        },
    }
}

async fn run_argv(argv: &[String]) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("an empty command")?;
    let mut command = std::process::Command::new(program);
    command.args(args).stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{} exited with {}: {}",
        argv.join(" "),
        out.status,
        stderr.trim()
    ))
}

/// Wait until the engine answers with its data root at `root` (and the image store `store`,
/// when given); what it last gave, or why it did not answer, on timeout.
async fn wait_for_root(
    endpoint: &Endpoint,
    root: &Path,
    store: Option<bool>,
    wait: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    let want = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let same = |p: &Path| p == root || p.canonicalize().is_ok_and(|c| c == want);
    loop {
        let last;
        match Engine::connect(endpoint.clone(), Duration::from_secs(2)).await {
            Ok(engine) => match engine.facts().await {
                Ok(f)
                    if f.data_root.as_deref().is_some_and(same)
                        && store.is_none_or(|s| s == f.containerd_store) =>
                {
                    return Ok(());
                }
                Ok(f) if f.data_root.as_deref().is_some_and(same) => {
                    last = format!(
                        "it answered with the {} image store (storage driver {})",
                        if f.containerd_store {
                            "containerd"
                        } else {
                            "classic"
                        },
                        f.storage_driver
                    );
                }
                Ok(f) => {
                    last = format!(
                        "it answered with its data root at {}",
                        f.data_root
                            .map(|p| p.display().to_string())
                            .unwrap_or_else(|| "an unknown path".into())
                    );
                }
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(format!("within {} s, {last}", wait.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Wait until the engine no longer answers.
async fn wait_stopped(endpoint: &Endpoint, wait: Duration) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    loop {
        if Engine::connect(endpoint.clone(), Duration::from_secs(1))
            .await
            .is_err()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("it still answered after {} s", wait.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Copy the old root to the new one: `cp -a` keeps hard links, owners, modes, extended
/// attributes (overlay2's whiteouts and opaque markers) and never follows a symbolic link;
/// `-x` never crosses into another filesystem mounted inside the old root.
async fn copy_root(from: &Path, to: &Path) -> Result<(), String> {
    // Killed (and reaped) when the move is interrupted and this future dropped: nothing may
    // write into the target once the roll back removes it.
    struct KillOnDrop(std::sync::Arc<duct::Handle>);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
        }
    }
    let what = format!("cp -a -x -T {} {}", from.display(), to.display());
    let handle = duct::cmd(
        "cp",
        [
            std::ffi::OsStr::new("-a"),
            "-x".as_ref(),
            "-T".as_ref(),
            from.as_os_str(),
            to.as_os_str(),
        ],
    )
    .stdin_null()
    .stdout_null()
    .stderr_capture()
    .unchecked()
    .start()
    .map_err(|e| format!("{what}: {e}"))?;
    let guard = KillOnDrop(std::sync::Arc::new(handle));
    let waiting = guard.0.clone();
    let out = tokio::task::spawn_blocking(move || waiting.wait().cloned())
        .await
        .map_err(|e| format!("{what}: {e}"))?
        .map_err(|e| format!("{what}: {e}"))?;
    drop(guard);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Move the data root (see the module's documentation), rolled back on SIGTERM or SIGINT.
pub async fn move_data_root(req: &MoveRequest) -> Result<Moved, MoveError> {
    move_data_root_until(req, &|_| {}, interrupt_signals()).await
}

/// [`move_data_root`], with `on_step` told each step once the journal records it, and
/// `interrupt` as what rolls it back. With `HEADROOM_PAUSE_AT=STEP` (`stopping`, `copying`,
/// `writing_config`, `starting`) in the environment, the move stops at that step, creates
/// the file `HEADROOM_PAUSE_FILE` names, and waits for the interruption: how tests send
/// signals at a known step.
pub async fn move_data_root_until(
    req: &MoveRequest,
    on_step: &(dyn Fn(Step) + Sync),
    interrupt: impl Future<Output = Interrupt> + Send,
) -> Result<Moved, MoveError> {
    let start = Instant::now();
    // A move a killed run left halfway is finished or rolled back before anything else; its
    // partial copy is known as ours by the journal, and removed.
    let recovered = match journal::recover(&req.config, &req.endpoint, req.wait).await? {
        journal::Recovered::Nothing => None,
        journal::Recovered::Completed(m) | journal::Recovered::RolledBack(m) => Some(m),
    };
    let original = read_config(&req.config)?;
    let moving = req.to != req.from;
    if moving {
        check_target(&req.from, &req.to)?;
    }
    // Everything that can refuse is asked before the engine stops.
    headroom_disk::check_replaceable(&req.config).map_err(|message| MoveError::Config {
        path: req.config.clone(),
        message: format!("{message}; the engine was not stopped"),
    })?;
    check_program(&req.service.stop, &req.service.name)?;
    check_program(&req.service.start, &req.service.name)?;
    let config = merged(
        original.as_ref().map(|(_, m)| m),
        &req.to,
        req.containerd_store,
    );
    let kept_keys: Vec<String> = config
        .keys()
        .filter(|k| *k != DATA_ROOT_KEY)
        .cloned()
        .collect();
    let mut text = serde_json::to_vec_pretty(&serde_json::Value::Object(config)).map_err(|e| {
        MoveError::Config {
            path: req.config.clone(),
            message: e.to_string(),
        }
    })?;
    text.push(b'\n');
    let backup = match &original {
        Some((bytes, _)) => {
            let b = free_backup_path(&req.config);
            write_atomically(&b, bytes).map_err(|e| MoveError::Config {
                path: b.clone(),
                message: format!("writing the backup: {e}; nothing was changed"),
            })?;
            Some(b)
        }
        None => None,
    };
    let mut journal = Journal {
        step: Step::Stopping,
        from: req.from.clone(),
        to: req.to.clone(),
        config: req.config.clone(),
        backup: backup.clone(),
        to_existed: moving && req.to.exists(),
        service: req.service.clone(),
        pid: std::process::id(),
    };
    journal.write()?;
    let carry = match (req.containerd_store, req.carry_images) {
        (Some(_), true) => match save_images(req).await {
            Ok(c) => Some(c),
            Err(message) => {
                journal.remove();
                return Err(MoveError::Stop {
                    service: req.service.name.clone(),
                    message: format!("saving the images to bring across: {message}"),
                });
            }
        },
        _ => None,
    };
    let _moving = MovingGuard::enter();
    let interrupt: Pin<&mut (dyn Future<Output = Interrupt> + Send)> = std::pin::pin!(interrupt);
    let mut interrupt = interrupt;
    let before = headroom_disk::available_bytes(req.to.parent().unwrap_or(&req.to)).ok();
    let pause = |step: Step| pause_at(step);
    let moved: Result<(), Halt> = async {
        on_step(Step::Stopping);
        // A point where whatever the hook set off (an interruption, a kill) is seen before
        // the step's work begins.
        tokio::task::yield_now().await;
        or_interrupt(&mut interrupt, async {}).await?;
        if pause(Step::Stopping) {
            return Err(Halt::Interrupted(interrupt.as_mut().await));
        }
        let stopped = match or_interrupt(&mut interrupt, run_argv(&req.service.stop)).await? {
            Ok(()) => or_interrupt(&mut interrupt, wait_stopped(&req.endpoint, req.wait)).await?,
            Err(e) => Err(e),
        };
        if let Err(message) = stopped {
            return Err(Halt::Failed("stopping the engine", message));
        }
        for (step, what) in [
            (Step::Copying, "copying the old data root"),
            (Step::WritingConfig, "writing daemon.json"),
            (Step::Starting, "starting the engine on the new data root"),
        ] {
            journal.step = step;
            journal
                .write()
                .map_err(|e| Halt::Failed("writing the move's journal", e.to_string()))?;
            on_step(step);
            tokio::task::yield_now().await;
            or_interrupt(&mut interrupt, async {}).await?;
            if pause(step) {
                return Err(Halt::Interrupted(interrupt.as_mut().await));
            }
            let done = match step {
                Step::Copying if moving => {
                    or_interrupt(&mut interrupt, copy_root(&req.from, &req.to)).await?
                }
                Step::Copying => Ok(()),
                Step::WritingConfig => req
                    .config
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| write_atomically(&req.config, &text))
                    .map_err(|e| format!("{}: {e}", req.config.display())),
                _ => match or_interrupt(&mut interrupt, run_argv(&req.service.start)).await? {
                    Ok(()) => {
                        or_interrupt(
                            &mut interrupt,
                            wait_for_root(&req.endpoint, &req.to, req.containerd_store, req.wait),
                        )
                        .await?
                    }
                    Err(e) => Err(e),
                },
            };
            done.map_err(|m| Halt::Failed(what, m))?;
        }
        if let Some((tar, images)) = &carry
            && !images.is_empty()
        {
            or_interrupt(&mut interrupt, load_images(req, tar))
                .await?
                .map_err(|m| Halt::Failed("loading the images into the new store", m))?;
        }
        Ok(())
    }
    .await;
    if let Some((tar, _)) = &carry {
        let _ = std::fs::remove_file(tar);
    }
    match moved {
        Ok(()) => {}
        Err(Halt::Failed(step, message)) => {
            let restored = journal.roll_back(&req.endpoint, req.wait).await;
            return Err(MoveError::Failed {
                step,
                message,
                restored,
            });
        }
        Err(Halt::Interrupted(interrupt)) => {
            let restored = journal.roll_back(&req.endpoint, req.wait).await;
            return Err(MoveError::Interrupted {
                signal: interrupt.signal,
                code: interrupt.code,
                step: journal.step,
                restored,
            });
        }
    }
    journal.step = Step::Done;
    journal.remove();
    on_step(Step::Done);
    let after = headroom_disk::available_bytes(req.to.parent().unwrap_or(&req.to)).ok();
    Ok(Moved {
        from: req.from.clone(),
        to: req.to.clone(),
        config: req.config.clone(),
        backup,
        kept_keys,
        copied_bytes: if moving {
            before
                .zip(after)
                .map(|(b, a)| b.saturating_sub(a))
                .unwrap_or(0)
        } else {
            0
        },
        containerd_store: req.containerd_store,
        carried_images: carry.map(|(_, images)| images).unwrap_or_default(),
        seconds: start.elapsed().as_secs_f64(),
        service: req.service.name.clone(),
        recovered,
    })
}

/// The docker CLI against the request's engine.
async fn docker_cli(req: &MoveRequest, args: Vec<String>) -> Result<String, String> {
    let what = format!("docker {}", args.join(" "));
    req.endpoint.cli(&what, args).await
}

/// Save the engine's tagged images to a file beside the data root; the file and the names.
async fn save_images(req: &MoveRequest) -> Result<(PathBuf, Vec<String>), String> {
    let listed = docker_cli(
        req,
        vec![
            "images".into(),
            "--format".into(),
            "{{.Repository}}:{{.Tag}}".into(),
        ],
    )
    .await?;
    let mut images: Vec<String> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("<none>"))
        .map(str::to_string)
        .collect();
    images.sort();
    images.dedup();
    let dir = req.from.parent().unwrap_or(&req.from);
    let tar = dir.join(format!(".headroom-carry-{}.tar", std::process::id()));
    if !images.is_empty() {
        let mut args = vec!["save".to_string(), "-o".into(), tar.display().to_string()];
        args.extend(images.iter().cloned());
        docker_cli(req, args).await?;
    }
    Ok((tar, images))
}

async fn load_images(req: &MoveRequest, tar: &Path) -> Result<(), String> {
    docker_cli(
        req,
        vec![
            "load".into(),
            "-q".into(),
            "-i".into(),
            tar.display().to_string(),
        ],
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_changes_only_the_data_root() {
        let text = br#"{"exec-opts": ["native.cgroupdriver=cgroupfs"], "data-root": "/var/lib/docker", "cgroup-parent": "/actions_job", "log-opts": {"max-size": "10m"}}"#;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, text).unwrap();
        let (bytes, map) = read_config(&path).unwrap().unwrap();
        assert_eq!(bytes, text);
        let out = merged(Some(&map), Path::new("/mnt/docker"), None);
        let mut keys: Vec<&String> = out.keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["cgroup-parent", "data-root", "exec-opts", "log-opts"]
        );
        assert_eq!(out["data-root"], "/mnt/docker");
        assert_eq!(out["log-opts"]["max-size"], "10m");
        assert_eq!(out["exec-opts"][0], "native.cgroupdriver=cgroupfs");
    }

    #[test]
    fn a_store_switch_sets_one_feature_and_keeps_the_others() {
        let map: JsonObject = serde_json::from_str(
            r#"{"features": {"buildkit": true}, "data-root": "/var/lib/docker"}"#,
        )
        .unwrap();
        let out = merged(Some(&map), Path::new("/var/lib/docker"), Some(true));
        assert_eq!(out["features"]["buildkit"], true);
        assert_eq!(out["features"]["containerd-snapshotter"], true);
        assert_eq!(out["data-root"], "/var/lib/docker");
        let out = merged(None, Path::new("/d"), Some(false));
        assert_eq!(out["features"]["containerd-snapshotter"], false);
        let odd: JsonObject = serde_json::from_str(r#"{"features": 3}"#).unwrap();
        let out = merged(Some(&odd), Path::new("/d"), Some(true));
        assert_eq!(out["features"]["containerd-snapshotter"], true);
    }

    #[test]
    fn a_linked_or_odd_config_is_refused_and_backups_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "{}").unwrap();
        let link = dir.path().join("daemon.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = read_config(&link).unwrap_err().to_string();
        assert!(
            e.contains("symbolic link") && e.contains("real.json"),
            "{e}"
        );
        let as_dir = dir.path().join("dir.json");
        std::fs::create_dir(&as_dir).unwrap();
        assert!(
            read_config(&as_dir)
                .unwrap_err()
                .to_string()
                .contains("regular file")
        );

        let config = dir.path().join("etc.json");
        assert_eq!(
            free_backup_path(&config),
            dir.path().join("etc.json.headroom-backup")
        );
        std::fs::write(dir.path().join("etc.json.headroom-backup"), "original").unwrap();
        assert_eq!(
            free_backup_path(&config),
            dir.path().join("etc.json.headroom-backup.1")
        );
        std::fs::write(dir.path().join("etc.json.headroom-backup.1"), "second").unwrap();
        assert_eq!(
            free_backup_path(&config),
            dir.path().join("etc.json.headroom-backup.2")
        );
    }

    #[test]
    fn a_bad_config_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, "{\n  \"a\": 1,\n  oops\n}").unwrap();
        let e = read_config(&path).unwrap_err().to_string();
        assert!(e.contains("daemon.json") && e.contains("line 3"), "{e}");
        std::fs::write(&path, "[1]").unwrap();
        let e = read_config(&path).unwrap_err().to_string();
        assert!(e.contains("not a JSON object"), "{e}");
        std::fs::write(&path, " \n").unwrap();
        assert!(read_config(&path).unwrap().unwrap().1.is_empty());
        assert!(
            read_config(&dir.path().join("none.json"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn targets_that_are_not_empty_or_overlap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("old");
        std::fs::create_dir(&from).unwrap();
        let ok = dir.path().join("new");
        assert!(check_target(&from, &ok).is_ok());
        std::fs::create_dir(&ok).unwrap();
        assert!(check_target(&from, &ok).is_ok(), "an empty directory");
        std::fs::write(ok.join("x"), "x").unwrap();
        let e = check_target(&from, &ok).unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
        assert!(check_target(&from, &from.join("sub")).is_err());
        assert!(check_target(&from, dir.path()).is_err());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        let e = check_target(&from, &link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(check_target(&from, Path::new("rel")).is_err());
    }

    #[test]
    fn an_atomic_write_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            backup_path(&path),
            dir.path().join("daemon.json.headroom-backup")
        );
    }
}
