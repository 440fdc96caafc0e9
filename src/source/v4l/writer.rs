//! [`V4lWriter`]: frames into a V4L2 output node, for feeding v4l2loopback
//! in tests and demos.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::layout::{FourCc, Layout, PixFormat};
use super::negotiate::{offered, sys_error};
use super::sys::{BufType, Device, PixFmt};
use super::V4lError;

/// Frames written with `write(2)` to a V4L2 output node (v4l2loopback's
/// output side: one `write` is one frame).
#[derive(Debug)]
pub struct V4lWriter {
    device: PathBuf,
    dev: Device,
    format: PixFmt,
    timeout: Duration,
}

impl V4lWriter {
    /// Opens `device` and sets its output format to `width × height` in
    /// `fourcc`; fails when the driver does not take exactly that.
    pub fn open(
        device: impl AsRef<Path>,
        width: u32,
        height: u32,
        fourcc: FourCc,
    ) -> Result<V4lWriter, V4lError> {
        let device = device.as_ref();
        let err = |e| sys_error(device, e);
        let dev = Device::open(device).map_err(err)?;
        let caps = dev.capabilities().map_err(err)?;
        if !caps.output() {
            return Err(V4lError::NotCapture {
                device: device.to_path_buf(),
                problem: format!(
                    "\"{}\" (driver {}) is not a video output node (v4l2loopback needs exclusive_caps=0 to open both sides)",
                    caps.card, caps.driver
                ),
            });
        }
        let got = dev
            .set_format(BufType::Output, &PixFmt::request(width, height, fourcc))
            .map_err(err)?;
        if (got.width, got.height, got.fourcc) != (width, height, fourcc) {
            let formats = dev.formats(BufType::Output).map_err(err)?;
            return Err(V4lError::Format {
                device: device.to_path_buf(),
                problem: format!(
                    "asked to write {width}x{height} {}, the driver took {}x{} {}",
                    fourcc.to_string().trim_end(),
                    got.width,
                    got.height,
                    got.fourcc.to_string().trim_end()
                ),
                offered: offered(&dev, &formats),
            });
        }
        Ok(V4lWriter {
            device: device.to_path_buf(),
            dev,
            format: got,
            timeout: Duration::from_secs(5),
        })
    }

    /// The most bytes one frame may have (the driver's `sizeimage`;
    /// v4l2loopback rounds it up to whole pages). [`V4lWriter::layout`]
    /// gives the bytes the format needs.
    pub fn frame_bytes(&self) -> usize {
        usize::try_from(self.format.sizeimage).unwrap_or(usize::MAX)
    }

    /// The layout the driver expects, when the format is one the capture
    /// source reads.
    pub fn layout(&self) -> Option<Layout> {
        let pix = PixFormat::from_fourcc(self.format.fourcc)?;
        let size = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
        Layout::new(
            pix,
            size(self.format.width),
            size(self.format.height),
            size(self.format.bytesperline),
        )
        .ok()
    }

    /// Sets the longest wait for the device to take a frame (5 s).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Writes one frame (at most [`V4lWriter::frame_bytes`] bytes) with one
    /// `write(2)`, waiting up to the timeout for the device to take it.
    pub fn write_frame(&mut self, data: &[u8]) -> Result<(), V4lError> {
        let io_err = |io| V4lError::Io {
            device: self.device.clone(),
            op: "write",
            io,
        };
        if data.is_empty() || data.len() > self.frame_bytes() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a frame of {} bytes where the device takes 1 to {}",
                    data.len(),
                    self.frame_bytes()
                ),
            )));
        }
        loop {
            match self.dev.write_once(data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => {
                    return Err(io_err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        format!("the driver took {n} of {} bytes", data.len()),
                    )))
                }
                Err(e) if e.io.kind() == io::ErrorKind::WouldBlock => {
                    let ready = self
                        .dev
                        .poll(libc::POLLOUT, self.timeout)
                        .map_err(|e| sys_error(&self.device, e))?;
                    if ready.is_none() {
                        return Err(io_err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the device took no frame within {:?}", self.timeout),
                        )));
                    }
                }
                Err(e) => return Err(sys_error(&self.device, e)),
            }
        }
    }
}
