//! The harness of the integration binary (`tests/tests/it`, `harness = false`, on
//! libtest-mimic): tests that say what ran.
//!
//! libtest can ignore a test only when it is compiled (`#[ignore]`), but whether a test can run
//! here — as root, with a Docker engine, with a program — is known only when it runs. So each
//! module lists its tests and what each needs with [`tests!`](crate::tests), and [`main`] runs
//! them as libtest would (`FILTER`, `--exact`, `--skip`, `--list`, `--ignored`,
//! `--include-ignored`, `--test-threads`, the same `test result:` line), with this rule:
//!
//! - what a test needs is there: it runs;
//! - it is not, outside CI: the test is reported as *ignored*, with the reason, never as passed
//!   (`--ignored` or `--include-ignored` runs it anyway, as libtest runs an `#[ignore]` test);
//! - it is not, under `CI=true`: the test fails, saying what is missing.
//!
//! Each test runs on a thread named after it (`module::function`), as libtest's do, so a panic
//! names its test; a panic is a failure with its message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::ci;

/// What a test needs of the machine it runs on.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Root (loop mounts, mount namespaces, chattr, engines of its own).
    Root,
    /// A Docker engine that answers (`docker version`).
    Docker,
    /// A program on `PATH`.
    Program(&'static str),
    /// A program of the tools venv that scripts/provision installs
    /// (`$HEADROOM_TOOLS_VENV/bin/NAME`, by default `/opt/headroom/venv/bin/NAME`), which
    /// answers `--version` (the venv's Python may be out of this user's reach).
    Tool(&'static str),
    /// The BuildKit image of buildx's `docker-container` builders
    /// (`moby/buildkit:buildx-stable-1`), in an engine that answers: scripts/provision loads it
    /// from `../shared/buildkit/` or pulls it.
    BuildKit,
    /// Anything else: what is missing when `met` says no.
    Other {
        missing: &'static str,
        met: fn() -> bool,
    },
}

impl Need {
    /// Why a test with this need cannot run here; `None` when it can.
    pub fn missing(&self) -> Option<String> {
        match *self {
            Need::Root => (!is_root()).then(|| "needs root (loop mounts, chattr)".to_string()),
            Need::Docker => (!docker_answers())
                .then(|| "needs a running Docker engine (run scripts/provision)".to_string()),
            Need::Program(name) => (!on_path(name))
                .then(|| format!("needs {name} on PATH (scripts/provision installs it)")),
            Need::Tool(name) => {
                let path = tool(name);
                (!answers(&path)).then(|| {
                    format!(
                        "needs {} that runs (scripts/provision installs it)",
                        path.display()
                    )
                })
            }
            Need::BuildKit => (!docker_answers()
                || !headroom_lab::sandbox::builder::has_image(
                    headroom_lab::sandbox::builder::BUILDKIT_IMAGE,
                ))
            .then(|| {
                format!(
                    "needs {} in the Docker engine (scripts/provision loads it)",
                    headroom_lab::sandbox::builder::BUILDKIT_IMAGE
                )
            }),
            Need::Other { missing, met } => (!met()).then(|| missing.to_string()),
        }
    }
}

/// One test: its name (`module::function` once registered), its body, what it needs.
#[derive(Debug, Clone, Copy)]
pub struct Test {
    pub name: &'static str,
    pub run: fn(),
    pub needs: &'static [Need],
}

/// A module's tests and what each needs, as a `TESTS` table for [`main`]:
///
/// ```ignore
/// headroom_tests::tests! {
///     plans_every_item;
///     a_mount_inside_an_item_is_neither_entered_nor_unmounted needs Root;
///     pushes_to_a_registry needs Root, Docker, Tool("check-jsonschema");
/// }
/// ```
///
/// Each name is a `fn()` of the module; the needs are [`Need`]s (their variants are in scope).
/// A test missing from the table is dead code, which the build warns about (and clippy's
/// `-D warnings` refuses).
#[macro_export]
macro_rules! tests {
    ($($test:ident $(needs $($need:expr),+)?;)*) => {
        /// This module's tests and what each needs of the machine (`headroom_tests::harness`).
        pub(crate) const TESTS: &[$crate::harness::Test] = &[$(
            $crate::harness::Test {
                name: concat!(module_path!(), "::", stringify!($test)),
                run: $test,
                needs: &[$($({
                    #[allow(unused_imports)]
                    use $crate::harness::Need::*;
                    $need
                }),+)?],
            },
        )*];
    };
}

/// Run the tests of `modules` (each a [`tests!`](crate::tests) table) as libtest would, with
/// the rule of this module; the exit code is libtest's (101 when a test failed).
pub fn main(modules: &[&[Test]]) -> ExitCode {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        // libtest reads RUST_TEST_THREADS too.
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok());
    }
    // Asked to run ignored tests: those whose needs are missing are marked ignored (so that
    // `--ignored` picks them and `--list --ignored` lists them) and run. Otherwise they are
    // ignored when they would run, so that the report says why.
    let run_ignored = args.ignored || args.include_ignored;
    let mut tests: Vec<&Test> = modules.iter().flat_map(|m| m.iter()).collect();
    // libtest lists and starts tests in the order of their names.
    tests.sort_by_key(|t| registered_name(t));
    let trials = tests
        .into_iter()
        .map(|t| trial(t, ci(), run_ignored))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// `module::function`: the name in the table less the binary's own crate name.
fn registered_name(test: &Test) -> &'static str {
    test.name
        .split_once("::")
        .map_or(test.name, |(_, rest)| rest)
}

fn trial(test: &Test, ci: bool, run_ignored: bool) -> Trial {
    let name = registered_name(test);
    let run = test.run;
    let missing: Vec<String> = test.needs.iter().filter_map(Need::missing).collect();
    if missing.is_empty() {
        return Trial::test(name, move || run_on_named_thread(name, run));
    }
    let why = missing.join("; ");
    if ci {
        return Trial::test(name, move || {
            Err(format!("{why} (CI=true: this must not be skipped)").into())
        });
    }
    if run_ignored {
        return Trial::test(name, move || run_on_named_thread(name, run)).with_ignored_flag(true);
    }
    Trial::ignorable_test(name, move || Ok(Completion::ignored_with(why)))
}

/// Run `body` on a thread named `name`; its panic is the failure, with its message.
fn run_on_named_thread(name: &str, body: fn()) -> Result<(), Failed> {
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(body)
        .map_err(|e| format!("starting the test's thread: {e}"))?;
    thread.join().map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied());
        match message {
            Some(m) => format!("test panicked: {m}").into(),
            None => "test panicked".into(),
        }
    })
}

/// The name of the test running on this thread (`module::function`), when the harness runs
/// one here.
pub fn current_test() -> Option<String> {
    std::thread::current().name().map(str::to_string)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether a Docker engine answers, asked once per process.
fn docker_answers() -> bool {
    static ANSWERS: OnceLock<bool> = OnceLock::new();
    *ANSWERS.get_or_init(|| {
        std::process::Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Whether `program --version` succeeds, asked once per program and process.
fn answers(program: &Path) -> bool {
    static ANSWERS: Mutex<BTreeMap<PathBuf, bool>> = Mutex::new(BTreeMap::new());
    let mut known = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    *known.entry(program.to_path_buf()).or_insert_with(|| {
        std::process::Command::new(program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Where the tools venv keeps `name` (`$HEADROOM_TOOLS_VENV/bin/NAME`, by default
/// `/opt/headroom/venv/bin/NAME`).
pub fn tool(name: &str) -> PathBuf {
    let venv = std::env::var("HEADROOM_TOOLS_VENV").unwrap_or_else(|_| "/opt/headroom/venv".into());
    Path::new(&venv).join("bin").join(name)
}
