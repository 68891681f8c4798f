//! `keytrail validate --config FILE`: parses, interpolates and builds every
//! stage of a configuration without starting anything. Exits non-zero with a
//! message that names the bad key or value.

use std::path::PathBuf;

use crate::config::Config;

/// Arguments of `keytrail validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file to check.
    #[arg(long, short)]
    pub config: PathBuf,
}

/// Runs the command.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = Config::load(&args.config)?;
    config
        .validate_for_run()
        .map_err(|e| e.context(format!("invalid config {}", args.config.display())))?;
    println!("{}: ok", args.config.display());
    Ok(())
}
