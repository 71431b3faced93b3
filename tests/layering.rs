//! The modules form layers, with no import circle: the table in `src/lib.rs` ("Where
//! things are") lists them from the bottom up, and each module may use only those
//! listed above it. This test reads the sources and holds the code to that table, so
//! the map a newcomer reads stays the map of the code.

use std::path::Path;

/// The module names of the table in `src/lib.rs`, in their order: each row starts with
/// the name, linked (`` [`peers`] ``) or, for a module behind a cargo feature, plain
/// (`` `editor` ``), since a link to it would break the docs built without it.
fn layers(lib_rs: &str) -> Vec<String> {
    lib_rs
        .lines()
        .filter_map(|line| line.strip_prefix("//! | "))
        .filter_map(|rest| rest.strip_prefix("[`").or_else(|| rest.strip_prefix('`')))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Every `crate::name` a source file mentions (in code or in doc links).
fn mentioned_modules(source: &str) -> Vec<String> {
    let mut found: Vec<String> = source
        .match_indices("crate::")
        .map(|(at, prefix)| {
            source[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect();
    found.sort();
    found.dedup();
    found
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib_rs = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let order = layers(&lib_rs);
    assert!(
        order.len() > 10,
        "the table in src/lib.rs was not found: {order:?}"
    );
    let mut violations = Vec::new();
    for (position, module) in order.iter().enumerate() {
        let path = src.join(format!("{module}.rs"));
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is in the table but unreadable: {e}", path.display()));
        for used in mentioned_modules(&source) {
            match order.iter().position(|m| *m == used) {
                Some(at) if at < position => {}
                Some(at) if at == position => {}
                Some(_) => violations.push(format!("{module} uses {used}, which is above it")),
                None => violations.push(format!("{module} uses {used}, which is not in the table")),
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn every_source_file_is_in_the_table() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib_rs = std::fs::read_to_string(src.join("lib.rs")).expect("read src/lib.rs");
    let order = layers(&lib_rs);
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&src).expect("list src") {
        let name = entry.expect("a directory entry").file_name();
        let name = name.to_string_lossy();
        if let Some(module) = name.strip_suffix(".rs")
            && !["lib", "main"].contains(&module)
            && !order.iter().any(|m| m == module)
        {
            missing.push(module.to_owned());
        }
    }
    assert!(missing.is_empty(), "not in src/lib.rs's table: {missing:?}");
}
