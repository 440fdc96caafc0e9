use std::io::Cursor;
use std::path::{Path, PathBuf};

use super::*;
use crate::frame::{Frame, PixelFormat};

/// A reader over bytes, named `mem.y4m` in messages.
fn reader(bytes: &[u8]) -> Result<Y4mReader<Cursor<Vec<u8>>>, Y4mError> {
    Y4mReader::new(Cursor::new(bytes.to_vec()), "mem.y4m")
}

/// The error a header or stream gives, as text.
fn error_text(bytes: &[u8]) -> String {
    match reader(bytes) {
        Err(e) => e.to_string(),
        Ok(mut r) => {
            let mut frame = Frame::zeros(1, 1, PixelFormat::Gray8);
            loop {
                match r.read_frame(&mut frame, PixelFormat::Rgb8) {
                    Ok(true) => {}
                    Ok(false) => panic!("no error in {:?}", bytes.escape_ascii().to_string()),
                    Err(e) => return e.to_string(),
                }
            }
        }
    }
}

/// A fresh path in this process's scratch folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sammix-y4m-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Every frame of a stream, as `want`.
fn read_all<R: std::io::BufRead>(r: &mut Y4mReader<R>, want: PixelFormat) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut frame = Frame::zeros(1, 1, want);
    while r.read_frame(&mut frame, want).unwrap() {
        frames.push(frame.clone());
    }
    frames
}

#[test]
fn mono_round_trip_through_a_file() {
    let path = scratch("mono.y4m");
    let frames: Vec<Frame> = (0..3u8)
        .map(|k| {
            let data = (0..15u8)
                .map(|i| i.wrapping_mul(17).wrapping_add(k))
                .collect();
            Frame::new(5, 3, PixelFormat::Gray8, data).unwrap()
        })
        .collect();
    let mut w = Y4mWriter::create(&path, 5, 3, (30000, 1001), Colorspace::Mono).unwrap();
    for f in &frames {
        w.write_frame(f).unwrap();
    }
    assert_eq!(w.frames_written(), 3);
    w.finish().unwrap();
    let text = std::fs::read(&path).unwrap();
    assert!(
        text.starts_with(b"YUV4MPEG2 W5 H3 F30000:1001 Ip A1:1 Cmono XCOLORRANGE=FULL\nFRAME\n")
    );
    let mut r = Y4mReader::open(&path).unwrap();
    assert_eq!(
        (r.width(), r.height(), r.frame_rate()),
        (5, 3, (30000, 1001))
    );
    assert_eq!(
        (r.colorspace(), r.color_range()),
        (Colorspace::Mono, ColorRange::Full)
    );
    let back = read_all(&mut r, PixelFormat::Gray8);
    assert_eq!(r.frames_read(), 3);
    assert_eq!(back.len(), 3);
    for (i, (a, b)) in frames.iter().zip(&back).enumerate() {
        assert_eq!(a.data(), b.data());
        assert_eq!(b.sequence, i as u64);
    }
    // Full-range mono as RGB is the gray value three times.
    let mut r = Y4mReader::open(&path).unwrap();
    let rgb = read_all(&mut r, PixelFormat::Rgb8);
    let expected: Vec<u8> = frames[2].data().iter().flat_map(|&v| [v; 3]).collect();
    assert_eq!(rgb[2].data(), &expected[..]);
}

/// Frames of varied colours, `w × h`.
fn colour_frame(w: usize, h: usize, k: usize) -> Frame {
    let data = (0..w * h * 3)
        .map(|i| ((i * 37 + k * 101) % 256) as u8)
        .collect();
    Frame::new(w, h, PixelFormat::Rgb8, data).unwrap()
}

#[test]
fn rgb_444_round_trip_within_2() {
    let mut w = Y4mWriter::new(Vec::new(), "mem.y4m", 7, 5, (25, 1), Colorspace::Yuv444).unwrap();
    let frames: Vec<Frame> = (0..2).map(|k| colour_frame(7, 5, k)).collect();
    for f in &frames {
        w.write_frame(f).unwrap();
    }
    let bytes = w.finish().unwrap();
    let mut r = reader(&bytes).unwrap();
    let back = read_all(&mut r, PixelFormat::Rgb8);
    assert_eq!(back.len(), 2);
    // Tolerance: YCbCr codes are rounded, so RGB comes back within 2.
    for (a, b) in frames.iter().zip(&back) {
        for (&x, &y) in a.data().iter().zip(b.data()) {
            assert!(x.abs_diff(y) <= 2, "{x} vs {y}");
        }
    }
    // Gray8 out of a colour stream is its Y plane: full-range luma.
    let mut r = reader(&bytes).unwrap();
    let gray = read_all(&mut r, PixelFormat::Gray8);
    let px = &frames[1].data()[..3];
    assert_eq!(gray[1].data()[0], convert::luma(px[0], px[1], px[2]));
}

#[test]
fn rgb_420jpeg_averages_chroma_blocks() {
    // 3x3: one 2x2 block of red, flat colours elsewhere; odd sizes round up.
    let mut f = Frame::zeros(3, 3, PixelFormat::Rgb8);
    for (i, px) in f.data_mut().chunks_exact_mut(3).enumerate() {
        px.copy_from_slice(if i % 3 < 2 && i / 3 < 2 {
            &[200, 30, 40]
        } else {
            &[20, 90, 220]
        });
    }
    let mut w =
        Y4mWriter::new(Vec::new(), "mem.y4m", 3, 3, (25, 1), Colorspace::Yuv420Jpeg).unwrap();
    w.write_frame(&f).unwrap();
    let bytes = w.finish().unwrap();
    // Header, FRAME line, 9 Y + 4 Cb + 4 Cr bytes.
    let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert_eq!(bytes.len(), header_len + 6 + 9 + 4 + 4);
    let back = read_all(&mut reader(&bytes).unwrap(), PixelFormat::Rgb8);
    for (&x, &y) in f.data().iter().zip(back[0].data()) {
        assert!(x.abs_diff(y) <= 2, "{x} vs {y}");
    }
}

#[test]
fn hand_made_420_converts_to_known_rgb() {
    // 4x2, limited range, one colour per 2x2 chroma block: red, then blue.
    // BT.601 limited codes: red (81, 90, 240), blue (41, 240, 110).
    let mut bytes = b"YUV4MPEG2 C420mpeg2 H2 W4 F30:1\nFRAME\n".to_vec();
    bytes.extend_from_slice(&[81, 81, 41, 41, 81, 81, 41, 41]); // Y
    bytes.extend_from_slice(&[90, 240]); // Cb
    bytes.extend_from_slice(&[240, 110]); // Cr
    let mut r = reader(&bytes).unwrap();
    assert_eq!(
        (r.colorspace(), r.color_range()),
        (Colorspace::Yuv420Mpeg2, ColorRange::Limited)
    );
    let f = &read_all(&mut r, PixelFormat::Rgb8)[0];
    // Tolerance 2: the standard codes are themselves rounded.
    let want = [[255, 0, 0], [255, 0, 0], [0, 0, 255], [0, 0, 255]];
    for (row, chunk) in f.data().chunks_exact(12).enumerate() {
        for (x, px) in chunk.chunks_exact(3).enumerate() {
            for (c, (&got, &exp)) in px.iter().zip(&want[x]).enumerate() {
                assert!(
                    got.abs_diff(exp) <= 2,
                    "pixel ({x}, {row}) channel {c}: {got} vs {exp}"
                );
            }
        }
    }
    // Full range, 4:2:2: red (76, 85, 255); the second pixel shares its
    // chroma with Y = 255 (R 255 + 178 clamps, G and B 255 - 76 = 179).
    let mut bytes = b"YUV4MPEG2 W2 H1 C422 XCOLORRANGE=FULL\nFRAME xyz\n".to_vec();
    bytes.extend_from_slice(&[76, 255, 85, 255]);
    let f = &read_all(&mut reader(&bytes).unwrap(), PixelFormat::Rgb8)[0];
    assert_eq!(f.data(), &[254, 0, 0, 255, 179, 179]);
    // Gray8 is the Y plane untouched, limited range or not.
    let mut r = reader(b"YUV4MPEG2 W2 H1 C444\nFRAME\n\x10\xeb\x80\x80\x80\x80").unwrap();
    assert_eq!(read_all(&mut r, PixelFormat::Gray8)[0].data(), &[16, 235]);
    let mut r = reader(b"YUV4MPEG2 W2 H1 C444\nFRAME\n\x10\xeb\x80\x80\x80\x80").unwrap();
    assert_eq!(
        read_all(&mut r, PixelFormat::Rgb8)[0].data(),
        &[0, 0, 0, 255, 255, 255]
    );
}

#[test]
fn header_defaults_and_ignored_tags() {
    let r = reader(b"YUV4MPEG2  H2 W3 It A1:1 XYSCSS=420JPEG F0:0 \n").unwrap();
    assert_eq!((r.width(), r.height()), (3, 2));
    assert_eq!(r.frame_rate(), DEFAULT_FRAME_RATE);
    assert_eq!(r.colorspace(), Colorspace::Yuv420Jpeg);
    assert_eq!(r.color_range(), ColorRange::Limited);
    let mut r = reader(b"YUV4MPEG2 W3 H2\n").unwrap();
    let mut f = Frame::zeros(1, 1, PixelFormat::Gray8);
    assert!(!r.read_frame(&mut f, PixelFormat::Gray8).unwrap());
    assert_eq!((f.width(), r.frames_read()), (1, 0));
}

#[test]
fn truncated_frame_names_file_index_and_sizes() {
    let mut bytes = b"YUV4MPEG2 W4 H2 C420jpeg\n".to_vec();
    bytes.extend_from_slice(b"FRAME\n");
    bytes.extend_from_slice(&[0; 12]);
    bytes.extend_from_slice(b"FRAME\n");
    bytes.extend_from_slice(&[0; 7]);
    assert_eq!(
        error_text(&bytes),
        "mem.y4m: frame 1 is truncated: expected 12 bytes of pixels, got 7"
    );
    // Cut inside the FRAME line itself.
    assert_eq!(
        error_text(b"YUV4MPEG2 W1 H1 Cmono\nFRAME\n\x00FRA"),
        "mem.y4m: frame 1: header \"FRA\" then the end of the file: expected \"FRAME\", \
         optional parameters and a newline"
    );
}

#[test]
fn bad_frame_lines_are_errors() {
    let text = error_text(b"YUV4MPEG2 W1 H1 Cmono\nFRAMEX\n\x00");
    assert!(
        text.starts_with("mem.y4m: frame 0: header \"FRAMEX\\n\": expected \"FRAME\""),
        "{text}"
    );
    let mut long = b"YUV4MPEG2 W1 H1 Cmono\nFRAME ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 5000));
    let text = error_text(&long);
    assert!(text.contains("…\" with no newline"), "{text}");
}

#[test]
fn bad_magic() {
    assert_eq!(
        error_text(b"YUV4MPEG W1 H1\n"),
        "mem.y4m: not a YUV4MPEG2 file: starts with \"YUV4MPEG W1 H1\\n\", expected \"YUV4MPEG2 \""
    );
    assert!(error_text(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").contains("starts with \"\\x89PNG\\r\\n"));
    assert!(error_text(b"").contains("starts with nothing (the file is empty)"));
    assert!(error_text(b"YUV4MPEG2X W1\n").contains("not a YUV4MPEG2 file"));
    // Garbage without newlines is read no further than MAX_LINE bytes.
    let mut garbage = b"YUV4MPEG2 ".to_vec();
    garbage.extend(std::iter::repeat_n(b'W', 10 * MAX_LINE));
    assert_eq!(
        error_text(&garbage),
        "mem.y4m: stream header: no end of line within 1024 bytes: expected a short text line"
    );
}

#[test]
fn unsupported_colorspaces_list_the_supported_ones() {
    for cs in ["420p10", "mono16", "444alpha", "gray"] {
        let text = error_text(format!("YUV4MPEG2 W2 H2 C{cs}\n").as_bytes());
        assert_eq!(
            text,
            format!(
                "mem.y4m: unsupported colorspace `C{cs}`: expected one of \
                 mono, 420jpeg, 420paldv, 420mpeg2, 420, 422, 444"
            )
        );
    }
    let err = Y4mWriter::new(Vec::new(), "out.y4m", 2, 2, (25, 1), Colorspace::Yuv422).unwrap_err();
    assert_eq!(
        err.to_string(),
        "out.y4m: unsupported colorspace `C422`: expected one of mono, 444, 420jpeg"
    );
}

#[test]
fn bad_header_tags() {
    let cases: [(&[u8], &str); 7] = [
        (b"YUV4MPEG2 H2\n", "no W tag: expected W<width in pixels>"),
        (b"YUV4MPEG2 W2\n", "no H tag: expected H<height in pixels>"),
        (
            b"YUV4MPEG2 W0 H2\n",
            "tag `W0`: expected a whole number of pixels from 1 to 32768",
        ),
        (
            b"YUV4MPEG2 W2 H99999\n",
            "tag `H99999`: expected a whole number",
        ),
        (
            b"YUV4MPEG2 W2 H2 F25\n",
            "tag `F25`: expected F<numerator>:<denominator>",
        ),
        (
            b"YUV4MPEG2 W2 H2 XCOLORRANGE=TV\n",
            "expected XCOLORRANGE=FULL or",
        ),
        (b"YUV4MPEG2 W2 H2", "the file ends inside it"),
    ];
    for (bytes, needle) in cases {
        let text = error_text(bytes);
        assert!(text.starts_with("mem.y4m: stream header: "), "{text}");
        assert!(text.contains(needle), "{text:?} lacks {needle:?}");
    }
}

#[test]
fn writer_checks_frames_and_parameters() {
    let mut w = Y4mWriter::new(Vec::new(), "out.y4m", 4, 4, (25, 1), Colorspace::Mono).unwrap();
    let err = w
        .write_frame(&Frame::zeros(4, 3, PixelFormat::Gray8))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "out.y4m: frame 0 is 4x3: expected 4x4, the stream's size"
    );
    assert_eq!(w.frames_written(), 0);
    let err = Y4mWriter::new(Vec::new(), "out.y4m", 0, 4, (25, 1), Colorspace::Mono).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("out.y4m: cannot write this stream: frame size 0x4"));
    let path = scratch("never-created.y4m");
    let err = Y4mWriter::create(&path, 4, 4, (25, 0), Colorspace::Mono).unwrap_err();
    assert!(
        err.to_string()
            .contains("frame rate 25:0: expected a positive"),
        "{err}"
    );
    assert!(!path.exists());
    let err = Y4mReader::open(scratch("missing.y4m")).unwrap_err();
    assert!(matches!(err, Y4mError::Read { .. }));
    assert!(
        err.to_string().contains("missing.y4m: cannot read: "),
        "{err}"
    );
}

#[test]
fn demo_clip_reads_without_allocating_per_frame() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch/demo/clip.y4m");
    let mut r = Y4mReader::open(&path).unwrap();
    assert_eq!((r.width(), r.height(), r.frame_rate()), (256, 256, (25, 1)));
    assert_eq!(r.colorspace(), Colorspace::Mono);
    let mut frame = Frame::zeros(256, 256, PixelFormat::Gray8);
    assert!(r.read_frame(&mut frame, PixelFormat::Gray8).unwrap());
    let (ptr, cap) = (frame.data().as_ptr(), r.planes_capacity());
    let mut count = 1;
    let mut nonconstant = 0;
    while r.read_frame(&mut frame, PixelFormat::Gray8).unwrap() {
        assert_eq!(frame.sequence, count);
        assert_eq!((frame.data().as_ptr(), r.planes_capacity()), (ptr, cap));
        nonconstant += usize::from(frame.data().iter().any(|&v| v != frame.data()[0]));
        count += 1;
    }
    assert_eq!((count, r.frames_read()), (160, 160));
    assert_eq!(nonconstant, 159);
    // Clean end of file: stays at the end.
    assert!(!r.read_frame(&mut frame, PixelFormat::Gray8).unwrap());
}
