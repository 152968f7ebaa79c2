//! `gridcc status [--json] [--watch [SECONDS]] [--coordinator URL]`: the
//! grid as the coordinator sees it, once or redrawn until interrupted.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::remote::{self, RemoteError};

#[derive(Debug, Clone, Serialize)]
pub struct WorkerRow {
    pub id: u64,
    pub address: String,
    pub hostname: String,
    pub slots: u32,
    pub running: u32,
    pub queued: u32,
    pub capacity: f64,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub draining: bool,
    pub connected_s: f64,
    pub compilers: Vec<String>,
    /// `hermetic` (jobs run in a sandbox) or `text`, and why not hermetic.
    pub job_mode: String,
    pub hermetic_refusal: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GridStatus {
    pub coordinator: String,
    pub version: String,
    pub policy: String,
    pub uptime_s: f64,
    pub workers: Vec<WorkerRow>,
    pub slots: u32,
    pub running: u32,
    pub jobs_assigned: u64,
    /// Jobs a worker finished for a client: its compiler ran, or it
    /// answered from its shared cache (`shared_hits` of them).
    pub jobs_remote: u64,
    pub jobs_failed: u64,
    /// Placement requests answered "compile locally".
    pub local_answers: u64,
    /// Of `jobs_remote`, those a worker answered from its shared cache
    /// without running the compiler.
    pub shared_hits: u64,
    /// Placements on the worker that held the job's key.
    pub cache_placements: u64,
}

/// How long a `Status` call may take: a hung coordinator must not hang
/// `gridcc status` (or a watch frame) with it.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// Fetches the status from the coordinator at `url`.
pub async fn fetch(url: &str, access: &remote::Access) -> Result<GridStatus, RemoteError> {
    let mut coordinator = connect(url, access).await?;
    query(&mut coordinator, url).await
}

async fn connect(url: &str, access: &remote::Access) -> Result<remote::Coordinator, RemoteError> {
    remote::connect_coordinator(url, access, &remote::Timeouts::default()).await
}

async fn query(
    coordinator: &mut remote::Coordinator,
    url: &str,
) -> Result<GridStatus, RemoteError> {
    let reply = tokio::time::timeout(STATUS_TIMEOUT, coordinator.status())
        .await
        .map_err(|_| {
            RemoteError::CoordinatorUnavailable(format!("no answer within {STATUS_TIMEOUT:?}"))
        })??;
    let workers: Vec<WorkerRow> = reply
        .workers
        .into_iter()
        .map(|w| WorkerRow {
            id: w.id,
            address: w.address,
            hostname: w.hostname,
            slots: w.slots,
            running: w.running,
            queued: w.queued,
            capacity: w.capacity,
            jobs_done: w.jobs_done,
            jobs_failed: w.jobs_failed,
            draining: w.draining,
            connected_s: w.connected_ms as f64 / 1000.0,
            compilers: w.toolchains,
            job_mode: if w.job_mode.is_empty() {
                "text".to_owned()
            } else {
                w.job_mode
            },
            hermetic_refusal: w.hermetic_refusal,
        })
        .collect();
    Ok(GridStatus {
        coordinator: url.to_owned(),
        version: reply.version,
        policy: reply.policy,
        uptime_s: reply.uptime_ms as f64 / 1000.0,
        slots: workers.iter().map(|w| w.slots).sum(),
        running: workers.iter().map(|w| w.running).sum(),
        workers,
        jobs_assigned: reply.jobs_assigned,
        jobs_remote: reply.jobs_done,
        jobs_failed: reply.jobs_failed,
        local_answers: reply.local_answers,
        shared_hits: reply.shared_hits,
        cache_placements: reply.cache_placements,
    })
}

/// The human-readable table.
pub fn render(s: &GridStatus) -> String {
    table(s, None)
}

/// A worker's health as the table shows it: `draining` when it takes no
/// new jobs; while watching, `failing` when it failed jobs since the last
/// frame and finished none; otherwise `up`.
fn health(w: &WorkerRow, before: Option<&WorkerRow>) -> &'static str {
    if w.draining {
        return "draining";
    }
    match before {
        Some(b) if w.jobs_failed > b.jobs_failed && w.jobs_done == b.jobs_done => "failing",
        _ => "up",
    }
}

/// The table; `prev` is the previous frame's status when watching.
fn table(s: &GridStatus, prev: Option<&GridStatus>) -> String {
    let mut out = format!(
        "coordinator {}  (gridcc {}, policy {}, up {:.0}s)\n",
        s.coordinator, s.version, s.policy, s.uptime_s
    );
    let header = [
        "ID",
        "ADDRESS",
        "BUSY/SLOTS",
        "QUEUED",
        "SPEED",
        "DONE",
        "FAILED",
        "HEALTH",
        "MODE",
        "COMPILERS",
    ];
    let rows: Vec<[String; 10]> = s
        .workers
        .iter()
        .map(|w| {
            let before = prev.and_then(|p| p.workers.iter().find(|b| b.id == w.id));
            [
                w.id.to_string(),
                w.address.clone(),
                format!("{}/{}", w.running, w.slots),
                w.queued.to_string(),
                format!("{:.2}", w.capacity),
                w.jobs_done.to_string(),
                w.jobs_failed.to_string(),
                health(w, before).to_owned(),
                w.job_mode.clone(),
                w.compilers.join(","),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    for w in s.workers.iter().filter(|w| !w.hermetic_refusal.is_empty()) {
        out.push_str(&format!(
            "worker {} runs text jobs only: {}\n",
            w.id, w.hermetic_refusal
        ));
    }
    out.push_str(&format!(
        "{} workers, {}/{} slots busy; jobs assigned {}, compiled remotely {}, failed {}, told to compile locally {}\n",
        s.workers.len(),
        s.running,
        s.slots,
        s.jobs_assigned,
        // The coordinator counts a shared-cache hit as a finished job; here
        // it is not a compile.
        s.jobs_remote.saturating_sub(s.shared_hits),
        s.jobs_failed,
        s.local_answers
    ));
    if s.shared_hits > 0 || s.cache_placements > 0 {
        out.push_str(&format!(
            "shared cache: {} jobs answered without compiling, {} placed on the worker holding their key\n",
            s.shared_hits, s.cache_placements
        ));
    }
    out
}

/// `jobs/s` line of a watch frame: jobs compiled remotely per second since
/// the previous frame, and shared-cache hits per second when there were
/// any (a hit is a finished job, but nothing was compiled).
fn rate(now: &GridStatus, prev: Option<&(Instant, GridStatus)>, at: Instant) -> String {
    let Some((then, before)) = prev else {
        return "jobs/s: - (first frame)\n".to_owned();
    };
    let dt = at.duration_since(*then).as_secs_f64();
    let compiled = |s: &GridStatus| s.jobs_remote.saturating_sub(s.shared_hits);
    match (
        compiled(now).checked_sub(compiled(before)),
        now.shared_hits.checked_sub(before.shared_hits),
    ) {
        // A restarted coordinator counts from zero again.
        (Some(done), Some(hits)) if dt > 0.0 && now.uptime_s >= before.uptime_s => {
            let hits = if hits > 0 {
                format!(", {:.1} shared-cache hits", hits as f64 / dt)
            } else {
                String::new()
            };
            format!(
                "jobs/s: {:.1} compiled remotely{hits} over the last {dt:.1}s\n",
                done as f64 / dt
            )
        }
        _ => "jobs/s: - (coordinator restarted)\n".to_owned(),
    }
}

/// What a watch frame says when the coordinator does not answer.
fn unreachable(e: &RemoteError) -> String {
    match e {
        RemoteError::CoordinatorUnavailable(why) => format!("coordinator unreachable: {why}"),
        other => format!("coordinator unreachable: {other}"),
    }
}

/// `gridcc status --watch`: fetches and prints a frame every `interval`
/// until SIGINT or SIGTERM (then returns 0). Returns 1 with a one-line
/// error when the coordinator does not answer the first time; later
/// failures are shown in the frame and retried.
pub async fn watch(url: &str, access: &remote::Access, interval: Duration, json: bool) -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("gridcc status: cannot handle signals");
        return 1;
    };
    let tty = std::io::stdout().is_terminal();
    let mut client = None;
    let mut prev: Option<(Instant, GridStatus)> = None;
    let mut first = true;
    loop {
        let at = Instant::now();
        let fetched = match client.as_mut() {
            Some(c) => query(c, url).await,
            None => match connect(url, access).await {
                Ok(mut c) => {
                    let r = query(&mut c, url).await;
                    client = Some(c);
                    r
                }
                Err(e) => Err(e),
            },
        };
        if fetched.is_err() {
            // Reconnect next time: the channel may point at a dead server.
            client = None;
        }
        if first {
            if let Err(e) = &fetched {
                eprintln!("gridcc status: {e}");
                return 1;
            }
            first = false;
        }
        let frame = match (&fetched, json) {
            (Ok(s), true) => serde_json::to_string(s).unwrap_or_default() + "\n",
            (Err(e), true) => serde_json::json!({ "error": unreachable(e) }).to_string() + "\n",
            (Ok(s), false) => {
                let mut f = table(s, prev.as_ref().map(|(_, p)| p));
                f.push_str(&rate(s, prev.as_ref(), at));
                f
            }
            (Err(e), false) => format!("{}\n{}\n", url, unreachable(e)),
        };
        let frame = match (json, tty) {
            (true, _) => frame,
            (false, true) => format!(
                "\x1b[H\x1b[2Jgridcc status --watch, every {:.1}s (Ctrl-C to stop)\n{frame}",
                interval.as_secs_f64()
            ),
            (false, false) => format!("{frame}\n"),
        };
        let mut stdout = std::io::stdout().lock();
        if stdout
            .write_all(frame.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // The reader went away (`| head`): nothing left to do.
            return 0;
        }
        drop(stdout);
        if let Ok(s) = fetched {
            prev = Some((at, s));
        }
        tokio::select! {
            () = tokio::time::sleep_until((at + interval).into()) => {}
            _ = int.recv() => return 0,
            _ = term.recv() => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(done: u64, failed: u64, uptime_s: f64) -> GridStatus {
        GridStatus {
            coordinator: "http://c".into(),
            version: "0".into(),
            policy: "least-loaded".into(),
            uptime_s,
            workers: vec![WorkerRow {
                id: 1,
                address: "127.0.0.1:4000".into(),
                hostname: "h".into(),
                slots: 2,
                running: 1,
                queued: 0,
                capacity: 1.0,
                jobs_done: done,
                jobs_failed: failed,
                draining: false,
                connected_s: 1.0,
                compilers: vec!["gcc".into()],
                job_mode: "hermetic".into(),
                hermetic_refusal: String::new(),
            }],
            slots: 2,
            running: 1,
            jobs_assigned: done + failed,
            jobs_remote: done,
            jobs_failed: failed,
            local_answers: 0,
            shared_hits: 0,
            cache_placements: 0,
        }
    }

    #[test]
    fn table_shows_busy_slots_health_and_totals() {
        let text = render(&status(7, 0, 3.0));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("ID  ADDRESS"), "{text}");
        assert!(lines[1].contains("BUSY/SLOTS"), "{text}");
        assert!(
            lines[2].contains("127.0.0.1:4000") && lines[2].contains("1/2"),
            "{text}"
        );
        assert!(lines[2].contains(" up "), "{text}");
        assert!(lines[3].starts_with("1 workers, 1/2 slots busy;"), "{text}");
        // Failures and nothing done since the last frame: failing.
        let failing = table(&status(7, 2, 4.0), Some(&status(7, 0, 3.0)));
        assert!(
            failing.lines().nth(2).unwrap().contains("failing"),
            "{failing}"
        );
    }

    #[test]
    fn shared_hits_are_not_counted_as_remote_compiles() {
        let mut s = status(13, 0, 3.0);
        assert!(!render(&s).contains("shared cache"), "{}", render(&s));
        s.jobs_remote = 26;
        s.shared_hits = 13;
        s.cache_placements = 13;
        let text = render(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[3].contains("compiled remotely 13,"), "{text}");
        assert_eq!(
            lines[4],
            "shared cache: 13 jobs answered without compiling, 13 placed on the worker holding their key",
            "{text}"
        );
    }

    #[test]
    fn rate_is_jobs_since_the_last_frame_per_second() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(2);
        let before = (t0, status(4, 0, 10.0));
        assert_eq!(
            rate(&status(10, 0, 12.0), Some(&before), t1),
            "jobs/s: 3.0 compiled remotely over the last 2.0s\n"
        );
        let mut hits = status(16, 0, 12.0);
        hits.shared_hits = 4;
        assert_eq!(
            rate(&hits, Some(&before), t1),
            "jobs/s: 4.0 compiled remotely, 2.0 shared-cache hits over the last 2.0s\n"
        );
        assert!(rate(&status(1, 0, 1.0), Some(&before), t1).contains("restarted"));
        assert!(rate(&status(1, 0, 1.0), None, t1).contains("first frame"));
    }
}
