use embedded_hal_mock::eh1::digital::{Mock as PinMock, Transaction as Tx};

use super::{io_error, pin, HIGH, LED_HIGH, LOW};
use crate::board::schema::Watchdog as Config;
use crate::board::watchdog::{
    FakeWatchdog, FakeWatchdogError, FrameWatchdog, Health, LinuxWatchdog, WatchdogDevice,
    WatchdogError,
};

const CONFIG: Config = Config {
    device: None,
    frame_timeout_ms: 2000,
    pet_interval_ms: 1000,
};

fn watchdog(tx: &[Tx]) -> FrameWatchdog<PinMock, FakeWatchdog> {
    FrameWatchdog::new(
        &CONFIG,
        Some((pin(tx), &LED_HIGH)),
        Some(FakeWatchdog::default()),
    )
}

fn finish(w: FrameWatchdog<PinMock, FakeWatchdog>) -> FakeWatchdog {
    let (led, dev) = w.release();
    led.unwrap().done();
    dev.unwrap()
}

#[test]
fn healthy_pipeline_pets_at_the_interval() {
    // The fault LED is put out once, at the first poll, and left alone.
    let mut w = watchdog(&[Tx::set(LOW)]);
    for t in (0..=3000).step_by(100) {
        w.frame_done(t);
        assert_eq!(w.poll(t).unwrap(), Health::Healthy);
    }
    // Pets at 0, 1000, 2000, 3000.
    assert_eq!(finish(w).pets, 4);
}

#[test]
fn stall_stops_petting_and_lights_the_fault_led_until_frames_return() {
    let mut w = watchdog(&[Tx::set(LOW), Tx::set(HIGH), Tx::set(LOW)]);
    let mut seen = Vec::new();
    for t in (0..=6000).step_by(100) {
        // Frames until 500 ms, none until 4000 ms, then frames again.
        if t <= 500 || t >= 4000 {
            w.frame_done(t);
        }
        let h = w.poll(t).unwrap();
        if h != Health::Healthy && seen.last().is_none_or(|(_, last)| *last != h) {
            seen.push((t, h));
        }
        if t == 2500 {
            assert!(!w.is_stalled(), "2000 ms quiet is still within the timeout");
        }
    }
    assert_eq!(
        seen,
        [
            (2600, Health::Stalled),
            (2700, Health::StillStalled),
            (4000, Health::Recovered)
        ]
    );
    // Healthy pets at 0, 1000, 2000; none while stalled; 4000, 5000, 6000.
    assert_eq!(finish(w).pets, 6);
}

#[test]
fn no_frame_at_all_is_a_stall_from_the_first_poll() {
    let mut w = watchdog(&[Tx::set(LOW), Tx::set(HIGH)]);
    assert_eq!(w.poll(10_000).unwrap(), Health::Healthy);
    assert_eq!(w.poll(12_001).unwrap(), Health::Stalled);
    assert_eq!(finish(w).pets, 1);
}

#[test]
fn paused_watchdog_expects_no_frames_but_keeps_petting() {
    let mut w = watchdog(&[Tx::set(LOW)]);
    w.frame_done(0);
    w.pause();
    for t in (0..=10_000).step_by(500) {
        assert_eq!(w.poll(t).unwrap(), Health::Healthy);
    }
    // Resumed at 10 s: the stall clock starts over.
    w.resume(10_000);
    assert_eq!(w.poll(11_900).unwrap(), Health::Healthy);
    assert_eq!(finish(w).pets, 12);
}

#[test]
fn external_fault_lights_the_led_without_stopping_the_pets() {
    let mut w = watchdog(&[Tx::set(LOW), Tx::set(HIGH), Tx::set(LOW)]);
    w.frame_done(0);
    w.poll(0).unwrap();
    w.set_fault(true);
    w.frame_done(1000);
    assert_eq!(w.poll(1000).unwrap(), Health::Healthy);
    assert!(w.is_fault());
    w.set_fault(false);
    w.poll(1100).unwrap();
    assert_eq!(finish(w).pets, 2);
}

#[test]
fn device_error_is_typed() {
    let dev = FakeWatchdog {
        fail_next_pet: true,
        ..FakeWatchdog::default()
    };
    let mut w: FrameWatchdog<PinMock, FakeWatchdog> = FrameWatchdog::new(&CONFIG, None, Some(dev));
    assert_eq!(w.poll(0), Err(WatchdogError::Device(FakeWatchdogError)));
    // The failed pet did not count: the next poll pets.
    assert_eq!(w.poll(1), Ok(Health::Healthy));
    assert_eq!(w.release().1.unwrap().pets, 1);
}

#[test]
fn broken_fault_led_does_not_stop_the_petting() {
    let mut w = watchdog(&[Tx::set(LOW).with_error(io_error()), Tx::set(LOW)]);
    assert_eq!(w.poll(0), Err(WatchdogError::FaultLed(io_error())));
    assert_eq!(w.poll(100), Ok(Health::Healthy));
    assert_eq!(finish(w).pets, 1);
}

#[test]
fn shutdown_puts_the_led_out_and_disarms() {
    let mut w = watchdog(&[Tx::set(LOW)]);
    w.shutdown().unwrap();
    let dev = finish(w);
    assert!(dev.disarmed);
    assert_eq!(dev.pets, 0);
}

#[test]
fn linux_watchdog_pets_with_a_byte_and_disarms_with_v() {
    let dir = std::env::temp_dir().join(format!("sammix-wd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("watchdog");
    std::fs::write(&path, b"").unwrap();
    let mut dev = LinuxWatchdog::open(&path).unwrap();
    dev.pet().unwrap();
    dev.pet().unwrap();
    dev.disarm().unwrap();
    drop(dev);
    assert_eq!(std::fs::read(&path).unwrap(), b"\0\0V");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(LinuxWatchdog::open(&dir.join("missing")).is_err());
}

#[test]
fn a_profile_without_a_watchdog_device_opens_none() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/board/host.toml");
    let src = std::fs::read_to_string(path).unwrap();
    let host = crate::board::Profile::parse("board/host.toml", &src).unwrap();
    assert!(LinuxWatchdog::open_for(&host).unwrap().is_none());
}
