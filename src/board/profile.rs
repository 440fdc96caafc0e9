//! The board profile compiled into this binary (`SAMMIX_BOARD` at build time,
//! default `host`), and how it is shown by `sammix info --board`.

use std::borrow::Cow;
use std::fmt;

use serde_json::{json, Value};

// What the generated profile names; a profile without GPIO leaves some unused.
#[allow(unused_imports)]
use super::schema::{
    Backend, BackendChoice, Capture, Cpu, CpuLevel, Gpio, InputLine, Level, OutputLine, Profile,
    Sink, SinkKind, Threads, Watchdog,
};

include!(concat!(env!("OUT_DIR"), "/board.rs"));

/// The profile this binary was built for.
pub fn current() -> &'static Profile {
    &PROFILE
}

fn cores(c: &[u16]) -> String {
    c.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

impl Profile {
    /// The profile as JSON (the shape of the TOML file, plus nothing).
    pub fn to_json(&self) -> Value {
        let line_in = |l: &InputLine| json!({"line": l.line, "active": l.active.as_str(), "debounce_ms": l.debounce_ms});
        let line_out = |l: &OutputLine| json!({"line": l.line, "active": l.active.as_str()});
        let gpio = self.gpio.as_ref().map(|g| {
            json!({
                "chip": g.chip,
                "freeze": line_in(&g.freeze),
                "status_led": line_out(&g.status_led),
                "fault_led": line_out(&g.fault_led),
            })
        });
        json!({
            "board": {"name": self.name, "description": self.description},
            "cpu": {
                "target_cpu": self.cpu.target_cpu,
                "target_features": self.cpu.target_features,
                "level": self.cpu.level.as_str(),
                "cores": self.cpu.cores,
            },
            "threads": {
                "capture": self.threads.capture,
                "inference": self.threads.inference,
                "output": self.threads.output,
            },
            "capture": {
                "device": self.capture.device,
                "format": self.capture.format_str(),
                "width": self.capture.width,
                "height": self.capture.height,
                "fps": self.capture.fps,
            },
            "gpio": gpio,
            "watchdog": {
                "device": self.watchdog.device,
                "frame_timeout_ms": self.watchdog.frame_timeout_ms,
                "pet_interval_ms": self.watchdog.pet_interval_ms,
            },
            "bundle": {"path": self.bundle},
            "output": {"sinks": self.sinks.iter().map(|s| format!("{}:{}", s.kind.as_str(), s.path)).collect::<Vec<_>>()},
            "security": {"trusted_keys": self.trusted_keys},
            "backend": {"encoder": self.backend.encoder.as_str(), "required": self.backend.required},
        })
    }
}

/// Several lines, one per table, for people.
impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cpu;
        let t = &self.threads;
        let cap = &self.capture;
        writeln!(f, "board {}: {}", self.name, self.description)?;
        let features = if c.target_features.is_empty() {
            String::new()
        } else {
            format!(" {}", c.target_features)
        };
        writeln!(
            f,
            "  cpu: target-cpu {}{features}, kernel level {}, {} cores",
            c.target_cpu,
            c.level.as_str(),
            c.cores
        )?;
        writeln!(
            f,
            "  threads: capture on {}, inference on {}, output on {}",
            cores(&t.capture),
            cores(&t.inference),
            cores(&t.output)
        )?;
        writeln!(
            f,
            "  capture: {} {} {}x{} at {} fps",
            cap.device,
            cap.format_str(),
            cap.width,
            cap.height,
            cap.fps
        )?;
        match &self.gpio {
            None => writeln!(f, "  gpio: none")?,
            Some(g) => writeln!(
                f,
                "  gpio: {}: freeze line {} (active {}, debounce {} ms), status LED line {} \
                 (active {}), fault LED line {} (active {})",
                g.chip,
                g.freeze.line,
                g.freeze.active.as_str(),
                g.freeze.debounce_ms,
                g.status_led.line,
                g.status_led.active.as_str(),
                g.fault_led.line,
                g.fault_led.active.as_str()
            )?,
        }
        let w = &self.watchdog;
        writeln!(
            f,
            "  watchdog: {}, fault after {} ms without a frame, pet every {} ms",
            w.device.as_deref().unwrap_or("no device"),
            w.frame_timeout_ms,
            w.pet_interval_ms
        )?;
        writeln!(f, "  bundle: {}", self.bundle)?;
        let sinks: Vec<String> = self
            .sinks
            .iter()
            .map(|s| format!("{}:{}", s.kind.as_str(), s.path))
            .collect();
        writeln!(f, "  sinks: {}", sinks.join(", "))?;
        let b = &self.backend;
        writeln!(
            f,
            "  backend: encoder on {}{}",
            b.encoder.as_str(),
            if b.required {
                " (required: no CPU fallback)"
            } else {
                ""
            }
        )?;
        match self.trusted_keys.len() {
            0 => write!(
                f,
                "  trusted keys: none (any bundle runs, reported unverified)"
            ),
            n => write!(
                f,
                "  trusted keys: {n} (only bundles signed by one of them run)"
            ),
        }
    }
}
