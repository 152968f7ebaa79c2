//! `gridcc-bench run`: executes a scenario. For each repetition it goes
//! through every cell (configuration × policy, plus the plain local build)
//! in the same order, so drift over the session hits every configuration
//! alike; each run cleans the workload, starts a fresh grid on the chosen
//! backend, builds through the wrapper under the client's CPU limit, and
//! appends one JSON line to `runs.jsonl` whatever happened. Nothing is
//! retried or dropped: a failed build, a failed check, a server that died
//! or objects that differ from the local build's are recorded as such.
//! The report (`report.rs`) is computed from that file afterwards.
//!
//! Here: the command lines, the session (scenarios, cells, the interleaved
//! order); `one_run` runs one cell, `workload` holds the workload's own
//! commands and the object check, `record` what a run stores, `interrupt`
//! Ctrl-C and SIGTERM.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::cgroup::Cgroups;
use crate::scenario::{self, Cell, Loaded, LOCAL_MAKE};

mod interrupt;
mod one_run;
mod record;
mod workload;

use interrupt::install_interrupt_handler;
pub use interrupt::{interrupted, Interrupted};
pub use record::{CpuRecord, JobsRecord, Machine, ObjectsRecord, RunRecord, WorkerRecord};
use workload::{build_command, clean, hash_objects, prepare};

/// Which backend runs the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Local,
    Docker,
}

/// The arguments of `gridcc-bench run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Scenario file (see bench-scenarios/*.toml).
    #[arg(value_name = "SCENARIO.toml")]
    pub scenario: PathBuf,
    /// Where the grid runs: worker processes under cgroup CPU quotas, or
    /// one Docker container per server (images gridcc-*:local, built by
    /// docker/build-images.sh).
    #[arg(long, value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,
    /// Results directory [default: target/bench-results/NAME-BACKEND-TIME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Repetitions per configuration, instead of the scenario's.
    #[arg(long, value_name = "N")]
    pub repetitions: Option<u32>,
    /// Leave out the plain local `make` runs (they do not depend on the
    /// backend; take them from another run of the session). The objects
    /// are then checked against one unmeasured plain build. Refused when
    /// the scenario's baseline is `local-make`.
    #[arg(long)]
    pub no_local_make: bool,
    /// Start every run's coordinator with the costs learned in an earlier
    /// run (`--costs`): a `trace.jsonl` from a results directory, or any
    /// JSON lines with `key` and `cost_s`. Without it every run starts
    /// cold, as a first build would.
    #[arg(long, value_name = "FILE")]
    pub costs: Option<PathBuf>,
    /// Directory with gridcc, gridcc-coordinator and gridcc-worker
    /// [default: the directory of this gridcc-bench].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// Runs the scenario and writes the results directory; returns it.
pub fn run(args: &Args) -> anyhow::Result<PathBuf> {
    let mut dirs = run_many(
        std::slice::from_ref(&args.scenario),
        args,
        args.out.clone(),
        false,
    )?;
    Ok(dirs.remove(0))
}

/// The arguments of `gridcc-bench matrix`.
#[derive(Debug, Clone, clap::Args)]
pub struct MatrixArgs {
    /// Scenario files, run together: every repetition goes through each
    /// scenario's cells in turn, so drift hits all of them alike.
    #[arg(value_name = "SCENARIO.toml", required = true, num_args = 1..)]
    pub scenarios: Vec<PathBuf>,
    /// The options of `run`; `--out` is the matrix's directory, each
    /// scenario's results go in a subdirectory named after it.
    #[command(flatten)]
    pub run: MatrixRun,
}

/// `run`'s options for a matrix (its scenario argument excepted).
#[derive(Debug, Clone, clap::Args)]
pub struct MatrixRun {
    #[arg(long, value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,
    /// Results directory [default: target/bench-results/matrix-BACKEND-TIME].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Repetitions per configuration, instead of each scenario's.
    #[arg(long, value_name = "N")]
    pub repetitions: Option<u32>,
    /// Start every coordinator with these learned costs (see `run --costs`).
    #[arg(long, value_name = "FILE")]
    pub costs: Option<PathBuf>,
    /// Directory with gridcc, gridcc-coordinator and gridcc-worker.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

/// Runs several scenarios interleaved into `OUT/<scenario name>/` each;
/// returns the matrix directory and the scenarios' directories.
pub fn matrix(args: &MatrixArgs) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let m = &args.run;
    let out = match &m.out {
        Some(o) => std::path::absolute(o).with_context(|| format!("{}", o.display()))?,
        None => repo_root(&args.scenarios[0])?
            .join("target/bench-results")
            .join(format!(
                "matrix-{}-{}",
                backend_name(m.backend),
                unix_ms() / 1000
            )),
    };
    let run_args = Args {
        scenario: args.scenarios[0].clone(),
        backend: m.backend,
        out: Some(out.clone()),
        repetitions: m.repetitions,
        no_local_make: false,
        costs: m.costs.clone(),
        bin_dir: m.bin_dir.clone(),
    };
    let dirs = run_many(&args.scenarios, &run_args, Some(out.clone()), true)?;
    Ok((out, dirs))
}

/// One scenario of a session, set up and ready to run its cells.
struct Session {
    loaded: Loaded,
    bin_dir: PathBuf,
    source: PathBuf,
    out: PathBuf,
    /// Object hashes of the first plain local build.
    reference: Option<BTreeMap<String, blake3::Hash>>,
    /// The `--costs` file's text, copied into each grid run's directory.
    costs: Option<String>,
    kind: BackendKind,
    cells: Vec<Cell>,
    jsonl: std::fs::File,
    index: usize,
}

/// Sets up every scenario (each in `out`, or `out/NAME` for a matrix),
/// then runs their cells interleaved: repetition by repetition, each
/// scenario's cells in turn. Returns the scenarios' directories.
fn run_many(
    paths: &[PathBuf],
    args: &Args,
    out: Option<PathBuf>,
    nested: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .context("locating gridcc-bench")?
            .parent()
            .context("gridcc-bench has no directory")?
            .to_path_buf(),
    };
    // Absolute: the build runs in the workload's directory.
    let bin_dir = std::fs::canonicalize(&bin_dir)
        .with_context(|| format!("--bin-dir {}", bin_dir.display()))?;
    for b in ["gridcc", "gridcc-coordinator", "gridcc-worker"] {
        if !bin_dir.join(b).is_file() {
            bail!(
                "{} not found: build with `cargo build --release --bins` or pass --bin-dir",
                bin_dir.join(b).display()
            );
        }
    }
    let mut loadeds = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for path in paths {
        let mut loaded = scenario::load(path)?;
        if let Some(r) = args.repetitions {
            if r == 0 {
                bail!("--repetitions must be at least 1");
            }
            loaded.scenario.repetitions = r;
        }
        if args.no_local_make {
            if loaded.scenario.baseline == LOCAL_MAKE {
                bail!("--no-local-make: the scenario's baseline is {LOCAL_MAKE}");
            }
            loaded.scenario.local_make = false;
        }
        if !names.insert(loaded.scenario.name.clone()) {
            bail!("scenario {:?} is given twice", loaded.scenario.name);
        }
        loadeds.push((path, loaded));
    }

    // The client's own limit is always a local cgroup, whatever the backend.
    let mut client_cgroups = Cgroups::detect();
    let mut backend: Box<dyn Backend> = match args.backend {
        BackendKind::Local => Box::new(crate::local::LocalBackend::new()),
        BackendKind::Docker => {
            let docker = crate::docker::DockerBackend::connect()?;
            let gone = crate::docker::remove_containers(crate::docker::Owner::Gone)?;
            if gone > 0 {
                eprintln!("gridcc-bench: removed {gone} container(s) left by an earlier run");
            }
            Box::new(docker)
        }
    };
    let costs_text = match &args.costs {
        Some(c) => Some(read_costs(c)?),
        None => None,
    };

    let mut sessions = Vec::new();
    for (path, loaded) in loadeds {
        let root = repo_root(path)?;
        let source = root.join(&loaded.workload.dir);
        // Absolute: the build runs in the workload's directory and is
        // handed paths under `out` (its CPU stat file, the job log).
        let dir = match (&out, nested) {
            (Some(o), false) => {
                std::path::absolute(o).with_context(|| format!("{}", o.display()))?
            }
            (Some(o), true) => o.join(sanitize(&loaded.scenario.name)),
            (None, _) => root.join("target/bench-results").join(format!(
                "{}-{}-{}",
                loaded.scenario.name,
                backend_name(args.backend),
                unix_ms() / 1000
            )),
        };
        if dir.join("runs.jsonl").exists() {
            bail!(
                "{} already holds results (runs.jsonl); choose another --out, or remove it",
                dir.display()
            );
        }
        std::fs::create_dir_all(dir.join("runs"))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("scenario.toml"), &loaded.text)?;
        std::fs::write(dir.join("workload.toml"), &loaded.workload_text)?;

        let mut notes = backend.notes();
        if loaded.scenario.client_cpus.is_some() {
            if let Some(n) = client_cgroups.note() {
                notes.push(format!("client: {n}"));
            }
        } else {
            notes.push(
                "client CPU not limited: preprocessing and linking used any free core".into(),
            );
        }
        if let Some(c) = &args.costs {
            notes.push(format!(
                "--costs {}: every coordinator started with costs learned in an earlier run (not a cold first build)",
                c.display()
            ));
        }
        if let Some(r) = args.repetitions {
            notes.push(format!(
                "--repetitions {r} overrode the scenario's repetitions"
            ));
        }
        if args.no_local_make {
            notes.push(
                "--no-local-make: no plain local make runs here; objects were checked against one unmeasured plain build"
                    .to_owned(),
            );
        }
        if nested {
            notes.push(format!(
                "run in a matrix of {} scenarios, interleaved repetition by repetition",
                paths.len()
            ));
        }
        let machine = Machine::describe(backend.name(), &notes);
        std::fs::write(
            dir.join("machine.json"),
            serde_json::to_vec_pretty(&machine)?,
        )?;
        // The client side runs on this host whatever the backend.
        for p in &loaded.scenario.peers {
            if let Some(peer) = crate::peers::Peer::of(p) {
                crate::peers::ensure_installed(peer)?;
            }
        }
        let jsonl = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("runs.jsonl"))?;
        sessions.push((
            root,
            Session {
                cells: loaded.scenario.cells(),
                loaded,
                bin_dir: bin_dir.clone(),
                source,
                out: dir,
                reference: None,
                costs: costs_text.clone(),
                kind: args.backend,
                jsonl,
                index: 0,
            },
        ));
    }
    install_interrupt_handler(args.backend);

    let dirs: Vec<PathBuf> = sessions.iter().map(|(_, s)| s.out.clone()).collect();
    let mut sessions: Vec<Session> = {
        let mut ready = Vec::new();
        for (root, mut s) in sessions {
            if let Err(e) = s.prepare(&root) {
                if interrupted() {
                    return Ok(dirs);
                }
                return Err(e);
            }
            ready.push(s);
        }
        ready
    };
    let total: usize = sessions
        .iter()
        .map(|s| s.cells.len() * s.loaded.scenario.repetitions as usize)
        .sum();
    let most = sessions
        .iter()
        .map(|s| s.loaded.scenario.repetitions)
        .max()
        .unwrap_or(0);
    let mut done = 0;
    'runs: for rep in 1..=most {
        for s in sessions
            .iter_mut()
            .filter(|s| rep <= s.loaded.scenario.repetitions)
        {
            for cell in s.cells.clone() {
                if interrupted() {
                    break 'runs;
                }
                let result = s.one(backend.as_mut(), &mut client_cgroups, rep, &cell);
                // A run cut short by Ctrl-C measured nothing: it is left
                // out, and the runs before it are reported as they are.
                if interrupted() {
                    eprintln!(
                        "gridcc-bench: interrupted during run {} ({cell}); it is not recorded",
                        done + 1
                    );
                    break 'runs;
                }
                let record = result?;
                done += 1;
                eprintln!(
                    "[{done}/{total}] {}rep {rep} {cell}: {:.2} s {}{}",
                    if nested {
                        format!("{} ", s.loaded.scenario.name)
                    } else {
                        String::new()
                    },
                    record.wall_s,
                    if record.ok { "ok" } else { "FAILED: " },
                    record.failure.as_deref().unwrap_or("")
                );
                let mut line = serde_json::to_vec(&record)?;
                line.push(b'\n');
                s.jsonl.write_all(&line)?;
                s.jsonl.flush()?;
                s.index += 1;
            }
        }
    }
    Ok(dirs)
}

/// Reads and checks a `--costs` file. The coordinator checks it too, but a
/// bad file would then fail every run one by one: refuse it here with its
/// line number.
fn read_costs(c: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(c).with_context(|| format!("--costs {}", c.display()))?;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("--costs {} line {}: not JSON", c.display(), i + 1))?;
        if !(v["key"].is_string() && v["cost_s"].is_number()) {
            bail!(
                "--costs {} line {}: needs `key` and `cost_s` (a trace.jsonl has both)",
                c.display(),
                i + 1
            );
        }
    }
    Ok(text)
}

impl Session {
    /// Fetches and configures the workload; without plain local runs,
    /// builds it once plainly for the object check.
    fn prepare(&mut self, root: &Path) -> anyhow::Result<()> {
        let w = &self.loaded.workload;
        prepare(w, root, &self.source)?;
        if !self.loaded.scenario.local_make {
            eprintln!("gridcc-bench: reference build (plain make, not measured)");
            clean(w, &self.source, &self.out.join("reference.log"))?;
            let j = self.loaded.scenario.make_jobs;
            let status = build_command(w, &self.source, "gcc", "g++", j, None, None)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("the plain local build of {} fails", w.name);
            }
            self.reference = Some(hash_objects(&self.source, w)?);
        }
        Ok(())
    }
}

fn backend_name(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Local => "local",
        BackendKind::Docker => "docker",
    }
}

/// The nearest ancestor of `path` (made absolute) that holds `Cargo.lock`
/// or `.git`, else the scenario's own directory: relative workload paths
/// are relative to it (absolute ones are used as they are).
fn repo_root(path: &Path) -> anyhow::Result<PathBuf> {
    let abs = std::fs::canonicalize(path).with_context(|| format!("{}", path.display()))?;
    let parent = abs.parent().unwrap_or(Path::new("/")).to_path_buf();
    Ok(abs
        .ancestors()
        .skip(1)
        .find(|d| d.join("Cargo.lock").exists() || d.join(".git").exists())
        .map_or(parent, Path::to_path_buf))
}

/// A cell or configuration name as a file-name part.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_names_are_safe() {
        assert_eq!(sanitize("0.2+0.3+0.5"), "0.2_0.3_0.5");
        assert_eq!(sanitize("least-loaded"), "least-loaded");
    }
}
