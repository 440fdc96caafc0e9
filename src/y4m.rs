//! YUV4MPEG2 (`.y4m`) clips: a reader and a writer, no external crate.
//!
//! A `.y4m` file is one text line, the stream header
//! (`YUV4MPEG2 W256 H256 F25:1 Ip A1:1 Cmono`), then per frame a line
//! `FRAME` (optionally followed by parameters) and the raw planes: Y, then
//! Cb and Cr when the colorspace has chroma, 8 bits a sample, row-major.
//!
//! Reading ([`Y4mReader`]):
//!
//! - header tags come in any order; `W` and `H` are required, `F` defaults
//!   to 25:1 (`F0:0`, "unknown", too), `C` to `420jpeg`; `I`, `A` and other
//!   `X` tags are accepted and ignored, as are frame parameters;
//! - 8-bit colorspaces only ([`Colorspace`]); `mono16`, `420p10` and the
//!   like are an [`Y4mError::Unsupported`] error;
//! - [`PixelFormat::Gray8`] output is the Y plane, byte for byte, whatever
//!   the range: that is what the models are trained on;
//! - [`PixelFormat::Rgb8`] output is BT.601 YCbCr → RGB, limited range
//!   (Y 16..235, C 16..240) unless the header says `XCOLORRANGE=FULL`,
//!   rounded to nearest and clamped; chroma is upsampled by nearest
//!   neighbour (each chroma sample covers its 2×2, 2×1 block), ignoring the
//!   chroma siting that tells `420jpeg`, `420mpeg2` and `420paldv` apart;
//! - a frame is read into buffers the reader keeps, so a warm reader
//!   allocates nothing per frame; a truncated frame, a bad `FRAME` line or
//!   an overlong header line is an error naming the file and frame.
//!
//! Writing ([`Y4mWriter`]) supports `mono`, `444` and `420jpeg`, always
//! full range (BT.601, `XCOLORRANGE=FULL` in the header): a Gray8 frame is
//! the Y plane (chroma 128), an Rgb8 frame is converted (and, for
//! `420jpeg`, its chroma averaged over each 2×2 block).
//!
//! [`PixelFormat::Gray8`]: crate::frame::PixelFormat::Gray8
//! [`PixelFormat::Rgb8`]: crate::frame::PixelFormat::Rgb8

use std::fmt;

mod convert;
mod error;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use error::Y4mError;
pub use reader::Y4mReader;
pub use writer::Y4mWriter;

/// The longest header line (stream or frame) read, newline included, so a
/// garbage file cannot make the reader buffer without bound.
pub const MAX_LINE: usize = 1024;

/// The largest width or height accepted, in pixels.
pub const MAX_DIMENSION: usize = 32768;

/// The frame rate when the header has no `F` tag (or `F0:0`).
pub const DEFAULT_FRAME_RATE: (u32, u32) = (25, 1);

/// The colorspaces the reader supports, as the `C` tag writes them.
pub const SUPPORTED: &str = "mono, 420jpeg, 420paldv, 420mpeg2, 420, 422, 444";

/// The colorspaces the writer supports.
pub const WRITABLE: &str = "mono, 444, 420jpeg";

/// The layout of a frame's planes (the header's `C` tag), 8 bits a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colorspace {
    /// Y only.
    Mono,
    /// 4:2:0, chroma centred (JPEG, MPEG-1); the default.
    Yuv420Jpeg,
    /// 4:2:0, PAL DV siting.
    Yuv420Paldv,
    /// 4:2:0, chroma left-cosited (MPEG-2).
    Yuv420Mpeg2,
    /// 4:2:0, co-sited (`C420`).
    Yuv420,
    /// 4:2:2: chroma halved horizontally.
    Yuv422,
    /// 4:4:4: full-resolution chroma.
    Yuv444,
}

impl Colorspace {
    /// Every supported colorspace.
    pub const ALL: [Colorspace; 7] = [
        Colorspace::Mono,
        Colorspace::Yuv420Jpeg,
        Colorspace::Yuv420Paldv,
        Colorspace::Yuv420Mpeg2,
        Colorspace::Yuv420,
        Colorspace::Yuv422,
        Colorspace::Yuv444,
    ];

    /// The `C` tag's value: `mono`, `420jpeg`, …
    pub fn tag(self) -> &'static str {
        match self {
            Colorspace::Mono => "mono",
            Colorspace::Yuv420Jpeg => "420jpeg",
            Colorspace::Yuv420Paldv => "420paldv",
            Colorspace::Yuv420Mpeg2 => "420mpeg2",
            Colorspace::Yuv420 => "420",
            Colorspace::Yuv422 => "422",
            Colorspace::Yuv444 => "444",
        }
    }

    /// The colorspace a `C` tag's value names, if supported.
    pub fn from_tag(tag: &str) -> Option<Colorspace> {
        Colorspace::ALL.into_iter().find(|c| c.tag() == tag)
    }

    /// How chroma is subsampled, as right shifts of (x, y): (1, 1) for
    /// 4:2:0, (1, 0) for 4:2:2, (0, 0) for 4:4:4; `None` without chroma.
    pub fn chroma_shift(self) -> Option<(u32, u32)> {
        match self {
            Colorspace::Mono => None,
            Colorspace::Yuv422 => Some((1, 0)),
            Colorspace::Yuv444 => Some((0, 0)),
            _ => Some((1, 1)),
        }
    }

    /// The size of one chroma plane of a `width × height` frame (rounded
    /// up), or `None` without chroma.
    pub fn chroma_size(self, width: usize, height: usize) -> Option<(usize, usize)> {
        self.chroma_shift()
            .map(|(sx, sy)| (width.div_ceil(1 << sx), height.div_ceil(1 << sy)))
    }

    /// Bytes of pixels in one `width × height` frame (all planes), or `None`
    /// when that overflows `usize`.
    pub fn frame_len(self, width: usize, height: usize) -> Option<usize> {
        let luma = width.checked_mul(height)?;
        match self.chroma_size(width, height) {
            None => Some(luma),
            Some((cw, ch)) => cw.checked_mul(ch)?.checked_mul(2)?.checked_add(luma),
        }
    }
}

impl fmt::Display for Colorspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// The range of Y and chroma codes (the header's `XCOLORRANGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColorRange {
    /// "Studio" range: Y 16..=235, chroma 16..=240 (the default).
    Limited,
    /// Full range: 0..=255 (`XCOLORRANGE=FULL`).
    Full,
}
