//! SAM's `MaskDecoder.predict_masks`: the output tokens, the two-way
//! transformer, the output upscaling (`ConvTranspose2d` 2×2 s2 →
//! `LayerNorm2d` → GELU → `ConvTranspose2d` → GELU), one hypernetwork MLP
//! per mask token and the IoU head. Multimask output as the official export
//! with `return_single_mask=False` returns it: every mask token's mask and
//! score, no selection, no stability score.

use crate::kernels::{Kernels, PackedB};

use super::linear::{relu, Linear};
use super::params::Norm;
use super::transformer::TwoWayTransformer;
use super::weights::Loader;
use super::{DecoderError, LAYER_NORM_2D_EPS, MLP_LAYERS};

/// A 2×2 stride-2 transposed convolution as a GEMM `c_in × (c_out·4)`
/// (`up0`: columns `(dy, dx, co)`; `up1`: columns `(co, dy, dx)`).
#[derive(Debug, Clone)]
struct Up {
    weight: PackedB,
    bias: Vec<f32>,
    c_out: usize,
}

/// The mask decoder's weights.
#[derive(Debug, Clone)]
pub(crate) struct MaskDecoder {
    c: usize,
    e: usize,
    /// `cat(iou_token, mask_tokens)`: `(1 + M) × C`.
    tokens: Vec<f32>,
    masks: usize,
    pub transformer: TwoWayTransformer,
    up0: Up,
    norm_up: Norm,
    up1: Up,
    hyper: Vec<Vec<Linear>>,
    iou_head: Vec<Linear>,
}

/// Image rows of the embedding per block of [`MaskDecoder::heads`]: the
/// block's upscaled pixels (16 per row) go through both transposed
/// convolutions, the norm, both GELUs and the mask product while they are
/// in L2.
const HEAD_ROWS: usize = 48;

/// Buffers of [`MaskDecoder::heads`], sized for one block.
#[derive(Debug, Clone)]
pub(crate) struct HeadScratch {
    /// `up0`'s output, `HEAD_ROWS × 4·c0` (4 pixels of `c0` per row).
    up0: Vec<f32>,
    /// Those pixels normalized, `4·HEAD_ROWS × c0`.
    norm: Vec<f32>,
    /// `up1`'s output, `4·HEAD_ROWS × 4·c1`.
    up1: Vec<f32>,
    /// The masks of the block's pixels, `4·HEAD_ROWS × 4·M`.
    px: Vec<f32>,
    h0: Vec<f32>,
    h1: Vec<f32>,
    hyper: Vec<f32>,
    /// The hypernetwork outputs spread over the 2×2 sub-pixels:
    /// `(c1·4) × (M·4)`, packed.
    hyper_packed: PackedB,
    q8: Vec<i8>,
}

fn mlp(
    l: &Loader,
    path: &str,
    c: usize,
    n_out: Option<usize>,
) -> Result<Vec<Linear>, DecoderError> {
    (0..MLP_LAYERS)
        .map(|i| {
            let n = if i + 1 == MLP_LAYERS { n_out } else { None };
            l.linear(&format!("{path}.layers.{i}"), c, n)
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|layers| {
            // hidden layers keep the width: check each takes the last's output
            for (i, w) in layers.windows(2).enumerate() {
                if w[0].n() != w[1].k() {
                    return Err(l.missing(
                        &format!("{path}.layers.{}.weight", i + 1),
                        format!("[{}] inputs", w[0].n()),
                        format!("found {}", w[1].k()),
                    ));
                }
            }
            Ok(layers)
        })
}

impl MaskDecoder {
    /// Loads `mask_decoder.*` for embedding dim `c` and grid `e`.
    pub fn load(l: &Loader, c: usize, e: usize) -> Result<MaskDecoder, DecoderError> {
        let (tokens, t) = l.output_tokens(c)?;
        let masks = t - 1;
        let transformer = TwoWayTransformer::load(l, c)?;
        let p = "mask_decoder";
        let (w0, b0, c0) = l.conv_transpose(&format!("{p}.output_upscaling.0"), c)?;
        // columns (dy, dx, co) instead of the GEMM's (co, dy, dx): a row of
        // the product is then four pixels of c0 channels each, which the
        // LayerNorm2d reads as they are
        let sub_major = |j: usize| (j % c0) * 4 + j / c0;
        let mut w0_sub = PackedB::zeros(c, 4 * c0);
        w0_sub.repack_with(c, 4 * c0, |p, j| w0.get(p, sub_major(j)));
        let b0: Vec<f32> = (0..4 * c0).map(|j| b0[sub_major(j)]).collect();
        let w0 = w0_sub;
        let up0_init = l
            .find(&format!("{p}.output_upscaling.0.weight"))
            .unwrap_or_default();
        let (gamma, beta) = l.layer_norm_2d(&format!("{p}.output_upscaling.1"), &up0_init, c0)?;
        let (w1, b1, c1) = l.conv_transpose(&format!("{p}.output_upscaling.3"), c0)?;
        let hyper = (0..masks)
            .map(|i| {
                mlp(
                    l,
                    &format!("{p}.output_hypernetworks_mlps.{i}"),
                    c,
                    Some(c1),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let iou_head = mlp(l, &format!("{p}.iou_prediction_head"), c, Some(masks))?;
        Ok(MaskDecoder {
            c,
            e,
            tokens,
            masks,
            transformer,
            up0: Up {
                weight: w0,
                bias: b0,
                c_out: c0,
            },
            norm_up: Norm {
                gamma,
                beta,
                eps: LAYER_NORM_2D_EPS,
            },
            up1: Up {
                weight: w1,
                bias: b1,
                c_out: c1,
            },
            hyper,
            iou_head,
        })
    }

    /// The number of mask tokens M (masks returned).
    pub fn masks(&self) -> usize {
        self.masks
    }

    /// `cat(iou_token, mask_tokens)`, `(1 + M) × C`.
    pub fn tokens(&self) -> &[f32] {
        &self.tokens
    }

    /// Buffers for the heads.
    pub fn head_scratch(&self) -> HeadScratch {
        let (c0, c1) = (self.up0.c_out, self.up1.c_out);
        let width = self
            .hyper
            .iter()
            .chain([&self.iou_head])
            .flatten()
            .map(|l| l.n().max(l.k()))
            .max()
            .unwrap_or(0);
        HeadScratch {
            up0: vec![0.0; HEAD_ROWS * 4 * c0],
            norm: vec![0.0; 4 * HEAD_ROWS * c0],
            up1: vec![0.0; 4 * HEAD_ROWS * 4 * c1],
            px: vec![0.0; 4 * HEAD_ROWS * 4 * self.masks],
            h0: vec![0.0; width],
            h1: vec![0.0; width],
            hyper: vec![0.0; self.masks * c1],
            hyper_packed: PackedB::zeros(4 * c1, 4 * self.masks),
            q8: vec![0; width],
        }
    }

    /// The heads: from the transformer's `queries[T × C]` and `keys[E·E ×
    /// C]`, the masks `low_res[M × 4E × 4E]` and scores `iou[M]`.
    pub fn heads(
        &self,
        kern: &Kernels,
        queries: &[f32],
        keys: &[f32],
        low_res: &mut [f32],
        iou: &mut [f32],
        s: &mut HeadScratch,
    ) {
        let (c, e) = (self.c, self.e);
        let (c0, c1) = (self.up0.c_out, self.up1.c_out);
        let m = self.masks;
        // hypernetworks: one MLP per mask token → M × c1
        for (i, layers) in self.hyper.iter().enumerate() {
            let x = &queries[(1 + i) * c..][..c];
            let out = &mut s.hyper[i * c1..][..c1];
            run_mlp(kern, layers, x, &mut s.h0, &mut s.h1, &mut s.q8, out);
        }
        // masks = hyper · upscaled, on up1's layout: column (co, d) of a
        // pixel times hyper[m][co] into column (m, d), d the 2×2 sub-pixel
        let hyper = &s.hyper;
        s.hyper_packed.repack_with(4 * c1, 4 * m, |p, j| {
            if p % 4 == j % 4 {
                hyper[(j / 4) * c1 + p / 4]
            } else {
                0.0
            }
        });
        // a block of embedding rows at a time: upscaling 1 (E×E×C → four
        // pixels of c0 per row), LayerNorm2d, GELU; upscaling 2 (each pixel
        // → c1·4 columns (co, dy, dx)), GELU; the mask product; the masks
        // scattered to their 4×4 pixels of `low_res`
        let plane = 16 * e * e;
        let low_res = &mut low_res[..m * plane];
        for r0 in (0..e * e).step_by(HEAD_ROWS) {
            let rows = HEAD_ROWS.min(e * e - r0);
            let up0 = &mut s.up0[..rows * 4 * c0];
            let x = &keys[r0 * c..(r0 + rows) * c];
            kern.gemm_f32(rows, x, &self.up0.weight, Some(&self.up0.bias), up0);
            let norm = &mut s.norm[..rows * 4 * c0];
            let (gamma, beta, eps) = (&self.norm_up.gamma, &self.norm_up.beta, self.norm_up.eps);
            kern.layer_norm(up0, gamma, beta, eps, norm);
            kern.gelu(norm);
            let up1 = &mut s.up1[..rows * 4 * 4 * c1];
            kern.gemm_f32(4 * rows, norm, &self.up1.weight, Some(&self.up1.bias), up1);
            kern.gelu(up1);
            let px = &mut s.px[..rows * 4 * 4 * m];
            kern.gemm_f32(4 * rows, up1, &s.hyper_packed, None, px);
            // px row (r, d0) is pixel (2y + dy0, 2x + dx0) of the 2E grid,
            // its column (mask, d1) the low-res pixel (2·that + d1)
            let w = 4 * e;
            for (i, row) in px.chunks_exact(4 * m).enumerate() {
                let (r, d0) = (r0 + i / 4, i % 4);
                let (y, x) = (4 * (r / e) + 2 * (d0 / 2), 4 * (r % e) + 2 * (d0 % 2));
                for (mask, v) in row.chunks_exact(4).enumerate() {
                    let at = mask * plane + y * w + x;
                    low_res[at..at + 2].copy_from_slice(&v[..2]);
                    low_res[at + w..at + w + 2].copy_from_slice(&v[2..]);
                }
            }
        }
        run_mlp(
            kern,
            &self.iou_head,
            &queries[..c],
            &mut s.h0,
            &mut s.h1,
            &mut s.q8,
            &mut iou[..self.masks],
        );
    }
}

/// An MLP (ReLU between layers) on one row `x` into `out`; hidden rows
/// alternate between `h0` and `h1`.
fn run_mlp(
    kern: &Kernels,
    layers: &[Linear],
    x: &[f32],
    h0: &mut [f32],
    h1: &mut [f32],
    q8: &mut [i8],
    out: &mut [f32],
) {
    let last = layers.len().saturating_sub(1);
    for (i, layer) in layers.iter().enumerate() {
        let (k, n) = (layer.k(), layer.n());
        let (input, dst): (&[f32], &mut [f32]) = match (i, i % 2) {
            (0, _) => (x, &mut h0[..n]),
            (_, 1) => (&h0[..k], &mut h1[..n]),
            _ => (&h1[..k], &mut h0[..n]),
        };
        if i == last {
            layer.forward(kern, 1, input, q8, out);
        } else {
            layer.forward(kern, 1, input, q8, dst);
            relu(dst);
        }
    }
}
