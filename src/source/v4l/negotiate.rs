//! Opening a capture node: capabilities, format negotiation, and the
//! messages that list what a device offers.

use std::path::Path;

use super::convert::Colour;
use super::layout::{FourCc, Layout, PixFormat};
use super::sys::{BufType, Caps, Device, FormatDesc, FrameSizes, MmapStream, PixFmt, SysError};
use super::{V4lError, V4lOptions, V4lSpec};

/// Frame sizes listed per format in messages.
const MAX_SIZES_LISTED: usize = 12;

/// `V4L2_FIELD_ANY`, `V4L2_FIELD_NONE`.
const FIELD_PROGRESSIVE: [u32; 2] = [0, 1];

/// What the driver agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Negotiated {
    pub layout: Layout,
    pub colour: Colour,
    pub rate: Option<(u32, u32)>,
}

pub(super) fn sys_error(device: &Path, e: SysError) -> V4lError {
    if e.op == "open" {
        V4lError::Open {
            device: device.to_path_buf(),
            io: e.io,
        }
    } else {
        V4lError::Io {
            device: device.to_path_buf(),
            op: e.op,
            io: e.io,
        }
    }
}

/// What a device offers: the formats this source reads with their frame
/// sizes (`YUYV (YUYV 4:2:2): 320x180, 640x360`), then the codes of the
/// others.
pub(super) fn offered(dev: &Device, formats: &[FormatDesc]) -> String {
    if formats.is_empty() {
        return "no formats (VIDIOC_ENUM_FMT lists none)".into();
    }
    let (ours, others): (Vec<&FormatDesc>, Vec<&FormatDesc>) = formats
        .iter()
        .partition(|f| PixFormat::from_fourcc(f.fourcc).is_some());
    let mut out = Vec::new();
    for f in ours {
        let sizes = dev.frame_sizes(f.fourcc).unwrap_or_default();
        let mut listed: Vec<String> = sizes
            .iter()
            .take(MAX_SIZES_LISTED)
            .map(|s| match *s {
                FrameSizes::Discrete(w, h) => format!("{w}x{h}"),
                FrameSizes::Stepwise([w0, w1, ws], [h0, h1, hs]) => {
                    format!("{w0}x{h0} to {w1}x{h1} in steps of {ws}x{hs}")
                }
            })
            .collect();
        if sizes.len() > MAX_SIZES_LISTED {
            listed.push(format!("{} more", sizes.len() - MAX_SIZES_LISTED));
        }
        let code = f.fourcc.to_string();
        let mut text = format!("{} ({})", code.trim_end(), f.description);
        if !listed.is_empty() {
            text += &format!(": {}", listed.join(", "));
        }
        out.push(text);
    }
    if !others.is_empty() {
        let codes: Vec<String> = others
            .iter()
            .map(|f| f.fourcc.to_string().trim_end().to_string())
            .collect();
        out.push(format!(
            "and {} format{} this source does not read: {}",
            codes.len(),
            if codes.len() == 1 { "" } else { "s" },
            codes.join(", ")
        ));
    }
    out.join("; ")
}

fn unsupported(device: &Path, fourcc: FourCc, offered: String) -> V4lError {
    V4lError::Unsupported {
        device: device.to_path_buf(),
        fourcc,
        note: if fourcc == FourCc(*b"JPEG") {
            " (for JPEG frames ask for MJPG)"
        } else {
            ""
        },
        offered,
    }
}

fn check_caps(device: &Path, caps: &Caps) -> Result<(), V4lError> {
    let what = format!("\"{}\" (driver {})", caps.card, caps.driver);
    let problem = if caps.mplane_only() {
        format!("{what} captures only through the multi-planar API, which this source does not use")
    } else if !caps.capture() {
        format!("{what} is not a video capture node")
    } else if !caps.streaming() {
        format!("{what} has no streaming I/O (mmap buffers)")
    } else {
        return Ok(());
    };
    Err(V4lError::NotCapture {
        device: device.to_path_buf(),
        problem,
    })
}

/// Sets the spec's format (or the best supported one) on `dev`.
fn negotiate(dev: &Device, spec: &V4lSpec) -> Result<Negotiated, V4lError> {
    let device = spec.device.as_path();
    let err = |e| sys_error(device, e);
    let caps = dev.capabilities().map_err(err)?;
    check_caps(device, &caps)?;
    let formats = dev.formats(BufType::Capture).map_err(err)?;
    let current = dev.format(BufType::Capture).map_err(err)?;
    let offers = |code: FourCc| formats.is_empty() || formats.iter().any(|f| f.fourcc == code);
    let fourcc = match spec.fourcc {
        Some(code) if PixFormat::from_fourcc(code).is_none() => {
            return Err(unsupported(device, code, offered(dev, &formats)));
        }
        Some(code) if !offers(code) => {
            return Err(V4lError::Format {
                device: device.to_path_buf(),
                problem: format!("{} is not one of its formats", code.to_string().trim_end()),
                offered: offered(dev, &formats),
            });
        }
        Some(code) => code,
        None if PixFormat::from_fourcc(current.fourcc).is_some() => current.fourcc,
        None => PixFormat::ALL
            .into_iter()
            .map(PixFormat::fourcc)
            .find(|&c| formats.iter().any(|f| f.fourcc == c))
            .ok_or_else(|| unsupported(device, current.fourcc, offered(dev, &formats)))?,
    };
    let (w, h) = spec.size.unwrap_or((current.width, current.height));
    let got = match dev.set_format(BufType::Capture, &PixFmt::request(w, h, fourcc)) {
        Ok(got) => got,
        Err(e)
            if matches!(
                e.io.raw_os_error(),
                Some(libc::EBUSY | libc::EINVAL | libc::ENOTTY)
            ) =>
        {
            // v4l2loopback: the writer sets the format.
            log::info!("{}: {e}: keeping the device's format", device.display());
            dev.format(BufType::Capture).map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    if got.fourcc != fourcc || (spec.size.is_some() && (got.width, got.height) != (w, h)) {
        return Err(V4lError::Format {
            device: device.to_path_buf(),
            problem: format!(
                "asked for {w}x{h} {}, the driver gave {}x{} {}",
                fourcc.to_string().trim_end(),
                got.width,
                got.height,
                got.fourcc.to_string().trim_end()
            ),
            offered: offered(dev, &formats),
        });
    }
    let Some(pix) = PixFormat::from_fourcc(got.fourcc) else {
        return Err(unsupported(device, got.fourcc, offered(dev, &formats)));
    };
    let to_usize = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
    let layout = Layout::new(
        pix,
        to_usize(got.width),
        to_usize(got.height),
        to_usize(got.bytesperline),
    )
    .map_err(|problem| V4lError::Format {
        device: device.to_path_buf(),
        problem,
        offered: offered(dev, &formats),
    })?;
    if !FIELD_PROGRESSIVE.contains(&got.field) {
        log::warn!(
            "{}: field order {} (interlaced): each buffer is handed over as one frame",
            device.display(),
            got.field
        );
    }
    if got.sizeimage != 0 && to_usize(got.sizeimage) < layout.frame_bytes() {
        log::warn!(
            "{}: sizeimage {} is less than the {} bytes of {layout}",
            device.display(),
            got.sizeimage,
            layout.frame_bytes()
        );
    }
    let colour = Colour::from_v4l2(got.colorspace, got.ycbcr_enc, got.quantization, pix);
    let rate = match dev.time_per_frame(BufType::Capture) {
        Ok(t) => t.map(|(num, den)| (den, num)),
        Err(e) => {
            log::debug!("{}: no frame rate: {e}", device.display());
            None
        }
    };
    log::info!(
        "{}: \"{}\" (driver {}): {layout}, {:?} {:?} range, {}",
        device.display(),
        caps.card,
        caps.driver,
        colour.matrix,
        colour.range,
        rate.map_or("frame rate unknown".to_string(), |(n, d)| format!(
            "{n}/{d} fps"
        ))
    );
    Ok(Negotiated {
        layout,
        colour,
        rate,
    })
}

pub(super) fn start(
    spec: &V4lSpec,
    opts: &V4lOptions,
) -> Result<(MmapStream, Negotiated), V4lError> {
    let dev = Device::open(&spec.device).map_err(|e| sys_error(&spec.device, e))?;
    let neg = negotiate(&dev, spec)?;
    let stream =
        MmapStream::start(dev, opts.buffers.max(1)).map_err(|e| sys_error(&spec.device, e))?;
    log::debug!(
        "{}: streaming with {} mmap buffers",
        spec.device.display(),
        stream.buffers()
    );
    Ok((stream, neg))
}
