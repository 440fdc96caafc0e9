#!/usr/bin/env bash
# Bundle signatures against the minisign tool (Debian's `minisign`), both
# ways, with password-protected keys:
#   1. a key made by `sammix bundle keygen`, a bundle signed by `minisign -S`,
#      verified by `sammix bundle verify`;
#   2. a key made by `minisign -G`, a bundle signed by `sammix bundle sign`,
#      verified by `minisign -V`;
#   3. the manifest changed after signing: both refuse it.
# The Rust tests (tests/bundle_signatures.rs) cover the tampering cases with
# a fixture signed by the tool; this script checks the tool as installed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v minisign >/dev/null || { echo "minisign is not installed (apt-get install minisign)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sammix/target}"
cargo build --quiet
sammix="$CARGO_TARGET_DIR/debug/sammix"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r models/sammix-us-tiny "$tmp/bundle"
b="$tmp/bundle"
pw="not-a-real-password"
ok() { printf '  ok   %s\n' "$*"; }

echo "minisign $(minisign -v | awk '{print $2}'), $("$sammix" --version)"

# 1. sammix key, minisign signature, sammix verifies.
SAMMIX_SIGNING_PASSWORD=$pw "$sammix" bundle keygen "$tmp/ours" >/dev/null
printf '%s\n' "$pw" | minisign -S -s "$tmp/ours.key" -m "$b/sammix.toml" -t "signed by the minisign tool" >/dev/null 2>&1
"$sammix" bundle verify --bundle "$b" --trusted-key "$tmp/ours.pub" | grep -q "verified: signed by trusted key"
ok "sammix verifies a signature made by minisign -S with a sammix key (password-protected)"

# 2. minisign key, sammix signature, minisign verifies.
printf '%s\n%s\n' "$pw" "$pw" | minisign -G -p "$tmp/tool.pub" -s "$tmp/tool.key" >/dev/null 2>&1
SAMMIX_SIGNING_PASSWORD=$pw "$sammix" bundle sign --bundle "$b" --secret-key "$tmp/tool.key" >/dev/null
minisign -Vm "$b/sammix.toml" -p "$tmp/tool.pub" | grep -q "Signature and comment signature verified"
ok "minisign -V verifies a signature made by sammix bundle sign with a minisign -G key (password-protected)"
"$sammix" bundle verify --bundle "$b" --trusted-key "$tmp/tool.pub" >/dev/null
ok "sammix verifies it too"

# 3. Tampered: both refuse.
sed -i 's/presence_threshold = 0.5/presence_threshold = 0.1/' "$b/sammix.toml"
if minisign -Vm "$b/sammix.toml" -p "$tmp/tool.pub" -q 2>/dev/null; then
    echo "minisign accepted a tampered manifest" >&2; exit 1
fi
ok "minisign -V refuses the manifest changed after signing"
if out=$("$sammix" bundle verify --bundle "$b" --trusted-key "$tmp/tool.pub" 2>&1); then
    echo "sammix accepted a tampered manifest" >&2; exit 1
fi
grep -q "does not match sammix.toml" <<<"$out"
ok "sammix refuses it: ${out#error: }"
