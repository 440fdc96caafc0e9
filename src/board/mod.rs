//! The board a device runs on: its profile, compiled in at build time, and
//! its controls.
//!
//! - [`schema`]: what a `board/*.toml` profile holds, and its validation
//!   (the very code `build.rs` runs on the profile named by `SAMMIX_BOARD`);
//! - [`profile`]: the profile this binary was built for
//!   ([`profile::current`]), shown by `sammix info --board`;
//! - [`Controls`]: the freeze button ([`freeze`]), the status LED with its
//!   blink codes ([`led`]) and the frame watchdog ([`watchdog`]) together,
//!   generic over `embedded-hal` 1.0 pins and fed by a millisecond clock;
//! - [`systemd`]: `READY=1` and the service watchdog's `WATCHDOG=1` to
//!   `$NOTIFY_SOCKET`, petted with the hardware watchdog;
//! - `linux` (feature `linux-gpio`): the pins of a profile opened on the
//!   GPIO character device.
//!
//! ```
//! use sammix::board::{profile, Controls, FakeWatchdog, NoPin, Pins};
//!
//! let pins: Pins<NoPin, NoPin> = Pins::default();
//! let mut controls = Controls::new(profile::current(), pins, Some(FakeWatchdog::default()), 0);
//! controls.on_frame_done(40, Some(true));
//! let events = controls.poll(50).unwrap();
//! assert!(!events.frozen);
//! ```

pub mod controls;
pub mod freeze;
pub mod led;
#[cfg(feature = "linux-gpio")]
pub mod linux;
pub mod profile;
/// The board profile schema: types, parsing and validation (shared with
/// `build.rs`, which includes this file).
pub mod schema;
pub mod systemd;
pub mod watchdog;

use core::convert::Infallible;

pub use controls::{ControlEvents, Controls, ControlsError, Pins};
pub use freeze::{FreezeError, FreezeEvent, FreezeSwitch};
pub use led::{Led, LedError, LedState, StatusLed};
pub use schema::{Profile, ProfileError, ProfileErrors};
pub use systemd::{NotifyError, SystemdNotify, Watchdogs};
pub use watchdog::{FakeWatchdog, FrameWatchdog, Health, LinuxWatchdog, WatchdogDevice};

/// A pin that is not there: reads low, ignores writes, never fails. Names
/// the pin type of [`Pins`] fields left `None` (a board without GPIO).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NoPin;

impl embedded_hal::digital::ErrorType for NoPin {
    type Error = Infallible;
}

impl embedded_hal::digital::InputPin for NoPin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(false)
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(true)
    }
}

impl embedded_hal::digital::OutputPin for NoPin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
