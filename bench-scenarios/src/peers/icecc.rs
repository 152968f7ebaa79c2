//! icecream (icecc) as a peer: several `iceccd` on one host, which
//! icecream supports only the way its own test suite runs it
//! (`tests/test.sh` in icecream's sources):
//!
//! - **A network namespace with only `lo`** (`ip netns add`). The
//!   scheduler and the daemons broadcast UDP to find each other on every
//!   interface but loopback, and bind all interfaces; inside the namespace
//!   there is nothing to broadcast to and nothing to bind but 127.0.0.1, so
//!   no packet leaves the machine and the fixed ports (the scheduler's
//!   8765/8766) meet nobody else's. The build runs in the namespace too:
//!   the `icecc` client sends each job to its daemon over TCP itself.
//!   On the docker backend the namespace is a container's
//!   (`--network none`, which has only `lo`), named for `ip netns exec`,
//!   and the scheduler's and daemons' containers join it
//!   (`--network container:…`): host networking would let the
//!   scheduler's broadcasts out.
//! - **One scheduler** (`icecc-scheduler -vvv`: at that level it logs a
//!   `BEGIN`/`END` line per job with the server's name, which is where the
//!   job counts come from).
//! - **One daemon per worker**, `iceccd -s 127.0.0.1 -N workerK -m SLOTS -p
//!   PORT -b ENVDIR` under the worker's limits (its cgroup, or its
//!   container), with its own unix socket
//!   (`ICECC_TEST_SOCKET`, else every daemon takes
//!   `/var/run/icecc/iceccd.socket`), port and environment directory.
//!   It runs each compile chrooted in the compiler environment the client
//!   sends, as the `icecc` user.
//! - **One daemon for the client**, `--no-remote -m 0`, on the host on
//!   both backends (it belongs to the client's machine): the `icecc`
//!   wrapper talks to it through its socket; it compiles nothing and gates
//!   local jobs (links) to one at a time, as on a developer's machine
//!   that lends no CPU.
//! - **The client** (`CC="icecc gcc"`) with `ICECC_TEST_REMOTEBUILD=1`:
//!   without it, a job placed on a daemon at 127.0.0.1 is compiled by the
//!   client itself ("building myself, but telling localhost"), since
//!   icecream takes 127.0.0.1 for the client's own machine.
//! - **The compiler environment** (`icecc-create-env`, a 30 MB tarball of
//!   gcc) is made once per session and named in `ICECC_VERSION`, as a
//!   user of icecream makes it once. Each daemon wipes its environment
//!   directory when it starts, and installs the tarball on its first job
//!   (an upload and an unpack under its CPU quota, seconds on 0.125 CPU).
//!   A daemon that serves builds has it installed, so each run sends one
//!   small compile to every daemon (`ICECC_PREFERRED_HOST`) before the
//!   measured build; those jobs go to `icecc-warmup.log`, not the counts.
//!
//! The daemons run as the `icecc` user and write their logs, sockets and
//! environments in a state directory under the system's temporary
//! directory (the run directory's parents may be closed to that user, and
//! a socket path must fit in 108 bytes), which containers mount at the
//! same path; the logs are copied into the run directory when the grid
//! stops.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::launch::{self, Launcher, LocalServer, Netns, ServerSpec};
use super::{Daemon, DaemonJobs, Helper, Peer, PeerClient, PeerGrid, PeerSpec};
use crate::backend::Grid;

/// The first worker daemon's port (icecream's own default is 10245, the
/// client's daemon takes none); ports are private to the namespace.
const FIRST_PORT: u16 = 10246;

/// How long the daemons may take to log in: they retry the scheduler
/// every few seconds.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long installing the environment on every daemon may take.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(180);

/// A daemon's node name, which the scheduler's log names it by.
fn node(i: usize) -> String {
    format!("worker{}", i + 1)
}

const CLIENT_NODE: &str = "client";

/// The run directory's copy of the scheduler's log (the measured build's
/// part).
pub(super) fn scheduler_log(run_dir: &Path) -> PathBuf {
    run_dir.join("icecc-scheduler.log")
}

fn daemon_log(run_dir: &Path, i: usize) -> PathBuf {
    run_dir.join(format!("iceccd{}.log", i + 1))
}

/// What an icecream grid leaves to tear down once its processes are gone.
#[derive(Debug)]
pub(super) struct Site {
    netns: Netns,
    state: PathBuf,
    run_dir: PathBuf,
    workers: usize,
    /// Where the measured build's part of the scheduler's log begins.
    warm_offset: usize,
}

impl Site {
    fn scheduler_state_log(&self) -> PathBuf {
        self.state.join("scheduler.log")
    }

    /// Waits (at most 2 s) until the scheduler has logged the end of
    /// every job it began: a daemon reports a job done after the client has
    /// its object, so the build can finish before the last `END` line.
    pub(super) fn drain(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let text = std::fs::read_to_string(self.scheduler_state_log()).unwrap_or_default();
            let begun = text.lines().filter(|l| l.contains(" BEGIN: ")).count();
            let ended = text.lines().filter(|l| l.contains(" END ")).count();
            if ended >= begun {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Copies the logs into the run directory (the scheduler's split at
    /// the end of the warm-up), then removes the namespace and the state.
    pub(super) fn finish(self) {
        let log = std::fs::read(self.scheduler_state_log()).unwrap_or_default();
        let at = self.warm_offset.min(log.len());
        let _ = std::fs::write(self.run_dir.join("icecc-warmup.log"), &log[..at]);
        let _ = std::fs::write(scheduler_log(&self.run_dir), &log[at..]);
        for i in 0..self.workers {
            let _ = std::fs::copy(
                self.state.join(format!("iceccd{}.log", i + 1)),
                daemon_log(&self.run_dir, i),
            );
        }
        let _ = std::fs::copy(
            self.state.join("iceccd-client.log"),
            self.run_dir.join("iceccd-client.log"),
        );
        let _ = std::fs::remove_dir_all(&self.state);
        drop(self.netns);
    }
}

/// The compiler environment of the `gcc` on `PATH`, made once in
/// `session_dir/icecc-env/` (about 5 s) and reused by every run.
fn compiler_env(session_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = session_dir.join("icecc-env");
    let name_file = dir.join("ICECC_VERSION");
    if let Ok(name) = std::fs::read_to_string(&name_file) {
        let path = dir.join(name.trim());
        if path.is_file() {
            return Ok(path);
        }
    }
    std::fs::create_dir_all(&dir)?;
    let gcc = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("gcc"))
                .find(|g| g.is_file())
        })
        .context("no gcc on PATH to make icecream's compiler environment of")?;
    let out = Command::new("icecc-create-env")
        .arg(&gcc)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .context("running icecc-create-env")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    std::fs::write(dir.join("icecc-create-env.log"), out.stdout.as_slice())?;
    // Its last line: "creating <md5>.tar.gz".
    let name = stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("creating "))
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.contains('/'));
    let Some(name) = name.filter(|_| out.status.success()) else {
        bail!(
            "icecc-create-env {} failed ({}): {}",
            gcc.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    };
    std::fs::write(&name_file, name)?;
    Ok(dir.join(name))
}

/// Starts icecream's scheduler and daemons through `launcher`, and the
/// client's daemon on the host.
pub(super) fn start(spec: &PeerSpec<'_>, launcher: &mut dyn Launcher) -> anyhow::Result<PeerGrid> {
    let PeerSpec {
        workers,
        run_dir,
        session_dir,
        index,
    } = *spec;
    let env_tarball = compiler_env(session_dir)?;
    let tag = format!("gridcc-bench-{}-{index}", std::process::id());
    let state = std::env::temp_dir().join(&tag);
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state)?;
    // The daemons and the scheduler drop to the `icecc` user before they
    // open their logs and make their sockets and environment directories.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777))?;
    let netns = launcher.netns(&tag)?;
    let scheduler_log = state.join("scheduler.log");
    let mut grid = PeerGrid {
        peer: Peer::Icecc,
        daemons: Vec::new(),
        helpers: Vec::new(),
        client: PeerClient {
            cc: "icecc gcc".into(),
            cxx: "icecc g++".into(),
            env: vec![
                (
                    "ICECC_TEST_SOCKET".into(),
                    state.join("client.socket").display().to_string(),
                ),
                ("ICECC_TEST_REMOTEBUILD".into(), "1".into()),
                ("ICECC_VERSION".into(), env_tarball.display().to_string()),
            ],
            netns: Some(tag.clone()),
        },
        site: Some(Site {
            netns,
            state: state.clone(),
            run_dir: run_dir.to_path_buf(),
            workers: workers.len(),
            warm_offset: 0,
        }),
    };
    let netns = &grid.site.as_ref().expect("just made").netns;
    let s = |p: &str| state.join(p).display().to_string();
    let server = |name: String, program, args, env, limit| ServerSpec {
        name,
        program,
        args,
        env,
        limit,
        netns: Some(netns),
        dirs: vec![state.clone()],
    };

    let scheduler = launcher.launch(&server(
        format!("icecc-scheduler{index}"),
        "icecc-scheduler",
        vec![
            "-n".into(),
            "gridcc-bench".into(),
            "-l".into(),
            s("scheduler.log"),
            "-vvv".into(),
        ],
        Vec::new(),
        None,
    ))?;
    grid.helpers.push(Helper {
        name: "icecc-scheduler",
        server: scheduler,
        cpu_base_s: 0.0,
    });
    let daemon_args = |name: &str, log: &str, env_dir: &str| -> Vec<String> {
        [
            "-s",
            "127.0.0.1",
            "-n",
            "gridcc-bench",
            "-N",
            name,
            "-l",
            log,
            "-b",
            env_dir,
            "-v",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
    };
    let mut args = daemon_args(CLIENT_NODE, &s("iceccd-client.log"), &s("env-client"));
    args.extend(["--no-remote".into(), "-m".into(), "0".into()]);
    let child = launch::spawn_local(
        Some(&netns.name),
        None,
        "iceccd",
        &args,
        &[("ICECC_TEST_SOCKET".into(), s("client.socket"))],
    )?;
    grid.helpers.push(Helper {
        name: "iceccd (client)",
        server: Box::new(LocalServer::new(child)),
        cpu_base_s: 0.0,
    });
    for (i, w) in workers.iter().enumerate() {
        let port = FIRST_PORT + i as u16;
        let mut args = daemon_args(
            &node(i),
            &s(&format!("iceccd{}.log", i + 1)),
            &s(&format!("env{}", i + 1)),
        );
        args.extend([
            "-m".into(),
            w.slots().to_string(),
            "-p".into(),
            port.to_string(),
        ]);
        let daemon = launcher.launch(&server(
            format!("iceccd{index}-{}", i + 1),
            "iceccd",
            args,
            vec![(
                "ICECC_TEST_SOCKET".into(),
                s(&format!("worker{}.socket", i + 1)),
            )],
            Some(w),
        ))?;
        grid.daemons.push(Daemon {
            server: daemon,
            port,
            log: daemon_log(run_dir, i),
            cpus: w.cpus,
            slots: w.slots(),
            cpu_base_s: 0.0,
        });
    }

    // Ready when every daemon has logged in to the scheduler.
    let names: Vec<String> = (0..workers.len())
        .map(node)
        .chain([CLIENT_NODE.to_owned()])
        .collect();
    let deadline = Instant::now() + LOGIN_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&scheduler_log).unwrap_or_default();
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !text.contains(&format!(" login {n} ")))
            .collect();
        if missing.is_empty() {
            break;
        }
        still_up(&mut grid)?;
        if Instant::now() > deadline {
            bail!(
                "icecream's daemons {missing:?} did not log in to the scheduler within {} s (state in {})",
                LOGIN_TIMEOUT.as_secs(),
                state.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    warm_up(&mut grid, &state, workers.len())?;
    let offset = std::fs::metadata(&scheduler_log).map_or(0, |m| m.len() as usize);
    if let Some(site) = grid.site.as_mut() {
        site.warm_offset = offset;
    }
    grid.start_cpu_count();
    Ok(grid)
}

/// An error when the session was interrupted or one of the grid's
/// processes died: waiting for it would be in vain.
fn still_up(grid: &mut PeerGrid) -> anyhow::Result<()> {
    if crate::run::interrupted() {
        bail!("interrupted");
    }
    if let Err(e) = grid.check_alive() {
        bail!("icecream did not start: {e}");
    }
    Ok(())
}

/// Installs the compiler environment on every worker's daemon: one small
/// compile each, placed there through `ICECC_PREFERRED_HOST`, until the
/// scheduler's log shows each daemon finished one.
fn warm_up(grid: &mut PeerGrid, state: &Path, workers: usize) -> anyhow::Result<()> {
    let (log, netns) = {
        let site = grid.site.as_ref().expect("an icecc grid has a site");
        (site.scheduler_state_log(), site.netns.name.clone())
    };
    let cold = |log: &Path| -> Vec<usize> {
        let done = parse_scheduler_log(&std::fs::read_to_string(log).unwrap_or_default());
        (0..workers)
            .filter(|&i| done.get(&node(i)).is_none_or(|j| j.ok == 0))
            .collect()
    };
    let source = state.join("warmup.c");
    std::fs::write(&source, "int gridcc_bench_warmup(void) { return 42; }\n")?;
    let deadline = Instant::now() + WARMUP_TIMEOUT;
    for round in 1.. {
        let todo = cold(&log);
        if todo.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "icecream's daemons {:?} did not take a first job within {} s (state in {})",
                todo.iter().map(|&i| node(i)).collect::<Vec<_>>(),
                WARMUP_TIMEOUT.as_secs(),
                state.display()
            );
        }
        let mut clients = Vec::new();
        for &i in &todo {
            let mut env = grid.client.env.clone();
            env.push(("ICECC_PREFERRED_HOST".into(), node(i)));
            let object = state.join(format!("warmup-{}-{round}.o", i + 1));
            let args: Vec<String> = [
                "gcc".to_owned(),
                "-c".into(),
                source.display().to_string(),
                "-o".into(),
                object.display().to_string(),
            ]
            .into();
            clients.push(launch::spawn_local(
                Some(&netns),
                None,
                "icecc",
                &args,
                &env,
            )?);
        }
        let mut waited = Ok(());
        for c in &mut clients {
            while waited.is_ok() && c.try_wait()?.is_none() {
                waited = still_up(grid);
                if Instant::now() > deadline {
                    waited = Err(anyhow::anyhow!("the warm-up compiles did not finish"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for c in &mut clients {
            if c.try_wait()?.is_none() {
                launch::kill_group(c);
            } else {
                // Reaped: its pid may be anyone's now.
                crate::reap::unregister(c.id());
            }
        }
        waited?;
        // The daemon reports the job done after the client has its object:
        // give the scheduler's log a moment before looking again.
        let settle = Instant::now() + Duration::from_secs(5);
        while Instant::now() < settle && !cold(&log).is_empty() {
            still_up(grid)?;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

/// Per server (node name), the jobs icecream's scheduler logged: at `-vvv`
/// it writes `BEGIN: ID client=… server=NAME(arch)` when a job starts and
/// `END ID status=S … real=MS … server=NAME` when it ends (a failed job's
/// `END` carries only its status, so its server comes from the `BEGIN`).
pub(super) fn parse_scheduler_log(text: &str) -> std::collections::BTreeMap<String, DaemonJobs> {
    use std::collections::BTreeMap;
    let mut server_of: BTreeMap<&str, &str> = BTreeMap::new();
    let mut out: BTreeMap<String, DaemonJobs> = BTreeMap::new();
    let field = |words: &[&str], key: &str| -> Option<String> {
        words
            .iter()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_owned)
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(at) = words.iter().position(|w| *w == "BEGIN:") {
            let (Some(id), Some(server)) = (
                words.get(at + 1),
                words.iter().find_map(|w| w.strip_prefix("server=")),
            ) else {
                continue;
            };
            // `server=worker1(x86_64)`.
            let name = server.split('(').next().unwrap_or(server);
            server_of.insert(id, name);
        } else if let Some(at) = words.iter().position(|w| *w == "END") {
            let Some(id) = words.get(at + 1) else {
                continue;
            };
            let Some(status) = field(&words, "status=").and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            let server = field(&words, "server=")
                .or_else(|| server_of.get(id).map(|s| (*s).to_owned()))
                .unwrap_or_default();
            let jobs = out.entry(server).or_default();
            if status == 0 {
                jobs.ok += 1;
            } else {
                jobs.failed += 1;
            }
            if let Some(ms) = field(&words, "real=").and_then(|r| r.parse::<f64>().ok()) {
                jobs.times_s.push(ms / 1000.0);
            }
        }
    }
    out
}

/// The jobs icecream ran on the client itself, from the scheduler's
/// `handle_local_job OUTPUT ID` lines: by kind, an object (a compile the
/// client did itself, such as gcc's caret workaround: a remote compile
/// that printed anything is compiled again locally) or anything else (a
/// link).
pub(super) fn parse_local_jobs(text: &str) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(at) = words.iter().position(|w| *w == "handle_local_job") else {
            continue;
        };
        let Some(output) = words.get(at + 1) else {
            continue;
        };
        let kind = if output.ends_with(".o") {
            LOCAL_OBJECT
        } else {
            "icecc local job (link or other)"
        };
        *out.entry(kind.to_owned()).or_default() += 1;
    }
    out
}

/// The kind of local job that means a compile fell back to the client.
pub(super) const LOCAL_OBJECT: &str = "icecc compiled an object on the client";

/// The measured build's local jobs (see [`parse_local_jobs`]).
pub(super) fn local_jobs(run_dir: &Path) -> std::collections::BTreeMap<String, u64> {
    parse_local_jobs(&std::fs::read_to_string(scheduler_log(run_dir)).unwrap_or_default())
}

/// Per worker, the measured build's jobs from the run directory's copy of
/// the scheduler's log (jobs on servers that are no worker, none expected,
/// are left out).
pub(super) fn daemon_jobs(run_dir: &Path, workers: usize) -> Vec<DaemonJobs> {
    let mut per =
        parse_scheduler_log(&std::fs::read_to_string(scheduler_log(run_dir)).unwrap_or_default());
    (0..workers)
        .map(|i| per.remove(&node(i)).unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_logs_are_counted_per_server() {
        let log = "\
[8115] 2026-12-07 23:19:00: login worker1 protocol version: 43 features: env_xz env_zstd []
[8115] 2026-12-07 23:19:57: NEW 3 client=client versions=[8b59(x86_64)] a.c C 0
[8115] 2026-12-07 23:19:57: BEGIN: 3 client=client(x86_64) server=worker2(x86_64)
[8115] 2026-12-07 23:19:57: BEGIN: 5 client=client(x86_64) server=worker1(x86_64)
[8115] 2026-12-07 23:19:57: END 3 status=0 in=117757(24%) out=3592(100%) real=52 user=11 sys=5 pfaults=2013 server=worker2
[8115] 2026-12-07 23:19:57: END 5 status=1
[8115] 2026-12-07 23:19:57: BEGIN: 4 client=client(x86_64) server=worker2(x86_64)
[8115] 2026-12-07 23:19:58: END 4 status=0 in=117757(24%) out=3592(100%) real=1200 user=9 sys=6 pfaults=2009 server=worker2
";
        let per = parse_scheduler_log(log);
        assert_eq!(
            per["worker2"],
            DaemonJobs {
                ok: 2,
                failed: 0,
                times_s: vec![0.052, 1.2]
            }
        );
        assert_eq!((per["worker1"].ok, per["worker1"].failed), (0, 1));
        assert!(parse_scheduler_log("").is_empty());
    }

    #[test]
    fn local_jobs_are_told_apart() {
        let log = "\
[1] 2026-12-07 23:34:55: handle_local_job /tmp/icet/calc/warn.o 16
[1] 2026-12-07 23:34:55: handle_local_job_done 16
[1] 2026-12-07 23:34:55: handle_local_job /tmp/icet/calc/calc 17
[1] 2026-12-07 23:34:55: handle_local_job_done 17
";
        let local = parse_local_jobs(log);
        assert_eq!(local[LOCAL_OBJECT], 1);
        assert_eq!(local.values().sum::<u64>(), 2);
    }
}
