//! The board's controls together: freeze button, status LED, frame watchdog.
//!
//! The run loop owns one [`Controls`] and calls, with one monotonic
//! millisecond clock:
//!
//! - [`Controls::on_frame_done`] when a frame's result is out (with the
//!   presence decision, if the classifier made one);
//! - [`Controls::poll`] every 10–20 ms (from the output thread, or a thread
//!   of its own): it debounces the button, plays the LED pattern, checks for
//!   a stall and pets the hardware watchdog. Its [`ControlEvents`] say whether
//!   to hold the display and pause inference.
//!
//! Neither call allocates or blocks (beyond one GPIO read or write).

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};

use super::freeze::{FreezeError, FreezeEvent, FreezeSwitch};
use super::led::{LedError, LedState, StatusLed};
use super::schema::{InputLine, Level, OutputLine, Profile};
use super::watchdog::{FrameWatchdog, Health, WatchdogDevice, WatchdogError};

/// The pins the controls use; each may be absent.
#[derive(Debug, Default)]
pub struct Pins<I, O> {
    /// The freeze button (input).
    pub freeze: Option<I>,
    /// The status LED (output).
    pub status_led: Option<O>,
    /// The fault LED (output).
    pub fault_led: Option<O>,
}

/// A control's pin or the watchdog device failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlsError<IE, OE, WE> {
    /// Reading the freeze button failed.
    #[error("freeze button pin: {0:?}")]
    Freeze(IE),
    /// Driving the status LED failed.
    #[error("status LED pin: {0:?}")]
    StatusLed(OE),
    /// Driving the fault LED failed.
    #[error("fault LED pin: {0:?}")]
    FaultLed(OE),
    /// Petting or disarming the hardware watchdog failed.
    #[error("hardware watchdog: {0:?}")]
    Watchdog(WE),
}

/// What one [`Controls::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlEvents {
    /// A press of the freeze button at this poll.
    pub freeze: Option<FreezeEvent>,
    /// The display is frozen: hold the last frame and mask, pause inference.
    pub frozen: bool,
    /// The frame watchdog's verdict.
    pub health: Health,
    /// What the status LED shows.
    pub status: LedState,
}

impl ControlEvents {
    /// Whether the freeze button toggled at this poll.
    pub fn freeze_toggled(&self) -> bool {
        self.freeze.is_some()
    }
}

/// Line settings used when the profile has no `[gpio]` but pins are given
/// (a test rig): a button that pulls low with a 30 ms debounce, LEDs lit high.
const DEFAULT_BUTTON: InputLine = InputLine {
    line: 0,
    active: Level::Low,
    debounce_ms: 30,
};
const DEFAULT_LED: OutputLine = OutputLine {
    line: 0,
    active: Level::High,
};

/// Freeze button, status LED and frame watchdog, owning their pins.
#[derive(Debug)]
pub struct Controls<I, O, W> {
    freeze: Option<FreezeSwitch<I>>,
    status: Option<StatusLed<O>>,
    watchdog: FrameWatchdog<O, W>,
    frames: u64,
    present: Option<bool>,
}

type Error<I, O, W> = ControlsError<
    <I as embedded_hal::digital::ErrorType>::Error,
    <O as embedded_hal::digital::ErrorType>::Error,
    <W as WatchdogDevice>::Error,
>;

impl<I: InputPin, O: OutputPin, W: WatchdogDevice> Controls<I, O, W> {
    /// Controls for `profile` on `pins`, petting `device` (if any), in the
    /// starting state from `now_ms`. Line polarity and debounce come from the
    /// profile's `[gpio]`; without one, pins given anyway use a pull-low
    /// button and active-high LEDs.
    pub fn new(profile: &Profile, pins: Pins<I, O>, device: Option<W>, now_ms: u64) -> Self {
        let (button, status, fault) = match &profile.gpio {
            Some(g) => (g.freeze, g.status_led, g.fault_led),
            None => {
                if pins.freeze.is_some() || pins.status_led.is_some() || pins.fault_led.is_some() {
                    log::warn!(
                        "board {} has no [gpio]: pins used with default polarity",
                        profile.name
                    );
                }
                (DEFAULT_BUTTON, DEFAULT_LED, DEFAULT_LED)
            }
        };
        Controls {
            freeze: pins.freeze.map(|p| FreezeSwitch::new(p, &button)),
            status: pins.status_led.map(|p| StatusLed::new(p, &status, now_ms)),
            watchdog: FrameWatchdog::new(
                &profile.watchdog,
                pins.fault_led.map(|p| (p, &fault)),
                device,
            ),
            frames: 0,
            present: None,
        }
    }

    /// Lights both LEDs for `ms` milliseconds, then puts them out, so the
    /// user sees that they work. Call once at start-up; blocks on `delay`.
    pub fn lamp_test<D: DelayNs>(&mut self, delay: &mut D, ms: u32) -> Result<(), Error<I, O, W>> {
        self.force_leds(true)?;
        delay.delay_ms(ms);
        self.force_leds(false)
    }

    fn force_leds(&mut self, on: bool) -> Result<(), Error<I, O, W>> {
        if let Some(s) = &mut self.status {
            s.force(on).map_err(status_err)?;
        }
        self.watchdog.force_led(on).map_err(watchdog_err)
    }

    /// A frame's result is out at `now_ms`; `present` is the classifier's
    /// decision (`None` when it made none).
    pub fn on_frame_done(&mut self, now_ms: u64, present: Option<bool>) {
        self.frames += 1;
        self.present = present;
        self.watchdog.frame_done(now_ms);
    }

    /// Reports (or clears) a fault found elsewhere (capture lost): fault LED
    /// and the status LED's fault code while set.
    pub fn set_fault(&mut self, on: bool) {
        self.watchdog.set_fault(on);
    }

    /// Whether the display is frozen.
    pub fn is_frozen(&self) -> bool {
        self.freeze.as_ref().is_some_and(FreezeSwitch::is_frozen)
    }

    /// Frames reported so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Services every control at `now_ms`. All three are serviced even when
    /// one fails; the first failure is returned (the others' state is kept).
    pub fn poll(&mut self, now_ms: u64) -> Result<ControlEvents, Error<I, O, W>> {
        let mut first: Option<Error<I, O, W>> = None;
        let freeze = match self.freeze.as_mut().map(|f| f.poll(now_ms)) {
            Some(Ok(ev)) => ev,
            Some(Err(FreezeError::Pin(e))) => {
                first = Some(ControlsError::Freeze(e));
                None
            }
            None => None,
        };
        match freeze {
            Some(FreezeEvent::Frozen) => self.watchdog.pause(),
            Some(FreezeEvent::Resumed) => self.watchdog.resume(now_ms),
            None => {}
        }
        let health = match self.watchdog.poll(now_ms) {
            Ok(h) => h,
            Err(e) => {
                first = first.or(Some(watchdog_err(e)));
                if self.watchdog.is_stalled() {
                    Health::StillStalled
                } else {
                    Health::Healthy
                }
            }
        };
        let frozen = self.is_frozen();
        let status = if self.watchdog.is_fault() {
            LedState::Fault
        } else if frozen {
            LedState::Frozen
        } else if self.frames == 0 {
            LedState::Starting
        } else {
            match self.present {
                None => LedState::Streaming,
                Some(false) => LedState::TargetAbsent,
                Some(true) => LedState::TargetPresent,
            }
        };
        if let Some(s) = &mut self.status {
            s.set_state(status, now_ms);
            if let Err(e) = s.tick(now_ms) {
                first = first.or(Some(status_err(e)));
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(ControlEvents {
                freeze,
                frozen,
                health,
                status,
            }),
        }
    }

    /// Clean shutdown: both LEDs out, the hardware watchdog disarmed.
    pub fn shutdown(&mut self) -> Result<(), Error<I, O, W>> {
        if let Some(s) = &mut self.status {
            s.force(false).map_err(status_err)?;
        }
        self.watchdog.shutdown().map_err(watchdog_err)
    }

    /// Gives the pins and the device back.
    pub fn release(self) -> (Pins<I, O>, Option<W>) {
        let (fault_led, device) = self.watchdog.release();
        let pins = Pins {
            freeze: self.freeze.map(FreezeSwitch::release),
            status_led: self.status.map(StatusLed::release),
            fault_led,
        };
        (pins, device)
    }
}

fn status_err<IE, OE, WE>(e: LedError<OE>) -> ControlsError<IE, OE, WE> {
    match e {
        LedError::Pin(e) => ControlsError::StatusLed(e),
    }
}

fn watchdog_err<IE, OE, WE>(e: WatchdogError<OE, WE>) -> ControlsError<IE, OE, WE> {
    match e {
        WatchdogError::FaultLed(e) => ControlsError::FaultLed(e),
        WatchdogError::Device(e) => ControlsError::Watchdog(e),
    }
}
