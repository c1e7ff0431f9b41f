//! The `burrow` command line: parses arguments and dispatches to one module per command.

mod cli;
mod commands;

use std::process::ExitCode;

fn main() -> ExitCode {
    exit_quietly_on_closed_stdout();
    cli::main()
}

/// `burrow images | head` closes our stdout early: end as a program killed by SIGPIPE would
/// (status 141, no message), as Docker's Go runtime does, instead of panicking on the next print.
/// SIGPIPE itself stays ignored so a closed containerd socket is an error, not a silent death.
fn exit_quietly_on_closed_stdout() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        // std's print macros and clap's generators both panic with the io error's text.
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}
