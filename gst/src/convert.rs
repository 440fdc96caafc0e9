//! GStreamer video frames to the library's frames (through the V4L2
//! source's converters), and the overlay written back into the buffer.

use gst_video::prelude::*;
use gst_video::{VideoColorMatrix, VideoColorRange, VideoFormat, VideoFrameRef, VideoInfo};
use sammix::frame::{Frame, PixelFormat};
use sammix::source::v4l::{convert, convert_planes, Colour, Layout, Matrix, PixFormat, Range};

/// The formats the element takes, in the caps' order.
pub const FORMATS: [VideoFormat; 4] = [
    VideoFormat::Gray8,
    VideoFormat::Rgb,
    VideoFormat::Nv12,
    VideoFormat::Yuy2,
];

/// How the caps' samples map to colour: the matrix and range GStreamer
/// negotiated (BT.601 when it names another matrix; full range for RGB and
/// GRAY8 and limited for YCbCr when it names none).
pub fn colour(info: &VideoInfo) -> Colour {
    let c = info.colorimetry();
    let matrix = match c.matrix() {
        VideoColorMatrix::Bt709 => Matrix::Bt709,
        VideoColorMatrix::Bt2020 => Matrix::Bt2020,
        VideoColorMatrix::Smpte240m => Matrix::Smpte240m,
        _ => Matrix::Bt601,
    };
    let range = match c.range() {
        VideoColorRange::Range0_255 => Range::Full,
        VideoColorRange::Range16_235 => Range::Limited,
        _ if matches!(info.format(), VideoFormat::Rgb | VideoFormat::Gray8) => Range::Full,
        _ => Range::Limited,
    };
    Colour { matrix, range }
}

/// Reads mapped video frames into [`Frame`]s. `NV12` to RGB reads its two
/// planes in place when they share a stride, else through one scratch
/// buffer (the planes joined as the V4L2 layout has them).
#[derive(Debug, Default)]
pub struct Converter {
    scratch: Vec<u8>,
}

fn layout(format: PixFormat, w: usize, h: usize, stride: i32) -> Result<Layout, String> {
    let stride = usize::try_from(stride).map_err(|_| format!("negative stride {stride}"))?;
    Layout::new(format, w, h, stride)
}

impl Converter {
    /// Converts `vf` into `out` as `want` (reshaped in place).
    pub fn read(
        &mut self,
        vf: &VideoFrameRef<&gst::BufferRef>,
        colour: Colour,
        want: PixelFormat,
        out: &mut Frame,
    ) -> Result<(), String> {
        let (w, h) = (vf.width() as usize, vf.height() as usize);
        let strides = vf.plane_stride();
        let plane = |i: u32| vf.plane_data(i).map_err(|e| e.to_string());
        let (src, l) = match (vf.format(), want) {
            (VideoFormat::Gray8, _) => (plane(0)?, layout(PixFormat::Grey, w, h, strides[0])?),
            (VideoFormat::Rgb, _) => (plane(0)?, layout(PixFormat::Rgb24, w, h, strides[0])?),
            (VideoFormat::Yuy2, _) => (plane(0)?, layout(PixFormat::Yuyv, w, h, strides[0])?),
            // the luma plane is the gray frame
            (VideoFormat::Nv12, PixelFormat::Gray8) => {
                (plane(0)?, layout(PixFormat::Grey, w, h, strides[0])?)
            }
            (VideoFormat::Nv12, PixelFormat::Rgb8) if strides[0] == strides[1] => {
                // planes of one stride: read in place, as a two-buffer NM12
                let l = layout(PixFormat::Nv12m, w, h, strides[0])?;
                return convert_planes(plane(0)?, plane(1)?, &l, colour, want, out)
                    .map_err(|e| e.to_string());
            }
            (VideoFormat::Nv12, PixelFormat::Rgb8) => {
                let l = layout(PixFormat::Nv12, w, h, strides[0])?;
                let (luma, chroma) = (plane(0)?, plane(1)?);
                let chroma_stride = usize::try_from(strides[1]).unwrap_or(0);
                let row = PixFormat::Nv12.min_stride(w);
                let luma_len = l.stride * h;
                if luma.len() < luma_len || chroma_stride < row {
                    return Err(format!("NV12 planes too short for {l}"));
                }
                self.scratch.clear();
                self.scratch.extend_from_slice(&luma[..luma_len]);
                for r in 0..h.div_ceil(2) {
                    let Some(src_row) = chroma.get(r * chroma_stride..r * chroma_stride + row)
                    else {
                        return Err(format!("NV12 chroma plane too short for {l}"));
                    };
                    self.scratch.extend_from_slice(src_row);
                    self.scratch.resize(luma_len + (r + 1) * l.stride, 128);
                }
                return convert(&self.scratch, &l, colour, want, out).map_err(|e| e.to_string());
            }
            (other, _) => return Err(format!("format {other:?} is not one this element reads")),
        };
        convert(src, &l, colour, want, out).map_err(|e| e.to_string())
    }
}

/// (Kr, Kb) of the matrix (ITU-R BT.601/709/2020, SMPTE 240M).
fn kr_kb(m: Matrix) -> (f32, f32) {
    match m {
        Matrix::Bt709 => (0.2126, 0.0722),
        Matrix::Bt2020 => (0.2627, 0.0593),
        Matrix::Smpte240m => (0.212, 0.087),
        _ => (0.299, 0.114),
    }
}

/// Full-range RGB to Y, Cb, Cr through `colour`'s matrix, in its range.
fn ycbcr(p: &[u8], colour: Colour) -> [u8; 3] {
    let (kr, kb) = kr_kb(colour.matrix);
    let [r, g, b] = [p[0], p[1], p[2]].map(f32::from);
    let y = kr * r + (1.0 - kr - kb) * g + kb * b;
    let cb = (b - y) / (2.0 * (1.0 - kb));
    let cr = (r - y) / (2.0 * (1.0 - kr));
    let (y, cb, cr) = match colour.range {
        Range::Full => (y, cb, cr),
        Range::Limited => (
            16.0 + y * 219.0 / 255.0,
            cb * 224.0 / 255.0,
            cr * 224.0 / 255.0,
        ),
    };
    [y, cb + 128.0, cr + 128.0].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// Writes the overlay `picture` (RGB, the frame's size) into `vf` where it
/// differs from `seen` (the frame the pipeline saw, gray or RGB): pixels
/// the overlay did not touch keep their original bytes, colour included.
pub fn write_back(
    picture: &Frame,
    seen: &Frame,
    colour: Colour,
    vf: &mut VideoFrameRef<&mut gst::BufferRef>,
) -> Result<(), String> {
    let (w, h) = (picture.width(), picture.height());
    if (vf.width() as usize, vf.height() as usize) != (w, h)
        || (seen.width(), seen.height()) != (w, h)
    {
        return Err("the overlay is not the frame's size".into());
    }
    let format = vf.format();
    let stride = |i: usize| usize::try_from(vf.plane_stride()[i]).unwrap_or(0);
    let (s0, s1) = (
        stride(0),
        if format == VideoFormat::Nv12 {
            stride(1)
        } else {
            0
        },
    );
    let c = seen.format().channels();
    // The overlay's colour where it changed the pixel at (x, y).
    let changed = |x: usize, y: usize| -> Option<[u8; 3]> {
        let p = &picture.data()[(y * w + x) * 3..][..3];
        let s = &seen.data()[(y * w + x) * c..][..c];
        let same = if c == 1 {
            p.iter().all(|&v| v == s[0])
        } else {
            p == s
        };
        (!same).then(|| [p[0], p[1], p[2]])
    };
    let gray = Colour {
        matrix: Matrix::Bt601,
        range: Range::Full,
    };
    let short = |what: &str| format!("the {format:?} frame's {what} plane is too short to draw on");
    let plane = vf.plane_data_mut(0).map_err(|e| e.to_string())?;
    for y in 0..h {
        let Some(row) = plane.get_mut(y * s0..) else {
            return Err(short("first"));
        };
        for x in 0..w {
            let Some(p) = changed(x, y) else {
                continue;
            };
            let (at, values): (usize, &[u8]) = match format {
                VideoFormat::Gray8 => (x, &ycbcr(&p, gray)[..1]),
                VideoFormat::Rgb => (3 * x, &p),
                VideoFormat::Nv12 => (x, &ycbcr(&p, colour)[..1]),
                VideoFormat::Yuy2 => {
                    let [l, cb, cr] = ycbcr(&p, colour);
                    let m = x / 2 * 4;
                    // the macropixel Y0 Cb Y1 Cr holding this pixel
                    let Some(mp) = row.get_mut(m..m + 4) else {
                        return Err(short("first"));
                    };
                    mp[2 * (x % 2)] = l;
                    mp[1] = cb;
                    mp[3] = cr;
                    continue;
                }
                _ => return Err(format!("cannot draw on {format:?}")),
            };
            match row.get_mut(at..at + values.len()) {
                Some(dst) => dst.copy_from_slice(values),
                None => return Err(short("first")),
            }
        }
    }
    if format == VideoFormat::Nv12 {
        let plane = vf.plane_data_mut(1).map_err(|e| e.to_string())?;
        for y in 0..h {
            for x in 0..w {
                let Some(p) = changed(x, y) else {
                    continue;
                };
                let [_, cb, cr] = ycbcr(&p, colour);
                let at = y / 2 * s1 + x / 2 * 2;
                match plane.get_mut(at..at + 2) {
                    Some(dst) => dst.copy_from_slice(&[cb, cr]),
                    None => return Err(short("chroma")),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ycbcr_of_gray_has_neutral_chroma_and_limited_range_squeezes_luma() {
        let full = Colour {
            matrix: Matrix::Bt601,
            range: Range::Full,
        };
        let limited = Colour {
            matrix: Matrix::Bt709,
            range: Range::Limited,
        };
        assert_eq!(ycbcr(&[200, 200, 200], full), [200, 128, 128]);
        assert_eq!(ycbcr(&[0, 0, 0], limited), [16, 128, 128]);
        assert_eq!(ycbcr(&[255, 255, 255], limited), [235, 128, 128]);
        // pure green: low Cb and Cr
        let [_, cb, cr] = ycbcr(&[0, 255, 0], full);
        assert!(cb < 60 && cr < 60, "{cb} {cr}");
    }

    #[test]
    fn nv12_with_padded_planes_reads_like_the_packed_v4l2_layout() {
        gst::init().expect("GStreamer initializes");
        let (w, h) = (6usize, 5usize);
        let rows = h.div_ceil(2);
        let luma: Vec<u8> = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
        let chroma: Vec<u8> = (0..w * rows).map(|i| (60 + i * 9 % 140) as u8).collect();
        let packed = [luma.clone(), chroma.clone()].concat();
        let layout = Layout::packed(PixFormat::Nv12, w, h).expect("a layout");
        let colour = Colour {
            matrix: Matrix::Bt709,
            range: Range::Limited,
        };
        // GStreamer's layouts: chroma of another stride (read through the
        // scratch buffer), and of the luma's (read in place)
        for (luma_stride, chroma_stride, offset) in [(8usize, 10usize, 64usize), (8, 8, 48)] {
            let info = VideoInfo::builder(VideoFormat::Nv12, w as u32, h as u32)
                .stride(&[luma_stride as i32, chroma_stride as i32])
                .offset(&[0, offset])
                .build()
                .expect("a valid layout");
            let mut bytes = vec![0xEEu8; offset + chroma_stride * rows];
            for y in 0..h {
                bytes[y * luma_stride..][..w].copy_from_slice(&luma[y * w..][..w]);
            }
            for y in 0..rows {
                bytes[offset + y * chroma_stride..][..w].copy_from_slice(&chroma[y * w..][..w]);
            }
            let buffer = gst::Buffer::from_mut_slice(bytes);
            let vf = VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &info).expect("maps");
            let mut conv = Converter::default();
            let (mut got, mut want) = (
                Frame::zeros(1, 1, PixelFormat::Gray8),
                Frame::zeros(1, 1, PixelFormat::Gray8),
            );
            for format in [PixelFormat::Rgb8, PixelFormat::Gray8] {
                conv.read(&vf, colour, format, &mut got).expect("reads");
                convert(&packed, &layout, colour, format, &mut want).expect("converts");
                assert_eq!(
                    got.data(),
                    want.data(),
                    "{format:?} strides {luma_stride}/{chroma_stride}"
                );
            }
            assert_eq!(got.data(), &luma[..]);
        }
    }
}
