//! The status LED: one blink code per device state.
//!
//! A code is a repeating pattern of on/off steps ([`pattern`]);
//! [`StatusLed::tick`] advances it from a millisecond clock and writes the pin
//! only when the LED must change, so a tick costs nothing between edges and
//! never allocates. A late tick skips ahead to where the pattern is now.
//!
//! | state | pattern | reads as |
//! |---|---|---|
//! | starting | 100 ms on, 100 ms off | fast flicker |
//! | streaming | 500 ms on, 500 ms off | even blink (no presence decided yet) |
//! | target absent | 100 ms on, 1900 ms off | short blip every 2 s |
//! | target present | on | steady |
//! | frozen | 100 on, 100 off, 100 on, 700 off | double blink |
//! | fault | 3 × (150 on, 150 off), then dark to 2 s | triple blink (the fault LED is also lit) |

use embedded_hal::digital::OutputPin;

use super::schema::{Level, OutputLine};

/// What the status LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedState {
    /// Loading the bundle, opening the capture card.
    Starting,
    /// Frames are flowing; no presence decision yet.
    Streaming,
    /// The classifier says the target is absent.
    TargetAbsent,
    /// The classifier says the target is present (a mask is shown).
    TargetPresent,
    /// The freeze button holds the display.
    Frozen,
    /// Something is wrong (stalled pipeline, capture lost).
    Fault,
}

/// One step of a blink pattern: LED on or off for `ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Lit during this step.
    pub on: bool,
    /// Duration in milliseconds (> 0).
    pub ms: u16,
}

const fn on(ms: u16) -> Step {
    Step { on: true, ms }
}

const fn off(ms: u16) -> Step {
    Step { on: false, ms }
}

const STARTING: &[Step] = &[on(100), off(100)];
const STREAMING: &[Step] = &[on(500), off(500)];
const TARGET_ABSENT: &[Step] = &[on(100), off(1900)];
const TARGET_PRESENT: &[Step] = &[on(1000)];
const FROZEN: &[Step] = &[on(100), off(100), on(100), off(700)];
const FAULT: &[Step] = &[on(150), off(150), on(150), off(150), on(150), off(1250)];

/// The repeating blink pattern of a state (the table in the module docs).
pub fn pattern(state: LedState) -> &'static [Step] {
    match state {
        LedState::Starting => STARTING,
        LedState::Streaming => STREAMING,
        LedState::TargetAbsent => TARGET_ABSENT,
        LedState::TargetPresent => TARGET_PRESENT,
        LedState::Frozen => FROZEN,
        LedState::Fault => FAULT,
    }
}

/// A pin write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedError<E> {
    /// Driving the LED's pin failed.
    #[error("LED: driving the pin failed: {0:?}")]
    Pin(E),
}

/// Drives an LED pin at its active level.
#[derive(Debug)]
pub struct Led<O> {
    pin: O,
    active: Level,
    lit: Option<bool>,
}

impl<O: OutputPin> Led<O> {
    /// An LED on `pin`, lit when driven to `line.active`. Not written yet.
    pub fn new(pin: O, line: &OutputLine) -> Self {
        Led {
            pin,
            active: line.active,
            lit: None,
        }
    }

    /// Lights the LED or puts it out; writes the pin only on a change.
    pub fn set(&mut self, on: bool) -> Result<(), LedError<O::Error>> {
        if self.lit == Some(on) {
            return Ok(());
        }
        let high = on == (self.active == Level::High);
        let r = if high {
            self.pin.set_high()
        } else {
            self.pin.set_low()
        };
        // After a failed write the level is unknown: write again next time.
        self.lit = None;
        r.map_err(LedError::Pin)?;
        self.lit = Some(on);
        Ok(())
    }

    /// Whether the LED was last lit (`None`: never written, or a write failed).
    pub fn is_lit(&self) -> Option<bool> {
        self.lit
    }

    /// Gives the pin back.
    pub fn release(self) -> O {
        self.pin
    }
}

/// The status LED: a [`Led`] playing the pattern of a [`LedState`].
#[derive(Debug)]
pub struct StatusLed<O> {
    led: Led<O>,
    state: LedState,
    /// When the current pattern started.
    start_ms: u64,
}

impl<O: OutputPin> StatusLed<O> {
    /// A status LED on `pin`, in [`LedState::Starting`] from `now_ms`.
    pub fn new(pin: O, line: &OutputLine, now_ms: u64) -> Self {
        StatusLed {
            led: Led::new(pin, line),
            state: LedState::Starting,
            start_ms: now_ms,
        }
    }

    /// The state shown.
    pub fn state(&self) -> LedState {
        self.state
    }

    /// Shows `state` from `now_ms` (a new state starts its pattern from the
    /// first step; the same state goes on undisturbed). Writes at the next tick.
    pub fn set_state(&mut self, state: LedState, now_ms: u64) {
        if state != self.state {
            self.state = state;
            self.start_ms = now_ms;
        }
    }

    /// Whether the pattern has the LED lit at `now_ms`.
    pub fn lit_at(&self, now_ms: u64) -> bool {
        let steps = pattern(self.state);
        let total: u64 = steps.iter().map(|s| u64::from(s.ms)).sum();
        if total == 0 {
            return false;
        }
        let mut t = now_ms.saturating_sub(self.start_ms) % total;
        for s in steps {
            if t < u64::from(s.ms) {
                return s.on;
            }
            t -= u64::from(s.ms);
        }
        false
    }

    /// Drives the LED to where the pattern is at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Result<(), LedError<O::Error>> {
        let on = self.lit_at(now_ms);
        self.led.set(on)
    }

    /// Lights the LED or puts it out now, whatever the pattern (lamp test,
    /// shutdown); the next tick goes back to the pattern.
    pub fn force(&mut self, on: bool) -> Result<(), LedError<O::Error>> {
        self.led.set(on)
    }

    /// Gives the pin back.
    pub fn release(self) -> O {
        self.led.release()
    }
}
