//! The workload's own commands, run on this host: fetch and configure
//! once, clean, the build (`make` under the client's limit, in a peer's
//! network namespace where it has one), and the object check against the
//! plain build.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};

use super::ObjectsRecord;
use crate::cgroup;
use crate::scenario::Workload;

pub(super) fn shell(script: &str, dir: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("sh");
    c.arg("-c").arg(script).current_dir(dir);
    c
}

/// Fetches and configures the workload once.
pub(super) fn prepare(w: &Workload, root: &Path, source: &Path) -> anyhow::Result<()> {
    if !source.exists() {
        let Some(fetch) = &w.fetch else {
            bail!(
                "workload {}: {} does not exist and no fetch command is given",
                w.name,
                source.display()
            );
        };
        eprintln!("gridcc-bench: fetching {}: {fetch}", w.name);
        let st = shell(fetch, root).status()?;
        if !st.success() || !source.exists() {
            bail!("workload {}: `{fetch}` failed ({st})", w.name);
        }
    }
    if let Some(configure) = &w.configure {
        let done = w
            .configured_marker
            .as_ref()
            .is_some_and(|m| source.join(m).exists());
        if !done {
            eprintln!("gridcc-bench: configuring {}: {configure}", w.name);
            let st = shell(configure, source).stdout(Stdio::null()).status()?;
            if !st.success() {
                bail!("workload {}: `{configure}` failed ({st})", w.name);
            }
        }
    }
    Ok(())
}

pub(super) fn clean(w: &Workload, source: &Path, log: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::create(log)?;
    let st = shell(&w.clean, source)
        .stdout(f.try_clone()?)
        .stderr(f)
        .status()?;
    if !st.success() {
        bail!("workload {}: clean `{}` failed ({st})", w.name, w.clean);
    }
    Ok(())
}

/// The build, run by a shell that first joins the client's cgroup and at
/// the end writes its own `/proc/self/stat`, whose child times hold the
/// CPU of make and everything it started.
pub(super) fn build_command(
    w: &Workload,
    source: &Path,
    cc: &str,
    cxx: &str,
    jobs: u32,
    limit: Option<&cgroup::Limited>,
    stat_file: Option<&Path>,
) -> std::process::Command {
    // With `GRIDCC_BENCH_NETNS` set by the caller, the build runs in that
    // network namespace (a peer's, see peers/icecc.rs) as a child of this
    // shell (`ip netns exec` becomes `sh`), so the shell's stat still
    // counts its CPU.
    let script = r#"if [ -n "$GRIDCC_BENCH_PROCS" ]; then echo $$ > "$GRIDCC_BENCH_PROCS" || exit 97; fi
if [ -n "$GRIDCC_BENCH_NETNS" ]; then ip netns exec "$GRIDCC_BENCH_NETNS" sh -c "$GRIDCC_BENCH_BUILD"; else sh -c "$GRIDCC_BENCH_BUILD"; fi; rc=$?
if [ -n "$GRIDCC_BENCH_STAT" ]; then cat /proc/$$/stat > "$GRIDCC_BENCH_STAT"; fi
exit $rc"#;
    let mut c = shell(script, source);
    c.env("GRIDCC_BENCH_BUILD", &w.build)
        .env("CC", cc)
        .env("CXX", cxx)
        .env("JOBS", jobs.to_string())
        .env_remove("GRIDCC_BENCH_PROCS")
        .env_remove("GRIDCC_BENCH_STAT")
        .env_remove("GRIDCC_BENCH_NETNS")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS");
    if let Some(l) = limit {
        c.env("GRIDCC_BENCH_PROCS", &l.procs);
    }
    if let Some(s) = stat_file {
        c.env("GRIDCC_BENCH_STAT", s);
    }
    c
}

/// blake3 of every `*.o` under `dir`, by relative path, without the
/// workload's known non-deterministic ones.
pub(super) fn hash_objects(
    dir: &Path,
    w: &Workload,
) -> anyhow::Result<BTreeMap<String, blake3::Hash>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "o") {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                if w.nondeterministic.contains(&rel) {
                    continue;
                }
                let bytes = std::fs::read(&path)?;
                out.insert(rel, blake3::hash(&bytes));
            }
        }
    }
    Ok(out)
}

pub(super) fn compare_objects(
    reference: Option<&BTreeMap<String, blake3::Hash>>,
    now: &BTreeMap<String, blake3::Hash>,
) -> ObjectsRecord {
    let Some(reference) = reference else {
        return ObjectsRecord {
            found: now.len(),
            identical: now.len(),
            ..ObjectsRecord::default()
        };
    };
    let mut rec = ObjectsRecord {
        found: now.len(),
        ..ObjectsRecord::default()
    };
    for (path, hash) in now {
        match reference.get(path) {
            Some(h) if h == hash => rec.identical += 1,
            _ => {
                if rec.different.len() < 20 {
                    rec.different.push(path.clone());
                }
            }
        }
    }
    rec.missing = reference.keys().filter(|k| !now.contains_key(*k)).count();
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_compare_against_the_reference() {
        let h = |s: &str| blake3::hash(s.as_bytes());
        let reference: BTreeMap<String, blake3::Hash> = [
            ("a.o".to_owned(), h("a")),
            ("b.o".to_owned(), h("b")),
            ("c.o".to_owned(), h("c")),
        ]
        .into();
        let now: BTreeMap<String, blake3::Hash> =
            [("a.o".to_owned(), h("a")), ("b.o".to_owned(), h("B"))].into();
        let r = compare_objects(Some(&reference), &now);
        assert_eq!((r.found, r.identical, r.missing), (2, 1, 1));
        assert_eq!(r.different, ["b.o"]);
    }
}
