//! Linear layers (and convolutions run as linear layers over patches) on the
//! kernels: f32 weights on [`PackedB`], int8 weights on [`PackedI8`] with the
//! activations quantized at run time exactly as ONNX `DynamicQuantizeLinear`
//! (and tract) does.

#[cfg(test)]
use crate::kernels::ActQuant;
use crate::kernels::{Kernels, PackedB, PackedI8};

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
                let act = kern.quantize_dynamic(x, q);
                kern.gemm_i8(m, q, b, act, Some(&self.bias), out);
            }
        }
    }
}

/// ONNX `DynamicQuantizeLinear` on the scalar reference
/// ([`Kernels::quantize_dynamic`] runs the selected level, with the same
/// codes).
#[cfg(test)]
pub(crate) fn quantize_dynamic(x: &[f32], q: &mut [i8]) -> ActQuant {
    Kernels::scalar().quantize_dynamic(x, q)
}

/// `x ← max(x, 0)` in place.
pub(crate) fn relu(x: &mut [f32]) {
    for v in x {
        *v = v.max(0.0);
    }
}
