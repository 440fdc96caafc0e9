//! The frame watchdog against the kernel's `softdog` driver, inside the VM of
//! `scripts/test-watchdog-vm.sh` (softdog loaded with `soft_margin=3
//! soft_noboot=1`: when nobody pets `/dev/watchdog` for 3 s it logs
//! "softdog: Triggered - Reboot ignored" instead of resetting the VM).
//!
//! The board's [`Controls`] own the real device ([`LinuxWatchdog`]) and are
//! polled every 20 ms, as `sammix run` polls them, while frames finish:
//!
//! 1. healthy: a frame every 40 ms for 8 s: the driver must never fire;
//! 2. stalled: no frame; the frame timeout (1 s) finds the stall, petting
//!    stops, and the driver must fire within the margin after that;
//! 3. recovered: frames again: the stall clears, petting resumes, and the
//!    driver must stay quiet for 6 s;
//! 4. clean shutdown: the device is disarmed (magic close).
//!
//! Exit code 0 when every check passed, 1 otherwise.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use sammix::board::{self, Controls, Health, LinuxWatchdog, Pins};

const TRIGGER: &str = "softdog: Triggered";
const POLL: Duration = Duration::from_millis(20);

fn main() {
    match run() {
        Ok(()) => println!("watchdog_check: all checks passed"),
        Err(e) => {
            eprintln!("watchdog_check: FAIL: {e}");
            std::process::exit(1);
        }
    }
}

/// Kernel log lines from now on, read by a thread (reads of /dev/kmsg block).
fn kernel_log() -> Result<Receiver<String>, String> {
    let mut kmsg = File::open("/dev/kmsg").map_err(|e| format!("/dev/kmsg: {e}"))?;
    kmsg.seek(SeekFrom::End(0))
        .map_err(|e| format!("/dev/kmsg: seek to the end: {e}"))?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(kmsg);
        let mut line = String::new();
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if tx.send(line.trim_end().to_string()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(rx)
}

fn fired(log: &Receiver<String>) -> bool {
    let mut seen = false;
    while let Ok(line) = log.try_recv() {
        if line.contains(TRIGGER) {
            println!("  kernel: {line}");
            seen = true;
        }
    }
    seen
}

fn run() -> Result<(), String> {
    let mut profile = board::profile::current().clone();
    profile.watchdog.device = Some("/dev/watchdog".into());
    profile.watchdog.frame_timeout_ms = 1000;
    profile.watchdog.pet_interval_ms = 500;
    let log = kernel_log()?;
    let device = LinuxWatchdog::open(Path::new("/dev/watchdog"))
        .map_err(|e| format!("/dev/watchdog: {e}"))?;
    let start = Instant::now();
    let now = || start.elapsed().as_millis() as u64;
    let pins: Pins<board::NoPin, board::NoPin> = Pins {
        freeze: None,
        status_led: None,
        fault_led: None,
    };
    let mut controls = Controls::new(&profile, pins, Some(device), now());

    // Polls for `span`, finishing a frame every 40 ms when `frames`; returns
    // the health seen first other than Healthy and when (ms into the span).
    let mut phase = |span: Duration, frames: bool| -> Result<Option<(Health, u64)>, String> {
        let t0 = Instant::now();
        let mut next_frame = t0;
        let mut first = None;
        while t0.elapsed() < span {
            if frames && Instant::now() >= next_frame {
                controls.on_frame_done(now(), Some(true));
                next_frame += Duration::from_millis(40);
            }
            let events = controls
                .poll(now())
                .map_err(|e| format!("controls: {e:?}"))?;
            if events.health != Health::Healthy && first.is_none() {
                first = Some((events.health, t0.elapsed().as_millis() as u64));
            }
            thread::sleep(POLL);
        }
        Ok(first)
    };

    println!("1. healthy streaming, 8 s");
    if let Some((h, at)) = phase(Duration::from_secs(8), true)? {
        return Err(format!("healthy stream reported {h:?} after {at} ms"));
    }
    if fired(&log) {
        return Err("softdog fired while frames kept coming".into());
    }
    println!("   ok: fed, no trigger");

    println!("2. stalled pipeline, up to 8 s");
    let stall = phase(Duration::from_secs(8), false)?;
    match stall {
        Some((Health::Stalled, at)) if (900..=1600).contains(&at) => {
            println!("   stall found after {at} ms")
        }
        other => return Err(format!("expected a stall after ~1 s, got {other:?}")),
    }
    if !fired(&log) {
        return Err("softdog did not fire after petting stopped".into());
    }
    println!("   ok: petting stopped, softdog fired");

    println!("3. frames again, 6 s");
    match phase(Duration::from_secs(6), true)? {
        Some((Health::Recovered, _)) => {}
        other => return Err(format!("expected Recovered, got {other:?}")),
    }
    if fired(&log) {
        return Err("softdog fired again after the pipeline recovered".into());
    }
    println!("   ok: recovered, fed again, no trigger");

    println!("4. clean shutdown");
    controls
        .shutdown()
        .map_err(|e| format!("shutdown: {e:?}"))?;
    drop(controls); // closing after the magic 'V' stops the driver
    thread::sleep(Duration::from_secs(4));
    if fired(&log) {
        return Err("softdog fired after the device was disarmed".into());
    }
    println!("   ok: disarmed, quiet");
    Ok(())
}
