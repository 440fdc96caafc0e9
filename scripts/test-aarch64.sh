#!/usr/bin/env bash
# The kernel tests on every level, and the native decoder's unit tests:
# builds them for aarch64 with Debian's rustc
# (scripts/install-aarch64-toolchain.sh installs it), runs them under
# qemu as a CPU with dot product and i8mm (QEMU_CPU=max) and as a Cortex-A53
# (NEON only), and checks from the output which levels ran and which were
# skipped; then runs the x86-64 kernel tests with SAMMIX_KERNELS=scalar.
# Timings under qemu mean nothing; correctness does.
#
# Environment: RUSTC_AARCH64 (default /usr/bin/rustc), AARCH64_TARGET_DIR
# (default target/aarch64, apart from the x86 builds' locks), PROPTEST_CASES
# (default 24 under qemu: the tests are unoptimized and emulated).
set -euo pipefail
cd "$(dirname "$0")/.."

rustc_arm=${RUSTC_AARCH64:-/usr/bin/rustc}
target=aarch64-unknown-linux-gnu
target_dir=${AARCH64_TARGET_DIR:-target/aarch64}
logs=$(mktemp -d)
for tool in "$rustc_arm" aarch64-linux-gnu-gcc qemu-aarch64; do
    command -v "$tool" >/dev/null || {
        echo "missing $tool: run scripts/install-aarch64-toolchain.sh" >&2
        exit 1
    }
done
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# LD_LIBRARY_PATH: with `-L /usr/aarch64-linux-gnu` alone, the cross loader
# (libc6-arm64-cross) picks up the multiarch libc6:arm64 that
# libstd-rust-web-dev:arm64 pulls into /lib/aarch64-linux-gnu, a different
# glibc build; the mismatch hangs the first pthread_create (every test
# thread) in an endless loop inside glibc. Keep loader and libc from one
# package.
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib"
export PROPTEST_CASES=${PROPTEST_CASES:-24}

arm_test() {
    RUSTC="$rustc_arm" nice cargo test --target "$target" --target-dir "$target_dir" \
        --lib kernels "$@"
}

# expect LOG PATTERN...: every pattern must occur in LOG.
expect() {
    local log=$1
    shift
    for pattern in "$@"; do
        if ! grep -q -- "$pattern" "$log"; then
            echo "FAIL: '$pattern' not in $log" >&2
            exit 1
        fi
    done
}

# refuse LOG PATTERN: PATTERN must not occur in LOG.
refuse() {
    if grep -q -- "$2" "$1"; then
        echo "FAIL: '$2' in $1" >&2
        grep -- "$2" "$1" >&2
        exit 1
    fi
}

echo "== build ($target, $($rustc_arm --version))"
arm_test --no-run

ops=(softmax softmax_interleaved exp_columns add depthwise layer_norm erf_gelu resize gemm_f32 gemm_f32_strided gemm_i8 conv_transpose_2x2 quantize)

echo "== qemu-aarch64, QEMU_CPU=max (NEON, dot product, i8mm)"
QEMU_CPU=max arm_test -- --nocapture 2>&1 | tee "$logs/max.log" | grep -E '^(ran|skipped|test result)'
expect "$logs/max.log" "test result: ok"
for op in "${ops[@]}"; do
    for level in scalar neon neon-dot neon-i8mm; do
        expect "$logs/max.log" "ran: $op on $level "
    done
done
refuse "$logs/max.log" "skipped:"

echo "== qemu-aarch64, QEMU_CPU=cortex-a53 (NEON only)"
QEMU_CPU=cortex-a53 arm_test -- --nocapture 2>&1 | tee "$logs/a53.log" | grep -E '^(ran|skipped|test result)'
expect "$logs/a53.log" "test result: ok" \
    "skipped: level neon-dot not available on this CPU" \
    "skipped: level neon-i8mm not available on this CPU"
for op in "${ops[@]}"; do
    expect "$logs/a53.log" "ran: $op on neon "
done
refuse "$logs/a53.log" "ran: .* on neon-dot "
refuse "$logs/a53.log" "ran: .* on neon-i8mm "

# The native decoder's unit tests on each CPU: its int8 and f32 layers, the
# attention on the GEMM and the ONNX weight lookup run on the NEON levels.
for cpu in max cortex-a53; do
    echo "== qemu-aarch64, QEMU_CPU=$cpu: decoder unit tests"
    QEMU_CPU=$cpu RUSTC="$rustc_arm" nice cargo test --target "$target" --target-dir "$target_dir" \
        --lib decoder 2>&1 | tee "$logs/decoder-$cpu.log" | grep -E '^test result'
    expect "$logs/decoder-$cpu.log" "test result: ok"
done

echo "== clippy for $target"
if [ -x /usr/bin/cargo-clippy ] && /usr/bin/clippy-driver --version >/dev/null 2>&1; then
    # Debian's clippy (rust-web-clippy) matches Debian's rustc; rustup's
    # clippy has no aarch64 standard library.
    RUSTC="$rustc_arm" nice /usr/bin/cargo-clippy clippy --target "$target" \
        --target-dir "$target_dir" --lib --tests -- -D warnings
else
    echo "skipped: clippy for $target (apt-get install rust-web-clippy)"
fi

echo "== x86-64, SAMMIX_KERNELS=scalar"
SAMMIX_KERNELS=scalar cargo test --lib kernels -- --nocapture 2>&1 | tee "$logs/x86-scalar.log" |
    grep -E '^(selected|test result)'
expect "$logs/x86-scalar.log" "test result: ok" "selected: scalar (scalar)"

echo "== all kernel levels passed (logs in $logs)"
