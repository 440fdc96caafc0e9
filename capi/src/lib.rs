//! The C API: sammix for firmware written in C or C++.
//!
//! An opaque handle holds one bundle's pipeline and its frame and mask
//! buffers: open it once, process frames from caller-owned buffers, read
//! each mask into a caller-owned buffer, close it. This layer allocates
//! nothing per frame once a handle has seen a frame of the current size
//! (an error message, only when there is an error); the graph engine
//! underneath (tract) still allocates while it runs a graph. `include/sammix.h` is made
//! from this file by cbindgen (`capi/cbindgen.toml`); CI checks it is up to
//! date.
//!
//! Threads: a handle is used by one thread at a time (it may move between
//! threads); distinct handles are independent. Every entry point catches
//! panics: a panic is reported as `SAMMIX_STATUS_INTERNAL`, never unwinds
//! into C.
//!
//! `unsafe` here is the boundary with C: each block says what the caller
//! promised (the header states the same).

#![allow(clippy::missing_safety_doc)] // the contracts are in the header's comments, made from these docs

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use sammix::bundle::{Bundle, TrustedKeys};
use sammix::frame::{Frame, Mask, PixelFormat};
use sammix::pipeline::{DecoderKind, Outcome, Pipeline};

/// What a call did.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SammixStatus {
    /// Done.
    Ok = 0,
    /// An argument was wrong (a null pointer, a size, a stride, a buffer
    /// too small): nothing was done; `sammix_error` says which.
    Argument = 1,
    /// The bundle could not be opened or its graphs loaded.
    Bundle = 2,
    /// The frame could not be processed (the handle stays usable).
    Frame = 3,
    /// A bug inside sammix (a panic, contained).
    Internal = 4,
}

/// The layout of the caller's pixels. Either goes to any bundle: its
/// `input.color` decides what the model takes (`gray`: the luma, an RGB8
/// frame's BT.601 `0.299 R + 0.587 G + 0.114 B`, in every channel; `rgb`:
/// R, G, B, a GRAY8 frame replicated). Pass RGB8 to an `rgb` bundle.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SammixFormat {
    /// One byte a pixel (luma).
    Gray8 = 0,
    /// Three bytes a pixel, R G B.
    Rgb8 = 1,
}

/// What the model said about the target in a frame.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SammixOutcome {
    /// The classifier said absent: empty mask.
    Absent = 0,
    /// Present, but the CAM gave no prompt: empty mask.
    NoPrompt = 1,
    /// Segmented.
    Segmented = 2,
    /// A graph gave NaN or Inf: the frame says nothing; empty mask.
    Invalid = 3,
}

/// One frame's result.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SammixResult {
    /// The sequence number given with the frame.
    pub sequence: u64,
    pub outcome: SammixOutcome,
    /// Presence probability (sigmoid of the classifier's logit).
    pub presence: f32,
    /// 1 when `box_xyxy` holds the prompt box (frame pixels, inclusive).
    pub has_box: i32,
    pub box_xyxy: [f32; 4],
    /// The decoder's predicted IoU of the chosen mask; NaN when not
    /// segmented.
    pub iou_prediction: f32,
    /// Target pixels in the mask.
    pub mask_area: u64,
    /// 1 when the bundle's confidence rules flag the frame for review.
    pub review: i32,
    /// Wall time of the frame in the pipeline, ms.
    pub total_ms: f64,
}

/// An open bundle's pipeline (opaque to C).
pub struct SammixPipeline {
    pipeline: Pipeline,
    frame: Frame,
    mask: Mask,
    /// The last error's message, NUL-terminated; empty when none.
    error: Vec<u8>,
}

impl SammixPipeline {
    fn fail(&mut self, status: SammixStatus, message: impl std::fmt::Display) -> SammixStatus {
        self.error.clear();
        self.error
            .extend(message.to_string().bytes().filter(|&b| b != 0));
        self.error.push(0);
        status
    }
}

/// Writes `message` into the caller's `buf` of `len` bytes (truncated,
/// always NUL-terminated when `len > 0`).
///
/// # Safety
/// `buf` is null or points to `len` writable bytes.
unsafe fn write_message(buf: *mut c_char, len: usize, message: &str) {
    if buf.is_null() || len == 0 {
        return;
    }
    let bytes: Vec<u8> = message.bytes().filter(|&b| b != 0).collect();
    let n = bytes.len().min(len - 1);
    // SAFETY: the caller promised `len` writable bytes at `buf`; n + 1 <= len.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// The library's version, a static NUL-terminated string.
#[no_mangle]
pub extern "C" fn sammix_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Opens the bundle in folder `bundle_dir` (checked: manifest, every
/// sha256, the graph contract; a signature against the trusted keys
/// compiled into this build's board profile) and loads its graphs with the
/// native mask decoder. On success `*out` is the handle; on failure
/// `*out` is NULL and `error` (if not NULL, `error_len` bytes) holds the
/// message, naming the file and what was expected.
///
/// # Safety
/// `bundle_dir` is a NUL-terminated path; `out` points to writable storage
/// for a pointer; `error` is NULL or points to `error_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sammix_open(
    bundle_dir: *const c_char,
    out: *mut *mut SammixPipeline,
    error: *mut c_char,
    error_len: usize,
) -> SammixStatus {
    let say = |status, message: &str| {
        // SAFETY: the caller's promise about `error` and `error_len`.
        unsafe { write_message(error, error_len, message) };
        status
    };
    if out.is_null() {
        return say(SammixStatus::Argument, "sammix_open: out is NULL");
    }
    // SAFETY: `out` is not null and the caller promised it is writable.
    unsafe { *out = std::ptr::null_mut() };
    if bundle_dir.is_null() {
        return say(SammixStatus::Argument, "sammix_open: bundle_dir is NULL");
    }
    // SAFETY: the caller promised a NUL-terminated string.
    let dir = unsafe { CStr::from_ptr(bundle_dir) };
    let Ok(dir) = dir.to_str() else {
        return say(
            SammixStatus::Argument,
            "sammix_open: bundle_dir is not UTF-8",
        );
    };
    let opened = catch_unwind(|| -> Result<Pipeline, String> {
        let keys = TrustedKeys::from_profile(sammix::board::profile::current())
            .map_err(|e| e.to_string())?;
        let bundle = Bundle::open_trusted(Path::new(dir), &keys).map_err(|e| e.to_string())?;
        Pipeline::with_decoder(&bundle, DecoderKind::Native)
            .map_err(|e| format!("cannot load the graphs of bundle {dir}: {e}"))
    });
    match opened {
        Ok(Ok(pipeline)) => {
            let handle = Box::new(SammixPipeline {
                pipeline,
                frame: Frame::zeros(1, 1, PixelFormat::Gray8),
                mask: Mask::zeros(1, 1),
                error: vec![0],
            });
            // SAFETY: `out` is not null and writable (above).
            unsafe { *out = Box::into_raw(handle) };
            SammixStatus::Ok
        }
        Ok(Err(message)) => say(SammixStatus::Bundle, &message),
        Err(p) => say(
            SammixStatus::Internal,
            &format!("sammix_open: internal error: {}", panic_text(p.as_ref())),
        ),
    }
}

/// Segments one frame. `pixels`: `height` rows of `stride` bytes, each
/// row's first `width` pixels in `format` (a `SammixFormat` value). `mask`: `mask_len` bytes,
/// at least `width × height`, receives the mask row by row without
/// padding (0 background, 255 target). `result` receives the frame's
/// result. `sequence` numbers the frame; it comes back in the result.
///
/// On an error the handle stays usable; `sammix_error` gives the message.
///
/// # Safety
/// `handle` comes from `sammix_open` and is not closed; `pixels` points to
/// `stride × height` readable bytes; `mask` to `mask_len` writable bytes;
/// `result` to a writable `SammixResult`. None of them overlap.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn sammix_process(
    handle: *mut SammixPipeline,
    pixels: *const u8,
    width: u32,
    height: u32,
    stride: u32,
    format: u32,
    sequence: u64,
    mask: *mut u8,
    mask_len: usize,
    result: *mut SammixResult,
) -> SammixStatus {
    // SAFETY: the caller passes a live handle from sammix_open (or NULL).
    let Some(h) = (unsafe { handle.as_mut() }) else {
        return SammixStatus::Argument;
    };
    let (w, hgt, stride) = (width as usize, height as usize, stride as usize);
    // a C enum may hold any value: read it as the integer it is
    let format = match format {
        f if f == SammixFormat::Gray8 as u32 => PixelFormat::Gray8,
        f if f == SammixFormat::Rgb8 as u32 => PixelFormat::Rgb8,
        f => {
            return h.fail(
                SammixStatus::Argument,
                format!("sammix_process: format {f}: expected SAMMIX_FORMAT_GRAY8 (0) or SAMMIX_FORMAT_RGB8 (1)"),
            )
        }
    };
    let row = w * format.channels();
    if pixels.is_null() || mask.is_null() || result.is_null() {
        return h.fail(
            SammixStatus::Argument,
            "sammix_process: pixels, mask and result must not be NULL",
        );
    }
    if w == 0 || hgt == 0 || stride < row {
        return h.fail(
            SammixStatus::Argument,
            format!(
                "sammix_process: a {width}x{height} frame with stride {stride}: expected a size above 0 and a stride of at least {row} bytes"
            ),
        );
    }
    if mask_len < w * hgt {
        return h.fail(
            SammixStatus::Argument,
            format!(
                "sammix_process: mask buffer of {mask_len} bytes: expected at least {}",
                w * hgt
            ),
        );
    }
    // SAFETY: the caller promised stride × height readable bytes at `pixels`.
    let src = unsafe { std::slice::from_raw_parts(pixels, stride * hgt) };
    h.frame.reset(w, hgt, format);
    h.frame.sequence = sequence;
    for (dst, src_row) in h
        .frame
        .data_mut()
        .chunks_exact_mut(row)
        .zip(src.chunks(stride))
    {
        dst.copy_from_slice(&src_row[..row]);
    }
    let SammixPipeline {
        pipeline,
        frame,
        mask: m,
        ..
    } = &mut *h;
    let processed = catch_unwind(AssertUnwindSafe(|| pipeline.process(frame, m)));
    let r = match processed {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return h.fail(SammixStatus::Frame, e),
        Err(p) => {
            return h.fail(
                SammixStatus::Internal,
                format!("sammix_process: internal error: {}", panic_text(p.as_ref())),
            )
        }
    };
    // SAFETY: the caller promised mask_len writable bytes at `mask`, and
    // mask_len >= w × h (checked above); the pipeline's mask is w × h.
    let out = unsafe { std::slice::from_raw_parts_mut(mask, w * hgt) };
    for (o, &v) in out.iter_mut().zip(h.mask.data()) {
        *o = if v != 0 { 255 } else { 0 };
    }
    let value = SammixResult {
        sequence: r.sequence,
        outcome: match r.outcome {
            Outcome::Absent => SammixOutcome::Absent,
            Outcome::NoPrompt => SammixOutcome::NoPrompt,
            Outcome::Segmented => SammixOutcome::Segmented,
            Outcome::Invalid => SammixOutcome::Invalid,
        },
        presence: r.presence,
        has_box: i32::from(r.box_frame.is_some()),
        box_xyxy: r.box_frame.unwrap_or([0.0; 4]),
        iou_prediction: r.iou_prediction.unwrap_or(f32::NAN),
        mask_area: r.mask_area as u64,
        review: i32::from(r.review.is_some()),
        total_ms: r.times.total_ms,
    };
    // SAFETY: the caller promised a writable SammixResult at `result`.
    unsafe { result.write(value) };
    h.error.clear();
    h.error.push(0);
    SammixStatus::Ok
}

/// The message of the handle's last failed call (empty after a call that
/// succeeded); valid until the next call on the handle. A static message
/// for a NULL handle.
///
/// # Safety
/// `handle` is NULL or a live handle from `sammix_open`.
#[no_mangle]
pub unsafe extern "C" fn sammix_error(handle: *const SammixPipeline) -> *const c_char {
    // SAFETY: the caller passes a live handle or NULL.
    match unsafe { handle.as_ref() } {
        Some(h) => h.error.as_ptr().cast(),
        None => c"the handle is NULL".as_ptr(),
    }
}

/// Closes a handle (NULL is allowed and does nothing).
///
/// # Safety
/// `handle` is NULL or a live handle from `sammix_open`, not used again.
#[no_mangle]
pub unsafe extern "C" fn sammix_close(handle: *mut SammixPipeline) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle came from Box::into_raw in sammix_open and is
    // closed once (the caller's promise).
    let h = unsafe { Box::from_raw(handle) };
    // a panic in a destructor must not cross into C
    let _ = catch_unwind(AssertUnwindSafe(|| drop(h)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> std::ffi::CString {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/sammix-us-tiny");
        std::ffi::CString::new(dir).unwrap()
    }

    fn error_of(h: *const SammixPipeline) -> String {
        // SAFETY: a live handle; the message is NUL-terminated.
        unsafe { CStr::from_ptr(sammix_error(h)) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn open_names_what_it_cannot_open_and_checks_its_arguments() {
        let mut h = std::ptr::null_mut();
        let mut err = [0 as c_char; 256];
        let dir = std::ffi::CString::new("/nonexistent/bundle").unwrap();
        // SAFETY: valid pointers and lengths.
        let status = unsafe { sammix_open(dir.as_ptr(), &mut h, err.as_mut_ptr(), err.len()) };
        assert_eq!(status, SammixStatus::Bundle);
        assert!(h.is_null());
        // SAFETY: write_message NUL-terminates within the buffer.
        let text = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        assert!(text.contains("/nonexistent/bundle"), "{text}");
        // a message longer than the buffer is cut, still terminated
        let mut small = [1 as c_char; 8];
        // SAFETY: as above.
        let status = unsafe { sammix_open(dir.as_ptr(), &mut h, small.as_mut_ptr(), small.len()) };
        assert_eq!(status, SammixStatus::Bundle);
        assert_eq!(small[7], 0);
        // SAFETY: NULL arguments are what is being tested.
        unsafe {
            assert_eq!(
                sammix_open(std::ptr::null(), &mut h, std::ptr::null_mut(), 0),
                SammixStatus::Argument
            );
            assert_eq!(
                sammix_open(dir.as_ptr(), std::ptr::null_mut(), std::ptr::null_mut(), 0),
                SammixStatus::Argument
            );
            sammix_close(std::ptr::null_mut());
        }
    }

    #[test]
    fn a_frame_with_a_padded_stride_segments_like_a_packed_one() {
        let mut h = std::ptr::null_mut();
        let dir = bundle();
        // SAFETY: valid pointers; no error buffer.
        let status = unsafe { sammix_open(dir.as_ptr(), &mut h, std::ptr::null_mut(), 0) };
        assert_eq!(status, SammixStatus::Ok);
        let (w, ht) = (200usize, 150usize);
        let packed: Vec<u8> = (0..w * ht).map(|i| ((i * 7) % 251) as u8).collect();
        let stride = w + 24;
        let mut padded = vec![0xAAu8; stride * ht];
        for y in 0..ht {
            padded[y * stride..][..w].copy_from_slice(&packed[y * w..][..w]);
        }
        let run = |pixels: &[u8], stride: usize, seq: u64| {
            let mut mask = vec![7u8; w * ht];
            let mut r = std::mem::MaybeUninit::<SammixResult>::uninit();
            // SAFETY: buffers of the sizes passed; a live handle.
            let status = unsafe {
                sammix_process(
                    h,
                    pixels.as_ptr(),
                    w as u32,
                    ht as u32,
                    stride as u32,
                    SammixFormat::Gray8 as u32,
                    seq,
                    mask.as_mut_ptr(),
                    mask.len(),
                    r.as_mut_ptr(),
                )
            };
            assert_eq!(status, SammixStatus::Ok, "{}", error_of(h));
            // SAFETY: written on success.
            (mask, unsafe { r.assume_init() })
        };
        let (a, ra) = run(&packed, w, 1);
        let (b, rb) = run(&padded, stride, 2);
        assert_eq!(a, b);
        assert!(a.iter().all(|&v| v == 0 || v == 255));
        assert_eq!((ra.sequence, rb.sequence), (1, 2));
        assert_eq!(ra.presence, rb.presence);
        assert_eq!(ra.mask_area, a.iter().filter(|&&v| v == 255).count() as u64);
        // SAFETY: a live handle, closed once.
        unsafe { sammix_close(h) };
    }

    #[test]
    fn bad_frames_are_refused_with_a_message_and_the_handle_goes_on() {
        let mut h = std::ptr::null_mut();
        let dir = bundle();
        // SAFETY: valid pointers.
        assert_eq!(
            unsafe { sammix_open(dir.as_ptr(), &mut h, std::ptr::null_mut(), 0) },
            SammixStatus::Ok
        );
        let pixels = vec![0u8; 64 * 64 * 3];
        let mut mask = vec![0u8; 64 * 64];
        let mut r = std::mem::MaybeUninit::<SammixResult>::uninit();
        let mut call = |w: u32, ht: u32, stride: u32, format: u32, mask_len: usize| {
            // SAFETY: pixels and mask hold at least what each call says.
            unsafe {
                sammix_process(
                    h,
                    pixels.as_ptr(),
                    w,
                    ht,
                    stride,
                    format,
                    0,
                    mask.as_mut_ptr(),
                    mask_len,
                    r.as_mut_ptr(),
                )
            }
        };
        let cases = [
            ((64, 64, 63, 0, 4096), "stride"),
            ((0, 64, 64, 0, 4096), "size above 0"),
            ((64, 64, 64, 9, 4096), "format 9"),
            ((64, 64, 64, 0, 100), "mask buffer of 100 bytes"),
            ((64, 64, 100, 1, 4096), "stride of at least 192"),
        ];
        for ((w, ht, stride, format, len), words) in cases {
            assert_eq!(call(w, ht, stride, format, len), SammixStatus::Argument);
            let text = error_of(h);
            assert!(text.contains(words), "{text:?} lacks {words:?}");
        }
        assert_eq!(call(64, 64, 192, 1, 4096), SammixStatus::Ok);
        assert_eq!(error_of(h), "");
        // SAFETY: NULL handle is allowed for sammix_error and refused by process.
        unsafe {
            assert!(!sammix_error(std::ptr::null()).is_null());
            sammix_close(h);
        }
    }
}
