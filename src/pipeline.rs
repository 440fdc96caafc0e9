//! The SAM-Mix pipeline for one frame, on tract.
//!
//! ```text
//! frame (gray8 / rgb8, any size)
//!   → preprocess   luma or RGB, bilinear to S×S (align_corners = false), (x − mean) / std
//!   → classifier   logits → presence = sigmoid; cam (h×w)
//!   → gate         presence < gate.presence_threshold: empty mask, stop
//!   → prompt       CAM → box + dense prompt (src/prompt.rs); none: empty mask, stop
//!   → encoder      image_embeddings
//!   → decoder      box corners (labels 2, 3), dense prompt, has_mask_input = 1
//!   → postprocess  the mask of decoder.mask_tokens with the best predicted IoU:
//!                  its low_res_masks logits bilinear to the frame size, > mask_threshold
//! ```
//!
//! This is what the recipe's `onnx_pipeline.OrtSamMix` does with
//! onnxruntime; `tests/reference_pipeline.rs` checks the two agree on the
//! bundle's reference frames. Every stage is timed.

use std::time::Instant;

use serde::Serialize;
use tract_onnx::prelude::Tensor;

use crate::bundle::{Bundle, Manifest};
use crate::frame::{Frame, Mask, PixelFormat};
use crate::graph::{GraphError, Session};
use crate::prompt::{PromptEngine, BOX_LABELS};
use crate::resize::{self, Tap};

mod contract;
mod error;

pub use contract::{decoder_spec, load_graphs, Graphs, EMBED_DIM};
pub use error::PipelineError;

/// What happened to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The classifier said the target is absent: no encoder, no decoder.
    Absent,
    /// Present, but the CAM gave no prompt (nothing above the threshold
    /// large enough): empty mask.
    NoPrompt,
    /// Segmented by SAM.
    Segmented,
}

/// Milliseconds per stage; 0 for stages a gated frame skipped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StageTimes {
    /// Frame → model input tensor.
    pub preprocess_ms: f64,
    /// Classifier graph.
    pub classifier_ms: f64,
    /// CAM → prompt.
    pub prompt_ms: f64,
    /// Encoder graph.
    pub encoder_ms: f64,
    /// Decoder graph.
    pub decoder_ms: f64,
    /// Mask choice and resize to the frame.
    pub postprocess_ms: f64,
    /// The whole call.
    pub total_ms: f64,
}

/// The result of one frame (the mask itself goes to the caller's [`Mask`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameResult {
    /// The frame's sequence number.
    pub sequence: u64,
    /// sigmoid(classifier logit).
    pub presence: f32,
    /// What happened.
    pub outcome: Outcome,
    /// The box prompt in encoder-input pixels (x0, y0, x1, y1).
    pub box_input: Option<[f32; 4]>,
    /// The same box in frame pixels.
    pub box_frame: Option<[f32; 4]>,
    /// Index of the chosen decoder mask.
    pub mask_token: Option<usize>,
    /// Its predicted IoU.
    pub iou_prediction: Option<f32>,
    /// Target pixels in the mask (frame size).
    pub mask_area: usize,
    /// The encoder was skipped: the frame was close enough to the one whose
    /// image embeddings are cached ([`Pipeline::set_embedding_reuse`]).
    pub embedding_reused: bool,
    /// Per-stage milliseconds.
    pub times: StageTimes,
}

/// Frame-to-frame smoothing for streams, so the overlay does not flicker.
/// Off unless set with [`Pipeline::set_stability`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stability {
    /// Presence hysteresis: a target absent so far appears when the
    /// presence reaches `threshold + hysteresis`; one present so far stays
    /// until it falls below `threshold − hysteresis`.
    pub hysteresis: f32,
    /// Box smoothing: the box prompt is `w · previous + (1 − w) · new` while
    /// the target stays present (0: no smoothing).
    pub box_smoothing: f32,
}

impl Default for Stability {
    /// Hysteresis 0.1, no box smoothing. On the demo clip (`sammix run
    /// --stability on`): presence switches 18 → 3 (ground truth 4), Dice on
    /// frames with a target unchanged at 0.325; box smoothing 0.5 on top cut
    /// that Dice to 0.254, so it is off.
    fn default() -> Stability {
        Stability {
            hysteresis: 0.1,
            box_smoothing: 0.0,
        }
    }
}

/// The three graphs of a bundle, ready to run frames.
#[derive(Debug)]
pub struct Pipeline {
    manifest: Manifest,
    graphs: Graphs,
    classifier: Session,
    encoder: Session,
    decoder: Session,
    prompt: PromptEngine,
    input: Vec<f32>,
    plane: Vec<f32>,
    frame_taps: ((usize, usize), Vec<Tap>, Vec<Tap>),
    mask_resizer: MaskResizer,
    stability: Option<Stability>,
    tracked_present: bool,
    tracked_box: Option<[f32; 4]>,
    reuse: Option<f32>,
    cached_input: Vec<f32>,
    cached_embedding: Option<Tensor>,
}

impl Pipeline {
    /// Loads the bundle's graphs (checked against the contract) into
    /// optimized plans.
    pub fn new(bundle: &Bundle) -> Result<Pipeline, PipelineError> {
        let graphs = load_graphs(bundle)?;
        let m = bundle.manifest().clone();
        let s = m.input.size as usize;
        let c = m.input.channels as usize;
        let (ch, cw) = graphs.cam_size;
        let dense = 4 * m.input.embedding_size as usize;
        let prompt = PromptEngine::new(m.prompt.clone(), ch, cw, s, dense);
        Ok(Pipeline {
            classifier: graphs.classifier.session()?,
            encoder: graphs.encoder.session()?,
            decoder: graphs.decoder.session()?,
            graphs,
            manifest: m,
            prompt,
            input: vec![0.0; c * s * s],
            plane: Vec::new(),
            frame_taps: ((0, 0), Vec::new(), Vec::new()),
            mask_resizer: MaskResizer::default(),
            stability: None,
            tracked_present: false,
            tracked_box: None,
            reuse: None,
            cached_input: Vec::new(),
            cached_embedding: None,
        })
    }

    /// Turns frame-to-frame smoothing on (or off with `None`) and forgets
    /// what earlier frames said.
    pub fn set_stability(&mut self, stability: Option<Stability>) {
        self.stability = stability;
        self.tracked_present = false;
        self.tracked_box = None;
    }

    /// Skips the encoder when the model input differs from the one whose
    /// embeddings are cached by less than `threshold` (mean absolute
    /// difference of the normalized input; `None`: always encode). For a
    /// probe held still. The cache is compared with the frame it was made
    /// from, not the previous frame, so slow drift cannot pile up.
    pub fn set_embedding_reuse(&mut self, threshold: Option<f32>) {
        self.reuse = threshold;
        self.cached_embedding = None;
    }

    /// The bundle's manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The loaded graphs.
    pub fn graphs(&self) -> &Graphs {
        &self.graphs
    }

    /// The model input of the last frame (C×S×S, normalized).
    pub fn input(&self) -> &[f32] {
        &self.input
    }

    /// Runs one frame; the mask (frame size) goes to `mask`.
    pub fn process(
        &mut self,
        frame: &Frame,
        mask: &mut Mask,
    ) -> Result<FrameResult, PipelineError> {
        let start = Instant::now();
        let mut times = StageTimes::default();
        let (w, h) = (frame.width(), frame.height());
        mask.reset(w, h);
        let mut lap = Instant::now();
        let mut tick = |slot: &mut f64| {
            let now = Instant::now();
            *slot = (now - lap).as_secs_f64() * 1e3;
            lap = now;
        };

        self.preprocess(frame);
        let s = self.manifest.input.size as usize;
        let c = self.manifest.input.channels as usize;
        let input =
            Tensor::from_shape(&[1, c, s, s], &self.input).map_err(|e| tensor_err(frame, e))?;
        tick(&mut times.preprocess_ms);

        let outs = self.classifier.run(vec![input.clone()])?;
        let logit = f32_data(&outs[0], self.classifier.plan().path(), "logits")?[0];
        let presence = 1.0 / (1.0 + (-logit).exp());
        tick(&mut times.classifier_ms);

        let mut result = FrameResult {
            sequence: frame.sequence,
            presence,
            outcome: Outcome::Absent,
            box_input: None,
            box_frame: None,
            mask_token: None,
            iou_prediction: None,
            mask_area: 0,
            embedding_reused: false,
            times,
        };
        // NaN presence counts as absent (every comparison is false).
        let threshold = match self.stability {
            Some(s) if self.tracked_present => self.manifest.gate.presence_threshold - s.hysteresis,
            Some(s) => self.manifest.gate.presence_threshold + s.hysteresis,
            None => self.manifest.gate.presence_threshold,
        };
        self.tracked_present = presence >= threshold;
        if !self.tracked_present {
            self.tracked_box = None;
            result.times.total_ms = start.elapsed().as_secs_f64() * 1e3;
            return Ok(result);
        }
        let cam = f32_data(&outs[1], self.classifier.plan().path(), "cam")?;
        let prompt = self.prompt.compute(cam).map_err(|e| PipelineError::Frame {
            sequence: frame.sequence,
            problem: e.to_string(),
        })?;
        let Some(prompt) = prompt else {
            self.tracked_box = None;
            result.outcome = Outcome::NoPrompt;
            tick(&mut result.times.prompt_ms);
            result.times.total_ms = start.elapsed().as_secs_f64() * 1e3;
            return Ok(result);
        };
        let mut bbox = prompt.bbox;
        if let Some(s) = self.stability {
            if let Some(prev) = self.tracked_box {
                let w = s.box_smoothing;
                for (b, p) in bbox.iter_mut().zip(prev) {
                    *b = w * p + (1.0 - w) * *b;
                }
            }
            self.tracked_box = Some(bbox);
        }
        let dense_size = 4 * self.manifest.input.embedding_size as usize;
        let coords = Tensor::from_shape(&[1, 2, 2], &bbox).map_err(|e| tensor_err(frame, e))?;
        let dense = Tensor::from_shape(&[1, 1, dense_size, dense_size], &prompt.dense)
            .map_err(|e| tensor_err(frame, e))?;
        tick(&mut result.times.prompt_ms);

        let reusable = match (self.reuse, &self.cached_embedding) {
            (Some(t), Some(_)) if self.cached_input.len() == self.input.len() => {
                let diff: f32 = self
                    .cached_input
                    .iter()
                    .zip(&self.input)
                    .map(|(a, b)| (a - b).abs())
                    .sum();
                diff / (self.input.len() as f32) < t
            }
            _ => false,
        };
        let emb = match &self.cached_embedding {
            Some(cached) if reusable => {
                result.embedding_reused = true;
                cached.clone()
            }
            _ => {
                let emb = self.encoder.run(vec![input])?.swap_remove(0);
                if self.reuse.is_some() {
                    self.cached_input.clone_from(&self.input);
                    self.cached_embedding = Some(emb.clone());
                }
                emb
            }
        };
        tick(&mut result.times.encoder_ms);

        let labels = Tensor::from_shape(&[1, 2], &BOX_LABELS).map_err(|e| tensor_err(frame, e))?;
        let has_mask = Tensor::from_shape(&[1], &[1.0f32]).map_err(|e| tensor_err(frame, e))?;
        let outs = self
            .decoder
            .run(vec![emb, coords, labels, dense, has_mask])?;
        tick(&mut result.times.decoder_ms);

        let path = self.decoder.plan().path().to_path_buf();
        let iou = f32_data(&outs[0], &path, "iou_predictions")?;
        let low = f32_data(&outs[1], &path, "low_res_masks")?;
        let best = best_token(&self.manifest.decoder.mask_tokens, iou);
        let plane = dense_size * dense_size;
        let chosen = &low[best * plane..(best + 1) * plane];
        let threshold = self.manifest.decoder.mask_threshold;
        self.mask_resizer
            .resize(chosen, dense_size, threshold, mask);
        tick(&mut result.times.postprocess_ms);

        result.outcome = Outcome::Segmented;
        result.box_input = Some(bbox);
        result.box_frame = Some(box_to_frame(bbox, s, w, h));
        result.mask_token = Some(best);
        result.iou_prediction = Some(iou[best]);
        result.mask_area = mask.area();
        result.times.total_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(result)
    }

    /// Frame → normalized C×S×S input in `self.input`.
    fn preprocess(&mut self, frame: &Frame) {
        let m = &self.manifest.input;
        let s = m.size as usize;
        let (w, h) = (frame.width(), frame.height());
        if self.frame_taps.0 != (w, h) {
            resize::axis_into(h, s, &mut self.frame_taps.1);
            resize::axis_into(w, s, &mut self.frame_taps.2);
            self.frame_taps.0 = (w, h);
        }
        let (_, ys, xs) = &self.frame_taps;
        for (c, out) in self.input.chunks_exact_mut(s * s).enumerate() {
            match (frame.format(), m.channels) {
                (PixelFormat::Gray8, _) => {
                    resize::bilinear(frame.data(), w, ys, xs, out, f32::from)
                }
                (PixelFormat::Rgb8, 1) => {
                    self.plane.resize(w * h, 0.0);
                    for (p, px) in self.plane.iter_mut().zip(frame.data().chunks_exact(3)) {
                        *p = 0.299 * f32::from(px[0])
                            + 0.587 * f32::from(px[1])
                            + 0.114 * f32::from(px[2]);
                    }
                    resize::bilinear(&self.plane, w, ys, xs, out, |v| v);
                }
                (PixelFormat::Rgb8, _) => {
                    self.plane.resize(w * h, 0.0);
                    for (p, px) in self.plane.iter_mut().zip(frame.data().chunks_exact(3)) {
                        *p = f32::from(px[c.min(2)]);
                    }
                    resize::bilinear(&self.plane, w, ys, xs, out, |v| v);
                }
            }
            let (mean, std) = (m.mean[c], m.std[c]);
            for v in out.iter_mut() {
                *v = (*v - mean) / std;
            }
        }
    }
}

/// Turns a decoder's low-resolution mask logits (n×n) into a binary mask of
/// any size: bilinear (align_corners = false) straight to the mask's size,
/// then `> threshold`. Keeps its tap tables and row buffer between calls.
#[derive(Debug, Clone, Default)]
pub struct MaskResizer {
    key: (usize, usize, usize),
    ys: Vec<Tap>,
    xs: Vec<Tap>,
    row: Vec<f32>,
}

impl MaskResizer {
    /// Fills `mask` (its current size) from `logits` (n×n, row-major).
    pub fn resize(&mut self, logits: &[f32], n: usize, threshold: f32, mask: &mut Mask) {
        let (w, h) = (mask.width(), mask.height());
        if self.key != (n, w, h) {
            resize::axis_into(n, h, &mut self.ys);
            resize::axis_into(n, w, &mut self.xs);
            self.key = (n, w, h);
        }
        self.row.resize(w, 0.0);
        for (row, ty) in mask.data_mut().chunks_exact_mut(w).zip(&self.ys) {
            resize::bilinear(
                logits,
                n,
                std::slice::from_ref(ty),
                &self.xs,
                &mut self.row,
                |v| v,
            );
            for (m, &v) in row.iter_mut().zip(&self.row) {
                *m = u8::from(v > threshold);
            }
        }
    }
}

/// The mask token of `tokens` with the best predicted IoU (ties: the first
/// listed). `tokens` must be non-empty and index inside `iou`.
pub fn best_token(tokens: &[u32], iou: &[f32]) -> usize {
    let mut best = tokens[0] as usize;
    for &t in &tokens[1..] {
        if iou[t as usize] > iou[best] {
            best = t as usize;
        }
    }
    best
}

/// An input-pixel box mapped to frame pixels (the inverse of the half-pixel
/// resize: input pixel centre i sits at frame coordinate (i + ½)·F/S − ½).
pub fn box_to_frame(b: [f32; 4], s: usize, w: usize, h: usize) -> [f32; 4] {
    let (sx, sy) = (w as f32 / s as f32, h as f32 / s as f32);
    let map = |v: f32, k: f32, n: usize| ((v + 0.5) * k - 0.5).clamp(0.0, (n - 1) as f32);
    [
        map(b[0], sx, w),
        map(b[1], sy, h),
        map(b[2], sx, w),
        map(b[3], sy, h),
    ]
}

fn f32_data<'t>(
    t: &'t Tensor,
    path: &std::path::Path,
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

fn tensor_err(frame: &Frame, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Frame {
        sequence: frame.sequence,
        problem: format!("cannot build an input tensor: {e}"),
    }
}
