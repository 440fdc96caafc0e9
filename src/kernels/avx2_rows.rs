//! x86-64 AVX2 + FMA row operations, 8 lanes: softmax and LayerNorm parts,
//! `erf`, GELU and the resize blend, on slices of whole vectors (the frame
//! pads tails). `exp` and `erf` evaluate the polynomials of `math.rs`.

use std::arch::x86_64::*;

use super::avx2::Avx2Fma;
use super::math::*;
use super::quant;
use super::rows::{self, RowOps};

const L: usize = 8;

/// Declares a safe `RowOps` method that checks whole vectors and calls the
/// `#[target_feature]` body.
macro_rules! row_op {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        fn $name(self, $($arg: $ty),*) $(-> $ret)? {
            // SAFETY: `self` proves AVX2 and FMA, all the body needs (it is
            // safe code otherwise: slices, bounds-checked loads).
            unsafe { $body($($arg),*) }
        }
    };
}

impl RowOps for Avx2Fma {
    const LANES: usize = L;
    const NAME: &'static str = "avx2_fma";
    row_op!(max, max_8n, (x: &[f32]) -> f32);
    row_op!(sum, sum_8n, (x: &[f32]) -> f32);
    row_op!(exp_sub_sum, exp_sub_sum_8n, (x: &mut [f32], sub: f32) -> f32);
    row_op!(scale, scale_8n, (x: &mut [f32], s: f32));
    row_op!(sq_dev_sum, sq_dev_sum_8n, (x: &[f32], mean: f32) -> f32);
    row_op!(norm_affine, norm_affine_8n,
        (x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]));
    row_op!(erf, erf_8n, (x: &mut [f32]));
    row_op!(gelu, gelu_8n, (x: &mut [f32]));
    row_op!(lerp, lerp_8n, (top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]));
    row_op!(act_range, act_range_avx2, (x: &[f32]) -> (f32, f32));
    row_op!(act_codes, act_codes_avx2, (x: &[f32], scale: f32, zp: f32, q: &mut [i8]));
    row_op!(add, add_avx2, (a: &[f32], b: &[f32], out: &mut [f32]));
    row_op!(add_transposed, add_transposed_avx2, (src: &[f32], c: usize, hw: usize, dst: &mut [f32]));
    row_op!(depthwise, depthwise_avx2,
        (x: &[f32], taps: &[f32], bias: &[f32], s: rows::Depthwise, y: &mut [f32]));
}

/// The depthwise convolution compiled for AVX2 + FMA (8 lanes).
#[target_feature(enable = "avx2,fma")]
fn depthwise_avx2(x: &[f32], taps: &[f32], bias: &[f32], s: rows::Depthwise, y: &mut [f32]) {
    rows::depthwise_body::<true>(x, taps, bias, s, y)
}

/// The element-wise sum compiled for AVX2.
#[target_feature(enable = "avx2,fma")]
fn add_avx2(a: &[f32], b: &[f32], out: &mut [f32]) {
    rows::add_body(a, b, out)
}

/// `dst[p][ch] += src[ch][p]`: 8 × 8 blocks transposed in registers (the
/// usual unpack / shuffle / lane-permute network), the edges by
/// [`rows::add_transposed_edges`].
#[target_feature(enable = "avx2,fma")]
fn add_transposed_avx2(src: &[f32], c: usize, hw: usize, dst: &mut [f32]) {
    let (src, dst) = (&src[..c * hw], &mut dst[..c * hw]);
    let (c_full, hw_full) = (c - c % L, hw - hw % L);
    for p0 in (0..hw_full).step_by(L) {
        for ch0 in (0..c_full).step_by(L) {
            let row = |i: usize| &src[(ch0 + i) * hw + p0..][..L];
            let r = [
                load(row(0)),
                load(row(1)),
                load(row(2)),
                load(row(3)),
                load(row(4)),
                load(row(5)),
                load(row(6)),
                load(row(7)),
            ];
            let t = [
                _mm256_unpacklo_ps(r[0], r[1]),
                _mm256_unpackhi_ps(r[0], r[1]),
                _mm256_unpacklo_ps(r[2], r[3]),
                _mm256_unpackhi_ps(r[2], r[3]),
                _mm256_unpacklo_ps(r[4], r[5]),
                _mm256_unpackhi_ps(r[4], r[5]),
                _mm256_unpacklo_ps(r[6], r[7]),
                _mm256_unpackhi_ps(r[6], r[7]),
            ];
            let u = [
                _mm256_shuffle_ps::<0x44>(t[0], t[2]),
                _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
                _mm256_shuffle_ps::<0x44>(t[1], t[3]),
                _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
                _mm256_shuffle_ps::<0x44>(t[4], t[6]),
                _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
                _mm256_shuffle_ps::<0x44>(t[5], t[7]),
                _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
            ];
            // column j of the block (pixel p0 + j, channels ch0..ch0 + 8)
            let cols = [
                _mm256_permute2f128_ps::<0x20>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x20>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x20>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x20>(u[3], u[7]),
                _mm256_permute2f128_ps::<0x31>(u[0], u[4]),
                _mm256_permute2f128_ps::<0x31>(u[1], u[5]),
                _mm256_permute2f128_ps::<0x31>(u[2], u[6]),
                _mm256_permute2f128_ps::<0x31>(u[3], u[7]),
            ];
            for (j, col) in cols.into_iter().enumerate() {
                let d = &mut dst[(p0 + j) * c + ch0..][..L];
                store(d, _mm256_add_ps(load(d), col));
            }
        }
    }
    rows::add_transposed_edges(src, c, hw, dst, (c_full, hw_full));
}

/// The quantization loops of `quant.rs` compiled for AVX2 (8 lanes).
#[target_feature(enable = "avx2,fma")]
fn act_range_avx2(x: &[f32]) -> (f32, f32) {
    quant::act_range(x)
}

#[target_feature(enable = "avx2,fma")]
fn act_codes_avx2(x: &[f32], scale: f32, zp: f32, q: &mut [i8]) {
    quant::act_codes(x, scale, zp, q)
}

/// Loads one whole chunk (panics if it is short).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn load(chunk: &[f32]) -> __m256 {
    assert!(chunk.len() >= L);
    // SAFETY: the chunk holds at least 8 floats.
    unsafe { _mm256_loadu_ps(chunk.as_ptr()) }
}

/// Stores one whole chunk (panics if it is short).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn store(chunk: &mut [f32], v: __m256) {
    assert!(chunk.len() >= L);
    // SAFETY: the chunk holds at least 8 floats.
    unsafe { _mm256_storeu_ps(chunk.as_mut_ptr(), v) }
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn hmax(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
}

#[inline]
#[target_feature(enable = "avx2,fma")]
fn horner(coeffs: &[f32], x: __m256) -> __m256 {
    let mut acc = _mm256_set1_ps(coeffs[0]);
    for &c in &coeffs[1..] {
        acc = _mm256_fmadd_ps(acc, x, _mm256_set1_ps(c));
    }
    acc
}

/// `exp` of 8 lanes (`math::exp`'s algorithm; 0 below `EXP_LO` and for NaN).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let valid = _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(EXP_LO));
    let x = _mm256_min_ps(x, _mm256_set1_ps(EXP_HI));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        x,
        _mm256_set1_ps(LOG2E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    let p = horner(&EXP_P, r);
    let e = _mm256_add_ps(
        _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r),
        _mm256_set1_ps(1.0),
    );
    let bits = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(bits));
    _mm256_and_ps(_mm256_mul_ps(e, pow), valid)
}

/// `erf` of 8 lanes (`math::erf`'s two pieces, blended; a piece no lane
/// needs is skipped, which gives the same lanes).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn erf8(x: __m256) -> __m256 {
    let ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0), x);
    let is_small = _mm256_cmp_ps::<_CMP_LE_OQ>(ax, _mm256_set1_ps(ERF_SPLIT));
    let small = || _mm256_mul_ps(x, horner(&ERF_P, _mm256_mul_ps(x, x)));
    match _mm256_movemask_ps(is_small) {
        0xff => small(),
        0 => erf8_large(x, ax),
        _ => _mm256_blendv_ps(erf8_large(x, ax), small(), is_small),
    }
}

/// The `0.8 < |x|` piece of [`erf8`] (`ax` = `|x|`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn erf8_large(x: __m256, ax: __m256) -> __m256 {
    let sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0));
    let axc = _mm256_min_ps(ax, _mm256_set1_ps(ERF_CLAMP));
    let e = exp8(_mm256_xor_ps(_mm256_mul_ps(axc, axc), _mm256_set1_ps(-0.0)));
    let large = _mm256_sub_ps(_mm256_set1_ps(1.0), _mm256_mul_ps(e, horner(&ERF_Q, axc)));
    _mm256_or_ps(large, sign)
}

#[target_feature(enable = "avx2,fma")]
fn max_8n(x: &[f32]) -> f32 {
    let mut acc = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in x.chunks_exact(L) {
        acc = _mm256_max_ps(acc, load(c));
    }
    hmax(acc)
}

#[target_feature(enable = "avx2,fma")]
fn sum_8n(x: &[f32]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for c in x.chunks_exact(L) {
        acc = _mm256_add_ps(acc, load(c));
    }
    hsum(acc)
}

#[target_feature(enable = "avx2,fma")]
fn exp_sub_sum_8n(x: &mut [f32], sub: f32) -> f32 {
    let (sub, mut acc) = (_mm256_set1_ps(sub), _mm256_setzero_ps());
    for c in x.chunks_exact_mut(L) {
        let v = exp8(_mm256_sub_ps(load(c), sub));
        store(c, v);
        acc = _mm256_add_ps(acc, v);
    }
    hsum(acc)
}

#[target_feature(enable = "avx2,fma")]
fn scale_8n(x: &mut [f32], s: f32) {
    let s = _mm256_set1_ps(s);
    for c in x.chunks_exact_mut(L) {
        store(c, _mm256_mul_ps(load(c), s));
    }
}

#[target_feature(enable = "avx2,fma")]
fn sq_dev_sum_8n(x: &[f32], mean: f32) -> f32 {
    let (mean, mut acc) = (_mm256_set1_ps(mean), _mm256_setzero_ps());
    for c in x.chunks_exact(L) {
        let d = _mm256_sub_ps(load(c), mean);
        acc = _mm256_fmadd_ps(d, d, acc);
    }
    hsum(acc)
}

#[target_feature(enable = "avx2,fma")]
fn norm_affine_8n(x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]) {
    let (mean, inv) = (_mm256_set1_ps(mean), _mm256_set1_ps(inv));
    let chunks = x
        .chunks_exact(L)
        .zip(gb.0.chunks_exact(L))
        .zip(gb.1.chunks_exact(L));
    for (((xc, gc), bc), oc) in chunks.zip(out.chunks_exact_mut(L)) {
        let d = _mm256_mul_ps(_mm256_sub_ps(load(xc), mean), inv);
        store(oc, _mm256_fmadd_ps(d, load(gc), load(bc)));
    }
}

#[target_feature(enable = "avx2,fma")]
fn erf_8n(x: &mut [f32]) {
    for c in x.chunks_exact_mut(L) {
        store(c, erf8(load(c)));
    }
}

#[target_feature(enable = "avx2,fma")]
fn gelu_8n(x: &mut [f32]) {
    let (half, one) = (_mm256_set1_ps(0.5), _mm256_set1_ps(1.0));
    let rsqrt2 = _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2);
    for c in x.chunks_exact_mut(L) {
        let v = load(c);
        let e = erf8(_mm256_mul_ps(v, rsqrt2));
        store(
            c,
            _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e)),
        );
    }
}

#[target_feature(enable = "avx2,fma")]
fn lerp_8n(top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]) {
    let (wt, wb) = (_mm256_set1_ps(1.0 - fy), _mm256_set1_ps(fy));
    let chunks = top.chunks_exact(L).zip(bot.chunks_exact(L));
    for ((t, b), o) in chunks.zip(out.chunks_exact_mut(L)) {
        // Unfused on purpose: bit-identical to the scalar blend.
        store(
            o,
            _mm256_add_ps(_mm256_mul_ps(load(t), wt), _mm256_mul_ps(load(b), wb)),
        );
    }
}
