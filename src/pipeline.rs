//! The SAM-Mix pipeline for one frame: classifier and encoder on tract (or on
//! our kernels, [`crate::convnet`], for a convolutional student), the
//! mask decoder native (default) or on tract ([`DecoderKind`]).
//!
//! ```text
//! frame (gray8 / rgb8, any size)
//!   → preprocess   input.color: gray → the luma in every channel, rgb → R, G, B
//!                  (src/pipeline/preprocess.rs); bilinear to S×S (align_corners = false),
//!                  (x − mean) / std
//!   → classifier   logits → presence = sigmoid; cam (h×w)
//!   → gate         presence < gate.presence_threshold: empty mask, stop
//!   → prompt       CAM → boxes (one per kept component, largest first, at most
//!                  prompt.max_boxes) + dense prompt (src/prompt.rs); none: empty mask, stop
//!   → encoder      image_embeddings
//!   → decoder      per box: box corners (labels 2, 3), dense prompt, has_mask_input = 1,
//!                  then prompt.refine_rounds calls with the box of the last mask and its
//!                  logits as mask_input; each call keeps the low_res_masks logits of the
//!                  decoder.mask_tokens mask with the best predicted IoU, and the frame's
//!                  logits are their maximum over the boxes (native or tract:
//!                  src/pipeline/decode.rs)
//!   → postprocess  those logits bilinear to the frame size, > mask_threshold
//! ```
//!
//! A classifier that reads the image embeddings (`graphs.classifier.input =
//! "image_embeddings"`: a presence/CAM head trained on the foundation's
//! embeddings) moves the encoder first; every frame then pays for it:
//!
//! ```text
//! preprocess → encoder → classifier (on image_embeddings) → gate → prompt → decoder → postprocess
//! ```
//!
//! This is what the recipe's `onnx_pipeline.OrtSamMix` does with
//! onnxruntime; `tests/reference_pipeline.rs` checks the two agree on the
//! bundle's reference frames. Every stage is timed.

use std::time::Instant;

use crate::backend::{BackendError, BackendKind, BackendRequest, StageBackend};
use crate::bundle::{Bundle, ClassifierInput, GraphRole, Manifest};
use crate::decoder::NativeDecoder;
use crate::frame::{Frame, Mask};
use crate::prompt::{margin_px, PromptEngine};
use classify::ClassifierStage;

mod classify;
mod confidence;
mod contract;
mod correct;
mod decode;
mod encode;
mod error;
mod postprocess;
mod preprocess;
mod result;

pub use confidence::{review, Review};
pub use contract::{decoder_spec, load_graphs, Graphs, EMBED_DIM};
pub use correct::{
    click_boxes, click_dense, Click, ClickSyntaxError, Correction, EditedBoxes, CLICK_BOX,
    MAX_CLICKS,
};
pub use decode::DecoderKind;
pub use error::PipelineError;
pub use postprocess::{best_token, box_to_frame, MaskResizer};
pub use result::{FrameResult, Outcome, Stability, StageTimes};

use decode::{Calls, Decoders};
use encode::{Embeddings, EncoderStage};
use preprocess::Preprocess;

/// The three graphs of a bundle, ready to run frames.
#[derive(Debug)]
pub struct Pipeline {
    manifest: Manifest,
    graphs: Graphs,
    classifier: ClassifierStage,
    encoder: EncoderStage,
    decoders: Decoders,
    prompt: PromptEngine,
    input: Vec<f32>,
    pre: Preprocess,
    mask_resizer: MaskResizer,
    stability: Option<Stability>,
    tracked_present: bool,
    tracked_box: Option<[f32; 4]>,
    overlap: bool,
    /// Invalid frames in a row so far (logged once per burst).
    invalid_run: u64,
    /// What a correction of the last frame needs.
    last: correct::LastFrame,
    /// The previous frame's mask, for the confidence flag's agreement.
    agreement: confidence::Agreement,
    /// The last frame's CAM (`cam_size`, sigmoid), when kept.
    kept_cam: Option<Vec<f32>>,
}

impl Pipeline {
    /// Loads the bundle's graphs (checked against the contract) into
    /// optimized plans, with the native decoder.
    pub fn new(bundle: &Bundle) -> Result<Pipeline, PipelineError> {
        Pipeline::with_decoder(bundle, DecoderKind::default())
    }

    /// Loads the bundle's classifier and encoder into optimized plans, and
    /// its decoder for `decoder` only (the other is loaded if
    /// [`Pipeline::set_decoder`] asks for it).
    pub fn with_decoder(bundle: &Bundle, decoder: DecoderKind) -> Result<Pipeline, PipelineError> {
        let (graphs, native) = load_graphs(bundle, decoder)?;
        let m = bundle.manifest().clone();
        let s = m.input.size as usize;
        let c = m.input.channels as usize;
        let (ch, cw) = graphs.cam_size;
        let dense = 4 * m.input.embedding_size as usize;
        let prompt = PromptEngine::new(m.prompt.clone(), ch, cw, s, dense);
        let path = bundle.graph_path(GraphRole::Decoder);
        Ok(Pipeline {
            classifier: ClassifierStage::new(&graphs.classifier)?,
            encoder: EncoderStage::new(&graphs.encoder)?,
            decoders: Decoders::new(decoder, &path, &graphs, native, dense)?,
            graphs,
            manifest: m,
            prompt,
            input: vec![0.0; c * s * s],
            pre: Preprocess::default(),
            mask_resizer: MaskResizer::default(),
            stability: None,
            tracked_present: false,
            tracked_box: None,
            overlap: false,
            invalid_run: 0,
            last: correct::LastFrame::default(),
            agreement: confidence::Agreement::default(),
            kept_cam: None,
        })
    }

    /// Turns frame-to-frame smoothing on (or off with `None`) and forgets
    /// what earlier frames said.
    pub fn set_stability(&mut self, stability: Option<Stability>) {
        self.stability = stability;
        self.tracked_present = false;
        self.tracked_box = None;
    }

    /// Measures each frame's mask against the previous frame's
    /// ([`FrameResult::agreement`], one of the confidence flag's signals):
    /// for streams, whose frames follow each other; off by default, since
    /// still images in a row are not a sequence.
    pub fn set_agreement(&mut self, on: bool) {
        self.agreement.on = on;
        self.agreement.reset();
    }

    /// Keeps a copy of each frame's CAM for [`Pipeline::cam`] (reports, a
    /// UI's heat map); off by default. The copy reuses one buffer.
    pub fn keep_cam(&mut self, on: bool) {
        self.kept_cam = on.then(Vec::new);
    }

    /// The last processed frame's CAM as the classifier gave it (height,
    /// width, values row-major), while [`Pipeline::keep_cam`] is on and the
    /// classifier ran on that frame.
    pub fn cam(&self) -> Option<(usize, usize, &[f32])> {
        let cam = self.kept_cam.as_deref()?;
        let (h, w) = self.graphs.cam_size;
        (cam.len() == h * w && !cam.is_empty()).then_some((h, w, cam))
    }

    /// Runs the encoder beside the classifier, on a second thread, while
    /// the target was present in the last frame: a segmented frame then
    /// costs max(classifier, encoder) + decoder instead of the sum. When
    /// the classifier finds the target gone, that frame waits for (and
    /// discards) the encoder it started. Masks are the same either way.
    /// Not combined with embedding reuse (reuse wins). Ignored when the
    /// classifier reads the image embeddings (`graphs.classifier.input`):
    /// the encoder runs before it there, on every frame.
    pub fn set_overlap(&mut self, on: bool) {
        self.overlap = on;
    }

    /// Whether the encoder overlaps the classifier: set by
    /// [`Pipeline::set_overlap`], and the classifier reads the image.
    pub fn overlap(&self) -> bool {
        self.overlap && self.manifest.graphs.classifier_input == ClassifierInput::Image
    }

    /// Skips the encoder when the model input differs from the one whose
    /// embeddings are cached by less than `threshold` (mean absolute
    /// difference of the normalized input; `None`: always encode). For a
    /// probe held still. The cache is compared with the frame it was made
    /// from, not the previous frame, so slow drift cannot pile up. A
    /// classifier that reads the image embeddings reads the cached ones.
    pub fn set_embedding_reuse(&mut self, threshold: Option<f32>) {
        self.encoder.set_reuse(threshold);
    }

    /// Starts the encoder's backend as `request` asks ([`crate::backend`]).
    /// One that cannot start is an error when the request requires it
    /// ([`PipelineError::BackendRequired`], before any frame); else the CPU
    /// runs the encoder, said in one log line and by
    /// [`Pipeline::encoder_fallback`].
    pub fn select_encoder_backend(
        &mut self,
        request: &BackendRequest,
    ) -> Result<(), PipelineError> {
        self.encoder.select(request)
    }

    /// Runs the encoder on `backend` from the next frame on (a backend
    /// started outside [`crate::backend::start`]: a vendor's, a test's). If
    /// its [`StageBackend::run`] fails, the backend is lost: with
    /// `required_by` (who requires it, for the message) the frame fails
    /// with [`PipelineError::BackendRequired`] and the stream stops; without,
    /// the CPU encodes that frame and the rest of the stream, with one
    /// warning.
    pub fn set_encoder_backend(
        &mut self,
        backend: Box<dyn StageBackend>,
        required_by: Option<String>,
    ) {
        self.encoder.set_backend(backend, required_by);
    }

    /// The kind of backend that runs the encoder now.
    pub fn encoder_backend(&self) -> BackendKind {
        self.encoder.backend.kind()
    }

    /// What runs the classifier, in words (`CPU (native kernels)` for a
    /// graph our kernels run whole, else `CPU (tract)`).
    pub fn classifier_backend_name(&self) -> &str {
        self.classifier.name()
    }

    /// The backend that runs the encoder now, in words (`CPU (tract)`).
    pub fn encoder_backend_name(&self) -> &str {
        self.encoder.backend.name()
    }

    /// Why the CPU runs the encoder instead of the backend asked for: it
    /// could not start, or was lost on a frame. `None`: what was asked runs.
    pub fn encoder_fallback(&self) -> Option<&str> {
        self.encoder.fallback()
    }

    /// Runs the mask decoder with `kind` from the next frame on. The first
    /// switch to a kind loads it (tract's plan is built, or the native
    /// decoder reads its weights); both then stay loaded, so switching back
    /// and forth (`sammix bench`) costs nothing.
    pub fn set_decoder(&mut self, kind: DecoderKind) -> Result<(), PipelineError> {
        self.decoders.select(kind, &self.manifest, &mut self.graphs)
    }

    /// The decoder that runs.
    pub fn decoder(&self) -> DecoderKind {
        self.decoders.kind()
    }

    /// The native decoder, when loaded.
    pub fn native_decoder(&self) -> Option<&NativeDecoder> {
        self.decoders.native()
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
    ///
    /// A graph output holding NaN or ±Inf makes the frame
    /// [`Outcome::Invalid`] (empty mask, nothing tracked from it), logged
    /// once per burst of such frames; the next frame runs as usual.
    pub fn process(
        &mut self,
        frame: &Frame,
        mask: &mut Mask,
    ) -> Result<FrameResult, PipelineError> {
        if let Some(kept) = &mut self.kept_cam {
            kept.clear();
        }
        let mut result = self.process_frame(frame, mask)?;
        result.agreement = self.agreement.measure(frame.sequence, result.outcome, mask);
        let gate = self.manifest.gate.presence_threshold;
        result.review = self
            .manifest
            .confidence
            .as_ref()
            .and_then(|c| confidence::review(c, gate, &result));
        match (result.outcome, self.invalid_run) {
            (Outcome::Invalid, 0) => log::warn!(
                "frame {}: {} holds NaN or Inf: frame marked invalid (empty mask); \
                 logged once until a frame is valid again",
                frame.sequence,
                result.invalid_output.unwrap_or("a graph output")
            ),
            (Outcome::Invalid, _) => {}
            (_, 0) => {}
            (_, n) => log::warn!(
                "frame {}: valid again after {n} invalid frame(s)",
                frame.sequence
            ),
        }
        self.invalid_run = match result.outcome {
            Outcome::Invalid => self.invalid_run + 1,
            _ => 0,
        };
        Ok(result)
    }

    /// `result` marked invalid because of `what`; nothing is tracked from it.
    fn invalid(
        &mut self,
        mut result: FrameResult,
        what: &'static str,
        start: Instant,
    ) -> FrameResult {
        self.tracked_present = false;
        self.tracked_box = None;
        self.last.start(self.last.size);
        result.outcome = Outcome::Invalid;
        result.invalid_output = Some(what);
        result.times.total_ms = start.elapsed().as_secs_f64() * 1e3;
        result
    }

    fn process_frame(
        &mut self,
        frame: &Frame,
        mask: &mut Mask,
    ) -> Result<FrameResult, PipelineError> {
        let start = Instant::now();
        let mut times = StageTimes::default();
        let (w, h) = (frame.width(), frame.height());
        mask.reset(w, h);
        self.last.start((w, h));
        let mut lap = Instant::now();
        let mut tick = |slot: &mut f64| {
            let now = Instant::now();
            *slot = (now - lap).as_secs_f64() * 1e3;
            lap = now;
        };

        self.preprocess(frame);
        let s = self.manifest.input.size as usize;
        self.encoder.forget();
        tick(&mut times.preprocess_ms);

        let mut reused = false;
        let embeddings =
            if self.manifest.graphs.classifier_input == ClassifierInput::ImageEmbeddings {
                // The classifier reads the embeddings: the encoder first.
                let todo = Embeddings::ToEncode;
                self.encoder
                    .embeddings(&self.input, todo, frame.sequence, &mut reused)?;
                tick(&mut times.encoder_ms);
                let emb = self.encoder.current().unwrap_or_default();
                self.classifier.run(emb, frame.sequence)?;
                tick(&mut times.classifier_ms);
                Embeddings::Ready
            } else if self.overlap() && self.tracked_present && !self.encoder.reuses() {
                // The encoder beside the classifier: its embeddings, or why not.
                let classifier = &mut self.classifier;
                let (encoder, outs) = self.encoder.overlap_parts();
                let input = &self.input;
                let t0 = Instant::now();
                let (ran, classifier_ms, emb) = std::thread::scope(|scope| {
                    let enc = scope.spawn(move || encoder.run(input, outs));
                    let ran = classifier.run(input, frame.sequence);
                    let classifier_ms = t0.elapsed().as_secs_f64() * 1e3;
                    let emb = match enc.join() {
                        Ok(r) => r,
                        Err(_) => Err(BackendError::Device {
                            detail: "the encoder thread panicked".into(),
                        }),
                    };
                    (ran, classifier_ms, emb)
                });
                // The classifier's own time; the encoder's wait beyond it.
                times.classifier_ms = classifier_ms;
                tick(&mut times.encoder_ms);
                times.encoder_ms = (times.encoder_ms - classifier_ms).max(0.0);
                ran?;
                Embeddings::Overlapped(emb)
            } else {
                self.classifier.run(&self.input, frame.sequence)?;
                tick(&mut times.classifier_ms);
                Embeddings::ToEncode
            };
        let logit = self.classifier.output(0, "logits")?[0];
        let presence = 1.0 / (1.0 + (-logit).exp());

        let mut result = FrameResult {
            sequence: frame.sequence,
            presence,
            outcome: Outcome::Absent,
            box_input: None,
            box_frame: None,
            mask_token: None,
            iou_prediction: None,
            prompts: 0,
            mask_area: 0,
            embedding_reused: reused,
            invalid_output: None,
            cam_peak: None,
            agreement: None,
            review: None,
            times,
        };
        if !logit.is_finite() {
            return Ok(self.invalid(result, "classifier logits", start));
        }
        let cam = self.classifier.output(1, "cam")?;
        if let Some(kept) = &mut self.kept_cam {
            kept.clear();
            kept.extend_from_slice(cam);
        }
        // NaN values are skipped here; a present frame's CAM holding one is
        // invalid below
        let peak = cam.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        result.cam_peak = peak.is_finite().then_some(peak);
        // presence is finite here (a NaN logit made the frame invalid above)
        let threshold = match self.stability {
            Some(s) if self.tracked_present => self.manifest.gate.presence_threshold - s.hysteresis,
            Some(s) => self.manifest.gate.presence_threshold + s.hysteresis,
            None => self.manifest.gate.presence_threshold,
        };
        self.tracked_present = presence >= threshold;
        if !self.tracked_present {
            self.tracked_box = None;
            self.last.sequence = Some(frame.sequence);
            self.encoder.unused(embeddings, frame.sequence)?;
            self.last.has_emb = self.encoder.current().is_some();
            result.times.total_ms = start.elapsed().as_secs_f64() * 1e3;
            return Ok(result);
        }
        if !all_finite(cam) {
            return Ok(self.invalid(result, "classifier cam", start));
        }
        let prompt = self.prompt.compute(cam).map_err(|e| PipelineError::Frame {
            sequence: frame.sequence,
            problem: e.to_string(),
        })?;
        let Some(prompt) = prompt else {
            self.tracked_box = None;
            self.last.sequence = Some(frame.sequence);
            self.encoder.unused(embeddings, frame.sequence)?;
            self.last.has_emb = self.encoder.current().is_some();
            result.outcome = Outcome::NoPrompt;
            tick(&mut result.times.prompt_ms);
            result.times.total_ms = start.elapsed().as_secs_f64() * 1e3;
            return Ok(result);
        };
        let mut boxes = prompt.boxes;
        if let (Some(s), Some(bbox)) = (self.stability, boxes.first_mut()) {
            // The largest component's box is the one tracked.
            if let Some(prev) = self.tracked_box {
                let w = s.box_smoothing;
                for (b, p) in bbox.iter_mut().zip(prev) {
                    *b = w * p + (1.0 - w) * *b;
                }
            }
            self.tracked_box = Some(*bbox);
        }
        let dense_size = 4 * self.manifest.input.embedding_size as usize;
        tick(&mut result.times.prompt_ms);

        if !matches!(embeddings, Embeddings::Ready) {
            let reused = &mut result.embedding_reused;
            self.encoder
                .embeddings(&self.input, embeddings, frame.sequence, reused)?;
            // Overlapped, the wait for the encoder after the classifier is
            // in encoder_ms already: add, do not overwrite.
            let waited = result.times.encoder_ms;
            tick(&mut result.times.encoder_ms);
            result.times.encoder_ms += waited;
        }
        let emb = self.encoder.current().unwrap_or_default();
        if emb.is_empty() || !all_finite(emb) {
            return Ok(self.invalid(result, "encoder image_embeddings", start));
        }

        let m = &self.manifest;
        let calls = Calls {
            boxes: boxes.as_slice(),
            dense: &prompt.dense,
            mask_tokens: &m.decoder.mask_tokens,
            mask_threshold: m.decoder.mask_threshold,
            refine_rounds: m.prompt.refine_rounds,
            input_size: s,
            margin: margin_px(m.prompt.box_margin, s),
        };
        let (first, logits) = self.decoders.run_boxes(emb, &calls, frame.sequence)?;
        tick(&mut result.times.decoder_ms);
        if !all_finite(logits) {
            return Ok(self.invalid(result, "decoder logits", start));
        }

        let threshold = m.decoder.mask_threshold;
        self.mask_resizer
            .resize(logits, dense_size, threshold, mask);
        tick(&mut result.times.postprocess_ms);

        // What a correction of this frame reuses (no allocation once warm:
        // the buffers keep their capacity; the embeddings stay in the
        // encoder's buffer until the next frame).
        self.last.sequence = Some(frame.sequence);
        self.last.mask_area = mask.area();
        self.last.boxes.extend_from_slice(boxes.as_slice());
        // the dense prompt stays in the prompt engine until the next frame
        self.last.has_dense = true;
        self.last.has_emb = true;

        result.outcome = Outcome::Segmented;
        result.box_input = Some(first.bbox);
        result.box_frame = Some(box_to_frame(first.bbox, s, w, h));
        result.mask_token = Some(first.token);
        result.iou_prediction = Some(first.iou);
        result.prompts = boxes.len();
        result.mask_area = mask.area();
        result.times.total_ms = start.elapsed().as_secs_f64() * 1e3;
        Ok(result)
    }

    /// Frame → normalized C×S×S input in `self.input` (the manifest's
    /// `input.color` rule: src/pipeline/preprocess.rs).
    fn preprocess(&mut self, frame: &Frame) {
        self.pre.run(&self.manifest.input, frame, &mut self.input);
    }
}

/// No NaN and no ±Inf.
pub(crate) fn all_finite(values: &[f32]) -> bool {
    values.iter().all(|v| v.is_finite())
}
