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
    /// Replay one recorded run (its job log and trace) as it happened: each
    /// job released after the job it waited for, the client's CPU per job
    /// under its limit, transfers; on the run's own shape or others, with
    /// its policy or others. Prints the makespan, the naive bound and the
    /// trace-aware bound (release chain, client CPU, grid work).
    Replay(crate::replay::Args),
    /// Run a scenario: real builds of its workload on each configuration
    /// and policy (and each peer, such as distcc), interleaved over the
    /// repetitions, every run kept in DIR/runs.jsonl; then write the report
    /// (summary.md with intervals, replay predictions and the trace-aware
    /// bound, results.csv, SVG charts) and exit 1 if a threshold failed.
    /// Ctrl-C keeps and reports the finished runs and exits 130.
    Run(crate::run::Args),
    /// Run several scenarios in one session, interleaved repetition by
    /// repetition (e.g. heterogeneous-small, equal-small and scaling-small
    /// with their policies and peers); each scenario's results go in
    /// OUT/NAME/, and OUT/summary.md holds them all. Exit 1 if a threshold
    /// failed, 130 when interrupted (finished runs kept and reported).
    Matrix(crate::run::MatrixArgs),
    /// Recompute summary.md, results.csv, the charts and the verdicts of a
    /// results directory from its runs.jsonl.
    Report(crate::report::Args),
    /// Compare two results directories cell by cell (median wall clock and
    /// paired speedup, each with its bootstrap 95 % interval), as a
    /// markdown table: "faster" or "slower" only where the intervals do not
    /// overlap, else "no difference shown".
    Compare(CompareArgs),
}

/// The arguments of `gridcc-bench compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    #[arg(value_name = "OLD")]
    pub old: std::path::PathBuf,
    #[arg(value_name = "NEW")]
    pub new: std::path::PathBuf,
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
        let Command::Simulate(args) = cli.command else {
            panic!("not simulate");
        };
        assert_eq!(args.workers, [0.5, 1.0]);
        assert_eq!(args.jobs, 8);
    }
}
