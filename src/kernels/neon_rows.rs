//! aarch64 NEON row operations, 4 lanes: softmax and LayerNorm parts,
//! `erf`, GELU and the resize blend, on slices of whole vectors (the frame
//! pads tails). `exp` and `erf` evaluate the polynomials of `math.rs`. The
//! three NEON levels share them.

use std::arch::aarch64::*;

use super::math::*;
use super::neon::{Neon, NeonDot, NeonI8mm};
use super::quant;
use super::rows::{self, RowOps};

const L: usize = 4;

/// Declares a safe `RowOps` method that calls the `#[target_feature]` body.
macro_rules! row_op {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*) $(-> $ret:ty)?) => {
        fn $name(self, $($arg: $ty),*) $(-> $ret)? {
            // SAFETY: the token proves NEON, all the body needs (it is safe
            // code otherwise: slices, bounds-checked loads).
            unsafe { $body($($arg),*) }
        }
    };
}

/// The NEON row operations for one of the NEON tokens.
macro_rules! neon_rows {
    ($token:ty, $name:literal) => {
        impl RowOps for $token {
            const LANES: usize = L;
            const NAME: &'static str = $name;
            row_op!(max, max_4n, (x: &[f32]) -> f32);
            row_op!(sum, sum_4n, (x: &[f32]) -> f32);
            row_op!(exp_sub_sum, exp_sub_sum_4n, (x: &mut [f32], sub: f32) -> f32);
            row_op!(scale, scale_4n, (x: &mut [f32], s: f32));
            row_op!(sq_dev_sum, sq_dev_sum_4n, (x: &[f32], mean: f32) -> f32);
            row_op!(norm_affine, norm_affine_4n,
                (x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]));
            row_op!(erf, erf_4n, (x: &mut [f32]));
            row_op!(gelu, gelu_4n, (x: &mut [f32]));
            row_op!(lerp, lerp_4n, (top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]));
            // NEON is part of the aarch64 baseline: the loops of `quant.rs`
            // vectorize without a target feature
            fn act_range(self, x: &[f32]) -> (f32, f32) {
                quant::act_range(x)
            }
            fn act_codes(self, x: &[f32], scale: f32, zp: f32, q: &mut [i8]) {
                quant::act_codes(x, scale, zp, q)
            }
            fn add(self, a: &[f32], b: &[f32], out: &mut [f32]) {
                rows::add_body(a, b, out)
            }
            fn add_transposed(self, src: &[f32], c: usize, hw: usize, dst: &mut [f32]) {
                rows::add_transposed_body(src, c, hw, dst)
            }
            // NEON (with its fused multiply-add) is part of the aarch64
            // baseline: the body vectorizes without a target feature
            fn depthwise(self, x: &[f32], taps: &[f32], bias: &[f32], s: rows::Depthwise, y: &mut [f32]) {
                rows::depthwise_body::<true>(x, taps, bias, s, y)
            }
        }
    };
}
neon_rows!(Neon, "neon");
neon_rows!(NeonDot, "neon_dot");
neon_rows!(NeonI8mm, "neon_i8mm");

/// Loads one whole chunk (panics if it is short).
#[inline]
#[target_feature(enable = "neon")]
fn load(chunk: &[f32]) -> float32x4_t {
    assert!(chunk.len() >= L);
    // SAFETY: the chunk holds at least 4 floats.
    unsafe { vld1q_f32(chunk.as_ptr()) }
}

/// Stores one whole chunk (panics if it is short).
#[inline]
#[target_feature(enable = "neon")]
fn store(chunk: &mut [f32], v: float32x4_t) {
    assert!(chunk.len() >= L);
    // SAFETY: the chunk holds at least 4 floats.
    unsafe { vst1q_f32(chunk.as_mut_ptr(), v) }
}

#[inline]
#[target_feature(enable = "neon")]
fn horner(coeffs: &[f32], x: float32x4_t) -> float32x4_t {
    let mut acc = vdupq_n_f32(coeffs[0]);
    for &c in &coeffs[1..] {
        acc = vfmaq_f32(vdupq_n_f32(c), acc, x);
    }
    acc
}

/// `exp` of 4 lanes (`math::exp`'s algorithm; 0 below `EXP_LO` and for NaN).
#[inline]
#[target_feature(enable = "neon")]
fn exp4(x: float32x4_t) -> float32x4_t {
    let valid = vcgeq_f32(x, vdupq_n_f32(EXP_LO));
    let x = vminq_f32(x, vdupq_n_f32(EXP_HI));
    let n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(LOG2E)));
    let r = vfmsq_f32(x, n, vdupq_n_f32(LN2_HI));
    let r = vfmsq_f32(r, n, vdupq_n_f32(LN2_LO));
    let p = horner(&EXP_P, r);
    let e = vaddq_f32(vfmaq_f32(r, p, vmulq_f32(r, r)), vdupq_n_f32(1.0));
    let bits = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    let pow = vreinterpretq_f32_s32(vshlq_n_s32::<23>(bits));
    let v = vreinterpretq_u32_f32(vmulq_f32(e, pow));
    vreinterpretq_f32_u32(vandq_u32(v, valid))
}

/// `erf` of 4 lanes (`math::erf`'s two pieces, selected per lane).
#[inline]
#[target_feature(enable = "neon")]
fn erf4(x: float32x4_t) -> float32x4_t {
    let sign = vandq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(0x8000_0000));
    let ax = vabsq_f32(x);
    let small = vmulq_f32(x, horner(&ERF_P, vmulq_f32(x, x)));
    let axc = vminq_f32(ax, vdupq_n_f32(ERF_CLAMP));
    let e = exp4(vnegq_f32(vmulq_f32(axc, axc)));
    let large = vsubq_f32(vdupq_n_f32(1.0), vmulq_f32(e, horner(&ERF_Q, axc)));
    let large = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(large), sign));
    vbslq_f32(vcleq_f32(ax, vdupq_n_f32(ERF_SPLIT)), small, large)
}

#[target_feature(enable = "neon")]
fn max_4n(x: &[f32]) -> f32 {
    let mut acc = vdupq_n_f32(f32::NEG_INFINITY);
    for c in x.chunks_exact(L) {
        acc = vmaxq_f32(acc, load(c));
    }
    vmaxvq_f32(acc)
}

#[target_feature(enable = "neon")]
fn sum_4n(x: &[f32]) -> f32 {
    let mut acc = vdupq_n_f32(0.0);
    for c in x.chunks_exact(L) {
        acc = vaddq_f32(acc, load(c));
    }
    vaddvq_f32(acc)
}

#[target_feature(enable = "neon")]
fn exp_sub_sum_4n(x: &mut [f32], sub: f32) -> f32 {
    let (sub, mut acc) = (vdupq_n_f32(sub), vdupq_n_f32(0.0));
    for c in x.chunks_exact_mut(L) {
        let v = exp4(vsubq_f32(load(c), sub));
        store(c, v);
        acc = vaddq_f32(acc, v);
    }
    vaddvq_f32(acc)
}

#[target_feature(enable = "neon")]
fn scale_4n(x: &mut [f32], s: f32) {
    for c in x.chunks_exact_mut(L) {
        store(c, vmulq_n_f32(load(c), s));
    }
}

#[target_feature(enable = "neon")]
fn sq_dev_sum_4n(x: &[f32], mean: f32) -> f32 {
    let (mean, mut acc) = (vdupq_n_f32(mean), vdupq_n_f32(0.0));
    for c in x.chunks_exact(L) {
        let d = vsubq_f32(load(c), mean);
        acc = vfmaq_f32(acc, d, d);
    }
    vaddvq_f32(acc)
}

#[target_feature(enable = "neon")]
fn norm_affine_4n(x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]) {
    let mean = vdupq_n_f32(mean);
    let chunks = x
        .chunks_exact(L)
        .zip(gb.0.chunks_exact(L))
        .zip(gb.1.chunks_exact(L));
    for (((xc, gc), bc), oc) in chunks.zip(out.chunks_exact_mut(L)) {
        let d = vmulq_n_f32(vsubq_f32(load(xc), mean), inv);
        store(oc, vfmaq_f32(load(bc), d, load(gc)));
    }
}

#[target_feature(enable = "neon")]
fn erf_4n(x: &mut [f32]) {
    for c in x.chunks_exact_mut(L) {
        store(c, erf4(load(c)));
    }
}

#[target_feature(enable = "neon")]
fn gelu_4n(x: &mut [f32]) {
    for c in x.chunks_exact_mut(L) {
        let v = load(c);
        let e = erf4(vmulq_n_f32(v, std::f32::consts::FRAC_1_SQRT_2));
        store(
            c,
            vmulq_f32(vmulq_n_f32(v, 0.5), vaddq_f32(vdupq_n_f32(1.0), e)),
        );
    }
}

#[target_feature(enable = "neon")]
fn lerp_4n(top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]) {
    let chunks = top.chunks_exact(L).zip(bot.chunks_exact(L));
    for ((t, b), o) in chunks.zip(out.chunks_exact_mut(L)) {
        // Unfused on purpose: bit-identical to the scalar blend.
        store(
            o,
            vaddq_f32(vmulq_n_f32(load(t), 1.0 - fy), vmulq_n_f32(load(b), fy)),
        );
    }
}
