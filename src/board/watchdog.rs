//! The frame watchdog: no frame finished within the profile's timeout is a
//! fault (fault LED on, one log line), and the hardware watchdog is petted
//! only while frames keep coming.
//!
//! If the pipeline stalls, petting stops; if it stays stalled past the
//! hardware watchdog's own timeout (the driver's, see `wdctl`), the board
//! resets. If frames resume first, the fault clears and petting resumes.
//! While the display is frozen no frame is expected: [`FrameWatchdog::pause`]
//! stops the stall clock and petting goes on.
//!
//! The hardware side is the small [`WatchdogDevice`] trait:
//! [`LinuxWatchdog`] (`/dev/watchdog`) on the board, [`FakeWatchdog`] in tests.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use embedded_hal::digital::OutputPin;

use super::led::{Led, LedError};
use super::schema::{OutputLine, Profile, Watchdog as WatchdogConfig};

/// A hardware watchdog that must be petted regularly.
pub trait WatchdogDevice {
    /// The device's error.
    type Error: core::fmt::Debug;
    /// Restarts the hardware countdown.
    fn pet(&mut self) -> Result<(), Self::Error>;
    /// Stops the hardware watchdog on a clean shutdown, where the driver allows it.
    fn disarm(&mut self) -> Result<(), Self::Error>;
}

/// The Linux watchdog device (`/dev/watchdog`): every write pets it; writing
/// the magic `V` before closing stops it (unless the kernel has `nowayout`).
///
/// Opening the device starts the countdown, so open it when streaming starts.
/// Dropping it without [`WatchdogDevice::disarm`] leaves it running, on
/// purpose: a crashed process must not stop the watchdog. Only one process
/// may hold the device: systemd's `RuntimeWatchdogSec=` must be off.
#[derive(Debug)]
pub struct LinuxWatchdog {
    file: File,
}

impl LinuxWatchdog {
    /// Opens the device (write-only), which arms it.
    pub fn open(path: &Path) -> io::Result<LinuxWatchdog> {
        let file = OpenOptions::new().write(true).open(path)?;
        log::info!("watchdog {} opened (armed)", path.display());
        Ok(LinuxWatchdog { file })
    }

    /// Opens the profile's `watchdog.device`; `None` when it names none.
    pub fn open_for(profile: &Profile) -> io::Result<Option<LinuxWatchdog>> {
        let device = profile.watchdog.device.as_deref();
        device
            .map(|d| LinuxWatchdog::open(Path::new(d)))
            .transpose()
    }
}

impl WatchdogDevice for LinuxWatchdog {
    type Error = io::Error;

    fn pet(&mut self) -> io::Result<()> {
        self.file.write_all(b"\0")?;
        self.file.flush()
    }

    fn disarm(&mut self) -> io::Result<()> {
        self.file.write_all(b"V")?;
        self.file.flush()
    }
}

/// A watchdog for tests: counts pets, records disarming, fails when told to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FakeWatchdog {
    /// Successful pets so far.
    pub pets: u32,
    /// Whether `disarm` was called.
    pub disarmed: bool,
    /// The next `pet` fails (once).
    pub fail_next_pet: bool,
}

/// The error [`FakeWatchdog`] returns when told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeWatchdogError;

impl WatchdogDevice for FakeWatchdog {
    type Error = FakeWatchdogError;

    fn pet(&mut self) -> Result<(), FakeWatchdogError> {
        if std::mem::take(&mut self.fail_next_pet) {
            return Err(FakeWatchdogError);
        }
        self.pets += 1;
        Ok(())
    }

    fn disarm(&mut self) -> Result<(), FakeWatchdogError> {
        self.disarmed = true;
        Ok(())
    }
}

/// A fault LED write or a watchdog pet failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchdogError<PinE, DevE> {
    /// Driving the fault LED failed.
    #[error("fault LED: {0:?}")]
    FaultLed(PinE),
    /// Petting or disarming the hardware watchdog failed.
    #[error("hardware watchdog: {0:?}")]
    Device(DevE),
}

impl<PinE, DevE> From<LedError<PinE>> for WatchdogError<PinE, DevE> {
    fn from(e: LedError<PinE>) -> Self {
        match e {
            LedError::Pin(e) => WatchdogError::FaultLed(e),
        }
    }
}

/// What [`FrameWatchdog::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Frames are coming (or the display is frozen).
    Healthy,
    /// This poll found the stall: the fault LED was just lit.
    Stalled,
    /// Still stalled (found by an earlier poll).
    StillStalled,
    /// This poll found frames again after a stall: the fault LED went out.
    Recovered,
}

/// Watches frame completions, drives the fault LED, pets the hardware.
#[derive(Debug)]
pub struct FrameWatchdog<O, W> {
    fault_led: Option<Led<O>>,
    device: Option<W>,
    timeout_ms: u64,
    pet_interval_ms: u64,
    /// The last frame, or the start (first poll, or the end of a pause).
    last_frame_ms: Option<u64>,
    last_pet_ms: Option<u64>,
    paused: bool,
    stalled: bool,
    /// A fault reported from outside ([`FrameWatchdog::set_fault`]).
    fault: bool,
}

impl<O: OutputPin, W: WatchdogDevice> FrameWatchdog<O, W> {
    /// A watchdog with the profile's timeouts, an optional fault LED and an
    /// optional hardware device. The stall clock starts at the first poll.
    pub fn new(
        config: &WatchdogConfig,
        fault_led: Option<(O, &OutputLine)>,
        device: Option<W>,
    ) -> Self {
        FrameWatchdog {
            fault_led: fault_led.map(|(pin, line)| Led::new(pin, line)),
            device,
            timeout_ms: u64::from(config.frame_timeout_ms),
            pet_interval_ms: u64::from(config.pet_interval_ms),
            last_frame_ms: None,
            last_pet_ms: None,
            paused: false,
            stalled: false,
            fault: false,
        }
    }

    /// Whether the last poll found a stall.
    pub fn is_stalled(&self) -> bool {
        self.stalled
    }

    /// A frame finished at `now_ms`.
    pub fn frame_done(&mut self, now_ms: u64) {
        self.last_frame_ms = Some(now_ms);
    }

    /// Stops expecting frames (display frozen); petting goes on.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Expects frames again, counting from `now_ms`.
    pub fn resume(&mut self, now_ms: u64) {
        self.paused = false;
        self.last_frame_ms = Some(now_ms);
    }

    /// Checks for a stall at `now_ms`, drives the fault LED and pets the
    /// device when healthy and `pet_interval_ms` has passed since the last pet.
    pub fn poll(&mut self, now_ms: u64) -> Result<Health, WatchdogError<O::Error, W::Error>> {
        let last = *self.last_frame_ms.get_or_insert(now_ms);
        let quiet = now_ms.saturating_sub(last);
        let stalled = !self.paused && quiet > self.timeout_ms;
        let health = match (self.stalled, stalled) {
            (false, true) => {
                log::error!(
                    "watchdog: no frame finished for {quiet} ms (timeout {} ms): fault, \
                     hardware watchdog no longer petted",
                    self.timeout_ms
                );
                Health::Stalled
            }
            (true, true) => Health::StillStalled,
            (true, false) => {
                log::warn!("watchdog: frames again, fault cleared");
                Health::Recovered
            }
            (false, false) => Health::Healthy,
        };
        self.stalled = stalled;
        // A broken fault LED must not stop the petting: pet first, report after.
        let led = match &mut self.fault_led {
            Some(led) => led.set(stalled || self.fault),
            None => Ok(()),
        };
        let due = self
            .last_pet_ms
            .is_none_or(|t| now_ms.saturating_sub(t) >= self.pet_interval_ms);
        if let (false, true, Some(dev)) = (stalled, due, &mut self.device) {
            dev.pet().map_err(WatchdogError::Device)?;
            self.last_pet_ms = Some(now_ms);
        }
        led?;
        Ok(health)
    }

    /// Reports (or clears) a fault found elsewhere, such as a lost capture
    /// card: the fault LED stays lit while it is set. Petting is unaffected
    /// (a stall, which such a fault usually causes, stops it). Takes effect
    /// at the next poll.
    pub fn set_fault(&mut self, on: bool) {
        self.fault = on;
    }

    /// Whether a fault is shown: a stall or one set by [`FrameWatchdog::set_fault`].
    pub fn is_fault(&self) -> bool {
        self.stalled || self.fault
    }

    /// Lights the fault LED or puts it out now, whatever the state (lamp test);
    /// the next poll restores it.
    pub fn force_led(&mut self, on: bool) -> Result<(), WatchdogError<O::Error, W::Error>> {
        if let Some(led) = &mut self.fault_led {
            led.set(on)?;
        }
        Ok(())
    }

    /// Clean shutdown: fault LED out, hardware watchdog disarmed.
    pub fn shutdown(&mut self) -> Result<(), WatchdogError<O::Error, W::Error>> {
        if let Some(led) = &mut self.fault_led {
            led.set(false)?;
        }
        if let Some(dev) = &mut self.device {
            dev.disarm().map_err(WatchdogError::Device)?;
            log::info!("watchdog disarmed");
        }
        Ok(())
    }

    /// Gives the fault LED pin and the device back.
    pub fn release(self) -> (Option<O>, Option<W>) {
        (self.fault_led.map(Led::release), self.device)
    }
}
