//! The native SAM prompt encoder and mask decoder: what `decoder.onnx`
//! computes, in Rust on [`crate::kernels`], with its weights read from the
//! graph's initializers.
//!
//! ```text
//! point_coords, point_labels ─► PromptEncoder._embed_points ─► sparse [N, C]
//! mask_input, has_mask_input ─► mask_downscaling / no_mask_embed ─► dense [E·E, C]
//! tokens = [iou_token, mask_tokens…, sparse…]       image = embeddings + dense
//!   ─► TwoWayTransformer (depth × {self-attn, token→image, MLP, image→token}, final attn)
//!   ─► output_upscaling (ConvT 2×2 → LayerNorm2d → GELU → ConvT 2×2 → GELU)
//!   ─► hypernetwork MLP per mask token · upscaled  = low_res_masks [M, 4E, 4E]
//!   ─► IoU head on the iou token                    = iou_predictions [M]
//! ```
//!
//! The graph must be the official SAM ONNX interface (DESIGN.md, "The
//! decoder interface") exported with `return_single_mask=False` and without
//! stability scores: `iou_predictions` straight from the IoU head, every
//! mask token's mask. Weights are found by name or, where the exporter
//! dropped names, by the graph's structure (see `weights.rs`);
//! a missing or mis-shaped weight is a [`DecoderError`] naming SAM's
//! parameter, the initializer and the shape expected.
//!
//! int8: an int8 graph (onnxruntime dynamic quantization: `MatMulInteger` /
//! `ConvInteger`, int8 symmetric weights, u8 activations quantized per
//! tensor at run time) runs here the same way with [`Precision::AsGraph`]:
//! int8 weights packed for [`Kernels::gemm_i8`], every quantized layer's
//! input quantized per tensor with `DynamicQuantizeLinear`'s rule.
//! [`Precision::F32`] dequantizes the weights at load and runs f32.
//!
//! All buffers are allocated when the decoder is built; [`NativeDecoder::run`]
//! allocates nothing.

mod attention;
mod error;
mod linear;
mod mask_decoder;
pub(crate) mod onnx;
mod params;
mod prompt_encoder;
mod transformer;
mod weights;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use error::DecoderError;

use crate::kernels::Kernels;
use mask_decoder::{HeadScratch, MaskDecoder};
use onnx::OnnxGraph;
use prompt_encoder::{PromptEncoder, PromptScratch};
use transformer::TransformerScratch;
use weights::Loader;

/// Attention heads of SAM's two-way transformer (every released SAM,
/// MobileSAM and MedSAM use 8; the graph holds it only as a reshape size).
pub const NUM_HEADS: usize = 8;
/// Point embeddings: background, foreground, box top-left, box bottom-right.
pub const NUM_POINT_EMBEDDINGS: usize = 4;
/// Hidden channels of the mask-input downscaling (`mask_in_chans`).
pub const MASK_IN_CHANS: usize = 16;
/// `LayerNorm2d` epsilon (SAM's `common.LayerNorm2d`).
pub const LAYER_NORM_2D_EPS: f32 = 1e-6;
/// Layers of the hypernetwork MLPs and of the IoU head.
pub const MLP_LAYERS: usize = 3;
/// Prompt points a decoder takes per call unless told otherwise.
pub const DEFAULT_MAX_POINTS: usize = 16;

/// How int8 weights run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// As the graph says: int8 layers on int8 GEMMs with run-time activation
    /// quantization, f32 layers in f32.
    #[default]
    AsGraph,
    /// Every weight dequantized to f32 at load; no activation quantization.
    F32,
}

/// Options of [`NativeDecoder::from_onnx_with`].
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How int8 weights run.
    pub precision: Precision,
    /// The most prompt points a call may pass (buffers are sized for it).
    pub max_points: usize,
    /// The kernels (default: [`Kernels::get`]).
    pub kernels: Option<Kernels>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            precision: Precision::AsGraph,
            max_points: DEFAULT_MAX_POINTS,
            kernels: None,
        }
    }
}

/// The SAM prompt encoder and mask decoder of one `decoder.onnx`, with its
/// buffers.
#[derive(Debug, Clone)]
pub struct NativeDecoder {
    path: PathBuf,
    kern: Kernels,
    c: usize,
    e: usize,
    input_size: f32,
    max_points: usize,
    int8: bool,
    prompt: PromptEncoder,
    decoder: MaskDecoder,
    key_pe: Vec<f32>,
    queries: Vec<f32>,
    query_pe: Vec<f32>,
    keys: Vec<f32>,
    prompt_scratch: PromptScratch,
    transformer_scratch: TransformerScratch,
    head_scratch: HeadScratch,
}

impl NativeDecoder {
    /// Loads `decoder.onnx` with the default [`Options`].
    pub fn from_onnx(path: impl AsRef<Path>) -> Result<NativeDecoder, DecoderError> {
        Self::from_onnx_with(path, Options::default())
    }

    /// Loads `decoder.onnx`: reads and checks every weight, packs it for the
    /// kernels and sizes every buffer.
    pub fn from_onnx_with(
        path: impl AsRef<Path>,
        options: Options,
    ) -> Result<NativeDecoder, DecoderError> {
        let path = path.as_ref();
        let g = OnnxGraph::read(path)?;
        let kern = options.kernels.unwrap_or(*Kernels::get());
        let l = Loader {
            g: &g,
            kern,
            precision: options.precision,
        };
        let unsupported = |detail: String| DecoderError::UnsupportedGraph {
            path: path.to_path_buf(),
            detail,
        };
        let (c, e) = match g.input_shape("image_embeddings").as_deref() {
            Some([Some(1), Some(c), Some(h), Some(w)]) if h == w => (*c, *h),
            other => {
                return Err(unsupported(format!(
                    "input image_embeddings should be 1×C×E×E with concrete sizes, the graph declares {other:?}"
                )))
            }
        };
        let want = [Some(1), Some(1), Some(4 * e), Some(4 * e)];
        let got = g.input_shape("mask_input");
        if got.as_deref() != Some(&want[..]) {
            return Err(unsupported(format!(
                "input mask_input should be {want:?}, the graph declares {got:?}"
            )));
        }
        for name in ["point_coords", "point_labels", "has_mask_input"] {
            if g.input_shape(name).is_none() {
                return Err(unsupported(format!("no input {name}")));
            }
        }
        let input_size = input_size(&g).unwrap_or_else(|| {
            log::warn!(
                "{}: no point normalization constant found, using 16·E",
                path.display()
            );
            16.0 * e as f32
        });
        let prompt = PromptEncoder::load(&l, c, e, input_size)?;
        let decoder = MaskDecoder::load(&l, c, e)?;
        check_outputs(&l, decoder.masks())?;
        let max_points = options.max_points;
        let t = 1 + decoder.masks() + max_points;
        let hw = e * e;
        let mut prompt_scratch = prompt.scratch(max_points);
        let key_pe = prompt.dense_pe(&mut prompt_scratch);
        let int8 = decoder.transformer.is_int8();
        log::info!(
            "{}: native decoder, C {c}, E {e}, {} masks, depth {}, {} weights, kernels {}",
            path.display(),
            decoder.masks(),
            decoder.transformer.depth(),
            if int8 { "int8" } else { "f32" },
            kern.name()
        );
        Ok(NativeDecoder {
            path: path.to_path_buf(),
            kern,
            c,
            e,
            input_size,
            max_points,
            int8,
            transformer_scratch: decoder.transformer.scratch(t, hw),
            head_scratch: decoder.head_scratch(),
            prompt_scratch,
            key_pe,
            queries: vec![0.0; t * c],
            query_pe: vec![0.0; t * c],
            keys: vec![0.0; hw * c],
            prompt,
            decoder,
        })
    }

    /// The graph file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Prompt embedding dim C (channels of `image_embeddings`, 256).
    pub fn embed_dim(&self) -> usize {
        self.c
    }

    /// E: `image_embeddings` is `1×C×E×E`, `mask_input` and each low-res
    /// mask `4E×4E`.
    pub fn embedding_size(&self) -> usize {
        self.e
    }

    /// Masks returned per call (M = mask tokens, 4 for SAM).
    pub fn mask_count(&self) -> usize {
        self.decoder.masks()
    }

    /// The encoder input size point coordinates refer to.
    pub fn input_size(&self) -> f32 {
        self.input_size
    }

    /// The most points a call takes.
    pub fn max_points(&self) -> usize {
        self.max_points
    }

    /// Whether the transformer runs int8 GEMMs.
    pub fn is_int8(&self) -> bool {
        self.int8
    }

    /// The kernels it runs on.
    pub fn kernels(&self) -> &Kernels {
        &self.kern
    }

    /// Runs the decoder on one prompt: `image_embeddings` (`C·E·E`, NCHW),
    /// `point_coords` (`N·2`, x then y, encoder-input pixels),
    /// `point_labels` (`N`), `mask_input` (`4E·4E`) and `has_mask_input`;
    /// writes `out_low_res` (`M·4E·4E` logits) and `out_iou` (`M`).
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        image_embeddings: &[f32],
        point_coords: &[f32],
        point_labels: &[f32],
        mask_input: &[f32],
        has_mask_input: f32,
        out_low_res: &mut [f32],
        out_iou: &mut [f32],
    ) -> Result<(), DecoderError> {
        let (c, e, m) = (self.c, self.e, self.decoder.masks());
        let hw = e * e;
        let n = point_labels.len();
        let input = |name, expected: String, got: usize| DecoderError::Input {
            name,
            expected,
            got: format!("{got} values"),
        };
        if n > self.max_points {
            return Err(input(
                "point_labels",
                format!("at most {} points", self.max_points),
                n,
            ));
        }
        let sizes = [
            ("image_embeddings", image_embeddings.len(), c * hw),
            ("point_coords", point_coords.len(), 2 * n),
            ("mask_input", mask_input.len(), 16 * hw),
            ("low_res_masks", out_low_res.len(), m * 16 * hw),
            ("iou_predictions", out_iou.len(), m),
        ];
        for (name, got, want) in sizes {
            if got != want {
                return Err(input(name, format!("{want} values"), got));
            }
        }
        let kern = self.kern;
        let t = 1 + m + n;
        let tokens = self.decoder.tokens();
        self.query_pe[..tokens.len()].copy_from_slice(tokens);
        self.prompt.embed_points(
            point_coords,
            point_labels,
            &mut self.query_pe[tokens.len()..t * c],
            &mut self.prompt_scratch,
        );
        self.queries[..t * c].copy_from_slice(&self.query_pe[..t * c]);
        let keys = &mut self.keys[..hw * c];
        self.prompt.embed_mask(
            &kern,
            mask_input,
            has_mask_input,
            keys,
            &mut self.prompt_scratch,
        );
        kern.add_transposed(image_embeddings, c, hw, keys);
        self.decoder.transformer.forward(
            &kern,
            t,
            hw,
            &mut self.queries,
            &mut self.keys,
            &self.query_pe,
            &self.key_pe,
            &mut self.transformer_scratch,
        );
        self.decoder.heads(
            &kern,
            &self.queries[..t * c],
            &self.keys,
            out_low_res,
            out_iou,
            &mut self.head_scratch,
        );
        Ok(())
    }
}

/// The size point coordinates are divided by: the constant of the `Div`
/// applied to `point_coords + 0.5`.
fn input_size(g: &OnnxGraph) -> Option<f32> {
    let add = g
        .consumers("point_coords")
        .iter()
        .map(|&i| g.node(i))
        .find(|n| n.op_type == "Add")?;
    let div = g
        .consumers(add.output.first()?)
        .iter()
        .map(|&i| g.node(i))
        .find(|n| n.op_type == "Div")?;
    match g.constant(div.input.get(1)?)?.data {
        onnx::Data::F32(v) if v.len() == 1 && v[0] > 0.0 => Some(v[0]),
        _ => None,
    }
}

/// `iou_predictions` must come straight from the IoU head and
/// `low_res_masks` must be an output: no mask selection, no stability score.
fn check_outputs(l: &Loader, masks: usize) -> Result<(), DecoderError> {
    let g = l.g;
    let unsupported = |detail: String| DecoderError::UnsupportedGraph {
        path: g.path().to_path_buf(),
        detail,
    };
    let outputs: Vec<&str> = g.output_names().collect();
    for name in ["iou_predictions", "low_res_masks"] {
        if !outputs.contains(&name) {
            return Err(unsupported(format!(
                "no output {name} (outputs {outputs:?})"
            )));
        }
    }
    let bias = format!(
        "mask_decoder.iou_prediction_head.layers.{}.bias",
        MLP_LAYERS - 1
    );
    let head = l.find(&bias).and_then(|b| g.consumers(&b).first().copied());
    let producer = g.producer("iou_predictions");
    if head.is_none() || head != producer {
        let op = producer.map_or("nothing", |p| g.node(p).op_type.as_str());
        return Err(unsupported(format!(
            "iou_predictions is produced by {op}, not by the IoU head (the node taking {bias}): \
             an export with return_single_mask=True or use_stability_score=True; \
             export with return_single_mask=False ({masks} masks) for the native decoder"
        )));
    }
    Ok(())
}
