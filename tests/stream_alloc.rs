//! Heap allocations per frame in a warm stream, counted by a global
//! allocator. One test function only: the counter is process-wide, and
//! tests running side by side would count each other's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sammix::bundle::Bundle;
use sammix::frame::{Frame, Mask};
use sammix::pipeline::{FrameResult, Outcome, Pipeline, PipelineError, StageTimes};
use sammix::source::SourceSpec;
use sammix::stream::{self, FrameRecord, FrameSink, Handoff, Processor, StreamOptions};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a relaxed atomic and does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Reads the counter when frames `from` and `to` reach the output.
struct Window {
    from: u64,
    to: u64,
    at_from: u64,
    at_to: u64,
}

impl FrameSink for Window {
    fn frame(
        &mut self,
        _frame: &Frame,
        _mask: &Mask,
        record: &FrameRecord,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let seq = record.result.sequence;
        if seq == self.from {
            self.at_from = ALLOCATIONS.load(Ordering::Relaxed);
        }
        if seq == self.to {
            self.at_to = ALLOCATIONS.load(Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Thresholds the frame: the stream's own cost, no engine.
struct Threshold;

impl Processor for Threshold {
    fn process(&mut self, frame: &Frame, mask: &mut Mask) -> Result<FrameResult, PipelineError> {
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
            mask_area: 0,
            embedding_reused: false,
            times: StageTimes::default(),
        })
    }
}

fn per_frame(processor: &mut dyn Processor, from: u64, to: u64, handoff: Handoff) -> f64 {
    let mut source = SourceSpec::Synthetic(5).open().unwrap();
    let mut window = Window {
        from,
        to,
        at_from: 0,
        at_to: 0,
    };
    let opts = StreamOptions {
        handoff,
        max_frames: Some(to + 1),
        stall_timeout: Duration::from_secs(30),
        ..StreamOptions::default()
    };
    let summary = stream::run(source.as_mut(), processor, &mut window, &opts).unwrap();
    assert!(summary.frames > to);
    (window.at_to - window.at_from) as f64 / (to - from) as f64
}

#[test]
fn a_warm_stream_allocates_nothing_per_frame() {
    // The stream itself (capture thread, synthetic source, frame pool,
    // hand-off, output queue, statistics): zero, over 300 frames.
    let stream_only = per_frame(&mut Threshold, 50, 350, Handoff::Lossless);
    assert_eq!(
        stream_only, 0.0,
        "allocations per frame in the stream's own code"
    );

    // With the tract pipeline: tract allocates its tensors per run. Not
    // zero (yet), but constant: no allocation grows with the stream.
    let bundle =
        Bundle::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-tiny")).unwrap();
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    let early = per_frame(&mut pipeline, 5, 15, Handoff::Lossless);
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    let late = per_frame(&mut pipeline, 25, 35, Handoff::Lossless);
    eprintln!(
        "tract pipeline: {early:.0} allocations per frame (frames 5-15), {late:.0} (frames 25-35)"
    );
    assert!(early > 0.0);
    assert!(
        (late - early).abs() <= 0.05 * early,
        "allocations per frame grow: {early} -> {late}"
    );
}
