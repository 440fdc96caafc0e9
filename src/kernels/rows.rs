//! The frame around the row operations: the [`RowOps`] trait each level
//! implements on whole vectors, and the drivers every level shares (tails
//! through padded buffers, the softmax forms, LayerNorm, the element-wise
//! bodies each level compiles at its own width).

use super::frame::MAX_LANES;

/// Row and element-wise operations on slices whose length is a multiple of
/// `LANES` (the frame pads the rest).
pub(crate) trait RowOps: Copy {
    /// f32 lanes per vector.
    const LANES: usize;
    /// The ISA part of the kernel names, e.g. `avx2_fma`.
    const NAME: &'static str;
    /// `max(x)`, `-inf` when empty.
    fn max(self, x: &[f32]) -> f32;
    /// `Σ x`.
    fn sum(self, x: &[f32]) -> f32;
    /// `x ← exp(x − sub)`; returns the sum of the new `x`.
    fn exp_sub_sum(self, x: &mut [f32], sub: f32) -> f32;
    /// `x ← x · s`.
    fn scale(self, x: &mut [f32], s: f32);
    /// `Σ (x − mean)²`.
    fn sq_dev_sum(self, x: &[f32], mean: f32) -> f32;
    /// `out = (x − mean) · inv · gamma + beta` (all the same length).
    fn norm_affine(self, x: &[f32], mean: f32, inv: f32, gb: (&[f32], &[f32]), out: &mut [f32]);
    /// `x ← erf(x)`.
    fn erf(self, x: &mut [f32]);
    /// `x ← gelu(x)` (erf form).
    fn gelu(self, x: &mut [f32]);
    /// `out = top · (1 − fy) + bot · fy`, unfused (bit-exact across levels).
    fn lerp(self, top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]);
    /// [`super::quant::act_range`] (any length).
    fn act_range(self, x: &[f32]) -> (f32, f32);
    /// [`super::quant::act_codes`] (any length; `q` as long as `x`).
    fn act_codes(self, x: &[f32], scale: f32, zp: f32, q: &mut [i8]);
    /// `out = a + b` (any length; the three as long).
    fn add(self, a: &[f32], b: &[f32], out: &mut [f32]);
    /// `dst[p][ch] += src[ch][p]` for `src` `c × hw` and `dst` `hw × c`,
    /// row-major (the image embedding from channel-major to pixel-major).
    fn add_transposed(self, src: &[f32], c: usize, hw: usize, dst: &mut [f32]);
    /// [`depthwise_body`].
    fn depthwise(self, x: &[f32], taps: &[f32], bias: &[f32], s: Depthwise, y: &mut [f32]);
}

/// A depthwise k×k convolution's geometry over NHWC f32 (one image): input
/// `h × w × c`, output `oh × ow × c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Depthwise {
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Channels (in and out).
    pub c: usize,
    /// Window side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
    /// Dilation.
    pub dilation: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

/// `y[oy][ox][ch] = bias[ch] + Σ_taps x[iy][ix][ch] · taps[tap][ch]` (taps
/// row-major over the window, `k·k × c`; zero outside the input): per
/// output pixel, the bias, then each tap inside the input added over all
/// channels (one long contiguous loop, which each level compiles at its
/// width). `FMA`: fused multiply-adds (levels with the instruction), else
/// multiply then add.
///
/// # Panics
/// If a slice is shorter than its shape.
#[inline(always)]
pub(crate) fn depthwise_body<const FMA: bool>(
    x: &[f32],
    taps: &[f32],
    bias: &[f32],
    s: Depthwise,
    y: &mut [f32],
) {
    let c = s.c;
    let (x, taps, bias, y) = (
        &x[..s.h * s.w * c],
        &taps[..s.k * s.k * c],
        &bias[..c],
        &mut y[..s.oh * s.ow * c],
    );
    let at = |o: usize, kk: usize| (o * s.stride + kk * s.dilation).checked_sub(s.pad);
    for oy in 0..s.oh {
        for ox in 0..s.ow {
            let out = &mut y[(oy * s.ow + ox) * c..][..c];
            out.copy_from_slice(bias);
            for ky in 0..s.k {
                let Some(iy) = at(oy, ky).filter(|&v| v < s.h) else {
                    continue;
                };
                for kx in 0..s.k {
                    let Some(ix) = at(ox, kx).filter(|&v| v < s.w) else {
                        continue;
                    };
                    let xi = &x[(iy * s.w + ix) * c..][..c];
                    let t = &taps[(ky * s.k + kx) * c..][..c];
                    for ((o, &v), &w) in out.iter_mut().zip(xi).zip(t) {
                        *o = if FMA { v.mul_add(w, *o) } else { *o + v * w };
                    }
                }
            }
        }
    }
}

/// [`RowOps::add`] as plain loops, for each level to compile at its width.
#[inline(always)]
pub(crate) fn add_body(a: &[f32], b: &[f32], out: &mut [f32]) {
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "add: lengths differ"
    );
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = x + y;
    }
}

/// [`RowOps::add_transposed`] as plain loops: 8 × 8 blocks (eight 8-float
/// rows read, eight 8-float rows added), the edges element by element.
#[inline(always)]
pub(crate) fn add_transposed_body(src: &[f32], c: usize, hw: usize, dst: &mut [f32]) {
    const B: usize = 8;
    let (src, dst) = (&src[..c * hw], &mut dst[..c * hw]);
    let (c_full, hw_full) = (c - c % B, hw - hw % B);
    for p0 in (0..hw_full).step_by(B) {
        for ch0 in (0..c_full).step_by(B) {
            let mut block = [[0.0f32; B]; B];
            for (i, row) in block.iter_mut().enumerate() {
                row.copy_from_slice(&src[(ch0 + i) * hw + p0..][..B]);
            }
            for j in 0..B {
                let d = &mut dst[(p0 + j) * c + ch0..][..B];
                for (i, v) in d.iter_mut().enumerate() {
                    *v += block[i][j];
                }
            }
        }
    }
    add_transposed_edges(src, c, hw, dst, (c_full, hw_full));
}

/// The part of [`RowOps::add_transposed`] outside the whole blocks: channels
/// from `c_full` on for the pixels below `hw_full`, every channel above.
pub(crate) fn add_transposed_edges(
    src: &[f32],
    c: usize,
    hw: usize,
    dst: &mut [f32],
    (c_full, hw_full): (usize, usize),
) {
    for p in 0..hw {
        let chs = if p < hw_full { c_full..c } else { 0..c };
        for ch in chs {
            dst[p * c + ch] += src[ch * hw + p];
        }
    }
}

/// Splits `len` into the part made of full `lanes` and the rest.
fn split(len: usize, lanes: usize) -> usize {
    len - len % lanes
}

/// Applies `f` to `x`, the tail through a buffer padded with `pad`.
fn map_padded<K: RowOps>(x: &mut [f32], pad: f32, f: impl Fn(&mut [f32])) {
    let body = split(x.len(), K::LANES);
    f(&mut x[..body]);
    let tail = &mut x[body..];
    if !tail.is_empty() {
        let mut buf = [pad; MAX_LANES];
        buf[..tail.len()].copy_from_slice(tail);
        f(&mut buf[..K::LANES]);
        tail.copy_from_slice(&buf[..tail.len()]);
    }
}

/// Reduces `x` with `f` (body, then the tail padded with `pad`) and `+`/`max`.
fn reduce_padded<K: RowOps>(
    x: &[f32],
    pad: f32,
    f: impl Fn(&[f32]) -> f32,
    join: fn(f32, f32) -> f32,
) -> f32 {
    let body = split(x.len(), K::LANES);
    let mut acc = f(&x[..body]);
    let tail = &x[body..];
    if !tail.is_empty() {
        let mut buf = [pad; MAX_LANES];
        buf[..tail.len()].copy_from_slice(tail);
        acc = join(acc, f(&buf[..K::LANES]));
    }
    acc
}

/// Softmax over each `row_len` row of `x`, in place, max-subtracted.
pub(crate) fn softmax_rows<K: RowOps>(kern: K, x: &mut [f32], row_len: usize) {
    if x.is_empty() {
        return;
    }
    assert!(
        row_len > 0 && x.len().is_multiple_of(row_len),
        "softmax: x is not rows × row_len"
    );
    if row_len < K::LANES {
        return softmax_short_rows(kern, x, row_len);
    }
    for row in x.chunks_exact_mut(row_len) {
        let max = reduce_padded::<K>(row, f32::NEG_INFINITY, |v| kern.max(v), f32::max);
        let body = split(row.len(), K::LANES);
        let mut sum = kern.exp_sub_sum(&mut row[..body], max);
        let tail = &mut row[body..];
        if !tail.is_empty() {
            let mut buf = [f32::NEG_INFINITY; MAX_LANES];
            buf[..tail.len()].copy_from_slice(tail);
            sum += kern.exp_sub_sum(&mut buf[..K::LANES], max);
            tail.copy_from_slice(&buf[..tail.len()]);
        }
        let inv = 1.0 / sum;
        map_padded::<K>(row, 0.0, |v| kern.scale(v, inv));
    }
}

/// Softmax of rows shorter than a vector (the image → token attention:
/// rows of a handful of tokens): per row the max is subtracted and the sum
/// taken in scalar code, and the exponentials run over the whole buffer in
/// one vector pass, instead of one padded vector call per row.
fn softmax_short_rows<K: RowOps>(kern: K, x: &mut [f32], row_len: usize) {
    for row in x.chunks_exact_mut(row_len) {
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        row.iter_mut().for_each(|v| *v -= max);
    }
    map_padded::<K>(x, f32::NEG_INFINITY, |v| {
        kern.exp_sub_sum(v, 0.0);
    });
    for row in x.chunks_exact_mut(row_len) {
        let inv = 1.0 / row.iter().sum::<f32>();
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

/// Softmax over interleaved groups: each row of `x` holds `groups × lanes`
/// values, entry `(g, l)` at `g·lanes + l`, and each of its `lanes`
/// softmaxes runs over `g` (the image → token attention with the scores'
/// columns ordered (token, head): one softmax per head over a handful of
/// tokens). Maxima, sums and scaling run across the lanes, the
/// exponentials over the whole buffer in one vector pass.
pub(crate) fn softmax_interleaved<K: RowOps>(kern: K, x: &mut [f32], groups: usize, lanes: usize) {
    let row = groups * lanes;
    assert!(
        row > 0 && x.len().is_multiple_of(row),
        "softmax_interleaved: x is not rows × groups × lanes"
    );
    match lanes {
        8 => interleaved_rows::<K, 8>(kern, x, groups),
        16 => interleaved_rows::<K, 16>(kern, x, groups),
        _ => {
            // any other width: one lane at a time
            for r in x.chunks_exact_mut(row) {
                for l in 0..lanes {
                    let max = (0..groups).fold(f32::NEG_INFINITY, |m, g| m.max(r[g * lanes + l]));
                    (0..groups).for_each(|g| r[g * lanes + l] -= max);
                }
            }
            exp_all(kern, x);
            for r in x.chunks_exact_mut(row) {
                for l in 0..lanes {
                    let inv = 1.0 / (0..groups).map(|g| r[g * lanes + l]).sum::<f32>();
                    (0..groups).for_each(|g| r[g * lanes + l] *= inv);
                }
            }
        }
    }
}

/// [`softmax_interleaved`] for `L` lanes (fixed-size arrays the compiler
/// keeps in vector registers).
fn interleaved_rows<K: RowOps, const L: usize>(kern: K, x: &mut [f32], groups: usize) {
    let row = groups * L;
    for r in x.chunks_exact_mut(row) {
        let mut max = [f32::NEG_INFINITY; L];
        for g in r.chunks_exact(L) {
            max.iter_mut().zip(g).for_each(|(m, &v)| *m = m.max(v));
        }
        for g in r.chunks_exact_mut(L) {
            g.iter_mut().zip(&max).for_each(|(v, &m)| *v -= m);
        }
    }
    exp_all(kern, x);
    for r in x.chunks_exact_mut(row) {
        let mut sum = [0.0f32; L];
        for g in r.chunks_exact(L) {
            sum.iter_mut().zip(g).for_each(|(s, &v)| *s += v);
        }
        let inv = sum.map(|s| 1.0 / s);
        for g in r.chunks_exact_mut(L) {
            g.iter_mut().zip(&inv).for_each(|(v, &i)| *v *= i);
        }
    }
}

/// `x ← exp(x)` over the whole buffer.
fn exp_all<K: RowOps>(kern: K, x: &mut [f32]) {
    map_padded::<K>(x, f32::NEG_INFINITY, |v| {
        kern.exp_sub_sum(v, 0.0);
    });
}

/// The numerators of a softmax down the columns of row-major `x` (`rows ×
/// cols`): `x[i][j] ← exp(x[i][j] − max_i x[i][j])`, and `sums[j]` their
/// column sums (dividing column `j` by `sums[j]` completes the softmax; a
/// product with `x` may divide its result instead). The maxima and sums run
/// along the rows, vectorized across the columns.
pub(crate) fn exp_columns<K: RowOps>(kern: K, x: &mut [f32], cols: usize, sums: &mut [f32]) {
    assert!(
        cols > 0 && x.len().is_multiple_of(cols),
        "exp_columns: x is not rows × cols"
    );
    let sums = &mut sums[..cols];
    sums.fill(f32::NEG_INFINITY);
    for row in x.chunks_exact(cols) {
        sums.iter_mut().zip(row).for_each(|(m, &v)| *m = m.max(v));
    }
    for row in x.chunks_exact_mut(cols) {
        row.iter_mut().zip(&*sums).for_each(|(v, &m)| *v -= m);
    }
    map_padded::<K>(x, f32::NEG_INFINITY, |v| {
        kern.exp_sub_sum(v, 0.0);
    });
    sums.fill(0.0);
    for row in x.chunks_exact(cols) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v);
    }
}

/// LayerNorm over each `gamma.len()` row of `x` into `out`.
pub(crate) fn layer_norm<K: RowOps>(
    kern: K,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    let dim = gamma.len();
    assert_eq!(
        beta.len(),
        dim,
        "layer_norm: gamma and beta differ in length"
    );
    assert_eq!(out.len(), x.len(), "layer_norm: out and x differ in length");
    if x.is_empty() {
        return;
    }
    assert!(
        dim > 0 && x.len().is_multiple_of(dim),
        "layer_norm: x is not rows × dim"
    );
    if dim < K::LANES {
        // rows shorter than a vector (LayerNorm2d of the mask downscaling:
        // 4 channels): plain code, instead of padded vector calls per row
        for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let mean = row.iter().sum::<f32>() / dim as f32;
            let ss: f32 = row.iter().map(|&v| (v - mean) * (v - mean)).sum();
            let inv = 1.0 / (ss / dim as f32 + eps).sqrt();
            for (((d, &v), &g), &b) in dst.iter_mut().zip(row).zip(gamma).zip(beta) {
                *d = (v - mean) * inv * g + b;
            }
        }
        return;
    }
    for (row, dst) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let sum = reduce_padded::<K>(row, 0.0, |v| kern.sum(v), |a, b| a + b);
        let mean = sum / dim as f32;
        let ss = reduce_padded::<K>(row, mean, |v| kern.sq_dev_sum(v, mean), |a, b| a + b);
        let inv = 1.0 / (ss / dim as f32 + eps).sqrt();
        let body = split(dim, K::LANES);
        kern.norm_affine(
            &row[..body],
            mean,
            inv,
            (&gamma[..body], &beta[..body]),
            &mut dst[..body],
        );
        let t = dim - body;
        if t > 0 {
            let mut bufs = [[0.0f32; MAX_LANES]; 4];
            bufs[0][..t].copy_from_slice(&row[body..]);
            bufs[1][..t].copy_from_slice(&gamma[body..]);
            bufs[2][..t].copy_from_slice(&beta[body..]);
            let [xs, g, b, o] = &mut bufs;
            let l = K::LANES;
            kern.norm_affine(&xs[..l], mean, inv, (&g[..l], &b[..l]), &mut o[..l]);
            dst[body..].copy_from_slice(&o[..t]);
        }
    }
}

/// `x ← erf(x)`.
pub(crate) fn erf<K: RowOps>(kern: K, x: &mut [f32]) {
    map_padded::<K>(x, 0.0, |v| kern.erf(v));
}

/// `x ← gelu(x)`.
pub(crate) fn gelu<K: RowOps>(kern: K, x: &mut [f32]) {
    map_padded::<K>(x, 0.0, |v| kern.gelu(v));
}

/// `out = top · (1 − fy) + bot · fy` over whole rows.
pub(crate) fn lerp<K: RowOps>(kern: K, top: &[f32], bot: &[f32], fy: f32, out: &mut [f32]) {
    let body = split(out.len(), K::LANES);
    kern.lerp(&top[..body], &bot[..body], fy, &mut out[..body]);
    let t = out.len() - body;
    if t > 0 {
        let mut bufs = [[0.0f32; MAX_LANES]; 3];
        bufs[0][..t].copy_from_slice(&top[body..]);
        bufs[1][..t].copy_from_slice(&bot[body..]);
        let [tb, bb, ob] = &mut bufs;
        let l = K::LANES;
        kern.lerp(&tb[..l], &bb[..l], fy, &mut ob[..l]);
        out[body..].copy_from_slice(&ob[..t]);
    }
}
