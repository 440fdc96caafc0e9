#!/usr/bin/env bash
# Coverage-guided fuzzing of sammix's parsers with AFL++ on the stable
# toolchain (the `afl` crate and `cargo afl`; Debian's afl++ is not needed).
#
#   scripts/fuzz.sh [--record] [SECONDS_PER_TARGET] [TARGET...]
#
# Targets: fuzz/targets.rs (default: all). Each runs SECONDS_PER_TARGET
# (default 60) from fuzz/corpus/TARGET, resuming its own queue from earlier
# runs (~/.cache/sammix/fuzz/TARGET), one core. An input that crashes or
# hangs a target is copied to fuzz/regressions/TARGET/ (replayed by
# tests/fuzz_corpora.rs) and the script fails naming it. --record appends
# each run's executions to fuzz/executions.tsv (the table in
# docs/reliability.md sums it); CI runs a short slice without it.
set -euo pipefail
cd "$(dirname "$0")/.."
record=0
if [ "${1:-}" = "--record" ]; then record=1; shift; fi
secs=${1:-60}
shift || true
all=$(sed -n 's/^    ("\([a-z0-9_]*\)", .*/\1/p' fuzz/targets.rs)
targets=${*:-$all}

command -v cargo-afl >/dev/null || cargo install --locked cargo-afl --version 0.18.2
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/sammix/target-fuzz}"
# cargo-afl builds AFL++ once per rustc version (~/.local/share/afl.rs):
# after a toolchain update, build it again, then the harness.
if ! (cd fuzz && cargo afl build --release --quiet); then
    cargo afl config --build --force
    (cd fuzz && cargo afl build --release --quiet)
fi
bin="$CARGO_TARGET_DIR/release/sammix-fuzz"
out_root="${FUZZ_OUT:-$HOME/.cache/sammix/fuzz}"
mkdir -p "$out_root"

export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_AUTORESUME=1
export AFL_NO_AFFINITY=1
failed=()
printf '%-10s %8s %12s %10s %8s %6s\n' target seconds executions exec/s crashes hangs
for t in $targets; do
    out="$out_root/$t"
    # AFL's execs_done counts on across resumed runs: record this run's share.
    before=$(sed -n 's/^execs_done *: *//p' "$out/default/fuzzer_stats" 2>/dev/null || true)
    before=${before:-0}
    # Inputs that crashed or hung an earlier build: replayed once with this
    # one (outside AFL the harness reads one input from stdin); those that
    # pass now were fixed and leave the queue's crash list.
    for f in "$out/default/crashes"/id* "$out/default/hangs"/id*; do
        [ -e "$f" ] || continue
        if SAMMIX_FUZZ_TARGET=$t timeout 10 "$bin" <"$f" >/dev/null 2>&1; then rm -f "$f"; fi
    done
    # Resuming a long run's queue: AFL first replays and calibrates every
    # input in it (over 20 minutes for 4,000 graphs on a loaded core); past
    # 500 inputs, skip the calibration and fuzz at once.
    queued=$(ls "$out/default/queue" 2>/dev/null | grep -c '^id' || true)
    # Likewise its comparison-logging stage (-c0, which cargo-afl always
    # passes): on a resumed queue of 3,600 PNGs it ran inputs through the
    # cmplog build for 53 minutes at ~40 executions a second (600-900 a
    # second fuzzing); past 500 inputs only new ones get it.
    if [ "${queued:-0}" -gt 500 ]; then
        export AFL_NO_STARTUP_CALIBRATION=1 AFL_CMPLOG_ONLY_NEW=1
    else
        unset AFL_NO_STARTUP_CALIBRATION AFL_CMPLOG_ONLY_NEW
    fi
    # The graph target loads ONNX through tract: slower, and a hostile graph
    # may try to allocate; 1 GB and 2 s per input are bugs worth reporting.
    # -V counts from the end of the dry run, which replays the whole resumed
    # queue (minutes for thousands of graphs): the outer limit leaves room.
    SAMMIX_FUZZ_TARGET=$t timeout $((secs + 600)) cargo afl fuzz -V "$secs" -m 1024 -t 2000 \
        -i "fuzz/corpus/$t" -o "$out" "$bin" >"$out.log" 2>&1 || {
        echo "$t: afl-fuzz failed, see $out.log" >&2
        tail -n 20 "$out.log" >&2
        failed+=("$t")
        continue
    }
    stats="$out/default/fuzzer_stats"
    val() { sed -n "s/^$1 *: *//p" "$stats"; }
    execs=$(( $(val execs_done) - before )); rate=$(val execs_per_sec)
    crashes=$(ls "$out/default/crashes" 2>/dev/null | grep -c '^id' || true)
    hangs=$(ls "$out/default/hangs" 2>/dev/null | grep -c '^id' || true)
    printf '%-10s %8s %12s %10s %8s %6s\n' "$t" "$secs" "$execs" "$rate" "$crashes" "$hangs"
    if [ "$record" = 1 ]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$t" "$secs" "$execs" "$crashes" "$hangs" \
            "$(uname -m)" >>fuzz/executions.tsv
    fi
    for kind in crashes hangs; do
        for f in "$out/default/$kind"/id*; do
            [ -e "$f" ] || continue
            mkdir -p "fuzz/regressions/$t"
            dest="fuzz/regressions/$t/$kind-$(sha256sum "$f" | cut -c1-16)"
            cp "$f" "$dest"
            echo "$t: $kind input saved as $dest (replay: cargo test --test fuzz_corpora)" >&2
            failed+=("$t:$kind")
        done
    done
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzzing found problems: ${failed[*]}" >&2
    exit 1
fi
