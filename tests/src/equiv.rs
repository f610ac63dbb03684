//! Running RUN scripts as a build runs them, with every external command replaced by a stub,
//! to compare what a sequence of RUNs does with what the RUN `lint --fix` merged them into.
//!
//! A run happens in a chroot (root only): hard links to the real `dash` and `bash` (and the
//! libraries they load), `/bin/sh` pointing at one of them, `/dev/null`, and a copy of the
//! stub script under every name the scripts could run — each bare word of the scripts in `/usr/bin`
//! (where `/bin`, `/sbin`, `/usr/sbin` and `/usr/local/*bin` point too), and each absolute
//! path written in them. The directories the scripts `cd` into exist. Builtins stay real.
//!
//! A stub first reads its standard input to the end (so the members of a pipeline record in
//! order), then appends one line to `/.equiv/trace`: its name, its arguments, the working
//! directory, the umask and the exported environment. It numbers its call (`/.equiv/count`)
//! and fails (status 1) when the number is in `/.equiv/fail` (or that file says `all`).
//!
//! The original sequence runs each script as `/bin/sh -c SCRIPT` in order in one root (the
//! files a RUN writes stay for the next), stopping at the first non-zero status; the merged
//! script runs once in a fresh root. Both see `PATH`, `HOME=/root`, `LC_ALL=C` and nothing
//! else, `/` as working directory and `/dev/null` as input.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use headroom_dockerfile::fix::{FixId, Fixed};
use headroom_dockerfile::{Dockerfile, Instruction, Keyword};

/// The shell `/bin/sh` is in the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Dash,
    /// bash started as `sh`: POSIX mode, as on images where `/bin/sh` is bash.
    BashAsSh,
}

impl Shell {
    pub const ALL: [Shell; 2] = [Shell::Dash, Shell::BashAsSh];

    fn target(self) -> &'static str {
        match self {
            Shell::Dash => "dash",
            Shell::BashAsSh => "bash",
        }
    }
}

/// Which calls of the stubs fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failures {
    /// The calls with these numbers (1-based, counted over the whole run).
    Calls(BTreeSet<usize>),
    /// Every call.
    All,
}

/// What a run did: the stubs' trace and whether it ended with status zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub trace: Vec<String>,
    pub success: bool,
}

const STUB: &str = r#"#!/bin/dash
while read -r _ ; do :; done
name=${0##*/}
if [ -e /.equiv/normalize ]; then
  case $name in
    rm|apt-get|apt)
      cleanup=1
      for a; do
        case $a in
          -*|clean|autoclean) ;;
          /var/lib/apt/lists*|/var/cache/apt*|/root/.cache/pip*|/tmp/?*|/var/tmp/?*)
            [ "$name" = rm ] || cleanup=0 ;;
          *) cleanup=0 ;;
        esac
      done
      [ $cleanup = 1 ] && exit 0 ;;
  esac
fi
n=0
read -r n < /.equiv/count
n=$((n + 1))
echo "$n" > /.equiv/count
line=$name
for a; do
  if [ -e /.equiv/normalize ]; then
    case $a in --no-cache-dir|--no-cache) continue ;; esac
  fi
  line="$line [$a]"
done
line="$line cwd=$PWD umask=$(umask)"
env=$(export -p | while read -r v; do
  case $v in
    "export PWD="*|"export OLDPWD="*|"export SHLVL="*|"export _="*) ;;
    *) printf ' %s' "$v" ;;
  esac
done)
printf '%s env:%s\n' "$line" "$env" >> /.equiv/trace
while read -r f; do
  if [ "$f" = all ] || [ "$f" = "$n" ]; then exit 1; fi
done < /.equiv/fail
exit 0
"#;

/// The PATH of a run (Docker's default).
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A directory the tests may make roots in, with the shells, their libraries and `/dev/null`
/// ready to be linked; made once per test process.
fn template() -> &'static Path {
    static T: OnceLock<tempfile::TempDir> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("headroom-equiv-")
            .tempdir()
            .expect("tempdir");
        let t = dir.path();
        for d in ["usr/bin", "usr/lib", "usr/lib64", "dev", "stub"] {
            fs::create_dir_all(t.join(d)).expect("mkdir");
        }
        for shell in ["dash", "bash"] {
            let real = Path::new("/bin").join(shell);
            fs::copy(&real, t.join("usr/bin").join(shell)).expect("copy shell");
            let ldd = crate::sh("ldd", &[real.to_str().expect("utf-8")]);
            for lib in ldd.split_whitespace().filter(|w| w.starts_with('/')) {
                let to = t.join(lib.trim_start_matches('/'));
                let to = to
                    .strip_prefix(t)
                    .ok()
                    .and_then(|rel| {
                        // /lib and /lib64 are links into /usr in the root.
                        let s = rel.to_str()?;
                        let s = s.strip_prefix("usr/").unwrap_or(s);
                        Some(t.join("usr").join(s))
                    })
                    .expect("library path");
                fs::create_dir_all(to.parent().expect("parent")).expect("mkdir lib");
                fs::copy(lib, &to).expect("copy library");
            }
        }
        crate::sh(
            "mknod",
            &[
                "-m",
                "666",
                t.join("dev/null").to_str().expect("utf-8"),
                "c",
                "1",
                "3",
            ],
        );
        let stub = t.join("stub/stub");
        fs::write(&stub, STUB).expect("write stub");
        crate::sh("chmod", &["755", stub.to_str().expect("utf-8")]);
        dir
    })
    .path()
}

/// Copy `from` to `to` as hard links (directories made, symbolic links made again).
fn link_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let ty = e.file_type().expect("file type");
        if ty.is_dir() {
            link_tree(&src, &dst);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).expect("readlink"), &dst)
                .expect("symlink");
        } else {
            fs::hard_link(&src, &dst).expect("hard link");
        }
    }
}

/// The words of `scripts` a stub is made for, and the directories made: bare words become
/// stubs in /usr/bin, absolute paths stubs at that path, `cd` targets directories.
fn names(scripts: &[&str]) -> (BTreeSet<String>, BTreeSet<String>, BTreeSet<String>) {
    let mut bare = BTreeSet::new();
    let mut paths = BTreeSet::new();
    let mut dirs = BTreeSet::from(["/tmp".to_string(), "/root".to_string()]);
    for s in scripts {
        let words: Vec<&str> = s
            .split(|c: char| c.is_whitespace() || ";&|()<>`\"'{}=".contains(c))
            .filter(|w| !w.is_empty())
            .collect();
        for (i, w) in words.iter().enumerate() {
            let plain = |w: &str| {
                w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.+-/@:".contains(c))
            };
            if !plain(w) || w.contains("..") {
                continue;
            }
            let after_cd = i > 0 && words.get(i - 1) == Some(&"cd");
            if after_cd {
                let p = if w.starts_with('/') {
                    w.to_string()
                } else {
                    format!("/{w}")
                };
                dirs.insert(p.trim_end_matches('/').to_string());
            } else if w.starts_with('/') && !w.ends_with('/') && w.len() > 1 {
                paths.insert(w.to_string());
            } else if !w.contains('/') && !w.starts_with('-') {
                bare.insert(w.to_string());
            }
        }
    }
    (bare, paths, dirs)
}

/// A root for `scripts`, ready to run in.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(scripts: &[&str], shell: Shell, normalize: bool) -> Root {
        let t = template();
        let dir = tempfile::Builder::new()
            .prefix("root-")
            .tempdir_in(t)
            .expect("tempdir");
        let r = dir.path();
        link_tree(&t.join("usr"), &r.join("usr"));
        link_tree(&t.join("dev"), &r.join("dev"));
        for (link, target) in [
            ("bin", "usr/bin"),
            ("sbin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("usr/sbin", "bin"),
            ("usr/local/bin", "../bin"),
            ("usr/local/sbin", "../bin"),
        ] {
            let at = r.join(link);
            fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
            std::os::unix::fs::symlink(target, at).expect("symlink");
        }
        std::os::unix::fs::symlink(shell.target(), r.join("usr/bin/sh")).expect("sh link");
        let stub = t.join("stub/stub");
        let (bare, paths, dirs) = names(scripts);
        let keep = ["sh", "dash", "bash"];
        // Copies, not links: a script may write into a stub (`echo x > /out/x`), and that
        // must change nothing outside its own root.
        for b in bare.iter().filter(|b| !keep.contains(&b.as_str())) {
            let _ = fs::copy(&stub, r.join("usr/bin").join(b));
        }
        for d in &dirs {
            let _ = fs::create_dir_all(r.join(d.trim_start_matches('/')));
        }
        // Deepest first, so that a path below another makes the upper one a directory.
        let mut paths: Vec<&String> = paths.iter().collect();
        paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
        for p in paths {
            let at = r.join(p.trim_start_matches('/'));
            // Through the links of the root (`/bin/x` is `/usr/bin/x`), never out of it.
            if at.symlink_metadata().is_ok()
                || fs::canonicalize(r)
                    .ok()
                    .zip(at.parent().and_then(|p| fs::canonicalize(p).ok()))
                    .is_some_and(|(root, parent)| !parent.starts_with(root))
            {
                continue;
            }
            if at.parent().is_some_and(|p| fs::create_dir_all(p).is_ok()) {
                let _ = fs::copy(&stub, &at);
            }
        }
        fs::create_dir_all(r.join(".equiv")).expect("mkdir .equiv");
        fs::write(r.join(".equiv/count"), "0\n").expect("count");
        fs::write(r.join(".equiv/trace"), "").expect("trace");
        if normalize {
            fs::write(r.join(".equiv/normalize"), "").expect("normalize");
        }
        Root { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn set_failures(&self, failures: &Failures) {
        let text = match failures {
            Failures::All => "all\n".to_string(),
            Failures::Calls(c) => c.iter().map(|n| format!("{n}\n")).collect(),
        };
        fs::write(self.path().join(".equiv/fail"), text).expect("fail file");
    }

    /// `/bin/sh -c script` in the root; whether it exited 0.
    fn run(&self, script: &str) -> bool {
        let log = fs::File::create(self.path().with_extension("log")).expect("log");
        let mut child = Command::new("chroot")
            .arg(self.path())
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .envs([("PATH", PATH), ("HOME", "/root"), ("LC_ALL", "C")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("chroot");
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status.success();
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(self.path().with_extension("log")).unwrap_or_default();
                panic!("a script ran for more than 30 s: {script:?}\n{log}");
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    fn trace(&self) -> Vec<String> {
        fs::read_to_string(self.path().join(".equiv/trace"))
            .expect("trace")
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// Run `scripts` as consecutive RUNs: each in a fresh shell, in one root, up to the first
/// that fails.
pub fn run_sequence(
    scripts: &[&str],
    all: &[&str],
    shell: Shell,
    failures: &Failures,
    normalize: bool,
) -> Outcome {
    let root = Root::new(all, shell, normalize);
    root.set_failures(failures);
    let mut success = true;
    for s in scripts {
        if !root.run(s) {
            success = false;
            break;
        }
    }
    Outcome {
        trace: root.trace(),
        success,
    }
}

/// The failure patterns for a run whose stubs are called `n` times when none fails: every
/// subset when `n` is small, otherwise none and each one alone; and every call.
pub fn patterns(n: usize) -> Vec<Failures> {
    let mut out = Vec::new();
    if n <= 4 {
        for mask in 0u32..(1 << n) {
            let set = (0..n)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| i + 1)
                .collect();
            out.push(Failures::Calls(set));
        }
    } else {
        out.push(Failures::Calls(BTreeSet::new()));
        for i in 1..=n {
            out.push(Failures::Calls(BTreeSet::from([i])));
        }
    }
    out.push(Failures::All);
    out
}

/// One difference between the original RUNs and the merged one.
#[derive(Debug)]
pub struct Mismatch {
    pub shell: Shell,
    pub failures: Failures,
    pub original: Outcome,
    pub merged: Outcome,
}

/// Compare `original` (consecutive RUN scripts) with `merged` under both shells and every
/// failure pattern; the first difference, and how many runs were compared.
pub fn compare(original: &[&str], merged: &str, normalize: bool) -> (Option<Mismatch>, usize) {
    let mut all: Vec<&str> = original.to_vec();
    all.push(merged);
    let mut runs = 0;
    for shell in Shell::ALL {
        let none = Failures::Calls(BTreeSet::new());
        let base = run_sequence(original, &all, shell, &none, normalize);
        for failures in patterns(base.trace.len()) {
            let o = run_sequence(original, &all, shell, &failures, normalize);
            let m = run_sequence(&[merged], &all, shell, &failures, normalize);
            runs += 1;
            if o != m {
                return (
                    Some(Mismatch {
                        shell,
                        failures,
                        original: o,
                        merged: m,
                    }),
                    runs,
                );
            }
        }
    }
    (None, runs)
}

/// A merge `lint --fix` made: the original RUN scripts (every RUN from the first member to
/// the last, moved-away ones included) and the merged RUN's script.
#[derive(Debug, Clone)]
pub struct Merge {
    /// 1-based line of the first RUN in the original.
    pub line: usize,
    pub original: Vec<String>,
    pub merged: String,
    /// Another fix (a flag, a cleanup moved or added) touched these lines too: cleanups and
    /// the cache flags are left out of the comparison.
    pub other_fixes: bool,
}

fn lines_in(description: &str) -> Vec<usize> {
    description
        .split_once("(lines ")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| {
            list.split(", ")
                .filter_map(|n| n.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn script(inst: &Instruction) -> String {
    inst.shell().map(|w| w.text.clone()).unwrap_or_default()
}

/// The merges of `fixed` (the fix of `before`, read as `after`), each matched with the RUN
/// that replaced it; panics when the fixed file does not line up with the original.
pub fn merges(before: &Dockerfile, fixed: &Fixed, after: &Dockerfile) -> Vec<Merge> {
    let at_line = |l: usize| {
        before
            .instructions
            .iter()
            .position(|i| i.line == l)
            .unwrap_or_else(|| panic!("no instruction at line {l}"))
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut gone = BTreeSet::new();
    for c in &fixed.changes {
        match c.id {
            FixId::MergeRuns => {
                let g: Vec<usize> = lines_in(&c.description).into_iter().map(at_line).collect();
                assert!(g.len() >= 2, "a merge of fewer than two RUNs: {c:?}");
                groups.push(g);
            }
            FixId::MoveCleanup if c.description.ends_with("the later RUN is gone") => {
                let i = before
                    .instructions
                    .iter()
                    .position(|i| i.end_line == c.end_line && i.keyword == Keyword::Run)
                    .expect("the RUN that went");
                gone.insert(i);
            }
            _ => {}
        }
    }
    // What the fixed file's instructions must be, in order: (original index, group).
    let mut expected: Vec<(usize, Option<usize>)> = Vec::new();
    for i in 0..before.instructions.len() {
        let group = groups.iter().position(|g| g.contains(&i));
        match group {
            Some(g) if groups[g][0] != i => {}
            Some(g) => expected.push((i, Some(g))),
            None if gone.contains(&i) => {}
            None => expected.push((i, None)),
        }
    }
    assert_eq!(
        expected.len(),
        after.instructions.len(),
        "the fixed file's instructions do not line up with the original's"
    );
    let mut out = Vec::new();
    for (&(i, g), got) in expected.iter().zip(&after.instructions) {
        let inst = &before.instructions[i];
        assert_eq!(inst.keyword, got.keyword, "instruction {i} of the original");
        let Some(g) = g else { continue };
        let group = &groups[g];
        let (first, last) = (group[0], *group.last().expect("group"));
        let span = before.instructions[first].line..=before.instructions[last].end_line;
        let original: Vec<String> = (first..=last)
            .map(|k| {
                let inst = &before.instructions[k];
                assert_eq!(inst.keyword, Keyword::Run, "only RUNs are merged");
                script(inst)
            })
            .collect();
        let other_fixes = fixed.changes.iter().any(|c| {
            c.id != FixId::MergeRuns && c.line <= *span.end() && *span.start() <= c.end_line
        });
        out.push(Merge {
            line: inst.line,
            original,
            merged: script(got),
            other_fixes,
        });
    }
    out
}

/// The lab's deterministic generator (SplitMix64), counting in `usize` as the scripts'
/// indices do.
#[derive(Debug, Clone)]
pub struct Rng(headroom_lab::workload::Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(headroom_lab::workload::Rng::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0.below(n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        self.0.pick::<&'a str>(items)
    }
}

/// Generates RUN scripts: stub commands (`c1`…`c4`, each call with its own argument) and
/// builtins that change the shell, combined with `&&`, `||`, `;`, pipes, subshells, groups,
/// `if`, `for`, `case`, `!`, shell options, trailing `;`, comments and line continuations.
#[derive(Debug)]
pub struct Generator {
    rng: Rng,
    calls: usize,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
            calls: 0,
        }
    }

    fn call(&mut self) -> String {
        self.calls += 1;
        let c = self.rng.pick(&["c1", "c2", "c3", "c4"]);
        match self.rng.below(6) {
            0 => format!("{c} a{} \"$V\"", self.calls),
            1 => format!("{c} a{} ${{W:-unset}}", self.calls),
            _ => format!("{c} a{}", self.calls),
        }
    }

    fn simple(&mut self) -> String {
        let builtins = [
            "true",
            "false",
            ":",
            "cd /d1",
            "cd /d2",
            "cd /missing",
            "export V=1",
            "V=2",
            "W=3 :",
            "unset V",
            "umask 077",
            "set -u",
            "set -x",
            "exit 3",
            "exit 0",
            "echo x > /tmp/f",
            "[ -f /tmp/f ]",
            "test -n \"$V\"",
            "f() { c4 in-f; }",
            "f",
            "trap 'c3 trapped' EXIT",
        ];
        if self.rng.below(12) == 0 {
            // Options a merge must not switch off: rare, since such a RUN may only come last.
            return self
                .rng
                .pick(&["set -e", "set +e", "set -o pipefail"])
                .to_string();
        }
        if self.rng.below(2) == 0 {
            self.call()
        } else {
            self.rng.pick(&builtins).to_string()
        }
    }

    fn item(&mut self, depth: usize) -> String {
        if depth == 0 {
            return self.simple();
        }
        match self.rng.below(12) {
            0 => format!("( {} )", self.list(depth - 1)),
            1 => format!("{{ {}; }}", self.list(depth - 1)),
            2 => format!(
                "if {}; then {}; else {}; fi",
                self.item(depth - 1),
                self.list(depth - 1),
                self.list(depth - 1)
            ),
            3 => format!("for i in 1 2; do {}; done", self.list(depth - 1)),
            4 if self.rng.below(4) == 0 => format!(
                "case ${{V:-0}} in 1) {} ;; *) {} ;; esac",
                self.list(depth - 1),
                self.list(depth - 1)
            ),
            5 => format!("! {}", self.call()),
            6 => format!("{} | {}", self.call(), self.call()),
            _ => self.simple(),
        }
    }

    fn list(&mut self, depth: usize) -> String {
        let mut s = self.item(depth);
        for _ in 0..self.rng.below(3) {
            let op = self.rng.pick(&[" && ", " && ", " || ", "; ", " | "]);
            s.push_str(op);
            s.push_str(&self.item(depth));
        }
        s
    }

    /// One RUN's script as it is written in the Dockerfile (continuations included).
    pub fn script(&mut self) -> String {
        let depth = self.rng.below(3);
        let mut s = self.list(depth);
        match self.rng.below(12) {
            0 => s.push(';'),
            1 => s.push_str(" ;"),
            2 => s.push_str(" # a comment"),
            _ => {}
        }
        // Continuations: `&& ` at a line's end followed by an indented line.
        if self.rng.below(3) == 0 {
            s = s.replacen(" && ", " \\\n    && ", 1);
        }
        s
    }

    /// A Dockerfile: a base, then two to four RUNs (sometimes with a comment between).
    pub fn dockerfile(&mut self) -> String {
        let mut out = String::from("FROM debian:bookworm\n");
        for _ in 0..2 + self.rng.below(3) {
            if self.rng.below(6) == 0 {
                out.push_str("# between\n");
            }
            out.push_str("RUN ");
            out.push_str(&self.script());
            out.push('\n');
        }
        out
    }
}

/// Whether `shell -n -c script` accepts the script (`shell` is `/bin/dash` or `/bin/bash`).
pub fn parses(shell: &str, script: &str) -> bool {
    Command::new(shell)
        .args(["-n", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{shell}: {e}"))
        .success()
}

/// Every Dockerfile of the repository's corpus: tests/fixtures/dockerfiles/** and docker/**.
pub fn corpus() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".Dockerfile") || n.starts_with("Dockerfile"))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for d in ["tests/fixtures/dockerfiles", "docker"] {
        walk(&crate::repo_root().join(d), &mut out);
    }
    out.sort();
    out
}

/// A report line for a mismatch, with both traces.
pub fn describe(what: &str, original: &[String], merged: &str, m: &Mismatch) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "{what}: the merge does not do what the RUNs did\n  shell: {:?}\n  failing calls: {:?}\n",
        m.shell, m.failures
    ));
    for (k, o) in original.iter().enumerate() {
        s.push_str(&format!("  RUN {k}: {o}\n"));
    }
    s.push_str(&format!("  merged: {merged}\n"));
    s.push_str(&format!(
        "  original: success={} trace:\n    {}\n",
        m.original.success,
        m.original.trace.join("\n    ")
    ));
    s.push_str(&format!(
        "  merged: success={} trace:\n    {}\n",
        m.merged.success,
        m.merged.trace.join("\n    ")
    ));
    s
}
