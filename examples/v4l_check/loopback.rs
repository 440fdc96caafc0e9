//! Checks through v4l2loopback: frames written come back exactly; a
//! writer that stops ends in a timeout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sammix::frame::{Frame, PixelFormat};
use sammix::source::v4l::{convert, FourCc, Layout, PixFormat, V4lError, V4lSource, V4lWriter};
use sammix::source::FrameSource;

use crate::common::{diff, opts, read, spec, Check, Ctx};

/// A frame to write: luma (or R=G=B) at (0,0) is `k`, the rest a pattern
/// that moves with `k`; chroma varies too. `MJPG`: that luma pattern as a
/// grayscale JPEG (quality 90), so only a decode of the same bytes matches.
fn pattern(layout: &Layout, k: u8) -> Vec<u8> {
    let (w, h, stride) = (layout.width, layout.height, layout.stride);
    if layout.format == PixFormat::Mjpeg {
        let gray = pattern(&Layout::packed(PixFormat::Grey, w, h).unwrap(), k);
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90)
            .encode(&gray, w as u16, h as u16, jpeg_encoder::ColorType::Luma)
            .expect("a JPEG of the pattern");
        return jpeg;
    }
    let mut buf = vec![0u8; layout.frame_bytes()];
    let v = |x: usize, y: usize, salt: usize| -> u8 {
        if x == 0 && y == 0 && salt == 0 {
            k
        } else {
            ((x * 7 + y * 13 + usize::from(k) * 5 + salt * 31) % 251) as u8
        }
    };
    match layout.format {
        PixFormat::Yuyv => {
            for y in 0..h {
                for x in 0..w {
                    let m = y * stride + x / 2 * 4;
                    buf[y * stride + 2 * x] = v(x, y, 0);
                    buf[m + 1] = v(x / 2, y, 1);
                    buf[m + 3] = v(x / 2, y, 2);
                }
            }
        }
        PixFormat::Grey | PixFormat::Nv12 | PixFormat::Nv12m | PixFormat::Yu12 => {
            for y in 0..h {
                for x in 0..w {
                    buf[y * stride + x] = v(x, y, 0);
                }
            }
            for (i, b) in buf[stride * h..].iter_mut().enumerate() {
                *b = (i * 3 % 256) as u8;
            }
        }
        PixFormat::Uyvy | PixFormat::Rgb24 | PixFormat::Bgr24 | PixFormat::Mjpeg => {
            for y in 0..h {
                for x in 0..w {
                    let o = y * stride + 3 * x;
                    let l = v(x, y, 0);
                    buf[o..o + 3].copy_from_slice(&[l, l, l]);
                }
            }
        }
    }
    buf
}

/// Writes frames into v4l2loopback on a thread until told to stop (or
/// `max` frames), every `every`; the first is written before `ready`.
fn writer(
    device: PathBuf,
    size: (u32, u32),
    code: [u8; 4],
    every: Duration,
    max: u8,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<Layout, String>>,
) -> std::thread::JoinHandle<Result<u8, String>> {
    std::thread::spawn(move || {
        let opened = V4lWriter::open(&device, size.0, size.1, FourCc(code)).and_then(|w| {
            let layout = w.layout().ok_or_else(|| V4lError::NotBuilt {
                device: device.clone(),
            })?;
            Ok((w, layout))
        });
        let (mut w, layout) = match opened {
            Ok(x) => x,
            Err(e) => {
                let _ = ready.send(Err(e.to_string()));
                return Err(e.to_string());
            }
        };
        let mut k = 0u8;
        w.write_frame(&pattern(&layout, k))
            .map_err(|e| e.to_string())?;
        let _ = ready.send(Ok(layout));
        while !stop.load(Ordering::Relaxed) && k < max {
            std::thread::sleep(every);
            k += 1;
            w.write_frame(&pattern(&layout, k))
                .map_err(|e| e.to_string())?;
        }
        Ok(k)
    })
}

/// Frames written into v4l2loopback come back exactly (GREY at an odd
/// width, YUYV, NV12; gray and RGB output); JPEGs (MJPG) come back decoded
/// exactly as the same bytes decode here.
pub fn exact(c: &Ctx) -> Check {
    let mut notes = Vec::new();
    let cases: [((u32, u32), &[u8; 4], PixelFormat); 7] = [
        ((175, 97), b"GREY", PixelFormat::Gray8),
        ((176, 144), b"YUYV", PixelFormat::Gray8),
        ((176, 144), b"YUYV", PixelFormat::Rgb8),
        ((176, 144), b"NV12", PixelFormat::Gray8),
        ((176, 144), b"NV12", PixelFormat::Rgb8),
        ((176, 144), b"MJPG", PixelFormat::Gray8),
        ((176, 144), b"MJPG", PixelFormat::Rgb8),
    ];
    for (size, code, output) in cases {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let t = writer(
            c.lo.clone(),
            size,
            *code,
            Duration::from_millis(60),
            200,
            stop.clone(),
            tx,
        );
        let result = (|| {
            let layout = rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|e| format!("writer: {e}"))??;
            let s = spec(&c.lo, size, code);
            let mut src = V4lSource::open(&s, opts(output)).map_err(|e| e.to_string())?;
            let colour = src.colour();
            let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
            let mut want = Frame::zeros(1, 1, PixelFormat::Gray8);
            let (mut seen, mut last_seq) = (Vec::new(), None);
            let mut next_k = 0u8;
            for _ in 0..6 {
                read(&mut src, &mut frame)?;
                // Gray: (0, 0) is k. RGB: the first k from the last one on
                // whose conversion matches (the reader may skip frames).
                // A JPEG's (0, 0) is not exactly k either.
                let candidates = match output {
                    PixelFormat::Gray8 if !layout.format.is_compressed() => {
                        frame.data()[0]..=frame.data()[0]
                    }
                    _ => next_k..=next_k.saturating_add(40),
                };
                let mut matched = None;
                let mut closest = (usize::MAX, 0, 0);
                for k in candidates {
                    convert(&pattern(&layout, k), &layout, colour, output, &mut want)
                        .map_err(|e| format!("{e:?}"))?;
                    let (n, max) = diff(frame.data(), want.data());
                    if n == 0 {
                        matched = Some(k);
                        break;
                    }
                    closest = closest.min((n, max, k));
                }
                let Some(k) = matched else {
                    let (n, max, k) = closest;
                    return Err(format!(
                        "{s} {output:?}: no frame written matches; closest k {k}: {n} bytes differ (max {max})"
                    ));
                };
                next_k = k;
                if last_seq.is_some_and(|l| frame.sequence <= l) {
                    return Err(format!(
                        "{s}: sequence {} after {last_seq:?}",
                        frame.sequence
                    ));
                }
                last_seq = Some(frame.sequence);
                seen.push((k, frame.sequence));
            }
            Ok(format!("{s} {}: frames (k, seq) {seen:?}", output.as_str()))
        })();
        stop.store(true, Ordering::Relaxed);
        let written = t.join().map_err(|_| "writer panicked".to_string())?;
        let note = result?;
        written?;
        notes.push(note);
    }
    Ok(notes.join("\n    "))
}

/// The writer stops: the reader ends with a timeout naming the device,
/// not a hang.
pub fn writer_stops(c: &Ctx) -> Check {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let size = (160, 120);
    let t = writer(
        c.lo.clone(),
        size,
        *b"GREY",
        Duration::from_millis(50),
        4,
        stop,
        tx,
    );
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("writer: {e}"))??;
    let mut o = opts(PixelFormat::Gray8);
    o.frame_timeout = Duration::from_millis(1500);
    let mut src = V4lSource::open(&spec(&c.lo, size, b"GREY"), o).map_err(|e| e.to_string())?;
    t.join().map_err(|_| "writer panicked".to_string())??;
    let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut frames = 0;
    let started = Instant::now();
    loop {
        let at = Instant::now();
        match src.next_frame(&mut frame) {
            Ok(_) if frames < 50 => frames += 1,
            Ok(_) => return Err("frames keep coming after the writer closed".into()),
            Err(e) => {
                let text = e.to_string();
                let waited = at.elapsed();
                if !text.contains(&*c.lo.to_string_lossy()) || waited > Duration::from_secs(4) {
                    return Err(format!("after {waited:?}: {text}"));
                }
                return Ok(format!(
                    "{frames} frames, then after {:.1} s: {text}",
                    started.elapsed().as_secs_f64()
                ));
            }
        }
    }
}
