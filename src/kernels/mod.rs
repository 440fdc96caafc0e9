//! Hand-optimized compute kernels for the native mask decoder, one module per
//! instruction set, chosen at run time.
//!
//! - [`Level`]: the instruction-set levels, ordered (`Scalar < Avx2Fma <
//!   Avx512Vnni` on x86-64, `Scalar < Neon < NeonDot < NeonI8mm` on
//!   aarch64), detected once; `SAMMIX_KERNELS=scalar|avx2|avx512-vnni|neon|
//!   neon-dot|neon-i8mm` may only lower it.
//! - [`Kernels`]: the kernel set of one level. [`Kernels::get`] is the
//!   process's (logged once); [`Kernels::for_level`] any level the CPU runs.
//! - Operations: f32 GEMM on [`PackedB`] panels, int8 GEMM (exact i32
//!   sums, optional requantization to f32) on [`PackedI8`], row softmax,
//!   LayerNorm, `erf` and GELU (erf form), [`ConvTranspose2x2`] and the
//!   bilinear resize of [`crate::resize`].
//!
//! `scalar.rs` is the reference every level is tested against; the ISA files
//! (`avx2*.rs`, `neon*.rs`) hold all the `unsafe` of the module, and their
//! `#[target_feature]` code runs only behind a capability token that only a
//! successful detection makes. Tile shapes, tolerances and the int8 formula:
//! `src/kernels/README.md`.

mod compose;
mod frame;
mod level;
mod math;
mod pack;
mod quant;
mod rows;
mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_rows;
#[cfg(target_arch = "x86_64")]
mod avx512_vnni;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "aarch64")]
mod neon_i8;
#[cfg(target_arch = "aarch64")]
mod neon_rows;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gemm;

use std::sync::OnceLock;

pub use level::{Level, ENV_OVERRIDE};
pub use math::{erf as erf_f32, exp as exp_f32, gelu as gelu_f32};
pub use pack::{ActQuant, ConvTranspose2x2, I8Layout, PackedB, PackedI8, KB, NR};
#[cfg(test)]
pub(crate) use quant::round_for_codes;
pub use rows::Depthwise;

use crate::resize::Tap;
pub(crate) use frame::StridedA;
use frame::{F32Gemm, I8Gemm};
use rows::RowOps;

/// The kernel set of one level: a capability token for it, whose methods run
/// that level's code. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    imp: Imp,
}

#[derive(Debug, Clone, Copy)]
enum Imp {
    Scalar(scalar::Scalar),
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(avx2::Avx2Fma),
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni(avx512_vnni::Avx512Vnni),
    #[cfg(target_arch = "aarch64")]
    Neon(neon::Neon),
    #[cfg(target_arch = "aarch64")]
    NeonDot(neon::NeonDot),
    #[cfg(target_arch = "aarch64")]
    NeonI8mm(neon::NeonI8mm),
}

/// Runs `$e` with `$t` bound to the token of `$k`'s level.
macro_rules! dispatch {
    ($k:expr, $t:ident => $e:expr) => {
        match $k.imp {
            Imp::Scalar($t) => $e,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2Fma($t) => $e,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512Vnni($t) => $e,
            #[cfg(target_arch = "aarch64")]
            Imp::Neon($t) => $e,
            #[cfg(target_arch = "aarch64")]
            Imp::NeonDot($t) => $e,
            #[cfg(target_arch = "aarch64")]
            Imp::NeonI8mm($t) => $e,
        }
    };
}

/// The names of the kernels a [`Kernels`] runs, per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpNames {
    /// f32 GEMM micro-kernel, e.g. `avx2_fma_gemm_f32_6x16`.
    pub gemm_f32: &'static str,
    /// int8 GEMM micro-kernel, e.g. `neon_dot_gemm_i8_sdot_4x16`.
    pub gemm_i8: &'static str,
    /// Row operations (softmax, LayerNorm, erf, GELU, resize blend).
    pub rows: &'static str,
}

impl Kernels {
    /// The process's kernels: [`Level::selected`], chosen and logged once.
    pub fn get() -> &'static Kernels {
        static KERNELS: OnceLock<Kernels> = OnceLock::new();
        KERNELS.get_or_init(|| {
            let level = Level::selected();
            let k = Kernels::for_level(level).unwrap_or(Kernels::scalar());
            let n = k.op_names();
            log::info!(
                "kernels: {} (CPU best {}; gemm_f32 {}, gemm_i8 {}, rows {})",
                k.name(),
                Level::best(),
                n.gemm_f32,
                n.gemm_i8,
                n.rows
            );
            k
        })
    }

    /// The scalar reference kernels (always available).
    pub fn scalar() -> Kernels {
        Kernels {
            imp: Imp::Scalar(scalar::Scalar),
        }
    }

    /// The kernels of `level`, or `None` when this CPU cannot run it.
    pub fn for_level(level: Level) -> Option<Kernels> {
        let imp = match level {
            Level::Scalar => Imp::Scalar(scalar::Scalar),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2Fma => Imp::Avx2Fma(avx2::Avx2Fma::new()?),
            #[cfg(target_arch = "x86_64")]
            Level::Avx512Vnni => Imp::Avx512Vnni(avx512_vnni::Avx512Vnni::new()?),
            #[cfg(target_arch = "aarch64")]
            Level::Neon => Imp::Neon(neon::Neon::new()?),
            #[cfg(target_arch = "aarch64")]
            Level::NeonDot => Imp::NeonDot(neon::NeonDot::new()?),
            #[cfg(target_arch = "aarch64")]
            Level::NeonI8mm => Imp::NeonI8mm(neon::NeonI8mm::new()?),
        };
        Some(Kernels { imp })
    }

    /// The level these kernels belong to.
    pub fn level(&self) -> Level {
        match self.imp {
            Imp::Scalar(_) => Level::Scalar,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2Fma(_) => Level::Avx2Fma,
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512Vnni(_) => Level::Avx512Vnni,
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(_) => Level::Neon,
            #[cfg(target_arch = "aarch64")]
            Imp::NeonDot(_) => Level::NeonDot,
            #[cfg(target_arch = "aarch64")]
            Imp::NeonI8mm(_) => Level::NeonI8mm,
        }
    }

    /// What runs: `scalar`, `avx2_fma`, `avx512_vnni`, `neon`, `neon_dot` or
    /// `neon_i8mm`.
    pub fn name(&self) -> &'static str {
        match self.imp {
            Imp::Scalar(_) => "scalar",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx2Fma(_) => "avx2_fma",
            #[cfg(target_arch = "x86_64")]
            Imp::Avx512Vnni(_) => "avx512_vnni",
            #[cfg(target_arch = "aarch64")]
            Imp::Neon(_) => "neon",
            #[cfg(target_arch = "aarch64")]
            Imp::NeonDot(_) => "neon_dot",
            #[cfg(target_arch = "aarch64")]
            Imp::NeonI8mm(_) => "neon_i8mm",
        }
    }

    /// The kernel names per operation.
    pub fn op_names(&self) -> OpNames {
        fn names<T: F32Gemm + I8Gemm + RowOps>(_: T) -> OpNames {
            OpNames {
                gemm_f32: <T as F32Gemm>::NAME,
                gemm_i8: <T as I8Gemm>::NAME,
                rows: <T as RowOps>::NAME,
            }
        }
        dispatch!(self, t => names(t))
    }

    /// The int8 panel layout this level's [`Kernels::gemm_i8`] reads.
    pub fn i8_layout(&self) -> I8Layout {
        fn group<T: I8Gemm>(_: T) -> usize {
            T::GROUP
        }
        I8Layout {
            group: dispatch!(self, t => group(t)),
        }
    }

    /// Packs int8 weights `b[k×n]` (row-major) with per-column `scales` for
    /// this level (see [`PackedI8::new`]).
    pub fn pack_i8(&self, b: &[i8], k: usize, n: usize, scales: &[f32]) -> PackedI8 {
        PackedI8::new(self.i8_layout(), b, k, n, scales)
    }

    /// `C[m×n] = A[m×k] · B + bias`, `A` and `C` row-major, `bias[n]`.
    ///
    /// # Panics
    /// If `a.len() != m·k`, `c.len() != m·n` or `bias` is not `n` long.
    pub fn gemm_f32(&self, m: usize, a: &[f32], b: &PackedB, bias: Option<&[f32]>, c: &mut [f32]) {
        dispatch!(self, t => frame::gemm_f32(t, m, a, b, bias, c, false))
    }

    /// `C[m×n] += A[m×k] · B + bias` (as [`Kernels::gemm_f32`], accumulating).
    ///
    /// # Panics
    /// As [`Kernels::gemm_f32`].
    pub fn gemm_f32_acc(
        &self,
        m: usize,
        a: &[f32],
        b: &PackedB,
        bias: Option<&[f32]>,
        c: &mut [f32],
    ) {
        dispatch!(self, t => frame::gemm_f32(t, m, a, b, bias, c, true))
    }

    /// `C[m×n] = A · B` with `A` (`m × k`) read through its strides (row
    /// `r`, column `p` at `a.data[r·rs + p·cs]`: row-major or transposed)
    /// and `B` row-major `k × n`, rows `ldb` apart, read in place: for
    /// operands that change every call, where packing would copy them only
    /// to read them once.
    ///
    /// # Panics
    /// If a slice is too short for its shape or `ldb < n`.
    pub(crate) fn gemm_f32_strided(
        &self,
        mkn: (usize, usize, usize),
        a: StridedA<'_>,
        b: (&[f32], usize),
        c: &mut [f32],
    ) {
        dispatch!(self, t => frame::gemm_f32_strided(t, mkn, a, b, c))
    }

    /// `C[m×n] = A[m×k] · B` in exact i32 arithmetic (`A` row-major int8).
    ///
    /// # Panics
    /// If `b` was packed for another level, `a.len() != m·k` or
    /// `c.len() != m·n`.
    pub fn gemm_i8_i32(&self, m: usize, a: &[i8], b: &PackedI8, c: &mut [i32]) {
        dispatch!(self, t => frame::gemm_i8_i32(t, m, a, b, c))
    }

    /// Quantized linear layer: with `acc = Σ_p A[i][p] · B[p][j]` exact in
    /// i32, `C[i][j] = (acc − zp · colsum(B)[j]) as f32 · (a_scale ·
    /// b_scale[j]) + bias[j]`, the product of scales rounded to f32 first.
    /// Identical on every level.
    ///
    /// # Panics
    /// As [`Kernels::gemm_i8_i32`], or if `bias` is not `n` long.
    pub fn gemm_i8(
        &self,
        m: usize,
        a: &[i8],
        b: &PackedI8,
        act: ActQuant,
        bias: Option<&[f32]>,
        c: &mut [f32],
    ) {
        dispatch!(self, t => frame::gemm_i8_f32(t, m, a, b, act, bias, c))
    }

    /// Softmax over each `row_len` row of `x`, in place:
    /// `exp(x − max) / Σ exp(x − max)`. `-inf` entries give 0; a row must
    /// have a finite maximum.
    ///
    /// # Panics
    /// If `x` is not empty and `x.len()` is not a multiple of `row_len`.
    pub fn softmax_rows(&self, x: &mut [f32], row_len: usize) {
        dispatch!(self, t => rows::softmax_rows(t, x, row_len))
    }

    /// Softmax over interleaved groups, in place: each row of `x` holds
    /// `groups × lanes` values, entry `(g, l)` at `g·lanes + l`; each lane's
    /// softmax runs over its `groups` entries, max-subtracted.
    ///
    /// # Panics
    /// If `groups · lanes` is 0 or does not divide `x.len()`.
    pub(crate) fn softmax_interleaved(&self, x: &mut [f32], groups: usize, lanes: usize) {
        dispatch!(self, t => rows::softmax_interleaved(t, x, groups, lanes))
    }

    /// `out = a + b`, element-wise.
    ///
    /// # Panics
    /// If the lengths differ.
    pub(crate) fn add(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        dispatch!(self, t => t.add(a, b, out))
    }

    /// A depthwise k×k convolution over NHWC f32 ([`Depthwise`] gives the
    /// shapes): `y[oy][ox][ch] = bias[ch] + Σ x[iy][ix][ch] · taps[tap][ch]`,
    /// `taps` row-major over the window (`k·k × c`), zero padding.
    ///
    /// # Panics
    /// If a slice is shorter than its shape.
    pub fn depthwise(&self, x: &[f32], taps: &[f32], bias: &[f32], s: Depthwise, y: &mut [f32]) {
        dispatch!(self, t => t.depthwise(x, taps, bias, s, y))
    }

    /// `dst[p][ch] += src[ch][p]` for `src` row-major `c × hw` and `dst`
    /// row-major `hw × c`.
    ///
    /// # Panics
    /// If either slice is shorter than `c · hw`.
    pub(crate) fn add_transposed(&self, src: &[f32], c: usize, hw: usize, dst: &mut [f32]) {
        dispatch!(self, t => t.add_transposed(src, c, hw, dst))
    }

    /// The numerators of a softmax down the columns of row-major `x`
    /// (`rows × cols`), in place, max-subtracted per column; `sums[..cols]`
    /// gets the column sums (the softmax divides by them).
    ///
    /// # Panics
    /// If `cols` is 0 or does not divide `x.len()`, or `sums` is shorter
    /// than `cols`.
    pub(crate) fn exp_columns(&self, x: &mut [f32], cols: usize, sums: &mut [f32]) {
        dispatch!(self, t => rows::exp_columns(t, x, cols, sums))
    }

    /// LayerNorm over rows of `gamma.len()`: `out = (x − mean) /
    /// √(var + eps) · gamma + beta`, `var` the biased variance (two passes).
    ///
    /// # Panics
    /// If the lengths disagree.
    pub fn layer_norm(&self, x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
        dispatch!(self, t => rows::layer_norm(t, x, gamma, beta, eps, out))
    }

    /// `x ← erf(x)` in place (≤ 1.3e-7 absolute error).
    pub fn erf(&self, x: &mut [f32]) {
        dispatch!(self, t => rows::erf(t, x))
    }

    /// `x ← 0.5 · x · (1 + erf(x / √2))` in place (GELU, erf form).
    pub fn gelu(&self, x: &mut [f32]) {
        dispatch!(self, t => rows::gelu(t, x))
    }

    /// ONNX `DynamicQuantizeLinear` of `x` into `q` (u8 codes stored as
    /// `code − 128`, see [`ActQuant`]), as tract 0.23.9 computes it: the
    /// same codes at every level.
    ///
    /// # Panics
    /// If `q` is shorter than `x`.
    pub fn quantize_dynamic(&self, x: &[f32], q: &mut [i8]) -> ActQuant {
        dispatch!(self, t => quant::quantize_dynamic(t, x, q))
    }

    /// `ConvTranspose2d(kernel 2, stride 2)` of one NCHW image:
    /// `input[c_in][h][w]` into `out[c_out][2h][2w]`, `out[co][2y+dy][2x+dx]
    /// = bias[co] + Σ_ci input[ci][y][x] · weight[ci][co][dy][dx]`. `scratch`
    /// holds at least [`ConvTranspose2x2::scratch_len`] floats.
    ///
    /// # Panics
    /// If a length disagrees with the shapes.
    pub fn conv_transpose_2x2(
        &self,
        conv: &ConvTranspose2x2,
        input: &[f32],
        (h, w): (usize, usize),
        out: &mut [f32],
        scratch: &mut [f32],
    ) {
        dispatch!(self, t => compose::conv_transpose_2x2(t, conv, input, (h, w), out, scratch))
    }

    /// Bilinear resize with the taps of [`crate::resize::axis`]
    /// (align_corners = false): `src` row-major `src_w` wide into `dst`
    /// (`ys.len()` rows of `xs.len()`); `scratch` holds `2 · xs.len()`
    /// floats. Bit-identical to [`crate::resize::bilinear`].
    ///
    /// # Panics
    /// If a tap is outside `src` or a length disagrees.
    pub fn resize_bilinear(
        &self,
        src: &[f32],
        src_w: usize,
        (ys, xs): (&[Tap], &[Tap]),
        dst: &mut [f32],
        scratch: &mut [f32],
    ) {
        dispatch!(self, t => compose::resize_bilinear(t, src, src_w, ys, xs, dst, scratch))
    }
}
