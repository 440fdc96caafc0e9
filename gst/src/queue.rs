//! The ordered queue between the streaming thread and the source pad's
//! task, and the element's counters.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Buffers queued before upstream waits, in lossless handoff.
pub const LOSSLESS_DEPTH: usize = 4;

/// Items queued behind a frame in inference before further buffers are
/// dropped (counted), in newest handoff: ~2 s of 240 fps video behind a
/// 2-s inference; only a stalled downstream gets here.
pub const NEWEST_LIMIT: usize = 512;

/// How long the task waits for an item before it looks at the flags again.
pub const POLL: Duration = Duration::from_millis(100);

/// What the streaming thread hands to the task, in stream order.
#[derive(Debug)]
pub enum Item {
    /// A buffer; `infer`: segment it (else it passes unmarked).
    Buffer {
        /// The buffer.
        buffer: gst::Buffer,
        /// Whether it goes through inference.
        infer: bool,
        /// Its index since the element started.
        index: u64,
    },
    /// A serialized event (caps, segment, EOS, …).
    Event(gst::Event),
}

/// The queue's state, under one lock.
#[derive(Debug)]
pub struct State {
    /// Items not yet taken by the task.
    pub items: VecDeque<Item>,
    /// A buffer marked for inference is queued or in inference.
    pub in_inference: bool,
    /// Flushing or stopped: nothing is queued, the task pauses.
    pub flushing: bool,
    /// Downstream's last answer, returned to upstream when it is an error.
    pub flow: Result<gst::FlowSuccess, gst::FlowError>,
}

/// The queue and the condition its waiters wait on.
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    changed: Condvar,
}

impl Default for Queue {
    fn default() -> Queue {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(64),
                in_inference: false,
                flushing: true,
                flow: Ok(gst::FlowSuccess::Ok),
            }),
            changed: Condvar::new(),
        }
    }
}

impl Queue {
    /// The state, locked (a poisoned lock is taken over: the state stays
    /// consistent between statements).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a change, at most [`POLL`].
    pub fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        match self.changed.wait_timeout(guard, POLL) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Wakes every waiter.
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    /// Starts or stops flushing; stopping clears the queue (and the
    /// inference mark) and wakes the waiters.
    pub fn set_flushing(&self, flushing: bool) {
        let mut s = self.lock();
        s.flushing = flushing;
        if flushing {
            s.items.clear();
            s.in_inference = false;
        } else {
            s.flow = Ok(gst::FlowSuccess::Ok);
        }
        drop(s);
        self.notify();
    }
}

/// The element's counters (read-only properties; the EOS summary).
#[derive(Debug, Default)]
pub struct Counters {
    /// Buffers received.
    pub frames: AtomicU64,
    /// Buffers pushed with a result.
    pub processed: AtomicU64,
    /// Buffers pushed without one (no time for them, or their frame failed).
    pub unmarked: AtomicU64,
    /// Buffers dropped because [`NEWEST_LIMIT`] items were queued.
    pub dropped: AtomicU64,
}

impl Counters {
    /// Zeroes every counter.
    pub fn reset(&self) {
        for c in [&self.frames, &self.processed, &self.unmarked, &self.dropped] {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Adds one to `c`, returning the value before.
    pub fn bump(c: &AtomicU64) -> u64 {
        c.fetch_add(1, Ordering::Relaxed)
    }

    /// Reads `c`.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}
