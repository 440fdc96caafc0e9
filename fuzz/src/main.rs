//! One AFL++ harness for every target: `SAMMIX_FUZZ_TARGET=NAME` picks it
//! (the names of `targets::TARGETS`, the folders of `fuzz/corpus/`).

#[path = "../targets.rs"]
mod targets;

fn main() {
    let name = std::env::var("SAMMIX_FUZZ_TARGET").unwrap_or_default();
    let Some(&(_, target)) = targets::TARGETS.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "SAMMIX_FUZZ_TARGET={name:?}: expected one of {}",
            names.join(", ")
        );
        std::process::exit(2);
    };
    // No panic hook of afl's: the graph target contains tract's panics
    // itself (catch_unwind); a panic that escapes a target still aborts.
    afl::fuzz_nohook!(|data: &[u8]| target(data));
}
