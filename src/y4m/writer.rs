//! Writing a `.y4m` stream: `mono`, `444` or `420jpeg`, full range.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::convert::{chroma, luma};
use super::{Colorspace, Y4mError, MAX_DIMENSION, WRITABLE};
use crate::frame::{Frame, PixelFormat};

/// A YUV4MPEG2 writer over a buffered file (or any writer).
///
/// The header is written when the writer is made; call
/// [`Y4mWriter::finish`] at the end to flush and see the last errors.
#[derive(Debug)]
pub struct Y4mWriter<W: Write = BufWriter<File>> {
    inner: W,
    path: PathBuf,
    width: usize,
    height: usize,
    colorspace: Colorspace,
    frames_written: u64,
    /// The planes of the frame being written, reused.
    planes: Vec<u8>,
}

impl Y4mWriter<BufWriter<File>> {
    /// Creates (or truncates) a file and writes the stream header. The
    /// parameters are checked before the file is touched.
    pub fn create(
        path: impl AsRef<Path>,
        width: usize,
        height: usize,
        frame_rate: (u32, u32),
        colorspace: Colorspace,
    ) -> Result<Self, Y4mError> {
        let path = path.as_ref();
        check(path, width, height, frame_rate, colorspace)?;
        let file = File::create(path).map_err(|source| Y4mError::Write {
            path: path.to_owned(),
            io: source,
        })?;
        Y4mWriter::new(
            BufWriter::new(file),
            path,
            width,
            height,
            frame_rate,
            colorspace,
        )
    }
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the stream header to `inner`; `path` names the stream in
    /// error messages. `colorspace` is `mono`, `444` or `420jpeg`; the
    /// frame rate is (numerator, denominator), both positive.
    pub fn new(
        mut inner: W,
        path: impl Into<PathBuf>,
        width: usize,
        height: usize,
        frame_rate: (u32, u32),
        colorspace: Colorspace,
    ) -> Result<Self, Y4mError> {
        let path = path.into();
        check(&path, width, height, frame_rate, colorspace)?;
        let (num, den) = frame_rate;
        let header = format!(
            "YUV4MPEG2 W{width} H{height} F{num}:{den} Ip A1:1 C{} XCOLORRANGE=FULL\n",
            colorspace.tag()
        );
        inner
            .write_all(header.as_bytes())
            .map_err(|source| Y4mError::Write {
                path: path.clone(),
                io: source,
            })?;
        Ok(Y4mWriter {
            inner,
            path,
            width,
            height,
            colorspace,
            frames_written: 0,
            planes: Vec::new(),
        })
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Writes one frame, which must have the stream's size. A Gray8 frame
    /// is the Y plane (chroma 128); an Rgb8 frame is converted with BT.601,
    /// full range (for `mono`, its luma only).
    pub fn write_frame(&mut self, frame: &Frame) -> Result<(), Y4mError> {
        let index = self.frames_written;
        if (frame.width(), frame.height()) != (self.width, self.height) {
            return Err(Y4mError::FrameSize {
                path: self.path.clone(),
                index,
                width: frame.width(),
                height: frame.height(),
                expected_width: self.width,
                expected_height: self.height,
            });
        }
        let planes: &[u8] = match (frame.format(), self.colorspace) {
            (PixelFormat::Gray8, Colorspace::Mono) => frame.data(),
            _ => {
                self.convert(frame);
                &self.planes
            }
        };
        let result = self
            .inner
            .write_all(b"FRAME\n")
            .and_then(|()| self.inner.write_all(planes));
        result.map_err(|source| Y4mError::Write {
            path: self.path.clone(),
            io: source,
        })?;
        self.frames_written += 1;
        Ok(())
    }

    /// Flushes and hands back the inner writer.
    pub fn finish(mut self) -> Result<W, Y4mError> {
        self.inner.flush().map_err(|source| Y4mError::Write {
            path: self.path.clone(),
            io: source,
        })?;
        Ok(self.inner)
    }

    /// Fills `self.planes` with the frame's planes.
    fn convert(&mut self, frame: &Frame) {
        let (w, h) = (self.width, self.height);
        let n = w * h;
        let len = self.colorspace.frame_len(w, h).unwrap_or(n);
        self.planes.resize(len, 128);
        let (y_plane, chroma_planes) = self.planes.split_at_mut(n);
        let data = frame.data();
        match frame.format() {
            PixelFormat::Gray8 => {
                y_plane.copy_from_slice(data);
                chroma_planes.fill(128);
                return;
            }
            PixelFormat::Rgb8 => {
                for (y, px) in y_plane.iter_mut().zip(data.chunks_exact(3)) {
                    *y = luma(px[0], px[1], px[2]);
                }
            }
        }
        let Some((cw, ch)) = self.colorspace.chroma_size(w, h) else {
            return;
        };
        let (sx, sy) = self.colorspace.chroma_shift().unwrap_or((0, 0));
        let (cb_plane, cr_plane) = chroma_planes.split_at_mut(cw * ch);
        for cy in 0..ch {
            for cx in 0..cw {
                // The block of pixels this chroma sample covers.
                let (x0, y0) = (cx << sx, cy << sy);
                let (x1, y1) = ((x0 + (1 << sx)).min(w), (y0 + (1 << sy)).min(h));
                let (mut r, mut g, mut b, mut count) = (0u32, 0u32, 0u32, 0u32);
                for y in y0..y1 {
                    let row = &data[(y * w + x0) * 3..(y * w + x1) * 3];
                    for px in row.chunks_exact(3) {
                        r += u32::from(px[0]);
                        g += u32::from(px[1]);
                        b += u32::from(px[2]);
                        count += 1;
                    }
                }
                let (cb, cr) = chroma(r, g, b, count);
                cb_plane[cy * cw + cx] = cb;
                cr_plane[cy * cw + cx] = cr;
            }
        }
    }
}

/// Checks the writer's parameters.
fn check(
    path: &Path,
    width: usize,
    height: usize,
    (num, den): (u32, u32),
    colorspace: Colorspace,
) -> Result<(), Y4mError> {
    let invalid = |problem: String| Y4mError::InvalidParameters {
        path: path.to_owned(),
        problem,
    };
    if !(1..=MAX_DIMENSION).contains(&width) || !(1..=MAX_DIMENSION).contains(&height) {
        return Err(invalid(format!(
            "frame size {width}x{height}: expected 1 to {MAX_DIMENSION} pixels a side"
        )));
    }
    if num == 0 || den == 0 {
        return Err(invalid(format!(
            "frame rate {num}:{den}: expected a positive numerator and denominator"
        )));
    }
    if !matches!(
        colorspace,
        Colorspace::Mono | Colorspace::Yuv444 | Colorspace::Yuv420Jpeg
    ) {
        return Err(Y4mError::Unsupported {
            path: path.to_owned(),
            colorspace: colorspace.tag().to_owned(),
            supported: WRITABLE,
        });
    }
    Ok(())
}
