//! The house's shape, checked: crates depend downward only (each on the crates its layer may
//! use, read from the manifests), no module inside a crate imports another in a circle
//! (nested modules included), and no source file of `crates/` or `src/` passes 800 lines
//! (tests aside).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `coffre-*` crates a crate's manifest names under `[dependencies]`.
fn coffre_dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    text.lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| l.split(['.', '=', ' ']).next())
        .filter(|n| n.starts_with("coffre-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn crates_depend_downward_only() {
    // Protocols → engine → {cluster, data, meta, audit} → {crypto, types}; identity stands on
    // the metadata and the keyring, not on the engine.
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("coffre-types", &[][..]),
        ("coffre-crypto", &["coffre-types"][..]),
        ("coffre-audit", &["coffre-types"][..]),
        ("coffre-telemetry", &["coffre-types"][..]),
        ("coffre-data", &["coffre-types", "coffre-crypto"][..]),
        ("coffre-meta", &["coffre-types", "coffre-crypto"][..]),
        ("coffre-cluster", &["coffre-types", "coffre-data"][..]),
        ("coffre-iam", &["coffre-types", "coffre-crypto", "coffre-meta"][..]),
        (
            "coffre-engine",
            &[
                "coffre-types",
                "coffre-crypto",
                "coffre-data",
                "coffre-meta",
                "coffre-cluster",
                "coffre-audit",
            ][..],
        ),
        (
            "coffre-s3",
            &["coffre-types", "coffre-engine", "coffre-iam", "coffre-cluster"][..],
        ),
        (
            "coffre-admin",
            &["coffre-types", "coffre-engine", "coffre-iam", "coffre-cluster"][..],
        ),
    ]);
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let permitted = allowed
            .get(name.as_str())
            .unwrap_or_else(|| panic!("crate {name} has no place in the layering: add it here"));
        for dep in coffre_dependencies(&dir.join("Cargo.toml")) {
            assert!(
                permitted.contains(&dep.as_str()),
                "{name} depends on {dep}, which its layer may not use"
            );
        }
        seen.insert(name);
    }
    assert_eq!(seen.len(), allowed.len(), "crates: {seen:?}");
    assert!(!coffre_dependencies(&root().join("crates/coffre-iam/Cargo.toml")).contains("coffre-engine"));
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// A test file: `tests.rs`, anything under a `tests/` directory, or a test-only module file.
fn is_test(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "tests")
        || path
            .file_stem()
            .is_some_and(|s| s == "tests" || s.to_string_lossy().ends_with("_tests"))
}

/// The module path of a source file (`replica/snapshot` for `src/replica/snapshot.rs`, the
/// parent's path for a `mod.rs`, `` for `lib.rs`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("/")
}

/// The modules a file names through `crate::…`, `super::…` and `self::…` paths, resolved to
/// the longest module of the crate they start with.
fn imports(module: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // The modules `self` and `super` stand for, seen from this file (a `mod.rs` is its
    // directory's module).
    let own: Vec<&str> = module.split('/').filter(|p| !p.is_empty()).collect();
    let parent: Vec<&str> = own[..own.len().saturating_sub(1)].to_vec();
    let resolve = |base: &[&str], rest: &str| -> Vec<String> {
        // `a::b::{c, d::e}`: each alternative of a group.
        let (head, group) = match rest.find('{') {
            Some(i) => (&rest[..i], rest[i + 1..].split('}').next().unwrap_or("")),
            None => (rest, ""),
        };
        let alternatives: Vec<String> = if group.is_empty() {
            vec![head.to_string()]
        } else {
            group.split(',').map(|g| format!("{head}{}", g.trim())).collect()
        };
        alternatives
            .iter()
            .filter_map(|path| {
                let mut parts: Vec<String> = base.iter().map(|s| s.to_string()).collect();
                let mut best = None;
                for seg in path.split("::") {
                    let seg: String = seg.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if seg.is_empty() || seg == "self" {
                        break;
                    }
                    parts.push(seg);
                    let candidate = parts.join("/");
                    if modules.contains(&candidate) {
                        best = Some(candidate);
                    }
                }
                best
            })
            .collect()
    };
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", parent.clone()),
        ("self::", own.clone()),
    ] {
        for (i, _) in text.match_indices(prefix) {
            if prefix == "crate::" && text[..i].ends_with('$') {
                continue; // a macro's `$crate::`: the expansion's, not this file's
            }
            out.extend(resolve(&base, &text[i + prefix.len()..]));
        }
    }
    out.remove(module);
    // A module may use what its own submodules define: it owns them.
    out.retain(|m| !(module.is_empty() || m.starts_with(&format!("{module}/"))));
    out
}

#[test]
fn no_module_imports_another_in_a_circle() {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("src"))
        .collect();
    crates.push(root().join("src"));
    for src in crates {
        let files: Vec<PathBuf> = sources(&src).into_iter().filter(|f| !is_test(f)).collect();
        let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in &files {
            let m = module_of(&src, f);
            let text = std::fs::read_to_string(f).unwrap();
            graph.entry(m.clone()).or_default().extend(imports(&m, &text, &modules));
        }
        // Peel off modules whose imports are all peeled; what is left holds a circle.
        let mut left = graph.clone();
        while !left.is_empty() {
            let free: Vec<String> = left
                .iter()
                .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
                .map(|(m, _)| m.clone())
                .collect();
            assert!(
                !free.is_empty(),
                "{}: modules importing each other in a circle: {left:?}",
                src.display()
            );
            for m in free {
                left.remove(&m);
            }
        }
    }
}

#[test]
fn no_source_file_passes_800_lines() {
    let mut long = Vec::new();
    for dir in ["crates", "src"] {
        for f in sources(&root().join(dir)) {
            if is_test(&f) {
                continue;
            }
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            if lines > 800 {
                long.push(format!("{} ({lines} lines)", f.strip_prefix(root()).unwrap().display()));
            }
        }
    }
    assert!(long.is_empty(), "files over 800 lines: {long:#?}");
}
