//! Capture buffers to [`Frame`]s: the Y plane as gray, or YCbCr → RGB with
//! the device's matrix and range, in 16.16 fixed point.

use crate::frame::{Frame, PixelFormat};

use super::layout::{Layout, PixFormat};

/// The YCbCr → RGB matrix (`v4l2_pix_format.ycbcr_enc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    /// ITU-R BT.601 (SDTV, JPEG, sRGB's default); also xvYCC 601.
    Bt601,
    /// ITU-R BT.709 (HDTV); also xvYCC 709.
    Bt709,
    /// ITU-R BT.2020, non-constant luminance (the constant-luminance
    /// variant is approximated by it).
    Bt2020,
    /// SMPTE 240M.
    Smpte240m,
}

impl Matrix {
    /// (Kr, Kb) of the matrix.
    fn kr_kb(self) -> (f64, f64) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
            Matrix::Bt2020 => (0.2627, 0.0593),
            Matrix::Smpte240m => (0.212, 0.087),
        }
    }
}

/// Quantization: which codes span black to white.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Y 16..235, Cb/Cr 16..240 (R, G, B 16..235 for RGB formats).
    Limited,
    /// 0..255.
    Full,
}

/// How a device's samples map to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour {
    /// YCbCr → RGB matrix (not used for RGB formats).
    pub matrix: Matrix,
    /// Quantization range.
    pub range: Range,
}

// `enum v4l2_colorspace`, `enum v4l2_ycbcr_encoding`, `enum v4l2_quantization`.
const COLORSPACE_SMPTE240M: u32 = 2;
const COLORSPACE_REC709: u32 = 3;
const COLORSPACE_JPEG: u32 = 7;
const COLORSPACE_BT2020: u32 = 10;
const COLORSPACE_DCI_P3: u32 = 12;
const YCBCR_ENC_709: u32 = 2;
const YCBCR_ENC_XV709: u32 = 4;
const YCBCR_ENC_BT2020: u32 = 6;
const YCBCR_ENC_BT2020_CONST_LUM: u32 = 7;
const YCBCR_ENC_SMPTE240M: u32 = 8;
const QUANTIZATION_FULL: u32 = 1;
const QUANTIZATION_LIMITED: u32 = 2;

impl Colour {
    /// What a device's format fields mean for frames in `format`, with the
    /// kernel's rules for the `DEFAULT` values (`V4L2_MAP_YCBCR_ENC_DEFAULT`,
    /// `V4L2_MAP_QUANTIZATION_DEFAULT`): the matrix follows the colorspace
    /// (Rec. 709 and DCI-P3 → BT.709, BT.2020 → BT.2020, SMPTE 240M → 240M,
    /// else BT.601); YCbCr formats are limited range unless the colorspace
    /// is JPEG, RGB formats full range unless BT.2020. Luma-only `GREY`
    /// defaults to full range, as vivid (the kernel's reference driver)
    /// generates it.
    pub fn from_v4l2(
        colorspace: u32,
        ycbcr_enc: u32,
        quantization: u32,
        format: PixFormat,
    ) -> Colour {
        let is_rgb = format.is_rgb();
        let enc = if ycbcr_enc == 0 {
            match colorspace {
                COLORSPACE_REC709 | COLORSPACE_DCI_P3 => YCBCR_ENC_709,
                COLORSPACE_BT2020 => YCBCR_ENC_BT2020,
                COLORSPACE_SMPTE240M => YCBCR_ENC_SMPTE240M,
                _ => 1,
            }
        } else {
            ycbcr_enc
        };
        let matrix = match enc {
            YCBCR_ENC_709 | YCBCR_ENC_XV709 => Matrix::Bt709,
            YCBCR_ENC_BT2020 | YCBCR_ENC_BT2020_CONST_LUM => Matrix::Bt2020,
            YCBCR_ENC_SMPTE240M => Matrix::Smpte240m,
            _ => Matrix::Bt601,
        };
        let range = match quantization {
            QUANTIZATION_FULL => Range::Full,
            QUANTIZATION_LIMITED => Range::Limited,
            _ if is_rgb && colorspace == COLORSPACE_BT2020 => Range::Limited,
            _ if is_rgb || format == PixFormat::Grey || colorspace == COLORSPACE_JPEG => {
                Range::Full
            }
            _ => Range::Limited,
        };
        Colour { matrix, range }
    }
}

/// 2^16: one in 16.16 fixed point.
const ONE: i32 = 1 << 16;

fn q16(x: f64) -> i32 {
    (x * f64::from(ONE)).round() as i32
}

/// A 16.16 value rounded to nearest and clamped to a byte.
fn to_u8(v: i32) -> u8 {
    ((v + ONE / 2) >> 16).clamp(0, 255) as u8
}

/// Full-range BT.601 luma of one RGB pixel (white stays 255).
fn luma(r: u8, g: u8, b: u8) -> u8 {
    to_u8(19595 * i32::from(r) + 38470 * i32::from(g) + 7471 * i32::from(b))
}

/// YCbCr → full-range RGB coefficients of one matrix and range.
#[derive(Debug, Clone, Copy)]
struct YuvToRgb {
    y_offset: i32,
    y_scale: i32,
    r_cr: i32,
    g_cb: i32,
    g_cr: i32,
    b_cb: i32,
}

impl YuvToRgb {
    fn new(colour: Colour) -> YuvToRgb {
        let (kr, kb) = colour.matrix.kr_kb();
        let kg = 1.0 - kr - kb;
        let (y_offset, y_scale, c_scale) = match colour.range {
            Range::Full => (0, 1.0, 1.0),
            Range::Limited => (16, 255.0 / 219.0, 255.0 / 224.0),
        };
        YuvToRgb {
            y_offset,
            y_scale: q16(y_scale),
            r_cr: q16(2.0 * (1.0 - kr) * c_scale),
            g_cb: q16(2.0 * kb * (1.0 - kb) / kg * c_scale),
            g_cr: q16(2.0 * kr * (1.0 - kr) / kg * c_scale),
            b_cb: q16(2.0 * (1.0 - kb) * c_scale),
        }
    }

    #[inline]
    fn rgb(&self, y: u8, cb: u8, cr: u8) -> [u8; 3] {
        let y = (i32::from(y) - self.y_offset) * self.y_scale;
        let cb = i32::from(cb) - 128;
        let cr = i32::from(cr) - 128;
        [
            to_u8(y + self.r_cr * cr),
            to_u8(y - self.g_cb * cb - self.g_cr * cr),
            to_u8(y + self.b_cb * cb),
        ]
    }

    /// One limited- or full-range RGB sample to full range.
    #[inline]
    fn expand(&self, v: u8) -> u8 {
        to_u8((i32::from(v) - self.y_offset) * self.y_scale)
    }
}

/// A buffer shorter than its layout needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortFrame {
    /// Bytes the layout needs.
    pub needed: usize,
    /// Bytes the buffer holds.
    pub got: usize,
}

/// A captured buffer that does not hold a frame of the negotiated layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadFrame {
    /// Fewer bytes than an uncompressed layout needs.
    Short(ShortFrame),
    /// A JPEG (`MJPG`) that does not decode, or decodes to another size.
    Jpeg(String),
}

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadFrame::Short(s) => write!(f, "{} bytes where {} are needed", s.got, s.needed),
            BadFrame::Jpeg(why) => write!(f, "a bad JPEG: {why}"),
        }
    }
}

/// Decodes one `MJPG` buffer into `out` as `want`: the JPEG's own
/// full-range (JFIF) Y for [`PixelFormat::Gray8`], RGB for
/// [`PixelFormat::Rgb8`]. Strict: a truncated or corrupt JPEG is an error,
/// never a frame half filled. The decoder allocates its tables per frame
/// (the one per-frame allocation of this source).
fn decode_jpeg(
    src: &[u8],
    layout: &Layout,
    want: PixelFormat,
    out: &mut Frame,
) -> Result<(), BadFrame> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    use zune_jpeg::JpegDecoder;

    let (w, h) = (layout.width, layout.height);
    let colorspace = match want {
        PixelFormat::Gray8 => ColorSpace::Luma,
        PixelFormat::Rgb8 => ColorSpace::RGB,
    };
    let options = DecoderOptions::default()
        .jpeg_set_out_colorspace(colorspace)
        .set_strict_mode(true)
        .set_max_width(w)
        .set_max_height(h);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(src), options);
    let bad = |e: zune_jpeg::errors::DecodeErrors| BadFrame::Jpeg(e.to_string());
    // zune-jpeg 0.5.15 panics on some malformed JPEGs (an unwrap in its AVX2
    // IDCT, found by fuzzing): a panic is a corrupt frame like any other.
    let panicked = |m: String| BadFrame::Jpeg(format!("the JPEG decoder panicked ({m})"));
    crate::graph::contain_panic(|| decoder.decode_headers())
        .map_err(panicked)?
        .map_err(bad)?;
    match decoder.dimensions() {
        Some(d) if d == (w, h) => {}
        Some((jw, jh)) => return Err(BadFrame::Jpeg(format!("{jw}x{jh} in a {w}x{h} stream"))),
        None => return Err(BadFrame::Jpeg("no frame header".into())),
    }
    out.reset(w, h, want);
    crate::graph::contain_panic(|| decoder.decode_into(out.data_mut()))
        .map_err(panicked)?
        .map_err(bad)
}

/// Converts one captured frame laid out as `layout` into `out` as `want`.
///
/// [`PixelFormat::Gray8`]: the Y plane, byte for byte, whatever the range
/// (what the models are trained on); RGB formats give full-range BT.601
/// luma of their samples as they are. [`PixelFormat::Rgb8`]: full-range
/// RGB; YCbCr through `colour`'s matrix and range, chroma upsampled by
/// nearest neighbour; Y-only formats as gray (expanded when limited);
/// limited-range RGB expanded to full range. `out` is reshaped in place (no
/// allocation once it is large enough). `MJPG` is decoded (see
/// `decode_jpeg`: the JPEG's own Y, or RGB).
///
/// `NM12` here is one buffer with its two planes back to back (as `NV12`);
/// from a multi-planar device see [`convert_planes`].
pub fn convert(
    src: &[u8],
    layout: &Layout,
    colour: Colour,
    want: PixelFormat,
    out: &mut Frame,
) -> Result<(), BadFrame> {
    if layout.format.is_compressed() {
        return decode_jpeg(src, layout, want, out);
    }
    let needed = layout.frame_bytes();
    if src.len() < needed {
        return Err(BadFrame::Short(ShortFrame {
            needed,
            got: src.len(),
        }));
    }
    if matches!(layout.format, PixFormat::Nv12 | PixFormat::Nv12m) {
        let (luma, chroma) = src.split_at(layout.luma_bytes());
        nv12(luma, chroma, layout, colour, want, out);
        return Ok(());
    }
    let (w, h, stride) = (layout.width, layout.height, layout.stride);
    out.reset(w, h, want);
    let k = YuvToRgb::new(colour);
    let row_len = layout.format.min_stride(w);
    let rows = out.data_mut().chunks_exact_mut(w * want.channels());
    match (layout.format, want) {
        (PixFormat::Grey | PixFormat::Yu12, PixelFormat::Gray8) => {
            for (y, o) in rows.enumerate() {
                o.copy_from_slice(&src[y * stride..][..w]);
            }
        }
        (PixFormat::Yuyv | PixFormat::Uyvy, PixelFormat::Gray8) => {
            let first = usize::from(layout.format == PixFormat::Uyvy);
            for (y, o) in rows.enumerate() {
                let row = &src[y * stride..][..row_len];
                for (x, px) in o.iter_mut().enumerate() {
                    *px = row[2 * x + first];
                }
            }
        }
        (PixFormat::Rgb24 | PixFormat::Bgr24, PixelFormat::Gray8) => {
            let bgr = layout.format == PixFormat::Bgr24;
            for (y, o) in rows.enumerate() {
                let row = &src[y * stride..][..row_len];
                for (px, s) in o.iter_mut().zip(row.chunks_exact(3)) {
                    *px = if bgr {
                        luma(s[2], s[1], s[0])
                    } else {
                        luma(s[0], s[1], s[2])
                    };
                }
            }
        }
        (PixFormat::Grey, PixelFormat::Rgb8) => {
            for (y, o) in rows.enumerate() {
                let row = &src[y * stride..][..w];
                for (px, &l) in o.chunks_exact_mut(3).zip(row) {
                    px.fill(k.expand(l));
                }
            }
        }
        (PixFormat::Yuyv | PixFormat::Uyvy, PixelFormat::Rgb8) => {
            // Byte offsets of Y (of the even pixel), Cb and Cr in a macropixel.
            let (y0, cb, cr) = if layout.format == PixFormat::Yuyv {
                (0, 1, 3)
            } else {
                (1, 0, 2)
            };
            for (y, o) in rows.enumerate() {
                let row = &src[y * stride..][..row_len];
                for (x, px) in o.chunks_exact_mut(3).enumerate() {
                    let m = x / 2 * 4;
                    px.copy_from_slice(&k.rgb(row[2 * x + y0], row[m + cb], row[m + cr]));
                }
            }
        }
        (PixFormat::Yu12, PixelFormat::Rgb8) => {
            let cs = layout.chroma_stride();
            let cw = w.div_ceil(2);
            let cb_plane = &src[stride * h..];
            let cr_plane = &cb_plane[cs * layout.chroma_rows()..];
            for (y, o) in rows.enumerate() {
                let row = &src[y * stride..][..w];
                let cb = &cb_plane[y / 2 * cs..][..cw];
                let cr = &cr_plane[y / 2 * cs..][..cw];
                for (x, px) in o.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&k.rgb(row[x], cb[x / 2], cr[x / 2]));
                }
            }
        }
        (PixFormat::Rgb24 | PixFormat::Bgr24, PixelFormat::Rgb8) => {
            let bgr = layout.format == PixFormat::Bgr24;
            let full = colour.range == Range::Full;
            for (y, o) in rows.enumerate() {
                let row = &src[y * stride..][..row_len];
                for (px, s) in o.chunks_exact_mut(3).zip(row.chunks_exact(3)) {
                    let rgb = if bgr {
                        [s[2], s[1], s[0]]
                    } else {
                        [s[0], s[1], s[2]]
                    };
                    for (d, v) in px.iter_mut().zip(rgb) {
                        *d = if full { v } else { k.expand(v) };
                    }
                }
            }
        }
        // Converted above; here only for a complete match.
        (PixFormat::Nv12 | PixFormat::Nv12m, _) => {
            let (luma, chroma) = src.split_at(layout.luma_bytes());
            nv12(luma, chroma, layout, colour, want, out);
        }
        (PixFormat::Mjpeg, _) => return decode_jpeg(src, layout, want, out),
    }
    Ok(())
}

/// Converts one `NM12` (or `NV12`) frame whose luma and chroma planes lie in
/// two buffers, as a multi-planar device hands them over; any other
/// format's frame is `luma` alone (see [`convert`]). Each plane is
/// `layout.stride` bytes a row; a plane shorter than that needs is a
/// [`BadFrame::Short`] counting both planes.
pub fn convert_planes(
    luma: &[u8],
    chroma: &[u8],
    layout: &Layout,
    colour: Colour,
    want: PixelFormat,
    out: &mut Frame,
) -> Result<(), BadFrame> {
    if !matches!(layout.format, PixFormat::Nv12 | PixFormat::Nv12m) {
        return convert(luma, layout, colour, want, out);
    }
    let chroma_needed = layout.frame_bytes() - layout.luma_bytes();
    if luma.len() < layout.luma_bytes() || chroma.len() < chroma_needed {
        return Err(BadFrame::Short(ShortFrame {
            needed: layout.frame_bytes(),
            got: luma.len().min(layout.luma_bytes()) + chroma.len().min(chroma_needed),
        }));
    }
    nv12(luma, chroma, layout, colour, want, out);
    Ok(())
}

/// 4:2:0 with interleaved `Cb Cr`: `luma` of `stride × height` bytes and
/// `chroma` of `stride × ceil(height / 2)` (the caller checked both).
fn nv12(
    luma: &[u8],
    chroma: &[u8],
    layout: &Layout,
    colour: Colour,
    want: PixelFormat,
    out: &mut Frame,
) {
    let (w, h, stride) = (layout.width, layout.height, layout.stride);
    out.reset(w, h, want);
    let rows = out.data_mut().chunks_exact_mut(w * want.channels());
    match want {
        PixelFormat::Gray8 => {
            for (y, o) in rows.enumerate() {
                o.copy_from_slice(&luma[y * stride..][..w]);
            }
        }
        PixelFormat::Rgb8 => {
            let k = YuvToRgb::new(colour);
            let row_len = layout.format.min_stride(w);
            for (y, o) in rows.enumerate() {
                let row = &luma[y * stride..][..w];
                let uv = &chroma[y / 2 * stride..][..row_len];
                for (x, px) in o.chunks_exact_mut(3).enumerate() {
                    let c = x / 2 * 2;
                    px.copy_from_slice(&k.rgb(row[x], uv[c], uv[c + 1]));
                }
            }
        }
    }
}
