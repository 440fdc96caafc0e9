use embedded_hal_mock::eh1::digital::Transaction as Tx;

use super::{io_error, pin, BUTTON, HIGH, LOW};
use crate::board::freeze::{FreezeError, FreezeEvent, FreezeSwitch};
use crate::board::schema::{InputLine, Level};

/// Polls once per reading, every 10 ms from t = 0; returns the events.
fn run(
    line: &InputLine,
    readings: &[embedded_hal_mock::eh1::digital::State],
) -> Vec<Option<FreezeEvent>> {
    let tx: Vec<Tx> = readings.iter().map(|s| Tx::get(*s)).collect();
    let mut sw = FreezeSwitch::new(pin(&tx), line);
    let events = (0..readings.len())
        .map(|i| sw.poll(i as u64 * 10).unwrap())
        .collect();
    sw.release().done();
    events
}

#[test]
fn press_held_past_debounce_freezes() {
    // Released at start, pressed from t = 10 ms: held 30 ms at t = 40.
    let ev = run(&BUTTON, &[HIGH, LOW, LOW, LOW, LOW, LOW]);
    assert_eq!(
        ev,
        [None, None, None, None, Some(FreezeEvent::Frozen), None]
    );
}

#[test]
fn bounces_shorter_than_debounce_are_ignored() {
    // Contact bounce: low/high every 10-20 ms never holds 30 ms.
    let ev = run(&BUTTON, &[HIGH, LOW, HIGH, LOW, LOW, HIGH, LOW, HIGH, HIGH]);
    assert!(ev.iter().all(Option::is_none), "{ev:?}");
}

#[test]
fn bounce_restarts_the_debounce_clock() {
    // Pressed at 10, bounces at 20, pressed again from 30: counts at 60, not 40.
    let ev = run(&BUTTON, &[HIGH, LOW, HIGH, LOW, LOW, LOW, LOW]);
    assert_eq!(ev.iter().position(Option::is_some), Some(6));
    assert_eq!(ev[6], Some(FreezeEvent::Frozen));
}

#[test]
fn second_press_resumes_and_release_does_nothing() {
    let mut r = vec![HIGH];
    r.extend([LOW; 5]); // press
    r.extend([HIGH; 5]); // release
    r.extend([LOW; 5]); // press again
    r.extend([HIGH; 5]); // release
    let ev = run(&BUTTON, &r);
    let got: Vec<(usize, FreezeEvent)> = ev
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.map(|e| (i, e)))
        .collect();
    assert_eq!(got, [(4, FreezeEvent::Frozen), (14, FreezeEvent::Resumed)]);
}

#[test]
fn button_held_at_start_does_not_freeze() {
    // Held down from the first poll, released, then pressed.
    let mut r = vec![LOW; 6];
    r.extend([HIGH; 5]);
    r.extend([LOW; 5]);
    let ev = run(&BUTTON, &r);
    let first = ev.iter().position(Option::is_some);
    assert_eq!(first, Some(14));
    assert_eq!(ev[14], Some(FreezeEvent::Frozen));
}

#[test]
fn active_high_button() {
    let line = InputLine {
        active: Level::High,
        ..BUTTON
    };
    let ev = run(&line, &[LOW, HIGH, HIGH, HIGH, HIGH]);
    assert_eq!(ev[4], Some(FreezeEvent::Frozen));
}

#[test]
fn state_is_reported() {
    let tx: Vec<Tx> = [HIGH, LOW, LOW, LOW, LOW]
        .iter()
        .map(|s| Tx::get(*s))
        .collect();
    let mut sw = FreezeSwitch::new(pin(&tx), &BUTTON);
    assert!(!sw.is_frozen() && !sw.is_pressed());
    for t in 0..5 {
        sw.poll(t * 10).unwrap();
    }
    assert!(sw.is_frozen() && sw.is_pressed());
    sw.release().done();
}

#[test]
fn pin_error_is_a_typed_error() {
    let tx = [
        Tx::get(HIGH),
        Tx::get(LOW).with_error(io_error()),
        Tx::get(LOW),
    ];
    let mut sw = FreezeSwitch::new(pin(&tx), &BUTTON);
    assert_eq!(sw.poll(0), Ok(None));
    assert_eq!(sw.poll(10), Err(FreezeError::Pin(io_error())));
    // The switch goes on after a failed read.
    assert_eq!(sw.poll(20), Ok(None));
    let msg = FreezeError::Pin(io_error()).to_string();
    assert!(msg.contains("freeze switch"), "{msg}");
    sw.release().done();
}
