//! The monitor page in a real browser, during a real build: Lua 5.4
//! (Debian's lua5.4 source, fetched by `scripts/fetch-lua.sh`) built through
//! a two-worker grid, with Debian's chromium driven through chromedriver
//! (WebDriver) by fantoccini. Skipped, loudly and with the command to run,
//! when chromium, chromedriver or Lua's source cannot be had; under CI
//! (`CI=true`) that is a failure instead. `scripts/test.sh` installs
//! chromium (`scripts/browser-deps.sh`) and fetches Lua first.

use super::*;

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

/// The page's colours per outcome (`coordinator/assets/monitor.css`).
const COLOURS: &[(&str, &str)] = &[
    ("ok", "rgb(46, 157, 78)"),
    ("shared_hit", "rgb(47, 127, 216)"),
    ("retried", "rgb(240, 160, 48)"),
    ("local", "rgb(138, 138, 138)"),
    ("failed", "rgb(214, 69, 65)"),
    ("compile_error", "rgb(142, 68, 173)"),
    ("running", "rgb(168, 220, 182)"),
];

fn find_on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver on a free loopback port, killed with the test.
struct Driver {
    proc: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

fn start_driver(chromedriver: &Path, log: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proc = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg(format!("--log-path={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        proc,
        url: format!("http://127.0.0.1:{port}"),
    };
    // Ready when it answers on its port.
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not start; log {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    driver
}

/// Skips the test with `why` on stderr, or fails it under CI, which
/// installs and fetches everything it needs first.
fn skip(why: &str) {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "monitor_page_shows_workers_and_job_bars_in_chromium: {why}"
    );
    eprintln!("SKIPPED monitor_page_shows_workers_and_job_bars_in_chromium: {why}");
}

/// Lua's source tree, fetched by `scripts/fetch-lua.sh` into
/// target/workloads/lua5.4 (it does nothing when it is there already).
fn lua_source() -> Result<PathBuf, String> {
    let script = repo_root().join("scripts/fetch-lua.sh");
    let out = Command::new(&script)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let dir = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .unwrap_or_default();
    if !out.status.success() || !dir.join("src/lvm.c").is_file() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(dir)
}

/// `make -C src linux` in the Lua tree `dir`, or `make -C src clean`
/// when `cc` is None.
fn make_lua(dir: &Path, cc: Option<&str>, url: &str, cache: &Path) {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(dir.join("src"));
    match cc {
        Some(cc) => cmd.args(["-j4", "linux", &format!("CC={cc}")]),
        None => cmd.arg("clean"),
    };
    gridcc_env(&mut cmd, url, cache);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "make ({cc:?}) in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn session(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium.display().to_string(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1400,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session")
}

/// Polls `script` (which returns a value) until `ok` holds, for `within`.
async fn poll(
    client: &Client,
    script: &str,
    within: Duration,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let value = client.execute(script, vec![]).await.unwrap();
        if ok(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{script} never held; last {value}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[test]
fn monitor_page_shows_workers_and_job_bars_in_chromium() {
    let (Some(chromium), Some(chromedriver)) = (
        find_on_path(&["chromium", "chromium-browser"]),
        find_on_path(&["chromedriver"]),
    ) else {
        skip("chromium or chromedriver is not installed: run scripts/browser-deps.sh (as root)");
        return;
    };
    let lua = match lua_source() {
        Ok(dir) => dir,
        Err(why) => {
            skip(&format!(
                "no Lua source in target/workloads/lua5.4: run scripts/fetch-lua.sh ({why})"
            ));
            return;
        }
    };
    // Two workers with a shared cache, so later builds are shared hits.
    let mut grid = Grid::start_with(0, 2, &["--http-listen", "127.0.0.1:0"]);
    let http_addr = grid.coordinator.announced("http listening on ");
    for _ in 0..2 {
        grid.add_worker_with(2, &["--cache-size", "64M"], &[]);
    }
    grid.wait_for_workers(2);
    let cc = format!("{} gcc", gridcc().display());
    // Lua built twice from empty client caches: its 34 translation units
    // compiled the first time, answered from the workers' shared caches
    // the second.
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&lua, dir.path());
    let units = std::fs::read_dir(dir.path().join("src"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".c")
        })
        .count();
    assert!(units >= 30, "{units} .c files in Lua's src/");
    let started = Instant::now();
    for _ in 0..2 {
        let cache = tempfile::tempdir().unwrap();
        make_lua(dir.path(), None, &grid.url(), cache.path());
        make_lua(dir.path(), Some(&cc), &grid.url(), cache.path());
        assert!(dir.path().join("src/lua").is_file());
    }
    eprintln!(
        "Lua ({units} units) built twice through the grid in {:?}",
        started.elapsed()
    );

    let log_dir = repo_root().join("target/monitor-test");
    std::fs::create_dir_all(&log_dir).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let driver = start_driver(&chromedriver, &log_dir.join("chromedriver.log"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = session(&driver, &chromium, profile.path()).await;
        client.goto(&format!("http://{http_addr}/")).await.unwrap();

        // Both workers listed, serving.
        let rows = poll(
            &client,
            "return [...document.querySelectorAll('#workers tr.worker')]\
             .map(r => [r.dataset.address, r.dataset.state]);",
            Duration::from_secs(10),
            |v| v.as_array().is_some_and(|a| a.len() == 2),
        )
        .await;
        for w in &grid.workers {
            assert!(
                rows.as_array()
                    .unwrap()
                    .contains(&json!([w.addr, "serving"])),
                "{rows}"
            );
        }

        // A bar per job, coloured by its outcome as the API reports it.
        let bars = poll(
            &client,
            "return [...document.querySelectorAll('#gantt rect.bar')].map(b => \
             [Number(b.dataset.id), b.dataset.outcome, getComputedStyle(b).fill]);",
            Duration::from_secs(10),
            |v| v.as_array().is_some_and(|a| a.len() >= 2 * units),
        )
        .await;
        let api = {
            let (_, _, body) = super::http(&http_addr, "GET", "/api/v1/jobs?limit=5000", &[], "");
            serde_json::from_str::<serde_json::Value>(&body).unwrap()
        };
        let outcome_of = |id: u64| {
            api["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["id"] == id)
                .map(|j| j["outcome"].as_str().unwrap().to_owned())
        };
        let mut seen = std::collections::BTreeSet::new();
        for bar in bars.as_array().unwrap() {
            let (id, outcome, fill) = (
                bar[0].as_u64().unwrap(),
                bar[1].as_str().unwrap(),
                bar[2].as_str().unwrap(),
            );
            assert_eq!(outcome_of(id).as_deref(), Some(outcome), "bar {bar}");
            let colour = COLOURS.iter().find(|(o, _)| *o == outcome).map(|(_, c)| *c);
            assert_eq!(Some(fill), colour, "bar {bar}");
            seen.insert(outcome.to_owned());
        }
        assert!(
            seen.contains("ok") && seen.contains("shared_hit"),
            "{seen:?}"
        );

        // A job that ends while the page is open shows up, ended, within
        // a second, without a reload.
        let probe = dir.path().join("src/probe_monitor.c");
        std::fs::write(&probe, "int probe_monitor(void) { return 42; }\n").unwrap();
        let cache = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(gridcc());
        cmd.current_dir(dir.path().join("src")).args([
            "gcc",
            "-c",
            "probe_monitor.c",
            "-o",
            "probe_monitor.o",
        ]);
        gridcc_env(&mut cmd, &grid.url(), cache.path());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let compiled = Instant::now();
        poll(
            &client,
            "return [...document.querySelectorAll('#gantt rect.bar')].filter(b => \
             b.dataset.outcome === 'ok' && b.textContent.startsWith('probe_monitor.c')).length;",
            Duration::from_secs(1),
            |v| v.as_u64() == Some(1),
        )
        .await;
        eprintln!(
            "probe job on the page {:?} after the compile returned",
            compiled.elapsed()
        );

        let png = client.screenshot().await.unwrap();
        let shot = log_dir.join("monitor.png");
        std::fs::write(&shot, png).unwrap();
        eprintln!("screenshot: {}", shot.display());
        client.close().await.unwrap();
    });
}
