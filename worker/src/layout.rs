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

use std::path::{Component, Path, PathBuf};

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
    // Resolve `..` lexically and require the result to stay in ROOT/in, so
    // no client path can reach outside the job directory.
    let mut resolved = PathBuf::new();
    for c in Path::new(&input_arg).components() {
        match c {
            Component::ParentDir => {
                if !resolved.pop() {
                    return Err(bad_source());
                }
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    if !resolved.starts_with(root.join("in")) || resolved == root.join("in") {
        return Err(bad_source());
    }

    let deps_file = root.join("gridcc-deps.d");
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
        extra_args.push(format!("{option}{w}{old}{rest}"));
        extra_args.push(format!("{option}{root_str}/in{old}{rest}"));
    }
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
                "/tmp/job/gridcc-deps.d",
                "-ffile-prefix-map=/tmp/job/w=",
                "-ffile-prefix-map=/tmp/job/in/="
            ]
        );
        assert_eq!(p.deps_file, Some(PathBuf::from("/tmp/job/gridcc-deps.d")));

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
}
