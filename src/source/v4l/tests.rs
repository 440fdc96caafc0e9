//! Spec parsing, pixel conversions against hand-made buffers (odd sizes and
//! padded rows too) and sequence tracking; no device needed.

use super::*;
use crate::frame::{Frame, PixelFormat};

const BT601_LIMITED: Colour = Colour {
    matrix: Matrix::Bt601,
    range: Range::Limited,
};
const BT601_FULL: Colour = Colour {
    matrix: Matrix::Bt601,
    range: Range::Full,
};

fn run(src: &[u8], layout: Layout, colour: Colour, want: PixelFormat) -> Frame {
    let mut out = Frame::zeros(1, 1, PixelFormat::Gray8);
    convert(src, &layout, colour, want, &mut out).unwrap();
    assert_eq!(
        (out.width(), out.height(), out.format()),
        (layout.width, layout.height, want)
    );
    out
}

/// Independent float reference: YCbCr → RGB, rounded and clamped.
fn reference_rgb(y: u8, cb: u8, cr: u8, colour: Colour) -> [u8; 3] {
    let (kr, kb) = match colour.matrix {
        Matrix::Bt601 => (0.299, 0.114),
        Matrix::Bt709 => (0.2126, 0.0722),
        Matrix::Bt2020 => (0.2627, 0.0593),
        Matrix::Smpte240m => (0.212, 0.087),
    };
    let (y, cb, cr) = (f64::from(y), f64::from(cb) - 128.0, f64::from(cr) - 128.0);
    let (y, cb, cr) = match colour.range {
        Range::Full => (y, cb, cr),
        Range::Limited => (
            (y - 16.0) * 255.0 / 219.0,
            cb * 255.0 / 224.0,
            cr * 255.0 / 224.0,
        ),
    };
    let kg = 1.0 - kr - kb;
    let r = y + 2.0 * (1.0 - kr) * cr;
    let b = y + 2.0 * (1.0 - kb) * cb;
    let g = (y - kr * r - kb * b) / kg;
    [r, g, b].map(|v| v.round().clamp(0.0, 255.0) as u8)
}

fn assert_rgb_close(got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(a.abs_diff(*b) <= 1, "sample {i}: {a} vs {b}");
    }
}

/// A 5×3 test picture: luma, and chroma per 2×2 (4:2:0) block.
const W: usize = 5;
const H: usize = 3;
fn luma(x: usize, y: usize) -> u8 {
    (16 + x * 37 + y * 71) as u8
}
fn cb(cx: usize, cy: usize) -> u8 {
    (60 + cx * 50 + cy * 30) as u8
}
fn cr(cx: usize, cy: usize) -> u8 {
    (200 - cx * 40 - cy * 25) as u8
}

fn expected_gray() -> Vec<u8> {
    (0..H)
        .flat_map(|y| (0..W).map(move |x| luma(x, y)))
        .collect()
}

/// 4:2:2 packed rows with `pad` junk bytes after each; chroma per 2×1
/// block (the 4:2:0 values of the row's pair).
fn packed_422(uyvy: bool, pad: usize) -> (Vec<u8>, Vec<u8>) {
    let mut buf = Vec::new();
    let mut rgb = Vec::new();
    for y in 0..H {
        for m in 0..W.div_ceil(2) {
            let (y0, y1) = (
                luma(2 * m, y),
                if 2 * m + 1 < W {
                    luma(2 * m + 1, y)
                } else {
                    99
                },
            );
            let (u, v) = (cb(m, y), cr(m, y));
            if uyvy {
                buf.extend([u, y0, v, y1]);
            } else {
                buf.extend([y0, u, y1, v]);
            }
        }
        buf.extend(std::iter::repeat_n(0xEE, pad));
        for x in 0..W {
            rgb.extend(reference_rgb(
                luma(x, y),
                cb(x / 2, y),
                cr(x / 2, y),
                BT601_LIMITED,
            ));
        }
    }
    (buf, rgb)
}

fn expected_rgb_420(colour: Colour) -> Vec<u8> {
    (0..H)
        .flat_map(|y| (0..W).map(move |x| (x, y)))
        .flat_map(|(x, y)| reference_rgb(luma(x, y), cb(x / 2, y / 2), cr(x / 2, y / 2), colour))
        .collect()
}

fn luma_plane(stride: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    for y in 0..H {
        buf.extend((0..W).map(|x| luma(x, y)));
        buf.extend(std::iter::repeat_n(0xEE, stride - W));
    }
    buf
}

#[test]
fn yuyv_and_uyvy_at_an_odd_width_with_padded_rows() {
    for (uyvy, format) in [(false, PixFormat::Yuyv), (true, PixFormat::Uyvy)] {
        for pad in [0, 4] {
            let (buf, rgb) = packed_422(uyvy, pad);
            let layout = Layout::new(format, W, H, 12 + pad).unwrap();
            assert_eq!(layout.frame_bytes(), buf.len());
            let gray = run(&buf, layout, BT601_LIMITED, PixelFormat::Gray8);
            assert_eq!(gray.data(), expected_gray(), "{format:?} pad {pad}");
            let out = run(&buf, layout, BT601_LIMITED, PixelFormat::Rgb8);
            assert_rgb_close(out.data(), &rgb);
        }
    }
}

#[test]
fn nv12_and_yu12_at_odd_sizes() {
    for stride in [W + 1, 8] {
        // NV12: luma rows, then 2 rows of Cb Cr pairs, `stride` bytes each.
        let mut nv12 = luma_plane(stride);
        for cy in 0..H.div_ceil(2) {
            for cx in 0..W.div_ceil(2) {
                nv12.extend([cb(cx, cy), cr(cx, cy)]);
            }
            nv12.extend(std::iter::repeat_n(0xEE, stride - 2 * W.div_ceil(2)));
        }
        // YU12: luma, then Cb and Cr planes of ceil(stride/2) bytes a row.
        let cs = stride.div_ceil(2);
        let mut yu12 = luma_plane(stride);
        for plane in [cb as fn(usize, usize) -> u8, cr] {
            for cy in 0..H.div_ceil(2) {
                yu12.extend((0..W.div_ceil(2)).map(|cx| plane(cx, cy)));
                yu12.extend(std::iter::repeat_n(0xEE, cs - W.div_ceil(2)));
            }
        }
        for (format, buf) in [(PixFormat::Nv12, &nv12), (PixFormat::Yu12, &yu12)] {
            let layout = Layout::new(format, W, H, stride).unwrap();
            assert_eq!(layout.frame_bytes(), buf.len(), "{format:?}");
            let gray = run(buf, layout, BT601_LIMITED, PixelFormat::Gray8);
            assert_eq!(gray.data(), expected_gray(), "{format:?} stride {stride}");
            for colour in [BT601_LIMITED, BT601_FULL] {
                let out = run(buf, layout, colour, PixelFormat::Rgb8);
                assert_rgb_close(out.data(), &expected_rgb_420(colour));
            }
        }
    }
}

#[test]
fn nv12m_planes_in_two_buffers_convert_as_nv12() {
    for stride in [W + 1, 8] {
        let luma = luma_plane(stride);
        let mut chroma = Vec::new();
        for cy in 0..H.div_ceil(2) {
            for cx in 0..W.div_ceil(2) {
                chroma.extend([cb(cx, cy), cr(cx, cy)]);
            }
            chroma.extend(std::iter::repeat_n(0xEE, stride - 2 * W.div_ceil(2)));
        }
        let layout = Layout::new(PixFormat::Nv12m, W, H, stride).unwrap();
        assert_eq!(layout.frame_bytes(), luma.len() + chroma.len());
        assert_eq!(layout.luma_bytes(), luma.len());
        // Two buffers (a multi-planar device) and one (the planes back to
        // back, as `convert` reads NM12) give the same frame as NV12.
        let both: Vec<u8> = [luma.clone(), chroma.clone()].concat();
        let nv12 = Layout::new(PixFormat::Nv12, W, H, stride).unwrap();
        for (want, colour) in [
            (PixelFormat::Gray8, BT601_LIMITED),
            (PixelFormat::Rgb8, BT601_LIMITED),
            (PixelFormat::Rgb8, BT601_FULL),
        ] {
            let mut planes = Frame::zeros(1, 1, PixelFormat::Gray8);
            convert_planes(&luma, &chroma, &layout, colour, want, &mut planes).unwrap();
            let joined = run(&both, layout, colour, want);
            let as_nv12 = run(&both, nv12, colour, want);
            assert_eq!(planes.data(), as_nv12.data(), "{want:?} stride {stride}");
            assert_eq!(joined.data(), as_nv12.data(), "{want:?} stride {stride}");
            if want == PixelFormat::Gray8 {
                assert_eq!(planes.data(), expected_gray());
            } else {
                assert_rgb_close(planes.data(), &expected_rgb_420(colour));
            }
        }
        // A short plane is a short frame counting both planes.
        let mut out = Frame::zeros(1, 1, PixelFormat::Gray8);
        let short = |l: &[u8], c: &[u8], out: &mut Frame| {
            convert_planes(l, c, &layout, BT601_FULL, PixelFormat::Rgb8, out)
        };
        assert_eq!(
            short(&luma, &chroma[..chroma.len() - 1], &mut out),
            Err(BadFrame::Short(ShortFrame {
                needed: layout.frame_bytes(),
                got: layout.frame_bytes() - 1
            }))
        );
        assert!(matches!(
            short(&luma[..3], &chroma, &mut out),
            Err(BadFrame::Short(ShortFrame { got, .. })) if got == 3 + chroma.len()
        ));
        assert!(short(&[], &[], &mut out).is_err());
    }
    // Other formats from `convert_planes` are their one buffer.
    let grey = Layout::new(PixFormat::Grey, W, H, W).unwrap();
    let buf = luma_plane(W);
    let mut out = Frame::zeros(1, 1, PixelFormat::Gray8);
    convert_planes(&buf, &[], &grey, BT601_FULL, PixelFormat::Gray8, &mut out).unwrap();
    assert_eq!(out.data(), expected_gray());
    assert_eq!(FourCc::parse("nv12m"), Some(FourCc(*b"NM12")));
    assert_eq!(
        PixFormat::from_fourcc(FourCc(*b"NM12")),
        Some(PixFormat::Nv12m)
    );
    assert_eq!(PixFormat::Nv12m.buffers(), 2);
    assert_eq!(PixFormat::Nv12.buffers(), 1);
}

#[test]
fn grey_passes_through_and_expands_only_for_rgb() {
    let buf = luma_plane(W + 3);
    let layout = Layout::new(PixFormat::Grey, W, H, W + 3).unwrap();
    let gray = run(&buf, layout, BT601_LIMITED, PixelFormat::Gray8);
    assert_eq!(gray.data(), expected_gray());
    let full = run(&buf, layout, BT601_FULL, PixelFormat::Rgb8);
    let limited = run(&buf, layout, BT601_LIMITED, PixelFormat::Rgb8);
    for (i, &l) in expected_gray().iter().enumerate() {
        assert_eq!(full.data()[3 * i..3 * i + 3], [l; 3]);
        let e = ((f64::from(l) - 16.0) * 255.0 / 219.0)
            .round()
            .clamp(0.0, 255.0) as u8;
        assert_eq!(limited.data()[3 * i..3 * i + 3], [e; 3]);
    }
}

#[test]
fn rgb24_and_bgr24_to_gray_and_rgb() {
    let px = |x: usize, y: usize| [(x * 50) as u8, (y * 90 + 10) as u8, (255 - x * 20) as u8];
    let stride = 3 * W + 2;
    let (mut rgb, mut bgr, mut want_rgb, mut want_gray) = (vec![], vec![], vec![], vec![]);
    for y in 0..H {
        for x in 0..W {
            let [r, g, b] = px(x, y);
            rgb.extend([r, g, b]);
            bgr.extend([b, g, r]);
            want_rgb.extend([r, g, b]);
            let l = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
            want_gray.push(l.round() as u8);
        }
        rgb.extend([0xEE; 2]);
        bgr.extend([0xEE; 2]);
    }
    for (format, buf) in [(PixFormat::Rgb24, &rgb), (PixFormat::Bgr24, &bgr)] {
        let layout = Layout::new(format, W, H, stride).unwrap();
        let colour = Colour::from_v4l2(0, 0, 0, format);
        assert_eq!(colour.range, Range::Full);
        assert_eq!(run(buf, layout, colour, PixelFormat::Rgb8).data(), want_rgb);
        let gray = run(buf, layout, colour, PixelFormat::Gray8);
        assert_rgb_close(gray.data(), &want_gray);
        // Limited-range RGB is expanded: 16 → 0, 235 → 255.
        let limited = Colour {
            range: Range::Limited,
            ..colour
        };
        let out = run(buf, layout, limited, PixelFormat::Rgb8);
        let e = |v: u8| {
            ((f64::from(v) - 16.0) * 255.0 / 219.0)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        let want: Vec<u8> = want_rgb.iter().map(|&v| e(v)).collect();
        assert_rgb_close(out.data(), &want);
    }
}

#[test]
fn matrices_and_ranges_against_the_float_reference() {
    for matrix in [
        Matrix::Bt601,
        Matrix::Bt709,
        Matrix::Bt2020,
        Matrix::Smpte240m,
    ] {
        for range in [Range::Limited, Range::Full] {
            let colour = Colour { matrix, range };
            let mut buf = Vec::new();
            let mut want = Vec::new();
            for (i, y) in [0u8, 16, 100, 180, 235, 255].into_iter().enumerate() {
                let (u, v) = ((i * 47) as u8, (255 - i * 51) as u8);
                buf.extend([y, u, y, v]);
                want.extend(reference_rgb(y, u, v, colour));
                want.extend(reference_rgb(y, u, v, colour));
            }
            let layout = Layout::packed(PixFormat::Yuyv, 12, 1).unwrap();
            let out = run(&buf, layout, colour, PixelFormat::Rgb8);
            assert_rgb_close(out.data(), &want);
        }
    }
}

#[test]
fn v4l2_colour_defaults() {
    // YUYV, colorspace sRGB (8), everything default: BT.601, limited.
    let yuyv = PixFormat::Yuyv;
    assert_eq!(Colour::from_v4l2(8, 0, 0, yuyv), BT601_LIMITED);
    // Rec. 709 colorspace → BT.709; JPEG → full range.
    assert_eq!(Colour::from_v4l2(3, 0, 0, yuyv).matrix, Matrix::Bt709);
    assert_eq!(Colour::from_v4l2(7, 0, 0, PixFormat::Nv12), BT601_FULL);
    // Explicit fields win.
    let c = Colour::from_v4l2(8, 2, 1, yuyv);
    assert_eq!((c.matrix, c.range), (Matrix::Bt709, Range::Full));
    assert_eq!(
        Colour::from_v4l2(8, 0, 2, PixFormat::Grey).range,
        Range::Limited
    );
    // Defaults: BT.2020 RGB is limited, GREY full (as vivid makes it).
    assert_eq!(
        Colour::from_v4l2(10, 0, 0, PixFormat::Rgb24).range,
        Range::Limited
    );
    assert_eq!(
        Colour::from_v4l2(8, 0, 0, PixFormat::Grey).range,
        Range::Full
    );
    assert_eq!(Colour::from_v4l2(99, 99, 99, yuyv), BT601_LIMITED);
}

#[test]
fn short_buffers_and_bad_strides_are_errors() {
    let layout = Layout::packed(PixFormat::Nv12, 4, 4).unwrap();
    assert_eq!(layout.frame_bytes(), 24);
    let mut out = Frame::zeros(1, 1, PixelFormat::Gray8);
    let err = convert(
        &[0; 23],
        &layout,
        BT601_LIMITED,
        PixelFormat::Gray8,
        &mut out,
    );
    assert_eq!(
        err,
        Err(BadFrame::Short(ShortFrame {
            needed: 24,
            got: 23
        }))
    );
    assert!(Layout::new(PixFormat::Yuyv, 5, 2, 10).is_err());
    assert!(Layout::new(PixFormat::Nv12, 5, 2, 5).is_err());
    assert!(Layout::new(PixFormat::Grey, 0, 2, 0).is_err());
    assert_eq!(
        Layout::packed(PixFormat::Yu12, 5, 3).unwrap().frame_bytes(),
        15 + 2 * 3 * 2
    );
}

#[test]
fn specs_parse_and_print() {
    let s = V4lSpec::parse("/dev/video0").unwrap();
    assert_eq!(s, V4lSpec::device("/dev/video0"));
    let s = V4lSpec::parse("/dev/video2:1280x720:MJPEG").unwrap();
    assert_eq!(s.size, Some((1280, 720)));
    assert_eq!(s.fourcc, Some(FourCc(*b"MJPG")));
    assert_eq!(s.to_string(), "v4l:/dev/video2:1280x720:MJPG");
    let s = V4lSpec::parse("/dev/video0:i420").unwrap();
    assert_eq!((s.size, s.fourcc), (None, Some(FourCc(*b"YU12"))));
    let s = V4lSpec::parse("/dev/video0::GREY").unwrap();
    assert_eq!(s.to_string(), "v4l:/dev/video0:GREY");
    assert_eq!(V4lSpec::parse(&s.to_string()[4..]).unwrap(), s);
    let s = V4lSpec::parse("/dev/video0:640x360").unwrap();
    assert_eq!((s.size, s.fourcc), (Some((640, 360)), None));
    let by_path = "/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0";
    assert_eq!(V4lSpec::parse(by_path).unwrap(), V4lSpec::device(by_path));
    let s = V4lSpec::parse(&format!("{by_path}:320x180:YUYV")).unwrap();
    assert_eq!(s.device.to_str(), Some(by_path));
    assert!(V4lSpec::parse("/dev/video0:0x480")
        .unwrap_err()
        .contains("1 or more"));
    assert!(V4lSpec::parse("").is_err());
    assert!(V4lSpec::parse(":640x480").is_err());
    assert_eq!(
        FourCc::parse("Y8").map(|c| c.to_string()),
        Some("GREY".into())
    );
    assert_eq!(
        FourCc::parse("Y16").map(|c| c.to_string()),
        Some("Y16 ".into())
    );
    assert_eq!(FourCc::from_u32(0x5659_5559), FourCc(*b"YUYV"));
    assert_eq!(FourCc(*b"YUYV").to_u32(), 0x5659_5559);
}

#[test]
fn sequence_gaps_count_as_drops() {
    let mut t = SequenceTracker::new();
    let got: Vec<u64> = [100, 101, 104, 105].map(|s| t.next(s)).to_vec();
    assert_eq!(got, [0, 1, 4, 5]);
    assert_eq!(t.dropped(), 2);
    // A restart re-bases without counting drops.
    t.rebase();
    assert_eq!(t.next(0), 6);
    assert_eq!(t.next(1), 7);
    // Going back, or wrapping past u32::MAX.
    assert_eq!(t.next(0), 8);
    let mut w = SequenceTracker::new();
    assert_eq!((w.next(u32::MAX), w.next(1)), (0, 2));
    assert_eq!(w.dropped(), 1);
}

#[test]
fn a_counter_that_does_not_advance_is_replaced() {
    let mut t = SequenceTracker::new();
    let got: Vec<u64> = [0, 0, 0, 0].map(|s| t.next(s)).to_vec();
    assert_eq!(got, [0, 1, 2, 3]);
    assert!(t.is_local());
    assert_eq!(t.dropped(), 0);
    // Once local, the device's numbers no longer matter.
    assert_eq!(t.next(50), 4);
}

#[cfg(not(feature = "v4l"))]
#[test]
fn without_the_feature_opening_says_how_to_get_it() {
    let err = open(&V4lSpec::device("/dev/video0"), &V4lOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("/dev/video0") && err.contains("--features v4l"),
        "{err}"
    );
}

/// A smooth `w × h` test scene (a diagonal ramp and a bright disc): JPEG
/// keeps it within a few levels at high quality.
fn scene(w: usize, h: usize) -> Vec<u8> {
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let disc = (fx - 0.6).powi(2) + (fy - 0.4).powi(2) < 0.04;
            let base = 40.0 + 150.0 * (fx + fy) / 2.0;
            let v = if disc { 230.0 } else { base };
            px.extend([v as u8, (v * 0.8) as u8, (255.0 - v) as u8]);
        }
    }
    px
}

fn jpeg(pixels: &[u8], w: usize, h: usize, color: jpeg_encoder::ColorType) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 95)
        .encode(pixels, w as u16, h as u16, color)
        .unwrap();
    out
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x.abs_diff(y)))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn mjpeg_frames_decode_to_gray_and_rgb() {
    // Odd sizes: the 4:2:0 chroma of the RGB JPEG covers a partial block.
    let (w, h) = (66, 37);
    let rgb = scene(w, h);
    let layout = Layout::new(PixFormat::Mjpeg, w, h, 0).unwrap();
    assert_eq!(layout.to_string(), "66x37 MJPG");

    let rgb_jpeg = jpeg(&rgb, w, h, jpeg_encoder::ColorType::Rgb);
    let decoded = run(&rgb_jpeg, layout, BT601_FULL, PixelFormat::Rgb8);
    let d = mean_abs_diff(decoded.data(), &rgb);
    assert!(d < 3.0, "RGB through JPEG: mean |difference| {d:.2}");

    // Gray frames: the JPEG's Y, that is full-range BT.601 luma of the RGB.
    let gray: Vec<u8> = rgb
        .chunks_exact(3)
        .map(|p| {
            (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])).round()
                as u8
        })
        .collect();
    let decoded = run(&rgb_jpeg, layout, BT601_FULL, PixelFormat::Gray8);
    let d = mean_abs_diff(decoded.data(), &gray);
    assert!(d < 2.0, "Y of an RGB JPEG: mean |difference| {d:.2}");
    let decoded = run(
        &jpeg(&gray, w, h, jpeg_encoder::ColorType::Luma),
        layout,
        BT601_FULL,
        PixelFormat::Gray8,
    );
    let d = mean_abs_diff(decoded.data(), &gray);
    assert!(d < 2.0, "gray JPEG: mean |difference| {d:.2}");
}

#[test]
fn bad_mjpeg_frames_are_errors_not_frames() {
    let (w, h) = (64, 48);
    let layout = Layout::new(PixFormat::Mjpeg, w, h, 0).unwrap();
    let good = jpeg(&scene(w, h), w, h, jpeg_encoder::ColorType::Rgb);
    let mut out = Frame::zeros(1, 1, PixelFormat::Gray8);
    let mut check = |data: &[u8], what: &str, needle: &str| match convert(
        data,
        &layout,
        BT601_FULL,
        PixelFormat::Gray8,
        &mut out,
    ) {
        Err(BadFrame::Jpeg(why)) => {
            assert!(why.contains(needle), "{what}: {why:?} lacks {needle:?}")
        }
        other => panic!("{what}: {other:?}"),
    };
    check(&good[..good.len() / 2], "truncated", "");
    check(&[], "empty", "");
    check(&[0x55; 500], "not a JPEG", "");
    // A JPEG of another size than the negotiated one.
    let other = jpeg(&scene(32, 48), 32, 48, jpeg_encoder::ColorType::Rgb);
    check(&other, "32x48", "32x48 in a 64x48 stream");
    // Every message reads as a frame problem.
    let e = BadFrame::Jpeg("x".into()).to_string();
    assert_eq!(e, "a bad JPEG: x");
    // And the good one still decodes.
    convert(&good, &layout, BT601_FULL, PixelFormat::Gray8, &mut out).unwrap();
    assert_eq!((out.width(), out.height()), (w, h));
}

#[test]
fn mjpeg_is_a_format_of_its_own() {
    assert_eq!(
        PixFormat::from_fourcc(FourCc(*b"MJPG")),
        Some(PixFormat::Mjpeg)
    );
    assert!(PixFormat::Mjpeg.is_compressed());
    assert_eq!(PixFormat::ALL.last(), Some(&PixFormat::Mjpeg));
    assert_eq!(
        Layout::new(PixFormat::Mjpeg, 8, 8, 0)
            .unwrap()
            .frame_bytes(),
        0
    );
}
