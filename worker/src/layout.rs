//! Where a job's input goes inside its temp dir, and the arguments that make
//! the compiler describe it with the client's own paths.
//!
//! Preprocessed mode: the input is a plain file at the root of the temp dir;
//! the preprocessed text's own line markers carry the client's names and
//! working directory.
//!
//! Source mode: the input is compiled as ordinary source, so its path is
//! recorded in the object (DW_AT_name, `.file`, `__BASE_FILE__`) and so is
//! the compiler's working directory (DW_AT_comp_dir). The client's path is
//! recreated below `ROOT/in` and its working directory below `ROOT/w`, and
//! `-ffile-prefix-map` maps both back: `ROOT/w/home/me/p` → `/home/me/p`,
//! `ROOT/in/src/a.c` → `src/a.c`. gcc leaves prefix maps out of the
//! DW_AT_producer string, so the object is byte-identical to a local one.
//! A user's own prefix maps keep working: gcc applies the last matching map,
//! so after ours come translated copies of theirs (`ROOT/w/OLD=NEW`).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::headers::Place;

/// How a job's input is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Preprocessed input under a plain file name.
    Preprocessed { input_name: String },
    /// Directives-only source compiled under the client's path.
    Source { source_path: String, cwd: String },
}

/// A layout that would leave the job directory or cannot be mapped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    #[error("working directory {0:?} must be an absolute, normalized path")]
    BadCwd(String),
    #[error("source path {0:?} is empty, too long or not normalizable")]
    BadSource(String),
    #[error("prefix map {0:?} has a relative old path; it cannot be translated")]
    RelativePrefixMap(String),
    #[error("header name {0:?} cannot be laid out inside the job directory")]
    BadHeader(String),
}

/// The concrete paths and extra arguments of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Where to write the input.
    pub input_file: PathBuf,
    /// The input argument given to the compiler.
    pub input_arg: String,
    /// The compiler's working directory.
    pub workdir: PathBuf,
    /// Arguments appended after the client's (prefix maps).
    pub extra_args: Vec<String>,
    /// Directories to create before writing the input.
    pub dirs: Vec<PathBuf>,
    /// Source mode: where the compiler writes its dependency list, checked
    /// afterwards so the input cannot have read worker files.
    pub deps_file: Option<PathBuf>,
}

const PREFIX_MAP_OPTIONS: [&str; 4] = [
    "-ffile-prefix-map=",
    "-fdebug-prefix-map=",
    "-fmacro-prefix-map=",
    "-fprofile-prefix-map=",
];

/// `/` or `/seg/seg…` with no empty, `.` or `..` segment.
fn is_normal_absolute(path: &str) -> bool {
    path == "/"
        || path.strip_prefix('/').is_some_and(|rest| {
            rest.split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        })
}

/// Plans the job directory `root` for `layout` given the client's `args`.
pub fn plan(root: &Path, layout: &Layout, args: &[String]) -> Result<Plan, LayoutError> {
    let (source_path, cwd) = match layout {
        Layout::Preprocessed { input_name } => {
            return Ok(Plan {
                input_file: root.join(input_name),
                input_arg: input_name.clone(),
                workdir: root.to_owned(),
                extra_args: Vec::new(),
                dirs: Vec::new(),
                deps_file: None,
            })
        }
        Layout::Source { source_path, cwd } => (source_path, cwd),
    };
    if !is_normal_absolute(cwd) || cwd.len() > 4096 || cwd.contains('\0') {
        return Err(LayoutError::BadCwd(cwd.clone()));
    }
    let bad_source = || LayoutError::BadSource(source_path.clone());
    if source_path.is_empty() || source_path.len() > 4096 || source_path.contains('\0') {
        return Err(bad_source());
    }
    let root_str = root.to_str().ok_or_else(bad_source)?;
    let w = format!("{root_str}/w");
    let workdir = PathBuf::from(format!("{w}{}", if cwd == "/" { "" } else { cwd }));

    let (input_arg, map_old) = if source_path.starts_with('/') {
        (
            format!("{root_str}/in{source_path}"),
            format!("{root_str}/in"),
        )
    } else {
        // A relative source may climb with `..`; give it that many levels
        // of padding so it resolves inside ROOT/in.
        let ups = Path::new(source_path)
            .components()
            .take_while(|c| matches!(c, Component::ParentDir | Component::CurDir))
            .filter(|c| matches!(c, Component::ParentDir))
            .count();
        let base = format!("{root_str}/in{}", "/_".repeat(ups));
        (format!("{base}/{source_path}"), format!("{base}/"))
    };
    // No client path may reach outside the job directory.
    let resolved = resolve_inside(&input_arg, &root.join("in")).ok_or_else(bad_source)?;

    let deps_file = root.join("out/gridcc-deps.d");
    // -nostdinc and -MD/-MF change nothing in the object (gcc leaves them out
    // of DW_AT_producer); the dependency list shows what the input read.
    let mut extra_args = vec![
        "-nostdinc".to_owned(),
        "-MD".to_owned(),
        "-MF".to_owned(),
        format!("{}", deps_file.display()),
        format!("-ffile-prefix-map={w}="),
        format!("-ffile-prefix-map={map_old}="),
    ];
    extra_args.extend(translated_user_maps(
        args,
        &[&w, &format!("{root_str}/in")],
    )?);
    // The padding directories must exist for the kernel to resolve `..`.
    let dirs = vec![
        workdir.clone(),
        PathBuf::from(map_old.trim_end_matches('/')),
        resolved
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| root.join("in")),
    ];
    Ok(Plan {
        input_file: resolved,
        input_arg,
        workdir,
        extra_args,
        dirs,
        deps_file: Some(deps_file),
    })
}

/// Resolves `..` in `path` lexically; `None` unless the result lies strictly
/// inside `inside`.
fn resolve_inside(path: &str, inside: &Path) -> Option<PathBuf> {
    let mut resolved = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::ParentDir => {
                if !resolved.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    (resolved.starts_with(inside) && resolved != inside).then_some(resolved)
}

/// The user's own prefix maps, translated below each of `roots`, to follow
/// ours (gcc applies the last map that matches).
fn translated_user_maps(args: &[String], roots: &[&str]) -> Result<Vec<String>, LayoutError> {
    let mut out = Vec::new();
    for arg in args {
        let Some(option) = PREFIX_MAP_OPTIONS.iter().find(|o| arg.starts_with(*o)) else {
            continue;
        };
        let value = &arg[option.len()..];
        let old = value.split_once('=').map_or(value, |(old, _)| old);
        if !old.starts_with('/') {
            return Err(LayoutError::RelativePrefixMap(arg.clone()));
        }
        let rest = &value[old.len()..];
        let old = old.trim_end_matches('/');
        for root in roots {
            out.push(format!("{option}{root}{old}{rest}"));
        }
    }
    Ok(out)
}

/// Where the header files of a split source-mode input go
/// (`headers::split`), and the prefix maps that give them back their
/// client names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderPlan {
    /// Each header's place, by client name.
    pub places: HashMap<String, Place>,
    /// The files the places use, by index.
    pub files: Vec<PathBuf>,
    /// Directories to create first: the files' own, and every one a name
    /// climbs out of with `..` (the kernel resolves `..` only through
    /// directories that exist).
    pub dirs: Vec<PathBuf>,
    /// Prefix of absolute names: `ROOT/ha` + `/usr/include/x.h`.
    pub absolute_root: String,
    /// Prefix of relative names, padded for `..`: `ROOT/hr/_/` + `../x.h`.
    pub relative_root: String,
    /// Prefix maps to append after [`Plan::extra_args`].
    pub extra_args: Vec<String>,
}

/// Plans the header files `names` of a source-mode job in `root`.
pub fn headers(root: &Path, names: &[String], args: &[String]) -> Result<HeaderPlan, LayoutError> {
    let root_str = root
        .to_str()
        .ok_or_else(|| LayoutError::BadHeader(root.display().to_string()))?;
    // Relative names may climb with `..`: pad by the deepest climb.
    let climb = |name: &str| {
        let (mut depth, mut lowest) = (0i64, 0i64);
        for c in Path::new(name).components() {
            match c {
                Component::ParentDir => depth -= 1,
                Component::Normal(_) => depth += 1,
                _ => {}
            }
            lowest = lowest.min(depth);
        }
        (-lowest) as usize
    };
    let pad = names
        .iter()
        .filter(|n| !n.starts_with('/'))
        .map(|n| climb(n))
        .max()
        .unwrap_or(0);
    let absolute_root = format!("{root_str}/ha");
    let relative_root = format!("{root_str}/hr{}/", "/_".repeat(pad));
    let mut places = HashMap::with_capacity(names.len());
    let mut files: Vec<PathBuf> = Vec::new();
    let mut file_index: HashMap<PathBuf, usize> = HashMap::new();
    let mut dirs = vec![
        root.join("ha"),
        PathBuf::from(relative_root.trim_end_matches('/')),
    ];
    for name in names {
        let (include_path, inside) = if name.starts_with('/') {
            (format!("{absolute_root}{name}"), root.join("ha"))
        } else {
            (format!("{relative_root}{name}"), root.join("hr"))
        };
        let bad = || LayoutError::BadHeader(name.clone());
        let file = resolve_inside(&include_path, &inside).ok_or_else(bad)?;
        // Every directory the path passes through before a `..`.
        let mut walked = PathBuf::new();
        for c in Path::new(&include_path).components() {
            match c {
                Component::ParentDir => {
                    if walked.starts_with(&inside) {
                        dirs.push(walked.clone());
                    }
                    walked.pop();
                }
                Component::CurDir => {}
                other => walked.push(other),
            }
        }
        dirs.push(file.parent().ok_or_else(bad)?.to_owned());
        let next = files.len();
        let index = *file_index.entry(file.clone()).or_insert(next);
        if index == next {
            files.push(file);
        }
        places.insert(
            name.clone(),
            Place {
                include_path,
                file: index,
            },
        );
    }
    dirs.sort();
    dirs.dedup();
    let mut extra_args = vec![
        format!("-ffile-prefix-map={absolute_root}="),
        format!("-ffile-prefix-map={relative_root}="),
    ];
    extra_args.extend(translated_user_maps(args, &[&absolute_root])?);
    Ok(HeaderPlan {
        places,
        files,
        dirs,
        absolute_root,
        relative_root,
        extra_args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(path: &str, cwd: &str) -> Layout {
        Layout::Source {
            source_path: path.into(),
            cwd: cwd.into(),
        }
    }

    #[test]
    fn relative_and_absolute_sources_map_back_to_client_paths() {
        let root = Path::new("/tmp/job");
        let p = plan(root, &source("src/a.c", "/home/me/p"), &[]).unwrap();
        assert_eq!(p.input_arg, "/tmp/job/in/src/a.c");
        assert_eq!(p.input_file, Path::new("/tmp/job/in/src/a.c"));
        assert_eq!(p.workdir, Path::new("/tmp/job/w/home/me/p"));
        assert_eq!(
            p.extra_args,
            [
                "-nostdinc",
                "-MD",
                "-MF",
                "/tmp/job/out/gridcc-deps.d",
                "-ffile-prefix-map=/tmp/job/w=",
                "-ffile-prefix-map=/tmp/job/in/="
            ]
        );
        assert_eq!(
            p.deps_file,
            Some(PathBuf::from("/tmp/job/out/gridcc-deps.d"))
        );

        let p = plan(root, &source("/abs/x.c", "/"), &[]).unwrap();
        assert_eq!(p.input_arg, "/tmp/job/in/abs/x.c");
        assert_eq!(p.workdir, Path::new("/tmp/job/w"));
        assert_eq!(p.extra_args[5], "-ffile-prefix-map=/tmp/job/in=");
    }

    #[test]
    fn parent_relative_sources_get_padding_and_stay_inside() {
        let root = Path::new("/tmp/job");
        let p = plan(root, &source("../../lib/b.c", "/a/b/c"), &[]).unwrap();
        assert_eq!(p.input_arg, "/tmp/job/in/_/_/../../lib/b.c");
        assert_eq!(p.input_file, Path::new("/tmp/job/in/lib/b.c"));
        assert_eq!(p.extra_args[5], "-ffile-prefix-map=/tmp/job/in/_/_/=");
        for escape in ["a/../../../etc/passwd", "x/../..", "..", ".", "", "a\0b"] {
            assert!(
                plan(root, &source(escape, "/w"), &[]).is_err(),
                "{escape:?}"
            );
        }
    }

    #[test]
    fn working_directory_must_be_absolute_and_normal() {
        let root = Path::new("/tmp/job");
        for cwd in ["rel", "/a/../b", "/a/./b", "/a//b", "/a/", ""] {
            assert!(plan(root, &source("a.c", cwd), &[]).is_err(), "{cwd:?}");
        }
    }

    #[test]
    fn user_prefix_maps_are_translated_after_ours() {
        let root = Path::new("/tmp/job");
        let args = vec![
            "-O2".to_owned(),
            "-fdebug-prefix-map=/home/me=/src".to_owned(),
        ];
        let p = plan(root, &source("a.c", "/home/me/p"), &args).unwrap();
        assert_eq!(
            &p.extra_args[6..],
            [
                "-fdebug-prefix-map=/tmp/job/w/home/me=/src",
                "-fdebug-prefix-map=/tmp/job/in/home/me=/src"
            ]
        );
        let relative = vec!["-ffile-prefix-map=.=x".to_owned()];
        assert!(matches!(
            plan(root, &source("a.c", "/p"), &relative),
            Err(LayoutError::RelativePrefixMap(_))
        ));
    }

    #[test]
    fn preprocessed_inputs_sit_at_the_root() {
        let p = plan(
            Path::new("/tmp/job"),
            &Layout::Preprocessed {
                input_name: "a.i".into(),
            },
            &[],
        )
        .unwrap();
        assert_eq!(p.input_file, Path::new("/tmp/job/a.i"));
        assert_eq!(p.workdir, Path::new("/tmp/job"));
        assert!(p.extra_args.is_empty());
    }

    #[test]
    fn headers_map_back_to_their_client_names() {
        let root = Path::new("/tmp/job");
        let names = vec![
            "/usr/include/s.h".to_owned(),
            "../inc/x.h".to_owned(),
            "a/../../../y.h".to_owned(),
            "./Include/P.h".to_owned(),
            "Include/sub/../P.h".to_owned(),
        ];
        let args = vec!["-ffile-prefix-map=/usr=/U".to_owned()];
        let h = headers(root, &names, &args).unwrap();
        let include = |n: &str| h.places[n].include_path.clone();
        assert_eq!(include("/usr/include/s.h"), "/tmp/job/ha/usr/include/s.h");
        assert_eq!(include("../inc/x.h"), "/tmp/job/hr/_/_/../inc/x.h");
        assert_eq!(
            h.files,
            [
                PathBuf::from("/tmp/job/ha/usr/include/s.h"),
                PathBuf::from("/tmp/job/hr/_/inc/x.h"),
                PathBuf::from("/tmp/job/hr/y.h"),
                PathBuf::from("/tmp/job/hr/_/_/Include/P.h"),
            ]
        );
        assert_eq!(h.places["./Include/P.h"].file, 3);
        assert_eq!(
            h.places["Include/sub/../P.h"].file, 3,
            "one file, two names"
        );
        assert!(h
            .dirs
            .contains(&PathBuf::from("/tmp/job/hr/_/_/Include/sub")));
        assert!(h.dirs.contains(&PathBuf::from("/tmp/job/hr/_/_/a")));
        assert!(h
            .dirs
            .iter()
            .all(|d| d.starts_with("/tmp/job/ha") || d.starts_with("/tmp/job/hr")));
        assert_eq!(
            h.extra_args,
            [
                "-ffile-prefix-map=/tmp/job/ha=",
                "-ffile-prefix-map=/tmp/job/hr/_/_/=",
                "-ffile-prefix-map=/tmp/job/ha/usr=/U",
            ]
        );
        for bad in ["/..", "/a/../..", "..", "x/.."] {
            assert!(headers(root, &[bad.to_owned()], &[]).is_err(), "{bad:?}");
        }
    }
}

/// Properties over arbitrary client paths and prefix maps: a plan either
/// fails or keeps every path it names inside the job directory.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Paths made of the segments that try to climb out.
    fn path() -> impl Strategy<Value = String> {
        let segment = proptest::sample::select(&["a", "b.c", "..", ".", "", "_", "x y", "\0"][..]);
        (any::<bool>(), proptest::collection::vec(segment, 0..7)).prop_map(|(abs, segs)| {
            let joined = segs.join("/");
            if abs {
                format!("/{joined}")
            } else {
                joined
            }
        })
    }

    fn arg() -> impl Strategy<Value = String> {
        let option = proptest::sample::select(&PREFIX_MAP_OPTIONS[..]);
        prop_oneof![
            (option.clone(), path(), path()).prop_map(|(o, old, new)| format!("{o}{old}={new}")),
            (option, path()).prop_map(|(o, old)| format!("{o}{old}")),
            Just("-O2".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn source_plans_stay_inside_the_job_directory(
            source in path(),
            cwd in path(),
            args in proptest::collection::vec(arg(), 0..3),
        ) {
            let root = Path::new("/tmp/job");
            let layout = Layout::Source { source_path: source, cwd };
            let Ok(p) = plan(root, &layout, &args) else { return Ok(()) };
            prop_assert!(p.input_file.starts_with("/tmp/job/in"), "{:?}", p.input_file);
            prop_assert!(p.input_file != Path::new("/tmp/job/in"));
            prop_assert_eq!(resolve_inside(&p.input_arg, &root.join("in")), Some(p.input_file));
            prop_assert!(p.workdir.starts_with("/tmp/job/w"));
            for d in &p.dirs {
                prop_assert!(resolve_inside(&d.display().to_string(), root).is_some(), "{d:?}");
            }
        }

        #[test]
        fn header_plans_stay_inside_their_roots(
            names in proptest::collection::vec(path(), 0..5),
            args in proptest::collection::vec(arg(), 0..2),
        ) {
            let root = Path::new("/tmp/job");
            let Ok(h) = headers(root, &names, &args) else { return Ok(()) };
            for name in &names {
                let place = &h.places[name];
                let file = &h.files[place.file];
                prop_assert!(
                    file.starts_with("/tmp/job/ha") || file.starts_with("/tmp/job/hr"),
                    "{name:?} -> {file:?}"
                );
                let resolved = resolve_inside(&place.include_path, root);
                prop_assert_eq!(resolved.as_ref(), Some(file));
            }
            for d in &h.dirs {
                prop_assert!(resolve_inside(&d.display().to_string(), root).is_some(), "{d:?}");
            }
        }
    }
}
