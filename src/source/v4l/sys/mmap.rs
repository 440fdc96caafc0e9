//! mmap streaming on a capture node (part of the V4L2 boundary, see
//! [`super`]).

use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use v4l::v4l2::vidioc;
use v4l::v4l_sys as sys;

use super::{ioctl, ioctl_int, zeroed, BufType, Device, SysError, MAX_PLANES, VIDEO_MAX_PLANES};

/// A dequeued capture buffer.
#[derive(Debug, Clone, Copy)]
pub(in crate::source::v4l) struct Dequeued {
    /// Its index.
    pub index: usize,
    /// Bytes of payload per plane (0: the driver did not say), counted
    /// from the start of the plane's buffer.
    pub bytesused: [u32; MAX_PLANES],
    /// Where each plane's data starts in its buffer (multi-planar only).
    pub data_offset: [u32; MAX_PLANES],
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
///
/// Multi-planar ([`BufType::CaptureMplane`]): each buffer has `planes`
/// planes, each mapped on its own; their sizes and offsets travel in an
/// array of `v4l2_plane` that lives on the stack for each ioctl.
#[derive(Debug)]
pub(in crate::source::v4l) struct MmapStream {
    device: Device,
    kind: BufType,
    /// Planes per buffer (1 for single-planar).
    planes: usize,
    /// Buffer `i`'s plane `p` is `maps[i * planes + p]`.
    maps: Vec<Mapping>,
    queued: Vec<bool>,
    streaming: bool,
}

// SAFETY: the mappings belong to this stream alone (nothing else holds
// their addresses) and are only read through `&self` while dequeued.
unsafe impl Send for MmapStream {}

/// The `v4l2_plane` array of one multi-planar ioctl.
type PlaneArray = [sys::v4l2_plane; VIDEO_MAX_PLANES];

/// A `v4l2_buffer` for buffer `index` of `kind`; multi-planar ones point at
/// `planes` (which must outlive every ioctl given the result).
fn buffer(kind: BufType, index: u32, planes: &mut PlaneArray) -> sys::v4l2_buffer {
    let mut b: sys::v4l2_buffer = zeroed();
    b.index = index;
    b.type_ = kind.raw();
    b.memory = sys::v4l2_memory_V4L2_MEMORY_MMAP;
    if kind.is_mplane() {
        b.m.planes = planes.as_mut_ptr();
        b.length = VIDEO_MAX_PLANES as u32;
    }
    b
}

impl MmapStream {
    /// Requests `count` buffers of `kind` with `planes` planes each (1 for
    /// single-planar) on `device`, maps and queues them, and starts
    /// streaming.
    pub fn start(
        device: Device,
        kind: BufType,
        planes: usize,
        count: u32,
    ) -> Result<MmapStream, SysError> {
        let planes = if kind.is_mplane() { planes } else { 1 };
        if !(1..=MAX_PLANES).contains(&planes) {
            return Err(SysError::new(
                "VIDIOC_S_FMT",
                io::Error::other(format!(
                    "the driver asks for {planes} planes a frame, this source reads 1 to {MAX_PLANES}"
                )),
            ));
        }
        let mut req: sys::v4l2_requestbuffers = zeroed();
        req.count = count;
        req.type_ = kind.raw();
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
            kind,
            planes,
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
            let mut plane_info: PlaneArray = [zeroed(); VIDEO_MAX_PLANES];
            let mut b = buffer(kind, index, &mut plane_info);
            let file = &stream.device.file;
            // SAFETY: VIDIOC_QUERYBUF takes a `v4l2_buffer`; a multi-planar
            // one points at `plane_info`, alive and exclusive for the call,
            // with room for the `length` planes it says.
            unsafe { ioctl(file, vidioc::VIDIOC_QUERYBUF, "VIDIOC_QUERYBUF", &mut b)? };
            if kind.is_mplane() && (b.length as usize) < planes {
                return Err(SysError::new(
                    "VIDIOC_QUERYBUF",
                    io::Error::other(format!(
                        "buffer {index} has {} planes where the format has {planes}",
                        b.length
                    )),
                ));
            }
            for plane in &plane_info[..planes] {
                let (len, offset) = if kind.is_mplane() {
                    // SAFETY: for MMAP planes the driver fills `m.mem_offset`.
                    (plane.length as usize, unsafe { plane.m.mem_offset })
                } else {
                    // SAFETY: for MMAP buffers the driver fills `m.offset`.
                    (b.length as usize, unsafe { b.m.offset })
                };
                let mapping = map(file, len, offset)?;
                stream.maps.push(mapping);
            }
            stream.queued.push(false);
        }
        for index in 0..stream.queued.len() {
            stream.requeue(index)?;
        }
        let mut typ = kind.raw() as libc::c_int;
        let file = &stream.device.file;
        // SAFETY: VIDIOC_STREAMON takes an `int` buffer type.
        unsafe { ioctl_int(file, vidioc::VIDIOC_STREAMON, "VIDIOC_STREAMON", &mut typ)? };
        stream.streaming = true;
        Ok(stream)
    }

    /// The number of buffers.
    pub fn buffers(&self) -> usize {
        self.queued.len()
    }

    /// Takes a filled buffer if one is ready (`None`: none is).
    fn try_dequeue(&mut self) -> Result<Option<Dequeued>, SysError> {
        let mut plane_info: PlaneArray = [zeroed(); VIDEO_MAX_PLANES];
        let mut b = buffer(self.kind, 0, &mut plane_info);
        let file = &self.device.file;
        // SAFETY: VIDIOC_DQBUF takes a `v4l2_buffer`; a multi-planar one
        // points at `plane_info`, alive and exclusive for the call.
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
                    self.queued.len()
                )),
            ));
        }
        self.queued[index] = false;
        let mut bytesused = [0; MAX_PLANES];
        let mut data_offset = [0; MAX_PLANES];
        if self.kind.is_mplane() {
            for (p, plane) in plane_info[..self.planes].iter().enumerate() {
                bytesused[p] = plane.bytesused;
                data_offset[p] = plane.data_offset;
            }
        } else {
            bytesused[0] = b.bytesused;
        }
        Ok(Some(Dequeued {
            index,
            bytesused,
            data_offset,
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

    /// The data of plane `plane` of dequeued buffer `d` (from its
    /// `data_offset` to `bytesused`, or the whole plane when the driver
    /// leaves `bytesused` 0); empty while the buffer is queued or for a
    /// plane it does not have.
    pub fn data(&self, d: &Dequeued, plane: usize) -> &[u8] {
        if plane >= self.planes || self.queued.get(d.index) != Some(&false) {
            return &[];
        }
        let Some(m) = self.maps.get(d.index * self.planes + plane) else {
            return &[];
        };
        let used = d.bytesused[plane] as usize;
        let end = if used == 0 { m.len } else { used.min(m.len) };
        let start = (d.data_offset[plane] as usize).min(end);
        // SAFETY: `m` maps `m.len` readable bytes for as long as the stream
        // lives (unmapped in Drop only), `start <= end <= m.len`, and the
        // buffer is dequeued, so the driver does not write it; requeueing
        // needs `&mut self`, which the returned borrow prevents.
        unsafe { std::slice::from_raw_parts(m.ptr.as_ptr().add(start), end - start) }
    }

    /// Gives buffer `index` back to the driver (no-op if it is queued).
    pub fn requeue(&mut self, index: usize) -> Result<(), SysError> {
        if index >= self.queued.len() || self.queued[index] {
            return Ok(());
        }
        let Ok(raw_index) = u32::try_from(index) else {
            return Ok(());
        };
        let mut plane_info: PlaneArray = [zeroed(); VIDEO_MAX_PLANES];
        let mut b = buffer(self.kind, raw_index, &mut plane_info);
        // SAFETY: VIDIOC_QBUF takes a `v4l2_buffer`; a multi-planar one
        // points at `plane_info`, alive and exclusive for the call.
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
            let mut typ = self.kind.raw() as libc::c_int;
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
        req.type_ = self.kind.raw();
        req.memory = sys::v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: VIDIOC_REQBUFS takes a `v4l2_requestbuffers`.
        let r = unsafe { ioctl(file, vidioc::VIDIOC_REQBUFS, "VIDIOC_REQBUFS", &mut req) };
        if let Err(e) = r {
            log::debug!("freeing the capture buffers: {e}");
        }
    }
}

/// Maps `len` bytes of the buffer (or plane) the driver exposes at `offset`
/// of `file`, read-only and shared.
fn map(file: &std::fs::File, len: usize, offset: u32) -> Result<Mapping, SysError> {
    // SAFETY: maps `len` bytes at `offset` of this descriptor, read-only
    // and shared; the result is checked against MAP_FAILED before use.
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
    Ok(Mapping { ptr, len })
}
