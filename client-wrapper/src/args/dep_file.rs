//! Dependency files (`-MD`, `-MMD`, `-MF`, `-MT`/`-MQ`, `-Wp,-MD,FILE`):
//! which files a compile writes besides the object, and the options that
//! make the local preprocessing step alone write them, byte for byte.
//!
//! The driver derives the `-MF` file and the `-MQ` target from `-o` only
//! when it is not running `-E` (gcc's `cpp_unique_options`), so the
//! preprocessing command names both explicitly.

use super::input::{basename, strip_suffix};

/// The dependency-file options of one command line, as the walk meets them.
#[derive(Default)]
pub(super) struct DepFiles {
    /// Driver-level `-MD`/`-MMD`.
    md: bool,
    /// Every driver-level `-MF` value.
    mf_values: Vec<String>,
    /// Driver-level `-MT`/`-MQ` given.
    mt: bool,
    /// The FILE of each `-Wp,-MD,FILE` or `-Wp,-MMD,FILE`.
    wp_dep_files: Vec<String>,
    /// Some dependency file is stdout or a device: it would mix with the
    /// preprocessed text.
    to_stdout: bool,
}

impl DepFiles {
    /// Driver-level `-MD` or `-MMD`: the compile writes a dependency file
    /// (the `-MF` file, or one named after the object).
    pub(super) fn md(&mut self) {
        self.md = true;
    }

    /// Driver-level `-MF FILE`.
    pub(super) fn mf(&mut self, file: &str) {
        self.mf_values.push(file.to_owned());
        if is_stdout(file) {
            self.to_stdout = true;
        }
    }

    /// Driver-level `-MT` or `-MQ`.
    pub(super) fn target(&mut self) {
        self.mt = true;
    }

    /// The FILE after `-MD`, `-MMD` or `-MF` in `-Wp,` or `-Xpreprocessor`;
    /// `writes` when it came after `-MD`/`-MMD` (a bare `-MF FILE` writes
    /// nothing).
    pub(super) fn preprocessor_file(&mut self, file: &str, writes: bool) {
        if is_stdout(file) {
            self.to_stdout = true;
        }
        if writes {
            self.wp_dep_files.push(file.to_owned());
        }
    }

    pub(super) fn to_stdout(&self) -> bool {
        self.to_stdout
    }

    /// Adds to `preprocess_args` the `-MF` and `-MQ` the driver would have
    /// derived for the compile of `source` to `outputs`, and returns every
    /// dependency file the command writes.
    pub(super) fn make_explicit(
        self,
        source: &str,
        outputs: &[String],
        preprocess_args: &mut Vec<String>,
    ) -> Vec<String> {
        let mut dep_files = Vec::new();
        if self.md {
            // gcc's cpp_unique_options: %{MD:-MD %{!o:%b.d}%{o*:%.d%*}}
            // and, only when not -E, -MQ <output> when no -MT/-MQ.
            if self.mf_values.is_empty() {
                let dep = match outputs.first() {
                    Some(o) => replace_suffix(o, ".d"),
                    None => format!("{}.d", strip_suffix(basename(source))),
                };
                preprocess_args.push("-MF".to_owned());
                preprocess_args.push(dep.clone());
                dep_files.push(dep);
            }
            dep_files.extend(self.mf_values);
            if !self.mt {
                if let Some(o) = outputs.first() {
                    preprocess_args.push("-MQ".to_owned());
                    preprocess_args.push(o.clone());
                }
            }
        }
        dep_files.extend(self.wp_dep_files);
        dep_files
    }
}

fn is_stdout(path: &str) -> bool {
    path == "-" || path.starts_with("/dev/")
}

/// gcc's `%.SUFFIX%*` (give_switch): drop the last `.suffix` of the last path
/// component, even a leading one, then append `suffix`.
fn replace_suffix(path: &str, suffix: &str) -> String {
    let dir_end = path.rfind('/').map_or(0, |p| p + 1);
    let stem = match path[dir_end..].rfind('.') {
        Some(pos) => &path[..dir_end + pos],
        None => path,
    };
    format!("{stem}{suffix}")
}

#[cfg(test)]
mod tests {
    use crate::args::tests::{gcc, project, remote, run, words};
    use crate::args::{classify, Classification};
    use std::path::{Path, PathBuf};

    #[test]
    fn dependency_files_are_named() {
        for (line, files) in [
            ("gcc -c a.c", ""),
            ("gcc -c a.c -MF x.d", ""),
            ("gcc -c a.c -o obj/a.o -MD", "obj/a.d"),
            ("gcc -c src/a.c -MMD", "a.d"),
            ("gcc -c a.c -MD -MFx.d", "x.d"),
            ("gcc -c a.c -Wp,-MD,.a.o.d", ".a.o.d"),
            ("gcc -c a.c -Wp,-MF,x.d", ""),
            ("gcc -c a.c -MD -MF x.d -Wp,-MMD,y.d", "x.d y.d"),
            ("gcc -c a.i -MD", ""),
        ] {
            assert_eq!(remote(line).dep_files, words(files), "{line}");
        }
    }

    fn snapshot(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
        out
    }

    /// The files a command created or changed, minus the object.
    fn side_files(
        before: &std::collections::BTreeMap<PathBuf, Vec<u8>>,
        after: std::collections::BTreeMap<PathBuf, Vec<u8>>,
        object: &str,
    ) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
        after
            .into_iter()
            .filter(|(p, c)| before.get(p) != Some(c) && p != Path::new(object))
            .collect()
    }

    #[test]
    fn preprocess_args_write_the_same_dependency_files_as_gcc() {
        let Some(gcc) = gcc() else { return };
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("-Iinc -MD -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MMD -MP -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -MF x.d -MT t -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -MF x.d -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -MQ q$t -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -c src/a.c -o obj/sub/a.c.o", &[]),
            ("-Iinc -MD -c src/a.c -o obj/sub/a$x.o", &[]),
            ("-Iinc -MD -c src/a.c -o obj/noext", &[]),
            ("-Iinc -MMD -c src/a.c", &[]),
            ("-Iinc -MD -MP -c src/a.c", &[]),
            ("-Iinc -Wp,-MD,obj/.a.d -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -Wp,-MMD,obj/.a.d -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -MD -Wp,-MT,extra -c src/a.c -o obj/a.o", &[]),
            ("-Iinc -O2 -g -c src/a.c -o obj/a.o", &[("DEPENDENCIES_OUTPUT", "env.d")]),
            ("-Iinc -c src/a.c -o obj/a.o", &[("DEPENDENCIES_OUTPUT", "env.d my-target")]),
            ("-Iinc -c src/a.c -o obj/a.o", &[("SUNPRO_DEPENDENCIES", "sun.d")]),
            (
                "-DHAVE_CONFIG_H -I. -Iinc -g -O2 -MT foo.lo -MD -MP -MF obj/foo.Tpo -c src/a.c -fPIC -DPIC -o obj/sub/foo.o",
                &[],
            ),
            (
                "-DFOO -Iinc -O3 -DNDEBUG -std=gnu11 -MD -MT obj/a.c.o -MF obj/a.c.o.d -o obj/a.c.o -c src/a.c",
                &[],
            ),
        ];
        for (line, env) in cases {
            let dir = project();
            let d = dir.path();
            let args = words(line);
            let envf = |k: &str| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            };
            let Classification::Remote(job) = classify(&args, d, &envf).unwrap() else {
                panic!("{line}: not remote");
            };
            let before = snapshot(d);
            run(gcc, &args, d, env);
            let original = side_files(&before, snapshot(d), &job.output);
            assert!(!original.is_empty(), "{line}: gcc wrote no dependency file");

            let fresh = project();
            let f = fresh.path();
            let before = snapshot(f);
            let out = run(gcc, &job.preprocess_args, f, env);
            assert!(
                !out.stdout.is_empty(),
                "{line}: no preprocessed text on stdout"
            );
            let split = side_files(&before, snapshot(f), &job.output);
            assert_eq!(
                original.keys().collect::<Vec<_>>(),
                split.keys().collect::<Vec<_>>(),
                "{line}: different dependency files"
            );
            for (path, bytes) in &original {
                assert!(
                    split[path] == *bytes,
                    "{line}: {} differs:\n{}\n---\n{}",
                    path.display(),
                    String::from_utf8_lossy(bytes),
                    String::from_utf8_lossy(&split[path])
                );
            }
        }
    }
}
