//! Pixel formats a V4L2 device hands over and how their bytes are laid out.

use std::fmt;

/// A V4L2 four-character code (`YUYV`, `NV12`, `GREY`, `RGB3`, …), as the
/// device reports it (`v4l2_pix_format.pixelformat`, little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    /// The code of a V4L2 `u32` pixel format.
    pub fn from_u32(code: u32) -> FourCc {
        FourCc(code.to_le_bytes())
    }

    /// The V4L2 `u32` pixel format.
    pub fn to_u32(self) -> u32 {
        u32::from_le_bytes(self.0)
    }

    /// Parses a code a user typed: the V4L2 code itself (`YUYV`, `RGB3`,
    /// shorter ones padded with spaces) or a common alias (`I420` → `YU12`,
    /// `RGB24` → `RGB3`, `BGR24` → `BGR3`, `GRAY`/`Y8` → `GREY`, `MJPEG` →
    /// `MJPG`, `YUY2` → `YUYV`), aliases in any case.
    pub fn parse(text: &str) -> Option<FourCc> {
        let alias = match text.to_ascii_uppercase().as_str() {
            "YUYV" | "YUY2" => Some(*b"YUYV"),
            "UYVY" => Some(*b"UYVY"),
            "NV12" => Some(*b"NV12"),
            "NM12" | "NV12M" => Some(*b"NM12"),
            "YU12" | "I420" | "YUV420" => Some(*b"YU12"),
            "GREY" | "GRAY" | "Y8" | "Y800" => Some(*b"GREY"),
            "RGB3" | "RGB24" => Some(*b"RGB3"),
            "BGR3" | "BGR24" => Some(*b"BGR3"),
            "MJPG" | "MJPEG" => Some(*b"MJPG"),
            _ => None,
        };
        if let Some(code) = alias {
            return Some(FourCc(code));
        }
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > 4 || !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return None;
        }
        let mut code = [b' '; 4];
        code[..bytes.len()].copy_from_slice(bytes);
        Some(FourCc(code))
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// The pixel formats this source converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixFormat {
    /// Packed 4:2:2 `Y0 Cb Y1 Cr` (`YUYV`).
    Yuyv,
    /// Packed 4:2:2 `Cb Y0 Cr Y1` (`UYVY`).
    Uyvy,
    /// 4:2:0, a Y plane then one plane of interleaved `Cb Cr` (`NV12`).
    Nv12,
    /// `NV12` with its two planes in two buffers (`NM12`, also called
    /// NV12M; the multi-planar API of SoC capture interfaces only).
    Nv12m,
    /// 4:2:0, Y, Cb and Cr planes (`YU12`, also called I420).
    Yu12,
    /// Luma only (`GREY`).
    Grey,
    /// Packed `R G B` (`RGB3`).
    Rgb24,
    /// Packed `B G R` (`BGR3`).
    Bgr24,
    /// Motion JPEG (`MJPG`): each buffer one JPEG of `bytesused` bytes,
    /// decoded on capture (USB cameras and grabbers at HD sizes).
    Mjpeg,
}

impl PixFormat {
    /// Every supported format, in the order tried when the spec names none
    /// and the device's current format is not one of them.
    /// Uncompressed ones first: they cost no decoding.
    pub const ALL: [PixFormat; 9] = [
        PixFormat::Grey,
        PixFormat::Yuyv,
        PixFormat::Uyvy,
        PixFormat::Nv12,
        PixFormat::Nv12m,
        PixFormat::Yu12,
        PixFormat::Rgb24,
        PixFormat::Bgr24,
        PixFormat::Mjpeg,
    ];

    /// The format of a code, if supported.
    pub fn from_fourcc(code: FourCc) -> Option<PixFormat> {
        PixFormat::ALL.into_iter().find(|f| f.fourcc() == code)
    }

    /// The V4L2 code.
    pub fn fourcc(self) -> FourCc {
        FourCc(match self {
            PixFormat::Yuyv => *b"YUYV",
            PixFormat::Uyvy => *b"UYVY",
            PixFormat::Nv12 => *b"NV12",
            PixFormat::Nv12m => *b"NM12",
            PixFormat::Yu12 => *b"YU12",
            PixFormat::Grey => *b"GREY",
            PixFormat::Rgb24 => *b"RGB3",
            PixFormat::Bgr24 => *b"BGR3",
            PixFormat::Mjpeg => *b"MJPG",
        })
    }

    /// Whether a frame's size varies (a JPEG): no rows or stride to check.
    pub fn is_compressed(self) -> bool {
        self == PixFormat::Mjpeg
    }

    /// Buffers (V4L2 planes) one frame comes in: 2 for `NM12`, else 1.
    pub fn buffers(self) -> usize {
        if self == PixFormat::Nv12m {
            2
        } else {
            1
        }
    }

    /// Whether the samples are R, G, B (else Y, Cb, Cr or Y only).
    pub fn is_rgb(self) -> bool {
        matches!(self, PixFormat::Rgb24 | PixFormat::Bgr24)
    }

    /// The smallest `bytesperline` of the first plane for `width` pixels.
    pub fn min_stride(self, width: usize) -> usize {
        match self {
            // A macropixel (4 bytes) covers two pixels; an odd width still
            // needs the whole last one.
            PixFormat::Yuyv | PixFormat::Uyvy => width.div_ceil(2) * 4,
            // The interleaved chroma rows share the luma stride.
            PixFormat::Nv12 | PixFormat::Nv12m => width.div_ceil(2) * 2,
            PixFormat::Yu12 | PixFormat::Grey => width,
            PixFormat::Rgb24 | PixFormat::Bgr24 => width * 3,
            PixFormat::Mjpeg => 0,
        }
    }
}

/// Where the samples of one frame lie in a capture buffer.
///
/// Planes follow one another without padding between them (single-planar
/// V4L2 formats; `NM12` has the same two planes in two buffers, both of
/// `stride` bytes a row): `NV12` has `stride × height` bytes of luma, then
/// `ceil(height / 2)` rows of `stride` bytes of `Cb Cr` pairs; `YU12` has
/// the luma plane, then the Cb and Cr planes, each `ceil(height / 2)` rows
/// of `ceil(stride / 2)` bytes (the V4L2 rule: chroma `bytesperline` is
/// half the luma one). Chroma covers 2×2 (4:2:0) or 2×1 (4:2:2) pixels;
/// at an odd width or height the last chroma sample covers the last pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The pixel format.
    pub format: PixFormat,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes from one row of the first plane to the next.
    pub stride: usize,
}

impl Layout {
    /// The layout of a `width × height` frame whose first plane has
    /// `bytesperline` bytes a row (0: the tightest the format allows).
    /// Errors say what is wrong: an empty frame or a stride too short.
    pub fn new(
        format: PixFormat,
        width: usize,
        height: usize,
        bytesperline: usize,
    ) -> Result<Layout, String> {
        if width == 0 || height == 0 {
            return Err(format!("an empty {width}x{height} frame"));
        }
        let min = format.min_stride(width);
        let stride = if bytesperline == 0 { min } else { bytesperline };
        if stride < min {
            return Err(format!(
                "{} at width {width} needs at least {min} bytes a row, the device says {stride}",
                format.fourcc()
            ));
        }
        Ok(Layout {
            format,
            width,
            height,
            stride,
        })
    }

    /// The tightest layout (no row padding).
    pub fn packed(format: PixFormat, width: usize, height: usize) -> Result<Layout, String> {
        Layout::new(format, width, height, 0)
    }

    /// Bytes per row of each chroma plane of `YU12` (half the luma stride,
    /// rounded up).
    pub fn chroma_stride(&self) -> usize {
        self.stride.div_ceil(2)
    }

    /// Rows of a 4:2:0 chroma plane.
    pub fn chroma_rows(&self) -> usize {
        self.height.div_ceil(2)
    }

    /// Bytes of the luma plane.
    pub fn luma_bytes(&self) -> usize {
        self.stride * self.height
    }

    /// Bytes one frame needs (0 for a compressed format: its size varies),
    /// all its planes together.
    pub fn frame_bytes(&self) -> usize {
        let luma = self.luma_bytes();
        match self.format {
            PixFormat::Mjpeg => 0,
            PixFormat::Nv12 | PixFormat::Nv12m => luma + self.stride * self.chroma_rows(),
            PixFormat::Yu12 => luma + 2 * self.chroma_stride() * self.chroma_rows(),
            _ => luma,
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.format.is_compressed() {
            return write!(f, "{}x{} {}", self.width, self.height, self.format.fourcc());
        }
        write!(
            f,
            "{}x{} {} ({} bytes a row)",
            self.width,
            self.height,
            self.format.fourcc(),
            self.stride
        )
    }
}
