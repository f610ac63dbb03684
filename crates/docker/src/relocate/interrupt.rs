//! A move's life under signals: the interruption a move rolls back on ([`Interrupt`], the
//! first SIGTERM or SIGINT), the flag that tells a caller a move must not be dropped
//! ([`moving`]), the checkpoints where an interruption is seen, the pause point tests send
//! signals at, and the service programs checked before the engine stops.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{MoveError, Step};

/// An interruption of a move: the signal, and the status a command exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupt {
    pub signal: &'static str,
    pub code: u8,
}

impl Interrupt {
    pub const TERM: Interrupt = Interrupt {
        signal: "SIGTERM",
        code: 143,
    };
    pub const INT: Interrupt = Interrupt {
        signal: "SIGINT",
        code: 130,
    };
}

/// The first SIGTERM or SIGINT from now on (the listeners are installed at the call, so a
/// signal that comes before the first poll is not lost). Never resolves where signals cannot
/// be listened to (outside a tokio runtime).
pub fn interrupt_signals() -> Pin<Box<dyn Future<Output = Interrupt> + Send>> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    Box::pin(async move {
        let term = async {
            match term {
                Some(mut t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let int = async {
            match int {
                Some(mut i) => {
                    i.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = term => Interrupt::TERM,
            () = int => Interrupt::INT,
        }
    })
}

static MOVING: AtomicUsize = AtomicUsize::new(0);

/// Whether a move is between stopping the engine and its end (done or rolled back): a
/// caller that catches SIGTERM/SIGINT must let it finish (it rolls back on the same
/// signal) rather than drop it and leave the engine stopped.
pub fn moving() -> bool {
    MOVING.load(Ordering::SeqCst) > 0
}

/// Held while a move may be between stopping the engine and its end (here, or in a
/// privileged helper this process waits for): [`moving`] is true meanwhile.
#[derive(Debug)]
pub struct MovingGuard;

impl MovingGuard {
    pub fn enter() -> MovingGuard {
        MOVING.fetch_add(1, Ordering::SeqCst);
        MovingGuard
    }
}

impl Drop for MovingGuard {
    fn drop(&mut self) {
        MOVING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A program the service manager runs: there, and executable.
pub(super) fn check_program(argv: &[String], service: &str) -> Result<(), MoveError> {
    let refuse = |message: String| MoveError::Stop {
        service: service.to_string(),
        message,
    };
    let Some(program) = argv.first() else {
        return Err(refuse("an empty command".into()));
    };
    let found = if program.contains('/') {
        is_executable(Path::new(program))
    } else {
        std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|d| is_executable(&d.join(program)))
        })
    };
    if found {
        Ok(())
    } else {
        Err(refuse(format!("{program} is not an executable program")))
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why the steps after the stop did not all happen.
pub(super) enum Halt {
    Failed(&'static str, String),
    Interrupted(Interrupt),
}

/// `fut`, unless `interrupt` comes first.
pub(super) async fn or_interrupt<T>(
    interrupt: &mut Pin<&mut (dyn Future<Output = Interrupt> + Send)>,
    fut: impl Future<Output = T>,
) -> Result<T, Halt> {
    tokio::select! {
        biased;
        i = interrupt.as_mut() => Err(Halt::Interrupted(i)),
        v = fut => Ok(v),
    }
}

/// `HEADROOM_PAUSE_AT` names `step`: create `HEADROOM_PAUSE_FILE` and say so.
pub(super) fn pause_at(step: Step) -> bool {
    let Some(at) = std::env::var_os("HEADROOM_PAUSE_AT") else {
        return false;
    };
    let name = serde_json::to_value(step)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    if at.to_str() != Some(name.as_str()) {
        return false;
    }
    if let Some(file) = std::env::var_os("HEADROOM_PAUSE_FILE") {
        let _ = std::fs::write(file, name);
    }
    true
}
