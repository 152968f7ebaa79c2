//! `gridcc status [--json] [--coordinator URL]`: the grid as the coordinator
//! sees it.

use serde::Serialize;

use crate::remote;

#[derive(Debug, Serialize)]
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
}

#[derive(Debug, Serialize)]
pub struct GridStatus {
    pub coordinator: String,
    pub version: String,
    pub policy: String,
    pub uptime_s: f64,
    pub workers: Vec<WorkerRow>,
    pub slots: u32,
    pub running: u32,
    pub jobs_assigned: u64,
    /// Jobs compiled remotely (the worker's compiler ran).
    pub jobs_remote: u64,
    pub jobs_failed: u64,
    /// Placement requests answered "compile locally".
    pub local_answers: u64,
}

/// Fetches the status from the coordinator at `url`.
pub async fn fetch(url: &str, access: &remote::Access) -> Result<GridStatus, remote::RemoteError> {
    let mut coordinator =
        remote::connect_coordinator(url, access, &remote::Timeouts::default()).await?;
    let reply = coordinator.status().await?;
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
    })
}

/// The human-readable table.
pub fn render(s: &GridStatus) -> String {
    let mut out = format!(
        "coordinator {}  (gridcc {}, policy {}, up {:.0}s)\n",
        s.coordinator, s.version, s.policy, s.uptime_s
    );
    let header = [
        "ID",
        "ADDRESS",
        "SLOTS",
        "RUNNING",
        "QUEUED",
        "CAPACITY",
        "DONE",
        "FAILED",
        "STATE",
        "COMPILERS",
    ];
    let rows: Vec<[String; 10]> = s
        .workers
        .iter()
        .map(|w| {
            [
                w.id.to_string(),
                w.address.clone(),
                w.slots.to_string(),
                w.running.to_string(),
                w.queued.to_string(),
                format!("{:.2}", w.capacity),
                w.jobs_done.to_string(),
                w.jobs_failed.to_string(),
                if w.draining { "draining" } else { "up" }.to_owned(),
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
    out.push_str(&format!(
        "{} workers, {} slots, {} running; jobs assigned {}, compiled remotely {}, failed {}, told to compile locally {}\n",
        s.workers.len(),
        s.slots,
        s.running,
        s.jobs_assigned,
        s.jobs_remote,
        s.jobs_failed,
        s.local_answers
    ));
    out
}
