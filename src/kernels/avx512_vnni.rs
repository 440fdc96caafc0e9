//! x86-64 AVX-512 (F, VL, VNNI): the f32 GEMM and the int8 GEMM
//! (`vpdpbusd`) on zmm registers; the row operations are AVX2's, the
//! activation quantization is compiled for 16 lanes.
//!
//! f32: 12 × 16 tile, one zmm accumulator per row (12 of 32 registers); per
//! `k` step one 64-byte panel load and twelve broadcast FMAs, so each panel
//! row feeds twice the multiplies of the AVX2 6 × 16 tile. On cores with two
//! 512-bit FMA units (Sapphire Rapids) that is twice AVX2's peak; on Zen 4,
//! which splits a zmm FMA into two 256-bit halves, the peak is AVX2's and
//! the gain is fewer instructions and loads per multiply.
//!
//! int8: 12 × 16 tile on zmm, panels in k-groups of 4 (the NEON `sdot`
//! layout). Per 4 k of a row, one broadcast of the row's 4 bytes and one
//! `vpdpbusd` against the 64-byte panel vector (16 columns × 4 k).
//! `vpdpbusd` multiplies *unsigned* × signed bytes and accumulates in i32
//! without saturation, so `A` is biased to `a + 128` (a XOR 0x80) and the
//! tile subtracts `128 · colsum(B)[j]` at the end: exact while
//! `k · 255 · 128 < 2³¹` (`k < 65793`). The zero padding of the last `k`
//! block adds `128 · 0`.
//!
//! AVX-VNNI (the VEX form on Alder Lake-class cores without AVX-512) would
//! run this kernel on ymm halves (two 32-byte panel vectors per k-group)
//! with `_mm256_dpbusd_avx_epi32`; not wired up, as no machine here lacks
//! AVX-512 and has it.

use std::arch::x86_64::*;

use super::avx2::Avx2Fma;
use super::frame::{
    by_rows, f32_tile_args, i8_tile_fits, F32Args, F32Gemm, I8Gemm, StridedA, MAX_MR,
};
use super::pack::{KB, NR};
use super::quant;
use super::rows::{self, RowOps};

/// Proof of AVX2, FMA, AVX-512 VNNI and AVX-512 VL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Avx512Vnni(Avx2Fma);

impl Avx512Vnni {
    /// The token, if the CPU has all four.
    pub(crate) fn new() -> Option<Self> {
        let avx2 = Avx2Fma::new()?;
        let ok = std::is_x86_feature_detected!("avx512vnni")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512f");
        ok.then_some(Avx512Vnni(avx2))
    }
}

impl F32Gemm for Avx512Vnni {
    const MR: usize = 12;
    const NAME: &'static str = "avx512_gemm_f32_12x16";

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
        let args = f32_tile_args("avx512", mr, rows, k, a, b, (c, ldc), bias, accumulate);
        // SAFETY: `self` proves AVX-512 F (with VL and VNNI);
        // `f32_tile_fits` checked that the `rows` rows of `a` (k each, at
        // its strides), the `k` rows of `b` and the `rows` rows of 16 in `c`
        // are in bounds, and `bias` is null or 16 floats.
        unsafe { by_rows!(rows, gemm_f32_12x16, args; 1 2 3 4 5 6 7 8 9 10 11; 12) }
    }
}

/// `R` rows of the f32 tile (see [`F32Gemm::tile`]): one zmm accumulator
/// per row, per `k` step one panel load and `R` broadcast FMAs.
///
/// # Safety
/// AVX-512 F must be available; `a` must hold `R` rows of `k` floats at its
/// strides (`rs` between rows, `cs` between columns), `b` `k` rows of 16
/// floats `ldb` apart, `c` `R` rows of 16 floats `ldc` apart, `bias` be
/// null or point to 16 floats.
#[target_feature(enable = "avx512f")]
unsafe fn gemm_f32_12x16<const R: usize>(args: F32Args) {
    let (k, a, rs, cs, b, ldb, c, ldc, bias, accumulate) = args;
    let mut acc = [_mm512_setzero_ps(); R];
    for p in 0..k {
        // SAFETY: p < k: row p of the panel is in bounds.
        let bv = unsafe { _mm512_loadu_ps(b.add(p * ldb)) };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: r < R rows, p < k: inside `a`.
            let av = unsafe { _mm512_set1_ps(*a.add(r * rs + p * cs)) };
            *row = _mm512_fmadd_ps(av, bv, *row);
        }
    }
    for (r, &v) in acc.iter().enumerate() {
        let mut v = v;
        if !bias.is_null() {
            // SAFETY: a non-null bias holds 16 floats.
            v = _mm512_add_ps(v, unsafe { _mm512_loadu_ps(bias) });
        }
        // SAFETY: row r < R of `c` holds 16 floats.
        unsafe {
            let dst = c.add(r * ldc);
            if accumulate {
                v = _mm512_add_ps(_mm512_loadu_ps(dst), v);
            }
            _mm512_storeu_ps(dst, v);
        }
    }
}

impl RowOps for Avx512Vnni {
    const LANES: usize = <Avx2Fma as RowOps>::LANES;
    const NAME: &'static str = <Avx2Fma as RowOps>::NAME;
    fn max(self, x: &[f32]) -> f32 {
        self.0.max(x)
    }
    fn sum(self, x: &[f32]) -> f32 {
        self.0.sum(x)
    }
    fn exp_sub_sum(self, x: &mut [f32], sub: f32) -> f32 {
        self.0.exp_sub_sum(x, sub)
    }
    fn scale(self, x: &mut [f32], s: f32) {
        self.0.scale(x, s)
    }
    fn sq_dev_sum(self, x: &[f32], mean: f32) -> f32 {
        self.0.sq_dev_sum(x, mean)
    }
    fn norm_affine(self, x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]) {
        self.0.norm_affine(x, mean, inv, gb, out)
    }
    fn erf(self, x: &mut [f32]) {
        RowOps::erf(self.0, x)
    }
    fn gelu(self, x: &mut [f32]) {
        RowOps::gelu(self.0, x)
    }
    fn lerp(self, top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]) {
        self.0.lerp(top, bot, fy, out)
    }
    fn act_range(self, x: &[f32]) -> (f32, f32) {
        // SAFETY: `self` proves AVX-512 F; the body is safe code.
        unsafe { act_range_avx512(x) }
    }
    fn act_codes(self, x: &[f32], scale: f32, zp: f32, q: &mut [i8]) {
        // SAFETY: `self` proves AVX-512 F; the body is safe code.
        unsafe { act_codes_avx512(x, scale, zp, q) }
    }
    fn add(self, a: &[f32], b: &[f32], out: &mut [f32]) {
        self.0.add(a, b, out)
    }
    fn add_transposed(self, src: &[f32], c: usize, hw: usize, dst: &mut [f32]) {
        self.0.add_transposed(src, c, hw, dst)
    }
    fn depthwise(self, x: &[f32], taps: &[f32], bias: &[f32], s: rows::Depthwise, y: &mut [f32]) {
        // SAFETY: `self` proves AVX-512 F (and the AVX2 + FMA below it); the
        // body is safe code.
        unsafe { depthwise_avx512(x, taps, bias, s, y) }
    }
}

/// The depthwise convolution compiled for AVX-512 (16 lanes).
#[target_feature(enable = "avx512f,avx2,fma")]
fn depthwise_avx512(x: &[f32], taps: &[f32], bias: &[f32], s: rows::Depthwise, y: &mut [f32]) {
    rows::depthwise_body::<true>(x, taps, bias, s, y)
}

/// The quantization loops of `quant.rs` compiled for AVX-512 (16 lanes).
#[target_feature(enable = "avx512f")]
fn act_range_avx512(x: &[f32]) -> (f32, f32) {
    quant::act_range(x)
}

#[target_feature(enable = "avx512f")]
fn act_codes_avx512(x: &[f32], scale: f32, zp: f32, q: &mut [i8]) {
    quant::act_codes(x, scale, zp, q)
}

impl I8Gemm for Avx512Vnni {
    const MR: usize = 12;
    const GROUP: usize = 4;
    const NAME: &'static str = "avx512_vnni_gemm_i8_dpbusd_12x16";

    fn tile(
        self,
        rows: usize,
        kb_full: usize,
        kb: usize,
        a: &[i8],
        lda: usize,
        tail: &[i8; MAX_MR * KB],
        panel: &[i8],
        col_sums: &[i32; NR],
        out: &mut [i32; MAX_MR * NR],
    ) {
        let mr = <Self as I8Gemm>::MR;
        let fits = i8_tile_fits(mr, rows, kb_full, kb, (a.len(), lda), panel.len());
        assert!(fits, "avx512_vnni gemm_i8 tile out of bounds");
        let (a, tail, panel) = (a.as_ptr(), tail.as_ptr(), panel.as_ptr());
        let args = (
            kb_full,
            kb,
            a,
            lda,
            tail,
            panel,
            col_sums.as_ptr(),
            out.as_mut_ptr(),
        );
        // SAFETY: `self` proves AVX-512 F, VNNI and VL; `i8_tile_fits`
        // checked that the `kb_full` blocks of `rows` rows of `a`, the tail
        // rows and `kb` panel blocks are in bounds; `col_sums` holds 16 i32,
        // `out` MAX_MR ≥ 12 rows of 16.
        unsafe { by_rows!(rows, gemm_i8_dpbusd_12x16, args; 1 2 3 4 5 6 7 8 9 10 11; 12) }
    }
}

/// `(kb_full, kb, a, lda, tail, panel, col_sums, out)`.
type Args = (
    usize,
    usize,
    *const i8,
    usize,
    *const i8,
    *const i8,
    *const i32,
    *mut i32,
);

/// `R` rows of the int8 tile with `vpdpbusd` on zmm (see
/// [`I8Gemm::tile`]): one accumulator per row holds the row's 16 columns;
/// per k-group one 64-byte panel load (4 k × 16 columns) and `R`
/// broadcast `vpdpbusd`.
///
/// # Safety
/// AVX-512 F and VNNI must be available; `a` must hold `kb_full` blocks of
/// 16 bytes in each of `R` rows `lda` apart, `tail` `R` rows of 16, `panel`
/// `kb` blocks of 16 × 16 bytes, `col_sums` 16 i32, `out` `R` rows of 16
/// i32.
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn gemm_i8_dpbusd_12x16<const R: usize>(args: Args) {
    let (kb_full, kb, a, lda, tail, panel, col_sums, out) = args;
    let bias = _mm_set1_epi8(i8::MIN);
    let mut acc = [_mm512_setzero_si512(); R];
    // Row r's current block plus 128, as u8: lane g holds k-group g.
    let mut quads = [[0i32; 4]; R];
    for b in 0..kb {
        for (r, dst) in quads.iter_mut().enumerate() {
            let src = if b < kb_full {
                // SAFETY: block b < kb_full of row r is inside `a`.
                unsafe { a.add(r * lda + b * KB) }
            } else {
                // SAFETY: tail row r < R is inside `tail`.
                unsafe { tail.add(r * KB) }
            };
            // SAFETY: `src` has 16 readable bytes; `dst` is 16 bytes.
            unsafe {
                let v = _mm_xor_si128(_mm_loadu_si128(src.cast()), bias);
                _mm_storeu_si128(dst.as_mut_ptr().cast(), v);
            }
        }
        for g in 0..4 {
            // SAFETY: k-group 4b + g of the panel (64 bytes) is in bounds.
            let bv = unsafe { _mm512_loadu_si512(panel.add((b * 4 + g) * 4 * NR).cast()) };
            for (row, q) in acc.iter_mut().zip(&quads) {
                *row = _mm512_dpbusd_epi32(*row, _mm512_set1_epi32(q[g]), bv);
            }
        }
    }
    // SAFETY: `col_sums` holds 16 i32.
    let sums = unsafe { _mm512_loadu_si512(col_sums.cast()) };
    let c = _mm512_slli_epi32::<7>(sums);
    for (r, &row) in acc.iter().enumerate() {
        // SAFETY: row r < R of `out` holds 16 i32.
        unsafe { _mm512_storeu_si512(out.add(r * NR).cast(), _mm512_sub_epi32(row, c)) };
    }
}
