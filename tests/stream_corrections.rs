//! Corrections during a stream: a request for the frame on display re-runs
//! the decoder and gives the mask frame-by-frame correction gives; one for
//! another frame, or with a click off the frame, is rejected and the
//! stream goes on; an acceptance is logged with the time the frame was
//! shown. No test asserts a duration.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sammix::bundle::Bundle;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::pipeline::{Click, Pipeline};
use sammix::source::{FrameSource, SourceError, SourceSpec, Truth};
use sammix::stream::{
    self, CorrectionQueue, CorrectionRecord, FileFeed, FrameRecord, FrameSink, Request,
    StreamOptions,
};

type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch")
}

/// The clip, holding back frame k + 1 until `release` reaches k + 1 (the
/// display frozen on frame k while the clinician clicks).
struct Held {
    inner: Box<dyn FrameSource>,
    delivered: u64,
    release: Arc<AtomicU64>,
}

impl FrameSource for Held {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if self.delivered >= 1 {
            let since = Instant::now();
            while self.release.load(Ordering::Acquire) < self.delivered {
                if since.elapsed() > Duration::from_secs(60) {
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        self.delivered += 1;
        self.inner.next_frame(frame)
    }
    fn frame_name(&self, sequence: u64) -> String {
        self.inner.frame_name(sequence)
    }
    fn frame_rate(&self) -> Option<(u32, u32)> {
        self.inner.frame_rate()
    }
    fn len_hint(&self) -> Option<u64> {
        self.inner.len_hint()
    }
    fn truth(&self) -> Option<Truth> {
        None
    }
}

/// A served request and the mask bytes the sink was handed with it.
type Served = (CorrectionRecord, Option<Vec<u8>>);

/// Sends its requests when their frame arrives; keeps what comes back,
/// releasing frame k + 1 once frame k's requests are served.
struct Clinician {
    queue: Arc<CorrectionQueue>,
    /// (frame, requests to send when it arrives, records to wait for)
    requests: Vec<(u64, Vec<Request>, usize)>,
    release: Arc<AtomicU64>,
    frames: Vec<u64>,
    corrections: Arc<Mutex<Vec<Served>>>,
}

impl FrameSink for Clinician {
    fn frame(&mut self, _frame: &Frame, _mask: &Mask, record: &FrameRecord) -> SinkResult {
        let seq = record.result.sequence;
        self.frames.push(seq);
        for (frame, requests, _) in &mut self.requests {
            if *frame == seq {
                for r in requests.drain(..) {
                    self.queue.push(r);
                }
            }
        }
        if self.corrections.lock().unwrap().len() >= self.waiting_for(seq) {
            self.release.store(seq + 1, Ordering::Release);
        }
        Ok(())
    }

    fn correction(
        &mut self,
        record: &CorrectionRecord,
        corrected: Option<(&Frame, &Mask)>,
    ) -> SinkResult {
        if let Some((frame, mask)) = corrected {
            assert_eq!(frame.sequence, record.frame);
            assert_eq!(
                (mask.width(), mask.height()),
                (frame.width(), frame.height())
            );
        }
        let mut got = self.corrections.lock().unwrap();
        got.push((record.clone(), corrected.map(|(_, m)| m.data().to_vec())));
        let n = got.len();
        drop(got);
        let shown = *self.frames.last().unwrap_or(&0);
        if n >= self.waiting_for(shown) {
            self.release.store(shown + 1, Ordering::Release);
        }
        Ok(())
    }
}

impl Clinician {
    /// Records that must have come back before the frame after `seq` is let through.
    fn waiting_for(&self, seq: u64) -> usize {
        self.requests
            .iter()
            .filter(|(f, _, _)| *f <= seq)
            .map(|(_, _, n)| *n)
            .sum()
    }
}

fn click(x: f32, y: f32, positive: bool) -> Click {
    Click { x, y, positive }
}

#[test]
fn a_correction_of_the_frame_on_display_matches_frame_by_frame_correction() {
    let bundle = Bundle::open(bundle_dir()).unwrap();
    let clip = SourceSpec::File(bundle.path_of("demo/clip.y4m"));
    let clicks = vec![click(40.0, 60.0, true), click(150.0, 120.0, false)];

    // frame by frame: frame 0, then the clicks
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    let mut source = clip.open().unwrap();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    assert!(source.next_frame(&mut frame).unwrap());
    let mut expected = Mask::zeros(1, 1);
    pipeline.process(&frame, &mut expected).unwrap();
    let before = expected.area();
    let reference = pipeline.correct(&clicks, &mut expected).unwrap();

    // the stream, frozen on frame 0 until the requests are served
    let mut pipeline = Pipeline::new(&bundle).unwrap();
    let release = Arc::new(AtomicU64::new(0));
    let queue = CorrectionQueue::new();
    let corrections = Arc::new(Mutex::new(Vec::new()));
    let mut sink = Clinician {
        queue: Arc::clone(&queue),
        requests: vec![
            (
                0,
                vec![
                    // for a frame not processed yet: waits for it
                    Request::Accept { frame: 5 },
                    Request::Clicks {
                        frame: 0,
                        clicks: clicks.clone(),
                    },
                    Request::Clicks {
                        frame: 0,
                        clicks: vec![click(1e6, 3.0, true)],
                    },
                    Request::Accept { frame: 0 },
                ],
                3,
            ),
            // too late: frame 1 is on display
            (1, vec![Request::Accept { frame: 0 }], 1),
        ],
        release: Arc::clone(&release),
        frames: Vec::new(),
        corrections: Arc::clone(&corrections),
    };
    let mut held = Held {
        inner: clip.open().unwrap(),
        delivered: 0,
        release,
    };
    let opts = StreamOptions {
        max_frames: Some(3),
        corrections: Some(queue),
        ..StreamOptions::default()
    };
    let summary = stream::run(&mut held, &mut pipeline, &mut sink, &opts).unwrap();
    assert_eq!(sink.frames, vec![0, 1, 2], "the stream went on");
    assert_eq!(
        (
            summary.corrections,
            summary.accepted,
            summary.corrections_rejected
        ),
        (1, 1, 3)
    );
    let got = corrections.lock().unwrap();
    let kinds: Vec<(&str, u64, bool)> = got
        .iter()
        .map(|(r, _)| (r.kind, r.frame, r.rejected.is_some()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("clicks", 0, false),
            ("clicks", 0, true),
            ("accept", 0, false),
            ("accept", 0, true),
            ("accept", 5, true),
        ]
    );
    let (applied, mask) = &got[0];
    let c = applied.correction.as_ref().unwrap();
    assert_eq!(
        mask.as_deref(),
        Some(expected.data()),
        "the same mask as frame by frame"
    );
    assert_eq!(c.mask_area_before, before);
    assert_eq!(c.mask_area, reference.mask_area);
    assert!(!c.encoder_ran, "only the decoder ran");
    assert_eq!(applied.points, clicks);
    let (off_frame, mask) = &got[1];
    assert!(mask.is_none());
    let why = off_frame.rejected.as_deref().unwrap();
    assert!(why.contains("outside"), "{why}");
    let (accept, _) = &got[2];
    assert!(
        accept.at_ms >= accept.shown_ms.unwrap(),
        "accepted after it was shown"
    );
    let why = got[3].0.rejected.as_deref().unwrap();
    assert!(why.contains("not the one on display (frame 1)"), "{why}");
    let why = got[4].0.rejected.as_deref().unwrap();
    assert!(why.contains("was not processed"), "{why}");
}

#[test]
fn a_corrections_file_feeds_the_queue_and_skips_what_is_not_a_request() {
    let dir = std::env::temp_dir().join(format!("sammix-feed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("clicks.jsonl");
    let _ = std::fs::remove_file(&path);
    let feed = FileFeed::watch(&path, Duration::from_millis(5)).unwrap();
    let queue = feed.queue();
    std::fs::write(
        &path,
        "{\"frame\": 3, \"points\": [\"10,20,+\"]}\nnot a request\n{\"frame\": 3, \"accept\": true}\n",
    )
    .unwrap();
    let mut got = Vec::new();
    let since = Instant::now();
    while got.len() < 2 && since.elapsed() < Duration::from_secs(30) {
        match queue.pop() {
            Some(r) => got.push(r),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    drop(feed);
    assert_eq!(
        got,
        vec![
            Request::Clicks {
                frame: 3,
                clicks: vec![click(10.0, 20.0, true)]
            },
            Request::Accept { frame: 3 }
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
