//! Ctrl-C and SIGTERM while the wrapper waits on the grid.
//!
//! Killed there outright, the wrapper would leave its worker to notice a
//! dropped connection. Caught, it cancels its `Compile` call (the worker
//! kills the job at once), gives its lease back, removes the output file a
//! local gcc would remove, and then dies of the same signal, so that make
//! and the shell see what a local gcc gives them: death by that signal,
//! status 128 + signal. (A plain `exit(130)` would look to a shell like a
//! program that handled Ctrl-C and went on; bash would not stop its script.)
//!
//! The signals are caught only while [`Catch`] lives, around the grid
//! calls. Elsewhere they kill the wrapper as before: the preprocessor or a
//! local compiler, in the same process group, gets the same Ctrl-C, and
//! the wrapper has written nothing that outlives it. A signal that was
//! ignored when the wrapper started (a background job of a non-interactive
//! shell) stays ignored, as gcc leaves it.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio::net::unix::pipe;

/// The first signal caught, 0 while none.
static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// The write end of the pipe that wakes [`Catch::recv`]; -1 when none.
static WAKE: AtomicI32 = AtomicI32::new(-1);

const SIGNALS: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// The signal caught while a [`Catch`] lived, if any.
pub(crate) fn caught() -> Option<i32> {
    Some(CAUGHT.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

extern "C" fn on_signal(sig: libc::c_int) {
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        wake(fd);
    }
}

#[allow(unsafe_code)]
fn wake(fd: libc::c_int) {
    // SAFETY: write(2) on a pipe is async-signal-safe; errno is saved and
    // restored so the interrupted code does not see it change.
    unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        libc::write(fd, b"!".as_ptr().cast(), 1);
        *errno = saved;
    }
}

/// SIGINT and SIGTERM caught while this lives; the previous handling is
/// back when it is dropped.
pub(crate) struct Catch {
    receiver: pipe::Receiver,
    /// Kept open for the handler, which writes to its descriptor.
    _sender: pipe::Sender,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Catch {
    /// Starts catching. Needs a tokio runtime (the pipe is registered
    /// with it).
    pub(crate) fn start() -> std::io::Result<Self> {
        let (sender, receiver) = pipe::pipe()?;
        WAKE.store(sender.as_raw_fd(), Ordering::SeqCst);
        let mut catch = Self {
            receiver,
            _sender: sender,
            previous: Vec::new(),
        };
        for sig in SIGNALS {
            if let Some(previous) = install(sig)? {
                catch.previous.push((sig, previous));
            }
        }
        Ok(catch)
    }

    /// Resolves to the signal number once one is caught.
    pub(crate) async fn recv(&self) -> i32 {
        loop {
            if let Some(sig) = caught() {
                return sig;
            }
            if self.receiver.readable().await.is_err() {
                return std::future::pending().await;
            }
            let mut drained = [0u8; 16];
            let _ = self.receiver.try_read(&mut drained);
        }
    }
}

impl Drop for Catch {
    fn drop(&mut self) {
        for (sig, previous) in &self.previous {
            restore(*sig, previous);
        }
        WAKE.store(-1, Ordering::SeqCst);
    }
}

/// Installs the handler for `sig` unless `sig` is ignored; returns what it
/// replaced.
#[allow(unsafe_code)]
fn install(sig: libc::c_int) -> std::io::Result<Option<libc::sigaction>> {
    // SAFETY: sigaction(2) with zero-initialised, fully set structs; the
    // handler only touches atomics and calls write(2).
    unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut previous) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if previous.sa_sigaction == libc::SIG_IGN {
            return Ok(None);
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Some(previous))
    }
}

#[allow(unsafe_code)]
fn restore(sig: libc::c_int, previous: &libc::sigaction) {
    // SAFETY: puts back the action sigaction(2) returned for `sig`.
    unsafe {
        libc::sigaction(sig, previous, std::ptr::null_mut());
    }
}

/// Dies of `sig` with its default action, as a program that had not caught
/// it would have; exits 128 + `sig` should the signal not end the process.
#[allow(unsafe_code)]
pub(crate) fn die(sig: i32) -> ! {
    // SAFETY: resets one signal to its default action, unblocks it and
    // raises it; no memory is shared with the handler.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(sig);
    }
    std::process::exit(128 + sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_while_catching_is_caught_and_the_old_action_comes_back() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sig = runtime.block_on(async {
            let catch = Catch::start().unwrap();
            // Raised on this thread: the handler runs before raise returns.
            assert_eq!(unsafe_raise(libc::SIGTERM), 0);
            catch.recv().await
        });
        assert_eq!(sig, libc::SIGTERM);
        assert_eq!(caught(), Some(libc::SIGTERM));
        assert_eq!(WAKE.load(Ordering::SeqCst), -1);
    }

    #[allow(unsafe_code)]
    fn unsafe_raise(sig: libc::c_int) -> libc::c_int {
        // SAFETY: raise(2) of a signal this test's handler catches.
        unsafe { libc::raise(sig) }
    }
}
