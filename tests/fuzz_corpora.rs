//! Every fuzz target (`fuzz/targets.rs`) on every file of its seed corpus
//! (`fuzz/corpus/TARGET/`) and of its regressions (`fuzz/regressions/TARGET/`:
//! each input that once crashed a target, kept when the bug was fixed). A
//! target passes an input when it returns; a panic fails the test, naming
//! the file. The fuzzing itself: `scripts/fuzz.sh` (AFL++).

use std::path::Path;

#[allow(dead_code)]
#[path = "../fuzz/targets.rs"]
mod targets;

#[test]
fn every_seed_and_every_past_crash_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seen = 0;
    for (name, target) in targets::TARGETS {
        let mut files = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let r = std::panic::catch_unwind(|| target(&data));
                assert!(r.is_ok(), "{name}: {} panicked", path.display());
                files += 1;
            }
        }
        assert!(files > 0, "{name}: no seed in fuzz/corpus/{name}");
        seen += files;
    }
    assert!(seen >= targets::TARGETS.len());
}
