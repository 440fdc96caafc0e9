//! Unit tests of the controls with `embedded-hal-mock` transaction lists:
//! each test states every pin read and write it expects, in order.

mod controls;
mod freeze;
mod led;
mod watchdog;

use std::io::ErrorKind;

use embedded_hal_mock::eh1::digital::{Mock as PinMock, State, Transaction as Tx};
use embedded_hal_mock::eh1::MockError;

use super::schema::{InputLine, Level, OutputLine};

pub(super) const LOW: State = State::Low;
pub(super) const HIGH: State = State::High;

pub(super) fn io_error() -> MockError {
    MockError::Io(ErrorKind::Other)
}

pub(super) fn pin(tx: &[Tx]) -> PinMock {
    PinMock::new(tx)
}

/// A button pulling its line low when pressed, debounced over 30 ms.
pub(super) const BUTTON: InputLine = InputLine {
    line: 17,
    active: Level::Low,
    debounce_ms: 30,
};

pub(super) const LED_HIGH: OutputLine = OutputLine {
    line: 27,
    active: Level::High,
};

pub(super) const LED_LOW: OutputLine = OutputLine {
    line: 22,
    active: Level::Low,
};
