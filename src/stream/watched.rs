//! [`WatchedSink`]: a sink written on a thread of its own, so that a write
//! that never returns (a dead SD card, a display or network share that
//! stopped answering) cannot hold the stream past its stall timeout.
//!
//! The stream's output thread borrows its sink: a write blocked in the
//! kernel blocks that thread, and the stream can only return once the write
//! does. Wrapped in a [`WatchedSink`], the sink runs on a thread the wrapper
//! owns; the output thread hands it each result and waits for the answer,
//! as before, but for at most `timeout`: then [`FrameSink::frame`] returns a
//! [`SinkStalled`] error, the stream stops, and the writer thread is left
//! behind, still blocked, to end with the process.
//!
//! Results cross between the threads in two buffers (a frame and a mask)
//! that go back and forth, filled by copying: once warm, a frame costs no
//! allocation. Each result is written before the next is handed over, in
//! order, as with the sink alone. [`WatchedSink::into_inner`] gives the sink
//! back after the stream (its counters, its files).

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::frame::{Frame, Mask, PixelFormat};

use super::{CorrectionRecord, FrameRecord, FrameSink};

type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const STALLED_BEFORE: &str = "a write did not return before: nothing more is handed over";

/// A write that did not return within the timeout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{sink} took no result for {waited:?}: stopped (a disk or display that stopped answering?); \
     the write is left blocked on its own thread"
)]
pub struct SinkStalled {
    /// The sink, as named when it was wrapped.
    pub sink: String,
    /// How long the write was waited for.
    pub waited: Duration,
}

/// The wrapped sink's thread ended without answering (it panicked), or the
/// wrapper was used after a stall.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{sink}: {problem}")]
pub struct SinkGone {
    /// The sink, as named when it was wrapped.
    pub sink: String,
    /// What happened.
    pub problem: &'static str,
}

/// What the writer thread is asked to do.
// The frame variant is the large one and the one every frame sends: boxing
// it would allocate per frame; the rare correction is boxed instead.
#[allow(clippy::large_enum_variant)]
enum Job {
    Frame(Frame, Mask, FrameRecord),
    Correction(Box<(CorrectionRecord, Option<(Frame, Mask)>)>),
    Finish,
}

/// The buffers of a frame job, back, and what the sink said.
type Reply = (Option<(Frame, Mask)>, SinkResult);

/// A [`FrameSink`] written on a thread of its own, with a timeout (see the
/// [module docs](self)).
pub struct WatchedSink<S: FrameSink + 'static> {
    name: String,
    timeout: Duration,
    jobs: Option<SyncSender<Job>>,
    replies: Receiver<Reply>,
    /// The buffers handed over with the next frame.
    spare: Option<(Frame, Mask)>,
    /// A write did not answer in time: nothing more is handed over, and the
    /// sink cannot be given back.
    stalled: bool,
    writer: Option<JoinHandle<S>>,
}

impl<S: FrameSink + 'static> std::fmt::Debug for WatchedSink<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedSink")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("stalled", &self.stalled)
            .finish_non_exhaustive()
    }
}

impl<S: FrameSink + 'static> WatchedSink<S> {
    /// Moves `sink` (called `name` in messages) onto a writer thread; a write
    /// that takes longer than `timeout` is [`SinkStalled`]. Fails only when
    /// the system cannot start a thread.
    pub fn new(
        mut sink: S,
        name: impl Into<String>,
        timeout: Duration,
    ) -> std::io::Result<WatchedSink<S>> {
        let (jobs, todo) = mpsc::sync_channel::<Job>(1);
        let (done, replies) = mpsc::sync_channel::<Reply>(1);
        let writer = std::thread::Builder::new()
            .name("sink-writer".into())
            .spawn(move || {
                // Ends at `Finish`, or when the wrapper goes away.
                while let Ok(job) = todo.recv() {
                    let (buffers, result, last) = match job {
                        Job::Frame(frame, mask, record) => {
                            let r = sink.frame(&frame, &mask, &record);
                            (Some((frame, mask)), r, false)
                        }
                        Job::Correction(c) => {
                            let (record, corrected) = *c;
                            let r =
                                sink.correction(&record, corrected.as_ref().map(|(f, m)| (f, m)));
                            (None, r, false)
                        }
                        Job::Finish => (None, sink.finish(), true),
                    };
                    if done.send((buffers, result)).is_err() || last {
                        break;
                    }
                }
                sink
            })?;
        Ok(WatchedSink {
            name: name.into(),
            timeout,
            jobs: Some(jobs),
            replies,
            spare: Some((Frame::zeros(1, 1, PixelFormat::Gray8), Mask::zeros(1, 1))),
            stalled: false,
            writer: Some(writer),
        })
    }

    fn gone(&self, problem: &'static str) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(SinkGone {
            sink: self.name.clone(),
            problem,
        })
    }

    /// Hands `job` to the writer and waits for its answer, up to the timeout.
    fn call(&mut self, job: Job) -> SinkResult {
        if self.stalled {
            return Err(self.gone(STALLED_BEFORE));
        }
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok());
        if !sent {
            return Err(self.gone("its writer thread ended (the sink panicked?)"));
        }
        match self.replies.recv_timeout(self.timeout) {
            Ok((buffers, result)) => {
                if buffers.is_some() {
                    self.spare = buffers;
                }
                result
            }
            Err(RecvTimeoutError::Timeout) => {
                self.stalled = true;
                Err(Box::new(SinkStalled {
                    sink: self.name.clone(),
                    waited: self.timeout,
                }))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(self.gone("its writer thread ended (the sink panicked?)"))
            }
        }
    }

    /// The sink back, once its writer thread has ended (after
    /// [`FrameSink::finish`], or now if it is waiting for a job). `None` after
    /// a stall (the write may never return: the thread is not waited for) or
    /// a panic in the sink.
    pub fn into_inner(mut self) -> Option<S> {
        if self.stalled {
            return None;
        }
        // Closing the job channel ends a writer that waits for one.
        self.jobs = None;
        self.writer.take()?.join().ok()
    }
}

impl<S: FrameSink + 'static> FrameSink for WatchedSink<S> {
    fn frame(&mut self, frame: &Frame, mask: &Mask, record: &FrameRecord) -> SinkResult {
        if self.stalled {
            // Its buffers are with the blocked write.
            return Err(self.gone(STALLED_BEFORE));
        }
        let Some((mut f, mut m)) = self.spare.take() else {
            return Err(self.gone("its buffers were not given back (the sink panicked?)"));
        };
        f.reset(frame.width(), frame.height(), frame.format());
        f.data_mut().copy_from_slice(frame.data());
        f.sequence = frame.sequence;
        f.captured = frame.captured;
        m.reset(mask.width(), mask.height());
        m.data_mut().copy_from_slice(mask.data());
        self.call(Job::Frame(f, m, record.clone()))
    }

    fn correction(
        &mut self,
        record: &CorrectionRecord,
        corrected: Option<(&Frame, &Mask)>,
    ) -> SinkResult {
        // At a clinician's pace, not per frame: copies of their own.
        let corrected = corrected.map(|(f, m)| (f.clone(), m.clone()));
        self.call(Job::Correction(Box::new((record.clone(), corrected))))
    }

    fn finish(&mut self) -> SinkResult {
        self.call(Job::Finish)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    use super::*;
    use crate::pipeline::{FrameResult, Outcome, StageTimes};

    /// Records what it was given; blocks for `block` at frame `stall_at`.
    #[derive(Default)]
    struct Log {
        seen: Arc<Mutex<Vec<(u64, usize, u8)>>>,
        finished: bool,
        stall_at: Option<u64>,
        block: Duration,
        fail_at: Option<u64>,
    }

    impl FrameSink for Log {
        fn frame(&mut self, frame: &Frame, mask: &Mask, record: &FrameRecord) -> SinkResult {
            let seq = record.result.sequence;
            if self.stall_at == Some(seq) {
                std::thread::sleep(self.block);
            }
            if self.fail_at == Some(seq) {
                return Err(format!("disk full at frame {seq}").into());
            }
            self.seen
                .lock()
                .unwrap()
                .push((frame.sequence, mask.area(), frame.data()[0]));
            Ok(())
        }

        fn finish(&mut self) -> SinkResult {
            self.finished = true;
            Ok(())
        }
    }

    fn record(seq: u64) -> FrameRecord {
        FrameRecord {
            captured_ms: 0.0,
            queue_ms: 0.0,
            done_ms: 0.0,
            latency_ms: 0.0,
            dropped: 0,
            result: FrameResult {
                sequence: seq,
                presence: 1.0,
                outcome: Outcome::Segmented,
                box_input: None,
                box_frame: None,
                mask_token: None,
                iou_prediction: None,
                prompts: 1,
                mask_area: 0,
                embedding_reused: false,
                invalid_output: None,
                cam_peak: None,
                agreement: None,
                review: None,
                times: StageTimes::default(),
            },
        }
    }

    fn frame(seq: u64, size: usize) -> (Frame, Mask) {
        let mut f = Frame::zeros(size, size + 1, PixelFormat::Gray8);
        f.data_mut().fill(seq as u8);
        f.sequence = seq;
        let mut m = Mask::zeros(size, size + 1);
        m.data_mut()[..seq as usize].fill(255);
        (f, m)
    }

    #[test]
    fn passes_every_result_in_order_and_gives_the_sink_back() {
        let log = Log::default();
        let seen = Arc::clone(&log.seen);
        let mut w = WatchedSink::new(log, "test sink", Duration::from_secs(30)).unwrap();
        for seq in 0..6 {
            // the frame size changes on the way: the buffers follow
            let (f, m) = frame(seq, 8 + seq as usize % 3);
            w.frame(&f, &m, &record(seq)).unwrap();
        }
        w.finish().unwrap();
        let log = w.into_inner().expect("the sink back");
        assert!(log.finished);
        let seen = seen.lock().unwrap();
        let want: Vec<(u64, usize, u8)> = (0..6).map(|s| (s, s as usize, s as u8)).collect();
        assert_eq!(*seen, want);
    }

    #[test]
    fn a_write_that_does_not_return_is_an_error_at_the_timeout() {
        let log = Log {
            stall_at: Some(2),
            block: Duration::from_secs(3600),
            ..Log::default()
        };
        let mut w =
            WatchedSink::new(log, "the output folder /x", Duration::from_millis(200)).unwrap();
        for seq in 0..2 {
            let (f, m) = frame(seq, 4);
            w.frame(&f, &m, &record(seq)).unwrap();
        }
        let (f, m) = frame(2, 4);
        let began = Instant::now();
        let e = w.frame(&f, &m, &record(2)).unwrap_err();
        let waited = began.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        let stalled = e.downcast_ref::<SinkStalled>().expect("a SinkStalled");
        assert_eq!(stalled.sink, "the output folder /x");
        assert!(
            e.to_string()
                .contains("the output folder /x took no result for 200ms"),
            "{e}"
        );
        // Nothing more is handed over; the blocked writer is not waited for.
        let e = w.frame(&f, &m, &record(3)).unwrap_err();
        assert!(e.to_string().contains("did not return before"), "{e}");
        assert!(w.finish().is_err());
        assert!(w.into_inner().is_none());
    }

    #[test]
    fn the_sinks_own_error_comes_through() {
        let log = Log {
            fail_at: Some(1),
            ..Log::default()
        };
        let mut w = WatchedSink::new(log, "sink", Duration::from_secs(30)).unwrap();
        let (f, m) = frame(0, 4);
        w.frame(&f, &m, &record(0)).unwrap();
        let (f, m) = frame(1, 4);
        let e = w.frame(&f, &m, &record(1)).unwrap_err();
        assert_eq!(e.to_string(), "disk full at frame 1");
    }

    #[test]
    fn a_sink_that_panics_is_an_error_not_a_hang() {
        struct Panics;
        impl FrameSink for Panics {
            fn frame(&mut self, _: &Frame, _: &Mask, _: &FrameRecord) -> SinkResult {
                panic!("a bug in the sink");
            }
        }
        let mut w = WatchedSink::new(Panics, "sink", Duration::from_secs(30)).unwrap();
        let (f, m) = frame(0, 4);
        let e = w.frame(&f, &m, &record(0)).unwrap_err();
        assert!(e.to_string().contains("writer thread ended"), "{e}");
        assert!(w.into_inner().is_none());
    }
}
