//! Operations built from the kernels rather than kernels of their own: the
//! bilinear resize (scalar horizontal taps, SIMD vertical blend) and the 2×2
//! stride-2 transposed convolution (transpose, GEMM, scatter).

use super::frame::{self, F32Gemm};
use super::pack::ConvTranspose2x2;
use super::rows::{self, RowOps};
use crate::resize::Tap;

/// Bilinear resize with [`crate::resize::bilinear`]'s taps and arithmetic:
/// each needed source row is resampled horizontally once (into `scratch`,
/// two rows of `xs.len()`), then rows are blended vertically by `kern`.
/// Bit-identical to [`crate::resize::bilinear`] with `value = |v| v`.
pub(crate) fn resize_bilinear<K: RowOps>(
    kern: K,
    src: &[f32],
    src_w: usize,
    ys: &[Tap],
    xs: &[Tap],
    dst: &mut [f32],
    scratch: &mut [f32],
) {
    let dst_w = xs.len();
    assert_eq!(dst.len(), ys.len() * dst_w, "resize: dst is not ys × xs");
    assert!(
        scratch.len() >= 2 * dst_w,
        "resize: scratch shorter than 2 rows"
    );
    assert!(
        xs.iter().all(|t| t.i0 < src_w && t.i1 < src_w),
        "resize: x tap outside the row"
    );
    if dst_w == 0 {
        return;
    }
    let (h0, rest) = scratch.split_at_mut(dst_w);
    let mut halves = [h0, &mut rest[..dst_w]];
    let mut cached: [Option<usize>; 2] = [None, None];
    for (out, ty) in dst.chunks_exact_mut(dst_w).zip(ys) {
        let keep = cached.iter().position(|&c| c == Some(ty.i1));
        let s0 = slot(&mut cached, ty.i0, keep);
        let s1 = slot(&mut cached, ty.i1, Some(s0.0));
        for ((s, fill), y) in [(s0, ty.i0), (s1, ty.i1)] {
            if fill {
                horizontal(&src[y * src_w..][..src_w], xs, halves[s]);
            }
        }
        let [a, b] = &mut halves;
        let (top, bot) = match (s0.0, s1.0) {
            (0, 1) => (&**a, &**b),
            (1, 0) => (&**b, &**a),
            (0, _) => (&**a, &**a),
            _ => (&**b, &**b),
        };
        rows::lerp(kern, top, bot, ty.frac, out);
    }
    /// The slot holding `row`, or one filled with it (not `keep`).
    fn slot(cached: &mut [Option<usize>; 2], row: usize, keep: Option<usize>) -> (usize, bool) {
        if let Some(s) = cached.iter().position(|&c| c == Some(row)) {
            return (s, false);
        }
        let s = if keep == Some(0) { 1 } else { 0 };
        cached[s] = Some(row);
        (s, true)
    }
}

/// One source row resampled through the x taps, in `resize`'s order.
fn horizontal(row: &[f32], xs: &[Tap], out: &mut [f32]) {
    for (o, t) in out.iter_mut().zip(xs) {
        *o = row[t.i0] * (1.0 - t.frac) + row[t.i1] * t.frac;
    }
}

/// `ConvTranspose2d(kernel 2, stride 2)` on one NCHW image `input[c_in][h][w]`
/// into `out[c_out][2h][2w]`: as a GEMM `(h·w) × c_in · c_in × (c_out·4)`
/// over the transposed input, then each output pixel scattered to
/// `(co, 2y + dy, 2x + dx)`.
pub(crate) fn conv_transpose_2x2<K: F32Gemm>(
    kern: K,
    conv: &ConvTranspose2x2,
    input: &[f32],
    (h, w): (usize, usize),
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let (c_in, c_out, hw) = (conv.c_in(), conv.c_out(), h * w);
    assert_eq!(
        input.len(),
        c_in * hw,
        "conv_transpose_2x2: input is not c_in×h×w"
    );
    assert_eq!(
        out.len(),
        c_out * 4 * hw,
        "conv_transpose_2x2: out is not c_out×2h×2w"
    );
    assert!(
        scratch.len() >= conv.scratch_len(h, w),
        "conv_transpose_2x2: scratch too short"
    );
    let (at, rest) = scratch.split_at_mut(hw * c_in);
    let g = &mut rest[..hw * 4 * c_out];
    for (ci, plane) in input.chunks_exact(hw.max(1)).enumerate().take(c_in) {
        for (pos, &v) in plane.iter().enumerate() {
            at[pos * c_in + ci] = v;
        }
    }
    frame::gemm_f32(kern, hw, at, &conv.weight, Some(&conv.bias), g, false);
    let n = 4 * c_out;
    for co in 0..c_out {
        let plane = &mut out[co * 4 * hw..][..4 * hw];
        for y in 0..h {
            for dy in 0..2 {
                let dst = &mut plane[(2 * y + dy) * 2 * w..][..2 * w];
                for x in 0..w {
                    let src = &g[(y * w + x) * n + co * 4 + dy * 2..][..2];
                    dst[2 * x..2 * x + 2].copy_from_slice(src);
                }
            }
        }
    }
}
