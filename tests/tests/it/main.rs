//! The workspace's integration tests, in one binary (as cargo's own testsuite is): the whole
//! stack is linked once instead of once per file. Each module is one subject and lists its
//! tests, with what each needs of the machine, in a `tests!` table; `headroom_tests::harness`
//! runs them and reports a test that cannot run here as ignored, with the reason (a failure
//! under `CI=true`). A test's name is `module::function`: `cargo test -p headroom-tests --
//! free::` runs one module.

use std::process::ExitCode;
use std::sync::Mutex;

mod action;
mod cli;
mod container_builder;
mod docker_image;
mod docker_items;
mod dockerfile_fix;
mod dockerfile_fix_cases;
mod dockerfile_parse;
mod fix_equivalence;
mod free;
mod free_attacks;
mod gpu_engine;
mod image;
mod inspect;
mod lint;
mod lint_fix;
mod lint_hadolint_specs;
mod lint_validation;
mod matrix;
mod relocate;
mod remote;
mod runner_box;
mod runner_move;
mod sibling;
mod simulate;
mod tidy;
mod trust;
mod trust_move;
mod trust_preflight;
mod workflows;

/// The fixer's image builds (dockerfile_fix, dockerfile_fix_cases), one at a time: the CI
/// machine has two cores.
static BUILDS: Mutex<()> = Mutex::new(());

fn main() -> ExitCode {
    headroom_tests::harness::main(&[
        container_builder::TESTS,
        action::TESTS,
        cli::TESTS,
        docker_image::TESTS,
        docker_items::TESTS,
        dockerfile_fix::TESTS,
        dockerfile_fix_cases::TESTS,
        dockerfile_parse::TESTS,
        fix_equivalence::TESTS,
        free::TESTS,
        free_attacks::TESTS,
        gpu_engine::TESTS,
        image::TESTS,
        inspect::TESTS,
        lint::TESTS,
        lint_fix::TESTS,
        lint_hadolint_specs::TESTS,
        lint_validation::TESTS,
        matrix::TESTS,
        relocate::TESTS,
        remote::TESTS,
        runner_box::TESTS,
        runner_move::TESTS,
        sibling::TESTS,
        simulate::TESTS,
        tidy::TESTS,
        trust::TESTS,
        trust_move::TESTS,
        trust_preflight::TESTS,
        workflows::TESTS,
    ])
}
