use super::*;

const GRAY: u8 = 100;

fn gray_frame(w: usize, h: usize) -> Frame {
    Frame::new(w, h, PixelFormat::Gray8, vec![GRAY; w * h]).unwrap()
}

/// A filled rectangle [x0, x1) × [y0, y1).
fn rect_mask(w: usize, h: usize, x0: usize, y0: usize, x1: usize, y1: usize) -> Mask {
    let mut m = Mask::zeros(w, h);
    for y in y0..y1 {
        for x in x0..x1 {
            m.data_mut()[y * w + x] = 1;
        }
    }
    m
}

fn px(f: &Frame, x: usize, y: usize) -> [u8; 3] {
    let i = (y * f.width() + x) * 3;
    [f.data()[i], f.data()[i + 1], f.data()[i + 2]]
}

fn tinted(v: u8, style: &OverlayStyle) -> [u8; 3] {
    let a = (style.tint_alpha * 256.0).round() as u16;
    style
        .tint
        .map(|c| ((u16::from(v) * (256 - a) + u16::from(c) * a + 128) >> 8) as u8)
}

#[test]
fn target_is_tinted_and_outlined_and_the_rest_untouched() {
    let style = OverlayStyle::default();
    let frame = gray_frame(64, 48);
    let mask = rect_mask(64, 48, 20, 20, 40, 35);
    let mut out = Frame::zeros(1, 1, PixelFormat::Gray8);
    render(&frame, &mask, None, 0.87, false, &style, &mut out);
    assert_eq!(
        (out.width(), out.height(), out.format()),
        (64, 48, PixelFormat::Rgb8)
    );
    // Inside: tinted, and different from both the gray and the outline.
    let inside = px(&out, 30, 27);
    assert_eq!(inside, tinted(GRAY, &style));
    assert_ne!(inside, [GRAY; 3]);
    assert_ne!(inside, style.outline);
    // Edges and corners of the mask: outline, exactly 1 px wide here.
    for (x, y) in [(20, 20), (39, 34), (30, 20), (20, 27), (39, 27), (30, 34)] {
        assert_eq!(px(&out, x, y), style.outline, "({x}, {y})");
    }
    assert_eq!(px(&out, 21, 27), tinted(GRAY, &style));
    // Outside the mask, and far away: the unchanged gray.
    for (x, y) in [(19, 27), (40, 27), (60, 44), (5, 40)] {
        assert_eq!(px(&out, x, y), [GRAY; 3], "({x}, {y})");
    }
}

#[test]
fn mask_on_the_image_border_is_outlined_there() {
    let style = OverlayStyle::default();
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    let mask = rect_mask(32, 32, 10, 20, 32, 32);
    render(
        &gray_frame(32, 32),
        &mask,
        None,
        0.5,
        false,
        &style,
        &mut out,
    );
    assert_eq!(px(&out, 31, 25), style.outline);
    assert_eq!(px(&out, 20, 31), style.outline);
    assert_eq!(px(&out, 30, 25), tinted(GRAY, &style));
}

#[test]
fn wide_frames_get_a_two_pixel_outline() {
    let style = OverlayStyle::default();
    let (w, h) = (640, 480);
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    render(
        &gray_frame(w, h),
        &rect_mask(w, h, 100, 100, 200, 200),
        None,
        0.5,
        false,
        &style,
        &mut out,
    );
    assert_eq!(px(&out, 100, 150), style.outline);
    assert_eq!(px(&out, 101, 150), style.outline);
    assert_eq!(px(&out, 102, 150), tinted(GRAY, &style));
    assert_eq!(px(&out, 99, 150), [GRAY; 3]);
}

#[test]
fn mask_of_another_size_is_sampled_at_the_frame() {
    let style = OverlayStyle::default();
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    // The left half of a 4x4 mask covers the left half of a 64x64 frame.
    let mask = rect_mask(4, 4, 0, 0, 2, 4);
    render(
        &gray_frame(64, 64),
        &mask,
        None,
        0.5,
        false,
        &style,
        &mut out,
    );
    assert_eq!(px(&out, 16, 40), tinted(GRAY, &style));
    assert_eq!(px(&out, 31, 40), style.outline);
    assert_eq!(px(&out, 32, 40), [GRAY; 3]);
    // A 0x0 mask draws nothing and does not panic.
    render(
        &gray_frame(64, 64),
        &Mask::zeros(0, 0),
        None,
        0.5,
        false,
        &style,
        &mut out,
    );
    assert_eq!(px(&out, 16, 40), [GRAY; 3]);
}

#[test]
fn box_corners_are_coloured_and_clipped() {
    let style = OverlayStyle::default();
    let frame = gray_frame(64, 48);
    let empty = Mask::zeros(64, 48);
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    render(
        &frame,
        &empty,
        Some([20.0, 22.0, 50.0, 40.0]),
        0.1,
        false,
        &style,
        &mut out,
    );
    for (x, y) in [(20, 22), (50, 22), (20, 40), (50, 40), (35, 22), (20, 30)] {
        assert_eq!(px(&out, x, y), style.bbox, "({x}, {y})");
    }
    assert_eq!(px(&out, 35, 30), [GRAY; 3]);
    assert_eq!(px(&out, 19, 22), [GRAY; 3]);
    assert_eq!(px(&out, 51, 40), [GRAY; 3]);
    // Partly off the frame: drawn along the frame's edge.
    render(
        &frame,
        &empty,
        Some([40.0, 30.0, 100.0, 90.0]),
        0.1,
        false,
        &style,
        &mut out,
    );
    assert_eq!(px(&out, 40, 30), style.bbox);
    assert_eq!(px(&out, 63, 47), style.bbox);
    assert_eq!(px(&out, 63, 35), style.bbox);
    assert_eq!(px(&out, 50, 40), [GRAY; 3]);
}

#[test]
fn bad_boxes_are_ignored_without_panic() {
    let style = OverlayStyle::default();
    let frame = gray_frame(40, 30);
    let empty = Mask::zeros(40, 30);
    let mut reference = Frame::zeros(1, 1, PixelFormat::Rgb8);
    render(&frame, &empty, None, 0.3, false, &style, &mut reference);
    let bad = [
        [f32::NAN, 0.0, 10.0, 10.0],
        [0.0, 0.0, f32::INFINITY, 10.0],
        [f32::NEG_INFINITY, 0.0, 10.0, 10.0],
        [20.0, 20.0, 10.0, 25.0],
        [10.0, 20.0, 15.0, 5.0],
        [100.0, 100.0, 200.0, 200.0],
        [-50.0, -50.0, -1.0, -1.0],
        [-1e30, 5.0, -1e29, 8.0],
        [1e30, 5.0, 2e30, 8.0],
    ];
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    for b in bad {
        render(&frame, &empty, Some(b), 0.3, false, &style, &mut out);
        assert_eq!(out.data(), reference.data(), "{b:?}");
    }
    // Huge but valid: clipped to the frame's border.
    render(
        &frame,
        &empty,
        Some([-1e30, -1e30, 1e30, 1e30]),
        0.3,
        false,
        &style,
        &mut out,
    );
    assert_eq!(px(&out, 39, 29), style.bbox);
    assert_eq!(px(&out, 39, 15), style.bbox);
}

#[test]
fn label_shows_the_presence_probability() {
    let mut buf = [0; font::LABEL_CAPACITY];
    assert_eq!(font::label(0.87, false, false, &mut buf), b"P 0.87");
    assert_eq!(font::label(0.123, true, false, &mut buf), b"P 0.12 -");
    assert_eq!(font::label(0.5, true, true, &mut buf), b"P 0.50 - !");
    assert_eq!(font::label(0.5, false, true, &mut buf), b"P 0.50 !");
    assert_eq!(font::label(1.0, false, false, &mut buf), b"P 1.00");
    assert_eq!(font::label(7.0, false, false, &mut buf), b"P 1.00");
    assert_eq!(font::label(-3.0, false, false, &mut buf), b"P 0.00");
    assert_eq!(font::label(0.996, false, false, &mut buf), b"P 1.00");
    assert_eq!(font::label(f32::NAN, true, false, &mut buf), b"P NA -");
    assert_eq!(
        font::label(f32::INFINITY, false, false, &mut buf),
        b"P 1.00"
    );
}

/// The top-left text box: its background, and the text colour somewhere in it.
fn check_text_box(out: &Frame, style: &OverlayStyle, box_w: usize, box_h: usize) {
    assert_eq!(px(out, 0, 0), style.text_background);
    assert_eq!(px(out, box_w - 1, box_h - 1), style.text_background);
    assert_eq!(px(out, box_w, box_h), [GRAY; 3]);
    let text = (0..box_h)
        .flat_map(|y| (0..box_w).map(move |x| (x, y)))
        .filter(|&(x, y)| px(out, x, y) == style.text)
        .count();
    assert!(text > 20, "only {text} text pixels");
}

#[test]
fn label_is_drawn_top_left_and_scaled_on_large_frames() {
    let style = OverlayStyle::default();
    let mask = rect_mask(300, 200, 150, 100, 160, 110);
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    // "P 0.87": 6 glyphs of 6 columns, less a spacing, plus 2 + 2 padding.
    render(
        &gray_frame(200, 100),
        &Mask::zeros(200, 100),
        None,
        0.87,
        false,
        &style,
        &mut out,
    );
    check_text_box(&out, &style, 6 * 6 - 1 + 4 + 6 * 2, 7 + 4);
    render(
        &gray_frame(300, 200),
        &mask,
        None,
        0.87,
        false,
        &style,
        &mut out,
    );
    check_text_box(&out, &style, 2 * (6 * 6 - 1 + 4), 2 * (7 + 4));
    // The text differs with the value.
    let mut other = Frame::zeros(1, 1, PixelFormat::Rgb8);
    render(
        &gray_frame(300, 200),
        &mask,
        None,
        0.12,
        false,
        &style,
        &mut other,
    );
    assert_ne!(out.data()[..300 * 22 * 3], other.data()[..300 * 22 * 3]);
}

#[test]
fn tiny_frames_do_not_panic() {
    let style = OverlayStyle::default();
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    for (w, h) in [(1, 1), (3, 2), (1, 9), (0, 0)] {
        let frame = Frame::zeros(w, h, PixelFormat::Gray8);
        let full = Mask::from_bytes(w, h, &vec![1; w * h]).unwrap();
        render(
            &frame,
            &full,
            Some([0.0, 0.0, 5.0, 5.0]),
            0.5,
            false,
            &style,
            &mut out,
        );
        assert_eq!((out.width(), out.height()), (w, h));
        assert_eq!(out.data().len(), w * h * 3);
    }
}

#[test]
fn output_buffer_is_reused_across_calls() {
    let style = OverlayStyle::default();
    let frame = gray_frame(320, 240);
    let mask = rect_mask(320, 240, 100, 100, 150, 150);
    let mut out = Frame::zeros(320, 240, PixelFormat::Rgb8);
    let ptr = out.data().as_ptr();
    for i in 0..5 {
        render(
            &frame,
            &mask,
            Some([90.0, 90.0, 160.0, 160.0]),
            0.2 * i as f32,
            false,
            &style,
            &mut out,
        );
        assert_eq!(out.data().as_ptr(), ptr, "call {i} reallocated");
    }
    // A smaller frame fits in the same buffer too.
    render(
        &gray_frame(64, 48),
        &Mask::zeros(64, 48),
        None,
        0.5,
        false,
        &style,
        &mut out,
    );
    assert_eq!(out.data().as_ptr(), ptr);
}

#[test]
fn rgb_input_stays_coloured_and_keeps_its_identity() {
    let style = OverlayStyle::default();
    let (w, h) = (48, 32);
    let data: Vec<u8> = (0..w * h)
        .flat_map(|i| [200, (i % 256) as u8, 30])
        .collect();
    let mut frame = Frame::new(w, h, PixelFormat::Rgb8, data).unwrap();
    frame.sequence = 17;
    let mask = rect_mask(w, h, 20, 10, 30, 20);
    let mut out = Frame::zeros(1, 1, PixelFormat::Rgb8);
    render(&frame, &mask, None, 0.5, false, &style, &mut out);
    assert_eq!(out.sequence, 17);
    let i = 28 * w + 40;
    assert_eq!(px(&out, 40, 28), [200, (i % 256) as u8, 30]);
    let inside = 15 * w + 25;
    let want = [200u8, (inside % 256) as u8, 30];
    let a = (style.tint_alpha * 256.0).round() as u16;
    let blend = |v: u8, c: u8| ((u16::from(v) * (256 - a) + u16::from(c) * a + 128) >> 8) as u8;
    assert_eq!(
        px(&out, 25, 15),
        [
            blend(want[0], style.tint[0]),
            blend(want[1], style.tint[1]),
            blend(want[2], style.tint[2])
        ]
    );
}

#[test]
fn a_frame_to_review_gets_a_border_and_a_mark() {
    let style = OverlayStyle::default();
    let mask = rect_mask(64, 48, 20, 20, 30, 30);
    let mut plain = Frame::zeros(1, 1, PixelFormat::Rgb8);
    let mut flagged = Frame::zeros(1, 1, PixelFormat::Rgb8);
    render(
        &gray_frame(64, 48),
        &mask,
        None,
        0.9,
        false,
        &style,
        &mut plain,
    );
    render(
        &gray_frame(64, 48),
        &mask,
        None,
        0.9,
        true,
        &style,
        &mut flagged,
    );
    // the border along every edge, the inside untouched
    for (x, y) in [(63, 47), (63, 0), (0, 47), (40, 46), (62, 30), (2, 20)] {
        assert_eq!(px(&flagged, x, y), style.review, "({x}, {y})");
        assert_ne!(px(&plain, x, y), style.review, "({x}, {y})");
    }
    assert_eq!(px(&flagged, 25, 25), px(&plain, 25, 25));
    assert_eq!(px(&flagged, 40, 20), [GRAY; 3]);
    // the label is longer by " !" (two more glyphs) and still top left
    let text = |f: &Frame| {
        (0..16)
            .flat_map(|y| (0..64).map(move |x| (x, y)))
            .filter(|&(x, y)| px(f, x, y) == style.text)
            .count()
    };
    assert!(text(&flagged) > text(&plain));
}
