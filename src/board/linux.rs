//! The pins of a profile on Linux's GPIO character device (feature
//! `linux-gpio`, through `linux-embedded-hal`).
//!
//! Lines are requested plainly (no `ACTIVE_LOW` flag): polarity is handled by
//! the controls from the profile, in one place. LEDs start out dark. The
//! character device (v1 ABI) cannot set a pull-up: wire one, or set it with
//! the board's own means (device tree, `config.txt` on a Raspberry Pi).

use std::path::PathBuf;

use linux_embedded_hal::gpio_cdev::{self, Chip, LineRequestFlags};
use linux_embedded_hal::CdevPin;

use super::controls::Pins;
use super::schema::{Level, OutputLine, Profile};

/// Opening the GPIO chip or requesting a line failed.
#[derive(Debug, thiserror::Error)]
pub enum LinuxGpioError {
    /// The profile has no `[gpio]`.
    #[error("board {0} has no [gpio] in its profile")]
    NoGpio(String),
    /// No GPIO chip has this label.
    #[error("no GPIO chip is labelled {0:?} (see `gpiodetect`)")]
    NoChipLabel(String),
    /// Opening a chip failed.
    #[error("GPIO chip {chip}: {source}")]
    Chip {
        /// The chip's path or label.
        chip: String,
        /// The error.
        #[source]
        source: gpio_cdev::Error,
    },
    /// Requesting a line failed (in use, no such line, no permission).
    #[error("GPIO chip {chip}, line {line} ({role}): {source}")]
    Line {
        /// The chip's path or label.
        chip: String,
        /// The line offset.
        line: u32,
        /// What the line is for.
        role: &'static str,
        /// The error.
        #[source]
        source: gpio_cdev::Error,
    },
}

/// Opens `chip`: a `/dev/gpiochipN` path, or a chip label looked up among
/// all chips.
pub fn open_chip(chip: &str) -> Result<Chip, LinuxGpioError> {
    let err = |source| LinuxGpioError::Chip {
        chip: chip.to_string(),
        source,
    };
    if chip.starts_with('/') {
        return Chip::new(PathBuf::from(chip)).map_err(err);
    }
    for c in gpio_cdev::chips().map_err(err)? {
        let c = c.map_err(err)?;
        if c.label() == chip {
            log::info!("GPIO chip {chip:?} is {}", c.path().display());
            return Ok(c);
        }
    }
    Err(LinuxGpioError::NoChipLabel(chip.to_string()))
}

/// Requests the freeze button as an input and both LEDs as dark outputs.
pub fn open_pins(profile: &Profile) -> Result<Pins<CdevPin, CdevPin>, LinuxGpioError> {
    let g = profile
        .gpio
        .as_ref()
        .ok_or_else(|| LinuxGpioError::NoGpio(profile.name.to_string()))?;
    let mut chip = open_chip(&g.chip)?;
    let mut request = |line: u32, role: &'static str, flags, value| {
        let err = |source| LinuxGpioError::Line {
            chip: g.chip.to_string(),
            line,
            role,
            source,
        };
        let handle = chip
            .get_line(line)
            .map_err(err)?
            .request(flags, value, &format!("sammix-{role}"))
            .map_err(err)?;
        CdevPin::new(handle).map_err(err)
    };
    let dark = |l: &OutputLine| u8::from(l.active == Level::Low);
    let freeze = request(g.freeze.line, "freeze", LineRequestFlags::INPUT, 0)?;
    let status = request(
        g.status_led.line,
        "status-led",
        LineRequestFlags::OUTPUT,
        dark(&g.status_led),
    )?;
    let fault = request(
        g.fault_led.line,
        "fault-led",
        LineRequestFlags::OUTPUT,
        dark(&g.fault_led),
    )?;
    Ok(Pins {
        freeze: Some(freeze),
        status_led: Some(status),
        fault_led: Some(fault),
    })
}
