//! The workspace's integration tests, in one binary (as cargo's own testsuite is): linking
//! the whole stack once instead of once per file. Each module is one subject; a test's name
//! is `module::function` (`cargo test -p headroom-tests -- free::` runs one module).

mod docker_image;
mod docker_items;
mod dockerfile_fix;
mod dockerfile_fix_cases;
mod dockerfile_parse;
mod fix_equivalence;
mod free;
mod free_attacks;
mod image;
mod inspect;
mod lint;
mod lint_fix;
mod lint_validation;
mod matrix;
mod relocate;
mod remote;
mod sibling;
mod simulate;
mod tidy;
mod workflows;
