//! The fuzz targets' checks on every input worth keeping, as an ordinary test: the
//! fixtures (under each content type and encoding a first byte picks, as `run.sh` seeds
//! the fuzzer) and the regression inputs under `regressions/`. `make soak` fuzzes.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Every fixture body, prefixed with each claim byte `run.sh` seeds with.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../fixtures");
    let mut seeds = Vec::new();
    for family in [
        "systeme-automation",
        "systeme-settings",
        "generic",
        "captures",
    ] {
        for body in files(&fixtures.join(family)) {
            if body.extension().is_some_and(|e| e == "headers") {
                continue;
            }
            for claim in [0u8, 1, 2, 4] {
                let mut input = vec![claim];
                input.extend(std::fs::read(&body).unwrap());
                seeds.push((format!("{} ({claim})", body.display()), input));
            }
        }
    }
    assert!(seeds.len() >= 100, "the fixtures are there");
    seeds
}

fn regressions(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(target);
    files(&dir)
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect()
}

#[test]
fn decode_holds_for_the_fixtures_and_every_kept_input() {
    let inputs: Vec<_> = seeds().into_iter().chain(regressions("decode")).collect();
    for (name, input) in &inputs {
        let outcome = std::panic::catch_unwind(|| hookscope_fuzz::decode_case(input));
        assert!(outcome.is_ok(), "decode fails on {name}");
    }
}

#[test]
fn export_import_holds_for_the_fixtures_and_every_kept_input() {
    let mut stores = hookscope_fuzz::ExportImport::default();
    for (name, input) in seeds().into_iter().chain(regressions("export_import")) {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stores.case(&input)));
        assert!(outcome.is_ok(), "export and import fail on {name}");
    }
}
