//! Faults injected into a stream through a scripted source and a scripted
//! sink: each test states the outcome, "goes on (counted)" or "stops with
//! the error", and checks that the sink got whole, ordered results and was
//! finished. No test asserts a duration.

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::source::{FrameSource, SourceError, Truth, Watched};
use sammix::stream::{
    self, FrameRecord, FrameSink, Handoff, SinkStalled, StreamError, StreamOptions, WatchedSink,
};
use sammix::y4m::Y4mError;

#[path = "common/threshold.rs"]
mod threshold;
use threshold::Threshold;

type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// What the scripted source does at one read.
#[derive(Debug, Clone)]
enum Step {
    /// A frame of this size with this sequence number.
    Frame { w: usize, h: usize, seq: u64 },
    /// An error of this kind (what a capture driver's read can return).
    Error(io::ErrorKind),
    /// Release the sink's gate, then a frame (see [`Gate`]).
    Release { seq: u64 },
}

/// A source that plays a script, then ends.
struct Scripted {
    steps: Vec<Step>,
    at: usize,
    gate: Option<Sender<()>>,
}

impl Scripted {
    fn new(steps: Vec<Step>) -> Scripted {
        Scripted {
            steps,
            at: 0,
            gate: None,
        }
    }

    /// `n` frames of 64×48, numbered 0..n.
    fn frames(n: u64) -> Vec<Step> {
        (0..n)
            .map(|seq| Step::Frame { w: 64, h: 48, seq })
            .collect()
    }
}

fn fill(frame: &mut Frame, w: usize, h: usize, seq: u64) {
    frame.reset(w, h, PixelFormat::Gray8);
    for (i, p) in frame.data_mut().iter_mut().enumerate() {
        *p = ((i as u64 + seq) % 251) as u8;
    }
    frame.sequence = seq;
}

impl FrameSource for Scripted {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        let Some(step) = self.steps.get(self.at).cloned() else {
            return Ok(false);
        };
        self.at += 1;
        match step {
            Step::Frame { w, h, seq } => fill(frame, w, h, seq),
            Step::Release { seq } => {
                if let Some(g) = self.gate.take() {
                    let _ = g.send(());
                }
                fill(frame, 64, 48, seq);
            }
            Step::Error(kind) => {
                return Err(SourceError::Y4m(Y4mError::Read {
                    path: "scripted-capture".into(),
                    io: io::Error::new(kind, "injected by the test script"),
                }))
            }
        }
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

/// Holds the sink at the first frame numbered `at` or later until the
/// source releases it.
struct Gate {
    at: u64,
    open: Receiver<()>,
}

/// A sink that records what it got, optionally slow, failing or held.
#[derive(Default)]
struct Sink {
    got: Vec<(u64, usize, usize, usize, usize)>,
    delay: Option<Duration>,
    fail: BTreeMap<u64, io::ErrorKind>,
    gate: Option<Gate>,
    finished: bool,
}

impl FrameSink for Sink {
    fn frame(&mut self, frame: &Frame, mask: &Mask, record: &FrameRecord) -> SinkResult {
        let seq = record.result.sequence;
        if self.gate.as_ref().is_some_and(|g| seq >= g.at) {
            if let Some(g) = self.gate.take() {
                let _ = g.open.recv();
            }
        }
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
        if let Some(kind) = self.fail.get(&seq) {
            return Err(Box::new(io::Error::new(
                *kind,
                "injected by the test script",
            )));
        }
        self.got.push((
            seq,
            frame.width(),
            frame.height(),
            mask.width(),
            mask.height(),
        ));
        Ok(())
    }

    fn finish(&mut self) -> SinkResult {
        self.finished = true;
        Ok(())
    }
}

fn lossless() -> StreamOptions {
    StreamOptions {
        handoff: Handoff::Lossless,
        ..StreamOptions::default()
    }
}

fn seqs(sink: &Sink) -> Vec<u64> {
    sink.got.iter().map(|g| g.0).collect()
}

/// EIO, EAGAIN or a timeout from the source's read: the stream stops with
/// that error (a source retries what it can itself: the V4L2 source retries
/// EINTR and waits out EAGAIN with poll), after the frames before it have
/// reached the sink and the sink was finished.
#[test]
fn a_source_error_stops_the_stream_with_it_after_the_frames_before() {
    for kind in [
        io::ErrorKind::Other,
        io::ErrorKind::WouldBlock,
        io::ErrorKind::TimedOut,
    ] {
        let mut steps = Scripted::frames(5);
        steps.push(Step::Error(kind));
        steps.extend(Scripted::frames(3));
        let mut sink = Sink::default();
        let e = stream::run(
            &mut Scripted::new(steps),
            &mut Threshold(Duration::ZERO),
            &mut sink,
            &lossless(),
        )
        .unwrap_err();
        assert!(matches!(e, StreamError::Source(_)), "{kind:?}: {e:?}");
        assert!(
            e.to_string().contains("scripted-capture"),
            "the error names the source: {e}"
        );
        assert_eq!(seqs(&sink), [0, 1, 2, 3, 4], "{kind:?}");
        assert!(sink.finished, "{kind:?}: the sink was not finished");
    }
}

/// A frame of another size mid-stream goes through at its own size: the
/// mask comes back at the frame's size.
#[test]
fn frames_of_another_size_go_through_at_their_size() {
    let steps = vec![
        Step::Frame {
            w: 64,
            h: 48,
            seq: 0,
        },
        Step::Frame {
            w: 320,
            h: 240,
            seq: 1,
        },
        Step::Frame { w: 1, h: 1, seq: 2 },
        Step::Frame {
            w: 17,
            h: 301,
            seq: 3,
        },
        Step::Frame {
            w: 64,
            h: 48,
            seq: 4,
        },
    ];
    let mut sink = Sink::default();
    let s = stream::run(
        &mut Scripted::new(steps),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &lossless(),
    )
    .unwrap();
    assert_eq!(s.frames, 5);
    let sizes: Vec<_> = sink.got.iter().map(|g| (g.1, g.2, g.3, g.4)).collect();
    assert_eq!(
        sizes,
        [
            (64, 48, 64, 48),
            (320, 240, 320, 240),
            (1, 1, 1, 1),
            (17, 301, 17, 301),
            (64, 48, 64, 48)
        ]
    );
}

/// A repeated or earlier sequence number: dropped before inference and
/// counted, so the display never steps back; gaps still count as drops.
#[test]
fn duplicated_and_out_of_order_frames_are_dropped_and_counted() {
    let order = [0, 1, 2, 2, 4, 3, 5, 5, 9, 6, 10];
    let steps = order
        .iter()
        .map(|&seq| Step::Frame { w: 64, h: 48, seq })
        .collect();
    let mut sink = Sink::default();
    let s = stream::run(
        &mut Scripted::new(steps),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &lossless(),
    )
    .unwrap();
    assert_eq!(seqs(&sink), [0, 1, 2, 4, 5, 9, 10]);
    assert_eq!(s.out_of_order, 4, "2 again, 3 after 4, 5 again, 6 after 9");
    assert_eq!(s.dropped_source, 1 + 3, "3 (never in order), 6, 7, 8");
    assert_eq!(s.frames, 7);
}

fn newest() -> StreamOptions {
    StreamOptions {
        handoff: Handoff::Newest,
        ..StreamOptions::default()
    }
}

/// A sink slower than the source. Live (newest-frame) mode: results it has
/// no time for are dropped and counted, never queued without limit.
/// Lossless mode: inference waits for it, and every result is written.
#[test]
fn a_sink_slower_than_the_source() {
    let n = 40;
    let slow = || Sink {
        delay: Some(Duration::from_millis(10)),
        ..Sink::default()
    };
    let mut sink = slow();
    let s = stream::run(
        &mut Scripted::new(Scripted::frames(n)),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &newest(),
    )
    .unwrap();
    assert_eq!(
        s.frames + s.dropped_capture,
        n,
        "every frame processed or dropped at capture, counted"
    );
    assert_eq!(s.frames, sink.got.len() as u64 + s.dropped_output);
    assert!(s.dropped_output + s.dropped_capture > 0, "{s:?}");
    let got = seqs(&sink);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    assert!(sink.finished);

    let mut sink = slow();
    let s = stream::run(
        &mut Scripted::new(Scripted::frames(n)),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &lossless(),
    )
    .unwrap();
    assert_eq!((s.frames, s.dropped_output, s.dropped_capture), (n, 0, 0));
    assert_eq!(seqs(&sink), (0..n).collect::<Vec<_>>());
}

/// Lossless mode, a sink that takes nothing for longer than the stall
/// timeout: the stream stops with `SinkStalled` once the sink answers, and
/// the results before are kept.
#[test]
fn lossless_with_a_sink_stalled_past_the_timeout_stops() {
    let (open, wait) = channel();
    let mut sink = Sink {
        gate: Some(Gate { at: 1, open: wait }),
        ..Sink::default()
    };
    let opts = StreamOptions {
        stall_timeout: Duration::from_millis(200),
        ..lossless()
    };
    let runner = std::thread::spawn(move || {
        let r = stream::run(
            &mut Scripted::new(Scripted::frames(20)),
            &mut Threshold(Duration::ZERO),
            &mut sink,
            &opts,
        );
        (r, sink)
    });
    // Let the stream stall on the held sink for longer than the timeout,
    // then release the sink so that the output thread can end.
    std::thread::sleep(Duration::from_millis(1500));
    let _ = open.send(());
    let (r, sink) = runner.join().unwrap();
    let e = r.unwrap_err();
    assert!(matches!(e, StreamError::SinkStalled(_)), "{e:?}");
    assert!(e.to_string().contains("took no result"), "{e}");
    assert_eq!(&seqs(&sink)[..2], [0, 1]);
    assert!(sink.finished);
}

/// The same sink, held for good (a write blocked in the kernel), written
/// through [`WatchedSink`] as `sammix run` writes: the stream stops at the
/// stall timeout while the write is still blocked (it does not wait for it),
/// after the results before it reached the sink, and names the output.
#[test]
fn a_watched_sink_whose_write_never_returns_stops_the_stream_without_it() {
    let (open, wait) = channel();
    let got = Arc::new(Mutex::new(Vec::new()));
    let blocked = Arc::new(AtomicBool::new(false));
    struct Held {
        got: Arc<Mutex<Vec<u64>>>,
        open: Receiver<()>,
        blocked: Arc<AtomicBool>,
    }
    impl FrameSink for Held {
        fn frame(&mut self, _: &Frame, _: &Mask, record: &FrameRecord) -> SinkResult {
            let seq = record.result.sequence;
            if seq == 2 {
                self.blocked.store(true, Ordering::SeqCst);
                let _ = self.open.recv();
            }
            self.got.lock().unwrap().push(seq);
            Ok(())
        }
    }
    let timeout = Duration::from_millis(300);
    let mut sink = WatchedSink::new(
        Held {
            got: got.clone(),
            open: wait,
            blocked: blocked.clone(),
        },
        "the output to /media/sd",
        timeout,
    )
    .unwrap();
    let opts = StreamOptions {
        stall_timeout: timeout,
        ..lossless()
    };
    let e = stream::run(
        &mut Scripted::new(Scripted::frames(20)),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &opts,
    )
    .unwrap_err();
    assert!(
        blocked.load(Ordering::SeqCst),
        "the write was never blocked: {e}"
    );
    // Still blocked: nothing was released yet.
    assert_eq!(*got.lock().unwrap(), [0, 1], "{e}");
    match &e {
        StreamError::Sink(inner) => {
            assert!(inner.downcast_ref::<SinkStalled>().is_some(), "{e:?}");
            assert!(
                e.to_string()
                    .contains("the output to /media/sd took no result"),
                "{e}"
            );
        }
        other => panic!("expected the output's stall, got {other:?}"),
    }
    assert!(
        sink.into_inner().is_none(),
        "a stalled sink is not given back"
    );
    // The write may end later: the writer thread then finds the wrapper gone.
    let _ = open.send(());
}

/// Live (newest-frame) mode, a sink that stops answering (a display whose
/// reader hung): inference goes on, results are dropped and counted; when
/// the sink answers again the stream ends normally. (A sink that never answers again holds
/// the stream; `sammix run` writes through a [`WatchedSink`], which gives it up at the stall
/// timeout: `a_watched_sink_whose_write_never_returns_stops_the_stream_without_it`.)
#[test]
fn a_stalled_sink_does_not_stall_inference() {
    let n = 30;
    let (open, wait) = channel();
    let mut steps = Scripted::frames(n - 1);
    steps.push(Step::Release { seq: n - 1 });
    let mut source = Scripted::new(steps);
    source.gate = Some(open);
    let mut sink = Sink {
        gate: Some(Gate { at: 2, open: wait }),
        ..Sink::default()
    };
    // Paced like a capture card (2 ms a frame), so that inference, far
    // faster, takes the frames and capture drops few or none.
    let opts = StreamOptions {
        handoff: Handoff::Newest,
        pace: Some(Duration::from_millis(2)),
        ..StreamOptions::default()
    };
    let s = stream::run(
        &mut source,
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &opts,
    )
    .unwrap();
    // The sink is released only when the source reads the last frame: so
    // inference processed frames (or capture dropped them, counted) while
    // the sink was held.
    assert_eq!(s.frames + s.dropped_capture, n, "{s:?}");
    assert!(s.dropped_output > 0, "results dropped while held: {s:?}");
    let got = seqs(&sink);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    assert_eq!(s.frames, sink.got.len() as u64 + s.dropped_output);
    assert!(sink.finished);
}

/// A sink that fails (not a file the CLI can skip, but an error the sink
/// returns): the stream stops with it, and what the sink reported is kept.
#[test]
fn a_sink_error_stops_the_stream_with_it() {
    let mut sink = Sink {
        fail: BTreeMap::from([(3, io::ErrorKind::StorageFull)]),
        ..Sink::default()
    };
    let e = stream::run(
        &mut Scripted::new(Scripted::frames(10)),
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &lossless(),
    )
    .unwrap_err();
    assert!(matches!(e, StreamError::Sink(_)), "{e:?}");
    assert!(e.to_string().contains("injected"), "{e}");
    assert_eq!(seqs(&sink), [0, 1, 2]);
}

/// The script itself: a sanity check that the source plays what it says
/// (so that the tests above test the stream, not a broken script).
#[test]
fn the_script_plays_in_order() {
    let shared = Arc::new(Mutex::new(Vec::new()));
    let mut src = Scripted::new(vec![
        Step::Frame { w: 2, h: 2, seq: 7 },
        Step::Error(io::ErrorKind::Other),
        Step::Frame { w: 3, h: 1, seq: 8 },
    ]);
    let mut f = Frame::zeros(1, 1, PixelFormat::Gray8);
    assert!(src.next_frame(&mut f).unwrap());
    shared.lock().unwrap().push((f.sequence, f.width()));
    assert!(src.next_frame(&mut f).is_err());
    assert!(src.next_frame(&mut f).unwrap());
    shared.lock().unwrap().push((f.sequence, f.width()));
    assert!(!src.next_frame(&mut f).unwrap());
    assert_eq!(*shared.lock().unwrap(), [(7, 2), (8, 3)]);
}

/// Three frames, then a read that blocks until the test releases it (or
/// 60 s pass), flagging that it is blocked.
struct Blocking {
    at: u64,
    release: Receiver<()>,
    blocked: Arc<AtomicBool>,
}

impl FrameSource for Blocking {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if self.at == 3 {
            self.blocked.store(true, Ordering::SeqCst);
            let _ = self.release.recv_timeout(Duration::from_secs(60));
            self.blocked.store(false, Ordering::SeqCst);
        }
        fill(frame, 64, 48, self.at);
        self.at += 1;
        Ok(true)
    }
    fn frame_name(&self, sequence: u64) -> String {
        format!("{sequence:06}")
    }
    fn frame_rate(&self) -> Option<(u32, u32)> {
        Some((30, 1))
    }
    fn len_hint(&self) -> Option<u64> {
        None
    }
    fn truth(&self) -> Option<Truth> {
        None
    }
}

/// A read that never returns: read through [`Watched`], the stream stops
/// with a stall while the read is still blocked (it does not wait for
/// it), after the frames before it reached the sink.
#[test]
fn a_watched_source_whose_read_never_returns_stops_the_stream_without_it() {
    let (release, held) = channel();
    let blocked = Arc::new(AtomicBool::new(false));
    let inner = Blocking {
        at: 0,
        release: held,
        blocked: blocked.clone(),
    };
    let timeout = Duration::from_millis(300);
    let mut source = Watched::new(Box::new(inner), "scripted-capture", timeout).unwrap();
    assert_eq!(source.frame_rate(), Some((30, 1)));
    let mut sink = Sink::default();
    let opts = StreamOptions {
        stall_timeout: timeout,
        ..lossless()
    };
    let e = stream::run(
        &mut source,
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &opts,
    )
    .unwrap_err();
    assert!(
        blocked.load(Ordering::SeqCst),
        "the stream waited for the blocked read: {e}"
    );
    assert!(
        matches!(
            e,
            StreamError::Stalled(_) | StreamError::Source(SourceError::Stalled { .. })
        ),
        "{e:?}"
    );
    assert_eq!(seqs(&sink), [0, 1, 2]);
    assert!(sink.finished);
    // The blocked read may end later: the reader thread then finds the
    // wrapper gone and ends too.
    let _ = release.send(());
    drop(source);
}

/// Through [`Watched`] a source plays as it does directly: frames in order
/// at their sizes, its errors, its end; a source that panics is an error,
/// not a panic of the stream.
#[test]
fn a_watched_source_plays_frames_errors_and_panics_through() {
    let mut steps = Scripted::frames(4);
    steps.push(Step::Frame {
        w: 17,
        h: 5,
        seq: 4,
    });
    let mut source = Watched::new(
        Box::new(Scripted::new(steps)),
        "scripted",
        Duration::from_secs(10),
    )
    .unwrap();
    let mut sink = Sink::default();
    let summary = stream::run(
        &mut source,
        &mut Threshold(Duration::ZERO),
        &mut sink,
        &lossless(),
    )
    .unwrap();
    assert_eq!(summary.frames, 5);
    assert_eq!(seqs(&sink), [0, 1, 2, 3, 4]);
    assert_eq!(sink.got[4], (4, 17, 5, 17, 5));

    let mut steps = Scripted::frames(2);
    steps.push(Step::Error(io::ErrorKind::Other));
    let mut source = Watched::new(
        Box::new(Scripted::new(steps)),
        "scripted",
        Duration::from_secs(10),
    )
    .unwrap();
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    assert!(source.next_frame(&mut frame).unwrap());
    assert!(source.next_frame(&mut frame).unwrap());
    assert_eq!(frame.sequence, 1);
    let e = source.next_frame(&mut frame).unwrap_err();
    assert!(e.to_string().contains("injected"), "{e}");

    struct Panics;
    impl FrameSource for Panics {
        fn next_frame(&mut self, _: &mut Frame) -> Result<bool, SourceError> {
            panic!("a source bug")
        }
        fn frame_name(&self, s: u64) -> String {
            s.to_string()
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
    let mut source = Watched::new(Box::new(Panics), "buggy", Duration::from_secs(10)).unwrap();
    let e = source.next_frame(&mut frame).unwrap_err();
    assert!(
        matches!(e, SourceError::Reader { .. }) && e.to_string().contains("buggy"),
        "{e}"
    );
}
