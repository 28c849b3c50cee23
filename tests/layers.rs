//! The house rules, checked: each folder of `src/` is a layer, a layer uses only the layers
//! below it, no two modules use each other (directly or round a circle), and the conformance
//! runner's crate builds none of the server's dependencies.
//!
//! The check reads every `crate::…` path in the code of `src/**/*.rs` (and `super::…`,
//! resolved), so a new import that points up or closes a circle fails here with the module that
//! made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first: each may use those before it, never one after it. `types` (the
/// generated models, from the client crate) is beneath them all.
const LAYERS: &[&str] = &[
    "types",
    "telemetry",
    "domain",
    "decode",
    "store",
    "sync",
    "http",
    "front",
    "cli",
];

/// The server dependencies the runner crate must not build.
const SERVER_ONLY: &[&str] = &[
    "dropshot",
    "rusqlite",
    "tokio-postgres",
    "deadpool-postgres",
    "aws-lc-rs",
    "bifrost-providers",
];

/// Every `.rs` file under `dir`, with its module path (`http::auth`, `store` for `store/mod.rs`).
fn modules(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        if path.is_dir() {
            let mut next = prefix.to_vec();
            next.push(name);
            modules(&path, &next, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = prefix.to_vec();
            if !matches!(name.as_str(), "mod" | "lib" | "main") {
                module.push(name);
            }
            out.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The path segments after each `crate::` or `super::` in the code of `text` (comments and doc
/// links left out), `super` resolved from `module`.
fn uses(module: &[String], is_dir_module: bool, text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let mut found = Vec::new();
    for (start, _) in text
        .match_indices("crate::")
        .chain(text.match_indices("super::"))
    {
        let before = text[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut base: Vec<String> = if text[start..].starts_with("crate::") {
            Vec::new()
        } else {
            // `super` of `a::b` is `a`; of a `mod.rs` module `a::b`, it is `a` as well.
            let mut parent = module.to_vec();
            if !is_dir_module || !parent.is_empty() {
                parent.pop();
            }
            parent
        };
        let mut rest = &text[start + text[start..].find("::").unwrap() + 2..];
        while let Some(super_rest) = rest.strip_prefix("super::") {
            base.pop();
            rest = super_rest;
        }
        let segments = rest
            .split("::")
            .map(|s| {
                s.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|s| !s.is_empty() && s.chars().next().unwrap().is_lowercase());
        base.extend(segments);
        found.push(base);
    }
    found
}

fn layer(path: &[String]) -> Option<usize> {
    LAYERS
        .iter()
        .position(|l| path.first().is_some_and(|p| p == l))
}

fn source() -> BTreeMap<Vec<String>, String> {
    let mut all = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &[],
        &mut all,
    );
    all.retain(|module, _| !module.is_empty());
    all
}

/// The module each use lands in: the longest known module path it starts with.
fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let all = source();
    let known: BTreeSet<Vec<String>> = all.keys().cloned().collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    all.iter()
        .map(|(module, text)| {
            let is_dir_module = root.join(module.join("/")).is_dir();
            let targets = uses(module, is_dir_module, text)
                .into_iter()
                .filter_map(|path| {
                    (1..=path.len())
                        .rev()
                        .map(|n| path[..n].to_vec())
                        .find(|p| known.contains(p) || p.first().is_some_and(|f| f == "types"))
                })
                .filter(|target| target != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

#[test]
fn no_module_uses_a_layer_above_its_own() {
    let mut upward = Vec::new();
    for (module, targets) in graph() {
        let Some(own) = layer(&module) else {
            panic!(
                "src/{} is in no layer: put it in one of {LAYERS:?}",
                module.join("/")
            );
        };
        for target in targets {
            if layer(&target).is_some_and(|l| l > own) {
                upward.push(format!("{} uses {}", module.join("::"), target.join("::")));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports pointing up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn no_modules_use_each_other_round_a_circle() {
    let graph = graph();
    // A module and its own parent (a `mod.rs` naming its children) are one room.
    let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
    let mut circles = Vec::new();
    for start in graph.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, trail)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if related(&at, next) {
                    continue;
                }
                if next == start {
                    circles.push(
                        trail
                            .iter()
                            .chain([start])
                            .map(|m| m.join("::"))
                            .collect::<Vec<_>>()
                            .join(" -> "),
                    );
                } else if seen.insert(next.clone()) {
                    let mut longer = trail.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_runner_crate_builds_no_server_dependency() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-p",
            "bifrost-providers-conformance",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let tree = String::from_utf8(output.stdout).unwrap();
    let names: BTreeSet<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let server: Vec<&&str> = SERVER_ONLY.iter().filter(|d| names.contains(**d)).collect();
    assert!(server.is_empty(), "the runner builds {server:?}:\n{tree}");
    assert!(names.contains("bifrost-providers-client"), "{tree}");
}
