//! [`V4lSource`]: mmap streaming, drops, reconnect (negotiation is in
//! `negotiate.rs`).

use std::time::{Duration, Instant};

use crate::frame::Frame;
use crate::source::{FrameSource, SourceError, Truth};

use super::convert::{convert, convert_planes, BadFrame, Colour};
use super::layout::Layout;
use super::negotiate::{start, sys_error, Negotiated};
use super::sequence::SequenceTracker;
use super::sys::{MmapStream, SysError};
use super::{V4lError, V4lOptions, V4lSpec};

/// Short frames in a row before the source gives up.
const MAX_SHORT: u32 = 5;

/// A V4L2 capture device as a [`FrameSource`] (see the [module
/// docs](super)).
#[derive(Debug)]
pub struct V4lSource {
    spec: V4lSpec,
    opts: V4lOptions,
    stream: Option<MmapStream>,
    neg: Negotiated,
    seq: SequenceTracker,
    skipped: u64,
    short: u32,
    reconnects: u64,
    /// Why the stream was dropped, until it is reopened.
    lost: Option<String>,
}

impl V4lSource {
    /// Opens the device, negotiates the format and starts streaming.
    pub fn open(spec: &V4lSpec, opts: V4lOptions) -> Result<V4lSource, V4lError> {
        let (stream, neg) = start(spec, &opts)?;
        Ok(V4lSource {
            spec: spec.clone(),
            opts,
            stream: Some(stream),
            neg,
            seq: SequenceTracker::new(),
            skipped: 0,
            short: 0,
            reconnects: 0,
            lost: None,
        })
    }

    /// The negotiated frame layout.
    pub fn layout(&self) -> Layout {
        self.neg.layout
    }

    /// How the device's samples map to colour.
    pub fn colour(&self) -> Colour {
        self.neg.colour
    }

    /// Frames dropped so far: gaps in the device's sequence, plus frames
    /// skipped here (stale with [`V4lOptions::newest`], flagged as corrupt,
    /// or short).
    pub fn dropped(&self) -> u64 {
        self.seq.dropped() + self.skipped
    }

    /// Times the device was reopened after it went away.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The spec it was opened with.
    pub fn spec(&self) -> &V4lSpec {
        &self.spec
    }

    fn lose(&mut self, e: SysError) {
        log::warn!(
            "{}: {e}: the device went away; trying to reopen it for up to {:?}",
            self.spec.device.display(),
            self.opts.reconnect_for
        );
        self.stream = None;
        self.lost = Some(e.to_string());
    }

    /// Reopens the device with the negotiated size and format, every
    /// `reconnect_every` for up to `reconnect_for`.
    fn reconnect(&mut self) -> Result<(), V4lError> {
        let cause = self.lost.take().unwrap_or_else(|| "stream lost".into());
        let fixed = V4lSpec {
            device: self.spec.device.clone(),
            size: u32::try_from(self.neg.layout.width)
                .ok()
                .zip(u32::try_from(self.neg.layout.height).ok()),
            fourcc: Some(self.neg.layout.format.fourcc()),
        };
        let started = Instant::now();
        let mut last = "not tried".to_string();
        while started.elapsed() < self.opts.reconnect_for {
            match start(&fixed, &self.opts) {
                Ok((stream, neg)) => {
                    log::warn!(
                        "{}: reopened after {:.1} s",
                        self.spec.device.display(),
                        started.elapsed().as_secs_f64()
                    );
                    self.stream = Some(stream);
                    self.neg = neg;
                    self.seq.rebase();
                    self.reconnects += 1;
                    return Ok(());
                }
                Err(
                    e @ (V4lError::Format { .. }
                    | V4lError::Unsupported { .. }
                    | V4lError::NotCapture { .. }),
                ) => return Err(e),
                Err(V4lError::Open { io, .. }) => last = format!("open: {io}"),
                Err(V4lError::Io { op, io, .. }) => last = format!("{op}: {io}"),
                Err(e) => last = e.to_string(),
            }
            let left = self.opts.reconnect_for.saturating_sub(started.elapsed());
            std::thread::sleep(
                self.opts
                    .reconnect_every
                    .min(left)
                    .max(Duration::from_millis(1)),
            );
        }
        Err(V4lError::Gone {
            device: self.spec.device.clone(),
            cause,
            waited: started.elapsed(),
            last,
        })
    }

    /// Waits for the next frame and converts it into `frame`.
    fn capture(&mut self, frame: &mut Frame) -> Result<(), V4lError> {
        let device = self.spec.device.clone();
        let mut deadline = Instant::now() + self.opts.frame_timeout;
        loop {
            if self.stream.is_none() {
                self.reconnect()?;
                deadline = Instant::now() + self.opts.frame_timeout;
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let mut got = match stream.dequeue(left) {
                Ok(Some(d)) => d,
                Ok(None) => {
                    return Err(V4lError::Timeout {
                        device,
                        waited: self.opts.frame_timeout,
                    })
                }
                Err(e) if e.is_gone() => {
                    self.lose(e);
                    continue;
                }
                Err(e) => return Err(sys_error(&device, e)),
            };
            let mut failure = None;
            while self.opts.newest {
                match stream.dequeue(Duration::ZERO) {
                    Ok(Some(newer)) => {
                        self.seq.next(got.sequence);
                        self.skipped += 1;
                        if let Err(e) = stream.requeue(got.index) {
                            failure = Some(e);
                        }
                        got = newer;
                    }
                    Ok(None) => break,
                    // Hand over the frame in hand; the error comes again.
                    Err(_) => break,
                }
                if failure.is_some() {
                    break;
                }
            }
            let converted = if got.is_error() {
                None
            } else {
                let (layout, colour, output) =
                    (&self.neg.layout, self.neg.colour, self.opts.output);
                Some(if self.neg.planes == 2 {
                    convert_planes(
                        stream.data(&got, 0),
                        stream.data(&got, 1),
                        layout,
                        colour,
                        output,
                        frame,
                    )
                } else {
                    convert(stream.data(&got, 0), layout, colour, output, frame)
                })
            };
            if let Err(e) = stream.requeue(got.index) {
                failure.get_or_insert(e);
            }
            let number = self.seq.next(got.sequence);
            let delivered = matches!(converted, Some(Ok(())));
            match converted {
                Some(Ok(())) => {
                    self.short = 0;
                    frame.sequence = number;
                    frame.captured = Some(Instant::now());
                }
                None => {
                    log::debug!(
                        "{}: buffer {number} flagged as corrupt: skipped",
                        device.display()
                    );
                    self.skipped += 1;
                }
                Some(Err(bad)) => {
                    self.skipped += 1;
                    self.short += 1;
                    log::warn!(
                        "{}: frame {number} of {}: {bad}: skipped",
                        device.display(),
                        self.neg.layout,
                    );
                    if self.short >= MAX_SHORT {
                        return Err(match bad {
                            BadFrame::Short(short) => V4lError::ShortFrames {
                                device,
                                layout: self.neg.layout.to_string(),
                                needed: short.needed,
                                got: short.got,
                                count: self.short,
                            },
                            BadFrame::Jpeg(why) => V4lError::BadJpegs {
                                device,
                                layout: self.neg.layout.to_string(),
                                last: why,
                                count: self.short,
                            },
                        });
                    }
                }
            }
            if let Some(e) = failure {
                if !e.is_gone() {
                    return Err(sys_error(&device, e));
                }
                self.lose(e);
            }
            if delivered {
                return Ok(());
            }
        }
    }
}

impl FrameSource for V4lSource {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        self.capture(frame)?;
        Ok(true)
    }

    fn frame_name(&self, sequence: u64) -> String {
        format!("{sequence:06}")
    }

    fn frame_rate(&self) -> Option<(u32, u32)> {
        self.neg.rate
    }

    fn len_hint(&self) -> Option<u64> {
        None
    }

    fn truth(&self) -> Option<Truth> {
        None
    }
}
