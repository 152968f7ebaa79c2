use std::io::ErrorKind;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gridcc_bench::cli::{Cli, Command};
use gridcc_bench::{exit_code, simulate};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Simulate(args) => simulate::run(args).and_then(|report| {
            match report.write_to(&mut std::io::stdout().lock(), args.json) {
                // A reader that stopped early (`| head`) is not an error.
                Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing the report"),
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridcc-bench: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
