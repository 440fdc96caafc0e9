//! Heap allocations per warm frame of the whole per-frame path on the
//! default bundle as release builds run it: the student's encoder and
//! presence/CAM head on our kernels (`SAMMIX_CONVNET=native`), the native
//! decoder, the prompt rule, the mask resize, presence stability and the
//! mask agreement on, the stream with its source and sink each on a thread
//! of their own (`Watched`, `WatchedSink`), as `sammix run` has them.
//! Counted by a global allocator over 300 frames of the demo clip, played
//! three times over; the window must hold segmented and gated-out frames.
//!
//! A binary of its own without libtest (`harness = false` in `Cargo.toml`:
//! libtest's "running for over 60 seconds" notice allocates, and the
//! counter is process-wide); the variable is set for the process before
//! the pipeline is built. A failed check panics: exit status 101. Our crate
//! is unoptimized in debug builds (1.5 s a frame on the native kernels), so
//! there the window is 6 frames; `make test` also runs this file in the
//! release build, where it is 300.

use std::path::PathBuf;
use std::time::Duration;

use sammix::bundle::Bundle;
use sammix::frame::{Frame, PixelFormat};
use sammix::pipeline::{Pipeline, Stability};
use sammix::source::{FrameSource, SourceError, SourceSpec, Truth, Watched};
use sammix::stream::{self, Handoff, StreamOptions, WatchedSink};

#[path = "common/counting.rs"]
mod counting;
use counting::Window;

/// The clip's frames, read once, played again and again.
struct Looping {
    frames: Vec<Frame>,
    next: u64,
}

impl FrameSource for Looping {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        let from = &self.frames[(self.next % self.frames.len() as u64) as usize];
        frame.reset(from.width(), from.height(), from.format());
        frame.data_mut().copy_from_slice(from.data());
        frame.sequence = self.next;
        self.next += 1;
        Ok(true)
    }
    fn frame_name(&self, sequence: u64) -> String {
        format!("{sequence:06}")
    }
    fn frame_rate(&self) -> Option<(u32, u32)> {
        None
    }
    fn len_hint(&self) -> Option<u64> {
        None
    }
    fn truth(&self) -> Option<Truth> {
        None
    }
}

fn main() {
    the_default_bundles_warm_frames_allocate_nothing();
    println!("pipeline_alloc: ok");
}

fn the_default_bundles_warm_frames_allocate_nothing() {
    std::env::set_var("SAMMIX_CONVNET", "native");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-tiny");
    let bundle = Bundle::open(&dir).unwrap();
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    assert_eq!(pipeline.encoder_backend_name(), "CPU (native kernels)");
    assert_eq!(pipeline.classifier_backend_name(), "CPU (native kernels)");
    pipeline.set_stability(Some(Stability::default()));
    pipeline.set_agreement(true);

    let mut clip = SourceSpec::File(dir.join("demo/clip.y4m")).open().unwrap();
    let mut frames = Vec::new();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    while clip.next_frame(&mut frame).unwrap() {
        frames.push(frame.clone());
    }
    assert!(
        frames.len() >= 100,
        "{} frames in the demo clip",
        frames.len()
    );

    // Release: frames 20-320 of the clip looped; debug: 20-26 (the target
    // is present in frame 20 on and absent in the frames after 26).
    let (from, to) = if cfg!(debug_assertions) {
        (20, 26)
    } else {
        (20, 320)
    };
    let source = Looping { frames, next: 0 };
    let mut source = Watched::new(
        Box::new(source),
        "demo clip, looped",
        Duration::from_secs(60),
    )
    .unwrap();
    let mut sink =
        WatchedSink::new(Window::new(from, to), "window", Duration::from_secs(60)).unwrap();
    let opts = StreamOptions {
        handoff: Handoff::Lossless,
        max_frames: Some(to + 1),
        stall_timeout: Duration::from_secs(60),
        ..StreamOptions::default()
    };
    let summary = stream::run(&mut source, &mut pipeline, &mut sink, &opts).unwrap();
    assert!(summary.frames > to);
    let window = sink.into_inner().unwrap();
    let allocations = window.allocations();
    eprintln!(
        "frames {from}-{to}: {} segmented, {} gated out, {allocations} allocations",
        window.segmented, window.absent
    );
    assert!(window.segmented > 0, "no segmented frame in the window");
    if !cfg!(debug_assertions) {
        assert!(window.absent > 0, "no gated-out frame in the window");
    }
    assert_eq!(allocations, 0, "allocations in {} warm frames", to - from);
}
