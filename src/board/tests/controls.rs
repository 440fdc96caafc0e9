use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as DelayTx};
use embedded_hal_mock::eh1::digital::{Mock as PinMock, Transaction as Tx};

use super::{io_error, pin, HIGH, LOW};
use crate::board::schema::Profile;
use crate::board::{
    profile, ControlEvents, Controls, ControlsError, FakeWatchdog, FreezeEvent, Health, LedState,
    NoPin, Pins,
};

/// A profile with GPIO: rpi5's (button active low, LEDs active high,
/// 30 ms debounce, 2 s frame timeout, pet every second).
fn rpi5() -> Profile {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/board/rpi5.toml");
    let src = std::fs::read_to_string(path).unwrap();
    Profile::parse("board/rpi5.toml", &src).unwrap()
}

type Mocked = Controls<PinMock, PinMock, FakeWatchdog>;

fn controls(button: &[Tx], status: &[Tx], fault: &[Tx]) -> Mocked {
    let pins = Pins {
        freeze: Some(pin(button)),
        status_led: Some(pin(status)),
        fault_led: Some(pin(fault)),
    };
    Controls::new(&rpi5(), pins, Some(FakeWatchdog::default()), 0)
}

fn finish(c: Mocked) -> FakeWatchdog {
    let (pins, dev) = c.release();
    for p in [pins.freeze, pins.status_led, pins.fault_led] {
        p.unwrap().done();
    }
    dev.unwrap()
}

#[test]
fn freeze_press_holds_the_display_and_pauses_the_watchdog() {
    // Button: released, then pressed from 100 ms on (debounced at 130 ms).
    let mut button: Vec<Tx> = (0..10).map(|_| Tx::get(HIGH)).collect();
    button.extend((0..290).map(|_| Tx::get(LOW)));
    // Status LED: steady on (target present), then the frozen double blink.
    let status = [
        Tx::set(HIGH), // 0: starting (lit), then target present (lit)
        Tx::set(LOW),  // 230: frozen, 100 ms after its start at 130
        Tx::set(HIGH), // 330
        Tx::set(LOW),  // 430
        Tx::set(HIGH), // 1130
        Tx::set(LOW),  // 1230
        Tx::set(HIGH), // 1330
        Tx::set(LOW),  // 1430
        Tx::set(HIGH), // 2130
        Tx::set(LOW),  // 2230
        Tx::set(HIGH), // 2330
        Tx::set(LOW),  // 2430
    ];
    let mut c = controls(&button, &status, &[Tx::set(LOW)]);
    let mut events: Vec<(u64, ControlEvents)> = Vec::new();
    for i in 0..300u64 {
        let t = i * 10;
        // Frames until the freeze; none after (inference paused).
        if (1..=12).contains(&i) {
            c.on_frame_done(t, Some(true));
        }
        let ev = c.poll(t).unwrap();
        if ev.freeze_toggled() {
            events.push((t, ev));
        }
    }
    assert_eq!(events.len(), 1);
    let (t, ev) = events[0];
    assert_eq!(t, 130);
    assert_eq!(ev.freeze, Some(FreezeEvent::Frozen));
    assert!(ev.frozen && c.is_frozen());
    assert_eq!(ev.status, LedState::Frozen);
    // 2.9 s without a frame while frozen is no stall: pets at 0, 1000, 2000.
    assert_eq!(ev.health, Health::Healthy);
    assert_eq!(finish(c).pets, 3);
}

#[test]
fn status_follows_the_pipeline() {
    let button: Vec<Tx> = (0..7).map(|_| Tx::get(HIGH)).collect();
    let status = [
        Tx::set(HIGH), // 0: starting, lit
        Tx::set(LOW),  // 300: target absent since 100, dark after its 100 ms blip
        Tx::set(HIGH), // 2500: target present
        // 3000: streaming starts lit; 5001: fault starts lit: no writes
        Tx::set(LOW), // 5151: fault, dark after its first 150 ms
    ];
    let fault = [Tx::set(LOW), Tx::set(HIGH)];
    let mut c = controls(&button, &status, &fault);
    let mut states = Vec::new();
    let mut poll = |c: &mut Mocked, t| {
        let ev = c.poll(t).unwrap();
        states.push(ev.status);
        ev
    };
    poll(&mut c, 0);
    c.on_frame_done(100, Some(false));
    poll(&mut c, 100);
    poll(&mut c, 300);
    c.on_frame_done(2500, Some(true));
    poll(&mut c, 2500);
    c.on_frame_done(3000, None);
    poll(&mut c, 3000);
    let ev = poll(&mut c, 5001); // 2001 ms without a frame: stall
    assert_eq!(ev.health, Health::Stalled);
    poll(&mut c, 5151);
    assert_eq!(
        states,
        [
            LedState::Starting,
            LedState::TargetAbsent,
            LedState::TargetAbsent,
            LedState::TargetPresent,
            LedState::Streaming,
            LedState::Fault,
            LedState::Fault
        ]
    );
    assert_eq!(c.frames(), 3);
    // Pets at 0 and 2500 (no poll in between); none once stalled.
    assert_eq!(finish(c).pets, 2);
}

#[test]
fn lamp_test_lights_both_leds_for_the_delay() {
    let mut c = controls(
        &[],
        &[Tx::set(HIGH), Tx::set(LOW)],
        &[Tx::set(HIGH), Tx::set(LOW)],
    );
    let mut delay = CheckedDelay::new(&[DelayTx::delay_ms(500)]);
    c.lamp_test(&mut delay, 500).unwrap();
    delay.done();
    finish(c);
}

#[test]
fn shutdown_puts_leds_out_and_disarms() {
    let mut c = controls(
        &[Tx::get(HIGH)],
        &[Tx::set(HIGH), Tx::set(LOW)],
        &[Tx::set(LOW)],
    );
    c.poll(0).unwrap();
    c.shutdown().unwrap();
    let dev = finish(c);
    assert!(dev.disarmed && dev.pets == 1);
}

#[test]
fn a_failing_button_still_lets_the_leds_and_watchdog_run() {
    let button = [Tx::get(HIGH).with_error(io_error())];
    let mut c = controls(&button, &[Tx::set(HIGH)], &[Tx::set(LOW)]);
    assert_eq!(c.poll(0), Err(ControlsError::Freeze(io_error())));
    assert_eq!(finish(c).pets, 1);
}

#[test]
fn led_pin_errors_name_the_led() {
    let status = [Tx::set(HIGH).with_error(io_error())];
    let mut c = controls(&[Tx::get(HIGH)], &status, &[Tx::set(LOW)]);
    assert_eq!(c.poll(0), Err(ControlsError::StatusLed(io_error())));
    finish(c);

    let fault = [Tx::set(LOW).with_error(io_error())];
    let mut c = controls(&[Tx::get(HIGH)], &[Tx::set(HIGH)], &fault);
    let err = c.poll(0).unwrap_err();
    assert_eq!(err, ControlsError::FaultLed(io_error()));
    assert!(err.to_string().contains("fault LED"), "{err}");
    assert_eq!(finish(c).pets, 1);
}

#[test]
fn no_pins_on_the_host_profile() {
    let pins: Pins<NoPin, NoPin> = Pins::default();
    let mut c = Controls::new(profile::current(), pins, Some(FakeWatchdog::default()), 0);
    c.on_frame_done(10, Some(true));
    let ev = c.poll(20).unwrap();
    assert_eq!(ev.status, LedState::TargetPresent);
    assert!(!ev.frozen && !ev.freeze_toggled());
    c.set_fault(true);
    assert_eq!(c.poll(30).unwrap().status, LedState::Fault);
    let (_, dev) = c.release();
    assert_eq!(dev.unwrap().pets, 1);
}

#[test]
fn compiled_profile_sets_the_cfg() {
    // build.rs emits `sammix_board = "NAME"`, declared with check-cfg.
    let name = profile::current().name.as_ref();
    assert_eq!(cfg!(sammix_board = "host"), name == "host");
    assert_eq!(cfg!(sammix_board = "rpi5"), name == "rpi5");
}
