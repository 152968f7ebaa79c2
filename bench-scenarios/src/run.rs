//! `gridcc-bench run`: executes a scenario. For each repetition it goes
//! through every cell (configuration × policy, plus the plain local build)
//! in the same order, so drift over the session hits every configuration
//! alike; each run cleans the workload, starts a fresh grid on the chosen
//! backend, builds through the wrapper under the client's CPU limit, and
//! appends one JSON line to `runs.jsonl` whatever happened. Nothing is
//! retried or dropped: a failed build, a failed check, a server that died
//! or objects that differ from the local build's are recorded as such.
//! The report (`report.rs`) is computed from that file afterwards.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::backend::{Backend, Grid, GridSpec, ServerCpu, WorkerSpec};
use crate::cgroup::{self, Cgroups};
use crate::scenario::{self, Cell, Loaded, Workload, LOCAL_MAKE};
use crate::stats::{self, Spread};

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

/// One run, as stored in `runs.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Position in the session (0, 1, …): the interleaving is visible.
    pub index: usize,
    pub repetition: u32,
    pub configuration: String,
    /// Empty for the plain local build.
    pub policy: String,
    pub backend: BackendKind,
    pub make_jobs: u32,
    pub client_cpus: Option<f64>,
    pub workers: Vec<WorkerSpec>,
    pub started_unix_ms: u64,
    /// When the build command started (after cleaning and the grid's
    /// start): time zero of the replay.
    #[serde(default)]
    pub build_started_unix_ms: Option<u64>,
    /// Wall clock of the build command alone.
    pub wall_s: f64,
    /// The build, its check and every server survived, and every object is
    /// identical to the local build's.
    pub ok: bool,
    /// Why not, when not.
    pub failure: Option<String>,
    pub cpu: CpuRecord,
    pub jobs: JobsRecord,
    /// Per remote job, from the coordinator's trace.
    pub compile_s: Spread,
    pub queue_s: Spread,
    /// Per remote job, from the wrapper's `GRIDCC_JOB_LOG`: its wall time
    /// minus the worker's compile time (preprocessing, transfer, waiting
    /// for a slot, writing the object).
    #[serde(default)]
    pub overhead_ms: Spread,
    /// Compiles the wrapper ran on the client, by reason (from the job log;
    /// link steps and other non-compiles included).
    #[serde(default)]
    pub local_compiles: BTreeMap<String, u64>,
    pub objects: ObjectsRecord,
    /// What the report must state beside this run's numbers (a peer's
    /// objects that differ from the local build's).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Relative path of this run's directory (logs, trace).
    pub dir: String,
}

/// CPU seconds (user + system). A figure that could not be measured is
/// NaN here and `null` in runs.jsonl.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuRecord {
    /// make, the wrapper, preprocessing, linking: the client's side.
    #[serde(deserialize_with = "null_as_nan")]
    pub client_s: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub coordinator_s: f64,
    #[serde(deserialize_with = "nulls_as_nan")]
    pub workers_s: Vec<f64>,
    #[serde(deserialize_with = "null_as_nan")]
    pub total_s: f64,
}

/// serde_json writes a NaN as `null`; read it back as NaN.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn nulls_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobsRecord {
    /// Compiled on a worker (the coordinator's count).
    pub remote: u64,
    /// Assign requests the coordinator answered "compile locally".
    pub told_local: u64,
    pub failed: u64,
    /// Jobs silently compiled on the client although a grid was there: the
    /// grid did less than it seems. Never true for `local-make`.
    pub fell_back: bool,
    pub per_worker: Vec<WorkerRecord>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The coordinator's id for it (the `worker` field of trace lines).
    pub id: u64,
    pub address: String,
    pub cpus: f64,
    pub slots: u32,
    pub jobs: u64,
    /// Time with at least one job running.
    pub busy_s: f64,
    /// busy_s / wall_s.
    pub utilization: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectsRecord {
    pub found: usize,
    pub identical: usize,
    /// Up to 20 differing paths.
    pub different: Vec<String>,
    pub missing: usize,
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

    fn one(
        &mut self,
        backend: &mut dyn Backend,
        cgroups: &mut Cgroups,
        repetition: u32,
        cell: &Cell,
    ) -> anyhow::Result<RunRecord> {
        let index = self.index;
        let s = &self.loaded.scenario;
        let w = &self.loaded.workload;
        let name = format!(
            "{index:03}-{}{}",
            sanitize(&cell.configuration),
            if cell.policy.is_empty() {
                String::new()
            } else {
                format!("-{}", sanitize(&cell.policy))
            }
        );
        let dir = self.out.join("runs").join(&name);
        std::fs::create_dir_all(&dir)?;
        let make_jobs = s.jobs_for(&cell.configuration);
        let workers: Vec<WorkerSpec> = s
            .configuration(&cell.configuration)
            .map(|c| c.workers.clone())
            .unwrap_or_default();
        let mut record = RunRecord {
            index,
            repetition,
            configuration: cell.configuration.clone(),
            policy: cell.policy.clone(),
            backend: self.kind,
            make_jobs,
            client_cpus: s.client_cpus,
            workers: workers.clone(),
            started_unix_ms: unix_ms(),
            build_started_unix_ms: None,
            wall_s: 0.0,
            ok: false,
            failure: None,
            cpu: CpuRecord::default(),
            jobs: JobsRecord::default(),
            compile_s: Spread::default(),
            queue_s: Spread::default(),
            overhead_ms: Spread::default(),
            local_compiles: BTreeMap::new(),
            objects: ObjectsRecord::default(),
            notes: Vec::new(),
            dir: format!("runs/{name}"),
        };
        clean(w, &self.source, &dir.join("clean.log"))?;

        let is_local = cell.configuration == LOCAL_MAKE;
        let costs = match &self.costs {
            Some(text) => {
                let path = dir.join("costs.jsonl");
                std::fs::write(&path, text)?;
                Some(path)
            }
            None => None,
        };
        let spec = GridSpec {
            policy: &cell.policy,
            workers: &workers,
            bin_dir: &self.bin_dir,
            run_dir: &dir,
            costs,
        };
        let peer = crate::peers::Peer::of(&cell.policy);
        // A peer's compilers and client environment (known once its
        // daemons have their ports).
        let mut peer_client = None;
        let started: Option<anyhow::Result<Box<dyn Grid>>> = match peer {
            _ if is_local => None,
            Some(p) => Some(
                backend
                    .start_peer(
                        p,
                        &crate::peers::PeerSpec {
                            workers: &workers,
                            run_dir: &dir,
                            session_dir: &self.out,
                            index,
                        },
                    )
                    .map(|g| {
                        peer_client = Some(g.client());
                        Box::new(g) as Box<dyn Grid>
                    }),
            ),
            None => Some(backend.start(&spec)),
        };
        let mut grid = match started {
            None => None,
            Some(Ok(g)) => Some(g),
            Some(Err(e)) => {
                record.failure = Some(format!("grid did not start: {e:#}"));
                return Ok(record);
            }
        };
        let client_limit = match s.client_cpus {
            Some(c) => cgroups.create(&format!("client{index}"), c, None)?,
            None => None,
        };
        let (cc, cxx) = if is_local {
            ("gcc".to_owned(), "g++".to_owned())
        } else if let Some(pc) = &peer_client {
            (pc.cc.clone(), pc.cxx.clone())
        } else {
            let g = self.bin_dir.join("gridcc").display().to_string();
            (format!("{g} gcc"), format!("{g} g++"))
        };
        let stat_file = dir.join("client.stat");
        let mut cmd = build_command(
            w,
            &self.source,
            &cc,
            &cxx,
            make_jobs,
            client_limit.as_ref(),
            Some(&stat_file),
        );
        if let Some(pc) = &peer_client {
            cmd.envs(pc.env.iter().map(|(k, v)| (k, v)));
            if let Some(n) = &pc.netns {
                // The build joins the peer's network namespace (see
                // build_command).
                cmd.env("GRIDCC_BENCH_NETNS", n);
            }
        } else if let Some(g) = &grid {
            // Repetitions rebuild the same tree: with the object cache on,
            // every run after the first would measure cache hits, not the
            // grid.
            cmd.env("GRIDCC_COORDINATOR", g.coordinator_url())
                .env("GRIDCC_CACHE", "0")
                .env("GRIDCC_CACHE_DIR", self.out.join("wrapper-cache"))
                .env("GRIDCC_JOB_LOG", dir.join("jobs.jsonl"));
        }
        let log = std::fs::File::create(dir.join("build.log"))?;
        cmd.stdout(log.try_clone()?).stderr(log);
        let start = Instant::now();
        record.build_started_unix_ms = Some(unix_ms());
        // Its own process group, so an interrupt can stop make and every
        // compiler it started (see reap.rs).
        if interrupted() {
            // The signal came while the grid was starting: build nothing.
            bail!("interrupted");
        }
        let mut child = cmd.process_group(0).spawn().context("starting the build")?;
        crate::reap::register(child.id());
        let mut died: Option<String> = None;
        let mut stopped = false;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            // A signal between the spawn and the registration above found
            // no group to kill: kill it here.
            if interrupted() && !stopped {
                crate::reap::kill_all();
                stopped = true;
            }
            if died.is_none() {
                if let Some(g) = grid.as_mut() {
                    died = g.check_alive().err();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        record.wall_s = start.elapsed().as_secs_f64();
        crate::reap::unregister(child.id());
        if died.is_none() {
            if let Some(g) = grid.as_mut() {
                died = g.check_alive().err();
            }
        }
        record.cpu.client_s = std::fs::read_to_string(&stat_file)
            .ok()
            .and_then(|t| crate::local::stat_cpu_s(&t).ok())
            .unwrap_or(f64::NAN);

        let mut failure = died.map(|d| format!("server died during the build: {d}"));
        if !status.success() && failure.is_none() {
            failure = Some(format!(
                "build failed ({status}); see {}/build.log",
                record.dir
            ));
        }
        let mut status_seen = None;
        if let Some(g) = grid.as_mut() {
            let cpu = g.cpu_seconds().unwrap_or_else(|_| ServerCpu {
                coordinator_s: f64::NAN,
                workers_s: vec![f64::NAN; workers.len()],
            });
            record.cpu.coordinator_s = cpu.coordinator_s;
            record.cpu.workers_s = cpu.workers_s;
            if peer.is_none() {
                match stats::status(&self.bin_dir.join("gridcc"), g.coordinator_url()) {
                    Ok(st) => status_seen = Some((st, g.worker_addresses())),
                    Err(e) => {
                        failure.get_or_insert(format!("coordinator status unavailable: {e:#}"));
                    }
                }
            }
        }
        let peer_started = grid.is_some();
        if let Some(g) = grid.take() {
            g.stop()?;
        }
        // Read once the daemons are stopped: icecream's logs reach the run
        // directory then.
        if let (Some(p), true) = (peer, peer_started) {
            record.jobs = crate::peers::jobs_record(p, &dir, &workers);
            record.local_compiles = crate::peers::local_jobs(p, &dir);
        }
        // Read once the coordinator is stopped: every trace line is written.
        let trace = stats::read_trace(&spec.trace_path())?;
        if let Some((st, addresses)) = &status_seen {
            record.jobs = jobs_record(st, addresses, &workers, &trace);
        }
        // `0.0 +`: an empty f64 sum is -0.0.
        record.cpu.total_s = record.cpu.client_s
            + record.cpu.coordinator_s
            + (0.0 + record.cpu.workers_s.iter().sum::<f64>());
        record.compile_s = Spread::of(&trace.iter().map(|t| t.compile_s).collect::<Vec<_>>());
        if let Some(p) = peer {
            record.compile_s = Spread::of(&crate::peers::compile_times(p, &dir, workers.len()));
        }
        record.queue_s = Spread::of(&trace.iter().map(|t| t.queue_s).collect::<Vec<_>>());
        let job_log = stats::read_job_log(&dir.join("jobs.jsonl"))?;
        record.overhead_ms = Spread::of(
            &job_log
                .iter()
                .filter_map(|j| j.overhead_ms)
                .collect::<Vec<_>>(),
        );
        for j in job_log.iter().filter(|j| j.mode == "local") {
            *record
                .local_compiles
                .entry(j.reason.clone().unwrap_or_default())
                .or_default() += 1;
        }
        for wr in &mut record.jobs.per_worker {
            wr.utilization = if record.wall_s > 0.0 {
                wr.busy_s / record.wall_s
            } else {
                0.0
            };
        }

        if status.success() && failure.is_none() {
            if let Some(check) = &w.check {
                let st = shell(check, &self.source)
                    .stdout(std::fs::File::create(dir.join("check.log"))?)
                    .stderr(Stdio::null())
                    .status()?;
                if !st.success() {
                    failure = Some(format!("the check `{check}` failed ({st})"));
                }
            }
        }
        if status.success() {
            let objects = hash_objects(&self.source, w)?;
            if self.reference.is_none() && is_local && failure.is_none() {
                self.reference = Some(objects.clone());
            }
            record.objects = compare_objects(self.reference.as_ref(), &objects);
            if peer.is_some() && !record.objects.different.is_empty() {
                // A peer does not promise gridcc's identical objects
                // (distcc compiles fully preprocessed text, which moves
                // debug-info columns wherever a macro expands): the
                // difference is stated beside its timing, not hidden and
                // not counted as a failed build.
                record.notes.push(format!(
                    "{} of {} object(s) differ from the local build ({}{})",
                    record.objects.found - record.objects.identical,
                    record.objects.found,
                    record
                        .objects
                        .different
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    if record.objects.different.len() > 3 {
                        ", …"
                    } else {
                        ""
                    }
                ));
            } else if failure.is_none() && !record.objects.different.is_empty() {
                failure = Some(format!(
                    "{} object(s) differ from the local build: {}",
                    record.objects.found - record.objects.identical,
                    record.objects.different.join(", ")
                ));
            }
            if failure.is_none() && record.objects.missing > 0 {
                failure = Some(format!("{} object(s) missing", record.objects.missing));
            }
            if !is_local && record.jobs.remote < record.objects.found as u64 {
                record.jobs.fell_back = true;
            }
        }
        record.ok = failure.is_none();
        record.failure = failure;
        Ok(record)
    }
}

/// Per-worker jobs and busy time, from status and trace.
fn jobs_record(
    st: &stats::Status,
    addresses: &[String],
    specs: &[WorkerSpec],
    trace: &[stats::TraceLine],
) -> JobsRecord {
    // Match each configured worker to its coordinator id: by address when
    // the backend knows it, else by order of capacity.
    let mut ids: Vec<Option<u64>> = vec![None; specs.len()];
    for (id, a) in ids.iter_mut().zip(addresses) {
        *id = st.workers.iter().find(|w| &w.address == a).map(|w| w.id);
    }
    if ids.iter().any(Option::is_none) {
        let mut by_capacity: Vec<&stats::StatusWorker> = st.workers.iter().collect();
        by_capacity.sort_by(|a, b| a.capacity.total_cmp(&b.capacity).then(a.id.cmp(&b.id)));
        let mut order: Vec<usize> = (0..specs.len()).collect();
        order.sort_by(|&a, &b| specs[a].cpus.total_cmp(&specs[b].cpus));
        for (k, &i) in order.iter().enumerate() {
            ids[i] = by_capacity.get(k).map(|w| w.id);
        }
    }
    let per_worker = specs
        .iter()
        .zip(&ids)
        .map(|(spec, id)| {
            let w = id.and_then(|id| st.workers.iter().find(|w| w.id == id));
            let intervals: Vec<(u64, u64)> = trace
                .iter()
                .filter(|t| Some(t.worker) == *id)
                .map(|t| (t.start_unix_ms, t.end_unix_ms))
                .collect();
            WorkerRecord {
                id: id.unwrap_or(0),
                address: w.map(|w| w.address.clone()).unwrap_or_default(),
                cpus: spec.cpus,
                slots: w.map_or(spec.slots(), |w| w.slots),
                jobs: w.map_or(0, |w| w.jobs_done),
                busy_s: stats::union_length(&intervals) as f64 / 1000.0,
                utilization: 0.0,
            }
        })
        .collect();
    JobsRecord {
        remote: st.jobs_remote,
        told_local: st.local_answers,
        failed: st.jobs_failed,
        fell_back: st.local_answers > 0,
        per_worker,
    }
}

/// The machine, stated beside every absolute number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    pub backend: String,
    pub notes: Vec<String>,
    pub gcc: String,
}

impl Machine {
    fn describe(backend: &str, notes: &[String]) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, m)| m.trim().to_owned());
        let memory_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        let gcc = std::process::Command::new("gcc")
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|t| t.lines().next().map(str::to_owned))
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            memory_gib,
            kernel,
            backend: backend.to_owned(),
            notes: notes.to_vec(),
            gcc,
        }
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

fn shell(script: &str, dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg(script).current_dir(dir);
    c
}

/// Fetches and configures the workload once.
fn prepare(w: &Workload, root: &Path, source: &Path) -> anyhow::Result<()> {
    if !source.exists() {
        let Some(fetch) = &w.fetch else {
            bail!(
                "workload {}: {} does not exist and no fetch command is given",
                w.name,
                source.display()
            );
        };
        eprintln!("gridcc-bench: fetching {}: {fetch}", w.name);
        let st = shell(fetch, root).status()?;
        if !st.success() || !source.exists() {
            bail!("workload {}: `{fetch}` failed ({st})", w.name);
        }
    }
    if let Some(configure) = &w.configure {
        let done = w
            .configured_marker
            .as_ref()
            .is_some_and(|m| source.join(m).exists());
        if !done {
            eprintln!("gridcc-bench: configuring {}: {configure}", w.name);
            let st = shell(configure, source).stdout(Stdio::null()).status()?;
            if !st.success() {
                bail!("workload {}: `{configure}` failed ({st})", w.name);
            }
        }
    }
    Ok(())
}

fn clean(w: &Workload, source: &Path, log: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::create(log)?;
    let st = shell(&w.clean, source)
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()?;
    if !st.success() {
        bail!("workload {}: clean `{}` failed ({st})", w.name, w.clean);
    }
    Ok(())
}

/// The build, run by a shell that first joins the client's cgroup and at
/// the end writes its own `/proc/self/stat`, whose child times hold the
/// CPU of make and everything it started.
fn build_command(
    w: &Workload,
    source: &Path,
    cc: &str,
    cxx: &str,
    jobs: u32,
    limit: Option<&cgroup::Limited>,
    stat_file: Option<&Path>,
) -> std::process::Command {
    // With `GRIDCC_BENCH_NETNS` set by the caller, the build runs in that
    // network namespace (a peer's, see peers/icecc.rs) as a child of this
    // shell (`ip netns exec` becomes `sh`), so the shell's stat still
    // counts its CPU.
    let script = r#"if [ -n "$GRIDCC_BENCH_PROCS" ]; then echo $$ > "$GRIDCC_BENCH_PROCS" || exit 97; fi
if [ -n "$GRIDCC_BENCH_NETNS" ]; then ip netns exec "$GRIDCC_BENCH_NETNS" sh -c "$GRIDCC_BENCH_BUILD"; else sh -c "$GRIDCC_BENCH_BUILD"; fi; rc=$?
if [ -n "$GRIDCC_BENCH_STAT" ]; then cat /proc/$$/stat > "$GRIDCC_BENCH_STAT"; fi
exit $rc"#;
    let mut c = shell(script, source);
    c.env("GRIDCC_BENCH_BUILD", &w.build)
        .env("CC", cc)
        .env("CXX", cxx)
        .env("JOBS", jobs.to_string())
        .env_remove("GRIDCC_BENCH_PROCS")
        .env_remove("GRIDCC_BENCH_STAT")
        .env_remove("GRIDCC_BENCH_NETNS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    if let Some(l) = limit {
        c.env("GRIDCC_BENCH_PROCS", &l.procs);
    }
    if let Some(s) = stat_file {
        c.env("GRIDCC_BENCH_STAT", s);
    }
    c
}

/// blake3 of every `*.o` under `dir`, by relative path, without the
/// workload's known non-deterministic ones.
fn hash_objects(dir: &Path, w: &Workload) -> anyhow::Result<BTreeMap<String, blake3::Hash>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "o") {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                if w.nondeterministic.contains(&rel) {
                    continue;
                }
                let bytes = std::fs::read(&path)?;
                out.insert(rel, blake3::hash(&bytes));
            }
        }
    }
    Ok(out)
}

fn compare_objects(
    reference: Option<&BTreeMap<String, blake3::Hash>>,
    now: &BTreeMap<String, blake3::Hash>,
) -> ObjectsRecord {
    let Some(reference) = reference else {
        return ObjectsRecord {
            found: now.len(),
            identical: now.len(),
            ..ObjectsRecord::default()
        };
    };
    let mut rec = ObjectsRecord {
        found: now.len(),
        ..ObjectsRecord::default()
    };
    for (path, hash) in now {
        match reference.get(path) {
            Some(h) if h == hash => rec.identical += 1,
            _ => {
                if rec.different.len() < 20 {
                    rec.different.push(path.clone());
                }
            }
        }
    }
    rec.missing = reference.keys().filter(|k| !now.contains_key(*k)).count();
    rec
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
fn install_interrupt_handler(kind: BackendKind) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_cpu_is_written_as_null_and_read_back_as_nan() {
        let cpu = CpuRecord {
            client_s: f64::NAN,
            coordinator_s: 0.5,
            workers_s: vec![1.0, f64::NAN],
            total_s: f64::NAN,
        };
        let text = serde_json::to_string(&cpu).unwrap();
        assert!(text.contains(r#""client_s":null"#), "{text}");
        let back: CpuRecord = serde_json::from_str(&text).unwrap();
        assert!(back.client_s.is_nan() && back.total_s.is_nan());
        assert_eq!(back.coordinator_s, 0.5);
        assert_eq!(back.workers_s[0], 1.0);
        assert!(back.workers_s[1].is_nan());
    }

    #[test]
    fn objects_compare_against_the_reference() {
        let h = |s: &str| blake3::hash(s.as_bytes());
        let reference: BTreeMap<String, blake3::Hash> = [
            ("a.o".to_owned(), h("a")),
            ("b.o".to_owned(), h("b")),
            ("c.o".to_owned(), h("c")),
        ]
        .into();
        let now: BTreeMap<String, blake3::Hash> =
            [("a.o".to_owned(), h("a")), ("b.o".to_owned(), h("B"))].into();
        let r = compare_objects(Some(&reference), &now);
        assert_eq!((r.found, r.identical, r.missing), (2, 1, 1));
        assert_eq!(r.different, ["b.o"]);
    }

    #[test]
    fn run_dir_names_are_safe() {
        assert_eq!(sanitize("0.2+0.3+0.5"), "0.2_0.3_0.5");
        assert_eq!(sanitize("least-loaded"), "least-loaded");
    }
}
