//! The hand-off between the capture thread and the inference thread.
//!
//! A fixed pool of frame buffers moves between the two threads; nothing is
//! allocated once the pool exists (moving a [`Frame`] moves its pointer,
//! and the pool's `Vec` never grows past the capacity it was made with).
//!
//! - [`Handoff::Newest`] (live sources): capture never waits. A frame the
//!   inference side has not taken yet when the next one is ready is
//!   overwritten and counted as dropped; inference always gets the newest.
//! - [`Handoff::Lossless`] (files, folders): capture waits until inference
//!   took the previous frame, so every frame is processed.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::frame::{Frame, PixelFormat};

/// How frames pass from capture to inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Newest frame wins; stale ones are dropped and counted.
    Newest,
    /// Every frame is processed; capture waits for inference.
    Lossless,
}

/// What [`FrameSlot::take`] got.
#[derive(Debug)]
pub enum Taken {
    /// A frame, and how many frames were dropped since the last one taken.
    Frame(Frame, u64),
    /// No frame within the timeout; the stream is still open.
    Timeout,
    /// The capture side closed the slot and every frame was taken.
    Closed,
}

#[derive(Debug)]
struct Inner {
    /// Used first in, first out, so every buffer reaches the frame size
    /// within the first few frames and the stream is warm early.
    free: VecDeque<Frame>,
    ready: Option<Frame>,
    dropped_since_take: u64,
    dropped_total: u64,
    closed: bool,
}

/// A newest-frame slot over a fixed pool of buffers.
#[derive(Debug)]
pub struct FrameSlot {
    mode: Handoff,
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl FrameSlot {
    /// A slot with `buffers` pre-allocated frames (at least 3: one being
    /// captured, one ready, one being processed) of the given size.
    pub fn new(
        mode: Handoff,
        buffers: usize,
        width: usize,
        height: usize,
        format: PixelFormat,
    ) -> FrameSlot {
        let n = buffers.max(3);
        let mut free = VecDeque::with_capacity(n);
        for _ in 0..n {
            free.push_back(Frame::zeros(width, height, format));
        }
        FrameSlot {
            mode,
            inner: Mutex::new(Inner {
                free,
                ready: None,
                dropped_since_take: 0,
                dropped_total: 0,
                closed: false,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A thread that panicked while holding the lock left the state
        // consistent (every operation is a few moves); keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer for the capture side to fill. `None` when the slot was
    /// closed (or, in lossless mode, when none came free within `timeout`).
    pub fn buffer(&self, timeout: Duration) -> Option<Frame> {
        let mut g = self.lock();
        loop {
            if g.closed {
                return None;
            }
            if let Some(f) = g.free.pop_front() {
                return Some(f);
            }
            if self.mode == Handoff::Newest {
                // Every buffer is out (ready + processing + capturing):
                // recycle the ready one, it is stale by now.
                if let Some(f) = g.ready.take() {
                    g.dropped_since_take += 1;
                    g.dropped_total += 1;
                    return Some(f);
                }
            }
            let (next, res) = self
                .changed
                .wait_timeout(g, timeout)
                .unwrap_or_else(|e| e.into_inner());
            g = next;
            if res.timed_out() && g.free.is_empty() {
                return None;
            }
        }
    }

    /// In lossless mode, waits until the frame published last was taken (so
    /// the next one is read only when inference is ready for it and its
    /// capture time means something); at most `timeout`. Returns at once in
    /// newest mode.
    pub fn wait_taken(&self, timeout: Duration) {
        if self.mode != Handoff::Lossless {
            return;
        }
        let g = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(g, timeout, |g| g.ready.is_some() && !g.closed)
            .map_err(|e| e.into_inner());
    }

    /// Publishes a filled frame. In newest mode a frame still waiting is
    /// dropped (counted) and its buffer recycled; in lossless mode this
    /// waits until the previous frame was taken (`false`: closed meanwhile,
    /// the frame is returned to the pool).
    pub fn publish(&self, frame: Frame) -> bool {
        let mut g = self.lock();
        if self.mode == Handoff::Lossless {
            while g.ready.is_some() && !g.closed {
                g = self.changed.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        }
        if g.closed {
            g.free.push_back(frame);
            return false;
        }
        if let Some(stale) = g.ready.replace(frame) {
            g.dropped_since_take += 1;
            g.dropped_total += 1;
            g.free.push_back(stale);
        }
        drop(g);
        self.changed.notify_all();
        true
    }

    /// Takes the newest frame, waiting up to `timeout`.
    pub fn take(&self, timeout: Duration) -> Taken {
        let mut g = self.lock();
        loop {
            if let Some(f) = g.ready.take() {
                let dropped = std::mem::take(&mut g.dropped_since_take);
                drop(g);
                self.changed.notify_all();
                return Taken::Frame(f, dropped);
            }
            if g.closed {
                return Taken::Closed;
            }
            let (next, res) = self
                .changed
                .wait_timeout(g, timeout)
                .unwrap_or_else(|e| e.into_inner());
            g = next;
            if res.timed_out() && g.ready.is_none() {
                return if g.closed {
                    Taken::Closed
                } else {
                    Taken::Timeout
                };
            }
        }
    }

    /// Gives a processed frame's buffer back to the pool.
    pub fn recycle(&self, frame: Frame) {
        let mut g = self.lock();
        if g.free.len() < g.free.capacity() {
            g.free.push_back(frame);
        }
        drop(g);
        self.changed.notify_all();
    }

    /// Closes the slot: the capture side is done (or must stop). A frame
    /// already published can still be taken.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Whether [`FrameSlot::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Frames dropped in total.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped_total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(200);

    fn frame(slot: &FrameSlot, seq: u64) -> Frame {
        let mut f = slot.buffer(T).unwrap();
        f.sequence = seq;
        f
    }

    #[test]
    fn newest_frame_wins_and_drops_are_counted() {
        let slot = FrameSlot::new(Handoff::Newest, 3, 4, 4, PixelFormat::Gray8);
        for seq in 0..5 {
            let f = frame(&slot, seq);
            assert!(slot.publish(f));
        }
        match slot.take(T) {
            Taken::Frame(f, dropped) => {
                assert_eq!(f.sequence, 4);
                assert_eq!(dropped, 4);
                slot.recycle(f);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(slot.dropped(), 4);
        assert!(matches!(
            slot.take(Duration::from_millis(10)),
            Taken::Timeout
        ));
        slot.close();
        assert!(matches!(slot.take(T), Taken::Closed));
        assert!(slot.buffer(T).is_none());
    }

    #[test]
    fn capture_never_waits_in_newest_mode_even_with_every_buffer_out() {
        let slot = FrameSlot::new(Handoff::Newest, 3, 2, 2, PixelFormat::Gray8);
        let processing = frame(&slot, 0);
        let ready = frame(&slot, 1);
        assert!(slot.publish(ready));
        let _capturing = frame(&slot, 2);
        // Pool empty, one frame ready: the next buffer is the stale ready one.
        let f = slot.buffer(Duration::from_millis(1)).unwrap();
        assert_eq!(f.sequence, 1);
        assert_eq!(slot.dropped(), 1);
        slot.recycle(processing);
    }

    #[test]
    fn lossless_mode_hands_over_every_frame_in_order() {
        let slot = std::sync::Arc::new(FrameSlot::new(
            Handoff::Lossless,
            3,
            8,
            8,
            PixelFormat::Gray8,
        ));
        let producer = {
            let slot = slot.clone();
            std::thread::spawn(move || {
                for seq in 0..50 {
                    let f = frame(&slot, seq);
                    assert!(slot.publish(f));
                }
                slot.close();
            })
        };
        let mut seen = Vec::new();
        loop {
            match slot.take(T) {
                Taken::Frame(f, dropped) => {
                    assert_eq!(dropped, 0);
                    seen.push(f.sequence);
                    slot.recycle(f);
                }
                Taken::Timeout => continue,
                Taken::Closed => break,
            }
        }
        producer.join().unwrap();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
        assert_eq!(slot.dropped(), 0);
    }
}
