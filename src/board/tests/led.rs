use embedded_hal_mock::eh1::digital::Transaction as Tx;

use super::{io_error, pin, HIGH, LED_HIGH, LED_LOW, LOW};
use crate::board::led::{pattern, Led, LedError, LedState, StatusLed};

/// Ticks every 50 ms over `[from, to)`.
fn ticks(led: &mut StatusLed<embedded_hal_mock::eh1::digital::Mock>, from: u64, to: u64) {
    for t in (from..to).step_by(50) {
        led.tick(t).unwrap();
    }
}

#[test]
fn starting_flickers_at_100_ms() {
    let tx = [
        Tx::set(HIGH), // 0
        Tx::set(LOW),  // 100
        Tx::set(HIGH), // 200
        Tx::set(LOW),  // 300
    ];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    assert_eq!(led.state(), LedState::Starting);
    ticks(&mut led, 0, 400);
    led.release().done();
}

#[test]
fn streaming_blinks_evenly_and_writes_only_on_edges() {
    let tx = [Tx::set(HIGH), Tx::set(LOW), Tx::set(HIGH), Tx::set(LOW)];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    led.set_state(LedState::Streaming, 0);
    // 40 ticks, four edges: 0 on, 500 off, 1000 on, 1500 off.
    ticks(&mut led, 0, 2000);
    led.release().done();
}

#[test]
fn target_absent_blips_every_2_s() {
    let tx = [Tx::set(HIGH), Tx::set(LOW), Tx::set(HIGH), Tx::set(LOW)];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    led.set_state(LedState::TargetAbsent, 1000);
    // 1000 on, 1100 off, 3000 on, 3100 off.
    ticks(&mut led, 1000, 3500);
    led.release().done();
}

#[test]
fn target_present_is_steady() {
    let tx = [Tx::set(HIGH)];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    led.set_state(LedState::TargetPresent, 0);
    ticks(&mut led, 0, 5000);
    led.release().done();
}

#[test]
fn frozen_double_blinks() {
    let tx = [
        Tx::set(HIGH), // 0
        Tx::set(LOW),  // 100
        Tx::set(HIGH), // 200
        Tx::set(LOW),  // 300
        Tx::set(HIGH), // 1000
    ];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    led.set_state(LedState::Frozen, 0);
    ticks(&mut led, 0, 1050);
    led.release().done();
}

#[test]
fn fault_triple_blinks_then_pauses() {
    let mut tx = Vec::new();
    for _ in 0..3 {
        tx.push(Tx::set(HIGH));
        tx.push(Tx::set(LOW));
    }
    tx.push(Tx::set(HIGH)); // 2000: the next round
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    led.set_state(LedState::Fault, 0);
    for t in [0, 150, 300, 450, 600, 750, 1000, 1500, 1999, 2000] {
        led.tick(t).unwrap();
    }
    led.release().done();
}

#[test]
fn every_pattern_is_well_formed_and_distinct() {
    let states = [
        LedState::Starting,
        LedState::Streaming,
        LedState::TargetAbsent,
        LedState::TargetPresent,
        LedState::Frozen,
        LedState::Fault,
    ];
    for (i, a) in states.iter().enumerate() {
        let p = pattern(*a);
        assert!(!p.is_empty() && p.iter().all(|s| s.ms > 0), "{a:?}");
        assert!(
            p[0].on,
            "{a:?} starts dark: a state change would not show at once"
        );
        for b in &states[i + 1..] {
            assert_ne!(p, pattern(*b), "{a:?} and {b:?} look the same");
        }
    }
}

#[test]
fn active_low_led_is_driven_low_to_light() {
    let tx = [Tx::set(LOW), Tx::set(HIGH)];
    let mut led = StatusLed::new(pin(&tx), &LED_LOW, 0);
    led.set_state(LedState::Streaming, 0);
    ticks(&mut led, 0, 1000);
    led.release().done();
}

#[test]
fn a_new_state_restarts_its_pattern() {
    let tx = [
        Tx::set(HIGH), // 0: streaming, on
        Tx::set(LOW),  // 500: off
        // 700: target absent starts lit (already off: one write)
        Tx::set(HIGH),
        Tx::set(LOW), // 800
    ];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    led.set_state(LedState::Streaming, 0);
    ticks(&mut led, 0, 700);
    led.set_state(LedState::TargetAbsent, 700);
    // The same state again changes nothing.
    led.set_state(LedState::TargetAbsent, 750);
    ticks(&mut led, 700, 1500);
    led.release().done();
}

#[test]
fn a_late_tick_skips_to_the_present_step() {
    let tx = [Tx::set(HIGH), Tx::set(LOW)];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    led.set_state(LedState::Streaming, 0);
    led.tick(0).unwrap();
    // 10.7 s later: 10 700 % 1000 = 700, in the dark half.
    led.tick(10_700).unwrap();
    assert!(!led.lit_at(10_700) && led.lit_at(11_000));
    led.release().done();
}

#[test]
fn pin_error_is_typed_and_the_write_is_retried() {
    let tx = [Tx::set(HIGH).with_error(io_error()), Tx::set(HIGH)];
    let mut led = StatusLed::new(pin(&tx), &LED_HIGH, 0);
    assert_eq!(led.tick(0), Err(LedError::Pin(io_error())));
    assert_eq!(led.tick(10), Ok(()));
    led.release().done();
}

#[test]
fn plain_led_writes_only_changes() {
    let tx = [Tx::set(HIGH), Tx::set(LOW)];
    let mut led = Led::new(pin(&tx), &LED_HIGH);
    assert_eq!(led.is_lit(), None);
    led.set(true).unwrap();
    led.set(true).unwrap();
    led.set(false).unwrap();
    assert_eq!(led.is_lit(), Some(false));
    led.release().done();
}
