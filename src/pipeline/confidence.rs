//! The confidence flag: which frames a clinician should look at, from what
//! the model already knows about each frame.
//!
//! Four signals, each a field of [`FrameResult`]: how close the presence
//! probability came to the gate, the CAM's peak (`cam_peak`), the decoder's
//! predicted IoU of the mask it chose (`iou_prediction`) and, in a stream,
//! how well the mask agrees with the previous frame's (`agreement`). The
//! thresholds are the manifest's `[confidence]` section, chosen by the
//! recipe on validation frames; a bundle without one never flags a frame.

use serde::Serialize;

use crate::bundle::ConfidenceParams;
use crate::frame::Mask;

use super::{FrameResult, Outcome};

/// Why a frame is flagged for review (the first rule it fails, in this
/// order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Review {
    /// A graph gave NaN or ±Inf: the frame says nothing.
    Invalid,
    /// The presence probability was within `presence_margin` of the gate.
    NearGate,
    /// Judged present, but the CAM gave no prompt: an empty mask where the
    /// classifier sees a target.
    NoPrompt,
    /// Judged present with a CAM peak below `min_cam_peak`.
    WeakCam,
    /// Segmented, with a predicted IoU below `min_iou_prediction`.
    LowIou,
    /// The mask agrees with the previous frame's by less than
    /// `min_agreement`.
    Unstable,
}

impl Review {
    /// The name written in `results.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Review::Invalid => "invalid",
            Review::NearGate => "near_gate",
            Review::NoPrompt => "no_prompt",
            Review::WeakCam => "weak_cam",
            Review::LowIou => "low_iou",
            Review::Unstable => "unstable",
        }
    }
}

/// The rule: `None` when nothing calls for a look. `gate` is the manifest's
/// presence threshold (not the stream's hysteresis-shifted one: a near call
/// is near the model's own threshold).
pub fn review(c: &ConfidenceParams, gate: f32, r: &FrameResult) -> Option<Review> {
    if r.outcome == Outcome::Invalid {
        return Some(Review::Invalid);
    }
    if (r.presence - gate).abs() < c.presence_margin {
        return Some(Review::NearGate);
    }
    if r.outcome == Outcome::NoPrompt {
        return Some(Review::NoPrompt);
    }
    let present = r.outcome == Outcome::Segmented;
    if present && r.cam_peak.is_some_and(|p| p < c.min_cam_peak) {
        return Some(Review::WeakCam);
    }
    if present && r.iou_prediction.is_some_and(|p| p < c.min_iou_prediction) {
        return Some(Review::LowIou);
    }
    if r.agreement.is_some_and(|a| a < c.min_agreement) {
        return Some(Review::Unstable);
    }
    None
}

/// The previous frame's mask, for the `agreement` of the next one. Off
/// unless a stream turns it on ([`Pipeline::set_agreement`](super::Pipeline::set_agreement)):
/// still images in a row are not a sequence.
#[derive(Debug, Default)]
pub(crate) struct Agreement {
    pub(crate) on: bool,
    previous: Option<u64>,
    size: (usize, usize),
    mask: Vec<u8>,
}

impl Agreement {
    /// The IoU of `mask` with the previous frame's when that frame is
    /// `sequence − 1` at the same size (both empty: 1), then `mask` becomes
    /// the previous one. An invalid frame has none and breaks the chain.
    pub(crate) fn measure(&mut self, sequence: u64, outcome: Outcome, mask: &Mask) -> Option<f32> {
        if !self.on {
            return None;
        }
        if outcome == Outcome::Invalid {
            self.previous = None;
            return None;
        }
        let size = (mask.width(), mask.height());
        let follows = self
            .previous
            .is_some_and(|p| p.checked_add(1) == Some(sequence))
            && self.size == size
            && self.mask.len() == mask.data().len();
        let agreement = follows.then(|| iou(&self.mask, mask.data()));
        // no allocation once warm: the buffer keeps its capacity
        self.mask.clear();
        self.mask.extend_from_slice(mask.data());
        self.size = size;
        self.previous = Some(sequence);
        agreement
    }

    /// Forgets the previous frame.
    pub(crate) fn reset(&mut self) {
        self.previous = None;
    }
}

/// IoU of two masks of equal length (non-zero is target); both empty: 1.
fn iou(a: &[u8], b: &[u8]) -> f32 {
    let (mut inter, mut union) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x != 0, y != 0);
        inter += u64::from(x && y);
        union += u64::from(x || y);
    }
    if union == 0 {
        1.0
    } else {
        (inter as f64 / union as f64) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::StageTimes;

    fn result(outcome: Outcome, presence: f32) -> FrameResult {
        FrameResult {
            sequence: 0,
            presence,
            outcome,
            box_input: None,
            box_frame: None,
            mask_token: None,
            iou_prediction: None,
            prompts: 0,
            mask_area: 0,
            embedding_reused: false,
            invalid_output: None,
            cam_peak: None,
            agreement: None,
            review: None,
            times: StageTimes::default(),
        }
    }

    fn params() -> ConfidenceParams {
        ConfidenceParams {
            presence_margin: 0.1,
            min_iou_prediction: 0.8,
            min_cam_peak: 2.0,
            min_agreement: 0.5,
        }
    }

    #[test]
    fn each_rule_flags_and_the_first_one_failed_is_named() {
        let c = params();
        let mut r = result(Outcome::Segmented, 0.9);
        r.cam_peak = Some(3.0);
        r.iou_prediction = Some(0.9);
        r.agreement = Some(0.9);
        assert_eq!(review(&c, 0.5, &r), None);
        r.agreement = Some(0.4);
        assert_eq!(review(&c, 0.5, &r), Some(Review::Unstable));
        r.iou_prediction = Some(0.7);
        assert_eq!(review(&c, 0.5, &r), Some(Review::LowIou));
        r.cam_peak = Some(1.0);
        assert_eq!(review(&c, 0.5, &r), Some(Review::WeakCam));
        r.presence = 0.55;
        assert_eq!(review(&c, 0.5, &r), Some(Review::NearGate));
        r.outcome = Outcome::Invalid;
        assert_eq!(review(&c, 0.5, &r), Some(Review::Invalid));
    }

    #[test]
    fn absent_and_no_prompt_frames() {
        let c = params();
        // a confident absence: nothing to look at, whatever its CAM
        let mut r = result(Outcome::Absent, 0.1);
        r.cam_peak = Some(0.0);
        assert_eq!(review(&c, 0.5, &r), None);
        // a near one
        r.presence = 0.45;
        assert_eq!(review(&c, 0.5, &r), Some(Review::NearGate));
        // present, no prompt: always
        let r = result(Outcome::NoPrompt, 0.95);
        assert_eq!(review(&c, 0.5, &r), Some(Review::NoPrompt));
    }

    #[test]
    fn neutral_thresholds_flag_only_invalid_and_no_prompt_frames() {
        let c = ConfidenceParams {
            presence_margin: 0.0,
            min_iou_prediction: 0.0,
            min_cam_peak: 0.0,
            min_agreement: 0.0,
        };
        let mut r = result(Outcome::Segmented, 0.5);
        r.cam_peak = Some(0.0);
        r.iou_prediction = Some(0.0);
        r.agreement = Some(0.0);
        assert_eq!(review(&c, 0.5, &r), None);
    }

    #[test]
    fn agreement_needs_consecutive_frames_of_one_size() {
        let mut a = Agreement::default();
        let m1 = Mask::from_bytes(4, 1, &[1, 1, 0, 0]).unwrap();
        let m2 = Mask::from_bytes(4, 1, &[0, 1, 1, 0]).unwrap();
        assert_eq!(
            a.measure(0, Outcome::Segmented, &m1),
            None,
            "off by default"
        );
        a.on = true;
        assert_eq!(
            a.measure(0, Outcome::Segmented, &m1),
            None,
            "no previous frame"
        );
        assert_eq!(a.measure(1, Outcome::Segmented, &m2), Some(1.0 / 3.0));
        assert_eq!(a.measure(3, Outcome::Segmented, &m2), None, "a gap");
        assert_eq!(a.measure(4, Outcome::Segmented, &m2), Some(1.0));
        let empty = Mask::zeros(4, 1);
        assert_eq!(a.measure(5, Outcome::Absent, &empty), Some(0.0));
        assert_eq!(a.measure(6, Outcome::Absent, &empty), Some(1.0));
        let wide = Mask::zeros(5, 1);
        assert_eq!(a.measure(7, Outcome::Absent, &wide), None, "size changed");
        assert_eq!(a.measure(8, Outcome::Invalid, &wide), None);
        assert_eq!(
            a.measure(9, Outcome::Absent, &wide),
            None,
            "after an invalid frame"
        );
        a.reset();
        assert_eq!(a.measure(10, Outcome::Absent, &wide), None);
    }
}
