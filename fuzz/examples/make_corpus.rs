//! Writes the seed corpus: `cargo run --example make_corpus` in `fuzz/`
//! (re)creates `corpus/<target>/seed-*` from real command lines, real
//! encoded messages, real compressed payloads, a real cache entry holding
//! an object gcc compiled, and real directives-only text. Inputs the
//! fuzzers found are kept beside the seeds under other names.

use std::path::Path;
use std::process::Command;

use gridcc_client::cache::{encode, Entry, KeyInputs};
use gridcc_proto::payload::{compress, digest};
use gridcc_proto::v1::{self, compile_request, compile_response, worker_message};
use prost::Message;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let work = tempfile::tempdir().expect("temp dir");
    let built = Built::make(work.path());
    let seeds: [(&str, Seeds); 6] = [
        ("args", args()),
        ("wire", wire()),
        ("payload", payload(&built)),
        ("cache", cache(&built)),
        ("worker_input", worker_input(&built)),
        ("terminal", terminal(&built)),
    ];
    for (target, files) in seeds {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        for old in std::fs::read_dir(&dir).expect("read corpus") {
            let old = old.expect("entry").path();
            if old
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            {
                std::fs::remove_file(old).expect("remove old seed");
            }
        }
        for (name, bytes) in &files {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
        }
        println!("{target}: {} seeds", files.len());
    }
}

/// Named inputs of one target.
type Seeds = Vec<(String, Vec<u8>)>;

/// What gcc made of a small two-file project: an object, the warning it
/// printed, and the directives-only text of the source.
struct Built {
    source: Vec<u8>,
    object: Vec<u8>,
    stderr: Vec<u8>,
    directives_only: Vec<u8>,
}

const HEADER: &str =
    "#ifndef PT_H\n#define PT_H\nstruct pt { int x, y; };\n#define TWICE(a) ((a) + (a))\n#endif\n";
const SOURCE: &str = "#include <stddef.h>\n#include \"pt.h\"\n#include \"pt.h\"\n\nint f(struct pt *p) {\n  int unused;\n  return TWICE(p->x) + (int)sizeof(size_t);\n}\n";

impl Built {
    fn make(dir: &Path) -> Self {
        std::fs::write(dir.join("pt.h"), HEADER).expect("header");
        std::fs::write(dir.join("a.c"), SOURCE).expect("source");
        let gcc = |args: &[&str]| {
            let out = Command::new("gcc")
                .args(args)
                .current_dir(dir)
                .env("LC_ALL", "C")
                .output()
                .expect("gcc (the corpus is made from real gcc output)");
            assert!(out.status.success(), "gcc {args:?} failed");
            out
        };
        let compiled = gcc(&["-O2", "-Wall", "-c", "a.c", "-o", "a.o"]);
        let pre = gcc(&["-E", "-fdirectives-only", "a.c"]);
        Built {
            source: SOURCE.as_bytes().to_vec(),
            object: std::fs::read(dir.join("a.o")).expect("object"),
            stderr: compiled.stderr,
            directives_only: pre.stdout,
        }
    }
}

fn lines(line: &str) -> Vec<u8> {
    line.split_whitespace()
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// Command lines (without the compiler) from real builds: calc's Makefile
/// (`make -n`), Lua's, CPython's, a CMake project, Linux's Kbuild and an
/// autotools/libtool one; then the ones that stay local, and response
/// files.
fn args() -> Seeds {
    let real = [
        ("calc", "-O2 -g -Wall -MD -MP -c util.c -o util.o"),
        ("calc-link", "-O2 -g -Wall -o calc util.o strbuf.o main.o"),
        ("lua", "-std=gnu99 -O2 -Wall -Wextra -DLUA_COMPAT_5_3 -DLUA_USE_LINUX -c -o lapi.o lapi.c"),
        (
            "cpython",
            "-c -fno-strict-overflow -Wsign-compare -DNDEBUG -g -O3 -Wall -std=c11 -Werror=implicit-function-declaration -fvisibility=hidden -I./Include/internal -I. -I./Include -DPy_BUILD_CORE -o Objects/abstract.o Objects/abstract.c",
        ),
        (
            "cmake",
            "-DFOO -I/src/include -O3 -DNDEBUG -std=gnu11 -MD -MT CMakeFiles/x.dir/src/a.c.o -MF CMakeFiles/x.dir/src/a.c.o.d -o CMakeFiles/x.dir/src/a.c.o -c /src/src/a.c",
        ),
        (
            "kbuild",
            "-Wp,-MMD,fs/.file.o.d -nostdinc -I./arch/x86/include -I./include -include ./include/linux/kconfig.h -D__KERNEL__ -fno-strict-aliasing -fno-common -mno-red-zone -mcmodel=kernel -O2 -fno-stack-protector -DKBUILD_MODNAME=\"file\" -c -o fs/file.o fs/file.c",
        ),
        (
            "libtool",
            "-DHAVE_CONFIG_H -I. -I.. -g -O2 -MT foo.lo -MD -MP -MF .deps/foo.Tpo -c foo.c -fPIC -DPIC -o .libs/foo.o",
        ),
        ("cxx", "-x c++ -std=c++17 -O2 -g -fno-exceptions -Iinc -c src/b.cpp -o obj/b.o"),
        ("debug-prefix", "-O2 -g -fdebug-prefix-map=/home/me/p=. -c src/a.c -o obj/a.o"),
        ("preprocessed", "-O2 -c x.i -o x.o"),
        ("preprocess-only", "-E -dM -Iinc a.c"),
        ("assembly", "-S -O2 a.c"),
        ("deps-stdout", "-MD -MF /dev/stdout -c a.c"),
        ("pch", "-include pch.h -c a.c"),
        ("native", "-march=native -O3 -c a.c"),
        ("profile", "-fprofile-use -O2 -c a.c"),
        ("macro-debug", "-g3 -c a.c"),
        ("recorded", "-g -C -c a.c"),
        ("query", "-print-file-name=libgcc.a"),
    ];
    let mut out: Seeds = real
        .iter()
        .map(|(name, line)| ((*name).to_owned(), lines(line)))
        .collect();
    out.push((
        "response-file".to_owned(),
        b"@rsp0:-O2 -c 'my file.c' -o \"obj/my file.o\" @rsp1\n@rsp1:-DX=it\\'s -Iinc\n@rsp0"
            .to_vec(),
    ));
    out.push((
        "response-recursive".to_owned(),
        b"@rsp2:-O2 @rsp2\n-c\na.c\n@rsp2".to_vec(),
    ));
    out.push((
        "environment".to_owned(),
        b"$GCC_COMPARE_DEBUG=1\n-c\na.c".to_vec(),
    ));
    out.push(("empty-output".to_owned(), b"-c\na.c\n-o\n".to_vec()));
    out
}

/// Each message type, from what the peers really send (the first byte
/// picks the type; see `src/wire.rs`).
fn wire() -> Seeds {
    fn tagged(kind: u8, m: &impl Message) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend(m.encode_to_vec());
        out
    }
    let lease = gridcc_proto::lease::sign(&[7; 32], 41, 3, 1_767_225_600_000);
    let header = v1::CompileHeader {
        lease: Some(lease.clone()),
        toolchain: "5e1f".repeat(16),
        args: ["-O2", "-g", "-Wall", "-fPIC"].map(str::to_owned).to_vec(),
        language: "c".into(),
        input_name: String::new(),
        input_size: 18_342,
        compressed_size: 4_107,
        input_digest: digest(b"x"),
        env: vec![v1::EnvVar {
            name: "LANG".into(),
            value: "C.UTF-8".into(),
        }],
        source_path: "src/a.c".into(),
        cwd: "/home/me/project".into(),
        offer_input: true,
        ..Default::default()
    };
    let hello = v1::WorkerHello {
        advertise_addr: "127.0.0.1:7701".into(),
        slots: 4,
        capacity: 3.5,
        toolchains: vec![v1::Toolchain {
            identity: "5e1f".repeat(16),
            names: vec!["gcc".into(), "cc".into(), "gcc-12".into()],
            version: "gcc (Debian 12.2.0-14) 12.2.0".into(),
        }],
        hostname: "worker-1".into(),
        version: "0.1.0".into(),
        cached_keys: vec!["c4".repeat(32)],
        takes_input_offers: true,
        reports_leases: true,
        ..Default::default()
    };
    let worker = |m| v1::WorkerMessage { msg: Some(m) };
    vec![
        (
            "hello".into(),
            tagged(0, &worker(worker_message::Msg::Hello(hello))),
        ),
        (
            "load".into(),
            tagged(
                0,
                &worker(worker_message::Msg::Load(v1::LoadUpdate {
                    running: 3,
                    queued: 1,
                    leases: vec![41, 42, 43, 44],
                })),
            ),
        ),
        (
            "started".into(),
            tagged(
                0,
                &worker(worker_message::Msg::Started(v1::JobStarted {
                    lease_id: 41,
                })),
            ),
        ),
        (
            "finished".into(),
            tagged(
                0,
                &worker(worker_message::Msg::Finished(v1::JobFinished {
                    lease_id: 41,
                    ran: true,
                    exit_code: 0,
                    compile_ms: 812,
                    queue_ms: 3,
                    input_bytes: 18_342,
                    cache_hit: false,
                    cache_key: "c4".repeat(32),
                    cancelled: false,
                })),
            ),
        ),
        (
            "going-away".into(),
            tagged(0, &worker(worker_message::Msg::GoingAway(v1::GoingAway {}))),
        ),
        (
            "welcome".into(),
            tagged(
                1,
                &v1::CoordinatorMessage {
                    msg: Some(v1::coordinator_message::Msg::Welcome(v1::Welcome {
                        worker_id: 3,
                        lease_key: vec![7; 32],
                        keepalive_interval_ms: 2000,
                        client_tokens: Vec::new(),
                    })),
                },
            ),
        ),
        (
            "assign".into(),
            tagged(
                2,
                &v1::AssignRequest {
                    toolchain: "5e1f".repeat(16),
                    source_bytes: 18_342,
                    cost_hint: 0.8,
                    exclude_workers: vec![2],
                    failed_lease: 40,
                    failed_lease_mac: vec![0x4d; 32],
                    client: "dev-host".into(),
                    source_key: "ab".repeat(32),
                    client_idle_cpus: 1.5,
                    cache_key: "c4".repeat(32),
                    source_name: String::new(),
                    ..Default::default()
                },
            ),
        ),
        (
            "placement".into(),
            tagged(
                3,
                &v1::AssignReply {
                    outcome: Some(v1::assign_reply::Outcome::Placement(v1::Placement {
                        worker_id: 3,
                        worker_addr: "127.0.0.1:7701".into(),
                        lease: Some(lease),
                        takes_input_offer: true,
                        ..Default::default()
                    })),
                },
            ),
        ),
        (
            "compile-locally".into(),
            tagged(
                3,
                &v1::AssignReply {
                    outcome: Some(v1::assign_reply::Outcome::Local(v1::CompileLocally {
                        reason: "no worker has toolchain 5e1f".into(),
                    })),
                },
            ),
        ),
        (
            "release".into(),
            tagged(
                4,
                &v1::ReleaseRequest {
                    lease_id: 41,
                    mac: vec![0x4d; 32],
                },
            ),
        ),
        (
            "released".into(),
            tagged(5, &v1::ReleaseReply { released: true }),
        ),
        (
            "status".into(),
            tagged(
                7,
                &v1::StatusReply {
                    workers: vec![v1::WorkerStatus {
                        id: 3,
                        address: "127.0.0.1:7701".into(),
                        slots: 4,
                        running: 2,
                        queued: 0,
                        capacity: 3.4,
                        jobs_done: 120,
                        jobs_failed: 1,
                        toolchains: vec!["5e1f".repeat(16)],
                        connected_ms: 60_000,
                        hostname: "worker-1".into(),
                        draining: false,
                        ..Default::default()
                    }],
                    policy: "weighted".into(),
                    jobs_assigned: 121,
                    jobs_done: 120,
                    jobs_failed: 1,
                    local_answers: 4,
                    uptime_ms: 61_000,
                    version: "0.1.0".into(),
                    shared_hits: 17,
                    cache_placements: 19,
                },
            ),
        ),
        (
            "compile-header".into(),
            tagged(
                8,
                &v1::CompileRequest {
                    msg: Some(compile_request::Msg::Header(header)),
                },
            ),
        ),
        (
            "compile-chunk".into(),
            tagged(
                8,
                &v1::CompileRequest {
                    msg: Some(compile_request::Msg::Chunk(
                        compress(SOURCE.as_bytes()).unwrap(),
                    )),
                },
            ),
        ),
        (
            "compile-result".into(),
            tagged(
                9,
                &v1::CompileResponse {
                    msg: Some(compile_response::Msg::Result(v1::CompileResult {
                        exit_code: 0,
                        stdout: Vec::new(),
                        stderr: b"a.c:6:7: warning: unused variable 'unused'\n".to_vec(),
                        object_size: 1_432,
                        compressed_size: 611,
                        object_digest: digest(b"o"),
                        compile_ms: 812,
                        queue_ms: 3,
                        cache_hit: false,
                    })),
                },
            ),
        ),
    ]
}

/// Real compressed payloads, whole (stream mode) and for damage (see
/// `src/payload.rs`).
fn payload(built: &Built) -> Seeds {
    let stream = |data: &[u8], chunk: u8| {
        let mut out = vec![0u8];
        out.extend((data.len() as u64).to_le_bytes());
        out.push(chunk);
        out.extend(compress(data).unwrap());
        out
    };
    let damage = |how: u8, param: u64, data: &[u8]| {
        let mut out = vec![1u8, 63, how];
        out.extend(param.to_le_bytes());
        out.extend_from_slice(data);
        out
    };
    vec![
        ("stream-source".into(), stream(&built.directives_only, 255)),
        ("stream-object".into(), stream(&built.object, 99)),
        ("stream-empty".into(), stream(b"", 0)),
        ("damage-none".into(), damage(0, 0, &built.source)),
        ("damage-truncate".into(), damage(1, 40, &built.source)),
        ("damage-swap".into(), damage(2, 0x1_0002, &built.object)),
        ("damage-flip".into(), damage(3, 17, &built.source)),
        (
            "damage-extend".into(),
            damage(4, 0x28b5_2ffd, &built.source),
        ),
        ("damage-size".into(), damage(5, 9, &built.source)),
    ]
}

/// A real cache entry (gcc's object and its warning) in each mode (see
/// `src/cache.rs`).
fn cache(built: &Built) -> Seeds {
    let key = KeyInputs {
        compiler: "fuzz",
        mode: "source",
        language: "c",
        args: &[],
        source: "a.c",
        cwd: None,
        env: &[],
        text: b"int x;\n",
    }
    .key();
    let entry = Entry {
        exit_code: 0,
        object: built.object.clone(),
        stdout: Vec::new(),
        stderr: built.stderr.clone(),
        compile_ms: 812,
    };
    let bytes = encode(&key, &entry).expect("encode");
    let with_mode = |mode: u8, body: &[u8]| {
        let mut out = vec![mode];
        out.extend_from_slice(body);
        out
    };
    let mut flip = vec![2u8];
    flip.extend(100u64.to_le_bytes());
    flip.push(0x10);
    flip.extend_from_slice(&built.stderr);
    flip.extend_from_slice(&built.object[..built.object.len().min(600)]);
    vec![
        ("entry".into(), with_mode(0, &bytes)),
        (
            "entry-body".into(),
            with_mode(1, &bytes[..bytes.len() - 32]),
        ),
        ("flip".into(), flip),
    ]
}

/// Compile headers as clients send them, with real directives-only text.
fn worker_input(built: &Built) -> Seeds {
    let job = |source_path: &str, cwd: &str, args: &[&str], text: &[u8]| {
        let header = v1::CompileHeader {
            lease: None,
            toolchain: "5e1f".repeat(16),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            language: "c".into(),
            input_name: if source_path.is_empty() {
                "job.i".into()
            } else {
                String::new()
            },
            input_size: text.len() as u64,
            compressed_size: 0,
            input_digest: digest(text),
            env: Vec::new(),
            source_path: source_path.into(),
            cwd: cwd.into(),
            offer_input: false,
            ..Default::default()
        }
        .encode_to_vec();
        let mut out = (header.len() as u16).to_le_bytes().to_vec();
        out.extend(header);
        out.extend_from_slice(text);
        out
    };
    let text = &built.directives_only;
    let nested = b"# 0 \"a.c\"\n# 1 \"../inc/x.h\" 1\nint x;\n# 1 \"/usr/include/s.h\" 1 3 4\nint s;\n# 2 \"../inc/x.h\" 2\n# 2 \"a.c\" 2\nint main(void) { return x; }\n";
    let deps = b"/j/o.o: /j/in/a.c \\\n /j/in/my\\ file.h /etc/passwd\n";
    vec![
        (
            "source-mode".into(),
            job("a.c", "/home/me/p", &["-O2", "-g"], text),
        ),
        (
            "relative-up".into(),
            job("../../lib/b.c", "/a/b/c", &["-O2"], nested),
        ),
        (
            "prefix-maps".into(),
            job(
                "/abs/src/a.c",
                "/",
                &["-g", "-fdebug-prefix-map=/abs=.", "-ffile-prefix-map=/x=/y"],
                text,
            ),
        ),
        (
            "escape".into(),
            job("a/../../../etc/passwd", "/w", &["-O2"], nested),
        ),
        ("macro-debug".into(), job("a.c", "/p", &["-g3"], text)),
        (
            "pragma".into(),
            job(
                "a.c",
                "/p",
                &[],
                b"#pragma GCC dependency \"/etc/passwd\"\nint a;\n",
            ),
        ),
        (
            "preprocessed".into(),
            job("", "", &["-O2", "--param", "x=1"], deps),
        ),
    ]
}

/// A worker's stderr: gcc's own, in colour (as -fdiagnostics-color=always
/// writes it), and with the sequences a hostile one could send.
fn terminal(built: &Built) -> Seeds {
    let colour = b"\x1b[01m\x1b[Ka.c:6:7:\x1b[m\x1b[K \x1b[01;35m\x1b[Kwarning: \x1b[m\x1b[Kunused variable\n";
    vec![
        ("gcc".into(), built.stderr.clone()),
        ("colour".into(), colour.to_vec()),
        (
            "hostile".into(),
            b"a\x1b]0;title\x07b\x1b[2J\x1b[1A\x1bPq\x1b\\\x1b[6n\x1bc\r\x08\x7f".to_vec(),
        ),
        (
            "c1".into(),
            "\u{9b}2J \u{9d}0;t\u{9c} é—".as_bytes().to_vec(),
        ),
        ("cut".into(), b"x\x1b[12;3".to_vec()),
    ]
}
