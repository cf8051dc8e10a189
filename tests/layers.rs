//! The house's floors (src/lib.rs): each top-level module of the library imports only the floors
//! below its own, and no two source files import each other, directly or round a cycle. Read from
//! the sources themselves: every `crate::` and `super::` path, in `use` trees and in code.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top, as src/lib.rs lists them.
const FLOORS: [&str; 13] = [
    "util", "config", "data", "model", "train", "run", "eval", "analysis", "plot", "interop",
    "finish", "serve", "commands",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under src/.
fn all_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![src()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every .rs file of the library (not the binary: main.rs and cli/).
fn library_files() -> Vec<PathBuf> {
    all_files()
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(src()).unwrap();
            rel != Path::new("main.rs") && !rel.starts_with("cli")
        })
        .collect()
}

/// The code without comments, string literals and the `#[cfg(test)]` module at the end of a
/// file (enough for paths: no path hides in either; a test module's `super` is its own file).
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = String::new();
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut in_str = false;
        let mut prev = ' ';
        for ch in line.chars() {
            if ch == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(ch);
            }
            prev = ch;
        }
        out.push('\n');
    }
    out
}

/// The module folder of a file: `src/data/fetch.rs` -> `src/data`, `src/data/mod.rs` -> `src/data`
/// for `super` from fetch.rs; for `self`-relative lookups, mod.rs and lib.rs are their folder.
fn module_dir(file: &Path) -> PathBuf {
    let name = file.file_name().unwrap();
    if name == "mod.rs" || name == "lib.rs" {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    }
}

/// The file a path of segments starting in module folder `dir` lands in: descend while a segment
/// names a module (`seg.rs` or `seg/mod.rs`); the last module reached is the file.
fn resolve(mut dir: PathBuf, segments: &[String]) -> PathBuf {
    let mut file = if dir == src() {
        src().join("lib.rs")
    } else if dir.join("mod.rs").is_file() {
        dir.join("mod.rs")
    } else {
        dir.with_extension("rs")
    };
    for seg in segments {
        let as_file = dir.join(format!("{seg}.rs"));
        let as_dir = dir.join(seg).join("mod.rs");
        if as_file.is_file() {
            file = as_file;
            dir = dir.join(seg);
        } else if as_dir.is_file() {
            file = as_dir;
            dir = dir.join(seg);
        } else {
            break;
        }
    }
    file
}

/// The child modules a file declares (`mod name;`).
fn children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("pub ");
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_string())
        })
        .collect()
}

/// Every path written from `crate::`, `super::`, `self::` or a child module's name (as
/// `folder::load` in data/mod.rs), as (root, segments); `use` trees with braces are expanded.
fn paths(code: &str) -> Vec<(String, Vec<String>)> {
    let mut roots: Vec<String> = ["crate", "super", "self"].map(String::from).to_vec();
    roots.extend(children(code));
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0
            || !(bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_' || bytes[i - 1] == ':');
        let root = roots.iter().find(|r| {
            let pat: Vec<char> = format!("{r}::").chars().collect();
            bytes[i..].starts_with(&pat)
        });
        if let (Some(root), true) = (root, boundary) {
            let (tree, end) = use_tree(&bytes, i + root.len() + 2);
            for segs in tree {
                out.push((root.clone(), segs));
            }
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Parses `a::b::{c, d::e}` from `at`; returns the expanded segment lists and where it ended.
fn use_tree(s: &[char], mut at: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        let start = at;
        while at < s.len() && (s[at].is_alphanumeric() || s[at] == '_') {
            at += 1;
        }
        if at > start {
            prefix.push(s[start..at].iter().collect::<String>());
        }
        if s[at..].starts_with(&[':', ':']) {
            at += 2;
        }
        if at < s.len() && s[at] == '{' {
            {
                at += 1;
                let mut all = Vec::new();
                loop {
                    while at < s.len() && (s[at].is_whitespace() || s[at] == ',') {
                        at += 1;
                    }
                    if at >= s.len() || s[at] == '}' {
                        break;
                    }
                    let (sub, end) = use_tree(s, at);
                    for tail in sub {
                        let mut p = prefix.clone();
                        p.extend(tail.into_iter().filter(|t| t != "self"));
                        all.push(p);
                    }
                    at = end;
                    // Skip an `as name`.
                    while at < s.len() && !matches!(s[at], ',' | '}') {
                        at += 1;
                    }
                }
                return (all, at + 1);
            }
        }
        if at > start && s[at - 2..at] == [':', ':'] {
            continue;
        }
        return (vec![prefix], at);
    }
}

fn floor_of(file: &Path) -> usize {
    let rel = file.strip_prefix(src()).unwrap();
    let top = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    let top = top.trim_end_matches(".rs");
    FLOORS
        .iter()
        .position(|f| *f == top)
        .unwrap_or_else(|| panic!("{}: in no floor of {FLOORS:?}", file.display()))
}

/// file -> the files it imports (itself and lib.rs left out).
fn graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut g = BTreeMap::new();
    for file in library_files() {
        if file.ends_with("lib.rs") {
            continue;
        }
        let text = code(&std::fs::read_to_string(&file).unwrap());
        let mut deps = BTreeSet::new();
        for (root, segs) in paths(&text) {
            let (base, segs) = match root.as_str() {
                "crate" => (src(), segs),
                "super" => (module_dir(&file).parent().unwrap().to_path_buf(), segs),
                "self" => (module_dir(&file), segs),
                child => (module_dir(&file), [vec![child.to_string()], segs].concat()),
            };
            let target = resolve(base, &segs);
            if target != file && !target.ends_with("lib.rs") {
                deps.insert(target);
            }
        }
        g.insert(file, deps);
    }
    g
}

fn rel(p: &Path) -> String {
    p.strip_prefix(src()).unwrap().display().to_string()
}

#[test]
fn no_floor_imports_one_above_it() {
    let mut bad = Vec::new();
    for (file, deps) in graph() {
        for d in deps {
            if floor_of(&d) > floor_of(&file) {
                bad.push(format!("{} imports {}", rel(&file), rel(&d)));
            }
        }
    }
    assert!(bad.is_empty(), "imports pointing up:\n{}", bad.join("\n"));
}

#[test]
fn no_two_files_import_each_other_round_a_cycle() {
    let g = graph();
    // A file is in a cycle when it reaches itself.
    let mut cycles = BTreeSet::new();
    for start in g.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&PathBuf> = g[start].iter().collect();
        while let Some(f) = stack.pop() {
            if f == start {
                cycles.insert(rel(start));
                break;
            }
            if seen.insert(f) {
                stack.extend(g.get(f).into_iter().flatten());
            }
        }
    }
    assert!(cycles.is_empty(), "files in an import cycle: {cycles:?}");
}

#[test]
fn the_reader_sees_imports_as_written() {
    // The parser itself, on the forms the sources use.
    let p = paths(&code(
        "mod batch;\nuse super::{idx, write_dataset, fetch::Remote as R};\nlet x = crate::data::batch::ranges(1) + batch::ranges(2);",
    ));
    let segs: Vec<String> = p
        .iter()
        .map(|(r, s)| format!("{r}::{}", s.join("::")))
        .collect();
    assert_eq!(
        segs,
        [
            "super::idx",
            "super::write_dataset",
            "super::fetch::Remote",
            "crate::data::batch::ranges",
            "batch::ranges"
        ]
    );
    assert_eq!(
        resolve(src(), &["data".into(), "batch".into(), "ranges".into()]),
        src().join("data/batch.rs")
    );
}

#[test]
fn main_rs_is_the_edges_only() {
    // Signals, the panic hook, parse, dispatch, print, exit: the command logic is the library's
    // (crate::commands), the flags' conversion cli/'s.
    let text = std::fs::read_to_string(src().join("main.rs")).unwrap();
    let lines = text.lines().count();
    assert!(lines <= 150, "main.rs has {lines} lines (at most 150)");
    let code = code(&text);
    let mut reached = BTreeSet::new();
    for (i, _) in code.match_indices("vae_tch::") {
        let rest = &code[i + "vae_tch::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '{'))
            .unwrap_or(rest.len());
        reached.insert(rest[..end].trim_end_matches('{').to_string());
    }
    let other: Vec<&String> = reached.iter().filter(|m| *m != "commands").collect();
    assert!(
        other.is_empty(),
        "main.rs reaches into {other:?}: only cli and commands"
    );
    for (root, _) in paths(&code) {
        assert!(
            ["cli", "crate", "super", "self"].contains(&root.as_str()),
            "{root}"
        );
    }
}

#[test]
fn no_source_file_is_over_500_lines() {
    // One concern per file: a file past 500 lines holds several (split it by concern).
    let long: Vec<String> = all_files()
        .iter()
        .map(|f| (rel(f), std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > 500)
        .map(|(f, n)| format!("{f}: {n}"))
        .collect();
    assert!(long.is_empty(), "files over 500 lines: {long:?}");
}

#[test]
fn the_training_path_shares_no_state_through_refcells() {
    // The loop talks to its observer through `&mut self` (crate::train::Observer); the run's
    // state is the recorder's, not a closure's.
    for floor in ["train", "run"] {
        for f in all_files().iter().filter(|f| rel(f).starts_with(floor)) {
            let text = code(&std::fs::read_to_string(f).unwrap());
            assert!(!text.contains("RefCell"), "{} uses a RefCell", rel(f));
        }
    }
}

#[test]
fn the_cli_makes_requests_and_runs_nothing() {
    // cli/ holds clap types, value parsers and `request()`: it names the library's types
    // (requests, config enums, the split and checkpoint choices, the figure formats) and parses
    // a device, but trains, evaluates and writes nothing itself.
    let allowed = [
        "analysis", "commands", "config", "data", "plot", "run", "util",
    ];
    for f in all_files().iter().filter(|f| rel(f).starts_with("cli")) {
        let text = code(&std::fs::read_to_string(f).unwrap());
        for (i, _) in text.match_indices("vae_tch::") {
            let rest = &text[i + "vae_tch::".len()..];
            let floor: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            assert!(
                allowed.contains(&floor.as_str()),
                "{} reaches vae_tch::{floor}",
                rel(f)
            );
            if floor == "run" {
                assert!(
                    rest.starts_with("run::checkpoint::Pick"),
                    "{}: {rest:.40}",
                    rel(f)
                );
            }
        }
    }
}
