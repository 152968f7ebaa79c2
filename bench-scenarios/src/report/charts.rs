//! The report's SVG charts: `speedup.svg`, `efficiency.svg` and one
//! `utilization-*.svg` per cell.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::run::RunRecord;
use crate::scenario::{Scenario, LOCAL_MAKE};
use crate::stats;

use super::markdown::{fmt_ci, fmt_opt, fmt_ratio};
use super::{CellSummary, Summary};

/// An SVG document's opening tag and white background.
pub(super) fn svg_open(w: f64, h: f64) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="100%" height="100%" fill="white"/>"#);
    o
}

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Bars of measured speedup per cell, each run as a dot, and the ideal as a
/// tick: how far each configuration is from what its CPUs allow.
pub(super) fn speedup_svg(s: &Scenario, sum: &Summary) -> String {
    let cells: Vec<&CellSummary> = sum.cells.iter().collect();
    let n = cells.len().max(1);
    let (w, h, left, bottom, top) = (120.0 * n as f64 + 120.0, 420.0, 70.0, 110.0, 40.0);
    let baseline = sum
        .cells
        .iter()
        .find(|c| c.configuration == s.baseline)
        .map_or(f64::NAN, |c| c.median_s);
    let max = cells
        .iter()
        .flat_map(|c| {
            let dots = c.wall_s.iter().map(|x| baseline / x);
            dots.chain([c.ideal, c.speedup])
        })
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let plot_h = h - bottom - top;
    let y = |v: f64| top + plot_h * (1.0 - v / max);
    let mut o = svg_open(w, h);
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="20" font-size="14">{}: speedup vs {} (bar = median, dots = runs, red tick = ideal)</text>"#,
        esc(&s.name),
        esc(&s.baseline)
    );
    // Axis and grid.
    let mut v = 0.0;
    let step = if max > 6.0 { 1.0 } else { 0.5 };
    while v <= max {
        let yy = y(v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.1}</text>"##,
            w - 20.0,
            left - 6.0,
            yy + 4.0
        );
        v += step;
    }
    let one = y(1.0);
    let _ = writeln!(
        o,
        r##"<line x1="{left}" x2="{}" y1="{one:.1}" y2="{one:.1}" stroke="#888" stroke-dasharray="4 3"/>"##,
        w - 20.0
    );
    for (i, c) in cells.iter().enumerate() {
        let x = left + 20.0 + 120.0 * i as f64;
        if c.speedup.is_finite() {
            let top_y = y(c.speedup);
            let _ = writeln!(
                o,
                r##"<rect x="{x:.1}" y="{top_y:.1}" width="60" height="{:.1}" fill="#4a7fb5"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{:.2}</text>"##,
                y(0.0) - top_y,
                x + 30.0,
                top_y - 4.0,
                c.speedup
            );
        } else {
            let _ = writeln!(
                o,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#b00">no successful run</text>"##,
                x + 30.0,
                y(0.5)
            );
        }
        for (k, wall) in c.wall_s.iter().enumerate() {
            let sp = baseline / wall;
            if sp.is_finite() {
                let _ = writeln!(
                    o,
                    r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#222"/>"##,
                    x + 15.0 + 15.0 * k as f64,
                    y(sp)
                );
            }
        }
        if c.ideal.is_finite() {
            let iy = y(c.ideal);
            let _ = writeln!(
                o,
                r##"<line x1="{:.1}" x2="{:.1}" y1="{iy:.1}" y2="{iy:.1}" stroke="#c00" stroke-width="3"/>"##,
                x - 6.0,
                x + 66.0
            );
        }
        // Long shapes ("0.125+0.15+…") would run into the next bar's label,
        // so the configuration is broken at '+' into lines that fit a bar.
        let label_y = label_lines(&mut o, &c.configuration, 16, x + 30.0, h - bottom + 18.0);
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{:.3} CPU</text>"##,
            x + 30.0,
            label_y + 2.0,
            esc(if c.policy.is_empty() {
                "plain make"
            } else {
                &c.policy
            }),
            x + 30.0,
            label_y + 18.0,
            c.total_cpus
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Per cell, two bars: efficiency against the naive ideal (worker CPU) and
/// against the trace-aware bound, with the speedup and its interval and the
/// replay's measured / predicted written above: how much of what was
/// achievable the run achieved, beside what the CPU count alone suggests.
pub(super) fn efficiency_svg(s: &Scenario, sum: &Summary) -> String {
    let cells: Vec<&CellSummary> = sum
        .cells
        .iter()
        .filter(|c| c.configuration != LOCAL_MAKE)
        .collect();
    let n = cells.len().max(1);
    let (w, h, left, bottom, top) = (140.0 * n as f64 + 120.0, 440.0, 70.0, 110.0, 60.0);
    let max = cells
        .iter()
        .flat_map(|c| [c.efficiency, c.bound_efficiency.unwrap_or(0.0)])
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max)
        * 1.1;
    let plot_h = h - bottom - top;
    let y = |v: f64| top + plot_h * (1.0 - v / max);
    let mut o = svg_open(w, h);
    let _ = writeln!(
        o,
        r##"<text x="{left}" y="20" font-size="14">{}: efficiency per cell (grey = naive: speedup / worker-CPU ideal; blue = trace-aware bound / wall)</text>"##,
        esc(&s.name)
    );
    let _ = writeln!(
        o,
        r##"<text x="{left}" y="38" fill="#555">above each cell: speedup [95% CI]; measured / replay-predicted wall</text>"##
    );
    for k in 0..=4 {
        let v = max * f64::from(k) / 4.0;
        let yy = y(v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            w - 20.0,
            left - 6.0,
            yy + 4.0
        );
    }
    for (i, c) in cells.iter().enumerate() {
        let x = left + 20.0 + 140.0 * i as f64;
        for (k, (v, color)) in [
            (c.efficiency, "#999"),
            (c.bound_efficiency.unwrap_or(f64::NAN), "#4a7fb5"),
        ]
        .into_iter()
        .enumerate()
        {
            let bx = x + 36.0 * k as f64;
            if v.is_finite() {
                let _ = writeln!(
                    o,
                    r##"<rect x="{bx:.1}" y="{:.1}" width="32" height="{:.1}" fill="{color}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{v:.2}</text>"##,
                    y(v),
                    y(0.0) - y(v),
                    bx + 16.0,
                    y(v) - 4.0
                );
            } else {
                let _ = writeln!(
                    o,
                    r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#b00">n/a</text>"##,
                    bx + 16.0,
                    y(0.0) - 4.0
                );
            }
        }
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{} {}</text><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#555">m/p {}</text>"##,
            x + 34.0,
            top - 4.0,
            fmt_ratio(c.speedup),
            fmt_ci(c.speedup_ci.as_ref()),
            x + 34.0,
            top + 10.0,
            fmt_opt(c.measured_vs_predicted)
        );
        let label_y = label_lines(&mut o, &c.configuration, 18, x + 34.0, h - bottom + 18.0);
        let _ = writeln!(
            o,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            x + 34.0,
            label_y + 2.0,
            esc(&c.policy)
        );
    }
    o.push_str("</svg>\n");
    o
}

/// Writes a configuration name under its bar at `x`, from `y` down, in
/// lines of at most `max` characters ([`wrap_label`]); returns the `y` of
/// the line after them.
fn label_lines(o: &mut String, label: &str, max: usize, x: f64, y: f64) -> f64 {
    let mut y = y;
    for line in wrap_label(label, max) {
        let _ = writeln!(
            o,
            r##"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text>"##,
            esc(&line)
        );
        y += 14.0;
    }
    y
}

/// Splits a configuration name after '+' signs into lines of at most `max`
/// characters (a single longer part stays whole).
pub(super) fn wrap_label(label: &str, max: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for (i, part) in label.split('+').enumerate() {
        let piece = if i == 0 {
            part.to_string()
        } else {
            format!("+{part}")
        };
        let last = lines.last_mut().expect("lines starts non-empty");
        if !last.is_empty() && last.len() + piece.len() > max {
            lines.push(piece);
        } else {
            last.push_str(&piece);
        }
    }
    lines
}

/// Each worker's busy fraction (running jobs / slots) over the build, in
/// 60 time slices, one line per worker.
pub(super) fn utilization_svg(run: &RunRecord, trace_path: &Path) -> anyhow::Result<String> {
    let trace = stats::read_trace(trace_path)?;
    let from = run.started_unix_ms;
    let to = from + (run.wall_s * 1000.0) as u64;
    let bins = 60;
    let (w, h, left, top, plot_w, plot_h) = (1000.0, 360.0, 60.0, 40.0, 560.0, 260.0);
    let colors = [
        "#4a7fb5", "#d9822b", "#3a9d5d", "#c23b3b", "#8a5fb5", "#777", "#b5a04a",
    ];
    let mut o = svg_open(w, h);
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="20" font-size="14">{} / {} (rep {}): worker utilization over {:.1} s</text>"#,
        esc(&run.configuration),
        esc(&run.policy),
        run.repetition,
        run.wall_s
    );
    for k in 0..=4 {
        let v = f64::from(k) / 4.0;
        let yy = top + plot_h * (1.0 - v);
        let _ = writeln!(
            o,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{:.0}%</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            v * 100.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">time (s)</text><text x="{left}" y="{}">0</text><text x="{}" y="{}" text-anchor="end">{:.1}</text>"#,
        left + plot_w / 2.0,
        top + plot_h + 32.0,
        top + plot_h + 16.0,
        left + plot_w,
        top + plot_h + 16.0,
        run.wall_s
    );
    for k in 1..5 {
        let x = left + plot_w * f64::from(k) / 5.0;
        let _ = writeln!(
            o,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{}" stroke="#eee"/><text x="{x:.1}" y="{}" text-anchor="middle">{:.1}</text>"##,
            top + plot_h,
            top + plot_h + 16.0,
            run.wall_s * f64::from(k) / 5.0
        );
    }
    let mut by_id: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for t in &trace {
        by_id
            .entry(t.worker)
            .or_default()
            .push((t.start_unix_ms, t.end_unix_ms));
    }
    for (i, wr) in run.jobs.per_worker.iter().enumerate() {
        let jobs = by_id.get(&wr.id).map_or(&[][..], Vec::as_slice);
        let u = stats::utilization_bins(jobs, wr.slots, from, to, bins);
        let color = colors[i % colors.len()];
        let points: Vec<String> = u
            .iter()
            .enumerate()
            .map(|(b, v)| {
                format!(
                    "{:.1},{:.1}",
                    left + plot_w * (b as f64 + 0.5) / bins as f64,
                    top + plot_h * (1.0 - v)
                )
            })
            .collect();
        let _ = writeln!(
            o,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" fill="{color}">worker {}: {:.3} CPU, {} slot(s), {} jobs, busy {:.0}%</text>"#,
            left + plot_w + 10.0,
            top + 16.0 * i as f64 + 10.0,
            i + 1,
            wr.cpus,
            wr.slots,
            jobs.len(),
            wr.utilization * 100.0
        );
    }
    o.push_str("</svg>\n");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_shapes_break_at_plus_signs() {
        assert_eq!(wrap_label("1x1.0", 16), vec!["1x1.0"]);
        assert_eq!(
            wrap_label("0.125+0.15+0.2+0.25+0.275", 16),
            vec!["0.125+0.15+0.2", "+0.25+0.275"]
        );
        assert_eq!(
            wrap_label("averyveryverylongpart+x", 5),
            vec!["averyveryverylongpart", "+x"]
        );
    }
}
