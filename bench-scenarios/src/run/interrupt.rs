//! Ctrl-C and SIGTERM: stop what runs at once, let the runner unwind.

use std::sync::atomic::{AtomicBool, Ordering};

use super::BackendKind;

/// A session stopped by Ctrl-C or SIGTERM (exit status 130).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted; the finished runs are kept and reported")]
pub struct Interrupted;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// True once Ctrl-C or SIGTERM arrived: the session stops after the run
/// in progress, which is not recorded, and reports the runs before it.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Ctrl-C or SIGTERM: the build and the local servers run in process
/// groups of their own (see reap.rs) and containers outside this process
/// altogether, so both are stopped here at once. The process does not exit
/// here: the runner sees [`interrupted`], unwinds (dropping the grid and
/// the client's cgroups, which removes them), and `main` writes the report
/// of the finished runs and exits 130. A second signal exits at once.
pub(super) fn install_interrupt_handler(kind: BackendKind) {
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            else {
                return;
            };
            loop {
                let signalled = tokio::select! {
                    r = tokio::signal::ctrl_c() => r.is_ok(),
                    r = term.recv() => r.is_some(),
                };
                if !signalled {
                    return;
                }
                if INTERRUPTED.swap(true, Ordering::SeqCst) {
                    eprintln!("gridcc-bench: interrupted again; exiting without cleaning up");
                    std::process::exit(130);
                }
                let n = crate::reap::kill_all();
                eprintln!(
                    "gridcc-bench: interrupted; stopped {n} process group(s), cleaning up (again to exit at once)"
                );
                if kind == BackendKind::Docker {
                    match crate::docker::remove_containers(crate::docker::Owner::ThisProcess) {
                        Ok(n) => eprintln!("gridcc-bench: removed {n} container(s)"),
                        Err(e) => eprintln!("gridcc-bench: removing containers: {e:#}"),
                    }
                }
            }
        });
    });
}
