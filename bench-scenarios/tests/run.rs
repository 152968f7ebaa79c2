//! `gridcc-bench run` end to end on the local backend (and on docker, where
//! an engine and the images are there): real servers on
//! 127.0.0.1, real gcc and make on the repository's small C project. Needs
//! the workspace's binaries (`cargo build --workspace --bins`, which
//! scripts/test.sh does first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bench_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gridcc-bench"))
}

fn bin_dir() -> PathBuf {
    let dir = bench_exe().parent().unwrap().to_path_buf();
    for b in ["gridcc", "gridcc-coordinator", "gridcc-worker"] {
        assert!(
            dir.join(b).exists(),
            "{b} is missing: build the workspace first (cargo build --workspace --bins)"
        );
    }
    dir
}

fn calc_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/calc");
    let dst = dir.join("calc");
    let st = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&dst)
        .status()
        .unwrap();
    assert!(st.success());
    dst
}

/// A one-worker scenario on `calc` with the given build command.
fn scenario(dir: &Path, build: &str, threshold: &str) -> PathBuf {
    let calc = calc_copy(dir);
    let workload = format!(
        "name = \"calc\"\ndir = {:?}\nbuild = {:?}\nclean = \"make clean\"\ncheck = \"make check\"\n",
        calc.display().to_string(),
        build
    );
    std::fs::write(dir.join("calc.toml"), workload).unwrap();
    let scenario = format!(
        r#"name = "t"
workload = "calc.toml"
make_jobs = 4
client_cpus = 1.0
policies = ["least-loaded"]
baseline = "local-make"
repetitions = 1
[[configurations]]
name = "1x1.0"
workers = [{{ cpus = 1.0 }}]
{threshold}
"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, scenario).unwrap();
    path
}

/// Rewrites a [`scenario`] to list `peers` as cells and, with
/// `two_half_workers`, to make its one configuration two workers of 0.5
/// CPU (`2x0.5`): two daemons of a peer on one host.
fn add_peers(scenario: &Path, peers: &[&str], two_half_workers: bool) {
    let list: Vec<String> = peers.iter().map(|p| format!("{p:?}")).collect();
    let mut text = std::fs::read_to_string(scenario).unwrap().replace(
        "policies = [\"least-loaded\"]",
        &format!(
            "policies = [\"least-loaded\"]\npeers = [{}]",
            list.join(", ")
        ),
    );
    if two_half_workers {
        text = text.replace(
            "name = \"1x1.0\"\nworkers = [{ cpus = 1.0 }]",
            "name = \"2x0.5\"\nworkers = [{ cpus = 0.5 }, { cpus = 0.5 }]",
        );
    }
    std::fs::write(scenario, text).unwrap();
}

/// `gridcc-bench run SCENARIO --out OUT --bin-dir …`, not started yet.
fn run_command(scenario: &Path, out: &Path) -> Command {
    let mut c = Command::new(bench_exe());
    c.arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(out)
        .arg("--bin-dir")
        .arg(bin_dir());
    c
}

fn run(scenario: &Path, out: &Path) -> Output {
    run_command(scenario, out).output().unwrap()
}

fn runs(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("runs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_scenario_runs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), r#"make -j"$JOBS" CC="$CC""#, "");
    // A relative --out, as CI passes it: the build runs elsewhere and must
    // still find its stat file and job log.
    let o = run_command(&sc, Path::new("out"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let out = dir.path().join("out");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{stderr}\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let runs = runs(&out);
    assert_eq!(runs.len(), 2, "local-make and the grid run");
    for r in &runs {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["objects"]["identical"], 13, "{r}");
        assert!(r["cpu"]["client_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    let grid = &runs[1];
    assert_eq!(grid["configuration"], "1x1.0");
    assert_eq!(grid["jobs"]["remote"], 13, "{grid}");
    assert_eq!(grid["jobs"]["per_worker"][0]["jobs"], 13, "{grid}");
    assert_eq!(grid["overhead_ms"]["n"], 13, "{grid}");
    for f in [
        "summary.md",
        "results.csv",
        "speedup.svg",
        "efficiency.svg",
        "verdicts.json",
        "scenario.toml",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The report is recomputed from runs.jsonl alone.
    std::fs::remove_file(out.join("summary.md")).unwrap();
    let again = Command::new(bench_exe())
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    assert!(again.status.success());
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| 1x1.0 | least-loaded |"), "{summary}");
    // The grid run was replayed from its own job log and trace.
    assert!(!summary.contains(": not replayed:"), "{summary}");
    assert!(summary.contains("## Differences between policies and peers"));
    // The grid run's jobs as a Gantt chart, a bar per compile, linked as
    // the cell's fastest and slowest run.
    let charts: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gantt-"))
        .collect();
    assert_eq!(charts.len(), 1, "one grid run, one chart: {charts:?}");
    let gantt = &charts[0];
    assert!(
        gantt.starts_with("gantt-1x1.0") && gantt.ends_with("-1.svg"),
        "{gantt}"
    );
    let svg = std::fs::read_to_string(out.join(gantt)).unwrap();
    assert!(svg.contains(": 13 jobs over "), "{svg}");
    assert_eq!(svg.matches("<title>").count(), 13, "{svg}");
    assert!(svg.contains(": remote ok</title>"), "{svg}");
    assert!(
        summary.contains("fastest [rep 1 (") && summary.contains(&format!("]({gantt})")),
        "{summary}"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    let cmp = Command::new(bench_exe())
        .arg("compare")
        .arg(&out)
        .arg(&out)
        .output()
        .unwrap();
    assert!(cmp.status.success());
    assert!(String::from_utf8_lossy(&cmp.stdout).contains("| 1.00 |"));
}

#[test]
fn a_failed_build_is_a_failed_run_and_fails_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        r#"make -j"$JOBS" CC="$CC" && test "$CC" = gcc"#,
        "[thresholds]\n\"1x1.0\" = { min_speedup = 0.1 }",
    );
    let out = dir.path().join("out");
    let o = run(&sc, &out);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let runs = runs(&out);
    assert_eq!(runs.len(), 2, "the failed run is kept");
    assert_eq!(runs[0]["ok"], true);
    assert_eq!(runs[1]["ok"], false);
    let why = runs[1]["failure"].as_str().unwrap();
    assert!(why.starts_with("build failed"), "{why}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("**FAIL** 1x1.0"), "{summary}");
}

#[test]
fn a_killed_worker_is_a_failed_run() {
    let dir = tempfile::tempdir().unwrap();
    // The wrapper compiles locally once the worker is gone, so the build
    // itself succeeds: the run must still count as failed. The pattern
    // matches only this grid's worker (its coordinator URL, then the next
    // argument), not those of tests running alongside.
    let sc = scenario(
        dir.path(),
        r#"make -j"$JOBS" CC="$CC" util.o && pkill -KILL -f -- "--coordinator $GRIDCC_COORDINATOR --listen" ; sleep 0.3; make -j"$JOBS" CC="$CC""#,
        "",
    );
    let out = dir.path().join("out");
    let o = run(&sc, &out);
    let runs = runs(&out);
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[1]["ok"],
        false,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let why = runs[1]["failure"].as_str().unwrap();
    assert!(
        why.contains("server died") && why.contains("worker 1"),
        "{why}"
    );
}

#[test]
fn an_interrupted_run_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    // A build that outlives the interrupt.
    let sc = scenario(
        dir.path(),
        r#"make -j"$JOBS" CC="$CC" util.o && { [ "$CC" = gcc ] || sleep 30; }"#,
        "",
    );
    let out = dir.path().join("out");
    let mut child = run_command(&sc, &out)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the grid run is under way: its coordinator writes the
    // trace into the run's directory once util.o is compiled.
    let grid_run = out.join("runs/001-1x1.0-least-loaded");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !grid_run.join("trace.jsonl").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the grid run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The run that finished before the signal (plain make) is kept and
    // reported; the one cut short is not recorded.
    let kept = runs(&out);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["configuration"], "local-make");
    assert!(out.join("summary.md").exists());
    // No cgroup of this session is left (named gridcc-bench-PID-…).
    let prefix = format!("gridcc-bench-{pid}-");
    let mut stack = vec![PathBuf::from("/sys/fs/cgroup")];
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    found.push(e.path());
                }
                // Ours sit at most two levels down (v1 controller dirs).
                if e.path().components().count() < 6 {
                    stack.push(e.path());
                }
            }
        }
    }
    assert!(found.is_empty(), "cgroups left behind: {found:?}");
    // Nothing whose command line names this run (the coordinator's
    // --trace-out, the sleeping build's parent shell) is left.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| {
            l.contains(out.to_str().unwrap())
                || l.contains(dir.path().join("calc").to_str().unwrap())
        })
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn no_local_make_checks_objects_against_an_unmeasured_build() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), r#"make -j"$JOBS" CC="$CC""#, "");
    let text = std::fs::read_to_string(&sc)
        .unwrap()
        .replace("baseline = \"local-make\"", "baseline = \"1x1.0\"");
    std::fs::write(&sc, text).unwrap();
    let out = dir.path().join("out");
    let o = run_command(&sc, &out)
        .arg("--no-local-make")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs = runs(&out);
    assert_eq!(runs.len(), 1, "only the grid run");
    assert_eq!(runs[0]["ok"], true);
    assert_eq!(runs[0]["objects"]["identical"], 13);
    let machine = std::fs::read_to_string(out.join("machine.json")).unwrap();
    assert!(machine.contains("--no-local-make"), "{machine}");
}

#[test]
fn a_distcc_cell_runs_beside_gridcc() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        r#"make -j"$JOBS" CC="$CC""#,
        "[thresholds]\n\"1x1.0\" = { min_speedup = 0.01 }",
    );
    add_peers(&sc, &["distcc"], false);
    let out = dir.path().join("out");
    let o = run(&sc, &out);
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("distcc is not installed") {
        eprintln!("SKIPPED a_distcc_cell_runs_beside_gridcc: {stderr}");
        return;
    }
    assert!(o.status.success(), "{stderr}");
    let runs = runs(&out);
    let cells: Vec<String> = runs
        .iter()
        .map(|r| format!("{} / {}", r["configuration"], r["policy"]).replace('"', ""))
        .collect();
    assert_eq!(
        cells,
        ["local-make / ", "1x1.0 / least-loaded", "1x1.0 / distcc"]
    );
    let d = &runs[2];
    assert_eq!(d["ok"], true, "{d}");
    // Every compile went through distccd, as its log counts them.
    assert_eq!(d["jobs"]["remote"], 13, "{d}");
    assert_eq!(d["jobs"]["per_worker"][0]["jobs"], 13, "{d}");
    assert_eq!(d["jobs"]["fell_back"], false, "{d}");
    assert_eq!(d["objects"]["found"], 13, "{d}");
    // distcc compiles fully preprocessed text: under -g its objects may
    // differ, and the run says so rather than hiding it.
    let identical = d["objects"]["identical"].as_u64().unwrap();
    assert_eq!(
        identical == 13,
        d["notes"].as_array().unwrap().is_empty(),
        "{d}"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| 1x1.0 | distcc |"), "{summary}");
    assert!(
        summary.contains("1x1.0: least-loaded vs distcc"),
        "{summary}"
    );
    // Thresholds judge gridcc's cells only.
    let verdicts = std::fs::read_to_string(out.join("verdicts.json")).unwrap();
    assert!(
        verdicts.contains("least-loaded") && !verdicts.contains("distcc"),
        "{verdicts}"
    );
    // No daemon is left.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let left = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains("distccd") && l.contains(out.to_str().unwrap()))
        .count();
    assert_eq!(left, 0);
}

#[test]
fn an_icecc_cell_runs_beside_gridcc() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        r#"make -j"$JOBS" CC="$CC""#,
        "[thresholds]\n\"2x0.5\" = { min_speedup = 0.01 }",
    );
    // Two daemons on one host: each needs its own socket, port and
    // environment directory.
    add_peers(&sc, &["icecc"], true);
    let out = dir.path().join("out");
    let child = run_command(&sc, &out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("gridcc-bench-{}-", child.id());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("is not installed") {
        eprintln!("SKIPPED an_icecc_cell_runs_beside_gridcc: {stderr}");
        return;
    }
    assert!(o.status.success(), "{stderr}");
    let runs = runs(&out);
    let cells: Vec<String> = runs
        .iter()
        .map(|r| format!("{} / {}", r["configuration"], r["policy"]).replace('"', ""))
        .collect();
    assert_eq!(
        cells,
        ["local-make / ", "2x0.5 / least-loaded", "2x0.5 / icecc"]
    );
    let d = &runs[2];
    assert_eq!(d["ok"], true, "{d}");
    // Every one of calc's 13 compiles reached a daemon, as the scheduler's
    // log counts them, and both daemons took some.
    let remote = d["jobs"]["remote"].as_u64().unwrap();
    let failed = d["jobs"]["failed"].as_u64().unwrap();
    assert_eq!(remote + failed, 13, "{d}");
    let per: Vec<u64> = d["jobs"]["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["jobs"].as_u64().unwrap())
        .collect();
    assert_eq!(per.iter().sum::<u64>(), remote, "{d}");
    assert!(per.iter().all(|&n| n > 0), "{d}");
    // warn.c prints a warning, so icecream's caret workaround compiles it
    // again on the client: the run says it fell back, and why.
    assert_eq!(
        d["local_compiles"]["icecc compiled an object on the client"], 1,
        "{d}"
    );
    assert_eq!(d["jobs"]["fell_back"], true, "{d}");
    assert_eq!(d["objects"]["found"], 13, "{d}");
    // The daemons' CPU is measured (from the end of the warm-up).
    let workers_cpu: f64 = d["cpu"]["workers_s"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_f64().unwrap())
        .sum();
    assert!(workers_cpu > 0.0, "{d}");
    // The warm-up installed the compiler environment on both daemons, and
    // its jobs are kept apart from the build's.
    let run_dir = out.join(d["dir"].as_str().unwrap());
    let warmup = std::fs::read_to_string(run_dir.join("icecc-warmup.log")).unwrap();
    for w in ["server=worker1", "server=worker2"] {
        assert!(warmup.contains(w), "{warmup}");
    }
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("| 2x0.5 | icecc |"), "{summary}");
    assert!(
        summary.contains("2x0.5: least-loaded vs icecc"),
        "{summary}"
    );
    let verdicts = std::fs::read_to_string(out.join("verdicts.json")).unwrap();
    assert!(
        verdicts.contains("least-loaded") && !verdicts.contains("icecc"),
        "{verdicts}"
    );
    // Nothing is left: no daemon, no network namespace, no state.
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let left = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(&tag))
        .count();
    assert_eq!(left, 0);
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(!netns.contains(&tag), "{netns}");
    let tmp = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&tag))
        .count();
    assert_eq!(tmp, 0);
}

#[test]
fn costs_from_an_earlier_run_reach_the_coordinator() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(dir.path(), r#"make -j"$JOBS" CC="$CC""#, "");
    let costs = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/recorded/calc-smoke/runs/002-2x0.5-least-loaded/trace.jsonl");
    let out = dir.path().join("out");
    let o = run_command(&sc, &out)
        .arg("--costs")
        .arg(&costs)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log =
        std::fs::read_to_string(out.join("runs/001-1x1.0-least-loaded/coordinator.log")).unwrap();
    assert!(log.contains("loaded learned costs"), "{log}");
    assert!(log.contains("files=13"), "{log}");
    let machine = std::fs::read_to_string(out.join("machine.json")).unwrap();
    assert!(machine.contains("--costs"), "{machine}");
    // A file that is not a costs file is refused before any run.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"cost\": 1}\n").unwrap();
    let o = run_command(&sc, &dir.path().join("out2"))
        .arg("--costs")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 1") && err.lines().count() == 1, "{err}");
}

#[test]
fn a_matrix_interleaves_scenarios_into_one_report() {
    let dir = tempfile::tempdir().unwrap();
    let a = scenario(dir.path(), r#"make -j"$JOBS" CC="$CC""#, "");
    let b = dir.path().join("scenario-b.toml");
    let text = std::fs::read_to_string(&a)
        .unwrap()
        .replace("name = \"t\"", "name = \"u\"")
        .replace("repetitions = 1", "repetitions = 2");
    std::fs::write(&b, text).unwrap();
    let out = dir.path().join("m");
    let o = Command::new(bench_exe())
        .arg("matrix")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out)
        .arg("--bin-dir")
        .arg(bin_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // Repetition 1 of t, then of u, then u's second: interleaved.
    let order: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with('['))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(order, ["t", "t", "u", "u", "u", "u"], "{stderr}");
    assert_eq!(runs(&out.join("t")).len(), 2);
    assert_eq!(runs(&out.join("u")).len(), 4);
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## t") && md.contains("## u"), "{md}");
    assert!(out.join("u/summary.md").exists());
}

/// Why the docker backend cannot run here, if it cannot: no engine
/// answering, or one of the images `docker/build-images.sh` makes missing.
fn docker_missing() -> Option<String> {
    let info = Command::new("docker").arg("info").output();
    if !info.is_ok_and(|o| o.status.success()) {
        return Some("no docker engine answers (scripts/docker-engine.sh starts one)".into());
    }
    for image in [
        "gridcc-coordinator:local",
        "gridcc-worker:local",
        "gridcc-peers:local",
    ] {
        let found = Command::new("docker")
            .args(["image", "inspect", image])
            .output();
        if !found.is_ok_and(|o| o.status.success()) {
            return Some(format!(
                "docker image {image} is missing (docker/build-images.sh makes it)"
            ));
        }
    }
    None
}

#[test]
fn distcc_and_icecc_cells_run_beside_gridcc_on_docker() {
    if let Some(why) = docker_missing() {
        eprintln!("SKIPPED distcc_and_icecc_cells_run_beside_gridcc_on_docker: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        r#"make -j"$JOBS" CC="$CC""#,
        "[thresholds]\n\"2x0.5\" = { min_speedup = 0.01 }",
    );
    add_peers(&sc, &["distcc", "icecc"], true);
    let out = dir.path().join("out");
    let child = run_command(&sc, &out)
        .args(["--backend", "docker"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("gridcc-bench-{}-", child.id());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    if stderr.contains("is not installed") {
        eprintln!("SKIPPED distcc_and_icecc_cells_run_beside_gridcc_on_docker: {stderr}");
        return;
    }
    assert!(o.status.success(), "{stderr}");
    let runs = runs(&out);
    let cells: Vec<String> = runs
        .iter()
        .map(|r| format!("{} / {}", r["configuration"], r["policy"]).replace('"', ""))
        .collect();
    assert_eq!(
        cells,
        [
            "local-make / ",
            "2x0.5 / least-loaded",
            "2x0.5 / distcc",
            "2x0.5 / icecc"
        ]
    );
    for r in &runs {
        assert_eq!(r["ok"], true, "{r}");
        assert_eq!(r["backend"], "docker", "{r}");
        assert_eq!(r["objects"]["found"], 13, "{r}");
    }
    let per_worker = |r: &serde_json::Value| -> Vec<u64> {
        r["jobs"]["per_worker"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["jobs"].as_u64().unwrap())
            .collect()
    };
    let workers_cpu = |r: &serde_json::Value| -> f64 {
        r["cpu"]["workers_s"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap())
            .sum()
    };
    // distcc: every compile went to a daemon container, as their logs
    // count them, and the containers' CPU is measured.
    let d = &runs[2];
    assert_eq!(d["jobs"]["remote"], 13, "{d}");
    assert_eq!(per_worker(d).iter().sum::<u64>(), 13, "{d}");
    assert_eq!(d["jobs"]["fell_back"], false, "{d}");
    assert!(workers_cpu(d) > 0.0, "{d}");
    // icecream: every compile reached a daemon container (the scheduler's
    // log), both took some, and warn.c's caret workaround ran on the client.
    let i = &runs[3];
    let remote = i["jobs"]["remote"].as_u64().unwrap();
    let failed = i["jobs"]["failed"].as_u64().unwrap();
    assert_eq!(remote + failed, 13, "{i}");
    assert_eq!(per_worker(i).iter().sum::<u64>(), remote, "{i}");
    assert!(per_worker(i).iter().all(|&n| n > 0), "{i}");
    assert_eq!(
        i["local_compiles"]["icecc compiled an object on the client"], 1,
        "{i}"
    );
    assert!(workers_cpu(i) > 0.0, "{i}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    for cell in ["| 2x0.5 | distcc |", "| 2x0.5 | icecc |"] {
        assert!(summary.contains(cell), "{summary}");
    }
    assert!(
        summary.contains("2x0.5: least-loaded vs distcc")
            && summary.contains("2x0.5: least-loaded vs icecc"),
        "{summary}"
    );
    let verdicts = std::fs::read_to_string(out.join("verdicts.json")).unwrap();
    assert!(
        verdicts.contains("least-loaded")
            && !verdicts.contains("distcc")
            && !verdicts.contains("icecc"),
        "{verdicts}"
    );
    // Nothing is left: no container of this run, no process, no network
    // namespace, no state directory.
    let ps = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let containers = String::from_utf8_lossy(&ps.stdout);
    assert!(!containers.contains(&tag), "{containers}");
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains(&tag) || l.contains(out.to_str().unwrap()))
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(!netns.contains(&tag), "{netns}");
    let tmp = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&tag))
        .count();
    assert_eq!(tmp, 0);
}

#[test]
fn an_interrupted_docker_run_leaves_no_container_behind() {
    if let Some(why) = docker_missing() {
        eprintln!("SKIPPED an_interrupted_docker_run_leaves_no_container_behind: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A build that outlives the interrupt, here in the icecream cell, the
    // one with the most to tear down: containers, a namespace, state.
    let sc = scenario(
        dir.path(),
        r#"make -j"$JOBS" CC="$CC" util.o && case "$CC" in icecc*) sleep 30 ;; esac"#,
        "",
    );
    add_peers(&sc, &["icecc"], false);
    let out = dir.path().join("out");
    let mut child = run_command(&sc, &out)
        .args(["--backend", "docker"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tag = format!("gridcc-bench-{}-", child.id());
    let icecc_run = out.join("runs/002-1x1.0-icecc");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while !icecc_run.join("build.log").exists() {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr);
            if stderr.contains("is not installed") {
                eprintln!("SKIPPED an_interrupted_docker_run_leaves_no_container_behind: {stderr}");
                return;
            }
            panic!("the icecc run never started: {stderr}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The build is under way (util.o, then the sleep).
    std::thread::sleep(std::time::Duration::from_secs(2));
    let st = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    let kept = runs(&out);
    assert_eq!(kept.len(), 2, "{kept:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let ps = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .output()
        .unwrap();
    let containers = String::from_utf8_lossy(&ps.stdout);
    assert!(!containers.contains(&tag), "{containers}");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(!netns.contains(&tag), "{netns}");
    let tmp = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&tag))
        .count();
    assert_eq!(tmp, 0);
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| {
            l.contains(&tag)
                || l.contains(out.to_str().unwrap())
                || l.contains(dir.path().join("calc").to_str().unwrap())
        })
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
