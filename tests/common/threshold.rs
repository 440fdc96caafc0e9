//! A stand-in for the pipeline in the stream tests (`stream.rs`,
//! `stream_alloc.rs`, `stream_faults.rs`, each through `#[path]`): it
//! waits a fixed time, then thresholds the frame into the mask. It
//! allocates nothing once the mask has reached the frame size.

use std::time::Duration;

use sammix::frame::{Frame, Mask};
use sammix::pipeline::{FrameResult, Outcome, PipelineError, StageTimes};
use sammix::stream::Processor;

/// Waits `.0`, then marks pixels below 20 as target.
pub struct Threshold(pub Duration);

impl Processor for Threshold {
    fn process(&mut self, frame: &Frame, mask: &mut Mask) -> Result<FrameResult, PipelineError> {
        if !self.0.is_zero() {
            std::thread::sleep(self.0);
        }
        mask.reset(frame.width(), frame.height());
        for (m, &p) in mask.data_mut().iter_mut().zip(frame.data()) {
            *m = u8::from(p < 20);
        }
        Ok(FrameResult {
            sequence: frame.sequence,
            presence: 1.0,
            outcome: Outcome::Segmented,
            box_input: None,
            box_frame: None,
            mask_token: None,
            iou_prediction: None,
            prompts: 0,
            mask_area: mask.area(),
            embedding_reused: false,
            invalid_output: None,
            cam_peak: None,
            agreement: None,
            review: None,
            times: StageTimes::default(),
        })
    }
}
