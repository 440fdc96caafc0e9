//! PNG files in and out: input frames, reference masks, output masks.
//!
//! Reading accepts every PNG colour type and bit depth and returns the 8-bit
//! buffers the pipeline uses ([`Frame`], [`Mask`]):
//!
//! - grayscale and grayscale+alpha become [`PixelFormat::Gray8`]; RGB, RGBA
//!   and palette images become [`PixelFormat::Rgb8`], except a palette whose
//!   entries are all gray (R = G = B), which becomes `Gray8`;
//! - alpha (an alpha channel or a `tRNS` chunk) is dropped, not composited;
//! - 1, 2 and 4-bit samples are scaled to 8 bits (1 → 255), palettes
//!   expanded (the png crate's `EXPAND`);
//! - 16-bit samples keep their high byte, `v >> 8`, truncating (the png
//!   crate's `STRIP_16`), so 0xFFFF → 255 and 0x00FF → 0.
//!
//! [`read_mask`] does not strip 16-bit samples: a 16-bit label map whose
//! target pixels hold 1 still reads as target.
//!
//! Writing produces 8-bit grayscale or RGB PNGs. A malformed, truncated or
//! oversized file is an [`ImageError`] naming the file, never a panic.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};

use png::{BitDepth, ColorType, Transformations};

use crate::frame::{Frame, Mask, PixelFormat};

/// The largest image read or written, in pixels (`width × height`): 16 Mpx,
/// 4096 × 4096. It bounds what a corrupt header can make the reader
/// allocate (at most 8 bytes per pixel, RGBA 16-bit, in [`read_mask`]).
pub const MAX_PIXELS: usize = 1 << 24;

/// An error reading or writing a PNG file. Every message starts with the
/// file's path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be opened or read.
    #[error("{}: cannot read: {io}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        io: io::Error,
    },
    /// The file could not be created or written.
    #[error("{}: cannot write: {io}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error (or the encoder's, wrapped).
        io: io::Error,
    },
    /// The file is not a valid PNG: wrong signature, corrupt or truncated.
    #[error("{}: not a valid PNG ({message}): expected a complete PNG file", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the png decoder said.
        message: String,
    },
    /// A valid PNG (or a request) that this module does not handle: an
    /// image over [`MAX_PIXELS`], or one with no pixels to write.
    #[error("{}: unsupported image: {what}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported and what was expected.
        what: String,
    },
    /// Pixel data whose length does not match the size given.
    #[error(
        "{}: a {width}x{height} image with {channels} byte(s) per pixel needs {expected} bytes, got {got}",
        path.display()
    )]
    SizeMismatch {
        /// The file.
        path: PathBuf,
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Bytes per pixel.
        channels: usize,
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

/// Reads a PNG as a frame (see the module documentation for the
/// conversions). The frame's `sequence` is 0 and `captured` is `None`.
pub fn read_frame(path: &Path) -> Result<Frame, ImageError> {
    let mut frame = Frame::zeros(0, 0, PixelFormat::Gray8);
    read_frame_into(path, &mut frame)?;
    Ok(frame)
}

/// Reads a PNG into an existing frame, reshaping it with [`Frame::reset`]
/// (no allocation when its buffer is large enough, except for images with
/// alpha or a gray palette, which decode through a temporary buffer).
/// `sequence` and `captured` are left as they are. On error the frame's
/// size and pixels are unspecified.
pub fn read_frame_into(path: &Path, frame: &mut Frame) -> Result<(), ImageError> {
    let mut reader = open(path, Transformations::EXPAND | Transformations::STRIP_16)?;
    let (width, height) = checked_size(path, reader.info())?;
    let gray_palette = is_gray_palette(reader.info());
    let (color, _) = reader.output_color_type();
    // After EXPAND and STRIP_16 every sample is 8 bits and there is no
    // palette left: `color` is one of the four types below.
    let (format, direct) = match color {
        ColorType::Grayscale => (PixelFormat::Gray8, true),
        ColorType::Rgb => (
            if gray_palette {
                PixelFormat::Gray8
            } else {
                PixelFormat::Rgb8
            },
            !gray_palette,
        ),
        ColorType::GrayscaleAlpha => (PixelFormat::Gray8, false),
        ColorType::Rgba | ColorType::Indexed => (
            if gray_palette {
                PixelFormat::Gray8
            } else {
                PixelFormat::Rgb8
            },
            false,
        ),
    };
    if direct {
        frame.reset(width, height, format);
        return next_frame(path, &mut reader, frame.data_mut());
    }
    let mut decoded = Vec::new();
    decode(path, &mut reader, &mut decoded)?;
    let step = color.samples();
    frame.reset(width, height, format);
    let keep = format.channels();
    for (out, px) in frame
        .data_mut()
        .chunks_exact_mut(keep)
        .zip(decoded.chunks_exact(step))
    {
        // Keeps the colour samples, drops alpha (`step > keep`).
        for (o, &p) in out.iter_mut().zip(px) {
            *o = p;
        }
    }
    Ok(())
}

/// Reads a PNG as a binary mask: a pixel is target when its value (the gray
/// sample, or any of R, G, B after palette expansion) is non-zero, at full
/// bit depth; alpha is ignored.
pub fn read_mask(path: &Path) -> Result<Mask, ImageError> {
    let mut reader = open(path, Transformations::EXPAND)?;
    let (width, height) = checked_size(path, reader.info())?;
    let (color, depth) = reader.output_color_type();
    let mut decoded = Vec::new();
    decode(path, &mut reader, &mut decoded)?;
    let sample_bytes = if depth == BitDepth::Sixteen { 2 } else { 1 };
    let pixel_bytes = color.samples() * sample_bytes;
    let value_bytes = match color {
        ColorType::Grayscale | ColorType::GrayscaleAlpha => 1,
        _ => 3,
    } * sample_bytes;
    let mut mask = Mask::zeros(width, height);
    for (out, px) in mask
        .data_mut()
        .iter_mut()
        .zip(decoded.chunks_exact(pixel_bytes))
    {
        *out = u8::from(px.iter().take(value_bytes).any(|&b| b != 0));
    }
    Ok(mask)
}

/// Writes `width × height` gray bytes, row-major, as an 8-bit grayscale PNG.
pub fn write_gray_png(
    path: &Path,
    width: usize,
    height: usize,
    data: &[u8],
) -> Result<(), ImageError> {
    write_png(path, width, height, ColorType::Grayscale, data)
}

/// Writes a mask as an 8-bit grayscale PNG: background 0, target 255.
pub fn write_mask_png(path: &Path, mask: &Mask) -> Result<(), ImageError> {
    let data: Vec<u8> = mask
        .data()
        .iter()
        .map(|&b| if b != 0 { 255 } else { 0 })
        .collect();
    write_png(
        path,
        mask.width(),
        mask.height(),
        ColorType::Grayscale,
        &data,
    )
}

/// Writes a frame as an 8-bit PNG, grayscale or RGB as the frame is.
pub fn write_frame_png(path: &Path, frame: &Frame) -> Result<(), ImageError> {
    let color = match frame.format() {
        PixelFormat::Gray8 => ColorType::Grayscale,
        PixelFormat::Rgb8 => ColorType::Rgb,
    };
    write_png(path, frame.width(), frame.height(), color, frame.data())
}

/// Opens `path` and reads the PNG header with `transformations` set.
fn open(
    path: &Path,
    transformations: Transformations,
) -> Result<png::Reader<BufReader<File>>, ImageError> {
    let file = File::open(path).map_err(|source| ImageError::Read {
        path: path.to_owned(),
        io: source,
    })?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(transformations);
    decoder.read_info().map_err(|e| decode_error(path, e))
}

/// The image size, refused above [`MAX_PIXELS`].
fn checked_size(path: &Path, info: &png::Info<'_>) -> Result<(usize, usize), ImageError> {
    let (w, h) = info.size();
    let too_large = || ImageError::Unsupported {
        path: path.to_owned(),
        what: format!("{w}x{h} pixels: expected at most {MAX_PIXELS} pixels"),
    };
    let width = usize::try_from(w).map_err(|_| too_large())?;
    let height = usize::try_from(h).map_err(|_| too_large())?;
    match width.checked_mul(height) {
        Some(n) if n <= MAX_PIXELS => Ok((width, height)),
        _ => Err(too_large()),
    }
}

/// Whether the image is a palette image whose entries are all gray.
fn is_gray_palette(info: &png::Info<'_>) -> bool {
    info.color_type == ColorType::Indexed
        && info
            .palette
            .as_deref()
            .is_some_and(|p| p.chunks_exact(3).all(|c| c[0] == c[1] && c[1] == c[2]))
}

/// Decodes the (first) image into `buf`, resized to fit.
fn decode(
    path: &Path,
    reader: &mut png::Reader<BufReader<File>>,
    buf: &mut Vec<u8>,
) -> Result<(), ImageError> {
    let len = reader
        .output_buffer_size()
        .ok_or_else(|| ImageError::Unsupported {
            path: path.to_owned(),
            what: "an image too large for this machine's address space".to_owned(),
        })?;
    buf.resize(len, 0);
    next_frame(path, reader, buf)
}

/// Decodes the (first) image into `buf`, which holds exactly one image.
fn next_frame(
    path: &Path,
    reader: &mut png::Reader<BufReader<File>>,
    buf: &mut [u8],
) -> Result<(), ImageError> {
    reader
        .next_frame(buf)
        .map(|_| ())
        .map_err(|e| decode_error(path, e))
}

/// Maps a png decoding error: I/O errors other than an early end of file
/// stay I/O errors, the rest say the file is not a valid PNG.
fn decode_error(path: &Path, e: png::DecodingError) -> ImageError {
    match e {
        png::DecodingError::IoError(source) if source.kind() != io::ErrorKind::UnexpectedEof => {
            ImageError::Read {
                path: path.to_owned(),
                io: source,
            }
        }
        png::DecodingError::IoError(_) => ImageError::Decode {
            path: path.to_owned(),
            message: "the file ends early (empty or truncated)".to_owned(),
        },
        png::DecodingError::LimitsExceeded => ImageError::Unsupported {
            path: path.to_owned(),
            what: "the decoder's memory limit is exceeded: expected a smaller image".to_owned(),
        },
        other => ImageError::Decode {
            path: path.to_owned(),
            message: other.to_string(),
        },
    }
}

/// Writes an 8-bit PNG of `color` (gray or RGB).
fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    color: ColorType,
    data: &[u8],
) -> Result<(), ImageError> {
    let channels = color.samples();
    let pixels = width.checked_mul(height);
    let (w, h) = match (u32::try_from(width), u32::try_from(height), pixels) {
        (Ok(w), Ok(h), Some(n)) if w > 0 && h > 0 && n <= MAX_PIXELS => (w, h),
        _ => {
            return Err(ImageError::Unsupported {
                path: path.to_owned(),
                what: format!("{width}x{height} pixels: expected 1 to {MAX_PIXELS} pixels"),
            })
        }
    };
    let expected = pixels.unwrap_or(0) * channels;
    if data.len() != expected {
        return Err(ImageError::SizeMismatch {
            path: path.to_owned(),
            width,
            height,
            channels,
            expected,
            got: data.len(),
        });
    }
    let write_error = |e: png::EncodingError| ImageError::Write {
        path: path.to_owned(),
        io: match e {
            png::EncodingError::IoError(e) => e,
            other => io::Error::other(other.to_string()),
        },
    };
    let file = File::create(path).map_err(|source| ImageError::Write {
        path: path.to_owned(),
        io: source,
    })?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), w, h);
    encoder.set_color(color);
    encoder.set_depth(BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(write_error)?;
    writer.write_image_data(data).map_err(write_error)?;
    writer.finish().map_err(write_error)
}

#[cfg(test)]
mod tests;
