//! The `headroom` binary: the whole command line is the library's (`headroom_cli`).

fn main() -> std::process::ExitCode {
    headroom_cli::main()
}
