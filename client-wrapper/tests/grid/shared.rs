//! The workers' shared cache, end to end: two "developers" (two client
//! cache dirs) build the same code through one grid whose worker keeps
//! results; the second gets the first one's objects without a compile and
//! without uploading the input.

use super::*;

/// One worker with two slots and its shared cache on.
fn cached_grid() -> Grid {
    let mut grid = Grid::start(0, 2);
    grid.add_worker_with(2, &["--cache-size", "1G"], &[]);
    grid.wait_for_workers(1);
    grid
}

/// `gridcc ARGS…` in `dir` through the grid, with the client cache `cache`.
fn dev_gridcc(dir: &Path, url: &str, cache: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(gridcc());
    cmd.current_dir(dir).args(args);
    cache_env(&mut cmd, Some(url), cache);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "gridcc {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn count(stats: &serde_json::Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {stats}"))
}

fn shared_entries(grid: &Grid) -> Vec<PathBuf> {
    cache_entries(&grid.worker_cache_dir(0))
}

#[test]
fn a_second_developer_gets_shared_hits_identical_to_gcc_without_uploading() {
    let grid = cached_grid();
    let url = grid.url();
    let project = calc_copy();
    let (dev_a, dev_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let local = local_build(project.path(), dev_a.path());

    cached_make(project.path(), Some(&url), dev_a.path());
    assert_same_products(&local, &build_products(project.path()));
    let a = cache_stats(dev_a.path(), false);
    assert_eq!(
        (count(&a, "compiles_remote"), count(&a, "hits_shared")),
        (13, 0),
        "{a}"
    );
    assert!(count(&a, "bytes_sent") > 0);
    assert_eq!(shared_entries(&grid).len(), 13, "every object stored");

    clean(project.path());
    let out = cached_make(project.path(), Some(&url), dev_b.path());
    assert_same_products(&local, &build_products(project.path()));
    let b = cache_stats(dev_b.path(), false);
    assert_eq!(count(&b, "hits_shared"), 13, "{b}");
    assert_eq!(count(&b, "compiles_remote"), 0, "{b}");
    assert_eq!(count(&b, "hits_local"), 0, "{b}");
    assert_eq!(count(&b, "misses"), 0, "{b}");
    assert_eq!(count(&b, "bytes_sent"), 0, "a hit needs no upload: {b}");
    // The stored warning is replayed, as the compiler printed it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warn.c") && stderr.contains("warning"),
        "stderr: {stderr}"
    );
    let status = grid.status();
    assert_eq!(status["shared_hits"].as_u64(), Some(13), "{status}");
    assert_eq!(status["cache_placements"].as_u64(), Some(13), "{status}");
    assert_eq!(status["jobs_remote"].as_u64(), Some(26), "{status}");
    // The tables say which were compiles and which were hits.
    let text =
        String::from_utf8(dev_gridcc(project.path(), &url, dev_b.path(), &["status"]).stdout)
            .unwrap();
    assert!(text.contains("compiled remotely 13,"), "{text}");
    assert!(
        text.contains("shared cache: 13 jobs answered without compiling"),
        "{text}"
    );
    let table =
        String::from_utf8(dev_gridcc(project.path(), &url, dev_b.path(), &["stats"]).stdout)
            .unwrap();
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no {name} in {table}"))
            .to_owned()
    };
    assert_eq!(row("Cache hits (shared, on workers)"), "13", "{table}");
    assert_eq!(row("Compiles run remotely"), "0", "{table}");
    assert_eq!(row("Cache hits (local)"), "0", "{table}");

    // The same text with other flags is compiled, but its input is not
    // uploaded again: the worker holds it by digest.
    let dev_c = tempfile::tempdir().unwrap();
    dev_gridcc(
        project.path(),
        &url,
        dev_c.path(),
        &[
            "gcc",
            "-O2",
            "-g",
            "-Wall",
            "-Wextra",
            "-c",
            "hashtab.c",
            "-o",
            "extra.o",
        ],
    );
    let c = cache_stats(dev_c.path(), false);
    assert_eq!(
        (count(&c, "compiles_remote"), count(&c, "hits_shared")),
        (1, 0),
        "{c}"
    );
    assert_eq!(count(&c, "bytes_sent"), 0, "input reused: {c}");
}

#[test]
fn a_corrupted_shared_entry_is_recompiled_with_a_warning_in_the_worker_log() {
    let grid = cached_grid();
    let url = grid.url();
    let project = calc_copy();
    let dir = project.path();
    let compile = ["gcc", "-O2", "-g", "-c", "hashtab.c", "-o", "hashtab.o"];
    let out = Command::new("gcc")
        .current_dir(dir)
        .args(&compile[1..])
        .output()
        .unwrap();
    assert!(out.status.success());
    let expected = std::fs::read(dir.join("hashtab.o")).unwrap();
    std::fs::remove_file(dir.join("hashtab.o")).unwrap();

    let (dev_a, dev_b, dev_c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    dev_gridcc(dir, &url, dev_a.path(), &compile);
    let entries = shared_entries(&grid);
    assert_eq!(entries.len(), 1);
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&entries[0], &bytes).unwrap();

    dev_gridcc(dir, &url, dev_b.path(), &compile);
    assert_eq!(std::fs::read(dir.join("hashtab.o")).unwrap(), expected);
    let b = cache_stats(dev_b.path(), false);
    assert_eq!(
        (count(&b, "compiles_remote"), count(&b, "hits_shared")),
        (1, 0),
        "the corrupt entry is never returned: {b}"
    );
    let log = std::fs::read_to_string(grid.dir.path().join("worker0.log")).unwrap();
    assert_eq!(
        log.matches("shared cache entry is corrupt").count(),
        1,
        "one warning: {log}"
    );

    // The recompile stored a good entry again.
    std::fs::remove_file(dir.join("hashtab.o")).unwrap();
    dev_gridcc(dir, &url, dev_c.path(), &compile);
    assert_eq!(std::fs::read(dir.join("hashtab.o")).unwrap(), expected);
    let c = cache_stats(dev_c.path(), false);
    assert_eq!(count(&c, "hits_shared"), 1, "{c}");
    let log = std::fs::read_to_string(grid.dir.path().join("worker0.log")).unwrap();
    assert_eq!(log.matches("shared cache entry is corrupt").count(), 1);
}

#[test]
fn a_header_edit_of_the_same_size_is_a_shared_cache_miss() {
    let grid = cached_grid();
    let url = grid.url();
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write(dir, "n.h", "#define N 1\n");
    write(dir, "a.c", "#include \"n.h\"\nint f(void) { return N; }\n");
    let compile = ["gcc", "-O2", "-c", "a.c", "-o", "a.o"];
    let gcc = |dir: &Path| {
        let out = Command::new("gcc")
            .current_dir(dir)
            .args(&compile[1..])
            .output()
            .unwrap();
        assert!(out.status.success());
        std::fs::read(dir.join("a.o")).unwrap()
    };

    let (dev_a, dev_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    dev_gridcc(dir, &url, dev_a.path(), &compile);
    let old = std::fs::read(dir.join("a.o")).unwrap();
    assert_eq!(old, gcc(dir));

    // Same size, so the same stat but for the mtime: content decides.
    write(dir, "n.h", "#define N 2\n");
    let new_local = gcc(dir);
    assert_ne!(old, new_local);
    std::fs::remove_file(dir.join("a.o")).unwrap();
    dev_gridcc(dir, &url, dev_b.path(), &compile);
    assert_eq!(std::fs::read(dir.join("a.o")).unwrap(), new_local);
    let b = cache_stats(dev_b.path(), false);
    assert_eq!(
        (count(&b, "compiles_remote"), count(&b, "hits_shared")),
        (1, 0),
        "{b}"
    );
    assert_eq!(shared_entries(&grid).len(), 2);
}
