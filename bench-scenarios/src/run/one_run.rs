//! One run of one cell: clean, start the grid (or the peer's servers),
//! build under the client's limit, measure, read the servers' records,
//! check the objects, and return the run's [`RunRecord`].

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::workload::{build_command, clean, compare_objects, hash_objects, shell};
use super::{
    interrupted, sanitize, unix_ms, CpuRecord, JobsRecord, ObjectsRecord, RunRecord, Session,
    WorkerRecord,
};
use crate::backend::{Backend, Grid, GridSpec, ServerCpu, WorkerSpec};
use crate::cgroup::Cgroups;
use crate::scenario::{Cell, LOCAL_MAKE};
use crate::stats::{self, Spread};

impl Session {
    pub(super) fn one(
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
