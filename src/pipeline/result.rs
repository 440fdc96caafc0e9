//! What the pipeline says about a frame: its outcome, per-stage times and
//! result, and the stream smoothing it may apply.

use serde::Serialize;

/// What happened to a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The classifier said the target is absent: no decoder, and no
    /// encoder either when the classifier reads the image (the default).
    /// A classifier that reads the image embeddings ran after the encoder.
    Absent,
    /// Present, but the CAM gave no prompt (nothing above the threshold
    /// large enough): empty mask.
    NoPrompt,
    /// Segmented by SAM.
    Segmented,
    /// A graph gave NaN or ±Inf ([`FrameResult::invalid_output`] says
    /// which): the frame says nothing, present or absent; empty mask.
    Invalid,
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
    /// Decoder: every call of the frame (boxes and refinements).
    pub decoder_ms: f64,
    /// Resize to the frame.
    pub postprocess_ms: f64,
    /// The whole call.
    pub total_ms: f64,
}

/// The result of one frame (the mask itself goes to the caller's [`Mask`](crate::frame::Mask)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameResult {
    /// The frame's sequence number.
    pub sequence: u64,
    /// sigmoid(classifier logit).
    pub presence: f32,
    /// What happened.
    pub outcome: Outcome,
    /// The box prompt in encoder-input pixels (x0, y0, x1, y1): the largest
    /// component's, as its last (refined) decoder call had it.
    pub box_input: Option<[f32; 4]>,
    /// The same box in frame pixels.
    pub box_frame: Option<[f32; 4]>,
    /// Index of the decoder mask that call chose.
    pub mask_token: Option<usize>,
    /// Its predicted IoU.
    pub iou_prediction: Option<f32>,
    /// Boxes the decoder was prompted with (0 unless segmented; at most
    /// `prompt.max_boxes`).
    pub prompts: usize,
    /// Target pixels in the mask (frame size).
    pub mask_area: usize,
    /// The encoder was skipped: the frame was close enough to the one whose
    /// image embeddings are cached ([`Pipeline::set_embedding_reuse`](super::Pipeline::set_embedding_reuse)).
    pub embedding_reused: bool,
    /// For an [`Outcome::Invalid`] frame, the graph output that held NaN or
    /// ±Inf (`"classifier logits"`, `"classifier cam"`, `"encoder
    /// image_embeddings"`, `"decoder logits"`).
    pub invalid_output: Option<&'static str>,
    /// The classifier's CAM peak: its largest value, in the classifier's
    /// own units (a weak peak is a weak localization); `None` when the
    /// classifier's logit was not finite.
    pub cam_peak: Option<f32>,
    /// In a stream, the IoU of this mask with the previous frame's (both
    /// empty: 1); `None` for still images, the first frame and after a gap.
    pub agreement: Option<f32>,
    /// Why a clinician should look at this frame (the manifest's
    /// `[confidence]` rules); `None`: nothing calls for a look, or the
    /// bundle has no rules.
    pub review: Option<super::Review>,
    /// Per-stage milliseconds.
    pub times: StageTimes,
}

/// Frame-to-frame smoothing for streams, so the overlay does not flicker.
/// Off unless set with [`Pipeline::set_stability`](super::Pipeline::set_stability).
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
