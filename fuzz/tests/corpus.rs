//! Replays every input kept in `corpus/<target>/` (seeds and the inputs
//! the fuzzers found) through its harness: the fuzz targets' regression
//! test, which runs on stable Rust without libFuzzer.

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_harness() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in gridcc_fuzz::TARGETS {
        let dir = corpus.join(target);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{target}: empty corpus");
        for input in &inputs {
            let data = std::fs::read(input).expect("corpus input");
            let outcome = std::panic::catch_unwind(|| gridcc_fuzz::run(target, &data));
            assert!(outcome.is_ok(), "{target}: {} fails", input.display());
        }
        println!("{target}: {} inputs replayed", inputs.len());
    }
}
