//! SAM's `PromptEncoder` as the official ONNX export runs it
//! (`SamOnnxModel._embed_points`, `_embed_masks`, `get_dense_pe`).
//!
//! Images here are pixel-major (`[H·W, C]`, a row per pixel), so
//! `LayerNorm2d` (over channels) is a row LayerNorm and a convolution with
//! kernel = stride is a linear layer over non-overlapping patches. Each
//! patch tensor holds every input value exactly once, so quantizing the
//! patches per tensor is quantizing the convolution's input per tensor, as
//! the graph's `DynamicQuantizeLinear` before `ConvInteger` does.

use std::f32::consts::TAU;

use crate::kernels::Kernels;

use super::linear::Linear;
use super::params::{Norm, PeMatrix};
use super::weights::Loader;
use super::{DecoderError, LAYER_NORM_2D_EPS, MASK_IN_CHANS, NUM_POINT_EMBEDDINGS};

/// The prompt encoder's weights.
#[derive(Debug, Clone)]
pub(crate) struct PromptEncoder {
    /// Embedding dim C.
    c: usize,
    /// Embedding grid side E.
    e: usize,
    /// The encoder input size point coordinates are divided by.
    img_size: f32,
    pe: PeMatrix,
    point_embeddings: Vec<Vec<f32>>,
    not_a_point: Vec<f32>,
    down0: Linear,
    norm0: Norm,
    down1: Linear,
    norm1: Norm,
    down2: Linear,
    no_mask: Vec<f32>,
}

/// Buffers of [`PromptEncoder`], sized once.
#[derive(Debug, Clone)]
pub(crate) struct PromptScratch {
    xy: Vec<f32>,
    q: Vec<i8>,
    patches: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl PromptEncoder {
    /// Loads the weights for embedding dim `c` and grid `e`.
    pub fn load(
        l: &Loader,
        c: usize,
        e: usize,
        img_size: f32,
    ) -> Result<PromptEncoder, DecoderError> {
        let pe = l.pe_matrix(c / 2)?;
        let point_embeddings = (0..NUM_POINT_EMBEDDINGS)
            .map(|i| l.vector(&format!("prompt_encoder.point_embeddings.{i}.weight"), c))
            .collect::<Result<Vec<_>, _>>()?;
        let not_a_point = l.vector("prompt_encoder.not_a_point_embed.weight", c)?;
        let p = "prompt_encoder.mask_downscaling";
        let c0 = MASK_IN_CHANS / 4;
        let d0 = l.patch_conv(&format!("{p}.0"), 1, 2)?;
        let d1 = l.patch_conv(&format!("{p}.3"), c0, 2)?;
        let d2 = l.patch_conv(&format!("{p}.6"), MASK_IN_CHANS, 1)?;
        let shape = |name: &str, lin: &Linear, n: usize| {
            if lin.n() == n {
                Ok(())
            } else {
                Err(l.missing(
                    &format!("{p}.{name}.bias"),
                    format!("f32 [{n}]"),
                    format!("found {} channels", lin.n()),
                ))
            }
        };
        shape("0", &d0.linear, c0)?;
        shape("3", &d1.linear, MASK_IN_CHANS)?;
        shape("6", &d2.linear, c)?;
        let (g0, b0) = l.layer_norm_2d(&format!("{p}.1"), &d0.node_input, c0)?;
        let (g1, b1) = l.layer_norm_2d(&format!("{p}.4"), &d1.node_input, MASK_IN_CHANS)?;
        let norm = |gamma, beta| Norm {
            gamma,
            beta,
            eps: LAYER_NORM_2D_EPS,
        };
        Ok(PromptEncoder {
            c,
            e,
            img_size,
            pe,
            point_embeddings,
            not_a_point,
            down0: d0.linear,
            norm0: norm(g0, b0),
            down1: d1.linear,
            norm1: norm(g1, b1),
            down2: d2.linear,
            no_mask: l.no_mask_embed(c)?,
        })
    }

    /// Buffers for up to `max_points` points.
    pub fn scratch(&self, max_points: usize) -> PromptScratch {
        let (e, c) = (self.e, self.c);
        let big = (4 * e * e * 4)
            .max(e * e * MASK_IN_CHANS * 4)
            .max(2 * max_points);
        PromptScratch {
            xy: vec![0.0; 2 * max_points.max(e * e)],
            q: vec![0; big],
            patches: vec![0.0; big],
            a: vec![0.0; (4 * e * e * MASK_IN_CHANS).max(e * e * c)],
            b: vec![0.0; 4 * e * e * MASK_IN_CHANS],
        }
    }

    /// `get_dense_pe()` pixel-major: `[E·E, C]`, the encoding of each grid
    /// cell centre (x first), as the exported graph computes it.
    pub fn dense_pe(&self, s: &mut PromptScratch) -> Vec<f32> {
        let e = self.e;
        let xy = &mut s.xy[..2 * e * e];
        for y in 0..e {
            for x in 0..e {
                let i = y * e + x;
                // (cumsum − 0.5) / size · 2 − 1, in f32 as torch folded it
                xy[2 * i] = ((x as f32 + 1.0) - 0.5) / e as f32 * 2.0 - 1.0;
                xy[2 * i + 1] = ((y as f32 + 1.0) - 0.5) / e as f32 * 2.0 - 1.0;
            }
        }
        let mut out = vec![0.0; e * e * self.c];
        self.encode(&s.xy[..2 * e * e], &mut s.q, &mut out);
        out
    }

    /// `_pe_encoding` of `n` points already mapped to [−1, 1] (`xy`, x
    /// first) into `out[n × C]`: `[sin(2π·xy·G), cos(2π·xy·G)]`. With an
    /// int8 `G` the graph quantizes `xy` per tensor first.
    fn encode(&self, xy: &[f32], q: &mut [i8], out: &mut [f32]) {
        let f = self.c / 2;
        let n = xy.len() / 2;
        match &self.pe {
            PeMatrix::F32(g) => {
                for (p, row) in xy.chunks_exact(2).zip(out.chunks_exact_mut(self.c)) {
                    for j in 0..f {
                        let v = (p[0] * g[j] + p[1] * g[f + j]) * TAU;
                        row[j] = v.sin();
                        row[f + j] = v.cos();
                    }
                }
            }
            PeMatrix::I8 { w, scales } => {
                // 2·n values: the scalar loop
                let act = Kernels::scalar().quantize_dynamic(xy, &mut q[..2 * n]);
                let zp = i32::from(act.zero_point);
                for (p, row) in q[..2 * n].chunks_exact(2).zip(out.chunks_exact_mut(self.c)) {
                    let (a0, a1) = (i32::from(p[0]) - zp, i32::from(p[1]) - zp);
                    for j in 0..f {
                        let acc = a0 * i32::from(w[j]) + a1 * i32::from(w[f + j]);
                        let v = acc as f32 * (act.scale * scales[j]) * TAU;
                        row[j] = v.sin();
                        row[f + j] = v.cos();
                    }
                }
            }
        }
    }

    /// `_embed_points`: `n` points (`coords[n × 2]` in input pixels,
    /// `labels[n]`) into `out[n × C]`. Label −1 gives `not_a_point_embed`
    /// alone; 0..=3 add `point_embeddings[label]` to the encoding; any other
    /// value leaves the bare encoding (the graph's `Equal` masks).
    pub fn embed_points(
        &self,
        coords: &[f32],
        labels: &[f32],
        out: &mut [f32],
        s: &mut PromptScratch,
    ) {
        let n = labels.len();
        let xy = &mut s.xy[..2 * n];
        for (d, &v) in xy.iter_mut().zip(coords) {
            *d = (v + 0.5) / self.img_size * 2.0 - 1.0;
        }
        let out = &mut out[..n * self.c];
        self.encode(&s.xy[..2 * n], &mut s.q, out);
        for (row, &label) in out.chunks_exact_mut(self.c).zip(labels) {
            if label == -1.0 {
                row.copy_from_slice(&self.not_a_point);
            } else if let Some(w) = (0..NUM_POINT_EMBEDDINGS)
                .find(|&i| label == i as f32)
                .map(|i| &self.point_embeddings[i])
            {
                for (r, &v) in row.iter_mut().zip(w) {
                    *r += v;
                }
            }
        }
    }

    /// `_embed_masks`: `mask_input[4E × 4E]` through `mask_downscaling`,
    /// weighted by `has_mask`, plus `(1 − has_mask) · no_mask_embed`, into
    /// `out[E·E × C]` (pixel-major).
    pub fn embed_mask(
        &self,
        kern: &Kernels,
        mask: &[f32],
        has_mask: f32,
        out: &mut [f32],
        s: &mut PromptScratch,
    ) {
        let (e, c) = (self.e, self.c);
        let out = &mut out[..e * e * c];
        if has_mask == 0.0 {
            // `0 · downscaled + no_mask`: the downscaling is not needed
            for row in out.chunks_exact_mut(c) {
                row.copy_from_slice(&self.no_mask);
            }
            return;
        }
        let (c0, c1) = (MASK_IN_CHANS / 4, MASK_IN_CHANS);
        // conv 2×2 s2: 4E×4E×1 → 2E×2E×c0
        let (w_in, w_mid) = (4 * e, 2 * e);
        let hw_mid = w_mid * w_mid;
        let patches = &mut s.patches[..hw_mid * 4];
        for y in 0..w_mid {
            for x in 0..w_mid {
                let p = &mut patches[(y * w_mid + x) * 4..][..4];
                for dy in 0..2 {
                    let src = &mask[(2 * y + dy) * w_in + 2 * x..][..2];
                    p[dy * 2..dy * 2 + 2].copy_from_slice(src);
                }
            }
        }
        let a = &mut s.a[..hw_mid * c0];
        let b = &mut s.b[..hw_mid * c0];
        self.down0.forward(kern, hw_mid, patches, &mut s.q, a);
        kern.layer_norm(a, &self.norm0.gamma, &self.norm0.beta, self.norm0.eps, b);
        kern.gelu(b);
        // conv 2×2 s2: 2E×2E×c0 → E×E×c1, patch order (ci, dy, dx)
        let hw = e * e;
        let k1 = c0 * 4;
        let patches = &mut s.patches[..hw * k1];
        for y in 0..e {
            for x in 0..e {
                let p = &mut patches[(y * e + x) * k1..][..k1];
                for dy in 0..2 {
                    for dx in 0..2 {
                        let src = &b[((2 * y + dy) * w_mid + 2 * x + dx) * c0..][..c0];
                        for (ci, &v) in src.iter().enumerate() {
                            p[ci * 4 + dy * 2 + dx] = v;
                        }
                    }
                }
            }
        }
        let a = &mut s.a[..hw * c1];
        let b = &mut s.b[..hw * c1];
        self.down1.forward(kern, hw, patches, &mut s.q, a);
        kern.layer_norm(a, &self.norm1.gamma, &self.norm1.beta, self.norm1.eps, b);
        kern.gelu(b);
        // conv 1×1: c1 → C
        self.down2.forward(kern, hw, b, &mut s.q, out);
        if has_mask == 1.0 {
            // `1 · downscaled + 0 · no_mask`
            return;
        }
        let keep = 1.0 - has_mask;
        for row in out.chunks_exact_mut(c) {
            for (v, &nm) in row.iter_mut().zip(&self.no_mask) {
                *v = has_mask * *v + keep * nm;
            }
        }
    }
}
