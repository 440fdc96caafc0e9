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

/// A 2×2 stride-2 transposed convolution as a GEMM `c_in × (c_out·4)`.
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

/// Buffers of [`MaskDecoder::heads`].
#[derive(Debug, Clone)]
pub(crate) struct HeadScratch {
    gemm: Vec<f32>,
    up_a: Vec<f32>,
    up_b: Vec<f32>,
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
        let hw = self.e * self.e;
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
            gemm: vec![0.0; (hw * 4 * c0).max(4 * hw * 4 * c1)],
            up_a: vec![0.0; (4 * hw * c0).max(4 * hw * 4 * self.masks)],
            up_b: vec![0.0; 4 * hw * c0],
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
        // upscaling 1: E×E×C → 2E×2E×c0 (pixel-major), LayerNorm2d, GELU
        let g = &mut s.gemm[..e * e * 4 * c0];
        kern.gemm_f32(
            e * e,
            &keys[..e * e * c],
            &self.up0.weight,
            Some(&self.up0.bias),
            g,
        );
        let up_a = &mut s.up_a[..4 * e * e * c0];
        scatter_2x2(g, e, c0, |y, x, co| (y * 2 * e + x) * c0 + co, up_a);
        let up_b = &mut s.up_b[..4 * e * e * c0];
        kern.layer_norm(
            up_a,
            &self.norm_up.gamma,
            &self.norm_up.beta,
            self.norm_up.eps,
            up_b,
        );
        kern.gelu(up_b);
        // upscaling 2: 2E×2E×c0 → 2E×2E pixels of c1·4 columns (co, dy, dx), GELU
        let e2 = 2 * e;
        let plane = 16 * e * e;
        let m = self.masks;
        let g = &mut s.gemm[..e2 * e2 * 4 * c1];
        kern.gemm_f32(e2 * e2, up_b, &self.up1.weight, Some(&self.up1.bias), g);
        kern.gelu(g);
        // hypernetworks: one MLP per mask token → M × c1
        for (i, layers) in self.hyper.iter().enumerate() {
            let x = &queries[(1 + i) * c..][..c];
            let out = &mut s.hyper[i * c1..][..c1];
            run_mlp(kern, layers, x, &mut s.h0, &mut s.h1, &mut s.q8, out);
        }
        // masks = hyper · upscaled, on the GEMM's layout: column (co, d) of a
        // pixel times hyper[m][co] into column (m, d), d the 2×2 sub-pixel
        let hyper = &s.hyper;
        s.hyper_packed.repack_with(4 * c1, 4 * m, |p, j| {
            if p % 4 == j % 4 {
                hyper[(j / 4) * c1 + p / 4]
            } else {
                0.0
            }
        });
        let px = &mut s.up_a[..e2 * e2 * 4 * m];
        kern.gemm_f32(e2 * e2, g, &s.hyper_packed, None, px);
        scatter_2x2(
            px,
            e2,
            m,
            |y, x, co| co * plane + y * 2 * e2 + x,
            &mut low_res[..m * plane],
        );
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

/// Scatters a 2×2 transposed convolution's GEMM output (`h × h` pixels of
/// `c_out·4` columns `(co, dy, dx)`) to `out[index(2y + dy, 2x + dx, co)]`.
fn scatter_2x2(
    g: &[f32],
    h: usize,
    c_out: usize,
    index: impl Fn(usize, usize, usize) -> usize,
    out: &mut [f32],
) {
    let n = 4 * c_out;
    for y in 0..h {
        for x in 0..h {
            let row = &g[(y * h + x) * n..][..n];
            for co in 0..c_out {
                for dy in 0..2 {
                    for dx in 0..2 {
                        out[index(2 * y + dy, 2 * x + dx, co)] = row[co * 4 + dy * 2 + dx];
                    }
                }
            }
        }
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
