#!/usr/bin/env bash
# Installs what cross-building and testing for aarch64 Linux needs on Debian 12:
# Debian's rustc-web (with the arm64 standard library), the aarch64 GCC linker
# qemu-user to run the binaries and Debian's clippy to lint them. Idempotent: does nothing when all is there.
# Needs root (or sudo).
set -euo pipefail
need=()
[ -x /usr/bin/rustc ] || need+=(rustc-web)
dpkg -s libstd-rust-web-dev:arm64 >/dev/null 2>&1 || need+=(libstd-rust-web-dev:arm64)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
# clippy for the aarch64 target: rustup's has no aarch64 standard library.
[ -x /usr/bin/cargo-clippy ] || need+=(rust-web-clippy)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
