#!/usr/bin/env bash
# Builds sammix for a board and packs what the board needs into a tarball.
#
#   board/package.sh PROFILE [OUT_DIR]      (PROFILE: rpi5, rk3588, imx8mp, jetson-orin-nano)
#
# Cross-builds the aarch64 release with the profile compiled in
# (SAMMIX_BOARD), its CPU (-C target-cpu, -C target-feature from [cpu]), V4L2
# capture (feature v4l: the service reads the capture card) and, when the
# profile has [gpio], the Linux GPIO backend, then packs into OUT_DIR
# (default target/package):
#   sammix-PROFILE-VERSION.tar.gz
#     bin/sammix  models/sammix-us-tiny/  board.toml  README.md  install.sh
#     systemd/sammix.service  udev/99-sammix-capture.rules  udev/99-sammix-gpio.rules
#
# Needs the cross toolchain: scripts/install-aarch64-toolchain.sh (Debian's
# rustc-web with the arm64 standard library, aarch64-linux-gnu-gcc, the arm64
# kernel headers) and libclang-dev (the v4l crate's bindings).
# A cold build compiles tract for the board's CPU: about 10-20 minutes on 2
# cores. Each CPU builds in its own target folder (target/board/CPU, or
# $CARGO_TARGET_DIR/board/CPU): profiles for one CPU (rpi5 and rk3588 are both
# Cortex-A76) share the dependencies and rebuild only sammix itself.
set -euo pipefail

die() { echo "package.sh: $*" >&2; exit 1; }

profile="${1:-}"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -n "$profile" ] || die "usage: board/package.sh PROFILE [OUT_DIR] (profiles: $(cd "$root/board" && ls *.toml | sed 's/\.toml$//' | tr '\n' ' '))"
toml="$root/board/$profile.toml"
[ -f "$toml" ] || die "no board/$profile.toml"
out_dir="${2:-$root/target/package}"
bundle="$root/models/sammix-us-tiny"
[ -f "$bundle/sammix.toml" ] || die "no bundle at $bundle"

# The [cpu] values (build.rs validates the whole profile when it compiles).
value() {
    sed -n "/^\[cpu\]/,/^\[/s/^$1 *= *\"\([^\"]*\)\".*/\1/p" "$toml" | head -n 1
}
cpu="$(value target_cpu)"
features="$(value target_features)"
[ -n "$cpu" ] || die "board/$profile.toml: no cpu.target_cpu"
[ "$cpu" != native ] || die "board/$profile.toml builds for the machine that builds (target_cpu = \"native\"): not a board"

triple=aarch64-unknown-linux-gnu
rustc=/usr/bin/rustc
[ -x "$rustc" ] || die "$rustc missing: run scripts/install-aarch64-toolchain.sh"
command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc missing: run scripts/install-aarch64-toolchain.sh"

rustflags="-C target-cpu=$cpu"
[ -z "$features" ] || rustflags="$rustflags -C target-feature=$features"
target_dir="${CARGO_TARGET_DIR:-$root/target}/board/$cpu$(printf %s "$features" | tr -c "a-z0-9" _)"
cargo_features=v4l
grep -q '^\[gpio\]' "$toml" && cargo_features="$cargo_features,linux-gpio"
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || die "libclang missing (the v4l crate's bindings): apt-get install libclang-dev"

echo "== building $profile: $triple, $rustflags, features $cargo_features"
start=$(date +%s)
(
    cd "$root"
    # Target-only flags: build scripts and proc macros run here, on x86-64.
    SAMMIX_BOARD="$profile" \
    RUSTC="$rustc" \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="$rustflags" \
    CARGO_TARGET_DIR="$target_dir" \
        cargo build --release --locked --target "$triple" --bin sammix --features "$cargo_features"
)
echo "== built in $(( $(date +%s) - start )) s"
binary="$target_dir/$triple/release/sammix"
if command -v file >/dev/null; then
    file "$binary" | grep -q aarch64 || die "$binary is not an aarch64 binary"
fi

# Smoke test under qemu when it is there: the profile compiled in is this one.
if command -v qemu-aarch64 >/dev/null; then
    shown="$(QEMU_CPU=max qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib "$binary" info --board --json)"
    echo "$shown" | grep -q "\"name\": \"$profile\"" || die "the binary says it is not for $profile: $shown"
    echo "$shown" | tr -d ' \n' | grep -q '"features":\["v4l"' || die "the binary has no V4L2 capture: $shown"
    echo "== qemu: sammix info --board names $profile, features $cargo_features"
fi

version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
name="sammix-$profile-$version"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
pkg="$stage/$name"
mkdir -p "$pkg/bin" "$pkg/models" "$pkg/systemd" "$pkg/udev"
install -m 0755 "$binary" "$pkg/bin/sammix"
cp -r "$bundle" "$pkg/models/"
cp "$toml" "$pkg/board.toml"
cp "$root/board/README.md" "$pkg/README.md"
install -m 0755 "$root/board/install.sh" "$pkg/install.sh"
cp "$root/board/systemd/sammix.service" "$pkg/systemd/"
cp "$root/board/udev/"*.rules "$pkg/udev/"

mkdir -p "$out_dir"
tar -C "$stage" --owner=0 --group=0 -czf "$out_dir/$name.tar.gz" "$name"
echo "== $out_dir/$name.tar.gz ($(du -h "$out_dir/$name.tar.gz" | cut -f1))"
