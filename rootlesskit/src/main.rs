//! Entry point of `burrow-rootlesskit`: parses RootlessKit-compatible flags and runs the launcher.

fn main() {
    eprintln!("burrow-rootlesskit: not built yet");
    std::process::exit(1);
}
