//! Scenario and workload files: what a benchmark run measures, written down
//! before it runs. A scenario names its workload, the worker configurations,
//! the client's CPU limit, `make -j`, the policies, the baseline, the
//! repetitions and the thresholds; `gridcc-bench run` reads it and never
//! writes it (a copy goes into the results directory, so a report can always
//! be recomputed against the thresholds the run was made with).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::backend::WorkerSpec;

/// The configuration name of the plain local build (no wrapper, no grid).
pub const LOCAL_MAKE: &str = "local-make";

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How the CPU numbers relate to the reference report's (e.g. "× 0.25").
    #[serde(default)]
    pub scale: String,
    /// A workload file, relative to the scenario file's directory.
    pub workload: PathBuf,
    /// `make -jJ`.
    pub make_jobs: u32,
    /// The CPU limit of the client (make, the wrapper, preprocessing and
    /// linking); none means unlimited, which the report states.
    #[serde(default)]
    pub client_cpus: Option<f64>,
    /// Policies tried on every configuration with more than one worker.
    pub policies: Vec<String>,
    /// Other distributed-compilation systems run as cells of their own on
    /// every configuration (`"distcc"`, `"icecc"`), named in the policy
    /// column; see `peers.rs`.
    #[serde(default)]
    pub peers: Vec<String>,
    /// The configuration speedups are measured against: `local-make` or
    /// the name of one of `configurations`.
    pub baseline: String,
    /// Also run the plain local build (as configuration `local-make`).
    #[serde(default = "yes")]
    pub local_make: bool,
    #[serde(default = "three")]
    pub repetitions: u32,
    pub configurations: Vec<Configuration>,
    /// Per configuration name: the least speedup or efficiency it must
    /// reach (against the baseline's median).
    #[serde(default)]
    pub thresholds: BTreeMap<String, Threshold>,
}

fn yes() -> bool {
    true
}

fn three() -> u32 {
    3
}

/// One grid shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Configuration {
    pub name: String,
    pub workers: Vec<WorkerSpec>,
    /// Overrides the scenario's `make_jobs` (the jobs scan uses this).
    #[serde(default)]
    pub make_jobs: Option<u32>,
}

impl Configuration {
    /// Total worker CPU: the denominator of the ideal speedup.
    pub fn total_cpus(&self) -> f64 {
        self.workers.iter().map(|w| w.cpus).sum()
    }
}

/// What a configuration must reach. Both may be given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    #[serde(default)]
    pub min_speedup: Option<f64>,
    #[serde(default)]
    pub min_efficiency: Option<f64>,
    /// The least trace-aware bound / wall: the threshold that says
    /// something about the scheduler, since the bound already holds the
    /// build's own serial parts (see docs/experiments.md).
    #[serde(default)]
    pub min_bound_efficiency: Option<f64>,
}

/// A workload file: how to get, prepare and build one project. Commands
/// run with `sh -c` in the source directory; the build command sees
/// `$CC`, `$CXX` and `$JOBS`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    /// The source directory, relative to the repository root.
    pub dir: PathBuf,
    /// Fetches the source when `dir` is missing (run in the repository
    /// root).
    #[serde(default)]
    pub fetch: Option<String>,
    /// Runs once, when `configured_marker` does not exist yet.
    #[serde(default)]
    pub configure: Option<String>,
    /// A file `configure` creates (e.g. `Makefile`), relative to `dir`.
    #[serde(default)]
    pub configured_marker: Option<PathBuf>,
    pub build: String,
    pub clean: String,
    /// Run after a successful build; its failure fails the run.
    #[serde(default)]
    pub check: Option<String>,
    /// Object files are every `*.o` under `dir`; these (relative paths)
    /// differ between two plain local builds too (a build date, say) and are
    /// left out of the identical-objects check.
    #[serde(default)]
    pub nondeterministic: Vec<String>,
}

/// A scenario with its workload, loaded and checked.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub scenario: Scenario,
    pub workload: Workload,
    /// The scenario file's text, kept verbatim for the results directory.
    pub text: String,
    pub workload_text: String,
}

/// Reads and checks a scenario file and its workload.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading scenario {}", path.display()))?;
    let scenario: Scenario =
        toml::from_str(&text).with_context(|| format!("scenario {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let workload_path = base.join(&scenario.workload);
    let workload_text = std::fs::read_to_string(&workload_path)
        .with_context(|| format!("reading workload {}", workload_path.display()))?;
    let workload: Workload = toml::from_str(&workload_text)
        .with_context(|| format!("workload {}", workload_path.display()))?;
    validate(&scenario)?;
    Ok(Loaded {
        scenario,
        workload,
        text,
        workload_text,
    })
}

/// The checks serde cannot make: names unique and known, numbers sane.
pub fn validate(s: &Scenario) -> anyhow::Result<()> {
    if s.make_jobs == 0 {
        bail!("make_jobs must be at least 1");
    }
    if s.repetitions == 0 {
        bail!("repetitions must be at least 1");
    }
    if let Some(c) = s.client_cpus {
        if !(c.is_finite() && c > 0.0) {
            bail!("client_cpus must be a positive number of cores, not {c}");
        }
    }
    if s.policies.is_empty() {
        bail!("policies: name at least one");
    }
    for p in &s.policies {
        gridcc_scheduler::by_name(p).map_err(|e| anyhow::anyhow!("policies: {e}"))?;
    }
    for p in &s.peers {
        if crate::peers::Peer::of(p).is_none() {
            bail!(
                "peers: unknown peer {p:?} (known: {})",
                crate::peers::PEER_NAMES.join(", ")
            );
        }
    }
    if s.configurations.is_empty() {
        bail!("configurations: give at least one");
    }
    let mut names = std::collections::BTreeSet::new();
    for c in &s.configurations {
        if c.name == LOCAL_MAKE {
            bail!("configuration name {LOCAL_MAKE:?} is reserved for the plain local build");
        }
        if !names.insert(c.name.as_str()) {
            bail!("configuration {:?} is defined twice", c.name);
        }
        if c.workers.is_empty() {
            bail!("configuration {:?} has no workers", c.name);
        }
        for w in &c.workers {
            if !(w.cpus.is_finite() && w.cpus > 0.0) {
                bail!(
                    "configuration {:?}: cpus must be positive, not {}",
                    c.name,
                    w.cpus
                );
            }
        }
        if c.make_jobs == Some(0) {
            bail!("configuration {:?}: make_jobs must be at least 1", c.name);
        }
    }
    let baseline_known =
        names.contains(s.baseline.as_str()) || (s.baseline == LOCAL_MAKE && s.local_make);
    if !baseline_known {
        bail!(
            "baseline {:?} is not a configuration of this scenario{}",
            s.baseline,
            if s.baseline == LOCAL_MAKE {
                " (local_make is false)"
            } else {
                ""
            }
        );
    }
    for name in s.thresholds.keys() {
        if !names.contains(name.as_str()) && name != LOCAL_MAKE {
            bail!("thresholds: {name:?} is not a configuration of this scenario");
        }
    }
    Ok(())
}

/// One cell of the run matrix: a configuration with a policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    pub configuration: String,
    /// Empty for `local-make`.
    pub policy: String,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.policy.is_empty() {
            f.write_str(&self.configuration)
        } else {
            write!(f, "{} / {}", self.configuration, self.policy)
        }
    }
}

impl Scenario {
    /// Every cell of one repetition, in run order. A one-worker
    /// configuration gives every policy the same choice, so it runs once,
    /// with the first policy; each peer runs once per configuration, after
    /// gridcc's policies.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        if self.local_make {
            cells.push(Cell {
                configuration: LOCAL_MAKE.to_owned(),
                policy: String::new(),
            });
        }
        for c in &self.configurations {
            let policies = if c.workers.len() == 1 {
                &self.policies[..1]
            } else {
                &self.policies[..]
            };
            for p in policies.iter().chain(&self.peers) {
                cells.push(Cell {
                    configuration: c.name.clone(),
                    policy: p.clone(),
                });
            }
        }
        cells
    }

    pub fn configuration(&self, name: &str) -> Option<&Configuration> {
        self.configurations.iter().find(|c| c.name == name)
    }

    /// `make -j` for a configuration.
    pub fn jobs_for(&self, configuration: &str) -> u32 {
        self.configuration(configuration)
            .and_then(|c| c.make_jobs)
            .unwrap_or(self.make_jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
        name = "t"
        workload = "workloads/calc.toml"
        make_jobs = 4
        client_cpus = 0.5
        policies = ["least-loaded", "weighted"]
        baseline = "one"
        [[configurations]]
        name = "one"
        workers = [{ cpus = 0.5 }]
        [[configurations]]
        name = "two"
        workers = [{ cpus = 0.25, slots = 2 }, { cpus = 0.25, memory_mb = 512 }]
        [thresholds]
        two = { min_efficiency = 0.5 }
    "#;

    fn parse(text: &str) -> Scenario {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn cells_interleave_and_one_worker_runs_once() {
        let s = parse(SCENARIO);
        validate(&s).unwrap();
        let cells: Vec<String> = s.cells().iter().map(Cell::to_string).collect();
        assert_eq!(
            cells,
            [
                "local-make",
                "one / least-loaded",
                "two / least-loaded",
                "two / weighted"
            ]
        );
        assert_eq!(s.repetitions, 3);
        assert_eq!(s.configurations[1].workers[0].slots(), 2);
        assert_eq!(s.configurations[1].workers[1].slots(), 1);
    }

    #[test]
    fn bad_scenarios_are_refused_with_a_reason() {
        let cases = [
            (
                SCENARIO.replace("baseline = \"one\"", "baseline = \"nine\""),
                "baseline",
            ),
            (
                SCENARIO.replace("\"weighted\"", "\"fastest\""),
                "unknown policy",
            ),
            (
                SCENARIO.replace("cpus = 0.5 }", "cpus = -1.0 }"),
                "cpus must be positive",
            ),
            (SCENARIO.replace("two = {", "three = {"), "thresholds"),
            (
                SCENARIO.replace("name = \"two\"", "name = \"one\""),
                "defined twice",
            ),
            (
                SCENARIO.replace("make_jobs = 4", "make_jobs = 0"),
                "make_jobs",
            ),
        ];
        for (text, want) in cases {
            let err = validate(&parse(&text)).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        let unknown = SCENARIO.replace("make_jobs = 4", "make_jobs = 4\nmake_job = 3");
        assert!(toml::from_str::<Scenario>(&unknown).is_err());
    }

    #[test]
    fn shipped_scenarios_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml")
                && path.file_name() != Some("Cargo.toml".as_ref())
            {
                load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 6, "expected the shipped scenarios, found {n}");
    }
}

/// Properties of scenario parsing over arbitrary text and over scenario
/// files with arbitrary values: parsed and checked, or refused with an
/// error, never a panic.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            (0..100u32).prop_map(|n| n.to_string()),
            proptest::sample::select(
                &[
                    "0",
                    "-1",
                    "0.0",
                    "-0.5",
                    "nan",
                    "inf",
                    "-inf",
                    "1e400",
                    "4294967296",
                    "\"2\""
                ][..]
            )
            .prop_map(str::to_owned),
        ]
    }

    fn scenario_text() -> impl Strategy<Value = String> {
        let name = || proptest::sample::select(&["one", "two", "local-make", ""][..]);
        let policy = proptest::sample::select(&["least-loaded", "weighted", "nope"][..]);
        (
            (number(), number(), number(), number()),
            proptest::collection::vec((name(), number(), proptest::option::of(number())), 0..3),
            proptest::collection::vec(policy, 0..3),
            (name(), any::<bool>(), proptest::option::of((name(), number()))),
        )
            .prop_map(|((jobs, client, reps, cpus), configs, policies, (baseline, local, threshold))| {
                let mut t = format!(
                    "name = \"t\"\nworkload = \"w.toml\"\nmake_jobs = {jobs}\nclient_cpus = {client}\n\
                     repetitions = {reps}\nlocal_make = {local}\nbaseline = \"{baseline}\"\n\
                     policies = [{}]\n",
                    policies.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ")
                );
                for (name, slots, j) in &configs {
                    t.push_str(&format!(
                        "[[configurations]]\nname = \"{name}\"\nworkers = [{{ cpus = {cpus}, slots = {slots} }}]\n"
                    ));
                    if let Some(j) = j {
                        t.push_str(&format!("make_jobs = {j}\n"));
                    }
                }
                if let Some((name, min)) = threshold {
                    t.push_str(&format!("[thresholds]\n\"{name}\" = {{ min_speedup = {min} }}\n"));
                }
                t
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            if let Ok(s) = toml::from_str::<Scenario>(&text) {
                let _ = validate(&s);
            }
            let _ = toml::from_str::<Workload>(&text);
        }

        #[test]
        fn scenarios_with_arbitrary_values_are_checked(text in scenario_text()) {
            let Ok(s) = toml::from_str::<Scenario>(&text) else { return Ok(()) };
            if validate(&s).is_ok() {
                // What a checked scenario promises the runner.
                prop_assert!(s.make_jobs >= 1 && s.repetitions >= 1);
                prop_assert!(!s.cells().is_empty());
                for c in &s.configurations {
                    prop_assert!(s.jobs_for(&c.name) >= 1);
                    for w in &c.workers {
                        prop_assert!(w.cpus.is_finite() && w.cpus > 0.0 && w.slots() >= 1);
                    }
                }
            }
        }
    }
}
