//! Ctrl-C and SIGTERM (CI's cancel) during a long lab run: they set a flag every step checks,
//! and reach the child running in the foreground, so the run ends soon and tears down what
//! it started on the way out.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

use anyhow::{Result, bail};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The exit status the signal calls for: 130 after SIGINT, 143 after SIGTERM.
static EXIT: AtomicU8 = AtomicU8::new(130);
/// The child running in the foreground now (0: none), to pass SIGTERM on to.
static CHILD: AtomicU32 = AtomicU32::new(0);

/// Watch for Ctrl-C and SIGTERM from now on (a thread of its own); `say` tells what happens.
pub fn watch(say: fn(&str)) {
    let spawned = std::thread::Builder::new()
        .name("lab-signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(mut term) =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => EXIT.store(143, Ordering::SeqCst),
                }
            });
            INTERRUPTED.store(true, Ordering::SeqCst);
            say("interrupted: stopping the current step, then tearing down");
            let child = CHILD.load(Ordering::SeqCst);
            if child != 0 {
                signal(child, rustix::process::Signal::TERM);
            }
        });
    if let Err(e) = spawned {
        say(&format!(
            "warning: no signal handler ({e}): Ctrl-C will not tear down"
        ));
    }
}

/// Whether Ctrl-C or SIGTERM came.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The exit status of an interrupted run: 130 after Ctrl-C, 143 after SIGTERM.
pub fn exit_code() -> u8 {
    EXIT.load(Ordering::SeqCst)
}

/// An error once interrupted: steps call it between their parts.
pub fn check() -> Result<()> {
    if interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// `pid` runs in the foreground now (0: nothing does): a signal is passed on to it.
pub fn set_foreground(pid: u32) {
    CHILD.store(pid, Ordering::SeqCst);
}

/// Send `sig` to `pid`; whether it was delivered.
pub fn signal(pid: u32, sig: rustix::process::Signal) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|p| rustix::process::kill_process(p, sig).is_ok())
}
