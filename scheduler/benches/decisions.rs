//! Placement decisions per second, per policy and fleet size:
//! `cargo bench -p gridcc-scheduler`. Divan prints `item/s`: one item is one
//! decision. Target: 100,000 decisions/s with 1000 workers on one core.

use divan::counter::ItemsCount;
use divan::{black_box, Bencher};
use gridcc_scheduler::{by_name, JobView, WorkerView};

fn main() {
    divan::main();
}

const FLEETS: &[usize] = &[10, 100, 1000];

/// A fleet with mixed speeds and slots, about a third of it full and one
/// worker in twenty unhealthy, so every policy's filters do real work.
fn fleet(n: usize) -> Vec<WorkerView> {
    (0..n)
        .map(|i| {
            let slots = 1 + (i % 4) as u32;
            let running = if i % 3 == 0 { slots } else { (i % 2) as u32 };
            WorkerView {
                id: i as u64,
                slots,
                running,
                queued_work_s: running as f64 * (1.0 + (i % 7) as f64),
                speed: 0.5 + (i % 8) as f64 * 0.25,
                healthy: i % 20 != 7,
            }
        })
        .collect()
}

fn decide(bencher: Bencher, name: &str, n: usize, may_wait: bool) {
    let workers = fleet(n);
    let mut policy = by_name(name).unwrap();
    // Alternate a small and a big job so cost-aware branches both run.
    let jobs = [JobView { cost_s: 0.8 }, JobView { cost_s: 25.0 }];
    let mut k = 0usize;
    bencher.counter(ItemsCount::new(1usize)).bench_local(|| {
        k = k.wrapping_add(1);
        let job = black_box(&jobs[k & 1]);
        if may_wait {
            black_box(policy.place_or_wait(job, black_box(&workers)));
        } else {
            black_box(policy.place(job, black_box(&workers)));
        }
    });
}

#[divan::bench(args = FLEETS)]
fn round_robin(bencher: Bencher, n: usize) {
    decide(bencher, "round-robin", n, false);
}

#[divan::bench(args = FLEETS)]
fn least_loaded(bencher: Bencher, n: usize) {
    decide(bencher, "least-loaded", n, false);
}

#[divan::bench(args = FLEETS)]
fn p2c(bencher: Bencher, n: usize) {
    decide(bencher, "p2c", n, false);
}

#[divan::bench(args = FLEETS)]
fn weighted(bencher: Bencher, n: usize) {
    decide(bencher, "weighted", n, false);
}

#[divan::bench(args = FLEETS)]
fn lookahead(bencher: Bencher, n: usize) {
    decide(bencher, "lookahead", n, false);
}

/// `lookahead` through `place_or_wait`, as the simulator calls it: one more
/// pass over the fleet for the drain time and the best busy worker.
#[divan::bench(args = FLEETS)]
fn lookahead_or_wait(bencher: Bencher, n: usize) {
    decide(bencher, "lookahead", n, true);
}
