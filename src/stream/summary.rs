//! What a stream reports when it ends, and the counts it keeps meanwhile.

use serde::Serialize;

use super::{FrameRecord, Histogram, Outcome, Percentiles};

/// Per-stage latency percentiles (stages a frame skipped are not counted).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct StagePercentiles {
    /// Frame → model input.
    pub preprocess: Percentiles,
    /// Classifier graph.
    pub classifier: Percentiles,
    /// CAM → prompt.
    pub prompt: Percentiles,
    /// Encoder graph.
    pub encoder: Percentiles,
    /// Decoder graph.
    pub decoder: Percentiles,
    /// Mask resize.
    pub postprocess: Percentiles,
}

/// What a stream did.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// Frames processed.
    pub frames: u64,
    /// Wall-clock seconds from start to the last result.
    pub wall_s: f64,
    /// Frames processed per second.
    pub fps: f64,
    /// Frames the source itself skipped: gaps in its sequence numbers (a
    /// capture card's driver dropping frames).
    pub dropped_source: u64,
    /// Frames the capture side dropped (inference was busy).
    pub dropped_capture: u64,
    /// Frames the source delivered out of order: a sequence number not
    /// above the last one's (a duplicate, or a late frame). Dropped before
    /// inference, so the display never steps back in time.
    pub out_of_order: u64,
    /// Results the output side dropped (the sink was busy).
    pub dropped_output: u64,
    /// Capture → result.
    pub latency_ms: Percentiles,
    /// Capture → inference start.
    pub queue_ms: Percentiles,
    /// Per stage.
    pub stage_ms: StagePercentiles,
    /// Frames segmented.
    pub segmented: u64,
    /// Frames gated out as target-absent.
    pub absent: u64,
    /// Frames without a prompt.
    pub no_prompt: u64,
    /// Frames a graph output made invalid (NaN or ±Inf): no decision, empty mask.
    pub invalid: u64,
    /// Frames the confidence flag marked for review
    /// ([`FrameResult::review`](crate::pipeline::FrameResult::review)).
    pub review: u64,
    /// Correction requests applied (clicks on the frame on display).
    pub corrections: u64,
    /// Frames accepted as shown.
    pub accepted: u64,
    /// Correction requests not applied (another frame, bad clicks).
    pub corrections_rejected: u64,
    /// Frames captured while paused ([`StreamOptions::pause`](super::StreamOptions::pause)), not processed.
    pub frozen: u64,
    /// Peak resident memory of the process (kB, Linux `VmHWM`), if known.
    pub peak_rss_kb: Option<u64>,
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) latency: Histogram,
    pub(super) queue: Histogram,
    pub(super) stages: [Histogram; 6],
    pub(super) outcomes: [u64; 4],
    pub(super) review: u64,
    /// Correction requests applied (clicks), accepted, rejected.
    pub(super) corrections: [u64; 3],
}

impl Stats {
    pub(super) fn record(&mut self, rec: &FrameRecord) {
        self.latency.record(rec.latency_ms);
        self.queue.record(rec.queue_ms);
        let t = &rec.result.times;
        let stage = [
            t.preprocess_ms,
            t.classifier_ms,
            t.prompt_ms,
            t.encoder_ms,
            t.decoder_ms,
            t.postprocess_ms,
        ];
        for (h, v) in self.stages.iter_mut().zip(stage) {
            if v > 0.0 {
                h.record(v);
            }
        }
        self.outcomes[match rec.result.outcome {
            Outcome::Segmented => 0,
            Outcome::Absent => 1,
            Outcome::NoPrompt => 2,
            Outcome::Invalid => 3,
        }] += 1;
        self.review += u64::from(rec.result.review.is_some());
    }
}

/// Peak resident set size of this process in kB (Linux), if readable.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
