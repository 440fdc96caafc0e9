//! What the checks share: the context, source options, capture helpers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sammix::frame::{Frame, PixelFormat};
use sammix::source::v4l::{FourCc, V4lOptions, V4lSource, V4lSpec};
use sammix::source::FrameSource;

use crate::demo_clip::DemoSetup;

/// The whole run must end before this, plus `DemoSetup::budget` with
/// `loopback_demo_clip` (the VM's TIMEOUT is longer).
pub const WATCHDOG: Duration = Duration::from_secs(200);
/// vivid's platform device, for unplugging it.
pub const VIVID_SYSFS: &str = "/sys/bus/platform/drivers/vivid";

pub type Check = Result<String, String>;
pub type CheckFn = fn(&Ctx) -> Check;

pub struct Ctx {
    /// The vivid capture node (single-planar).
    pub vivid: PathBuf,
    /// The capture node of a second vivid instance, multi-planar.
    pub vivid_mplane: PathBuf,
    /// The v4l2loopback node.
    pub lo: PathBuf,
    /// The `sammix` binary and the bundle, for `loopback_demo_clip`.
    pub demo: Option<DemoSetup>,
}

pub fn opts(output: PixelFormat) -> V4lOptions {
    V4lOptions {
        output,
        // Software emulation: vivid is slow to produce the first frame.
        frame_timeout: Duration::from_secs(10),
        ..V4lOptions::default()
    }
}

pub fn spec(device: &Path, size: (u32, u32), fourcc: &[u8; 4]) -> V4lSpec {
    V4lSpec {
        device: device.to_path_buf(),
        size: Some(size),
        fourcc: Some(FourCc(*fourcc)),
    }
}

pub fn read(src: &mut V4lSource, frame: &mut Frame) -> Result<(), String> {
    src.next_frame(frame).map(|_| ()).map_err(|e| e.to_string())
}

/// Opens `spec`, reads `n` frames, checks size and numbering, returns the
/// last frame.
pub fn grab(spec: &V4lSpec, output: PixelFormat, n: usize) -> Result<(Frame, V4lSource), String> {
    let mut src = V4lSource::open(spec, opts(output)).map_err(|e| e.to_string())?;
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut last = None;
    for _ in 0..n {
        read(&mut src, &mut frame)?;
        if last.is_some_and(|l| frame.sequence <= l) {
            return Err(format!(
                "{spec}: sequence {} after {last:?}",
                frame.sequence
            ));
        }
        last = Some(frame.sequence);
    }
    let (w, h) = spec.size.unwrap_or((0, 0));
    if spec.size.is_some() && (frame.width(), frame.height()) != (w as usize, h as usize) {
        return Err(format!("{spec}: got {}x{}", frame.width(), frame.height()));
    }
    if frame.format() != output {
        return Err(format!("{spec}: got {:?}", frame.format()));
    }
    Ok((frame, src))
}

pub fn min_max(data: &[u8]) -> (u8, u8) {
    data.iter()
        .fold((255, 0), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// Pixels that differ and the largest difference.
pub fn diff(a: &[u8], b: &[u8]) -> (usize, u8) {
    a.iter()
        .zip(b)
        .filter(|(x, y)| x != y)
        .fold((0, 0), |(n, m), (x, y)| (n + 1, m.max(x.abs_diff(*y))))
}

/// Runs `v4l2-ctl -d DEVICE ARGS...` (in the VM, next to the checks);
/// returns its output, or an error naming the device, the arguments and
/// what it printed.
pub fn v4l2_ctl(device: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("v4l2-ctl")
        .arg("-d")
        .arg(device)
        .args(args)
        .output()
        .map_err(|e| format!("v4l2-ctl -d {} {}: {e}", device.display(), args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "v4l2-ctl -d {} {} failed ({}): {}",
            device.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
