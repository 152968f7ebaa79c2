//! Target `worker_input`: bytes 0..2 are the length of an encoded
//! `CompileHeader` (u16 LE), then the header, then the input text. The
//! harness does what a worker does before and after a compile: check the
//! arguments, plan the job directory from the client's source path and
//! working directory, refuse dependency pragmas, split the text into
//! header files, and check a dependency list (the text itself, read as
//! one).
//!
//! Properties: no panic; every path a plan names lies inside the job
//! directory (after `..` is resolved); every ordinary line of a split text
//! lands in one of its files.

use std::path::{Component, Path};

use gridcc_proto::v1::CompileHeader;
use gridcc_worker::{allowlist, directives, headers, layout};
use prost::Message;

/// The job directory the plans are made for.
const ROOT: &str = "/tmp/gridcc-fuzz-job";

/// Inside `dir` with no `.` or `..` left to resolve.
fn inside(path: &Path, dir: &str) -> bool {
    path.starts_with(dir)
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

pub fn run(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let n = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
    let (header, text) = rest.split_at(n);
    let Ok(header) = CompileHeader::decode(header) else {
        return;
    };
    let root = Path::new(ROOT);
    let _ = allowlist::check(&header.args);
    if !header.source_path.is_empty() {
        let source = layout::Layout::Source {
            source_path: header.source_path.clone(),
            cwd: header.cwd.clone(),
        };
        if let Ok(plan) = layout::plan(root, &source, &header.args) {
            assert!(
                inside(&plan.input_file, &format!("{ROOT}/in")),
                "{header:?}: input at {:?}",
                plan.input_file
            );
            assert!(plan.input_file != Path::new(ROOT).join("in"));
            assert!(inside(&plan.workdir, &format!("{ROOT}/w")), "{header:?}");
            for d in &plan.dirs {
                assert!(inside(d, ROOT), "{header:?}: makes {d:?}");
            }
        }
    }
    let _ = directives::check_text(text);
    let _ = headers::records_macros(&header.args);
    if let Some(names) = headers::names(text) {
        if let Ok(h) = layout::headers(root, &names, &header.args) {
            for name in &names {
                let file = &h.files[h.places[name].file];
                assert!(
                    inside(file, &format!("{ROOT}/ha")) || inside(file, &format!("{ROOT}/hr")),
                    "header {name:?} at {file:?}"
                );
            }
            for d in &h.dirs {
                assert!(inside(d, ROOT), "makes {d:?}");
            }
            let split = headers::split(text, &|n| h.places.get(n).cloned(), h.files.len());
            if let Some(split) = split {
                let outputs: Vec<&[u8]> = std::iter::once(split.main.as_slice())
                    .chain(split.files.iter().map(Vec::as_slice))
                    .collect();
                for l in text.split(|c| *c == b'\n') {
                    if l.is_empty() || l.starts_with(b"# ") {
                        continue;
                    }
                    assert!(
                        outputs
                            .iter()
                            .any(|o| o.split(|c| *c == b'\n').any(|ol| ol == l)),
                        "line {:?} lost",
                        String::from_utf8_lossy(l)
                    );
                }
            }
        }
    }
    let deps = String::from_utf8_lossy(text);
    let _ = directives::check_deps(Some(&deps), "/j/o.o", &["/j/in/a.c"]);
}
