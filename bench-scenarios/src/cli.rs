//! The `gridcc-bench` command line. Each subcommand's arguments live next to
//! the code that runs it (`simulate::Args`); this module only lists them.

use clap::{Parser, Subcommand};

/// gridcc benchmark mode: measure and simulate builds on a grid of workers.
#[derive(Debug, Parser)]
#[command(name = "gridcc-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// One variant per subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a job trace as `make -jJ` would, on simulated workers, with one
    /// or every placement policy, and compare each makespan with the lower
    /// bound no policy can beat.
    Simulate(crate::simulate::Args),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_simulate_subcommand() {
        let cli = Cli::try_parse_from([
            "gridcc-bench",
            "simulate",
            "--trace",
            "t.jsonl",
            "--workers",
            "0.5,1",
            "-j",
            "8",
            "--policy",
            "all",
        ])
        .unwrap();
        let Command::Simulate(args) = cli.command;
        assert_eq!(args.workers, [0.5, 1.0]);
        assert_eq!(args.jobs, 8);
    }
}
