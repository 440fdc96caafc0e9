//! The streaming pipeline: order, drops, stalls, failures, and agreement
//! with frame-by-frame processing. No test asserts a duration: they check
//! what happened, not how fast.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sammix::bundle::Bundle;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::pipeline::{FrameResult, Pipeline, PipelineError};
use sammix::source::{FrameSource, SourceError, SourceSpec, Truth};
use sammix::stream::{
    self, FrameRecord, FrameSink, Handoff, Processor, StreamError, StreamOptions,
};

#[path = "common/threshold.rs"]
mod threshold;
use threshold::Threshold;

type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch")
}

/// Keeps what it is given.
#[derive(Default)]
struct Collect {
    sequences: Vec<u64>,
    masks: Vec<Vec<u8>>,
    records: Vec<FrameRecord>,
    fail_at: Option<u64>,
    finished: bool,
}

impl FrameSink for Collect {
    fn frame(&mut self, _frame: &Frame, mask: &Mask, record: &FrameRecord) -> SinkResult {
        if self.fail_at == Some(record.result.sequence) {
            return Err("disk full (test)".into());
        }
        self.sequences.push(record.result.sequence);
        self.masks.push(mask.data().to_vec());
        self.records.push(record.clone());
        Ok(())
    }

    fn finish(&mut self) -> SinkResult {
        self.finished = true;
        Ok(())
    }
}

#[test]
fn lossless_stream_matches_frame_by_frame_processing() {
    let bundle = Bundle::open(bundle_dir()).unwrap();
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    let clip = SourceSpec::File(bundle.path_of("demo/clip.y4m"));
    let n = 10;

    let mut sink = Collect::default();
    let opts = StreamOptions {
        max_frames: Some(n),
        ..StreamOptions::default()
    };
    let summary = stream::run(
        clip.open().unwrap().as_mut(),
        &mut pipeline,
        &mut sink,
        &opts,
    )
    .unwrap();
    assert_eq!(summary.frames, n);
    assert_eq!(summary.dropped_capture + summary.dropped_output, 0);
    assert_eq!(sink.sequences, (0..n).collect::<Vec<_>>());
    assert!(sink.finished);
    assert_eq!(summary.latency_ms.n, n);
    assert_eq!(
        summary.segmented + summary.absent + summary.no_prompt,
        n,
        "every frame has an outcome"
    );
    for r in &sink.records {
        assert!(r.latency_ms >= r.result.times.total_ms * 0.99, "{r:?}");
        assert!(r.done_ms >= r.captured_ms);
    }

    // The same frames one by one give the same masks.
    let mut source = clip.open().unwrap();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut mask = Mask::zeros(1, 1);
    for want in &sink.masks {
        assert!(source.next_frame(&mut frame).unwrap());
        pipeline.process(&frame, &mut mask).unwrap();
        assert_eq!(mask.data(), &want[..], "frame {}", frame.sequence);
    }
}

#[test]
fn newest_frame_mode_drops_stale_frames_and_counts_them() {
    // The phantom paced at 2 ms per frame, inference at 20 ms per frame:
    // inference keeps up with about one frame in ten.
    let mut source = SourceSpec::Synthetic(1).open().unwrap();
    let mut sink = Collect::default();
    let opts = StreamOptions {
        handoff: Handoff::Newest,
        max_frames: Some(8),
        pace: Some(Duration::from_millis(2)),
        ..StreamOptions::default()
    };
    let summary = stream::run(
        source.as_mut(),
        &mut Threshold(Duration::from_millis(20)),
        &mut sink,
        &opts,
    )
    .unwrap();
    assert_eq!(summary.frames, 8);
    assert!(summary.dropped_capture > 0, "{summary:?}");
    assert!(
        sink.sequences.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        sink.sequences
    );
    let skipped = sink.sequences.last().unwrap() + 1 - sink.sequences.len() as u64;
    assert!(skipped > 0, "{:?}", sink.sequences);
    // Every sequence skipped before the last frame taken was counted by
    // then; frames dropped after it count in the summary only.
    let last = sink.records.last().unwrap().dropped;
    assert!(
        last >= skipped && summary.dropped_capture >= last,
        "{last} {skipped} {summary:?}"
    );
}

/// A source that delivers two frames, then stops answering.
struct Hang(u64);

impl FrameSource for Hang {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if self.0 >= 2 {
            std::thread::sleep(Duration::from_millis(1500));
        }
        sammix::source::synthetic::render(0, self.0, frame);
        self.0 += 1;
        Ok(true)
    }
    fn frame_name(&self, sequence: u64) -> String {
        sequence.to_string()
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

#[test]
fn a_source_that_stops_answering_ends_the_stream_with_an_error() {
    let mut sink = Collect::default();
    // Lossless: in newest-frame mode a loaded machine may drop frame 0
    // before inference takes it, and the sink would see only frame 1.
    let opts = StreamOptions {
        handoff: Handoff::Lossless,
        stall_timeout: Duration::from_millis(300),
        ..StreamOptions::default()
    };
    let err = stream::run(
        &mut Hang(0),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &opts,
    )
    .unwrap_err();
    assert!(matches!(err, StreamError::Stalled(_)), "{err}");
    assert!(
        err.to_string().contains("no frame from the source"),
        "{err}"
    );
    assert_eq!(sink.sequences, [0, 1]);
}

#[test]
fn a_failing_sink_stops_the_stream_with_its_error() {
    let mut source = SourceSpec::Synthetic(2).open().unwrap();
    let mut sink = Collect {
        fail_at: Some(3),
        ..Collect::default()
    };
    let err = stream::run(
        source.as_mut(),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &StreamOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(sink.sequences, [0, 1, 2]);
}

#[test]
fn a_truncated_clip_ends_the_stream_with_the_file_and_frame_named() {
    let clip = std::fs::read(bundle_dir().join("demo/clip.y4m")).unwrap();
    let header = clip.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame = 6 + 256 * 256;
    let path = std::env::temp_dir().join(format!("sammix-stream-trunc-{}.y4m", std::process::id()));
    std::fs::write(&path, &clip[..header + 3 * frame + 100]).unwrap();
    let mut source = SourceSpec::File(path.clone()).open().unwrap();
    let mut sink = Collect::default();
    let err = stream::run(
        source.as_mut(),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &StreamOptions::default(),
    )
    .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()) && text.contains("frame 3"),
        "{text}"
    );
    assert_eq!(
        sink.sequences,
        [0, 1, 2],
        "the frames before the damage are kept"
    );
}

/// A source whose frames skip every other sequence number, like a capture
/// driver that dropped them.
struct Gappy(u64);

impl FrameSource for Gappy {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if self.0 >= 6 {
            return Ok(false);
        }
        sammix::source::synthetic::render(0, self.0, frame);
        frame.sequence = 2 * self.0;
        self.0 += 1;
        Ok(true)
    }
    fn frame_name(&self, sequence: u64) -> String {
        sequence.to_string()
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

#[test]
fn sequence_gaps_of_the_source_count_as_drops() {
    let mut sink = Collect::default();
    let summary = stream::run(
        &mut Gappy(0),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &StreamOptions::default(),
    )
    .unwrap();
    assert_eq!(summary.frames, 6);
    assert_eq!(summary.dropped_source, 5);
    assert_eq!(sink.sequences, [0, 2, 4, 6, 8, 10]);
    assert_eq!(sink.records.last().unwrap().dropped, 5);
}

/// Synthetic frames (`end` of them, or endless) that store `true` into a
/// shared flag when frame `set` is read and `false` when frame `clear` is:
/// a freeze button pressed twice, a SIGTERM arriving mid-stream.
struct Flagging {
    n: u64,
    end: Option<u64>,
    flag: Arc<AtomicBool>,
    set: u64,
    clear: Option<u64>,
}

impl FrameSource for Flagging {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if self.end.is_some_and(|end| self.n >= end) {
            return Ok(false);
        }
        if self.n == self.set {
            self.flag.store(true, Ordering::Release);
        }
        if self.clear == Some(self.n) {
            self.flag.store(false, Ordering::Release);
        }
        sammix::source::synthetic::render(0, self.n, frame);
        self.n += 1;
        Ok(true)
    }
    fn frame_name(&self, sequence: u64) -> String {
        sequence.to_string()
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

#[test]
fn frames_captured_while_paused_are_counted_not_processed() {
    let pause = Arc::new(AtomicBool::new(false));
    // Ten frames, paused before frame 4 and resumed before frame 8.
    let mut source = Flagging {
        n: 0,
        end: Some(10),
        flag: Arc::clone(&pause),
        set: 4,
        clear: Some(8),
    };
    let mut sink = Collect::default();
    let opts = StreamOptions {
        pause: Some(pause),
        stall_timeout: Duration::from_secs(5),
        ..StreamOptions::default()
    };
    let summary = stream::run(
        &mut source,
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &opts,
    )
    .unwrap();
    // Frames 4..=6 are taken while paused. Frames 3 and 7 are taken while
    // capture may already be setting (clearing) the flag for the next frame,
    // so each goes either way; the rest is fixed.
    let seq = &sink.sequences;
    assert!(seq.windows(2).all(|w| w[0] < w[1]), "{seq:?}");
    assert!(seq.iter().all(|s| ![4, 5, 6].contains(s)), "{seq:?}");
    assert!([0, 1, 2, 8, 9].iter().all(|s| seq.contains(s)), "{seq:?}");
    assert_eq!(summary.frames, sink.sequences.len() as u64);
    assert_eq!(summary.frozen, 10 - summary.frames);
    assert_eq!(summary.dropped_capture + summary.dropped_output, 0);
    assert!(sink.finished);
}

/// Hands frame k over only once k frames are processed (no drops in
/// newest-frame mode); after three it waits and fails like a capture card
/// that sends nothing more.
struct Lockstep {
    n: u64,
    processed: Arc<std::sync::atomic::AtomicU64>,
}

impl FrameSource for Lockstep {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        let t0 = std::time::Instant::now();
        while self.processed.load(Ordering::Acquire) < self.n
            && t0.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        if self.n >= 3 {
            std::thread::sleep(Duration::from_millis(200));
            return Err(SourceError::Folder {
                path: "/dev/video-test".into(),
                problem: "no frame within 0.2 s (test)".into(),
            });
        }
        sammix::source::synthetic::render(0, self.n, frame);
        self.n += 1;
        Ok(true)
    }
    fn frame_name(&self, sequence: u64) -> String {
        sequence.to_string()
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

/// Counts the frames it has processed for [`Lockstep`].
struct Counting(Arc<std::sync::atomic::AtomicU64>);

impl Processor for Counting {
    fn process(&mut self, frame: &Frame, mask: &mut Mask) -> Result<FrameResult, PipelineError> {
        let r = Threshold(Duration::ZERO).process(frame, mask);
        self.0.fetch_add(1, Ordering::AcqRel);
        r
    }
}

#[test]
fn a_live_source_failing_after_the_frame_limit_is_no_error() {
    // A live device read is still waiting when inference reaches --frames
    // and ends the stream: its later timeout must not turn a complete run
    // into a failure.
    let processed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut source = Lockstep {
        n: 0,
        processed: Arc::clone(&processed),
    };
    let mut sink = Collect::default();
    let opts = StreamOptions {
        handoff: Handoff::Newest,
        max_frames: Some(3),
        ..StreamOptions::default()
    };
    let summary = stream::run(&mut source, &mut Counting(processed), &mut sink, &opts).unwrap();
    assert_eq!(summary.frames, 3);
    assert_eq!(sink.sequences, [0, 1, 2]);
    // Without the limit the same failure is the stream's error.
    let processed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut source = Lockstep {
        n: 0,
        processed: Arc::clone(&processed),
    };
    let opts = StreamOptions {
        handoff: Handoff::Newest,
        ..StreamOptions::default()
    };
    let err = stream::run(
        &mut source,
        &mut Counting(processed),
        &mut Collect::default(),
        &opts,
    )
    .unwrap_err();
    assert!(err.to_string().contains("/dev/video-test"), "{err}");
}

#[test]
fn the_stop_flag_ends_an_endless_stream_cleanly() {
    for handoff in [Handoff::Lossless, Handoff::Newest] {
        let stop = Arc::new(AtomicBool::new(false));
        // Endless; the stop flag is raised when frame 5 is read.
        let mut source = Flagging {
            n: 0,
            end: None,
            flag: Arc::clone(&stop),
            set: 5,
            clear: None,
        };
        let mut sink = Collect::default();
        let opts = StreamOptions {
            handoff,
            stop: Some(stop),
            stall_timeout: Duration::from_secs(5),
            ..StreamOptions::default()
        };
        let summary = stream::run(
            &mut source,
            &mut Threshold(Duration::from_millis(2)),
            &mut sink,
            &opts,
        )
        .unwrap();
        // Frames read before the flag was seen are processed; none after.
        assert!(
            summary.frames <= 6,
            "{handoff:?}: {} frames",
            summary.frames
        );
        // Every processed frame reached the sink or was counted as dropped on
        // the output side: a busy sink (its thread not scheduled in time on a
        // loaded machine) drops results with the newest handoff, and with
        // either once the stop is raised (the stream does not wait on it).
        assert_eq!(
            summary.frames,
            sink.sequences.len() as u64 + summary.dropped_output,
            "{handoff:?}"
        );
        assert!(sink.finished, "{handoff:?}: the sink was not finished");
    }
}
