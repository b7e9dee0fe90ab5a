//! `lakehouse`: the command-line client of the trio (DESIGN.md section 9), a thin binary over
//! `lakehouse-client`. Parse the command line ([`cli`]), call the services ([`commands`]),
//! print tables or JSON ([`output`]); errors are one line on stderr (a schema drift adds its
//! diff), exit status 0 ok, 1 error, 2 usage.

mod cli;
mod commands;
mod output;
mod progress;

use clap::Parser as _;
use clap::error::ErrorKind;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print in full and exit 0.
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        // No subcommand at all: the full help on stderr (as git and cargo do), exit status 2.
        Err(error) if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = error.print();
            return ExitCode::from(2);
        }
        // A usage error is one line (clap's first paragraph, without the usage and hint that
        // follow), exit status 2; nothing was sent.
        Err(error) => {
            let text = error.render().to_string();
            let first = text.split("\n\n").next().unwrap_or("error: invalid usage");
            let words: Vec<&str> = first.split_whitespace().collect();
            eprintln!("{}", words.join(" "));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            output::print_error(&error);
            ExitCode::FAILURE
        }
    }
}
