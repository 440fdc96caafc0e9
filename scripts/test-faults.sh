#!/usr/bin/env bash
# Output faults against a real file system: `sammix run --out` on a small
# tmpfs that fills up, that is read-only from the start, that turns
# read-only mid-run, and that fills up and then frees room. Each case states
# its outcome: the stream goes on (frames not written are counted) or stops
# at once with a message naming the folder; results.jsonl is never left
# with a torn line (every line parses as JSON, the file ends with a newline).
# A file system that turns read-only mid-run (ext4's errors=remount-ro) is
# not staged: Linux refuses to remount a tmpfs read-only while a file is open
# for writing; its EROFS takes the same path as ENOSPC here.
#
# Needs root (mount); CI runs it as root. Prints one line per case.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/test-faults.sh mounts a tmpfs: run it as root" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sammix/target}"
cargo build --quiet
sammix="$CARGO_TARGET_DIR/debug/sammix"
python=$(command -v python3)
mnt=$(mktemp -d)
cleanup() { umount "$mnt" 2>/dev/null || true; rmdir "$mnt" 2>/dev/null || true; }
trap cleanup EXIT
fresh() { umount "$mnt" 2>/dev/null || true; mount -t tmpfs -o "size=$1" tmpfs "$mnt"; }

# whole_lines FILE: every line is JSON and the file ends with a newline; prints the count.
whole_lines() {
    "$python" - "$1" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
assert data == b"" or data.endswith(b"\n"), "torn last line"
lines = data.decode().splitlines()
for i, l in enumerate(lines):
    json.loads(l)
print(len(lines))
PY
}
field() { "$python" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
ok() { printf '  ok   %s\n' "$*"; }

# 1. Disk full: goes on, counted, whole lines.
fresh 96k
"$sammix" run --out "$mnt" --overlay none --frames 100 --json >"$mnt.json" 2>"$mnt.err"
lines=$(whole_lines "$mnt/results.jsonl")
lost=$(field "$mnt.json" output_not_written)
frames=$(field "$mnt.json" frames)
[ "$frames" = 100 ] && [ "$lost" -gt 0 ] && [ $((lines + lost)) -ge 100 ]
grep -q "No space left on device" "$mnt.err"
[ "$(grep -c "the stream goes on" "$mnt.err")" = 1 ]
ok "disk full (96 KB tmpfs): all $frames frames processed, $lines whole lines, $lost frames not written (counted), one warning"

# 2. Read-only from the start: stops before streaming, naming the folder.
fresh 1m
mount -o remount,ro "$mnt"
set +e
"$sammix" run --out "$mnt/out" --frames 5 --quiet >/dev/null 2>"$mnt.err"
rc=$?
set -e
[ $rc = 2 ] && grep -q "$mnt/out" "$mnt.err" && grep -q "Read-only file system" "$mnt.err"
ok "read-only output folder: exit 2 before any frame: $(head -1 "$mnt.err")"

# 3. Full, then room again: writing resumes.
fresh 8m
head -c 8388608 /dev/zero >"$mnt/filler" 2>/dev/null || true
"$sammix" run --out "$mnt" --overlay none --realtime --json >"$mnt.json" 2>"$mnt.err" &
pid=$!
sleep 1.5
rm -f "$mnt/filler"
wait $pid
lines=$(whole_lines "$mnt/results.jsonl")
lost=$(field "$mnt.json" output_not_written)
frames=$(field "$mnt.json" frames)
[ "$lost" -gt 0 ] && [ "$lines" -gt 0 ] && [ $((lines + lost)) -ge "$frames" ]
grep -q "output written again" "$mnt.err"
ok "full, then room again: $frames frames, $lost not written while full, $lines whole lines after; writing resumed"
rm -f "$mnt.json" "$mnt.err"
