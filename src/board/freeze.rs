//! The freeze push button: a debounced input that toggles "frozen".
//!
//! Pressing it freezes the display (the last frame and its mask stay on the
//! overlay) and pauses inference; pressing it again resumes. It is a state
//! machine fed by [`FreezeSwitch::poll`] with a millisecond clock, so it runs
//! from any loop and is tested without threads or sleeps.
//!
//! Debounce: a new level counts once it has been read unchanged for
//! `debounce_ms`; shorter bounces are ignored. Only the press (released →
//! pressed) toggles. The level read at the first poll is taken as it is, so a
//! button held down while the device starts does not freeze it.

use embedded_hal::digital::InputPin;

use super::schema::{InputLine, Level};

/// A pin read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FreezeError<E> {
    /// Reading the switch's pin failed.
    #[error("freeze switch: reading the pin failed: {0:?}")]
    Pin(E),
}

/// What a poll saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeEvent {
    /// A press froze the display.
    Frozen,
    /// A press resumed streaming.
    Resumed,
}

/// A debounced freeze button that owns its pin.
#[derive(Debug)]
pub struct FreezeSwitch<I> {
    pin: I,
    active: Level,
    debounce_ms: u64,
    /// The debounced state (`None` before the first poll).
    pressed: Option<bool>,
    /// The last raw reading and since when it has been read.
    raw: bool,
    raw_since_ms: u64,
    frozen: bool,
}

impl<I: InputPin> FreezeSwitch<I> {
    /// A switch on `pin`, pressed when it reads `line.active`.
    pub fn new(pin: I, line: &InputLine) -> Self {
        FreezeSwitch {
            pin,
            active: line.active,
            debounce_ms: u64::from(line.debounce_ms),
            pressed: None,
            raw: false,
            raw_since_ms: 0,
            frozen: false,
        }
    }

    /// Whether the display is frozen now.
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Whether the button is pressed (debounced; `false` before the first poll).
    pub fn is_pressed(&self) -> bool {
        self.pressed.unwrap_or(false)
    }

    /// Reads the pin once; `now_ms` is a monotonic clock in milliseconds.
    /// Returns the toggle a debounced press caused, if any.
    pub fn poll(&mut self, now_ms: u64) -> Result<Option<FreezeEvent>, FreezeError<I::Error>> {
        let high = self.pin.is_high().map_err(FreezeError::Pin)?;
        let raw = high == (self.active == Level::High);
        let Some(pressed) = self.pressed else {
            self.pressed = Some(raw);
            self.raw = raw;
            self.raw_since_ms = now_ms;
            return Ok(None);
        };
        if raw != self.raw {
            self.raw = raw;
            self.raw_since_ms = now_ms;
        }
        let held = now_ms.saturating_sub(self.raw_since_ms);
        if raw == pressed || held < self.debounce_ms {
            return Ok(None);
        }
        self.pressed = Some(raw);
        if !raw {
            return Ok(None);
        }
        self.frozen = !self.frozen;
        let event = if self.frozen {
            FreezeEvent::Frozen
        } else {
            FreezeEvent::Resumed
        };
        log::info!("freeze switch: {event:?}");
        Ok(Some(event))
    }

    /// Gives the pin back.
    pub fn release(self) -> I {
        self.pin
    }
}
