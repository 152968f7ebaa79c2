//! Where a peer's servers run. A [`Launcher`] starts one server (a
//! daemon, icecream's scheduler) under a worker's CPU and memory limits,
//! on the host's loopback or in a network namespace with only `lo`, and
//! hands back a [`Server`] to measure, watch and stop:
//!
//! - [`LocalLauncher`] (local backend): a process group under a cgroup,
//!   as gridcc's local workers run;
//! - `docker::peers` (docker backend): a container from
//!   `gridcc-peers:local` with the `NanoCpus`/`Memory` gridcc's worker
//!   containers get.
//!
//! What to start, how to tell it is ready and what its logs say is the
//! peers' own code (`peers.rs`, `icecc.rs`), the same on both backends.
//! The client side (the build, icecream's client daemon and its warm-up
//! compiles) always runs on the host: [`spawn_local`].

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

use crate::backend::WorkerSpec;
use crate::cgroup::{self, Cgroups};

/// One server of a peer grid.
pub(crate) trait Server: std::fmt::Debug {
    /// CPU seconds it has used so far, with everything it started; NaN
    /// when unknown.
    fn cpu_s(&self) -> f64;
    /// None while it runs; otherwise why not, in a few words.
    fn exited(&mut self) -> Option<String>;
    /// Stops it and everything it started. Safe to call again.
    fn kill(&mut self);
}

/// What one server is started with.
#[derive(Debug)]
pub(crate) struct ServerSpec<'a> {
    /// Unique within the session: names its cgroup (local) or its
    /// container's role label (docker), e.g. `distccd3-1`.
    pub(crate) name: String,
    pub(crate) program: &'a str,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// The worker whose CPU (and memory) limit it runs under; none for
    /// the servers that stand in for gridcc's coordinator, which is not
    /// limited either.
    pub(crate) limit: Option<&'a WorkerSpec>,
    /// The network namespace it joins; none: the host's, on 127.0.0.1.
    pub(crate) netns: Option<&'a Netns>,
    /// Host directories it reads and writes (logs, sockets, environments);
    /// a container mounts each at the same path, so every path in `args`
    /// and `env` means the same file inside and out.
    pub(crate) dirs: Vec<PathBuf>,
}

/// Starts a peer's servers on one backend.
pub(crate) trait Launcher {
    fn launch(&mut self, spec: &ServerSpec<'_>) -> anyhow::Result<Box<dyn Server>>;
    /// A network namespace with only `lo`, up, named `name` for
    /// `ip netns exec` (the client side joins it so).
    fn netns(&mut self, name: &str) -> anyhow::Result<Netns>;
}

/// A named network namespace with only `lo`; its name is removed on drop,
/// then whatever holds it (docker's holder container) is stopped.
#[derive(Debug)]
pub(crate) struct Netns {
    pub(crate) name: String,
    /// docker: the container whose namespace this is; the peer's other
    /// containers join it (`--network container:NAME`).
    pub(crate) container: Option<String>,
    holder: Option<Box<dyn Server>>,
}

impl Netns {
    /// A new namespace (`ip netns add`).
    pub(crate) fn create(name: &str) -> anyhow::Result<Self> {
        // A namespace left by an earlier process with this pid (killed
        // before its drop ran) is no one's now.
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])
            .with_context(|| format!("creating network namespace {name} (root is needed)"))?;
        let ns = Self {
            name: name.to_owned(),
            container: None,
            holder: None,
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Names the namespace of process `pid`, which `holder` (the
    /// container `container`) keeps, `name` (`ip netns attach`).
    pub(crate) fn attach(
        name: &str,
        pid: u32,
        container: String,
        mut holder: Box<dyn Server>,
    ) -> anyhow::Result<Self> {
        let _ = ip(&["netns", "del", name]);
        if let Err(e) = ip(&["netns", "attach", name, &pid.to_string()]) {
            holder.kill();
            return Err(e.context(format!("naming {container}'s network namespace {name}")));
        }
        Ok(Self {
            name: name.to_owned(),
            container: Some(container),
            holder: Some(holder),
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
        if let Some(h) = self.holder.as_mut() {
            h.kill();
        }
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `ip`'s arguments that run `program args…` inside namespace `netns`.
fn in_netns(netns: &str, program: &str, args: &[String]) -> Vec<String> {
    ["netns", "exec", netns, program]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(args.iter().cloned())
        .collect()
}

/// Starts `program args…` on this host, in namespace `netns` when given,
/// under `limit` when given, in a process group of its own registered for
/// interrupts (see reap.rs), with no terminal I/O.
pub(crate) fn spawn_local(
    netns: Option<&str>,
    limit: Option<&cgroup::Limited>,
    program: &str,
    args: &[String],
    env: &[(String, String)],
) -> anyhow::Result<Child> {
    let mut cmd = match netns {
        Some(ns) => cgroup::command(limit, Path::new("ip"), &in_netns(ns, program, args)),
        None => cgroup::command(limit, Path::new(program), args),
    };
    cmd.envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    crate::reap::register(child.id());
    Ok(child)
}

/// Kills the process group `child` leads (preforked children and running
/// compiles too) and reaps it.
pub(crate) fn kill_group(child: &mut Child) {
    let pgid = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    crate::reap::unregister(pgid);
}

/// CPU seconds of every process in process group `pgid`: utime + stime of
/// each, plus the children each has reaped.
fn group_cpu_s(pgid: u32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let mut ticks = 0u64;
    for e in entries.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is the state (field 3): pgrp is field 5, times 14–17.
        if f.get(2).and_then(|g| g.parse::<u32>().ok()) != Some(pgid) {
            continue;
        }
        ticks += f
            .get(11..15)
            .map_or(0, |t| t.iter().filter_map(|x| x.parse::<u64>().ok()).sum());
    }
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

/// A server that is a process group on this host. Its CPU is every
/// process of the group from `/proc` (distccd preforks, and a child's CPU
/// reaches the parent only when it exits, so the parent alone would
/// undercount).
#[derive(Debug)]
pub(crate) struct LocalServer {
    child: Child,
    killed: bool,
}

impl LocalServer {
    pub(crate) fn new(child: Child) -> Self {
        Self {
            child,
            killed: false,
        }
    }
}

impl Server for LocalServer {
    fn cpu_s(&self) -> f64 {
        group_cpu_s(self.child.id())
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(None) => None,
            Ok(Some(st)) => Some(format!("exited ({st})")),
            Err(e) => Some(format!("cannot be queried: {e}")),
        }
    }

    fn kill(&mut self) {
        // Once reaped, the group's id may be anyone's.
        if !std::mem::replace(&mut self.killed, true) {
            kill_group(&mut self.child);
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The local backend's servers: processes, each worker's in a cgroup of
/// its own with the worker's CPU quota (and memory limit).
#[derive(Debug)]
pub(crate) struct LocalLauncher<'a> {
    pub(crate) cgroups: &'a mut Cgroups,
}

impl Launcher for LocalLauncher<'_> {
    fn launch(&mut self, spec: &ServerSpec<'_>) -> anyhow::Result<Box<dyn Server>> {
        let limit = match spec.limit {
            Some(w) => self.cgroups.create(&spec.name, w.cpus, w.memory_mb)?,
            None => None,
        };
        let child = spawn_local(
            spec.netns.map(|n| n.name.as_str()),
            limit.as_ref(),
            spec.program,
            &spec.args,
            &spec.env,
        )?;
        Ok(Box::new(LocalServer::new(child)))
    }

    fn netns(&mut self, name: &str) -> anyhow::Result<Netns> {
        Netns::create(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_run_inside_the_namespace() {
        assert_eq!(
            in_netns("gridcc-bench-1-2", "iceccd", &["-v".into()]),
            ["netns", "exec", "gridcc-bench-1-2", "iceccd", "-v"]
        );
    }

    #[test]
    fn a_local_server_is_watched_and_killed_once() {
        let child = spawn_local(None, None, "sleep", &["30".into()], &[]).unwrap();
        let mut s = LocalServer::new(child);
        assert_eq!(s.exited(), None);
        assert!(s.cpu_s() >= 0.0);
        s.kill();
        assert!(s.exited().is_some());
        // Again: no signal to a group id that may be reused.
        s.kill();
    }
}
