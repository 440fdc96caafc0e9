//! Frame numbers from the device's `v4l2_buffer.sequence`, gaps counted as
//! drops.

/// A jump of the device's counter larger than this is taken as a restart
/// (or a bogus value), not as that many dropped frames.
const MAX_GAP: u32 = 1 << 20;

/// Turns the device's 32-bit buffer sequence into the stream's frame
/// numbers (0, 1, …) and counts the frames the device skipped.
///
/// - The first frame is 0 whatever the device's counter says.
/// - A step of `1 + n` on the device is `n` dropped frames: the frame number
///   jumps by the same amount, so the stream sees the gap.
/// - A counter that does not advance (v4l2loopback reports 0 for every
///   frame) switches to counting frames here, for good.
/// - A counter that goes back or jumps by more than 2^20 (a restarted or
///   reconnected device, a wrap) re-bases: numbering goes on from the last
///   frame number, no drop is counted.
#[derive(Debug, Clone, Default)]
pub struct SequenceTracker {
    last_device: Option<u32>,
    next: u64,
    dropped: u64,
    local: bool,
}

impl SequenceTracker {
    /// A tracker before the first frame.
    pub fn new() -> SequenceTracker {
        SequenceTracker::default()
    }

    /// The frame number of the frame the device numbered `device`.
    pub fn next(&mut self, device: u32) -> u64 {
        let out = match self.last_device {
            Some(last) if !self.local => {
                let step = device.wrapping_sub(last);
                if step == 0 {
                    log::info!(
                        "the device's frame sequence does not advance ({device}): counting frames here"
                    );
                    self.local = true;
                    self.next
                } else if step <= MAX_GAP {
                    let gap = u64::from(step - 1);
                    self.dropped += gap;
                    self.next + gap
                } else {
                    log::debug!(
                        "the device's frame sequence jumped from {last} to {device}: re-based"
                    );
                    self.next
                }
            }
            _ => self.next,
        };
        self.last_device = Some(device);
        self.next = out + 1;
        out
    }

    /// The device restarted its counter (reopened after a reconnect): the
    /// next frame goes on from the last frame number.
    pub fn rebase(&mut self) {
        self.last_device = None;
        self.local = false;
    }

    /// Frames the device skipped so far, by its sequence numbers.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether frames are counted here because the device's counter does
    /// not advance.
    pub fn is_local(&self) -> bool {
        self.local
    }
}
