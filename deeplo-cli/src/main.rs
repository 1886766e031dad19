//! The `deeplo` binary: parse the command line, run the verb, exit with its status.

fn main() -> std::process::ExitCode {
    deeplo_cli::main()
}
