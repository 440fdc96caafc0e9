//! The V4L2 boundary: every ioctl, `mmap` and `poll` of the capture source,
//! and the only `unsafe` code of `source::v4l`.
//!
//! Only the `v4l` crate's kernel bindings (`v4l_sys`, the `videodev2.h`
//! structs) and its ioctl wrapper are used. Its `Device`, `Format` and mmap
//! `Stream` are not: they panic on device input (`Format` on an unknown
//! colorspace, descriptions that are not UTF-8), the stream panics on drop
//! when stopping fails with anything but `ENODEV`, and its `next()` queues
//! the last buffer again after a timeout (`EINVAL` from then on). Here the
//! file descriptor is a [`File`] (closed on drop, errors ignored), every
//! wait is a `poll` with a timeout, and [`MmapStream`]'s `Drop` logs what
//! fails and goes on.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use std::{fmt, mem};

use v4l::v4l2::{self as v4l2, vidioc};
use v4l::v4l_sys as sys;

use super::layout::FourCc;

mod mmap;

pub(super) use mmap::MmapStream;

/// A failed system call: which one, and the OS error.
#[derive(Debug)]
pub(super) struct SysError {
    /// The call (`open`, `VIDIOC_DQBUF`, …).
    pub op: &'static str,
    /// What the kernel said.
    pub io: io::Error,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.io)
    }
}

impl SysError {
    fn new(op: &'static str, io: io::Error) -> SysError {
        SysError { op, io }
    }

    /// Whether the device is gone (unplugged, unbound, its driver broken):
    /// `ENODEV`, `ENXIO`, `EIO`, `ENOENT` (the node vanished before
    /// `open`), or an error reported by `poll` with nothing to dequeue.
    pub fn is_gone(&self) -> bool {
        matches!(
            self.io.raw_os_error(),
            Some(libc::ENODEV | libc::ENXIO | libc::EIO | libc::ENOENT | libc::EPIPE)
        )
    }
}

/// Structs of `videodev2.h` for which all-zero bytes are a valid value
/// (integers, arrays of them, and unions of those and raw pointers).
///
/// # Safety
///
/// Implement only for `#[repr(C)]` plain-data types without references,
/// `NonNull`, `bool` or enums.
unsafe trait PlainData: Copy {}

// SAFETY: bindgen structs of integers, integer arrays, and unions of those
// and raw pointers (null when zero).
unsafe impl PlainData for sys::v4l2_capability {}
// SAFETY: as above.
unsafe impl PlainData for sys::v4l2_fmtdesc {}
// SAFETY: as above.
unsafe impl PlainData for sys::v4l2_frmsizeenum {}
// SAFETY: as above.
unsafe impl PlainData for sys::v4l2_format {}
// SAFETY: as above.
unsafe impl PlainData for sys::v4l2_pix_format {}
// SAFETY: as above.
unsafe impl PlainData for sys::v4l2_pix_format_mplane {}
// SAFETY: as above (`m.userptr` / `m.mem_offset` / `m.fd`: integers).
unsafe impl PlainData for sys::v4l2_plane {}
// SAFETY: as above.
unsafe impl PlainData for sys::v4l2_streamparm {}
// SAFETY: as above.
unsafe impl PlainData for sys::v4l2_requestbuffers {}
// SAFETY: as above (`m.planes` is a raw pointer: null when zero).
unsafe impl PlainData for sys::v4l2_buffer {}

fn zeroed<T: PlainData>() -> T {
    // SAFETY: `PlainData` types are valid when all bytes are zero.
    unsafe { mem::zeroed() }
}

/// `ioctl(fd, request, arg)`, retried on `EINTR`.
///
/// # Safety
///
/// `T` must be the argument type the kernel reads and writes for
/// `request` (the type its `_IOWR` code was built from).
unsafe fn ioctl<T: PlainData>(
    file: &File,
    request: vidioc::_IOC_TYPE,
    op: &'static str,
    arg: &mut T,
) -> Result<(), SysError> {
    loop {
        // SAFETY: the caller guarantees `T` is `request`'s argument type;
        // `arg` is a live, exclusive reference for the whole call and the
        // descriptor is open as long as `file` is.
        let r = unsafe { v4l2::ioctl(file.as_raw_fd(), request, (arg as *mut T).cast()) };
        match r {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map_err(|e| SysError::new(op, e)),
        }
    }
}

/// `V4L2_BUF_TYPE_VIDEO_CAPTURE`, `_CAPTURE_MPLANE` or `_OUTPUT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BufType {
    /// Frames from the device (single-planar API).
    Capture,
    /// Frames from the device through the multi-planar API (SoC capture
    /// interfaces): formats, buffers and their planes are `_MPLANE`.
    CaptureMplane,
    /// Frames to the device.
    Output,
}

impl BufType {
    fn raw(self) -> u32 {
        match self {
            BufType::Capture => sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE,
            BufType::CaptureMplane => sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
            BufType::Output => sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT,
        }
    }

    /// Whether formats and buffers use the multi-planar structs.
    pub fn is_mplane(self) -> bool {
        self == BufType::CaptureMplane
    }
}

/// Planes of a multi-planar format this source reads (`NM12` has two).
pub(super) const MAX_PLANES: usize = 2;

/// `VIDEO_MAX_PLANES`: the planes array handed to the kernel has this many
/// entries, whatever the format needs.
const VIDEO_MAX_PLANES: usize = 8;

/// `VIDIOC_QUERYCAP`, what matters here.
#[derive(Debug, Clone)]
pub(super) struct Caps {
    /// The driver's name (`vivid`, `uvcvideo`, `v4l2 loopback`).
    pub driver: String,
    /// The card's name.
    pub card: String,
    /// The node's capabilities (`device_caps` when the driver gives them).
    pub caps: u32,
}

impl Caps {
    /// Single-planar video capture.
    pub fn capture(&self) -> bool {
        self.caps & sys::V4L2_CAP_VIDEO_CAPTURE != 0
    }
    /// Multi-planar video capture.
    pub fn capture_mplane(&self) -> bool {
        self.caps & sys::V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0
    }
    /// Single-planar video output.
    pub fn output(&self) -> bool {
        self.caps & sys::V4L2_CAP_VIDEO_OUTPUT != 0
    }
    /// Streaming I/O (mmap buffers).
    pub fn streaming(&self) -> bool {
        self.caps & sys::V4L2_CAP_STREAMING != 0
    }
}

/// One entry of `VIDIOC_ENUM_FMT`.
#[derive(Debug, Clone)]
pub(super) struct FormatDesc {
    /// The pixel format.
    pub fourcc: FourCc,
    /// The driver's description.
    pub description: String,
}

/// One entry of `VIDIOC_ENUM_FRAMESIZES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FrameSizes {
    /// One size.
    Discrete(u32, u32),
    /// A range: (min, max, step) of width, then of height.
    Stepwise([u32; 3], [u32; 3]),
}

/// `struct v4l2_pix_format` (or `_mplane`), what matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PixFmt {
    pub width: u32,
    pub height: u32,
    pub fourcc: FourCc,
    pub field: u32,
    /// Of the first plane.
    pub bytesperline: u32,
    /// Of the first plane.
    pub sizeimage: u32,
    pub colorspace: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    /// Planes (buffers per frame): 1 for single-planar formats; the
    /// driver's `num_planes` for multi-planar ones (0 in a request).
    pub planes: u32,
    /// `bytesperline` of each of the first [`MAX_PLANES`] planes.
    pub plane_bytesperline: [u32; MAX_PLANES],
}

impl PixFmt {
    /// A request for `width × height` in `fourcc`, progressive, the rest
    /// left to the driver.
    pub fn request(width: u32, height: u32, fourcc: FourCc) -> PixFmt {
        PixFmt {
            width,
            height,
            fourcc,
            field: sys::v4l2_field_V4L2_FIELD_NONE,
            bytesperline: 0,
            sizeimage: 0,
            colorspace: 0,
            ycbcr_enc: 0,
            quantization: 0,
            planes: 0,
            plane_bytesperline: [0; MAX_PLANES],
        }
    }
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// An open V4L2 node (non-blocking; closed on drop).
#[derive(Debug)]
pub(super) struct Device {
    file: File,
}

impl Device {
    /// Opens `path` read-write, non-blocking.
    pub fn open(path: &Path) -> Result<Device, SysError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| SysError::new("open", e))?;
        Ok(Device { file })
    }

    /// `VIDIOC_QUERYCAP`.
    pub fn capabilities(&self) -> Result<Caps, SysError> {
        let mut cap: sys::v4l2_capability = zeroed();
        // SAFETY: VIDIOC_QUERYCAP takes a `v4l2_capability`.
        unsafe {
            ioctl(
                &self.file,
                vidioc::VIDIOC_QUERYCAP,
                "VIDIOC_QUERYCAP",
                &mut cap,
            )?
        };
        let caps = if cap.capabilities & sys::V4L2_CAP_DEVICE_CAPS != 0 {
            cap.device_caps
        } else {
            cap.capabilities
        };
        Ok(Caps {
            driver: c_string(&cap.driver),
            card: c_string(&cap.card),
            caps,
        })
    }

    /// `VIDIOC_ENUM_FMT` until the driver says no more (at most 256).
    pub fn formats(&self, kind: BufType) -> Result<Vec<FormatDesc>, SysError> {
        let mut out = Vec::new();
        for index in 0..256 {
            let mut desc: sys::v4l2_fmtdesc = zeroed();
            desc.index = index;
            desc.type_ = kind.raw();
            // SAFETY: VIDIOC_ENUM_FMT takes a `v4l2_fmtdesc`.
            match unsafe {
                ioctl(
                    &self.file,
                    vidioc::VIDIOC_ENUM_FMT,
                    "VIDIOC_ENUM_FMT",
                    &mut desc,
                )
            } {
                Ok(()) => out.push(FormatDesc {
                    fourcc: FourCc::from_u32(desc.pixelformat),
                    description: c_string(&desc.description),
                }),
                Err(e) if e.io.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// `VIDIOC_ENUM_FRAMESIZES` for `fourcc` (empty when the driver does not
    /// say).
    pub fn frame_sizes(&self, fourcc: FourCc) -> Result<Vec<FrameSizes>, SysError> {
        let mut out = Vec::new();
        for index in 0..256 {
            let mut e: sys::v4l2_frmsizeenum = zeroed();
            e.index = index;
            e.pixel_format = fourcc.to_u32();
            // SAFETY: VIDIOC_ENUM_FRAMESIZES takes a `v4l2_frmsizeenum`.
            let r = unsafe {
                ioctl(
                    &self.file,
                    vidioc::VIDIOC_ENUM_FRAMESIZES,
                    "VIDIOC_ENUM_FRAMESIZES",
                    &mut e,
                )
            };
            match r {
                Ok(()) => {}
                Err(err) if matches!(err.io.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) => {
                    break
                }
                Err(err) => return Err(err),
            }
            // SAFETY: both union members are plain `u32`s; `type_` says
            // which one the driver filled, the other reads as zeros.
            let (d, s) = unsafe { (e.__bindgen_anon_1.discrete, e.__bindgen_anon_1.stepwise) };
            if e.type_ == sys::v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE {
                out.push(FrameSizes::Discrete(d.width, d.height));
            } else {
                out.push(FrameSizes::Stepwise(
                    [s.min_width, s.max_width, s.step_width.max(1)],
                    [s.min_height, s.max_height, s.step_height.max(1)],
                ));
                break;
            }
        }
        Ok(out)
    }

    fn pix(kind: BufType, raw: &sys::v4l2_format) -> PixFmt {
        if kind.is_mplane() {
            // SAFETY: `pix_mp` is the member for multi-planar buffer types
            // (`kind` is the type the format was asked for); all its fields
            // are integers and arrays of them.
            let p = unsafe { raw.fmt.pix_mp };
            let mut plane_bytesperline = [0; MAX_PLANES];
            for (b, plane) in plane_bytesperline.iter_mut().zip(p.plane_fmt) {
                *b = plane.bytesperline;
            }
            return PixFmt {
                width: p.width,
                height: p.height,
                fourcc: FourCc::from_u32(p.pixelformat),
                field: p.field,
                bytesperline: p.plane_fmt[0].bytesperline,
                sizeimage: p.plane_fmt[0].sizeimage,
                colorspace: p.colorspace,
                // SAFETY: a union of two `u8`s.
                ycbcr_enc: u32::from(unsafe { p.__bindgen_anon_1.ycbcr_enc }),
                quantization: u32::from(p.quantization),
                planes: u32::from(p.num_planes),
                plane_bytesperline,
            };
        }
        // SAFETY: `pix` is the member for single-planar video buffer types;
        // all its fields are `u32`s.
        let p = unsafe { raw.fmt.pix };
        PixFmt {
            width: p.width,
            height: p.height,
            fourcc: FourCc::from_u32(p.pixelformat),
            field: p.field,
            bytesperline: p.bytesperline,
            sizeimage: p.sizeimage,
            colorspace: p.colorspace,
            // SAFETY: a union of two `u32`s.
            ycbcr_enc: unsafe { p.__bindgen_anon_1.ycbcr_enc },
            quantization: p.quantization,
            planes: 1,
            plane_bytesperline: [p.bytesperline, 0],
        }
    }

    /// `VIDIOC_G_FMT`.
    pub fn format(&self, kind: BufType) -> Result<PixFmt, SysError> {
        let mut raw: sys::v4l2_format = zeroed();
        raw.type_ = kind.raw();
        // SAFETY: VIDIOC_G_FMT takes a `v4l2_format`.
        unsafe { ioctl(&self.file, vidioc::VIDIOC_G_FMT, "VIDIOC_G_FMT", &mut raw)? };
        Ok(Device::pix(kind, &raw))
    }

    /// `VIDIOC_S_FMT`: what the driver made of `want` (multi-planar: the
    /// driver chooses the planes and their layout).
    pub fn set_format(&self, kind: BufType, want: &PixFmt) -> Result<PixFmt, SysError> {
        let mut raw: sys::v4l2_format = zeroed();
        raw.type_ = kind.raw();
        if kind.is_mplane() {
            let mut pix: sys::v4l2_pix_format_mplane = zeroed();
            pix.width = want.width;
            pix.height = want.height;
            pix.pixelformat = want.fourcc.to_u32();
            pix.field = want.field;
            pix.colorspace = want.colorspace;
            pix.quantization = u8::try_from(want.quantization).unwrap_or(0);
            raw.fmt.pix_mp = pix;
        } else {
            let mut pix: sys::v4l2_pix_format = zeroed();
            pix.width = want.width;
            pix.height = want.height;
            pix.pixelformat = want.fourcc.to_u32();
            pix.field = want.field;
            pix.bytesperline = want.bytesperline;
            pix.sizeimage = want.sizeimage;
            pix.colorspace = want.colorspace;
            pix.quantization = want.quantization;
            raw.fmt.pix = pix;
        }
        // SAFETY: VIDIOC_S_FMT takes a `v4l2_format`.
        unsafe { ioctl(&self.file, vidioc::VIDIOC_S_FMT, "VIDIOC_S_FMT", &mut raw)? };
        Ok(Device::pix(kind, &raw))
    }

    /// `VIDIOC_G_PARM`: the time per frame as (numerator, denominator)
    /// seconds, if the driver gives one.
    pub fn time_per_frame(&self, kind: BufType) -> Result<Option<(u32, u32)>, SysError> {
        let mut parm: sys::v4l2_streamparm = zeroed();
        parm.type_ = kind.raw();
        // SAFETY: VIDIOC_G_PARM takes a `v4l2_streamparm`.
        unsafe {
            ioctl(
                &self.file,
                vidioc::VIDIOC_G_PARM,
                "VIDIOC_G_PARM",
                &mut parm,
            )?
        };
        // SAFETY: `capture` and `output` both start with `capability`,
        // then (`capturemode`/`outputmode`) and `timeperframe`: `u32`s at
        // the same offsets.
        let t = unsafe { parm.parm.capture.timeperframe };
        Ok((t.numerator > 0 && t.denominator > 0).then_some((t.numerator, t.denominator)))
    }

    /// `poll` for `events` up to `timeout`: the returned events, `None` on
    /// timeout.
    pub fn poll(
        &self,
        events: libc::c_short,
        timeout: Duration,
    ) -> Result<Option<libc::c_short>, SysError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms =
                libc::c_int::try_from(left.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
            let mut fds = [libc::pollfd {
                fd: self.file.as_raw_fd(),
                events,
                revents: 0,
            }];
            // SAFETY: one valid `pollfd` for an open descriptor, and the
            // count says one.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
            match n {
                0 => return Ok(None),
                n if n > 0 => return Ok(Some(fds[0].revents)),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(SysError::new("poll", e));
                    }
                }
            }
        }
    }

    /// One `write(2)` of `data` (v4l2loopback takes one frame a call):
    /// the bytes written; `EINTR` is retried, `EAGAIN` is an error of kind
    /// `WouldBlock`.
    pub fn write_once(&self, data: &[u8]) -> Result<usize, SysError> {
        loop {
            match (&self.file).write(data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r.map_err(|e| SysError::new("write", e)),
            }
        }
    }
}

/// `ioctl` whose argument is an `int`.
///
/// # Safety
///
/// `request` must take a pointer to an `int`.
unsafe fn ioctl_int(
    file: &File,
    request: vidioc::_IOC_TYPE,
    op: &'static str,
    arg: &mut libc::c_int,
) -> Result<(), SysError> {
    loop {
        // SAFETY: the caller guarantees `request` takes an `int`; `arg`
        // is live and exclusive for the call.
        let r = unsafe { v4l2::ioctl(file.as_raw_fd(), request, (arg as *mut libc::c_int).cast()) };
        match r {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map_err(|e| SysError::new(op, e)),
        }
    }
}
