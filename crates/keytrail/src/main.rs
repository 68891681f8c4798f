//! The `keytrail` command.
//!
//! - `keytrail normalize [FILE]`: vendor audit events in (one per line, or
//!   NDJSON), normalized events out, one JSON object per line, bad lines
//!   reported on stderr;
//! - `keytrail validate --config FILE`: checks a configuration file;
//! - `keytrail gen`: realistic vendor events for demos, tests and benches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod config;
mod generate;
mod transforms;

/// HSM and key-management audit logs: normalized, classified, counted and
/// forwarded without losing one.
#[derive(Debug, Parser)]
#[command(name = "keytrail", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Normalize vendor events from FILE (or stdin) to stdout, one JSON
    /// object per line; bad lines go to stderr as {"error", "line"}.
    Normalize(cmd::normalize::Args),
    /// Check a configuration file and exit non-zero naming what is wrong.
    Validate(cmd::validate::Args),
    /// Generate realistic vendor events (deterministic with --seed).
    Gen(generate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Normalize(args) => cmd::normalize::run(&args),
        Command::Validate(args) => cmd::validate::run(&args),
        Command::Gen(args) => generate::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("keytrail: {err:#}");
            ExitCode::FAILURE
        }
    }
}
