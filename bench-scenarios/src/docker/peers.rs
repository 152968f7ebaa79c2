//! The peers' servers on the docker backend: each `distccd`, `iceccd` and
//! `icecc-scheduler` in a container of its own from `gridcc-peers:local`
//! (`docker/Dockerfile.peers`, Debian's packages), labelled and removed
//! like gridcc's containers (on stop, on drop, and by
//! [`super::remove_containers`] on Ctrl-C).
//!
//! - A daemon gets its worker's `NanoCpus` and `Memory`, exactly as a
//!   gridcc worker container of that shape ([`super::ContainerSpec::limit`]).
//! - distcc's daemons use host networking and listen on 127.0.0.1 only,
//!   as gridcc's servers do.
//! - icecream's namespace is that of a holder container started with
//!   `--network none` (only `lo`: the scheduler's broadcasts reach no
//!   one), named on the host with `ip netns attach` so that the client
//!   side joins it with `ip netns exec` as on the local backend; the
//!   scheduler and the daemons join it with `--network container:HOLDER`.
//! - The directories a server writes (logs, sockets, environments) are
//!   mounted at the same path, so the peers' code names the same files on
//!   both backends.

use std::sync::Arc;

use anyhow::Context as _;

use super::{ContainerSpec, Engine, PEERS_IMAGE};
use crate::peers::launch::{Launcher, Netns, Server, ServerSpec};

/// Starts peers' servers as containers.
pub(super) struct Containers {
    engine: Arc<Engine>,
}

impl Containers {
    pub(super) fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

/// A running peer container.
struct Container {
    engine: Arc<Engine>,
    name: String,
    removed: bool,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("name", &self.name)
            .field("removed", &self.removed)
            .finish()
    }
}

impl Server for Container {
    fn cpu_s(&self) -> f64 {
        self.engine.cpu_seconds(&self.name).unwrap_or(f64::NAN)
    }

    fn exited(&mut self) -> Option<String> {
        let why = self.engine.not_running(&self.name)?;
        Some(format!(
            "stopped: {why}; {}",
            self.engine.last_lines(&self.name)
        ))
    }

    fn kill(&mut self) {
        if !std::mem::replace(&mut self.removed, true) {
            // Gone already (Ctrl-C removed it) counts as removed.
            let _ = self.engine.remove(&self.name);
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Containers {
    fn start(&self, spec: &ContainerSpec) -> anyhow::Result<Box<dyn Server>> {
        let name = self.engine.run(spec)?;
        Ok(Box::new(Container {
            engine: Arc::clone(&self.engine),
            name,
            removed: false,
        }))
    }
}

impl Launcher for Containers {
    fn launch(&mut self, spec: &ServerSpec<'_>) -> anyhow::Result<Box<dyn Server>> {
        let mut c = ContainerSpec::new(spec.name.clone(), PEERS_IMAGE);
        c.args = std::iter::once(spec.program.to_owned())
            .chain(spec.args.iter().cloned())
            .collect();
        c.env = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if let Some(ns) = spec.netns {
            let holder = ns
                .container
                .as_ref()
                .with_context(|| format!("network namespace {} has no container", ns.name))?;
            c.network = format!("container:{holder}");
        }
        if let Some(w) = spec.limit {
            c.limit(w);
        }
        c.binds = spec
            .dirs
            .iter()
            .map(|d| {
                d.to_str()
                    .map(str::to_owned)
                    .with_context(|| format!("path {} is not UTF-8", d.display()))
            })
            .collect::<anyhow::Result<_>>()?;
        self.start(&c)
    }

    fn netns(&mut self, name: &str) -> anyhow::Result<Netns> {
        let mut c = ContainerSpec::new(format!("netns {name}"), PEERS_IMAGE);
        c.args = vec!["sleep".into(), "infinity".into()];
        c.network = "none".to_owned();
        let container = self.engine.run(&c)?;
        let holder = Box::new(Container {
            engine: Arc::clone(&self.engine),
            name: container.clone(),
            removed: false,
        });
        let pid = self.engine.pid(&container)?;
        Netns::attach(name, pid, container, holder)
    }
}
