//! How long a stream takes to stop on each fault that stops it, with a real
//! bundle's pipeline doing the inference (the scripted faults of
//! `tests/stream_faults.rs` state *what* happens; this measures *when*).
//!
//! ```text
//! cargo run --release --example fault_stops -- [--bundle DIR] [--runs N]
//! ```
//!
//! Frames come from the bundle's demo clip, looped at 25 frames a second
//! (the source's read sleeps 6 s where it "stops answering", the sink
//! likewise; the stall timeout is 2 s). For each fault, `N`
//! runs (5): the time from the fault (the source's read returning the error,
//! the sink returning its error, the stop flag set, the stall timeout
//! passed) to `stream::run` returning, median and max in milliseconds, and
//! the time one frame's inference took (median), which bounds how long a
//! stop may wait for the frame in flight. Prints one JSON line per fault.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sammix::bundle::Bundle;
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::pipeline::Pipeline;
use sammix::source::{FrameSource, SourceError, Truth, Watched};
use sammix::stream::{self, FrameRecord, FrameSink, Handoff, StreamOptions, WatchedSink};
use sammix::y4m::{Y4mError, Y4mReader};

const USAGE: &str = "usage: fault_stops [--bundle DIR] [--runs N]";

/// When the fault happened, set by whoever injects it.
type Mark = Arc<Mutex<Option<Instant>>>;

/// What the looped clip does after `after` frames.
#[derive(Clone, Copy, PartialEq)]
enum SourceFault {
    None,
    /// The read returns EIO.
    Error,
    /// The read never comes back in time (sleeps `hang`).
    Hang,
}

/// The demo clip's frames, looped, then a fault.
struct Looped {
    frames: Vec<Frame>,
    at: u64,
    after: u64,
    fault: SourceFault,
    hang: Duration,
    mark: Mark,
}

impl FrameSource for Looped {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if self.at >= LAST {
            // Whatever went wrong with the script, the run ends.
            return Ok(false);
        }
        if self.at >= self.after {
            match self.fault {
                SourceFault::None => {}
                SourceFault::Error => {
                    *self.mark.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                    return Err(SourceError::Y4m(Y4mError::Read {
                        path: "scripted-capture".into(),
                        io: io::Error::from_raw_os_error(5),
                    }));
                }
                SourceFault::Hang => {
                    *self.mark.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                    std::thread::sleep(self.hang);
                }
            }
        }
        let src = &self.frames[(self.at as usize) % self.frames.len()];
        frame.reset(src.width(), src.height(), src.format());
        frame.data_mut().copy_from_slice(src.data());
        frame.sequence = self.at;
        frame.captured = Some(Instant::now());
        self.at += 1;
        Ok(true)
    }
    fn frame_name(&self, sequence: u64) -> String {
        format!("{sequence:06}")
    }
    fn frame_rate(&self) -> Option<(u32, u32)> {
        Some((25, 1))
    }
    fn len_hint(&self) -> Option<u64> {
        None
    }
    fn truth(&self) -> Option<Truth> {
        None
    }
}

/// Takes every result; fails at the first frame numbered `fail_at` or
/// later, or stops taking any (sleeps `hold`) there (a newest-frame
/// stream may skip the very number).
struct Sink {
    fail_at: Option<u64>,
    hold_at: Option<u64>,
    hold: Duration,
    mark: Mark,
    /// Shared: a sink left blocked on its writer thread is not given back.
    inference_ms: Arc<Mutex<Vec<f64>>>,
}

impl FrameSink for Sink {
    fn frame(
        &mut self,
        _frame: &Frame,
        _mask: &Mask,
        record: &FrameRecord,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let seq = record.result.sequence;
        self.inference_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record.result.times.total_ms);
        if self.fail_at.is_some_and(|at| seq >= at) {
            *self.mark.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            return Err(Box::new(io::Error::from_raw_os_error(28)));
        }
        if self.hold_at.is_some_and(|at| seq >= at) {
            self.hold_at = None;
            *self.mark.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            std::thread::sleep(self.hold);
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }
}

struct Fault {
    name: &'static str,
    source: SourceFault,
    handoff: Handoff,
    sink_fail: bool,
    sink_hold: bool,
    stop_flag: bool,
    /// The source read through [`Watched`], as `sammix run` reads it.
    watched: bool,
    /// The sink written through [`WatchedSink`], as `sammix run` writes it.
    watched_sink: bool,
}

/// A fault with nothing injected; each fault below sets what it needs.
const NONE: Fault = Fault {
    name: "",
    source: SourceFault::None,
    handoff: Handoff::Newest,
    sink_fail: false,
    sink_hold: false,
    stop_flag: false,
    watched: false,
    watched_sink: false,
};

const STALL: Duration = Duration::from_secs(2);
const AFTER: u64 = 12;
/// The looped clip ends here in any case.
const LAST: u64 = 1000;

fn run_one(
    fault: &Fault,
    frames: &[Frame],
    pipeline: &mut Pipeline,
) -> Result<(f64, String, Vec<f64>), String> {
    let mark: Mark = Arc::new(Mutex::new(None));
    let mut source = Looped {
        frames: frames.to_vec(),
        at: 0,
        after: if fault.source == SourceFault::None {
            u64::MAX
        } else {
            AFTER
        },
        fault: fault.source,
        hang: STALL * 3,
        mark: mark.clone(),
    };
    let inference_ms = Arc::new(Mutex::new(Vec::new()));
    let mut sink = Sink {
        fail_at: fault.sink_fail.then_some(AFTER),
        hold_at: fault.sink_hold.then_some(AFTER),
        hold: STALL * 3,
        mark: mark.clone(),
        inference_ms: inference_ms.clone(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let opts = StreamOptions {
        handoff: fault.handoff,
        stall_timeout: STALL,
        // A capture card's 25 frames a second.
        pace: Some(Duration::from_millis(40)),
        stop: Some(stop.clone()),
        ..StreamOptions::default()
    };
    let setter = fault.stop_flag.then(|| {
        let (stop, mark) = (stop.clone(), mark.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            *mark.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            stop.store(true, Ordering::SeqCst);
        })
    });
    let result = if fault.watched {
        let mut watched =
            Watched::new(Box::new(source), "scripted-capture", STALL).map_err(|e| e.to_string())?;
        stream::run(&mut watched, pipeline, &mut sink, &opts)
    } else if fault.watched_sink {
        let mut watched =
            WatchedSink::new(sink, "scripted-output", STALL).map_err(|e| e.to_string())?;
        stream::run(&mut source, pipeline, &mut watched, &opts)
    } else {
        stream::run(&mut source, pipeline, &mut sink, &opts)
    };
    let ended = Instant::now();
    if let Some(h) = setter {
        let _ = h.join();
    }
    let outcome = match &result {
        Ok(s) => format!("ended cleanly after {} frames", s.frames),
        Err(e) => e.to_string(),
    };
    let at = mark
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or_else(|| format!("{}: the fault never happened ({outcome})", fault.name))?;
    // A stall counts from when the timeout has passed.
    let from = if fault.source == SourceFault::Hang || fault.sink_hold {
        at + STALL
    } else {
        at
    };
    let ms = ended.saturating_duration_since(from).as_secs_f64() * 1e3;
    let inference = std::mem::take(&mut *inference_ms.lock().unwrap_or_else(|p| p.into_inner()));
    Ok((ms, outcome, inference))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("error")).init();
    let mut bundle_dir = PathBuf::from("models/sammix-us-tiny");
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--bundle", Some(v)) => bundle_dir = v.into(),
            ("--runs", Some(v)) => match v.parse() {
                Ok(n) if n > 0 => runs = n,
                _ => {
                    eprintln!("--runs {v}: expected a whole number above 0\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let loaded = Bundle::open(&bundle_dir)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            let clip = bundle_dir.join("demo/clip.y4m");
            let p = Pipeline::new(&b).map_err(|e| e.to_string())?;
            Ok((p, clip))
        });
    let (mut pipeline, clip) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("fault_stops: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut frames = Vec::new();
    let read = Y4mReader::open(&clip)
        .map_err(|e| e.to_string())
        .and_then(|mut r| {
            let mut f = Frame::zeros(1, 1, PixelFormat::Gray8);
            while frames.len() < 40
                && r.read_frame(&mut f, PixelFormat::Gray8)
                    .map_err(|e| e.to_string())?
            {
                frames.push(f.clone());
            }
            Ok(())
        });
    if let Err(e) = read.and_then(|()| {
        if frames.is_empty() {
            Err(format!("{}: no frames", clip.display()))
        } else {
            Ok(())
        }
    }) {
        eprintln!("fault_stops: {e}");
        return ExitCode::FAILURE;
    }
    let faults = [
        Fault {
            name: "source read fails (EIO), newest-frame handoff",
            source: SourceFault::Error,
            ..NONE
        },
        Fault {
            name: "source read fails (EIO), lossless handoff",
            source: SourceFault::Error,
            handoff: Handoff::Lossless,
            ..NONE
        },
        Fault {
            name: "sink fails (ENOSPC)",
            sink_fail: true,
            ..NONE
        },
        Fault {
            name: "stop flag (SIGTERM)",
            stop_flag: true,
            ..NONE
        },
        Fault {
            name: "source stops answering (stall timeout 2 s)",
            source: SourceFault::Hang,
            ..NONE
        },
        Fault {
            name: "source stops answering, read through Watched as sammix run reads it",
            source: SourceFault::Hang,
            watched: true,
            ..NONE
        },
        Fault {
            name: "sink stops taking results, lossless (stall timeout 2 s)",
            handoff: Handoff::Lossless,
            sink_hold: true,
            ..NONE
        },
        Fault {
            name: "sink stops taking results, written through WatchedSink as sammix run writes it",
            handoff: Handoff::Lossless,
            sink_hold: true,
            watched_sink: true,
            ..NONE
        },
    ];
    for fault in &faults {
        let mut times = Vec::new();
        let mut inference = Vec::new();
        let mut outcome = String::new();
        for _ in 0..runs {
            match run_one(fault, &frames, &mut pipeline) {
                Ok((ms, o, inf)) => {
                    times.push(ms);
                    inference.extend(inf);
                    outcome = o;
                }
                Err(e) => {
                    eprintln!("fault_stops: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        let line = serde_json::json!({
            "fault": fault.name,
            "runs": runs,
            "stop_ms_median": (median(&mut times) * 10.0).round() / 10.0,
            "stop_ms_max": (max * 10.0).round() / 10.0,
            "inference_ms_median": (median(&mut inference) * 10.0).round() / 10.0,
            "outcome": outcome,
        });
        println!("{line}");
    }
    ExitCode::SUCCESS
}
