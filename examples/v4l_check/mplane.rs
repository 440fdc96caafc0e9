//! Checks against a multi-planar vivid (`multiplanar=2`, the API of SoC
//! capture interfaces): the formats come through `VIDEO_CAPTURE_MPLANE`,
//! `NM12` in two buffers.

use sammix::frame::PixelFormat;
use sammix::source::v4l::PixFormat;

use crate::common::{diff, grab, min_max, spec, Check, Ctx};

/// YUYV, NV12 (one buffer) and NM12 (two) from the multi-planar node at two
/// sizes: the Y of all three equal byte for byte, and equal to the Y of the
/// single-planar node's YUYV (both vivid instances draw the same pattern);
/// NM12 → RGB equals NV12 → RGB exactly (same samples, other buffers).
pub fn formats(c: &Ctx) -> Check {
    let mut notes = Vec::new();
    for size in [(320, 180), (640, 360)] {
        let mut lumas = Vec::new();
        for code in [b"YUYV", b"NV12", b"NM12"] {
            let s = spec(&c.vivid_mplane, size, code);
            let (frame, src) = grab(&s, PixelFormat::Gray8, 3)?;
            let (lo, hi) = min_max(frame.data());
            if hi - lo < 64 {
                return Err(format!("{s}: nearly constant frame ({lo}..{hi})"));
            }
            if src.layout().format.fourcc().0 != *code {
                return Err(format!("{s}: negotiated {}", src.layout()));
            }
            lumas.push((s, frame));
        }
        let single = spec(&c.vivid, size, b"YUYV");
        let (reference, _) = grab(&single, PixelFormat::Gray8, 3)?;
        for (s, frame) in &lumas {
            let (n, max) = diff(reference.data(), frame.data());
            if n > 0 {
                return Err(format!(
                    "{s}: Y differs from {single} at {n} pixels (max {max})"
                ));
            }
        }
        let (nv12, _) = grab(&spec(&c.vivid_mplane, size, b"NV12"), PixelFormat::Rgb8, 3)?;
        let nm12_spec = spec(&c.vivid_mplane, size, b"NM12");
        let (nm12, src) = grab(&nm12_spec, PixelFormat::Rgb8, 3)?;
        if src.layout().format != PixFormat::Nv12m {
            return Err(format!("{nm12_spec}: negotiated {}", src.layout()));
        }
        let (n, max) = diff(nv12.data(), nm12.data());
        if n > 0 {
            return Err(format!(
                "{nm12_spec}: RGB differs from NV12's at {n} samples (max {max})"
            ));
        }
        notes.push(format!(
            "{}x{} ({}): YUYV, NV12, NM12 Y = single-planar YUYV Y; NM12 RGB = NV12 RGB",
            size.0,
            size.1,
            src.layout()
        ));
    }
    Ok(notes.join("; "))
}
