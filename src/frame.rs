//! Frames in, masks out: the pixel buffers the pipeline passes around.
//!
//! A [`Frame`] is an 8-bit image, grayscale or RGB, row-major and tightly
//! packed, with the sequence number and capture time its source gave it.
//! A [`Mask`] is a binary image of the same kind of layout (0 or 1 per
//! pixel). Both own their buffer and can be refilled in place
//! ([`Frame::reset`], [`Mask::reset`]), so a warm stream reuses them instead
//! of allocating per frame.

use std::time::Instant;

/// How the bytes of a [`Frame`] are laid out per pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// One byte per pixel: luma (or the grayscale value).
    Gray8,
    /// Three bytes per pixel: R, G, B (full range, sRGB-ish).
    Rgb8,
}

impl PixelFormat {
    /// Bytes per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Gray8 => 1,
            PixelFormat::Rgb8 => 3,
        }
    }

    /// A short name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            PixelFormat::Gray8 => "gray8",
            PixelFormat::Rgb8 => "rgb8",
        }
    }
}

/// One 8-bit image with where it came from.
#[derive(Debug, Clone)]
pub struct Frame {
    width: usize,
    height: usize,
    format: PixelFormat,
    data: Vec<u8>,
    /// Position in the source's stream (0, 1, …; gaps mean dropped frames).
    pub sequence: u64,
    /// When the source handed the frame over (`None`: not captured live).
    pub captured: Option<Instant>,
}

/// A buffer whose length does not match `width × height × channels`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {width}x{height} {} frame needs {expected} bytes, got {got}", format.as_str())]
pub struct FrameSizeError {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixel format.
    pub format: PixelFormat,
    /// Bytes needed.
    pub expected: usize,
    /// Bytes given.
    pub got: usize,
}

impl Frame {
    /// A frame over `data`, which must hold exactly `width × height ×
    /// channels` bytes.
    pub fn new(
        width: usize,
        height: usize,
        format: PixelFormat,
        data: Vec<u8>,
    ) -> Result<Frame, FrameSizeError> {
        let expected = width * height * format.channels();
        if data.len() != expected || width == 0 || height == 0 {
            return Err(FrameSizeError {
                width,
                height,
                format,
                expected,
                got: data.len(),
            });
        }
        Ok(Frame {
            width,
            height,
            format,
            data,
            sequence: 0,
            captured: None,
        })
    }

    /// An all-zero frame.
    pub fn zeros(width: usize, height: usize, format: PixelFormat) -> Frame {
        Frame {
            width,
            height,
            format,
            data: vec![0; width * height * format.channels()],
            sequence: 0,
            captured: None,
        }
    }

    /// Reshapes the frame in place to `width × height × format`, keeping the
    /// buffer's capacity (no allocation when it is large enough); the pixel
    /// values are unspecified until written through [`Frame::data_mut`].
    pub fn reset(&mut self, width: usize, height: usize, format: PixelFormat) {
        self.width = width;
        self.height = height;
        self.format = format;
        self.data.resize(width * height * format.channels(), 0);
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixel format.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The pixels, row-major, `channels` bytes each.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The pixels, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The grayscale value of pixel (x, y): the byte itself for
    /// [`PixelFormat::Gray8`], BT.601 luma (0.299 R + 0.587 G + 0.114 B) for
    /// [`PixelFormat::Rgb8`]. `x < width`, `y < height`.
    pub fn luma(&self, x: usize, y: usize) -> f32 {
        let i = (y * self.width + x) * self.format.channels();
        match self.format {
            PixelFormat::Gray8 => f32::from(self.data[i]),
            PixelFormat::Rgb8 => {
                0.299 * f32::from(self.data[i])
                    + 0.587 * f32::from(self.data[i + 1])
                    + 0.114 * f32::from(self.data[i + 2])
            }
        }
    }
}

/// A binary mask: one byte per pixel, 0 (background) or 1 (target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Mask {
    /// An empty (all background) mask.
    pub fn zeros(width: usize, height: usize) -> Mask {
        Mask {
            width,
            height,
            data: vec![0; width * height],
        }
    }

    /// A mask from bytes; any non-zero byte counts as target.
    pub fn from_bytes(width: usize, height: usize, bytes: &[u8]) -> Result<Mask, FrameSizeError> {
        if bytes.len() != width * height {
            return Err(FrameSizeError {
                width,
                height,
                format: PixelFormat::Gray8,
                expected: width * height,
                got: bytes.len(),
            });
        }
        Ok(Mask {
            width,
            height,
            data: bytes.iter().map(|&b| u8::from(b != 0)).collect(),
        })
    }

    /// Reshapes in place to `width × height` and clears it, keeping capacity.
    pub fn reset(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.data.clear();
        self.data.resize(width * height, 0);
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The pixels (0 or 1), row-major.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The pixels, writable; keep them 0 or 1.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Whether pixel (x, y) is target.
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.data[y * self.width + x] != 0
    }

    /// Number of target pixels.
    pub fn area(&self) -> usize {
        self.data.iter().filter(|&&b| b != 0).count()
    }

    /// Whether no pixel is target.
    pub fn is_empty(&self) -> bool {
        self.data.iter().all(|&b| b == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_checks_its_buffer_length() {
        let err = Frame::new(4, 3, PixelFormat::Rgb8, vec![0; 35]).unwrap_err();
        assert_eq!(err.expected, 36);
        assert_eq!(err.to_string(), "a 4x3 rgb8 frame needs 36 bytes, got 35");
        assert!(Frame::new(0, 3, PixelFormat::Gray8, vec![]).is_err());
        assert!(Frame::new(4, 3, PixelFormat::Gray8, vec![0; 12]).is_ok());
    }

    #[test]
    fn luma_of_rgb_is_bt601() {
        let f = Frame::new(2, 1, PixelFormat::Rgb8, vec![255, 0, 0, 10, 20, 30]).unwrap();
        assert!((f.luma(0, 0) - 76.245).abs() < 1e-3);
        assert!((f.luma(1, 0) - (2.99 + 11.74 + 3.42)).abs() < 1e-3);
    }

    #[test]
    fn reset_keeps_capacity() {
        let mut f = Frame::zeros(8, 8, PixelFormat::Rgb8);
        let cap = f.data.capacity();
        f.reset(4, 4, PixelFormat::Gray8);
        assert_eq!(f.data().len(), 16);
        assert_eq!(f.data.capacity(), cap);
        let mut m = Mask::from_bytes(2, 2, &[0, 7, 0, 1]).unwrap();
        assert_eq!(m.data(), &[0, 1, 0, 1]);
        assert_eq!(m.area(), 2);
        m.reset(2, 2);
        assert!(m.is_empty());
    }
}
