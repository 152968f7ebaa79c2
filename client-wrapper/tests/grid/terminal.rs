//! A worker's stderr reaches the terminal without control sequences but
//! colour (issue 25): gcc prints a `#pragma message` byte for byte, so a
//! source can make a worker's compiler write any escape sequence.

use super::*;

#[test]
fn remote_stderr_keeps_colour_and_loses_every_other_terminal_control() {
    let grid = Grid::start(1, 1);
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // Sets the window title, clears the screen, moves the cursor up. A
    // `_Pragma` (not `#pragma`, which -fdirectives-only preprocessing
    // consumes) reaches the worker's compiler, which prints it raw.
    write(
        dir.path(),
        "esc.c",
        r#"_Pragma("message \"A\\x1b]0;pwned\\x07 B\\x1b[2J C\\x1b[1A D\"")
int x;
"#,
    );
    let args = [
        "gcc",
        "-fdiagnostics-color=always",
        "-c",
        "esc.c",
        "-o",
        "esc.o",
    ];
    let local = Command::new("gcc")
        .current_dir(dir.path())
        .args(&args[1..])
        .output()
        .unwrap();
    let local = String::from_utf8_lossy(&local.stderr).into_owned();
    assert!(
        local.contains("\x1b]0;pwned"),
        "gcc itself passes it on: {local:?}"
    );
    let out = run_gridcc(dir.path(), &grid.url(), cache.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(grid.status()["jobs_remote"], 1, "compiled remotely");
    let remote = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(remote.contains("#pragma message: "), "{remote:?}");
    assert!(remote.contains("A B C D"), "{remote:?}");
    for gone in ["\x1b]", "\x1b[2J", "\x1b[1A", "\x07"] {
        assert!(!remote.contains(gone), "{gone:?} in {remote:?}");
    }
    // gcc's own colours stay.
    assert!(remote.contains("\x1b[01;36m\x1b[K"), "{remote:?}");
    let sgr_free = |s: &str| s.replace("\x1b[K", "").matches("\x1b[").count();
    assert!(sgr_free(&remote) > 0 && sgr_free(&remote) <= sgr_free(&local));
}
