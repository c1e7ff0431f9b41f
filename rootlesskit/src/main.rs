//! Entry point of `burrow-rootlesskit`: parses RootlessKit-compatible flags and runs the launcher.

fn main() -> std::process::ExitCode {
    burrow_rootlesskit::launcher::main()
}
