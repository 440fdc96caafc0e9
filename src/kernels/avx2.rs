//! x86-64 AVX2 + FMA GEMM micro-kernels (the row operations are in
//! `avx2_rows.rs`).
//!
//! - f32: 6 × 16 tile, 12 ymm accumulators, per `k` step two panel loads,
//!   six broadcasts of `A`, twelve `vfmadd231ps`.
//! - int8: 6 × 16 tile of exact i32 sums with `vpmaddwd` on operands
//!   sign-extended to i16 (`vpmovsxbw`): each 32-bit lane multiplies one
//!   k-pair of a column and adds the two products. Chosen over the
//!   `vpmaddubsw` u8 × s8 form because that one sums two products into a
//!   *saturating* i16 (255 · 127 · 2 > 32767), which silently corrupts sums of
//!   full-range int8 data unless the inputs are narrowed to 7 bits; with
//!   `vpmaddwd` every product and pair sum is exact in i32 and no +128 bias
//!   is needed. It does half the multiplies per instruction of `vpmaddubsw`;
//!   exactness first, the `vpdpbusd` (VNNI) level will take the speed back.

use std::arch::x86_64::*;

use super::frame::{
    by_rows, f32_tile_args, i8_tile_fits, F32Args, F32Gemm, I8Gemm, StridedA, MAX_MR,
};
use super::pack::{KB, NR};

/// Proof that this CPU has AVX2 and FMA: only [`Avx2Fma::new`] makes one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx2Fma(());

impl Avx2Fma {
    /// The token, if the CPU has AVX2 and FMA.
    pub(crate) fn new() -> Option<Self> {
        let ok = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        ok.then_some(Avx2Fma(()))
    }
}

impl F32Gemm for Avx2Fma {
    const MR: usize = 6;
    const NAME: &'static str = "avx2_fma_gemm_f32_6x16";

    fn tile(
        self,
        rows: usize,
        k: usize,
        a: StridedA<'_>,
        b: (&[f32], usize),
        c: &mut [f32],
        ldc: usize,
        bias: Option<&[f32; NR]>,
        accumulate: bool,
    ) {
        let mr = <Self as F32Gemm>::MR;
        let args = f32_tile_args("avx2", mr, rows, k, a, b, (c, ldc), bias, accumulate);
        // SAFETY: `self` proves AVX2 and FMA;
        // `f32_tile_fits` checked that the `rows` rows of `a` (k each, at
        // its strides), the `k` rows of `b` and the `rows` rows of 16 in `c`
        // are in bounds, and `bias` is null or 16 floats.
        unsafe { by_rows!(rows, gemm_f32_6x16, args; 1 2 3 4 5; 6) }
    }
}

/// `R` rows of the f32 tile (see [`F32Gemm::tile`]).
///
/// # Safety
/// AVX2 and FMA must be available; `a` must hold `R` rows of `k` floats at its
/// strides (`rs` between rows, `cs` between columns), `b` `k` rows of 16
/// floats `ldb` apart, `c` `R` rows of 16 floats `ldc` apart, `bias` be
/// null or point to 16 floats.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm_f32_6x16<const R: usize>(args: F32Args) {
    let (k, a, rs, cs, b, ldb, c, ldc, bias, accumulate) = args;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for p in 0..k {
        // SAFETY: p < k: row p of the panel is in bounds.
        let (b0, b1) = unsafe {
            (
                _mm256_loadu_ps(b.add(p * ldb)),
                _mm256_loadu_ps(b.add(p * ldb + 8)),
            )
        };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < R rows, p < k: inside `a`.
            let av = unsafe { _mm256_set1_ps(*a.add(r * rs + p * cs)) };
            row[0] = _mm256_fmadd_ps(av, b0, row[0]);
            row[1] = _mm256_fmadd_ps(av, b1, row[1]);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (h, &v) in row.iter().enumerate() {
            let mut v = v;
            if !bias.is_null() {
                // SAFETY: a non-null bias holds 16 floats.
                v = _mm256_add_ps(v, unsafe { _mm256_loadu_ps(bias.add(8 * h)) });
            }
            // SAFETY: row r < R of `c` holds 16 floats.
            unsafe {
                let dst = c.add(r * ldc + 8 * h);
                if accumulate {
                    v = _mm256_add_ps(_mm256_loadu_ps(dst), v);
                }
                _mm256_storeu_ps(dst, v);
            }
        }
    }
}

impl I8Gemm for Avx2Fma {
    const MR: usize = 6;
    const GROUP: usize = 2;
    const NAME: &'static str = "avx2_gemm_i8_i16madd_6x16";

    fn tile(
        self,
        rows: usize,
        kb_full: usize,
        kb: usize,
        a: &[i8],
        lda: usize,
        tail: &[i8; MAX_MR * KB],
        panel: &[i8],
        _col_sums: &[i32; NR],
        out: &mut [i32; MAX_MR * NR],
    ) {
        let fits = i8_tile_fits(
            <Self as I8Gemm>::MR,
            rows,
            kb_full,
            kb,
            (a.len(), lda),
            panel.len(),
        );
        assert!(fits, "avx2 gemm_i8 tile out of bounds");
        let args = (
            kb_full,
            kb,
            a.as_ptr(),
            lda,
            tail.as_ptr(),
            panel.as_ptr(),
            out.as_mut_ptr(),
        );
        // SAFETY: `self` proves AVX2; `i8_tile_fits` checked that the
        // `kb_full` blocks of `rows` rows of `a`, the tail rows and `kb` panel
        // blocks are in bounds; `out` holds MAX_MR ≥ 6 rows of 16.
        unsafe { by_rows!(rows, gemm_i8_6x16, args; 1 2 3 4 5; 6) }
    }
}

/// `(kb_full, kb, a, lda, tail, panel, out)`.
type I8Args = (
    usize,
    usize,
    *const i8,
    usize,
    *const i8,
    *const i8,
    *mut i32,
);

/// `R` rows of the int8 tile (see [`I8Gemm::tile`]); panel in k-pairs.
///
/// # Safety
/// AVX2 must be available; `a` must hold `kb_full` blocks of 16 bytes in
/// each of `R` rows `lda` apart, `tail` `R` rows of 16, `panel` `kb` blocks
/// of 16 × 16 bytes, `out` `R` rows of 16 i32.
#[target_feature(enable = "avx2")]
unsafe fn gemm_i8_6x16<const R: usize>(args: I8Args) {
    let (kb_full, kb, a, lda, tail, panel, out) = args;
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    // Row r's current block widened to i16: lane j holds the k-pair j.
    let mut pairs = [[0i32; 8]; R];
    for b in 0..kb {
        for (r, dst) in pairs.iter_mut().enumerate() {
            let src = if b < kb_full {
                // SAFETY: block b < kb_full of row r is inside `a`.
                unsafe { a.add(r * lda + b * KB) }
            } else {
                // SAFETY: tail row r < R is inside `tail`.
                unsafe { tail.add(r * KB) }
            };
            // SAFETY: `src` has 16 readable bytes; `dst` is 32 bytes.
            unsafe {
                let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(src.cast()));
                _mm256_storeu_si256(dst.as_mut_ptr().cast(), v);
            }
        }
        for j in 0..8 {
            // SAFETY: k-pair 8b + j of the panel (32 bytes) is in bounds.
            let (b0, b1) = unsafe {
                let p = panel.add((b * 8 + j) * 2 * NR);
                (
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast())),
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(NR).cast())),
                )
            };
            for (row, pr) in acc.iter_mut().zip(&pairs) {
                let av = _mm256_set1_epi32(pr[j]);
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(av, b0));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(av, b1));
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: row r < R of `out` holds 16 i32.
        unsafe {
            _mm256_storeu_si256(out.add(r * NR).cast(), row[0]);
            _mm256_storeu_si256(out.add(r * NR + 8).cast(), row[1]);
        }
    }
}
