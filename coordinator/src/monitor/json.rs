//! The JSON of the events a page gets, written by hand: each job changed
//! in a batch and each tick, in the bytes `serde_json` writes for their
//! derived `Serialize` (see [`Object`]).

use super::history::Job;
use super::stream::Tick;

impl Job {
    /// Appends the job's JSON object: a batch writes one per job changed,
    /// so this is the monitor's one cost per job while a page is open.
    pub(super) fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.u64("seq", self.seq);
        o.u64("id", self.id);
        o.opt_u64("worker", self.worker);
        o.opt_u64("lane", self.lane.map(u64::from));
        o.str("file", &self.file);
        o.str("client", &self.client);
        o.u64("start_ms", self.start_ms);
        o.opt_u64("end_ms", self.end_ms);
        o.str("outcome", self.outcome.name());
        o.end();
    }
}

impl Tick<'_> {
    /// Appends the tick's JSON object (see [`Object`]).
    pub(super) fn write_json(&self, out: &mut Vec<u8>) {
        let mut o = Object::new(out);
        o.raw("sample", |out| {
            let s = self.sample;
            let mut o = Object::new(out);
            o.u64("t_ms", s.t_ms);
            o.u64("queue", s.queue as u64);
            o.u64("jobs_per_s", s.jobs_per_s.into());
            o.u64("busy_slots", s.busy_slots.into());
            o.u64("slots", s.slots.into());
            o.end();
        });
        o.raw("workers", |out| {
            write_json_array(out, &self.workers, |w, out| {
                let mut o = Object::new(out);
                o.u64("id", w.id);
                o.str("address", &w.address);
                o.str("hostname", &w.hostname);
                o.u64("slots", w.slots.into());
                o.u64("running", w.running.into());
                o.u64("queued", w.queued.into());
                o.f64("cpu_quota", w.cpu_quota);
                o.f64("speed", w.speed);
                o.str("state", w.state);
                o.str("job_mode", w.job_mode);
                o.u64("jobs_done", w.jobs_done);
                o.u64("jobs_failed", w.jobs_failed);
                o.u64("joined_ms", w.joined_ms);
                o.opt_u64("gone_ms", w.gone_ms);
                o.end();
            });
        });
        o.raw("clients", |out| {
            write_json_array(out, &self.clients, |c, out| {
                let mut o = Object::new(out);
                o.str("client", &c.client);
                o.u64("running", c.running.into());
                o.u64("jobs_last_minute", c.jobs_last_minute.into());
                o.f64("share", c.share);
                o.end();
            });
        });
        o.end();
    }
}

/// Writes a JSON object by hand, the same bytes `serde_json` writes for
/// the derived `Serialize` (the tests hold them equal) in a fraction of
/// its instructions: the events a page gets are written this way, so an
/// open page costs the coordinator little. Keys are our own field names
/// and need no escaping.
struct Object<'a> {
    out: &'a mut Vec<u8>,
    /// `{` before the first key, `,` after.
    next: u8,
}

impl<'a> Object<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, next: b'{' }
    }

    fn key(&mut self, key: &str) -> &mut Vec<u8> {
        self.out.push(self.next);
        self.next = b',';
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        self.out
    }

    fn u64(&mut self, key: &str, value: u64) {
        let out = self.key(key);
        out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    fn opt_u64(&mut self, key: &str, value: Option<u64>) {
        match value {
            Some(v) => self.u64(key, v),
            None => self.key(key).extend_from_slice(b"null"),
        }
    }

    fn f64(&mut self, key: &str, value: f64) {
        // Floats as serde_json formats them; writing into a Vec cannot fail.
        let _ = serde_json::to_writer(self.key(key), &value);
    }

    fn str(&mut self, key: &str, value: &str) {
        write_json_str(self.key(key), value);
    }

    /// The value written by `write` (an object or array of them).
    fn raw(&mut self, key: &str, write: impl FnOnce(&mut Vec<u8>)) {
        write(self.key(key));
    }

    fn end(self) {
        if self.next == b'{' {
            self.out.push(b'{');
        }
        self.out.push(b'}');
    }
}

/// Appends a JSON array of the items `write` writes.
fn write_json_array<T>(out: &mut Vec<u8>, items: &[T], write: impl Fn(&T, &mut Vec<u8>)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(item, out);
    }
    out.push(b']');
}

/// Appends `s` as a JSON string. Names are cleaned of control characters,
/// so one rarely needs escaping; one that does goes through `serde_json`.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        // Writing a str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::history::{Client, Outcome, Sample, Worker};
    use crate::monitor::tests::text;

    #[test]
    fn job_json_by_hand_is_what_serde_writes() {
        let outcomes = [
            Outcome::Running,
            Outcome::Ok,
            Outcome::CompileError,
            Outcome::SharedHit,
            Outcome::Retried,
            Outcome::Failed,
            Outcome::Local,
        ];
        let names = [
            "a.c",
            "",
            "q\"uote\\d.c",
            "ünïcødé/ж.c",
            "tab\there",
            "\u{7f}\u{1}",
        ];
        for (i, outcome) in outcomes.into_iter().enumerate() {
            for (k, name) in names.iter().enumerate() {
                let job = Job {
                    seq: [0, 1, u64::MAX][k % 3],
                    id: i as u64 * 1_000_003,
                    worker: (k % 2 == 0).then_some(7),
                    lane: (i % 2 == 0).then_some(u32::MAX),
                    file: (*name).to_owned(),
                    client: names[(k + 1) % names.len()].to_owned(),
                    start_ms: 1_796_671_482_450,
                    end_ms: (k % 2 == 1).then_some(1_796_671_482_999),
                    outcome,
                };
                let mut by_hand = Vec::new();
                job.write_json(&mut by_hand);
                assert_eq!(text(&by_hand), serde_json::to_string(&job).unwrap());
            }
        }
    }

    #[test]
    fn tick_json_by_hand_is_what_serde_writes() {
        let sample = Sample {
            t_ms: 1_796_671_483_520,
            queue: 3,
            jobs_per_s: 17,
            busy_slots: 4,
            slots: 6,
        };
        let workers = [
            Worker {
                id: 1,
                address: "127.0.0.1:44293".into(),
                hostname: "v\"m".into(),
                slots: 2,
                running: 1,
                queued: 0,
                cpu_quota: 2.0,
                speed: 1.375_000_1,
                state: "serving",
                job_mode: "text",
                jobs_done: 4,
                jobs_failed: 0,
                joined_ms: 1_796_671_724_760,
                gone_ms: None,
            },
            Worker {
                id: u64::MAX,
                address: String::new(),
                hostname: "ж".into(),
                slots: 0,
                running: 0,
                queued: u32::MAX,
                cpu_quota: 0.1,
                speed: f64::NAN,
                state: "gone",
                job_mode: "hermetic",
                jobs_done: 0,
                jobs_failed: 9,
                joined_ms: 0,
                gone_ms: Some(5),
            },
        ];
        let clients = vec![
            Client {
                client: "ci".into(),
                running: 1,
                jobs_last_minute: 2,
                share: 1.0 / 3.0,
            },
            Client {
                client: "dev".into(),
                running: 0,
                jobs_last_minute: 0,
                share: 1e-7,
            },
        ];
        for (workers, clients) in [(&workers[..], clients.clone()), (&[][..], Vec::new())] {
            let tick = Tick {
                sample: &sample,
                workers: workers.iter().collect(),
                clients,
            };
            let mut by_hand = Vec::new();
            tick.write_json(&mut by_hand);
            assert_eq!(text(&by_hand), serde_json::to_string(&tick).unwrap());
        }
    }
}
