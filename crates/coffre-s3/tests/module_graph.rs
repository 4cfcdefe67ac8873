//! The crate's modules import each other without a circle: `server` on top, the handlers
//! below it, the helpers below them. A new `crate::` import that closes a circle fails here.

use std::collections::{BTreeMap, BTreeSet};

/// `module → modules it names through `crate::…``, from the sources.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("lib.rs") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut used = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group[..group.find('}').unwrap()].split(',').collect(),
                None => vec![rest],
            };
            for n in names {
                let n: String = n
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // `crate::S3Error` is `error::S3Error` re-exported.
                let module = if n == "S3Error" { "error".to_string() } else { n };
                if !module.is_empty() && module != name && module.chars().next().is_some_and(|c| c.is_lowercase()) {
                    used.insert(module);
                }
            }
        }
        graph.insert(name, used);
    }
    graph
}

#[test]
fn modules_import_downward_only() {
    let graph = imports();
    assert!(graph.len() >= 10, "modules found: {:?}", graph.keys());
    // Peel off modules that import nothing left; whatever remains holds a circle.
    let mut left = graph.clone();
    let mut layers: Vec<Vec<String>> = Vec::new();
    while !left.is_empty() {
        let free: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(m, _)| m.clone())
            .collect();
        assert!(!free.is_empty(), "modules importing each other in a circle: {left:?}");
        for m in &free {
            left.remove(m);
        }
        layers.push(free);
    }
    // The picture of the crate, bottom up (shown with --nocapture).
    for (i, layer) in layers.iter().enumerate() {
        println!("layer {i}: {}", layer.join(" "));
    }
    let layer_of = |m: &str| layers.iter().position(|l| l.iter().any(|x| x == m)).unwrap();
    assert_eq!(layer_of("server"), layers.len() - 1, "server.rs is the top");
    for handler in ["bucket", "object", "multipart", "list"] {
        assert!(layer_of(handler) > layer_of("context") && layer_of(handler) > layer_of("http"));
        assert!(
            !graph["router"].contains(handler),
            "the router names operations, it does not call handlers"
        );
    }
}
