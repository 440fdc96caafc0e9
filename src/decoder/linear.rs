//! Linear layers (and convolutions run as linear layers over patches) on the
//! kernels: f32 weights on [`PackedB`], int8 weights on [`PackedI8`] with the
//! activations quantized at run time exactly as ONNX `DynamicQuantizeLinear`
//! (and tract) does.

use crate::kernels::{ActQuant, Kernels, PackedB, PackedI8};

/// The packed weight of a linear layer.
#[derive(Debug, Clone)]
pub(crate) enum Weight {
    /// f32 `MatMul` / `Gemm` / `Conv`.
    F32(PackedB),
    /// int8 `MatMulInteger` / `ConvInteger`: symmetric per-column (or
    /// per-tensor, repeated) scales, activations u8 quantized per tensor.
    I8(PackedI8),
}

/// `y = x · W + b` for `x` of `m` rows of `k`.
#[derive(Debug, Clone)]
pub(crate) struct Linear {
    weight: Weight,
    bias: Vec<f32>,
}

impl Linear {
    /// From a packed weight and its bias (`n` long, checked by the loader).
    pub fn new(weight: Weight, bias: Vec<f32>) -> Linear {
        Linear { weight, bias }
    }

    /// Input features.
    pub fn k(&self) -> usize {
        match &self.weight {
            Weight::F32(b) => b.k(),
            Weight::I8(b) => b.k(),
        }
    }

    /// Output features.
    pub fn n(&self) -> usize {
        match &self.weight {
            Weight::F32(b) => b.n(),
            Weight::I8(b) => b.n(),
        }
    }

    /// The f32 weight (`k × n`), or `None` for an int8 layer.
    pub fn f32_weight(&self) -> Option<&PackedB> {
        match &self.weight {
            Weight::F32(b) => Some(b),
            Weight::I8(_) => None,
        }
    }

    /// The bias (`n`).
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Whether the weight is int8.
    pub fn is_int8(&self) -> bool {
        matches!(self.weight, Weight::I8(_))
    }

    /// `out[m×n] = x[m×k] · W + b`. An int8 layer quantizes all of `x` with
    /// one scale and zero point into `q` (at least `m·k` long), as the graph's
    /// `DynamicQuantizeLinear` does with the tensor it feeds to
    /// `MatMulInteger`. Callers size the buffers from the checked shapes.
    pub fn forward(&self, kern: &Kernels, m: usize, x: &[f32], q: &mut [i8], out: &mut [f32]) {
        let (k, n) = (self.k(), self.n());
        let (x, out) = (&x[..m * k], &mut out[..m * n]);
        match &self.weight {
            Weight::F32(b) => kern.gemm_f32(m, x, b, Some(&self.bias), out),
            Weight::I8(b) => {
                let q = &mut q[..m * k];
                let act = quantize_dynamic(x, q);
                kern.gemm_i8(m, q, b, act, Some(&self.bias), out);
            }
        }
    }
}

/// ONNX `DynamicQuantizeLinear` (u8), as tract 0.23.9 computes it, shifted
/// to i8 for [`Kernels::gemm_i8`]: the range is `[min(0, min x), max(0, max
/// x)]`, `scale = range / 255`, `zp = round_half_even(−min / scale)` clamped
/// to 0..=255, `q = clamp(round_half_even(x / scale) + zp, 0, 255)`. The u8
/// code `q` is stored as `q − 128` and the zero point as `zp − 128`, which
/// leaves every `q − zp` (and so the integer sums) unchanged. NaN entries
/// do not count in the range. An all-zero `x` gives scale 0: the graph then
/// produces codes 0 with zero point 0 and the layer gives its bias, and so
/// does this.
pub(crate) fn quantize_dynamic(x: &[f32], q: &mut [i8]) -> ActQuant {
    // eight independent lanes, each `if v < lo { v } else { lo }` (NaN
    // never wins), so the scan vectorizes
    const L: usize = 8;
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
    let (min, max) = tail.iter().fold((min, max), fold);
    let scale = (max - min) / 255.0;
    // NaN (all-zero input: 0 / 0) converts to 0, as tract's max/min give
    let zp = round_for_codes(-min / scale).clamp(0.0, 255.0) as i32;
    let zpf = zp as f32;
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
    ActQuant {
        scale,
        zero_point: (zp - 128) as i8,
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

/// `x ← max(x, 0)` in place.
pub(crate) fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}

/// `out[i] = a[i] + b[i]`.
pub(crate) fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}
