//! What both servers need to expose Prometheus metrics: a lock-free
//! [`Histogram`], a writer for the text exposition format 0.0.4
//! ([`Exposition`]), and a minimal HTTP/1.x responder for `GET /metrics`
//! ([`serve`]).
//!
//! Hand-written rather than a metrics crate: each server has a dozen series
//! whose values mostly live in its own state already (the coordinator's
//! registry, the worker's slot counters), so rendering them on request is
//! simpler than mirroring them into a registry. The responder answers one
//! request per connection and closes it; it is for a scraper, not a browser.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The `Content-Type` of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds in seconds for job durations: compiles take from a few
/// milliseconds (a tiny file) to minutes (a large C++ unit at -O3).
pub const JOB_SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// A Prometheus histogram with fixed bounds, updated without locks.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket (not cumulative), plus one past the last bound (+Inf).
    counts: Vec<AtomicU64>,
    /// Sum of observations in microseconds: an integer adds atomically,
    /// and a microsecond is far below any duration worth measuring here.
    sum_us: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds, in increasing order.
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    /// Records one observation of `seconds`.
    pub fn observe(&self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let i = self.bounds.partition_point(|&b| b < seconds);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Records one duration.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// The metric types the exposition format names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// A page of the text exposition format, written family by family: each
/// with its `# HELP` and `# TYPE` lines, then its samples.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.text, "{k}=\"{v}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    /// One unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: f64) {
        self.header(name, help, kind.name());
        self.sample(name, &[], value);
    }

    /// A family of samples told apart by labels. A family with no samples
    /// still gets its `# HELP`/`# TYPE` lines, so scrapers see it exists.
    pub fn family<'a>(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        samples: impl IntoIterator<Item = (&'a [(&'a str, &'a str)], f64)>,
    ) {
        self.header(name, help, kind.name());
        for (labels, value) in samples {
            self.sample(name, labels, value);
        }
    }

    /// A family with one label, `label`, its samples told apart by the
    /// label's value.
    pub fn by_label<S: AsRef<str>>(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        label: &str,
        samples: impl IntoIterator<Item = (S, f64)>,
    ) {
        self.header(name, help, kind.name());
        for (v, value) in samples {
            self.sample(name, &[(label, v.as_ref())], value);
        }
    }

    /// A histogram (`name` without the `_bucket`/`_sum`/`_count` suffix).
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, count) in h.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = match h.bounds.get(i) {
                Some(b) => number(*b),
                None => "+Inf".to_owned(),
            };
            self.sample(&bucket, &[("le", &le)], cumulative as f64);
        }
        let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], cumulative as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A sample value as the format writes it (Go's `ParseFloat` syntax).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        // Rust's shortest round-trip form, never an exponent: "0.005", "13".
        format!("{v}")
    }
}

/// Binds the metrics listener and announces it on stdout as
/// `metrics listening on IP:PORT`, the line after the gRPC server's
/// `listening on IP:PORT` (so port 0 is usable by scripts and tests).
pub async fn bind_and_announce(addr: &str) -> std::io::Result<TcpListener> {
    use std::io::Write as _;
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    // Not println!: a reader that closed our stdout must not take the
    // server down with a panic.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "metrics listening on {bound}");
    let _ = out.flush();
    Ok(listener)
}

/// Most connections served at once; more are closed unanswered. A scraper
/// needs one; the bound keeps a flood from costing more than a few tasks.
const MAX_CONNECTIONS: usize = 16;

/// Largest request head read; a scraper's is a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// How long a client may take to send its request and read the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Answers `GET /metrics` (and `HEAD`) on `listener` with `render()`'s text
/// until `shutdown` is cancelled, then waits for the connections being
/// served. Other paths get 404, other methods 405, anything unparseable 400.
pub async fn serve<F>(listener: TcpListener, render: F, shutdown: CancellationToken)
where
    F: Fn() -> String + Send + Sync + 'static,
{
    let render = Arc::new(render);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let tasks = TaskTracker::new();
    loop {
        let conn = tokio::select! {
            conn = listener.accept() => conn,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match conn {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(%peer, "metrics: too many connections; closing");
            continue;
        };
        let render = Arc::clone(&render);
        tasks.spawn(async move {
            let _permit = permit;
            if tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &*render))
                .await
                .is_err()
            {
                tracing::debug!(%peer, "metrics request timed out");
            }
        });
    }
    tasks.close();
    tasks.wait().await;
}

/// Reads one request head from `stream` and writes the answer.
async fn answer(mut stream: TcpStream, render: &(dyn Fn() -> String + Send + Sync)) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_REQUEST_BYTES {
            break false;
        }
    };
    let (status, body, extra) = if complete {
        route(&head, render)
    } else if head.is_empty() {
        // Connected and closed (a port check): nothing to answer.
        return;
    } else {
        ("400 Bad Request", "bad request\n".to_owned(), "")
    };
    let is_head = head.starts_with(b"HEAD ");
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !is_head {
        response.extend_from_slice(body.as_bytes());
    }
    // The client may be gone already; nothing to do about it.
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

/// Status line, body and extra header lines for one request head.
fn route(
    head: &[u8],
    render: &(dyn Fn() -> String + Send + Sync),
) -> (&'static str, String, &'static str) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return ("400 Bad Request", "bad request\n".to_owned(), "");
    };
    if !version.starts_with("HTTP/1.") {
        return ("400 Bad Request", "bad request\n".to_owned(), "");
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => ("200 OK", render(), ""),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "not found; metrics are at /metrics\n".to_owned(),
            "",
        ),
        _ => (
            "405 Method Not Allowed",
            "only GET and HEAD\n".to_owned(),
            "Allow: GET, HEAD\r\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        static BOUNDS: &[f64] = &[0.1, 1.0];
        let h = Histogram::new(BOUNDS);
        for s in [0.05, 0.1, 0.5, 3.0, f64::NAN] {
            h.observe(s);
        }
        let mut e = Exposition::new();
        e.histogram("gridcc_x_seconds", "X.", &h);
        let text = e.finish();
        assert_eq!(
            text,
            "# HELP gridcc_x_seconds X.\n# TYPE gridcc_x_seconds histogram\n\
             gridcc_x_seconds_bucket{le=\"0.1\"} 3\n\
             gridcc_x_seconds_bucket{le=\"1\"} 4\n\
             gridcc_x_seconds_bucket{le=\"+Inf\"} 5\n\
             gridcc_x_seconds_sum 3.65\n\
             gridcc_x_seconds_count 5\n"
        );
        assert_eq!(h.count(), 5);
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut e = Exposition::new();
        e.family(
            "gridcc_y_total",
            "Line one\nback\\slash.",
            Kind::Counter,
            [(&[("worker", "a\"b\\c\nd")][..], 2.0)],
        );
        e.single("gridcc_z", "Z.", Kind::Gauge, 0.5);
        assert_eq!(
            e.finish(),
            "# HELP gridcc_y_total Line one\\nback\\\\slash.\n# TYPE gridcc_y_total counter\n\
             gridcc_y_total{worker=\"a\\\"b\\\\c\\nd\"} 2\n\
             # HELP gridcc_z Z.\n# TYPE gridcc_z gauge\ngridcc_z 0.5\n"
        );
    }

    fn routed(head: &str) -> &'static str {
        route(head.as_bytes(), &|| "m 1\n".to_owned()).0
    }

    #[test]
    fn only_get_and_head_of_metrics_succeed() {
        assert_eq!(routed("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "200 OK");
        assert_eq!(routed("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), "200 OK");
        assert_eq!(routed("HEAD /metrics HTTP/1.1\r\n\r\n"), "200 OK");
        assert_eq!(routed("GET / HTTP/1.1\r\n\r\n"), "404 Not Found");
        assert_eq!(
            routed("POST /metrics HTTP/1.1\r\n\r\n"),
            "405 Method Not Allowed"
        );
        for bad in [
            "",
            "GET\r\n\r\n",
            "GET /metrics\r\n\r\n",
            "GET /metrics HTTP/2.0\r\n\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "\u{1}\u{2}\u{3} x y z\r\n\r\n",
        ] {
            assert_eq!(routed(bad), "400 Bad Request", "{bad:?}");
        }
    }

    async fn get(addr: std::net::SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_until_shutdown_and_shrugs_off_garbage() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            || "gridcc_up 1\n".to_owned(),
            shutdown.clone(),
        ));
        // Garbage, a client that hangs up half-way, an oversized head.
        let _ = get(addr, b"\x00\xff\x13garbage\r\n\r\n").await;
        drop(TcpStream::connect(addr).await.unwrap());
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(&vec![b'a'; 3 * MAX_REQUEST_BYTES]).await;
        drop(s);
        let reply = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains(CONTENT_TYPE), "{reply}");
        assert!(reply.ends_with("\r\n\r\ngridcc_up 1\n"), "{reply}");
        let reply = get(addr, b"GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 404 "), "{reply}");
        shutdown.cancel();
        server.await.unwrap();
    }
}
