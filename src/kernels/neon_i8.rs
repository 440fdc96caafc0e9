//! aarch64 int8 GEMM micro-kernels of the `NeonDot` and `NeonI8mm` levels.
//! `vdotq_laneq_s32` and `vmmlaq_s32` are unstable in Rust 1.95
//! (`stdarch_neon_dotprod`, `stdarch_neon_i8mm`), so the two instructions
//! are written with `asm!`, each in a one-instruction function.
//!
//! - `sdot` (NeonDot): 4 × 16 tile, 16 accumulators of 4 columns; per 4 k
//!   of a row (one 32-bit lane of the row's 16-byte block) four `sdot` by
//!   element against the four 16-byte panel vectors (4 columns × 4 k).
//!   Panels in k-groups of 4.
//! - `smmla` (NeonI8mm): 4 × 16 tile as 2 row pairs × 8 column pairs, each
//!   accumulator a 2 × 2 block; rows are paired with `zip1`/`zip2` on 64-bit
//!   lanes (8 k of row r, 8 k of row r + 1), panels in k-groups of 8 (8 k of
//!   column c, 8 k of column c + 1).

use std::arch::aarch64::*;
use std::arch::asm;

use super::frame::{i8_tile_fits, I8Gemm, MAX_MR};
use super::neon::{block_ptr, i8_tile_4, I8Args, NeonDot, NeonI8mm};
use super::pack::{KB, NR};

/// `acc.s[i] += Σ_{q<4} b.b[4i + q] · a.b[4·LANE + q]` (signed).
#[inline]
#[target_feature(enable = "neon,dotprod")]
fn sdot_lane<const LANE: i32>(acc: int32x4_t, b: int8x16_t, a: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` (by element) only reads and writes the three vector
    // registers given; the dotprod feature is enabled for this function.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {b:v}.16b, {a:v}.4b[{lane}]",
            acc = inout(vreg) acc,
            b = in(vreg) b,
            a = in(vreg) a,
            lane = const LANE,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `acc (2×2, row-major) += a (2×8) · bᵀ (b: 2×8)` (signed).
#[inline]
#[target_feature(enable = "neon,i8mm")]
fn smmla(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `smmla` only reads and writes the three vector registers
    // given; the i8mm feature is enabled for this function.
    unsafe {
        asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

i8_tile_4!("neon_dot_gemm_i8_sdot_4x16", 4, NeonDot, gemm_i8_sdot_4x16);
i8_tile_4!(
    "neon_i8mm_gemm_i8_smmla_4x16",
    8,
    NeonI8mm,
    gemm_i8_smmla_4x16
);

/// `R` rows of the int8 tile with `sdot`; panel in k-groups of 4.
///
/// # Safety
/// NEON and dotprod must be available; `args` must describe an in-bounds
/// tile of `R` rows (see [`I8Gemm::tile`]).
#[target_feature(enable = "neon,dotprod")]
unsafe fn gemm_i8_sdot_4x16<const R: usize>(args: I8Args) {
    let (_, kb, _, _, _, panel, out) = args;
    let mut acc = [[vdupq_n_s32(0); 4]; R];
    for b in 0..kb {
        let mut av = [vdupq_n_s8(0); R];
        for (r, v) in av.iter_mut().enumerate() {
            // SAFETY: (r, b) is inside the tile; a block is 16 bytes.
            *v = unsafe { vld1q_s8(block_ptr(&args, r, b)) };
        }
        // Group g of 4 k: 64 panel bytes, 16 per 4 columns.
        let group = |g: usize| -> [int8x16_t; 4] {
            // SAFETY: k-group 4b + g of the panel (64 bytes) is in bounds.
            unsafe {
                let p = panel.add((b * 4 + g) * 4 * NR);
                [
                    vld1q_s8(p),
                    vld1q_s8(p.add(16)),
                    vld1q_s8(p.add(32)),
                    vld1q_s8(p.add(48)),
                ]
            }
        };
        let bv = group(0);
        for (row, &a) in acc.iter_mut().zip(&av) {
            for (s, &bq) in row.iter_mut().zip(&bv) {
                *s = sdot_lane::<0>(*s, bq, a);
            }
        }
        let bv = group(1);
        for (row, &a) in acc.iter_mut().zip(&av) {
            for (s, &bq) in row.iter_mut().zip(&bv) {
                *s = sdot_lane::<1>(*s, bq, a);
            }
        }
        let bv = group(2);
        for (row, &a) in acc.iter_mut().zip(&av) {
            for (s, &bq) in row.iter_mut().zip(&bv) {
                *s = sdot_lane::<2>(*s, bq, a);
            }
        }
        let bv = group(3);
        for (row, &a) in acc.iter_mut().zip(&av) {
            for (s, &bq) in row.iter_mut().zip(&bv) {
                *s = sdot_lane::<3>(*s, bq, a);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (q, &v) in row.iter().enumerate() {
            // SAFETY: row r < R of `out` holds 16 i32.
            unsafe { vst1q_s32(out.add(r * NR + 4 * q), v) };
        }
    }
}

/// `R` rows of the int8 tile with `smmla`; panel in k-groups of 8.
///
/// # Safety
/// NEON and i8mm must be available; `args` must describe an in-bounds tile
/// of `R` rows (see [`I8Gemm::tile`]).
#[target_feature(enable = "neon,i8mm")]
unsafe fn gemm_i8_smmla_4x16<const R: usize>(args: I8Args) {
    let (_, kb, _, _, _, panel, out) = args;
    // acc[pair][cp]: rows 2·pair, 2·pair + 1 × columns 2·cp, 2·cp + 1.
    let mut acc = [[vdupq_n_s32(0); 8]; 2];
    for b in 0..kb {
        let mut av = [vdupq_n_s8(0); 4];
        for (r, v) in av.iter_mut().enumerate().take(R) {
            // SAFETY: (r, b) is inside the tile (r < R); a block is 16 bytes.
            *v = unsafe { vld1q_s8(block_ptr(&args, r, b)) };
        }
        for (pair, acc_pair) in acc.iter_mut().enumerate().take(R.div_ceil(2)) {
            let r0 = vreinterpretq_s64_s8(av[2 * pair]);
            let r1 = vreinterpretq_s64_s8(av[2 * pair + 1]);
            let halves = [
                vreinterpretq_s8_s64(vzip1q_s64(r0, r1)),
                vreinterpretq_s8_s64(vzip2q_s64(r0, r1)),
            ];
            for (h, &a) in halves.iter().enumerate() {
                for (cp, s) in acc_pair.iter_mut().enumerate() {
                    // SAFETY: k-group 2b + h, column pair cp: 16 bytes of
                    // the panel, in bounds.
                    let bv = unsafe { vld1q_s8(panel.add((b * 2 + h) * 8 * NR + cp * 16)) };
                    *s = smmla(*s, a, bv);
                }
            }
        }
    }
    for (pair, acc_pair) in acc.iter().enumerate().take(R.div_ceil(2)) {
        for q in 0..4 {
            let (x, y) = (
                vreinterpretq_s64_s32(acc_pair[2 * q]),
                vreinterpretq_s64_s32(acc_pair[2 * q + 1]),
            );
            let rows = [vzip1q_s64(x, y), vzip2q_s64(x, y)];
            for (dr, &v) in rows.iter().enumerate() {
                let r = 2 * pair + dr;
                if r < R {
                    // SAFETY: row r < R of `out` holds 16 i32.
                    unsafe { vst1q_s32(out.add(r * NR + 4 * q), vreinterpretq_s32_s64(v)) };
                }
            }
        }
    }
}
