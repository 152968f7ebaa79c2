//! The process that stays in a slot's kept sandbox ([`super::kept`]) and
//! starts each job's compiler there, and the frames the worker and it
//! exchange over its stdin and stdout.
//!
//! It is the worker's own binary, run as `/.gridcc-init --sandbox-init`
//! before any runtime starts, so it is small: forking it to start a
//! compiler copies a few page tables, not the worker's. Per job it
//! creates the job's stdout and stderr files, forks, sets the job's limits
//! and execs the compiler in the job's working directory with the job's
//! environment, waits, and then kills every process of the sandbox but
//! itself and bwrap's pid 1: nothing a job starts outlives it into the
//! next job, which may be another client's.
//!
//! A frame is a little-endian `u32` length and that many bytes. A request
//! is a sequence of fields, each a `u32` length and its bytes: the working
//! directory, the stdout and stderr paths, the CPU-seconds, address-space
//! and file-size limits (decimal, empty for none), the number of
//! environment entries, those entries (`NAME=value`), then argv. A reply
//! is a kind byte and its value: `S`, the raw wait status (`i32`) and the
//! compile's CPU time in µs (`u64`), or `E` and a one-line error.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;

/// The launcher's path inside the sandbox.
pub const INIT_PATH: &str = "/.gridcc-init";
/// The first argument that makes the worker binary the launcher.
pub const INIT_ARG: &str = "--sandbox-init";
/// What the launcher writes once it runs: the sandbox is up.
pub const READY: u8 = b'R';

/// Largest frame either side accepts: a command line and its
/// environment, never megabytes.
const MAX_FRAME: usize = 4 << 20;

/// One compile to run in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cwd: OsString,
    /// Where the job's stdout and stderr go (created, truncated).
    pub stdout: OsString,
    pub stderr: OsString,
    pub cpu_s: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub file_bytes: Option<u64>,
    /// `NAME=value` entries: the job's whole environment.
    pub env: Vec<OsString>,
    pub argv: Vec<OsString>,
}

/// How a compile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Its raw wait status (`ExitStatusExt::from_raw`), and the CPU time
    /// (user + system, µs) it and the processes it waited for used.
    Status(i32, u64),
    /// It could not be started, or what it started could not be stopped.
    Failed(String),
}

impl Request {
    /// The request as one frame.
    pub fn frame(&self) -> Vec<u8> {
        let limit = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let count = self.env.len().to_string();
        let (cpu, memory, file) = (
            limit(self.cpu_s),
            limit(self.memory_bytes),
            limit(self.file_bytes),
        );
        let fields = [
            self.cwd.as_bytes(),
            self.stdout.as_bytes(),
            self.stderr.as_bytes(),
            cpu.as_bytes(),
            memory.as_bytes(),
            file.as_bytes(),
            count.as_bytes(),
        ]
        .into_iter()
        .chain(self.env.iter().map(|e| e.as_bytes()))
        .chain(self.argv.iter().map(|a| a.as_bytes()));
        let mut body = Vec::new();
        for f in fields {
            body.extend_from_slice(&(f.len() as u32).to_le_bytes());
            body.extend_from_slice(f);
        }
        frame(&body)
    }

    /// A request from a frame's body; `None` if it is malformed.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let mut fields = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_le_bytes(*len) as usize;
            let field = tail.get(..len)?;
            fields.push(OsStr::from_bytes(field).to_owned());
            rest = &tail[len..];
        }
        let mut fields = fields.into_iter();
        let mut next = || fields.next();
        let (cwd, stdout, stderr) = (next()?, next()?, next()?);
        let limit = |f: OsString| -> Option<Option<u64>> {
            if f.is_empty() {
                Some(None)
            } else {
                f.to_str()?.parse().ok().map(Some)
            }
        };
        let (cpu_s, memory_bytes, file_bytes) = (limit(next()?)?, limit(next()?)?, limit(next()?)?);
        let count: usize = next()?.to_str()?.parse().ok()?;
        let rest: Vec<OsString> = fields.collect();
        if rest.len() <= count {
            return None;
        }
        let mut rest = rest;
        let argv = rest.split_off(count);
        Some(Self {
            cwd,
            stdout,
            stderr,
            cpu_s,
            memory_bytes,
            file_bytes,
            env: rest,
            argv,
        })
    }
}

impl Reply {
    /// The reply as one frame.
    pub fn frame(&self) -> Vec<u8> {
        let mut body = Vec::new();
        match self {
            Reply::Status(raw, cpu_us) => {
                body.push(b'S');
                body.extend_from_slice(&raw.to_le_bytes());
                body.extend_from_slice(&cpu_us.to_le_bytes());
            }
            Reply::Failed(why) => {
                body.push(b'E');
                body.extend_from_slice(why.as_bytes());
            }
        }
        frame(&body)
    }

    /// A reply from a frame's body; `None` if it is malformed.
    pub fn parse(body: &[u8]) -> Option<Self> {
        match body.split_first()? {
            (b'S', rest) => {
                let (raw, cpu) = rest.split_first_chunk::<4>()?;
                let cpu: [u8; 8] = cpu.try_into().ok()?;
                Some(Reply::Status(
                    i32::from_le_bytes(*raw),
                    u64::from_le_bytes(cpu),
                ))
            }
            (b'E', why) => Some(Reply::Failed(String::from_utf8_lossy(why).into_owned())),
            _ => None,
        }
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The length a frame's first four bytes announce, if acceptable.
pub fn frame_len(head: [u8; 4]) -> Option<usize> {
    let len = u32::from_le_bytes(head) as usize;
    (len <= MAX_FRAME).then_some(len)
}

/// The launcher's loop, inside the sandbox: one request, one reply, until
/// stdin ends (the worker let the sandbox go). Returns the exit code.
#[allow(unsafe_code)]
pub fn serve() -> u8 {
    // Not dumpable: a job runs as the same user, and could otherwise
    // ptrace this process (or read and write its memory) and so outlive
    // its job into the next one. The compilers it execs are dumpable
    // again (execve resets it); this process stays out of their reach.
    // SAFETY: prctl with PR_SET_DUMPABLE takes integers only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return 1;
    }
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    if output
        .write_all(&[READY])
        .and_then(|()| output.flush())
        .is_err()
    {
        return 1;
    }
    loop {
        let mut head = [0u8; 4];
        match input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return 0,
            Err(_) => return 1,
        }
        let Some(len) = frame_len(head) else { return 2 };
        let mut body = vec![0; len];
        if input.read_exact(&mut body).is_err() {
            return 1;
        }
        let Some(request) = Request::parse(&body) else {
            return 2;
        };
        let mut reply = run(&request);
        if let Err(why) = stop_the_rest() {
            reply = Reply::Failed(why);
        }
        if output
            .write_all(&reply.frame())
            .and_then(|()| output.flush())
            .is_err()
        {
            return 1;
        }
    }
}

/// Runs one compile to its end.
#[allow(unsafe_code)]
fn run(r: &Request) -> Reply {
    use std::os::unix::process::CommandExt;
    let Some((program, args)) = r.argv.split_first() else {
        return Reply::Failed("empty command line".into());
    };
    let open = |path: &OsString| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    };
    let (stdout, stderr) = match (open(&r.stdout), open(&r.stderr)) {
        (Ok(o), Ok(e)) => (o, e),
        (Err(e), _) | (_, Err(e)) => return Reply::Failed(format!("job output files: {e}")),
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .current_dir(&r.cwd)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    for entry in &r.env {
        let bytes = entry.as_bytes();
        if let Some(eq) = bytes.iter().position(|b| *b == b'=') {
            cmd.env(
                OsStr::from_bytes(&bytes[..eq]),
                OsStr::from_bytes(&bytes[eq + 1..]),
            );
        }
    }
    let (cpu, memory, file) = (r.cpu_s, r.memory_bytes, r.file_bytes);
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setrlimit(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || crate::sandbox::set_rlimits(cpu, memory, file));
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Reply::Failed(format!("cannot start {}: {e}", program.to_string_lossy())),
    };
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child, writing into the two locals.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if got == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if got < 0 && e.kind() != std::io::ErrorKind::Interrupted {
            return Reply::Failed(format!("cannot wait for the compile: {e}"));
        }
    }
    let us = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
    Reply::Status(status, us(usage.ru_utime) + us(usage.ru_stime))
}

/// Kills every other process of the sandbox and reaps them all: a job that
/// forked into the background ends with its job. This process is the
/// namespace's pid 1 (bwrap `--as-pid-1`), so every orphan of a job is its
/// child, and no other process lives on from one job to the next.
#[allow(unsafe_code)]
fn stop_the_rest() -> Result<(), String> {
    // SAFETY: kill(2) with pid -1 signals every process of this PID
    // namespace but the caller; it has no memory effects.
    unsafe {
        libc::kill(-1, libc::SIGKILL);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes only the local status.
        let got = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if got > 0 {
            continue;
        }
        if got < 0 {
            // ECHILD: none left (EINTR: ask again).
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
                return Ok(());
            }
            continue;
        }
        if std::time::Instant::now() > deadline {
            return Err("a job's processes outlived it by 5 s".into());
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &[u8] {
        let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 4);
        &frame[4..]
    }

    #[test]
    fn requests_and_replies_read_back_as_written() {
        let r = Request {
            cwd: "/home/u/p".into(),
            stdout: "/.gridcc-tmp/out".into(),
            stderr: "/.gridcc-tmp/err".into(),
            cpu_s: Some(300),
            memory_bytes: None,
            file_bytes: Some(1 << 30),
            env: vec!["LANG=C.UTF-8".into(), "EMPTY=".into()],
            argv: vec![
                "/usr/bin/gcc".into(),
                "-c".into(),
                "".into(),
                "a b.c".into(),
            ],
        };
        assert_eq!(Request::parse(body(&r.frame())), Some(r));
        for reply in [
            Reply::Status(0, 0),
            Reply::Status(9, 1_234_567),
            Reply::Failed("no".into()),
        ] {
            assert_eq!(Reply::parse(body(&reply.frame())), Some(reply));
        }
    }

    #[test]
    fn malformed_frames_are_refused() {
        let good = Request {
            cwd: "/".into(),
            stdout: "o".into(),
            stderr: "e".into(),
            cpu_s: None,
            memory_bytes: None,
            file_bytes: None,
            env: vec![],
            argv: vec!["/bin/true".into()],
        }
        .frame();
        let good = body(&good);
        assert!(
            Request::parse(&good[..good.len() - 1]).is_none(),
            "cut short"
        );
        assert!(
            Request::parse(&good[..good.len() - 13]).is_none(),
            "no argv"
        );
        assert!(Request::parse(&[]).is_none());
        assert!(Reply::parse(b"S12").is_none());
        assert!(Reply::parse(b"S1234").is_none(), "no CPU time");
        assert!(Reply::parse(b"X").is_none());
        assert!(frame_len(u32::MAX.to_le_bytes()).is_none());
    }
}
