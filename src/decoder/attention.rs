//! SAM's `Attention`: q, k, v projections, [`NUM_HEADS`] heads of
//! `softmax(q·kᵀ / √d)·v`, out projection, on the kernels' GEMMs.
//!
//! The cross attentions put a handful of tokens (`T` = 1 + masks + points)
//! against `E·E` image rows. With f32 weights, when `heads · T` is at most
//! the internal dim, the projections on the image side are folded into the
//! small side instead of being applied to every image row (the products
//! reassociated; the same arithmetic up to rounding):
//!
//! - tokens → image: `q_h·(X W_k,h + b_k,h)ᵀ = (q_h W_k,hᵀ)·Xᵀ + (a per-row
//!   constant that softmax removes)`, and `P_h·(Y W_v,h + b_v,h) = (P_h·Y)
//!   W_v,h + b_v,h` (rows of `P_h` sum to 1): two `8T × C × E·E` GEMMs
//!   instead of the `E·E × C × C/2` k and v projections.
//! - image → tokens: `(X W_q,h + b_q,h)·k_hᵀ = X·(W_q,h k_hᵀ) + b_q,h k_hᵀ`
//!   and `Σ_h P_h v_h W_out,h = P·[v_h W_out,h]_h`: two `E·E × C × 8T` GEMMs
//!   instead of the q and out projections.
//!
//! int8 layers keep the graph's form (projections on quantized inputs), as
//! do the token self-attention and calls with more tokens; in a cross
//! attention their heads run together, the few side spread
//! block-diagonally ([`all_heads`]).
//!
//! Tokens → image (both forms) runs its softmax down the columns of the
//! scores as the GEMM wrote them (`E·E × 8T`) and reads both operands of
//! `P·V` in place ([`Kernels::gemm_f32_strided`]: `P` transposed, the
//! values unpacked); image → tokens orders its `8T` score columns (token,
//! head), so each head's softmax over the tokens runs across the heads
//! ([`Kernels::softmax_interleaved`]). The small operands are repacked into
//! buffers sized at load ([`PackedB::repack_rows`],
//! [`PackedB::repack_transposed`]): a call allocates nothing.

use crate::kernels::{Kernels, PackedB, StridedA, NR};

use super::linear::Linear;
use super::weights::Loader;
use super::{DecoderError, NUM_HEADS};

/// `Attention(C, heads, downsample_rate)`.
#[derive(Debug, Clone)]
pub(crate) struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    internal: usize,
    absorbed: Option<Absorbed>,
}

/// f32 weights rearranged for the absorbed products.
#[derive(Debug, Clone)]
struct Absorbed {
    /// Per head `W_k,hᵀ` (`dh × C`).
    k_t: Vec<PackedB>,
    /// Per head `W_v,h` (`C × dh`).
    v: Vec<PackedB>,
    /// `W_qᵀ`, row-major `ci × C`.
    q_t: Vec<f32>,
    /// `W_out`, row-major `ci × C` (`y = x · W_out`).
    out: Vec<f32>,
}

impl Absorbed {
    fn new(q: &Linear, k: &Linear, v: &Linear, out: &Linear) -> Option<Absorbed> {
        let (wq, wk, wv, wo) = (
            q.f32_weight()?,
            k.f32_weight()?,
            v.f32_weight()?,
            out.f32_weight()?,
        );
        let (c, ci) = (wq.k(), wq.n());
        let dh = ci / NUM_HEADS;
        let heads = 0..NUM_HEADS;
        Some(Absorbed {
            k_t: heads
                .clone()
                .map(|h| {
                    let mut b = PackedB::zeros(dh, c);
                    b.repack_with(dh, c, |d, p| wk.get(p, h * dh + d));
                    b
                })
                .collect(),
            v: heads
                .map(|h| {
                    let mut b = PackedB::zeros(c, dh);
                    b.repack_with(c, dh, |p, d| wv.get(p, h * dh + d));
                    b
                })
                .collect(),
            q_t: (0..ci * c).map(|i| wq.get(i % c, i / c)).collect(),
            out: (0..ci * wo.n())
                .map(|i| wo.get(i / wo.n(), i % wo.n()))
                .collect(),
        })
    }
}

impl Attention {
    pub fn load(l: &Loader, path: &str, c: usize) -> Result<Attention, DecoderError> {
        let q = l.linear(&format!("{path}.q_proj"), c, None)?;
        let internal = q.n();
        if internal == 0 || internal % NUM_HEADS != 0 || internal > c {
            return Err(l.missing(
                &format!("{path}.q_proj.bias"),
                format!("f32 [d] with d ≤ {c} a multiple of {NUM_HEADS} heads"),
                format!("found {internal} values"),
            ));
        }
        let k = l.linear(&format!("{path}.k_proj"), c, Some(internal))?;
        let v = l.linear(&format!("{path}.v_proj"), c, Some(internal))?;
        let out = l.linear(&format!("{path}.out_proj"), internal, Some(c))?;
        Ok(Attention {
            absorbed: Absorbed::new(&q, &k, &v, &out),
            q,
            k,
            v,
            out,
            internal,
        })
    }
}

/// Buffers of one attention call.
#[derive(Debug, Clone)]
pub(crate) struct AttnScratch {
    qp: Vec<f32>,
    kp: Vec<f32>,
    vp: Vec<f32>,
    heads: Vec<f32>,
    scores: Vec<f32>,
    /// Quantized activations (also the MLP's).
    pub q8: Vec<i8>,
    /// One head's queries and output, contiguous (`tq × dh`).
    q_head: Vec<f32>,
    o_head: Vec<f32>,
    /// One head's `kᵀ` (`dh × tk`) and `v` (`tk × dh`), packed.
    k_packed: PackedB,
    v_packed: PackedB,
    /// Absorbed form: `8T × C` products of the small side.
    mixed: Vec<f32>,
    /// Absorbed tokens → image: the scores as computed, `E·E × 8T` (`8T`
    /// padded to a multiple of [`NR`] with zero columns), then the softmax
    /// numerators in place; `col_sums` their sums.
    scores_t: Vec<f32>,
    col_sums: Vec<f32>,
    /// Absorbed: `(q_h W_k,hᵀ)ᵀ` or `W_q,h k_hᵀ` (`C × 8T`), and `v_h
    /// W_out,h` (`8T × C`), packed.
    tok_a: PackedB,
    tok_b: PackedB,
    bias: Vec<f32>,
}

impl AttnScratch {
    /// For embedding dim `c`, up to `t` tokens, `hw` pixels, MLP width `mlp`.
    pub fn new(c: usize, t: usize, hw: usize, mlp: usize) -> AttnScratch {
        let rows = t.max(hw);
        // every attention's internal dim is at most C (checked at load)
        let dh = c.div_ceil(NUM_HEADS);
        let th = NUM_HEADS * t;
        let th_pad = th.next_multiple_of(NR);
        AttnScratch {
            qp: vec![0.0; rows * c],
            kp: vec![0.0; rows * c],
            vp: vec![0.0; rows * c],
            heads: vec![0.0; rows * c],
            scores: vec![0.0; (t * rows).max(th * hw)],
            q8: vec![0; (rows * c).max(t * mlp)],
            q_head: vec![0.0; rows * dh],
            o_head: vec![0.0; rows * dh],
            k_packed: PackedB::zeros(dh, rows),
            v_packed: PackedB::zeros(rows, dh),
            mixed: vec![0.0; th_pad * c],
            scores_t: vec![0.0; th_pad * hw],
            col_sums: vec![0.0; th_pad],
            tok_a: PackedB::zeros(c, th_pad),
            tok_b: PackedB::zeros(th, c),
            bias: vec![0.0; th],
        }
    }
}

/// `Attention.forward(q, k, v)`: `q` is `tq × C`, `k` and `v` are `tk × C`;
/// `out` gets `tq × C`.
pub(crate) fn attention(
    kern: &Kernels,
    a: &Attention,
    (tq, q): (usize, &[f32]),
    (tk, k, v): (usize, &[f32], &[f32]),
    out: &mut [f32],
    s: &mut AttnScratch,
) {
    if let Some(ab) = &a.absorbed {
        if NUM_HEADS * tq <= a.internal && tk > tq {
            return tokens_to_image(kern, a, ab, (tq, q), (tk, k, v), out, s);
        }
        if NUM_HEADS * tk <= a.internal && tq > tk {
            return image_to_tokens(kern, a, ab, (tq, q), (tk, k, v), out, s);
        }
    }
    let ci = a.internal;
    let dh = ci / NUM_HEADS;
    let (qp, kp, vp) = (
        &mut s.qp[..tq * ci],
        &mut s.kp[..tk * ci],
        &mut s.vp[..tk * ci],
    );
    a.q.forward(kern, tq, q, &mut s.q8, qp);
    a.k.forward(kern, tk, k, &mut s.q8, kp);
    a.v.forward(kern, tk, v, &mut s.q8, vp);
    if NUM_HEADS * tq.min(tk) <= ci && tq != tk {
        return all_heads(kern, a, tq, tk, out, s);
    }
    let heads = &mut s.heads[..tq * ci];
    let scores = &mut s.scores[..tq * tk];
    let (q_head, o_head) = (&mut s.q_head[..tq * dh], &mut s.o_head[..tq * dh]);
    let inv_scale = 1.0 / (dh as f32).sqrt();
    for h in 0..NUM_HEADS {
        let col = h * dh;
        // 1/√d applied to the queries, before the product
        for (d, row) in q_head.chunks_exact_mut(dh).zip(qp.chunks_exact(ci)) {
            d.iter_mut()
                .zip(&row[col..][..dh])
                .for_each(|(d, &x)| *d = x * inv_scale);
        }
        s.k_packed.repack_transposed(&kp[col..], ci, dh, tk);
        kern.gemm_f32(tq, q_head, &s.k_packed, None, scores);
        kern.softmax_rows(scores, tk);
        s.v_packed.repack_rows(&vp[col..], ci, tk, dh);
        kern.gemm_f32(tq, scores, &s.v_packed, None, o_head);
        for (row, o) in heads.chunks_exact_mut(ci).zip(o_head.chunks_exact(dh)) {
            row[col..][..dh].copy_from_slice(o);
        }
    }
    a.out
        .forward(kern, tq, heads, &mut s.q8, &mut out[..tq * a.out.n()]);
}

/// The heads of a cross attention with projections as the graph has them
/// (int8 layers), all at once: the few side's rows spread block-diagonally
/// (row `(h, i)` holds its head's `dh` values in the head's columns, zeros
/// elsewhere), so each product is one GEMM with the image side's projected
/// rows as `A` or as one row-copy pack, instead of `NUM_HEADS` GEMMs with
/// `k = dh` and a transposed pack of each head's keys. The zeros cost
/// `NUM_HEADS`× the multiplies of the per-head products (small: the few
/// side has `≤ C / NUM_HEADS` rows), in GEMMs that run near peak.
fn all_heads(
    kern: &Kernels,
    a: &Attention,
    tq: usize,
    tk: usize,
    out: &mut [f32],
    s: &mut AttnScratch,
) {
    let ci = a.internal;
    let dh = ci / NUM_HEADS;
    let inv_scale = 1.0 / (dh as f32).sqrt();
    let (qp, kp, vp) = (&s.qp[..tq * ci], &s.kp[..tk * ci], &s.vp[..tk * ci]);
    let heads = &mut s.heads[..tq * ci];
    // `spread(x, t, row)`: the `t × ci` rows of `x` as `(NUM_HEADS·t) × ci`
    // block-diagonal rows, times `scale`: row `row(h, i)` holds head `h` of
    // row `i` in its head's columns, zeros elsewhere
    let spread = |x: &[f32],
                  t: usize,
                  scale: f32,
                  row: fn(usize, usize, usize) -> usize,
                  dst: &mut [f32]| {
        let dst = &mut dst[..NUM_HEADS * t * ci];
        dst.fill(0.0);
        for h in 0..NUM_HEADS {
            for i in 0..t {
                dst[row(h, i, t) * ci + h * dh..][..dh]
                    .iter_mut()
                    .zip(&x[i * ci + h * dh..][..dh])
                    .for_each(|(d, &v)| *d = v * scale);
            }
        }
    };
    if tq < tk {
        // few queries: scoresᵀ = K · Q_bdᵀ (`tk × 8tq`, rows (h, i), padded
        // with zero columns to whole panels), the softmax down its columns,
        // then R = P · V with P read transposed and V in place (`8tq × ci`),
        // divided by the softmax sums: its diagonal blocks are the heads
        let th = NUM_HEADS * tq;
        let th_pad = th.next_multiple_of(NR);
        let mixed = &mut s.mixed[..th_pad * ci];
        mixed[th * ci..].fill(0.0);
        spread(qp, tq, inv_scale, |h, i, t| h * t + i, mixed);
        s.tok_a.repack_transposed(mixed, ci, ci, th_pad);
        let mixed = &mut mixed[..th * ci];
        let buffers = (&mut *s.scores_t, &mut *s.col_sums);
        columns_attention(kern, &s.tok_a, (tk, kp), (vp, ci), th, buffers, mixed);
        for (r, row) in mixed.chunks_exact(ci).enumerate() {
            let (h, i) = (r / tq, r % tq);
            heads[i * ci + h * dh..][..dh].copy_from_slice(&row[h * dh..][..dh]);
        }
    } else {
        // few keys: scores = Q · K_bdᵀ (`tq × 8tk`, columns (i, h): each
        // head's softmax over the keys runs across the heads), heads = P ·
        // V_bd
        let th = NUM_HEADS * tk;
        let mixed = &mut s.mixed[..th * ci];
        let token_major = |h, i, _| i * NUM_HEADS + h;
        spread(kp, tk, inv_scale, token_major, mixed);
        s.tok_a.repack_transposed(mixed, ci, ci, th);
        let scores = &mut s.scores[..tq * th];
        kern.gemm_f32(tq, qp, &s.tok_a, None, scores);
        kern.softmax_interleaved(scores, tk, NUM_HEADS);
        spread(vp, tk, 1.0, token_major, mixed);
        s.tok_b.repack_rows(mixed, ci, th, ci);
        kern.gemm_f32(tq, scores, &s.tok_b, None, heads);
    }
    a.out
        .forward(kern, tq, heads, &mut s.q8, &mut out[..tq * a.out.n()]);
}

/// Few queries, many keys: the k and v projections folded into the queries.
fn tokens_to_image(
    kern: &Kernels,
    a: &Attention,
    ab: &Absorbed,
    (tq, q): (usize, &[f32]),
    (tk, k, v): (usize, &[f32], &[f32]),
    out: &mut [f32],
    s: &mut AttnScratch,
) {
    let (c, ci) = (a.k.k(), a.internal);
    let dh = ci / NUM_HEADS;
    let th = NUM_HEADS * tq;
    let qp = &mut s.qp[..tq * ci];
    a.q.forward(kern, tq, q, &mut s.q8, qp);
    // rows (h, i): q_h[i] · W_k,hᵀ
    let mixed = &mut s.mixed[..th * c];
    let q_head = &mut s.q_head[..tq * dh];
    let inv_scale = 1.0 / (dh as f32).sqrt();
    for (h, m) in mixed.chunks_exact_mut(tq * c).enumerate() {
        // 1/√d applied to the queries, before the products
        for (d, row) in q_head.chunks_exact_mut(dh).zip(qp.chunks_exact(ci)) {
            d.iter_mut()
                .zip(&row[h * dh..][..dh])
                .for_each(|(d, &x)| *d = x * inv_scale);
        }
        kern.gemm_f32(tq, q_head, &ab.k_t[h], None, m);
    }
    // scoresᵀ = X · mixedᵀ: the image rows are the GEMM's `A` as they
    // are (no packing of the 4096 × C keys), the small side is packed, its
    // rows padded with zeros to whole panels (`th_pad` columns of scores)
    let th_pad = th.next_multiple_of(NR);
    s.mixed[th * c..th_pad * c].fill(0.0);
    s.tok_a
        .repack_transposed(&s.mixed[..th_pad * c], c, c, th_pad);
    // rows (h, i): P_h[i] · Y, then · W_v,h + b_v,h
    let mixed = &mut s.mixed[..th * c];
    let buffers = (&mut *s.scores_t, &mut *s.col_sums);
    columns_attention(
        kern,
        &s.tok_a,
        (tk, &k[..tk * c]),
        (&v[..tk * c], c),
        th,
        buffers,
        mixed,
    );
    let heads = &mut s.heads[..tq * ci];
    let o_head = &mut s.o_head[..tq * dh];
    for (h, m) in mixed.chunks_exact(tq * c).enumerate() {
        let bias = &a.v.bias()[h * dh..][..dh];
        kern.gemm_f32(tq, m, &ab.v[h], Some(bias), o_head);
        for (row, o) in heads.chunks_exact_mut(ci).zip(o_head.chunks_exact(dh)) {
            row[h * dh..][..dh].copy_from_slice(o);
        }
    }
    a.out
        .forward(kern, tq, heads, &mut s.q8, &mut out[..tq * a.out.n()]);
}

/// The many-keys side of tokens → image, for `th` query rows packed in
/// `tok_a` (`C × th_pad`, zero columns from `th` to the next whole panel):
/// the scores `scoresᵀ = keys · tok_a` (`tk × th_pad`, the keys' rows as
/// the GEMM's `A` as they are), the softmax numerators down its columns,
/// then `out = P · values` (`th × n`) with `P` read transposed in place and
/// the values (`tk × n`, row-major) unpacked, each row divided by its
/// softmax sum.
fn columns_attention(
    kern: &Kernels,
    tok_a: &PackedB,
    (tk, keys): (usize, &[f32]),
    (values, n): (&[f32], usize),
    th: usize,
    (scores_t, sums): (&mut [f32], &mut [f32]),
    out: &mut [f32],
) {
    let th_pad = tok_a.n();
    let scores_t = &mut scores_t[..tk * th_pad];
    kern.gemm_f32(tk, keys, tok_a, None, scores_t);
    let sums = &mut sums[..th_pad];
    kern.exp_columns(scores_t, th_pad, sums);
    let p = StridedA {
        data: scores_t,
        rs: 1,
        cs: th_pad,
    };
    let out = &mut out[..th * n];
    kern.gemm_f32_strided((th, tk, n), p, (&values[..tk * n], n), out);
    for (row, &sum) in out.chunks_exact_mut(n).zip(&*sums) {
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|x| *x *= inv);
    }
}

/// Many queries, few keys: the q and out projections folded into the keys
/// and values.
fn image_to_tokens(
    kern: &Kernels,
    a: &Attention,
    ab: &Absorbed,
    (tq, q): (usize, &[f32]),
    (tk, k, v): (usize, &[f32], &[f32]),
    out: &mut [f32],
    s: &mut AttnScratch,
) {
    image_to_tokens_prepare(kern, a, ab, (tk, k, v), s);
    let scores = &mut s.scores[..tq * NUM_HEADS * tk];
    image_to_tokens_rows(
        kern,
        a,
        tk,
        &q[..tq * a.q.k()],
        scores,
        &s.tok_a,
        &s.tok_b,
        &s.bias,
        out,
    );
}

/// The small side of [`image_to_tokens`]: `s.tok_a` (`C × 8T`, columns (i,
/// h) token-major: `k_h[i] · W_q,hᵀ / √d`), `s.bias` (`b_q,h · k_h[i] / √d`)
/// and `s.tok_b` (`8T × n`, rows (i, h): `v_h[i] · W_out,h`).
fn image_to_tokens_prepare(
    kern: &Kernels,
    a: &Attention,
    ab: &Absorbed,
    (tk, k, v): (usize, &[f32], &[f32]),
    s: &mut AttnScratch,
) {
    let (c, ci, n) = (a.q.k(), a.internal, a.out.n());
    let dh = ci / NUM_HEADS;
    let th = NUM_HEADS * tk;
    let (kp, vp) = (&mut s.kp[..tk * ci], &mut s.vp[..tk * ci]);
    a.k.forward(kern, tk, k, &mut s.q8, kp);
    a.v.forward(kern, tk, v, &mut s.q8, vp);
    // rows (i, h), token-major so that each pixel's scores hold one token's
    // heads side by side (the softmax over tokens runs across them):
    // k_h[i] · W_q,hᵀ (C wide) and its bias b_q,h · k_h[i]
    let mixed = &mut s.mixed[..th * c.max(n)];
    // (1/√d folded into k_h)
    let bq = a.q.bias();
    let inv_scale = 1.0 / (dh as f32).sqrt();
    for (r, (row, b)) in mixed.chunks_exact_mut(c).zip(&mut s.bias).enumerate() {
        let (i, h) = (r / NUM_HEADS, r % NUM_HEADS);
        let kh = &kp[i * ci + h * dh..][..dh];
        row.fill(0.0);
        *b = 0.0;
        for (d, &x) in kh.iter().enumerate() {
            let x = x * inv_scale;
            let w = &ab.q_t[(h * dh + d) * c..][..c];
            row.iter_mut().zip(w).for_each(|(o, &w)| *o += x * w);
            *b += x * bq[h * dh + d];
        }
    }
    s.tok_a.repack_transposed(mixed, c, c, th);
    // rows (i, h): v_h[i] · W_out,h (n wide)
    for (r, row) in mixed.chunks_exact_mut(n).take(th).enumerate() {
        let (i, h) = (r / NUM_HEADS, r % NUM_HEADS);
        let vh = &vp[i * ci + h * dh..][..dh];
        row.fill(0.0);
        for (d, &x) in vh.iter().enumerate() {
            let w = &ab.out[(h * dh + d) * n..][..n];
            row.iter_mut().zip(w).for_each(|(o, &w)| *o += x * w);
        }
    }
    s.tok_b.repack_rows(mixed, n, th, n);
}

/// Rows `x` (`r × C`) of [`image_to_tokens`] into `out` (`r × n`), the
/// small side prepared; `scores` holds `r × 8T`.
#[allow(clippy::too_many_arguments)]
fn image_to_tokens_rows(
    kern: &Kernels,
    a: &Attention,
    tk: usize,
    x: &[f32],
    scores: &mut [f32],
    tok_a: &PackedB,
    tok_b: &PackedB,
    bias: &[f32],
    out: &mut [f32],
) {
    let (c, n) = (a.q.k(), a.out.n());
    let th = NUM_HEADS * tk;
    let r = x.len() / c;
    let scores = &mut scores[..r * th];
    kern.gemm_f32(r, x, tok_a, Some(&bias[..th]), scores);
    kern.softmax_interleaved(scores, tk, NUM_HEADS);
    kern.gemm_f32(r, scores, tok_b, Some(a.out.bias()), &mut out[..r * n]);
}

/// Image rows per block of [`image_to_tokens_update`] (a multiple of every
/// level's tile height).
const UPDATE_ROWS: usize = 96;

/// Image → tokens attention whose result is consumed a block of image rows
/// at a time, while the block is in cache: `update(rows, q, o)` gets the
/// block's rows of `q` (read already: it may overwrite them) and of the
/// attention output. With the absorbed form the output never exists whole;
/// otherwise [`attention`] writes it to `out` (`tq × C`) first.
#[allow(clippy::too_many_arguments)]
pub(crate) fn image_to_tokens_update(
    kern: &Kernels,
    a: &Attention,
    (tq, q): (usize, &mut [f32]),
    (tk, k, v): (usize, &[f32], &[f32]),
    out: &mut [f32],
    s: &mut AttnScratch,
    mut update: impl FnMut(std::ops::Range<usize>, &mut [f32], &[f32]),
) {
    let (c, n) = (a.q.k(), a.out.n());
    let q = &mut q[..tq * c];
    let absorbed = a
        .absorbed
        .as_ref()
        .filter(|_| NUM_HEADS * tk <= a.internal && tq > tk && tq > UPDATE_ROWS);
    let Some(ab) = absorbed else {
        let out = &mut out[..tq * n];
        attention(kern, a, (tq, q), (tk, k, v), out, s);
        for (i, (q, o)) in q
            .chunks_mut(UPDATE_ROWS * c)
            .zip(out.chunks(UPDATE_ROWS * n))
            .enumerate()
        {
            let r0 = i * UPDATE_ROWS;
            update(r0..r0 + o.len() / n, q, o);
        }
        return;
    };
    image_to_tokens_prepare(kern, a, ab, (tk, k, v), s);
    for (i, q) in q.chunks_mut(UPDATE_ROWS * c).enumerate() {
        let r0 = i * UPDATE_ROWS;
        let rows = q.len() / c;
        let o = &mut out[..rows * n];
        image_to_tokens_rows(
            kern,
            a,
            tk,
            q,
            &mut s.scores,
            &s.tok_a,
            &s.tok_b,
            &s.bias,
            o,
        );
        update(r0..r0 + rows, q, o);
    }
}
