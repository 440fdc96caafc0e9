//! The board's controls around `sammix run`: the freeze switch pauses
//! inference (the overlay keeps the last frame and mask), the status LED
//! shows the stream's state, and the frame watchdog pets the hardware
//! watchdog only while frames keep finishing.
//!
//! A thread polls the controls every [`POLL`]; the output side reports each
//! finished frame. Both go through one mutex: a poll and a frame report are
//! a few pin writes, no allocation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use embedded_hal::digital::{InputPin, OutputPin};
use sammix::board::{
    self, Controls, Health, LinuxWatchdog, Pins, Profile, SystemdNotify, WatchdogDevice, Watchdogs,
};
use sammix::frame::{Frame, Mask};
use sammix::pipeline::Outcome;
use sammix::stream::{FrameRecord, FrameSink};

/// How often the controls are serviced (button debounce, LED blink codes,
/// stall check, petting).
pub const POLL: Duration = Duration::from_millis(20);

/// The controls with their pin types erased, so that the GPIO backend and
/// the pin-less host build share one code path.
trait Panel: Send {
    fn poll(&mut self, now_ms: u64) -> Result<(bool, bool, Health), String>;
    fn frame_done(&mut self, now_ms: u64, present: Option<bool>);
    fn set_fault(&mut self, on: bool);
    fn shutdown(&mut self) -> Result<(), String>;
}

impl<I, O, W> Panel for Controls<I, O, W>
where
    I: InputPin + Send,
    O: OutputPin + Send,
    W: WatchdogDevice + Send,
{
    fn poll(&mut self, now_ms: u64) -> Result<(bool, bool, Health), String> {
        Controls::poll(self, now_ms)
            .map(|e| (e.freeze_toggled(), e.frozen, e.health))
            .map_err(|e| format!("{e:?}"))
    }

    fn frame_done(&mut self, now_ms: u64, present: Option<bool>) {
        self.on_frame_done(now_ms, present);
    }

    fn set_fault(&mut self, on: bool) {
        Controls::set_fault(self, on);
    }

    fn shutdown(&mut self) -> Result<(), String> {
        Controls::shutdown(self).map_err(|e| format!("{e:?}"))
    }
}

type Shared = Arc<Mutex<Box<dyn Panel>>>;

/// Running controls: the polling thread and what the stream shares with it.
pub struct BoardControls {
    panel: Shared,
    pause: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    start: Instant,
    /// What they drive, for the run's header line.
    pub description: String,
}

/// Whether to run the controls: `on`/`off`, or, for `None` (auto), when the
/// profile has pins or a watchdog device, `watchdog` names one, or systemd
/// watches the service (`systemd_watchdog`).
pub fn wanted(
    choice: Option<bool>,
    profile: &Profile,
    watchdog: Option<&Path>,
    systemd_watchdog: bool,
) -> bool {
    choice.unwrap_or(
        profile.gpio.is_some()
            || profile.watchdog.device.is_some()
            || watchdog.is_some()
            || systemd_watchdog,
    )
}

impl BoardControls {
    /// Opens the profile's pins (with the `linux-gpio` feature) and the
    /// watchdog device (`watchdog`, else the profile's), and starts polling.
    /// Opening the device arms it. `systemd` is petted with the device.
    pub fn start(
        profile: &'static Profile,
        watchdog: Option<PathBuf>,
        systemd: Option<SystemdNotify>,
    ) -> anyhow::Result<Self> {
        let start = Instant::now();
        let device_path = watchdog.or_else(|| {
            profile
                .watchdog
                .device
                .as_deref()
                .map(|d| PathBuf::from(d.to_string()))
        });
        let device = match &device_path {
            Some(p) => Some(
                LinuxWatchdog::open(p)
                    .with_context(|| format!("watchdog device {}", p.display()))?,
            ),
            None => None,
        };
        let pet_ms = u64::from(profile.watchdog.pet_interval_ms);
        let systemd_text = match systemd.as_ref().map(|s| (s, s.watchdog_period())) {
            Some((s, Some(period))) => {
                if u128::from(pet_ms) * 2 > period.as_millis() {
                    log::warn!(
                        "systemd expects WATCHDOG=1 every {} ms (WatchdogSec=) but board {} pets \
                         every {pet_ms} ms: raise WatchdogSec= to at least twice that",
                        period.as_millis(),
                        profile.name
                    );
                }
                format!(
                    ", systemd watchdog {} ms via {}",
                    period.as_millis(),
                    s.name()
                )
            }
            Some((s, None)) => format!(", systemd notify via {} (no WatchdogSec=)", s.name()),
            None => String::new(),
        };
        let watchdogs = Watchdogs { device, systemd }.some();
        let (panel, pins): (Box<dyn Panel>, &str) = open_panel(profile, watchdogs)?;
        let description = format!(
            "board {}: {pins}; watchdog {}{systemd_text} (frame timeout {} ms)",
            profile.name,
            device_path
                .as_deref()
                .map_or_else(|| "none".to_string(), |p| p.display().to_string()),
            profile.watchdog.frame_timeout_ms
        );
        let panel: Shared = Arc::new(Mutex::new(panel));
        let pause = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (panel, pause, stop) = (Arc::clone(&panel), Arc::clone(&pause), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("controls".into())
                .spawn(move || poll_loop(&panel, &pause, &stop, start))
                .context("starting the controls thread")?
        };
        Ok(BoardControls {
            panel,
            pause,
            stop,
            thread: Some(thread),
            start,
            description,
        })
    }

    /// The flag the stream pauses on while the display is frozen.
    pub fn pause_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.pause)
    }

    /// `sink` with every finished frame reported to the controls.
    pub fn wrap<'a>(&self, sink: &'a mut dyn FrameSink) -> ReportingSink<'a> {
        ReportingSink {
            inner: sink,
            panel: Arc::clone(&self.panel),
            start: self.start,
            showing_invalid: false,
        }
    }

    /// Stops polling. After a clean stream (`ok`), LEDs go out and the
    /// hardware watchdog is disarmed; after a failure the fault LED stays on
    /// and the watchdog stays armed, so that a board whose service does not
    /// come back is reset.
    pub fn finish(mut self, ok: bool) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut panel = self.panel.lock().unwrap_or_else(PoisonError::into_inner);
        if ok {
            panel
                .shutdown()
                .map_err(|e| anyhow::anyhow!("controls shutdown: {e}"))
        } else {
            panel.set_fault(true);
            let now = self.start.elapsed().as_millis() as u64;
            let _ = panel.poll(now);
            Ok(())
        }
    }
}

impl Drop for BoardControls {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(feature = "linux-gpio")]
fn open_panel(
    profile: &Profile,
    device: Option<Watchdogs>,
) -> anyhow::Result<(Box<dyn Panel>, &'static str)> {
    if profile.gpio.is_some() {
        let pins = board::linux::open_pins(profile)
            .with_context(|| format!("GPIO of board {}", profile.name))?;
        let now = 0;
        return Ok((
            Box::new(Controls::new(profile, pins, device, now)),
            "freeze switch and LEDs on GPIO",
        ));
    }
    Ok((no_pins(profile, device), "no GPIO in the profile"))
}

#[cfg(not(feature = "linux-gpio"))]
fn open_panel(
    profile: &Profile,
    device: Option<Watchdogs>,
) -> anyhow::Result<(Box<dyn Panel>, &'static str)> {
    let what = if profile.gpio.is_some() {
        log::warn!(
            "board {} has GPIO lines but this build has no GPIO backend (feature linux-gpio)",
            profile.name
        );
        "GPIO lines not driven (built without linux-gpio)"
    } else {
        "no GPIO in the profile"
    };
    Ok((no_pins(profile, device), what))
}

fn no_pins(profile: &Profile, device: Option<Watchdogs>) -> Box<dyn Panel> {
    let pins: Pins<board::NoPin, board::NoPin> = Pins {
        freeze: None,
        status_led: None,
        fault_led: None,
    };
    Box::new(Controls::new(profile, pins, device, 0))
}

fn poll_loop(panel: &Shared, pause: &AtomicBool, stop: &AtomicBool, start: Instant) {
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::Acquire) {
        let now = start.elapsed().as_millis() as u64;
        let polled = panel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .poll(now);
        match polled {
            Ok((toggled, frozen, _health)) => {
                pause.store(frozen, Ordering::Release);
                if toggled {
                    log::info!(
                        "freeze: {}",
                        if frozen {
                            "display held, inference paused"
                        } else {
                            "resumed"
                        }
                    );
                }
                last_error = None;
            }
            Err(e) => {
                // Logged once per distinct failure, not every 20 ms.
                if last_error.as_deref() != Some(e.as_str()) {
                    log::warn!("board controls: {e}");
                    last_error = Some(e);
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// A sink that reports each finished frame to the controls, then passes it on.
pub struct ReportingSink<'a> {
    inner: &'a mut dyn FrameSink,
    panel: Shared,
    start: Instant,
    /// The fault code is shown for an invalid frame.
    showing_invalid: bool,
}

impl FrameSink for ReportingSink<'_> {
    fn frame(
        &mut self,
        frame: &Frame,
        mask: &Mask,
        record: &FrameRecord,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let now = self.start.elapsed().as_millis() as u64;
        let invalid = record.result.outcome == Outcome::Invalid;
        let present = record.result.outcome == Outcome::Segmented;
        let mut panel = self.panel.lock().unwrap_or_else(PoisonError::into_inner);
        // an invalid frame (NaN or Inf from a graph) shows the fault code until a valid one
        if invalid != self.showing_invalid {
            panel.set_fault(invalid);
            self.showing_invalid = invalid;
        }
        panel.frame_done(now, (!invalid).then_some(present));
        drop(panel);
        self.inner.frame(frame, mask, record)
    }

    fn correction(
        &mut self,
        record: &sammix::stream::CorrectionRecord,
        corrected: Option<(&Frame, &Mask)>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.inner.correction(record, corrected)
    }

    fn finish(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A panel whose freeze switch is pressed at the 3rd poll and released
    /// at the 6th; its poll count is shared with the test.
    struct Fake(Arc<AtomicU32>);

    impl Panel for Fake {
        fn poll(&mut self, _now_ms: u64) -> Result<(bool, bool, Health), String> {
            let n = self.0.fetch_add(1, Ordering::AcqRel) + 1;
            Ok((n == 3 || n == 6, (3..6).contains(&n), Health::Healthy))
        }
        fn frame_done(&mut self, _now_ms: u64, _present: Option<bool>) {}
        fn set_fault(&mut self, _on: bool) {}
        fn shutdown(&mut self) -> Result<(), String> {
            Ok(())
        }
    }

    /// A panel that records the frame and fault reports it gets.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Panel for Recorder {
        fn poll(&mut self, _now_ms: u64) -> Result<(bool, bool, Health), String> {
            Ok((false, false, Health::Healthy))
        }
        fn frame_done(&mut self, _now_ms: u64, present: Option<bool>) {
            self.0.lock().unwrap().push(format!("frame {present:?}"));
        }
        fn set_fault(&mut self, on: bool) {
            self.0.lock().unwrap().push(format!("fault {on}"));
        }
        fn shutdown(&mut self) -> Result<(), String> {
            Ok(())
        }
    }

    struct NullSink;

    impl FrameSink for NullSink {
        fn frame(&mut self, _: &Frame, _: &Mask, _: &FrameRecord) -> SinkResult {
            Ok(())
        }
        fn finish(&mut self) -> SinkResult {
            Ok(())
        }
    }

    type SinkResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

    fn record(outcome: Outcome) -> FrameRecord {
        FrameRecord {
            captured_ms: 0.0,
            queue_ms: 0.0,
            done_ms: 0.0,
            latency_ms: 0.0,
            dropped: 0,
            result: sammix::pipeline::FrameResult {
                sequence: 0,
                presence: f32::NAN,
                outcome,
                box_input: None,
                box_frame: None,
                mask_token: None,
                iou_prediction: None,
                prompts: 0,
                mask_area: 0,
                embedding_reused: false,
                invalid_output: (outcome == Outcome::Invalid).then_some("classifier logits"),
                cam_peak: None,
                agreement: None,
                review: None,
                times: sammix::pipeline::StageTimes::default(),
            },
        }
    }

    #[test]
    fn an_invalid_frame_shows_the_fault_code_until_a_valid_one() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut inner = NullSink;
        let mut sink = ReportingSink {
            inner: &mut inner,
            panel: Arc::new(Mutex::new(Box::new(Recorder(Arc::clone(&calls))))),
            start: Instant::now(),
            showing_invalid: false,
        };
        let frame = Frame::new(2, 2, sammix::frame::PixelFormat::Gray8, vec![0; 4]).unwrap();
        let mask = Mask::from_bytes(2, 2, &[0; 4]).unwrap();
        for o in [
            Outcome::Segmented,
            Outcome::Invalid,
            Outcome::Invalid,
            Outcome::Absent,
        ] {
            sink.frame(&frame, &mask, &record(o)).unwrap();
        }
        assert_eq!(
            *calls.lock().unwrap(),
            [
                "frame Some(true)",
                "fault true",
                "frame None",
                "frame None",
                "fault false",
                "frame Some(false)"
            ]
        );
    }

    fn wait_for(polls: &AtomicU32, n: u32) {
        while polls.load(Ordering::Acquire) < n {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_poll_loop_mirrors_the_freeze_switch_into_the_pause_flag() {
        let polls = Arc::new(AtomicU32::new(0));
        let panel: Shared = Arc::new(Mutex::new(Box::new(Fake(Arc::clone(&polls)))));
        let (pause, stop) = (AtomicBool::new(false), AtomicBool::new(false));
        std::thread::scope(|s| {
            s.spawn(|| poll_loop(&panel, &pause, &stop, Instant::now()));
            // Poll n's result is stored before poll n + 1 begins.
            wait_for(&polls, 4);
            let frozen = pause.load(Ordering::Acquire);
            let at = polls.load(Ordering::Acquire);
            if at <= 5 {
                assert!(frozen, "not paused after the press (poll {at})");
            }
            wait_for(&polls, 7);
            assert!(
                !pause.load(Ordering::Acquire),
                "still paused after the release"
            );
            stop.store(true, Ordering::Release);
        });
    }
}
