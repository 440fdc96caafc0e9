use std::path::PathBuf;

use super::*;

/// A fresh path in this process's scratch folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sammix-image-io-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// Encodes a PNG with the png crate itself: any colour type and depth,
/// optional palette and tRNS. `data` is packed rows as PNG stores them.
#[allow(clippy::too_many_arguments)]
fn encode(
    w: u32,
    h: u32,
    color: ColorType,
    depth: BitDepth,
    palette: Option<&[u8]>,
    trns: Option<&[u8]>,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        if let Some(p) = palette {
            enc.set_palette(p.to_vec());
        }
        if let Some(t) = trns {
            enc.set_trns(t.to_vec());
        }
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(data).unwrap();
        writer.finish().unwrap();
    }
    out
}

/// Writes an encoded PNG to a scratch file.
fn png_file(name: &str, w: u32, h: u32, color: ColorType, depth: BitDepth, data: &[u8]) -> PathBuf {
    let path = scratch(name);
    std::fs::write(&path, encode(w, h, color, depth, None, None, data)).unwrap();
    path
}

#[test]
fn gray8_round_trip() {
    let path = scratch("gray8.png");
    let data: Vec<u8> = (0..12).map(|i| i * 20).collect();
    write_gray_png(&path, 4, 3, &data).unwrap();
    let f = read_frame(&path).unwrap();
    assert_eq!(
        (f.width(), f.height(), f.format()),
        (4, 3, PixelFormat::Gray8)
    );
    assert_eq!(f.data(), &data[..]);
    assert_eq!(f.sequence, 0);
    assert!(f.captured.is_none());
}

#[test]
fn rgb_frame_round_trip() {
    let path = scratch("rgb8.png");
    let data: Vec<u8> = (0..18).map(|i| 255 - i * 7).collect();
    let frame = Frame::new(3, 2, PixelFormat::Rgb8, data).unwrap();
    write_frame_png(&path, &frame).unwrap();
    let back = read_frame(&path).unwrap();
    assert_eq!(back.format(), PixelFormat::Rgb8);
    assert_eq!((back.width(), back.height()), (3, 2));
    assert_eq!(back.data(), frame.data());
}

#[test]
fn low_bit_gray_is_scaled_to_8_bits() {
    // 1 bit: 1 0 1 1 | 0 0 0 1 (4 pixels a row, rows padded to bytes).
    let p1 = png_file(
        "g1.png",
        4,
        2,
        ColorType::Grayscale,
        BitDepth::One,
        &[0b1011_0000, 0b0001_0000],
    );
    assert_eq!(
        read_frame(&p1).unwrap().data(),
        &[255, 0, 255, 255, 0, 0, 0, 255]
    );
    // 2 bits: 0 1 2 3 → 0 85 170 255.
    let p2 = png_file(
        "g2.png",
        4,
        1,
        ColorType::Grayscale,
        BitDepth::Two,
        &[0b00_01_10_11],
    );
    assert_eq!(read_frame(&p2).unwrap().data(), &[0, 85, 170, 255]);
    // 4 bits: 0 15 → 0 255, 1 → 17.
    let p4 = png_file(
        "g4.png",
        3,
        1,
        ColorType::Grayscale,
        BitDepth::Four,
        &[0x0F, 0x10],
    );
    assert_eq!(read_frame(&p4).unwrap().data(), &[0, 255, 17]);
    let m = read_mask(&p1).unwrap();
    assert_eq!(m.data(), &[1, 0, 1, 1, 0, 0, 0, 1]);
}

#[test]
fn sixteen_bit_keeps_the_high_byte() {
    // Big-endian samples 0xFFFF 0x00FF 0x1234 0x80FF.
    let bytes = [0xFF, 0xFF, 0x00, 0xFF, 0x12, 0x34, 0x80, 0xFF];
    let path = png_file(
        "g16.png",
        4,
        1,
        ColorType::Grayscale,
        BitDepth::Sixteen,
        &bytes,
    );
    let f = read_frame(&path).unwrap();
    assert_eq!(f.format(), PixelFormat::Gray8);
    assert_eq!(f.data(), &[255, 0, 0x12, 0x80]);
    // The mask keeps full depth: 0x00FF is non-zero, hence target.
    assert_eq!(read_mask(&path).unwrap().data(), &[1, 1, 1, 1]);
    let rgb16 = [0x01, 0x00, 0x02, 0x00, 0xFE, 0xFF];
    let path = png_file("rgb16.png", 1, 1, ColorType::Rgb, BitDepth::Sixteen, &rgb16);
    let f = read_frame(&path).unwrap();
    assert_eq!(
        (f.format(), f.data()),
        (PixelFormat::Rgb8, &[1u8, 2, 0xFE][..])
    );
}

#[test]
fn alpha_is_dropped() {
    let ga = png_file(
        "ga.png",
        2,
        1,
        ColorType::GrayscaleAlpha,
        BitDepth::Eight,
        &[10, 0, 0, 255],
    );
    let f = read_frame(&ga).unwrap();
    assert_eq!((f.format(), f.data()), (PixelFormat::Gray8, &[10u8, 0][..]));
    assert_eq!(read_mask(&ga).unwrap().data(), &[1, 0]);
    let rgba = png_file(
        "rgba.png",
        2,
        1,
        ColorType::Rgba,
        BitDepth::Eight,
        &[1, 2, 3, 0, 0, 0, 0, 255],
    );
    let f = read_frame(&rgba).unwrap();
    assert_eq!(
        (f.format(), f.data()),
        (PixelFormat::Rgb8, &[1u8, 2, 3, 0, 0, 0][..])
    );
    // Opaque black is background; transparent colour is target.
    assert_eq!(read_mask(&rgba).unwrap().data(), &[1, 0]);
    // tRNS on a gray image expands to an alpha channel, dropped as well.
    let path = scratch("gray-trns.png");
    let bytes = encode(
        2,
        1,
        ColorType::Grayscale,
        BitDepth::Eight,
        None,
        Some(&[0, 7]),
        &[7, 9],
    );
    std::fs::write(&path, bytes).unwrap();
    let f = read_frame(&path).unwrap();
    assert_eq!((f.format(), f.data()), (PixelFormat::Gray8, &[7u8, 9][..]));
}

#[test]
fn palettes_expand() {
    let colour = [0, 0, 0, 200, 10, 20, 0, 0, 5];
    let path = scratch("pal.png");
    let bytes = encode(
        3,
        1,
        ColorType::Indexed,
        BitDepth::Eight,
        Some(&colour),
        None,
        &[1, 0, 2],
    );
    std::fs::write(&path, bytes).unwrap();
    let f = read_frame(&path).unwrap();
    assert_eq!(f.format(), PixelFormat::Rgb8);
    assert_eq!(f.data(), &[200, 10, 20, 0, 0, 0, 0, 0, 5]);
    assert_eq!(read_mask(&path).unwrap().data(), &[1, 0, 1]);
    // With tRNS the expansion goes through RGBA; alpha is dropped.
    let path = scratch("pal-trns.png");
    let bytes = encode(
        3,
        1,
        ColorType::Indexed,
        BitDepth::Eight,
        Some(&colour),
        Some(&[0]),
        &[1, 0, 2],
    );
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(
        read_frame(&path).unwrap().data(),
        &[200, 10, 20, 0, 0, 0, 0, 0, 5]
    );
    // A palette of grays reads as Gray8, at 4 bits per index too.
    let grays = [0, 0, 0, 128, 128, 128, 255, 255, 255];
    let path = scratch("pal-gray.png");
    let bytes = encode(
        3,
        1,
        ColorType::Indexed,
        BitDepth::Four,
        Some(&grays),
        None,
        &[0x21, 0x00],
    );
    std::fs::write(&path, bytes).unwrap();
    let f = read_frame(&path).unwrap();
    assert_eq!(
        (f.format(), f.data()),
        (PixelFormat::Gray8, &[255u8, 128, 0][..])
    );
}

#[test]
fn masks_round_trip_as_0_and_255() {
    let path = scratch("mask.png");
    let mask = Mask::from_bytes(3, 2, &[0, 1, 0, 1, 1, 0]).unwrap();
    write_mask_png(&path, &mask).unwrap();
    let as_frame = read_frame(&path).unwrap();
    assert_eq!(as_frame.data(), &[0, 255, 0, 255, 255, 0]);
    assert_eq!(read_mask(&path).unwrap(), mask);
}

#[test]
fn read_frame_into_reuses_the_buffer() {
    let a = png_file(
        "into-a.png",
        4,
        4,
        ColorType::Rgb,
        BitDepth::Eight,
        &[7; 48],
    );
    let b = png_file(
        "into-b.png",
        4,
        2,
        ColorType::Grayscale,
        BitDepth::Eight,
        &[9; 8],
    );
    let mut frame = Frame::zeros(4, 4, PixelFormat::Rgb8);
    frame.sequence = 41;
    let ptr = frame.data().as_ptr();
    read_frame_into(&a, &mut frame).unwrap();
    assert_eq!(frame.data().as_ptr(), ptr);
    read_frame_into(&b, &mut frame).unwrap();
    assert_eq!(frame.data().as_ptr(), ptr);
    assert_eq!(
        (frame.width(), frame.height(), frame.format()),
        (4, 2, PixelFormat::Gray8)
    );
    assert_eq!(frame.data(), &[9; 8]);
    assert_eq!(frame.sequence, 41);
}

#[test]
fn demo_masks_read() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/sammix-us-scratch/demo/masks");
    let mask = read_mask(&dir.join("000000.png")).unwrap();
    assert_eq!((mask.width(), mask.height()), (256, 256));
    let frame = read_frame(&dir.join("000000.png")).unwrap();
    assert_eq!(frame.format(), PixelFormat::Gray8);
    assert_eq!(
        mask.area(),
        frame.data().iter().filter(|&&v| v != 0).count()
    );
}

/// Asserts that the message starts with the path and contains `needle`.
fn assert_message(err: &ImageError, path: &Path, needle: &str) {
    let text = err.to_string();
    assert!(text.starts_with(&path.display().to_string()), "{text}");
    assert!(text.contains(needle), "{text:?} lacks {needle:?}");
}

#[test]
fn corrupt_files_are_errors() {
    let good = encode(
        16,
        16,
        ColorType::Rgb,
        BitDepth::Eight,
        None,
        None,
        &[99; 768],
    );
    // Cut inside the header, and inside the image data.
    for (name, cut) in [("cut-header.png", 20), ("cut-data.png", good.len() - 20)] {
        let path = scratch(name);
        std::fs::write(&path, &good[..cut]).unwrap();
        let err = read_frame(&path).unwrap_err();
        assert!(matches!(err, ImageError::Decode { .. }), "{err:?}");
        assert_message(&err, &path, "not a valid PNG");
        assert!(read_mask(&path).is_err());
    }
    let path = scratch("not-a.png");
    std::fs::write(&path, b"YUV4MPEG2 W2 H2\nFRAME\n....").unwrap();
    let err = read_frame(&path).unwrap_err();
    assert!(matches!(err, ImageError::Decode { .. }), "{err:?}");
    assert_message(&err, &path, "expected a complete PNG file");
    let path = scratch("empty.png");
    std::fs::write(&path, b"").unwrap();
    let err = read_mask(&path).unwrap_err();
    assert_message(&err, &path, "ends early");
    let path = scratch("missing.png");
    let err = read_frame(&path).unwrap_err();
    assert!(matches!(err, ImageError::Read { .. }), "{err:?}");
    assert_message(&err, &path, "cannot read");
}

#[test]
fn oversized_headers_are_refused_before_decoding() {
    let path = scratch("huge.png");
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, 100_000, 100_000);
        enc.set_color(ColorType::Grayscale);
        // A scrap of image data; the writer's drop closes with IEND.
        let mut writer = enc.write_header().unwrap();
        writer.write_chunk(png::chunk::IDAT, &[0x78, 0x9c]).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    let err = read_frame(&path).unwrap_err();
    assert!(matches!(err, ImageError::Unsupported { .. }), "{err:?}");
    assert_message(
        &err,
        &path,
        "100000x100000 pixels: expected at most 16777216 pixels",
    );
}

#[test]
fn writers_check_sizes() {
    let path = scratch("bad-size.png");
    let err = write_gray_png(&path, 4, 3, &[0; 11]).unwrap_err();
    assert_message(
        &err,
        &path,
        "a 4x3 image with 1 byte(s) per pixel needs 12 bytes, got 11",
    );
    let err = write_mask_png(&path, &Mask::zeros(0, 3)).unwrap_err();
    assert!(matches!(err, ImageError::Unsupported { .. }), "{err:?}");
    assert_message(&err, &path, "0x3 pixels: expected 1 to");
    assert!(!path.exists());
    let nowhere = scratch("no-such-dir").join("x.png");
    let err = write_gray_png(&nowhere, 1, 1, &[0]).unwrap_err();
    assert!(matches!(err, ImageError::Write { .. }), "{err:?}");
    assert_message(&err, &nowhere, "cannot write");
}
