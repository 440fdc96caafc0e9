//! mmap streaming on a capture node (part of the V4L2 boundary, see
//! [`super`]).

use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use v4l::v4l2::vidioc;
use v4l::v4l_sys as sys;

use super::{ioctl, ioctl_int, zeroed, BufType, Device, SysError};

/// A dequeued capture buffer.
#[derive(Debug, Clone, Copy)]
pub(in crate::source::v4l) struct Dequeued {
    /// Its index.
    pub index: usize,
    /// Bytes of payload (0: the driver did not say).
    pub bytesused: u32,
    /// `V4L2_BUF_FLAG_*`.
    pub flags: u32,
    /// The driver's frame counter.
    pub sequence: u32,
}

impl Dequeued {
    /// The driver marked the data as corrupt (`V4L2_BUF_FLAG_ERROR`).
    pub fn is_error(&self) -> bool {
        self.flags & sys::V4L2_BUF_FLAG_ERROR != 0
    }
}

/// One mmap'ed buffer.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

/// mmap streaming on a capture node: the buffers are requested, mapped and
/// queued at start; [`MmapStream::dequeue`] waits (with a timeout) for a
/// filled one, [`MmapStream::requeue`] gives it back. Drop stops streaming,
/// unmaps and frees the buffers, logging failures, never panicking.
#[derive(Debug)]
pub(in crate::source::v4l) struct MmapStream {
    device: Device,
    maps: Vec<Mapping>,
    queued: Vec<bool>,
    streaming: bool,
}

// SAFETY: the mappings belong to this stream alone (nothing else holds
// their addresses) and are only read through `&self` while dequeued.
unsafe impl Send for MmapStream {}

fn buffer(index: u32) -> sys::v4l2_buffer {
    let mut b: sys::v4l2_buffer = zeroed();
    b.index = index;
    b.type_ = BufType::Capture.raw();
    b.memory = sys::v4l2_memory_V4L2_MEMORY_MMAP;
    b
}

impl MmapStream {
    /// Requests `count` buffers on `device`, maps and queues them, and
    /// starts streaming.
    pub fn start(device: Device, count: u32) -> Result<MmapStream, SysError> {
        let mut req: sys::v4l2_requestbuffers = zeroed();
        req.count = count;
        req.type_ = BufType::Capture.raw();
        req.memory = sys::v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: VIDIOC_REQBUFS takes a `v4l2_requestbuffers`.
        unsafe {
            ioctl(
                &device.file,
                vidioc::VIDIOC_REQBUFS,
                "VIDIOC_REQBUFS",
                &mut req,
            )?
        };
        // From here on, Drop frees what was set up.
        let mut stream = MmapStream {
            device,
            maps: Vec::new(),
            queued: Vec::new(),
            streaming: false,
        };
        if req.count == 0 {
            return Err(SysError::new(
                "VIDIOC_REQBUFS",
                io::Error::other("the driver gave no mmap buffers"),
            ));
        }
        for index in 0..req.count.min(32) {
            let mut b = buffer(index);
            let file = &stream.device.file;
            // SAFETY: VIDIOC_QUERYBUF takes a `v4l2_buffer`.
            unsafe { ioctl(file, vidioc::VIDIOC_QUERYBUF, "VIDIOC_QUERYBUF", &mut b)? };
            let len = b.length as usize;
            // SAFETY: for MMAP buffers the driver fills `m.offset`.
            let offset = unsafe { b.m.offset };
            // SAFETY: maps `len` bytes of the buffer the driver exposes at
            // `offset` of this descriptor, read-only and shared; the result
            // is checked against MAP_FAILED before use.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    libc::off_t::from(offset),
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(SysError::new("mmap", io::Error::last_os_error()));
            }
            let Some(ptr) = NonNull::new(ptr.cast::<u8>()) else {
                return Err(SysError::new(
                    "mmap",
                    io::Error::other("mapped at address 0"),
                ));
            };
            stream.maps.push(Mapping { ptr, len });
            stream.queued.push(false);
        }
        for index in 0..stream.maps.len() {
            stream.requeue(index)?;
        }
        let mut typ = BufType::Capture.raw() as libc::c_int;
        let file = &stream.device.file;
        // SAFETY: VIDIOC_STREAMON takes an `int` buffer type.
        unsafe { ioctl_int(file, vidioc::VIDIOC_STREAMON, "VIDIOC_STREAMON", &mut typ)? };
        stream.streaming = true;
        Ok(stream)
    }

    /// The number of buffers.
    pub fn buffers(&self) -> usize {
        self.maps.len()
    }

    /// Takes a filled buffer if one is ready (`None`: none is).
    fn try_dequeue(&mut self) -> Result<Option<Dequeued>, SysError> {
        let mut b = buffer(0);
        let file = &self.device.file;
        // SAFETY: VIDIOC_DQBUF takes a `v4l2_buffer`.
        let r = unsafe { ioctl(file, vidioc::VIDIOC_DQBUF, "VIDIOC_DQBUF", &mut b) };
        match r {
            Ok(()) => {}
            Err(e) if e.io.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
        let index = b.index as usize;
        if self.queued.get(index) != Some(&true) {
            return Err(SysError::new(
                "VIDIOC_DQBUF",
                io::Error::other(format!(
                    "the driver returned buffer {index}, not one of the {} queued here",
                    self.maps.len()
                )),
            ));
        }
        self.queued[index] = false;
        Ok(Some(Dequeued {
            index,
            bytesused: b.bytesused,
            flags: b.flags,
            sequence: b.sequence,
        }))
    }

    /// Waits up to `timeout` for a filled buffer (`None`: none came; a zero
    /// timeout only takes one that is ready). `poll` reporting an error
    /// (`POLLERR`, `POLLHUP`) with no buffer to take is `EIO`.
    pub fn dequeue(&mut self, timeout: Duration) -> Result<Option<Dequeued>, SysError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self.try_dequeue()? {
                return Ok(Some(d));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let Some(revents) = self.device.poll(libc::POLLIN, left)? else {
                return Ok(None);
            };
            let failed = libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
            if revents & libc::POLLIN == 0 && revents & failed != 0 {
                return match self.try_dequeue()? {
                    Some(d) => Ok(Some(d)),
                    None => Err(SysError::new(
                        "poll",
                        io::Error::from_raw_os_error(libc::EIO),
                    )),
                };
            }
        }
    }

    /// The data of dequeued buffer `d` (`bytesused` bytes, or the whole
    /// buffer when the driver leaves it 0); empty while it is queued.
    pub fn data(&self, d: &Dequeued) -> &[u8] {
        let Some(m) = self.maps.get(d.index) else {
            return &[];
        };
        if self.queued[d.index] {
            return &[];
        }
        let len = if d.bytesused == 0 {
            m.len
        } else {
            (d.bytesused as usize).min(m.len)
        };
        // SAFETY: `m` maps `m.len` readable bytes for as long as the stream
        // lives (unmapped in Drop only), `len <= m.len`, and the buffer is
        // dequeued, so the driver does not write it; requeueing needs
        // `&mut self`, which the returned borrow prevents.
        unsafe { std::slice::from_raw_parts(m.ptr.as_ptr(), len) }
    }

    /// Gives buffer `index` back to the driver (no-op if it is queued).
    pub fn requeue(&mut self, index: usize) -> Result<(), SysError> {
        if index >= self.maps.len() || self.queued[index] {
            return Ok(());
        }
        let Ok(raw_index) = u32::try_from(index) else {
            return Ok(());
        };
        let mut b = buffer(raw_index);
        // SAFETY: VIDIOC_QBUF takes a `v4l2_buffer`.
        unsafe {
            ioctl(
                &self.device.file,
                vidioc::VIDIOC_QBUF,
                "VIDIOC_QBUF",
                &mut b,
            )?
        };
        self.queued[index] = true;
        Ok(())
    }
}

impl Drop for MmapStream {
    fn drop(&mut self) {
        let file = &self.device.file;
        if self.streaming {
            let mut typ = BufType::Capture.raw() as libc::c_int;
            // SAFETY: VIDIOC_STREAMOFF takes an `int` buffer type.
            let r =
                unsafe { ioctl_int(file, vidioc::VIDIOC_STREAMOFF, "VIDIOC_STREAMOFF", &mut typ) };
            if let Err(e) = r {
                log::debug!("stopping the capture stream: {e}");
            }
        }
        for m in self.maps.drain(..) {
            // SAFETY: `m` was mapped by `start` with this length and is
            // unmapped once (drained); no slice of it outlives `&self`.
            if unsafe { libc::munmap(m.ptr.as_ptr().cast(), m.len) } != 0 {
                log::debug!("munmap of a capture buffer: {}", io::Error::last_os_error());
            }
        }
        let mut req: sys::v4l2_requestbuffers = zeroed();
        req.type_ = BufType::Capture.raw();
        req.memory = sys::v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: VIDIOC_REQBUFS takes a `v4l2_requestbuffers`.
        let r = unsafe { ioctl(file, vidioc::VIDIOC_REQBUFS, "VIDIOC_REQBUFS", &mut req) };
        if let Err(e) = r {
            log::debug!("freeing the capture buffers: {e}");
        }
    }
}
