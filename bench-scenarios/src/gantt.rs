//! One run's jobs as a Gantt chart (`gantt-<cell>-<rep>.svg`): a row per
//! worker slot, a bar per job from the wrapper's start to its end, in the
//! coordinator monitor's colours, and a row of marks for the compiles
//! that fell back to the client. Static SVG (tooltips are `<title>`
//! elements, no script), so it reads in a browser and on a code-hosting
//! site alike.
//!
//! Built from the wrapper's job log (`GRIDCC_JOB_LOG`), which names each
//! job's source file and worker; the wrapper's wall time covers
//! preprocessing, transfer and waiting for a slot, so bars are what the
//! build saw, not only the worker's compile. Slots are assigned by packing:
//! a job takes the lowest row of its worker that is free at its start.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::stats::JobLogLine;

/// The monitor page's colours (`coordinator/assets/monitor.css`).
const COLOURS: &[(Outcome, &str, &str)] = &[
    (Outcome::Ok, "#2e9d4e", "remote ok"),
    (Outcome::SharedHit, "#2f7fd8", "shared-cache hit"),
    (
        Outcome::Retried,
        "#f0a030",
        "first worker failed, retried elsewhere",
    ),
    (Outcome::Local, "#8a8a8a", "compiled locally"),
    (Outcome::CompileError, "#8e44ad", "compile error"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    SharedHit,
    Retried,
    Local,
    CompileError,
}

fn colour(o: Outcome) -> &'static str {
    COLOURS
        .iter()
        .find(|(c, _, _)| *c == o)
        .map_or("#000", |c| c.1)
}

fn label(o: Outcome) -> &'static str {
    COLOURS
        .iter()
        .find(|(c, _, _)| *c == o)
        .map_or("?", |c| c.2)
}

/// A job placed on the chart.
#[derive(Debug, Clone, PartialEq)]
struct Bar {
    file: String,
    /// `None`: compiled on the client.
    worker: Option<String>,
    start_ms: u64,
    end_ms: u64,
    outcome: Outcome,
}

/// The job log's compiles with a start time; links, client-cache hits and
/// lines of older wrappers (no `start_unix_ms`) are left out.
fn bars(log: &[JobLogLine]) -> Vec<Bar> {
    log.iter()
        .filter_map(|l| {
            let start = l.start_unix_ms?;
            let file = std::path::Path::new(l.source.as_deref()?)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            match l.mode.as_str() {
                "remote" => {
                    let outcome = if l.retried {
                        Outcome::Retried
                    } else if l.shared_hit {
                        Outcome::SharedHit
                    } else if l.exit_code.unwrap_or(0) != 0 {
                        Outcome::CompileError
                    } else {
                        Outcome::Ok
                    };
                    Some(Bar {
                        file,
                        worker: l.worker.clone(),
                        start_ms: start,
                        end_ms: start + l.wall_ms.unwrap_or(0.0).max(0.0) as u64,
                        outcome,
                    })
                }
                "local" => {
                    // The line is written before the local compiler runs:
                    // its length is unknown, so it is a mark.
                    let at = start + l.wall_ms_before_local.unwrap_or(0.0).max(0.0) as u64;
                    Some(Bar {
                        file,
                        worker: None,
                        start_ms: at,
                        end_ms: at,
                        outcome: Outcome::Local,
                    })
                }
                _ => None,
            }
        })
        .collect()
}

/// Rows: per worker (by address), the lowest lane free at each job's
/// start. Returns the row names and each bar's row.
fn pack(bars: &[Bar]) -> (Vec<String>, Vec<usize>) {
    let mut order: Vec<usize> = (0..bars.len()).collect();
    order.sort_by_key(|&i| (bars[i].start_ms, bars[i].end_ms));
    // Per worker: the end of the last job in each lane.
    let mut lanes: BTreeMap<Option<&str>, Vec<u64>> = BTreeMap::new();
    let mut lane_of = vec![0; bars.len()];
    for i in order {
        let b = &bars[i];
        let ends = lanes.entry(b.worker.as_deref()).or_default();
        let lane = match b.worker {
            // Local marks share one row.
            None => 0,
            Some(_) => ends
                .iter()
                .position(|&end| end <= b.start_ms)
                .unwrap_or(ends.len()),
        };
        if lane == ends.len() {
            ends.push(b.end_ms);
        } else {
            ends[lane] = b.end_ms;
        }
        lane_of[i] = lane;
    }
    let mut names = Vec::new();
    let mut first_row: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    // Workers first (BTreeMap puts None first: take it last).
    for (worker, ends) in lanes.iter().filter(|(w, _)| w.is_some()) {
        first_row.insert(*worker, names.len());
        for lane in 0..ends.len() {
            names.push(format!("{} #{}", worker.unwrap_or("?"), lane + 1));
        }
    }
    if lanes.contains_key(&None) {
        first_row.insert(None, names.len());
        names.push("client (local)".to_owned());
    }
    let rows = bars
        .iter()
        .zip(&lane_of)
        .map(|(b, lane)| first_row[&b.worker.as_deref()] + lane)
        .collect();
    (names, rows)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of one run, which started at `from_ms` and took `wall_s`.
pub fn svg(title: &str, from_ms: u64, wall_s: f64, log: &[JobLogLine]) -> String {
    let bars = bars(log);
    let (rows, row_of) = pack(&bars);
    let (left, top, plot_w, row_h) = (190.0, 58.0, 1000.0, 14.0);
    let end_ms = bars
        .iter()
        .map(|b| b.end_ms)
        .max()
        .unwrap_or(from_ms)
        .max(from_ms + (wall_s * 1000.0) as u64);
    let span_ms = (end_ms - from_ms).max(1) as f64;
    let x = |t: u64| left + plot_w * (t.saturating_sub(from_ms) as f64 / span_ms);
    let plot_h = row_h * rows.len().max(1) as f64;
    let (w, h) = (left + plot_w + 20.0, top + plot_h + 40.0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="10" y="18" font-size="14">{}: {} jobs over {wall_s:.1} s</text>"#,
        esc(title),
        bars.len()
    );
    let mut lx = 10.0;
    for (outcome, c, text) in COLOURS {
        let n = bars.iter().filter(|b| b.outcome == *outcome).count();
        let text = format!("{text} ({n})");
        let _ = writeln!(
            o,
            r#"<rect x="{lx}" y="28" width="12" height="10" fill="{c}"/><text x="{}" y="37">{}</text>"#,
            lx + 16.0,
            esc(&text)
        );
        lx += 28.0 + 6.2 * text.len() as f64;
    }
    for (i, name) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        if i % 2 == 1 {
            let _ = writeln!(
                o,
                r##"<rect x="{left}" y="{y}" width="{plot_w}" height="{row_h}" fill="#f4f6f8"/>"##
            );
        }
        let _ = writeln!(o, r#"<text x="10" y="{}">{}</text>"#, y + 11.0, esc(name));
    }
    // Ten time ticks, with as many decimals as their step needs to tell
    // them apart (0.085 s apart: 0.09, 0.17, …; not 0.3 twice).
    let digits = tick_digits(span_ms / 1000.0 / 10.0);
    for k in 0..=10 {
        let xx = left + plot_w * f64::from(k) / 10.0;
        let _ = writeln!(
            o,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{top}" y2="{}" stroke="#ddd"/><text x="{xx:.1}" y="{}" text-anchor="middle">{:.*} s</text>"##,
            top + plot_h,
            top + plot_h + 14.0,
            digits,
            span_ms / 1000.0 * f64::from(k) / 10.0
        );
    }
    for (b, row) in bars.iter().zip(&row_of) {
        let (x0, y) = (x(b.start_ms), top + row_h * *row as f64 + 1.0);
        let bw = (x(b.end_ms) - x0).max(if b.worker.is_none() { 2.0 } else { 1.0 });
        let took = if b.worker.is_some() {
            format!(", {:.2} s", (b.end_ms - b.start_ms) as f64 / 1000.0)
        } else {
            String::new()
        };
        let tip = format!(
            "{} on {}{took}: {}",
            b.file,
            b.worker.as_deref().unwrap_or("the client"),
            label(b.outcome)
        );
        let _ = writeln!(
            o,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{bw:.1}" height="{}" fill="{}"><title>{}</title></rect>"#,
            row_h - 2.0,
            colour(b.outcome),
            esc(&tip)
        );
        if bw > 6.0 * b.file.len() as f64 + 6.0 {
            let _ = writeln!(
                o,
                r#"<text x="{:.1}" y="{:.1}" font-size="9" fill="white">{}</text>"#,
                x0 + 2.0,
                y + 9.5,
                esc(&b.file)
            );
        }
    }
    o.push_str("</svg>\n");
    o
}

/// Decimals a tick label needs when ticks are `step_s` seconds apart: one
/// at least, more for steps under a tenth of a second (three at most).
fn tick_digits(step_s: f64) -> usize {
    if step_s <= 0.0 || !step_s.is_finite() {
        return 1;
    }
    ((-step_s.log10()).ceil().max(1.0) as usize).min(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_told_apart() {
        for span_s in [0.085, 0.85, 1.7, 8.5, 85.0, 851.0] {
            let digits = tick_digits(span_s / 10.0);
            let labels: Vec<String> = (0..=10)
                .map(|k| format!("{:.*}", digits, span_s * f64::from(k) / 10.0))
                .collect();
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(unique.len(), labels.len(), "{span_s} s: {labels:?}");
        }
        assert_eq!(tick_digits(0.0), 1);
    }

    fn line(json: &str) -> JobLogLine {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn jobs_pack_into_the_lowest_free_lane_per_worker() {
        let log = [
            line(
                r#"{"mode":"remote","source":"src/a.c","worker":"w1","wall_ms":100,"start_unix_ms":1000,"exit_code":0,"shared_hit":false,"retried":false}"#,
            ),
            line(
                r#"{"mode":"remote","source":"b.c","worker":"w1","wall_ms":50,"start_unix_ms":1010,"exit_code":0,"shared_hit":true,"retried":false}"#,
            ),
            line(
                r#"{"mode":"remote","source":"c.c","worker":"w1","wall_ms":50,"start_unix_ms":1100,"exit_code":1,"shared_hit":false,"retried":false}"#,
            ),
            line(
                r#"{"mode":"remote","source":"d.c","worker":"w2","wall_ms":10,"start_unix_ms":1000,"exit_code":0,"shared_hit":false,"retried":true}"#,
            ),
            line(
                r#"{"mode":"local","source":"e.c","reason":"no slot","wall_ms_before_local":5,"start_unix_ms":1200}"#,
            ),
            // A link step, a client-cache hit, an old wrapper's line: not drawn.
            line(r#"{"mode":"local","source":null,"reason":"not a compile","start_unix_ms":1300}"#),
            line(r#"{"mode":"hit","source":"a.c","wall_ms":3,"start_unix_ms":1300}"#),
            line(r#"{"mode":"remote","source":"old.c","worker":"w1","wall_ms":10}"#),
        ];
        let bars = bars(&log);
        let outcomes: Vec<_> = bars.iter().map(|b| (b.file.as_str(), b.outcome)).collect();
        assert_eq!(
            outcomes,
            [
                ("a.c", Outcome::Ok),
                ("b.c", Outcome::SharedHit),
                ("c.c", Outcome::CompileError),
                ("d.c", Outcome::Retried),
                ("e.c", Outcome::Local),
            ]
        );
        let (rows, row_of) = pack(&bars);
        assert_eq!(rows, ["w1 #1", "w1 #2", "w2 #1", "client (local)"]);
        // c.c starts when a.c ends: it reuses the first lane.
        assert_eq!(row_of, [0, 1, 0, 2, 3]);
        assert_eq!(bars[4].start_ms, 1205);

        let svg = svg("cell <x> rep 1", 1000, 0.3, &log);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.contains("cell &lt;x&gt; rep 1: 5 jobs"), "{svg}");
        assert!(
            svg.contains("<title>b.c on w1, 0.05 s: shared-cache hit</title>"),
            "{svg}"
        );
        assert!(svg.contains(r##"fill="#2f7fd8"><title>b.c"##), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
    }

    #[test]
    fn an_empty_log_still_draws_a_chart() {
        let svg = svg("nothing", 0, 1.0, &[]);
        assert!(svg.contains(": 0 jobs over 1.0 s"), "{svg}");
        assert!(svg.ends_with("</svg>\n"));
    }
}
