//! A global allocator that counts allocations (and reallocations) and
//! forwards every call to the system's, and a sink ([`Window`]) that reads
//! the count when two frames reach the output: the allocation tests
//! (`stream_alloc.rs`, `pipeline_alloc.rs`, each through `#[path]`). The
//! counter is process-wide, so each such test is alone in its binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use sammix::frame::{Frame, Mask};
use sammix::pipeline::Outcome;
use sammix::stream::{FrameRecord, FrameSink};

pub struct Counting;

/// Allocations so far, in the whole process.
pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a relaxed atomic and does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Reads [`ALLOCATIONS`] when frames `from` and `to` reach the output, and
/// counts the frames in between by outcome.
pub struct Window {
    pub from: u64,
    pub to: u64,
    pub at_from: u64,
    pub at_to: u64,
    pub segmented: u64,
    pub absent: u64,
}

impl Window {
    /// Frames `from` to `to`, nothing counted yet.
    pub fn new(from: u64, to: u64) -> Window {
        Window {
            from,
            to,
            at_from: 0,
            at_to: 0,
            segmented: 0,
            absent: 0,
        }
    }

    /// Allocations between the two frames.
    pub fn allocations(&self) -> u64 {
        self.at_to - self.at_from
    }
}

impl FrameSink for Window {
    fn frame(
        &mut self,
        _frame: &Frame,
        _mask: &Mask,
        record: &FrameRecord,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let seq = record.result.sequence;
        if seq == self.from {
            self.at_from = ALLOCATIONS.load(Ordering::Relaxed);
        }
        if seq == self.to {
            self.at_to = ALLOCATIONS.load(Ordering::Relaxed);
        }
        if (self.from..self.to).contains(&seq) {
            match record.result.outcome {
                Outcome::Segmented => self.segmented += 1,
                Outcome::Absent => self.absent += 1,
                _ => {}
            }
        }
        Ok(())
    }
}
