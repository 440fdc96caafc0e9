//! ONNX `DynamicQuantizeLinear` for the int8 GEMM's activations: the rule
//! once, in safe code; each level runs the two loops ([`act_range`],
//! [`act_codes`]) compiled for its own vector width (`RowOps::act_range`,
//! `RowOps::act_codes`), so every level gives the same codes bit for bit.

use super::pack::ActQuant;
use super::rows::RowOps;

/// ONNX `DynamicQuantizeLinear` (u8), as tract 0.23.9 computes it, shifted
/// to i8 for [`Kernels::gemm_i8`]: the range is `[min(0, min x), max(0, max
/// x)]`, `scale = range / 255`, `zp = round_half_even(−min / scale)` clamped
/// to 0..=255, `q = clamp(round_half_even(x / scale) + zp, 0, 255)`. The u8
/// code `q` is stored as `q − 128` and the zero point as `zp − 128`, which
/// leaves every `q − zp` (and so the integer sums) unchanged. NaN entries
/// do not count in the range. An all-zero `x` gives scale 0: the graph then
/// produces codes 0 with zero point 0 and the layer gives its bias, and so
/// does this.
pub(crate) fn quantize_dynamic<K: RowOps>(kern: K, x: &[f32], q: &mut [i8]) -> ActQuant {
    assert!(q.len() >= x.len(), "quantize_dynamic: q shorter than x");
    let (min, max) = kern.act_range(x);
    let scale = (max - min) / 255.0;
    // NaN (all-zero input: 0 / 0) converts to 0, as tract's max/min give
    let zp = round_for_codes(-min / scale).clamp(0.0, 255.0) as i32;
    kern.act_codes(x, scale, zp as f32, &mut q[..x.len()]);
    ActQuant {
        scale,
        zero_point: (zp - 128) as i8,
    }
}

/// `(min(0, min x), max(0, max x))`; NaN entries do not count. Eight
/// independent lanes of `if v < lo { v } else { lo }` (NaN never wins), so
/// the scan vectorizes at the caller's target features.
#[inline(always)]
pub(crate) fn act_range(x: &[f32]) -> (f32, f32) {
    const L: usize = 16;
    let (mut lo, mut hi) = ([0.0f32; L], [0.0f32; L]);
    let chunks = x.chunks_exact(L);
    let tail = chunks.remainder();
    for c in chunks {
        for l in 0..L {
            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
        }
    }
    let fold =
        |(lo, hi): (f32, f32), &v: &f32| (if v < lo { v } else { lo }, if v > hi { v } else { hi });
    let lanes = lo.iter().zip(&hi).map(|(&l, &h)| (l, h));
    let (min, max) = lanes.fold((0.0f32, 0.0f32), |(a, b), (l, h)| {
        (fold((a, b), &l).0, fold((a, b), &h).1)
    });
    tail.iter().fold((min, max), fold)
}

/// The codes of `x` for `scale` and the u8 zero point `zpf`, stored as
/// `code − 128`. Branch-free, so it vectorizes at the caller's features.
#[inline(always)]
pub(crate) fn act_codes(x: &[f32], scale: f32, zpf: f32, q: &mut [i8]) {
    for (d, &v) in q.iter_mut().zip(x) {
        // as `(r as i32).saturating_add(zp).clamp(0, 255)`: |r| < 2²² is
        // exact in f32, larger clamps alike, NaN (`as i32` gives 0) → zp
        let r = round_for_codes(v / scale);
        let r = if r.is_nan() { 0.0 } else { r };
        let code = (r + zpf).clamp(0.0, 255.0);
        // the integer code is the low byte of code + 1.5·2²³ (exact), and
        // code − 128 as i8 flips its top bit: no float → int conversion
        *d = (((code + MAGIC).to_bits() as u8) ^ 0x80) as i8;
    }
}

/// `v.round_ties_even()` for codes that are clamped to 0..=255 afterwards,
/// without the libm call (`rintf`) `f32::round_ties_even` compiles to on
/// x86-64 without SSE4.1: adding and subtracting 1.5·2²³ rounds to an
/// integer, ties to even, for |v| < 2²². Larger values are returned as they
/// are: they clamp to the same code either way. NaN stays NaN. Branch-free,
/// so the quantization loop vectorizes.
#[inline]
pub(crate) fn round_for_codes(v: f32) -> f32 {
    let r = (v + MAGIC) - MAGIC;
    if v.abs() < 4_194_304.0 {
        r
    } else {
        v
    }
}

/// 1.5·2²³: adding it to |v| < 2²² rounds to an integer, ties to even,
/// held in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;
