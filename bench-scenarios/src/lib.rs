//! gridcc's benchmark mode: how fast a build goes on a given grid of workers,
//! and how close that is to what any placement could do.
//!
//! - [`cli`]: the command line ([`cli::Cli`]), one variant of
//!   [`cli::Command`] per subcommand; `main.rs` only parses and dispatches.
//! - [`simulate`]: `gridcc-bench simulate`, which replays a job trace on
//!   simulated workers with `gridcc-scheduler`'s simulator and policies,
//!   and its [`simulate::Report`] (text via `Display`, JSON via serde).
//!
//! - [`run`]: `gridcc-bench run SCENARIO.toml`, real builds of a workload
//!   ([`scenario`]) on grids started by a [`backend`] ([`local`] processes
//!   under cgroup quotas, or [`docker`] containers), one JSON line per run;
//!   [`stats`] holds the status/trace readers and statistics it uses;
//!   [`peers`] runs distcc and icecream (icecc) as cells beside gridcc's
//!   policies.
//! - [`replay`]: a run's recording (job log joined with the trace) for
//!   `gridcc_scheduler::replay`, which predicts each run and gives the
//!   trace-aware lower bound.
//! - [`report`]: `gridcc-bench report DIR` and `compare OLD NEW`, computed
//!   from the raw runs only; [`gantt`] draws each run's jobs per worker
//!   slot.
//!
//! Errors are `anyhow` with context; [`exit_code`] maps one to the process
//! exit status, so that `main` and the tests agree on it.
//!
//! This crate reaches the rest of gridcc only through `gridcc-scheduler`
//! (the simulator and policies) and, for real runs, through the binaries.

pub mod backend;
pub mod cgroup;
pub mod cli;
pub mod docker;
pub mod gantt;
pub mod local;
pub mod peers;
mod reap;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod simulate;
pub mod stats;

/// A command line that clap accepts but that makes no sense as a whole, such
/// as `--slots` and `--workers` of different lengths. Exits 2, like clap's
/// own usage errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error(
        "--slots and --workers differ in length ({slots} vs {workers}); give one slot count per worker"
    )]
    SlotsMismatch { workers: usize, slots: usize },
}

/// The exit status for an error: 2 for a [`UsageError`], 130 for a run
/// stopped by Ctrl-C or SIGTERM (as a shell reports SIGINT), 1 for anything
/// else (unreadable or malformed input, a failed simulation).
pub fn exit_code(err: &anyhow::Error) -> u8 {
    // The only downcast in the crate: the exit status is decided at the
    // boundary from the error's type, not from its message.
    if err.downcast_ref::<UsageError>().is_some() {
        2
    } else if err.downcast_ref::<run::Interrupted>().is_some() {
        130
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn usage_errors_exit_2_others_1() {
        let usage = anyhow::Error::new(UsageError::SlotsMismatch {
            workers: 2,
            slots: 1,
        });
        assert_eq!(exit_code(&usage), 2);
        // Context on top does not hide the type.
        let wrapped: anyhow::Result<()> = Err(usage).context("simulate");
        assert_eq!(exit_code(&wrapped.unwrap_err()), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("trace line 3: not JSON")), 1);
    }
}
