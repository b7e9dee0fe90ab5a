//! `lakehouse`: the command-line client of the trio (docs/contract.md section 9), a thin binary over
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
        // A usage error is one line (clap's first paragraph with its "did you mean" tip, not
        // the usage and help pointer that follow), exit status 2; nothing was sent.
        Err(error) => {
            let line = usage_line(&error.render().to_string());
            eprintln!("{line}");
            if json_requested() {
                output::print_usage_error_json(&line);
            }
            return ExitCode::from(2);
        }
    };
    let json = cli.global.json;
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
            if json {
                output::print_error_json(&error);
            }
            ExitCode::FAILURE
        }
    }
}

/// clap's rendered error as one line: its first paragraph, then its `tip:` lines (the
/// closest flag, value or subcommand), words joined by single spaces.
fn usage_line(rendered: &str) -> String {
    let mut paragraphs = rendered.split("\n\n");
    let mut parts: Vec<String> = paragraphs
        .next()
        .map(|first| first.split_whitespace().collect::<Vec<_>>().join(" "))
        .into_iter()
        .collect();
    for paragraph in paragraphs {
        for line in paragraph.lines().map(str::trim) {
            if line.starts_with("tip:") {
                parts.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
    if parts.is_empty() {
        return "error: invalid usage".to_owned();
    }
    parts.join("; ")
}

/// Whether `--json` is among the arguments, for a command line clap refused (so `--json`
/// could not be parsed as a flag).
fn json_requested() -> bool {
    std::env::args_os().skip(1).any(|arg| arg == "--json")
}

#[cfg(test)]
mod tests {
    #[test]
    fn clap_tips_are_kept_on_the_one_line() {
        let rendered = "error: unexpected argument '--null-value' found\n\n  tip: a similar \
                        argument exists: '--null-values'\n\nUsage: lakehouse ingest \
                        [OPTIONS]\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::usage_line(rendered),
            "error: unexpected argument '--null-value' found; tip: a similar argument exists: \
             '--null-values'"
        );
    }
}
