//! The `keytrail` command; see `keytrail --help` and the README.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keytrail::logging::{self, LogFormat};
use keytrail::{cmd, generate};

/// mimalloc instead of the system allocator: the pipeline allocates and
/// frees small strings per event on several threads, where glibc's malloc
/// spends a quarter of the CPU (measured in BENCHMARKS.md). Built with
/// `override`, it also serves librdkafka's and OpenSSL's `malloc`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. With huge pages, the
/// first touch of each 2 MiB region of mimalloc's arenas has the kernel
/// clear all of it, however little of it is used. mimalloc is built not to
/// ask for them (`no_thp`), which covers the allocations made before `main`
/// on a system that gives them only when asked (`madvise`, the usual
/// setting); this call covers the rest where the system gives them always.
/// In the loopback bench the clearing was about a tenth of `keytrail
/// run`'s CPU samples; without huge pages it used about 4 % less CPU and
/// 10-15 MiB less peak RSS (BENCHMARKS.md, eighteenth round). The working
/// set is streamed data, which gains little from fewer TLB misses. The
/// kernel checks the flag at each fault: a region first touched after this
/// call gets 4 KiB pages even if it was mapped before. Called first in
/// `main`; the result is logged once logging is set up.
fn without_transparent_huge_pages() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    rustix::thread::disable_transparent_huge_pages(true)?;
    Ok(())
}

/// HSM and key-management audit logs: normalized, classified, counted and
/// forwarded without losing one.
#[derive(Debug, Parser)]
#[command(name = "keytrail", version, about, propagate_version = true)]
struct Cli {
    /// Log line format (level from RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Consume from Kafka and run the pipeline until SIGINT/SIGTERM.
    Run(cmd::run::Args),
    /// The whole pipeline in process: Kafka, generator, pipeline, metrics
    /// and SIEM receiver; --events N stops after N and prints a summary.
    Demo(cmd::demo::Args),
    /// Run the reference SIEM receiver: events arriving over gRPC are
    /// appended to a file, then acknowledged.
    Receive(cmd::receive::Args),
    /// Normalize vendor events from FILE (or stdin) to stdout, one JSON
    /// object per line; bad lines go to stderr as {"error", "line"}.
    Normalize(cmd::normalize::Args),
    /// Check a configuration file and exit non-zero naming what is wrong.
    Validate(cmd::validate::Args),
    /// Generate realistic vendor events (deterministic with --seed).
    Gen(generate::Args),
}

fn main() -> ExitCode {
    let huge_pages_off = without_transparent_huge_pages();
    let cli = Cli::parse();
    // The demo talks through its progress and summary; keep logs to warnings.
    let default_level = if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    };
    logging::init(cli.log_format, default_level);
    if let Err(err) = huge_pages_off {
        tracing::debug!(error = %err, "transparent huge pages left as the system sets them");
    }
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(&args),
        Command::Demo(args) => cmd::demo::run(&args),
        Command::Receive(args) => cmd::receive::run(&args),
        Command::Normalize(args) => cmd::normalize::run(&args),
        Command::Validate(args) => cmd::validate::run(&args),
        Command::Gen(args) => generate::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("keytrail: {err:#}");
            ExitCode::FAILURE
        }
    }
}
