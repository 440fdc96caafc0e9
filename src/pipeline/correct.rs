//! Corrections: a clinician's clicks on the last processed frame.
//!
//! SAM-Mix's operating model is that the CAM proposes and the clinician
//! corrects. A correction re-runs only the mask decoder, on the embeddings
//! the frame already has: each of the frame's CAM boxes once more with the
//! clicks added to its corners (labels 1 on the target, 0 on background),
//! with the frame's dense prompt, plus one call on the clicks alone when a
//! positive click lies outside every box (a lesion the CAM missed). Clicks
//! accumulate: each call to [`Pipeline::correct`] takes all clicks so far.
//! A frame whose encoder did not run (its classifier gated it out before
//! the encoder, `graphs.classifier.input = "image"`) runs the encoder once,
//! counted in [`Correction::encoder_ran`] and [`Pipeline::encoder_runs`].

use std::time::Instant;

use serde::Serialize;
use tract_onnx::prelude::Tensor;

use crate::frame::Mask;
use crate::prompt::margin_px;

use super::decode::{Calls, InputClick};
use super::encode::Embeddings;
use super::{all_finite, Pipeline, PipelineError};

/// A click on a frame, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Click {
    /// Column.
    pub x: f32,
    /// Row.
    pub y: f32,
    /// On the target (`true`) or on background.
    pub positive: bool,
}

/// What one correction did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correction {
    /// The frame corrected.
    pub sequence: u64,
    /// Clicks applied (all of them, not only the new ones).
    pub clicks: usize,
    /// The mask's area before and after, in frame pixels.
    pub mask_area_before: usize,
    /// The corrected mask's area.
    pub mask_area: usize,
    /// Decoder calls made.
    pub decoder_calls: usize,
    /// Whether the encoder had to run (a frame gated out before it).
    pub encoder_ran: bool,
    /// Wall time of the correction, ms.
    pub ms: f64,
}

/// The last processed frame, as a correction needs it.
#[derive(Debug, Default)]
pub(crate) struct LastFrame {
    /// The frame, unless it was invalid or none ran yet.
    pub(crate) sequence: Option<u64>,
    pub(crate) size: (usize, usize),
    pub(crate) mask_area: usize,
    pub(crate) emb: Option<Tensor>,
    pub(crate) boxes: Vec<[f32; 4]>,
    pub(crate) dense: Vec<f32>,
    pub(crate) has_dense: bool,
    clicks: Vec<InputClick>,
}

impl LastFrame {
    /// Forgets the frame before (keeping the buffers).
    pub(crate) fn start(&mut self, size: (usize, usize)) {
        self.sequence = None;
        self.size = size;
        self.mask_area = 0;
        self.emb = None;
        self.boxes.clear();
        self.has_dense = false;
        self.clicks.clear();
    }
}

impl Pipeline {
    /// Re-segments the last processed frame with `clicks` (frame pixels)
    /// added to its prompt; the mask (frame size) goes to `mask`. Clicks
    /// accumulate over calls until the next frame (see the module docs).
    pub fn correct(
        &mut self,
        clicks: &[Click],
        mask: &mut Mask,
    ) -> Result<Correction, PipelineError> {
        let start = Instant::now();
        let Some(sequence) = self.last.sequence else {
            return Err(PipelineError::Frame {
                sequence: 0,
                problem: "no frame to correct: process a frame first (an invalid frame cannot \
                          be corrected)"
                    .into(),
            });
        };
        let (w, h) = self.last.size;
        let s = self.manifest.input.size as usize;
        for c in clicks {
            let inside = c.x.is_finite()
                && c.y.is_finite()
                && (0.0..w as f32).contains(&c.x)
                && (0.0..h as f32).contains(&c.y);
            if !inside {
                return Err(PipelineError::Frame {
                    sequence,
                    problem: format!("click at ({}, {}) is outside the {w}x{h} frame", c.x, c.y),
                });
            }
            // Frame pixel centres to input pixel centres (box_to_frame's inverse).
            self.last.clicks.push(InputClick {
                x: (c.x + 0.5) * s as f32 / w as f32 - 0.5,
                y: (c.y + 0.5) * s as f32 / h as f32 - 0.5,
                label: if c.positive { 1.0 } else { 0.0 },
            });
        }
        if self.last.clicks.is_empty() {
            return Err(PipelineError::Frame {
                sequence,
                problem: "a correction needs at least one click".into(),
            });
        }
        let mut encoder_ran = false;
        let emb = match self.last.emb.take() {
            Some(e) => e,
            None => {
                let c = self.manifest.input.channels as usize;
                let input = Tensor::from_shape(&[1, c, s, s], &self.input).map_err(|e| {
                    PipelineError::Frame {
                        sequence,
                        problem: format!("cannot build the encoder input: {e}"),
                    }
                })?;
                let mut reused = false;
                let emb = self.encoder.embeddings(
                    &self.input,
                    Embeddings::ToEncode(input),
                    &mut reused,
                )?;
                encoder_ran = !reused;
                emb
            }
        };
        let m = &self.manifest;
        let dense_size = 4 * m.input.embedding_size as usize;
        let calls = Calls {
            boxes: &self.last.boxes,
            dense: &self.last.dense,
            mask_tokens: &m.decoder.mask_tokens,
            mask_threshold: m.decoder.mask_threshold,
            refine_rounds: 0,
            input_size: s,
            margin: margin_px(m.prompt.box_margin, s),
        };
        let dense = self.last.has_dense.then_some(&self.last.dense[..]);
        let ran = self.decoders.run_clicks(
            &emb,
            &self.last.boxes,
            dense,
            &self.last.clicks,
            &calls,
            sequence,
        );
        self.last.emb = Some(emb);
        let (decoder_calls, logits) = ran?;
        if !all_finite(logits) {
            return Err(PipelineError::Frame {
                sequence,
                problem: "the decoder's logits hold NaN or Inf: correction not applied".into(),
            });
        }
        mask.reset(w, h);
        self.mask_resizer
            .resize(logits, dense_size, m.decoder.mask_threshold, mask);
        let before = self.last.mask_area;
        self.last.mask_area = mask.area();
        Ok(Correction {
            sequence,
            clicks: self.last.clicks.len(),
            mask_area_before: before,
            mask_area: self.last.mask_area,
            decoder_calls,
            encoder_ran,
            ms: start.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Encoder runs since the pipeline was made (frames and corrections).
    pub fn encoder_runs(&self) -> u64 {
        self.encoder.runs
    }
}
