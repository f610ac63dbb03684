//! `ssh://[user@]host[:port]` engines, reached as the Docker CLI reaches them: for each
//! connection, the system's `ssh` runs `docker system dial-stdio` on the host, and its stdin
//! and stdout are the connection. The client connects to a unix socket in a private
//! directory of its own, which stands for the engine while the proxy lives. ssh's own
//! configuration (keys, agent, `~/.ssh/config`, known hosts) applies, with `BatchMode`: it
//! never stops to ask for a password or a host key.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Where to ssh to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    /// `user@host:port` (after `ssh://`); a path, a query or an empty host is refused, as the
    /// Docker CLI refuses them.
    pub fn parse(rest: &str) -> Result<SshTarget, String> {
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err("an ssh:// address is ssh://[user@]host[:port], with no path".into());
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err("an empty user before '@'".into()),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("port {p:?} is not a number from 1 to 65535"))?;
                (h.trim_start_matches('[').trim_end_matches(']'), Some(port))
            }
            _ => (hostport, None),
        };
        if host.is_empty() || host.starts_with('-') {
            return Err(format!("host {host:?} is not a host name"));
        }
        Ok(SshTarget {
            user,
            host: host.to_string(),
            port: port.filter(|p| *p != 0),
        })
    }

    /// The `ssh` command line that opens one connection to the engine.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec!["ssh".to_string(), "-o".into(), "BatchMode=yes".into()];
        if let Some(u) = &self.user {
            argv.extend(["-l".into(), u.clone()]);
        }
        if let Some(p) = self.port {
            argv.extend(["-p".into(), p.to_string()]);
        }
        argv.extend([
            "--".into(),
            self.host.clone(),
            "docker".into(),
            "system".into(),
            "dial-stdio".into(),
        ]);
        argv
    }
}

/// A running proxy: a unix socket whose connections are ssh sessions to the engine.
pub struct SshProxy {
    dir: PathBuf,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    /// The last line ssh wrote to its stderr: why a connection failed.
    last_error: Arc<Mutex<String>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SshProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshProxy")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl SshProxy {
    pub fn start(target: &SshTarget) -> Result<SshProxy, String> {
        let dir = private_dir().map_err(|e| format!("a directory for the ssh proxy: {e}"))?;
        let socket = dir.join("docker.sock");
        let listener = UnixListener::bind(&socket)
            .map_err(|e| format!("listening on {}: {e}", socket.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let last_error = Arc::new(Mutex::new(String::new()));
        let argv = target.argv();
        let (s, e) = (stop.clone(), last_error.clone());
        let thread = std::thread::Builder::new()
            .name("ssh-proxy".into())
            .spawn(move || accept(listener, &argv, &s, &e))
            .map_err(|e| format!("starting the ssh proxy: {e}"))?;
        Ok(SshProxy {
            dir,
            socket,
            stop,
            last_error,
            thread: Some(thread),
        })
    }

    /// The socket to connect to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// What ssh last said on its stderr (empty when it said nothing).
    pub fn last_error(&self) -> String {
        self.last_error
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }
}

impl Drop for SshProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept.
        let _ = UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A new directory only we can enter, under `$XDG_RUNTIME_DIR` or `/tmp`.
fn private_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    for n in 0..100u32 {
        let dir = base.join(format!("headroom-ssh-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free name for it"))
}

fn accept(listener: UnixListener, argv: &[String], stop: &AtomicBool, last: &Arc<Mutex<String>>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let argv = argv.to_vec();
        let last = last.clone();
        let _ = std::thread::Builder::new()
            .name("ssh-conn".into())
            .spawn(move || serve(conn, &argv, &last));
    }
}

/// One connection: an ssh session piped both ways, until either side closes.
fn serve(conn: UnixStream, argv: &[String], last: &Mutex<String>) {
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child: Child = match child {
        Ok(c) => c,
        Err(e) => {
            if let Ok(mut l) = last.lock() {
                *l = format!("running ssh: {e}");
            }
            return;
        }
    };
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let Ok(mut from_client) = conn.try_clone() else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let mut to_client = conn;
    std::thread::scope(|s| {
        let said = s.spawn(|| {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty())
                && let Ok(mut l) = last.lock()
            {
                *l = line.trim().to_string();
            }
        });
        s.spawn(|| {
            pump(&mut from_client, &mut stdin);
            drop(stdin);
        });
        pump(&mut stdout, &mut to_client);
        // ssh is done: what it said is recorded before the client sees the connection close,
        // so the client's error can quote it.
        let _ = said.join();
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
    let _ = child.kill();
    let _ = child.wait();
}

/// Copy until either side is done, each read passed on at once. (`std::io::copy` may splice
/// a socket into a pipe, which can hold a short request back until more data or the end.)
fn pump(from: &mut impl Read, to: &mut impl Write) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_the_docker_cli_reads_them() {
        let t = SshTarget::parse("builder@gpu-box:2222").unwrap();
        assert_eq!(t.user.as_deref(), Some("builder"));
        assert_eq!((t.host.as_str(), t.port), ("gpu-box", Some(2222)));
        let t = SshTarget::parse("gpu-box").unwrap();
        assert_eq!((t.user, t.port), (None, None));
        let t = SshTarget::parse("[::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", Some(22)));
        for bad in [
            "",
            "u@",
            "@h",
            "h/var/run/docker.sock",
            "h:port",
            "-oProxyCommand=x",
        ] {
            assert!(SshTarget::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_command_line_never_lets_the_host_be_an_option() {
        let t = SshTarget::parse("me@box:2200").unwrap();
        let argv = t.argv();
        let dashdash = argv.iter().position(|a| a == "--").unwrap();
        assert_eq!(argv[dashdash + 1], "box");
        assert_eq!(&argv[dashdash + 2..], ["docker", "system", "dial-stdio"]);
        assert!(argv.contains(&"BatchMode=yes".to_string()));
        assert!(argv.windows(2).any(|w| w == ["-p", "2200"]));
        assert!(argv.windows(2).any(|w| w == ["-l", "me"]));
    }
}
