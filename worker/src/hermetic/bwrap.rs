//! The bubblewrap command line of one sandboxed compile: a pure function of
//! its [`Spec`], each flag with the reason it is there.

use std::ffi::OsString;

use super::Spec;

/// The uid and gid a job has inside its user namespace, whatever user the
/// worker runs it as: every worker looks the same to a job, and the
/// worker's own ids stay private.
pub const SANDBOX_ID: u32 = 65534;

/// The bwrap argv for `spec`, without the program and without `--` and the
/// compiler's argv (and without the job's `--setenv`s, which
/// [`super::command`] appends).
///
/// The mount points (`/tmp`, `/dev`, every toolchain file, every output)
/// and the toolchain's symlinks must already be in `spec.root`
/// ([`super::prepare`]): the root is bound read-only first, so bwrap cannot
/// create anything in it, and it must not, since it runs as the compile
/// user, who cannot write the worker's tree.
pub fn bwrap_args(spec: &Spec) -> Vec<OsString> {
    let mut a = Args::default();
    // New user, mount, IPC, PID, network, UTS (and cgroup where the kernel
    // has it) namespaces: no network at all, no view of the worker's
    // processes, shared memory or hostname.
    a.flag("--unshare-all");
    // --unshare-all only *tries* a user namespace when bwrap runs as root;
    // without one, a root bwrap would keep its capabilities.
    a.flag("--unshare-user");
    // The job cannot make a nested user namespace (and so new mounts) of
    // its own: user.max_user_namespaces = 1 inside.
    a.flag("--disable-userns");
    // The same ids on every worker; see SANDBOX_ID.
    a.pair("--uid", SANDBOX_ID.to_string());
    a.pair("--gid", SANDBOX_ID.to_string());
    // uname(2) does not tell the job which worker it is on.
    a.pair("--hostname", "gridcc");
    // SIGKILL for the whole job when bwrap (or its parent) dies: with the
    // PID namespace, the job's init dying takes every process in it along.
    a.flag("--die-with-parent");
    // setsid(): the job has no controlling terminal to inject input into
    // (TIOCSTI).
    a.flag("--new-session");
    // No capabilities inside, even those the namespace's owner would have.
    a.pair("--cap-drop", "ALL");
    // Nothing of the worker's environment; only what follows.
    a.flag("--clearenv");
    // The driver runs `as` by name: only the toolchain's own directories.
    let path = std::env::join_paths(&spec.toolchain.path).unwrap_or_default();
    a.triple("--setenv", "PATH", path);
    // gcc's temporary files (without -pipe) go to the private /tmp.
    a.triple("--setenv", "TMPDIR", super::TMP);
    // The job's tree at the client's paths, read-only, as the new root:
    // every file a job can name comes from `root` or a bind below, never
    // the worker's own `/`.
    // A kept sandbox binds it writable: the object's path changes with
    // each job, and only that file (the compile user's) can be written.
    a.triple(
        if spec.kept { "--bind" } else { "--ro-bind" },
        spec.root,
        "/",
    );
    // A minimal /dev (null, zero, full, random, urandom, tty) on a tmpfs.
    a.pair("--dev", "/dev");
    if spec.kept {
        // Nothing a job leaves in /dev can meet the next job.
        a.pair("--remount-ro", "/dev");
    }
    // The job's private, writable /tmp, a worker directory of this job.
    a.triple("--bind", spec.tmp, super::TMP);
    // The compiler's files, read-only, at their own (real) paths.
    for file in &spec.toolchain.files {
        a.triple("--ro-bind", file, file);
    }
    // Locale definitions and message catalogs, read-only, whole.
    for dir in &spec.toolchain.data_dirs {
        a.triple("--ro-bind", dir, dir);
    }
    // A text job's stage, at its own paths: read-only but for its output
    // directory.
    for bind in spec.extra {
        let op = if bind.writable { "--bind" } else { "--ro-bind" };
        a.triple(op, &bind.host, &bind.inside);
    }
    // The declared outputs are the only files the job can write, each bound
    // from its host file over the mount point at the client's path.
    for (host, inside) in spec.outputs {
        a.triple("--bind", host, inside);
    }
    // The client's working directory, so relative paths and the debug
    // info's DW_AT_comp_dir are the client's.
    a.pair("--chdir", spec.cwd);
    if spec.kept {
        // The launcher is the namespace's pid 1, not bwrap's reaper: no
        // process of the sandbox but the launcher outlives a job, and a
        // job cannot signal it (pid 1 ignores what it has no handler for).
        a.flag("--as-pid-1");
    }
    a.0
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, f: &str) {
        self.0.push(f.into());
    }
    fn pair(&mut self, f: &str, v: impl Into<OsString>) {
        self.0.push(f.into());
        self.0.push(v.into());
    }
    fn triple(&mut self, f: &str, a: impl Into<OsString>, b: impl Into<OsString>) {
        self.0.push(f.into());
        self.0.push(a.into());
        self.0.push(b.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hermetic::ToolchainFiles;
    use std::path::{Path, PathBuf};

    #[test]
    fn golden_argv() {
        let toolchain = ToolchainFiles {
            files: vec![
                "/usr/bin/gcc-12".into(),
                "/usr/bin/x86_64-linux-gnu-as".into(),
                "/usr/lib/gcc/x86_64-linux-gnu/12/cc1".into(),
                "/usr/lib/x86_64-linux-gnu/libc.so.6".into(),
            ],
            symlinks: vec![
                ("/lib64".into(), "usr/lib64".into()),
                ("/usr/bin/gcc".into(), "gcc-12".into()),
            ],
            path: vec!["/usr/bin".into(), "/opt/bin".into()],
            data_dirs: vec!["/usr/share/locale".into()],
        };
        let outputs: Vec<(PathBuf, PathBuf)> = vec![
            ("/w/out/0".into(), "/home/u/p/a.o".into()),
            ("/w/out/1".into(), "/home/u/p/a.d".into()),
        ];
        let spec = Spec {
            root: Path::new("/w/root"),
            toolchain: &toolchain,
            outputs: &outputs,
            tmp: Path::new("/w/tmp"),
            cwd: Path::new("/home/u/p"),
            extra: &[],
            kept: false,
        };
        let got: Vec<String> = bwrap_args(&spec)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let want = "--unshare-all --unshare-user --disable-userns --uid 65534 --gid 65534 \
            --hostname gridcc --die-with-parent --new-session --cap-drop ALL --clearenv \
            --setenv PATH /usr/bin:/opt/bin --setenv TMPDIR /.gridcc-tmp \
            --ro-bind /w/root / --dev /dev --bind /w/tmp /.gridcc-tmp \
            --ro-bind /usr/bin/gcc-12 /usr/bin/gcc-12 \
            --ro-bind /usr/bin/x86_64-linux-gnu-as /usr/bin/x86_64-linux-gnu-as \
            --ro-bind /usr/lib/gcc/x86_64-linux-gnu/12/cc1 /usr/lib/gcc/x86_64-linux-gnu/12/cc1 \
            --ro-bind /usr/lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc.so.6 \
            --ro-bind /usr/share/locale /usr/share/locale \
            --bind /w/out/0 /home/u/p/a.o --bind /w/out/1 /home/u/p/a.d \
            --chdir /home/u/p";
        assert_eq!(got, want.split_whitespace().collect::<Vec<_>>());
    }
}
