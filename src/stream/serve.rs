//! Correction requests served between frames, on the inference thread:
//! each on the frame on display, or rejected naming the one that is.

use std::collections::VecDeque;
use std::sync::mpsc::SyncSender;
use std::time::Instant;

use crate::frame::{Frame, Mask};

use super::{ms, CorrectionQueue, CorrectionRecord, Out, Processor, Request};

pub(super) struct CorrectionOut {
    pub(super) record: CorrectionRecord,
    pub(super) corrected: Option<(Frame, Mask)>,
}

/// The frame on display, as correction requests need it.
pub(super) struct OnDisplay {
    pub(super) frame: Frame,
    pub(super) done_ms: f64,
    pub(super) valid: bool,
}

/// Correction requests in the inference thread's hands.
pub(super) struct Corrections<'a> {
    pub(super) queue: &'a CorrectionQueue,
    /// Requests for a frame not processed yet: served once it is (a
    /// scripted session replays frame by frame), rejected if the stream
    /// skips it or ends first.
    pub(super) deferred: VecDeque<Request>,
    /// Applied (clicks), accepted, rejected.
    pub(super) counts: [u64; 3],
}

impl Corrections<'_> {
    /// Serves the requests due (between frames, on the inference thread);
    /// at the `end` of the stream every request left is served or
    /// rejected. `false` when the output thread is gone.
    pub(super) fn serve(
        &mut self,
        pipeline: &mut dyn Processor,
        shown: Option<&OnDisplay>,
        start: Instant,
        tx: &SyncSender<Out>,
        end: bool,
    ) -> bool {
        let current = shown.map(|d| d.frame.sequence);
        let earlier = self.deferred.len();
        let mut taken = 0;
        loop {
            let request = if taken < earlier {
                taken += 1;
                self.deferred.pop_front()
            } else {
                self.queue.pop()
            };
            let Some(request) = request else {
                return true;
            };
            if !end && current.is_none_or(|c| request.frame() > c) {
                self.deferred.push_back(request);
                continue;
            }
            let record = self.serve_one(pipeline, request, shown, start);
            if tx.send(Out::Correction(Box::new(record))).is_err() {
                return false;
            }
        }
    }

    fn serve_one(
        &mut self,
        pipeline: &mut dyn Processor,
        request: Request,
        shown: Option<&OnDisplay>,
        start: Instant,
    ) -> CorrectionOut {
        let frame_no = request.frame();
        let on_display = shown.filter(|d| d.valid && d.frame.sequence == frame_no);
        let mut record = CorrectionRecord {
            frame: frame_no,
            kind: "accept",
            points: Vec::new(),
            at_ms: ms(start.elapsed()),
            shown_ms: on_display.map(|d| d.done_ms),
            correction: None,
            rejected: None,
        };
        let mut corrected = None;
        match (request, on_display) {
            (request, None) => {
                if let Request::Clicks { clicks, .. } = request {
                    record.kind = "clicks";
                    record.points = clicks;
                }
                record.rejected = Some(match shown.map(|d| d.frame.sequence) {
                    Some(c) if c == frame_no => {
                        format!("frame {frame_no} has no valid result to correct")
                    }
                    Some(c) if c > frame_no => format!(
                        "frame {frame_no} is not the one on display (frame {c}): pause the stream to correct"
                    ),
                    _ => format!("frame {frame_no} was not processed (the stream ended first)"),
                });
            }
            (Request::Accept { .. }, Some(_)) => {}
            (Request::Clicks { clicks, .. }, Some(d)) => {
                record.kind = "clicks";
                let mut mask = Mask::zeros(1, 1);
                match pipeline.correct(&clicks, &mut mask) {
                    Ok(c) => {
                        record.correction = Some(c);
                        corrected = Some((d.frame.clone(), mask));
                    }
                    Err(e) => record.rejected = Some(e.to_string()),
                }
                record.points = clicks;
            }
        }
        match (&record.rejected, record.kind) {
            (Some(why), _) => {
                self.counts[2] += 1;
                log::warn!("correction of frame {frame_no} not applied: {why}");
            }
            (None, "accept") => self.counts[1] += 1,
            (None, _) => self.counts[0] += 1,
        }
        CorrectionOut { record, corrected }
    }
}
