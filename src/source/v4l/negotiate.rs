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
    /// The single- or multi-planar API.
    pub kind: BufType,
    /// Buffers (planes) per frame: 2 for `NM12`, else 1.
    pub planes: usize,
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

/// The buffer type to capture with: single-planar when the node has both
/// APIs, else multi-planar.
fn check_caps(device: &Path, caps: &Caps) -> Result<BufType, V4lError> {
    let what = format!("\"{}\" (driver {})", caps.card, caps.driver);
    let kind = if caps.capture() {
        BufType::Capture
    } else if caps.capture_mplane() {
        BufType::CaptureMplane
    } else {
        return Err(V4lError::NotCapture {
            device: device.to_path_buf(),
            problem: format!("{what} is not a video capture node"),
        });
    };
    if !caps.streaming() {
        return Err(V4lError::NotCapture {
            device: device.to_path_buf(),
            problem: format!("{what} has no streaming I/O (mmap buffers)"),
        });
    }
    Ok(kind)
}

/// The planes the driver gave for `layout` through `kind`, checked: 1 for
/// single-buffer formats, 2 of equal stride for `NM12`.
fn planes_of(kind: BufType, got: &PixFmt, layout: &Layout) -> Result<usize, String> {
    let want = layout.format.buffers();
    if !kind.is_mplane() {
        return if want == 1 {
            Ok(1)
        } else {
            Err(format!(
                "{} needs the multi-planar API, which this node does not have",
                layout.format.fourcc()
            ))
        };
    }
    let planes = got.planes as usize;
    if planes != want {
        return Err(format!(
            "{} comes in {planes} planes here, this source reads it in {want}",
            layout.format.fourcc()
        ));
    }
    if want == 2 {
        let chroma = got.plane_bytesperline[1] as usize;
        if chroma != 0 && chroma != layout.stride {
            return Err(format!(
                "{}: the chroma plane has {chroma} bytes a row and the luma plane {}; \
                 this source reads equal strides",
                layout.format.fourcc(),
                layout.stride
            ));
        }
    }
    Ok(planes)
}

/// Sets the spec's format (or the best supported one) on `dev`.
fn negotiate(dev: &Device, spec: &V4lSpec) -> Result<Negotiated, V4lError> {
    let device = spec.device.as_path();
    let err = |e| sys_error(device, e);
    let caps = dev.capabilities().map_err(err)?;
    let kind = check_caps(device, &caps)?;
    let formats = dev.formats(kind).map_err(err)?;
    let current = dev.format(kind).map_err(err)?;
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
    let got = match dev.set_format(kind, &PixFmt::request(w, h, fourcc)) {
        Ok(got) => got,
        Err(e)
            if matches!(
                e.io.raw_os_error(),
                Some(libc::EBUSY | libc::EINVAL | libc::ENOTTY)
            ) =>
        {
            // v4l2loopback: the writer sets the format.
            log::info!("{}: {e}: keeping the device's format", device.display());
            dev.format(kind).map_err(err)?
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
    let planes = planes_of(kind, &got, &layout).map_err(|problem| V4lError::Format {
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
    let first_plane = if planes == 2 {
        layout.luma_bytes()
    } else {
        layout.frame_bytes()
    };
    if got.sizeimage != 0 && to_usize(got.sizeimage) < first_plane {
        log::warn!(
            "{}: sizeimage {} is less than the {} bytes of {layout}",
            device.display(),
            got.sizeimage,
            first_plane
        );
    }
    let colour = Colour::from_v4l2(got.colorspace, got.ycbcr_enc, got.quantization, pix);
    let rate = match dev.time_per_frame(kind) {
        Ok(t) => t.map(|(num, den)| (den, num)),
        Err(e) => {
            log::debug!("{}: no frame rate: {e}", device.display());
            None
        }
    };
    log::info!(
        "{}: \"{}\" (driver {}{}): {layout}, {:?} {:?} range, {}",
        device.display(),
        caps.card,
        caps.driver,
        if kind.is_mplane() {
            ", multi-planar"
        } else {
            ""
        },
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
        kind,
        planes,
    })
}

pub(super) fn start(
    spec: &V4lSpec,
    opts: &V4lOptions,
) -> Result<(MmapStream, Negotiated), V4lError> {
    let dev = Device::open(&spec.device).map_err(|e| sys_error(&spec.device, e))?;
    let neg = negotiate(&dev, spec)?;
    let stream = MmapStream::start(dev, neg.kind, neg.planes, opts.buffers.max(1))
        .map_err(|e| sys_error(&spec.device, e))?;
    log::debug!(
        "{}: streaming with {} mmap buffers",
        spec.device.display(),
        stream.buffers()
    );
    Ok((stream, neg))
}
