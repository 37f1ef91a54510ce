//! The fuzz targets' seed corpus and every past crash input, replayed
//! through the same entry points (`sqfuse::fuzz`) the fuzzers call, so a
//! regression fails `cargo test` without a fuzzing engine.

use std::path::Path;
use std::time::{Duration, Instant};

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn fuzz_corpus_and_past_crashes_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for target in sqfuse::fuzz::TARGETS {
        let seeds = inputs(&root.join("corpus").join(target));
        assert!(
            !seeds.is_empty(),
            "fuzz/corpus/{target} has no seeds (tools/fuzz-seeds.py writes them)"
        );
        let crashes = inputs(&root.join("regressions").join(target));
        for input in seeds.iter().chain(&crashes) {
            let data = std::fs::read(input).unwrap();
            let t = Instant::now();
            assert!(sqfuse::fuzz::run(target, &data));
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "{} took {:?}",
                input.display(),
                t.elapsed()
            );
            total += 1;
        }
    }
    assert!(total >= 80, "only {total} inputs replayed");
}
