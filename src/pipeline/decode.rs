//! The decoder stage: the native decoder ([`crate::decoder`], the default)
//! or tract's plan of the same `decoder.onnx`, fed the same inputs.
//!
//! | input | value |
//! |---|---|
//! | `image_embeddings` | the encoder's output (or the cached one), 1×256×E×E |
//! | `point_coords` | the box corners (x0, y0), (x1, y1), encoder-input pixels; no padding point (SAM pads only prompts without a box) |
//! | `point_labels` | [`BOX_LABELS`] (2, 3) |
//! | `mask_input` | the dense prompt, 1×1×4E×4E logits (a refinement call: the call before's chosen logits) |
//! | `has_mask_input` | 1 |
//!
//! Both give `iou_predictions` (T) and `low_res_masks` (T×4E×4E); the mask
//! of `decoder.mask_tokens` with the best predicted IoU is taken.
//!
//! A frame makes one call per box (the prompt rule's step 7, `max_boxes`),
//! each with the same dense prompt, and per box `refine_rounds` more (step
//! 8): the box of the last chosen logits L (`L > mask_threshold`, scaled to
//! the input, grown and clamped like the CAM's box), `mask_input = L`. The
//! frame's logits are the element-wise maximum over the boxes of each box's
//! last chosen logits. One box without refinement is one call, whose chosen
//! logits are the frame's. The native decoder writes its outputs into
//! buffers sized at load, and the chosen and union logits have theirs, so
//! the stage allocates nothing per frame; tract allocates its input and
//! output tensors per run.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tract_onnx::prelude::Tensor;

use crate::bundle::Manifest;
use crate::decoder::NativeDecoder;
use crate::graph::{GraphError, Plan, Session};
use crate::prompt::{box_from_low_res, BOX_LABELS};

use super::contract::{load_native_decoder, load_tract_decoder};
use super::{best_token, Graphs, PipelineError};

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
    /// The chosen logits of the last call (4E×4E).
    chosen: Vec<f32>,
    /// A refinement call's `mask_input`: the call before's chosen logits.
    previous: Vec<f32>,
    /// The element-wise maximum over the boxes.
    union: Vec<f32>,
}

/// The decoder calls of one frame: the prompt and the rule's parameters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Calls<'a> {
    /// The boxes, largest component first.
    pub boxes: &'a [[f32; 4]],
    /// The dense prompt (4E×4E logits) of every box's first call.
    pub dense: &'a [f32],
    /// `decoder.mask_tokens`.
    pub mask_tokens: &'a [u32],
    /// `decoder.mask_threshold`.
    pub mask_threshold: f32,
    /// `prompt.refine_rounds`.
    pub refine_rounds: u32,
    /// S.
    pub input_size: usize,
    /// `prompt.box_margin × S`, in input pixels.
    pub margin: f32,
}

/// What the first box's last call chose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FirstBox {
    /// Its box (after refinement).
    pub bbox: [f32; 4],
    /// The chosen mask token.
    pub token: usize,
    /// Its predicted IoU.
    pub iou: f32,
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
            chosen: vec![0.0; dense_size * dense_size],
            previous: vec![0.0; dense_size * dense_size],
            union: vec![0.0; dense_size * dense_size],
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

    /// Runs the frame's decoder calls ([`Calls`]) on `embeddings`; returns
    /// what the first box chose and the frame's logits (4E×4E).
    pub(crate) fn run_boxes(
        &mut self,
        embeddings: &[f32],
        calls: &Calls<'_>,
        sequence: u64,
    ) -> Result<(FirstBox, &[f32]), PipelineError> {
        let n = self.dense_size;
        let mut first = None;
        self.union.fill(f32::NEG_INFINITY);
        for &b in calls.boxes {
            let mut bbox = b;
            let mut pick = self.call(embeddings, bbox, calls.dense, calls, sequence)?;
            for _ in 0..calls.refine_rounds {
                let (thr, s) = (calls.mask_threshold, calls.input_size);
                let Some(next) = box_from_low_res(&self.chosen, n, thr, s, calls.margin) else {
                    break;
                };
                bbox = next;
                // The last chosen logits become the mask input; taken out
                // for the call (an empty Vec does not allocate).
                std::mem::swap(&mut self.chosen, &mut self.previous);
                let previous = std::mem::take(&mut self.previous);
                let ran = self.call(embeddings, bbox, &previous, calls, sequence);
                self.previous = previous;
                pick = ran?;
            }
            for (u, &c) in self.union.iter_mut().zip(&self.chosen) {
                *u = u.max(c);
            }
            first.get_or_insert(FirstBox {
                bbox,
                token: pick.0,
                iou: pick.1,
            });
        }
        let Some(first) = first else {
            return Err(PipelineError::Frame {
                sequence,
                problem: "a prompt without a box reached the decoder".into(),
            });
        };
        Ok((first, &self.union))
    }

    /// The decoder calls of a correction (`super::correct`): one box call
    /// each, with the frame's dense prompt. Returns the number of calls and
    /// the frame's logits (their maximum; all −∞ when there is no box).
    pub(crate) fn run_box_list(
        &mut self,
        embeddings: &[f32],
        boxes: &[[f32; 4]],
        dense: &[f32],
        calls: &Calls<'_>,
        sequence: u64,
    ) -> Result<(usize, &[f32]), PipelineError> {
        self.union.fill(f32::NEG_INFINITY);
        for &b in boxes {
            self.call(embeddings, b, dense, calls, sequence)?;
            for (u, &c) in self.union.iter_mut().zip(&self.chosen) {
                *u = u.max(c);
            }
        }
        Ok((boxes.len(), &self.union))
    }

    /// One decoder call; its chosen logits go to `self.chosen`. Returns the
    /// chosen token and its predicted IoU.
    fn call(
        &mut self,
        embeddings: &[f32],
        bbox: [f32; 4],
        mask_input: &[f32],
        calls: &Calls<'_>,
        sequence: u64,
    ) -> Result<(usize, f32), PipelineError> {
        self.run(embeddings, bbox, mask_input, sequence)?;
        let (iou, low): (&[f32], &[f32]) = match self.kind {
            DecoderKind::Native => (&self.iou, &self.low),
            DecoderKind::Tract => {
                let path = &self.path;
                let out = &self.tract_out;
                let get = |i: usize, name| match out.get(i) {
                    Some(t) => f32_data(t, path, name),
                    None => Err(short_output(path, name)),
                };
                (get(0, "iou_predictions")?, get(1, "low_res_masks")?)
            }
        };
        let plane = self.chosen.len();
        // The contract checked the token count and the sizes at load.
        let fits = calls.mask_tokens.iter().all(|&t| (t as usize) < iou.len())
            && !calls.mask_tokens.is_empty()
            && low.len() >= iou.len() * plane;
        if !fits {
            return Err(short_output(&self.path, "low_res_masks"));
        }
        let best = best_token(calls.mask_tokens, iou);
        self.chosen
            .copy_from_slice(&low[best * plane..(best + 1) * plane]);
        Ok((best, iou[best]))
    }

    /// Runs the selected decoder on one box prompt, `has_mask_input = 1`;
    /// the outputs stay in `self.iou` and `self.low` (native) or
    /// `self.tract_out`.
    fn run(
        &mut self,
        embeddings: &[f32],
        bbox: [f32; 4],
        mask_input: &[f32],
        sequence: u64,
    ) -> Result<(), PipelineError> {
        match self.kind {
            DecoderKind::Native => {
                let Some(native) = self.native.as_mut() else {
                    return Err(not_loaded(&self.path, self.kind));
                };
                native
                    .run(
                        embeddings,
                        &bbox,
                        &BOX_LABELS,
                        mask_input,
                        1.0,
                        &mut self.low,
                        &mut self.iou,
                    )
                    .map_err(|error| PipelineError::Decoder {
                        path: self.path.clone(),
                        error: Box::new(error),
                    })?;
                Ok(())
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
                let emb_shape = session
                    .plan()
                    .inputs()
                    .first()
                    .map_or(&[][..], |i| &i.shape);
                let inputs = vec![
                    tensor(emb_shape, embeddings)?,
                    tensor(&[1, 2, 2], &bbox)?,
                    tensor(&[1, 2], &BOX_LABELS)?,
                    tensor(&[1, 1, n, n], mask_input)?,
                    tensor(&[1], &[1.0])?,
                ];
                self.tract_out = session.run(inputs)?;
                Ok(())
            }
        }
    }
}

fn short_output(path: &Path, name: &str) -> PipelineError {
    PipelineError::Graph(GraphError::Run {
        path: path.to_path_buf(),
        detail: format!("output {name:?} is missing or smaller than the contract's"),
    })
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
