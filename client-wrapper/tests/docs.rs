//! The documentation holds together: every relative link in the
//! repository's Markdown files (README.md, docs/, ARCHITECTURE.md,
//! docker/README.md, …) names a file that exists and, with a `#fragment`
//! into a Markdown file, one of its headings (as GitHub spells the anchor);
//! every file in docs/ is one click from README.md; and each command of the
//! README's Quickstart is an executable script in the repository. A moved
//! section or a renamed script then fails here, not in a reader's browser.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("client-wrapper/ sits in the repository root")
        .to_path_buf()
}

/// Every `.md` file of the repository, outside build output (`target/`) and
/// hidden directories.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    dirs.push(path);
                }
            } else if name.ends_with(".md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The text with every fenced code block blanked out (newlines kept, so byte
/// offsets and line numbers stay those of the file).
fn without_fences(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let run = |c: char| trimmed.chars().take_while(|&x| x == c).count();
        let opens = ['`', '~']
            .into_iter()
            .map(|c| (c, run(c)))
            .find(|&(_, n)| n >= 3);
        let blank = match (fence, opens) {
            (None, Some(open)) => {
                fence = Some(open);
                true
            }
            (Some((c, n)), Some((c2, n2)))
                if c == c2 && n2 >= n && trimmed[n2..].trim().is_empty() =>
            {
                fence = None;
                true
            }
            (Some(_), _) => true,
            (None, None) => false,
        };
        if blank {
            out.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        } else {
            out.push_str(line);
        }
    }
    out
}

/// The text with every inline code span blanked out (same byte offsets). A
/// span ends at the next backtick run of the same length within its
/// paragraph; an unmatched run is literal text.
fn without_code_spans(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let run_at = |i: usize| bytes[i..].iter().take_while(|&&b| b == b'`').count();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let paragraph_end = text[i..].find("\n\n").map_or(bytes.len(), |p| i + p);
        let mut j = i + n;
        let mut close = None;
        while j < paragraph_end {
            if bytes[j] == b'`' {
                let m = run_at(j);
                if m == n {
                    close = Some(j);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match close {
            Some(j) => {
                for b in &mut out[i..j + n] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
                i = j + n;
            }
            None => i += n,
        }
    }
    // Only ASCII bytes were replaced, and only whole spans (whose
    // multi-byte characters are replaced byte by byte), so this is UTF-8.
    String::from_utf8(out).expect("blanking whole spans keeps UTF-8")
}

/// A link's destination and the 1-based line it is on.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// Inline links and images (`[text](dest "title")`, `<dest>` form too) and
/// reference definitions (`[label]: dest`) outside code.
fn links(text: &str) -> Vec<Link> {
    let prose = without_code_spans(&without_fences(text));
    let line_of = |offset: usize| prose[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    for (at, _) in prose.match_indices("](") {
        let rest = &prose[at + 2..];
        let target = if let Some(angled) = rest.strip_prefix('<') {
            angled.split('>').next().unwrap_or_default().to_owned()
        } else {
            let mut depth = 0usize;
            let end = rest
                .char_indices()
                .find(|&(_, c)| match c {
                    '(' => {
                        depth += 1;
                        false
                    }
                    ')' if depth == 0 => true,
                    ')' => {
                        depth -= 1;
                        false
                    }
                    c => c.is_whitespace(),
                })
                .map_or(rest.len(), |(i, _)| i);
            rest[..end].to_owned()
        };
        found.push(Link {
            line: line_of(at),
            target,
        });
    }
    let mut offset = 0;
    for line in prose.split_inclusive('\n') {
        let trimmed = line.trim_start_matches(' ');
        if line.len() - trimmed.len() <= 3 && trimmed.starts_with('[') {
            if let Some(close) = trimmed.find("]:") {
                let dest = trimmed[close + 2..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default();
                let dest = dest.trim_start_matches('<').trim_end_matches('>');
                found.push(Link {
                    line: line_of(offset),
                    target: dest.to_owned(),
                });
            }
        }
        offset += line.len();
    }
    found.sort_by_key(|l| l.line);
    found
}

/// GitHub's anchor for a heading's text: inline markup dropped, lower case,
/// every character but letters, digits, `-` and `_` removed, spaces turned
/// into hyphens (github-slugger's rule).
fn slug(heading: &str) -> String {
    // `[text](dest)` reads as `text`.
    let mut plain = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        match rest[open..].find("](").map(|c| open + c) {
            Some(close) if !rest[open + 1..close].contains('[') => {
                let after = &rest[close + 2..];
                let end = after.find(')').map_or(after.len(), |e| e + 1);
                plain.push_str(&rest[..open]);
                plain.push_str(&rest[open + 1..close]);
                rest = &after[end..];
            }
            _ => {
                plain.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    plain.push_str(rest);
    plain
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a Markdown text: level and text, in order, outside code.
fn headings(text: &str) -> Vec<(usize, String)> {
    without_fences(text)
        .lines()
        .filter_map(|line| {
            let trimmed = line.trim_start_matches(' ');
            if line.len() - trimmed.len() > 3 {
                return None;
            }
            let level = trimmed.chars().take_while(|&c| c == '#').count();
            let rest = &trimmed[level..];
            if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
                return None;
            }
            // An optional closing sequence of `#`s after a space.
            let rest = rest.trim();
            let closed = rest.trim_end_matches('#');
            let text = if closed.len() < rest.len() && (closed.is_empty() || closed.ends_with(' '))
            {
                closed.trim_end()
            } else {
                rest
            };
            Some((level, text.to_owned()))
        })
        .collect()
}

/// Every anchor a link may name in a Markdown text: heading slugs (a
/// repeated one gets `-1`, `-2`, … as on GitHub), and `id`/`name`
/// attributes of inline HTML.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for (_, heading) in headings(text) {
        let base = slug(&heading);
        let count = seen.entry(base.clone()).or_default();
        out.insert(if *count == 0 {
            base.clone()
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    let html = without_fences(text);
    for attr in ["id=\"", "name=\""] {
        for (at, _) in html.match_indices(attr) {
            let value = &html[at + attr.len()..];
            out.insert(value[..value.find('"').unwrap_or(0)].to_owned());
        }
    }
    out
}

/// `%20` and friends, as a browser decodes a link before following it.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `http:`, `https:`, `mailto:`, …: not this repository's to check.
fn is_external(target: &str) -> bool {
    target.split_once(':').is_some_and(|(scheme, _)| {
        scheme.len() >= 2
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

/// Lexically resolves `rel` against `base`; `None` when it climbs above the
/// repository root.
fn resolve(root: &Path, base: &Path, rel: &str) -> Option<PathBuf> {
    let start = if rel.starts_with('/') {
        root.to_path_buf()
    } else {
        base.to_path_buf()
    };
    let mut parts: Vec<Component> = start.components().collect();
    let floor = root.components().count();
    for part in Path::new(rel.trim_start_matches('/')).components() {
        match part {
            Component::ParentDir => {
                if parts.len() <= floor {
                    return None;
                }
                parts.pop();
            }
            Component::CurDir => {}
            other => parts.push(other),
        }
    }
    Some(parts.iter().collect())
}

/// What is wrong with one link from `file`, if anything.
fn check_link(
    root: &Path,
    file: &Path,
    target: &str,
    anchor_cache: &mut HashMap<PathBuf, BTreeSet<String>>,
) -> Option<String> {
    if target.is_empty() {
        return Some("empty link".to_owned());
    }
    if is_external(target) {
        return None;
    }
    let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
    let path = percent_decode(path);
    let dest = if path.is_empty() {
        file.to_path_buf()
    } else {
        match resolve(root, file.parent().expect("a file has a directory"), &path) {
            Some(dest) => dest,
            None => return Some("leaves the repository".to_owned()),
        }
    };
    if !dest.exists() {
        return Some(format!(
            "no such file: {}",
            dest.strip_prefix(root).unwrap_or(&dest).display()
        ));
    }
    if fragment.is_empty() || dest.extension().is_none_or(|e| e != "md") {
        return None;
    }
    let fragment = percent_decode(fragment);
    let known = anchor_cache.entry(dest.clone()).or_insert_with(|| {
        anchors(
            &std::fs::read_to_string(&dest).unwrap_or_else(|e| panic!("{}: {e}", dest.display())),
        )
    });
    if known.contains(&fragment) {
        None
    } else {
        Some(format!(
            "no heading with anchor #{fragment} in {}",
            dest.strip_prefix(root).unwrap_or(&dest).display()
        ))
    }
}

#[test]
fn every_relative_link_resolves() {
    let root = repo_root();
    let files = markdown_files(&root);
    for must in [
        "README.md",
        "ARCHITECTURE.md",
        "docker/README.md",
        "docs/operating.md",
    ] {
        assert!(
            files.contains(&root.join(must)),
            "{must} not found among {files:?}"
        );
    }
    let mut anchor_cache = HashMap::new();
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for link in links(&text) {
            checked += 1;
            if let Some(problem) = check_link(&root, file, &link.target, &mut anchor_cache) {
                let name = file.strip_prefix(&root).unwrap_or(file).display();
                broken.push(format!("{name}:{}: ({}) {problem}", link.line, link.target));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} broken link(s) of {checked}:\n{}",
        broken.len(),
        broken.join("\n")
    );
    // The README alone links every docs/ file; far fewer means the
    // parser stopped seeing links, which would make this test pass vacuously.
    assert!(
        checked >= 20,
        "only {checked} links found in {} files",
        files.len()
    );
}

#[test]
fn readme_links_every_docs_file() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let linked: BTreeSet<PathBuf> = links(&readme)
        .iter()
        .filter(|l| !is_external(&l.target))
        .filter_map(|l| {
            resolve(
                &root,
                &root,
                &percent_decode(l.target.split('#').next().unwrap_or_default()),
            )
        })
        .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    assert!(!docs.is_empty(), "docs/ holds no .md file");
    let missing: Vec<_> = docs
        .iter()
        .filter(|d| !linked.contains(*d))
        .map(|d| d.strip_prefix(&root).unwrap_or(d).display().to_string())
        .collect();
    assert!(missing.is_empty(), "README.md does not link {missing:?}");
}

/// The commands of the first code block under README's `## Quickstart`.
fn quickstart_commands(readme: &str) -> Vec<String> {
    let mut in_section = false;
    let mut in_block = false;
    let mut commands = Vec::new();
    for line in readme.lines() {
        let trimmed = line.trim();
        if !in_block && trimmed.starts_with('#') {
            let level = trimmed.chars().take_while(|&c| c == '#').count();
            if in_section && level <= 2 {
                break;
            }
            in_section = level == 2 && trimmed[level..].trim() == "Quickstart";
            continue;
        }
        if !in_section {
            continue;
        }
        if trimmed.starts_with("```") {
            if in_block {
                break;
            }
            in_block = true;
            continue;
        }
        if in_block {
            let command = trimmed
                .split('#')
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .next();
            commands.extend(command.map(str::to_owned));
        }
    }
    commands
}

#[test]
fn quickstart_commands_are_executable_scripts() {
    use std::os::unix::fs::PermissionsExt;
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let commands = quickstart_commands(&readme);
    assert!(
        !commands.is_empty(),
        "README.md has no command under `## Quickstart`"
    );
    for command in commands {
        let path = root.join(&command);
        let meta = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("Quickstart command {command}: {e}"));
        assert!(meta.is_file(), "Quickstart command {command} is not a file");
        assert!(
            meta.permissions().mode() & 0o111 != 0,
            "Quickstart command {command} is not executable"
        );
    }
}

#[test]
fn slugs_follow_github() {
    for (heading, anchor) in [
        ("Quickstart", "quickstart"),
        ("Securing the grid", "securing-the-grid"),
        (
            "Results: heterogeneous-small, CPython 3.11, local backend",
            "results-heterogeneous-small-cpython-311-local-backend",
        ),
        (
            "Wire payloads: zstd level and chunk size",
            "wire-payloads-zstd-level-and-chunk-size",
        ),
        ("`gridcc status`", "gridcc-status"),
        (
            "Known limitations (honest list)",
            "known-limitations-honest-list",
        ),
        ("snake_case and C++ / Rust", "snake_case-and-c--rust"),
        ("See [the docs](docs/x.md) now", "see-the-docs-now"),
        ("1 × 1.0 — Ünïcode", "1--10--ünïcode"),
    ] {
        assert_eq!(slug(heading), anchor, "{heading}");
    }
}

#[test]
fn anchors_number_repeats_and_skip_code() {
    let text = "# Top\n\n## Results\n\n```\n## Not a heading\n```\n\n## Results\n\n### Closed ###\n<a id=\"manual\"></a>\n";
    let got: Vec<String> = anchors(text).into_iter().collect();
    assert_eq!(got, ["closed", "manual", "results", "results-1", "top"]);
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "See [a](docs/a.md#x) and ![img](pic.png \"title\").\n\
                `[not](code.md)` and ``[nor](this.md)``\n\
                ```sh\n[in](fence.md)\n```\n\
                [spaced](<with space.md>) [paren](f(1).md)\n\
                [ref]: ../up.md\n";
    let got: Vec<(usize, String)> = links(text)
        .into_iter()
        .map(|l| (l.line, l.target))
        .collect();
    assert_eq!(
        got,
        [
            (1, "docs/a.md#x".to_owned()),
            (1, "pic.png".to_owned()),
            (6, "with space.md".to_owned()),
            (6, "f(1).md".to_owned()),
            (7, "../up.md".to_owned()),
        ]
    );
}

#[test]
fn quickstart_commands_are_read_from_the_first_block() {
    let readme = "# x\n\n## Quickstart\n\ntext\n\n```sh\nscripts/a.sh     # one\n\nscripts/b.sh --x # two\n```\n\n```sh\nnot/this\n```\n\n## Next\n";
    assert_eq!(
        quickstart_commands(readme),
        ["scripts/a.sh", "scripts/b.sh"]
    );
}
