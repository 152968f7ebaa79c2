//! `gridcc-bench compare OLD NEW`: two result sets cell by cell, under
//! the same "faster only where the intervals are apart" rule as the
//! summary.

use std::fmt::Write as _;
use std::path::Path;

use crate::stats::{difference, Difference, Interval};

use super::markdown::{fmt_ci, fmt_ratio};
use super::{cell_name, load_results, summarize, Summary};

/// `gridcc-bench compare OLD NEW`: each cell's median wall clock and
/// speedup in both result sets, with their intervals, and the same rule as
/// the summary: "faster" or "slower" only where the intervals are apart,
/// else "no difference shown". The wall-clock verdict sees everything that
/// changed between the sessions (machine load included); the speedup
/// verdict, each against its own session's baseline, cancels what moved
/// the baseline too.
pub fn compare(old: &Path, new: &Path) -> anyhow::Result<String> {
    let load = |d: &Path| -> anyhow::Result<Summary> {
        let (s, runs) = load_results(d)?;
        Ok(summarize(&s, &runs, d))
    };
    let (a, b) = (load(old)?, load(new)?);
    Ok(compare_summaries(&a, &b))
}

/// One word for a difference of `new` against `old` where higher is better
/// (`higher_better`) or worse.
fn verdict(new: Option<&Interval>, old: Option<&Interval>, higher_better: bool) -> &'static str {
    match (difference(new, old), higher_better) {
        (Difference::NotShown, _) => "no difference shown",
        (Difference::Higher, true) | (Difference::Lower, false) => "**new faster**",
        _ => "**new slower**",
    }
}

fn compare_summaries(a: &Summary, b: &Summary) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| cell | old median s [95% CI] | new median s [95% CI] | new / old | wall clock | old speedup [95% CI] | new speedup [95% CI] | speedup | old ok | new ok |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---|---:|---:|---|---:|---:|");
    for c in &b.cells {
        let before = a
            .cells
            .iter()
            .find(|x| x.configuration == c.configuration && x.policy == c.policy);
        let with_ci = |m: f64, ci: Option<&Interval>| format!("{} {}", fmt_ratio(m), fmt_ci(ci));
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {}/{} |",
            cell_name(c),
            before.map_or("—".into(), |x| with_ci(x.median_s, x.wall_ci.as_ref())),
            with_ci(c.median_s, c.wall_ci.as_ref()),
            before.map_or("—".into(), |x| fmt_ratio(c.median_s / x.median_s)),
            before.map_or("—", |x| verdict(
                c.wall_ci.as_ref(),
                x.wall_ci.as_ref(),
                false
            )),
            before.map_or("—".into(), |x| with_ci(x.speedup, x.speedup_ci.as_ref())),
            with_ci(c.speedup, c.speedup_ci.as_ref()),
            before.map_or("—", |x| verdict(
                c.speedup_ci.as_ref(),
                x.speedup_ci.as_ref(),
                true
            )),
            before.map_or("—".into(), |x| format!("{}/{}", x.ok_runs, x.runs)),
            c.ok_runs,
            c.runs
        );
    }
    for c in a.cells.iter().filter(|x| {
        !b.cells
            .iter()
            .any(|y| y.configuration == x.configuration && y.policy == x.policy)
    }) {
        let _ = writeln!(
            o,
            "| {} | {} | — (not in NEW) | | | | | | | |",
            cell_name(c),
            fmt_ratio(c.median_s)
        );
    }
    let _ = writeln!(
        o,
        "\n\"faster\"/\"slower\" only where the bootstrap 95 % intervals do not overlap; otherwise \"no difference shown\"."
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::cell;
    use crate::report::CellSummary;

    #[test]
    fn compare_uses_the_same_rule() {
        let summary = |cells: Vec<CellSummary>| Summary {
            scenario: "s".into(),
            baseline: "1w".into(),
            cells,
            verdicts: Vec::new(),
            comparisons: Vec::new(),
        };
        let old = summary(vec![
            cell("least-loaded", &[10.0, 10.2, 9.9], &[2.0, 1.98, 2.02]),
            cell("weighted", &[8.0, 8.1, 7.9], &[2.5, 2.45, 2.55]),
        ]);
        let new = summary(vec![
            cell("least-loaded", &[8.0, 8.1, 7.9], &[2.5, 2.45, 2.55]),
            cell("weighted", &[7.5, 8.5, 9.0], &[2.6, 2.3, 2.2]),
        ]);
        let table = compare_summaries(&old, &new);
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| 3w")).collect();
        assert_eq!(rows.len(), 2, "{table}");
        assert!(rows[0].contains("**new faster**"), "{}", rows[0]);
        assert!(!rows[1].contains("**new"), "{}", rows[1]);
        assert!(rows[1].contains("no difference shown"), "{}", rows[1]);
    }
}
