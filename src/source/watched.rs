//! [`Watched`]: a source read on a thread of its own, so that a read that
//! never returns (a wedged capture driver, a hung network file system)
//! cannot hold the stream past its stall timeout.
//!
//! The stream's threads are scoped: when its source stops answering, it
//! notices at the stall timeout but can only return once the blocked read
//! does. Wrapped in a [`Watched`], the read runs on a thread the wrapper
//! owns; after `timeout` without an answer, [`FrameSource::next_frame`]
//! returns [`SourceError::Stalled`] at once, the stream stops, and the
//! reader thread is left behind, still blocked, to end with the process
//! (dropping the wrapper does not wait for it).
//!
//! Frames cross between the threads by swapping buffers (two channels of
//! one slot each), so once warm a frame costs no allocation and no copy.
//! The wrapper names frames by index (`NNNNNN`), as every source but a
//! folder of images does; frame rate, length and ground truth are read from
//! the source when it is wrapped.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

use crate::frame::{Frame, PixelFormat};

use super::{FrameSource, SourceError, Truth};

type Reply = (Frame, Result<bool, SourceError>);

/// A [`FrameSource`] read on a thread of its own, with a timeout (see the
/// [module docs](self)).
pub struct Watched {
    name: String,
    timeout: Duration,
    requests: SyncSender<Frame>,
    replies: Receiver<Reply>,
    /// The buffer handed to the reader at the next read.
    spare: Option<Frame>,
    /// A read was asked for and has not been answered.
    in_flight: bool,
    frame_rate: Option<(u32, u32)>,
    len_hint: Option<u64>,
    truth: Option<Truth>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Watched {
    /// Moves `source` (called `name` in messages) onto a reader thread; a
    /// read that takes longer than `timeout` is [`SourceError::Stalled`].
    /// Fails only when the system cannot start a thread.
    pub fn new(
        mut source: Box<dyn FrameSource>,
        name: impl Into<String>,
        timeout: Duration,
    ) -> Result<Watched, SourceError> {
        let name = name.into();
        let (frame_rate, len_hint, truth) =
            (source.frame_rate(), source.len_hint(), source.truth());
        let (requests, todo) = mpsc::sync_channel::<Frame>(1);
        let (done, replies) = mpsc::sync_channel::<Reply>(1);
        std::thread::Builder::new()
            .name("source-reader".into())
            .spawn(move || {
                // Ends when the wrapper is dropped (its sender goes away).
                while let Ok(mut frame) = todo.recv() {
                    let result = source.next_frame(&mut frame);
                    if done.send((frame, result)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| SourceError::Reader {
                source_name: name.clone(),
                problem: format!("cannot start its reader thread: {e}"),
            })?;
        Ok(Watched {
            name,
            timeout,
            requests,
            replies,
            spare: Some(Frame::zeros(1, 1, PixelFormat::Gray8)),
            in_flight: false,
            frame_rate,
            len_hint,
            truth,
        })
    }

    fn gone(&self) -> SourceError {
        SourceError::Reader {
            source_name: self.name.clone(),
            problem: "its reader thread ended (the source panicked?)".into(),
        }
    }
}

impl FrameSource for Watched {
    fn next_frame(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if !self.in_flight {
            let Some(buffer) = self.spare.take() else {
                return Err(self.gone());
            };
            if self.requests.send(buffer).is_err() {
                return Err(self.gone());
            }
            self.in_flight = true;
        }
        match self.replies.recv_timeout(self.timeout) {
            Ok((mut filled, result)) => {
                self.in_flight = false;
                if matches!(result, Ok(true)) {
                    std::mem::swap(frame, &mut filled);
                }
                self.spare = Some(filled);
                result
            }
            Err(RecvTimeoutError::Timeout) => Err(SourceError::Stalled {
                source_name: self.name.clone(),
                waited: self.timeout,
            }),
            Err(RecvTimeoutError::Disconnected) => Err(self.gone()),
        }
    }

    fn frame_name(&self, sequence: u64) -> String {
        format!("{sequence:06}")
    }

    fn frame_rate(&self) -> Option<(u32, u32)> {
        self.frame_rate
    }

    fn len_hint(&self) -> Option<u64> {
        self.len_hint
    }

    fn truth(&self) -> Option<Truth> {
        self.truth.clone()
    }
}
