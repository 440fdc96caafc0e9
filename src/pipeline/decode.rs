//! The decoder stage: the native decoder ([`crate::decoder`], the default)
//! or tract's plan of the same `decoder.onnx`, fed the same inputs.
//!
//! | input | value |
//! |---|---|
//! | `image_embeddings` | the encoder's output (or the cached one), 1×256×E×E |
//! | `point_coords` | the box corners (x0, y0), (x1, y1), encoder-input pixels; no padding point (SAM pads only prompts without a box) |
//! | `point_labels` | [`BOX_LABELS`] (2, 3) |
//! | `mask_input` | the dense prompt, 1×1×4E×4E logits |
//! | `has_mask_input` | 1 |
//!
//! Both give `iou_predictions` (T) and `low_res_masks` (T×4E×4E) to the same
//! post-processing. The native decoder writes them into buffers sized at
//! load, so its stage allocates nothing per frame; tract allocates its input
//! and output tensors per run.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tract_onnx::prelude::Tensor;

use crate::bundle::Manifest;
use crate::decoder::NativeDecoder;
use crate::graph::{GraphError, Plan, Session};
use crate::prompt::BOX_LABELS;

use super::contract::{load_native_decoder, load_tract_decoder};
use super::{Graphs, PipelineError};

/// Which engine runs the mask decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderKind {
    /// The SAM prompt encoder and mask decoder in Rust on
    /// [`crate::kernels`] ([`NativeDecoder`]), weights read from
    /// `decoder.onnx`. No allocation per frame.
    #[default]
    Native,
    /// tract's optimized plan of `decoder.onnx`.
    Tract,
}

impl DecoderKind {
    /// Both kinds.
    pub const ALL: [DecoderKind; 2] = [DecoderKind::Native, DecoderKind::Tract];

    /// `native` or `tract`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecoderKind::Native => "native",
            DecoderKind::Tract => "tract",
        }
    }
}

impl std::fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The loaded decoders (one, or both once [`Decoders::select`] asked for
/// the other) and the native decoder's output buffers.
#[derive(Debug)]
pub(crate) struct Decoders {
    kind: DecoderKind,
    path: PathBuf,
    native: Option<NativeDecoder>,
    tract: Option<Session>,
    tract_out: Vec<Tensor>,
    dense_size: usize,
    low: Vec<f32>,
    iou: Vec<f32>,
}

impl Decoders {
    /// The decoder of `kind` loaded by [`super::load_graphs`]: `native`, or
    /// `graphs.decoder`'s plan.
    pub(crate) fn new(
        kind: DecoderKind,
        path: &Path,
        graphs: &Graphs,
        native: Option<NativeDecoder>,
        dense_size: usize,
    ) -> Result<Decoders, PipelineError> {
        let tract = graphs.decoder.as_ref().map(Plan::session).transpose()?;
        let m = graphs.mask_count;
        Ok(Decoders {
            kind,
            path: path.to_path_buf(),
            native,
            tract,
            tract_out: Vec::new(),
            dense_size,
            low: vec![0.0; m * dense_size * dense_size],
            iou: vec![0.0; m],
        })
    }

    pub(crate) fn kind(&self) -> DecoderKind {
        self.kind
    }

    pub(crate) fn native(&self) -> Option<&NativeDecoder> {
        self.native.as_ref()
    }

    /// Runs `kind` from now on, loading it the first time (tract's plan goes
    /// to `graphs.decoder`). Both must return `graphs.mask_count` masks.
    pub(crate) fn select(
        &mut self,
        kind: DecoderKind,
        manifest: &Manifest,
        graphs: &mut Graphs,
    ) -> Result<(), PipelineError> {
        let mismatch = |masks: usize| PipelineError::Contract {
            path: self.path.clone(),
            output: "iou_predictions".into(),
            expected: format!("{} masks, as the other decoder returned", graphs.mask_count),
            got: format!("{masks} masks in the {kind} decoder"),
        };
        // Kept only once checked: a refused decoder is not half-loaded.
        match kind {
            DecoderKind::Native if self.native.is_none() => {
                let native = load_native_decoder(&self.path, manifest)?;
                if native.mask_count() != graphs.mask_count {
                    return Err(mismatch(native.mask_count()));
                }
                self.native = Some(native);
            }
            DecoderKind::Tract if self.tract.is_none() => {
                let (plan, masks) = load_tract_decoder(&self.path, manifest)?;
                if masks != graphs.mask_count {
                    return Err(mismatch(masks));
                }
                self.tract = Some(plan.session()?);
                graphs.decoder = Some(plan);
            }
            _ => {}
        }
        self.kind = kind;
        Ok(())
    }

    /// Runs the selected decoder on one box prompt; returns
    /// (`iou_predictions`, `low_res_masks`).
    pub(crate) fn run(
        &mut self,
        embeddings: Tensor,
        bbox: [f32; 4],
        dense: &[f32],
        sequence: u64,
    ) -> Result<(&[f32], &[f32]), PipelineError> {
        match self.kind {
            DecoderKind::Native => {
                let Some(native) = self.native.as_mut() else {
                    return Err(not_loaded(&self.path, self.kind));
                };
                let emb = f32_data(&embeddings, &self.path, "image_embeddings")?;
                native
                    .run(
                        emb,
                        &bbox,
                        &BOX_LABELS,
                        dense,
                        1.0,
                        &mut self.low,
                        &mut self.iou,
                    )
                    .map_err(|error| PipelineError::Decoder {
                        path: self.path.clone(),
                        error: Box::new(error),
                    })?;
                Ok((&self.iou, &self.low))
            }
            DecoderKind::Tract => {
                let Some(session) = self.tract.as_mut() else {
                    return Err(not_loaded(&self.path, self.kind));
                };
                let n = self.dense_size;
                let tensor = |shape: &[usize], data: &[f32]| {
                    Tensor::from_shape(shape, data).map_err(|e| PipelineError::Frame {
                        sequence,
                        problem: format!("cannot build a decoder input tensor: {e}"),
                    })
                };
                let inputs = vec![
                    embeddings,
                    tensor(&[1, 2, 2], &bbox)?,
                    tensor(&[1, 2], &BOX_LABELS)?,
                    tensor(&[1, 1, n, n], dense)?,
                    tensor(&[1], &[1.0])?,
                ];
                self.tract_out = session.run(inputs)?;
                let path = session.plan().path();
                let iou = f32_data(&self.tract_out[0], path, "iou_predictions")?;
                let low = f32_data(&self.tract_out[1], path, "low_res_masks")?;
                Ok((iou, low))
            }
        }
    }
}

fn not_loaded(path: &Path, kind: DecoderKind) -> PipelineError {
    PipelineError::Graph(GraphError::Run {
        path: path.to_path_buf(),
        detail: format!("the {kind} decoder is not loaded"),
    })
}

/// The f32 data of a tract tensor.
pub(crate) fn f32_data<'t>(
    t: &'t Tensor,
    path: &Path,
    name: &str,
) -> Result<&'t [f32], PipelineError> {
    t.try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| {
            PipelineError::Graph(GraphError::Run {
                path: path.to_path_buf(),
                detail: format!("output {name:?} is not readable as f32: {e:#}"),
            })
        })
}
