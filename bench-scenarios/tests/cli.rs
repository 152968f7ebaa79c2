//! Runs the built `gridcc-bench` binary, as a user or a script would.

use std::path::Path;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gridcc-bench"))
        .args(args)
        .output()
        .expect("run gridcc-bench")
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Four 1-second jobs on two 1.0-CPU workers at -j4: two rounds of two.
fn unit_trace(dir: &Path) -> String {
    let path = dir.join("unit.jsonl");
    let lines = "{\"cost_s\": 1.0, \"key\": \"a\"}\n{\"cost_s\": 1.0}\n\n{\"cost_s\": 1.0}\n{\"cost_s\": 1.0, \"estimate_s\": 1.5}\n";
    std::fs::write(&path, lines).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn simulate_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let trace = unit_trace(dir.path());
    let common = [
        "simulate",
        "--trace",
        &trace,
        "--workers",
        "1.0,1.0",
        "--jobs",
        "4",
    ];

    let out = bench(&[&common[..], &["--policy", "weighted"]].concat());
    assert_eq!(out.status.code(), Some(0), "{:?}", stderr_lines(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("4 jobs, 4.000 s of work"), "{text}");
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with("weighted "))
        .unwrap_or_else(|| panic!("no weighted row in\n{text}"))
        .split_whitespace()
        .collect();
    assert_eq!(row, ["weighted", "2.000", "2.000", "1.000", "0"]);

    let out = bench(&[&common[..], &["--policy", "all", "--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{:?}", stderr_lines(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["jobs"], 4);
    assert_eq!(doc["total_cost_s"], 4.0);
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), gridcc_scheduler::POLICY_NAMES.len());
    for p in policies {
        assert_eq!(p["makespan_s"], 2.0, "{p}");
        assert_eq!(p["lower_bound_s"], 2.0);
        assert_eq!(p["efficiency"], 1.0);
        for w in p["workers"].as_array().unwrap() {
            assert_eq!(w["jobs"], 2, "{p}");
            assert_eq!(w["utilization"], 1.0);
        }
    }
}

/// `simulate --policy all` on one 1.0-CPU worker at -j2.
fn simulate_all_on_one_worker(trace: &str) -> Output {
    bench(&[
        "simulate",
        "--trace",
        trace,
        "--workers",
        "1",
        "-j",
        "2",
        "--policy",
        "all",
    ])
}

#[test]
fn malformed_trace_exits_1_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("bad.jsonl");
    std::fs::write(
        &trace,
        "{\"cost_s\": 1}\n{\"cost_s\": 2}\n{\"file\": \"c.c\"}\n",
    )
    .unwrap();
    let out = simulate_all_on_one_worker(trace.to_str().unwrap());
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("trace line 3: missing `cost_s`"),
        "{lines:?}"
    );

    let out = simulate_all_on_one_worker(dir.path().join("missing.jsonl").to_str().unwrap());
    assert_eq!(out.status.code(), Some(1));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("reading trace") && lines[0].contains("missing.jsonl"));
}

#[test]
fn mismatched_slots_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = unit_trace(dir.path());
    let out = bench(&[
        "simulate",
        "--trace",
        &trace,
        "--workers",
        "0.5,0.6,0.8",
        "--slots",
        "1,1",
        "-j",
        "4",
        "--policy",
        "p2c",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("--slots and --workers differ in length (2 vs 3)"));
}

#[test]
fn replay_a_recorded_run_and_refuse_a_missing_one() {
    let run = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/recorded/calc-smoke/runs/003-2x0.5-weighted"
    );
    let out = bench(&[
        "replay",
        run,
        "--heavy",
        "3",
        "--workers",
        "0.25,0.25,0.5",
        "--policy",
        "all",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", stderr_lines(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["measured_policy"], "weighted");
    let policies = doc["policies"].as_array().unwrap();
    assert_eq!(policies.len(), gridcc_scheduler::POLICY_NAMES.len());
    let heavy = doc["heavy"].as_array().unwrap();
    assert_eq!(heavy.len(), 3);
    assert!(heavy[0]["cost_s"].as_f64() >= heavy[2]["cost_s"].as_f64());
    assert!(heavy[0]["measured"]["worker"].is_u64(), "{}", heavy[0]);
    assert!(!heavy[0]["measured"]["source"].as_str().unwrap().is_empty());
    assert_eq!(
        heavy[0]["replayed"].as_array().unwrap().len(),
        policies.len()
    );
    for p in policies {
        let (m, b) = (
            p["makespan_s"].as_f64().unwrap(),
            p["trace_bound_s"].as_f64().unwrap(),
        );
        assert!(b > 0.0 && b <= m, "{p}");
    }
    let out = bench(&["replay", "/nonexistent/runs/000-x"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr_lines(&out).len(), 1, "{:?}", stderr_lines(&out));
}
