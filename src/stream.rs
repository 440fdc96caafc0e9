//! Streaming: a source through the pipeline on three threads.
//!
//! ```text
//!  capture thread            calling thread                output thread
//!  source.next_frame ─► FrameSlot ─► pipeline.process ─► bounded queue ─► sink.frame
//!  (pool of frames)     (newest wins,   (classifier … mask)  (full: drop     (overlay, masks,
//!        ▲               or lossless)                         the output,     results.jsonl)
//!        └──────────── frame buffers come back ◄─────────────  count it)  ◄──┘
//! ```
//!
//! Capture never blocks on inference in [`Handoff::Newest`] mode: a frame not
//! yet taken when the next is ready is dropped and counted, so latency cannot
//! grow when inference is slow. Output is bounded the same way: when the
//! sink falls behind, results are dropped (counted), never queued without
//! limit. In [`Handoff::Lossless`] mode nothing is dropped: capture waits
//! for inference and inference for the sink, each wait bounded by the stall
//! timeout. Frame and mask buffers circulate in fixed pools; statistics live in
//! fixed-size histograms; the stream's own code allocates nothing per frame
//! once every buffer has reached the frame size.
//!
//! Every wait has a timeout: a source that stops delivering ends the stream
//! with [`StreamError::Stalled`] instead of hanging. A read or a write that
//! never returns would still hold the stream (its threads are scoped): read
//! through [`crate::source::Watched`] and written through [`WatchedSink`],
//! as `sammix run` does, they are given up at the stall timeout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::frame::{Frame, Mask, PixelFormat};
use crate::pipeline::{Click, Correction, FrameResult, Outcome, Pipeline, PipelineError};
use crate::source::{FrameSource, SourceError};

mod affinity;
pub mod corrections;
mod histogram;
pub mod lines;
mod serve;
mod slot;
mod summary;
mod watched;

pub use corrections::{CorrectionQueue, CorrectionRecord, FileFeed, Request};
pub use histogram::{Histogram, Percentiles};
use serve::{CorrectionOut, Corrections, OnDisplay};
pub use slot::{FrameSlot, Handoff, Taken};
use summary::Stats;
pub use summary::{peak_rss_kb, StagePercentiles, StreamSummary};
pub use watched::{SinkGone, SinkStalled, WatchedSink};

/// An error that ended a stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A frame failed in the pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The sink failed.
    #[error("output: {0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
    /// No frame arrived for too long.
    #[error("no frame from the source for {0:?}: stopped (is the device still there?)")]
    Stalled(Duration),
    /// In lossless mode, the sink took no result for too long.
    #[error(
        "the output took no result for {0:?}: stopped (a disk or display that stopped answering?)"
    )]
    SinkStalled(Duration),
    /// A stream thread panicked (a bug).
    #[error("the {0} thread panicked")]
    Panicked(&'static str),
}

/// How to run a stream.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// How frames pass from capture to inference.
    pub handoff: Handoff,
    /// Stop after this many processed frames.
    pub max_frames: Option<u64>,
    /// Deliver frames no faster than this interval (a file played as if it
    /// were live); `None`: as fast as the source reads.
    pub pace: Option<Duration>,
    /// Give up when no frame arrives for this long.
    pub stall_timeout: Duration,
    /// Results waiting for the output thread before new ones are dropped.
    pub output_queue: usize,
    /// While this is set, captured frames are not processed (the display is
    /// frozen: the sink keeps the last result it was given); they are
    /// counted in [`StreamSummary::frozen`], not as drops or processed
    /// frames, and waiting for them is no stall.
    pub pause: Option<Arc<AtomicBool>>,
    /// Once this is set, the stream ends as if the source had: the frame in
    /// inference finishes, the output drains, the summary is whole (a
    /// SIGTERM from the service manager, a UI's stop button).
    pub stop: Option<Arc<AtomicBool>>,
    /// Pin the capture, inference and output threads to these CPU cores (a
    /// board profile's `[threads]`); `None`: leave them to the scheduler.
    /// The inference loop runs on the calling thread, whose affinity is
    /// restored when the stream ends.
    pub cores: Option<ThreadCores>,
    /// Correction requests (clicks, acceptances) for the frame on display,
    /// served between frames ([`corrections`]); `None`: none are taken.
    pub corrections: Option<Arc<CorrectionQueue>>,
}

/// CPU cores for each of the stream's threads (each list: any of these).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadCores {
    /// The capture thread.
    pub capture: Vec<usize>,
    /// The inference loop (the thread that calls [`run`]).
    pub inference: Vec<usize>,
    /// The output thread.
    pub output: Vec<usize>,
}

impl Default for StreamOptions {
    fn default() -> StreamOptions {
        StreamOptions {
            handoff: Handoff::Lossless,
            max_frames: None,
            pace: None,
            stall_timeout: Duration::from_secs(10),
            output_queue: 4,
            pause: None,
            stop: None,
            cores: None,
            corrections: None,
        }
    }
}

/// What the inference thread runs on each frame: the [`Pipeline`], or a
/// stand-in in tests.
pub trait Processor {
    /// Processes one frame into `mask` (resized to the frame).
    fn process(&mut self, frame: &Frame, mask: &mut Mask) -> Result<FrameResult, PipelineError>;

    /// Re-segments the last processed frame with `clicks` (frame pixels),
    /// as [`Pipeline::correct`]; a processor that cannot says so.
    fn correct(&mut self, clicks: &[Click], mask: &mut Mask) -> Result<Correction, PipelineError> {
        let _ = (clicks, mask);
        Err(PipelineError::Frame {
            sequence: 0,
            problem: "this processor takes no corrections".into(),
        })
    }
}

impl Processor for Pipeline {
    fn process(&mut self, frame: &Frame, mask: &mut Mask) -> Result<FrameResult, PipelineError> {
        Pipeline::process(self, frame, mask)
    }

    fn correct(&mut self, clicks: &[Click], mask: &mut Mask) -> Result<Correction, PipelineError> {
        Pipeline::correct(self, clicks, mask)
    }
}

/// Where results go, on the output thread.
pub trait FrameSink: Send {
    /// Called once per processed frame, in order.
    fn frame(
        &mut self,
        frame: &Frame,
        mask: &Mask,
        record: &FrameRecord,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

    /// Called for each correction request the stream served, in order with
    /// the frames: `corrected` holds the frame and its corrected mask when
    /// the request was clicks that were applied. The default ignores them.
    fn correction(
        &mut self,
        record: &CorrectionRecord,
        corrected: Option<(&Frame, &Mask)>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = (record, corrected);
        Ok(())
    }

    /// Called once after the last frame.
    fn finish(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
}

/// One processed frame's timeline (milliseconds from the stream's start)
/// and result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrameRecord {
    /// When the source handed the frame over.
    pub captured_ms: f64,
    /// How long it waited for the inference thread.
    pub queue_ms: f64,
    /// When its result was ready.
    pub done_ms: f64,
    /// `done_ms − captured_ms`.
    pub latency_ms: f64,
    /// Frames dropped in the stream so far (source gaps, out-of-order
    /// frames, capture side and output side).
    pub dropped: u64,
    /// The pipeline's result, with per-stage milliseconds.
    #[serde(flatten)]
    pub result: FrameResult,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `source` through `pipeline` into `sink` until the source ends, the
/// frame limit is reached or something fails.
pub fn run(
    source: &mut dyn FrameSource,
    pipeline: &mut dyn Processor,
    sink: &mut dyn FrameSink,
    opts: &StreamOptions,
) -> Result<StreamSummary, StreamError> {
    let queue = opts.output_queue.max(1);
    // Buffers: one being captured, one ready, one in inference, one in the
    // sink and `queue` waiting for it: capture never runs out.
    let slot = FrameSlot::new(opts.handoff, queue + 4, 1, 1, PixelFormat::Gray8);
    let (tx, rx) = sync_channel::<Out>(queue);
    let (mask_back, masks) = sync_channel::<Mask>(queue + 2);
    for _ in 0..queue + 2 {
        // Cannot fail: the channel has room for every mask.
        let _ = mask_back.try_send(Mask::zeros(1, 1));
    }
    let start = Instant::now();
    let limit = opts.max_frames.unwrap_or(u64::MAX);
    // In newest mode capture runs until inference has its frames (it closes
    // the slot): there, captured frames are not processed frames.
    let capture_limit = if opts.handoff == Handoff::Lossless {
        limit
    } else {
        u64::MAX
    };

    let gaps = AtomicU64::new(0);
    let stale = AtomicU64::new(0);
    let cores = opts.cores.as_ref();
    std::thread::scope(|scope| {
        let capture = scope.spawn(|| {
            let _ = affinity::pin(cores.map(|c| &c.capture[..]), "capture");
            capture(source, &slot, (&gaps, &stale), opts, start, capture_limit)
        });
        let output = scope.spawn(|| {
            let _ = affinity::pin(cores.map(|c| &c.output[..]), "output");
            output(rx, sink, &slot, mask_back)
        });
        let previous = affinity::pin(cores.map(|c| &c.inference[..]), "inference");
        let inferred = infer(
            pipeline,
            &slot,
            (&gaps, &stale),
            tx,
            &masks,
            opts,
            start,
            limit,
        );
        affinity::restore(previous);
        slot.close();
        let captured = capture
            .join()
            .map_err(|_| StreamError::Panicked("capture"))?;
        let written = output.join().map_err(|_| StreamError::Panicked("output"))?;
        // A stall seen from both sides (the sink written through a
        // `WatchedSink`): the output's own error names the output.
        if matches!(inferred, Err(StreamError::SinkStalled(_))) {
            if let Err(e) = written {
                return Err(e);
            }
        }
        let (stats, frames, dropped_output, last, frozen) = inferred?;
        captured?;
        written?;
        let wall = ms(last) / 1e3;
        Ok(StreamSummary {
            frames,
            wall_s: wall,
            fps: if wall > 0.0 {
                frames as f64 / wall
            } else {
                0.0
            },
            dropped_source: gaps.load(Ordering::Relaxed),
            dropped_capture: slot.dropped(),
            out_of_order: stale.load(Ordering::Relaxed),
            dropped_output,
            latency_ms: stats.latency.percentiles(),
            queue_ms: stats.queue.percentiles(),
            stage_ms: StagePercentiles {
                preprocess: stats.stages[0].percentiles(),
                classifier: stats.stages[1].percentiles(),
                prompt: stats.stages[2].percentiles(),
                encoder: stats.stages[3].percentiles(),
                decoder: stats.stages[4].percentiles(),
                postprocess: stats.stages[5].percentiles(),
            },
            segmented: stats.outcomes[0],
            absent: stats.outcomes[1],
            no_prompt: stats.outcomes[2],
            invalid: stats.outcomes[3],
            review: stats.review,
            corrections: stats.corrections[0],
            accepted: stats.corrections[1],
            corrections_rejected: stats.corrections[2],
            frozen,
            peak_rss_kb: peak_rss_kb(),
        })
    })
}

/// The capture thread: fills pool buffers from the source.
fn capture(
    source: &mut dyn FrameSource,
    slot: &FrameSlot,
    (gaps, stale): (&AtomicU64, &AtomicU64),
    opts: &StreamOptions,
    start: Instant,
    limit: u64,
) -> Result<(), StreamError> {
    let result = (|| {
        let mut n = 0u64;
        let mut last: Option<u64> = None;
        while n < limit {
            let Some(mut frame) = slot.buffer(Duration::from_millis(100)) else {
                if slot.is_closed() {
                    break;
                }
                continue;
            };
            if let Some(p) = opts.pace {
                let due = start + p.saturating_mul(u32::try_from(n).unwrap_or(u32::MAX));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            slot.wait_taken(opts.stall_timeout);
            match source.next_frame(&mut frame) {
                Ok(true) => {}
                Ok(false) => {
                    slot.recycle(frame);
                    break;
                }
                Err(e) => {
                    slot.recycle(frame);
                    // Inference reached its frame limit and closed the slot
                    // while this read waited: the stream is over, and a
                    // timeout now (a live source sending no more) is no error.
                    if slot.is_closed() {
                        log::debug!("source error after the stream ended, ignored: {e}");
                        break;
                    }
                    return Err(StreamError::Source(e));
                }
            }
            frame.captured = Some(Instant::now());
            if let Some(prev) = last {
                if frame.sequence <= prev {
                    // A duplicate or a late frame: showing it would step
                    // the display back in time.
                    stale.fetch_add(1, Ordering::Relaxed);
                    slot.recycle(frame);
                    continue;
                }
                if frame.sequence > prev + 1 {
                    gaps.fetch_add(frame.sequence - prev - 1, Ordering::Relaxed);
                }
            }
            last = Some(frame.sequence);
            if !slot.publish(frame) {
                break;
            }
            n += 1;
        }
        Ok(())
    })();
    slot.close();
    result
}

type Inferred = (Stats, u64, u64, Duration, u64);

/// What the inference thread hands the output thread.
// The frame variant is the large one and the one every frame sends: boxing
// it would allocate per frame; the rare correction is boxed instead.
#[allow(clippy::large_enum_variant)]
enum Out {
    /// A processed frame (its buffers go back to their pools).
    Frame(Frame, Mask, FrameRecord),
    /// A served correction request (its buffers are its own: corrections
    /// come at a clinician's pace, not per frame).
    Correction(Box<CorrectionOut>),
}

/// The inference loop, on the calling thread.
#[allow(clippy::too_many_arguments)]
fn infer(
    pipeline: &mut dyn Processor,
    slot: &FrameSlot,
    (gaps, stale): (&AtomicU64, &AtomicU64),
    tx: SyncSender<Out>,
    masks: &Receiver<Mask>,
    opts: &StreamOptions,
    start: Instant,
    limit: u64,
) -> Result<Inferred, StreamError> {
    let mut stats = Stats::default();
    let (mut frames, mut dropped_output, mut frozen) = (0u64, 0u64, 0u64);
    let mut last = Duration::ZERO;
    let mut waiting_since = Instant::now();
    let mut spare: Option<Mask> = None;
    let mut shown: Option<OnDisplay> = None;
    let mut corrections = opts.corrections.as_deref().map(|queue| Corrections {
        queue,
        deferred: VecDeque::new(),
        counts: [0; 3],
    });
    let stopped = || {
        opts.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Acquire))
    };
    while frames < limit {
        if stopped() {
            slot.close();
            break;
        }
        if let Some(c) = &mut corrections {
            if !c.serve(pipeline, shown.as_ref(), start, &tx, false) {
                break;
            }
        }
        let (frame, _) = match slot.take(Duration::from_millis(100)) {
            Taken::Frame(f, d) => (f, d),
            Taken::Closed => break,
            Taken::Timeout => {
                if waiting_since.elapsed() > opts.stall_timeout {
                    slot.close();
                    return Err(StreamError::Stalled(opts.stall_timeout));
                }
                continue;
            }
        };
        if opts
            .pause
            .as_ref()
            .is_some_and(|p| p.load(Ordering::Acquire))
        {
            slot.recycle(frame);
            frozen += 1;
            waiting_since = Instant::now();
            continue;
        }
        let began = Instant::now();
        let mut mask = match spare.take() {
            Some(m) => m,
            None => match masks.recv_timeout(opts.stall_timeout) {
                Ok(m) => m,
                // The output thread is gone (its error comes with the join).
                Err(_) => {
                    slot.recycle(frame);
                    break;
                }
            },
        };
        let result = match pipeline.process(&frame, &mut mask) {
            Ok(r) => r,
            Err(e) => {
                slot.recycle(frame);
                slot.close();
                return Err(e.into());
            }
        };
        let done = start.elapsed();
        if corrections.is_some() {
            // The frame on display, kept for its corrections: a copy into
            // one buffer (no allocation once warm).
            let d = shown.get_or_insert_with(|| OnDisplay {
                frame: Frame::zeros(1, 1, PixelFormat::Gray8),
                done_ms: 0.0,
                valid: false,
            });
            d.frame.reset(frame.width(), frame.height(), frame.format());
            d.frame.data_mut().copy_from_slice(frame.data());
            d.frame.sequence = frame.sequence;
            d.frame.captured = frame.captured;
            d.done_ms = ms(done);
            d.valid = result.outcome != Outcome::Invalid;
        }
        let captured = frame
            .captured
            .map_or(began, |c| c)
            .saturating_duration_since(start);
        let record = FrameRecord {
            captured_ms: ms(captured),
            queue_ms: ms(began
                .saturating_duration_since(start)
                .saturating_sub(captured)),
            done_ms: ms(done),
            latency_ms: ms(done.saturating_sub(captured)),
            dropped: gaps.load(Ordering::Relaxed)
                + stale.load(Ordering::Relaxed)
                + slot.dropped()
                + dropped_output,
            result,
        };
        stats.record(&record);
        frames += 1;
        last = done;
        waiting_since = Instant::now();
        // Newest-frame mode drops a result the sink has no room for (a live
        // display shows the next one); lossless mode waits for the sink, up
        // to the stall timeout, so that every frame's result is written.
        let mut item = Out::Frame(frame, mask, record);
        let offered = Instant::now();
        let sent = loop {
            match tx.try_send(item) {
                Ok(()) => break true,
                Err(TrySendError::Full(back))
                    if opts.handoff == Handoff::Lossless && !stopped() =>
                {
                    if offered.elapsed() > opts.stall_timeout {
                        if let Out::Frame(f, _, _) = back {
                            slot.recycle(f);
                        }
                        slot.close();
                        return Err(StreamError::SinkStalled(opts.stall_timeout));
                    }
                    item = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TrySendError::Full(back)) => {
                    dropped_output += 1;
                    if let Out::Frame(f, m, _) = back {
                        slot.recycle(f);
                        spare = Some(m);
                    }
                    break true;
                }
                Err(TrySendError::Disconnected(back)) => {
                    if let Out::Frame(f, _, _) = back {
                        slot.recycle(f);
                    }
                    break false;
                }
            }
        };
        if !sent {
            break;
        }
    }
    // Requests that came with the last frames, and those left waiting.
    if let Some(mut c) = corrections {
        let _ = c.serve(pipeline, shown.as_ref(), start, &tx, true);
        stats.corrections = c.counts;
    }
    drop(tx);
    Ok((stats, frames, dropped_output, last, frozen))
}

/// The output thread: hands results to the sink, returns the buffers.
fn output(
    rx: Receiver<Out>,
    sink: &mut dyn FrameSink,
    slot: &FrameSlot,
    mask_back: SyncSender<Mask>,
) -> Result<(), StreamError> {
    for item in rx.iter() {
        let written = match item {
            Out::Frame(frame, mask, record) => {
                let written = sink.frame(&frame, &mask, &record);
                slot.recycle(frame);
                let _ = mask_back.try_send(mask);
                written
            }
            Out::Correction(c) => {
                let corrected = c.corrected.as_ref().map(|(f, m)| (f, m));
                sink.correction(&c.record, corrected)
            }
        };
        if let Err(e) = written {
            slot.close();
            return Err(StreamError::Sink(e));
        }
    }
    sink.finish().map_err(StreamError::Sink)
}
