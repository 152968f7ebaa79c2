use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use gridcc_bench::cli::{Cli, Command};
use gridcc_bench::{exit_code, replay, report, run, simulate};

/// Writes the report files of `dir`, prints where they are and the
/// verdicts; a failed threshold is an error (exit 1).
fn print_report(dir: &std::path::Path) -> anyhow::Result<()> {
    let summary = report::report(dir)?;
    println!("results: {}", dir.display());
    for c in &summary.cells {
        println!(
            "  {:<28} {:<13} median {:>8.2} s  speedup {:>5.2} {:<14} efficiency {:>5.2}  ok {}/{}",
            c.configuration,
            if c.policy.is_empty() { "-" } else { &c.policy },
            c.median_s,
            c.speedup,
            c.speedup_ci
                .map_or_else(|| "[no CI]".to_owned(), |ci| ci.to_string()),
            c.efficiency,
            c.ok_runs,
            c.runs
        );
    }
    for v in &summary.verdicts {
        println!(
            "  {} {} {} {} {:.2} >= {}",
            if v.pass { "PASS" } else { "FAIL" },
            v.configuration,
            v.policy,
            v.what,
            v.measured,
            v.required
        );
    }
    for c in &summary.comparisons {
        println!("  {}", c.sentence().replace("**", ""));
    }
    println!("  summary: {}", dir.join("summary.md").display());
    if summary.passed() {
        Ok(())
    } else {
        anyhow::bail!(
            "a threshold failed (see {})",
            dir.join("summary.md").display()
        )
    }
}

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
        Command::Replay(args) => replay::run(args).and_then(|report| {
            let mut out = std::io::stdout().lock();
            let written = if args.json {
                serde_json::to_writer_pretty(&mut out, &report)
                    .map_err(std::io::Error::from)
                    .and_then(|()| writeln!(out))
            } else {
                write!(out, "{report}")
            };
            match written {
                Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing the report"),
            }
        }),
        Command::Run(args) => run::run(args).and_then(|dir| {
            if run::interrupted() {
                // The finished runs are kept and reported; the verdicts of
                // an incomplete session decide nothing.
                if std::fs::metadata(dir.join("runs.jsonl")).is_ok_and(|m| m.len() > 0) {
                    let _ = print_report(&dir);
                } else {
                    eprintln!("gridcc-bench: interrupted before any run finished");
                }
                return Err(anyhow::Error::new(run::Interrupted));
            }
            print_report(&dir)
        }),
        Command::Matrix(args) => run::matrix(args).and_then(|(out, dirs)| {
            let ran: Vec<std::path::PathBuf> = dirs
                .into_iter()
                .filter(|d| std::fs::metadata(d.join("runs.jsonl")).is_ok_and(|m| m.len() > 0))
                .collect();
            let mut failed = false;
            for d in &ran {
                failed |= print_report(d).is_err();
            }
            if !ran.is_empty() {
                report::matrix_report(&out, &ran)?;
                println!("matrix summary: {}", out.join("summary.md").display());
            }
            if run::interrupted() {
                return Err(anyhow::Error::new(run::Interrupted));
            }
            if failed {
                anyhow::bail!(
                    "a threshold failed (see {})",
                    out.join("summary.md").display()
                );
            }
            Ok(())
        }),
        Command::Report(args) => print_report(&args.dir),
        Command::Compare(args) => {
            report::compare(&args.old, &args.new).map(|table| print!("{table}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gridcc-bench: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
