//! The scalar kernels: the reference every SIMD level is tested against, and
//! the fallback where no SIMD level runs. Plain safe Rust, the simplest
//! summation order (sequential in `k` and along rows).

use super::frame::{f32_tile_fits, i8_tile_fits, F32Gemm, I8Gemm, StridedA, MAX_MR};
use super::math;
use super::pack::{KB, NR};
use super::quant;
use super::rows::{self, RowOps};

/// The scalar level's token (it needs no detection).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scalar;

impl F32Gemm for Scalar {
    const MR: usize = 4;
    const NAME: &'static str = "scalar_gemm_f32_4x16";

    fn tile(
        self,
        rows: usize,
        k: usize,
        a: StridedA<'_>,
        (b, ldb): (&[f32], usize),
        c: &mut [f32],
        ldc: usize,
        bias: Option<&[f32; NR]>,
        accumulate: bool,
    ) {
        let fits = f32_tile_fits(
            <Self as F32Gemm>::MR,
            rows,
            k,
            &a,
            (b.len(), ldb),
            (c.len(), ldc),
        );
        assert!(fits, "scalar gemm_f32 tile out of bounds");
        for r in 0..rows {
            let mut acc = [0.0f32; NR];
            for p in 0..k {
                let av = a.data[r * a.rs + p * a.cs];
                for (s, &bv) in acc.iter_mut().zip(&b[p * ldb..][..NR]) {
                    *s += av * bv;
                }
            }
            let dst = &mut c[r * ldc..][..NR];
            for j in 0..NR {
                let v = acc[j] + bias.map_or(0.0, |b| b[j]);
                dst[j] = if accumulate { dst[j] + v } else { v };
            }
        }
    }
}

impl I8Gemm for Scalar {
    const MR: usize = 4;
    const GROUP: usize = 1;
    const NAME: &'static str = "scalar_gemm_i8_4x16";

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
        assert!(fits, "scalar gemm_i8 tile out of bounds");
        for r in 0..rows {
            let mut acc = [0i32; NR];
            for b in 0..kb {
                let block = if b < kb_full {
                    &a[r * lda + b * KB..][..KB]
                } else {
                    &tail[r * KB..][..KB]
                };
                for (q, &av) in block.iter().enumerate() {
                    let row = &panel[(b * KB + q) * NR..][..NR];
                    for (s, &bv) in acc.iter_mut().zip(row) {
                        *s += i32::from(av) * i32::from(bv);
                    }
                }
            }
            out[r * NR..][..NR].copy_from_slice(&acc);
        }
    }
}

impl RowOps for Scalar {
    const LANES: usize = 1;
    const NAME: &'static str = "scalar";

    fn max(self, x: &[f32]) -> f32 {
        x.iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }

    fn sum(self, x: &[f32]) -> f32 {
        x.iter().sum()
    }

    fn exp_sub_sum(self, x: &mut [f32], sub: f32) -> f32 {
        let mut sum = 0.0;
        for v in x {
            *v = math::exp(*v - sub);
            sum += *v;
        }
        sum
    }

    fn scale(self, x: &mut [f32], s: f32) {
        x.iter_mut().for_each(|v| *v *= s);
    }

    fn sq_dev_sum(self, x: &[f32], mean: f32) -> f32 {
        x.iter().map(|&v| (v - mean) * (v - mean)).sum()
    }

    fn norm_affine(self, x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]) {
        let (gamma, beta) = gb;
        for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gamma).zip(beta) {
            *o = (v - mean) * inv * g + b;
        }
    }

    fn erf(self, x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = math::erf(*v));
    }

    fn gelu(self, x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = math::gelu(*v));
    }

    fn lerp(self, top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]) {
        for ((o, &t), &b) in out.iter_mut().zip(top).zip(bot) {
            *o = t * (1.0 - fy) + b * fy;
        }
    }

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

    fn depthwise(self, x: &[f32], taps: &[f32], bias: &[f32], s: rows::Depthwise, y: &mut [f32]) {
        rows::depthwise_body::<false>(x, taps, bias, s, y)
    }
}
