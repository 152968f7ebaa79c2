//! The coordinator's monitor (`--http-listen`): its JSON API and event
//! stream during a real build, the token's 401s, and the page itself in
//! headless Chromium (`monitor_browser`, skipped loudly without it).

use super::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;

#[path = "monitor_browser.rs"]
mod monitor_browser;

/// One plain HTTP/1.1 exchange; returns the status code, the head and
/// the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (code, head.to_owned(), body.to_owned())
}

fn get_json(addr: &str, path: &str, headers: &[&str]) -> serde_json::Value {
    let (code, head, body) = http(addr, "GET", path, headers, "");
    assert_eq!(code, 200, "GET {path}: {head}\n{body}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// An event stream read by a thread: each event as (name, data).
struct Events {
    rx: mpsc::Receiver<(String, serde_json::Value)>,
}

impl Events {
    fn open(addr: &str, headers: &[&str]) -> Events {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut request = format!("GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\n");
        for h in headers {
            request.push_str(h);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            let mut head = String::new();
            // The head, up to its blank line.
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
                line.clear();
            }
            assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
            assert!(head.contains("Content-Type: text/event-stream"), "{head}");
            let mut event = String::new();
            line.clear();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = name.trim().to_owned();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    let value = serde_json::from_str(data).expect("event data is JSON");
                    if tx.send((std::mem::take(&mut event), value)).is_err() {
                        return;
                    }
                }
                line.clear();
            }
        });
        Events { rx }
    }

    /// The next event named `name` (others are skipped), within 30 s.
    fn next(&self, name: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok((event, data)) if event == name => return data,
                Ok(_) => {}
                Err(e) => panic!("no {name} event: {e}"),
            }
        }
    }
}

fn calc_sources() -> std::collections::BTreeSet<String> {
    std::fs::read_dir(repo_root().join("testdata/calc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".c"))
        .collect()
}

#[test]
fn monitor_api_and_event_stream_follow_a_real_build() {
    let mut grid = Grid::start_with(2, 2, &["--http-listen", "127.0.0.1:0"]);
    let http_addr = grid.coordinator.announced("http listening on ");
    let events = Events::open(&http_addr, &[]);
    let snapshot = events.next("snapshot");
    assert_eq!(
        snapshot["workers"].as_array().unwrap().len(),
        2,
        "{snapshot}"
    );
    assert_eq!(snapshot["jobs"].as_array().unwrap().len(), 0, "{snapshot}");

    let dir = calc_copy();
    let cache = tempfile::tempdir().unwrap();
    make(
        dir.path(),
        &format!("{} gcc", gridcc().display()),
        4,
        Some(&grid.url()),
        cache.path(),
    );
    let sources = calc_sources();

    // Every compile appears on the stream as it ends, with its file name.
    let mut streamed = std::collections::BTreeSet::new();
    while streamed.len() < sources.len() {
        let job = events.next("job");
        if job["outcome"] == "ok" {
            streamed.insert(job["file"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(streamed, sources);
    let tick = events.next("tick");
    assert_eq!(tick["sample"]["slots"], 4, "{tick}");
    assert!(
        tick["clients"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["jobs_last_minute"].as_u64() > Some(0)),
        "{tick}"
    );

    let workers = get_json(&http_addr, "/api/v1/workers", &[]);
    let workers = workers["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let addresses: Vec<String> = grid.workers.iter().map(|w| w.addr.clone()).collect();
    let mut done = 0;
    for w in workers {
        assert!(addresses.iter().any(|a| w["address"] == a.as_str()), "{w}");
        assert_eq!(w["state"], "serving");
        assert_eq!(w["slots"], 2);
        assert_eq!(w["job_mode"], "hermetic");
        assert!(w["cpu_quota"].as_f64().unwrap() > 0.0, "{w}");
        done += w["jobs_done"].as_u64().unwrap();
    }
    assert_eq!(done, sources.len() as u64);

    let page = get_json(&http_addr, "/api/v1/jobs?since=0", &[]);
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), sources.len(), "{page}");
    for job in jobs {
        // The documented fields, and nothing of the command line.
        let mut keys: Vec<&str> = job
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["client", "end_ms", "file", "id", "lane", "outcome", "seq", "start_ms", "worker"]
        );
        assert_eq!(job["outcome"], "ok");
        assert!(job["lane"].as_u64().unwrap() < 2, "{job}");
        assert!(job["end_ms"].as_u64() >= job["start_ms"].as_u64(), "{job}");
        assert!(!job["client"].as_str().unwrap().is_empty(), "{job}");
        assert!(sources.contains(job["file"].as_str().unwrap()), "{job}");
    }
    let text = page.to_string();
    assert!(!text.contains("-O") && !text.contains(" -c"), "{text}");
    // Paging by `next`: nothing newer; `limit` cuts.
    let next = page["next"].as_u64().unwrap();
    let later = get_json(&http_addr, &format!("/api/v1/jobs?since={next}"), &[]);
    assert_eq!(later["jobs"].as_array().unwrap().len(), 0, "{later}");
    assert_eq!(later["next"], next);
    let two = get_json(&http_addr, "/api/v1/jobs?limit=2", &[]);
    assert_eq!(two["jobs"].as_array().unwrap().len(), 2);
    let state = get_json(&http_addr, "/api/v1/state", &[]);
    assert_eq!(state["jobs"].as_array().unwrap().len(), sources.len());

    // Bad input: a one-line error, never a dead server.
    let (code, _, body) = http(&http_addr, "GET", "/api/v1/jobs?since=soon", &[], "");
    assert_eq!(code, 400);
    assert!(body.contains("since must be a whole number"), "{body}");
    assert_eq!(http(&http_addr, "GET", "/api/v1/nope", &[], "").0, 404);
    assert_eq!(http(&http_addr, "DELETE", "/", &[], "").0, 405);
    send_garbage(&http_addr);

    // The page, its script and the metrics share the port.
    let (code, head, body) = http(&http_addr, "GET", "/", &[], "");
    assert_eq!(code, 200);
    assert!(
        head.contains("text/html") && body.contains("/monitor.js"),
        "{head}"
    );
    assert_eq!(http(&http_addr, "GET", "/monitor.js", &[], "").0, 200);
    let (code, _, metrics) = http(&http_addr, "GET", "/metrics", &[], "");
    assert_eq!(code, 200);
    let ok_line = format!(
        "gridcc_coordinator_jobs_total{{outcome=\"ok\"}} {}",
        sources.len()
    );
    assert!(metrics.lines().any(|l| l == ok_line), "{metrics}");

    // A worker that leaves is listed as gone.
    grid.workers[1].kill();
    let gone = addresses[1].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let workers = get_json(&http_addr, "/api/v1/workers", &[]);
        let state = workers["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["address"] == gone.as_str())
            .map(|w| w["state"].clone());
        if state == Some("gone".into()) {
            break;
        }
        assert!(Instant::now() < deadline, "worker not gone: {workers}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const TOKEN: &str = "monitor-token-7e3a";

#[test]
fn monitor_with_a_token_answers_401_without_it() {
    let mut grid = Grid::start_secured(
        1,
        1,
        &["--http-listen", "127.0.0.1:0"],
        Security {
            token: Some(TOKEN.to_owned()),
            tls: None,
        },
    );
    let addr = grid.coordinator.announced("http listening on ");
    let worker = grid.workers[0].addr.clone();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let forged = format!("Cookie: gridcc_monitor={}", "ab".repeat(32));
    for path in [
        "/",
        "/api/v1/workers",
        "/api/v1/jobs?since=0",
        "/api/v1/state",
        "/api/v1/events",
    ] {
        for headers in [
            &[][..],
            &["Authorization: Bearer wrong"][..],
            &["Cookie: gridcc_monitor=00112233"][..],
            &[forged.as_str()][..],
        ] {
            let (code, head, body) = http(&addr, "GET", path, headers, "");
            assert_eq!(code, 401, "{path} {headers:?}: {head}");
            assert!(!body.contains(&worker), "{path} leaks data: {body}");
        }
        if path != "/api/v1/events" {
            let (code, head, _) = http(&addr, "GET", path, &[&bearer], "");
            assert_eq!(code, 200, "{path} with the token: {head}");
        }
    }
    let (_, _, login) = http(&addr, "GET", "/", &[], "");
    assert!(
        login.contains("<form method=\"post\" action=\"/login\">"),
        "{login}"
    );
    assert_eq!(http(&addr, "POST", "/login", &[], "token=nope").0, 401);

    // The form: once, then a cookie a script cannot read and another site
    // cannot send. Its value is not the token.
    let (code, head, _) = http(
        &addr,
        "POST",
        "/login",
        &["Content-Type: application/x-www-form-urlencoded"],
        &format!("token={TOKEN}"),
    );
    assert_eq!(code, 303, "{head}");
    let cookie_line = head
        .lines()
        .find_map(|l| l.strip_prefix("Set-Cookie: "))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(
        cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"),
        "{cookie_line}"
    );
    assert!(!cookie_line.contains(TOKEN), "{cookie_line}");
    let cookie = format!("Cookie: {}", cookie_line.split(';').next().unwrap());
    let workers = get_json(&addr, "/api/v1/workers", &[&cookie]);
    assert_eq!(workers["workers"][0]["address"], worker.as_str());
    let events = Events::open(&addr, &[&cookie]);
    assert_eq!(
        events.next("snapshot")["workers"][0]["address"],
        worker.as_str()
    );
    let events = Events::open(&addr, &[&bearer]);
    events.next("snapshot");
    // Scrapers keep working as before: metrics hold counts, no names.
    assert_eq!(http(&addr, "GET", "/metrics", &[], "").0, 200);
}
