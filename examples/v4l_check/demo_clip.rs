//! `loopback_demo_clip`: the bundle's demo clip pushed through v4l2loopback
//! into the real `sammix run --source v4l:…`, scored against the clip's
//! ground truth and compared with the same binary's file-source run on the
//! same frames (Dice within 1 point, presence equal frame by frame).
//!
//! ```text
//!  demo/clip.y4m ─► V4lWriter ─► /dev/video10 ─► sammix run --source v4l:… ─► out/masks/, results.jsonl
//!        ▲ next clip frame once the result before it is out  ◄──────────────────┘
//! ```
//!
//! How the frames are paced so that every clip frame is segmented exactly
//! once, in order, is in `demo_feed.rs`; this side checks that it was (each
//! result's frame number maps to the next clip frame) and compares the runs:
//! sammix's own summaries (mean Dice over the frames with a target and over
//! all frames) and, frame by frame, the outcome (the presence decision),
//! mask area and Dice. Frames come through v4l2loopback byte for byte
//! (GREY), so the two runs should agree exactly.
//!
//! Both runs use `--stability on`, the live default, made explicit so the
//! file run (default off) segments with the same settings.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Check, Ctx};
use crate::demo_feed::live_run;

/// The check's name, for `--only` and the skip line.
pub const NAME: &str = "loopback_demo_clip";
/// Longest wait for one frame's result, or for a run to end: against hangs
/// only.
pub const FRAME_DEADLINE: Duration = Duration::from_secs(60);
/// Largest difference of mean Dice between the two runs.
const DICE_TOLERANCE: f64 = 0.01;

/// What the check needs: the `sammix` binary (built with `--features v4l`)
/// and the bundle with its demo clip.
pub struct DemoSetup {
    /// The `sammix` binary.
    pub sammix: PathBuf,
    /// The bundle folder (`models/sammix-us-tiny`, every file of it).
    pub bundle: PathBuf,
    /// Frames of the clip to run.
    pub frames: usize,
}

impl DemoSetup {
    /// Time the check adds to the watchdog: about twice what it took under
    /// the VM's software emulation (40 frames, both runs: 210 s).
    pub fn budget(&self) -> Duration {
        Duration::from_secs(120) + Duration::from_secs(10) * self.frames as u32
    }
}

/// A `sammix` child whose output is collected on threads.
pub struct Running {
    child: Child,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    started: Instant,
}

fn collect(mut r: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

impl Running {
    /// Starts `sammix` with `args`.
    pub fn spawn(sammix: &Path, args: &[String]) -> Result<Running, String> {
        let mut child = Command::new(sammix)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", sammix.display()))?;
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("no pipes to the child".into());
        };
        Ok(Running {
            child,
            stdout: collect(out),
            stderr: collect(err),
            started: Instant::now(),
        })
    }

    /// Its exit status once it has ended.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>, String> {
        self.child.try_wait().map_err(|e| format!("sammix: {e}"))
    }

    /// Waits for the end (killing it after `deadline`); its stdout when it
    /// exited 0, else what it said.
    pub fn finish(mut self, what: &str, deadline: Duration) -> Result<(String, Duration), String> {
        let status = loop {
            if let Some(s) = self.exited()? {
                break Some(s);
            }
            if self.started.elapsed() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let wall = self.started.elapsed();
        let out = self.stdout.join().unwrap_or_default();
        let err = self.stderr.join().unwrap_or_default();
        match status {
            Some(s) if s.success() => Ok((out, wall)),
            Some(s) => Err(format!("{what}: sammix {s}: {}{}", err.trim(), out.trim())),
            None => Err(format!(
                "{what}: sammix still running after {deadline:?}, killed: {}",
                err.trim()
            )),
        }
    }
}

/// `sammix run` on `source`, scored against `truth`, on the first frames.
pub fn run_args(c: &DemoSetup, source: &str, truth: &Path, out: &Path) -> Vec<String> {
    [
        "run",
        "--bundle",
        &c.bundle.to_string_lossy(),
        "--source",
        source,
        "--truth",
        &truth.to_string_lossy(),
        "--frames",
        &c.frames.to_string(),
        "--stability",
        "on",
        "--overlay",
        "none",
        "--out",
        &out.to_string_lossy(),
        "--json",
    ]
    .map(String::from)
    .to_vec()
}

/// One run's summary (`--json`) and per-frame lines (`results.jsonl`).
struct Run {
    summary: Value,
    lines: Vec<Value>,
    wall: Duration,
}

impl Run {
    fn read(what: &str, stdout: &str, out: &Path, wall: Duration) -> Result<Run, String> {
        let summary: Value = serde_json::from_str(stdout)
            .map_err(|e| format!("{what}: summary is not JSON ({e}): {stdout}"))?;
        let path = out.join("results.jsonl");
        let text =
            fs::read_to_string(&path).map_err(|e| format!("{what}: {}: {e}", path.display()))?;
        let lines = text
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<Vec<Value>, _>>()
            .map_err(|e| format!("{what}: {}: {e}", path.display()))?;
        Ok(Run {
            summary,
            lines,
            wall,
        })
    }

    fn num(&self, path: &str) -> Option<f64> {
        self.summary.pointer(path).and_then(Value::as_f64)
    }

    fn dice(&self, key: &str) -> Option<f64> {
        self.num(&format!("/accuracy/{key}"))
    }

    /// The slowest frame's processing (result time less queue wait), in s.
    fn slowest_s(&self) -> f64 {
        let ms = |l: &Value, k: &str| l.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        self.lines
            .iter()
            .map(|l| ms(l, "latency_ms") - ms(l, "queue_ms"))
            .fold(0.0, f64::max)
            / 1e3
    }
}

fn text(line: &Value, key: &str) -> String {
    line.get(key).map(Value::to_string).unwrap_or_default()
}

fn show(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.4}"))
}

fn available_mb() -> String {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or("n/a".into(), |kb| (kb / 1024).to_string())
}

/// The clip through v4l2loopback into `sammix run`, against the file run.
pub fn loopback_demo_clip(c: &Ctx) -> Check {
    let Some(d) = &c.demo else {
        return Err("needs --sammix BIN and --bundle DIR".into());
    };
    let available = available_mb();
    let tmp = std::env::temp_dir().join("sammix-demo-clip");
    let _ = fs::remove_dir_all(&tmp);
    let (file_out, live_out) = (tmp.join("file"), tmp.join("v4l"));
    let clip = format!("file:{}", d.bundle.join("demo/clip.y4m").display());
    let file = Running::spawn(
        &d.sammix,
        &run_args(d, &clip, &d.bundle.join("demo/masks"), &file_out),
    )?;
    let deadline = FRAME_DEADLINE * u32::try_from(d.frames).unwrap_or(u32::MAX);
    let (stdout, wall) = file.finish("file run", deadline)?;
    let file = Run::read("file run", &stdout, &file_out, wall)?;
    let fed = live_run(d, &c.lo, &live_out, &tmp.join("truth"))?;
    let live = Run::read("live run", &fed.stdout, &live_out, fed.wall)?;

    let n = d.frames;
    let mut problems = Vec::new();
    for (what, r) in [("file", &file), ("v4l", &live)] {
        if r.num("/frames") != Some(n as f64) || r.lines.len() != n {
            problems.push(format!(
                "{what} run: {:?} frames, {} result lines, expected {n}",
                r.num("/frames"),
                r.lines.len()
            ));
        }
    }
    // Result i of the live run must be clip frame i: its frame number is
    // the device frame it came from.
    let segmented: Vec<Option<usize>> = live
        .lines
        .iter()
        .map(|l| {
            let k = l.get("name")?.as_str()?.parse::<usize>().ok()?;
            fed.clip_of.get(k).copied()
        })
        .collect();
    if segmented.iter().enumerate().any(|(i, &f)| f != Some(i)) {
        problems.push(format!(
            "the live run segmented clip frames {segmented:?}, not 0..{n} once each"
        ));
    }
    for key in ["dropped_source", "dropped_output"] {
        if live.num(&format!("/{key}")) != Some(0.0) {
            problems.push(format!("v4l run: {key} {:?}", live.num(&format!("/{key}"))));
        }
    }
    for key in ["dice_positive", "dice_all"] {
        let (a, b) = (live.dice(key), file.dice(key));
        let close = match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= DICE_TOLERANCE,
            (None, None) => true,
            _ => false,
        };
        if !close {
            problems.push(format!(
                "{key}: v4l {} vs file {}: more than {DICE_TOLERANCE} apart",
                show(a),
                show(b)
            ));
        }
    }
    let (mut same_area, mut worst, mut differ) = (0, 0.0f64, Vec::new());
    for (i, (l, f)) in live.lines.iter().zip(&file.lines).enumerate() {
        if text(l, "outcome") != text(f, "outcome") {
            differ.push(i);
        }
        same_area += usize::from(text(l, "mask_area") == text(f, "mask_area"));
        let dice = |v: &Value| v.get("dice").and_then(Value::as_f64).unwrap_or(f64::NAN);
        worst = worst.max((dice(l) - dice(f)).abs());
    }
    if !differ.is_empty() {
        problems.push(format!(
            "presence (outcome) differs on clip frames {differ:?}"
        ));
    }
    let rss = |r: &Run| {
        r.num("/peak_rss_kb")
            .map_or("n/a".into(), |kb| format!("{:.0}", kb / 1024.0))
    };
    let note = format!(
        "{n} frames: Dice with a target ({} frames) v4l {} / file {}, on all frames v4l {} / file {}; \
         presence equal on {}/{n} frames, mask area on {same_area}, largest per-frame Dice difference {worst:.4}; \
         {} frames written ({} after the last for sammix to end), v4l drops {}/{}/{} (source/capture/output); \
         runs {:.1} s (file) and {:.1} s (v4l), slowest frame {:.1} / {:.1} s; \
         peak RSS {} / {} MB, {available} MB available before",
        file.num("/accuracy/positive_frames").unwrap_or(f64::NAN),
        show(live.dice("dice_positive")),
        show(file.dice("dice_positive")),
        show(live.dice("dice_all")),
        show(file.dice("dice_all")),
        n - differ.len(),
        fed.clip_of.len(),
        fed.tail,
        live.num("/dropped_source").unwrap_or(f64::NAN),
        live.num("/dropped_capture").unwrap_or(f64::NAN),
        live.num("/dropped_output").unwrap_or(f64::NAN),
        file.wall.as_secs_f64(),
        live.wall.as_secs_f64(),
        file.slowest_s(),
        live.slowest_s(),
        rss(&file),
        rss(&live),
    );
    if problems.is_empty() {
        Ok(note)
    } else {
        Err(format!("{}\n    ({note})", problems.join("; ")))
    }
}
