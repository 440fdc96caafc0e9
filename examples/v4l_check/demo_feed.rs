//! Feeding the demo clip into v4l2loopback for `loopback_demo_clip` so that
//! the live `sammix run` segments every clip frame exactly once, in order.
//!
//! The live source is newest-frame-wins and gives up after 5 s without a
//! frame (`V4lOptions::frame_timeout`), while a segmented frame takes about
//! as long under the VM's software emulation. So clip frame `j` is offered
//! while inference works on frame `j − 1`, and written again every
//! [`KEEPALIVE`] until inference has taken it: the copies replace each other
//! in sammix's frame slot (counted as capture drops), and whichever copy
//! inference takes is clip frame `j`. Frame `j + 1` is offered once the
//! result of `j − 1` is out (inference then moves to `j`) and [`SETTLE`] has
//! passed. Frame 0 goes in before sammix opens the device (a new
//! v4l2loopback reader starts at the oldest of at most two frames written),
//! with no copies: frame 1 follows its result.
//!
//! ```text
//!  written   0 ─────── 1 ─── 2 ── 2 ── 2 ─── 3 ── 3 ─── … (tail: N, N, …)
//!  segmented [0      ] [1         ] [2           ] [3 …
//! ```
//!
//! v4l2loopback numbers every frame 0, so sammix numbers the frames it
//! reads itself (device frame k is sequence k) and names its results by
//! that number. The ground truth sammix reads is a folder made here as the
//! frames are written: `truth/k.png` is the clip mask of the frame written
//! k-th. After the last clip frame is taken, the next ones are written until
//! sammix ends (its capture thread waits for one more frame before it sees
//! that inference stopped); they are never segmented.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sammix::frame::{Frame, PixelFormat};
use sammix::source::v4l::{FourCc, V4lWriter};
use sammix::y4m::Y4mReader;

use crate::demo_clip::{run_args, DemoSetup, Running, FRAME_DEADLINE};

/// Longest gap between two frames written: well under the live source's
/// 5 s frame timeout.
pub const KEEPALIVE: Duration = Duration::from_millis(1500);
/// Time given to sammix's inference thread to take a frame from its slot
/// before the next clip frame may replace it (it takes it within
/// milliseconds of the result before it).
pub const SETTLE: Duration = Duration::from_millis(200);
/// How often the results folder is looked at.
const POLL: Duration = Duration::from_millis(20);

/// What the live run did.
pub struct Live {
    /// sammix's standard output (the `--json` summary).
    pub stdout: String,
    /// How long sammix ran.
    pub wall: Duration,
    /// The clip frame of each frame written, by device frame number.
    pub clip_of: Vec<usize>,
    /// Frames written after the last clip frame was taken.
    pub tail: usize,
}

/// The clip's frames in the device's layout (GREY, rows `stride` apart),
/// written to the device with their ground truth.
struct Feed {
    writer: V4lWriter,
    reader: Y4mReader,
    frame: Frame,
    buf: Vec<u8>,
    stride: usize,
    /// The clip frame in `buf`.
    current: usize,
    masks: PathBuf,
    truth: PathBuf,
    clip_of: Vec<usize>,
    last_write: Instant,
}

impl Feed {
    /// Reads clip frame `current` into `buf` (past the end of the clip: the
    /// last frame again).
    fn load(&mut self) -> Result<(), String> {
        let more = self
            .reader
            .read_frame(&mut self.frame, PixelFormat::Gray8)
            .map_err(|e| e.to_string())?;
        if more {
            let w = self.frame.width();
            for (row, src) in self
                .buf
                .chunks_mut(self.stride)
                .zip(self.frame.data().chunks(w))
            {
                row[..w].copy_from_slice(src);
            }
        }
        Ok(())
    }

    /// Moves on to the next clip frame.
    fn advance(&mut self) -> Result<(), String> {
        self.current += 1;
        self.load()
    }

    /// Writes the current clip frame, its ground truth first.
    fn write(&mut self) -> Result<(), String> {
        let k = self.clip_of.len();
        let mask = self.masks.join(format!("{:06}.png", self.current));
        if mask.exists() {
            let to = self.truth.join(format!("{k:06}.png"));
            fs::copy(&mask, &to).map_err(|e| format!("{}: {e}", to.display()))?;
        }
        self.writer
            .write_frame(&self.buf)
            .map_err(|e| e.to_string())?;
        self.clip_of.push(self.current);
        self.last_write = Instant::now();
        Ok(())
    }
}

/// Results sammix has written so far (its `masks/` files).
fn results(out: &Path) -> usize {
    fs::read_dir(out.join("masks")).map_or(0, |d| d.count())
}

/// Runs `sammix run --source v4l:DEVICE` on the first `d.frames` clip
/// frames, fed as the module docs say; `out` is its `--out`, `truth` the
/// ground-truth folder made for it.
pub fn live_run(d: &DemoSetup, device: &Path, out: &Path, truth: &Path) -> Result<Live, String> {
    fs::create_dir_all(truth).map_err(|e| format!("{}: {e}", truth.display()))?;
    let reader = Y4mReader::open(d.bundle.join("demo/clip.y4m")).map_err(|e| e.to_string())?;
    let (w, h) = (reader.width(), reader.height());
    let size = |v: usize| u32::try_from(v).map_err(|_| format!("clip {w}x{h}: too large"));
    let writer =
        V4lWriter::open(device, size(w)?, size(h)?, FourCc(*b"GREY")).map_err(|e| e.to_string())?;
    let layout = writer
        .layout()
        .ok_or_else(|| format!("{}: no GREY layout", device.display()))?;
    let mut feed = Feed {
        writer,
        reader,
        frame: Frame::zeros(1, 1, PixelFormat::Gray8),
        buf: vec![0; layout.frame_bytes()],
        stride: layout.stride,
        current: 0,
        masks: d.bundle.join("demo/masks"),
        truth: truth.to_path_buf(),
        clip_of: Vec::new(),
        last_write: Instant::now(),
    };
    feed.load()?;
    feed.write()?;
    let source = format!("v4l:{}:{w}x{h}:GREY", device.display());
    let mut child = Running::spawn(&d.sammix, &run_args(d, &source, truth, out))?;
    match pace(d, &mut feed, &mut child, out) {
        Ok(tail) => {
            let (stdout, wall) = child.finish("live run", FRAME_DEADLINE)?;
            Ok(Live {
                stdout,
                wall,
                clip_of: feed.clip_of,
                tail,
            })
        }
        Err(e) => {
            let said = child.finish("live run", Duration::ZERO).err();
            Err(format!("{e}: {}", said.unwrap_or_default()))
        }
    }
}

/// Writes the frames until sammix ends; the frames written after the last
/// clip frame was taken.
fn pace(d: &DemoSetup, feed: &mut Feed, child: &mut Running, out: &Path) -> Result<usize, String> {
    let (mut offered, mut seen, mut tail) = (Instant::now(), None::<Instant>, 0);
    let (mut done, mut progress) = (0, Instant::now());
    while child.exited()?.is_none() {
        let now = Instant::now();
        let r = results(out);
        if r > done {
            (done, progress) = (r, now);
        }
        let j = feed.current;
        // The result before j is out (for j = 0: j's own, no copies of 0).
        let before = if j == 0 { 1 } else { j };
        if j < d.frames && done >= before {
            let seen_at = *seen.get_or_insert(now);
            if j == 0 || (seen_at.elapsed() >= SETTLE && offered.elapsed() >= SETTLE) {
                feed.advance()?;
                feed.write()?;
                tail += usize::from(feed.current >= d.frames);
                (offered, seen) = (Instant::now(), None);
                continue;
            }
        }
        if j > 0 && feed.last_write.elapsed() >= KEEPALIVE {
            feed.write()?;
            tail += usize::from(j >= d.frames);
        }
        if progress.elapsed() > FRAME_DEADLINE {
            return Err(format!(
                "no result after the first {done} for {FRAME_DEADLINE:?}"
            ));
        }
        std::thread::sleep(POLL);
    }
    Ok(tail)
}
